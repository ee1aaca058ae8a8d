//! The search box (Ctrl+K or Ctrl+F, or the Search button), which is also the quick
//! switcher: channels and members whose names match come first (open the channel, or the
//! direct messages with that member), then what the node's index finds, newest first, each
//! with its snippet; a result opens its conversation at that message, with the messages
//! around it, and marks it for a moment. The sidebar's Threads opens it on the threads
//! this member takes part in, the latest reply first; one opens its conversation and the
//! thread beside it.

use super::*;
use majlis_core::conversation::ThreadSummary;
use majlis_core::search::Hit;

#[derive(Default)]
pub(super) struct SearchBox {
    pub query: String,
    /// The query whose results are shown (or asked for).
    pub asked: String,
    pub hits: Vec<Hit>,
    pub error: Option<String>,
    /// Give the field focus on the next frame.
    pub focus: bool,
    /// Channels and members whose names match: the quick switcher (label, channel key).
    pub goto: Vec<(String, String)>,
    /// The Threads view: the threads this member takes part in, listed while nothing is
    /// typed (`None`: not that view; typing leaves it).
    pub threads: Option<Vec<ThreadSummary>>,
    /// A Threads listing is on its way, and (`threads_again`) replies arrived since it was
    /// asked for: in a busy org they ask once more when it comes, not once each.
    pub threads_asking: bool,
    pub threads_again: bool,
}

impl SearchBox {
    /// A reply arrived: whether to ask for the Threads listing now (the view is open and no
    /// listing is on its way; else it is asked for again when that one comes).
    pub fn threads_stale(&mut self) -> bool {
        if self.threads.is_none() {
            return false;
        }
        self.threads_again |= self.threads_asking;
        !self.threads_asking
    }
}

/// Jump targets shown above the search results.
const GOTO_MAX: usize = 8;

/// Channels `me` may read and members it may message whose names contain `query`
/// (case-insensitive), channels first: what the quick switcher offers. Runs when the query
/// changes, not per frame.
pub(super) fn goto_targets(r: &VerifiedRoster, me: DeviceId, query: &str) -> Vec<(String, String)> {
    let q = query.trim().trim_start_matches(['#', '@']).to_lowercase();
    let Some(me) = r.member_of_device(&me) else {
        return Vec::new();
    };
    if q.is_empty() || q.contains(':') {
        return Vec::new();
    }
    // By the name it is shown under (an admin may have renamed it), or its first name.
    let channels = r
        .roster
        .readable(me)
        .filter(|c| {
            let shown = r.roster.shown(&c.name);
            shown.to_lowercase().contains(&q) || c.name.to_lowercase().contains(&q)
        })
        .map(|c| (format!("# {}", r.roster.shown(&c.name)), c.name.clone()));
    let members = r
        .roster
        .dm_partners(me)
        .filter(|m| {
            m.name.to_lowercase().contains(&q)
                || r.roster
                    .full_name(&m.name)
                    .is_some_and(|f| f.to_lowercase().contains(&q))
        })
        .map(|m| {
            let label = match r.roster.full_name(&m.name) {
                Some(full) => format!("@ {full} ({})", m.name),
                None => format!("@ {}", m.name),
            };
            (label, dm_channel(&me.name, &m.name))
        });
    channels.chain(members).take(GOTO_MAX).collect()
}

/// How long an opened result stays marked in its conversation.
pub(super) const MARK_FOR: Duration = Duration::from_secs(5);

impl MajlisApp {
    /// Open the box on Ctrl+K / Ctrl+F (Cmd on macOS); Escape closes it.
    pub(super) fn search_keys(&mut self, ui: &egui::Ui, run: &mut Running) {
        let open = ui.ctx().input_mut(|i| {
            i.consume_shortcut(&egui::KeyboardShortcut::new(
                egui::Modifiers::COMMAND,
                egui::Key::K,
            )) || i.consume_shortcut(&egui::KeyboardShortcut::new(
                egui::Modifiers::COMMAND,
                egui::Key::F,
            ))
        });
        if open {
            run.view = View::Chat;
            run.search.get_or_insert_with(SearchBox::default).focus = true;
        }
        if run.search.is_some() && ui.ctx().input(|i| i.key_pressed(egui::Key::Escape)) {
            run.search = None;
        }
        // Alt+↓ / Alt+↑: the next or the previous conversation of the sidebar, as in other
        // chat apps, from anywhere (the composer keeps its draft).
        let step = ui.ctx().input_mut(|i| {
            if i.consume_key(egui::Modifiers::ALT, egui::Key::ArrowDown) {
                Some(1)
            } else if i.consume_key(egui::Modifiers::ALT, egui::Key::ArrowUp) {
                Some(-1)
            } else {
                None
            }
        });
        if let Some(step) = step.filter(|_| !run.sidebar.is_empty()) {
            // In the sidebar's order: starred first.
            let starred = |k: &&String| self.state.starred.contains(k.as_str());
            let order: Vec<&String> = (run.sidebar.iter().filter(starred))
                .chain(run.sidebar.iter().filter(|k| !starred(k)))
                .collect();
            let n = order.len() as isize;
            let at = self
                .state
                .selected
                .as_ref()
                .and_then(|c| order.iter().position(|s| *s == c))
                .map_or(0, |i| (i as isize + step).rem_euclid(n));
            self.state.selected = Some(order[at as usize].clone());
            run.conv = None;
            run.thread = None;
            run.view = View::Chat;
        }
    }

    pub(super) fn draw_search(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        let (hint, none) = (
            self.t("words, \"a phrase\", from:name in:#channel has:file after:2026-01-31"),
            self.t("No messages found."),
        );
        let (no_threads, reply_word, replies_word, deleted, new_word) = (
            self.t("No threads yet: reply to a message to start one."),
            self.t("reply"),
            self.t("replies"),
            self.t(majlis_core::conversation::DELETED_TEXT),
            self.t("New"),
        );
        let seen = &self.state.threads_seen;
        let rtl = self.state.lang.rtl();
        let lang = self.state.lang;
        let roster = run.roster.clone();
        let shown = |c: &str| majlis_core::roster::shown_in(roster.as_deref(), c).to_string();
        let person = |m: &str| {
            text::for_egui(majlis_core::roster::person_in(roster.as_deref(), m)).into_owned()
        };
        let me = run.my_name();
        let notes = self.t("Your notes");
        let group = |c: &str| {
            let r = roster.as_deref().map(|r| &r.roster);
            majlis_core::roster::dm_title(r, c, &me).map(|t| text::for_egui(&t).into_owned())
        };
        // A conversation by who else is in it (the other, whoever wrote), or this member's
        // notes as the sidebar names them.
        let place = |c: &str| match dm_members(c).map(|n| n.len()) {
            Some(1) => notes.clone(),
            Some(_) => "@".to_string() + &group(c).unwrap_or_default(),
            None => format!("#{}", shown(c)),
        };
        let Some(sb) = run.search.as_mut() else {
            return;
        };
        let mut open: Option<(String, MessageId)> = None;
        let mut thread: Option<MessageId> = None;
        let mut jump: Option<String> = None;
        let mut close = false;
        let panel = if rtl {
            egui::Panel::left("search")
        } else {
            egui::Panel::right("search")
        };
        panel.default_size(360.0).show(ui, |ui| {
            ui.horizontal(|ui| {
                let r = ui.add(
                    egui::TextEdit::singleline(&mut sb.query)
                        .hint_text(hint.as_str())
                        .desired_width(ui.available_width() - 30.0),
                );
                name_widget(&r, egui::Role::SearchInput, tr(lang, "Search messages"));
                if std::mem::take(&mut sb.focus) {
                    r.request_focus();
                }
                if ui.button("✕").clicked() {
                    close = true;
                }
            });
            ui.separator();
            for (label, key) in &sb.goto {
                let b = ui.add(egui::Button::new(text::for_egui(label).into_owned()).frame(false));
                let go = tr_with(lang, "Go to {place}", &[("place", label)]);
                name_widget(&b, egui::Role::Button, &go);
                if b.clicked() {
                    jump = Some(key.clone());
                }
            }
            if !sb.goto.is_empty() {
                ui.separator();
            }
            if let Some(e) = &sb.error {
                ui.colored_label(ALERT, para(ui, e));
            } else if sb.hits.is_empty() && !sb.asked.trim().is_empty() {
                ui.label(none.as_str());
            }
            if let Some(threads) = &sb.threads {
                if threads.is_empty() {
                    ui.label(no_threads.as_str());
                }
                let first_line = |m: &StoredMessage| match m.deleted {
                    true => deleted.clone(),
                    false => m.text.lines().next().unwrap_or_default().to_string(),
                };
                egui::ScrollArea::vertical().show(ui, |ui| {
                    for t in threads {
                        let (root, last) = (&t.root, &t.last);
                        let place = place(&root.channel);
                        let plain = format!("{}: {}", person(&root.sender), first_line(root));
                        // A colleague's reply after the last one shown in its panel here.
                        let new = last.sender != me
                            && seen
                                .get(&root.id.to_string())
                                .is_none_or(|s| last.sent_at > *s);
                        let head = RichText::new(text::for_egui(&plain).into_owned());
                        let head = if new { head.strong() } else { head };
                        let r = ui.add(egui::Button::new(head).frame(false).wrap());
                        let heard = tr_with(lang, "Thread: {text}", &[("text", &plain)]);
                        name_widget(&r, egui::Role::Button, &heard);
                        let words = if root.replies == 1 {
                            &reply_word
                        } else {
                            &replies_word
                        };
                        let latest = format!(
                            "{}{} · {} {words} · {}: {} · {}",
                            if new {
                                format!("{new_word} · ")
                            } else {
                                String::new()
                            },
                            text::for_egui(&place),
                            root.replies,
                            person(&last.sender),
                            text::for_egui(&first_line(last)),
                            format_time(last.sent_at, true)
                        );
                        ui.label(RichText::new(latest).small().weak());
                        if r.clicked() {
                            open = Some((root.channel.clone(), root.id));
                            thread = Some(root.id);
                        }
                        ui.separator();
                    }
                });
            }
            egui::ScrollArea::vertical().show(ui, |ui| {
                for h in &sb.hits {
                    let m = &h.message;
                    let place = place(&m.channel);
                    let head = format!(
                        "{} · {} · {}",
                        text::for_egui(&place),
                        person(&m.sender),
                        format_time(m.sent_at, true)
                    );
                    let (job, plain) = snippet_job(ui, h);
                    let r = ui
                        .add(egui::Button::new(job).frame(false).wrap())
                        .on_hover_text(head.as_str());
                    name_widget(
                        &r,
                        egui::Role::Button,
                        &tr_with(lang, "Result: {text}", &[("text", &plain)]),
                    );
                    ui.label(RichText::new(head).small().weak());
                    if r.clicked() {
                        open = Some((m.channel.clone(), m.id));
                    }
                    ui.separator();
                }
            });
        });
        if sb.query != sb.asked {
            sb.threads = None;
            sb.asked = sb.query.clone();
            sb.goto = run
                .roster
                .as_ref()
                .map(|r| goto_targets(r, run.me, &sb.query))
                .unwrap_or_default();
            if sb.query.trim().is_empty() {
                sb.hits.clear();
                sb.error = None;
            } else {
                run.actions.push(Action::Search(sb.query.clone()));
            }
        }
        if close {
            run.search = None;
        }
        if let Some(key) = jump {
            run.search = None;
            self.state.selected = Some(key);
            run.view = View::Chat;
            run.conv = None;
            self.refresh_sidebar(run);
        }
        if let Some((channel, id)) = open {
            self.open_at(run, &channel, id);
        }
        if let Some(root) = thread {
            run.actions.push(Action::OpenThread(root));
        }
    }
}

/// The snippet with its matches in bold and the accent colour, drawn as the message is
/// (without emphasis markers, a Markdown link as its label). The markers are read in the
/// whole message where the snippet is cut from it, so a pair the cut splits is still known.
/// Also the text drawn, in logical order (for screen readers).
fn snippet_job(ui: &egui::Ui, h: &Hit) -> (egui::text::LayoutJob, String) {
    let font = egui::TextStyle::Body.resolve(ui.style());
    let normal = egui::TextFormat::simple(font.clone(), ui.visuals().text_color());
    let mut strong = egui::TextFormat::simple(font, ui.visuals().strong_text_color());
    strong.background = ui.visuals().selection.bg_fill.gamma_multiply(0.5);
    let s = &h.snippet;
    let (whole, from) = match h.message.text.find(s.as_str()) {
        Some(at) => (h.message.text.as_str(), at),
        None => (s.as_str(), 0),
    };
    let highlights: Vec<std::ops::Range<usize>> = h
        .highlights
        .iter()
        .filter(|&&(a, b)| a < b && b <= s.len() && s.is_char_boundary(a) && s.is_char_boundary(b))
        .map(|&(a, b)| a..b)
        .collect();
    let mut job = egui::text::LayoutJob::default();
    let mut said = String::new();
    for p in text::pieces(whole) {
        // The piece's part of the snippet, cut where a match begins or ends.
        let (a, b) = (
            p.range.start.max(from) - from,
            p.range.end.min(from + s.len()),
        );
        let Some(b) = b.checked_sub(from).filter(|&b| a < b) else {
            continue;
        };
        let mut cuts: Vec<usize> = highlights
            .iter()
            .flat_map(|r| [r.start, r.end])
            .filter(|&x| a < x && x < b)
            .chain([a, b])
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        for w in cuts.windows(2) {
            let hit = highlights.iter().any(|r| r.start <= w[0] && w[1] <= r.end);
            let format = if hit { &strong } else { &normal };
            job.append(&text::for_egui(&s[w[0]..w[1]]), 0.0, format.clone());
            said.push_str(&s[w[0]..w[1]]);
        }
    }
    if text::is_rtl_paragraph(s) {
        job.halign = Align::RIGHT;
    }
    (job, said)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snippet cut from the middle of a message is drawn without the markers of the pair
    /// it cuts, its match strong, and it says what it draws.
    #[test]
    fn a_snippet_is_drawn_without_markers_even_where_it_cuts_a_pair() {
        let text = "Team, please note: *the delivery is late* today, call the depot first";
        let snippet = "delivery is late* today, call the depot";
        let at = snippet.find("depot").unwrap();
        let hit = Hit {
            id: majlis_core::message::MessageId([1; 32]),
            message: majlis_core::store::StoredMessage {
                text: text.into(),
                ..Default::default()
            },
            snippet: snippet.into(),
            highlights: vec![(at, at + "depot".len())],
        };
        let ctx = egui::Context::default();
        let mut got = None;
        let mut out = ctx.run_ui(egui::RawInput::default(), |ui| {
            got = Some(snippet_job(ui, &hit))
        });
        out.textures_delta.clear();
        let (job, said) = got.unwrap();
        assert_eq!(job.text, "delivery is late today, call the depot");
        assert_eq!(said, job.text);
        let strong: Vec<&str> = job
            .sections
            .iter()
            .filter(|s| s.format.background != egui::Color32::TRANSPARENT)
            .map(|s| &job.text[s.byte_range.start.0..s.byte_range.end.0])
            .collect();
        assert_eq!(strong, ["depot"]);
    }

    /// Replies arriving while a Threads listing is on its way ask for it once more, not once
    /// each; with the view closed they ask for nothing.
    #[test]
    fn replies_in_a_burst_ask_for_the_threads_once_more() {
        let mut sb = SearchBox::default();
        assert!(!sb.threads_stale(), "the view is not open");
        sb.threads = Some(Vec::new());
        assert!(sb.threads_stale(), "open, nothing on its way: ask");
        sb.threads_asking = true;
        assert!(!sb.threads_stale());
        assert!(!sb.threads_stale());
        assert!(sb.threads_again, "asked again when it comes");
    }
}
