//! What the roster chain means for this node's connections: whom to admit, whom to cut off,
//! which topics to hold, what to tell a peer about the roster, and when to erase ourselves.
//! Pure functions of the chain; the node applies them to the swarm.

use std::collections::HashSet;

use crate::identity::DeviceId;
use crate::roster::{RosterChain, VerifiedRoster};

/// The connection policy of one head roster, as seen by device `me`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// Whether the head lists `me`. Until it does, any peer may connect and hand us the
    /// roster (bootstrap): we hold nothing to leak and post nothing.
    pub listed: bool,
    /// Roster devices other than `me`: the only peers admitted once `listed`.
    pub allowed: HashSet<DeviceId>,
    /// Devices of earlier versions that the head no longer lists: admitted only to learn of
    /// their removal, then closed.
    pub departed: HashSet<DeviceId>,
    /// An earlier stored version listed `me` and the head does not: erase keys and history.
    /// Decided from the stored chain, so a wipe due when the process died happens at the
    /// next start.
    pub wipe: bool,
    /// The gossip topics `me` subscribes to (channels it reads, its inboxes).
    pub topics: HashSet<String>,
    /// Every topic of the head roster: subscriptions to these are policed.
    pub policed: HashSet<String>,
}

impl Membership {
    pub fn of(chain: &RosterChain, me: &DeviceId) -> Membership {
        let Some(head) = chain.head() else {
            return Membership::default();
        };
        let mine = head.member_of_device(me);
        let ever: HashSet<DeviceId> = chain
            .versions()
            .iter()
            .flat_map(|v| v.devices())
            .copied()
            .collect();
        Membership {
            listed: mine.is_some(),
            allowed: head.devices().filter(|d| *d != me).copied().collect(),
            departed: ever
                .into_iter()
                .filter(|d| d != me && head.member_of_device(d).is_none())
                .collect(),
            wipe: mine.is_none()
                && chain
                    .versions()
                    .iter()
                    .any(|v| v.member_of_device(me).is_some()),
            topics: mine
                .map(|m| head.roster.topics_of(m).into_iter().collect())
                .unwrap_or_default(),
            policed: head.roster.all_topics().into_iter().collect(),
        }
    }
}

/// Whether `device` may subscribe to `topic` (a channel name or `@NAME`) under `head`.
/// Subscribing to a topic its device may not read is what a modified client does to
/// eavesdrop.
pub fn may_subscribe(head: &VerifiedRoster, device: &DeviceId, topic: &str) -> bool {
    head.member_of_device(device)
        .is_some_and(|m| head.roster.may_subscribe(m, topic))
}

/// The roster versions to send a peer that says it holds `(version, hash)`: the versions
/// after it, to a device on our roster; to a removed device, those up to the one that
/// removed it, and nothing after; to anyone else, nothing.
pub fn roster_answer<'c>(
    chain: &'c RosterChain,
    peer: Option<&DeviceId>,
    departed: bool,
    version: u64,
    hash: [u8; 32],
) -> Vec<&'c VerifiedRoster> {
    let listed = peer.is_some_and(|d| {
        chain
            .head()
            .is_some_and(|h| h.member_of_device(d).is_some())
    });
    let until = match (listed, peer) {
        (true, _) => Some(u64::MAX),
        (false, Some(d)) if departed => chain
            .versions()
            .iter()
            .skip_while(|v| v.member_of_device(d).is_none())
            .find(|v| v.member_of_device(d).is_none())
            .map(|v| v.version()),
        _ => None,
    };
    match until {
        Some(until) if chain.version() > 0 => chain
            .suffix_for(version)
            .iter()
            .filter(|r| !(r.version() == version && r.hash == hash))
            .take_while(|r| r.version() <= until)
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a peer holding `(version, hash)` has something we lack (a later version, or a
/// different branch at the same version): then ask it back.
pub fn peer_is_ahead(chain: &RosterChain, version: u64, hash: [u8; 32]) -> bool {
    let ours = chain.get(version).map(|r| r.hash);
    version > chain.version() || (version > 0 && ours != Some(hash))
}
