//! Sealed at rest: one random **data key** per data directory encrypts what a stolen disk
//! would reveal: the device key, the org root key, every stored message record (which also
//! hides sender names), the end-to-end sender keys and the app's drafts.
//!
//! Where the data key lives is decided once, at `init` (or when an existing plaintext store
//! is first opened), and recorded in `DIR/sealing`:
//!
//! - `passphrase` (servers): `DIR/data.key.sealed` holds the data key sealed under a key
//!   derived with **argon2id** from a passphrase read from a file (`--passphrase-file`,
//!   `MAJLIS_PASSPHRASE_FILE`) or a systemd credential (`$CREDENTIALS_DIRECTORY/majlis-passphrase`).
//! - `keyring` (desktops): the OS keyring (Secret Service, Keychain, Windows Credential
//!   Manager) holds it, through the `keyring` crate.
//! - `file` (the fallback, never a prompt): `DIR/data.key`, mode 0600. The store is then
//!   **not sealed** against someone who copies the whole directory; `majlisd` says so at
//!   every start, and `--require-sealed` (`MAJLIS_REQUIRE_SEALED=1`) refuses instead.
//!
//! Wiping destroys the data key first (crypto-erase), so sled's leftovers on disk are noise.
//! Sealed values are `0xFF || nonce(24) || XChaCha20-Poly1305(data key, value, aad)`, with the
//! value's place (a tree key, a file name) as associated data so values cannot be swapped.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const SEALING_FILE: &str = "sealing";
pub const DATA_KEY_FILE: &str = "data.key";
pub const SEALED_DATA_KEY_FILE: &str = "data.key.sealed";
const KEYRING_SERVICE: &str = "majlis";
/// First byte of a sealed value; a legacy plaintext record never starts with it.
pub const SEALED_TAG: u8 = 0xFF;
const OVERHEAD: usize = 1 + 24 + 16;

/// The data key. Zeroed when dropped.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl Drop for DataKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    pub fn generate() -> DataKey {
        let mut k = [0u8; 32];
        getrandom::getrandom(&mut k).expect("OS RNG");
        DataKey(k)
    }

    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let cipher = chacha20poly1305::XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 24];
        getrandom::getrandom(&mut nonce).expect("OS RNG");
        let ct = cipher
            .encrypt((&nonce).into(), Payload { msg: plain, aad })
            .expect("XChaCha20-Poly1305 encrypts any length we store");
        let mut out = Vec::with_capacity(OVERHEAD + plain.len());
        out.push(SEALED_TAG);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Open a sealed value; a wrong key, a changed byte or a moved value is an error.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> std::result::Result<Vec<u8>, SealError> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        if !is_sealed(sealed) {
            return Err(SealError::NotSealed);
        }
        let cipher = chacha20poly1305::XChaCha20Poly1305::new((&self.0).into());
        let nonce: [u8; 24] = sealed[1..25].try_into().expect("length checked");
        cipher
            .decrypt(
                (&nonce).into(),
                Payload {
                    msg: &sealed[25..],
                    aad,
                },
            )
            .map_err(|_| SealError::Damaged)
    }
}

pub fn is_sealed(v: &[u8]) -> bool {
    v.len() >= OVERHEAD && v[0] == SEALED_TAG
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("value is not sealed")]
    NotSealed,
    #[error("sealed value does not open: wrong data key, or damaged")]
    Damaged,
}

/// Where a data directory's data key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sealing {
    Passphrase,
    Keyring,
    /// `data.key` beside the data: not sealed against a copy of the directory.
    File,
}

impl Sealing {
    pub fn is_sealed(self) -> bool {
        self != Sealing::File
    }
    fn name(self) -> &'static str {
        match self {
            Sealing::Passphrase => "passphrase",
            Sealing::Keyring => "keyring",
            Sealing::File => "file",
        }
    }
}

/// How to unlock (or create) a data key. [`Unlock::from_env`] is what the binaries use.
#[derive(Debug, Clone, Default)]
pub struct Unlock {
    /// A file whose first line is the passphrase.
    pub passphrase_file: Option<PathBuf>,
    /// Refuse to create or open a store whose data key sits in a plain file.
    pub require_sealed: bool,
    /// Try the OS keyring when there is no passphrase (desktops).
    pub keyring: bool,
    /// How long to wait for another process to let go of the database (`None`: a second).
    /// A starting node waits longer: a command run just before it holds the directory for
    /// a moment.
    pub lock_wait: Option<std::time::Duration>,
}

impl Unlock {
    /// `MAJLIS_PASSPHRASE_FILE`, else the systemd credential `majlis-passphrase`;
    /// `MAJLIS_REQUIRE_SEALED=1`; the keyring unless `MAJLIS_KEYRING=off`.
    pub fn from_env() -> Unlock {
        let passphrase_file = std::env::var_os("MAJLIS_PASSPHRASE_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                // A credential that is there but cannot be read is an error to report (by
                // reading it), never a silent fall-back to an unsealed store.
                std::env::var_os("CREDENTIALS_DIRECTORY")
                    .map(|d| Path::new(&d).join("majlis-passphrase"))
                    .filter(|p| !matches!(p.try_exists(), Ok(false)))
            });
        Unlock {
            passphrase_file,
            require_sealed: std::env::var("MAJLIS_REQUIRE_SEALED").is_ok_and(|v| v == "1"),
            keyring: std::env::var("MAJLIS_KEYRING").map_or(true, |v| v != "off"),
            lock_wait: None,
        }
    }

    fn passphrase(&self) -> Result<Option<Vec<u8>>> {
        self.passphrase_file
            .as_deref()
            .map(read_passphrase)
            .transpose()
    }
}

/// The sealed data key file: argon2id parameters, salt, and the sealed key.
#[derive(Serialize, Deserialize)]
struct SealedKeyFile {
    format: u8,
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: [u8; 16],
    #[serde(with = "serde_bytes")]
    sealed: Vec<u8>,
}

/// Seal `secret` under a passphrase (argon2id, then XChaCha20-Poly1305): for the data key
/// of a server and for an exported org root key.
pub fn seal_with_passphrase(pass: &[u8], aad: &[u8], secret: &[u8]) -> Result<Vec<u8>> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).expect("OS RNG");
    let mut f = SealedKeyFile {
        format: 1,
        m_cost: argon2::Params::DEFAULT_M_COST,
        t_cost: argon2::Params::DEFAULT_T_COST,
        p_cost: argon2::Params::DEFAULT_P_COST,
        salt,
        sealed: Vec::new(),
    };
    f.sealed = kek(pass, &f)?.seal(aad, secret);
    Ok(postcard::to_stdvec(&f).expect("serializes"))
}

/// Open what [`seal_with_passphrase`] made; a wrong passphrase is [`Error::Denied`].
pub fn open_with_passphrase(pass: &[u8], aad: &[u8], bytes: &[u8]) -> Result<Vec<u8>> {
    let f: SealedKeyFile = postcard::from_bytes(bytes)
        .map_err(|e| Error::Corrupt(format!("not a passphrase-sealed key file: {e}")))?;
    if f.format != 1 {
        return Err(Error::Invalid(format!(
            "sealed key file format {}; upgrade Majlis",
            f.format
        )));
    }
    kek(pass, &f)?
        .open(aad, &f.sealed)
        .map_err(|_| Error::Denied("wrong passphrase".into()))
}

/// Read a passphrase from the first line of a file.
pub fn read_passphrase(p: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(Error::Invalid(format!(
            "the passphrase file {} is empty; put the passphrase on its first line",
            p.display()
        )));
    }
    Ok(line.as_bytes().to_vec())
}

fn kek(pass: &[u8], f: &SealedKeyFile) -> Result<DataKey> {
    let params = argon2::Params::new(f.m_cost, f.t_cost, f.p_cost, Some(32)).map_err(|e| {
        Error::Corrupt(format!(
            "{SEALED_DATA_KEY_FILE}: bad argon2 parameters: {e}"
        ))
    })?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    a.hash_password_into(pass, &f.salt, &mut out)
        .map_err(|e| Error::Invalid(format!("deriving the key from the passphrase: {e}")))?;
    Ok(DataKey(out))
}

fn keyring_entry(dir: &Path) -> Option<keyring::Entry> {
    // Without a session bus there is no Secret Service; do not wait for D-Bus timeouts.
    #[cfg(all(unix, not(target_os = "macos")))]
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS")?;
    let user = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    keyring::Entry::new(KEYRING_SERVICE, &user.display().to_string()).ok()
}

/// Write a file readable by its owner only, atomically (temp file, fsync, rename).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = temp_of(path);
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// The temporary file [`write_private`] writes `path` through; a crash can leave it behind.
fn temp_of(path: &Path) -> PathBuf {
    path.with_extension("tmp")
}

/// Shred `path` and any temporary copy of it a crash left behind.
pub fn shred_written(path: &Path) -> Result<()> {
    shred(&temp_of(path))?;
    shred(path)
}

/// Overwrite, then delete (best effort against the file's old blocks).
pub fn shred(path: &Path) -> Result<()> {
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::write(path, vec![0u8; meta.len() as usize]);
        std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// How `dir` is sealed, if it has been set up.
pub fn sealing_of(dir: &Path) -> Result<Option<Sealing>> {
    let p = dir.join(SEALING_FILE);
    match std::fs::read_to_string(&p) {
        Ok(s) => match s.trim() {
            "passphrase" => Ok(Some(Sealing::Passphrase)),
            "keyring" => Ok(Some(Sealing::Keyring)),
            "file" => Ok(Some(Sealing::File)),
            other => Err(Error::Corrupt(format!(
                "{} says '{other}'; expected passphrase, keyring or file",
                p.display()
            ))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&p, e)),
    }
}

/// Make a new data key for `dir` and keep it where `how` says (passphrase, else keyring, else
/// a 0600 file). The `sealing` marker is written last, so a crash leaves an unset directory.
pub fn create(dir: &Path, how: &Unlock) -> Result<(DataKey, Sealing)> {
    let key = DataKey::generate();
    let sealing = if let Some(pass) = how.passphrase()? {
        let sealed = seal_with_passphrase(&pass, SEALED_DATA_KEY_FILE.as_bytes(), &key.0)?;
        write_private(&dir.join(SEALED_DATA_KEY_FILE), &sealed)?;
        Sealing::Passphrase
    } else if let Some(entry) = how.keyring.then(|| keyring_entry(dir)).flatten() {
        match entry.set_secret(&key.0) {
            Ok(()) => Sealing::Keyring,
            Err(e) => {
                tracing::info!("OS keyring unavailable ({e}); keeping the data key in a file");
                Sealing::File
            }
        }
    } else {
        Sealing::File
    };
    if sealing == Sealing::File {
        if how.require_sealed {
            return Err(Error::SealingUnavailable {
                dir: dir.display().to_string(),
            });
        }
        write_private(&dir.join(DATA_KEY_FILE), &key.0)?;
    }
    write_private(&dir.join(SEALING_FILE), sealing.name().as_bytes())?;
    Ok((key, sealing))
}

/// The data key of a directory set up before.
pub fn open(dir: &Path, sealing: Sealing, how: &Unlock) -> Result<DataKey> {
    match sealing {
        Sealing::File => {
            if how.require_sealed {
                return Err(Error::Denied(format!(
                    "{} is not sealed (its data key is in {DATA_KEY_FILE}) and sealing is required",
                    dir.display()
                )));
            }
            let p = dir.join(DATA_KEY_FILE);
            let b = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            let k: [u8; 32] = b
                .try_into()
                .map_err(|_| Error::Corrupt(format!("{} is not a 32-byte key", p.display())))?;
            Ok(DataKey(k))
        }
        Sealing::Passphrase => {
            let pass = how.passphrase()?.ok_or_else(|| Error::NeedPassphrase {
                dir: dir.display().to_string(),
            })?;
            let p = dir.join(SEALED_DATA_KEY_FILE);
            let b = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            let plain = open_with_passphrase(&pass, SEALED_DATA_KEY_FILE.as_bytes(), &b)?;
            let k: [u8; 32] = plain
                .try_into()
                .map_err(|_| Error::Corrupt(format!("{}: bad key length", p.display())))?;
            Ok(DataKey(k))
        }
        Sealing::Keyring => {
            let entry = keyring_entry(dir).ok_or_else(|| {
                Error::NotReady(format!(
                    "{} is sealed by the OS keyring, which is not reachable (no session bus); log in to the desktop session that created it",
                    dir.display()
                ))
            })?;
            let b = entry.get_secret().map_err(|e| {
                Error::NotReady(format!("the OS keyring did not give the data key: {e}"))
            })?;
            let k: [u8; 32] = b
                .try_into()
                .map_err(|_| Error::Corrupt("the keyring's data key is not 32 bytes".into()))?;
            Ok(DataKey(k))
        }
    }
}

/// Crypto-erase: destroy the data key wherever it lives. Everything sealed under it becomes
/// noise, whatever copies the disk keeps.
pub fn destroy(dir: &Path) -> Result<()> {
    if sealing_of(dir)? == Some(Sealing::Keyring) {
        if let Some(e) = keyring_entry(dir) {
            let _ = e.delete_credential();
        }
    }
    shred_written(&dir.join(DATA_KEY_FILE))?;
    shred_written(&dir.join(SEALED_DATA_KEY_FILE))?;
    shred_written(&dir.join(SEALING_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_place() {
        let k = DataKey::generate();
        let s = k.seal(b"m/1", b"salam");
        assert!(is_sealed(&s));
        assert_eq!(k.open(b"m/1", &s).unwrap(), b"salam");
        assert_eq!(k.open(b"m/2", &s), Err(SealError::Damaged));
        assert_eq!(
            DataKey::generate().open(b"m/1", &s),
            Err(SealError::Damaged)
        );
        assert_eq!(k.open(b"m/1", b"salam"), Err(SealError::NotSealed));
    }

    #[test]
    fn passphrase_file_and_fallback() {
        let d = tempfile::tempdir().unwrap();
        let pf = d.path().join("pass");
        std::fs::write(&pf, "correct horse\n").unwrap();
        let how = Unlock {
            passphrase_file: Some(pf.clone()),
            ..Default::default()
        };
        let a = d.path().join("a");
        std::fs::create_dir(&a).unwrap();
        let (k, s) = create(&a, &how).unwrap();
        assert_eq!(s, Sealing::Passphrase);
        assert!(!a.join(DATA_KEY_FILE).exists());
        assert_eq!(open(&a, s, &how).unwrap().0, k.0);
        std::fs::write(&pf, "wrong\n").unwrap();
        assert!(matches!(open(&a, s, &how), Err(Error::Denied(_))));
        assert!(matches!(
            open(&a, s, &Unlock::default()),
            Err(Error::NeedPassphrase { .. })
        ));

        let b = d.path().join("b");
        std::fs::create_dir(&b).unwrap();
        let strict = Unlock {
            require_sealed: true,
            ..Default::default()
        };
        assert!(matches!(
            create(&b, &strict),
            Err(Error::SealingUnavailable { .. })
        ));
        let (k, s) = create(&b, &Unlock::default()).unwrap();
        assert_eq!(s, Sealing::File);
        assert_eq!(sealing_of(&b).unwrap(), Some(Sealing::File));
        assert_eq!(open(&b, s, &Unlock::default()).unwrap().0, k.0);
        assert!(matches!(open(&b, s, &strict), Err(Error::Denied(_))));
        // A copy of the key a crash left mid-write goes too.
        let leftover = temp_of(&b.join(DATA_KEY_FILE));
        std::fs::write(&leftover, k.0).unwrap();
        destroy(&b).unwrap();
        assert!(!b.join(DATA_KEY_FILE).exists());
        assert!(!leftover.exists());
        assert_eq!(sealing_of(&b).unwrap(), None);
    }
}
