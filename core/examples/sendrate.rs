//! How fast one node acknowledges durable sends with no network: `cargo run --release -p
//! majlis-core --example sendrate`. Separates storage cost from network cost.
use majlis_core::{Config, Node, Profile};
use std::time::Instant;

#[tokio::main]
async fn main() -> majlis_core::Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Profile::init(&dir.path().join("a"), "a")?;
    p.org_create("bench")?;
    let cfg = Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
        peers: vec![],
        mdns: false,
        ..Default::default()
    };
    let chain = p.chain()?;
    let t = Instant::now();
    for i in 0..5000 {
        p.compose(&chain, "general", &format!("warmup {i}"))?;
    }
    let c = t.elapsed().as_secs_f64();
    let t = Instant::now();
    p.store().flush()?;
    println!(
        "compose without flush: {:.0}/s; one flush of 5000: {:.1} ms",
        5000.0 / c,
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    for i in 0..200 {
        p.compose(&chain, "general", &format!("single {i}"))?;
        p.store().flush()?;
    }
    println!(
        "compose+flush each: {:.0}/s",
        200.0 / t.elapsed().as_secs_f64()
    );
    let node = Node::start(p, cfg).await?;
    let n = 20_000;
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        while set.len() >= 512 {
            set.join_next().await.expect("task").expect("join")?;
        }
        let node = node.clone();
        set.spawn(async move { node.send("general", &format!("message {i}")).await });
    }
    while let Some(r) = set.join_next().await {
        r.expect("join")?;
    }
    let secs = t.elapsed().as_secs_f64();
    let s = node.stats().await?;
    println!(
        "{n} durable sends in {secs:.2} s = {:.0}/s; {} flushes, {:.1} writes/flush",
        n as f64 / secs,
        s.flushes,
        s.flushed_writes as f64 / s.flushes as f64
    );
    node.shutdown().await
}
