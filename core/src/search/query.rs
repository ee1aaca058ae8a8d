//! The search box's language, Slack's and Mattermost's: words and "phrases", with
//! `from:NAME`, `in:#channel` / `in:@name`, `has:file`, `has:link`, `has:poll`, `before:` / `after:` /
//! `on:` dates (YYYY-MM-DD, UTC days), `mentions:me`. Pure parsing; unknown modifiers are an
//! error that says which ones exist, so a typo never silently matches everything.

/// Where to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum In {
    Channel(String),
    /// The direct messages with this member.
    Dm(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub words: Vec<String>,
    pub phrases: Vec<String>,
    pub from: Option<String>,
    pub r#in: Option<In>,
    pub has_file: bool,
    pub has_link: bool,
    /// `has:poll`: only polls.
    pub has_poll: bool,
    /// Unix ms, inclusive lower and exclusive upper bounds.
    pub after: Option<u64>,
    pub before: Option<u64>,
    /// `mentions:NAME` (`me` is resolved by the caller).
    pub mentions: Option<String>,
    /// `is:saved`: only what this member saved for later (the caller knows which).
    pub saved: bool,
}

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The start of a UTC day given as YYYY-MM-DD, in unix ms.
fn day(text: &str) -> Result<u64, String> {
    let bad = || format!("'{text}' is not a date: write YYYY-MM-DD (e.g. 2026-03-01)");
    let mut parts = text.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d) as u64 * DAY_MS)
}

/// Split on whitespace, keeping "quoted phrases" (and `key:"quoted value"`) whole.
fn tokens(q: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    for c in q.chars() {
        match c {
            '"' | '“' | '”' | '«' | '»' => {
                quoted = !quoted;
                was_quoted = true;
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push((std::mem::take(&mut cur), was_quoted));
                }
                was_quoted = false;
            }
            c => cur.push(c),
        }
    }
    // A quote left open runs to the end: the phrase typed so far (search runs as one types),
    // which may be nothing yet (a lone `"`): an empty phrase, which finds nothing.
    if !cur.is_empty() || quoted {
        out.push((cur, was_quoted));
    }
    out
}

/// Filters long enough that a word one letter away is a typo of one, not a word of its own
/// ("is:" is not a mistyped "in:").
const LONG_FILTERS: [&str; 5] = ["from", "before", "after", "during", "mentions"];

/// `a` is `b` with one letter added, dropped or changed.
fn one_edit(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if long.len() - short.len() > 1 || a == b {
        return false;
    }
    let head = short
        .iter()
        .zip(long.iter())
        .take_while(|(x, y)| x == y)
        .count();
    match short.len() == long.len() {
        true => short[head + 1..] == long[head + 1..],
        false => short[head..] == long[head + 1..],
    }
}

pub fn parse(q: &str) -> Result<Query, String> {
    let mut out = Query::default();
    for (tok, quoted) in tokens(q) {
        let Some((key, value)) = tok
            .split_once(':')
            .filter(|(k, v)| !quoted || !k.contains(char::is_whitespace) && !v.is_empty())
        else {
            if quoted {
                out.phrases.push(tok);
            } else {
                out.words.push(tok);
            }
            continue;
        };
        let value = value.to_string();
        match key.to_lowercase().as_str() {
            "from" => out.from = Some(value.trim_start_matches('@').to_string()),
            "in" => {
                out.r#in = Some(match value.strip_prefix('@') {
                    Some(name) => In::Dm(name.to_string()),
                    None => In::Channel(value.trim_start_matches('#').to_string()),
                })
            }
            "has" => match value.to_lowercase().as_str() {
                "file" | "files" | "attachment" => out.has_file = true,
                "link" | "links" => out.has_link = true,
                "poll" | "polls" => out.has_poll = true,
                other => return Err(format!("has:{other}: use has:file, has:link or has:poll")),
            },
            "before" => out.before = Some(day(&value)?),
            "after" => out.after = Some(day(&value)? + DAY_MS),
            "on" | "during" => {
                let d = day(&value)?;
                out.after = Some(d);
                out.before = Some(d + DAY_MS);
            }
            "mentions" => out.mentions = Some(value.trim_start_matches('@').to_string()),
            // Only `is:saved`: any other "is:…" is text, as before there was a filter.
            "is" if value.eq_ignore_ascii_case("saved") => out.saved = true,
            // A filter name mistyped by one letter ("frm:"): say what to write.
            other if LONG_FILTERS.iter().any(|f| one_edit(other, f)) => {
                return Err(format!(
                    "unknown filter '{other}:': use from:, in:, has:, before:, after:, on:, mentions: or is:saved"
                ))
            }
            // Any other word with a colon ("Re:", a time, a URL) is text.
            _ => out.words.push(tok),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modifiers_words_and_phrases() {
        let q = parse(r#"budget "quarterly report" from:bilal in:#sales has:file after:2026-03-01 before:2026-04-01 mentions:me"#).unwrap();
        assert_eq!(q.words, ["budget"]);
        assert_eq!(q.phrases, ["quarterly report"]);
        assert_eq!(q.from.as_deref(), Some("bilal"));
        assert_eq!(q.r#in, Some(In::Channel("sales".into())));
        assert!(q.has_file && !q.has_link);
        assert_eq!(q.after, Some(day("2026-03-02").unwrap()));
        assert_eq!(q.before, Some(day("2026-04-01").unwrap()));
        assert_eq!(q.mentions.as_deref(), Some("me"));
        assert_eq!(
            parse("in:@amina").unwrap().r#in,
            Some(In::Dm("amina".into()))
        );
        let on = parse("on:2026-01-31").unwrap();
        assert_eq!(on.before.unwrap() - on.after.unwrap(), DAY_MS);
        assert_eq!(day("1970-01-02").unwrap(), DAY_MS);
        assert_eq!(day("2026-11-29").unwrap(), 1_795_910_400_000);
    }

    #[test]
    fn arabic_phrases_and_times_are_text() {
        let q = parse("«اجتماع الغد» 10:30").unwrap();
        assert_eq!(q.phrases, ["اجتماع الغد"]);
        assert_eq!(q.words, ["10:30"]);
    }

    #[test]
    fn mistakes_say_what_to_write() {
        assert!(parse("frm:bilal")
            .unwrap_err()
            .contains("unknown filter 'frm:'"));
        assert!(parse("after:yesterday").unwrap_err().contains("YYYY-MM-DD"));
        assert!(parse("has:pdf").unwrap_err().contains("has:file"));
    }

    /// "Re:", "Note:" or any other word with a colon is text; only a filter name mistyped by
    /// one letter is an error (above).
    #[test]
    fn a_word_with_a_colon_is_text_unless_it_is_a_filter_mistyped() {
        assert_eq!(parse("Re: budget").unwrap().words, ["Re:", "budget"]);
        assert_eq!(parse("form:x ó:y").unwrap().words, ["form:x", "ó:y"]);
        for typo in ["frm:x", "fromm:x", "mentons:x", "befor:x"] {
            assert!(parse(typo).is_err(), "{typo}");
        }
        assert!(!one_edit("from", "from") && one_edit("afer", "after") && !one_edit("a", "abc"));
    }

    /// Search runs as one types: a quote not closed yet is the phrase so far, not an error.
    #[test]
    fn an_open_quote_is_the_phrase_so_far() {
        assert_eq!(parse("\"open plan").unwrap().phrases, ["open plan"]);
    }
}
