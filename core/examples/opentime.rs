//! How long a data directory with many messages takes to open:
//! `cargo run --release -p majlis-core --example opentime -- 200000`.
use majlis_core::Profile;
use std::time::Instant;

fn main() -> majlis_core::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a");
    {
        let p = Profile::init(&path, "a")?;
        p.org_create("bench")?;
        let chain = p.chain()?;
        for i in 0..n {
            p.compose(&chain, "general", &format!("message {i}"))?;
        }
        p.store().flush()?;
    }
    let t = Instant::now();
    let p = Profile::open(&path)?;
    let open = t.elapsed();
    let t = Instant::now();
    let h = p.store().history("general", 50)?;
    println!(
        "{n} messages: open {:.0} ms, last 50 {:.1} ms ({})",
        open.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3,
        h.len()
    );
    Ok(())
}
