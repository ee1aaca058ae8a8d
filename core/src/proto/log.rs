//! What the protocol core needs of message storage, and an in-memory implementation.
//!
//! The node stores history in sled ([`crate::store::Store`]); the simulator and unit tests
//! keep it in memory ([`MemLog`]). Both answer the same questions, so the decisions in
//! [`super::intake`] and [`super::catchup`] are the same code in production and in a run of
//! a thousand simulated nodes.

use std::collections::{BTreeMap, HashMap};

use crate::error::Result;
use crate::identity::DeviceId;
use crate::message::{Envelope, MessageId};
use crate::store::{Store, StoredMessage};
use crate::sync::{self, Heads};

/// What the chain check ([`super::intake::check_chain`]) read of a message's author's log,
/// handed to [`Log::insert`] right after: the same reads are not made twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Known {
    /// The author's (contiguous prefix, highest seq) held.
    pub head: (u64, u64),
    /// The id held at the seq just before the message's, if any.
    pub pred: Option<MessageId>,
    /// The message's seq is above the author's highest held, and the batch's dedupe check
    /// ran before: it cannot be stored yet, so the store need not look.
    pub fresh: bool,
}

/// What [`Log::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// It was stored before.
    Held,
    /// Stored now; with the message as the user sees it, where the store rendered it
    /// (decrypting it once, to file what it does to another message, is all it costs).
    New(Option<Box<StoredMessage>>),
}

/// Per-author message logs of every channel this node holds.
pub trait Log {
    /// Whether the message is stored (dedupe).
    fn has(&self, id: &MessageId) -> Result<bool>;
    /// The id stored at (`channel`, `author`, `seq`), if any.
    fn entry(&self, channel: &str, author: &DeviceId, seq: u64) -> Result<Option<MessageId>>;
    /// The id held at (`channel`, `author`, `seq`), with its `sent_at`: the chain check
    /// reads both of a message's predecessor (a store may know them without a read).
    fn entry_sent(
        &self,
        channel: &str,
        author: &DeviceId,
        seq: u64,
    ) -> Result<Option<(MessageId, Option<u64>)>> {
        read_entry_sent(self, channel, author, seq)
    }
    /// Whether `id` is held as `author`'s message in `channel` at a seq below `below` (at
    /// most [`sync::MAX_GAP`] back); `Some(false)` if held but not there, `None` if not held.
    /// A skip names such a message (see [`sync::chain_ok`]).
    fn earlier(
        &self,
        channel: &str,
        author: &DeviceId,
        id: &MessageId,
        below: u64,
    ) -> Result<Option<bool>>;
    /// (contiguous prefix, highest seq) held of `author` in `channel`. Exact: nothing of
    /// the author is held above the highest seq (the chain check relies on it).
    fn head(&self, channel: &str, author: &DeviceId) -> Result<(u64, u64)>;
    /// Every author's head in `channel`.
    fn heads(&self, channel: &str) -> Result<Heads>;
    /// Store a checked message. `known`: what the chain check read of the author's log
    /// just before (so a store need not read it again).
    fn insert(&mut self, env: &Envelope, sender: &str, known: &Known) -> Result<Inserted>;
    /// Up to `limit` (seq, wire) of `author`'s log in `channel` from `from` on, oldest first.
    fn page(
        &self,
        channel: &str,
        author: &DeviceId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>>;
    /// The seqs of `author` held from `from` to `to`, as at most `max` ranges.
    fn held_ranges(
        &self,
        channel: &str,
        author: &DeviceId,
        from: u64,
        to: u64,
        max: usize,
    ) -> Result<Vec<(u64, u64)>>;
    /// The direct-message channels holding messages (the roster does not list them).
    fn dm_channels(&self) -> Result<Vec<String>>;
    /// The `sent_at` of a stored message.
    fn sent_at(&self, id: &MessageId) -> Result<Option<u64>>;
    /// The seq up to which `author`'s log in `channel` was swept by retention or erasure
    /// (nothing at or below it is offered to peers).
    fn floor(&self, _channel: &str, _author: &DeviceId) -> Result<u64> {
        Ok(0)
    }
    /// This device's own log in `channel` is asked for from this seq, below its prefix: it
    /// may have published messages there that a crash kept off its disk.
    fn recover_from(&self, _channel: &str) -> Result<Option<(DeviceId, u64)>> {
        Ok(None)
    }
    /// `author`'s highest seq held in `channel` if known without a read or a new entry in
    /// memory (a store's heads already in memory); `None`: not known, ask [`Log::has`].
    /// For checks on frames not yet verified: their author may be anything a peer wrote.
    fn known_top(&self, channel: &str, author: &DeviceId) -> Option<u64> {
        let _ = (channel, author);
        None
    }
}

/// [`Log::entry_sent`] by reading the entry, then the message's date.
fn read_entry_sent<L: Log + ?Sized>(
    log: &L,
    channel: &str,
    author: &DeviceId,
    seq: u64,
) -> Result<Option<(MessageId, Option<u64>)>> {
    let Some(id) = log.entry(channel, author, seq)? else {
        return Ok(None);
    };
    Ok(Some((id, log.sent_at(&id)?)))
}

impl Log for Store {
    fn has(&self, id: &MessageId) -> Result<bool> {
        self.has_message(id)
    }
    fn sent_at(&self, id: &MessageId) -> Result<Option<u64>> {
        self.sent_at_of(id)
    }
    fn entry(&self, channel: &str, author: &DeviceId, seq: u64) -> Result<Option<MessageId>> {
        self.log_entry(channel, author, seq)
    }
    fn entry_sent(
        &self,
        channel: &str,
        author: &DeviceId,
        seq: u64,
    ) -> Result<Option<(MessageId, Option<u64>)>> {
        match self.tip_at(channel, author, seq) {
            Some((id, at)) => Ok(Some((id, Some(at)))),
            None => read_entry_sent(self, channel, author, seq),
        }
    }
    fn earlier(
        &self,
        channel: &str,
        author: &DeviceId,
        id: &MessageId,
        below: u64,
    ) -> Result<Option<bool>> {
        Store::earlier(self, channel, author, id, below)
    }
    fn head(&self, channel: &str, author: &DeviceId) -> Result<(u64, u64)> {
        Store::head(self, channel, author)
    }
    fn heads(&self, channel: &str) -> Result<Heads> {
        Store::heads(self, channel)
    }
    fn insert(&mut self, env: &Envelope, sender: &str, known: &Known) -> Result<Inserted> {
        self.insert_known(env, sender, Some(known))
    }
    fn page(
        &self,
        channel: &str,
        author: &DeviceId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        self.log_from_seq(channel, author, from, limit)
    }
    fn held_ranges(
        &self,
        channel: &str,
        author: &DeviceId,
        from: u64,
        to: u64,
        max: usize,
    ) -> Result<Vec<(u64, u64)>> {
        Store::held_ranges(self, channel, author, from, to, max)
    }
    fn dm_channels(&self) -> Result<Vec<String>> {
        self.channels_starting_with("@")
    }
    fn floor(&self, channel: &str, author: &DeviceId) -> Result<u64> {
        Store::floor(self, channel, author)
    }
    fn recover_from(&self, channel: &str) -> Result<Option<(DeviceId, u64)>> {
        Store::recover_from(self, channel)
    }
    fn known_top(&self, channel: &str, author: &DeviceId) -> Option<u64> {
        self.cached_top(channel, author)
    }
}

/// History in memory: what a simulated node holds.
#[derive(Debug, Default, Clone)]
pub struct MemLog {
    /// Message id -> (channel, sender name, wire).
    messages: HashMap<MessageId, (String, String, Vec<u8>)>,
    /// channel -> author -> seq -> id.
    logs: BTreeMap<String, BTreeMap<DeviceId, BTreeMap<u64, MessageId>>>,
    /// channel -> author -> (contiguous prefix, highest seq), kept up to date on insert.
    heads: HashMap<String, BTreeMap<DeviceId, (u64, u64)>>,
    /// (channel, author, seq) -> `prev` of a message that does not name the seq before it.
    skips: HashMap<(String, DeviceId, u64), Option<MessageId>>,
}

impl MemLog {
    /// Ids of every stored message.
    pub fn ids(&self) -> impl Iterator<Item = &MessageId> {
        self.messages.keys()
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

impl Log for MemLog {
    fn has(&self, id: &MessageId) -> Result<bool> {
        Ok(self.messages.contains_key(id))
    }

    fn sent_at(&self, id: &MessageId) -> Result<Option<u64>> {
        Ok(self
            .messages
            .get(id)
            .and_then(|(_, _, w)| Envelope::decode_unverified(w).ok())
            .map(|e| e.unsigned.sent_at))
    }

    fn entry(&self, channel: &str, author: &DeviceId, seq: u64) -> Result<Option<MessageId>> {
        Ok(self
            .logs
            .get(channel)
            .and_then(|a| a.get(author))
            .and_then(|l| l.get(&seq))
            .copied())
    }

    fn earlier(
        &self,
        channel: &str,
        author: &DeviceId,
        id: &MessageId,
        below: u64,
    ) -> Result<Option<bool>> {
        if !self.messages.contains_key(id) {
            return Ok(None);
        }
        Ok(Some(
            self.logs
                .get(channel)
                .and_then(|a| a.get(author))
                .is_some_and(|l| {
                    l.range(below.saturating_sub(sync::MAX_GAP)..below)
                        .any(|(_, held)| held == id)
                }),
        ))
    }

    fn head(&self, channel: &str, author: &DeviceId) -> Result<(u64, u64)> {
        Ok(self
            .heads
            .get(channel)
            .and_then(|h| h.get(author))
            .copied()
            .unwrap_or((0, 0)))
    }

    fn known_top(&self, channel: &str, author: &DeviceId) -> Option<u64> {
        self.head(channel, author).ok().map(|(_, top)| top)
    }

    fn heads(&self, channel: &str) -> Result<Heads> {
        Ok(self.heads.get(channel).cloned().unwrap_or_default())
    }

    fn insert(&mut self, env: &Envelope, sender: &str, _: &Known) -> Result<Inserted> {
        if self.messages.contains_key(&env.id) {
            return Ok(Inserted::Held);
        }
        let u = &env.unsigned;
        self.messages.insert(
            env.id,
            (u.channel.clone(), sender.to_string(), env.wire.clone()),
        );
        let log = self
            .logs
            .entry(u.channel.clone())
            .or_default()
            .entry(u.author)
            .or_default();
        let skip = u.seq > 1 && log.get(&(u.seq - 1)) != u.prev.as_ref();
        log.insert(u.seq, env.id);
        if skip {
            self.skips
                .insert((u.channel.clone(), u.author, u.seq), u.prev);
        }
        let log = &self.logs[&u.channel][&u.author];
        let skips = &self.skips;
        let head = self
            .heads
            .entry(u.channel.clone())
            .or_default()
            .entry(u.author)
            .or_default();
        head.0 = sync::advance(
            head.0,
            |s| log.contains_key(&s),
            |c| {
                // The next held message, if its `prev` is held at or below `c` (or none).
                let (&next, _) = log.range(c + 1..).next()?;
                let prev = skips.get(&(u.channel.clone(), u.author, next))?;
                let below = c.saturating_sub(sync::MAX_GAP)..=c;
                match prev {
                    None => Some(next),
                    Some(p) => log.range(below).any(|(_, id)| id == p).then_some(next),
                }
            },
        );
        head.1 = head.1.max(u.seq);
        Ok(Inserted::New(None))
    }

    fn page(
        &self,
        channel: &str,
        author: &DeviceId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let Some(l) = self.logs.get(channel).and_then(|a| a.get(author)) else {
            return Ok(Vec::new());
        };
        Ok(l.range(from..)
            .take(limit)
            .filter_map(|(s, id)| Some((*s, self.messages.get(id)?.2.clone())))
            .collect())
    }

    fn held_ranges(
        &self,
        channel: &str,
        author: &DeviceId,
        from: u64,
        to: u64,
        max: usize,
    ) -> Result<Vec<(u64, u64)>> {
        let Some(l) = self.logs.get(channel).and_then(|a| a.get(author)) else {
            return Ok(Vec::new());
        };
        Ok(sync::ranges_of(l.range(from..=to).map(|(s, _)| *s), max))
    }

    fn dm_channels(&self) -> Result<Vec<String>> {
        Ok(self
            .logs
            .keys()
            .filter(|c| c.starts_with('@'))
            .cloned()
            .collect())
    }
}
