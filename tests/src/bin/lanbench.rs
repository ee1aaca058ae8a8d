//! The multi-node benchmark: real nodes in network namespaces, each figure next to a baseline
//! measured in the same run. Needs root. Run with:
//!
//!     cargo run --release -p majlis-tests --bin lanbench
//!
//! Internally it re-executes itself inside the namespaces (`lanbench node …`,
//! `lanbench echo-server …`, `lanbench echo-client …`).

/// mimalloc, as every Majlis binary: sled's node copies and the per-message records made
/// glibc's malloc a quarter of the event loop's time (docs/benchmarks.md, session 61).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use majlis_core::proto::neighbours;
use majlis_core::{Config, Event, Node, Profile, RosterChange};
use majlis_tests::Lan;

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

const MODES: &str = "modes: (none: the whole run), sync [N], many [N], lossy, \
     latency [NODES] [ROUNDS] [SETTLE_MS], sustained [ROUNDS]";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => orchestrate(),
        Some("sync") => sync_bench(args.get(1).map_or(Ok(1_000_000), |s| s.parse())?),
        Some("many") => many_bench(args.get(1).map_or(Ok(100), |s| s.parse())?),
        Some("lossy") => lossy_bench(),
        Some("latency") => latency_bench(
            args.get(1).map_or(Ok(5), |s| s.parse())?,
            args.get(2).map_or(Ok(3), |s| s.parse())?,
            args.get(3).map_or(Ok(SETTLED_MS), |s| s.parse())?,
        ),
        Some("sustained") => sustained_bench(args.get(1).map_or(Ok(3), |s| s.parse())?),
        Some("echo-server") => echo_server(&args[1]),
        Some("echo-client") => echo_client(&args[1], args[2].parse()?),
        Some("node") => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(node_role(&args[1..]))
        }
        Some("-h" | "--help") => {
            println!("usage: sudo lanbench [MODE]\n{MODES}\nfigures and how to read them: docs/benchmarks.md");
            Ok(())
        }
        Some(other) => bail!("unknown mode '{other}'; {MODES}"),
    }
}

// ---- raw TCP baseline ------------------------------------------------------------------

fn echo_server(addr: &str) -> Result<()> {
    let l = std::net::TcpListener::bind(addr)?;
    println!("ready");
    std::io::stdout().flush()?;
    let (mut s, _) = l.accept()?;
    s.set_nodelay(true)?;
    let mut buf = [0u8; 100];
    while s.read_exact(&mut buf).is_ok() {
        s.write_all(&buf)?;
    }
    Ok(())
}

fn echo_client(addr: &str, n: usize) -> Result<()> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut buf = [7u8; 100];
    let mut rtts = Vec::with_capacity(n);
    for i in 0..n + 100 {
        let t = Instant::now();
        s.write_all(&buf)?;
        s.read_exact(&mut buf)?;
        if i >= 100 {
            rtts.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    println!(
        "{}",
        serde_json::json!({"p50_us": pct(&mut rtts, 0.5), "p99_us": pct(&mut rtts, 0.99)})
    );
    Ok(())
}

// ---- one node inside a namespace ---------------------------------------------------------

/// `node DIR send COUNT INTERVAL_US PEERS INFLIGHT` or `node DIR recv COUNT TIMEOUT_S`.
async fn node_role(args: &[String]) -> Result<()> {
    // `MAJLIS_LOG=majlis_core=debug sudo -E target/release/lanbench ...`: a node's log on
    // stderr, for a run that stalls.
    // With `MAJLIS_LOG_DIR` too, each node writes its own file there (named by its pid),
    // so five nodes' logs are not interleaved.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("MAJLIS_LOG") {
        let fmt = tracing_subscriber::fmt().with_env_filter(filter);
        let _ = match std::env::var_os("MAJLIS_LOG_DIR") {
            Some(d) => {
                let path = PathBuf::from(d).join(format!("{}.log", std::process::id()));
                fmt.with_ansi(false)
                    .with_writer(std::sync::Mutex::new(std::fs::File::create(path)?))
                    .try_init()
            }
            None => fmt.with_writer(std::io::stderr).try_init(),
        };
    }
    let dir = PathBuf::from(&args[0]);
    let node = Node::start(Profile::open(&dir)?, Config::default()).await?;
    let mut events = node.subscribe();
    match args[1].as_str() {
        "send" => {
            let count: usize = args[2].parse()?;
            let interval_us: u64 = args[3].parse()?;
            let peers: usize = args[4].parse()?;
            let inflight: usize = args[5].parse()?;
            let t = Instant::now();
            while node.peers().await?.len() < peers {
                if t.elapsed() > Duration::from_secs(180) {
                    // Why: what this node found and what its dials said.
                    let r = node.diagnose().await?;
                    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
                    for d in &r.devices {
                        if let Some(e) = &d.last_error {
                            *errors.entry(e.chars().take(80).collect()).or_default() += 1;
                        }
                    }
                    eprintln!(
                        "sender: {} mDNS records, {} devices found, {} connected; dial errors: {errors:?}",
                        r.mdns_records,
                        r.devices.iter().filter(|d| !d.found_by.is_empty()).count(),
                        r.devices.iter().filter(|d| d.connected.is_some()).count(),
                    );
                    bail!(
                        "only {} of {peers} peers after 180 s",
                        node.peers().await?.len()
                    );
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Let the receivers' subscriptions arrive (the outbox would cover it, but the
            // latency figures should not include the wait); in an org above the mesh limit,
            // also let the other nodes find their neighbours (argument 7, milliseconds).
            if peers > 0 {
                let settle = args.get(7).map_or(Ok(500), |s| s.parse())?;
                tokio::time::sleep(Duration::from_millis(settle)).await;
            }
            let start = Instant::now();
            let mut set = tokio::task::JoinSet::new();
            for i in 0..count {
                if interval_us > 0 {
                    let due = start + Duration::from_micros(interval_us * i as u64);
                    tokio::time::sleep_until(due.into()).await;
                }
                while set.len() >= inflight {
                    set.join_next().await.unwrap()??;
                }
                let n = node.clone();
                set.spawn(async move { n.send("general", &format!("t={} i={i}", now_ns())).await });
            }
            while let Some(r) = set.join_next().await {
                r??;
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{}",
                serde_json::json!({"sent": count, "secs": secs, "end_ns": now_ns().to_string()})
            );
            // Stay up so late joiners and slow receivers get everything gossiped.
            tokio::time::sleep(Duration::from_secs(
                args.get(6).map_or(Ok(2), |s| s.parse())?,
            ))
            .await;
        }
        // A peer that has been up a while: its search index built (it holds `args[2]`
        // messages) and its mDNS record announced, before anyone asks it for anything.
        // Prints one line when ready, then serves for `args[3]` seconds.
        "serve" => {
            let holds: u64 = args[2].parse()?;
            let t = Instant::now();
            while node.search_stats().await?.messages < holds {
                if t.elapsed() > Duration::from_secs(300) {
                    bail!("the serving node's index did not reach {holds} messages in 300 s");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // mDNS probing takes 0.75 to 1 s from start (RFC 6762 8.1), and mdns-sd answers
            // queries only once its announcement is out: a query 70 ms after probing ended
            // went unanswered here, and the newcomer found us at its own next query, 1 s on.
            tokio::time::sleep(Duration::from_secs(2).saturating_sub(t.elapsed())).await;
            println!(
                "{}",
                serde_json::json!({"ready_ms": t.elapsed().as_millis() as u64})
            );
            tokio::time::sleep(Duration::from_secs(args[3].parse()?)).await;
        }
        "recv" => {
            let count: usize = args[2].parse()?;
            let timeout = Duration::from_secs(args[3].parse()?);
            // With a peer count: also when this node was connected to that many (the
            // many-node bench), and its UDP datagrams (mDNS: nothing else here uses UDP).
            let want_peers: Option<usize> = args.get(4).map(|s| s.parse()).transpose()?;
            let all_connected = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            if let Some(want) = want_peers {
                let (n, flag) = (node.clone(), all_connected.clone());
                tokio::spawn(async move {
                    loop {
                        if n.peers().await.map(|p| p.len()).unwrap_or(0) >= want {
                            flag.store(now_ns() as u64, std::sync::atomic::Ordering::Relaxed);
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                });
            }
            let mut lat = Vec::with_capacity(count);
            let mut sent = Vec::with_capacity(count);
            let (mut first, mut last, mut connected) = (0u128, 0u128, 0u128);
            let mut cpu_first = 0;
            let started = now_ns();
            let deadline = tokio::time::Instant::now() + timeout;
            while lat.len() < count {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Ok(Event::Message(m))) => {
                        let now = now_ns();
                        let t: u128 = m
                            .text
                            .split_whitespace()
                            .next()
                            .and_then(|s| s.strip_prefix("t="))
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(now);
                        if first == 0 {
                            first = now;
                            cpu_first = cpu_ms();
                        }
                        last = now;
                        lat.push((now - t) as f64 / 1e3);
                        sent.push(t);
                    }
                    Ok(Ok(Event::PeerConnected { .. })) if connected == 0 => connected = now_ns(),
                    Ok(Ok(_)) => {}
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => {
                        bail!("receiver lagged by {n} events")
                    }
                    Ok(Err(e)) => bail!("{e}"),
                    Err(_) => break,
                }
            }
            let n = lat.len();
            let cpu_run = cpu_ms().saturating_sub(cpu_first);
            // `MAJLIS_BENCH_DUMP=DIR`: each receiver writes when each message was sent and
            // its latency (`SENT_NS LATENCY_US` a line) to DIR/PID.lat, to see whether the
            // slow ones come together (a flush, a commit, a catch-up round) or alone.
            if let Some(dir) = std::env::var_os("MAJLIS_BENCH_DUMP") {
                let path = PathBuf::from(dir).join(format!("{}.lat", std::process::id()));
                let lines: String = sent
                    .iter()
                    .zip(&lat)
                    .map(|(t, l)| format!("{t} {l:.0}\n"))
                    .collect();
                std::fs::write(path, lines)?;
            }
            // Connections when the last message arrived (later, other receivers are gone).
            let peers = node.peers().await?.len();
            // Stay a minute more, idle, for the mDNS traffic of a settled network.
            let mut udp_per_min = 0u64;
            if want_peers.is_some() {
                let before = udp_out();
                tokio::time::sleep(Duration::from_secs(60)).await;
                udp_per_min = udp_out().saturating_sub(before);
            }
            let cpu = cpu_ms();
            let st = node.stats().await?;
            let lat_max = lat.iter().cloned().fold(0.0, f64::max);
            println!(
                "{}",
                serde_json::json!({"received": n, "p50_us": pct(&mut lat, 0.5), "p99_us": pct(&mut lat, 0.99),
                    "max_us": lat_max, "duplicates": st.duplicates, "peers": peers,
                    "all_connected_ns": all_connected.load(std::sync::atomic::Ordering::Relaxed).to_string(),
                    "rss_kb": rss_kb(std::process::id()).unwrap_or(0), "udp_out_per_min": udp_per_min,
                    "first_ns": first.to_string(), "last_ns": last.to_string(),
                    "rate": if n > 1 { (n - 1) as f64 / ((last - first) as f64 / 1e9) } else { 0.0 },
                    "synced": st.synced, "sync_requests": st.sync_requests, "cpu_ms": cpu, "cpu_run_ms": cpu_run,
                    "started_ns": started.to_string(), "connected_ns": connected.to_string()})
            );
        }
        r => bail!("unknown role {r}"),
    }
    node.shutdown().await?;
    Ok(())
}

// ---- the orchestrator --------------------------------------------------------------------

struct Bench {
    lan: Lan,
    exe: PathBuf,
    root: tempfile::TempDir,
    dirs: Vec<PathBuf>,
    /// Senders write format-1 plaintext (`MAJLIS_BENCH_PLAINTEXT=1`): the baseline that
    /// shows what end-to-end encryption costs.
    plaintext: bool,
}

impl Bench {
    /// Benchmarks on `lan`, with no org yet (see [`Bench::org`]).
    fn on(lan: Lan) -> Result<Bench> {
        Ok(Bench {
            lan,
            exe: std::env::current_exe()?,
            root: tempfile::tempdir()?,
            dirs: vec![],
            plaintext: false,
        })
    }

    /// A fresh org whose `n` devices all already hold the full roster.
    fn org(&mut self, n: usize) -> Result<()> {
        let base = self.root.path().join(format!("org{}", now_ns()));
        let names: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        make_org(&base, &names)?;
        self.dirs = (0..n).map(|i| base.join(format!("d{i}"))).collect();
        Ok(())
    }

    fn spawn(&self, host: usize, args: &[String]) -> Result<std::process::Child> {
        Ok(self
            .lan
            .command(host, &self.exe)
            .args(args)
            .env(
                "MAJLIS_BENCH_PLAINTEXT",
                if self.plaintext { "1" } else { "0" },
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?)
    }

    fn node_args(&self, i: usize, rest: &[&str]) -> Vec<String> {
        let mut v = vec!["node".to_string(), self.dirs[i].display().to_string()];
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    }
}

/// Wait for a `serve` node's "ready" line; its ready time (ms from its start).
fn wait_ready(child: &mut std::process::Child) -> Result<u64> {
    use std::io::BufRead;
    let out = child.stdout.take().context("the serving node's stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    let j: serde_json::Value =
        serde_json::from_str(line.trim()).context("the serving node did not get ready")?;
    j["ready_ms"].as_u64().context("no ready_ms")
}

fn output_json(child: std::process::Child) -> Result<serde_json::Value> {
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().context("no output")?;
    Ok(serde_json::from_str(line)?)
}

/// Sustained throughput, one sender to one receiver (sender keeps 512 sends in flight), as a
/// report line with its ratio to one core's `verify` rate.
fn sustained(b: &mut Bench, plaintext: bool, single: f64) -> Result<String> {
    b.plaintext = plaintext;
    b.org(2)?;
    let count = 20_000;
    let recv = b.spawn(1, &b.node_args(1, &["recv", &count.to_string(), "30"]))?;
    let send = b.spawn(
        0,
        &b.node_args(0, &["send", &count.to_string(), "0", "1", "512"]),
    )?;
    let s = output_json(send)?;
    let r = output_json(recv)?;
    let rate = r["rate"].as_f64().unwrap();
    Ok(format!(
        "sustained 1→1{}: {} of {count} received, {rate:.0} msg/s verified + stored, fsync batched behind ({:.0}% of the single-core verify rate); sender acknowledged {:.0} msg/s",
        if plaintext { ", PLAINTEXT baseline" } else { ", sealed" },
        r["received"], 100.0 * rate / single, count as f64 / s["secs"].as_f64().unwrap()
    ))
}

/// `lanbench sustained N`: only the verify baseline and N sealed sustained runs, to compare
/// changes to the send and receive paths without the whole suite.
fn sustained_bench(runs: usize) -> Result<()> {
    if !majlis_tests::netns_available("lanbench") {
        bail!("lanbench needs root for its namespace LAN");
    }
    let mut b = Bench::on(Lan::new("b", 2)?)?;
    let (single, batch) = verify_rates();
    println!("ed25519 verify, one core: {single:.0}/s single, {batch:.0}/s in batches of 64");
    for _ in 0..runs {
        println!("{}", sustained(&mut b, false, single)?);
    }
    Ok(())
}

/// Raw TCP echo RTT between the first two hosts: its p50 in µs, and a report line.
fn tcp_rtt(b: &Bench, exe: &std::path::Path) -> Result<(f64, String)> {
    let addr = format!("{}:7000", b.lan.addrs[0]);
    let mut srv = b
        .lan
        .command(0, exe)
        .args(["echo-server", &addr])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut ready = [0u8; 6];
    srv.stdout.as_mut().unwrap().read_exact(&mut ready)?;
    let tcp = output_json(
        b.lan
            .command(1, exe)
            .args(["echo-client", &addr, "5000"])
            .stdout(Stdio::piped())
            .spawn()?,
    )?;
    let _ = srv.kill();
    let _ = srv.wait();
    let p50 = tcp["p50_us"].as_f64().unwrap();
    Ok((
        p50,
        format!(
            "raw TCP echo RTT (100 B): p50 {p50:.0} µs, p99 {:.0} µs",
            tcp["p99_us"].as_f64().unwrap()
        ),
    ))
}

/// How long the latency runs' sender waits after it is connected to every receiver: an
/// office whose connections have settled. Peers tell each other which devices' gossip
/// reaches them directly only once a link has been steady for 7 s (see
/// `RosterResponse::links`); until then every receiver also forwards every message to the
/// others, as in the first seconds after a device starts (`lanbench latency 5 3 500`
/// measures those).
const SETTLED_MS: u64 = 10_000;

/// Delivery latency with `n` nodes (one sender, `n - 1` receivers; 500 messages at 200/s,
/// sent `settle_ms` after the sender is connected to all), as a report line with its ratio
/// to the raw TCP RTT.
fn latency(
    b: &mut Bench,
    n: usize,
    plaintext: bool,
    tcp_p50: f64,
    settle_ms: u64,
) -> Result<String> {
    b.plaintext = plaintext;
    b.org(n)?;
    let recvs: Vec<_> = (1..n)
        .map(|i| b.spawn(i, &b.node_args(i, &["recv", "500", "60"])))
        .collect::<Result<_>>()?;
    let send = b.spawn(
        0,
        &b.node_args(
            0,
            &[
                "send",
                "500",
                "5000",
                &(n - 1).to_string(),
                "1",
                "2",
                &settle_ms.to_string(),
            ],
        ),
    )?;
    output_json(send)?;
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    let mut cpu_ms = 0.0;
    let mut synced = 0;
    let mut duplicates = 0;
    for r in recvs {
        let j = output_json(r)?;
        if j["received"].as_u64() != Some(500) {
            bail!(
                "latency run with {n} nodes: a receiver got {} of 500",
                j["received"]
            );
        }
        p50s.push(j["p50_us"].as_f64().unwrap());
        p99s.push(j["p99_us"].as_f64().unwrap());
        cpu_ms += j["cpu_run_ms"].as_f64().unwrap_or(0.0);
        synced += j["synced"].as_u64().unwrap_or(0);
        duplicates += j["duplicates"].as_u64().unwrap_or(0);
    }
    let p50 = pct(&mut p50s, 0.5);
    let p99 = pct(&mut p99s, 1.0);
    // Whole-process CPU from the first message to the last, per receiver and message: what
    // the receivers spend on forwarding and duplicates shows here, on cores they share.
    let cpu_us = cpu_ms * 1e3 / (n - 1) as f64 / 500.0;
    b.plaintext = false;
    Ok(format!(
        "delivery latency, {n} nodes{} (send → verified + stored at receiver, its fsync after; 500 msgs at 200/s, from {:.1} s after connecting): p50 {p50:.0} µs ({:.1}× raw TCP RTT), p99 {p99:.0} µs (worst receiver); receiver CPU {cpu_us:.0} µs a message; {:.2} duplicates a message and receiver; {synced} brought by catch-up",
        if plaintext { ", PLAINTEXT baseline" } else { ", sealed" },
        settle_ms as f64 / 1e3,
        p50 / tcp_p50,
        duplicates as f64 / (n - 1) as f64 / 500.0
    ))
}

/// `lanbench latency N RUNS [SETTLE_MS]`: the raw TCP RTT, then RUNS sealed latency runs with
/// N nodes, to compare changes to the delivery path without the whole suite.
fn latency_bench(n: usize, runs: usize, settle_ms: u64) -> Result<()> {
    if !majlis_tests::netns_available("lanbench") {
        bail!("lanbench needs root for its namespace LAN");
    }
    let exe = std::env::current_exe()?;
    let mut b = Bench::on(Lan::new("b", n.max(2))?)?;
    let (tcp_p50, line) = tcp_rtt(&b, &exe)?;
    println!("{line}");
    for _ in 0..runs {
        println!("{}", latency(&mut b, n, false, tcp_p50, settle_ms)?);
    }
    Ok(())
}

fn orchestrate() -> Result<()> {
    if !majlis_tests::netns_available("lanbench") {
        bail!("lanbench needs root for its namespace LAN");
    }
    let exe = std::env::current_exe()?;
    let mut b = Bench::on(Lan::new("b", 5)?)?;
    let mut report = Vec::new();

    // Crypto baseline: one core, single and batched ed25519 verification of real envelopes.
    let (single, batch) = verify_rates();
    report.push(format!(
        "ed25519 verify, one core: {single:.0}/s single, {batch:.0}/s in batches of 64"
    ));

    let (tcp_p50, tcp_line) = tcp_rtt(&b, &exe)?;
    report.push(tcp_line);

    // Delivery latency, 2 and 5 nodes, sealed end to end; and 2 nodes with plaintext bodies
    // (what releases before encryption sent) as the baseline for its cost.
    // 5 nodes also in their first second, before peers have told each other their links.
    for (n, plaintext, settle) in [
        (2usize, false, SETTLED_MS),
        (2, true, SETTLED_MS),
        (5, false, SETTLED_MS),
        (5, false, 500),
    ] {
        report.push(latency(&mut b, n, plaintext, tcp_p50, settle)?);
    }

    for plaintext in [true, false] {
        report.push(sustained(&mut b, plaintext, single)?);
    }
    b.plaintext = false;

    // Start to first delivery: both nodes start together; the sender posts at once.
    let mut starts = Vec::new();
    for _ in 0..5 {
        b.org(2)?;
        let t0 = now_ns();
        let recv = b.spawn(1, &b.node_args(1, &["recv", "1", "20"]))?;
        let send = b.spawn(0, &b.node_args(0, &["send", "1", "0", "0", "1", "3"]))?;
        let r = output_json(recv)?;
        let _ = output_json(send);
        let first: u128 = r["first_ns"].as_str().unwrap().parse()?;
        starts.push((first.saturating_sub(t0)) as f64 / 1e6);
    }
    report.push(format!(
        "start → first delivery (mDNS, both start together; 5 runs): median {:.0} ms, max {:.0} ms",
        pct(&mut starts, 0.5),
        pct(&mut starts, 1.0)
    ));

    // Late joiner: a network is running (a sender posting every 5 ms to a member already
    // connected); a third node starts and we time its first delivery.
    let mut lates = Vec::new();
    for _ in 0..5 {
        b.org(3)?;
        let existing = b.spawn(1, &b.node_args(1, &["recv", "1000", "20"]))?;
        let send = b.spawn(0, &b.node_args(0, &["send", "1000", "5000", "1", "1", "1"]))?;
        std::thread::sleep(Duration::from_millis(2000));
        let t0 = now_ns();
        let recv = b.spawn(2, &b.node_args(2, &["recv", "1", "20"]))?;
        let r = output_json(recv)?;
        let _ = output_json(send);
        let _ = output_json(existing);
        let first: u128 = r["first_ns"].as_str().unwrap().parse()?;
        lates.push((first.saturating_sub(t0)) as f64 / 1e6);
    }
    report.push(format!(
        "late joiner → first delivery (5 runs): median {:.0} ms, max {:.0} ms",
        pct(&mut lates, 0.5),
        pct(&mut lates, 1.0)
    ));

    // Idle RSS of majlisd run.
    b.org(2)?;
    let majlisd = exe.with_file_name("majlisd-e2e");
    let mut d = b
        .lan
        .command(0, &majlisd)
        .arg("--data")
        .arg(&b.dirs[0])
        .arg("run")
        .stdout(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_secs(5));
    let rss = rss_kb(d.id()).unwrap_or(0);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(d.id().to_string())
        .status();
    let _ = d.wait();
    report.push(format!(
        "idle majlisd RSS after 5 s: {:.1} MB",
        rss as f64 / 1024.0
    ));

    println!("\n== lanbench results");
    for l in &report {
        println!("- {l}");
    }
    Ok(())
}

/// RSS of the majlisd process: the `ip netns exec` wrapper execs it, so the pid is the same.
fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time this process has used (user + system), in ms: on a shared, noisy box a steadier
/// figure than wall time. From /proc (clock ticks of 10 ms).
fn cpu_ms() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // The fields after the command name (which may hold spaces) start after its ')'.
    let f: Vec<&str> = s
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name.
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) * 10
}

fn verify_rates() -> (f64, f64) {
    use majlis_core::message::{Envelope, Unsigned, PLAINTEXT_FORMAT};
    let key = majlis_core::DeviceKey::generate();
    let envs: Vec<Envelope> = (0..6400)
        .map(|i| {
            Envelope::sign(
                &key,
                Unsigned {
                    format: PLAINTEXT_FORMAT,
                    author: key.id(),
                    channel: "general".into(),
                    sent_at: 1_800_000_000_000,
                    seq: i,
                    prev: None,
                    body: format!("t={i} benchmark body").into(),
                },
            )
        })
        .collect();
    let parts: Vec<_> = envs.iter().map(|e| e.signed_parts()).collect();
    let t = Instant::now();
    for (m, s, k) in &parts {
        assert!(majlis_core::identity::verify(k, m, s));
    }
    let single = parts.len() as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for chunk in envs.chunks(64) {
        assert!(majlis_core::message::verify_batch(chunk).iter().all(|&x| x));
    }
    let batch = envs.len() as f64 / t.elapsed().as_secs_f64();
    (single, batch)
}

/// Seconds ed25519-dalek takes to batch-verify the signatures of `envs` on one thread, in
/// batches of a catch-up answer's size, with messages, signatures and keys prepared first.
fn plain_batch_verify(envs: &[majlis_core::Envelope]) -> f64 {
    use ed25519_dalek::{Signature, VerifyingKey};
    let parts: Vec<_> = envs.iter().map(|e| e.signed_parts()).collect();
    let msgs: Vec<&[u8]> = parts.iter().map(|(m, _, _)| m.as_slice()).collect();
    let sigs: Vec<Signature> = parts
        .iter()
        .map(|(_, s, _)| Signature::from_bytes(s))
        .collect();
    let keys: Vec<VerifyingKey> = parts
        .iter()
        .map(|(_, _, k)| VerifyingKey::from_bytes(k).expect("a device key"))
        .collect();
    let b = majlis_core::sync::MAX_BATCH;
    let t = Instant::now();
    for ((m, s), k) in msgs.chunks(b).zip(sigs.chunks(b)).zip(keys.chunks(b)) {
        assert!(ed25519_dalek::verify_batch(m, s, k).is_ok());
    }
    t.elapsed().as_secs_f64()
}

/// UDP datagrams this network namespace has sent (`/proc/net/snmp`, per namespace).
fn udp_out() -> u64 {
    let s = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut lines = s.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(head), Some(vals)) = (lines.next(), lines.next()) else {
        return 0;
    };
    head.split_whitespace()
        .zip(vals.split_whitespace())
        .find(|(k, _)| *k == "OutDatagrams")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

// ---- lossy links ---------------------------------------------------------------------------

/// `lanbench lossy`: four hosts whose links are emulated radios (`majlis_tests::radio`: 5 ms
/// ± 2 ms each way, so frames overtake each other, 1 % duplicated, and 0, 1 or 5 % lost per
/// host link). One node sends 200 messages at 20/s; each of the other three records when
/// each arrived (gossip, or catch-up for what gossip lost). Figures: delivery p50/p99/max per
/// receiver, and how long after the last send the last receiver held everything.
fn lossy_bench() -> Result<()> {
    if !majlis_tests::netns_available("lanbench") {
        bail!("lanbench needs root for its namespace LAN");
    }
    let count = 200;
    let mut out = Vec::new();
    for (k, loss) in [0.0, 0.01, 0.05].into_iter().enumerate() {
        let mut lan = Lan::new(&format!("z{k}"), 4)?;
        for i in 0..4 {
            lan.set_radio(i, majlis_tests::radio::Link::jittery(loss))?;
        }
        let mut b = Bench::on(lan)?;
        b.org(4)?;
        let recvs: Vec<_> = (1..4)
            .map(|i| b.spawn(i, &b.node_args(i, &["recv", &count.to_string(), "90"])))
            .collect::<Result<_>>()?;
        let send = b.spawn(
            0,
            &b.node_args(0, &["send", &count.to_string(), "50000", "3", "1", "30"]),
        )?;
        let rows: Vec<serde_json::Value> =
            recvs.into_iter().map(output_json).collect::<Result<_>>()?;
        let s = output_json(send)?;
        let end: u128 = s["end_ns"].as_str().unwrap_or("0").parse()?;
        let last: u128 = rows
            .iter()
            .filter_map(|j| j["last_ns"].as_str()?.parse::<u128>().ok())
            .max()
            .unwrap_or(0);
        let (lost, dup) = b.lan.radio_counts();
        let per: Vec<String> = rows
            .iter()
            .map(|j| {
                format!(
                    "{}/{count}, p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms",
                    j["received"],
                    j["p50_us"].as_f64().unwrap_or(0.0) / 1e3,
                    j["p99_us"].as_f64().unwrap_or(0.0) / 1e3,
                    j["max_us"].as_f64().unwrap_or(0.0) / 1e3
                )
            })
            .collect();
        out.push(format!(
            "{:.0} % lost per host link ({lost} frames lost, {dup} duplicated): receivers {}; all held everything {:.2} s after the last send",
            loss * 100.0,
            per.join("; "),
            last.saturating_sub(end) as f64 / 1e9
        ));
    }
    println!("\n== lanbench lossy (5 ± 2 ms each way, 1 % duplicated; {count} messages at 20/s)");
    for l in out {
        println!("- {l}");
    }
    Ok(())
}

// ---- many nodes ---------------------------------------------------------------------------

/// `lanbench many N`: N nodes, each in its own namespace of one LAN, all started together.
/// Figures: time until every node is connected to every other (mDNS), then 50 messages from
/// one node at 20/s: delivery p50/p99 at each receiver and the slowest receiver's, duplicate
/// deliveries per message, RSS per node, and mDNS datagrams sent per node per minute once
/// the network has settled.
fn many_bench(n: usize) -> Result<()> {
    if !majlis_tests::netns_available("lanbench") {
        bail!("lanbench needs root for its namespace LAN");
    }
    let mut b = Bench::on(Lan::new("y", n)?)?;
    b.org(n)?;
    let count = 50;
    // Up to the mesh limit every node connects to all others; beyond it each keeps a few
    // per channel (here one channel), and the sender gives the others 15 s to find theirs.
    let meshed = n - 1 <= neighbours::FULL_MESH_UP_TO;
    let want = if meshed { n - 1 } else { neighbours::PER_TOPIC };
    let settle = if meshed { "500" } else { "15000" };
    let t0 = now_ns();
    let recvs: Vec<_> = (1..n)
        .map(|i| {
            b.spawn(
                i,
                &b.node_args(i, &["recv", &count.to_string(), "240", &want.to_string()]),
            )
        })
        .collect::<Result<_>>()?;
    // The sender waits until it is connected to everyone (or, above the mesh limit, to a
    // channel's share), then a moment more.
    let send = b.spawn(
        0,
        &b.node_args(
            0,
            &[
                "send",
                &count.to_string(),
                "50000",
                &want.to_string(),
                "1",
                "70",
                settle,
            ],
        ),
    );
    let send = send?;
    let mut rows = Vec::new();
    for r in recvs {
        rows.push(output_json(r)?);
    }
    let _ = output_json(send);
    let f = |k: &str| -> Vec<f64> { rows.iter().filter_map(|j| j[k].as_f64()).collect() };
    let connected: Vec<f64> = rows
        .iter()
        .filter_map(|j| j["all_connected_ns"].as_str()?.parse::<u128>().ok())
        .filter(|t| *t > 0)
        .map(|t| (t.saturating_sub(t0)) as f64 / 1e9)
        .collect();
    let received: u64 = rows.iter().filter_map(|j| j["received"].as_u64()).sum();
    let dups: u64 = rows.iter().filter_map(|j| j["duplicates"].as_u64()).sum();
    let (mut p50, mut p99, mut max) = (f("p50_us"), f("p99_us"), f("max_us"));
    let mut rss: Vec<f64> = f("rss_kb").iter().map(|k| k / 1024.0).collect();
    let mut udp = f("udp_out_per_min");
    let mut degree = f("peers");
    println!("\n== lanbench many {n}");
    println!(
        "- all {} receivers connected to {want} others{}: {} of them, the last after {:.1} s (median {:.1} s)",
        n - 1,
        if meshed { " (all)" } else { " (their neighbours; mesh limit exceeded)" },
        connected.len(),
        connected.iter().cloned().fold(0.0, f64::max),
        pct(&mut connected.clone(), 0.5)
    );
    println!(
        "- {count} messages at 20/s from one node: {received} of {} deliveries; per receiver p50 {:.0} µs (median over receivers), p99 {:.0} µs (median), slowest receiver's p99 {:.0} µs, worst single delivery {:.0} µs",
        count * (n - 1),
        pct(&mut p50, 0.5),
        pct(&mut p99.clone(), 0.5),
        pct(&mut p99, 1.0),
        pct(&mut max, 1.0)
    );
    println!(
        "- duplicate deliveries: {:.2} per message per receiver",
        dups as f64 / (count * (n - 1)) as f64
    );
    println!(
        "- connections per receiver when its last message arrived: median {:.0}, min {:.0}, max {:.0}",
        pct(&mut degree.clone(), 0.5),
        pct(&mut degree.clone(), 0.0),
        pct(&mut degree, 1.0)
    );
    println!(
        "- RSS per node: median {:.1} MB, max {:.1} MB",
        pct(&mut rss.clone(), 0.5),
        pct(&mut rss, 1.0)
    );
    println!(
        "- mDNS (UDP) datagrams sent per node per minute, settled: median {:.0}, max {:.0}",
        pct(&mut udp.clone(), 0.5),
        pct(&mut udp, 1.0)
    );
    Ok(())
}

// ---- catch-up sync ------------------------------------------------------------------------

/// Bytes through host `i`'s interface (both directions), from its namespace's sysfs.
/// An org with a seed author holding `n` messages in `general`, and two more devices `r`
/// and `b` on the roster. Returns (dir of seed, r, b, payload bytes, wires).
fn seeded_org(
    root: &std::path::Path,
    n: usize,
) -> Result<(PathBuf, PathBuf, PathBuf, Vec<Vec<u8>>)> {
    let base = root.join(format!("sync{}", now_ns()));
    let (seed, chain) = make_org(&base, &["seed", "r", "b"])?;
    let mut wires = Vec::with_capacity(n);
    let t = Instant::now();
    for i in 0..n {
        let envs = seed.compose(
            &chain,
            "general",
            &format!("t=0 seeded message number {i} with a typical short text"),
        )?;
        wires.extend(envs.into_iter().map(|e| e.wire));
        if i % 20_000 == 19_999 {
            seed.store().flush()?;
        }
    }
    seed.store().flush()?;
    eprintln!("seeded {n} messages in {:.1} s", t.elapsed().as_secs_f64());
    Ok((base.join("seed"), base.join("r"), base.join("b"), wires))
}

/// A fresh org under `base`: `names[0]` founds it, the others join and are added as members,
/// and everyone already holds the full roster. Returns the founder and the chain.
fn make_org(
    base: &std::path::Path,
    names: &[&str],
) -> Result<(Profile, majlis_core::roster::RosterChain)> {
    let admin = Profile::init(&base.join(names[0]), names[0])?;
    admin.org_create("bench")?;
    let mut chain = admin.chain()?;
    let mut others = Vec::new();
    for name in &names[1..] {
        // One data key for the whole bench org, so a database copied between these
        // directories (`copy_db`) opens; each device still has its own identity.
        let dir = base.join(name);
        std::fs::create_dir_all(&dir)?;
        for f in [
            majlis_core::seal::DATA_KEY_FILE,
            majlis_core::seal::SEALING_FILE,
        ] {
            std::fs::copy(base.join(names[0]).join(f), dir.join(f))?;
        }
        let p = Profile::init(&dir, name)?;
        p.org_join(chain.org())?;
        admin.change_roster(
            &mut chain,
            &RosterChange::AddMember {
                name: name.to_string(),
                device: p.device_id(),
                role: None,
            },
        )?;
        others.push(p);
    }
    for p in &others {
        let mut c = p.chain()?;
        p.apply_rosters(&mut c, chain.versions().to_vec())?;
    }
    Ok((admin, chain))
}

/// Replace `to`'s database with a copy of `from`'s, keeping `to`'s own name. Both are of one
/// `make_org`, so they share the data key the database is sealed under.
fn copy_db(from: &std::path::Path, to: &std::path::Path, name: &str) -> Result<()> {
    let _ = std::fs::remove_dir_all(to.join("db"));
    let st = Command::new("cp")
        .arg("-a")
        .arg(from.join("db"))
        .arg(to.join("db"))
        .status()?;
    if !st.success() {
        bail!("copying the database failed");
    }
    let p = Profile::open(to)?;
    p.store().set_meta("name", name.as_bytes())?;
    // The seed's unpublished messages are not this device's to publish, nor is its check
    // of its own log (from its first message, never answered: it had no peer) this
    // device's to ask for.
    p.store().outbox_clear()?;
    p.store().close_holes("general", u64::MAX)?;
    p.store().flush()?;
    Ok(())
}

fn sync_bench(big: usize) -> Result<()> {
    if !majlis_tests::netns_available("lanbench sync") {
        bail!("lanbench needs root for its namespace LAN");
    }
    let exe = std::env::current_exe()?;
    let lan = Lan::new("s", 2)?;
    let root = tempfile::tempdir()?;
    let mut report = Vec::new();
    let node = |dir: &std::path::Path, rest: &[&str]| {
        let mut v = vec!["node".to_string(), dir.display().to_string()];
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    let spawn = |i: usize, args: Vec<String>| -> Result<std::process::Child> {
        Ok(lan
            .command(i, &exe)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?)
    };

    // 1. A node that missed 100 000 messages catches up from a peer that has them.
    let n = 100_000;
    let (seed, r, b, wires) = seeded_org(root.path(), n)?;
    copy_db(&seed, &r, "r")?;
    let payload: usize = wires.iter().map(Vec::len).sum();
    // Two baselines: decoding plus our batch check as a node runs it (the ratio's history),
    // and ed25519-dalek's own batch verification of the same signatures, prepared beforehand
    // (the crypto cost alone).
    let t = Instant::now();
    let envs: Vec<_> = wires
        .iter()
        .map(|w| majlis_core::Envelope::decode_unverified(w).unwrap())
        .collect();
    for chunk in envs.chunks(majlis_core::sync::MAX_BATCH) {
        assert!(majlis_core::message::verify_batch(chunk)
            .iter()
            .all(|&ok| ok));
    }
    let verify_secs = t.elapsed().as_secs_f64();
    let dalek_secs = plain_batch_verify(&envs);
    drop(envs);
    // The peer that has them has been up a while, as a relay or a colleague's desktop is
    // when a laptop comes back: its search index is built and its mDNS record announced.
    // (Until session 33 both started together, and the server's start-up, indexing 100 000
    // messages and probing its mDNS name, ran through the catch-up it was timed on.)
    let mut server = spawn(0, node(&r, &["serve", &n.to_string(), "600"]))?;
    let ready = wait_ready(&mut server)?;
    let bytes0 = lan.iface_bytes(1)?;
    let t0 = now_ns();
    let j = output_json(spawn(1, node(&b, &["recv", &n.to_string(), "600"]))?)?;
    let bytes = lan.iface_bytes(1)? - bytes0;
    let _ = server.kill();
    let _ = server.wait();
    let last: u128 = j["last_ns"].as_str().unwrap().parse()?;
    let connected: u128 = j["connected_ns"].as_str().unwrap().parse()?;
    let wall = (last - t0) as f64 / 1e9;
    let linked = last.saturating_sub(connected) as f64 / 1e9;
    let cpu_secs = j["cpu_ms"].as_f64().unwrap_or(0.0) / 1e3;
    eprintln!("server ready after {ready} ms (index built, mDNS announced)");
    report.push(format!(
        "catch-up of {n} missed messages from a peer that has been up a while: {} received in {wall:.2} s from process start ({:.2}× the {verify_secs:.2} s batch-verify time of the same messages, decoding included; {:.2}× ed25519-dalek's {dalek_secs:.2} s batch verification alone), {linked:.2} s from connection ({:.2}×); {bytes} bytes on the wire for {payload} payload bytes ({:.2}×); {} sync round trips; the requester used {:.2} s of CPU ({:.0} µs a message, {:.2}× the batch-verify time)",
        j["received"], wall / verify_secs, wall / dalek_secs, linked / verify_secs, bytes as f64 / payload as f64, j["sync_requests"],
        cpu_secs,
        cpu_secs * 1e6 / n as f64,
        cpu_secs / verify_secs
    ));

    // 2. Both hold `big` messages; 10 are missing on one side.
    let (seed, r, b, _) = seeded_org(root.path(), big)?;
    copy_db(&seed, &r, "r")?;
    copy_db(&seed, &b, "b")?;
    {
        let p = Profile::open(&r)?;
        let chain = p.chain()?;
        for i in 0..10 {
            p.compose(&chain, "general", &format!("t=0 new {i}"))?;
        }
        p.store().flush()?;
    }
    let mut server = spawn(0, node(&r, &["serve", &(big + 10).to_string(), "600"]))?;
    wait_ready(&mut server)?;
    let bytes0 = lan.iface_bytes(1)?;
    let t0 = now_ns();
    let j = output_json(spawn(1, node(&b, &["recv", "10", "120"]))?)?;
    let bytes = lan.iface_bytes(1)? - bytes0;
    let _ = server.kill();
    let _ = server.wait();
    let last: u128 = j["last_ns"].as_str().unwrap().parse()?;
    let at = |k: &str| {
        j[k].as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap_or(0)
            .saturating_sub(t0) as f64
            / 1e6
    };
    eprintln!(
        "node up {:.0} ms, connected {:.0} ms, last message {:.0} ms",
        at("started_ns"),
        at("connected_ns"),
        at("last_ns")
    );
    report.push(format!(
        "catch-up when 10 of {big} stored messages are missing: {} received, {bytes} bytes on the wire in total (connection set-up included), {} sync round trips, {:.0} ms from process start",
        j["received"], j["sync_requests"], (last - t0) as f64 / 1e6
    ));

    println!("\n== lanbench sync results");
    for l in &report {
        println!("- {l}");
    }
    Ok(())
}
