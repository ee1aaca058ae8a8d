//! Governance at scale: `cargo run --release -p majlis-core --example govbench -- 1000000`.
//!
//! Writes N real messages (signed, sealed end to end, stored sealed), then
//! 1. exports all of them as JSON (`Profile::export`): rate and peak RSS growth; baseline in
//!    the same run: reading and opening every record without writing anything;
//! 2. moves the clock two days on, sets a one-day retention and sweeps them all away
//!    (`Store::sweep`): time, against the same read baseline; meanwhile another thread
//!    reads the newest page of the channel over and over, as the app and catch-up would,
//!    and its latency is reported (before and during the sweep).
use std::time::{Duration, Instant};

use majlis_core::export::{Format, Scope, Spec};
use majlis_core::roster::{Keep, RosterChange};
use majlis_core::Profile;

fn status(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Reset the peak RSS (VmHWM) so the next phase's peak is its own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(0.0)
}

/// Read the newest page of `general` until `stop`; latencies in ms.
fn pager(p: &Profile, stop: &std::sync::atomic::AtomicBool) -> Vec<f64> {
    let mut out = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let t = Instant::now();
        let _ = p.store().history("general", 50);
        out.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(5));
    }
    out
}

fn main() -> majlis_core::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Profile::init(&dir.path().join("a"), "amina")?;
    p.org_create("bench")?;
    let chain = p.chain()?;
    let t = Instant::now();
    for i in 0..n {
        let text = if i % 2 == 0 {
            format!("message {i}: the quarterly report is due on Thursday, please review")
        } else {
            format!("الرسالة {i}: تقرير الربع السنوي مطلوب يوم الخميس، يرجى المراجعة")
        };
        p.compose(&chain, "general", &text)?;
    }
    p.store().flush()?;
    println!(
        "wrote {n} messages in {:.1} s ({:.0} msg/s), store {:.0} MB",
        t.elapsed().as_secs_f64(),
        n as f64 / t.elapsed().as_secs_f64(),
        p.store().size_on_disk() as f64 / 1e6
    );
    std::thread::sleep(Duration::from_secs(3));

    // Baseline: open every record (what both an export and a sweep must do at least).
    let t = Instant::now();
    let mut seen = 0u64;
    p.store().each_message("general", 0, u64::MAX, |_| {
        seen += 1;
        Ok(())
    })?;
    let read = t.elapsed().as_secs_f64();
    println!(
        "baseline: read and open {seen} records in {read:.2} s ({:.0} msg/s)",
        seen as f64 / read
    );

    // 1. Export.
    let out = dir.path().join("export");
    let rss0 = status("VmRSS:");
    reset_peak();
    let t = Instant::now();
    let m = p.export(&Spec {
        scope: Scope::All,
        from: None,
        to: None,
        format: Format::Json,
        out: out.clone(),
    })?;
    let secs = t.elapsed().as_secs_f64();
    let bytes: u64 = m.files.iter().map(|f| f.bytes).sum();
    println!(
        "export json: {} messages in {secs:.2} s ({:.0} msg/s, {:.2}x the read baseline), {:.0} MB written, peak RSS +{} MB over {} MB",
        m.counts.messages,
        m.counts.messages as f64 / secs,
        secs / read,
        bytes as f64 / 1e6,
        status("VmHWM:").saturating_sub(rss0) / 1024,
        rss0 / 1024
    );
    let _ = std::fs::remove_dir_all(&out);

    // 2. Retention sweep, with a reader paging the channel meanwhile.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let before = std::thread::scope(|s| {
        let h = s.spawn(|| pager(&p, &stop));
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        h.join().expect("pager")
    });
    majlis_core::set_clock_offset_ms(2 * majlis_core::governance::DAY_MS as i64);
    let mut chain = p.chain()?;
    p.change_roster(
        &mut chain,
        &RosterChange::SetRetention {
            scope: majlis_core::roster::Scope::Org,
            keep: Keep {
                days: Some(1),
                files_days: None,
            },
        },
    )?;
    let g = chain.head().expect("a roster").roster.governance.clone();
    stop.store(false, std::sync::atomic::Ordering::Relaxed);
    let (swept, secs, during) = std::thread::scope(|s| {
        let h = s.spawn(|| pager(&p, &stop));
        let t = Instant::now();
        let swept = p.store().sweep(&g, majlis_core::now_ms());
        let _ = p.store().flush();
        let secs = t.elapsed().as_secs_f64();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (swept, secs, h.join().expect("pager"))
    });
    let swept = swept?;
    let (mut before, mut during) = (before, during);
    println!(
        "sweep: {} expired of {} looked at in {secs:.2} s ({:.0} msg/s, {:.2}x the read baseline); store {:.0} MB after",
        swept.expired.len(),
        swept.scanned,
        swept.scanned as f64 / secs,
        secs / read,
        p.store().size_on_disk() as f64 / 1e6
    );
    println!(
        "newest page (50) while idle: p50 {:.2} ms, p99 {:.2} ms; during the sweep: p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms ({} reads)",
        pct(&mut before, 0.5),
        pct(&mut before, 0.99),
        pct(&mut during, 0.5),
        pct(&mut during, 0.99),
        pct(&mut during, 1.0),
        during.len()
    );
    // A second sweep finds nothing new: incremental.
    let t = Instant::now();
    let again = p.store().sweep(&g, majlis_core::now_ms())?;
    println!(
        "second sweep: {} looked at in {:.1} ms",
        again.scanned,
        t.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
