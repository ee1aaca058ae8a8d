//! GUI figures for docs/benchmarks.md, on a channel of N stored messages (default 100 000):
//!
//! 1. cold start to first frame of the real release binary under Xvfb (software GL), with
//!    the process's idle CPU afterwards;
//! 2. frame time while scrolling up through the channel, measured with egui_kittest (the
//!    app's whole frame: event handling, history paging, layout and tessellation; no GPU);
//! 3. how long a shared picture takes to decode for its preview and for the viewer (off the
//!    UI thread), against reading the same file's bytes (the floor).
//!
//! cargo build --release -p majlis-gui && cargo run --release -p majlis-gui --example guibench
//! (`guibench pictures`: part 3 alone)

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use majlis_gui::{MajlisApp, Options, State};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("pictures") {
        return pictures();
    }
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let tmp = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let data = support::seed(tmp.path(), n);
    println!(
        "seeded {n} messages in #general in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // 1. The real binary: it sits next to this example's directory in target/release.
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("majlis"))
        .filter(|p| p.exists());
    match (support::Xvfb::start(), bin) {
        (Some(x), Some(bin)) => {
            let mut starts = Vec::new();
            for _ in 0..3 {
                let app = support::App::start(&bin, &x.display, &data, &["--open", "#general"]);
                starts.push(app.first_frame_ms as f64);
                std::thread::sleep(Duration::from_secs(2));
                let before = app.cpu_seconds();
                std::thread::sleep(Duration::from_secs(10));
                println!(
                    "cold start → first frame: {} ms; idle CPU over 10 s: {:.2} %",
                    app.first_frame_ms,
                    (app.cpu_seconds() - before) * 10.0
                );
            }
            println!(
                "cold start median: {:.0} ms (target ≤ 1000)",
                pct(&mut starts, 0.5)
            );
        }
        _ => println!("skipped the real-binary part: needs Xvfb and target/release/majlis"),
    }

    // 2. Scrolling, frame by frame.
    let opts = Options {
        data: data.clone(),
        config: majlis_core::Config {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            peers: vec![],
            mdns: false,
            ..Default::default()
        },
        open: Some("#general".into()),
        lang: None,
        theme: None,
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1000.0, 680.0))
        .build_ui_state(
            move |ui, app: &mut Option<MajlisApp>| {
                app.get_or_insert_with(|| MajlisApp::new(ui.ctx(), opts.clone(), State::default()))
                    .frame(ui);
            },
            None,
        );
    h.run_steps(5);
    h.event(egui::Event::PointerMoved(egui::pos2(600.0, 300.0)));
    let mut times = Vec::new();
    let frames: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1500);
    for _ in 0..frames {
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, 400.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: egui::Modifiers::NONE,
        });
        let t = Instant::now();
        h.step();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if std::env::var_os("GUIBENCH_TRACE").is_some() && times.len() % 100 == 0 {
            eprintln!(
                "frame {}: {} rows loaded",
                times.len(),
                h.state().as_ref().map_or(0, |a| a.loaded_rows())
            );
        }
    }
    let loaded = h.state().as_ref().map_or(0, |a| a.loaded_rows());
    println!(
        "scrolling up {frames} frames of 400 px ({loaded} of {n} messages paged in by then): frame time p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target ≤ 16)",
        pct(&mut times.clone(), 0.5),
        pct(&mut times.clone(), 0.99),
        pct(&mut times, 1.0),
    );
    pictures();
}

/// Part 3: a 1920 × 1080 screenshot (PNG: flat panels and lines of "text") and a
/// 12-megapixel photo (JPEG, quality 85: gradients and grain), decoded to the preview's size
/// and to the viewer's, median of 5, against decoding alone (`image::load_from_memory`, no
/// limits, no scaling) as the baseline.
fn pictures() {
    use majlis_gui::app::preview::{decode, LARGE, THUMB};
    let shot = image::RgbImage::from_fn(1920, 1080, |x, y| {
        let text = (y % 24) < 12 && (x / 7 + y / 24) % 5 != 0 && (200..1800).contains(&x);
        match (x < 300, text) {
            (true, _) => image::Rgb([40, 44, 52]),
            (_, true) => image::Rgb([220, 220, 220]),
            _ => image::Rgb([28, 30, 36]),
        }
    });
    let mut grain: u32 = 7;
    let photo = image::RgbImage::from_fn(4000, 3000, |x, y| {
        grain = grain.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (grain >> 24) as u8 / 8;
        image::Rgb([
            (x * 255 / 4000) as u8 / 2 + n,
            (y * 255 / 3000) as u8 / 2 + n,
            120 + n,
        ])
    });
    let encode = |img: image::RgbImage, format| {
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut out), format)
            .unwrap();
        out
    };
    for (what, bytes) in [
        (
            "screenshot 1920×1080 PNG",
            encode(shot, image::ImageFormat::Png),
        ),
        (
            "photo 4000×3000 JPEG",
            encode(photo, image::ImageFormat::Jpeg),
        ),
    ] {
        let median = |f: &dyn Fn()| {
            let mut t: Vec<f64> = (0..5)
                .map(|_| {
                    let s = Instant::now();
                    f();
                    s.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            pct(&mut t, 0.5)
        };
        let base = median(&|| drop(image::load_from_memory(&bytes).unwrap()));
        let preview = median(&|| drop(decode(&bytes, THUMB).unwrap()));
        let viewer = median(&|| drop(decode(&bytes, LARGE).unwrap()));
        println!(
            "{what} ({} KiB): preview {preview:.1} ms ({:.2}× decoding alone, {base:.1} ms), viewer {viewer:.1} ms ({:.2}×)",
            bytes.len() / 1024,
            preview / base,
            viewer / base,
        );
    }
}
