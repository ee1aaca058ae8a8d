//! Data governance, the pure part: which messages and files a node must no longer keep under
//! the roster's retention rules, legal holds and erasure requests.
//!
//! Every node applies the same function of (roster, message facts, clock), so a desktop, a
//! relay and the archive delete the same things, and a node that was offline applies what it
//! missed when it next sees the roster. The rules, in order:
//!
//! 1. a **hold** that covers the message (its author is a held member, or its channel is a
//!    held channel) keeps it, whatever else says;
//! 2. an **erasure** of its author (by device, up to the request's time) removes it;
//! 3. **retention** removes it once it is older than its channel's rule (a channel's own
//!    rule, else the DM rule for direct messages, else the org's).
//!
//! A node never takes a message these rules would remove (catch-up does not bring expired or
//! erased messages back); it is not an error, only not taken.

use crate::identity::DeviceId;
use crate::roster::{is_dm, Governance, Keep, Roster};

pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The facts about one message that the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub channel: &'a str,
    pub author: &'a DeviceId,
    /// The author's member name when it was stored (holds name members).
    pub member: &'a str,
    pub sent_at: u64,
    /// A key grant: no content, and later messages (and readers added since) need the keys
    /// it hands out, so retention and erasure keep it whatever its age or author.
    pub keys: bool,
}

/// What the rules say of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Keep,
    /// Older than its channel's retention.
    Expired,
    /// Written by a member whose data was erased.
    Erased,
}

/// The retention rule of `channel`.
pub fn keep_of(g: &Governance, channel: &str) -> Keep {
    let r = &g.retention;
    if let Some((_, k)) = r.channels.iter().find(|(c, _)| c == channel) {
        return *k;
    }
    if is_dm(channel) {
        if let Some(k) = r.dms {
            return k;
        }
    }
    r.org
}

/// Messages of `channel` sent before this time have expired (`None`: kept forever).
pub fn cutoff(g: &Governance, channel: &str, now_ms: u64) -> Option<u64> {
    keep_of(g, channel)
        .days
        .map(|d| now_ms.saturating_sub(u64::from(d) * DAY_MS))
}

/// Files shared in `channel` before this time have expired (`None`: kept forever).
pub fn files_cutoff(g: &Governance, channel: &str, now_ms: u64) -> Option<u64> {
    let k = keep_of(g, channel);
    let days = match (k.days, k.files_days) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    days.map(|d| now_ms.saturating_sub(u64::from(d) * DAY_MS))
}

/// Whether a hold covers a message of `member` in `channel`.
pub fn held(g: &Governance, member: &str, channel: &str) -> bool {
    g.holds
        .iter()
        .any(|h| h.members.iter().any(|m| m == member) || h.channels.iter().any(|c| c == channel))
}

/// What the rules say of one message.
pub fn fate(g: &Governance, m: Facts<'_>, now_ms: u64) -> Fate {
    if m.keys || held(g, m.member, m.channel) {
        return Fate::Keep;
    }
    if g.erasures
        .iter()
        .any(|e| m.sent_at <= e.before && e.devices.contains(m.author))
    {
        return Fate::Erased;
    }
    match cutoff(g, m.channel, now_ms) {
        Some(c) if m.sent_at < c => Fate::Expired,
        _ => Fate::Keep,
    }
}

/// Whether a file shared in a message (kept itself) must go.
pub fn file_expired(g: &Governance, m: Facts<'_>, now_ms: u64) -> bool {
    !held(g, m.member, m.channel)
        && files_cutoff(g, m.channel, now_ms).is_some_and(|c| m.sent_at < c)
}

/// Whether `author`'s log in `channel` may have holes that retention or an erasure made:
/// then a node takes that author's messages past a gap of any size (a device that never
/// held the swept history starts above it), and answers catch-up without the gap limit.
pub fn gaps_allowed(g: &Governance, channel: &str, author: &DeviceId) -> bool {
    keep_of(g, channel).days.is_some() || g.erasures.iter().any(|e| e.devices.contains(author))
}

/// Whether the roster asks anything of a sweep (no rule: nothing to do).
pub fn any_rule(g: &Governance) -> bool {
    g.retention.org != Keep::default()
        || g.retention.dms.is_some()
        || !g.retention.channels.is_empty()
        || !g.erasures.is_empty()
}

/// The member name a roster gives `author`, for [`Facts::member`] when a message arrives.
pub fn member_name<'r>(roster: &'r Roster, author: &DeviceId) -> &'r str {
    roster
        .member_of_device(author)
        .map(|m| m.name.as_str())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roster::{Erasure, Hold};

    const NOW: u64 = 1_900_000_000_000;

    fn facts<'a>(
        channel: &'a str,
        author: &'a DeviceId,
        member: &'a str,
        age_days: u64,
    ) -> Facts<'a> {
        Facts {
            channel,
            author,
            member,
            sent_at: NOW - age_days * DAY_MS - 1,
            keys: false,
        }
    }

    #[test]
    fn holds_beat_erasure_beats_retention() {
        let a = DeviceId([1; 32]);
        let b = DeviceId([2; 32]);
        let mut g = Governance::default();
        assert_eq!(
            fate(&g, facts("general", &a, "amina", 400), NOW),
            Fate::Keep
        );
        g.retention.org.days = Some(30);
        g.retention.channels.push((
            "legal".into(),
            Keep {
                days: Some(365),
                files_days: Some(7),
            },
        ));
        g.retention.dms = Some(Keep {
            days: Some(1),
            files_days: None,
        });
        assert_eq!(
            fate(&g, facts("general", &a, "amina", 31), NOW),
            Fate::Expired
        );
        assert_eq!(fate(&g, facts("general", &a, "amina", 29), NOW), Fate::Keep);
        assert_eq!(fate(&g, facts("legal", &a, "amina", 300), NOW), Fate::Keep);
        assert_eq!(
            fate(&g, facts("@amina,bilal", &a, "amina", 2), NOW),
            Fate::Expired
        );
        assert!(file_expired(&g, facts("legal", &a, "amina", 8), NOW));
        assert!(!file_expired(&g, facts("legal", &a, "amina", 6), NOW));
        g.erasures.push(Erasure {
            id: 5,
            member: "bilal".into(),
            devices: vec![b],
            before: NOW - DAY_MS,
        });
        assert_eq!(fate(&g, facts("legal", &b, "bilal", 2), NOW), Fate::Erased);
        // Written after the request: not erased.
        assert_eq!(fate(&g, facts("legal", &b, "bilal", 0), NOW), Fate::Keep);
        // A key grant outlives both: later messages need its keys.
        fn grant(f: Facts<'_>) -> Facts<'_> {
            Facts { keys: true, ..f }
        }
        assert_eq!(
            fate(&g, grant(facts("legal", &b, "bilal", 2)), NOW),
            Fate::Keep
        );
        assert_eq!(
            fate(&g, grant(facts("general", &a, "amina", 31)), NOW),
            Fate::Keep
        );
        g.holds.push(Hold {
            id: 6,
            members: vec!["bilal".into()],
            channels: vec!["general".into()],
            reason: String::new(),
            placed_at: NOW,
        });
        assert_eq!(fate(&g, facts("legal", &b, "bilal", 2), NOW), Fate::Keep);
        assert_eq!(fate(&g, facts("general", &a, "amina", 31), NOW), Fate::Keep);
        assert!(!file_expired(&g, facts("general", &a, "amina", 31), NOW));
    }
}
