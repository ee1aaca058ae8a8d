//! The catch-up requester's store path without a network: COUNT sealed messages of one
//! author, admitted into a fresh store in answers of `sync::MAX_BATCH` (intake's dedupe,
//! then steps 3 to 5: roster rules, chain checks, store, render), next to the batch
//! verification of the same messages in the same run. What a catch-up's event loop does per
//! message, minus the swarm; the signature check runs on another thread there, so the two
//! figures are the two stages of that pipeline. Composing (the sender's side: sign, seal,
//! store) is timed too.
//!
//!     cargo run --release -p majlis-core --example intakebench [COUNT]

/// The binaries' allocator (`majlisd`, the app): the store's cost depends on it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use majlis_core::proto::intake::{decide, duplicates, Origin, Verdict};
use majlis_core::{message, sync, Envelope};

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args().nth(1).map_or(Ok(100_000), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let ((a, chain), (b, bc)) = common::two_members(dir.path())?;

    let t = Instant::now();
    let mut envs: Vec<Envelope> = Vec::with_capacity(count + 1);
    for i in 0..count {
        envs.extend(a.compose(
            &chain,
            "general",
            &format!("seeded message number {i} with a typical short text"),
        )?);
    }
    let compose = t.elapsed().as_secs_f64();

    let t = Instant::now();
    for chunk in envs.chunks(sync::MAX_BATCH) {
        assert!(message::verify_batch(chunk).iter().all(|&ok| ok));
    }
    let verify = t.elapsed().as_secs_f64();

    let store = b.store().clone();
    let head = bc.head().expect("roster");
    let now = majlis_core::now_ms();
    let t = Instant::now();
    let mut accepted = 0;
    for chunk in envs.chunks(sync::MAX_BATCH) {
        let dup = duplicates(&store, chunk);
        let ok = vec![true; chunk.len()];
        let mut log = store.clone();
        for (env, v) in chunk.iter().zip(decide(
            &mut log,
            Some(head),
            chunk,
            &dup,
            &ok,
            Origin::Sync,
            now,
        )) {
            // The key grant opens the rest, as `Runner::settle` does.
            b.absorb(env)?;
            accepted += matches!(v, Verdict::Accepted { .. }) as usize;
        }
    }
    let admit = t.elapsed().as_secs_f64();
    let t = Instant::now();
    store.flush()?;
    let flush = t.elapsed().as_secs_f64();
    assert_eq!(accepted, envs.len(), "every message admitted");

    let per = |s: f64| s * 1e6 / envs.len() as f64;
    println!(
        "{} messages: compose (sign, seal, store) {:.1} µs each; batch-verify {:.1} µs each; admit and store {:.1} µs each, {:.2}× batch-verify; one flush after it {:.1} ms",
        envs.len(),
        per(compose),
        per(verify),
        per(admit),
        admit / verify,
        flush * 1e3
    );
    Ok(())
}
