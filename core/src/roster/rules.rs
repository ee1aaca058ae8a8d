//! The rules of one roster document: who may read, post, subscribe and hold keys, and how
//! the next version follows from an admin's change.

use super::*;
use crate::names::{hidden_char, is_blank, looks_alike, same_but_case, without_hidden};

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
            files: FilePolicy::default(),
            governance: Governance::default(),
            archived: Vec::new(),
            renamed: Vec::new(),
            full_names: Vec::new(),
            posters: Vec::new(),
            groups: Vec::new(),
            replies: Vec::new(),
            titles: Vec::new(),
        }
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// The channel a person typed: the name it is shown under (a renamed channel's new
    /// name first), or its name on the wire; as is, or as the views show it (`#general`),
    /// or in other case (`General`) where only one channel matches.
    pub fn channel_typed(&self, typed: &str) -> Option<&Channel> {
        let bare = typed.strip_prefix('#').unwrap_or(typed);
        let renamed_to = |n: &str| {
            self.renamed
                .iter()
                .find(|(_, to)| to == n)
                .and_then(|(c, _)| self.channel(c))
        };
        renamed_to(typed)
            .or_else(|| renamed_to(bare))
            .or_else(|| self.channel(typed))
            .or_else(|| self.channel(bare))
            .or_else(|| {
                only_one(
                    self.channels
                        .iter()
                        .filter(|c| same_but_case(self.shown(&c.name), bare)),
                )
            })
            .or_else(|| {
                only_one(
                    self.channels
                        .iter()
                        .filter(|c| same_but_case(&c.name, bare)),
                )
            })
    }

    /// The name `channel` (its name on the wire) is shown under: what an admin renamed it
    /// to, else itself. Direct-message channels and unknown names come back as given.
    pub fn shown<'a>(&'a self, channel: &'a str) -> &'a str {
        self.renamed
            .iter()
            .find(|(c, _)| c == channel)
            .map_or(channel, |(_, to)| to.as_str())
    }

    /// Every name a channel goes by: its wire names, and what renamed ones are shown as.
    fn all_channel_names(&self) -> impl Iterator<Item = &str> {
        self.channels
            .iter()
            .map(|c| c.name.as_str())
            .chain(self.renamed.iter().map(|(_, to)| to.as_str()))
    }

    /// The member a person typed: the roster name as is, or in other case where only one
    /// matches; else the full name an admin gave them ("Amina Haddad"), as is or in other
    /// case (full names are unique but for case, see [`Roster::check_full_name`]).
    pub fn member_typed(&self, typed: &str) -> Option<&Member> {
        let by_full_name = |same: fn(&str, &str) -> bool| {
            only_one(self.full_names.iter().filter(|(_, f)| same(f, typed)))
                .and_then(|(m, _)| self.member(m))
        };
        self.member(typed)
            .or_else(|| {
                only_one(
                    self.members
                        .iter()
                        .filter(|m| same_but_case(&m.name, typed)),
                )
            })
            .or_else(|| by_full_name(|f, t| f == t))
            .or_else(|| by_full_name(same_but_case))
    }

    /// The full name an admin gave `member` (a roster name), if any.
    pub fn full_name(&self, member: &str) -> Option<&str> {
        self.full_names
            .iter()
            .find(|(m, _)| m == member)
            .map(|(_, f)| f.as_str())
    }

    /// The job title an admin gave `member` (a roster name), if any.
    pub fn title(&self, member: &str) -> Option<&str> {
        self.titles
            .iter()
            .find(|(m, _)| m == member)
            .map(|(_, t)| t.as_str())
    }

    /// What the views call `member`: their full name, else their roster name (and any
    /// other name, a leaver's, as given).
    pub fn person<'a>(&'a self, member: &'a str) -> &'a str {
        self.full_name(member).unwrap_or(member)
    }

    /// Who is in group `name` (as written on the roster, or as a mention carries it: case
    /// and Arabic forms folded, see [`crate::search::text::normalize`]), if there is one.
    pub fn group(&self, name: &str) -> Option<&[String]> {
        self.group_entry(name).map(|(_, m)| m.as_slice())
    }

    /// The group `name` names, with the name it was made with (see [`Roster::group`]).
    fn group_entry(&self, name: &str) -> Option<&(String, Vec<String>)> {
        let folded = crate::search::text::normalize(name);
        self.groups.iter().find(|(g, _)| g == name).or_else(|| {
            self.groups
                .iter()
                .find(|(g, _)| crate::search::text::normalize(g) == folded)
        })
    }

    /// A group other than `but` whose name is `name` as a mention folds it, or looks like it
    /// (UTS #39): a mention of one could reach the other.
    fn group_like(&self, name: &str, but: Option<&str>) -> Option<&str> {
        let folded = crate::search::text::normalize(name);
        self.groups
            .iter()
            .map(|(g, _)| g.as_str())
            .filter(|g| Some(*g) != but)
            .find(|g| crate::search::text::normalize(g) == folded || looks_alike(g, name))
    }

    /// The names a mention of `member` may carry: their roster name, and each group they
    /// are in (`@hr` reaches everyone in hr), besides `@channel` and `@here`.
    pub fn addressed_as<'a>(&'a self, member: &'a str) -> Vec<&'a str> {
        std::iter::once(member)
            .chain(
                self.groups
                    .iter()
                    .filter(|(_, m)| m.iter().any(|n| n == member))
                    .map(|(g, _)| g.as_str()),
            )
            .collect()
    }

    /// The members `typed` names (as people type them: [`Roster::member_typed`]), each
    /// once, in order, every one passing `check`; at least one (else `none` says what to do).
    fn members_named(
        &self,
        typed: &[String],
        none: impl FnOnce() -> String,
        check: impl Fn(&Member) -> Result<(), String>,
    ) -> Result<Vec<String>, RosterError> {
        if typed.is_empty() {
            return Err(RosterError::Rule(none()));
        }
        let mut names: Vec<String> = Vec::new();
        for t in typed {
            let m = self
                .member_typed(t)
                .ok_or_else(|| RosterError::Rule(format!("no member named '{t}'")))?;
            check(m).map_err(RosterError::Rule)?;
            if !names.contains(&m.name) {
                names.push(m.name.clone());
            }
        }
        Ok(names)
    }

    /// `change` with each `@group` in it replaced by the group's members: for adding, those
    /// not on the channel already (`now`); for taking off, those on it; for setting, all.
    /// A group that would add or take off nobody is said so.
    fn groups_expanded(
        &self,
        change: &MembersChange,
        now: Option<&[String]>,
    ) -> Result<MembersChange, RosterError> {
        let expand = |names: &[String], keep: &dyn Fn(&String) -> bool| {
            let mut out: Vec<String> = Vec::new();
            for n in names {
                match n
                    .strip_prefix('@')
                    .and_then(|g| self.group(g).map(|m| (g, m)))
                {
                    Some((g, members)) => {
                        let picked: Vec<&String> = members.iter().filter(|m| keep(m)).collect();
                        if picked.is_empty() {
                            return Err(RosterError::Rule(format!(
                                "everyone in @{g} is that way already; nothing to change"
                            )));
                        }
                        out.extend(picked.into_iter().cloned());
                    }
                    None => out.push(n.clone()),
                }
            }
            out.dedup();
            Ok(out)
        };
        let on = |m: &String| now.is_some_and(|l| l.contains(m));
        Ok(match change {
            MembersChange::Add(names) => MembersChange::Add(expand(names, &|m| !on(m))?),
            MembersChange::Remove(names) => MembersChange::Remove(expand(names, &on)?),
            MembersChange::Set(Some(names)) => MembersChange::Set(Some(expand(names, &|_| true)?)),
            MembersChange::Set(None) => MembersChange::Set(None),
        })
    }

    /// The rules a group's name meets: it is what a mention carries (`@it-support`:
    /// letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit), and a
    /// mention of it could not be taken for anyone's (no member's roster or full name, the
    /// same but for case or a look-alike, no other group's, not `@channel`, `@here`).
    pub(crate) fn check_group_name(&self, name: &str) -> Result<(), RosterError> {
        use crate::search::text::{mentions, normalize};
        let said =
            |why: String| RosterError::Rule(format!("'{name}' is not a good group name: {why}"));
        let word = |c: char| c.is_alphanumeric();
        if name.is_empty()
            || name.len() > MAX_NAME_BYTES
            || !name
                .chars()
                .all(|c| word(c) || matches!(c, '-' | '_' | '.'))
            || !name.starts_with(word)
            || !name.ends_with(word)
            || mentions(&format!("@{name}")) != [normalize(name)]
        {
            return Err(said(format!(
                "a group is mentioned as @name, so its name is 1-{MAX_NAME_BYTES} bytes of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
            )));
        }
        let folded = normalize(name);
        if ["channel", "here", "everyone", "all", "me"].contains(&folded.as_str()) {
            return Err(said(format!(
                "@{folded} already means something in a message; pick another"
            )));
        }
        for m in &self.members {
            for n in std::iter::once(m.name.as_str()).chain(self.full_name(&m.name)) {
                if normalize(n) == folded || same_but_case(n, name) || looks_alike(n, name) {
                    return Err(said(format!(
                        "it is, or looks like, the name of member '{}'; a mention of it must not be taken for theirs",
                        m.name
                    )));
                }
            }
        }
        if let Some(g) = self.group_like(name, Some(name)) {
            return Err(said(format!(
                "it is, or looks like, the group '{g}' already there"
            )));
        }
        Ok(())
    }

    /// The rules a job title meets: it reads as text (no character that draws nothing or
    /// turns the text around it, no spaces at either end). Not unique: a company has many
    /// accountants.
    pub(crate) fn check_title(member: &str, title: &str) -> Result<(), RosterError> {
        reads_as_text(title, "a job title", MAX_TITLE_BYTES).map_err(|why| {
            RosterError::Rule(format!(
                "'{title}' is not a good job title for '{member}': {why}"
            ))
        })
    }

    /// The rules a full name for `member` meets: it reads as a name (no character that
    /// draws nothing or turns the text around it, no spaces at either end, nothing a view
    /// would take for a channel or a mention in front), and nobody could take it for
    /// someone else: not another member's roster name or full name, in any case, nor one
    /// that looks like them ([`looks_alike`]). Two colleagues both called "Omar Said" are
    /// told apart by a middle name or initial, as a company directory does.
    pub(crate) fn check_full_name(&self, member: &str, full: &str) -> Result<(), RosterError> {
        let said = |why: String| {
            RosterError::Rule(format!(
                "'{full}' is not a good full name for '{member}': {why}"
            ))
        };
        reads_as_text(full, "a full name", MAX_FULL_NAME_BYTES).map_err(said)?;
        if full.starts_with(['@', '#']) {
            return Err(said(
                "it starts with '@' or '#', which the views show in front of mentions and channels"
                    .into(),
            ));
        }
        let others = self.members.iter().filter(|m| m.name != member);
        for m in others {
            let names = std::iter::once(m.name.as_str()).chain(self.full_name(&m.name));
            for n in names {
                if same_but_case(n, full) || looks_alike(n, full) {
                    return Err(said(format!(
                        "it is, or looks like, {}; pick a name nobody could take for theirs",
                        match n == m.name {
                            true => format!("the member '{n}'"),
                            false => format!("'{}', the full name of '{}'", n, m.name),
                        }
                    )));
                }
            }
        }
        Ok(())
    }

    /// The rules a new channel's name meets beyond [`valid_name`] (which every roster
    /// version is checked against, so it cannot tighten without refusing old rosters): no
    /// `#` in front, which every view adds and which would show as `##ops`; no spaces at
    /// either end; no character that draws nothing or turns the text around it; and no
    /// name that differs from an existing one only in case, since "General" beside
    /// "general" is two channels nobody can tell apart, or that looks like one (see
    /// [`looks_alike`]): a "#legaI" beside "#legal" is how an insider would collect what
    /// was meant for the real one. Acceptance rules for member-signed versions (see
    /// `chain::authorize`), so a modified client cannot slip one in.
    pub(crate) fn check_new_channel_name(&self, name: &str) -> Result<(), RosterError> {
        valid_name("channel", name)?;
        // Against the names channels are shown under too: a new "staff" beside a channel
        // renamed "staff" would be two of them.
        if let Some(c) = self.all_channel_names().find(|c| same_but_case(c, name)) {
            return Err(RosterError::Rule(match c == name {
                true => format!("channel '{name}' already exists"),
                false => format!(
                    "channel '{c}' already exists, and '{name}' would differ from it only in case; pick another name"
                ),
            }));
        }
        let bad = match () {
            _ if name.starts_with('#') => {
                "it starts with '#', which Majlis shows in front of every channel name".into()
            }
            _ if name.trim() != name => "it starts or ends with a space".into(),
            _ => {
                // First: a hidden character that makes a second "general" is that.
                if let Some(c) = self.all_channel_names().find(|c| looks_alike(c, name)) {
                    return Err(RosterError::Rule(format!(
                        "'{name}' looks like the channel '{c}' already there; pick a name nobody could mistake for it"
                    )));
                }
                match hidden_char(name) {
                    Some(c) => hidden_said(c),
                    None if is_blank(name) => BLANK.into(),
                    None => return Ok(()),
                }
            }
        };
        let fixed = without_hidden(name.trim().trim_start_matches('#').trim());
        Err(RosterError::Rule(match is_blank(&fixed) {
            true => format!("'{name}' is not a good channel name: {bad}"),
            false => format!("'{name}' is not a good channel name: {bad}; try '{fixed}'"),
        }))
    }

    /// [`Roster::check_new_channel_name`] for a new member: no spaces at either end, no
    /// hidden characters, and not "sara" beside "Sara" or "Sаra" (a Cyrillic "а"), two
    /// people nobody could tell apart.
    fn check_new_member_name(&self, name: &str) -> Result<(), RosterError> {
        if name.trim() != name {
            return Err(RosterError::Rule(format!(
                "'{name}' is not a good member name: it starts or ends with a space; try '{}'",
                name.trim()
            )));
        }
        if let Some(m) = self.members.iter().find(|m| same_but_case(&m.name, name)) {
            return Err(RosterError::Rule(format!(
                "member '{}' already exists, and '{name}' would differ from them only in case; to add a device of theirs, write the name as it is",
                m.name
            )));
        }
        if let Some(m) = self.members.iter().find(|m| looks_alike(&m.name, name)) {
            return Err(RosterError::Rule(format!(
                "'{name}' looks like the member '{}' already there; to add a device of theirs, write the name as it is, else pick a name nobody could mistake for theirs",
                m.name
            )));
        }
        if let Some((m, f)) = self
            .full_names
            .iter()
            .find(|(_, f)| same_but_case(f, name) || looks_alike(f, name))
        {
            return Err(RosterError::Rule(format!(
                "'{name}' is, or looks like, '{f}', the full name of '{m}'; to add a device of theirs, write '{m}', else pick a name nobody could take for theirs"
            )));
        }
        if let Some(g) = self.group_like(name, None) {
            return Err(RosterError::Rule(format!(
                "'{name}' is, or looks like, the group '{g}': a mention of them would reach the group; pick another name"
            )));
        }
        let bad = match hidden_char(name) {
            Some(c) => hidden_said(c),
            None if is_blank(name) => BLANK.into(),
            None => return Ok(()),
        };
        let fixed = without_hidden(name).trim().to_string();
        Err(RosterError::Rule(match is_blank(&fixed) {
            true => format!("'{name}' is not a good member name: {bad}"),
            false => format!("'{name}' is not a good member name: {bad}; try '{fixed}'"),
        }))
    }

    /// What to tell someone who named a channel the roster does not have: which it has
    /// that `reader` may read (all of them without one), as `channel list` shows them.
    pub fn no_channel(&self, name: &str, reader: Option<&Member>) -> String {
        let readable: Vec<_> = self
            .channels
            .iter()
            .filter(|c| reader.is_none_or(|m| self.may_read(m, &c.name)))
            .map(|c| self.shown(&c.name))
            .collect();
        format!(
            "no channel '{name}'; channels: {} (or @NAME for a direct message)",
            readable.join(", ")
        )
    }

    /// [`Roster::no_channel`] where a direct message is not an option (a rule's scope).
    fn no_channel_named(&self, name: &str) -> String {
        format!(
            "no channel named '{name}'; channels: {}",
            self.channel_names()
        )
    }

    /// The wire name of the channel `typed` names, for a change that only channels take
    /// (`dm`: what a direct message named instead is told).
    fn channel_named_for(&self, typed: &str, dm: &str) -> Result<String, RosterError> {
        match self.channel_typed(typed) {
            Some(c) => Ok(c.name.clone()),
            None if typed.starts_with('@') => Err(RosterError::Rule(dm.into())),
            None => Err(RosterError::Rule(self.no_channel_named(typed))),
        }
    }

    /// The channels' names, comma-separated.
    fn channel_names(&self) -> String {
        let known: Vec<_> = self.channels.iter().map(|c| self.shown(&c.name)).collect();
        known.join(", ")
    }

    pub fn member_of_device(&self, device: &DeviceId) -> Option<&Member> {
        self.members.iter().find(|m| m.devices.contains(device))
    }

    /// Whether members `a` and `b` may exchange direct messages under the policy.
    pub fn dm_allowed(&self, a: &Member, b: &Member) -> bool {
        a.name != b.name && self.in_dms(a) && self.in_dms(b)
    }

    /// Whether `member` may be in direct conversations at all under the policy (a relay
    /// or an archive never is: it stores them).
    fn in_dms(&self, member: &Member) -> bool {
        self.policy.dms != DmPolicy::Off
            && !member.role.stores_all()
            && (member.role != Role::Guest || self.policy.dms == DmPolicy::All)
    }

    /// The members of a direct-message channel (two, or a group), if it is one whose DMs
    /// are allowed: every one of them on the roster, and each pair of them allowed. A
    /// member's notes (one name) exist whatever the DM policy, which is about members
    /// talking outside channels: notes reach nobody else (an archive still reads them). A
    /// relay or an archive has none: it never posts.
    fn dm(&self, channel: &str) -> Option<Vec<&Member>> {
        let members = dm_members(channel)?
            .into_iter()
            .map(|n| self.member(n))
            .collect::<Option<Vec<_>>>()?;
        let allowed = match members.as_slice() {
            [one] => !one.role.stores_all(),
            // Names are distinct, so each pair is allowed when each member may be in DMs.
            _ => members.iter().all(|m| self.in_dms(m)),
        };
        allowed.then_some(members)
    }

    /// A direct-message channel some of whose members have left the org: those still on the
    /// roster keep reading it, and nobody posts in it (who is still here starts a new
    /// conversation). Returns (who stays, who left); `None` if nobody left or nobody stays.
    pub fn dm_with_leaver<'a>(
        &'a self,
        channel: &'a str,
    ) -> Option<(Vec<&'a Member>, Vec<&'a str>)> {
        let (mut stays, mut left) = (Vec::new(), Vec::new());
        for name in dm_members(channel)? {
            match self.member(name) {
                Some(m) => stays.push(m),
                None => left.push(name),
            }
        }
        (!stays.is_empty() && !left.is_empty()).then_some((stays, left))
    }

    /// A channel messages may be posted in, or read: a listed channel, an allowed DM pair, or
    /// a DM with a member who left (read only).
    pub fn channel_exists(&self, channel: &str) -> bool {
        self.channel(channel).is_some()
            || self.dm(channel).is_some()
            || self.dm_with_leaver(channel).is_some()
    }

    pub fn may_read(&self, member: &Member, channel: &str) -> bool {
        if let Some(members) = self.dm(channel) {
            return member.role.stores_all() || members.iter().any(|m| m.name == member.name);
        }
        if let Some((stays, _)) = self.dm_with_leaver(channel) {
            return member.role.stores_all() || stays.iter().any(|m| m.name == member.name);
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

    /// Why a member whom [`Roster::may_read`] refuses may not read `channel` (a wire name),
    /// in words that say what to do: whose channel or conversation it is.
    pub fn why_unreadable(&self, channel: &str) -> String {
        match super::dm_members(channel) {
            Some(names) if names.len() == 1 => format!(
                "it is {}'s notes, which only their own devices read",
                names[0]
            ),
            Some(names) => format!(
                "it is the direct conversation of {}",
                super::and_list(&names)
            ),
            None => match self.channel(channel).and_then(|c| c.members.as_ref()) {
                Some(names) => format!(
                    "it is open to {} only; an admin can add you to it",
                    names.join(", ")
                ),
                None => {
                    "a guest reads only the channels that name them; an admin can add you to one"
                        .into()
                }
            },
        }
    }

    /// The members who may read `channel`, in roster order (relays and archives included:
    /// they store what they may not read as ciphertext, see [`Role::stores_all`]).
    pub fn readers<'a>(&'a self, channel: &'a str) -> impl Iterator<Item = &'a Member> + 'a {
        self.members
            .iter()
            .filter(move |m| self.may_read(m, channel))
    }

    pub fn may_post(&self, member: &Member, channel: &str) -> bool {
        self.may_share_keys(member, channel)
            && self.dm_with_leaver(channel).is_none()
            && !self.is_archived(channel)
            && self
                .posters(channel)
                .is_none_or(|p| p.contains(&member.name))
    }

    /// Whether `member` may react to messages of `channel` and vote in its polls: wherever it
    /// may post, and, where an admin let only some of its readers post (announcements), as
    /// one of its other readers too. Not in an archived channel or a DM whose member left:
    /// nothing moves there. A reader who may not post answers with
    /// [`crate::e2e::Content::Response`] messages, which hold a reaction or a vote only.
    pub fn may_respond(&self, member: &Member, channel: &str) -> bool {
        self.may_post(member, channel)
            || (self.posters(channel).is_some()
                && self.may_share_keys(member, channel)
                && !self.is_archived(channel)
                && self.dm_with_leaver(channel).is_none())
    }

    /// Whether `member` may reply in the threads of `channel`: wherever it may post, and as
    /// a reader who answers ([`Roster::may_respond`]) where an admin let readers reply. Such
    /// a reader's replies travel as [`crate::e2e::Content::ThreadReply`], which holds a reply
    /// in a thread only.
    pub fn may_reply(&self, member: &Member, channel: &str) -> bool {
        self.may_post(member, channel)
            || (self.may_respond(member, channel) && self.readers_reply(channel))
    }

    /// Whether an admin let the readers of `channel` (where only some post) reply in its
    /// threads.
    pub fn readers_reply(&self, channel: &str) -> bool {
        self.posters(channel).is_some() && self.replies.iter().any(|c| c == channel)
    }

    /// Who posts in `channel` (a wire name) where an admin let only some of its readers
    /// post; `None` where every reader does.
    pub fn posters(&self, channel: &str) -> Option<&[String]> {
        self.posters
            .iter()
            .find(|(c, _)| c == channel)
            .map(|(_, p)| p.as_slice())
    }

    /// Why [`Roster::may_post`] refuses `member` in `channel` (a wire name), as they are told
    /// when they try: under the name they know it by, with what would let them.
    pub fn why_not_post(&self, member: &Member, channel: &str) -> String {
        if member.role.stores_all() {
            return format!(
                "'{}' is the org's {}: it stores and serves what members post, and never posts",
                member.name, member.role
            );
        }
        if self.dm_with_leaver(channel).is_some() {
            return super::left_dm_text(self, channel);
        }
        if self.is_archived(channel) {
            return Self::archived_text(self.shown(channel));
        }
        if let (Some(p), true) = (self.posters(channel), self.may_read(member, channel)) {
            let who = match p {
                [] => "nobody posts there now".to_string(),
                [one] => format!("only {one} posts there"),
                _ => format!("only {} post there", p.join(", ")),
            };
            return format!(
                "'{}' reads #{} and may not post in it: {who}; an admin can let you",
                member.name,
                self.shown(channel)
            );
        }
        let shown = match super::dm_members(channel) {
            Some(_) => channel.to_string(),
            None => format!("#{}", self.shown(channel)),
        };
        format!(
            "'{}' may not post in {shown}: {}",
            member.name,
            self.why_unreadable(channel)
        )
    }

    /// Whether an admin archived `channel`: readable, and nobody posts in it (but keys to
    /// its history, for readers' new devices, see [`crate::message::check_rules`]).
    pub fn is_archived(&self, channel: &str) -> bool {
        self.archived.iter().any(|c| c == channel)
    }

    /// What someone who tries to post in an archived channel is told.
    pub fn archived_text(channel: &str) -> String {
        format!(
            "{}; an admin can bring it back",
            super::ARCHIVED_TEXT.replace("{channel}", channel)
        )
    }

    /// Whether `member` may post key grants in `channel`: any reader that posts at all, also
    /// where nobody may write any more (a DM with a member who left), so that the member's
    /// new device is given the keys to what it may read.
    pub fn may_share_keys(&self, member: &Member, channel: &str) -> bool {
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
    /// own (which carries its notes, and its DMs if it has anyone to write with); for a
    /// relay or an archive, every member's.
    pub fn inboxes(&self, member: &Member) -> Vec<String> {
        self.members
            .iter()
            .filter(|o| (member.role.stores_all() || o.name == member.name) && !o.role.stores_all())
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
        // A renamed channel exists, is renamed once, and its name is nobody else's.
        let mut renamed = std::collections::HashSet::new();
        let mut taken = std::collections::HashSet::new();
        for (c, to) in &self.renamed {
            valid_name("channel", to)?;
            if !chans.contains(c.as_str())
                || !renamed.insert(c.as_str())
                || chans.contains(to.as_str())
                || !taken.insert(to.as_str())
            {
                return Err(RosterError::Rule(format!(
                    "'{c}' is renamed '{to}' twice, is not a channel, or takes another channel's name"
                )));
            }
        }
        // A full name is a listed member's, set once, and reads as a name. (What
        // `check_full_name` adds beyond this is asked only when an admin sets one, so a
        // rule tightened later cannot refuse versions signed before it.)
        let mut named = std::collections::HashSet::new();
        for (m, f) in &self.full_names {
            if !names.contains(m.as_str())
                || !named.insert(m.as_str())
                || f.is_empty()
                || f.len() > MAX_FULL_NAME_BYTES
                || f.chars().any(|c| c.is_control())
            {
                return Err(RosterError::Rule(format!(
                    "'{m}' is given a full name twice, is not a member, or '{}' is not a name",
                    f.escape_debug()
                )));
            }
        }
        // A job title: a listed member's, set once, 1-128 bytes of text (what `check_title`
        // adds is asked only when an admin sets one, as for full names).
        let mut titled = std::collections::HashSet::new();
        for (m, t) in &self.titles {
            if !names.contains(m.as_str())
                || !titled.insert(m.as_str())
                || t.is_empty()
                || t.len() > MAX_TITLE_BYTES
                || t.chars().any(|c| c.is_control())
            {
                return Err(RosterError::Rule(format!(
                    "'{m}' is given a job title twice, is not a member, or '{}' is not a title",
                    t.escape_debug()
                )));
            }
        }
        // A channel's posters: a channel of the roster, set once, each a member (none left
        // when the last one was removed: nobody posts until an admin names someone).
        let mut limited = std::collections::HashSet::new();
        for (c, p) in &self.posters {
            if !chans.contains(c.as_str())
                || !limited.insert(c.as_str())
                || p.iter().any(|n| !names.contains(n.as_str()))
                || (1..p.len()).any(|i| p[..i].contains(&p[i]))
            {
                return Err(RosterError::Rule(format!(
                    "who posts in '{c}' is set twice, names someone not on the roster, or '{c}' is not a channel"
                )));
            }
        }
        // Readers who reply: in a channel where only some post, named once.
        let mut replying = std::collections::HashSet::new();
        for c in &self.replies {
            if !limited.contains(c.as_str()) || !replying.insert(c.as_str()) {
                return Err(RosterError::Rule(format!(
                    "the readers of '{c}' are let reply twice, or '{c}' is not a channel where only some post"
                )));
            }
        }
        // A group: named once, its members on the roster, each once. (What
        // `check_group_name` adds is asked only when an admin sets one.)
        let mut grouped = std::collections::HashSet::new();
        for (g, m) in &self.groups {
            if g.is_empty()
                || g.len() > MAX_NAME_BYTES
                || !grouped.insert(g.as_str())
                || m.iter().any(|n| !names.contains(n.as_str()))
                || (1..m.len()).any(|i| m[..i].contains(&m[i]))
            {
                return Err(RosterError::Rule(format!(
                    "group '{}' is set twice, is not a name, or names someone not on the roster",
                    g.escape_debug()
                )));
            }
        }
        let mut archived = std::collections::HashSet::new();
        for a in &self.archived {
            if !chans.contains(a.as_str()) || !archived.insert(a.as_str()) {
                return Err(RosterError::Rule(format!(
                    "'{a}' is archived twice, or is not a channel"
                )));
            }
        }
        Ok(())
    }

    /// The next version with every change of `changes` applied in order (one version: a
    /// bulk import of members is one signature and one roster to send, not hundreds).
    pub fn next_all(
        &self,
        prev_hash: [u8; 32],
        changes: &[RosterChange],
        now: u64,
    ) -> Result<Roster, RosterError> {
        let mut r = self.clone();
        for c in changes {
            r = r.next(prev_hash, c, now)?;
        }
        r.version = self.version + 1;
        r.prev = Some(prev_hash);
        Ok(r)
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
                if r.member(name).is_none() {
                    r.check_new_member_name(name)?;
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
                r.full_names.retain(|(m, _)| m != name);
                r.titles.retain(|(m, _)| m != name);
                for (_, p) in r.posters.iter_mut().chain(&mut r.groups) {
                    p.retain(|m| m != name);
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
                r.check_new_channel_name(name)?;
                r.channels.push(Channel {
                    name: name.clone(),
                    members: members.clone(),
                });
            }
            RosterChange::ChannelMembers { name, change } => {
                // As typed (`#legal`), like every command that names a channel.
                let found = r.channel_typed(name).map(|c| c.name.clone());
                let Some(c) = found.and_then(|n| r.channels.iter_mut().find(|c| c.name == n))
                else {
                    return Err(RosterError::Rule(self.no_channel_named(name)));
                };
                let change = self.groups_expanded(change, c.members.as_deref())?;
                c.members = members_after(self.shown(&c.name), c.members.as_deref(), &change)?;
            }
            RosterChange::ArchiveChannel { name, archived } => {
                let c = self.channel_named_for(
                    name,
                    "direct messages are not archived; only channels are",
                )?;
                let shown = self.shown(&c);
                match (r.is_archived(&c), archived) {
                    (true, true) => {
                        return Err(RosterError::Rule(format!(
                            "#{shown} is already archived; nothing to change"
                        )))
                    }
                    (false, false) => {
                        return Err(RosterError::Rule(format!(
                            "#{shown} is not archived; nothing to change"
                        )))
                    }
                    (false, true) => r.archived.push(c),
                    (true, false) => r.archived.retain(|a| *a != c),
                }
            }
            RosterChange::RenameChannel { name, to } => {
                let c = self.channel_named_for(
                    name,
                    "direct messages are not renamed; only channels are",
                )?;
                if self.shown(&c) == to {
                    return Err(RosterError::Rule(format!(
                        "the channel is already called #{to}; nothing to change"
                    )));
                }
                r.renamed.retain(|(n, _)| *n != c);
                if *to != c {
                    // Checked as a new channel's name among the others (its own old names
                    // are free to take back, or to change the case of).
                    let mut others = r.clone();
                    others.channels.retain(|x| x.name != c);
                    others.check_new_channel_name(to)?;
                    r.renamed.push((c, to.clone()));
                }
            }
            RosterChange::ChannelPosters { name, posters } => {
                let c = self.channel_named_for(
                    name,
                    "in direct messages both post; only a channel's posters are set",
                )?;
                let shown = self.shown(&c);
                let names = match posters {
                    None => None,
                    Some(list) => Some(self.members_named(
                        list,
                        || format!("name at least one member who posts in #{shown}; to stop all posting there, archive it"),
                        |m| match (m.role.stores_all(), self.may_read(m, &c)) {
                            (true, _) => Err(format!(
                                "'{}' is the org's {}: it stores and never posts",
                                m.name, m.role
                            )),
                            (false, false) => Err(format!(
                                "'{}' does not read #{shown}, so cannot post in it; put them on it first",
                                m.name
                            )),
                            (false, true) => Ok(()),
                        },
                    )?),
                };
                if self.posters(&c).map(<[String]>::to_vec) == names {
                    return Err(RosterError::Rule(format!(
                        "who posts in #{shown} is already set that way; nothing to change"
                    )));
                }
                r.posters.retain(|(n, _)| *n != c);
                match names {
                    Some(names) => r.posters.push((c, names)),
                    // Every reader posts again: replies need no right of their own.
                    None => r.replies.retain(|n| *n != c),
                }
            }
            RosterChange::ChannelReplies { name, on } => {
                let c = self.channel_named_for(
                    name,
                    "in direct messages both post; only a channel's readers are let reply",
                )?;
                let shown = self.shown(&c);
                if self.posters(&c).is_none() {
                    return Err(RosterError::Rule(format!(
                        "every reader of #{shown} posts, and so replies, already; readers are let reply where only some post (set who posts first)"
                    )));
                }
                match (self.readers_reply(&c), on) {
                    (true, true) => {
                        return Err(RosterError::Rule(format!(
                        "the readers of #{shown} already reply in its threads; nothing to change"
                    )))
                    }
                    (false, false) => {
                        return Err(RosterError::Rule(format!(
                            "the readers of #{shown} do not reply in its threads; nothing to change"
                        )))
                    }
                    (false, true) => r.replies.push(c),
                    (true, false) => r.replies.retain(|n| *n != c),
                }
            }
            RosterChange::SetGroup { name, members } => {
                let existing = self.group_entry(name).map(|(g, _)| g.clone());
                let names = match members {
                    None if existing.is_none() => {
                        return Err(RosterError::Rule(format!(
                            "no group named '{name}'{}",
                            match self.groups.is_empty() {
                                true => String::new(),
                                false => format!(
                                    "; groups: {}",
                                    self.groups
                                        .iter()
                                        .map(|(g, _)| g.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            }
                        )))
                    }
                    None => None,
                    Some(list) => Some(self.members_named(
                        list,
                        || {
                            format!(
                                "name at least one member of @{name}; to delete the group, say so"
                            )
                        },
                        |m| match m.role.stores_all() {
                            true => Err(format!(
                                "'{}' is the org's {}: it reads no mentions",
                                m.name, m.role
                            )),
                            false => Ok(()),
                        },
                    )?),
                };
                // A group keeps the name it was made with (a mention folds case anyway).
                let g = existing.clone().unwrap_or_else(|| name.clone());
                if existing.is_none() {
                    r.check_group_name(&g)?;
                }
                if self.group(&g).map(<[String]>::to_vec) == names {
                    return Err(RosterError::Rule(format!(
                        "@{g} already has exactly these members; nothing to change"
                    )));
                }
                match names {
                    Some(names) => match r.groups.iter_mut().find(|(n, _)| *n == g) {
                        Some((_, m)) => *m = names,
                        None => r.groups.push((g, names)),
                    },
                    None => r.groups.retain(|(n, _)| *n != g),
                }
            }
            RosterChange::SetFullName { member, full_name } => {
                let name = self
                    .member_typed(member)
                    .map(|m| m.name.clone())
                    .ok_or_else(|| RosterError::Rule(format!("no member named '{member}'")))?;
                if self.full_name(&name) == full_name.as_deref() {
                    return Err(RosterError::Rule(match full_name {
                        Some(f) => format!("'{name}' is already called '{f}'; nothing to change"),
                        None => format!("'{name}' has no full name; nothing to change"),
                    }));
                }
                r.full_names.retain(|(m, _)| *m != name);
                if let Some(f) = full_name {
                    r.check_full_name(&name, f)?;
                    r.full_names.push((name, f.clone()));
                }
            }
            RosterChange::SetTitle { member, title } => {
                let name = self
                    .member_typed(member)
                    .map(|m| m.name.clone())
                    .ok_or_else(|| RosterError::Rule(format!("no member named '{member}'")))?;
                if self.title(&name) == title.as_deref() {
                    return Err(RosterError::Rule(match title {
                        Some(t) => {
                            format!("'{name}' already has the job title '{t}'; nothing to change")
                        }
                        None => format!("'{name}' has no job title; nothing to change"),
                    }));
                }
                r.titles.retain(|(m, _)| *m != name);
                if let Some(t) = title {
                    Self::check_title(&name, t)?;
                    r.titles.push((name, t.clone()));
                }
            }
            RosterChange::SetPolicy { policy } => {
                if *policy == r.policy {
                    return Err(RosterError::Rule(
                        "the policy is already set that way; nothing to change".into(),
                    ));
                }
                r.policy = *policy;
            }
            RosterChange::SetFilePolicy { files } => {
                if *files == r.files {
                    return Err(RosterError::Rule(
                        "the file policy is already set that way; nothing to change".into(),
                    ));
                }
                if files.types.len() > 64
                    || files
                        .types
                        .iter()
                        .any(|t| t.len() > 127 || !t.contains('/'))
                {
                    return Err(RosterError::Rule(
                        "file types are media types like image/* or application/pdf (at most 64)"
                            .into(),
                    ));
                }
                r.files = files.clone();
            }
            RosterChange::SetRetention { scope, keep } => {
                // A channel as typed (`#General`) is kept under its name.
                let typed = match scope {
                    Scope::Channel(c) => self
                        .channel_typed(c)
                        .map(|c| Scope::Channel(c.name.clone())),
                    _ => None,
                };
                let scope = typed.as_ref().unwrap_or(scope);
                let ret = &mut r.governance.retention;
                if keep.days == Some(0) || keep.files_days == Some(0) {
                    return Err(RosterError::Rule(
                        "retention is at least one day; leave it out to keep forever".into(),
                    ));
                }
                let slot = match scope {
                    Scope::Org => Some(&mut ret.org),
                    Scope::Dms => ret.dms.as_mut(),
                    Scope::Channel(c) => {
                        if self.channel(c).is_none() {
                            return Err(RosterError::Rule(self.no_channel_named(c)));
                        }
                        ret.channels
                            .iter_mut()
                            .find(|(n, _)| n == c)
                            .map(|(_, k)| k)
                    }
                };
                match slot {
                    Some(k) if k == keep => {
                        return Err(RosterError::Rule(
                            "retention is already set that way; nothing to change".into(),
                        ))
                    }
                    Some(k) => *k = *keep,
                    None => match scope {
                        Scope::Dms => ret.dms = Some(*keep),
                        Scope::Channel(c) => ret.channels.push((c.clone(), *keep)),
                        Scope::Org => unreachable!("the org rule always exists"),
                    },
                }
            }
            RosterChange::PlaceHold {
                members,
                channels,
                reason,
            } => {
                if members.is_empty() && channels.is_empty() {
                    return Err(RosterError::Rule(
                        "a hold names at least one member or channel".into(),
                    ));
                }
                // Names as typed (`#Legal`, `Bilal`) are kept as the roster writes them.
                let members = members
                    .iter()
                    .map(|m| match self.member_typed(m) {
                        Some(m) => Ok(m.name.clone()),
                        None => Err(RosterError::Rule(format!("no member named '{m}'"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let channels = channels
                    .iter()
                    .map(|c| match (self.channel_typed(c), dm_members(c)) {
                        (_, Some(_)) => Ok(c.clone()),
                        (Some(named), None) => Ok(named.name.clone()),
                        (None, None) => Err(RosterError::Rule(self.no_channel_named(c))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if reason.len() > 500 {
                    return Err(RosterError::Rule(
                        "a hold's reason is at most 500 bytes".into(),
                    ));
                }
                r.governance.holds.push(Hold {
                    id: r.version,
                    members,
                    channels,
                    reason: reason.clone(),
                    placed_at: r.issued_at,
                });
            }
            RosterChange::ReleaseHold { id } => {
                let before = r.governance.holds.len();
                r.governance.holds.retain(|h| h.id != *id);
                if r.governance.holds.len() == before {
                    return Err(RosterError::Rule(format!(
                        "no hold {id}; `majlisd hold list` shows the holds in force"
                    )));
                }
            }
            RosterChange::SetReadReceipts { receipts } => {
                if *receipts == r.governance.read_receipts {
                    return Err(RosterError::Rule(
                        "read receipts are already set that way; nothing to change".into(),
                    ));
                }
                r.governance.read_receipts = *receipts;
            }
            RosterChange::Erase { member } => {
                let devices = match self.member(member) {
                    Some(m) => m.devices.clone(),
                    None => {
                        return Err(RosterError::Rule(format!(
                            "no member named '{member}'; erase a member before removing them"
                        )))
                    }
                };
                r.governance.erasures.push(Erasure {
                    id: r.version,
                    member: member.clone(),
                    devices,
                    before: r.issued_at,
                });
            }
        }
        r.check_well_formed()?;
        Ok(r)
    }
}

/// A channel's member list after `change`, or why the change makes no sense. Names that are
/// not members of the org are refused by the roster's own check ([`Roster::check_well_formed`]).
fn members_after(
    channel: &str,
    now: Option<&[String]>,
    change: &MembersChange,
) -> Result<Option<Vec<String>>, RosterError> {
    let rule = |s: String| Err(RosterError::Rule(s));
    let open = || {
        rule(format!(
            "#{channel} is open to every member; to make it private, name everyone who stays (`--only`)"
        ))
    };
    let mut list: Vec<String> = now.map(<[String]>::to_vec).unwrap_or_default();
    match change {
        MembersChange::Add(names) => {
            if now.is_none() {
                return open();
            }
            if let Some(n) = names.iter().find(|n| list.contains(n)) {
                return rule(format!(
                    "'{n}' is already a member of #{channel}; nothing to change"
                ));
            }
            list.extend(names.iter().cloned());
        }
        MembersChange::Remove(names) => {
            if now.is_none() {
                return open();
            }
            if let Some(n) = names.iter().find(|n| !list.contains(n)) {
                return rule(format!(
                    "'{n}' is not a member of #{channel}; nothing to change"
                ));
            }
            list.retain(|n| !names.contains(n));
        }
        MembersChange::Set(None) => {
            if now.is_none() {
                return rule(format!(
                    "#{channel} is already open to every member; nothing to change"
                ));
            }
            return Ok(None);
        }
        MembersChange::Set(Some(names)) => list = names.clone(),
    }
    let mut seen = std::collections::HashSet::new();
    list.retain(|n| seen.insert(n.clone()));
    // The same people named twice or in another order are the same list: signing a new
    // version for it would change nothing but the version number.
    if matches!(change, MembersChange::Set(Some(_)))
        && now.is_some_and(|now| now.len() == list.len() && now.iter().all(|n| seen.contains(n)))
    {
        return rule(format!(
            "#{channel} already has exactly these members; nothing to change"
        ));
    }
    if list.is_empty() {
        return rule(format!(
            "#{channel} would have no members left; keep at least one"
        ));
    }
    Ok(Some(list))
}

/// Why a name of only joiners, variation selectors and spaces is refused.
const BLANK: &str = "it has nothing that can be seen";

/// Why a name with [`crate::names::is_hidden`] `c` is refused, naming the character's code point,
/// since it cannot be seen.
fn hidden_said(c: char) -> String {
    format!(
        "it holds a character that cannot be seen or that turns the text around (U+{:04X})",
        c as u32
    )
}

/// The item if there is exactly one.
fn only_one<T>(mut it: impl Iterator<Item = T>) -> Option<T> {
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

/// Why `text` (`what`: "a full name", "a job title") does not read as text people see
/// beside a name: 1 to `max` bytes, no control character, nothing that draws nothing or
/// turns the text around it, not blank, no space at either end.
fn reads_as_text(text: &str, what: &str, max: usize) -> Result<(), String> {
    if text.is_empty() || text.len() > max {
        return Err(format!("{what} is 1-{max} bytes"));
    }
    if text.chars().any(|c| c.is_control()) {
        return Err("it holds a control character".into());
    }
    if let Some(c) = hidden_char(text) {
        return Err(hidden_said(c));
    }
    if is_blank(text) {
        return Err(BLANK.into());
    }
    if text.trim() != text {
        return Err(format!(
            "it starts or ends with a space; try '{}'",
            text.trim()
        ));
    }
    Ok(())
}
