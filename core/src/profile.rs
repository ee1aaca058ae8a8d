//! A data directory: this device's key, the org it belongs to and its store, with the
//! operations that need a disk but no network. `majlisd` uses these directly when no node is
//! running; the node uses the same functions, so both paths follow the same rules.
//!
//! Layout of a data directory (mode 0700):
//! - `device.key`: this device's ed25519 seed (0600).
//! - `org-root.key`: the org root seed, only on the device that founded the org or where an
//!   admin restored it (0600). Back it up offline.
//! - `db/`: the sled database.
//! - `majlisd.sock`: the local API of a running node (0600).

use std::path::{Path, PathBuf};

use crate::e2e::{self, ChannelKey, Content, Plain};
use crate::error::{Error, Result};
use crate::identity::{DeviceId, DeviceKey, KeyLock, OrgId, OrgKey};
use crate::message::{Envelope, Reject, Unsigned, MESSAGE_FORMAT};
use crate::roster::{
    ApplyReport, Role, Roster, RosterChain, RosterChange, RosterSigner, VerifiedRoster,
};
use crate::seal::{self, DataKey, Sealing, Unlock};
use crate::store::Store;

pub const DEVICE_KEY: &str = "device.key";
pub const ROOT_KEY: &str = "org-root.key";
pub const SOCKET: &str = "majlisd.sock";
/// Where [`Profile::remembered_peers`] are kept (sealed with the rest of the store: they
/// say where the org's nodes are).
const PEERS_PRIVATE: &str = "peers";
/// Left by a remote wipe, so that the next start says why the directory is empty instead of
/// "no device identity" (a user would think the data was lost by a fault).
pub const REMOVED: &str = "REMOVED.txt";
/// What a message says: text, or a shared file.
enum Outgoing<'a> {
    Text(&'a str),
    /// A reply, edit, deletion or reaction (see [`crate::conversation`]).
    Act(Plain),
    /// Anything, sent under a reader's tag with no check (a modified client, in tests).
    Forced(Plain, e2e::ReaderTag),
    /// `described`: a [`Plain::File`] or [`Plain::ForwardFile`].
    File {
        blob: crate::files::BlobRef,
        described: Plain,
    },
}

/// Where the desktop app's window settings live (nothing private: drafts are sealed in the
/// store).
pub const GUI_STATE: &str = "gui-state.ron";

/// Where a user's data directory is when none is given: the platform's data directory
/// (`~/.local/share/majlis` on Linux). `None` without a home directory.
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "Majlis", "majlis").map(|d| d.data_dir().to_path_buf())
}

pub struct Profile {
    dir: PathBuf,
    key: DeviceKey,
    store: Store,
    dk: DataKey,
    sealing: Sealing,
    /// The org root key's passphrase, when this directory keeps the root key sealed by one
    /// (`MAJLIS_ROOT_PASSPHRASE_FILE`); without it the root key is not used.
    root_pass: Option<Vec<u8>>,
    /// Per channel: the roster hash at which this device's keys were last brought up to date,
    /// and its current key, so an unchanged channel costs no key bookkeeping per message.
    sending: std::sync::Mutex<std::collections::HashMap<String, ([u8; 32], ChannelKey)>>,
}

/// What [`Profile::share_keys`] goes by when deciding whether to pass other senders' keys
/// on to a channel's new readers, and what it left to another device.
#[derive(Debug, Default)]
pub struct PassOnKeys {
    /// The devices this node knows to be on the network (connected, or heard of lately).
    pub online: std::collections::HashSet<DeviceId>,
    /// Per channel, the older key holder (with a smaller id, seen online) left to pass the
    /// keys on, and the new readers it owes them to.
    pub left: Vec<(String, DeviceId, Vec<DeviceId>)>,
}

/// The data key of `dir`: opened if set up, else made (a store written before sealing
/// gets one on its first open).
fn data_key(dir: &Path, how: &Unlock) -> Result<(DataKey, Sealing)> {
    match seal::sealing_of(dir)? {
        Some(s) => Ok((seal::open(dir, s, how)?, s)),
        None => seal::create(dir, how),
    }
}

fn root_pass_from_env() -> Result<Option<Vec<u8>>> {
    std::env::var_os("MAJLIS_ROOT_PASSPHRASE_FILE")
        .map(|p| seal::read_passphrase(Path::new(&p)))
        .transpose()
}

fn make_private_dir(dir: &Path) -> Result<()> {
    // Else the error would be "File exists", with a hint about disk space.
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is a file, not a directory: give --data a directory (a new one is made)",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Keep `dir` closed to the machine's other users (a terminal server's): its records are
/// sealed, but sled's keys name channels, authors and times, and a DM's channel names its
/// two members (docs/security.md, "Metadata"). `init` makes it 0700; one opened up since
/// (restored by a copy that did not keep modes, or by hand) is made so again, with a
/// warning, as every open checks.
fn keep_private(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(mode) = std::fs::metadata(dir).map(|m| m.permissions().mode() & 0o777) else {
            return;
        };
        if mode & 0o077 == 0 {
            return;
        }
        let shown = dir.display();
        match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700)) {
            Ok(()) => tracing::warn!(
                "{shown} was open to other users of this machine (mode {mode:o}); it is {:o} again",
                mode & 0o700
            ),
            Err(e) => tracing::warn!(
                "{shown} is open to other users of this machine (mode {mode:o}) and could not be closed: {e}; run `chmod 700 {shown}`"
            ),
        }
    }
}

impl Profile {
    /// Create a new device identity in `dir`, sealed as the environment says
    /// ([`Unlock::from_env`]).
    pub fn init(dir: &Path, name: &str) -> Result<Profile> {
        Self::init_with(dir, name, &Unlock::from_env())
    }

    pub fn init_with(dir: &Path, name: &str, how: &Unlock) -> Result<Profile> {
        crate::roster::valid_name("member", name)?;
        make_private_dir(dir)?;
        let key_path = dir.join(DEVICE_KEY);
        if key_path.exists() {
            return Err(Error::HasIdentity {
                dir: dir.display().to_string(),
            });
        }
        let (dk, sealing) = data_key(dir, how)?;
        let key = DeviceKey::create(&key_path, KeyLock::Data(&dk))?;
        // A new identity where a removed one was: the note of its wipe is history.
        let _ = std::fs::remove_file(dir.join(REMOVED));
        let store = Store::open(&dir.join("db"), dk.clone())?;
        store.set_meta("name", name.as_bytes())?;
        store.set_meta("sealed", b"1")?;
        store.flush()?;
        Ok(Profile {
            dir: dir.to_path_buf(),
            key,
            store,
            dk,
            sealing,
            root_pass: root_pass_from_env()?,
            sending: Default::default(),
        })
    }

    /// Open `dir`, unlocked as the environment says ([`Unlock::from_env`]).
    pub fn open(dir: &Path) -> Result<Profile> {
        Self::open_with(dir, &Unlock::from_env())
    }

    /// Open `dir`. A data directory written before sealing existed is sealed on the way:
    /// a data key is made, and the device key, the root key, message records and end-to-end
    /// keys are re-written under it (idempotently, so a crash part-way finishes next time).
    pub fn open_with(dir: &Path, how: &Unlock) -> Result<Profile> {
        let key_path = dir.join(DEVICE_KEY);
        if !key_path.exists() {
            let note = std::fs::read_to_string(dir.join(REMOVED));
            let dir = dir.display().to_string();
            return Err(match note {
                Ok(note) => {
                    let (note, at) = read_removal_note(&note);
                    Error::Removed { dir, note, at }
                }
                Err(_) => Error::NoIdentity { dir },
            });
        }
        keep_private(dir);
        let (dk, sealing) = data_key(dir, how)?;
        let (key, legacy) = DeviceKey::load(&key_path, KeyLock::Data(&dk))?;
        if legacy {
            key.store(&key_path, KeyLock::Data(&dk))?;
        }
        let root_path = dir.join(ROOT_KEY);
        if std::fs::metadata(&root_path).is_ok_and(|m| m.len() == 32) {
            let (root, _) = OrgKey::load(&root_path, KeyLock::Data(&dk))?;
            root.store(&root_path, KeyLock::Data(&dk))?;
        }
        let db = dir.join("db");
        Store::finish_migration(&db)?;
        let wait = how.lock_wait.unwrap_or(std::time::Duration::from_secs(1));
        let mut store = Store::open_waiting(&db, dk.clone(), wait)?;
        if !store.is_sealed()? {
            drop(store);
            let n = Store::migrate_to_sealed(&db, &dk)?;
            // A database made afresh (a damaged one moved aside) has nothing to seal.
            if n > 0 {
                tracing::info!("sealed {n} stored values written by an earlier release");
            }
            store = Store::open(&db, dk.clone())?;
        }
        Ok(Profile {
            dir: dir.to_path_buf(),
            key,
            store,
            dk,
            sealing,
            root_pass: root_pass_from_env()?,
            sending: Default::default(),
        })
    }

    /// Where this directory's data key lives; `Sealing::File` means not sealed against a
    /// copy of the directory.
    pub fn sealing(&self) -> Sealing {
        self.sealing
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn key(&self) -> &DeviceKey {
        &self.key
    }
    pub fn device_id(&self) -> DeviceId {
        self.key.id()
    }
    pub fn store(&self) -> &Store {
        &self.store
    }
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join(SOCKET)
    }

    /// Remote wipe: erase the device key, the org root key if present, and the database.
    /// The open database handle keeps working on unlinked files until the process exits.
    pub fn wipe(&self) -> Result<()> {
        // Crypto-erase first: without the data key, whatever copies of the database and the
        // key files the disk keeps are noise.
        seal::destroy(&self.dir)?;
        for f in [DEVICE_KEY, ROOT_KEY, GUI_STATE] {
            // Overwritten before unlinking (best effort: SSDs and copy-on-write file systems
            // may still keep the old blocks; they hold only sealed bytes).
            seal::shred_written(&self.dir.join(f))?;
        }
        let db = self.dir.join("db");
        std::fs::remove_dir_all(&db).map_err(|e| Error::io(&db, e))?;
        // Shared files: encrypted under keys that were in the database, removed anyway.
        let blobs = self.dir.join("blobs");
        if blobs.exists() {
            std::fs::remove_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
        }
        // Only when it was removed and when: nothing of the org, its members or its keys.
        let marker = self.dir.join(REMOVED);
        std::fs::write(&marker, removal_note(crate::now_ms()))
            .map_err(|e| Error::io(&marker, e))?;
        Ok(())
    }

    /// The org root key kept in this directory, if any and if it can be opened: sealed by the
    /// data key (usable here), or by its own passphrase (only with that passphrase).
    fn root_key(&self) -> Result<Option<OrgKey>> {
        let p = self.dir.join(ROOT_KEY);
        let Ok(bytes) = std::fs::read(&p) else {
            return Ok(None);
        };
        let lock = if seal::is_sealed(&bytes) || bytes.len() == 32 {
            KeyLock::Data(&self.dk)
        } else {
            match &self.root_pass {
                Some(pass) => KeyLock::Passphrase(pass),
                None => {
                    return Err(Error::Denied(format!(
                        "the org root key in {} is sealed by its passphrase; set MAJLIS_ROOT_PASSPHRASE_FILE to a file holding it",
                        p.display()
                    )))
                }
            }
        };
        Ok(Some(OrgKey::load(&p, lock)?.0))
    }

    /// Write the org root key to `out`, sealed by `pass` (argon2id), for offline storage;
    /// unless `keep`, it is then erased from this directory, so this laptop can no longer
    /// sign as the org. Restore with [`Profile::import_root_key`].
    pub fn export_root_key(&self, out: &Path, pass: &[u8], keep: bool) -> Result<()> {
        let root = self
            .root_key()?
            .ok_or_else(|| Error::NotReady(format!("no org root key in {}", self.dir.display())))?;
        if out.exists() {
            return Err(Error::Invalid(format!(
                "{} exists; refusing to overwrite it",
                out.display()
            )));
        }
        root.store(out, KeyLock::Passphrase(pass))?;
        if !keep {
            seal::shred(&self.dir.join(ROOT_KEY))?;
        }
        Ok(())
    }

    /// Bring an exported root key into this directory. It stays sealed by its passphrase:
    /// roster changes use it only when `MAJLIS_ROOT_PASSPHRASE_FILE` is given.
    pub fn import_root_key(&self, from: &Path, pass: &[u8]) -> Result<OrgId> {
        let (root, _) = OrgKey::load(from, KeyLock::Passphrase(pass))?;
        let org = self.require_org()?;
        if root.org_id() != org {
            return Err(Error::Invalid(format!(
                "{} is the root key of org {}, not of this device's org {org}",
                from.display(),
                root.org_id()
            )));
        }
        root.store(&self.dir.join(ROOT_KEY), KeyLock::Passphrase(pass))?;
        Ok(org)
    }

    /// The name given at `init`.
    pub fn name(&self) -> Result<String> {
        Ok(self
            .store
            .get_meta("name")?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default())
    }

    pub fn org(&self) -> Result<Option<OrgId>> {
        self.store.org()
    }

    /// Write an export (see [`crate::export`]) with no node running, and record it in the
    /// device's signed action log.
    pub fn export(&self, spec: &crate::export::Spec) -> Result<crate::export::Manifest> {
        let chain = self.chain()?;
        let head = chain
            .head()
            .ok_or_else(|| Error::Invalid("no roster yet; nothing to export".into()))?;
        let mut spec = spec.clone();
        if let crate::export::Scope::Channel(c) = &spec.scope {
            spec.scope = crate::export::Scope::Channel(head.resolve_channel(&self.device_id(), c)?);
        }
        let spec = &spec;
        let member = crate::export::allowed(head, &self.device_id(), &spec.scope)?;
        let blobs = self.blobs()?;
        let by = crate::export::By {
            device: self.device_id().to_string(),
            member: &member,
            names: &head.roster,
            statuses: crate::status::load(&self.store, Some(head)).shown(head, 0),
        };
        let m = crate::export::export(&self.store, Some(&blobs), &chain.audit(), &by, spec)?;
        self.store.record_action(
            &self.key,
            &member,
            "export",
            crate::export::action_detail(spec, &m),
        )?;
        Ok(m)
    }

    /// Apply the roster's retention and erasure requests with no node running.
    pub fn sweep(&self) -> Result<crate::store::Swept> {
        let chain = self.chain()?;
        let Some(head) = chain.head() else {
            return Ok(Default::default());
        };
        let s = self.store.sweep(&head.roster.governance, crate::now_ms())?;
        let blobs = self.blobs()?;
        for b in &s.files {
            blobs.remove(b)?;
        }
        self.store.flush()?;
        Ok(s)
    }

    /// The shared-file store beside the database.
    pub fn blobs(&self) -> Result<crate::files::blobs::Blobs> {
        crate::files::blobs::Blobs::open(&self.dir.join("blobs"), self.store.tree("blobs")?)
    }

    pub fn require_org(&self) -> Result<OrgId> {
        self.org()?.ok_or(Error::NoOrg)
    }

    /// Found an organization: a fresh root key, and version 1 of the roster with this device
    /// as its first admin and `general` open to everyone.
    pub fn org_create(&self, org_name: &str) -> Result<OrgId> {
        if let Some(org) = self.org()? {
            return Err(Error::InOrg {
                org: org.to_string(),
            });
        }
        // Sealed by its own passphrase if one is given (then unusable without it), else by
        // the data key; `majlisd org root-key export` moves it off the laptop.
        let root = match &self.root_pass {
            Some(pass) => OrgKey::create(&self.dir.join(ROOT_KEY), KeyLock::Passphrase(pass))?,
            None => OrgKey::create(&self.dir.join(ROOT_KEY), KeyLock::Data(&self.dk))?,
        };
        let genesis = Roster::genesis(
            &root,
            org_name,
            &self.name()?,
            self.device_id(),
            crate::now_ms(),
        );
        let v1 = VerifiedRoster::sign(genesis, RosterSigner::Root(&root));
        self.store.set_meta("org", &root.org_id().0)?;
        self.store.put_rosters(1, &[v1])?;
        self.store.flush()?;
        Ok(root.org_id())
    }

    /// Belong to `org`: from now on only rosters of that org are accepted.
    pub fn org_join(&self, org: OrgId) -> Result<()> {
        match self.org()? {
            Some(o) if o == org => Ok(()),
            Some(o) => Err(Error::InOrg { org: o.to_string() }),
            None => {
                self.store.set_meta("org", &org.0)?;
                self.store.flush()?;
                Ok(())
            }
        }
    }

    /// Peers given by address that this device dials at every start (`majlisd run` adds
    /// them to its `--peer`s): those of the join link it joined with, as written there.
    pub fn remembered_peers(&self) -> Result<Vec<String>> {
        Ok(match self.store.get_private(PEERS_PRIVATE)? {
            // Unreadable (written by no release of ours): none, rather than no start.
            Some(v) => serde_json::from_slice(&v).unwrap_or_default(),
            None => Vec::new(),
        })
    }

    /// Remember `peers` too (see [`Profile::remembered_peers`]), each once.
    pub fn remember_peers(&self, peers: &[String]) -> Result<()> {
        let mut all = self.remembered_peers()?;
        for p in peers {
            if !all.contains(p) {
                all.push(p.clone());
            }
        }
        let v = serde_json::to_vec(&all).expect("strings serialize");
        self.store.set_private(PEERS_PRIVATE, &v)?;
        self.store.flush()
    }

    /// The stored roster chain, re-verified. A damaged version truncates the chain there
    /// (peers will resend what follows).
    pub fn chain(&self) -> Result<RosterChain> {
        let org = self.require_org()?;
        let mut chain = RosterChain::new(org);
        let mut versions = Vec::new();
        for wire in self.store.rosters()? {
            match VerifiedRoster::decode(&wire) {
                Ok(v) => versions.push(v),
                Err(e) => {
                    tracing::warn!("stored roster damaged ({e}); dropping it and later versions");
                    break;
                }
            }
        }
        let rep = chain.apply(versions);
        if let Some(e) = rep.error {
            tracing::warn!("stored roster chain stops early: {e}");
        }
        Ok(chain)
    }

    /// Apply received versions and persist what changed.
    pub fn apply_rosters(
        &self,
        chain: &mut RosterChain,
        incoming: Vec<VerifiedRoster>,
    ) -> Result<ApplyReport> {
        let rep = chain.apply(incoming);
        if let Some(from) = rep.changed_from {
            self.store.put_rosters(from, chain.versions())?;
            self.store.flush()?;
        }
        Ok(rep)
    }

    /// Make, sign and apply the next roster version. Signed with this device's key if it is
    /// an admin, else with the org root key if this data directory holds it.
    pub fn change_roster(
        &self,
        chain: &mut RosterChain,
        change: &RosterChange,
    ) -> Result<VerifiedRoster> {
        self.change_roster_all(chain, std::slice::from_ref(change))
    }

    /// [`Profile::change_roster`] with several changes in one new version (adding a whole
    /// team at once).
    pub fn change_roster_all(
        &self,
        chain: &mut RosterChain,
        changes: &[RosterChange],
    ) -> Result<VerifiedRoster> {
        if changes.is_empty() {
            return Err(Error::Invalid("no roster change given".into()));
        }
        let head = chain.head().ok_or_else(|| {
            Error::NotReady(
                "no roster yet; wait until a peer sends it (is this device on the roster?)".into(),
            )
        })?;
        // Authority first: a non-admin learns that, not some detail of the change.
        let member_may_create = changes
            .iter()
            .all(|c| matches!(c, RosterChange::CreateChannel { .. }))
            && head.roster.policy.members_create_channels
            && head
                .member_of_device(&self.device_id())
                .is_some_and(|m| matches!(m.role, Role::Member));
        let root = if head.is_admin_key(&self.device_id().0) || member_may_create {
            None
        } else if let Some(root) = self.root_key()? {
            if root.public() != head.roster.root_key {
                return Err(Error::Denied(format!(
                    "{} is the root key of another org",
                    self.dir.join(ROOT_KEY).display()
                )));
            }
            Some(root)
        } else {
            return Err(Error::Denied(
                "only admins can change the roster (members may create channels if the org policy allows); ask an admin"
                    .into(),
            ));
        };
        // A rule the change breaks is this request's mistake ("no channel named 'x'"), not
        // a roster that came in and was refused: say it as invalid input.
        let next = head
            .roster
            .next_all(head.hash, changes, crate::now_ms())
            .map_err(|e| match e {
                crate::roster::RosterError::Rule(why) => Error::Invalid(why),
                other => Error::Roster(other),
            })?;
        let signed = match &root {
            None => VerifiedRoster::sign(next, RosterSigner::Device(&self.key)),
            Some(root) => VerifiedRoster::sign(next, RosterSigner::Root(root)),
        };
        let rep = self.apply_rosters(chain, vec![signed.clone()])?;
        match rep.error {
            // A member's version its peers would refuse (a rule only members are held to).
            Some(crate::roster::RosterError::Rule(why)) => Err(Error::Invalid(why)),
            Some(e) => Err(e.into()),
            None => Ok(signed),
        }
    }

    /// Sign a new message in `channel`, store it and queue it in the outbox. The caller
    /// flushes (group commit) before acknowledging. The body is sealed under this device's
    /// current key for the channel; key grants the readers still lack come first in the
    /// returned list (each is a message of its own), the text message last.
    pub fn compose(&self, chain: &RosterChain, channel: &str, text: &str) -> Result<Vec<Envelope>> {
        self.compose_as(chain, channel, text, true)
    }

    /// `compose`, with `seal: false` writing a format-1 plaintext body as releases before
    /// end-to-end encryption did. Only for benchmarks that measure what sealing costs
    /// (`lanbench`, with `MAJLIS_BENCH_PLAINTEXT=1`); nothing else uses it.
    #[doc(hidden)]
    pub fn compose_as(
        &self,
        chain: &RosterChain,
        channel: &str,
        text: &str,
        seal: bool,
    ) -> Result<Vec<Envelope>> {
        Ok(self
            .compose_what(chain, channel, Outgoing::Text(text), seal, true)?
            .0)
    }

    /// [`Profile::compose_as`], with the text's own message signed but **not stored**: a
    /// running node publishes it first and stores it right after, so the three writes of
    /// storing it are not on the way to the readers (see `Runner::send_composed`; its seq is
    /// reserved on disk either way). Key grants made on the way are stored as usual.
    /// Returns the messages, the text's last, and this device's member name.
    pub(crate) fn compose_unsaved(
        &self,
        chain: &RosterChain,
        channel: &str,
        text: &str,
        seal: bool,
    ) -> Result<(Vec<Envelope>, String)> {
        self.compose_what(chain, channel, Outgoing::Text(text), seal, false)
    }

    /// Sign a reply, edit, deletion or reaction in `channel`. The caller checked the target
    /// (readers check again: see [`crate::conversation`]).
    pub fn compose_act(
        &self,
        chain: &RosterChain,
        channel: &str,
        act: Plain,
    ) -> Result<Vec<Envelope>> {
        self.compose_sealed(chain, channel, Outgoing::Act(act))
    }

    /// [`Profile::compose_act`] under a reader's `tag` whatever `act` is, skipping the
    /// sender's checks, as a modified client would (see [`crate::Node::answer_unchecked`]).
    #[doc(hidden)]
    pub fn compose_forced(
        &self,
        chain: &RosterChain,
        channel: &str,
        act: Plain,
        tag: e2e::ReaderTag,
    ) -> Result<Vec<Envelope>> {
        self.compose_sealed(chain, channel, Outgoing::Forced(act, tag))
    }

    /// `what`, sealed, signed and stored (see [`Profile::compose_what`]).
    fn compose_sealed(
        &self,
        chain: &RosterChain,
        channel: &str,
        what: Outgoing<'_>,
    ) -> Result<Vec<Envelope>> {
        Ok(self.compose_what(chain, channel, what, true, true)?.0)
    }

    /// Sign a shared file's message (its blob is already in the blob store); `described`
    /// is a [`Plain::File`] or, forwarded, a [`Plain::ForwardFile`].
    pub fn compose_file(
        &self,
        chain: &RosterChain,
        channel: &str,
        blob: crate::files::BlobRef,
        described: Plain,
    ) -> Result<Vec<Envelope>> {
        if !matches!(described, Plain::File(_) | Plain::ForwardFile { .. }) {
            return Err(Error::Invalid("a file's message describes a file".into()));
        }
        self.compose_sealed(chain, channel, Outgoing::File { blob, described })
    }

    /// `save`: store the last message too (see [`Profile::compose_unsaved`]).
    fn compose_what(
        &self,
        chain: &RosterChain,
        channel: &str,
        what: Outgoing<'_>,
        seal: bool,
        save: bool,
    ) -> Result<(Vec<Envelope>, String)> {
        let roster = chain.head().ok_or_else(|| {
            Error::NotReady("no roster yet: this device cannot post until an admin adds it and a peer sends the roster".into())
        })?;
        if roster.member_of_device(&self.device_id()).is_none() {
            return Err(Error::NotOnRoster);
        }
        let channel = &roster.resolve_channel(&self.device_id(), channel)?;
        // A reaction or vote of a reader who may not post goes as a reader's answer, and its
        // reply in a thread, where readers reply, as a reader's reply: every node takes those
        // from it (and only those); anything else as a message of its own.
        let reader = roster
            .member_of_device(&self.device_id())
            .filter(|m| !roster.roster.may_post(m, channel));
        let tagged = match &what {
            Outgoing::Act(plain) if e2e::is_response(plain) => reader
                .filter(|m| roster.roster.may_respond(m, channel))
                .map(|m| (m, e2e::ReaderTag::Answer)),
            Outgoing::Act(plain) if e2e::is_thread_reply(plain) => reader
                .filter(|m| roster.roster.may_reply(m, channel))
                .map(|m| (m, e2e::ReaderTag::ThreadReply)),
            Outgoing::Forced(_, tag) => roster
                .member_of_device(&self.device_id())
                .map(|m| (m, *tag)),
            _ => None,
        };
        // The rule every receiver applies, so what we keep is what peers accept.
        let me = match tagged {
            Some((me, _)) => Ok(me),
            None => crate::message::may_author(roster, &self.device_id(), channel),
        }
        .map_err(|r| match r {
            Reject::UnknownDevice(_) => Error::NotOnRoster,
            Reject::UnknownChannel(_) => Error::Invalid(
                roster
                    .roster
                    .no_channel(channel, roster.member_of_device(&self.device_id())),
            ),
            r => Error::Denied(r.said_to_author(roster, channel)),
        })?;
        let text = match &what {
            Outgoing::Text(t) => t,
            Outgoing::File {
                described: Plain::File(info) | Plain::ForwardFile { file: info, .. },
                ..
            } => info.caption.as_str(),
            Outgoing::File { .. } => "",
            Outgoing::Act(Plain::Reply { text, .. } | Plain::Edit { text, .. }) => text.as_str(),
            Outgoing::Act(_) | Outgoing::Forced(..) => "",
        };
        let written = matches!(
            what,
            Outgoing::Text(_) | Outgoing::Act(Plain::Reply { .. } | Plain::Edit { .. })
        );
        if written && text.trim().is_empty() {
            // A blank line in everyone's history is a mistake, never a message; receivers
            // still take one from a client that sends it (it is well-formed).
            return Err(Error::Invalid(
                "a message needs some text (to take one of yours back, delete it)".into(),
            ));
        }
        if text.len() > crate::message::MAX_BODY_BYTES {
            return Err(Error::Invalid(format!(
                "message is {} bytes; the limit is {} (send large content as a file)",
                text.len(),
                crate::message::MAX_BODY_BYTES
            )));
        }
        if !seal {
            let Outgoing::Text(text) = what else {
                return Err(Error::Invalid("files are always sealed".into()));
            };
            let env = self.append_plain(chain, channel, &me.name, text, save)?;
            return Ok((vec![env], me.name.clone()));
        }
        let cached = self
            .sending
            .lock()
            .expect("not poisoned")
            .get(channel)
            .filter(|(hash, _)| *hash == roster.hash)
            .map(|(_, k)| k.clone());
        let (mut out, key) = match cached {
            Some(key) => (Vec::new(), key),
            None => {
                let out = self.share_keys(chain, channel, true, None)?;
                let st = self.store.sender_state(channel)?;
                let key = st
                    .mine
                    .last()
                    .and_then(|id| self.store.key(channel, id).ok().flatten())
                    .ok_or_else(|| {
                        Error::Corrupt(format!("this device's key for '{channel}' is missing"))
                    })?;
                self.sending
                    .lock()
                    .expect("not poisoned")
                    .insert(channel.to_string(), (roster.hash, key.clone()));
                (out, key)
            }
        };
        let sealed = match what {
            Outgoing::Text(text) => {
                e2e::seal(&key, channel, &self.device_id(), &Plain::Text(text.into()))
            }
            Outgoing::File { blob, described } => {
                e2e::seal_file(&key, channel, &self.device_id(), blob, &described)
            }
            // `tagged` is set for a reader's reaction, vote or reply and for every forced one.
            Outgoing::Act(plain) | Outgoing::Forced(plain, _) => match tagged {
                Some((_, tag)) => tag.seal(&key, channel, &self.device_id(), &plain),
                None => e2e::seal(&key, channel, &self.device_id(), &plain),
            },
        };
        out.push(self.append(chain, channel, &me.name, sealed, save)?);
        Ok((out, me.name.clone()))
    }

    /// Sign `content` as this device's next message in `channel`, store it, queue it.
    fn append(
        &self,
        chain: &RosterChain,
        channel: &str,
        sender: &str,
        content: Content,
        save: bool,
    ) -> Result<Envelope> {
        let body = content.encode();
        self.append_body(chain, channel, sender, MESSAGE_FORMAT, body, save)
    }

    fn append_plain(
        &self,
        chain: &RosterChain,
        channel: &str,
        sender: &str,
        text: &str,
        save: bool,
    ) -> Result<Envelope> {
        let format = crate::message::PLAINTEXT_FORMAT;
        self.append_body(
            chain,
            channel,
            sender,
            format,
            text.as_bytes().to_vec(),
            save,
        )
    }

    fn append_body(
        &self,
        chain: &RosterChain,
        channel: &str,
        sender: &str,
        format: u8,
        body: Vec<u8>,
        save: bool,
    ) -> Result<Envelope> {
        let (seq, prev) = self.store.next_own(channel, &self.device_id())?;
        // Never date a message before our previous one (a clock set back), nor over an hour
        // before this device joined the roster (an admin's clock ahead of ours): receivers
        // refuse both as backdated.
        let me = self.device_id();
        let last = match &prev {
            Some(p) => match self.store.tip_of(channel, &me)? {
                Some((_, id, at)) if id == *p => at,
                _ => self.store.sent_at_of(p)?.unwrap_or(0),
            },
            None => 0,
        };
        let joined = chain
            .head()
            .and_then(|h| h.listed_since(&self.device_id()))
            .map_or(0, |t| t.saturating_sub(crate::message::BEFORE_LISTED_MS));
        let last = last.max(joined);
        let env = Envelope::sign(
            &self.key,
            Unsigned {
                format,
                author: self.device_id(),
                channel: channel.to_string(),
                sent_at: crate::now_ms().max(last),
                seq,
                prev,
                body,
            },
        );
        if save {
            self.store.insert_own(&env, sender)?;
        }
        Ok(env)
    }

    /// Count nobody as holding this device's keys for `channel`: its next message there
    /// grants every key it made to every reader again. For key grants peers never took (a
    /// restored device's fork, see `Store::take_own_from`); a grant twice is harmless.
    pub(crate) fn regrant(&self, channel: &str) -> Result<()> {
        self.sending.lock().expect("not poisoned").remove(channel);
        let mut st = self.store.sender_state(channel)?;
        st.shared.clear();
        self.store.set_sender_state(channel, &st)
    }

    /// Bring the key holders of `channel` up to date and return the grant messages made.
    ///
    /// - A device that may now hold the channel's keys and was not given ours gets every key
    ///   this device made for the channel (readers read the channel's history); a new device
    ///   of this device's own member gets every key held for it, whoever made it, so a
    ///   replacement laptop reads what its member could.
    /// - With `rotate` (before sending): if a device we gave our key to may no longer hold it
    ///   (removed, revoked, left the channel), a new key is made and granted to the current
    ///   holders only, so nothing sent from now on opens with what the removed device had.
    ///   Also makes the first key.
    ///
    /// - With `pass_on` (the devices this node knows to be on the network), a new reader of a
    ///   channel also gets the keys this device holds from other senders, if no older key
    ///   holder with a smaller device id is online to do it: a member put on a channel then
    ///   reads what senders who are offline said there, without waiting for each of them to
    ///   come back. One designated device keeps this from being done by every reader; a key
    ///   passed on is checked against the key id the message names, so a device can hand on
    ///   only the real key (or nothing). Not in direct-message channels (see below). What
    ///   is left to another device is noted in `pass_on` ([`PassOnKeys::left`]), as "online" may
    ///   be a device heard of a minute ago that is gone (a lost laptop whose replacement is
    ///   being added): the node passes the keys on itself if that device does not show up.
    ///
    /// In a direct-message channel, a new device of the other member gets only the keys made
    /// since that member has been on the roster without a break: a newcomer given a removed
    /// member's name does not read the removed member's conversations.
    pub fn share_keys(
        &self,
        chain: &RosterChain,
        channel: &str,
        rotate: bool,
        mut pass_on: Option<&mut PassOnKeys>,
    ) -> Result<Vec<Envelope>> {
        let Some(roster) = chain.head() else {
            return Ok(Vec::new());
        };
        let me = self.device_id();
        let Some(member) = roster.member_of_device(&me) else {
            return Ok(Vec::new());
        };
        if !roster.roster.may_share_keys(member, channel) {
            return Ok(Vec::new());
        }
        let holders: Vec<DeviceId> = roster
            .roster
            .key_holders(channel)
            .into_iter()
            .filter(|d| *d != me)
            .collect();
        let mut st = self.store.sender_state(channel)?;
        let before = (st.mine.len(), st.shared.clone());
        let gone = st.shared.iter().any(|d| holders.binary_search(d).is_err());
        let mut contents = Vec::new();
        let mut kept = Vec::new();
        if rotate && (st.mine.is_empty() || gone) {
            let key = ChannelKey::generate();
            self.store.put_key(channel, &key)?;
            st.mine.push(key.id());
            st.made.resize(st.mine.len() - 1, 0);
            st.made.push(roster.version());
            let stay: Vec<DeviceId> = st
                .shared
                .iter()
                .filter(|d| holders.binary_search(d).is_ok())
                .copied()
                .collect();
            contents.extend(e2e::grant_all(&[key], channel, &stay).map_err(e2e_err)?);
            kept = stay;
        } else {
            kept.clone_from(&st.shared);
        }
        let fresh: Vec<DeviceId> = holders
            .iter()
            .filter(|d| !st.shared.contains(d))
            .copied()
            .collect();
        if !fresh.is_empty() {
            let (siblings, others): (Vec<DeviceId>, Vec<DeviceId>) =
                fresh.iter().partition(|d| member.devices.contains(d));
            if !siblings.is_empty() {
                let all = self.store.keys_of(channel)?;
                contents.extend(e2e::grant_all(&all, channel, &siblings).map_err(e2e_err)?);
            }
            let dm = crate::roster::is_dm(channel);
            // The designated device: no key holder that already held the keys before this
            // change, online and with a smaller id, is there to pass them on.
            let designated = pass_on.as_deref().filter(|_| !dm).map(|p| {
                holders
                    .iter()
                    .find(|d| **d < me && p.online.contains(d) && st.shared.contains(d))
                    .copied()
            });
            if let (Some(Some(by)), Some(p), false) = (designated, &mut pass_on, others.is_empty())
            {
                p.left.push((channel.to_string(), by, others.clone()));
            }
            if !others.is_empty() && designated == Some(None) {
                let all = self.store.keys_of(channel)?;
                contents.extend(e2e::grant_all(&all, channel, &others).map_err(e2e_err)?);
            } else if !others.is_empty() {
                let mine = |since: u64| -> Vec<ChannelKey> {
                    st.mine
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| st.made.get(*i).copied().unwrap_or(0) >= since)
                        .filter_map(|(_, id)| self.store.key(channel, id).ok().flatten())
                        .collect()
                };
                if dm {
                    // Per member: only keys made since it joined (see above).
                    let mut by_member: std::collections::BTreeMap<&str, Vec<DeviceId>> =
                        Default::default();
                    for d in &others {
                        if let Some(m) = roster.member_of_device(d) {
                            by_member.entry(m.name.as_str()).or_default().push(*d);
                        }
                    }
                    for (name, devs) in by_member {
                        let since = chain.member_since(name).unwrap_or(u64::MAX);
                        let keys = mine(since);
                        // And the keys its member's other devices sealed with, so a
                        // replacement laptop reads its member's half of the conversation
                        // when the lost one never comes back to hand them over (a device
                        // is not sent back its own).
                        let used = self.keys_used_by(chain, channel, name)?;
                        if used.is_empty() {
                            contents
                                .extend(e2e::grant_all(&keys, channel, &devs).map_err(e2e_err)?);
                            continue;
                        }
                        for d in &devs {
                            let mut keys = keys.clone();
                            keys.extend(
                                used.iter().filter(|(a, _)| a != d).map(|(_, k)| k.clone()),
                            );
                            contents.extend(
                                e2e::grant_all(&keys, channel, std::slice::from_ref(d))
                                    .map_err(e2e_err)?,
                            );
                        }
                    }
                } else if !st.mine.is_empty() {
                    contents.extend(e2e::grant_all(&mine(0), channel, &others).map_err(e2e_err)?);
                }
            }
        }
        // Devices that got nothing because there was nothing to give still count as served:
        // every key made later is granted to all current holders.
        kept.extend(fresh);
        kept.sort();
        kept.dedup();
        st.shared = kept;
        // Written only when it changed: at 1 000 members it is 32 KB.
        if (st.mine.len(), &st.shared) != (before.0, &before.1) {
            self.store.set_sender_state(channel, &st)?;
        }
        contents
            .into_iter()
            .map(|c| self.append(chain, channel, &member.name, c, true))
            .collect()
    }

    /// Grant every key this device holds for `channel` (whoever made it) to those of `to` who
    /// may hold them now: what [`Profile::share_keys`] left to another device that did not
    /// show up. Nothing in a direct-message channel (see `share_keys`).
    pub fn pass_on_keys(
        &self,
        chain: &RosterChain,
        channel: &str,
        to: &[DeviceId],
    ) -> Result<Vec<Envelope>> {
        let Some(roster) = chain.head() else {
            return Ok(Vec::new());
        };
        let Some(member) = roster.member_of_device(&self.device_id()) else {
            return Ok(Vec::new());
        };
        if crate::roster::is_dm(channel) || !roster.roster.may_share_keys(member, channel) {
            return Ok(Vec::new());
        }
        let holders = roster.roster.key_holders(channel);
        let to: Vec<DeviceId> = to
            .iter()
            .filter(|d| holders.binary_search(d).is_ok())
            .copied()
            .collect();
        let all = self.store.keys_of(channel)?;
        if to.is_empty() || all.is_empty() {
            return Ok(Vec::new());
        }
        e2e::grant_all(&all, channel, &to)
            .map_err(e2e_err)?
            .into_iter()
            .map(|c| self.append(chain, channel, &member.name, c, true))
            .collect()
    }

    /// The keys held here that devices of `name` sealed their messages in `channel` with, in
    /// the time `name` has been on the roster without a break (a newcomer given a removed
    /// member's name gets none of the removed member's), each with the device that made it.
    /// Reads the channel's history of those devices (once, when a device of `name` appears).
    fn keys_used_by(
        &self,
        chain: &RosterChain,
        channel: &str,
        name: &str,
    ) -> Result<Vec<(DeviceId, ChannelKey)>> {
        const PAGE: usize = 256;
        let mut ids = std::collections::BTreeSet::new();
        for author in self.store.heads(channel)?.keys() {
            if *author == self.device_id() || !chain.was_device_of(name, author) {
                continue;
            }
            let mut from = 0;
            loop {
                let page = self.store.log_from_seq(channel, author, from, PAGE)?;
                for (_, w) in &page {
                    let key = Envelope::decode_unverified(w)
                        .ok()
                        .and_then(|e| e.content()?.key_id());
                    ids.extend(key.map(|k| (*author, k)));
                }
                match page.last() {
                    Some((seq, _)) if page.len() == PAGE => from = seq + 1,
                    _ => break,
                }
            }
        }
        Ok(ids
            .into_iter()
            .filter_map(|(a, id)| Some((a, self.store.key(channel, &id).ok().flatten()?)))
            .collect())
    }

    /// Take the keys an accepted message grants to this device. Returns how many were new.
    pub fn absorb(&self, env: &Envelope) -> Result<usize> {
        if !env.is_keys() {
            return Ok(0);
        }
        let Some(Content::Keys(bundles)) = env.content() else {
            return Ok(0);
        };
        let me = self.device_id();
        let hint = e2e::hint(&me);
        let mut new = 0;
        for b in &bundles {
            for g in b.grants.iter().filter(|g| g.hint == hint) {
                if let Some(k) = e2e::accept_grant(&self.key, &env.unsigned.channel, &b.key, g) {
                    new += usize::from(self.store.put_key(&env.unsigned.channel, &k)?);
                }
            }
        }
        Ok(new)
    }
}

fn e2e_err(e: e2e::E2eError) -> Error {
    Error::Invalid(format!("cannot seal a key: {e}"))
}

/// The line of [`REMOVED`] that gives the time of the wipe to programs (the app shows it in
/// the user's language and time zone); the first line is the sentence a person reads.
const REMOVED_AT: &str = "removed-at-ms: ";

/// What a wiped device leaves in its directory: only that it was removed, and when.
fn removal_note(at_ms: u64) -> String {
    let when = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(at_ms),
    );
    format!(
        "This device was removed from its organization by an admin, and erased its keys and history on {} UTC.\n{REMOVED_AT}{at_ms}\n",
        when.to_string().trim_end_matches('Z').replace('T', " ")
    )
}

/// The sentence of a [`REMOVED`] note and the time it gives. Notes written before the time
/// had a line of its own are one sentence with no time to read.
fn read_removal_note(text: &str) -> (String, Option<u64>) {
    let at = text
        .lines()
        .find_map(|l| l.strip_prefix(REMOVED_AT)?.trim().parse().ok());
    let note = text
        .lines()
        .filter(|l| !l.starts_with(REMOVED_AT))
        .collect::<Vec<_>>()
        .join(" ");
    (note.trim().to_string(), at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another user of the machine cannot read the directory, even after a copy that did
    /// not keep modes opened it up.
    #[cfg(unix)]
    #[test]
    fn the_data_directory_is_kept_private_to_its_user() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a");
        drop(Profile::init(&dir, "amina").unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        drop(Profile::open(&dir).unwrap());
        assert_eq!(mode(&dir), 0o700);
    }

    /// `--data` naming a file: said so, not "File exists" with a hint about disk space.
    #[test]
    fn a_file_given_as_the_data_directory_is_called_a_file() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("notes.txt");
        std::fs::write(&file, "x").unwrap();
        let e = Profile::init(&file, "amina").err().unwrap().to_string();
        assert!(e.contains("is a file, not a directory"), "{e}");
    }

    /// A wiped directory says when, as a date a person reads and as a time the app can show
    /// in the user's own language; a note of an older release still opens as a removal.
    #[test]
    fn wiped_directory_says_when() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a");
        let p = Profile::init(&dir, "amina").unwrap();
        let before = crate::now_ms();
        p.wipe().unwrap();
        drop(p);
        match Profile::open(&dir) {
            Err(Error::Removed { note, at, .. }) => {
                assert!(note.starts_with("This device was removed"), "{note}");
                assert!(note.ends_with(" UTC."), "{note}");
                assert!(!note.contains("removed-at-ms"), "{note}");
                let at = at.expect("the time of the wipe");
                assert!(at >= before && at <= crate::now_ms(), "{at}");
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert_eq!(
            removal_note(1_764_743_519_000).lines().next().unwrap(),
            "This device was removed from its organization by an admin, and erased its keys and history on 2025-12-03 06:31:59 UTC."
        );
        let old = "This device was removed from its organization by an admin, and erased its keys and history at 1764743519000 (Unix ms).\n";
        std::fs::write(dir.join(REMOVED), old).unwrap();
        match Profile::open(&dir) {
            Err(Error::Removed { note, at, .. }) => {
                assert_eq!(note, old.trim());
                assert_eq!(at, None);
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn create_org_add_member_and_post() {
        let d = tempfile::tempdir().unwrap();
        let p = Profile::init(&d.path().join("a"), "amina").unwrap();
        let org = p.org_create("acme").unwrap();
        let mut chain = p.chain().unwrap();
        assert_eq!(chain.version(), 1);
        let other = DeviceKey::generate().id();
        p.change_roster(
            &mut chain,
            &RosterChange::AddMember {
                name: "bilal".into(),
                device: other,
                role: None,
            },
        )
        .unwrap();
        assert_eq!(chain.version(), 2);
        // A key grant for bilal's device, then the message itself.
        let envs = p.compose(&chain, "general", "salam").unwrap();
        assert_eq!(envs.len(), 2);
        assert!(envs[0].is_keys());
        let env_id = envs.last().unwrap().id;
        assert!(p.compose(&chain, "nope", "x").is_err());
        // Nothing to say is no message, and signs nothing.
        for blank in ["", " \n\t "] {
            let e = p.compose(&chain, "general", blank).unwrap_err();
            assert!(matches!(e, Error::Invalid(_)), "{e}");
        }
        // Its own name is its notes, which only its own devices read.
        let notes = p.compose(&chain, "@amina", "note to self").unwrap();
        assert_eq!(notes.last().unwrap().unsigned.channel, "@amina");
        // A change that breaks a rule is this request's mistake, said as such, with what
        // there is to choose from (it read "roster rejected: no channel named 'nope'").
        let e = p
            .change_roster(
                &mut chain,
                &RosterChange::SetRetention {
                    scope: crate::roster::Scope::Channel("nope".into()),
                    keep: crate::roster::Keep {
                        days: Some(30),
                        files_days: None,
                    },
                },
            )
            .unwrap_err();
        assert!(
            matches!(&e, Error::Invalid(why) if why.contains("no channel named 'nope'; channels: general")),
            "{e}"
        );
        assert_eq!(chain.version(), 2);
        p.store().flush().unwrap();
        drop(p);
        // Everything survives reopening.
        let p = Profile::open(&d.path().join("a")).unwrap();
        assert_eq!(p.org().unwrap(), Some(org));
        assert_eq!(p.chain().unwrap().version(), 2);
        let h = p.store().history("general", 10).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].id, env_id);
        assert_eq!(h[0].sender, "amina");
        assert_eq!(h[0].text, "salam");
        assert_eq!(
            p.store().own_head("general", &p.device_id()).unwrap(),
            (2, Some(env_id))
        );
    }

    #[test]
    fn non_admin_cannot_change_roster() {
        let d = tempfile::tempdir().unwrap();
        let a = Profile::init(&d.path().join("a"), "amina").unwrap();
        a.org_create("acme").unwrap();
        let b = Profile::init(&d.path().join("b"), "bilal").unwrap();
        let mut ca = a.chain().unwrap();
        a.change_roster(
            &mut ca,
            &RosterChange::AddMember {
                name: "bilal".into(),
                device: b.device_id(),
                role: None,
            },
        )
        .unwrap();
        b.org_join(ca.org()).unwrap();
        let mut cb = b.chain().unwrap();
        b.apply_rosters(&mut cb, ca.versions().to_vec()).unwrap();
        let err = b
            .change_roster(
                &mut cb,
                &RosterChange::CreateChannel {
                    name: "x".into(),
                    members: None,
                },
            )
            .unwrap_err();
        assert!(matches!(err, Error::Denied(_)), "{err}");
    }

    #[test]
    fn a_store_from_a_newer_release_is_refused_and_left_unchanged() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a");
        let p = Profile::init(&dir, "amina").unwrap();
        p.org_create("acme").unwrap();
        assert_eq!(
            p.store().get_meta("store_format").unwrap().as_deref(),
            Some(&crate::store::STORE_FORMAT.to_be_bytes()[..])
        );
        // As a later release would leave it.
        p.store()
            .set_meta(
                "store_format",
                &(crate::store::STORE_FORMAT + 1).to_be_bytes(),
            )
            .unwrap();
        p.store().flush().unwrap();
        drop(p);
        let err = match Profile::open(&dir) {
            Err(e) => e,
            Ok(_) => panic!("a newer store was opened"),
        };
        // Not "damaged, restore a backup": nothing is wrong with it but our age.
        assert!(
            matches!(err, Error::TooNew(_))
                && err.to_string().contains("newer Majlis")
                && err.hint().is_some_and(|h| h.contains("upgrade")),
            "{err}"
        );
        // Still refused (nothing was rewritten).
        assert!(Profile::open(&dir).is_err());
    }

    #[test]
    fn corrupt_database_is_a_clear_error_not_a_panic() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a");
        let p = Profile::init(&dir, "amina").unwrap();
        p.org_create("acme").unwrap();
        let chain = p.chain().unwrap();
        p.compose(&chain, "general", "hi").unwrap();
        p.store().flush().unwrap();
        drop((p, chain));
        let db = dir.join("db").join("db");
        let mut bytes = std::fs::read(&db).unwrap();
        for b in bytes.iter_mut().skip(100).take(200) {
            *b ^= 0x5a;
        }
        std::fs::write(&db, bytes).unwrap();
        match Profile::open(&dir) {
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("corrupt"), "{text}");
                // In words, not sled's debug dump, and the advice once (from `hint`).
                assert!(
                    !text.contains("backtrace") && !text.contains("None"),
                    "{text}"
                );
                assert!(!text.contains("backup"), "{text}");
                assert!(e.hint().is_some_and(|h| h.contains("backup")), "{text}");
            }
            Ok(p) => {
                // sled may recover by truncating the damaged tail: then nothing may panic.
                let _ = p.chain();
                let _ = p.store().history("general", 10);
            }
        }
    }
}
