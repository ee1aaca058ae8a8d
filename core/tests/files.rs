//! Shared files between real in-process nodes over loopback TCP (static peers, no mDNS):
//! delivery and decryption, relays serving when the sender is gone, several sources at once,
//! resuming after a restart, and an insider that asks for what it may not read or serves
//! bytes that do not match.

use std::path::Path;
use std::time::Duration;

use futures::{AsyncRead, AsyncWrite};
use libp2p::swarm::SwarmEvent;
use libp2p::{request_response, Multiaddr, StreamProtocol};
use majlis_core::files::fetch::Part;
use majlis_core::files::BlobId;
use majlis_core::net::{BehaviourEvent, BlobRequest, BlobResponse};
use majlis_core::{Config, DeviceKey, Event, MessageId, Node, Profile, Role, RosterChange};

mod common;
use common::{wait_until, Rogue};

fn config(peers: Vec<Multiaddr>) -> Config {
    Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        peers,
        mdns: false,
        ..Default::default()
    }
}

/// amina (admin) with bilal and carol (members), a relay, a private channel `hr` (amina and
/// bilal), all holding the roster already.
fn org(dir: &Path) -> (Profile, Vec<Profile>) {
    let admin = Profile::init(&dir.join("amina"), "amina").unwrap();
    let org = admin.org_create("acme").unwrap();
    let mut others = Vec::new();
    let mut chain = admin.chain().unwrap();
    for (name, role) in [
        ("bilal", None),
        ("carol", None),
        ("relay", Some(Role::Relay)),
    ] {
        let p = Profile::init(&dir.join(name), name).unwrap();
        p.org_join(org).unwrap();
        admin
            .change_roster(
                &mut chain,
                &RosterChange::AddMember {
                    name: name.into(),
                    device: p.device_id(),
                    role,
                },
            )
            .unwrap();
        others.push(p);
    }
    admin
        .change_roster(
            &mut chain,
            &RosterChange::CreateChannel {
                name: "hr".into(),
                members: Some(vec!["amina".into(), "bilal".into()]),
            },
        )
        .unwrap();
    for p in &others {
        let mut c = p.chain().unwrap();
        p.apply_rosters(&mut c, chain.versions().to_vec()).unwrap();
    }
    (admin, others)
}

/// Add mallory (a member whose key the test holds, to run a modified client) to the roster
/// and give the new roster to `others`.
fn add_mallory(admin: &Profile, others: &[&Profile]) -> DeviceKey {
    let mallory = DeviceKey::generate();
    let mut chain = admin.chain().unwrap();
    admin
        .change_roster(
            &mut chain,
            &RosterChange::AddMember {
                name: "mallory".into(),
                device: mallory.id(),
                role: None,
            },
        )
        .unwrap();
    for p in others {
        let mut c = p.chain().unwrap();
        p.apply_rosters(&mut c, chain.versions().to_vec()).unwrap();
    }
    mallory
}

/// [`org`] with mallory added: amina, bilal, carol and mallory's key (the relay is left out).
fn with_mallory(dir: &Path) -> (Profile, Profile, Profile, DeviceKey) {
    let (admin, mut others) = org(dir);
    let _relay = others.pop().unwrap();
    let carol = others.pop().unwrap();
    let bilal = others.pop().unwrap();
    let mallory = add_mallory(&admin, &[&bilal, &carol]);
    (admin, bilal, carol, mallory)
}

fn random_file(dir: &Path, name: &str, len: usize) -> (std::path::PathBuf, Vec<u8>) {
    let mut data = vec![0u8; len];
    let mut x: u64 = len as u64 ^ 0x9e37_79b9_7f4a_7c15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let p = dir.join(name);
    std::fs::write(&p, &data).unwrap();
    (p, data)
}

async fn blob_of(node: &Node, channel: &str, id: MessageId) -> BlobId {
    let mut blob = None;
    wait_until("the file message", async || {
        blob = node
            .history(channel, 100)
            .unwrap()
            .into_iter()
            .find(|m| m.id == id)
            .and_then(|m| m.file)
            .map(|f| f.blob);
        blob.is_some()
    })
    .await;
    blob.unwrap()
}

/// What `victim` answers the rogue's blob requests, each (channel, blob, part), in order.
async fn answers_to(
    rogue: &mut Rogue,
    victim: libp2p::PeerId,
    requests: &[(&str, BlobId, Part)],
) -> Vec<BlobResponse> {
    let ids: Vec<request_response::OutboundRequestId> = requests
        .iter()
        .map(|(channel, blob, part)| {
            rogue.swarm.behaviour_mut().blob.send_request(
                &victim,
                BlobRequest {
                    channel: channel.to_string(),
                    blob: *blob,
                    part: *part,
                },
            )
        })
        .collect();
    let mut answers = std::collections::HashMap::new();
    rogue
        .run_until(10, |ev| {
            if let SwarmEvent::Behaviour(BehaviourEvent::Blob(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            })) = ev
            {
                answers.insert(*request_id, response.clone());
            }
            answers.len() == ids.len()
        })
        .await;
    assert_eq!(answers.len(), ids.len(), "every request is answered");
    ids.iter().map(|id| answers.remove(id).unwrap()).collect()
}

/// Amina's node, where it listens, and bilal's node connected to it.
async fn pair(admin: Profile, bilal: Profile) -> (Node, Multiaddr, Node) {
    let a = Node::start(admin, config(vec![])).await.unwrap();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let b = Node::start(bilal, config(vec![a_addr.clone()]))
        .await
        .unwrap();
    wait_until("bilal connected", async || {
        a.peers().await.unwrap().len() == 1
    })
    .await;
    (a, a_addr, b)
}

/// amina, bilal and carol running, each connected to the others (no relay).
async fn amina_bilal_carol(dir: &Path) -> (Node, Node, Node) {
    let (admin, mut others) = org(dir);
    let _relay = others.pop().unwrap();
    let carol = others.pop().unwrap();
    let bilal = others.pop().unwrap();
    let (a, a_addr, b) = pair(admin, bilal).await;
    let b_addr = b.listen_addrs().await.unwrap()[0].clone();
    let c = Node::start(carol, config(vec![a_addr, b_addr]))
        .await
        .unwrap();
    wait_until("carol connected", async || {
        c.peers().await.unwrap().len() == 2
    })
    .await;
    (a, b, c)
}

async fn complete(node: &Node, blob: BlobId, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let files = node.files().await.unwrap();
        if files.iter().any(|f| f.blob == blob && f.complete) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "file not complete after {secs} s: {files:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_reaches_readers_verified_and_the_relay_serves_it_when_the_sender_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, mut others) = org(dir.path());
    let relay = others.pop().unwrap();
    let carol = others.pop().unwrap();
    let bilal = others.pop().unwrap();
    let (small, small_data) = random_file(dir.path(), "plan.pdf", 3 * 1024 * 1024 + 17);
    let (big, big_data) = random_file(dir.path(), "site-scan.iso", 24 * 1024 * 1024 + 5);

    let a = Node::start(admin, config(vec![])).await.unwrap();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let r = Node::start(relay, config(vec![a_addr.clone()]))
        .await
        .unwrap();
    let r_addr = r.listen_addrs().await.unwrap()[0].clone();
    let b = Node::start(bilal, config(vec![a_addr.clone()]))
        .await
        .unwrap();
    wait_until("connected", async || a.peers().await.unwrap().len() == 2).await;
    let mut b_ev = b.subscribe();

    // A small file in a private channel: fetched at once by its reader and by the relay.
    let shared_at = majlis_core::now_ms();
    let small_msg = a.share_file("hr", &small, "the Q3 plan").await.unwrap();
    let small_blob = blob_of(&b, "hr", small_msg).await;
    let shown = b
        .history("hr", 10)
        .unwrap()
        .into_iter()
        .find(|m| m.id == small_msg)
        .unwrap();
    assert_eq!(shown.text, "the Q3 plan");
    let f = shown.file.unwrap();
    assert_eq!(
        (f.name.as_str(), f.size),
        ("plan.pdf", small_data.len() as u64)
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, b_ev.recv()).await {
            Ok(Ok(Event::FileReady { blob })) if blob == small_blob => break,
            Ok(_) => {}
            Err(_) => panic!("no FileReady at bilal"),
        }
    }
    let out = dir.path().join("bilal-plan.pdf");
    b.save_file(&small_msg, &out).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), small_data);
    complete(&r, small_blob, 20).await;
    // The relay holds it but cannot open it: it has no key of `hr`.
    assert!(r
        .save_file(&small_msg, &dir.path().join("x"))
        .await
        .is_err());

    // A big file is not fetched by members until asked; the relay stores it anyway.
    let big_msg = a.share_file("general", &big, "").await.unwrap();
    let big_blob = blob_of(&b, "general", big_msg).await;
    complete(&r, big_blob, 60).await;
    let st = b.files().await.unwrap();
    let at_b = st.iter().find(|f| f.blob == big_blob).unwrap();
    assert!(!at_b.complete && !at_b.wanted && at_b.have == 0, "{at_b:?}");
    // What amina's shares brought to each disk counts towards her pace (what the
    // diagnostics tell an admin about a member filling disks): both files at the relay,
    // only the small one at bilal, who has not asked for the big one.
    let brought = |report: majlis_core::diagnose::Report| {
        let d = report.devices.iter().find(|d| d.member == "amina");
        d.map_or(0, |d| d.bytes_last_minute)
    };
    let (at_relay, at_bilal) = (
        brought(r.diagnose().await.unwrap()),
        brought(b.diagnose().await.unwrap()),
    );
    // The pace counts by clock minute and spreads the minute before evenly over it, so if
    // a minute began since the first share, only the part of it still within 60 s counts
    // (CI once failed here when a minute began between the share and this check).
    let now = majlis_core::now_ms();
    let kept = |n: u64| match now / 60_000 - shared_at / 60_000 {
        0 => n,
        1 => n * (60_000 - now % 60_000) / 60_000,
        _ => 0,
    };
    let files = (small_data.len() + big_data.len()) as u64;
    assert!(
        (kept(files)..files + 10_000).contains(&at_relay),
        "{at_relay}"
    );
    let small = small_data.len() as u64;
    assert!(
        (kept(small)..small + 10_000).contains(&at_bilal),
        "{at_bilal}"
    );
    // Files are listed by name with the message that shares them (what `get` takes), at
    // the sender and at a reader; the relay, which cannot open `hr`, knows the message only.
    for (who, n) in [("amina", &a), ("bilal", &b)] {
        let st = n.files().await.unwrap();
        let named = |blob| {
            let f = st.iter().find(|f| f.blob == blob).unwrap();
            (f.name.clone(), f.message)
        };
        assert_eq!(
            named(big_blob),
            (Some("site-scan.iso".into()), Some(big_msg)),
            "{who}"
        );
        assert_eq!(
            named(small_blob),
            (Some("plan.pdf".into()), Some(small_msg)),
            "{who}"
        );
    }
    let at_r = r.files().await.unwrap();
    let small_at_r = at_r.iter().find(|f| f.blob == small_blob).unwrap();
    assert_eq!(
        (small_at_r.name.clone(), small_at_r.message),
        (None, Some(small_msg))
    );
    assert!(b
        .save_file(&big_msg, &dir.path().join("early"))
        .await
        .is_err());

    // The sender goes away; carol (new, never met amina) fetches everything from the relay.
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let c = Node::start(carol, config(vec![r_addr.clone()]))
        .await
        .unwrap();
    let big_blob_c = blob_of(&c, "general", big_msg).await;
    assert_eq!(big_blob_c, big_blob);
    c.fetch_file(big_blob).await.unwrap();
    complete(&c, big_blob, 60).await;
    let out = dir.path().join("carol-scan.iso");
    c.save_file(&big_msg, &out).await.unwrap();
    assert!(
        std::fs::read(&out).unwrap() == big_data,
        "carol's copy differs"
    );
    // carol may not read `hr`: she never got its message, and the relay would not serve it.
    assert!(c.store().history("hr", 10).unwrap().is_empty());
    assert!(c.fetch_file(small_blob).await.is_err());
    assert!(c.stats().await.unwrap().rejected.is_empty());
    for n in [&r, &c] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_uses_every_source_and_resumes_after_a_restart_without_refetching() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, mut others) = org(dir.path());
    let relay = others.pop().unwrap();
    let carol = others.pop().unwrap();
    let carol_dir = carol.dir().to_path_buf();
    let (big, big_data) = random_file(dir.path(), "video.mp4", 48 * 1024 * 1024);

    let a = Node::start(admin, config(vec![])).await.unwrap();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let r = Node::start(relay, config(vec![a_addr.clone()]))
        .await
        .unwrap();
    let r_addr = r.listen_addrs().await.unwrap()[0].clone();
    wait_until("relay connected", async || {
        a.peers().await.unwrap().len() == 1
    })
    .await;
    let msg = a.share_file("general", &big, "site visit").await.unwrap();
    let blob = blob_of(&r, "general", msg).await;
    complete(&r, blob, 60).await;

    let peers = vec![a_addr.clone(), r_addr.clone()];
    let c = Node::start(carol, config(peers.clone())).await.unwrap();
    wait_until("carol connected", async || {
        c.peers().await.unwrap().len() == 2
    })
    .await;
    blob_of(&c, "general", msg).await;
    let st = c.fetch_file(blob).await.unwrap();
    let chunks = st.chunks as u64;
    // Stop carol a third of the way in.
    let mut at_stop = 0;
    wait_until("a third fetched", async || {
        let f = c.files().await.unwrap();
        at_stop = f.iter().find(|f| f.blob == blob).map_or(0, |f| f.have);
        at_stop as u64 >= chunks / 3
    })
    .await;
    c.shutdown().await.unwrap();
    drop(c);
    let served_before =
        a.stats().await.unwrap().chunks_served + r.stats().await.unwrap().chunks_served;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let carol = Profile::open(&carol_dir).unwrap();
    let c = Node::start(carol, config(peers)).await.unwrap();
    let resumed = c
        .files()
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.blob == blob)
        .unwrap();
    assert!(resumed.wanted, "the fetch goes on after a restart");
    assert!(
        resumed.have >= at_stop.saturating_sub(8),
        "progress was kept: {} of {at_stop}",
        resumed.have
    );
    complete(&c, blob, 60).await;
    let (sa, sr) = (
        a.stats().await.unwrap().chunks_served,
        r.stats().await.unwrap().chunks_served,
    );
    assert!(
        sa > 0 && sr > 0,
        "both sources served: amina {sa}, relay {sr}"
    );
    let after = sa + sr - served_before;
    assert!(
        after <= chunks - resumed.have as u64 + 24,
        "after the restart {after} chunks were fetched for {} missing",
        chunks - resumed.have as u64
    );
    let out = dir.path().join("out.mp4");
    c.save_file(&msg, &out).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == big_data);
    // No partial file is left, and the blob on disk is not the plaintext.
    let blobs: Vec<String> = std::fs::read_dir(carol_dir.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!blobs.iter().any(|n| n.ends_with(".part")), "{blobs:?}");
    let stored = std::fs::read(carol_dir.join("blobs").join(blob.to_string())).unwrap();
    assert_ne!(&stored[..4096], &big_data[..4096]);
    for n in [&a, &r, &c] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insider_gets_no_file_of_a_private_channel_and_its_bad_chunks_are_not_taken() {
    let dir = tempfile::tempdir().unwrap();
    // mallory is a member (reads `general`, not `hr`) running a modified client.
    let (admin, bilal, carol, mallory) = with_mallory(dir.path());
    let org_id = admin.org().unwrap().unwrap();
    let (secret, _) = random_file(dir.path(), "salaries.xlsx", 600 * 1024);
    let (open_file, open_data) = random_file(dir.path(), "menu.pdf", 12 * 1024 * 1024);

    let (a, a_addr, b) = pair(admin, bilal).await;
    let secret_msg = a.share_file("hr", &secret, "").await.unwrap();
    let secret_blob = blob_of(&b, "hr", secret_msg).await;

    // The insider learns the blob id (say, from a screenshot) and asks for it under every
    // name it can think of.
    let mut rogue = Rogue::new(mallory.clone(), &org_id);
    let victim = a.device_id().peer_id();
    assert!(rogue.connect(&a_addr, victim).await);
    let mut asked = Vec::new();
    for channel in ["hr", "general", "@amina,bilal"] {
        for part in [
            Part::Hashes,
            Part::Chunks { first: 0, count: 1 },
            Part::Slice {
                chunk: 0,
                offset: 0,
                len: 1024,
            },
        ] {
            asked.push((channel, secret_blob, part));
        }
    }
    let answers = answers_to(&mut rogue, victim, &asked).await;
    assert!(
        answers.iter().all(|a| matches!(a, BlobResponse::Denied)),
        "the insider got something: {answers:?}"
    );
    assert!(a.stats().await.unwrap().rejected["file_denied"] >= 9);

    // Now mallory serves a file of `general` to carol, with bytes that do not match. carol
    // takes nothing from it and completes from amina.
    let open_msg = a.share_file("general", &open_file, "").await.unwrap();
    let c = Node::start(carol, config(vec![a_addr.clone()]))
        .await
        .unwrap();
    let c_addr = c.listen_addrs().await.unwrap()[0].clone();
    let carol_peer = c.device_id().peer_id();
    // Carol has the message from amina first: the rogue's swarm is only driven when the test
    // drives it, so a catch-up request carol sent it would wait for its timeout.
    let open_blob = blob_of(&c, "general", open_msg).await;
    // Slices of a file it may read: what lies outside a chunk, or is empty or over 1 MiB, is
    // refused; a slice within one is exactly what was asked.
    let slice = |chunk, offset, len| ("general", open_blob, Part::Slice { chunk, offset, len });
    let stored = (256 * 1024 + 16) as u32;
    let answers = answers_to(
        &mut rogue,
        victim,
        &[
            slice(0, stored - 10, 11),
            slice(0, u32::MAX, 2),
            slice(0, 0, 0),
            slice(48, 0, 16),
            slice(0, 0, (1 << 20) + 1),
            slice(3, stored - 100, 100),
        ],
    )
    .await;
    assert!(
        answers[..5]
            .iter()
            .all(|a| matches!(a, BlobResponse::Denied)),
        "{answers:?}"
    );
    assert!(
        matches!(&answers[5], BlobResponse::Chunks(c) if c.len() == 1 && c[0].len() == 100),
        "{:?}",
        answers[5]
    );
    rogue.swarm.dial(c_addr).unwrap();
    rogue
        .run_until(10, |ev| {
            matches!(ev, SwarmEvent::ConnectionEstablished { peer_id, .. } if *peer_id == carol_peer)
        })
        .await;
    // Over the auto-fetch size: fetched when carol asks, with both sources connected.
    wait_until("mallory connected to carol", async || {
        c.peers().await.unwrap().iter().any(|p| p.name == "mallory")
    })
    .await;
    c.fetch_file(open_blob).await.unwrap();
    let (mut lies, mut lied_bytes) = (0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done = c
            .files()
            .await
            .unwrap()
            .iter()
            .any(|f| f.blob == open_blob && f.complete);
        if done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "carol did not complete"
        );
        let _ = tokio::time::timeout(Duration::from_millis(50), async {
            if let SwarmEvent::Behaviour(BehaviourEvent::Blob(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            })) = futures::StreamExt::select_next_some(&mut rogue.swarm).await
            {
                let resp = match request.part {
                    Part::Hashes => BlobResponse::Hashes(vec![7u8; 32 * 20].into()),
                    Part::Chunks { count, .. } => BlobResponse::Chunks(
                        (0..count)
                            .map(|_| vec![0xAB; 256 * 1024 + 16].into())
                            .collect(),
                    ),
                    Part::Slice { len, .. } => {
                        BlobResponse::Chunks(vec![vec![0xAB; len as usize].into()])
                    }
                };
                lies += 1;
                lied_bytes += match &resp {
                    BlobResponse::Chunks(c) => c.iter().map(|c| c.len() as u64).sum(),
                    _ => 0,
                };
                let _ = rogue
                    .swarm
                    .behaviour_mut()
                    .blob
                    .send_response(channel, resp);
            }
        })
        .await;
    }
    let out = dir.path().join("menu-copy.pdf");
    c.save_file(&open_msg, &out).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == open_data);
    assert!(lies >= 1, "the rogue was never asked");
    assert!(
        c.stats()
            .await
            .unwrap()
            .rejected
            .get("bad_chunk")
            .copied()
            .unwrap_or(0)
            >= 1,
        "the lie was not noticed"
    );
    // What it was asked before it was caught: one window of requests, in whole chunks or
    // (while its link is being measured) in slices of one chunk.
    assert!(
        lied_bytes <= (1 + majlis_core::files::fetch::WINDOW as u64) * (1 << 20),
        "a peer caught lying was asked again ({lies} answers, {lied_bytes} bytes)"
    );
    for n in [&a, &b, &c] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_was_away_fetches_many_files_within_its_request_window() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, mut others) = org(dir.path());
    let relay = others.pop().unwrap();
    let a = Node::start(admin, config(vec![])).await.unwrap();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let mut shared = Vec::new();
    for i in 0..30 {
        let (p, data) = random_file(dir.path(), &format!("scan-{i}.png"), 300 * 1024 + i);
        let id = a.share_file("general", &p, "").await.unwrap();
        shared.push((id, data));
    }
    let r = Node::start(relay, config(vec![a_addr])).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let files = r.files().await.unwrap();
        let done = files.iter().filter(|f| f.complete).count();
        if done == shared.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay has {done} of {} files",
            shared.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let st = r.stats().await.unwrap();
    // 30 files of 2 chunks each, and no chunk twice.
    assert_eq!(st.chunks_received, 60, "{st:?}");
    for n in [&a, &r] {
        n.shutdown().await.unwrap();
    }
}

/// A member's modified client floods amina with chunk requests for a file of `general`
/// (48 single-chunk requests sent at once on one connection, read as fast as they come).
/// Every request is answered with a chunk, and bilal's messages to amina arrive while the
/// flood is served: chunk reads run beside the event loop, a few at a time per peer, so the
/// flooder waits behind its own requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_chunk_requests_is_served_without_holding_up_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, mut others) = org(dir.path());
    let _relay = others.pop().unwrap();
    let _carol = others.pop().unwrap();
    let bilal = others.pop().unwrap();
    let mallory = add_mallory(&admin, &[&bilal]);
    let org_id = admin.org().unwrap().unwrap();
    let (file, _) = random_file(dir.path(), "site-plan.pdf", 12 * 1024 * 1024);

    let (a, a_addr, b) = pair(admin, bilal).await;
    let msg = a.share_file("general", &file, "").await.unwrap();
    let blob = blob_of(&b, "general", msg).await;

    let mut rogue = Rogue::new(mallory, &org_id);
    let victim = a.device_id().peer_id();
    assert!(rogue.connect(&a_addr, victim).await);
    // The hash list says how many chunks make 1 MiB.
    rogue.swarm.behaviour_mut().blob.send_request(
        &victim,
        BlobRequest {
            channel: "general".into(),
            blob,
            part: Part::Hashes,
        },
    );
    let mut hashes = Vec::new();
    rogue
        .run_until(10, |ev| {
            if let SwarmEvent::Behaviour(BehaviourEvent::Blob(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        response: BlobResponse::Hashes(h),
                        ..
                    },
                ..
            })) = ev
            {
                hashes = h.chunks_exact(32).map(|c| c.to_vec()).collect();
            }
            !hashes.is_empty()
        })
        .await;
    assert!(!hashes.is_empty(), "amina sent no hash list");
    let chunks = hashes.len() as u32;
    // Far more than the window of reads per peer; kept small because unoptimized builds
    // move file bytes slowly (`--release`: 240 requests of 1 MiB in 1.1 s).
    const FLOOD: usize = 48;
    for i in 0..FLOOD {
        rogue.swarm.behaviour_mut().blob.send_request(
            &victim,
            BlobRequest {
                channel: "general".into(),
                blob,
                part: Part::Chunks {
                    first: i as u32 % chunks,
                    count: 1,
                },
            },
        );
    }
    // bilal writes while the flood is served.
    let sender = tokio::spawn(async move {
        for i in 0..20 {
            b.send("general", &format!("during the flood {i}"))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        b
    });
    let (mut answered, mut bad, mut bytes, mut failed) = (0, 0, 0usize, 0);
    let t0 = std::time::Instant::now();
    rogue
        .run_until(120, |ev| {
            if let SwarmEvent::Behaviour(BehaviourEvent::Blob(request_response::Event::Message {
                message: request_response::Message::Response { response, .. },
                ..
            })) = ev
            {
                answered += 1;
                match response {
                    BlobResponse::Chunks(cs) => {
                        bytes += cs.iter().map(|c| c.len()).sum::<usize>();
                        bad += usize::from(cs.iter().any(|c| c.is_empty()));
                    }
                    _ => bad += 1,
                }
            } else if let SwarmEvent::Behaviour(BehaviourEvent::Blob(
                request_response::Event::OutboundFailure { .. },
            )) = ev
            {
                failed += 1;
            }
            answered + failed == FLOOD
        })
        .await;
    let flood_secs = t0.elapsed().as_secs_f64();
    let b = sender.await.unwrap();
    let during = || {
        a.history("general", 100)
            .unwrap()
            .iter()
            .filter(|m| m.text.starts_with("during the flood"))
            .count()
    };
    let held = during();
    println!(
        "chunk flood: {answered} of {FLOOD} requests answered ({failed} failed) in {flood_secs:.1} s \
         ({} MiB, {bad} bad); amina held {held} of bilal's 20 messages when he finished sending",
        bytes >> 20
    );
    assert_eq!(answered, FLOOD, "every request is answered");
    assert_eq!(bad, 0, "every chunk asked for came");
    wait_until("bilal's messages at amina", async || during() == 20).await;
    for n in [a, b] {
        n.shutdown().await.unwrap();
    }
}

/// A blob client that asks and never reads an answer (a modified client): the answer's
/// bytes stay on the serving node's side of the stream until the request times out.
#[derive(Clone, Default)]
struct NeverReads(request_response::cbor::codec::Codec<BlobRequest, BlobResponse>);

#[async_trait::async_trait]
impl request_response::Codec for NeverReads {
    type Protocol = StreamProtocol;
    type Request = BlobRequest;
    type Response = BlobResponse;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<BlobRequest> {
        self.0.read_request(p, io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> std::io::Result<BlobResponse> {
        futures::future::pending().await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
        req: BlobRequest,
    ) -> std::io::Result<()> {
        self.0.write_request(p, io, req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
        res: BlobResponse,
    ) -> std::io::Result<()> {
        self.0.write_response(p, io, res).await
    }
}

/// An insider asks for the same megabyte 200 times over and never reads the answers. Each
/// answer would sit in amina's memory until its request timed out (200 MiB from one
/// connection, a gigabyte from four). Amina reads no more for it while 8 MiB of its answers
/// are untaken; bilal's download of the same file meanwhile is not held up, and when
/// mallory goes, what was held for it is let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answers_pins_little_memory() {
    const FLOOD: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let (admin, bilal, _carol, mallory) = with_mallory(dir.path());
    let (file, data) = random_file(dir.path(), "site.iso", 16 * 1024 * 1024);
    let a = Node::start(admin, config(vec![])).await.unwrap();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let msg = a.share_file("general", &file, "").await.unwrap();
    let blob = blob_of(&a, "general", msg).await;

    let mut rogue = common::client_swarm(&mallory, |_| {
        request_response::Behaviour::with_codec(
            NeverReads::default(),
            [(
                StreamProtocol::new(majlis_core::net::BLOB_PROTOCOL),
                request_response::ProtocolSupport::Outbound,
            )],
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(600))
                .with_max_concurrent_streams(FLOOD + 10),
        )
    });
    let victim = a.device_id().peer_id();
    rogue.dial(a_addr.clone()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(
            futures::StreamExt::select_next_some(&mut rogue).await,
            SwarmEvent::ConnectionEstablished { .. }
        ) {}
    })
    .await
    .expect("mallory connects");
    for _ in 0..FLOOD {
        rogue.behaviour_mut().send_request(
            &victim,
            BlobRequest {
                channel: "general".into(),
                blob,
                part: Part::Chunks { first: 0, count: 4 },
            },
        );
    }
    let rogue = tokio::spawn(async move {
        loop {
            futures::StreamExt::select_next_some(&mut rogue).await;
        }
    });
    // Amina reads what fits the budget and then waits for mallory to take it.
    wait_until("mallory's requests are being served", async || {
        a.stats().await.unwrap().chunks_served > 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = a.stats().await.unwrap();
    println!(
        "never-read flood: {FLOOD} requests of 1 MiB; amina read {} MiB for mallory and holds {} MiB of it",
        s.chunks_served / 4,
        s.file_bytes_untaken >> 20
    );
    let budget = 8 << 20;
    assert!(
        s.file_bytes_untaken <= budget + (1 << 20),
        "{} bytes held for a client that reads nothing",
        s.file_bytes_untaken
    );
    assert!(
        s.chunks_served / 4 <= (budget >> 20) + 4,
        "amina read {} MiB for a client that took none",
        s.chunks_served / 4
    );

    // bilal downloads the same file meanwhile.
    let b = Node::start(bilal, config(vec![a_addr])).await.unwrap();
    blob_of(&b, "general", msg).await;
    let t = std::time::Instant::now();
    b.fetch_file(blob).await.unwrap();
    complete(&b, blob, 30).await;
    println!(
        "bilal's 16 MiB during the flood: {} ms",
        t.elapsed().as_millis()
    );
    let out = dir.path().join("site-copy.iso");
    b.save_file(&msg, &out).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == data);

    rogue.abort();
    wait_until("what was held for mallory is let go", async || {
        a.stats().await.unwrap().file_bytes_untaken == 0
    })
    .await;
    for n in [a, b] {
        n.shutdown().await.unwrap();
    }
}

/// Amina has shared a 12 MiB file, carol (connected to amina) holds its message, and
/// mallory's hand-driven peer is ready: the set-up of the tests with a misbehaving source.
struct Shared {
    a: Node,
    a_addr: Multiaddr,
    c: Node,
    msg: MessageId,
    blob: BlobId,
    data: Vec<u8>,
    rogue: Rogue,
}

async fn shared_with_carol(dir: &Path) -> Shared {
    let (admin, _bilal, carol, mallory) = with_mallory(dir);
    let org_id = admin.org().unwrap().unwrap();
    let (file, data) = random_file(dir, "plans.pdf", 12 * 1024 * 1024);
    let a = Node::start(admin, config(vec![])).await.unwrap();
    let a_addr = a.listen_addrs().await.unwrap()[0].clone();
    let msg = a.share_file("general", &file, "").await.unwrap();
    let c = Node::start(carol, config(vec![a_addr.clone()]))
        .await
        .unwrap();
    let blob = blob_of(&c, "general", msg).await;
    let rogue = Rogue::new(mallory, &org_id);
    Shared {
        a,
        a_addr,
        c,
        msg,
        blob,
        data,
        rogue,
    }
}

/// An insider that takes chunk requests and never answers (it keeps the streams open) does
/// not hold up a download: once nothing else is left to ask, what it was asked is asked of
/// another source after `fetch::HEDGE_MS`, not after the 30 s request timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_never_answers_does_not_hold_up_a_download() {
    let dir = tempfile::tempdir().unwrap();
    let Shared {
        a,
        c,
        msg,
        blob,
        data,
        mut rogue,
        ..
    } = shared_with_carol(dir.path()).await;
    let c_addr = c.listen_addrs().await.unwrap()[0].clone();
    assert!(rogue.connect(&c_addr, c.device_id().peer_id()).await);
    let (asked_tx, mut asked_rx) = tokio::sync::mpsc::unbounded_channel();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let ev = futures::StreamExt::select_next_some(&mut rogue.swarm).await;
            if let SwarmEvent::Behaviour(BehaviourEvent::Blob(request_response::Event::Message {
                message: request_response::Message::Request { channel, .. },
                ..
            })) = ev
            {
                let _ = asked_tx.send(());
                held.push(channel);
            }
        }
    });
    wait_until("mallory connected to carol", async || {
        c.peers().await.unwrap().iter().any(|p| p.name == "mallory")
    })
    .await;
    let t = std::time::Instant::now();
    c.fetch_file(blob).await.unwrap();
    complete(&c, blob, 25).await;
    let took = t.elapsed();
    let mut asked = 0;
    while asked_rx.try_recv().is_ok() {
        asked += 1;
    }
    println!(
        "silent source: 12 MiB complete in {} ms; mallory took {asked} requests and answered none",
        took.as_millis()
    );
    assert!(
        asked >= 1,
        "mallory was never asked: the test shows nothing"
    );
    assert!(
        took < Duration::from_secs(15),
        "the download waited for the silent source: {took:?}"
    );
    let out = dir.path().join("plans-copy.pdf");
    c.save_file(&msg, &out).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == data);
    silent.abort();
    for n in [&a, &c] {
        n.shutdown().await.unwrap();
    }
}

/// A node from before slices (`Part::Slice`, for slow links) cannot read a slice request
/// and cuts the stream. A download must still use it as a source, asking it for whole
/// chunks, and must not ask it for slices again and again: without that, a new node asked
/// an old one thousands of slices a second and never got a byte from it (measured
/// against the real release binary of a4dd0b7). Mallory plays the old node: it cuts the
/// stream of every slice request, as the old decoder does, and serves chunks and the hash
/// list by asking amina for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_from_before_slices_is_asked_for_whole_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let Shared {
        a,
        a_addr,
        c,
        msg,
        blob,
        data,
        rogue: mut old,
    } = shared_with_carol(dir.path()).await;
    let amina = a.device_id().peer_id();
    assert!(old.connect(&a_addr, amina).await);
    let c_addr = c.listen_addrs().await.unwrap()[0].clone();
    assert!(old.connect(&c_addr, c.device_id().peer_id()).await);
    let (asked_tx, mut asked_rx) = tokio::sync::mpsc::unbounded_channel();
    let proxy = tokio::spawn(async move {
        use request_response::Message;
        let mut forwarded = std::collections::HashMap::new();
        loop {
            let ev = futures::StreamExt::select_next_some(&mut old.swarm).await;
            let SwarmEvent::Behaviour(BehaviourEvent::Blob(request_response::Event::Message {
                message,
                ..
            })) = ev
            else {
                continue;
            };
            match message {
                Message::Request {
                    request, channel, ..
                } => {
                    let _ = asked_tx.send(request.part);
                    if matches!(request.part, Part::Slice { .. }) {
                        drop(channel); // the stream is cut, as by a decoder without slices
                        continue;
                    }
                    let id = old.swarm.behaviour_mut().blob.send_request(&amina, request);
                    forwarded.insert(id, channel);
                }
                Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(channel) = forwarded.remove(&request_id) {
                        let _ = old
                            .swarm
                            .behaviour_mut()
                            .blob
                            .send_response(channel, response);
                    }
                }
            }
        }
    });
    wait_until("mallory connected to carol", async || {
        c.peers().await.unwrap().iter().any(|p| p.name == "mallory")
    })
    .await;
    let t = std::time::Instant::now();
    c.fetch_file(blob).await.unwrap();
    complete(&c, blob, 30).await;
    let took = t.elapsed();
    let (mut slices, mut chunks) = (0, 0);
    while let Ok(part) = asked_rx.try_recv() {
        match part {
            Part::Slice { .. } => slices += 1,
            Part::Chunks { count, .. } => chunks += count,
            Part::Hashes => {}
        }
    }
    println!(
        "old source: 12 MiB complete in {} ms; mallory was asked {slices} slices and {chunks} whole chunks",
        took.as_millis()
    );
    assert!(
        slices <= 4,
        "{slices} slice requests to a node that cuts every one"
    );
    assert!(chunks >= 1, "the old node was never asked for whole chunks");
    let out = dir.path().join("plans-copy.pdf");
    c.save_file(&msg, &out).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == data);
    proxy.abort();
    for n in [&a, &c] {
        n.shutdown().await.unwrap();
    }
}

/// A member's modified client names its file "invoice\u{202E}fdp.exe", which a reader's
/// screen would show as "invoiceexe.pdf" and save under that name. The name a reader sees
/// (and the app and `majlisd get` save under) is the file's own, direction controls taken
/// out; `Node::share_file` would have taken them out at the sender, so this client skips it.
#[test]
fn a_file_name_that_turns_the_text_around_shows_as_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, _) = org(dir.path());
    let (src, _) = random_file(dir.path(), "payload", 1000);
    let prepared = majlis_core::files::prepare(&src, dir.path()).unwrap();
    let info = majlis_core::files::FileInfo {
        name: "invoice\u{202E}fdp.exe".into(),
        mime: "application/pdf".into(),
        size: prepared.blob.size,
        caption: "the March invoice".into(),
        key: prepared.key,
    };
    let chain = admin.chain().unwrap();
    admin
        .compose_file(
            &chain,
            "general",
            prepared.blob,
            majlis_core::e2e::Plain::File(info),
        )
        .unwrap();
    let shown = admin.store().history("general", 10).unwrap();
    let file = shown.last().and_then(|m| m.file.clone()).expect("a file");
    assert_eq!(file.name, "invoicefdp.exe");
}

/// bilal forwards a file of `hr` (amina and bilal) to `general`, where carol reads but `hr`
/// is closed to her. Before he has downloaded it he is told to; after, carol gets the same
/// bytes under a new key (she holds none of `hr`'s), shown as forwarded from amina in #hr,
/// which her device cannot check; amina's can, and it matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_forwarded_reaches_readers_who_may_not_read_where_it_was_shared() {
    let dir = tempfile::tempdir().unwrap();
    // Above the size members fetch at once (8 MiB), so bilal has it only once he asks.
    let (src, data) = random_file(dir.path(), "salary-bands.pdf", 9 * 1024 * 1024 + 3);
    let (a, b, c) = amina_bilal_carol(dir.path()).await;

    let original = a.share_file("hr", &src, "bands for 2027").await.unwrap();
    let blob = blob_of(&b, "hr", original).await;
    let early = b.forward(&original, "general").await;
    assert!(
        matches!(&early, Err(majlis_core::Error::NotReady(why)) if why.contains("download it first")),
        "{early:?}"
    );
    b.fetch_file(blob).await.unwrap();
    complete(&b, blob, 30).await;
    let fwd = b.forward(&original, "general").await.unwrap();

    let new_blob = blob_of(&c, "general", fwd).await;
    assert_ne!(new_blob, blob, "encrypted again under a key of general");
    let shown = c.store().message(&fwd).unwrap().unwrap();
    assert_eq!(shown.text, "bands for 2027");
    assert_eq!(shown.file.as_ref().unwrap().name, "salary-bands.pdf");
    let from = shown.forwarded.unwrap();
    assert_eq!(
        (from.author.as_str(), from.channel.as_str()),
        ("amina", "hr")
    );
    assert_eq!(from.check, majlis_core::conversation::ForwardCheck::Unseen);
    c.fetch_file(new_blob).await.unwrap();
    complete(&c, new_blob, 30).await;
    let out = dir.path().join("carol-bands.pdf");
    c.save_file(&fwd, &out).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == data);
    // carol still cannot open the original: she holds no key of `hr`.
    assert!(c.save_file(&original, &dir.path().join("x")).await.is_err());

    wait_until("amina has the forward", async || {
        a.store().message(&fwd).unwrap().is_some()
    })
    .await;
    let at_amina = a.store().message(&fwd).unwrap().unwrap().forwarded.unwrap();
    assert_eq!(
        at_amina.check,
        majlis_core::conversation::ForwardCheck::Matches
    );
    for n in [&a, &b, &c] {
        n.shutdown().await.unwrap();
    }
}

/// A modified client forwards a file and says it is another than the original (another
/// name, or caption): a reader holding the original sees that it differs.
#[test]
fn a_forwarded_file_that_is_not_its_original_is_marked() {
    use majlis_core::conversation::{ForwardCheck, Forwarded};
    use majlis_core::e2e::Plain;
    let dir = tempfile::tempdir().unwrap();
    let (admin, _) = org(dir.path());
    let chain = admin.chain().unwrap();
    let (src, _) = random_file(dir.path(), "plan.pdf", 1000);
    let info = |p: &majlis_core::files::Prepared, name: &str, caption: &str| {
        majlis_core::files::FileInfo {
            name: name.into(),
            mime: "application/pdf".into(),
            size: p.blob.size,
            caption: caption.into(),
            key: p.key,
        }
    };
    let first = majlis_core::files::prepare(&src, dir.path()).unwrap();
    let original = admin
        .compose_file(
            &chain,
            "hr",
            first.blob,
            Plain::File(info(&first, "plan.pdf", "Q3")),
        )
        .unwrap()
        .pop()
        .unwrap();
    let from = Forwarded {
        id: original.id,
        author: "amina".into(),
        channel: "hr".into(),
        sent_at: original.unsigned.sent_at,
    };
    let mut checks = Vec::new();
    for (name, caption) in [("plan.pdf", "Q3"), ("plan.exe", "Q3"), ("plan.pdf", "Q4")] {
        let p = majlis_core::files::prepare(&src, dir.path()).unwrap();
        let described = Plain::ForwardFile {
            file: info(&p, name, caption),
            from: from.clone(),
        };
        let m = admin
            .compose_file(&chain, "general", p.blob, described)
            .unwrap()
            .pop()
            .unwrap();
        let shown = admin.store().message(&m.id).unwrap().unwrap();
        checks.push(shown.forwarded.unwrap().check);
    }
    assert_eq!(
        checks,
        [
            ForwardCheck::Matches,
            ForwardCheck::Differs,
            ForwardCheck::Differs
        ]
    );
}

/// The org's allowed types hold for every way of opening a file, not only for sharing: a
/// PDF bilal downloaded before the admin allowed pictures only is no longer saved,
/// previewed or forwarded on his device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_a_type_the_org_no_longer_allows_is_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, mut others) = org(dir.path());
    others.truncate(1);
    let bilal = others.pop().unwrap();
    let (src, data) = random_file(dir.path(), "minutes.pdf", 40_000);
    let (a, _, b) = pair(admin, bilal).await;
    let id = a.share_file("general", &src, "").await.unwrap();
    let blob = blob_of(&b, "general", id).await;
    complete(&b, blob, 30).await;
    assert_eq!(b.file_bytes(&id, 1 << 20).await.unwrap(), data);

    a.change_roster(RosterChange::SetFilePolicy {
        files: majlis_core::roster::FilePolicy {
            types: vec!["image/*".into()],
            ..Default::default()
        },
    })
    .await
    .unwrap();
    wait_until("bilal has the policy", async || {
        b.roster()
            .await
            .unwrap()
            .is_some_and(|r| !r.files.types.is_empty())
    })
    .await;
    let refused = |r: &majlis_core::Result<_>| {
        matches!(r, Err(majlis_core::Error::Denied(why))
            if why.contains("does not allow application/pdf"))
    };
    let saved = b.save_file(&id, &dir.path().join("out.pdf")).await;
    assert!(refused(&saved), "save: {saved:?}");
    assert!(!dir.path().join("out.pdf").exists());
    let shown = b.file_bytes(&id, 1 << 20).await.map(|_| ());
    assert!(refused(&shown), "preview: {shown:?}");
    let forwarded = b.forward(&id, "general").await.map(|_| ());
    assert!(refused(&forwarded), "forward: {forwarded:?}");
    for n in [&a, &b] {
        n.shutdown().await.unwrap();
    }
}

/// Over the wire: bilal's modified client shares files claiming to forward amina's file of
/// #hr: one of the same name, type, size and caption, and one renamed `.exe`. amina's node,
/// which holds the original, shows the first as matching and the second as not; carol, who
/// may not read #hr, sees where both say they came from and that she cannot check them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_file_forward_from_a_modified_client_is_marked_where_the_original_is_held() {
    use majlis_core::conversation::{ForwardCheck, Forwarded};
    let dir = tempfile::tempdir().unwrap();
    let (src, data) = random_file(dir.path(), "plan.pdf", 50_000);
    let exe = dir.path().join("plan.exe");
    std::fs::write(&exe, &data).unwrap();
    let (a, b, c) = amina_bilal_carol(dir.path()).await;
    let original = a.share_file("hr", &src, "Q3").await.unwrap();
    blob_of(&b, "hr", original).await;
    let from = Forwarded {
        id: original,
        author: "amina".into(),
        channel: "hr".into(),
        sent_at: b.store().message(&original).unwrap().unwrap().sent_at,
    };
    let same = b
        .forward_file_unchecked("general", &src, "Q3", from.clone())
        .await
        .unwrap();
    let renamed = b
        .forward_file_unchecked("general", &exe, "Q3", from)
        .await
        .unwrap();
    let check = |n: &Node, id: &MessageId| {
        let m = n.store().message(id).ok()??;
        Some((m.file?.name, m.forwarded?.check))
    };
    wait_until("amina and carol hold both", async || {
        [&a, &c]
            .iter()
            .all(|n| check(n, &same).is_some() && check(n, &renamed).is_some())
    })
    .await;
    let name = |s: &str| s.to_string();
    assert_eq!(
        check(&a, &same),
        Some((name("plan.pdf"), ForwardCheck::Matches))
    );
    assert_eq!(
        check(&a, &renamed),
        Some((name("plan.exe"), ForwardCheck::Differs))
    );
    assert_eq!(
        check(&c, &same),
        Some((name("plan.pdf"), ForwardCheck::Unseen))
    );
    assert_eq!(
        check(&c, &renamed),
        Some((name("plan.exe"), ForwardCheck::Unseen))
    );
    for n in [&a, &b, &c] {
        n.shutdown().await.unwrap();
    }
}
