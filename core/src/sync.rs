//! Catch-up sync over per-author logs: the pure part (no I/O).
//!
//! Every message names its author's sequence number in its channel and the id of the
//! author's previous message there, so each (channel, author) pair is an append-only log. A
//! node summarizes a channel as a **version vector**: for each author, the length of the
//! contiguous prefix of that author's log it holds. A peer answers with the messages after
//! each prefix, oldest first, so the requester learns exactly what it lacks; the cost is one
//! round trip per `limit` missing messages plus 40 bytes per author, independent of history.
//!
//! Chain rules: seq 1 has no `prev`; seq n > 1 names the id of seq n − 1, or of an earlier
//! message of its author there (or none, for the start) when the seqs between were reserved
//! and never sent: a **skip**. A sender reserves seqs durably ahead so it may publish before
//! its own write is on disk; after a crash it continues past the reservation, so a seq it may
//! already have published is never signed twice (see `store::reserve_seq`). Two different
//! messages with the same (author, seq) are an author fork, and a message whose `prev` names
//! a held message that is not an earlier one of its author breaks the chain: both are
//! rejected. A skip tells holders that the seqs it passes over hold nothing, so their
//! contiguous prefix moves past them ([`advance`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::identity::DeviceId;
use crate::message::MessageId;

/// Messages per sync response; a response is also capped in bytes by the codec.
pub const MAX_BATCH: usize = 512;
/// Sync requests list at most this many authors (devices) per channel.
pub const MAX_AUTHORS: usize = 100_000;

/// How far beyond its contiguous prefix a node takes an author's messages. Anything further
/// is neither accepted nor sent: a member who posts seq 2…N without seq 1 costs its peers at
/// most this many stored messages, not an unbounded tail.
pub const MAX_GAP: u64 = 1024;
/// Held ranges listed per author in a request (beyond that the peer may resend a few).
pub const MAX_RANGES: usize = 64;

/// Per author: the seq ranges (inclusive) held beyond the contiguous prefix, so a responder
/// does not resend them: a gap costs the missing messages, not the tail after it.
pub type Ranges = BTreeMap<DeviceId, Vec<(u64, u64)>>;

/// Whether `seq` of `author` is in one of `ranges`.
pub fn in_ranges(ranges: &Ranges, author: &DeviceId, seq: u64) -> bool {
    ranges
        .get(author)
        .is_some_and(|r| r.iter().any(|(a, b)| (*a..=*b).contains(&seq)))
}

/// Compress ascending seqs into at most `max` inclusive ranges.
pub fn ranges_of(seqs: impl IntoIterator<Item = u64>, max: usize) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for s in seqs {
        let n = out.len();
        match out.last_mut() {
            Some((_, b)) if *b + 1 == s => *b = s,
            _ if n == max => break,
            _ => out.push((s, s)),
        }
    }
    out
}

/// Per author: (contiguous prefix length, highest seq held).
pub type Heads = BTreeMap<DeviceId, (u64, u64)>;

/// What a requester sends: its contiguous prefix per author.
pub type Vector = BTreeMap<DeviceId, u64>;

pub fn vector_of(heads: &Heads) -> Vector {
    heads.iter().map(|(a, (c, _))| (*a, *c)).collect()
}

/// The next request of a session: our prefixes, raised to the last seq this peer already sent
/// for each author (it sends everything it holds in order, so nothing below that is missing
/// from it). This guarantees progress even when we hold messages beyond a gap.
pub fn continue_from(heads: &Heads, sent: &Vector) -> Vector {
    let mut v = vector_of(heads);
    for (a, s) in sent {
        let e = v.entry(*a).or_insert(0);
        *e = (*e).max(*s);
    }
    v
}

/// The (author, first seq) ranges a responder holding `ours` should send to a requester
/// holding `theirs`, in a stable order (by author).
pub fn plan(theirs: &Vector, ours: &Heads) -> Vec<(DeviceId, u64)> {
    ours.iter()
        .filter_map(|(a, (_, max))| {
            let have = theirs.get(a).copied().unwrap_or(0);
            (*max > have).then(|| (*a, have + 1))
        })
        .collect()
}

/// Whether a responder sends (author, seq) to a requester that asked from `have` and holds
/// `held`: not what it holds, not more than `gap` past `have` (the gap limit the requester
/// would refuse beyond: [`MAX_GAP`], or none where governance lets an author's log have
/// holes).
pub fn wanted(have: u64, gap: u64, held: &Ranges, author: &DeviceId, seq: u64) -> bool {
    seq > have && seq <= have.saturating_add(gap) && !in_ranges(held, author, seq)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("peer sent a message for channel '{0}', which was not asked for")]
    WrongChannel(String),
    #[error("peer sent ({author}, seq {seq}), which the requester already held")]
    NotAskedFor { author: DeviceId, seq: u64 },
    #[error("peer sent {0} messages; the limit is {MAX_BATCH}")]
    TooMany(usize),
    #[error("message ({author}, seq {seq}) does not chain to its predecessor")]
    BrokenChain { author: DeviceId, seq: u64 },
}

/// Minimal facts about one message, for the chain rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub author: DeviceId,
    pub seq: u64,
    pub id: MessageId,
    pub prev: Option<MessageId>,
}

impl Link {
    pub fn of(env: &crate::message::Envelope) -> Link {
        Link {
            author: env.unsigned.author,
            seq: env.unsigned.seq,
            id: env.id,
            prev: env.unsigned.prev,
        }
    }
}

/// Check a response against the request it answers, before any state changes: every message
/// is in the asked channel, beyond what the requester said it held, and the messages of each
/// author chain to each other (and to `held`, the requester's own copy of the predecessor).
///
/// `earlier(author, id, below)`: whether the requester holds `id` as `author`'s message in
/// the channel at a seq below `below` (see [`chain_ok`]).
pub fn check_response(
    asked: &Vector,
    held_ranges: &Ranges,
    links: &[(String, Link)],
    channel: &str,
    held: impl Fn(DeviceId, u64) -> Option<MessageId>,
    earlier: impl Fn(DeviceId, MessageId, u64) -> Option<bool>,
) -> Result<(), SyncError> {
    if links.len() > MAX_BATCH {
        return Err(SyncError::TooMany(links.len()));
    }
    let mut last: BTreeMap<DeviceId, (u64, MessageId)> = BTreeMap::new();
    let mut sent: BTreeMap<DeviceId, BTreeMap<MessageId, u64>> = BTreeMap::new();
    for (ch, l) in links {
        if ch != channel {
            return Err(SyncError::WrongChannel(ch.clone()));
        }
        if l.seq <= asked.get(&l.author).copied().unwrap_or(0)
            || in_ranges(held_ranges, &l.author, l.seq)
        {
            return Err(SyncError::NotAskedFor {
                author: l.author,
                seq: l.seq,
            });
        }
        let pred = match last.get(&l.author) {
            Some((s, id)) if *s + 1 == l.seq => Some(*id),
            _ => l
                .seq
                .checked_sub(1)
                .and_then(|p| if p == 0 { None } else { held(l.author, p) }),
        };
        let in_batch = sent.get(&l.author);
        let ok = chain_ok(l, pred, |p| match in_batch.and_then(|b| b.get(p)) {
            Some(s) => Some(*s < l.seq),
            None => earlier(l.author, *p, l.seq - 1),
        });
        if !ok {
            return Err(SyncError::BrokenChain {
                author: l.author,
                seq: l.seq,
            });
        }
        last.insert(l.author, (l.seq, l.id));
        sent.entry(l.author).or_default().insert(l.id, l.seq);
    }
    Ok(())
}

/// Whether `l` chains to its author's log. `pred`: the id held at (author, seq − 1), if any.
/// `earlier(p)`: whether `p` is held as this author's message in the channel below seq − 1
/// (`Some(false)`: held, but not there), or `None` if `p` is not held at all.
pub fn chain_ok(
    l: &Link,
    pred: Option<MessageId>,
    earlier: impl FnOnce(&MessageId) -> Option<bool>,
) -> bool {
    match (l.seq, l.prev) {
        (0, _) => false,
        (1, prev) => prev.is_none(),
        // A skip from the start: a device that crashed before any of its reserved seqs was
        // on its disk.
        (_, None) => true,
        (_, Some(p)) if pred == Some(p) => true,
        (_, Some(p)) => match earlier(&p) {
            // A skip over seqs reserved and never sent (or sent and lost in a crash).
            Some(true) => true,
            Some(false) => false,
            // Neither neighbour held: checked when they arrive.
            None => pred.is_none(),
        },
    }
}

/// How many messages of `ours` (authors for which `counted` holds) a requester holding
/// `theirs` and `held` lacks: per author, our contiguous prefix beyond theirs, less what
/// it said it holds there. This is a node's "sync lag" of a peer, exact for everything
/// but what we hold beyond our own gaps (not counted: we cannot vouch for it).
pub fn missing(
    theirs: &Vector,
    held: &Ranges,
    ours: &Heads,
    counted: impl Fn(&DeviceId) -> bool,
) -> u64 {
    ours.iter()
        .filter(|(a, _)| counted(a))
        .map(|(a, (contig, _))| {
            let have = theirs.get(a).copied().unwrap_or(0);
            let beyond = contig.saturating_sub(have);
            let holds: u64 = held
                .get(a)
                .into_iter()
                .flatten()
                .map(|(x, y)| {
                    let (x, y) = ((*x).max(have.saturating_add(1)), (*y).min(*contig));
                    if y >= x {
                        y - x + 1
                    } else {
                        0
                    }
                })
                .sum();
            beyond.saturating_sub(holds)
        })
        .sum()
}

/// Advance a contiguous prefix after `seq` was added, given which seqs are held.
///
/// `skip_to(c)`: the seq of the next held message after `c` if it skips (its `prev` is a
/// message held at or below `c`, or none), declaring the seqs between empty. A holder of
/// messages the author lost in a crash (published, then not on its disk) passes its skip too.
pub fn advance(
    contiguous: u64,
    held: impl Fn(u64) -> bool,
    skip_to: impl Fn(u64) -> Option<u64>,
) -> u64 {
    let mut c = contiguous;
    loop {
        if held(c + 1) {
            c += 1;
        } else {
            match skip_to(c) {
                Some(s) if s > c && held(s) => c = s,
                _ => return c,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashMap};

    #[test]
    fn missing_counts_what_the_peer_lacks_of_our_prefix() {
        let (a, b, c) = (DeviceId([1; 32]), DeviceId([2; 32]), DeviceId([3; 32]));
        // We hold a 1..=10 and 12 (a gap at 11), b 1..=4, c 1..=3.
        let ours: Heads = [(a, (10, 12)), (b, (4, 4)), (c, (3, 3))].into();
        // They hold a 1..=2 and 5..=6 and 20 (beyond anything of ours), b 1..=9, no c.
        let theirs: Vector = [(a, 2), (b, 9)].into();
        let held: Ranges = [(a, vec![(5, 6), (20, 20)])].into();
        // a: 3..=10 less 5..=6 = 6; b: nothing; c: 3. Message 12 is beyond our gap.
        assert_eq!(missing(&theirs, &held, &ours, |_| true), 9);
        assert_eq!(missing(&theirs, &held, &ours, |d| *d != c), 6);
        let all: Vector = [(a, 10), (b, 4), (c, 3)].into();
        assert_eq!(missing(&all, &Ranges::new(), &ours, |_| true), 0);
    }

    /// An in-memory node: per author, the set of seqs held.
    #[derive(Default, Clone, Debug)]
    struct Mem(HashMap<DeviceId, BTreeSet<u64>>);

    impl Mem {
        fn heads(&self) -> Heads {
            self.0
                .iter()
                .map(|(a, s)| {
                    (
                        *a,
                        (
                            advance(0, |x| s.contains(&x), |_| None),
                            s.last().copied().unwrap_or(0),
                        ),
                    )
                })
                .collect()
        }
        /// Answer a request: up to `limit` messages, oldest first per author.
        fn answer(&self, asked: &Vector, limit: usize) -> (Vec<(DeviceId, u64)>, bool) {
            let mut out = Vec::new();
            for (a, from) in plan(asked, &self.heads()) {
                for s in self.0[&a].range(from..) {
                    if out.len() == limit {
                        return (out, true);
                    }
                    out.push((a, *s));
                }
            }
            (out, false)
        }
        /// One sync session from `peer`; returns rounds used.
        fn sync_from(&mut self, peer: &Mem, limit: usize) -> usize {
            let mut rounds = 0;
            let mut sent = Vector::new();
            loop {
                rounds += 1;
                let asked = continue_from(&self.heads(), &sent);
                let (msgs, more) = peer.answer(&asked, limit);
                for (a, s) in msgs {
                    self.0.entry(a).or_default().insert(s);
                    let e = sent.entry(a).or_insert(0);
                    *e = (*e).max(s);
                }
                if !more {
                    return rounds;
                }
            }
        }
    }

    fn dev(i: u8) -> DeviceId {
        DeviceId([i; 32])
    }

    fn history() -> impl Strategy<Value = Mem> {
        // Up to 4 authors with up to 60 messages each, each held with probability 3/4.
        proptest::collection::vec(proptest::collection::vec(any::<bool>(), 0..60), 1..4)
            .prop_flat_map(|authors| {
                let n: usize = authors.iter().map(Vec::len).sum();
                proptest::collection::vec(0u8..4, n).prop_map(move |keep| {
                    let mut m = Mem::default();
                    let mut k = keep.iter();
                    for (i, msgs) in authors.iter().enumerate() {
                        for (s, _) in msgs.iter().enumerate() {
                            if *k.next().unwrap() != 0 {
                                m.0.entry(dev(i as u8)).or_default().insert(s as u64 + 1);
                            }
                        }
                    }
                    m
                })
            })
    }

    proptest! {
        #[test]
        fn two_nodes_converge_to_the_union_in_bounded_rounds(a in history(), b in history(), limit in 1usize..50) {
            let mut union = a.clone();
            for (au, s) in &b.0 {
                union.0.entry(*au).or_default().extend(s);
            }
            let (mut x, mut y) = (a.clone(), b.clone());
            let total: usize = union.0.values().map(BTreeSet::len).sum();
            let r1 = x.sync_from(&y, limit);
            let r2 = y.sync_from(&x, limit);
            // One more pass each way covers what the first pass of the other side brought.
            let r3 = x.sync_from(&y, limit);
            for (au, s) in &union.0 {
                prop_assert_eq!(x.0.get(au), Some(s));
                prop_assert_eq!(y.0.get(au), Some(s));
            }
            // Each round carries `limit` messages, some possibly already held beyond a gap.
            let bound = 2 * total / limit + 2;
            prop_assert!(r1 <= bound && r2 <= bound && r3 <= bound, "rounds {r1} {r2} {r3} > {bound}");
        }
    }

    fn link(a: u8, seq: u64, id: u8, prev: Option<u8>) -> (String, Link) {
        (
            "general".into(),
            Link {
                author: dev(a),
                seq,
                id: MessageId([id; 32]),
                prev: prev.map(|p| MessageId([p; 32])),
            },
        )
    }

    #[test]
    fn responses_are_checked_before_they_change_anything() {
        let asked: Vector = [(dev(1), 2)].into_iter().collect();
        let held = |_a: DeviceId, s: u64| (s == 2).then_some(MessageId([2; 32]));
        // The requester holds [1] at seq 1, [2] at seq 2 and, beyond a gap, [5] at seq 5.
        let earlier = |_a: DeviceId, id: MessageId, below: u64| match id.0[0] {
            s @ (1 | 2 | 5) => Some(u64::from(s) < below),
            _ => None,
        };
        assert_eq!(
            check_response(
                &asked,
                &Ranges::new(),
                &[link(1, 3, 3, Some(2)), link(1, 4, 4, Some(3))],
                "general",
                held,
                earlier
            ),
            Ok(())
        );
        assert!(matches!(
            check_response(
                &asked,
                &Ranges::new(),
                &[link(1, 2, 2, Some(1))],
                "general",
                held,
                earlier
            ),
            Err(SyncError::NotAskedFor { .. })
        ));
        assert!(matches!(
            check_response(
                &asked,
                &Ranges::new(),
                &[link(1, 3, 3, Some(9))],
                "general",
                held,
                earlier
            ),
            Err(SyncError::BrokenChain { .. })
        ));
        assert!(matches!(
            check_response(
                &asked,
                &Ranges::new(),
                &[link(1, 3, 3, Some(2)), link(1, 4, 4, Some(7))],
                "general",
                held,
                earlier
            ),
            Err(SyncError::BrokenChain { .. })
        ));
        assert!(matches!(
            check_response(
                &asked,
                &Ranges::new(),
                &[link(2, 1, 5, Some(1))],
                "general",
                held,
                earlier
            ),
            Err(SyncError::BrokenChain { .. })
        ));
        assert!(matches!(
            check_response(
                &asked,
                &Ranges::new(),
                &[link(2, 1, 5, None)],
                "ops",
                held,
                earlier
            ),
            Err(SyncError::WrongChannel(_))
        ));
        let many: Vec<_> = (1..=MAX_BATCH as u64 + 1)
            .map(|s| link(3, s, 1, None))
            .collect();
        assert!(matches!(
            check_response(&asked, &Ranges::new(), &many, "general", held, earlier),
            Err(SyncError::TooMany(_))
        ));
        // A held range is not asked for either.
        let held_r: Ranges = [(dev(1), vec![(5, 9)])].into_iter().collect();
        assert!(matches!(
            check_response(
                &asked,
                &held_r,
                &[link(1, 6, 6, Some(5))],
                "general",
                held,
                earlier
            ),
            Err(SyncError::NotAskedFor { .. })
        ));
        // Skips: past seqs reserved and never sent, to a held message or one earlier in the
        // same answer, or from the start; never to a held message that is not earlier.
        for ok in [
            vec![link(1, 7, 7, Some(2))],
            vec![link(1, 3, 3, Some(2)), link(1, 9, 9, Some(3))],
            vec![link(4, 40, 40, None)],
        ] {
            assert_eq!(
                check_response(&asked, &Ranges::new(), &ok, "general", held, earlier),
                Ok(()),
                "{ok:?}"
            );
        }
        assert!(matches!(
            check_response(
                &asked,
                &Ranges::new(),
                &[link(1, 4, 4, Some(5))],
                "general",
                held,
                earlier
            ),
            Err(SyncError::BrokenChain { .. })
        ));
    }

    #[test]
    fn a_skip_moves_the_prefix_past_seqs_that_hold_nothing() {
        // Held: 1, 2, then 9 skipping from 2 (3..=8 reserved, never sent), then 10.
        let held = |s: u64| [1, 2, 9, 10].contains(&s);
        assert_eq!(advance(0, held, |c| (c == 2).then_some(9)), 10);
        // Without the skip the prefix stops at the hole; a skip to a seq not held is no skip.
        assert_eq!(advance(0, held, |_| None), 2);
        assert_eq!(advance(0, held, |c| (c == 2).then_some(8)), 2);
    }

    #[test]
    fn ranges_compress_and_a_gap_costs_only_what_is_missing() {
        assert_eq!(
            ranges_of([2, 3, 4, 7, 9, 10], 8),
            vec![(2, 4), (7, 7), (9, 10)]
        );
        assert_eq!(ranges_of([1, 3, 5, 7], 2), vec![(1, 1), (3, 3)]);
        let a = dev(1);
        let held: Ranges = [(a, ranges_of(2..=2000, MAX_RANGES))].into_iter().collect();
        // The requester holds 2..2000 without 1; the responder holds 1..2000.
        let sent = (1..=2000)
            .filter(|s| wanted(0, MAX_GAP, &held, &a, *s))
            .count();
        assert_eq!(sent, 1);
        // Nothing beyond the gap limit is sent to one who lacks the start.
        assert!(!wanted(0, MAX_GAP, &Ranges::new(), &a, MAX_GAP + 1));
        assert!(wanted(0, u64::MAX, &Ranges::new(), &a, MAX_GAP + 1));
    }
}
