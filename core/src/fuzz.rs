//! One entry point per decoder that untrusted bytes reach — from a peer (gossip frames,
//! request-response frames with the real CBOR codec, roster wires) or from the disk (stored
//! records). Shared by the cargo-fuzz targets in `fuzz/` and the bounded property run in
//! `core/tests/decoders.rs`, so both exercise exactly the code the node runs. Each function
//! must return (with an error inside) for every input: a panic is a bug.

use futures::executor::block_on;
use futures::io::Cursor;
use libp2p::request_response::{cbor, Codec};
use libp2p::StreamProtocol;

use crate::files::blobs::Bitmap;
use crate::files::fetch::{Fetch, Part};
use crate::files::{BlobId, BlobRef};
use crate::message::{self, Envelope};
use crate::net::{
    Ack, BlobRequest, BlobResponse, Push, RosterRequest, RosterResponse, Signal, SyncRequest,
    SyncResponse, BLOB_PROTOCOL, PUSH_PROTOCOL, ROSTER_PROTOCOL, SIGNAL_PROTOCOL, SYNC_PROTOCOL,
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

/// A `/majlis/push/1` frame (a peer's own recent messages, sent straight to us) through the
/// CBOR codec, then each envelope in it as intake decodes and verifies them.
pub fn push_frame(data: &[u8]) {
    let proto = StreamProtocol::new(PUSH_PROTOCOL);
    let mut codec = cbor::codec::Codec::<Push, Ack>::default();
    let _ = block_on(codec.read_response(&proto, &mut Cursor::new(data)));
    if let Ok(push) = block_on(codec.read_request(&proto, &mut Cursor::new(data))) {
        let envs: Vec<Envelope> = push
            .messages
            .iter()
            .filter_map(|w| Envelope::decode_unverified(w).ok())
            .collect();
        let _ = message::verify_batch(&envs);
    }
}

/// A `/majlis/signal/1` frame (typing, away, a status) through the CBOR codec, then what the
/// node checks of a signed one: its signature, and a status's text. `Signal` nests (a signed
/// signal holds a signal), so this is where a deep frame would show.
pub fn signal_frame(data: &[u8]) {
    let proto = StreamProtocol::new(SIGNAL_PROTOCOL);
    let mut codec = cbor::codec::Codec::<Signal, Ack>::default();
    let _ = block_on(codec.read_response(&proto, &mut Cursor::new(data)));
    if let Ok(Signal::Signed(s)) = block_on(codec.read_request(&proto, &mut Cursor::new(data))) {
        if let Some(Signal::Status(status)) = s.verified() {
            let _ = crate::status::check(status, s.sent_at);
        }
    }
}

/// A `/majlis/blob/1` request and answer frame through the CBOR codec, then the answer given
/// to a download of a three-chunk file that asked for the part it answers: a hash list is
/// checked against the file's id, chunks and slices against their hashes and sizes.
pub fn blob_frame(data: &[u8]) {
    let proto = StreamProtocol::new(BLOB_PROTOCOL);
    let mut codec = cbor::codec::Codec::<BlobRequest, BlobResponse>::default();
    let _ = block_on(codec.read_request(&proto, &mut Cursor::new(data)));
    let Ok(resp) = block_on(codec.read_response(&proto, &mut Cursor::new(data))) else {
        return;
    };
    let blob = BlobRef {
        id: BlobId(*blake3::hash(data).as_bytes()),
        size: 2 * 1024 + 100,
        chunk: 1024,
    };
    let hashes = vec![[7u8; 32]; blob.chunks() as usize];
    let mut fetch = Fetch::<u8>::new(blob, None, Bitmap::new(blob.chunks()));
    match resp {
        BlobResponse::Hashes(bytes) => {
            let list = bytes
                .chunks_exact(32)
                .filter_map(|c| <[u8; 32]>::try_from(c).ok())
                .collect();
            let _ = fetch.on_hashes(1, list);
        }
        BlobResponse::Chunks(chunks) => {
            let mut fetch = Fetch::<u8>::new(blob, Some(hashes), Bitmap::new(blob.chunks()));
            let whole: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
            let part = Part::Chunks {
                first: 0,
                count: blob.chunks(),
            };
            let _ = fetch.on_chunks(1, part, whole.clone(), 0);
            let len = whole.iter().map(Vec::len).sum::<usize>() as u32;
            let part = Part::Slice {
                chunk: 1,
                offset: 0,
                len,
            };
            let _ = fetch.on_slice(1, part, whole.concat(), 0);
        }
        BlobResponse::Lacking | BlobResponse::Denied => fetch.on_lacking(1, Part::Hashes, 0),
    }
}
