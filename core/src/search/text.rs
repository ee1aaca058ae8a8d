//! Text as search sees it: words split on the original text (so highlights point into what
//! the user wrote), each folded to what readers treat as the same word. Arabic follows
//! Lucene's `ArabicNormalizer` (hamza forms of alef, alef maqsura, ta marbuta, tashkeel and
//! tatweel removed) and the Snowball Arabic stemmer; Latin words are lowercased and given the
//! Snowball English stemmer; Arabic-Indic digits become ASCII. Pure functions, no index.

use rust_stemmers::{Algorithm, Stemmer};

/// A word of the text: byte range in the original, and its folded, stemmed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub from: usize,
    pub to: usize,
    pub term: String,
}

/// Arabic marks that do not change the word for a reader: tashkeel (harakat, tanwin,
/// shadda, sukun, and the small marks after them), superscript alef, Quranic annotation
/// marks.
fn is_arabic_mark(c: char) -> bool {
    matches!(c, '\u{0610}'..='\u{061A}' | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{06D6}'..='\u{06ED}')
}

const TATWEEL: char = '\u{0640}';

fn is_arabic_letter(c: char) -> bool {
    matches!(c, '\u{0620}'..='\u{064A}' | '\u{066E}'..='\u{06D3}' | '\u{06FA}'..='\u{06FF}')
}

/// Part of a word: letters and digits of any script, and the Arabic marks and tatweel that
/// sit inside Arabic words (splitting there would cut a word in two).
fn in_word(c: char) -> bool {
    c.is_alphanumeric() || is_arabic_mark(c) || c == TATWEEL || c == '_'
}

/// Fold one character; `None` drops it.
fn fold(c: char) -> Option<char> {
    Some(match c {
        c if is_arabic_mark(c) || c == TATWEEL => return None,
        // Alef with madda, hamza above, hamza below, wasla: alef.
        '\u{0622}' | '\u{0623}' | '\u{0625}' | '\u{0671}' => '\u{0627}',
        // Alef maqsura, Farsi yeh: yeh.
        '\u{0649}' | '\u{06CC}' => '\u{064A}',
        // Ta marbuta: heh.
        '\u{0629}' => '\u{0647}',
        // Keheh: kaf.
        '\u{06A9}' => '\u{0643}',
        // Arabic-Indic and extended (Persian) digits: ASCII.
        '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
        '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
        c => c,
    })
}

/// The folding that comes before the stemmer: marks and tatweel out, alef forms, alef
/// maqsura and Persian letters folded; but ta marbuta kept, and a word-final heh written for
/// it made one, so that "الاداره" typed without it stems like "الإدارة".
fn pre_stem(word: &str) -> String {
    let mut out: String = word
        .chars()
        .filter_map(|c| match c {
            '\u{0629}' => Some(c),
            c => fold(c),
        })
        .collect();
    if out.ends_with('\u{0647}') && out.chars().count() > 3 {
        out.pop();
        out.push('\u{0629}');
    }
    out
}

/// What readers treat as equal, without stemming (also for names and exact matching).
pub fn normalize(word: &str) -> String {
    word.chars()
        .filter_map(fold)
        .flat_map(char::to_lowercase)
        .collect()
}

/// The words of `text`, folded and stemmed.
pub fn words(text: &str) -> Vec<Word> {
    thread_local! {
        static STEMMERS: (Stemmer, Stemmer) =
            (Stemmer::create(Algorithm::Arabic), Stemmer::create(Algorithm::English));
        /// Words recur (Zipf): a word's term is computed once. Bounded; cleared when full.
        static TERMS: std::cell::RefCell<std::collections::HashMap<String, String>> =
            Default::default();
    }
    const MAX_CACHED: usize = 200_000;
    let mut out = Vec::new();
    let mut start = None;
    let push = |from: usize, to: usize, out: &mut Vec<Word>| {
        let raw = &text[from..to];
        if let Some(term) = TERMS.with(|t| t.borrow().get(raw).cloned()) {
            out.push(Word { from, to, term });
            return;
        }
        let norm = normalize(raw);
        if norm.is_empty() {
            return;
        }
        let term = STEMMERS.with(|(ar, en)| {
            if norm.chars().any(is_arabic_letter) {
                // The Snowball Arabic stemmer strips the article and common affixes; it
                // needs the letters as written (ta marbuta is a suffix to it, heh a
                // pronoun), so it comes before the folding. Very short stems are not
                // useful: the folded word is kept then.
                let bare = pre_stem(raw);
                let s = normalize(&ar.stem(&bare));
                if s.chars().count() >= 2 {
                    s
                } else {
                    norm.clone()
                }
            } else if norm.chars().all(|c| c.is_ascii_alphabetic()) {
                en.stem(&norm).into_owned()
            } else {
                norm.clone()
            }
        });
        TERMS.with(|t| {
            let mut t = t.borrow_mut();
            if t.len() >= MAX_CACHED {
                t.clear();
            }
            t.insert(raw.to_string(), term.clone());
        });
        out.push(Word { from, to, term });
    };
    for (i, c) in text.char_indices() {
        match (in_word(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                push(s, i, &mut out);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        push(s, text.len(), &mut out);
    }
    out
}

/// The terms of `text` (what a query word must match).
pub fn terms(text: &str) -> Vec<String> {
    words(text).into_iter().map(|w| w.term).collect()
}

/// Whether `text` holds a link (for `has:link`).
pub fn has_link(text: &str) -> bool {
    links(text).next().is_some()
}

/// The links in `text` as byte ranges: words starting `http://`, `https://`, `www.` or
/// `majlis:message/` (a [`crate::MessageId::link`]) after an opening bracket or quote, without the punctuation that ends a sentence or a
/// bracket after them ("see https://x.test/a." links `https://x.test/a`). The app makes
/// these clickable and `has:link` finds them, so both agree on what a link is.
pub fn links(text: &str) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    text.split_whitespace().filter_map(move |w| {
        let from = w.len() - w.trim_start_matches(['(', '<', '"', '\'', '[', '«']).len();
        let rest = &w[from..];
        let scheme = ["http://", "https://", "www.", crate::MessageId::LINK]
            .into_iter()
            .find(|p| rest.starts_with(p))?;
        let link = rest.trim_end_matches([
            '.', ',', ';', ':', '!', '?', ')', '>', '"', '\'', ']', '»', '،', '؛', '؟',
        ]);
        // Where `w` sits in `text` (split_whitespace yields subslices of it).
        let at = w.as_ptr() as usize - text.as_ptr() as usize + from;
        (link.len() > scheme.len()).then_some(at..at + link.len())
    })
}

/// What opening link `link` (a [`links`] range's text) asks a browser for: `www.` names a
/// web address without its scheme.
pub fn link_url(link: &str) -> String {
    match link.starts_with("www.") {
        true => format!("https://{link}"),
        false => link.to_string(),
    }
}

/// The names `text` mentions with `@name` (normalized, for `mentions:`).
pub fn mentions(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace())
        .filter_map(|w| w.strip_prefix('@'))
        .map(|n| n.trim_end_matches(|c: char| !in_word(c)))
        .filter(|n| !n.is_empty())
        .map(normalize)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arabic_forms_readers_treat_as_equal_fold_together() {
        // Hamza forms of alef, with and without tashkeel and tatweel.
        assert_eq!(normalize("أحمد"), normalize("احمد"));
        assert_eq!(normalize("إسلام"), normalize("اسلام"));
        assert_eq!(normalize("آمنة"), normalize("امنه"));
        assert_eq!(normalize("مُدَرِّسَة"), normalize("مدرسه"));
        assert_eq!(normalize("مــدرسة"), normalize("مدرسة"));
        // Alef maqsura and yeh; Farsi yeh and keheh.
        assert_eq!(normalize("مستشفى"), normalize("مستشفي"));
        assert_eq!(normalize("کتاب"), normalize("كتاب"));
        // Digits.
        assert_eq!(normalize("٢٠٢٦"), "2026");
        assert_eq!(normalize("۱۲"), "12");
        assert_eq!(normalize("Report"), "report");
    }

    #[test]
    fn words_keep_their_place_in_the_original_text() {
        let text = "اجتماعُ الغد at 10:30, see https://x.test";
        let w = words(text);
        assert_eq!(&text[w[0].from..w[0].to], "اجتماعُ");
        assert!(w.iter().any(|w| &text[w.from..w.to] == "الغد"));
        assert!(has_link(text));
        assert!(!has_link("no link here"));
    }

    #[test]
    fn links_end_before_the_sentence_does() {
        let text =
            "plan (https://intranet.acme/plan?v=2), mirror www.acme.test. «http://x.test/ا».";
        let found: Vec<&str> = links(text).map(|r| &text[r]).collect();
        assert_eq!(
            found,
            [
                "https://intranet.acme/plan?v=2",
                "www.acme.test",
                "http://x.test/ا"
            ]
        );
        assert_eq!(link_url("www.acme.test"), "https://www.acme.test");
        assert_eq!(
            links("https:// www. http").count(),
            0,
            "a scheme alone is no link"
        );
        assert!(!has_link("a https:// alone"));
        // A link to a message: a link too, and it names the message.
        let id = crate::MessageId([0xab; 32]);
        let text = format!("see ({}), then reply", id.link());
        let found: Vec<&str> = links(&text).map(|r| &text[r]).collect();
        assert_eq!(found, [id.link()]);
        assert_eq!(crate::MessageId::from_link(found[0]), Some(id));
        assert_eq!(crate::MessageId::from_link("majlis:message/abcd"), None);
        assert_eq!(crate::MessageId::from_link(&id.to_string()), None);
    }

    #[test]
    fn stems_join_inflections() {
        // Definite article and plural, in Arabic; plural and -ing in English.
        assert_eq!(terms("المدرسة"), terms("مدرسة"));
        assert_eq!(terms("meetings"), terms("meeting"));
        assert_eq!(terms("reports"), terms("report"));
        assert_eq!(mentions("hi @Bilal, and @أمينة."), vec!["bilal", "امينه"]);
    }
}
