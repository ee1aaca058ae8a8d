//! Which known roster devices this node dials: [`crate::proto::neighbours`] decides, from
//! the roster (who subscribes to which of our topics) and what the swarm knows (whose dials
//! fail); this file gathers those facts and caches the answer until one of them changes.

use std::collections::HashSet;
use std::time::Duration;

use libp2p::swarm::ConnectionId;
use libp2p::PeerId;

use super::runner::Runner;
use super::{Event, PRESENCE_TTL};
use crate::identity::DeviceId;
use crate::proto::neighbours::{self, Candidate};
use crate::roster::dm_members;

/// How long a connection this node opened is kept before [`Runner::prune`] may close it.
const PRUNE_AFTER: Duration = Duration::from_secs(15);

/// How long after one of a peer's two connections closed gossipsub must know what the peer
/// subscribes to. Its subscriptions travel once, on whichever connection was ready first;
/// when that is the one that closes, they can be lost with it (gossipsub never sends them
/// again), and then none of our gossip reaches the peer: everything waits for catch-up.
/// On the emulated 64 kbit/s radio link a subscription takes well under a second.
pub(super) const SUBSCRIPTIONS_GRACE: Duration = Duration::from_secs(5);
/// A peer is reconnected for lost subscriptions at most once in this long.
const RESUBSCRIBE_EVERY: Duration = Duration::from_secs(60);

/// Of the connections to one peer (oldest first; whether this node dialed each), those this
/// node closes so that one is left. One direction is kept: the smaller id's dials if there
/// are any, else the other device's; both ends agree on that from who dialed. Of several
/// dials in the kept direction only the dialer chooses (its oldest): the two ends may see
/// racing dials complete in different orders, and if both chose, each could close the
/// other's pick and leave none (seen: a device redialling at start was cut off for 3 s).
///
/// Why one: gossipsub hands a peer's messages to whichever of its connections is ready, so
/// two connections reorder them (two devices with each other's address dial each other at
/// start); a key grant overtaken by the message it opens shows "waiting for the key".
pub(super) fn surplus(
    local: &PeerId,
    peer: &PeerId,
    conns: &[(ConnectionId, bool)],
) -> Vec<ConnectionId> {
    let smaller_dials = local < peer;
    // Whether the kept direction is this node's dials.
    let ours = if conns.iter().any(|(_, dialed)| *dialed == smaller_dials) {
        smaller_dials
    } else {
        !smaller_dials
    };
    let keep = conns
        .iter()
        .find(|(_, dialed)| *dialed == ours)
        .map(|(id, _)| *id);
    conns
        .iter()
        .filter(|(id, dialed)| *dialed != ours || (ours && Some(*id) != keep))
        .map(|(id, _)| *id)
        .collect()
}

impl Runner {
    /// A connection to `peer` was established: keep one (see [`surplus`]).
    pub(super) fn one_connection(&mut self, peer: PeerId, id: ConnectionId, dialed: bool) {
        let conns = self.conns.entry(peer).or_default();
        conns.push((id, dialed));
        if conns.len() < 2 {
            return;
        }
        for extra in surplus(self.swarm.local_peer_id(), &peer, conns) {
            tracing::debug!("closing a second connection to {peer}");
            self.swarm.close_connection(extra);
        }
    }

    /// Peers whose subscriptions a closed second connection may have taken with it (see
    /// [`SUBSCRIPTIONS_GRACE`]): if gossipsub does not know one that may read a channel we
    /// subscribe to as subscribed to it, the connection is closed and redialled, and the
    /// fresh one carries them (inbox topics are not checked: few devices hold another's).
    /// Seen in the slow-link field test: every live message reached the other side only by
    /// catch-up rounds, seconds late, for the rest of the session.
    pub(super) fn check_subscriptions(&mut self) {
        let now = std::time::Instant::now();
        let due: Vec<PeerId> = self
            .sub_checks
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            self.sub_checks.remove(&peer);
            if !self.connections.contains_key(&peer)
                || self
                    .sub_healed
                    .get(&peer)
                    .is_some_and(|t| now.duration_since(*t) < RESUBSCRIBE_EVERY)
            {
                continue;
            }
            // Every channel of ours the peer's member may read, an honest peer on the same
            // roster subscribes to; gossipsub sends each subscription on its own, so one can
            // be lost and another arrive.
            let theirs: Vec<&libp2p::gossipsub::TopicHash> = self
                .swarm
                .behaviour()
                .gossipsub
                .all_peers()
                .filter(|(p, _)| **p == peer)
                .flat_map(|(_, topics)| topics)
                .collect();
            let member = self
                .chain
                .head()
                .and_then(|h| Some((h, h.member_of_device(&DeviceId::from_peer_id(&peer)?)?)));
            let missing = member.and_then(|(h, m)| {
                self.topics
                    .iter()
                    .find(|(hash, ch)| {
                        !ch.starts_with('@') && h.roster.may_read(m, ch) && !theirs.contains(hash)
                    })
                    .map(|(_, ch)| ch.clone())
            });
            if let Some(ch) = missing {
                tracing::info!(
                    "{peer}'s subscription to '{ch}' was lost with a surplus connection: reconnecting"
                );
                self.sub_healed.insert(peer, now);
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
        self.sub_healed
            .retain(|_, t| now.duration_since(*t) < RESUBSCRIBE_EVERY);
    }

    /// A connection to `peer` closed.
    pub(super) fn connection_gone(&mut self, peer: &PeerId, id: ConnectionId) {
        if let Some(conns) = self.conns.get_mut(peer) {
            conns.retain(|(c, _)| *c != id);
            if conns.is_empty() {
                self.conns.remove(peer);
            }
        }
    }

    /// Whether the plan wants a connection to `peer` (computed when first asked after a
    /// change; see [`Runner::replan`]). A peer the user gave by address always is: it is
    /// dialled by that address and never enters the plan's list of found devices (an
    /// exchange skips devices already connected), so the plan alone closed it 15 s after
    /// every redial.
    pub(super) fn wanted(&mut self, peer: &PeerId) -> bool {
        if self.static_peers.values().any(|p| *p == Some(*peer)) {
            return true;
        }
        if self.plan.is_none() {
            self.plan = Some(self.neighbours());
        }
        self.plan.as_ref().is_some_and(|p| p.contains(peer))
    }

    /// Something the plan reads changed (a connection, a failed dial, a newly found device,
    /// the roster, a message with nobody to take it).
    pub(super) fn replan(&mut self) {
        self.plan = None;
    }

    /// Close connections this node opened and no longer needs: a device that started
    /// without a roster dials everyone it finds (any of them may hold the roster), and keeps
    /// only its plan's share once it learns the org is large. Connections others opened stay
    /// (their plan wants us); a new connection gets [`PRUNE_AFTER`] to finish its roster
    /// exchange and catch-up first.
    pub(super) fn prune(&mut self) {
        if !self.listed {
            return;
        }
        let old: Vec<PeerId> = self
            .outbound
            .iter()
            .filter(|(_, since)| since.elapsed() > PRUNE_AFTER)
            .map(|(p, _)| *p)
            .collect();
        for p in old {
            if !self.wanted(&p) {
                tracing::debug!("closing {p}: not one of this node's neighbours");
                self.outbound.remove(&p);
                let _ = self.swarm.disconnect_peer_id(p);
            }
        }
    }

    /// Whether a request to `peer` failed only because the connection it went out on
    /// closed while another stays open: typically the surplus of two connections to one
    /// device (see `surplus`) closing under it. Then asking again, on the one kept, is right.
    pub(super) fn cut_by_surplus(
        &self,
        peer: &PeerId,
        error: &libp2p::request_response::OutboundFailure,
    ) -> bool {
        matches!(
            error,
            libp2p::request_response::OutboundFailure::ConnectionClosed
        ) && self.swarm.is_connected(peer)
    }

    /// Tell the app of each connected device that the roster names and it was not yet told
    /// of: at its connection, or when a roster naming it arrives after it (see `announced`).
    pub(super) fn announce_connected(&mut self) {
        let Some(head) = self.chain.head() else {
            return;
        };
        let mut news = Vec::new();
        for peer in self.connections.keys() {
            if self.announced.contains(peer) {
                continue;
            }
            if let Some(dev) = DeviceId::from_peer_id(peer) {
                if let Some(m) = head.member_of_device(&dev) {
                    news.push((*peer, dev, m.name.clone()));
                }
            }
        }
        for (peer, device, name) in news {
            self.announced.insert(peer);
            self.emit(Event::PeerConnected { device, name });
        }
    }

    /// Tell the app which roster devices went online or offline (see [`Event::Presence`]).
    pub(super) fn presence(&mut self) {
        let gate = &self.swarm.behaviour().gate;
        let online: HashSet<PeerId> = gate
            .allowed()
            .iter()
            .filter(|p| {
                self.connections.contains_key(p)
                    || self
                        .heard
                        .get(p)
                        .is_some_and(|t| t.elapsed() < PRESENCE_TTL)
            })
            .copied()
            .collect();
        self.heard.retain(|_, t| t.elapsed() < PRESENCE_TTL);
        let changed: Vec<(PeerId, bool)> = online
            .symmetric_difference(&self.present)
            .map(|p| (*p, online.contains(p)))
            .collect();
        self.present = online;
        for (p, online) in changed {
            if let Some(device) = DeviceId::from_peer_id(&p) {
                self.emit(Event::Presence { device, online });
            }
        }
    }

    /// Whether the org is small enough that every device keeps a connection to every
    /// other (the roster lists at most the mesh limit of other devices).
    pub(super) fn full_mesh(&self) -> bool {
        self.swarm.behaviour().gate.allowed().len() <= self.mesh_limit
    }

    pub(super) fn neighbours(&self) -> HashSet<PeerId> {
        let gate = &self.swarm.behaviour().gate;
        let Some(head) = self.chain.head() else {
            return self.known.keys().copied().collect();
        };
        let mine = head.member_of_device(&self.me);
        // A relay or an archive is the hub others reach each other through: it keeps every
        // connection.
        let limit = match mine {
            Some(m) if m.role.stores_all() => usize::MAX,
            _ => self.mesh_limit,
        };
        if gate.allowed().len() <= limit {
            return self.known.keys().copied().collect();
        }
        // Our topics: what we subscribe to, and the inboxes of those we write to directly
        // (a direct message reaches its recipient only through a subscriber of their inbox).
        let mut topics: Vec<String> = self.topics.values().cloned().collect();
        if let Some(m) = mine {
            for dm in self.store.channels_starting_with("@").unwrap_or_default() {
                for other in dm_members(&dm).into_iter().flatten() {
                    let inbox = format!("@{other}");
                    if other != m.name && !topics.contains(&inbox) {
                        topics.push(inbox);
                    }
                }
            }
        }
        let me = self.swarm.local_peer_id().to_bytes();
        let candidates: Vec<Candidate<PeerId>> = self
            .known
            .keys()
            .filter(|p| gate.allowed().contains(p))
            .filter_map(|p| {
                let member = head.member_of_device(&DeviceId::from_peer_id(p)?)?;
                Some(Candidate {
                    peer: *p,
                    topics: neighbours::shared(&topics, |t| head.roster.may_subscribe(member, t)),
                    always: member.role.stores_all(),
                    failing: !self.connections.contains_key(p) && self.last_error.contains_key(p),
                    rank: neighbours::rank(&me, &p.to_bytes()),
                })
            })
            .collect();
        neighbours::choose(&candidates, topics.len(), gate.allowed().len(), limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every order of up to four connections, in either direction, as each end may see them
    /// complete: closing what each end's [`surplus`] names after every arrival leaves
    /// exactly one open.
    #[test]
    fn both_ends_leave_exactly_one_connection_whatever_order_they_see() {
        let (x, y) = (PeerId::random(), PeerId::random());
        for n in 1..=4usize {
            // Bit i of `dirs`: connection i was dialed by `x` (else by `y`).
            for dirs in 0..(1u32 << n) {
                let by_x = |i: usize| dirs & (1 << i) != 0;
                for x_order in orders(n) {
                    for y_order in orders(n) {
                        let mut closed = HashSet::new();
                        for (local, peer, order, dialer_is_local) in
                            [(&x, &y, &x_order, true), (&y, &x, &y_order, false)]
                        {
                            let mut seen = Vec::new();
                            for &i in order {
                                let dialed = by_x(i) == dialer_is_local;
                                seen.push((ConnectionId::new_unchecked(i), dialed));
                                closed.extend(surplus(local, peer, &seen));
                            }
                        }
                        assert_eq!(
                            closed.len(),
                            n - 1,
                            "dirs {dirs:b}, x saw {x_order:?}, y saw {y_order:?}"
                        );
                    }
                }
            }
        }
    }

    fn orders(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut all = Vec::new();
        for rest in orders(n - 1) {
            for at in 0..=rest.len() {
                let mut o = rest.clone();
                o.insert(at, n - 1);
                all.push(o);
            }
        }
        all
    }

    #[test]
    fn the_smaller_ids_dial_is_kept() {
        let (x, y) = (PeerId::random(), PeerId::random());
        let (small, large) = if x < y { (x, y) } else { (y, x) };
        let (c1, c2) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        // c1 dialed by the larger, c2 by the smaller: both ends close c1.
        assert_eq!(surplus(&small, &large, &[(c1, false), (c2, true)]), [c1]);
        assert_eq!(surplus(&large, &small, &[(c1, true), (c2, false)]), [c1]);
        assert_eq!(surplus(&large, &small, &[(c2, false), (c1, true)]), [c1]);
        // Two dials by the larger: it closes its newer; the smaller leaves that to it.
        assert_eq!(surplus(&large, &small, &[(c1, true), (c2, true)]), [c2]);
        assert!(surplus(&small, &large, &[(c2, false), (c1, false)]).is_empty());
        assert!(surplus(&small, &large, &[(c1, true)]).is_empty());
    }
}
