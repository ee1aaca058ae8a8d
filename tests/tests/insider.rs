//! The insider against real `majlisd` processes (loopback, no root needed): a device that IS
//! on the roster (as a guest) runs a modified client — the test's own swarm speaking the real
//! protocol — subscribes by name to a private channel's topic and to both members' DM inboxes,
//! and asks for them over catch-up sync, while the members talk. It must receive no plaintext
//! and be disconnected.

#[path = "../../core/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::Rogue;
use majlis_core::net::DM_LIST;
use majlis_core::{DeviceId, DeviceKey};
use majlis_tests::{free_port, wait_until, Daemon};

const SECRET: &str = "INSIDER-PHRASE the acquisition target";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_with_a_modified_client_reads_no_private_channel_or_dm_of_real_nodes() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    let victim: DeviceId = amina.ok(&["init", "--name", "amina"]).parse().unwrap();
    let victim = victim.peer_id();
    let org = amina.ok(&["org", "create", "--name", "acme"]);
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
    let talk = std::thread::spawn(move || {
        for i in 0..5 {
            for (dir, to, text) in [
                (&ad, "hr", format!("{SECRET} ({i})")),
                (&bd, "@amina", format!("{SECRET} [dm {i}]")),
            ] {
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_majlisd-e2e"))
                    .arg("--data")
                    .arg(dir)
                    .args(["send", to, &text])
                    .output()
                    .unwrap();
                assert!(out.status.success());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let (got, cut) = rogue.collect_until_cut(&victim, 15).await;
    talk.join().unwrap();
    let plaintext = got
        .iter()
        .filter(|m| m.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()))
        .count();
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
