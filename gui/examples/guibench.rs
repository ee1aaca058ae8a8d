//! GUI figures for docs/benchmarks.md, on a channel of N stored messages (default 100 000):
//!
//! 1. cold start to first frame of the real release binary under Xvfb (software GL), with
//!    the process's idle CPU afterwards;
//! 2. frame time while scrolling up through the channel, measured with egui_kittest (the
//!    app's whole frame: event handling, history paging, layout and tessellation; no GPU).
//!
//! cargo build --release -p majlis-gui && cargo run --release -p majlis-gui --example guibench

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
}
