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

/// One CBOR item (RFC 8949), as far as the catch-up answer uses it.
#[derive(Debug)]
enum Cbor {
    Uint(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Cbor>),
    Map(Vec<(Cbor, Cbor)>),
    Bool(bool),
    Null,
}

impl Cbor {
    fn head(out: &mut Vec<u8>, major: u8, n: u64) {
        let m = major << 5;
        match n {
            0..=23 => out.push(m | n as u8),
            24..=0xff => out.extend([m | 24, n as u8]),
            0x100..=0xffff => {
                out.push(m | 25);
                out.extend((n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(m | 26);
                out.extend((n as u32).to_be_bytes());
            }
            _ => {
                out.push(m | 27);
                out.extend(n.to_be_bytes());
            }
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Cbor::Uint(n) => Self::head(out, 0, *n),
            Cbor::Bytes(b) => {
                Self::head(out, 2, b.len() as u64);
                out.extend(b);
            }
            Cbor::Text(t) => {
                Self::head(out, 3, t.len() as u64);
                out.extend(t.as_bytes());
            }
            Cbor::Array(v) => {
                Self::head(out, 4, v.len() as u64);
                v.iter().for_each(|x| x.write(out));
            }
            Cbor::Map(v) => {
                Self::head(out, 5, v.len() as u64);
                for (k, x) in v {
                    k.write(out);
                    x.write(out);
                }
            }
            Cbor::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
            Cbor::Null => out.push(0xf6),
        }
    }

    fn read(r: &mut Reader<'_>) -> Option<Cbor> {
        let first = r.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1f);
        let n = match info {
            0..=23 => u64::from(info),
            24 => u64::from(r.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes(r.take(2)?.try_into().ok()?)),
            26 => u64::from(u32::from_be_bytes(r.take(4)?.try_into().ok()?)),
            27 => u64::from_be_bytes(r.take(8)?.try_into().ok()?),
            _ => return None,
        };
        Some(match major {
            0 => Cbor::Uint(n),
            2 => Cbor::Bytes(r.take(n as usize)?.to_vec()),
            3 => Cbor::Text(String::from_utf8(r.take(n as usize)?.to_vec()).ok()?),
            4 => Cbor::Array((0..n).map(|_| Cbor::read(r)).collect::<Option<_>>()?),
            5 => Cbor::Map(
                (0..n)
                    .map(|_| Some((Cbor::read(r)?, Cbor::read(r)?)))
                    .collect::<Option<_>>()?,
            ),
            7 if info == 20 || info == 21 => Cbor::Bool(info == 21),
            7 if info == 22 => Cbor::Null,
            _ => return None,
        })
    }

    fn get(&self, key: &str) -> Option<&Cbor> {
        let Cbor::Map(v) = self else { return None };
        v.iter()
            .find(|(k, _)| matches!(k, Cbor::Text(t) if t == key))
            .map(|(_, x)| x)
    }

    fn text(t: &str) -> Cbor {
        Cbor::Text(t.into())
    }

    /// A device id: its 32 bytes as an array of integers.
    fn device(id: &[u8; 32]) -> Cbor {
        Cbor::Array(id.iter().map(|b| Cbor::Uint(u64::from(*b))).collect())
    }
}

/// libp2p request-response with the document's framing and nothing of Majlis's types: one
/// CBOR item per stream and direction, the writer closing its side after it.
#[derive(Clone, Default)]
struct Raw;

#[async_trait::async_trait]
impl libp2p::request_response::Codec for Raw {
    type Protocol = libp2p::StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        read_all(io, 1 << 20).await
    }

    async fn read_response<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        read_all(io, 32 << 20).await
    }

    async fn write_request<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()> {
        write_all(io, &req).await
    }

    async fn write_response<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> std::io::Result<()> {
        write_all(io, &res).await
    }
}

/// The stream to its end, at most `limit` bytes: one item.
async fn read_all<T: futures::AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: u64,
) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    futures::AsyncReadExt::read_to_end(&mut futures::AsyncReadExt::take(io, limit), &mut v).await?;
    Ok(v)
}

/// One item, then our side of the stream closed.
async fn write_all<T: futures::AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
) -> std::io::Result<()> {
    futures::AsyncWriteExt::write_all(io, bytes).await?;
    futures::AsyncWriteExt::close(io).await
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
    drop(client);

    // Catch-up, as a device that was away asks for it: "in general I hold my own log up to
    // seq 2 and nothing of anyone else's". The answer holds amina's key message and text.
    use libp2p::request_response::{self as rr, ProtocolSupport};
    let mut sync = client_swarm(&DeviceKey::from_seed(seed), |_| {
        rr::Behaviour::<Raw>::new(
            [(
                libp2p::StreamProtocol::new("/majlis/sync/1"),
                ProtocolSupport::Outbound,
            )],
            rr::Config::default(),
        )
    });
    sync.dial(addr).unwrap();
    let request = Cbor::Map(vec![
        (Cbor::text("channel"), Cbor::text("general")),
        (
            Cbor::text("have"),
            Cbor::Array(vec![Cbor::Array(vec![Cbor::device(&me.0), Cbor::Uint(2)])]),
        ),
        (Cbor::text("held"), Cbor::Array(vec![])),
        (Cbor::text("max_bytes"), Cbor::Null),
    ]);
    let mut bytes_out = Vec::new();
    request.write(&mut bytes_out);
    let amina_peer = amina.device_id().peer_id();
    let mut answer_bytes = None;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Ok(ev) =
        tokio::time::timeout_at(deadline, futures::StreamExt::select_next_some(&mut sync)).await
    {
        match ev {
            libp2p::swarm::SwarmEvent::ConnectionEstablished { peer_id, .. }
                if peer_id == amina_peer =>
            {
                sync.behaviour_mut()
                    .send_request(&amina_peer, bytes_out.clone());
            }
            libp2p::swarm::SwarmEvent::Behaviour(rr::Event::Message {
                message: rr::Message::Response { response, .. },
                ..
            }) => {
                answer_bytes = Some(response);
                break;
            }
            libp2p::swarm::SwarmEvent::Behaviour(rr::Event::OutboundFailure { error, .. }) => {
                panic!("the catch-up request failed: {error}")
            }
            _ => {}
        }
    }
    let answer_bytes = answer_bytes.expect("an answer to the catch-up request");
    let mut r = Reader(&answer_bytes);
    let reply = Cbor::read(&mut r).expect("one CBOR item");
    assert!(r.0.is_empty(), "nothing after it");
    assert!(
        matches!(reply.get("more"), Some(Cbor::Bool(false))),
        "{reply:?}"
    );
    let Some(Cbor::Array(messages)) = reply.get("messages") else {
        panic!("no messages: {reply:?}")
    };
    let mut held = Vec::new();
    let mut texts = Vec::new();
    for m in messages {
        let Cbor::Bytes(wire) = m else {
            panic!("a message that is not a byte string: {m:?}")
        };
        let (author, channel, body) = open_envelope(wire).expect("a valid envelope");
        assert_eq!(author, amina.device_id().0, "only what lies past `have`");
        texts.extend(read_body(&key, &channel, &author, &body, &mut held));
    }
    assert_eq!(texts, [answer]);
}
