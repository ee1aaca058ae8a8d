//! Names people read: which two a reader would take for each other, and which characters
//! a name may not hold because nobody sees them. Used where a name is chosen (roster
//! members and channels) and where one arrives from someone else (a shared file's name).

/// Whether two names would be taken for each other on screen: the same but for case, or
/// the same Unicode skeleton (UTS #39 confusables, through `unicode-security`, the tables
/// rustc's own lint uses: Cyrillic "а" for Latin "a", capital "I" or "1" for "l", "rn" for
/// "m", invisible characters dropped), compared after case is folded too, so "Legal" and
/// "legaI" meet. Not our own table: which characters look alike is the Unicode
/// Consortium's data.
pub fn looks_alike(a: &str, b: &str) -> bool {
    same_but_case(a, b) || fold(a) == fold(b)
}

/// Whether two names differ only in case ("General" and "general").
pub fn same_but_case(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// Whether `name` shows nothing at all: only joiners, variation selectors or spaces, which
/// [`is_hidden`] lets through one by one.
pub fn is_blank(name: &str) -> bool {
    fold(name).chars().all(char::is_whitespace)
}

/// The skeleton of `s` after case folding: what [`looks_alike`] compares.
fn fold(s: &str) -> String {
    use unicode_security::confusable_detection::skeleton;
    let once: String = skeleton(s).collect::<String>().to_lowercase();
    skeleton(&once).collect()
}

/// Whether `c` draws nothing or changes the direction of the text around it: bidirectional
/// controls (U+202E shows "lagel" as "legal", and "invoice\u{202E}fdp.exe" as "invoiceexe.pdf")
/// and invisible characters (a zero-width space makes a second "general"). The joiners
/// (U+200C, U+200D), which Persian names and emoji need, and variation selectors are not:
/// they cannot reorder text, and [`looks_alike`] looks through them.
pub fn is_hidden(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}' | '\u{200E}' | '\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}')
}

/// The first [`is_hidden`] character of `name`.
pub fn hidden_char(name: &str) -> Option<char> {
    name.chars().find(|&c| is_hidden(c))
}

/// `name` without its [`is_hidden`] characters: what to suggest or show instead.
pub fn without_hidden(name: &str) -> String {
    name.chars().filter(|&c| !is_hidden(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookalikes_meet_and_different_names_do_not() {
        assert!(looks_alike("Legal", "legaI") && looks_alike("arnina", "amina"));
        assert!(looks_alike("gen\u{200B}eral", "general") && looks_alike("Sаra", "sara"));
        // The final yeh is often written without its dots: "على" is how many write "علي".
        assert!(looks_alike("علي", "على") && !looks_alike("حسن", "حسين"));
        assert!(!looks_alike("ali", "all") && !looks_alike("sara", "sarah"));
        assert!(is_blank("\u{200D}\u{FE0F}") && is_blank("\u{200C} \u{3000}"));
        assert!(!is_blank("❤\u{FE0F}") && !is_blank("ب"));
    }

    #[test]
    fn hidden_characters_are_found_and_joiners_are_not() {
        assert_eq!(hidden_char("invoice\u{202E}fdp.exe"), Some('\u{202E}'));
        assert_eq!(without_hidden("a\u{2066}b\u{200B}c\u{FEFF}"), "abc");
        for fine in ["می\u{200C}خواهم", "👩\u{200D}💻", "❤\u{FE0F}", "تقرير.pdf"]
        {
            assert_eq!(hidden_char(fine), None, "{fine}");
        }
    }
}
