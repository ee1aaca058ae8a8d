//! Blobs on disk: `blobs/<id>` when complete, `blobs/<id>.part` while chunks arrive, and
//! `blobs/<id>.hashes` (the verified hash list). What is known of each blob (its reference,
//! the channels whose messages name it, whether it is wanted) and the bitmap of chunks that
//! are verified **and** synced to disk live in a sled tree beside the messages.
//!
//! A partial blob is resumable because the bitmap is only written after the data it covers
//! was fsynced: after a crash, every chunk the bitmap claims is on disk and was verified;
//! anything newer is fetched again. A blob is renamed to its final name only once every chunk
//! is in, so a partial file is never shown as complete.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{BlobId, BlobRef, FileInfo, Prepared};
use crate::error::{Error, Result};

/// What this node knows of one blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMeta {
    pub blob: BlobRef,
    /// Channels with a message that shares it: whose readers it may be served to.
    pub channels: Vec<String>,
    pub complete: bool,
    /// Fetch it (asked for, small enough to fetch at once, or this node stores everything).
    pub wanted: bool,
}

/// A set of chunk indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bitmap(pub Vec<u8>);

impl Bitmap {
    pub fn new(n: u32) -> Bitmap {
        Bitmap(vec![0; (n as usize).div_ceil(8)])
    }
    pub fn full(n: u32) -> Bitmap {
        let mut b = Bitmap::new(n);
        for i in 0..n {
            b.set(i);
        }
        b
    }
    pub fn get(&self, i: u32) -> bool {
        self.0
            .get(i as usize / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }
    pub fn set(&mut self, i: u32) {
        if let Some(b) = self.0.get_mut(i as usize / 8) {
            *b |= 1 << (i % 8);
        }
    }
    pub fn clear(&mut self, i: u32) {
        if let Some(b) = self.0.get_mut(i as usize / 8) {
            *b &= !(1 << (i % 8));
        }
    }
    pub fn count(&self) -> u32 {
        self.0.iter().map(|b| b.count_ones()).sum()
    }
}

const META: u8 = b'm';
const HAVE: u8 = b'h';
/// (blob, message id) → nothing: the messages that share a blob, by which a listing names
/// the file (its name is inside the message, sealed to the channel's readers).
const SHARED: u8 = b's';

fn key(space: u8, id: &BlobId) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = space;
    k[1..].copy_from_slice(&id.0);
    k
}

/// The blob directory and its index. Cheap to clone.
#[derive(Clone)]
pub struct Blobs {
    dir: PathBuf,
    tree: sled::Tree,
}

impl Blobs {
    pub fn open(dir: &Path, tree: sled::Tree) -> Result<Blobs> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        // Shares interrupted before their message was signed: nothing names them.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("new-") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(Blobs {
            dir: dir.to_path_buf(),
            tree,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &BlobId, complete: bool) -> PathBuf {
        self.dir.join(if complete {
            id.to_string()
        } else {
            format!("{id}.part")
        })
    }

    fn hashes_path(&self, id: &BlobId) -> PathBuf {
        self.dir.join(format!("{id}.hashes"))
    }

    pub fn meta(&self, id: &BlobId) -> Result<Option<BlobMeta>> {
        match self.tree.get(key(META, id))? {
            None => Ok(None),
            Some(v) => postcard::from_bytes(&v)
                .map(Some)
                .map_err(|e| Error::Corrupt(format!("file record {id} is damaged: {e}"))),
        }
    }

    fn put_meta(&self, m: &BlobMeta) -> Result<()> {
        let v = postcard::to_stdvec(m).expect("meta serializes");
        self.tree.insert(key(META, &m.blob.id), v)?;
        Ok(())
    }

    pub fn list(&self) -> Result<Vec<BlobMeta>> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix([META]) {
            let (_, v) = kv?;
            if let Ok(m) = postcard::from_bytes(&v) {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// A message in `channel` names `blob`: remember it (and that the channel's readers may
    /// have it). Returns the record.
    pub fn note(&self, blob: &BlobRef, channel: &str) -> Result<BlobMeta> {
        let mut m = self.meta(&blob.id)?.unwrap_or(BlobMeta {
            blob: *blob,
            channels: Vec::new(),
            complete: false,
            wanted: false,
        });
        if m.blob != *blob {
            // Same id, other layout: impossible for an honest author (the id hashes the
            // layout); keep the first.
            return Ok(m);
        }
        if !m.channels.iter().any(|c| c == channel) {
            m.channels.push(channel.to_string());
            self.put_meta(&m)?;
        }
        Ok(m)
    }

    pub fn set_wanted(&self, id: &BlobId, wanted: bool) -> Result<Option<BlobMeta>> {
        let Some(mut m) = self.meta(id)? else {
            return Ok(None);
        };
        if m.wanted != wanted {
            m.wanted = wanted;
            self.put_meta(&m)?;
        }
        Ok(Some(m))
    }

    /// Take in a blob this device just encrypted: it is complete from the start.
    pub fn adopt(&self, p: &Prepared, channel: &str) -> Result<()> {
        let to = self.path(&p.blob.id, true);
        std::fs::rename(&p.path, &to).map_err(|e| Error::io(&to, e))?;
        self.put_hashes(&p.blob.id, &p.hashes)?;
        let mut m = self.note(&p.blob, channel)?;
        m.complete = true;
        m.wanted = true;
        self.put_meta(&m)?;
        self.tree.flush()?;
        Ok(())
    }

    pub fn hashes(&self, blob: &BlobRef) -> Result<Option<Vec<[u8; 32]>>> {
        let p = self.hashes_path(&blob.id);
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&p, e)),
        };
        let list: Vec<[u8; 32]> = bytes
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        // Checked on every load: a damaged list is fetched again, never trusted.
        Ok(blob.verify_hashes(&list).then_some(list))
    }

    pub fn put_hashes(&self, id: &BlobId, hashes: &[[u8; 32]]) -> Result<()> {
        let p = self.hashes_path(id);
        let bytes: Vec<u8> = hashes.iter().flatten().copied().collect();
        write_synced(&p, &bytes)
    }

    /// The chunks held: all of a complete blob, the committed bitmap of a partial one.
    pub fn have(&self, m: &BlobMeta) -> Result<Bitmap> {
        if m.complete {
            return Ok(Bitmap::full(m.blob.chunks()));
        }
        Ok(match self.tree.get(key(HAVE, &m.blob.id))? {
            Some(v) if v.len() == Bitmap::new(m.blob.chunks()).0.len() => Bitmap(v.to_vec()),
            _ => Bitmap::new(m.blob.chunks()),
        })
    }

    /// Write verified chunk `i` of a partial blob (not yet durable: see [`Blobs::commit`]).
    /// Refused when the disk is nearly full (the database shares it, and must not run out).
    pub fn write_chunk(&self, blob: &BlobRef, i: u32, data: &[u8]) -> Result<()> {
        let p = self.path(&blob.id, false);
        ensure_space(&self.dir, data.len() as u64)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| Error::io(&p, e))?;
        f.seek(SeekFrom::Start(blob.offset(i)))
            .and_then(|_| f.write_all(data))
            .map_err(|e| Error::io(&p, e))
    }

    /// Make the chunks in `have` durable: fsync the data, then record the bitmap.
    pub fn commit(&self, blob: &BlobRef, have: &Bitmap) -> Result<()> {
        let p = self.path(&blob.id, false);
        if let Ok(f) = std::fs::File::open(&p) {
            f.sync_data().map_err(|e| Error::io(&p, e))?;
        }
        self.tree.insert(key(HAVE, &blob.id), have.0.as_slice())?;
        self.tree.flush()?;
        Ok(())
    }

    /// Every chunk is in: sync, move to the final name, mark complete.
    pub fn finish(&self, blob: &BlobRef) -> Result<()> {
        let from = self.path(&blob.id, false);
        let to = self.path(&blob.id, true);
        let f = std::fs::File::open(&from).map_err(|e| Error::io(&from, e))?;
        f.sync_all().map_err(|e| Error::io(&from, e))?;
        std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
        if let Some(mut m) = self.meta(&blob.id)? {
            m.complete = true;
            self.put_meta(&m)?;
        }
        self.tree.remove(key(HAVE, &blob.id))?;
        self.tree.flush()?;
        Ok(())
    }

    /// Forget a blob and delete its bytes (its retention ended, or its message was erased).
    pub fn remove(&self, id: &BlobId) -> Result<()> {
        for p in [
            self.path(id, true),
            self.path(id, false),
            self.hashes_path(id),
        ] {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&p, e)),
                _ => {}
            }
        }
        self.tree.remove(key(META, id))?;
        self.tree.remove(key(HAVE, id))?;
        for k in self.tree.scan_prefix(key(SHARED, id)).keys() {
            self.tree.remove(k?)?;
        }
        Ok(())
    }

    /// Message `message` shares blob `id` (see [`Blobs::shared_by`]).
    pub fn note_message(&self, id: &BlobId, message: &crate::message::MessageId) -> Result<()> {
        let mut k = key(SHARED, id).to_vec();
        k.extend_from_slice(&message.0);
        self.tree.insert(k, &[])?;
        Ok(())
    }

    /// The messages known to share blob `id` (those stored since this record was kept).
    pub fn shared_by(&self, id: &BlobId) -> Result<Vec<crate::message::MessageId>> {
        let mut out = Vec::new();
        for k in self.tree.scan_prefix(key(SHARED, id)).keys() {
            if let Ok(m) = <[u8; 32]>::try_from(&k?[33..]) {
                out.push(crate::message::MessageId(m));
            }
        }
        Ok(out)
    }

    /// Read stored chunk `i` (complete or partial blob).
    pub fn read_chunk(&self, m: &BlobMeta, i: u32) -> Result<Vec<u8>> {
        let p = self.path(&m.blob.id, m.complete);
        let mut f = std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
        let mut buf = vec![0u8; m.blob.cipher_len(i)];
        f.seek(SeekFrom::Start(m.blob.offset(i)))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| Error::io(&p, e))?;
        Ok(buf)
    }

    /// `len` bytes of chunk `i` as stored, from `offset` (a slice for a slow link).
    pub fn read_slice(&self, m: &BlobMeta, i: u32, offset: u32, len: u32) -> Result<Vec<u8>> {
        let p = self.path(&m.blob.id, m.complete);
        let mut f = std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
        let mut buf = vec![0u8; len as usize];
        f.seek(SeekFrom::Start(m.blob.offset(i) + offset as u64))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| Error::io(&p, e))?;
        Ok(buf)
    }

    /// A complete blob's plaintext as a stream, each chunk checked against its hash again as
    /// it is read (the disk may lie). Memory stays at one chunk whatever the file's size.
    pub fn plaintext(&self, blob: &BlobRef, info: &FileInfo) -> Result<Plaintext> {
        let m = self
            .meta(&blob.id)?
            .filter(|m| m.complete)
            .ok_or_else(|| Error::NotReady(format!("file {} is not downloaded yet", blob.id)))?;
        let hashes = self.hashes(blob)?.ok_or_else(|| {
            Error::Corrupt(format!("the hash list of file {} is missing", blob.id))
        })?;
        let src = self.path(&blob.id, true);
        let f = std::fs::File::open(&src).map_err(|e| Error::io(&src, e))?;
        Ok(Plaintext {
            f: std::io::BufReader::with_capacity(1 << 20, f),
            blob: m.blob,
            key: info.key,
            hashes,
            next: 0,
            buf: Vec::new(),
            at: 0,
            src,
            failed: None,
        })
    }

    /// Decrypt a complete blob into `dest` (written beside it, then renamed: a reader never
    /// sees half a file).
    pub fn export(&self, blob: &BlobRef, info: &FileInfo, dest: &Path) -> Result<()> {
        let mut src = self.plaintext(blob, info)?;
        let tmp = dest.with_extension("majlis-part");
        let out = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
        if let Err(e) = std::io::copy(&mut src, &mut out) {
            let _ = std::fs::remove_file(&tmp);
            return Err(match src.failed.take() {
                Some(why) => why,
                None => Error::io(&tmp, e),
            });
        }
        let out = out
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        out.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))?;
        Ok(())
    }
}

/// A complete blob's plaintext ([`Blobs::plaintext`]).
pub struct Plaintext {
    f: std::io::BufReader<std::fs::File>,
    blob: BlobRef,
    key: [u8; 32],
    hashes: Vec<[u8; 32]>,
    /// The next chunk to read.
    next: u32,
    /// The current chunk's plaintext, read up to `at`.
    buf: Vec<u8>,
    at: usize,
    src: PathBuf,
    /// Why reading stopped, in this crate's words (an `io::Error` carries less).
    pub failed: Option<Error>,
}

impl Plaintext {
    /// Why reading stopped with `e`: in this crate's words if it stopped here.
    pub fn failure(&mut self, e: std::io::Error) -> Error {
        self.failed
            .take()
            .unwrap_or_else(|| Error::io(&self.src, e))
    }

    fn fill(&mut self) -> Result<()> {
        let i = self.next;
        self.buf.resize(self.blob.cipher_len(i), 0);
        self.f
            .read_exact(&mut self.buf)
            .map_err(|e| Error::io(&self.src, e))?;
        if self.hashes.get(i as usize) != Some(&super::chunk_hash(&self.buf)) {
            return Err(Error::Corrupt(format!(
                "chunk {i} of file {} changed on disk; remove {} and fetch it again",
                self.blob.id,
                self.src.display()
            )));
        }
        super::open_chunk(&self.blob, &self.key, i, &mut self.buf)?;
        self.next += 1;
        self.at = 0;
        Ok(())
    }
}

impl Read for Plaintext {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.buf.len() {
            if self.next == self.blob.chunks() {
                return Ok(0);
            }
            if let Err(e) = self.fill() {
                let said = std::io::Error::other(e.to_string());
                self.failed = Some(e);
                return Err(said);
            }
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.key.zeroize();
        self.buf.zeroize();
    }
}

/// [`crate::store::Store::ensure_space`] for files beside the database; the bytes to spare
/// beyond `need` and the margin.
pub fn ensure_space(dir: &Path, need: u64) -> Result<u64> {
    let margin = crate::store::min_free();
    // Not measurable (an odd file system): do not block on it.
    let free = fs2::available_space(dir).unwrap_or(u64::MAX);
    if free < margin.saturating_add(need) {
        return Err(Error::DiskFull {
            path: dir.display().to_string(),
            free,
            margin,
        });
    }
    Ok(free - margin.saturating_add(need))
}

fn write_synced(p: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = p.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, p).map_err(|e| Error::io(p, e))
}
