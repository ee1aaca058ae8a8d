//! "Why can't I see X?": what a node knows about its own reachability, and the findings
//! drawn from it. The node gathers a [`Report`]; [`Report::findings`] is pure, so the app's
//! network view and `majlisd doctor` give the same answers. Findings say what is wrong in
//! words that suit any front end; each front end adds its own how-to.

use serde::{Deserialize, Serialize};

use crate::identity::DeviceId;

/// One network interface address of this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub addr: String,
    pub loopback: bool,
    pub up: bool,
}

/// A static peer (given by address) and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticPeer {
    pub addr: String,
    /// The roster device it turned out to be, while connected.
    pub connected: Option<DeviceId>,
    pub last_error: Option<String>,
}

/// One device of the head roster, as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceState {
    pub member: String,
    pub device: DeviceId,
    /// Addresses it announced over mDNS (or that a static peer turned out to be).
    pub seen_at: Vec<String>,
    /// The address of the live connection, if any.
    pub connected: Option<String>,
    /// The roster version it said it holds.
    pub roster_version: Option<u64>,
    /// The last failed dial or connection to it.
    pub last_error: Option<String>,
}

/// What a running node knows about its reachability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub device: DeviceId,
    /// This device's member name, if the head roster lists it.
    pub member: Option<String>,
    pub roster_version: u64,
    pub contested: Option<u64>,
    pub mdns: bool,
    pub interfaces: Vec<Interface>,
    pub listen: Vec<String>,
    pub static_peers: Vec<StaticPeer>,
    /// Every other device of the head roster.
    pub devices: Vec<DeviceState>,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Something keeps messages from flowing.
    Problem,
    /// Worth knowing; nothing is broken.
    Note,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub level: Level,
    pub text: String,
}

fn problem(text: String) -> Finding {
    Finding {
        level: Level::Problem,
        text,
    }
}

fn note(text: String) -> Finding {
    Finding {
        level: Level::Note,
        text,
    }
}

impl Report {
    /// What looks wrong, worst first.
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        if self.member.is_none() {
            out.push(problem(format!(
                "this device ({}) is not on the org roster: nothing is sent to it and it posts nothing until an admin adds it",
                self.device
            )));
        }
        if let Some(v) = self.contested {
            out.push(problem(format!(
                "the roster is contested from version {v}: two admins removed each other; this device keeps the branch it saw first until the org root key settles it"
            )));
        }
        if !self.interfaces.iter().any(|i| !i.loopback && i.up) {
            out.push(problem(
                "no network interface is up besides loopback: no other host can be reached".into(),
            ));
        }
        if self.listen.is_empty() {
            out.push(problem("the node listens on no address".into()));
        }
        let connected = self
            .devices
            .iter()
            .filter(|d| d.connected.is_some())
            .count();
        if connected == 0 && !self.devices.is_empty() {
            out.push(problem(if self.mdns {
                "no device of the org is connected: devices on the same network appear within a second over mDNS; if none do, multicast may be blocked there, so give peers by address".to_string()
            } else {
                "no device of the org is connected, and mDNS is off: give peers by address"
                    .to_string()
            }));
        }
        for p in &self.static_peers {
            if p.connected.is_none() {
                out.push(problem(format!(
                    "static peer {} is not connected{}",
                    p.addr,
                    p.last_error
                        .as_ref()
                        .map_or(String::new(), |e| format!(": {e}"))
                )));
            }
        }
        for d in &self.devices {
            if d.connected.is_some() {
                if let Some(v) = d.roster_version.filter(|v| *v < self.roster_version) {
                    out.push(note(format!(
                        "{} holds an older roster (version {v} < {}); it updates on its own while connected",
                        d.member, self.roster_version
                    )));
                }
                continue;
            }
            out.push(match (&d.last_error, d.seen_at.is_empty()) {
                (Some(e), _) => problem(format!(
                    "{}'s device {} was seen at {} but cannot be reached: {e}",
                    d.member,
                    d.device,
                    d.seen_at.join(", ")
                )),
                (None, false) => note(format!(
                    "{}'s device {} was seen at {} and is not connected (yet)",
                    d.member,
                    d.device,
                    d.seen_at.join(", ")
                )),
                (None, true) => note(format!(
                    "{}'s device {} has not been seen: it is off, or on a network this one does not reach",
                    d.member, d.device
                )),
            });
        }
        out.sort_by_key(|f| f.level != Level::Problem);
        out
    }

    /// Whether anything keeps messages from flowing.
    pub fn has_problems(&self) -> bool {
        self.findings().iter().any(|f| f.level == Level::Problem)
    }
}

/// This host's interface addresses (empty if the OS will not say).
pub fn interfaces() -> Vec<Interface> {
    if_addrs::get_if_addrs()
        .map(|list| {
            list.into_iter()
                .map(|i| Interface {
                    loopback: i.is_loopback(),
                    up: i.is_oper_up() || i.oper_status == if_addrs::IfOperStatus::Unknown,
                    addr: i.ip().to_string(),
                    name: i.name,
                })
                .collect()
        })
        .unwrap_or_default()
}
