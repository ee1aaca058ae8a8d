//! Field teams (namespace LANs built by the tests; need root, CI runs them): a slow radio
//! link with a catch-up during live chat, a near peer that does not wait behind it, a photo
//! over the radio, a courier
//! between sites that never meet, and a laptop whose address changes mid-run. Each prints
//! its times.

use std::time::{Duration, Instant};

use majlis_core::Profile;
use majlis_tests::radio::Link;
use majlis_tests::{netns_available, org, wait_or_tell, wait_until, Daemon, Lan};

fn texts(d: &Daemon) -> Vec<String> {
    d.history("general")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// 1 000 messages written by `d` (stopped) while others were online: nothing waits in its
/// outbox, the backlog is history the others lack (catch-up), not unsent messages (gossip).
fn write_backlog(d: &Daemon) {
    let p = Profile::open(&d.dir).unwrap();
    let chain = p.chain().unwrap();
    for i in 0..1000 {
        p.compose(&chain, "general", &format!("backlog {i:04}"))
            .unwrap();
    }
    p.store().outbox_clear().unwrap();
    p.store().flush().unwrap();
}

/// A field radio: 64 kbit/s with 300 ms each way and a 2 s buffer, no loss.
fn radio() -> Link {
    Link {
        kbit: 64,
        delay: Duration::from_millis(300),
        jitter: Duration::ZERO,
        loss: 0.0,
        duplicate: 0.0,
        queue: Duration::from_secs(2),
    }
}

/// bilal is on a radio link, 64 kbit/s with 300 ms each way, and was away while amina wrote
/// 1 000 messages. When he comes back, catch-up runs while amina keeps chatting: every
/// message arrives, the live ones while the backlog is still coming, in order.
#[test]
fn a_slow_link_catches_up_a_thousand_messages_during_live_chat() {
    if !netns_available("slow link") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut lan = Lan::new("sl", 2).unwrap();
    let mut ds = org(&bin, tmp.path(), &["amina", "bilal"]);
    // bilal holds the roster already (he was here before).
    ds[0].start(&lan, 0, &[]);
    ds[1].start(&lan, 1, &[]);
    wait_until("connected", 30, || ds[0].peers().len() == 1);
    assert!(ds[1].stop());
    assert!(ds[0].stop());
    write_backlog(&ds[0]);
    lan.set_radio(1, radio()).unwrap();
    ds[0].start(&lan, 0, &[]);
    let t = Instant::now();
    ds[1].start(&lan, 1, &[]);
    let mut live_latency = Vec::new();
    let mut backlog_at_live = Vec::new();
    for i in 0..8 {
        let text = format!("live {i}");
        let sent = Instant::now();
        ds[0].ok(&["send", "general", &text]);
        wait_or_tell(
            "the live message",
            60,
            || texts(&ds[1]).contains(&text),
            || format!("{}\n{}", ds[0].log_tail(40), ds[1].log_tail(40)),
        );
        live_latency.push(sent.elapsed().as_secs_f64());
        backlog_at_live.push(
            texts(&ds[1])
                .iter()
                .filter(|t| t.starts_with("backlog"))
                .count(),
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    wait_until("the whole backlog", 240, || {
        ds[1].history("general").len() >= 1008
    });
    let total = t.elapsed().as_secs_f64();
    println!(
        "64 kbit/s, 300 ms: 1 000-message catch-up done {total:.1} s after bilal started; live messages arrived in {:?} s with {:?} backlog messages in by then",
        live_latency
            .iter()
            .map(|l| (l * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        backlog_at_live
    );
    let h = texts(&ds[1]);
    let live: Vec<&String> = h.iter().filter(|t| t.starts_with("live")).collect();
    assert_eq!(live.len(), 8);
    let backlog: std::collections::HashSet<&String> =
        h.iter().filter(|t| t.starts_with("backlog")).collect();
    assert_eq!(backlog.len(), 1000, "every backlog message");
    assert_eq!(h.len(), 1008, "each once");
    assert_eq!(h, texts(&ds[0]), "in the same order as at the sender");
    assert!(
        backlog_at_live[0] < 1000,
        "live messages were not held behind the whole backlog"
    );
    let fastest = live_latency.iter().copied().fold(f64::MAX, f64::min);
    assert!(
        fastest >= 0.3,
        "the radio's delay is on the path: {fastest:.2} s"
    );
    for d in &mut ds {
        assert!(d.stop());
    }
}

/// bilal comes back to the office: he reaches amina over her radio link (64 kbit/s, 300 ms
/// each way) and chen on the LAN, and both hold the 1 000 messages he missed. His catch-up
/// with amina has begun when chen comes up; chen is asked at once instead of after amina's
/// session (about 40 s over the radio), and bilal holds everything, once, in order.
#[test]
fn a_near_peer_does_not_wait_behind_a_radio_link_catch_up() {
    if !netns_available("near peer") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut lan = Lan::new("np", 3).unwrap();
    let mut ds = org(&bin, tmp.path(), &["amina", "bilal", "chen"]);
    for (i, d) in ds.iter_mut().enumerate() {
        d.start(&lan, i, &[]);
    }
    wait_until("connected", 30, || ds[0].peers().len() == 2);
    assert!(ds[1].stop());
    assert!(ds[0].stop());
    write_backlog(&ds[0]);
    // chen takes the backlog from amina on the LAN, then goes away.
    ds[0].start(&lan, 0, &[]);
    wait_until("chen holds the backlog", 60, || {
        ds[2].history("general").len() == 1000
    });
    assert!(ds[2].stop());
    assert!(ds[0].stop());
    lan.set_radio(0, radio()).unwrap();
    ds[0].start(&lan, 0, &[]);
    ds[1].start(&lan, 1, &[]);
    wait_until("the radio catch-up under way", 60, || {
        ds[1].history("general").len() >= 20
    });
    let before = ds[1].history("general").len();
    let t = Instant::now();
    ds[2].start(&lan, 2, &[]);
    wait_or_tell(
        "the backlog from chen",
        90,
        || ds[1].history("general").len() >= 1000,
        || format!("{}\n{}", ds[1].log_tail(30), ds[2].log_tail(10)),
    );
    let took = t.elapsed().as_secs_f64();
    let h = texts(&ds[1]);
    println!(
        "near peer: bilal had all 1 000 messages {took:.1} s after chen started ({before} of them before, over the radio)"
    );
    assert_eq!(h.len(), 1000, "each once");
    assert_eq!(h, texts(&ds[2]), "in the same order as at chen");
    assert!(
        took < 20.0,
        "chen waited behind the radio session: {took:.1} s"
    );
    for d in &mut ds {
        assert!(d.stop());
    }
}

/// A photo over the field radio (64 kbit/s, 300 ms each way): amina shares 300 kB, two
/// chunks, and bilal's node fetches it by itself (small files are fetched on arrival). Each
/// chunk answer takes ~33 s on this link, so a request for both at once (or several at
/// once) would outlast the request timeout on every try; the file arrives whole, and the
/// bytes saved are the ones shared.
#[test]
fn a_photo_crosses_the_radio_link() {
    if !netns_available("file over radio") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut lan = Lan::new("fr", 2).unwrap();
    let mut ds = org(&bin, tmp.path(), &["amina", "bilal"]);
    lan.set_radio(1, radio()).unwrap();
    ds[0].start(&lan, 0, &[]);
    ds[1].start(&lan, 1, &[]);
    wait_until("connected over the radio", 60, || ds[0].peers().len() == 1);
    let photo = tmp.path().join("site.jpg");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&photo, &data).unwrap();
    let msg = ds[0].ok(&["share", "general", photo.to_str().unwrap()]);
    let t = Instant::now();
    let blob = || -> Option<String> {
        let h = ds[1].history("general");
        let m = h.iter().find(|m| m["id"] == msg.as_str())?;
        m["file"]["blob"].as_str().map(str::to_string)
    };
    wait_until("bilal sees the photo's message", 60, || blob().is_some());
    let blob = blob().unwrap();
    wait_or_tell(
        "bilal's node holds the photo",
        180,
        || {
            ds[1]
                .files()
                .iter()
                .any(|f| f["blob"] == blob.as_str() && f["complete"] == true)
        },
        || format!("{:?}\n{}", ds[1].files(), ds[1].log_tail(20)),
    );
    println!(
        "64 kbit/s, 300 ms: a 300 kB photo was whole at bilal {:.1} s after it was shared",
        t.elapsed().as_secs_f64()
    );
    let out = tmp.path().join("copy.jpg");
    ds[1].ok(&["get", &msg, "--out", out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == data, "the bytes shared");
    for d in &mut ds {
        assert!(d.stop());
    }
}

/// Sites that never meet: bilal is with amina, then walks over to chen. chen gets amina's
/// messages and her roster change from bilal, and amina gets chen's when bilal returns.
#[test]
fn a_courier_carries_messages_and_roster_changes_between_sites_that_never_meet() {
    if !netns_available("courier") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("cr", 3).unwrap();
    let mut ds = org(&bin, tmp.path(), &["amina", "bilal", "chen"]);
    for (i, d) in ds.iter_mut().enumerate() {
        d.start(&lan, i, &[]);
    }
    for d in &ds {
        wait_until("everyone connected once", 30, || d.peers().len() == 2);
    }
    // Site A (amina) and site B (chen) part; bilal stays with amina.
    lan.set_link(2, false).unwrap();
    wait_until("chen gone", 40, || ds[0].peers().len() == 1);
    ds[0].ok(&["send", "general", "from site A"]);
    ds[0].ok(&["channel", "create", "field-ops"]);
    let v = ds[0].stats()["roster_version"].as_u64().unwrap();
    wait_until("bilal carries it", 30, || {
        texts(&ds[1]).contains(&"from site A".to_string())
            && ds[1].stats()["roster_version"].as_u64() == Some(v)
    });
    // bilal walks to site B.
    lan.set_link(0, false).unwrap();
    lan.set_link(2, true).unwrap();
    let t = Instant::now();
    wait_until("chen has site A's message and roster", 60, || {
        texts(&ds[2]).contains(&"from site A".to_string())
            && ds[2].stats()["roster_version"].as_u64() == Some(v)
    });
    println!(
        "courier: site B had site A's message and roster {:.2} s after bilal arrived",
        t.elapsed().as_secs_f64()
    );
    ds[2].ok(&["send", "field-ops", "from site B"]);
    wait_until("bilal has chen's reply", 30, || {
        ds[1].history("field-ops").len() == 1
    });
    // bilal walks back.
    lan.set_link(2, false).unwrap();
    lan.set_link(0, true).unwrap();
    let t = Instant::now();
    wait_until("amina has site B's reply", 60, || {
        ds[0].history("field-ops").len() == 1
    });
    println!(
        "courier: site A had site B's reply {:.2} s after bilal returned",
        t.elapsed().as_secs_f64()
    );
    for d in &mut ds {
        assert!(d.stop());
    }
}

/// bilal's laptop moves to another address (a new network) without a restart: he is found
/// again and messages flow both ways.
#[test]
fn a_laptop_that_changes_address_is_found_again_without_a_restart() {
    if !netns_available("address change") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut lan = Lan::new("ac", 2).unwrap();
    let mut ds = org(&bin, tmp.path(), &["amina", "bilal"]);
    for (i, d) in ds.iter_mut().enumerate() {
        d.start(&lan, i, &[]);
    }
    wait_until("connected", 30, || ds[0].peers().len() == 1);
    ds[0].ok(&["send", "general", "before the move"]);
    wait_until("first message", 30, || ds[1].history("general").len() == 1);
    let old = lan.addrs[1].clone();
    let new = lan.move_host(1, 100).unwrap();
    println!("bilal moved from {old} to {new}");
    let t = Instant::now();
    // Found again at the new address, or at the link-local one (which a move on the same
    // switch keeps): not at the old one.
    let via = || {
        ds[0]
            .peers()
            .iter()
            .filter_map(|p| p["addr"].as_str().map(str::to_string))
            .find(|a| a.contains(&format!("/{new}/")) || a.contains("/fe80:"))
    };
    wait_until("connected again, not at the old address", 90, || {
        via().is_some()
    });
    println!(
        "found again {:.2} s after the move, over {}",
        t.elapsed().as_secs_f64(),
        via().unwrap_or_default()
    );
    // Bilal's diagnostics list where it listens now, not where it used to.
    wait_until("bilal's doctor lists the new address only", 10, || {
        let out = ds[1].cli(&["doctor", "--json"]);
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let listen = r["report"]["listen"].to_string();
        listen.contains(&format!("/ip4/{new}/")) && !listen.contains(&format!("/ip4/{old}/"))
    });
    ds[1].ok(&["send", "general", "after the move"]);
    ds[0].ok(&["send", "general", "welcome back"]);
    wait_until("both ways", 30, || {
        ds[0].history("general").len() == 3 && ds[1].history("general").len() == 3
    });
    for d in &mut ds {
        assert!(d.stop());
    }
}

/// A host's own `/etc/hosts` (`ip netns exec` shows `/etc/netns/NAME/hosts` in its place),
/// removed when dropped.
struct HostsFile(std::path::PathBuf);

impl HostsFile {
    /// With a resolver of its own at the namespace's loopback, where nothing answers: a
    /// name not in the hosts file fails at once, and nothing is asked outside.
    fn new(ns: &str) -> HostsFile {
        let dir = std::path::Path::new("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        let hosts = HostsFile(dir);
        hosts.set("");
        hosts
    }

    /// Written in place: the file a running process sees is this one.
    fn set(&self, lines: &str) {
        std::fs::write(
            self.0.join("hosts"),
            format!("127.0.0.1 localhost\n{lines}\n"),
        )
        .unwrap();
    }
}

impl Drop for HostsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A site whose members reach the relay by name (`--peer relay.site:7441`, no multicast).
/// A member started before the name resolves (the site's DNS not up yet at boot) runs
/// anyway, says so once, and finds the relay when it does (before, `--peer` refused to
/// start). Then the relay is replaced by a machine at another address, which knows
/// nobody's address: the members find it under its name without a restart, as the name
/// is resolved again before each dial (before, once at start: they dialled the old address
/// for good).
#[test]
fn a_relay_given_by_name_is_found_at_its_new_address() {
    if !netns_available("relay by name") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut lan = Lan::new("rn", 2).unwrap();
    // IPv4 only at the relay: a link-local IPv6 address would survive the move.
    let off = lan
        .command(0, std::path::Path::new("sysctl"))
        .args(["-qw", "net.ipv6.conf.all.disable_ipv6=1"])
        .status()
        .unwrap();
    assert!(off.success());
    let hosts = HostsFile::new(&lan.hosts[1]);
    let mut ds = org(&bin, tmp.path(), &["amina", "bilal"]);
    let relay = ["--no-mdns", "--listen", "/ip4/0.0.0.0/tcp/7441"];
    ds[0].start(&lan, 0, &relay);
    // relay.site does not resolve yet at bilal's.
    ds[1].start(&lan, 1, &["--no-mdns", "--peer", "relay.site:7441"]);
    std::thread::sleep(Duration::from_secs(7));
    let said = ds[1]
        .log_text()
        .matches("cannot resolve 'relay.site'")
        .count();
    assert_eq!(
        said,
        1,
        "said once, not at each of its redials:\n{}",
        ds[1].log_tail(20)
    );
    assert!(ds[1].peers().is_empty());
    assert!(ds[1].exited().is_none(), "bilal's node stopped");
    hosts.set(&format!("{} relay.site", lan.addrs[0]));
    let t = Instant::now();
    wait_or_tell(
        "bilal reaches the relay by name once it resolves",
        30,
        || ds[1].peers().len() == 1,
        || String::from_utf8_lossy(&ds[1].cli(&["doctor"]).stdout).to_string(),
    );
    println!(
        "reached {:.1} s after the name resolved",
        t.elapsed().as_secs_f64()
    );
    ds[1].ok(&["send", "general", "before the move"]);
    wait_until("the relay has it", 20, || {
        ds[0].history("general").len() == 1
    });
    assert!(ds[0].stop());
    let new = lan.move_host(0, 100).unwrap();
    hosts.set(&format!("{new} relay.site"));
    ds[0].start(&lan, 0, &relay);
    let t = Instant::now();
    wait_or_tell(
        "bilal finds the relay at its new address",
        60,
        || ds[1].peers().len() == 1,
        || String::from_utf8_lossy(&ds[1].cli(&["doctor"]).stdout).to_string(),
    );
    println!(
        "found again {:.1} s after the relay restarted at {new}",
        t.elapsed().as_secs_f64()
    );
    ds[0].ok(&["send", "general", "from the new machine"]);
    ds[1].ok(&["send", "general", "after the move"]);
    wait_until("both ways", 30, || {
        ds[0].history("general").len() == 3 && ds[1].history("general").len() == 3
    });
    for d in &mut ds {
        assert!(d.stop());
    }
}

/// Context switches (≈ wakeups) per thread name, and CPU ticks, of a process.
fn wakeups_and_ticks(pid: u32) -> (std::collections::BTreeMap<String, u64>, u64) {
    let mut switches = std::collections::BTreeMap::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let st = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let n: u64 = st
            .lines()
            .filter(|l| {
                l.starts_with("voluntary_ctxt_switches")
                    || l.starts_with("nonvoluntary_ctxt_switches")
            })
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        *switches.entry(name.trim().to_string()).or_default() += n;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (switches, ticks)
}

/// Three laptops connected and idle for 30 s: what the link carries and how often a node
/// wakes (field teams run on batteries and radio links).
#[test]
fn an_idle_node_sends_little_and_wakes_rarely() {
    if !netns_available("idle cost") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("id", 3).unwrap();
    let mut ds = org(&bin, tmp.path(), &["amina", "bilal", "chen"]);
    for (i, d) in ds.iter_mut().enumerate() {
        d.start(&lan, i, &[]);
    }
    for d in &ds {
        wait_until("everyone connected", 30, || d.peers().len() == 2);
    }
    // Let start-up traffic settle and the nodes notice they are quiet (30 s).
    std::thread::sleep(Duration::from_secs(32));
    let pid = ds[1].pid().unwrap();
    let (b0, (w0, t0)) = (lan.iface_bytes(1).unwrap(), wakeups_and_ticks(pid));
    let secs = 30;
    std::thread::sleep(Duration::from_secs(secs));
    let (b1, (w1, t1)) = (lan.iface_bytes(1).unwrap(), wakeups_and_ticks(pid));
    let per_min = |x: u64| x * 60 / secs;
    let bytes_per_peer_min = per_min(b1 - b0) / 2;
    let mut by_thread: Vec<(u64, &String)> = w1
        .iter()
        // A thread that ended in between (an idle blocking-pool thread) takes its count
        // with it: a name's sum can fall.
        .map(|(name, n)| {
            let before = w0.get(name).copied().unwrap_or(0);
            (per_min(n.saturating_sub(before)), name)
        })
        .filter(|(n, _)| *n > 0)
        .collect();
    by_thread.sort_by(|a, b| b.cmp(a));
    println!(
        "idle, 2 peers: {} bytes/min per peer (in + out, whole frames), {} wakeups/min ({by_thread:?}), {} ms CPU/min",
        bytes_per_peer_min,
        by_thread.iter().map(|(n, _)| n).sum::<u64>(),
        per_min(t1 - t0) * 10
    );
    // Measured 22–49 KB/min (docs/benchmarks.md); the bound catches a runaway, not noise.
    assert!(bytes_per_peer_min < 128 * 1024, "idle traffic is not small");
    assert!(per_min(t1 - t0) * 10 < 3_000, "an idle node burns CPU");
    for d in &mut ds {
        assert!(d.stop());
    }
}
