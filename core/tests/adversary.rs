//! Adversarial tests: a misbehaving peer speaking the real protocol (our own libp2p
//! behaviour, driven by hand) against a real node. Each test prints its counts.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, Multiaddr, PeerId, Swarm};
use majlis_core::message::{Envelope, Unsigned, MESSAGE_FORMAT};
use majlis_core::net::{Behaviour, BehaviourEvent, RosterRequest};
use majlis_core::roster::{RosterSigner, VerifiedRoster};
use majlis_core::{Config, DeviceKey, Node, OrgId, Profile, RosterChange};

fn config() -> Config {
    Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        peers: vec![],
        mdns: false,
    }
}

/// A hand-driven peer with a given device key.
struct Rogue {
    swarm: Swarm<Behaviour>,
    key: DeviceKey,
    topic: gossipsub::IdentTopic,
}

impl Rogue {
    fn new(key: DeviceKey, org: &OrgId) -> Rogue {
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key.libp2p_keypair())
            .with_tokio()
            .with_tcp(
                Default::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(Behaviour::new)
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm
            .behaviour_mut()
            .gate
            .set_allowed(HashSet::new(), true, &HashSet::new());
        let topic = gossipsub::IdentTopic::new(format!("majlis/1/{}/general", org.discovery_tag()));
        swarm.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
        Rogue { swarm, key, topic }
    }

    /// Dial and drive the swarm until `done` says so or `secs` pass; returns whether done.
    async fn run_until(
        &mut self,
        secs: u64,
        mut done: impl FnMut(&SwarmEvent<BehaviourEvent>) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
                Ok(ev) => {
                    if done(&ev) {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Drive the swarm for a while (to flush what we queued).
    async fn pump(&mut self, ms: u64) {
        let _ = tokio::time::timeout(Duration::from_millis(ms), async {
            loop {
                self.swarm.select_next_some().await;
            }
        })
        .await;
    }

    async fn connect(&mut self, addr: &Multiaddr, victim: PeerId) -> bool {
        self.swarm.dial(addr.clone()).unwrap();
        self.run_until(10, |ev| {
            matches!(ev, SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, .. })) if *peer_id == victim)
        })
        .await
    }

    fn envelope(&self, seq: u64, body: &str) -> Envelope {
        Envelope::sign(
            &self.key,
            Unsigned {
                format: MESSAGE_FORMAT,
                author: self.key.id(),
                channel: "general".into(),
                sent_at: majlis_core::now_ms(),
                seq,
                prev: None,
                body: body.into(),
            },
        )
    }

    fn publish(&mut self, data: Vec<u8>) -> bool {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), data)
            .is_ok()
    }

    /// Publish; when the send queue is full, drive the swarm and report failure (gossipsub
    /// has then already marked this frame as seen, so the caller sends a fresh one).
    async fn try_publish(&mut self, data: Vec<u8>) -> bool {
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), data)
        {
            Ok(_) => true,
            Err(_) => {
                self.pump(20).await;
                false
            }
        }
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    victim: Node,
    addr: Multiaddr,
    org: OrgId,
    member: DeviceKey,
}

/// A running admin node ("victim") whose roster lists `member` (returned) as "mallory".
async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let admin = Profile::init(&dir.path().join("amina"), "amina").unwrap();
    let org = admin.org_create("acme").unwrap();
    let member = DeviceKey::generate();
    let mut chain = admin.chain().unwrap();
    admin
        .change_roster(
            &mut chain,
            &RosterChange::AddMember {
                name: "mallory".into(),
                device: member.id(),
                role: None,
            },
        )
        .unwrap();
    let victim = Node::start(admin, config()).await.unwrap();
    let addr = victim.listen_addrs().await.unwrap()[0].clone();
    Setup {
        _dir: dir,
        victim,
        addr,
        org,
        member,
    }
}

async fn settle(node: &Node) -> majlis_core::node::Stats {
    tokio::time::sleep(Duration::from_millis(300)).await;
    node.stats().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_not_on_the_roster_is_refused() {
    let s = setup().await;
    let mut stranger = Rogue::new(DeviceKey::generate(), &s.org);
    let victim = s.victim.device_id().peer_id();
    assert!(
        !stranger.connect(&s.addr, victim).await,
        "a stranger completed a gossip handshake"
    );
    let st = s.victim.stats().await.unwrap();
    println!("stranger: connections refused = {}", st.denied_connections);
    assert!(st.denied_connections >= 1);
    assert!(s.victim.peers().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_forged_envelopes_are_all_rejected() {
    let s = setup().await;
    let mut m = Rogue::new(s.member.clone(), &s.org);
    assert!(m.connect(&s.addr, s.victim.device_id().peer_id()).await);
    let valid = m.envelope(1, "a perfectly normal message");
    let other = DeviceKey::generate();
    let mut published = 0;
    let mut i = 0usize;
    while published < 10_000 && i < 40_000 {
        i += 1;
        let data = match i % 4 {
            // one byte changed somewhere
            0 | 1 => {
                // every (position, flip) pair at most once
                let mut w = valid.wire.clone();
                let k = i / 4 * 2 + i % 4;
                let pos = k % w.len();
                w[pos] ^= 1 + ((k / w.len()) % 255) as u8;
                w
            }
            // signed by a key that is not on the roster
            2 => {
                let mut u = valid.unsigned.clone();
                u.author = other.id();
                u.body = format!("stranger {i}");
                Envelope::sign(&other, u).wire
            }
            // author field says mallory, signature by someone else
            _ => {
                let mut u = valid.unsigned.clone();
                u.body = format!("forged {i}");
                Envelope::sign(&other, u).wire
            }
        };
        published += usize::from(m.try_publish(data).await);
    }
    m.pump(2000).await;
    let st = settle(&s.victim).await;
    let rejected: u64 = st.rejected.values().sum();
    println!(
        "forged envelopes: published {published}, victim rejected {rejected} ({:?}), accepted {}",
        st.rejected, st.accepted
    );
    assert_eq!(st.accepted, 0);
    assert!(s.victim.history("general", 10).unwrap().is_empty());
    assert!(published >= 9_000, "the rogue could not publish its frames");
    assert!(
        rejected as usize >= published * 9 / 10,
        "most forged frames never reached validation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_message_is_stored_and_shown_once() {
    let s = setup().await;
    let mut m = Rogue::new(s.member.clone(), &s.org);
    assert!(m.connect(&s.addr, s.victim.device_id().peer_id()).await);
    let env = m.envelope(1, "say it once");
    assert!(m.publish(env.wire.clone()));
    m.pump(500).await;
    assert_eq!(s.victim.history("general", 10).unwrap().len(), 1);
    // The same frame again: gossip's own cache drops it; a modified message id is not
    // possible without breaking the signature, so the store is the last line.
    let _ = m.publish(env.wire.clone());
    m.pump(300).await;
    // Restart the victim (fresh gossip caches), replay.
    let dir = s._dir.path().join("amina");
    s.victim.shutdown().await.unwrap();
    drop(s.victim);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let victim = Node::start(Profile::open(&dir).unwrap(), config())
        .await
        .unwrap();
    let addr = victim.listen_addrs().await.unwrap()[0].clone();
    let mut m = Rogue::new(s.member.clone(), &s.org);
    assert!(m.connect(&addr, victim.device_id().peer_id()).await);
    let replayed = m.publish(env.wire.clone());
    m.pump(500).await;
    let st = settle(&victim).await;
    println!(
        "replay after restart: published {replayed}, duplicates seen {}, stored {}",
        st.duplicates,
        victim.history("general", 10).unwrap().len()
    );
    assert_eq!(victim.history("general", 10).unwrap().len(), 1);
    assert_eq!(st.accepted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_racing_its_removal_gets_nothing_in_after_it() {
    let s = setup().await;
    let mut m = Rogue::new(s.member.clone(), &s.org);
    assert!(m.connect(&s.addr, s.victim.device_id().peer_id()).await);
    let mut ev = s.victim.subscribe();
    let victim = s.victim.clone();
    let remover = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        victim
            .change_roster(RosterChange::RemoveMember {
                name: "mallory".into(),
            })
            .await
            .unwrap()
    });
    // Post continuously, racing the removal, and on after it.
    let mut seq = 0;
    let mut prev = None;
    let mut at_removal = None;
    let t = tokio::time::Instant::now();
    while t.elapsed() < Duration::from_millis(1500) {
        seq += 1;
        let mut u = m.envelope(seq, &format!("racing {seq}")).unsigned;
        u.prev = prev;
        let e = Envelope::sign(&m.key, u);
        prev = Some(e.id);
        let _ = m.publish(e.wire);
        m.pump(5).await;
        if at_removal.is_none() && remover.is_finished() {
            // Commands are handled in order by the node task: this count is taken after
            // the new roster was applied.
            at_removal = Some(s.victim.stats().await.unwrap().accepted);
        }
    }
    assert_eq!(remover.await.unwrap(), 3);
    let at_removal = at_removal.expect("removal finished during the race");
    let st = settle(&s.victim).await;
    println!(
        "racing removal: posted {seq}, accepted before removal {at_removal}, after {}, rejected {:?}",
        st.accepted - at_removal,
        st.rejected
    );
    assert!(at_removal > 0, "the race never started");
    assert_eq!(
        st.accepted, at_removal,
        "a message of the removed member was accepted after the removal"
    );
    assert!(!s
        .victim
        .peers()
        .await
        .unwrap()
        .iter()
        .any(|p| p.name == "mallory"));
    let _ = ev.try_recv();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_unauthorized_rosters_change_nothing() {
    let s = setup().await;
    let mut m = Rogue::new(s.member.clone(), &s.org);
    assert!(m.connect(&s.addr, s.victim.device_id().peer_id()).await);
    let head = s.victim.roster().await.unwrap().unwrap();
    // mallory (a member, not an admin) signs version 3 making herself admin.
    let chain_head = {
        let dir = s._dir.path().join("amina");
        let _ = dir;
        head.clone()
    };
    let mut fake = chain_head.clone();
    fake.version += 1;
    fake.members.iter_mut().for_each(|mb| {
        if mb.name == "mallory" {
            mb.role = majlis_core::Role::Admin;
        }
    });
    let forged = VerifiedRoster::sign(fake, RosterSigner::Device(&m.key));
    // A stale copy: version 1 re-signed by mallory, and garbage.
    let mut old = chain_head.clone();
    old.version = 1;
    old.prev = None;
    let stale = VerifiedRoster::sign(old, RosterSigner::Device(&m.key));
    let victim = s.victim.device_id().peer_id();
    for versions in [
        vec![forged.wire.clone()],
        vec![stale.wire.clone()],
        vec![vec![1, 2, 3]],
    ] {
        let versions = versions
            .into_iter()
            .map(serde_bytes::ByteBuf::from)
            .collect();
        m.swarm
            .behaviour_mut()
            .roster
            .send_request(&victim, RosterRequest::Push { versions });
    }
    m.pump(800).await;
    let st = settle(&s.victim).await;
    println!(
        "roster attacks: 3 sent, roster rejections {:?}, version {}",
        st.rejected.get("roster"),
        st.roster_version
    );
    assert_eq!(st.roster_version, 2);
    assert_eq!(s.victim.roster().await.unwrap().unwrap(), head);
    assert!(st.rejected.get("roster").copied().unwrap_or(0) >= 3);
}
