//! The admin view: roster changes behind a confirmation, and the audit log.

use super::*;

impl MajlisApp {
    pub(super) fn draw_admin(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        let Some(r) = run.roster.clone() else {
            return;
        };
        let is_admin = r
            .member_of_device(&run.me)
            .is_some_and(|m| m.role == Role::Admin);
        if !is_admin {
            run.view = View::Chat;
            return;
        }
        let lang = self.state.lang;
        let t = |en| text::for_egui(tr(lang, en)).into_owned();
        let mut change: Option<RosterChange> = None;
        // Signed in the same version as `change`: a newcomer's full name.
        let mut also: Option<RosterChange> = None;
        let waiting = waiting_to_join(run);
        let mut joined: Option<String> = None;
        let inviting = run
            .diagnosis
            .as_ref()
            .and_then(|d| d.inviting_until)
            .filter(|&u| u > majlis_core::now_ms());
        let mut invite: Option<Option<u64>> = None;
        let f = &mut run.admin;
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.heading(t("Admin"));
            super::toast(ui, &run.notice);
            // Newcomers on this network find the org without its id typed while this
            // device invites (its mDNS record carries the org's id and name).
            ui.horizontal_wrapped(|ui| match inviting {
                Some(until) => {
                    ui.label(
                        RichText::new(tf(
                            lang,
                            "Inviting newcomers on this network until {time}.",
                            &[("time", &format_time(until, true))],
                        ))
                        .strong(),
                    );
                    if ui.button(t("Stop inviting")).clicked() {
                        invite = Some(None);
                    }
                }
                None => {
                    if ui
                        .button(t("Invite newcomers on this network for 15 minutes"))
                        .clicked()
                    {
                        invite = Some(Some(majlis_core::now_ms() + 15 * 60 * 1000));
                    }
                }
            });
            // Where multicast does not carry the invitation (another subnet, a field
            // network): the org's id and this node's addresses, sent as text.
            ui.horizontal_wrapped(|ui| {
                if ui.button(t("Copy join link")).clicked() {
                    let link = majlis_core::invite::JoinLink::new(r.roster.org, &run.listen);
                    ui.ctx().copy_text(link.to_string());
                    run.copied = Some(Instant::now());
                }
                if run.copied.is_some_and(|at| at.elapsed() < Duration::from_secs(3)) {
                    ui.label(RichText::new(t("Copied")).weak());
                }
                ui.label(
                    RichText::new(para(ui, &t("For a newcomer on another network: pasted at the first start, it joins the organization and finds this device. It grants nothing; you still add the device.")))
                        .small()
                        .weak(),
                );
            });
            // Devices asking to join, seen by this node: added with one click once the
            // admin has compared the code (the name is a claim anyone can make).
            if !waiting.is_empty() {
                ui.label(RichText::new(t("Waiting to join")).strong());
                ui.label(RichText::new(para(ui, &t("Before adding a device, ask its owner for the join code on their screen, and add it only if it is the same: anyone on the network can ask under any name."))).small().weak());
                for s in &waiting {
                    let Ok(device) = s.device.parse::<DeviceId>() else {
                        continue;
                    };
                    super::onboarding::card(ui, |ui| {
                        let asks = match &s.asks {
                            Some(name) => crate::i18n::tr_shown(
                                lang,
                                "asks to join as {name}",
                                &[("name", name)],
                            ),
                            None => tr(lang, "(no name given)").to_string(),
                        };
                        let how = tr(
                            lang,
                            match s.turned_away.is_some() && s.inbound {
                                true => "tried to connect",
                                false => "announces itself on this network",
                            },
                        );
                        ui.label(text::for_egui(&format!("{asks} · {how}")).into_owned());
                        ui.horizontal(|ui| {
                            ui.label(t("Join code"));
                            ui.label(RichText::new(&s.code).monospace().size(20.0).strong());
                        });
                        ui.label(RichText::new(&s.device).monospace().small().weak());
                        let name = f
                            .join_names
                            .entry(s.device.clone())
                            .or_insert_with(|| s.asks.clone().unwrap_or_default());
                        labelled_field(ui, &t("Name"), name);
                        let name = name.trim().to_string();
                        let add = match r.roster.members.iter().any(|m| m.name == name) {
                            true => tf(lang, "Add as another device of {name}", &[("name", &name)]),
                            false => t("Add as a member"),
                        };
                        if ui.add_enabled(!name.is_empty(), egui::Button::new(add)).clicked() {
                            change = Some(RosterChange::AddMember {
                                name,
                                device,
                                role: None,
                            });
                            joined = Some(s.device.clone());
                        }
                    });
                }
                ui.separator();
            }
            section(ui, lang.rtl(), &t("Add a member"), |ui| {
                labelled_field(ui, &t("Name"), &mut f.name);
                labelled_field(ui, &t("Full name (optional)"), &mut f.new_full_name);
                labelled_field(ui, &t("Device id"), &mut f.device);
                ui.horizontal(|ui| {
                    ui.label(t("Role"));
                    for role in [
                        None,
                        Some(Role::Admin),
                        Some(Role::Guest),
                        Some(Role::Relay),
                        Some(Role::Bot),
                    ] {
                        let label = role_name(lang, role.unwrap_or(Role::Member));
                        ui.radio_value(&mut f.role, role, label);
                    }
                });
                if ui.button(t("Add")).clicked() {
                    match f.device.trim().parse::<DeviceId>() {
                        Ok(device) => {
                            let name = f.name.trim().to_string();
                            let full = f.new_full_name.trim();
                            also = (!full.is_empty()).then(|| RosterChange::SetFullName {
                                member: name.clone(),
                                full_name: Some(full.to_string()),
                            });
                            change = Some(RosterChange::AddMember {
                                name,
                                device,
                                role: f.role,
                            });
                            f.name.clear();
                            f.new_full_name.clear();
                            f.device.clear();
                        }
                        Err(e) => run.notice = Some((say_error(lang, &e), Instant::now())),
                    }
                }
            });
            section(ui, lang.rtl(), &t("Add a device"), |ui| {
                labelled_field(ui, &t("Member"), &mut f.dev_member);
                labelled_field(ui, &t("Device id"), &mut f.dev_id);
                if ui.button(t("Add")).clicked() {
                    match f.dev_id.trim().parse::<DeviceId>() {
                        Ok(device) => {
                            change = Some(RosterChange::AddMember {
                                name: f.dev_member.trim().to_string(),
                                device,
                                role: None,
                            })
                        }
                        Err(e) => run.notice = Some((say_error(lang, &e), Instant::now())),
                    }
                }
            });
            // The name colleagues see: set when someone joins, put right after a typo or a
            // change of name. The roster name, which every message carries, stays.
            section(ui, lang.rtl(), &t("Full names"), |ui| {
                labelled_field(ui, &t("Member"), &mut f.full_member);
                labelled_field(ui, &t("Full name"), &mut f.full_name);
                ui.label(t("(Empty: shown by the roster name again)"));
                if ui.button(t("Set")).clicked() {
                    let full = f.full_name.trim();
                    change = Some(RosterChange::SetFullName {
                        member: f.full_member.trim().to_string(),
                        full_name: (!full.is_empty()).then(|| full.to_string()),
                    });
                    f.full_member.clear();
                    f.full_name.clear();
                }
            });
            // The job title colleagues see beside the name ("Site engineer, Dubai yard").
            section(ui, lang.rtl(), &t("Job titles"), |ui| {
                labelled_field(ui, &t("Member"), &mut f.title_member);
                labelled_field(ui, &t("Job title"), &mut f.title);
                ui.label(t("(Empty: no job title)"));
                if ui.button(t("Set title")).clicked() {
                    let title = f.title.trim();
                    change = Some(RosterChange::SetTitle {
                        member: f.title_member.trim().to_string(),
                        title: (!title.is_empty()).then(|| title.to_string()),
                    });
                    f.title_member.clear();
                    f.title.clear();
                }
            });
            // Groups one mention reaches (`@hr`): whom, as names typed comma-separated.
            section(ui, lang.rtl(), &t("Groups"), |ui| {
                for (g, members) in &r.roster.groups {
                    let who: Vec<&str> = members.iter().map(|m| r.roster.person(m)).collect();
                    ui.label(text::for_egui(&format!("@{g}: {}", who.join(", "))).into_owned());
                }
                labelled_field(ui, &t("Group"), &mut f.group);
                labelled_field(ui, &t("Members (comma-separated)"), &mut f.group_members);
                ui.horizontal(|ui| {
                    let name = f.group.trim().trim_start_matches('@').to_string();
                    let (set, delete) = (ui.button(t("Set group")), ui.button(t("Delete group")));
                    if set.clicked() {
                        let members = f
                            .group_members
                            .split(',')
                            .map(|n| n.trim().trim_start_matches('@').to_string())
                            .filter(|n| !n.is_empty())
                            .collect();
                        change = Some(RosterChange::SetGroup {
                            name,
                            members: Some(members),
                        });
                        f.group.clear();
                        f.group_members.clear();
                    } else if delete.clicked() {
                        change = Some(RosterChange::SetGroup {
                            name,
                            members: None,
                        });
                        f.group.clear();
                        f.group_members.clear();
                    }
                });
            });
            ui.separator();
            ui.label(RichText::new(t("Members")).strong());
            beside_reading_edge(ui, lang.rtl(), "members-grid", |ui| {
                egui::Grid::new("members").striped(true).show(ui, |ui| {
                    for m in &r.roster.members {
                        // Name, role, devices, remove; in a right-to-left language from the right.
                        let order = match lang.rtl() {
                            true => [3, 2, 1, 0],
                            false => [0, 1, 2, 3],
                        };
                        for cell in order {
                            match cell {
                                0 => {
                                    let name = match r.roster.full_name(&m.name) {
                                        Some(full) => format!("{full} ({})", m.name),
                                        None => m.name.clone(),
                                    };
                                    ui.label(text::for_egui(&name).into_owned());
                                }
                                1 => {
                                    ui.label(role_name(lang, m.role));
                                }
                                2 => {
                                    ui.vertical(|ui| {
                                        for d in &m.devices {
                                            ui.horizontal(|ui| {
                                                // The id first in reading order: at the right
                                                // in a right-to-left language, after the button.
                                                if !lang.rtl() {
                                                    ui.monospace(short(&d.to_string()));
                                                }
                                                let revoke = *d != run.me
                                                    && ui
                                                        .button(format!(
                                                            "{} {}",
                                                            t("Revoke"),
                                                            short(&d.to_string())
                                                        ))
                                                        .clicked();
                                                if lang.rtl() {
                                                    ui.monospace(short(&d.to_string()));
                                                }
                                                if revoke {
                                                    f.confirm = Some((
                                                        tf(
                                                            lang,
                                                            "Revoke device {device} of {member}?",
                                                            &[
                                                                ("device", &d.to_string()),
                                                                ("member", &m.name),
                                                            ],
                                                        ),
                                                        RosterChange::RevokeDevice { device: *d },
                                                    ));
                                                }
                                            });
                                        }
                                    });
                                }
                                _ if m.devices.contains(&run.me) => {
                                    ui.label("");
                                }
                                _ => {
                                    let remove = text::for_egui(&format!(
                                        "{} {}",
                                        tr(lang, "Remove"),
                                        m.name
                                    ))
                                    .into_owned();
                                    if ui.button(remove).clicked() {
                                        f.confirm = Some((
                                            tf(
                                                lang,
                                                "Remove {member} and all their devices?",
                                                &[("member", &m.name)],
                                            ),
                                            RosterChange::RemoveMember {
                                                name: m.name.clone(),
                                            },
                                        ));
                                    }
                                }
                            }
                        }
                        ui.end_row();
                    }
                })
                .response
            });
            ui.separator();
            section(ui, lang.rtl(), &t("Create a channel"), |ui| {
                labelled_field(ui, &t("Channel name"), &mut f.channel);
                ui.label(t("Members"));
                for m in &r.roster.members {
                    let mut on = f.channel_members.contains(&m.name);
                    if ui.checkbox(&mut on, m.name.as_str()).changed() {
                        if on {
                            f.channel_members.insert(m.name.clone());
                        } else {
                            f.channel_members.remove(&m.name);
                        }
                    }
                }
                ui.label(t("(Everyone: none ticked)"));
                if ui.button(t("Create")).clicked() {
                    let members = (!f.channel_members.is_empty()).then(|| {
                        let mut v: Vec<String> = f.channel_members.iter().cloned().collect();
                        v.sort();
                        v
                    });
                    change = Some(RosterChange::CreateChannel {
                        name: f.channel.trim().to_string(),
                        members,
                    });
                    f.channel.clear();
                    f.channel_members.clear();
                }
            });
            if std::mem::take(&mut f.open_members) {
                open_section(ui, &t("Channel members"));
            }
            section(ui, lang.rtl(), &t("Channel members"), |ui| {
                channel_members(ui, lang, &r, f, &mut change);
            });
            section(ui, lang.rtl(), &t("Policy"), |ui| {
                let mut p = r.roster.policy;
                let before = p;
                ui.checkbox(
                    &mut p.members_create_channels,
                    t("Members may create channels"),
                );
                ui.horizontal(|ui| {
                    ui.label(t("Direct messages:"));
                    for dms in [DmPolicy::Off, DmPolicy::Members, DmPolicy::All] {
                        let label = text::for_egui(dm_policy_name(lang, dms)).into_owned();
                        ui.radio_value(&mut p.dms, dms, label);
                    }
                });
                if p != before {
                    change = Some(RosterChange::SetPolicy {
                        policy: Policy { ..p },
                    });
                }
            });
            section(ui, lang.rtl(), &t("Data governance"), |ui| {
                let g = &r.roster.governance;
                ui.label(text::for_egui(&format!(
                    "{} {}",
                    tr(lang, "Retention:"),
                    retention_text(lang, &g.retention, Some(&r.roster))
                )));
                let mut on = g.read_receipts == majlis_core::roster::ReadReceipts::On;
                if ui.checkbox(&mut on, t("Members' apps send read receipts")).changed() {
                    change = Some(RosterChange::SetReadReceipts {
                        receipts: if on {
                            majlis_core::roster::ReadReceipts::On
                        } else {
                            majlis_core::roster::ReadReceipts::Off
                        },
                    });
                }
                ui.horizontal(|ui| {
                    labelled_field(ui, &t("Keep messages (days, or forever)"), &mut f.retention_days);
                    if ui.button(t("Set")).clicked() {
                        let v = f.retention_days.trim();
                        let days = match v {
                            "" | "forever" => Ok(None),
                            d => d.parse::<u32>().map(Some).map_err(|_| {
                                tf(
                                    lang,
                                    "'{days}' is not a number of days; write 30, or forever",
                                    &[("days", d)],
                                )
                            }),
                        };
                        match days {
                            Ok(days) => {
                                change = Some(RosterChange::SetRetention {
                                    scope: majlis_core::roster::Scope::Org,
                                    keep: majlis_core::roster::Keep {
                                        days,
                                        files_days: g.retention.org.files_days,
                                    },
                                })
                            }
                            Err(e) => run.notice = Some((e, Instant::now())),
                        }
                    }
                });
                for h in &g.holds {
                    ui.horizontal(|ui| {
                        ui.label(text::for_egui(&format!(
                            "{} {}: {}",
                            tr(lang, "Legal hold"),
                            h.id,
                            hold_text(lang, h, Some(&r.roster))
                        )));
                        if ui.button(t("Release")).clicked() {
                            f.confirm = Some((
                                tf(
                                    lang,
                                    "Release legal hold {hold}? Retention and erasure then apply to what it covered.",
                                    &[("hold", &h.id.to_string())],
                                ),
                                RosterChange::ReleaseHold { id: h.id },
                            ));
                        }
                    });
                }
                for e in &g.erasures {
                    ui.label(format!(
                        "{} {}: {} ({})",
                        t("Erasure"),
                        e.id,
                        e.member,
                        format_time(e.before, true)
                    ));
                }
                labelled_field(ui, &t("Member"), &mut f.gov_member);
                labelled_field(ui, &t("Reason"), &mut f.hold_reason);
                ui.horizontal(|ui| {
                    let who = f.gov_member.trim().to_string();
                    if ui.button(t("Place a legal hold")).clicked() && !who.is_empty() {
                        change = Some(RosterChange::PlaceHold {
                            members: vec![who.clone()],
                            channels: vec![],
                            reason: f.hold_reason.trim().to_string(),
                        });
                    }
                    if ui.button(t("Erase their data")).clicked() && !who.is_empty() {
                        let held = g.holds.iter().any(|h| h.members.contains(&who));
                        f.confirm = Some((
                            if held {
                                tf(
                                    lang,
                                    "Erase everything {member} wrote, on every device? A legal hold covers them: it wins until released.",
                                    &[("member", &who)],
                                )
                            } else {
                                tf(
                                    lang,
                                    "Erase everything {member} wrote, on every device?",
                                    &[("member", &who)],
                                )
                            },
                            RosterChange::Erase { member: who },
                        ));
                    }
                });
            });
            ui.separator();
            ui.label(RichText::new(t("Audit log")).strong());
            for e in run.audit.iter().rev() {
                let changes: Vec<String> = e.changes.iter().map(|c| audit_text(lang, c)).collect();
                let line = format!(
                    "v{} · {} · {} · {}",
                    e.version,
                    format_time(e.issued_at, true),
                    e.signed_by,
                    changes.join("; ")
                );
                ui.label(text::for_egui(&rtl_mark(lang, &line)).into_owned());
            }
            for a in run.actions_log.iter().rev() {
                let line = format!(
                    "{} · {} · {} · {} {}",
                    format_time(a.action.at, true),
                    a.action.member,
                    if a.verified { t("this device") } else { t("TAMPERED") },
                    a.action.action,
                    a.action.detail["scope"]
                );
                ui.label(text::for_egui(&line).into_owned());
            }
        });
        // Confirmation for destructive changes.
        if let Some((question, ch)) = f.confirm.clone() {
            let modal = egui::Modal::new(egui::Id::unique("majlis-confirm")).show(ui.ctx(), |ui| {
                ui.label(question);
                ui.horizontal(|ui| {
                    if ui.button(t("Confirm")).clicked() {
                        change = Some(ch.clone());
                        f.confirm = None;
                    }
                    if ui.button(t("Cancel")).clicked() {
                        f.confirm = None;
                    }
                });
            });
            if modal.should_close() {
                f.confirm = None;
            }
        }
        if let Some(until) = invite {
            run.actions.push(Action::Invite(until));
        }
        if let Some(device) = joined {
            // Gone from the list at once (the next report would drop it a moment later).
            run.admin.join_names.remove(&device);
            if let Some(d) = &mut run.diagnosis {
                d.strangers.retain(|s| s.device != device);
            }
        }
        if let Some(c) = change {
            run.actions.push(Action::ChangeRoster(
                std::iter::once(c).chain(also).collect(),
            ));
        }
    }
}

/// Devices of this org not on the roster that this node saw lately (announcing themselves
/// or turned away at its gate), each with its join code.
pub(super) fn waiting_to_join(run: &Running) -> Vec<majlis_core::diagnose::Stranger> {
    run.diagnosis
        .iter()
        .flat_map(|d| &d.strangers)
        .filter(|s| s.this_org && !s.code.is_empty())
        .cloned()
        .collect()
}

/// Who is on a channel: pick one, tick its members (or open it to everyone), save. Taking
/// anyone off asks first: they get nothing said there from then on.
fn channel_members(
    ui: &mut egui::Ui,
    lang: Lang,
    r: &VerifiedRoster,
    f: &mut AdminForm,
    change: &mut Option<RosterChange>,
) {
    let t = |en| text::for_egui(tr(lang, en)).into_owned();
    let picked = match f.edit_channel.as_str() {
        "" => t("Pick a channel"),
        c => text::for_egui(&format!("# {}", r.roster.shown(c))).into_owned(),
    };
    egui::ComboBox::from_label(t("Channel"))
        .selected_text(picked)
        .show_ui(ui, |ui| {
            for c in &r.roster.channels {
                let label = text::for_egui(&format!("# {}", r.roster.shown(&c.name))).into_owned();
                ui.selectable_value(&mut f.edit_channel, c.name.clone(), label);
            }
        });
    let Some(c) = r.roster.channel(&f.edit_channel) else {
        return;
    };
    let from = (c.name.clone(), r.version());
    if f.edit_from.as_ref() != Some(&from) {
        f.edit_open = c.members.is_none();
        f.edit_members = c.members.iter().flatten().cloned().collect();
        f.edit_name = r.roster.shown(&c.name).to_string();
        f.edit_posters = r.roster.posters(&c.name).unwrap_or_default().join(", ");
        f.edit_from = Some(from);
    }
    let shown = r.roster.shown(&c.name);
    // Renaming changes what everyone sees and types; history, members and keys stay.
    ui.horizontal(|ui| {
        let l = ui.label(t("New name"));
        let field = egui::TextEdit::singleline(&mut f.edit_name)
            .id(ui.make_persistent_id("rename-channel"))
            .desired_width(160.0);
        ui.add(field).labelled_by(l.id);
        let to = f.edit_name.trim().trim_start_matches('#');
        let rename = ui.add_enabled(
            !to.is_empty() && to != shown,
            egui::Button::new(t("Rename")),
        );
        if rename.clicked() {
            *change = Some(RosterChange::RenameChannel {
                name: c.name.clone(),
                to: to.to_string(),
            });
        }
    });
    // Who posts: everyone on it, or only some (announcements: the others read).
    ui.horizontal(|ui| {
        let l = ui.label(t("Only these post"));
        let field = egui::TextEdit::singleline(&mut f.edit_posters)
            .id(ui.make_persistent_id("channel-posters"))
            .hint_text(t("everyone on it"))
            .desired_width(160.0);
        ui.add(field).labelled_by(l.id);
        let names: Vec<String> = f
            .edit_posters
            .split(',')
            .map(|n| n.trim().trim_start_matches('@').to_string())
            .filter(|n| !n.is_empty())
            .collect();
        let now = r.roster.posters(&c.name).map(<[String]>::to_vec);
        let want = (!names.is_empty()).then_some(names);
        if ui
            .add_enabled(want != now, egui::Button::new(t("Set who posts")))
            .clicked()
        {
            *change = Some(RosterChange::ChannelPosters {
                name: c.name.clone(),
                posters: want,
            });
        }
    });
    // Where only some post, the others may still reply in threads (questions under an
    // announcement).
    if r.roster.posters(&c.name).is_some() {
        let mut on = r.roster.readers_reply(&c.name);
        if ui
            .checkbox(&mut on, t("Readers reply in threads"))
            .changed()
        {
            *change = Some(RosterChange::ChannelReplies {
                name: c.name.clone(),
                on,
            });
        }
    }
    // Archiving asks first; bringing back does not (it takes nothing away).
    let archived = r.roster.is_archived(&c.name);
    let what = match archived {
        true => "Bring #{channel} back",
        false => "Archive #{channel}",
    };
    if ui.button(tf(lang, what, &[("channel", shown)])).clicked() {
        let ch = RosterChange::ArchiveChannel {
            name: c.name.clone(),
            archived: !archived,
        };
        match archived {
            true => *change = Some(ch),
            false => {
                f.confirm = Some((
                    tf(
                        lang,
                        "Archive #{channel}? Its history stays readable and searchable; nobody can post in it until an admin brings it back.",
                        &[("channel", shown)],
                    ),
                    ch,
                ))
            }
        }
    }
    ui.checkbox(&mut f.edit_open, t("Open to every member"));
    if !f.edit_open {
        for m in &r.roster.members {
            let mut on = f.edit_members.contains(&m.name);
            let label = text::for_egui(&m.name).into_owned();
            if ui.checkbox(&mut on, label).changed() {
                match on {
                    true => f.edit_members.insert(m.name.clone()),
                    false => f.edit_members.remove(&m.name),
                };
            }
        }
    }
    if !ui.button(t("Save")).clicked() {
        return;
    }
    let members = (!f.edit_open).then(|| {
        let mut v: Vec<String> = f.edit_members.iter().cloned().collect();
        v.sort();
        v
    });
    // Who could read it before and cannot after (open: every member but guests).
    let gone: Vec<&str> = r
        .roster
        .readers(&c.name)
        .filter(|m| !m.role.stores_all())
        .filter(|m| members.as_ref().is_some_and(|v| !v.contains(&m.name)))
        .map(|m| m.name.as_str())
        .collect();
    let ch = RosterChange::ChannelMembers {
        name: c.name.clone(),
        change: majlis_core::roster::MembersChange::Set(members),
    };
    match gone.is_empty() {
        true => *change = Some(ch),
        false => {
            f.confirm = Some((
                tf(
                    lang,
                    "Take {members} off #{channel}? They get nothing said there from now on.",
                    &[("members", &gone.join(", ")), ("channel", shown)],
                ),
                ch,
            ))
        }
    }
}

/// One change of a roster version, for the audit log. Its line is shaped for egui by the
/// caller, so the parts here are the logical text.
pub(super) fn audit_text(lang: Lang, c: &majlis_core::roster::AuditChange) -> String {
    use majlis_core::roster::AuditChange as A;
    let role = |r: &Role| tr(lang, r.as_str()).to_string();
    match c {
        A::OrgCreated { name } => tr_with(lang, "org '{name}' created", &[("name", name)]),
        A::MemberAdded { name, role: r } => tr_with(
            lang,
            "added {name} ({role})",
            &[("name", name), ("role", &role(r))],
        ),
        A::MemberRemoved { name } => tr_with(lang, "removed {name}", &[("name", name)]),
        A::RoleChanged { name, from, to } => format!("{name}: {} → {}", role(from), role(to)),
        A::DeviceAdded { name, device } => tr_with(
            lang,
            "device {device} for {name}",
            &[("device", &short(&device.to_string())), ("name", name)],
        ),
        A::DeviceRevoked { name, device } => tr_with(
            lang,
            "revoked device {device} of {name}",
            &[("device", &short(&device.to_string())), ("name", name)],
        ),
        A::ChannelCreated { name, members } => match members {
            None => tr_with(lang, "channel #{name} for everyone", &[("name", name)]),
            Some(m) => tr_with(
                lang,
                "channel #{name} for {members}",
                &[("name", name), ("members", &m.join(", "))],
            ),
        },
        A::ChannelChanged { name, members } => match members {
            None => tr_with(
                lang,
                "channel #{name} now open to everyone",
                &[("name", name)],
            ),
            Some(m) => tr_with(
                lang,
                "channel #{name} now for {members}",
                &[("name", name), ("members", &m.join(", "))],
            ),
        },
        A::ChannelRemoved { name } => tr_with(lang, "channel #{name} removed", &[("name", name)]),
        A::ChannelArchived { name } => tr_with(lang, "channel #{name} archived", &[("name", name)]),
        A::ChannelUnarchived { name } => {
            tr_with(lang, "channel #{name} brought back", &[("name", name)])
        }
        A::ChannelRenamed { name, to } => tr_with(
            lang,
            "channel #{name} renamed #{to}",
            &[("name", name), ("to", to)],
        ),
        A::ChannelPostersChanged { name, posters } => match posters {
            Some(p) => tr_with(
                lang,
                "only {members} may post in #{name}",
                &[("members", &p.join(", ")), ("name", name)],
            ),
            None => tr_with(lang, "everyone on #{name} posts again", &[("name", name)]),
        },
        A::ChannelRepliesChanged { name, on } => match on {
            true => tr_with(
                lang,
                "the readers of #{name} reply in its threads",
                &[("name", name)],
            ),
            false => tr_with(lang, "only the posters of #{name} reply", &[("name", name)]),
        },
        A::GroupChanged { name, members } => match members {
            Some(m) => tr_with(
                lang,
                "@{group} reaches {members}",
                &[("group", name), ("members", &m.join(", "))],
            ),
            None => tr_with(lang, "group @{group} deleted", &[("group", name)]),
        },
        A::FullNameChanged { name, full_name } => match full_name {
            Some(full) => tr_with(
                lang,
                "{member} is shown as '{full}'",
                &[("member", name), ("full", full)],
            ),
            None => tr_with(lang, "{member}'s full name taken away", &[("member", name)]),
        },
        A::TitleChanged { name, title } => match title {
            Some(title) => tr_with(
                lang,
                "{member}'s job title: {title}",
                &[("member", name), ("title", title)],
            ),
            None => tr_with(lang, "{member}'s job title taken away", &[("member", name)]),
        },
        A::PolicyChanged { policy } => {
            let dms = [("dms", dm_policy_name(lang, policy.dms))];
            match policy.members_create_channels {
                true => tr_with(
                    lang,
                    "policy: members create channels, direct messages {dms}",
                    &dms,
                ),
                false => tr_with(
                    lang,
                    "policy: admins create channels, direct messages {dms}",
                    &dms,
                ),
            }
        }
        A::FilePolicyChanged { files } => match files.max_bytes {
            Some(m) => tr_with(
                lang,
                "file policy: up to {size}",
                &[("size", &majlis_core::files::human_size(m))],
            ),
            None => tr_with(lang, "file policy changed", &[]),
        },
        A::RetentionChanged { retention } => tr_with(
            lang,
            "retention: {rule}",
            &[("rule", &retention_text(lang, retention, None))],
        ),
        A::HoldPlaced { hold } => tr_with(
            lang,
            "legal hold {hold} placed: {what}",
            &[
                ("hold", &hold.id.to_string()),
                ("what", &hold_text(lang, hold, None)),
            ],
        ),
        A::HoldReleased { id } => tr_with(
            lang,
            "legal hold {hold} released",
            &[("hold", &id.to_string())],
        ),
        A::ErasureRequested { id, member } => tr_with(
            lang,
            "erasure {erasure} of {member}'s data",
            &[("erasure", &id.to_string()), ("member", member)],
        ),
        A::ReadReceiptsChanged { receipts } => match receipts {
            majlis_core::roster::ReadReceipts::On => tr_with(lang, "read receipts on", &[]),
            majlis_core::roster::ReadReceipts::Off => tr_with(lang, "read receipts off", &[]),
        },
    }
}

/// What the org keeps (`Retention::describe`, "org: messages 30 days; #legal: messages
/// forever") in `lang`, channels named as `names` shows them (as stored without it).
pub(super) fn retention_text(
    lang: Lang,
    r: &majlis_core::roster::Retention,
    names: Option<&majlis_core::roster::Roster>,
) -> String {
    let days = |d: Option<u32>| match d {
        None => tr(lang, "forever").to_string(),
        Some(n) => tr_with(lang, "{n} days", &[("n", &n.to_string())]),
    };
    let keep = |k: &majlis_core::roster::Keep| match k.files_days {
        None => tr_with(lang, "messages {messages}", &[("messages", &days(k.days))]),
        f => tr_with(
            lang,
            "messages {messages}, files {files}",
            &[("messages", &days(k.days)), ("files", &days(f))],
        ),
    };
    let mut parts = vec![tr_with(lang, "org: {keep}", &[("keep", &keep(&r.org))])];
    if let Some(k) = &r.dms {
        parts.push(tr_with(lang, "DMs: {keep}", &[("keep", &keep(k))]));
    }
    for (c, k) in &r.channels {
        let c = majlis_core::roster::shown_by(names, c);
        parts.push(format!("#{c}: {}", keep(k)));
    }
    parts.join(if lang.rtl() { "؛ " } else { "; " })
}

/// What a legal hold covers (`Hold::describe`) in `lang`.
fn hold_text(
    lang: Lang,
    h: &majlis_core::roster::Hold,
    names: Option<&majlis_core::roster::Roster>,
) -> String {
    let mut parts = Vec::new();
    if !h.members.is_empty() {
        parts.push(tr_with(
            lang,
            "members {names}",
            &[("names", &h.members.join(", "))],
        ));
    }
    if !h.channels.is_empty() {
        parts.push(tr_with(
            lang,
            "channels {names}",
            &[("names", &h.shown_channels(names))],
        ));
    }
    let mut s = parts.join(if lang.rtl() { "؛ " } else { "; " });
    if !h.reason.is_empty() {
        s.push_str(&format!(" ({})", h.reason));
    }
    s
}

/// Who may send direct messages, in `lang`.
fn dm_policy_name(lang: Lang, dms: DmPolicy) -> &'static str {
    match dms {
        DmPolicy::Off => tr(lang, "off"),
        DmPolicy::Members => tr(lang, "members"),
        DmPolicy::All => tr(lang, "all"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use majlis_core::roster::{Keep, Retention};

    #[test]
    fn what_the_org_keeps_is_said_in_the_language() {
        let r = Retention {
            org: Keep {
                days: Some(30),
                files_days: None,
            },
            dms: Some(Keep {
                days: None,
                files_days: Some(7),
            }),
            channels: vec![(
                "legal".into(),
                Keep {
                    days: None,
                    files_days: None,
                },
            )],
        };
        // English is what `roster show` prints.
        assert_eq!(retention_text(Lang::En, &r, None), r.describe(None));
        let ar = retention_text(Lang::Ar, &r, None);
        assert_eq!(
            ar,
            "المؤسسة: الرسائل 30 يوم؛ الرسائل المباشرة: الرسائل للأبد، الملفات 7 يوم؛ #legal: الرسائل للأبد"
        );
    }
}
