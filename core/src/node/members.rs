//! Roster exchange and what a roster change does to the swarm: the gate, removal notices,
//! subscriptions, subscription policing and key sharing. The decisions are
//! [`crate::proto::membership`]'s; this file applies them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::{gossipsub, request_response, PeerId};

use super::runner::Runner;
use super::{Event, REMOVAL_GRACE};
use crate::identity::DeviceId;
use crate::net::{RosterRequest, RosterResponse};
use crate::profile::PassOnKeys;
use crate::proto::membership::{self, Membership};
use crate::roster::VerifiedRoster;

/// How long a connection must stay as it is before we tell peers that its device's gossip
/// reaches us directly: longer than the time after a connection closes in which gossipsub's
/// lost subscriptions are put right (`SUBSCRIPTIONS_GRACE`, by reconnecting), so a link
/// told is one whose far end knows what we subscribe to.
const STEADY_LINK: Duration =
    Duration::from_secs(super::neighbours::SUBSCRIPTIONS_GRACE.as_secs() + 2);
/// How long after our own connections change we ask the peers for their links again.
const RELINK_AFTER: Duration = Duration::from_millis(500);
/// How often this device signs its peer record anew while nothing about it changes: well
/// inside [`super::PRESENCE_TTL`], so a record passed on still shows it online.
const RECORD_EVERY: Duration = Duration::from_secs(15);
/// How long a device left to pass channel keys on to new readers has to show up (connect, or
/// be heard of anew) before this node does it itself: longer than [`RECORD_EVERY`], so a
/// device on the network is heard of again in it.
pub(super) const PASS_ON_GRACE: Duration = Duration::from_secs(20);

impl Runner {
    /// Bring the gate, subscriptions and peers in line with the head roster.
    pub(super) fn on_roster_changed(&mut self, announce: bool) {
        self.active();
        self.replan();
        let plan = Membership::of(&self.chain, &self.me);
        let allowed: HashSet<PeerId> = plan.allowed.iter().map(|d| d.peer_id()).collect();
        // Devices this version removes: stop gossiping to them now, tell them, close shortly.
        let removed: HashSet<PeerId> = self
            .swarm
            .behaviour()
            .gate
            .allowed()
            .iter()
            .filter(|p| !allowed.contains(p) && self.connections.contains_key(p))
            .copied()
            .collect();
        if plan.listed && !removed.is_empty() {
            let versions: Vec<serde_bytes::ByteBuf> = self
                .chain
                .suffix_for(self.last_version)
                .iter()
                .map(|r| serde_bytes::ByteBuf::from(r.wire.clone()))
                .collect();
            for p in &removed {
                self.swarm.behaviour_mut().gossipsub.blacklist_peer(p);
                self.swarm.behaviour_mut().roster.send_request(
                    p,
                    RosterRequest::Push {
                        versions: versions.clone(),
                    },
                );
                self.closing.push(*p);
            }
            self.close_at = Some(tokio::time::Instant::now() + REMOVAL_GRACE);
        }
        // Peer records of devices this version no longer admits are not passed on, nor
        // kept: the map holds current roster devices only.
        self.records.retain(|p, _| allowed.contains(p));
        self.swarm
            .behaviour_mut()
            .gate
            .set_allowed(allowed, !plan.listed, &removed);
        if plan.wipe {
            self.wipe = true;
        }
        let departed: HashSet<PeerId> = plan.departed.iter().map(|d| d.peer_id()).collect();
        for p in &departed {
            self.swarm.behaviour_mut().gossipsub.blacklist_peer(p);
        }
        self.swarm.behaviour_mut().gate.set_departed(departed);
        if plan.listed != self.listed {
            let asks = match plan.listed {
                true => None,
                false => self.profile.name().ok(),
            };
            if let Some(Err(e)) = self.discovery.as_mut().map(|d| d.ask(asks)) {
                tracing::warn!("announcing this device again over mDNS: {e}");
            }
        }
        self.listed = plan.listed;
        self.last_version = self.chain.version();
        self.roster_topics = plan
            .policed
            .iter()
            .map(|name| (self.topic(name).hash(), name.clone()))
            .collect();
        // A version that takes a member off a channel closes its topic to that member's
        // devices: an honest one unsubscribes once it holds the version; one that stays is
        // disconnected like any eavesdropper (`police`).
        let closed: Vec<PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(p, topics)| topics.iter().any(|t| self.forbidden(p, t)))
            .map(|(p, _)| *p)
            .collect();
        for p in closed {
            self.suspects_later.insert(p);
            self.send_have(p);
        }
        let head = self.chain.head();
        let _ = self.roster_tx.send(head.map(|h| Arc::new(h.clone())));
        // A new retention rule, hold or erasure applies at once (the sweep skips the work
        // when governance did not change and no time has passed).
        self.sweep(None);
        let current: HashSet<String> = self.topics.values().cloned().collect();
        for ch in current.difference(&plan.topics) {
            let t = self.topic(ch);
            self.swarm.behaviour_mut().gossipsub.unsubscribe(&t);
            self.topics.remove(&t.hash());
        }
        for ch in plan.topics.difference(&current) {
            let t = self.topic(ch);
            if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&t) {
                tracing::warn!("subscribe {ch}: {e}");
            }
            self.topics.insert(t.hash(), ch.clone());
        }
        self.share_keys();
        self.announce_connected();
        self.forget_statuses();
        if announce {
            let peers: Vec<PeerId> = self.connections.keys().copied().collect();
            for p in peers {
                self.send_have(p);
                self.start_sync(p);
            }
            self.emit(Event::RosterChanged {
                version: self.chain.version(),
            });
        }
        self.redial();
    }

    /// Give the key holders that appeared with this roster version the keys they lack
    /// (rotation on removal happens before our next message, see `Profile::share_keys`).
    fn share_keys(&mut self) {
        let Some(head) = self.chain.head() else {
            return;
        };
        // `Profile::share_keys` skips channels this device may not post in.
        let dms = self.store.channels_starting_with("@").unwrap_or_default();
        let channels: Vec<String> = head
            .roster
            .channels
            .iter()
            .map(|c| c.name.clone())
            .chain(dms)
            .collect();
        // Who is on the network now, as the app is told (connected, or heard of lately):
        // which of the old key holders can pass other senders' keys on to a new reader.
        let mut passing = PassOnKeys {
            online: self
                .connections
                .keys()
                .chain(&self.present)
                .filter_map(DeviceId::from_peer_id)
                .collect(),
            left: Vec::new(),
        };
        let mut envs = Vec::new();
        for ch in channels {
            match self
                .profile
                .share_keys(&self.chain, &ch, false, Some(&mut passing))
            {
                Ok(e) => envs.extend(e),
                Err(e) => tracing::error!("sharing keys of '{ch}': {e}"),
            }
        }
        let now = Instant::now();
        self.keys_owed.extend(
            passing
                .left
                .into_iter()
                .map(|(ch, by, to)| (now, ch, by, to)),
        );
        if !envs.is_empty() {
            self.queue_own(envs, None);
        }
    }

    /// Pass on the keys left to another device that has not shown up since (see
    /// [`PassOnKeys`]): "online" counts a device heard of in the last
    /// [`super::PRESENCE_TTL`], and one that was lost or switched off in that time would
    /// leave its member's replacement device, or a colleague put on the channel, without the
    /// history of senders who are away. A grant twice costs a few bytes a reader.
    pub(super) fn pass_on_owed(&mut self) {
        let now = Instant::now();
        let (due, wait) = std::mem::take(&mut self.keys_owed)
            .into_iter()
            .partition::<Vec<_>, _>(|(since, ..)| now.duration_since(*since) >= PASS_ON_GRACE);
        self.keys_owed = wait;
        let mut envs = Vec::new();
        for (since, ch, by, to) in due {
            let p = by.peer_id();
            let shown_up =
                self.connections.contains_key(&p) || self.heard.get(&p).is_some_and(|t| *t > since);
            if shown_up {
                continue;
            }
            match self.profile.pass_on_keys(&self.chain, &ch, &to) {
                Ok(e) => envs.extend(e),
                Err(e) => tracing::error!("passing keys of '{ch}' on: {e}"),
            }
        }
        if !envs.is_empty() {
            self.queue_own(envs, None);
        }
    }

    /// A peer subscribed to `topic`. Subscribing to a channel or an inbox the peer's device
    /// may not read is what a modified client does to eavesdrop: bodies are sealed anyway,
    /// but we also stop forwarding to it. As the two rosters may briefly differ, the peer is
    /// first sent our roster and disconnected only if it still holds the subscription at the
    /// next sweep (`police`).
    ///
    /// Someone else's DM inbox is the exception: no roster change lets a member read
    /// another's (only a relay or an archive may, and a device does not become one
    /// unnoticed), and what is said there, even sealed, says who talks with whom (a group
    /// conversation's name lists its members). So that peer is cut at once, before the
    /// next heartbeat forwards it anything.
    pub(super) fn on_subscribed(&mut self, peer: PeerId, topic: &gossipsub::TopicHash) {
        if !self.forbidden(&peer, topic) {
            return;
        }
        let name = self.roster_topics.get(topic).cloned().unwrap_or_default();
        let a_member = DeviceId::from_peer_id(&peer)
            .and_then(|d| {
                self.chain
                    .head()?
                    .member_of_device(&d)
                    .map(|m| !m.role.stores_all())
            })
            .unwrap_or(false);
        if name.starts_with('@') && a_member {
            self.reject(
                "subscription",
                format!("{peer} subscribed to '{name}', another member's inbox; disconnecting"),
            );
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        }
        self.suspects.insert(peer);
        self.send_have(peer);
    }

    fn forbidden(&self, peer: &PeerId, topic: &gossipsub::TopicHash) -> bool {
        let (Some(head), Some(name)) = (self.chain.head(), self.roster_topics.get(topic)) else {
            return false;
        };
        DeviceId::from_peer_id(peer).is_none_or(|d| !membership::may_subscribe(head, &d, name))
    }

    pub(super) fn police(&mut self) {
        let later = std::mem::take(&mut self.suspects_later);
        let suspects = std::mem::replace(&mut self.suspects, later);
        if suspects.is_empty() {
            return;
        }
        let guilty: Vec<(PeerId, String)> = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(p, _)| suspects.contains(p))
            .filter_map(|(p, topics)| {
                let t = topics.into_iter().find(|t| self.forbidden(p, t))?;
                Some((*p, self.roster_topics.get(t).cloned().unwrap_or_default()))
            })
            .collect();
        for (p, name) in guilty {
            self.reject(
                "subscription",
                format!("{p} subscribed to the topic of '{name}', which its device may not read; disconnecting"),
            );
            let _ = self.swarm.disconnect_peer_id(p);
        }
    }

    pub(super) fn topic(&self, channel: &str) -> gossipsub::IdentTopic {
        gossipsub::IdentTopic::new(format!("{}{channel}", self.topic_prefix))
    }

    pub(super) fn send_have(&mut self, peer: PeerId) {
        let (version, hash) = self
            .chain
            .head()
            .map(|h| (h.version(), h.hash))
            .unwrap_or((0, [0; 32]));
        if self.have_in_flight.insert((peer, version, hash)) {
            self.swarm.behaviour_mut().roster.send_request(
                &peer,
                RosterRequest::Have {
                    version,
                    hash,
                    now: Some(crate::now_ms()),
                },
            );
        }
    }

    /// Ask every connected peer where the other roster devices listen, and which it is
    /// steadily linked to (peer exchange).
    pub(super) fn ask_all_addrs(&mut self) {
        let peers: Vec<PeerId> = self.connections.keys().copied().collect();
        for p in peers {
            self.ask_addrs(p);
        }
    }

    /// Ask the peers for their links again shortly (see `relink_at`): 500 ms gives the
    /// others' connections to a device that just came time to open too.
    pub(super) fn relink(&mut self) {
        if self.relink_at.is_none() {
            self.relink_at = Some(tokio::time::Instant::now() + RELINK_AFTER);
        }
    }

    /// Ask a roster peer where the other roster devices listen (peer exchange).
    pub(super) fn ask_addrs(&mut self, peer: PeerId) {
        if self.listed && self.swarm.behaviour().gate.allowed().contains(&peer) {
            self.swarm
                .behaviour_mut()
                .roster
                .send_request(&peer, RosterRequest::Addrs);
        }
    }

    /// This device's record and the records of the roster devices we are connected to, for
    /// `peer` (a roster device).
    fn addrs_for(&mut self, peer: &PeerId) -> Vec<crate::net::PeerAddrs> {
        use crate::net::{pex, PeerAddrs};
        if !self.swarm.behaviour().gate.allowed().contains(peer) {
            return Vec::new();
        }
        let mut out: Vec<PeerAddrs> = self.own_record().into_iter().collect();
        let gate = &self.swarm.behaviour().gate;
        out.extend(
            self.connections
                .keys()
                .filter(|p| *p != peer && gate.allowed().contains(p))
                .filter_map(|p| {
                    let (record, bytes) = self.records.get(p)?;
                    Some(pex::entry(DeviceId::from_peer_id(p)?, record, bytes))
                })
                .take(crate::net::MAX_PEX_DEVICES - 1),
        );
        out
    }

    /// The roster devices other than `peer` that we have been connected to steadily (see
    /// `RosterResponse::links`): one connection, none opened or closed for
    /// [`STEADY_LINK`]. A new connection may be one of two about to be cut to
    /// one, and gossipsub's subscriptions can be lost with the one cut, so for a while the
    /// author's publish may miss us; only a steady link is told.
    fn steady_links(&self, peer: &PeerId) -> Vec<DeviceId> {
        let gate = &self.swarm.behaviour().gate;
        let now = std::time::Instant::now();
        self.connections
            .keys()
            .filter(|p| *p != peer && gate.allowed().contains(p))
            .filter(|p| {
                self.churned
                    .get(p)
                    .is_some_and(|t| now.duration_since(*t) >= STEADY_LINK)
            })
            .filter_map(DeviceId::from_peer_id)
            .take(crate::net::MAX_PEX_DEVICES)
            .collect()
    }

    /// This device's peer record, signed again when where it listens changed or the one
    /// held is [`RECORD_EVERY`] old.
    ///
    /// Why not every second: every device checks the signature of each new record it is
    /// passed, from each peer's answer, so a record signed anew for each request made 30
    /// nodes spend a fifth of their time checking records. A record a few seconds old still
    /// says "on the network" (presence lasts [`super::PRESENCE_TTL`]).
    fn own_record(&mut self) -> Option<crate::net::PeerAddrs> {
        use crate::net::pex;
        let now = crate::now_ms() / 1000;
        let listening = pex::advertised(self.swarm.listeners());
        let stale = |r: &pex::Record| {
            now.saturating_sub(r.seq) >= RECORD_EVERY.as_secs()
                || r.seq > now
                || r.addrs != listening
        };
        if self.own_record.as_ref().is_none_or(|(r, _)| stale(r)) {
            self.own_record = pex::sign(&self.profile.key().libp2p_keypair(), &listening);
        }
        let (record, bytes) = self.own_record.as_ref()?;
        Some(pex::entry(self.me, record, bytes))
    }

    /// Records a roster peer passed on for roster devices (its own and those of the devices
    /// connected to it). Each is taken only as its device signed it: news (newer than the
    /// one held, and recent) says the device is on the network (see `Event::Presence`), and
    /// its addresses are dialed if we are not connected to it (the noise handshake proves
    /// who answers). An entry without a record, or one that does not verify, is ignored.
    ///
    /// `links` is the peer's word on which devices' gossip reaches it directly: it decides
    /// only whether we forward it gossip (a peer that lies misses its own live copies).
    fn on_addrs(&mut self, from: PeerId, list: Vec<crate::net::PeerAddrs>, links: Vec<DeviceId>) {
        if !self.listed || !self.swarm.behaviour().gate.allowed().contains(&from) {
            return;
        }
        let now = std::time::Instant::now();
        let linked = links
            .iter()
            .take(crate::net::MAX_PEX_DEVICES)
            .map(DeviceId::peer_id)
            .collect();
        self.links.insert(from, (now, linked));
        let now_secs = crate::now_ms() / 1000;
        let mut forged = 0usize;
        for pa in list.into_iter().take(crate::net::MAX_PEX_DEVICES) {
            let p = pa.device.peer_id();
            if pa.device == self.me || !self.swarm.behaviour().gate.allowed().contains(&p) {
                continue;
            }
            let Some(bytes) = pa.record.map(|b| b.into_vec()) else {
                continue;
            };
            let held = self.records.get(&p);
            if let Some((record, _)) = held.filter(|(_, b)| *b == bytes) {
                // The one we have (from this peer or another): nothing to check. It says the
                // device is on the network again if we had stopped hearing of it (our own
                // connection to it closed since): a peer passes on only the records of
                // devices it is connected to, and the record's own time bounds how long a
                // replay can say so.
                if !self.heard.contains_key(&p)
                    && !self.connections.contains_key(&p)
                    && record.seq.abs_diff(now_secs) <= crate::net::pex::FRESH_SECS
                {
                    self.heard.insert(p, now);
                }
                continue;
            }
            let Some(record) = crate::net::pex::open(&pa.device, &bytes) else {
                forged += 1;
                continue;
            };
            let held_seq = held.map(|(r, _)| r.seq);
            if held_seq.is_some_and(|h| record.seq <= h) {
                continue;
            }
            if crate::net::pex::fresh(held_seq, record.seq, now_secs) {
                self.heard.insert(p, now);
            }
            let addrs = record.addrs.clone();
            self.records.insert(p, (record, bytes));
            if self.connections.contains_key(&p) || addrs.is_empty() {
                continue;
            }
            self.facts.seen(p, super::facts::Via::Exchange);
            if !self.known.contains_key(&p) {
                self.replan();
            }
            let known = self.known.entry(p).or_default();
            for a in addrs {
                if !known.contains(&a) {
                    known.push(a);
                }
            }
            known.truncate(2 * crate::net::MAX_PEX_ADDRS);
            self.dial_peer(p);
        }
        if forged > 0 {
            self.reject(
                "exchange",
                format!(
                    "{forged} peer records from {from} are not signed by the devices they name; \
                     ignored (a modified client, or a corrupted answer)"
                ),
            );
        }
        self.presence();
    }

    pub(super) fn on_roster_event(
        &mut self,
        ev: request_response::Event<RosterRequest, RosterResponse>,
    ) {
        use request_response::{Event as E, Message as M};
        match ev {
            E::Message {
                peer,
                message:
                    M::Request {
                        request: RosterRequest::Have { version, hash, now },
                        channel,
                        ..
                    },
                ..
            } => {
                self.peer_versions.insert(peer, version);
                self.facts.heard(peer, hash, now);
                let dev = DeviceId::from_peer_id(&peer);
                let departed = self.swarm.behaviour().gate.departed(&peer);
                let versions =
                    membership::roster_answer(&self.chain, dev.as_ref(), departed, version, hash)
                        .into_iter()
                        .map(|r| serde_bytes::ByteBuf::from(r.wire.clone()))
                        .collect();
                let _ = self.swarm.behaviour_mut().roster.send_response(
                    channel,
                    RosterResponse {
                        versions,
                        addrs: Vec::new(),
                        links: Vec::new(),
                    },
                );
                if membership::peer_is_ahead(&self.chain, version, hash) {
                    self.send_have(peer);
                }
            }
            E::Message {
                peer,
                message:
                    M::Request {
                        request: RosterRequest::Push { versions },
                        channel,
                        ..
                    },
                ..
            } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .roster
                    .send_response(channel, RosterResponse::default());
                // Pushes (removal notices) only from devices on our roster.
                if self.swarm.behaviour().gate.allowed().contains(&peer) {
                    self.apply_roster_wires(peer, &versions);
                } else {
                    self.reject(
                        "roster",
                        format!("push from {peer}, which is not on our roster; ignored"),
                    );
                }
            }
            E::Message {
                peer,
                message:
                    M::Request {
                        request: RosterRequest::Addrs,
                        channel,
                        ..
                    },
                ..
            } => {
                let addrs = self.addrs_for(&peer);
                let links = self.steady_links(&peer);
                let _ = self.swarm.behaviour_mut().roster.send_response(
                    channel,
                    RosterResponse {
                        versions: Vec::new(),
                        addrs,
                        links,
                    },
                );
            }
            E::Message {
                peer,
                message: M::Response { response, .. },
                ..
            } if !response.addrs.is_empty() => self.on_addrs(peer, response.addrs, response.links),
            E::Message {
                peer,
                message: M::Response { response, .. },
                ..
            } => {
                self.facts.spoke(peer);
                self.have_in_flight.retain(|(p, _, _)| *p != peer);
                // While bootstrapping anyone may hand us the chain (it is verified from
                // version 1 against the org id); after that only roster devices.
                if !self.listed || self.swarm.behaviour().gate.allowed().contains(&peer) {
                    self.apply_roster_wires(peer, &response.versions);
                }
            }
            E::OutboundFailure { peer, error, .. } => {
                self.have_in_flight.retain(|(p, _, _)| *p != peer);
                // Ask again on the connection kept (the failed request was a `Have` or an
                // `Addrs`; both are cheap and idempotent). A removed device learns of its
                // removal this way rather than at the next redial.
                if self.cut_by_surplus(&peer, &error) {
                    self.send_have(peer);
                    self.ask_addrs(peer);
                }
            }
            _ => {}
        }
    }

    /// Whether `r` is signed by the root key or an admin: of the version before it when
    /// this node holds that, else of its head.
    fn trusted_signer(&self, r: &VerifiedRoster) -> bool {
        self.chain
            .get(r.version().saturating_sub(1))
            .or(self.chain.head())
            .is_some_and(|p| p.trusts(&r.signer))
    }

    /// Verify and apply roster versions a peer sent (as a response or a removal notice).
    fn apply_roster_wires(&mut self, peer: PeerId, wires: &[serde_bytes::ByteBuf]) {
        let mut incoming = Vec::new();
        let latest = crate::now_ms().saturating_add(crate::message::MAX_FUTURE_SKEW_MS);
        for w in wires.iter().take(10_000) {
            match VerifiedRoster::decode(w) {
                // A version a member signed (one that adds channels) dated ahead of this
                // clock is refused, with all after it, until its time comes (peers offer it
                // again): every later version takes the later time, so a member's version
                // dated in 2100 would stretch a leaver's past rights to 2100. An admin's
                // version is taken as dated, lest a fast clock hold a removal up.
                Ok(r) if r.roster.issued_at > latest && !self.trusted_signer(&r) => {
                    self.reject(
                        "roster",
                        format!(
                            "from {peer}: version {} is dated {} ms ahead of this clock",
                            r.version(),
                            r.roster.issued_at - crate::now_ms()
                        ),
                    );
                    break;
                }
                Ok(r) => incoming.push(r),
                Err(e) => self.reject("roster", format!("from {peer}: {e}")),
            }
        }
        if incoming.is_empty() {
            return;
        }
        match self.profile.apply_rosters(&mut self.chain, incoming) {
            Ok(rep) => {
                if rep.contested.is_some() {
                    self.contested = rep.contested;
                } else if rep
                    .changed_from
                    .is_some_and(|v| self.contested.is_some_and(|c| v <= c))
                {
                    self.contested = None; // the root key settled it
                }
                if let Some(e) = rep.error {
                    self.reject("roster", format!("from {peer}: {e}"));
                }
                if rep.changed_from.is_some() {
                    tracing::info!("roster now at version {}", self.chain.version());
                    self.on_roster_changed(true);
                }
            }
            Err(e) => tracing::error!("storing roster: {e}"),
        }
    }
}
