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
    /// The last failed dial or connection to it, in plain words.
    pub last_error: Option<String>,
    /// How it was found: "mDNS", "address" (a static peer), "peer exchange".
    #[serde(default)]
    pub found_by: Vec<String>,
    /// When it was first and last found (unix ms).
    #[serde(default)]
    pub first_seen: Option<u64>,
    #[serde(default)]
    pub last_seen: Option<u64>,
    /// Connected since (unix ms).
    #[serde(default)]
    pub connected_since: Option<u64>,
    /// The hash of the roster version it holds (hex, first 8 bytes).
    #[serde(default)]
    pub roster_hash: Option<String>,
    /// Its clock minus ours, measured when it last told us its roster (ms; transit time is
    /// not subtracted, so a few ms are noise).
    #[serde(default)]
    pub clock_offset_ms: Option<i64>,
    /// When a message it wrote last reached this node (unix ms).
    #[serde(default)]
    pub last_message: Option<u64>,
    /// Its messages that arrived in the last minute as they were written (by gossip, or
    /// caught up on within minutes of being written), and their bytes: its pace (see
    /// [`BUSY_PER_MINUTE`]).
    #[serde(default)]
    pub messages_last_minute: u64,
    #[serde(default)]
    pub bytes_last_minute: u64,
    /// Catch-up requests to it still unanswered (the history it has that we are fetching).
    #[serde(default)]
    pub catching_up: u32,
    /// Messages this node holds that it still lacked after our last catch-up answer to it
    /// (its sync lag behind this node, summed over channels); `None` until it asks.
    #[serde(default)]
    pub missing: Option<u64>,
    /// Dials to it since this node started (redials every 3 s while it is not connected).
    #[serde(default)]
    pub dial_attempts: u64,
    /// Known but not dialled on purpose: the org has more devices than the mesh limit, and
    /// this one is not among the few per channel this node connects to (see
    /// `proto::neighbours`); messages reach it through others.
    #[serde(default)]
    pub spare: bool,
    /// On the network now: connected to this node, or reported connected by one this node
    /// is connected to (what the app shows as online).
    #[serde(default)]
    pub online: bool,
}

impl DeviceState {
    /// "member (device id)": how findings name it.
    fn who(&self) -> String {
        format!("{} ({})", self.member, self.device)
    }
}

/// A device that is not on this roster but showed up: announced itself over mDNS, or tried
/// to connect and was turned away by the roster gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stranger {
    pub device: String,
    pub addrs: Vec<String>,
    /// It announces this org over mDNS (joined with this org's invitation).
    pub this_org: bool,
    /// When the gate last turned it away (unix ms), and whether it was calling us.
    pub turned_away: Option<u64>,
    pub inbound: bool,
    /// The member name it asks to join under, if it announces one (a claim: see `code`).
    #[serde(default)]
    pub asks: Option<String>,
    /// Its join code ([`crate::identity::join_code`]) for a device of this org: the admin
    /// compares it with the code on the newcomer's screen before adding it.
    #[serde(default)]
    pub code: String,
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
    /// When this report was made (unix ms), and how long the node has been running (s).
    #[serde(default)]
    pub at: u64,
    #[serde(default)]
    pub uptime_secs: u64,
    /// The hash of this node's roster version (hex, first 8 bytes).
    #[serde(default)]
    pub roster_hash: String,
    /// Records received over mDNS from other devices of this org: none for a while, with
    /// devices connected by other means, says multicast does not get through.
    #[serde(default)]
    pub mdns_records: u64,
    /// Devices not on this roster that showed up (this org's and others').
    #[serde(default)]
    pub strangers: Vec<Stranger>,
    /// Addresses, not this host's, from which this device's own id is announced: a copy of
    /// this data directory runs there.
    #[serde(default)]
    pub identity_elsewhere: Vec<String>,
    /// (channel, seq) where peers hold messages this device signed that differ from its
    /// own log from that seq on: the data directory is an older copy of itself.
    #[serde(default)]
    pub own_history_diverged: Vec<(String, u64)>,
    /// (channel, "member (device)") of authors a peer showed another branch of: they
    /// signed two different messages at one place of their log.
    #[serde(default)]
    pub forked_authors: Vec<(String, String)>,
    /// Free space on the data directory's disk (bytes), when it can be measured.
    #[serde(default)]
    pub disk_free: Option<u64>,
    /// Bytes the node keeps free on that disk: below it nothing new is stored
    /// ([`crate::store::min_free`]).
    #[serde(default)]
    pub disk_margin: u64,
    /// Until when (unix ms) this device invites newcomers over mDNS, if it does
    /// ([`crate::Node::invite`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inviting_until: Option<u64>,
}

/// Less free space than this on the data directory's disk is worth a finding before the
/// node has to refuse writes: a relay fetching every shared file goes through a gigabyte in
/// minutes.
pub const LOW_DISK: u64 = 1 << 30;

/// A device whose files, at the last minute's pace, fill the disk sooner than this is
/// named (a note: one big file shared is a pace for a minute, not a flood).
const FILES_FILL_MS: u64 = 6 * 3600 * 1000;

/// A device bringing at least this much in the last minute is named beside a low disk.
const FILLING_PER_MINUTE: u64 = 1 << 20;

/// More messages of one device than this arriving in a minute (ten a second, for a
/// whole minute) is more than anyone types: a bot, or a device flooding the org. Every
/// valid message is kept by every node that may read it, so the question an admin needs
/// answered is who, and how soon the disks fill.
pub const BUSY_PER_MINUTE: u64 = 600;

/// Why the node could not listen on an address, in the words of [`crate::Error::Listen`]'s
/// `reason` ("WORDS [the system's own text]"), for the common causes; one table, as
/// [`LINK_WORDS`], so that a front end in another language can say each.
pub const LISTEN_WORDS: [&str; 4] = [
    "another program listens on that port already (another Majlis node, perhaps)",
    "this machine has no such address (the network interface is down, or the address is another machine's)",
    "not permitted (a port below 1024 needs privileges)",
    "no address after 5 s",
];

/// `reason` (the system's text for a failed listen) led by the words of [`LISTEN_WORDS`]
/// that say what it means, or as it came for a cause not listed there.
pub fn listen_reason(reason: &str) -> String {
    let r = reason.to_lowercase();
    let words = if r.contains("address already in use") || r.contains("addrinuse") {
        LISTEN_WORDS[0]
    } else if r.contains("cannot assign requested address") || r.contains("addrnotavail") {
        LISTEN_WORDS[1]
    } else if r.contains("permission denied") || r.contains("access is denied") {
        LISTEN_WORDS[2]
    } else {
        return reason.to_string();
    };
    format!("{words} [{reason}]")
}

/// What a failed dial or a lost connection means, in the words the node's `error` places
/// use ("ADDR: WORDS [the system's own text]", several joined by "; "). One table so that
/// a front end in another language can say each (the app translates them where they
/// occur); the system's bracketed text stays as it came.
pub const LINK_WORDS: [&str; 10] = [
    "refused: nothing listens on that port there (the node is not running, or listens on another port)",
    "timed out: the host does not answer (switched off, a firewall drops the traffic, or it is on a network this one does not reach)",
    "no route to that host from here (another network, or the link is down)",
    "the other side closed the connection",
    "the handshake failed: what answers there is not a Majlis node of a compatible release",
    "denied by this node: the device that answers there is not on this roster (another org's device, or one not added yet)",
    "another device answers there: the address now belongs to someone else",
    "that address is this device itself",
    "it closes the connection right after the handshake: its roster does not list this device (it holds an older roster than the one that added this device, or this device was removed there)",
    "connection lost",
];

/// A disk that fills sooner than this at a device's pace is a problem, not a note.
const FULL_SOON_MS: u64 = 24 * 3600 * 1000;

/// A clock this far off is worth a note; past [`crate::message::MAX_FUTURE_SKEW_MS`]
/// messages are refused.
pub const CLOCK_NOTE_MS: i64 = 60_000;

/// "12 min", "40 s", "9 days": durations in findings and device facts, always in a place named
/// `time`, `offset` or `limit`, so that a front end that translates them knows where to say
/// the unit in its language.
fn span(ms: u64) -> String {
    let s = (ms + 500) / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", (s + 30) / 60),
        7200..=259_199 => format!("{} h", (s + 1800) / 3600),
        _ => format!("{} days", (s + 43_200) / 86_400),
    }
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
    /// What `majlisd doctor` prints.
    pub text: String,
    /// The same as sentences with `{name}` places and their values, for a front end that
    /// says it in another language (the app): it translates each template and fills it.
    #[serde(skip)]
    pub parts: Vec<Part>,
}

/// One sentence of a [`Finding`]: an English template and the values of its places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub template: &'static str,
    pub args: Vec<(&'static str, String)>,
}

impl Part {
    /// The template with its places filled.
    pub fn fill(&self, template: &str) -> String {
        fill_places(template, |name| {
            let (_, v) = self.args.iter().find(|(n, _)| *n == name)?;
            Some(v.clone())
        })
    }
}

/// `template` with each `{name}` that `value` knows replaced, in one pass: a value is never
/// read again, so a member named "{count}" stays that name instead of taking the next
/// value's place. Places `value` does not know stay as they are. (The app fills its own
/// translated texts with it too.)
pub fn fill_places(template: &str, mut value: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .and_then(|close| Some((value(&after[..close])?, close)))
        {
            Some((v, close)) => {
                out.push_str(&v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One device's line of [`Report::device_facts`]: who it is (names and ids, never
/// translated) and its facts, each a clause of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLine {
    pub who: Option<String>,
    pub facts: Vec<Part>,
}

impl DeviceLine {
    /// The line as `majlisd doctor` prints it: "who: fact; fact".
    pub fn text(&self) -> String {
        let facts = self
            .facts
            .iter()
            .map(|p| p.fill(p.template))
            .collect::<Vec<_>>()
            .join("; ");
        match &self.who {
            Some(w) => format!("{w}: {facts}"),
            None => facts,
        }
    }
}

fn part(template: &'static str, args: &[(&'static str, &dyn std::fmt::Display)]) -> Part {
    Part {
        template,
        args: args.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    }
}

fn finding(level: Level, parts: Vec<Part>) -> Finding {
    let text = parts
        .iter()
        .map(|p| p.fill(p.template))
        .collect::<Vec<_>>()
        .join(" ");
    Finding { level, text, parts }
}

fn problem(parts: Vec<Part>) -> Finding {
    finding(Level::Problem, parts)
}

fn note(parts: Vec<Part>) -> Finding {
    finding(Level::Note, parts)
}

impl Report {
    /// What looks wrong, worst first.
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        if self.member.is_none() {
            out.push(problem(vec![part(
                "this device ({device}) is not on the org roster: nothing is sent to it and it posts nothing until an admin adds it",
                &[("device", &self.device)],
            )]));
        }
        if let Some(v) = self.contested {
            out.push(problem(vec![part(
                "the roster is contested from version {version}: two admins removed each other; this device keeps the branch it saw first until the org root key settles it",
                &[("version", &v)],
            )]));
        }
        if !self.interfaces.iter().any(|i| !i.loopback && i.up) {
            out.push(problem(vec![part(
                "no network interface is up besides loopback: no other host can be reached",
                &[],
            )]));
        }
        if self.listen.is_empty() {
            out.push(problem(vec![part("the node listens on no address", &[])]));
        }
        let connected = self
            .devices
            .iter()
            .filter(|d| d.connected.is_some())
            .count();
        if connected == 0 && !self.devices.is_empty() {
            out.push(problem(vec![if self.mdns {
                part("no device of the org is connected: devices on the same network appear within a second over mDNS; if none do, multicast may be blocked there, so give peers by address", &[])
            } else {
                part(
                    "no device of the org is connected, and mDNS is off: give peers by address",
                    &[],
                )
            }]));
        }
        for p in &self.static_peers {
            if p.connected.is_none() {
                out.push(problem(vec![match &p.last_error {
                    Some(e) => part(
                        "static peer {address} is not connected: {error}",
                        &[("address", &p.addr), ("error", e)],
                    ),
                    None => part(
                        "static peer {address} is not connected",
                        &[("address", &p.addr)],
                    ),
                }]));
            }
        }
        for d in &self.devices {
            if d.connected.is_some() {
                if let Some(v) = d.roster_version.filter(|v| *v < self.roster_version) {
                    out.push(note(vec![part(
                        "{member} holds an older roster (version {theirs} < {ours}); it updates on its own while connected",
                        &[("member", &d.member), ("theirs", &v), ("ours", &self.roster_version)],
                    )]));
                }
                continue;
            }
            let (member, device, seen) = (&d.member, &d.device, d.seen_at.join(", "));
            out.push(match (&d.last_error, d.seen_at.is_empty()) {
                (Some(e), true) => problem(vec![part(
                    "{member}'s device {device} cannot be reached: {error}",
                    &[("member", member), ("device", device), ("error", e)],
                )]),
                (Some(e), false) => problem(vec![part(
                    "{member}'s device {device} was seen at {addresses} but cannot be reached: {error}",
                    &[("member", member), ("device", device), ("addresses", &seen), ("error", e)],
                )]),
                (None, false) if d.spare => note(vec![part(
                    "{member}'s device {device} was seen at {addresses} and is not one of this device's neighbours: the org has more devices than the mesh limit, so each device connects to a few per channel and messages travel through them",
                    &[("member", member), ("device", device), ("addresses", &seen)],
                )]),
                (None, false) => note(vec![part(
                    "{member}'s device {device} was seen at {addresses} and is not connected (yet)",
                    &[("member", member), ("device", device), ("addresses", &seen)],
                )]),
                (None, true) => note(vec![part(
                    "{member}'s device {device} has not been seen: it is off, or on a network this one does not reach",
                    &[("member", member), ("device", device)],
                )]),
            });
        }
        for d in &self.devices {
            let Some(off) = d.clock_offset_ms.filter(|o| o.abs() >= CLOCK_NOTE_MS) else {
                continue;
            };
            let args: [(&'static str, &dyn std::fmt::Display); 3] = [
                ("member", &d.member),
                ("offset", &span(off.unsigned_abs())),
                ("limit", &span(crate::message::MAX_FUTURE_SKEW_MS)),
            ];
            let text = vec![if off > 0 {
                part("{member}'s clock is {offset} ahead of this device's: messages dated more than {limit} ahead of a receiver's clock are refused, so one of the two clocks is wrong; set both right (NTP)", &args)
            } else {
                part("{member}'s clock is {offset} behind this device's: messages dated more than {limit} ahead of a receiver's clock are refused, so one of the two clocks is wrong; set both right (NTP)", &args)
            }];
            out.push(if off.unsigned_abs() > crate::message::MAX_FUTURE_SKEW_MS {
                problem(text)
            } else {
                note(text)
            });
        }
        if let Some(a) = self.identity_elsewhere.first() {
            out.push(problem(vec![part(
                "this device's identity ({device}) is also announced from {address}: a copy of this data directory runs there. Two nodes with one identity take each other's connections; stop the copy and give that computer its own identity (`majlisd init` in a fresh data directory, then have an admin add it)",
                &[("device", &self.device), ("address", a)],
            )]));
        }
        if let Some((channel, seq)) = self.own_history_diverged.first() {
            out.push(problem(vec![part(
                "a colleague's device holds messages this device signed in '{channel}' from seq {seq} on that this device gave up: this data directory is an older copy (restored from a backup, or copied), and that device took what it signed in their place before anyone else's copy. It refuses what this device sends there. Set this device up afresh (`majlisd init` in a new data directory, `org join`, then an admin adds it and removes this one): its history comes back by catch-up",
                &[("channel", channel), ("seq", seq)],
            )]));
        }
        for (channel, who) in &self.forked_authors {
            out.push(problem(vec![part(
                "{member} signed two different messages at one place of its log in '{channel}' (a modified client, or a device restored from an older copy that posted before catching up): peers hold different branches of it, and what a peer holds of the other branch is not taken from it. An admin should check that device, and revoke it unless it is a restored copy",
                &[("member", who), ("channel", channel)],
            )]));
        }
        let full_in = |d: &DeviceState| self.full_in(d.bytes_last_minute);
        // Many messages, or few that bring files this fast while the disk still has room
        // (under `LOW_DISK`, `low_disk` names whoever brings the most).
        let heavy = |d: &DeviceState| {
            self.disk_free.is_some_and(|f| f >= LOW_DISK)
                && full_in(d).is_some_and(|ms| ms < FILES_FILL_MS)
        };
        let mut named: Vec<&DeviceState> = self
            .devices
            .iter()
            .filter(|d| d.messages_last_minute > BUSY_PER_MINUTE || heavy(d))
            .collect();
        named.sort_by_key(|d| std::cmp::Reverse((d.messages_last_minute, d.bytes_last_minute)));
        for d in named {
            let (member, size) = (d.who(), crate::files::human_size(d.bytes_last_minute));
            let busy = d.messages_last_minute > BUSY_PER_MINUTE;
            let mut parts = vec![match busy {
                true => part(
                    "{count} messages of {member} arrived in the last minute ({size}), far more than anyone types.",
                    &[("count", &d.messages_last_minute), ("member", &member), ("size", &size)],
                ),
                false => part(
                    "In the last minute the messages of {member} brought {size} to this disk, with the files this device fetches for them.",
                    &[("member", &member), ("size", &size)],
                ),
            }];
            if let Some(ms) = full_in(d) {
                parts.push(part(
                    "At this pace this disk is full in {time}.",
                    &[("time", &span(ms))],
                ));
            }
            parts.push(part(
                "Unless it is a bot of yours, an admin can revoke the device (`majlisd roster revoke --device {device}`) and erase what it sent (`majlisd erase --member {name}`).",
                &[("device", &d.device), ("name", &d.member)],
            ));
            // Sharing big files is what Majlis is for: a pace of files alone is a note until
            // the disk is low.
            out.push(
                match busy && full_in(d).is_some_and(|ms| ms < FULL_SOON_MS) {
                    true => problem(parts),
                    false => note(parts),
                },
            );
        }
        if let Some(free) = self.disk_free.filter(|&f| f < LOW_DISK) {
            out.push(self.low_disk(free));
        }
        let ahead = self
            .devices
            .iter()
            .filter(|d| d.connected.is_some())
            .any(|d| d.roster_version.is_some_and(|v| v > self.roster_version));
        for s in self.strangers.iter().filter(|s| s.this_org) {
            let (device, version) = (&s.device, &self.roster_version);
            let who = if s.addrs.is_empty() {
                part(
                    "device {device} is of this org but not on this roster (version {version}).",
                    &[("device", device), ("version", version)],
                )
            } else {
                part(
                    "device {device} at {addresses} is of this org but not on this roster (version {version}).",
                    &[("device", device), ("addresses", &s.addrs.join(", ")), ("version", version)],
                )
            };
            let seen = if s.turned_away.is_some() && s.inbound {
                part("It tried to connect and was turned away.", &[])
            } else if s.turned_away.is_some() {
                part(
                    "It answered at an address given to this node and was turned away.",
                    &[],
                )
            } else {
                part("It announces itself.", &[])
            };
            // A newcomer waiting to join: what it asks and the code to compare, so the
            // admin adds the device on the newcomer's desk and no impostor.
            let asked = match (&s.asks, s.code.is_empty()) {
                (_, true) => None,
                (Some(name), false) => Some(part(
                    "It asks to join as {name}; its join code is {code}.",
                    &[("name", name), ("code", &s.code)],
                )),
                (None, false) => Some(part("Its join code is {code}.", &[("code", &s.code)])),
            };
            let next = if ahead {
                part(
                    "A connected device holds a newer roster, which arrives in a moment.",
                    &[],
                )
            } else {
                part(
                    "If an admin has added it, this device's roster is out of date and cannot update: no connected device holds a newer one. Connect this device to one that does (an admin's device or a relay, e.g. with --peer). Otherwise an admin adds it (`majlisd roster add --device {device}`), once the code on its screen is the same.",
                    &[("device", device)],
                )
            };
            out.push(problem(
                vec![who, seen]
                    .into_iter()
                    .chain(asked)
                    .chain([next])
                    .collect(),
            ));
        }
        let others: Vec<&Stranger> = self.strangers.iter().filter(|s| !s.this_org).collect();
        if !others.is_empty() {
            let addrs: Vec<String> = others
                .iter()
                .flat_map(|s| s.addrs.first().cloned())
                .take(3)
                .collect();
            out.push(note(vec![part(
                "{count} device(s) of another Majlis organization (or a newer release) are on this network (at {addresses}): they are never shown here. If a colleague's device is among them, it joined another org: it must join this one with this org's invitation (`majlisd org join`)",
                &[("count", &others.len()), ("addresses", &addrs.join(", "))],
            )]));
        }
        if self.mdns
            && self.mdns_records == 0
            && self.uptime_secs >= 15
            && self.devices.iter().any(|d| d.connected.is_some())
        {
            out.push(note(vec![part(
                "every connected device was found by address or peer exchange, none over mDNS in this node's first 15 s: multicast does not get through here (a firewall, or a network that drops it), so devices new to this network need an address (--peer)",
                &[],
            )]));
        }
        let count = |k: &str| self.rejected.get(k).copied().unwrap_or(0);
        if count("clock") > 0 {
            out.push(problem(vec![part(
                "{count} message(s) were refused because their time was more than the allowed skew ahead of this device's clock (or before 2020): a sender's clock, or this one, is wrong; set both right (NTP)",
                &[("count", &count("clock"))],
            )]));
        }
        if count("backdated") > 0 {
            out.push(note(vec![part(
                "{count} message(s) were refused as backdated (dated more than 5 min before their author's previous message): a member's client, or clock, is not to be trusted",
                &[("count", &count("backdated"))],
            )]));
        }
        if count("unknown_device") + count("not_allowed") > 0 {
            out.push(note(vec![part(
                "{count} message(s) came from devices this roster does not list or does not allow in that channel: a removed device, or a peer whose roster differs from this one (compare roster versions)",
                &[("count", &(count("unknown_device") + count("not_allowed")))],
            )]));
        }
        out.sort_by_key(|f| f.level != Level::Problem);
        out
    }

    /// Whether anything keeps messages from flowing.
    pub fn has_problems(&self) -> bool {
        self.findings().iter().any(|f| f.level == Level::Problem)
    }

    /// One line per roster device (connected or why not, how it was found, its roster,
    /// clock and last message), then devices not on the roster that showed up: the facts
    /// `majlisd doctor` prints.
    pub fn device_lines(&self, short_ids: bool) -> Vec<String> {
        self.device_facts(short_ids)
            .iter()
            .map(DeviceLine::text)
            .collect()
    }

    /// [`Report::device_lines`] as facts with `{name}` places, for a front end that says
    /// them in another language (the app's Network view): each fact is translated and
    /// filled on its own, then joined.
    pub fn device_facts(&self, short_ids: bool) -> Vec<DeviceLine> {
        let id = |d: &DeviceId| short(&d.to_string(), short_ids);
        let mut out = Vec::new();
        let ago = |t: u64| span(self.at.saturating_sub(t));
        for d in &self.devices {
            let mut facts = Vec::new();
            let seen = d.seen_at.join(", ");
            match (&d.connected, &d.last_error) {
                (Some(a), _) => {
                    facts.push(match d.connected_since {
                        Some(t) => part(
                            "connected at {address} for {time}",
                            &[("address", a), ("time", &ago(t))],
                        ),
                        None => part("connected at {address}", &[("address", a)]),
                    });
                    let version = d.roster_version.map_or("?".into(), |v| v.to_string());
                    facts.push(match &d.roster_hash {
                        Some(h) => part(
                            "roster version {version} ({hash})",
                            &[("version", &version), ("hash", h)],
                        ),
                        None => part("roster version {version}", &[("version", &version)]),
                    });
                }
                (None, Some(e)) => facts.push(part(
                    "not connected ({count} dial(s)): {error}",
                    &[("count", &d.dial_attempts), ("error", e)],
                )),
                (None, None) if d.seen_at.is_empty() => facts.push(part("not seen", &[])),
                (None, None) if d.spare => {
                    facts.push(part(
                        "seen at {addresses}, not a neighbour (mesh limit; reached through others)",
                        &[("addresses", &seen)],
                    ));
                    if d.online {
                        facts.push(part("online", &[]));
                    }
                }
                (None, None) => facts.push(part(
                    "seen at {addresses}, not connected ({count} dial(s))",
                    &[("addresses", &seen), ("count", &d.dial_attempts)],
                )),
            }
            if !d.found_by.is_empty() {
                let ways = d.found_by.join(" and ");
                facts.push(match d.last_seen {
                    Some(t) => part(
                        "found by {ways}, last {time} ago",
                        &[("ways", &ways), ("time", &ago(t))],
                    ),
                    None => part("found by {ways}", &[("ways", &ways)]),
                });
            }
            if let Some(o) = d.clock_offset_ms {
                // Under half a second rounds to "0 s", which a sign only makes puzzling.
                facts.push(match o.unsigned_abs() {
                    0..500 => part("clock in step", &[]),
                    a => part(
                        "clock {sign}{time}",
                        &[("sign", &if o < 0 { "-" } else { "+" }), ("time", &span(a))],
                    ),
                });
            }
            if let Some(t) = d.last_message {
                facts.push(part("last message {time} ago", &[("time", &ago(t))]));
            }
            if d.catching_up > 0 {
                facts.push(part(
                    "catching up ({count} requests)",
                    &[("count", &d.catching_up)],
                ));
            }
            if let Some(n) = d.missing.filter(|n| *n > 0) {
                facts.push(part(
                    "{count} of our messages still to reach it",
                    &[("count", &n)],
                ));
            }
            out.push(DeviceLine {
                who: Some(format!("{} {}", d.member, id(&d.device))),
                facts,
            });
        }
        for s in &self.strangers {
            let mut facts = vec![match s.this_org {
                true => part("not on the roster (this org)", &[]),
                false => part("not on the roster (another org)", &[]),
            }];
            if !s.addrs.is_empty() {
                facts.push(part(
                    "at {addresses}",
                    &[("addresses", &s.addrs.join(", "))],
                ));
            }
            if let Some(t) = s.turned_away {
                facts.push(part("turned away {time} ago", &[("time", &ago(t))]));
            }
            out.push(DeviceLine {
                who: Some(short(&s.device, short_ids)),
                facts,
            });
        }
        for a in &self.identity_elsewhere {
            out.push(DeviceLine {
                who: None,
                facts: vec![part(
                    "this device's identity is also announced from {address}",
                    &[("address", a)],
                )],
            });
        }
        out
    }

    /// A text to paste into a ticket: the facts and findings, device ids shortened, no
    /// message content (the report holds none).
    pub fn shareable(&self) -> String {
        self.render(true)
    }

    /// The facts, then the findings, one per line (what `majlisd doctor` prints; with
    /// `short_ids`, what goes into a ticket).
    pub fn render(&self, short_ids: bool) -> String {
        let id = |d: &DeviceId| short(&d.to_string(), short_ids);
        // Findings and error texts name devices by their full ids: shorten those too.
        let ids: Vec<String> = std::iter::once(self.device)
            .chain(self.devices.iter().map(|d| d.device))
            .map(|d| d.to_string())
            .chain(self.strangers.iter().map(|s| s.device.clone()))
            .collect();
        let mut out = String::new();
        let mut line = |mut s: String| {
            if short_ids {
                for d in &ids {
                    s = s.replace(d, &short(d, true));
                }
            }
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "majlis diagnostics: device {} ({}), roster version {} ({}){}",
            id(&self.device),
            self.member.as_deref().unwrap_or("not on the roster"),
            self.roster_version,
            self.roster_hash,
            self.contested
                .map_or(String::new(), |v| format!(", contested from {v}"))
        ));
        line(format!(
            "mDNS: {} ({} record(s) from other devices of this org); up {}",
            if self.mdns { "on" } else { "off" },
            self.mdns_records,
            span(self.uptime_secs * 1000)
        ));
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
        for l in self.device_lines(short_ids) {
            line(l);
        }
        if !self.rejected.is_empty() {
            line(format!("refused: {:?}", self.rejected));
        }
        if self.denied_connections > 0 {
            line(format!(
                "connections refused by the roster gate since start: {}",
                self.denied_connections
            ));
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

    /// At `bytes` a minute, how long until the disk has no room left above the margin the
    /// store keeps (ms), when its free space is known.
    fn full_in(&self, bytes_per_minute: u64) -> Option<u64> {
        let left = self.disk_free?.saturating_sub(self.disk_margin);
        Some(left.saturating_mul(60_000) / bytes_per_minute.max(1))
    }

    /// The data directory's disk is (nearly) full: what that stops, who is filling it now if
    /// anyone is, and what to do. A problem once writes are refused or will be within a day
    /// at the pace of the last minute; a note before.
    fn low_disk(&self, free: u64) -> Finding {
        let (margin, size) = (self.disk_margin, crate::files::human_size);
        let full = free < margin;
        let mut parts = vec![match full {
            true => part(
                "this device's disk is full: {size} free, less than the {margin} Majlis keeps free, so nothing new is stored. What is sent from here is refused, and what colleagues send comes back by catch-up once there is room.",
                &[("size", &size(free)), ("margin", &size(margin))],
            ),
            false => part(
                "this device's disk is nearly full: {size} free; below {margin} Majlis stores nothing new.",
                &[("size", &size(free)), ("margin", &size(margin))],
            ),
        }];
        let filling = self
            .devices
            .iter()
            .filter(|d| d.bytes_last_minute >= FILLING_PER_MINUTE)
            .max_by_key(|d| d.bytes_last_minute);
        let mut soon = false;
        if let Some((d, ms)) = filling.and_then(|d| Some((d, self.full_in(d.bytes_last_minute)?))) {
            soon = ms < FULL_SOON_MS;
            parts.push(part(
                "In the last minute {size} came from {member} (messages and the files this device fetches for them); at that pace no room is left in {time}.",
                &[
                    ("size", &size(d.bytes_last_minute)),
                    ("member", &d.who()),
                    ("time", &span(ms)),
                ],
            ));
        }
        parts.push(part(
            "Free space on that disk, or move the data directory to a larger one: Majlis carries on by itself, with no restart.",
            &[],
        ));
        match full || soon {
            true => problem(parts),
            false => note(parts),
        }
    }
}

/// A device id, shortened for a ticket.
fn short(id: &str, short_ids: bool) -> String {
    if short_ids {
        format!("{}…", &id[..id.len().min(8)])
    } else {
        id.to_string()
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

    #[test]
    fn a_failed_listen_says_what_it_means_and_keeps_the_systems_words() {
        let said = listen_reason("Address already in use (os error 98)");
        assert_eq!(
            said,
            format!("{} [Address already in use (os error 98)]", LISTEN_WORDS[0])
        );
        assert!(listen_reason("Permission denied (os error 13)").starts_with(LISTEN_WORDS[2]));
        assert_eq!(listen_reason("something new"), "something new");
    }

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
                found_by: vec!["mDNS".into()],
                first_seen: Some(1_000),
                last_seen: Some(1_000),
                connected_since: Some(2_000),
                roster_hash: Some("00112233aabbccdd".into()),
                clock_offset_ms: Some(3),
                last_message: Some(50_000),
                messages_last_minute: 1,
                bytes_last_minute: 200,
                catching_up: 0,
                missing: None,
                dial_attempts: 1,
                spare: false,
                online: true,
            }],
            rejected: Default::default(),
            denied_connections: 0,
            at: 62_000,
            uptime_secs: 61,
            roster_hash: "00112233aabbccdd".into(),
            mdns_records: 1,
            strangers: vec![],
            identity_elsewhere: vec![],
            own_history_diverged: vec![],
            forked_authors: vec![],
            disk_free: None,
            disk_margin: 4 << 20,
            inviting_until: None,
        }
    }

    fn stranger(this_org: bool) -> Stranger {
        Stranger {
            device: crate::DeviceKey::generate().id().to_string(),
            addrs: vec!["/ip4/10.0.0.9/tcp/7441".into()],
            this_org,
            turned_away: Some(60_000),
            inbound: true,
            asks: None,
            code: String::new(),
        }
    }

    #[test]
    fn clocks_strangers_and_copies_are_named() {
        let mut r = fine();
        r.devices[0].clock_offset_ms = Some(10 * 60 * 1000);
        let f = r.findings();
        assert!(
            f[0].level == Level::Problem
                && f[0]
                    .text
                    .contains("bilal's clock is 10 min ahead of this device's"),
            "{f:?}"
        );
        r.devices[0].clock_offset_ms = Some(-90_000);
        let f = r.findings();
        assert!(
            f[0].level == Level::Note && f[0].text.contains("90 s behind"),
            "{f:?}"
        );

        let mut r = fine();
        r.identity_elsewhere = vec!["/ip4/10.0.0.7/tcp/7441".into()];
        assert!(r.findings()[0]
            .text
            .contains("a copy of this data directory runs there"));

        let mut r = fine();
        r.own_history_diverged = vec![("general".into(), 6)];
        let f = r.findings();
        assert!(
            f[0].level == Level::Problem
                && f[0].text.contains("in 'general' from seq 6")
                && f[0].text.contains("Set this device up afresh"),
            "{f:?}"
        );

        // A device of this org not on our roster, and nobody connected has a newer roster:
        // ours cannot update.
        let mut r = fine();
        r.strangers = vec![stranger(true)];
        let f = r.findings();
        assert!(
            f[0].level == Level::Problem
                && f[0].text.contains("not on this roster (version 3)")
                && f[0].text.contains("cannot update"),
            "{f:?}"
        );
        // A connected peer holds a newer one: it is on its way.
        r.devices[0].roster_version = Some(4);
        assert!(r.findings()[0].text.contains("arrives in a moment"));
        // A newcomer waiting to join: the name it asks for and the code to compare.
        r.strangers[0].code = "2134 9216 9286".into();
        assert!(r.findings()[0]
            .text
            .contains("Its join code is 2134 9216 9286."));
        r.strangers[0].asks = Some("dina".into());
        assert!(r.findings()[0]
            .text
            .contains("It asks to join as dina; its join code is 2134 9216 9286."));

        let mut r = fine();
        r.strangers = vec![stranger(false)];
        let f = r.findings();
        assert!(
            f.len() == 1
                && f[0].level == Level::Note
                && f[0].text.contains("another Majlis organization"),
            "{f:?}"
        );

        let mut r = fine();
        r.mdns_records = 0;
        assert!(r.findings()[0].text.contains("none over mDNS"));
        r.uptime_secs = 3;
        assert!(
            r.findings().is_empty(),
            "not yet: mDNS answers take a moment"
        );
    }

    /// A device flooding the org is named with its pace and what an admin does about it;
    /// a problem when the disk fills within a day at that pace, a note otherwise.
    #[test]
    fn a_device_sending_faster_than_anyone_types_is_named() {
        let mut r = fine();
        let d = &mut r.devices[0];
        (d.member, d.messages_last_minute) = ("mallory".into(), 30_000);
        d.bytes_last_minute = 10 << 20;
        let device = d.device;
        r.disk_free = Some(600 << 20);
        let f = r.findings();
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].level, Level::Problem);
        assert!(f[1].text.starts_with("this device's disk is nearly full"));
        let text = &f[0].text;
        assert!(text.starts_with("30000 messages of mallory ("), "{text}");
        assert!(text.contains("(10.0 MiB)"), "{text}");
        assert!(text.contains("full in 60 min"), "{text}");
        assert!(
            text.contains(&format!("revoke --device {device}")),
            "{text}"
        );
        assert!(text.contains("erase --member mallory"), "{text}");
        r.disk_free = Some(100 << 30);
        assert_eq!(r.findings()[0].level, Level::Note);
        r.disk_free = None;
        assert_eq!(r.findings()[0].level, Level::Note);
        assert!(!r.findings()[0].text.contains("full in"));
    }

    /// A (nearly) full disk says what it stops, who fills it now, and what to do; a note
    /// while there is room for more than a day at the last minute's pace.
    #[test]
    fn a_full_disk_is_said_with_who_is_filling_it() {
        let mut r = fine();
        r.disk_free = Some(LOW_DISK);
        assert!(r.findings().is_empty());
        r.disk_free = Some(900 << 20);
        let f = r.findings();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].level, Level::Note);
        assert!(f[0].text.contains("900.0 MiB free"), "{}", f[0].text);
        assert!(!f[0].text.contains("came from"), "{}", f[0].text);
        // Files bilal shares, fetched here, 300 MiB a minute: no room in three minutes.
        r.devices[0].bytes_last_minute = 300 << 20;
        let f = r.findings();
        assert_eq!(f[0].level, Level::Problem);
        let text = &f[0].text;
        assert!(text.contains("300.0 MiB came from bilal ("), "{text}");
        assert!(text.contains("no room is left in 3 min"), "{text}");
        r.devices[0].bytes_last_minute = 200;
        r.disk_free = Some(1 << 20);
        let f = r.findings();
        assert_eq!(f[0].level, Level::Problem);
        assert!(
            f[0].text
                .starts_with("this device's disk is full: 1.0 MiB free, less than the 4.0 MiB"),
            "{}",
            f[0].text
        );
        assert!(r.has_problems());
    }

    /// A member who sends few messages but shares files fast enough to fill the disk within
    /// hours is named, as a note (sharing big files is what Majlis is for).
    #[test]
    fn a_device_filling_the_disk_with_files_is_named_as_a_note() {
        let mut r = fine();
        r.disk_free = Some(30 << 30);
        r.devices[0].bytes_last_minute = 50 << 20;
        assert!(r.findings().is_empty(), "{:?}", r.findings());
        r.devices[0].bytes_last_minute = 200 << 20;
        let f = r.findings();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].level, Level::Note);
        let text = &f[0].text;
        assert!(
            text.starts_with("In the last minute the messages of bilal (")
                && text.contains("brought 200.0 MiB"),
            "{text}"
        );
        assert!(text.contains("full in 3 h"), "{text}");
        assert!(text.contains("erase --member bilal"), "{text}");
    }

    #[test]
    fn nothing_fires_when_all_is_well() {
        assert!(fine().findings().is_empty());
        assert!(!fine().has_problems());
    }

    /// A value that looks like a place (a member named "{count}") is the value: filled in
    /// one pass, never filled again.
    #[test]
    fn a_value_is_never_filled_again() {
        let p = Part {
            template: "{member} has {count} messages",
            args: vec![("member", "{count}".into()), ("count", "3".into())],
        };
        assert_eq!(p.fill(p.template), "{count} has 3 messages");
        assert_eq!(fill_places("{a} {b} {", |_| None), "{a} {b} {");
        assert_eq!(fill_places("x{a}y", |n| Some(n.repeat(2))), "xaay");
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

        // Turned-away devices are named one by one (strangers), not as a count that
        // outlives them.
        let mut r = fine();
        r.denied_connections = 4;
        assert!(r.findings().is_empty());
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
        // 3 ms apart: in step, not "-0 s" or "+0 s".
        assert!(text.contains("; clock in step"), "{text}");
        let mut behind = fine();
        behind.devices[0].clock_offset_ms = Some(-4_000);
        assert!(behind.shareable().contains("; clock -4 s"));
    }

    /// Above the mesh limit, a device this node does not dial on purpose is a note that says
    /// so, not a problem (`majlisd doctor` would otherwise fail on every large org).
    #[test]
    fn a_device_left_out_by_the_mesh_limit_is_not_a_problem() {
        let mut r = fine();
        let mut spare = r.devices[0].clone();
        spare.member = "chen".into();
        spare.device = crate::DeviceKey::generate().id();
        spare.connected = None;
        spare.connected_since = None;
        spare.spare = true;
        spare.online = true;
        r.devices.push(spare);
        assert!(!r.has_problems(), "{:?}", r.findings());
        assert!(r
            .findings()
            .iter()
            .any(|f| f.text.contains("chen")
                && f.text.contains("not one of this device's neighbours")));
        assert!(r
            .device_lines(true)
            .iter()
            .any(|l| l.contains("chen") && l.contains("not a neighbour") && l.contains("online")));
    }
}
