//! The roster: the organization's admin-signed, versioned membership document, and the pure
//! rules that decide which roster a node holds.
//!
//! Every version names the hash of the one before it, so the history is a hash chain. A node
//! accepts version `n + 1` only if it is signed by the org root key or by a device of an admin
//! in version `n` (or, when the policy allows, by a member whose version only adds channels).
//! Two different documents at the same version (a fork: two admins signing concurrently) are
//! resolved by one total rule that every node applies identically: a branch that has since
//! removed the other branch's signer wins, otherwise **the document with the smaller hash
//! wins**, and whatever was built on the loser is dropped. Stale copies (rollback) change
//! nothing.

use std::collections::HashMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::identity::{self, DeviceId, DeviceKey, OrgId, OrgKey};

mod audit;
mod chain;
mod rules;
#[cfg(test)]
mod tests;

use audit::hex;
pub use audit::{diff, AuditChange, AuditEntry};
pub use chain::{
    authorize, ApplyReport, PastRight, Right, RosterChain, RosterSigner, VerifiedRoster,
};

/// Wire format version of [`SignedRoster`]; bump on any incompatible change.
pub const ROSTER_FORMAT: u8 = 1;
/// Domain separation so a roster signature can never be replayed as a message signature.
const DOMAIN: &[u8] = b"majlis/roster/v1\0";
/// Hard cap on one encoded roster (a 1 000-member roster is ~70 KiB).
pub const MAX_ROSTER_BYTES: usize = 4 * 1024 * 1024;
pub const MAX_NAME_BYTES: usize = 64;
/// A full name ("Amina Haddad", "عبد الرحمن بن محمد الهاشمي") is longer than a roster name.
pub const MAX_FULL_NAME_BYTES: usize = 128;
/// A job title ("Site engineer, Dubai yard", "رئيسة قسم الموارد البشرية") as long as a full name.
pub const MAX_TITLE_BYTES: usize = 128;
/// Channels an org may hold for a member to add one more (`members_create_channels`);
/// admins may add beyond it. Bounds what a member's modified client can make every node
/// store and subscribe to.
pub const MAX_MEMBER_CHANNELS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    #[error("malformed roster: {0}")]
    Malformed(String),
    #[error("unsupported roster format {0}; upgrade Majlis")]
    Format(u8),
    #[error("bad signature")]
    BadSignature,
    #[error("roster is for another organization")]
    WrongOrg,
    #[error("version {version} is signed by a key that is neither the org root nor an admin of version {prev}")]
    NotAuthorized { version: u64, prev: u64 },
    #[error("version {version} does not follow the held version {prev} (hash chain broken)")]
    BrokenChain { version: u64, prev: u64 },
    #[error("received version {got} but the chain stops at {have}; missing versions in between")]
    Gap { have: u64, got: u64 },
    #[error("version {version} is older than held version {held} (rollback ignored)")]
    Stale { version: u64, held: u64 },
    #[error(
        "fork at version {version}: kept the held branch (see the fork rule in docs/protocol.md)"
    )]
    ForkLost { version: u64 },
    #[error("contested roster at version {version}: two branches each removed the other's signer; keeping the branch this node saw first until the org root key signs a version that settles it")]
    Contested { version: u64 },
    #[error("{0}")]
    Rule(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
    /// A headless server that stores and forwards; it never posts.
    Relay,
    /// An outsider (a contractor, a client): reads and posts only in channels that list them
    /// by name, and takes part in direct messages only if the policy says so.
    Guest,
    /// A relay with the org's compliance grant: besides storing everything, it is given the
    /// keys of every channel and DM, so the org can hold and search its records. Every member
    /// sees that the org has one (`majlisd roster show`, the app's People view).
    Archive,
    /// A device run by an integration (a build server, a helpdesk bot) through the HTTP API:
    /// reads and posts like a member, never signs roster versions (not even channel
    /// creations), and is shown as a bot wherever its messages appear. Added after the first
    /// release: a roster that lists a bot is not read by nodes older than this one.
    Bot,
}

impl Role {
    /// Relays and archives store and serve everything and never post.
    pub fn stores_all(self) -> bool {
        matches!(self, Role::Relay | Role::Archive)
    }
}

impl FromStr for Role {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            "relay" => Ok(Role::Relay),
            "guest" => Ok(Role::Guest),
            "archive" => Ok(Role::Archive),
            "bot" => Ok(Role::Bot),
            _ => Err(crate::Error::Invalid(format!(
                "unknown role '{s}'; use admin, member, guest, relay, archive or bot"
            ))),
        }
    }
}

impl Role {
    /// The role's name, as the CLI takes it and the app looks up its translation.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Relay => "relay",
            Role::Guest => "guest",
            Role::Archive => "archive",
            Role::Bot => "bot",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub role: Role,
    pub devices: Vec<DeviceId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub name: String,
    /// `None`: every member. `Some(names)`: only these members (relays always read).
    pub members: Option<Vec<String>>,
}

/// Who may talk to whom beyond what channel lists say. Part of the signed roster, so every
/// node enforces the same rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `false` (default): only admins create channels. `true`: any member (not guests or
    /// relays) may sign a roster version whose only change is new channels.
    pub members_create_channels: bool,
    pub dms: DmPolicy,
}

/// Whether direct messages are allowed, and between whom.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    /// No direct messages.
    Off,
    /// Between admins and members (the default); guests only in channels.
    #[default]
    Members,
    /// Guests too.
    All,
}

impl FromStr for DmPolicy {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<DmPolicy> {
        match s {
            "off" => Ok(DmPolicy::Off),
            "members" => Ok(DmPolicy::Members),
            "all" => Ok(DmPolicy::All),
            _ => Err(crate::Error::Invalid(format!(
                "unknown DM policy '{s}'; use off, members or all"
            ))),
        }
    }
}

/// The most members one direct conversation has (its author among them): a group that
/// grows past this is a channel, which an admin makes and whose members can change.
pub const MAX_DM_MEMBERS: usize = 9;

/// The channel that carries direct messages between members `a` and `b`: `@a,b` with the
/// names in byte order. Member names cannot start with `@` or contain a comma, so this never
/// collides with a channel name and parses back unambiguously.
pub fn dm_channel(a: &str, b: &str) -> String {
    dm_channel_of([a, b])
}

/// The channel of a direct conversation among `names` (a group DM when more than two):
/// `@a,b,c`, the names sorted and each once. Its members are fixed by its name: adding
/// someone makes another conversation, so nobody reads what was said before they came in.
pub fn dm_channel_of<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    names.dedup();
    format!("@{}", names.join(","))
}

/// What a member who writes in a DM with someone who left is told (`{member}`: who left).
pub const LEFT_DM_TEXT: &str =
    "{member} has left the organization: this conversation stays readable, and nothing more can be sent in it";

/// What an archived channel says where its composer was (`{channel}`: its name).
pub const ARCHIVED_TEXT: &str =
    "#{channel} is archived: its history stays readable and searchable, and nothing more can be posted in it";

/// [`LEFT_DM_TEXT`] for `channel` under `r`.
pub fn left_dm_text(r: &Roster, channel: &str) -> String {
    let left = r
        .dm_with_leaver(channel)
        .map_or(String::new(), |(_, left)| left.join(", "));
    LEFT_DM_TEXT.replace("{member}", &left)
}

/// The name `channel` (its wire name) is shown under by `roster` ([`Roster::shown`]), or
/// itself before there is a roster.
pub fn shown_in<'a>(roster: Option<&'a VerifiedRoster>, channel: &'a str) -> &'a str {
    shown_by(roster.map(|r| &r.roster), channel)
}

/// What `roster` calls `member` (a roster name: [`Roster::person`]), or the name itself
/// before there is a roster.
pub fn person_in<'a>(roster: Option<&'a VerifiedRoster>, member: &'a str) -> &'a str {
    roster.map_or(member, |r| r.roster.person(member))
}

/// The member names of a direct-message channel, if `channel` is one in canonical form
/// (one to [`MAX_DM_MEMBERS`] names, sorted, each once): the only spelling a node accepts,
/// so one group of people has one conversation. One name is that member's notes
/// ([`notes_of`]).
pub fn dm_members(channel: &str) -> Option<Vec<&str>> {
    let names: Vec<&str> = channel.strip_prefix('@')?.split(',').collect();
    ((1..=MAX_DM_MEMBERS).contains(&names.len())
        && !names[0].is_empty()
        && names.windows(2).all(|w| w[0] < w[1]))
    .then_some(names)
}

/// Whether `channel` is a direct conversation (of two, of a group, or a member's notes).
pub fn is_dm(channel: &str) -> bool {
    dm_members(channel).is_some()
}

/// The member whose notes `channel` is: `@amina`, the conversation of one member with
/// themself, which each of their devices reads (and relays store, archives read), so what
/// they write on one device is on all of them and comes back to a new one.
///
/// Why a conversation and not device-local state: it is then signed, sealed, synced and
/// kept by the machinery every conversation has, and its name is the member's inbox topic,
/// which only their own devices (and relays and archives) may subscribe to.
pub fn notes_of(channel: &str) -> Option<&str> {
    match dm_members(channel)?.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// The notes channel of `member` (see [`notes_of`]).
pub fn notes_channel(member: &str) -> String {
    format!("@{member}")
}

/// Names as a sentence says them: "amina", "amina and bilal", "amina, bilal and chen".
pub fn and_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// How a direct conversation is named to one of its members: the others, by the names
/// `roster` shows ("bilal" for a DM, "bilal, chen" for a group).
pub fn dm_title(roster: Option<&Roster>, channel: &str, me: &str) -> Option<String> {
    let names = dm_members(channel)?;
    let others: Vec<&str> = names
        .iter()
        .filter(|n| **n != me)
        .map(|n| roster.map_or(*n, |r| r.person(n)))
        .collect();
    Some(if others.is_empty() {
        names.join(", ")
    } else {
        others.join(", ")
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    pub org: OrgId,
    /// The organization's display name.
    pub name: String,
    pub root_key: [u8; 32],
    pub version: u64,
    /// Hash of the previous signed version; `None` only for version 1.
    pub prev: Option<[u8; 32]>,
    pub issued_at: u64,
    pub members: Vec<Member>,
    pub channels: Vec<Channel>,
    pub policy: Policy,
    /// Added after the first release: a body written before it ([`Layout::First`]) reads
    /// as the default policy.
    pub files: FilePolicy,
    /// Added in the second wave: retention, legal holds and erasure requests. A roster whose
    /// governance is the default is written in the earlier layout ([`Layout::Files`]), so
    /// nodes of earlier releases keep reading it until an admin sets a rule.
    pub governance: Governance,
    /// Added in the third wave: channels an admin archived (read-only: their history stays
    /// readable, searchable and under retention, and nothing more is posted in them). A
    /// roster that archives nothing is written in the layout before
    /// ([`Layout::Governance`]), so earlier releases keep reading it until an admin archives
    /// a channel.
    pub archived: Vec<String>,
    /// Added in the fourth wave: channels an admin renamed, as (the channel's name on the
    /// wire, the name people see and type now). A channel's wire name is its identity
    /// (gossip topic, keys, every signed message names it), so a rename changes only what
    /// the views show and what commands accept. A roster that renames nothing is written
    /// in the layout before ([`Layout::Archived`]).
    pub renamed: Vec<(String, String)>,
    /// Added in the fifth wave: members' full names as an admin set them, as (the member's
    /// name on the roster, the name people see: "Amina Haddad"). A member's roster name is
    /// their identity (every message, channel list, DM and hold names it), so it stays, and
    /// views show the full name beside or instead of it; a name changed at marriage or a
    /// typo is put right here. A roster that sets none is written in the layout before
    /// ([`Layout::Renamed`]).
    pub full_names: Vec<(String, String)>,
    /// Added in the fifth wave: channels where only some of the readers post (an
    /// announcements channel: management and HR write, everyone reads), as (the channel's
    /// wire name, the members who post). The others read, and their devices still hand
    /// the channel's keys to their own new devices. A roster that limits no channel is
    /// written in the layout before ([`Layout::FullNames`]).
    pub posters: Vec<(String, Vec<String>)>,
    /// Added in the sixth wave: groups of members that one mention reaches (`@hr`,
    /// `@it-support`), as (the group's name, its members), set by admins. A mention of a
    /// group notifies each of its members who reads the conversation, as `@amina` does
    /// amina; it gives nobody a right. A roster with no group is written in the layout
    /// before ([`Layout::Posters`]).
    pub groups: Vec<(String, Vec<String>)>,
    /// Added in the seventh wave: channels where only some post ([`Roster::posters`]) and
    /// the other readers may still reply in threads (an announcement that asks "questions
    /// below"), by their wire names. Their replies travel as
    /// [`crate::e2e::Content::ThreadReply`], a tag every node checks against this list. A
    /// roster that lets no reader reply is written in the layout before ([`Layout::Groups`]).
    pub replies: Vec<String>,
    /// Added in the ninth wave: members' job titles as an admin set them, as (the member's
    /// roster name, the title people see beside their name: "Site engineer, Dubai yard"),
    /// so a colleague in a company of hundreds knows whom they are writing to. Not unique;
    /// it grants nothing. A roster that sets none is written in the layout before
    /// ([`Layout::Replies`]).
    pub titles: Vec<(String, String)>,
}

/// The layouts a roster body has had, oldest first. Each adds one field at the end, so each
/// is a prefix of the next: a body is read field by field for as long as bytes remain (the
/// chain's `decode_body`), and written in the earliest layout that holds everything set
/// ([`Roster::encode_body`]), so nodes of earlier releases read every roster that uses
/// nothing they do not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Layout {
    /// The first release's ([`FirstLayout`]); read, never written.
    First,
    /// `+ files`.
    Files,
    /// `+ governance`.
    Governance,
    /// `+ archived`.
    Archived,
    /// `+ renamed`.
    Renamed,
    /// `+ full_names`.
    FullNames,
    /// `+ posters`.
    Posters,
    /// `+ groups`.
    Groups,
    /// `+ replies`.
    Replies,
    /// `+ titles`.
    Titles,
}

/// The roster body as written: the first release's fields, then the later ones its
/// [`Layout`] holds (postcard writes struct fields one after the other, with nothing
/// between, and nothing for a skipped one).
#[derive(Serialize)]
struct Body<'a> {
    org: &'a OrgId,
    name: &'a str,
    root_key: &'a [u8; 32],
    version: u64,
    prev: &'a Option<[u8; 32]>,
    issued_at: u64,
    members: &'a [Member],
    channels: &'a [Channel],
    policy: &'a Policy,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bare")]
    files: Option<&'a FilePolicy>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bare")]
    governance: Option<&'a Governance>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bare")]
    archived: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bare")]
    renamed: Option<&'a [(String, String)]>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bare")]
    full_names: Option<&'a [(String, String)]>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bare")]
    posters: Option<&'a [(String, Vec<String>)]>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bare")]
    groups: Option<&'a [(String, Vec<String>)]>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bare")]
    replies: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bare")]
    titles: Option<&'a [(String, String)]>,
}

/// A field [`Body`] writes only when set, written as the value itself (not as an `Option`,
/// which would add a tag byte the layouts do not have).
fn bare<T: Serialize + ?Sized, S: serde::Serializer>(
    v: &Option<&T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => v.serialize(s),
        None => s.serialize_unit(),
    }
}

impl Roster {
    /// The earliest layout that holds everything set in this roster.
    pub(crate) fn layout(&self) -> Layout {
        if !self.titles.is_empty() {
            Layout::Titles
        } else if !self.replies.is_empty() {
            Layout::Replies
        } else if !self.groups.is_empty() {
            Layout::Groups
        } else if !self.posters.is_empty() {
            Layout::Posters
        } else if !self.full_names.is_empty() {
            Layout::FullNames
        } else if !self.renamed.is_empty() {
            Layout::Renamed
        } else if !self.archived.is_empty() {
            Layout::Archived
        } else if self.governance != Governance::default() {
            Layout::Governance
        } else {
            Layout::Files
        }
    }

    /// The canonical body: in [`Roster::layout`].
    pub(crate) fn encode_body(&self) -> Vec<u8> {
        self.encode_as(self.layout())
    }

    /// The body in `layout` (what that layout does not hold is left out).
    pub(crate) fn encode_as(&self, layout: Layout) -> Vec<u8> {
        postcard::to_stdvec(&Body {
            org: &self.org,
            name: &self.name,
            root_key: &self.root_key,
            version: self.version,
            prev: &self.prev,
            issued_at: self.issued_at,
            members: &self.members,
            channels: &self.channels,
            policy: &self.policy,
            files: (layout >= Layout::Files).then_some(&self.files),
            governance: (layout >= Layout::Governance).then_some(&self.governance),
            archived: (layout >= Layout::Archived).then_some(&self.archived),
            renamed: (layout >= Layout::Renamed).then_some(&self.renamed),
            full_names: (layout >= Layout::FullNames).then_some(&self.full_names),
            posters: (layout >= Layout::Posters).then_some(&self.posters),
            groups: (layout >= Layout::Groups).then_some(&self.groups),
            replies: (layout >= Layout::Replies).then_some(&self.replies),
            titles: (layout >= Layout::Titles).then_some(&self.titles),
        })
        .expect("roster serializes")
    }
}

/// The fields of the first release's roster body, which every later layout starts with.
#[derive(Deserialize, Serialize)]
pub(crate) struct FirstLayout {
    pub(crate) org: OrgId,
    pub(crate) name: String,
    pub(crate) root_key: [u8; 32],
    pub(crate) version: u64,
    pub(crate) prev: Option<[u8; 32]>,
    pub(crate) issued_at: u64,
    pub(crate) members: Vec<Member>,
    pub(crate) channels: Vec<Channel>,
    pub(crate) policy: Policy,
}

impl From<FirstLayout> for Roster {
    /// With the defaults for what the first release did not have.
    fn from(l: FirstLayout) -> Roster {
        Roster {
            org: l.org,
            name: l.name,
            root_key: l.root_key,
            version: l.version,
            prev: l.prev,
            issued_at: l.issued_at,
            members: l.members,
            channels: l.channels,
            policy: l.policy,
            files: FilePolicy::default(),
            governance: Governance::default(),
            archived: Vec::new(),
            renamed: Vec::new(),
            full_names: Vec::new(),
            posters: Vec::new(),
            groups: Vec::new(),
            replies: Vec::new(),
            titles: Vec::new(),
        }
    }
}

/// What the org allows for shared files. Every honest node applies it: a sender's app
/// refuses to share what it forbids, and no node fetches or serves a blob over the size cap.
/// (The media type is sealed with the file's name, so relays cannot check it; readers do,
/// and refuse to save a forbidden type.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePolicy {
    /// Largest file in bytes; `None`: no cap.
    pub max_bytes: Option<u64>,
    /// Files up to this size are downloaded as soon as their message arrives; bigger ones
    /// when a user asks. Relays and archives download everything.
    pub auto_fetch_bytes: u64,
    /// Allowed media types (`image/*`, `application/pdf`); empty: any.
    pub types: Vec<String>,
}

impl Default for FilePolicy {
    fn default() -> FilePolicy {
        FilePolicy {
            max_bytes: None,
            auto_fetch_bytes: 8 * 1024 * 1024,
            types: Vec::new(),
        }
    }
}

impl FilePolicy {
    pub fn allows_size(&self, size: u64) -> bool {
        self.max_bytes.is_none_or(|m| size <= m)
    }

    pub fn allows_type(&self, mime: &str) -> bool {
        self.types.is_empty()
            || self.types.iter().any(|t| match t.strip_suffix("/*") {
                Some(major) => mime.split('/').next() == Some(major),
                None => t.eq_ignore_ascii_case(mime),
            })
    }

    /// Why a file may not be shared, if it may not.
    pub fn refuse(&self, size: u64, mime: &str) -> Option<String> {
        if !self.allows_size(size) {
            return Some(format!(
                "the org allows files up to {} bytes; this one is {size}",
                self.max_bytes.unwrap_or(0)
            ));
        }
        if !self.allows_type(mime) {
            return Some(format!(
                "the org allows only these file types: {}; this one is {mime}",
                self.types.join(", ")
            ));
        }
        None
    }
}

/// How long messages and files are kept, legal holds and erasure requests: the org's data
/// governance, admin-signed like the rest of the roster so that every node (desktops,
/// relays, the archive) applies the same rules, and the roster's hash chain is their audit
/// trail. The pure rules are in [`crate::governance`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Governance {
    pub retention: Retention,
    pub holds: Vec<Hold>,
    pub erasures: Vec<Erasure>,
    /// Whether members' apps say when they have read a message (read receipts are personal
    /// data about each reader; some orgs do not want them made).
    pub read_receipts: ReadReceipts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadReceipts {
    #[default]
    On,
    Off,
}

/// How long to keep messages and files. `None` days: forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keep {
    pub days: Option<u32>,
    pub files_days: Option<u32>,
}

/// Retention for the org, overridden for direct messages and per channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub org: Keep,
    pub dms: Option<Keep>,
    pub channels: Vec<(String, Keep)>,
}

/// A legal hold: what it covers is kept, whatever retention or erasure say, until released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The roster version that placed it: unique, and what `hold release` names.
    pub id: u64,
    /// Messages written by these members (in any channel).
    pub members: Vec<String>,
    /// Every message in these channels.
    pub channels: Vec<String>,
    pub reason: String,
    pub placed_at: u64,
}

/// An erasure request (GDPR art. 17): the bodies of everything `member` wrote up to
/// `before` are removed on every node, except what a hold covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    /// The roster version that made the request.
    pub id: u64,
    pub member: String,
    /// The member's devices when it was made (a member removed later is still erased).
    pub devices: Vec<DeviceId>,
    pub before: u64,
}

impl Keep {
    pub fn describe(&self) -> String {
        let d = |x: Option<u32>| x.map_or("forever".to_string(), |n| format!("{n} days"));
        match self.files_days {
            None => format!("messages {}", d(self.days)),
            f => format!("messages {}, files {}", d(self.days), d(f)),
        }
    }
}

impl Retention {
    /// One line: "org: messages 30 days; #legal: messages forever; DMs: ...". Channels are
    /// named as `names` shows them (a renamed one by its new name), or as stored without it.
    pub fn describe(&self, names: Option<&Roster>) -> String {
        let mut parts = vec![format!("org: {}", self.org.describe())];
        if let Some(k) = &self.dms {
            parts.push(format!("DMs: {}", k.describe()));
        }
        for (c, k) in &self.channels {
            parts.push(format!("#{}: {}", shown_by(names, c), k.describe()));
        }
        parts.join("; ")
    }
}

impl Hold {
    /// What it covers: "members amina, bilal; channels legal", the channels named as in
    /// [`Retention::describe`].
    pub fn describe(&self, names: Option<&Roster>) -> String {
        let mut parts = Vec::new();
        if !self.members.is_empty() {
            parts.push(format!("members {}", self.members.join(", ")));
        }
        if !self.channels.is_empty() {
            parts.push(format!("channels {}", self.shown_channels(names)));
        }
        let mut s = parts.join("; ");
        if !self.reason.is_empty() {
            s.push_str(&format!(" ({})", self.reason));
        }
        s
    }

    /// Its channels, named as `names` shows them, comma-separated.
    pub fn shown_channels(&self, names: Option<&Roster>) -> String {
        let shown: Vec<&str> = self.channels.iter().map(|c| shown_by(names, c)).collect();
        shown.join(", ")
    }
}

/// The name `names` shows `channel` under, or `channel` itself without a roster (an audit
/// text says names as they were recorded: its callers pass `None`).
pub fn shown_by<'a>(names: Option<&'a Roster>, channel: &'a str) -> &'a str {
    names.map_or(channel, |r| r.shown(channel))
}

/// Where a retention rule applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    Org,
    Dms,
    Channel(String),
}

/// How [`RosterChange::ChannelMembers`] changes a channel's member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembersChange {
    /// Put these members on a channel that lists its members.
    Add(Vec<String>),
    /// Take these members off a channel that lists its members.
    Remove(Vec<String>),
    /// Exactly these members (`None`: open to every member, guests excepted).
    Set(Option<Vec<String>>),
}

/// A change an admin makes; turned into the next roster version by [`Roster::next`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RosterChange {
    /// Add a member, or add a device (and optionally change the role) of an existing one.
    AddMember {
        name: String,
        device: DeviceId,
        role: Option<Role>,
    },
    RemoveMember {
        name: String,
    },
    RevokeDevice {
        device: DeviceId,
    },
    CreateChannel {
        name: String,
        members: Option<Vec<String>>,
    },
    /// Change who may read and post in an existing channel. A member taken off it stops
    /// receiving it at once, and every sender's next message there is under a new key that
    /// the member is not given; a member put on it is given the keys to its history.
    ChannelMembers {
        name: String,
        change: MembersChange,
    },
    SetPolicy {
        policy: Policy,
    },
    SetFilePolicy {
        files: FilePolicy,
    },
    SetRetention {
        scope: Scope,
        keep: Keep,
    },
    PlaceHold {
        members: Vec<String>,
        channels: Vec<String>,
        reason: String,
    },
    ReleaseHold {
        id: u64,
    },
    Erase {
        member: String,
    },
    SetReadReceipts {
        receipts: ReadReceipts,
    },
    /// Archive a channel (`archived`: true) or bring it back. Archived, it stays readable,
    /// searchable and under retention and holds, and nobody posts in it.
    ArchiveChannel {
        name: String,
        archived: bool,
    },
    /// Show a channel under another name (`to`; its own wire name again: the rename is
    /// undone). Messages, keys and topics keep the wire name; views and commands use `to`.
    RenameChannel {
        name: String,
        to: String,
    },
    /// Give a member the full name people see (`Some`), or take it away (`None`: views
    /// show the roster name again). The roster name, which messages carry, stays.
    SetFullName {
        member: String,
        full_name: Option<String>,
    },
    /// Let only `posters` (members who read it) post in a channel, the others reading
    /// (`Some`), or every reader again (`None`).
    ChannelPosters {
        name: String,
        posters: Option<Vec<String>>,
    },
    /// Make a group that one mention reaches (`@hr`) with exactly `members`, or change
    /// who is in it (`Some`); or delete it (`None`).
    SetGroup {
        name: String,
        members: Option<Vec<String>>,
    },
    /// Let the readers of a channel where only some post reply in its threads (`true`), or
    /// stop them (`false`; what they replied before stays).
    ChannelReplies {
        name: String,
        on: bool,
    },
    /// Give a member the job title people see beside their name (`Some`), or take it away
    /// (`None`).
    SetTitle {
        member: String,
        title: Option<String>,
    },
}

pub fn valid_name(kind: &str, name: &str) -> Result<(), RosterError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with('@')
        && !name.contains(',')
        && !name.chars().any(|c| c.is_control());
    if ok {
        Ok(())
    } else {
        Err(RosterError::Rule(format!(
            "'{name}' is not a valid {kind} name: 1-{MAX_NAME_BYTES} bytes, no commas, no control characters, not starting with '@'"
        )))
    }
}
