//! Files: a shared file is a signed message that names a **blob**, and the blob's bytes travel
//! over their own request-response protocol (`/majlis/blob/1`), never over gossip.
//!
//! A blob is the file encrypted chunk by chunk under a fresh random **file key**
//! (XChaCha20-Poly1305; the nonce is the chunk index, which is safe because a file key seals
//! exactly one file once). Each encrypted chunk is hashed with BLAKE3, and the blob's id is a
//! BLAKE3 hash (domain-separated) over the chunk layout and the list of chunk hashes. So:
//!
//! - the message commits to the id, the id commits to every chunk hash, and a receiver checks
//!   each chunk against its hash **before** writing it: a wrong byte is never stored, and the
//!   peer that sent it is not asked again for that file;
//! - relays, which hold no channel keys, can store, verify and serve a blob without being
//!   able to read it (they see its size, as they see a message's size);
//! - the name, media type, size, caption and file key travel inside the message's sealed
//!   body ([`FileInfo`]), so only the channel's readers can open the file.
//!
//! This is Syncthing's block list with the file encrypted first; BLAKE3 verified streaming
//! (bao) would let a receiver verify without fetching the hash list, but the list costs 32
//! bytes per chunk (0.01 % at 256 KiB chunks) and keeps the protocol a plain range request.
//! No primitive here is ours: `blake3` and `chacha20poly1305`.
//!
//! [`blobs`] keeps blobs on disk (resumable partial files with a verified-chunk bitmap),
//! [`fetch`] plans a multi-source download without I/O.

pub mod blobs;
pub mod fetch;

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Smallest chunk (plaintext bytes). Bigger files get bigger chunks so that the hash list
/// stays under [`MAX_HASH_LIST`] entries.
pub const MIN_CHUNK: u32 = 256 * 1024;
pub const MAX_CHUNK: u32 = 16 * 1024 * 1024;
/// At most this many chunks per blob: with 16 MiB chunks, 1 TiB. The list is 2 MiB.
pub const MAX_HASH_LIST: u64 = 64 * 1024;
/// Authentication tag added to every chunk.
pub const TAG: usize = 16;
/// Longest file name and media type kept in a [`FileInfo`].
pub const MAX_NAME: usize = 255;
pub const MAX_MIME: usize = 127;

/// A blob's name: BLAKE3 over its layout and chunk hashes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(pub [u8; 32]);

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", &self.to_string()[..12])
    }
}

impl std::str::FromStr for BlobId {
    type Err = Error;
    fn from_str(s: &str) -> Result<BlobId> {
        let m: crate::MessageId = s
            .parse()
            .map_err(|_| Error::Invalid(format!("'{s}' is not a file id (64 hex digits)")))?;
        Ok(BlobId(m.0))
    }
}

impl Serialize for BlobId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for BlobId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        if d.is_human_readable() {
            String::deserialize(d)?
                .parse()
                .map_err(serde::de::Error::custom)
        } else {
            Ok(BlobId(<[u8; 32]>::deserialize(d)?))
        }
    }
}

/// What every node (relays included) sees of a shared file: which blob, how big, how cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub id: BlobId,
    /// Plaintext bytes.
    pub size: u64,
    /// Plaintext bytes per chunk (the last one may be shorter).
    pub chunk: u32,
}

impl BlobRef {
    /// Number of chunks; an empty file is one empty chunk (its tag still authenticates it).
    pub fn chunks(&self) -> u32 {
        self.size.div_ceil(self.chunk as u64).max(1) as u32
    }

    /// Plaintext bytes of chunk `i`.
    pub fn plain_len(&self, i: u32) -> usize {
        let start = i as u64 * self.chunk as u64;
        (self.size.saturating_sub(start)).min(self.chunk as u64) as usize
    }

    /// Encrypted bytes of chunk `i`, as stored and sent.
    pub fn cipher_len(&self, i: u32) -> usize {
        self.plain_len(i) + TAG
    }

    /// Where chunk `i` starts in the stored blob.
    pub fn offset(&self, i: u32) -> u64 {
        i as u64 * (self.chunk as u64 + TAG as u64)
    }

    /// Encrypted bytes of the whole blob.
    pub fn stored_len(&self) -> u64 {
        self.offset(self.chunks() - 1) + self.cipher_len(self.chunks() - 1) as u64
    }

    /// Structural checks on a reference read from the network.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !self.chunk.is_power_of_two() || !(MIN_CHUNK..=MAX_CHUNK).contains(&self.chunk) {
            return Err(format!("chunk size {} is not allowed", self.chunk));
        }
        if self.size.div_ceil(self.chunk as u64) > MAX_HASH_LIST {
            return Err(format!(
                "{} bytes in {}-byte chunks is too many chunks",
                self.size, self.chunk
            ));
        }
        Ok(())
    }

    /// The id that this layout and these chunk hashes name.
    pub fn id_of(size: u64, chunk: u32, hashes: &[[u8; 32]]) -> BlobId {
        let mut h = blake3::Hasher::new_derive_key("majlis 2026-11 blob id v1");
        h.update(&size.to_le_bytes());
        h.update(&chunk.to_le_bytes());
        for c in hashes {
            h.update(c);
        }
        BlobId(*h.finalize().as_bytes())
    }

    /// Whether `hashes` is this blob's hash list.
    pub fn verify_hashes(&self, hashes: &[[u8; 32]]) -> bool {
        hashes.len() == self.chunks() as usize
            && Self::id_of(self.size, self.chunk, hashes) == self.id
    }
}

/// The chunk size for a file of `size` bytes.
pub fn chunk_size_for(size: u64) -> u32 {
    let mut c = MIN_CHUNK;
    while size.div_ceil(c as u64) > MAX_HASH_LIST && c < MAX_CHUNK {
        c *= 2;
    }
    c
}

/// Hash of one encrypted chunk.
pub fn chunk_hash(data: &[u8]) -> [u8; 32] {
    *blake3::hash(data).as_bytes()
}

/// What the channel's readers see of a file (inside the sealed body).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub name: String,
    pub mime: String,
    pub size: u64,
    pub caption: String,
    /// The file key. Zeroed on drop.
    pub key: [u8; 32],
}

impl fmt::Debug for FileInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileInfo")
            .field("name", &self.name)
            .field("mime", &self.mime)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Drop for FileInfo {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

fn cipher(key: &[u8; 32]) -> chacha20poly1305::XChaCha20Poly1305 {
    use chacha20poly1305::aead::KeyInit;
    chacha20poly1305::XChaCha20Poly1305::new(key.into())
}

fn nonce(i: u32) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[..4].copy_from_slice(&i.to_le_bytes());
    n
}

/// Bound into every chunk: its position and the file's size, so chunks cannot be reordered,
/// dropped from the end or moved between files.
fn aad(size: u64, i: u32) -> [u8; 28] {
    let mut a = [0u8; 28];
    a[..16].copy_from_slice(b"majlis/chunk/v1\0");
    a[16..24].copy_from_slice(&size.to_le_bytes());
    a[24..].copy_from_slice(&i.to_le_bytes());
    a
}

/// A file encrypted into a blob file, ready to be shared.
pub struct Prepared {
    pub blob: BlobRef,
    pub hashes: Vec<[u8; 32]>,
    pub key: [u8; 32],
    /// Where the encrypted blob was written (in the blob directory; moved into place by
    /// [`blobs::Blobs::adopt`]).
    pub path: std::path::PathBuf,
}

/// Encrypt `src` into a new file in `dir`, hashing as it goes. Streams: memory stays at
/// one chunk whatever the file's size.
pub fn prepare(src: &Path, dir: &Path) -> Result<Prepared> {
    let f = std::fs::File::open(src).map_err(|e| Error::io(src, e))?;
    let size = f.metadata().map_err(|e| Error::io(src, e))?.len();
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::Invalid(format!(
            "{} is a folder; share a file (zip the folder first)",
            src.display()
        )));
    }
    let reader = std::io::BufReader::with_capacity(1 << 20, f);
    prepare_from(reader, size, &src.display().to_string(), dir)
}

/// [`prepare`] for `size` bytes read from `reader` (named `what` in errors): a pasted image
/// is encrypted straight from memory, never written out in the clear.
pub fn prepare_from(mut reader: impl Read, size: u64, what: &str, dir: &Path) -> Result<Prepared> {
    use chacha20poly1305::aead::AeadInPlace;
    let chunk = chunk_size_for(size);
    let blob_shape = BlobRef {
        id: BlobId([0; 32]),
        size,
        chunk,
    };
    blob_shape.check().map_err(Error::Invalid)?;
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).expect("OS RNG");
    let c = cipher(&key);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // The encrypted copy needs the file's size again, and the database must keep its margin.
    blobs::ensure_space(dir, blob_shape.stored_len())?;
    let mut rnd = [0u8; 8];
    getrandom::getrandom(&mut rnd).expect("OS RNG");
    let path = dir.join(format!(
        "new-{}.tmp",
        rnd.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ));
    let out = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    let mut hashes = Vec::with_capacity(blob_shape.chunks() as usize);
    let mut buf = Vec::with_capacity(chunk as usize + TAG);
    for i in 0..blob_shape.chunks() {
        let len = blob_shape.plain_len(i);
        buf.resize(len, 0);
        reader
            .read_exact(&mut buf)
            .map_err(|e| Error::Invalid(format!("{what} changed while it was read: {e}")))?;
        c.encrypt_in_place((&nonce(i)).into(), &aad(size, i), &mut buf)
            .map_err(|_| Error::Invalid("encryption failed".into()))?;
        hashes.push(chunk_hash(&buf));
        out.write_all(&buf).map_err(|e| Error::io(&path, e))?;
    }
    let out = out
        .into_inner()
        .map_err(|e| Error::io(&path, e.into_error()))?;
    out.sync_all().map_err(|e| Error::io(&path, e))?;
    Ok(Prepared {
        blob: BlobRef {
            id: BlobRef::id_of(size, chunk, &hashes),
            size,
            chunk,
        },
        hashes,
        key,
        path,
    })
}

/// Decrypt chunk `i` of `blob`.
pub fn open_chunk(blob: &BlobRef, key: &[u8; 32], i: u32, data: &mut Vec<u8>) -> Result<()> {
    use chacha20poly1305::aead::AeadInPlace;
    cipher(key)
        .decrypt_in_place((&nonce(i)).into(), &aad(blob.size, i), data)
        .map_err(|_| {
            Error::Corrupt(format!(
                "chunk {i} of file {} does not open with the key its message names",
                blob.id
            ))
        })
}

/// A file name safe to create in a folder and to show: the last path component, without
/// control characters, and without characters that draw nothing or turn the text around
/// ([`crate::names::is_hidden`]): a colleague's "invoice\u{202E}fdp.exe" would otherwise
/// show, and be saved, as "invoiceexe.pdf". A fallback when nothing is left.
pub fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|&c| !c.is_control() && !crate::names::is_hidden(c))
        .collect();
    let clean = clean.trim().trim_start_matches('.').to_string();
    if clean.is_empty() {
        "file".into()
    } else {
        clean
    }
}

/// Bytes as people read them (`3.1 MiB`): the app and the CLI say sizes the same way.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A media type from a file name's extension: what the app needs to decide "image".
pub fn guess_mime(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "txt" | "log" | "md" => "text/plain",
        "csv" => "text/csv",
        "zip" => "application/zip",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "doc" | "docx" => "application/msword",
        "xls" | "xlsx" => "application/vnd.ms-excel",
        "dwg" => "image/vnd.dwg",
        "iso" | "img" => "application/octet-stream",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_sizes() {
        let b = |size| BlobRef {
            id: BlobId([0; 32]),
            size,
            chunk: MIN_CHUNK,
        };
        assert_eq!(b(0).chunks(), 1);
        assert_eq!(b(0).cipher_len(0), TAG);
        assert_eq!(b(1).chunks(), 1);
        assert_eq!(b(MIN_CHUNK as u64).chunks(), 1);
        assert_eq!(b(MIN_CHUNK as u64 + 1).chunks(), 2);
        assert_eq!(b(MIN_CHUNK as u64 + 1).plain_len(1), 1);
        assert_eq!(
            b(MIN_CHUNK as u64 + 1).stored_len(),
            MIN_CHUNK as u64 + 1 + 2 * TAG as u64
        );
        // A terabyte fits; the hash list stays bounded.
        let c = chunk_size_for(1 << 40);
        assert_eq!(c, MAX_CHUNK);
        assert!((1u64 << 40).div_ceil(c as u64) <= MAX_HASH_LIST);
        assert!(b(1 << 40).check().is_err(), "too many small chunks");
    }

    #[test]
    fn prepare_then_open_every_chunk() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("drawing.dwg");
        let data: Vec<u8> = (0..(MIN_CHUNK as usize * 2 + 1000))
            .map(|i| (i * 7) as u8)
            .collect();
        std::fs::write(&src, &data).unwrap();
        let p = prepare(&src, d.path()).unwrap();
        assert_eq!(p.blob.chunks(), 3);
        assert!(p.blob.verify_hashes(&p.hashes));
        let stored = std::fs::read(&p.path).unwrap();
        assert_eq!(stored.len() as u64, p.blob.stored_len());
        assert_ne!(&stored[..64], &data[..64], "stored encrypted");
        let mut back = Vec::new();
        for i in 0..p.blob.chunks() {
            let at = p.blob.offset(i) as usize;
            let mut c = stored[at..at + p.blob.cipher_len(i)].to_vec();
            assert_eq!(chunk_hash(&c), p.hashes[i as usize]);
            open_chunk(&p.blob, &p.key, i, &mut c).unwrap();
            back.extend_from_slice(&c);
        }
        assert_eq!(back, data);
        // A chunk in the wrong place does not open.
        let mut c = stored[..p.blob.cipher_len(0)].to_vec();
        assert!(open_chunk(&p.blob, &p.key, 1, &mut c).is_err());
        // A changed hash list names another blob.
        let mut h = p.hashes.clone();
        h[1][0] ^= 1;
        assert!(!p.blob.verify_hashes(&h));
    }

    #[test]
    fn names_from_the_network_cannot_climb_out_of_a_folder() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("..\\x.exe"), "x.exe");
        assert_eq!(safe_name(".."), "file");
        assert_eq!(safe_name("تقرير.pdf"), "تقرير.pdf");
        assert_eq!(safe_name("a\u{0}b\n.txt"), "ab.txt");
        // Shown and saved as what it is, not as "invoiceexe.pdf".
        assert_eq!(safe_name("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(safe_name("\u{2067}report.pdf\u{200B}"), "report.pdf");
    }
}
