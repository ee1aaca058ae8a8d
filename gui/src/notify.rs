//! Desktop notifications (`notify-rust`: freedesktop D-Bus on Linux, native elsewhere). Shown
//! from a short-lived thread so a slow or missing notification daemon never stalls a frame.

pub fn show(title: &str, body: &str) {
    let (title, body) = (
        title.to_string(),
        body.chars().take(200).collect::<String>(),
    );
    std::thread::spawn(move || {
        if let Err(e) = notify_rust::Notification::new()
            .summary(&title)
            .body(&body)
            .appname("Majlis")
            .show()
        {
            tracing::debug!("desktop notification not shown: {e}");
        }
    });
}
