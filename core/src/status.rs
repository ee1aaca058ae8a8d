//! Members' statuses ("In a meeting", "On leave until 14 December"): the pure part.
//!
//! A status is a line a member sets for colleagues to see beside their name, with an
//! optional time it ends. It is not a message: it belongs to no channel and is not kept
//! as history. It travels as a signal signed by one of its member's devices
//! ([`crate::net::Signal::Status`] inside [`SignedSignal`]), and every node keeps the newest
//! of each member and hands all it keeps to each device that connects, so a colleague who
//! comes online while the member is away still learns it from whoever they meet first.
//!
//! The rules hold against a member running a modified client because every receiver applies
//! them: the member is the signing device's (a status cannot be set for someone else), the
//! newest signed time wins (a replay or an older copy changes nothing), a time more than
//! [`AHEAD_MS`] ahead is refused (it would outrank every later status), and the text is one
//! short line of visible characters. A member removed from the roster, or a device revoked,
//! no longer shows one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::net::{Signal, SignedSignal};
use crate::roster::VerifiedRoster;

/// Longest status (characters): a line beside a name.
pub const MAX_STATUS_CHARS: usize = 100;

/// How far ahead of a receiver's clock a status may be dated (clocks a little apart).
pub const AHEAD_MS: u64 = 5 * 60 * 1000;

/// Statuses a node keeps at most (one per member; an org has fewer members than this).
pub const MAX_KEPT: usize = 10_000;

/// Where a node keeps the statuses (sealed, beside the app's state).
pub(crate) const KEPT_AS: &str = "statuses";

/// The statuses kept in `store`, checked under `head` (none before there is a roster): for
/// a node starting, and for commands given while none runs.
pub fn load(store: &crate::store::Store, head: Option<&VerifiedRoster>) -> Statuses {
    match (head, store.get_private(KEPT_AS).ok().flatten()) {
        (Some(h), Some(bytes)) => Statuses::decode(&bytes, h, crate::now_ms()),
        _ => Statuses::default(),
    }
}

/// A status as signed: the text (empty: cleared) and when it ends, if it does (ms since
/// the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub text: String,
    pub until: Option<u64>,
}

/// A member's status as the views show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub member: String,
    /// Empty when the member cleared it.
    pub text: String,
    pub until: Option<u64>,
    /// When the member set it (ms since the epoch).
    pub set_at: u64,
}

/// Why a status from the network was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a status signed by its device")]
    Unsigned,
    #[error("signed by a device not on the roster")]
    NotOnRoster,
    #[error("dated ahead of this node's clock")]
    Ahead,
    #[error("{0}")]
    Text(String),
}

/// Whether `text` can be a status: one line of at most [`MAX_STATUS_CHARS`] characters, with
/// nothing invisible or that turns the text around (a status shows beside a name), and an
/// end after it was set.
pub fn check(status: &Status, set_at: u64) -> Result<(), String> {
    let t = &status.text;
    if t.chars().count() > MAX_STATUS_CHARS {
        return Err(format!(
            "a status is at most {MAX_STATUS_CHARS} characters; this one has {}",
            t.chars().count()
        ));
    }
    if t.chars().any(|c| c.is_control()) {
        return Err("a status is one line, with no control characters".into());
    }
    if let Some(c) = crate::names::hidden_char(t) {
        // The code point as one value (`U+202E`): the app says the sentence in Arabic
        // around it.
        let code = format!("U+{:04X}", c as u32);
        return Err(format!(
            "a status may not hold a character that cannot be seen or that turns the text around ({code})"
        ));
    }
    if t.trim() != t {
        return Err(format!(
            "a status does not start or end with a space; try '{}'",
            t.trim()
        ));
    }
    if status.until.is_some_and(|u| u <= set_at) {
        return Err("a status ends after it is set; give a time ahead".into());
    }
    if t.is_empty() && status.until.is_some() {
        return Err("a cleared status has no end".into());
    }
    Ok(())
}

/// The newest status of each member, as signed.
#[derive(Debug, Default, Clone)]
pub struct Statuses(BTreeMap<String, SignedSignal>);

impl Statuses {
    /// Take `s` if it is a status its device signed, that device is on `roster`, the text
    /// is one, and it is newer than the one held for its member: the status to show then,
    /// `Ok(None)` for one not newer.
    pub fn take(
        &mut self,
        roster: &VerifiedRoster,
        s: &SignedSignal,
        now: u64,
    ) -> Result<Option<MemberStatus>, Refused> {
        let Some(Signal::Status(status)) = s.verified() else {
            return Err(Refused::Unsigned);
        };
        let member = roster
            .member_of_device(&s.device)
            .filter(|m| !m.role.stores_all())
            .ok_or(Refused::NotOnRoster)?;
        if s.sent_at > now.saturating_add(AHEAD_MS) {
            return Err(Refused::Ahead);
        }
        check(status, s.sent_at).map_err(Refused::Text)?;
        // Erased with the member's data (a copy coming back from a node that was away).
        let erased = roster
            .roster
            .governance
            .erasures
            .iter()
            .any(|e| e.member == member.name && s.sent_at < e.before);
        if erased {
            return Ok(None);
        }
        if self
            .0
            .get(&member.name)
            .is_some_and(|held| held.sent_at >= s.sent_at)
        {
            return Ok(None);
        }
        if self.0.len() >= MAX_KEPT && !self.0.contains_key(&member.name) {
            // Members no longer on the roster first.
            self.0.retain(|m, _| roster.roster.member(m).is_some());
            if self.0.len() >= MAX_KEPT {
                return Ok(None);
            }
        }
        let mut kept = s.clone();
        kept.hops = 0;
        self.0.insert(member.name.clone(), kept);
        Ok(Some(MemberStatus {
            member: member.name.clone(),
            text: status.text.clone(),
            until: status.until,
            set_at: s.sent_at,
        }))
    }

    /// Forget the statuses of members `roster` no longer lists, and those an erasure request
    /// covers (set before it): a status is personal data like a message. Whether any went.
    pub fn forget(&mut self, roster: &VerifiedRoster) -> bool {
        let before = self.0.len();
        let g = &roster.roster.governance;
        self.0.retain(|member, s| {
            roster.roster.member(member).is_some()
                && !g
                    .erasures
                    .iter()
                    .any(|e| e.member == *member && s.sent_at < e.before)
        });
        self.0.len() != before
    }

    /// When `member`'s status held (shown or cleared) was set.
    pub fn set_at(&self, member: &str) -> Option<u64> {
        self.0.get(member).map(|s| s.sent_at)
    }

    /// What to show of each member under `roster` at `now`: set, not ended, signed by a
    /// device the member still has.
    pub fn shown(&self, roster: &VerifiedRoster, now: u64) -> Vec<MemberStatus> {
        self.0
            .iter()
            .filter_map(|(member, s)| {
                let Signal::Status(st) = &*s.signal else {
                    return None;
                };
                let still = roster
                    .member_of_device(&s.device)
                    .is_some_and(|m| m.name == *member);
                (still && !st.text.is_empty() && st.until.is_none_or(|u| u > now)).then(|| {
                    MemberStatus {
                        member: member.clone(),
                        text: st.text.clone(),
                        until: st.until,
                        set_at: s.sent_at,
                    }
                })
            })
            .collect()
    }

    /// Every status held, as signed (to hand to a device that connects), but those that
    /// ended before `now`.
    pub fn signed(&self, now: u64) -> impl Iterator<Item = &SignedSignal> {
        self.0.values().filter(move |s| match &*s.signal {
            Signal::Status(st) => st.until.is_none_or(|u| u > now),
            _ => false,
        })
    }

    /// The statuses as stored (see [`Statuses::decode`]).
    pub fn encode(&self) -> Vec<u8> {
        let all: Vec<&SignedSignal> = self.0.values().collect();
        postcard::to_stdvec(&all).expect("statuses serialize")
    }

    /// Statuses as [`Statuses::encode`] stored them, each checked again under `roster` (a
    /// damaged or foreign entry is dropped, not trusted).
    pub fn decode(bytes: &[u8], roster: &VerifiedRoster, now: u64) -> Statuses {
        let mut out = Statuses::default();
        let all: Vec<SignedSignal> = postcard::from_bytes(bytes).unwrap_or_default();
        for s in all.iter().take(MAX_KEPT) {
            let _ = out.take(roster, s, now.max(s.sent_at));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roster::{Member, Role, Roster, RosterSigner};
    use crate::{DeviceKey, OrgKey};

    /// A roster of `members`, signed by a new org's root key.
    fn org_of(members: &[(&str, &DeviceKey, Role)]) -> VerifiedRoster {
        let root = OrgKey::generate();
        let mut r = Roster::genesis(&root, "acme", members[0].0, members[0].1.id(), 1);
        for (name, key, role) in &members[1..] {
            r.members.push(Member {
                name: name.to_string(),
                role: *role,
                devices: vec![key.id()],
            });
        }
        VerifiedRoster::sign(r, RosterSigner::Root(&root))
    }

    const T: u64 = 1_790_000_000_000;
    const H: u64 = 3_600_000;

    fn status(key: &DeviceKey, at: u64, text: &str, until: Option<u64>) -> SignedSignal {
        SignedSignal::sign(
            key,
            at,
            Signal::Status(Status {
                text: text.into(),
                until,
            }),
        )
    }

    /// The newest signed status of each member stands; a replay, an older copy, one dated
    /// ahead, one for a device off the roster, one unsigned or not a line are refused;
    /// an ended one is not shown; a revoked device's is no longer shown.
    #[test]
    fn the_newest_status_signed_by_the_members_own_device_stands() {
        let (amina, bilal, vault) = (
            DeviceKey::generate(),
            DeviceKey::generate(),
            DeviceKey::generate(),
        );
        let r = org_of(&[
            ("amina", &amina, Role::Admin),
            ("bilal", &bilal, Role::Member),
            ("vault", &vault, Role::Relay),
        ]);
        let mut s = Statuses::default();
        let first = status(&bilal, T, "In a meeting", Some(T + H));
        let taken = s.take(&r, &first, T).unwrap().unwrap();
        assert_eq!(
            (taken.member.as_str(), taken.text.as_str()),
            ("bilal", "In a meeting")
        );
        assert_eq!(s.take(&r, &first, T), Ok(None), "a replay");
        let later = status(&bilal, T + 10, "On leave until Monday", None);
        assert!(s.take(&r, &later, T).unwrap().is_some());
        assert_eq!(s.take(&r, &first, T), Ok(None), "an older one");
        assert_eq!(s.shown(&r, T)[0].text, "On leave until Monday");

        let ahead = status(&amina, T + AHEAD_MS + 1, "from the future", None);
        assert_eq!(s.take(&r, &ahead, T), Err(Refused::Ahead));
        let stranger = status(&DeviceKey::generate(), T, "hello", None);
        assert_eq!(s.take(&r, &stranger, T), Err(Refused::NotOnRoster));
        let relay = status(&vault, T, "relay", None);
        assert_eq!(s.take(&r, &relay, T), Err(Refused::NotOnRoster));
        let mut forged = status(&amina, T, "Amina: out", None);
        forged.device = bilal.id();
        assert_eq!(s.take(&r, &forged, T), Err(Refused::Unsigned));
        let typing = SignedSignal::sign(&amina, T, Signal::Away(true));
        assert_eq!(s.take(&r, &typing, T), Err(Refused::Unsigned));
        for bad in [
            "x".repeat(MAX_STATUS_CHARS + 1),
            "two\nlines".into(),
            "out\u{202E}ffo".into(),
            " padded".into(),
        ] {
            let b = status(&amina, T, &bad, None);
            assert!(
                matches!(s.take(&r, &b, T), Err(Refused::Text(_))),
                "{bad:?}"
            );
        }
        let ended_before = status(&amina, T, "lunch", Some(T));
        assert!(matches!(
            s.take(&r, &ended_before, T),
            Err(Refused::Text(_))
        ));

        // Ends: no longer shown, nor handed on.
        let lunch = status(&amina, T + 1, "At lunch", Some(T + H));
        assert!(s.take(&r, &lunch, T).unwrap().is_some());
        assert_eq!(s.shown(&r, T).len(), 2);
        assert_eq!(s.shown(&r, T + H).len(), 1);
        assert_eq!(s.signed(T + H).count(), 1);
        // Cleared: held (it outranks the older one) but not shown.
        let cleared = status(&amina, T + 2, "", None);
        assert!(s.take(&r, &cleared, T).unwrap().is_some());
        assert_eq!(s.shown(&r, T).len(), 1);

        // Kept across a restart, checked again; a revoked device's is not shown.
        let back = Statuses::decode(&s.encode(), &r, T);
        assert_eq!(back.shown(&r, T), s.shown(&r, T));
        assert!(Statuses::decode(b"\xff\xff garbage", &r, T)
            .shown(&r, T)
            .is_empty());
        let without_bilal = org_of(&[("amina", &amina, Role::Admin)]);
        assert!(s.shown(&without_bilal, T).is_empty());
        // Forgotten: a member no longer listed, one whose data an admin erased.
        let mut kept = s.clone();
        assert!(!kept.forget(&r));
        assert!(kept.forget(&without_bilal) && kept.set_at("bilal").is_none());
        let mut erased = r.roster.clone();
        erased.governance.erasures.push(crate::roster::Erasure {
            id: 2,
            member: "amina".into(),
            devices: vec![amina.id()],
            before: T + 3,
        });
        let erased = VerifiedRoster::sign(erased, RosterSigner::Root(&OrgKey::generate()));
        assert!(s.forget(&erased) && s.set_at("amina").is_none() && s.set_at("bilal").is_some());
        assert_eq!(s.take(&erased, &lunch, T), Ok(None), "not taken back");
    }
}
