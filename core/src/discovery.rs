//! mDNS discovery with mdns-sd: announce this device on the LAN and report other devices of
//! the same org. Discovery never grants trust: what it finds is only dialed, and the roster
//! gate decides whether the connection lives.

use std::net::IpAddr;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use mdns_sd::{ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::identity::OrgId;
use crate::net::scoped;

pub const SERVICE_TYPE: &str = "_majlis._tcp.local.";
/// TXT format version, so later releases can change what they announce.
pub const TXT_VERSION: &str = "1";

/// A Majlis device seen on the LAN, with the addresses it announced.
#[derive(Debug, Clone)]
pub struct Found {
    pub peer: PeerId,
    pub addrs: Vec<Multiaddr>,
    pub kind: Record,
    /// The member name a device not yet on the roster asks to join under (TXT `name`):
    /// a claim anyone can make, shown to admins beside the device's join code
    /// ([`crate::identity::join_code`]), never trusted.
    pub asks: Option<String>,
}

/// TXT key of the name a device waiting to join asks for.
const ASKS: &str = "name";
/// TXT keys of an admin's invitation: the org id and the org's name.
const INVITE: &str = "invite";
const ORG_NAME: &str = "orgname";
/// TXT key: a number that grows with each announcement of this device's record, so that no
/// two versions of it are alike. A browser's cache keeps both versions of a record changed
/// twice within a second (RFC 6762 §10.2); one that comes back to a version still held there
/// (an admin who starts inviting and stops at once) only renews it, mdns-sd tells nothing,
/// and the newer version, first in its list, stays shown for its TTL (75 minutes; seen on
/// the namespace LAN). A version never seen before goes first and is told.
const SERIAL: &str = "n";

/// An org inviting newcomers on this network (an admin opened it for a while): what a device
/// with no org yet may join without typing the id. A claim like any record: the join code,
/// which covers the org id, is what the newcomer and the admin compare.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Invitation {
    pub org: String,
    pub org_name: String,
    /// The inviting device's id.
    pub device: String,
}

/// Whose record it is. Only [`Record::Ours`] is dialed; the others feed diagnostics ("a
/// colleague joined another org", "this identity runs twice").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// A device announcing our org.
    Ours,
    /// A device announcing another org (or a TXT format we do not know).
    OtherOrg,
    /// This device's own id: our own announcement, or a copy of this data directory
    /// running elsewhere (the node tells them apart by address).
    Myself,
}

pub struct Discovery {
    daemon: ServiceDaemon,
    fullname: String,
    /// What [`Discovery::announce`] needs to announce this device again.
    host: String,
    tag: String,
    me: String,
    port: u16,
    /// The member name asked for while not on the roster.
    asks: Option<String>,
    /// (org id, org name) while an admin invites newcomers from this device.
    invite: Option<(String, String)>,
    /// The serial of the last announcement (see [`SERIAL`]).
    serial: u64,
}

impl Discovery {
    /// Announce `me` listening on TCP `port` on every interface, and browse for the org.
    /// `asks`: the member name to ask to join under, while this device is not on the roster.
    pub fn start(
        org: &OrgId,
        me: PeerId,
        port: u16,
        asks: Option<&str>,
        tx: mpsc::UnboundedSender<Found>,
    ) -> Result<Discovery> {
        let daemon = ServiceDaemon::new().map_err(|e| Error::Mdns(e.to_string()))?;
        let tag = org.discovery_tag();
        let me_str = me.to_string();
        let host = format!("majlis-{}.local.", &me_str[me_str.len() - 12..]);
        let mut d = Discovery {
            daemon,
            fullname: String::new(),
            host,
            tag: tag.clone(),
            me: me_str,
            port,
            asks: None,
            invite: None,
            serial: 0,
        };
        d.ask(asks.map(str::to_string))?;
        let daemon = &d.daemon;
        let events = daemon
            .browse(SERVICE_TYPE)
            .map_err(|e| Error::Net(format!("mDNS browse: {e}")))?;
        // mdns-sd delivers on a blocking channel; one small thread forwards to the node task.
        std::thread::Builder::new()
            .name("majlis-mdns".into())
            .spawn(move || {
                while let Ok(ev) = events.recv() {
                    if let ServiceEvent::ServiceResolved(svc) = ev {
                        let Some(peer) = svc
                            .get_property_val_str("dev")
                            .and_then(|d| d.parse::<PeerId>().ok())
                        else {
                            continue;
                        };
                        let kind = if svc.get_property_val_str("org") != Some(tag.as_str())
                            || svc.get_property_val_str("v") != Some(TXT_VERSION)
                        {
                            Record::OtherOrg
                        } else if peer == me {
                            Record::Myself
                        } else {
                            Record::Ours
                        };
                        let addrs = addrs_for(
                            svc.get_addresses().iter().map(|a| match a {
                                ScopedIp::V6(v6) => {
                                    let zone = v6.scope_id();
                                    let zone = match zone.name.is_empty() {
                                        true if zone.index != 0 => zone.index.to_string(),
                                        _ => zone.name.clone(),
                                    };
                                    (IpAddr::V6(*v6.addr()), zone)
                                }
                                other => (other.to_ip_addr(), String::new()),
                            }),
                            svc.get_port(),
                            peer,
                        );
                        let asks = svc.get_property_val_str(ASKS).and_then(asked_name);
                        let found = Found {
                            peer,
                            addrs,
                            kind,
                            asks,
                        };
                        if !found.addrs.is_empty() && tx.send(found).is_err() {
                            break;
                        }
                    }
                }
            })
            .map_err(|e| Error::Net(format!("mDNS thread: {e}")))?;
        Ok(d)
    }

    /// Announce this device again, asking to join under `asks` or, once on the roster, not:
    /// a member's device does not tell the LAN its owner's name.
    pub fn ask(&mut self, asks: Option<String>) -> Result<()> {
        self.asks = asks.as_deref().and_then(asked_name);
        self.announce()
    }

    /// Announce this device again, inviting newcomers to `org` (named `name`), or not.
    pub fn invite(&mut self, invite: Option<(&OrgId, &str)>) -> Result<()> {
        self.invite = invite.map(|(org, name)| (org.to_string(), name.to_string()));
        self.announce()
    }

    fn announce(&mut self) -> Result<()> {
        self.serial = crate::now_ms().max(self.serial + 1);
        let serial = self.serial.to_string();
        let mut txt = vec![
            ("v", TXT_VERSION),
            ("org", self.tag.as_str()),
            ("dev", self.me.as_str()),
            (SERIAL, serial.as_str()),
        ];
        if let Some(name) = &self.asks {
            txt.push((ASKS, name));
        }
        if let Some((org, name)) = &self.invite {
            txt.push((INVITE, org));
            txt.push((ORG_NAME, name));
        }
        let info = ServiceInfo::new(SERVICE_TYPE, &self.me, &self.host, "", self.port, &txt[..])
            .map_err(|e| Error::Net(format!("mDNS service info: {e}")))?
            .enable_addr_auto();
        self.fullname = info.get_fullname().to_string();
        self.daemon
            .register(info)
            .map_err(|e| Error::Net(format!("mDNS register: {e}")))
    }

    /// Say goodbye on the LAN and stop the mDNS daemon.
    pub fn shutdown(self) {
        if let Ok(rx) = self.daemon.unregister(&self.fullname) {
            let _ = rx.recv_timeout(std::time::Duration::from_millis(500));
        }
        let _ = self.daemon.shutdown();
    }
}

/// The name a device asks to join under, if it may be shown as one: a valid member name
/// without the invisible characters that change how text around them reads (bidirectional
/// overrides and isolates, zero-width marks), with which a stranger's "lalib" after a right-to-left
/// override (U+202E) would look like "bilal" in the admin's list.
pub fn asked_name(raw: &str) -> Option<String> {
    (crate::roster::valid_name("member", raw).is_ok()
        && raw.trim() == raw
        && !raw.chars().any(invisible))
    .then(|| raw.to_string())
}

/// A character that shows nothing but changes how the text around it reads.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// The orgs inviting newcomers on this network, as heard within `wait`: for a device with no
/// org yet, so it browses without announcing anything. Records whose invitation does not
/// match their own org tag, or whose org name is no valid name, are dropped.
pub fn invitations(wait: std::time::Duration) -> Result<Vec<Invitation>> {
    let mut watch = InvitationWatch::start()?;
    let deadline = std::time::Instant::now() + wait;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        watch.next(left);
    }
    Ok(watch.list())
}

/// The orgs inviting on this network, kept up to date for as long as it lives: one mDNS
/// browse (the first-start screen holds one while it is open), where a new daemon for
/// each look would send the LAN a fresh round of queries each time. An invitation ends
/// when its record goes (the admin's node stopped) or comes back without it (the admin
/// stopped inviting; see [`SERIAL`] for why that reaches a browse that goes on).
pub struct InvitationWatch {
    daemon: ServiceDaemon,
    events: mdns_sd::Receiver<ServiceEvent>,
    /// By record (one device's), what it invites to.
    heard: std::collections::BTreeMap<String, Invitation>,
}

/// Records (devices) an [`InvitationWatch`] keeps.
const MAX_INVITING: usize = 64;

impl InvitationWatch {
    pub fn start() -> Result<InvitationWatch> {
        let daemon = ServiceDaemon::new().map_err(|e| Error::Mdns(e.to_string()))?;
        let events = daemon
            .browse(SERVICE_TYPE)
            .map_err(|e| Error::Net(format!("mDNS browse: {e}")))?;
        Ok(InvitationWatch {
            daemon,
            events,
            heard: Default::default(),
        })
    }

    /// Take what the LAN said, waiting up to `wait` for the first news; whether the list
    /// may have changed.
    pub fn next(&mut self, wait: std::time::Duration) -> bool {
        let Ok(ev) = self.events.recv_timeout(wait) else {
            return false;
        };
        let mut changed = self.take(ev);
        while let Ok(ev) = self.events.try_recv() {
            changed |= self.take(ev);
        }
        changed
    }

    fn take(&mut self, ev: ServiceEvent) -> bool {
        match ev {
            ServiceEvent::ServiceResolved(svc) => {
                let fullname = svc.get_fullname().to_string();
                match invitation_of(&svc) {
                    // A record is one device's: of as many as 64 devices,
                    // [`InvitationWatch::list`] shows one line per org.
                    Some(i)
                        if self.heard.len() < MAX_INVITING
                            || self.heard.contains_key(&fullname) =>
                    {
                        self.heard.insert(fullname, i.clone()).as_ref() != Some(&i)
                    }
                    Some(_) => false,
                    None => self.heard.remove(&fullname).is_some(),
                }
            }
            ServiceEvent::ServiceRemoved(_, fullname) => self.heard.remove(&fullname).is_some(),
            _ => false,
        }
    }

    /// The orgs inviting, by name, one line per org, at most 16.
    pub fn list(&self) -> Vec<Invitation> {
        let mut out: Vec<Invitation> = Vec::new();
        for i in self.heard.values() {
            // A second admin inviting to the same org adds nothing.
            if !out.iter().any(|o| o.org == i.org) && out.len() < 16 {
                out.push(i.clone());
            }
        }
        out.sort_by(|a, b| a.org_name.cmp(&b.org_name).then(a.org.cmp(&b.org)));
        out
    }
}

impl Drop for InvitationWatch {
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
    }
}

/// The invitation a record carries, if it is a valid one: it matches the record's own org
/// tag, and its org name is a name.
fn invitation_of(svc: &mdns_sd::ResolvedService) -> Option<Invitation> {
    let (org, name, dev) = (
        svc.get_property_val_str(INVITE)?,
        svc.get_property_val_str(ORG_NAME)?,
        svc.get_property_val_str("dev")?,
    );
    let id = org.parse::<OrgId>().ok()?;
    let fits = svc.get_property_val_str("org") == Some(id.discovery_tag().as_str())
        && svc.get_property_val_str("v") == Some(TXT_VERSION)
        && !name.trim().is_empty()
        && name.len() <= crate::roster::MAX_NAME_BYTES
        && !name.chars().any(|c| c.is_control() || invisible(c))
        && dev.parse::<PeerId>().is_ok();
    fits.then(|| Invitation {
        org: org.to_string(),
        org_name: name.to_string(),
        device: dev.to_string(),
    })
}

/// Dialable addresses, best first: routable before link-local (a link-local address only
/// works on the link the answer came in on, named by its zone; see `net::scoped`), IPv4
/// before IPv6, loopback last (it only helps nodes on the same host).
fn addrs_for(
    ips: impl Iterator<Item = (IpAddr, String)>,
    port: u16,
    peer: PeerId,
) -> Vec<Multiaddr> {
    let mut ips: Vec<(IpAddr, String)> = ips
        .filter(|(ip, _)| !ip.is_unspecified() && !ip.is_multicast())
        .collect();
    ips.sort_by_key(|(ip, _)| {
        let link_local = matches!(ip, IpAddr::V6(v6) if scoped::is_link_local(v6));
        (ip.is_loopback(), link_local, ip.is_ipv6())
    });
    ips.dedup();
    ips.into_iter()
        .filter_map(|(ip, zone)| match ip {
            IpAddr::V4(v4) => Some(Multiaddr::empty().with(Protocol::Ip4(v4))),
            IpAddr::V6(v6) => scoped::zoned(v6, &zone),
        })
        .map(|a| a.with(Protocol::Tcp(port)).with(Protocol::P2p(peer)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_asked_for_is_shown_only_as_it_reads() {
        assert_eq!(asked_name("bilal").as_deref(), Some("bilal"));
        assert_eq!(asked_name("ليلى").as_deref(), Some("ليلى"));
        for bad in [
            "\u{202E}lalib",
            "bi\u{200B}lal",
            "\u{2067}bilal\u{2069}",
            " bilal",
            "",
            "@bilal",
            "a,b",
            "bi\nlal",
        ] {
            assert_eq!(asked_name(bad), None, "{bad:?}");
        }
        assert_eq!(asked_name(&"x".repeat(65)), None);
    }

    #[test]
    fn link_local_addresses_keep_their_zone_and_come_after_routable_ones() {
        let peer = PeerId::random();
        let got = addrs_for(
            [
                ("fe80::1".parse().unwrap(), "veth0".to_string()),
                ("fe80::2".parse().unwrap(), String::new()),
                ("127.0.0.1".parse().unwrap(), String::new()),
                ("fd77::5".parse().unwrap(), "veth0".to_string()),
                ("10.0.0.5".parse().unwrap(), String::new()),
            ]
            .into_iter(),
            4001,
            peer,
        );
        let got: Vec<String> = got
            .iter()
            .map(|a| a.to_string().replace(&format!("/p2p/{peer}"), ""))
            .collect();
        assert_eq!(
            got,
            [
                "/ip4/10.0.0.5/tcp/4001",
                "/ip6/fd77::5/tcp/4001",
                "/ip6zone/veth0/ip6/fe80::1/tcp/4001",
                "/ip4/127.0.0.1/tcp/4001",
            ],
            "a link-local address without its zone cannot be dialed and is dropped"
        );
    }
}
