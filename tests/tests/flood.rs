//! A member device that floods a real `majlisd` process: garbage gossip, oversized gossip
//! frames, thousands of sync requests (half of them asking to skip as much as the field
//! holds) and requests over the codec limits. The node must stay responsive, lose and add
//! nothing, and keep its memory bounded; the test prints the node process's peak RSS (VmHWM)
//! against the bytes thrown at it. Loopback only, no root needed.

// The attacker is the one the in-process adversarial suite uses.
#[path = "../../core/tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::Rogue;
use libp2p::gossipsub;
use majlis_core::net::{RosterRequest, SyncRequest};
use majlis_core::{DeviceKey, Profile};
use majlis_tests::{free_port, Daemon};

fn rss_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_leaves_memory_bounded_and_the_node_responsive() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let (victim, org) = amina.found("amina", "acme");
    let org: majlis_core::OrgId = org.parse().unwrap();
    let member = DeviceKey::generate();
    let id = member.id().to_string();
    amina.ok(&["roster", "add", "--name", "mallory", "--device", &id]);
    // History for the sync requests to read (written offline, before the node starts).
    {
        let p = Profile::open(&amina.dir).unwrap();
        let chain = p.chain().unwrap();
        for i in 0..1000 {
            p.compose(&chain, "general", &format!("history {i}"))
                .unwrap();
        }
        p.store().flush().unwrap();
    }
    let port = free_port();
    let addr: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    amina.start_local(&["--no-mdns", "--listen", &addr.to_string()]);
    let pid = amina.pid().unwrap();
    let mut m = Rogue::new(member.clone(), &org);
    assert!(m.connect(&addr, victim).await);
    pipelined_requests_over_the_wire(&mut m, victim).await;
    let base = rss_mb(pid, "VmRSS:");
    let t = Instant::now();
    let mut flooded = 0usize;

    // 1. Garbage gossip: over the envelope limit, under the frame limit.
    let mut sent = 0;
    let mut i = 0u32;
    while sent < 4000 {
        i += 1;
        let mut junk = vec![0x5a_u8; 36 * 1024];
        junk[..4].copy_from_slice(&i.to_be_bytes());
        if m.try_publish(junk).await {
            sent += 1;
            flooded += 36 * 1024;
        }
    }
    m.pump(500).await;
    eprintln!(
        "after gossip: rss {:.0} hwm {:.0}",
        rss_mb(pid, "VmRSS:"),
        rss_mb(pid, "VmHWM:")
    );

    // 2. Thousands of catch-up requests, each answered with up to 512 messages; every
    // other one asks to skip as much as the field holds (the responder caps it).
    for burst in 0..20 {
        for k in 0..100 {
            let greedy = k % 2 == 1;
            m.swarm.behaviour_mut().sync.send_request(
                &victim,
                SyncRequest {
                    channel: "general".into(),
                    have: vec![],
                    held: vec![],
                    max_bytes: greedy.then_some(u32::MAX),
                    skip: greedy.then_some(u32::MAX),
                },
            );
            flooded += 64;
        }
        m.pump(if burst % 5 == 4 { 300 } else { 50 }).await;
    }

    eprintln!(
        "after sync: rss {:.0} hwm {:.0}",
        rss_mb(pid, "VmRSS:"),
        rss_mb(pid, "VmHWM:")
    );
    // 3. Requests over the codec limits (1 MiB): a huge version vector, a huge roster push.
    for i in 0..30u64 {
        let have = (0..60_000u64)
            .map(|k| (majlis_core::DeviceId([(k % 251) as u8; 32]), k + i))
            .collect();
        m.swarm.behaviour_mut().sync.send_request(
            &victim,
            SyncRequest {
                channel: "general".into(),
                have,
                held: vec![],
                max_bytes: None,
                skip: None,
            },
        );
        m.swarm.behaviour_mut().roster.send_request(
            &victim,
            RosterRequest::Push {
                versions: vec![serde_bytes::ByteBuf::from(vec![7u8; 3 << 20])],
            },
        );
        flooded += 60_000 * 41 + (3 << 20);
        m.pump(50).await;
    }
    m.pump(500).await;
    eprintln!(
        "after oversized: rss {:.0} hwm {:.0}",
        rss_mb(pid, "VmRSS:"),
        rss_mb(pid, "VmHWM:")
    );

    // 4. Gossip frames of 1 MiB, 27 times the node's limit, from a peer configured to send them.
    let cfg = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .max_transmit_size(2 << 20)
        .build()
        .unwrap();
    drop(m);
    // The node's decoder refuses such a frame and drops the stream: reconnect and repeat.
    let mut oversized_sent = 0;
    for _ in 0..20 {
        let mut big = Rogue::new(member.clone(), &org);
        big.swarm.behaviour_mut().gossipsub =
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, cfg.clone())
                .unwrap();
        big.swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&big.topic)
            .unwrap();
        if !big.connect(&addr, victim).await {
            continue;
        }
        for i in 0..10u32 {
            let mut frame = vec![0xa5_u8; 1 << 20];
            frame[..4].copy_from_slice(&(i + oversized_sent as u32 * 16).to_be_bytes());
            if !big.publish(frame) {
                break;
            }
            oversized_sent += 1;
            big.pump(20).await;
        }
        big.pump(100).await;
    }
    flooded += oversized_sent << 20;

    // The node still answers and still works.
    let probe = Instant::now();
    amina.ok(&["send", "general", "still here"]);
    let st = amina.stats();
    let responsive = probe.elapsed();
    let peak = rss_mb(pid, "VmHWM:");
    println!(
        "flood: {:.0} MB thrown in {:.1} s (4000 junk gossip frames, 2000 sync requests, \
         60 over-limit requests, {oversized_sent} oversized gossip frames); \
         RSS before {base:.0} MB, peak {peak:.0} MB; node answered in {} ms; \
         accepted {}, rejected {:?}",
        flooded as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        responsive.as_millis(),
        st["accepted"],
        st["rejected"]
    );
    assert_eq!(
        amina.history("general").len(),
        1001,
        "the flood must not add or lose messages"
    );
    assert!(responsive < Duration::from_secs(2));
    assert!(
        peak < base + 100.0,
        "peak RSS {peak:.0} MB grew by more than 100 MB over {base:.0} MB"
    );
    assert!(flooded > 300_000_000, "the flood was smaller than planned");
}

/// A pipelined pair as a slow-link requester sends it, then a `skip` as large as the field
/// holds, asked of the real process: the second of the pair starts exactly where the first
/// ends, and the greedy one is cut as an answer is (512 messages at most, 8 MiB).
async fn pipelined_requests_over_the_wire(m: &mut Rogue, victim: libp2p::PeerId) {
    use libp2p::request_response::{Event, Message};
    use libp2p::swarm::SwarmEvent;
    let ask = |max_bytes: u32, skip: Option<u32>| SyncRequest {
        channel: "general".into(),
        have: vec![],
        held: vec![],
        max_bytes: Some(max_bytes),
        skip,
    };
    let sync = &mut m.swarm.behaviour_mut().sync;
    let ids = [
        sync.send_request(&victim, ask(4096, None)),
        sync.send_request(&victim, ask(4096, Some(4096))),
        sync.send_request(&victim, ask(u32::MAX, Some(u32::MAX))),
    ];
    let mut answers: [Option<Vec<u64>>; 3] = Default::default();
    let done = m
        .run_until(10, |ev| {
            if let SwarmEvent::Behaviour(majlis_core::net::BehaviourEvent::Sync(Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            })) = ev
            {
                if let Some(i) = ids.iter().position(|id| id == request_id) {
                    let seqs = response.messages.iter().map(|w| {
                        majlis_core::Envelope::decode(w)
                            .expect("a real message")
                            .unsigned
                            .seq
                    });
                    answers[i] = Some(seqs.collect());
                }
            }
            answers.iter().all(Option::is_some)
        })
        .await;
    assert!(done, "the node answered {answers:?}");
    let [first, second, greedy] = answers.map(Option::unwrap);
    assert!(!first.is_empty() && !second.is_empty());
    assert_eq!(
        second[0],
        first.last().unwrap() + 1,
        "the pipelined answer starts where its sibling's ends"
    );
    // A skip is cut like an answer: at most 512 messages, whatever its bytes.
    assert_eq!(first[0], 1);
    assert_eq!(
        greedy.first(),
        Some(&513),
        "a skip passes at most 512 messages"
    );
    assert!(greedy.len() <= 512);
}
