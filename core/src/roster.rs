//! The roster: the organization's admin-signed, versioned membership document, and the pure
//! rules that decide which roster a node holds.
//!
//! Every version names the hash of the one before it, so the history is a hash chain. A node
//! accepts version `n + 1` only if it is signed by the org root key or by a device of an admin
//! in version `n` (or, when the policy allows, by a member whose version only adds channels).
//! Two different documents at the same version (a fork: two admins signing concurrently) are
//! resolved by one total rule that every node applies identically: a branch that has since
//! removed the other branch's signer wins, otherwise **the document with the smaller hash
//! wins**, and whatever was built on the loser is dropped. Stale copies (rollback) change
//! nothing.

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
    #[error(
        "fork at version {version}: kept the held branch (see the fork rule in docs/protocol.md)"
    )]
    ForkLost { version: u64 },
    #[error("contested roster at version {version}: two branches each removed the other's signer; keeping the branch this node saw first until the org root key signs a version that settles it")]
    Contested { version: u64 },
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
    /// An outsider (a contractor, a client): reads and posts only in channels that list them
    /// by name, and takes part in direct messages only if the policy says so.
    Guest,
    /// A relay with the org's compliance grant: besides storing everything, it is given the
    /// keys of every channel and DM, so the org can hold and search its records. Every member
    /// sees that the org has one (`majlisd roster show`, the app's People view).
    Archive,
}

impl Role {
    /// Relays and archives store and serve everything and never post.
    pub fn stores_all(self) -> bool {
        matches!(self, Role::Relay | Role::Archive)
    }
}

impl FromStr for Role {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            "relay" => Ok(Role::Relay),
            "guest" => Ok(Role::Guest),
            "archive" => Ok(Role::Archive),
            _ => Err(crate::Error::Invalid(format!(
                "unknown role '{s}'; use admin, member, guest, relay or archive"
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
            Role::Guest => "guest",
            Role::Archive => "archive",
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

/// Who may talk to whom beyond what channel lists say. Part of the signed roster, so every
/// node enforces the same rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `false` (default): only admins create channels. `true`: any member (not guests or
    /// relays) may sign a roster version whose only change is new channels.
    pub members_create_channels: bool,
    pub dms: DmPolicy,
}

/// Whether direct messages are allowed, and between whom.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    /// No direct messages.
    Off,
    /// Between admins and members (the default); guests only in channels.
    #[default]
    Members,
    /// Guests too.
    All,
}

impl FromStr for DmPolicy {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<DmPolicy> {
        match s {
            "off" => Ok(DmPolicy::Off),
            "members" => Ok(DmPolicy::Members),
            "all" => Ok(DmPolicy::All),
            _ => Err(crate::Error::Invalid(format!(
                "unknown DM policy '{s}'; use off, members or all"
            ))),
        }
    }
}

/// The channel that carries direct messages between members `a` and `b`: `@a,b` with the
/// names in byte order. Member names cannot start with `@` or contain a comma, so this never
/// collides with a channel name and parses back unambiguously.
pub fn dm_channel(a: &str, b: &str) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    format!("@{x},{y}")
}

/// The two member names of a direct-message channel, if `channel` is one (canonical form).
pub fn dm_parties(channel: &str) -> Option<(&str, &str)> {
    let (a, b) = channel.strip_prefix('@')?.split_once(',')?;
    (a < b && !b.contains(',')).then_some((a, b))
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
    pub policy: Policy,
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
    SetPolicy {
        policy: Policy,
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
            policy: Policy::default(),
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

    /// Whether members `a` and `b` may exchange direct messages under the policy.
    pub fn dm_allowed(&self, a: &Member, b: &Member) -> bool {
        let guest_ok = self.policy.dms == DmPolicy::All;
        a.name != b.name
            && self.policy.dms != DmPolicy::Off
            && [a, b]
                .iter()
                .all(|m| !m.role.stores_all() && (m.role != Role::Guest || guest_ok))
    }

    /// The two members of a direct-message channel, if it is one whose DMs are allowed.
    fn dm(&self, channel: &str) -> Option<(&Member, &Member)> {
        let (a, b) = dm_parties(channel)?;
        let (a, b) = (self.member(a)?, self.member(b)?);
        self.dm_allowed(a, b).then_some((a, b))
    }

    /// A channel messages may be posted in: a listed channel, or an allowed DM pair.
    pub fn channel_exists(&self, channel: &str) -> bool {
        self.channel(channel).is_some() || self.dm(channel).is_some()
    }

    pub fn may_read(&self, member: &Member, channel: &str) -> bool {
        if let Some((a, b)) = self.dm(channel) {
            return member.role.stores_all() || member.name == a.name || member.name == b.name;
        }
        match self.channel(channel) {
            None => false,
            Some(_) if member.role.stores_all() => true,
            // Guests see only channels that name them.
            Some(c) => match &c.members {
                None => member.role != Role::Guest,
                Some(list) => list.iter().any(|n| n == &member.name),
            },
        }
    }

    pub fn may_post(&self, member: &Member, channel: &str) -> bool {
        !member.role.stores_all() && self.may_read(member, channel)
    }

    /// Whether `member` may hold the keys of `channel`: its readers, except plain relays,
    /// which store and serve ciphertext only. An archive holds every key.
    pub fn may_decrypt(&self, member: &Member, channel: &str) -> bool {
        member.role != Role::Relay && self.may_read(member, channel)
    }

    /// Every device that may hold the keys of `channel`, sorted: whom a sender grants its
    /// key to.
    pub fn key_holders(&self, channel: &str) -> Vec<DeviceId> {
        let mut out: Vec<DeviceId> = self
            .members
            .iter()
            .filter(|m| self.may_decrypt(m, channel))
            .flat_map(|m| m.devices.iter().copied())
            .collect();
        out.sort();
        out
    }

    /// The archive members (compliance copies), if the org has any.
    pub fn archives(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.role == Role::Archive)
    }

    /// The channels `member` may read, in roster order.
    pub fn readable<'a>(&'a self, member: &'a Member) -> impl Iterator<Item = &'a Channel> {
        self.channels
            .iter()
            .filter(move |c| self.may_read(member, &c.name))
    }

    /// The members `member` may exchange direct messages with.
    pub fn dm_partners<'a>(&'a self, member: &'a Member) -> impl Iterator<Item = &'a Member> {
        self.members
            .iter()
            .filter(move |o| self.dm_allowed(member, o))
    }

    /// The direct-message inboxes (`@NAME`) a device of `member` listens on: its member's
    /// own if it has anyone to write with; for a relay or an archive, every such inbox.
    pub fn inboxes(&self, member: &Member) -> Vec<String> {
        self.members
            .iter()
            .filter(|o| {
                (member.role.stores_all() || o.name == member.name)
                    && self.dm_partners(o).next().is_some()
            })
            .map(|o| format!("@{}", o.name))
            .collect()
    }

    /// Every gossip topic a device of `member` subscribes to: the channels it may read and
    /// its inboxes.
    pub fn topics_of(&self, member: &Member) -> Vec<String> {
        self.readable(member)
            .map(|c| c.name.clone())
            .chain(self.inboxes(member))
            .collect()
    }

    /// Every topic of this roster, channels and every member's inbox: the ones whose
    /// subscriptions are policed ([`Roster::may_subscribe`]).
    pub fn all_topics(&self) -> Vec<String> {
        self.channels
            .iter()
            .map(|c| c.name.clone())
            .chain(self.members.iter().map(|m| format!("@{}", m.name)))
            .collect()
    }

    /// Whether a device of `member` may subscribe to the gossip topic of `channel` (a
    /// channel name, or `@NAME` for a member's DM inbox).
    pub fn may_subscribe(&self, member: &Member, topic: &str) -> bool {
        match topic.strip_prefix('@') {
            Some(owner) => member.role.stores_all() || member.name == owner,
            None => self.may_read(member, topic),
        }
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
            RosterChange::SetPolicy { policy } => {
                if *policy == r.policy {
                    return Err(RosterError::Rule(
                        "the policy is already set that way; nothing to change".into(),
                    ));
                }
                r.policy = *policy;
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
    PolicyChanged {
        policy: Policy,
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
    if prev.policy != next.policy {
        out.push(AuditChange::PolicyChanged {
            policy: next.policy,
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

    /// The channel `target` names for this device: `@NAME` is the direct-message channel
    /// between this device's member and NAME; anything else is a channel name as is.
    pub fn resolve_channel(&self, me: &DeviceId, target: &str) -> Result<String, RosterError> {
        let Some(other) = target.strip_prefix('@').filter(|t| !t.contains(',')) else {
            return Ok(target.to_string());
        };
        let me = self.member_of_device(me).ok_or_else(|| {
            RosterError::Rule(
                "this device is not on the roster, so it has no direct messages".into(),
            )
        })?;
        let other = self.roster.member(other).ok_or_else(|| {
            RosterError::Rule(format!("no member named '{other}' (see the roster)"))
        })?;
        if !self.roster.dm_allowed(me, other) {
            return Err(RosterError::Rule(format!(
                "direct messages between '{}' ({}) and '{}' ({}) are not allowed by the org policy (dms: {:?})",
                me.name, me.role, other.name, other.role, self.roster.policy.dms
            )));
        }
        Ok(dm_channel(&me.name, &other.name))
    }

    /// Whether `key` may sign any next version: the org root key or an admin's device.
    pub fn trusts(&self, key: &[u8; 32]) -> bool {
        *key == self.roster.root_key || self.is_admin_key(key)
    }

    /// Whether this version would let `v`'s signer sign anything at all: the root key, an
    /// admin, or (when the policy lets members create channels) a member. A fork candidate
    /// signed by anyone else was signed by someone this node has since removed.
    pub fn accepts_signer_of(&self, v: &VerifiedRoster) -> bool {
        self.trusts(&v.signer)
            || (self.roster.policy.members_create_channels
                && self
                    .member_of_device(&DeviceId(v.signer))
                    .is_some_and(|m| matches!(m.role, Role::Member | Role::Admin)))
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

/// Whether `cand` is a version that a plain member of `prev` may sign: the policy lets
/// members create channels, and new channels are the only difference.
fn member_created_channels(cand: &VerifiedRoster, prev: &VerifiedRoster) -> bool {
    let (c, p) = (&cand.roster, &prev.roster);
    p.policy.members_create_channels
        && prev
            .member_of_device(&DeviceId(cand.signer))
            .is_some_and(|m| matches!(m.role, Role::Member | Role::Admin))
        && c.name == p.name
        && c.members == p.members
        && c.policy == p.policy
        && c.channels.len() > p.channels.len()
        && c.channels.starts_with(&p.channels)
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
            if !p.trusts(&cand.signer) && !member_created_channels(cand, p) {
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
    /// A fork where each branch removed the other's signer was seen at this version.
    pub contested: Option<u64>,
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

    /// The version since which member `name` has been on the roster without a break: a
    /// removed member whose name is given to someone new is a different member from then on
    /// (see `Profile::share_keys`: direct-message history is not handed to the newcomer).
    pub fn member_since(&self, name: &str) -> Option<u64> {
        let mut since = None;
        for v in self.chain.iter().rev() {
            if v.roster.member(name).is_none() {
                break;
            }
            since = Some(v.version());
        }
        since
    }

    /// Versions a peer holding `their_version` should receive: from `min(theirs, ours)`
    /// inclusive, so that a fork at their head becomes visible to them.
    pub fn suffix_for(&self, their_version: u64) -> &[VerifiedRoster] {
        let from = their_version.clamp(1, self.version().max(1));
        &self.chain[(from - 1) as usize..]
    }

    /// Apply versions received from a peer or made locally. Pure: no I/O.
    ///
    /// A fork (a different document at a version we hold) is settled between the two
    /// branches from that version on: a branch whose later versions no longer trust the key
    /// that signed the other branch's first version wins (so an admin removed since cannot
    /// undo the removal by forking an earlier version with a ground-down hash); otherwise the
    /// smaller hash wins. Peers send their whole branch (see [`Self::suffix_for`]), so every
    /// node compares the same two branches and ends on the same one.
    pub fn apply(&mut self, mut incoming: Vec<VerifiedRoster>) -> ApplyReport {
        incoming.sort_by_key(|r| r.version());
        let mut report = ApplyReport::default();
        let mut incoming = incoming.into_iter().peekable();
        while let Some(cand) = incoming.next() {
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
                let mut branch = vec![cand];
                while let Some(next) = incoming.next_if(|n| {
                    let last = branch.last().expect("non-empty");
                    n.version() == last.version() + 1 && authorize(n, Some(last)).is_ok()
                }) {
                    branch.push(next);
                }
                let (our_head, their_head) =
                    (self.head().expect("held > 0"), &branch[branch.len() - 1]);
                let by_root =
                    |b: &[VerifiedRoster]| b.iter().any(|r| r.signer == r.roster.root_key);
                let (ours_root, theirs_root) =
                    (by_root(&self.chain[(v - 1) as usize..]), by_root(&branch));
                let theirs_trusted = our_head.accepts_signer_of(&branch[0]);
                let ours_trusted = their_head.accepts_signer_of(ours);
                let theirs_wins = if ours_root != theirs_root {
                    // The org root key has spoken on one branch only: it decides.
                    theirs_root
                } else if !theirs_trusted {
                    // Signed by someone our branch has removed: ignored. If their branch
                    // also removed our signer, the fork is contested: keep what we saw first.
                    if !ours_trusted {
                        report.contested = Some(v);
                        report.error = Some(RosterError::Contested { version: v });
                        break;
                    }
                    false
                } else if !ours_trusted {
                    // Their branch removed the signer of ours (and not vice versa): theirs.
                    true
                } else {
                    // Two trusted signers at one version (two admins at once): the smaller
                    // hash, so every node ends on the same one.
                    branch[0].hash < ours.hash
                };
                if theirs_wins {
                    self.chain.truncate((v - 1) as usize);
                    self.chain.extend(branch);
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

    /// The org with a second admin, "bashir": his key and the chain.
    fn second_admin(o: &Org) -> (DeviceKey, RosterChain) {
        let bashir = DeviceKey::generate();
        let mut base = o.chain.clone();
        base.apply(vec![next(
            &base,
            RosterChange::AddMember {
                name: "bashir".into(),
                device: bashir.id(),
                role: Some(Role::Admin),
            },
            RosterSigner::Device(&o.admin),
        )]);
        (bashir, base)
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
    fn a_removed_admin_cannot_undo_the_removal_by_forking_an_earlier_version() {
        let o = org();
        let (bashir, base) = second_admin(&o);
        let mut honest = base.clone();
        // An honest version 3 whose hash is not tiny, so a forgery that beats it is quick to
        // find (otherwise this test fails on an unlucky hash, about once in 500 runs).
        let v3 = (0..)
            .map(|i| {
                next(
                    &honest,
                    add(&format!("x{i}")),
                    RosterSigner::Device(&o.admin),
                )
            })
            .find(|v| v.hash[0] >= 0x40)
            .expect("an unbounded search ends");
        honest.apply(vec![v3.clone()]);
        let v4 = next(
            &honest,
            RosterChange::RemoveMember {
                name: "bashir".into(),
            },
            RosterSigner::Device(&o.admin),
        );
        assert_eq!(honest.apply(vec![v4]).error, None);
        // Bashir grinds a version 3 whose hash beats the honest one (half of all tries do).
        let forged = (0..200)
            .map(|i| next(&base, add(&format!("y{i}")), RosterSigner::Device(&bashir)))
            .find(|f| f.hash < v3.hash)
            .expect("a smaller hash within 200 tries");
        let head = honest.head().unwrap().hash;
        let rep = honest.apply(vec![forged.clone()]);
        assert_eq!(rep.error, Some(RosterError::ForkLost { version: 3 }));
        assert_eq!(honest.head().unwrap().hash, head);
        // A node that took the forgery first moves to the honest branch when it hears it.
        let mut fooled = base.clone();
        fooled.apply(vec![forged]);
        let rep = fooled.apply(honest.suffix_for(3).to_vec());
        assert_eq!(rep.error, None);
        assert_eq!(fooled.head().unwrap().hash, head);
    }

    /// Admins amina and bashir remove each other in concurrent versions: no hash settles it.
    #[test]
    fn mutual_removal_is_contested_until_the_root_key_decides() {
        let o = org();
        let (bashir, base) = second_admin(&o);
        let rm = |name: &str| RosterChange::RemoveMember { name: name.into() };
        let by_amina = next(&base, rm("bashir"), RosterSigner::Device(&o.admin));
        // Bashir grinds `issued_at` for a smaller hash: it must not matter.
        let h = base.head().unwrap();
        let by_bashir = (0..200)
            .map(|i| {
                let r = h.roster.next(h.hash, &rm("amina"), 3 + i).unwrap();
                VerifiedRoster::sign(r, RosterSigner::Device(&bashir))
            })
            .find(|f| f.hash < by_amina.hash)
            .expect("a smaller hash within 200 tries");
        let (mut n1, mut n2) = (base.clone(), base.clone());
        n1.apply(vec![by_amina.clone()]);
        n2.apply(vec![by_bashir.clone()]);
        let rep = n1.apply(vec![by_bashir.clone()]);
        assert_eq!(rep.contested, Some(3));
        assert_eq!(
            n1.head().unwrap().hash,
            by_amina.hash,
            "kept what it saw first"
        );
        assert_eq!(n2.apply(vec![by_amina.clone()]).contested, Some(3));
        assert_eq!(n2.head().unwrap().hash, by_bashir.hash);
        // The root key signs on amina's branch: every node moves there.
        let settled = next(&n1, add("x"), RosterSigner::Root(&o.root));
        n1.apply(vec![settled.clone()]);
        let rep = n2.apply(n1.suffix_for(3).to_vec());
        assert_eq!(rep.error, None);
        assert_eq!(n2.head().unwrap().hash, settled.hash);
    }

    /// Under `members_create_channels`, a removed member forks the removal with a channel
    /// creation (and a ground-down hash): nobody adopts it, and a node that did moves back.
    #[test]
    fn a_removed_member_cannot_fork_the_removal_with_a_channel() {
        let mut o = org();
        let mallory = DeviceKey::generate();
        for change in [
            RosterChange::AddMember {
                name: "mallory".into(),
                device: mallory.id(),
                role: None,
            },
            RosterChange::SetPolicy {
                policy: Policy {
                    members_create_channels: true,
                    dms: DmPolicy::Members,
                },
            },
        ] {
            let v = next(&o.chain, change, RosterSigner::Device(&o.admin));
            assert_eq!(o.chain.apply(vec![v]).error, None);
        }
        let base = o.chain.clone();
        let removal = next(
            &base,
            RosterChange::RemoveMember {
                name: "mallory".into(),
            },
            RosterSigner::Device(&o.admin),
        );
        let forged = (0..200)
            .map(|i| {
                next(
                    &base,
                    RosterChange::CreateChannel {
                        name: format!("c{i}"),
                        members: None,
                    },
                    RosterSigner::Device(&mallory),
                )
            })
            .find(|f| f.hash < removal.hash)
            .expect("a smaller hash within 200 tries");
        let mut honest = base.clone();
        honest.apply(vec![removal.clone()]);
        assert!(honest.apply(vec![forged.clone()]).error.is_some());
        assert_eq!(honest.head().unwrap().hash, removal.hash);
        let mut fooled = base.clone();
        fooled.apply(vec![forged]);
        assert_eq!(fooled.apply(vec![removal.clone()]).error, None);
        assert_eq!(fooled.head().unwrap().hash, removal.hash);
    }

    #[test]
    fn guests_see_only_channels_that_name_them_and_dms_follow_policy() {
        let mut o = org();
        for c in [
            RosterChange::AddMember {
                name: "gita".into(),
                device: DeviceKey::generate().id(),
                role: Some(Role::Guest),
            },
            add("bilal"),
            RosterChange::CreateChannel {
                name: "project".into(),
                members: Some(vec!["gita".into(), "amina".into()]),
            },
        ] {
            let v = next(&o.chain, c, RosterSigner::Device(&o.admin));
            assert_eq!(o.chain.apply(vec![v]).error, None);
        }
        let r = &o.chain.head().unwrap().roster;
        let (gita, bilal, amina) = (
            r.member("gita").unwrap(),
            r.member("bilal").unwrap(),
            r.member("amina").unwrap(),
        );
        assert!(!r.may_read(gita, "general"));
        assert!(r.may_post(gita, "project"));
        assert!(!r.may_read(bilal, "project"));
        // DMs: members by default, guests not; the channel name is canonical.
        assert_eq!(dm_channel("bilal", "amina"), "@amina,bilal");
        assert_eq!(dm_parties("@amina,bilal"), Some(("amina", "bilal")));
        assert_eq!(dm_parties("@bilal,amina"), None);
        assert!(r.may_post(bilal, "@amina,bilal"));
        assert!(!r.may_read(gita, "@amina,bilal"));
        assert!(!r.channel_exists("@amina,gita"));
        assert!(!r.may_post(amina, "@amina,amina"));
        let all = next(
            &o.chain,
            RosterChange::SetPolicy {
                policy: Policy {
                    dms: DmPolicy::All,
                    ..Policy::default()
                },
            },
            RosterSigner::Device(&o.admin),
        );
        o.chain.apply(vec![all]);
        let r = &o.chain.head().unwrap().roster;
        assert!(r.may_post(r.member("gita").unwrap(), "@amina,gita"));
        let off = Roster {
            policy: Policy {
                dms: DmPolicy::Off,
                ..Policy::default()
            },
            ..r.clone()
        };
        assert!(!off.channel_exists("@amina,bilal"));
        let audit = o.chain.audit();
        assert!(matches!(
            audit.last().unwrap().changes[..],
            [AuditChange::PolicyChanged { .. }]
        ));
    }

    #[test]
    fn members_create_channels_only_when_policy_allows_and_change_nothing_else() {
        let mut o = org();
        let bilal = DeviceKey::generate();
        let v2 = next(
            &o.chain,
            RosterChange::AddMember {
                name: "bilal".into(),
                device: bilal.id(),
                role: None,
            },
            RosterSigner::Device(&o.admin),
        );
        o.chain.apply(vec![v2]);
        let chan = RosterChange::CreateChannel {
            name: "lunch".into(),
            members: None,
        };
        let denied = next(&o.chain, chan.clone(), RosterSigner::Device(&bilal));
        assert!(matches!(
            o.chain.clone().apply(vec![denied]).error,
            Some(RosterError::NotAuthorized { .. })
        ));
        let open = next(
            &o.chain,
            RosterChange::SetPolicy {
                policy: Policy {
                    members_create_channels: true,
                    ..Policy::default()
                },
            },
            RosterSigner::Device(&o.admin),
        );
        o.chain.apply(vec![open]);
        // Anything beyond new channels still needs an admin.
        let sneaky = next(&o.chain, add("friend"), RosterSigner::Device(&bilal));
        assert!(matches!(
            o.chain.clone().apply(vec![sneaky]).error,
            Some(RosterError::NotAuthorized { .. })
        ));
        let ok = next(&o.chain, chan, RosterSigner::Device(&bilal));
        assert_eq!(o.chain.apply(vec![ok]).error, None);
        assert_eq!(o.chain.audit().last().unwrap().signed_by, "bilal");
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
