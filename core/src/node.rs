//! The [`Node`] handle and the one task that owns the libp2p swarm.
//!
//! Commands come in over a channel, events go out over a broadcast channel; the swarm, the
//! roster chain and all protocol state live in the task and nowhere else. The store is shared
//! (sled is a concurrent database) so that history reads do not queue behind the network.
//!
//! Durability uses group commit: writes made while a flush is in flight wait for the next
//! flush, and every waiter is acknowledged when its flush completes. A `send` therefore
//! returns only once its message is on disk, and a received message is shown only once it is.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, request_response, Multiaddr, PeerId, Swarm};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::discovery::{Discovery, Found};
use crate::error::{Error, Result};
use crate::identity::DeviceId;
use crate::message::{self, Envelope, MessageId};
use crate::net::{
    Behaviour, BehaviourEvent, RosterRequest, RosterResponse, SyncRequest, SyncResponse, DM_LIST,
};
use crate::profile::Profile;
use crate::roster::{dm_parties, AuditEntry, Roster, RosterChain, RosterChange, VerifiedRoster};
use crate::store::{Store, StoredMessage};
use crate::sync::{self, Link, Vector};

/// How long a removed device keeps its connection after being told of its removal.
pub const REMOVAL_GRACE: Duration = Duration::from_millis(300);

/// How often every connected peer is asked for what we lack.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// How a node runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Vec<Multiaddr>,
    /// Static peers, for networks where multicast does not reach.
    pub peers: Vec<Multiaddr>,
    pub mdns: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec!["/ip4/0.0.0.0/tcp/0".parse().expect("valid multiaddr")],
            peers: Vec::new(),
            mdns: true,
        }
    }
}

/// What a node reports.
#[derive(Debug, Clone)]
pub enum Event {
    Listening(Multiaddr),
    /// A message is stored durably and may be shown (ours or a peer's).
    Message(StoredMessage),
    RosterChanged {
        version: u64,
    },
    PeerConnected {
        device: DeviceId,
        name: String,
    },
    PeerDisconnected {
        device: DeviceId,
    },
    /// A roster version removed this device: its keys and local history were erased (or the
    /// error that prevented it) and the node stopped.
    Wiped {
        version: u64,
        erased: std::result::Result<(), String>,
    },
    /// New keys for `channel` arrived: messages shown as locked there may open now (reload).
    KeysReceived {
        channel: String,
    },
    /// Input from the network was refused; `kind` is a stable counter label.
    Rejected {
        kind: String,
        reason: String,
    },
}

/// A connected device of the org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub device: DeviceId,
    pub name: String,
    pub addr: String,
    /// The roster version this peer last said it holds (diagnostics: "is it up to date?").
    #[serde(default)]
    pub roster_version: Option<u64>,
}

/// Counters of refused input, for tests, diagnostics and benchmarks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: HashMap<String, u64>,
    pub denied_connections: u64,
    pub roster_version: u64,
    /// Hex hash of the head roster: equal on every node that agrees on the roster.
    pub roster_hash: String,
    /// Set when two roster branches each removed the other's signer (from this version on):
    /// this node keeps the branch it saw first until the org root key settles it.
    #[serde(default)]
    pub roster_contested: Option<u64>,
    /// Group commits done, and the writes they covered (writes per flush = batching).
    pub flushes: u64,
    /// Messages obtained by catch-up sync (included in `accepted`), and the sync requests
    /// (round trips) this node made.
    pub synced: u64,
    pub sync_requests: u64,
    pub flushed_writes: u64,
}

enum Command {
    Send {
        channel: String,
        text: String,
        reply: oneshot::Sender<Result<MessageId>>,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    Roster {
        reply: oneshot::Sender<Option<Roster>>,
    },
    Audit {
        reply: oneshot::Sender<Vec<AuditEntry>>,
    },
    ChangeRoster {
        change: RosterChange,
        reply: oneshot::Sender<Result<u64>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Stats {
        reply: oneshot::Sender<Stats>,
    },
    Dial {
        addr: Multiaddr,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// The front door to a running node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    cmd: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    store: Store,
    device: DeviceId,
    /// The head roster, published by the node task on every change, so that readers (the
    /// GUI each frame, `history @NAME`) need no round trip.
    roster: watch::Receiver<Option<Arc<VerifiedRoster>>>,
    sealing: crate::seal::Sealing,
}

impl Node {
    /// Start a node on `profile`'s data directory. Returns once it is listening.
    pub async fn start(profile: Profile, config: Config) -> Result<Node> {
        let org = profile.require_org()?;
        let chain = profile.chain()?;
        let key = profile.key().libp2p_keypair();
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default().nodelay(true),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .map_err(|e| Error::Net(e.to_string()))?
            .with_behaviour(Behaviour::new)
            .map_err(|e| Error::Net(e.to_string()))?
            // Gossipsub only keeps connections alive while a peer is in a mesh; an org's
            // devices should stay connected regardless.
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
            .build();
        for addr in &config.listen {
            swarm.listen_on(addr.clone()).map_err(|e| {
                Error::Invalid(format!(
                    "cannot listen on {addr}: {e}; pick another --listen address"
                ))
            })?;
        }
        // Wait for the first concrete address: callers (and mDNS) need the port.
        let mut listen_addrs = Vec::new();
        let deadline = tokio::time::sleep(Duration::from_secs(5));
        tokio::pin!(deadline);
        while listen_addrs.is_empty() {
            tokio::select! {
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::NewListenAddr { address, .. } => listen_addrs.push(address),
                    SwarmEvent::ListenerError { error, .. } => return Err(Error::Net(format!("listen failed: {error}"))),
                    SwarmEvent::ListenerClosed { reason: Err(error), .. } => return Err(Error::Net(format!("listen failed: {error}"))),
                    _ => {}
                },
                _ = &mut deadline => return Err(Error::Net("no listen address after 5 s; check --listen".into())),
            }
        }
        let (disc_tx, disc_rx) = mpsc::unbounded_channel();
        let discovery = if config.mdns {
            let port = listen_addrs
                .iter()
                .find_map(|a| {
                    a.iter().find_map(|p| match p {
                        libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                        _ => None,
                    })
                })
                .unwrap_or(0);
            Some(Discovery::start(
                &org,
                *swarm.local_peer_id(),
                port,
                disc_tx.clone(),
            )?)
        } else {
            None
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(1024);
        let (ev_tx, _) = broadcast::channel(16 * 1024);
        let (roster_tx, roster_rx) = watch::channel(None);
        let node = Node {
            cmd: cmd_tx,
            events: ev_tx.clone(),
            store: profile.store().clone(),
            device: profile.device_id(),
            roster: roster_rx,
            sealing: profile.sealing(),
        };
        let mut runner = Runner {
            me: profile.device_id(),
            topic_prefix: format!("majlis/1/{}/", org.discovery_tag()),
            profile,
            chain,
            swarm,
            events: ev_tx,
            roster_tx,
            listen_addrs,
            discovery,
            _disc_tx: disc_tx,
            known: HashMap::new(),
            static_peers: config.peers.iter().map(|a| (a.clone(), None)).collect(),
            connections: HashMap::new(),
            peer_versions: HashMap::new(),
            topics: HashMap::new(),
            roster_topics: HashMap::new(),
            suspects: HashSet::new(),
            have_in_flight: HashSet::new(),
            sync_pending: HashMap::new(),
            sync_retries: HashMap::new(),
            to_validate: Vec::new(),
            closing: Vec::new(),
            close_at: None,
            listed: false,
            wipe: false,
            contested: None,
            bench_plaintext: std::env::var("MAJLIS_BENCH_PLAINTEXT").is_ok_and(|v| v == "1"),
            last_version: 0,
            pending: Vec::new(),
            flushing: None,
            stats: Stats::default(),
        };
        runner.on_roster_changed(false);
        for addr in config.peers {
            runner.dial_addr(addr);
        }
        tokio::spawn(runner.run(cmd_rx, disc_rx));
        Ok(node)
    }

    pub fn device_id(&self) -> DeviceId {
        self.device
    }

    /// Where this node's data key lives (`Sealing::File`: not sealed; say so to the user).
    pub fn sealing(&self) -> crate::seal::Sealing {
        self.sealing
    }

    /// Events from now on. Slow readers lose the oldest events (and are told so by
    /// `RecvError::Lagged`), never block the node.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.cmd.send(make(tx)).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Sign, store durably, then publish. Returns the message id once it is on disk; delivery
    /// happens as soon as peers are reachable.
    pub async fn send(&self, channel: &str, text: &str) -> Result<MessageId> {
        let (channel, text) = (channel.to_string(), text.to_string());
        self.ask(|reply| Command::Send {
            channel,
            text,
            reply,
        })
        .await?
    }

    /// The last `limit` messages of `channel` (or `@NAME`: the direct messages with NAME),
    /// oldest first.
    pub fn history(&self, channel: &str, limit: usize) -> Result<Vec<StoredMessage>> {
        self.store.history(&self.resolve(channel)?, limit)
    }

    /// The channel `target` names: `@NAME` becomes this member's DM channel with NAME.
    pub fn resolve(&self, target: &str) -> Result<String> {
        match self.roster.borrow().as_deref() {
            Some(r) => Ok(r.resolve_channel(&self.device, target)?),
            None if target.starts_with('@') => Err(Error::NotReady(
                "no roster yet, so no direct messages; wait until an admin adds this device".into(),
            )),
            None => Ok(target.to_string()),
        }
    }

    /// The head roster as of now (cheap: shared, updated by the node task).
    pub fn roster_now(&self) -> Option<Arc<VerifiedRoster>> {
        self.roster.borrow().clone()
    }

    /// The direct-message channels that hold messages, e.g. `@amina,bilal`.
    pub fn dm_channels(&self) -> Result<Vec<String>> {
        self.store.channels_starting_with("@")
    }

    /// Direct access to the message store, for paging through history.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>> {
        self.ask(|reply| Command::Peers { reply }).await
    }

    pub async fn roster(&self) -> Result<Option<Roster>> {
        self.ask(|reply| Command::Roster { reply }).await
    }

    /// Every roster version: who signed it and what changed.
    pub async fn audit(&self) -> Result<Vec<AuditEntry>> {
        self.ask(|reply| Command::Audit { reply }).await
    }

    /// Sign and spread a new roster version; returns its version number.
    pub async fn change_roster(&self, change: RosterChange) -> Result<u64> {
        self.ask(|reply| Command::ChangeRoster { change, reply })
            .await?
    }

    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>> {
        self.ask(|reply| Command::ListenAddrs { reply }).await
    }

    pub async fn stats(&self) -> Result<Stats> {
        self.ask(|reply| Command::Stats { reply }).await
    }

    pub async fn dial(&self, addr: Multiaddr) -> Result<()> {
        self.cmd
            .send(Command::Dial { addr })
            .await
            .map_err(|_| Error::Stopped)
    }

    /// Flush, say goodbye on mDNS and stop.
    pub async fn shutdown(&self) -> Result<()> {
        self.ask(|reply| Command::Shutdown { reply }).await
    }
}

/// Work waiting for the next flush.
enum Pending {
    /// Our own messages: key grants first, then (when a user sent something) the text,
    /// which is the last envelope and whose id the reply carries.
    Sent {
        envs: Vec<Envelope>,
        reply: Option<(oneshot::Sender<Result<MessageId>>, StoredMessage)>,
    },
    Received(StoredMessage),
}

struct Runner {
    me: DeviceId,
    topic_prefix: String,
    profile: Profile,
    chain: RosterChain,
    swarm: Swarm<Behaviour>,
    events: broadcast::Sender<Event>,
    roster_tx: watch::Sender<Option<Arc<VerifiedRoster>>>,
    listen_addrs: Vec<Multiaddr>,
    discovery: Option<Discovery>,
    _disc_tx: mpsc::UnboundedSender<Found>,
    /// Addresses learned from mDNS, redialed while the peer is allowed but not connected.
    known: HashMap<PeerId, Vec<Multiaddr>>,
    /// Static peer address -> the peer it turned out to be.
    static_peers: HashMap<Multiaddr, Option<PeerId>>,
    connections: HashMap<PeerId, Multiaddr>,
    /// The roster version each peer last announced.
    peer_versions: HashMap<PeerId, u64>,
    topics: HashMap<gossipsub::TopicHash, String>,
    /// Every channel and inbox topic of the head roster, by hash.
    roster_topics: HashMap<gossipsub::TopicHash, String>,
    /// Peers seen subscribing to a topic they may not read; disconnected at the next sweep
    /// if they still are.
    suspects: HashSet<PeerId>,
    have_in_flight: HashSet<(PeerId, u64, [u8; 32])>,
    /// Catch-up requests in flight: what was asked, so the answer can be checked against it.
    sync_pending:
        HashMap<request_response::OutboundRequestId, (PeerId, String, Vector, sync::Ranges)>,
    sync_retries: HashMap<PeerId, u32>,
    /// Removed devices whose connections close at `close_at`.
    closing: Vec<PeerId>,
    close_at: Option<tokio::time::Instant>,
    /// Whether the head roster lists this device, and the version last acted upon.
    listed: bool,
    last_version: u64,
    /// Set when a new roster removed this device: erase keys and history, then stop.
    wipe: bool,
    /// A contested roster fork (see `Stats::roster_contested`).
    contested: Option<u64>,
    /// `MAJLIS_BENCH_PLAINTEXT=1`: send format-1 plaintext, to measure what sealing costs.
    bench_plaintext: bool,
    /// Gossip frames waiting for batch verification.
    to_validate: Vec<(PeerId, gossipsub::MessageId, gossipsub::Message)>,
    pending: Vec<Pending>,
    flushing: Option<(tokio::task::JoinHandle<Result<()>>, Vec<Pending>)>,
    stats: Stats,
}

impl Runner {
    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Command>,
        mut found: mpsc::UnboundedReceiver<Found>,
    ) {
        for a in self.listen_addrs.clone() {
            let _ = self.events.send(Event::Listening(a));
        }
        let mut redial = tokio::time::interval(Duration::from_secs(3));
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Catch-up also runs periodically: gossip drops under overload, and a partition can
        // heal without a reconnect.
        let mut resync = tokio::time::interval(SYNC_INTERVAL);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Biased: gossip frames queue up while the swarm has more ready, and are
                // verified as one batch (1.7x cheaper per signature) once it has none.
                biased;
                cmd = cmds.recv() => match cmd {
                    Some(Command::Shutdown { reply }) => {
                        self.finish_flush().await;
                        self.start_flush();
                        self.finish_flush().await;
                        if let Some(d) = self.discovery.take() {
                            let _ = tokio::task::spawn_blocking(move || d.shutdown()).await;
                        }
                        let _ = reply.send(());
                        return;
                    }
                    Some(cmd) => self.on_command(cmd),
                    None => {
                        self.finish_flush().await;
                        self.start_flush();
                        self.finish_flush().await;
                        if let Some(d) = self.discovery.take() {
                            d.shutdown();
                        }
                        return;
                    }
                },
                Some(f) = found.recv() => self.on_found(f),
                res = async { (&mut self.flushing.as_mut().expect("guarded").0).await }, if self.flushing.is_some() => {
                    let (_, done) = self.flushing.take().expect("guarded");
                    self.complete(done, res.unwrap_or_else(|e| Err(Error::Net(format!("flush task: {e}")))));
                    self.start_flush();
                }
                _ = redial.tick() => {
                    self.police();
                    self.redial();
                }
                _ = resync.tick() => {
                    let peers: Vec<PeerId> = self.connections.keys().copied().collect();
                    for p in peers {
                        self.start_sync(p);
                    }
                }
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                _ = tokio::time::sleep_until(self.close_at.unwrap_or_else(tokio::time::Instant::now)), if self.close_at.is_some() => {
                    self.close_at = None;
                    for p in std::mem::take(&mut self.closing) {
                        if !self.swarm.behaviour().gate.allows(&p) {
                            let _ = self.swarm.disconnect_peer_id(p);
                        }
                    }
                }
                _ = std::future::ready(()), if !self.to_validate.is_empty() => self.validate_gossip(),
            }
            if self.wipe {
                self.remote_wipe().await;
                return;
            }
        }
    }

    /// This device was removed from the roster: erase its keys and history, say so, stop.
    async fn remote_wipe(&mut self) {
        let version = self.chain.version();
        tracing::warn!("this device was removed from the org roster (version {version}); erasing its keys and history");
        if let Some(d) = self.discovery.take() {
            let _ = tokio::task::spawn_blocking(move || d.shutdown()).await;
        }
        let erased = self.profile.wipe();
        let _ = self.events.send(Event::Wiped {
            version,
            erased: erased.map_err(|e| e.to_string()),
        });
    }

    fn emit(&self, ev: Event) {
        let _ = self.events.send(ev);
    }

    // ---- durability -------------------------------------------------------------------

    fn start_flush(&mut self) {
        if self.flushing.is_some() || self.pending.is_empty() {
            return;
        }
        let store = self.profile.store().clone();
        let batch = std::mem::take(&mut self.pending);
        self.stats.flushes += 1;
        self.stats.flushed_writes += batch.len() as u64;
        let handle = tokio::task::spawn_blocking(move || store.flush());
        self.flushing = Some((handle, batch));
    }

    async fn finish_flush(&mut self) {
        if let Some((h, done)) = self.flushing.take() {
            let res = h
                .await
                .unwrap_or_else(|e| Err(Error::Net(format!("flush task: {e}"))));
            self.complete(done, res);
        }
    }

    fn complete(&mut self, done: Vec<Pending>, res: Result<()>) {
        if let Err(e) = &res {
            tracing::error!("flush failed: {e}");
        }
        for p in done {
            match p {
                Pending::Sent { envs, reply } => {
                    if let Err(e) = &res {
                        if let Some((reply, _)) = reply {
                            let _ =
                                reply.send(Err(Error::Invalid(format!("message not saved: {e}"))));
                        }
                        continue;
                    }
                    for env in &envs {
                        self.publish(env);
                    }
                    if let Some((reply, shown)) = reply {
                        let _ = reply.send(Ok(shown.id));
                        self.emit(Event::Message(shown));
                    }
                }
                Pending::Received(m) => {
                    if res.is_ok() {
                        self.emit(Event::Message(m));
                    }
                }
            }
        }
    }

    // ---- commands ---------------------------------------------------------------------

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Send {
                channel,
                text,
                reply,
            } => match self
                .profile
                .compose_as(&self.chain, &channel, &text, !self.bench_plaintext)
            {
                Ok(envs) => {
                    // What the user sees of it, from what they typed (no need to open it).
                    let last = &envs.last().expect("a send makes a message").unsigned;
                    let shown = StoredMessage {
                        id: envs.last().expect("non-empty").id,
                        channel: last.channel.clone(),
                        sender: self
                            .chain
                            .head()
                            .and_then(|h| h.member_of_device(&self.me))
                            .map(|m| m.name.clone())
                            .unwrap_or_default(),
                        device: self.me,
                        sent_at: last.sent_at,
                        text,
                        locked: false,
                    };
                    self.pending.push(Pending::Sent {
                        envs,
                        reply: Some((reply, shown)),
                    });
                    self.start_flush();
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Peers { reply } => {
                let head = self.chain.head();
                let mut peers: Vec<PeerInfo> = self
                    .connections
                    .iter()
                    .filter_map(|(p, addr)| {
                        let dev = DeviceId::from_peer_id(p)?;
                        let m = head?.member_of_device(&dev)?;
                        Some(PeerInfo {
                            device: dev,
                            name: m.name.clone(),
                            addr: addr.to_string(),
                            roster_version: self.peer_versions.get(p).copied(),
                        })
                    })
                    .collect();
                peers.sort_by(|a, b| a.name.cmp(&b.name));
                let _ = reply.send(peers);
            }
            Command::Audit { reply } => {
                let _ = reply.send(self.chain.audit());
            }
            Command::Roster { reply } => {
                let _ = reply.send(self.chain.head().map(|h| h.roster.clone()));
            }
            Command::ChangeRoster { change, reply } => {
                let res = self
                    .profile
                    .change_roster(&mut self.chain, &change)
                    .map(|r| r.version());
                if res.is_ok() {
                    self.on_roster_changed(true);
                }
                let _ = reply.send(res);
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.listen_addrs.clone());
            }
            Command::Stats { reply } => {
                let mut s = self.stats.clone();
                s.denied_connections = self.swarm.behaviour().gate.denied;
                s.roster_version = self.chain.version();
                s.roster_contested = self.contested;
                s.roster_hash = self
                    .chain
                    .head()
                    .map(|h| h.hash.iter().map(|b| format!("{b:02x}")).collect())
                    .unwrap_or_default();
                let _ = reply.send(s);
            }
            Command::Dial { addr } => self.dial_addr(addr),
            Command::Shutdown { .. } => unreachable!("handled in run"),
        }
    }

    // ---- roster -----------------------------------------------------------------------

    /// Bring the gate, subscriptions and peers in line with the head roster.
    fn on_roster_changed(&mut self, announce: bool) {
        let head = self.chain.head();
        let me_member = head.and_then(|h| h.member_of_device(&self.me)).cloned();
        let allowed: HashSet<PeerId> = head
            .map(|h| {
                h.devices()
                    .filter(|d| **d != self.me)
                    .map(|d| d.peer_id())
                    .collect()
            })
            .unwrap_or_default();
        // Bootstrap exception: with no roster that lists us, connections stay open so a peer
        // that lists us can hand us the roster. We hold nothing to leak and post nothing.
        let open = me_member.is_none();
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
        if !open && !removed.is_empty() {
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
        self.swarm
            .behaviour_mut()
            .gate
            .set_allowed(allowed, open, &removed);
        // A device that was on the roster and is no longer: remote wipe. Decided from the
        // stored chain, not from what this run saw, so a wipe that was due when the process
        // died (between saving the roster and erasing) happens at the next start.
        let me_dev = self.me;
        if me_member.is_none()
            && self
                .chain
                .versions()
                .iter()
                .any(|v| v.member_of_device(&me_dev).is_some())
        {
            self.wipe = true;
        }
        // Devices removed at any time: admitted only to learn of their removal. (Distinct
        // device ids first: a `PeerId` costs an encoding, and a chain repeats its devices.)
        let ever: HashSet<DeviceId> = self
            .chain
            .versions()
            .iter()
            .flat_map(|v| v.devices())
            .copied()
            .collect();
        let departed: HashSet<PeerId> = ever
            .into_iter()
            .filter(|d| *d != self.me && head.is_none_or(|h| h.member_of_device(d).is_none()))
            .map(|d| d.peer_id())
            .collect();
        for p in &departed {
            self.swarm.behaviour_mut().gossipsub.blacklist_peer(p);
        }
        self.swarm.behaviour_mut().gate.set_departed(departed);
        self.listed = me_member.is_some();
        self.last_version = self.chain.version();

        // Topics: one per readable channel, and direct-message inboxes (`@NAME`): our own,
        // or, for a relay, everyone's.
        let wanted: HashSet<String> = match (head, &me_member) {
            (Some(h), Some(m)) => {
                let r = &h.roster;
                let inboxes = r
                    .members
                    .iter()
                    .filter(|o| {
                        if m.role.stores_all() {
                            r.members.iter().any(|x| r.dm_allowed(o, x))
                        } else {
                            o.name == m.name && r.members.iter().any(|x| r.dm_allowed(m, x))
                        }
                    })
                    .map(|o| format!("@{}", o.name));
                r.channels
                    .iter()
                    .filter(|c| r.may_read(m, &c.name))
                    .map(|c| c.name.clone())
                    .chain(inboxes)
                    .collect()
            }
            _ => HashSet::new(),
        };
        // Every topic of the roster (channels and inboxes), to police subscriptions.
        self.roster_topics = head
            .map(|h| {
                let r = &h.roster;
                r.channels
                    .iter()
                    .map(|c| c.name.clone())
                    .chain(r.members.iter().map(|m| format!("@{}", m.name)))
                    .map(|name| (self.topic(&name).hash(), name))
                    .collect()
            })
            .unwrap_or_default();
        let _ = self.roster_tx.send(head.map(|h| Arc::new(h.clone())));
        let current: HashSet<String> = self.topics.values().cloned().collect();
        for ch in current.difference(&wanted) {
            let t = self.topic(ch);
            self.swarm.behaviour_mut().gossipsub.unsubscribe(&t);
            self.topics.remove(&t.hash());
        }
        for ch in wanted.difference(&current) {
            let t = self.topic(ch);
            if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&t) {
                tracing::warn!("subscribe {ch}: {e}");
            }
            self.topics.insert(t.hash(), ch.clone());
        }
        self.share_keys();
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
        let dms = self
            .profile
            .store()
            .channels_starting_with("@")
            .unwrap_or_default();
        let channels: Vec<String> = head
            .roster
            .channels
            .iter()
            .map(|c| c.name.clone())
            .chain(dms)
            .collect();
        let mut envs = Vec::new();
        for ch in channels {
            match self.profile.share_keys(&self.chain, &ch, false) {
                Ok(e) => envs.extend(e),
                Err(e) => tracing::error!("sharing keys of '{ch}': {e}"),
            }
        }
        if !envs.is_empty() {
            self.pending.push(Pending::Sent { envs, reply: None });
            self.start_flush();
        }
    }

    /// A peer subscribed to `topic`. Subscribing to a channel or an inbox the peer's device
    /// may not read is what a modified client does to eavesdrop: bodies are sealed anyway,
    /// but we also stop forwarding to it. As the two rosters may briefly differ, the peer is
    /// first sent our roster and disconnected only if it still holds the subscription at the
    /// next sweep (`police`).
    fn on_subscribed(&mut self, peer: PeerId, topic: &gossipsub::TopicHash) {
        if self.forbidden(&peer, topic) {
            self.suspects.insert(peer);
            self.send_have(peer);
        }
    }

    fn forbidden(&self, peer: &PeerId, topic: &gossipsub::TopicHash) -> bool {
        let (Some(head), Some(name)) = (self.chain.head(), self.roster_topics.get(topic)) else {
            return false;
        };
        match DeviceId::from_peer_id(peer).and_then(|d| head.member_of_device(&d)) {
            Some(m) => !head.roster.may_subscribe(m, name),
            None => true,
        }
    }

    fn police(&mut self) {
        if self.suspects.is_empty() {
            return;
        }
        let suspects = std::mem::take(&mut self.suspects);
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

    fn topic(&self, channel: &str) -> gossipsub::IdentTopic {
        gossipsub::IdentTopic::new(format!("{}{channel}", self.topic_prefix))
    }

    fn send_have(&mut self, peer: PeerId) {
        let (version, hash) = self
            .chain
            .head()
            .map(|h| (h.version(), h.hash))
            .unwrap_or((0, [0; 32]));
        if self.have_in_flight.insert((peer, version, hash)) {
            self.swarm
                .behaviour_mut()
                .roster
                .send_request(&peer, RosterRequest::Have { version, hash });
        }
    }

    fn on_roster_event(&mut self, ev: request_response::Event<RosterRequest, RosterResponse>) {
        use request_response::{Event as E, Message as M};
        match ev {
            E::Message {
                peer,
                message:
                    M::Request {
                        request: RosterRequest::Have { version, hash },
                        channel,
                        ..
                    },
                ..
            } => {
                self.peer_versions.insert(peer, version);
                let dev = DeviceId::from_peer_id(&peer);
                let listed = dev.is_some_and(|d| {
                    self.chain
                        .head()
                        .is_some_and(|h| h.member_of_device(&d).is_some())
                });
                // Only devices on our roster learn its contents; a removed device learns the
                // versions up to the one that removed it, and nothing after.
                let until = match (listed, dev) {
                    (true, _) => Some(u64::MAX),
                    (false, Some(d)) if self.swarm.behaviour().gate.departed(&peer) => self
                        .chain
                        .versions()
                        .iter()
                        .skip_while(|v| v.member_of_device(&d).is_none())
                        .find(|v| v.member_of_device(&d).is_none())
                        .map(|v| v.version()),
                    _ => None,
                };
                let versions = match until {
                    Some(until) if self.chain.version() > 0 => self
                        .chain
                        .suffix_for(version)
                        .iter()
                        .filter(|r| !(r.version() == version && r.hash == hash))
                        .take_while(|r| r.version() <= until)
                        .map(|r| serde_bytes::ByteBuf::from(r.wire.clone()))
                        .collect(),
                    _ => Vec::new(),
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .roster
                    .send_response(channel, RosterResponse { versions });
                let ours = self.chain.get(version).map(|r| r.hash);
                if version > self.chain.version() || (version > 0 && ours != Some(hash)) {
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
                message: M::Response { response, .. },
                ..
            } => {
                self.have_in_flight.retain(|(p, _, _)| *p != peer);
                // While bootstrapping anyone may hand us the chain (it is verified from
                // version 1 against the org id); after that only roster devices.
                if !self.listed || self.swarm.behaviour().gate.allowed().contains(&peer) {
                    self.apply_roster_wires(peer, &response.versions);
                }
            }
            E::OutboundFailure { peer, .. } => {
                self.have_in_flight.retain(|(p, _, _)| *p != peer);
            }
            _ => {}
        }
    }

    /// Verify and apply roster versions a peer sent (as a response or a removal notice).
    fn apply_roster_wires(&mut self, peer: PeerId, wires: &[serde_bytes::ByteBuf]) {
        let mut incoming = Vec::new();
        for w in wires.iter().take(10_000) {
            match VerifiedRoster::decode(w) {
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

    fn reject(&mut self, kind: &str, reason: String) {
        tracing::warn!("rejected {kind}: {reason}");
        *self.stats.rejected.entry(kind.to_string()).or_default() += 1;
        self.emit(Event::Rejected {
            kind: kind.to_string(),
            reason,
        });
    }

    // ---- messages ---------------------------------------------------------------------

    fn publish(&mut self, env: &Envelope) {
        let topics = match dm_parties(&env.unsigned.channel) {
            // Both members' inboxes: the recipient's, and ours for our other devices.
            Some((a, b)) => vec![self.topic(&format!("@{a}")), self.topic(&format!("@{b}"))],
            None => vec![self.topic(&env.unsigned.channel)],
        };
        let mut result = Err(gossipsub::PublishError::NoPeersSubscribedToTopic);
        for topic in topics {
            let r = self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(topic, env.wire.clone());
            if result.is_err() {
                result = r;
            }
        }
        match result {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => {
                if let Err(e) = self.profile.store().outbox_remove(&env.id) {
                    tracing::warn!("outbox: {e}");
                }
            }
            // Nobody reachable yet: it stays in the outbox and goes out when a peer subscribes.
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {}
            Err(e) => tracing::warn!("publish {}: {e}; kept in the outbox", env.id),
        }
    }

    fn flush_outbox(&mut self, channel: &str) {
        let ids = match self.profile.store().outbox() {
            Ok(ids) => ids,
            Err(e) => return tracing::warn!("outbox: {e}"),
        };
        for id in ids {
            match self.profile.store().message_wire(&id) {
                Ok(Some(w)) => match Envelope::decode_unverified(&w) {
                    Ok(env) if env.unsigned.channel == channel => self.publish(&env),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("outbox entry {id} damaged: {e}"),
                },
                Ok(None) => {
                    let _ = self.profile.store().outbox_remove(&id);
                }
                Err(e) => tracing::warn!("outbox: {e}"),
            }
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, msg: gossipsub::Message) {
        self.to_validate.push((source, id, msg));
        if self.to_validate.len() >= 128 {
            self.validate_gossip();
        }
    }

    /// Validate queued gossip: cheap checks, one batch signature check, then roster and chain
    /// rules and the store write one by one (in order, so chains within a batch are checked).
    fn validate_gossip(&mut self) {
        use gossipsub::MessageAcceptance as A;
        let queued = std::mem::take(&mut self.to_validate);
        let mut verdicts: Vec<(PeerId, gossipsub::MessageId, A)> = Vec::with_capacity(queued.len());
        let mut candidates = Vec::new();
        for (source, id, msg) in queued {
            match self.precheck_gossip(&msg) {
                Ok(Some(env)) => candidates.push((source, id, env)),
                Ok(None) => {
                    self.stats.duplicates += 1;
                    verdicts.push((source, id, A::Ignore));
                }
                Err(r) => {
                    self.reject(r.kind(), format!("from {source}: {r}"));
                    verdicts.push((source, id, A::Reject));
                }
            }
        }
        let sig_ok = message::verify_batch_of(candidates.iter().map(|(_, _, e)| e));
        let now = crate::now_ms();
        // (peer, channel) where a message arrived past a gap: gossip dropped something (an
        // overloaded queue, a partition); ask that peer at once instead of at the next round.
        let mut gaps: HashSet<(PeerId, String)> = HashSet::new();
        for ((source, id, env), ok) in candidates.into_iter().zip(sig_ok) {
            let verdict = if !ok {
                Err(message::Reject::BadSignature)
            } else {
                match self.chain.head() {
                    Some(head) => message::check_rules(&env, head, now).map(|m| m.name.clone()),
                    None => Err(message::Reject::UnknownDevice(env.unsigned.author)),
                }
                .and_then(|name| self.check_chain(&env).map(|held| (name, held)))
            };
            let acceptance = match verdict {
                Ok((sender, held)) => match self.profile.store().insert_message(&env, &sender) {
                    Ok(true) => {
                        self.stats.accepted += 1;
                        // Its predecessor (or one before) is missing.
                        if held + 1 < env.unsigned.seq {
                            gaps.insert((source, env.unsigned.channel.clone()));
                        }
                        self.accepted(&env, sender);
                        A::Accept
                    }
                    Ok(false) => {
                        self.stats.duplicates += 1;
                        A::Ignore
                    }
                    Err(e) => {
                        // Disk trouble: do not forward what we could not keep; sync will retry.
                        tracing::error!("storing message: {e}");
                        A::Ignore
                    }
                },
                // Too far ahead of what we hold is not the forwarder's fault: drop quietly.
                Err(r @ message::Reject::Gap { .. }) => {
                    *self.stats.rejected.entry(r.kind().into()).or_default() += 1;
                    A::Ignore
                }
                Err(r) => {
                    self.reject(r.kind(), format!("from {source}: {r}"));
                    A::Reject
                }
            };
            verdicts.push((source, id, acceptance));
        }
        self.start_flush();
        for (source, id, acceptance) in verdicts {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, acceptance);
        }
        for (peer, channel) in gaps {
            if self.connections.contains_key(&peer) {
                self.sync_channel(peer, channel, &Vector::new());
            }
        }
    }

    /// Decode, dedupe and topic check; `Ok(None)`: already stored.
    fn precheck_gossip(
        &self,
        msg: &gossipsub::Message,
    ) -> Result<Option<Envelope>, message::Reject> {
        let env = Envelope::decode_unverified(&msg.data)?;
        if self.profile.store().has_message(&env.id).unwrap_or(false) {
            return Ok(None);
        }
        // The topic must be the envelope's channel (for a direct message: the inbox of one
        // of its two members), or a private channel's message could be smuggled to
        // non-members through a public topic.
        let topic = self.topics.get(&msg.topic).map(String::as_str);
        let ok = match dm_parties(&env.unsigned.channel) {
            Some((a, b)) => topic
                .and_then(|t| t.strip_prefix('@'))
                .is_some_and(|t| t == a || t == b),
            None => topic == Some(env.unsigned.channel.as_str()),
        };
        if !ok {
            return Err(message::Reject::UnknownChannel(env.unsigned.channel));
        }
        Ok(Some(env))
    }

    /// Per-author chain rules against what is stored: no second message at a held
    /// (author, seq), and `prev` matches a held predecessor.
    /// Returns the author's contiguous prefix held before this message.
    fn check_chain(&self, env: &Envelope) -> Result<u64, message::Reject> {
        let u = &env.unsigned;
        let store = self.profile.store();
        if let Ok(Some(other)) = store.log_entry(&u.channel, &u.author, u.seq) {
            if other != env.id {
                return Err(message::Reject::Chain(format!(
                    "{} signed two different messages with seq {} in '{}'",
                    u.author, u.seq, u.channel
                )));
            }
        }
        let held = store.head(&u.channel, &u.author).map(|h| h.0).unwrap_or(0);
        if u.seq > held.saturating_add(sync::MAX_GAP) {
            return Err(message::Reject::Gap { seq: u.seq, held });
        }
        let pred = match u.seq {
            0 | 1 => None,
            s => store.log_entry(&u.channel, &u.author, s - 1).ok().flatten(),
        };
        if !sync::chain_ok(&Link::of(env), pred) {
            return Err(message::Reject::Chain(format!(
                "seq {} of {} does not follow its predecessor",
                u.seq, u.author
            )));
        }
        Ok(held)
    }

    // ---- catch-up sync ----------------------------------------------------------------

    /// Ask `peer` for what we lack in every channel we both may read.
    fn start_sync(&mut self, peer: PeerId) {
        let Some(head) = self.chain.head() else {
            return;
        };
        if head.member_of_device(&self.me).is_none() {
            return;
        }
        let Some(their) = DeviceId::from_peer_id(&peer).and_then(|d| head.member_of_device(&d))
        else {
            return;
        };
        let channels: Vec<String> = self
            .topics
            .values()
            .filter(|c| !c.starts_with('@') && head.roster.may_read(their, c))
            .cloned()
            .collect();
        let dms = self.topics.values().any(|c| c.starts_with('@'));
        for ch in channels {
            self.sync_channel(peer, ch, &Vector::new());
        }
        // Direct-message channels are not in the roster: ask which ones the peer holds.
        if dms {
            self.sync_channel(peer, DM_LIST.to_string(), &Vector::new());
        }
    }

    /// `sent`: per author, the last seq this peer sent in the current session.
    fn sync_channel(&mut self, peer: PeerId, channel: String, sent: &Vector) {
        if self
            .sync_pending
            .values()
            .any(|(p, c, _, _)| *p == peer && *c == channel)
        {
            return;
        }
        let heads = match self.profile.store().heads(&channel) {
            Ok(h) if channel != DM_LIST => h,
            Ok(_) => Default::default(),
            Err(e) => return tracing::warn!("sync: {e}"),
        };
        let asked = sync::continue_from(&heads, sent);
        // What we hold beyond a gap, so the peer sends only what is missing.
        let mut held = sync::Ranges::new();
        for (a, (_, max)) in &heads {
            let have = asked.get(a).copied().unwrap_or(0);
            if *max > have {
                let to = have.saturating_add(sync::MAX_GAP).min(*max);
                match self
                    .profile
                    .store()
                    .held_ranges(&channel, a, have + 1, to, sync::MAX_RANGES)
                {
                    Ok(r) if !r.is_empty() => {
                        held.insert(*a, r);
                    }
                    Ok(_) => {}
                    Err(e) => return tracing::warn!("sync: {e}"),
                }
            }
        }
        let req = SyncRequest {
            channel: channel.clone(),
            have: asked.iter().map(|(a, s)| (*a, *s)).collect(),
            held: held
                .iter()
                .flat_map(|(a, r)| r.iter().map(|(x, y)| (*a, *x, *y)))
                .collect(),
        };
        self.stats.sync_requests += 1;
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, req);
        self.sync_pending.insert(id, (peer, channel, asked, held));
    }

    fn on_sync_event(&mut self, ev: request_response::Event<SyncRequest, SyncResponse>) {
        use request_response::{Event as E, Message as M};
        match ev {
            E::Message {
                peer,
                message: M::Request {
                    request, channel, ..
                },
                ..
            } => {
                let resp = self.answer_sync(peer, request).unwrap_or_else(|e| {
                    tracing::warn!("answering sync: {e}");
                    SyncResponse::default()
                });
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, resp);
            }
            E::Message {
                peer,
                message:
                    M::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some((_, channel, asked, held)) = self.sync_pending.remove(&request_id) {
                    self.sync_retries.remove(&peer);
                    self.on_sync_response(peer, channel, (asked, held), response);
                }
            }
            E::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                // Typically a duplicate connection (both sides dialed) closing under the
                // request: ask again at once on the surviving one rather than waiting for
                // the next periodic round, a few times per peer.
                if let Some((_, channel, _, _)) = self.sync_pending.remove(&request_id) {
                    tracing::debug!("sync request to {peer} failed: {error}");
                    let retries = self.sync_retries.entry(peer).or_default();
                    if *retries < 3 && self.connections.contains_key(&peer) {
                        *retries += 1;
                        self.sync_channel(peer, channel, &Vector::new());
                    }
                }
            }
            _ => {}
        }
    }

    /// Only to devices on our roster that may read the channel; only messages whose authors
    /// are still on our roster (the requester would reject the others).
    fn answer_sync(&self, peer: PeerId, req: SyncRequest) -> Result<SyncResponse> {
        let mut resp = SyncResponse::default();
        let Some(head) = self.chain.head() else {
            return Ok(resp);
        };
        let Some(member) = DeviceId::from_peer_id(&peer).and_then(|d| head.member_of_device(&d))
        else {
            return Ok(resp);
        };
        if req.channel == DM_LIST {
            let store = self.profile.store();
            resp.channels = store
                .channels_starting_with("@")?
                .into_iter()
                .filter(|c| head.roster.may_read(member, c))
                .take(crate::net::MAX_DM_LIST)
                .collect();
            return Ok(resp);
        }
        if !head.roster.may_read(member, &req.channel)
            || req.have.len() > sync::MAX_AUTHORS
            || req.held.len() > sync::MAX_AUTHORS
        {
            return Ok(resp);
        }
        let theirs: Vector = req.have.into_iter().collect();
        let mut held = sync::Ranges::new();
        for (a, x, y) in req.held {
            let r = held.entry(a).or_default();
            // Honest requesters list at most MAX_RANGES per author; more would make every
            // message checked against an attacker-sized list.
            if r.len() == sync::MAX_RANGES {
                return Ok(resp);
            }
            r.push((x, y));
        }
        let store = self.profile.store();
        let mut bytes = 0;
        'authors: for (author, from) in sync::plan(&theirs, &store.heads(&req.channel)?) {
            if head.member_of_device(&author).is_none() {
                continue;
            }
            let room = sync::MAX_BATCH - resp.messages.len();
            let have = from - 1;
            // Skip what they hold beyond a gap and what lies past the gap limit.
            let mut wires = Vec::new();
            let mut next = from;
            while wires.len() <= room {
                let page = store.log_from_seq(&req.channel, &author, next, room + 1)?;
                let Some(last) = page.last().map(|(s, _)| *s) else {
                    break;
                };
                let full = page.len() == room + 1;
                wires.extend(
                    page.into_iter()
                        .filter(|(s, _)| sync::wanted(have, &held, &author, *s))
                        .map(|(_, w)| w),
                );
                if !full || last >= have.saturating_add(sync::MAX_GAP) {
                    break;
                }
                next = last + 1;
            }
            for w in wires {
                if resp.messages.len() == sync::MAX_BATCH
                    || bytes + w.len() > crate::net::SYNC_RESPONSE_BYTES
                {
                    resp.more = true;
                    break 'authors;
                }
                bytes += w.len();
                resp.messages.push(serde_bytes::ByteBuf::from(w));
            }
        }
        Ok(resp)
    }

    /// A response is checked whole before anything is stored: messages that were not asked
    /// for, break an author's chain or carry a bad signature make us drop it and the peer.
    fn on_sync_response(
        &mut self,
        peer: PeerId,
        channel: String,
        (asked, held): (Vector, sync::Ranges),
        resp: SyncResponse,
    ) {
        if channel == DM_LIST {
            return self.on_dm_list(peer, resp);
        }
        let mut envs = Vec::with_capacity(resp.messages.len());
        for w in &resp.messages {
            match Envelope::decode_unverified(w) {
                Ok(e) => envs.push(e),
                Err(e) => return self.bad_peer(peer, format!("sync response: {e}")),
            }
        }
        let links: Vec<(String, Link)> = envs
            .iter()
            .map(|e| (e.unsigned.channel.clone(), Link::of(e)))
            .collect();
        let store = self.profile.store().clone();
        if let Err(e) = sync::check_response(&asked, &held, &links, &channel, |a, s| {
            store.log_entry(&channel, &a, s).ok().flatten()
        }) {
            return self.bad_peer(peer, format!("sync response: {e}"));
        }
        if message::verify_batch(&envs).iter().any(|ok| !ok) {
            return self.bad_peer(peer, "sync response: bad signature".into());
        }
        let Some(head) = self.chain.head().cloned() else {
            return;
        };
        let head = &head;
        let mut sent = asked.clone();
        for (_, l) in &links {
            let e = sent.entry(l.author).or_insert(0);
            *e = (*e).max(l.seq);
        }
        // Ask for the next batch before storing this one, so the peer reads while we write.
        if resp.more {
            self.sync_channel(peer, channel.clone(), &sent);
        }
        let now = crate::now_ms();
        let mut inserted = 0;
        for env in envs {
            if store.has_message(&env.id).unwrap_or(false) {
                continue;
            }
            let sender = match message::check_rules(&env, head, now) {
                Ok(m) => m.name.clone(),
                Err(r) => {
                    // Honest peers can hold messages our roster no longer admits: skip them.
                    *self
                        .stats
                        .rejected
                        .entry(format!("sync_{}", r.kind()))
                        .or_default() += 1;
                    continue;
                }
            };
            if let Err(r) = self.check_chain(&env) {
                self.reject(r.kind(), format!("from {peer} (sync): {r}"));
                continue;
            }
            match store.insert_message(&env, &sender) {
                Ok(true) => {
                    inserted += 1;
                    self.stats.accepted += 1;
                    self.stats.synced += 1;
                    self.accepted(&env, sender);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!("storing synced message: {e}");
                    break;
                }
            }
        }
        self.start_flush();
        tracing::debug!("sync from {peer}: {inserted} new in '{channel}'");
    }

    /// Catch up on the direct-message channels a peer listed that both of us may read.
    fn on_dm_list(&mut self, peer: PeerId, resp: SyncResponse) {
        if resp.channels.len() > crate::net::MAX_DM_LIST || !resp.messages.is_empty() {
            return self.bad_peer(peer, "oversized or malformed DM list".into());
        }
        let Some(head) = self.chain.head() else {
            return;
        };
        let (Some(me), Some(their)) = (
            head.member_of_device(&self.me),
            DeviceId::from_peer_id(&peer).and_then(|d| head.member_of_device(&d)),
        ) else {
            return;
        };
        let wanted: Vec<String> = resp
            .channels
            .into_iter()
            .filter(|c| {
                dm_parties(c).is_some()
                    && head.roster.may_read(me, c)
                    && head.roster.may_read(their, c)
            })
            .collect();
        for ch in wanted {
            self.sync_channel(peer, ch, &Vector::new());
        }
    }

    /// A peer's message was stored (gossip or sync alike): take the keys it grants us, and
    /// show it once flushed if it is something to show.
    fn accepted(&mut self, env: &Envelope, sender: String) {
        match self.profile.absorb(env) {
            Ok(0) => {}
            Ok(_) => self.emit(Event::KeysReceived {
                channel: env.unsigned.channel.clone(),
            }),
            Err(e) => tracing::error!("storing a received key: {e}"),
        }
        if let Some(m) = self.profile.store().render(env, sender) {
            self.pending.push(Pending::Received(m));
        }
    }

    fn bad_peer(&mut self, peer: PeerId, reason: String) {
        self.reject("sync", format!("from {peer}: {reason}; disconnecting"));
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    // ---- connections ------------------------------------------------------------------

    fn on_found(&mut self, f: Found) {
        self.known.insert(f.peer, f.addrs.clone());
        self.dial_peer(f.peer);
    }

    fn dial_peer(&mut self, peer: PeerId) {
        if self.connections.contains_key(&peer) || !self.swarm.behaviour().gate.allows(&peer) {
            return;
        }
        let Some(addrs) = self.known.get(&peer) else {
            return;
        };
        let opts = DialOpts::peer_id(peer)
            .addresses(addrs.clone())
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        let _ = self.swarm.dial(opts);
    }

    fn dial_addr(&mut self, addr: Multiaddr) {
        self.static_peers.entry(addr.clone()).or_insert(None);
        if let Err(e) = self.swarm.dial(addr.clone()) {
            tracing::debug!("dial {addr}: {e}");
        }
    }

    fn redial(&mut self) {
        let peers: Vec<PeerId> = self.known.keys().copied().collect();
        for p in peers {
            self.dial_peer(p);
        }
        let statics: Vec<Multiaddr> = self
            .static_peers
            .iter()
            .filter(|(_, p)| p.is_none_or(|p| !self.connections.contains_key(&p)))
            .map(|(a, _)| a.clone())
            .collect();
        for a in statics {
            let _ = self.swarm.dial(a);
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                self.listen_addrs.push(address.clone());
                self.emit(Event::Listening(address));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                let addr = endpoint.get_remote_address().clone();
                if endpoint.is_dialer() {
                    let bare = without_p2p(&addr);
                    for (a, p) in self.static_peers.iter_mut() {
                        if without_p2p(a) == bare {
                            *p = Some(peer_id);
                        }
                    }
                }
                if self.swarm.behaviour().gate.departed(&peer_id) {
                    // A removed device came back: it asks for the roster (answered up to its
                    // removal) and is closed after the grace period. Nothing else.
                    tracing::info!("removed device {peer_id} connected; telling it of its removal");
                    self.closing.push(peer_id);
                    self.close_at = Some(tokio::time::Instant::now() + REMOVAL_GRACE);
                    return;
                }
                self.connections.insert(peer_id, addr);
                if num_established.get() == 1 {
                    self.send_have(peer_id);
                    self.start_sync(peer_id);
                    if let Some(dev) = DeviceId::from_peer_id(&peer_id) {
                        if let Some(m) = self.chain.head().and_then(|h| h.member_of_device(&dev)) {
                            let name = m.name.clone();
                            self.emit(Event::PeerConnected { device: dev, name });
                        }
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.connections.remove(&peer_id);
                self.have_in_flight.retain(|(p, _, _)| *p != peer_id);
                if let Some(dev) = DeviceId::from_peer_id(&peer_id) {
                    self.emit(Event::PeerDisconnected { device: dev });
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(ev)) => match ev {
                gossipsub::Event::Message {
                    propagation_source,
                    message_id,
                    message,
                } => self.on_gossip(propagation_source, message_id, message),
                gossipsub::Event::Subscribed { peer_id, topic } => {
                    self.on_subscribed(peer_id, &topic);
                    if let Some(ch) = self.topics.get(&topic).cloned() {
                        self.flush_outbox(&ch);
                    }
                }
                _ => {}
            },
            SwarmEvent::Behaviour(BehaviourEvent::Roster(ev)) => self.on_roster_event(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => self.on_sync_event(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(_)) => {}
            SwarmEvent::Behaviour(BehaviourEvent::Gate(ev)) => match ev {},
            SwarmEvent::IncomingConnectionError { error, .. } => {
                tracing::debug!("incoming: {error}")
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!("dial {peer_id:?}: {error}")
            }
            _ => {}
        }
    }
}

/// The address without its `/p2p/<id>` part, to match a static peer given with or without it.
fn without_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect()
}
