//! The libp2p side: one behaviour made of the roster gate, gossipsub, identify and the roster
//! exchange protocol.
//!
//! The gate is what makes a Majlis network private: a connection from (or to) a device that
//! is not on the roster is denied the moment the noise handshake has authenticated it, before
//! any other protocol sees the connection. The one exception is bootstrap (see
//! docs/protocol.md): a node that holds no roster listing itself lets connections through so
//! that a peer which *does* list it can hand it the roster.

use std::collections::{HashSet, VecDeque};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::{
    dummy, CloseConnection, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{gossipsub, identify, ping, request_response, Multiaddr, PeerId, StreamProtocol};
use serde::{Deserialize, Serialize};

pub mod pex;
pub mod scoped;

pub const ROSTER_PROTOCOL: &str = "/majlis/roster/1";
pub const IDENTIFY_PROTOCOL: &str = "/majlis/id/1";
pub const SYNC_PROTOCOL: &str = "/majlis/sync/1";
/// A sync response stops adding messages past this many bytes (the codec's cap is 10 MiB).
pub const SYNC_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

pub const BLOB_PROTOCOL: &str = "/majlis/blob/1";
/// How long a blob request may take, asked to answered (see `Behaviour::new`).
pub const BLOB_TIMEOUT: Duration = Duration::from_secs(120);

/// Ephemeral signals between connected devices: "typing in this channel", "away". Never
/// stored, never relayed, never caught up (a stale one is worse than none), so they travel
/// directly to each connected device that may see them, not over gossip.
pub const SIGNAL_PROTOCOL: &str = "/majlis/signal/1";

/// A device's own recent messages, sent again straight to one peer: gossipsub hands a
/// peer's messages to whichever of its connections is ready, and what the surplus of two
/// connections (see the one-connection rule) had taken when it closed is lost with it.
/// Without this, such a message would reach that peer only by catch-up, after any backlog
/// on the link. The receiver takes only its sender's own messages in channels it reads,
/// through the same intake as gossip. Older nodes do not know the protocol; nothing changes.
pub const PUSH_PROTOCOL: &str = "/majlis/push/1";

/// Messages in one [`Push`] at most.
pub const MAX_PUSH: usize = 64;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Push {
    /// Encoded envelopes, oldest first.
    pub messages: Vec<serde_bytes::ByteBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    /// The sender's member is typing in `channel` (sent at most every few seconds while the
    /// composer changes).
    Typing { channel: String },
    /// The sender's member is away (idle) or back.
    Away(bool),
    /// The member's status ("In a meeting", see [`crate::status`]); only ever sent signed
    /// (inside `Signed`), since every node keeps and hands it on.
    Status(crate::status::Status),
    /// `Typing` or `Away` signed by the device it is about, so that relays can carry it to
    /// devices that are not connected to that one (another subnet, a site joined through
    /// relays). Sent to relays and archives, and to every device in an org above the mesh
    /// limit; they pass it on, at most [`MAX_SIGNAL_HOPS`] times.
    Signed(SignedSignal),
}

/// How many times a signed signal is passed on at most: enough for a site's relay, then the
/// other site's, and for the neighbour graph of an org above the mesh limit (every device
/// has at least 8 neighbours, so 100 devices are a few hops across).
pub const MAX_SIGNAL_HOPS: u8 = 4;

/// A signal as its device signed it (see [`Signal::Signed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedSignal {
    pub device: crate::identity::DeviceId,
    /// When it was said (ms since the epoch): receivers drop what is not fresh, and what
    /// they already had (the same device and time).
    pub sent_at: u64,
    /// `Typing` or `Away`; anything else is refused.
    pub signal: Box<Signal>,
    /// Times passed on so far (not signed: each device that passes it on adds one).
    pub hops: u8,
    pub sig: serde_bytes::ByteBuf,
}

impl SignedSignal {
    fn signed_bytes(device: &crate::identity::DeviceId, sent_at: u64, signal: &Signal) -> Vec<u8> {
        let mut b = b"majlis/signal/v1\0".to_vec();
        b.extend_from_slice(&device.0);
        b.extend_from_slice(&sent_at.to_be_bytes());
        b.extend_from_slice(&postcard::to_stdvec(signal).expect("a signal serializes"));
        b
    }

    pub fn sign(key: &crate::identity::DeviceKey, sent_at: u64, signal: Signal) -> SignedSignal {
        let device = key.id();
        let sig = key.sign(&Self::signed_bytes(&device, sent_at, &signal));
        SignedSignal {
            device,
            sent_at,
            signal: Box::new(signal),
            hops: 0,
            sig: serde_bytes::ByteBuf::from(sig.to_vec()),
        }
    }

    /// The inner signal, if the signature is its device's and it is a `Typing` or `Away`.
    pub fn verified(&self) -> Option<&Signal> {
        if matches!(*self.signal, Signal::Signed(_)) {
            return None;
        }
        let sig: [u8; 64] = self.sig.as_slice().try_into().ok()?;
        let msg = Self::signed_bytes(&self.device, self.sent_at, &self.signal);
        crate::identity::verify(&self.device.0, &msg, &sig).then_some(&*self.signal)
    }
}

/// The answer to a signal: nothing but that it arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack;

/// "Send me this part of the blob that a message in `channel` shares." The channel is how
/// the responder decides: it serves only blobs that a message it holds in `channel` names,
/// and only to devices that may read `channel`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlobRequest {
    pub channel: String,
    pub blob: crate::files::BlobId,
    pub part: crate::files::fetch::Part,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BlobResponse {
    /// The hash list: 32 bytes per chunk.
    Hashes(serde_bytes::ByteBuf),
    /// The chunks asked for, in order; an empty one is a chunk the responder does not hold.
    Chunks(Vec<serde_bytes::ByteBuf>),
    /// The responder holds no such blob (yet).
    Lacking,
    /// The requester may not read the channel, or the blob is not in it.
    Denied,
}

/// Catch-up request: "in `channel` I hold each author's log up to this seq; send what follows."
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncRequest {
    pub channel: String,
    pub have: Vec<(crate::DeviceId, u64)>,
    /// Seq ranges (author, first, last) held beyond `have`, so they are not sent again.
    /// Absent from older peers' requests (then the tail after a gap is resent).
    #[serde(default)]
    pub held: Vec<(crate::DeviceId, u64, u64)>,
    /// Stop adding messages past about this many bytes (at least one is always sent): the
    /// requester sizes answers to its link, so that a slow radio link does not time out on
    /// an 8 MiB answer. Absent from older peers' requests (then [`SYNC_RESPONSE_BYTES`]).
    #[serde(default)]
    pub max_bytes: Option<u32>,
    /// Leave out the messages an answer of this many bytes to the same request would hold:
    /// the requester asked for those in another request still in flight (pipelining on a
    /// slow link, see `proto::catchup`). The cut follows the same rules as the answer's own
    /// (at least one message, at most [`crate::sync::MAX_BATCH`]). Absent from older
    /// peers' requests; an older responder ignores it and sends the skipped part again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<u32>,
}

/// Up to [`crate::sync::MAX_BATCH`] envelopes, oldest first per author; `more` if truncated.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncResponse {
    pub messages: Vec<serde_bytes::ByteBuf>,
    pub more: bool,
    /// Only in answer to a [`DM_LIST`] request: the direct-message channels the responder
    /// holds that the requester may read.
    pub channels: Vec<String>,
}

/// The `channel` of a sync request that asks which direct-message channels the peer holds
/// (the roster does not list them). Not a valid channel or DM name.
pub const DM_LIST: &str = "@";
/// At most this many channels in one [`DM_LIST`] answer.
pub const MAX_DM_LIST: usize = 4096;

/// Roster exchange request: "I hold this version with this hash; send what I lack."
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RosterRequest {
    Have {
        version: u64,
        hash: [u8; 32],
        /// The sender's clock (unix milliseconds) when it sent this: lets a peer see a
        /// clock skew before messages are refused over it. Older nodes omit it (and ignore it).
        #[serde(default)]
        now: Option<u64>,
    },
    /// Sent to a device that a new version removes, just before the connection is closed, so
    /// that it learns of its removal (and wipes itself). Answered with an empty response.
    Push { versions: Vec<serde_bytes::ByteBuf> },
    /// "Where can I reach the other devices of our org?" (peer exchange): answered with the
    /// listen addresses of the roster devices the responder is connected to, so that sites
    /// whose multicast does not meet find each other through a relay. Older nodes do not
    /// know this request and drop it; nothing else changes.
    Addrs,
}

/// The versions the requester lacks, from `min(theirs, ours)` on, as signed roster wires;
/// or, in answer to [`RosterRequest::Addrs`], where other roster devices listen.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RosterResponse {
    pub versions: Vec<serde_bytes::ByteBuf>,
    #[serde(default)]
    pub addrs: Vec<PeerAddrs>,
    /// In answer to [`RosterRequest::Addrs`]: the roster devices the responder has been
    /// connected to steadily (one connection, nothing opened or closed for a while), so
    /// their gossip reaches it directly. Others then spare forwarding it their messages
    /// (see [`crate::proto::neighbours::forward_spared`]). Older nodes omit it and ignore it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<crate::DeviceId>,
}

/// Where one device listens, and that it was on the network (see [`pex`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAddrs {
    pub device: crate::DeviceId,
    /// The addresses in `record`, as text, for nodes older than records. Not read: an entry
    /// is taken only for what its record says.
    pub addrs: Vec<String>,
    /// The device's own signed peer record ([`pex::sign`]). Entries without one are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<serde_bytes::ByteBuf>,
}

/// Peer exchange bounds: devices per answer, addresses per device.
pub const MAX_PEX_DEVICES: usize = 4096;
pub const MAX_PEX_ADDRS: usize = 8;

/// Whether an address is worth telling another host: not loopback, not unspecified, not
/// link-local (meaningless without the zone, which only names an interface of this host).
pub fn routable(addr: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => !ip.is_loopback() && !ip.is_unspecified(),
        Some(Protocol::Ip6(ip)) => {
            !ip.is_loopback() && !ip.is_unspecified() && !scoped::is_link_local(&ip)
        }
        _ => false,
    }
}

/// A peer given by address (`--peer`), as a user writes it: `10.1.2.3:7441`,
/// `[fe80::1%eth0]:7441` (a link-local address names its interface), `relay.site:7441`, or a
/// multiaddr (`/ip4/10.1.2.3/tcp/7441`, `/ip6zone/eth0/ip6/fe80::1/tcp/7441`,
/// `/dns4/relay.site/tcp/7441`, optionally ending in `/p2p/ID`). A host name is kept as
/// `/dns/NAME/tcp/PORT` and resolved before each dial ([`resolve_peer_addr`], the system
/// resolver, so `/etc/hosts` on a site without DNS works): a relay whose address changes
/// (DHCP, a replaced server) is found under its name without a restart, and a node started
/// before the network's DNS answers (a server at boot, a laptop before its Wi-Fi) finds it
/// once it does. So only its spelling is checked here, and nothing blocks; see
/// [`check_peer_addr`] for an address typed to be dialled now. The transport dials IP
/// addresses only. The error says what to write instead.
pub fn parse_peer_addr(s: &str) -> Result<Multiaddr, String> {
    use libp2p::multiaddr::Protocol;
    use std::net::SocketAddr;
    let s = s.trim();
    let hint = PEER_HINT;
    // Kept by name, resolved when dialled.
    let named = |host: &str, port: u16| -> Result<Multiaddr, String> {
        host_name(host)?;
        Ok(Multiaddr::empty()
            .with(Protocol::Dns(host.to_string().into()))
            .with(Protocol::Tcp(port)))
    };
    if !s.starts_with('/') {
        // `[fe80::1%eth0]:7441`: the zone may be an interface's name or index.
        if let Some((ip, zone, port)) = s
            .strip_prefix('[')
            .and_then(|r| r.split_once("]:"))
            .and_then(|(inner, port)| {
                let (ip, zone) = inner.split_once('%')?;
                Some((ip.parse::<std::net::Ipv6Addr>().ok()?, zone, port))
            })
        {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("'{port}' in '{s}' is not a port; {hint}"))?;
            let host = scoped::zoned(ip, zone).ok_or_else(|| format!("'{s}': no zone; {hint}"))?;
            return Ok(host.with(Protocol::Tcp(port)));
        }
        if let Ok(a) = s.parse::<SocketAddr>() {
            if let std::net::IpAddr::V6(ip) = a.ip() {
                if scoped::is_link_local(&ip) {
                    return Err(format!(
                        "'{s}' is link-local: name its interface, as in [{ip}%eth0]:{}; {hint}",
                        a.port()
                    ));
                }
            }
            return Ok(from_socket(a));
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("'{s}' has no port; {hint}"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("'{port}' in '{s}' is not a port; {hint}"))?;
        return named(host.trim_matches(['[', ']']), port);
    }
    let addr: Multiaddr = s.parse().map_err(|e| format!("'{s}': {e}; {hint}"))?;
    let mut parts = addr.iter();
    let host = match parts.next() {
        Some(h @ (Protocol::Ip4(_) | Protocol::Ip6(_))) => Ok(Multiaddr::empty().with(h)),
        Some(z @ Protocol::Ip6zone(_)) => match parts.next() {
            Some(ip @ Protocol::Ip6(_)) => Ok(Multiaddr::empty().with(z).with(ip)),
            _ => return Err(format!("'{s}': /ip6zone must be followed by /ip6; {hint}")),
        },
        Some(Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h)) => Err(h),
        _ => {
            return Err(format!(
                "'{s}' does not start with /ip4, /ip6 or /dns; {hint}"
            ))
        }
    };
    let Some(Protocol::Tcp(port)) = parts.next() else {
        return Err(format!(
            "'{s}' names no TCP port (/tcp/PORT after the host); {hint}"
        ));
    };
    let mut out = match host {
        Ok(ip) => ip.with(Protocol::Tcp(port)),
        Err(name) => named(&name, port)?,
    };
    for rest in parts {
        match rest {
            Protocol::P2p(_) => out.push(rest),
            other => {
                return Err(format!(
                    "'{s}': nodes speak TCP only, '{other}' is not for them; {hint}"
                ))
            }
        }
    }
    Ok(out)
}

/// [`parse_peer_addr`], and a name resolved now too (blocking: a resolver may take
/// seconds): for an address a user types to be dialled at once (the app's "Add a peer"),
/// who wants to hear now that it does not resolve, not later from the diagnostics.
pub fn check_peer_addr(s: &str) -> Result<Multiaddr, String> {
    let addr = parse_peer_addr(s)?;
    resolve_peer_addr(&addr)?;
    Ok(addr)
}

/// Whether `host` is spelled as a host name (RFC 1123: dot-separated labels of letters,
/// digits and hyphens, not starting or ending with a hyphen, the last not all digits), so
/// that a mistyped IP address (`10.0.0.300`) or a stray character is refused at once
/// rather than failing to resolve at every dial.
fn host_name(host: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "'{host}' is not an IP address or a host name ({why}); {PEER_HINT}"
        ))
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return bad("a host name has 1 to 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("each part between dots has 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad("letters, digits, '-', '_' and '.' only");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("no part starts or ends with '-'");
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("an IPv4 address has four numbers from 0 to 255");
    }
    Ok(())
}

const PEER_HINT: &str = "give the peer as IP:PORT (10.1.2.3:7441), HOST:PORT, or a multiaddr \
                         (/ip4/10.1.2.3/tcp/7441)";

/// `host`'s address for `port` by the system resolver, IPv4 first (a node listening on
/// 0.0.0.0 only is not reached over ::1). Blocking: a resolver may take seconds.
fn resolve(host: &str, port: u16) -> Result<std::net::SocketAddr, String> {
    use std::net::{SocketAddr, ToSocketAddrs};
    let found: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{host}': {e}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("'{host}' resolves to no address"))
}

/// Whether `addr` names its host (`/dns/…`), to be resolved before each dial.
pub fn is_named(addr: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    matches!(
        addr.iter().next(),
        Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_))
    )
}

/// The address to dial now for a peer kept by name (see [`parse_peer_addr`]): its host
/// resolved by the system resolver (blocking), the rest as given. Any other address is
/// returned as it is.
pub fn resolve_peer_addr(addr: &Multiaddr) -> Result<Multiaddr, String> {
    use libp2p::multiaddr::Protocol;
    let mut parts = addr.iter();
    let (Some(Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h)), Some(Protocol::Tcp(port))) =
        (parts.next(), parts.next())
    else {
        return Ok(addr.clone());
    };
    let mut out = from_socket(resolve(&h, port)?);
    for p in parts {
        out.push(p);
    }
    Ok(out)
}

/// An address to listen on (`--listen`): `0.0.0.0:7441`, `[::]:7441`, or a multiaddr
/// (`/ip4/0.0.0.0/tcp/7441`; the node says which it cannot listen on, and why).
pub fn parse_listen_addr(s: &str) -> Result<Multiaddr, String> {
    let s = s.trim();
    let hint = "give the address to listen on as IP:PORT (0.0.0.0:7441) or a multiaddr \
                (/ip4/0.0.0.0/tcp/7441)";
    if s.starts_with('/') {
        return s.parse().map_err(|e| format!("'{s}': {e}; {hint}"));
    }
    s.parse::<std::net::SocketAddr>()
        .map(from_socket)
        .map_err(|_| format!("'{s}' is not IP:PORT; {hint}"))
}

fn from_socket(a: std::net::SocketAddr) -> Multiaddr {
    use libp2p::multiaddr::Protocol;
    let ip = match a.ip() {
        std::net::IpAddr::V4(v4) => Protocol::Ip4(v4),
        std::net::IpAddr::V6(v6) => Protocol::Ip6(v6),
    };
    Multiaddr::empty().with(ip).with(Protocol::Tcp(a.port()))
}

#[derive(Debug)]
pub(crate) struct NotOnRoster(PeerId);

impl std::fmt::Display for NotOnRoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "device {} is not on the org roster", self.0)
    }
}
impl std::error::Error for NotOnRoster {}

/// Connections not yet authenticated (TCP accepted, noise under way), per remote IP and in
/// all: a host that opens thousands of sockets holds at most this many handshakes.
pub const MAX_PENDING_PER_IP: usize = 16;
pub const MAX_PENDING: usize = 512;
/// Established connections per device: honest nodes need one or two (simultaneous dials).
pub const MAX_PER_PEER: usize = 4;
/// Devices not on the roster let in while bootstrapping (a node that holds no roster listing
/// itself admits anyone who might hand it one): at most this many at once, this many per IP,
/// and each for at most [`STRANGER_TTL`].
pub const MAX_STRANGERS: usize = 8;
pub const MAX_STRANGERS_PER_IP: usize = 2;
pub const STRANGER_TTL: Duration = Duration::from_secs(30);

/// Who is calling, for per-source limits: the IPv4 address, or the IPv6 /64 of a global
/// address (one host on the internet can use a whole /64). Link-local (`fe80::/10`) and
/// unique-local (`fc00::/7`) addresses count one by one: every host on a LAN shares that
/// /64, so grouping them would let one noisy host lock out the whole site.
pub(crate) fn ip_of(addr: &Multiaddr) -> Option<std::net::IpAddr> {
    use libp2p::multiaddr::Protocol;
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(ip.into()),
        Protocol::Ip6(ip)
            if scoped::is_link_local(&ip) || (ip.segments()[0] & 0xfe00) == 0xfc00 =>
        {
            Some(ip.into())
        }
        Protocol::Ip6(ip) => {
            let net = u128::from(ip) & !((1u128 << 64) - 1);
            Some(std::net::Ipv6Addr::from(net).into())
        }
        _ => None,
    })
}

#[derive(Debug)]
struct OverLimit(&'static str);

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connection limit: {}", self.0)
    }
}
impl std::error::Error for OverLimit {}

/// Connection gate driven by the roster, with limits for whoever is not (yet) on it.
#[derive(Default)]
pub struct Gate {
    allowed: HashSet<PeerId>,
    open: bool,
    to_close: VecDeque<PeerId>,
    connected: HashSet<PeerId>,
    /// Inbound connections before the handshake, by remote IP.
    pending: std::collections::HashMap<ConnectionId, Option<std::net::IpAddr>>,
    /// Established connections per device.
    per_peer: std::collections::HashMap<PeerId, usize>,
    /// Strangers let in by the bootstrap exception: when, from where.
    strangers: std::collections::HashMap<
        ConnectionId,
        (PeerId, Option<std::net::IpAddr>, std::time::Instant),
    >,
    close_one: VecDeque<(PeerId, ConnectionId)>,
    /// Connections refused by a limit (not by the roster), for diagnostics.
    pub limited: u64,
    waker: Option<Waker>,
    /// Devices that were on an earlier roster version and are not any more. Their inbound
    /// connections are admitted for one purpose: a lost laptop switched on again learns of
    /// its removal (the node answers only its roster `Have`, up to the removal, and closes).
    departed: HashSet<PeerId>,
    pub denied: u64,
    /// The last devices turned away for not being on the roster (newest last, one entry
    /// per device, at most [`MAX_TURNED_AWAY`]): "why can't bilal's new laptop connect?"
    pub turned_away: VecDeque<TurnedAway>,
}

/// How many turned-away devices diagnostics remember (they are also requests to join).
pub const MAX_TURNED_AWAY: usize = 16;
/// Of those, how many from one source ([`ip_of`]): a host calling with fresh keys by the
/// hundred (a stranger's script, or a member's modified client) replaces its own entries,
/// not a newcomer's connecting from elsewhere.
pub const MAX_TURNED_AWAY_PER_SOURCE: usize = 4;

/// A device the roster gate refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnedAway {
    pub peer: PeerId,
    /// Where it called from (inbound) or where we dialed it.
    pub addr: Option<Multiaddr>,
    /// Unix milliseconds.
    pub at: u64,
    pub inbound: bool,
}

impl Gate {
    /// Replace the allowed set; close connections to devices that are no longer on it.
    /// `grace`: no longer allowed, but their open connections are closed by the caller a
    /// moment later (after telling them why).
    pub fn set_allowed(&mut self, allowed: HashSet<PeerId>, open: bool, grace: &HashSet<PeerId>) {
        self.allowed = allowed;
        self.open = open;
        // A stranger the roster now lists is a stranger no more: its connection must not be
        // closed when the bootstrap exception's time runs out (it was, 30 s after a new
        // device got its roster from the admin who added it).
        let allowed = &self.allowed;
        self.strangers.retain(|_, s| !allowed.contains(&s.0));
        if !open {
            for p in &self.connected {
                if !self.allowed.contains(p) && !grace.contains(p) {
                    self.to_close.push_back(*p);
                }
            }
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    pub fn allowed(&self) -> &HashSet<PeerId> {
        &self.allowed
    }

    pub fn set_departed(&mut self, departed: HashSet<PeerId>) {
        self.departed = departed;
    }

    pub fn departed(&self, peer: &PeerId) -> bool {
        !self.allows(peer) && self.departed.contains(peer)
    }

    pub fn allows(&self, peer: &PeerId) -> bool {
        self.open || self.allowed.contains(peer)
    }

    fn enforce(
        &mut self,
        peer: &PeerId,
        addr: Option<&Multiaddr>,
        inbound: bool,
    ) -> Result<(), ConnectionDenied> {
        if !self.allows(peer) {
            self.denied += 1;
            self.turned_away.retain(|t| t.peer != *peer);
            // Room: the oldest of this source's own when it has its share, else the
            // oldest of the source holding the most (one host cannot push others out).
            let source = addr.and_then(ip_of);
            let of = |t: &TurnedAway, src: &Option<_>| {
                src.is_some() && t.addr.as_ref().and_then(ip_of) == *src
            };
            let mine = self.turned_away.iter().filter(|t| of(t, &source)).count();
            let evict = if mine >= MAX_TURNED_AWAY_PER_SOURCE {
                self.turned_away.iter().position(|t| of(t, &source))
            } else if self.turned_away.len() >= MAX_TURNED_AWAY {
                let share = |t: &TurnedAway| {
                    let src = t.addr.as_ref().and_then(ip_of);
                    self.turned_away.iter().filter(|u| of(u, &src)).count()
                };
                let most = self.turned_away.iter().map(share).max();
                self.turned_away.iter().position(|t| Some(share(t)) == most)
            } else {
                None
            };
            if let Some(i) = evict {
                self.turned_away.remove(i);
            }
            self.turned_away.push_back(TurnedAway {
                peer: *peer,
                addr: addr.cloned(),
                at: crate::now_ms(),
                inbound,
            });
            return Err(ConnectionDenied::new(NotOnRoster(*peer)));
        }
        if self.per_peer.get(peer).copied().unwrap_or(0) >= MAX_PER_PEER {
            return self.limit("too many connections from one device");
        }
        Ok(())
    }

    fn limit(&mut self, why: &'static str) -> Result<(), ConnectionDenied> {
        self.limited += 1;
        Err(ConnectionDenied::new(OverLimit(why)))
    }

    /// A stranger admitted by the bootstrap exception: bounded in number, per IP and in time.
    fn admit_stranger(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let ip = ip_of(remote);
        let from_ip = self.strangers.values().filter(|s| s.1 == ip).count();
        if self.strangers.len() >= MAX_STRANGERS || from_ip >= MAX_STRANGERS_PER_IP {
            return self.limit("too many devices not on the roster");
        }
        self.strangers
            .insert(id, (peer, ip, std::time::Instant::now()));
        Ok(())
    }

    /// Close strangers' connections older than [`STRANGER_TTL`] (called on a timer): the
    /// bootstrap exception is for fetching a roster, not for staying.
    pub fn expire_strangers(&mut self) {
        let old: Vec<(ConnectionId, PeerId)> = self
            .strangers
            .iter()
            .filter(|(_, s)| s.2.elapsed() > STRANGER_TTL)
            .map(|(id, s)| (*id, s.0))
            .collect();
        for (id, peer) in old {
            self.strangers.remove(&id);
            self.close_one.push_back((peer, id));
        }
        if !self.close_one.is_empty() {
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let ip = ip_of(remote);
        let from_ip = self.pending.values().filter(|p| **p == ip).count();
        if self.pending.len() >= MAX_PENDING || from_ip >= MAX_PENDING_PER_IP {
            return self.limit("too many handshakes under way");
        }
        self.pending.insert(id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.pending.remove(&id);
        if self.departed(&peer) {
            if self.per_peer.get(&peer).copied().unwrap_or(0) >= MAX_PER_PEER {
                self.limit("too many connections from one device")?;
            }
            return Ok(dummy::ConnectionHandler);
        }
        self.enforce(&peer, Some(remote), true)?;
        if !self.allowed.contains(&peer) {
            self.admit_stranger(id, peer, remote)?;
        }
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        addrs: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = peer {
            self.enforce(&peer, addrs.first(), false)?;
        }
        Ok(vec![])
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        remote: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        // Outbound: we chose to dial it (a static peer, or an mDNS record, bounded by the
        // node); strangers' limits are for who calls us.
        let _ = id;
        self.enforce(&peer, Some(remote), false)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connected.insert(e.peer_id);
                *self.per_peer.entry(e.peer_id).or_default() += 1;
            }
            FromSwarm::ConnectionClosed(e) => {
                self.strangers.remove(&e.connection_id);
                if let Some(n) = self.per_peer.get_mut(&e.peer_id) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_peer.remove(&e.peer_id);
                    }
                }
                if e.remaining_established == 0 {
                    self.connected.remove(&e.peer_id);
                }
            }
            FromSwarm::ListenFailure(e) => {
                self.pending.remove(&e.connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some(peer) = self.to_close.pop_front() {
            return Poll::Ready(ToSwarm::CloseConnection {
                peer_id: peer,
                connection: CloseConnection::All,
            });
        }
        if let Some((peer, id)) = self.close_one.pop_front() {
            return Poll::Ready(ToSwarm::CloseConnection {
                peer_id: peer,
                connection: CloseConnection::One(id),
            });
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    // First, so a denied connection never reaches the others.
    pub gate: Gate,
    pub gossipsub: gossipsub::Behaviour,
    pub identify: identify::Behaviour,
    pub roster: request_response::cbor::Behaviour<RosterRequest, RosterResponse>,
    pub sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
    pub blob: request_response::cbor::Behaviour<BlobRequest, BlobResponse>,
    pub signal: request_response::cbor::Behaviour<Signal, Ack>,
    pub push: request_response::cbor::Behaviour<Push, Ack>,
    /// Liveness: a connection whose peer has gone (its cable pulled, its laptop moved to
    /// another network) carries no traffic and TCP alone would keep it for many minutes.
    /// A failed ping closes it (in the node), so both sides redial at once.
    pub ping: ping::Behaviour,
}

/// One ping per connection per interval (~100 bytes each way with framing). libp2p-ping
/// reports only the second failure in a row, so a dead link is noticed within about
/// 2 × (interval + timeout) = 20 s.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

impl Behaviour {
    pub fn new(key: &libp2p::identity::Keypair) -> Behaviour {
        let gossip_config = gossipsub::ConfigBuilder::default()
            // Our envelopes carry their own device signature; a second gossipsub signature
            // would halve verification throughput for no added security.
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            // The application checks signature and roster before a message is forwarded.
            .validate_messages()
            // Content-addressed: the same envelope from two paths is one message. The topic
            // is hashed in too: a direct message goes to two inbox topics, and
            // the second publish must not be taken for a duplicate of the first.
            .message_id_fn(|m: &gossipsub::Message| {
                let mut h = blake3::Hasher::new();
                h.update(m.topic.as_str().as_bytes());
                h.update(&[0]);
                h.update(&m.data);
                gossipsub::MessageId::from(&h.finalize().as_bytes()[..20])
            })
            .max_transmit_size(crate::message::MAX_WIRE_BYTES + 4096)
            // On a slow link a published message may wait behind catch-up traffic: keep it
            // queued rather than drop it after gossipsub's default 5 s (catch-up would bring
            // it, but only after everything its author wrote before). Forwards likewise.
            .publish_queue_duration(Duration::from_secs(60))
            .forward_queue_duration(Duration::from_secs(10))
            .heartbeat_interval(Duration::from_secs(1))
            .build()
            .expect("valid gossipsub config");
        let gossipsub =
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)
                .expect("valid gossipsub behaviour");
        let identify = identify::Behaviour::new(identify::Config::new(
            IDENTIFY_PROTOCOL.into(),
            key.public(),
        ));
        let roster = request_response::cbor::Behaviour::new(
            [(
                StreamProtocol::new(ROSTER_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
        );
        let sync = request_response::cbor::Behaviour::new(
            [(
                StreamProtocol::new(SYNC_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
        );
        // A chunk answer carries up to 1 MiB, or one chunk of up to 16 MiB; a request is small.
        let blob_codec = request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(4 * 1024)
            .set_response_size_maximum(crate::files::MAX_CHUNK as u64 + 64 * 1024);
        let blob = request_response::cbor::Behaviour::with_codec(
            blob_codec,
            [(
                StreamProtocol::new(BLOB_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            // One chunk (256 KiB) takes ~33 s over a 64 kbit/s field radio, and a source
            // gets no more in flight than its link carries in a few seconds
            // (`files::fetch::Pace`). A silent source does not hold a download this long:
            // what it holds is asked elsewhere after 5 s (`files::fetch::HEDGE_MS`).
            request_response::Config::default()
                .with_request_timeout(BLOB_TIMEOUT)
                .with_max_concurrent_streams(256),
        );
        let signal_codec = request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(1024)
            .set_response_size_maximum(64);
        let signal = request_response::cbor::Behaviour::with_codec(
            signal_codec,
            [(
                StreamProtocol::new(SIGNAL_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default().with_request_timeout(Duration::from_secs(5)),
        );
        let push_codec = request_response::cbor::codec::Codec::default()
            .set_request_size_maximum((MAX_PUSH * (crate::message::MAX_WIRE_BYTES + 16)) as u64)
            .set_response_size_maximum(64);
        let push = request_response::cbor::Behaviour::with_codec(
            push_codec,
            [(
                StreamProtocol::new(PUSH_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
        );
        Behaviour {
            gate: Gate::default(),
            gossipsub,
            identify,
            roster,
            sync,
            blob,
            signal,
            push,
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(PING_INTERVAL)
                    .with_timeout(PING_TIMEOUT),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_are_taken_as_users_write_them_and_refused_with_what_to_write() {
        let id = PeerId::random();
        for (given, want) in [
            ("10.1.2.3:7441", "/ip4/10.1.2.3/tcp/7441".to_string()),
            (" 10.1.2.3:7441 ", "/ip4/10.1.2.3/tcp/7441".into()),
            ("[fd00::1]:7441", "/ip6/fd00::1/tcp/7441".into()),
            ("/ip4/10.1.2.3/tcp/7441", "/ip4/10.1.2.3/tcp/7441".into()),
            ("/ip6/fd00::1/tcp/7441", "/ip6/fd00::1/tcp/7441".into()),
            // Link-local: the zone (an interface's name or index) is kept.
            (
                "[fe80::1%lo]:7441",
                "/ip6zone/lo/ip6/fe80::1/tcp/7441".into(),
            ),
            ("[fe80::1%1]:7441", "/ip6zone/1/ip6/fe80::1/tcp/7441".into()),
            (
                "/ip6zone/lo/ip6/fe80::1/tcp/7441",
                "/ip6zone/lo/ip6/fe80::1/tcp/7441".into(),
            ),
            (
                &format!("/ip4/10.1.2.3/tcp/7441/p2p/{id}"),
                format!("/ip4/10.1.2.3/tcp/7441/p2p/{id}"),
            ),
            // Kept by name, resolved before each dial: one that does not resolve now is
            // taken too (`.invalid` never does, RFC 6761; nothing is asked of a resolver).
            ("localhost:7441", "/dns/localhost/tcp/7441".into()),
            ("relay.invalid:7441", "/dns/relay.invalid/tcp/7441".into()),
            (
                "Relay-2.site.invalid.:7441",
                "/dns/Relay-2.site.invalid./tcp/7441".into(),
            ),
            (
                "/dns/relay.invalid/tcp/7441",
                "/dns/relay.invalid/tcp/7441".into(),
            ),
            ("/dns4/localhost/tcp/7441", "/dns/localhost/tcp/7441".into()),
            ("/dns/localhost/tcp/7441", "/dns/localhost/tcp/7441".into()),
        ] {
            assert_eq!(
                parse_peer_addr(given).map(|a| a.to_string()),
                Ok(want),
                "{given}"
            );
        }
        for (given, says) in [
            ("10.1.2.3", "no port"),
            ("10.1.2.3:port", "not a port"),
            ("10.1.2.3:70000", "not a port"),
            ("/ip4/10.1.2.3", "no TCP port"),
            ("/ip4/10.1.2.3/udp/7441/quic-v1", "no TCP port"),
            ("/ip4/10.1.2.3/tcp/7441/ws", "TCP only"),
            ("/memory/5", "does not start with"),
            ("[fe80::1]:7441", "link-local"),
            ("/ip6zone/lo/tcp/7441", "followed by /ip6"),
            ("/ip4/999.1.2.3/tcp/1", "IP:PORT"),
            // Not spelled as a host name: refused now, not at every dial.
            ("10.0.0.300:7441", "four numbers"),
            ("relay site:7441", "letters, digits"),
            ("-relay.invalid:7441", "starts or ends with '-'"),
            ("relay..invalid:7441", "1 to 63"),
            ("fd00::1:7441", "letters, digits"),
            (":7441", "1 to 253"),
            ("/dns/relay;rm/tcp/7441", "letters, digits"),
        ] {
            let e = parse_peer_addr(given).expect_err(given);
            assert!(e.contains(says) && e.contains("IP:PORT"), "{given}: {e}");
        }
        // Typed to be dialled now: resolved now (`localhost` is in every hosts file).
        assert_eq!(
            check_peer_addr("localhost:7441").map(|a| a.to_string()),
            Ok("/dns/localhost/tcp/7441".into())
        );
        assert!(check_peer_addr("10.0.0.300:7441").is_err());
        let listen = |s: &str| parse_listen_addr(s).map(|a| a.to_string());
        assert_eq!(listen("0.0.0.0:7441"), Ok("/ip4/0.0.0.0/tcp/7441".into()));
        assert_eq!(listen("[::]:0"), Ok("/ip6/::/tcp/0".into()));
        assert_eq!(
            listen("/ip4/0.0.0.0/tcp/7441"),
            Ok("/ip4/0.0.0.0/tcp/7441".into())
        );
        for bad in ["7441", "localhost:7441", "/ip4/1.2.3"] {
            let e = parse_listen_addr(bad).expect_err(bad);
            assert!(e.contains("IP:PORT"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_signed_signal_verifies_only_as_signed_and_never_nested() {
        let key = crate::identity::DeviceKey::generate();
        let typing = Signal::Typing {
            channel: "board".into(),
        };
        let s = SignedSignal::sign(&key, 1_700_000_000_000, typing.clone());
        assert_eq!(s.verified(), Some(&typing));
        // Hops are not signed: a relay adds one and it still verifies.
        let mut hop = s.clone();
        hop.hops += 1;
        assert!(hop.verified().is_some());
        for bad in [
            SignedSignal {
                signal: Box::new(Signal::Typing {
                    channel: "general".into(),
                }),
                ..s.clone()
            },
            SignedSignal {
                sent_at: s.sent_at + 1,
                ..s.clone()
            },
            SignedSignal {
                device: crate::identity::DeviceKey::generate().id(),
                ..s.clone()
            },
            SignedSignal {
                sig: serde_bytes::ByteBuf::from(vec![0u8; 63]),
                ..s.clone()
            },
        ] {
            assert_eq!(bad.verified(), None, "{bad:?}");
        }
        let nested = SignedSignal::sign(&key, 1, Signal::Signed(s));
        assert_eq!(nested.verified(), None);
    }

    /// A host calling with fresh keys by the hundred keeps a few places of the turned-away
    /// list (the requests to join), and a newcomer calling from elsewhere stays listed.
    #[test]
    fn a_flood_of_callers_from_one_host_leaves_room_for_a_newcomer() {
        let mut g = Gate::default();
        g.set_allowed(HashSet::new(), false, &HashSet::new());
        let at = |ip: &str| -> Multiaddr { format!("/ip4/{ip}/tcp/5000").parse().unwrap() };
        let call = |g: &mut Gate, peer: PeerId, ip: &str| {
            assert!(g.enforce(&peer, Some(&at(ip)), true).is_err());
        };
        for _ in 0..500 {
            call(&mut g, PeerId::random(), "10.0.0.66");
        }
        let newcomer = PeerId::random();
        call(&mut g, newcomer, "10.0.0.7");
        for _ in 0..500 {
            call(&mut g, PeerId::random(), "10.0.0.66");
        }
        let listed = |g: &Gate, p: &PeerId| g.turned_away.iter().any(|t| t.peer == *p);
        assert!(listed(&g, &newcomer));
        let flood = g
            .turned_away
            .iter()
            .filter(|t| t.addr == Some(at("10.0.0.66")))
            .count();
        assert_eq!(flood, MAX_TURNED_AWAY_PER_SOURCE);
        // Sixteen more hosts at four each, while the newcomer's node calls again every few
        // seconds (as it does): the list is full, and the newcomer is in it.
        for h in 0..16 {
            for _ in 0..4 {
                call(&mut g, PeerId::random(), &format!("10.0.1.{h}"));
            }
            call(&mut g, newcomer, "10.0.0.7");
        }
        assert_eq!(g.turned_away.len(), MAX_TURNED_AWAY);
        assert!(listed(&g, &newcomer));
    }

    /// A bootstrapping node lets a stranger in; then a roster listing that stranger arrives.
    /// The connection is a roster peer's from then on, not a stranger's on a timer.
    #[test]
    fn a_stranger_the_roster_then_lists_is_no_longer_on_the_strangers_clock() {
        let mut g = Gate::default();
        g.set_allowed(HashSet::new(), true, &HashSet::new());
        let (bilal, other) = (PeerId::random(), PeerId::random());
        let a: Multiaddr = "/ip4/10.0.0.1/tcp/4001".parse().unwrap();
        for (i, (p, ip)) in [(bilal, "10.0.0.2"), (other, "10.0.0.3")]
            .iter()
            .enumerate()
        {
            let remote: Multiaddr = format!("/ip4/{ip}/tcp/5000").parse().unwrap();
            g.handle_established_inbound_connection(
                ConnectionId::new_unchecked(i),
                *p,
                &a,
                &remote,
            )
            .unwrap();
        }
        assert_eq!(g.strangers.len(), 2);
        g.set_allowed([bilal].into_iter().collect(), false, &HashSet::new());
        let left: Vec<PeerId> = g.strangers.values().map(|s| s.0).collect();
        assert_eq!(
            left,
            [other],
            "only the one still not on the roster is timed"
        );
    }
}
