//! The API's event stream and metrics, fed by the node's events.
//!
//! One task owns a numbered log of the last [`KEEP`] API events. A client of
//! `GET /v1/events` subscribes through a channel to that task and gets, in one answer, the
//! events after the id it last saw (SSE `Last-Event-ID`, or `?after=`) and a receiver for the
//! ones after those: nothing is lost or repeated between the two. A client that was away
//! longer than the log reaches gets a `gap` event first (read the history to fill it).

use std::collections::VecDeque;

use majlis_core::{Event, Node, StoredMessage};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Events kept for clients that resume.
pub const KEEP: usize = 4096;

/// What the stream carries (SSE `event:` is the `type`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ApiEvent {
    /// A message that may be shown (ours once on disk, a peer's once verified).
    Message {
        #[schema(value_type = super::ApiMessage)]
        message: Box<StoredMessage>,
        /// The author's full name, as an admin set it; absent when they have none.
        #[serde(skip_serializing_if = "Option::is_none")]
        sender_name: Option<String>,
    },
    /// The roster changed.
    Roster { version: u64 },
    /// A device of the org connected.
    PeerConnected { device: String, name: String },
    /// A device of the org disconnected.
    PeerDisconnected { device: String },
    /// A device of the org came on the network or left it: connected to this node, or to
    /// one this node is connected to (in an org above the mesh limit a node connects only
    /// to some devices; this is what "online" means).
    Presence { device: String, online: bool },
    /// These messages are gone from this node: retention expired them, an erasure request
    /// removed them, or they were this device's own, refused by its colleagues as a fork
    /// and sent again as new messages. A client that keeps copies drops them.
    Removed { channel: String, ids: Vec<String> },
    /// A member's device now holds more of this node's own messages in `channel`: their
    /// `delivered_to` grew (read the history or the message again).
    Delivered { channel: String },
    /// A member set their status, changed it, or cleared it (`text` empty).
    Status {
        member: String,
        text: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
    },
    /// Events between the client's last id and this one were dropped from the log: read
    /// the history to fill the gap.
    Gap { from: u64 },
}

impl ApiEvent {
    /// `message` with its author's full name under the roster `node` holds now.
    pub(super) fn message(node: &Node, message: Box<StoredMessage>) -> ApiEvent {
        let sender_name = node
            .roster_now()
            .and_then(|r| r.roster.full_name(&message.sender).map(str::to_string));
        ApiEvent::Message {
            message,
            sender_name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ApiEvent::Message { .. } => "message",
            ApiEvent::Roster { .. } => "roster",
            ApiEvent::PeerConnected { .. } => "peer_connected",
            ApiEvent::PeerDisconnected { .. } => "peer_disconnected",
            ApiEvent::Presence { .. } => "presence",
            ApiEvent::Removed { .. } => "removed",
            ApiEvent::Delivered { .. } => "delivered",
            ApiEvent::Status { .. } => "status",
            ApiEvent::Gap { .. } => "gap",
        }
    }
}

/// An event as the log keeps it: one copy, however many clients hold it (a message may
/// be large, and a client that reads slowly holds what it has not read yet).
pub type Shared = std::sync::Arc<ApiEvent>;

/// A subscription: events after the asked id, then live ones.
pub struct Subscription {
    pub backlog: Vec<(u64, Shared)>,
    pub live: broadcast::Receiver<(u64, Shared)>,
    /// The id of the last event before `live`'s first (the backlog's last, if any).
    pub last: u64,
}

type Subscribe = (Option<u64>, oneshot::Sender<Subscription>);

/// Handle to the event task.
#[derive(Clone)]
pub struct Events {
    subscribe: mpsc::Sender<Subscribe>,
    /// The id of the first event of this run: a reader that must see every event (the
    /// webhooks) starts after `first - 1`, whenever its task gets to subscribing.
    pub first: u64,
}

impl Events {
    /// Subscribe from after `after` (`None`: only new events).
    pub async fn subscribe(&self, after: Option<u64>) -> Option<Subscription> {
        let (tx, rx) = oneshot::channel();
        self.subscribe.send((after, tx)).await.ok()?;
        rx.await.ok()
    }

    /// The events after `after` (`None`: only new ones), one at a time, in order.
    pub async fn feed(&self, after: Option<u64>) -> Option<Feed> {
        let sub = self.subscribe(after).await?;
        Some(Feed {
            events: self.clone(),
            backlog: sub.backlog.into(),
            live: sub.live,
            last: sub.last,
        })
    }
}

/// A reader of the log that does not lose what it falls behind on: the live channel holds
/// fewer events than the log keeps, so a reader that lags (a slow client, a burst of a
/// catch-up) takes what it missed from the log, and only what the log no longer keeps
/// comes as a `gap`.
pub struct Feed {
    events: Events,
    backlog: VecDeque<(u64, Shared)>,
    live: broadcast::Receiver<(u64, Shared)>,
    last: u64,
}

impl Feed {
    /// The next event with its id, or `None` once the node stops. A `gap` has the id of
    /// the last event it stands before.
    pub async fn next(&mut self) -> Option<(u64, Shared)> {
        loop {
            if let Some((id, ev)) = self.backlog.pop_front() {
                self.last = self.last.max(id);
                return Some((id, ev));
            }
            match self.live.recv().await {
                Ok((id, ev)) => {
                    self.last = id;
                    return Some((id, ev));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let sub = self.events.subscribe(Some(self.last)).await?;
                    self.backlog = sub.backlog.into();
                    self.live = sub.live;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    pub member: String,
    pub device: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: u16,
}

/// The Prometheus metrics (`GET /metrics`).
#[derive(Default)]
pub struct Metrics {
    /// Set at each scrape from the node (connections made before the API started count).
    pub peers: Gauge,
    pub roster_version: Gauge,
    pub messages_in: Counter,
    pub messages_out: Counter,
    pub rejected: Family<KindLabel, Counter>,
    pub http: Family<StatusLabel, Counter>,
    pub stream_clients: Gauge,
    pub webhook_deliveries: Counter,
    pub webhook_failures: Counter,
    /// Set at each scrape.
    pub store_bytes: Gauge,
    pub records: Gauge,
    pub index_bytes: Gauge,
    pub indexed: Gauge,
    /// Per roster device that asked to catch up: messages it still lacked after our answer.
    pub peer_lag: Family<PeerLabel, Gauge>,
    /// Per roster device: its messages that arrived in the last minute (a flood shows here).
    pub device_pace: Family<PeerLabel, Gauge>,
    /// Per roster device: bytes its messages brought to this disk in the last minute, with
    /// the shared files this node fetched for them.
    pub device_bytes: Family<PeerLabel, Gauge>,
    /// Free bytes on the data directory's disk (-1: not measurable).
    pub disk_free: Gauge,
}

impl Metrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "majlis_peers_connected",
            "Devices of the org connected now",
            self.peers.clone(),
        );
        r.register(
            "majlis_roster_version",
            "The roster version this node holds",
            self.roster_version.clone(),
        );
        r.register(
            "majlis_messages_received",
            "Messages from other devices, verified and stored",
            self.messages_in.clone(),
        );
        r.register(
            "majlis_messages_sent",
            "Messages this device wrote",
            self.messages_out.clone(),
        );
        r.register(
            "majlis_rejected",
            "Input from the network refused, by reason",
            self.rejected.clone(),
        );
        r.register(
            "majlis_http_requests",
            "HTTP API requests answered, by status",
            self.http.clone(),
        );
        r.register(
            "majlis_webhook_deliveries",
            "Webhook POSTs the receiver accepted",
            self.webhook_deliveries.clone(),
        );
        r.register(
            "majlis_webhook_failures",
            "Webhook attempts that failed (each retry counts)",
            self.webhook_failures.clone(),
        );
        r.register(
            "majlis_store_bytes",
            "Bytes the database takes on disk",
            self.store_bytes.clone(),
        );
        r.register(
            "majlis_records",
            "Message records held (every channel, key grants included)",
            self.records.clone(),
        );
        r.register(
            "majlis_search_index_bytes",
            "Bytes of the search index (in memory; rebuilt from the store at each start)",
            self.index_bytes.clone(),
        );
        r.register(
            "majlis_search_indexed",
            "Messages the search index holds",
            self.indexed.clone(),
        );
        r.register(
            "majlis_peer_sync_lag",
            "Messages this node holds that the device still lacked after its last catch-up",
            self.peer_lag.clone(),
        );
        r.register(
            "majlis_device_messages_last_minute",
            "Messages of the device that arrived in the last minute as they were written (by gossip, or caught up on within minutes)",
            self.device_pace.clone(),
        );
        r.register(
            "majlis_device_bytes_last_minute",
            "Bytes the device's messages brought to this disk in the last minute, shared files this node fetched included (counted as for majlis_device_messages_last_minute)",
            self.device_bytes.clone(),
        );
        r.register(
            "majlis_disk_free_bytes",
            "Free bytes on the data directory's disk; below MAJLIS_MIN_FREE_MB nothing new is stored (-1: not measurable)",
            self.disk_free.clone(),
        );
        r.register(
            "majlis_event_stream_clients",
            "Clients on the event stream now",
            self.stream_clients.clone(),
        );
    }
}

/// The numbered log and the live channel after it.
struct Log {
    entries: VecDeque<(u64, Shared)>,
    next_id: u64,
    live: broadcast::Sender<(u64, Shared)>,
}

impl Log {
    fn new() -> Log {
        Log {
            entries: VecDeque::with_capacity(KEEP),
            // Ids grow across restarts too (they start from the clock), so a client resuming
            // with an id from an earlier run gets a `gap`, not a silent skip.
            next_id: majlis_core::now_ms().saturating_mul(1000),
            live: broadcast::channel(1024).0,
        }
    }

    fn push(&mut self, ev: ApiEvent) {
        let id = self.next_id;
        self.next_id += 1;
        if self.entries.len() == KEEP {
            self.entries.pop_front();
        }
        let ev = Shared::new(ev);
        self.entries.push_back((id, ev.clone()));
        let _ = self.live.send((id, ev));
    }

    /// What a client that last saw `after` gets: the kept events after it (a `gap` first if
    /// some are no longer kept), then live ones.
    fn subscribe(&self, after: Option<u64>) -> Subscription {
        let oldest = self.entries.front().map_or(self.next_id, |(id, _)| *id);
        let mut backlog = Vec::new();
        if let Some(after) = after {
            // `after` is the client's: any number, u64::MAX included.
            if after.saturating_add(1) < oldest {
                backlog.push((oldest - 1, Shared::new(ApiEvent::Gap { from: after + 1 })));
            }
            backlog.extend(self.entries.iter().filter(|(id, _)| *id > after).cloned());
        }
        Subscription {
            backlog,
            live: self.live.subscribe(),
            last: self.next_id - 1,
        }
    }
}

/// Start the event task for `node`; it ends when the node's event stream does.
pub fn start(node: &Node, metrics: std::sync::Arc<Metrics>) -> Events {
    let (tx, mut rx) = mpsc::channel::<Subscribe>(64);
    let mut node_events = node.subscribe();
    let me = node.device_id();
    let node = node.clone();
    if let Some(r) = node.roster_now() {
        metrics.roster_version.set(r.version() as i64);
    }
    let mut log = Log::new();
    let first = log.next_id;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                sub = rx.recv() => {
                    let Some((after, reply)) = sub else { return };
                    let _ = reply.send(log.subscribe(after));
                }
                ev = node_events.recv() => {
                    let ev = match ev {
                        Ok(ev) => ev,
                        // Never silently: a client that reads this knows to read the
                        // history (the node's events came faster than this task took them).
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!("API event stream lagged by {n} node events");
                            log.push(ApiEvent::Gap { from: log.next_id });
                            continue;
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    };
                    let api = match ev {
                        // An integration gets a message once it can be read, never the
                        // "encrypted" placeholder: the node says when one opens.
                        Event::Message(m) if m.locked => continue,
                        Event::Unlocked(m) => ApiEvent::message(&node, m),
                        Event::Message(m) => {
                            if m.device == me {
                                metrics.messages_out.inc();
                            } else {
                                metrics.messages_in.inc();
                            }
                            ApiEvent::message(&node, m)
                        }
                        Event::RosterChanged { version } => {
                            metrics.roster_version.set(version as i64);
                            ApiEvent::Roster { version }
                        }
                        Event::PeerConnected { device, name } => {
                            ApiEvent::PeerConnected { device: device.to_string(), name }
                        }
                        Event::PeerDisconnected { device } => {
                            ApiEvent::PeerDisconnected { device: device.to_string() }
                        }
                        Event::Presence { device, online } => {
                            ApiEvent::Presence { device: device.to_string(), online }
                        }
                        Event::Swept { ids, channels, .. } => {
                            // One event per channel, so that a client (a webhook) of one
                            // channel hears only of its own.
                            let mut by_channel: std::collections::BTreeMap<&str, Vec<String>> =
                                Default::default();
                            for (id, ch) in ids.iter().zip(channels.iter()) {
                                by_channel.entry(ch).or_default().push(id.to_string());
                            }
                            for (channel, ids) in by_channel {
                                log.push(ApiEvent::Removed { channel: channel.to_string(), ids });
                            }
                            continue;
                        }
                        Event::Delivered { channel } => ApiEvent::Delivered { channel },
                        Event::Status(st) => ApiEvent::Status {
                            member: st.member,
                            text: st.text,
                            until: st.until,
                        },
                        Event::Rejected { kind, .. } => {
                            metrics.rejected.get_or_create(&KindLabel { kind }).inc();
                            continue;
                        }
                        _ => continue,
                    };
                    log.push(api);
                }
            }
        }
    });
    Events {
        subscribe: tx,
        first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the test does to the log: push an event, or wait until all before are in it.
    enum Cmd {
        Push(ApiEvent),
        Barrier(oneshot::Sender<()>),
    }

    /// A log served as [`start`] serves it, fed by the test instead of a node.
    fn served() -> (Events, mpsc::UnboundedSender<Cmd>) {
        let (subscribe, mut asked) = mpsc::channel::<Subscribe>(8);
        let (push, mut pushed) = mpsc::unbounded_channel();
        let mut log = Log::new();
        let first = log.next_id;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(cmd) = pushed.recv() => match cmd {
                        Cmd::Push(ev) => log.push(ev),
                        Cmd::Barrier(done) => { let _ = done.send(()); }
                    },
                    Some((after, reply)) = asked.recv() => {
                        let _ = reply.send(log.subscribe(after));
                    }
                    else => return,
                }
            }
        });
        (Events { subscribe, first }, push)
    }

    /// Push roster events `versions`, and return once the log holds them all.
    async fn push(log: &mpsc::UnboundedSender<Cmd>, versions: std::ops::Range<u64>) {
        for version in versions {
            log.send(Cmd::Push(ApiEvent::Roster { version })).unwrap();
        }
        let (done, pushed) = oneshot::channel();
        log.send(Cmd::Barrier(done)).unwrap();
        pushed.await.unwrap();
    }

    fn version(ev: &ApiEvent) -> Option<u64> {
        match ev {
            ApiEvent::Roster { version } => Some(*version),
            _ => None,
        }
    }

    async fn read(feed: &mut Feed, n: usize) -> Vec<(u64, Shared)> {
        let mut got = Vec::new();
        while got.len() < n {
            let next = tokio::time::timeout(std::time::Duration::from_secs(10), feed.next());
            got.push(next.await.expect("an event").expect("the log is served"));
        }
        got
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_misses_nothing_the_log_keeps() {
        let (events, log) = served();
        let mut feed = events.feed(None).await.unwrap();
        // Three times what the live channel holds, while the reader reads nothing.
        push(&log, 0..3000).await;
        let got = read(&mut feed, 3000).await;
        let versions: Vec<_> = got.iter().filter_map(|(_, ev)| version(ev)).collect();
        assert_eq!(
            versions,
            (0..3000).collect::<Vec<_>>(),
            "each once, in order"
        );
        assert!(got.windows(2).all(|w| w[1].0 == w[0].0 + 1), "ids in a row");
        // And live ones after it, as before.
        push(&log, 3000..3001).await;
        let (id, ev) = read(&mut feed, 1).await.remove(0);
        assert_eq!((id, version(&ev)), (got[2999].0 + 1, Some(3000)));
    }

    #[tokio::test]
    async fn what_the_log_no_longer_keeps_is_a_gap_then_the_rest_follows() {
        let (events, log) = served();
        let mut feed = events.feed(None).await.unwrap();
        let first = feed.last + 1;
        let n = KEEP as u64 + 2000;
        push(&log, 0..n).await;
        let got = read(&mut feed, KEEP + 1).await;
        match &*got[0].1 {
            ApiEvent::Gap { from } => assert_eq!(*from, first),
            other => panic!("a gap first, not {other:?}"),
        }
        let versions: Vec<_> = got[1..].iter().filter_map(|(_, ev)| version(ev)).collect();
        assert_eq!(versions, (2000..n).collect::<Vec<_>>());
        assert_eq!(
            got[0].0 + 1,
            got[1].0,
            "the gap stands right before what is kept"
        );
    }

    #[tokio::test]
    async fn a_resume_id_from_anywhere_is_taken_calmly() {
        let (events, log) = served();
        push(&log, 1..2).await;
        for after in [u64::MAX, u64::MAX - 1, 0] {
            let sub = events
                .subscribe(Some(after))
                .await
                .expect("the task lives on");
            let gap = matches!(
                sub.backlog.first().map(|(_, ev)| &**ev),
                Some(ApiEvent::Gap { .. })
            );
            assert_eq!(gap, after == 0, "after {after}");
        }
    }
}
