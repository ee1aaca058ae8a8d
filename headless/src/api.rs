//! The local API of a running node: JSON lines over a Unix socket in the data directory.
//!
//! The socket is created with owner-only permissions inside the owner-only data directory, so
//! only the user who runs the node can drive it. One request per line, one response per line;
//! but for [`Request::Follow`], answered by a line each time a message arrives, until the
//! client hangs up.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use majlis_core::conversation::Receipt;
use majlis_core::node::{FileStatus, Stats};
use majlis_core::roster::{ReadReceipts, VerifiedRoster};
use majlis_core::store::Store;
use majlis_core::{DeviceId, MessageId, Node, PeerInfo, RosterChange, StoredMessage};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Send {
        channel: String,
        text: String,
    },
    History {
        channel: String,
        limit: usize,
        /// The page before this message (`history --before`); absent: the newest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<MessageId>,
    },
    /// Every message of `channel` this node shows from now on (replies, edits, reactions and
    /// the other acts too; not read receipts): an empty `History` at once (the subscription
    /// stands), then a `History` of one message each time one arrives, until the client
    /// closes the connection (`history --follow`).
    Follow {
        channel: String,
    },
    Reply {
        message: MessageId,
        text: String,
        also_channel: bool,
    },
    Forward {
        message: MessageId,
        to: String,
    },
    /// Ask `question` in `channel` with `options` (`multi`: several may be chosen).
    Poll {
        channel: String,
        question: String,
        options: Vec<String>,
        multi: bool,
    },
    /// Vote in the poll `message` (`choices`: option indices from 0; none takes it back).
    Vote {
        message: MessageId,
        choices: Vec<usize>,
    },
    ClosePoll {
        message: MessageId,
    },
    /// Send `text` in `channel` at `at` (ms since the epoch).
    SendLater {
        channel: String,
        text: String,
        at: u64,
    },
    /// Take a message for later off the schedule.
    Unschedule {
        id: u64,
    },
    /// The messages for later.
    Scheduled,
    /// Remind this member of `message` at `at` (ms since the epoch).
    Remind {
        message: MessageId,
        at: u64,
    },
    /// Take a reminder off the list.
    Unremind {
        id: u64,
    },
    /// The reminders waiting.
    Reminders,
    /// Save a message for later, or take it off the list (`on`: false).
    Bookmark {
        message: MessageId,
        on: bool,
    },
    Edit {
        message: MessageId,
        text: String,
    },
    Delete {
        message: MessageId,
    },
    React {
        message: MessageId,
        emoji: String,
        on: bool,
    },
    Thread {
        message: MessageId,
    },
    /// The whole id of the message whose id starts with `prefix` (the CLI's short ids).
    Resolve {
        prefix: String,
    },
    Pin {
        message: MessageId,
        on: bool,
    },
    Topic {
        channel: String,
        topic: String,
        description: String,
    },
    Join {
        channel: String,
        on: bool,
    },
    /// A channel's topic, description, pinned messages and who left it.
    Details {
        channel: String,
    },
    Search {
        query: String,
        limit: usize,
        relevance: bool,
    },
    /// The threads this member takes part in.
    Threads {
        limit: usize,
    },
    Peers,
    /// Set this member's status (`text` empty: clear it).
    SetStatus {
        text: String,
        until: Option<u64>,
    },
    /// Members' statuses.
    Statuses,
    Roster,
    /// The channels this member may read (`channel list`).
    Channels,
    Audit,
    /// One roster version with these changes.
    ChangeRoster {
        changes: Vec<RosterChange>,
    },
    Stats,
    Status,
    Diagnose,
    /// Invite newcomers over mDNS until a time (unix ms), or stop (`None`).
    Invite {
        until: Option<u64>,
    },
    /// Apply retention and erasure now.
    Sweep,
    Export {
        spec: majlis_core::export::Spec,
    },
    /// Share the file at `path` (absolute: the daemon's working directory is not the CLI's).
    Share {
        channel: String,
        path: std::path::PathBuf,
        caption: String,
    },
    Files,
    /// Start fetching the file that message `message` shares.
    Fetch {
        message: MessageId,
    },
    /// Decrypt the (complete) file of `message` into `out`.
    Save {
        message: MessageId,
        out: std::path::PathBuf,
    },
}

/// `majlisd status`: the node at a glance.
#[derive(Debug, Serialize, Deserialize)]
pub struct Status {
    pub running: bool,
    pub device: String,
    pub member: Option<String>,
    /// The org's id (what a joining colleague types) and its name, once known.
    #[serde(default)]
    pub org: Option<String>,
    #[serde(default)]
    pub org_name: Option<String>,
    pub roster_version: u64,
    pub uptime_secs: u64,
    /// Names of the connected devices' members.
    pub peers: Vec<String>,
    pub listen: Vec<String>,
    pub accepted: u64,
    pub rejected: u64,
    /// Message records held, every channel's (key grants included).
    pub records: usize,
    pub store_bytes: u64,
    /// Free bytes on the data directory's disk, when measurable; below `MAJLIS_MIN_FREE_MB`
    /// nothing new is stored.
    #[serde(default)]
    pub disk_free: Option<u64>,
    /// That margin, in bytes.
    #[serde(default)]
    pub disk_margin: u64,
    /// The search index (in memory while running; `None` when not running).
    #[serde(default)]
    pub index: Option<IndexStatus>,
    /// While this device is in an org but not on its roster: the code its admin compares
    /// before adding it ([`majlis_core::identity::join_code`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_code: Option<String>,
}

/// The join code to show while `device` waits to be added to `org`'s roster.
pub fn waiting_code(
    org: Option<majlis_core::OrgId>,
    device: &majlis_core::DeviceId,
    member: Option<&str>,
) -> Option<String> {
    match (org, member) {
        (Some(org), None) => Some(majlis_core::identity::join_code(&org, device)),
        _ => None,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexStatus {
    pub messages: u64,
    pub bytes: u64,
}

/// A search result: the message as history shows it, and the text around the match with
/// the matches in [brackets].
#[derive(Debug, Serialize, Deserialize)]
pub struct SearchHit {
    pub message: StoredMessage,
    pub snippet: String,
    /// The message's channel as people know it (an admin may have renamed it; the
    /// message's `channel` is its name on the wire).
    #[serde(default)]
    pub shown: String,
}

impl SearchHit {
    /// `h`, its channel named as `roster` shows it.
    pub fn of(h: majlis_core::search::Hit, roster: Option<&VerifiedRoster>) -> Self {
        SearchHit {
            shown: majlis_core::roster::shown_in(roster, &h.message.channel).to_string(),
            snippet: h.marked("[", "]"),
            message: h.message,
        }
    }
}

/// A thread as `majlisd threads` lists it: the thread, and its channel as people know it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadLine {
    #[serde(flatten)]
    pub thread: majlis_core::conversation::ThreadSummary,
    pub shown: String,
}

impl ThreadLine {
    /// `t`, its channel named as `roster` shows it.
    pub fn of(
        t: majlis_core::conversation::ThreadSummary,
        roster: Option<&VerifiedRoster>,
    ) -> Self {
        ThreadLine {
            shown: majlis_core::roster::shown_in(roster, &t.root.channel).to_string(),
            thread: t,
        }
    }
}

/// A channel's receipt marks as `history` needs them (see [`Receipt::of`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Marks {
    /// This device's member name; `None` before a roster names it (nothing is ours then).
    pub me: Option<String>,
    pub delivered: Vec<(String, u64)>,
    pub read: Vec<(String, u64)>,
    /// The org's read-receipt setting (delivered ticks stay when it is off).
    pub read_receipts: bool,
    /// Members' full names (`Roster::full_names`), to show authors as people see them.
    /// Absent from a node of an earlier release: roster names only.
    #[serde(default)]
    pub full_names: Vec<(String, String)>,
}

impl Marks {
    /// The marks of `channel` (resolved, as the store files it) for `device`.
    pub fn of(
        head: Option<&VerifiedRoster>,
        device: &DeviceId,
        store: &Store,
        channel: &str,
    ) -> majlis_core::Result<Marks> {
        let full_names = head.map_or(Vec::new(), |h| h.roster.full_names.clone());
        let Some(me) = head.and_then(|h| h.member_of_device(device)) else {
            return Ok(Marks {
                full_names,
                ..Marks::default()
            });
        };
        Ok(Marks {
            full_names,
            me: Some(me.name.clone()),
            delivered: store.delivered_marks(channel)?,
            read: store.read_marks(channel)?,
            read_receipts: head
                .is_some_and(|h| h.roster.governance.read_receipts == ReadReceipts::On),
        })
    }

    /// The receipt of `m` if it is ours (a deleted message shows none).
    pub fn receipt(&self, m: &StoredMessage) -> Option<Receipt> {
        let me = self.me.as_deref()?;
        (m.sender == me && !m.deleted).then(|| {
            Receipt::of(
                m.sent_at,
                me,
                &self.delivered,
                &self.read,
                self.read_receipts,
            )
        })
    }

    /// `m` as `history --json` and the HTTP API show it: with its receipt if it is ours.
    pub fn row(&self, m: StoredMessage) -> Row {
        Row {
            receipt: self.receipt(&m),
            sender_name: self
                .full_names
                .iter()
                .find(|(n, _)| *n == m.sender)
                .map(|(_, f)| f.clone()),
            message: m,
        }
    }
}

/// A message with `delivered_to` and `read_by` beside its own fields when it is ours, and
/// its author's full name when an admin gave them one.
#[derive(Debug, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub message: StoredMessage,
    #[serde(flatten)]
    pub receipt: Option<Receipt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Sent {
        id: MessageId,
    },
    /// To a `follow`: the node's events came faster than this stream took them, and `events`
    /// of them (of any channel) were dropped; the history has whatever arrived.
    Missed {
        events: u64,
    },
    Resolved {
        id: MessageId,
    },
    History {
        messages: Vec<StoredMessage>,
        /// The channel's receipt marks, to show who holds and who read our own messages.
        /// Absent from a node of an earlier release: no receipts shown.
        #[serde(default)]
        marks: Marks,
    },
    Details {
        details: majlis_core::conversation::Details,
        pinned: Vec<StoredMessage>,
        /// Who may read and post there (people and bots; relays and archives not named).
        #[serde(default)]
        members: Vec<String>,
    },
    Search {
        hits: Vec<SearchHit>,
    },
    Peers {
        peers: Vec<PeerInfo>,
    },
    Channels {
        channels: Vec<majlis_core::conversation::ChannelRow>,
    },
    Roster {
        roster: Option<majlis_core::Roster>,
    },
    Audit {
        entries: Vec<majlis_core::roster::AuditEntry>,
        /// This device's signed action log (exports).
        #[serde(default)]
        actions: Vec<majlis_core::store::LoggedAction>,
    },
    Swept {
        report: majlis_core::node::SweepReport,
    },
    Exported {
        manifest: Box<majlis_core::export::Manifest>,
    },
    RosterChanged {
        version: u64,
    },
    Stats {
        stats: Stats,
    },
    Status {
        status: Status,
    },
    Diagnosis {
        report: majlis_core::diagnose::Report,
    },
    Files {
        files: Vec<FileStatus>,
    },
    File {
        file: FileStatus,
    },
    Saved {
        path: std::path::PathBuf,
    },
    Statuses {
        statuses: Vec<majlis_core::status::MemberStatus>,
    },
    Bookmarked {
        on: bool,
    },
    Reminders {
        reminders: Vec<majlis_core::node::Reminder>,
    },
    Threads {
        threads: Vec<ThreadLine>,
    },
    /// Messages for later: the one just kept or cancelled, or all that wait.
    Scheduled {
        scheduled: Vec<majlis_core::node::Scheduled>,
    },
    /// An invitation opened until a time, or closed (`None`).
    Invited {
        until: Option<u64>,
        org_name: String,
    },
    Error {
        message: String,
    },
}

/// Connect to the node running for `dir`, if there is one.
pub fn connect(socket: &Path) -> Option<std::os::unix::net::UnixStream> {
    std::os::unix::net::UnixStream::connect(socket).ok()
}

pub fn call(stream: std::os::unix::net::UnixStream, req: &Request) -> Result<Response> {
    let mut w = stream.try_clone()?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    w.write_all(line.as_bytes())?;
    let mut resp = String::new();
    BufReader::new(stream)
        .read_line(&mut resp)
        .context("reading from majlisd")?;
    if resp.is_empty() {
        return Err(anyhow!(
            "majlisd closed the connection; is it shutting down?"
        ));
    }
    match serde_json::from_str(&resp)? {
        Response::Error { message } => Err(anyhow!(message)),
        r => Ok(r),
    }
}

/// A request on the socket is at most this long. Why: a line is read whole before it is
/// parsed, and a client that never ends one (a bug, or a stray `cat` of a large file into
/// the socket) grew the node's memory without end. The largest request, a message of at
/// most 32 KiB of text or a list of names, is far below.
pub const MAX_REQUEST: usize = 1 << 20;

/// The requests of one client, a line each, none longer than [`MAX_REQUEST`].
struct Requests {
    r: tokio::io::BufReader<tokio::net::unix::OwnedReadHalf>,
    /// What has come of the next line; kept here, so a `next` cancelled midway (the
    /// follower's `select!`) loses nothing.
    line: Vec<u8>,
}

impl Requests {
    /// The next line, `None` at the end, or an error that says what was wrong with it.
    async fn next(&mut self) -> std::io::Result<Option<String>> {
        loop {
            let have = self.r.fill_buf().await?;
            // The end: a last request without its newline is still one (as `lines()` took it).
            if have.is_empty() {
                return match self.line.is_empty() {
                    true => Ok(None),
                    false => Self::text(std::mem::take(&mut self.line)).map(Some),
                };
            }
            let (taken, end) = match have.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (have.len(), false),
            };
            self.line.extend_from_slice(&have[..taken]);
            self.r.consume(taken);
            if self.line.len() > MAX_REQUEST + 1 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "a request over {} KiB; send one JSON object a line",
                        MAX_REQUEST / 1024
                    ),
                ));
            }
            if end {
                let mut line = std::mem::take(&mut self.line);
                line.pop();
                return Self::text(line).map(Some);
            }
        }
    }

    fn text(line: Vec<u8>) -> std::io::Result<String> {
        String::from_utf8(line).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a request that is not UTF-8 text",
            )
        })
    }
}

/// Serve the API until the listener is dropped.
pub async fn serve(listener: tokio::net::UnixListener, node: Node) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let node = node.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = Requests {
                r: tokio::io::BufReader::new(r),
                line: Vec::new(),
            };
            loop {
                let line = match lines.next().await {
                    Ok(Some(line)) => line,
                    Ok(None) => break,
                    // Said, then the connection closed: what follows cannot be told apart.
                    Err(e) => {
                        let message = format!("bad request: {e}");
                        let _ = send_line(&mut w, &Response::Error { message }).await;
                        break;
                    }
                };
                let resp = match serde_json::from_str::<Request>(&line) {
                    Ok(Request::Follow { channel }) => {
                        follow(&node, &channel, &mut lines, &mut w).await;
                        break;
                    }
                    Ok(req) => handle(&node, req).await,
                    Err(e) => Response::Error {
                        message: format!("bad request: {e}"),
                    },
                };
                if send_line(&mut w, &resp).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Where a page of `channel`'s history before message `before` ends (its time and id), or
/// `None` for the newest; a message of another channel, or none here, is an error.
pub fn page_end(
    store: &Store,
    channel: &str,
    before: Option<MessageId>,
) -> majlis_core::Result<Option<(u64, MessageId)>> {
    let Some(id) = before else {
        return Ok(None);
    };
    match store.message(&id)? {
        Some(m) if m.channel == channel => Ok(Some((m.sent_at, m.id))),
        Some(_) => Err(majlis_core::Error::Invalid(format!(
            "message {} is not in that conversation",
            id.short()
        ))),
        None => Err(majlis_core::Error::Invalid(format!(
            "no message {id} on this device"
        ))),
    }
}

/// [`Request::Follow`]: the messages of `channel` this node shows, one line each, until the
/// client hangs up (its end of the socket reads as closed) or the node stops.
async fn follow(
    node: &Node,
    channel: &str,
    client: &mut Requests,
    w: &mut tokio::net::unix::OwnedWriteHalf,
) {
    // Subscribed before the first answer, so nothing shown after it is missed.
    let mut events = node.subscribe();
    // Only what `history` would show: a channel this member may read, checked again for
    // each message (taken off it, the stream ends with the reason).
    let wire = match node.readable(channel) {
        Ok(wire) => wire,
        Err(e) => {
            let message = e.to_string();
            let _ = send_line(w, &Response::Error { message }).await;
            return;
        }
    };
    let standing = Response::History {
        messages: Vec::new(),
        marks: Marks::default(),
    };
    if send_line(w, &standing).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(majlis_core::Event::Message(m))
                    if m.channel == wire && !m.act.as_ref().is_some_and(|a| a.is_quiet()) =>
                {
                    let line = match node.readable(channel) {
                        Ok(_) => Response::History {
                            messages: vec![*m],
                            marks: Marks::default(),
                        },
                        Err(e) => {
                            let message = e.to_string();
                            let _ = send_line(w, &Response::Error { message }).await;
                            return;
                        }
                    };
                    if send_line(w, &line).await.is_err() {
                        return;
                    }
                }
                // Said, never skipped silently: the follower knows to read the history.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(events)) => {
                    if send_line(w, &Response::Missed { events }).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            // Anything from the client but more lines: it has gone.
            line = client.next() => if !matches!(line, Ok(Some(_))) {
                return;
            },
        }
    }
}

async fn send_line(w: &mut tokio::net::unix::OwnedWriteHalf, resp: &Response) -> Result<()> {
    let mut out = serde_json::to_string(resp)
        .unwrap_or_else(|e| format!("{{\"error\":{{\"message\":\"{e}\"}}}}"));
    out.push('\n');
    w.write_all(out.as_bytes()).await?;
    Ok(())
}

async fn handle(node: &Node, req: Request) -> Response {
    let res: majlis_core::Result<Response> = async {
        Ok(match req {
            Request::Send { channel, text } => Response::Sent {
                id: node.send(&channel, &text).await?,
            },
            Request::Reply {
                message,
                text,
                also_channel,
            } => Response::Sent {
                id: node.reply(&message, &text, also_channel).await?,
            },
            Request::SendLater { channel, text, at } => Response::Scheduled {
                scheduled: vec![node.send_later(&channel, &text, at).await?],
            },
            Request::Remind { message, at } => Response::Reminders {
                reminders: vec![node.remind(&message, at).await?],
            },
            Request::Unremind { id } => Response::Reminders {
                reminders: vec![node.cancel_reminder(id).await?],
            },
            Request::Threads { limit } => {
                let roster = node.roster_now();
                Response::Threads {
                    threads: node
                        .threads(limit)
                        .await?
                        .into_iter()
                        .map(|t| ThreadLine::of(t, roster.as_deref()))
                        .collect(),
                }
            }
            Request::Reminders => Response::Reminders {
                reminders: node.reminders(),
            },
            Request::Scheduled => Response::Scheduled {
                scheduled: node.scheduled(),
            },
            Request::Unschedule { id } => Response::Scheduled {
                scheduled: vec![node.cancel_scheduled(id).await?],
            },
            Request::Bookmark { message, on } => {
                node.save_for_later(&message, on).await?;
                Response::Bookmarked { on }
            }
            Request::Forward { message, to } => Response::Sent {
                id: node.forward(&message, &to).await?,
            },
            Request::Poll {
                channel,
                question,
                options,
                multi,
            } => Response::Sent {
                id: node.poll(&channel, &question, &options, multi).await?,
            },
            Request::Vote { message, choices } => Response::Sent {
                id: node.vote(&message, &choices).await?,
            },
            Request::ClosePoll { message } => Response::Sent {
                id: node.close_poll(&message).await?,
            },
            Request::Edit { message, text } => Response::Sent {
                id: node.edit(&message, &text).await?,
            },
            Request::Delete { message } => Response::Sent {
                id: node.delete(&message).await?,
            },
            Request::React { message, emoji, on } => Response::Sent {
                id: node.react(&message, &emoji, on).await?,
            },
            Request::Pin { message, on } => Response::Sent {
                id: node.pin(&message, on).await?,
            },
            Request::Topic {
                channel,
                topic,
                description,
            } => Response::Sent {
                id: node.set_topic(&channel, &topic, &description).await?,
            },
            Request::Join { channel, on } => Response::Sent {
                id: node.join(&channel, on).await?,
            },
            Request::Details { channel } => {
                let resolved = node.readable(&channel)?;
                let (details, pinned) = node.details_and_pinned(&resolved)?;
                let members = node
                    .roster_now()
                    .map(|h| {
                        h.roster
                            .readers(&resolved)
                            .filter(|m| !m.role.stores_all())
                            .map(|m| m.name.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                Response::Details {
                    details,
                    pinned,
                    members,
                }
            }
            Request::Resolve { prefix } => Response::Resolved {
                id: node.store().message_by_prefix(&prefix)?,
            },
            Request::Thread { message } => {
                let messages = node.thread(&message)?;
                if messages.is_empty() {
                    return Err(majlis_core::Error::Invalid(format!(
                        "no message {message} on this device"
                    )));
                }
                let marks = history_marks(node, &messages[0].channel)?;
                Response::History { messages, marks }
            }
            Request::Search {
                query,
                limit,
                relevance,
            } => {
                let hits = node.search(&query, crate::search_order(relevance), limit).await?;
                let roster = node.roster_now();
                Response::Search {
                    hits: hits
                        .into_iter()
                        .map(|h| SearchHit::of(h, roster.as_deref()))
                        .collect(),
                }
            }
            // Streamed by the connection's loop (`follow`), never handled as one answer.
            Request::Follow { .. } => Response::Error {
                message: "follow is answered as a stream, not as one answer".into(),
            },
            Request::History {
                channel,
                limit,
                before,
            } => Response::History {
                messages: node.history_before(
                    &channel,
                    page_end(node.store(), &node.readable(&channel)?, before)?,
                    limit,
                )?,
                marks: history_marks(node, &node.resolve(&channel)?)?,
            },
            Request::Peers => Response::Peers {
                peers: node.peers().await?,
            },
            Request::Audit => Response::Audit {
                entries: node.audit().await?,
                actions: node.actions()?,
            },
            Request::Sweep => Response::Swept {
                report: node.sweep().await?,
            },
            Request::Export { spec } => Response::Exported {
                manifest: Box::new(node.export(spec).await?),
            },
            Request::SetStatus { text, until } => {
                node.set_status(&text, until).await?;
                Response::Statuses {
                    statuses: node.statuses().await?,
                }
            }
            Request::Statuses => Response::Statuses {
                statuses: node.statuses().await?,
            },
            Request::Channels => Response::Channels {
                channels: node.channels()?,
            },
            Request::Roster => Response::Roster {
                roster: node.roster().await?,
            },
            Request::ChangeRoster { changes } => Response::RosterChanged {
                version: node.change_roster_all(changes).await?,
            },
            Request::Stats => Response::Stats {
                stats: node.stats().await?,
            },
            Request::Status => {
                let (report, stats) = (node.diagnose().await?, node.stats().await?);
                Response::Status {
                    status: Status {
                        running: true,
                        device: report.device.to_string(),
                        member: report.member.clone(),
                        org: node.store().org()?.map(|o| o.to_string()),
                        org_name: node.roster_now().map(|r| r.roster.name.clone()),
                        roster_version: report.roster_version,
                        uptime_secs: report.uptime_secs,
                        peers: node.peers().await?.into_iter().map(|p| p.name).collect(),
                        listen: report.listen.clone(),
                        accepted: stats.accepted,
                        rejected: stats.rejected.values().sum(),
                        records: node.store().message_count(),
                        store_bytes: node.store().size_on_disk(),
                        disk_free: report.disk_free,
                        disk_margin: report.disk_margin,
                        index: node.search_stats().await.ok().map(|i| IndexStatus {
                            messages: i.messages,
                            bytes: i.bytes,
                        }),
                        join_code: waiting_code(
                            node.store().org()?,
                            &report.device,
                            report.member.as_deref(),
                        ),
                    },
                }
            }
            Request::Invite { until } => {
                node.invite(until).await?;
                Response::Invited {
                    until,
                    org_name: node
                        .roster_now()
                        .map(|r| r.roster.name.clone())
                        .unwrap_or_default(),
                }
            }
            Request::Diagnose => Response::Diagnosis {
                report: node.diagnose().await?,
            },
            Request::Share {
                channel,
                path,
                caption,
            } => Response::Sent {
                id: node.share_file(&channel, &path, &caption).await?,
            },
            Request::Files => Response::Files {
                files: node.files().await?,
            },
            Request::Fetch { message } => {
                let Some((blob, _, _)) = node.store().file_of(&message)? else {
                    // `majlisd files` lists the files' contents by their own id: an easy
                    // one to pass here by mistake.
                    let contents = node.files().await?.iter().any(|f| f.blob.0 == message.0);
                    return Err(majlis_core::Error::Invalid(match contents {
                        true => format!(
                            "{message} is the id of a file's contents (as `majlisd files` lists them); `get` takes the id of the message that shared it: `share` prints it, `history --json` shows it"
                        ),
                        false => format!("message {message} is not a file this device can open"),
                    }));
                };
                Response::File {
                    file: node.fetch_file(blob.id).await?,
                }
            }
            Request::Save { message, out } => {
                node.save_file(&message, &out).await?;
                Response::Saved { path: out }
            }
        })
    }
    .await;
    res.unwrap_or_else(|e| Response::Error {
        message: match crate::advice(&e) {
            Some(a) => format!("{e}; {a}"),
            None => e.to_string(),
        },
    })
}

/// The receipt marks of `channel` (resolved) as the running node holds them.
pub(crate) fn history_marks(node: &Node, channel: &str) -> majlis_core::Result<Marks> {
    let head = node.roster_now();
    Marks::of(head.as_deref(), &node.device_id(), node.store(), channel)
}
