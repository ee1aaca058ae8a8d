//! A bounded fuzz run in the normal test suite: every decoder entry point of
//! `majlis_core::fuzz` (the same ones the cargo-fuzz targets in `fuzz/` drive) gets random
//! bytes and valid frames with random bytes flipped, cut or appended (2 000 inputs per
//! decoder). Passing means no input panicked; the seeds are checked to be valid, so the
//! mutations start from frames that get past the first checks.

use std::sync::OnceLock;

use futures::executor::block_on;
use libp2p::request_response::{cbor, Codec};
use libp2p::StreamProtocol;
use majlis_core::fuzz;
use majlis_core::message::{Envelope, Unsigned, PLAINTEXT_FORMAT};
use majlis_core::net::{RosterRequest, SyncRequest, SyncResponse, ROSTER_PROTOCOL, SYNC_PROTOCOL};
use majlis_core::roster::{Roster, RosterSigner, VerifiedRoster};
use majlis_core::{DeviceKey, OrgKey};
use proptest::prelude::*;

struct Seeds {
    envelope: Vec<u8>,
    roster: Vec<u8>,
    sync_request: Vec<u8>,
    sync_response: Vec<u8>,
    roster_push: Vec<u8>,
    record: Vec<u8>,
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let key = DeviceKey::generate();
        let root = OrgKey::generate();
        let env = |seq: u64, prev| {
            Envelope::sign(
                &key,
                Unsigned {
                    format: PLAINTEXT_FORMAT,
                    author: key.id(),
                    channel: "general".into(),
                    sent_at: majlis_core::now_ms(),
                    seq,
                    prev,
                    body: format!("message {seq} سلام").into(),
                },
            )
        };
        let e1 = env(1, None);
        let e2 = env(2, Some(e1.id));
        let roster = VerifiedRoster::sign(
            Roster::genesis(&root, "acme", "amina", key.id(), 1),
            RosterSigner::Root(&root),
        );
        let sync = StreamProtocol::new(SYNC_PROTOCOL);
        let mut sc = cbor::codec::Codec::<SyncRequest, SyncResponse>::default();
        let mut sync_request = Vec::new();
        block_on(sc.write_request(
            &sync,
            &mut futures::io::Cursor::new(&mut sync_request),
            SyncRequest {
                channel: "general".into(),
                have: vec![(key.id(), 3)],
                held: vec![(key.id(), 5, 9)],
                max_bytes: None,
                skip: None,
            },
        ))
        .unwrap();
        let mut sync_response = Vec::new();
        block_on(sc.write_response(
            &sync,
            &mut futures::io::Cursor::new(&mut sync_response),
            SyncResponse {
                messages: vec![e1.wire.clone().into(), e2.wire.clone().into()],
                more: true,
                channels: vec![],
            },
        ))
        .unwrap();
        let rp = StreamProtocol::new(ROSTER_PROTOCOL);
        let mut rc =
            cbor::codec::Codec::<RosterRequest, majlis_core::net::RosterResponse>::default();
        let mut roster_push = Vec::new();
        block_on(rc.write_request(
            &rp,
            &mut futures::io::Cursor::new(&mut roster_push),
            RosterRequest::Push {
                versions: vec![roster.wire.clone().into()],
            },
        ))
        .unwrap();
        let record = postcard::to_stdvec(&("amina".to_string(), e1.wire.clone())).unwrap();
        Seeds {
            envelope: e1.wire,
            roster: roster.wire,
            sync_request,
            sync_response,
            roster_push,
            record,
        }
    })
}

/// A valid frame with some bytes flipped, then maybe cut short or extended.
fn mutated(seed: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        prop::option::of(any::<prop::sample::Index>()),
        prop::collection::vec(any::<u8>(), 0..3),
    )
        .prop_map(move |(flips, cut, tail)| {
            let mut w = seed.to_vec();
            for (at, x) in flips {
                let i = at.index(w.len());
                w[i] ^= x;
            }
            if let Some(c) = cut {
                w.truncate(c.index(w.len() + 1));
            }
            w.extend(tail);
            w
        })
}

fn input(seed: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        mutated(seed),
        mutated(seed),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn envelopes(data in input(&seeds().envelope)) {
        fuzz::envelope(&data);
    }

    #[test]
    fn rosters(data in input(&seeds().roster)) {
        fuzz::roster(&data);
    }

    #[test]
    fn sync_requests(data in input(&seeds().sync_request)) {
        fuzz::sync_frame(&data);
    }

    #[test]
    fn sync_responses(data in input(&seeds().sync_response)) {
        fuzz::sync_frame(&data);
    }

    #[test]
    fn roster_frames(data in input(&seeds().roster_push)) {
        fuzz::roster_frame(&data);
    }

    #[test]
    fn stored_records(data in input(&seeds().record)) {
        fuzz::stored_record(&data);
    }
}

#[test]
fn seeds_are_valid_so_mutations_start_from_real_frames() {
    let s = seeds();
    assert!(Envelope::decode(&s.envelope).is_ok());
    assert!(VerifiedRoster::decode(&s.roster).is_ok());
    assert!(majlis_core::store::decode_stored(&s.record).is_ok());
    let proto = StreamProtocol::new(SYNC_PROTOCOL);
    let mut sc = cbor::codec::Codec::<SyncRequest, SyncResponse>::default();
    let resp = block_on(sc.read_response(&proto, &mut futures::io::Cursor::new(&s.sync_response)))
        .unwrap();
    assert_eq!(resp.messages.len(), 2);
    assert!(
        block_on(sc.read_request(&proto, &mut futures::io::Cursor::new(&s.sync_request))).is_ok()
    );
}
