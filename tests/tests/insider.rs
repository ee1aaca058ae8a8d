//! The insider against real `majlisd` processes (loopback, no root needed): a device that IS
//! on the roster (as a guest) runs a modified client — the test's own swarm speaking the real
//! protocol — subscribes by name to a private channel's topic and to both members' DM inboxes,
//! and asks for them over catch-up sync, while the members talk. It must receive no plaintext
//! and be disconnected. The same kind of client also lies in catch-up (claims to hold what it
//! does not) to make a real node ask it back without end.

#[path = "../../core/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::Rogue;
use majlis_core::net::DM_LIST;
use majlis_core::{DeviceId, DeviceKey};
use majlis_tests::{free_port, wait_until, Daemon};

const SECRET: &str = "INSIDER-PHRASE the acquisition target";

/// Members talking through the real CLI while the insider listens: each (data directory,
/// to, text) sent in turn, 100 ms apart, on a thread of its own.
fn talk(sends: Vec<(std::path::PathBuf, &'static str, String)>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for (dir, to, text) in sends {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_majlisd-e2e"))
                .arg("--data")
                .arg(&dir)
                .args(["send", to, &text])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

/// Each of `others` (daemon, member name) takes an identity, joins `org` and is added by
/// `admin` under that name (a name already there: another device of that member).
fn join_all(admin: &Daemon, org: &str, others: &[(&Daemon, &str)]) {
    for (d, name) in others {
        let id = d.ok(&["init", "--name", name]);
        d.ok(&["org", "join", org]);
        admin.ok(&["roster", "add", "--name", name, "--device", &id]);
    }
}

/// Start `first` listening on loopback and `others` dialling it; wait until it has them
/// all. Returns its address (the insider dials it too).
fn start_all(first: &mut Daemon, others: &mut [&mut Daemon]) -> libp2p::Multiaddr {
    let port = free_port();
    let addr: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    first.start_local(&["--no-mdns", "--listen", &addr.to_string()]);
    for d in others.iter_mut() {
        d.start_local(&["--no-mdns", "--peer", &addr.to_string()]);
    }
    tokio::task::block_in_place(|| {
        wait_until("all connected", 30, || first.peers().len() == others.len())
    });
    addr
}

/// How many of the frames the insider received hold `phrase` in the clear.
fn with_phrase(got: &[Vec<u8>], phrase: &str) -> usize {
    got.iter()
        .filter(|m| m.windows(phrase.len()).any(|w| w == phrase.as_bytes()))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_with_a_modified_client_reads_no_private_channel_or_dm_of_real_nodes() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    let (victim, org) = amina.found("amina", "acme");
    let id = bilal.ok(&["init", "--name", "bilal"]);
    bilal.ok(&["org", "join", &org]);
    amina.ok(&["roster", "add", "--name", "bilal", "--device", &id]);
    let insider = DeviceKey::generate();
    amina.ok(&[
        "roster",
        "add",
        "--name",
        "gus",
        "--device",
        &insider.id().to_string(),
        "--role",
        "guest",
    ]);
    amina.ok(&["channel", "create", "hr", "--members", "amina,bilal"]);
    amina.ok(&["channel", "create", "lobby", "--members", "amina,bilal,gus"]);
    let port = free_port();
    let addr: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    amina.start_local(&["--no-mdns", "--listen", &addr.to_string()]);
    bilal.start_local(&["--no-mdns", "--peer", &addr.to_string()]);
    tokio::task::block_in_place(|| wait_until("bilal connected", 30, || amina.peers().len() == 1));
    // History sync could hand over.
    amina.ok(&["send", "hr", &format!("{SECRET} (history)")]);
    bilal.ok(&["send", "@amina", &format!("{SECRET} [dm history]")]);

    let org: majlis_core::OrgId = org.parse().unwrap();
    let mut rogue = Rogue::new(insider.clone(), &org);
    assert!(
        rogue.connect(&addr, victim).await,
        "the insider could not connect"
    );
    rogue.pry(
        &org,
        &victim,
        &["hr", "@amina", "@bilal"],
        &["hr", "@amina,bilal", DM_LIST],
    );
    // Live traffic from the real CLI while the insider listens.
    let (ad, bd) = (amina.dir.clone(), bilal.dir.clone());
    let talk = talk(
        (0..5)
            .flat_map(|i| {
                [
                    (ad.clone(), "hr", format!("{SECRET} ({i})")),
                    (bd.clone(), "@amina", format!("{SECRET} [dm {i}]")),
                ]
            })
            .collect(),
    );
    let (got, cut) = rogue.collect_until_cut(&victim, 15).await;
    talk.join().unwrap();
    let plaintext = with_phrase(&got, SECRET);
    let stats = amina.stats();
    println!(
        "insider vs real majlisd: received {} frames, {plaintext} with plaintext, disconnected: {cut}, node rejected {}",
        got.len(),
        stats["rejected"]
    );
    assert_eq!(plaintext, 0, "the insider read private plaintext");
    assert!(cut, "the insider kept its connection");
    assert!(stats["rejected"]["subscription"].as_u64().unwrap_or(0) >= 1);
    tokio::task::block_in_place(|| {
        wait_until("bilal reads hr", 30, || {
            bilal
                .history("hr")
                .iter()
                .filter(|m| m["locked"] == false)
                .count()
                == 6
        })
    });
    assert!(amina.stop() && bilal.stop());
}

/// A group conversation between real `majlisd` processes: what amina writes to `@bilal,chen`
/// reaches bilal and chen, readable, and their answers reach her; dina, a member of the same
/// org running a modified client, gets none of it: her posts into the group (on its members'
/// inboxes and on her own) are not shown, and subscribing to their inboxes and asking for the
/// conversation over catch-up brings her no plaintext and the cut. When chen leaves, the
/// conversation stays readable for amina and bilal, and nothing more is sent in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_conversation_reaches_its_members_and_no_insider() {
    const GROUP: &str = "GROUP-PHRASE the bonus figures";
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    let mut chen = Daemon::new(&bin, tmp.path(), "chen");
    let (victim, org) = amina.found("amina", "acme");
    join_all(&amina, &org, &[(&bilal, "bilal"), (&chen, "chen")]);
    let insider = DeviceKey::generate();
    let dina = insider.id().to_string();
    amina.ok(&["roster", "add", "--name", "dina", "--device", &dina]);
    let addr = start_all(&mut amina, &mut [&mut bilal, &mut chen]);

    // As each of them names it: amina `@bilal,chen`, bilal `@Amina, @chen`.
    let first = amina.ok(&["send", "@bilal,chen", &format!("{GROUP} (1)")]);
    let texts = |d: &Daemon, to: &str| -> Vec<String> {
        d.history(to)
            .iter()
            .filter(|m| m["locked"] == false)
            .map(|m| m["text"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    tokio::task::block_in_place(|| {
        wait_until("bilal and chen read it", 30, || {
            texts(&bilal, "@amina,chen") == [format!("{GROUP} (1)")]
                && texts(&chen, "@amina,bilal") == [format!("{GROUP} (1)")]
        })
    });
    assert_eq!(
        bilal.history("@amina,chen")[0]["id"].as_str(),
        Some(first.as_str())
    );
    bilal.ok(&["send", "@Amina, @chen", &format!("{GROUP} (2)")]);
    tokio::task::block_in_place(|| {
        wait_until("amina reads bilal's answer", 30, || {
            texts(&amina, "@bilal,chen").len() == 2
        })
    });

    // dina's modified client: posts into the group, on amina's inbox and on her own.
    let org: majlis_core::OrgId = org.parse().unwrap();
    let mut rogue = Rogue::new(insider.clone(), &org);
    assert!(
        rogue.connect(&addr, victim).await,
        "the insider could not connect"
    );
    rogue.pump(500).await;
    let group = "@amina,bilal,chen";
    assert!(rogue.post_on(&org, "@amina", group, 1, "FORGED into the group"));
    let _ = rogue.post_on(&org, "@dina", group, 2, "FORGED on her own inbox");
    rogue.pump(1000).await;
    // Then she listens on their inboxes and asks for the conversation.
    rogue.pry(
        &org,
        &victim,
        &["@amina", "@bilal", "@chen"],
        &[group, DM_LIST],
    );
    let ad = amina.dir.clone();
    let talk = talk(
        (3..6)
            .map(|i| (ad.clone(), "@bilal,chen", format!("{GROUP} ({i})")))
            .collect(),
    );
    let (got, cut) = rogue.collect_until_cut(&victim, 15).await;
    talk.join().unwrap();
    let plaintext = with_phrase(&got, GROUP);
    // Not even the ciphertext: who talks to whom in the group is not hers to learn.
    let of_group = got
        .iter()
        .filter_map(|m| majlis_core::message::Envelope::decode_unverified(m).ok())
        .filter(|e| e.unsigned.channel == group)
        .count();
    println!(
        "insider vs a group conversation: received {} frames, {of_group} of the group, {plaintext} with plaintext, disconnected: {cut}, node rejected {}",
        got.len(),
        amina.stats()["rejected"]
    );
    assert_eq!(plaintext, 0, "the insider read the group's plaintext");
    assert_eq!(of_group, 0, "the insider received the group's messages");
    assert!(cut, "the insider kept its connection");
    let want: Vec<String> = (1..6).map(|i| format!("{GROUP} ({i})")).collect();
    tokio::task::block_in_place(|| {
        wait_until("all three read all five, in order", 30, || {
            texts(&amina, "@bilal,chen") == want
                && texts(&bilal, "@amina,chen") == want
                && texts(&chen, "@amina,bilal") == want
        })
    });
    for d in [&amina, &bilal, &chen] {
        assert_eq!(
            d.history(group).len(),
            5,
            "{}: the five, no forged one",
            d.name
        );
    }

    // chen leaves: the others keep reading, nobody writes there any more.
    amina.ok(&["roster", "remove", "--name", "chen"]);
    let v = amina.stats()["roster_version"].as_u64().unwrap();
    tokio::task::block_in_place(|| {
        wait_until("bilal holds the removal", 30, || {
            bilal.stats()["roster_version"].as_u64() == Some(v)
        })
    });
    let refused = bilal.fails(&["send", "@amina,chen", "after chen left"]);
    assert!(
        refused.contains("chen has left the organization"),
        "{refused}"
    );
    assert_eq!(texts(&bilal, "@amina,chen"), want);
    assert!(amina.stop() && bilal.stop());
    chen.stop();
}

/// A member's notes between real `majlisd` processes: what amina writes to `@amina` on her
/// laptop is on her desktop, and on a phone she adds later (caught up, never seen live), even
/// with the org's DMs off; bilal, writing to `@amina`, writes to her DM (refused under that
/// policy) and never sees her notes; dina, a member running a modified client, subscribes to
/// amina's inbox, posts into her notes and asks for them over catch-up: nothing shown, not
/// one frame of them received, disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_notes_reach_their_devices_and_no_insider() {
    const NOTE: &str = "NOTES-PHRASE the lease renewal";
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut laptop = Daemon::new(&bin, tmp.path(), "amina-laptop");
    let mut desk = Daemon::new(&bin, tmp.path(), "amina-desk");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    let victim: DeviceId = laptop.ok(&["init", "--name", "amina"]).parse().unwrap();
    let victim = victim.peer_id();
    let org = laptop.ok(&["org", "create", "--name", "acme"]);
    join_all(&laptop, &org, &[(&desk, "amina"), (&bilal, "bilal")]);
    let insider = DeviceKey::generate();
    laptop.ok(&[
        "roster",
        "add",
        "--name",
        "dina",
        "--device",
        &insider.id().to_string(),
    ]);
    laptop.ok(&["roster", "policy", "--dms", "off"]);
    let addr = start_all(&mut laptop, &mut [&mut desk, &mut bilal]);
    let texts = |d: &Daemon, to: &str| -> Vec<String> {
        d.history(to)
            .iter()
            .filter(|m| m["locked"] == false)
            .map(|m| m["text"].as_str().unwrap_or_default().to_string())
            .collect()
    };

    laptop.ok(&["send", "@amina", &format!("{NOTE} (1)")]);
    tokio::task::block_in_place(|| {
        wait_until("her desktop has the note", 30, || {
            texts(&desk, "@Amina") == [format!("{NOTE} (1)")]
        })
    });
    desk.ok(&["send", "@amina", &format!("{NOTE} (2)")]);
    let refused = bilal.fails(&["send", "@amina", "a DM under dms off"]);
    assert!(
        refused.contains("not allowed by the org policy"),
        "{refused}"
    );
    let refused = bilal.fails(&["history", "@amina"]);
    assert!(
        refused.contains("not allowed by the org policy"),
        "{refused}"
    );

    // dina's modified client: posts into amina's notes, then listens and asks for them.
    let org: majlis_core::OrgId = org.parse().unwrap();
    let mut rogue = Rogue::new(insider.clone(), &org);
    assert!(
        rogue.connect(&addr, victim).await,
        "the insider could not connect"
    );
    rogue.pump(500).await;
    assert!(rogue.post_on(&org, "@amina", "@amina", 1, "FORGED into her notes"));
    rogue.pump(1000).await;
    rogue.pry(&org, &victim, &["@amina"], &["@amina", DM_LIST]);
    let ld = laptop.dir.clone();
    let talk = talk(
        (3..6)
            .map(|i| (ld.clone(), "@amina", format!("{NOTE} ({i})")))
            .collect(),
    );
    let (got, cut) = rogue.collect_until_cut(&victim, 15).await;
    talk.join().unwrap();
    let of_notes = got
        .iter()
        .filter_map(|m| majlis_core::message::Envelope::decode_unverified(m).ok())
        .filter(|e| e.unsigned.channel == "@amina")
        .count();
    println!(
        "insider vs a member's notes: received {} frames, {of_notes} of the notes, {} with plaintext, disconnected: {cut}, node rejected {}",
        got.len(),
        with_phrase(&got, NOTE),
        laptop.stats()["rejected"]
    );
    assert_eq!(with_phrase(&got, NOTE), 0, "the insider read amina's notes");
    assert_eq!(of_notes, 0, "the insider received amina's notes");
    assert!(cut, "the insider kept its connection");
    let want: Vec<String> = (1..6).map(|i| format!("{NOTE} ({i})")).collect();
    tokio::task::block_in_place(|| {
        wait_until("both her devices have all five, in order", 30, || {
            texts(&laptop, "@amina") == want && texts(&desk, "@amina") == want
        })
    });
    assert_eq!(laptop.history("@amina").len(), 5, "the five, no forged one");

    // A phone she adds later gets them back by catch-up.
    let mut phone = Daemon::new(&bin, tmp.path(), "amina-phone");
    join_all(&laptop, &org.to_string(), &[(&phone, "amina")]);
    phone.start_local(&["--no-mdns", "--peer", &addr.to_string()]);
    tokio::task::block_in_place(|| {
        wait_until("her new phone has her notes", 60, || {
            texts(&phone, "@amina") == want
        })
    });
    assert!(laptop.stop() && desk.stop() && bilal.stop() && phone.stop());
}

/// A member whose modified client lies in catch-up, asking again and again for #general
/// while claiming to hold messages the real node has never seen, gets asked back at most
/// once every 5 s, however fast it asks and answers. An honest requester that holds more is
/// asked back at once (so a message only its author holds is fetched, see
/// `core/tests/sim.rs`); without the bound every lie would cost the node a request of its
/// own, a loop the liar drives at will.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_lying_in_catch_up_is_asked_back_at_most_once_a_while() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let (victim, org) = amina.found("amina", "acme");
    let liar = DeviceKey::generate();
    let id = liar.id().to_string();
    amina.ok(&["roster", "add", "--name", "mallory", "--device", &id]);
    amina.ok(&["send", "general", "before the liar came"]);
    let port = free_port();
    let addr: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    amina.start_local(&["--no-mdns", "--listen", &addr.to_string()]);

    let org: majlis_core::OrgId = org.parse().unwrap();
    let mut rogue = Rogue::new(liar.clone(), &org);
    assert!(
        rogue.connect(&addr, victim).await,
        "mallory could not connect"
    );
    // Honest first: asking with nothing to claim, mallory is asked only by the node's own
    // catch-up with a new peer.
    let (honest, _) = rogue.lie_in_catch_up(&victim, "general", &[], 100, 3).await;
    // Then 70 requests in 7 s, each claiming 1 000 messages of her own in #general.
    let (asked, cut) = rogue
        .lie_in_catch_up(&victim, "general", &[(liar.id(), 1_000)], 100, 7)
        .await;
    println!("mallory asking honestly for 3 s: asked {honest} times; lying 70 times in 7 s: asked {asked} times, cut: {cut}");
    assert!(!cut, "a request is no offence: {}", amina.log_tail(20));
    // One ask-back at once and one 5 s later, and the node's own rounds (every 5 s while
    // active: two); one more of either is slack for a slow machine. Without the bound: 70.
    // With no ask-back at all only a round asks, so at least two show it happened.
    assert!(asked >= 2, "a requester that holds more was not asked back");
    assert!(asked <= 6, "mallory's lies drove {asked} requests in 7 s");
    let general = amina.history("general");
    assert_eq!(general.len(), 1, "{general:?}");
    assert!(amina.stop());
}
