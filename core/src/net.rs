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
use libp2p::{gossipsub, identify, request_response, Multiaddr, PeerId, StreamProtocol};
use serde::{Deserialize, Serialize};

pub const ROSTER_PROTOCOL: &str = "/majlis/roster/1";
pub const IDENTIFY_PROTOCOL: &str = "/majlis/id/1";
pub const SYNC_PROTOCOL: &str = "/majlis/sync/1";
/// A sync response stops adding messages past this many bytes (the codec's cap is 10 MiB).
pub const SYNC_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

pub const BLOB_PROTOCOL: &str = "/majlis/blob/1";

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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncRequest {
    pub channel: String,
    pub have: Vec<(crate::DeviceId, u64)>,
    /// Seq ranges (author, first, last) held beyond `have`, so they are not sent again.
    /// Absent from older peers' requests (then the tail after a gap is resent).
    #[serde(default)]
    pub held: Vec<(crate::DeviceId, u64, u64)>,
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
    },
    /// Sent to a device that a new version removes, just before the connection is closed, so
    /// that it learns of its removal (and wipes itself). Answered with an empty response.
    Push {
        versions: Vec<serde_bytes::ByteBuf>,
    },
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
}

/// Where one device listens, as a peer reported it (its own identify listen addresses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAddrs {
    pub device: crate::DeviceId,
    pub addrs: Vec<String>,
}

/// Peer exchange bounds: devices per answer, addresses per device.
pub const MAX_PEX_DEVICES: usize = 4096;
pub const MAX_PEX_ADDRS: usize = 8;

/// Whether an address is worth telling another host: not loopback, not unspecified.
pub fn routable(addr: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => !ip.is_loopback() && !ip.is_unspecified(),
        Some(Protocol::Ip6(ip)) => !ip.is_loopback() && !ip.is_unspecified(),
        _ => false,
    }
}

#[derive(Debug)]
struct NotOnRoster(PeerId);

impl std::fmt::Display for NotOnRoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "device {} is not on the org roster", self.0)
    }
}
impl std::error::Error for NotOnRoster {}

/// Connection gate driven by the roster.
#[derive(Default)]
pub struct Gate {
    allowed: HashSet<PeerId>,
    open: bool,
    to_close: VecDeque<PeerId>,
    connected: HashSet<PeerId>,
    waker: Option<Waker>,
    /// Devices that were on an earlier roster version and are not any more. Their inbound
    /// connections are admitted for one purpose: a lost laptop switched on again learns of
    /// its removal (the node answers only its roster `Have`, up to the removal, and closes).
    departed: HashSet<PeerId>,
    pub denied: u64,
}

impl Gate {
    /// Replace the allowed set; close connections to devices that are no longer on it.
    /// `grace`: no longer allowed, but their open connections are closed by the caller a
    /// moment later (after telling them why).
    pub fn set_allowed(&mut self, allowed: HashSet<PeerId>, open: bool, grace: &HashSet<PeerId>) {
        self.allowed = allowed;
        self.open = open;
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

    fn enforce(&mut self, peer: &PeerId) -> Result<(), ConnectionDenied> {
        if self.allows(peer) {
            Ok(())
        } else {
            self.denied += 1;
            Err(ConnectionDenied::new(NotOnRoster(*peer)))
        }
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if !self.departed(&peer) {
            self.enforce(&peer)?;
        }
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = peer {
            self.enforce(&peer)?;
        }
        Ok(vec![])
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.enforce(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connected.insert(e.peer_id);
            }
            FromSwarm::ConnectionClosed(e) if e.remaining_established == 0 => {
                self.connected.remove(&e.peer_id);
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
}

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
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(30))
                .with_max_concurrent_streams(256),
        );
        Behaviour {
            gate: Gate::default(),
            gossipsub,
            identify,
            roster,
            sync,
            blob,
        }
    }
}
