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
use majlis_core::net::{
    Ack, BlobRequest, BlobResponse, Push, RosterRequest, Signal, SignedSignal, SyncRequest,
    SyncResponse, BLOB_PROTOCOL, PUSH_PROTOCOL, ROSTER_PROTOCOL, SIGNAL_PROTOCOL, SYNC_PROTOCOL,
};
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
    push: Vec<u8>,
    signal: Vec<u8>,
    blob_request: Vec<u8>,
    blob_chunks: Vec<u8>,
    blob_hashes: Vec<u8>,
}

/// A request or an answer of a request-response protocol.
enum Frame<Req, Resp> {
    Request(Req),
    Answer(Resp),
}

/// `frame` as the CBOR codec the node uses writes it for `protocol`.
fn framed<Req, Resp>(protocol: &'static str, frame: Frame<Req, Resp>) -> Vec<u8>
where
    Req: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    Resp: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let mut out = Vec::new();
    let mut codec = cbor::codec::Codec::<Req, Resp>::default();
    let (proto, mut w) = (
        StreamProtocol::new(protocol),
        futures::io::Cursor::new(&mut out),
    );
    match frame {
        Frame::Request(r) => block_on(codec.write_request(&proto, &mut w, r)),
        Frame::Answer(r) => block_on(codec.write_response(&proto, &mut w, r)),
    }
    .unwrap();
    out
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
        let sync_request = framed::<SyncRequest, SyncResponse>(
            SYNC_PROTOCOL,
            Frame::Request(SyncRequest {
                channel: "general".into(),
                have: vec![(key.id(), 3)],
                held: vec![(key.id(), 5, 9)],
                max_bytes: None,
                skip: None,
            }),
        );
        let sync_response = framed::<SyncRequest, SyncResponse>(
            SYNC_PROTOCOL,
            Frame::Answer(SyncResponse {
                messages: vec![e1.wire.clone().into(), e2.wire.clone().into()],
                more: true,
                channels: vec![],
            }),
        );
        let roster_push = framed::<RosterRequest, majlis_core::net::RosterResponse>(
            ROSTER_PROTOCOL,
            Frame::Request(RosterRequest::Push {
                versions: vec![roster.wire.clone().into()],
            }),
        );
        let record = postcard::to_stdvec(&("amina".to_string(), e1.wire.clone())).unwrap();
        let push = framed::<Push, Ack>(
            PUSH_PROTOCOL,
            Frame::Request(Push {
                messages: vec![e1.wire.clone().into(), e2.wire.clone().into()],
            }),
        );
        let status = majlis_core::status::Status {
            text: "In a meeting".into(),
            until: None,
        };
        let signal = framed::<Signal, Ack>(
            SIGNAL_PROTOCOL,
            Frame::Request(Signal::Signed(SignedSignal::sign(
                &key,
                majlis_core::now_ms(),
                Signal::Status(status),
            ))),
        );
        let blob = majlis_core::files::BlobId([9; 32]);
        let blob_request = framed::<BlobRequest, BlobResponse>(
            BLOB_PROTOCOL,
            Frame::Request(BlobRequest {
                channel: "general".into(),
                blob,
                part: majlis_core::files::fetch::Part::Chunks { first: 0, count: 3 },
            }),
        );
        let blob_chunks = framed::<BlobRequest, BlobResponse>(
            BLOB_PROTOCOL,
            Frame::Answer(BlobResponse::Chunks(vec![
                vec![1; 40].into(),
                vec![2; 40].into(),
                vec![3; 20].into(),
            ])),
        );
        let blob_hashes = framed::<BlobRequest, BlobResponse>(
            BLOB_PROTOCOL,
            Frame::Answer(BlobResponse::Hashes(vec![5; 96].into())),
        );
        Seeds {
            push,
            signal,
            blob_request,
            blob_chunks,
            blob_hashes,
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
    fn push_frames(data in input(&seeds().push)) {
        fuzz::push_frame(&data);
    }

    #[test]
    fn signal_frames(data in input(&seeds().signal)) {
        fuzz::signal_frame(&data);
    }

    #[test]
    fn blob_requests(data in input(&seeds().blob_request)) {
        fuzz::blob_frame(&data);
    }

    #[test]
    fn blob_chunk_answers(data in input(&seeds().blob_chunks)) {
        fuzz::blob_frame(&data);
    }

    #[test]
    fn blob_hash_answers(data in input(&seeds().blob_hashes)) {
        fuzz::blob_frame(&data);
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
    let proto = StreamProtocol::new(PUSH_PROTOCOL);
    let mut pc = cbor::codec::Codec::<Push, Ack>::default();
    let push = block_on(pc.read_request(&proto, &mut futures::io::Cursor::new(&s.push))).unwrap();
    assert!(push.messages.iter().all(|w| Envelope::decode(w).is_ok()));
    let proto = StreamProtocol::new(SIGNAL_PROTOCOL);
    let mut gc = cbor::codec::Codec::<Signal, Ack>::default();
    let signal = block_on(gc.read_request(&proto, &mut futures::io::Cursor::new(&s.signal)));
    assert!(
        matches!(&signal, Ok(Signal::Signed(x)) if matches!(x.verified(), Some(Signal::Status(_)))),
        "{signal:?}"
    );
    let proto = StreamProtocol::new(BLOB_PROTOCOL);
    let mut bc = cbor::codec::Codec::<BlobRequest, BlobResponse>::default();
    let mut read = |b: &[u8]| block_on(bc.read_response(&proto, &mut futures::io::Cursor::new(b)));
    assert!(matches!(read(&s.blob_chunks), Ok(BlobResponse::Chunks(c)) if c.len() == 3));
    assert!(matches!(read(&s.blob_hashes), Ok(BlobResponse::Hashes(h)) if h.len() == 96));
    assert!(
        block_on(bc.read_request(&proto, &mut futures::io::Cursor::new(&s.blob_request))).is_ok()
    );
}
