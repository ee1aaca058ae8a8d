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

/// A device id: the device's ed25519 public key. Shown as its libp2p `PeerId` string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub [u8; 32]);

impl DeviceId {
    pub fn peer_id(&self) -> PeerId {
        let pk = libp2p::identity::ed25519::PublicKey::try_from_bytes(&self.0)
            .map(libp2p::identity::PublicKey::from);
        match pk {
            Ok(pk) => PeerId::from_public_key(&pk),
            // Not a valid curve point: never produced by a real key; map to a PeerId that
            // cannot match any connection so the caller fails closed.
            Err(_) => PeerId::from_multihash(Default::default()).unwrap_or(PeerId::random()),
        }
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
                "'{s}' is not a device id; run `majlisd id` on the device to get it"
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
                "'{s}' is not an org id; ask an admin for the id printed by `majlisd org create`"
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
    match VerifyingKey::from_bytes(key) {
        Ok(vk) => vk
            .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
            .is_ok(),
        Err(_) => false,
    }
}

/// An ed25519 secret stored as its 32-byte seed in an owner-only file.
struct SecretFile;

impl SecretFile {
    fn create(path: &Path) -> Result<SigningKey> {
        let mut seed = [0u8; 32];
        getrandom(&mut seed)?;
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
        f.write_all(&seed).map_err(|e| Error::io(path, e))?;
        f.sync_all().map_err(|e| Error::io(path, e))?;
        Ok(SigningKey::from_bytes(&seed))
    }

    fn load(path: &Path) -> Result<SigningKey> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| {
            Error::Corrupt(format!(
                "key file {} is not a 32-byte ed25519 seed; restore it from your backup",
                path.display()
            ))
        })?;
        Ok(SigningKey::from_bytes(&seed))
    }
}

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
    pub fn create(path: &Path) -> Result<DeviceKey> {
        Ok(DeviceKey {
            signing: SecretFile::create(path)?,
        })
    }
    pub fn load(path: &Path) -> Result<DeviceKey> {
        Ok(DeviceKey {
            signing: SecretFile::load(path)?,
        })
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
    pub fn create(path: &Path) -> Result<OrgKey> {
        Ok(OrgKey {
            signing: SecretFile::create(path)?,
        })
    }
    pub fn load(path: &Path) -> Result<OrgKey> {
        Ok(OrgKey {
            signing: SecretFile::load(path)?,
        })
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
    fn device_id_round_trips_through_peer_id_text() {
        let k = DeviceKey::generate();
        let s = k.id().to_string();
        assert_eq!(s, k.libp2p_keypair().public().to_peer_id().to_string());
        assert_eq!(DeviceId::from_str(&s).unwrap(), k.id());
        assert!(DeviceId::from_str("not-a-device").is_err());
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
        let k = DeviceKey::create(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(DeviceKey::create(&p).is_err());
        assert_eq!(DeviceKey::load(&p).unwrap().id(), k.id());
        std::fs::write(&p, b"short").unwrap();
        assert!(matches!(DeviceKey::load(&p), Err(Error::Corrupt(_))));
    }
}
