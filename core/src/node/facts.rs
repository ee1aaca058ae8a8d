//! Diagnostics facts, kept as things happen, and the [`Report`] made of them on request.
//! A diagnostic that is stale or guessed is worse than none (people act on it), so every
//! fact here is recorded at the event that makes it true: who was found how and when, who
//! connected since when, each peer's roster and clock as it last said, and devices not on
//! the roster that showed up. Memory is bounded: entries are per roster device, plus at
//! most [`MAX_STRANGERS`] others.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

use libp2p::swarm::{ConnectionError, DialError};
use libp2p::{Multiaddr, PeerId};

use super::runner::{without_p2p, Runner};
use crate::diagnose::{DeviceState, Report, StaticPeer, Stranger};
use crate::discovery::{Found, Record};
use crate::identity::DeviceId;
use crate::net::ip_of;

/// Devices not on the roster remembered for diagnostics and as requests to join, and for
/// how long: up to this many of this org (asking to join) and, apart, of other orgs, so that
/// a building shared with another company of forty desks does not hide a newcomer to ours.
const MAX_STRANGERS: usize = 32;
/// Of this org's, at most this many announced from one source (an address, or a global
/// IPv6 /64, as the gate counts callers: `net::ip_of`): a host announcing records
/// by the hundred (a flood, or a colleague's modified client) fills a few places, not all of
/// them, and a newcomer elsewhere on the LAN is still listed. Room for a terminal server's
/// several newcomers asking at once.
const MAX_STRANGERS_PER_HOST: usize = 8;
const STRANGER_TTL_MS: u64 = 30 * 60 * 1000;
/// A connection the peer closes this soon, before it said anything, was refused by its gate.
const REFUSED_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// How a device was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Via {
    Mdns,
    Address,
    Exchange,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Mdns => "mDNS",
            Via::Address => "address",
            Via::Exchange => "peer exchange",
        }
    }
}

struct Sighting {
    first: u64,
    last: u64,
    by: BTreeSet<Via>,
}

struct Seen {
    addrs: Vec<Multiaddr>,
    this_org: bool,
    last: u64,
    /// The member name it asks to join under (its mDNS record's claim).
    asks: Option<String>,
}

pub(super) struct Facts {
    started: Instant,
    found: HashMap<PeerId, Sighting>,
    /// Connected since (unix ms), and whether the peer has spoken on this connection.
    since: HashMap<PeerId, (u64, Instant)>,
    heard: HashSet<PeerId>,
    hashes: HashMap<PeerId, [u8; 32]>,
    clocks: HashMap<PeerId, i64>,
    last_message: HashMap<DeviceId, u64>,
    /// Messages (and bytes) of each author that arrived in this minute and the one before,
    /// to name a device flooding the org (see [`crate::diagnose::BUSY_PER_MINUTE`]).
    pace: HashMap<DeviceId, Pace>,
    /// Per peer and channel: messages we hold that it still lacked after our last catch-up
    /// answer (only roster devices asking for channels they may read get that far).
    lag: HashMap<PeerId, HashMap<String, u64>>,
    dials: HashMap<PeerId, u64>,
    strangers: HashMap<PeerId, Seen>,
    myself: Vec<Multiaddr>,
    mdns_records: u64,
    /// Channels where a peer holds messages this device signed that differ from its own
    /// log, and the first seq that differs (see [`Facts::diverged`]).
    diverged: std::collections::BTreeMap<String, u64>,
    /// (channel, member and device) of authors that signed two branches of their log
    /// (see `Runner::on_others_fork`).
    forked: std::collections::BTreeSet<(String, String)>,
    /// (peer, channel) whose answers held a branch of the peer's own log that parts from
    /// ours (see `Runner::on_responders_fork`): counted once each.
    responders_forked: HashSet<(PeerId, String)>,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            started: Instant::now(),
            found: HashMap::new(),
            since: HashMap::new(),
            heard: HashSet::new(),
            hashes: HashMap::new(),
            clocks: HashMap::new(),
            last_message: HashMap::new(),
            pace: HashMap::new(),
            lag: HashMap::new(),
            dials: HashMap::new(),
            strangers: HashMap::new(),
            myself: Vec::new(),
            mdns_records: 0,
            diverged: Default::default(),
            forked: Default::default(),
            responders_forked: HashSet::new(),
        }
    }
}

impl Facts {
    /// A peer holds, signed by this device, a message at `seq` in `channel` that differs
    /// from this device's own log there: this data directory is an older copy (restored
    /// from a backup) or runs elsewhere too. Returns whether it is news.
    pub(super) fn diverged(&mut self, channel: &str, seq: u64) -> bool {
        match self.diverged.get_mut(channel) {
            Some(s) if *s <= seq => false,
            Some(s) => {
                *s = seq;
                false
            }
            None => {
                self.diverged.insert(channel.to_string(), seq);
                true
            }
        }
    }

    /// `who` signed two branches of its log in `channel`; returns whether it is news.
    pub(super) fn forked(&mut self, channel: &str, who: String) -> bool {
        self.forked.insert((channel.to_string(), who))
    }

    /// `peer` answered with a branch of its own log in `channel`; returns whether it is news.
    pub(super) fn responder_forked(&mut self, peer: PeerId, channel: &str) -> bool {
        self.responders_forked.insert((peer, channel.to_string()))
    }

    pub(super) fn seen(&mut self, peer: PeerId, via: Via) {
        let now = crate::now_ms();
        let s = self.found.entry(peer).or_insert_with(|| Sighting {
            first: now,
            last: now,
            by: BTreeSet::new(),
        });
        s.last = now;
        s.by.insert(via);
    }

    /// An mDNS record. Returns whether it is one to dial (a device of our org).
    pub(super) fn record(&mut self, f: &Found, on_roster: bool) -> bool {
        match f.kind {
            Record::Myself => {
                for a in &f.addrs {
                    if !self.myself.contains(a) && self.myself.len() < 16 {
                        self.myself.push(a.clone());
                    }
                }
                false
            }
            Record::Ours if on_roster => {
                // Listed now: no longer waiting, and its place is free for the next one.
                self.strangers.remove(&f.peer);
                self.mdns_records += 1;
                self.seen(f.peer, Via::Mdns);
                true
            }
            Record::Ours => {
                self.stranger(f.peer, &f.addrs, true, f.asks.clone());
                true
            }
            Record::OtherOrg => {
                self.stranger(f.peer, &f.addrs, false, None);
                false
            }
        }
    }

    fn stranger(
        &mut self,
        peer: PeerId,
        addrs: &[Multiaddr],
        this_org: bool,
        asks: Option<String>,
    ) {
        let now = crate::now_ms();
        self.strangers
            .retain(|_, s| now.saturating_sub(s.last) < STRANGER_TTL_MS);
        let addrs: Vec<Multiaddr> = addrs.iter().take(4).map(without_p2p).collect();
        if !self.strangers.contains_key(&peer) {
            let host = addrs.first().and_then(ip_of);
            let kin = || self.strangers.values().filter(|s| s.this_org == this_org);
            let from_host = kin()
                .filter(|s| host.is_some() && s.addrs.first().and_then(ip_of) == host)
                .count();
            if kin().count() >= MAX_STRANGERS || (this_org && from_host >= MAX_STRANGERS_PER_HOST) {
                return;
            }
        }
        self.strangers.insert(
            peer,
            Seen {
                addrs,
                this_org,
                last: now,
                asks,
            },
        );
    }

    pub(super) fn connected(&mut self, peer: PeerId) {
        self.since
            .entry(peer)
            .or_insert((crate::now_ms(), Instant::now()));
    }

    /// The last connection to `peer` closed. Returns why, in plain words, when the reason
    /// is one a user should see.
    pub(super) fn closed(
        &mut self,
        peer: PeerId,
        cause: Option<&ConnectionError>,
    ) -> Option<String> {
        let heard = self.heard.remove(&peer);
        let (_, at) = self.since.remove(&peer)?;
        if !heard && at.elapsed() < REFUSED_WITHIN {
            return Some(crate::diagnose::LINK_WORDS[8].into());
        }
        cause.map(|c| format!("{}: {}", crate::diagnose::LINK_WORDS[9], plain(&chain(c))))
    }

    /// The peer told us its roster (a `Have`), and its clock if it sent one.
    pub(super) fn heard(&mut self, peer: PeerId, hash: [u8; 32], now: Option<u64>) {
        self.heard.insert(peer);
        self.hashes.insert(peer, hash);
        if let Some(t) = now {
            let offset = t as i128 - crate::now_ms() as i128;
            self.clocks.insert(
                peer,
                offset.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
            );
        }
    }

    pub(super) fn spoke(&mut self, peer: PeerId) {
        self.heard.insert(peer);
    }

    pub(super) fn dialed(&mut self, peer: PeerId) {
        *self.dials.entry(peer).or_default() += 1;
    }

    /// A peer asked to catch up on `channel`; after our answer it lacks `missing` of our
    /// messages there.
    pub(super) fn lagging(&mut self, peer: PeerId, channel: String, missing: u64) {
        self.lag.entry(peer).or_default().insert(channel, missing);
    }

    /// Its lag behind us over every channel it asked about, if it asked.
    fn lag_of(&self, peer: &PeerId) -> Option<u64> {
        self.lag.get(peer).map(|c| c.values().sum())
    }

    /// One of `author`'s messages was taken, bringing `bytes` to this disk (the message, and
    /// the file it shares if this node fetches it); `live`: it counts towards the author's
    /// pace (sent now, not history caught up on).
    pub(super) fn message_from(&mut self, author: DeviceId, bytes: u64, live: bool) {
        let now = crate::now_ms();
        self.last_message.insert(author, now);
        if live {
            self.pace.entry(author).or_default().add(now, bytes);
        }
    }

    /// (messages, bytes) of `author` that arrived in the minute before `now`.
    fn last_minute(&self, author: &DeviceId, now: u64) -> (u64, u64) {
        self.pace.get(author).map_or((0, 0), |p| p.last_minute(now))
    }
}

/// Arrivals of one author, counted by clock minute: two counters instead of a timestamp per
/// message, so a flood costs no memory.
#[derive(Debug, Default, Clone, Copy)]
struct Pace {
    minute: u64,
    this: (u64, u64),
    before: (u64, u64),
}

impl Pace {
    fn roll(&mut self, minute: u64) {
        if minute == self.minute + 1 {
            self.before = self.this;
            self.this = (0, 0);
        } else if minute > self.minute + 1 {
            (self.before, self.this) = ((0, 0), (0, 0));
        }
        self.minute = self.minute.max(minute);
    }

    fn add(&mut self, now: u64, bytes: u64) {
        self.roll(now / 60_000);
        self.this.0 += 1;
        self.this.1 += bytes;
    }

    /// This minute's count and the share of the last minute's that falls within 60 s of
    /// `now` (spread evenly over it).
    fn last_minute(mut self, now: u64) -> (u64, u64) {
        self.roll(now / 60_000);
        let left = 60_000 - now % 60_000;
        let share = |n: u64| n * left / 60_000;
        (
            self.this.0 + share(self.before.0),
            self.this.1 + share(self.before.1),
        )
    }
}

/// An error and its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// An I/O or handshake failure in words a user can act on; unknown ones verbatim.
fn plain(text: &str) -> String {
    use crate::diagnose::LINK_WORDS as W;
    let t = text.to_lowercase();
    let what = if t.contains("connection refused") {
        W[0]
    } else if t.contains("timed out") || t.contains("timeout") {
        W[1]
    } else if t.contains("no route") || t.contains("unreachable") {
        W[2]
    } else if t.contains("reset") || t.contains("broken pipe") || t.contains("eof") {
        W[3]
    } else if t.contains("noise") || t.contains("multistream") || t.contains("negotiat") {
        W[4]
    } else {
        return text.to_string();
    };
    format!("{what} [{text}]")
}

/// A failed dial in plain words.
pub(super) fn dial_error(e: &DialError) -> String {
    match e {
        DialError::Denied { cause } => match cause.downcast_ref::<crate::net::NotOnRoster>() {
            Some(_) => crate::diagnose::LINK_WORDS[5].into(),
            None => format!("denied by this node: {cause}"),
        },
        DialError::WrongPeerId { obtained, address } => {
            format!("{address}: {} ({obtained})", crate::diagnose::LINK_WORDS[6])
        }
        DialError::LocalPeerId { .. } => crate::diagnose::LINK_WORDS[7].into(),
        DialError::Transport(errors) => errors
            .iter()
            .map(|(a, e)| transport_error(a, e))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// A failed dial of one address, in plain words.
pub(super) fn transport_error(
    addr: &Multiaddr,
    e: &libp2p::TransportError<std::io::Error>,
) -> String {
    format!("{}: {}", without_p2p(addr), plain(&chain(e)))
}

impl Runner {
    pub(super) fn diagnose(&self) -> Report {
        let head = self.chain.head();
        let f = &self.facts;
        let now = crate::now_ms();
        let plan = self.neighbours();
        let hex8 = |h: &[u8; 32]| {
            h[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let devices = head
            .map(|h| {
                h.roster
                    .members
                    .iter()
                    .flat_map(|m| m.devices.iter().map(move |d| (m, d)))
                    .filter(|(_, d)| **d != self.me)
                    .map(|(m, d)| {
                        let p = d.peer_id();
                        let mut seen_at: Vec<String> = self
                            .known
                            .get(&p)
                            .into_iter()
                            .flatten()
                            .map(|a| without_p2p(a).to_string())
                            .collect();
                        seen_at.extend(
                            self.static_peers
                                .iter()
                                .filter(|(_, s)| **s == Some(p))
                                .map(|(a, _)| a.to_string()),
                        );
                        let sighting = f.found.get(&p);
                        let (messages_last_minute, bytes_last_minute) = f.last_minute(d, now);
                        let connected = self.connections.get(&p);
                        DeviceState {
                            member: m.name.clone(),
                            device: *d,
                            seen_at,
                            connected: connected.map(|a| a.to_string()),
                            roster_version: self.peer_versions.get(&p).copied(),
                            last_error: self.last_error.get(&p).cloned(),
                            found_by: sighting
                                .map(|s| s.by.iter().map(|v| v.name().to_string()).collect())
                                .unwrap_or_default(),
                            first_seen: sighting.map(|s| s.first),
                            last_seen: sighting.map(|s| s.last),
                            connected_since: f.since.get(&p).map(|s| s.0),
                            roster_hash: f.hashes.get(&p).map(hex8),
                            clock_offset_ms: connected.and(f.clocks.get(&p).copied()),
                            last_message: f.last_message.get(d).copied(),
                            messages_last_minute,
                            bytes_last_minute,
                            catching_up: self.catchup.in_flight_to(&p),
                            missing: f.lag_of(&p),
                            dial_attempts: f.dials.get(&p).copied().unwrap_or(0),
                            spare: connected.is_none()
                                && self.known.contains_key(&p)
                                && !plan.contains(&p),
                            online: self.present.contains(&p),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut static_peers: Vec<StaticPeer> = self
            .static_peers
            .iter()
            .map(|(a, p)| StaticPeer {
                addr: a.to_string(),
                connected: p
                    .filter(|p| self.connections.contains_key(p))
                    .and_then(|p| DeviceId::from_peer_id(&p)),
                last_error: self
                    .dial_errors
                    .get(&without_p2p(a))
                    .or_else(|| p.and_then(|p| self.last_error.get(&p)))
                    .cloned(),
            })
            .collect();
        static_peers.sort_by(|a, b| a.addr.cmp(&b.addr));
        let gate = &self.swarm.behaviour().gate;
        let mut strangers: Vec<Stranger> = f
            .strangers
            .iter()
            .filter(|(p, s)| {
                !gate.allowed().contains(p) && now.saturating_sub(s.last) < STRANGER_TTL_MS
            })
            .map(|(p, s)| Stranger {
                device: p.to_string(),
                addrs: s.addrs.iter().map(|a| a.to_string()).collect(),
                this_org: s.this_org,
                turned_away: None,
                inbound: false,
                asks: s.asks.clone().filter(|_| s.this_org),
                code: String::new(),
            })
            .collect();
        for t in &gate.turned_away {
            if gate.allowed().contains(&t.peer) || now.saturating_sub(t.at) > STRANGER_TTL_MS {
                continue;
            }
            let id = t.peer.to_string();
            let i = match strangers.iter().position(|s| s.device == id) {
                Some(i) => i,
                None => {
                    strangers.push(Stranger {
                        device: id,
                        addrs: Vec::new(),
                        // Only devices with this org's invitation know where to find us
                        // (mDNS records of our org, or an address an admin gave).
                        this_org: true,
                        turned_away: None,
                        inbound: false,
                        asks: None,
                        code: String::new(),
                    });
                    strangers.len() - 1
                }
            };
            let s = &mut strangers[i];
            s.turned_away = Some(t.at);
            s.inbound = t.inbound;
            if let Some(a) = t.addr.as_ref().map(without_p2p) {
                let a = a.to_string();
                if !s.addrs.contains(&a) {
                    s.addrs.insert(0, a);
                }
            }
        }
        let org = self.profile.org().ok().flatten();
        for s in strangers.iter_mut().filter(|s| s.this_org) {
            if let (Some(org), Ok(d)) = (&org, s.device.parse::<DeviceId>()) {
                s.code = crate::identity::join_code(org, &d);
            }
        }
        strangers.sort_by(|a, b| a.device.cmp(&b.device));
        // Our own record, from an address that is not this host's: a copy runs there.
        let mine: HashSet<String> = crate::diagnose::interfaces()
            .into_iter()
            .map(|i| i.addr)
            .collect();
        let identity_elsewhere = f
            .myself
            .iter()
            .map(without_p2p)
            .filter(|a| {
                // A link-local record starts with its zone; the address follows.
                a.iter()
                    .find(|p| !matches!(p, libp2p::multiaddr::Protocol::Ip6zone(_)))
                    .is_some_and(|p| match p {
                        libp2p::multiaddr::Protocol::Ip4(ip) => !mine.contains(&ip.to_string()),
                        libp2p::multiaddr::Protocol::Ip6(ip) => !mine.contains(&ip.to_string()),
                        _ => false,
                    })
            })
            .map(|a| a.to_string())
            .collect();
        Report {
            device: self.me,
            member: head
                .and_then(|h| h.member_of_device(&self.me))
                .map(|m| m.name.clone()),
            roster_version: self.chain.version(),
            contested: self.contested,
            mdns: self.discovery.is_some(),
            interfaces: crate::diagnose::interfaces(),
            listen: self.listen_addrs.iter().map(|a| a.to_string()).collect(),
            static_peers,
            devices,
            rejected: self
                .tally
                .rejected
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            denied_connections: gate.denied,
            at: now,
            uptime_secs: f.started.elapsed().as_secs(),
            roster_hash: head.map(|h| hex8(&h.hash)).unwrap_or_default(),
            mdns_records: f.mdns_records,
            strangers,
            identity_elsewhere,
            own_history_diverged: f.diverged.iter().map(|(c, s)| (c.clone(), *s)).collect(),
            forked_authors: f.forked.iter().cloned().collect(),
            disk_free: self.store.disk_free(),
            disk_margin: crate::store::min_free(),
            inviting_until: self.inviting_until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counted by clock minute, the last minute's arrivals are this minute's and the part of
    /// the one before that lies within 60 s; older minutes are forgotten.
    #[test]
    fn pace_counts_the_last_minute() {
        let mut p = Pace::default();
        let t = 1_000 * 60_000;
        for _ in 0..600 {
            p.add(t + 30_000, 100);
        }
        assert_eq!(p.last_minute(t + 30_000), (600, 60_000));
        // Half into the next minute: half of the one before is within 60 s.
        p.add(t + 90_000, 100);
        assert_eq!(p.last_minute(t + 90_000), (301, 30_100));
        assert_eq!(p.last_minute(t + 119_999).0, 1);
        assert_eq!(p.last_minute(t + 200_000), (0, 0));
        let mut f = Facts::default();
        let d = crate::DeviceKey::generate().id();
        f.message_from(d, 10, true);
        f.message_from(d, 99, false);
        assert_eq!(f.last_minute(&d, crate::now_ms()), (1, 10));
    }

    #[test]
    fn io_errors_read_as_what_to_do() {
        assert!(plain("Connection refused (os error 111)").starts_with("refused: nothing listens"));
        assert!(plain("connection timed out").starts_with("timed out"));
        assert!(plain("No route to host (os error 113)").starts_with("no route"));
        assert_eq!(plain("something new"), "something new");
    }

    #[test]
    fn a_connection_closed_at_once_by_a_silent_peer_means_its_gate_refused_us() {
        let mut f = Facts::default();
        let p = PeerId::random();
        f.connected(p);
        assert!(f
            .closed(p, None)
            .unwrap()
            .contains("roster does not list this device"));
        // One that spoke first is not refused (closed for another reason, or none).
        f.connected(p);
        f.spoke(p);
        assert_eq!(f.closed(p, None), None);
        // Never connected: nothing to say.
        assert_eq!(f.closed(p, None), None);
    }

    /// A flood of records asking to join from one host, and another org's forty devices in
    /// the same building, leave room for a real newcomer; a device once listed gives its
    /// place back.
    #[test]
    fn requests_to_join_keep_room_for_a_newcomer_under_a_flood() {
        let at =
            |ip: &str| -> Vec<Multiaddr> { vec![format!("/ip4/{ip}/tcp/4000").parse().unwrap()] };
        let found = |peer, addrs: Vec<Multiaddr>, kind, asks: Option<&str>| Found {
            peer,
            addrs,
            kind,
            asks: asks.map(str::to_string),
        };
        let mut f = Facts::default();
        let waiting = |f: &Facts| f.strangers.values().filter(|s| s.this_org).count();
        for _ in 0..40 {
            f.record(
                &found(PeerId::random(), at("10.0.0.9"), Record::OtherOrg, None),
                false,
            );
        }
        for _ in 0..500 {
            f.record(
                &found(
                    PeerId::random(),
                    at("10.0.0.66"),
                    Record::Ours,
                    Some("bilal"),
                ),
                false,
            );
        }
        assert_eq!(
            waiting(&f),
            MAX_STRANGERS_PER_HOST,
            "one host fills a few places"
        );
        let bilal = PeerId::random();
        f.record(
            &found(bilal, at("10.0.0.2"), Record::Ours, Some("bilal")),
            false,
        );
        assert_eq!(f.strangers[&bilal].asks.as_deref(), Some("bilal"));
        // Hosts enough to fill every place: then nobody new is taken, and a listed device
        // frees its place.
        for h in 10..40 {
            f.record(
                &found(
                    PeerId::random(),
                    at(&format!("10.0.1.{h}")),
                    Record::Ours,
                    None,
                ),
                false,
            );
        }
        assert_eq!(waiting(&f), MAX_STRANGERS);
        let late = PeerId::random();
        f.record(
            &found(late, at("10.0.0.3"), Record::Ours, Some("chen")),
            false,
        );
        assert!(!f.strangers.contains_key(&late));
        f.record(&found(bilal, at("10.0.0.2"), Record::Ours, None), true);
        assert!(!f.strangers.contains_key(&bilal));
        f.record(
            &found(late, at("10.0.0.3"), Record::Ours, Some("chen")),
            false,
        );
        assert!(f.strangers.contains_key(&late));
        // The other org's devices were kept apart, up to their own limit.
        assert_eq!(
            f.strangers.values().filter(|s| !s.this_org).count(),
            MAX_STRANGERS
        );
    }
}
