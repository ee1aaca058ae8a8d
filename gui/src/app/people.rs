//! The people view: members, their devices and who is online.

use super::*;

impl MajlisApp {
    pub(super) fn draw_people(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        let Some(r) = run.roster.clone() else {
            return;
        };
        let rtl = self.state.lang.rtl();
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
            ui.label(format!(
                "{} {}",
                self.t("This organization keeps:"),
                r.roster.governance.retention.describe()
            ));
            if ui.button(self.t("Export my data")).clicked() {
                run.actions.push(Action::ExportMine);
            }
        });
        if let Some((n, at)) = &run.notice {
            if at.elapsed() < Duration::from_secs(8) {
                ui.label(RichText::new(n.as_str()).italics());
            }
        }
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
        egui::ScrollArea::vertical().show(ui, |ui| {
            egui::Grid::new("people")
                .striped(true)
                .num_columns(4)
                .show(ui, |ui| {
                    for m in &r.roster.members {
                        let cells = {
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
                            let status = if on && idle {
                                away.clone()
                            } else if on {
                                online.clone()
                            } else if let Some(t) = seen {
                                format!("{offline}, {last} {}", format_time(t, true))
                            } else {
                                never.clone()
                            };
                            [
                                text::for_egui(&m.name).into_owned(),
                                m.role.to_string(),
                                format!("{} {devices}", m.devices.len()),
                                status,
                            ]
                        };
                        let cells: Vec<_> = if rtl {
                            cells.into_iter().rev().collect()
                        } else {
                            cells.to_vec()
                        };
                        for c in cells {
                            ui.label(c);
                        }
                        ui.end_row();
                    }
                });
        });
    }
}
