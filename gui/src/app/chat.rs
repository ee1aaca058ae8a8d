//! The chat view: one conversation, paged in from the node, drawn row by row.

use super::*;

impl MajlisApp {
    pub(super) fn draw_chat(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        let Some(channel) = self.state.selected.clone() else {
            return;
        };
        if run.conv.as_ref().is_none_or(|c| c.channel != channel) {
            run.conv = Some(Conversation::open(&run.node, &channel));
        }
        // Opening a channel reads it.
        run.unread.insert(channel.clone(), 0);
        if let Some(last) = run.conv.as_ref().and_then(|c| c.rows.last()) {
            let lr = self.state.last_read.entry(channel.clone()).or_default();
            *lr = (*lr).max(last.sent_at);
        }
        let rtl_ui = self.state.lang.rtl();
        let title = self.channel_label(run, &channel);
        let hint = format!("{} {}", self.t("Message"), title);
        let send_label = self.t("Send");
        let strings = RowStrings {
            you: self.t("You"),
            sending: self.t("sending…"),
            sent: self.t("sent"),
            today: self.t("Today"),
            yesterday: self.t("Yesterday"),
            empty: self.t("No messages yet."),
            locked: self.t(majlis_core::store::LOCKED_TEXT),
        };
        // Composer at the bottom.
        let draft = self.state.drafts.entry(channel.clone()).or_default();
        let mut send = false;
        // A fixed height: a centred row would otherwise take all the height the panel had last
        // frame, and the panel would grow a little every frame.
        egui::Panel::bottom("composer")
            .exact_size(64.0)
            .show(ui, |ui| {
                ui.add_space(4.0);
                let id = ui.make_persistent_id(("composer", &channel));
                let focused = ui.memory(|m| m.has_focus(id));
                // Enter sends; Shift+Enter is left to the editor (a new line).
                if focused
                    && ui.input_mut(|i| {
                        !i.modifiers.shift && i.consume_key(egui::Modifiers::NONE, egui::Key::Enter)
                    })
                {
                    send = true;
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
                    let mut layouter = |ui: &egui::Ui, buf: &dyn egui::TextBuffer, wrap: f32| {
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
                        ui.fonts_mut(|f| f.layout_job(job))
                    };
                    let te = egui::TextEdit::multiline(draft)
                        .id(id)
                        .hint_text(hint.as_str())
                        .desired_rows(2)
                        .desired_width(f32::INFINITY)
                        .layouter(&mut layouter);
                    let resp = ui.add(te);
                    resp.widget_info(|| {
                        egui::WidgetInfo::labeled(egui::Role::TextInput, true, "Message")
                    });
                    if send {
                        resp.request_focus();
                    }
                });
                ui.add_space(4.0);
            });
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
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading(title);
            ui.separator();
            if let Some(conv) = &mut run.conv {
                conv.show(ui, &run.node, me, &pending, &strings);
            }
        });
    }
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
}

impl Conversation {
    pub(super) fn open(node: &Node, channel: &str) -> Conversation {
        let rows = node.history_before(channel, None, PAGE).unwrap_or_default();
        Conversation {
            channel: channel.to_string(),
            ids: rows.iter().map(|m| m.id).collect(),
            heights: vec![None; rows.len()],
            has_older: rows.len() == PAGE,
            rows,
            width: 0.0,
            scroll_fix: None,
        }
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

    pub(super) fn body_lines(ui: &egui::Ui, text_: &str, width: f32) -> Vec<String> {
        let font = egui::TextStyle::Body.resolve(ui.style());
        if text::has_rtl(text_) {
            ui.fonts_mut(|f| {
                text::wrap_visual(text_, width, |s| {
                    f.layout_no_wrap(s.to_string(), font.clone(), Color32::WHITE)
                        .size()
                        .x
                })
            })
        } else {
            vec![text_.to_string()]
        }
    }

    pub(super) fn body_galley(
        ui: &egui::Ui,
        m: &str,
        width: f32,
        color: Color32,
    ) -> Arc<egui::Galley> {
        let font = egui::TextStyle::Body.resolve(ui.style());
        let lines = Self::body_lines(ui, m, width).join("\n");
        let mut job = egui::text::LayoutJob::simple(lines, font, color, width);
        if text::is_rtl_paragraph(m) {
            job.halign = Align::RIGHT;
        }
        ui.fonts_mut(|f| f.layout_job(job))
    }

    pub(super) fn row_height(&self, ui: &egui::Ui, i: usize, width: f32) -> f32 {
        let head = ui.text_style_height(&egui::TextStyle::Small) + 2.0;
        let day = if self.day_break(i) { head + 10.0 } else { 0.0 };
        let body = Self::body_galley(ui, &self.rows[i].text, width, Color32::WHITE)
            .size()
            .y;
        day + head + body + 12.0
    }

    pub(super) fn show(
        &mut self,
        ui: &mut egui::Ui,
        node: &Node,
        me: DeviceId,
        pending: &[&PendingSend],
        s: &RowStrings,
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
        let mut area = egui::ScrollArea::vertical()
            .stick_to_bottom(true)
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
                    self.draw_row(ui, i, rect, me, s);
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
                    ui.label(text::for_egui(&p.text).into_owned());
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
    ) {
        let m = &self.rows[i];
        let mine = m.device == me;
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
            let rtl = text::is_rtl_paragraph(&m.text);
            let frame = egui::Frame::new()
                .inner_margin(egui::Margin::symmetric(6, 3))
                .corner_radius(6.0)
                .fill(if mine {
                    ui.visuals().selection.bg_fill.gamma_multiply(0.35)
                } else {
                    Color32::TRANSPARENT
                });
            frame.show(ui, |ui| {
                ui.set_width(rect.width() - 12.0);
                let layout = if rtl {
                    Layout::top_down(Align::Max)
                } else {
                    Layout::top_down(Align::Min)
                };
                ui.with_layout(layout, |ui| {
                    let who = if mine {
                        s.you.clone()
                    } else {
                        text::for_egui(&m.sender).into_owned()
                    };
                    let status = if mine {
                        format!(" · ✓ {}", s.sent)
                    } else {
                        String::new()
                    };
                    ui.label(
                        RichText::new(format!("{who} · {}{status}", format_time(m.sent_at, false)))
                            .small()
                            .weak(),
                    );
                    let (body, color) = if m.locked {
                        (&s.locked, ui.visuals().weak_text_color())
                    } else {
                        (&m.text, ui.visuals().text_color())
                    };
                    let g = Self::body_galley(ui, body, rect.width() - 12.0, color);
                    ui.add(egui::Label::new(g));
                });
            });
        });
    }
}
