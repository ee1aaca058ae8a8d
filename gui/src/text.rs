//! Right-to-left text for egui.
//!
//! Arabic letters change form with their neighbours, and RTL runs read right to left. egui
//! 0.37 shapes each *font run* with harfrust, guessing its direction from its script, but has
//! no bidirectional algorithm: runs (a word, a space from another font, the next word) are
//! placed left to right in logical order, so an Arabic sentence comes out with its words
//! reversed, and mixed Arabic/Latin text is scrambled. So before egui sees a string we
//! (1) shape it in logical order into Arabic presentation forms (`ar-reshaper`, with the
//! mandatory lam-alef ligature; this does not depend on the font's GSUB tables), (2) break it
//! into lines in logical order, (3) reorder each line into visual order with the Unicode
//! bidirectional algorithm (`unicode-bidi`), and (4) turn each RTL run back into logical order,
//! because egui's shaper reverses such a run itself ([`for_egui`]). Wrapping must come before
//! reordering: reordering a whole paragraph and letting egui wrap it would put the end of a
//! sentence on its first line. Hebrew needs only (2)–(4). Text without RTL characters passes
//! through untouched.

use std::borrow::Cow;

use ar_reshaper::ArabicReshaper;
use unicode_bidi::{BidiInfo, Level};

/// Whether `c` belongs to a right-to-left script (Hebrew, Arabic, Syriac, Thaana, N'Ko, and
/// the presentation forms).
pub fn is_rtl_char(c: char) -> bool {
    matches!(c as u32,
        0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFF | 0x10800..=0x10FFF | 0x1E800..=0x1EFFF)
}

pub fn has_rtl(text: &str) -> bool {
    text.chars().any(is_rtl_char)
}

/// The paragraph direction by the first strong character (Unicode rule P2): the side a
/// message is aligned to.
pub fn is_rtl_paragraph(text: &str) -> bool {
    for c in text.chars() {
        if is_rtl_char(c) {
            return true;
        }
        if c.is_alphabetic() {
            return false;
        }
    }
    false
}

fn shape(text: &str) -> String {
    thread_local! {
        static RESHAPER: ArabicReshaper = ArabicReshaper::default();
    }
    RESHAPER.with(|r| r.reshape(text))
}

/// One line in display (visual, left-to-right) order.
pub fn visual_line(line: &str) -> String {
    let info = BidiInfo::new(line, None);
    let Some(para) = info.paragraphs.first() else {
        return line.to_string();
    };
    info.reorder_line(para, para.range.clone()).into_owned()
}

/// `text` shaped and in true visual order (left to right on screen), paragraph breaks kept.
pub fn visual(text: &str) -> Cow<'_, str> {
    if !has_rtl(text) {
        return Cow::Borrowed(text);
    }
    let shaped = shape(text);
    Cow::Owned(
        shaped
            .split('\n')
            .map(visual_line)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// A visual-order line as egui 0.37 needs it: every run of RTL characters reversed back,
/// since egui's shaper lays such a run out right to left itself. Runs end where the font
/// changes, which for RTL text is exactly at a non-RTL character (egui's bundled fonts have
/// no RTL glyphs; the fallback font from [`crate::fonts`] serves all of them).
fn unreverse_rtl_runs(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut run: Vec<char> = Vec::new();
    for c in line.chars() {
        if is_rtl_char(c) {
            run.push(c);
        } else {
            out.extend(run.drain(..).rev());
            out.push(c);
        }
    }
    out.extend(run.drain(..).rev());
    out
}

/// `text` ready for an egui label: shaped, reordered, and adapted to egui's shaper.
pub fn for_egui(text: &str) -> Cow<'_, str> {
    match visual(text) {
        Cow::Borrowed(t) => Cow::Borrowed(t),
        Cow::Owned(v) => Cow::Owned(
            v.split('\n')
                .map(unreverse_rtl_runs)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    }
}

/// `text` shaped, wrapped to `max_width` (measured with `width_of`, in logical order) and
/// reordered line by line. Returns the lines ready for egui (see [`for_egui`]).
pub fn wrap_visual(
    text: &str,
    max_width: f32,
    mut width_of: impl FnMut(&str) -> f32,
) -> Vec<String> {
    let shaped = if has_rtl(text) {
        shape(text)
    } else {
        text.to_string()
    };
    let mut lines = Vec::new();
    for para in shaped.split('\n') {
        let mut line = String::new();
        for word in para.split_inclusive(' ') {
            let candidate = format!("{line}{word}");
            if !line.is_empty() && width_of(candidate.trim_end()) > max_width {
                lines.push(std::mem::take(&mut line));
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
        .into_iter()
        .map(|l| {
            let l = l.trim_end();
            if has_rtl(l) {
                unreverse_rtl_runs(&visual_line(l))
            } else {
                l.to_string()
            }
        })
        .collect()
}

/// The embedding level of the paragraph, for tests and alignment decisions.
pub fn paragraph_level(text: &str) -> Level {
    BidiInfo::new(text, None)
        .paragraphs
        .first()
        .map_or(Level::ltr(), |p| p.level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_text_is_untouched() {
        assert!(matches!(visual("hello 123"), Cow::Borrowed("hello 123")));
        assert!(!is_rtl_paragraph("hello سلام"));
    }

    #[test]
    fn arabic_is_joined_and_reversed() {
        // سلام: seen, lam, alef, meem. Joined forms in visual order (left to right):
        // meem isolated (alef does not join forward), lam-alef final ligature, seen initial.
        let v = visual("سلام");
        let chars: Vec<char> = v.chars().collect();
        assert_eq!(chars, ['\u{FEE1}', '\u{FEFC}', '\u{FEB3}']);
        assert!(is_rtl_paragraph("سلام عليكم"));
        assert!(paragraph_level("سلام").is_rtl());
    }

    #[test]
    fn mixed_text_keeps_latin_and_digits_in_reading_order() {
        // An RTL paragraph with an embedded Latin word and a number: the Latin and the digits
        // stay left-to-right inside, the Arabic words swap sides.
        let v = visual("فاتورة INV-42 جاهزة");
        let s: String = v.chars().collect();
        assert!(s.contains("INV-42"), "{s}");
        let inv = s.find("INV").unwrap();
        // The first logical word (فاتورة) ends up rightmost, after the Latin part.
        let tail: String = s[inv..].chars().filter(|c| is_rtl_char(*c)).collect();
        assert_eq!(tail.chars().count(), "فاتورة".chars().count());
    }

    #[test]
    fn hebrew_is_reordered_without_shaping() {
        assert_eq!(visual("שלום"), "םולש");
    }

    #[test]
    fn wrapping_happens_before_reordering() {
        // One unit per character; a width of 8 fits one word per line.
        let lines = wrap_visual("אחת שתיים שלוש", 8.0, |s| {
            s.chars().count() as f32
        });
        assert_eq!(lines, ["אחת", "שתיים", "שלוש"]);
    }

    #[test]
    fn for_egui_orders_words_visually_and_leaves_letters_to_egui() {
        // Two Hebrew words: the second is leftmost on screen; each word stays in logical order
        // because egui reverses a single-font RTL run itself.
        assert_eq!(for_egui("אחת שתיים"), "שתיים אחת");
        assert_eq!(for_egui("abc"), "abc");
    }
}
