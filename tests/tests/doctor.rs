//! `majlisd doctor` answers "why can't I see X?" from the CLI, with real processes on a
//! namespace LAN (mDNS on). Needs root (CI runs it as root with MAJLIS_REQUIRE_NETNS=1).

use majlis_tests::{netns_available, wait_until, Daemon, Lan};

fn doctor(d: &Daemon, json: bool) -> (bool, String, String) {
    let args: &[&str] = if json {
        &["doctor", "--json"]
    } else {
        &["doctor"]
    };
    let out = d.cli(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// amina (admin) and bilal (member) of one org; returns bilal's device id and the org id too.
fn org_of_two(bin: &std::path::Path, root: &std::path::Path) -> (Daemon, Daemon, String, String) {
    let a = Daemon::new(bin, root, "amina");
    let b = Daemon::new(bin, root, "bilal");
    a.ok(&["init", "--name", "amina"]);
    let org = a.ok(&["org", "create", "--name", "acme"]);
    let id = b.ok(&["init", "--name", "bilal"]);
    b.ok(&["org", "join", &org]);
    a.ok(&["roster", "add", "--name", "bilal", "--device", &id]);
    (a, b, id, org)
}

#[test]
fn doctor_says_who_is_connected_and_why_the_others_are_not() {
    if !netns_available("doctor") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("d", 2).unwrap();
    let (mut a, mut b, id, _) = org_of_two(&bin, tmp.path());

    // No node running: that is the answer, and it is an error.
    let (ok, _, err) = doctor(&a, false);
    assert!(!ok && err.contains("not running"), "{err}");

    // Bilal is also given a static peer nobody listens on.
    let dead = format!("/ip4/{}/tcp/9", lan.addrs[0]);
    a.start(&lan, 0, &[]);
    b.start(&lan, 1, &["--peer", &dead]);
    wait_until("amina and bilal connected over mDNS", 30, || {
        a.peers().len() == 1
    });

    let (ok, out, err) = doctor(&a, false);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("bilal") && out.contains("connected at"),
        "{out}"
    );
    assert!(
        out.contains("interface eth0") && out.contains("mDNS: on"),
        "{out}"
    );
    // Nothing fires when all is well (once bilal holds the roster it fetched).
    wait_doctor(&a, "amina's doctor says nothing is wrong", 10, |ok, out| {
        ok && out.contains("nothing looks wrong")
    });

    wait_until("bilal's doctor names the refused static peer", 20, || {
        let (ok, out, _) = doctor(&b, false);
        !ok && out.contains(&format!("PROBLEM: static peer {dead} is not connected"))
            && out.contains("refused: nothing listens on that port there")
    });

    let (_, out, _) = doctor(&a, true);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["report"]["devices"][0]["member"], "bilal");
    assert!(v["report"]["devices"][0]["connected"].is_string(), "{v}");

    // A text for a ticket: shortened ids, the findings, and it says who is connected.
    let out = a.cli(&["doctor", "--report"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("majlis diagnostics: device"), "{text}");
    assert!(
        text.contains("bilal ") && text.contains("connected at"),
        "{text}"
    );
    assert!(!text.contains(&id), "full device ids are shortened: {text}");

    // Bilal goes away: nobody is connected, which is a problem, with the reason.
    assert!(b.stop());
    wait_until("amina's doctor says no device is connected", 20, || {
        let (ok, out, _) = doctor(&a, false);
        !ok && out.contains("PROBLEM: no device of the org is connected") && out.contains("bilal")
    });
    assert!(a.stop());
}

/// A firewall drops multicast DNS: nobody is found, and the doctor says that multicast may
/// be blocked (and, once a peer is given by address, that all is well).
#[test]
fn doctor_names_blocked_multicast() {
    if !netns_available("doctor_mdns") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("b", 2).unwrap();
    let (mut a, mut b, _, _) = org_of_two(&bin, tmp.path());
    for i in 0..2 {
        lan.block_mdns(i).expect("nftables (CI installs it)");
    }
    a.start(&lan, 0, &["--listen", "/ip4/0.0.0.0/tcp/7441"]);
    b.start(&lan, 1, &[]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (ok, out, _) = doctor(&a, false);
    assert!(!ok, "{out}");
    assert!(
        out.contains("PROBLEM: no device of the org is connected")
            && out.contains("multicast may be blocked"),
        "{out}"
    );
    assert!(
        out.contains("bilal") && out.contains("has not been seen"),
        "{out}"
    );
    // Given by address, it connects, and the doctor is content.
    b.stop();
    b.start(
        &lan,
        1,
        &["--peer", &format!("/ip4/{}/tcp/7441", lan.addrs[0])],
    );
    wait_until("amina's doctor is content", 30, || doctor(&a, false).0);
    // ... and notes that nothing came over mDNS, so new devices here need addresses.
    wait_doctor(
        &a,
        "amina's doctor notes that mDNS finds nobody",
        30,
        |ok, out| ok && out.contains("note: every connected device was found by address"),
    );
    assert!(a.stop() && b.stop());
}

/// Wait until `d`'s doctor says what `ok` wants; on a timeout, show what it said last.
fn wait_doctor(d: &Daemon, what: &str, secs: u64, ok: impl Fn(bool, &str) -> bool) {
    let t = std::time::Instant::now();
    loop {
        let (fine, out, err) = doctor(d, false);
        if ok(fine, &out) {
            return;
        }
        assert!(
            t.elapsed().as_secs() < secs,
            "timed out after {secs}s waiting for {what}; the doctor said:\n{out}\n{err}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

fn report(d: &Daemon) -> serde_json::Value {
    let out = d.cli(&["doctor", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// The device line of `member` in a JSON report.
fn device<'a>(r: &'a serde_json::Value, member: &str) -> &'a serde_json::Value {
    r["report"]["devices"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["member"] == member))
        .unwrap_or(&serde_json::Value::Null)
}

/// The org moved on while bilal was away: carol was added, and bilal's roster (version 2)
/// does not list her. With nobody around who holds version 3, bilal turns carol away. Each
/// doctor names its side of it; once the admin is back, both are content, and later changes
/// show in the facts within 2 s.
#[test]
fn doctor_names_a_stale_roster_from_both_sides_and_stays_current() {
    if !netns_available("doctor_stale") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("s", 3).unwrap();
    let (mut a, mut b, _, org) = org_of_two(&bin, tmp.path());
    let mut c = Daemon::new(&bin, tmp.path(), "carol");
    let carol = c.ok(&["init", "--name", "carol"]);
    c.ok(&["org", "join", &org]);

    // Bilal gets version 2, then leaves; carol is added (version 3) and gets it from amina.
    a.start(&lan, 0, &[]);
    b.start(&lan, 1, &[]);
    wait_until("bilal has the roster", 30, || b.peers().len() == 1);
    assert!(b.stop());
    a.ok(&["roster", "add", "--name", "carol", "--device", &carol]);
    c.start(&lan, 2, &[]);
    wait_until("carol has the roster", 30, || c.peers().len() == 1);
    assert!(a.stop());
    b.start(&lan, 1, &[]);

    wait_doctor(
        &b,
        "bilal's doctor names carol and its own stale roster",
        30,
        |ok, out| {
            !ok && out.contains(&format!("PROBLEM: device {carol}"))
                && out.contains("of this org but not on this roster (version 2)")
                && out.contains("cannot update")
        },
    );
    wait_doctor(
        &c,
        "carol's doctor says bilal's roster does not list her",
        30,
        |ok, out| {
            !ok && out.contains("bilal's device")
                && out.contains("its roster does not list this device")
        },
    );
    let r = report(&b);
    let s = &r["report"]["strangers"][0];
    assert_eq!(s["device"], carol.as_str(), "{r}");
    assert!(s["this_org"] == true && s["turned_away"].is_u64(), "{r}");
    assert!(
        s["addrs"].to_string().contains(&lan.addrs[2]),
        "carol's address is named: {r}"
    );

    // The admin comes back: bilal updates, lets carol in, and both doctors are content.
    a.start(&lan, 0, &[]);
    wait_until("bilal's and carol's doctors are content", 40, || {
        doctor(&b, false).0 && doctor(&c, false).0
    });
    let (_, out, _) = doctor(&b, false);
    assert!(!out.contains("not on this roster"), "{out}");

    // Facts follow changes within 2 s: a new roster version, as each peer holds it...
    a.ok(&["roster", "files", "--max-size", "1G"]);
    let t = std::time::Instant::now();
    wait_until("amina sees bilal and carol at version 4", 10, || {
        let r = report(&a);
        device(&r, "bilal")["roster_version"] == 4 && device(&r, "carol")["roster_version"] == 4
    });
    let took = t.elapsed();
    assert!(took.as_secs_f64() < 2.0, "roster versions took {took:?}");
    // ... and a device that leaves.
    assert!(c.stop());
    let t = std::time::Instant::now();
    wait_until("bilal sees carol gone", 10, || {
        device(&report(&b), "carol")["connected"].is_null()
    });
    let took = t.elapsed();
    assert!(took.as_secs_f64() < 2.0, "a departure took {took:?}");
    assert!(a.stop() && b.stop());
}

/// Three things an admin cannot see from the chat: a colleague whose device joined another
/// org, a member whose clock is 10 minutes off (messages get refused), and a copy of a data
/// directory running on a second computer with the same identity. Also: a second node on
/// the same data directory refuses to start and says why.
#[test]
fn doctor_names_another_org_a_wrong_clock_and_a_copied_identity() {
    if !netns_available("doctor_misc") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("m", 4).unwrap();
    let (mut a, mut b, _, _) = org_of_two(&bin, tmp.path());
    let mut z = Daemon::new(&bin, tmp.path(), "zara");
    z.ok(&["init", "--name", "zara"]);
    z.ok(&["org", "create", "--name", "elsewhere"]);

    a.start(&lan, 0, &[]);
    let preload = majlis_tests::faketime_preload();
    b.start_wrapped(&lan, 1, &["env", &preload, "FAKETIME=+10m"], &[]);
    z.start(&lan, 2, &[]);
    wait_doctor(
        &a,
        "amina's doctor names bilal's clock and the other org",
        30,
        |ok, out| {
            !ok && out.contains("PROBLEM: bilal's clock is 10 min ahead of this device's")
                && out.contains("another Majlis organization")
                && out.contains(&lan.addrs[2])
        },
    );
    let off = device(&report(&a), "bilal")["clock_offset_ms"]
        .as_i64()
        .unwrap();
    assert!((590_000..610_000).contains(&off), "offset {off}");

    // One node per data directory: a second one says why it cannot start.
    let mut second = std::process::Command::new(&a.bin)
        .arg("--data")
        .arg(&a.dir)
        .args(["run", "--no-mdns"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break s;
        }
        if t.elapsed().as_secs() > 20 {
            let _ = second.kill();
            panic!("a second node on one data directory kept running");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        !status.success() && err.contains("a node is already running for"),
        "{err}"
    );
    assert!(
        doctor(&a, false).1.contains("bilal"),
        "the first node still answers"
    );

    // Bilal's directory copied to a second computer, both running.
    assert!(b.stop());
    let copy = tmp.path().join("bilal-copy");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(&b.dir)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    let mut b2 = Daemon::new(&bin, tmp.path(), "bilal-copy");
    b.start(&lan, 1, &[]);
    b2.start(&lan, 3, &[]);
    wait_doctor(&b, "bilal's doctor names the copy", 30, |ok, out| {
        !ok && out.contains("a copy of this data directory runs there")
            && out.contains(&lan.addrs[3])
    });
    assert!(a.stop() && b.stop() && b2.stop() && z.stop());
}
