//! Signed versions and the chain of them a node holds: who may sign the next version,
//! rollback, and the fork rule.

use super::*;

/// Who signs a roster version.
#[derive(Clone, Copy)]
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
    /// On a chain's head only: when each device was first listed on that chain (the
    /// `issued_at` of the first version naming it). Bounds how far back its messages may be
    /// dated ([`crate::message::check_rules`]).
    listed_since: Option<std::sync::Arc<HashMap<DeviceId, u64>>>,
    /// On a chain's head only: rights to post that later versions took away (see
    /// [`PastRight`]).
    past: Option<std::sync::Arc<HashMap<DeviceId, Vec<PastRight>>>>,
}

/// A right to post in a channel that a device had and a later version took away (its member
/// removed, the device revoked, the member taken off the channel or given a role that does
/// not post). What the device signed while it had the right stays its member's: a device that
/// catches up later (a new colleague, a replacement laptop) still takes a leaver's messages,
/// though the head no longer names the leaver.
///
/// `from` and `until` are the `issued_at` of the first version that gave the right and of
/// the one that took it: admin-signed times, so the window is the org's word. A removed
/// device that kept its key can still sign messages dated inside it; they chain only after
/// its last real message (dated no more than 5 min before it), are signed by it, and are
/// attributed to it, as its real messages are (docs/security.md).
///
/// A reader of a channel where only some post had a right to answer there (react, vote:
/// [`crate::e2e::Content::Response`]); taken off it, what it answered before stays too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastRight {
    /// A channel, or [`PastRight::DMS`]: the member's direct messages.
    pub channel: String,
    pub member: String,
    pub from: u64,
    pub until: u64,
    /// What the device could do there: post, or, as a reader where only some post, reply in
    /// threads or answer only.
    pub right: Right,
}

/// What a member may write in a channel, least first: a reader's answer (a reaction, a vote,
/// a read receipt: [`crate::e2e::Content::Response`]), a reader's reply in a thread
/// ([`crate::e2e::Content::ThreadReply`]) as well, or anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Right {
    Answer,
    Reply,
    Post,
}

impl PastRight {
    /// The `channel` of a right to the member's direct messages (no channel is named so).
    pub const DMS: &'static str = "@";

    fn covers(&self, channel: &str) -> bool {
        self.channel == channel
            || (self.channel == Self::DMS
                && dm_members(channel).is_some_and(|names| names.contains(&self.member.as_str())))
    }
}

/// A roster body in any [`Layout`], read field by field for as long as bytes remain (each
/// layout is a prefix of the next), and canonical: exactly what [`Roster::encode_body`]
/// writes for it, so one roster has one body and one hash (the first release's layout,
/// read but never written, exactly its own encoding).
fn decode_body(body: &[u8]) -> Result<Roster, RosterError> {
    fn next<'a, T: serde::Deserialize<'a>>(
        rest: &mut &'a [u8],
        layout: &mut Layout,
        then: Layout,
    ) -> Result<Option<T>, RosterError> {
        if rest.is_empty() {
            return Ok(None);
        }
        let (v, after) = postcard::take_from_bytes::<T>(rest)
            .map_err(|e| RosterError::Malformed(e.to_string()))?;
        (*rest, *layout) = (after, then);
        Ok(Some(v))
    }
    let (first, mut rest) = postcard::take_from_bytes::<FirstLayout>(body)
        .map_err(|e| RosterError::Malformed(e.to_string()))?;
    let (mut r, mut layout) = (Roster::from(first), Layout::First);
    if let Some(files) = next(&mut rest, &mut layout, Layout::Files)? {
        r.files = files;
    }
    if let Some(governance) = next(&mut rest, &mut layout, Layout::Governance)? {
        r.governance = governance;
    }
    if let Some(archived) = next(&mut rest, &mut layout, Layout::Archived)? {
        r.archived = archived;
    }
    if let Some(renamed) = next(&mut rest, &mut layout, Layout::Renamed)? {
        r.renamed = renamed;
    }
    if let Some(full_names) = next(&mut rest, &mut layout, Layout::FullNames)? {
        r.full_names = full_names;
    }
    if let Some(posters) = next(&mut rest, &mut layout, Layout::Posters)? {
        r.posters = posters;
    }
    if let Some(groups) = next(&mut rest, &mut layout, Layout::Groups)? {
        r.groups = groups;
    }
    if let Some(replies) = next(&mut rest, &mut layout, Layout::Replies)? {
        r.replies = replies;
    }
    if let Some(titles) = next(&mut rest, &mut layout, Layout::Titles)? {
        r.titles = titles;
    }
    let written = match layout {
        Layout::First => r.encode_as(Layout::First),
        _ => r.encode_body(),
    };
    if !rest.is_empty() || written != body {
        return Err(RosterError::Malformed("non-canonical roster body".into()));
    }
    Ok(r)
}

impl VerifiedRoster {
    pub fn sign(roster: Roster, signer: RosterSigner<'_>) -> VerifiedRoster {
        let body = roster.encode_body();
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
        let roster = decode_body(&w.body)?;
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
            listed_since: None,
            past: None,
        })
    }

    pub fn version(&self) -> u64 {
        self.roster.version
    }

    /// When `device` was first listed on the chain whose head this is (`None` on other
    /// versions, or for a device never listed).
    pub fn listed_since(&self, device: &DeviceId) -> Option<u64> {
        self.listed_since.as_ref()?.get(device).copied()
    }

    /// The member under which `device` could post in `channel` at `sent_at` by a right a
    /// later version took away (`None` on versions other than a chain's head). Only for
    /// messages the head's own rules refuse ([`crate::message::check_rules`]).
    pub fn posted_before(&self, device: &DeviceId, channel: &str, sent_at: u64) -> Option<&str> {
        self.had_right(device, channel, sent_at, Right::Post)
    }

    /// As [`Self::posted_before`], for a message that needs only `need` (a reader's answer
    /// or reply in a thread): a right to post, or one at least `need`.
    pub fn had_right(
        &self,
        device: &DeviceId,
        channel: &str,
        sent_at: u64,
        need: Right,
    ) -> Option<&str> {
        self.past
            .as_ref()?
            .get(device)?
            .iter()
            .find(|r| {
                r.covers(channel)
                    && r.right >= need
                    && sent_at < r.until
                    && sent_at.saturating_add(crate::message::BEFORE_LISTED_MS) >= r.from
            })
            .map(|r| r.member.as_str())
    }

    /// Whether `device` ever lost a right to post in `channel`: catch-up still serves what it
    /// signed there (the requester checks the dates).
    pub fn posted_once(&self, device: &DeviceId, channel: &str) -> bool {
        self.past
            .as_ref()
            .and_then(|p| p.get(device))
            .is_some_and(|rs| rs.iter().any(|r| r.covers(channel)))
    }

    /// When the DM `channel` with a member who left stopped taking messages: that member's
    /// removal (`None` if it is no such DM, or on versions other than a chain's head). What
    /// the one who stays wrote there before is still theirs.
    pub fn dm_ended(&self, channel: &str) -> Option<u64> {
        // It ended when the first of those who left was removed.
        let (_, left) = self.roster.dm_with_leaver(channel)?;
        let past = self.past.as_ref()?;
        left.iter()
            .filter_map(|who| {
                past.values()
                    .flatten()
                    .filter(|r| r.channel == PastRight::DMS && r.member == *who)
                    .map(|r| r.until)
                    .max()
            })
            .min()
    }

    /// Whether `name` was a member on the chain whose head this is and is no longer (a
    /// leaver, by the rights it lost; `false` on other versions).
    pub fn was_member(&self, name: &str) -> bool {
        self.roster.member(name).is_none()
            && self
                .past
                .as_ref()
                .is_some_and(|p| p.values().flatten().any(|r| r.member == name))
    }

    /// `@bilal,chen` (or `@Bilal, @chen`): the group conversation of this device's member
    /// and those named. A canonical name (`@amina,bilal`) is taken as it is where it lists
    /// this member, for a relay or an archive (how they name what they store), and where
    /// this member may not be in it (so reading it is refused with whose it is).
    fn resolve_group(&self, me: &DeviceId, target: &str) -> crate::Result<String> {
        match self.group_with_me(me, target) {
            Err(crate::Error::Denied(_)) if crate::roster::is_dm(target) => Ok(target.to_string()),
            other => other,
        }
    }

    fn group_with_me(&self, device: &DeviceId, target: &str) -> crate::Result<String> {
        if crate::roster::dm_members(target).is_some_and(|names| {
            self.member_of_device(device)
                .is_none_or(|m| m.role.stores_all() || names.contains(&m.name.as_str()))
        }) {
            return Ok(target.to_string());
        }
        let me = self.dm_member(device)?;
        let mut names = vec![me.name.as_str()];
        for typed in target.split(',').map(|t| t.trim().trim_start_matches('@')) {
            if !typed.is_empty() {
                names.push(self.dm_party(me, typed)?);
            }
        }
        // Only its own name (`@amina,amina`) is this member's notes.
        let channel = crate::roster::dm_channel_of(names);
        match crate::roster::dm_members(&channel) {
            Some(_) => Ok(channel),
            None => Err(crate::Error::Invalid(format!(
                "a direct conversation has at most {} members, you among them; for more, an admin makes a channel",
                crate::roster::MAX_DM_MEMBERS
            ))),
        }
    }

    /// O(1) lookup: this is on the path of every received message.
    pub fn member_of_device(&self, device: &DeviceId) -> Option<&Member> {
        self.by_device.get(device).map(|&i| &self.roster.members[i])
    }

    /// The channel `target` names for this device: `@NAME` is the direct-message channel
    /// between this device's member and NAME (its own name: its notes), `@NAME,NAME` their group conversation with
    /// those named (`resolve_group`); anything else names a channel
    /// ([`Roster::channel_typed`]).
    pub fn resolve_channel(&self, me: &DeviceId, target: &str) -> crate::Result<String> {
        let Some(other) = target.strip_prefix('@').filter(|t| !t.contains(',')) else {
            if target.starts_with('@') {
                return self.resolve_group(me, target);
            }
            // As typed: `#general` as the views show it, `General`. A mistyped name would read
            // as an empty channel: say which there are.
            return match self.roster.channel_typed(target) {
                Some(c) => Ok(c.name.clone()),
                None => Err(crate::Error::Invalid(
                    self.roster.no_channel(target, self.member_of_device(me)),
                )),
            };
        };
        // A relay or an archive names a member's notes, which it stores, as they are.
        if self
            .member_of_device(me)
            .is_some_and(|m| m.role.stores_all())
            && self.roster.member(other).is_some()
        {
            return Ok(target.to_string());
        }
        let me = self.dm_member(me)?;
        let other = self.dm_party(me, other)?;
        // Its own name: this member's notes.
        Ok(crate::roster::dm_channel_of([me.name.as_str(), other]))
    }

    /// This device's member, who has direct messages.
    fn dm_member(&self, me: &DeviceId) -> crate::Result<&Member> {
        self.member_of_device(me).ok_or_else(|| {
            crate::Error::Denied(
                "this device is not on the roster, so it has no direct messages".into(),
            )
        })
    }

    /// The roster name of `typed` (as people type it) for a direct conversation with `me`:
    /// a member the policy lets `me` write with, `me` itself (the caller says why not), or
    /// a member who left (their conversation is still read, `Roster::dm_with_leaver`;
    /// sending is refused with the reason).
    fn dm_party<'a>(&'a self, me: &Member, typed: &'a str) -> crate::Result<&'a str> {
        match self.roster.member_typed(typed) {
            Some(m) if m.name != me.name && !self.roster.dm_allowed(me, m) => {
                Err(crate::Error::Denied(format!(
                    "direct messages between '{}' ({}) and '{}' ({}) are not allowed by the org policy (dms: {:?})",
                    me.name, me.role, m.name, m.role, self.roster.policy.dms
                )))
            }
            Some(m) => Ok(m.name.as_str()),
            None if self.was_member(typed) => Ok(typed),
            None => Err(crate::Error::Invalid(format!(
                "no member named '{typed}' (see the roster)"
            ))),
        }
    }

    /// [`Self::resolve_channel`] for reading its history: a channel this device's member may
    /// not read is refused with the reason, not shown as an empty channel (which reads as
    /// "nothing was said", or as messages lost).
    pub fn readable_channel(&self, me: &DeviceId, target: &str) -> crate::Result<String> {
        let channel = self.resolve_channel(me, target)?;
        let member = self.member_of_device(me).ok_or(crate::Error::NotOnRoster)?;
        if !self.roster.may_read(member, &channel) {
            return Err(crate::Error::Denied(format!(
                "'{}' may not read '{target}': {}",
                member.name,
                self.roster.why_unreadable(&channel)
            )));
        }
        Ok(channel)
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
        && c.channels.len() > p.channels.len()
        && c.channels.starts_with(&p.channels)
        // Everything else as it was: compared whole, so a field added later is covered.
        && Roster {
            version: p.version,
            prev: p.prev,
            issued_at: p.issued_at,
            channels: p.channels.clone(),
            ..c.clone()
        } == *p
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
            // Time runs forward along the chain (`Roster::next` takes the later of now and
            // the predecessor's time): the windows of past rights are cut at these times, so
            // a version dated back would reopen what a later one closed.
            if cand.roster.issued_at < p.roster.issued_at {
                return Err(RosterError::Rule(format!(
                    "version {v} is dated before version {} ({} ms earlier)",
                    p.version(),
                    p.roster.issued_at - cand.roster.issued_at
                )));
            }
            if !p.trusts(&cand.signer) {
                if !member_created_channels(cand, p) {
                    return Err(RosterError::NotAuthorized {
                        version: v,
                        prev: p.version(),
                    });
                }
                // What an honest client checks before signing, held against a modified one,
                // which would add a "#legaI" beside "#legal", or thousands of channels for
                // every node to store in every later version and subscribe to. Not asked of
                // admins' versions, so none signed before these rules turns invalid.
                let added = &cand.roster.channels[p.roster.channels.len()..];
                if added.len() > 1 {
                    return Err(RosterError::Rule(format!(
                        "a member adds one channel a version; version {v} adds {}",
                        added.len()
                    )));
                }
                if cand.roster.channels.len() > MAX_MEMBER_CHANNELS {
                    return Err(RosterError::Rule(format!(
                        "the org has {} channels, as many as members may create; an admin can add more",
                        p.roster.channels.len()
                    )));
                }
                p.roster.check_new_channel_name(&added[0].name)?;
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

    /// Whether `device` was one of `name`'s devices in the time `name` has been on the roster
    /// without a break ([`Self::member_since`]): a device of a removed member of that name
    /// never was.
    pub fn was_device_of(&self, name: &str, device: &DeviceId) -> bool {
        let Some(since) = self.member_since(name) else {
            return false;
        };
        self.chain.iter().filter(|v| v.version() >= since).any(|v| {
            v.roster
                .member(name)
                .is_some_and(|m| m.devices.contains(device))
        })
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
        if report.changed_from.is_some() {
            self.index_listed_since();
            let past = past_rights(&self.chain);
            if let Some(h) = self.chain.last_mut() {
                h.past = Some(std::sync::Arc::new(past));
            }
        }
        report
    }

    /// Recompute the head's `listed_since` (O(devices over all versions), on roster changes
    /// only).
    fn index_listed_since(&mut self) {
        let mut since: HashMap<DeviceId, u64> = HashMap::new();
        for v in &mut self.chain {
            v.listed_since = None;
            v.past = None;
            for d in v.by_device.keys() {
                since.entry(*d).or_insert(v.roster.issued_at);
            }
        }
        if let Some(h) = self.chain.last_mut() {
            h.listed_since = Some(std::sync::Arc::new(since));
        }
    }
}

/// Every right to post (or to answer) in a channel that a version of `chain` took away (see
/// [`PastRight`]).
/// On roster changes only: each pair of versions compares the members, and the channels only
/// where a member, a device or a role changed or a channel's list did; a lost right looks
/// back for when it began.
fn past_rights(chain: &[VerifiedRoster]) -> HashMap<DeviceId, Vec<PastRight>> {
    let mut out: HashMap<DeviceId, Vec<PastRight>> = HashMap::new();
    // What a member may do in a channel (`None`: nothing).
    let may = |r: &crate::roster::Roster, m: &Member, c: &str| {
        if r.may_post(m, c) {
            Some(Right::Post)
        } else if r.may_reply(m, c) {
            Some(Right::Reply)
        } else if r.may_respond(m, c) {
            Some(Right::Answer)
        } else {
            None
        }
    };
    // `c` None: the device's DMs, held while it is its member's and the member posts.
    let held = |u: &VerifiedRoster, d: &DeviceId, name: &str, c: Option<(&str, Right)>| {
        u.member_of_device(d).is_some_and(|m| {
            m.name == name
                && match c {
                    Some((c, right)) => may(&u.roster, m, c) >= Some(right),
                    None => !m.role.stores_all(),
                }
        })
    };
    let since = |i: usize, d: &DeviceId, name: &str, c: Option<(&str, Right)>| {
        chain[..=i]
            .iter()
            .rev()
            .take_while(|u| held(u, d, name, c))
            .last()
            .map(|u| u.roster.issued_at)
    };
    for (i, pair) in chain.windows(2).enumerate() {
        let (v, w) = (&pair[0].roster, &pair[1].roster);
        let changed: Vec<&Channel> = v
            .channels
            .iter()
            .filter(|c| {
                w.channel(&c.name) != Some(*c)
                    || v.is_archived(&c.name) != w.is_archived(&c.name)
                    || v.posters(&c.name) != w.posters(&c.name)
                    || v.readers_reply(&c.name) != w.readers_reply(&c.name)
            })
            .collect();
        let all: Vec<&Channel> = v.channels.iter().collect();
        let now: HashMap<&str, &Member> = w.members.iter().map(|m| (m.name.as_str(), m)).collect();
        for m in &v.members {
            let same = now.get(m.name.as_str()).filter(|n| n.role == m.role);
            for d in &m.devices {
                let kept = same.filter(|n| n.devices.contains(d));
                let candidates = match kept {
                    Some(_) => &changed,
                    None => &all,
                };
                for c in candidates {
                    let has = kept.and_then(|n| may(w, n, &c.name));
                    let Some(had) = may(v, m, &c.name).filter(|h| has < Some(*h)) else {
                        continue;
                    };
                    out.entry(*d).or_default().push(PastRight {
                        channel: c.name.clone(),
                        member: m.name.clone(),
                        from: since(i, d, &m.name, Some((&c.name, had))).unwrap_or(v.issued_at),
                        until: w.issued_at,
                        right: had,
                    });
                }
                // Gone from the roster, or no longer its member's: its DMs end too.
                let gone = now
                    .get(m.name.as_str())
                    .is_none_or(|n| !n.devices.contains(d));
                if gone && !m.role.stores_all() {
                    out.entry(*d).or_default().push(PastRight {
                        channel: PastRight::DMS.into(),
                        member: m.name.clone(),
                        from: since(i, d, &m.name, None).unwrap_or(v.issued_at),
                        until: w.issued_at,
                        right: Right::Post,
                    });
                }
            }
        }
    }
    out
}
