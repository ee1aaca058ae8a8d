//! Desktop notifications (`notify-rust`: freedesktop D-Bus on Linux, native elsewhere). Shown
//! from a short-lived thread so a slow or missing notification daemon never stalls a frame.

pub fn show(title: &str, body: &str) {
    let (title, body) = (
        title.to_string(),
        plain(&body.chars().take(200).collect::<String>()),
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
