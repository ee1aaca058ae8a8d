//! One entry point per decoder that untrusted bytes reach — from a peer (gossip frames,
//! request-response frames with the real CBOR codec, roster wires) or from the disk (stored
//! records). Shared by the cargo-fuzz targets in `fuzz/` and the bounded property run in
//! `core/tests/decoders.rs`, so both exercise exactly the code the node runs. Each function
//! must return (with an error inside) for every input: a panic is a bug.

use futures::executor::block_on;
use futures::io::Cursor;
use libp2p::request_response::{cbor, Codec};
use libp2p::StreamProtocol;

use crate::message::{self, Envelope};
use crate::net::{
    RosterRequest, RosterResponse, SyncRequest, SyncResponse, ROSTER_PROTOCOL, SYNC_PROTOCOL,
};
use crate::roster::{RosterChain, VerifiedRoster};
use crate::sync::{self, Vector};

/// A gossip frame or a stored envelope.
pub fn envelope(data: &[u8]) {
    if let Ok(env) = Envelope::decode_unverified(data) {
        let _ = message::verify_batch(std::slice::from_ref(&env));
        let _ = env.signed_parts();
    }
    let _ = Envelope::decode(data);
}

/// A signed roster version, then the chain rules on it.
pub fn roster(data: &[u8]) {
    if let Ok(r) = VerifiedRoster::decode(data) {
        let mut chain = RosterChain::new(r.roster.org);
        let _ = chain.apply(vec![r]);
        let _ = chain.audit();
    }
}

/// A `/majlis/sync/1` request and response frame through the CBOR codec the node uses, then
/// the response checks the node runs before storing anything.
pub fn sync_frame(data: &[u8]) {
    let proto = StreamProtocol::new(SYNC_PROTOCOL);
    let mut codec = cbor::codec::Codec::<SyncRequest, SyncResponse>::default();
    let _ = block_on(codec.read_request(&proto, &mut Cursor::new(data)));
    if let Ok(resp) = block_on(codec.read_response(&proto, &mut Cursor::new(data))) {
        let envs: Vec<Envelope> = resp
            .messages
            .iter()
            .filter_map(|w| Envelope::decode_unverified(w).ok())
            .collect();
        let links: Vec<_> = envs
            .iter()
            .map(|e| (e.unsigned.channel.clone(), sync::Link::of(e)))
            .collect();
        let _ = sync::check_response(
            &Vector::new(),
            &Default::default(),
            &links,
            "general",
            |_, _| None,
            |_, _, _| None,
        );
        let _ = message::verify_batch(&envs);
    }
}

/// A `/majlis/roster/1` request and response frame through the CBOR codec, then every
/// roster wire inside.
pub fn roster_frame(data: &[u8]) {
    let proto = StreamProtocol::new(ROSTER_PROTOCOL);
    let mut codec = cbor::codec::Codec::<RosterRequest, RosterResponse>::default();
    if let Ok(RosterRequest::Push { versions }) =
        block_on(codec.read_request(&proto, &mut Cursor::new(data)))
    {
        versions.iter().for_each(|v| roster(v));
    }
    if let Ok(resp) = block_on(codec.read_response(&proto, &mut Cursor::new(data))) {
        resp.versions.iter().for_each(|v| roster(v));
    }
}

/// A record as stored in the database (a damaged disk must give an error, not a panic).
pub fn stored_record(data: &[u8]) {
    let _ = crate::store::decode_stored(data);
}
