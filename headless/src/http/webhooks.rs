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

use super::events::{ApiEvent, Events, Metrics};

pub const FILE: &str = "api-webhooks.json";
pub const DEAD_FILE: &str = "api-webhooks-dead.jsonl";
/// Attempts after the first, and the wait before each (seconds, scaled for tests).
const BACKOFF_SECS: [u64; 5] = [1, 5, 30, 120, 600];
/// Deliveries in flight at most; more go to the dead-letter list at once (a receiver that
/// is down must not make the node hold unbounded memory).
const MAX_IN_FLIGHT: usize = 1024;
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
    pub webhook: String,
    pub event: u64,
    pub message: String,
    pub attempts: u32,
    pub reason: String,
    pub at: u64,
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
}

impl Webhooks {
    pub fn new(dir: &Path) -> Webhooks {
        Webhooks {
            dir: dir.to_path_buf(),
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
        let mut all = self.dead()?;
        all.push(d.clone());
        let skip = all.len().saturating_sub(MAX_DEAD);
        let mut text = String::new();
        for d in &all[skip..] {
            text.push_str(&serde_json::to_string(d)?);
            text.push('\n');
        }
        super::write_private(&self.dir.join(DEAD_FILE), text.as_bytes())
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
        // A burst (a catch-up) the loop falls behind on is read back from the log, so no
        // delivery is skipped unless the log itself no longer keeps it.
        let Some(mut feed) = events.feed(None).await else {
            return;
        };
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
        // The webhooks with their opened secrets, and the file's mtime when read.
        type Opened = Vec<(Webhook, Vec<u8>)>;
        let mut cache: Option<(Option<SystemTime>, Opened)> = None;
        loop {
            let Some((id, ev)) = feed.next().await else {
                return;
            };
            // Messages, and messages gone (an erasure reaches the receiver too).
            let (channel_of_event, about) = match &*ev {
                ApiEvent::Message { message, .. } => {
                    (message.channel.clone(), message.id.to_string())
                }
                ApiEvent::Removed { channel, ids } => {
                    (channel.clone(), format!("{} removed", ids.len()))
                }
                ApiEvent::Gap { from } => {
                    metrics.webhook_failures.inc();
                    tracing::error!(
                        "webhooks fell behind further than the event log keeps: events {from} to {id} were not delivered; read the history for them"
                    );
                    continue;
                }
                _ => continue,
            };
            // Reread the file when it changed (add and remove work without a restart).
            let mtime = std::fs::metadata(dir_file(&hooks.dir))
                .and_then(|m| m.modified())
                .ok();
            if cache.as_ref().is_none_or(|(t, _)| *t != mtime) {
                let list = hooks.list().unwrap_or_else(|e| {
                    tracing::error!("webhooks unreadable: {e:#}");
                    Vec::new()
                });
                let opened = list
                    .into_iter()
                    .filter_map(|w| {
                        let secret = unhex(&w.secret).and_then(|s| sealer.open(&s));
                        if secret.is_none() {
                            tracing::error!(
                                "webhook {}: its secret does not open with this directory's key",
                                w.name
                            );
                        }
                        Some((w, secret?))
                    })
                    .collect();
                cache = Some((mtime, opened));
            }
            let Some((_, list)) = &cache else { continue };
            for (hook, secret) in list {
                let Ok(channel) = node.resolve(&hook.channel) else {
                    continue;
                };
                if channel != channel_of_event {
                    continue;
                }
                let body = match serde_json::to_vec(&*ev) {
                    Ok(b) => b,
                    Err(_) => continue,
                };
                let job = Delivery {
                    hook: hook.clone(),
                    secret: secret.clone(),
                    event: id,
                    message: about.clone(),
                    body,
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    metrics.webhook_failures.inc();
                    let _ = hooks.bury(
                        &job.dead(0, "too many deliveries waiting: the receiver is too slow"),
                    );
                    continue;
                };
                let (client, hooks, metrics) = (client.clone(), hooks.clone(), metrics.clone());
                tokio::spawn(async move {
                    job.run(&client, &hooks, &metrics, backoff_ms).await;
                    drop(slot);
                });
            }
        }
    });
}

fn dir_file(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

struct Delivery {
    hook: Webhook,
    secret: Vec<u8>,
    event: u64,
    message: String,
    body: Vec<u8>,
}

impl Delivery {
    async fn run(
        self,
        client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
        hooks: &Webhooks,
        metrics: &Metrics,
        backoff_ms: u64,
    ) {
        let mut last = String::new();
        for attempt in 0..=BACKOFF_SECS.len() {
            if attempt > 0 {
                let wait = BACKOFF_SECS[attempt - 1] * backoff_ms;
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            match self.attempt(client).await {
                Ok(()) => {
                    metrics.webhook_deliveries.inc();
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
            message: self.message.clone(),
            attempts,
            reason: reason.to_string(),
            at: majlis_core::now_ms(),
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
