//! The misbehaving peer and the victim node shared by the adversarial suites.
#![allow(dead_code)]

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, request_response, Multiaddr, PeerId, Swarm};
use majlis_core::message::{Envelope, Unsigned, PLAINTEXT_FORMAT};
use majlis_core::net::{Behaviour, BehaviourEvent, SyncRequest, SyncResponse};
use majlis_core::{Config, DeviceId, DeviceKey, Node, OrgId, Profile, RosterChange};

/// Logs of the nodes in a test, shown with the test's output when it fails: set `RUST_LOG`
/// (e.g. `majlis_core=debug`) to read why a multi-node test went wrong.
pub fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub fn config() -> Config {
    Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        peers: vec![],
        mdns: false,
        ..Default::default()
    }
}

/// A client of our own making with `key`'s identity, over TCP + noise + yamux as the node
/// speaks, driving whatever `behaviour` builds (ours, or a subset of it).
pub fn client_swarm<B: libp2p::swarm::NetworkBehaviour>(
    key: &DeviceKey,
    behaviour: impl FnOnce(&libp2p::identity::Keypair) -> B,
) -> Swarm<B> {
    libp2p::SwarmBuilder::with_existing_identity(key.libp2p_keypair())
        .with_tokio()
        .with_tcp(
            Default::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(behaviour)
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// A hand-driven peer with a given device key.
pub struct Rogue {
    pub swarm: Swarm<Behaviour>,
    pub key: DeviceKey,
    pub topic: gossipsub::IdentTopic,
}

impl Rogue {
    pub fn new(key: DeviceKey, org: &OrgId) -> Rogue {
        let mut swarm = client_swarm(&key, Behaviour::new);
        swarm
            .behaviour_mut()
            .gate
            .set_allowed(HashSet::new(), true, &HashSet::new());
        let topic = gossipsub::IdentTopic::new(format!("majlis/1/{}/general", org.discovery_tag()));
        swarm.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
        Rogue { swarm, key, topic }
    }

    /// Dial and drive the swarm until `done` says so or `secs` pass; returns whether done.
    pub async fn run_until(
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
    pub async fn pump(&mut self, ms: u64) {
        let _ = tokio::time::timeout(Duration::from_millis(ms), async {
            loop {
                self.swarm.select_next_some().await;
            }
        })
        .await;
    }

    /// Dial and wait until the victim's subscription to `general` is known.
    pub async fn connect(&mut self, addr: &Multiaddr, victim: PeerId) -> bool {
        self.swarm.dial(addr.clone()).unwrap();
        let general = self.topic.hash();
        self.run_until(10, |ev| {
            matches!(ev, SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic })) if *peer_id == victim && *topic == general)
        })
        .await
    }

    pub fn envelope(&self, seq: u64, body: &str) -> Envelope {
        Envelope::sign(
            &self.key,
            Unsigned {
                format: PLAINTEXT_FORMAT,
                author: self.key.id(),
                channel: "general".into(),
                sent_at: majlis_core::now_ms(),
                seq,
                prev: None,
                body: body.into(),
            },
        )
    }

    /// What an eavesdropping insider does: subscribe by name to `topics` (channel names or
    /// `@NAME` inboxes) of `org`, and ask `victim` over sync for `channels`.
    pub fn pry(&mut self, org: &OrgId, victim: &PeerId, topics: &[&str], channels: &[&str]) {
        let tag = org.discovery_tag();
        for name in topics {
            let t = gossipsub::IdentTopic::new(format!("majlis/1/{tag}/{name}"));
            self.swarm.behaviour_mut().gossipsub.subscribe(&t).unwrap();
        }
        for channel in channels {
            self.request(victim, channel);
        }
    }

    /// Ask `victim` over sync for everything in `channel`, as a client that holds none of it.
    fn request(&mut self, victim: &PeerId, channel: &str) -> request_response::OutboundRequestId {
        self.swarm.behaviour_mut().sync.send_request(
            victim,
            SyncRequest {
                channel: channel.to_string(),
                have: vec![],
                held: vec![],
                max_bytes: None,
                skip: None,
            },
        )
    }

    /// [`Rogue::request`], then drive the swarm until the answer: the number of messages it
    /// carried, or `None` when no answer came (refused, cut, or `secs` passed).
    pub async fn ask(&mut self, victim: &PeerId, channel: &str, secs: u64) -> Option<usize> {
        let id = self.request(victim, channel);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while let Ok(ev) = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
            match ev {
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                })) if request_id == id => return Some(response.messages.len()),
                SwarmEvent::Behaviour(BehaviourEvent::Sync(
                    request_response::Event::OutboundFailure { request_id, .. },
                )) if request_id == id => return None,
                _ => {}
            }
        }
        None
    }

    /// What a member lying in catch-up does: for `secs`, ask `victim` for `channel` every
    /// `every_ms` claiming to hold `have` (per author, the last seq held), and answer each
    /// of the victim's own requests at once, with nothing. Returns how many requests for
    /// `channel` the victim sent meanwhile, and whether it cut the connection.
    pub async fn lie_in_catch_up(
        &mut self,
        victim: &PeerId,
        channel: &str,
        have: &[(DeviceId, u64)],
        every_ms: u64,
        secs: u64,
    ) -> (usize, bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        let mut tick = tokio::time::interval(Duration::from_millis(every_ms));
        let mut asked = 0;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return (asked, false),
                _ = tick.tick() => {
                    self.swarm.behaviour_mut().sync.send_request(
                        victim,
                        SyncRequest {
                            channel: channel.to_string(),
                            have: have.to_vec(),
                            held: vec![],
                            max_bytes: None,
                            skip: None,
                        },
                    );
                }
                ev = self.swarm.select_next_some() => match ev {
                    SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                        peer,
                        message: request_response::Message::Request { request, channel: reply, .. },
                        ..
                    })) => {
                        if peer == *victim && request.channel == channel {
                            asked += 1;
                        }
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .sync
                            .send_response(reply, SyncResponse::default());
                    }
                    SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. }
                        if peer_id == *victim => return (asked, true),
                    _ => {}
                },
            }
        }
    }

    /// Drive the swarm until `victim` closes the connection or `secs` pass. Returns every
    /// envelope received (gossip and sync responses) and whether the connection was cut. A
    /// sync response listing DM channels fails the test.
    pub async fn collect_until_cut(&mut self, victim: &PeerId, secs: u64) -> (Vec<Vec<u8>>, bool) {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while let Ok(ev) = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
            match ev {
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                    message,
                    ..
                })) => got.push(message.data),
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Response { response, .. },
                    ..
                })) => {
                    assert!(response.channels.is_empty(), "the DM list leaked");
                    got.extend(response.messages.into_iter().map(|b| b.into_vec()));
                }
                SwarmEvent::ConnectionClosed {
                    peer_id,
                    num_established: 0,
                    ..
                } if peer_id == *victim => return (got, true),
                _ => {}
            }
        }
        (got, false)
    }

    /// Publish a message signed by this device in `channel`, on the gossip topic `topic`
    /// (a channel or an `@NAME` inbox) of `org`: what a modified client sends where it
    /// may not.
    pub fn post_on(
        &mut self,
        org: &OrgId,
        topic: &str,
        channel: &str,
        seq: u64,
        body: &str,
    ) -> bool {
        let env = Envelope::sign(
            &self.key,
            Unsigned {
                format: PLAINTEXT_FORMAT,
                author: self.key.id(),
                channel: channel.into(),
                sent_at: majlis_core::now_ms(),
                seq,
                prev: None,
                body: body.into(),
            },
        );
        let t = gossipsub::IdentTopic::new(format!("majlis/1/{}/{topic}", org.discovery_tag()));
        self.swarm
            .behaviour_mut()
            .gossipsub
            .publish(t, env.wire)
            .is_ok()
    }

    pub fn publish(&mut self, data: Vec<u8>) -> bool {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), data)
            .is_ok()
    }

    /// Publish; when the send queue is full, drive the swarm and report failure (gossipsub
    /// has then already marked this frame as seen, so the caller sends a fresh one).
    pub async fn try_publish(&mut self, data: Vec<u8>) -> bool {
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

pub struct Setup {
    pub _dir: tempfile::TempDir,
    pub victim: Node,
    pub addr: Multiaddr,
    pub org: OrgId,
    pub member: DeviceKey,
}

/// A running admin node ("victim") whose roster lists `member` (returned) as "mallory".
pub async fn setup() -> Setup {
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

/// Start `profile`'s node, dialing `addr` (a colleague's node) as its one static peer.
pub async fn start_dialing(profile: Profile, addr: &Multiaddr) -> Node {
    let config = Config {
        peers: vec![addr.clone()],
        ..config()
    };
    Node::start(profile, config).await.unwrap()
}

/// Poll `f` every 50 ms until it holds; fail the test after 20 s.
pub async fn wait_until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn settle(node: &Node) -> majlis_core::node::Stats {
    tokio::time::sleep(Duration::from_millis(300)).await;
    node.stats().await.unwrap()
}

/// amina (admin, founder of "acme") and `others` (name, role), then `more` changes by amina,
/// with the whole roster already given to everyone. Returns the profiles, amina first.
pub fn org_with(
    dir: &std::path::Path,
    others: &[(&str, majlis_core::Role)],
    more: &[RosterChange],
) -> Vec<Profile> {
    let admin = Profile::init(&dir.join("amina"), "amina").unwrap();
    admin.org_create("acme").unwrap();
    let mut out = vec![admin];
    for (name, role) in others {
        let p = Profile::init(&dir.join(name), name).unwrap();
        p.org_join(out[0].org().unwrap().unwrap()).unwrap();
        let mut chain = out[0].chain().unwrap();
        out[0]
            .change_roster(
                &mut chain,
                &RosterChange::AddMember {
                    name: name.to_string(),
                    device: p.device_id(),
                    role: Some(*role),
                },
            )
            .unwrap();
        out.push(p);
    }
    if !more.is_empty() {
        let mut chain = out[0].chain().unwrap();
        out[0].change_roster_all(&mut chain, more).unwrap();
    }
    let full = out[0].chain().unwrap().versions().to_vec();
    for p in &out[1..] {
        let mut chain = p.chain().unwrap();
        p.apply_rosters(&mut chain, full.clone()).unwrap();
    }
    out
}

/// [`org_with`] `others`, plus "mallory", a member whose key the test drives by hand (a
/// modified client): the profiles (amina first) and mallory's key.
pub fn org_with_mallory(
    dir: &std::path::Path,
    others: &[(&str, majlis_core::Role)],
) -> (Vec<Profile>, DeviceKey) {
    let mallory = DeviceKey::generate();
    let add = RosterChange::AddMember {
        name: "mallory".into(),
        device: mallory.id(),
        role: None,
    };
    (org_with(dir, others, &[add]), mallory)
}

/// Copy a directory tree (a data directory, as a backup or a copied disk would).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
