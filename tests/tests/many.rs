//! Many nodes on one namespace LAN: 30 real `majlisd` processes (the CI-sized version of the
//! 100-node benchmark in issue 11). Every node finds every other over mDNS, and a message
//! from any node reaches all of them. Needs root (CI runs it as root).

use std::time::Instant;

use majlis_tests::{netns_available, wait_until, Daemon, Lan};

const N: usize = 30;

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn thirty_nodes_find_each_other_and_every_message_reaches_all() {
    if !netns_available("thirty_nodes") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("m", N).unwrap();
    let mut nodes: Vec<Daemon> = (0..N)
        .map(|i| Daemon::new(&bin, tmp.path(), &format!("m{i:02}")))
        .collect();
    nodes[0].ok(&["init", "--name", "m00"]);
    let org = nodes[0].ok(&["org", "create", "--name", "acme"]);
    for i in 1..N {
        let name = nodes[i].name.clone();
        let id = nodes[i].ok(&["init", "--name", &name]);
        nodes[i].ok(&["org", "join", &org]);
        nodes[0].ok(&["roster", "add", "--name", &name, "--device", &id]);
    }
    let t0 = Instant::now();
    for (i, n) in nodes.iter_mut().enumerate() {
        n.start(&lan, i, &[]);
    }
    for n in &nodes {
        wait_until(&format!("{} connected to all", n.name), 90, || {
            n.peers().len() == N - 1
        });
    }
    let connected = t0.elapsed();
    let mut ids = Vec::new();
    let t1 = Instant::now();
    for i in [0, N / 2, N - 1] {
        ids.push(nodes[i].ok(&["send", "general", &format!("hello from {i}")]));
    }
    for n in &nodes {
        wait_until(&format!("{} got the 3 messages", n.name), 60, || {
            let h = n.history("general");
            ids.iter().all(|id| h.iter().any(|m| m["id"] == *id))
        });
    }
    let delivered = t1.elapsed();
    let first: Vec<serde_json::Value> = nodes[0].history("general");
    for n in &nodes[1..] {
        assert_eq!(
            n.history("general"),
            first,
            "{} shows another order",
            n.name
        );
    }
    let rss: Vec<u64> = nodes.iter().filter_map(|n| n.pid()).map(rss_kb).collect();
    let max_rss = rss.iter().max().copied().unwrap_or(0);
    let dups: u64 = nodes
        .iter()
        .map(|n| n.stats()["duplicates"].as_u64().unwrap_or(0))
        .sum();
    println!(
        "{N} nodes: all connected to all after {:.1} s; 3 messages at all {N} after {:.2} s; \
         duplicate deliveries {:.1} per message per node; max RSS {} MB (debug build)",
        connected.as_secs_f64(),
        delivered.as_secs_f64(),
        dups as f64 / (3 * N) as f64,
        max_rss / 1024
    );
    for n in &mut nodes {
        n.stop();
    }
}
