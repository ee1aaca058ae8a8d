//! End to end on a private namespace LAN: real `majlisd` processes, mDNS discovery, no
//! addresses given. Needs root (CI runs it as root with MAJLIS_REQUIRE_NETNS=1).

use std::time::{Duration, Instant};

use majlis_tests::{netns_available, org, wait_until, Daemon, Lan};

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

/// A fresh LAN with one host per name, the org set up, and every node started.
fn started_org(tag: &str, names: &[&str]) -> (tempfile::TempDir, Lan, Vec<Daemon>) {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new(tag, names.len()).unwrap();
    let mut ds = org(&bin, tmp.path(), names);
    for (i, d) in ds.iter_mut().enumerate() {
        d.start(&lan, i, &[]);
    }
    (tmp, lan, ds)
}

#[test]
fn partition_heals_and_every_host_ends_with_the_same_history() {
    if !netns_available("partition") {
        return;
    }
    let (_tmp, lan, mut ds) = started_org("p", &["amina", "bilal", "chen"]);
    for d in &ds {
        wait_until(&format!("{} connected to both others", d.name), 30, || {
            d.peers().len() == 2
        });
    }
    for d in &ds {
        d.ok(&["send", "general", &format!("{} before the split", d.name)]);
    }
    for d in &ds {
        wait_until("3 messages everywhere", 30, || {
            d.history("general").len() == 3
        });
    }

    lan.set_link(2, false).unwrap(); // chen is cut off
    let mut sent = Vec::new();
    for round in 0..5 {
        for d in &ds {
            sent.push(d.ok(&[
                "send",
                "general",
                &format!("{} during the split {round}", d.name),
            ]));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        ds[2].history("general").len() < 18,
        "chen got messages through a cut link"
    );
    lan.set_link(2, true).unwrap();
    let t = Instant::now();
    for d in &ds {
        wait_until(&format!("{} converged", d.name), 90, || {
            d.history("general").len() == 18
        });
    }
    println!(
        "converged {:.1} s after the partition healed",
        t.elapsed().as_secs_f64()
    );
    let h0 = ds[0].history("general");
    for d in &ds[1..] {
        assert_eq!(d.history("general"), h0, "{} disagrees", d.name);
    }
    let got: std::collections::HashSet<_> = ids(&h0).into_iter().collect();
    assert!(
        sent.iter().all(|id| got.contains(id)),
        "a message sent during the split is missing"
    );
    for d in &mut ds {
        assert!(d.stop());
    }
}

#[test]
fn offline_member_gets_everything_from_the_relay_while_the_author_is_offline() {
    if !netns_available("relay") {
        return;
    }
    let (_tmp, lan, mut ds) = started_org("r", &["amina", "relay", "bilal"]);
    wait_until("everyone connected", 30, || {
        ds.iter().all(|d| d.peers().len() == 2)
    });
    let first = ds[2].ok(&["send", "general", "bilal, before going home"]);
    wait_until("relay has it", 30, || {
        ids(&ds[1].history("general")).contains(&first)
    });
    assert!(!ds[1]
        .cli(&["send", "general", "relays never post"])
        .status
        .success());

    assert!(ds[2].stop()); // bilal goes offline
    let mut sent = vec![first];
    for i in 0..20 {
        sent.push(ds[0].ok(&["send", "general", &format!("amina while bilal is away {i}")]));
    }
    wait_until("relay has everything", 30, || {
        ds[1].history("general").len() == 21
    });
    assert!(ds[0].stop()); // the author goes offline too

    ds[2].start(&lan, 2, &[]);
    wait_until("bilal caught up from the relay", 30, || {
        ds[2].history("general").len() == 21
    });
    // Same messages, same order; the relay stores ciphertext it cannot open, bilal reads all.
    let (relay, bilal) = (ds[1].history("general"), ds[2].history("general"));
    assert_eq!(ids(&bilal), ids(&relay));
    let mut got = ids(&bilal);
    got.sort();
    let mut want = sent.clone();
    want.sort();
    assert_eq!(got, want);
    assert!(
        relay.iter().all(|m| m["locked"] == true),
        "the relay read a message"
    );
    assert!(bilal.iter().all(|m| m["locked"] == false));
    assert!(bilal
        .iter()
        .any(|m| m["text"] == "amina while bilal is away 19"));
    let synced = ds[2].stats()["synced"].as_u64().unwrap();
    assert!(synced >= 20, "bilal's messages came by sync: {synced}");
    for d in &mut ds {
        assert!(d.stop());
    }
}

#[test]
fn removal_cuts_the_device_off_everywhere_within_two_seconds() {
    if !netns_available("removal") {
        return;
    }
    let (_tmp, _lan, mut ds) = started_org("x", &["amina", "bilal", "chen"]);
    for d in &ds {
        wait_until(&format!("{} connected to both others", d.name), 30, || {
            d.peers().len() == 2
        });
    }
    let t = Instant::now();
    ds[0].ok(&["roster", "remove", "--name", "bilal"]);
    let refused = |d: &Daemon| d.peers().iter().all(|p| p["name"] != "bilal");
    wait_until("amina and chen refuse bilal", 10, || {
        refused(&ds[0]) && refused(&ds[2])
    });
    let cut = t.elapsed();
    // One wipe, several unlinks: the key goes first, the history a moment later.
    wait_until("bilal wiped its key and its history", 10, || {
        !ds[1].dir.join("device.key").exists() && !ds[1].dir.join("db").exists()
    });
    let wiped = t.elapsed();
    println!("roster remove → last node refusing: {cut:?}; removed device wiped: {wiped:?}");
    assert!(cut < Duration::from_secs(2), "took {cut:?}");
    // The node prints its notice after the erase has finished: give it that moment.
    wait_until("bilal says it was wiped", 10, || {
        ds[1].log_text().contains("erased")
    });
    assert!(
        ds[1].log_text().contains("erased"),
        "bilal did not say it was wiped:\n{}",
        ds[1].log_text()
    );
    let id = ds[0].ok(&["send", "general", "after bilal left"]);
    wait_until("chen still gets messages", 30, || {
        ids(&ds[2].history("general")).contains(&id)
    });
    assert!(ds[0].stop());
    assert!(ds[2].stop());
}

/// A laptop is lost while switched off and the admin removes it. When it is switched on
/// again on the office LAN (mDNS only), it finds the others, learns of its removal — and
/// nothing else — and wipes itself; the others never accept it.
#[test]
fn a_laptop_removed_while_off_wipes_itself_when_it_comes_back() {
    if !netns_available("lost laptop") {
        return;
    }
    let (_tmp, lan, mut ds) = started_org("l", &["amina", "bilal", "chen"]);
    for d in &ds {
        wait_until(&format!("{} connected to both others", d.name), 30, || {
            d.peers().len() == 2
        });
    }
    let before = ds[0].ok(&["send", "general", "before the laptop was lost"]);
    wait_until("bilal has it", 30, || {
        ids(&ds[1].history("general")).contains(&before)
    });
    assert!(ds[1].stop()); // switched off, then lost
    ds[0].ok(&["roster", "remove", "--name", "bilal"]);
    let after = ds[0].ok(&["send", "general", "after the laptop was lost"]);
    wait_until("chen has it", 30, || {
        ids(&ds[2].history("general")).contains(&after)
    });

    let t = Instant::now();
    ds[1].start(&lan, 1, &[]);
    wait_until("the lost laptop wiped its key and its history", 30, || {
        !ds[1].dir.join("device.key").exists() && !ds[1].dir.join("db").exists()
    });
    let wiped = t.elapsed();
    println!("lost laptop switched on → wiped after {wiped:?} (mDNS discovery included)");
    assert!(
        ds[1].log_text().contains("erased"),
        "the laptop did not say it was wiped:\n{}",
        ds[1].log_text()
    );
    assert!(wiped < Duration::from_secs(5), "took {wiped:?}");
    for d in [&ds[0], &ds[2]] {
        assert!(d.peers().iter().all(|p| p["name"] != "bilal"));
    }
    assert!(ds[0].stop());
    assert!(ds[2].stop());
}

/// A lossy LAN: every host drops 5 % of the packets it sends and 5 % of those it receives
/// (about one in ten per hop). Discovery, the roster, gossip and catch-up must still bring
/// every member every message, once, in the same order everywhere.
#[test]
fn a_lossy_lan_converges_with_every_message_once_in_one_order() {
    if !netns_available("lossy_lan") {
        return;
    }
    let lan = Lan::new("l", 4).unwrap();
    for i in 0..4 {
        lan.set_loss(i, 5).expect("nftables (CI installs it)");
    }
    converges_on(&lan, "lossy LAN (nftables, 5 % each way per host)");
    let dropped: u64 = (0..4).map(|i| lan.dropped(i)).sum();
    assert!(
        dropped > 0,
        "the loss rules dropped nothing: the link was not lossy"
    );
}

/// Radio-like links on every host (see `majlis_tests::radio`): 5 ms ± 2 ms each way (frames
/// overtake each other), 1 % of frames lost and 1 % duplicated on each host's link (a packet
/// crosses two). Every member converges with every message, once, in one order.
#[test]
fn a_jittery_lan_that_loses_and_duplicates_one_percent_converges() {
    jittery_lan(0.01, "jl1");
}

/// As above with 5 % lost on each host's link (about one packet in ten end to end).
#[test]
fn a_jittery_lan_that_loses_five_percent_and_duplicates_one_converges() {
    jittery_lan(0.05, "jl5");
}

fn jittery_lan(loss: f64, tag: &str) {
    if !netns_available("jittery lan") {
        return;
    }
    let mut lan = Lan::new(tag, 4).unwrap();
    for i in 0..4 {
        lan.set_radio(i, majlis_tests::radio::Link::jittery(loss))
            .unwrap();
    }
    converges_on(
        &lan,
        &format!(
            "jittery LAN (5 ± 2 ms, {:.0} % lost and 1 % duplicated per host link)",
            loss * 100.0
        ),
    );
    let (lost, duplicated) = lan.radio_counts();
    println!("  the radios lost {lost} frames and duplicated {duplicated}");
    assert!(lost > 0 && duplicated > 0, "the links were not lossy");
}

/// Four members on `lan` (set up by the caller), 100 messages sent through the CLI (25 per
/// node, interleaved): every node holds all of them, once, in one order. Prints the times.
fn converges_on(lan: &Lan, what: &str) {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let names = ["amina", "bilal", "chen", "dana"];
    let mut nodes: Vec<Daemon> = names
        .iter()
        .map(|n| Daemon::new(&bin, tmp.path(), n))
        .collect();
    nodes[0].ok(&["init", "--name", "amina"]);
    let org = nodes[0].ok(&["org", "create", "--name", "acme"]);
    for i in 1..4 {
        let id = nodes[i].ok(&["init", "--name", names[i]]);
        nodes[i].ok(&["org", "join", &org]);
        nodes[0].ok(&["roster", "add", "--name", names[i], "--device", &id]);
    }
    let t0 = Instant::now();
    for (i, n) in nodes.iter_mut().enumerate() {
        n.start(lan, i, &[]);
    }
    for n in &nodes[1..] {
        wait_until(&format!("{} has the roster", n.name), 60, || {
            n.cli(&["roster", "show"]).status.success()
        });
    }
    let per_node = 25;
    let mut sent = Vec::new();
    for k in 0..per_node {
        for n in &nodes {
            sent.push(n.ok(&["send", "general", &format!("{} #{k}", n.name)]));
        }
    }
    let t_sent = Instant::now();
    for n in &nodes {
        wait_until(&format!("{} has all messages", n.name), 90, || {
            n.history("general").len() == sent.len()
        });
    }
    let converge = t_sent.elapsed();
    let first = ids(&nodes[0].history("general"));
    for n in &nodes[1..] {
        assert_eq!(ids(&n.history("general")), first, "{} disagrees", n.name);
    }
    let mut got = first.clone();
    got.sort();
    got.dedup();
    sent.sort();
    assert_eq!(got, sent, "every message exactly once");
    println!(
        "{what}, 4 nodes, {} messages: all converged {:.2} s after the last send ({:.1} s from start)",
        sent.len(),
        converge.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    for n in &mut nodes {
        n.stop();
    }
}

/// A terminal server: two users run their own nodes on one host (own data directory, port
/// and socket), a third is on another host. All find each other over mDNS and talk.
#[test]
fn several_users_on_one_host_find_each_other_and_other_hosts() {
    if !netns_available("shared_host") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("u", 2).unwrap();
    let mut a = Daemon::new(&bin, tmp.path(), "amina");
    let mut b = Daemon::new(&bin, tmp.path(), "bilal");
    let mut c = Daemon::new(&bin, tmp.path(), "chen");
    a.ok(&["init", "--name", "amina"]);
    let org = a.ok(&["org", "create", "--name", "acme"]);
    for n in [&b, &c] {
        let id = n.ok(&["init", "--name", &n.name]);
        n.ok(&["org", "join", &org]);
        a.ok(&["roster", "add", "--name", &n.name, "--device", &id]);
    }
    // amina and bilal share host 0; chen is on host 1.
    a.start(&lan, 0, &[]);
    b.start(&lan, 0, &[]);
    c.start(&lan, 1, &[]);
    for n in [&a, &b, &c] {
        wait_until(&format!("{} connected to both others", n.name), 30, || {
            n.peers().len() == 2
        });
    }
    let id = b.ok(&["send", "general", "from the shared host"]);
    for n in [&a, &c] {
        wait_until(&format!("{} got bilal's message", n.name), 20, || {
            n.history("general").iter().any(|m| m["id"] == id)
        });
    }
    let id = c.ok(&["send", "general", "from the other host"]);
    for n in [&a, &b] {
        wait_until(&format!("{} got chen's message", n.name), 20, || {
            n.history("general").iter().any(|m| m["id"] == id)
        });
    }
    // Each node has its own socket: bilal's commands reach bilal's node.
    assert_eq!(b.stats()["roster_version"], a.stats()["roster_version"]);
    assert_ne!(a.dir.join("majlisd.sock"), b.dir.join("majlisd.sock"));
    for n in [&mut a, &mut b, &mut c] {
        assert!(n.stop());
    }
}

/// Two sites whose multicast does not meet (two subnets joined by a router). Only the two
/// relays are given an address (each other's); members give none. Through peer exchange
/// (roster devices tell each other where the others listen) the members of one site connect
/// directly to those of the other, and talk.
#[test]
fn two_sites_find_each_other_through_their_relays_with_no_addresses_on_members() {
    if !netns_available("two_sites") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    // Site A: relay-a (0), amina (1). Site B: relay-b (2), bilal (3).
    let lan = Lan::sites("x", &[2, 2]).unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let mut relay_a = Daemon::new(&bin, tmp.path(), "relay-a");
    let mut relay_b = Daemon::new(&bin, tmp.path(), "relay-b");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    amina.ok(&["init", "--name", "amina"]);
    let org = amina.ok(&["org", "create", "--name", "acme"]);
    for (d, role) in [(&relay_a, "relay"), (&relay_b, "relay"), (&bilal, "member")] {
        let id = d.ok(&["init", "--name", &d.name]);
        d.ok(&["org", "join", &org]);
        amina.ok(&[
            "roster", "add", "--name", &d.name, "--device", &id, "--role", role,
        ]);
    }
    let relay_b_addr = format!("/ip4/{}/tcp/7441", lan.addrs[2]);
    relay_b.start(&lan, 2, &["--listen", "/ip4/0.0.0.0/tcp/7441"]);
    relay_a.start(
        &lan,
        0,
        &["--listen", "/ip4/0.0.0.0/tcp/7441", "--peer", &relay_b_addr],
    );
    amina.start(&lan, 1, &[]);
    bilal.start(&lan, 3, &[]);
    let names = |d: &Daemon| -> Vec<String> {
        d.peers()
            .iter()
            .map(|p| p["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    wait_until(
        "amina connected directly to bilal, across the router",
        60,
        || names(&amina).contains(&"bilal".to_string()),
    );
    wait_until("bilal connected directly to amina", 30, || {
        names(&bilal).contains(&"amina".to_string())
    });
    let id = amina.ok(&["send", "@bilal", "salam from site A"]);
    wait_until("bilal got amina's DM", 20, || {
        bilal.history("@amina").iter().any(|m| m["id"] == id)
    });
    // The path was direct: bilal's doctor names amina's connection at a site-A address.
    let doc = String::from_utf8_lossy(&bilal.cli(&["doctor"]).stdout).into_owned();
    let site_a = lan.addrs[1].clone();
    assert!(
        doc.lines()
            .any(|l| l.starts_with("amina ") && l.contains(&format!("connected at /ip4/{site_a}"))),
        "{doc}"
    );
    for d in [&mut amina, &mut relay_a, &mut relay_b, &mut bilal] {
        assert!(d.stop());
    }
}

/// A field team on a router that hands out only an IPv6 ULA prefix: no IPv4 at all, mDNS
/// only, default listen addresses. Everyone finds everyone and every message arrives. (The
/// hosts' `fe80::` addresses are removed, so this proves the ULA path alone; the link-local
/// test proves the other.)
#[test]
fn an_ipv6_only_lan_works_with_the_defaults() {
    field_addressing("ipv6 only", "v6", |lan| lan.ipv6_only(), "/ip6/fd77:");
}

/// Two laptops on a cable and a third on the same switch, with nothing that assigns
/// addresses: each has only its interface's `fe80::` address. The zone travels from the mDNS
/// answer to the dial.
#[test]
fn a_link_local_only_lan_works_with_the_defaults() {
    let addrs = field_addressing(
        "link-local only",
        "ll",
        |lan| lan.link_local_only(),
        "/ip6/fe80:",
    );
    assert!(
        addrs
            .iter()
            .any(|a| a.starts_with("/ip6zone/eth0/ip6/fe80:")),
        "some connection was dialed with its zone: {addrs:?}"
    );
}

/// No DHCP server, IPv4 only: the hosts picked 169.254/16 addresses.
#[test]
fn an_ipv4_link_local_lan_works_with_the_defaults() {
    field_addressing(
        "ipv4 link-local",
        "v4ll",
        |lan| lan.ipv4_link_local(),
        "/ip4/169.254.",
    );
}

/// IPv4 and an IPv6 prefix on the same LAN (and link-local addresses): nothing breaks with
/// all three; whichever answers first carries the connection.
#[test]
fn a_dual_stack_lan_works_with_the_defaults() {
    field_addressing("dual stack", "ds", |lan| lan.dual_stack(), "/ip");
}

/// Three hosts on `lan` set up by `addressing`, mDNS only, default listen addresses: all
/// connect (every connection's address contains `via`), and every message reaches everyone.
/// Prints the times; returns the connections' addresses as the nodes saw them.
fn field_addressing(
    what: &str,
    tag: &str,
    addressing: impl FnOnce(&mut Lan) -> anyhow::Result<()>,
    via: &str,
) -> Vec<String> {
    if !netns_available(what) {
        return Vec::new();
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut lan = Lan::new(tag, 3).unwrap();
    addressing(&mut lan).unwrap();
    let mut ds = org(&bin, tmp.path(), &["amina", "bilal", "chen"]);
    let t = Instant::now();
    for (i, d) in ds.iter_mut().enumerate() {
        d.start(&lan, i, &[]);
    }
    for d in &ds {
        wait_until(
            &format!("{what}: {} connected to both others", d.name),
            30,
            || d.peers().len() == 2,
        );
    }
    println!(
        "{what}: all connected {:.2} s after start",
        t.elapsed().as_secs_f64()
    );
    let addrs: Vec<String> = ds
        .iter()
        .flat_map(|d| d.peers())
        .map(|p| p["addr"].as_str().unwrap_or("").to_string())
        .collect();
    for a in &addrs {
        assert!(a.contains(via), "{what}: connected over {via}: {a}");
    }
    let t = Instant::now();
    for d in &ds {
        d.ok(&["send", "general", &format!("{} on a {what} LAN", d.name)]);
    }
    for d in &ds {
        wait_until(&format!("{what}: 3 messages everywhere"), 30, || {
            d.history("general").len() == 3
        });
    }
    println!(
        "{what}: delivered everywhere in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    for d in &mut ds {
        assert!(d.stop());
    }
    addrs
}
