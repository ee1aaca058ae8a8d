//! End-to-end encryption of message bodies: sender keys sealed to reader devices.
//!
//! Every message body (format 2) is a [`Content`]: either text sealed under a **sender key**
//! (XChaCha20-Poly1305, a random 32-byte key per channel, author device and epoch), or
//! **grants** that hand sender keys to reader devices, each sealed with HPKE (RFC 9180, base
//! mode, X25519-HKDF-SHA256 + ChaCha20-Poly1305) to the reader's X25519 key, which is the
//! Montgomery form of its ed25519 device key. Grants are ordinary signed messages in the
//! channel, so they are validated, stored by relays and caught up exactly like text, and a
//! reader never needs the sender to be online. This is the sender-keys design of Signal groups
//! and Matrix's Megolm, without the ratchet: who may read is the roster's decision, and a key
//! is rotated when a reader device leaves (docs/protocol.md has the rules and costs).
//!
//! No primitive here is ours: `hpke` and `chacha20poly1305` are RustCrypto-family crates; this
//! module only decides what is bound to what (domain tags, channel, author, key id).

use serde::{Deserialize, Serialize};

use crate::identity::{DeviceId, DeviceKey};

/// A key's public name: `blake3::derive_key` of the key, first 16 bytes. Anyone may pass a
/// key on; the receiver checks that it hashes to the id a message names, so a wrong key is
/// simply not taken.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyId(pub [u8; 16]);

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A sender key. Zeroed when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelKey(pub [u8; 32]);

impl Drop for ChannelKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl ChannelKey {
    pub fn generate() -> ChannelKey {
        let mut k = [0u8; 32];
        getrandom::getrandom(&mut k).expect("OS RNG");
        ChannelKey(k)
    }

    pub fn id(&self) -> KeyId {
        let h = blake3::derive_key("majlis 2026-11 sender key id v1", &self.0);
        let mut id = [0u8; 16];
        id.copy_from_slice(&h[..16]);
        KeyId(id)
    }
}

/// What a format-2 body holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// A [`Plain`] sealed under the sender key `key`.
    Sealed {
        key: KeyId,
        nonce: [u8; 24],
        #[serde(with = "serde_bytes")]
        ciphertext: Vec<u8>,
    },
    /// Sender keys for reader devices.
    Keys(Vec<Bundle>),
    /// A shared file: which blob (in the clear, so that relays can store and serve it) and
    /// a [`Plain::File`] sealed under the sender key `key` (name, size, file key, caption).
    File {
        blob: crate::files::BlobRef,
        key: KeyId,
        nonce: [u8; 24],
        #[serde(with = "serde_bytes")]
        ciphertext: Vec<u8>,
    },
    /// A [`Plain`] sealed like [`Content::Sealed`] that can only be a reaction or a vote (a
    /// reader's answer): the readers of a channel where an admin let only some post (news
    /// from management) react to it and vote in its polls with these. The tag is in the
    /// clear so that every node, relays included, can take one from a reader who may not
    /// post; a reader opens it and shows nothing unless it is a reaction or a vote.
    Response {
        key: KeyId,
        nonce: [u8; 24],
        #[serde(with = "serde_bytes")]
        ciphertext: Vec<u8>,
    },
    /// A [`Plain`] sealed like [`Content::Sealed`] that can only be a reply in a thread: a
    /// reader's reply where an admin let the readers of a channel in which only some post
    /// reply in its threads ([`crate::roster::Roster::replies`]). Tagged in the clear, as
    /// [`Content::Response`] is, so that every node takes it from such a reader and from no
    /// other; a reader opens it and shows nothing unless it is a reply in a thread.
    ThreadReply {
        key: KeyId,
        nonce: [u8; 24],
        #[serde(with = "serde_bytes")]
        ciphertext: Vec<u8>,
    },
}

/// Whether `plain` may travel as a [`Content::Response`]: reacting, voting and saying what
/// one has read (a read receipt), nothing else.
pub fn is_response(plain: &Plain) -> bool {
    matches!(
        plain,
        Plain::React { .. } | Plain::Vote { .. } | Plain::Read { .. }
    )
}

/// The tags under which a reader who may not post writes: [`Content::Response`] and
/// [`Content::ThreadReply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderTag {
    Answer,
    ThreadReply,
}

impl ReaderTag {
    /// `plain` sealed like text (see [`seal`]) but under this tag.
    pub fn seal(
        self,
        key: &ChannelKey,
        channel: &str,
        author: &DeviceId,
        plain: &Plain,
    ) -> Content {
        let (key, (nonce, ciphertext)) = (key.id(), seal_bytes(key, channel, author, plain));
        match self {
            ReaderTag::Answer => Content::Response {
                key,
                nonce,
                ciphertext,
            },
            ReaderTag::ThreadReply => Content::ThreadReply {
                key,
                nonce,
                ciphertext,
            },
        }
    }

    /// Whether `plain` may travel under this tag ([`is_response`], [`is_thread_reply`]):
    /// a reader who opens one shows nothing else.
    pub fn holds(self, plain: &Plain) -> bool {
        match self {
            ReaderTag::Answer => is_response(plain),
            ReaderTag::ThreadReply => is_thread_reply(plain),
        }
    }
}

/// Whether `plain` may travel as a [`Content::ThreadReply`]: a reply in a thread (not one
/// also sent to the channel, which would be posting in it), and the edit or deletion with
/// which a reader takes back its own words (receivers apply one only from the author of
/// what it names, or an admin's deletion).
pub fn is_thread_reply(plain: &Plain) -> bool {
    matches!(
        plain,
        Plain::Reply {
            also_channel: false,
            ..
        } | Plain::Edit { .. }
            | Plain::Delete { .. }
    )
}

/// One key, sealed to each of several devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub key: KeyId,
    pub grants: Vec<Grant>,
}

/// A key sealed to one device: `hint` is the first 8 bytes of its device id (a device only
/// tries the grants that name it), `sealed` is HPKE's encapsulated key (32) then the
/// ciphertext of the 32-byte key with its tag (48).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub hint: [u8; 8],
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

pub const GRANT_BYTES: usize = 80;
/// Grants per message: keeps a key message under the envelope cap (≈ 90 bytes a grant).
pub const MAX_GRANTS_PER_MESSAGE: usize = 320;

/// What a reader sees once a sealed body is opened. An enum so later kinds (files, edits)
/// extend it without a new envelope format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Plain {
    Text(String),
    File(crate::files::FileInfo),
    /// A reply in the thread of `to` (see [`crate::conversation`]). New kinds go last:
    /// the variant index is the wire tag.
    Reply {
        to: crate::message::MessageId,
        text: String,
        also_channel: bool,
    },
    Edit {
        of: crate::message::MessageId,
        text: String,
    },
    Delete {
        of: crate::message::MessageId,
    },
    React {
        to: crate::message::MessageId,
        emoji: String,
        on: bool,
    },
    Read {
        upto: crate::message::MessageId,
    },
    /// The channel's topic and description (the latest one stands).
    Topic {
        topic: String,
        description: String,
    },
    /// `of` is pinned to its channel (`on`), or unpinned.
    Pin {
        of: crate::message::MessageId,
        on: bool,
    },
    /// The member joins (`on`) or leaves an open channel.
    Join {
        on: bool,
    },
    /// Another message's text, forwarded here by this message's author from where it was
    /// said (see [`crate::conversation::Forwarded`]).
    Forward {
        text: String,
        from: crate::conversation::Forwarded,
    },
    /// A question with options, which readers answer with [`Plain::Vote`] (see
    /// [`crate::conversation::check_poll`]); `multi`: a reader may choose several.
    Poll {
        question: String,
        options: Vec<String>,
        multi: bool,
    },
    /// Its member's answer to `poll`: indices into its options, ascending; none takes the
    /// answer back. The member's latest vote stands.
    Vote {
        poll: crate::message::MessageId,
        choices: Vec<u8>,
    },
    /// The poll `of` takes no more votes (from its author or an admin).
    ClosePoll {
        of: crate::message::MessageId,
    },
    /// Its member saved `of` for later (`on`), or took it off the list: posted only in the
    /// member's own notes (see [`crate::roster::notes_of`]), so the list is the same on each
    /// of their devices; the latest one for each message stands.
    Save {
        of: crate::message::MessageId,
        on: bool,
    },
    /// A file forwarded here by this message's author from where it was shared: the same
    /// bytes, encrypted again under a new file key for this channel's readers (so it is a
    /// new blob), with where it came from (see [`crate::conversation::Forwarded`]).
    ForwardFile {
        file: crate::files::FileInfo,
        from: crate::conversation::Forwarded,
    },
    /// Its member is to be reminded of `of` at `at` (ms since the epoch; `on`), or no
    /// longer: posted only in the member's own notes, so that each of their devices keeps
    /// and says the reminder (see `node::remind`).
    Remind {
        of: crate::message::MessageId,
        at: u64,
        on: bool,
    },
    /// Its member paused desktop notifications until `until` (ms since the epoch; `u64::MAX`:
    /// until resumed; 0: resumed) on one of their devices: posted only in their own notes,
    /// so that each of their devices pauses (or resumes) alike.
    Pause {
        until: u64,
    },
    /// Its member chose how they are notified of `channel` (every message, the usual, or
    /// nothing) on one of their devices: posted only in their own notes, so that each of
    /// their devices notifies alike.
    Notify {
        channel: String,
        notify: crate::conversation::Notify,
    },
    /// Its member set when their devices raise notifications (`None`: any time) on one of
    /// them: posted only in their own notes, so that each of their devices keeps the same
    /// hours.
    Hours {
        hours: Option<crate::conversation::Hours>,
    },
    /// Its member starred `channel` (`on`: listed first in their sidebar) or unstarred it,
    /// on one of their devices: posted only in their own notes, so that each of their
    /// devices lists it alike.
    Star {
        channel: String,
        on: bool,
    },
    /// Its member marked `channel` unread from the message sent at `from` (ms since the
    /// epoch) on one of their devices, or (`from` 0) opened it again there: posted only in
    /// their own notes, so that each of their devices counts it alike.
    Unread {
        channel: String,
        from: u64,
    },
    /// Its member saw the thread hanging from `thread` up to its reply sent at `upto` (ms
    /// since the epoch) on one of their devices: posted only in their own notes, so that a
    /// reply seen on one is not new on the others.
    Seen {
        thread: crate::message::MessageId,
        upto: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum E2eError {
    #[error("malformed sealed body: {0}")]
    Malformed(String),
    #[error("device key is not a valid curve point")]
    BadDevice,
    #[error("encryption failed")]
    Seal,
}

impl Content {
    /// The sender key a body is sealed under; `None` for key grants.
    pub fn key_id(&self) -> Option<KeyId> {
        match self {
            Content::Sealed { key, .. }
            | Content::File { key, .. }
            | Content::Response { key, .. }
            | Content::ThreadReply { key, .. } => Some(*key),
            Content::Keys(_) => None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("content serializes")
    }

    /// Structural checks only (sizes, canonical encoding); keys are checked when opened.
    pub fn decode(body: &[u8]) -> Result<Content, E2eError> {
        let bad = |e: String| E2eError::Malformed(e);
        let (c, rest): (Content, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| bad(e.to_string()))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes".into()));
        }
        if let Content::File { blob, .. } = &c {
            blob.check().map_err(bad)?;
        }
        if let Content::Keys(bundles) = &c {
            let n: usize = bundles.iter().map(|b| b.grants.len()).sum();
            if bundles.is_empty() || n > MAX_GRANTS_PER_MESSAGE {
                return Err(bad(format!("{n} grants in one message")));
            }
            if bundles
                .iter()
                .flat_map(|b| &b.grants)
                .any(|g| g.sealed.len() != GRANT_BYTES)
            {
                return Err(bad("a grant is not 80 bytes".into()));
            }
        }
        Ok(c)
    }
}

fn body_aad(channel: &str, author: &DeviceId) -> Vec<u8> {
    let mut aad = b"majlis/body/v2\0".to_vec();
    aad.extend_from_slice(channel.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&author.0);
    aad
}

/// Seal `plain` for `channel` as `author` under `key`. The channel and author are bound in
/// as associated data, so a ciphertext cannot be replayed into another channel or under
/// another author's signature.
pub fn seal(key: &ChannelKey, channel: &str, author: &DeviceId, plain: &Plain) -> Content {
    let (nonce, ciphertext) = seal_bytes(key, channel, author, plain);
    Content::Sealed {
        key: key.id(),
        nonce,
        ciphertext,
    }
}

/// A shared file's message body: the blob in the clear, what it is (`described`: a
/// [`Plain::File`] or [`Plain::ForwardFile`]) sealed like text.
pub fn seal_file(
    key: &ChannelKey,
    channel: &str,
    author: &DeviceId,
    blob: crate::files::BlobRef,
    described: &Plain,
) -> Content {
    let (nonce, ciphertext) = seal_bytes(key, channel, author, described);
    Content::File {
        blob,
        key: key.id(),
        nonce,
        ciphertext,
    }
}

/// The nonce and ciphertext of `plain` as [`seal`] describes it.
fn seal_bytes(
    key: &ChannelKey,
    channel: &str,
    author: &DeviceId,
    plain: &Plain,
) -> ([u8; 24], Vec<u8>) {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let cipher = chacha20poly1305::XChaCha20Poly1305::new((&key.0).into());
    let mut nonce = [0u8; 24];
    getrandom::getrandom(&mut nonce).expect("OS RNG");
    let msg = postcard::to_stdvec(plain).expect("plain serializes");
    let aad = body_aad(channel, author);
    let ciphertext = cipher
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: &msg,
                aad: &aad,
            },
        )
        .expect("XChaCha20-Poly1305 encrypts any length we allow");
    (nonce, ciphertext)
}

/// Open a sealed body; `None` if the key is wrong or anything was changed.
pub fn open(
    key: &ChannelKey,
    channel: &str,
    author: &DeviceId,
    nonce: &[u8; 24],
    ciphertext: &[u8],
) -> Option<Plain> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let cipher = chacha20poly1305::XChaCha20Poly1305::new((&key.0).into());
    let aad = body_aad(channel, author);
    let msg = cipher
        .decrypt(
            nonce.into(),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .ok()?;
    postcard::from_bytes(&msg).ok()
}

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;

fn grant_info(channel: &str) -> Vec<u8> {
    let mut info = b"majlis/grant/v1\0".to_vec();
    info.extend_from_slice(channel.as_bytes());
    info
}

pub fn hint(device: &DeviceId) -> [u8; 8] {
    let mut h = [0u8; 8];
    h.copy_from_slice(&device.0[..8]);
    h
}

/// Seal `key` (of `channel`) to device `to`.
pub fn grant(key: &ChannelKey, channel: &str, to: &DeviceId) -> Result<Grant, E2eError> {
    use hpke::{Deserializable, Serializable};
    let pk_bytes = to.x25519_public().ok_or(E2eError::BadDevice)?;
    let pk =
        <Kem as hpke::Kem>::PublicKey::from_bytes(&pk_bytes).map_err(|_| E2eError::BadDevice)?;
    let (enc, ct) = hpke::single_shot_seal::<Aead, Kdf, Kem, _>(
        &hpke::OpModeS::Base,
        &pk,
        &grant_info(channel),
        &key.0,
        &key.id().0,
        &mut rand_core::TryRngCore::unwrap_err(rand_core::OsRng),
    )
    .map_err(|_| E2eError::Seal)?;
    let mut sealed = enc.to_bytes().to_vec();
    sealed.extend_from_slice(&ct);
    Ok(Grant {
        hint: hint(to),
        sealed,
    })
}

/// Open a grant addressed to `me`; `None` unless it yields exactly the key `id` names.
pub fn accept_grant(me: &DeviceKey, channel: &str, id: &KeyId, g: &Grant) -> Option<ChannelKey> {
    use hpke::Deserializable;
    if g.hint != hint(&me.id()) || g.sealed.len() != GRANT_BYTES {
        return None;
    }
    let mut secret = me.x25519_secret();
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&secret).ok();
    zeroize::Zeroize::zeroize(&mut secret);
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&g.sealed[..32]).ok()?;
    let mut pt = hpke::single_shot_open::<Aead, Kdf, Kem>(
        &hpke::OpModeR::Base,
        &sk?,
        &enc,
        &grant_info(channel),
        &g.sealed[32..],
        &id.0,
    )
    .ok()?;
    let key = <[u8; 32]>::try_from(pt.as_slice()).ok().map(ChannelKey);
    zeroize::Zeroize::zeroize(&mut pt);
    key.filter(|k| k.id() == *id)
}

/// Key messages that give `keys` to `to`, split so each fits in one envelope.
pub fn grant_all(
    keys: &[ChannelKey],
    channel: &str,
    to: &[DeviceId],
) -> Result<Vec<Content>, E2eError> {
    let mut out = Vec::new();
    let mut bundles: Vec<Bundle> = Vec::new();
    let mut n = 0;
    for key in keys {
        for chunk in to.chunks(MAX_GRANTS_PER_MESSAGE) {
            let mut grants = Vec::with_capacity(chunk.len());
            for d in chunk {
                if n == MAX_GRANTS_PER_MESSAGE {
                    if !grants.is_empty() {
                        bundles.push(Bundle {
                            key: key.id(),
                            grants: std::mem::take(&mut grants),
                        });
                    }
                    out.push(Content::Keys(std::mem::take(&mut bundles)));
                    n = 0;
                }
                grants.push(grant(key, channel, d)?);
                n += 1;
            }
            if !grants.is_empty() {
                bundles.push(Bundle {
                    key: key.id(),
                    grants,
                });
            }
        }
    }
    if !bundles.is_empty() {
        out.push(Content::Keys(bundles));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_only_with_its_key_channel_and_author() {
        let a = DeviceKey::generate().id();
        let k = ChannelKey::generate();
        let Content::Sealed {
            key,
            nonce,
            ciphertext,
        } = seal(&k, "hr", &a, &Plain::Text("salary review".into()))
        else {
            panic!()
        };
        assert_eq!(key, k.id());
        assert_eq!(
            open(&k, "hr", &a, &nonce, &ciphertext),
            Some(Plain::Text("salary review".into()))
        );
        assert!(!String::from_utf8_lossy(&ciphertext).contains("salary"));
        assert_eq!(
            open(&ChannelKey::generate(), "hr", &a, &nonce, &ciphertext),
            None
        );
        assert_eq!(open(&k, "general", &a, &nonce, &ciphertext), None);
        let b = DeviceKey::generate().id();
        assert_eq!(open(&k, "hr", &b, &nonce, &ciphertext), None);
        let mut bad = ciphertext.clone();
        bad[0] ^= 1;
        assert_eq!(open(&k, "hr", &a, &nonce, &bad), None);
    }

    #[test]
    fn a_grant_opens_only_for_its_device() {
        let me = DeviceKey::generate();
        let other = DeviceKey::generate();
        let k = ChannelKey::generate();
        let g = grant(&k, "hr", &me.id()).unwrap();
        assert_eq!(g.sealed.len(), GRANT_BYTES);
        assert!(accept_grant(&me, "hr", &k.id(), &g) == Some(k.clone()));
        assert!(accept_grant(&me, "ops", &k.id(), &g).is_none());
        assert!(accept_grant(&me, "hr", &ChannelKey::generate().id(), &g).is_none());
        let mut stolen = g.clone();
        stolen.hint = hint(&other.id());
        assert!(accept_grant(&other, "hr", &k.id(), &stolen).is_none());
    }

    #[test]
    fn grants_for_a_thousand_devices_split_into_messages_under_the_cap() {
        let devices: Vec<DeviceId> = (0..1000).map(|_| DeviceKey::generate().id()).collect();
        let k = ChannelKey::generate();
        let msgs = grant_all(std::slice::from_ref(&k), "general", &devices).unwrap();
        assert_eq!(msgs.len(), 1000usize.div_ceil(MAX_GRANTS_PER_MESSAGE));
        let mut n = 0;
        for m in &msgs {
            let bytes = m.encode();
            assert!(
                bytes.len() <= crate::message::MAX_BODY_BYTES,
                "{}",
                bytes.len()
            );
            let Content::Keys(b) = Content::decode(&bytes).unwrap() else {
                panic!()
            };
            n += b.iter().map(|b| b.grants.len()).sum::<usize>();
        }
        assert_eq!(n, 1000);
    }

    #[test]
    fn malformed_content_is_an_error_not_a_panic() {
        for bytes in [&[][..], &[9], &[1, 1, 0, 5], &[0; 60]] {
            let _ = Content::decode(bytes);
        }
        let too_many = Content::Keys(vec![Bundle {
            key: KeyId([0; 16]),
            grants: vec![
                Grant {
                    hint: [0; 8],
                    sealed: vec![0; GRANT_BYTES]
                };
                MAX_GRANTS_PER_MESSAGE + 1
            ],
        }]);
        assert!(Content::decode(&too_many.encode()).is_err());
    }
}
