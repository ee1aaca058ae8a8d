//! The people view: members, their devices and who is online.

use super::*;

/// One cell of a member's row (the row is reversed in right-to-left layouts).
type Cell<'a> = Box<dyn FnOnce(&mut egui::Ui) + 'a>;

/// How long a status set in People lasts: the choices, in minutes (`None`: until cleared).
pub(super) const LASTS: [(&str, Option<u64>); 6] = [
    ("Until I clear it", None),
    ("30 minutes", Some(30)),
    ("1 hour", Some(60)),
    ("4 hours", Some(240)),
    ("1 day", Some(24 * 60)),
    ("1 week", Some(7 * 24 * 60)),
];

/// A member's status as a line beside their name: the text, and when it ends.
pub(super) fn status_line(
    lang: crate::i18n::Lang,
    st: &majlis_core::status::MemberStatus,
) -> String {
    match st.until {
        Some(u) => format!(
            "{} · {}",
            st.text,
            tr_with(lang, "until {time}", &[("time", &format_time(u, true))])
        ),
        None => st.text.clone(),
    }
}

impl MajlisApp {
    pub(super) fn draw_people(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        let Some(r) = run.roster.clone() else {
            return;
        };
        let rtl = self.state.lang.rtl();
        let lang = self.state.lang;
        let away = self.t("away");
        let (online, offline, last, never, devices) = (
            self.t("online"),
            self.t("offline"),
            self.t("last seen"),
            self.t("never seen"),
            self.t("devices"),
        );
        ui.heading(self.t("People"));
        if !run.node.sealing().is_sealed() {
            ui.colored_label(
                egui::Color32::from_rgb(230, 160, 60),
                self.t("This device's data is NOT sealed: no OS keyring was found, so its data key is in a file beside the data."),
            );
        }
        // What the org keeps, and a copy of one's own data (GDPR art. 15 and 20).
        ui.horizontal_wrapped(|ui| {
            // One logical line made ready for egui at once: the rule after the words, in
            // reading order.
            ui.label(text::for_egui(&format!(
                "{} {}",
                tr(lang, "This organization keeps:"),
                super::admin::retention_text(lang, &r.roster.governance.retention, Some(&r.roster))
            )));
            if ui.button(self.t("Export my data")).clicked() {
                run.actions.push(Action::ExportMine);
            }
        });
        // This member's status: what colleagues see beside their name.
        let me_name = run.my_name();
        let mine = run.status_of(&me_name).map(|st| status_line(lang, st));
        ui.horizontal_wrapped(|ui| {
            let l = ui.label(self.t("Your status"));
            let hint = mine.clone().unwrap_or_else(|| self.t("In a meeting"));
            ui.add(
                egui::TextEdit::singleline(&mut run.status_draft)
                    .hint_text(text::for_egui(&hint).into_owned())
                    .desired_width(240.0),
            )
            .labelled_by(l.id);
            egui::ComboBox::from_label(self.t("Lasts"))
                .selected_text(self.t(LASTS[run.status_lasts].0))
                .show_ui(ui, |ui| {
                    for (i, (label, _)) in LASTS.iter().enumerate() {
                        ui.selectable_value(&mut run.status_lasts, i, self.t(label));
                    }
                });
            let draft = run.status_draft.trim().to_string();
            if ui.button(self.t("Set status")).clicked() && !draft.is_empty() {
                let until = LASTS[run.status_lasts]
                    .1
                    .map(|min| majlis_core::now_ms() + min * 60_000);
                run.actions.push(Action::SetStatus { text: draft, until });
            }
            if mine.is_some() && ui.button(self.t("Clear status")).clicked() {
                run.actions.push(Action::SetStatus {
                    text: String::new(),
                    until: None,
                });
            }
        });
        super::toast(ui, &run.notice);
        let archives: Vec<&str> = r.roster.archives().map(|m| m.name.as_str()).collect();
        if archives.is_empty() {
            ui.label(self.t(
                "Messages are end-to-end encrypted: only the members of a channel or conversation can read them.",
            ));
        } else {
            ui.colored_label(
                egui::Color32::from_rgb(230, 160, 60),
                format!(
                    "{} {}",
                    self.t("This organization archives all messages. Archive devices that can read every channel and conversation:"),
                    archives.join(", ")
                ),
            );
        }
        // In an org of hundreds, find someone by either name (or a group's).
        ui.horizontal(|ui| {
            let l = ui.label(self.t("Find"));
            ui.add(
                egui::TextEdit::singleline(&mut run.people_filter)
                    .hint_text(self.t("name, full name, title or @group"))
                    .desired_width(220.0),
            )
            .labelled_by(l.id);
        });
        // A conversation of a few people without a channel: its members are fixed by who is
        // named (bringing someone in starts another, so nobody reads what came before).
        let mut open_group: Option<String> = None;
        ui.horizontal_wrapped(|ui| {
            let l = ui.label(self.t("Group conversation with"));
            let r = ui
                .add(
                    egui::TextEdit::singleline(&mut run.group_draft)
                        .hint_text(self.t("bilal, chen"))
                        .desired_width(220.0),
                )
                .labelled_by(l.id);
            let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let names = run.group_draft.trim();
            if (ui.button(self.t("Start")).clicked() || enter) && !names.is_empty() {
                open_group = Some(format!("@{names}"));
            }
        });
        let wanted = run.people_filter.trim().to_lowercase();
        let shown: Vec<&majlis_core::roster::Member> = r
            .roster
            .members
            .iter()
            .filter(|m| {
                wanted.is_empty()
                    || m.name.to_lowercase().contains(&wanted)
                    || [r.roster.full_name(&m.name), r.roster.title(&m.name)]
                        .into_iter()
                        .flatten()
                        .any(|f| f.to_lowercase().contains(&wanted))
                    || wanted.strip_prefix('@').is_some_and(|g| {
                        r.roster.addressed_as(&m.name)[1..]
                            .iter()
                            .any(|x| x.to_lowercase().starts_with(g))
                    })
            })
            .collect();
        let (message, device, devices_n) = (self.t("Direct message"), self.t("device"), devices);
        let mut open_dm: Option<String> = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            // In Arabic the cells come in reverse, below.
            beside_reading_edge(ui, rtl, "people-grid", |ui| {
                egui::Grid::new("people")
                    .striped(true)
                    .num_columns(5)
                    .spacing(egui::vec2(14.0, 8.0))
                    .show(ui, |ui| {
                        for m in shown {
                            let on = m
                                .devices
                                .iter()
                                .any(|d| run.online.contains(d) || *d == run.me);
                            let seen = m
                                .devices
                                .iter()
                                .filter_map(|d| self.state.last_seen.get(&d.to_string()))
                                .max()
                                .copied();
                            let idle = m.devices.iter().any(|d| run.away.contains(d))
                                || (m.devices.contains(&run.me) && run.idle);
                            // A dot of the state's colour before it: green here, amber away.
                            let (status, dot) = if on && idle {
                                (away.clone(), Color32::from_rgb(0xe0, 0xa0, 0x30))
                            } else if on {
                                (online.clone(), Color32::from_rgb(0x3c, 0xb3, 0x71))
                            } else if let Some(t) = seen {
                                (
                                    format!("{offline}, {last} {}", format_time(t, true)),
                                    Color32::GRAY,
                                )
                            } else {
                                (never.clone(), Color32::GRAY)
                            };
                            let said = run.status_of(&m.name).map(|st| status_line(lang, st));
                            let n = m.devices.len();
                            let devs = format!("{n} {}", if n == 1 { &device } else { &devices_n });
                            let mut cells: Vec<Cell> = vec![
                                Box::new(|ui: &mut egui::Ui| {
                                    let (rect, _) = ui.allocate_exact_size(
                                        egui::vec2(AVATAR, AVATAR),
                                        egui::Sense::hover(),
                                    );
                                    super::chat::avatar(
                                        ui,
                                        rect.center(),
                                        r.roster.person(&m.name),
                                    );
                                }),
                                Box::new(|ui: &mut egui::Ui| {
                                    // The full name, and the roster name people type
                                    // (`@amina`, `from:amina`) under it.
                                    let shown = r.roster.person(&m.name);
                                    ui.label(RichText::new(text::for_egui(shown)).strong());
                                    if shown != m.name {
                                        ui.label(
                                            RichText::new(text::for_egui(&format!("@{}", m.name)))
                                                .weak(),
                                        );
                                    }
                                    if let Some(title) = r.roster.title(&m.name) {
                                        ui.label(text::for_egui(title).into_owned());
                                    }
                                    ui.label(RichText::new(role_name(lang, m.role)).weak());
                                    // The groups a mention of which reaches them.
                                    let groups: Vec<String> = r.roster.addressed_as(&m.name)[1..]
                                        .iter()
                                        .map(|g| format!("@{g}"))
                                        .collect();
                                    if !groups.is_empty() {
                                        let line = text::for_egui(&groups.join(" ")).into_owned();
                                        ui.label(RichText::new(line).weak());
                                    }
                                    if let Some(st) = said {
                                        ui.label(RichText::new(text::for_egui(&st)).italics());
                                    }
                                }),
                                Box::new(move |ui: &mut egui::Ui| {
                                    ui.label(RichText::new("●").color(dot));
                                    ui.label(status);
                                }),
                                Box::new(move |ui: &mut egui::Ui| {
                                    ui.label(RichText::new(devs).weak());
                                }),
                                Box::new(|ui: &mut egui::Ui| {
                                    // Relays and archives store; nobody writes to them.
                                    if m.name != me_name && !m.role.stores_all() {
                                        let b = ui.small_button(message.as_str());
                                        let label = tr_with(
                                            lang,
                                            "Message {member}",
                                            &[("member", &m.name)],
                                        );
                                        name_widget(&b, egui::Role::Button, &label);
                                        if b.clicked() {
                                            open_dm = Some(m.name.clone());
                                        }
                                    }
                                }),
                            ];
                            if rtl {
                                cells.reverse();
                            }
                            for c in cells {
                                ui.horizontal(|ui| c(ui));
                            }
                            ui.end_row();
                        }
                    })
                    .response
            });
        });
        let open = open_dm.map(|name| format!("@{name}")).or(open_group);
        if let Some(target) = open {
            match run.node.resolve(&target) {
                Ok(c) => {
                    run.group_draft.clear();
                    self.state.selected = Some(c);
                    run.view = View::Chat;
                    run.conv = None;
                    self.refresh_sidebar(run);
                }
                // The org's policy may not allow this DM: say why.
                Err(e) => run.notice = Some((say_error(lang, &e), Instant::now())),
            }
        }
    }
}
