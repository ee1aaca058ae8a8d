//! The signed message envelope and its validation.
//!
//! Wire form: `postcard(Unsigned) || signature(64)`. The first byte is the format version.
//! The signature covers a domain tag plus the unsigned bytes exactly as received, and the
//! message id is the blake3 hash of those same bytes, so any change to any byte either breaks
//! the signature or names a different message. Validation is a pure function of the bytes,
//! the roster and the clock.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::e2e;
use crate::identity::{self, DeviceId, DeviceKey};
use crate::roster::{Member, Right, VerifiedRoster};

/// Format 2: the body is an [`e2e::Content`] (sealed text or key grants).
pub const MESSAGE_FORMAT: u8 = 2;
/// Format 1: the body is plaintext UTF-8. Written by releases before end-to-end encryption;
/// still read (old history, old peers), never written.
pub const PLAINTEXT_FORMAT: u8 = 1;
const DOMAIN: &[u8] = b"majlis/msg/v1\0";
/// Text bodies are capped well below gossipsub's 64 KiB frame (and its silent-drop band just
/// under it); files travel another way.
pub const MAX_BODY_BYTES: usize = 32 * 1024;
pub const MAX_WIRE_BYTES: usize = MAX_BODY_BYTES + 512;
/// How far in the future a message's clock may be: laptops drift, but not by hours.
pub const MAX_FUTURE_SKEW_MS: u64 = 5 * 60 * 1000;
/// How long before its device was first listed on the roster a message may be dated. The
/// bound keeps an author's *first* message in a channel (which has no neighbour to be
/// checked against) from being dated into years of history; the slack absorbs an admin's
/// clock that runs ahead (its time stamps the roster), and honest senders clamp to it.
pub const BEFORE_LISTED_MS: u64 = 60 * 60 * 1000;
/// 2020-01-01: anything earlier is a broken clock or a forgery.
pub const MIN_SENT_AT_MS: u64 = 1_577_836_800_000;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 32]);

/// Hex text in JSON, raw bytes on the wire.
impl Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            String::deserialize(d)?
                .parse()
                .map_err(serde::de::Error::custom)
        } else {
            Ok(MessageId(<[u8; 32]>::deserialize(d)?))
        }
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl MessageId {
    /// Hex digits of an id a person may type in its place ([`MessageId::short`] shows
    /// eight): fewer would often name several messages of a busy org.
    pub const SHORT_MIN: usize = 6;

    /// The id's first eight hex digits, as the CLI shows it beside a message (`history
    /// --ids`) and takes it back (`majlisd react 54f2d2a1 👍`): the first 32 bits name one
    /// message among tens of thousands but for a rare collision, which the store reports.
    pub fn short(&self) -> String {
        self.to_string()[..8].to_string()
    }

    /// A link to this message that colleagues paste in a message ("see
    /// majlis:message/54f2…"), where the app opens it on a click, or give the CLI in its
    /// place. It names the message only: a reader who may not read it, or does not hold it
    /// yet, is told so, and learns nothing else from it.
    pub fn link(&self) -> String {
        format!("{}{self}", Self::LINK)
    }

    /// What every message link starts with (a URI scheme of its own, so that no browser
    /// takes it for a web address).
    pub const LINK: &'static str = "majlis:message/";

    /// The message a [`MessageId::link`] names; `None` for anything else.
    pub fn from_link(link: &str) -> Option<MessageId> {
        link.strip_prefix(Self::LINK)?.parse().ok()
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

impl std::str::FromStr for MessageId {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        let bad = || crate::Error::Invalid(format!("'{s}' is not a message id (64 hex digits)"));
        // Hex digits only: `from_str_radix` alone would take a sign ("+f").
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(s.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(MessageId(out))
    }
}

/// The signed part of an envelope. Field order is the wire order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsigned {
    pub format: u8,
    pub author: DeviceId,
    pub channel: String,
    pub sent_at: u64,
    /// The author's sequence number in this channel (1, 2, ...) and the id of its previous
    /// message there: a per-author chain that lets catch-up sync detect gaps and forks.
    pub seq: u64,
    pub prev: Option<MessageId>,
    /// Format 2: `postcard(e2e::Content)`; format 1: UTF-8 text. Same wire shape (a
    /// length-prefixed byte string) in both.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// A decoded, signature-checked message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub id: MessageId,
    pub unsigned: Unsigned,
    pub wire: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("malformed envelope: {0}")]
    Malformed(String),
    #[error("envelope of {0} bytes is over the {MAX_WIRE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("unsupported message format {0}; upgrade Majlis")]
    Format(u8),
    #[error("bad signature")]
    BadSignature,
    #[error("author device {0} is not on the current roster")]
    UnknownDevice(DeviceId),
    #[error("channel '{0}' does not exist in the current roster")]
    UnknownChannel(String),
    #[error("'{member}' may not post in '{channel}'")]
    NotAllowed { member: String, channel: String },
    /// Posted in a channel an admin archived (key grants to its readers excepted).
    #[error("{}", crate::roster::Roster::archived_text(.0))]
    Archived(String),
    #[error("per-author chain broken: {0}")]
    Chain(String),
    #[error("seq {seq} is more than {} past the {held} messages held of its author; it is taken once the gap fills", crate::sync::MAX_GAP)]
    Gap { seq: u64, held: u64 },
    #[error("sent_at {sent_at} is implausible for local clock {now} (more than 5 min ahead or before 2020)")]
    Clock { sent_at: u64, now: u64 },
    /// Dated more than the allowed skew before its author's previous message in the channel
    /// (or after the next one): a member slipping a message into the past of a conversation.
    #[error("sent_at {sent_at} is out of order with its author's neighbouring message, or dated over an hour before its device joined the roster ({neighbour}) (backdated)")]
    Backdated { sent_at: u64, neighbour: u64 },
    /// Past its channel's retention: not taken (not an error of the peer that offered it).
    #[error("older than the retention of '{0}' allows; not taken")]
    Expired(String),
    /// Its author's data was erased by an admin's request: not taken.
    #[error("its author's messages up to then were erased by request {0}; not taken")]
    Erased(u64),
}

impl Reject {
    /// What a would-be author is told when their own node (or the HTTP API) refuses to
    /// post in `channel`: for a post the roster does not allow, why and what would let
    /// them ([`crate::roster::Roster::why_not_post`]); else the refusal itself.
    pub fn said_to_author(&self, roster: &VerifiedRoster, channel: &str) -> String {
        match self {
            Reject::NotAllowed { member, .. } => roster.roster.member(member).map_or_else(
                || self.to_string(),
                |m| roster.roster.why_not_post(m, channel),
            ),
            other => other.to_string(),
        }
    }

    /// A short stable label for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Reject::Malformed(_) => "malformed",
            Reject::TooLarge(_) => "too_large",
            Reject::Format(_) => "format",
            Reject::BadSignature => "bad_signature",
            Reject::UnknownDevice(_) => "unknown_device",
            Reject::UnknownChannel(_) => "unknown_channel",
            Reject::NotAllowed { .. } => "not_allowed",
            Reject::Archived(_) => "archived",
            Reject::Clock { .. } => "clock",
            Reject::Backdated { .. } => "backdated",
            Reject::Chain(_) => "chain",
            Reject::Gap { .. } => "gap",
            Reject::Expired(_) => "expired",
            Reject::Erased(_) => "erased",
        }
    }
}

fn signed_bytes(unsigned: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + unsigned.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(unsigned);
    m
}

fn id_of(unsigned: &[u8]) -> MessageId {
    let mut h = blake3::Hasher::new();
    h.update(DOMAIN);
    h.update(unsigned);
    MessageId(*h.finalize().as_bytes())
}

impl Envelope {
    pub fn sign(key: &DeviceKey, unsigned: Unsigned) -> Envelope {
        let mut wire = postcard::to_stdvec(&unsigned).expect("envelope serializes");
        let id = id_of(&wire);
        let sig = key.sign(&signed_bytes(&wire));
        wire.extend_from_slice(&sig);
        Envelope { id, unsigned, wire }
    }

    /// Parse and check the signature; roster rules are separate ([`validate`]).
    pub fn decode(wire: &[u8]) -> Result<Envelope, Reject> {
        let (unsigned, sig) = Self::split(wire)?;
        let env = Self::decode_unverified(wire)?;
        if !identity::verify(&env.unsigned.author.0, &signed_bytes(unsigned), &sig) {
            return Err(Reject::BadSignature);
        }
        Ok(env)
    }

    fn split(wire: &[u8]) -> Result<(&[u8], [u8; 64]), Reject> {
        if wire.len() > MAX_WIRE_BYTES {
            return Err(Reject::TooLarge(wire.len()));
        }
        if wire.len() < 65 {
            return Err(Reject::Malformed("too short".into()));
        }
        let (unsigned, sig) = wire.split_at(wire.len() - 64);
        Ok((unsigned, sig.try_into().expect("64 bytes")))
    }

    /// Parse without checking the signature: for batch verification, which checks many
    /// signatures at once and then calls [`Envelope::signed_parts`].
    pub fn decode_unverified(wire: &[u8]) -> Result<Envelope, Reject> {
        let (unsigned_bytes, _) = Self::split(wire)?;
        if unsigned_bytes[0] != MESSAGE_FORMAT && unsigned_bytes[0] != PLAINTEXT_FORMAT {
            return Err(Reject::Format(unsigned_bytes[0]));
        }
        let (unsigned, rest): (Unsigned, &[u8]) = postcard::take_from_bytes(unsigned_bytes)
            .map_err(|e| Reject::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(Reject::Malformed(
                "trailing bytes before the signature".into(),
            ));
        }
        if unsigned.body.len() > MAX_BODY_BYTES {
            return Err(Reject::TooLarge(unsigned.body.len()));
        }
        if unsigned.format == PLAINTEXT_FORMAT {
            std::str::from_utf8(&unsigned.body)
                .map_err(|_| Reject::Malformed("format-1 body is not UTF-8".into()))?;
        } else {
            e2e::Content::decode(&unsigned.body).map_err(|e| Reject::Malformed(e.to_string()))?;
        }
        Ok(Envelope {
            id: id_of(unsigned_bytes),
            unsigned,
            wire: wire.to_vec(),
        })
    }

    /// The body's content (format 2); `None` for a format-1 plaintext body.
    pub fn content(&self) -> Option<e2e::Content> {
        (self.unsigned.format == MESSAGE_FORMAT)
            .then(|| e2e::Content::decode(&self.unsigned.body).ok())
            .flatten()
    }

    /// Whether this message hands out keys rather than saying something. A peek at the
    /// content's variant tag (postcard: `Sealed` = 0, `Keys` = 1), which decoding checked.
    pub fn is_keys(&self) -> bool {
        self.unsigned.format == MESSAGE_FORMAT && self.unsigned.body.first() == Some(&1)
    }

    /// Whether this message is a reader's reaction or vote ([`e2e::Content::Response`]): a
    /// peek at the content's variant tag (3), which decoding checked.
    pub fn is_response(&self) -> bool {
        self.unsigned.format == MESSAGE_FORMAT && self.unsigned.body.first() == Some(&3)
    }

    /// Whether this message is a reader's reply in a thread ([`e2e::Content::ThreadReply`]):
    /// a peek at the content's variant tag (4), which decoding checked.
    pub fn is_thread_reply(&self) -> bool {
        self.unsigned.format == MESSAGE_FORMAT && self.unsigned.body.first() == Some(&4)
    }

    /// The reader's tag this message was sent under, if any ([`Envelope::is_response`],
    /// [`Envelope::is_thread_reply`]).
    pub fn reader_tag(&self) -> Option<e2e::ReaderTag> {
        if self.is_response() {
            Some(e2e::ReaderTag::Answer)
        } else if self.is_thread_reply() {
            Some(e2e::ReaderTag::ThreadReply)
        } else {
            None
        }
    }

    /// (message that was signed, signature, author key) for batch verification.
    pub fn signed_parts(&self) -> (Vec<u8>, [u8; 64], [u8; 32]) {
        let (unsigned, sig) = Self::split(&self.wire).expect("decoded before");
        (signed_bytes(unsigned), sig, self.unsigned.author.0)
    }
}

/// Roster and clock rules for an envelope whose signature has been checked. Returns the
/// author's member name: on the head roster, or, for a message signed while its device
/// still had a right a later version took away (a leaver's, or from before its member was
/// taken off the channel), the member it was then ([`VerifiedRoster::posted_before`]).
pub fn check_rules<'r>(
    env: &Envelope,
    roster: &'r VerifiedRoster,
    now_ms: u64,
) -> Result<&'r str, Reject> {
    let u = &env.unsigned;
    if u.sent_at > now_ms.saturating_add(MAX_FUTURE_SKEW_MS) || u.sent_at < MIN_SENT_AT_MS {
        return Err(Reject::Clock {
            sent_at: u.sent_at,
            now: now_ms,
        });
    }
    if let Some(since) = roster
        .listed_since(&u.author)
        .filter(|t| u.sent_at.saturating_add(BEFORE_LISTED_MS) < *t)
    {
        return Err(Reject::Backdated {
            sent_at: u.sent_at,
            neighbour: since,
        });
    }
    match may_author(roster, &u.author, &u.channel) {
        Ok(m) => Ok(&m.name),
        Err(e @ (Reject::UnknownDevice(_) | Reject::NotAllowed { .. } | Reject::Archived(_))) => {
            taken_still(env, roster).ok_or(e)
        }
        Err(e) => Err(e),
    }
}

/// The member a message the head's rules refuse is still taken from: where nobody may write
/// any more (a DM with a member who left, and only a real one: not `@me,anyone`; a channel
/// an admin archived), its readers still hand keys to their own new devices, and what they
/// wrote before the DM ended stays theirs; and what a device signed while it had a right a
/// later version took away stays its member's ([`VerifiedRoster::posted_before`]).
fn taken_still<'r>(env: &Envelope, roster: &'r VerifiedRoster) -> Option<&'r str> {
    let u = &env.unsigned;
    let stayer = roster.member_of_device(&u.author).filter(|m| {
        roster.roster.may_share_keys(m, &u.channel)
            && (roster
                .dm_ended(&u.channel)
                .is_some_and(|end| env.is_keys() || u.sent_at < end)
                || (env.is_keys()
                    && (roster.roster.is_archived(&u.channel)
                        || roster.roster.posters(&u.channel).is_some()))
                // A reader's reaction or vote where only some post; what it holds is checked
                // when opened (anything else is not shown).
                || (env.is_response() && roster.roster.may_respond(m, &u.channel))
                // A reader's reply in a thread where an admin let readers reply; checked
                // when opened too (anything but a reply in a thread is not shown).
                || (env.is_thread_reply() && roster.roster.may_reply(m, &u.channel)))
    });
    match stayer {
        Some(m) => Some(&m.name),
        // A reader's answer, and the keys that open it, from before the reader lost the
        // right to answer.
        None if env.is_response() || env.is_keys() => {
            roster.had_right(&u.author, &u.channel, u.sent_at, Right::Answer)
        }
        None if env.is_thread_reply() => {
            roster.had_right(&u.author, &u.channel, u.sent_at, Right::Reply)
        }
        None => roster.posted_before(&u.author, &u.channel, u.sent_at),
    }
}

/// Whether `author`'s device may post in `channel` under `roster`: on the roster, the
/// channel exists, its member may post there. Receivers check it in [`check_rules`]; a
/// sender checks it before signing, so it never keeps a message its peers would refuse.
pub fn may_author<'r>(
    roster: &'r VerifiedRoster,
    author: &DeviceId,
    channel: &str,
) -> Result<&'r Member, Reject> {
    let member = roster
        .member_of_device(author)
        .ok_or(Reject::UnknownDevice(*author))?;
    if !roster.roster.channel_exists(channel) {
        return Err(Reject::UnknownChannel(channel.to_string()));
    }
    if roster.roster.is_archived(channel) && roster.roster.may_read(member, channel) {
        // Said under the name people know it by (a rename changes no wire name).
        return Err(Reject::Archived(roster.roster.shown(channel).to_string()));
    }
    if !roster.roster.may_post(member, channel) {
        return Err(Reject::NotAllowed {
            member: member.name.clone(),
            channel: channel.to_string(),
        });
    }
    Ok(member)
}

/// Everything a node checks before storing or showing a message.
pub fn validate(
    wire: &[u8],
    roster: &VerifiedRoster,
    now_ms: u64,
) -> Result<(Envelope, String), Reject> {
    let env = Envelope::decode(wire)?;
    let name = check_rules(&env, roster, now_ms)?.to_string();
    Ok((env, name))
}

/// Verify many envelopes' signatures in one batch (about twice as fast per signature as
/// one by one). On failure, falls back to single checks to find the bad ones.
pub fn verify_batch(envs: &[Envelope]) -> Vec<bool> {
    verify_batch_of(envs.iter())
}

/// A batch of this many signatures or fewer is checked singly (see [`verify_batch_of`]).
const SINGLY_UP_TO: usize = 1;

/// [`verify_batch`] over borrowed envelopes (no copies on the gossip path).
pub fn verify_batch_of<'a>(envs: impl ExactSizeIterator<Item = &'a Envelope>) -> Vec<bool> {
    use ed25519_dalek::{Signature, VerifyingKey};
    let n = envs.len();
    // An empty batch still costs a full multiscalar multiplication in ed25519-dalek (~40 µs):
    // every empty catch-up answer and every all-duplicate gossip batch paid it.
    if n == 0 {
        return Vec::new();
    }
    let parts: Vec<_> = envs.map(|e| e.signed_parts()).collect();
    // A batch check draws random scalars and runs a multiscalar multiplication, which pays
    // off from two signatures on (this box: 79 µs for a batch of two, 106 µs singly) but not
    // for one (61 µs against 53 µs; on the delivery path, with cold caches, 88 against
    // 64 µs). A lone live message is the usual gossip batch at a human pace.
    if n <= SINGLY_UP_TO {
        return parts
            .iter()
            .map(|(m, s, k)| identity::verify(k, m, s))
            .collect();
    }
    // Decompressing a key costs a fifth of a verification: each thread keeps the keys it
    // has decompressed (see `identity::verifying_key`).
    let keys: Option<Vec<VerifyingKey>> = parts
        .iter()
        .map(|(_, _, k)| identity::verifying_key(k))
        .collect();
    if let Some(keys) = keys {
        let msgs: Vec<&[u8]> = parts.iter().map(|(m, _, _)| m.as_slice()).collect();
        let sigs: Vec<Signature> = parts
            .iter()
            .map(|(_, s, _)| Signature::from_bytes(s))
            .collect();
        // Batch verification is not strict about small-order keys; roster keys are real
        // device keys, and we still require strict single verification below on failure.
        if ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok() {
            return vec![true; n];
        }
    }
    parts
        .iter()
        .map(|(m, s, k)| identity::verify(k, m, s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::OrgKey;
    use crate::roster::{Roster, RosterChange, RosterSigner};

    const NOW: u64 = 1_800_000_000_000;

    fn setup() -> (DeviceKey, VerifiedRoster) {
        let root = OrgKey::generate();
        let dev = DeviceKey::generate();
        let g = VerifiedRoster::sign(
            Roster::genesis(&root, "acme", "amina", dev.id(), NOW),
            RosterSigner::Root(&root),
        );
        let r = g
            .roster
            .next(
                g.hash,
                &RosterChange::CreateChannel {
                    name: "hr".into(),
                    members: Some(vec![]),
                },
                NOW,
            )
            .unwrap();
        (dev, VerifiedRoster::sign(r, RosterSigner::Root(&root)))
    }

    /// A DM with a member who left: its stayer's key grants and earlier lines are taken,
    /// nothing later, and no DM with a name that was never a member is made up this way (a
    /// modified client posting grants into `@me,anyone` would fill relays with channels).
    #[test]
    fn a_dm_with_a_leaver_takes_only_grants_and_what_was_said_before() {
        let (amina, bilal) = (DeviceKey::generate(), DeviceKey::generate());
        let mut step = org_of(&amina, &bilal);
        let head = &step(
            NOW - 50,
            RosterChange::RemoveMember {
                name: "bilal".into(),
            },
        );
        let keys = |channel: &str| grant(&amina, channel);
        let dm = "@amina,bilal";
        assert!(keys(dm).is_keys());
        assert_eq!(check_rules(&keys(dm), head, NOW), Ok("amina"));
        assert!(matches!(
            check_rules(&keys("@amina,nobody"), head, NOW),
            Err(Reject::NotAllowed { .. })
        ));
        assert_eq!(
            check_rules(&msg(&amina, dm, "x", NOW - 60), head, NOW),
            Ok("amina")
        );
        assert_eq!(
            check_rules(&msg(&bilal, dm, "x", NOW - 60), head, NOW),
            Ok("bilal")
        );
        for dev in [&amina, &bilal] {
            assert!(check_rules(&msg(dev, dm, "x", NOW - 50), head, NOW).is_err());
        }
    }

    /// The org `amina` founded at `NOW - 100`, with `bilal` a member since `NOW - 90`; then
    /// each call makes a change at a time and gives the new head.
    fn org_of(
        amina: &DeviceKey,
        bilal: &DeviceKey,
    ) -> impl FnMut(u64, RosterChange) -> VerifiedRoster {
        let root = OrgKey::generate();
        let mut chain = crate::roster::RosterChain::new(root.org_id());
        let g = VerifiedRoster::sign(
            Roster::genesis(&root, "acme", "amina", amina.id(), NOW - 100),
            RosterSigner::Root(&root),
        );
        assert_eq!(chain.apply(vec![g]).error, None);
        let mut step = move |at, c: RosterChange| {
            let h = chain.head().unwrap();
            let r = h.roster.next(h.hash, &c, at).unwrap();
            let v = VerifiedRoster::sign(r, RosterSigner::Root(&root));
            assert_eq!(chain.apply(vec![v]).error, None);
            chain.head().unwrap().clone()
        };
        step(
            NOW - 90,
            RosterChange::AddMember {
                name: "bilal".into(),
                device: bilal.id(),
                role: None,
            },
        );
        step
    }

    /// A key grant by `dev` in `channel` (its content is not opened by the rules).
    fn grant(dev: &DeviceKey, channel: &str) -> Envelope {
        let body = crate::e2e::Content::Keys(vec![crate::e2e::Bundle {
            key: crate::e2e::KeyId([7; 16]),
            grants: vec![crate::e2e::Grant {
                hint: [1; 8],
                sealed: vec![0; crate::e2e::GRANT_BYTES],
            }],
        }])
        .encode();
        Envelope::sign(
            dev,
            Unsigned {
                format: MESSAGE_FORMAT,
                author: dev.id(),
                channel: channel.into(),
                sent_at: NOW,
                seq: 1,
                prev: None,
                body,
            },
        )
    }

    /// An archived channel: what its members said before it was archived is still taken
    /// (catch-up brings it late), key grants to its readers' new devices too, and nothing
    /// said after, by anyone, admins included; brought back, it takes messages again.
    #[test]
    fn an_archived_channel_takes_only_grants_and_what_was_said_before() {
        let (amina, bilal) = (DeviceKey::generate(), DeviceKey::generate());
        let mut step = org_of(&amina, &bilal);
        let archive = |archived| RosterChange::ArchiveChannel {
            name: "#general".into(),
            archived,
        };
        let head = step(NOW - 50, archive(true));
        assert!(head.roster.is_archived("general"));
        for dev in [&amina, &bilal] {
            let name = head.member_of_device(&dev.id()).unwrap().name.as_str();
            assert_eq!(check_rules(&grant(dev, "general"), &head, NOW), Ok(name));
            assert_eq!(
                check_rules(&msg(dev, "general", "x", NOW - 60), &head, NOW),
                Ok(name),
                "said before the archiving"
            );
            let after = check_rules(&msg(dev, "general", "x", NOW - 40), &head, NOW);
            assert_eq!(after, Err(Reject::Archived("general".into())));
            assert!(after
                .unwrap_err()
                .to_string()
                .contains("#general is archived"));
        }
        // A member who may not read it hands out no keys there either.
        let carol = DeviceKey::generate();
        let head = step(
            NOW - 45,
            RosterChange::AddMember {
                name: "carol".into(),
                device: carol.id(),
                role: Some(crate::roster::Role::Guest),
            },
        );
        assert!(check_rules(&grant(&carol, "general"), &head, NOW).is_err());
        let head = step(NOW - 30, archive(false));
        assert_eq!(
            check_rules(&msg(&bilal, "general", "x", NOW - 20), &head, NOW),
            Ok("bilal")
        );
    }

    /// A channel where an admin let only some readers post: the others' messages are
    /// refused from then on (what they said before is taken), their key grants to their
    /// own new devices are taken, the posters' messages are; open to all again, everyone.
    #[test]
    fn where_only_some_post_the_others_hand_out_keys_and_say_nothing() {
        let (amina, bilal) = (DeviceKey::generate(), DeviceKey::generate());
        let mut step = org_of(&amina, &bilal);
        let posters = |p: Option<Vec<String>>| RosterChange::ChannelPosters {
            name: "general".into(),
            posters: p,
        };
        let head = step(NOW - 50, posters(Some(vec!["amina".into()])));
        assert_eq!(
            check_rules(&msg(&amina, "general", "x", NOW - 40), &head, NOW),
            Ok("amina")
        );
        assert_eq!(
            check_rules(&grant(&bilal, "general"), &head, NOW),
            Ok("bilal")
        );
        assert_eq!(
            check_rules(&msg(&bilal, "general", "x", NOW - 60), &head, NOW),
            Ok("bilal"),
            "said before"
        );
        assert!(matches!(
            check_rules(&msg(&bilal, "general", "x", NOW - 40), &head, NOW),
            Err(Reject::NotAllowed { .. })
        ));
        let head = step(NOW - 30, posters(None));
        assert_eq!(
            check_rules(&msg(&bilal, "general", "x", NOW - 20), &head, NOW),
            Ok("bilal")
        );
    }

    /// A reader's sealed body under `tag` (what it holds is checked only when opened).
    fn tagged(dev: &DeviceKey, tag: crate::e2e::ReaderTag, sent_at: u64) -> Envelope {
        let key = crate::e2e::ChannelKey::generate();
        let plain = crate::e2e::Plain::Text("anything".into());
        Envelope::sign(
            dev,
            Unsigned {
                format: MESSAGE_FORMAT,
                author: dev.id(),
                channel: "general".into(),
                sent_at,
                seq: 1,
                prev: None,
                body: tag.seal(&key, "general", &dev.id(), &plain).encode(),
            },
        )
    }

    /// Where only some post, a reader's answer is taken; a reader's reply in a thread only
    /// where an admin let readers reply, and, once turned off, only from before.
    #[test]
    fn a_readers_reply_is_taken_only_where_readers_reply() {
        use crate::e2e::ReaderTag::{Answer, ThreadReply};
        let (amina, bilal) = (DeviceKey::generate(), DeviceKey::generate());
        let mut step = org_of(&amina, &bilal);
        let head = step(
            NOW - 80,
            RosterChange::ChannelPosters {
                name: "general".into(),
                posters: Some(vec!["amina".into()]),
            },
        );
        let replies = |on| RosterChange::ChannelReplies {
            name: "general".into(),
            on,
        };
        assert!(tagged(&bilal, ThreadReply, NOW - 70).is_thread_reply());
        assert!(!tagged(&bilal, Answer, NOW - 70).is_thread_reply());
        assert_eq!(
            check_rules(&tagged(&bilal, Answer, NOW - 70), &head, NOW),
            Ok("bilal")
        );
        assert!(matches!(
            check_rules(&tagged(&bilal, ThreadReply, NOW - 70), &head, NOW),
            Err(Reject::NotAllowed { .. })
        ));
        let head = step(NOW - 60, replies(true));
        assert_eq!(
            check_rules(&tagged(&bilal, ThreadReply, NOW - 55), &head, NOW),
            Ok("bilal")
        );
        let head = step(NOW - 50, replies(false));
        assert_eq!(
            check_rules(&tagged(&bilal, ThreadReply, NOW - 55), &head, NOW),
            Ok("bilal"),
            "replied while readers replied"
        );
        assert!(matches!(
            check_rules(&tagged(&bilal, ThreadReply, NOW - 40), &head, NOW),
            Err(Reject::NotAllowed { .. })
        ));
        assert_eq!(
            check_rules(&tagged(&bilal, Answer, NOW - 40), &head, NOW),
            Ok("bilal")
        );
    }

    fn msg(dev: &DeviceKey, channel: &str, body: &str, sent_at: u64) -> Envelope {
        Envelope::sign(
            dev,
            Unsigned {
                format: PLAINTEXT_FORMAT,
                author: dev.id(),
                channel: channel.into(),
                sent_at,
                seq: 1,
                prev: None,
                body: body.into(),
            },
        )
    }

    #[test]
    fn valid_message_passes() {
        let (dev, roster) = setup();
        let m = msg(&dev, "general", "salam", NOW);
        let (env, name) = validate(&m.wire, &roster, NOW).unwrap();
        assert_eq!(env.id, m.id);
        assert_eq!(name, "amina");
        assert_eq!(env.unsigned.body, b"salam");
    }

    #[test]
    fn every_mutated_byte_is_rejected() {
        let (dev, roster) = setup();
        let m = msg(&dev, "general", "a message with some length to it", NOW);
        for i in 0..m.wire.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut w = m.wire.clone();
                w[i] ^= flip;
                assert!(
                    validate(&w, &roster, NOW).is_err(),
                    "byte {i} flip {flip:#x} accepted"
                );
            }
        }
        for n in 0..m.wire.len() {
            assert!(validate(&m.wire[..n], &roster, NOW).is_err());
        }
    }

    #[test]
    fn roster_and_clock_rules() {
        let (dev, roster) = setup();
        let stranger = DeviceKey::generate();
        assert!(matches!(
            validate(&msg(&stranger, "general", "x", NOW).wire, &roster, NOW),
            Err(Reject::UnknownDevice(_))
        ));
        assert!(matches!(
            validate(&msg(&dev, "nope", "x", NOW).wire, &roster, NOW),
            Err(Reject::UnknownChannel(_))
        ));
        assert!(matches!(
            validate(&msg(&dev, "hr", "x", NOW).wire, &roster, NOW),
            Err(Reject::NotAllowed { .. })
        ));
        assert!(matches!(
            validate(
                &msg(&dev, "general", "x", NOW + MAX_FUTURE_SKEW_MS + 1).wire,
                &roster,
                NOW
            ),
            Err(Reject::Clock { .. })
        ));
        // author field says one device, signature by another.
        let mut u = msg(&dev, "general", "x", NOW).unsigned;
        u.author = stranger.id();
        let forged = Envelope::sign(&dev, u);
        assert_eq!(
            validate(&forged.wire, &roster, NOW).unwrap_err(),
            Reject::BadSignature
        );
        let big = "x".repeat(MAX_BODY_BYTES + 1);
        assert!(matches!(
            validate(&msg(&dev, "general", &big, NOW).wire, &roster, NOW),
            Err(Reject::TooLarge(_))
        ));
    }

    #[test]
    fn batch_verify_finds_the_forgery() {
        let (dev, _) = setup();
        let mut envs: Vec<_> = (0..10)
            .map(|i| msg(&dev, "general", &format!("{i}"), NOW))
            .collect();
        assert!(verify_batch(&envs).iter().all(|&ok| ok));
        let n = envs[3].wire.len();
        envs[3].wire[n - 1] ^= 1; // corrupt one signature
        let res = verify_batch(&envs);
        assert_eq!(res.iter().filter(|&&ok| !ok).count(), 1);
        assert!(!res[3]);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let (_, roster) = setup();
            proptest::prop_assert!(validate(&bytes, &roster, NOW).is_err());
        }

        #[test]
        fn random_mutation_is_rejected(body in ".{0,200}", pos in 0usize..10_000, flip in 1u8..=255) {
            let (dev, roster) = setup();
            let m = msg(&dev, "general", &body, NOW);
            let mut w = m.wire.clone();
            let i = pos % w.len();
            w[i] ^= flip;
            proptest::prop_assert!(validate(&w, &roster, NOW).is_err());
        }
    }
}
