//! One sender and one receiver node in one process over loopback: how fast messages are
//! verified and durably stored at the receiver, sealed end to end or (with
//! `MAJLIS_BENCH_PLAINTEXT=1` for the sender) as plaintext. For profiling the message path
//! without a namespace LAN:
//!
//!     cargo run --release -p majlis-core --example pipeline [COUNT]
//!     perf record -g target/release/examples/pipeline 20000

use std::time::{Duration, Instant};

use majlis_core::{Config, Event, Node};

mod common;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args().nth(1).map_or(Ok(20_000), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let ((a, _), (b, _)) = common::two_members(dir.path())?;
    let cfg = |peers| Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
        peers,
        mdns: false,
        ..Default::default()
    };
    let bn = Node::start(b, cfg(vec![])).await?;
    let addr = bn.listen_addrs().await?[0].clone();
    let an = Node::start(a, cfg(vec![addr])).await?;
    let mut ev = bn.subscribe();
    while an.peers().await?.is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sender = an.clone();
    let t = Instant::now();
    tokio::spawn(async move {
        let mut set: tokio::task::JoinSet<majlis_core::Result<majlis_core::MessageId>> =
            tokio::task::JoinSet::new();
        for i in 0..count {
            while set.len() >= 512 {
                set.join_next()
                    .await
                    .expect("task")
                    .expect("join")
                    .expect("sent");
            }
            let n = sender.clone();
            set.spawn(async move {
                n.send("general", &format!("message {i} of the benchmark"))
                    .await
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("join").expect("sent");
        }
    });
    let mut got = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while got < count {
        match tokio::time::timeout_at(deadline, ev.recv()).await {
            Ok(Ok(Event::Message(_))) => got += 1,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("receiver: {e}").into()),
            Err(_) => break,
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let st = bn.stats().await?;
    println!(
        "{}: {got} of {count} received in {secs:.2} s = {:.0} msg/s (synced {})",
        if std::env::var("MAJLIS_BENCH_PLAINTEXT").as_deref() == Ok("1") {
            "plaintext"
        } else {
            "sealed"
        },
        got as f64 / secs,
        st.synced
    );
    an.shutdown().await?;
    bn.shutdown().await?;
    Ok(())
}
