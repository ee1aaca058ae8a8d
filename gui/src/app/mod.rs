//! The app: `logic` drains node events and command replies without blocking; `draw` only
//! draws and emits commands, which run on the tokio runtime and report back through a
//! channel. Background events wake the UI with `request_repaint`, so an idle window costs
//! nothing.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use eframe::egui::{self, Align, Color32, Layout, RichText};
use majlis_core::conversation::{Hours, Notify};
use majlis_core::roster::{
    dm_channel, dm_members, is_dm, notes_channel, notes_of, AuditEntry, DmPolicy, Policy,
    VerifiedRoster,
};
use majlis_core::store::FileView;
use majlis_core::{
    Config, DeviceId, Event, MessageId, Node, PeerInfo, Profile, Role, RosterChange, StoredMessage,
};
use serde::{Deserialize, Serialize};

use crate::i18n::{say_error, tr, tr_with, Lang};
use crate::text;

mod admin;
mod chat;
mod format;
mod logic;
mod network;
mod onboarding;
mod people;
pub mod preview;
mod search;
mod sidebar;

use format::*;
use sidebar::sidebar_keys;

/// How the app was started.
#[derive(Debug, Clone)]
pub struct Options {
    pub data: PathBuf,
    pub config: Config,
    /// Open this view at start: `#CHANNEL`, `@NAME`, `people`, `network` or `admin`.
    pub open: Option<String>,
    pub lang: Option<Lang>,
    pub theme: Option<Theme>,
}

/// What the app remembers between runs (persisted by eframe next to the data directory).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub lang: Lang,
    /// Unsent text per channel.
    pub drafts: HashMap<String, String>,
    /// Per channel, the `sent_at` of the newest message the user has seen.
    pub last_read: HashMap<String, u64>,
    /// Per channel the member marked unread from a message ("Mark unread"), that message's
    /// `sent_at`: the conversation counts as unread from there, whatever was read here or on
    /// another device, until it is opened again (here or on another of the member's devices).
    pub unread_from: HashMap<String, u64>,
    /// Per conversation, when it was last marked unread or opened again, on this device's
    /// clock or by the act's `sent_at` from another device of the member (as `notify_at`).
    pub unread_at: HashMap<String, u64>,
    /// Per device id, when it was last connected (ms since the epoch).
    pub last_seen: HashMap<String, u64>,
    pub selected: Option<String>,
    /// Conversations the user starred: listed first in the sidebar, under "Starred" (on
    /// each of the member's devices).
    pub starred: std::collections::BTreeSet<String>,
    /// Per conversation, when it was last starred or unstarred (as `notify_at`).
    pub starred_at: HashMap<String, u64>,
    /// Per thread (its first message's id), the `sent_at` of the newest reply shown in its
    /// panel here: a later one is new in the Threads view.
    pub threads_seen: HashMap<String, u64>,
    /// Channels and DMs the user muted: no desktop notification, unread counts shown quietly.
    pub muted: std::collections::BTreeSet<String>,
    /// Channels whose every message raises a desktop notification (not only mentions).
    pub everything: std::collections::BTreeSet<String>,
    /// Per conversation, when how it notifies was last chosen, on this device's clock or by
    /// the act's `sent_at` from another device of the member: an older act changes nothing.
    pub notify_at: HashMap<String, u64>,
    /// When this member's devices raise desktop notifications (`None`: any time); the same
    /// on each of their devices.
    pub hours: Option<Hours>,
    /// When `hours` was set, as `paused_at` is for a pause.
    pub hours_at: u64,
    pub theme: Theme,
    /// Peers the user added by address in the network view, as typed (a host name is
    /// resolved before each dial): dialled at every start, as `--peer` ones are.
    pub peers: Vec<String>,
    /// Desktop notifications paused until this time (ms since the epoch; `u64::MAX`: until
    /// the user resumes them). Messages still arrive and count as unread.
    pub paused_until: Option<u64>,
    /// When the pause (or resume) in force was set, on this device's clock or by its act's
    /// `sent_at` from another device of the member: an older act changes nothing.
    pub paused_at: u64,
}

/// Light or dark: the user's choice, kept between runs (dark by default: the app's first
/// look, and what most people pick for a window open all day).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Theme {
    #[default]
    Dark,
    Light,
}

impl Theme {
    fn egui(self) -> egui::Theme {
        match self {
            Theme::Dark => egui::Theme::Dark,
            Theme::Light => egui::Theme::Light,
        }
    }
}

/// The type scale and spacing of both themes: a larger heading, body text a little above
/// egui's default for reading all day, small text for times and ticks, room between items.
fn style(ctx: &egui::Context) {
    use egui::{FontId, TextStyle};
    ctx.all_styles_mut(|s| {
        s.text_styles = [
            (TextStyle::Heading, FontId::proportional(21.0)),
            (TextStyle::Body, FontId::proportional(14.5)),
            (TextStyle::Button, FontId::proportional(14.0)),
            (TextStyle::Small, FontId::proportional(11.0)),
            (TextStyle::Monospace, FontId::monospace(13.0)),
        ]
        .into();
        s.spacing.item_spacing = egui::vec2(8.0, 5.0);
        s.spacing.button_padding = egui::vec2(8.0, 3.0);
        s.visuals.widgets.noninteractive.corner_radius = 6.into();
        s.visuals.widgets.inactive.corner_radius = 6.into();
        s.visuals.widgets.hovered.corner_radius = 6.into();
        s.visuals.widgets.active.corner_radius = 6.into();
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Chat,
    People,
    Network,
    Admin,
}

/// What a view asks for. Views only draw and return actions; `logic.rs` executes them in
/// one place after the frame is drawn.
enum Action {
    Send {
        channel: String,
        text: String,
    },
    /// Keep `text` to send in `channel` at `at`.
    SendLater {
        channel: String,
        text: String,
        at: u64,
    },
    /// Take a message kept for later off the schedule.
    CancelScheduled(u64),
    /// Save a message for later, or take it off the list.
    SaveForLater {
        message: MessageId,
        on: bool,
    },
    /// Forward a message to a channel or `@NAME`.
    Forward {
        message: MessageId,
        to: String,
    },
    /// Set this member's status (empty: clear it), ending at `until` if given.
    SetStatus {
        text: String,
        until: Option<u64>,
    },
    /// One roster version with these changes.
    ChangeRoster(Vec<RosterChange>),
    RefreshAudit,
    /// Peers and the node's diagnosis, again (the Network view's live facts).
    RefreshNetwork,
    /// Invite newcomers on this network until a time (unix ms), or stop.
    Invite(Option<u64>),
    /// Share the file at this path in the channel.
    ShareFile {
        channel: String,
        path: PathBuf,
    },
    /// Share a pasted image (PNG bytes, never written out in the clear).
    ShareImage {
        channel: String,
        name: String,
        png: Vec<u8>,
    },
    /// Download a shared file (its blob).
    FetchFile(majlis_core::files::BlobId),
    /// Show the picture that `message` shares (downloaded), in place of its card alone.
    Preview {
        message: MessageId,
        blob: majlis_core::files::BlobId,
    },
    /// Open that picture as large as the window allows.
    ViewPicture {
        message: MessageId,
        name: String,
    },
    /// Save a downloaded file into the Downloads folder.
    SaveFile {
        message: MessageId,
        name: String,
    },
    /// Ask the node's search index.
    Search(String),
    /// List the threads this member takes part in (the Threads view).
    Threads,
    /// Dial a peer the user gave by address (as typed), and remember it (`State::peers`)
    /// if it is one.
    AddPeer(String),
    /// Add or take back this member's reaction to a message.
    React {
        message: MessageId,
        emoji: String,
        on: bool,
    },
    /// Ask a question in a channel, with options to choose from.
    Poll {
        channel: String,
        question: String,
        options: Vec<String>,
        multi: bool,
    },
    /// Vote in a poll (option indices; none takes the vote back).
    Vote {
        message: MessageId,
        choices: Vec<usize>,
    },
    /// Close a poll (its author, or an admin).
    ClosePoll(MessageId),
    /// Remind this member of a message at a time (ms since the epoch).
    Remind {
        message: MessageId,
        at: u64,
    },
    /// Delete a message (this member's own, or any as an admin).
    Delete(MessageId),
    /// Export this member's own data (JSON, with its files and a manifest) to Downloads.
    ExportMine,
    /// Open the thread of a message beside the conversation.
    OpenThread(MessageId),
    /// Open the conversation at a message (a message link was clicked), with its thread
    /// beside it if it is a reply in one.
    OpenMessage(MessageId),
    /// Count a message's conversation unread from it on, to come back to.
    MarkUnread(MessageId),
    /// Reply in the open thread (`also`: shown in the channel too).
    Reply {
        to: MessageId,
        text: String,
        also: bool,
    },
    /// Start editing one of our messages (its current text), or save the edit.
    StartEdit(MessageId, String),
    Edit {
        message: MessageId,
        text: String,
    },
    /// Pin a message to its channel, or unpin it.
    Pin {
        message: MessageId,
        on: bool,
    },
    /// Set a channel's topic and description.
    SetTopic {
        channel: String,
        topic: String,
        description: String,
    },
    /// Join (`on`) or leave an open channel.
    Join {
        channel: String,
        on: bool,
    },
}

/// A poll being written: its question, its options one a line, whether several may be
/// chosen.
#[derive(Default)]
struct PollDraft {
    question: String,
    options: String,
    multi: bool,
}

/// Results of commands that ran in the background.
enum Reply {
    Sent {
        local: u64,
        result: Result<MessageId, String>,
    },
    /// Connected peers, and the version from which the roster is contested, if it is.
    Peers(Vec<PeerInfo>, Option<u64>),
    /// What the node knows about its reachability (the network view).
    Diagnosis(Box<majlis_core::diagnose::Report>),
    /// The roster's audit log, and this device's own signed action log (exports).
    Audit(Vec<AuditEntry>, Vec<majlis_core::store::LoggedAction>),
    RosterChanged(Result<u64, String>),
    Listen(Vec<majlis_core::Multiaddr>),
    Invited(Result<Option<u64>, String>),
    /// A file share finished (or failed) encrypting and sending.
    Shared(Result<MessageId, String>),
    Files(Vec<majlis_core::node::FileStatus>),
    /// A picture decoded for its preview, or why it cannot be.
    Preview(majlis_core::files::BlobId, Result<preview::Frames, String>),
    /// A desktop notification was clicked: open what it told of (`None`: only the app).
    Opened(Option<String>),
    /// A picture decoded for the viewer.
    Viewed(MessageId, Result<preview::Frames, String>),
    /// A reaction or deletion was sent, or why not.
    Acted(Result<MessageId, String>),
    /// A message was forwarded or a reminder set (what to say), or why not.
    Said(Result<String, String>),
    /// A message was saved for later or taken off the list (what to say), or why not.
    Bookmarked {
        result: Result<String, String>,
    },
    /// A message was kept for later (in this channel; what to say), or cancelled, or why not.
    Scheduled {
        channel: Option<String>,
        result: Result<String, String>,
    },
    /// Where a file was saved, or why not.
    Saved(Result<PathBuf, String>),
    /// A peer typed in the network view was dialled (remember it), or why it is no address.
    PeerAdded {
        typed: String,
        result: Result<majlis_core::Multiaddr, String>,
    },
    /// Members' statuses as the node holds them (at start).
    Statuses(Vec<majlis_core::status::MemberStatus>),
    /// This member's status was set, or why not.
    StatusSet(Result<(), String>),
    /// What a search found (for `query`).
    Search {
        query: String,
        result: Result<Vec<majlis_core::search::Hit>, String>,
    },
    Threads(Result<Vec<majlis_core::conversation::ThreadSummary>, String>),
}

#[derive(Default)]
struct Onboarding {
    has_profile: bool,
    /// This directory's device was removed and wiped itself: when, if its note says.
    removed: Option<Option<u64>>,
    name: String,
    org_name: String,
    org_id: String,
    error: Option<String>,
    /// Orgs inviting newcomers on this network, as a background mDNS browse last heard them
    /// (none browses when the app runs without mDNS).
    invitations: Option<Arc<std::sync::Mutex<Vec<majlis_core::discovery::Invitation>>>>,
}

/// A message typed here and not yet acknowledged by the node (durably stored).
struct PendingSend {
    local: u64,
    channel: String,
    text: String,
    failed: Option<String>,
}

/// The loaded window of one channel's history: newest pages first, older pages on demand.
struct Conversation {
    channel: String,
    rows: Vec<StoredMessage>,
    ids: HashSet<MessageId>,
    heights: Vec<Option<f32>>,
    width: f32,
    has_older: bool,
    scroll_fix: Option<f32>,
    /// A message to scroll to (a search result opened), and the one marked since when.
    jump: Option<MessageId>,
    mark: Option<(MessageId, Instant)>,
    /// Read receipts: who has read up to when (see `Node::read_marks`).
    read: Vec<(String, u64)>,
    /// Whose devices hold our messages up to when (see `Node::delivered_marks`).
    delivered: Vec<(String, u64)>,
    /// Topic, description, pins and who left (see `Node::details`), and the pinned
    /// messages themselves: loaded when opened and when a channel act arrives.
    details: majlis_core::conversation::Details,
    pinned: Vec<StoredMessage>,
    /// This device: its rows show their ticks even inside a group.
    me: DeviceId,
    /// Who may read it (see `chat::readers_of`), made when it opens or the roster changes.
    readers: Vec<(String, Role, Vec<DeviceId>)>,
    /// The first message that arrived since the user last read it, when it was opened: a
    /// "New" line goes above it, so the reader sees where they left off.
    first_new: Option<MessageId>,
}

const PAGE: usize = 200;
/// Consecutive messages of one author within this long are drawn as one group.
const GROUP_WITHIN_MS: u64 = 5 * 60 * 1000;
/// The avatar's diameter, the indent it takes, and the space between groups.
const AVATAR: f32 = 28.0;
const INDENT: f32 = AVATAR + 10.0;
const GROUP_GAP: f32 = 6.0;

#[derive(Default)]
struct AdminForm {
    name: String,
    device: String,
    role: Option<Role>,
    dev_member: String,
    dev_id: String,
    /// A newcomer's full name, signed with their joining ("": none).
    new_full_name: String,
    /// Giving a member a full name: whom, and the name ("" takes it away).
    full_member: String,
    full_name: String,
    /// Giving a member a job title: whom, and the title ("" takes it away).
    title_member: String,
    title: String,
    /// Making or changing a group (`@hr`): its name, and its members as typed, comma-separated.
    group: String,
    group_members: String,
    channel: String,
    channel_members: HashSet<String>,
    /// Changing who is on a channel: the channel picked, whether it is to be open to every
    /// member, who is ticked, and which channel and roster version the ticks were read from
    /// (read again when either changes, so they start from what holds now).
    edit_channel: String,
    edit_open: bool,
    edit_members: HashSet<String>,
    edit_from: Option<(String, u64)>,
    /// The name the picked channel is to go by (starts as the one it goes by now).
    edit_name: String,
    /// Who posts in the picked channel, comma-separated ("": everyone on it).
    edit_posters: String,
    /// Open the "Channel members" section at the next frame (asked from a channel's details).
    open_members: bool,
    confirm: Option<(String, RosterChange)>,
    /// The name each device waiting to join is to be added under, by device id (starts as
    /// the name it asks for).
    join_names: HashMap<String, String>,
    /// Data governance: retention days for the org ("" or "forever": keep), the member a
    /// hold or an erasure is about, a hold's reason.
    retention_days: String,
    gov_member: String,
    hold_reason: String,
}

/// What the node's event stream brings the app.
enum Fed {
    Event(Event),
    /// The stream dropped events the app did not take in time (a burst: a catch-up on a
    /// busy machine): what is shown is read again from the store.
    Missed,
}

struct Running {
    node: Node,
    me: DeviceId,
    events: mpsc::Receiver<Fed>,
    roster: Option<Arc<VerifiedRoster>>,
    view: View,
    conv: Option<Conversation>,
    unread: HashMap<String, usize>,
    /// Channels whose unread count is read again from the store after this frame's events:
    /// counted there, never by adding up arrivals, so a dropped or repeated event cannot
    /// make a count drift.
    recount: HashSet<String>,
    pending: Vec<PendingSend>,
    next_local: u64,
    peers: Vec<PeerInfo>,
    contested: Option<u64>,
    online: HashSet<DeviceId>,
    audit: Vec<AuditEntry>,
    actions_log: Vec<majlis_core::store::LoggedAction>,
    listen: Vec<majlis_core::Multiaddr>,
    admin: AdminForm,
    notice: Option<(String, Instant)>,
    copied: Option<Instant>,
    /// Actions the views asked for during this frame.
    actions: Vec<Action>,
    /// The network view's "add a peer by address" field, and why the last entry was refused.
    peer_input: String,
    peer_error: Option<String>,
    diagnosis: Option<majlis_core::diagnose::Report>,
    /// Devices asking to join that an admin was already told of (a notification each).
    asked_seen: HashSet<String>,
    /// Its problems, found once when it arrives (not every frame: the findings walk every
    /// roster device).
    problems: Vec<majlis_core::diagnose::Finding>,
    /// When peers and the diagnosis were last asked for.
    refreshed: Instant,
    /// Shared files the node knows of, by blob, and when they were last asked for.
    files: HashMap<majlis_core::files::BlobId, majlis_core::node::FileStatus>,
    files_asked: Instant,
    /// When the messages sharing files were sent, once read (the details panel lists files
    /// by date every frame; a read of the store each time was one per file per frame).
    file_dates: HashMap<MessageId, u64>,
    /// Pictures shown in conversations, by blob.
    thumbs: HashMap<majlis_core::files::BlobId, preview::Thumb>,
    /// A picture opened over the conversation.
    viewer: Option<preview::Viewer>,
    /// The composer's "attach a file" field, when open.
    attach: Option<String>,
    /// The composer's poll form, when open.
    poll: Option<PollDraft>,
    /// The search box, when open.
    search: Option<search::SearchBox>,
    /// The thread open beside the conversation: its root, its messages, the reply draft.
    thread: Option<ThreadView>,
    /// A message of ours being edited, and the new text.
    editing: Option<(MessageId, String)>,
    /// The sidebar's conversations (see `sidebar::sidebar_keys`).
    sidebar: Vec<String>,
    /// Messages that mentioned this member since the mentions view was last opened.
    mentions: usize,
    /// Who was last said to be typing where, and when; when this member last said so.
    typing: HashMap<(String, String), Instant>,
    typing_sent: Option<(String, Instant)>,
    /// Devices whose member said it is away.
    away: HashSet<DeviceId>,
    /// What this member saved for later (this device's list), and where a message can be
    /// forwarded (made with the sidebar's list): shared with each frame's rows, not copied.
    saved: Arc<HashSet<MessageId>>,
    forward_to: Arc<[(String, String)]>,
    /// Messages kept to send later, soonest first (read again when one is kept, cancelled
    /// or sent).
    scheduled: Vec<majlis_core::node::Scheduled>,
    /// Each member's status, as set (see `Running::status_of` for what shows now).
    statuses: HashMap<String, majlis_core::status::MemberStatus>,
    /// This member's status as being typed in People, and how long it is to last (an index
    /// of `people::LASTS`).
    status_draft: String,
    status_lasts: usize,
    /// What People is narrowed to (a name, full name or `@group`; empty: everyone).
    people_filter: String,
    /// Who a group conversation started from People is with, as typed ("bilal, chen").
    group_draft: String,
    /// The last message this member's receipt named, per channel.
    read_sent: HashMap<String, MessageId>,
    /// Notification hours being chosen in their editor (what it shows).
    hours_draft: Option<Hours>,
    /// When the user last touched the app, and whether we told peers we are away.
    last_input: Instant,
    idle: bool,
    /// The conversation's details panel is open, and the topic being edited in it.
    details_open: bool,
    topic_edit: Option<(String, String)>,
    /// Open channels this member left (not in the sidebar; listed to join again).
    left: std::collections::BTreeSet<String>,
    /// Channels an admin archived that this member may read (listed apart, read only).
    archived: Vec<String>,
}

/// Without input for this long, this member is away.
const AWAY_AFTER: Duration = Duration::from_secs(5 * 60);

/// How long "typing…" stays after the last signal, and how often we send ours.
const TYPING_SHOWN: Duration = Duration::from_secs(6);
const TYPING_EVERY: Duration = Duration::from_secs(3);

/// A thread shown beside its conversation.
struct ThreadView {
    root: MessageId,
    rows: Vec<StoredMessage>,
    draft: String,
    /// "Also send to the channel" is ticked.
    also: bool,
}

/// How often the Network view asks the node for fresh facts.
const NETWORK_REFRESH: Duration = Duration::from_secs(2);
/// The colour of what is wrong: a refusal, a contested roster, the Network tab's mark.
const ALERT: egui::Color32 = egui::Color32::from_rgb(230, 90, 60);
/// How often the node's findings are asked for while another view is open: a problem that
/// arises meanwhile (a full disk, a flood, nobody reachable) marks the Network tab.
const BACKGROUND_REFRESH: Duration = Duration::from_secs(10);

impl Running {
    /// The name `channel` (its name on the wire) is shown under (see `Roster::shown`).
    fn shown<'a>(&'a self, channel: &'a str) -> &'a str {
        majlis_core::roster::shown_in(self.roster.as_deref(), channel)
    }

    /// This device's member entry in the head roster.
    fn me_member(&self) -> Option<&majlis_core::roster::Member> {
        self.roster.as_ref()?.member_of_device(&self.me)
    }

    /// What `member` (a roster name) is called in the views: the full name an admin gave
    /// them, else the roster name (see `Roster::person`).
    fn person<'a>(&'a self, member: &'a str) -> &'a str {
        majlis_core::roster::person_in(self.roster.as_deref(), member)
    }

    /// `member`'s status, if they set one that has not ended.
    fn status_of(&self, member: &str) -> Option<&majlis_core::status::MemberStatus> {
        let now = majlis_core::now_ms();
        self.statuses
            .get(member)
            .filter(|s| !s.text.is_empty() && s.until.is_none_or(|u| u > now))
    }

    /// A direct conversation's name for this member: the others in it ("bilal, chen"),
    /// by their full names; `None` for a channel.
    fn dm_title(&self, key: &str) -> Option<String> {
        let roster = self.roster.as_deref().map(|r| &r.roster);
        majlis_core::roster::dm_title(roster, key, &self.my_name())
    }

    /// When this member last read `channel` on another of their devices: that device's read
    /// receipt, which travels and is kept like a message (so it comes even when the two
    /// devices are never on at once), where receipts are sent (DMs, groups and channels of
    /// up to 20 readers, while the org has them on).
    fn read_elsewhere(&self, channel: &str) -> u64 {
        let me = self.my_name();
        self.node
            .read_marks(channel)
            .unwrap_or_default()
            .into_iter()
            .filter(|(m, _)| *m == me)
            .map(|(_, t)| t)
            .max()
            .unwrap_or(0)
    }

    fn my_name(&self) -> String {
        self.me_member().map(|m| m.name.clone()).unwrap_or_default()
    }

    /// Read again what this member saved for later, on any of their devices (after a save
    /// here, or another device's act in their notes).
    fn reload_saved(&mut self) {
        self.saved = Arc::new(self.node.saved().unwrap_or_default().into_iter().collect());
    }

    /// The names a mention of this member carries: theirs, then each group they are in
    /// (`@hr`); none before the roster names them.
    fn addressed_as(&self) -> Vec<String> {
        match (self.roster.as_deref(), self.me_member()) {
            (Some(r), Some(m)) => r.roster.addressed_as(&m.name),
            _ => Vec::new(),
        }
        .into_iter()
        .map(str::to_string)
        .collect()
    }
}

enum Phase {
    Onboarding(Onboarding),
    Running(Box<Running>),
    Failed(Failure),
    /// The running state is borrowed out for the current frame (see `take_running`).
    Busy,
}

/// Why the app cannot go on: kept as facts, said in the user's language when drawn.
enum Failure {
    /// The data directory holds a device but does not open (in use, damaged, newer).
    /// `error` in the app's language at start (`say_error`); `hint` is the node's English,
    /// translated when drawn.
    DoesNotOpen {
        error: String,
        hint: Option<&'static str>,
    },
    /// The node did not start.
    NodeStart(String),
    /// The disk failed under the store; the node stopped.
    Disk(String),
    /// An admin removed this device and it wiped itself (or failed to: the error).
    Wiped(Result<(), String>),
}

pub struct MajlisApp {
    pub state: State,
    opts: Options,
    phase: Phase,
    rt: tokio::runtime::Runtime,
    ctx: egui::Context,
    replies_tx: mpsc::Sender<Reply>,
    replies: mpsc::Receiver<Reply>,
    /// The system font used for Arabic and Hebrew, if one was found.
    pub rtl_font: Option<PathBuf>,
    focused: bool,
    /// Desktop notifications of messages raised (see [`MajlisApp::notifications_raised`]).
    notified: u64,
    /// The notifications of a burst, so that it raises a few and then one that says so.
    burst: logic::Burst,
    /// What the last notification raised opens when clicked (for tests, which have no
    /// notification service to click in).
    last_notice: Option<Option<String>>,
    /// When the app was created, for the cold-start figure.
    pub started: Instant,
}

/// `en` in `lang` with its `{name}` places filled, ready for an egui label.
fn tf(lang: Lang, en: &'static str, args: &[(&str, &str)]) -> String {
    text::for_egui(&crate::i18n::tr_shown(lang, en, args)).into_owned()
}

/// `logical` (text in reading order, not yet made ready for egui) as a label's text, wrapped
/// to the width `ui` has left. Right-to-left text is wrapped here, before it is reordered:
/// egui would wrap the reordered text and put a sentence's end on its first line. Other
/// text is left to egui.
fn para(ui: &egui::Ui, logical: &str) -> String {
    if !text::has_rtl(logical) {
        return logical.to_string();
    }
    let font = egui::TextStyle::Body.resolve(ui.style());
    let width = ui.available_width();
    ui.fonts_mut(|f| {
        text::wrap_visual(logical, width, |s| {
            f.layout_no_wrap(s.to_string(), font.clone(), Color32::WHITE)
                .size()
                .x
        })
    })
    .join("\n")
}

/// What became of the last action here (a roster change, an invitation), for 8 s, as a card
/// over the bottom of the view. Shown in line above the controls, its coming and going moved
/// the buttons under the pointer: a click meant for one landed on whatever took its place.
/// It takes no clicks itself, so nothing under it is blocked.
fn toast(ui: &egui::Ui, notice: &Option<(String, Instant)>) {
    let Some((n, at)) = notice else { return };
    if at.elapsed() >= Duration::from_secs(8) {
        return;
    }
    egui::Area::new(egui::Id::unique("majlis-notice"))
        .anchor(egui::Align2::CENTER_BOTTOM, [0.0, -16.0])
        .order(egui::Order::Foreground)
        .interactable(false)
        .show(ui.ctx(), |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.set_max_width(520.0);
                ui.label(RichText::new(para(ui, n)).italics());
            });
        });
}

/// A column aligned to the reading edge: right-aligned in a right-to-left language, where
/// rows inside it (`ui.horizontal`) then run from the right too (egui follows the
/// enclosing layout).
fn reading_column(rtl: bool) -> Layout {
    match rtl {
        true => Layout::top_down(Align::Max),
        false => Layout::top_down(Align::Min),
    }
}

/// Where a [`section`] drawn in `ui` keeps whether it is open.
fn section_id(ui: &egui::Ui, title: &str) -> egui::Id {
    ui.make_persistent_id(("section", title))
}

/// Open the [`section`] titled `title` that `ui` draws next.
fn open_section(ui: &egui::Ui, title: &str) {
    let id = section_id(ui, title);
    ui.data_mut(|d| d.insert_temp(id, true));
}

/// A section that opens and closes on a click, as `ui.collapsing`, but from the reading
/// side: egui's collapsing header draws its arrow and title from the left in any layout.
/// Closed, its arrow points the way the text runs.
fn section(ui: &mut egui::Ui, rtl: bool, title: &str, add: impl FnOnce(&mut egui::Ui)) {
    let id = section_id(ui, title);
    let mut open = ui.data(|d| d.get_temp::<bool>(id)).unwrap_or(false);
    let clicked = ui
        .horizontal(|ui| {
            let size = ui.spacing().icon_width;
            let (rect, arrow) =
                ui.allocate_exact_size(egui::vec2(size, size), egui::Sense::click());
            let (c, r) = (rect.center(), size * 0.3);
            let v = egui::vec2;
            let points = match (open, rtl) {
                (true, _) => vec![c + v(-r, -r * 0.6), c + v(r, -r * 0.6), c + v(0.0, r * 0.6)],
                (false, false) => {
                    vec![c + v(-r * 0.6, -r), c + v(-r * 0.6, r), c + v(r * 0.6, 0.0)]
                }
                (false, true) => vec![c + v(r * 0.6, -r), c + v(r * 0.6, r), c + v(-r * 0.6, 0.0)],
            };
            let color = ui.visuals().text_color();
            ui.painter().add(egui::Shape::convex_polygon(
                points,
                color,
                egui::Stroke::NONE,
            ));
            let head = ui.add(egui::Button::new(title).frame(false));
            name_widget(&head, egui::Role::Button, title);
            arrow.clicked() || head.clicked()
        })
        .inner;
    if clicked {
        open = !open;
        ui.data_mut(|d| d.insert_temp(id, open));
    }
    if open {
        match rtl {
            // egui indents from the left only.
            true => {
                ui.scope(add);
            }
            false => {
                ui.indent(id, add);
            }
        }
    }
}

/// Names `r` for screen readers (and for the tests, which find widgets as a screen reader
/// does) by what it acts on, where its visible text is short ("Join", "@amina") or only a
/// hint.
fn name_widget(r: &egui::Response, role: egui::Role, label: &str) {
    r.widget_info(|| egui::WidgetInfo::labeled(role, true, label));
}

/// `add` (a grid) drawn left to right against the reading edge: in a right-to-left language
/// pushed to the right by the room it left in its last frame. egui lays out a grid's cells
/// from the left only; under a right-to-left layout a grid got no width (a NaN size and a
/// panic), so it is never put under one.
fn beside_reading_edge(
    ui: &mut egui::Ui,
    rtl: bool,
    name: &str,
    add: impl FnOnce(&mut egui::Ui) -> egui::Response,
) {
    let id = ui.make_persistent_id(("grid-width", name));
    let room = ui.available_width();
    let pad = match rtl {
        true => ui
            .data(|d| d.get_temp::<f32>(id))
            .map_or(0.0, |w| (room - w).max(0.0)),
        false => 0.0,
    };
    ui.with_layout(Layout::left_to_right(Align::Min), |ui| {
        ui.add_space(pad);
        let width = add(ui).rect.width();
        ui.data_mut(|d| d.insert_temp(id, width));
    });
}

/// `line` as a right-to-left paragraph when the app is in a right-to-left language, even if
/// it starts with Latin letters or digits (a version, an id): behind a right-to-left mark,
/// which [`text::visual_line`] drops once it has set the direction.
fn rtl_mark(lang: Lang, line: &str) -> String {
    // Only with right-to-left letters in it: other text is drawn as it is, mark and all.
    match lang.rtl() && text::has_rtl(line) {
        true => format!("\u{200F}{line}"),
        false => line.to_string(),
    }
}

/// A role's name in `lang`, ready for an egui label.
fn role_name(lang: Lang, r: majlis_core::roster::Role) -> String {
    text::for_egui(tr(lang, r.as_str())).into_owned()
}

fn now_ms() -> u64 {
    majlis_core::now_ms()
}

/// A peer address as the user typed it, resolved off the UI thread (a host name on a field
/// network without a reachable DNS server can take the resolver's timeouts, seconds), so
/// that a name that does not resolve is said at once.
async fn resolve_peer(typed: String) -> Result<majlis_core::Multiaddr, String> {
    tokio::task::spawn_blocking(move || majlis_core::net::check_peer_addr(&typed))
        .await
        .map_err(|e| e.to_string())?
}

impl MajlisApp {
    /// Build the app; `state` is what eframe restored (or the default).
    pub fn new(ctx: &egui::Context, opts: Options, mut state: State) -> MajlisApp {
        let started = Instant::now();
        let rtl_font = crate::fonts::install(ctx);
        if let Some(l) = opts.lang {
            state.lang = l;
        }
        if let Some(t) = opts.theme {
            state.theme = t;
        }
        style(ctx);
        ctx.set_theme(state.theme.egui());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (replies_tx, replies) = mpsc::channel();
        let mut app = MajlisApp {
            state,
            phase: Phase::Onboarding(Onboarding::default()),
            rt,
            ctx: ctx.clone(),
            replies_tx,
            replies,
            rtl_font,
            focused: true,
            notified: 0,
            burst: logic::Burst::default(),
            last_notice: None,
            started,
            opts,
        };
        app.phase = match Profile::open(&app.opts.data) {
            Ok(p) if p.org().ok().flatten().is_some() => app.start_node(p),
            Ok(_) => Phase::Onboarding(Onboarding {
                has_profile: true,
                ..Default::default()
            }),
            Err(majlis_core::Error::NoIdentity { .. }) => Phase::Onboarding(Onboarding::default()),
            // Set up afresh, with the reason its data is gone in view.
            Err(majlis_core::Error::Removed { at, .. }) => Phase::Onboarding(Onboarding {
                removed: Some(at),
                ..Default::default()
            }),
            // A directory that holds a device but does not open (in use, damaged, from a
            // newer release) is not a first start: creating an identity there would fail.
            Err(e) => Phase::Failed(Failure::DoesNotOpen {
                error: say_error(app.state.lang, &e),
                hint: e.hint(),
            }),
        };
        app
    }

    fn start_node(&mut self, profile: Profile) -> Phase {
        let node = match self
            .rt
            .block_on(Node::start(profile, self.opts.config.clone()))
        {
            Ok(n) => n,
            Err(e) => return Phase::Failed(Failure::NodeStart(say_error(self.state.lang, &e))),
        };
        self.load_private_state(&node);
        self.dial_remembered(&node);
        let (tx, events) = mpsc::channel();
        let mut sub = node.subscribe();
        let ctx = self.ctx.clone();
        self.rt.spawn(async move {
            loop {
                let fed = match sub.recv().await {
                    Ok(ev) => Fed::Event(ev),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Fed::Missed,
                    Err(_) => break,
                };
                if tx.send(fed).is_err() {
                    break;
                }
                ctx.request_repaint();
            }
        });
        let me = node.device_id();
        let scheduled = node.scheduled();
        let mut run = Running {
            node,
            me,
            events,
            roster: None,
            view: View::Chat,
            conv: None,
            unread: HashMap::new(),
            recount: HashSet::new(),
            pending: Vec::new(),
            next_local: 0,
            peers: Vec::new(),
            contested: None,
            online: HashSet::new(),
            audit: Vec::new(),
            actions_log: Vec::new(),
            listen: Vec::new(),
            admin: AdminForm::default(),
            notice: None,
            copied: None,
            actions: Vec::new(),
            peer_input: String::new(),
            peer_error: None,
            diagnosis: None,
            asked_seen: HashSet::new(),
            problems: Vec::new(),
            refreshed: Instant::now(),
            files: HashMap::new(),
            files_asked: Instant::now(),
            file_dates: HashMap::new(),
            thumbs: HashMap::new(),
            viewer: None,
            attach: None,
            poll: None,
            search: None,
            thread: None,
            editing: None,
            sidebar: Vec::new(),
            mentions: 0,
            typing: HashMap::new(),
            typing_sent: None,
            away: HashSet::new(),
            statuses: HashMap::new(),
            saved: Arc::default(),
            forward_to: Arc::new([]),
            scheduled,
            status_draft: String::new(),
            status_lasts: 0,
            people_filter: String::new(),
            group_draft: String::new(),
            read_sent: HashMap::new(),
            hours_draft: None,
            last_input: Instant::now(),
            idle: false,
            details_open: false,
            topic_edit: None,
            left: Default::default(),
            archived: Vec::new(),
        };
        run.reload_saved();
        self.spawn_files(&run.node);
        self.spawn_listen(&run.node);
        self.spawn_peers(&run.node);
        let n = run.node.clone();
        self.spawn(async move { Reply::Statuses(n.statuses().await.unwrap_or_default()) });
        self.on_roster(&mut run);
        match self.opts.open.clone().as_deref() {
            Some("people") => run.view = View::People,
            Some("network") => run.view = View::Network,
            Some("admin") => run.view = View::Admin,
            Some(ch) => {
                // `#CHANNEL/details` opens its details panel too.
                let ch = match ch.strip_suffix("/details") {
                    Some(ch) => {
                        run.details_open = true;
                        ch
                    }
                    None => ch,
                };
                let ch = ch.trim_start_matches('#');
                if let Ok(c) = run.node.resolve(ch) {
                    self.state.selected = Some(c);
                }
            }
            None => {}
        }
        if run.view == View::Admin {
            self.spawn_audit(&run.node);
        }
        Phase::Running(Box::new(run))
    }

    /// The embedded node, once this device belongs to an organization.
    pub fn node(&self) -> Option<&Node> {
        match &self.phase {
            Phase::Running(r) => Some(&r.node),
            _ => None,
        }
    }

    /// How many messages of the open conversation are loaded (history is paged in lazily).
    pub fn loaded_rows(&self) -> usize {
        match &self.phase {
            Phase::Running(r) => r.conv.as_ref().map_or(0, |c| c.rows.len()),
            _ => 0,
        }
    }

    /// How many desktop notifications of messages this app has raised (for tests: a
    /// notification itself leaves nothing a test can read).
    pub fn notifications_raised(&self) -> u64 {
        self.notified
    }

    /// Act as a click on the last desktop notification raised would (tests: a real one
    /// needs a notification service to click in). `false`: none was raised.
    pub fn click_last_notification(&mut self) -> bool {
        match self.last_notice.clone() {
            Some(what) => {
                let _ = self.replies_tx.send(Reply::Opened(what));
                true
            }
            None => false,
        }
    }

    /// How many pictures drawn in the conversation are animations (for tests: frames
    /// leave nothing on screen a test can read).
    pub fn animations_shown(&self) -> usize {
        match &self.phase {
            Phase::Running(r) => r.thumbs.values().filter(|t| t.frames() > 1).count(),
            _ => 0,
        }
    }

    /// How `channel` notifies this member.
    fn notify_of(&self, channel: &str) -> Notify {
        if self.state.muted.contains(channel) {
            Notify::Nothing
        } else if self.state.everything.contains(channel) {
            Notify::Everything
        } else {
            Notify::Usual
        }
    }

    /// Let `channel` notify as `notify` from now on, chosen at `at` (see `State::notify_at`).
    fn set_notify(&mut self, channel: &str, notify: Notify, at: u64) {
        let s = &mut self.state;
        s.muted.remove(channel);
        s.everything.remove(channel);
        match notify {
            Notify::Usual => {}
            Notify::Everything => {
                s.everything.insert(channel.to_string());
            }
            Notify::Nothing => {
                s.muted.insert(channel.to_string());
            }
        }
        s.notify_at.insert(channel.to_string(), at);
    }

    /// Star (`on`) or unstar `channel`, chosen at `at` (see `State::starred_at`).
    fn set_starred(&mut self, channel: &str, on: bool, at: u64) {
        let s = &mut self.state;
        match on {
            true => s.starred.insert(channel.to_string()),
            false => s.starred.remove(channel),
        };
        s.starred_at.insert(channel.to_string(), at);
    }

    /// Count `channel` unread from the message sent at `from` (0: read again), chosen at
    /// `at` (see `State::unread_at`).
    fn set_unread(&mut self, channel: &str, from: u64, at: u64) {
        let s = &mut self.state;
        match from {
            0 => s.unread_from.remove(channel),
            _ => s.unread_from.insert(channel.to_string(), from),
        };
        s.unread_at.insert(channel.to_string(), at);
    }

    /// Whether it is outside this member's notification hours now (on this device's clock).
    fn outside_hours(&self) -> bool {
        use chrono::{Datelike, Timelike};
        let now = chrono::Local::now();
        let (day, minute) = (
            now.weekday().num_days_from_monday() as u8,
            (now.hour() * 60 + now.minute()) as u16,
        );
        self.state.hours.is_some_and(|h| !h.allow(day, minute))
    }

    /// Whether desktop notifications are paused now.
    fn paused(&self) -> bool {
        self.state.paused_until.is_some_and(|t| now_ms() < t)
    }

    /// Persist the remembered state (eframe calls this periodically and on exit). Drafts,
    /// read marks and the like are sealed in the node's store; eframe's own file (plain
    /// text) gets only the language.
    /// The peers given by address that the app dials at every start, as written (for tests;
    /// the network view lists them to a user).
    pub fn peers_remembered(&self) -> &[String] {
        &self.state.peers
    }

    /// The conversation open (its wire name), if one is (for tests; the heading says it to
    /// a user).
    pub fn open_conversation(&self) -> Option<String> {
        self.state.selected.clone()
    }

    pub fn save_state(&self) -> State {
        if let Phase::Running(run) = &self.phase {
            let private = serde_json::to_vec(&self.state).expect("state serializes");
            if let Err(e) = run.node.save_private("gui-state", &private) {
                tracing::warn!("saving the app state: {e}");
            }
        }
        State {
            lang: self.state.lang,
            // Needed before the store is open (onboarding), and nothing private.
            theme: self.state.theme,
            ..State::default()
        }
    }

    /// Take the state sealed in the store (what an earlier `save_state` kept there); what
    /// eframe's file still holds from a release before sealing is kept and sealed next save.
    fn load_private_state(&mut self, node: &Node) {
        let Ok(Some(bytes)) = node.load_private("gui-state") else {
            return;
        };
        let Ok(saved) = serde_json::from_slice::<State>(&bytes) else {
            return;
        };
        let s = &mut self.state;
        for (k, v) in saved.drafts {
            s.drafts.entry(k).or_insert(v);
        }
        for (k, v) in saved.last_read {
            s.last_read.entry(k).or_insert(v);
        }
        for (k, v) in saved.unread_from {
            s.unread_from.entry(k).or_insert(v);
        }
        for (k, v) in saved.unread_at {
            s.unread_at.entry(k).or_insert(v);
        }
        for (k, v) in saved.starred_at {
            s.starred_at.entry(k).or_insert(v);
        }
        for (k, v) in saved.threads_seen {
            let seen = s.threads_seen.entry(k).or_default();
            *seen = (*seen).max(v);
        }
        for (k, v) in saved.last_seen {
            s.last_seen.entry(k).or_insert(v);
        }
        if s.selected.is_none() {
            s.selected = saved.selected;
        }
        s.muted.extend(saved.muted);
        s.starred.extend(saved.starred);
        s.everything.extend(saved.everything);
        for (k, v) in saved.notify_at {
            s.notify_at.entry(k).or_insert(v);
        }
        if s.paused_until.is_none() {
            s.paused_until = saved.paused_until;
        }
        s.paused_at = s.paused_at.max(saved.paused_at);
        if s.hours.is_none() {
            s.hours = saved.hours;
        }
        s.hours_at = s.hours_at.max(saved.hours_at);
        for p in saved.peers {
            if !s.peers.contains(&p) {
                s.peers.push(p);
            }
        }
    }

    /// Dial the peers given by address (the network view's, a join link's): at every start,
    /// whether or not this device has saved state yet (a first start with a join link has
    /// none). One given by name is kept even if it does not resolve now (the app started
    /// before the Wi-Fi): the node resolves it before each dial.
    fn dial_remembered(&self, node: &Node) {
        for p in self.state.peers.clone() {
            match majlis_core::net::parse_peer_addr(&p) {
                Ok(addr) => {
                    let node = node.clone();
                    self.rt.spawn(async move {
                        let _ = node.dial(addr).await;
                    });
                }
                Err(e) => tracing::warn!("a peer added in the app: {e}"),
            }
        }
    }

    // ---- draw --------------------------------------------------------------------------

    /// Why the app stopped, in reading order (see [`para`]).
    fn failure_text(&self, f: &Failure) -> String {
        let lang = self.state.lang;
        let dir = self.opts.data.display().to_string();
        match f {
            Failure::DoesNotOpen { error, hint: None } => crate::i18n::tr_shown(
                lang,
                "{dir} does not open: {error}",
                &[("dir", &dir), ("error", error)],
            ),
            Failure::DoesNotOpen {
                error,
                hint: Some(hint),
            } => crate::i18n::tr_shown(
                lang,
                "{dir} does not open: {error}. {hint}",
                &[("dir", &dir), ("error", error), ("hint", tr(lang, hint))],
            ),
            Failure::NodeStart(error) => crate::i18n::tr_shown(
                lang,
                "Majlis could not start for {dir}: {error}",
                &[("dir", &dir), ("error", error)],
            ),
            Failure::Disk(error) => crate::i18n::tr_shown(
                lang,
                "The disk failed under Majlis's data ({error}). Majlis stopped so that nothing more is lost: every message it confirmed is saved. Check the disk, then start Majlis again.",
                &[("error", error)],
            ),
            Failure::Wiped(Ok(())) => tr(
                lang,
                "An admin removed this device from its organization: its keys and history have been erased. Start Majlis again to set it up afresh.",
            )
            .to_string(),
            Failure::Wiped(Err(error)) => crate::i18n::tr_shown(
                lang,
                "An admin removed this device from its organization, but erasing its data failed ({error}). Delete the folder {dir} yourself.",
                &[("dir", &dir), ("error", error)],
            ),
        }
    }

    fn t(&self, en: &'static str) -> String {
        text::for_egui(tr(self.state.lang, en)).into_owned()
    }

    /// [`Self::t`] of a text with `{name}` places for values (see [`tr_with`]).
    fn tf(&self, en: &'static str, args: &[(&str, &str)]) -> String {
        tf(self.state.lang, en, args)
    }

    /// One frame: logic, then drawing.
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        self.logic(&ui.ctx().clone());
        self.draw(ui);
    }

    pub fn draw(&mut self, ui: &mut egui::Ui) {
        match &self.phase {
            Phase::Onboarding(_) => self.draw_onboarding(ui),
            Phase::Failed(f) => {
                let msg = self.failure_text(f);
                egui::CentralPanel::default().show(ui, |ui| {
                    ui.heading("Majlis");
                    ui.label(para(ui, &msg));
                });
            }
            Phase::Running(_) => self.draw_running(ui),
            Phase::Busy => {}
        }
    }
}
