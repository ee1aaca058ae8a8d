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
use std::sync::Arc;

use eframe::egui;

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

/// One line in display (visual, left-to-right) order. A mirrored character (brackets,
/// `<`, `«`) in a right-to-left run is replaced by its mirror image (rule L4), which
/// `unicode-bidi` leaves to the renderer: "(مرحبا)" would otherwise show as ")مرحبا(".
pub fn visual_line(line: &str) -> String {
    let chars: Vec<(char, ())> = line.chars().map(|c| (c, ())).collect();
    visual_line_styled(&chars)
        .into_iter()
        .map(|(c, _)| c)
        .collect()
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
    let chars: Vec<(char, ())> = line.chars().map(|c| (c, ())).collect();
    unreverse_rtl_runs_styled(&chars)
        .into_iter()
        .map(|(c, _)| c)
        .collect()
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
pub fn wrap_visual(text: &str, max_width: f32, width_of: impl FnMut(&str) -> f32) -> Vec<String> {
    let chars: Vec<(char, ())> = text.chars().map(|c| (c, ())).collect();
    wrap_visual_styled(&chars, max_width, width_of)
        .into_iter()
        .map(|l| l.into_iter().map(|(c, _)| c).collect())
        .collect()
}

/// For the composer: `shown` is egui's layout of [`for_egui`]`(buf)`. Its glyphs are in
/// display order, so egui's cursor (an index into `buf`, which is in logical order) would be
/// drawn at the wrong character inside right-to-left text, and typing would land elsewhere
/// than the cursor shows. This returns the galley with each row's glyphs put back in the
/// order of `buf`, one per character of `buf` (a lam-alef ligature counts for its two
/// letters), each placed where the cursor goes *before* that character: the right edge of a
/// right-to-left letter, the left edge of a left-to-right one; the row's end is where the
/// paragraph logically ends. The drawn text is untouched (egui paints the galley's mesh,
/// which layout already made). So arrows move in logical order and the cursor stands where
/// the next letter will appear. A row egui wrapped is left as it was (the mapping is per
/// paragraph), as is anything this cannot map exactly.
pub fn logical_galley(shown: Arc<egui::Galley>, buf: &str) -> Arc<egui::Galley> {
    if !has_rtl(buf) {
        return shown;
    }
    let paras: Vec<&str> = buf.split('\n').collect();
    if shown.rows.len() != paras.len() {
        return shown;
    }
    let mut g = (*shown).clone();
    for (row, para) in g.rows.iter_mut().zip(&paras) {
        match logical_row(&row.row, para) {
            Some(r) => row.row = Arc::new(r),
            None => return shown,
        }
    }
    Arc::new(g)
}

/// One paragraph's row in logical order (see [`logical_galley`]); `None` if the glyphs are
/// not what this paragraph shapes and reorders into.
fn logical_row(row: &egui::epaint::text::Row, para: &str) -> Option<egui::epaint::text::Row> {
    let logical: Vec<char> = para.chars().collect();
    let shaped: Vec<char> = if has_rtl(para) {
        shape(para).chars().collect()
    } else {
        logical.clone()
    };
    // Which shaped character shows each logical one (a lam-alef ligature shows two).
    let mut of = Vec::with_capacity(logical.len());
    let (mut i, mut j) = (0, 0);
    while i < logical.len() {
        let lig = shaped
            .get(j)
            .is_some_and(|c| ('\u{FEF5}'..='\u{FEFC}').contains(c))
            && logical[i] == '\u{0644}'
            && i + 1 < logical.len();
        of.push((j, false));
        if lig {
            of.push((j, true));
            i += 1;
        }
        i += 1;
        j += 1;
    }
    if j != shaped.len() || of.len() != logical.len() {
        return None;
    }
    // The display order of the shaped characters, as `visual_line` makes it.
    let text: String = shaped.iter().collect();
    let info = BidiInfo::new(&text, None);
    let mut order: Vec<usize> = Vec::with_capacity(shaped.len());
    if let Some(p) = info.paragraphs.first() {
        let (levels, runs) = info.visual_runs(p, p.range.clone());
        for run in runs {
            // A run is a byte range; its characters are consecutive from the one it starts at.
            let first = text[..run.start].chars().count();
            let mut idx: Vec<usize> = (first..first + text[run.clone()].chars().count()).collect();
            if levels[run.start].is_rtl() {
                idx.reverse();
            }
            order.extend(idx);
        }
    }
    // egui 0.37 appends zero-width copies after a right-to-left run (its cluster bookkeeping
    // assumes clusters grow): match the glyphs to the display order and skip those.
    let mut shown: Vec<&egui::epaint::text::Glyph> = Vec::with_capacity(order.len());
    for gl in &row.glyphs {
        if let Some(k) = order.get(shown.len()) {
            let c = shaped[*k];
            if gl.chr == c && (gl.advance_width > 0.0 || is_mark(c)) {
                shown.push(gl);
            }
        }
    }
    if shown.len() != order.len() {
        return None;
    }
    let mut at = vec![0; shaped.len()];
    for (g, k) in order.iter().enumerate() {
        at[*k] = g;
    }
    let glyphs: Vec<egui::epaint::text::Glyph> = of
        .iter()
        .map(|(k, second)| {
            let mut gl = *shown[at[*k]];
            let rtl = is_rtl_char(gl.chr);
            // Before this character: its start edge (inside a ligature, its middle).
            gl.pos.x += match (rtl, second) {
                (_, true) => gl.advance_width / 2.0,
                (true, false) => gl.advance_width,
                (false, false) => 0.0,
            };
            if *second {
                gl.advance_width = 0.0;
            }
            gl
        })
        .collect();
    let mut out = row.clone();
    // The end of the paragraph: after its last character in logical order.
    if let Some((k, _)) = of.last() {
        let gl = shown[at[*k]];
        out.size.x = if is_rtl_char(gl.chr) {
            gl.pos.x
        } else {
            gl.pos.x + gl.advance_width
        };
    }
    out.glyphs = glyphs;
    Some(out)
}

/// Arabic and Hebrew vowel marks: drawn over a letter, no advance of their own.
fn is_mark(c: char) -> bool {
    matches!(c as u32, 0x0591..=0x05C7 | 0x0610..=0x061A | 0x064B..=0x065F | 0x0670 | 0x06D6..=0x06ED)
}

/// The character boundary (an index into the paragraph's characters) nearest to `x` in a
/// row made by [`logical_galley`]: where a click puts the cursor.
pub fn boundary_at(row: &egui::epaint::text::Row, x: f32) -> usize {
    let mut best = (f32::INFINITY, row.glyphs.len());
    for (i, gl) in row.glyphs.iter().enumerate() {
        let d = (gl.pos.x - x).abs();
        if d < best.0 {
            best = (d, i);
        }
    }
    if (row.size.x - x).abs() < best.0 {
        best.1 = row.glyphs.len();
    }
    best.1
}

/// The embedding level of the paragraph, for tests and alignment decisions.
pub fn paragraph_level(text: &str) -> Level {
    BidiInfo::new(text, None)
        .paragraphs
        .first()
        .map_or(Level::ltr(), |p| p.level)
}

/// The parts of a message people wrote as code, to be drawn in a fixed-width font: a
/// fenced block (a line of three backticks, optionally naming a language, to the next line
/// of three backticks) and `inline code` (a backtick to the next on the same line, with
/// something between). The backticks are part of each range (they stay in the text, so
/// what is drawn is what was sent). An unclosed fence or backtick is plain text.
pub fn code_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut lines = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        lines.push(at..at + line.len());
        at += line.len();
    }
    let fence = |r: &std::ops::Range<usize>| text[r.clone()].trim_end().starts_with("```");
    let mut i = 0;
    while i < lines.len() {
        if fence(&lines[i]) {
            let close = (i + 1..lines.len()).find(|&j| text[lines[j].clone()].trim_end() == "```");
            if let Some(j) = close {
                let end = lines[j].start + text[lines[j].clone()].trim_end().len();
                out.push(lines[i].start..end);
                i = j + 1;
                continue;
            }
        }
        // Runs of backticks on the line: a lone one opens, the next lone one closes (a run
        // of two or more, "``", is plain text).
        let line = text[lines[i].clone()].as_bytes();
        let mut lone = Vec::new();
        let mut k = 0;
        while k < line.len() {
            if line[k] == b'`' {
                let run = line[k..].iter().take_while(|&&b| b == b'`').count();
                if run == 1 {
                    lone.push(k);
                }
                k += run;
            } else {
                k += 1;
            }
        }
        // (Two lone ones are never side by side: that would be a run of two.)
        for pair in lone.chunks_exact(2) {
            out.push(lines[i].start + pair[0]..lines[i].start + pair[1] + 1);
        }
        i += 1;
    }
    out
}

/// A Markdown link, `[label](https://…)`, as bots and webhooks write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdLink {
    /// From `[` to `)`.
    pub whole: std::ops::Range<usize>,
    pub label: std::ops::Range<usize>,
    pub url: std::ops::Range<usize>,
}

/// The Markdown links of `text` (none touching `skip`, code): a label on one line without
/// brackets, then at once an `http://` or `https://` address without spaces in parentheses.
pub fn md_links(text: &str, skip: &[std::ops::Range<usize>]) -> Vec<MdLink> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find('[').map(|i| from + i) {
        from = open + 1;
        let Some(close) = text[open + 1..]
            .find(|c| "[]\n".contains(c))
            .map(|i| open + 1 + i)
        else {
            break;
        };
        if !text[close..].starts_with(']') || close == open + 1 {
            continue;
        }
        let rest = &text[close + 1..];
        if !(rest.starts_with("(http://") || rest.starts_with("(https://")) {
            continue;
        }
        let Some(end) = rest.find(|c: char| c == ')' || c.is_whitespace()) else {
            continue;
        };
        if !rest[end..].starts_with(')') {
            continue;
        }
        let link = MdLink {
            whole: open..close + 1 + end + 1,
            label: open + 1..close,
            url: close + 2..close + 1 + end,
        };
        if skip
            .iter()
            .any(|s| s.start < link.whole.end && link.whole.start < s.end)
        {
            continue;
        }
        from = link.whole.end;
        out.push(link);
    }
    out
}

/// `text` as the app draws it but without fonts, for a desktop notification: emphasis
/// markers taken out, a Markdown link as its label, the rest as written.
pub fn without_markers(text: &str) -> String {
    pieces(text)
        .iter()
        .map(|p| &text[p.range.clone()])
        .collect()
}

/// How a line of a message begins: `> ` quotes it, `- ` or `* ` makes it an item of a list
/// (after up to four spaces, for a nested one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineMark {
    Quote,
    Bullet,
}

/// The lines of `text` that begin with a [`LineMark`]: the marker's range (the spaces before
/// a bullet stay), and what it is. None inside `skip` (a fenced code block).
pub fn line_marks(
    text: &str,
    skip: &[std::ops::Range<usize>],
) -> Vec<(std::ops::Range<usize>, LineMark)> {
    let mut out = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let rest = &line[indent..];
        let mark = if indent == 0 && rest.starts_with("> ") {
            Some(LineMark::Quote)
        } else if indent <= 4 && (rest.starts_with("- ") || rest.starts_with("* ")) {
            Some(LineMark::Bullet)
        } else {
            None
        };
        let start = at + indent;
        if let Some(m) = mark {
            if rest.len() > 2 && !skip.iter().any(|s| s.start <= start && start < s.end) {
                out.push((start..start + 2, m));
            }
        }
        at += line.len();
    }
    out
}

/// How a stretch of a message is emphasised: `*bold*`, `_italic_`, `~struck through~`, as
/// people type in other messengers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emphasis {
    Bold,
    Italic,
    Struck,
}

impl Emphasis {
    fn of(c: char) -> Option<Emphasis> {
        match c {
            '*' => Some(Emphasis::Bold),
            '_' => Some(Emphasis::Italic),
            '~' => Some(Emphasis::Struck),
            _ => None,
        }
    }
}

/// One emphasised stretch of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emphasised {
    /// The stretch with its markers.
    pub range: std::ops::Range<usize>,
    pub kind: Emphasis,
    /// How many characters each marker takes: 1 (`*bold*`) or 2 (Markdown's `**bold**`).
    pub marker: usize,
}

impl Emphasised {
    /// The two markers, which are not drawn.
    pub fn markers(&self) -> [std::ops::Range<usize>; 2] {
        let (r, w) = (&self.range, self.marker);
        [r.start..r.start + w, r.end - w..r.end]
    }
}

/// The emphasised stretches of `text`, in order. As people type in other messengers:
/// `*bold*`, `_italic_`, `~struck~`, and as bots and Markdown write them, `**bold**`,
/// `__bold__`, `~~struck~~`. A marker opens at the start of a line or after a space, an
/// opening bracket or quote, or another marker, before something that is not a space; it
/// closes at the next same marker on that line that follows something other than a space and
/// comes before the line's end, a space, punctuation or another marker. So `snake_case_name`,
/// `2*3*4` and `~ 5 min` stay as typed. Stretches nest (`*_both_*`) but never cross, and none
/// touches `skip` (code, links).
pub fn emphasis_spans(text: &str, skip: &[std::ops::Range<usize>]) -> Vec<Emphasised> {
    let opens_after = |c: char| c.is_whitespace() || "([{\"'“‘«".contains(c);
    let closes_before = |c: char| {
        c.is_whitespace()
            || (c.is_ascii_punctuation() && !"([{".contains(c))
            || "”’»…،؛؟".contains(c)
    };
    let mut out: Vec<Emphasised> = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let chars: Vec<(usize, char)> = line.char_indices().map(|(i, c)| (at + i, c)).collect();
        // The run of `c` starting at `k`: its length.
        let run = |k: usize, c: char| chars[k..].iter().take_while(|x| x.1 == c).count();
        let mut closers = std::collections::HashSet::new();
        let mut k = 0;
        while k < chars.len() {
            let (i, c) = chars[k];
            let Some(single) = Emphasis::of(c) else {
                k += 1;
                continue;
            };
            let width = run(k, c);
            if closers.contains(&k) || width > 2 {
                k += width;
                continue;
            }
            let kind = match (width, c) {
                (2, '~') => Emphasis::Struck,
                (2, _) => Emphasis::Bold,
                _ => single,
            };
            let before = k.checked_sub(1).map(|p| chars[p].1);
            let after = chars.get(k + width).map(|x| x.1);
            let opens = before.is_none_or(|b| opens_after(b) || Emphasis::of(b).is_some())
                && after.is_some_and(|a| !a.is_whitespace());
            if !opens {
                k += width;
                continue;
            }
            // Inside a stretch already found, this one must close before that one does.
            let within = out
                .iter()
                .filter(|e| e.range.start < i && i < e.range.end)
                .map(|e| e.markers()[1].start)
                .min()
                .unwrap_or(usize::MAX);
            let close = (k + width + 1..chars.len()).find(|&m| {
                chars[m].1 == c
                    && chars[m].0 < within
                    && chars[m - 1].1 != c
                    && run(m, c) == width
                    && !chars[m - 1].1.is_whitespace()
                    && chars
                        .get(m + width)
                        .is_none_or(|x| closes_before(x.1) || Emphasis::of(x.1).is_some())
            });
            let Some(m) = close else {
                k += width;
                continue;
            };
            let range = i..chars[m + width - 1].0 + c.len_utf8();
            if skip
                .iter()
                .any(|s| s.start < range.end && range.start < s.end)
            {
                k += width;
                continue;
            }
            closers.insert(m);
            out.push(Emphasised {
                range,
                kind,
                marker: width,
            });
            k += width;
        }
        at += line.len();
    }
    out.sort_by_key(|e| e.range.start);
    out
}

/// How a piece of a message is drawn (see [`pieces`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Style {
    /// Written as code: a fixed-width font on a faint ground.
    pub code: bool,
    /// A link, and the address it opens.
    pub link: Option<String>,
    pub bold: bool,
    pub italic: bool,
    pub struck: bool,
    /// On a line quoted with `> `.
    pub quoted: bool,
}

/// A stretch of a message as it is drawn: its source text with one [`Style`], or the
/// marker that begins a quoted line or a list item (drawn as a bar or a bullet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Where it is in the message.
    pub range: std::ops::Range<usize>,
    pub mark: Option<LineMark>,
    pub style: Style,
}

/// Message `text` as the app draws it, in logical order: what is written as code, links
/// (bare addresses and Markdown's `[label](https://…)`, drawn as their label), emphasis,
/// quotes and list items, with the markers that only say how to draw (emphasis markers, a
/// Markdown link's brackets and address) left out. One reading for every place that draws
/// a message (its row, a notification), so that they cannot disagree; the caller decides
/// fonts and colours, and the order on screen (right-to-left text is reordered after this).
pub fn pieces(text: &str) -> Vec<Piece> {
    use majlis_core::search::text::{link_url, links};
    type Range = std::ops::Range<usize>;
    let overlaps = |r: &Range, o: &Range| o.start < r.end && r.start < o.end;
    let inside = |p: &Range, r: &Range| r.start <= p.start && p.end <= r.end;
    let code = code_spans(text);
    let md = md_links(text, &code);
    // Bare addresses, then the label of each Markdown link, each with what it opens.
    let linked: Vec<(Range, String)> = links(text)
        .filter(|r| {
            !code
                .iter()
                .chain(md.iter().map(|l| &l.whole))
                .any(|c| overlaps(r, c))
        })
        .map(|r| (r.clone(), link_url(&text[r])))
        .chain(
            md.iter()
                .map(|l| (l.label.clone(), text[l.url.clone()].to_string())),
        )
        .collect();
    let skip: Vec<Range> = linked
        .iter()
        .map(|(r, _)| r.clone())
        .chain(code.iter().cloned())
        .chain(md.iter().map(|l| l.whole.clone()))
        .collect();
    let emphasis = emphasis_spans(text, &skip);
    let markers: Vec<Range> = emphasis
        .iter()
        .flat_map(Emphasised::markers)
        .chain(
            md.iter()
                .flat_map(|l| [l.whole.start..l.label.start, l.label.end..l.whole.end]),
        )
        .collect();
    let marks = line_marks(text, &code);
    let quoted: Vec<Range> = marks
        .iter()
        .filter(|(_, k)| *k == LineMark::Quote)
        .map(|(r, _)| r.end..text[r.end..].find('\n').map_or(text.len(), |n| r.end + n))
        .collect();
    let mut cuts: Vec<usize> = [0, text.len()]
        .into_iter()
        .chain(
            skip.iter()
                .chain(&markers)
                .chain(&quoted)
                .flat_map(|r| [r.start, r.end]),
        )
        .chain(marks.iter().flat_map(|(r, _)| [r.start, r.end]))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<Piece> = Vec::new();
    for w in cuts.windows(2) {
        let range = w[0]..w[1];
        if range.is_empty() || markers.contains(&range) {
            continue;
        }
        if let Some((_, k)) = marks.iter().find(|(r, _)| *r == range) {
            out.push(Piece {
                range,
                mark: Some(*k),
                style: Style::default(),
            });
            continue;
        }
        let mut style = Style {
            code: code.iter().any(|c| inside(&range, c)),
            link: linked
                .iter()
                .find(|(r, _)| inside(&range, r))
                .map(|(_, u)| u.clone()),
            quoted: quoted.iter().any(|q| inside(&range, q)),
            ..Style::default()
        };
        for e in emphasis.iter().filter(|e| inside(&range, &e.range)) {
            match e.kind {
                Emphasis::Bold => style.bold = true,
                Emphasis::Italic => style.italic = true,
                Emphasis::Struck => style.struck = true,
            }
        }
        // Cuts fall where anything changes, so a piece is often followed by one drawn alike.
        match out.last_mut() {
            Some(last)
                if last.mark.is_none() && last.style == style && last.range.end == range.start =>
            {
                last.range.end = range.end
            }
            _ => out.push(Piece {
                range,
                mark: None,
                style,
            }),
        }
    }
    out
}

/// Styled text (each character with what it is drawn as) shaped for display: Arabic letters
/// in their presentation forms, as [`shape`] makes them for the whole text, so letters join
/// across a change of style. A lam-alef ligature takes the style of its lam. Should the
/// shaper ever not map characters one to one (but for that ligature), each run of one style
/// is shaped on its own instead.
fn shape_styled<S: Copy + Eq>(chars: &[(char, S)]) -> Vec<(char, S)> {
    let whole: String = chars.iter().map(|(c, _)| c).collect();
    let shaped: Vec<char> = shape(&whole).chars().collect();
    let mut out = Vec::with_capacity(shaped.len());
    let mut i = 0;
    for &c in &shaped {
        let Some(&(_, s)) = chars.get(i) else {
            break;
        };
        out.push((c, s));
        let lig = ('\u{FEF5}'..='\u{FEFC}').contains(&c) && chars[i].0 == '\u{0644}';
        i += if lig { 2 } else { 1 };
    }
    if i == chars.len() && out.len() == shaped.len() {
        return out;
    }
    chars
        .chunk_by(|a, b| a.1 == b.1)
        .flat_map(|run| {
            let s = run[0].1;
            let text: String = run.iter().map(|(c, _)| c).collect();
            shape(&text)
                .chars()
                .map(move |c| (c, s))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// [`wrap_visual`] for styled text: the same lines, each character keeping its style
/// through shaping, wrapping and reordering.
pub fn wrap_visual_styled<S: Copy + Eq>(
    chars: &[(char, S)],
    max_width: f32,
    mut width_of: impl FnMut(&str) -> f32,
) -> Vec<Vec<(char, S)>> {
    let shaped = shape_styled(chars);
    let string = |cs: &[(char, S)]| cs.iter().map(|(c, _)| c).collect::<String>();
    let mut lines: Vec<Vec<(char, S)>> = Vec::new();
    for para in shaped.split(|(c, _)| *c == '\n') {
        let mut line: Vec<(char, S)> = Vec::new();
        for word in para.split_inclusive(|(c, _)| *c == ' ') {
            let candidate = string(&line) + &string(word);
            if !line.is_empty() && width_of(candidate.trim_end()) > max_width {
                lines.push(std::mem::take(&mut line));
            }
            line.extend_from_slice(word);
        }
        lines.push(line);
    }
    for l in &mut lines {
        while l.last().is_some_and(|(c, _)| c.is_whitespace()) {
            l.pop();
        }
        if l.iter().any(|(c, _)| is_rtl_char(*c)) {
            *l = unreverse_rtl_runs_styled(&visual_line_styled(l));
        }
    }
    lines
}

/// [`visual_line`] for styled text.
fn visual_line_styled<S: Copy>(line: &[(char, S)]) -> Vec<(char, S)> {
    let text: String = line.iter().map(|(c, _)| c).collect();
    let info = BidiInfo::new(&text, None);
    let Some(para) = info.paragraphs.first() else {
        return line.to_vec();
    };
    // The character at each byte offset (the runs are byte ranges).
    let mut at = vec![0; text.len() + 1];
    for (k, (b, _)) in text.char_indices().enumerate() {
        at[b] = k;
    }
    at[text.len()] = line.len();
    let (levels, runs) = info.visual_runs(para, para.range.clone());
    let mut out = Vec::with_capacity(line.len());
    for run in runs {
        let run_chars = &line[at[run.start]..at[run.end]];
        if levels[run.start].is_rtl() {
            out.extend(
                run_chars
                    .iter()
                    .rev()
                    .map(|&(c, s)| (unicode_bidi_mirroring::get_mirrored(c).unwrap_or(c), s)),
            );
        } else {
            out.extend_from_slice(run_chars);
        }
    }
    // The direction marks have done their work; egui would draw them as missing glyphs.
    out.retain(|(c, _)| {
        !matches!(
            c,
            '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{2066}'..='\u{2069}'
        )
    });
    out
}

/// [`unreverse_rtl_runs`] for styled text: a run also ends where the style changes, since
/// egui lays out each section (one style) on its own.
fn unreverse_rtl_runs_styled<S: Copy + Eq>(line: &[(char, S)]) -> Vec<(char, S)> {
    let mut out = Vec::with_capacity(line.len());
    for run in line.chunk_by(|a, b| is_rtl_char(a.0) && is_rtl_char(b.0) && a.1 == b.1) {
        match is_rtl_char(run[0].0) {
            true => out.extend(run.iter().rev()),
            false => out.extend_from_slice(run),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_between_backticks_and_fences() {
        fn spans(t: &str) -> Vec<&str> {
            super::code_spans(t).into_iter().map(|r| &t[r]).collect()
        }
        assert_eq!(
            spans("run `cargo test` then `ls`"),
            ["`cargo test`", "`ls`"]
        );
        assert_eq!(spans("a lone ` and `` empty"), Vec::<&str>::new());
        assert_eq!(spans("not `across\nlines`"), Vec::<&str>::new());
        assert_eq!(
            spans("look:\n```sh\nmajlisd doctor\n```\nthen `x`"),
            ["```sh\nmajlisd doctor\n```", "`x`"]
        );
        assert_eq!(spans("```\nnever closed"), Vec::<&str>::new());
        assert_eq!(spans("سلام `كود` هنا"), ["`كود`"]);
    }

    #[test]
    fn quotes_and_list_items_begin_lines() {
        fn marks(t: &str) -> Vec<(&str, LineMark)> {
            let code = code_spans(t);
            line_marks(t, &code)
                .into_iter()
                .map(|(r, m)| (&t[r], m))
                .collect()
        }
        use LineMark::*;
        assert_eq!(
            marks("> the client said\nso:\n- first\n  * second\n-not one\n- "),
            [("> ", Quote), ("- ", Bullet), ("* ", Bullet)]
        );
        assert_eq!(marks("a > b - c"), []);
        assert_eq!(marks("```\n- in code\n```\n- out"), [("- ", Bullet)]);
    }

    #[test]
    fn markdown_links_are_a_label_and_an_address() {
        fn found(t: &str) -> Vec<(&str, &str)> {
            md_links(t, &code_spans(t))
                .into_iter()
                .map(|l| (&t[l.label], &t[l.url]))
                .collect()
        }
        assert_eq!(
            found(
                "Build #42 failed: [logs](http://ci.local/42/log) and [PR](https://git.local/p/7)."
            ),
            [
                ("logs", "http://ci.local/42/log"),
                ("PR", "https://git.local/p/7")
            ]
        );
        assert_eq!(
            found("[](http://x) [a] (http://x) [a](ftp://x) [a](http://x y) [a](http://x\u{3000})"),
            []
        );
        assert_eq!(
            found("[a\nb](http://x) `[c](http://x)` [[d](http://x)"),
            [("d", "http://x")]
        );
    }

    #[test]
    fn emphasis_is_between_markers_at_word_edges() {
        fn spans(t: &str) -> Vec<(&str, Emphasis)> {
            emphasis_spans(t, &[])
                .into_iter()
                .map(|e| (&t[e.range], e.kind))
                .collect()
        }
        use Emphasis::*;
        assert_eq!(
            spans("*Urgent*: the _new_ price is ~10~ 12 EUR."),
            [("*Urgent*", Bold), ("_new_", Italic), ("~10~", Struck)]
        );
        // As typed: inside words and numbers, around spaces, across lines, empty.
        assert_eq!(spans("snake_case_name and 2*3*4"), []);
        assert_eq!(spans("~ 5 min ~ and * not *"), []);
        assert_eq!(spans("*half\nline*"), []);
        assert_eq!(spans("** and __"), []);
        assert_eq!(spans("a*b* c"), []);
        // Nested, never crossed.
        assert_eq!(spans("*_both_*"), [("*_both_*", Bold), ("_both_", Italic)]);
        // Markdown's doubled markers, as bots write them.
        assert_eq!(
            spans("**Build failed** on ~~main~~ __today__, _not **this**_"),
            [
                ("**Build failed**", Bold),
                ("~~main~~", Struck),
                ("__today__", Bold),
                ("_not **this**_", Italic),
                ("**this**", Bold)
            ]
        );
        assert_eq!(spans("***"), []);
        assert_eq!(spans("**half*"), []);
        assert_eq!(spans("*a _b* c_"), [("*a _b*", Bold)]);
        // After brackets and quotes, before punctuation; Arabic too.
        assert_eq!(
            spans("(*yes*), \"_no_\""),
            [("*yes*", Bold), ("_no_", Italic)]
        );
        assert_eq!(spans("*مهم*، الآن"), [("*مهم*", Bold)]);
        // Not in code or links.
        let t = "see `a*b*c` and *this*";
        let code = code_spans(t);
        assert_eq!(
            emphasis_spans(t, &code)
                .into_iter()
                .map(|e| &t[e.range])
                .collect::<Vec<_>>(),
            ["*this*"]
        );
        assert_eq!(
            without_markers("*Urgent*: `a*b*` and _new_ ~10~ **CI** https://wiki.test/Foo_(_bar_)"),
            "Urgent: `a*b*` and new 10 CI https://wiki.test/Foo_(_bar_)"
        );
        assert_eq!(
            without_markers("**Build failed**: [logs](http://ci/42)\n> *quoted*\n- item"),
            "Build failed: logs\n> quoted\n- item"
        );
        let t = "see https://wiki.test/Foo_(_bar_) now";
        assert_eq!(spans(t), [("_bar_", Italic)]);
        let links: Vec<_> = majlis_core::search::text::links(t).collect();
        assert_eq!(emphasis_spans(t, &links), []);
    }

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

    /// Brackets in right-to-left text open toward their content (rule L4): Hebrew keeps
    /// the letters as they are, so the visual string shows it exactly.
    #[test]
    fn brackets_in_right_to_left_text_are_mirrored() {
        assert_eq!(visual("שלום (עולם)"), "(םלוע) םולש");
        assert_eq!(visual("א [ב] <ג> «ד»"), "«ד» <ג> [ב] א");
        // Around a Latin word in right-to-left text they still enclose it; in left-to-right
        // text they stay as typed.
        assert_eq!(visual("שלום (INV-42)"), "(INV-42) םולש");
        assert_eq!(visual("see (INV-42) שלום"), "see (INV-42) םולש");
        // A right-to-left mark makes a line that starts with Latin a right-to-left one,
        // and is not drawn.
        assert_eq!(visual("\u{200F}v6 · שלום"), "םולש · v6");
        assert_eq!(visual("v6 · שלום"), "v6 · םולש");
        // A value isolated (FSI … PDI) keeps its own order: a path stays a path.
        assert_eq!(visual("שלום: \u{2068}/tmp/x\u{2069}"), "/tmp/x :םולש");
        assert_eq!(visual("שלום: /tmp/x"), "tmp/x/ :םולש");
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

    /// What the composer's layouter makes of `buf` (see `chat.rs`).
    fn composer_row(buf: &str) -> egui::epaint::text::Row {
        let ctx = egui::Context::default();
        crate::fonts::install(&ctx);
        let mut out = ctx.run_ui(Default::default(), |_| {});
        out.textures_delta.clear();
        let job = egui::text::LayoutJob::simple(
            for_egui(buf).into_owned(),
            egui::FontId::proportional(14.0),
            egui::Color32::WHITE,
            f32::INFINITY,
        );
        let g = logical_galley(ctx.fonts_mut(|f| f.layout_job(job)), buf);
        (*g.rows[0].row).clone()
    }

    #[test]
    fn the_cursor_moves_through_arabic_in_reading_order() {
        // سلام: four letters, the middle two one lam-alef ligature. In logical order the
        // cursor moves right to left, and the end is at the left.
        let r = composer_row("سلام");
        assert_eq!(r.glyphs.len(), 4, "one place per letter of the text");
        let xs: Vec<f32> = r.glyphs.iter().map(|g| g.pos.x).chain([r.size.x]).collect();
        assert!(xs.windows(2).all(|w| w[0] > w[1]), "{xs:?}");
        assert_eq!(
            boundary_at(&r, xs[4] - 1.0),
            4,
            "a click left of it: the end"
        );
        assert_eq!(boundary_at(&r, xs[0] + 1.0), 0, "right of it: the start");
    }

    #[test]
    fn latin_then_arabic_keeps_each_in_its_order() {
        // "abc سلام" (a left-to-right paragraph): a b c space left to right, then the Arabic
        // word to their right, its letters right to left.
        let r = composer_row("abc سلام");
        assert_eq!(r.glyphs.len(), 8);
        let x: Vec<f32> = r.glyphs.iter().map(|g| g.pos.x).collect();
        assert!(x[0] < x[1] && x[1] < x[2] && x[2] < x[3], "{x:?}");
        assert!(
            x[4] > x[5] && x[5] > x[6] && x[6] > x[7] && x[7] > r.size.x,
            "{x:?}"
        );
        assert!(
            r.size.x > x[3],
            "the end is right of the space: {x:?} end {}",
            r.size.x
        );
    }
}
