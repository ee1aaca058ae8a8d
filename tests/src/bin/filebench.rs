//! File transfer benchmark on the namespace LAN (root): real `majlisd` processes (release),
//! each figure next to raw TCP moving the same bytes between the same namespaces in the same
//! run.
//!
//! ```text
//! cargo build --release -p majlis-tests --bins && sudo target/release/filebench [MiB]
//! ```
//!
//! Three hosts: amina (h0) shares a file; the relay (h1) fetches it from amina alone (one
//! source); then bilal (h2) fetches it from amina and the relay together (two sources).

/// mimalloc, as every Majlis binary: sled's node copies and the per-message records made
/// glibc's malloc a quarter of the event loop's time (docs/benchmarks.md, session 61).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use majlis_tests::{Daemon, Lan};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("sink") => sink(&args[1], args.get(2).map(Path::new)),
        Some("source") => source(&args[1], args[2].parse()?),
        mib => orchestrate(mib.map_or(Ok(256), str::parse)?),
    }
}

/// Raw TCP: accept one connection, read everything (into `file`, fsynced at the end, if
/// given), print the byte count.
fn sink(addr: &str, file: Option<&Path>) -> Result<()> {
    let l = std::net::TcpListener::bind(addr)?;
    println!("ready");
    std::io::stdout().flush()?;
    let (mut s, _) = l.accept()?;
    let mut out = file.map(std::fs::File::create).transpose()?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        match s.read(&mut buf)? {
            0 => break,
            k => {
                n += k as u64;
                if let Some(f) = out.as_mut() {
                    f.write_all(&buf[..k])?;
                }
            }
        }
    }
    if let Some(f) = out {
        f.sync_all()?;
    }
    println!("{n}");
    Ok(())
}

/// Raw TCP: send `bytes` and print the seconds it took until the sink closed.
fn source(addr: &str, bytes: u64) -> Result<()> {
    let mut s = std::net::TcpStream::connect(addr)?;
    let buf = vec![0x5au8; 1 << 20];
    let t = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let k = left.min(buf.len() as u64) as usize;
        s.write_all(&buf[..k])?;
        left -= k as u64;
    }
    s.shutdown(std::net::Shutdown::Write)?;
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)?;
    println!("{}", t.elapsed().as_secs_f64());
    Ok(())
}

fn raw_tcp(
    lan: &Lan,
    me: &Path,
    from: usize,
    to: usize,
    bytes: u64,
    file: Option<&Path>,
) -> Result<f64> {
    let addr = format!("{}:7999", lan.addrs[to]);
    let mut cmd = lan.command(to, me);
    cmd.args(["sink", &addr]);
    if let Some(f) = file {
        cmd.arg(f);
    }
    let mut sink = cmd.stdout(std::process::Stdio::piped()).spawn()?;
    let mut out = sink.stdout.take().context("sink stdout")?;
    let mut ready = [0u8; 6];
    out.read_exact(&mut ready)?;
    let o = lan
        .command(from, me)
        .args(["source", &addr, &bytes.to_string()])
        .output()?;
    sink.wait()?;
    Ok(String::from_utf8_lossy(&o.stdout).trim().parse()?)
}

fn wait_complete(d: &Daemon, blob: &str, secs: u64) -> Result<f64> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if d.files()
            .iter()
            .any(|f| f["blob"] == blob && f["complete"] == true)
        {
            return Ok(t.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("{} did not complete {blob} in {secs} s", d.name)
}

fn orchestrate(mib: u64) -> Result<()> {
    let me = std::env::current_exe()?;
    let majlisd = me.with_file_name("majlisd-e2e");
    if !majlisd.exists() {
        bail!("build first: cargo build --release -p majlis-tests --bins");
    }
    let bytes = mib << 20;
    let lan = Lan::new("fb", 3)?;
    let tmp = tempfile::tempdir_in(std::env::var("FILEBENCH_DIR").unwrap_or("/var/tmp".into()))?;

    let tcp = raw_tcp(&lan, &me, 0, 1, bytes, None)?;
    println!(
        "raw TCP h0 -> h1: {mib} MiB in {tcp:.2} s = {:.0} MiB/s",
        mib as f64 / tcp
    );
    // The same into a file on the same disk, fsynced: what any receiver that keeps the bytes
    // pays (on this VM the disk, not the network, is the ceiling).
    let sunk = tmp.path().join("tcp-sink.bin");
    let tcp_disk = raw_tcp(&lan, &me, 0, 1, bytes, Some(&sunk))?;
    let _ = std::fs::remove_file(&sunk);
    println!(
        "raw TCP h0 -> h1 into a file + fsync: {tcp_disk:.2} s = {:.0} MiB/s",
        mib as f64 / tcp_disk
    );

    let mut amina = Daemon::new(&majlisd, tmp.path(), "amina");
    let mut relay = Daemon::new(&majlisd, tmp.path(), "relay");
    let mut bilal = Daemon::new(&majlisd, tmp.path(), "bilal");
    amina.log_filter = "warn".into();
    relay.log_filter = "warn".into();
    bilal.log_filter = "warn".into();
    amina.ok(&["init", "--name", "amina"]);
    let org = amina.ok(&["org", "create", "--name", "acme"]);
    for (d, role) in [(&relay, "relay"), (&bilal, "member")] {
        let id = d.ok(&["init", "--name", &d.name]);
        d.ok(&["org", "join", &org]);
        amina.ok(&[
            "roster", "add", "--name", &d.name, "--device", &id, "--role", role,
        ]);
    }
    let a_addr = format!("/ip4/{}/tcp/7441", lan.addrs[0]);
    let r_addr = format!("/ip4/{}/tcp/7441", lan.addrs[1]);
    amina.start(&lan, 0, &["--no-mdns", "--listen", &a_addr]);
    let src = tmp.path().join("bench.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src)?);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..mib {
            for b in block.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            f.write_all(&block)?;
        }
    }
    let t = Instant::now();
    let msg = amina.ok(&["share", "general", src.to_str().context("path")?]);
    let share = t.elapsed().as_secs_f64();
    println!(
        "share (encrypt + hash + fsync) {mib} MiB: {share:.2} s = {:.0} MiB/s",
        mib as f64 / share
    );
    let blob = amina
        .files()
        .first()
        .and_then(|f| f["blob"].as_str().map(String::from))
        .context("no blob")?;
    // One source: the relay fetches from amina as soon as it sees the message.
    let t = Instant::now();
    relay.start(
        &lan,
        1,
        &["--no-mdns", "--listen", &r_addr, "--peer", &a_addr],
    );
    wait_complete(&relay, &blob, 600)?;
    let one_total = t.elapsed().as_secs_f64();
    println!(
        "one source (relay from amina): {one_total:.2} s from relay start = {:.0} MiB/s, {:.2}x raw TCP time, {:.2}x raw TCP into a file",
        mib as f64 / one_total,
        one_total / tcp,
        one_total / tcp_disk
    );
    // Two sources: bilal asks; amina and the relay both serve.
    bilal.start(
        &lan,
        2,
        &["--no-mdns", "--peer", &a_addr, "--peer", &r_addr],
    );
    let t = Instant::now();
    while !String::from_utf8_lossy(&bilal.cli(&["history", "general", "--json"]).stdout)
        .contains(&msg)
    {
        std::thread::sleep(Duration::from_millis(20));
        if t.elapsed() > Duration::from_secs(60) {
            bail!("bilal never saw the file message");
        }
    }
    let out = tmp.path().join("out.bin");
    let t = Instant::now();
    bilal.ok(&["get", &msg, "--out", out.to_str().context("path")?]);
    let two = t.elapsed().as_secs_f64();
    let (sa, sr) = (
        amina.stats()["chunks_served"].as_u64().unwrap_or(0),
        relay.stats()["chunks_served"].as_u64().unwrap_or(0),
    );
    println!(
        "two sources (bilal from amina + relay, incl. decrypting to a file): {two:.2} s = {:.0} MiB/s, {:.2}x raw TCP time, {:.2}x raw TCP into a file; chunks served: amina {sa} (incl. relay's), relay {sr}",
        mib as f64 / two,
        two / tcp,
        two / tcp_disk
    );
    let same = std::fs::metadata(&out)?.len() == bytes;
    println!("saved file has the right size: {same}");
    println!(
        "{}",
        serde_json::json!({
            "mib": mib, "raw_tcp_s": tcp, "raw_tcp_file_s": tcp_disk, "share_s": share, "one_source_s": one_total,
            "two_sources_get_s": two, "served_amina": sa, "served_relay": sr,
        })
    );
    for d in [&mut amina, &mut relay, &mut bilal] {
        d.stop();
    }
    Ok(())
}
