//! Join links: an org's id and where some of its nodes listen, as one line of text
//! (`majlis:join/ORG_ID?peer=10.0.0.5:7441&peer=[fd00::5]:7441`) that an admin sends a
//! newcomer by mail, in a chat or on a printed sheet, where multicast does not carry the
//! admin's invitation (another subnet, a field network, a blocked LAN). Pasted at the first
//! start (or given to `majlisd org join`), it joins the org and dials those addresses, which
//! stay remembered as peers given by address.
//!
//! A link grants nothing: it is what typing the org id and `--peer` would be. The newcomer
//! still waits for an admin to add the device whose join code matches, and the roster the
//! peers hand over is checked against the org id (the root key's hash), so a forged link can
//! at worst point the newcomer at a host that never answers with a valid roster.

use std::fmt;

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

use crate::error::{Error, Result};
use crate::identity::OrgId;

/// What every join link starts with: a URI scheme of Majlis's own, so that no browser takes
/// it for a web address.
pub const PREFIX: &str = "majlis:join/";

/// Addresses a link carries at most (a node listens on a few; more is no help, and a pasted
/// link is read whole).
pub const MAX_PEERS: usize = 8;

/// An org to join and where to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinLink {
    pub org: OrgId,
    /// As `--peer` takes them: `IP:PORT`, `[IPV6]:PORT` or `HOST:PORT` (resolved when dialled).
    pub peers: Vec<String>,
}

impl JoinLink {
    /// The link to `org` at the addresses of `listen` that another host can reach (not
    /// loopback, not unspecified, not link-local: those name no place a newcomer can dial).
    pub fn new(org: OrgId, listen: &[Multiaddr]) -> JoinLink {
        let mut peers: Vec<String> = Vec::new();
        for a in listen.iter().filter(|a| crate::net::routable(a)) {
            if let Some(p) = host_port(a) {
                if !peers.contains(&p) && peers.len() < MAX_PEERS {
                    peers.push(p);
                }
            }
        }
        JoinLink { org, peers }
    }

    /// Read a link as pasted (spaces around it are ignored). The error says what is wrong
    /// with it.
    pub fn parse(s: &str) -> Result<JoinLink> {
        let s = s.trim();
        let rest = s.strip_prefix(PREFIX).ok_or_else(|| {
            Error::Invalid(format!(
                "'{s}' is not a join link (they start with {PREFIX})"
            ))
        })?;
        let (org, query) = rest.split_once('?').unwrap_or((rest, ""));
        let org: OrgId = org.parse()?;
        let mut peers = Vec::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let Some(peer) = part.strip_prefix("peer=") else {
                return Err(Error::Invalid(format!(
                    "'{part}' in the join link is not peer=ADDRESS:PORT; ask for the link again"
                )));
            };
            if !looks_like_host_port(peer) {
                return Err(Error::Invalid(format!(
                    "'{peer}' in the join link is not ADDRESS:PORT; ask for the link again"
                )));
            }
            if peers.len() == MAX_PEERS {
                return Err(Error::Invalid(format!(
                    "the join link names more than {MAX_PEERS} addresses; ask for the link again"
                )));
            }
            peers.push(peer.to_string());
        }
        Ok(JoinLink { org, peers })
    }
}

impl fmt::Display for JoinLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.org)?;
        for (i, p) in self.peers.iter().enumerate() {
            write!(f, "{}peer={p}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

/// `/ip4/A/tcp/P` as `A:P`, `/ip6/A/tcp/P` as `[A]:P`.
fn host_port(a: &Multiaddr) -> Option<String> {
    let mut it = a.iter();
    let host = match it.next()? {
        Protocol::Ip4(ip) => ip.to_string(),
        Protocol::Ip6(ip) => format!("[{ip}]"),
        _ => return None,
    };
    match it.next()? {
        Protocol::Tcp(port) => Some(format!("{host}:{port}")),
        _ => None,
    }
}

/// `HOST:PORT` with a port and a host of letters, digits, `.`, `-` and `:` (an IPv6 address
/// in brackets): nothing a shell, a URL or a log line would read as more than one word;
/// and one `--peer` takes ([`crate::net::parse_peer_addr`], which the node dials it with),
/// so a link naming `10.0.0.300:7441` is refused when it is pasted, not at every start.
fn looks_like_host_port(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    port.parse::<u16>().is_ok_and(|p| p > 0)
        && !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        && crate::net::parse_peer_addr(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> OrgId {
        OrgId::from_root_key(&[7; 32])
    }

    /// A link names the org and the addresses another host can reach, and reads back as
    /// written.
    #[test]
    fn a_link_carries_the_org_and_the_reachable_addresses() {
        let listen: Vec<Multiaddr> = [
            "/ip4/127.0.0.1/tcp/7441",
            "/ip4/10.0.0.5/tcp/7441",
            "/ip4/0.0.0.0/tcp/7441",
            "/ip6/::1/tcp/7441",
            "/ip6/fe80::1/tcp/7441",
            "/ip6/fd00::5/tcp/7441",
            "/ip4/10.0.0.5/tcp/7441",
            "/ip4/10.0.0.6/udp/7441",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let link = JoinLink::new(org(), &listen);
        assert_eq!(link.peers, ["10.0.0.5:7441", "[fd00::5]:7441"]);
        let text = link.to_string();
        assert_eq!(
            text,
            format!(
                "majlis:join/{}?peer=10.0.0.5:7441&peer=[fd00::5]:7441",
                org()
            )
        );
        assert_eq!(JoinLink::parse(&format!("  {text}\n")).unwrap(), link);
        // Each address is one `--peer` would take.
        for p in &link.peers {
            assert!(crate::net::parse_peer_addr(p).is_ok(), "{p}");
        }
        // No address (a node that listens on loopback only): the org id alone.
        let alone = JoinLink::new(org(), &listen[..1]);
        assert_eq!(alone.to_string(), format!("majlis:join/{}", org()));
        assert_eq!(JoinLink::parse(&alone.to_string()).unwrap(), alone);
    }

    /// A link that is not one, or that carries more than addresses, is refused in words.
    #[test]
    fn a_malformed_link_is_refused_in_words() {
        let o = org();
        let bad = [
            (format!("{o}"), "not a join link"),
            ("https://majlis.test/join".to_string(), "not a join link"),
            ("majlis:join/not-an-org".to_string(), "is not an org id"),
            (format!("majlis:join/{o}?peer=10.0.0.5"), "not ADDRESS:PORT"),
            (
                format!("majlis:join/{o}?peer=10.0.0.5:0"),
                "not ADDRESS:PORT",
            ),
            (
                format!("majlis:join/{o}?peer=a;rm -rf:7441"),
                "not ADDRESS:PORT",
            ),
            (format!("majlis:join/{o}?peer=:7441"), "not ADDRESS:PORT"),
            (
                format!("majlis:join/{o}?peer=10.0.0.300:7441"),
                "not ADDRESS:PORT",
            ),
            (
                format!("majlis:join/{o}?admin=yes"),
                "not peer=ADDRESS:PORT",
            ),
            (
                format!("majlis:join/{o}?{}", ["peer=h:1"; 9].join("&")),
                "more than 8 addresses",
            ),
        ];
        for (link, want) in bad {
            let e = JoinLink::parse(&link).unwrap_err().to_string();
            assert!(e.contains(want), "{link}: {e}");
        }
        let ok = JoinLink::parse(&format!("majlis:join/{o}?peer=relay.site:7441")).unwrap();
        assert_eq!(ok.peers, ["relay.site:7441"]);
    }
}
