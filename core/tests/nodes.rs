//! In-process multi-node tests: real swarms over loopback TCP with static peers (no mDNS, so
//! no multicast leaves the test).

use std::path::Path;
use std::time::Duration;

use majlis_core::{Config, Error, Event, Node, Profile, RosterChange};
use tokio::sync::broadcast;

mod common;
use common::wait_until;

fn config(peers: Vec<libp2p::Multiaddr>) -> Config {
    Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        peers,
        mdns: false,
        ..Default::default()
    }
}

async fn wait_for<T>(
    rx: &mut broadcast::Receiver<Event>,
    what: &str,
    mut f: impl FnMut(&Event) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(ev)) => {
                if let Some(t) = f(&ev) {
                    return t;
                }
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event stream ended while waiting for {what}: {e}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

struct Org {
    admin: Profile,
}

fn founder(dir: &Path) -> Org {
    let admin = Profile::init(&dir.join("amina"), "amina").unwrap();
    admin.org_create("acme").unwrap();
    Org { admin }
}

fn joiner(dir: &Path, name: &str, org: &Org, add: bool) -> Profile {
    let p = Profile::init(&dir.join(name), name).unwrap();
    p.org_join(org.admin.org().unwrap().unwrap()).unwrap();
    if add {
        add_device(org, name, &p, None);
    }
    p
}

/// The admin adds `p`'s device to member `name` (creating the member, with `role`).
fn add_device(org: &Org, name: &str, p: &Profile, role: Option<majlis_core::Role>) {
    let mut chain = org.admin.chain().unwrap();
    org.admin
        .change_roster(
            &mut chain,
            &RosterChange::AddMember {
                name: name.into(),
                device: p.device_id(),
                role,
            },
        )
        .unwrap();
}

/// Give these devices the admin's current roster chain, as if they had synced before.
fn share_roster(org: &Org, to: &[&Profile]) {
    let full = org.admin.chain().unwrap().versions().to_vec();
    for p in to {
        let mut chain = p.chain().unwrap();
        p.apply_rosters(&mut chain, full.clone()).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_bootstrap_roster_and_agree_on_history() {
    let dir = tempfile::tempdir().unwrap();
    let org = founder(dir.path());
    let b = joiner(dir.path(), "bilal", &org, true);
    let c = joiner(dir.path(), "chen", &org, true);
    let outsider = joiner(dir.path(), "dana", &org, false);
    let (b_id, c_id) = (b.device_id(), c.device_id());

    let a = Node::start(org.admin, config(vec![])).await.unwrap();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let mut a_ev = a.subscribe();
    let b = Node::start(b, config(vec![a_addr.clone()])).await.unwrap();
    let c = Node::start(c, config(vec![a_addr.clone()])).await.unwrap();
    let d = Node::start(outsider, config(vec![a_addr.clone()]))
        .await
        .unwrap();

    // B and C had no roster: they fetch it from A (bootstrap exception) and get connected.
    for n in [&b, &c] {
        wait_until("roster bootstrap", async || {
            n.stats().await.unwrap().roster_version == 2 + 1
        })
        .await;
    }
    wait_until("A sees both members", async || {
        a.peers().await.unwrap().len() == 2
    })
    .await;
    let names: Vec<String> = a
        .peers()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["bilal", "chen"]);
    assert!(a
        .peers()
        .await
        .unwrap()
        .iter()
        .all(|p| p.device == b_id || p.device == c_id));

    // The outsider is refused: it gets no roster and cannot post.
    wait_until("outsider refused", async || {
        a.stats().await.unwrap().denied_connections > 0
    })
    .await;
    assert_eq!(d.stats().await.unwrap().roster_version, 0);
    assert!(d.send("general", "let me in").await.is_err());

    // Messages from every node reach every node, once, in the same order.
    let mut b_ev = b.subscribe();
    let mut c_ev = c.subscribe();
    // Wait until gossip meshes exist (publishes before that go via the outbox anyway).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut sent = Vec::new();
    for (i, n) in [&a, &b, &c, &a, &b, &c].iter().enumerate() {
        sent.push(n.send("general", &format!("message {i}")).await.unwrap());
    }
    for (ev, who) in [(&mut a_ev, "A"), (&mut b_ev, "B"), (&mut c_ev, "C")] {
        let mut seen = std::collections::HashSet::new();
        while seen.len() < sent.len() {
            let id = wait_for(ev, &format!("messages at {who}"), |e| match e {
                Event::Message(m) => Some(m.id),
                _ => None,
            })
            .await;
            seen.insert(id);
        }
    }
    let ha = a.history("general", 100).unwrap();
    let hb = b.history("general", 100).unwrap();
    let hc = c.history("general", 100).unwrap();
    assert_eq!(ha.len(), 6);
    assert_eq!(ha, hb);
    assert_eq!(ha, hc);
    let mut ids: Vec<_> = ha.iter().map(|m| m.id).collect();
    ids.sort();
    sent.sort();
    assert_eq!(ids, sent);
    assert_eq!(ha.iter().filter(|m| m.sender == "bilal").count(), 2);
    assert!(d.history("general", 100).unwrap().is_empty());
    assert!(a.stats().await.unwrap().rejected.is_empty());

    // A roster change made while running reaches the others; they may use it at once.
    a.change_roster(RosterChange::CreateChannel {
        name: "ops".into(),
        members: Some(vec!["amina".into(), "bilal".into()]),
    })
    .await
    .unwrap();
    wait_until("roster v4 at B", async || {
        b.stats().await.unwrap().roster_version == 4
    })
    .await;
    wait_until("roster v4 at C", async || {
        c.stats().await.unwrap().roster_version == 4
    })
    .await;
    b.send("ops", "private").await.unwrap();
    assert!(c.send("ops", "not a member").await.is_err());
    wait_for(&mut a_ev, "ops message at A", |e| match e {
        Event::Message(m) if m.channel == "ops" => Some(()),
        _ => None,
    })
    .await;
    // C is not in "ops": it neither received the message nor holds it, and asking for
    // the channel's history says why instead of showing it empty.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(c.store().history("ops", 10).unwrap().is_empty());
    assert!(matches!(c.history("ops", 10), Err(Error::Denied(_))));
    assert_eq!(b.history("ops", 10).unwrap().len(), 1);
    for n in [&a, &b, &c, &d] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_while_alone_is_delivered_later_and_history_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let org = founder(dir.path());
    let b = joiner(dir.path(), "bilal", &org, true);
    let b_dir = b.dir().to_path_buf();
    // B has the roster already (as after an earlier session).
    share_roster(&org, &[&b]);
    let a = Node::start(org.admin, config(vec![])).await.unwrap();
    let id1 = a.send("general", "before anyone listens").await.unwrap();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();

    let b = Node::start(b, config(vec![a_addr.clone()])).await.unwrap();
    let mut b_ev = b.subscribe();
    wait_until("outbox delivered", async || {
        b.history("general", 10).unwrap().len() == 1
    })
    .await;
    let id2 = a.send("general", "second").await.unwrap();
    wait_for(&mut b_ev, "second message", |e| match e {
        Event::Message(m) if m.id == id2 => Some(()),
        _ => None,
    })
    .await;
    b.shutdown().await.unwrap();
    drop(b);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let b = Node::start(Profile::open(&b_dir).unwrap(), config(vec![a_addr]))
        .await
        .unwrap();
    let h: Vec<_> = b
        .history("general", 10)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    let mut want = vec![id1, id2];
    want.sort_by_key(|id| {
        a.history("general", 10)
            .unwrap()
            .iter()
            .position(|m| m.id == *id)
    });
    assert_eq!(h, want);
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
}

/// A member who types a message the moment their node starts, before its roster has come
/// from a peer, gets it sent, not "no roster yet" (what a CI run once saw from `majlisd send`
/// issued right after the daemon connected).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_made_before_the_roster_arrives_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let org = founder(dir.path());
    let b = joiner(dir.path(), "bilal", &org, true);
    let a = Node::start(org.admin, config(vec![])).await.unwrap();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let mut a_ev = a.subscribe();
    // B knows no peer yet: its send is issued with no roster and nobody to get it from.
    let b = Node::start(b, config(vec![])).await.unwrap();
    assert_eq!(b.stats().await.unwrap().roster_version, 0);
    let sending = tokio::spawn({
        let b = b.clone();
        async move { b.send("general", "first thing this morning").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!sending.is_finished(), "the send waits for the roster");
    b.dial(a_addr).await.unwrap();
    let id = sending.await.unwrap().expect("sent once the roster came");
    wait_for(&mut a_ev, "the message at A", |e| match e {
        Event::Message(m) if m.id == id => Some(()),
        _ => None,
    })
    .await;
    for n in [&a, &b] {
        n.shutdown().await.unwrap();
    }
}

/// Two devices that each have the other's address dial each other at start. What one of
/// them sends in a burst arrives at the other in the order it was sent, readable: gossipsub
/// spreads a peer's messages over all its connections to that peer, so a second connection
/// left open reorders them (a key grant overtaken by the message it opens shows "waiting
/// for the key").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_arrives_in_order_between_devices_that_dialled_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let org = founder(dir.path());
    let b = joiner(dir.path(), "bilal", &org, true);
    share_roster(&org, &[&b]);
    let (pa, pb) = (free_addr(), free_addr());
    let listen = |a: &libp2p::Multiaddr| Config {
        listen: vec![a.clone()],
        ..config(vec![])
    };
    let a = Node::start(
        org.admin,
        Config {
            peers: vec![pb.clone()],
            ..listen(&pa)
        },
    );
    let b = Node::start(
        b,
        Config {
            peers: vec![pa.clone()],
            ..listen(&pb)
        },
    );
    let (a, b) = tokio::join!(a, b);
    let (a, b) = (a.unwrap(), b.unwrap());
    wait_until("connected", async || a.peers().await.unwrap().len() == 1).await;
    // Both dials done and the redial round passed (where a second connection came from).
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut ev = b.subscribe();
    let mut sent = Vec::new();
    for i in 0..120 {
        sent.push(a.send("general", &format!("line {i}")).await.unwrap());
    }
    let mut seen = Vec::new();
    while seen.len() < sent.len() {
        let m = wait_for(&mut ev, "the burst at B", |e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .await;
        assert!(!m.locked, "shown before its key: {}", m.text);
        seen.push(m.id);
    }
    let order: Vec<usize> = seen
        .iter()
        .map(|id| sent.iter().position(|s| s == id).expect("one we sent"))
        .collect();
    assert_eq!(
        order,
        (0..sent.len()).collect::<Vec<_>>(),
        "in the order sent"
    );
    for n in [&a, &b] {
        n.shutdown().await.unwrap();
    }
}

/// In a settled office the author's publish reaches every colleague, and nobody sends the
/// message on again (that was a copy per pair of receivers); a colleague reached only
/// through another device still gets every message live, not by catch-up. amina, bilal and
/// chen are connected to each other; dana only to chen (loopback addresses are not passed on
/// by peer exchange, so nobody else dials her).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_are_spared_where_the_author_reached_everyone_and_kept_where_it_did_not() {
    let dir = tempfile::tempdir().unwrap();
    let org = founder(dir.path());
    let bp = joiner(dir.path(), "bilal", &org, true);
    let cp = joiner(dir.path(), "chen", &org, true);
    let dp = joiner(dir.path(), "dana", &org, true);
    share_roster(&org, &[&bp, &cp, &dp]);
    let a = Node::start(org.admin, config(vec![])).await.unwrap();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let b = Node::start(bp, config(vec![a_addr.clone()])).await.unwrap();
    let b_addr = b.listen_addrs().await.unwrap()[0].clone();
    let c = Node::start(cp, config(vec![a_addr, b_addr])).await.unwrap();
    let c_addr = c.listen_addrs().await.unwrap()[0].clone();
    let d = Node::start(dp, config(vec![c_addr])).await.unwrap();
    wait_until("amina, bilal and chen meshed, dana on chen", async || {
        a.peers().await.unwrap().len() == 2
            && b.peers().await.unwrap().len() == 2
            && c.peers().await.unwrap().len() == 3
            && d.peers().await.unwrap().len() == 1
    })
    .await;
    // A link is told once steady (7 s), at the next peer exchange (every 5 s): by 12 s
    // after connecting every node has its neighbours' word.
    tokio::time::sleep(Duration::from_secs(14)).await;
    let before: Vec<_> = futures::future::join_all([&b, &c, &d].map(|n| n.stats()))
        .await
        .into_iter()
        .map(|s| s.unwrap())
        .collect();
    let mut evs = [b.subscribe(), c.subscribe(), d.subscribe()];
    let mut sent = Vec::new();
    for i in 0..30 {
        sent.push(a.send("general", &format!("line {i}")).await.unwrap());
    }
    for (ev, who) in evs.iter_mut().zip(["bilal", "chen", "dana"]) {
        let mut seen = Vec::new();
        while seen.len() < sent.len() {
            let m = wait_for(ev, who, |e| match e {
                Event::Message(m) if m.text.starts_with("line ") => Some(m.id),
                _ => None,
            })
            .await;
            seen.push(m);
        }
        assert_eq!(seen, sent, "{who}: every line, once, in order");
    }
    let after: Vec<_> = futures::future::join_all([&b, &c, &d].map(|n| n.stats()))
        .await
        .into_iter()
        .map(|s| s.unwrap())
        .collect();
    let spared = |i: usize| after[i].forwards_spared - before[i].forwards_spared;
    // 30 lines, and the key grant that opens them.
    assert!(
        spared(0) >= 30,
        "bilal: amina reached chen herself; spared {}",
        spared(0)
    );
    assert_eq!(
        after[1].forwards_spared, 0,
        "chen passes everything on to dana"
    );
    assert!(
        spared(2) >= 30,
        "dana: nobody behind her; spared {}",
        spared(2)
    );
    assert_eq!(
        after[2].synced - before[2].synced,
        0,
        "dana got every line live, none by catch-up"
    );
    for n in [&a, &b, &c, &d] {
        n.shutdown().await.unwrap();
    }
}

/// A loopback address with a port that was free a moment ago.
fn free_addr() -> libp2p::Multiaddr {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_member_and_new_device_catch_up_from_a_relay() {
    use majlis_core::Role;
    let dir = tempfile::tempdir().unwrap();
    let org = founder(dir.path());
    let relay = joiner(dir.path(), "relay", &org, false);
    let b = joiner(dir.path(), "bilal", &org, false);
    let b2 = joiner(dir.path(), "bilal-laptop", &org, false);
    add_device(&org, "relay", &relay, Some(Role::Relay));
    add_device(&org, "bilal", &b, None);
    add_device(&org, "bilal", &b2, None); // a second device of the same member
    {
        let mut chain = org.admin.chain().unwrap();
        org.admin
            .change_roster(
                &mut chain,
                &RosterChange::CreateChannel {
                    name: "ops".into(),
                    members: Some(vec!["amina".into()]),
                },
            )
            .unwrap();
    }
    share_roster(&org, &[&relay, &b, &b2]);

    let r = Node::start(relay, config(vec![])).await.unwrap();
    let r_addr = r.listen_addrs().await.unwrap()[0].clone();
    assert!(r.send("general", "relays never post").await.is_err());
    // B is online first, posts, and goes offline.
    let bn = Node::start(b, config(vec![r_addr.clone()])).await.unwrap();
    wait_until("B connected to the relay", async || {
        bn.peers().await.unwrap().len() == 1
    })
    .await;
    let b_msg = bn
        .send("general", "from bilal before going offline")
        .await
        .unwrap();
    wait_until("relay has B's message", async || {
        r.history("general", 10)
            .unwrap()
            .iter()
            .any(|m| m.id == b_msg)
    })
    .await;
    let b_dir = dir.path().join("bilal");
    bn.shutdown().await.unwrap();
    drop(bn);

    // A posts while B is away, then A goes away too.
    let a = Node::start(org.admin, config(vec![r_addr.clone()]))
        .await
        .unwrap();
    wait_until("A connected to the relay", async || {
        a.peers().await.unwrap().len() == 1
    })
    .await;
    for i in 0..30 {
        a.send("general", &format!("while bilal is away {i}"))
            .await
            .unwrap();
    }
    for i in 0..5 {
        a.send("ops", &format!("ops only {i}")).await.unwrap();
    }
    wait_until("relay has everything", async || {
        r.history("general", 100).unwrap().len() == 31 && r.history("ops", 100).unwrap().len() == 5
    })
    .await;
    a.shutdown().await.unwrap();
    drop(a);

    // B comes back with only the relay reachable: catch-up brings all of general, in order.
    let bn = Node::start(Profile::open(&b_dir).unwrap(), config(vec![r_addr.clone()]))
        .await
        .unwrap();
    wait_until("B caught up", async || {
        bn.history("general", 100).unwrap().len() == 31
    })
    .await;
    // The relay stores and serves ciphertext: it reads nothing; B reads everything.
    let ids = |h: &[majlis_core::StoredMessage]| h.iter().map(|m| m.id).collect::<Vec<_>>();
    let relay_view = r.history("general", 100).unwrap();
    assert!(
        relay_view.iter().all(|m| m.locked),
        "the relay read a message"
    );
    let b_view = bn.history("general", 100).unwrap();
    assert_eq!(ids(&b_view), ids(&relay_view));
    assert!(b_view.iter().all(|m| !m.locked));
    // (Messages sent within one millisecond order by id, so look them up, not by position.)
    assert!(b_view.iter().any(|m| m.text == "while bilal is away 29"));
    assert!(
        bn.store().history("ops", 100).unwrap().is_empty(),
        "a private channel leaked to a non-member"
    );
    assert!(bn.stats().await.unwrap().synced >= 30);

    // A brand-new device of bilal gets the member's full history of the channels it may read.
    let b2n = Node::start(b2, config(vec![r_addr])).await.unwrap();
    wait_until("new device caught up", async || {
        b2n.history("general", 100).unwrap().len() == 31
    })
    .await;
    assert_eq!(b2n.history("general", 100).unwrap(), b_view);
    assert!(b2n.store().history("ops", 100).unwrap().is_empty());
    for n in [&bn, &b2n, &r] {
        assert!(
            n.stats().await.unwrap().rejected.is_empty(),
            "{:?}",
            n.stats().await.unwrap().rejected
        );
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_member_is_cut_off_at_once_and_wipes_itself() {
    let dir = tempfile::tempdir().unwrap();
    let org = founder(dir.path());
    let b = joiner(dir.path(), "bilal", &org, true);
    let c = joiner(dir.path(), "chen", &org, true);
    let b_dir = b.dir().to_path_buf();
    let b_id = b.device_id();
    let a = Node::start(org.admin, config(vec![])).await.unwrap();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let bn = Node::start(b, config(vec![a_addr.clone()])).await.unwrap();
    let cn = Node::start(c, config(vec![a_addr.clone()])).await.unwrap();
    let mut b_ev = bn.subscribe();
    wait_until("A sees both", async || a.peers().await.unwrap().len() == 2).await;
    wait_until("B has the roster", async || {
        bn.stats().await.unwrap().roster_version == 3
    })
    .await;

    let t = std::time::Instant::now();
    a.change_roster(RosterChange::RemoveMember {
        name: "bilal".into(),
    })
    .await
    .unwrap();
    wait_until("A dropped B", async || {
        a.peers().await.unwrap().iter().all(|p| p.device != b_id)
    })
    .await;
    let cut = t.elapsed();
    let (version, erased) = wait_for(&mut b_ev, "B wiped", |e| match e {
        Event::Wiped { version, erased } => Some((*version, erased.clone())),
        _ => None,
    })
    .await;
    println!(
        "removal → A refuses B: {cut:?}; B wiped itself at version {version} after {:?}",
        t.elapsed()
    );
    assert!(cut < Duration::from_secs(2));
    assert_eq!(version, 4);
    assert_eq!(erased, Ok(()));
    assert!(
        !b_dir.join("device.key").exists(),
        "device key survived the wipe"
    );
    assert!(!b_dir.join("db").exists(), "history survived the wipe");
    assert!(bn.send("general", "still here?").await.is_err());
    // The next start says why the directory is empty, and a new identity can be made there.
    match Profile::open(&b_dir) {
        Err(majlis_core::Error::Removed { note, .. }) => {
            assert!(note.contains("removed from its organization"), "{note}")
        }
        other => panic!("opening a wiped directory: {:?}", other.map(|_| ())),
    }
    drop(Profile::init(&b_dir, "bilal").unwrap());
    assert!(!b_dir.join(majlis_core::profile::REMOVED).exists());

    // Others carry on; C, still a member, gets new messages.
    let mut c_ev = cn.subscribe();
    wait_until("C has version 4", async || {
        cn.stats().await.unwrap().roster_version == 4
    })
    .await;
    let id = a.send("general", "after the removal").await.unwrap();
    wait_for(&mut c_ev, "C gets it", |e| {
        matches!(e, Event::Message(m) if m.id == id).then_some(())
    })
    .await;
    for n in [&a, &cn] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_signing_one_version_converge_everywhere() {
    use majlis_core::Role;
    let dir = tempfile::tempdir().unwrap();
    let org = founder(dir.path());
    let a2 = joiner(dir.path(), "bashir", &org, false);
    add_device(&org, "bashir", &a2, Some(Role::Admin));
    let c = joiner(dir.path(), "chen", &org, true);
    share_roster(&org, &[&a2, &c]);
    // Apart, both admins sign version 4.
    let a = Node::start(org.admin, config(vec![])).await.unwrap();
    let b = Node::start(a2, config(vec![])).await.unwrap();
    a.change_roster(RosterChange::CreateChannel {
        name: "from-amina".into(),
        members: None,
    })
    .await
    .unwrap();
    b.change_roster(RosterChange::CreateChannel {
        name: "from-bashir".into(),
        members: None,
    })
    .await
    .unwrap();
    let (ha, hb) = (
        a.stats().await.unwrap().roster_hash,
        b.stats().await.unwrap().roster_hash,
    );
    assert_ne!(ha, hb);
    let winner = ha.clone().min(hb.clone());
    // Now they meet, with C in the middle.
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let b_addr = b.listen_addrs().await.unwrap()[0].clone();
    let cn = Node::start(c, config(vec![a_addr, b_addr])).await.unwrap();
    for (n, who) in [(&a, "amina"), (&b, "bashir"), (&cn, "chen")] {
        wait_until(&format!("{who} on the winning roster"), async || {
            n.stats().await.unwrap().roster_hash == winner
        })
        .await;
    }
    println!(
        "fork at version 4 resolved to {}… (the smaller hash) on all 3 nodes",
        &winner[..12]
    );
    for n in [&a, &b, &cn] {
        assert_eq!(n.stats().await.unwrap().roster_version, 4);
        n.shutdown().await.unwrap();
    }
}

/// Direct messages reach both members' devices (the sender's other device too, and the
/// recipient by catch-up when it comes online later) and the relay; another member and a
/// guest never receive them, and the guest may not send one under the default policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_messages_reach_both_members_devices_and_nobody_else() {
    use majlis_core::Role;
    let dir = tempfile::tempdir().unwrap();
    let org = founder(dir.path());
    let bilal = joiner(dir.path(), "bilal", &org, true);
    let chen = joiner(dir.path(), "chen", &org, true);
    let amina2 = joiner(dir.path(), "amina2", &org, false);
    add_device(&org, "amina", &amina2, Some(Role::Admin));
    let gita = joiner(dir.path(), "gita", &org, false);
    add_device(&org, "gita", &gita, Some(Role::Guest));
    let vault = joiner(dir.path(), "vault", &org, false);
    add_device(&org, "vault", &vault, Some(Role::Relay));
    share_roster(&org, &[&bilal, &chen, &amina2, &gita, &vault]);

    let a1 = Node::start(org.admin, config(vec![])).await.unwrap();
    let addr = a1.listen_addrs().await.unwrap()[0].clone();
    let others: Vec<Node> = {
        let mut v = Vec::new();
        for p in [amina2, chen, gita, vault] {
            v.push(Node::start(p, config(vec![addr.clone()])).await.unwrap());
        }
        v
    };
    let [a2, chen, gita, vault] = &others[..] else {
        unreachable!()
    };
    wait_until("all connected to amina", async || {
        a1.peers().await.unwrap().len() == 4
    })
    .await;

    // Bilal is offline: amina's DM waits for him.
    a1.send("@bilal", "salam bilal, the invoice is ready")
        .await
        .unwrap();
    let count = |n: &Node, who: &'static str| n.history(who, 100).unwrap().len();
    wait_until("amina's other device has it", async || {
        count(a2, "@bilal") == 1
    })
    .await;
    wait_until("the relay has it", async || {
        count(vault, "@amina,bilal") == 1
    })
    .await;

    let bilal = Node::start(bilal, config(vec![addr.clone()]))
        .await
        .unwrap();
    wait_until("bilal caught up", async || count(&bilal, "@amina") == 1).await;
    bilal.send("@amina", "thanks, paying today").await.unwrap();
    // Both devices get it; a message may show locked for a moment if it overtakes the key
    // grant that opens it (then `KeysReceived` says to reload).
    for (n, who) in [(&a1, "a1"), (a2, "a2")] {
        wait_until(who, async || {
            let h = n.history("@bilal", 10).unwrap();
            h.len() == 2 && h.iter().all(|m| !m.locked)
        })
        .await;
    }
    let texts: Vec<String> = a2
        .history("@bilal", 10)
        .unwrap()
        .into_iter()
        .map(|m| format!("{}: {}", m.sender, m.text))
        .collect();
    assert_eq!(
        texts,
        [
            "amina: salam bilal, the invoice is ready",
            "bilal: thanks, paying today"
        ]
    );

    // A general message sent after the DMs reaches chen; by then, and
    // after a full catch-up round, neither chen nor the guest holds any direct message.
    assert!(gita.send("@amina", "hello?").await.is_err());
    a1.send("general", "barrier").await.unwrap();
    wait_until("chen got the barrier", async || count(chen, "general") == 1).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(chen.dm_channels().unwrap(), Vec::<String>::new());
    assert_eq!(gita.dm_channels().unwrap(), Vec::<String>::new());
    let held = |n: &Node, ch: &str| n.store().history(ch, 100).unwrap().len();
    assert_eq!(held(chen, "@amina,bilal"), 0);
    assert_eq!(
        held(gita, "general"),
        0,
        "a guest holds no org-wide channel"
    );
    // Names are read from the reader's side: to chen, `@amina,bilal` is his own group
    // conversation with them (empty), never theirs; a guest, who is in no DM, is refused.
    assert_eq!(chen.resolve("@amina,bilal").unwrap(), "@amina,bilal,chen");
    assert!(chen.history("@amina,bilal", 10).unwrap().is_empty());
    assert!(matches!(
        gita.history("@amina,bilal", 10),
        Err(Error::Denied(_))
    ));
    println!(
        "DMs: amina devices {} + {}, bilal {}, relay {}, chen 0, guest 0",
        count(&a1, "@bilal"),
        count(a2, "@bilal"),
        count(&bilal, "@amina"),
        count(vault, "@amina,bilal")
    );
}

/// A laptop lost while offline is removed; when it is switched on and reaches a peer, it
/// learns of its removal (and nothing else) and wipes itself. A wipe that was due when the
/// process died (roster saved, nothing erased yet) happens at the next start, with no peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_removed_while_offline_wipes_when_it_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let org = founder(dir.path());
    let b = joiner(dir.path(), "bilal", &org, true);
    let c = joiner(dir.path(), "chen", &org, true);
    let (b_dir, c_dir) = (b.dir().to_path_buf(), c.dir().to_path_buf());

    // Chen's node died after saving the roster that removes it, before erasing anything.
    let mut chain = org.admin.chain().unwrap();
    org.admin
        .change_roster(
            &mut chain,
            &RosterChange::RemoveMember {
                name: "chen".into(),
            },
        )
        .unwrap();
    share_roster(&org, &[&b, &c]);
    drop(c);
    let cn = Node::start(Profile::open(&c_dir).unwrap(), config(vec![]))
        .await
        .unwrap();
    wait_until("the due wipe happened on restart", async || {
        !c_dir.join("device.key").exists() && !c_dir.join("db").exists()
    })
    .await;
    assert!(cn.send("general", "still here?").await.is_err());

    let a = Node::start(org.admin, config(vec![])).await.unwrap();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let bn = Node::start(b, config(vec![a_addr.clone()])).await.unwrap();
    wait_until("B connected", async || a.peers().await.unwrap().len() == 1).await;
    a.send("general", "before the laptop was lost")
        .await
        .unwrap();
    wait_until("B has it", async || {
        bn.history("general", 10).unwrap().len() == 1
    })
    .await;
    bn.shutdown().await.unwrap();
    drop(bn);

    // Bilal's laptop is lost while off; the admin removes him.
    a.change_roster(RosterChange::RemoveMember {
        name: "bilal".into(),
    })
    .await
    .unwrap();
    a.send("general", "after the removal").await.unwrap();

    // The laptop is switched on and reaches the office.
    let t = std::time::Instant::now();
    let bn = Node::start(Profile::open(&b_dir).unwrap(), config(vec![a_addr.clone()]))
        .await
        .unwrap();
    // The key goes first and the history a moment later (one wipe, several unlinks): wait
    // for both, then check it was prompt.
    wait_until(
        "the lost laptop wiped its key and its history",
        async || !b_dir.join("device.key").exists() && !b_dir.join("db").exists(),
    )
    .await;
    let took = t.elapsed();
    println!("lost laptop back online → wiped after {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(bn.send("general", "still here?").await.is_err());
    wait_until("A closed the connection", async || {
        a.peers().await.unwrap().is_empty()
    })
    .await;
    assert_eq!(a.stats().await.unwrap().accepted, 0);
    a.shutdown().await.unwrap();
}

/// Another client: a roster device whose software speaks gossipsub and identify but not
/// ping. The node pings every connection and closes one whose pings fail (a dead link); a
/// ping this peer refuses is not a dead link. Under lazy stream negotiation the refusal
/// arrives as a failed read, not as "unsupported": without reading it so, the node closed
/// the connection ~20 s in. The client stays connected for 25 s, with no traffic of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_speak_ping_stays_connected() {
    use futures::StreamExt;
    use libp2p::swarm::SwarmEvent;
    use libp2p::{gossipsub, identify};

    #[derive(libp2p::swarm::NetworkBehaviour)]
    struct NoPing {
        gossipsub: gossipsub::Behaviour,
        identify: identify::Behaviour,
    }

    let s = common::setup().await;
    let mut client = common::client_swarm(&s.member, |key| NoPing {
        gossipsub: gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Anonymous,
            gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::Anonymous)
                .build()
                .unwrap(),
        )
        .unwrap(),
        identify: identify::Behaviour::new(identify::Config::new(
            majlis_core::net::IDENTIFY_PROTOCOL.into(),
            key.public(),
        )),
    });
    client.dial(s.addr.clone()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
    let mut connected = false;
    while let Ok(ev) = tokio::time::timeout_at(deadline, client.select_next_some()).await {
        match ev {
            SwarmEvent::ConnectionEstablished { .. } => connected = true,
            SwarmEvent::ConnectionClosed { cause, .. } => {
                panic!("the node closed the connection: {cause:?}")
            }
            _ => {}
        }
    }
    assert!(connected, "the client never connected");
    let peers = s.victim.peers().await.unwrap();
    assert_eq!(peers.len(), 1, "the node lists the client: {peers:?}");
    assert_eq!(peers[0].name, "mallory");
}

/// A peer's subscriptions travel once, on whichever of its connections is ready first; when
/// that connection then closes they can be lost with it, and none of the node's gossip
/// reaches the peer again (it waits for catch-up rounds). A device that opens two
/// connections, closes the first and is known to subscribe to nothing it may read is
/// reconnected; one whose subscriptions arrived keeps its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_subscriptions_were_lost_with_a_second_connection_is_reconnected() {
    use futures::StreamExt;
    use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
    use libp2p::swarm::SwarmEvent;

    for subscribed in [true, false] {
        let s = common::setup().await;
        let victim = s.victim.device_id().peer_id();
        let mut r = common::Rogue::new(s.member, &s.org);
        if !subscribed {
            r.swarm.behaviour_mut().gossipsub.unsubscribe(&r.topic);
        }
        let mut first = None;
        for _ in 0..2 {
            let opts = DialOpts::peer_id(victim)
                .addresses(vec![s.addr.clone()])
                .condition(PeerCondition::Always)
                .build();
            r.swarm.dial(opts).unwrap();
            let mut id = None;
            assert!(
                r.run_until(10, |ev| match ev {
                    SwarmEvent::ConnectionEstablished { connection_id, .. } => {
                        id = Some(*connection_id);
                        true
                    }
                    _ => false,
                })
                .await
            );
            first = first.or(id);
            // Whatever the client subscribed to has reached the node by now (loopback).
            r.pump(1_000).await;
        }
        assert!(r.swarm.close_connection(first.unwrap()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(16);
        let mut closed = 0;
        while let Ok(ev) = tokio::time::timeout_at(deadline, r.swarm.select_next_some()).await {
            if matches!(ev, SwarmEvent::ConnectionClosed { .. }) {
                closed += 1;
            }
        }
        // Its own close of the first, and (without subscriptions) the node's of the other.
        let expected = if subscribed { 1 } else { 2 };
        assert_eq!(closed, expected, "subscribed: {subscribed}");
    }
}

/// A peer given by address is dialled once at a time: the dial at start, the redial ticks
/// and the roster's arrival leave an address alone while a dial of it is under way. Each
/// extra dial had become a second connection, closed at once as surplus, and each surplus
/// connection is a chance to lose gossip or subscriptions with it. The address here takes
/// TCP connections and never answers, so its one dial stays under way throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_given_by_address_is_dialled_once_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let org = founder(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let addr: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let a = Node::start(org.admin, config(vec![addr])).await.unwrap();
    // Past the first two redial ticks (at start and 3 s later), inside the handshake
    // timeout (10 s).
    let deadline = tokio::time::Instant::now() + Duration::from_millis(4500);
    let mut held = Vec::new();
    while let Ok(Ok((s, _))) = tokio::time::timeout_at(deadline, listener.accept()).await {
        held.push(s);
    }
    assert_eq!(held.len(), 1, "dials of the one address under way at once");
    a.shutdown().await.unwrap();
}

/// A field team's device given its peer by address (`--peer`, no multicast) keeps that
/// connection: the peer is never in the list of devices found by discovery or exchange
/// (an exchange skips devices already connected), and the neighbour plan once read that as
/// "not wanted" and closed the connection 15 s after it opened, then redialled it, every
/// ~15 s for as long as the node ran; lines sent in each gap came by catch-up, seconds late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_given_by_address_stays_connected() {
    let dir = tempfile::tempdir().unwrap();
    let org = founder(dir.path());
    let b = joiner(dir.path(), "bilal", &org, true);
    share_roster(&org, &[&b]);
    let a = Node::start(org.admin, config(vec![])).await.unwrap();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let b = Node::start(b, config(vec![a_addr])).await.unwrap();
    let mut b_ev = b.subscribe();
    wait_until("bilal connected", async || {
        b.peers().await.unwrap().len() == 1
    })
    .await;
    // Past the plan's grace for new connections (15 s) and its next check.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(22);
    while let Ok(ev) = tokio::time::timeout_at(deadline, b_ev.recv()).await {
        if let Ok(Event::PeerDisconnected { .. }) = ev {
            panic!("bilal dropped the peer he was given by address");
        }
    }
    assert_eq!(b.peers().await.unwrap().len(), 1);
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
}

/// A new device connects before it holds a roster (it fetches its first one over that
/// connection), so at the connection it cannot name the peer. It is told once the roster
/// arrives: before, `majlisd run` on the new device never printed "connected to amina", and
/// later printed a disconnect from a device it had never said it was connected to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_is_told_who_it_is_connected_to_once_the_roster_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let org = founder(dir.path());
    let b = joiner(dir.path(), "bilal", &org, true);
    let a = Node::start(org.admin, config(vec![])).await.unwrap();
    let a_id = a.device_id();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let b = Node::start(b, config(vec![])).await.unwrap();
    let mut b_ev = b.subscribe();
    assert!(b.roster_now().is_none(), "bilal starts with no roster");
    b.dial(a_addr).await.unwrap();

    let name = wait_for(
        &mut b_ev,
        "bilal told he is connected to amina",
        |e| match e {
            Event::PeerConnected { device, name } if *device == a_id => Some(name.clone()),
            _ => None,
        },
    )
    .await;
    assert_eq!(name, "amina");
    assert!(b.roster_now().is_some(), "named by the roster it fetched");

    a.shutdown().await.unwrap();
    wait_for(&mut b_ev, "bilal told amina is gone", |e| match e {
        Event::PeerDisconnected { device } if *device == a_id => Some(()),
        _ => None,
    })
    .await;
    b.shutdown().await.unwrap();
}

/// A member's data directory restored from a backup made before two of her messages, then
/// used before it reaches anyone: her next message takes a seq her colleague already holds
/// another message of hers at (a fork, refused everywhere). His catch-up answers then hold
/// messages she signed that her own log lacks; that is no lie of his, and she used to
/// disconnect him for it every few seconds, cut off from everyone. Then she stayed
/// connected but her line reached nobody. Now she takes her refused line back, catches up
/// her own two messages from him, and sends the line again: both see the same five lines,
/// once each, and what she sends next reaches him as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_restored_from_an_older_copy_takes_back_its_refused_line_and_sends_it_again() {
    common::trace();
    let dir = tempfile::tempdir().unwrap();
    let org = founder(dir.path());
    let b = joiner(dir.path(), "bilal", &org, true);
    share_roster(&org, &[&b]);
    let a_dir = dir.path().join("amina");
    let backup = dir.path().join("amina-backup");
    let b = Node::start(b, config(vec![])).await.unwrap();
    let b_addr = b.listen_addrs().await.unwrap()[0].clone();
    let a = Node::start(org.admin, config(vec![b_addr.clone()]))
        .await
        .unwrap();
    wait_until("connected", async || b.peers().await.unwrap().len() == 1).await;
    a.send("general", "before the backup").await.unwrap();
    wait_until("bilal has it", async || {
        b.history("general", 10).unwrap().len() == 1
    })
    .await;
    a.shutdown().await.unwrap();
    drop(a);
    common::copy_dir(&a_dir, &backup);

    let a = Node::start(Profile::open(&a_dir).unwrap(), config(vec![b_addr.clone()]))
        .await
        .unwrap();
    for t in ["after the backup 1", "after the backup 2"] {
        a.send("general", t).await.unwrap();
    }
    // Her first direct message to him: her first key for that channel, which the restored
    // copy never had.
    let dm = majlis_core::roster::dm_channel("amina", "bilal");
    a.send(&dm, "dm after the backup").await.unwrap();
    wait_until("bilal has all four", async || {
        b.history("general", 10).unwrap().len() == 3 && b.history(&dm, 10).unwrap().len() == 1
    })
    .await;
    // Bilal's answer reaches her live; the copy restored below lacks it, and his outbox no
    // longer holds it: only catch-up brings it back.
    b.send("general", "since the backup").await.unwrap();
    wait_until("amina has bilal's line", async || {
        a.history("general", 10).unwrap().len() == 4
    })
    .await;
    a.shutdown().await.unwrap();
    drop(a);

    // The disk is restored from the backup, and she writes before reaching anyone.
    std::fs::remove_dir_all(&a_dir).unwrap();
    common::copy_dir(&backup, &a_dir);
    let a = Node::start(Profile::open(&a_dir).unwrap(), config(vec![]))
        .await
        .unwrap();
    let line = a.send("general", "after the restore").await.unwrap();
    // An act on the refused line must follow it to its new id.
    a.edit(&line, "after the restore, edited").await.unwrap();
    // Past the seqs bilal holds of hers: her answers to his catch-up carry it until she has
    // repaired her side, and are her fork, not a lie to disconnect her for.
    a.send("general", "after the restore 2").await.unwrap();
    // A new key of hers, granted in a message that is refused too.
    a.send(&dm, "dm after the restore").await.unwrap();
    let b_addr_again = b_addr.clone();
    a.dial(b_addr).await.unwrap();

    let lines = |n: &Node| -> Vec<String> {
        n.history("general", 20)
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect()
    };
    let want = [
        "before the backup",
        "after the backup 1",
        "after the backup 2",
        "since the backup",
        "after the restore, edited",
        "after the restore 2",
    ];
    wait_until("bilal gets her line sent again", async || {
        lines(&b).contains(&"after the restore, edited".to_string())
    })
    .await;
    wait_until("both show the same five lines", async || {
        lines(&a) == want && lines(&b) == want
    })
    .await;
    // Her direct message too, under a key granted again: he reads both.
    wait_until("bilal reads both direct messages", async || {
        let dms: Vec<String> = b
            .history(&dm, 10)
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        dms == ["dm after the backup", "dm after the restore"]
    })
    .await;
    // Her own history carries the line once, under the id bilal holds.
    let ids = |n: &Node| -> Vec<_> {
        n.history("general", 20)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect()
    };
    assert_eq!(ids(&a), ids(&b));
    // Nothing left for the doctor, nobody called a liar, still connected.
    let report = a.diagnose().await.unwrap();
    assert!(report.own_history_diverged.is_empty(), "{report:?}");
    // Her own refused copies are the fork it repaired, not refusals to report.
    let stats = a.stats().await.unwrap();
    assert!(stats.rejected.is_empty(), "{:?}", stats.rejected);
    // Bilal refused her restored lines (as a fork), never called her a liar.
    let theirs = b.stats().await.unwrap().rejected;
    assert!(!theirs.contains_key("sync"), "{theirs:?}");
    assert_eq!(a.peers().await.unwrap().len(), 1);
    // What she sends next chains to the log as he holds it.
    a.send("general", "and on we go").await.unwrap();
    wait_until("bilal gets her next line", async || {
        lines(&b).last().map(String::as_str) == Some("and on we go")
    })
    .await;
    // A restart changes nothing: the line is not sent a third time.
    a.shutdown().await.unwrap();
    drop(a);
    let a = Node::start(Profile::open(&a_dir).unwrap(), config(vec![b_addr_again]))
        .await
        .unwrap();
    wait_until("connected again", async || {
        a.peers().await.unwrap().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(lines(&a).len(), 7);
    assert_eq!(lines(&b).len(), 7);
    for n in [&a, &b] {
        n.shutdown().await.unwrap();
    }
}
