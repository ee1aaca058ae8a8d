//! Persistent state in sled: message history with a per-channel index, the roster chain, the
//! outbox and this device's per-channel message chain heads.
//!
//! A message and its index entry are written in one atomic batch, so a crash never leaves one
//! without the other. Nothing here flushes: callers group-commit (write many, flush once,
//! then acknowledge all), which is what makes durable writes fast.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::identity::{DeviceId, OrgId};
use crate::message::{Envelope, MessageId};
use crate::roster::VerifiedRoster;

// Key spaces of the `messages` tree.
const MSG: u8 = b'm'; // m | id -> Record
const IDX: u8 = b'c'; // c | channel | 0 | sent_at(be) | id -> ()
const HEAD: u8 = b'h'; // h | channel -> own (seq, id)

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
}

#[derive(Serialize, Deserialize)]
struct Record {
    sender: String,
    wire: Vec<u8>,
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    messages: sled::Tree,
    rosters: sled::Tree,
    outbox: sled::Tree,
}

fn idx_prefix(channel: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(channel.len() + 2);
    k.push(IDX);
    k.extend_from_slice(channel.as_bytes());
    k.push(0);
    k
}

fn msg_key(id: &MessageId) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = MSG;
    k[1..].copy_from_slice(&id.0);
    k
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let db = sled::Config::new()
            .path(path)
            // Flushing is ours (group commit); sled's background flusher would add latency.
            .flush_every_ms(None)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => Error::Invalid(format!(
                    "{} is in use by another Majlis process; stop it or talk to it through `majlisd` commands",
                    path.display()
                )),
                sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => Error::Corrupt(format!(
                    "the database at {} is corrupt ({e}); move it away and restore from a backup or re-sync from a relay",
                    path.display()
                )),
                other => Error::Db(other),
            })?;
        Ok(Store {
            meta: db.open_tree("meta")?,
            messages: db.open_tree("messages")?,
            rosters: db.open_tree("rosters")?,
            outbox: db.open_tree("outbox")?,
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
    /// stored and shown once). `own_head` also advances this device's chain in the same batch.
    pub fn insert_message(&self, env: &Envelope, sender: &str, own: bool) -> Result<bool> {
        let key = msg_key(&env.id);
        if self.messages.contains_key(key)? {
            return Ok(false);
        }
        let u = &env.unsigned;
        let rec = postcard::to_stdvec(&Record {
            sender: sender.to_string(),
            wire: env.wire.clone(),
        })
        .expect("record serializes");
        let mut idx = idx_prefix(&u.channel);
        idx.extend_from_slice(&u.sent_at.to_be_bytes());
        idx.extend_from_slice(&env.id.0);
        let mut batch = sled::Batch::default();
        batch.insert(&key[..], rec);
        batch.insert(idx, &[][..]);
        if own {
            let mut h = vec![HEAD];
            h.extend_from_slice(u.channel.as_bytes());
            let mut v = u.seq.to_be_bytes().to_vec();
            v.extend_from_slice(&env.id.0);
            batch.insert(h, v);
        }
        self.messages.apply_batch(batch)?;
        Ok(true)
    }

    /// This device's last (sequence number, id) in `channel`.
    pub fn own_head(&self, channel: &str) -> Result<(u64, Option<MessageId>)> {
        let mut h = vec![HEAD];
        h.extend_from_slice(channel.as_bytes());
        Ok(match self.messages.get(h)? {
            Some(v) if v.len() == 40 => (
                u64::from_be_bytes(v[..8].try_into().expect("8")),
                Some(MessageId(v[8..].try_into().expect("32"))),
            ),
            _ => (0, None),
        })
    }

    pub fn has_message(&self, id: &MessageId) -> Result<bool> {
        Ok(self.messages.contains_key(msg_key(id))?)
    }

    pub fn message_wire(&self, id: &MessageId) -> Result<Option<Vec<u8>>> {
        Ok(match self.messages.get(msg_key(id))? {
            Some(v) => Some(
                postcard::from_bytes::<Record>(&v)
                    .map_err(|e| Error::Corrupt(format!("stored message {id} is damaged: {e}")))?
                    .wire,
            ),
            None => None,
        })
    }

    fn load(&self, id: MessageId) -> Result<Option<StoredMessage>> {
        let Some(v) = self.messages.get(msg_key(&id))? else {
            return Ok(None);
        };
        let rec: Record = postcard::from_bytes(&v)
            .map_err(|e| Error::Corrupt(format!("stored message {id} is damaged: {e}")))?;
        let env = Envelope::decode_unverified(&rec.wire)
            .map_err(|e| Error::Corrupt(format!("stored message {id} is damaged: {e}")))?;
        Ok(Some(StoredMessage {
            id,
            channel: env.unsigned.channel,
            sender: rec.sender,
            device: env.unsigned.author,
            sent_at: env.unsigned.sent_at,
            text: env.unsigned.body,
        }))
    }

    /// The last `limit` messages of a channel, oldest first, in the total order every node
    /// agrees on: (sent_at, id).
    pub fn history(&self, channel: &str, limit: usize) -> Result<Vec<StoredMessage>> {
        let prefix = idx_prefix(channel);
        let mut out = Vec::new();
        for kv in self.messages.scan_prefix(&prefix).keys().rev().take(limit) {
            let k = kv?;
            let Some(id) = k
                .len()
                .checked_sub(32)
                .and_then(|at| <[u8; 32]>::try_from(&k[at..]).ok())
            else {
                tracing::warn!("damaged index entry in channel {channel}; skipped");
                continue;
            };
            match self.load(MessageId(id)) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => tracing::warn!("index entry without message {}", MessageId(id)),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        out.reverse();
        Ok(out)
    }

    pub fn count(&self, channel: &str) -> usize {
        self.messages.scan_prefix(idx_prefix(channel)).count()
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

    /// Make everything written so far durable.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}
