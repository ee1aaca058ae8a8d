//! Catch-up as a state machine: what to ask a peer, what to answer, whether an answer is
//! acceptable, and when to ask again. The planning rules themselves (version vectors, gap
//! ranges, chain checks) are in [`crate::sync`]; this module holds the requests in flight.
//!
//! `K` names a request in flight (libp2p's request id in a node, a counter in the
//! simulator) and `P` a peer.

use std::collections::HashMap;
use std::hash::Hash;

use super::log::Log;
use crate::error::Result;
use crate::identity::DeviceId;
use crate::message::Envelope;
use crate::net::{SyncRequest, SyncResponse, DM_LIST, MAX_DM_LIST, SYNC_RESPONSE_BYTES};
use crate::roster::{is_dm, Member, VerifiedRoster};
use crate::sync::{self, Link, Ranges, Vector};

/// Attempts after a failed request (typically a duplicate connection closing under it)
/// before waiting for the next periodic round.
pub const MAX_RETRIES: u32 = 3;

/// Answer size bounds: the first answer from a peer is small (1 s at 64 kbit/s, so a live
/// message published as the link comes up waits behind 1 s of catch-up, not 4; well under a
/// millisecond on a LAN, where quick answers let the budget grow fourfold each time); later
/// ones aim at [`ANSWER_SECS`] of the measured rate in flight, so that on a slow link live
/// messages never queue behind more than about a second of catch-up. Slow links keep two
/// requests in flight (see [`Catchup::follow_up`]), so there each answer is half of that.
pub const FIRST_ANSWER_BYTES: u32 = 8 * 1024;
pub const MIN_ANSWER_BYTES: u32 = 4 * 1024;
pub const ANSWER_SECS: u64 = 1;

/// A peer whose round trip is under this (ms) is near (a LAN): it does not wait behind a
/// slow link's catch-up session (see [`Catchup::queue_behind`]).
pub const NEAR_RTT_MS: u64 = 50;

/// An answer slower than this (ms from request to answer) says the link, not the peer,
/// sets the pace: the budget follows the measured rate, and requests are pipelined.
pub const SLOW_ANSWER_MS: u64 = 250;

/// A request to a peer not known to be slow that has had no answer for this long (ms) no
/// longer holds its channel's turn: others are asked beside it. Why: an insider (a roster
/// device with a modified client) that takes sync requests and never answers held every
/// channel it was asked about for the request timeout (30 s, for radio links), retried
/// three times: two minutes without catch-up for a laptop back from a trip. A LAN answers
/// within milliseconds and a radio link's first answer (8 KiB) within two seconds.
pub const STALL_MS: u64 = 5_000;

/// What a request asked for: the answer is checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub channel: String,
    /// Per author, the prefix we said we hold.
    pub have: Vector,
    /// Per author, the ranges beyond it we said we hold.
    pub held: Ranges,
    /// When it was sent (ms; set by the caller), to measure the peer's rate.
    pub sent_ms: u64,
    /// The answer size asked for: a request pipelined behind this one skips that much.
    pub max_bytes: u32,
}

/// An answer that passed [`check`].
#[derive(Debug)]
pub struct Checked {
    /// The envelopes, signatures not yet verified (intake does that, in one batch).
    pub envs: Vec<Envelope>,
    /// Set when the peer has more: the session vector to ask from next.
    pub next: Option<Vector>,
}

/// Requests in flight and retry counts.
#[derive(Debug)]
pub struct Catchup<K, P> {
    pending: HashMap<K, (P, Asked)>,
    retries: HashMap<P, u32>,
    /// Per channel, peers waiting for their turn: a channel is caught up from one peer at a
    /// time, so a node that missed something gets it once, not once per peer.
    queued: HashMap<String, std::collections::VecDeque<P>>,
    /// Requests made (round trips), for the stats.
    pub requests: u64,
    /// Per peer, how many bytes to ask for in one answer (see [`Catchup::measured`]).
    budget: HashMap<P, u32>,
    /// Per peer, the smallest round trip seen (ping), so that an answer's time on the link
    /// can be told apart from the time it spent travelling.
    rtt_ms: HashMap<P, u64>,
    /// Per peer, when its last answer arrived (ms): a pipelined answer held the link only
    /// from then on.
    arrived_ms: HashMap<P, u64>,
    /// Peers whose last full answer was slow ([`SLOW_ANSWER_MS`]): their sessions keep a
    /// second request in flight.
    slow: std::collections::HashSet<P>,
    /// Per (peer, channel) session, the last seq per author the answers so far brought:
    /// with two requests in flight an answer's own `next` misses its sibling's messages.
    sessions: HashMap<(P, String), Vector>,
    /// Per peer, the rate its last full slow answer came at (bytes a second).
    rate: HashMap<P, u64>,
    /// Pipelined requests waiting for their time (see [`Catchup::follow_up`]).
    ahead: Vec<Ahead<P>>,
    /// Per channel, (peer, author) whose messages requests to that peer leave out (see
    /// [`Catchup::leave_out_from`]).
    left_out: HashMap<String, Vec<(P, DeviceId)>>,
    /// Per (peer, channel), when we last asked it back ([`Catchup::ask_back_due`]).
    asked_back: HashMap<(P, String), u64>,
}

/// How often a peer is asked back about one channel at most ([`ask_back`]): two nodes that
/// each hold what the other refuses (a forker's other branch, a removed author's late
/// messages) would otherwise ask each other back without end.
pub const ASK_BACK_EVERY_MS: u64 = 5_000;

/// A pipelined request scheduled to leave at `at_ms`.
#[derive(Debug)]
struct Ahead<P> {
    peer: P,
    channel: String,
    sent: Vector,
    /// The budget of the request ahead of it: what it skips.
    skip_after: u32,
    at_ms: u64,
}

impl<K: Hash + Eq, P: Hash + Eq + Copy> Default for Catchup<K, P> {
    fn default() -> Self {
        Catchup {
            pending: HashMap::new(),
            retries: HashMap::new(),
            queued: HashMap::new(),
            requests: 0,
            budget: HashMap::new(),
            rtt_ms: HashMap::new(),
            arrived_ms: HashMap::new(),
            slow: Default::default(),
            sessions: HashMap::new(),
            rate: HashMap::new(),
            ahead: Vec::new(),
            left_out: HashMap::new(),
            asked_back: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq, P: Hash + Eq + Copy> Catchup<K, P> {
    /// Whether `peer` may be asked back about `channel` now (at most once every
    /// [`ASK_BACK_EVERY_MS`]); if so, it is taken as asked.
    pub fn ask_back_due(&mut self, peer: P, channel: &str, now_ms: u64) -> bool {
        let key = (peer, channel.to_string());
        if self
            .asked_back
            .get(&key)
            .is_some_and(|t| now_ms < t.saturating_add(ASK_BACK_EVERY_MS))
        {
            return false;
        }
        if self.asked_back.len() >= 4096 {
            self.asked_back
                .retain(|_, t| now_ms < t.saturating_add(ASK_BACK_EVERY_MS));
        }
        self.asked_back.insert(key, now_ms);
        true
    }

    /// The request for `channel` to `peer`, or `None` if one is in flight. `sent`: per
    /// author, the last seq this peer sent in the current session. `skip`: pipelined behind
    /// a request with that budget still in flight (see [`Catchup::follow_up`]): the answer
    /// leaves out what that one's answer holds.
    pub fn request<L: Log>(
        &self,
        log: &L,
        peer: P,
        channel: &str,
        sent: &Vector,
        skip: Option<u32>,
    ) -> Result<Option<(SyncRequest, Asked)>> {
        let in_flight = self.asked_of(peer, channel).count();
        if in_flight >= 2 || (in_flight == 1 && skip.is_none()) {
            return Ok(None);
        }
        let heads = if channel == DM_LIST {
            Default::default()
        } else {
            log.heads(channel)?
        };
        let mut have = sync::continue_from(&heads, sent);
        // Our own messages a crash may have lost after publishing them, or that peers hold
        // other versions of (see `Store::check_own_from`): asked back from the start of the
        // hole, within the session (`sent` moves it on), whether we hold them or not.
        let recovering = log.recover_from(channel)?.map(|(me, from)| {
            let h = have.entry(me).or_insert(0);
            let from = from.max(sent.get(&me).copied().unwrap_or(0));
            *h = (*h).min(from);
            me
        });
        let left_out: Vec<DeviceId> = self
            .left_out
            .get(channel)
            .into_iter()
            .flatten()
            .filter(|(p, _)| *p == peer)
            .map(|(_, a)| *a)
            .collect();
        for a in &left_out {
            have.insert(*a, u64::MAX);
        }
        // What we hold beyond a gap, so the peer sends only what is missing.
        let mut held = Ranges::new();
        let listed = |a: &DeviceId| !left_out.contains(a) && Some(*a) != recovering;
        for (a, (_, max)) in heads.iter().filter(|(a, _)| listed(a)) {
            let from = have.get(a).copied().unwrap_or(0);
            if *max > from {
                let to = from.saturating_add(sync::MAX_GAP).min(*max);
                let r = log.held_ranges(channel, a, from + 1, to, sync::MAX_RANGES)?;
                if !r.is_empty() {
                    held.insert(*a, r);
                }
            }
        }
        let req = SyncRequest {
            channel: channel.to_string(),
            have: have.iter().map(|(a, s)| (*a, *s)).collect(),
            held: held
                .iter()
                .flat_map(|(a, r)| r.iter().map(|(x, y)| (*a, *x, *y)))
                .collect(),
            max_bytes: Some(self.budget_for(&peer)),
            skip,
        };
        Ok(Some((
            req,
            Asked {
                channel: channel.to_string(),
                have,
                held,
                sent_ms: 0,
                max_bytes: self.budget_for(&peer),
            },
        )))
    }

    /// Leave `author`'s messages in `channel` out of every request to `peer` from now on:
    /// say we hold them all. The peer holds a branch of that author's log that does not
    /// chain to ours (the author signed two; or this device, restored from an older copy,
    /// whose refused branch the peer took): every answer would carry it and be dropped
    /// whole, everyone else's messages with it (see `node::fork`).
    pub fn leave_out_from(&mut self, peer: P, author: DeviceId, channel: &str) {
        let v = self.left_out.entry(channel.to_string()).or_default();
        if !v.contains(&(peer, author)) {
            v.push((peer, author));
        }
    }

    /// Ask `peer` for `author`'s messages in `channel` again (undo
    /// [`Catchup::leave_out_from`]).
    pub fn take_in_again(&mut self, peer: P, author: DeviceId, channel: &str) {
        if let Some(v) = self.left_out.get_mut(channel) {
            v.retain(|x| *x != (peer, author));
        }
    }

    /// What is in flight to `peer` about `channel`.
    fn asked_of<'a>(&'a self, peer: P, channel: &'a str) -> impl Iterator<Item = &'a Asked> {
        self.pending
            .values()
            .filter(move |(p, a)| *p == peer && a.channel == channel)
            .map(|(_, a)| a)
    }

    /// An answer from `peer` about `channel` passed [`check`] (`next`: the peer has more)
    /// at `now_ms`: the requests to send now, as (`sent`, `skip`) for [`Catchup::request`].
    /// A pipelined one may be scheduled instead ([`Catchup::due`]).
    ///
    /// Why pipelining: on a slow link the next request used to leave only when the answer
    /// had arrived, so the link idled for a round trip after every answer (600 ms in each
    /// 1.6 s on the emulated radio link). With a second request in flight the next answer
    /// follows the one arriving. It names where it starts without knowing the first answer:
    /// "what you would send after an answer of `skip` bytes". It leaves when the answer
    /// ahead of it should have left the peer, not at once: two answers sent together share
    /// the link and arrive together, and the link idles for a round trip after the pair. If
    /// the peer's log changed in between, the two may overlap (a duplicate, dropped) or
    /// leave a hole (fetched by the next round, as any gap is).
    pub fn follow_up(
        &mut self,
        peer: P,
        channel: &str,
        next: Option<&Vector>,
        now_ms: u64,
    ) -> Vec<(Vector, Option<u32>)> {
        let Some(next) = next else {
            // The session ends; a pipelined request not sent yet is not needed.
            self.forget(peer, channel);
            return Vec::new();
        };
        let sent = self
            .sessions
            .entry((peer, channel.to_string()))
            .or_default();
        for (a, s) in next {
            let e = sent.entry(*a).or_insert(0);
            *e = (*e).max(*s);
        }
        let sent = sent.clone();
        let rate = self
            .rate
            .get(&peer)
            .copied()
            .filter(|_| self.slow.contains(&peer));
        // (when it left, bytes asked) of what is in flight or scheduled for this session.
        let mut ahead: Vec<(u64, u32)> = self
            .asked_of(peer, channel)
            .map(|a| (a.sent_ms, a.max_bytes))
            .collect();
        ahead.extend(
            self.scheduled(Some(peer), channel)
                .map(|a| (a.at_ms, a.skip_after)),
        );
        let on_link = |bytes: u32, rate: u64| u64::from(bytes) * 1000 / rate.max(1);
        match (&ahead[..], rate) {
            ([], None) => vec![(sent, None)],
            ([], Some(rate)) => {
                let budget = self.budget_for(&peer);
                self.schedule(peer, channel, &sent, budget, now_ms + on_link(budget, rate));
                vec![(sent, None)]
            }
            // The one ahead starts where this answer ended: the next starts after it, once
            // it has had its time on the link. On a link that turned fast, its answer
            // continues the session instead.
            ([(left, bytes)], Some(rate)) => {
                let at = (left + on_link(*bytes, rate)).max(now_ms);
                self.schedule(peer, channel, &sent, *bytes, at);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// `peer`'s session for `channel` is over without an answer (the peer has gone, or a
    /// request failed). A scheduled request goes too: it skips an answer that will not
    /// come. The session's vector stays while a sibling is still in flight (its answer
    /// continues the session).
    pub fn forget(&mut self, peer: P, channel: &str) {
        self.ahead
            .retain(|a| (a.peer, a.channel.as_str()) != (peer, channel));
        if self.asked_of(peer, channel).next().is_none() {
            self.sessions.remove(&(peer, channel.to_string()));
        }
    }

    /// Pipelined requests scheduled for `channel` (to `peer`, or to anyone).
    fn scheduled<'a>(
        &'a self,
        peer: Option<P>,
        channel: &'a str,
    ) -> impl Iterator<Item = &'a Ahead<P>> + 'a {
        self.ahead
            .iter()
            .filter(move |a| a.channel == channel && peer.is_none_or(|p| a.peer == p))
    }

    fn schedule(&mut self, peer: P, channel: &str, sent: &Vector, skip_after: u32, at_ms: u64) {
        self.ahead.push(Ahead {
            peer,
            channel: channel.to_string(),
            sent: sent.clone(),
            skip_after,
            at_ms,
        });
    }

    /// When the next scheduled request is due (ms).
    pub fn next_due(&self) -> Option<u64> {
        self.ahead.iter().map(|a| a.at_ms).min()
    }

    /// When a channel that peers wait for is free for the next of them: now if nothing
    /// holds its turn any more, else when the request holding it will have stalled
    /// ([`STALL_MS`]). So the next peer is asked then, not at the next periodic round (30 s
    /// on a quiet node) or ping. After [`Catchup::next_queued`] has been taken for every
    /// waiting channel, each has an empty queue or a turn taken, so "now" does not repeat.
    pub fn turn_free_at(&self, now_ms: u64) -> Option<u64> {
        self.queued
            .keys()
            .filter_map(|ch| {
                if !self.turn_taken(ch, now_ms) {
                    return Some(now_ms);
                }
                self.pending
                    .values()
                    .filter(|(p, a)| a.channel == *ch && !self.slow.contains(p))
                    .map(|(_, a)| a.sent_ms + STALL_MS)
                    .filter(|at| *at > now_ms)
                    .min()
            })
            .min()
    }

    /// The scheduled requests due at `now_ms`, as (peer, channel, `sent`, `skip`) for
    /// [`Catchup::request`]. The caller drops one whose peer has gone
    /// ([`Catchup::forget`]).
    pub fn due(&mut self, now_ms: u64) -> Vec<(P, String, Vector, u32)> {
        let (due, later) = std::mem::take(&mut self.ahead)
            .into_iter()
            .partition(|a| a.at_ms <= now_ms);
        self.ahead = later;
        due.into_iter()
            .map(|a: Ahead<P>| (a.peer, a.channel, a.sent, a.skip_after))
            .collect()
    }

    /// How many bytes to ask `peer` for in one answer.
    pub fn budget_for(&self, peer: &P) -> u32 {
        self.budget.get(peer).copied().unwrap_or(FIRST_ANSWER_BYTES)
    }

    /// A round trip to `peer` took `ms` (a ping): the smallest one seen is the link's
    /// latency, without queueing.
    pub fn round_trip(&mut self, peer: P, ms: u64) {
        let r = self.rtt_ms.entry(peer).or_insert(ms);
        *r = (*r).min(ms);
    }

    /// An answer of `bytes` came `elapsed_ms` after its request: size the next ones to the
    /// link (two in flight, each half [`ANSWER_SECS`] of its rate). Quick answers say
    /// little about the rate (they are latency), so they only let the budget grow. The round trip is not
    /// time the answer held the link: counting it, answers on a 64 kbit/s link with a
    /// 600 ms round trip settle at 3.2 KB, under half of what the link carries in a second.
    /// `full`: the answer was cut at the budget (the peer has more). A short answer (the
    /// peer had little, or nothing, to send) spent its time on latency: it says nothing of
    /// the rate, and taking it as one shrank the budget to the floor after every empty
    /// answer of another channel.
    ///
    /// `sent_ms` and `now_ms`: when the request left and its answer arrived. A pipelined
    /// answer queued behind its sibling on the link, so its time on the link starts when
    /// the peer's previous answer arrived, if that was later than the request could have
    /// reached it.
    pub fn measured(&mut self, peer: P, bytes: usize, sent_ms: u64, now_ms: u64, full: bool) {
        let elapsed_ms = now_ms.saturating_sub(sent_ms);
        let rtt = self.rtt_ms.get(&peer).copied().unwrap_or(0);
        let previous = self.arrived_ms.insert(peer, now_ms).unwrap_or(0);
        let cur = self.budget_for(&peer);
        let next = if elapsed_ms < SLOW_ANSWER_MS {
            self.slow.remove(&peer);
            cur.saturating_mul(4)
        } else if !full {
            return;
        } else {
            self.slow.insert(peer);
            let start = (sent_ms + rtt).max(previous);
            let on_link = now_ms.saturating_sub(start).max(elapsed_ms / 4);
            let rate = bytes as u64 * 1000 / on_link.max(1);
            self.rate.insert(peer, rate);
            // Pipelined from now on: two answers in flight, each half the bytes.
            (rate * ANSWER_SECS / 2).min(u32::MAX as u64) as u32
        };
        self.budget.insert(
            peer,
            next.clamp(MIN_ANSWER_BYTES, SYNC_RESPONSE_BYTES as u32),
        );
    }

    /// Whether `channel` is being caught up from another peer; if so, `peer` waits its turn
    /// ([`Catchup::next_queued`]) instead of being asked now. A node that reconnects to many
    /// peers at once (a partition heals) used to get every missing message from each of them.
    ///
    /// Except behind a slow link: when every session in progress for the channel is with a
    /// peer whose answers are slow and `peer` is known to be near (a ping under
    /// [`NEAR_RTT_MS`]), it is asked at once. A field laptop back at the office then takes
    /// the backlog from the relay on the LAN in seconds instead of waiting for the radio
    /// session (a minute for a thousand messages); that session's next requests start from
    /// what is stored by then, so it fetches only what is still missing.
    ///
    /// A request that has stalled ([`STALL_MS`]) holds no turn.
    pub fn queue_behind(&mut self, peer: P, channel: &str, now_ms: u64) -> bool {
        if self.busy_with(peer, channel, now_ms).next().is_none()
            || self.overtakes(peer, channel, now_ms)
        {
            return false;
        }
        let q = self.queued.entry(channel.to_string()).or_default();
        if !q.contains(&peer) {
            q.push_back(peer);
        }
        true
    }

    /// The peers `channel` is being caught up from (requests in flight and not stalled, or
    /// scheduled).
    fn busy<'a>(&'a self, channel: &'a str, now_ms: u64) -> impl Iterator<Item = P> + 'a {
        self.pending
            .values()
            .filter(move |(p, a)| {
                a.channel == channel
                    && (self.slow.contains(p) || now_ms.saturating_sub(a.sent_ms) < STALL_MS)
            })
            .map(|(p, _)| *p)
            .chain(self.scheduled(None, channel).map(|a| a.peer))
    }

    /// [`Catchup::busy`], other than `peer`.
    fn busy_with<'a>(
        &'a self,
        peer: P,
        channel: &'a str,
        now_ms: u64,
    ) -> impl Iterator<Item = P> + 'a {
        self.busy(channel, now_ms).filter(move |p| *p != peer)
    }

    /// Whether `peer` is near and every session for `channel` is with a slow peer.
    fn overtakes(&self, peer: P, channel: &str, now_ms: u64) -> bool {
        let near = self.rtt_ms.get(&peer).is_some_and(|r| *r < NEAR_RTT_MS);
        near && self
            .busy_with(peer, channel, now_ms)
            .all(|p| self.slow.contains(&p))
    }

    /// The channels `peer` waits for behind a slow link that it may now be asked about at
    /// once (its first ping showed it near: a new connection syncs before any ping).
    pub fn near_now(&mut self, peer: P, now_ms: u64) -> Vec<String> {
        let channels: Vec<String> = self
            .queued
            .iter()
            .filter(|(ch, q)| q.contains(&peer) && self.overtakes(peer, ch, now_ms))
            .map(|(ch, _)| ch.clone())
            .collect();
        for ch in &channels {
            if let Some(q) = self.queued.get_mut(ch) {
                q.retain(|p| *p != peer);
                if q.is_empty() {
                    self.queued.remove(ch);
                }
            }
        }
        channels
    }

    /// Channels with peers waiting for their turn.
    pub fn waiting_channels(&self) -> Vec<String> {
        self.queued.keys().cloned().collect()
    }

    /// Whether a request for `channel` is in flight to any peer.
    pub fn in_flight(&self, channel: &str) -> bool {
        self.pending.values().any(|(_, a)| a.channel == channel)
            || self.scheduled(None, channel).next().is_some()
    }

    /// Whether `channel`'s turn is taken: a request for it in flight and not stalled, or
    /// scheduled ([`Catchup::next_queued`] waits for this to be false).
    pub fn turn_taken(&self, channel: &str, now_ms: u64) -> bool {
        self.busy(channel, now_ms).next().is_some()
    }

    /// A session for `channel` ended, or stalled: the next peer whose turn it is, if any.
    pub fn next_queued(&mut self, channel: &str) -> Option<P> {
        let q = self.queued.get_mut(channel)?;
        let next = q.pop_front();
        if q.is_empty() {
            self.queued.remove(channel);
        }
        next
    }

    /// Requests to `peer` still unanswered (diagnostics: "catching up").
    pub fn in_flight_to(&self, peer: &P) -> u32 {
        self.pending.values().filter(|(p, _)| p == peer).count() as u32
    }

    /// The request went out as `key`.
    pub fn sent(&mut self, key: K, peer: P, asked: Asked) {
        self.requests += 1;
        self.pending.insert(key, (peer, asked));
    }

    /// The answer to `key` arrived: what it had asked (`None`: not ours, or too late).
    pub fn answered(&mut self, key: &K) -> Option<(P, Asked)> {
        let (peer, asked) = self.pending.remove(key)?;
        self.retries.remove(&peer);
        Some((peer, asked))
    }

    /// Request `key` failed. Returns the channel to ask again at once, a few times per
    /// peer while it is `connected`, rather than waiting for the next periodic round.
    pub fn failed(&mut self, key: &K, connected: bool) -> Option<(P, String)> {
        let (peer, asked) = self.pending.remove(key)?;
        // The session starts over (from what is stored) when nothing else is in flight; a
        // request scheduled behind this one would skip its lost answer.
        self.forget(peer, &asked.channel);
        // A timeout on a slow link: ask for much less next time.
        let smaller = (self.budget_for(&peer) / 4).max(MIN_ANSWER_BYTES);
        self.budget.insert(peer, smaller);
        let retries = self.retries.entry(peer).or_default();
        (connected && *retries < MAX_RETRIES).then(|| {
            *retries += 1;
            (peer, asked.channel)
        })
    }
}

/// Why an answer failed [`check`].
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Sync(#[from] sync::SyncError),
}

/// The author whose chain an answer from `responder` broke (`e`, from [`check`]), when
/// that is the author's doing and not the responder's lie: not `me` (our own fork is
/// repaired instead), not the responder itself (its own broken chain is its lie), and every
/// message of the author in the answer carries the author's valid signature. Then the
/// author signed two branches of its log (a modified client, or a restored copy), and an
/// honest responder may hold the other one: see `Catchup::leave_out_from`.
pub fn forked_author(
    e: &CheckError,
    me: &DeviceId,
    responder: &DeviceId,
    channel: &str,
    resp: &SyncResponse,
) -> Option<DeviceId> {
    let CheckError::Sync(sync::SyncError::BrokenChain { author, .. }) = e else {
        return None;
    };
    if author == me || author == responder {
        return None;
    }
    signed_by(resp, author, channel).map(|_| *author)
}

/// `author`'s messages in `channel` in an answer, each with its signature checked; `None`
/// if anything in the answer does not decode or one of them does not verify. What shows
/// that `author` itself signed a branch the answer carries.
pub fn signed_by(resp: &SyncResponse, author: &DeviceId, channel: &str) -> Option<Vec<Envelope>> {
    let mut out = Vec::new();
    for w in &resp.messages {
        let e = Envelope::decode_unverified(w).ok()?;
        if e.unsigned.author == *author && e.unsigned.channel == channel {
            out.push(Envelope::decode(w).ok()?);
        }
    }
    Some(out)
}

/// Check an answer whole before anything is stored: every message decodes, was asked
/// for, is in the asked channel and chains to its author's previous one. An error means
/// the peer lied: drop it.
pub fn check<L: Log>(
    log: &L,
    asked: &Asked,
    resp: &SyncResponse,
) -> std::result::Result<Checked, CheckError> {
    let mut envs = Vec::with_capacity(resp.messages.len());
    for w in &resp.messages {
        envs.push(
            Envelope::decode_unverified(w).map_err(|e| CheckError::Malformed(e.to_string()))?,
        );
    }
    let links: Vec<(String, Link)> = envs
        .iter()
        .map(|e| (e.unsigned.channel.clone(), Link::of(e)))
        .collect();
    sync::check_response(
        &asked.have,
        &asked.held,
        &links,
        &asked.channel,
        |a, s| log.entry(&asked.channel, &a, s).ok().flatten(),
        |a, id, below| log.earlier(&asked.channel, &a, &id, below).ok().flatten(),
    )
    .map_err(CheckError::Sync)?;
    // An honest responder says `more` only when it stopped at a limit, so with messages. An
    // empty "more" would have us ask it again forever while the peers queued behind it for
    // this channel never got their turn: it ends the session.
    let next = (resp.more && !links.is_empty()).then(|| {
        let mut sent = asked.have.clone();
        for (_, l) in &links {
            let e = sent.entry(l.author).or_insert(0);
            *e = (*e).max(l.seq);
        }
        sent
    });
    Ok(Checked { envs, next })
}

/// The channels to ask a peer of member `their` about: each of our `topics` that it may
/// read too, and the DM list if we hold inboxes (DM channels are not in the roster).
pub fn channels_for<'t>(
    head: &VerifiedRoster,
    topics: impl IntoIterator<Item = &'t String>,
    their: &Member,
) -> Vec<String> {
    let mut dms = false;
    let mut out = Vec::new();
    for t in topics {
        if t.starts_with('@') {
            dms = true;
        } else if head.roster.may_read(their, t) {
            out.push(t.clone());
        }
    }
    out.sort();
    if dms {
        out.push(DM_LIST.to_string());
    }
    out
}

/// The periodic catch-up round (gossip drops under load; a partition can heal without a
/// reconnect). Asking every peer about every channel costs peers × channels requests per
/// round, and a node that missed something gets the same messages from every peer at once.
/// So each round asks, per channel, **one** peer that may read it, taking them in turn
/// (`round` counts rounds): a message most peers hold is repaired within a round, one only
/// a few hold within a few. The DM list is asked of every peer (DM channels are held by few,
/// and the list is small). A new connection and a gap still sync with that peer at once.
pub fn round_plan<'t, P: Copy + Ord>(
    head: &VerifiedRoster,
    topics: impl IntoIterator<Item = &'t String>,
    peers: &[(P, &Member)],
    round: u64,
) -> Vec<(P, String)> {
    let mut peers: Vec<(P, &Member)> = peers.to_vec();
    peers.sort_by_key(|p| p.0);
    let mut topics: Vec<&String> = topics.into_iter().collect();
    topics.sort();
    let mut out = Vec::new();
    let mut dms = false;
    for (i, t) in topics.iter().enumerate() {
        if t.starts_with('@') {
            dms = true;
            continue;
        }
        let readers: Vec<P> = peers
            .iter()
            .filter(|(_, m)| head.roster.may_read(m, t))
            .map(|(p, _)| *p)
            .collect();
        if !readers.is_empty() {
            let k = (round as usize).wrapping_add(i) % readers.len();
            out.push((readers[k], (*t).clone()));
        }
    }
    if dms {
        out.extend(peers.iter().map(|(p, _)| (*p, DM_LIST.to_string())));
    }
    out
}

/// Whether a catch-up request shows its requester holding more of a channel both may read
/// than we do (some author's log contiguously further along than ours), so that we ask it
/// back at once.
///
/// Why: the periodic round asks each channel of one peer in turn
/// ([`round_plan`]), so a message only its author holds (its gossip lost on every link, its
/// author posting nothing after it) was fetched only when some reader's turn came to the
/// author: with sixteen peers, up to sixteen rounds. The author's own rounds ask others, and
/// its request says what it holds; the peer it asks now takes it then. A requester that
/// lies about being ahead, or two peers that each hold what the other refuses, cause at most
/// one request back per peer and channel every [`ASK_BACK_EVERY_MS`]
/// ([`Catchup::ask_back_due`]).
pub fn ask_back<L: Log>(
    log: &L,
    head: Option<&VerifiedRoster>,
    me: &DeviceId,
    requester: &DeviceId,
    req: &SyncRequest,
) -> bool {
    let Some(head) = head.filter(|_| req.channel != DM_LIST) else {
        return false;
    };
    let reads = |d: &DeviceId| {
        head.member_of_device(d)
            .is_some_and(|m| head.roster.may_read(m, &req.channel))
    };
    reads(me)
        && reads(requester)
        && req
            .have
            .iter()
            .take(sync::MAX_AUTHORS)
            // `u64::MAX` marks an author the requester leaves out, not one it holds.
            .any(|(a, n)| *n != u64::MAX && log.head(&req.channel, a).is_ok_and(|(c, _)| c < *n))
}

/// What [`answer`] sends, and what it learned on the way.
#[derive(Debug, Default)]
pub struct Answer {
    pub response: SyncResponse,
    /// Messages of the channel we hold that the requester still lacks once it has taken this
    /// answer (its sync lag behind us); `None` for a request not answered with messages.
    pub missing: Option<u64>,
}

/// Answer a catch-up request from `requester`: only to a device on our roster that may read
/// the channel, and only messages whose authors are on our roster or were when they posted
/// there (the requester refuses the others). Bounded in messages, bytes and the work a request can cause.
pub fn answer<L: Log>(
    log: &L,
    head: Option<&VerifiedRoster>,
    requester: &DeviceId,
    req: SyncRequest,
) -> Result<Answer> {
    let mut resp = SyncResponse::default();
    let Some(head) = head else {
        return Ok(Answer::default());
    };
    let Some(member) = head.member_of_device(requester) else {
        return Ok(Answer::default());
    };
    if req.channel == DM_LIST {
        resp.channels = log
            .dm_channels()?
            .into_iter()
            .filter(|c| head.roster.may_read(member, c))
            .take(MAX_DM_LIST)
            .collect();
        return Ok(Answer {
            response: resp,
            missing: None,
        });
    }
    if !head.roster.may_read(member, &req.channel)
        || req.have.len() > sync::MAX_AUTHORS
        || req.held.len() > sync::MAX_AUTHORS
    {
        return Ok(Answer::default());
    }
    let theirs: Vector = req.have.into_iter().collect();
    let mut held = Ranges::new();
    for (a, x, y) in req.held {
        let r = held.entry(a).or_default();
        // Honest requesters list at most MAX_RANGES per author; more would make every
        // message checked against an attacker-sized list.
        if r.len() == sync::MAX_RANGES {
            return Ok(Answer::default());
        }
        r.push((x, y));
    }
    let limit = req.max_bytes.map_or(SYNC_RESPONSE_BYTES, |m| {
        (m as usize).min(SYNC_RESPONSE_BYTES)
    });
    let heads = log.heads(&req.channel)?;
    // A leaver's messages too: a device that catches up later still takes those signed
    // before the right was taken away (`VerifiedRoster::posted_before`).
    let on_roster =
        |a: &DeviceId| head.member_of_device(a).is_some() || head.posted_once(a, &req.channel);
    // Counted down as messages go into the answer: what it still lacks once it has this one.
    // What retention or an erasure swept is not offered, so not counted either.
    let mut floored = theirs.clone();
    for a in heads.keys() {
        let f = log.floor(&req.channel, a)?;
        if f > 0 {
            let e = floored.entry(*a).or_insert(0);
            *e = (*e).max(f);
        }
    }
    let mut missing = sync::missing(&floored, &held, &heads, on_roster);
    // A pipelined request first passes over what its sibling in flight gets: the answer
    // that sibling's budget makes, cut by the same rule.
    let mut skipping = req
        .skip
        .map(|s| Cut::new((s as usize).min(SYNC_RESPONSE_BYTES)));
    let mut cut = Cut::new(limit);
    'authors: for (author, from) in sync::plan(&theirs, &heads) {
        if !on_roster(&author) {
            continue;
        }
        let room = skipping.as_ref().map_or(0, Cut::room) + cut.room();
        let have = from - 1;
        // Where retention or an erasure may have left holes, the requester takes messages
        // past any gap (see `intake`): no gap limit here either.
        let gap =
            match crate::governance::gaps_allowed(&head.roster.governance, &req.channel, &author) {
                true => u64::MAX,
                false => sync::MAX_GAP,
            };
        // Skip what they hold beyond a gap and what lies past the gap limit.
        let mut wires = Vec::new();
        let mut next = from;
        while wires.len() <= room {
            let page = log.page(&req.channel, &author, next, room + 1)?;
            let Some(last) = page.last().map(|(s, _)| *s) else {
                break;
            };
            let full = page.len() == room + 1;
            wires.extend(
                page.into_iter()
                    .filter(|(s, _)| sync::wanted(have, gap, &held, &author, *s)),
            );
            if !full || last >= have.saturating_add(gap) {
                break;
            }
            next = last + 1;
        }
        let contig = heads.get(&author).map_or(0, |(c, _)| *c);
        for (seq, w) in wires {
            if let Some(s) = &mut skipping {
                if s.take(w.len()) {
                    missing -= u64::from(seq <= contig).min(missing);
                    continue;
                }
                skipping = None;
            }
            if !cut.take(w.len()) {
                resp.more = true;
                break 'authors;
            }
            resp.messages.push(serde_bytes::ByteBuf::from(w));
            missing -= u64::from(seq <= contig).min(missing);
        }
    }
    Ok(Answer {
        response: resp,
        missing: Some(missing),
    })
}

/// Where an answer stops: at least one message, at most [`sync::MAX_BATCH`], and no more
/// once the next would take it past `limit` bytes. A pipelined request's skip is cut by
/// the same rule, so it passes over exactly what its sibling's answer holds.
struct Cut {
    limit: usize,
    bytes: usize,
    count: usize,
}

impl Cut {
    fn new(limit: usize) -> Cut {
        Cut {
            limit,
            bytes: 0,
            count: 0,
        }
    }

    /// Whether a message of `len` bytes still goes in (then it is counted).
    fn take(&mut self, len: usize) -> bool {
        let fits =
            self.count < sync::MAX_BATCH && (self.count == 0 || self.bytes + len <= self.limit);
        if fits {
            self.bytes += len;
            self.count += 1;
        }
        fits
    }

    /// Messages that may still go in.
    fn room(&self) -> usize {
        sync::MAX_BATCH - self.count
    }
}

/// The direct-message channels of a peer's DM list to catch up on: those both `me` and
/// `their` may read. An oversized or malformed list is a lie.
pub fn dm_wanted(
    head: &VerifiedRoster,
    me: &Member,
    their: &Member,
    resp: SyncResponse,
) -> std::result::Result<Vec<String>, String> {
    if resp.channels.len() > MAX_DM_LIST || !resp.messages.is_empty() {
        return Err("oversized or malformed DM list".into());
    }
    Ok(resp
        .channels
        .into_iter()
        .filter(|c| is_dm(c) && head.roster.may_read(me, c) && head.roster.may_read(their, c))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer is asked back about a channel at most once every few seconds, whatever it
    /// claims, and about each channel on its own.
    #[test]
    fn a_peer_is_asked_back_at_most_once_a_while() {
        let mut c: Catchup<u32, u32> = Catchup::default();
        let t = 1_000_000;
        assert!(c.ask_back_due(1, "general", t));
        assert!(!c.ask_back_due(1, "general", t + 1));
        assert!(c.ask_back_due(1, "ops", t + 1));
        assert!(c.ask_back_due(2, "general", t + 1));
        assert!(!c.ask_back_due(1, "general", t + ASK_BACK_EVERY_MS - 1));
        assert!(c.ask_back_due(1, "general", t + ASK_BACK_EVERY_MS));
    }

    /// A broken chain is the author's doing only when the author signed what broke it and
    /// is neither this device nor the peer that answered.
    #[test]
    fn a_fork_is_pinned_on_its_author_only_with_its_signature() {
        use crate::identity::DeviceKey;
        use crate::message::{Unsigned, PLAINTEXT_FORMAT};
        let (mallory, me, peer) = (
            DeviceKey::generate(),
            DeviceKey::generate().id(),
            DeviceKey::generate().id(),
        );
        let env = Envelope::sign(
            &mallory,
            Unsigned {
                format: PLAINTEXT_FORMAT,
                author: mallory.id(),
                channel: "general".into(),
                sent_at: 1_700_000_000_000,
                seq: 2,
                prev: Some(crate::message::MessageId([7; 32])),
                body: b"the other branch".to_vec(),
            },
        );
        let answer = |wire: Vec<u8>| SyncResponse {
            messages: vec![serde_bytes::ByteBuf::from(wire)],
            ..Default::default()
        };
        let broke = |author| CheckError::Sync(sync::SyncError::BrokenChain { author, seq: 2 });
        let resp = answer(env.wire.clone());
        let m = mallory.id();
        assert_eq!(
            forked_author(&broke(m), &me, &peer, "general", &resp),
            Some(m)
        );
        // The peer's own broken chain is its lie; ours we repair.
        assert_eq!(forked_author(&broke(m), &me, &m, "general", &resp), None);
        assert_eq!(forked_author(&broke(m), &m, &peer, "general", &resp), None);
        // A signature that does not hold: the peer made it up.
        let mut forged = env.wire.clone();
        *forged.last_mut().unwrap() ^= 1;
        let resp = answer(forged);
        assert_eq!(forked_author(&broke(m), &me, &peer, "general", &resp), None);
        // Any other failed check is no fork.
        let other = CheckError::Sync(sync::SyncError::TooMany(513));
        assert_eq!(
            forked_author(&other, &me, &peer, "general", &answer(env.wire)),
            None
        );
    }

    /// A 256 kbit/s link (32 000 B/s) with a 600 ms round trip: answers settle near half a
    /// second of the link's rate (two in flight), not of the rate diluted by the round trip.
    #[test]
    fn answers_are_sized_to_the_link_not_to_its_latency() {
        let link = |bytes: u32| 600 + u64::from(bytes) * 1000 / 32_000;
        // One request at a time: each answer arrives `link` after its request.
        let settle = |c: &mut Catchup<u32, u32>, t: &mut u64| {
            for _ in 0..20 {
                let b = c.budget_for(&1);
                let sent = *t;
                *t += link(b);
                c.measured(1, b as usize, sent, *t, true);
            }
            c.budget_for(&1)
        };
        let mut t = 1_000_000;
        let mut c = Catchup::<u32, u32>::default();
        c.round_trip(1, 700);
        c.round_trip(1, 600);
        c.round_trip(1, 900);
        let b = settle(&mut c, &mut t);
        assert!((15_000..=17_000).contains(&b), "{b}");
        // Without the round trip known, latency passes for a slow link: answers shrink to
        // the floor.
        let b = settle(&mut Catchup::<u32, u32>::default(), &mut t);
        assert_eq!(b, MIN_ANSWER_BYTES);
        // A LAN answers quickly: the budget grows to the cap.
        let mut c = Catchup::<u32, u32>::default();
        for _ in 0..10 {
            let b = c.budget_for(&1);
            t += 2;
            c.measured(1, b as usize, t - 2, t, true);
        }
        assert_eq!(c.budget_for(&1), SYNC_RESPONSE_BYTES as u32);
        // On the slow link, an empty answer (another channel with nothing to send) takes a
        // round trip and more; it leaves the budget where the full answers put it.
        let mut c = Catchup::<u32, u32>::default();
        c.round_trip(1, 600);
        let b = settle(&mut c, &mut t);
        c.measured(1, 0, t, t + 1_300, false);
        c.measured(1, 200, t + 1_300, t + 2_200, false);
        assert_eq!(c.budget_for(&1), b);
    }

    /// Pipelined, answers arrive back to back: each one's request left long before, while
    /// its sibling held the link. Only the time since the previous answer is this one's.
    #[test]
    fn a_pipelined_answer_is_timed_from_its_siblings_arrival() {
        let mut c = Catchup::<u32, u32>::default();
        c.round_trip(1, 200);
        // A 32 000 B/s link, 100 ms each way (so the link, not the round trip, sets the pace); two requests in flight, the next one sent as
        // an answer arrives.
        let (mut link_free, mut sent) = (0u64, std::collections::VecDeque::from([0u64, 0]));
        for _ in 0..20 {
            let b = c.budget_for(&1);
            let asked = sent.pop_front().unwrap();
            let start = (asked + 100).max(link_free);
            link_free = start + u64::from(b) * 1000 / 32_000;
            let now = link_free + 100;
            c.measured(1, b as usize, asked, now, true);
            sent.push_back(now);
        }
        let b = c.budget_for(&1);
        assert!((15_000..=17_000).contains(&b), "{b}");
        assert!(c.slow.contains(&1), "a slow link's sessions are pipelined");
        // A quick answer (the same peer now on the LAN) ends that.
        let t = link_free + 100;
        c.measured(1, b as usize, t, t + 5, true);
        assert!(!c.slow.contains(&1));
    }

    /// Two answers sent together share the link and arrive together, then the link idles
    /// for a round trip: a pipelined request leaves when the answer ahead should be done.
    #[test]
    fn a_pipelined_request_leaves_when_the_answer_ahead_has_had_its_time() {
        let mut c = Catchup::<u32, u32>::default();
        c.round_trip(1, 600);
        // 16 000 B in 1.6 s with a 600 ms round trip: 16 000 B/s, answers of 8 000 B, each
        // half a second on the link.
        c.measured(1, 16_000, 0, 1_600, true);
        let b = c.budget_for(&1);
        assert_eq!(b, 8_000);
        let asked = |sent_ms| Asked {
            channel: "general".into(),
            have: Vector::new(),
            held: Ranges::new(),
            sent_ms,
            max_bytes: b,
        };
        let more: Vector = [(DeviceId([1; 32]), 40)].into_iter().collect();
        // Nothing ahead: the next request now, the one after it once its answer had 0.5 s.
        let now = c.follow_up(1, "general", Some(&more), 1_600);
        assert_eq!(now, vec![(more.clone(), None)]);
        c.sent(1, 1, asked(1_600));
        assert_eq!(c.next_due(), Some(2_100));
        assert!(c.due(2_099).is_empty());
        assert_eq!(c.due(2_100), vec![(1, "general".into(), more.clone(), b)]);
        c.sent(2, 1, asked(2_100));
        assert!(c.in_flight("general"));
        // The first answer arrives: the next is scheduled behind the second.
        c.answered(&1).unwrap();
        assert!(c.follow_up(1, "general", Some(&more), 2_500).is_empty());
        assert_eq!(c.next_due(), Some(2_600));
        // The peer has nothing more: what was scheduled is dropped.
        c.answered(&2).unwrap();
        assert!(c.follow_up(1, "general", None, 2_550).is_empty());
        assert_eq!(c.next_due(), None);
        assert!(!c.in_flight("general"));
    }

    /// A request that fails takes the one scheduled behind it along: that one would skip
    /// an answer that never comes, and leave a hole in the session.
    #[test]
    fn a_failed_request_drops_the_one_scheduled_behind_it() {
        let mut c = Catchup::<u32, u32>::default();
        c.round_trip(1, 600);
        c.measured(1, 16_000, 0, 1_600, true);
        let more: Vector = [(DeviceId([1; 32]), 40)].into_iter().collect();
        let asked = Asked {
            channel: "general".into(),
            have: Vector::new(),
            held: Ranges::new(),
            sent_ms: 1_600,
            max_bytes: c.budget_for(&1),
        };
        assert_eq!(c.follow_up(1, "general", Some(&more), 1_600).len(), 1);
        c.sent(7, 1, asked);
        assert_eq!(c.next_due(), Some(2_100));
        assert_eq!(c.failed(&7, true), Some((1, "general".into())));
        assert_eq!(c.next_due(), None);
        assert!(!c.in_flight("general"));
        assert!(
            c.sessions.is_empty(),
            "the session starts over from what is stored"
        );
    }
}
