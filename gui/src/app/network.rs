//! The network view: connections, addresses, and answers to "why can't I see X?".

use super::*;

impl MajlisApp {
    pub(super) fn draw_network(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        // Facts go stale (a peer's roster version, addresses that come and go): ask again
        // every 2 s while the view is open.
        if run.refreshed.elapsed() >= NETWORK_REFRESH {
            run.actions.push(Action::RefreshNetwork);
        }
        ui.ctx().request_repaint_after(NETWORK_REFRESH);
        let cfg = &self.opts.config;
        ui.heading(self.t("Diagnostics"));
        if run.contested.is_some() {
            ui.colored_label(
                ALERT,
                self.t("The roster is contested: two admins removed each other. This device keeps the version it saw first until the org root key settles it."),
            );
        }
        let version = run.roster.as_ref().map_or(0, |r| r.version());
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.label(self.tf("this device: {device}", &[("device", &run.me.to_string())]));
            ui.label(self.tf(
                "data directory: {dir}",
                &[("dir", &self.opts.data.display().to_string())],
            ));
            let disk = run
                .diagnosis
                .as_ref()
                .and_then(|d| Some((d.disk_free?, d.disk_margin)));
            if let Some((free, margin)) = disk {
                let size = majlis_core::files::human_size;
                ui.label(self.tf(
                    "free on its disk: {size} (Majlis keeps {margin} free)",
                    &[("size", &size(free)), ("margin", &size(margin))],
                ));
            }
            ui.label(if cfg.mdns {
                self.t("mDNS discovery: on (_majlis._tcp.local.)")
            } else {
                self.t("mDNS discovery: off")
            });
            ui.label(self.t("listening on (interfaces and addresses):"));
            // Live: the node's report (refreshed every 2 s while this view is open), or what
            // was known at start.
            let live: Vec<String> = match &run.diagnosis {
                Some(d) => d.listen.clone(),
                None => run.listen.iter().map(|a| a.to_string()).collect(),
            };
            for a in &live {
                ui.monospace(format!("  {a}"));
            }
            ui.label(self.tf(
                "static peers: {count}",
                &[(
                    "count",
                    &(cfg.peers.len() + self.state.peers.len()).to_string(),
                )],
            ));
            for p in &cfg.peers {
                ui.monospace(format!("  {p}"));
            }
            for p in &self.state.peers {
                ui.monospace(format!("  {p}"));
            }
            // Where multicast does not reach (another subnet, a field network), a colleague
            // or the relay is given by address here; it is dialled again at every start.
            let label = self.t("Add a peer by address");
            let connect = self.t("Connect");
            // The row's ids are fixed too: the button's id, counted from the widgets before
            // it, would change with each refresh of the lists above, and a click that
            // arrives as the list grows (an accessibility action names the id) would be lost.
            let row = egui::UiBuilder::new()
                .scope_id(ui.make_persistent_id("add-peer"))
                .layout(egui::Layout::left_to_right(egui::Align::Center));
            ui.scope_builder(row, |ui| {
                let l = ui.label(label.as_str());
                let field = ui
                    .add(
                        // A fixed id: the addresses listed above come and go with each
                        // refresh, and an id counted from the widgets before it would change
                        // with them, taking the focus from someone typing.
                        egui::TextEdit::singleline(&mut run.peer_input)
                            .id(ui.make_persistent_id("peer-address"))
                            .hint_text("10.1.2.3:7441")
                            .desired_width(220.0),
                    )
                    .labelled_by(l.id);
                let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if (ui.button(connect.as_str()).clicked() || entered)
                    && !run.peer_input.trim().is_empty()
                {
                    // Kept until the node takes it: a typo is corrected, not typed again.
                    run.actions
                        .push(Action::AddPeer(run.peer_input.trim().to_string()));
                }
            });
            if let Some(e) = &run.peer_error {
                ui.colored_label(ALERT, para(ui, e));
            }
            ui.label(format!("{}: {version}", self.t("Roster version")));
            ui.separator();
            ui.label(format!(
                "{} ({}):",
                self.t("Connected peers"),
                run.peers.len()
            ));
            // Every roster device and every stranger that showed up, as the node sees it
            // now (the same lines `majlisd doctor` prints).
            match &run.diagnosis {
                Some(d) => {
                    let lang = self.state.lang;
                    for l in d.device_facts(false) {
                        let line = device_line(lang, &l);
                        match lang.rtl() {
                            true => ui.label(para(ui, &rtl_mark(lang, &line))),
                            false => ui.monospace(format!("  {line}")),
                        };
                    }
                }
                None => {
                    for p in &run.peers {
                        ui.monospace(format!(
                            "  {} {} at {} — roster version {}",
                            p.name,
                            short(&p.device.to_string()),
                            p.addr,
                            p.roster_version.map_or("?".into(), |v| v.to_string())
                        ));
                    }
                }
            }
            ui.separator();
            ui.label(RichText::new(self.t("Why can't I see …?")).strong());
            let hints = diagnose(self.state.lang, run, cfg, self.rtl_font.is_some());
            for hint in &hints {
                ui.label(para(ui, &format!("• {hint}")));
            }
            // A text for a ticket: the node's report (ids shortened, no message content)
            // and what the app adds.
            if ui.button(self.t("Copy diagnostics")).clicked() {
                let mut text = run
                    .diagnosis
                    .as_ref()
                    .map(|d| d.shareable())
                    .unwrap_or_default();
                for h in &hints {
                    text.push_str(&format!("app: {h}\n"));
                }
                ui.ctx().copy_text(text);
            }
        });
    }
}

/// One sentence of the node's diagnosis (`doctor`'s English) in `lang`: the template
/// translated, its values filled in, a span of time ("40 s") with its unit translated.
fn say_part(lang: Lang, p: &majlis_core::diagnose::Part) -> String {
    let args: Vec<(&str, String)> = p
        .args
        .iter()
        .map(|(k, v)| match *k {
            // How a device was found: "mDNS and address" (`DeviceState::found_by`).
            "ways" => (*k, ways_in(lang, v)),
            // Spans of time (`diagnose::span`); a name or an address that merely looks like
            // one ("5 s") is not touched.
            "time" | "offset" | "limit" => (*k, span_in(lang, v)),
            // Why a dial failed or a connection was lost (`diagnose::LINK_WORDS`).
            "error" => (*k, link_words_in(lang, v)),
            _ => (*k, v.clone()),
        })
        .collect();
    crate::i18n::fill_shown(lang, tr(lang, p.template), &args)
}

/// `value` with its unit in `lang` if it is a span of time as the node writes them
/// (`diagnose::span`: "40 s", "12 min", "3 h", "9 days"); anything else as it is.
fn span_in(lang: Lang, value: &str) -> String {
    let unit = |n: &str, u: &str| -> Option<String> {
        let en = match u {
            "s" => "{n} s",
            "min" => "{n} min",
            "h" => "{n} h",
            "days" => "{n} days",
            _ => return None,
        };
        Some(tr_with(lang, en, &[("n", n)]))
    };
    value
        .split_once(' ')
        .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|(n, u)| unit(n, u))
        .unwrap_or_else(|| value.to_string())
}

/// `value` with each of the node's words on links (`diagnose::LINK_WORDS`) in `lang`;
/// addresses, ids and the system's own bracketed text stay as they are.
fn link_words_in(lang: Lang, value: &str) -> String {
    majlis_core::diagnose::LINK_WORDS
        .iter()
        .fold(value.to_string(), |v, w| v.replace(w, tr(lang, w)))
}

/// How a device was found ("mDNS and peer exchange", `DeviceState::found_by` joined) in
/// `lang`.
fn ways_in(lang: Lang, ways: &str) -> String {
    let said: Vec<&str> = ways
        .split(" and ")
        .map(|w| match w {
            "address" => tr(lang, "address"),
            "peer exchange" => tr(lang, "peer exchange"),
            other => other,
        })
        .collect();
    said.join(if lang.rtl() { " و" } else { " and " })
}

/// A device's line of the Network view in `lang`: who it is (kept in its own order), then
/// its facts, each translated, joined as `doctor` joins them.
fn device_line(lang: Lang, l: &majlis_core::diagnose::DeviceLine) -> String {
    let facts: Vec<String> = l.facts.iter().map(|p| say_part(lang, p)).collect();
    let facts = facts.join(if lang.rtl() { "؛ " } else { "; " });
    match &l.who {
        Some(w) if lang.rtl() => format!("\u{2068}{w}\u{2069}: {facts}"),
        Some(w) => format!("{w}: {facts}"),
        None => facts,
    }
}

/// The node's problems (not its notes) in `lang`, one line each: what marks the Network tab.
pub(super) fn problems(lang: Lang, run: &Running) -> Vec<String> {
    run.problems.iter().map(|f| say_finding(lang, f)).collect()
}

/// A finding in `lang`: its sentences, each translated.
fn say_finding(lang: Lang, f: &majlis_core::diagnose::Finding) -> String {
    let parts: Vec<String> = f.parts.iter().map(|p| say_part(lang, p)).collect();
    parts.join(" ")
}

/// Answers to "why can't I see X?": the node's findings (the same as `majlisd doctor`), then
/// what only the app knows (in `lang`, the node's findings too).
pub(super) fn diagnose(lang: Lang, run: &Running, cfg: &Config, rtl_font: bool) -> Vec<String> {
    let t = |en| tr(lang, en).to_string();
    let mut out: Vec<String> = run
        .diagnosis
        .as_ref()
        .map(|d| d.findings().iter().map(|f| say_finding(lang, f)).collect())
        .unwrap_or_default();
    if run.peers.is_empty() {
        out.push(if cfg.mdns {
            t("To give a peer by address, enter it above (ADDRESS:PORT).")
        } else {
            t("mDNS is off: give peers by address above (ADDRESS:PORT).")
        });
    }
    if let Some(r) = &run.roster {
        if let Some(me) = r.member_of_device(&run.me) {
            for c in &r.roster.channels {
                if !r.roster.may_read(me, &c.name) {
                    out.push(tr_with(
                        lang,
                        "#{channel} is private and does not list you; ask an admin to add you.",
                        &[("channel", r.roster.shown(&c.name))],
                    ));
                }
            }
            if r.roster.policy.dms == DmPolicy::Off {
                out.push(t(
                    "Direct messages are turned off by the organization's policy.",
                ));
            }
        }
    }
    if !rtl_font {
        // In English whatever the language: without such a font Arabic shows as boxes.
        out.push("No system font with Arabic or Hebrew was found: install one (e.g. fonts-dejavu-core or fonts-noto-core).".into());
    }
    if out.is_empty() {
        out.push(t(
            "Nothing looks wrong: connected, on the roster, up to date.",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_ways_are_said_in_the_language() {
        assert_eq!(span_in(Lang::Ar, "40 s"), "40 ثانية");
        assert_eq!(span_in(Lang::Ar, "12 min"), "12 دقيقة");
        assert_eq!(span_in(Lang::En, "3 h"), "3 h");
        assert_eq!(span_in(Lang::Ar, "4 days"), "4 يوم");
        // Not a span: as it is.
        for v in ["10.0.0.5 s", "bilal", "3", " s", "4 weeks"] {
            assert_eq!(span_in(Lang::Ar, v), v);
        }
        let lost = format!(
            "/ip4/10.0.0.5/tcp/7441: {} [Connection refused (os error 111)]",
            majlis_core::diagnose::LINK_WORDS[0]
        );
        let said = link_words_in(Lang::Ar, &lost);
        assert!(said.starts_with("/ip4/10.0.0.5/tcp/7441: "), "{said}");
        assert!(
            said.ends_with("[Connection refused (os error 111)]"),
            "{said}"
        );
        assert!(crate::text::has_rtl(&said), "{said}");
        assert_eq!(link_words_in(Lang::En, &lost), lost);
        // Only spans' places: a member named "5 s" is a name.
        let p = majlis_core::diagnose::Part {
            template: "last message {time} ago",
            args: vec![("time", "5 s".into()), ("member", "5 s".into())],
        };
        assert_eq!(
            say_part(Lang::Ar, &p),
            "آخر رسالة قبل \u{2068}5 ثانية\u{2069}"
        );
        let p = majlis_core::diagnose::Part {
            template: "{member}",
            args: vec![("member", "5 s".into())],
        };
        assert_eq!(say_part(Lang::En, &p), "5 s");
        assert_eq!(say_part(Lang::Ar, &p), "\u{2068}5 s\u{2069}");
        assert_eq!(ways_in(Lang::Ar, "mDNS and address"), "mDNS وعنوان");
        assert_eq!(
            ways_in(Lang::En, "mDNS and peer exchange"),
            "mDNS and peer exchange"
        );
    }
}
