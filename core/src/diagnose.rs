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
    /// Refused input so far, by reason (`Stats::rejected`): some reasons name a cause a
    /// user can fix (a wrong clock, rosters that disagree).
    #[serde(default)]
    pub rejected: std::collections::BTreeMap<String, u64>,
    /// Connections refused by the roster gate (devices not on our roster, other orgs).
    #[serde(default)]
    pub denied_connections: u64,
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
        let count = |k: &str| self.rejected.get(k).copied().unwrap_or(0);
        if count("clock") > 0 {
            out.push(problem(format!(
                "{} message(s) were refused because their time was more than the allowed skew ahead of this device's clock (or before 2020): a sender's clock, or this one, is wrong; set both right (NTP)",
                count("clock")
            )));
        }
        if count("backdated") > 0 {
            out.push(note(format!(
                "{} message(s) were refused as backdated (dated more than 5 min before their author's previous message): a member's client, or clock, is not to be trusted",
                count("backdated")
            )));
        }
        if count("unknown_device") + count("not_allowed") > 0 {
            out.push(note(format!(
                "{} message(s) came from devices this roster does not list or does not allow in that channel: a removed device, or a peer whose roster differs from this one (compare roster versions)",
                count("unknown_device") + count("not_allowed")
            )));
        }
        if self.denied_connections > 0 {
            out.push(note(format!(
                "{} connection(s) from devices not on this roster were refused (a device not yet added, a removed one, or another organization on this network)",
                self.denied_connections
            )));
        }
        out.sort_by_key(|f| f.level != Level::Problem);
        out
    }

    /// Whether anything keeps messages from flowing.
    pub fn has_problems(&self) -> bool {
        self.findings().iter().any(|f| f.level == Level::Problem)
    }

    /// A text to paste into a ticket: the facts and findings, device ids shortened, no
    /// message content (the report holds none).
    pub fn shareable(&self) -> String {
        self.render(true)
    }

    /// The facts, then the findings, one per line (what `majlisd doctor` prints; with
    /// `short_ids`, what goes into a ticket).
    pub fn render(&self, short_ids: bool) -> String {
        let id = |d: &DeviceId| {
            let s = d.to_string();
            if short_ids {
                format!("{}…", &s[..s.len().min(8)])
            } else {
                s
            }
        };
        // Error texts from the network name peers by their full ids: shorten those too.
        let ids: Vec<DeviceId> = std::iter::once(self.device)
            .chain(self.devices.iter().map(|d| d.device))
            .collect();
        let mut out = String::new();
        let mut line = |mut s: String| {
            if short_ids {
                for d in &ids {
                    s = s.replace(&d.to_string(), &id(d));
                }
            }
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "majlis diagnostics: device {} ({}), roster version {}{}",
            id(&self.device),
            self.member.as_deref().unwrap_or("not on the roster"),
            self.roster_version,
            self.contested
                .map_or(String::new(), |v| format!(", contested from {v}"))
        ));
        line(format!("mDNS: {}", if self.mdns { "on" } else { "off" }));
        for i in &self.interfaces {
            line(format!(
                "interface {} {}{}{}",
                i.name,
                i.addr,
                if i.loopback { " (loopback)" } else { "" },
                if i.up { "" } else { " (down)" }
            ));
        }
        for a in &self.listen {
            line(format!("listening on {a}"));
        }
        for p in &self.static_peers {
            line(format!(
                "static peer {}: {}",
                p.addr,
                match (&p.connected, &p.last_error) {
                    (Some(d), _) => format!("connected ({})", id(d)),
                    (None, Some(e)) => format!("not connected: {e}"),
                    (None, None) => "not connected".into(),
                }
            ));
        }
        for d in &self.devices {
            line(format!(
                "{} {}: {}",
                d.member,
                id(&d.device),
                match (&d.connected, &d.last_error) {
                    (Some(a), _) => format!(
                        "connected at {a}, roster version {}",
                        d.roster_version.map_or("?".into(), |v| v.to_string())
                    ),
                    (None, Some(e)) => format!("not connected: {e}"),
                    (None, None) if d.seen_at.is_empty() => "not seen".into(),
                    (None, None) => format!("seen at {}, not connected", d.seen_at.join(", ")),
                }
            ));
        }
        if !self.rejected.is_empty() {
            line(format!("refused: {:?}", self.rejected));
        }
        for f in self.findings() {
            line(format!(
                "{}: {}",
                if f.level == Level::Problem {
                    "PROBLEM"
                } else {
                    "note"
                },
                f.text
            ));
        }
        out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fine() -> Report {
        let dev = crate::DeviceKey::generate().id();
        Report {
            device: crate::DeviceKey::generate().id(),
            member: Some("amina".into()),
            roster_version: 3,
            contested: None,
            mdns: true,
            interfaces: vec![Interface {
                name: "eth0".into(),
                addr: "10.0.0.2".into(),
                loopback: false,
                up: true,
            }],
            listen: vec!["/ip4/10.0.0.2/tcp/7441".into()],
            static_peers: vec![],
            devices: vec![DeviceState {
                member: "bilal".into(),
                device: dev,
                seen_at: vec!["/ip4/10.0.0.3/tcp/7441".into()],
                connected: Some("/ip4/10.0.0.3/tcp/7441".into()),
                roster_version: Some(3),
                last_error: None,
            }],
            rejected: Default::default(),
            denied_connections: 0,
        }
    }

    #[test]
    fn nothing_fires_when_all_is_well() {
        assert!(fine().findings().is_empty());
        assert!(!fine().has_problems());
    }

    #[test]
    fn each_failure_names_itself() {
        let mut r = fine();
        r.rejected.insert("clock".into(), 2);
        let f = r.findings();
        assert!(
            f[0].level == Level::Problem && f[0].text.contains("clock"),
            "{f:?}"
        );

        let mut r = fine();
        r.devices[0].roster_version = Some(1);
        assert!(r.findings()[0]
            .text
            .contains("older roster (version 1 < 3)"));

        let mut r = fine();
        r.member = None;
        assert!(r.has_problems());

        let mut r = fine();
        r.devices[0].connected = None;
        r.devices[0].last_error = Some("Connection refused".into());
        let f = r.findings();
        assert!(f
            .iter()
            .any(|f| f.text.contains("no device of the org is connected")));
        assert!(f
            .iter()
            .any(|f| f.text.contains("cannot be reached: Connection refused")));

        let mut r = fine();
        r.interfaces[0].up = false;
        assert!(r.findings()[0].text.contains("no network interface"));

        let mut r = fine();
        r.denied_connections = 4;
        let f = r.findings();
        assert!(f.iter().all(|f| f.level == Level::Note) && f[0].text.contains("4 connection(s)"));
    }

    #[test]
    fn the_shareable_text_shortens_ids() {
        let r = fine();
        let text = r.shareable();
        assert!(!text.contains(&r.device.to_string()), "{text}");
        assert!(!text.contains(&r.devices[0].device.to_string()), "{text}");
        assert!(
            text.contains("bilal") && text.contains("connected at"),
            "{text}"
        );
    }
}
