//! A seeded, deterministic simulator of a whole org over the protocol core, with no sockets:
//! nodes run the real intake pipeline ([`crate::proto::intake`]), catch-up
//! ([`crate::proto::catchup`]), membership and roster-chain rules on in-memory logs, and the
//! simulated network loses, duplicates, delays (so reorders) and partitions their traffic
//! while nodes go offline and come back and the admin adds and removes members.
//!
//! At the end every member must hold every message it may read and nothing it may not
//! ([`Report::missed`] and [`Report::extra`] are 0). The same seed gives the same run, so a
//! failure found by the property test replays exactly.
//!
//! What is modelled: gossip floods to connected neighbours that subscribe to the topic (a
//! stand-in for gossipsub's mesh), catch-up rounds with every connected neighbour, roster
//! exchange (`Have` and answers), the roster gate, remote wipe of removed members, and
//! insiders on the roster whose modified client takes catch-up requests and never answers
//! (the node moves on after [`catchup::STALL_MS`], woken when [`Catchup::turn_free_at`]
//! says, as the real node's loop is). What is not: transport encryption and sealed bodies (intake does not open bodies), timing of
//! real I/O.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::identity::{DeviceId, DeviceKey, OrgKey};
use crate::message::{Envelope, MessageId, Reject, Unsigned, PLAINTEXT_FORMAT};
use crate::net::{SyncRequest, SyncResponse, DM_LIST};
use crate::proto::catchup::{self, Asked, Catchup};
use crate::proto::membership::{self, Membership};
use crate::proto::neighbours;
use crate::proto::{intake, Log, MemLog, Origin, Tally, Verdict};
use crate::roster::{
    dm_channel, dm_channel_of, dm_members, notes_channel, notes_of, DmPolicy, Role, Roster,
    RosterChain, RosterChange, RosterSigner, VerifiedRoster,
};
use crate::sync::Vector;

/// The simulated clock starts here (a real date: the clock rules check `sent_at`).
const EPOCH_MS: u64 = 1_800_000_000_000;

/// One simulated run.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    /// Members on the roster at the start (node 0 is the admin), relays included.
    pub nodes: usize,
    pub relays: usize,
    /// Devices added to the roster during the run.
    pub joiners: usize,
    /// Members removed during the run (their devices erase themselves).
    pub removals: usize,
    pub messages: usize,
    /// Nodes per site: a LAN segment whose nodes all connect to each other (mDNS reaches
    /// them). Sites are joined only through relays, which connect to every node.
    pub site: usize,
    /// A site larger than this is not a full mesh: each node links to the devices its
    /// [`crate::proto::neighbours`] plan picks (by the starting roster; joiners as members
    /// of `general`), and to a DM partner's devices when it first writes to them, as a node
    /// dials them. `usize::MAX`: every site is a full mesh.
    pub mesh_limit: usize,
    /// Gossip fan-out: each node forwards a new message to this many connected subscribers
    /// of its topic, picked at random (gossipsub's mesh degree D).
    pub mesh: usize,
    /// Probability that a gossip frame is lost, or delivered twice.
    pub loss: f64,
    pub duplicate: f64,
    /// One-way delay, uniform in this range (ms): frames overtake each other.
    pub delay_ms: (u64, u64),
    /// Split the network in two halves for the middle third of the sending phase.
    pub partition: bool,
    /// Fraction of nodes that go offline for a while during the sending phase.
    pub churn: f64,
    pub sync_interval_ms: u64,
    /// Length of the sending phase; then everything heals and the run settles.
    pub duration_ms: u64,
    /// `false` switches catch-up off (gossip only): a run that must show losses, so the
    /// check is seen to catch them.
    pub catchup: bool,
    /// Members (ordinary ones, on the roster from the start) running a modified client that
    /// takes every catch-up request and never answers. They post nothing (a message only
    /// they hold could not reach anyone) but read as everyone does. Requests to them are
    /// never failed by a timeout here, which is stricter than a node's 30 s.
    pub mute: usize,
    /// Members running a modified client that signs two branches of its log: each message
    /// it posts has a twin with the same seq and another body, gossiped to another random
    /// part of its mesh. Honest nodes hold one branch or the other, and their catch-up
    /// answers break each other's chain for it; that must not keep anyone from the honest
    /// authors' messages. Its own messages are not counted as to be held.
    pub forkers: usize,
}

impl Config {
    /// A run of `nodes` members with every kind of trouble switched on.
    pub fn hostile(seed: u64, nodes: usize) -> Config {
        Config {
            seed,
            nodes,
            relays: (nodes / 50).max(1),
            joiners: (nodes / 20).max(1),
            removals: (nodes / 20).max(1),
            messages: nodes.max(50),
            site: 50,
            mesh_limit: usize::MAX,
            mesh: 6,
            loss: 0.05,
            duplicate: 0.02,
            delay_ms: (1, 40),
            partition: true,
            churn: 0.1,
            sync_interval_ms: 5_000,
            duration_ms: 30_000,
            catchup: true,
            mute: (nodes / 25).max(1),
            forkers: (nodes / 25).max(1),
        }
    }
}

/// What a run did and whether it converged.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Messages posted (text, every channel and DM).
    pub messages: usize,
    /// Members checked at the end (listed in the final roster).
    pub members: usize,
    /// (member, message) pairs the member may read but does not hold.
    pub missed: usize,
    /// (member, message) pairs held that the member may not read.
    pub extra: usize,
    pub gossip_sent: u64,
    pub gossip_lost: u64,
    /// Gossip frames that arrived at a node already holding the message.
    pub gossip_duplicates: u64,
    pub sync_requests: u64,
    /// Messages stored by receivers, over all nodes, and of those the ones first obtained by
    /// catch-up (gossip missed them).
    pub accepted: u64,
    pub synced: u64,
    /// Refusals by reason, over all nodes (an honest run refuses only messages a roster no
    /// longer admits, and gaps).
    pub rejected: BTreeMap<String, u64>,
    /// Simulated time of the last message any member stored (ms after the start).
    pub converged_ms: u64,
    /// Simulated time at the end (ms).
    pub end_ms: u64,
    /// Catch-up requests a mute insider took and never answered.
    pub unanswered: u64,
    /// Messages a forker signed twice, and catch-up answers that broke a forker's chain
    /// (its messages then no longer asked of that peer).
    pub forked: u64,
    pub fork_answers: u64,
    /// Refusals a forker caused (its twins refused where the other branch is held, its own
    /// answers that break the chain it showed the asker): kept out of `rejected`, which
    /// counts what honest nodes refused of honest ones.
    pub forker_refused: u64,
    /// Messages to a conversation one of whose members had left, written by a member who
    /// had not heard of it yet (a group conversation's other members refuse them, as the
    /// rules say): kept out of `rejected` too.
    pub after_a_leaver: u64,
    /// Of `messages`, those sent in group conversations (DMs of three).
    pub group_messages: usize,
    /// Of `messages`, those a member wrote in their own notes.
    pub notes_messages: usize,
    /// The first few misses and extras, described, to debug a failing seed.
    pub examples: Vec<String>,
}

#[derive(Debug)]
enum Ev {
    Gossip {
        to: usize,
        from: usize,
        env: Envelope,
    },
    SyncReq {
        to: usize,
        from: usize,
        key: u64,
        req: SyncRequest,
    },
    SyncResp {
        to: usize,
        from: usize,
        key: u64,
        resp: SyncResponse,
    },
    Have {
        to: usize,
        from: usize,
        version: u64,
        hash: [u8; 32],
    },
    Rosters {
        to: usize,
        from: usize,
        versions: Vec<VerifiedRoster>,
    },
    Tick(usize),
    /// A channel's turn at this node may be free: a request holding it has stalled.
    Wake(usize),
    Post,
    Admin(Admin),
    Down(usize),
    Up(usize),
    Split,
    Heal,
}

#[derive(Debug, Clone, Copy)]
enum Admin {
    Add(usize),
    Remove(usize),
}

struct Node {
    key: DeviceKey,
    name: String,
    chain: RosterChain,
    plan: Membership,
    log: MemLog,
    catchup: Catchup<u64, usize>,
    online: bool,
    wiped: bool,
    tally: Tally,
    last_stored_ms: u64,
    rounds: u64,
    /// A modified client that never answers catch-up (see [`Config::mute`]).
    mute: bool,
    /// A modified client that signs two branches of its log (see [`Config::forkers`]).
    forker: bool,
    /// When a [`Ev::Wake`] is scheduled for this node (sim ms), to keep one at a time.
    wake_at: Option<u64>,
}

struct Sim {
    cfg: Config,
    rng: StdRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Ev>,
    nodes: Vec<Node>,
    links: Vec<Vec<usize>>,
    /// Side of each node while the network is split.
    side: Option<Vec<bool>>,
    /// Each message posted: id, channel, author, `sent_at`.
    sent: Vec<(MessageId, String, DeviceId, u64)>,
    next_key: u64,
    report: Report,
}

/// Each node's links under [`neighbours::choose`], from the full-mesh `links`: what it
/// picks among them, plus who picked it.
fn neighbour_links(
    nodes: &[Node],
    links: &[Vec<usize>],
    is_relay: &dyn Fn(usize) -> bool,
    limit: usize,
) -> Vec<Vec<usize>> {
    // Each device's topics and peer id, once (not once per pair).
    let topics: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| match n.plan.listed {
            true => n.plan.topics.iter().cloned().collect(),
            false => vec!["general".to_string(), format!("@{}", n.name)],
        })
        .collect();
    let ids: Vec<Vec<u8>> = nodes
        .iter()
        .map(|n| n.key.id().peer_id().to_bytes())
        .collect();
    let mut picked: Vec<HashSet<usize>> = vec![HashSet::new(); nodes.len()];
    for a in 0..nodes.len() {
        let mine = &topics[a];
        let candidates: Vec<neighbours::Candidate<usize>> = links[a]
            .iter()
            .map(|&b| neighbours::Candidate {
                peer: b,
                topics: neighbours::shared(mine, |t| is_relay(b) || topics[b].contains(t)),
                always: is_relay(b),
                failing: false,
                rank: neighbours::rank(&ids[a], &ids[b]),
            })
            .collect();
        let devices = nodes.len() - 1;
        let limit = if is_relay(a) { usize::MAX } else { limit };
        for b in neighbours::choose(&candidates, mine.len(), devices, limit) {
            picked[a].insert(b);
            picked[b].insert(a);
        }
    }
    picked
        .into_iter()
        .map(|s| {
            let mut v: Vec<usize> = s.into_iter().collect();
            v.sort_unstable();
            v
        })
        .collect()
}

/// Run a simulation to the end and report.
pub fn run(cfg: Config) -> Report {
    let mut sim = Sim::new(cfg);
    sim.run();
    sim.check()
}

fn seed_of(rng: &mut StdRng) -> [u8; 32] {
    let mut s = [0u8; 32];
    rng.fill(&mut s);
    s
}

impl Sim {
    fn new(cfg: Config) -> Sim {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let org = OrgKey::from_seed(seed_of(&mut rng));
        let total = cfg.nodes + cfg.joiners;
        let keys: Vec<DeviceKey> = (0..total)
            .map(|_| DeviceKey::from_seed(seed_of(&mut rng)))
            .collect();
        let name = |i: usize| format!("m{i}");
        // Version 1 by the root, then one version with everyone: a private channel of a
        // third of the members, DMs between all.
        let mut roster = Roster::genesis(&org, "sim", &name(0), keys[0].id(), EPOCH_MS);
        roster.policy.dms = DmPolicy::All;
        for (i, key) in keys.iter().enumerate().take(cfg.nodes).skip(1) {
            let role = if i > cfg.nodes - 1 - cfg.relays {
                Role::Relay
            } else {
                Role::Member
            };
            roster.members.push(crate::roster::Member {
                name: name(i),
                role,
                devices: vec![key.id()],
            });
        }
        roster.channels.push(crate::roster::Channel {
            name: "ops".into(),
            members: Some((0..cfg.nodes).step_by(3).map(name).collect()),
        });
        let v1 = VerifiedRoster::sign(roster, RosterSigner::Root(&org));
        let mut chain = RosterChain::new(org.org_id());
        chain.apply(vec![v1]);
        let mut nodes: Vec<Node> = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let listed = i < cfg.nodes;
                let mut node = Node {
                    plan: Membership::default(),
                    chain: if listed {
                        chain.clone()
                    } else {
                        RosterChain::new(org.org_id())
                    },
                    key,
                    name: name(i),
                    log: MemLog::default(),
                    catchup: Catchup::default(),
                    online: true,
                    wiped: false,
                    tally: Tally::default(),
                    last_stored_ms: 0,
                    rounds: 0,
                    mute: false,
                    forker: false,
                    wake_at: None,
                };
                node.plan = Membership::of(&node.chain, &node.key.id());
                node
            })
            .collect();
        // Sites of `site` nodes, each a full mesh up to the mesh limit and each node's
        // neighbours beyond it; relays connect to everyone.
        let is_relay = |i: usize| i < cfg.nodes && i + cfg.relays > cfg.nodes - 1;
        let site = |i: usize| i / cfg.site.max(1);
        let mut links: Vec<Vec<usize>> = (0..total)
            .map(|a| {
                (0..total)
                    .filter(|&b| b != a && (site(a) == site(b) || is_relay(a) || is_relay(b)))
                    .collect()
            })
            .collect();
        if cfg.site.min(total).saturating_sub(1) > cfg.mesh_limit {
            links = neighbour_links(&nodes, &links, &is_relay, cfg.mesh_limit);
        }
        // The mute insiders: the last ordinary members before the relays.
        let plain_end = cfg.nodes - cfg.relays;
        for node in nodes
            .iter_mut()
            .take(plain_end)
            .skip(1)
            .rev()
            .take(cfg.mute)
        {
            node.mute = true;
        }
        // The forkers: the first ordinary members after the admin.
        for node in nodes
            .iter_mut()
            .take(plain_end)
            .skip(1)
            .filter(|n| !n.mute)
            .take(cfg.forkers)
        {
            node.forker = true;
        }
        let mut sim = Sim {
            cfg,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            nodes,
            links,
            side: None,
            sent: Vec::new(),
            next_key: 0,
            report: Report::default(),
        };
        sim.schedule_run();
        sim
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq)));
        self.events.insert(self.seq, ev);
    }

    fn schedule_run(&mut self) {
        let d = self.cfg.duration_ms;
        for i in 0..self.nodes.len() {
            let first = self.rng.random_range(0..self.cfg.sync_interval_ms);
            self.at(first, Ev::Tick(i));
        }
        for _ in 0..self.cfg.messages {
            let t = self.rng.random_range(0..d);
            self.at(t, Ev::Post);
        }
        for j in 0..self.cfg.joiners {
            let t = self.rng.random_range(d / 10..d / 2);
            self.at(t, Ev::Admin(Admin::Add(self.cfg.nodes + j)));
        }
        // Removed: ordinary members (not the admin, not relays), distinct.
        let plain = 1..self.cfg.nodes - self.cfg.relays;
        let mut removed = HashSet::new();
        while removed.len() < self.cfg.removals.min(plain.len()) {
            removed.insert(self.rng.random_range(plain.clone()));
        }
        let mut removed: Vec<usize> = removed.into_iter().collect();
        removed.sort();
        for r in removed {
            let t = self.rng.random_range(d / 4..d * 3 / 4);
            self.at(t, Ev::Admin(Admin::Remove(r)));
        }
        if self.cfg.partition {
            self.at(d / 3, Ev::Split);
            self.at(d * 2 / 3, Ev::Heal);
        }
        let churned = (self.nodes.len() as f64 * self.cfg.churn) as usize;
        for _ in 0..churned {
            let n = self.rng.random_range(1..self.nodes.len());
            let down = self.rng.random_range(0..d * 3 / 4);
            let up = self.rng.random_range(down..d);
            self.at(down, Ev::Down(n));
            self.at(up, Ev::Up(n));
        }
    }

    fn run(&mut self) {
        // After the sending phase: all up, healed, and enough rounds to settle.
        let end = self.cfg.duration_ms + 8 * self.cfg.sync_interval_ms;
        self.at(self.cfg.duration_ms, Ev::Heal);
        for n in 0..self.nodes.len() {
            self.at(self.cfg.duration_ms, Ev::Up(n));
        }
        while let Some(Reverse((t, id))) = self.queue.pop() {
            if t > end {
                break;
            }
            self.now = t;
            let ev = self.events.remove(&id).expect("scheduled");
            self.handle(ev);
        }
        self.report.end_ms = end;
    }

    fn clock(&self) -> u64 {
        EPOCH_MS + self.now
    }

    fn dev(&self, i: usize) -> DeviceId {
        self.nodes[i].key.id()
    }

    /// Whether `a` and `b` can talk now: both online, not split apart, and each admits the
    /// other (its roster lists it, or it is still bootstrapping).
    fn connected(&self, a: usize, b: usize) -> bool {
        let (x, y) = (&self.nodes[a], &self.nodes[b]);
        let admits =
            |n: &Node, other: usize| !n.plan.listed || n.plan.allowed.contains(&self.dev(other));
        x.online
            && y.online
            && self.side.as_ref().is_none_or(|s| s[a] == s[b])
            && admits(x, b)
            && admits(y, a)
    }

    fn delay(&mut self) -> u64 {
        let (lo, hi) = self.cfg.delay_ms;
        self.now + self.rng.random_range(lo..=hi.max(lo))
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Tick(n) => {
                if self.nodes[n].online {
                    self.periodic(n);
                }
                let next = self.now + self.cfg.sync_interval_ms;
                self.at(next, Ev::Tick(n));
            }
            Ev::Wake(n) => {
                if self.nodes[n].wake_at == Some(self.now) {
                    self.nodes[n].wake_at = None;
                }
                if self.nodes[n].online {
                    for ch in self.nodes[n].catchup.waiting_channels() {
                        self.next_turn(n, &ch);
                    }
                    self.wake_later(n);
                }
            }
            Ev::Post => self.post(),
            Ev::Admin(a) => self.admin(a),
            Ev::Down(n) => {
                self.nodes[n].online = false;
                // Requests in flight die with the connections.
                self.nodes[n].catchup = Catchup::default();
            }
            Ev::Up(n) => {
                if !self.nodes[n].wiped && !self.nodes[n].online {
                    self.nodes[n].online = true;
                    self.round(n);
                }
            }
            Ev::Split => {
                let side = (0..self.nodes.len()).map(|i| i % 2 == 0).collect();
                self.side = Some(side);
            }
            Ev::Heal => {
                if self.side.take().is_some() {
                    for n in 0..self.nodes.len() {
                        if self.nodes[n].online {
                            self.round(n);
                        }
                    }
                }
            }
            Ev::Gossip { to, from, env } => {
                if self.connected(to, from) {
                    self.on_gossip(to, from, env);
                } else {
                    self.report.gossip_lost += 1;
                }
            }
            Ev::SyncReq { to, from, key, req } => {
                if !self.connected(to, from) {
                    self.nodes[from].catchup.failed(&key, false);
                    let waiting = self.nodes[from].catchup.waiting_channels();
                    for ch in waiting {
                        self.next_turn(from, &ch);
                    }
                    return;
                }
                if self.nodes[to].mute {
                    self.report.unanswered += 1;
                    return;
                }
                let node = &self.nodes[to];
                let (me, requester) = (self.dev(to), self.dev(from));
                let back = catchup::ask_back(&node.log, node.chain.head(), &me, &requester, &req);
                let channel = req.channel.clone();
                let resp = catchup::answer(&node.log, node.chain.head(), &requester, req)
                    .expect("memory logs do not fail")
                    .response;
                let now = self.now;
                if back && self.nodes[to].catchup.ask_back_due(from, &channel, now) {
                    self.sync_turn(to, from, &channel);
                }
                let t = self.delay();
                self.at(
                    t,
                    Ev::SyncResp {
                        to: from,
                        from: to,
                        key,
                        resp,
                    },
                );
            }
            Ev::SyncResp {
                to,
                from,
                key,
                resp,
            } => {
                let Some((_, asked)) = self.nodes[to].catchup.answered(&key) else {
                    return;
                };
                let channel = asked.channel.clone();
                if self.connected(to, from) {
                    self.on_sync_response(to, from, asked, resp);
                }
                self.next_turn(to, &channel);
            }
            Ev::Have {
                to,
                from,
                version,
                hash,
            } => {
                if !self.connected(to, from) {
                    return;
                }
                let dev = self.dev(from);
                let node = &self.nodes[to];
                let departed = node.plan.departed.contains(&dev);
                let versions: Vec<VerifiedRoster> =
                    membership::roster_answer(&node.chain, Some(&dev), departed, version, hash)
                        .into_iter()
                        .cloned()
                        .collect();
                let ahead = membership::peer_is_ahead(&node.chain, version, hash);
                if !versions.is_empty() {
                    let t = self.delay();
                    self.at(
                        t,
                        Ev::Rosters {
                            to: from,
                            from: to,
                            versions,
                        },
                    );
                }
                if ahead {
                    self.send_have(to, from);
                }
            }
            Ev::Rosters { to, from, versions } => {
                let node = &self.nodes[to];
                if self.connected(to, from)
                    && (!node.plan.listed || node.plan.allowed.contains(&self.dev(from)))
                {
                    self.apply_rosters(to, versions);
                }
            }
        }
    }

    /// A node's periodic round, as a node's resync timer does it: catch-up per
    /// [`catchup::round_plan`] (one peer per channel, in turn). Roster `Have`s go out on
    /// (re)connection and roster changes only ([`Sim::round`]), as on a node.
    fn periodic(&mut self, n: usize) {
        let connected: Vec<usize> = self.links[n]
            .iter()
            .copied()
            .filter(|&p| self.connected(n, p))
            .collect();
        let node = &self.nodes[n];
        if !node.plan.listed {
            return;
        }
        let Some(head) = node.chain.head() else {
            return;
        };
        let peers: Vec<(usize, &crate::roster::Member)> = connected
            .iter()
            .filter_map(|&p| Some((p, head.member_of_device(&self.dev(p))?)))
            .collect();
        let plan = catchup::round_plan(head, node.plan.topics.iter(), &peers, node.rounds);
        self.nodes[n].rounds += 1;
        for (p, ch) in plan {
            self.sync_turn(n, p, &ch);
        }
    }

    /// What a node does with each neighbour it (re)connects to: roster `Have`, then a full
    /// catch-up with it.
    fn round(&mut self, n: usize) {
        for p in self.links[n].clone() {
            if self.connected(n, p) {
                self.send_have(n, p);
                self.start_sync(n, p);
            }
        }
    }

    fn send_have(&mut self, from: usize, to: usize) {
        let (version, hash) = self.nodes[from]
            .chain
            .head()
            .map(|h| (h.version(), h.hash))
            .unwrap_or((0, [0; 32]));
        let t = self.delay();
        self.at(
            t,
            Ev::Have {
                to,
                from,
                version,
                hash,
            },
        );
    }

    fn start_sync(&mut self, n: usize, peer: usize) {
        let node = &self.nodes[n];
        if !node.plan.listed {
            return;
        }
        let Some(head) = node.chain.head() else {
            return;
        };
        let Some(their) = head.member_of_device(&self.dev(peer)) else {
            return;
        };
        for ch in catchup::channels_for(head, node.plan.topics.iter(), their) {
            self.sync_turn(n, peer, &ch);
        }
    }

    /// Catch up `channel` from `peer` now, or when its turn comes (as a node does).
    fn sync_turn(&mut self, n: usize, peer: usize, channel: &str) {
        let now = self.clock();
        if !self.nodes[n].catchup.queue_behind(peer, channel, now) {
            self.sync_channel(n, peer, channel, &Vector::new());
        } else {
            self.wake_later(n);
        }
    }

    /// Wake node `n` when a channel that peers wait for is free ([`Catchup::turn_free_at`]),
    /// as the node's loop sleeps until then.
    fn wake_later(&mut self, n: usize) {
        let Some(at) = self.nodes[n].catchup.turn_free_at(self.clock()) else {
            return;
        };
        // Never at this very instant: a wake that found nothing to do must not repeat.
        let t = at.saturating_sub(EPOCH_MS).max(self.now + 1);
        if self.nodes[n]
            .wake_at
            .is_some_and(|w| w >= self.now && w <= t)
        {
            return;
        }
        self.nodes[n].wake_at = Some(t);
        self.at(t, Ev::Wake(n));
    }

    /// A session for `channel` ended at node `n`: the next queued peer's turn.
    fn next_turn(&mut self, n: usize, channel: &str) {
        while !self.nodes[n].catchup.turn_taken(channel, self.clock()) {
            let Some(p) = self.nodes[n].catchup.next_queued(channel) else {
                return;
            };
            if self.connected(n, p) {
                self.sync_channel(n, p, channel, &Vector::new());
            }
        }
    }

    fn sync_channel(&mut self, n: usize, peer: usize, channel: &str, sent: &Vector) {
        if !self.cfg.catchup {
            return;
        }
        let node = &self.nodes[n];
        let Some((req, mut asked)) = node
            .catchup
            .request(&node.log, peer, channel, sent, None)
            .expect("memory logs do not fail")
        else {
            return;
        };
        asked.sent_ms = self.clock();
        self.next_key += 1;
        let key = self.next_key;
        self.nodes[n].catchup.sent(key, peer, asked);
        self.report.sync_requests += 1;
        let t = self.delay();
        self.at(
            t,
            Ev::SyncReq {
                to: peer,
                from: n,
                key,
                req,
            },
        );
    }

    fn on_sync_response(&mut self, n: usize, peer: usize, asked: Asked, resp: SyncResponse) {
        if asked.channel == DM_LIST {
            let node = &self.nodes[n];
            let Some(head) = node.chain.head() else {
                return;
            };
            let (Some(me), Some(their)) = (
                head.member_of_device(&self.dev(n)),
                head.member_of_device(&self.dev(peer)),
            ) else {
                return;
            };
            let wanted = catchup::dm_wanted(head, me, their, resp).expect("honest peers");
            for ch in wanted {
                self.sync_turn(n, peer, &ch);
            }
            return;
        }
        let checked = match catchup::check(&self.nodes[n].log, &asked, &resp) {
            Ok(c) => c,
            Err(e) => {
                let (me, responder) = (self.dev(n), self.dev(peer));
                match catchup::forked_author(&e, &me, &responder, &asked.channel, &resp) {
                    // An honest peer holding a forker's other branch (as the node does).
                    Some(author) => {
                        self.report.fork_answers += 1;
                        self.nodes[n]
                            .catchup
                            .leave_out_from(peer, author, &asked.channel);
                        self.sync_channel(n, peer, &asked.channel, &Vector::new());
                    }
                    // A forker answering with its own branch: its lie (a node disconnects it).
                    None if self.nodes[peer].forker => self.report.forker_refused += 1,
                    None => panic!("an honest peer's answer failed its check: {e}"),
                }
                return;
            }
        };
        if let Some(next) = &checked.next {
            self.sync_channel(n, peer, &asked.channel, next);
        }
        let now = self.clock();
        let node = &mut self.nodes[n];
        let verdicts = intake::accept(
            &mut node.log,
            node.chain.head(),
            &checked.envs,
            Origin::Sync,
            now,
        );
        for (env, v) in checked.envs.into_iter().zip(verdicts) {
            self.settle(n, peer, env, v, Origin::Sync);
        }
    }

    /// One envelope through node `n`'s intake, as a gossip frame.
    fn accept_one(&mut self, n: usize, env: &Envelope) -> Verdict {
        let now = self.clock();
        let node = &mut self.nodes[n];
        intake::accept(
            &mut node.log,
            node.chain.head(),
            std::slice::from_ref(env),
            Origin::Gossip,
            now,
        )
        .pop()
        .expect("one verdict")
    }

    fn on_gossip(&mut self, n: usize, from: usize, env: Envelope) {
        let v = self.accept_one(n, &env);
        if v == Verdict::Duplicate {
            self.report.gossip_duplicates += 1;
        }
        self.settle(n, from, env, v, Origin::Gossip);
    }

    /// Count a verdict; forward what was accepted; after a gap, ask the forwarder at once.
    fn settle(&mut self, n: usize, from: usize, env: Envelope, v: Verdict, origin: Origin) {
        let by_forker = || {
            self.nodes
                .iter()
                .any(|x| x.forker && x.key.id() == env.unsigned.author)
        };
        if matches!(v, Verdict::Rejected(_)) && by_forker() {
            self.report.forker_refused += 1;
            return;
        }
        let ended = || {
            let head = self.nodes[n].chain.head();
            head.is_some_and(|h| h.dm_ended(&env.unsigned.channel).is_some())
        };
        if matches!(v, Verdict::Rejected(Reject::NotAllowed { .. })) && ended() {
            self.report.after_a_leaver += 1;
            return;
        }
        self.nodes[n].tally.record(&v, origin);
        if let Verdict::Accepted { gap, .. } = v {
            self.nodes[n].last_stored_ms = self.now;
            if gap {
                let ch = env.unsigned.channel.clone();
                self.sync_channel(n, from, &ch, &Vector::new());
            }
            self.forward(n, Some(from), env);
        }
    }

    /// Gossip `env` to `mesh` random connected neighbours subscribed to its topic.
    fn forward(&mut self, n: usize, except: Option<usize>, env: Envelope) {
        let topics: Vec<String> = match dm_members(&env.unsigned.channel) {
            Some(names) => names.iter().map(|n| format!("@{n}")).collect(),
            None => vec![env.unsigned.channel.clone()],
        };
        let mut targets: Vec<usize> = self.links[n]
            .iter()
            .copied()
            .filter(|&p| Some(p) != except && self.connected(n, p))
            .filter(|&p| topics.iter().any(|t| self.nodes[p].plan.topics.contains(t)))
            .collect();
        // A partial Fisher-Yates shuffle picks the mesh.
        let k = self.cfg.mesh.min(targets.len());
        for i in 0..k {
            let j = self.rng.random_range(i..targets.len());
            targets.swap(i, j);
        }
        targets.truncate(k);
        for p in targets {
            self.report.gossip_sent += 1;
            if self.rng.random_bool(self.cfg.loss) {
                self.report.gossip_lost += 1;
                continue;
            }
            let copies = if self.rng.random_bool(self.cfg.duplicate) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let t = self.delay();
                self.at(
                    t,
                    Ev::Gossip {
                        to: p,
                        from: n,
                        env: env.clone(),
                    },
                );
            }
        }
    }

    /// A random online member posts in a random channel it may post in, or a DM.
    fn post(&mut self) {
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| {
                let n = &self.nodes[i];
                n.online
                    && !n.mute
                    && n.plan.listed
                    && n.chain
                        .head()
                        .and_then(|h| h.member_of_device(&n.key.id()))
                        .is_some_and(|m| !m.role.stores_all())
            })
            .collect();
        if candidates.is_empty() {
            return;
        }
        let n = candidates[self.rng.random_range(0..candidates.len())];
        let head = self.nodes[n].chain.head().expect("listed").clone();
        let me = head.member_of_device(&self.dev(n)).expect("listed").clone();
        let roll: f64 = self.rng.random();
        let channel = if roll < 0.15 {
            let partners: Vec<String> = head
                .roster
                .dm_partners(&me)
                .map(|m| m.name.clone())
                .collect();
            if partners.is_empty() {
                return;
            }
            let partner = partners[self.rng.random_range(0..partners.len())].clone();
            self.link_to_member(n, &partner);
            // One in three a group conversation with a second partner, when there is one.
            let second = partners[self.rng.random_range(0..partners.len())].clone();
            if roll < 0.05 && second != partner {
                self.link_to_member(n, &second);
                dm_channel_of([me.name.as_str(), &partner, &second])
            } else {
                dm_channel(&me.name, &partner)
            }
        } else if roll < 0.19 {
            // A member's notes: their devices and relays hold them, nobody else.
            notes_channel(&me.name)
        } else if roll < 0.35 && head.roster.may_post(&me, "ops") {
            "ops".to_string()
        } else {
            "general".to_string()
        };
        let node = &self.nodes[n];
        let (seq, prev) = {
            let (_, max) = node.log.head(&channel, &node.key.id()).expect("memory");
            let prev = node
                .log
                .entry(&channel, &node.key.id(), max)
                .expect("memory");
            (max + 1, prev)
        };
        let env = Envelope::sign(
            &node.key,
            Unsigned {
                format: PLAINTEXT_FORMAT,
                author: node.key.id(),
                channel: channel.clone(),
                sent_at: self.clock(),
                seq,
                prev,
                body: format!("{} says {}", node.name, self.sent.len()).into_bytes(),
            },
        );
        // Our own message goes through the same rules as everyone's.
        let v = self.accept_one(n, &env);
        assert!(
            matches!(v, Verdict::Accepted { .. }),
            "own message refused: {v:?}"
        );
        if self.nodes[n].forker {
            // Its twin: the same place in the log, another body, to another random mesh.
            let mut u = env.unsigned.clone();
            u.body.extend_from_slice(b" (the other branch)");
            let twin = Envelope::sign(&self.nodes[n].key, u);
            self.report.forked += 1;
            self.forward(n, None, twin);
        } else {
            self.sent
                .push((env.id, channel, env.unsigned.author, env.unsigned.sent_at));
        }
        self.forward(n, None, env);
    }

    /// A node writing to someone directly dials their devices if it has no link to them
    /// (a node's plan adds its DM partners' inboxes).
    fn link_to_member(&mut self, n: usize, member: &str) {
        for m in (0..self.nodes.len()).filter(|&m| self.nodes[m].name == member) {
            if m != n && !self.links[n].contains(&m) {
                self.links[n].push(m);
                self.links[m].push(n);
            }
        }
    }

    fn admin(&mut self, a: Admin) {
        let change = match a {
            Admin::Add(j) => RosterChange::AddMember {
                name: self.nodes[j].name.clone(),
                device: self.dev(j),
                role: None,
            },
            Admin::Remove(r) => RosterChange::RemoveMember {
                name: self.nodes[r].name.clone(),
            },
        };
        let admin = &self.nodes[0];
        let head = admin.chain.head().expect("the admin holds the roster");
        let Ok(next) = head.roster.next(head.hash, &change, self.clock()) else {
            return;
        };
        let v = VerifiedRoster::sign(next, RosterSigner::Device(&admin.key));
        self.apply_rosters(0, vec![v]);
    }

    fn apply_rosters(&mut self, n: usize, versions: Vec<VerifiedRoster>) {
        let node = &mut self.nodes[n];
        let rep = node.chain.apply(versions);
        if rep.changed_from.is_none() {
            return;
        }
        node.plan = Membership::of(&node.chain, &node.key.id());
        if node.plan.wipe {
            // Removed: erase and stop, as a real node does.
            node.wiped = true;
            node.online = false;
            node.log = MemLog::default();
            return;
        }
        self.round(n);
    }

    fn name_of(&self, d: &DeviceId) -> String {
        self.nodes
            .iter()
            .find(|n| n.key.id() == *d)
            .map_or("?".into(), |n| n.name.clone())
    }

    /// Compare what every member holds with what it may read.
    fn check(mut self) -> Report {
        let head = self.nodes[0].chain.head().expect("admin roster").clone();
        let mut report = std::mem::take(&mut self.report);
        report.messages = self.sent.len();
        report.group_messages = self
            .sent
            .iter()
            .filter(|(_, c, _, _)| dm_members(c).is_some_and(|n| n.len() > 2))
            .count();
        report.notes_messages = self
            .sent
            .iter()
            .filter(|(_, c, _, _)| notes_of(c).is_some())
            .count();
        for (i, node) in self.nodes.iter().enumerate() {
            for (k, v) in &node.tally.rejected {
                *report.rejected.entry(k.clone()).or_default() += v;
            }
            report.synced += node.tally.synced;
            report.accepted += node.tally.accepted;
            let Some(me) = head.member_of_device(&self.dev(i)) else {
                continue;
            };
            report.members += 1;
            report.converged_ms = report.converged_ms.max(node.last_stored_ms);
            let held: HashSet<&MessageId> = node.log.ids().collect();
            let dev = self.dev(i);
            let readable_ever = |c: &str| {
                self.nodes[0].chain.versions().iter().any(|v| {
                    v.member_of_device(&dev)
                        .is_some_and(|m| v.roster.may_read(m, c))
                })
            };
            for (id, channel, author, sent_at) in &self.sent {
                let readable = head.roster.may_read(me, channel);
                let author_listed = head.member_of_device(author).is_some();
                // Written to a member after their removal, by someone who had not heard of
                // it yet (across a partition): refused by the rules, so by nobody missed.
                let after_dm_ended = head.dm_ended(channel).is_some_and(|end| *sent_at >= end);
                if readable && author_listed && !after_dm_ended {
                    if !held.contains(id) {
                        report.missed += 1;
                        if report.examples.len() < 8 {
                            report.examples.push(format!(
                                "{} lacks {id} in '{channel}' by {}",
                                node.name,
                                self.name_of(author)
                            ));
                        }
                    }
                } else if held.contains(id) && !readable_ever(channel) {
                    // Held but never readable. (What a removed author sent before the
                    // removal, or a DM with a member since removed, may be held by whoever
                    // got it in time.)
                    report.extra += 1;
                    if report.examples.len() < 8 {
                        report.examples.push(format!(
                            "{} ({}) holds {id} in '{channel}' by {}",
                            node.name,
                            me.name,
                            self.name_of(author)
                        ));
                    }
                }
            }
        }
        report
    }
}
