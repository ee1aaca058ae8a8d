//! A system font for Arabic, Persian and Hebrew, found at run time.
//!
//! egui's bundled fonts have no Arabic or Hebrew glyphs, and we do not ship font files. The
//! shaping in [`crate::text`] produces Arabic presentation forms, so the font must map those
//! code points. We look for well-known fonts by file name first (cheap: no file is read),
//! then check candidates' character maps with `ttf-parser`, and add the first that covers
//! what we need as a fallback after egui's own fonts.

use std::path::{Path, PathBuf};

use eframe::egui;

/// Code points a usable font must map: beh, beh initial form, lam-alef ligature, alef
/// (Arabic); peh final form (Persian); alef (Hebrew).
const REQUIRED: [char; 5] = ['\u{0628}', '\u{FE91}', '\u{FEFB}', '\u{0627}', '\u{05D0}'];

/// Preferred files, best first.
const PREFERRED: [&str; 8] = [
    "DejaVuSans.ttf",
    "NotoSansArabic-Regular.ttf",
    "NotoNaskhArabic-Regular.ttf",
    "FreeSans.ttf",
    "arial.ttf",
    "Arial.ttf",
    "tahoma.ttf",
    "segoeui.ttf",
];

fn font_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = [
        "/usr/share/fonts",
        "/usr/local/share/fonts",
        "/System/Library/Fonts",
        "/Library/Fonts",
        "C:\\Windows\\Fonts",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        dirs.push(home.join(".local/share/fonts"));
        dirs.push(home.join(".fonts"));
    }
    dirs
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && depth < 6 {
            walk(&p, out, depth + 1);
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| x.eq_ignore_ascii_case("ttf") || x.eq_ignore_ascii_case("otf"))
        {
            out.push(p);
        }
    }
}

/// Whether the font data maps every required code point.
pub fn covers_rtl(data: &[u8]) -> bool {
    ttf_parser::Face::parse(data, 0)
        .is_ok_and(|f| REQUIRED.iter().all(|c| f.glyph_index(*c).is_some()))
}

/// The font files of the system's font directories (walked once at start).
fn system_font_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for d in font_dirs() {
        walk(&d, &mut files, 0);
    }
    files
}

fn file_name(p: &Path) -> &str {
    p.file_name().and_then(|n| n.to_str()).unwrap_or_default()
}

/// The first of `files` named in `names` (in that order of preference) whose data `ok`
/// accepts: its path and bytes.
fn first_named(
    files: &[PathBuf],
    names: &[&str],
    ok: impl Fn(&[u8]) -> bool,
) -> Option<(PathBuf, Vec<u8>)> {
    let mut named: Vec<(usize, &PathBuf)> = files
        .iter()
        .filter_map(|p| Some((names.iter().position(|n| *n == file_name(p))?, p)))
        .collect();
    named.sort_by_key(|(rank, _)| *rank);
    named.into_iter().find_map(|(_, p)| {
        let data = std::fs::read(p).ok()?;
        ok(&data).then(|| (p.clone(), data))
    })
}

/// The path and bytes of the best of `files` covering Arabic and Hebrew, if any.
fn find_rtl_font(mut files: Vec<PathBuf>) -> Option<(PathBuf, Vec<u8>)> {
    let rank = |p: &PathBuf| {
        let name = file_name(p);
        PREFERRED.iter().position(|f| *f == name).unwrap_or(
            PREFERRED.len() + usize::from(name.contains("Bold") || name.contains("Italic")),
        )
    };
    files.sort_by_key(rank);
    // Read at most a few dozen files: a system with thousands of fonts must still start fast.
    files.into_iter().take(64).find_map(|p| {
        let data = std::fs::read(&p).ok()?;
        covers_rtl(&data).then_some((p, data))
    })
}

/// Emoji fonts with outline glyphs (egui draws outlines, not the bitmaps of colour-emoji
/// fonts), best first: Symbola (Debian/Ubuntu `fonts-symbola`), Noto Emoji, Segoe UI Emoji
/// (Windows; its colour layers sit on outlines), OpenMoji's outline build.
const EMOJI: [&str; 5] = [
    "Symbola_hint.ttf",
    "Symbola.ttf",
    "NotoEmoji-Regular.ttf",
    "seguiemj.ttf",
    "OpenMoji-black-glyf.ttf",
];

/// Whether the font maps the emoji reactions use most.
pub fn covers_emoji(data: &[u8]) -> bool {
    ttf_parser::Face::parse(data, 0).is_ok_and(|f| {
        ['👍', '🎉', '😂']
            .iter()
            .all(|c| f.glyph_index(*c).is_some())
    })
}

/// Bold faces of common sans-serif fonts, best first (egui has no bold of its own).
const BOLD: [&str; 6] = [
    "DejaVuSans-Bold.ttf",
    "NotoSans-Bold.ttf",
    "FreeSansBold.ttf",
    "LiberationSans-Bold.ttf",
    "arialbd.ttf",
    "segoeuib.ttf",
];

/// The family `*bold*` text is drawn in: a system bold face, then the body's fonts (with
/// none installed, bold text is drawn in the body's face, and only its colour sets it apart).
pub fn bold() -> egui::FontFamily {
    egui::FontFamily::Name("bold".into())
}

/// Add the RTL font, then an emoji font, as fallbacks to every family, and the bold family
/// ([`bold`]). Returns the RTL font used, or `None` (then Arabic shows as boxes, and the
/// diagnostics view says which package to install). Without an emoji font, reactions show
/// as boxes.
pub fn install(ctx: &egui::Context) -> Option<PathBuf> {
    let files = system_font_files();
    let emoji = first_named(&files, &EMOJI, covers_emoji);
    let bold_face = first_named(&files, &BOLD, |d| ttf_parser::Face::parse(d, 0).is_ok());
    let rtl = find_rtl_font(files);
    let mut fonts = egui::FontDefinitions::default();
    let body = fonts.families[&egui::FontFamily::Proportional].clone();
    let mut bold_family = Vec::new();
    if let Some((path, data)) = bold_face {
        // Common bold faces run wider than egui's light body face: drawn a little smaller,
        // a bold word keeps the line's size.
        let tweak = egui::FontTweak {
            scale: 0.9,
            ..Default::default()
        };
        fonts.font_data.insert(
            "bold".into(),
            std::sync::Arc::new(egui::FontData::from_owned(data).tweak(tweak)),
        );
        bold_family.push("bold".to_string());
        tracing::info!("font for bold: {}", path.display());
    }
    bold_family.extend(body);
    fonts.families.insert(bold(), bold_family);
    for (name, found) in [("rtl", &rtl), ("emoji", &emoji)] {
        if let Some((path, data)) = found {
            fonts.font_data.insert(
                name.into(),
                std::sync::Arc::new(egui::FontData::from_owned(data.clone())),
            );
            for family in fonts.families.values_mut() {
                family.push(name.into());
            }
            tracing::info!("font for {name}: {}", path.display());
        }
    }
    ctx.set_fonts(fonts);
    rtl.map(|(p, _)| p)
}
