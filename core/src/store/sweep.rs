//! Retention and erasure on disk: the store's half of [`crate::governance`].
//!
//! A swept message loses its history record (the sealed body and wire), what acts on it is
//! unfiled, and its id lookup becomes a **tombstone** (its `sent_at`, no record), so a copy
//! offered again is a duplicate and the author's chain still checks against its neighbours.
//! Per author, the run of tombstones at the start of a log becomes a **floor**: the entries
//! below it are dropped, the one at it is kept as the checkpoint the next message chains to,
//! and catch-up answers start above it (a device that never held the expired messages is not
//! asked to wait for them; see `proto::catchup::answer`).
//!
//! Sweeps are incremental: per channel, a watermark says up to which `sent_at` everything has
//! been decided under the governance it was decided with (its hash in `meta`). A new rule,
//! hold or erasure resets the watermarks; time alone only moves the scan forward.

use std::collections::BTreeSet;

use super::*;
use crate::governance::{self, Facts, Fate};
use crate::roster::Governance;

/// `m | id` of a swept message: 0xff, then its sent_at, then its id (the `sent_at` sits
/// where [`Store::sent_at_of`] reads it in a history key).
const TOMBSTONE: u8 = 0xff;
const FLOOR: u8 = b'f'; // f | channel | 0 | author -> seq(be): everything up to it is gone
const GOV_HASH: &str = "governance_hash";

/// What one sweep removed.
#[derive(Debug, Default, Clone)]
pub struct Swept {
    pub expired: Vec<MessageId>,
    pub erased: Vec<MessageId>,
    /// Files whose retention ended (their messages may stay).
    pub files: Vec<crate::files::BlobId>,
    /// Messages looked at.
    pub scanned: u64,
}

impl Swept {
    pub fn removed(&self) -> impl Iterator<Item = &MessageId> {
        self.expired.iter().chain(&self.erased)
    }
}

fn floor_key(channel: &str, author: &DeviceId) -> Vec<u8> {
    let mut k = prefix(FLOOR, channel);
    k.extend_from_slice(&author.0);
    k
}

fn watermark_key(channel: &str) -> String {
    format!("swept/{channel}")
}

impl Store {
    /// Apply `g` at time `now` to every channel held. Files named by removed messages, and
    /// files past their own retention, are listed for the caller to delete (they live
    /// beside the database).
    pub fn sweep(&self, g: &Governance, now: u64) -> Result<Swept> {
        let hash = blake3::hash(&postcard::to_stdvec(g).expect("governance serializes"));
        let fresh = self.get_meta(GOV_HASH)?.as_deref() != Some(hash.as_bytes().as_slice());
        let mut out = Swept::default();
        for channel in self.channels_starting_with("")? {
            let wm = watermark_key(&channel);
            let from = match fresh {
                true => 0,
                false => self
                    .get_meta(&wm)?
                    .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                    .map_or(0, u64::from_be_bytes),
            };
            let erased_before = g
                .erasures
                .iter()
                .map(|e| e.before.saturating_add(1))
                .max()
                .unwrap_or(0);
            let upto = [
                governance::cutoff(g, &channel, now),
                governance::files_cutoff(g, &channel, now),
                Some(erased_before),
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0);
            if upto <= from {
                continue;
            }
            self.sweep_channel(g, &channel, from, upto, now, &mut out)?;
            self.set_meta(&wm, &upto.to_be_bytes())?;
        }
        self.set_meta(GOV_HASH, hash.as_bytes())?;
        Ok(out)
    }

    /// Decide every message of `channel` sent in `[from, upto)`.
    fn sweep_channel(
        &self,
        g: &Governance,
        channel: &str,
        from: u64,
        upto: u64,
        now: u64,
        out: &mut Swept,
    ) -> Result<()> {
        let p = prefix(IDX, channel);
        let mut start = p.clone();
        start.extend_from_slice(&from.to_be_bytes());
        let mut end = p.clone();
        end.extend_from_slice(&upto.to_be_bytes());
        let mut authors = BTreeSet::new();
        // Unsent messages are rare; one look instead of one per message.
        let outbox = !self.outbox.is_empty();
        for kv in self.messages.range(start..end) {
            let (k, v) = kv?;
            let Some(id) = id_at_end(&k).map(MessageId) else {
                continue;
            };
            out.scanned += 1;
            let Ok((rec, env)) = self.decode_record(&k, id, &v) else {
                continue;
            };
            let u = &env.unsigned;
            let facts = Facts {
                channel,
                author: &u.author,
                member: &rec.sender,
                sent_at: u.sent_at,
            };
            // Key grants carry no content, and later messages (and readers added since)
            // need the keys they hand out: retention and erasure keep them.
            let fate = match env.is_keys() {
                true => Fate::Keep,
                false => governance::fate(g, facts, now),
            };
            let shown = self.render(&env, rec.sender.clone());
            // From the envelope, not the rendered message: a relay cannot open the body but
            // stores the blob it names.
            let file = match env.content() {
                Some(Content::File { blob, .. }) => Some(blob.id),
                _ => None,
            };
            match fate {
                Fate::Keep => {
                    if let Some(b) = file.filter(|_| governance::file_expired(g, facts, now)) {
                        out.files.push(b);
                    }
                    continue;
                }
                Fate::Expired => out.expired.push(id),
                Fate::Erased => out.erased.push(id),
            }
            out.files.extend(file);
            // Unfile it from its target, and what acts on it.
            if let Some(act) = shown.as_ref().and_then(|m| m.act.as_ref()) {
                self.messages
                    .remove(annex_key(channel, &act.target(), &id))?;
            }
            self.messages.remove(act_key(&id))?;
            let mut annex = prefix(ANNEX, channel);
            annex.extend_from_slice(&id.0);
            for kv in self.messages.scan_prefix(&annex) {
                self.messages.remove(kv?.0)?;
            }
            let mut tomb = vec![TOMBSTONE];
            tomb.extend_from_slice(&u.sent_at.to_be_bytes());
            tomb.extend_from_slice(&id.0);
            self.messages.insert(msg_key(&id), tomb)?;
            self.messages.remove(&k)?;
            if outbox {
                self.outbox_remove(&id)?;
            }
            authors.insert(u.author);
        }
        for a in authors {
            self.raise_floor(channel, &a)?;
        }
        Ok(())
    }

    /// Whether `id` was swept (a tombstone, no record).
    fn is_tombstone(&self, id: &[u8]) -> Result<bool> {
        let Ok(id) = <[u8; 32]>::try_from(id) else {
            return Ok(false);
        };
        Ok(self
            .messages
            .get(msg_key(&MessageId(id)))?
            .is_some_and(|v| v.first() == Some(&TOMBSTONE)))
    }

    /// Whether the stored message `id` hands out keys.
    fn is_grant(&self, id: &[u8]) -> Result<bool> {
        let Ok(id) = <[u8; 32]>::try_from(id) else {
            return Ok(false);
        };
        Ok(self
            .message_wire(&MessageId(id))?
            .and_then(|w| Envelope::decode_unverified(&w).ok())
            .is_some_and(|e| e.is_keys()))
    }

    /// Move `author`'s floor in `channel` over the tombstones at the start of its log, and
    /// drop the entries below it (the one at it stays: the next message chains to it).
    fn raise_floor(&self, channel: &str, author: &DeviceId) -> Result<()> {
        let old = self.floor(channel, author)?;
        let mut floor = old;
        let start = log_key(channel, author, old.saturating_add(1));
        let end = log_key(channel, author, u64::MAX);
        let mut gone = Vec::new();
        for kv in self.messages.range(start..=end) {
            let (k, v) = kv?;
            let seq = seq_of(&k);
            if seq != floor + 1 {
                break;
            }
            if self.is_tombstone(&v)? {
                gone.push(seq);
            } else if !self.is_grant(&v)? {
                break;
            }
            floor = seq;
        }
        if floor == old {
            return Ok(());
        }
        // Key grants below the floor stay (a device that never held them needs them); the
        // tombstones go, except the one at the floor.
        for seq in gone.into_iter().filter(|s| *s != floor) {
            if let Some(id) = self.log_entry(channel, author, seq)? {
                self.messages.remove(msg_key(&id))?;
            }
            self.messages.remove(log_key(channel, author, seq))?;
        }
        self.messages
            .insert(floor_key(channel, author), &floor.to_be_bytes())?;
        Ok(())
    }

    /// The seq up to which `author`'s log in `channel` was swept away (0: none).
    pub fn floor(&self, channel: &str, author: &DeviceId) -> Result<u64> {
        Ok(self
            .messages
            .get(floor_key(channel, author))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }
}
