//! Outgoing webhooks: every message of a channel POSTed to a URL, signed, retried, and set
//! aside in a dead-letter list when the receiver keeps failing. Messages removed from the
//! channel (retention, an erasure request) are POSTed too (`{"type":"removed",...}`), so a
//! receiver that keeps copies can honour an erasure.
//!
//! `majlisd api webhook add --name N --channel C --url URL` writes `api-webhooks.json`
//! (mode 0600). The signing secret in it is sealed with the data directory's key (the same
//! key that seals the store), so the file alone signs nothing. The node rereads the file when
//! it changes.
//!
//! Each delivery is `POST URL` with the event as JSON (`{"type":"message","message":{…}}`)
//! and the headers `X-Majlis-Webhook` (its id), `X-Majlis-Event-Id`, `X-Majlis-Timestamp`
//! (Unix seconds) and `X-Majlis-Signature: sha256=HEX`, the HMAC-SHA256 of
//! `TIMESTAMP.BODY` under the secret (the scheme of Stripe and Slack: the receiver checks
//! the signature and refuses old timestamps, so a captured request cannot be replayed
//! later). A 2xx answer is a delivery; anything else is retried after 1, 5, 30, 120 and
//! 600 s (times `MAJLIS_WEBHOOK_BACKOFF_MS`/1000, for tests); then the delivery goes to
//! `api-webhooks-dead.jsonl` (ids and reasons, never message text), which
//! `majlisd api webhook dead` lists.
//!
//! Deliveries not yet made are kept in `api-webhooks-queue.jsonl` (ids, never message
//! text; see [`Queue`]): a node restarted (an upgrade, a crash, a reboot) while a receiver
//! was down or slow sends them again, with their first event ids, from the store. Delivery
//! is at least once: a receiver drops an `X-Majlis-Event-Id` it has already handled. The
//! queue file also keeps how far each author's messages were queued for each webhook
//! ([`marks`]): what the node holds and never queued (it was killed between the two writes,
//! or its events were lost) is found in the author logs and sent.
//!
//! Each webhook has its own line of deliveries ([`Lanes`]) and at most [`REQUESTS`] requests
//! at once ([`Gate`]): a burst (a catch-up of thousands of messages) reaches a small
//! receiver about in order and at a pace it can take, and a receiver that is down or slow
//! holds only its own deliveries back, never another webhook's. When a receiver takes a
//! delivery again after failing, its deliveries waiting to be retried go at once (a second
//! apart at least) instead of at their next scheduled retry, up to 10 minutes later.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use std::collections::{HashMap, VecDeque};

use tokio::sync::mpsc;

use super::events::{ApiEvent, Events, Metrics, Shared};

mod marks;
use marks::{Held, MarkLine, Marks};

pub const FILE: &str = "api-webhooks.json";
pub const DEAD_FILE: &str = "api-webhooks-dead.jsonl";
pub const QUEUE_FILE: &str = "api-webhooks-queue.jsonl";
/// Where `api webhook redeliver` leaves its requests, one file each (written whole, then
/// renamed in: the node never reads half of one).
pub const REDELIVER_DIR: &str = "api-webhooks-redeliver";
/// Attempts after the first, and the wait before each (seconds, scaled for tests).
const BACKOFF_SECS: [u64; 5] = [1, 5, 30, 120, 600];
/// Deliveries underway at most (attempted, or waiting to be retried), all webhooks
/// together; more wait their turn in the queue file. Each holds its event in memory.
const MAX_IN_FLIGHT: usize = 4096;
/// Deliveries of one webhook underway at most. Until session 68 all webhooks shared 1 024,
/// and one receiver down held every one of them through the 12 minutes of its retries: the
/// other webhooks waited that long.
const PER_HOOK: usize = 256;
/// Requests to one webhook's receiver at once. A single-threaded receiver with a short
/// listen backlog (Python's `http.server` keeps 5) took a burst of 1 024 at once as refused
/// connections and 10 s timeouts: a catch-up of 30 000 messages reached it in minutes,
/// retried, some twice.
const REQUESTS: usize = 16;
/// Deliveries of one webhook waiting at most; more go to the dead-letter list at once (a
/// receiver down for long under a busy channel must not grow the queue without end).
const MAX_WAITING: usize = 100_000;
/// Lines in the queue file before it is rewritten with only what waits.
const COMPACT_AFTER: usize = 4096;
/// Log entries of one author read at most by one walk (the next walk goes on from there).
const WALK: usize = 100_000;
/// Redelivery ticks (2 s) between walks of the author logs.
const WALK_EVERY: u32 = 15;
/// The dead-letter list keeps this many entries.
const MAX_DEAD: usize = 1000;
const AAD: &[u8] = b"majlis api webhook secret v1";

/// One outgoing webhook as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub name: String,
    /// The channel whose messages are sent (as the CLI names it: `general`, `@amina,bilal`).
    pub channel: String,
    pub url: String,
    pub created_at: u64,
    /// The signing secret, sealed with the data key (hex).
    secret: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct WebhookFile {
    webhooks: Vec<Webhook>,
}

/// A delivery that gave up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dead {
    /// The webhook's name.
    pub webhook: String,
    pub event: u64,
    /// The message's id, or how many messages a removal named.
    pub message: String,
    pub attempts: u32,
    pub reason: String,
    pub at: u64,
    /// The webhook's id, and what the event was about: what `api webhook redeliver` needs
    /// (absent in entries written before it existed, which cannot be sent again).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hook: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    what: Option<About>,
}

/// A request to send failed deliveries again, left by `api webhook redeliver` in
/// [`REDELIVER_DIR`] for the running node (or its next start).
#[derive(Debug, Serialize, Deserialize)]
struct Redeliver {
    /// The webhook's id.
    hook: String,
    /// These events only; all of the webhook's when absent.
    events: Option<Vec<u64>>,
}

/// Seals and opens secrets: the data key, or nothing for a directory that is not sealed.
#[derive(Clone)]
pub struct Sealer(Option<Arc<majlis_core::seal::DataKey>>);

impl Sealer {
    /// The data key of `dir`, unlocked as `how` says.
    pub fn for_dir(dir: &Path, how: &majlis_core::seal::Unlock) -> Result<Sealer> {
        Ok(Sealer(match majlis_core::seal::sealing_of(dir)? {
            Some(s) => Some(Arc::new(majlis_core::seal::open(dir, s, how)?)),
            None => None,
        }))
    }

    fn seal(&self, secret: &[u8]) -> Vec<u8> {
        match &self.0 {
            Some(k) => k.seal(AAD, secret),
            None => secret.to_vec(),
        }
    }

    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        match &self.0 {
            Some(k) => k.open(AAD, sealed).ok(),
            None => Some(sealed.to_vec()),
        }
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    s.len()
        .is_multiple_of(2)
        .then(|| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten()
}

/// The webhook file of one data directory.
pub struct Webhooks {
    dir: PathBuf,
    /// Held while the dead-letter list is read and written again (deliveries give up on
    /// tasks of their own; two at once each kept the list as it was before the other).
    dead_lock: std::sync::Mutex<()>,
}

impl Webhooks {
    pub fn new(dir: &Path) -> Webhooks {
        Webhooks {
            dir: dir.to_path_buf(),
            dead_lock: std::sync::Mutex::new(()),
        }
    }

    pub fn list(&self) -> Result<Vec<Webhook>> {
        Ok(self.read()?.webhooks)
    }

    /// Add a webhook; returns it and its signing secret (shown once).
    pub fn add(
        &self,
        sealer: &Sealer,
        name: &str,
        channel: &str,
        url: &str,
    ) -> Result<(Webhook, String)> {
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            bail!("a webhook name is 1 to 64 printable characters");
        }
        let uri: hyper::Uri = url.parse().with_context(|| format!("{url} is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => bail!("https is not built in: point the webhook at a local http:// receiver (or a TLS proxy on this host)"),
            _ => bail!("{url}: give an http:// URL"),
        }
        let mut file = self.read()?;
        if file.webhooks.iter().any(|w| w.name == name) {
            bail!("a webhook named {name:?} exists; remove it first or pick another name");
        }
        let mut secret = [0u8; 32];
        let mut id = [0u8; 4];
        getrandom::getrandom(&mut secret).context("no randomness from the OS")?;
        getrandom::getrandom(&mut id).context("no randomness from the OS")?;
        let secret = hex(&secret);
        let hook = Webhook {
            id: hex(&id),
            name: name.to_string(),
            channel: channel.to_string(),
            url: url.to_string(),
            created_at: majlis_core::now_ms(),
            secret: hex(&sealer.seal(secret.as_bytes())),
        };
        file.webhooks.push(hook.clone());
        self.write(&file)?;
        Ok((hook, secret))
    }

    pub fn remove(&self, name_or_id: &str) -> Result<Webhook> {
        let mut file = self.read()?;
        let Some(i) = file
            .webhooks
            .iter()
            .position(|w| w.name == name_or_id || w.id == name_or_id)
        else {
            bail!("no webhook named {name_or_id:?}; `majlisd api webhook list` shows them");
        };
        let gone = file.webhooks.remove(i);
        self.write(&file)?;
        Ok(gone)
    }

    /// The dead-letter list, oldest first.
    pub fn dead(&self) -> Result<Vec<Dead>> {
        match std::fs::read_to_string(self.dir.join(DEAD_FILE)) {
            Ok(t) => Ok(t
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e).context("reading the dead-letter list"),
        }
    }

    fn bury(&self, d: &Dead) -> Result<()> {
        let _held = self.dead_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = self.dead()?;
        all.push(d.clone());
        self.write_dead(&all)
    }

    fn write_dead(&self, all: &[Dead]) -> Result<()> {
        let skip = all.len().saturating_sub(MAX_DEAD);
        super::write_private(&self.dir.join(DEAD_FILE), &jsonl(&all[skip..]))
    }

    /// Ask the node to send again the failed deliveries of webhook `name_or_id` (only
    /// `events`, if given); returns how many there are. A running node takes the request
    /// within seconds, a stopped one at its next start.
    pub fn redeliver(&self, name_or_id: &str, events: &[u64]) -> Result<usize> {
        let Some(hook) = self
            .list()?
            .into_iter()
            .find(|w| w.name == name_or_id || w.id == name_or_id)
        else {
            bail!("no webhook named {name_or_id:?}; `majlisd api webhook list` shows them");
        };
        let n = self
            .dead()?
            .iter()
            .filter(|d| d.hook == hook.id && d.what.is_some())
            .filter(|d| events.is_empty() || events.contains(&d.event))
            .count();
        if n == 0 {
            bail!(
                "no failed deliveries of webhook {:?} to send again (`majlisd api webhook dead` lists them)",
                hook.name
            );
        }
        let dir = self.dir.join(REDELIVER_DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut r = [0u8; 8];
        getrandom::getrandom(&mut r).context("no randomness from the OS")?;
        let request = Redeliver {
            hook: hook.id,
            events: (!events.is_empty()).then(|| events.to_vec()),
        };
        super::write_private(
            &dir.join(format!("{}.json", hex(&r))),
            &serde_json::to_vec(&request)?,
        )?;
        Ok(n)
    }

    /// The requests `redeliver` left: the failed deliveries they name, taken off the
    /// dead-letter list (the requests are removed).
    fn take_redeliveries(&self) -> Vec<(String, u64, About)> {
        let dir = self.dir.join(REDELIVER_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut asked = Vec::new();
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                match std::fs::read(&p).map(|b| serde_json::from_slice::<Redeliver>(&b)) {
                    Ok(Ok(r)) => asked.push(r),
                    _ => tracing::warn!("{}: not a redelivery request; removed", p.display()),
                }
                let _ = std::fs::remove_file(&p);
            }
        }
        if asked.is_empty() {
            return Vec::new();
        }
        let _held = self.dead_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(all) = self.dead() else {
            return Vec::new();
        };
        let wanted = |d: &Dead| {
            d.what.is_some()
                && asked.iter().any(|r| {
                    r.hook == d.hook && r.events.as_ref().is_none_or(|e| e.contains(&d.event))
                })
        };
        let (again, kept): (Vec<Dead>, Vec<Dead>) = all.into_iter().partition(wanted);
        if let Err(e) = self.write_dead(&kept) {
            tracing::error!("webhooks: cannot write the dead-letter list: {e:#}; not sent again");
            return Vec::new();
        }
        again
            .into_iter()
            .filter_map(|d| Some((d.hook, d.event, d.what?)))
            .collect()
    }

    fn read(&self) -> Result<WebhookFile> {
        let p = self.dir.join(FILE);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("{} is not a webhook file", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(WebhookFile::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    fn write(&self, file: &WebhookFile) -> Result<()> {
        super::write_private(&self.dir.join(FILE), &serde_json::to_vec_pretty(file)?)
    }
}

/// `items` as JSON lines, the form of the queue and dead-letter files (each line stands alone,
/// so a crash can cut short only the last).
fn jsonl<T: Serialize>(items: impl IntoIterator<Item = T>) -> Vec<u8> {
    let mut text = Vec::new();
    for item in items {
        // Ids, numbers and strings: nothing here fails to serialize.
        let _ = serde_json::to_writer(&mut text, &item);
        text.push(b'\n');
    }
    text
}

/// The signature header's value for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

/// Deliver every message event to the webhooks of its channel, for as long as the node runs.
pub fn start(
    dir: &Path,
    sealer: Sealer,
    events: Events,
    metrics: Arc<Metrics>,
    node: majlis_core::Node,
) {
    let hooks = Arc::new(Webhooks::new(dir));
    let backoff_ms: u64 = std::env::var("MAJLIS_WEBHOOK_BACKOFF_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    tokio::spawn(async move {
        // From the run's first event, however late this task subscribes (a catch-up at
        // start comes before it). A burst the reader falls behind on is read back from the
        // log, so no delivery is skipped unless the log itself no longer keeps it.
        let Some(mut feed) = events.feed(Some(events.first.saturating_sub(1))).await else {
            return;
        };
        // Read by a task of its own: the loop below also waits for deliveries to end, and
        // a read of the feed cut short there could drop what it was reading back.
        let (tx, mut rx) = mpsc::channel::<(u64, Shared)>(1024);
        tokio::spawn(async move {
            while let Some(ev) = feed.next().await {
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        });
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let mut opened = Opened::new(hooks.clone(), sealer);
        let mut queue = Queue::open(&hooks.dir);
        // What waits for a slot: the queue file's leftovers first (their events are read
        // again from the store), then new events (kept in memory while few wait).
        let mut lanes = Lanes::default();
        for q in queue.pending.values() {
            lanes.push(q.clone(), None);
        }
        if lanes.waiting > 0 {
            tracing::info!(
                "webhooks: {} deliveries left from the last run, sending them again",
                lanes.waiting
            );
        }
        // Deliveries found in the author logs take event ids counting down from the run's
        // first: ids of earlier runs are lower by a thousand a millisecond of their start.
        let mut found_ids = events.first.saturating_sub(1);
        // What a walk found, by the tick it was found at: its event, if it comes after
        // all, is not queued again. Only these: a message queued before and lost in a
        // crash (the receiver may show one before its write is durable) comes again by
        // catch-up, and its new event must send it.
        let mut walked: HashMap<(String, (String, u64)), u32> = HashMap::new();
        // The first tick, at once, walks the logs whole: what the last run held and never
        // queued (the node stopped between the two).
        let (mut ticks, mut behind) = (0u32, true);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(u64, String)>();
        let mut gates: HashMap<String, Arc<Gate>> = HashMap::new();
        // Requests of `api webhook redeliver`, looked for every 2 s (and at once).
        let mut redeliveries = tokio::time::interval(Duration::from_secs(2));
        loop {
            while let Some((q, ev)) = lanes.next() {
                let Some(job) = prepare(&q, ev, opened.list(), &node) else {
                    // Its webhook was removed, or its message is gone (the removal is
                    // delivered as an event of its own).
                    lanes.done(&q.hook);
                    queue.done(&[q.q]);
                    continue;
                };
                let gate = gates.entry(q.hook.clone()).or_default().clone();
                let (client, hooks, metrics, done) = (
                    client.clone(),
                    hooks.clone(),
                    metrics.clone(),
                    done_tx.clone(),
                );
                tokio::spawn(async move {
                    job.run(&client, &hooks, &metrics, &gate, backoff_ms).await;
                    let _ = done.send((q.q, q.hook));
                });
            }
            tokio::select! {
                _ = redeliveries.tick() => {
                    let again = hooks.take_redeliveries();
                    if !again.is_empty() {
                        tracing::info!("webhooks: sending {} failed deliveries again, as asked", again.len());
                    }
                    for q in queue.add(again) {
                        lanes.push(q, None);
                    }
                    // New webhooks are marked at once; the logs are walked now and then,
                    // and at once after the event log was overrun.
                    ticks = ticks.wrapping_add(1);
                    let whole = std::mem::take(&mut behind) || ticks % WALK_EVERY == 0;
                    let found = walk(&mut queue, opened.list(), &node, &mut found_ids, whole);
                    if !found.is_empty() {
                        tracing::warn!("webhooks: {} messages held here were never queued (the node stopped between the two, or events were missed), sending them", found.len());
                    }
                    // An event later than two walks is not waited for.
                    walked.retain(|_, at| ticks.wrapping_sub(*at) <= 2 * WALK_EVERY);
                    for q in found {
                        walked.extend(q.from.clone().map(|f| ((q.hook.clone(), f), ticks)));
                        lanes.push(q, None);
                    }
                    for q in removals(&mut queue, opened.list(), &node, &mut found_ids) {
                        lanes.push(q, None);
                    }
                    // Gates of webhooks with nothing underway are made again when needed.
                    gates.retain(|hook, _| lanes.held(hook) > 0);
                }
                Some(first) = done_rx.recv() => {
                    let mut ended = Vec::new();
                    let mut next = Some(first);
                    while let Some((q, hook)) = next {
                        lanes.done(&hook);
                        ended.push(q);
                        next = done_rx.try_recv().ok();
                    }
                    queue.done(&ended);
                }
                ev = rx.recv() => {
                    let Some(ev) = ev else { return };
                    let mut batch = vec![ev];
                    while batch.len() < 256 {
                        match rx.try_recv() {
                            Ok(ev) => batch.push(ev),
                            Err(_) => break,
                        }
                    }
                    let mut new = Vec::new();
                    let mut removed = false;
                    for (id, ev) in batch {
                        behind |= matches!(&*ev, ApiEvent::Gap { .. });
                        removed |= matches!(&*ev, ApiEvent::Removed { .. });
                        let matched = matching(&ev, id, opened.list(), &node, &metrics);
                        let from = match &*ev {
                            ApiEvent::Message { message, .. } if !matched.is_empty() => {
                                origin(&node, message)
                            }
                            _ => None,
                        };
                        for (hook, about) in matched {
                            if let Some((channel, _, _)) = &from {
                                if !queue.marks.knows(&hook) {
                                    if let Ok(heads) = node.store().heads(channel) {
                                        queue.start_marks(&hook, &heads);
                                    }
                                }
                            }
                            let from = from.as_ref().map(|(_, a, s)| (hex(&a.0), *s));
                            // Found in the author's log first (a walk ran ahead of it).
                            if let Some(f) = &from {
                                if walked.remove(&(hook.clone(), f.clone())).is_some() {
                                    continue;
                                }
                            }
                            new.push((hook, id, about, ev.clone(), from));
                        }
                    }
                    // A receiver down for long under a busy channel: beyond this many,
                    // deliveries are set aside at once rather than held.
                    let mut held: HashMap<String, usize> = HashMap::new();
                    let (new, over): (Vec<_>, Vec<_>) = new.into_iter().partition(|n| {
                        let h = held.entry(n.0.clone()).or_insert_with(|| lanes.held(&n.0));
                        *h += 1;
                        *h <= MAX_WAITING
                    });
                    // Counted as given, so that no walk sends them again.
                    let set_aside = queue.add_from(over.iter().map(|(h, e, a, _, f)| (h.clone(), *e, a.clone(), f.clone())));
                    queue.done(&set_aside.iter().map(|q| q.q).collect::<Vec<_>>());
                    for (hook, event, about, _, _) in over {
                        metrics.webhook_failures.inc();
                        let _ = hooks.bury(&Dead {
                            webhook: opened.name_of(&hook),
                            event,
                            message: about.to_string(),
                            attempts: 0,
                            reason: format!("more than {MAX_WAITING} deliveries waiting: the receiver is too slow or down"),
                            at: majlis_core::now_ms(),
                            hook,
                            what: Some(about),
                        });
                    }
                    // Removals are read from the store's journal, where a crash cannot
                    // have lost them; the event only says to read it now.
                    if removed {
                        for q in removals(&mut queue, opened.list(), &node, &mut found_ids) {
                            lanes.push(q, None);
                        }
                    }
                    let evs: Vec<Shared> = new.iter().map(|n| n.3.clone()).collect();
                    let queued = queue.add_from(new.into_iter().map(|(h, e, a, _, f)| (h, e, a, f)));
                    for (q, ev) in queued.into_iter().zip(evs) {
                        let keep = lanes.waiting < MAX_IN_FLIGHT;
                        lanes.push(q, keep.then_some(ev));
                    }
                }
            }
        }
    });
}

/// Deliveries waiting for a slot, a line per webhook, taken in turn: at most [`PER_HOOK`]
/// of a webhook and [`MAX_IN_FLIGHT`] of all underway. A delivery keeps its slot through
/// its retries, so a receiver that is down fills only its own line.
#[derive(Default)]
struct Lanes {
    /// Each webhook's deliveries not yet started, oldest first (an event kept in memory
    /// while few wait, else read again from the store).
    lines: HashMap<String, VecDeque<(Queued, Option<Shared>)>>,
    /// Each webhook's deliveries underway (attempted, or waiting to be retried).
    busy: HashMap<String, usize>,
    /// The webhooks with deliveries waiting, in the order they are served next.
    turn: VecDeque<String>,
    /// Deliveries waiting, all webhooks together.
    waiting: usize,
    in_flight: usize,
}

impl Lanes {
    fn push(&mut self, q: Queued, ev: Option<Shared>) {
        let line = self.lines.entry(q.hook.clone()).or_default();
        if line.is_empty() {
            self.turn.push_back(q.hook.clone());
        }
        line.push_back((q, ev));
        self.waiting += 1;
    }

    /// The next delivery that may start, its webhook's turn passing to the next one.
    fn next(&mut self) -> Option<(Queued, Option<Shared>)> {
        if self.in_flight >= MAX_IN_FLIGHT {
            return None;
        }
        for _ in 0..self.turn.len() {
            let hook = self.turn.pop_front()?;
            let busy = self.busy.entry(hook.clone()).or_default();
            if *busy >= PER_HOOK {
                self.turn.push_back(hook);
                continue;
            }
            let line = self.lines.get_mut(&hook)?;
            let next = line.pop_front()?;
            if line.is_empty() {
                self.lines.remove(&hook);
            } else {
                self.turn.push_back(hook);
            }
            *busy += 1;
            self.in_flight += 1;
            self.waiting -= 1;
            return Some(next);
        }
        None
    }

    /// A delivery of `hook` ended (made, given up, or not to be made).
    fn done(&mut self, hook: &str) {
        if let Some(b) = self.busy.get_mut(hook) {
            *b = b.saturating_sub(1);
            if *b == 0 {
                self.busy.remove(hook);
            }
        }
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// `hook`'s deliveries not yet made: waiting and underway.
    fn held(&self, hook: &str) -> usize {
        self.lines.get(hook).map_or(0, VecDeque::len) + self.busy.get(hook).copied().unwrap_or(0)
    }
}

/// The webhooks with their opened secrets, read again when the file changes (add and
/// remove work without a restart).
struct Opened {
    hooks: Arc<Webhooks>,
    sealer: Sealer,
    mtime: Option<Option<SystemTime>>,
    list: Vec<(Webhook, Vec<u8>)>,
}

impl Opened {
    fn new(hooks: Arc<Webhooks>, sealer: Sealer) -> Opened {
        Opened {
            hooks,
            sealer,
            mtime: None,
            list: Vec::new(),
        }
    }

    fn list(&mut self) -> &[(Webhook, Vec<u8>)] {
        let mtime = std::fs::metadata(self.hooks.dir.join(FILE))
            .and_then(|m| m.modified())
            .ok();
        if self.mtime != Some(mtime) {
            let list = self.hooks.list().unwrap_or_else(|e| {
                tracing::error!("webhooks unreadable: {e:#}");
                Vec::new()
            });
            self.list = list
                .into_iter()
                .filter_map(|w| {
                    let secret = unhex(&w.secret).and_then(|s| self.sealer.open(&s));
                    if secret.is_none() {
                        tracing::error!(
                            "webhook {}: its secret does not open with this directory's key",
                            w.name
                        );
                    }
                    Some((w, secret?))
                })
                .collect();
            self.mtime = Some(mtime);
        }
        &self.list
    }

    fn name_of(&mut self, id: &str) -> String {
        self.list()
            .iter()
            .find(|(w, _)| w.id == id)
            .map_or_else(|| id.to_string(), |(w, _)| w.name.clone())
    }
}

/// The webhooks (their ids) that message event `ev` goes to, with what it is about.
/// (Messages gone are read from the store's journal of removals: [`removals`].)
fn matching(
    ev: &ApiEvent,
    id: u64,
    hooks: &[(Webhook, Vec<u8>)],
    node: &majlis_core::Node,
    metrics: &Metrics,
) -> Vec<(String, About)> {
    let (channel, about) = match ev {
        ApiEvent::Message { message, .. } => (
            message.channel.as_str(),
            About::Message(message.id.to_string()),
        ),
        ApiEvent::Gap { from } => {
            metrics.webhook_failures.inc();
            tracing::error!(
                "webhooks fell behind further than the event log keeps: events {from} to {id} were not delivered; read the history for them"
            );
            return Vec::new();
        }
        _ => return Vec::new(),
    };
    hooks
        .iter()
        .filter(|(hook, _)| node.resolve(&hook.channel).is_ok_and(|c| c == channel))
        .map(|(hook, _)| (hook.id.clone(), about.clone()))
        .collect()
}

/// The channel, author and seq of a message, read from the store (an event does not
/// carry the seq).
fn origin(
    node: &majlis_core::Node,
    m: &majlis_core::StoredMessage,
) -> Option<(String, majlis_core::DeviceId, u64)> {
    let wire = node.store().message_wire(&m.id).ok()??;
    let env = majlis_core::Envelope::decode_unverified(&wire).ok()?;
    Some((m.channel.clone(), env.unsigned.author, env.unsigned.seq))
}

/// Walk the author logs of each webhook's channel above its marks and queue what is held
/// there and was never queued (see [`marks`]); a webhook seen for the first time is only
/// marked (what its channel holds then is history). `whole`: walk every webhook, else only
/// mark new ones. `ids`: the event ids of what is found, counting down.
fn walk(
    queue: &mut Queue,
    hooks: &[(Webhook, Vec<u8>)],
    node: &majlis_core::Node,
    ids: &mut u64,
    whole: bool,
) -> Vec<Queued> {
    let store = node.store();
    let mut found = Vec::new();
    for (hook, _) in hooks {
        let known = queue.marks.knows(&hook.id);
        if known && !whole {
            continue;
        }
        let Ok(channel) = node.resolve(&hook.channel) else {
            continue;
        };
        let heads = match store.heads(&channel) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!("webhook {}: reading {channel}'s logs: {e}", hook.name);
                continue;
            }
        };
        if !known {
            queue.start_marks(&hook.id, &heads);
            continue;
        }
        for (author, (c, max)) in &heads {
            let mark = queue.marks.mark(&hook.id, author);
            let log = match store.log_ids(&channel, author, mark.from(), *max, WALK) {
                Ok(log) => log,
                Err(e) => {
                    tracing::warn!("webhook {}: reading {channel}'s logs: {e}", hook.name);
                    continue;
                }
            };
            let walked: Vec<(u64, Held)> = log
                .iter()
                .map(|(seq, id)| {
                    let held = match mark.has(*seq) {
                        true => Held::Queued,
                        false => match store.message(id) {
                            Ok(None) => Held::Gone,
                            Ok(Some(m)) if !m.locked => Held::New,
                            // Its key has not come, or the store did not answer: later.
                            _ => Held::Locked,
                        },
                    };
                    (*seq, held)
                })
                .collect();
            mark.settle(*c, &walked, log.len() < WALK);
            for ((seq, id), (_, held)) in log.iter().zip(&walked) {
                if *held == Held::New {
                    let from = Some((hex(&author.0), *seq));
                    found.push((hook.id.clone(), *ids, About::Message(id.to_string()), from));
                    *ids = ids.saturating_sub(1);
                }
            }
        }
    }
    if whole {
        let keep: Vec<&str> = hooks.iter().map(|(h, _)| h.id.as_str()).collect();
        queue.marks.keep_only(&keep);
        queue.removals.retain(|h, _| keep.contains(&h.as_str()));
    }
    queue.add_from(found)
}

/// Queue the removals the store's journal holds past each webhook's place in it (see
/// [`majlis_core::store::Removal`]), for the webhooks of their channels; what was removed
/// before a webhook was made is history, even if its place was never written. The places
/// are written to the queue file with the deliveries, so a removal is sent at least once,
/// after a crash too.
fn removals(
    queue: &mut Queue,
    hooks: &[(Webhook, Vec<u8>)],
    node: &majlis_core::Node,
    ids: &mut u64,
) -> Vec<Queued> {
    const READ: usize = 64;
    let store = node.store();
    let mut found = Vec::new();
    let mut places = HashMap::new();
    for (hook, _) in hooks {
        // A channel that no longer resolves is read as "", no channel's name: nothing
        // matches, and the place still moves on.
        let channel = node.resolve(&hook.channel).unwrap_or_default();
        let mut at = queue.removals.get(&hook.id).copied().unwrap_or(0);
        loop {
            let (read, next) = match store.removals_of(&channel, at, READ) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("webhooks: reading the removals: {e}");
                    break;
                }
            };
            for r in read.iter().filter(|r| r.at >= hook.created_at) {
                let gone = r.ids().map(|id| id.to_string()).collect();
                found.push((hook.id.clone(), *ids, About::Removed(gone)));
                *ids = ids.saturating_sub(1);
            }
            at = next;
            if read.len() < READ {
                break;
            }
        }
        places.insert(hook.id.clone(), at);
    }
    queue.add_removals(found, places)
}

/// The delivery of `q`: its webhook and its event (read again from the store when not
/// kept). `None`: the webhook was removed, or the message is gone.
fn prepare(
    q: &Queued,
    ev: Option<Shared>,
    hooks: &[(Webhook, Vec<u8>)],
    node: &majlis_core::Node,
) -> Option<Delivery> {
    let (hook, secret) = hooks.iter().find(|(w, _)| w.id == q.hook)?;
    let ev = match ev {
        Some(ev) => ev,
        None => Shared::new(match &q.what {
            About::Message(id) => {
                let id: majlis_core::MessageId = id.parse().ok()?;
                match node.store().message(&id) {
                    Ok(Some(m)) if !m.locked => ApiEvent::message(node, Box::new(m)),
                    _ => return None,
                }
            }
            About::Removed(ids) => ApiEvent::Removed {
                channel: node.resolve(&hook.channel).ok()?,
                ids: ids.clone(),
            },
        }),
    };
    Some(Delivery {
        hook: hook.clone(),
        secret: secret.clone(),
        event: q.event,
        what: q.what.clone(),
        body: serde_json::to_vec(&*ev).ok()?,
    })
}

/// What a queued delivery is about: ids, never what a message says (the queue file is
/// not sealed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum About {
    /// A message (its id).
    Message(String),
    /// Messages removed from the webhook's channel.
    Removed(Vec<String>),
}

impl std::fmt::Display for About {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            About::Message(id) => f.write_str(id),
            About::Removed(ids) => write!(f, "{} removed", ids.len()),
        }
    }
}

/// A delivery not yet made, as the queue file keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Queued {
    /// Its number in the queue file.
    q: u64,
    /// The webhook's id.
    hook: String,
    /// The API event's id: `X-Majlis-Event-Id`, the same on every attempt, after a restart
    /// too, so that a receiver recognises a delivery it already has.
    event: u64,
    what: About,
    /// The message's author (hex) and seq: what the webhook's marks count as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<(String, u64)>,
}

/// A line of the queue file.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Queued(Queued),
    Done(u64),
    /// What a webhook was given of an author's log, as of the last rewrite (the queued
    /// lines after it add to it).
    Marks(MarkLine),
    /// Up to where a webhook was given the store's removals (a position in its journal).
    Removals {
        hook: String,
        upto: u64,
    },
}

/// The queue file (`api-webhooks-queue.jsonl`): the deliveries not yet made or given up,
/// so that a restart (an upgrade, a crash, a reboot) resends them instead of losing them.
/// A delivery is appended (and synced) before its first attempt and marked done after its
/// last; the file is rewritten with only what waits when done lines pile up. A `done` line
/// is not synced: one lost in a crash makes one delivery again, which the receiver
/// recognises by its event id (delivery is at least once).
struct Queue {
    path: PathBuf,
    /// Where lines are appended; `None` while the disk refuses (deliveries then go on from
    /// memory only, and the error is logged).
    file: Option<std::fs::File>,
    pending: std::collections::BTreeMap<u64, Queued>,
    /// What each webhook was given of its channel's author logs.
    marks: Marks,
    /// Up to where each webhook was given the store's removals.
    removals: HashMap<String, u64>,
    next: u64,
    /// Lines in the file.
    lines: usize,
    /// Mark lines written by the last rewrite.
    lines_marked: usize,
    /// Whether the disk refused last time (said once, not at every delivery).
    failing: bool,
}

impl Queue {
    /// The queue of `dir`, with what an earlier run left waiting. Unreadable lines (the
    /// last one cut short by a crash) are skipped, and the file is rewritten without them.
    fn open(dir: &Path) -> Queue {
        let path = dir.join(QUEUE_FILE);
        let mut pending = std::collections::BTreeMap::new();
        let mut marks = Marks::default();
        let mut removals = HashMap::new();
        let mut bad = 0;
        let mut exists = true;
        match std::fs::read(&path) {
            Ok(bytes) => {
                for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    match serde_json::from_slice::<Line>(line) {
                        Ok(Line::Queued(q)) => {
                            note(&mut marks, &q);
                            pending.insert(q.q, q);
                        }
                        Ok(Line::Done(q)) => {
                            pending.remove(&q);
                        }
                        Ok(Line::Marks(m)) => marks.load(m),
                        Ok(Line::Removals { hook, upto }) => {
                            let at = removals.entry(hook).or_insert(upto);
                            *at = upto.max(*at);
                        }
                        Err(_) => bad += 1,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => exists = false,
            Err(e) => tracing::error!("{}: {e}; earlier deliveries not resent", path.display()),
        }
        if bad > 0 {
            tracing::warn!(
                "{}: {bad} unreadable line(s) skipped (a crash cut one short, or the file was edited)",
                path.display()
            );
        }
        let next = pending.keys().next_back().map_or(0, |q| q + 1);
        let mut queue = Queue {
            path,
            file: None,
            pending,
            marks,
            removals,
            next,
            lines: 0,
            lines_marked: 0,
            failing: false,
        };
        // Created at the first delivery (a node with no webhooks has no queue file).
        if exists {
            queue.compact();
        }
        queue
    }

    /// Rewrite the file with the marks and what waits, and append to it from then on.
    fn compact(&mut self) {
        let marks = self.marks.lines();
        let lines = marks.len() + self.removals.len() + self.pending.len();
        let removals = self.removals.iter().map(|(hook, upto)| Line::Removals {
            hook: hook.clone(),
            upto: *upto,
        });
        let text = jsonl(
            marks
                .into_iter()
                .map(Line::Marks)
                .chain(removals)
                .chain(self.pending.values().cloned().map(Line::Queued)),
        );
        let opened = super::write_private(&self.path, &text)
            .and_then(|()| Ok(std::fs::OpenOptions::new().append(true).open(&self.path)?));
        match opened {
            Ok(f) => {
                if std::mem::take(&mut self.failing) {
                    tracing::info!("{}: written again", self.path.display());
                }
                self.file = Some(f);
                self.lines = lines;
                self.lines_marked = lines - self.pending.len();
            }
            Err(e) => self.refused(&format!("{e:#}")),
        }
    }

    fn refused(&mut self, e: &str) {
        if !std::mem::replace(&mut self.failing, true) {
            tracing::error!(
                "{}: {e}; webhook deliveries go on, but a restart now loses those not made",
                self.path.display()
            );
        }
        self.file = None;
    }

    /// Queue deliveries (webhook id, event id, about); on disk when this returns, unless
    /// the disk refuses (logged).
    fn add(&mut self, items: impl IntoIterator<Item = (String, u64, About)>) -> Vec<Queued> {
        self.add_from(items.into_iter().map(|(h, e, a)| (h, e, a, None)))
    }

    /// [`Queue::add`], with each message's author and seq (counted in the marks).
    fn add_from(
        &mut self,
        items: impl IntoIterator<Item = (String, u64, About, Option<(String, u64)>)>,
    ) -> Vec<Queued> {
        let queued = self.numbered(items);
        if queued.is_empty() {
            return queued;
        }
        for q in &queued {
            note(&mut self.marks, q);
        }
        let lines: Vec<Line> = queued.iter().cloned().map(Line::Queued).collect();
        self.pending.extend(queued.iter().map(|q| (q.q, q.clone())));
        self.append(&lines, true);
        queued
    }

    /// Number new deliveries in the queue (not yet written).
    fn numbered(
        &mut self,
        items: impl IntoIterator<Item = (String, u64, About, Option<(String, u64)>)>,
    ) -> Vec<Queued> {
        items
            .into_iter()
            .map(|(hook, event, what, from)| {
                self.next += 1;
                Queued {
                    q: self.next - 1,
                    hook,
                    event,
                    what,
                    from,
                }
            })
            .collect()
    }

    /// Queue removal deliveries (webhook id, event id, about) and move webhooks' places in
    /// the store's journal of removals, in one synced write.
    fn add_removals(
        &mut self,
        items: Vec<(String, u64, About)>,
        moved: HashMap<String, u64>,
    ) -> Vec<Queued> {
        let queued = self.numbered(items.into_iter().map(|(h, e, a)| (h, e, a, None)));
        let mut lines: Vec<Line> = queued.iter().cloned().map(Line::Queued).collect();
        for (hook, upto) in moved {
            if self.removals.insert(hook.clone(), upto) != Some(upto) {
                lines.push(Line::Removals { hook, upto });
            }
        }
        self.pending.extend(queued.iter().map(|q| (q.q, q.clone())));
        if !lines.is_empty() {
            self.append(&lines, true);
        }
        queued
    }

    /// `hook` seen for the first time: what its channel holds now (`heads`) is history.
    fn start_marks(&mut self, hook: &str, heads: &majlis_core::sync::Heads) {
        let lines: Vec<Line> = self
            .marks
            .start(hook, heads)
            .into_iter()
            .map(Line::Marks)
            .collect();
        self.append(&lines, true);
    }

    /// These deliveries were made or given up.
    fn done(&mut self, qs: &[u64]) {
        for q in qs {
            self.pending.remove(q);
        }
        let lines: Vec<Line> = qs.iter().copied().map(Line::Done).collect();
        self.append(&lines, false);
        // Marks are rewritten whole each time: counted apart, or many authors would make
        // every call rewrite the file.
        let marks = self.lines_marked;
        if self.lines > marks + COMPACT_AFTER && self.lines > marks + 4 * self.pending.len() {
            self.compact();
        }
    }

    fn append(&mut self, lines: &[Line], sync: bool) {
        use std::io::Write;
        if self.file.is_none() {
            // Not created yet, or the disk refused before: (re)write the whole queue.
            return self.compact();
        }
        let text = jsonl(lines);
        let Some(f) = &mut self.file else { return };
        let written = f
            .write_all(&text)
            .and_then(|()| if sync { f.sync_data() } else { Ok(()) });
        match written {
            Ok(()) => self.lines += lines.len(),
            // A line may be cut short: rewrite the file whole next time.
            Err(e) => self.refused(&e.to_string()),
        }
    }
}

/// Count a queued delivery in its webhook's marks.
fn note(marks: &mut Marks, q: &Queued) {
    let Some((author, seq)) = &q.from else { return };
    if let Some(a) = unhex(author).and_then(|a| <[u8; 32]>::try_from(a).ok()) {
        marks.mark(&q.hook, &majlis_core::DeviceId(a)).note(*seq);
    }
}

/// What the deliveries of one webhook share: the right to make a request (at most
/// [`REQUESTS`] at once), and word that its receiver has just taken one.
struct Gate {
    requests: tokio::sync::Semaphore,
    took_one: tokio::sync::Notify,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate {
            requests: tokio::sync::Semaphore::new(REQUESTS),
            took_one: tokio::sync::Notify::new(),
        }
    }
}

struct Delivery {
    hook: Webhook,
    secret: Vec<u8>,
    event: u64,
    what: About,
    body: Vec<u8>,
}

impl Delivery {
    async fn run(
        self,
        client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
        hooks: &Webhooks,
        metrics: &Metrics,
        gate: &Gate,
        backoff_ms: u64,
    ) {
        let mut last = String::new();
        for attempt in 0..=BACKOFF_SECS.len() {
            if attempt > 0 {
                let wait = Duration::from_millis(BACKOFF_SECS[attempt - 1] * backoff_ms);
                // The receiver took another delivery meanwhile: it is back, so this one goes
                // now (a first retry's wait after its failure at least, so that a receiver
                // refusing only some deliveries is not asked again and again).
                let back = async {
                    gate.took_one.notified().await;
                    tokio::time::sleep(Duration::from_millis(BACKOFF_SECS[0] * backoff_ms)).await;
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = back => {}
                }
            }
            let result = {
                let Ok(_turn) = gate.requests.acquire().await else {
                    return;
                };
                self.attempt(client).await
            };
            match result {
                Ok(()) => {
                    metrics.webhook_deliveries.inc();
                    gate.took_one.notify_waiters();
                    return;
                }
                Err(e) => {
                    metrics.webhook_failures.inc();
                    tracing::info!("webhook {} attempt {}: {e}", self.hook.name, attempt + 1);
                    last = e;
                }
            }
        }
        if let Err(e) = hooks.bury(&self.dead(BACKOFF_SECS.len() as u32 + 1, &last)) {
            tracing::error!(
                "webhook {}: cannot write the dead-letter list: {e:#}",
                self.hook.name
            );
        }
    }

    async fn attempt(
        &self,
        client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    ) -> std::result::Result<(), String> {
        let ts = majlis_core::now_ms() / 1000;
        let req = hyper::Request::post(&self.hook.url)
            .header("content-type", "application/json")
            .header("user-agent", concat!("majlisd/", env!("CARGO_PKG_VERSION")))
            .header("x-majlis-webhook", &self.hook.id)
            .header("x-majlis-event-id", self.event.to_string())
            .header("x-majlis-timestamp", ts.to_string())
            .header("x-majlis-signature", sign(&self.secret, ts, &self.body))
            .body(Full::new(Bytes::from(self.body.clone())))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
            .await
            .map_err(|_| "no answer within 10 s".to_string())?
            .map_err(|e| format!("cannot reach {}: {e}", self.hook.url))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    }

    fn dead(&self, attempts: u32, reason: &str) -> Dead {
        Dead {
            webhook: self.hook.name.clone(),
            event: self.event,
            message: self.what.to_string(),
            attempts,
            reason: reason.to_string(),
            at: majlis_core::now_ms(),
            hook: self.hook.id.clone(),
            what: Some(self.what.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 style check against an independent computation of the same construction.
        let sig = sign(b"key", 1700000000, b"{}");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(sig, format!("sha256={}", hex(&mac.finalize().into_bytes())));
        assert_ne!(
            sign(b"key", 1700000001, b"{}"),
            sig,
            "the timestamp is signed"
        );
    }

    fn msg(id: &str) -> About {
        About::Message(id.to_string())
    }

    #[test]
    fn each_webhook_takes_its_turn_and_at_most_its_share_of_slots() {
        let mut lanes = Lanes::default();
        let queued = |q: u64, hook: &str| Queued {
            q,
            hook: hook.into(),
            event: q,
            what: msg("m"),
            from: None,
        };
        // A burst for the ticketing receiver, queued before two for the archive.
        let burst = PER_HOOK as u64 + 4;
        for q in 0..burst {
            lanes.push(queued(q, "ticketing"), None);
        }
        lanes.push(queued(burst, "archive"), None);
        lanes.push(queued(burst + 1, "archive"), None);
        let started: Vec<u64> = std::iter::from_fn(|| lanes.next())
            .map(|(q, _)| q.q)
            .collect();
        // Turns alternate while both wait; the archive's come second and fourth, not after
        // the whole burst; the ticketing receiver gets PER_HOOK underway and no more.
        assert_eq!(&started[..4], &[0, burst, 1, burst + 1]);
        assert_eq!(started.len(), PER_HOOK + 2);
        assert_eq!(
            (lanes.held("ticketing"), lanes.held("archive")),
            (burst as usize, 2)
        );
        lanes.done("archive");
        assert!(lanes.next().is_none(), "the archive has nothing waiting");
        lanes.done("ticketing");
        assert_eq!(lanes.next().map(|(q, _)| q.q), Some(PER_HOOK as u64));
        assert_eq!(lanes.waiting, 3);
    }

    #[test]
    fn what_each_webhook_was_given_is_kept_across_restarts_and_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let a = majlis_core::DeviceId([3; 32]);
        let from = |seq| Some((hex(&a.0), seq));
        let mut q = Queue::open(dir.path());
        q.start_marks("h1", &majlis_core::sync::Heads::from([(a, (2, 2))]));
        let d = q.add_from([
            ("h1".to_string(), 1, msg("aa"), from(3)),
            ("h1".to_string(), 2, msg("bb"), from(5)),
        ]);
        q.done(&[d[0].q]);
        let removed = q.add_removals(
            vec![("h1".to_string(), 3, About::Removed(vec!["cc".into()]))],
            HashMap::from([("h1".to_string(), 7), ("h2".to_string(), 4)]),
        );
        let given = |q: &Queue| {
            (1..=6)
                .filter(|s| q.marks.has("h1", &a, *s))
                .collect::<Vec<_>>()
        };
        // 1 and 2: history when the webhook was first seen.
        assert_eq!(given(&q), vec![1, 2, 3, 5]);
        drop(q);
        // Read back from the lines, then from the rewrite made at open.
        for _ in 0..2 {
            let q = Queue::open(dir.path());
            assert_eq!(given(&q), vec![1, 2, 3, 5]);
            assert!(q.marks.knows("h1"));
            // The removal queued, and where each webhook is in the store's journal.
            assert_eq!(q.pending.get(&removed[0].q), Some(&removed[0]));
            assert_eq!(
                q.removals,
                HashMap::from([("h1".to_string(), 7), ("h2".to_string(), 4)])
            );
        }
    }

    #[test]
    fn the_queue_keeps_what_was_not_delivered_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path());
        assert!(
            !dir.path().join(QUEUE_FILE).exists(),
            "no file before a first delivery"
        );
        let a = q.add([
            ("h1".to_string(), 7, msg("aa")),
            ("h2".to_string(), 7, msg("aa")),
        ]);
        let b = q.add([(
            "h1".to_string(),
            8,
            About::Removed(vec!["bb".into(), "cc".into()]),
        )]);
        q.done(&[a[0].q]);
        drop(q);
        let q = Queue::open(dir.path());
        assert_eq!(
            q.pending.values().cloned().collect::<Vec<_>>(),
            vec![a[1].clone(), b[0].clone()],
            "the two not done, in order"
        );
        // Numbers go on after the last one kept: a done line never names a new delivery.
        let mut q = q;
        let c = q.add([("h1".to_string(), 9, msg("dd"))]);
        assert!(c[0].q > b[0].q);
        q.done(&[a[1].q, b[0].q, c[0].q]);
        drop(q);
        assert!(Queue::open(dir.path()).pending.is_empty());
    }

    #[test]
    fn a_line_cut_short_by_a_crash_loses_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path());
        let a = q.add([("h1".to_string(), 1, msg("aa"))]);
        drop(q);
        // A crash in the middle of appending the next line, then bytes that are no JSON.
        let path = dir.path().join(QUEUE_FILE);
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"{\"queued\":{\"q\":1,\"hook\":\"h1\",\"ev");
        text.extend_from_slice(b"\n\xff\xfe\n");
        std::fs::write(&path, text).unwrap();
        let mut q = Queue::open(dir.path());
        assert_eq!(q.pending.values().cloned().collect::<Vec<_>>(), a);
        // The file was rewritten without the broken lines: what follows is readable.
        let b = q.add([("h1".to_string(), 2, msg("bb"))]);
        drop(q);
        let q = Queue::open(dir.path());
        assert_eq!(q.pending.len(), 2);
        assert!(q.pending.contains_key(&b[0].q));
    }

    /// A queue file that cannot be written (here: a directory stands in its place, as
    /// root ignores permissions) leaves deliveries going from memory; once it can be written
    /// again, it holds everything that waits.
    #[test]
    fn deliveries_go_on_while_the_queue_file_cannot_be_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(QUEUE_FILE);
        std::fs::create_dir(&path).unwrap();
        let mut q = Queue::open(dir.path());
        let a = q.add([("h1".to_string(), 1, msg("aa"))]);
        let b = q.add([("h1".to_string(), 2, msg("bb"))]);
        assert_eq!((a.len(), b.len(), q.pending.len()), (1, 1, 2));
        assert!(q.failing && q.file.is_none());
        std::fs::remove_dir(&path).unwrap();
        q.add([("h1".to_string(), 3, msg("cc"))]);
        assert!(!q.failing);
        drop(q);
        assert_eq!(Queue::open(dir.path()).pending.len(), 3);
    }

    #[test]
    fn the_queue_file_is_rewritten_once_done_lines_pile_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path());
        let keep = q.add([("h1".to_string(), 0, msg("kept"))]);
        for i in 1..3000u64 {
            let d = q.add([("h1".to_string(), i, msg("aa"))]);
            q.done(&[d[0].q]);
        }
        let lines = std::fs::read_to_string(dir.path().join(QUEUE_FILE))
            .unwrap()
            .lines()
            .count();
        assert!(lines < COMPACT_AFTER + 2, "{lines} lines for one waiting");
        drop(q);
        let q = Queue::open(dir.path());
        assert_eq!(q.pending.values().cloned().collect::<Vec<_>>(), keep);
        // Rewritten at open: only the one waiting.
        let text = std::fs::read_to_string(dir.path().join(QUEUE_FILE)).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn deliveries_giving_up_at_once_are_all_listed() {
        let dir = tempfile::tempdir().unwrap();
        let w = Arc::new(Webhooks::new(dir.path()));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..40 {
                        let d = Dead {
                            webhook: "crm".into(),
                            event: t * 100 + i,
                            message: "m".into(),
                            attempts: 6,
                            reason: "500".into(),
                            at: 0,
                            hook: "h".into(),
                            what: Some(msg("m")),
                        };
                        w.bury(&d).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(w.dead().unwrap().len(), 320);
    }

    #[test]
    fn secrets_are_sealed_and_bad_urls_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = Sealer(Some(Arc::new(majlis_core::seal::DataKey::generate())));
        let w = Webhooks::new(dir.path());
        let (hook, secret) = w
            .add(&key, "ci", "general", "http://127.0.0.1:9/x")
            .unwrap();
        let stored = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(!stored.contains(&secret), "the secret is sealed on disk");
        assert_eq!(
            key.open(&unhex(&hook.secret).unwrap()).unwrap(),
            secret.as_bytes()
        );
        for bad in ["https://x/y", "ftp://x", "not a url"] {
            assert!(w.add(&key, "b", "general", bad).is_err(), "{bad}");
        }
        assert!(
            w.add(&key, "ci", "general", "http://x/").is_err(),
            "names are unique"
        );
        w.remove("ci").unwrap();
        assert!(w.list().unwrap().is_empty());
    }
}
