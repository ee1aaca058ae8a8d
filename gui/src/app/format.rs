//! Text formatting shared by the views: short ids, local times.

use eframe::egui;

pub(super) fn short(id: &str) -> String {
    let n = id.len();
    if n > 12 {
        format!("…{}", &id[n - 8..])
    } else {
        id.to_string()
    }
}

pub(super) fn local(ms: u64) -> chrono::DateTime<chrono::Local> {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .with_timezone(&chrono::Local)
}

pub(super) fn format_time(ms: u64, with_date: bool) -> String {
    let t = local(ms);
    if with_date {
        t.format("%Y-%m-%d %H:%M").to_string()
    } else {
        t.format("%H:%M").to_string()
    }
}

/// A label and a one-line text field named by it (screen readers and tests find it by name).
pub(super) fn labelled_field(ui: &mut egui::Ui, label: &str, value: &mut String) {
    let l = ui.label(label);
    ui.text_edit_singleline(value).labelled_by(l.id);
}
