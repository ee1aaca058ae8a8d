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

/// amina (admin) and bilal (member) of one org; returns bilal's device id too.
fn org_of_two(bin: &std::path::Path, root: &std::path::Path) -> (Daemon, Daemon, String) {
    let a = Daemon::new(bin, root, "amina");
    let b = Daemon::new(bin, root, "bilal");
    a.ok(&["init", "--name", "amina"]);
    let org = a.ok(&["org", "create", "--name", "acme"]);
    let id = b.ok(&["init", "--name", "bilal"]);
    b.ok(&["org", "join", &org]);
    a.ok(&["roster", "add", "--name", "bilal", "--device", &id]);
    (a, b, id)
}

#[test]
fn doctor_says_who_is_connected_and_why_the_others_are_not() {
    if !netns_available("doctor") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("d", 2).unwrap();
    let (mut a, mut b, id) = org_of_two(&bin, tmp.path());

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
    assert!(out.contains("nothing looks wrong"), "{out}");

    wait_until("bilal's doctor names the refused static peer", 20, || {
        let (ok, out, _) = doctor(&b, false);
        !ok && out.contains(&format!("PROBLEM: static peer {dead} is not connected"))
            && out.to_lowercase().contains("refused")
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
    let (mut a, mut b, _) = org_of_two(&bin, tmp.path());
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
    assert!(a.stop() && b.stop());
}
