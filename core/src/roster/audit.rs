//! What changed between two versions, for the audit log.

use super::*;

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
    ChannelArchived {
        name: String,
    },
    ChannelUnarchived {
        name: String,
    },
    /// `name`: the channel's name on the wire; `to`: what it is shown as now (itself when
    /// a rename was undone).
    ChannelRenamed {
        name: String,
        to: String,
    },
    /// Only `posters` post in the channel now (`None`: every reader again).
    ChannelPostersChanged {
        name: String,
        posters: Option<Vec<String>>,
    },
    /// The readers of a channel where only some post may reply in its threads (`on`), or
    /// no longer.
    ChannelRepliesChanged {
        name: String,
        on: bool,
    },
    /// A group made or changed (`members`), or deleted (`None`).
    GroupChanged {
        name: String,
        members: Option<Vec<String>>,
    },
    /// A member's job title set (`title`), changed, or taken away (`None`).
    TitleChanged {
        name: String,
        title: Option<String>,
    },
    /// A member's full name set (`full_name`), changed, or taken away (`None`).
    FullNameChanged {
        name: String,
        full_name: Option<String>,
    },
    PolicyChanged {
        policy: Policy,
    },
    FilePolicyChanged {
        files: FilePolicy,
    },
    RetentionChanged {
        retention: Retention,
    },
    HoldPlaced {
        hold: Hold,
    },
    HoldReleased {
        id: u64,
    },
    ErasureRequested {
        id: u64,
        member: String,
    },
    ReadReceiptsChanged {
        receipts: ReadReceipts,
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

pub(super) fn hex(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What changed from `prev` to `next`. Pure.
pub fn diff(prev: Option<&Roster>, next: &Roster) -> Vec<AuditChange> {
    let mut out = Vec::new();
    let empty = Roster {
        members: vec![],
        channels: vec![],
        archived: vec![],
        renamed: vec![],
        full_names: vec![],
        titles: vec![],
        posters: vec![],
        groups: vec![],
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
    for a in next.archived.iter().filter(|a| !prev.is_archived(a)) {
        out.push(AuditChange::ChannelArchived { name: a.clone() });
    }
    for a in prev.archived.iter().filter(|a| !next.is_archived(a)) {
        out.push(AuditChange::ChannelUnarchived { name: a.clone() });
    }
    for c in &next.channels {
        let to = next.shown(&c.name);
        if prev.channel(&c.name).is_some() && prev.shown(&c.name) != to {
            out.push(AuditChange::ChannelRenamed {
                name: c.name.clone(),
                to: to.to_string(),
            });
        }
    }
    for c in &next.channels {
        let now = next.posters(&c.name);
        if now != prev.posters(&c.name) && (now.is_some() || prev.channel(&c.name).is_some()) {
            out.push(AuditChange::ChannelPostersChanged {
                name: c.name.clone(),
                posters: now.map(<[String]>::to_vec),
            });
        }
    }
    for c in &next.channels {
        let on = next.readers_reply(&c.name);
        // Off because every reader posts again: the change of posters says it.
        if on != prev.readers_reply(&c.name) && next.posters(&c.name).is_some() {
            out.push(AuditChange::ChannelRepliesChanged {
                name: c.name.clone(),
                on,
            });
        }
    }
    for m in &next.members {
        let now = next.full_name(&m.name);
        if now != prev.full_name(&m.name) && (now.is_some() || prev.member(&m.name).is_some()) {
            out.push(AuditChange::FullNameChanged {
                name: m.name.clone(),
                full_name: now.map(str::to_string),
            });
        }
    }
    for m in &next.members {
        let now = next.title(&m.name);
        if now != prev.title(&m.name) && (now.is_some() || prev.member(&m.name).is_some()) {
            out.push(AuditChange::TitleChanged {
                name: m.name.clone(),
                title: now.map(str::to_string),
            });
        }
    }
    for (g, members) in &next.groups {
        if prev.group(g) != Some(members.as_slice()) {
            out.push(AuditChange::GroupChanged {
                name: g.clone(),
                members: Some(members.clone()),
            });
        }
    }
    for (g, _) in prev.groups.iter().filter(|(g, _)| next.group(g).is_none()) {
        out.push(AuditChange::GroupChanged {
            name: g.clone(),
            members: None,
        });
    }
    if prev.policy != next.policy {
        out.push(AuditChange::PolicyChanged {
            policy: next.policy,
        });
    }
    if prev.files != next.files {
        out.push(AuditChange::FilePolicyChanged {
            files: next.files.clone(),
        });
    }
    let (p, n) = (&prev.governance, &next.governance);
    if p.retention != n.retention {
        out.push(AuditChange::RetentionChanged {
            retention: n.retention.clone(),
        });
    }
    for h in n.holds.iter().filter(|h| !p.holds.contains(h)) {
        out.push(AuditChange::HoldPlaced { hold: h.clone() });
    }
    for h in p
        .holds
        .iter()
        .filter(|h| !n.holds.iter().any(|x| x.id == h.id))
    {
        out.push(AuditChange::HoldReleased { id: h.id });
    }
    if p.read_receipts != n.read_receipts {
        out.push(AuditChange::ReadReceiptsChanged {
            receipts: n.read_receipts,
        });
    }
    for e in n.erasures.iter().filter(|e| !p.erasures.contains(e)) {
        out.push(AuditChange::ErasureRequested {
            id: e.id,
            member: e.member.clone(),
        });
    }
    out
}
