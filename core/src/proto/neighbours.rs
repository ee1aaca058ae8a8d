//! Which roster devices a node dials. Up to [`FULL_MESH_UP_TO`] devices, all of them: a
//! message then takes one hop to everyone, and an office of a few dozen desks pays little
//! for it. Beyond that a full mesh costs more than it gives (measured: 100 nodes on two
//! cores never converged, every node holding 99 connections with their pings, identify
//! exchanges and gossip heartbeats), and gossip needs only a mesh of a few peers per topic.
//! So a node dials, for each topic it reads or writes to, [`PER_TOPIC`] devices that
//! subscribe to it, plus relays and archives (they store everything, and join sites whose
//! multicast does not meet), and never fewer than [`FLOOR`] devices in all.
//!
//! Who is picked is spread by a per-pair rank (a hash of both ids), so the nodes of a large
//! org do not all pick the same few; the union of everyone's picks is then a random graph of
//! degree at least `PER_TOPIC` within each topic, connected with overwhelming probability
//! (the proptest below builds it for random orgs of up to 200 devices). Devices whose last
//! dial failed come last, so an unreachable device does not hold a place.
//!
//! Connections others opened to us do not count toward our picks, though they would save a
//! few: if they did, a handful of colluding roster devices could connect to a member first,
//! fill its places, and then withhold what they gossip (they cannot forge, but they can drop).
//! The rank depends only on the two ids, so nobody can make a node pick them.
//!
//! The node keeps whatever connections others open to it (their plan wants it), and closes
//! only ones it opened itself that its plan no longer holds.

use std::collections::HashSet;
use std::hash::Hash;

/// Orgs with at most this many other devices are fully meshed.
pub const FULL_MESH_UP_TO: usize = 48;
/// Devices per topic a node keeps a connection to (gossipsub's default mesh is 6).
pub const PER_TOPIC: usize = 8;
/// Devices a node keeps a connection to whatever its topics.
pub const FLOOR: usize = 8;

/// A roster device this node knows an address for, as the plan sees it.
#[derive(Debug, Clone)]
pub struct Candidate<P> {
    pub peer: P,
    /// Which of this node's topics (indexes into its topic list) the device subscribes to.
    pub topics: Vec<usize>,
    /// A relay or archive: always dialled.
    pub always: bool,
    /// The last dial failed and it is not connected.
    pub failing: bool,
    /// The per-pair spread (see the module doc); smaller is picked first.
    pub rank: u64,
}

/// [`Candidate::topics`] of a device: which of `mine` (this node's topics) it subscribes to.
pub fn shared<T>(mine: &[T], subscribes: impl Fn(&T) -> bool) -> Vec<usize> {
    (0..mine.len()).filter(|&i| subscribes(&mine[i])).collect()
}

/// The devices to keep a connection to. `devices` is how many other devices the roster
/// lists (the full-mesh threshold counts the org, not what discovery has found so far);
/// `limit` is [`FULL_MESH_UP_TO`] unless the operator changed it; `topics` is how many topics
/// this node has.
pub fn choose<P: Copy + Eq + Hash>(
    candidates: &[Candidate<P>],
    topics: usize,
    devices: usize,
    limit: usize,
) -> HashSet<P> {
    if devices <= limit {
        return candidates.iter().map(|c| c.peer).collect();
    }
    let mut order: Vec<&Candidate<P>> = candidates.iter().collect();
    order.sort_by_key(|c| (c.failing, c.rank));
    let mut chosen = HashSet::new();
    let mut per_topic = vec![0usize; topics];
    fn take<P: Copy + Eq + Hash>(
        c: &Candidate<P>,
        chosen: &mut HashSet<P>,
        per_topic: &mut [usize],
    ) {
        if chosen.insert(c.peer) {
            for &t in &c.topics {
                if let Some(n) = per_topic.get_mut(t) {
                    *n += 1;
                }
            }
        }
    }
    for c in order.iter().filter(|c| c.always) {
        take(c, &mut chosen, &mut per_topic);
    }
    for c in &order {
        let short = c
            .topics
            .iter()
            .any(|&t| per_topic.get(t).is_some_and(|n| *n < PER_TOPIC));
        if short {
            take(c, &mut chosen, &mut per_topic);
        }
    }
    for c in &order {
        if chosen.len() >= FLOOR {
            break;
        }
        take(c, &mut chosen, &mut per_topic);
    }
    chosen
}

/// The per-pair rank: the same pair ranks the same on both sides' restarts, and different
/// nodes rank a device differently.
pub fn rank(me: &[u8], peer: &[u8]) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(me);
    h.update(peer);
    let b = h.finalize();
    u64::from_le_bytes(b.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// Whether forwarding a message would only send copies that every recipient drops as
/// duplicates: each of gossipsub's `recipients` (its mesh for the topic) is the `source` it
/// came from, its `author`, or a device that `linked` says is connected to the author.
/// The author's own publish goes to every peer it is connected to that reads the topic
/// (gossipsub's flood publish), so those hold it already.
///
/// Why: in an office where every device is connected to every other, each receiver would
/// otherwise send every message on to all the others and back to its author, (n − 1)² copies
/// beyond the n − 1 useful ones; with 5 devices that was 40 % of a receiver's CPU (measured
/// in docs/benchmarks.md). `linked(peer, author)` is what `peer` said in its last peer
/// exchange, recent enough to trust; a device that lies about its links misses only its own
/// live copies, and catch-up brings those. Unknown or stale links forward, as gossip does.
pub fn forward_spared<P: Eq>(
    recipients: impl IntoIterator<Item = P>,
    source: &P,
    author: &P,
    linked: impl Fn(&P, &P) -> bool,
) -> bool {
    recipients
        .into_iter()
        .all(|p| p == *source || p == *author || linked(&p, author))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An org of `n` devices, device `i` reading the topics `reads[i]`; every device runs
    /// [`choose`] with everyone discovered, and the union of their picks is the connection
    /// graph.
    fn graph(reads: &[Vec<usize>], relays: &[usize], limit: usize) -> Vec<HashSet<usize>> {
        let n = reads.len();
        let mut adj = vec![HashSet::new(); n];
        for me in 0..n {
            let cands: Vec<Candidate<usize>> = (0..n)
                .filter(|&p| p != me)
                .map(|p| Candidate {
                    peer: p,
                    // Relays subscribe to everything.
                    topics: shared(&reads[me], |t| relays.contains(&p) || reads[p].contains(t)),
                    always: relays.contains(&p),
                    failing: false,
                    rank: rank(&me.to_le_bytes(), &p.to_le_bytes()),
                })
                .collect();
            for p in choose(&cands, reads[me].len(), n - 1, limit) {
                adj[me].insert(p);
                adj[p].insert(me);
            }
        }
        adj
    }

    /// Whether the devices reading `topic` (and relays) form one connected piece using only
    /// edges among themselves: gossip on a topic travels only through its subscribers.
    fn topic_connected(
        adj: &[HashSet<usize>],
        reads: &[Vec<usize>],
        relays: &[usize],
        topic: usize,
    ) -> bool {
        let inside = |d: usize| relays.contains(&d) || reads[d].contains(&topic);
        let members: Vec<usize> = (0..adj.len()).filter(|&d| inside(d)).collect();
        let Some(&start) = members.first() else {
            return true;
        };
        let mut seen = HashSet::from([start]);
        let mut stack = vec![start];
        while let Some(d) = stack.pop() {
            for &e in &adj[d] {
                if inside(e) && seen.insert(e) {
                    stack.push(e);
                }
            }
        }
        seen.len() == members.len()
    }

    #[test]
    fn a_small_org_is_fully_meshed() {
        let reads = vec![vec![0]; 20];
        let adj = graph(&reads, &[], FULL_MESH_UP_TO);
        assert!(adj.iter().all(|a| a.len() == 19));
    }

    #[test]
    fn a_large_org_keeps_few_connections_and_relays_get_all() {
        let reads = vec![vec![0]; 120];
        let adj = graph(&reads, &[7], FULL_MESH_UP_TO);
        assert_eq!(adj[7].len(), 119, "everyone dials the relay");
        let degrees: Vec<usize> = adj.iter().map(|a| a.len()).collect();
        let max = degrees
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 7)
            .map(|(_, d)| *d)
            .max();
        assert!(max.unwrap() < 40, "degrees {degrees:?}");
        assert!(topic_connected(&adj, &reads, &[], 0));
        // Without the relay too.
        let adj = graph(&reads, &[], FULL_MESH_UP_TO);
        assert!(topic_connected(&adj, &reads, &[], 0));
    }

    #[test]
    fn a_failing_device_gives_its_place_to_another() {
        let c = |peer: usize, failing: bool| Candidate {
            peer,
            topics: vec![0],
            always: false,
            failing,
            rank: peer as u64,
        };
        let mut cands: Vec<_> = (0..60).map(|p| c(p, false)).collect();
        let before = choose(&cands, 1, 60, FULL_MESH_UP_TO);
        assert!(before.contains(&0));
        cands[0].failing = true;
        let after = choose(&cands, 1, 60, FULL_MESH_UP_TO);
        assert!(!after.contains(&0));
        assert_eq!(after.len(), PER_TOPIC);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Random orgs of 49 to 200 devices over 1 to 6 channels, each device reading a
        /// random non-empty subset, with or without a relay: every channel's readers form
        /// one connected mesh, and nobody but a relay holds a full mesh's connections.
        #[test]
        fn every_topic_stays_connected(
            n in 49usize..200,
            channels in 1usize..6,
            seed in any::<u64>(),
            relay in any::<bool>(),
        ) {
            let mut s = seed;
            let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); s >> 33 };
            let reads: Vec<Vec<usize>> = (0..n)
                .map(|_| {
                    let mut r: Vec<usize> = (0..channels).filter(|_| next() % 3 != 0).collect();
                    if r.is_empty() {
                        r.push((next() as usize) % channels);
                    }
                    r
                })
                .collect();
            let relays: Vec<usize> = if relay { vec![0] } else { vec![] };
            let adj = graph(&reads, &relays, FULL_MESH_UP_TO);
            for t in 0..channels {
                prop_assert!(topic_connected(&adj, &reads, &relays, t), "channel {t} split");
            }
            for (d, a) in adj.iter().enumerate() {
                if !relays.contains(&d) {
                    prop_assert!(a.len() < n - 1 || n <= 50, "device {d} meshed with all {n}");
                }
            }
        }
    }

    #[test]
    fn a_forward_is_spared_only_when_every_recipient_is_linked_to_the_author() {
        let linked = |p: &u8, a: &u8| matches!((*p, *a), (3, 1) | (4, 1) | (3, 2));
        // Author 1 sent to us directly; 3 and 4 are connected to it.
        assert!(forward_spared([1, 3, 4], &1, &1, linked));
        // 5 said nothing (or too long ago): it may not have it.
        assert!(!forward_spared([1, 3, 4, 5], &1, &1, linked));
        // It came from 3; 4 is linked to the author 1, who is not our neighbour.
        assert!(forward_spared([3, 4], &3, &1, linked));
        // Author 2: 4 is not connected to it, so what 3 passed us goes on to 4.
        assert!(!forward_spared([3, 4], &3, &2, linked));
        // No mesh for the topic: nothing to send anyway.
        assert!(forward_spared([], &1, &1, linked));
    }
}
