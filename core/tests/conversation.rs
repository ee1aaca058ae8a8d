//! Threads, edits, deletions and reactions between real swarms on loopback: every node shows
//! the same conversation, whatever order the acts arrived in (a node that was away catches
//! up on them), and the rules hold against a member whose client skips them.

use std::time::Duration;

use majlis_core::conversation::{Act, DELETED_TEXT};
use majlis_core::e2e::Plain;
use majlis_core::store::StoredMessage;
use majlis_core::{Config, MessageId, Node, Profile, RosterChange};

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

/// amina (admin), bilal and chen, then `more` changes by amina, with the roster already
/// shared.
fn org(dir: &std::path::Path, more: &[RosterChange]) -> Vec<Profile> {
    common::org_with(
        dir,
        &[
            ("bilal", majlis_core::Role::Member),
            ("chen", majlis_core::Role::Member),
        ],
        more,
    )
}

/// A channel only amina and bilal read (chen, the third, does not).
fn of_amina_and_bilal(name: &str) -> RosterChange {
    RosterChange::CreateChannel {
        name: name.into(),
        members: Some(vec!["amina".into(), "bilal".into()]),
    }
}

/// Start amina, bilal and chen (`ps`, in that order), bilal and chen dialling amina, and wait
/// until both are connected to her.
async fn start_three(mut ps: Vec<Profile>) -> (Node, Node, Node) {
    let c = ps.pop().unwrap();
    let b = ps.pop().unwrap();
    let a = Node::start(ps.pop().unwrap(), config(vec![]))
        .await
        .unwrap();
    let addr = a.listen_addrs().await.unwrap()[0].clone();
    let b = Node::start(b, config(vec![addr.clone()])).await.unwrap();
    let c = Node::start(c, config(vec![addr])).await.unwrap();
    wait_until("both connected", async || {
        a.peers().await.unwrap().len() == 2
    })
    .await;
    (a, b, c)
}

/// What each node was told of typing and away for 3 s: "bilal in general", "amina away true".
async fn signals_for_3s<const N: usize>(
    rxs: [&mut tokio::sync::broadcast::Receiver<majlis_core::Event>; N],
) -> [Vec<String>; N] {
    use majlis_core::Event;
    let mut out: [Vec<String>; N] = std::array::from_fn(|_| Vec::new());
    let mut rxs = rxs;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        for (rx, seen) in rxs.iter_mut().zip(out.iter_mut()) {
            while let Ok(ev) = rx.try_recv() {
                match ev {
                    Event::Typing { channel, member } => {
                        seen.push(format!("{member} in {channel}"))
                    }
                    Event::Away { member, away, .. } => seen.push(format!("{member} away {away}")),
                    _ => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out
}

fn shown(n: &Node, id: &MessageId) -> Option<StoredMessage> {
    n.history("general", 50)
        .unwrap()
        .into_iter()
        .find(|m| m.id == *id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_edits_deletions_and_reactions_converge_and_hold_against_a_modified_client() {
    let dir = tempfile::tempdir().unwrap();
    let ps = org(dir.path(), &[]);
    let c_dir = ps[2].dir().to_path_buf();
    let (a, b, c) = start_three(ps).await;
    let nodes = [&a, &b, &c];

    let lunch = a.send("general", "lunch at 1?").await.unwrap();
    wait_until("everyone can read it", async || {
        nodes
            .iter()
            .all(|n| shown(n, &lunch).is_some_and(|m| !m.locked))
    })
    .await;
    let reply = b.reply(&lunch, "1 is fine", false).await.unwrap();
    let shout = c.reply(&lunch, "I'll book", true).await.unwrap();
    b.react(&lunch, "👍", true).await.unwrap();
    c.react(&lunch, "👍", true).await.unwrap();
    c.react(&lunch, "🎉", true).await.unwrap();
    c.react(&lunch, "🎉", false).await.unwrap();
    a.edit(&lunch, "lunch at 2?").await.unwrap();

    // What an honest client refuses, a modified one sends anyway; readers do not take it.
    assert!(c.edit(&lunch, "chen pays").await.is_err());
    assert!(c.delete(&lunch).await.is_err());
    c.act_unchecked(
        "general",
        Plain::Edit {
            of: lunch,
            text: "chen pays".into(),
        },
    )
    .await
    .unwrap();
    c.act_unchecked("general", Plain::Delete { of: lunch })
        .await
        .unwrap();
    c.act_unchecked(
        "general",
        Plain::React {
            to: lunch,
            emoji: "an essay, not an emoji".into(),
            on: true,
        },
    )
    .await
    .unwrap();
    let last = c.send("general", "marker").await.unwrap();

    let expect = |m: &StoredMessage| {
        m.text == "lunch at 2?"
            && m.edited
            && !m.deleted
            && m.replies == 2
            && m.reactions.len() == 1
            && m.reactions[0].emoji == "👍"
            && m.reactions[0].members == ["bilal", "chen"]
    };
    wait_until("every node shows the same conversation", async || {
        nodes
            .iter()
            .all(|n| shown(n, &last).is_some() && shown(n, &lunch).is_some_and(|m| expect(&m)))
    })
    .await;
    for n in nodes {
        let rows: Vec<String> = n
            .history("general", 50)
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        // The channel shows messages and the reply sent to it too, not the acts.
        assert_eq!(rows, ["lunch at 2?", "I'll book", "marker"], "{rows:?}");
        let thread = n.thread(&lunch).unwrap();
        let texts: Vec<&str> = thread.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["lunch at 2?", "1 is fine", "I'll book"]);
        assert_eq!(
            thread[1].act,
            Some(Act::Reply {
                to: lunch,
                also_channel: false
            })
        );
        assert_eq!(thread[1].id, reply);
        assert_eq!(thread[2].id, shout);
        // Search finds the edited text and no longer the first.
        wait_until("the edit is searchable", async || {
            let new = n
                .search("\"lunch at 2\"", Default::default(), 10)
                .await
                .unwrap();
            let old = n
                .search("\"lunch at 1\"", Default::default(), 10)
                .await
                .unwrap();
            new.len() == 1 && old.is_empty()
        })
        .await;
    }

    // chen goes away; the admin deletes bilal's reply and then amina's own message is
    // reacted to. chen catches up and shows the same.
    c.shutdown().await.unwrap();
    drop(c);
    a.delete(&reply).await.unwrap();
    b.react(&lunch, "👀", true).await.unwrap();
    let addr = a.listen_addrs().await.unwrap()[0].clone();
    let c = common::start_dialing(Profile::open(&c_dir).unwrap(), &addr).await;
    let nodes = [&a, &b, &c];
    wait_until(
        "chen caught up on the deletion and the reaction",
        async || {
            nodes.iter().all(|n| {
                let t = n.thread(&lunch).unwrap();
                t.len() == 3
                    && t[1].deleted
                    && t[1].text == DELETED_TEXT
                    && t[0].replies == 1
                    && t[0].reactions.len() == 2
            })
        },
    )
    .await;
    assert!(
        b.edit(&reply, "undeleted").await.is_err(),
        "a deleted message cannot be edited"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

/// Typing and away are ephemeral signals to directly connected devices (here chen and bilal
/// each know only amina's address): typing in a private channel reaches its readers and
/// nobody else; a member's modified client claiming to type where it may not post is not
/// shown; away reaches devices connected now and those that connect later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_reaches_the_channels_readers_only_and_away_reaches_everyone() {
    use majlis_core::net::Signal;
    let dir = tempfile::tempdir().unwrap();
    let mut ps = org(dir.path(), &[of_amina_and_bilal("board")]);
    let c = ps.pop().unwrap();
    let b = ps.pop().unwrap();
    let a = Node::start(ps.pop().unwrap(), config(vec![]))
        .await
        .unwrap();
    let addr = a.listen_addrs().await.unwrap()[0].clone();
    let b = Node::start(b, config(vec![addr.clone()])).await.unwrap();
    wait_until("bilal connected", async || {
        a.peers().await.unwrap().len() == 1
    })
    .await;
    let c_dir = dir.path().join("chen");
    drop(c);

    // Away, said before chen is even running: chen hears it when he connects.
    a.set_away(true).await.unwrap();
    let c = common::start_dialing(Profile::open(&c_dir).unwrap(), &addr).await;
    let (mut a_ev, mut b_ev, mut c_ev) = (a.subscribe(), b.subscribe(), c.subscribe());
    // Both sides: a signal goes to the connections its sender knows of.
    wait_until("chen connected", async || {
        a.peers().await.unwrap().len() == 2 && c.peers().await.unwrap().len() == 1
    })
    .await;
    // Chen's client claims to type in #board (he may not post there) and in general.
    c.signal_unchecked(Signal::Typing {
        channel: "board".into(),
    })
    .await
    .unwrap();
    a.typing("board").await.unwrap();
    c.typing("general").await.unwrap();

    let [at_a, at_b, at_c] = signals_for_3s([&mut a_ev, &mut b_ev, &mut c_ev]).await;
    let has = |v: &[String], e: &str| v.iter().any(|x| x == e);
    assert!(has(&at_a, "chen in general"), "amina: {at_a:?}");
    assert!(!has(&at_a, "chen in board"), "amina: {at_a:?}");
    assert!(has(&at_b, "amina in board"), "bilal: {at_b:?}");
    assert!(!has(&at_b, "chen in board"), "bilal: {at_b:?}");
    assert!(has(&at_c, "amina away true"), "chen: {at_c:?}");
    assert!(!at_c.iter().any(|e| e.contains("board")), "chen: {at_c:?}");
    assert!(
        a.stats()
            .await
            .unwrap()
            .rejected
            .get("signal")
            .copied()
            .unwrap_or(0)
            >= 1,
        "the false claim is counted"
    );
    for n in [&a, &b, &c] {
        n.shutdown().await.unwrap();
    }
}

/// Above the mesh limit no device is connected to every other, so every device passes
/// typing and away on: here a chain amina — bilal — chen — dana (each knows one address;
/// the mesh limit is 1, so the org of four is "large"). Amina typing in general reaches dana
/// three connections away; typing in the private #board stops at its readers (bilal passes
/// it to nobody); dana's away reaches amina; a forgery in bilal's name is shown nowhere; and
/// a modified client flooding its own away signals is carried on at most a few a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn above_the_mesh_limit_typing_and_away_reach_colleagues_who_are_not_neighbours() {
    use majlis_core::net::{Signal, SignedSignal};
    let dir = tempfile::tempdir().unwrap();
    let mut ps = common::org_with(
        dir.path(),
        &[
            ("bilal", majlis_core::Role::Member),
            ("chen", majlis_core::Role::Member),
            ("dana", majlis_core::Role::Member),
        ],
        &[of_amina_and_bilal("board")],
    );
    let small = |peers| Config {
        mesh_limit: 1,
        ..config(peers)
    };
    let d_p = ps.pop().unwrap();
    let c_p = ps.pop().unwrap();
    let b = Node::start(ps.pop().unwrap(), small(vec![])).await.unwrap();
    let b_addr = b.listen_addrs().await.unwrap()[0].clone();
    let c = Node::start(c_p, small(vec![b_addr.clone()])).await.unwrap();
    let c_addr = c.listen_addrs().await.unwrap()[0].clone();
    let a = Node::start(ps.pop().unwrap(), small(vec![b_addr]))
        .await
        .unwrap();
    let d = Node::start(d_p, small(vec![c_addr])).await.unwrap();
    wait_until("the chain connected", async || {
        a.peers().await.unwrap().len() == 1
            && b.peers().await.unwrap().len() == 2
            && c.peers().await.unwrap().len() == 2
            && d.peers().await.unwrap().len() == 1
    })
    .await;
    let (mut a_ev, mut b_ev, mut c_ev, mut d_ev) =
        (a.subscribe(), b.subscribe(), c.subscribe(), d.subscribe());
    let bilal = b.device_id();

    a.typing("general").await.unwrap();
    a.typing("board").await.unwrap();
    d.set_away(true).await.unwrap();
    // Chen's modified client: bilal "typing in general", with no valid signature.
    c.signal_unchecked(Signal::Signed(SignedSignal {
        device: bilal,
        sent_at: majlis_core::now_ms(),
        signal: Box::new(Signal::Typing {
            channel: "general".into(),
        }),
        hops: 0,
        sig: serde_bytes::ByteBuf::from(vec![0u8; 64]),
    }))
    .await
    .unwrap();

    let [at_a, at_b, at_c, at_d] =
        signals_for_3s([&mut a_ev, &mut b_ev, &mut c_ev, &mut d_ev]).await;
    let has = |v: &[String], e: &str| v.iter().any(|x| x == e);
    assert!(has(&at_d, "amina in general"), "dana: {at_d:?}");
    assert!(has(&at_c, "amina in general"), "chen: {at_c:?}");
    assert!(has(&at_b, "amina in board"), "bilal: {at_b:?}");
    for (who, seen) in [("chen", &at_c), ("dana", &at_d)] {
        assert!(!seen.iter().any(|e| e.contains("board")), "{who}: {seen:?}");
    }
    assert!(has(&at_a, "dana away true"), "amina: {at_a:?}");
    assert!(has(&at_b, "dana away true"), "bilal: {at_b:?}");
    assert!(!has(&at_d, "bilal in general"), "the forgery: {at_d:?}");
    assert!(!has(&at_a, "bilal in general"), "the forgery: {at_a:?}");
    for n in [&a, &d] {
        assert_eq!(n.peers().await.unwrap().len(), 1, "still a chain");
    }

    // Chen floods his own away, 60 signals each newer than the last: bilal, his neighbour,
    // is told each; amina, behind bilal, only what bilal may pass on.
    for i in 0..60 {
        c.signal_unchecked(Signal::Away(i % 2 == 0)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let [at_a, at_b] = signals_for_3s([&mut a_ev, &mut b_ev]).await;
    let chens = |v: &[String]| v.iter().filter(|e| e.starts_with("chen away")).count();
    assert!(
        chens(&at_b) >= 40,
        "bilal is told directly: {}",
        chens(&at_b)
    );
    assert!(
        (1..=10).contains(&chens(&at_a)),
        "amina gets what bilal passes on, a burst and about one a second: {}",
        chens(&at_a)
    );
    for n in [&a, &b, &c, &d] {
        n.shutdown().await.unwrap();
    }
}

/// Read receipts: bilal reads amina's direct message; amina's node learns up to when, once;
/// the receipt is no row of the conversation and no unread message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_then_a_read_receipt_reach_the_sender_once_and_show_as_no_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut ps = org(dir.path(), &[]);
    drop(ps.pop());
    let b = ps.pop().unwrap();
    let a = Node::start(ps.pop().unwrap(), config(vec![]))
        .await
        .unwrap();
    let addr = a.listen_addrs().await.unwrap()[0].clone();
    let b = Node::start(b, config(vec![addr])).await.unwrap();
    wait_until("connected", async || a.peers().await.unwrap().len() == 1).await;
    let hi = a.send("@bilal", "are you coming?").await.unwrap();
    wait_until("bilal has it", async || {
        b.history("@amina", 10).unwrap().len() == 1
    })
    .await;
    let at = b.history("@amina", 10).unwrap()[0].sent_at;
    // Delivered before read: bilal's node says in its catch-up requests that it holds it.
    assert!(a.read_marks("@bilal").unwrap().is_empty());
    wait_until("amina learns bilal's device holds it", async || {
        a.delivered_marks("@bilal")
            .unwrap()
            .iter()
            .any(|(m, t)| m == "bilal" && *t >= at)
    })
    .await;
    assert!(
        b.delivered_marks("@amina").unwrap().is_empty(),
        "bilal sent nothing, so nothing of his is delivered"
    );
    assert!(b.mark_read("@amina", &hi).await.unwrap().is_some());
    assert!(
        b.mark_read("@amina", &hi).await.unwrap().is_none(),
        "no second receipt for the same message"
    );
    wait_until("amina learns bilal read it", async || {
        a.read_marks("@bilal")
            .unwrap()
            .iter()
            .any(|(m, t)| m == "bilal" && *t >= at)
    })
    .await;
    let rows = a.history("@bilal", 10).unwrap();
    assert_eq!(rows.len(), 1, "the receipt is not a message: {rows:?}");
    assert_eq!(a.unread("@bilal", 0, 10).unwrap(), 0);
    // The org turns read receipts off: bilal's node sends none any more.
    a.change_roster(RosterChange::SetReadReceipts {
        receipts: majlis_core::roster::ReadReceipts::Off,
    })
    .await
    .unwrap();
    wait_until("bilal has the policy", async || {
        b.roster()
            .await
            .unwrap()
            .is_some_and(|r| r.governance.read_receipts == majlis_core::roster::ReadReceipts::Off)
    })
    .await;
    let again = a.send("@bilal", "and now?").await.unwrap();
    wait_until("bilal has it", async || {
        b.history("@amina", 10).unwrap().len() == 2
    })
    .await;
    assert!(b.mark_read("@amina", &again).await.unwrap().is_none());
    for n in [&a, &b] {
        n.shutdown().await.unwrap();
    }
}

/// In a channel of more than `RECEIPTS_UP_TO` readers no read receipt is sent (one per
/// reader per read would flood it), but "delivered" still reaches the sender: it costs no
/// message, so a line in a big channel does not stay "✓ sent" for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_channel_shows_delivered_and_sends_no_read_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let more: Vec<RosterChange> = (0..majlis_core::conversation::RECEIPTS_UP_TO)
        .map(|i| RosterChange::AddMember {
            name: format!("member{i:02}"),
            device: majlis_core::DeviceKey::generate().id(),
            role: None,
        })
        .collect();
    let mut ps = org(dir.path(), &more);
    drop(ps.pop());
    let b = ps.pop().unwrap();
    let a = Node::start(ps.pop().unwrap(), config(vec![]))
        .await
        .unwrap();
    let readers = a.roster().await.unwrap().unwrap().members.len();
    assert!(
        readers > majlis_core::conversation::RECEIPTS_UP_TO,
        "{readers} readers"
    );
    let addr = a.listen_addrs().await.unwrap()[0].clone();
    let b = Node::start(b, config(vec![addr])).await.unwrap();
    wait_until("connected", async || a.peers().await.unwrap().len() == 1).await;
    let hi = a.send("general", "all hands at ten").await.unwrap();
    wait_until("bilal has it", async || {
        b.history("general", 10).unwrap().iter().any(|m| m.id == hi)
    })
    .await;
    let at = b.history("general", 10).unwrap().last().unwrap().sent_at;
    wait_until("amina learns bilal's device holds it", async || {
        a.delivered_marks("general")
            .unwrap()
            .iter()
            .any(|(m, t)| m == "bilal" && *t >= at)
    })
    .await;
    assert!(
        b.mark_read("general", &hi).await.unwrap().is_none(),
        "no read receipt in a channel of {readers}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(a.read_marks("general").unwrap().is_empty());
    for n in [&a, &b] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_pins_and_leaving_converge_and_hold_against_a_modified_client() {
    let dir = tempfile::tempdir().unwrap();
    let board = of_amina_and_bilal("board");
    let ps = org(dir.path(), &[board]);
    let (a, b, c) = start_three(ps).await;
    let nodes = [&a, &b, &c];

    let plan = a
        .send("general", "Q4 plan: ship on the 12th")
        .await
        .unwrap();
    let secret = a.send("board", "salaries").await.unwrap();
    wait_until("everyone has the plan", async || {
        nodes
            .iter()
            .all(|n| shown(n, &plan).is_some_and(|m| !m.locked))
    })
    .await;
    a.set_topic("general", "Q4 launch", "Everything about the launch")
        .await
        .unwrap();
    b.pin(&plan, true).await.unwrap();
    assert!(b.pin(&plan, true).await.is_err(), "pinned twice");
    b.join("general", false).await.unwrap();
    assert!(b.join("general", false).await.is_err(), "left twice");
    // A restricted channel is left by an admin changing the roster, not by an act.
    assert!(matches!(
        b.join("board", false).await,
        Err(majlis_core::Error::Denied(_))
    ));
    assert!(c.set_topic("general", &"x".repeat(300), "").await.is_err());

    // chen's modified client: a topic over the limit, and a pin of a message of a channel he
    // cannot read (its id learned somehow). Readers take neither.
    c.act_unchecked(
        "general",
        Plain::Topic {
            topic: "x".repeat(300),
            description: String::new(),
        },
    )
    .await
    .unwrap();
    c.act_unchecked(
        "general",
        Plain::Pin {
            of: secret,
            on: true,
        },
    )
    .await
    .unwrap();
    let last = c.send("general", "marker").await.unwrap();

    wait_until("every node shows the same details", async || {
        nodes.iter().all(|n| {
            let d = n.details("general").unwrap();
            shown(n, &last).is_some()
                && d.topic == "Q4 launch"
                && d.description == "Everything about the launch"
                && d.topic_by.as_ref().is_some_and(|(w, _)| w == "amina")
                && d.pins.len() == 1
                && d.pins[0].0 == plan
                && d.pins[0].1 == "bilal"
                && d.left == ["bilal"]
        })
    })
    .await;
    for n in nodes {
        assert_eq!(
            n.pinned("general").unwrap()[0].text,
            "Q4 plan: ship on the 12th"
        );
        // None of it is a row of the conversation.
        let rows: Vec<String> = n
            .history("general", 50)
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(rows, ["Q4 plan: ship on the 12th", "marker"]);
    }

    // Unpinned and back in: every node shows it.
    a.pin(&plan, false).await.unwrap();
    b.join("general", true).await.unwrap();
    wait_until("unpinned and rejoined everywhere", async || {
        nodes.iter().all(|n| {
            let d = n.details("general").unwrap();
            d.pins.is_empty() && d.left.is_empty()
        })
    })
    .await;
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

/// Typing and away cross a relay: amina, bilal and chen reach each other only through it
/// (their loopback addresses are not exchanged, so no direct connection forms). What the
/// relay passes on follows the same rules as a direct signal: typing in a private channel
/// reaches its readers only, and a signal forged in another device's name is not shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_and_away_cross_a_relay_and_a_forged_one_does_not() {
    use majlis_core::net::{Signal, SignedSignal};
    use majlis_core::Event;
    let dir = tempfile::tempdir().unwrap();
    let mut ps = common::org_with(
        dir.path(),
        &[
            ("bilal", majlis_core::Role::Member),
            ("chen", majlis_core::Role::Member),
            ("relay", majlis_core::Role::Relay),
        ],
        &[of_amina_and_bilal("board")],
    );
    let r = Node::start(ps.pop().unwrap(), config(vec![]))
        .await
        .unwrap();
    let addr = r.listen_addrs().await.unwrap()[0].clone();
    let c = Node::start(ps.pop().unwrap(), config(vec![addr.clone()]))
        .await
        .unwrap();
    let b = Node::start(ps.pop().unwrap(), config(vec![addr.clone()]))
        .await
        .unwrap();
    let a = Node::start(ps.pop().unwrap(), config(vec![addr]))
        .await
        .unwrap();
    wait_until("everyone connected to the relay", async || {
        r.peers().await.unwrap().len() == 3
            && a.peers().await.unwrap().len() == 1
            && b.peers().await.unwrap().len() == 1
            && c.peers().await.unwrap().len() == 1
    })
    .await;
    let (mut a_ev, mut b_ev, mut c_ev) = (a.subscribe(), b.subscribe(), c.subscribe());
    let bilal = b.device_id();

    b.typing("general").await.unwrap();
    a.typing("board").await.unwrap();
    b.set_away(true).await.unwrap();
    // Chen's modified client: bilal "typing in #board", signed with no valid signature.
    c.signal_unchecked(Signal::Signed(SignedSignal {
        device: bilal,
        sent_at: majlis_core::now_ms(),
        signal: Box::new(Signal::Typing {
            channel: "board".into(),
        }),
        hops: 0,
        sig: serde_bytes::ByteBuf::from(vec![0u8; 64]),
    }))
    .await
    .unwrap();

    let [at_a, at_b, at_c] = signals_for_3s([&mut a_ev, &mut b_ev, &mut c_ev]).await;
    // Only the relay connects them: what arrived came through it.
    for n in [&a, &b, &c] {
        assert_eq!(
            n.peers().await.unwrap().len(),
            1,
            "connected to the relay only"
        );
    }
    let has = |v: &[String], e: &str| v.iter().any(|x| x == e);
    assert!(has(&at_a, "bilal in general"), "amina: {at_a:?}");
    assert!(has(&at_c, "bilal in general"), "chen: {at_c:?}");
    assert!(has(&at_b, "amina in board"), "bilal: {at_b:?}");
    assert!(!at_c.iter().any(|e| e.contains("board")), "chen: {at_c:?}");
    assert!(has(&at_a, "bilal away true"), "amina: {at_a:?}");
    assert!(has(&at_c, "bilal away true"), "chen: {at_c:?}");
    assert!(!has(&at_a, "bilal in board"), "the forgery: {at_a:?}");
    assert!(
        r.stats()
            .await
            .unwrap()
            .rejected
            .get("signal")
            .copied()
            .unwrap_or(0)
            >= 1,
        "the relay counts the forgery"
    );
    // A device that connects later hears from the relay who is away: chen restarts.
    c.shutdown().await.unwrap();
    drop(c);
    let addr = r.listen_addrs().await.unwrap()[0].clone();
    let c = common::start_dialing(Profile::open(&dir.path().join("chen")).unwrap(), &addr).await;
    let mut c_ev = c.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut told = false;
    while !told && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), c_ev.recv()).await {
            Ok(Ok(Event::Away { member, away, .. })) => told = member == "bilal" && away,
            _ => continue,
        }
    }
    assert!(told, "chen, back, hears from the relay that bilal is away");
    for n in [&a, &b, &c, &r] {
        n.shutdown().await.unwrap();
    }
}

/// A status is kept by every node and handed to each device that connects: amina sets
/// hers and goes offline; chen, who comes online later and meets only bilal, sees it, and
/// bilal still has it after a restart. Chen's modified client cannot change it: a status in
/// amina's name signed by his own key, an unsigned one, one dated an hour ahead (it would
/// outrank her later ones) and a replay of her older one all leave her status as she set
/// it; his own, sent the honest way, reaches bilal, and fifty more in a burst are taken at
/// a pace (a few, not fifty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_reaches_colleagues_who_come_online_later_and_a_forged_one_does_not() {
    use majlis_core::net::{Signal, SignedSignal};
    use majlis_core::status::Status;
    let dir = tempfile::tempdir().unwrap();
    let mut ps = org(dir.path(), &[]);
    let (c_dir, b_dir) = (dir.path().join("chen"), dir.path().join("bilal"));
    let chen_key = ps.pop().unwrap().key().clone();
    drop(ps.pop());
    let amina = ps.pop().unwrap();
    let her_key = amina.key().clone();
    let now = majlis_core::now_ms();
    let status = |key: &majlis_core::DeviceKey, at: u64, text: &str| {
        SignedSignal::sign(
            key,
            at,
            Signal::Status(Status {
                text: text.into(),
                until: None,
            }),
        )
    };
    let older = status(&her_key, now - 60_000, "At lunch");

    let a = Node::start(amina, config(vec![])).await.unwrap();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let day = now + 24 * 3_600_000;
    a.set_status("On leave until Monday", Some(day))
        .await
        .unwrap();
    let b = common::start_dialing(Profile::open(&b_dir).unwrap(), &a_addr).await;
    let hers = |n: &Node| {
        let n = n.clone();
        async move {
            n.statuses()
                .await
                .unwrap()
                .into_iter()
                .find(|s| s.member == "amina")
                .map(|s| (s.text, s.until))
        }
    };
    let set = Some(("On leave until Monday".to_string(), Some(day)));
    wait_until("bilal has amina's status", async || hers(&b).await == set).await;
    a.shutdown().await.unwrap();

    let b_addr = b.listen_addrs().await.unwrap()[0].clone();
    let c = common::start_dialing(Profile::open(&c_dir).unwrap(), &b_addr).await;
    wait_until("chen has it from bilal", async || hers(&c).await == set).await;

    // Chen's modified client.
    let mut forged = status(&chen_key, majlis_core::now_ms(), "Amina: fired");
    forged.device = her_key.id();
    let ahead = status(&her_key, majlis_core::now_ms() + 3_600_000, "Back");
    for s in [
        Signal::Signed(forged),
        Signal::Status(Status {
            text: "unsigned".into(),
            until: None,
        }),
        Signal::Signed(ahead),
        Signal::Signed(older),
    ] {
        c.signal_unchecked(s).await.unwrap();
    }
    c.set_status("Working from home", None).await.unwrap();
    wait_until("bilal has chen's own", async || {
        b.statuses()
            .await
            .unwrap()
            .iter()
            .any(|s| s.member == "chen" && s.text == "Working from home")
    })
    .await;
    assert_eq!(hers(&b).await, set);
    let refused = b.stats().await.unwrap().rejected.get("signal").copied();
    assert!(refused.unwrap_or(0) >= 3, "{refused:?}");

    // Chen's client floods fifty new statuses of his own: bilal takes a few, not fifty.
    let mut ev = b.subscribe();
    let from = majlis_core::now_ms() + 1_000;
    for i in 0..50 {
        let s = status(&chen_key, from + i, &format!("busy {i}"));
        c.signal_unchecked(Signal::Signed(s)).await.unwrap();
    }
    let mut taken = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Ok(e)) = tokio::time::timeout_at(until, ev.recv()).await {
        if matches!(e, majlis_core::Event::Status(st) if st.member == "chen") {
            taken += 1;
        }
    }
    assert!((1..=8).contains(&taken), "{taken} of 50 taken");

    // Kept across a restart.
    b.shutdown().await.unwrap();
    c.shutdown().await.unwrap();
    drop((b, c));
    let b = Node::start(Profile::open(&b_dir).unwrap(), config(vec![]))
        .await
        .unwrap();
    assert_eq!(hers(&b).await, set);
    b.shutdown().await.unwrap();
}

/// Bilal forwards amina's message from #legal (amina and bilal only) to #general: amina,
/// who holds the original, sees that it matches; chen, who may not read #legal, sees where
/// it says it came from and that he cannot check it. Bilal's modified client then puts
/// other words in amina's mouth, names chen as the author of her message, and edits his
/// forward afterwards: amina's node shows each as not matching (chen too for the edited
/// one); the honest client refuses to edit a forward.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_shows_where_it_came_from_and_a_forged_one_does_not_match() {
    use majlis_core::conversation::{ForwardCheck, Forwarded};
    let dir = tempfile::tempdir().unwrap();
    let ps = org(dir.path(), &[of_amina_and_bilal("legal")]);
    let (a, b, c) = start_three(ps).await;

    let original = a.send("legal", "the contract is signed").await.unwrap();
    wait_until("bilal has it", async || {
        b.history("legal", 10).unwrap().len() == 1
    })
    .await;
    let honest = b.forward(&original, "general").await.unwrap();
    let at = b.history("legal", 10).unwrap()[0].sent_at;
    let claims = |text: &str, author: &str| Plain::Forward {
        text: text.into(),
        from: Forwarded {
            id: original,
            author: author.into(),
            channel: "legal".into(),
            sent_at: at,
        },
    };
    let words = b
        .act_unchecked("general", claims("you are all fired", "amina"))
        .await
        .unwrap();
    let author = b
        .act_unchecked("general", claims("the contract is signed", "chen"))
        .await
        .unwrap();
    let e = b.edit(&honest, "the contract is void").await.unwrap_err();
    assert!(e.to_string().contains("forwarded"), "{e}");
    b.act_unchecked(
        "general",
        Plain::Edit {
            of: honest,
            text: "the contract is void".into(),
        },
    )
    .await
    .unwrap();

    let check = |n: &Node, id: &MessageId| {
        let m = shown(n, id)?;
        let f = m.forwarded?;
        Some((f.author, f.channel, f.check))
    };
    let of = |who: &str, c| Some((who.to_string(), "legal".to_string(), c));
    wait_until("amina and chen hold all three", async || {
        [&a, &c].iter().all(|n| {
            [honest, words, author]
                .iter()
                .all(|id| check(n, id).is_some())
        }) && shown(&a, &honest).is_some_and(|m| m.edited)
    })
    .await;
    assert_eq!(check(&a, &words), of("amina", ForwardCheck::Differs));
    assert_eq!(check(&a, &author), of("chen", ForwardCheck::Differs));
    assert_eq!(
        check(&a, &honest),
        of("amina", ForwardCheck::Differs),
        "edited after forwarding"
    );
    assert_eq!(check(&c, &words), of("amina", ForwardCheck::Unseen));
    assert_eq!(check(&c, &honest), of("amina", ForwardCheck::Differs));
    // An export (for discovery) says the same of each: whose it claimed, and the check.
    let out = dir.path().join("export");
    a.export(majlis_core::export::Spec {
        scope: majlis_core::export::Scope::Channel("general".into()),
        from: None,
        to: None,
        format: majlis_core::export::Format::Json,
        out: out.clone(),
    })
    .await
    .unwrap();
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("messages.json")).unwrap()).unwrap();
    assert_eq!(doc["export_format"], 5);
    let record = |id: &MessageId| {
        doc["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id.to_string().as_str())
            .map(|r| {
                (
                    r["sender"].clone(),
                    r["forwarded"]["author"].clone(),
                    r["forwarded"]["check"].clone(),
                )
            })
            .unwrap()
    };
    assert_eq!(
        record(&words),
        ("bilal".into(), "amina".into(), "differs".into())
    );
    assert_eq!(
        record(&author),
        ("bilal".into(), "chen".into(), "differs".into())
    );
    // Chen cannot forward what he may not read.
    assert!(c.forward(&original, "general").await.is_err());
    // An unedited honest forward matches (here in a DM).
    let again = b.forward(&original, "@amina").await.unwrap();
    let in_dm = |n: &Node| {
        n.history("@bilal", 10)
            .unwrap()
            .into_iter()
            .find(|m| m.id == again)
    };
    wait_until("amina has the second forward", async || in_dm(&a).is_some()).await;
    let m = in_dm(&a).unwrap();
    assert_eq!(m.text, "the contract is signed");
    assert_eq!(m.forwarded.map(|f| f.check), Some(ForwardCheck::Matches));
    for n in [&a, &b, &c] {
        n.shutdown().await.unwrap();
    }
}

/// Bilal writes now and sends later: nothing reaches amina before the time, then each
/// message does, once, within 0.6 s of its time (two 1.5 s apart; the node's tick is 5 s),
/// in its order; one kept while his node is stopped goes when it runs again; one he cancels
/// never goes; and one for #legal, which an admin takes him off meanwhile, is not sent and
/// his node says what it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_scheduled_for_later_goes_at_its_time_once() {
    let dir = tempfile::tempdir().unwrap();
    let ps = org(dir.path(), &[of_amina_and_bilal("legal")]);
    let b_dir = dir.path().join("bilal");
    let (a, b, c) = start_three(ps).await;
    c.shutdown().await.unwrap();
    let now = majlis_core::now_ms;
    let e = b
        .send_later("general", "too late", now() - 1)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("has passed"), "{e}");
    let soon = b
        .send_later("general", "standup in five", now() + 2_000)
        .await
        .unwrap();
    let never = b
        .send_later("general", "never mind", now() + 3_000)
        .await
        .unwrap();
    let agenda = b
        .send_later("general", "and the agenda", now() + 3_500)
        .await
        .unwrap();
    b.send_later("legal", "the draft is attached", now() + 4_000)
        .await
        .unwrap();
    assert_eq!(b.scheduled().len(), 4);
    assert_eq!(
        b.cancel_scheduled(never.id).await.unwrap().text,
        "never mind"
    );
    let texts = |n: &Node, ch: &str| -> Vec<String> {
        n.history(ch, 50)
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect()
    };
    assert!(texts(&a, "general").is_empty(), "sent before its time");
    let mut ev = b.subscribe();
    a.change_roster(RosterChange::ChannelMembers {
        name: "legal".into(),
        change: majlis_core::roster::MembersChange::Remove(vec!["bilal".into()]),
    })
    .await
    .unwrap();
    wait_until("the standup message reaches amina", async || {
        texts(&a, "general") == ["standup in five", "and the agenda"]
    })
    .await;
    // Each at its time, not at the node's next tick (every 5 s; these are 1.5 s apart).
    let sent = a.history("general", 2).unwrap();
    for (m, at) in sent.iter().zip([soon.at, agenda.at]) {
        assert!(
            (at..at + 600).contains(&m.sent_at),
            "'{}' sent {} ms after its time",
            m.text,
            m.sent_at as i64 - at as i64
        );
    }
    let failed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Ok(majlis_core::Event::ScheduledFailed { text, why, .. }) = ev.recv().await {
                return (text, why);
            }
        }
    })
    .await
    .expect("the #legal message is said to have failed");
    assert_eq!(failed.0, "the draft is attached", "{failed:?}");
    assert!(b.scheduled().is_empty());

    // Kept while bilal's node is stopped, sent when it runs again.
    b.send_later("general", "back online", now() + 1_000)
        .await
        .unwrap();
    b.shutdown().await.unwrap();
    drop(b);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let addr = a.listen_addrs().await.unwrap()[0].clone();
    let b = common::start_dialing(Profile::open(&b_dir).unwrap(), &addr).await;
    wait_until("sent once bilal runs again", async || {
        texts(&a, "general") == ["standup in five", "and the agenda", "back online"]
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(texts(&a, "general").len(), 3, "sent once");
    for n in [&a, &b] {
        n.shutdown().await.unwrap();
    }
}

/// Bilal asks to be reminded of messages: each reminder is said once at its time with the
/// message as it shows then; one cancelled is never said; one whose channel he was taken off
/// meanwhile is dropped unsaid (it would show what he may no longer read); one due while his
/// node is stopped is said when it runs again, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_is_said_once_at_its_time_and_only_while_the_message_is_readable() {
    use majlis_core::Event;
    let dir = tempfile::tempdir().unwrap();
    let ps = org(dir.path(), &[of_amina_and_bilal("legal")]);
    let b_dir = dir.path().join("bilal");
    let (a, b, c) = start_three(ps).await;
    c.shutdown().await.unwrap();
    let now = majlis_core::now_ms;
    let plan = a.send("general", "the plan is due friday").await.unwrap();
    let draft = a.send("legal", "the draft contract").await.unwrap();
    wait_until("bilal holds both", async || {
        shown(&b, &plan).is_some() && !b.history("legal", 5).unwrap().is_empty()
    })
    .await;
    let e = b.remind(&plan, now() - 1).await.unwrap_err();
    assert!(e.to_string().contains("has passed"), "{e}");
    let nowhere = MessageId([7; 32]);
    let e = b.remind(&nowhere, now() + 1_000).await.unwrap_err();
    assert!(e.to_string().contains("no message"), "{e}");
    let mut ev = b.subscribe();
    let first = b.remind(&plan, now() + 1_500).await.unwrap();
    let never = b.remind(&plan, now() + 2_000).await.unwrap();
    b.remind(&draft, now() + 2_000).await.unwrap();
    assert_eq!(b.reminders().len(), 3);
    assert_eq!(b.cancel_reminder(never.id).await.unwrap().message, plan);
    a.edit(&plan, "the plan is due thursday").await.unwrap();
    a.change_roster(RosterChange::ChannelMembers {
        name: "legal".into(),
        change: majlis_core::roster::MembersChange::Remove(vec!["bilal".into()]),
    })
    .await
    .unwrap();
    wait_until("bilal sees the edit", async || {
        shown(&b, &plan).is_some_and(|m| m.edited)
    })
    .await;
    // Everything due is said within a tick (5 s); then nothing more for a further tick.
    let mut said = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(13), async {
        loop {
            if let Ok(Event::Reminder { reminder, message }) = ev.recv().await {
                said.push((reminder.id, message.text));
            }
        }
    })
    .await;
    assert_eq!(
        said,
        [(first.id, "the plan is due thursday".to_string())],
        "said once, as it shows now; the cancelled one and the unreadable one never"
    );
    assert!(b.reminders().is_empty());

    // Due while bilal's node is stopped: said when it runs again, once.
    b.remind(&plan, now() + 1_000).await.unwrap();
    b.shutdown().await.unwrap();
    drop((b, ev));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let addr = a.listen_addrs().await.unwrap()[0].clone();
    let b = common::start_dialing(Profile::open(&b_dir).unwrap(), &addr).await;
    let mut ev = b.subscribe();
    let mut again = 0;
    let _ = tokio::time::timeout(Duration::from_secs(13), async {
        loop {
            if let Ok(Event::Reminder { .. }) = ev.recv().await {
                again += 1;
            }
        }
    })
    .await;
    assert_eq!(again, 1, "said once after the restart");
    for n in [&a, &b] {
        n.shutdown().await.unwrap();
    }
}

/// A poll: every reader counts each member's latest vote once, and what a modified client
/// sends against the rules counts for nothing anywhere: a choice the poll does not offer,
/// two where it takes one, a vote after it closed, a closing by someone who did not ask, a
/// question edited after the votes, a poll whose options read alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_counts_each_members_latest_vote_and_a_forged_one_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = start_three(org(dir.path(), &[])).await;
    let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let e = a.poll("general", "Lunch?", &o(&["Pizza"]), false).await;
    assert!(e.unwrap_err().to_string().contains("2 to 12 options"));
    let poll = a
        .poll(
            "general",
            " Lunch on Friday? ",
            &o(&["Pizza", "Sushi", "Falafel"]),
            false,
        )
        .await
        .unwrap();
    wait_until("bilal and chen hold the poll", async || {
        shown(&b, &poll).is_some() && shown(&c, &poll).is_some()
    })
    .await;
    b.vote(&poll, &[0]).await.unwrap();
    b.vote(&poll, &[1]).await.unwrap(); // changed his mind: the latest counts
    c.vote(&poll, &[1]).await.unwrap();
    // The honest client refuses what breaks the rules.
    let refused = |r: majlis_core::Result<MessageId>| r.unwrap_err().to_string();
    assert!(refused(b.vote(&poll, &[0, 2]).await).contains("one choice"));
    assert!(refused(b.vote(&poll, &[5]).await).contains("options 1 to 3, not 6"));
    assert!(refused(b.close_poll(&poll).await).contains("only amina"));
    assert!(refused(a.edit(&poll, "Dinner?").await).contains("question stays"));
    assert!(refused(b.forward(&poll, "@amina").await).contains("not forwarded"));
    // Bilal's modified client sends it all the same; amina's edits her question.
    for choices in [vec![0, 2], vec![7], vec![2, 0]] {
        b.act_unchecked("general", Plain::Vote { poll, choices })
            .await
            .unwrap();
    }
    b.act_unchecked("general", Plain::ClosePoll { of: poll })
        .await
        .unwrap();
    let alike = b
        .act_unchecked(
            "general",
            Plain::Poll {
                question: "Which?".into(),
                options: o(&["Yes", "yes"]),
                multi: false,
            },
        )
        .await
        .unwrap();
    b.act_unchecked(
        "general",
        Plain::Vote {
            poll: alike,
            choices: vec![0],
        },
    )
    .await
    .unwrap();
    a.act_unchecked(
        "general",
        Plain::Edit {
            of: poll,
            text: "Dinner on Friday?".into(),
        },
    )
    .await
    .unwrap();
    let last = b.send("general", "that is all from me").await.unwrap();
    let tally = |n: &Node| {
        let m = shown(n, &poll)?;
        let p = m.poll?;
        let voters: Vec<Vec<String>> = p.options.iter().map(|o| o.voters.clone()).collect();
        Some((m.text, voters, p.closed))
    };
    let sushi = || {
        Some((
            "Lunch on Friday?".to_string(),
            vec![
                vec![],
                vec!["bilal".to_string(), "chen".to_string()],
                vec![],
            ],
            None,
        ))
    };
    wait_until(
        "every node holds bilal's last line and amina's edit",
        async || {
            [&a, &b, &c].iter().all(|n| shown(n, &last).is_some())
                && shown(&c, &poll).is_some_and(|m| m.edited || m.poll.is_some())
        },
    )
    .await;
    for (who, n) in [("amina", &a), ("bilal", &b), ("chen", &c)] {
        assert_eq!(tally(n), sushi(), "the tally at {who}");
        let m = shown(n, &alike).unwrap();
        assert_eq!(m.text, "[a poll this app cannot show]");
        assert!(m.poll.is_none());
    }

    // Closed by amina: a vote chen's modified client sends after it does not count.
    a.close_poll(&poll).await.unwrap();
    wait_until("chen sees it closed", async || {
        shown(&c, &poll).is_some_and(|m| m.poll.unwrap().closed.is_some())
    })
    .await;
    assert!(refused(c.vote(&poll, &[0]).await).contains("closed by amina"));
    assert!(refused(a.close_poll(&poll).await).contains("already closed"));
    c.act_unchecked(
        "general",
        Plain::Vote {
            poll,
            choices: vec![0],
        },
    )
    .await
    .unwrap();
    let last = c.send("general", "late, sorry").await.unwrap();
    wait_until("amina holds chen's late line", async || {
        shown(&a, &last).is_some()
    })
    .await;
    let (_, voters, closed) = tally(&a).unwrap();
    assert_eq!(voters, sushi().unwrap().1, "a vote after closing counted");
    assert_eq!(closed.map(|c| c.0), Some("amina".to_string()));

    // Several choices where the poll allows them; none takes the vote back.
    let days = a
        .poll("general", "Which days?", &o(&["Mon", "Tue", "Wed"]), true)
        .await
        .unwrap();
    wait_until("bilal holds it", async || shown(&b, &days).is_some()).await;
    b.vote(&days, &[2, 0]).await.unwrap();
    c.vote(&days, &[0]).await.unwrap();
    let chosen = |n: &Node, i: usize| {
        shown(n, &days).unwrap().poll.unwrap().options[i]
            .voters
            .clone()
    };
    wait_until("amina counts both", async || {
        chosen(&a, 0).len() == 2 && chosen(&a, 2) == ["bilal"]
    })
    .await;
    b.vote(&days, &[]).await.unwrap();
    wait_until("bilal's vote taken back at chen", async || {
        chosen(&c, 0) == ["chen"] && chosen(&c, 2).is_empty()
    })
    .await;
}

/// amina, bilal (his laptop), chen, and bilal's desktop (its data in `dir/bilal-desk`),
/// running; and the addresses the desktop dials (amina's and the laptop's), to start it
/// again with.
async fn with_his_desktop(
    dir: &std::path::Path,
) -> (Node, Node, Node, Node, Vec<libp2p::Multiaddr>) {
    let desk = Profile::init(&dir.join("bilal-desk"), "bilal").unwrap();
    let ps = org(
        dir,
        &[RosterChange::AddMember {
            name: "bilal".into(),
            device: desk.device_id(),
            role: None,
        }],
    );
    desk.org_join(ps[0].org().unwrap().unwrap()).unwrap();
    let full = ps[0].chain().unwrap().versions().to_vec();
    desk.apply_rosters(&mut desk.chain().unwrap(), full)
        .unwrap();
    let (a, b, c) = start_three(ps).await;
    // His two devices reach each other (on a LAN by mDNS or peer exchange, which leaves
    // loopback out): amina's node may not carry his notes.
    let peers = vec![
        a.listen_addrs().await.unwrap()[0].clone(),
        b.listen_addrs().await.unwrap()[0].clone(),
    ];
    let d = Node::start(desk, config(peers.clone())).await.unwrap();
    (a, b, c, d, peers)
}

/// A reminder bilal sets on his laptop is kept on his desktop too, and one he cancels on the
/// desktop goes from the laptop; at its time each of his devices says it. Nobody else's
/// touches his: chen's own reminder, or an act amina's modified client slips into #general.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_set_on_one_device_is_kept_and_said_on_each() {
    use majlis_core::Event;
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, d, _) = with_his_desktop(dir.path()).await;
    let now = majlis_core::now_ms;
    let budget = a.send("general", "the budget is due friday").await.unwrap();
    wait_until("all hold it", async || {
        [&b, &c, &d].iter().all(|n| shown(n, &budget).is_some())
    })
    .await;
    let hour = now() + 3_600_000;
    let set = b.remind(&budget, hour).await.unwrap();
    wait_until("his desktop keeps it", async || {
        d.reminders()
            .iter()
            .any(|r| (r.message, r.at, r.channel.as_str()) == (budget, hour, "general"))
    })
    .await;
    let on_desk = d.reminders()[0].clone();
    d.cancel_reminder(on_desk.id).await.unwrap();
    wait_until("his laptop drops it", async || b.reminders().is_empty()).await;
    assert_eq!(set.message, budget);

    // Chen's reminder is his; amina's client sends one in #general: neither is bilal's.
    c.remind(&budget, hour).await.unwrap();
    let slipped = Plain::Remind {
        of: budget,
        at: hour,
        on: true,
    };
    let slipped = a.act_unchecked("general", slipped).await.unwrap();
    wait_until("his devices hold amina's act", async || {
        [&b, &d]
            .iter()
            .all(|n| n.store().has_message(&slipped).unwrap())
    })
    .await;
    let (mut on_laptop, mut on_desk) = (b.subscribe(), d.subscribe());
    let soon = b.remind(&budget, now() + 1_500).await.unwrap();
    wait_until("his desktop keeps the near one", async || {
        d.reminders().iter().any(|r| r.at == soon.at)
    })
    .await;
    assert_eq!(b.reminders().len(), 1, "{:?}", b.reminders());
    assert_eq!(d.reminders().len(), 1, "{:?}", d.reminders());
    // Said on each device once, within a tick (5 s) of its time.
    for (who, ev) in [("laptop", &mut on_laptop), ("desktop", &mut on_desk)] {
        let said = tokio::time::timeout(Duration::from_secs(12), async {
            loop {
                if let Ok(Event::Reminder { reminder, message }) = ev.recv().await {
                    return (reminder.at, message.text);
                }
            }
        })
        .await;
        assert_eq!(
            said.ok(),
            Some((soon.at, "the budget is due friday".to_string())),
            "said on his {who}"
        );
    }
    assert!(b.reminders().is_empty() && d.reminders().is_empty());
}

/// Saved for later on one device of a member is saved on each of them: bilal saves on his
/// laptop and his desktop has it; he takes it off on the desktop and the laptop drops it; a
/// desktop that was off when he saved catches up on it. Nobody else can touch his list: the
/// acts travel in his notes, which only his devices post in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_member_saves_for_later_is_saved_on_each_of_their_devices() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, d, peers) = with_his_desktop(dir.path()).await;
    let desk_dir = dir.path().join("bilal-desk");
    let budget = a.send("general", "the budget is due friday").await.unwrap();
    wait_until("both his devices hold it", async || {
        shown(&b, &budget).is_some() && shown(&d, &budget).is_some()
    })
    .await;

    b.save_for_later(&budget, true).await.unwrap();
    assert_eq!(b.saved().unwrap(), [budget]);
    wait_until("his desktop has it saved", async || {
        d.saved().unwrap() == [budget]
    })
    .await;
    let e = d.save_for_later(&budget, true).await.unwrap_err();
    assert!(e.to_string().contains("saved already"), "{e}");
    // Chen's list is his own, and bilal's his.
    c.save_for_later(&budget, true).await.unwrap();
    let e = c.send("@bilal", "into his notes").await.unwrap();
    assert!(c.store().message(&e).unwrap().unwrap().channel == "@bilal,chen");

    d.save_for_later(&budget, false).await.unwrap();
    wait_until("his laptop drops it", async || {
        b.saved().unwrap().is_empty()
    })
    .await;
    assert_eq!(c.saved().unwrap(), [budget], "chen's stays saved");

    // The desktop is off while he saves another; it catches up when it runs again.
    d.shutdown().await.unwrap();
    drop(d);
    let lunch = a.send("general", "lunch at one").await.unwrap();
    wait_until("his laptop holds it", async || shown(&b, &lunch).is_some()).await;
    b.save_for_later(&lunch, true).await.unwrap();
    let d = Node::start(Profile::open(&desk_dir).unwrap(), config(peers))
        .await
        .unwrap();
    wait_until("his desktop catches up on it", async || {
        d.saved().unwrap() == [lunch]
    })
    .await;
    for n in [&a, &b, &c, &d] {
        n.shutdown().await.unwrap();
    }
}

/// bilal reads amina's announcements in #news and reacts to her news while chen's node is
/// off; amina then takes bilal off #news. chen's node, back on, still takes bilal's reaction
/// by catch-up: he had the right to answer when he did (a past right, as for a message of a
/// member taken off a channel), so every node counts it alike. One he signs after he was
/// taken off (his modified client) is counted nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readers_answer_from_before_he_was_taken_off_reaches_a_node_that_was_off() {
    let dir = tempfile::tempdir().unwrap();
    let news_channel = [
        RosterChange::CreateChannel {
            name: "news".into(),
            members: Some(vec!["amina".into(), "bilal".into(), "chen".into()]),
        },
        RosterChange::ChannelPosters {
            name: "news".into(),
            posters: Some(vec!["amina".into()]),
        },
    ];
    let (a, b, c) = start_three(org(dir.path(), &news_channel)).await;
    let news = a
        .send("news", "The office is closed on Friday")
        .await
        .unwrap();
    let shown = |n: &Node| {
        n.history("news", 50)
            .ok()?
            .into_iter()
            .find(|m| m.id == news)
    };
    wait_until("bilal and chen hold the news", async || {
        shown(&b).is_some() && shown(&c).is_some()
    })
    .await;
    c.shutdown().await.unwrap();
    drop(c);
    b.react(&news, "👍", true).await.unwrap();
    let reacted = |n: &Node, emoji: &str| {
        shown(n).is_some_and(|m| {
            m.reactions
                .iter()
                .any(|r| r.emoji == emoji && r.members == ["bilal"])
        })
    };
    wait_until("amina counts bilal's reaction", async || reacted(&a, "👍")).await;
    // The roster's time is after the reaction's, to the millisecond.
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.change_roster(RosterChange::ChannelMembers {
        name: "news".into(),
        change: majlis_core::roster::MembersChange::Remove(vec!["bilal".into()]),
    })
    .await
    .unwrap();
    wait_until(
        "bilal's node has the roster without him on #news",
        async || {
            b.roster_now().is_some_and(|r| {
                let bilal = r.roster.member("bilal").unwrap();
                !r.roster.may_read(bilal, "news")
            })
        },
    )
    .await;
    // His modified client answers again, after: refused by every node.
    b.answer_unchecked(
        "news",
        Plain::React {
            to: news,
            emoji: "🎉".into(),
            on: true,
        },
    )
    .await
    .unwrap();
    let addr = a.listen_addrs().await.unwrap()[0].clone();
    let c = common::start_dialing(Profile::open(&dir.path().join("chen")).unwrap(), &addr).await;
    wait_until(
        "chen's node takes bilal's reaction by catch-up",
        async || reacted(&c, "👍"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in [&a, &c] {
        assert!(reacted(n, "👍") && !reacted(n, "🎉"));
    }
    for n in [&a, &b, &c] {
        n.shutdown().await.unwrap();
    }
}

/// amina lets only herself post in #general (announcements). bilal and chen, who read it,
/// still react to her news and vote in her poll, and every node counts them (and she sees
/// that bilal read it: his receipt goes as an answer too); they still may
/// not post, reply or pin there. bilal's modified client sends a text, a pin, a reply and an
/// edit as readers' answers: nobody shows any of them, at his own node neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_of_an_announcements_channel_react_and_vote_and_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let only_amina = RosterChange::ChannelPosters {
        name: "general".into(),
        posters: Some(vec!["amina".into()]),
    };
    let (a, b, c) = start_three(org(dir.path(), &[only_amina])).await;
    let news = a
        .send("general", "The office is closed on Friday")
        .await
        .unwrap();
    let options = ["Yes".to_string(), "No".to_string()];
    let poll = a
        .poll("general", "Team lunch on Thursday?", &options, false)
        .await
        .unwrap();
    wait_until("bilal and chen hold the news and the poll", async || {
        [&b, &c]
            .iter()
            .all(|n| shown(n, &news).is_some() && shown(n, &poll).is_some())
    })
    .await;
    b.react(&news, "👍", true).await.unwrap();
    b.vote(&poll, &[0]).await.unwrap();
    c.vote(&poll, &[1]).await.unwrap();
    // Bilal's read receipt goes as an answer too: amina sees he read her poll.
    assert!(b.mark_read("general", &poll).await.unwrap().is_some());
    wait_until("amina holds bilal's read receipt", async || {
        a.read_marks("general")
            .unwrap()
            .iter()
            .any(|(m, _)| m == "bilal")
    })
    .await;
    let refused = |r: majlis_core::Result<MessageId>| r.unwrap_err().to_string();
    assert!(refused(b.send("general", "me too").await).contains("only amina posts there"));
    assert!(refused(b.reply(&news, "ok", false).await).contains("only amina posts there"));
    assert!(refused(b.pin(&news, true).await).contains("only amina posts there"));
    let forged = [
        Plain::Text("win a prize: reply with your password".into()),
        Plain::Pin { of: news, on: true },
        Plain::Reply {
            to: news,
            text: "a reply nobody may post".into(),
            also_channel: true,
        },
        Plain::Edit {
            of: news,
            text: "The office is open on Friday".into(),
        },
    ];
    let mut forged_ids = Vec::new();
    for plain in forged {
        forged_ids.push(b.answer_unchecked("general", plain).await.unwrap());
    }
    // A later honest answer: once it is counted everywhere, so are the forged ones before it.
    c.react(&news, "🎉", true).await.unwrap();
    let counted = |n: &Node| {
        let m = shown(n, &news)?;
        let mut reactions: Vec<(String, Vec<String>)> = m
            .reactions
            .iter()
            .map(|r| (r.emoji.clone(), r.members.clone()))
            .collect();
        reactions.sort();
        let p = shown(n, &poll)?.poll?;
        let voters: Vec<Vec<String>> = p.options.iter().map(|o| o.voters.clone()).collect();
        Some((reactions, voters))
    };
    let expected = Some((
        vec![
            ("🎉".to_string(), vec!["chen".to_string()]),
            ("👍".to_string(), vec!["bilal".to_string()]),
        ],
        vec![vec!["bilal".to_string()], vec!["chen".to_string()]],
    ));
    wait_until(
        "every node counts both reactions and both votes",
        async || [&a, &b, &c].iter().all(|n| counted(n) == expected),
    )
    .await;
    for (who, n) in [("amina", &a), ("bilal", &b), ("chen", &c)] {
        let rows: Vec<String> = n
            .history("general", 50)
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(
            rows,
            ["The office is closed on Friday", "Team lunch on Thursday?"],
            "the conversation at {who}"
        );
        let m = shown(n, &news).unwrap();
        assert!(!m.edited && m.replies == 0, "{m:?} at {who}");
        assert!(n.pinned("general").unwrap().is_empty(), "a pin at {who}");
        // Nothing of the answers is unread: amina wrote both messages, the others read two.
        let unread = n.unread("general", 0, 100).unwrap();
        assert_eq!(
            unread,
            if who == "amina" { 0 } else { 2 },
            "unread at {who}"
        );
        for id in &forged_ids {
            assert_eq!(
                n.store().message(id).unwrap(),
                None,
                "a forged answer shown at {who}"
            );
            assert!(
                n.store().has_message(id).unwrap(),
                "a forged answer not taken at {who}"
            );
        }
    }
}

/// amina lets only herself post in #general and, later, its readers reply in its threads.
/// Before, bilal may not reply (the rule a modified client meets is
/// `message::tests::a_readers_reply_is_taken_only_where_readers_reply`). Then he replies, edits his reply, and every node shows it in the
/// thread, chen's (off meanwhile) too once it catches up, though amina has turned replies
/// off by then: he had the right when he wrote (a past right). What his modified client
/// tags as a reader's reply but is no reply in a thread (a post, a reply also sent to the
/// channel, a pin) is shown nowhere, and a reply it signs after replies were turned off is
/// refused by every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_reply_in_threads_where_an_admin_lets_them_and_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let only_amina = RosterChange::ChannelPosters {
        name: "general".into(),
        posters: Some(vec!["amina".into()]),
    };
    let (a, b, c) = start_three(org(dir.path(), &[only_amina])).await;
    let news = a
        .send("general", "The car park is closed on Friday")
        .await
        .unwrap();
    wait_until("bilal and chen hold the news", async || {
        shown(&b, &news).is_some() && shown(&c, &news).is_some()
    })
    .await;
    let refused = |r: majlis_core::Result<MessageId>| r.unwrap_err().to_string();
    assert!(refused(b.reply(&news, "Where do we park?", false).await)
        .contains("only amina posts there"));
    let reply = |text: &str| Plain::Reply {
        to: news,
        text: text.into(),
        also_channel: false,
    };
    let replies = |on| RosterChange::ChannelReplies {
        name: "general".into(),
        on,
    };
    a.change_roster(replies(true)).await.unwrap();
    wait_until("bilal's node lets him reply", async || {
        b.roster_now()
            .is_some_and(|r| r.roster.readers_reply("general"))
    })
    .await;
    c.shutdown().await.unwrap();
    drop(c);
    let asked = b.reply(&news, "Where do we park?", false).await.unwrap();
    b.edit(&asked, "Where do we park instead?").await.unwrap();
    // Still no post, and no reply also sent to the channel: he reads it.
    assert!(refused(b.send("general", "me too").await).contains("only amina posts there"));
    assert!(refused(b.reply(&news, "also here", true).await).contains("only amina posts there"));
    let forged = [
        Plain::Text("win a prize: reply with your password".into()),
        Plain::Reply {
            to: news,
            text: "a reply nobody may post in the channel".into(),
            also_channel: true,
        },
        Plain::Pin { of: news, on: true },
    ];
    let mut forged_ids = Vec::new();
    for plain in forged {
        forged_ids.push(b.thread_reply_unchecked("general", plain).await.unwrap());
    }
    let thread = |n: &Node| -> Vec<(String, String, bool)> {
        n.thread(&news)
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.sender, m.text, m.edited))
            .collect()
    };
    let expected = vec![
        (
            "amina".to_string(),
            "The car park is closed on Friday".to_string(),
            false,
        ),
        (
            "bilal".to_string(),
            "Where do we park instead?".to_string(),
            true,
        ),
    ];
    wait_until("amina shows bilal's edited reply", async || {
        thread(&a) == expected
    })
    .await;
    // The roster's time is after the reply's, to the millisecond.
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.change_roster(replies(false)).await.unwrap();
    wait_until("bilal's node no longer lets him reply", async || {
        b.roster_now()
            .is_some_and(|r| !r.roster.readers_reply("general"))
    })
    .await;
    assert!(refused(b.reply(&news, "one more", false).await).contains("only amina posts there"));
    let late = b
        .thread_reply_unchecked("general", reply("after it was turned off"))
        .await
        .unwrap();
    let addr = a.listen_addrs().await.unwrap()[0].clone();
    let c = common::start_dialing(Profile::open(&dir.path().join("chen")).unwrap(), &addr).await;
    wait_until("chen's node takes bilal's reply by catch-up", async || {
        thread(&c) == expected
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // (bilal's own node shows the late reply his modified client signed.)
    for (who, n) in [("amina", &a), ("bilal", &b), ("chen", &c)] {
        if who != "bilal" {
            assert_eq!(thread(n), expected, "the thread at {who}");
            assert_eq!(shown(n, &news).unwrap().replies, 1, "replies at {who}");
            // Nothing of the readers' replies is a new message of the channel.
            let unread = n.unread("general", 0, 100).unwrap();
            assert_eq!(unread, usize::from(who == "chen"), "unread at {who}");
        }
        assert!(n.pinned("general").unwrap().is_empty(), "a pin at {who}");
        let rows: Vec<String> = n
            .history("general", 50)
            .unwrap()
            .into_iter()
            .filter(|m| m.act.is_none())
            .map(|m| m.text)
            .collect();
        assert_eq!(rows, ["The car park is closed on Friday"], "posts at {who}");
        for id in &forged_ids {
            assert_eq!(n.store().message(id).unwrap(), None, "{id} shown at {who}");
        }
    }
    for (who, n) in [("amina", &a), ("chen", &c)] {
        assert!(!n.store().has_message(&late).unwrap(), "taken at {who}");
    }
    for n in [&a, &b, &c] {
        n.shutdown().await.unwrap();
    }
}

/// The threads amina takes part in, the latest reply first: one she started that bilal
/// answered, and one of chen's she replied in; not her message nobody answered, not a thread
/// of bilal's and chen's, not one whose only reply was deleted. A new reply moves its
/// thread to the top, and back when it is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_threads_are_those_they_started_replied_or_were_mentioned_in_latest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = start_three(org(dir.path(), &[])).await;
    let hers = a.send("general", "the budget is due friday").await.unwrap();
    a.send("general", "nobody answers this").await.unwrap();
    let gone = a.send("general", "a question taken back").await.unwrap();
    let chens = c.send("general", "who has the van keys?").await.unwrap();
    let theirs = b.send("general", "lunch?").await.unwrap();
    wait_until("everyone holds the five", async || {
        [&a, &b, &c]
            .iter()
            .all(|n| n.history("general", 50).unwrap().len() == 5)
    })
    .await;
    b.reply(&hers, "on it", false).await.unwrap();
    a.reply(&chens, "in the drawer", false).await.unwrap();
    c.reply(&theirs, "yes", false).await.unwrap();
    let taken_back = b.reply(&gone, "which one?", false).await.unwrap();
    wait_until("bilal holds his reply", async || {
        b.thread(&gone).unwrap().len() == 2
    })
    .await;
    b.delete(&taken_back).await.unwrap();
    c.reply(&chens, "found them", false).await.unwrap();
    let listed = async |n: &Node| -> Vec<(MessageId, String)> {
        n.threads(10)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.root.id, t.last.text))
            .collect()
    };
    let want = vec![
        (chens, "found them".to_string()),
        (hers, "on it".to_string()),
    ];
    wait_until("amina's two threads, chen's first", async || {
        listed(&a).await == want
    })
    .await;
    let done = b.reply(&hers, "done", false).await.unwrap();
    let want = vec![
        (hers, "done".to_string()),
        (chens, "found them".to_string()),
    ];
    wait_until("hers on top once bilal answers again", async || {
        listed(&a).await == want
    })
    .await;
    // His latest reply deleted: the one before it is the thread's latest again.
    b.delete(&done).await.unwrap();
    let want = vec![
        (chens, "found them".to_string()),
        (hers, "on it".to_string()),
    ];
    wait_until("chen's on top again", async || listed(&a).await == want).await;
    // bilal's: his own that chen answered ("yes" came after his "on it"), then amina's he
    // replied in (not the one whose only reply he deleted).
    let his =
        async || -> Vec<MessageId> { listed(&b).await.into_iter().map(|(id, _)| id).collect() };
    wait_until("bilal's two threads", async || {
        his().await == vec![theirs, hers]
    })
    .await;
    // Mentioned in a reply to a thread she never wrote in, and in a first message that has
    // a reply: both hers to follow now; a mention in one with no reply is no thread.
    c.reply(&theirs, "@amina are you coming?", false)
        .await
        .unwrap();
    let asked = c.send("general", "@amina the van is back").await.unwrap();
    c.send("general", "@amina no thread here").await.unwrap();
    wait_until("bilal holds chen's message", async || {
        b.history("general", 50)
            .unwrap()
            .iter()
            .any(|m| m.id == asked)
    })
    .await;
    b.reply(&asked, "thanks", false).await.unwrap();
    let want = vec![
        (asked, "thanks".to_string()),
        (theirs, "@amina are you coming?".to_string()),
        (chens, "found them".to_string()),
        (hers, "on it".to_string()),
    ];
    wait_until("the two she is mentioned in, on top", async || {
        listed(&a).await == want
    })
    .await;
}
