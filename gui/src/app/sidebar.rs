//! The frame around every view: the top bar, the channel list, the waiting screen.

use super::*;

impl MajlisApp {
    pub(super) fn draw_running(&mut self, ui: &mut egui::Ui) {
        let Some(mut run) = self.take_running() else {
            return;
        };
        let listed = run
            .roster
            .as_ref()
            .is_some_and(|r| r.member_of_device(&run.me).is_some());
        if listed {
            // The Network view refreshes itself; elsewhere the findings are asked for now
            // and then, so that a problem marks its tab.
            // While a problem stands, as often as the Network view: a mark clears soon
            // after its cause does (a peer back, space freed).
            let every = match run.problems.is_empty() {
                true => BACKGROUND_REFRESH,
                false => NETWORK_REFRESH,
            };
            if run.view != View::Network && run.refreshed.elapsed() >= every {
                run.actions.push(Action::RefreshNetwork);
            }
            ui.ctx().request_repaint_after(every);
            self.search_keys(ui, &mut run);
            self.draw_top_bar(ui, &mut run);
            if run.view == View::Chat {
                self.draw_sidebar(ui, &mut run);
                self.draw_search(ui, &mut run);
            }
            // The chat view lays out its own panels (composer at the bottom, then the rest).
            if run.view == View::Chat {
                self.draw_chat(ui, &mut run);
            } else {
                let layout = reading_column(self.state.lang.rtl());
                egui::CentralPanel::default().show(ui, |ui| {
                    ui.with_layout(layout, |ui| match run.view {
                        View::People => self.draw_people(ui, &mut run),
                        View::Network => self.draw_network(ui, &mut run),
                        _ => self.draw_admin(ui, &mut run),
                    })
                });
            }
        } else {
            self.draw_waiting(ui, &mut run);
        }
        // A message link clicked this frame opens here, not in a browser.
        for id in ui
            .ctx()
            .output_mut(|o| chat::take_message_links(&mut o.commands))
        {
            run.actions.push(Action::OpenMessage(id));
        }
        for a in std::mem::take(&mut run.actions) {
            self.execute(&mut run, a);
        }
        self.put_running(run);
    }

    pub(super) fn draw_waiting(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        let id = run.me.to_string();
        let rtl = self.state.lang.rtl();
        let why = tr(
            self.state.lang,
            "The device id is this computer's public key. It is not a secret: an admin adds it to the organization's roster, and from then on only this device can connect with it.",
        );
        let (label, copy, copied, wait) = (
            self.t("This device's id"),
            self.t("Copy"),
            self.t("Copied"),
            tr(
                self.state.lang,
                "Waiting for an admin to add this device to the roster. Give them the id above.",
            ),
        );
        // The code an admin compares before adding this device (`identity::join_code`).
        let store = run.node.store();
        let code = store
            .org()
            .ok()
            .flatten()
            .map(|org| majlis_core::identity::join_code(&org, &run.me));
        let name = store
            .get_meta("name")
            .ok()
            .flatten()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        let (code_label, code_why) = (
            self.t("Your join code"),
            crate::i18n::tr_shown(
                self.state.lang,
                "An admin on this network sees this device asking to join as {name}, with this code. Tell them the code: they add this device once it is the same as the one they see. Where they cannot see it (another network), give them the id below.",
                &[("name", &name)],
            ),
        );
        egui::CentralPanel::default().show(ui, |ui| {
            let layout = reading_column(rtl);
            ui.with_layout(layout, |ui| {
                ui.heading("Majlis");
                ui.add_space(8.0);
                if let Some(code) = &code {
                    ui.label(RichText::new(code_label).strong());
                    ui.label(RichText::new(code).monospace().size(28.0).strong());
                    ui.label(para(ui, &code_why));
                    ui.add_space(12.0);
                }
                ui.label(RichText::new(label).strong());
                ui.monospace(&id);
                ui.label(RichText::new(para(ui, why)).small().weak());
                let shown = run
                    .copied
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(2));
                if ui.button(if shown { copied } else { copy }).clicked() {
                    ui.ctx().copy_text(id.clone());
                    run.copied = Some(Instant::now());
                }
                ui.add_space(12.0);
                ui.spinner();
                ui.label(para(ui, wait));
            });
        });
    }

    pub(super) fn draw_top_bar(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        let rtl = self.state.lang.rtl();
        let is_admin = run.me_member().is_some_and(|m| m.role == Role::Admin);
        let org = run
            .roster
            .as_ref()
            .map(|r| r.roster.name.clone())
            .unwrap_or_default();
        let me = run.my_name();
        // Something is wrong (the same problems `majlisd doctor` exits non-zero on): the
        // Network tab says so, and its tooltip what.
        let problems = super::network::problems(self.state.lang, run);
        let network = match problems.is_empty() {
            true => self.t("Network"),
            false => format!("{} ⚠", self.t("Network")),
        };
        let mut tabs = vec![
            (View::Chat, self.t("Conversations")),
            (View::People, self.t("People")),
            (View::Network, network),
        ];
        if is_admin {
            let waiting = super::admin::waiting_to_join(run).len();
            tabs.push((
                View::Admin,
                match waiting {
                    0 => self.t("Admin"),
                    n => self.tf("Admin · {count} waiting", &[("count", &n.to_string())]),
                },
            ));
        }
        let mut switch_lang = false;
        let mut switch_theme = false;
        let theme_label = match self.state.theme {
            Theme::Dark => self.t("Light theme"),
            Theme::Light => self.t("Dark theme"),
        };
        let mut open_admin = false;
        let mut open_search = false;
        let search_label = self.t("Search");
        // Pausing desktop notifications: for an hour, until a morning, until resumed.
        let paused = self.paused().then(|| match self.state.paused_until {
            Some(u64::MAX) => self.t("Notifications paused until you resume them"),
            Some(t) => self.tf(
                "Notifications paused until {time}",
                &[("time", &super::format::format_time(t, true))],
            ),
            None => String::new(),
        });
        let quiet = paused.is_some() || self.outside_hours();
        let bell = match paused {
            Some(_) => self.t("Notifications paused"),
            None if quiet => self.t("Quiet hours"),
            None => self.t("Notifications"),
        };
        let hours_header = self.t("Notification hours:");
        let office = |days| Hours {
            from: 9 * 60,
            to: 18 * 60,
            days,
        };
        let hours_choices: Vec<(String, Option<Hours>)> = vec![
            (self.t("Any time"), None),
            (
                self.t("Monday to Friday, 9:00–18:00"),
                Some(office(Hours::MON_FRI)),
            ),
            (
                self.t("Sunday to Thursday, 9:00–18:00"),
                Some(office(Hours::SUN_THU)),
            ),
        ];
        let hours_now = self.state.hours;
        let mut set_hours: Option<Option<Hours>> = None;
        let custom_label = self.t("Custom hours…");
        let custom = hours_now.is_some_and(|h| !hours_choices.iter().any(|c| c.1 == Some(h)));
        let mut edit_hours = false;
        let pause_choices: Vec<(String, u64)> = [
            self.t("For 1 hour"),
            self.t("Until tomorrow at 9:00"),
            self.t("Until Monday at 9:00"),
        ]
        .into_iter()
        .zip(super::chat::later_times())
        .filter_map(|(label, at)| Some((label, at?)))
        .chain([(self.t("Until I resume them"), u64::MAX)])
        .collect();
        let pause_header = self.t("Pause desktop notifications:");
        let resume_label = self.t("Resume notifications");
        let mut pause: Option<Option<u64>> = None;
        egui::Panel::top("top").show(ui, |ui| {
            let layout = if rtl {
                Layout::right_to_left(Align::Center)
            } else {
                Layout::left_to_right(Align::Center)
            };
            ui.with_layout(layout, |ui| {
                ui.strong(text::for_egui(&org).into_owned());
                ui.label(format!("· {}", text::for_egui(&me)));
                ui.separator();
                for (v, label) in &tabs {
                    let marked = *v == View::Network && !problems.is_empty();
                    let mut text = RichText::new(label.as_str());
                    if marked {
                        text = text.color(ALERT);
                    }
                    let mut tab = ui.selectable_label(run.view == *v, text);
                    if marked {
                        tab = tab.on_hover_text(problems.join("\n"));
                    }
                    if tab.clicked() {
                        if *v == View::Admin {
                            open_admin = true;
                        }
                        run.view = *v;
                        if *v == View::Chat {
                            run.conv = None;
                        }
                    }
                }
                ui.separator();
                if ui
                    .button(if rtl { "English" } else { "العربية" }.to_string())
                    .clicked()
                {
                    switch_lang = true;
                }
                if ui.button(theme_label.as_str()).clicked() {
                    switch_theme = true;
                }
                if ui
                    .button(search_label.as_str())
                    .on_hover_text("Ctrl+K")
                    .clicked()
                {
                    open_search = true;
                }
                let mut bell_text = RichText::new(bell.as_str());
                if quiet {
                    bell_text = bell_text.color(ui.visuals().warn_fg_color);
                }
                ui.menu_button(bell_text, |ui| {
                    match &paused {
                        Some(until) => {
                            ui.label(until.as_str());
                            if ui.button(resume_label.as_str()).clicked() {
                                pause = Some(None);
                                ui.close();
                            }
                        }
                        None => {
                            ui.label(pause_header.as_str());
                            for (label, at) in &pause_choices {
                                if ui.button(label.as_str()).clicked() {
                                    pause = Some(Some(*at));
                                    ui.close();
                                }
                            }
                        }
                    }
                    ui.separator();
                    ui.label(hours_header.as_str());
                    for (label, hours) in &hours_choices {
                        if ui
                            .selectable_label(hours_now == *hours, label.as_str())
                            .clicked()
                        {
                            set_hours = Some(*hours);
                            ui.close();
                        }
                    }
                    if ui.selectable_label(custom, custom_label.as_str()).clicked() {
                        edit_hours = true;
                        ui.close();
                    }
                });
            });
        });
        if let Some(until) = pause {
            self.state.paused_until = until;
            self.state.paused_at = now_ms();
            // The member's other devices pause (or resume) too.
            let n = run.node.clone();
            let tell = async move { n.pause_notifications(until.unwrap_or(0)).await };
            self.tell_my_devices("the pause".into(), tell);
        }
        if edit_hours {
            run.hours_draft = Some(hours_now.unwrap_or(office(Hours::MON_FRI)));
        }
        if let Some(draft) = run.hours_draft {
            match self.hours_editor(ui, draft) {
                Edited::Editing(d) => run.hours_draft = Some(d),
                Edited::Done(d) => {
                    run.hours_draft = None;
                    set_hours = Some(Some(d));
                }
                Edited::Cancelled => run.hours_draft = None,
            }
        }
        if let Some(hours) = set_hours {
            self.state.hours = hours;
            self.state.hours_at = now_ms();
            // The member's other devices keep the same hours.
            let n = run.node.clone();
            let tell = async move { n.set_notification_hours(hours).await };
            self.tell_my_devices("the notification hours".into(), tell);
        }
        if open_admin {
            run.actions.push(Action::RefreshAudit);
        }
        if open_search {
            run.view = View::Chat;
            run.search.get_or_insert_with(Default::default).focus = true;
        }
        if switch_lang {
            self.toggle_lang();
        }
        if switch_theme {
            self.state.theme = match self.state.theme {
                Theme::Dark => Theme::Light,
                Theme::Light => Theme::Dark,
            };
            ui.ctx().set_theme(self.state.theme.egui());
        }
    }

    /// Notification hours of one's own: which days, from and to which hour.
    fn hours_editor(&self, ui: &mut egui::Ui, mut d: Hours) -> Edited {
        const DAYS: [&str; 7] = [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ];
        let hhmm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        let mut out = None;
        // A window over the app, in its middle; Cancel or Escape closes it.
        egui::Window::new(self.t("Notification hours"))
            .id(egui::Id::unique("majlis-hours"))
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ui.ctx(), |ui| {
                ui.horizontal_wrapped(|ui| {
                    for (i, day) in DAYS.iter().enumerate() {
                        let mut on = d.days & (1 << i) != 0;
                        if ui.checkbox(&mut on, self.t(day)).changed() {
                            d.days ^= 1 << i;
                        }
                    }
                });
                // Half an hour a click, round the clock: no list to scroll.
                let rows = [
                    (
                        self.t("From"),
                        &mut d.from,
                        self.t("Earlier start"),
                        self.t("Later start"),
                    ),
                    (
                        self.t("To"),
                        &mut d.to,
                        self.t("Earlier end"),
                        self.t("Later end"),
                    ),
                ];
                for (label, at, earlier, later) in rows {
                    ui.horizontal(|ui| {
                        ui.label(format!("{label} {}", hhmm(*at)));
                        let minus = ui.small_button("−");
                        name_widget(&minus, egui::Role::Button, &earlier);
                        if minus.clicked() {
                            *at = (*at + 1440 - 30) % 1440;
                        }
                        let plus = ui.small_button("+");
                        name_widget(&plus, egui::Role::Button, &later);
                        if plus.clicked() {
                            *at = (*at + 30) % 1440;
                        }
                    });
                }
                let ok = d.days != 0 && d.from != d.to;
                if !ok {
                    let why = self.t("Pick at least one day, and two different hours.");
                    ui.label(RichText::new(why).weak());
                }
                ui.horizontal(|ui| {
                    if ui
                        .add_enabled(ok, egui::Button::new(self.t("Save")))
                        .clicked()
                    {
                        out = Some(Edited::Done(d));
                    }
                    if ui.button(self.t("Cancel")).clicked() {
                        out = Some(Edited::Cancelled);
                    }
                });
            });
        match out {
            Some(done) => done,
            None if ui.input(|i| i.key_pressed(egui::Key::Escape)) => Edited::Cancelled,
            None => Edited::Editing(d),
        }
    }

    pub(super) fn channel_label(&self, run: &Running, key: &str) -> String {
        if notes_of(key).is_some() {
            return format!("@ {}", self.t("Your notes"));
        }
        match run.dm_title(key) {
            Some(title) => format!("@ {}", text::for_egui(&title)),
            // The name it is shown under: an admin may have renamed it (the key, its name
            // on the wire, stays).
            None => format!("# {}", text::for_egui(run.shown(key))),
        }
    }

    /// Where this member may forward a message: each conversation of the sidebar they may
    /// post in, as `Node::forward` takes it (`@NAME` for a DM) and as the sidebar labels it.
    pub(super) fn forward_targets(&self, run: &Running) -> Vec<(String, String)> {
        let (Some(r), Some(me)) = (run.roster.as_deref(), run.me_member()) else {
            return Vec::new();
        };
        run.sidebar
            .iter()
            .filter(|k| r.roster.may_post(me, k))
            .map(|k| {
                let to = match dm_members(k) {
                    Some(n) if n.len() == 2 => {
                        format!("@{}", if n[0] == me.name { n[1] } else { n[0] })
                    }
                    // A group by its name, which lists this member.
                    _ => k.clone(),
                };
                (to, self.channel_label(run, k))
            })
            .collect()
    }

    pub(super) fn draw_sidebar(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        // The list is made when the roster or the set of conversations changes, not per
        // frame: with a thousand members there are a thousand possible DMs.
        let (chans, dms): (Vec<&String>, Vec<&String>) =
            run.sidebar.iter().partition(|k| !is_dm(k));
        let rtl = self.state.lang.rtl();
        let lang = self.state.lang;
        let panel = if rtl {
            egui::Panel::right("channels")
        } else {
            egui::Panel::left("channels")
        };
        let (h_chan, h_dm, h_star) = (
            self.t("Channels"),
            self.t("Direct messages"),
            self.t("Starred"),
        );
        let (star_label, unstar_label) = (self.t("Star"), self.t("Unstar"));
        let mut star: Option<(String, bool)> = None;
        let mentions_label = match run.mentions {
            0 => self.t("Mentions"),
            n => format!("{} ({n})", self.t("Mentions")),
        };
        let mut open_mentions = false;
        let mut open_saved = false;
        let saved_label = self.t("Saved");
        let mut open_threads = false;
        let threads_label = self.t("Threads");
        let mut clicked = None;
        let mut notify: Option<(String, Notify)> = None;
        let mut mark_read: Vec<String> = Vec::new();
        let (mark_read_label, mark_all_label) =
            (self.t("Mark as read"), self.t("Mark all as read"));
        let all_unread: Vec<String> = run
            .unread
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, _)| k.clone())
            .collect();
        let (muted_label, mute_label, unmute_label) =
            (self.t("muted"), self.t("Mute"), self.t("Unmute"));
        let (every_label, notify_every, notify_usual) = (
            self.t("every message"),
            self.t("Notify me of every message"),
            self.t("Notify me of mentions only"),
        );
        let (left_heading, join_label) = (self.t("Channels you left"), self.t("Join"));
        let archived_heading = self.t("Archived");
        let mut join: Option<String> = None;
        panel.default_size(200.0).show(ui, |ui| {
            let layout = if rtl {
                Layout::top_down_justified(Align::Max)
            } else {
                Layout::top_down_justified(Align::Min)
            };
            ui.with_layout(layout, |ui| {
                let text = match run.mentions {
                    0 => RichText::new(mentions_label.as_str()),
                    _ => RichText::new(mentions_label.as_str()).strong(),
                };
                if ui.selectable_label(false, text).clicked() {
                    open_mentions = true;
                }
                if ui.selectable_label(false, threads_label.as_str()).clicked() {
                    open_threads = true;
                }
                if ui.selectable_label(false, saved_label.as_str()).clicked() {
                    open_saved = true;
                }
                // One row per item, drawn only where visible: with hundreds of channels the
                // list is not laid out whole every frame.
                enum Item<'a> {
                    Heading(&'a str, bool),
                    Row(&'a String),
                    Left(&'a String),
                    Archived(&'a String),
                }
                // Starred first (channels, then DMs), each listed once.
                let starred = |k: &&String| self.state.starred.contains(k.as_str());
                let mut items: Vec<Item> = Vec::new();
                if chans.iter().chain(&dms).any(starred) {
                    items.push(Item::Heading(&h_star, false));
                    items.extend(
                        chans
                            .iter()
                            .chain(&dms)
                            .copied()
                            .filter(starred)
                            .map(Item::Row),
                    );
                }
                items.push(Item::Heading(&h_chan, false));
                items.extend(chans.iter().copied().filter(|k| !starred(k)).map(Item::Row));
                items.push(Item::Heading(&h_dm, false));
                items.extend(dms.iter().copied().filter(|k| !starred(k)).map(Item::Row));
                // Open channels left: still readable, one click from joining again.
                if run.left.iter().any(|k| !run.archived.contains(k)) {
                    items.push(Item::Heading(&left_heading, true));
                    items.extend(
                        run.left
                            .iter()
                            .filter(|k| !run.archived.contains(k))
                            .map(Item::Left),
                    );
                }
                // Archived: read only, listed last.
                if !run.archived.is_empty() {
                    items.push(Item::Heading(&archived_heading, true));
                    items.extend(run.archived.iter().map(Item::Archived));
                }
                let row_h = ui.spacing().interact_size.y + 4.0;
                egui::ScrollArea::vertical().show_rows(ui, row_h, items.len(), |ui, range| {
                    for item in &items[range] {
                        let width = ui.available_width();
                        ui.allocate_ui_with_layout(egui::vec2(width, row_h), layout, |ui| {
                            ui.set_min_height(row_h);
                            match item {
                                Item::Heading(h, weak) => {
                                    let t = RichText::new(*h);
                                    let t = if *weak { t.weak() } else { t.strong() };
                                    let heading =
                                        ui.add(egui::Label::new(t).sense(egui::Sense::click()));
                                    if !*weak && !all_unread.is_empty() {
                                        heading.context_menu(|ui| {
                                            if ui.button(mark_all_label.as_str()).clicked() {
                                                mark_read.clone_from(&all_unread);
                                                ui.close();
                                            }
                                        });
                                    }
                                }
                                Item::Row(k) => {
                                    let k: &String = k;
                                    let n = run.unread.get(k).copied().unwrap_or(0);
                                    let mut label = self.channel_label(run, k);
                                    if n > 0 {
                                        let n = if n >= 100 {
                                            "99+".into()
                                        } else {
                                            n.to_string()
                                        };
                                        label = format!("{label} ({n})");
                                    }
                                    let sel = self.state.selected.as_deref() == Some(k.as_str());
                                    let now = self.notify_of(k);
                                    let muted = now == Notify::Nothing;
                                    match now {
                                        Notify::Nothing => {
                                            label = format!("{label} ({muted_label})")
                                        }
                                        Notify::Everything => {
                                            label = format!("{label} ({every_label})")
                                        }
                                        Notify::Usual => {}
                                    }
                                    let text = match (n > 0, muted) {
                                        (_, true) => RichText::new(label).weak(),
                                        (true, false) => RichText::new(label).strong(),
                                        (false, false) => RichText::new(label),
                                    };
                                    let row = ui.selectable_label(sel, text);
                                    if row.clicked() {
                                        clicked = Some(k.clone());
                                    }
                                    row.context_menu(|ui| {
                                        if n > 0 && ui.button(mark_read_label.as_str()).clicked() {
                                            mark_read.push(k.clone());
                                            ui.close();
                                        }
                                        let on = !self.state.starred.contains(k.as_str());
                                        let what = if on { &star_label } else { &unstar_label };
                                        if ui.button(what.as_str()).clicked() {
                                            star = Some((k.clone(), on));
                                            ui.close();
                                        }
                                        // A direct message notifies of every message already.
                                        let choices = match now {
                                            Notify::Nothing => vec![(&unmute_label, Notify::Usual)],
                                            _ if is_dm(k) => vec![(&mute_label, Notify::Nothing)],
                                            Notify::Usual => vec![
                                                (&notify_every, Notify::Everything),
                                                (&mute_label, Notify::Nothing),
                                            ],
                                            Notify::Everything => vec![
                                                (&notify_usual, Notify::Usual),
                                                (&mute_label, Notify::Nothing),
                                            ],
                                        };
                                        for (what, then) in choices {
                                            if ui.button(what.as_str()).clicked() {
                                                notify = Some((k.clone(), then));
                                                ui.close();
                                            }
                                        }
                                    });
                                }
                                Item::Archived(k) => {
                                    let sel = self.state.selected.as_deref() == Some(k.as_str());
                                    let row = ui.selectable_label(
                                        sel,
                                        RichText::new(self.channel_label(run, k)).weak(),
                                    );
                                    if row.clicked() {
                                        clicked = Some((*k).clone());
                                    }
                                }
                                Item::Left(k) => {
                                    let k: &String = k;
                                    ui.horizontal(|ui| {
                                        let sel =
                                            self.state.selected.as_deref() == Some(k.as_str());
                                        let row = ui.selectable_label(
                                            sel,
                                            RichText::new(self.channel_label(run, k)).weak(),
                                        );
                                        if row.clicked() {
                                            clicked = Some(k.clone());
                                        }
                                        let b = ui.small_button(join_label.as_str());
                                        let label = tr_with(
                                            lang,
                                            "Join {channel}",
                                            &[("channel", run.shown(k))],
                                        );
                                        name_widget(&b, egui::Role::Button, &label);
                                        if b.clicked() {
                                            join = Some(k.clone());
                                        }
                                    });
                                }
                            }
                        });
                    }
                });
            });
        });
        if let Some(k) = clicked {
            self.state.selected = Some(k);
            run.conv = None;
        }
        if let Some((channel, on)) = star {
            self.set_starred(&channel, on, now_ms());
            // Starred on each of the member's devices.
            let n = run.node.clone();
            let what = format!("{channel} starred {on}");
            self.tell_my_devices(what, async move { n.set_starred(&channel, on).await });
        }
        if let Some(channel) = join {
            run.actions.push(Action::Join { channel, on: true });
        }
        for channel in mark_read {
            self.mark_read_unopened(run, channel);
        }
        if let Some((channel, then)) = notify {
            self.set_notify(&channel, then, now_ms());
            // The member's other devices notify alike.
            let n = run.node.clone();
            let what = format!("how {channel} notifies");
            self.tell_my_devices(what, async move { n.set_notify(&channel, then).await });
        }
        // The mentions view is a search for what mentions this member.
        if open_mentions {
            run.mentions = 0;
            let sb = run.search.get_or_insert_with(Default::default);
            sb.query = "mentions:me".into();
            sb.focus = true;
        }
        // The threads this member takes part in, listed in the search box.
        if open_threads {
            let sb = run.search.get_or_insert_with(Default::default);
            sb.query.clear();
            sb.asked.clear();
            sb.hits.clear();
            sb.goto.clear();
            sb.error = None;
            sb.threads = Some(Vec::new());
            run.actions.push(Action::Threads);
        }
        // And what was saved for later, a search too.
        if open_saved {
            let sb = run.search.get_or_insert_with(Default::default);
            sb.query = "is:saved".into();
            sb.focus = true;
        }
    }
}

/// What the sidebar lists: every channel `me` may read, then the direct-message channels
/// that hold messages (or are open), not one per member: `O(channels + DMs held)`.
pub(super) fn sidebar_keys(
    r: &VerifiedRoster,
    me: DeviceId,
    held_dms: &[String],
    selected: Option<&str>,
) -> Vec<String> {
    let Some(me) = r.member_of_device(&me) else {
        return vec![];
    };
    let mut keys: Vec<String> = r.roster.readable(me).map(|c| c.name.clone()).collect();
    let mut dms: Vec<String> = held_dms
        .iter()
        .map(String::as_str)
        .chain(selected)
        .filter(|c| r.roster.may_read(me, c) && is_dm(c))
        .map(str::to_string)
        .collect();
    dms.sort();
    dms.dedup();
    // This member's notes come first, always there: a place that is theirs on every device.
    let notes = notes_channel(&me.name);
    dms.retain(|c| *c != notes);
    if r.roster.may_read(me, &notes) {
        dms.insert(0, notes);
    }
    keys.extend(dms);
    keys
}

/// Where the notification hours' editor stands after a frame.
enum Edited {
    Editing(Hours),
    Done(Hours),
    Cancelled,
}
