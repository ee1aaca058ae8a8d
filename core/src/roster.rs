//! The roster: the organization's admin-signed, versioned membership document, and the pure
//! rules that decide which roster a node holds.
//!
//! Every version names the hash of the one before it, so the history is a hash chain. A node
//! accepts version `n + 1` only if it is signed by the org root key or by a device of an admin
//! in version `n`. Two different documents at the same version (a fork: two admins signing
//! concurrently) are resolved by one total rule that every node applies identically: **the
//! document with the smaller hash wins**, and whatever was built on the loser is dropped.
//! Stale copies (rollback) change nothing.

use std::collections::HashMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::identity::{self, DeviceId, DeviceKey, OrgId, OrgKey};

/// Wire format version of [`SignedRoster`]; bump on any incompatible change.
pub const ROSTER_FORMAT: u8 = 1;
/// Domain separation so a roster signature can never be replayed as a message signature.
const DOMAIN: &[u8] = b"majlis/roster/v1\0";
/// Hard cap on one encoded roster (a 1 000-member roster is ~70 KiB).
pub const MAX_ROSTER_BYTES: usize = 4 * 1024 * 1024;
pub const MAX_NAME_BYTES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    #[error("malformed roster: {0}")]
    Malformed(String),
    #[error("unsupported roster format {0}; upgrade Majlis")]
    Format(u8),
    #[error("bad signature")]
    BadSignature,
    #[error("roster is for another organization")]
    WrongOrg,
    #[error("version {version} is signed by a key that is neither the org root nor an admin of version {prev}")]
    NotAuthorized { version: u64, prev: u64 },
    #[error("version {version} does not follow the held version {prev} (hash chain broken)")]
    BrokenChain { version: u64, prev: u64 },
    #[error("received version {got} but the chain stops at {have}; missing versions in between")]
    Gap { have: u64, got: u64 },
    #[error("version {version} is older than held version {held} (rollback ignored)")]
    Stale { version: u64, held: u64 },
    #[error("fork at version {version}: kept the held document (it has the smaller hash)")]
    ForkLost { version: u64 },
    #[error("{0}")]
    Rule(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
    /// A headless server that stores and forwards; it never posts.
    Relay,
}

impl FromStr for Role {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            "relay" => Ok(Role::Relay),
            _ => Err(crate::Error::Invalid(format!(
                "unknown role '{s}'; use admin, member or relay"
            ))),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Relay => "relay",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub role: Role,
    pub devices: Vec<DeviceId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub name: String,
    /// `None`: every member. `Some(names)`: only these members (relays always read).
    pub members: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    pub org: OrgId,
    /// The organization's display name.
    pub name: String,
    pub root_key: [u8; 32],
    pub version: u64,
    /// Hash of the previous signed version; `None` only for version 1.
    pub prev: Option<[u8; 32]>,
    pub issued_at: u64,
    pub members: Vec<Member>,
    pub channels: Vec<Channel>,
}

/// A change an admin makes; turned into the next roster version by [`Roster::next`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RosterChange {
    /// Add a member, or add a device (and optionally change the role) of an existing one.
    AddMember {
        name: String,
        device: DeviceId,
        role: Option<Role>,
    },
    RemoveMember {
        name: String,
    },
    RevokeDevice {
        device: DeviceId,
    },
    CreateChannel {
        name: String,
        members: Option<Vec<String>>,
    },
}

pub fn valid_name(kind: &str, name: &str) -> Result<(), RosterError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with('@')
        && !name.contains(',')
        && !name.chars().any(|c| c.is_control());
    if ok {
        Ok(())
    } else {
        Err(RosterError::Rule(format!(
            "'{name}' is not a valid {kind} name: 1-{MAX_NAME_BYTES} bytes, no commas, no control characters, not starting with '@'"
        )))
    }
}

impl Roster {
    /// Version 1 of a new org: the founding device is its first admin, and `general` is open
    /// to everyone.
    pub fn genesis(
        org: &OrgKey,
        org_name: &str,
        admin_name: &str,
        admin_device: DeviceId,
        now: u64,
    ) -> Roster {
        Roster {
            org: org.org_id(),
            name: org_name.to_string(),
            root_key: org.public(),
            version: 1,
            prev: None,
            issued_at: now,
            members: vec![Member {
                name: admin_name.to_string(),
                role: Role::Admin,
                devices: vec![admin_device],
            }],
            channels: vec![Channel {
                name: "general".into(),
                members: None,
            }],
        }
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.name == name)
    }

    pub fn member_of_device(&self, device: &DeviceId) -> Option<&Member> {
        self.members.iter().find(|m| m.devices.contains(device))
    }

    pub fn may_read(&self, member: &Member, channel: &str) -> bool {
        match self.channel(channel) {
            None => false,
            Some(_) if member.role == Role::Relay => true,
            Some(c) => c
                .members
                .as_ref()
                .is_none_or(|list| list.iter().any(|n| n == &member.name)),
        }
    }

    pub fn may_post(&self, member: &Member, channel: &str) -> bool {
        member.role != Role::Relay && self.may_read(member, channel)
    }

    /// Structural rules every version must satisfy, whoever signed it.
    pub fn check_well_formed(&self) -> Result<(), RosterError> {
        if self.version == 0 || (self.version == 1) != self.prev.is_none() {
            return Err(RosterError::Rule(
                "version 1 and only version 1 has no predecessor".into(),
            ));
        }
        if OrgId::from_root_key(&self.root_key) != self.org {
            return Err(RosterError::WrongOrg);
        }
        let mut names = std::collections::HashSet::new();
        let mut devices = std::collections::HashSet::new();
        for m in &self.members {
            valid_name("member", &m.name)?;
            if !names.insert(m.name.as_str()) {
                return Err(RosterError::Rule(format!(
                    "member '{}' is listed twice",
                    m.name
                )));
            }
            for d in &m.devices {
                if !devices.insert(*d) {
                    return Err(RosterError::Rule(format!(
                        "device {d} belongs to two members"
                    )));
                }
            }
        }
        if !self
            .members
            .iter()
            .any(|m| m.role == Role::Admin && !m.devices.is_empty())
        {
            return Err(RosterError::Rule(
                "the roster must keep at least one admin with a device".into(),
            ));
        }
        let mut chans = std::collections::HashSet::new();
        for c in &self.channels {
            valid_name("channel", &c.name)?;
            if !chans.insert(c.name.as_str()) {
                return Err(RosterError::Rule(format!(
                    "channel '{}' exists twice",
                    c.name
                )));
            }
            for n in c.members.iter().flatten() {
                if !names.contains(n.as_str()) {
                    return Err(RosterError::Rule(format!(
                        "channel '{}' lists '{n}', who is not a member",
                        c.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// The next version with `change` applied. Pure: signing and acceptance are separate.
    pub fn next(
        &self,
        prev_hash: [u8; 32],
        change: &RosterChange,
        now: u64,
    ) -> Result<Roster, RosterError> {
        let mut r = self.clone();
        r.version = self.version + 1;
        r.prev = Some(prev_hash);
        r.issued_at = now.max(self.issued_at);
        match change {
            RosterChange::AddMember { name, device, role } => {
                valid_name("member", name)?;
                if let Some(owner) = r.member_of_device(device) {
                    if &owner.name != name {
                        return Err(RosterError::Rule(format!(
                            "device {device} already belongs to '{}'",
                            owner.name
                        )));
                    }
                }
                match r.members.iter_mut().find(|m| &m.name == name) {
                    Some(m) => {
                        if !m.devices.contains(device) {
                            m.devices.push(*device);
                        } else if role.is_none_or(|r| r == m.role) {
                            return Err(RosterError::Rule(format!(
                                "'{name}' already has device {device}; nothing to change"
                            )));
                        }
                        if let Some(role) = role {
                            m.role = *role;
                        }
                    }
                    None => r.members.push(Member {
                        name: name.clone(),
                        role: role.unwrap_or(Role::Member),
                        devices: vec![*device],
                    }),
                }
            }
            RosterChange::RemoveMember { name } => {
                let before = r.members.len();
                r.members.retain(|m| &m.name != name);
                if r.members.len() == before {
                    return Err(RosterError::Rule(format!("no member named '{name}'")));
                }
                for c in &mut r.channels {
                    if let Some(list) = &mut c.members {
                        list.retain(|n| n != name);
                    }
                }
            }
            RosterChange::RevokeDevice { device } => {
                let m = r
                    .members
                    .iter_mut()
                    .find(|m| m.devices.contains(device))
                    .ok_or_else(|| {
                        RosterError::Rule(format!("device {device} is not on the roster"))
                    })?;
                m.devices.retain(|d| d != device);
            }
            RosterChange::CreateChannel { name, members } => {
                valid_name("channel", name)?;
                if r.channel(name).is_some() {
                    return Err(RosterError::Rule(format!(
                        "channel '{name}' already exists"
                    )));
                }
                r.channels.push(Channel {
                    name: name.clone(),
                    members: members.clone(),
                });
            }
        }
        r.check_well_formed()?;
        Ok(r)
    }
}

/// One change between two roster versions, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum AuditChange {
    OrgCreated {
        name: String,
    },
    MemberAdded {
        name: String,
        role: Role,
    },
    MemberRemoved {
        name: String,
    },
    RoleChanged {
        name: String,
        from: Role,
        to: Role,
    },
    DeviceAdded {
        name: String,
        device: DeviceId,
    },
    DeviceRevoked {
        name: String,
        device: DeviceId,
    },
    ChannelCreated {
        name: String,
        members: Option<Vec<String>>,
    },
    ChannelChanged {
        name: String,
        members: Option<Vec<String>>,
    },
    ChannelRemoved {
        name: String,
    },
}

/// One roster version as the audit log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub version: u64,
    pub issued_at: u64,
    /// The admin (member name) or "org root key" that signed it.
    pub signed_by: String,
    pub hash: String,
    pub prev: Option<String>,
    pub changes: Vec<AuditChange>,
}

fn hex(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What changed from `prev` to `next`. Pure.
pub fn diff(prev: Option<&Roster>, next: &Roster) -> Vec<AuditChange> {
    let mut out = Vec::new();
    let empty = Roster {
        members: vec![],
        channels: vec![],
        ..next.clone()
    };
    let prev = match prev {
        Some(p) => p,
        None => {
            out.push(AuditChange::OrgCreated {
                name: next.name.clone(),
            });
            &empty
        }
    };
    for m in &next.members {
        match prev.member(&m.name) {
            None => {
                out.push(AuditChange::MemberAdded {
                    name: m.name.clone(),
                    role: m.role,
                });
                for d in &m.devices {
                    out.push(AuditChange::DeviceAdded {
                        name: m.name.clone(),
                        device: *d,
                    });
                }
            }
            Some(p) => {
                if p.role != m.role {
                    out.push(AuditChange::RoleChanged {
                        name: m.name.clone(),
                        from: p.role,
                        to: m.role,
                    });
                }
                for d in m.devices.iter().filter(|d| !p.devices.contains(d)) {
                    out.push(AuditChange::DeviceAdded {
                        name: m.name.clone(),
                        device: *d,
                    });
                }
                for d in p.devices.iter().filter(|d| !m.devices.contains(d)) {
                    out.push(AuditChange::DeviceRevoked {
                        name: m.name.clone(),
                        device: *d,
                    });
                }
            }
        }
    }
    for p in prev
        .members
        .iter()
        .filter(|p| next.member(&p.name).is_none())
    {
        out.push(AuditChange::MemberRemoved {
            name: p.name.clone(),
        });
    }
    for c in &next.channels {
        match prev.channel(&c.name) {
            None => out.push(AuditChange::ChannelCreated {
                name: c.name.clone(),
                members: c.members.clone(),
            }),
            Some(p) if p.members != c.members => out.push(AuditChange::ChannelChanged {
                name: c.name.clone(),
                members: c.members.clone(),
            }),
            Some(_) => {}
        }
    }
    for p in prev
        .channels
        .iter()
        .filter(|p| next.channel(&p.name).is_none())
    {
        out.push(AuditChange::ChannelRemoved {
            name: p.name.clone(),
        });
    }
    out
}

/// Who signs a roster version.
pub enum RosterSigner<'a> {
    Root(&'a OrgKey),
    Device(&'a DeviceKey),
}

#[derive(Serialize, Deserialize)]
struct SignedWire {
    format: u8,
    body: Vec<u8>,
    signer: [u8; 32],
    signature: Vec<u8>,
}

/// A roster whose encoding and signature have been checked (not yet its authority: that
/// needs the previous version, see [`RosterChain`]).
#[derive(Debug, Clone)]
pub struct VerifiedRoster {
    pub roster: Roster,
    pub signer: [u8; 32],
    /// blake3 of the canonical wire bytes; names this version in the hash chain.
    pub hash: [u8; 32],
    pub wire: Vec<u8>,
    by_device: HashMap<DeviceId, usize>,
}

impl VerifiedRoster {
    pub fn sign(roster: Roster, signer: RosterSigner<'_>) -> VerifiedRoster {
        let body = postcard::to_stdvec(&roster).expect("roster serializes");
        let mut msg = DOMAIN.to_vec();
        msg.extend_from_slice(&body);
        let (signer, sig) = match signer {
            RosterSigner::Root(k) => (k.public(), k.sign(&msg)),
            RosterSigner::Device(k) => (k.id().0, k.sign(&msg)),
        };
        let wire = postcard::to_stdvec(&SignedWire {
            format: ROSTER_FORMAT,
            body,
            signer,
            signature: sig.to_vec(),
        })
        .expect("roster serializes");
        Self::decode(&wire).expect("a roster we just signed decodes")
    }

    /// Decode and check the signature. Never panics on any input.
    pub fn decode(wire: &[u8]) -> Result<VerifiedRoster, RosterError> {
        if wire.len() > MAX_ROSTER_BYTES {
            return Err(RosterError::Malformed(format!(
                "{} bytes is over the limit",
                wire.len()
            )));
        }
        if let Some(&f) = wire.first() {
            if f != ROSTER_FORMAT {
                return Err(RosterError::Format(f));
            }
        }
        let w: SignedWire =
            postcard::from_bytes(wire).map_err(|e| RosterError::Malformed(e.to_string()))?;
        // Only the canonical encoding is accepted, so one document has exactly one hash.
        let again = postcard::to_stdvec(&w).map_err(|e| RosterError::Malformed(e.to_string()))?;
        if again != wire {
            return Err(RosterError::Malformed("non-canonical encoding".into()));
        }
        let sig: [u8; 64] = w
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| RosterError::BadSignature)?;
        let mut msg = DOMAIN.to_vec();
        msg.extend_from_slice(&w.body);
        if !identity::verify(&w.signer, &msg, &sig) {
            return Err(RosterError::BadSignature);
        }
        let roster: Roster =
            postcard::from_bytes(&w.body).map_err(|e| RosterError::Malformed(e.to_string()))?;
        if postcard::to_stdvec(&roster).ok().as_deref() != Some(&w.body[..]) {
            return Err(RosterError::Malformed("non-canonical roster body".into()));
        }
        let mut by_device = HashMap::new();
        for (i, m) in roster.members.iter().enumerate() {
            for d in &m.devices {
                by_device.insert(*d, i);
            }
        }
        Ok(VerifiedRoster {
            hash: *blake3::hash(wire).as_bytes(),
            wire: wire.to_vec(),
            roster,
            signer: w.signer,
            by_device,
        })
    }

    pub fn version(&self) -> u64 {
        self.roster.version
    }

    /// O(1) lookup: this is on the path of every received message.
    pub fn member_of_device(&self, device: &DeviceId) -> Option<&Member> {
        self.by_device.get(device).map(|&i| &self.roster.members[i])
    }

    pub fn is_admin_key(&self, key: &[u8; 32]) -> bool {
        self.member_of_device(&DeviceId(*key))
            .is_some_and(|m| m.role == Role::Admin)
    }

    pub fn devices(&self) -> impl Iterator<Item = &DeviceId> {
        self.by_device.keys()
    }

    /// The member name of `key`'s device in this version, or the key itself.
    pub fn signer_name_for(&self, key: &[u8; 32]) -> String {
        match self.member_of_device(&DeviceId(*key)) {
            Some(m) => m.name.clone(),
            None => DeviceId(*key).to_string(),
        }
    }

    /// Which key signed this version, as a name for logs and audit.
    pub fn signer_name(&self) -> String {
        if self.signer == self.roster.root_key {
            "org root key".into()
        } else {
            match self.member_of_device(&DeviceId(self.signer)) {
                Some(m) => m.name.clone(),
                None => DeviceId(self.signer).to_string(),
            }
        }
    }
}

/// Check that `cand` may follow `prev` (or start the chain when `prev` is `None`).
pub fn authorize(cand: &VerifiedRoster, prev: Option<&VerifiedRoster>) -> Result<(), RosterError> {
    cand.roster.check_well_formed()?;
    let v = cand.version();
    match prev {
        None => {
            if v != 1 || cand.signer != cand.roster.root_key {
                return Err(RosterError::NotAuthorized {
                    version: v,
                    prev: 0,
                });
            }
        }
        Some(p) => {
            if cand.roster.root_key != p.roster.root_key || cand.roster.org != p.roster.org {
                return Err(RosterError::WrongOrg);
            }
            if v != p.version() + 1 || cand.roster.prev != Some(p.hash) {
                return Err(RosterError::BrokenChain {
                    version: v,
                    prev: p.version(),
                });
            }
            if cand.signer != p.roster.root_key && !p.is_admin_key(&cand.signer) {
                return Err(RosterError::NotAuthorized {
                    version: v,
                    prev: p.version(),
                });
            }
        }
    }
    Ok(())
}

/// What [`RosterChain::apply`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// The lowest version that changed; everything from it on must be persisted anew.
    pub changed_from: Option<u64>,
    /// Versions seen that were already held (harmless repeats and stale rebroadcasts).
    pub already_held: u64,
    /// Why processing stopped early, if it did. Earlier valid versions stay applied.
    pub error: Option<RosterError>,
}

/// The roster history a node holds: versions `1..=head`, each authorized by its predecessor.
#[derive(Debug, Clone)]
pub struct RosterChain {
    org: OrgId,
    chain: Vec<VerifiedRoster>,
}

impl RosterChain {
    pub fn new(org: OrgId) -> RosterChain {
        RosterChain {
            org,
            chain: Vec::new(),
        }
    }

    pub fn org(&self) -> OrgId {
        self.org
    }

    pub fn head(&self) -> Option<&VerifiedRoster> {
        self.chain.last()
    }

    pub fn version(&self) -> u64 {
        self.chain.len() as u64
    }

    pub fn get(&self, version: u64) -> Option<&VerifiedRoster> {
        version
            .checked_sub(1)
            .and_then(|i| self.chain.get(i as usize))
    }

    pub fn versions(&self) -> &[VerifiedRoster] {
        &self.chain
    }

    /// Every version with who signed it and what changed; the hash chain is what `apply`
    /// verified, shown so an auditor can compare it across nodes.
    pub fn audit(&self) -> Vec<AuditEntry> {
        let mut prev: Option<&VerifiedRoster> = None;
        let mut out = Vec::new();
        for v in &self.chain {
            // The signer is named from the version it was authorized by.
            let signer_name = match prev {
                Some(p) if v.signer != v.roster.root_key => p.signer_name_for(&v.signer),
                _ if v.signer == v.roster.root_key => "org root key".to_string(),
                _ => DeviceId(v.signer).to_string(),
            };
            out.push(AuditEntry {
                version: v.version(),
                issued_at: v.roster.issued_at,
                signed_by: signer_name,
                hash: hex(&v.hash),
                prev: v.roster.prev.as_ref().map(hex),
                changes: diff(prev.map(|p| &p.roster), &v.roster),
            });
            prev = Some(v);
        }
        out
    }

    /// Versions a peer holding `their_version` should receive: from `min(theirs, ours)`
    /// inclusive, so that a fork at their head becomes visible to them.
    pub fn suffix_for(&self, their_version: u64) -> &[VerifiedRoster] {
        let from = their_version.clamp(1, self.version().max(1));
        &self.chain[(from - 1) as usize..]
    }

    /// Apply versions received from a peer or made locally. Pure: no I/O.
    pub fn apply(&mut self, mut incoming: Vec<VerifiedRoster>) -> ApplyReport {
        incoming.sort_by_key(|r| r.version());
        let mut report = ApplyReport::default();
        for cand in incoming {
            let v = cand.version();
            if cand.roster.org != self.org {
                report.error = Some(RosterError::WrongOrg);
                break;
            }
            let held = self.version();
            if v == 0 {
                report.error = Some(RosterError::Malformed("version 0".into()));
                break;
            }
            if v <= held {
                let ours = &self.chain[(v - 1) as usize];
                if ours.hash == cand.hash {
                    report.already_held += 1;
                    continue;
                }
                // A different document at a version we hold: a fork, or a forged rollback.
                if let Err(e) = authorize(&cand, self.get(v - 1)) {
                    report.error = Some(
                        if v < held && matches!(e, RosterError::NotAuthorized { .. }) {
                            RosterError::Stale { version: v, held }
                        } else {
                            e
                        },
                    );
                    break;
                }
                if cand.hash < ours.hash {
                    self.chain.truncate((v - 1) as usize);
                    self.chain.push(cand);
                    report.changed_from = Some(report.changed_from.map_or(v, |c| c.min(v)));
                } else {
                    report.error = Some(RosterError::ForkLost { version: v });
                    break;
                }
            } else if v == held + 1 {
                if let Err(e) = authorize(&cand, self.head()) {
                    report.error = Some(e);
                    break;
                }
                self.chain.push(cand);
                report.changed_from = Some(report.changed_from.unwrap_or(v));
            } else {
                report.error = Some(RosterError::Gap { have: held, got: v });
                break;
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Org {
        root: OrgKey,
        admin: DeviceKey,
        chain: RosterChain,
    }

    fn org() -> Org {
        let root = OrgKey::generate();
        let admin = DeviceKey::generate();
        let g = VerifiedRoster::sign(
            Roster::genesis(&root, "acme", "amina", admin.id(), 1),
            RosterSigner::Root(&root),
        );
        let mut chain = RosterChain::new(root.org_id());
        let rep = chain.apply(vec![g]);
        assert_eq!(rep.error, None);
        Org { root, admin, chain }
    }

    fn next(chain: &RosterChain, change: RosterChange, signer: RosterSigner<'_>) -> VerifiedRoster {
        let head = chain.head().unwrap();
        let r = head.roster.next(head.hash, &change, 2).unwrap();
        VerifiedRoster::sign(r, signer)
    }

    fn add(name: &str) -> RosterChange {
        RosterChange::AddMember {
            name: name.into(),
            device: DeviceKey::generate().id(),
            role: None,
        }
    }

    #[test]
    fn newer_version_signed_by_admin_is_accepted() {
        let mut o = org();
        let v2 = next(&o.chain, add("bilal"), RosterSigner::Device(&o.admin));
        let rep = o.chain.apply(vec![v2]);
        assert_eq!(
            rep,
            ApplyReport {
                changed_from: Some(2),
                ..Default::default()
            }
        );
        assert!(o.chain.head().unwrap().roster.member("bilal").is_some());
    }

    #[test]
    fn root_key_may_sign_any_version() {
        let mut o = org();
        let v2 = next(&o.chain, add("bilal"), RosterSigner::Root(&o.root));
        assert_eq!(o.chain.apply(vec![v2]).error, None);
    }

    #[test]
    fn non_admin_signer_is_rejected() {
        let mut o = org();
        let member = DeviceKey::generate();
        let v2 = next(
            &o.chain,
            RosterChange::AddMember {
                name: "bilal".into(),
                device: member.id(),
                role: None,
            },
            RosterSigner::Device(&o.admin),
        );
        o.chain.apply(vec![v2]);
        // bilal is a member, not an admin: he may not sign version 3.
        let v3 = next(&o.chain, add("chen"), RosterSigner::Device(&member));
        let rep = o.chain.apply(vec![v3]);
        assert_eq!(
            rep.error,
            Some(RosterError::NotAuthorized {
                version: 3,
                prev: 2
            })
        );
        assert_eq!(o.chain.version(), 2);
        // Nor may a stranger.
        let v3 = next(
            &o.chain,
            add("chen"),
            RosterSigner::Device(&DeviceKey::generate()),
        );
        assert!(o.chain.apply(vec![v3]).error.is_some());
    }

    #[test]
    fn wrong_org_is_rejected() {
        let mut o = org();
        let other = org();
        let v2 = next(&other.chain, add("x"), RosterSigner::Root(&other.root));
        assert_eq!(o.chain.apply(vec![v2]).error, Some(RosterError::WrongOrg));
        // A document claiming our org id but carrying another root key fails well-formedness.
        let head = o.chain.head().unwrap();
        let mut r = head.roster.next(head.hash, &add("x"), 3).unwrap();
        r.root_key = other.root.public();
        let forged = VerifiedRoster::sign(r, RosterSigner::Root(&other.root));
        assert_eq!(
            o.chain.apply(vec![forged]).error,
            Some(RosterError::WrongOrg)
        );
    }

    #[test]
    fn rollback_is_ignored_and_gap_reported() {
        let mut o = org();
        let v2 = next(&o.chain, add("b"), RosterSigner::Device(&o.admin));
        o.chain.apply(vec![v2.clone()]);
        let v3 = next(&o.chain, add("c"), RosterSigner::Device(&o.admin));
        o.chain.apply(vec![v3]);
        let rep = o.chain.apply(vec![v2]);
        assert_eq!(rep.already_held, 1);
        assert_eq!(rep.changed_from, None);
        assert_eq!(o.chain.version(), 3);

        let mut fresh = RosterChain::new(o.chain.org());
        let rep = fresh.apply(vec![o.chain.get(3).unwrap().clone()]);
        assert!(rep.error.is_some());
        assert_eq!(fresh.version(), 0);
        // The whole chain bootstraps a fresh node.
        let rep = fresh.apply(o.chain.versions().to_vec());
        assert_eq!(rep.error, None);
        assert_eq!(fresh.head().unwrap().hash, o.chain.head().unwrap().hash);
    }

    #[test]
    fn forks_resolve_to_the_smaller_hash_in_any_order() {
        let o = org();
        let second = DeviceKey::generate();
        let mut base = o.chain.clone();
        base.apply(vec![next(
            &base,
            RosterChange::AddMember {
                name: "bashir".into(),
                device: second.id(),
                role: Some(Role::Admin),
            },
            RosterSigner::Device(&o.admin),
        )]);
        let a = next(&base, add("x"), RosterSigner::Device(&o.admin));
        let b = next(&base, add("y"), RosterSigner::Device(&second));
        let winner = if a.hash < b.hash { a.hash } else { b.hash };

        let mut n1 = base.clone();
        n1.apply(vec![a.clone()]);
        // n1 builds on its branch, then hears of the other one.
        let a2 = next(&n1, add("z"), RosterSigner::Device(&o.admin));
        n1.apply(vec![a2]);
        n1.apply(vec![b.clone()]);
        let mut n2 = base.clone();
        n2.apply(vec![b]);
        n2.apply(n1.suffix_for(3).to_vec());
        assert_eq!(n1.get(3).unwrap().hash, winner);
        assert_eq!(n2.get(3).unwrap().hash, winner);
        // After exchanging suffixes both hold the same chain.
        let s1 = n1.suffix_for(n2.version()).to_vec();
        n2.apply(s1);
        let s2 = n2.suffix_for(n1.version()).to_vec();
        n1.apply(s2);
        assert_eq!(n1.head().unwrap().hash, n2.head().unwrap().hash);
    }

    #[test]
    fn audit_lists_every_change_with_its_signer() {
        let mut o = org();
        let b = DeviceKey::generate();
        o.chain.apply(vec![next(
            &o.chain,
            RosterChange::AddMember {
                name: "bilal".into(),
                device: b.id(),
                role: None,
            },
            RosterSigner::Device(&o.admin),
        )]);
        o.chain.apply(vec![next(
            &o.chain,
            RosterChange::RevokeDevice { device: b.id() },
            RosterSigner::Root(&o.root),
        )]);
        let a = o.chain.audit();
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].signed_by, "org root key");
        assert!(matches!(a[0].changes[0], AuditChange::OrgCreated { .. }));
        assert_eq!(a[1].signed_by, "amina");
        assert_eq!(
            a[1].changes,
            vec![
                AuditChange::MemberAdded {
                    name: "bilal".into(),
                    role: Role::Member
                },
                AuditChange::DeviceAdded {
                    name: "bilal".into(),
                    device: b.id()
                }
            ]
        );
        assert_eq!(
            a[2].changes,
            vec![AuditChange::DeviceRevoked {
                name: "bilal".into(),
                device: b.id()
            }]
        );
        assert_eq!(a[2].prev.as_deref(), Some(a[1].hash.as_str()));
    }

    #[test]
    fn a_thousand_member_channel_works() {
        let o = org();
        let mut r = o.chain.head().unwrap().roster.clone();
        for i in 0..999 {
            r.members.push(Member {
                name: format!("m{i}"),
                role: Role::Member,
                devices: vec![DeviceKey::generate().id()],
            });
        }
        let head = o.chain.head().unwrap();
        r.version = 2;
        r.prev = Some(head.hash);
        let names: Vec<String> = r
            .members
            .iter()
            .filter(|m| m.name != "m998")
            .map(|m| m.name.clone())
            .collect();
        r.channels.push(Channel {
            name: "all-hands".into(),
            members: Some(names),
        });
        let mut chain = o.chain.clone();
        let rep = chain.apply(vec![VerifiedRoster::sign(
            r,
            RosterSigner::Device(&o.admin),
        )]);
        assert_eq!(rep.error, None);
        let r = &chain.head().unwrap().roster;
        assert_eq!(r.members.len(), 1000);
        assert!(r.may_post(r.member("m997").unwrap(), "all-hands"));
        assert!(!r.may_read(r.member("m998").unwrap(), "all-hands"));
    }

    #[test]
    fn last_admin_cannot_be_removed() {
        let o = org();
        let head = o.chain.head().unwrap();
        let err = head
            .roster
            .next(
                head.hash,
                &RosterChange::RemoveMember {
                    name: "amina".into(),
                },
                3,
            )
            .unwrap_err();
        assert!(matches!(err, RosterError::Rule(_)));
    }

    #[test]
    fn private_channel_rules() {
        let mut o = org();
        let b = DeviceKey::generate();
        o.chain.apply(vec![next(
            &o.chain,
            RosterChange::AddMember {
                name: "b".into(),
                device: b.id(),
                role: None,
            },
            RosterSigner::Device(&o.admin),
        )]);
        o.chain.apply(vec![next(
            &o.chain,
            RosterChange::CreateChannel {
                name: "hr".into(),
                members: Some(vec!["amina".into()]),
            },
            RosterSigner::Device(&o.admin),
        )]);
        let r = &o.chain.head().unwrap().roster;
        let amina = r.member("amina").unwrap();
        let bm = r.member("b").unwrap();
        assert!(r.may_post(amina, "hr"));
        assert!(!r.may_read(bm, "hr"));
        assert!(r.may_post(bm, "general"));
        assert!(!r.may_read(bm, "nope"));
    }

    #[test]
    fn corrupted_wire_never_panics_and_is_rejected() {
        let o = org();
        let wire = o.chain.head().unwrap().wire.clone();
        for i in 0..wire.len() {
            let mut w = wire.clone();
            w[i] ^= 0x41;
            assert!(VerifiedRoster::decode(&w).is_err(), "byte {i}");
        }
        for n in 0..wire.len() {
            assert!(VerifiedRoster::decode(&wire[..n]).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = VerifiedRoster::decode(&bytes);
        }
    }
}
