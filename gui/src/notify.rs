//! Desktop notifications (`notify-rust`: freedesktop D-Bus on Linux, native elsewhere). Shown
//! from a thread of their own, which then waits for a click, so a slow or missing
//! notification daemon never stalls a frame.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Show a notification; a click on it runs `clicked` (on the thread that waits for it, so
/// `clicked` only hands the click to the app). Where the notification service offers no
/// click (or the notification is dismissed), `clicked` is never run.
pub fn show(title: &str, body: &str, clicked: impl FnOnce() + Send + 'static) {
    let (title, body) = (
        title.to_string(),
        plain(&body.chars().take(200).collect::<String>()),
    );
    std::thread::spawn(move || {
        match notify_rust::Notification::new()
            .summary(&title)
            .body(&body)
            .appname("Majlis")
            // The freedesktop "default" action: a click on the notification itself.
            .action("default", "Open")
            .show()
        {
            // A service that never says a notification closed would keep each thread
            // waiting: past a few, a notification is shown without waiting for its click.
            Ok(handle) if WAITING.fetch_add(1, Ordering::SeqCst) < MAX_WAITING => {
                handle.wait_for_action(|action| {
                    if action == "default" {
                        clicked();
                    }
                });
                WAITING.fetch_sub(1, Ordering::SeqCst);
            }
            Ok(_) => {
                WAITING.fetch_sub(1, Ordering::SeqCst);
            }
            Err(e) => tracing::debug!("desktop notification not shown: {e}"),
        }
    });
}

/// Threads waiting for a click on their notification, and how many may.
static WAITING: AtomicUsize = AtomicUsize::new(0);
const MAX_WAITING: usize = 32;

/// A message's text as a notification body shows it as written. Freedesktop notification
/// servers read the body as markup (`<b>`, `<a href>`, `<img src>`): unescaped, "a < b &
/// c" is dropped as broken markup by some, and a colleague's `<a href=…>` or `<img>` would be
/// drawn as a link or picture the app itself never shows. Elsewhere the body is plain text.
fn plain(body: &str) -> String {
    if !cfg!(all(unix, not(target_os = "macos"))) {
        return body.to_string();
    }
    let mut out = String::with_capacity(body.len());
    for c in body.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(all(test, unix, not(target_os = "macos")))]
mod tests {
    #[test]
    fn a_body_is_escaped_so_markup_in_it_shows_as_written() {
        assert_eq!(
            super::plain(r#"Q3 < Q4 & <a href="http://x">win</a>"#),
            "Q3 &lt; Q4 &amp; &lt;a href=&quot;http://x&quot;&gt;win&lt;/a&gt;"
        );
        assert_eq!(super::plain("سلام, it's"), "سلام, it&#39;s");
    }
}
