//! Device and organization keys.
//!
//! A device's ed25519 key is both its message-signing key and its libp2p identity, so the
//! device id users copy around *is* the libp2p `PeerId`: a connection authenticated by noise
//! is already bound to the roster entry, with no second key to keep in sync.
//!
//! The org root key is a different key on purpose: it signs the first roster and can always
//! sign a new one, so losing any one laptop never orphans the organization.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::seal::DataKey;

/// An ed25519 peer id's bytes before the key: multihash code 0 (identity), length 36, then
/// the protobuf `PublicKey { Type: Ed25519 (1), Data: 32 bytes }` header.
const PEER_ID_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

/// A device id: the device's ed25519 public key. Shown as its libp2p `PeerId` string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub [u8; 32]);

impl DeviceId {
    /// The libp2p peer id of this key: the identity multihash of the key's protobuf
    /// encoding (libp2p's peer-id spec; `PEER_ID_PREFIX`), built from the bytes. libp2p's
    /// own route decompresses the curve point first, ~5 µs, and this runs for every message
    /// received. Bytes that are not a valid key still give a peer id, one no connection can
    /// have (noise proves a real key), so a caller matching it against peers fails closed.
    pub fn peer_id(&self) -> PeerId {
        let mut mh = [0u8; PEER_ID_PREFIX.len() + 32];
        mh[..PEER_ID_PREFIX.len()].copy_from_slice(&PEER_ID_PREFIX);
        mh[PEER_ID_PREFIX.len()..].copy_from_slice(&self.0);
        PeerId::from_bytes(&mh).unwrap_or_else(|_| PeerId::random())
    }

    pub fn from_peer_id(peer: &PeerId) -> Option<DeviceId> {
        let pk = libp2p::identity::PublicKey::try_decode_protobuf(peer.as_ref().digest()).ok()?;
        let ed = pk.try_into_ed25519().ok()?;
        Some(DeviceId(ed.to_bytes()))
    }

    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&self.0).ok()
    }

    /// The device's X25519 public key for sealing keys to it: the Montgomery form of its
    /// ed25519 key (the map libsodium's `crypto_sign_ed25519_pk_to_curve25519` and age's
    /// ssh-ed25519 recipients use), so the roster's one key per device serves both.
    pub fn x25519_public(&self) -> Option<[u8; 32]> {
        Some(self.verifying_key()?.to_montgomery().to_bytes())
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.peer_id())
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

impl FromStr for DeviceId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "'{s}' is not a device id (the device shows its id in its settings)"
            ))
        };
        let peer = PeerId::from_str(s.trim()).map_err(|_| bad())?;
        DeviceId::from_peer_id(&peer).ok_or_else(bad)
    }
}

/// An org id: a hash of the org root public key. Members join with it; a roster is accepted
/// only if its root key hashes to it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrgId(pub [u8; 32]);

impl OrgId {
    pub fn from_root_key(root: &[u8; 32]) -> OrgId {
        let mut h = blake3::Hasher::new();
        h.update(b"majlis/org/v1");
        h.update(root);
        OrgId(*h.finalize().as_bytes())
    }

    /// A short tag for mDNS: enough to filter other orgs' nodes, not a secret.
    pub fn discovery_tag(&self) -> String {
        let h = blake3::hash(&self.0);
        h.to_hex()[..16].to_string()
    }
}

/// The code a device waiting to join shows on its screen and its admin sees beside its
/// request: twelve digits, `4821 3902 1138`, from the org id and the device id together.
///
/// Why: a request to join (an mDNS record naming the member, or a turned-away connection)
/// says nothing anyone checked; anyone on the LAN can ask under any name. Before adding it,
/// the admin compares this code with the one on the newcomer's screen, read out or seen. Equal
/// codes mean the same device key (the admin adds the device the newcomer holds, not an
/// impostor asking under the same name) and the same org (the newcomer is not answering
/// another org's admin). 40 bits: to match a code, an impostor must make about 10^12 keys
/// while the request waits, and the org id is in the hash, so no table can be made ahead.
pub fn join_code(org: &OrgId, device: &DeviceId) -> String {
    let mut h = blake3::Hasher::new_derive_key("majlis 2026 join code v1");
    h.update(&org.0);
    h.update(&device.0);
    let mut n = [0u8; 8];
    n.copy_from_slice(&h.finalize().as_bytes()[..8]);
    let d = format!("{:012}", u64::from_le_bytes(n) % 1_000_000_000_000);
    format!("{} {} {}", &d[..4], &d[4..8], &d[8..])
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgId({self})")
    }
}

impl FromStr for OrgId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "'{s}' is not an org id (an admin of the org can show it)"
            ))
        };
        let v = bs58::decode(s.trim()).into_vec().map_err(|_| bad())?;
        Ok(OrgId(v.try_into().map_err(|_| bad())?))
    }
}

/// Text in human-readable formats (JSON), raw 32 bytes in binary ones (the wire).
macro_rules! key_serde {
    ($t:ident) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    self.0.serialize(s)
                }
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    s.parse().map_err(serde::de::Error::custom)
                } else {
                    Ok($t(<[u8; 32]>::deserialize(d)?))
                }
            }
        }
    };
}
key_serde!(DeviceId);
key_serde!(OrgId);

/// Verify an ed25519 signature strictly (rejects malleable and small-order forms), so that
/// one signed document has exactly one accepted signature.
pub fn verify(key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    match verifying_key(key) {
        Some(vk) => vk
            .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
            .is_ok(),
        None => false,
    }
}

/// How many decompressed keys a thread keeps (see [`verifying_key`]).
const KEYS_KEPT: usize = 4096;

/// `key` as a point, for checking signatures. Decompressing a key costs about a fifth of a
/// signature check, and a node checks the same few roster keys over and over (every
/// message of an author, one by one on the gossip path): each thread keeps the keys it has
/// decompressed. Bounded, and emptied when full: a frame's signature is checked before its
/// author is known to be on the roster, so a flood of made-up keys must not make it grow.
pub fn verifying_key(key: &[u8; 32]) -> Option<VerifyingKey> {
    thread_local! {
        static KEYS: std::cell::RefCell<std::collections::HashMap<[u8; 32], VerifyingKey>> =
            Default::default();
    }
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        if let Some(vk) = keys.get(key) {
            return Some(*vk);
        }
        let vk = VerifyingKey::from_bytes(key).ok()?;
        if keys.len() >= KEYS_KEPT {
            keys.clear();
        }
        keys.insert(*key, vk);
        Some(vk)
    })
}

/// How a key file is protected at rest.
#[derive(Clone, Copy)]
pub enum KeyLock<'a> {
    /// Sealed under the data directory's data key (see [`crate::seal`]).
    Data(&'a DataKey),
    /// Sealed under a passphrase (argon2id): the org root key, usable only by whoever
    /// knows it, wherever the file is copied.
    Passphrase(&'a [u8]),
}

impl KeyLock<'_> {
    fn seal(self, aad: &[u8], seed: &[u8; 32]) -> Result<Vec<u8>> {
        match self {
            KeyLock::Data(k) => Ok(k.seal(aad, seed)),
            KeyLock::Passphrase(p) => crate::seal::seal_with_passphrase(p, aad, seed),
        }
    }

    fn open(self, aad: &[u8], bytes: &[u8], path: &Path) -> Result<[u8; 32]> {
        let plain = match self {
            KeyLock::Data(k) => k.open(aad, bytes).map_err(|e| {
                Error::Corrupt(format!(
                    "key file {}: {e}; restore it (and its data key) from your backup",
                    path.display()
                ))
            })?,
            KeyLock::Passphrase(p) => crate::seal::open_with_passphrase(p, aad, bytes)?,
        };
        plain.try_into().map_err(|_| {
            Error::Corrupt(format!("key file {} holds no 32-byte seed", path.display()))
        })
    }
}

/// An ed25519 seed in an owner-only file, sealed by a [`KeyLock`]. A bare 32-byte file is a
/// seed written by a release before sealing: still read, and re-sealed by the caller.
struct SecretFile;

impl SecretFile {
    fn create(path: &Path, lock: KeyLock<'_>, aad: &[u8]) -> Result<SigningKey> {
        let mut seed = [0u8; 32];
        getrandom(&mut seed)?;
        let sealed = lock.seal(aad, &seed)?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Invalid(format!(
                    "{} already exists; refusing to overwrite a key (move it away first if you really mean to)",
                    path.display()
                ))
            } else {
                Error::io(path, e)
            }
        })?;
        f.write_all(&sealed).map_err(|e| Error::io(path, e))?;
        f.sync_all().map_err(|e| Error::io(path, e))?;
        Ok(SigningKey::from_bytes(&seed))
    }

    /// The key, and whether the file was a legacy plaintext seed.
    fn load(path: &Path, lock: KeyLock<'_>, aad: &[u8]) -> Result<(SigningKey, bool)> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        if let Ok(seed) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok((SigningKey::from_bytes(&seed), true));
        }
        let seed = lock.open(aad, &bytes, path)?;
        Ok((SigningKey::from_bytes(&seed), false))
    }

    /// Replace the file with `key` sealed by `lock` (atomically).
    fn store(path: &Path, key: &SigningKey, lock: KeyLock<'_>, aad: &[u8]) -> Result<()> {
        crate::seal::write_private(path, &lock.seal(aad, &key.to_bytes())?)
    }
}

const DEVICE_AAD: &[u8] = b"majlis/device-key/v1";
const ROOT_AAD: &[u8] = b"majlis/org-root-key/v1";

fn getrandom(buf: &mut [u8]) -> Result<()> {
    getrandom::getrandom(buf)
        .map_err(|e| Error::Invalid(format!("the OS random number generator failed: {e}")))
}

/// This device's key pair.
#[derive(Clone)]
pub struct DeviceKey {
    signing: SigningKey,
}

impl DeviceKey {
    pub fn generate() -> DeviceKey {
        let mut seed = [0u8; 32];
        getrandom(&mut seed).expect("OS RNG");
        DeviceKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }
    /// A key from a fixed seed, so a seeded simulation is the same run every time. Never
    /// for a real device: its secret is whatever the seed is.
    pub fn from_seed(seed: [u8; 32]) -> DeviceKey {
        DeviceKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }
    pub fn create(path: &Path, lock: KeyLock<'_>) -> Result<DeviceKey> {
        Ok(DeviceKey {
            signing: SecretFile::create(path, lock, DEVICE_AAD)?,
        })
    }
    /// The key, and whether its file was a legacy plaintext seed (re-seal it with `store`).
    pub fn load(path: &Path, lock: KeyLock<'_>) -> Result<(DeviceKey, bool)> {
        let (signing, legacy) = SecretFile::load(path, lock, DEVICE_AAD)?;
        Ok((DeviceKey { signing }, legacy))
    }
    pub fn store(&self, path: &Path, lock: KeyLock<'_>) -> Result<()> {
        SecretFile::store(path, &self.signing, lock, DEVICE_AAD)
    }
    pub fn id(&self) -> DeviceId {
        DeviceId(self.signing.verifying_key().to_bytes())
    }
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }
    /// The X25519 secret matching [`DeviceId::x25519_public`]: the ed25519 secret scalar.
    pub fn x25519_secret(&self) -> [u8; 32] {
        self.signing.to_scalar_bytes()
    }
    /// The same key as a libp2p identity, so noise authenticates the device id.
    pub fn libp2p_keypair(&self) -> libp2p::identity::Keypair {
        libp2p::identity::Keypair::ed25519_from_bytes(self.signing.to_bytes())
            .expect("32-byte seed is always a valid ed25519 secret")
    }
}

/// The organization root key. Kept apart from device keys; see docs/ARCHITECTURE.md for backup.
#[derive(Clone)]
pub struct OrgKey {
    signing: SigningKey,
}

impl OrgKey {
    pub fn generate() -> OrgKey {
        OrgKey {
            signing: DeviceKey::generate().signing,
        }
    }
    /// See [`DeviceKey::from_seed`]: simulations only.
    pub fn from_seed(seed: [u8; 32]) -> OrgKey {
        OrgKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }
    pub fn create(path: &Path, lock: KeyLock<'_>) -> Result<OrgKey> {
        Ok(OrgKey {
            signing: SecretFile::create(path, lock, ROOT_AAD)?,
        })
    }
    /// The key, and whether its file was a legacy plaintext seed.
    pub fn load(path: &Path, lock: KeyLock<'_>) -> Result<(OrgKey, bool)> {
        let (signing, legacy) = SecretFile::load(path, lock, ROOT_AAD)?;
        Ok((OrgKey { signing }, legacy))
    }
    pub fn store(&self, path: &Path, lock: KeyLock<'_>) -> Result<()> {
        SecretFile::store(path, &self.signing, lock, ROOT_AAD)
    }
    pub fn public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }
    pub fn org_id(&self) -> OrgId {
        OrgId::from_root_key(&self.public())
    }
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_code_names_one_device_in_one_org() {
        let (a, b) = (DeviceKey::generate().id(), DeviceKey::generate().id());
        let (org, other) = (OrgId([1; 32]), OrgId([2; 32]));
        let code = join_code(&org, &a);
        // Twelve digits in three groups, the same every time it is made.
        assert_eq!(code.len(), 14);
        assert!(code
            .split(' ')
            .all(|g| g.len() == 4 && g.bytes().all(|c| c.is_ascii_digit())));
        assert_eq!(code, join_code(&org, &a));
        assert_ne!(code, join_code(&org, &b), "another device, the same code");
        assert_ne!(code, join_code(&other, &a), "another org, the same code");
        // Known answer: a code must not change between releases (the newcomer's and the
        // admin's app may differ).
        assert_eq!(
            join_code(&OrgId([7; 32]), &DeviceId([9; 32])),
            "2134 9216 9286"
        );
    }

    #[test]
    fn a_kept_key_checks_signatures_as_a_fresh_one_and_the_store_of_keys_stays_bounded() {
        let k = DeviceKey::generate();
        let sig = k.sign(b"hello");
        for _ in 0..2 {
            assert!(verify(&k.id().0, b"hello", &sig));
            assert!(
                !verify(&k.id().0, b"hellO", &sig),
                "a kept key let a forgery through"
            );
        }
        // More distinct keys than are kept: each still checks right, and the store empties
        // rather than grows.
        let keys: Vec<DeviceKey> = (0..KEYS_KEPT + 10).map(|_| DeviceKey::generate()).collect();
        for key in &keys {
            assert_eq!(verifying_key(&key.id().0), key.id().verifying_key());
        }
        assert!(verify(&k.id().0, b"hello", &sig));
        let not_a_point = (0..=255u8)
            .map(|i| [i; 32])
            .find(|b| VerifyingKey::from_bytes(b).is_err())
            .expect("most byte strings are not points");
        assert_eq!(verifying_key(&not_a_point), None);
    }

    #[test]
    fn device_id_round_trips_through_peer_id_text() {
        let k = DeviceKey::generate();
        let s = k.id().to_string();
        assert_eq!(s, k.libp2p_keypair().public().to_peer_id().to_string());
        assert_eq!(DeviceId::from_str(&s).unwrap(), k.id());
        assert!(DeviceId::from_str("not-a-device").is_err());
    }

    #[test]
    fn peer_id_from_the_bytes_is_libp2ps_and_an_invalid_key_matches_no_one() {
        for _ in 0..64 {
            let k = DeviceKey::generate();
            assert_eq!(k.id().peer_id(), k.libp2p_keypair().public().to_peer_id());
            assert_eq!(DeviceId::from_peer_id(&k.id().peer_id()), Some(k.id()));
        }
        // Not a point on the curve (y = 2 has no x): a peer id no key has, and not one
        // that turns back into a device.
        let mut bad = [0u8; 32];
        bad[0] = 2;
        assert!(VerifyingKey::from_bytes(&bad).is_err());
        let p = DeviceId(bad).peer_id();
        assert_eq!(DeviceId::from_peer_id(&p), None);
        assert_ne!(p, DeviceKey::generate().id().peer_id());
    }

    #[test]
    fn org_id_round_trips() {
        let k = OrgKey::generate();
        let s = k.org_id().to_string();
        assert_eq!(OrgId::from_str(&s).unwrap(), k.org_id());
        assert!(OrgId::from_str("111").is_err());
    }

    #[test]
    fn key_file_is_owner_only_and_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("device.key");
        let dk = DataKey::generate();
        let lock = KeyLock::Data(&dk);
        let k = DeviceKey::create(&p, lock).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(DeviceKey::create(&p, lock).is_err());
        let (loaded, legacy) = DeviceKey::load(&p, lock).unwrap();
        assert_eq!((loaded.id(), legacy), (k.id(), false));
        // The seed is not in the file; another data key does not open it.
        assert!(std::fs::read(&p).unwrap().len() > 32);
        let other = DataKey::generate();
        assert!(matches!(
            DeviceKey::load(&p, KeyLock::Data(&other)),
            Err(Error::Corrupt(_))
        ));
        std::fs::write(&p, b"short").unwrap();
        assert!(matches!(DeviceKey::load(&p, lock), Err(Error::Corrupt(_))));
        // A legacy plaintext seed is read and reported, so the caller re-seals it.
        std::fs::write(&p, [7u8; 32]).unwrap();
        assert!(DeviceKey::load(&p, lock).unwrap().1);
        // The root key under a passphrase.
        let r = dir.path().join("org-root.key");
        let root = OrgKey::create(&r, KeyLock::Passphrase(b"pw")).unwrap();
        assert_eq!(
            OrgKey::load(&r, KeyLock::Passphrase(b"pw"))
                .unwrap()
                .0
                .public(),
            root.public()
        );
        assert!(matches!(
            OrgKey::load(&r, KeyLock::Passphrase(b"no")),
            Err(Error::Denied(_))
        ));
    }
}
