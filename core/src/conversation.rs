//! Threads, edits, deletions and reactions: the pure part.
//!
//! Each is a message of its own (sealed like text, signed, checked against the roster,
//! stored, caught up and relayed like any other), naming the message it acts on inside its
//! sealed body. Nothing is ever rewritten in place: what a reader sees of a message is
//! *folded* from the message and the messages that act on it, in a fixed order, so every
//! node that holds the same messages shows the same thing whatever order they arrived in.
//!
//! The rules hold against a member running a modified client, because every reader applies
//! them, not the sender: an edit counts only from the message's own member, a deletion only
//! from its member or an admin, one reaction per member and emoji (the latest says whether
//! it stands), and nothing acts across channels (the store looks acts up by channel).
//!
//! A channel's details (topic and description, pinned messages, who left an open channel)
//! are acts too, filed under the channel itself ([`CHANNEL`]) and folded by [`details`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::message::MessageId;
use crate::store::StoredMessage;

/// What a message does to another one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Act {
    /// A reply in the thread of `to`; with `also_channel` it is shown in the channel too.
    Reply { to: MessageId, also_channel: bool },
    /// The author's new text for `of` (the act's text).
    Edit { of: MessageId },
    /// `of` is deleted.
    Delete { of: MessageId },
    /// A reaction to `to`, added (`on`) or taken back.
    React {
        to: MessageId,
        emoji: String,
        on: bool,
    },
    /// Its member has read the channel up to `upto` (a read receipt; DMs and small
    /// channels only, see [`RECEIPTS_UP_TO`]).
    Read { upto: MessageId },
    /// The channel's topic and description.
    Topic { topic: String, description: String },
    /// `of` pinned to the channel (`on`) or unpinned.
    Pin { of: MessageId, on: bool },
    /// Its member joins (`on`) or leaves an open channel.
    Join { on: bool },
    /// Its member's answer to the poll `poll` (option indices, ascending; none: taken back).
    Vote { poll: MessageId, choices: Vec<u8> },
    /// The poll `of` is closed: votes sent after count for nothing.
    ClosePoll { of: MessageId },
    /// Its member saved `of` for later (`on`) or took it off the list (in their notes only).
    Save { of: MessageId, on: bool },
    /// Its member is to be reminded of `of` at `at` (`on`) or no longer (in their notes
    /// only; each of their devices keeps it in its own list).
    Remind { of: MessageId, at: u64, on: bool },
    /// Its member paused notifications until `until` (0: resumed; in their notes only; each
    /// of their devices follows the latest).
    Pause { until: u64 },
    /// Its member chose how they are notified of `channel` (in their notes only; each of
    /// their devices follows the latest).
    Notify { channel: String, notify: Notify },
    /// Its member's notification hours (`None`: any time; in their notes only; each of
    /// their devices follows the latest).
    Hours { hours: Option<Hours> },
    /// Its member starred `channel` (`on`) or unstarred it (in their notes only; each of
    /// their devices follows the latest).
    Star { channel: String, on: bool },
    /// Its member marked `channel` unread from the message sent at `from`, or (0) read it
    /// again (in their notes only; each of their devices follows the latest).
    Unread { channel: String, from: u64 },
    /// Its member saw the thread hanging from `thread` up to its reply sent at `upto` (in
    /// their notes only; each of their devices keeps the latest of what any saw).
    Seen { thread: MessageId, upto: u64 },
}

/// A thread a member takes part in, as [`crate::Node::threads`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadSummary {
    /// The message the thread hangs from, its replies counted.
    pub root: StoredMessage,
    /// The thread's latest reply.
    pub last: StoredMessage,
}

/// When a member's devices raise desktop notifications: from `from` to `to` (minutes after
/// local midnight, each device on its own clock; `to` before `from` spans midnight, for a
/// night shift) on the days in `days` (bit 0 Monday … bit 6 Sunday; a span past midnight
/// belongs to the day it starts). Outside them messages arrive and count as unread, quietly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Hours {
    pub from: u16,
    pub to: u16,
    pub days: u8,
}

impl Hours {
    /// Monday to Friday.
    pub const MON_FRI: u8 = 0b001_1111;
    /// Sunday to Thursday (the working week in much of the Gulf).
    pub const SUN_THU: u8 = 0b100_1111;

    /// Whether a notification may be raised on `weekday` (0 Monday … 6 Sunday) at `minute`
    /// after local midnight.
    pub fn allow(&self, weekday: u8, minute: u16) -> bool {
        let on = |day: u8| self.days & (1 << (day % 7)) != 0;
        if self.from <= self.to {
            on(weekday) && (self.from..self.to).contains(&minute)
        } else {
            (minute >= self.from && on(weekday)) || (minute < self.to && on(weekday + 6))
        }
    }
}

/// How a member's devices notify them of one conversation. The same on each of their
/// devices: chosen on one, it travels to the others in the member's notes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Notify {
    /// A direct message, or a message that mentions them.
    #[default]
    Usual,
    /// Every message (an alerts channel someone must not miss).
    Everything,
    /// Nothing (muted): unread counts still show, quietly.
    Nothing,
}

/// A poll as a reader sees it: its options with who chose each, folded from the votes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollView {
    pub options: Vec<PollOption>,
    /// A reader may choose several options.
    pub multi: bool,
    /// Who closed it, and when (`None`: open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollOption {
    pub text: String,
    /// Members whose latest vote chose it, sorted.
    pub voters: Vec<String>,
}

impl PollView {
    /// Members who have voted, sorted, each once.
    pub fn voters(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .options
            .iter()
            .flat_map(|o| o.voters.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The options `member` chose (indices).
    pub fn chosen_by(&self, member: &str) -> Vec<usize> {
        (0..self.options.len())
            .filter(|i| self.options[*i].voters.iter().any(|v| v == member))
            .collect()
    }
}

/// Most options a poll offers, and the longest question and option (characters).
pub const MAX_POLL_OPTIONS: usize = 12;
pub const MAX_POLL_QUESTION_CHARS: usize = 300;
pub const MAX_POLL_OPTION_CHARS: usize = 100;

/// A poll a member may ask: a one-line question, 2 to [`MAX_POLL_OPTIONS`] one-line options,
/// none empty or the same as another but for case (a vote names an option by its place, so
/// two that read alike would split the answers). Readers show a poll that breaks this as one
/// they cannot show, so a modified client's poll cannot make them count votes wrong.
pub fn check_poll(question: &str, options: &[String]) -> crate::Result<()> {
    let bad = |why: String| Err(crate::Error::Invalid(why));
    let line = |t: &str, max: usize| {
        !t.is_empty()
            && t.trim() == t
            && t.chars().count() <= max
            && !t.chars().any(char::is_control)
    };
    if !line(question, MAX_POLL_QUESTION_CHARS) {
        return bad(format!(
            "a poll's question is one line of 1 to {MAX_POLL_QUESTION_CHARS} characters"
        ));
    }
    if !(2..=MAX_POLL_OPTIONS).contains(&options.len()) {
        return bad(format!(
            "a poll offers 2 to {MAX_POLL_OPTIONS} options, not {}",
            options.len()
        ));
    }
    if let Some(o) = options.iter().find(|o| !line(o, MAX_POLL_OPTION_CHARS)) {
        return bad(format!(
            "'{o}' is not an option: one line of 1 to {MAX_POLL_OPTION_CHARS} characters"
        ));
    }
    for (i, o) in options.iter().enumerate() {
        if options[..i]
            .iter()
            .any(|p| p.to_lowercase() == o.to_lowercase())
        {
            return bad(format!("'{o}' is offered twice: each option once"));
        }
    }
    Ok(())
}

/// Whether `choices` is an answer to a poll of `options` options: ascending, each offered,
/// one at most unless `multi`; none (taking the vote back) always is.
pub fn valid_choices(choices: &[u8], options: usize, multi: bool) -> bool {
    choices.windows(2).all(|w| w[0] < w[1])
        && choices.iter().all(|c| usize::from(*c) < options)
        && (multi || choices.len() <= 1)
}

/// Where a forwarded message came from, as the forwarder's client put it: the message, its
/// author and channel (wire names) and when it was sent. A modified client can write
/// anything here, so readers check it against the original where they hold it
/// ([`ForwardCheck`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarded {
    pub id: MessageId,
    pub author: String,
    pub channel: String,
    pub sent_at: u64,
}

/// What this device can tell of a forwarded message's text and origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardCheck {
    /// This device holds the original: the same author, channel and text (as written, or
    /// as its author last edited it).
    Matches,
    /// This device holds the original, and it says otherwise: the forwarder's client put
    /// words in the author's mouth, or named the wrong author.
    Differs,
    /// This device does not hold the original (it may not read that channel): the origin is
    /// the forwarder's word.
    Unseen,
}

/// A forwarded message's origin as this device shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardView {
    pub id: MessageId,
    pub author: String,
    pub channel: String,
    pub sent_at: u64,
    pub check: ForwardCheck,
}

impl ForwardView {
    pub fn of(from: Forwarded, check: ForwardCheck) -> ForwardView {
        ForwardView {
            id: from.id,
            author: from.author,
            channel: from.channel,
            sent_at: from.sent_at,
            check,
        }
    }
}

/// What acts on the channel itself (topic, pins, joining) is filed under this id: no
/// message has it (ids are BLAKE3 hashes).
pub const CHANNEL: MessageId = MessageId([0; 32]);

/// Longest topic and description (characters): a line and a paragraph.
pub const MAX_TOPIC_CHARS: usize = 250;
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// A topic and description a member may set: the topic one line of at most
/// [`MAX_TOPIC_CHARS`], the description at most [`MAX_DESCRIPTION_CHARS`].
pub fn check_topic(topic: &str, description: &str) -> crate::Result<()> {
    if topic.chars().count() > MAX_TOPIC_CHARS
        || description.chars().count() > MAX_DESCRIPTION_CHARS
        || topic.contains('\n')
    {
        return Err(crate::Error::Invalid(format!(
            "a topic is one line of at most {MAX_TOPIC_CHARS} characters, a description at \
             most {MAX_DESCRIPTION_CHARS}"
        )));
    }
    Ok(())
}

/// Whether a member may join (`on`) or leave `channel`: `open` is `None` for no such
/// channel, else whether the roster opens it to every member; `left` whether the member's
/// latest join act left it. Only open channels are joined and left (a restricted one is
/// an admin's list), and only to change something.
pub fn check_join(channel: &str, open: Option<bool>, left: bool, on: bool) -> crate::Result<()> {
    use crate::Error;
    match open {
        None => Err(Error::Invalid(format!(
            "no channel #{channel} on the roster (direct messages cannot be left)"
        ))),
        Some(false) => Err(Error::Denied(format!(
            "#{channel} is restricted to its members: an admin adds or removes them"
        ))),
        Some(true) if left != on => Err(Error::Conflict(match on {
            true => format!("you have already joined #{channel}"),
            false => format!("you have already left #{channel}"),
        })),
        Some(true) => Ok(()),
    }
}

/// A channel as a member's list shows it (`majlisd channel list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRow {
    /// The channel's name on the wire: what its messages carry; never changes.
    pub name: String,
    /// The name it is shown under: `name`, or what an admin renamed it to.
    #[serde(default)]
    pub display_name: String,
    /// Who may read and post: `None` for every member (guests excepted).
    pub members: Option<Vec<String>>,
    /// Who posts, where an admin let only some of its readers post; absent where every
    /// reader does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posters: Option<Vec<String>>,
    /// Where only some post: its other readers reply in its threads.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub readers_reply: bool,
    pub topic: String,
    /// An admin archived it: readable, nobody posts.
    pub archived: bool,
    /// This member left it (an open channel): out of their list, one step from joining.
    pub left: bool,
}

/// The channels of `head` that `me`'s member may read, in roster order, with what each
/// shows of itself in `store`. Empty for a device not on the roster.
pub fn channel_rows(
    head: &crate::roster::VerifiedRoster,
    me: &crate::identity::DeviceId,
    store: &crate::store::Store,
) -> crate::Result<Vec<ChannelRow>> {
    let Some(member) = head.member_of_device(me) else {
        return Ok(Vec::new());
    };
    head.roster
        .readable(member)
        .map(|c| {
            let d = store.details(&c.name)?;
            Ok(ChannelRow {
                name: c.name.clone(),
                display_name: head.roster.shown(&c.name).to_string(),
                members: c.members.clone(),
                posters: head.roster.posters(&c.name).map(<[String]>::to_vec),
                readers_reply: head.roster.readers_reply(&c.name),
                topic: d.topic,
                archived: head.roster.is_archived(&c.name),
                left: d.left.contains(&member.name),
            })
        })
        .collect()
}

/// Most pinned messages a channel shows (the newest pins).
pub const MAX_PINS: usize = 50;

/// Read receipts are sent in DMs and in channels with at most this many readers: beyond,
/// "read by 40 people" says little and costs a message per reader per read.
pub const RECEIPTS_UP_TO: usize = 20;

impl Act {
    /// The message acted on, or [`CHANNEL`] for what acts on the channel itself.
    pub fn target(&self) -> MessageId {
        match self {
            Act::Reply { to, .. } | Act::React { to, .. } => *to,
            Act::Read { upto } => *upto,
            Act::Edit { of } | Act::Delete { of } | Act::ClosePoll { of } => *of,
            Act::Vote { poll, .. } => *poll,
            Act::Topic { .. }
            | Act::Pin { .. }
            | Act::Join { .. }
            | Act::Save { .. }
            | Act::Remind { .. }
            | Act::Pause { .. }
            | Act::Notify { .. }
            | Act::Hours { .. }
            | Act::Star { .. }
            | Act::Unread { .. }
            | Act::Seen { .. } => CHANNEL,
        }
    }

    /// Whether this act is nothing to print as it arrives: a read receipt, or what a member
    /// keeps in their notes for their own devices (saved messages, reminders, a pause, how
    /// they are notified).
    pub fn is_quiet(&self) -> bool {
        matches!(
            self,
            Act::Read { .. }
                | Act::Save { .. }
                | Act::Remind { .. }
                | Act::Pause { .. }
                | Act::Notify { .. }
                | Act::Hours { .. }
                | Act::Star { .. }
                | Act::Unread { .. }
                | Act::Seen { .. }
        )
    }

    /// Whether a message with this act is itself a message people wrote (a plain message or
    /// a reply), which can be replied to, edited, reacted to, pinned and searched; the other
    /// acts only change what something else shows.
    pub fn is_message(act: Option<&Act>) -> bool {
        matches!(act, None | Some(Act::Reply { .. }))
    }

    /// Whether a message with this act is a row of its channel's history (a reply sent to
    /// the channel too); the others show only folded into their target or its thread.
    pub fn in_channel(act: Option<&Act>) -> bool {
        matches!(
            act,
            None | Some(Act::Reply {
                also_channel: true,
                ..
            })
        )
    }
}

/// Who holds and who has read one of our messages: what the app's ticks and `majlisd
/// history` show. Receipts are kept per channel and member, as the newest `sent_at` each
/// member holds (`Node::delivered_marks`) and has read (`Node::read_marks`), so one
/// message's receipt is every other member whose mark reaches its `sent_at`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Members (not us) whose devices hold it; a reader holds it too. Sorted.
    pub delivered_to: Vec<String>,
    /// Members (not us) whose apps have shown it; empty while the org has read receipts off.
    /// Sorted.
    pub read_by: Vec<String>,
}

impl Receipt {
    /// The receipt of a message of ours sent at `sent_at`. `read_receipts`: the org's
    /// setting (delivered ticks stay when it is off).
    pub fn of(
        sent_at: u64,
        me: &str,
        delivered: &[(String, u64)],
        read: &[(String, u64)],
        read_receipts: bool,
    ) -> Receipt {
        let reached = |marks: &[(String, u64)]| -> std::collections::BTreeSet<String> {
            marks
                .iter()
                .filter(|(who, at)| who != me && *at >= sent_at)
                .map(|(who, _)| who.clone())
                .collect()
        };
        let read_by = if read_receipts {
            reached(read)
        } else {
            Default::default()
        };
        let mut delivered_to = reached(delivered);
        delivered_to.extend(read_by.iter().cloned());
        Receipt {
            delivered_to: delivered_to.into_iter().collect(),
            read_by: read_by.into_iter().collect(),
        }
    }

    pub fn tick(&self) -> Tick {
        match (self.read_by.len(), self.delivered_to.len()) {
            (0, 0) => Tick::Sent,
            (0, n) => Tick::Delivered(n),
            (n, _) => Tick::Read(n),
        }
    }
}

/// What the ticks on one of our messages say, in the app and in `majlisd history`: read
/// (by how many members) once a reader's app has shown it, else delivered (to how many
/// members' devices), else sent. In a DM the count is the other member, so front ends omit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Sent,
    Delivered(usize),
    Read(usize),
}

/// Who reacted with one emoji.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub emoji: String,
    /// Member names, sorted.
    pub members: Vec<String>,
}

/// Longest reaction accepted (bytes): one emoji with its modifiers and joiners.
pub const MAX_EMOJI_BYTES: usize = 32;

/// A reaction is one short symbol: no spaces, no control characters, at most 8 chars
/// (a family emoji with joiners is 7).
pub fn valid_emoji(e: &str) -> bool {
    !e.is_empty()
        && e.len() <= MAX_EMOJI_BYTES
        && e.chars().count() <= 8
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The text a deleted message shows.
pub const DELETED_TEXT: &str = "message deleted";

/// Apply `acts` (messages whose act targets `m`, in any order) to `m`. `is_admin` says
/// whether a member is an admin of the org now. Acts that break the rules are ignored.
pub fn fold(m: &mut StoredMessage, mut acts: Vec<StoredMessage>, is_admin: &dyn Fn(&str) -> bool) {
    acts.retain(|a| {
        !a.locked && a.channel == m.channel && a.act.as_ref().is_some_and(|x| x.target() == m.id)
    });
    acts.sort_by_key(|a| (a.sent_at, a.id));
    // (member, emoji) -> on, the latest act winning.
    let mut reacted: BTreeMap<(String, String), bool> = BTreeMap::new();
    // member -> choices, the latest vote sent before the poll closed winning.
    let mut votes: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for a in &acts {
        match a.act.as_ref().expect("retained") {
            Act::Reply { .. } => {
                if !a.deleted {
                    m.replies += 1;
                    m.repliers.retain(|r| *r != a.sender);
                    m.repliers.push(a.sender.clone());
                }
            }
            Act::Edit { .. } => {
                // A poll's question stays what was voted on.
                if !m.deleted && a.sender == m.sender && m.poll.is_none() {
                    m.text = a.text.clone();
                    m.edited = true;
                    // A forward whose text its forwarder changed is no longer what the
                    // author wrote, whatever the original says.
                    if let Some(f) = &mut m.forwarded {
                        f.check = ForwardCheck::Differs;
                    }
                }
            }
            Act::Delete { .. } => {
                if a.sender == m.sender || is_admin(&a.sender) {
                    m.deleted = true;
                }
            }
            Act::React { emoji, on, .. } => {
                if valid_emoji(emoji) {
                    reacted.insert((a.sender.clone(), emoji.clone()), *on);
                }
            }
            Act::Vote { choices, .. } => {
                if let Some(p) = m.poll.as_ref().filter(|p| p.closed.is_none()) {
                    if valid_choices(choices, p.options.len(), p.multi) {
                        votes.insert(a.sender.clone(), choices.clone());
                    }
                }
            }
            Act::ClosePoll { .. } => {
                if let Some(p) = m.poll.as_mut().filter(|p| p.closed.is_none()) {
                    if a.sender == m.sender || is_admin(&a.sender) {
                        p.closed = Some((a.sender.clone(), a.sent_at));
                    }
                }
            }
            // Receipts are kept per channel and member (`Store::read_marks`), not per message;
            // channel acts are filed under the channel, never under a message.
            Act::Read { .. }
            | Act::Topic { .. }
            | Act::Pin { .. }
            | Act::Join { .. }
            | Act::Save { .. }
            | Act::Remind { .. }
            | Act::Pause { .. }
            | Act::Notify { .. }
            | Act::Hours { .. }
            | Act::Star { .. }
            | Act::Unread { .. }
            | Act::Seen { .. } => {}
        }
    }
    // The last three repliers, most recent last.
    let n = m.repliers.len();
    m.repliers.drain(..n.saturating_sub(3));
    let mut by_emoji: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((member, emoji), on) in reacted {
        if on {
            by_emoji.entry(emoji).or_default().push(member);
        }
    }
    m.reactions = by_emoji
        .into_iter()
        .map(|(emoji, members)| Reaction { emoji, members })
        .collect();
    if let Some(p) = &mut m.poll {
        for (member, choices) in votes {
            for c in choices {
                p.options[usize::from(c)].voters.push(member.clone());
            }
        }
    }
    if m.deleted {
        m.text = DELETED_TEXT.to_string();
        m.file = None;
        m.edited = false;
        m.reactions.clear();
        m.poll = None;
    }
}

/// What a channel shows about itself, folded from the acts filed under [`CHANNEL`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    pub topic: String,
    pub description: String,
    /// Who set the topic, and when (`None`: never set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_by: Option<(String, u64)>,
    /// Pinned messages, the most recently pinned first: the message, who pinned it, when.
    /// The store drops pins of messages it does not hold in this channel.
    pub pins: Vec<(MessageId, String, u64)>,
    /// Members who left this open channel (their latest join act says so), sorted.
    pub left: Vec<String>,
    /// An admin archived it: readable, and nobody posts (from the roster, not from acts;
    /// set by [`crate::Node::details`]).
    #[serde(default)]
    pub archived: bool,
}

/// Fold the acts on a channel (any order) into its [`Details`]. The latest act of each kind
/// stands (per pinned message, per member for joining); a topic that breaks
/// [`check_topic`] is ignored.
/// Who may set a topic or pin is who may post (intake refused the others' messages).
pub fn details(mut acts: Vec<StoredMessage>) -> Details {
    acts.retain(|a| !a.locked && a.act.as_ref().is_some_and(|x| x.target() == CHANNEL));
    acts.sort_by_key(|a| (a.sent_at, a.id));
    let mut d = Details::default();
    let mut pins: BTreeMap<MessageId, Option<(String, u64, MessageId)>> = BTreeMap::new();
    let mut joined: BTreeMap<String, bool> = BTreeMap::new();
    for a in &acts {
        match a.act.as_ref().expect("retained") {
            // The same rule the sender's node and the API apply: a modified client's
            // multi-line or oversized topic is not shown.
            Act::Topic { topic, description } if check_topic(topic, description).is_ok() => {
                d.topic = topic.clone();
                d.description = description.clone();
                d.topic_by = Some((a.sender.clone(), a.sent_at));
            }
            Act::Pin { of, on } => {
                pins.insert(*of, on.then(|| (a.sender.clone(), a.sent_at, a.id)));
            }
            Act::Join { on } => {
                joined.insert(a.sender.clone(), *on);
            }
            _ => {}
        }
    }
    let mut pinned: Vec<_> = pins
        .into_iter()
        .filter_map(|(of, by)| by.map(|(who, at, id)| (at, id, of, who)))
        .collect();
    pinned.sort_by_key(|p| std::cmp::Reverse((p.0, p.1)));
    d.pins = pinned
        .into_iter()
        .take(MAX_PINS)
        .map(|(at, _, of, who)| (of, who, at))
        .collect();
    d.left = joined
        .into_iter()
        .filter(|(_, on)| !on)
        .map(|(m, _)| m)
        .collect();
    d
}

/// Fold the save acts of `member`'s notes (any order) into what they saved for later, most
/// recently saved first: the latest act for each message stands. Only `member`'s own acts
/// count (intake lets nobody else post there; this holds even if a store had one).
pub fn saves(mut acts: Vec<StoredMessage>, member: &str) -> Vec<(MessageId, bool)> {
    acts.retain(|a| !a.locked && a.sender == member);
    acts.sort_by_key(|a| (a.sent_at, a.id));
    let mut latest: BTreeMap<MessageId, (u64, MessageId, bool)> = BTreeMap::new();
    for a in &acts {
        if let Some(Act::Save { of, on }) = a.act {
            latest.insert(of, (a.sent_at, a.id, on));
        }
    }
    let mut out: Vec<_> = latest.into_iter().collect();
    out.sort_by_key(|(_, (at, id, _))| std::cmp::Reverse((*at, *id)));
    out.into_iter().map(|(of, (_, _, on))| (of, on)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceId;

    fn msg(n: u8, sender: &str, at: u64, text: &str, act: Option<Act>) -> StoredMessage {
        StoredMessage {
            id: MessageId([n; 32]),
            channel: "general".into(),
            sender: sender.into(),
            device: DeviceId([n; 32]),
            sent_at: at,
            text: text.into(),
            act,
            ..Default::default()
        }
    }

    fn id(n: u8) -> MessageId {
        MessageId([n; 32])
    }

    /// Office hours on working days; a night shift past midnight belongs to the day it
    /// starts (Thursday night's shift runs into Friday morning, Friday's does not start).
    #[test]
    fn notification_hours_allow_their_days_and_times() {
        let (mon, thu, fri, sun) = (0, 3, 4, 6);
        let office = Hours {
            from: 9 * 60,
            to: 18 * 60,
            days: Hours::SUN_THU,
        };
        assert!(office.allow(sun, 9 * 60) && office.allow(thu, 18 * 60 - 1));
        assert!(!office.allow(thu, 18 * 60) && !office.allow(mon, 8 * 60 + 59));
        assert!(!office.allow(fri, 12 * 60), "not a working day");
        let night = Hours {
            from: 22 * 60,
            to: 6 * 60,
            days: Hours::SUN_THU,
        };
        assert!(night.allow(thu, 23 * 60) && night.allow(fri, 5 * 60));
        assert!(!night.allow(fri, 23 * 60) && !night.allow(sun, 5 * 60));
        assert!(night.allow(mon, 0) && !night.allow(mon, 12 * 60));
    }

    /// A member's saved list is the latest save act for each message, whatever order the
    /// acts arrived in, most recently saved first; nobody else's act, and no act the device
    /// cannot read, counts.
    #[test]
    fn what_is_saved_is_the_latest_save_of_each_message_by_its_member() {
        let save = |n, who: &str, at, of, on| msg(n, who, at, "", Some(Act::Save { of, on }));
        let mut acts = vec![
            save(10, "bilal", 100, id(1), true),
            save(11, "bilal", 300, id(1), false),
            save(12, "bilal", 200, id(2), true),
            save(13, "bilal", 400, id(3), true),
            save(14, "chen", 500, id(4), true),
            save(15, "chen", 600, id(3), false),
            msg(16, "bilal", 700, "a note", None),
        ];
        let mut locked = save(17, "bilal", 800, id(5), true);
        locked.locked = true;
        acts.push(locked);
        let want = [(id(3), true), (id(1), false), (id(2), true)];
        assert_eq!(saves(acts.clone(), "bilal"), want);
        acts.reverse();
        assert_eq!(saves(acts, "bilal"), want, "any arrival order");
    }

    #[test]
    fn a_receipt_names_who_holds_and_who_read_a_message() {
        let marks = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
            v.iter().map(|(w, t)| (w.to_string(), *t)).collect()
        };
        // chen holds up to 200, bilal up to 100; bilal read up to 100; our own marks count
        // for nobody.
        let delivered = marks(&[("chen", 200), ("bilal", 100), ("amina", 900)]);
        let read = marks(&[("bilal", 100), ("amina", 900), ("dana", 50)]);
        let r = Receipt::of(100, "amina", &delivered, &read, true);
        assert_eq!(r.delivered_to, ["bilal", "chen"]);
        assert_eq!(r.read_by, ["bilal"]);
        assert_eq!(r.tick(), Tick::Read(1));
        // A later message: only chen holds it, nobody read it.
        let r = Receipt::of(150, "amina", &delivered, &read, true);
        assert_eq!(
            (r.delivered_to, r.read_by),
            (vec!["chen".to_string()], vec![])
        );
        // A reader holds what it read even before its delivery mark says so.
        let r = Receipt::of(40, "amina", &marks(&[]), &read, true);
        assert_eq!(r.delivered_to, ["bilal", "dana"]);
        // Read receipts off: delivered ticks stay, nobody shows as a reader.
        let r = Receipt::of(100, "amina", &delivered, &read, false);
        assert_eq!(r.delivered_to, ["bilal", "chen"]);
        assert!(r.read_by.is_empty());
        assert_eq!(r.tick(), Tick::Delivered(2));
        assert_eq!(
            Receipt::of(300, "amina", &delivered, &read, true).tick(),
            Tick::Sent
        );
    }

    #[test]
    fn the_latest_edit_by_its_member_wins_and_others_are_ignored() {
        let mut m = msg(1, "amina", 10, "helo", None);
        let acts = vec![
            msg(3, "amina", 30, "hello all", Some(Act::Edit { of: id(1) })),
            msg(2, "amina", 20, "hello", Some(Act::Edit { of: id(1) })),
            // Bilal runs a modified client: his edit of amina's message is not taken.
            msg(
                4,
                "bilal",
                40,
                "amina owes me",
                Some(Act::Edit { of: id(1) }),
            ),
        ];
        fold(&mut m, acts, &|_| false);
        assert_eq!(m.text, "hello all");
        assert!(m.edited);
    }

    #[test]
    fn deletion_by_the_author_or_an_admin_only_and_it_hides_everything() {
        let base = || {
            let mut m = msg(1, "bilal", 10, "secret", None);
            m.file = None;
            m
        };
        let react = msg(
            5,
            "chen",
            15,
            "",
            Some(Act::React {
                to: id(1),
                emoji: "👍".into(),
                on: true,
            }),
        );
        let by = |who: &str, n: u8| msg(n, who, 20, "", Some(Act::Delete { of: id(1) }));
        let admin = |w: &str| w == "amina";
        let mut m = base();
        fold(&mut m, vec![by("chen", 2), react.clone()], &admin);
        assert!(!m.deleted, "chen is neither the author nor an admin");
        assert_eq!(m.reactions.len(), 1);
        for who in ["bilal", "amina"] {
            let mut m = base();
            let edit = msg(9, "bilal", 30, "unsecret", Some(Act::Edit { of: id(1) }));
            fold(&mut m, vec![by(who, 2), react.clone(), edit], &admin);
            assert!(m.deleted, "{who} may delete");
            assert_eq!(m.text, DELETED_TEXT);
            assert!(m.reactions.is_empty() && !m.edited);
        }
    }

    #[test]
    fn reactions_count_once_per_member_and_can_be_taken_back() {
        let r = |n: u8, who: &str, at: u64, e: &str, on: bool| {
            msg(
                n,
                who,
                at,
                "",
                Some(Act::React {
                    to: id(1),
                    emoji: e.into(),
                    on,
                }),
            )
        };
        let acts = vec![
            r(2, "bilal", 20, "👍", true),
            r(3, "bilal", 21, "👍", true),
            r(4, "chen", 22, "👍", true),
            r(5, "chen", 23, "🎉", true),
            r(6, "chen", 24, "🎉", false),
            r(7, "gita", 25, "not an emoji at all", true),
            r(8, "gita", 26, "", true),
        ];
        // Whatever order they arrive in, the same result.
        for order in [acts.clone(), acts.iter().rev().cloned().collect()] {
            let mut m = msg(1, "amina", 10, "lunch?", None);
            fold(&mut m, order, &|_| false);
            assert_eq!(
                m.reactions,
                vec![Reaction {
                    emoji: "👍".into(),
                    members: vec!["bilal".into(), "chen".into()],
                }]
            );
        }
    }

    #[test]
    fn replies_are_counted_with_the_last_repliers_and_other_targets_ignored() {
        let reply = |n: u8, who: &str, at: u64| {
            msg(
                n,
                who,
                at,
                "re",
                Some(Act::Reply {
                    to: id(1),
                    also_channel: false,
                }),
            )
        };
        let mut elsewhere = reply(9, "gita", 99);
        elsewhere.channel = "ops".into();
        let mut locked = reply(10, "gita", 98);
        locked.locked = true;
        let other = msg(
            11,
            "gita",
            97,
            "",
            Some(Act::Reply {
                to: id(2),
                also_channel: false,
            }),
        );
        let mut m = msg(1, "amina", 10, "plan?", None);
        let acts = vec![
            reply(2, "bilal", 20),
            reply(3, "chen", 30),
            reply(4, "bilal", 40),
            reply(5, "dana", 50),
            reply(6, "erin", 60),
            elsewhere,
            locked,
            other,
        ];
        fold(&mut m, acts, &|_| false);
        assert_eq!(m.replies, 5);
        assert_eq!(m.repliers, ["bilal", "dana", "erin"]);
    }

    proptest::proptest! {
        /// Every node folds the same acts to the same result, whatever order they arrived
        /// in (gossip, catch-up after a partition, a relay): the fold is a function of the
        /// set of acts.
        #[test]
        fn the_fold_does_not_depend_on_arrival_order(
            acts in proptest::collection::vec((0u8..4, 0u8..3, 0u64..50, 0u8..3, proptest::bool::ANY), 0..40),
            seed in proptest::prelude::any::<u64>(),
        ) {
            use rand::{seq::SliceRandom, SeedableRng};
            let who = ["amina", "bilal", "chen"];
            let emoji = ["👍", "🎉", "x y"];
            let acts: Vec<StoredMessage> = acts
                .iter()
                .enumerate()
                .map(|(i, (kind, w, at, e, on))| {
                    let act = match kind {
                        0 => Act::Edit { of: id(1) },
                        1 => Act::Delete { of: id(1) },
                        2 => Act::Reply { to: id(1), also_channel: *on },
                        _ => Act::React { to: id(1), emoji: emoji[*e as usize].into(), on: *on },
                    };
                    let mut m = msg(10 + i as u8, who[*w as usize], 10 + at, &format!("v{i}"), Some(act));
                    m.id.0[1] = i as u8;
                    m
                })
                .collect();
            let admin = |w: &str| w == "chen";
            let mut first = msg(1, "amina", 5, "original", None);
            fold(&mut first, acts.clone(), &admin);
            let mut shuffled = acts;
            shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            let mut second = msg(1, "amina", 5, "original", None);
            fold(&mut second, shuffled, &admin);
            proptest::prop_assert_eq!(first, second);
        }

        /// The same for a poll: votes (valid or not), changes of mind and closings fold to
        /// the same tally in any order, and each member counts once per option.
        #[test]
        fn a_polls_tally_does_not_depend_on_arrival_order(
            acts in proptest::collection::vec((0u8..5, 0u8..3, 0u64..50, 0u8..4, 0u8..4), 0..40),
            multi in proptest::bool::ANY,
            seed in proptest::prelude::any::<u64>(),
        ) {
            use rand::{seq::SliceRandom, SeedableRng};
            let who = ["amina", "bilal", "chen"];
            let acts: Vec<StoredMessage> = acts
                .iter()
                .enumerate()
                .map(|(i, (kind, w, at, x, y))| {
                    let act = match kind {
                        0 => Act::ClosePoll { of: id(1) },
                        1 => Act::Vote { poll: id(1), choices: vec![] },
                        2 => Act::Edit { of: id(1) },
                        // Some out of range, some out of order, some two where one is allowed.
                        _ => Act::Vote { poll: id(1), choices: vec![*x, *y] },
                    };
                    let mut m = msg(10 + i as u8, who[*w as usize], 10 + at, &format!("v{i}"), Some(act));
                    m.id.0[1] = i as u8;
                    m
                })
                .collect();
            let admin = |w: &str| w == "chen";
            let poll = || {
                let mut m = msg(1, "amina", 5, "Lunch?", None);
                m.poll = Some(PollView {
                    options: ["a", "b", "c"]
                        .map(|t| PollOption { text: t.into(), voters: vec![] })
                        .into(),
                    multi,
                    closed: None,
                });
                m
            };
            let mut first = poll();
            fold(&mut first, acts.clone(), &admin);
            let mut shuffled = acts;
            shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            let mut second = poll();
            fold(&mut second, shuffled, &admin);
            proptest::prop_assert_eq!(&first, &second);
            proptest::prop_assert_eq!(&first.text, "Lunch?");
            let p = first.poll.unwrap();
            for o in &p.options {
                let mut v = o.voters.clone();
                v.dedup();
                proptest::prop_assert_eq!(&v, &o.voters);
            }
            if !multi {
                let votes: usize = p.options.iter().map(|o| o.voters.len()).sum();
                proptest::prop_assert_eq!(votes, p.voters().len());
            }
            proptest::prop_assert!(p.closed.as_ref().is_none_or(|(by, _)| by == "amina" || by == "chen"));
        }

        /// The same for a channel's details: topics, pins and leaving fold to the same view
        /// in any order.
        #[test]
        fn channel_details_do_not_depend_on_arrival_order(
            acts in proptest::collection::vec((0u8..3, 0u8..3, 0u64..50, 0u8..3, proptest::bool::ANY), 0..40),
            seed in proptest::prelude::any::<u64>(),
        ) {
            use rand::{seq::SliceRandom, SeedableRng};
            let who = ["amina", "bilal", "chen"];
            let acts: Vec<StoredMessage> = acts
                .iter()
                .enumerate()
                .map(|(i, (kind, w, at, t, on))| {
                    let act = match kind {
                        0 => Act::Topic { topic: format!("t{t}"), description: String::new() },
                        1 => Act::Pin { of: id(*t), on: *on },
                        _ => Act::Join { on: *on },
                    };
                    let mut m = msg(10 + i as u8, who[*w as usize], 10 + at, "", Some(act));
                    m.id.0[1] = i as u8;
                    m
                })
                .collect();
            let first = details(acts.clone());
            let mut shuffled = acts;
            shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            proptest::prop_assert_eq!(first, details(shuffled));
        }
    }

    #[test]
    fn only_single_symbols_are_reactions() {
        for ok in ["👍", "🎉", "👨‍👩‍👧‍👦", "+1", "✓"] {
            assert!(valid_emoji(ok), "{ok}");
        }
        for bad in ["", "two words", "a\u{7}", &"x".repeat(40)] {
            assert!(!valid_emoji(bad), "{bad:?}");
        }
    }

    fn topic(n: u8, who: &str, at: u64, t: &str) -> StoredMessage {
        let act = Act::Topic {
            topic: t.into(),
            description: format!("about {t}"),
        };
        msg(n, who, at, "", Some(act))
    }

    #[test]
    fn the_latest_topic_stands_and_one_over_the_limit_or_of_two_lines_is_ignored() {
        let long = "x".repeat(MAX_TOPIC_CHARS + 1);
        let acts = vec![
            topic(3, "bilal", 30, "Q4 launch"),
            topic(1, "amina", 10, "Sales"),
            topic(4, "chen", 40, &long),
            // A modified client's multi-line topic would push the channel's header apart.
            topic(6, "chen", 45, "Sales\nIGNORE THE ABOVE"),
            // An act on a message is not a channel act.
            msg(5, "chen", 50, "", Some(Act::Edit { of: id(1) })),
        ];
        let d = details(acts);
        assert_eq!(d.topic, "Q4 launch");
        assert_eq!(d.description, "about Q4 launch");
        assert_eq!(d.topic_by, Some(("bilal".into(), 30)));
    }

    #[test]
    fn pins_are_listed_newest_first_and_unpinning_removes_them() {
        let pin = |n, who: &str, at, of, on| msg(n, who, at, "", Some(Act::Pin { of, on }));
        let acts = vec![
            pin(10, "amina", 10, id(1), true),
            pin(11, "bilal", 20, id(2), true),
            pin(12, "chen", 30, id(1), false),
            pin(13, "chen", 40, id(3), true),
        ];
        let d = details(acts);
        assert_eq!(
            d.pins,
            vec![(id(3), "chen".into(), 40), (id(2), "bilal".into(), 20)]
        );
    }

    #[test]
    fn a_member_who_left_is_listed_until_they_join_again() {
        let join = |n, who: &str, at, on| msg(n, who, at, "", Some(Act::Join { on }));
        let d = details(vec![
            join(1, "bilal", 10, false),
            join(2, "chen", 20, false),
            join(3, "chen", 30, true),
        ]);
        assert_eq!(d.left, vec!["bilal".to_string()]);
        // Any order gives the same view.
        let d2 = details(vec![
            join(3, "chen", 30, true),
            join(1, "bilal", 10, false),
            join(2, "chen", 20, false),
        ]);
        assert_eq!(d, d2);
    }
}
