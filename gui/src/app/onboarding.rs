//! The first run: make this device's identity, then found or join an organization.

use super::*;

impl MajlisApp {
    pub(super) fn draw_onboarding(&mut self, ui: &mut egui::Ui) {
        let lang = self.state.lang;
        let t = |en| text::for_egui(tr(lang, en)).into_owned();
        let mut action: Option<bool> = None; // Some(true): create, Some(false): join
        let mut switch_lang = false;
        let mdns = self.opts.config.mdns;
        egui::CentralPanel::default().show(ui, |ui| {
            let Phase::Onboarding(ob) = &mut self.phase else {
                return;
            };
            if mdns && ob.invitations.is_none() {
                ob.invitations = Some(browse_invitations(ui.ctx().clone()));
            }
            let invited: Vec<majlis_core::discovery::Invitation> = ob
                .invitations
                .as_ref()
                .and_then(|i| i.lock().ok().map(|v| v.clone()))
                .unwrap_or_default();
            let layout = reading_column(lang.rtl());
            // One readable column in the middle of the window.
            let width = ui.available_width().min(520.0);
            let margin = ((ui.available_width() - width) / 2.0).max(0.0);
            ui.add_space(24.0);
            ui.horizontal(|ui| {
                ui.add_space(margin);
                ui.vertical(|ui| {
                    ui.set_width(width);
                    ui.with_layout(layout, |ui| {
                        ui.horizontal(|ui| {
                            ui.heading(t("Welcome to Majlis"));
                            let other = if lang.rtl() { "English" } else { "العربية" };
                            if ui.button(other.to_string()).clicked() {
                                switch_lang = true;
                            }
                        });
                        ui.label(
                            RichText::new(t(
                                "Messages for your organization that stay on your own network: no server, no cloud, no internet needed.",
                            ))
                            .weak(),
                        );
                        ui.add_space(12.0);
                        if !ob.has_profile {
                            labelled_field(ui, &t("Your name"), &mut ob.name);
                            ui.label(
                                RichText::new(t("How your colleagues will see you."))
                                    .small()
                                    .weak(),
                            );
                            ui.add_space(10.0);
                        }
                        card(ui, |ui| {
                            ui.label(RichText::new(t("Create an organization")).strong());
                            ui.label(
                                RichText::new(t(
                                    "You become its first admin, then add colleagues as their devices ask to join, each by the code on its screen.",
                                ))
                                .small()
                                .weak(),
                            );
                            labelled_field(ui, &t("Organization name"), &mut ob.org_name);
                            if ui.button(t("Create")).clicked() {
                                action = Some(true);
                            }
                        });
                        ui.add_space(8.0);
                        card(ui, |ui| {
                            ui.label(RichText::new(t("Join an organization")).strong());
                            ui.label(
                                RichText::new(t(
                                    "Pick your organization if it invites on this network, or ask an admin for its id. Next you will see a join code: the admin adds this device once it is the same as the code they see.",
                                ))
                                .small()
                                .weak(),
                            );
                            // An admin's invitation, heard over mDNS: a claim, checked by the
                            // join code the admin compares (it covers the org id).
                            for i in &invited {
                                let label = crate::i18n::tr_shown(
                                    lang,
                                    "Join {org} (inviting on this network)",
                                    &[("org", &i.org_name)],
                                );
                                if ui.button(text::for_egui(&label).into_owned()).clicked() {
                                    ob.org_id = i.org.clone();
                                    action = Some(false);
                                }
                            }
                            labelled_field(ui, &t("Organization id"), &mut ob.org_id);
                            ui.label(
                                RichText::new(t("or the join link an admin sent (majlis:join/…)"))
                                    .small()
                                    .weak(),
                            );
                            if ui.button(t("Join")).clicked() {
                                action = Some(false);
                            }
                        });
                        if let Some(at) = ob.removed {
                            ui.add_space(8.0);
                            let note = match at {
                                Some(at) => crate::i18n::tr_shown(
                                    lang,
                                    "An admin removed this device from its organization on {date}, and it erased its keys and history then. To use it again, create or join an organization: that makes a new device id, which an admin adds.",
                                    &[("date", &format_time(at, true))],
                                ),
                                None => tr(lang, "An admin removed this device from its organization, and it erased its keys and history then. To use it again, create or join an organization: that makes a new device id, which an admin adds.").to_string(),
                            };
                            ui.colored_label(Color32::from_rgb(200, 60, 60), para(ui, &note));
                        }
                        if let Some(e) = &ob.error {
                            ui.add_space(8.0);
                            ui.colored_label(Color32::from_rgb(200, 60, 60), para(ui, e));
                        }
                    });
                });
            });
        });
        if switch_lang {
            self.toggle_lang();
        }
        if let Some(create) = action {
            if let Err(e) = self.finish_onboarding(create) {
                if let Phase::Onboarding(ob) = &mut self.phase {
                    ob.error = Some(e);
                }
            }
        }
    }

    pub(super) fn toggle_lang(&mut self) {
        self.state.lang = if self.state.lang.rtl() {
            Lang::En
        } else {
            Lang::Ar
        };
    }

    pub(super) fn finish_onboarding(&mut self, create: bool) -> Result<(), String> {
        let Phase::Onboarding(ob) = &self.phase else {
            return Ok(());
        };
        let (name, org_name, org_id, has_profile) = (
            ob.name.trim().to_string(),
            ob.org_name.trim().to_string(),
            ob.org_id.trim().to_string(),
            ob.has_profile,
        );
        let dir = self.opts.data.clone();
        let lang = self.state.lang;
        let say = |e: majlis_core::Error| say_error(lang, &e);
        // What was typed is checked before this device gets an identity, so a mistyped id
        // or link is corrected and joined again (and an error after that still leaves the
        // identity made, to be opened at the next try: see `has_profile`).
        let join = match create {
            true if org_name.is_empty() => return Err(self.t("Enter the organization's name.")),
            true => None,
            // A join link: the org, and where to find its nodes.
            false if org_id.starts_with(majlis_core::invite::PREFIX) => {
                Some(majlis_core::invite::JoinLink::parse(&org_id).map_err(say)?)
            }
            false => Some(majlis_core::invite::JoinLink {
                org: org_id.parse().map_err(say)?,
                peers: Vec::new(),
            }),
        };
        let profile = if has_profile {
            Profile::open(&dir).map_err(say)?
        } else {
            if name.is_empty() {
                return Err(self.t("Enter your name first."));
            }
            let p = Profile::init(&dir, &name).map_err(say)?;
            if let Phase::Onboarding(ob) = &mut self.phase {
                ob.has_profile = true;
            }
            p
        };
        match join {
            None => {
                profile.org_create(&org_name).map_err(say)?;
            }
            Some(link) => {
                profile.org_join(link.org).map_err(say)?;
                // Dialled at every start, as peers added in the network view are.
                for p in link.peers {
                    if !self.state.peers.contains(&p) {
                        self.state.peers.push(p);
                    }
                }
            }
        }
        self.phase = self.start_node(profile);
        Ok(())
    }
}

/// Listen for orgs inviting on this network while the first-start screen holds the list
/// (the thread, and its mDNS browse, end once it is dropped).
fn browse_invitations(
    ctx: egui::Context,
) -> Arc<std::sync::Mutex<Vec<majlis_core::discovery::Invitation>>> {
    let list = Arc::new(std::sync::Mutex::new(Vec::new()));
    let weak = Arc::downgrade(&list);
    let spawned = std::thread::Builder::new()
        .name("majlis-invitations".into())
        .spawn(move || {
            let mut watch = match majlis_core::discovery::InvitationWatch::start() {
                Ok(w) => w,
                Err(e) => return tracing::warn!("listening for invitations: {e}"),
            };
            // Awake once a second at most to notice that the screen let go of the list.
            while weak.strong_count() > 0 {
                if !watch.next(Duration::from_secs(1)) {
                    continue;
                }
                let Some(list) = weak.upgrade() else {
                    break;
                };
                if let Ok(mut l) = list.lock() {
                    *l = watch.list();
                }
                ctx.request_repaint();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("listening for invitations: {e}");
    }
    list
}

/// A framed group of fields (one of the two ways in).
pub(super) fn card(ui: &mut egui::Ui, add: impl FnOnce(&mut egui::Ui)) {
    egui::Frame::group(ui.style())
        .inner_margin(egui::Margin::same(12))
        .corner_radius(8.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            add(ui);
        });
}
