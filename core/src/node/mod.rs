//! The [`Node`] handle: commands in, an event stream out.
//!
//! The swarm, the roster chain and all protocol state live in one task
//! ([`runner`]) and nowhere else; the handle talks to it over channels. The store is shared
//! (sled is a concurrent database) so that history reads do not queue behind the network.
//!
//! Where things live: [`runner`] (the event loop, commands, connections), [`durable`]
//! (group commit), [`members`] (roster exchange, gate, topics), [`intake`] (gossip and
//! catch-up into the intake pipeline). The decisions they perform are in [`crate::proto`].

mod durable;
mod facts;
mod files;
mod fork;
mod governance;
mod intake;
mod members;
mod neighbours;
mod push;
mod remind;
mod runner;
mod schedule;
mod search;
mod signals;
mod status;

use crate::conversation::Act;
use crate::e2e::Plain;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::discovery::Discovery;
use crate::error::{Error, Result};
use crate::identity::DeviceId;
use crate::message::MessageId;
use crate::net::Behaviour;
use crate::profile::Profile;
use crate::roster::{AuditEntry, Roster, RosterChange, VerifiedRoster};
use crate::store::{Store, StoredMessage};
use runner::Runner;

pub use files::{at_rest as files_at_rest, openable as openable_file, FileStatus};
pub use governance::{SweepReport, SWEEP_EVERY};
pub use remind::{reminders as reminders_in, Reminder};
pub use schedule::{scheduled as scheduled_in, Scheduled};
pub use search::IndexStats;

/// How many of this member's latest messages, and of the latest that mention them,
/// [`Node::threads`] looks through.
pub const THREADS_LOOK_BACK: usize = 1000;

/// The searches whose hits (each at most [`THREADS_LOOK_BACK`], newest first) name the
/// threads `me` takes part in: what they wrote, and what mentions them.
pub fn threads_queries(me: &str) -> [String; 2] {
    [format!("from:\"{me}\""), "mentions:me".to_string()]
}

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
    /// Up to this many other roster devices, the node connects to all of them; beyond it,
    /// to a few per topic (see [`crate::proto::neighbours`]). Relays connect to all always.
    pub mesh_limit: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec!["/ip4/0.0.0.0/tcp/0".parse().expect("valid multiaddr")],
            peers: Vec::new(),
            mdns: true,
            mesh_limit: crate::proto::neighbours::FULL_MESH_UP_TO,
        }
    }
}

/// Dual stack: for each IPv4 wildcard listen address (`/ip4/0.0.0.0/tcp/P`), the IPv6
/// wildcard on the same port (the one the IPv4 listener got, if P was 0), so that one mDNS
/// record (one port) covers both families and an IPv6-only network works with the defaults.
/// Nothing is added when the caller listed an IPv6 address itself.
fn ipv6_companions(asked: &[Multiaddr], bound: &[Multiaddr]) -> Vec<Multiaddr> {
    use libp2p::multiaddr::Protocol;
    fn first(a: &Multiaddr) -> Option<Protocol<'_>> {
        a.iter().next()
    }
    if asked
        .iter()
        .any(|a| matches!(first(a), Some(Protocol::Ip6(_))))
    {
        return Vec::new();
    }
    let tcp_port = |a: &Multiaddr| {
        a.iter().find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
    };
    let bound_port = bound.iter().find_map(tcp_port);
    asked
        .iter()
        .filter(|a| matches!(first(a), Some(Protocol::Ip4(ip)) if ip.is_unspecified()))
        .filter_map(|a| {
            let port = match tcp_port(a)? {
                0 => bound_port?,
                p => p,
            };
            Some(
                Multiaddr::empty()
                    .with(Protocol::Ip6(std::net::Ipv6Addr::UNSPECIFIED))
                    .with(Protocol::Tcp(port)),
            )
        })
        .collect()
}

/// How long news from peer exchange that a device is on the network (a fresh record it
/// signed, see [`crate::net::pex`]) keeps it shown online (exchanges run every 5 s while
/// anything happens, every 30 s when quiet).
pub const PRESENCE_TTL: Duration = Duration::from_secs(75);

/// What a node reports.
#[derive(Debug, Clone)]
pub enum Event {
    Listening(Multiaddr),
    /// A message may be shown: ours once it is on disk; a peer's once it is verified and
    /// written (its flush follows; catch-up repairs a crash in between).
    Message(Box<StoredMessage>),
    /// A message shown locked (its key had not come) opens now: it was remembered on disk,
    /// so this comes after a restart too. Before the channel's [`Event::KeysReceived`]. For
    /// what takes each message once as it can be read (the API's event stream, webhooks);
    /// the app redraws on `KeysReceived` instead.
    Unlocked(Box<StoredMessage>),
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
    /// A roster device is on the network now (`online`), or no longer: connected to this
    /// node, or a neighbour passed on a fresh record it signed within the last
    /// [`PRESENCE_TTL`]. Above the mesh limit a node connects to only some devices, so this,
    /// not `PeerConnected`, is what "online" means in the app. Neighbours pass records on
    /// but cannot make them (see [`crate::net::pex`]).
    Presence {
        device: DeviceId,
        online: bool,
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
    /// `member` is typing in `channel` (show it for a few seconds; repeated while it lasts).
    Typing {
        channel: String,
        member: String,
    },
    /// A message scheduled for later could not be sent at its time (the roster no longer
    /// lets this member post there): it is dropped, and this says what it was.
    ScheduledFailed {
        channel: String,
        text: String,
        why: String,
    },
    /// A reminder is due (see [`Node::remind`]): the message as it shows now.
    Reminder {
        reminder: Reminder,
        message: Box<StoredMessage>,
    },
    /// A member set their status, changed it or cleared it (`text` empty); see
    /// [`crate::status`].
    Status(crate::status::MemberStatus),
    /// A device of `member` says its member is away (idle) or back.
    Away {
        member: String,
        device: DeviceId,
        away: bool,
    },
    /// A shared file finished downloading (every chunk verified and on disk).
    FileReady {
        blob: crate::files::BlobId,
    },
    /// The disk failed under the store (an I/O error on a write or a flush). The database
    /// takes no writes after one, so the node stopped: what was acknowledged is on disk,
    /// what came after it was not acknowledged (a sender got an error; catch-up fetches
    /// received messages again). Start the node again once the disk is fixed.
    StoreFailed {
        error: String,
    },
    /// Retention or an erasure request removed these messages (and their files), or (both
    /// counts 0) they were this device's, refused by every peer as a fork and taken back to
    /// be sent again: drop them from whatever shows or indexes them.
    Swept {
        ids: Arc<[MessageId]>,
        /// The channel of each of `ids` (same order).
        channels: Arc<[String]>,
        expired: usize,
        erased: usize,
    },
    /// A member's device now holds more of this device's messages in `channel` (the
    /// "delivered" state; see [`Node::delivered_marks`]).
    Delivered {
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
    /// Connections refused by a limit (handshakes per IP, connections per device, strangers
    /// while bootstrapping), not by the roster.
    #[serde(default)]
    pub limited_connections: u64,
    /// File chunks served to peers, and file chunks received (verified) from them.
    #[serde(default)]
    pub chunks_served: u64,
    #[serde(default)]
    pub chunks_received: u64,
    /// Bytes of file answers read for peers and not yet taken by them (each peer's share is
    /// bounded: see `node::files::Serving`).
    #[serde(default)]
    pub file_bytes_untaken: u64,
    /// Gossip messages accepted and not forwarded, because every peer that would have been
    /// sent a copy holds it already from its author (see `RosterResponse::links`).
    #[serde(default)]
    pub forwards_spared: u64,
}

pub(crate) enum Command {
    Send {
        channel: String,
        text: String,
        reply: oneshot::Sender<Result<MessageId>>,
    },
    /// An ephemeral signal to the connected devices that may see it (unless not `checked`).
    Signal {
        signal: crate::net::Signal,
        checked: bool,
    },
    /// A reply, edit, deletion or reaction, already checked against its target.
    Act {
        channel: String,
        act: crate::e2e::Plain,
        /// Sent under this reader's tag whatever it holds and whoever sends it (only
        /// [`Node::answer_unchecked`] and [`Node::thread_reply_unchecked`], a modified
        /// client in tests).
        forced: Option<crate::e2e::ReaderTag>,
        reply: oneshot::Sender<Result<MessageId>>,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    Schedule {
        channel: String,
        text: String,
        at: u64,
        reply: oneshot::Sender<Result<Scheduled>>,
    },
    Unschedule {
        id: u64,
        reply: oneshot::Sender<Result<Scheduled>>,
    },
    Remind {
        message: MessageId,
        at: u64,
        reply: oneshot::Sender<Result<Reminder>>,
    },
    Unremind {
        id: u64,
        reply: oneshot::Sender<Result<Reminder>>,
    },
    SetStatus {
        status: crate::status::Status,
        reply: oneshot::Sender<Result<()>>,
    },
    Statuses {
        reply: oneshot::Sender<Vec<crate::status::MemberStatus>>,
    },
    ShareFile {
        channel: String,
        prepared: crate::files::Prepared,
        name: String,
        mime: String,
        caption: String,
        /// Forwarded: where it was shared first.
        from: Option<crate::conversation::Forwarded>,
        reply: oneshot::Sender<Result<MessageId>>,
    },
    WantFile {
        blob: crate::files::BlobId,
        reply: oneshot::Sender<Result<FileStatus>>,
    },
    Files {
        reply: oneshot::Sender<Result<Vec<FileStatus>>>,
    },
    Roster {
        reply: oneshot::Sender<Option<Roster>>,
    },
    Audit {
        reply: oneshot::Sender<Vec<AuditEntry>>,
    },
    ChangeRoster {
        changes: Vec<RosterChange>,
        reply: oneshot::Sender<Result<u64>>,
    },
    /// Append to this device's signed action log.
    Record {
        action: String,
        detail: serde_json::Value,
        reply: oneshot::Sender<Result<crate::store::Action>>,
    },
    /// Apply retention and erasure now.
    Sweep {
        reply: oneshot::Sender<Result<SweepReport>>,
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
    Diagnose {
        reply: oneshot::Sender<crate::diagnose::Report>,
    },
    Invite {
        until: Option<u64>,
        reply: oneshot::Sender<Result<()>>,
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
    blobs: crate::files::blobs::Blobs,
    /// Why the node task stopped, when it was not asked to (the disk failed): commands sent
    /// after it say that, not only that the node is gone.
    stopped: Arc<std::sync::OnceLock<String>>,
    /// The search index's thread (see [`search`]).
    search: std::sync::mpsc::Sender<search::Job>,
}

impl Node {
    /// Start a node on `profile`'s data directory. Returns once it is listening.
    ///
    /// The node runs on a thread of its own with a single-threaded runtime: the swarm, its
    /// connections and the event loop then hand each frame along without waking another
    /// thread. On the multi-threaded runtime of the caller a frame could hop between
    /// workers (connection task, swarm, event loop), each hop waking an idle core
    /// (docs/benchmarks.md, "The node on a thread of its own": ~15 % less receiver CPU a
    /// message in alternating runs, within this machine's drift). It also keeps the node's
    /// pace independent of what the embedding program (the app's UI, the daemon's HTTP
    /// API) does on its own runtime.
    pub async fn start(profile: Profile, config: Config) -> Result<Node> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("majlis-node".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .thread_name("majlis-blocking")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Net(format!(
                            "cannot start the node's runtime: {e}"
                        ))));
                        return;
                    }
                };
                let reply = rt.block_on(async move {
                    match Node::launch(profile, config).await {
                        Ok((node, run)) => {
                            let _ = ready_tx.send(Ok(node));
                            run.await
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            None
                        }
                    }
                });
                // Its blocking tasks (a flush, mDNS's goodbye) end with the runtime.
                drop(rt);
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            })
            .map_err(|e| Error::Net(format!("cannot start the node's thread: {e}")))?;
        match ready_rx.await {
            Ok(started) => started,
            Err(_) => {
                // The thread is ending (it dropped the sender): joining it takes no time.
                let why = match thread.join() {
                    Err(panic) => panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "a panic".into()),
                    Ok(()) => "no reason given".into(),
                };
                Err(Error::Net(format!(
                    "the node stopped while starting: {why}"
                )))
            }
        }
    }

    /// [`Node::start`]'s work on the node's own thread: the handle, and the event loop to
    /// run until the node stops.
    async fn launch(
        profile: Profile,
        config: Config,
    ) -> Result<(
        Node,
        impl std::future::Future<Output = Option<oneshot::Sender<()>>>,
    )> {
        let org = profile.require_org()?;
        let chain = profile.chain()?;
        let statuses = crate::status::load(profile.store(), chain.head());
        // Seqs reserved by a run that stopped without giving them back are skipped, and
        // that is on disk before anything of ours is published (see `Store::next_own`).
        let reserved_on_disk = profile.store().resume_reservations(&profile.device_id())?;
        profile.store().mark_running()?;
        profile.store().flush()?;
        let key = profile.key().libp2p_keypair();
        let mut swarm =
            libp2p::SwarmBuilder::with_existing_identity(key)
                .with_tokio()
                // TCP, plus link-local IPv6 dialing (see `net::scoped`), with noise and yamux.
                .with_other_transport(|key| {
                    use libp2p::core::{upgrade::Version, Transport};
                    let noise = libp2p::noise::Config::new(key)
                        .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
                    Ok(crate::net::scoped::ScopedTcp::new(
                        libp2p::tcp::Config::default().nodelay(true),
                    )
                    // Lazy negotiation (as libp2p's own builder does): noise and yamux
                    // are proposed together with their first bytes instead of a round trip
                    // each, two round trips (1.2 s on a 300 ms radio link) off every dial.
                    .upgrade(Version::V1Lazy)
                    .authenticate(noise)
                    .multiplex(libp2p::yamux::Config::default()))
                })
                .map_err(|e| Error::Net(e.to_string()))?
                .with_behaviour(Behaviour::new)
                .map_err(|e| Error::Net(e.to_string()))?
                // Gossipsub only keeps connections alive while a peer is in a mesh; an org's
                // devices should stay connected regardless.
                .with_swarm_config(|c| {
                    c.with_idle_connection_timeout(Duration::from_secs(3600))
                        // Every request (catch-up, roster, files, push) opens a stream that
                        // names its protocol. Sent with the request, not a round trip ahead
                        // of it: on a 600 ms radio link each catch-up answer took 1.9 s
                        // instead of 1.1 s. Wire-identical to plain V1; a stream offering
                        // several protocols (gossipsub's versions) still negotiates first.
                        .with_substream_upgrade_protocol_override(
                            libp2p::core::upgrade::Version::V1Lazy,
                        )
                })
                .build();
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| listen_failed(addr.to_string(), &e))?;
        }
        // Wait for the first concrete address: callers (and mDNS) need the port.
        let mut listen_addrs = Vec::new();
        let deadline = tokio::time::sleep(Duration::from_secs(5));
        tokio::pin!(deadline);
        while listen_addrs.is_empty() {
            tokio::select! {
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::NewListenAddr { address, .. } => listen_addrs.push(address),
                    SwarmEvent::ListenerError { error, .. } => return Err(listen_failed(listen_list(&config.listen), &error)),
                    SwarmEvent::ListenerClosed { reason: Err(error), .. } => return Err(listen_failed(listen_list(&config.listen), &error)),
                    _ => {}
                },
                _ = &mut deadline => return Err(Error::Listen { addr: listen_list(&config.listen), reason: crate::diagnose::LISTEN_WORDS[3].into() }),
            }
        }
        for v6 in ipv6_companions(&config.listen, &listen_addrs) {
            // Best effort: a host without IPv6 still runs on IPv4.
            if let Err(e) = swarm.listen_on(v6.clone()) {
                tracing::warn!("not listening on {v6} (IPv6): {e}");
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
            // A device not on the roster yet asks to join under its name (admins see it
            // with its join code); a member's device does not announce its owner's name.
            let listed = chain
                .head()
                .is_some_and(|h| h.member_of_device(&profile.device_id()).is_some());
            let name = profile.name()?;
            Some(Discovery::start(
                &org,
                *swarm.local_peer_id(),
                port,
                (!listed).then_some(name.as_str()),
                disc_tx.clone(),
            )?)
        } else {
            None
        };
        let blobs = crate::files::blobs::Blobs::open(
            &profile.dir().join("blobs"),
            profile.store().tree("blobs")?,
        )?;
        let (file_tx, file_rx) = mpsc::unbounded_channel();
        let (cmd_tx, cmd_rx) = mpsc::channel(1024);
        let (ev_tx, _) = broadcast::channel(16 * 1024);
        let (roster_tx, roster_rx) = watch::channel(None);
        let node = Node {
            cmd: cmd_tx,
            events: ev_tx.clone(),
            store: profile.store().clone(),
            device: profile.device_id(),
            roster: roster_rx.clone(),
            sealing: profile.sealing(),
            blobs: blobs.clone(),
            stopped: Arc::default(),
            search: search::spawn(
                profile.store().clone(),
                roster_rx.clone(),
                profile.device_id(),
                ev_tx.subscribe(),
            ),
        };
        let mut runner = Runner {
            me: profile.device_id(),
            store: profile.store().clone(),
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
            plan: None,
            outbound: HashMap::new(),
            conns: HashMap::new(),
            sub_checks: HashMap::new(),
            sub_healed: HashMap::new(),
            heard: HashMap::new(),
            present: HashSet::new(),
            mesh_limit: config.mesh_limit,
            records: HashMap::new(),
            own_record: None,
            recent: Default::default(),
            first_known: HashMap::new(),
            started: std::time::Instant::now(),
            last_error: HashMap::new(),
            dial_errors: HashMap::new(),
            static_peers: config.peers.iter().map(|a| (a.clone(), None)).collect(),
            static_dials: HashMap::new(),
            resolving: HashSet::new(),
            resolved: mpsc::unbounded_channel(),
            connections: HashMap::new(),
            announced: HashSet::new(),
            last_good: HashMap::new(),
            peer_versions: HashMap::new(),
            topics: HashMap::new(),
            roster_topics: HashMap::new(),
            suspects: HashSet::new(),
            suspects_later: HashSet::new(),
            have_in_flight: HashSet::new(),
            catchup: Default::default(),
            rounds: 0,
            ticks: 0,
            last_activity: std::time::Instant::now(),
            links: HashMap::new(),
            relink_at: None,
            due_at: None,
            forwards_spared: 0,
            resting: Vec::new(),
            churned: HashMap::new(),
            gone_at: HashMap::new(),
            to_validate: Vec::new(),
            keys_taken: HashMap::new(),
            verifying: Default::default(),
            closing: Vec::new(),
            close_at: None,
            listed: false,
            inviting_until: None,
            wipe: false,
            contested: None,
            bench_plaintext: std::env::var("MAJLIS_BENCH_PLAINTEXT").is_ok_and(|v| v == "1"),
            away: false,
            signal_seen: HashMap::new(),
            away_heard: HashMap::new(),
            keys_owed: Vec::new(),
            statuses,
            statuses_dirty: false,
            status_pace: Default::default(),
            pass_on: Default::default(),
            signals_sent: HashMap::new(),
            last_version: 0,
            pending: Vec::new(),
            flushing: None,
            held_topics: HashSet::new(),
            flush_at: None,
            reserved_on_disk,
            reserving: Vec::new(),
            tally: Default::default(),
            flushes: 0,
            flushed_writes: 0,
            blobs,
            sweeping: Default::default(),
            files: Default::default(),
            file_tx,
            facts: Default::default(),
            failed: None,
            stopped: node.stopped.clone(),
        };
        runner.on_roster_changed(false);
        runner.resume_files();
        for addr in config.peers {
            runner.dial_addr(addr);
        }
        Ok((node, runner.run(cmd_rx, disc_rx, file_rx)))
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
        self.cmd
            .send(make(tx))
            .await
            .map_err(|_| self.stopped_error())?;
        rx.await.map_err(|_| self.stopped_error())
    }

    fn stopped_error(&self) -> Error {
        match self.stopped.get() {
            Some(why) => Error::DiskFailed(why.clone()),
            None => Error::Stopped,
        }
    }

    /// How long a command that posts waits for the roster when the node has none yet.
    ///
    /// Why: a node started a moment ago has usually reached a peer whose roster is on its
    /// way (one round trip after the connection); failing a `send` typed in that window
    /// would make the user retry what the node could have done. A device that is not on
    /// the roster still gets the clear "no roster yet" error, this much later.
    const ROSTER_GRACE: Duration = Duration::from_secs(5);

    /// The head roster, waiting for it (at most [`Self::ROSTER_GRACE`]) if none is held yet:
    /// what a command that acts on the roster's rules calls first (the HTTP API too).
    pub async fn roster_soon(&self) -> Option<Arc<VerifiedRoster>> {
        if let Some(r) = self.roster_now() {
            return Some(r);
        }
        let mut rx = self.roster.clone();
        let _ = tokio::time::timeout(Self::ROSTER_GRACE, rx.wait_for(|r| r.is_some())).await;
        self.roster_now()
    }

    /// Sign, store durably, then publish. Returns the message id once it is on disk; delivery
    /// happens as soon as peers are reachable.
    pub async fn send(&self, channel: &str, text: &str) -> Result<MessageId> {
        self.roster_soon().await;
        let (channel, text) = (channel.to_string(), text.to_string());
        self.ask(|reply| Command::Send {
            channel,
            text,
            reply,
        })
        .await?
    }

    /// Share the file at `path` in `channel` (or `@NAME`): encrypt it into the blob store
    /// (streaming; any size the layout allows), then sign and send its message. Returns the
    /// message id once the message is on disk; peers fetch the bytes from here (and from
    /// whoever fetched them already).
    pub async fn share_file(
        &self,
        channel: &str,
        path: &std::path::Path,
        caption: &str,
    ) -> Result<MessageId> {
        self.share_file_as(channel, path, caption, None).await
    }

    /// [`Node::share_file`] saying it is a forward of `from`, without this client's checks
    /// (that it holds `from`, that the file is that one), as a modified client would: for
    /// tests that show readers check a forwarded file's claim themselves.
    #[doc(hidden)]
    pub async fn forward_file_unchecked(
        &self,
        channel: &str,
        path: &std::path::Path,
        caption: &str,
        from: crate::conversation::Forwarded,
    ) -> Result<MessageId> {
        self.share_file_as(channel, path, caption, Some(from)).await
    }

    async fn share_file_as(
        &self,
        channel: &str,
        path: &std::path::Path,
        caption: &str,
        from: Option<crate::conversation::Forwarded>,
    ) -> Result<MessageId> {
        self.roster_soon().await;
        let channel = self.resolve(channel)?;
        let name = crate::files::safe_name(
            &path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let mime = crate::files::guess_mime(&name).to_string();
        let size = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        self.may_share(&channel, size, &mime)?;
        let (src, dir) = (path.to_path_buf(), self.blobs.dir().to_path_buf());
        let prepared = tokio::task::spawn_blocking(move || crate::files::prepare(&src, &dir))
            .await
            .map_err(|e| Error::Net(format!("file task: {e}")))??;
        self.share_prepared(channel, prepared, name, mime, caption, from)
            .await
    }

    /// Share `bytes` as a file named `name` in `channel` (a pasted image): encrypted from
    /// memory, so the content never touches the disk unsealed.
    pub async fn share_bytes(
        &self,
        channel: &str,
        name: &str,
        bytes: Vec<u8>,
        caption: &str,
    ) -> Result<MessageId> {
        self.roster_soon().await;
        let channel = self.resolve(channel)?;
        let name = crate::files::safe_name(name);
        let mime = crate::files::guess_mime(&name).to_string();
        let size = bytes.len() as u64;
        self.may_share(&channel, size, &mime)?;
        let (dir, what) = (self.blobs.dir().to_path_buf(), name.clone());
        let prepared = tokio::task::spawn_blocking(move || {
            crate::files::prepare_from(bytes.as_slice(), size, &what, &dir)
        })
        .await
        .map_err(|e| Error::Net(format!("file task: {e}")))??;
        self.share_prepared(channel, prepared, name, mime, caption, None)
            .await
    }

    async fn share_prepared(
        &self,
        channel: String,
        prepared: crate::files::Prepared,
        name: String,
        mime: String,
        caption: &str,
        from: Option<crate::conversation::Forwarded>,
    ) -> Result<MessageId> {
        let caption = caption.to_string();
        self.ask(|reply| Command::ShareFile {
            channel,
            prepared,
            name,
            mime,
            caption,
            from,
            reply,
        })
        .await?
    }

    /// Fetch a shared file (by its blob id) from every peer that may hold it; returns at
    /// once with its state. Fetching goes on after restarts until it is complete.
    pub async fn fetch_file(&self, blob: crate::files::BlobId) -> Result<FileStatus> {
        self.ask(|reply| Command::WantFile { blob, reply }).await?
    }

    /// Every file this node knows of, with its progress.
    pub async fn files(&self) -> Result<Vec<FileStatus>> {
        let mut files = self.ask(|reply| Command::Files { reply }).await??;
        for f in &mut files {
            files::name(f, &self.blobs, &self.store);
        }
        Ok(files)
    }

    /// Decrypt the file that message `id` shares into `dest` (a file path). The file must
    /// be complete ([`Node::fetch_file`] first).
    pub async fn save_file(&self, id: &MessageId, dest: &std::path::Path) -> Result<()> {
        let (blob, info) = self.openable_file(id)?;
        let (blobs, dest) = (self.blobs.clone(), dest.to_path_buf());
        tokio::task::spawn_blocking(move || blobs.export(&blob, &info, &dest))
            .await
            .map_err(|e| Error::Net(format!("file task: {e}")))?
    }

    /// Whether this device may share a file of `size` bytes and type `mime` in `channel`
    /// (the roster's posting rules and the org's file rules), so it never encrypts a file
    /// its peers would refuse.
    fn may_share(&self, channel: &str, size: u64, mime: &str) -> Result<()> {
        if let Some(r) = self.roster.borrow().as_deref() {
            crate::message::may_author(r, &self.device, channel)
                .map_err(|e| Error::Denied(e.to_string()))?;
            if let Some(why) = r.roster.files.refuse(size, mime) {
                return Err(Error::Denied(why));
            }
        }
        Ok(())
    }

    /// The file message `id` shares, if this device can open it and the org allows its
    /// type to be opened.
    fn openable_file(
        &self,
        id: &MessageId,
    ) -> Result<(crate::files::BlobRef, crate::files::FileInfo)> {
        files::openable(&self.store, self.roster.borrow().as_deref(), id)
    }

    /// The bytes of the file that message `id` shares, in memory (an image to preview; it
    /// is never written out in the clear), if it is complete here and at most `max` bytes.
    pub async fn file_bytes(&self, id: &MessageId, max: u64) -> Result<Vec<u8>> {
        let (blob, info) = self.openable_file(id)?;
        if info.size > max {
            return Err(Error::Invalid(format!(
                "the file is {} bytes, more than the {max} asked for",
                info.size
            )));
        }
        let src = self.blobs.plaintext(&blob, &info)?;
        tokio::task::spawn_blocking(move || {
            let mut src = src;
            let mut out = Vec::with_capacity(info.size as usize);
            match std::io::Read::read_to_end(&mut src, &mut out) {
                Ok(_) => Ok(out),
                Err(e) => Err(src.failure(e)),
            }
        })
        .await
        .map_err(|e| Error::Net(format!("file task: {e}")))?
    }

    /// Reply to `to` in its thread (the thread of its root if `to` is itself a reply); with
    /// `also_channel` the reply is shown in the channel too. Returns the reply's id.
    pub async fn reply(&self, to: &MessageId, text: &str, also_channel: bool) -> Result<MessageId> {
        self.roster_soon().await;
        let target = self.target(to)?;
        let root = match target.act {
            Some(Act::Reply { to, .. }) => to,
            _ => target.id,
        };
        if text.trim().is_empty() {
            return Err(Error::Invalid("a reply needs some text".into()));
        }
        let act = Plain::Reply {
            to: root,
            text: text.to_string(),
            also_channel,
        };
        self.act(target.channel, act).await
    }

    /// Forward message `id` into `to` (a channel, or `@NAME`): its text, with where it came
    /// from (author, channel, time). Readers who hold the original see that it matches;
    /// others see where it says it came from (see [`crate::conversation::ForwardCheck`]).
    /// A file is forwarded as a new file of the same bytes and name, with its caption:
    /// encrypted again under a new key, which only the readers of `to` get (they may not
    /// read the original's channel). It must be downloaded here first.
    pub async fn forward(&self, id: &MessageId, to: &str) -> Result<MessageId> {
        self.roster_soon().await;
        let m = self.target(id)?;
        // Only what this member may read now (the store may hold a channel they were
        // taken off).
        self.readable(&m.channel)?;
        let from = crate::conversation::Forwarded {
            id: m.id,
            author: m.sender.clone(),
            channel: m.channel.clone(),
            sent_at: m.sent_at,
        };
        if m.file.is_some() {
            return self.forward_file(id, from, to).await;
        }
        if m.poll.is_some() {
            return Err(Error::Conflict(
                "a poll is not forwarded: its votes stay where it was asked; ask it there".into(),
            ));
        }
        let to = self.resolve(to)?;
        let act = Plain::Forward { text: m.text, from };
        self.act(to, act).await
    }

    /// [`Node::forward`] of a file: its bytes, decrypted from the blob store and encrypted
    /// again as they stream (never written out in the clear), shared in `to`.
    async fn forward_file(
        &self,
        id: &MessageId,
        from: crate::conversation::Forwarded,
        to: &str,
    ) -> Result<MessageId> {
        let (blob, info) = self.openable_file(id)?;
        if !self.blobs.meta(&blob.id)?.is_some_and(|m| m.complete) {
            return Err(Error::NotReady(format!(
                "the file is not downloaded on this device yet: download it first \
                 (`majlisd get {id}`, or Download in the app), then forward it"
            )));
        }
        let to = self.resolve(to)?;
        self.may_share(&to, info.size, &info.mime)?;
        let name = crate::files::safe_name(&info.name);
        let src = self.blobs.plaintext(&blob, &info)?;
        let (dir, size, what) = (self.blobs.dir().to_path_buf(), info.size, name.clone());
        let prepared = tokio::task::spawn_blocking(move || {
            let mut src = src;
            crate::files::prepare_from(&mut src, size, &what, &dir).map_err(|e| {
                match src.failed.take() {
                    Some(why) => why,
                    None => e,
                }
            })
        })
        .await
        .map_err(|e| Error::Net(format!("file task: {e}")))??;
        let mime = info.mime.clone();
        self.share_prepared(to, prepared, name, mime, &info.caption, Some(from))
            .await
    }

    /// Save message `id` for later (`on`), or take it off the list; `is:saved` searches it.
    /// Kept sealed in this device's store, and said in this member's notes
    /// ([`Plain::Save`]), so each of their devices has the same list (a device that was off
    /// catches up on it like on any conversation).
    pub async fn save_for_later(&self, id: &MessageId, on: bool) -> Result<()> {
        if on {
            let m = self.target(id)?;
            self.readable(&m.channel)?;
        }
        let head = self.roster_now();
        let mine = head
            .as_deref()
            .and_then(|r| r.member_of_device(&self.device));
        let saved = self.store.saved_by(mine.map(|m| m.name.as_str()))?;
        if saved.contains(id) == on {
            return Err(Error::Conflict(match on {
                true => format!("message {id} is saved already"),
                false => format!("message {id} is not among those saved"),
            }));
        }
        // This device's own list first: it holds even where the act cannot go out. It may
        // already say so where the member's combined list does not (an act from another
        // device overrode it), so it is set, not toggled.
        self.store.keep_saved(id, on)?;
        self.tell_my_devices(Plain::Save { of: *id, on }).await
    }

    /// Tell this member's other devices that desktop notifications are paused until `until`
    /// (ms since the epoch; `u64::MAX`: until resumed; 0: resumed), so that each pauses
    /// alike ([`Plain::Pause`] in their notes; the app keeps and applies it).
    pub async fn pause_notifications(&self, until: u64) -> Result<()> {
        self.tell_my_devices(Plain::Pause { until }).await
    }

    /// Tell this member's other devices how they are to notify them of `channel`, so that
    /// muting it (or asking for every message) on one device holds on all of them
    /// ([`Plain::Notify`] in their notes; the app keeps and applies it).
    pub async fn set_notify(
        &self,
        channel: &str,
        notify: crate::conversation::Notify,
    ) -> Result<()> {
        let channel = channel.to_string();
        self.tell_my_devices(Plain::Notify { channel, notify })
            .await
    }

    /// Tell this member's other devices when they are to raise notifications (`None`: any
    /// time), so that each keeps the same hours ([`Plain::Hours`] in their notes; the app
    /// keeps and applies it).
    pub async fn set_notification_hours(
        &self,
        hours: Option<crate::conversation::Hours>,
    ) -> Result<()> {
        self.tell_my_devices(Plain::Hours { hours }).await
    }

    /// Tell this member's other devices that `channel` is starred (`on`) or not, so that
    /// each lists it alike ([`Plain::Star`] in their notes; the app keeps and applies it).
    pub async fn set_starred(&self, channel: &str, on: bool) -> Result<()> {
        let channel = channel.to_string();
        self.tell_my_devices(Plain::Star { channel, on }).await
    }

    /// Tell this member's other devices that `channel` is unread from the message sent at
    /// `from` (0: read again), so that each counts it alike ([`Plain::Unread`] in their
    /// notes; the app keeps and applies it).
    pub async fn set_unread_from(&self, channel: &str, from: u64) -> Result<()> {
        let channel = channel.to_string();
        self.tell_my_devices(Plain::Unread { channel, from }).await
    }

    /// Tell this member's other devices that the thread hanging from `thread` was seen up
    /// to its reply sent at `upto`, so that those replies are not new there either
    /// ([`Plain::Seen`] in their notes; the app keeps and applies it).
    pub async fn set_thread_seen(&self, thread: &MessageId, upto: u64) -> Result<()> {
        let thread = *thread;
        self.tell_my_devices(Plain::Seen { thread, upto }).await
    }

    /// Tell this member's other devices of `act` (a saved message, a reminder) through their
    /// notes, which only their devices post in and read. Nothing where this device may not
    /// post there (no roster yet, a relay).
    async fn tell_my_devices(&self, act: Plain) -> Result<()> {
        let head = self.roster_now();
        let Some((r, m)) = head
            .as_deref()
            .and_then(|r| Some((r, r.member_of_device(&self.device)?)))
        else {
            return Ok(());
        };
        let notes = crate::roster::notes_channel(&m.name);
        if r.roster.may_post(m, &notes) {
            self.act(notes, act).await?;
        }
        Ok(())
    }

    /// What this member saved for later, most recently saved first, on any of their
    /// devices (see [`Node::save_for_later`]).
    pub fn saved(&self) -> Result<Vec<MessageId>> {
        self.store.saved_by(self.my_name().ok().as_deref())
    }

    /// Replace the text of this member's message `id` (readers keep showing it as edited;
    /// every version stays in the history for audit and export).
    pub async fn edit(&self, id: &MessageId, text: &str) -> Result<MessageId> {
        self.roster_soon().await;
        let target = self.target(id)?;
        if target.sender != self.my_name()? {
            return Err(Error::Denied(format!(
                "only {} can edit this message (its author)",
                target.sender
            )));
        }
        if target.forwarded.is_some() {
            return Err(Error::Conflict(
                "a forwarded message keeps its author's words: delete it and forward it again, or write your own".into(),
            ));
        }
        if target.file.is_some() {
            return Err(Error::Conflict(
                "only a text message can be edited; a shared file stays as it is".into(),
            ));
        }
        if target.poll.is_some() {
            return Err(Error::Conflict(
                "a poll's question stays what people voted on: close it and ask again".into(),
            ));
        }
        if text.trim().is_empty() {
            return Err(Error::Invalid(
                "a message cannot be edited to nothing (delete it instead)".into(),
            ));
        }
        let act = Plain::Edit {
            of: target.id,
            text: text.to_string(),
        };
        self.act(target.channel, act).await
    }

    /// Delete message `id`: this member's own, or anyone's for an admin. Every reader shows
    /// "message deleted" in its place.
    pub async fn delete(&self, id: &MessageId) -> Result<MessageId> {
        self.roster_soon().await;
        let target = self.target(id)?;
        if target.sender != self.my_name()? && !self.am_admin() {
            return Err(Error::Denied(format!(
                "only {} (its author) or an admin can delete this message",
                target.sender
            )));
        }
        self.act(target.channel, Plain::Delete { of: target.id })
            .await
    }

    /// Whether this device's member is an admin in the head roster.
    fn am_admin(&self) -> bool {
        self.roster.borrow().as_deref().is_some_and(|r| {
            r.member_of_device(&self.device)
                .is_some_and(|m| m.role == crate::roster::Role::Admin)
        })
    }

    /// Add (`on`) or take back this member's reaction `emoji` to message `id`.
    pub async fn react(&self, id: &MessageId, emoji: &str, on: bool) -> Result<MessageId> {
        self.roster_soon().await;
        if !crate::conversation::valid_emoji(emoji) {
            return Err(Error::Invalid(format!(
                "'{emoji}' is not a reaction: one emoji or short symbol, no spaces"
            )));
        }
        let target = self.target(id)?;
        let act = Plain::React {
            to: target.id,
            emoji: emoji.to_string(),
            on,
        };
        self.act(target.channel, act).await
    }

    /// Ask `question` in `channel` (or `@NAME`) with `options` to choose from (`multi`:
    /// several may be chosen). Readers vote with [`Node::vote`]; each member's latest vote
    /// counts, and every reader folds the votes the same way (see
    /// [`crate::conversation::fold`]).
    pub async fn poll(
        &self,
        channel: &str,
        question: &str,
        options: &[String],
        multi: bool,
    ) -> Result<MessageId> {
        self.roster_soon().await;
        let channel = self.resolve(channel)?;
        let options: Vec<String> = options.iter().map(|o| o.trim().to_string()).collect();
        let question = question.trim();
        crate::conversation::check_poll(question, &options)?;
        let act = Plain::Poll {
            question: question.to_string(),
            options,
            multi,
        };
        self.act(channel, act).await
    }

    /// Vote in the poll `id` for the options at `choices` (from 0; several only where the
    /// poll allows it; none takes this member's vote back).
    pub async fn vote(&self, id: &MessageId, choices: &[usize]) -> Result<MessageId> {
        self.roster_soon().await;
        let (target, poll) = self.poll_target(id)?;
        if let Some((by, _)) = &poll.closed {
            return Err(Error::Conflict(format!(
                "this poll was closed by {by}: it takes no more votes"
            )));
        }
        let mut picked: Vec<usize> = choices.to_vec();
        picked.sort_unstable();
        picked.dedup();
        let n = poll.options.len();
        // Conflicts, not malformed requests: what is wrong is the choice against this poll.
        if let Some(c) = picked.iter().find(|c| **c >= n) {
            return Err(Error::Conflict(format!(
                "this poll has options 1 to {n}, not {}",
                c.saturating_add(1)
            )));
        }
        if picked.len() > 1 && !poll.multi {
            return Err(Error::Conflict(
                "this poll takes one choice: pick one option".into(),
            ));
        }
        let act = Plain::Vote {
            poll: target.id,
            // Fewer than MAX_POLL_OPTIONS, checked above against the poll's own options.
            choices: picked.iter().map(|c| *c as u8).collect(),
        };
        self.act(target.channel, act).await
    }

    /// The poll `id` (a message this device holds, votes folded in) and its poll.
    fn poll_target(
        &self,
        id: &MessageId,
    ) -> Result<(StoredMessage, crate::conversation::PollView)> {
        let mut target = self.target(id)?;
        match target.poll.take() {
            Some(poll) => Ok((target, poll)),
            None => Err(Error::Conflict(format!("message {id} is not a poll"))),
        }
    }

    /// Close the poll `id`: votes sent after count for nothing. Its author or an admin may.
    pub async fn close_poll(&self, id: &MessageId) -> Result<MessageId> {
        self.roster_soon().await;
        let (target, poll) = self.poll_target(id)?;
        if poll.closed.is_some() {
            return Err(Error::Conflict("this poll is already closed".into()));
        }
        if target.sender != self.my_name()? && !self.am_admin() {
            return Err(Error::Denied(format!(
                "only {} (who asked) or an admin can close this poll",
                target.sender
            )));
        }
        self.act(target.channel, Plain::ClosePoll { of: target.id })
            .await
    }

    /// Set the topic (a line shown under the channel's name) and description of `channel`
    /// (or `@NAME`). Anyone who may post there may; the latest one stands on every node.
    pub async fn set_topic(
        &self,
        channel: &str,
        topic: &str,
        description: &str,
    ) -> Result<MessageId> {
        self.roster_soon().await;
        let channel = self.resolve(channel)?;
        let (topic, description) = (topic.trim(), description.trim());
        crate::conversation::check_topic(topic, description)?;
        let act = Plain::Topic {
            topic: topic.to_string(),
            description: description.to_string(),
        };
        self.act(channel, act).await
    }

    /// Pin message `id` to its channel (`on`), or unpin it. Anyone who may post there may;
    /// every reader lists the channel's pins.
    pub async fn pin(&self, id: &MessageId, on: bool) -> Result<MessageId> {
        self.roster_soon().await;
        let target = self.target(id)?;
        let pinned = self
            .store
            .details(&target.channel)?
            .pins
            .iter()
            .any(|p| p.0 == target.id);
        if pinned == on {
            return Err(Error::Conflict(format!(
                "message {id} is {} pinned",
                if on { "already" } else { "not" }
            )));
        }
        self.act(target.channel, Plain::Pin { of: target.id, on })
            .await
    }

    /// Join (`on`) or leave an open channel (one the roster opens to every member). Leaving
    /// takes it out of this member's list on all their devices and out of `@channel`; it is
    /// not access control: the roster still lets every member read an open channel, and
    /// a restricted channel is left by an admin taking the member off its list.
    pub async fn join(&self, channel: &str, on: bool) -> Result<MessageId> {
        self.roster_soon().await;
        // Its wire name, whether it is open, and the name the refusals say (a rename's).
        let named = self.roster.borrow().as_deref().and_then(|r| {
            let c = r.roster.channel_typed(channel)?;
            let shown = r.roster.shown(&c.name).to_string();
            Some((c.name.clone(), c.members.is_none(), shown))
        });
        let open = named.as_ref().map(|(_, open, _)| *open);
        let (channel, shown) = named
            .as_ref()
            .map_or((channel, channel), |(name, _, shown)| {
                (name.as_str(), shown.as_str())
            });
        let left = match open {
            Some(true) => {
                let me = self.my_name()?;
                self.store.details(channel)?.left.contains(&me)
            }
            _ => false,
        };
        crate::conversation::check_join(shown, open, left, on)?;
        self.act(channel.to_string(), Plain::Join { on }).await
    }

    /// The channels this device's member may read, with their topics, and whether each is
    /// archived or was left (see [`crate::conversation::channel_rows`]).
    pub fn channels(&self) -> Result<Vec<crate::conversation::ChannelRow>> {
        match self.roster.borrow().as_deref() {
            Some(head) => crate::conversation::channel_rows(head, &self.device, &self.store),
            None => Ok(Vec::new()),
        }
    }

    /// What `channel` (or `@NAME`) shows about itself: topic, description, pins, who left.
    pub fn details(&self, channel: &str) -> Result<crate::conversation::Details> {
        let channel = self.resolve(channel)?;
        let mut details = self.store.details(&channel)?;
        details.archived = self.is_archived(&channel);
        Ok(details)
    }

    /// Whether an admin archived `channel` (a roster name): nothing more is posted there.
    fn is_archived(&self, channel: &str) -> bool {
        self.roster
            .borrow()
            .as_deref()
            .is_some_and(|r| r.roster.is_archived(channel))
    }

    /// The pinned messages of `channel` (or `@NAME`), folded, the most recently pinned
    /// first.
    pub fn pinned(&self, channel: &str) -> Result<Vec<StoredMessage>> {
        Ok(self.details_and_pinned(channel)?.1)
    }

    /// [`Node::details`] and [`Node::pinned`] in one pass (what a details view shows).
    pub fn details_and_pinned(
        &self,
        channel: &str,
    ) -> Result<(crate::conversation::Details, Vec<StoredMessage>)> {
        let channel = self.resolve(channel)?;
        let (mut details, pinned) = self.store.details_and_pinned(&channel)?;
        details.archived = self.is_archived(&channel);
        Ok((details, pinned))
    }

    /// Tell the readers of `channel` (or `@NAME`) connected now that this member is typing
    /// there. Call it while the composer changes; receivers show it for a few seconds, so
    /// every 3 s is enough. Nothing is stored.
    pub async fn typing(&self, channel: &str) -> Result<()> {
        let channel = self.resolve(channel)?;
        self.signal(crate::net::Signal::Typing { channel }, true)
            .await
    }

    /// Tell connected devices (and those that connect later) that this member is away, or
    /// back.
    pub async fn set_away(&self, away: bool) -> Result<()> {
        self.signal(crate::net::Signal::Away(away), true).await
    }

    /// Set this member's status for colleagues to see beside their name ("In a meeting"),
    /// until `until` (ms since the epoch) or until changed; an empty `text` clears it. Kept
    /// by every node and handed to each device that connects, so colleagues who are
    /// offline now see it when they come online.
    pub async fn set_status(&self, text: &str, until: Option<u64>) -> Result<()> {
        let status = crate::status::Status {
            text: text.to_string(),
            until,
        };
        self.ask(|reply| Command::SetStatus { status, reply })
            .await?
    }

    /// Keep `text` to send in `channel` (or `@NAME`) at `at` (ms since the epoch): signed
    /// and sent then, as if written then; if this node is not running at that time, when it
    /// next runs. Refused now if this member may not post there now.
    pub async fn send_later(&self, channel: &str, text: &str, at: u64) -> Result<Scheduled> {
        let (channel, text) = (channel.to_string(), text.to_string());
        self.ask(|reply| Command::Schedule {
            channel,
            text,
            at,
            reply,
        })
        .await?
    }

    /// Take a message off the schedule, unsent.
    pub async fn cancel_scheduled(&self, id: u64) -> Result<Scheduled> {
        self.ask(|reply| Command::Unschedule { id, reply }).await?
    }

    /// The messages waiting to be sent, soonest first.
    pub fn scheduled(&self) -> Vec<Scheduled> {
        schedule::scheduled(&self.store)
    }

    /// Remind this member of message `id` at `at` (ms since the epoch), on this device:
    /// [`Event::Reminder`] then (or when this node next runs, if it is not running then).
    pub async fn remind(&self, id: &MessageId, at: u64) -> Result<Reminder> {
        let message = *id;
        let r = self
            .ask(|reply| Command::Remind { message, at, reply })
            .await??;
        self.tell_reminder(&r, true).await;
        Ok(r)
    }

    /// Take a reminder off the list (on each of this member's devices).
    pub async fn cancel_reminder(&self, id: u64) -> Result<Reminder> {
        let r = self.ask(|reply| Command::Unremind { id, reply }).await??;
        self.tell_reminder(&r, false).await;
        Ok(r)
    }

    /// A reminder kept (`on`) or cancelled here, told to this member's other devices. It
    /// stands on this one whatever happens to the telling (a full disk, no roster), so a
    /// failure is logged, not returned.
    async fn tell_reminder(&self, r: &Reminder, on: bool) {
        let act = Plain::Remind {
            of: r.message,
            at: r.at,
            on,
        };
        if let Err(e) = self.tell_my_devices(act).await {
            tracing::warn!(
                "reminder {} not told to this member's other devices: {e}",
                r.id
            );
        }
    }

    /// The reminders waiting, soonest first.
    pub fn reminders(&self) -> Vec<Reminder> {
        remind::reminders(&self.store)
    }

    /// Members' statuses set and not ended (see [`Node::set_status`]).
    pub async fn statuses(&self) -> Result<Vec<crate::status::MemberStatus>> {
        self.ask(|reply| Command::Statuses { reply }).await
    }

    /// Send `signal` to every connected device without this client's checks, as a modified
    /// client would: for tests that show receivers hold the rules.
    #[doc(hidden)]
    pub async fn signal_unchecked(&self, signal: crate::net::Signal) -> Result<()> {
        self.signal(signal, false).await
    }

    async fn signal(&self, signal: crate::net::Signal, checked: bool) -> Result<()> {
        self.cmd
            .send(Command::Signal { signal, checked })
            .await
            .map_err(|_| self.stopped_error())
    }

    /// Tell `channel`'s readers that this member has read it up to message `upto` (a read
    /// receipt, itself a message). Only in DMs and channels with at most
    /// [`crate::conversation::RECEIPTS_UP_TO`] readers, and only when it moves this member's
    /// mark forward: otherwise nothing is sent and `None` is returned.
    pub async fn mark_read(&self, channel: &str, upto: &MessageId) -> Result<Option<MessageId>> {
        self.roster_soon().await;
        let channel = self.resolve(channel)?;
        // The org may turn read receipts off (governance): then none is sent.
        let small = self.roster.borrow().as_deref().is_some_and(|r| {
            Node::read_receipts_in(r, &channel)
                && r.roster.governance.read_receipts == crate::roster::ReadReceipts::On
                // Not where this member only reads an archived channel: a receipt is a
                // message there, which its readers would refuse. Where others post, it goes
                // as a reader's answer.
                && r.member_of_device(&self.device_id()).is_some_and(|m| {
                    r.roster.may_post(m, &channel) || r.roster.may_respond(m, &channel)
                })
        });
        let Some(at) = self.store.sent_at_of(upto)? else {
            return Err(Error::Invalid(format!("no message {upto} on this device")));
        };
        let me = self.my_name()?;
        let marked = self
            .store
            .read_marks(&channel)?
            .into_iter()
            .any(|(m, t)| m == me && t >= at);
        if !small || marked {
            return Ok(None);
        }
        let id = self.act(channel, Plain::Read { upto: *upto }).await?;
        Ok(Some(id))
    }

    /// Delivery of this device's messages in `channel` (or `@NAME`): each member whose
    /// device holds them, up to the `sent_at` of the newest it holds. Learned from that
    /// device's catch-up requests (they state what it holds), in every channel: it may
    /// name fewer members than hold them, never more (but for a modified client's claim).
    pub fn delivered_marks(&self, channel: &str) -> Result<Vec<(String, u64)>> {
        self.store.delivered_marks(&self.resolve(channel)?)
    }

    /// Whether read receipts are sent in `channel`: DMs, and channels with at most
    /// [`crate::conversation::RECEIPTS_UP_TO`] readers; never in a member's notes, where
    /// everything is the reader's own.
    fn read_receipts_in(head: &VerifiedRoster, channel: &str) -> bool {
        crate::roster::notes_of(channel).is_none()
            && (crate::roster::is_dm(channel)
                || head.roster.readers(channel).count() <= crate::conversation::RECEIPTS_UP_TO)
    }

    /// Read receipts of `channel` (or `@NAME`): each member that sent one and the time of
    /// the newest message it has read there.
    pub fn read_marks(&self, channel: &str) -> Result<Vec<(String, u64)>> {
        self.store.read_marks(&self.resolve(channel)?)
    }

    /// The thread of `root`: the message and its replies, oldest first.
    pub fn thread(&self, root: &MessageId) -> Result<Vec<StoredMessage>> {
        self.store.thread(root)
    }

    /// A message that can be acted on: held, readable, a message or a reply (not an act),
    /// not deleted.
    fn target(&self, id: &MessageId) -> Result<StoredMessage> {
        let m = self
            .store
            .message(id)?
            .ok_or_else(|| Error::Invalid(format!("no message {id} on this device")))?;
        if m.locked {
            return Err(Error::NotReady(
                "this device cannot read that message yet (its key has not arrived)".into(),
            ));
        }
        if !Act::is_message(m.act.as_ref()) {
            return Err(Error::Conflict(format!(
                "{id} is a reaction, edit, deletion or channel change, not a message"
            )));
        }
        if m.deleted {
            return Err(Error::Conflict(format!("message {id} was deleted")));
        }
        Ok(m)
    }

    fn my_name(&self) -> Result<String> {
        self.roster
            .borrow()
            .as_deref()
            .and_then(|r| r.member_of_device(&self.device))
            .map(|m| m.name.clone())
            .ok_or(Error::NotOnRoster)
    }

    /// Send `act` in `channel` without this client's checks, as a modified client would:
    /// for tests that show readers hold the rules themselves.
    #[doc(hidden)]
    pub async fn act_unchecked(&self, channel: &str, act: Plain) -> Result<MessageId> {
        self.act(channel.to_string(), act).await
    }

    /// Send `act` in `channel` as a reader's answer ([`crate::e2e::Content::Response`])
    /// whatever it is, as a modified client would: for tests that show readers take nothing
    /// but reactions and votes that way.
    #[doc(hidden)]
    pub async fn answer_unchecked(&self, channel: &str, act: Plain) -> Result<MessageId> {
        self.forced(channel, act, crate::e2e::ReaderTag::Answer)
            .await
    }

    /// Send `act` in `channel` as a reader's reply in a thread
    /// ([`crate::e2e::Content::ThreadReply`]) whatever it is, as a modified client would: for
    /// tests that show readers take nothing but replies in threads that way, and only where
    /// an admin let readers reply.
    #[doc(hidden)]
    pub async fn thread_reply_unchecked(&self, channel: &str, act: Plain) -> Result<MessageId> {
        self.forced(channel, act, crate::e2e::ReaderTag::ThreadReply)
            .await
    }

    async fn forced(
        &self,
        channel: &str,
        act: Plain,
        tag: crate::e2e::ReaderTag,
    ) -> Result<MessageId> {
        self.ask(|reply| Command::Act {
            channel: channel.to_string(),
            act,
            forced: Some(tag),
            reply,
        })
        .await?
    }

    async fn act(&self, channel: String, act: Plain) -> Result<MessageId> {
        self.ask(|reply| Command::Act {
            channel,
            act,
            forced: None,
            reply,
        })
        .await?
    }

    /// The last `limit` messages of `channel` (or `@NAME`: the direct messages with NAME),
    /// oldest first.
    pub fn history(&self, channel: &str, limit: usize) -> Result<Vec<StoredMessage>> {
        self.store.history(&self.readable(channel)?, limit)
    }

    /// [`Node::resolve`], refusing a channel this device's member may not read (see
    /// [`VerifiedRoster::readable_channel`]).
    pub fn readable(&self, target: &str) -> Result<String> {
        match self.roster.borrow().as_deref() {
            Some(r) => r.readable_channel(&self.device, target),
            None => self.resolve(target),
        }
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

    /// Up to `limit` messages of `channel` older than `before` (a message's
    /// `(sent_at, id)`; `None`: the newest), oldest first: a long history a page at a time.
    pub fn history_before(
        &self,
        channel: &str,
        before: Option<(u64, MessageId)>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        self.store
            .history_before(&self.readable(channel)?, before, limit)
    }

    /// Messages of `channel` sent after `after_ms` by others, counted up to `cap` (an unread
    /// badge). What this device's member wrote on another of its devices is not unread.
    pub fn unread(&self, channel: &str, after_ms: u64, cap: usize) -> Result<usize> {
        let me = self.my_name().ok();
        self.store
            .count_after(channel, after_ms, &self.device, me.as_deref(), cap)
    }

    /// Keep a front end's private state (drafts, read marks) sealed in the store, durably.
    pub fn save_private(&self, name: &str, value: &[u8]) -> Result<()> {
        self.store.set_private(name, value)?;
        self.store.flush()
    }

    /// What [`Node::save_private`] kept under `name`.
    pub fn load_private(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.store.get_private(name)
    }

    /// The message store itself, for tests and tools that inspect what a node holds. Front
    /// ends read through the methods above.
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
        self.change_roster_all(vec![change]).await
    }

    /// [`Node::change_roster`] with several changes in one version (a newcomer's device and
    /// full name at once): all of them, or none if one is refused.
    pub async fn change_roster_all(&self, changes: Vec<RosterChange>) -> Result<u64> {
        self.ask(|reply| Command::ChangeRoster { changes, reply })
            .await?
    }

    /// Apply the roster's retention rules and erasure requests now (a node also does it
    /// every [`SWEEP_EVERY`] and whenever they change), and say what went.
    pub async fn sweep(&self) -> Result<SweepReport> {
        self.ask(|reply| Command::Sweep { reply }).await?
    }

    /// Write an export (see [`crate::export`]) and record it in this device's signed
    /// action log. Runs off the event loop.
    pub async fn export(&self, spec: crate::export::Spec) -> Result<crate::export::Manifest> {
        let head = self
            .roster
            .borrow()
            .clone()
            .ok_or_else(|| Error::Invalid("no roster yet; nothing to export".into()))?;
        let mut spec = spec;
        if let crate::export::Scope::Channel(c) = &spec.scope {
            spec.scope = crate::export::Scope::Channel(head.resolve_channel(&self.device, c)?);
        }
        let member = crate::export::allowed(&head, &self.device, &spec.scope)?;
        let audit = self.audit().await?;
        let (store, blobs, s) = (self.store.clone(), self.blobs.clone(), spec.clone());
        let device = self.device.to_string();
        let manifest = tokio::task::spawn_blocking(move || {
            let by = crate::export::By {
                device,
                member: &member,
                names: &head.roster,
                statuses: crate::status::load(&store, Some(&head)).shown(&head, 0),
            };
            crate::export::export(&store, Some(&blobs), &audit, &by, &s)
        })
        .await
        .map_err(|e| Error::Invalid(format!("export task: {e}")))??;
        let detail = crate::export::action_detail(&spec, &manifest);
        self.ask(|reply| Command::Record {
            action: "export".into(),
            detail,
            reply,
        })
        .await??;
        Ok(manifest)
    }

    /// This device's signed action log (exports), each entry checked.
    pub fn actions(&self) -> Result<Vec<crate::store::LoggedAction>> {
        self.store.actions()
    }

    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>> {
        self.ask(|reply| Command::ListenAddrs { reply }).await
    }

    pub async fn stats(&self) -> Result<Stats> {
        self.ask(|reply| Command::Stats { reply }).await
    }

    /// What this node knows about its reachability; [`crate::diagnose::Report::findings`]
    /// says what looks wrong.
    pub async fn diagnose(&self) -> Result<crate::diagnose::Report> {
        self.ask(|reply| Command::Diagnose { reply }).await
    }

    /// Invite newcomers on this network until `until` (unix ms; at most a day ahead), or
    /// stop (`None`): this device's mDNS record then carries the org's id and name, so a
    /// device with no org yet lists the org ([`crate::discovery::invitations`]) and joins it
    /// without the id typed. Only an admin's device invites (the admin is who adds them),
    /// and only over mDNS.
    pub async fn invite(&self, until: Option<u64>) -> Result<()> {
        self.ask(|reply| Command::Invite { until, reply }).await?
    }

    pub async fn dial(&self, addr: Multiaddr) -> Result<()> {
        self.cmd
            .send(Command::Dial { addr })
            .await
            .map_err(|_| self.stopped_error())
    }

    /// Search every message this node can read (see [`crate::search`] for the query
    /// language): newest first or by relevance, at most `limit` hits, each with a snippet.
    pub async fn search(
        &self,
        query: &str,
        order: crate::search::Order,
        limit: usize,
    ) -> Result<Vec<crate::search::Hit>> {
        let (reply, rx) = oneshot::channel();
        self.search
            .send(search::Job::Query {
                text: query.to_string(),
                order,
                limit,
                reply,
            })
            .map_err(|_| Error::Invalid("search is not running".into()))?;
        rx.await
            .map_err(|_| Error::Invalid("search is not running".into()))?
    }

    /// The threads this member takes part in (they started one that has replies, replied
    /// in it, or were mentioned in it: by name or by a group of theirs, in its first message
    /// or a reply), the one with the latest reply first, at most `limit`: the "Threads"
    /// view. Found through the search index among the latest [`THREADS_LOOK_BACK`] messages
    /// this member wrote and as many that mention them, so a thread they last took part in
    /// long before that is not listed.
    pub async fn threads(&self, limit: usize) -> Result<Vec<crate::conversation::ThreadSummary>> {
        let me = self.my_name()?;
        let mut taking_part = Vec::new();
        for query in threads_queries(&me) {
            let hits = self
                .search(&query, crate::search::Order::Newest, THREADS_LOOK_BACK)
                .await?;
            taking_part.extend(hits.into_iter().map(|h| h.message));
        }
        self.store.threads_of(&taking_part, limit)
    }

    /// How many messages the search index holds and its size in memory.
    pub async fn search_stats(&self) -> Result<IndexStats> {
        let (reply, rx) = oneshot::channel();
        self.search
            .send(search::Job::Stats { reply })
            .map_err(|_| Error::Invalid("search is not running".into()))?;
        rx.await
            .map_err(|_| Error::Invalid("search is not running".into()))
    }

    /// Flush, say goodbye on mDNS and stop.
    pub async fn shutdown(&self) -> Result<()> {
        self.ask(|reply| Command::Shutdown { reply }).await
    }
}

/// Listening on `addr` failed with `e`: said with what it means ([`crate::diagnose::listen_reason`]).
fn listen_failed(addr: String, e: &dyn std::error::Error) -> Error {
    Error::Listen {
        addr,
        reason: crate::diagnose::listen_reason(&with_causes(e)),
    }
}

/// An error with its causes: libp2p's transport errors print nothing of their own (an
/// address not on this host read "cannot listen on …: ;"), the OS error is their source.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !c_text.is_empty() && !out.contains(&c_text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&c_text);
        }
        cause = c.source();
    }
    out
}

fn listen_list(addrs: &[Multiaddr]) -> String {
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::ipv6_companions;
    use libp2p::Multiaddr;

    fn m(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_wildcards_get_an_ipv6_twin_on_the_same_port() {
        let bound = [m("/ip4/10.0.0.2/tcp/40123")];
        assert_eq!(
            ipv6_companions(&[m("/ip4/0.0.0.0/tcp/0")], &bound),
            [m("/ip6/::/tcp/40123")]
        );
        assert_eq!(
            ipv6_companions(&[m("/ip4/0.0.0.0/tcp/7441")], &bound),
            [m("/ip6/::/tcp/7441")]
        );
        // A specific IPv4 address, or an IPv6 address given explicitly: nothing added.
        assert!(ipv6_companions(&[m("/ip4/127.0.0.1/tcp/0")], &bound).is_empty());
        assert!(ipv6_companions(
            &[m("/ip4/0.0.0.0/tcp/0"), m("/ip6/fd77::1/tcp/7441")],
            &bound
        )
        .is_empty());
    }
}
