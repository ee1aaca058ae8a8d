//! The chat view: one conversation, paged in from the node, drawn row by row.

use super::*;

impl MajlisApp {
    pub(super) fn draw_chat(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        let lang = self.state.lang;
        let Some(channel) = self.state.selected.clone() else {
            return;
        };
        if run.conv.as_ref().is_none_or(|c| c.channel != channel) {
            let mut c = Conversation::open(&run.node, &channel);

            // Where the user left off (here or on another of their devices): the first
            // colleague's message after what they read.
            let read = self.read_upto(run, &channel);
            c.first_new = (read > 0)
                .then(|| {
                    c.rows
                        .iter()
                        .find(|m| m.sent_at > read && m.device != run.me)
                        .map(|m| m.id)
                })
                .flatten();
            run.conv = Some(c);
            // Opened again: what was marked unread shows as new once, then counts as read
            // (on the member's other devices too).
            if self.state.unread_from.contains_key(&channel) {
                self.mark_unread(&run.node, &channel, 0);
            }
        }
        // Opening a channel reads it; one marked unread while open stays unread until it is
        // opened again.
        if !self.state.unread_from.contains_key(&channel) {
            run.unread.insert(channel.clone(), 0);
            if let Some(last) = run.conv.as_ref().and_then(|c| c.rows.last()) {
                let lr = self.state.last_read.entry(channel.clone()).or_default();
                *lr = (*lr).max(last.sent_at);
            }
        }
        let rtl_ui = self.state.lang.rtl();
        let title = self.channel_label(run, &channel);
        // In a DM, the other's status under its name ("On leave until Monday").
        let their_status = dm_members(&channel)
            .filter(|names| names.len() == 2)
            .and_then(|names| {
                let me = run.my_name();
                run.status_of(if names[0] == me { names[1] } else { names[0] })
            })
            .map(|st| super::people::status_line(self.state.lang, st));
        let hint = format!("{} {}", self.t("Message"), title);
        // Who reads this conversation (kept with it, from the roster), and, while the details
        // are open, who is here now (the connections: nothing is asked of the network). Not
        // per member per frame otherwise: a channel may have a thousand readers.
        let (online_l, away_l, offline_l) = (self.t("online"), self.t("away"), self.t("offline"));
        let no_readers = Vec::new();
        let all = run.conv.as_ref().map_or(&no_readers, |c| &c.readers);
        let readers: Vec<String> = if run.details_open {
            all.iter()
                .take(SHOWN_READERS)
                .map(|(name, role, devices)| {
                    let here =
                        devices.iter().any(|d| run.online.contains(d)) || devices.contains(&run.me);
                    let away = devices.iter().all(|d| run.away.contains(d));
                    let state = match (here, away) {
                        (true, false) => &online_l,
                        (true, true) => &away_l,
                        (false, _) => &offline_l,
                    };
                    format!(
                        "{} ({}) · {state}",
                        text::for_egui(run.person(name)),
                        role_name(lang, *role)
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let members_label = format!("{} {}", all.len(), self.t("members"));
        let send_label = self.t("Send");
        // A DM with someone who left is read only: the composer says so instead (logical
        // text: drawn with `para`).
        let read_only = run
            .roster
            .as_ref()
            .and_then(|r| {
                r.roster
                    .dm_with_leaver(&channel)
                    .map(|(_, left)| left.join(", "))
            })
            .map(|left| {
                crate::i18n::tr_shown(
                    lang,
                    majlis_core::roster::LEFT_DM_TEXT,
                    &[("member", &left)],
                )
            })
            .or_else(|| {
                // So is a channel an admin archived.
                run.archived.contains(&channel).then(|| {
                    crate::i18n::tr_shown(
                        lang,
                        majlis_core::roster::ARCHIVED_TEXT,
                        &[("channel", run.shown(&channel))],
                    )
                })
            })
            .or_else(|| {
                // And one where an admin let only some of its readers post: who does.
                let r = run.roster.as_ref()?;
                let posters = r.roster.posters(&channel)?;
                let me = run.me_member()?;
                if r.roster.may_post(me, &channel) {
                    return None;
                }
                let names: Vec<&str> = posters.iter().map(|m| run.person(m)).collect();
                let place = [("channel", run.shown(&channel))];
                let replies = r.roster.may_reply(me, &channel);
                Some(match (names.is_empty(), replies) {
                    (true, _) => crate::i18n::tr_shown(lang, "Nobody posts in #{channel} now.", &place),
                    (false, false) => crate::i18n::tr_shown(
                        lang,
                        "Only {names} can post in #{channel}; you read it.",
                        &[("names", &names.join(", ")), place[0]],
                    ),
                    (false, true) => crate::i18n::tr_shown(
                        lang,
                        "Only {names} can post in #{channel}; you read it and reply in its threads.",
                        &[("names", &names.join(", ")), place[0]],
                    ),
                })
            });
        let reader = run.roster.as_deref().zip(run.me_member());
        let strings = RowStrings {
            you: self.t("You"),
            sending: self.t("sending…"),
            sent: self.t("sent"),
            today: self.t("Today"),
            yesterday: self.t("Yesterday"),
            // An empty conversation says what to do, and who will read it.
            empty: if notes_of(&channel).is_some() {
                self.t("Your notes: what you write here is on each of your devices, and only there (and in the org's archive, if it has one). Keep links, drafts and reminders to yourself here.")
            } else if dm_members(&channel).is_some_and(|n| n.len() == 2) {
                self.t("No messages yet. Only the two of you (and the org's archive, if it has one) can read what you write here.")
            } else if is_dm(&channel) {
                self.t("No messages yet. Only the people named above (and the org's archive, if it has one) can read what you write here; to bring someone in, start a new conversation with them.")
            } else {
                self.t("No messages yet. Write the first one below; everyone who reads this channel will see it.")
            },
            locked: self.t(majlis_core::store::LOCKED_TEXT),
            bot: self.t("bot"),
            bots: run
                .node
                .roster_now()
                .map(|r| {
                    r.roster
                        .members
                        .iter()
                        .filter(|m| m.role == majlis_core::Role::Bot)
                        .flat_map(|m| m.devices.iter().copied())
                        .collect()
                })
                .unwrap_or_default(),
            edited: self.t("edited"),
            read: self.t("read"),
            read_by: self.t("read by"),
            delivered: self.t("delivered"),
            receipts: run.roster.as_ref().is_none_or(|r| {
                r.roster.governance.read_receipts == majlis_core::roster::ReadReceipts::On
            }),
            delivered_to: self.t("delivered to"),
            deleted: self.t(majlis_core::conversation::DELETED_TEXT),
            replies: self.t("replies"),
            reply: self.t("reply"),
            pinned: self.t("pinned"),
            lang: self.state.lang,
            new: self.t("New"),
            me: run.my_name(),
            addressed: run.addressed_as(),
            admin: run
                .me_member()
                .is_some_and(|m| m.role == majlis_core::Role::Admin),
            read_only: read_only.is_some(),
            // Readers of a channel where only some post still react and vote there, and
            // reply in threads where an admin let them.
            respond: read_only.is_none()
                || reader.is_some_and(|(r, me)| r.roster.may_respond(me, &channel)),
            may_reply: read_only.is_none()
                || reader.is_some_and(|(r, me)| r.roster.may_reply(me, &channel)),
            roster: run.roster.clone(),
            forward_to: run.forward_to.clone(),
            saved: run.saved.clone(),
        };
        // A file dropped on the window is shared in the open conversation.
        let dropped: Vec<PathBuf> = ui.ctx().input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        for path in dropped {
            run.actions.push(Action::ShareFile {
                channel: channel.clone(),
                path,
            });
        }
        // An image pasted (Ctrl+V with a screenshot or a copied image on the clipboard) is
        // shared in the open conversation as a PNG file.
        let pasted: Vec<Arc<egui::ColorImage>> = ui.ctx().input(|i| {
            i.events
                .iter()
                .filter_map(|e| match e {
                    egui::Event::PasteImage(img) => Some(img.clone()),
                    _ => None,
                })
                .collect()
        });
        for img in pasted {
            match png_of(&img) {
                Ok(png) => run.actions.push(Action::ShareImage {
                    channel: channel.clone(),
                    name: format!(
                        "pasted-image-{}.png",
                        local(now_ms()).format("%Y-%m-%d-%H%M%S")
                    ),
                    png,
                }),
                Err(e) => {
                    run.notice = Some((
                        self.tf("could not paste the image: {error}", &[("error", &e)]),
                        Instant::now(),
                    ))
                }
            }
        }
        self.draw_thread(ui, run, &strings);
        self.draw_details(ui, run, &channel, &readers);
        self.draw_edit_bar(ui, run);
        let (attach_label, share_label, path_label) =
            (self.t("Attach file"), self.t("Share"), self.t("File path"));
        let later_label = self.t("Send later");
        let poll_label = self.t("Poll");
        let emoji_label = tr(self.state.lang, "Emoji");
        let mut emoji: Option<&'static str> = None;
        // ↑ in an empty composer edits this device's last message here, as in other chat
        // apps (what its menu's Edit would: text only, not a file, poll or forward).
        let last_mine: Option<(MessageId, String)> = run.conv.as_ref().and_then(|c| {
            c.rows
                .iter()
                .rev()
                .find(|m| {
                    m.device == run.me
                        && !m.deleted
                        && m.file.is_none()
                        && m.poll.is_none()
                        && m.forwarded.is_none()
                })
                .map(|m| (m.id, m.text.clone()))
        });
        let mut edit_last = false;
        // Composer at the bottom.
        let draft = self.state.drafts.entry(channel.clone()).or_default();
        // Typing `@na…` offers the members whose names start so (and @channel, @here), each
        // with the full name they are shown by, if any.
        let suggest: Vec<(String, String)> = run
            .roster
            .as_ref()
            .map(|r| {
                mention_suggestions(r, draft)
                    .into_iter()
                    .map(|n| {
                        let label = match (
                            r.roster.full_name(&n),
                            r.roster
                                .groups
                                .iter()
                                .find(|(g, _)| *g == n)
                                .map(|(_, m)| m),
                        ) {
                            (Some(full), _) => format!("@{n} · {full}"),
                            // A group, with whom it reaches.
                            (None, Some(members)) => format!(
                                "@{n} · {}",
                                members
                                    .iter()
                                    .map(|m| r.roster.person(m))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            (None, None) => format!("@{n}"),
                        };
                        (n, label)
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Messages of this conversation kept for later, and when one can be sent later.
        let waiting: Vec<majlis_core::node::Scheduled> = run
            .scheduled
            .iter()
            .filter(|s| s.channel == channel)
            .take(3)
            .cloned()
            .collect();
        let choices = later_choices(lang);
        let mut later: Option<u64> = None;
        let mut cancel: Option<u64> = None;
        let mut complete: Option<String> = None;
        let mut composer_id = None;
        let mut typed = false;
        let mut send = false;
        let mut toggle_attach = false;
        let mut toggle_poll = false;
        let mut ask = false;
        let mut share: Option<PathBuf> = None;
        let attach = &mut run.attach;
        let poll = &mut run.poll;
        // A fixed height: a centred row would otherwise take all the height the panel had last
        // frame, and the panel would grow a little every frame.
        egui::Panel::bottom("composer")
            .exact_size(
                if attach.is_some() { 96.0 } else { 64.0 }
                    + if poll.is_some() { 124.0 } else { 0.0 }
                    + if suggest.is_empty() { 0.0 } else { 28.0 }
                    + 26.0 * waiting.len() as f32,
            )
            .show(ui, |ui| {
                ui.add_space(4.0);
                if let Some(note) = &read_only {
                    // Logical text, shaped and wrapped here, from the reading edge.
                    ui.with_layout(reading_column(lang.rtl()), |ui| {
                        ui.label(RichText::new(para(ui, note)).weak())
                    });
                    return;
                }
                if !suggest.is_empty() {
                    ui.horizontal(|ui| {
                        for (name, shown) in &suggest {
                            let b = ui.button(text::for_egui(shown).into_owned());
                            let label = tr_with(lang, "Mention {member}", &[("member", name)]);
                            name_widget(&b, egui::Role::Button, &label);
                            if b.clicked() {
                                complete = Some(name.clone());
                            }
                        }
                    });
                }
                for w in &waiting {
                    ui.horizontal(|ui| {
                        let when = format_time(w.at, true);
                        let said = tr_with(
                            lang,
                            "Sends at {time}: {text}",
                            &[("time", &when), ("text", &text::without_markers(&w.text))],
                        );
                        ui.label(RichText::new(text::for_egui(&said)).italics());
                        let b = ui.small_button(tr(lang, "Cancel"));
                        let name =
                            tr_with(lang, "Cancel the message for {time}", &[("time", &when)]);
                        name_widget(&b, egui::Role::Button, &name);
                        if b.clicked() {
                            cancel = Some(w.id);
                        }
                    });
                }
                if let Some(path) = attach.as_mut() {
                    ui.horizontal(|ui| {
                        let l = ui.label(path_label.as_str());
                        let r = ui.add(
                            // Fixed: lines above it ("… is typing") come and go.
                            egui::TextEdit::singleline(path)
                                .id(ui.make_persistent_id("attach-path"))
                                .hint_text("/home/me/Documents/plan.pdf")
                                .desired_width(ui.available_width() - 80.0),
                        );
                        let r = r.labelled_by(l.id);
                        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                        if (ui.button(share_label.as_str()).clicked() || enter)
                            && !path.trim().is_empty()
                        {
                            share = Some(PathBuf::from(path.trim()));
                        }
                    });
                }
                if let Some(p) = poll.as_mut() {
                    // Fixed ids, as the attach field's: lines above come and go.
                    ui.horizontal(|ui| {
                        let l = ui.label(tr(lang, "Question"));
                        ui.add(
                            egui::TextEdit::singleline(&mut p.question)
                                .id(ui.make_persistent_id("poll-question"))
                                .desired_width(ui.available_width() - 8.0),
                        )
                        .labelled_by(l.id);
                    });
                    ui.horizontal(|ui| {
                        let l = ui.label(tr(lang, "Options, one a line"));
                        ui.add(
                            egui::TextEdit::multiline(&mut p.options)
                                .id(ui.make_persistent_id("poll-options"))
                                .desired_rows(3)
                                .desired_width(ui.available_width() - 8.0),
                        )
                        .labelled_by(l.id);
                    });
                    ui.horizontal(|ui| {
                        ui.checkbox(&mut p.multi, tr(lang, "Several choices"));
                        if ui.button(tr(lang, "Ask")).clicked() {
                            ask = true;
                        }
                    });
                }
                let id = ui.make_persistent_id(("composer", &channel));
                composer_id = Some(id);
                let focused = ui.memory(|m| m.has_focus(id));
                // Enter sends; Shift+Enter is left to the editor (a new line).
                if focused
                    && ui.input_mut(|i| {
                        !i.modifiers.shift && i.consume_key(egui::Modifiers::NONE, egui::Key::Enter)
                    })
                {
                    send = true;
                }
                // Ctrl+B, Ctrl+I (⌘ on a Mac): the selection bold or italic, or a pair of
                // markers with the cursor between them.
                if focused {
                    let wrap = ui.input_mut(|i| {
                        [(egui::Key::B, '*'), (egui::Key::I, '_')]
                            .into_iter()
                            .find(|(k, _)| i.consume_key(egui::Modifiers::COMMAND, *k))
                            .map(|(_, c)| c)
                    });
                    if let Some(marker) = wrap {
                        wrap_selection(ui.ctx(), id, draft, marker);
                    }
                    edit_last = draft.is_empty()
                        && last_mine.is_some()
                        && ui.input_mut(|i| {
                            i.consume_key(egui::Modifiers::NONE, egui::Key::ArrowUp)
                        });
                }
                let layout = if rtl_ui {
                    Layout::right_to_left(Align::Center)
                } else {
                    Layout::left_to_right(Align::Center)
                };
                ui.with_layout(layout, |ui| {
                    if ui.button(send_label.as_str()).clicked() {
                        send = true;
                    }
                    ui.menu_button(later_label.as_str(), |ui| {
                        for (label, at) in &choices {
                            if ui.button(label.as_str()).clicked() {
                                later = Some(*at);
                                ui.close();
                            }
                        }
                    });
                    if ui.button(attach_label.as_str()).clicked() {
                        toggle_attach = true;
                    }
                    if ui.button(poll_label.as_str()).clicked() {
                        toggle_poll = true;
                    }
                    let picker = ui.menu_button("😊", |ui| {
                        if let Some(e) = emoji_grid(ui, &EMOJI) {
                            emoji = Some(e);
                            ui.close();
                        }
                    });
                    name_widget(&picker.response, egui::Role::Button, emoji_label);
                    let mut layouter = rtl_layouter;
                    let te = egui::TextEdit::multiline(draft)
                        .id(id)
                        .hint_text(hint.as_str())
                        .desired_rows(2)
                        .desired_width(f32::INFINITY)
                        .layouter(&mut layouter);
                    let out = te.show(ui);
                    fix_click(ui.ctx(), id, &out, draft);
                    let resp = out.response;
                    name_widget(&resp, egui::Role::TextInput, tr(lang, "Message"));
                    typed = resp.changed();
                    if send {
                        resp.request_focus();
                    }
                });
                ui.add_space(4.0);
            });
        if let Some((id, text)) = last_mine.filter(|_| edit_last) {
            run.actions.push(Action::StartEdit(id, text));
        }
        if let (Some(e), Some(id)) = (emoji, composer_id) {
            // In place of the selection, or at the cursor; the cursor after it.
            let mut st = egui::TextEdit::load_state(ui.ctx(), id).unwrap_or_default();
            let Selected { a, start, end, .. } = selected(&st, draft);
            draft.replace_range(start..end, e);
            let after = egui::text::CCursor::new(a + e.chars().count());
            st.cursor
                .set_char_range(Some(egui::text::CCursorRange::one(after)));
            st.store(ui.ctx(), id);
            ui.memory_mut(|m| m.request_focus(id));
        }
        if let (Some(name), Some(id)) = (complete, composer_id) {
            if let Some(at) = draft.rfind('@') {
                draft.truncate(at);
                draft.push_str(&format!("@{name} "));
                // Back to the composer, the cursor after the name.
                let mut st = egui::TextEdit::load_state(ui.ctx(), id).unwrap_or_default();
                let end = egui::text::CCursor::new(draft.chars().count());
                st.cursor
                    .set_char_range(Some(egui::text::CCursorRange::one(end)));
                st.store(ui.ctx(), id);
                ui.memory_mut(|m| m.request_focus(id));
            }
        }
        // Tell the channel's readers, now and then, while the draft changes.
        if typed && !draft.trim().is_empty() {
            let due = run
                .typing_sent
                .as_ref()
                .is_none_or(|(c, t)| *c != channel || t.elapsed() >= TYPING_EVERY);
            if due {
                run.typing_sent = Some((channel.clone(), Instant::now()));
                let (n, c) = (run.node.clone(), channel.clone());
                self.rt.spawn(async move {
                    let _ = n.typing(&c).await;
                });
            }
        }
        if toggle_attach {
            run.attach = match run.attach {
                Some(_) => None,
                None => Some(String::new()),
            };
        }
        if toggle_poll {
            run.poll = match run.poll {
                Some(_) => None,
                None => Some(Default::default()),
            };
        }
        // Checked here first, so that a refused poll stays in its form to be put right.
        if let (true, Some(p)) = (ask, &run.poll) {
            let options: Vec<String> = p
                .options
                .lines()
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect();
            let question = p.question.trim().to_string();
            match majlis_core::conversation::check_poll(&question, &options) {
                Ok(()) => {
                    run.actions.push(Action::Poll {
                        channel: channel.clone(),
                        question,
                        options,
                        multi: p.multi,
                    });
                    run.poll = None;
                }
                Err(e) => run.notice = Some((say_error(lang, &e), Instant::now())),
            }
        }
        if let Some(path) = share {
            run.attach = None;
            run.actions.push(Action::ShareFile {
                channel: channel.clone(),
                path,
            });
        }
        // Kept for later: the draft stays until the node has it.
        if let (Some(at), false) = (later, draft.trim().is_empty()) {
            run.actions.push(Action::SendLater {
                channel: channel.clone(),
                text: draft.trim_end().to_string(),
                at,
            });
        }
        if let Some(id) = cancel {
            run.actions.push(Action::CancelScheduled(id));
        }
        if send && !draft.trim().is_empty() {
            let text = std::mem::take(draft).trim_end().to_string();
            run.actions.push(Action::Send {
                channel: channel.clone(),
                text,
            });
        }
        let me = run.me;
        let pending: Vec<&PendingSend> = run
            .pending
            .iter()
            .filter(|p| p.channel == channel)
            .collect();
        let notice = run
            .notice
            .as_ref()
            .filter(|(_, at)| at.elapsed() < Duration::from_secs(8))
            .map(|(n, _)| n.clone());
        run.typing.retain(|_, t| t.elapsed() < TYPING_SHOWN);
        let mut typing: Vec<&str> = run
            .typing
            .keys()
            .filter(|(c, _)| *c == channel)
            .map(|(_, m)| run.person(m))
            .collect();
        typing.sort();
        let typing = match typing.len() {
            0 => None,
            // One logical sentence, shaped once: an Arabic full name in an Arabic sentence
            // reads right to left with it.
            n => {
                let en = if n == 1 {
                    "{members} is typing…"
                } else {
                    "{members} are typing…"
                };
                let said = crate::i18n::tr_shown(lang, en, &[("members", &typing.join(", "))]);
                Some(text::for_egui(&said).into_owned())
            }
        };
        // Shown to a present user: say so (DMs and small channels; the node decides).
        let newest = run
            .conv
            .as_ref()
            .and_then(|c| c.rows.last())
            .filter(|m| m.device != run.me && !m.locked)
            .map(|m| m.id);
        if let (Some(id), true) = (newest, self.focused && !run.idle) {
            self.say_read(&run.node, &mut run.read_sent, &channel, id);
        }
        let topic = run
            .conv
            .as_ref()
            .map(|c| c.details.topic.clone())
            .unwrap_or_default();
        // The header (name, topic, who is typing) from the reading side.
        let header = reading_column(rtl_ui);
        egui::CentralPanel::default().show(ui, |ui| {
            ui.with_layout(header, |ui| {
                ui.horizontal(|ui| {
                    ui.heading(title);
                    let b = ui.selectable_label(run.details_open, members_label.as_str());
                    if b.clicked() {
                        run.details_open = !run.details_open;
                        if run.details_open {
                            run.thread = None;
                        }
                    }
                });
                if let Some(st) = &their_status {
                    ui.label(RichText::new(text::for_egui(st)).italics());
                }
                if !topic.is_empty() {
                    ui.label(RichText::new(text::for_egui(&topic)).weak());
                }
                if let Some(t) = typing {
                    ui.label(RichText::new(t).small().italics());
                }
                // What became of a file shared or saved from here.
                if let Some(n) = notice {
                    ui.label(RichText::new(para(ui, &n)).italics());
                }
            });
            ui.separator();
            if let Some(conv) = &mut run.conv {
                let mut files = Files {
                    lang: self.state.lang,
                    status: &run.files,
                    thumbs: &run.thumbs,
                    actions: &mut run.actions,
                };
                conv.show(ui, &run.node, me, &pending, &strings, &mut files);
            }
            if let Some(v) = &run.viewer {
                if !picture_viewer(ui, v, self.state.lang, &mut run.actions) {
                    run.viewer = None;
                }
            }
        });
    }
}

/// What rows need to show shared files: their download state, and where to ask for more.
pub(super) struct Files<'a> {
    lang: Lang,
    status: &'a HashMap<majlis_core::files::BlobId, majlis_core::node::FileStatus>,
    thumbs: &'a HashMap<majlis_core::files::BlobId, super::preview::Thumb>,
    actions: &'a mut Vec<Action>,
}

pub(super) struct RowStrings {
    you: String,
    sending: String,
    sent: String,
    today: String,
    yesterday: String,
    empty: String,
    /// Shown for a message whose key has not arrived.
    locked: String,
    /// The tag after a bot's name, and the devices of the roster's bots: people should know
    /// when a program wrote what they read.
    bot: String,
    bots: std::collections::HashSet<DeviceId>,
    /// Shown after an edited message's time, in place of a deleted one, after a reply count.
    edited: String,
    deleted: String,
    replies: String,
    /// This member's name (is a reaction ours?) and whether it is an admin (may delete any).
    me: String,
    /// What a mention of this member carries: their name and their groups' (see
    /// `Roster::addressed_as`).
    addressed: Vec<String>,
    admin: bool,
    /// Nothing can be posted here (an archived channel, a DM with someone who left, one where
    /// only others post): a message's menu keeps what is this member's own (copy, forward
    /// elsewhere, remind, save for later), not what would post here.
    read_only: bool,
    /// Reactions and poll votes can be sent here: where this member posts, and where only
    /// others post but it reads (see `Roster::may_respond`).
    respond: bool,
    /// Replies in threads (and edits and deletions of one's own) can be sent here: where
    /// this member posts, and where an admin let the readers reply (`Roster::may_reply`).
    may_reply: bool,
    /// "read", "read by" (receipts on our messages).
    read: String,
    read_by: String,
    delivered: String,
    delivered_to: String,
    /// The org lets members' apps send read receipts (else "read" is not shown).
    receipts: bool,
    pinned: String,
    reply: String,
    /// For the message menu's items.
    lang: crate::i18n::Lang,
    /// The line above the first message since the conversation was last read.
    new: String,
    /// The roster the rows are drawn under: what authors are called (`Roster::person`).
    roster: Option<Arc<VerifiedRoster>>,
    /// Where a message can be forwarded: (what `Node::forward` takes, the sidebar's label).
    forward_to: Arc<[(String, String)]>,
    /// What this member saved for later (the menu offers to save or to take off).
    saved: Arc<HashSet<MessageId>>,
}

impl RowStrings {
    /// What an author is called here: their full name, else their roster name.
    fn person<'a>(&'a self, member: &'a str) -> &'a str {
        majlis_core::roster::person_in(self.roster.as_deref(), member)
    }

    /// Who an author is beyond the name shown, for a hover over it: the roster name that
    /// mentions them (where a full name is shown) and the job title an admin gave them.
    fn about(&self, member: &str) -> Option<String> {
        let r = &self.roster.as_deref()?.roster;
        let at = (r.full_name(member).is_some()).then(|| format!("@{member}"));
        let parts: Vec<String> = at
            .into_iter()
            .chain(r.title(member).map(str::to_string))
            .collect();
        (!parts.is_empty()).then(|| text::for_egui(&parts.join(" · ")).into_owned())
    }

    /// Members as the views call them, in a list ("Amina Haddad, bilal"), ready for egui.
    fn people(&self, members: &[String]) -> String {
        let names: Vec<&str> = members.iter().map(|m| self.person(m)).collect();
        text::for_egui(&names.join(", ")).into_owned()
    }
}

impl Conversation {
    pub(super) fn open(node: &Node, channel: &str) -> Conversation {
        let rows = node.history_before(channel, None, PAGE).unwrap_or_default();
        let (details, pinned) = node.details_and_pinned(channel).unwrap_or_default();
        Conversation {
            channel: channel.to_string(),
            ids: rows.iter().map(|m| m.id).collect(),
            heights: vec![None; rows.len()],
            has_older: rows.len() == PAGE,
            rows,
            width: 0.0,
            scroll_fix: None,
            jump: None,
            mark: None,
            read: node.read_marks(channel).unwrap_or_default(),
            delivered: node.delivered_marks(channel).unwrap_or_default(),
            details,
            pinned,
            me: node.device_id(),
            readers: readers_of(node, channel),
            first_new: None,
        }
    }

    /// Topic, pins and who left, again (a channel act arrived, or a pinned message changed).
    pub(super) fn reload_details(&mut self, node: &Node) {
        (self.details, self.pinned) = node.details_and_pinned(&self.channel).unwrap_or_default();
        // A pinned row has a line more.
        self.heights.iter_mut().for_each(|h| *h = None);
    }

    /// The conversation around message `id` (a search result): pages are loaded back until
    /// it is in (at most 50 pages), then it is scrolled to and marked.
    pub(super) fn open_at(node: &Node, channel: &str, id: MessageId) -> Conversation {
        let mut c = Conversation::open(node, channel);
        for _ in 0..50 {
            if c.ids.contains(&id) || !c.has_older {
                break;
            }
            c.load_older(node);
        }
        if c.ids.contains(&id) {
            c.jump = Some(id);
            c.mark = Some((id, Instant::now()));
        }
        c
    }

    /// A live message: placed in (sent_at, id) order, once.
    pub(super) fn insert(&mut self, m: StoredMessage) {
        if self.ids.contains(&m.id) {
            return;
        }
        let key = (m.sent_at, m.id);
        if self.has_older && self.rows.first().is_some_and(|f| key < (f.sent_at, f.id)) {
            return; // older than the loaded window: it comes with its page
        }
        let at = self.rows.partition_point(|x| (x.sent_at, x.id) < key);
        self.ids.insert(m.id);
        self.rows.insert(at, m);
        self.heights.insert(at, None);
        // The next row may now continue this one's group.
        if let Some(h) = self.heights.get_mut(at + 1) {
            *h = None;
        }
    }

    /// Show message `id` again as it now folds (an edit, deletion, reaction or reply to it
    /// arrived), if it is in the loaded window.
    pub(super) fn refresh(&mut self, node: &Node, id: &MessageId) {
        if !self.ids.contains(id) {
            return;
        }
        if let (Some(at), Ok(Some(m))) = (
            self.rows.iter().position(|r| r.id == *id),
            node.store().message(id),
        ) {
            self.rows[at] = m;
            self.heights[at] = None;
        }
    }

    pub(super) fn load_older(&mut self, node: &Node) -> usize {
        let Some(first) = self.rows.first() else {
            self.has_older = false;
            return 0;
        };
        let older = node
            .history_before(&self.channel, Some((first.sent_at, first.id)), PAGE)
            .unwrap_or_default();
        self.has_older = older.len() == PAGE;
        let n = older.len();
        for m in &older {
            self.ids.insert(m.id);
        }
        self.heights.splice(0..0, std::iter::repeat_n(None, n));
        self.rows.splice(0..0, older);
        n
    }

    pub(super) fn day_break(&self, i: usize) -> bool {
        i == 0
            || local(self.rows[i - 1].sent_at).date_naive()
                != local(self.rows[i].sent_at).date_naive()
    }

    pub(super) fn body_galley(
        ui: &egui::Ui,
        m: &str,
        width: f32,
        color: Color32,
    ) -> Arc<egui::Galley> {
        Self::body_layout(ui, m, width, color).0
    }

    /// [`Conversation::body_galley`], and where it drew each link: the byte range in the
    /// galley's text and the address it opens. What is drawn how comes from
    /// [`text::pieces`]; here it gets fonts and colours and, for right-to-left text, its
    /// order on screen.
    pub(super) fn body_layout(
        ui: &egui::Ui,
        m: &str,
        width: f32,
        color: Color32,
    ) -> (Arc<egui::Galley>, Vec<(std::ops::Range<usize>, String)>) {
        let pieces = text::pieces(m);
        let font = egui::TextStyle::Body.resolve(ui.style());
        let plain = egui::TextFormat::simple(font.clone(), color);
        let (bold, bar) = ui.fonts_mut(|f| {
            let bold = f.families().contains(&crate::fonts::bold());
            (
                bold,
                if f.has_glyph(&plain.font_id, '▍') {
                    "▍ "
                } else {
                    "| "
                },
            )
        });
        let (strong, weak) = (
            ui.visuals().strong_text_color(),
            ui.visuals().weak_text_color(),
        );
        let link = ui.visuals().hyperlink_color;
        let code_bg = ui.visuals().code_bg_color;
        let mono = egui::TextStyle::Monospace.resolve(ui.style());
        let format = |p: &text::Piece| -> egui::TextFormat {
            let st = &p.style;
            let mut f = plain.clone();
            match p.mark {
                Some(text::LineMark::Quote) => f.color = weak,
                _ if st.code => {
                    f.font_id = mono.clone();
                    f.background = code_bg;
                }
                _ => {}
            }
            if st.link.is_some() {
                f.color = link;
                f.underline = egui::Stroke::new(1.0, link);
            }
            if st.bold {
                if bold && f.font_id.family == egui::FontFamily::Proportional {
                    f.font_id.family = crate::fonts::bold();
                }
                if f.color == color {
                    f.color = strong;
                }
            }
            if st.quoted && f.color == color {
                f.color = weak;
            }
            f.italics = st.italic;
            if st.struck {
                f.strikethrough = egui::Stroke::new(1.0, f.color);
            }
            f
        };
        let drawn = |p: &text::Piece| match p.mark {
            Some(text::LineMark::Quote) => bar,
            Some(text::LineMark::Bullet) => "• ",
            None => &m[p.range.clone()],
        };
        let mut job = egui::text::LayoutJob::default();
        let mut links: Vec<(std::ops::Range<usize>, String)> = Vec::new();
        let mut append = |job: &mut egui::text::LayoutJob, s: &str, p: Option<&text::Piece>| {
            if let Some(url) = p.and_then(|p| p.style.link.as_ref()) {
                let at = job.text.len()..job.text.len() + s.len();
                match links.last_mut() {
                    Some((r, u)) if r.end == at.start && u == url => r.end = at.end,
                    _ => links.push((at, url.clone())),
                }
            }
            job.append(s, 0.0, p.map_or_else(|| plain.clone(), format));
        };
        if text::has_rtl(m) {
            // Shaped, wrapped and reordered here, each character keeping its piece.
            let chars: Vec<(char, usize)> = pieces
                .iter()
                .enumerate()
                .flat_map(|(k, p)| drawn(p).chars().map(move |c| (c, k)))
                .collect();
            let lines = ui.fonts_mut(|f| {
                text::wrap_visual_styled(&chars, width, |s| {
                    f.layout_no_wrap(s.to_string(), font.clone(), Color32::WHITE)
                        .size()
                        .x
                })
            });
            for (n, line) in lines.iter().enumerate() {
                if n > 0 {
                    append(&mut job, "\n", None);
                }
                for run in line.chunk_by(|a, b| a.1 == b.1) {
                    let s: String = run.iter().map(|(c, _)| c).collect();
                    append(&mut job, &s, Some(&pieces[run[0].1]));
                }
            }
        } else {
            for p in &pieces {
                append(&mut job, drawn(p), Some(p));
            }
        }
        job.wrap.max_width = width;
        if text::is_rtl_paragraph(m) {
            job.halign = Align::RIGHT;
        }
        (ui.fonts_mut(|f| f.layout_job(job)), links)
    }

    /// A message's text as a label that takes clicks (its menu), with its links opening
    /// on a click: under the pointer, the hand and the address it opens.
    pub(super) fn message_body(
        ui: &mut egui::Ui,
        body: &str,
        width: f32,
        color: Color32,
    ) -> egui::Response {
        let (g, links) = Self::body_layout(ui, body, width, color);
        let label = ui.add(egui::Label::new(g.clone()).sense(egui::Sense::click()));
        let link = |p: egui::Pos2| link_at(&g, &links, p - galley_pos(&g, label.rect));
        if let Some(url) = label.hover_pos().and_then(link) {
            ui.ctx().set_cursor_icon(egui::CursorIcon::PointingHand);
            label.clone().on_hover_text_at_pointer(url);
        }
        if let Some(url) = label
            .clicked()
            .then(|| label.interact_pointer_pos())
            .flatten()
            .and_then(link)
        {
            ui.ctx().open_url(egui::OpenUrl::new_tab(url));
        }
        label
    }

    /// Whether row `i` continues the group of the row before: the same author, within
    /// [`GROUP_WITHIN_MS`], the same day.
    pub(super) fn grouped(&self, i: usize) -> bool {
        i > 0 && !self.day_break(i) && !self.new_break(i) && {
            let (a, b) = (&self.rows[i - 1], &self.rows[i]);
            a.device == b.device && b.sent_at.saturating_sub(a.sent_at) < GROUP_WITHIN_MS
        }
    }

    /// Whether row `i` is the first message that arrived since the conversation was last
    /// read: a "New" line above it.
    pub(super) fn new_break(&self, i: usize) -> bool {
        self.first_new.is_some_and(|id| self.rows[i].id == id)
    }

    /// Whether row `i` has a line above its text: a group's first row (the author), or one
    /// with something of its own to say (ours: the ticks; edited; pinned).
    pub(super) fn meta_shown(&self, i: usize) -> bool {
        let m = &self.rows[i];
        !self.grouped(i)
            || m.device == self.me
            || m.edited
            || self.details.pins.iter().any(|p| p.0 == m.id)
    }

    pub(super) fn row_height(&self, ui: &egui::Ui, i: usize, width: f32) -> f32 {
        let small = ui.text_style_height(&egui::TextStyle::Small) + 2.0;
        // As `draw_row` draws them: the day's line, the "New" line, the gap before a group
        // (not after a day's line).
        let day = if self.day_break(i) { small + 10.0 } else { 0.0 };
        let new = if self.new_break(i) { small + 6.0 } else { 0.0 };
        let start = !self.grouped(i);
        let gap = if start && i > 0 && day == 0.0 {
            GROUP_GAP
        } else {
            0.0
        };
        let head = match (start, self.meta_shown(i)) {
            (true, _) => ui.text_style_height(&egui::TextStyle::Body) + 2.0,
            (false, true) => small,
            (false, false) => 0.0,
        };
        let width = width - INDENT;
        let m = &self.rows[i];
        let body = if m.text.is_empty() && m.file.is_some() {
            0.0
        } else {
            Self::body_galley(ui, &m.text, width, Color32::WHITE)
                .size()
                .y
        };
        let card = match (&m.file, m.locked || m.deleted) {
            (Some(f), false) if super::preview::previewed(f) => {
                ui.spacing().interact_size.y
                    + 8.0
                    + super::preview::HEIGHT
                    + ui.spacing().item_spacing.y
            }
            (Some(_), false) => ui.spacing().interact_size.y + 8.0,
            _ => 0.0,
        };
        let meta = if !m.deleted && (!m.reactions.is_empty() || m.replies > 0) {
            ui.spacing().interact_size.y + 4.0
        } else {
            0.0
        };
        // A poll: a button a line for each option, then the line under them.
        let line = ui.spacing().interact_size.y + ui.spacing().item_spacing.y;
        let card = card
            + match (&m.poll, m.deleted || m.locked) {
                (Some(p), false) => (p.options.len() + 1) as f32 * line + 4.0,
                _ => 0.0,
            };
        // The forwarded line (one line of small text; a long one wraps, which a slightly
        // short estimate tolerates, as the body's does).
        let forwarded = match (&m.forwarded, m.deleted || m.locked) {
            (Some(_), false) => small + ui.spacing().item_spacing.y,
            _ => 0.0,
        };
        let row = head + forwarded + body + card + meta + 12.0;
        day + new + gap + if start { row.max(AVATAR + 6.0) } else { row }
    }

    pub(super) fn show(
        &mut self,
        ui: &mut egui::Ui,
        node: &Node,
        me: DeviceId,
        pending: &[&PendingSend],
        s: &RowStrings,
        files: &mut Files<'_>,
    ) {
        let width = ui.available_width() - 16.0;
        if (width - self.width).abs() > 0.5 {
            self.width = width;
            self.heights.iter_mut().for_each(|h| *h = None);
        }
        if self.rows.is_empty() && pending.is_empty() {
            ui.label(s.empty.as_str());
            return;
        }
        if let Some(id) = self.jump.take() {
            // Scroll so that the message sits a little below the top, its context above.
            let mut y = 0.0;
            for i in 0..self.rows.len() {
                let h = match self.heights[i] {
                    Some(h) => h,
                    None => {
                        let h = self.row_height(ui, i, width);
                        self.heights[i] = Some(h);
                        h
                    }
                };
                if self.rows[i].id == id {
                    break;
                }
                y += h;
            }
            self.scroll_fix = Some((y - 120.0).max(0.0));
        }
        let marking = self
            .mark
            .is_some_and(|(_, t)| t.elapsed() < super::search::MARK_FOR);
        if !marking {
            self.mark = None;
        } else {
            ui.ctx().request_repaint_after(super::search::MARK_FOR);
        }
        let mut area = egui::ScrollArea::vertical()
            .stick_to_bottom(!marking)
            .auto_shrink([false, false]);
        if let Some(y) = self.scroll_fix.take() {
            area = area.vertical_scroll_offset(y);
        }
        let mut load_older = false;
        let out = area.show_viewport(ui, |ui, viewport| {
            // Heights of rows not yet measured (a page at a time: only what is loaded).
            for i in 0..self.rows.len() {
                if self.heights[i].is_none() {
                    self.heights[i] = Some(self.row_height(ui, i, width));
                }
            }
            let pend_h = ui.text_style_height(&egui::TextStyle::Body) + 28.0;
            let total: f32 = self.heights.iter().map(|h| h.unwrap_or(0.0)).sum::<f32>()
                + pend_h * pending.len() as f32;
            let top = ui.max_rect().top();
            ui.set_height(total);
            let mut y = 0.0;
            for i in 0..self.rows.len() {
                let h = self.heights[i].unwrap_or(0.0);
                if y + h >= viewport.min.y && y <= viewport.max.y {
                    let rect = egui::Rect::from_min_size(
                        egui::pos2(ui.max_rect().left(), top + y),
                        egui::vec2(width, h),
                    );
                    self.draw_row(ui, i, rect, me, s, files);
                }
                y += h;
            }
            for p in pending {
                let rect = egui::Rect::from_min_size(
                    egui::pos2(ui.max_rect().left(), top + y),
                    egui::vec2(width, pend_h),
                );
                ui.scope_builder(egui::UiBuilder::new().max_rect(rect), |ui| {
                    ui.label(
                        RichText::new(format!(
                            "{} · {}",
                            s.you,
                            p.failed.as_deref().unwrap_or(s.sending.as_str())
                        ))
                        .small()
                        .weak(),
                    );
                    // Drawn as it will be once sent (its formatting, not its markers).
                    let color = ui.visuals().text_color();
                    ui.label(Self::body_galley(ui, &p.text, width - 12.0, color));
                });
                y += pend_h;
            }
            if viewport.min.y < 200.0 && self.has_older {
                load_older = true;
            }
        });
        if load_older {
            let before: f32 = self.heights.iter().map(|h| h.unwrap_or(0.0)).sum();
            if self.load_older(node) > 0 {
                for i in 0..self.rows.len() {
                    if self.heights[i].is_none() {
                        self.heights[i] = Some(self.row_height(ui, i, width));
                    }
                }
                let after: f32 = self.heights.iter().map(|h| h.unwrap_or(0.0)).sum();
                // Keep what the user looks at in place.
                self.scroll_fix = Some(out.state.clamped_offset().y + (after - before));
                ui.ctx().request_repaint();
            }
        }
    }

    pub(super) fn draw_row(
        &self,
        ui: &mut egui::Ui,
        i: usize,
        rect: egui::Rect,
        me: DeviceId,
        s: &RowStrings,
        files: &mut Files<'_>,
    ) {
        let m = &self.rows[i];
        let mine = m.device == me;
        let pinned = self.details.pins.iter().any(|p| p.0 == m.id);
        let day = self.day_break(i);
        ui.scope_builder(egui::UiBuilder::new().max_rect(rect), |ui| {
            if day {
                let d = local(m.sent_at).date_naive();
                let today = chrono::Local::now().date_naive();
                let label = if d == today {
                    s.today.clone()
                } else if Some(d) == today.pred_opt() {
                    s.yesterday.clone()
                } else {
                    d.format("%A %Y-%m-%d").to_string()
                };
                ui.vertical_centered(|ui| ui.label(RichText::new(label).small().strong()));
                ui.add_space(4.0);
            }
            if self.new_break(i) {
                // A line across, "New" on it: where the reader left off.
                let color = ui.visuals().warn_fg_color;
                let h = ui.text_style_height(&egui::TextStyle::Small) + 2.0;
                let (line, _) = ui
                    .allocate_exact_size(egui::vec2(ui.available_width(), h), egui::Sense::hover());
                ui.painter().hline(
                    line.x_range(),
                    line.center().y,
                    egui::Stroke::new(1.0, color),
                );
                let label = egui::Label::new(RichText::new(&s.new).small().strong().color(color));
                let behind = egui::Rect::from_center_size(line.center(), egui::vec2(60.0, h));
                ui.painter()
                    .rect_filled(behind, 4.0, ui.visuals().panel_fill);
                ui.put(behind, label);
                ui.add_space(4.0);
            }
            let start = !self.grouped(i);
            if start && i > 0 && !day {
                ui.add_space(GROUP_GAP);
            }
            // The author's initials start a group; the rows of a group line up beside them.
            let top = ui.cursor().top();
            let ui_rtl = s.lang.rtl();
            if start {
                let x = if ui_rtl {
                    rect.right() - INDENT / 2.0
                } else {
                    rect.left() + INDENT / 2.0
                };
                avatar(
                    ui,
                    egui::pos2(x, top + AVATAR / 2.0 + 2.0),
                    s.person(&m.sender),
                );
            }
            let inner = if ui_rtl {
                egui::Rect::from_min_max(
                    egui::pos2(rect.left(), top),
                    egui::pos2(rect.right() - INDENT, rect.bottom()),
                )
            } else {
                egui::Rect::from_min_max(egui::pos2(rect.left() + INDENT, top), rect.max)
            };
            let mut ui = ui.new_child(egui::UiBuilder::new().max_rect(inner));
            let ui = &mut ui;
            let rect = inner;
            let rtl = text::is_rtl_paragraph(&m.text);
            let marked = self.mark.is_some_and(|(id, _)| id == m.id);
            let frame = egui::Frame::new()
                .inner_margin(egui::Margin::symmetric(6, 3))
                .corner_radius(6.0)
                .stroke(if marked {
                    egui::Stroke::new(2.0, ui.visuals().selection.stroke.color)
                } else {
                    egui::Stroke::NONE
                })
                .fill(if mine {
                    ui.visuals().selection.bg_fill.gamma_multiply(0.35)
                } else if !m.deleted && !m.locked && super::logic::mentions(&m.text, &s.addressed) {
                    // What mentions this member (by name, a group of theirs, @channel or @here)
                    // stands out.
                    ui.visuals().warn_fg_color.gamma_multiply(0.18)
                } else {
                    Color32::TRANSPARENT
                });
            frame.show(ui, |ui| {
                ui.set_width(rect.width() - 12.0);
                let layout = reading_column(rtl);
                ui.with_layout(layout, |ui| {
                    let who = if mine {
                        s.you.clone()
                    } else if s.bots.contains(&m.device) {
                        format!("{} [{}]", text::for_egui(s.person(&m.sender)), s.bot)
                    } else {
                        text::for_egui(s.person(&m.sender)).into_owned()
                    };
                    // Our message: read by whom (receipts), else delivered (a device of
                    // theirs holds it), else sent.
                    let mut status = match mine {
                        false => String::new(),
                        true => {
                            use majlis_core::conversation::{Receipt, Tick};
                            let dm = dm_members(&m.channel).is_some_and(|n| n.len() == 2);
                            let receipt = Receipt::of(
                                m.sent_at,
                                &s.me,
                                &self.delivered,
                                &self.read,
                                s.receipts,
                            );
                            match receipt.tick() {
                                Tick::Sent => format!(" · ✓ {}", s.sent),
                                Tick::Delivered(_) if dm => format!(" · ✓✓ {}", s.delivered),
                                Tick::Delivered(n) => format!(" · ✓✓ {} {n}", s.delivered_to),
                                Tick::Read(_) if dm => format!(" · ✓✓ {}", s.read),
                                Tick::Read(n) => format!(" · ✓✓ {} {n}", s.read_by),
                            }
                        }
                    };
                    if m.edited {
                        status.push_str(&format!(" · {}", s.edited));
                    }
                    if pinned {
                        status.push_str(&format!(" · {}", s.pinned));
                    }
                    // A group's first row names its author; the others only say what is
                    // particular to them (our ticks, edited, pinned).
                    let when = format!("{}{status}", format_time(m.sent_at, false));
                    if start {
                        let mut job = egui::text::LayoutJob::default();
                        let body = egui::TextStyle::Body.resolve(ui.style());
                        let small = egui::TextStyle::Small.resolve(ui.style());
                        let (strong, weak) = (
                            ui.visuals().strong_text_color(),
                            ui.visuals().weak_text_color(),
                        );
                        job.append(&who, 0.0, egui::TextFormat::simple(body, strong));
                        job.append(
                            &format!("  {when}"),
                            0.0,
                            egui::TextFormat::simple(small, weak),
                        );
                        let head = ui.label(job);
                        // Built only while hovered: a page shows many heads every frame.
                        if let Some(about) = head.hovered().then(|| s.about(&m.sender)).flatten() {
                            head.on_hover_text(about);
                        }
                    } else if self.meta_shown(i) {
                        ui.label(RichText::new(when).small().weak());
                    }
                    let (body, color) = if m.locked {
                        (&s.locked, ui.visuals().weak_text_color())
                    } else if m.deleted {
                        (&s.deleted, ui.visuals().weak_text_color())
                    } else {
                        (&m.text, ui.visuals().text_color())
                    };
                    if let (Some(f), false) = (&m.forwarded, m.deleted || m.locked) {
                        forwarded_line(ui, f, s);
                    }
                    if !body.is_empty() {
                        let label = Self::message_body(ui, body, rect.width() - 12.0, color);
                        if !m.locked && !m.deleted {
                            label.context_menu(|ui| {
                                let may_delete = mine || s.admin;
                                row_menu(ui, m, (mine, may_delete, pinned), s, files.actions)
                            });
                        }
                    }
                    if let (Some(f), false) = (&m.file, m.locked || m.deleted) {
                        // Forwarded elsewhere, like a message's text from its menu.
                        file_card(ui, m.id, f, files, &s.forward_to);
                    }
                    if let (Some(p), false) = (&m.poll, m.locked || m.deleted) {
                        poll_card(ui, m, p, s, files.actions);
                    }
                    if !m.deleted && (!m.reactions.is_empty() || m.replies > 0) {
                        ui.horizontal(|ui| {
                            for r in &m.reactions {
                                let on = r.members.contains(&s.me);
                                let b = ui
                                    .selectable_label(
                                        on,
                                        format!("{} {}", r.emoji, r.members.len()),
                                    )
                                    .on_hover_text(s.people(&r.members));
                                if b.clicked() && s.respond {
                                    files.actions.push(Action::React {
                                        message: m.id,
                                        emoji: r.emoji.clone(),
                                        on: !on,
                                    });
                                }
                            }
                            if m.replies > 0 {
                                let open = ui.link(
                                    RichText::new(format!(
                                        "{} {} · {}",
                                        m.replies,
                                        if m.replies == 1 { &s.reply } else { &s.replies },
                                        s.people(&m.repliers)
                                    ))
                                    .small(),
                                );
                                if open.clicked() {
                                    files.actions.push(Action::OpenThread(m.id));
                                }
                            }
                        });
                    }
                });
            });
        });
    }
}

impl MajlisApp {
    /// The open thread, beside the conversation: its messages and a reply box.
    fn draw_thread(&self, ui: &mut egui::Ui, run: &mut Running, s: &RowStrings) {
        let Some(t) = &mut run.thread else {
            return;
        };
        let (me, actions) = (run.me, &mut run.actions);
        let pins: Vec<MessageId> = run
            .conv
            .as_ref()
            .map(|c| c.details.pins.iter().map(|p| p.0).collect())
            .unwrap_or_default();
        let (title, reply_label, close_label, also_label, no_reply) = (
            self.t("Thread"),
            self.t("Reply"),
            self.t("Close"),
            self.t("Also send to the channel"),
            self.t("Only those who post here reply."),
        );
        let mut close = false;
        let mut send = None;
        let header = reading_column(self.state.lang.rtl());
        egui::Panel::right("thread")
            .default_size(320.0)
            .show(ui, |ui| {
                ui.with_layout(header, |ui| {
                    ui.horizontal(|ui| {
                        ui.heading(title.as_str());
                        if ui.button(close_label.as_str()).clicked() {
                            close = true;
                        }
                    });
                });
                ui.separator();
                egui::Panel::bottom("thread-reply").show(ui, |ui| {
                    ui.add_space(4.0);
                    if !s.may_reply {
                        ui.label(RichText::new(no_reply.as_str()).weak());
                        return;
                    }
                    let id = ui.make_persistent_id("thread-reply");
                    let out = egui::TextEdit::multiline(&mut t.draft)
                        .id(id)
                        .desired_rows(2)
                        .desired_width(f32::INFINITY)
                        .layouter(&mut rtl_layouter)
                        .show(ui);
                    fix_click(ui.ctx(), id, &out, &t.draft);
                    let r = out.response;
                    name_widget(
                        &r,
                        egui::Role::TextInput,
                        tr(self.state.lang, "Thread reply"),
                    );
                    let enter = r.has_focus()
                        && ui.input_mut(|i| {
                            !i.modifiers.shift
                                && i.consume_key(egui::Modifiers::NONE, egui::Key::Enter)
                        });
                    // A reader who replies does not post in the channel.
                    if s.read_only {
                        t.also = false;
                    } else {
                        ui.checkbox(&mut t.also, also_label.as_str());
                    }
                    if (ui.button(reply_label.as_str()).clicked() || enter)
                        && !t.draft.trim().is_empty()
                    {
                        send = Some(std::mem::take(&mut t.draft).trim_end().to_string());
                    }
                });
                egui::ScrollArea::vertical()
                    .stick_to_bottom(true)
                    .show(ui, |ui| {
                        for (i, m) in t.rows.iter().enumerate() {
                            let who = text::for_egui(s.person(&m.sender)).into_owned();
                            let edited = if m.edited {
                                format!(" · {}", s.edited)
                            } else {
                                String::new()
                            };
                            ui.label(
                                RichText::new(format!(
                                    "{who} · {}{edited}",
                                    format_time(m.sent_at, false)
                                ))
                                .small()
                                .weak(),
                            );
                            let body = if m.deleted { &s.deleted } else { &m.text };
                            let color = ui.visuals().text_color();
                            let width = ui.available_width();
                            let label = Conversation::message_body(ui, body, width, color);
                            // Replies are edited, deleted, reacted to and pinned from here.
                            if !m.locked && !m.deleted {
                                let mine = m.device == me;
                                label.context_menu(|ui| {
                                    let pinned = pins.contains(&m.id);
                                    row_menu(ui, m, (mine, mine || s.admin, pinned), s, actions)
                                });
                            }
                            if i == 0 {
                                ui.separator();
                            }
                        }
                    });
            });
        if close {
            run.thread = None;
        } else if let Some(text) = send {
            let (to, also) = (t.root, t.also);
            actions.push(Action::Reply { to, text, also });
        }
    }

    /// The conversation's details beside it: topic and description (anyone who may post
    /// edits them), pinned messages, who reads it and who is here, and leaving or joining
    /// an open channel.
    fn draw_details(
        &self,
        ui: &mut egui::Ui,
        run: &mut Running,
        channel: &str,
        readers: &[String],
    ) {
        if !run.details_open || run.thread.is_some() {
            return;
        }
        let shown = run.shown(channel).to_string();
        // Leaving and joining are messages there: not for who only reads it.
        let posts = run
            .roster
            .as_ref()
            .zip(run.me_member())
            .is_some_and(|(r, me)| r.roster.may_post(me, channel));
        let roster = run.roster.clone();
        let person = |m: &'_ str| -> String {
            text::for_egui(majlis_core::roster::person_in(roster.as_deref(), m)).into_owned()
        };
        // Files shared here, newest first: (sent at, name, size, a message sharing it).
        let (store, dates) = (run.node.store(), &mut run.file_dates);
        let mut files: Vec<(u64, String, u64, MessageId)> = run
            .files
            .values()
            .filter(|f| f.channels.iter().any(|c| c == channel))
            .filter_map(|f| {
                let (id, name) = (f.message?, f.name.clone()?);
                // Kept once known (a message's time never changes; one not held yet is
                // asked again).
                let at = match dates.get(&id) {
                    Some(at) => *at,
                    None => {
                        let at = store.sent_at_of(&id).ok().flatten();
                        if let Some(at) = at {
                            dates.insert(id, at);
                        }
                        at.unwrap_or(0)
                    }
                };
                Some((at, name, f.size, id))
            })
            .collect();
        files.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let Some(conv) = &mut run.conv else {
            return;
        };
        let t = |en: &'static str| self.t(en);
        let open_channel = run
            .roster
            .as_ref()
            .and_then(|r| r.roster.channel(channel))
            .is_some_and(|c| c.members.is_none())
            && posts;
        let left = run.left.contains(channel);
        // Archived: shown, nothing changed from here (an admin may bring it back).
        let archived = run.archived.iter().any(|c| c == channel);
        let mut bring_back = false;
        // An admin changes who is on a channel from here (the admin panel's section).
        let manage = !is_dm(channel)
            && run
                .roster
                .as_ref()
                .and_then(|r| r.member_of_device(&run.me))
                .is_some_and(|m| m.role == Role::Admin);
        let mut managing = false;
        let d = &conv.details;
        let mut close = false;
        let mut end_edit = false;
        let mut jump = None;
        let layout = reading_column(self.state.lang.rtl());
        egui::Panel::right("details")
            .default_size(320.0)
            .show(ui, |ui| ui.with_layout(layout, |ui| {
                ui.horizontal(|ui| {
                    ui.heading(t("Details"));
                    if ui.button(t("Close")).clicked() {
                        close = true;
                    }
                });
                ui.separator();
                egui::ScrollArea::vertical().show(ui, |ui| {
                    ui.label(RichText::new(t("Topic")).strong());
                    match &mut run.topic_edit {
                        Some((topic, description)) => {
                            let r = ui.add(
                                egui::TextEdit::singleline(topic)
                                    .hint_text(t("What this conversation is for"))
                                    .desired_width(f32::INFINITY),
                            );
                            name_widget(&r, egui::Role::TextInput, tr(self.state.lang, "Channel topic"));
                            let r = ui.add(
                                egui::TextEdit::multiline(description)
                                    .hint_text(t("Description (optional)"))
                                    .desired_rows(3)
                                    .desired_width(f32::INFINITY),
                            );
                            name_widget(&r, egui::Role::TextInput, tr(self.state.lang, "Channel description"));
                            ui.horizontal(|ui| {
                                if ui.button(t("Save")).clicked() {
                                    run.actions.push(Action::SetTopic {
                                        channel: channel.to_string(),
                                        topic: topic.trim().to_string(),
                                        description: description.trim().to_string(),
                                    });
                                    end_edit = true;
                                } else if ui.button(t("Cancel")).clicked() {
                                    end_edit = true;
                                }
                            });
                        }
                        None => {
                            if d.topic.is_empty() {
                                // Nobody can set one in an archived channel: no call to.
                                let none = tr(
                                    self.state.lang,
                                    match archived {
                                        true => "No topic.",
                                        false => "No topic yet. Set one so people know what this conversation is for.",
                                    },
                                );
                                ui.label(RichText::new(para(ui, none)).weak());
                            } else {
                                ui.label(text::for_egui(&d.topic).into_owned());
                            }
                            if !d.description.is_empty() {
                                ui.label(RichText::new(text::for_egui(&d.description)).weak());
                            }
                            if let Some((who, at)) = &d.topic_by {
                                ui.label(
                                    RichText::new(format!(
                                        "{} {} · {}",
                                        t("set by"),
                                        person(who),
                                        format_time(*at, true)
                                    ))
                                    .small()
                                    .weak(),
                                );
                            }
                            if !archived && ui.button(t("Edit topic")).clicked() {
                                run.topic_edit = Some((d.topic.clone(), d.description.clone()));
                            }
                        }
                    }
                    ui.separator();
                    ui.label(
                        RichText::new(format!("{} ({})", t("Pinned"), conv.pinned.len())).strong(),
                    );
                    if conv.pinned.is_empty() {
                        let none = match archived {
                            true => "Nothing pinned.",
                            false => "Nothing pinned. Right-click a message to pin it.",
                        };
                        ui.label(RichText::new(t(none)).weak());
                    }
                    for m in &conv.pinned {
                        ui.label(
                            RichText::new(format!(
                                "{} · {}",
                                person(&m.sender),
                                format_time(m.sent_at, true)
                            ))
                            .small()
                            .weak(),
                        );
                        // A preview: the text as drawn, less its fonts.
                        let short: String =
                            text::without_markers(&m.text).chars().take(140).collect();
                        let label = ui.add(
                            egui::Label::new(text::for_egui(&short).into_owned())
                                .sense(egui::Sense::click()),
                        );
                        if label.clicked() {
                            jump = Some(m.id);
                        }
                        if archived {
                            continue;
                        }
                        label.context_menu(|ui| {
                            if ui.button(t("Unpin")).clicked() {
                                run.actions.push(Action::Pin {
                                    message: m.id,
                                    on: false,
                                });
                                ui.close();
                            }
                        });
                    }
                    ui.separator();
                    // What was shared here, one click from its message (its card downloads
                    // and saves it).
                    ui.label(RichText::new(format!("{} ({})", t("Files"), files.len())).strong());
                    if files.is_empty() {
                        ui.label(RichText::new(t("No files shared here yet.")).weak());
                    }
                    for (at, name, size, id) in files.iter().take(SHOWN_FILES) {
                        let line = format!(
                            "{} · {} · {}",
                            majlis_core::files::safe_name(name),
                            majlis_core::files::human_size(*size),
                            format_time(*at, true)
                        );
                        let label = ui.add(
                            egui::Label::new(text::for_egui(&line).into_owned())
                                .sense(egui::Sense::click()),
                        );
                        if label.clicked() {
                            jump = Some(*id);
                        }
                    }
                    if files.len() > SHOWN_FILES {
                        let more = files.len() - SHOWN_FILES;
                        ui.label(
                            RichText::new(self.tf(
                                "+{count} more (search has:file)",
                                &[("count", &more.to_string())],
                            ))
                            .weak(),
                        );
                    }
                    ui.separator();
                    ui.label(
                        RichText::new(format!("{} ({})", t("Members"), conv.readers.len()))
                            .strong(),
                    );
                    // The first hundred; a thousand labels would be drawn every frame.
                    for r in readers {
                        ui.label(r.as_str());
                    }
                    if conv.readers.len() > readers.len() {
                        let more = conv.readers.len() - readers.len();
                        ui.label(RichText::new(format!("+{more}")).weak());
                    }
                    if manage && ui.button(t("Change members")).clicked() {
                        managing = true;
                    }
                    if !d.left.is_empty() {
                        ui.label(
                            RichText::new(format!(
                                "{}: {}",
                                t("Left the channel"),
                                d.left.iter().map(|m| person(m)).collect::<Vec<_>>().join(", ")
                            ))
                            .weak(),
                        );
                    }
                    if archived {
                        ui.separator();
                        let note = crate::i18n::tr_shown(
                            self.state.lang,
                            majlis_core::roster::ARCHIVED_TEXT,
                            &[("channel", &shown)],
                        );
                        ui.label(RichText::new(para(ui, &note)).weak());
                        let back = self.tf("Bring #{channel} back", &[("channel", &shown)]);
                        if manage && ui.button(back).clicked() {
                            bring_back = true;
                        }
                    } else if open_channel {
                        ui.separator();
                        let (label, on) = if left {
                            (t("Join channel"), true)
                        } else {
                            (t("Leave channel"), false)
                        };
                        if ui.button(label).clicked() {
                            run.actions.push(Action::Join {
                                channel: channel.to_string(),
                                on,
                            });
                        }
                        if !left {
                            let leaving = tr(
                                self.state.lang,
                                "Leaving takes it out of your list on all your devices; you can join again.",
                            );
                            ui.label(RichText::new(para(ui, leaving)).small().weak());
                        }
                    }
                });
            }));
        if let Some(id) = jump {
            conv.jump = Some(id);
            conv.mark = Some((id, Instant::now()));
        }
        if close || end_edit {
            run.topic_edit = None;
        }
        if close {
            run.details_open = false;
        }
        if bring_back {
            run.actions
                .push(Action::ChangeRoster(vec![RosterChange::ArchiveChannel {
                    name: channel.to_string(),
                    archived: false,
                }]));
        }
        if managing {
            run.view = View::Admin;
            run.admin.edit_channel = channel.to_string();
            run.admin.open_members = true;
        }
    }

    /// Editing one of our messages: the new text, Save, Cancel.
    fn draw_edit_bar(&self, ui: &mut egui::Ui, run: &mut Running) {
        let Some((id, text)) = &mut run.editing else {
            return;
        };
        let (title, save_label, cancel_label) =
            (self.t("Edit message"), self.t("Save"), self.t("Cancel"));
        let (mut save, mut cancel) = (false, false);
        egui::Panel::bottom("edit").show(ui, |ui| {
            ui.add_space(4.0);
            ui.label(RichText::new(title.as_str()).small().strong());
            ui.horizontal(|ui| {
                let id = ui.make_persistent_id("edit-message");
                let out = egui::TextEdit::singleline(text)
                    .id(id)
                    .desired_width(ui.available_width() - 140.0)
                    .layouter(&mut rtl_layouter)
                    .show(ui);
                fix_click(ui.ctx(), id, &out, text);
                let r = out.response;
                name_widget(&r, egui::Role::TextInput, tr(self.state.lang, "Edit"));
                save = ui.button(save_label.as_str()).clicked()
                    || (r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)));
                cancel = ui.button(cancel_label.as_str()).clicked();
            });
            ui.add_space(4.0);
        });
        if save && !text.trim().is_empty() {
            let (message, text) = (*id, text.trim().to_string());
            run.actions.push(Action::Edit { message, text });
            run.editing = None;
        } else if cancel {
            run.editing = None;
        }
    }
}

/// Where a [`egui::Label`] in `rect` draws galley `g` (its alignment decides).
fn galley_pos(g: &egui::Galley, rect: egui::Rect) -> egui::Vec2 {
    match g.job.halign {
        Align::RIGHT => rect.right_top().to_vec2(),
        Align::Center => rect.center_top().to_vec2(),
        _ => rect.left_top().to_vec2(),
    }
}

/// The address of the link drawn under `at` (relative to galley `g`), if the pointer is on
/// one of its glyphs. `links`: where the galley draws each (see [`Conversation::body_layout`]).
fn link_at(
    g: &egui::Galley,
    links: &[(std::ops::Range<usize>, String)],
    at: egui::Pos2,
) -> Option<String> {
    let mut chars = 0;
    let mut hit = None;
    for row in &g.rows {
        if row.rect().y_range().contains(at.y) {
            hit = row.glyphs.iter().position(|gl| {
                let x = row.pos.x + gl.pos.x;
                (x..x + gl.advance_width).contains(&at.x)
            });
            hit = hit.map(|i| chars + i);
            break;
        }
        chars += row.char_count_including_newline().0;
    }
    let (byte, _) = g.text().char_indices().nth(hit?)?;
    links
        .iter()
        .find(|(r, _)| r.contains(&byte))
        .map(|(_, url)| url.clone())
}

/// The composer's selection (or its cursor, or the end when it has none): from char `a` to
/// char `b`, bytes `start` to `end` of the draft.
struct Selected {
    a: usize,
    b: usize,
    start: usize,
    end: usize,
}

fn selected(st: &egui::text_edit::TextEditState, draft: &str) -> Selected {
    let n = draft.chars().count();
    let (a, b) = st.cursor.char_range().map_or((n, n), |r| {
        let (x, y) = (r.primary.index.0.min(n), r.secondary.index.0.min(n));
        (x.min(y), x.max(y))
    });
    let byte = |c: usize| draft.char_indices().nth(c).map_or(draft.len(), |(i, _)| i);
    Selected {
        a,
        b,
        start: byte(a),
        end: byte(b),
    }
}

/// Put `marker` on both sides of the selection in the composer `id` holding `draft` (or at
/// the cursor, which then sits between the two), keeping what was selected selected.
fn wrap_selection(ctx: &egui::Context, id: egui::Id, draft: &mut String, marker: char) {
    use egui::text::{CCursor, CCursorRange};
    let mut st = egui::TextEdit::load_state(ctx, id).unwrap_or_default();
    let Selected { a, b, start, end } = selected(&st, draft);
    draft.insert(end, marker);
    draft.insert(start, marker);
    st.cursor.set_char_range(Some(CCursorRange::two(
        CCursor::new(a + 1),
        CCursor::new(b + 1),
    )));
    st.store(ctx, id);
}

/// In an hour, tomorrow at 9:00, next Monday at 9:00 (local time; `None` for a time the
/// clock skips): what "Send later" and pausing notifications offer.
pub(super) fn later_times() -> [Option<u64>; 3] {
    use chrono::{Datelike, Days, Local};
    let now = Local::now();
    let at_nine = |days: u64| {
        (now.date_naive() + Days::new(days))
            .and_hms_opt(9, 0, 0)
            .and_then(|t| t.and_local_timezone(Local).earliest())
            .map(|t| t.timestamp_millis() as u64)
    };
    let to_monday = 7 - u64::from(now.weekday().num_days_from_monday());
    [
        Some(now.timestamp_millis() as u64 + 3_600_000),
        at_nine(1),
        at_nine(to_monday),
    ]
}

/// When "Send later" can send a message ([`later_times`]), with the label each is offered
/// under.
fn later_choices(lang: crate::i18n::Lang) -> Vec<(String, u64)> {
    ["In 1 hour", "Tomorrow at 9:00", "Monday at 9:00"]
        .into_iter()
        .zip(later_times())
        .filter_map(|(label, at)| Some((tr(lang, label).to_string(), at?)))
        .collect()
}

/// Members (and `channel`, `here`, and groups) whose names start with the `@word` the draft
/// ends in.
fn mention_suggestions(r: &VerifiedRoster, draft: &str) -> Vec<String> {
    let Some(word) = draft
        .rsplit(char::is_whitespace)
        .next()
        .and_then(|w| w.strip_prefix('@'))
    else {
        return Vec::new();
    };
    let w = word.to_lowercase();
    // A full name's words count too: "@Hadd" offers amina when she is Amina Haddad.
    let by_full_name = |n: &str| {
        !w.is_empty()
            && r.roster.full_name(n).is_some_and(|f| {
                f.to_lowercase()
                    .split_whitespace()
                    .any(|part| part.starts_with(&w))
            })
    };
    ["channel", "here"]
        .into_iter()
        .map(str::to_string)
        .chain(r.roster.members.iter().map(|m| m.name.clone()))
        .chain(r.roster.groups.iter().map(|(g, _)| g.clone()))
        .filter(|n| (n.to_lowercase().starts_with(&w) && n.len() > w.len()) || by_full_name(n))
        .take(6)
        .collect()
}

/// Take the message links (`majlis:message/…`) out of what this frame asks to open in a
/// browser: the app opens those itself.
pub(super) fn take_message_links(commands: &mut Vec<egui::OutputCommand>) -> Vec<MessageId> {
    let mut ids = Vec::new();
    commands.retain(|c| match c {
        egui::OutputCommand::OpenUrl(u) => match MessageId::from_link(&u.url) {
            Some(id) => {
                ids.push(id);
                false
            }
            None => true,
        },
        _ => true,
    });
    ids
}

/// How many files the details panel lists, newest first (search finds the rest).
const SHOWN_FILES: usize = 20;

/// How many readers the details panel lists (People lists everyone).
const SHOWN_READERS: usize = 100;

/// Quick reactions offered on a message's menu.
const QUICK: [&str; 4] = ["👍", "❤", "😂", "🎉"];

/// What the composer's emoji picker and a message's "More reactions" offer: what a team
/// answers with instead of words ("done", "seen", "thanks", "careful"), each one character
/// that the emoji font the app installs draws (`fonts::install`; checked by a test).
pub(super) const EMOJI: [&str; 40] = [
    "👍", "👎", "❤", "😂", "🎉", "✅", "👀", "🙏", "👏", "🔥", "💯", "🙌", "🤝", "👌", "💪", "😊",
    "😄", "😉", "🙂", "😮", "😢", "😡", "🤔", "😅", "😍", "🎈", "❌", "⚠", "❓", "🚀", "⭐", "💡",
    "☕", "🍰", "🎂", "🌙", "☀", "📌", "📎", "🕌",
];

/// A grid of `emoji` buttons, eight to a row; the one clicked.
fn emoji_grid(ui: &mut egui::Ui, emoji: &[&'static str]) -> Option<&'static str> {
    let mut picked = None;
    egui::Grid::new(ui.next_auto_id()).show(ui, |ui| {
        for (i, e) in emoji.iter().enumerate() {
            if ui.button(RichText::new(*e).size(18.0)).clicked() {
                picked = Some(*e);
            }
            if i % 8 == 7 {
                ui.end_row();
            }
        }
    });
    picked
}

/// What can be done to a message from its context menu (right click).
/// `(mine, may_delete, pinned)` say which items apply.
fn row_menu(
    ui: &mut egui::Ui,
    m: &StoredMessage,
    (mine, may_delete, pinned): (bool, bool, bool),
    s: &RowStrings,
    actions: &mut Vec<Action>,
) {
    let (lang, forward_to) = (s.lang, &s.forward_to);
    let t = |en| text::for_egui(crate::i18n::tr(lang, en)).into_owned();
    // Where nothing can be posted, only what is this member's own: no reply, edit, pin or
    // deletion (each is a message here).
    let posts = !s.read_only;
    if s.may_reply && ui.button(t("Reply in thread")).clicked() {
        actions.push(Action::OpenThread(match &m.act {
            Some(majlis_core::conversation::Act::Reply { to, .. }) => *to,
            _ => m.id,
        }));
        ui.close();
    }
    // A colleague's message of the conversation (not a reply in a thread): to come back to.
    if !mine && m.act.is_none() && ui.button(t("Mark unread")).clicked() {
        actions.push(Action::MarkUnread(m.id));
        ui.close();
    }
    if !m.text.is_empty() && ui.button(t("Copy text")).clicked() {
        ui.ctx().copy_text(m.text.clone());
        ui.close();
    }
    // To point a colleague at it: pasted in a message, a click there opens it.
    if ui.button(t("Copy link")).clicked() {
        ui.ctx().copy_text(m.id.link());
        ui.close();
    }
    // A forward keeps its author's words, a poll the question voted on (the node refuses to
    // edit either).
    let plain = m.file.is_none() && m.poll.is_none();
    if s.may_reply && mine && plain && m.forwarded.is_none() && ui.button(t("Edit")).clicked() {
        actions.push(Action::StartEdit(m.id, m.text.clone()));
        ui.close();
    }
    if plain {
        forward_menu(ui, m.id, forward_to, lang, actions);
    }
    if s.respond {
        ui.horizontal(|ui| {
            for e in QUICK {
                if ui.button(e).clicked() {
                    actions.push(Action::React {
                        message: m.id,
                        emoji: e.to_string(),
                        on: true,
                    });
                    ui.close();
                }
            }
        });
        ui.menu_button(t("More reactions"), |ui| {
            let more: Vec<&'static str> =
                EMOJI.into_iter().filter(|e| !QUICK.contains(e)).collect();
            if let Some(e) = emoji_grid(ui, &more) {
                actions.push(Action::React {
                    message: m.id,
                    emoji: e.to_string(),
                    on: true,
                });
                ui.close();
            }
        });
    }
    if posts && ui.button(t(if pinned { "Unpin" } else { "Pin" })).clicked() {
        actions.push(Action::Pin {
            message: m.id,
            on: !pinned,
        });
        ui.close();
    }
    ui.menu_button(t("Remind me"), |ui| {
        for (label, at) in later_choices(lang) {
            if ui.button(label).clicked() {
                actions.push(Action::Remind { message: m.id, at });
                ui.close();
            }
        }
    });
    let saved = s.saved.contains(&m.id);
    if ui
        .button(t(if saved {
            "Remove from saved"
        } else {
            "Save for later"
        }))
        .clicked()
    {
        actions.push(Action::SaveForLater {
            message: m.id,
            on: !saved,
        });
        ui.close();
    }
    if s.may_reply && may_delete && ui.button(t("Delete")).clicked() {
        actions.push(Action::Delete(m.id));
        ui.close();
    }
}

/// Where a forwarded message came from, above its text, and what this device can tell of
/// it: a forward that does not match its original is marked in the warning colour.
fn forwarded_line(ui: &mut egui::Ui, f: &majlis_core::conversation::ForwardView, s: &RowStrings) {
    use majlis_core::conversation::ForwardCheck;
    let r = s.roster.as_deref();
    let person = majlis_core::roster::person_in(r, &f.author);
    let channel = majlis_core::roster::shown_in(r, &f.channel);
    let vars = [("member", person), ("channel", channel)];
    let (said, color) = match f.check {
        ForwardCheck::Matches => (
            tr_with(s.lang, "Forwarded from {member} in #{channel} ✓", &vars),
            ui.visuals().weak_text_color(),
        ),
        ForwardCheck::Unseen => (
            tr_with(
                s.lang,
                "Forwarded from {member} in #{channel} (you cannot see the original)",
                &vars,
            ),
            ui.visuals().weak_text_color(),
        ),
        ForwardCheck::Differs => (
            tr_with(
                s.lang,
                "Forwarded, said to be from {member} in #{channel}: it does not match the original",
                &vars,
            ),
            ui.visuals().warn_fg_color,
        ),
    };
    ui.label(RichText::new(text::for_egui(&said)).small().color(color));
}

/// A poll in a message: each option with how many chose it (who, on hover), chosen or
/// unchosen by a click while the poll is open; then how many voted, and Close for who
/// asked or an admin.
fn poll_card(
    ui: &mut egui::Ui,
    m: &StoredMessage,
    p: &majlis_core::conversation::PollView,
    s: &RowStrings,
    actions: &mut Vec<Action>,
) {
    let lang = s.lang;
    let chosen = p.chosen_by(&s.me);
    let open = p.closed.is_none() && s.respond;
    let total = p.voters().len();
    ui.add_space(2.0);
    for (i, o) in p.options.iter().enumerate() {
        let on = chosen.contains(&i);
        let b = poll_option(ui, &o.text, o.voters.len(), total, on, open)
            .on_hover_text(s.people(&o.voters));
        if b.clicked() && open {
            let choices = match (p.multi, on) {
                (true, _) => {
                    let mut c: Vec<usize> = chosen.iter().copied().filter(|c| *c != i).collect();
                    if !on {
                        c.push(i);
                    }
                    c
                }
                (false, true) => Vec::new(),
                (false, false) => vec![i],
            };
            actions.push(Action::Vote {
                message: m.id,
                choices,
            });
        }
    }
    ui.horizontal(|ui| {
        let count = total.to_string();
        let said = match (&p.closed, p.multi) {
            (Some((by, _)), _) => tr_with(
                lang,
                "Closed by {member} · {count} voted",
                &[("member", s.person(by)), ("count", &count)],
            ),
            (None, false) => tr_with(lang, "{count} voted · one choice", &[("count", &count)]),
            (None, true) => tr_with(
                lang,
                "{count} voted · several choices",
                &[("count", &count)],
            ),
        };
        ui.label(RichText::new(text::for_egui(&said)).small().weak());
        let may_close = m.sender == s.me || s.admin;
        if open && may_close && ui.small_button(tr(lang, "Close poll")).clicked() {
            actions.push(Action::ClosePoll(m.id));
        }
    });
}

/// One option of a poll: a bar as wide as its share of the voters behind its text and count,
/// outlined where it is this member's choice; clickable while the poll is open. Its
/// accessible name is "TEXT  COUNT" and its state selected or not, as a selectable label's.
fn poll_option(
    ui: &mut egui::Ui,
    text_: &str,
    count: usize,
    total: usize,
    on: bool,
    open: bool,
) -> egui::Response {
    let width = ui.available_width().min(360.0);
    let height = ui.spacing().interact_size.y + 2.0;
    let sense = if open {
        egui::Sense::click()
    } else {
        egui::Sense::hover()
    };
    let (rect, r) = ui.allocate_exact_size(egui::vec2(width, height), sense);
    let v = ui.visuals();
    let painter = ui.painter();
    painter.rect_filled(rect, 4.0, v.faint_bg_color);
    if count > 0 {
        let mut bar = rect;
        bar.set_width(rect.width() * count as f32 / total.max(1) as f32);
        painter.rect_filled(bar, 4.0, v.selection.bg_fill.gamma_multiply(0.6));
    }
    let stroke = match (on, r.hovered() && open) {
        (true, _) => egui::Stroke::new(2.0, v.selection.stroke.color),
        (false, true) => v.widgets.hovered.bg_stroke,
        (false, false) => egui::Stroke::NONE,
    };
    painter.rect_stroke(rect, 4.0, stroke, egui::StrokeKind::Inside);
    let font = egui::TextStyle::Body.resolve(ui.style());
    let color = v.text_color();
    let shown = match on {
        true => format!("{}  ✓", text::for_egui(text_)),
        false => text::for_egui(text_).into_owned(),
    };
    let rtl = text::is_rtl_paragraph(text_);
    let (start, end) = match rtl {
        true => (egui::Align2::RIGHT_CENTER, egui::Align2::LEFT_CENTER),
        false => (egui::Align2::LEFT_CENTER, egui::Align2::RIGHT_CENTER),
    };
    let inner = rect.shrink2(egui::vec2(8.0, 0.0));
    let at = |a: egui::Align2| a.pos_in_rect(&inner);
    painter.text(at(start), start, shown, font.clone(), color);
    painter.text(at(end), end, count.to_string(), font, color);
    let label = format!("{}  {count}", text::for_egui(text_));
    r.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, open, on, &label));
    r
}

/// "Forward to", and where: each conversation this member may post in.
fn forward_menu(
    ui: &mut egui::Ui,
    message: MessageId,
    forward_to: &[(String, String)],
    lang: Lang,
    actions: &mut Vec<Action>,
) {
    if forward_to.is_empty() {
        return;
    }
    ui.menu_button(tf(lang, "Forward to", &[]), |ui| {
        egui::ScrollArea::vertical()
            .max_height(320.0)
            .show(ui, |ui| {
                for (to, label) in forward_to {
                    if ui.button(label.as_str()).clicked() {
                        actions.push(Action::Forward {
                            message,
                            to: to.clone(),
                        });
                        ui.close();
                    }
                }
            });
    });
}

/// A shared file in a message: its name and size, and what can be done with it now (a
/// downloaded one can be forwarded: the node encrypts its bytes again for the readers of
/// where it goes). `forward_to`: none where this member may not act on it.
fn file_card(
    ui: &mut egui::Ui,
    message: MessageId,
    f: &FileView,
    files: &mut Files<'_>,
    forward_to: &[(String, String)],
) {
    let st = files.status.get(&f.blob);
    if super::preview::previewed(f) {
        picture(ui, message, f, st.is_some_and(|st| st.complete), files);
    }
    ui.horizontal(|ui| {
        ui.label(
            RichText::new(format!(
                "{} · {}",
                text::for_egui(&f.name),
                majlis_core::files::human_size(f.size)
            ))
            .strong(),
        );
        let lang = files.lang;
        let name = [("file", f.name.as_str())];
        match st {
            Some(st) if st.complete => {
                let save = tr_with(lang, "Save {file}", &name);
                let b = ui.button(tf(lang, "Save", &[]));
                name_widget(&b, egui::Role::Button, &save);
                if b.clicked() {
                    files.actions.push(Action::SaveFile {
                        message,
                        name: f.name.clone(),
                    });
                }
                forward_menu(ui, message, forward_to, lang, files.actions);
            }
            Some(st) if st.wanted => {
                let frac = st.have as f32 / st.chunks.max(1) as f32;
                ui.add(egui::ProgressBar::new(frac).desired_width(160.0).text(tf(
                    lang,
                    "{percent}% · {sources} source(s)",
                    &[
                        ("percent", &format!("{:.0}", frac * 100.0)),
                        ("sources", &st.sources.to_string()),
                    ],
                )));
            }
            _ => {
                let label = tr_with(lang, "Download {file}", &name);
                let b = ui.button(tf(lang, "Download", &[]));
                name_widget(&b, egui::Role::Button, &label);
                if b.clicked() {
                    files.actions.push(Action::FetchFile(f.blob));
                }
            }
        }
    });
}

/// A shared picture in its box (of a fixed height, whatever it holds), once downloaded;
/// asked for the first time it is drawn.
fn picture(
    ui: &mut egui::Ui,
    message: MessageId,
    f: &FileView,
    complete: bool,
    files: &mut Files<'_>,
) {
    use super::preview::{fitted, Thumb, HEIGHT, WIDTH};
    let room = ui.available_width();
    let (rect, r) =
        ui.allocate_exact_size(egui::vec2(room.min(WIDTH), HEIGHT), egui::Sense::hover());
    match files.thumbs.get(&f.blob) {
        Some(Thumb::Ready(shown)) => {
            let tex = shown.now(ui.ctx());
            let size = fitted(tex.size_vec2(), room);
            let at = match ui.layout().horizontal_align() {
                Align::RIGHT => rect.right_top() - egui::vec2(size.x, 0.0),
                _ => rect.left_top(),
            };
            let drawn = egui::Rect::from_min_size(at, size);
            egui::Image::new(tex).paint_at(ui, drawn);
            let label = tr_with(files.lang, "Picture {file}", &[("file", f.name.as_str())]);
            // Named where it is drawn, which a click (or a screen reader) finds; a click
            // opens it as large as the window allows.
            let shown = ui.interact(drawn, r.id.with("picture"), egui::Sense::click());
            shown.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
            if shown.hovered() {
                ui.ctx().set_cursor_icon(egui::CursorIcon::ZoomIn);
            }
            if shown.clicked() {
                files.actions.push(Action::ViewPicture {
                    message,
                    name: f.name.clone(),
                });
            }
        }
        Some(Thumb::Failed) => {
            let (pos, align) = match ui.layout().horizontal_align() {
                Align::RIGHT => (rect.right_center(), egui::Align2::RIGHT_CENTER),
                _ => (rect.left_center(), egui::Align2::LEFT_CENTER),
            };
            let said = tf(files.lang, "No preview", &[]);
            ui.painter().text(
                pos,
                align,
                text::for_egui(&said),
                egui::TextStyle::Small.resolve(ui.style()),
                ui.visuals().weak_text_color(),
            );
            r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &said));
        }
        None if complete => files.actions.push(Action::Preview {
            message,
            blob: f.blob,
        }),
        // Being read, or not downloaded yet: where it will be.
        Some(Thumb::Loading) | None => {
            ui.painter()
                .rect_filled(rect, 4.0, ui.visuals().faint_bg_color);
        }
    }
}

/// A picture opened from its preview, over the conversation, as large as the window allows
/// (never larger than it is), with its name, Save and Close. Returns whether it stays open
/// (Close, Escape or a click beside it close it).
fn picture_viewer(
    ui: &mut egui::Ui,
    v: &super::preview::Viewer,
    lang: Lang,
    actions: &mut Vec<Action>,
) -> bool {
    use super::preview::Thumb;
    let mut open = true;
    let room = ui.ctx().content_rect().size() * egui::vec2(0.9, 0.8);
    let modal = egui::Modal::new(egui::Id::unique("majlis-picture")).show(ui.ctx(), |ui| {
        match &v.shown {
            Thumb::Ready(shown) => {
                let tex = shown.now(ui.ctx());
                let size = super::preview::fit(tex.size_vec2(), room);
                let r = ui.add(egui::Image::new(tex).fit_to_exact_size(size));
                let label = tr_with(
                    lang,
                    "Picture {file}, enlarged",
                    &[("file", v.name.as_str())],
                );
                r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
            }
            Thumb::Loading => {
                ui.spinner();
            }
            Thumb::Failed => {
                ui.label(RichText::new(tf(lang, "No preview", &[])).weak());
            }
        }
        ui.horizontal(|ui| {
            ui.label(text::for_egui(&v.name));
            let save = ui.button(tf(lang, "Save", &[]));
            name_widget(
                &save,
                egui::Role::Button,
                &tr_with(lang, "Save {file}", &[("file", v.name.as_str())]),
            );
            if save.clicked() {
                actions.push(Action::SaveFile {
                    message: v.message,
                    name: v.name.clone(),
                });
            }
            if ui.button(tf(lang, "Close", &[])).clicked() {
                open = false;
            }
        });
    });
    open && !modal.should_close()
}

/// The author's initials in a circle of a colour of their own (the same on every device:
/// it is derived from the name).
pub(super) fn avatar(ui: &egui::Ui, center: egui::Pos2, name: &str) {
    const PALETTE: [Color32; 8] = [
        Color32::from_rgb(0x3b, 0x82, 0xc4),
        Color32::from_rgb(0x2e, 0x9e, 0x6a),
        Color32::from_rgb(0xc2, 0x6a, 0x2b),
        Color32::from_rgb(0x8e, 0x5c, 0xc2),
        Color32::from_rgb(0xc2, 0x4a, 0x6e),
        Color32::from_rgb(0x1f, 0x9a, 0xa8),
        Color32::from_rgb(0x9a, 0x8a, 0x1f),
        Color32::from_rgb(0x5a, 0x6b, 0x7d),
    ];
    let hash = name
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    let p = ui.painter();
    p.circle_filled(center, AVATAR / 2.0, PALETTE[hash as usize % PALETTE.len()]);
    p.text(
        center,
        egui::Align2::CENTER_CENTER,
        text::for_egui(&initials(name)),
        egui::FontId::proportional(AVATAR * 0.42),
        Color32::WHITE,
    );
}

/// Up to two initials: of the first two words, upper case where the script has it.
pub(super) fn initials(name: &str) -> String {
    name.split_whitespace()
        .take(2)
        .filter_map(|w| w.chars().next())
        .flat_map(char::to_uppercase)
        .collect()
}

/// The members who may read `channel`: name, role, devices (from the newest roster).
pub(super) fn readers_of(
    node: &Node,
    channel: &str,
) -> Vec<(String, majlis_core::Role, Vec<DeviceId>)> {
    node.roster_now()
        .map(|r| {
            r.roster
                .readers(channel)
                .map(|m| (m.name.clone(), m.role, m.devices.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// A pasted image as PNG bytes (egui keeps premultiplied colour; PNG wants it straight).
fn png_of(img: &egui::ColorImage) -> Result<Vec<u8>, String> {
    let [w, h] = img.size;
    let rgba: Vec<u8> = img
        .pixels
        .iter()
        .flat_map(|p| p.to_srgba_unmultiplied())
        .collect();
    let buf = image::RgbaImage::from_raw(w as u32, h as u32, rgba)
        .ok_or_else(|| "the image's size does not match its pixels".to_string())?;
    let mut out = std::io::Cursor::new(Vec::new());
    buf.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

/// How text fields lay out what is typed: right-to-left text shaped and ordered for display
/// (see [`text::for_egui`]), right-aligned when its paragraph is, with the glyphs back in
/// logical order so the cursor moves in reading order and stands where the next letter
/// appears ([`text::logical_galley`]).
fn rtl_layouter(ui: &egui::Ui, buf: &dyn egui::TextBuffer, wrap: f32) -> Arc<egui::Galley> {
    let shown = text::for_egui(buf.as_str()).into_owned();
    let mut job = egui::text::LayoutJob::simple(
        shown,
        egui::TextStyle::Body.resolve(ui.style()),
        ui.visuals().text_color(),
        wrap,
    );
    if text::is_rtl_paragraph(buf.as_str()) {
        job.halign = Align::RIGHT;
    }
    text::logical_galley(ui.fonts_mut(|f| f.layout_job(job)), buf.as_str())
}

/// egui finds a click's character by scanning glyphs left to right; in right-to-left text
/// (glyphs in logical order) the field's cursor is placed here instead.
fn fix_click(ctx: &egui::Context, id: egui::Id, out: &egui::text_edit::TextEditOutput, text: &str) {
    if out.response.clicked() && text::has_rtl(text) {
        if let Some(p) = out.response.interact_pointer_pos() {
            place_cursor(ctx, id, &out.galley, p - out.galley_pos.to_vec2());
        }
    }
}

/// Put a text field's cursor at the character boundary nearest to `p` (galley coordinates).
fn place_cursor(ctx: &egui::Context, id: egui::Id, galley: &egui::Galley, p: egui::Pos2) {
    let mut before = 0;
    let row = galley
        .rows
        .iter()
        .position(|r| p.y <= r.max_y())
        .unwrap_or(galley.rows.len().saturating_sub(1));
    for r in &galley.rows[..row] {
        before += r.char_count_including_newline().0;
    }
    let Some(r) = galley.rows.get(row) else {
        return;
    };
    let at = before + text::boundary_at(&r.row, p.x - r.pos.x);
    let mut st = egui::TextEdit::load_state(ctx, id).unwrap_or_default();
    st.cursor.set_char_range(Some(egui::text::CCursorRange::one(
        egui::text::CCursor::new(at),
    )));
    st.store(ctx, id);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The format of the first section of `g` whose text holds `part`.
    fn drawn_as(g: &egui::Galley, part: &str) -> egui::TextFormat {
        g.job
            .sections
            .iter()
            .find(|s| g.job.text[s.byte_range.start.0..s.byte_range.end.0].contains(part))
            .map(|s| s.format.clone())
            .unwrap_or_else(|| panic!("no section '{part}' in {:?}", g.job.sections))
    }

    /// Every emoji the picker offers is drawn by the fonts the app installs (with an emoji
    /// font on the system, as `.ci/run` installs one), not as a box.
    #[test]
    fn the_offered_emoji_have_glyphs() {
        let ctx = egui::Context::default();
        crate::fonts::install(&ctx);
        let mut out = ctx.run_ui(egui::RawInput::default(), |_| {});
        out.textures_delta.clear();
        let font = egui::FontId::proportional(18.0);
        let missing: Vec<&str> = EMOJI
            .into_iter()
            .chain(QUICK)
            .filter(|e| !ctx.fonts_mut(|f| f.has_glyphs(&font, e)))
            .collect();
        assert!(missing.is_empty(), "drawn as boxes: {missing:?}");
        assert!(EMOJI
            .iter()
            .all(|e| majlis_core::conversation::valid_emoji(e)));
    }

    /// What was written as code is laid out in the fixed-width font, the rest (a link
    /// beside it included) in the body font, in a right-to-left paragraph too.
    #[test]
    fn code_is_drawn_fixed_width() {
        let ctx = egui::Context::default();
        let mut families = Vec::new();
        let mut out = ctx.run_ui(egui::RawInput::default(), |ui| {
            for text in [
                "run `majlisd doctor` then see https://wiki.acme/doctor",
                "شغّل `majlisd doctor` الآن",
            ] {
                let g = Conversation::body_galley(ui, text, 400.0, Color32::WHITE);
                families.push(
                    g.job
                        .sections
                        .iter()
                        .map(|s| {
                            let (a, b) = (s.byte_range.start.0, s.byte_range.end.0);
                            let part = &g.job.text[a..b];
                            (part.to_string(), s.format.font_id.family.clone())
                        })
                        .collect::<Vec<_>>(),
                );
            }
        });
        out.textures_delta.clear();
        let mono = |parts: &[(String, egui::FontFamily)]| -> Vec<String> {
            parts
                .iter()
                .filter(|(_, f)| *f == egui::FontFamily::Monospace)
                .map(|(t, _)| t.clone())
                .collect()
        };
        assert_eq!(mono(&families[0]), ["`majlisd doctor`"]);
        assert!(families[0]
            .iter()
            .any(|(t, f)| t == "https://wiki.acme/doctor" && *f == egui::FontFamily::Proportional));
        assert_eq!(mono(&families[1]), ["`majlisd doctor`"]);
    }

    proptest::proptest! {
        /// Whatever a peer sends (markers, backticks, brackets, Markdown links, quotes,
        /// Arabic, newlines in any mix), laying its message out never panics, and what is drawn is what was
        /// sent less some of its marker characters.
        #[test]
        fn any_message_lays_out(text in "(\\[?[*_~`>\\- \n\\[\\]()a-cب-ث:/.]{0,12}(\\]\\(https?://)?){0,4}") {
            let ctx = egui::Context::default();
            let mut drawn = String::new();
            let mut out = ctx.run_ui(egui::RawInput::default(), |ui| {
                drawn = Conversation::body_galley(ui, &text, 300.0, Color32::GRAY).job.text.clone();
            });
            out.textures_delta.clear();
            // (Right-to-left text is wrapped here, which drops spaces at the ends of lines, and
            // mirrored: `>` may be drawn as `<`.)
            let rtl = text::has_rtl(&text);
            let counted = |c: &char, skip: &str| !(skip.contains(*c) || rtl && c.is_whitespace());
            let sent = text.chars().filter(|c| counted(c, "*_~>-")).count();
            let kept = drawn.chars().filter(|c| counted(c, "*_~<>-▍|•")).count();
            // (A Markdown link draws its label alone.)
            let md = text.contains("](");
            proptest::prop_assert!(md || kept == sent, "{text:?} → {drawn:?}");
            let _ = text::without_markers(&text);
        }
    }

    /// A Markdown link is drawn as its label, which opens its address; a bare address
    /// beside it opens itself.
    #[test]
    fn a_markdown_link_is_drawn_as_its_label() {
        let ctx = egui::Context::default();
        let text = "Build #42 *failed*: [logs](http://ci.local/42) and https://git.local/p/7";
        let mut layout = None;
        let mut out = ctx.run_ui(egui::RawInput::default(), |ui| {
            layout = Some(Conversation::body_layout(ui, text, 600.0, Color32::GRAY));
        });
        out.textures_delta.clear();
        let (g, links) = layout.unwrap();
        assert_eq!(
            g.job.text,
            "Build #42 failed: logs and https://git.local/p/7"
        );
        let links: Vec<(&str, &str)> = links
            .iter()
            .map(|(r, u)| (&g.job.text[r.clone()], u.as_str()))
            .collect();
        assert_eq!(
            links,
            [
                ("logs", "http://ci.local/42"),
                ("https://git.local/p/7", "https://git.local/p/7")
            ]
        );
    }

    /// In a right-to-left paragraph too, emphasis is drawn without its markers and a
    /// Markdown link as its label, each word where it stands on screen with its own style.
    #[test]
    fn emphasis_in_right_to_left_text_is_drawn_without_its_markers() {
        let ctx = egui::Context::default();
        crate::fonts::install(&ctx);
        // "This is *important* for _today_, see [the log](…)"
        let text = "هذا *مهم* _اليوم_، انظر [السجل](http://ci.local/42)";
        let mut layout = None;
        let mut out = ctx.run_ui(egui::RawInput::default(), |ui| {
            layout = Some(Conversation::body_layout(ui, text, 600.0, Color32::GRAY));
        });
        out.textures_delta.clear();
        let (g, links) = layout.unwrap();
        // On screen, left to right, as the whole sentence would be without its markers.
        let mut glyphs: Vec<&egui::epaint::text::Glyph> = g
            .rows
            .iter()
            .flat_map(|r| &r.glyphs)
            .filter(|gl| gl.advance_width > 0.0)
            .collect();
        glyphs.sort_by(|a, b| a.pos.x.total_cmp(&b.pos.x));
        let screen: String = glyphs.iter().map(|gl| gl.chr).collect();
        assert_eq!(screen, text::visual("هذا مهم اليوم، انظر السجل"));
        assert_eq!(g.job.halign, Align::RIGHT);
        let word = |w: &str| drawn_as(&g, &text::for_egui(w));
        assert_eq!(word("مهم").font_id.family, crate::fonts::bold());
        assert!(word("اليوم").italics);
        assert!(
            !word("هذا").italics && word("هذا").font_id.family == egui::FontFamily::Proportional
        );
        let links: Vec<(&str, &str)> = links
            .iter()
            .map(|(r, u)| (&g.job.text[r.clone()], u.as_str()))
            .collect();
        assert_eq!(links, [(&*text::for_egui("السجل"), "http://ci.local/42")]);
        assert!(word("السجل").underline.width > 0.0);
    }

    /// A quoted line is drawn behind a bar and dimmed, a list item behind a bullet.
    #[test]
    fn quotes_and_items_are_drawn_behind_a_bar_and_a_bullet() {
        let ctx = egui::Context::default();
        crate::fonts::install(&ctx);
        let text = "> can we ship *today*?\nyes:\n- the crates\n- the forms";
        let mut galley = None;
        let mut out = ctx.run_ui(egui::RawInput::default(), |ui| {
            galley = Some(Conversation::body_galley(ui, text, 600.0, Color32::GRAY));
        });
        out.textures_delta.clear();
        let g = galley.unwrap();
        let bar = if g.job.text.starts_with('▍') {
            "▍"
        } else {
            "|"
        };
        assert_eq!(
            g.job.text,
            format!("{bar} can we ship today?\nyes:\n• the crates\n• the forms")
        );
        let color = |part: &str| drawn_as(&g, part).color;
        assert_ne!(color("can we ship "), Color32::GRAY, "the quote is dimmed");
        assert_eq!(color("yes:"), Color32::GRAY);
        assert_eq!(color("the crates"), Color32::GRAY);
    }

    /// `*bold*`, `_italic_` and `~struck~` are drawn so, without their markers; code, links
    /// and words with underscores are drawn as written.
    #[test]
    fn emphasis_is_drawn_without_its_markers() {
        let ctx = egui::Context::default();
        crate::fonts::install(&ctx);
        let text = "*Urgent*: the _new_ price is ~10~ 12, see https://x.test/a_b_c, `a*b*` and snake_case_name";
        let mut galley = None;
        let mut out = ctx.run_ui(egui::RawInput::default(), |ui| {
            galley = Some(Conversation::body_galley(ui, text, 600.0, Color32::GRAY));
        });
        out.textures_delta.clear();
        let g = galley.unwrap();
        assert_eq!(
            g.job.text,
            "Urgent: the new price is 10 12, see https://x.test/a_b_c, `a*b*` and snake_case_name"
        );
        let format = |part: &str| drawn_as(&g, part);
        assert_eq!(format("Urgent").font_id.family, crate::fonts::bold());
        assert!(format("new").italics);
        assert!(format("10").strikethrough.width > 0.0);
        let plain = format(" price is ");
        assert!(!plain.italics && plain.font_id.family == egui::FontFamily::Proportional);
        assert_eq!(format("`a*b*`").font_id.family, egui::FontFamily::Monospace);
        assert!(format("https://x.test/a_b_c").underline.width > 0.0);
    }
}
