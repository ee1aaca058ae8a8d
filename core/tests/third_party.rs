//! A client written from docs/protocol.md alone, against a real node: every byte of its
//! messages is built here with the primitives the document names (postcard written out by
//! hand, ed25519, blake3, XChaCha20-Poly1305, HPKE), none of Majlis's own types or encoders.
//! Only the libp2p transport is shared, as any libp2p implementation would provide it. Where
//! the code and the document part, another implementation could not talk to Majlis, and this
//! fails.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use ed25519_dalek::Signer;
use hpke::{Deserializable, Serializable};
use libp2p::gossipsub;
use majlis_core::{DeviceId, DeviceKey, MessageId, Node, Profile, RosterChange};

mod common;
use common::*;

/// postcard's unsigned varint (LEB128).
fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A length-prefixed string or byte string.
fn bytes(b: &[u8], out: &mut Vec<u8>) {
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

/// Envelope, format 2: `postcard(Unsigned) || signature`, and its id.
fn envelope(
    key: &ed25519_dalek::SigningKey,
    channel: &str,
    sent_at: u64,
    seq: u64,
    prev: Option<[u8; 32]>,
    body: &[u8],
) -> (Vec<u8>, [u8; 32]) {
    let mut unsigned = vec![2u8];
    unsigned.extend_from_slice(key.verifying_key().as_bytes());
    bytes(channel.as_bytes(), &mut unsigned);
    varint(sent_at, &mut unsigned);
    varint(seq, &mut unsigned);
    match prev {
        None => unsigned.push(0),
        Some(p) => {
            unsigned.push(1);
            unsigned.extend_from_slice(&p);
        }
    }
    bytes(body, &mut unsigned);
    let mut signed = b"majlis/msg/v1\0".to_vec();
    signed.extend_from_slice(&unsigned);
    let id = *blake3::hash(&signed).as_bytes();
    let sig = key.sign(&signed);
    let mut wire = unsigned;
    wire.extend_from_slice(&sig.to_bytes());
    (wire, id)
}

/// `Content::Keys([Bundle { key, grants: [one grant to `to`] }])`.
fn keys_body(sender_key: &[u8; 32], key_id: &[u8; 16], channel: &str, to: &DeviceId) -> Vec<u8> {
    type Kem = hpke::kem::X25519HkdfSha256;
    // The recipient's X25519 key: the Montgomery form of its ed25519 device key.
    let ed = ed25519_dalek::VerifyingKey::from_bytes(&to.0).unwrap();
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&ed.to_montgomery().to_bytes()).unwrap();
    let mut info = b"majlis/grant/v1\0".to_vec();
    info.extend_from_slice(channel.as_bytes());
    let (enc, ct) =
        hpke::single_shot_seal::<hpke::aead::ChaCha20Poly1305, hpke::kdf::HkdfSha256, Kem, _>(
            &hpke::OpModeS::Base,
            &pk,
            &info,
            sender_key,
            key_id,
            &mut rand_core::TryRngCore::unwrap_err(rand_core::OsRng),
        )
        .unwrap();
    let mut sealed = enc.to_bytes().to_vec();
    sealed.extend_from_slice(&ct);
    assert_eq!(
        sealed.len(),
        80,
        "32 bytes of encapsulated key, 48 of ciphertext"
    );
    let mut body = Vec::new();
    varint(1, &mut body); // Content::Keys
    varint(1, &mut body); // one bundle
    body.extend_from_slice(key_id);
    varint(1, &mut body); // one grant
    body.extend_from_slice(&to.0[..8]); // hint
    bytes(&sealed, &mut body);
    body
}

/// `Content::Sealed` of `Plain::Text(text)`.
fn text_body(
    sender_key: &[u8; 32],
    key_id: &[u8; 16],
    channel: &str,
    author: &[u8; 32],
    text: &str,
) -> Vec<u8> {
    let mut plain = Vec::new();
    varint(0, &mut plain); // Plain::Text
    bytes(text.as_bytes(), &mut plain);
    let mut aad = b"majlis/body/v2\0".to_vec();
    aad.extend_from_slice(channel.as_bytes());
    aad.push(0);
    aad.extend_from_slice(author);
    let mut nonce = [0u8; 24];
    getrandom::getrandom(&mut nonce).unwrap();
    let ct = chacha20poly1305::XChaCha20Poly1305::new(sender_key.into())
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: &plain,
                aad: &aad,
            },
        )
        .unwrap();
    let mut body = Vec::new();
    varint(0, &mut body); // Content::Sealed
    body.extend_from_slice(key_id);
    body.extend_from_slice(&nonce);
    bytes(&ct, &mut body);
    body
}

/// Reading postcard by hand; `None` where the bytes end early.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.varint()? as usize;
        self.take(n)
    }
}

/// An envelope read and its signature checked as the document says: (author, channel,
/// body), or `None`.
fn open_envelope(wire: &[u8]) -> Option<([u8; 32], String, Vec<u8>)> {
    let unsigned = wire.get(..wire.len().checked_sub(64)?)?;
    let sig = ed25519_dalek::Signature::from_slice(&wire[unsigned.len()..]).ok()?;
    let mut r = Reader(unsigned);
    if r.take(1)? != [2] {
        return None;
    }
    let author: [u8; 32] = r.take(32)?.try_into().ok()?;
    let channel = String::from_utf8(r.bytes()?.to_vec()).ok()?;
    let (_sent_at, _seq) = (r.varint()?, r.varint()?);
    if r.take(1)? == [1] {
        r.take(32)?;
    }
    let body = r.bytes()?.to_vec();
    if !r.0.is_empty() {
        return None;
    }
    let mut signed = b"majlis/msg/v1\0".to_vec();
    signed.extend_from_slice(unsigned);
    ed25519_dalek::VerifyingKey::from_bytes(&author)
        .ok()?
        .verify_strict(&signed, &sig)
        .ok()?;
    Some((author, channel, body))
}

/// What a reader does with a body: keys granted to `me` are taken (checked against their
/// id), a sealed text is opened with a key held. Returns the text, if this body is one.
fn read_body(
    me: &ed25519_dalek::SigningKey,
    channel: &str,
    author: &[u8; 32],
    body: &[u8],
    held: &mut Vec<([u8; 16], [u8; 32])>,
) -> Option<String> {
    type Kem = hpke::kem::X25519HkdfSha256;
    let mut r = Reader(body);
    match r.varint()? {
        // Keys
        1 => {
            for _ in 0..r.varint()? {
                let key_id: [u8; 16] = r.take(16)?.try_into().ok()?;
                for _ in 0..r.varint()? {
                    let hint = r.take(8)?;
                    let sealed = r.bytes()?;
                    if hint != &me.verifying_key().as_bytes()[..8] || sealed.len() != 80 {
                        continue;
                    }
                    // The X25519 secret that goes with the Montgomery form of the public key.
                    let sk =
                        <Kem as hpke::Kem>::PrivateKey::from_bytes(&me.to_scalar_bytes()).ok()?;
                    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed[..32]).ok()?;
                    let mut info = b"majlis/grant/v1\0".to_vec();
                    info.extend_from_slice(channel.as_bytes());
                    let key = hpke::single_shot_open::<
                        hpke::aead::ChaCha20Poly1305,
                        hpke::kdf::HkdfSha256,
                        Kem,
                    >(
                        &hpke::OpModeR::Base,
                        &sk,
                        &enc,
                        &info,
                        &sealed[32..],
                        &key_id,
                    )
                    .ok()?;
                    let key: [u8; 32] = key.try_into().ok()?;
                    let id = &blake3::derive_key("majlis 2026-11 sender key id v1", &key)[..16];
                    if id == key_id {
                        held.push((key_id, key));
                    }
                }
            }
            None
        }
        // Sealed
        0 => {
            let key_id: [u8; 16] = r.take(16)?.try_into().ok()?;
            let nonce: [u8; 24] = r.take(24)?.try_into().ok()?;
            let ct = r.bytes()?;
            let (_, key) = held.iter().find(|(id, _)| *id == key_id)?;
            let mut aad = b"majlis/body/v2\0".to_vec();
            aad.extend_from_slice(channel.as_bytes());
            aad.push(0);
            aad.extend_from_slice(author);
            let plain = chacha20poly1305::XChaCha20Poly1305::new(key.into())
                .decrypt((&nonce).into(), Payload { msg: ct, aad: &aad })
                .ok()?;
            let mut p = Reader(&plain);
            match p.varint()? {
                0 => String::from_utf8(p.bytes()?.to_vec()).ok(),
                _ => None,
            }
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_client_follows_the_protocol_document_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let seed = [7u8; 32];
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let me = DeviceId(key.verifying_key().to_bytes());
    let admin = Profile::init(&dir.path().join("amina"), "amina").unwrap();
    let org = admin.org_create("acme").unwrap();
    let mut chain = admin.chain().unwrap();
    admin
        .change_roster(
            &mut chain,
            &RosterChange::AddMember {
                name: "tariq".into(),
                device: me,
                role: None,
            },
        )
        .unwrap();
    let amina = Node::start(admin, config()).await.unwrap();
    let addr = amina.listen_addrs().await.unwrap()[0].clone();

    // The topic: `majlis/1/<org tag>/<channel>`, the tag being the first 16 hex digits of
    // blake3 of the org id's 32 bytes (the mDNS `org` entry).
    let tag = &blake3::hash(&org.0).to_hex()[..16];
    let topic = gossipsub::IdentTopic::new(format!("majlis/1/{tag}/general"));
    // The transport: libp2p with this device's key as its identity.
    let mut client = Rogue::new(DeviceKey::from_seed(seed), &org);
    assert_eq!(client.topic.hash(), topic.hash(), "the documented topic");
    assert!(client.connect(&addr, amina.device_id().peer_id()).await);

    // A sender key, granted to amina's device, then a text sealed under it: seq 1 and 2.
    let mut sender_key = [0u8; 32];
    getrandom::getrandom(&mut sender_key).unwrap();
    let key_id: [u8; 16] = blake3::derive_key("majlis 2026-11 sender key id v1", &sender_key)[..16]
        .try_into()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let keys = keys_body(&sender_key, &key_id, "general", &amina.device_id());
    let (keys_wire, keys_id) = envelope(&key, "general", now, 1, None, &keys);
    let said = "written from the protocol document";
    let text = text_body(&sender_key, &key_id, "general", &me.0, said);
    let (text_wire, text_id) = envelope(&key, "general", now + 1, 2, Some(keys_id), &text);
    for wire in [keys_wire, text_wire] {
        client
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic.clone(), wire)
            .unwrap();
    }

    let mut shown = None;
    for _ in 0..100 {
        client.pump(100).await;
        let h = amina.history("general", 10).unwrap();
        if let Some(m) = h.into_iter().find(|m| m.id == MessageId(text_id)) {
            shown = Some(m);
            break;
        }
    }
    let m = shown.expect("amina's node took the message under the documented id");
    assert_eq!(m.text, said, "opened with the granted key");
    assert!(!m.locked);
    assert_eq!(m.sender, "tariq");
    assert_eq!(m.sent_at, now + 1);
    let stats = amina.stats().await.unwrap();
    assert!(
        stats.rejected.values().all(|n| *n == 0),
        "{:?}",
        stats.rejected
    );

    // And back: amina answers; the client reads it with the keys amina granted its device.
    let answer = "and read by it";
    amina.send("general", answer).await.unwrap();
    let mut held = Vec::new();
    let mut read = None;
    let _ = client
        .run_until(10, |ev| {
            let libp2p::swarm::SwarmEvent::Behaviour(majlis_core::net::BehaviourEvent::Gossipsub(
                gossipsub::Event::Message { message, .. },
            )) = ev
            else {
                return false;
            };
            let Some((author, channel, body)) = open_envelope(&message.data) else {
                return false;
            };
            assert_eq!(author, amina.device_id().0);
            read = read_body(&key, &channel, &author, &body, &mut held);
            read.is_some()
        })
        .await;
    assert_eq!(read.as_deref(), Some(answer), "keys held: {}", held.len());
}
