//! Retention and erasure on disk: the store's half of [`crate::governance`].
//!
//! A swept message loses its history record (the sealed body and wire), what acts on it is
//! unfiled, and its id lookup becomes a **tombstone** (its `sent_at`, no record), so a copy
//! offered again is a duplicate and the author's chain still checks against its neighbours.
//! Per author, the run of tombstones (and kept key grants) at the start of a log becomes a
//! **floor**: the tombstones below it are dropped, the entry at it is kept as the checkpoint
//! the next message chains to, and a requester is not counted as lagging for what lies below
//! it (`proto::catchup::answer`). A device that never held the swept messages takes what
//! follows past the hole (`governance::gaps_allowed`).
//!
//! Sweeps are incremental: per channel, a watermark says up to which `sent_at` everything has
//! been decided under the governance it was decided with (its hash in `meta`). A new rule,
//! hold or erasure resets the watermarks; time alone only moves the scan forward.

use super::*;
use crate::governance::{self, Facts, Fate};
use crate::roster::Governance;

/// `m | id` of a swept message: 0xff, then its sent_at, then its id (the `sent_at` sits
/// where [`Store::sent_at_of`] reads it in a history key).
const TOMBSTONE: u8 = 0xff;
const FLOOR: u8 = b'f'; // f | channel | 0 | author -> seq(be): everything up to it is gone
const GOV_HASH: &str = "governance_hash";
/// Removals applied together (bounds the memory of a sweep over a long history).
const CHUNK: usize = 20_000;

/// A message a sweep removes.
struct Gone {
    key: Vec<u8>,
    id: MessageId,
    author: DeviceId,
    seq: u64,
    sent_at: u64,
    /// What it acts on, and whether it is also a row of its channel.
    act: Option<(MessageId, bool)>,
}

/// What one sweep removed.
#[derive(Debug, Default, Clone)]
pub struct Swept {
    pub expired: Vec<MessageId>,
    pub erased: Vec<MessageId>,
    /// Files whose retention ended (their messages may stay).
    pub files: Vec<crate::files::BlobId>,
    /// Messages looked at.
    pub scanned: u64,
    /// The channel of each message removed (integrations are told per channel).
    pub channel_of: std::collections::HashMap<MessageId, String>,
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
        // Heads ahead of the disk are written before any log entry goes: a head left
        // behind by a crash is read up from the log, which cannot step over removed entries.
        self.write_heads()?;
        for channel in self.channels_starting_with("")? {
            let dropped = self.sweep_refused(g, &channel, now)?;
            if dropped > 0 {
                tracing::info!(
                    "retention: {dropped} message(s) of ours in '{channel}' waiting to be sent again after a restore were dropped instead"
                );
            }
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

    /// Decide every message of `channel` sent in `[from, upto)`, removing in chunks.
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
        let mut chunk = Vec::new();
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
                keys: env.is_keys(),
            };
            let fate = governance::fate(g, facts, now);
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
            out.channel_of.insert(id, channel.to_string());
            out.files.extend(file);
            let act = self
                .render(&env, rec.sender)
                .and_then(|m| m.act)
                .map(|a| (a.target(), Act::in_channel(Some(&a))));
            chunk.push(Gone {
                key: k.to_vec(),
                id,
                author: u.author,
                seq: u.seq,
                sent_at: u.sent_at,
                act,
            });
            if chunk.len() == CHUNK {
                self.remove_chunk(channel, std::mem::take(&mut chunk))?;
            }
        }
        self.remove_chunk(channel, chunk)
    }

    /// Remove what a sweep decided: records, what acts on them, and their log entries below
    /// each author's new floor; tombstones for the rest.
    fn remove_chunk(&self, channel: &str, chunk: Vec<Gone>) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let ids: Vec<MessageId> = chunk.iter().map(|g| g.id).collect();
        self.journal_removal(channel, &ids)?;
        // Unsent messages and acts are rare; one look each instead of one per message.
        let outbox = !self.outbox.is_empty();
        let annexed = self
            .messages
            .scan_prefix(prefix(ANNEX, channel))
            .next()
            .is_some();
        let mut by_author: std::collections::BTreeMap<DeviceId, Vec<&Gone>> = Default::default();
        for g in &chunk {
            self.messages.remove(&g.key)?;
            if let Some((target, in_channel)) = g.act {
                self.messages.remove(annex_key(channel, &target, &g.id))?;
                if !in_channel {
                    self.messages.remove(act_key(&g.id))?;
                }
            }
            if annexed {
                let mut annex = prefix(ANNEX, channel);
                annex.extend_from_slice(&g.id.0);
                for kv in self.messages.scan_prefix(&annex) {
                    self.messages.remove(kv?.0)?;
                }
            }
            if outbox {
                self.outbox_remove(&g.id)?;
            }
            by_author.entry(g.author).or_default().push(g);
        }
        for (author, gone) in by_author {
            let seqs: std::collections::HashMap<u64, &Gone> =
                gone.iter().map(|g| (g.seq, *g)).collect();
            let old = self.floor(channel, &author)?;
            // Over what this chunk removes, earlier tombstones and kept key grants.
            let mut floor = old;
            let mut below = Vec::new();
            let start = log_key(channel, &author, old.saturating_add(1));
            let end = log_key(channel, &author, u64::MAX);
            for kv in self.messages.range(start..=end) {
                let (k, v) = kv?;
                let seq = seq_of(&k);
                if seq != floor + 1 {
                    break;
                }
                if seqs.contains_key(&seq) || self.is_tombstone(&v)? {
                    below.push((seq, v));
                } else if !self.is_grant(&v)? {
                    break;
                }
                floor = seq;
            }
            // Below the floor: gone entirely (the entry at the floor stays, a tombstone).
            for (seq, v) in below.into_iter().filter(|(s, _)| *s != floor) {
                if let Ok(id) = <[u8; 32]>::try_from(v.as_ref()) {
                    self.messages.remove(msg_key(&MessageId(id)))?;
                }
                self.messages.remove(log_key(channel, &author, seq))?;
            }
            for g in gone.iter().filter(|g| g.seq >= floor || g.seq == 0) {
                let mut tomb = vec![TOMBSTONE];
                tomb.extend_from_slice(&g.sent_at.to_be_bytes());
                tomb.extend_from_slice(&g.id.0);
                self.messages.insert(msg_key(&g.id), tomb)?;
            }
            if floor > old {
                self.messages
                    .insert(floor_key(channel, &author), &floor.to_be_bytes())?;
            }
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

    /// The seq up to which `author`'s log in `channel` was swept away (0: none).
    pub fn floor(&self, channel: &str, author: &DeviceId) -> Result<u64> {
        Ok(self
            .messages
            .get(floor_key(channel, author))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }
}
