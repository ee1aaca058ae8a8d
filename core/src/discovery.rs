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
        };
        d.announce(asks)?;
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
                        let asks = svc
                            .get_property_val_str(ASKS)
                            .filter(|n| crate::roster::valid_name("member", n).is_ok())
                            .map(str::to_string);
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

    /// Announce this device (again), asking to join under `asks` or, once on the roster,
    /// not: a member's device does not tell the LAN its owner's name.
    pub fn announce(&mut self, asks: Option<&str>) -> Result<()> {
        let mut txt = vec![
            ("v", TXT_VERSION),
            ("org", self.tag.as_str()),
            ("dev", self.me.as_str()),
        ];
        if let Some(name) = asks.filter(|n| crate::roster::valid_name("member", n).is_ok()) {
            txt.push((ASKS, name));
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
