//! Persistent state in sled: message history with a per-channel index, the roster chain, the
//! outbox and this device's per-channel message chain.
//!
//! Only single-key writes are used on the message path: in sled 0.34 `apply_batch` makes the
//! next flush ~100× more expensive per write (measured with `examples/sledprobe.rs`). Instead
//! the writes of one message are ordered so that every prefix a crash can leave is valid and
//! a retry is idempotent: the history record first (its key is derived from the message, so
//! writing it twice is harmless), then the author-log entry, then the id lookup.
//! Nothing here flushes: callers group-commit (write many, flush once, acknowledge all).
//!
//! An author's head (the prefix of its log held, and its highest seq) is kept in memory and
//! written at the next flush, not with every message: one sled insert a message fewer on
//! the busiest path (a sixth of a catch-up's store time, measured). The log is the truth; a
//! head on disk is a hint that a crash can leave behind it, so the first read of a head in a
//! process brings it up to date from the log ([`Store::head`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::conversation::{self, Act, Reaction};
use crate::e2e::{self, ChannelKey, Content, KeyId, Plain};
use crate::error::{Error, Result};
use crate::identity::{DeviceId, OrgId};
use crate::message::{Envelope, MessageId, PLAINTEXT_FORMAT};
use crate::proto::Inserted;
use crate::roster::VerifiedRoster;
use crate::seal::{self, DataKey};
use crate::sync::Heads;

mod actions;
mod fork;
mod removals;
mod sweep;

pub use actions::{Action, LoggedAction};
pub use fork::{retarget, Redo, Refused, Waiting};
pub use removals::Removal;
pub use sweep::Swept;

// Key spaces of the `messages` tree.
const IDX: u8 = b'c'; // c | channel | 0 | sent_at(be) | id -> Record   (the history)
const MSG: u8 = b'm'; // m | id -> the `c` key                         (dedupe, lookup by id)
const LOG: u8 = b'a'; // a | channel | 0 | author | seq(be) -> id      (per-author logs)
const HEADS: u8 = b'v'; // v | channel | 0 | author -> contiguous(be) | max(be)
const SKIP: u8 = b'j'; // j | channel | 0 | author | seq(be) -> prev id (empty: none)  (skips, `sync`)
const HOLES: u8 = b'h'; // h | channel -> postcard((own device, [(held, reserved)]))  (crash holes, `resume_reservations`)
const RESERVED: u8 = b'z'; // z | channel -> reserved(be) | resume after(be)   (own seqs, `next_own`)
const ANNEX: u8 = b'r'; // r | channel | 0 | target id | act id -> sealed summary (acts on a message)
const ACT: u8 = b'x'; // x | act id -> ()   (this message is an act: not a row of its channel)
const READ: u8 = b'q'; // q | channel | 0 | member -> sealed (sent_at read up to)  (receipts)
const DELIVERED: u8 = b'y'; // y | channel | 0 | member -> sealed (sent_at of ours it holds up to)
const LOCKED: u8 = b'l'; // l | channel | 0 | id -> ()   (held before its key: announce it when it opens)

// Key spaces of the `e2e` tree.
const KEY: u8 = b'k'; // k | channel | 0 | key id -> sender key (32 bytes)
const SENDER: u8 = b's'; // s | channel -> postcard(SenderState)

/// What the user sees in place of a message whose key has not arrived (yet).
pub const LOCKED_TEXT: &str = "[encrypted: waiting for the key to this message]";

/// Shown for a file's description without its blob, or sizes that disagree: the author's
/// client is broken; that, rather than a file that can't be.
const BROKEN_FILE: &str = "[a file this app cannot show]";

/// How a file shows, if its description fits its blob.
fn file_view(
    blob: Option<crate::files::BlobRef>,
    info: &crate::files::FileInfo,
) -> Option<FileView> {
    blob.filter(|b| b.size == info.size).map(|b| FileView {
        blob: b.id,
        name: crate::files::safe_name(&info.name),
        mime: info.mime.clone(),
        size: info.size,
    })
}

/// This device's sender keys in one channel, and who has been given them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SenderState {
    /// Ids of this device's keys for the channel, oldest first; the last is current.
    pub mine: Vec<KeyId>,
    /// Devices that were granted every key in `mine`. A device in here that is no longer
    /// allowed to hold the channel's keys forces a new key before the next message.
    pub shared: Vec<DeviceId>,
    /// The roster version at which each key in `mine` was made (same order).
    pub made: Vec<u64>,
}

/// A message as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub id: MessageId,
    pub channel: String,
    /// The author's member name at the time the message was accepted.
    pub sender: String,
    pub device: DeviceId,
    pub sent_at: u64,
    pub text: String,
    /// The body is sealed and this device holds no key for it (yet): `text` is a placeholder.
    #[serde(default)]
    pub locked: bool,
    /// A shared file (then `text` is its caption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileView>,
    /// What this message does to another (a reply, an edit, a deletion, a reaction; see
    /// [`crate::conversation`]); then `text` is the reply's or the edit's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Act>,
    /// Folded in from the messages that act on this one.
    #[serde(default, skip_serializing_if = "is_false")]
    pub edited: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// Replies in its thread, and the last (up to) three members who replied.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replies: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repliers: Vec<String>,
    /// Forwarded from another conversation: from where, and whether this device can tell
    /// it is what its author wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<crate::conversation::ForwardView>,
    /// A poll (then `text` is its question), with the votes folded in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<crate::conversation::PollView>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Default for StoredMessage {
    fn default() -> Self {
        StoredMessage {
            id: MessageId([0; 32]),
            channel: String::new(),
            sender: String::new(),
            device: DeviceId([0; 32]),
            sent_at: 0,
            text: String::new(),
            locked: false,
            file: None,
            act: None,
            edited: false,
            deleted: false,
            reactions: Vec::new(),
            replies: 0,
            repliers: Vec::new(),
            forwarded: None,
            poll: None,
        }
    }
}

/// What a reader sees of a shared file (never its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileView {
    pub blob: crate::files::BlobId,
    pub name: String,
    pub mime: String,
    pub size: u64,
}

/// What folding needs of an act, filed under its target (see `Store::file_act`).
#[derive(Serialize, Deserialize)]
struct ActSummary {
    sender: String,
    device: DeviceId,
    sent_at: u64,
    act: Act,
    text: String,
}

#[derive(Serialize, Deserialize)]
struct Record {
    sender: String,
    wire: Vec<u8>,
}

/// A [`Record`] to write, borrowed (a message's wire is not copied to store it).
#[derive(Serialize)]
struct RecordRef<'a> {
    sender: &'a str,
    wire: &'a [u8],
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    messages: sled::Tree,
    rosters: sled::Tree,
    outbox: sled::Tree,
    e2e: sled::Tree,
    /// Seals message records, end-to-end keys and app state (see [`crate::seal`]).
    dk: std::sync::Arc<DataKey>,
    /// The database directory (see [`Store::ensure_space`]).
    dir: std::sync::Arc<std::path::PathBuf>,
    /// End-to-end keys already opened, by tree key: every shown message needs one.
    key_cache: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<Vec<u8>, ChannelKey>>>,
    /// Author heads read or moved since open (see the module doc), shared by every clone.
    heads: std::sync::Arc<std::sync::Mutex<HeadCache>>,
    /// Until when the disk is known to have room (see [`Store::ensure_space`]).
    roomy_until: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// Free space, beyond what a write needs, that lets [`Store::ensure_space`] skip its
/// `statvfs` for [`ROOMY_FOR`].
const ROOMY: u64 = 1 << 30;
const ROOMY_FOR: std::time::Duration = std::time::Duration::from_millis(20);

/// Heads in memory: exact for every key held, ahead of the tree for the `dirty` ones.
#[derive(Default)]
struct HeadCache {
    /// head key -> (contiguous prefix, highest seq held)
    known: std::collections::HashMap<Vec<u8>, (u64, u64)>,
    /// Keys moved since the last flush wrote them.
    dirty: std::collections::HashSet<Vec<u8>>,
    /// head key -> (seq, id, sent_at) of the author's highest message stored in this
    /// process: the next message's predecessor, which the chain check reads.
    tips: std::collections::HashMap<Vec<u8>, (u64, MessageId, u64)>,
}

/// The store's layout version, kept in `meta` and checked at every open: 2 since files
/// (the `blobs` tree). Stores written before it carry none and read as older.
pub const STORE_FORMAT: u32 = 2;
const STORE_FORMAT_KEY: &str = "store_format";
/// Meta key: the admins' names in the newest roster held.
const ADMINS: &str = "admins";

/// Bytes kept free on the database's disk: `MAJLIS_MIN_FREE_MB` (default 4 MiB, several of
/// sled's 512 KiB segments).
pub fn min_free() -> u64 {
    std::env::var("MAJLIS_MIN_FREE_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(4 << 20, |mb| mb << 20)
}

fn prefix(space: u8, channel: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(channel.len() + 2 + 40);
    k.push(space);
    k.extend_from_slice(channel.as_bytes());
    k.push(0);
    k
}

/// The message id a history key ends with.
fn id_at_end(k: &[u8]) -> Option<[u8; 32]> {
    k.len()
        .checked_sub(32)
        .and_then(|at| <[u8; 32]>::try_from(&k[at..]).ok())
}

fn act_key(id: &MessageId) -> [u8; 33] {
    let mut k = [ACT; 33];
    k[1..].copy_from_slice(&id.0);
    k
}

fn annex_key(channel: &str, target: &MessageId, act: &MessageId) -> Vec<u8> {
    let mut k = prefix(ANNEX, channel);
    k.extend_from_slice(&target.0);
    k.extend_from_slice(&act.0);
    k
}

fn head_key(channel: &str, author: &DeviceId) -> Vec<u8> {
    let mut k = prefix(HEADS, channel);
    k.extend_from_slice(&author.0);
    k
}

fn skip_key(channel: &str, author: &DeviceId, seq: u64) -> Vec<u8> {
    let mut k = prefix(SKIP, channel);
    k.extend_from_slice(&author.0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn log_key(channel: &str, author: &DeviceId, seq: u64) -> Vec<u8> {
    let mut k = prefix(LOG, channel);
    k.extend_from_slice(&author.0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The sequence number a [`log_key`] ends with.
fn seq_of(log_key: &[u8]) -> u64 {
    log_key
        .len()
        .checked_sub(8)
        .and_then(|at| log_key[at..].try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// Whether sled failed to open because another process holds the database's lock (sled
/// reports it either as `WouldBlock` or wrapped in an `Other` error).
fn held_by_another(io: &std::io::Error) -> bool {
    io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock")
}

/// Seqs reserved ahead (see [`Store::next_own`]): at most this many are skipped after a
/// crash; it must stay well under [`crate::sync::MAX_GAP`], which receivers take past a gap.
pub const RESERVE: u64 = 512;

/// Where [`Store::saved`] keeps what was saved for later, and how much at most.
const SAVED: &str = "saved";
const MAX_SAVED: usize = 10_000;

/// Meta key present while a node runs on the store (see [`Store::mark_running`]).
const RUNNING: &str = "running";

/// Crash holes remembered per channel (the oldest are forgotten first).
const MAX_HOLES: usize = 64;

/// The device whose log it is, and its crash holes: (last seq held, last seq reserved).
type Holes = (DeviceId, Vec<(u64, u64)>);

fn holes_key(channel: &str) -> Vec<u8> {
    let mut k = vec![HOLES];
    k.extend_from_slice(channel.as_bytes());
    k
}

fn reserved_key(channel: &str) -> Vec<u8> {
    let mut k = vec![RESERVED];
    k.extend_from_slice(channel.as_bytes());
    k
}

fn encode_reservation(reserved: u64, resume: u64) -> Vec<u8> {
    encode_head(reserved, resume)
}

fn encode_head(c: u64, max: u64) -> Vec<u8> {
    let mut v = c.to_be_bytes().to_vec();
    v.extend_from_slice(&max.to_be_bytes());
    v
}

fn decode_head(v: &[u8]) -> (u64, u64) {
    match (v.get(..8), v.get(8..16)) {
        (Some(c), Some(m)) => (
            u64::from_be_bytes(c.try_into().unwrap_or_default()),
            u64::from_be_bytes(m.try_into().unwrap_or_default()),
        ),
        _ => (0, 0),
    }
}

fn msg_key(id: &MessageId) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = MSG;
    k[1..].copy_from_slice(&id.0);
    k
}

/// sled's corruption error in words: its `Display` carries a debug dump ("Read corrupted
/// data at file offset None backtrace ()") that tells a user nothing.
fn sled_corruption(e: &sled::Error) -> String {
    match e {
        sled::Error::Corruption { at: Some(at), .. } => format!("damaged data at {at}"),
        sled::Error::Corruption { .. } => "damaged data".into(),
        other => other.to_string(),
    }
}

fn decode_record(id: MessageId, v: &[u8]) -> Result<(Record, Envelope)> {
    let damaged = |e: String| Error::Corrupt(format!("stored message {id} is damaged: {e}"));
    let rec: Record = postcard::from_bytes(v).map_err(|e| damaged(e.to_string()))?;
    let env = Envelope::decode_unverified(&rec.wire).map_err(|e| damaged(e.to_string()))?;
    Ok((rec, env))
}

/// Decode a stored record as read from disk (for the fuzz entry points).
pub fn decode_stored(v: &[u8]) -> Result<(String, Envelope)> {
    decode_record(MessageId([0; 32]), v).map(|(rec, env)| (rec.sender, env))
}

impl Store {
    /// Open the database at `path`, sealing and opening values with `dk`.
    pub fn open(path: &Path, dk: DataKey) -> Result<Store> {
        Self::open_waiting(path, dk, std::time::Duration::from_secs(1))
    }

    /// [`Store::open`], waiting up to `wait` for another process to let go of it.
    pub fn open_waiting(path: &Path, dk: DataKey, wait: std::time::Duration) -> Result<Store> {
        let config = sled::Config::new()
            .path(path)
            // Flushing is ours (group commit); sled's background flusher would add latency.
            .flush_every_ms(None);
        // The lock of a handle that was just dropped (or a process that is just exiting) can
        // linger for a moment: retry briefly before calling the directory busy.
        let deadline = std::time::Instant::now() + wait;
        let opened = loop {
            match config.open() {
                Err(sled::Error::Io(io))
                    if std::time::Instant::now() < deadline && held_by_another(&io) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other,
            }
        };
        let db = opened.map_err(|e| match e {
            // A live process holds the lock: never report that as a full or damaged disk.
            sled::Error::Io(io) if held_by_another(&io) => Error::Busy {
                path: path.parent().unwrap_or(path).display().to_string(),
            },
            sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => {
                Error::Corrupt(format!(
                    "the database at {} is corrupt ({})",
                    path.display(),
                    sled_corruption(&e)
                ))
            }
            other => Error::Db(other),
        })?;
        let meta = db.open_tree("meta")?;
        // A store written by a newer release may hold what this one cannot read right (new
        // trees, new record layouts): refuse it rather than write into it.
        if let Some(v) = meta.get(STORE_FORMAT_KEY)? {
            let theirs = v
                .as_ref()
                .try_into()
                .map(u32::from_be_bytes)
                .unwrap_or(u32::MAX);
            if theirs > STORE_FORMAT {
                return Err(Error::TooNew(format!(
                    "the database at {} was written by a newer Majlis (store format {theirs}; this release reads up to {STORE_FORMAT})",
                    path.display()
                )));
            }
        }
        if meta.get(STORE_FORMAT_KEY)?.as_deref() != Some(&STORE_FORMAT.to_be_bytes()[..]) {
            meta.insert(STORE_FORMAT_KEY, &STORE_FORMAT.to_be_bytes())?;
        }
        Ok(Store {
            meta,
            messages: db.open_tree("messages")?,
            rosters: db.open_tree("rosters")?,
            outbox: db.open_tree("outbox")?,
            e2e: db.open_tree("e2e")?,
            dk: std::sync::Arc::new(dk),
            key_cache: Default::default(),
            heads: Default::default(),
            roomy_until: Default::default(),
            dir: std::sync::Arc::new(path.to_path_buf()),
            db,
        })
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.meta.get(key)?.map(|v| v.to_vec()))
    }

    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        self.meta.insert(key, value)?;
        Ok(())
    }

    pub fn org(&self) -> Result<Option<OrgId>> {
        Ok(self
            .get_meta("org")?
            .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
            .map(OrgId))
    }

    /// Store a validated message. Returns `false` if it was already stored (replays are
    /// stored and shown once). Chain rules are the caller's (see [`crate::sync`]).
    pub fn insert_message(&self, env: &Envelope, sender: &str) -> Result<bool> {
        Ok(self.insert_known(env, sender, None)? != Inserted::Held)
    }

    /// [`Store::insert_message`] for a message this device has just signed with a seq from
    /// [`Store::next_own`]: new by construction (a seq never signed before gives an id never
    /// seen), so the duplicate lookup, a read per message sent, is skipped.
    pub fn insert_own(&self, env: &Envelope, sender: &str) -> Result<()> {
        self.insert_checked(env, sender, None, true).map(|_| ())
    }

    /// [`Store::insert_message`], given what intake's chain check has just read of the
    /// author's log (its head and the predecessor held), which is then not read again.
    pub fn insert_known(
        &self,
        env: &Envelope,
        sender: &str,
        known: Option<&crate::proto::Known>,
    ) -> Result<Inserted> {
        // Intake's chain check found the author's log ending below this seq, and its dedupe
        // check ran before: nothing to look up.
        let fresh = known.is_some_and(|k| k.fresh);
        self.insert_checked(env, sender, known, fresh)
    }

    /// The writes of [`Store::insert_known`]; `fresh`: the message is known not to be held.
    fn insert_checked(
        &self,
        env: &Envelope,
        sender: &str,
        known: Option<&crate::proto::Known>,
        fresh: bool,
    ) -> Result<Inserted> {
        let mkey = msg_key(&env.id);
        if !fresh && self.messages.contains_key(mkey)? {
            return Ok(Inserted::Held);
        }
        self.ensure_space(env.wire.len() as u64 * 4)?;
        let u = &env.unsigned;
        let rec = postcard::to_stdvec(&RecordRef {
            sender,
            wire: &env.wire,
        })
        .expect("record serializes");
        // An act is filed under its target first: an entry whose act was then lost in a
        // crash names nothing and is skipped; the reverse would lose the act for good (the
        // retry finds the message stored and stops).
        let shown = self.render(env, sender.to_string());
        if let Some(m) = &shown {
            self.file_act(m)?;
        }
        let mut idx = prefix(IDX, &u.channel);
        idx.extend_from_slice(&u.sent_at.to_be_bytes());
        idx.extend_from_slice(&env.id.0);
        self.messages.insert(&idx, self.dk.seal(&idx, &rec))?;
        // A message that does not name the one held just before it may be a skip (see
        // `sync`): remembered by the message it skips from, so the prefix can pass the hole.
        let pred = match known {
            Some(k) => k.pred,
            None if u.seq > 1 => match self.tip_at(&u.channel, &u.author, u.seq - 1) {
                Some((id, _)) => Some(id),
                None => self.log_entry(&u.channel, &u.author, u.seq - 1)?,
            },
            None => None,
        };
        if u.seq > 1 && pred != u.prev {
            self.messages.insert(
                skip_key(&u.channel, &u.author, u.seq),
                u.prev.map_or(Vec::new(), |p| p.0.to_vec()),
            )?;
        }
        self.messages
            .insert(log_key(&u.channel, &u.author, u.seq), &env.id.0[..])?;
        let (c, max) = match known {
            Some(k) => k.head,
            None => self.head(&u.channel, &u.author)?,
        };
        // Nothing is held above the head's highest seq (heads in memory are exact), so a
        // message that arrives in order, the common case, advances the prefix with no read.
        let top = max.max(u.seq);
        let c = self.advance(&u.channel, &u.author, c, max, Some(u.seq));
        let tip = (u.seq == top).then_some((u.seq, env.id, u.sent_at));
        // Last: the id index is what says "stored" (`has_message`, the check above). A crash
        // keeps a prefix of these writes; written first, it made the message count as held
        // while its log entry was lost, and a copy arriving again was dropped as a
        // duplicate: the author's prefix stuck below it for good. Written last, the copy
        // writes everything again (each write is idempotent).
        self.messages.insert(mkey, idx)?;
        // The head counts it only now: a flush (on another thread) records heads, and one
        // on disk must count only finished messages (see `drop_unfinished_logs`).
        self.set_head(head_key(&u.channel, &u.author), (c, top), tip);
        Ok(Inserted::New(shown.map(Box::new)))
    }

    /// The contiguous prefix of `author`'s log from `c` on, where seqs up to `max` are looked
    /// up in the log and `new` (being stored) counts as held.
    fn advance(&self, channel: &str, author: &DeviceId, c: u64, max: u64, new: Option<u64>) -> u64 {
        let top = new.map_or(max, |n| n.max(max));
        crate::sync::advance(
            c,
            |s| {
                Some(s) == new
                    || (s <= max
                        && self
                            .messages
                            .contains_key(log_key(channel, author, s))
                            .unwrap_or(false))
            },
            |c| match c < top {
                true => self.skip_after(channel, author, c).ok().flatten(),
                false => None,
            },
        )
    }

    fn set_head(&self, key: Vec<u8>, head: (u64, u64), tip: Option<(u64, MessageId, u64)>) {
        let mut h = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tip {
            h.tips.insert(key.clone(), t);
        }
        h.known.insert(key.clone(), head);
        h.dirty.insert(key);
    }

    /// (seq, id, sent_at) of `author`'s highest message in `channel`, if it was stored in
    /// this process (no read of the log).
    pub fn tip_of(
        &self,
        channel: &str,
        author: &DeviceId,
    ) -> Result<Option<(u64, MessageId, u64)>> {
        let (_, max) = self.head(channel, author)?;
        Ok(self
            .tip_at(channel, author, max)
            .map(|(id, at)| (max, id, at)))
    }

    /// The id and `sent_at` at (`channel`, `author`, `seq`) if that is the author's highest
    /// message stored since open (no read; `None`: ask the log).
    pub(crate) fn tip_at(
        &self,
        channel: &str,
        author: &DeviceId,
        seq: u64,
    ) -> Option<(MessageId, u64)> {
        let h = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        h.tips
            .get(&head_key(channel, author))
            .filter(|t| t.0 == seq)
            .map(|t| (t.1, t.2))
    }

    /// Write the heads moved since the last call (before a flush makes them durable).
    pub(super) fn write_heads(&self) -> Result<()> {
        let moved: Vec<(Vec<u8>, (u64, u64))> = {
            let mut h = self.heads.lock().unwrap_or_else(|p| p.into_inner());
            let dirty = std::mem::take(&mut h.dirty);
            dirty
                .into_iter()
                .filter_map(|k| h.known.get(&k).map(|v| (k, *v)))
                .collect()
        };
        for (i, (k, (c, max))) in moved.iter().enumerate() {
            if let Err(e) = self.messages.insert(k, encode_head(*c, *max)) {
                // Written at the next flush instead (the log holds the truth meanwhile).
                let mut h = self.heads.lock().unwrap_or_else(|p| p.into_inner());
                h.dirty.extend(moved[i..].iter().map(|(k, _)| k.clone()));
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// (contiguous prefix, highest seq) held of `author`'s log in `channel`; exact: nothing
    /// is held above the highest seq.
    pub fn head(&self, channel: &str, author: &DeviceId) -> Result<(u64, u64)> {
        let key = head_key(channel, author);
        if let Some(h) = self.cached_head(&key) {
            return Ok(h);
        }
        // First read in this process: the head on disk was written at some flush, and a
        // crash after it keeps log entries it does not count. The log's last entry is one
        // seek; the prefix moves only where entries sit above it.
        let (c, max) = self
            .messages
            .get(&key)?
            .map(|v| decode_head(&v))
            .unwrap_or((0, 0));
        let last = self
            .messages
            .range(
                log_key(channel, author, max.saturating_add(1))
                    ..=log_key(channel, author, u64::MAX),
            )
            .next_back()
            .transpose()?
            .map_or(max, |(k, _)| seq_of(&k));
        // Below a swept floor the entries are gone, and the prefix passed them before.
        let c = c.max(self.floor(channel, author)?.min(last));
        let head = (self.advance(channel, author, c, last, None), last);
        let mut h = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        // Another thread may have moved it meanwhile (only an insert does): theirs is newer.
        let head = *h.known.entry(key.clone()).or_insert(head);
        if head != (c, max) {
            h.dirty.insert(key);
        }
        Ok(head)
    }

    /// `author`'s highest seq in `channel` if its head is in memory (no read, nothing added).
    pub(crate) fn cached_top(&self, channel: &str, author: &DeviceId) -> Option<u64> {
        self.cached_head(&head_key(channel, author))
            .map(|(_, top)| top)
    }

    fn cached_head(&self, key: &[u8]) -> Option<(u64, u64)> {
        let h = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        h.known.get(key).copied()
    }

    /// Names of the channels that start with `start` and hold at least one message; used to
    /// list direct-message channels (`@`), which the roster does not enumerate. One seek per
    /// channel, not per message.
    pub fn channels_starting_with(&self, start: &str) -> Result<Vec<String>> {
        let mut from = vec![LOG];
        from.extend_from_slice(start.as_bytes());
        let pfx = from.clone();
        let mut out = Vec::new();
        while let Some(kv) = self.messages.range(from.clone()..).next() {
            let (k, _) = kv?;
            let Some(nul) = k
                .iter()
                .position(|&b| b == 0)
                .filter(|_| k.starts_with(&pfx))
            else {
                break;
            };
            out.push(String::from_utf8_lossy(&k[1..nul]).into_owned());
            from = k[..nul].to_vec();
            from.push(1);
        }
        Ok(out)
    }

    /// Every author's head in `channel`: the authors are read from the log (one seek
    /// each), which a crash cannot leave behind as it can the heads on disk.
    pub fn heads(&self, channel: &str) -> Result<Heads> {
        let p = prefix(LOG, channel);
        let mut out = Heads::new();
        let mut from = p.clone();
        while let Some(kv) = self.messages.range(from.clone()..).next() {
            let (k, _) = kv?;
            let Some(a) = k
                .strip_prefix(p.as_slice())
                .and_then(|rest| <[u8; 32]>::try_from(rest.get(..32)?).ok())
            else {
                break;
            };
            let author = DeviceId(a);
            out.insert(author, self.head(channel, &author)?);
            from = log_key(channel, &author, u64::MAX);
            from.push(0);
        }
        Ok(out)
    }

    /// The id of (author, seq) in `channel`, if held.
    pub fn log_entry(
        &self,
        channel: &str,
        author: &DeviceId,
        seq: u64,
    ) -> Result<Option<MessageId>> {
        Ok(self
            .messages
            .get(log_key(channel, author, seq))?
            .and_then(|v| <[u8; 32]>::try_from(v.as_ref()).ok())
            .map(MessageId))
    }

    /// Up to `limit` wires of `author`'s log in `channel` from `from_seq` on, oldest first.
    pub fn log_from(
        &self,
        channel: &str,
        author: &DeviceId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .log_from_seq(channel, author, from_seq, limit)?
            .into_iter()
            .map(|(_, w)| w)
            .collect())
    }

    /// Up to `limit` (seq, wire) of `author`'s log in `channel` from `from_seq` on.
    pub fn log_from_seq(
        &self,
        channel: &str,
        author: &DeviceId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let start = log_key(channel, author, from_seq);
        let end = log_key(channel, author, u64::MAX);
        let mut out = Vec::new();
        // Swept messages (tombstones) are skipped, not counted against `limit`.
        for kv in self.messages.range(start..=end) {
            let (k, v) = kv?;
            let seq = seq_of(&k);
            if let Ok(id) = <[u8; 32]>::try_from(v.as_ref()) {
                if let Some(w) = self.message_wire(&MessageId(id))? {
                    out.push((seq, w));
                    if out.len() == limit {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Up to `limit` (seq, id) of `author`'s log in `channel` from `from_seq` to `to_seq`,
    /// oldest first, without reading the messages (swept ones are left out).
    pub fn log_ids(
        &self,
        channel: &str,
        author: &DeviceId,
        from_seq: u64,
        to_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, MessageId)>> {
        if from_seq > to_seq {
            return Ok(Vec::new());
        }
        let start = log_key(channel, author, from_seq);
        let end = log_key(channel, author, to_seq);
        let mut out = Vec::new();
        for kv in self.messages.range(start..=end) {
            if out.len() == limit {
                break;
            }
            let (k, v) = kv?;
            if let Ok(id) = <[u8; 32]>::try_from(v.as_ref()) {
                out.push((seq_of(&k), MessageId(id)));
            }
        }
        Ok(out)
    }

    /// The seqs of `author` held in `channel` from `from_seq` to `to_seq`, as at most
    /// `max` ranges (for sync requests after a gap).
    pub fn held_ranges(
        &self,
        channel: &str,
        author: &DeviceId,
        from_seq: u64,
        to_seq: u64,
        max: usize,
    ) -> Result<Vec<(u64, u64)>> {
        let start = log_key(channel, author, from_seq);
        let end = log_key(channel, author, to_seq);
        let mut seqs = Vec::new();
        for kv in self.messages.range(start..=end) {
            let (k, _) = kv?;
            seqs.push(seq_of(&k));
        }
        Ok(crate::sync::ranges_of(seqs, max))
    }

    /// `author`'s last (sequence number, id) in `channel`: where its next message chains.
    /// From the log, never from a head on disk (a crash can leave that behind the log, and
    /// the next message would reuse a sequence number): the head in memory was read up from
    /// the log, and the newest message stored since is kept beside it.
    pub fn own_head(&self, channel: &str, author: &DeviceId) -> Result<(u64, Option<MessageId>)> {
        // The head in memory is exact (read from the log when first asked for), and the tip
        // is the message at its highest seq.
        if let Some((seq, id, _)) = self.tip_of(channel, author)? {
            return Ok((seq, Some(id)));
        }
        let start = log_key(channel, author, 0);
        let end = log_key(channel, author, u64::MAX);
        Ok(match self.messages.range(start..=end).next_back() {
            Some(kv) => {
                let (k, v) = kv?;
                (
                    seq_of(&k),
                    <[u8; 32]>::try_from(v.as_ref()).ok().map(MessageId),
                )
            }
            None => (0, None),
        })
    }

    /// Whether `id` is held as `author`'s message in `channel` below seq `below` (looking at
    /// most [`crate::sync::MAX_GAP`] back); `None` if it is not held at all.
    pub fn earlier(
        &self,
        channel: &str,
        author: &DeviceId,
        id: &MessageId,
        below: u64,
    ) -> Result<Option<bool>> {
        if !self.has_message(id)? {
            return Ok(None);
        }
        let start = log_key(channel, author, below.saturating_sub(crate::sync::MAX_GAP));
        let end = log_key(channel, author, below);
        for kv in self.messages.range(start..end).rev() {
            if kv?.1.as_ref() == id.0 {
                return Ok(Some(true));
            }
        }
        Ok(Some(false))
    }

    /// The first message of `author` held after seq `c` if it skips to there: its `prev` is
    /// a message held at or below `c` (or none), so the author declared the seqs between
    /// empty (see [`crate::sync::advance`]).
    fn skip_after(&self, channel: &str, author: &DeviceId, c: u64) -> Result<Option<u64>> {
        let start = log_key(channel, author, c + 1);
        let end = log_key(channel, author, u64::MAX);
        let Some(kv) = self.messages.range(start..=end).next() else {
            return Ok(None);
        };
        let next = seq_of(&kv?.0);
        let Some(prev) = self.messages.get(skip_key(channel, author, next))? else {
            return Ok(None);
        };
        let skips = match <[u8; 32]>::try_from(prev.as_ref()) {
            Err(_) => prev.is_empty(),
            Ok(p) => self.earlier(channel, author, &MessageId(p), c + 1)? == Some(true),
        };
        Ok(skips.then_some(next))
    }

    /// The seq and `prev` of this device's next message in `channel`, reserving more seqs
    /// once an eighth of the reservation is used (a reservation must be on disk before a
    /// message using it is published: the node tracks what its flushes made durable).
    /// Reserving at the end made a steady stream's messages wait for the flush that carried
    /// their reservation, and the ones after them behind them (in order), through the
    /// outbox; renewed early, the reservation stays 7/8 of [`RESERVE`] ahead (two flushes'
    /// worth at 6 000 messages a second here, where one flush took 200 sends) for one write
    /// per 64 messages. A crash still skips at most [`RESERVE`] seqs, well inside what
    /// receivers take past a gap ([`crate::sync::MAX_GAP`]).
    ///
    /// Why: a sender publishes before its own write is flushed (one fsync off the delivery
    /// path). A crash can then lose a message peers already hold; signing another with the
    /// same seq would be an author fork. So seqs are reserved durably ahead, [`RESERVE`] at
    /// a time, and a node that restarts with a reservation beyond its last stored message
    /// continues after the reservation: the next message skips (see [`crate::sync`]) from
    /// the last one it holds, and no seq is ever signed twice.
    pub fn next_own(&self, channel: &str, me: &DeviceId) -> Result<(u64, Option<MessageId>)> {
        let (held, prev) = self.own_head(channel, me)?;
        let (reserved, resume) = self.reservation(channel)?;
        let seq = held.max(resume) + 1;
        if reserved == 0 {
            // Our first message here from this directory: checked as at a start (see
            // `resume_reservations`).
            self.check_own_from(channel, me, held)?;
        }
        if seq + RESERVE - RESERVE / 8 > reserved {
            self.messages.insert(
                reserved_key(channel),
                encode_reservation(seq + RESERVE - 1, resume),
            )?;
        }
        Ok((seq, prev))
    }

    /// (highest seq reserved, seq to resume after) for this device's messages in `channel`.
    pub fn reservation(&self, channel: &str) -> Result<(u64, u64)> {
        Ok(self
            .messages
            .get(reserved_key(channel))?
            .map(|v| decode_head(&v))
            .unwrap_or((0, 0)))
    }

    /// Before this device signs anything: if a node ran on this store and did not stop
    /// cleanly (`mark_running` without `release_reservations`), it may have published
    /// messages a crash kept off the disk, so wherever a reservation runs past the last
    /// message held, the next message resumes after the reservation (and the hole is
    /// remembered for recovery). Without a running node nothing was published before its
    /// flush (an offline `send`), so nothing is skipped. Returns every channel's reservation.
    pub fn resume_reservations(
        &self,
        me: &DeviceId,
    ) -> Result<std::collections::HashMap<String, u64>> {
        let crashed = self.meta.get(RUNNING)?.is_some();
        if crashed {
            self.drop_unfinished_logs()?;
        }
        let mut out = std::collections::HashMap::new();
        for kv in self.messages.scan_prefix([RESERVED]) {
            let (k, v) = kv?;
            let channel = String::from_utf8_lossy(&k[1..]).into_owned();
            let (reserved, resume) = decode_head(&v);
            if crashed {
                self.complete_own_writes(&channel, me)?;
            }
            let (held, _) = self.own_head(&channel, me)?;
            if crashed && reserved > held.max(resume) {
                tracing::info!(
                    "'{channel}': this device stopped with seqs {}..={reserved} reserved; \
                     its next message there skips them",
                    held.max(resume) + 1
                );
                self.messages
                    .insert(&k, encode_reservation(reserved, reserved))?;
                let mut holes = self.holes(&channel)?.map_or(Vec::new(), |(_, h)| h);
                holes.push((held, reserved));
                let extra = holes.len().saturating_sub(MAX_HOLES);
                holes.drain(..extra);
                self.set_holes(&channel, me, &holes)?;
            }
            self.check_own_from(&channel, me, held)?;
            out.insert(channel, reserved);
        }
        self.meta.remove(RUNNING)?;
        Ok(out)
    }

    /// At every start, crash or not, and before a first message in a channel: our log
    /// from `held` on is asked back once (as a crash hole is), so that peers holding other
    /// messages of ours at these seqs show it: this directory is then an older copy,
    /// restored or copied, and what it signs is a fork (see `Store::take_own_from`).
    /// Usually nothing comes, or what we signed since, dropped as duplicates.
    fn check_own_from(&self, channel: &str, me: &DeviceId, held: u64) -> Result<()> {
        let holes = self.holes(channel)?.map_or(Vec::new(), |(_, h)| h);
        if !holes.iter().any(|(m, _)| *m <= held) {
            let mut holes = holes;
            holes.push((held, held));
            holes.drain(..holes.len().saturating_sub(MAX_HOLES));
            self.set_holes(channel, me, &holes)?;
        }
        Ok(())
    }

    /// A crash keeps a prefix of a message's writes (see [`Store::insert_known`]), so this
    /// device's last messages may be in the history with no log entry. A peer's message left
    /// so is written again when it arrives again (catch-up asks for it: the log says it is
    /// missing); our own may exist nowhere else (published before its write, perhaps never
    /// delivered), and without its log entry we neither serve it nor chain to it: it would
    /// be shown here and never reach anyone. Its writes are completed instead. Our messages
    /// are never dated before our previous one, so only history from the last one in the
    /// log on is looked at.
    fn complete_own_writes(&self, channel: &str, me: &DeviceId) -> Result<()> {
        let from = match self.own_head(channel, me)? {
            (_, Some(id)) => self.sent_at_of(&id)?.unwrap_or(0),
            _ => 0,
        };
        let mut start = prefix(IDX, channel);
        let mut end = start.clone();
        *end.last_mut().expect("a prefix ends with its separator") = 1;
        start.extend_from_slice(&from.to_be_bytes());
        for kv in self.messages.range(start..end) {
            let (k, v) = kv?;
            let Some(id) = id_at_end(&k).map(MessageId) else {
                continue;
            };
            if self.messages.contains_key(msg_key(&id))? {
                continue;
            }
            match self.decode_record(&k, id, &v) {
                Ok((rec, env)) if env.unsigned.author == *me => {
                    tracing::info!(
                        "'{channel}': completing the writes of our message {id} (seq {}), \
                         cut short by a crash",
                        env.unsigned.seq
                    );
                    self.insert_message(&env, &rec.sender)?;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("'{channel}': {e}"),
            }
        }
        Ok(())
    }

    /// A crash keeps a prefix of a message's writes (see [`Store::insert_known`]). A log
    /// entry whose id index was lost counts as held, so catch-up never asks for the message
    /// again, and it cannot be served: a peer's message left so would be missing here and
    /// for everyone who catches up from us, for good. So at a crash start every log entry
    /// above the prefix its head on disk counts (a head is recorded only after all of a
    /// message's writes, so below it nothing is unfinished) is checked, and one without its
    /// id index is dropped: catch-up fetches the message again, and its history record, if
    /// it was kept, is written again the same. One seek per author and channel, plus the
    /// entries written since the last flush. Returns how many were dropped.
    fn drop_unfinished_logs(&self) -> Result<usize> {
        let mut dropped = 0;
        let mut at = vec![LOG];
        while let Some(kv) = self.messages.range(at.clone()..).next() {
            let (k, _) = kv?;
            // LOG | channel | 0 | author | seq: anything shorter is not a log entry.
            if k.first() != Some(&LOG) || k.len() < 1 + 1 + 32 + 8 {
                break;
            }
            let log = &k[..k.len() - 8];
            let mut head = log.to_vec();
            head[0] = HEADS;
            let (c, _) = self
                .messages
                .get(&head)?
                .map_or((0, 0), |v| decode_head(&v));
            let mut from = log.to_vec();
            from.extend_from_slice(&c.saturating_add(1).to_be_bytes());
            let mut to = log.to_vec();
            to.extend_from_slice(&u64::MAX.to_be_bytes());
            let mut lost = Vec::new();
            for kv in self.messages.range(from..=to.clone()) {
                let (lk, id) = kv?;
                let held = match <[u8; 32]>::try_from(id.as_ref()) {
                    Ok(id) => self.messages.contains_key(msg_key(&MessageId(id)))?,
                    Err(_) => false,
                };
                if !held {
                    lost.push(lk);
                }
            }
            for lk in &lost {
                let mut skip = lk.to_vec();
                skip[0] = SKIP;
                self.messages.remove(skip)?;
                self.messages.remove(lk)?;
                tracing::info!(
                    "a message (seq {}) was cut short by a crash; catch-up fetches it again",
                    seq_of(lk)
                );
            }
            if !lost.is_empty() {
                // The highest seq on disk may be one dropped: let the next read find it.
                self.messages.insert(&head, encode_head(c, c))?;
                let mut h = self.heads.lock().unwrap_or_else(|p| p.into_inner());
                h.known.remove(&head);
                h.tips.remove(&head);
                dropped += lost.len();
            }
            // The first key past this author's log in this channel.
            at = to;
            at.push(0);
        }
        Ok(dropped)
    }

    /// A node starts publishing before its flushes: until `release_reservations`, a start
    /// takes the reservations as possibly used.
    pub fn mark_running(&self) -> Result<()> {
        self.meta.insert(RUNNING, &[1u8][..])?;
        Ok(())
    }

    /// This device (whose log they are) and its crash holes in `channel`: (last seq it
    /// held, last seq reserved) at each start that skipped seqs. What it published in one
    /// and lost is asked back from peers ([`Store::recover_from`]). An unreadable record
    /// reads as none.
    fn holes(&self, channel: &str) -> Result<Option<Holes>> {
        Ok(self
            .messages
            .get(holes_key(channel))?
            .and_then(|v| postcard::from_bytes(&v).ok()))
    }

    fn set_holes(&self, channel: &str, me: &DeviceId, holes: &[(u64, u64)]) -> Result<()> {
        match holes.is_empty() {
            true => self.messages.remove(holes_key(channel))?,
            false => self.messages.insert(
                holes_key(channel),
                postcard::to_stdvec(&(me, holes)).expect("holes serialize"),
            )?,
        };
        Ok(())
    }

    /// Where catch-up should ask for this device's own log in `channel` from, below its
    /// prefix: the start of the oldest crash hole not yet asked of a peer.
    pub fn recover_from(&self, channel: &str) -> Result<Option<(DeviceId, u64)>> {
        Ok(self
            .holes(channel)?
            .and_then(|(me, h)| Some((me, h.iter().map(|(m, _)| *m).min()?))))
    }

    /// A peer answered a whole catch-up session in `channel`, whose last request stated
    /// `have` of this device's own log: the holes it covered are closed. Every session
    /// starts from the lowest hole (see `Catchup::request`), so it covered each hole up to
    /// [`crate::sync::MAX_GAP`] past `have`. (Closing only holes at or above `have` kept a
    /// hole open for good once the peer sent any of ours in the session: every later round
    /// asked for all of our log from its start again.)
    pub fn close_holes(&self, channel: &str, have: u64) -> Result<()> {
        match self.holes(channel)? {
            Some((me, mut holes)) => {
                holes.retain(|(_, r)| *r > have.saturating_add(crate::sync::MAX_GAP));
                self.set_holes(channel, &me, &holes)
            }
            // None held (the usual case: no write), or unreadable: nothing to ask for.
            None => {
                let k = holes_key(channel);
                if self.messages.contains_key(&k)? {
                    self.messages.remove(k)?;
                }
                Ok(())
            }
        }
    }

    /// At a clean stop, once everything is flushed: give back the seqs reserved and not
    /// used, so the next start does not skip them.
    pub fn release_reservations(&self, me: &DeviceId) -> Result<()> {
        for kv in self.messages.scan_prefix([RESERVED]) {
            let (k, v) = kv?;
            let channel = String::from_utf8_lossy(&k[1..]).into_owned();
            let (_, resume) = decode_head(&v);
            let (held, _) = self.own_head(&channel, me)?;
            let used = held.max(resume);
            self.messages.insert(&k, encode_reservation(used, used))?;
        }
        self.meta.remove(RUNNING)?;
        Ok(())
    }

    pub fn has_message(&self, id: &MessageId) -> Result<bool> {
        Ok(self.messages.contains_key(msg_key(id))?)
    }

    /// A stored message's `sent_at`, from its history key (no record to open).
    pub fn sent_at_of(&self, id: &MessageId) -> Result<Option<u64>> {
        let Some(idx) = self.messages.get(msg_key(id))? else {
            return Ok(None);
        };
        Ok(idx
            .len()
            .checked_sub(40)
            .and_then(|at| idx.get(at..at + 8))
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes))
    }

    /// A message as it shows: edits, deletion, reactions and replies folded in.
    pub fn message(&self, id: &MessageId) -> Result<Option<StoredMessage>> {
        let Some(mut m) = self.rendered(id)? else {
            return Ok(None);
        };
        self.fold(&mut m, &self.admins())?;
        Ok(Some(m))
    }

    /// A message as stored, nothing folded in.
    fn rendered(&self, id: &MessageId) -> Result<Option<StoredMessage>> {
        self.rendered_with(id, true)
    }

    /// [`Store::rendered`]; `check_forwards`: look up a forwarded message's original (not
    /// when checking a forward, so a chain of forwards costs one lookup, not a recursion).
    fn rendered_with(&self, id: &MessageId, check_forwards: bool) -> Result<Option<StoredMessage>> {
        let Some(idx) = self.messages.get(msg_key(id))? else {
            return Ok(None);
        };
        match self.messages.get(&idx)? {
            Some(v) => {
                let (rec, env) = self.decode_record(&idx, *id, &v)?;
                Ok(self.render_with(&env, rec.sender, check_forwards))
            }
            None => Ok(None),
        }
    }

    /// Whether a forward's original is held here and is what the forward says: by the
    /// author and in the channel it names, a message (not an act), and `same` as its
    /// content. A locked original (a channel this device may no longer read) counts as
    /// unseen: the check must not say anything about what it cannot open.
    fn forward_check(
        &self,
        from: &crate::conversation::Forwarded,
        same: impl FnOnce(&StoredMessage) -> bool,
    ) -> crate::conversation::ForwardCheck {
        use crate::conversation::ForwardCheck;
        let Ok(Some(raw)) = self.rendered_with(&from.id, false) else {
            return ForwardCheck::Unseen;
        };
        if raw.locked {
            return ForwardCheck::Unseen;
        }
        let same = raw.sender == from.author
            && raw.channel == from.channel
            && Act::is_message(raw.act.as_ref())
            && same(&raw);
        match same {
            true => ForwardCheck::Matches,
            false => ForwardCheck::Differs,
        }
    }

    /// A forwarded text is its original's text as sent or as last edited (not the time: an
    /// own message refused as a fork is sent again later, and a forward of it then names the
    /// new one).
    fn same_text(&self, original: &StoredMessage, text: &str) -> bool {
        if original.text == text {
            return true;
        }
        let mut now = original.clone();
        let _ = self.fold(&mut now, &self.admins());
        !now.deleted && now.text == text
    }

    /// A forwarded file is a file of its original's name, type and size with the same
    /// caption. (Its bytes are not compared: the forward is encrypted again under another
    /// key, and the original may not be downloaded here.)
    fn same_file(original: &StoredMessage, info: &crate::files::FileInfo) -> bool {
        original.text == info.caption
            && original.file.as_ref().is_some_and(|f| {
                f.name == crate::files::safe_name(&info.name)
                    && f.mime == info.mime
                    && f.size == info.size
            })
    }

    /// The message whose id starts with the hex digits `prefix` ([`MessageId::SHORT_MIN`] or
    /// more, as [`MessageId::short`] shows them): the whole id where a person typed the start
    /// of it. An error says whether none or several (then: give more digits) start so.
    pub fn message_by_prefix(&self, prefix: &str) -> Result<MessageId> {
        match self.messages_by_prefix(prefix, 2)?[..] {
            [id] => Ok(id),
            [] => Err(Self::no_message_starting(prefix)),
            _ => Err(Self::several_starting(prefix)),
        }
    }

    /// Up to `max` ids that start with the hex digits `prefix` (checked as
    /// [`Store::message_by_prefix`] checks them), in id order: for a caller that keeps only
    /// some (the HTTP API, those its token may read) before deciding which one was meant.
    pub fn messages_by_prefix(&self, prefix: &str, max: usize) -> Result<Vec<MessageId>> {
        let digits = prefix.len();
        if !(MessageId::SHORT_MIN..=64).contains(&digits)
            || !prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(Error::Invalid(format!(
                "'{prefix}' is not a message id: give its {} or more first hex digits \
                 (`majlisd history --ids` shows eight) or all 64",
                MessageId::SHORT_MIN
            )));
        }
        let nibble = |i: usize| u8::from_str_radix(&prefix[i..i + 1], 16).unwrap_or(0);
        let mut key = vec![MSG];
        key.extend((0..digits / 2).map(|i| nibble(2 * i) << 4 | nibble(2 * i + 1)));
        let odd = (digits % 2 == 1).then(|| nibble(digits - 1));
        let mut found = Vec::new();
        for entry in self.messages.scan_prefix(&key).keys() {
            if found.len() == max {
                break;
            }
            let Some(id) = entry?.get(1..33).and_then(|b| <[u8; 32]>::try_from(b).ok()) else {
                continue;
            };
            if odd.is_some_and(|n| id[digits / 2] >> 4 != n) {
                continue;
            }
            found.push(MessageId(id));
        }
        Ok(found)
    }

    /// Said where no message has an id starting with `prefix`.
    pub fn no_message_starting(prefix: &str) -> Error {
        Error::Invalid(format!(
            "no message on this device has an id starting with {prefix}"
        ))
    }

    /// Said where several messages have ids starting with `prefix`.
    pub fn several_starting(prefix: &str) -> Error {
        Error::Conflict(format!(
            "several messages have ids starting with {prefix}: give more of its digits"
        ))
    }

    pub fn message_wire(&self, id: &MessageId) -> Result<Option<Vec<u8>>> {
        let Some(idx) = self.messages.get(msg_key(id))? else {
            return Ok(None);
        };
        match self.messages.get(&idx)? {
            Some(v) => Ok(Some(self.decode_record(&idx, *id, &v)?.0.wire)),
            None => Ok(None),
        }
    }

    /// Bytes the database takes on disk (sled's own count).
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Message records held (every channel, readable or not).
    pub fn message_count(&self) -> usize {
        self.messages.len()
    }

    /// The last `limit` messages of a channel, oldest first, in the total order every node
    /// agrees on: (sent_at, id).
    pub fn history(&self, channel: &str, limit: usize) -> Result<Vec<StoredMessage>> {
        self.history_before(channel, None, limit)
    }

    /// Up to `limit` messages of `channel` older than `before` (its `(sent_at, id)`; `None`:
    /// the newest), oldest first. Pages backwards through a long history without reading it
    /// all: the GUI loads a channel of 100 000 messages a page at a time.
    pub fn history_before(
        &self,
        channel: &str,
        before: Option<(u64, MessageId)>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let p = prefix(IDX, channel);
        let end = match before {
            Some((ts, id)) => {
                let mut k = p.clone();
                k.extend_from_slice(&ts.to_be_bytes());
                k.extend_from_slice(&id.0);
                k
            }
            None => {
                let mut k = p.clone();
                k.extend_from_slice(&[0xff; 41]);
                k
            }
        };
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(Vec::new());
        }
        for kv in self.messages.range(p.clone()..end).rev() {
            let (k, v) = kv?;
            let Some(id) = id_at_end(&k) else {
                continue;
            };
            // Acts are known by a marker: a channel with many reactions is not opened and
            // decrypted act by act to find its rows. (A reply sent to the channel too is a row.)
            if self.messages.contains_key(act_key(&MessageId(id)))? {
                continue;
            }
            match self.decode_record(&k, MessageId(id), &v) {
                Ok((rec, env)) => {
                    if let Some(m) = self.render(&env, rec.sender) {
                        if Act::in_channel(m.act.as_ref()) {
                            out.push(m);
                            if out.len() == limit {
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!("{e}; skipped"),
            }
        }
        out.reverse();
        // Most channels hold no acts at all: one look instead of one per message (a search
        // rebuild reads every message through here).
        if self
            .messages
            .scan_prefix(prefix(ANNEX, channel))
            .next()
            .is_some()
        {
            let admins = self.admins();
            for m in &mut out {
                self.fold(m, &admins)?;
            }
        }
        Ok(out)
    }

    /// Every message of `channel` sent in `[from, to)`, oldest first, acts included, each
    /// as it was sent (nothing folded in): what an export writes.
    pub fn each_message(
        &self,
        channel: &str,
        from: u64,
        to: u64,
        mut f: impl FnMut(StoredMessage) -> Result<()>,
    ) -> Result<()> {
        let p = prefix(IDX, channel);
        let mut start = p.clone();
        start.extend_from_slice(&from.to_be_bytes());
        let mut end = p.clone();
        end.extend_from_slice(&to.to_be_bytes());
        for kv in self.messages.range(start..end) {
            let (k, v) = kv?;
            let Some(id) = id_at_end(&k) else {
                continue;
            };
            match self.decode_record(&k, MessageId(id), &v) {
                Ok((rec, env)) => {
                    if let Some(m) = self.render(&env, rec.sender) {
                        f(m)?;
                    }
                }
                Err(e) => tracing::warn!("{e}; skipped"),
            }
        }
        Ok(())
    }

    /// The thread of `root`: the message and its replies, oldest first, each as it shows
    /// (edits, deletions, reactions folded in). Empty if `root` is not held.
    pub fn thread(&self, root: &MessageId) -> Result<Vec<StoredMessage>> {
        let Some(mut first) = self.message(root)? else {
            return Ok(Vec::new());
        };
        let admins = self.admins();
        let mut replies: Vec<StoredMessage> = self
            .acts_on(&first.channel, root)?
            .into_iter()
            .filter(|m| matches!(m.act, Some(Act::Reply { .. })))
            .collect();
        for r in &mut replies {
            self.fold(r, &admins)?;
        }
        replies.sort_by_key(|m| (m.sent_at, m.id));
        // The root's reply count is folded from the same replies.
        first.replies = replies.iter().filter(|r| !r.deleted).count() as u32;
        let mut out = vec![first];
        out.extend(replies);
        Ok(out)
    }

    /// The replies in the thread of `root` (a message of `channel`) that are not rows of the
    /// channel too, each whole as it shows (a file, an edit, a deletion folded in), in no
    /// order. What a rebuild of the search index reads besides the channel's rows: the
    /// rows alone left every thread reply unfindable after a restart.
    pub fn replies_only_in_thread(
        &self,
        channel: &str,
        root: &MessageId,
    ) -> Result<Vec<StoredMessage>> {
        let mut out = Vec::new();
        for a in self.acts_on(channel, root)? {
            if matches!(
                a.act,
                Some(Act::Reply {
                    also_channel: false,
                    ..
                })
            ) {
                out.extend(self.message(&a.id)?);
            }
        }
        Ok(out)
    }

    /// The threads among `written` (a member's messages, and those mentioning them): those
    /// it replies in and those it starts that have replies, the one with the latest reply (not deleted)
    /// first, at most `limit`. See [`crate::Node::threads`].
    pub fn threads_of<'a>(
        &self,
        written: impl IntoIterator<Item = &'a StoredMessage>,
        limit: usize,
    ) -> Result<Vec<conversation::ThreadSummary>> {
        // Each once: up to 2 000 messages may name as many roots.
        let mut roots: Vec<MessageId> = Vec::new();
        let mut met = std::collections::HashSet::new();
        for m in written {
            let root = match &m.act {
                Some(Act::Reply { to, .. }) => *to,
                None if m.replies > 0 => m.id,
                _ => continue,
            };
            if met.insert(root) {
                roots.push(root);
            }
        }
        let mut out = Vec::new();
        for root in roots {
            // The latest reply not deleted: a thread whose replies were all deleted is none.
            let mut rows = self.thread(&root)?.into_iter();
            let Some(root) = rows.next() else { continue };
            let Some(last) = rows.rev().find(|m| !m.deleted) else {
                continue;
            };
            out.push(conversation::ThreadSummary { root, last });
        }
        out.sort_by_key(|t| std::cmp::Reverse((t.last.sent_at, t.last.id)));
        out.truncate(limit);
        Ok(out)
    }

    /// If `m` acts on another message, file it under that one, with what folding needs
    /// (sealed like a record), so showing a message reads its acts from one place instead of
    /// opening each act's message. Returns whether it was an act.
    fn file_act(&self, m: &StoredMessage) -> Result<bool> {
        let Some(act) = &m.act else {
            return Ok(false);
        };
        let k = annex_key(&m.channel, &act.target(), &m.id);
        let summary = ActSummary {
            sender: m.sender.clone(),
            device: m.device,
            sent_at: m.sent_at,
            act: act.clone(),
            text: m.text.clone(),
        };
        // JSON: `Act` is an internally tagged enum, which postcard cannot read back.
        let v = serde_json::to_vec(&summary).expect("summary serializes");
        self.messages.insert(&k, self.dk.seal(&k, &v))?;
        if !Act::in_channel(Some(act)) {
            self.messages.insert(act_key(&m.id), &[][..])?;
        }
        if let Act::Read { upto } = act {
            // Up to the message named if it is here, else up to when the receipt was sent.
            let at = self.sent_at_of(upto)?.unwrap_or(m.sent_at);
            let mut k = prefix(READ, &m.channel);
            k.extend_from_slice(m.sender.as_bytes());
            let held = self.read_mark(&k)?;
            if held.is_none_or(|h| h < at) {
                self.messages
                    .insert(&k, self.dk.seal(&k, &at.to_be_bytes()))?;
            }
        }
        Ok(true)
    }

    fn read_mark(&self, k: &[u8]) -> Result<Option<u64>> {
        Ok(match self.messages.get(k)? {
            Some(v) => self
                .unseal(k, &v)
                .ok()
                .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .map(u64::from_be_bytes),
            None => None,
        })
    }

    /// `member`'s devices hold this device's messages of `channel` up to the one sent at
    /// `at` (they said so in a catch-up request). Returns whether the mark moved.
    pub fn mark_delivered(&self, channel: &str, member: &str, at: u64) -> Result<bool> {
        let mut k = prefix(DELIVERED, channel);
        k.extend_from_slice(member.as_bytes());
        if self.read_mark(&k)?.is_some_and(|held| held >= at) {
            return Ok(false);
        }
        self.messages
            .insert(&k, self.dk.seal(&k, &at.to_be_bytes()))?;
        Ok(true)
    }

    /// Who holds this device's messages of `channel`, and up to which `sent_at`.
    pub fn delivered_marks(&self, channel: &str) -> Result<Vec<(String, u64)>> {
        self.marks(DELIVERED, channel)
    }

    fn marks(&self, space: u8, channel: &str) -> Result<Vec<(String, u64)>> {
        let p = prefix(space, channel);
        let mut out = Vec::new();
        for kv in self.messages.scan_prefix(&p) {
            let (k, _) = kv?;
            let member = String::from_utf8_lossy(&k[p.len()..]).into_owned();
            if let Some(at) = self.read_mark(&k)? {
                out.push((member, at));
            }
        }
        Ok(out)
    }

    /// Read receipts of `channel`: each member that sent one, and the time of the newest
    /// message it has read there (every message of the channel sent at or before it).
    pub fn read_marks(&self, channel: &str) -> Result<Vec<(String, u64)>> {
        self.marks(READ, channel)
    }

    /// What `channel` shows about itself: topic, pinned messages (only those held here, of
    /// this channel, not deleted), who left it.
    pub fn details(&self, channel: &str) -> Result<conversation::Details> {
        Ok(self.details_and_pinned(channel)?.0)
    }

    /// [`Store::details`] and the pinned messages themselves (folded, in the same order):
    /// filtering the pins reads them anyway.
    pub fn details_and_pinned(
        &self,
        channel: &str,
    ) -> Result<(conversation::Details, Vec<StoredMessage>)> {
        let mut d = conversation::details(self.acts_on(channel, &conversation::CHANNEL)?);
        let (mut pins, mut pinned) = (Vec::with_capacity(d.pins.len()), Vec::new());
        for p in d.pins {
            match self.message(&p.0)? {
                Some(m)
                    if m.channel == channel
                        && !m.deleted
                        && !m.locked
                        && Act::is_message(m.act.as_ref()) =>
                {
                    pins.push(p);
                    pinned.push(m);
                }
                _ => {}
            }
        }
        d.pins = pins;
        Ok((d, pinned))
    }

    /// The messages that act on `target` in `channel` (not folded themselves).
    fn acts_on(&self, channel: &str, target: &MessageId) -> Result<Vec<StoredMessage>> {
        let mut p = prefix(ANNEX, channel);
        p.extend_from_slice(&target.0);
        let mut out = Vec::new();
        for kv in self.messages.scan_prefix(&p) {
            let (k, v) = kv?;
            let Ok(id) = <[u8; 32]>::try_from(&k[p.len()..]) else {
                continue;
            };
            let id = MessageId(id);
            let summary = self
                .unseal(&k, &v)
                .ok()
                .and_then(|b| serde_json::from_slice::<ActSummary>(&b).ok());
            match summary {
                Some(a) => out.push(StoredMessage {
                    id,
                    channel: channel.to_string(),
                    sender: a.sender,
                    device: a.device,
                    sent_at: a.sent_at,
                    text: a.text,
                    act: Some(a.act),
                    ..Default::default()
                }),
                // Damaged: read the act's own message instead.
                None => out.extend(self.rendered(&id)?),
            }
        }
        Ok(out)
    }

    /// Fold into `m` what acts on it (see [`conversation::fold`]).
    fn fold(&self, m: &mut StoredMessage, admins: &[String]) -> Result<()> {
        let mut acts = self.acts_on(&m.channel.clone(), &m.id)?;
        // A reply that was deleted is not counted in its thread.
        let deleted = |r: &StoredMessage| -> Result<bool> {
            let acts = self.acts_on(&r.channel, &r.id)?;
            let mut r = r.clone();
            conversation::fold(&mut r, acts, &|w| admins.iter().any(|a| a == w));
            Ok(r.deleted)
        };
        for a in &mut acts {
            if matches!(a.act, Some(Act::Reply { .. })) {
                a.deleted = deleted(a)?;
            }
        }
        conversation::fold(m, acts, &|w| admins.iter().any(|a| a == w));
        Ok(())
    }

    /// The admins of the org as of the newest roster held (deletions by an admin count).
    fn admins(&self) -> Vec<String> {
        self.get_meta(ADMINS)
            .ok()
            .flatten()
            .and_then(|v| postcard::from_bytes(&v).ok())
            .unwrap_or_default()
    }

    /// File the acts of `channel` that could not be read when they arrived (their key came
    /// later). Runs over the channel's history: called when keys arrive, off the event loop.
    pub fn annex_channel(&self, channel: &str) -> Result<usize> {
        let p = prefix(IDX, channel);
        let mut n = 0;
        for kv in self.messages.scan_prefix(&p) {
            let (k, v) = kv?;
            let Some(id) = id_at_end(&k) else {
                continue;
            };
            let Ok((rec, env)) = self.decode_record(&k, MessageId(id), &v) else {
                continue;
            };
            if let Some(m) = self.render(&env, rec.sender) {
                n += usize::from(self.file_act(&m)?);
            }
        }
        Ok(n)
    }

    /// Remember that message `id` of `channel`, which this device should be able to read,
    /// was stored before its key: [`Store::take_unlocked`] finds it when keys come, after a
    /// restart too (an in-memory list was lost with the process, and so was the message for
    /// integrations that take messages as they open).
    pub fn mark_locked(&self, channel: &str, id: &MessageId) -> Result<()> {
        let mut k = prefix(LOCKED, channel);
        k.extend_from_slice(&id.0);
        self.messages.insert(k, &[][..])?;
        Ok(())
    }

    /// The messages of `channel` marked locked that open now (rendered), no longer marked;
    /// those still locked stay marked, and those gone (swept) are forgotten.
    pub fn take_unlocked(&self, channel: &str) -> Result<Vec<StoredMessage>> {
        let mut opened = Vec::new();
        for kv in self.messages.scan_prefix(prefix(LOCKED, channel)) {
            let (k, _) = kv?;
            let Some(id) = id_at_end(&k) else { continue };
            match self.message(&MessageId(id))? {
                Some(m) if m.locked => continue,
                Some(m) => opened.push(m),
                None => {}
            }
            self.messages.remove(k)?;
        }
        Ok(opened)
    }

    /// How many messages of `channel` were sent after `after_ms` and neither by the device
    /// `except` nor by the member `member` (its other devices), counting at most `cap` (an
    /// unread badge shows "99+", not an exact huge number).
    pub fn count_after(
        &self,
        channel: &str,
        after_ms: u64,
        except: &DeviceId,
        member: Option<&str>,
        cap: usize,
    ) -> Result<usize> {
        let p = prefix(IDX, channel);
        let mut start = p.clone();
        start.extend_from_slice(&after_ms.saturating_add(1).to_be_bytes());
        let mut n = 0;
        for kv in self.messages.range(start..) {
            let (k, v) = kv?;
            if !k.starts_with(&p) || n >= cap {
                break;
            }
            // Reactions, edits and thread replies are not new messages of the channel.
            if id_at_end(&k).is_some_and(|id| {
                self.messages
                    .contains_key(act_key(&MessageId(id)))
                    .unwrap_or(false)
            }) {
                continue;
            }
            let counts = self
                .decode_record(&k, MessageId([0; 32]), &v)
                .is_ok_and(|(rec, env)| {
                    env.unsigned.author != *except
                        && member != Some(rec.sender.as_str())
                        && !env.is_keys()
                        // A reader's answer or reply is never a message of its own (a
                        // forged one is filed nowhere, so the check above misses it).
                        && env.reader_tag().is_none()
                });
            n += usize::from(counts);
        }
        Ok(n)
    }

    /// Replace the stored roster chain from `from` on with `versions`.
    pub fn put_rosters(&self, from: u64, versions: &[VerifiedRoster]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for kv in self.rosters.range(from.to_be_bytes()..) {
            batch.remove(kv?.0);
        }
        for r in versions.iter().filter(|r| r.version() >= from) {
            batch.insert(&r.version().to_be_bytes(), r.wire.clone());
        }
        self.rosters.apply_batch(batch)?;
        if let Some(head) = versions.last() {
            let admins: Vec<&str> = head
                .roster
                .members
                .iter()
                .filter(|m| m.role == crate::roster::Role::Admin)
                .map(|m| m.name.as_str())
                .collect();
            self.set_meta(
                ADMINS,
                &postcard::to_stdvec(&admins).expect("names serialize"),
            )?;
        }
        Ok(())
    }

    pub fn rosters(&self) -> Result<Vec<Vec<u8>>> {
        self.rosters
            .iter()
            .values()
            .map(|v| Ok(v?.to_vec()))
            .collect()
    }

    pub fn outbox_add(&self, id: &MessageId) -> Result<()> {
        self.outbox.insert(id.0, &[][..])?;
        Ok(())
    }

    pub fn outbox_remove(&self, id: &MessageId) -> Result<()> {
        self.outbox.remove(id.0)?;
        Ok(())
    }

    /// Forget every pending publish (catch-up sync still delivers the messages).
    pub fn outbox_clear(&self) -> Result<()> {
        self.outbox.clear()?;
        Ok(())
    }

    pub fn outbox(&self) -> Result<Vec<MessageId>> {
        self.outbox
            .iter()
            .keys()
            .map(|k| {
                let k = k?;
                Ok(MessageId(
                    k.as_ref()
                        .try_into()
                        .map_err(|_| Error::Corrupt("outbox key".into()))?,
                ))
            })
            .collect()
    }

    // ---- sealing ----------------------------------------------------------------------

    /// Open a value stored at `key`; a value written before sealing is returned as it is.
    fn unseal(&self, key: &[u8], v: &[u8]) -> Result<Vec<u8>> {
        if seal::is_sealed(v) {
            self.dk.open(key, v).map_err(|e| {
                Error::Corrupt(format!(
                    "a stored value does not open ({e}); restore the data directory from a backup or re-sync from a relay"
                ))
            })
        } else {
            Ok(v.to_vec())
        }
    }

    fn decode_record(&self, key: &[u8], id: MessageId, v: &[u8]) -> Result<(Record, Envelope)> {
        decode_record(id, &self.unseal(key, v)?)
    }

    /// App state (drafts and the like), sealed.
    pub fn set_private(&self, name: &str, value: &[u8]) -> Result<()> {
        let k = format!("private/{name}");
        self.meta
            .insert(k.as_bytes(), self.dk.seal(k.as_bytes(), value))?;
        Ok(())
    }

    pub fn get_private(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let k = format!("private/{name}");
        self.meta
            .get(k.as_bytes())?
            .map(|v| self.unseal(k.as_bytes(), &v))
            .transpose()
    }

    /// What this member saved for later, most recently saved first (sealed, on this device
    /// only).
    pub fn saved(&self) -> Result<Vec<MessageId>> {
        Ok(self
            .get_private(SAVED)?
            .and_then(|v| postcard::from_bytes::<Vec<MessageId>>(&v).ok())
            .unwrap_or_default())
    }

    /// What `member` saved for later, most recently saved first: their saves and unsaves
    /// from any of their devices (acts in their notes, [`conversation::saves`]: the latest
    /// for each message stands), then what this device's own list holds that no act
    /// mentions (saved before such acts, or with no running node to post one).
    pub fn saved_by(&self, member: Option<&str>) -> Result<Vec<MessageId>> {
        let local = self.saved()?;
        let Some(member) = member else {
            return Ok(local);
        };
        let notes = crate::roster::notes_channel(member);
        let acts = conversation::saves(self.acts_on(&notes, &conversation::CHANNEL)?, member);
        let mut out: Vec<MessageId> = acts
            .iter()
            .filter(|(_, on)| *on)
            .map(|(of, _)| *of)
            .collect();
        out.extend(
            local
                .into_iter()
                .filter(|id| !acts.iter().any(|(of, _)| of == id)),
        );
        out.truncate(MAX_SAVED);
        Ok(out)
    }

    /// Save message `id` for later (`on`: one this device holds), or take it off the list,
    /// durably; saying so when that changes nothing.
    pub fn set_saved(&self, id: &MessageId, on: bool) -> Result<()> {
        if self.saved()?.contains(id) == on {
            return Err(Error::Conflict(match on {
                true => format!("message {id} is saved already"),
                false => format!("message {id} is not among those saved"),
            }));
        }
        self.keep_saved(id, on)
    }

    /// [`Store::set_saved`] whatever this device's list says now: `on` puts `id` first.
    pub fn keep_saved(&self, id: &MessageId, on: bool) -> Result<()> {
        if on && !self.has_message(id)? {
            return Err(Error::Invalid(format!("no message {id} on this device")));
        }
        let mut all = self.saved()?;
        all.retain(|x| x != id);
        if on {
            all.insert(0, *id);
            all.truncate(MAX_SAVED);
        }
        self.set_private(SAVED, &postcard::to_stdvec(&all).expect("ids serialize"))?;
        self.flush()
    }

    /// Whether this database was written sealed (or has been migrated).
    pub fn is_sealed(&self) -> Result<bool> {
        Ok(self.get_meta("sealed")?.is_some())
    }

    /// Migrate a database written before sealing: copy it into a fresh database with every
    /// message record and end-to-end key sealed, swap the two, and shred the old files.
    /// Rewriting values in place would not do: sled is log-structured, and the plaintext
    /// would stay in old segments. Each step is resumable (see [`Store::finish_migration`]).
    pub fn migrate_to_sealed(path: &Path, dk: &DataKey) -> Result<usize> {
        let next = path.with_extension("sealing");
        if next.exists() {
            std::fs::remove_dir_all(&next).map_err(|e| Error::io(&next, e))?;
        }
        let mut n = 0;
        {
            let old = Store::open(path, dk.clone())?;
            let new = sled::Config::new()
                .path(&next)
                .flush_every_ms(None)
                .open()?;
            for name in old.db.tree_names() {
                let (from, to) = (old.db.open_tree(&name)?, new.open_tree(&name)?);
                let seal_all = name.as_ref() == b"e2e";
                let seal_idx = name.as_ref() == b"messages";
                for kv in from.iter() {
                    let (k, v) = kv?;
                    let plain =
                        !seal::is_sealed(&v) && (seal_all || (seal_idx && k.first() == Some(&IDX)));
                    if plain {
                        to.insert(&k, dk.seal(&k, &v))?;
                        n += 1;
                    } else {
                        to.insert(&k, v)?;
                    }
                }
            }
            new.open_tree("meta")?.insert("sealed", b"1")?;
            new.flush()?;
        }
        let old = path.with_extension("plain-old");
        std::fs::rename(path, &old).map_err(|e| Error::io(path, e))?;
        std::fs::rename(&next, path).map_err(|e| Error::io(&next, e))?;
        Self::finish_migration(path)?;
        Ok(n)
    }

    /// Complete a migration a crash interrupted: the sealed copy is moved in place if the
    /// swap was cut short, and the old plaintext files are shredded.
    pub fn finish_migration(path: &Path) -> Result<()> {
        let (next, old) = (
            path.with_extension("sealing"),
            path.with_extension("plain-old"),
        );
        if !path.exists() && next.exists() {
            std::fs::rename(&next, path).map_err(|e| Error::io(&next, e))?;
        }
        if old.exists() {
            fn shred_all(dir: &Path) -> Result<()> {
                for e in std::fs::read_dir(dir)
                    .map_err(|e| Error::io(dir, e))?
                    .flatten()
                {
                    let p = e.path();
                    if p.is_dir() {
                        shred_all(&p)?;
                    } else {
                        seal::shred(&p)?;
                    }
                }
                Ok(())
            }
            shred_all(&old)?;
            std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        Ok(())
    }

    // ---- end-to-end keys --------------------------------------------------------------

    /// What the user sees of a stored envelope: `None` for key grants (not a message),
    /// the text when it opens, a locked placeholder when its key is not held.
    pub fn render(&self, env: &Envelope, sender: String) -> Option<StoredMessage> {
        self.render_with(env, sender, true)
    }

    /// [`Store::render`]; `check_forwards`: see [`Store::rendered_with`].
    fn render_with(
        &self,
        env: &Envelope,
        sender: String,
        check_forwards: bool,
    ) -> Option<StoredMessage> {
        let u = &env.unsigned;
        let mut file = None;
        let mut act = None;
        let mut forwarded = None;
        let mut poll = None;
        let (text, locked) = if u.format == PLAINTEXT_FORMAT {
            (String::from_utf8_lossy(&u.body).into_owned(), false)
        } else {
            // Decoded once: the blob reference (if any) is needed below whatever opens.
            let reader_tag = env.reader_tag();
            let (key, nonce, ciphertext, blob) = match env.content()? {
                Content::Keys(_) => return None,
                Content::Sealed {
                    key,
                    nonce,
                    ciphertext,
                }
                | Content::Response {
                    key,
                    nonce,
                    ciphertext,
                }
                | Content::ThreadReply {
                    key,
                    nonce,
                    ciphertext,
                } => (key, nonce, ciphertext, None),
                Content::File {
                    blob,
                    key,
                    nonce,
                    ciphertext,
                } => (key, nonce, ciphertext, Some(blob)),
            };
            let opened = self
                .key(&u.channel, &key)
                .ok()
                .flatten()
                .and_then(|k| e2e::open(&k, &u.channel, &u.author, &nonce, &ciphertext));
            // A reader's answer is a reaction, a vote or a read receipt, and its reply a reply
            // in a thread, an edit or a deletion, or nothing at all: the rules took it from
            // someone who may not post here (a modified client may put anything in it), and
            // while its key is missing it is no row either.
            if reader_tag.is_some_and(|t| !opened.as_ref().is_some_and(|p| t.holds(p))) {
                return None;
            }
            match opened {
                Some(Plain::Text(t)) => (t, false),
                Some(Plain::Reply {
                    to,
                    text,
                    also_channel,
                }) => {
                    act = Some(Act::Reply { to, also_channel });
                    (text, false)
                }
                Some(Plain::Edit { of, text }) => {
                    act = Some(Act::Edit { of });
                    (text, false)
                }
                Some(Plain::Delete { of }) => {
                    act = Some(Act::Delete { of });
                    (String::new(), false)
                }
                Some(Plain::React { to, emoji, on }) => {
                    act = Some(Act::React { to, emoji, on });
                    (String::new(), false)
                }
                Some(Plain::Read { upto }) => {
                    act = Some(Act::Read { upto });
                    (String::new(), false)
                }
                Some(Plain::Topic { topic, description }) => {
                    act = Some(Act::Topic {
                        topic: topic.clone(),
                        description,
                    });
                    (topic, false)
                }
                Some(Plain::Pin { of, on }) => {
                    act = Some(Act::Pin { of, on });
                    (String::new(), false)
                }
                Some(Plain::Join { on }) => {
                    act = Some(Act::Join { on });
                    (String::new(), false)
                }
                Some(Plain::Forward { text, from }) => {
                    let check = match check_forwards {
                        true => self.forward_check(&from, |raw| self.same_text(raw, &text)),
                        false => crate::conversation::ForwardCheck::Unseen,
                    };
                    forwarded = Some(crate::conversation::ForwardView::of(from, check));
                    (text, false)
                }
                Some(Plain::Poll {
                    question,
                    options,
                    multi,
                }) => match crate::conversation::check_poll(&question, &options) {
                    Ok(()) => {
                        poll = Some(crate::conversation::PollView {
                            options: options
                                .into_iter()
                                .map(|text| crate::conversation::PollOption {
                                    text,
                                    voters: Vec::new(),
                                })
                                .collect(),
                            multi,
                            closed: None,
                        });
                        (question, false)
                    }
                    // Options that read alike or too many: the author's client is broken or
                    // modified; votes on it would not count as their voters meant.
                    Err(_) => ("[a poll this app cannot show]".to_string(), false),
                },
                Some(Plain::Vote { poll, choices }) => {
                    act = Some(Act::Vote { poll, choices });
                    (String::new(), false)
                }
                Some(Plain::ClosePoll { of }) => {
                    act = Some(Act::ClosePoll { of });
                    (String::new(), false)
                }
                Some(Plain::Save { of, on }) => {
                    act = Some(Act::Save { of, on });
                    (String::new(), false)
                }
                Some(Plain::Remind { of, at, on }) => {
                    act = Some(Act::Remind { of, at, on });
                    (String::new(), false)
                }
                Some(Plain::Pause { until }) => {
                    act = Some(Act::Pause { until });
                    (String::new(), false)
                }
                // The channel is named in the text too, for exports.
                Some(Plain::Notify { channel, notify }) => {
                    act = Some(Act::Notify {
                        channel: channel.clone(),
                        notify,
                    });
                    (channel, false)
                }
                Some(Plain::Hours { hours }) => {
                    act = Some(Act::Hours { hours });
                    (String::new(), false)
                }
                Some(Plain::Star { channel, on }) => {
                    act = Some(Act::Star {
                        channel: channel.clone(),
                        on,
                    });
                    (channel, false)
                }
                Some(Plain::Unread { channel, from }) => {
                    act = Some(Act::Unread {
                        channel: channel.clone(),
                        from,
                    });
                    (channel, false)
                }
                Some(Plain::Seen { thread, upto }) => {
                    act = Some(Act::Seen { thread, upto });
                    (String::new(), false)
                }
                Some(Plain::File(info)) => match file_view(blob, &info) {
                    Some(view) => {
                        file = Some(view);
                        (info.caption.clone(), false)
                    }
                    None => (BROKEN_FILE.to_string(), false),
                },
                Some(Plain::ForwardFile { file: info, from }) => match file_view(blob, &info) {
                    Some(view) => {
                        let check = match check_forwards {
                            true => self.forward_check(&from, |raw| Self::same_file(raw, &info)),
                            false => crate::conversation::ForwardCheck::Unseen,
                        };
                        file = Some(view);
                        forwarded = Some(crate::conversation::ForwardView::of(from, check));
                        (info.caption.clone(), false)
                    }
                    None => (BROKEN_FILE.to_string(), false),
                },
                None => {
                    // A file whose key is not here (yet): its blob is still known, so that a
                    // relay can list what it stores; name and type stay sealed.
                    if let Some(blob) = blob {
                        file = Some(FileView {
                            blob: blob.id,
                            name: String::new(),
                            mime: String::new(),
                            size: blob.size,
                        });
                    }
                    (LOCKED_TEXT.to_string(), true)
                }
            }
        };
        Some(StoredMessage {
            id: env.id,
            channel: u.channel.clone(),
            sender,
            device: u.author,
            sent_at: u.sent_at,
            text,
            locked,
            file,
            act,
            forwarded,
            poll,
            ..Default::default()
        })
    }

    /// The blob and the opened description (with its key) of a stored file message.
    pub fn file_of(
        &self,
        id: &MessageId,
    ) -> Result<Option<(crate::files::BlobRef, crate::files::FileInfo, String)>> {
        let Some(wire) = self.message_wire(id)? else {
            return Ok(None);
        };
        let env = Envelope::decode_unverified(&wire)
            .map_err(|e| Error::Corrupt(format!("stored message {id} is damaged: {e}")))?;
        let u = &env.unsigned;
        let Some(Content::File {
            blob,
            key,
            nonce,
            ciphertext,
        }) = env.content()
        else {
            return Ok(None);
        };
        let Some(k) = self.key(&u.channel, &key)? else {
            return Err(Error::NotReady(format!(
                "this device has no key for '{}' yet; the file opens once a reader's device sends it",
                u.channel
            )));
        };
        match e2e::open(&k, &u.channel, &u.author, &nonce, &ciphertext) {
            Some(Plain::File(info) | Plain::ForwardFile { file: info, .. })
                if info.size == blob.size =>
            {
                Ok(Some((blob, info, u.channel.clone())))
            }
            _ => Ok(None),
        }
    }

    fn key_key(channel: &str, id: &KeyId) -> Vec<u8> {
        let mut k = prefix(KEY, channel);
        k.extend_from_slice(&id.0);
        k
    }

    /// Keep a sender key of `channel`. Returns `false` if it was already held.
    pub fn put_key(&self, channel: &str, key: &ChannelKey) -> Result<bool> {
        let k = Self::key_key(channel, &key.id());
        if self.e2e.contains_key(&k)? {
            return Ok(false);
        }
        self.e2e.insert(&k, self.dk.seal(&k, &key.0))?;
        Ok(true)
    }

    pub fn key(&self, channel: &str, id: &KeyId) -> Result<Option<ChannelKey>> {
        let k = Self::key_key(channel, id);
        if let Some(key) = self.key_cache.read().expect("not poisoned").get(&k) {
            return Ok(Some(key.clone()));
        }
        let key = match self.e2e.get(&k)? {
            Some(v) => <[u8; 32]>::try_from(self.unseal(&k, &v)?.as_slice())
                .ok()
                .map(ChannelKey),
            None => None,
        };
        if let Some(key) = &key {
            self.key_cache
                .write()
                .expect("not poisoned")
                .insert(k, key.clone());
        }
        Ok(key)
    }

    /// Every key held for `channel`.
    pub fn keys_of(&self, channel: &str) -> Result<Vec<ChannelKey>> {
        let mut out = Vec::new();
        for kv in self.e2e.scan_prefix(prefix(KEY, channel)) {
            let (k, v) = kv?;
            if let Ok(k) = <[u8; 32]>::try_from(self.unseal(&k, &v)?.as_slice()) {
                out.push(ChannelKey(k));
            }
        }
        Ok(out)
    }

    pub fn sender_state(&self, channel: &str) -> Result<SenderState> {
        let mut k = vec![SENDER];
        k.extend_from_slice(channel.as_bytes());
        match self.e2e.get(&k)? {
            None => Ok(SenderState::default()),
            Some(v) => postcard::from_bytes(&self.unseal(&k, &v)?)
                .map_err(|e| Error::Corrupt(format!("key state of '{channel}' is damaged: {e}"))),
        }
    }

    pub fn set_sender_state(&self, channel: &str, st: &SenderState) -> Result<()> {
        let mut k = vec![SENDER];
        k.extend_from_slice(channel.as_bytes());
        let v = self
            .dk
            .seal(&k, &postcard::to_stdvec(st).expect("state serializes"));
        self.e2e.insert(k, v)?;
        Ok(())
    }

    /// Refuse to write when fewer than `need` bytes plus [`min_free`] are free on the
    /// database's disk. sled fails for good after one write hits a full disk (its error is
    /// sticky until the database is reopened), so a node must never get there: with this
    /// guard a full disk refuses new writes with a clear error, and writing resumes by
    /// itself once there is room.
    ///
    /// One `statvfs` per write, except while the last one, under [`ROOMY_FOR`] ago, found
    /// over [`ROOMY`] to spare: a message stream then pays one every 20 ms instead of one
    /// per message (~2 % of a busy node's CPU). A reading cached for longer, or with less
    /// room, let a file that filled the disk in between slip past; to spend a GiB in 20 ms
    /// a writer needs 50 GB/s.
    pub fn ensure_space(&self, need: u64) -> Result<()> {
        let now = std::time::Instant::now();
        let roomy_until = || self.roomy_until.lock().unwrap_or_else(|e| e.into_inner());
        if need < ROOMY / 1024 && roomy_until().is_some_and(|t| now < t) {
            return Ok(());
        }
        if crate::files::blobs::ensure_space(self.dir.as_path(), need)? >= ROOMY {
            *roomy_until() = Some(now + ROOMY_FOR);
        }
        Ok(())
    }

    /// Free space on the database's disk, when it can be measured.
    pub fn disk_free(&self) -> Option<u64> {
        fs2::available_space(self.dir.as_path()).ok()
    }

    /// Another tree of the same database (files keep their index beside the messages, so
    /// one group commit covers both).
    pub fn tree(&self, name: &str) -> Result<sled::Tree> {
        Ok(self.db.open_tree(name)?)
    }

    pub fn flush(&self) -> Result<()> {
        self.write_heads()?;
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceKey;
    use crate::message::Unsigned;
    use proptest::prelude::Just;
    use proptest::strategy::Strategy;

    fn sign(key: &DeviceKey, seq: u64, prev: Option<MessageId>) -> Envelope {
        Envelope::sign(
            key,
            Unsigned {
                format: PLAINTEXT_FORMAT,
                author: key.id(),
                channel: "general".into(),
                sent_at: 1_700_000_000_000 + seq,
                seq,
                prev,
                body: format!("message {seq}").into_bytes(),
            },
        )
    }

    /// Intake's dedupe step runs on frames not verified yet: it reads no head for an author
    /// it has not met (a peer naming a new author in each frame would fill memory), and
    /// still finds a stored message (a replay) and an exact copy in the batch.
    #[test]
    fn a_message_is_found_by_the_first_digits_of_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), DataKey::generate()).unwrap();
        let key = DeviceKey::generate();
        let mut envs = vec![sign(&key, 1, None)];
        for seq in 2..=200 {
            let prev = envs.last().map(|e: &Envelope| e.id);
            envs.push(sign(&key, seq, prev));
        }
        for e in &envs {
            store.insert_message(e, "amina").unwrap();
        }
        for e in &envs {
            let hex = e.id.to_string();
            assert_eq!(store.message_by_prefix(&e.id.short()).unwrap(), e.id);
            assert_eq!(store.message_by_prefix(&hex[..7]).unwrap(), e.id);
            assert_eq!(store.message_by_prefix(&hex.to_uppercase()).unwrap(), e.id);
        }
        let refused = |p: &str| store.message_by_prefix(p).unwrap_err().to_string();
        assert!(refused(&envs[0].id.to_string()[..5]).contains("6 or more"));
        assert!(refused("zz12345").contains("not a message id"));
        // Two ids that share their first six digits (written as the store writes an id's
        // lookup): six name neither, seven or more each.
        let twins = [[0xab, 0xcd, 0xef, 0x10], [0xab, 0xcd, 0xef, 0x20]].map(|start| {
            let mut id = [7u8; 32];
            id[..4].copy_from_slice(&start);
            store
                .messages
                .insert(msg_key(&MessageId(id)), vec![])
                .unwrap();
            MessageId(id)
        });
        assert!(refused("abcdef").contains("several messages"));
        assert_eq!(store.message_by_prefix("abcdef1").unwrap(), twins[0]);
        assert_eq!(store.message_by_prefix("ABCDEF20").unwrap(), twins[1]);
        assert!(refused("abcdef3").contains("no message"));
    }

    #[test]
    fn the_dedupe_step_adds_no_head_for_unverified_authors() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), DataKey::generate()).unwrap();
        let known = DeviceKey::generate();
        let first = sign(&known, 1, None);
        store.insert_message(&first, "amina").unwrap();
        let strangers: Vec<Envelope> = (0..50)
            .map(|_| sign(&DeviceKey::generate(), 1, None))
            .collect();
        let second = sign(&known, 2, Some(first.id));
        let mut batch = strangers.clone();
        batch.extend([first.clone(), second.clone(), second]);
        let dup = crate::proto::intake::duplicates(&store, &batch);
        assert_eq!(&dup[50..], [true, false, true], "replay, new, copy");
        assert!(dup[..50].iter().all(|d| !d));
        for e in &strangers {
            assert_eq!(store.cached_top("general", &e.unsigned.author), None);
        }
        assert_eq!(store.cached_top("general", &known.id()), Some(1));
    }

    proptest::proptest! {
        /// Whatever order an author's messages arrive in, the head is the contiguous prefix
        /// held and the highest seq held (the head bounds which log entries `insert_message`
        /// reads, so a wrong bound would leave the prefix behind).
        #[test]
        fn the_head_follows_any_arrival_order(order in Just((1..=12u64).collect::<Vec<_>>()).prop_shuffle()) {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path(), DataKey::generate()).unwrap();
            let key = DeviceKey::generate();
            let mut envs = vec![sign(&key, 1, None)];
            for seq in 2..=12 {
                let prev = envs.last().map(|e: &Envelope| e.id);
                envs.push(sign(&key, seq, prev));
            }
            let mut held = std::collections::BTreeSet::new();
            for seq in order {
                store.insert_message(&envs[seq as usize - 1], "amina").unwrap();
                held.insert(seq);
                let prefix = (1..).take_while(|s| held.contains(s)).count() as u64;
                let max = *held.last().unwrap();
                proptest::prop_assert_eq!(store.head("general", &key.id()).unwrap(), (prefix, max));
            }
        }
    }

    /// A crash keeps a prefix of a message's writes. Whichever prefix it kept, the message
    /// arriving again (from a peer, by catch-up) leaves it held, counted in its author's
    /// prefix, and readable.
    #[test]
    fn any_prefix_of_a_messages_writes_is_completed_when_it_arrives_again() {
        let dir = tempfile::tempdir().unwrap();
        let dk = DataKey::generate();
        let store = Store::open(&dir.path().join("full"), dk.clone()).unwrap();
        let key = DeviceKey::generate();
        let one = sign(&key, 1, None);
        let two = sign(&key, 2, Some(one.id));
        store.insert_message(&one, "amina").unwrap();
        let mut sub = store.messages.watch_prefix(Vec::<u8>::new());
        store.insert_message(&two, "amina").unwrap();
        let mut writes = Vec::new();
        while let Ok(ev) = sub.next_timeout(std::time::Duration::from_millis(200)) {
            writes.push(ev);
        }
        assert!(writes.len() >= 3, "{} writes", writes.len());
        for k in 0..=writes.len() {
            let path = dir.path().join(k.to_string());
            let s = Store::open(&path, dk.clone()).unwrap();
            s.insert_message(&one, "amina").unwrap();
            s.flush().unwrap();
            for ev in &writes[..k] {
                match ev {
                    sled::Event::Insert { key, value } => {
                        s.messages.insert(key, value.clone()).unwrap();
                    }
                    sled::Event::Remove { key } => {
                        s.messages.remove(key).unwrap();
                    }
                }
            }
            // The crash: what was in memory (the heads) is gone.
            drop(s);
            let s = Store::open(&path, dk.clone()).unwrap();
            s.insert_message(&two, "amina").unwrap();
            let after = format!("after {k} of {} writes", writes.len());
            assert_eq!(s.head("general", &key.id()).unwrap(), (2, 2), "{after}");
            assert!(s.has_message(&two.id).unwrap(), "{after}");
            assert_eq!(
                s.message(&two.id).unwrap().map(|m| m.id),
                Some(two.id),
                "{after}"
            );
        }
    }

    /// Heads are written at a flush, so a crash can leave the heads on disk behind the log
    /// (here: never written at all). The next process reads them right from the log,
    /// holes included.
    #[test]
    fn heads_left_behind_by_a_crash_are_read_right_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let dk = DataKey::generate();
        let key = DeviceKey::generate();
        let mut envs = vec![sign(&key, 1, None)];
        for seq in 2..=6 {
            let prev = envs.last().map(|e: &Envelope| e.id);
            envs.push(sign(&key, seq, prev));
        }
        {
            let s = Store::open(dir.path(), dk.clone()).unwrap();
            s.insert_message(&envs[0], "amina").unwrap();
            s.flush().unwrap(); // head (1, 1) on disk
            for e in [&envs[1], &envs[2], &envs[4]] {
                s.insert_message(e, "amina").unwrap();
            }
            assert_eq!(s.head("general", &key.id()).unwrap(), (3, 5));
            // No flush: sled keeps the writes (its own flush at drop), the heads in memory
            // are lost as in a crash.
            s.messages.flush().unwrap();
        }
        let s = Store::open(dir.path(), dk.clone()).unwrap();
        assert_eq!(s.head("general", &key.id()).unwrap(), (3, 5));
        assert_eq!(
            s.heads("general").unwrap().get(&key.id()).copied(),
            Some((3, 5))
        );
        // The hole at 4 filled: the prefix runs to 5, then on past 6.
        s.insert_message(&envs[3], "amina").unwrap();
        assert_eq!(s.head("general", &key.id()).unwrap(), (5, 5));
        s.insert_message(&envs[5], "amina").unwrap();
        assert_eq!(s.head("general", &key.id()).unwrap(), (6, 6));
        s.flush().unwrap();
        drop(s);
        let s = Store::open(dir.path(), dk).unwrap();
        assert_eq!(s.head("general", &key.id()).unwrap(), (6, 6));
    }

    /// The writes a watch saw so far.
    fn drain(sub: &mut sled::Subscriber) -> Vec<sled::Event> {
        let mut writes = Vec::new();
        while let Ok(ev) = sub.next_timeout(std::time::Duration::from_millis(200)) {
            writes.push(ev);
        }
        writes
    }

    /// A crash that kept these writes (a prefix of what a process wrote) and nothing after.
    fn crash_after(s: Store, writes: &[sled::Event]) {
        for ev in writes {
            if let sled::Event::Insert { key, value } = ev {
                s.messages.insert(key, value.clone()).unwrap();
            }
        }
        s.messages.flush().unwrap();
    }

    /// A crash can keep the history record of our own last message and lose its log entry:
    /// shown here, never served nor chained to, it would reach nobody. Whichever prefix of
    /// its writes a crash kept, the next start leaves it either not shown at all or held
    /// in full: in the log, served, and the message the next one chains to.
    #[test]
    fn a_crash_start_completes_our_own_half_written_message() {
        let dir = tempfile::tempdir().unwrap();
        let dk = DataKey::generate();
        let key = DeviceKey::generate();
        let me = key.id();
        let one = sign(&key, 1, None);
        let two = sign(&key, 2, Some(one.id));
        let writes = {
            let s = Store::open(&dir.path().join("full"), dk.clone()).unwrap();
            s.insert_message(&one, "amina").unwrap();
            let mut sub = s.messages.watch_prefix(Vec::<u8>::new());
            s.insert_message(&two, "amina").unwrap();
            drain(&mut sub)
        };
        assert!(writes.len() >= 3, "{} writes", writes.len());
        for k in 0..=writes.len() {
            let path = dir.path().join(k.to_string());
            let s = Store::open(&path, dk.clone()).unwrap();
            assert_eq!(s.next_own("general", &me).unwrap().0, 1);
            s.insert_message(&one, "amina").unwrap();
            assert_eq!(s.next_own("general", &me).unwrap().0, 2);
            s.mark_running().unwrap();
            crash_after(s, &writes[..k]);
            let s = Store::open(&path, dk.clone()).unwrap();
            s.resume_reservations(&me).unwrap();
            let after = format!("after {k} of {} writes", writes.len());
            let shown = s
                .history("general", 10)
                .unwrap()
                .iter()
                .any(|m| m.id == two.id);
            let held = s.has_message(&two.id).unwrap();
            assert_eq!(shown, held, "{after}: shown {shown}, held {held}");
            let (_, prev) = s.next_own("general", &me).unwrap();
            assert_eq!(prev, Some(if shown { two.id } else { one.id }), "{after}");
            if shown {
                assert_eq!(s.own_head("general", &me).unwrap(), (2, Some(two.id)));
                assert!(s.message_wire(&two.id).unwrap().is_some(), "{after}");
            }
        }
    }

    /// The same for a peer's message: whichever prefix of its writes a crash kept, the next
    /// start counts it held (what catch-up tells peers) exactly when it can be served, so
    /// catch-up asks for what is missing; and the copy fetched again makes it whole.
    #[test]
    fn a_crash_start_drops_a_peers_half_written_message_so_catch_up_fetches_it() {
        let dir = tempfile::tempdir().unwrap();
        let dk = DataKey::generate();
        let me = DeviceKey::generate().id();
        let peer = DeviceKey::generate();
        let (one, two) = {
            let one = sign(&peer, 1, None);
            let two = sign(&peer, 2, Some(one.id));
            (one, two)
        };
        let three = sign(&peer, 3, Some(two.id));
        let writes = {
            let s = Store::open(&dir.path().join("full"), dk.clone()).unwrap();
            s.insert_message(&one, "bilal").unwrap();
            s.flush().unwrap();
            let mut sub = s.messages.watch_prefix(Vec::<u8>::new());
            s.insert_message(&two, "bilal").unwrap();
            s.insert_message(&three, "bilal").unwrap();
            s.flush().unwrap();
            drain(&mut sub)
        };
        assert!(writes.len() >= 7, "{} writes", writes.len());
        let mut dropped = 0;
        for k in 0..=writes.len() {
            let path = dir.path().join(k.to_string());
            let s = Store::open(&path, dk.clone()).unwrap();
            s.insert_message(&one, "bilal").unwrap();
            s.flush().unwrap();
            s.mark_running().unwrap();
            crash_after(s, &writes[..k]);
            let s = Store::open(&path, dk.clone()).unwrap();
            dropped += s.drop_unfinished_logs().unwrap();
            s.resume_reservations(&me).unwrap();
            let after = format!("after {k} of {} writes", writes.len());
            let held = |e: &Envelope| s.message_wire(&e.id).unwrap().is_some();
            let counted = s.head("general", &peer.id()).unwrap().0;
            let served = 1 + u64::from(held(&two)) + u64::from(held(&two) && held(&three));
            assert_eq!(
                counted, served,
                "{after}: counted {counted}, served {served}"
            );
            // Catch-up brings back what is missing; nothing is stored twice.
            for e in [&two, &three] {
                s.insert_message(e, "bilal").unwrap();
            }
            assert_eq!(s.head("general", &peer.id()).unwrap(), (3, 3), "{after}");
            let shown = s.history("general", 10).unwrap();
            assert_eq!(shown.len(), 3, "{after}");
            assert!(held(&two) && held(&three), "{after}");
        }
        assert!(
            dropped > 0,
            "some prefix left a log entry without its id index"
        );
    }

    /// A session whose peer sent some of our own messages (its last request stated a
    /// higher `have` than the hole's start) still covered the hole it started from: closed,
    /// not asked for again at every round. A hole reaching past what a session can bring
    /// stays.
    #[test]
    fn a_whole_session_closes_the_holes_it_started_from() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), DataKey::generate()).unwrap();
        let me = DeviceKey::generate().id();
        store.next_own("general", &me).unwrap();
        assert_eq!(store.recover_from("general").unwrap(), Some((me, 0)));
        store.close_holes("general", 5).unwrap();
        assert_eq!(store.recover_from("general").unwrap(), None);
        let far = 5 + crate::sync::MAX_GAP + 1;
        store.set_holes("general", &me, &[(1, far)]).unwrap();
        store.close_holes("general", 5).unwrap();
        assert_eq!(store.recover_from("general").unwrap(), Some((me, 1)));
    }

    #[test]
    fn seqs_are_reserved_ahead_skipped_after_a_crash_and_given_back_at_a_clean_stop() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), DataKey::generate()).unwrap();
        let key = DeviceKey::generate();
        let me = key.id();
        // The first message reserves 1..=RESERVE; the next ones need no new reservation.
        assert_eq!(store.next_own("general", &me).unwrap(), (1, None));
        assert_eq!(store.reservation("general").unwrap(), (RESERVE, 0));
        // A first message also has peers asked once for what they hold of ours there (an
        // older copy of this directory would sign seqs they hold others at).
        assert_eq!(store.recover_from("general").unwrap(), Some((me, 0)));
        store.close_holes("general", 0).unwrap();
        let one = sign(&key, 1, None);
        store.insert_message(&one, "amina").unwrap();
        assert_eq!(store.next_own("general", &me).unwrap(), (2, Some(one.id)));
        assert_eq!(store.reservation("general").unwrap(), (RESERVE, 0));

        // Composed offline (no node ran): a start skips nothing.
        store.resume_reservations(&me).unwrap();
        assert_eq!(store.next_own("general", &me).unwrap().0, 2);
        // A start after a node crashed (it ran and did not give the reservation back): seq
        // 2 may have been published and lost, so the next message skips the reservation.
        store.mark_running().unwrap();
        store.resume_reservations(&me).unwrap();
        assert_eq!(
            store.next_own("general", &me).unwrap(),
            (RESERVE + 1, Some(one.id))
        );
        assert_eq!(
            store.reservation("general").unwrap(),
            (2 * RESERVE, RESERVE)
        );
        // ...and the hole is asked back from peers until a session covered it (as every
        // start asks for what followed seq 1).
        assert_eq!(store.recover_from("general").unwrap(), Some((me, 1)));
        store.close_holes("general", 1).unwrap();
        assert_eq!(store.recover_from("general").unwrap(), None);

        // The skip moves the prefix past the hole, here and at any holder.
        let skip = sign(&key, RESERVE + 1, Some(one.id));
        store.insert_message(&skip, "amina").unwrap();
        assert_eq!(
            store.head("general", &me).unwrap(),
            (RESERVE + 1, RESERVE + 1)
        );
        // A holder that had the lost seq 2 passes the skip too.
        let lost = sign(&key, 2, Some(one.id));
        let other = Store::open(&dir.path().join("other"), DataKey::generate()).unwrap();
        for env in [&one, &lost, &skip] {
            other.insert_message(env, "amina").unwrap();
        }
        assert_eq!(
            other.head("general", &me).unwrap(),
            (RESERVE + 1, RESERVE + 1)
        );

        // A clean stop gives the unused seqs back: the next start skips nothing.
        store.release_reservations(&me).unwrap();
        store.resume_reservations(&me).unwrap();
        let (seq, _) = store.next_own("general", &me).unwrap();
        assert_eq!(seq, RESERVE + 2);
    }
}
