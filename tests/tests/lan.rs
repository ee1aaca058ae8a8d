//! End to end on a private namespace LAN: real `majlisd` processes, mDNS discovery, no
//! addresses given. Needs root (CI runs it as root with MAJLIS_REQUIRE_NETNS=1).

use majlis_tests::{netns_available, wait_until, Daemon, Lan};

fn ids(h: &[serde_json::Value]) -> Vec<String> {
    h.iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn mdns_lan_delivers_to_members_only_in_one_order_and_survives_restart() {
    if !netns_available("mdns_lan") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("e", 4).unwrap();

    let mut a = Daemon::new(&bin, tmp.path(), "amina");
    let mut b = Daemon::new(&bin, tmp.path(), "bilal");
    let mut c = Daemon::new(&bin, tmp.path(), "chen");
    let mut d = Daemon::new(&bin, tmp.path(), "dana"); // joins the org but is never added
    a.ok(&["init", "--name", "amina"]);
    let org = a.ok(&["org", "create", "--name", "acme"]);
    for n in [&b, &c, &d] {
        let id = n.ok(&["init", "--name", &n.name]);
        n.ok(&["org", "join", &org]);
        if n.name != "dana" {
            a.ok(&["roster", "add", "--name", &n.name, "--device", &id]);
        }
    }

    for (i, n) in [&mut a, &mut b, &mut c, &mut d].into_iter().enumerate() {
        n.start(&lan, i, &[]);
    }
    // Discovery over mDNS; B and C fetch their first roster from A.
    wait_until("A connected to B and C", 30, || a.peers().len() == 2);
    wait_until("B has the roster", 30, || {
        b.cli(&["roster", "show"]).status.success()
    });
    wait_until("C has the roster", 30, || {
        c.cli(&["roster", "show"]).status.success()
    });
    // A device that is not an admin cannot change the roster.
    let out = b.cli(&["channel", "create", "secret"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only admins"));
    let names: Vec<_> = a
        .peers()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["bilal", "chen"]);

    let mut sent = Vec::new();
    for round in 0..3 {
        for n in [&a, &b, &c] {
            sent.push(n.ok(&["send", "general", &format!("{} says {round}", n.name)]));
        }
    }
    // The outsider can neither post nor read.
    assert!(!d.cli(&["send", "general", "let me in"]).status.success());
    for n in [&a, &b, &c] {
        wait_until(&format!("{} has all 9 messages", n.name), 30, || {
            n.history("general").len() == 9
        });
    }
    let (ha, hb, hc) = (
        a.history("general"),
        b.history("general"),
        c.history("general"),
    );
    assert_eq!(ha, hb, "A and B disagree");
    assert_eq!(ha, hc, "A and C disagree");
    let mut got = ids(&ha);
    got.sort();
    sent.sort();
    assert_eq!(got, sent, "each sent message exactly once");
    for m in &ha {
        for key in ["id", "channel", "sender", "device", "sent_at", "text"] {
            assert!(m.get(key).is_some(), "history --json lacks {key}");
        }
    }
    assert!(
        d.history("general").is_empty(),
        "the outsider received messages"
    );
    assert!(a.peers().iter().all(|p| p["name"] != "dana"));
    let denied = a.stats()["denied_connections"].as_u64().unwrap();
    assert!(denied > 0, "A never refused the outsider's connection");
    for n in [&a, &b, &c] {
        assert_eq!(
            n.stats()["rejected"],
            serde_json::json!({}),
            "{} rejected input",
            n.name
        );
    }
    println!("outsider connections refused by A: {denied}");

    // Restart B: history is still there, and new messages still arrive.
    assert!(b.stop(), "B did not exit cleanly on SIGTERM");
    assert_eq!(
        b.history("general"),
        ha,
        "B's history changed across the restart"
    );
    b.start(&lan, 1, &[]);
    assert_eq!(b.history("general"), ha);
    wait_until("B reconnected", 30, || b.peers().len() >= 2);
    let id = a.ok(&["send", "general", "after restart"]);
    wait_until("B got the new message", 30, || {
        ids(&b.history("general")).contains(&id)
    });
    for n in [&mut a, &mut b, &mut c, &mut d] {
        assert!(
            n.stop(),
            "{} did not exit cleanly:\n{}",
            n.name,
            n.log_text()
        );
    }
}
