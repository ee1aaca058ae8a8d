//! A hostile host on the namespace LAN (needs root; CI runs it) that is on no roster attacks
//! with connections: 5 000 TCP sockets held open without a handshake against a member node
//! and against a node that is still bootstrapping (it holds no roster, so it admits strangers
//! who might hand it one), and 20 handshaking strangers against the bootstrapping node.
//! Members still connect and talk; the nodes' memory and open files stay bounded; the
//! refusals are counted. Each figure is printed.

use std::process::Stdio;
use std::time::{Duration, Instant};

use majlis_tests::{netns_available, wait_until, Daemon, Lan};

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn socket_floods_and_strangers_do_not_keep_members_apart() {
    if !netns_available("hostile host") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let hostile = std::path::PathBuf::from(env!("CARGO_BIN_EXE_hostile"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("hs", 3).unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    amina.ok(&["init", "--name", "amina"]);
    let org = amina.ok(&["org", "create", "--name", "acme"]);
    let id = bilal.ok(&["init", "--name", "bilal"]);
    bilal.ok(&["org", "join", &org]);
    amina.ok(&["roster", "add", "--name", "bilal", "--device", &id]);
    let a_addr = format!("/ip4/{}/tcp/7441", lan.addrs[0]);
    let b_addr = format!("/ip4/{}/tcp/7441", lan.addrs[1]);

    // bilal starts first: amina is not up yet, so it waits with its bootstrap gate open.
    bilal.start(
        &lan,
        1,
        &["--no-mdns", "--listen", &b_addr, "--peer", &a_addr],
    );
    let bpid = bilal.pid().unwrap();
    let (b_rss0, b_fd0) = (status_kb(bpid, "VmRSS:"), open_files(bpid));
    let attack = |args: &[&str]| {
        lan.command(2, &hostile)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let b_sock = format!("{}:7441", lan.addrs[1]);
    let a_sock = format!("{}:7441", lan.addrs[0]);
    let sockets_b = attack(&["sockets", &b_sock, "5000", "25"]);
    let strangers = attack(&["strangers", &b_addr, "20", "12"]);
    std::thread::sleep(Duration::from_secs(4));
    let (b_rss, b_fd) = (status_kb(bpid, "VmRSS:"), open_files(bpid));
    println!(
        "bootstrapping node under 5000 sockets + 20 strangers: RSS {b_rss0} -> {b_rss} kB, open files {b_fd0} -> {b_fd}"
    );

    // amina comes up and is flooded too; bilal must still reach her and get the roster.
    amina.start(&lan, 0, &["--no-mdns", "--listen", &a_addr]);
    let apid = amina.pid().unwrap();
    let (a_rss0, a_fd0) = (status_kb(apid, "VmRSS:"), open_files(apid));
    let sockets_a = attack(&["sockets", &a_sock, "5000", "20"]);
    let t = Instant::now();
    wait_until("bilal holds the roster and both are connected", 30, || {
        amina.peers().len() == 1 && bilal.peers().len() == 1
    });
    println!(
        "bilal bootstrapped and connected {:.2} s after amina started, under the flood",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    amina.ok(&["send", "general", "salam under fire"]);
    bilal.ok(&["send", "general", "wa alaykum"]);
    wait_until("both messages both ways", 30, || {
        amina.history("general").len() == 2 && bilal.history("general").len() == 2
    });
    println!(
        "members talked under the flood: both messages both ways in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(2));
    let (a_rss, a_fd) = (status_kb(apid, "VmRSS:"), open_files(apid));
    println!(
        "member node under 5000 sockets: RSS {a_rss0} -> {a_rss} kB, open files {a_fd0} -> {a_fd}"
    );
    let out = |c: std::process::Child| -> serde_json::Value {
        let o = c.wait_with_output().unwrap();
        serde_json::from_slice(&o.stdout).unwrap_or_default()
    };
    let (sa, sb) = (amina.stats(), bilal.stats());
    let st = out(strangers);
    println!(
        "refused by a limit: member {}, bootstrapping {}; strangers {}",
        sa["limited_connections"], sb["limited_connections"], st
    );
    println!(
        "socket floods: at bilal {}, at amina {}",
        out(sockets_b),
        out(sockets_a)
    );
    assert!(sa["limited_connections"].as_u64().unwrap() > 1000);
    assert!(sb["limited_connections"].as_u64().unwrap() > 1000);
    assert_eq!(
        st["still_connected"], 0,
        "strangers stayed connected after the roster arrived"
    );
    // Bounded: no file descriptor per flooding socket, and no runaway memory.
    assert!(
        a_fd < a_fd0 + 100 && b_fd < b_fd0 + 100,
        "open files grew with the flood"
    );
    assert!(a_rss < a_rss0 + 64 * 1024 && b_rss < b_rss0 + 64 * 1024);
    assert!(amina.stop() && bilal.stop());
}

/// A LAN host announces 1 000 mDNS records of the org that claim to be amina's and bilal's
/// devices, at its own address and at ports where nothing listens, before and while they
/// start. They still find each other over mDNS alone and talk.
#[test]
fn spoofed_mdns_records_for_real_devices_do_not_keep_members_apart() {
    if !netns_available("mDNS spoofing") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let hostile = std::path::PathBuf::from(env!("CARGO_BIN_EXE_hostile"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("sp", 3).unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    let a_id = amina.ok(&["init", "--name", "amina"]);
    let org = amina.ok(&["org", "create", "--name", "acme"]);
    let b_id = bilal.ok(&["init", "--name", "bilal"]);
    bilal.ok(&["org", "join", &org]);
    amina.ok(&["roster", "add", "--name", "bilal", "--device", &b_id]);
    let spoofer = lan
        .command(2, &hostile)
        .args(["mdns", &org, "1000", "30", &a_id, &b_id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let t = Instant::now();
    amina.start(&lan, 0, &[]);
    bilal.start(&lan, 1, &[]);
    wait_until("amina and bilal connected over mDNS", 30, || {
        amina.peers().len() == 1 && bilal.peers().len() == 1
    });
    println!(
        "found each other among 1000 spoofed records in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    amina.ok(&["send", "general", "still here"]);
    wait_until("the message", 30, || bilal.history("general").len() == 1);
    let rss = status_kb(amina.pid().unwrap(), "VmRSS:");
    println!("amina RSS under the spoofing: {rss} kB");
    assert!(rss < 200 * 1024);
    let o = spoofer.wait_with_output().unwrap();
    println!("spoofer: {}", String::from_utf8_lossy(&o.stdout).trim());
    assert!(amina.stop() && bilal.stop());
}

/// A newcomer joins over the LAN with no admin typing its id: `org join`, `run`, and the
/// admin's `roster requests` lists it under the name it asks for (its mDNS record), with the
/// join code its own `status` shows. An impostor on the LAN asking under the same name is
/// listed too, with another code: the admin adds the device whose code is the one on the
/// newcomer's screen. The newcomer talks; the impostor stays out.
#[test]
fn a_newcomer_asks_to_join_over_mdns_and_the_admin_adds_it_by_its_code() {
    if !netns_available("joining over mDNS") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("jn", 3).unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    let mut eve = Daemon::new(&bin, tmp.path(), "eve");
    amina.ok(&["init", "--name", "amina"]);
    let org = amina.ok(&["org", "create", "--name", "acme"]);
    assert!(
        amina
            .fails(&["roster", "requests"])
            .contains("start `majlisd run`"),
        "without a running node there is nothing to list, and it says so"
    );
    amina.start(&lan, 0, &[]);
    let b_id = bilal.ok(&["init", "--name", "bilal"]);
    let joined = bilal.all(&["org", "join", &org]);
    bilal.start(&lan, 1, &[]);
    // The impostor knows the org id (it is no secret) and asks under bilal's name.
    let e_id = eve.ok(&["init", "--name", "bilal"]);
    eve.ok(&["org", "join", &org]);
    eve.start(&lan, 2, &[]);

    let status: serde_json::Value = serde_json::from_str(&bilal.ok(&["status", "--json"])).unwrap();
    let code = status["join_code"].as_str().unwrap().to_string();
    assert!(
        joined.contains(&code),
        "`org join` says the code too: {joined}"
    );
    let requests = || -> Vec<serde_json::Value> {
        serde_json::from_str(&amina.ok(&["roster", "requests", "--json"])).unwrap()
    };
    let t = Instant::now();
    wait_until("both ask to join as bilal", 30, || {
        let r = requests();
        r.len() == 2 && r.iter().all(|s| s["asks"] == "bilal")
    });
    println!(
        "the admin saw both requests {:.2} s after they started",
        t.elapsed().as_secs_f64()
    );
    let r = requests();
    let matching: Vec<&serde_json::Value> = r.iter().filter(|s| s["code"] == code).collect();
    assert_eq!(
        matching.len(),
        1,
        "one request has the newcomer's code: {r:?}"
    );
    assert_eq!(matching[0]["device"], b_id.as_str());
    let text = amina.all(&["roster", "requests"]);
    assert!(
        text.contains(&format!("roster add --name bilal --device {b_id}")),
        "{text}"
    );

    // The admin types the code bilal reads out; a wrong one adds nobody.
    let wrong = amina.fails(&[
        "roster",
        "add",
        "--name",
        "bilal",
        "--code",
        "0000 0000 0000",
    ]);
    assert!(
        wrong.contains("no device asking to join shows the code"),
        "{wrong}"
    );
    let typo = amina.fails(&["roster", "add", "--name", "bilal", "--code", "2134 92"]);
    assert!(typo.contains("is not a join code"), "{typo}");
    amina.ok(&["roster", "add", "--name", "bilal", "--code", &code]);
    wait_until("bilal holds the roster and is connected", 30, || {
        bilal.peers().len() == 1
    });
    bilal.ok(&["send", "general", "joined by my code"]);
    wait_until("amina reads it", 30, || amina.history("general").len() == 1);
    let r = requests();
    assert!(
        r.len() == 1 && r[0]["device"] != b_id.as_str(),
        "bilal is no longer waiting, the impostor still is: {r:?}"
    );
    // Listed, bilal's device no longer tells the LAN his name; eve, still asking, does
    // (which also shows the listener hears the LAN).
    let hostile = std::path::PathBuf::from(env!("CARGO_BIN_EXE_hostile"));
    let out = lan
        .command(2, &hostile)
        .args(["listen", "-", "0", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let heard: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let records = &heard["records"];
    assert_eq!(
        records[b_id.as_str()]["dev"],
        b_id.as_str(),
        "bilal's heard: {heard}"
    );
    assert_eq!(records[e_id.as_str()]["name"], "bilal", "{heard}");
    assert!(
        records[b_id.as_str()].get("name").is_none(),
        "a member's device announces no name: {heard}"
    );
    // The impostor holds nothing and reaches nobody.
    std::thread::sleep(Duration::from_secs(2));
    assert!(eve.peers().is_empty());
    assert!(eve.history("general").is_empty());
    assert_eq!(amina.peers().len(), 1);
    assert!(amina.stop() && bilal.stop() && eve.stop());
}

/// `majlisd org join` run inside a namespace host, for a device of no org yet (mDNS needs the
/// LAN): its whole output, and whether it succeeded.
fn join_on_lan(lan: &Lan, host: usize, d: &Daemon, args: &[&str]) -> (bool, String) {
    let out = lan
        .command(host, &d.bin)
        .arg("--data")
        .arg(&d.dir)
        .args(["org", "join"])
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// An admin invites on the LAN for a while: a newcomer lists the orgs inviting there and
/// joins by the org's name, no id typed; once the admin stops, a name joins nothing and says
/// why.
#[test]
fn a_newcomer_joins_an_org_inviting_on_the_lan_by_its_name() {
    if !netns_available("invitations over mDNS") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("iv", 3).unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    let chen = Daemon::new(&bin, tmp.path(), "chen");
    amina.ok(&["init", "--name", "amina"]);
    let org = amina.ok(&["org", "create", "--name", "acme"]);
    assert!(amina
        .fails(&["org", "invite"])
        .contains("start `majlisd run`"));
    amina.start(&lan, 0, &[]);
    let said = amina.all(&["org", "invite", "--for", "10m"]);
    assert!(
        said.contains("inviting newcomers on this network to acme until"),
        "{said}"
    );

    let b_id = bilal.ok(&["init", "--name", "bilal"]);
    let (ok, listed) = join_on_lan(&lan, 1, &bilal, &[]);
    assert!(ok && listed.contains(&format!("acme\t{org}")), "{listed}");
    let (ok, text) = join_on_lan(&lan, 1, &bilal, &["Acme"]);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("joined org {org}")), "{text}");
    let status: serde_json::Value = serde_json::from_str(&bilal.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["org"], org.as_str());
    bilal.start(&lan, 1, &[]);
    wait_until("amina sees bilal ask", 30, || {
        let r: Vec<serde_json::Value> =
            serde_json::from_str(&amina.ok(&["roster", "requests", "--json"])).unwrap();
        r.iter()
            .any(|s| s["device"] == b_id.as_str() && s["code"] == status["join_code"])
    });
    amina.ok(&["roster", "add", "--name", "bilal", "--device", &b_id]);
    wait_until("bilal connected", 30, || bilal.peers().len() == 1);

    assert!(amina
        .all(&["org", "invite", "--stop"])
        .contains("no longer inviting"));
    chen.ok(&["init", "--name", "chen"]);
    let (ok, text) = join_on_lan(&lan, 2, &chen, &["acme"]);
    assert!(
        !ok && text.contains("neither an org id nor an org inviting"),
        "{text}"
    );
    assert!(amina.stop() && bilal.stop());
}

/// A host on the LAN calls the admin's node with fresh keys by the hundred (a script, or a
/// colleague's modified client) while a newcomer waits to be added: the admin's requests to
/// join keep listing the newcomer, and the flood holds at most 4 places there.
#[test]
fn a_newcomer_stays_listed_while_a_host_calls_with_fresh_keys_by_the_hundred() {
    if !netns_available("a flood of callers") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let hostile = std::path::PathBuf::from(env!("CARGO_BIN_EXE_hostile"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("fc", 3).unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    amina.ok(&["init", "--name", "amina"]);
    let org = amina.ok(&["org", "create", "--name", "acme"]);
    let a_addr = format!("/ip4/{}/tcp/7441", lan.addrs[0]);
    amina.start(&lan, 0, &["--no-mdns", "--listen", &a_addr]);
    let b_id = bilal.ok(&["init", "--name", "bilal"]);
    bilal.ok(&["org", "join", &org]);
    bilal.start(&lan, 1, &["--no-mdns", "--peer", &a_addr]);
    let requests = || -> Vec<serde_json::Value> {
        serde_json::from_str(&amina.ok(&["roster", "requests", "--json"])).unwrap()
    };
    let has_bilal = |r: &[serde_json::Value]| r.iter().any(|s| s["device"] == b_id.as_str());
    wait_until("amina lists bilal", 30, || has_bilal(&requests()));
    let flooder = lan.addrs[2].to_string();
    for round in 0..4 {
        let o = lan
            .command(2, &hostile)
            .args(["strangers", &a_addr, "60", "2"])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&o.stdout);
        let r = requests();
        let flood = r
            .iter()
            .filter(|s| {
                s["addrs"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|a| a.as_str().unwrap_or("").contains(&flooder))
                })
            })
            .count();
        println!(
            "round {round}: {said} -> {} requests, {flood} from the flooding host",
            r.len()
        );
        assert!(
            has_bilal(&r),
            "round {round}: bilal pushed out by {} others",
            r.len()
        );
        assert!(flood <= 4, "round {round}: {flood} places for one host");
    }
    assert!(amina.stop() && bilal.stop());
}

/// Where multicast does not reach (every node here runs `--no-mdns`), an admin's join link
/// carries the org and the admin node's address: `org link` prints it (with the node's LAN
/// address, never loopback), the newcomer's `org join LINK` joins and remembers the address,
/// its `run` dials it with no `--peer`, the admin adds it by the code it shows, and after a
/// restart it finds the org again by the remembered address alone. A malformed link is
/// refused in words and joins nothing.
#[test]
fn a_newcomer_joins_with_the_admins_join_link_where_multicast_does_not_reach() {
    if !netns_available("joining with a link") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("ln", 2).unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    amina.ok(&["init", "--name", "amina"]);
    let org = amina.ok(&["org", "create", "--name", "acme"]);
    let alone = amina.cli(&["org", "link"]);
    assert_eq!(
        String::from_utf8_lossy(&alone.stdout).trim(),
        format!("majlis:join/{org}")
    );
    assert!(String::from_utf8_lossy(&alone.stderr).contains("start `majlisd run`"));
    amina.start(&lan, 0, &["--no-mdns"]);
    let link = amina.ok(&["org", "link"]);
    let want = format!("majlis:join/{org}?peer={}:", lan.addrs[0]);
    assert!(link.starts_with(&want), "{link} (wanted {want}…)");
    assert!(!link.contains("127.0.0.1"), "{link}");

    bilal.ok(&["init", "--name", "bilal"]);
    let e = bilal.fails(&["org", "join", "majlis:join/nonsense?peer=10.0.0.5:7441"]);
    assert!(e.contains("is not an org id"), "{e}");
    let e = bilal.fails(&["org", "join", &format!("majlis:join/{org}?peer=10.0.0.5")]);
    assert!(e.contains("not ADDRESS:PORT"), "{e}");
    let joined = bilal.all(&["org", "join", &link]);
    assert!(
        joined.contains(&format!("it dials {}:", lan.addrs[0])),
        "{joined}"
    );
    bilal.start(&lan, 1, &["--no-mdns"]);
    let status: serde_json::Value = serde_json::from_str(&bilal.ok(&["status", "--json"])).unwrap();
    let code = status["join_code"].as_str().unwrap().to_string();
    wait_until("bilal asks amina's node to join", 30, || {
        amina.all(&["roster", "requests"]).contains(&code)
    });
    amina.ok(&["roster", "add", "--name", "bilal", "--code", &code]);
    wait_until("bilal holds the roster and is connected", 30, || {
        bilal.peers().len() == 1
    });
    bilal.ok(&["send", "general", "joined by the link"]);
    wait_until("amina reads it", 30, || amina.history("general").len() == 1);

    // Restarted with no --peer and no multicast: the link's address is remembered.
    assert!(bilal.stop());
    amina.ok(&["send", "general", "while you were away"]);
    bilal.start(&lan, 1, &["--no-mdns"]);
    wait_until("bilal finds the org again and catches up", 30, || {
        bilal.history("general").len() == 2
    });
    assert!(amina.stop() && bilal.stop());
}
