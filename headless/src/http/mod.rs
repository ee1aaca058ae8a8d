//! The local HTTP API of `majlisd run --http ADDR` (docs/api.md): versioned JSON under
//! `/v1/`, per-integration bearer tokens with scopes ([`tokens`]), Server-Sent Events
//! ([`events`]), Prometheus metrics at `/metrics` and the OpenAPI document at
//! `/openapi.json`, generated from these handlers by utoipa.
//!
//! The API acts as this node's device: it reads what the device may read and posts where
//! its member may post; the roster decides, exactly as for the app and the CLI. It is a thin
//! edge over [`Node`]: every handler checks the token, calls the node, maps the answer.
//! axum because it is tokio's own HTTP framework (the node already runs on tokio), utoipa
//! because it derives the OpenAPI document from the handlers, so the two cannot drift.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use majlis_core::{MessageId, Node};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

pub mod events;
pub mod gate;
pub mod tokens;
pub mod webhooks;

use events::{ApiEvent, Events, Metrics, StatusLabel};
use tokens::{Scope, Tokens};

/// Request bodies larger than this are refused (413) before they are read: a message is at
/// most 32 KiB of text.
pub const MAX_BODY: usize = 64 * 1024;
/// The private folder in the data directory uploads pass through on their way into the blob
/// store (plaintext for a moment); `majlisd run` empties it at every start, with or without
/// `--http`, so nothing a crash left there outlives the next start.
pub const UPLOADS: &str = "api-uploads";
/// At most this many messages or hits per answer.
pub const MAX_LIMIT: usize = 1000;
/// How long a request's head (its line and headers) may take to arrive, counted from the
/// connection's opening or from the end of its previous answer. Why: the connection caps
/// ([`gate`]) are filled by a few hosts that each open their share and then send a header
/// line every few seconds, or make one request and leave the connection idle; before this
/// timer both were held for good (measured: one slow-header connection still open after
/// 100 s, an idle keep-alive one after 60 s). 10 s is far above what a client on a LAN
/// needs, and a client that keeps an idle connection longer reconnects, as it does after
/// any server's keep-alive timeout. An answer being streamed (the event stream) and a body
/// being uploaded are not requests' heads: they are not cut.
pub const HEAD_TIME: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a request's body (at most [`MAX_BODY`]) may take to arrive after its head. Why:
/// past the head, hyper waits for a body as long as bytes trickle in, so a client that
/// sends a byte every few seconds held its place (and anyone may post to
/// `/v1/hooks/{token}`: the token is checked once the body is read). 64 KiB take 8 s on a
/// 64 kbit/s radio link. File uploads stream for as long as the file takes and are not
/// bound by it; they need a `send` token before a byte is read.
pub const BODY_TIME: std::time::Duration = std::time::Duration::from_secs(20);
/// How long an upload may bring no bytes before it is refused. Why: an upload streams for as
/// long as the file takes, so it has no deadline of its own, and one whose client stopped
/// sending held its connection and place for good. Bytes move every moment on a slow link.
pub const UPLOAD_STALL: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Clone)]
struct AppState {
    node: Node,
    tokens: Arc<Mutex<Tokens>>,
    events: Events,
    metrics: Arc<Metrics>,
    registry: Arc<Registry>,
    /// The data directory (uploads pass through a private folder in it).
    dir: std::path::PathBuf,
}

/// Serve the API on `listener` until the process ends, and deliver outgoing webhooks.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: Node,
    dir: &std::path::Path,
    sealer: webhooks::Sealer,
) {
    let metrics = Arc::new(Metrics::default());
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let events = events::start(&node, metrics.clone());
    webhooks::start(dir, sealer, events.clone(), metrics.clone(), node.clone());
    let state = AppState {
        events,
        node,
        tokens: Arc::new(Mutex::new(Tokens::new(dir))),
        metrics,
        registry: Arc::new(registry),
        dir: dir.to_path_buf(),
    };
    let app = router(state);
    // hyper's HTTP/1 server as `axum::serve` runs it, plus the timer that `axum::serve`
    // leaves out and [`HEAD_TIME`] needs.
    use axum::serve::Listener;
    let mut listener = gate::Gate::new(listener);
    loop {
        let (io, from) = listener.accept().await;
        let app = hyper_util::service::TowerToHyperService::new(app.clone());
        let service = hyper::service::service_fn(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(from));
                hyper::service::Service::call(&app, req)
            },
        );
        tokio::spawn(async move {
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEAD_TIME)
                .serve_connection(hyper_util::rt::TokioIo::new(io), service)
                .with_upgrades()
                .await;
            if let Err(e) = served {
                tracing::debug!("HTTP API: connection from {from}: {e}");
            }
        });
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/channels", get(channels))
        .route(
            "/v1/channels/{channel}/messages",
            get(messages).post(post_message),
        )
        .route("/v1/channels/{channel}/removed", get(removed))
        .route("/v1/search", get(search))
        .route("/v1/threads", get(threads))
        .route("/v1/files", get(files))
        .route("/v1/messages/{id}/file", get(download))
        .route("/v1/messages/{id}", get(message).patch(edit).delete(delete))
        .route("/v1/messages/{id}/thread", get(thread))
        .route(
            "/v1/messages/{id}/pin",
            axum::routing::put(pin).delete(unpin),
        )
        .route("/v1/channels/{channel}/details", get(details))
        .route(
            "/v1/channels/{channel}/topic",
            axum::routing::put(set_topic),
        )
        .route("/v1/messages/{id}/replies", axum::routing::post(reply))
        .route("/v1/messages/{id}/forward", axum::routing::post(forward))
        .route(
            "/v1/channels/{channel}/polls",
            axum::routing::post(post_poll),
        )
        .route("/v1/messages/{id}/vote", axum::routing::put(vote))
        .route("/v1/messages/{id}/close", axum::routing::post(close_poll))
        .route("/v1/messages/{id}/reactions", axum::routing::post(react))
        .route(
            "/v1/messages/{id}/reactions/{emoji}",
            axum::routing::delete(unreact),
        )
        .route("/v1/hooks/{token}", axum::routing::post(hook))
        .route("/v1/roster", get(roster))
        .route("/v1/peers", get(peers))
        .route("/v1/statuses", get(statuses))
        .route("/v1/events", get(stream))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such endpoint; GET /openapi.json lists them",
            )
        })
        .layer(axum::middleware::map_request(
            |req: axum::extract::Request| async {
                req.map(|body| axum::body::Body::new(InTime::new(body)))
            },
        ))
        // Registered after the layer above, which applies to the routes before it only.
        .route(
            "/v1/channels/{channel}/files",
            axum::routing::post(upload).layer(DefaultBodyLimit::disable()),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_status,
        ))
        .with_state(state)
}

async fn count_status(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    s.metrics
        .http
        .get_or_create(&StatusLabel {
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

/// An error answer: `{"error": "what went wrong and what to do"}` with its status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn new(status: StatusCode, msg: impl Into<String>) -> ApiError {
        ApiError(status, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl From<majlis_core::Error> for ApiError {
    fn from(e: majlis_core::Error) -> ApiError {
        use majlis_core::Error as E;
        let status = match &e {
            // A roster rule: no such member or channel, a DM the policy does not allow.
            E::Invalid(_) | E::Roster(majlis_core::roster::RosterError::Rule(_)) => {
                StatusCode::BAD_REQUEST
            }
            E::Denied(_) | E::NotOnRoster => StatusCode::FORBIDDEN,
            E::NotReady(_) | E::Conflict(_) => StatusCode::CONFLICT,
            E::DiskFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
            E::DiskFailed(_) | E::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let msg = match crate::advice(&e) {
            Some(a) => format!("{e}; {a}"),
            None => e.to_string(),
        };
        ApiError(status, msg)
    }
}

/// A request body that fails once [`BODY_TIME`] has passed with some of it still to come.
struct InTime {
    body: axum::body::Body,
    until: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl InTime {
    fn new(body: axum::body::Body) -> InTime {
        InTime {
            body,
            until: Box::pin(tokio::time::sleep(BODY_TIME)),
        }
    }
}

/// The error an [`InTime`] body ends with.
#[derive(Debug)]
struct TooSlow;

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} s of its head; send it whole",
            BODY_TIME.as_secs()
        )
    }
}

impl std::error::Error for TooSlow {}

impl http_body::Body for InTime {
    type Data = hyper::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::future::Future;
        if let std::task::Poll::Ready(frame) = std::pin::Pin::new(&mut self.body).poll_frame(cx) {
            return std::task::Poll::Ready(frame);
        }
        match self.until.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => {
                std::task::Poll::Ready(Some(Err(axum::Error::new(TooSlow))))
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Whether `e` or an error under it is [`TooSlow`].
fn too_slow(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(e);
    while let Some(e) = at {
        if e.is::<TooSlow>() {
            return true;
        }
        at = e.source();
    }
    false
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        if too_slow(&r) {
            return ApiError(StatusCode::REQUEST_TIMEOUT, TooSlow.to_string());
        }
        let status = match &r {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::BytesRejection(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        let msg = match status {
            StatusCode::PAYLOAD_TOO_LARGE => format!(
                "the request body is over {} KiB: a message holds at most {} KiB of text; \
                 send large content as a file (POST /v1/channels/{{channel}}/files)",
                MAX_BODY / 1024,
                majlis_core::message::MAX_BODY_BYTES / 1024
            ),
            _ => format!("bad request body: {}", r.body_text()),
        };
        ApiError(status, msg)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("bad query: {}", r.body_text()),
        )
    }
}

/// The token's holder, if `headers` carry a live token with `scope`.
fn auth(s: &AppState, headers: &HeaderMap, scope: Scope) -> Result<tokens::TokenInfo, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            unauthorized(
                "no token: send Authorization: Bearer TOKEN (`majlisd api token create` makes one)",
            )
        })?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("the Authorization header is not `Bearer TOKEN`"))?;
    let info = s
        .tokens
        .lock()
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "token store poisoned"))?
        .check(token.trim())
        .ok_or_else(|| unauthorized("unknown or revoked token"))?;
    if !info.scopes.contains(&scope) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} lacks the {scope} scope; create one with --scopes {scope}",
                info.name
            ),
        ));
    }
    Ok(info)
}

/// A message as `majlisd history --json` shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // the schema of `StoredMessage`'s JSON, for the OpenAPI document
pub struct ApiMessage {
    /// Message id (hex).
    id: String,
    /// `general`, or a direct-message channel `@amina,bilal`.
    channel: String,
    /// The author's member name (on the roster; what `@mentions` and commands use).
    sender: String,
    /// The author's full name, as an admin set it (`majlisd roster full-name`); absent
    /// when they have none.
    sender_name: Option<String>,
    /// The author's device id.
    device: String,
    /// Unix milliseconds, the sender's clock.
    sent_at: u64,
    text: String,
    /// This device holds no key for the message (yet): `text` is a placeholder.
    locked: bool,
    /// A shared file: blob, name, mime, size.
    #[schema(value_type = Option<Object>)]
    file: Option<()>,
    /// What this message does to another: `{"kind": "reply", "to", "also_channel"}`,
    /// `{"kind": "edit", "of"}` (then `text` is the new text), `{"kind": "delete", "of"}`,
    /// `{"kind": "react", "to", "emoji", "on"}`, `{"kind": "vote", "poll", "choices"}`,
    /// `{"kind": "close_poll", "of"}`. Absent for a plain message.
    #[schema(value_type = Option<Object>)]
    act: Option<()>,
    /// Its author changed the text (absent when false).
    edited: Option<bool>,
    /// Deleted by its author or an admin: `text` says so (absent when false).
    deleted: Option<bool>,
    /// `[{"emoji": "👍", "members": ["bilal"]}]` (absent when none).
    #[schema(value_type = Option<Vec<Object>>)]
    reactions: Option<()>,
    /// Replies in its thread and the last three repliers (absent when none).
    replies: Option<u32>,
    repliers: Option<Vec<String>>,
    /// Forwarded from another conversation: `{"id", "author", "channel", "sent_at",
    /// "check"}`, where `check` is `matches` (this device holds the original and it says
    /// the same), `differs` (it holds it and it does not: do not trust the attribution) or
    /// `unseen` (it does not hold it). Absent for a message that is not a forward.
    #[schema(value_type = Option<Object>)]
    forwarded: Option<()>,
    /// A poll (`text` is its question): `{"options": [{"text", "voters"}], "multi",
    /// "closed"}`, where `voters` are the members whose latest vote chose the option and
    /// `closed` is `[member, sent_at]` once closed. Absent for a message that is not a poll.
    #[schema(value_type = Option<Object>)]
    poll: Option<()>,
    /// Only on this node's member's own messages: members whose devices hold it (the app's
    /// "✓✓ delivered"), in DMs and channels of up to 20 readers.
    delivered_to: Option<Vec<String>>,
    /// Only on this node's member's own messages: members whose apps have shown it ("✓✓
    /// read"); empty while the org has read receipts off.
    read_by: Option<Vec<String>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Messages {
    /// Oldest first.
    #[schema(value_type = Vec<ApiMessage>)]
    messages: Vec<crate::api::Row>,
}

impl Messages {
    /// `messages` of `channel` (resolved), ours with their receipts.
    fn of(s: &AppState, messages: Vec<majlis_core::StoredMessage>) -> Result<Messages, ApiError> {
        let Some(channel) = messages.first().map(|m| m.channel.clone()) else {
            return Ok(Messages { messages: vec![] });
        };
        let marks = crate::api::history_marks(&s.node, &channel)?;
        Ok(Messages {
            messages: messages.into_iter().map(|m| marks.row(m)).collect(),
        })
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Only messages older than the message with this id (the next page back).
    before: Option<String>,
}

/// Messages of a channel, newest page first, each page oldest first.
#[utoipa::path(get, path = "/v1/channels/{channel}/messages",
    params(("channel" = String, Path, description = "`general`, or `@NAME` for direct messages with NAME"), MessagesQuery),
    responses((status = 200, body = Messages), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = ["read"])))]
async fn messages(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(channel): Path<String>,
    q: Result<Query<MessagesQuery>, QueryRejection>,
) -> Result<Json<Messages>, ApiError> {
    auth(&s, &headers, Scope::Read)?;
    let Query(q) = q?;
    check_channel(&s, &channel, Right::Read).await?;
    let limit = limit(q.limit, 50)?;
    let before = match q.before {
        None => None,
        Some(id) => {
            let m = held(&s, &id).await?;
            Some((m.sent_at, m.id))
        }
    };
    let messages = s.node.history_before(&channel, before, limit)?;
    Ok(Json(Messages::of(&s, messages)?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemovedQuery {
    /// Only removals after this place (the `next` of the last answer; default: from the
    /// oldest kept).
    after: Option<u64>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// Messages removed together from a channel.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Removal {
    /// When (Unix ms).
    at: u64,
    /// The ids of the messages removed.
    ids: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Removals {
    /// Oldest first.
    removals: Vec<Removal>,
    /// Where to read on from: give it as `after=` next time (the same when nothing new).
    next: u64,
}

/// Messages removed from a channel (retention, an erasure request, the node's own messages
/// sent again after a fork), from the node's journal of removals, kept 30 days: what a
/// client that keeps copies deletes. Unlike the event stream's `removed` events, a removal
/// made while the client or the node was away is here; read on with `after=`.
#[utoipa::path(get, path = "/v1/channels/{channel}/removed",
    params(("channel" = String, Path, description = "`general`, or `@NAME` for direct messages with NAME"), RemovedQuery),
    responses((status = 200, body = Removals), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = ["read"])))]
async fn removed(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(channel): Path<String>,
    q: Result<Query<RemovedQuery>, QueryRejection>,
) -> Result<Json<Removals>, ApiError> {
    auth(&s, &headers, Scope::Read)?;
    let Query(q) = q?;
    check_channel(&s, &channel, Right::Read).await?;
    let limit = limit(q.limit, 100)?;
    // Places are below 2^63 (what the document's int64 allows).
    if q.after.is_some_and(|a| a > i64::MAX as u64) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "after= is the `next` of an earlier answer",
        ));
    }
    let channel = s.node.resolve(&channel)?;
    let (found, next) = s
        .node
        .store()
        .removals_of(&channel, q.after.unwrap_or(0), limit)?;
    let removals = found
        .into_iter()
        .map(|r| Removal {
            at: r.at,
            ids: r.ids().map(|id| id.to_string()).collect(),
        })
        .collect();
    Ok(Json(Removals { removals, next }))
}

/// `limit=` as given (1 to [`MAX_LIMIT`]), else `default`.
fn limit(given: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match given {
        None => Ok(default),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit={n}: give 1 to {MAX_LIMIT}"),
        )),
    }
}

/// Refuse text that is empty or only spaces: a message says something.
fn some_text(text: &str, what: &str) -> Result<(), ApiError> {
    match text.trim().is_empty() {
        true => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{what} needs some text"),
        )),
        false => Ok(()),
    }
}

/// What a request wants to do in a channel.
#[derive(Clone, Copy, PartialEq)]
enum Right {
    Read,
    Post,
    /// React and vote: where the member posts, and as a reader where only some post
    /// (`Roster::may_respond`).
    Respond,
    /// Reply in a thread: where the member posts, and as a reader where an admin let the
    /// readers reply (`Roster::may_reply`).
    Reply,
}

/// Refuse a channel this device's member may not read or post in: a clear 403 (reading: the
/// store would have only locked records, or nothing, and an empty list would mislead).
async fn check_channel(s: &AppState, channel: &str, right: Right) -> Result<(), ApiError> {
    let roster = s.node.roster_soon().await.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no roster yet: wait until an admin adds this device",
        )
    })?;
    if !channel.starts_with('@') && roster.roster.channel_typed(channel).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no channel '{channel}' in the roster (GET /v1/channels lists them)"),
        ));
    }
    // `@NAME`: a member that does not exist is a conversation that does not (404, as a
    // channel; it was a 400 "roster rejected" that schemathesis flagged); what the roster
    // then refuses is the policy's or this device's standing (403).
    if let Some(name) = channel.strip_prefix('@').filter(|n| !n.contains(',')) {
        if roster.roster.member(name).is_none() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no member named '{name}' (GET /v1/roster lists them)"),
            ));
        }
    }
    // `@bilal,chen`, a group conversation: each name a member, or one who left (its
    // conversation is still read).
    if let Some(names) = channel.strip_prefix('@').filter(|n| n.contains(',')) {
        let unknown = names
            .split(',')
            .map(|n| n.trim().trim_start_matches('@'))
            .find(|n| {
                !n.is_empty() && roster.roster.member_typed(n).is_none() && !roster.was_member(n)
            });
        if let Some(name) = unknown {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no member named '{name}' (GET /v1/roster lists them)"),
            ));
        }
    }
    // What the roster refuses here is the policy's or this device's standing (`Denied`: 403).
    let resolved = s.node.resolve(channel)?;
    let me = roster
        .member_of_device(&s.node.device_id())
        .ok_or_else(|| ApiError::from(majlis_core::Error::NotOnRoster))?;
    // Where nobody posts (an archived channel, a DM with someone who left), core says why.
    let answers = match right {
        Right::Respond => roster.roster.may_respond(me, &resolved),
        Right::Reply => roster.roster.may_reply(me, &resolved),
        Right::Read | Right::Post => false,
    };
    if right != Right::Read && !answers && roster.roster.may_read(me, &resolved) {
        if let Err(why) = majlis_core::message::may_author(&roster, &s.node.device_id(), &resolved)
        {
            let said = why.said_to_author(&roster, &resolved);
            return Err(ApiError::new(StatusCode::FORBIDDEN, said));
        }
    }
    let (ok, verb) = match right {
        Right::Read => (roster.roster.may_read(me, &resolved), "read"),
        Right::Post => (roster.roster.may_post(me, &resolved), "post in"),
        Right::Respond => (answers, "react or vote in"),
        Right::Reply => (answers, "reply in"),
    };
    if !ok {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{} may not {verb} {channel}", me.name),
        ));
    }
    Ok(())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewMessage {
    /// The message text: not only spaces, at most 32 KiB (UTF-8).
    #[schema(pattern = r"\S")]
    text: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Posted {
    /// The new message's id.
    id: String,
}

/// An incoming webhook: post into the hook's channel. The token is the URL (as Slack's
/// incoming webhooks), so a build server or a form can post with a plain URL and no header.
#[utoipa::path(post, path = "/v1/hooks/{token}",
    params(("token" = String, Path, description = "The token `majlisd api hook create` printed")),
    request_body = NewMessage,
    responses((status = 201, body = Posted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn hook(
    State(s): State<AppState>,
    Path(token): Path<String>,
    body: Result<Json<NewMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    let info = s
        .tokens
        .lock()
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "token store poisoned"))?
        .check(&token)
        .filter(|t| t.scopes.contains(&Scope::Hook))
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown or revoked webhook"))?;
    let Json(body) = body?;
    some_text(&body.text, "a message")?;
    let channel = info.channel.unwrap_or_default();
    let id = s.node.send(&channel, &body.text).await?;
    Ok((StatusCode::CREATED, Json(Posted { id: id.to_string() })))
}

/// Post a message as this device's member.
#[utoipa::path(post, path = "/v1/channels/{channel}/messages",
    params(("channel" = String, Path, description = "`general`, or `@NAME` for a direct message to NAME")),
    request_body = NewMessage,
    responses((status = 201, body = Posted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("token" = ["send"])))]
async fn post_message(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(channel): Path<String>,
    body: Result<Json<NewMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    auth(&s, &headers, Scope::Send)?;
    let Json(body) = body?;
    some_text(&body.text, "a message")?;
    check_channel(&s, &channel, Right::Post).await?;
    let id = s.node.send(&channel, &body.text).await?;
    Ok((StatusCode::CREATED, Json(Posted { id: id.to_string() })))
}

/// Candidates looked at for a short id: ids are hashes, so six digits name one message in
/// millions; the cap bounds the work a token can ask for with a short prefix.
const SHORT_ID_CANDIDATES: usize = 64;

/// The message `id` names, held here and readable by the token's member (404 otherwise, so a
/// token cannot probe which ids exist in channels it may not read). `id` is the whole id or,
/// as on the command line, its first [`MessageId::SHORT_MIN`] or more hex digits (`majlisd
/// history --ids` shows eight): only messages the member may read count when it decides
/// which one was meant, and a prefix that still names several is a 409.
async fn held(s: &AppState, id: &str) -> Result<majlis_core::StoredMessage, ApiError> {
    let gone = || ApiError::new(StatusCode::NOT_FOUND, format!("no message {id} here"));
    let store = s.node.store();
    let candidates = match id.parse::<MessageId>() {
        Ok(full) => vec![full],
        Err(_) => store.messages_by_prefix(id, SHORT_ID_CANDIDATES)?,
    };
    let mut readable = Vec::new();
    for c in candidates {
        if let Some(m) = store.message(&c)? {
            if check_channel(s, &m.channel, Right::Read).await.is_ok() {
                readable.push(m);
            }
        }
    }
    match readable.len() {
        0 => Err(gone()),
        1 => Ok(readable.remove(0)),
        _ => Err(majlis_core::store::Store::several_starting(id).into()),
    }
}

/// One message as it shows now (edits, deletion, reactions and replies folded in).
#[utoipa::path(get, path = "/v1/messages/{id}",
    params(("id" = String, Path, description = "Message id (hex): all 64 digits, or its first 6 or more")),
    responses((status = 200, body = ApiMessage), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = ["read"])))]
async fn message(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<crate::api::Row>, ApiError> {
    auth(&s, &headers, Scope::Read)?;
    let m = held(&s, &id).await?;
    Ok(Json(crate::api::history_marks(&s.node, &m.channel)?.row(m)))
}

/// A message and the replies in its thread, oldest first.
#[utoipa::path(get, path = "/v1/messages/{id}/thread",
    params(("id" = String, Path, description = "The thread's first message")),
    responses((status = 200, body = Messages), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = ["read"])))]
async fn thread(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Messages>, ApiError> {
    auth(&s, &headers, Scope::Read)?;
    let m = held(&s, &id).await?;
    Ok(Json(Messages::of(&s, s.node.thread(&m.id)?)?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewReply {
    /// Not only spaces, at most 32 KiB (UTF-8).
    #[schema(pattern = r"\S")]
    text: String,
    /// Show the reply in the channel too (default: only in the thread).
    #[serde(default)]
    also_channel: bool,
}

/// Reply in a message's thread.
#[utoipa::path(post, path = "/v1/messages/{id}/replies",
    params(("id" = String, Path, description = "The message replied to")),
    request_body = NewReply,
    responses((status = 201, body = Posted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = ["send"])))]
async fn reply(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<NewReply>, JsonRejection>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    auth(&s, &headers, Scope::Send)?;
    let Json(body) = body?;
    some_text(&body.text, "a reply")?;
    let m = held(&s, &id).await?;
    // Also sent to the channel, a reply is a post there.
    let right = match body.also_channel {
        true => Right::Post,
        false => Right::Reply,
    };
    check_channel(&s, &m.channel, right).await?;
    let id = s.node.reply(&m.id, &body.text, body.also_channel).await?;
    Ok((StatusCode::CREATED, Json(Posted { id: id.to_string() })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewForward {
    /// Where to: a channel's name, or `@NAME` for a direct message.
    to: String,
}

/// Forward a message to another channel or a direct message: its text (a file: its bytes,
/// encrypted again for the readers there, once this node has downloaded it), with where it
/// came from; readers who hold the original see whether it matches (`forwarded.check`).
#[utoipa::path(post, path = "/v1/messages/{id}/forward",
    params(("id" = String, Path, description = "The message forwarded")),
    request_body = NewForward,
    responses((status = 201, body = Posted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = ["send"])))]
async fn forward(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<NewForward>, JsonRejection>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    auth(&s, &headers, Scope::Send)?;
    let Json(body) = body?;
    let m = held(&s, &id).await?;
    check_channel(&s, &m.channel, Right::Read).await?;
    check_channel(&s, &body.to, Right::Post).await?;
    let id = s.node.forward(&m.id, &body.to).await?;
    Ok((StatusCode::CREATED, Json(Posted { id: id.to_string() })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewPoll {
    /// One line of 1 to 300 characters (spaces at either end are dropped), as an option's
    /// ([`ONE_LINE`]).
    #[schema(
        min_length = 1,
        max_length = 300,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    question: String,
    /// 2 to 12 options, each one line of 1 to 100 characters (spaces at either end are
    /// dropped), none the same as another but for case.
    #[schema(value_type = std::collections::BTreeSet<PollChoice>, min_items = 2, max_items = 12)]
    options: Vec<PollChoice>,
    /// Let people choose several options (default: one).
    #[serde(default)]
    multi: bool,
}

/// Text on one line: no control characters, not only spaces.
const ONE_LINE: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// One option of a new poll: 1 to 100 characters on one line, not only spaces.
#[derive(Deserialize)]
#[serde(transparent)]
pub struct PollChoice(String);

// By hand: utoipa's derive takes no string bounds on a newtype's field.
impl utoipa::PartialSchema for PollChoice {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(100))
            .pattern(Some(ONE_LINE))
            .into()
    }
}

impl utoipa::ToSchema for PollChoice {}

/// Ask a question with options to choose from; readers vote with `PUT
/// /v1/messages/{id}/vote`, and the message's `poll` shows who chose what.
#[utoipa::path(post, path = "/v1/channels/{channel}/polls",
    params(("channel" = String, Path, description = "`general`, or `@NAME` for a direct message to NAME")),
    request_body = NewPoll,
    responses((status = 201, body = Posted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = ["send"])))]
async fn post_poll(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(channel): Path<String>,
    body: Result<Json<NewPoll>, JsonRejection>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    auth(&s, &headers, Scope::Send)?;
    let Json(body) = body?;
    check_channel(&s, &channel, Right::Post).await?;
    let options: Vec<String> = body.options.into_iter().map(|o| o.0).collect();
    let id = s
        .node
        .poll(&channel, &body.question, &options, body.multi)
        .await?;
    Ok((StatusCode::CREATED, Json(Posted { id: id.to_string() })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewVote {
    /// The options chosen, as indices into the poll's `options` (from 0); one unless the
    /// poll is `multi`; `[]` takes this member's vote back.
    #[schema(value_type = Vec<u32>, max_items = 12)]
    choices: Vec<serde_json::Number>,
}

/// Vote in a poll (the member's latest vote stands).
#[utoipa::path(put, path = "/v1/messages/{id}/vote",
    params(("id" = String, Path, description = "The poll")),
    request_body = NewVote,
    responses((status = 201, body = Posted, description = "The vote's own message id"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = ["send"])))]
async fn vote(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<NewVote>, JsonRejection>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    auth(&s, &headers, Scope::Send)?;
    let Json(body) = body?;
    // Whole numbers, however JSON writes them (`1.0` is one).
    let choices: Option<Vec<usize>> = body
        .choices
        .iter()
        .map(|n| {
            n.as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                        .map(|f| f as u64)
                })
                .map(|c| usize::try_from(c).unwrap_or(usize::MAX))
        })
        .collect();
    let choices = choices.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "choices are the options' places in the poll: whole numbers from 0",
        )
    })?;
    let m = held(&s, &id).await?;
    check_channel(&s, &m.channel, Right::Respond).await?;
    let id = s.node.vote(&m.id, &choices).await?;
    Ok((StatusCode::CREATED, Json(Posted { id: id.to_string() })))
}

/// Close a poll: it takes no more votes. Who asked, or an admin.
#[utoipa::path(post, path = "/v1/messages/{id}/close",
    params(("id" = String, Path, description = "The poll")),
    responses((status = 201, body = Posted, description = "The closing's own message id"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = ["send"])))]
async fn close_poll(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    auth(&s, &headers, Scope::Send)?;
    let m = held(&s, &id).await?;
    check_channel(&s, &m.channel, Right::Post).await?;
    let id = s.node.close_poll(&m.id).await?;
    Ok((StatusCode::CREATED, Json(Posted { id: id.to_string() })))
}

/// Change the text of one of this member's messages.
#[utoipa::path(patch, path = "/v1/messages/{id}",
    params(("id" = String, Path, description = "Message id (hex): all 64 digits, or its first 6 or more")),
    request_body = NewMessage,
    responses((status = 201, body = Posted, description = "The edit's own message id"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = ["send"])))]
async fn edit(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<NewMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    auth(&s, &headers, Scope::Send)?;
    let Json(body) = body?;
    let m = held(&s, &id).await?;
    let id = s.node.edit(&m.id, &body.text).await?;
    Ok((StatusCode::CREATED, Json(Posted { id: id.to_string() })))
}

/// Delete a message: this member's own, or any as an admin.
#[utoipa::path(delete, path = "/v1/messages/{id}",
    params(("id" = String, Path, description = "Message id (hex): all 64 digits, or its first 6 or more")),
    responses((status = 201, body = Posted, description = "The deletion's own message id"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = ["send"])))]
async fn delete(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    auth(&s, &headers, Scope::Send)?;
    let m = held(&s, &id).await?;
    let id = s.node.delete(&m.id).await?;
    Ok((StatusCode::CREATED, Json(Posted { id: id.to_string() })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewReaction {
    /// One emoji or short symbol: 1 to 8 characters, no spaces or control characters.
    #[schema(
        min_length = 1,
        max_length = 8,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    )]
    emoji: String,
}

/// React to a message.
#[utoipa::path(post, path = "/v1/messages/{id}/reactions",
    params(("id" = String, Path, description = "Message id (hex): all 64 digits, or its first 6 or more")),
    request_body = NewReaction,
    responses((status = 201, body = Posted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = ["send"])))]
async fn react(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<NewReaction>, JsonRejection>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    auth(&s, &headers, Scope::Send)?;
    let Json(body) = body?;
    let m = held(&s, &id).await?;
    check_channel(&s, &m.channel, Right::Respond).await?;
    let id = s.node.react(&m.id, &body.emoji, true).await?;
    Ok((StatusCode::CREATED, Json(Posted { id: id.to_string() })))
}

/// Take back this member's reaction `emoji` (URL-encoded) to a message.
#[utoipa::path(delete, path = "/v1/messages/{id}/reactions/{emoji}",
    params(("id" = String, Path, description = "Message id (hex): all 64 digits, or its first 6 or more"), ("emoji" = String, Path, description = "The emoji, URL-encoded")),
    responses((status = 201, body = Posted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = ["send"])))]
async fn unreact(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((id, emoji)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    auth(&s, &headers, Scope::Send)?;
    let m = held(&s, &id).await?;
    check_channel(&s, &m.channel, Right::Respond).await?;
    let id = s.node.react(&m.id, &emoji, false).await?;
    Ok((StatusCode::CREATED, Json(Posted { id: id.to_string() })))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChannelDetails {
    /// One line; empty when none was set.
    topic: String,
    description: String,
    /// Who set the topic and when: `[member, ms since the epoch]`, or null if nobody did.
    #[schema(value_type = Option<Vec<serde_json::Value>>)]
    topic_by: Option<(String, u64)>,
    /// Pinned messages, the most recently pinned first.
    #[schema(value_type = Vec<ApiMessage>)]
    pinned: Vec<majlis_core::StoredMessage>,
    /// Members who left this open channel.
    left: Vec<String>,
    /// An admin archived it: readable and searchable, and posts to it are refused (403).
    archived: bool,
}

/// A channel's topic, description, pinned messages and who left it.
#[utoipa::path(get, path = "/v1/channels/{channel}/details",
    params(("channel" = String, Path, description = "`general`, or `@NAME`")),
    responses((status = 200, body = ChannelDetails), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = ["read"])))]
async fn details(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(channel): Path<String>,
) -> Result<Json<ChannelDetails>, ApiError> {
    auth(&s, &headers, Scope::Read)?;
    check_channel(&s, &channel, Right::Read).await?;
    let (d, pinned) = s.node.details_and_pinned(&channel)?;
    Ok(Json(ChannelDetails {
        topic: d.topic,
        description: d.description,
        topic_by: d.topic_by,
        pinned,
        left: d.left,
        archived: d.archived,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewTopic {
    /// One line, at most 250 characters.
    #[schema(max_length = 250, pattern = r"^[^\n]*$")]
    topic: String,
    /// At most 1 000 characters.
    #[schema(max_length = 1000)]
    #[serde(default)]
    description: String,
}

/// Set a channel's topic and description (anyone who may post there may).
#[utoipa::path(put, path = "/v1/channels/{channel}/topic",
    params(("channel" = String, Path, description = "`general`, or `@NAME`")),
    request_body = NewTopic,
    responses((status = 201, body = Posted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = ["send"])))]
async fn set_topic(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(channel): Path<String>,
    body: Result<Json<NewTopic>, JsonRejection>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    auth(&s, &headers, Scope::Send)?;
    let Json(body) = body?;
    // As the schema says, before the node trims them.
    majlis_core::conversation::check_topic(&body.topic, &body.description)?;
    check_channel(&s, &channel, Right::Post).await?;
    let id = s
        .node
        .set_topic(&channel, &body.topic, &body.description)
        .await?;
    Ok((StatusCode::CREATED, Json(Posted { id: id.to_string() })))
}

/// Pin a message to its channel.
#[utoipa::path(put, path = "/v1/messages/{id}/pin",
    params(("id" = String, Path, description = "Message id (hex): all 64 digits, or its first 6 or more")),
    responses((status = 201, body = Posted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = ["send"])))]
async fn pin(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    pin_as(s, headers, id, true).await
}

/// Unpin a message.
#[utoipa::path(delete, path = "/v1/messages/{id}/pin",
    params(("id" = String, Path, description = "Message id (hex): all 64 digits, or its first 6 or more")),
    responses((status = 201, body = Posted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = ["send"])))]
async fn unpin(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    pin_as(s, headers, id, false).await
}

async fn pin_as(
    s: AppState,
    headers: HeaderMap,
    id: String,
    on: bool,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    auth(&s, &headers, Scope::Send)?;
    let m = held(&s, &id).await?;
    check_channel(&s, &m.channel, Right::Post).await?;
    let id = s.node.pin(&m.id, on).await?;
    Ok((StatusCode::CREATED, Json(Posted { id: id.to_string() })))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FilesList {
    /// blob, size, chunks, have, complete, wanted, channels, sources, message (one that
    /// shares it: what `GET /v1/messages/{id}/file` takes) and name (where this device can
    /// open that message) of each file this node knows of.
    #[schema(value_type = Vec<Object>)]
    files: Vec<majlis_core::node::FileStatus>,
}

/// Shared files this node knows of, with download progress.
#[utoipa::path(get, path = "/v1/files",
    responses((status = 200, body = FilesList), (status = 401, body = ErrorBody)),
    security(("token" = ["read"])))]
async fn files(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<FilesList>, ApiError> {
    auth(&s, &headers, Scope::Read)?;
    Ok(Json(FilesList {
        files: s.node.files().await?,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name as readers will see it.
    name: String,
    /// A caption shown with it.
    caption: Option<String>,
}

/// Share a file: the request body is the file's bytes (any size the org's file policy
/// allows); readers fetch it from every peer that has it.
#[utoipa::path(post, path = "/v1/channels/{channel}/files",
    params(("channel" = String, Path, description = "`general`, or `@NAME`"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Posted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 408, body = ErrorBody)),
    security(("token" = ["send"])))]
async fn upload(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(channel): Path<String>,
    q: Result<Query<UploadQuery>, QueryRejection>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    use tokio::io::AsyncWriteExt;
    auth(&s, &headers, Scope::Send)?;
    let Query(q) = q?;
    let name = majlis_core::files::safe_name(&q.name);
    if name.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "name= is the file's name, e.g. name=report.pdf",
        ));
    }
    // Check the right to post before taking any bytes.
    check_channel(&s, &channel, Right::Post).await?;
    // The bytes go to a private temporary folder in the data directory, are shared (which
    // encrypts them into the blob store) and are removed at once.
    let tmp = Temp::new(&s.dir.join(UPLOADS))?;
    let path = tmp.0.join(&name);
    let mut f = tokio::fs::File::create(&path)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("upload: {e}")))?;
    let mut stream = body.into_data_stream();
    let mut size = 0usize;
    let stalled = || {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the upload stopped: no bytes for {} s; send the file again",
                UPLOAD_STALL.as_secs()
            ),
        )
    };
    while let Some(chunk) = tokio::time::timeout(UPLOAD_STALL, stream.next())
        .await
        .map_err(|_| stalled())?
    {
        let chunk = chunk.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("upload cut short: {e}"))
        })?;
        f.write_all(&chunk)
            .await
            .map_err(|e| ApiError::new(StatusCode::INSUFFICIENT_STORAGE, format!("upload: {e}")))?;
        size += chunk.len();
    }
    f.flush().await.ok();
    if size == 0 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body is empty: send the file's bytes (Content-Type: application/octet-stream)",
        ));
    }
    drop(f);
    let id = s
        .node
        .share_file(&channel, &path, q.caption.as_deref().unwrap_or(""))
        .await?;
    Ok((StatusCode::CREATED, Json(Posted { id: id.to_string() })))
}

/// Write `bytes` to `path` atomically, readable by the owner only.
pub(crate) fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A folder removed (with what is in it) when dropped.
struct Temp(std::path::PathBuf);

impl Temp {
    fn new(parent: &std::path::Path) -> Result<Temp, ApiError> {
        let mut r = [0u8; 8];
        let _ = getrandom::getrandom(&mut r);
        let dir = parent.join(webhooks::hex(&r));
        std::fs::create_dir_all(&dir).map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("upload: {e}"))
        })?;
        Ok(Temp(dir))
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The file a message shares. When this node has all of it: the bytes (decrypted), with its
/// type and name. Otherwise the download starts (from every peer that has it) and the answer
/// is 202 with the progress: ask again.
#[utoipa::path(get, path = "/v1/messages/{id}/file",
    params(("id" = String, Path, description = "The id of the message that shares the file")),
    responses((status = 200, description = "the file's bytes", content_type = "application/octet-stream"), (status = 202, body = Object), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("token" = ["read"])))]
async fn download(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth(&s, &headers, Scope::Read)?;
    let id = held(&s, &id).await?.id;
    let Some((blob, info, _)) = s.node.store().file_of(&id)? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("message {id} shares no file this device can open"),
        ));
    };
    let status = s.node.fetch_file(blob.id).await?;
    if !status.complete {
        return Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "file": status, "hint": "fetching; ask again" })),
        )
            .into_response());
    }
    let tmp = Temp::new(&s.dir.join(UPLOADS))?;
    let path = tmp.0.join("out");
    s.node.save_file(&id, &path).await?;
    // Open, then remove: the open handle streams the bytes, nothing stays on disk.
    let f = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("download: {e}")))?;
    drop(tmp);
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(f));
    let disposition = format!(
        "attachment; filename=\"{}\"",
        info.name.replace(['"', '\\'], "_")
    );
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, info.mime.clone()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChannelInfo {
    /// The channel's name on the wire: what its messages' `channel` says; never changes.
    /// Paths take it, or the display name.
    name: String,
    /// The name people see and type: `name`, or what an admin renamed the channel to.
    display_name: String,
    /// Listed members only (`None`: everyone in the org).
    members: Option<Vec<String>>,
    /// Only these members post; the other readers read (absent: every reader posts). A
    /// post by anyone else is refused (403).
    #[serde(skip_serializing_if = "Option::is_none")]
    posters: Option<Vec<String>>,
    /// Where only some post: the other readers may still reply in threads
    /// (`POST /v1/messages/{id}/replies` without `also_channel`).
    readers_reply: bool,
    direct: bool,
    /// An admin archived it: readable and searchable, and posts to it are refused (403).
    archived: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Channels {
    channels: Vec<ChannelInfo>,
}

/// Channels this device's member may read, and the direct-message channels it holds.
#[utoipa::path(get, path = "/v1/channels",
    responses((status = 200, body = Channels), (status = 401, body = ErrorBody)),
    security(("token" = ["read"])))]
async fn channels(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Channels>, ApiError> {
    auth(&s, &headers, Scope::Read)?;
    let mut out = Vec::new();
    if let Some(r) = s.node.roster_soon().await {
        if let Some(me) = r.member_of_device(&s.node.device_id()) {
            for c in &r.roster.channels {
                if r.roster.may_read(me, &c.name) {
                    out.push(ChannelInfo {
                        name: c.name.clone(),
                        display_name: r.roster.shown(&c.name).to_string(),
                        members: c.members.clone(),
                        posters: r.roster.posters(&c.name).map(<[String]>::to_vec),
                        readers_reply: r.roster.readers_reply(&c.name),
                        direct: false,
                        archived: r.roster.is_archived(&c.name),
                    });
                }
            }
            for d in s.node.dm_channels()? {
                if r.roster.may_read(me, &d) {
                    out.push(ChannelInfo {
                        display_name: d.clone(),
                        name: d,
                        members: None,
                        posters: None,
                        readers_reply: false,
                        direct: true,
                        archived: false,
                    });
                }
            }
        }
    }
    Ok(Json(Channels { channels: out }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The query: words, "phrases", from:NAME, in:#channel, in:@name, has:file, has:link,
    /// before:/after:/on:YYYY-MM-DD, mentions:me, is:saved. Not only spaces.
    #[param(pattern = r"[^\s\u0085]")]
    q: String,
    /// At most this many hits (default 20).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Newest first (the default), or best match first.
    order: Option<Order>,
}

#[derive(Deserialize, utoipa::ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Newest,
    Relevance,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Hit {
    #[schema(value_type = ApiMessage)]
    message: majlis_core::StoredMessage,
    /// The text around the match, matches in [brackets].
    snippet: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Hits {
    hits: Vec<Hit>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThreadsQuery {
    /// At most this many threads (default 20).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ThreadItem {
    /// The message the thread hangs from (its `replies` counted).
    #[schema(value_type = ApiMessage)]
    root: majlis_core::StoredMessage,
    /// The thread's latest reply.
    #[schema(value_type = ApiMessage)]
    last: majlis_core::StoredMessage,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Threads {
    threads: Vec<ThreadItem>,
}

/// The threads this device's member takes part in (they started one that has replies,
/// replied or were mentioned in it), the one with the latest reply first.
#[utoipa::path(get, path = "/v1/threads", params(ThreadsQuery),
    responses((status = 200, body = Threads), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("token" = ["read"])))]
async fn threads(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ThreadsQuery>, QueryRejection>,
) -> Result<Json<Threads>, ApiError> {
    auth(&s, &headers, Scope::Read)?;
    let Query(q) = q?;
    let limit = limit(q.limit, 20)?;
    let threads = s.node.threads(limit).await?;
    Ok(Json(Threads {
        threads: threads
            .into_iter()
            .map(|t| ThreadItem {
                root: t.root,
                last: t.last,
            })
            .collect(),
    }))
}

/// Search every message this device can read.
#[utoipa::path(get, path = "/v1/search", params(SearchQuery),
    responses((status = 200, body = Hits), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("token" = ["read"])))]
async fn search(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<Hits>, ApiError> {
    auth(&s, &headers, Scope::Read)?;
    let Query(q) = q?;
    // "Only spaces" as the document's pattern says it, so that a generated client and the
    // server agree: ECMA-262's `\s` (with U+FEFF, which Rust does not count as a space) and
    // U+0085 (which ECMA does not).
    if q.q.chars().all(|c| c.is_whitespace() || c == '\u{feff}') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "q= needs words to search for, or a filter such as from:NAME",
        ));
    }
    let relevance = matches!(q.order, Some(Order::Relevance));
    let limit = limit(q.limit, 20)?;
    let hits = s
        .node
        .search(&q.q, crate::search_order(relevance), limit)
        .await?;
    Ok(Json(Hits {
        hits: hits
            .into_iter()
            .map(|h| Hit {
                snippet: h.marked("[", "]"),
                message: h.message,
            })
            .collect(),
    }))
}

/// The org roster this node holds (members, devices, channels, policy).
#[utoipa::path(get, path = "/v1/roster",
    responses((status = 200, description = "The roster, or null before this device has one", body = Object), (status = 401, body = ErrorBody)),
    security(("token" = ["read"])))]
async fn roster(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    auth(&s, &headers, Scope::Read)?;
    Ok(Json(s.node.roster().await?).into_response())
}

/// Members' statuses ("In a meeting", "On leave until Monday"): those set and not ended.
#[utoipa::path(get, path = "/v1/statuses",
    responses((status = 200, description = "member, text, until (ms since the epoch, absent when it does not end) and set_at of each", body = Object), (status = 401, body = ErrorBody)),
    security(("token" = ["read"])))]
async fn statuses(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    auth(&s, &headers, Scope::Read)?;
    Ok(Json(serde_json::json!({ "statuses": s.node.statuses().await? })).into_response())
}

/// Devices of the org connected now.
#[utoipa::path(get, path = "/v1/peers",
    responses((status = 200, description = "device, name, addr, roster_version of each", body = Object), (status = 401, body = ErrorBody)),
    security(("token" = ["read"])))]
async fn peers(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    auth(&s, &headers, Scope::Read)?;
    Ok(Json(serde_json::json!({ "peers": s.node.peers().await? })).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Resume after this event id (as `Last-Event-ID` does).
    after: Option<u64>,
}

/// Server-Sent Events: `message`, `roster`, `peer_connected`, `peer_disconnected`,
/// `presence`, `removed`, `delivered`, `status`, and `gap` when events since the given id are no
/// longer kept. Each has an `id`; reconnect with `Last-Event-ID` (or `?after=`) to resume.
#[utoipa::path(get, path = "/v1/events", params(EventsQuery),
    responses((status = 200, description = "text/event-stream; each data is an ApiEvent", content_type = "text/event-stream", body = ApiEvent), (status = 401, body = ErrorBody)),
    security(("token" = ["read"])))]
async fn stream(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    auth(&s, &headers, Scope::Read)?;
    let Query(q) = q?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .or(q.after);
    let feed =
        s.events.feed(after).await.ok_or_else(|| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the node is stopping")
        })?;
    /// Counts the client while its stream lives.
    struct Client(Arc<Metrics>);
    impl Drop for Client {
        fn drop(&mut self) {
            self.0.stream_clients.dec();
        }
    }
    s.metrics.stream_clients.inc();
    let client = Client(s.metrics.clone());
    // A client too slow for the live channel gets what it missed from the log; only what
    // the log no longer keeps comes as a `gap`.
    let events = futures::stream::unfold((feed, client), |(mut feed, client)| async move {
        let item = feed.next().await?;
        Some((item, (feed, client)))
    })
    .map(|(id, ev)| {
        let e = SseEvent::default().event(ev.kind());
        let e = if id > 0 { e.id(id.to_string()) } else { e };
        Ok::<_, std::convert::Infallible>(e.json_data(&*ev).unwrap_or_default())
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Whether a request names this host as a loopback client does (`Host: 127.0.0.1:7480`,
/// `[::1]:7480`, `localhost:7480`). Why: a web page in a browser on this machine can
/// reach the loopback API under a name of its own that it points at 127.0.0.1 (DNS
/// rebinding); the browser then sends that name as the Host, and the loopback address
/// alone would let the page read what is open to local programs (the metrics name the
/// org's members and devices).
fn named_as_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        // HTTP/1.0 without a Host: no browser sends that.
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Prometheus metrics. Open from loopback (asked for as loopback, not under another name);
/// from elsewhere a `read` token is needed.
#[utoipa::path(get, path = "/metrics",
    responses((status = 200, description = "Prometheus metrics (OpenMetrics text)", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn metrics(
    State(s): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !from.ip().is_loopback() || !named_as_loopback(&headers) {
        auth(&s, &headers, Scope::Read)?;
    }
    if let Ok(p) = s.node.peers().await {
        s.metrics.peers.set(p.len() as i64);
    }
    s.metrics
        .store_bytes
        .set(s.node.store().size_on_disk() as i64);
    s.metrics.records.set(s.node.store().message_count() as i64);
    if let Ok(ix) = s.node.search_stats().await {
        s.metrics.index_bytes.set(ix.bytes as i64);
        s.metrics.indexed.set(ix.messages as i64);
    }
    if let Ok(report) = s.node.diagnose().await {
        // Devices that left the roster leave the metric too.
        s.metrics.peer_lag.clear();
        s.metrics.device_pace.clear();
        s.metrics.device_bytes.clear();
        s.metrics
            .disk_free
            .set(report.disk_free.map_or(-1, |b| b as i64));
        for d in report.devices {
            let label = events::PeerLabel {
                member: d.member,
                device: d.device.to_string(),
            };
            if let Some(n) = d.missing {
                s.metrics.peer_lag.get_or_create(&label).set(n as i64);
            }
            s.metrics
                .device_pace
                .get_or_create(&label)
                .set(d.messages_last_minute as i64);
            s.metrics
                .device_bytes
                .get_or_create(&label)
                .set(d.bytes_last_minute as i64);
        }
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &s.registry)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Majlis local API", description = "The HTTP API of `majlisd run --http`. See docs/api.md."),
    paths(messages, removed, post_message, message, thread, threads, reply, forward, post_poll, vote, close_poll, edit, delete, react, unreact, pin, unpin, details, set_topic, hook, channels, search, files, upload, download, roster, peers, statuses, stream, metrics),
    components(schemas(ErrorBody, ApiMessage, Messages, Removal, Removals, NewMessage, NewReply, NewForward, NewPoll, PollChoice, NewVote, NewReaction, NewTopic, ChannelDetails, Posted, ChannelInfo, Channels, Hit, Hits, ThreadItem, Threads, ApiEvent, Order)),
    modifiers(&BearerToken, &Errors)
)]
pub struct ApiDoc;

struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "token",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// Every answer an endpoint can give, in the document: the error statuses each may return
/// (`{"error": …}`), and what a message id and an emoji look like, so that a client generated
/// from the document (or a fuzzer checking it, such as schemathesis) meets no surprise.
struct Errors;

impl utoipa::Modify for Errors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            path::ParameterIn, schema::ObjectBuilder, ContentBuilder, Ref, RefOr, ResponseBuilder,
            Type,
        };
        let error = |what: &str| {
            ResponseBuilder::new()
                .description(what)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        let string = |pattern: &str| {
            RefOr::T(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(pattern))
                    .into(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                let mut add = vec![
                    ("400", "bad input: a malformed id, query or body"),
                    ("404", "no such channel, message or endpoint (here)"),
                    ("409", "not now: no roster yet, or the target's state forbids it (already pinned, deleted)"),
                    ("503", "the node is stopping, or its disk failed"),
                    ("507", "the disk is full: nothing was written"),
                ];
                if op.security.is_some() || op.operation_id.as_deref() == Some("hook") {
                    add.push(("401", "no token, or an unknown or revoked one"));
                    add.push(("403", "the token lacks the scope, or the member the right"));
                }
                if op.request_body.is_some() {
                    add.push(("413", "the body is too large"));
                    add.push(("415", "the body's Content-Type is not the one documented"));
                }
                for (code, what) in add {
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| RefOr::T(error(what)));
                }
                for p in op.parameters.iter_mut().flatten() {
                    match (&p.parameter_in, p.name.as_str()) {
                        (ParameterIn::Path, "id") | (ParameterIn::Query, "before") => {
                            // The whole id, or its first digits as `history --ids` shows them.
                            let digits = MessageId::SHORT_MIN;
                            p.schema = Some(string(&format!("^[0-9a-fA-F]{{{digits},64}}$")))
                        }
                        (ParameterIn::Path, "emoji") => {
                            p.schema = Some(string(r"^[^\s\x00-\x1f\x7f-\x9f]{1,8}$"))
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// The OpenAPI 3 document of this API (no token needed).
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
