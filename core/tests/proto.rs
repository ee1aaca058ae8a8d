//! The protocol core's decisions, without a network or a disk: catch-up (what to ask, what
//! to answer, whether an answer holds, when to retry) and membership (whom to admit, what a
//! removed device may still learn, when to wipe).

use majlis_core::message::{Envelope, Unsigned, PLAINTEXT_FORMAT};
use majlis_core::net::{SyncRequest, SyncResponse, DM_LIST};
use majlis_core::proto::catchup::{self, Catchup, MAX_RETRIES};
use majlis_core::proto::membership::{self, Membership};
use majlis_core::proto::{accept, MemLog, Origin};
use majlis_core::roster::{DmPolicy, RosterChain, RosterSigner, VerifiedRoster};
use majlis_core::sync::{self, Vector};
use majlis_core::{DeviceKey, OrgKey, Roster, RosterChange};

const NOW: u64 = 1_800_000_000_000;

struct Org {
    root: OrgKey,
    chain: RosterChain,
    amina: DeviceKey,
    bilal: DeviceKey,
    gita: DeviceKey,
}

/// amina (admin), bilal (member), gita (guest); `ops` for amina only; DMs for all.
fn org() -> Org {
    let root = OrgKey::generate();
    let (amina, bilal, gita) = (
        DeviceKey::generate(),
        DeviceKey::generate(),
        DeviceKey::generate(),
    );
    let mut r = Roster::genesis(&root, "o", "amina", amina.id(), NOW);
    r.policy.dms = DmPolicy::All;
    let mut chain = RosterChain::new(root.org_id());
    chain.apply(vec![VerifiedRoster::sign(r, RosterSigner::Root(&root))]);
    let mut o = Org {
        root,
        chain,
        amina,
        bilal,
        gita,
    };
    let (b, g) = (o.bilal.id(), o.gita.id());
    o.change(RosterChange::AddMember {
        name: "bilal".into(),
        device: b,
        role: None,
    });
    o.change(RosterChange::AddMember {
        name: "gita".into(),
        device: g,
        role: Some(majlis_core::Role::Guest),
    });
    o.change(RosterChange::CreateChannel {
        name: "ops".into(),
        members: Some(vec!["amina".into()]),
    });
    o
}

impl Org {
    fn change(&mut self, c: RosterChange) {
        let h = self.chain.head().unwrap();
        let next = h.roster.next(h.hash, &c, NOW).unwrap();
        let rep = self.chain.apply(vec![VerifiedRoster::sign(
            next,
            RosterSigner::Root(&self.root),
        )]);
        assert_eq!(rep.error, None);
    }
}

fn msgs(key: &DeviceKey, channel: &str, n: u64) -> Vec<Envelope> {
    let mut out: Vec<Envelope> = Vec::new();
    for seq in 1..=n {
        let env = Envelope::sign(
            key,
            Unsigned {
                format: PLAINTEXT_FORMAT,
                author: key.id(),
                channel: channel.into(),
                sent_at: NOW,
                seq,
                prev: out.last().map(|p| p.id),
                body: format!("{seq}").into_bytes(),
            },
        );
        out.push(env);
    }
    out
}

fn request(channel: &str, have: &[(majlis_core::DeviceId, u64)]) -> SyncRequest {
    SyncRequest {
        channel: channel.into(),
        have: have.to_vec(),
        held: Vec::new(),
        max_bytes: None,
        skip: None,
    }
}

#[test]
fn answers_only_what_the_requester_may_read_and_lacks() {
    let o = org();
    let mut log = MemLog::default();
    let general = msgs(&o.amina, "general", 5);
    let ops = msgs(&o.amina, "ops", 2);
    let all: Vec<Envelope> = general.iter().chain(&ops).cloned().collect();
    accept(&mut log, o.chain.head(), &all, Origin::Gossip, NOW);
    let head = o.chain.head();
    let a = o.amina.id();
    // bilal lacks general 3..5.
    let r = catchup::answer(&log, head, &o.bilal.id(), request("general", &[(a, 2)])).unwrap();
    assert_eq!(r.response.messages.len(), 3);
    assert_eq!(r.missing, Some(0), "all it lacked is in the answer");
    // An answer cut short by the requester's byte budget leaves the rest as its lag.
    let mut req = request("general", &[(a, 1)]);
    req.max_bytes = Some(1);
    let r = catchup::answer(&log, head, &o.bilal.id(), req).unwrap();
    assert_eq!(r.response.messages.len(), 1);
    assert!(r.response.more);
    assert_eq!(r.missing, Some(3), "bilal still lacks general 3..=5");
    // ops is amina's alone; a guest does not read general; a stranger reads nothing.
    let r = catchup::answer(&log, head, &o.bilal.id(), request("ops", &[]))
        .unwrap()
        .response;
    assert!(r.messages.is_empty());
    let r = catchup::answer(&log, head, &o.gita.id(), request("general", &[]))
        .unwrap()
        .response;
    assert!(r.messages.is_empty());
    let stranger = DeviceKey::generate().id();
    let r = catchup::answer(&log, head, &stranger, request("general", &[]))
        .unwrap()
        .response;
    assert!(r.messages.is_empty());
    // A request that lists more held ranges per author than honest nodes do gets nothing.
    let mut req = request("general", &[]);
    req.held = (0..=sync::MAX_RANGES as u64)
        .map(|i| (a, 10 + 2 * i, 10 + 2 * i))
        .collect();
    let r = catchup::answer(&log, head, &o.bilal.id(), req)
        .unwrap()
        .response;
    assert!(r.messages.is_empty());
}

/// Seqs as a modified client might state them: the edges, and anything.
fn any_seq() -> impl proptest::strategy::Strategy<Value = u64> {
    use proptest::prelude::*;
    prop_oneof![
        Just(0),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        0u64..8,
        any::<u64>()
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

    /// What a request states is a modified client's to choose: any numbers get an answer,
    /// never a panic. A `have` of `u64::MAX` overflowed `have + 1` twice in the responder
    /// (the plan, and the count of what the requester lacks), which stopped a node built
    /// with overflow checks (every test build). Found when a device restored from an older
    /// copy began to state exactly that for its own log.
    #[test]
    fn any_request_is_answered_without_a_panic(
        have in proptest::collection::vec((0usize..3, any_seq()), 0..4),
        held in proptest::collection::vec((0usize..3, any_seq(), any_seq()), 0..6),
        max_bytes in proptest::option::of(proptest::prelude::any::<u32>()),
        skip in proptest::option::of(proptest::prelude::any::<u32>()),
    ) {
        let o = org();
        let mut log = MemLog::default();
        accept(&mut log, o.chain.head(), &msgs(&o.amina, "general", 5), Origin::Gossip, NOW);
        accept(&mut log, o.chain.head(), &msgs(&o.bilal, "general", 3), Origin::Gossip, NOW);
        let authors = [o.amina.id(), o.bilal.id(), DeviceKey::generate().id()];
        let req = SyncRequest {
            channel: "general".into(),
            have: have.iter().map(|(a, s)| (authors[*a], *s)).collect(),
            held: held.iter().map(|(a, x, y)| (authors[*a], *x, *y)).collect(),
            max_bytes,
            skip,
        };
        let r = catchup::answer(&log, o.chain.head(), &o.bilal.id(), req).unwrap();
        proptest::prop_assert!(r.response.messages.len() <= 8);
    }
}

#[test]
fn the_dm_list_names_only_dms_the_requester_may_read() {
    let o = org();
    let mut log = MemLog::default();
    let ab = msgs(&o.amina, "@amina,bilal", 1);
    let ag = msgs(&o.amina, "@amina,gita", 1);
    accept(
        &mut log,
        o.chain.head(),
        &[ab[0].clone(), ag[0].clone()],
        Origin::Gossip,
        NOW,
    );
    let r = catchup::answer(&log, o.chain.head(), &o.bilal.id(), request(DM_LIST, &[]))
        .unwrap()
        .response;
    assert_eq!(r.channels, vec!["@amina,bilal".to_string()]);
    // And a DM list that names others' DMs is filtered on the way in.
    let head = o.chain.head().unwrap();
    let (bilal, amina) = (
        head.member_of_device(&o.bilal.id()).unwrap(),
        head.member_of_device(&o.amina.id()).unwrap(),
    );
    let lie = SyncResponse {
        channels: vec![
            "@amina,bilal".into(),
            "@amina,gita".into(),
            "general".into(),
        ],
        ..Default::default()
    };
    let wanted = catchup::dm_wanted(head, bilal, amina, lie).unwrap();
    assert_eq!(wanted, vec!["@amina,bilal".to_string()]);
}

#[test]
fn an_answer_is_checked_against_its_request() {
    let o = org();
    let general = msgs(&o.amina, "general", 4);
    let mut theirs = MemLog::default();
    accept(&mut theirs, o.chain.head(), &general, Origin::Gossip, NOW);
    let mut ours = MemLog::default();
    accept(
        &mut ours,
        o.chain.head(),
        &general[..1],
        Origin::Gossip,
        NOW,
    );
    let cu: Catchup<u32, u32> = Catchup::default();
    let (req, asked) = cu
        .request(&ours, 7, "general", &Vector::new(), None)
        .unwrap()
        .unwrap();
    let resp = catchup::answer(&theirs, o.chain.head(), &o.bilal.id(), req)
        .unwrap()
        .response;
    let checked = catchup::check(&ours, &asked, &resp).unwrap();
    assert_eq!(checked.envs.len(), 3);
    assert!(checked.next.is_none());
    // Sending what we said we hold, or another channel's message, is a lie.
    let mut bad = resp.clone();
    bad.messages
        .insert(0, serde_bytes::ByteBuf::from(general[0].wire.clone()));
    assert!(catchup::check(&ours, &asked, &bad).is_err());
    let mut bad = resp;
    bad.messages = vec![serde_bytes::ByteBuf::from(
        msgs(&o.amina, "ops", 1)[0].wire.clone(),
    )];
    assert!(catchup::check(&ours, &asked, &bad).is_err());
    // An author left out for a peer holding another branch of its log: the request to
    // that peer says it holds all of that author's, and the answer brings none of them;
    // a request to another peer still asks for them.
    let mut cu: Catchup<u32, u32> = Catchup::default();
    cu.leave_out_from(7, o.amina.id(), "general");
    let (other, _) = cu
        .request(&ours, 8, "general", &Vector::new(), None)
        .unwrap()
        .unwrap();
    assert!(!other.have.contains(&(o.amina.id(), u64::MAX)));
    let (req, asked) = cu
        .request(&ours, 7, "general", &Vector::new(), None)
        .unwrap()
        .unwrap();
    assert!(req.have.contains(&(o.amina.id(), u64::MAX)));
    assert!(req.held.iter().all(|(a, _, _)| *a != o.amina.id()));
    let resp = catchup::answer(&theirs, o.chain.head(), &o.bilal.id(), req)
        .unwrap()
        .response;
    assert!(resp.messages.is_empty());
    assert!(catchup::check(&ours, &asked, &resp).is_ok());
    // Taken in again (a peer's own branch rested long enough): asked for as before.
    cu.take_in_again(7, o.amina.id(), "general");
    let (again, _) = cu
        .request(&ours, 7, "general", &Vector::new(), None)
        .unwrap()
        .unwrap();
    assert_eq!(again.have, other.have);
}

#[test]
fn one_request_per_peer_and_channel_and_a_few_retries() {
    let log = MemLog::default();
    let mut cu: Catchup<u32, u32> = Catchup::default();
    ask(&mut cu, &log, 1, 10);
    assert!(cu
        .request(&log, 1, "general", &Vector::new(), None)
        .unwrap()
        .is_none());
    assert!(cu
        .request(&log, 2, "general", &Vector::new(), None)
        .unwrap()
        .is_some());
    // A failure on a live connection is retried MAX_RETRIES times, then left to the round.
    let mut key = 10;
    for _ in 0..MAX_RETRIES {
        let (peer, ch) = cu.failed(&key, true).expect("retried");
        let (_, asked) = cu
            .request(&log, peer, &ch, &Vector::new(), None)
            .unwrap()
            .unwrap();
        key += 1;
        cu.sent(key, peer, asked);
    }
    assert!(cu.failed(&key, true).is_none());
    // An answer resets the count; a dead connection is not retried.
    let (_, asked) = cu
        .request(&log, 1, "general", &Vector::new(), None)
        .unwrap()
        .unwrap();
    cu.sent(20, 1, asked);
    assert!(cu.answered(&20).is_some());
    assert!(cu.answered(&20).is_none(), "an answer is taken once");
    let (_, asked) = cu
        .request(&log, 1, "general", &Vector::new(), None)
        .unwrap()
        .unwrap();
    cu.sent(21, 1, asked);
    assert!(cu.failed(&21, false).is_none());
    assert_eq!(cu.requests, 6);
}

#[test]
fn membership_follows_the_roster_and_a_removed_device_learns_only_its_removal() {
    let mut o = org();
    let me = o.bilal.id();
    let m = Membership::of(&o.chain, &me);
    assert!(m.listed && !m.wipe);
    assert!(m.allowed.contains(&o.amina.id()) && !m.allowed.contains(&me));
    let mut topics: Vec<&String> = m.topics.iter().collect();
    topics.sort();
    assert_eq!(topics, ["@bilal", "general"]);
    assert!(m.policed.contains("ops") && m.policed.contains("@gita"));
    let head = o.chain.head().unwrap();
    assert!(!membership::may_subscribe(head, &me, "ops"));
    assert!(!membership::may_subscribe(head, &me, "@amina"));
    assert!(membership::may_subscribe(head, &me, "@bilal"));

    let before = o.chain.version();
    let held = o.chain.head().unwrap().hash;
    o.change(RosterChange::RemoveMember {
        name: "gita".into(),
    });
    o.change(RosterChange::CreateChannel {
        name: "after".into(),
        members: None,
    });
    let m = Membership::of(&o.chain, &me);
    assert!(m.departed.contains(&o.gita.id()));
    assert!(!m.allowed.contains(&o.gita.id()));
    // gita hears of the version that removed her and nothing after it.
    let told = membership::roster_answer(&o.chain, Some(&o.gita.id()), true, before, held);
    assert_eq!(
        told.iter().map(|v| v.version()).collect::<Vec<_>>(),
        [before + 1]
    );
    // A listed peer gets everything after what it holds; a stranger nothing.
    assert_eq!(
        membership::roster_answer(&o.chain, Some(&me), false, before, held).len(),
        2
    );
    let stranger = DeviceKey::generate().id();
    assert!(membership::roster_answer(&o.chain, Some(&stranger), false, 0, [0; 32]).is_empty());
    assert!(membership::peer_is_ahead(
        &o.chain,
        o.chain.version() + 1,
        [1; 32]
    ));
    assert!(!membership::peer_is_ahead(&o.chain, before, held));
    // On her own chain, gita's removal means: erase.
    assert!(Membership::of(&o.chain, &o.gita.id()).wipe);
}

#[test]
fn a_periodic_round_asks_one_reader_per_channel_in_turn_and_everyone_for_dms() {
    let o = org();
    let head = o.chain.head().unwrap();
    let m = |d: &DeviceKey| head.member_of_device(&d.id()).unwrap();
    // Seen from a relay-like node holding general, ops and inboxes; peers 1 = amina,
    // 2 = bilal, 3 = gita (a guest: reads neither general nor ops).
    let peers = [(1u8, m(&o.amina)), (2, m(&o.bilal)), (3, m(&o.gita))];
    let topics: Vec<String> = ["general", "ops", "@amina", "@bilal"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut asked_general = std::collections::BTreeSet::new();
    for round in 0..4 {
        let plan = catchup::round_plan(head, &topics, &peers, round);
        let general: Vec<u8> = plan
            .iter()
            .filter(|(_, c)| c == "general")
            .map(|(p, _)| *p)
            .collect();
        let ops: Vec<u8> = plan
            .iter()
            .filter(|(_, c)| c == "ops")
            .map(|(p, _)| *p)
            .collect();
        let dms: Vec<u8> = plan
            .iter()
            .filter(|(_, c)| c == DM_LIST)
            .map(|(p, _)| *p)
            .collect();
        assert_eq!(general.len(), 1, "one peer per channel per round");
        assert_ne!(general[0], 3, "never a peer that may not read it");
        assert_eq!(ops, vec![1], "ops: only amina reads it");
        assert_eq!(dms, vec![1, 2, 3], "the DM list from everyone");
        asked_general.insert(general[0]);
    }
    assert_eq!(asked_general.len(), 2, "the readers take turns");
}

/// Ask `peer` about `general` from what `log` holds; the request goes out as `key`.
fn ask(cu: &mut Catchup<u32, u32>, log: &MemLog, peer: u32, key: u32) {
    let (_, asked) = cu
        .request(log, peer, "general", &Vector::new(), None)
        .unwrap()
        .unwrap();
    cu.sent(key, peer, asked);
}

#[test]
fn a_channel_is_caught_up_from_one_peer_at_a_time() {
    let log = MemLog::default();
    let mut cu: Catchup<u32, u32> = Catchup::default();
    // Three peers connect at once (a partition heals): the first is asked, the others wait.
    assert!(!cu.queue_behind(1, "general", 0));
    ask(&mut cu, &log, 1, 10);
    assert!(cu.queue_behind(2, "general", 0));
    assert!(cu.queue_behind(3, "general", 0));
    assert!(cu.queue_behind(3, "general", 0), "queued once");
    assert!(
        !cu.queue_behind(2, "ops", 0),
        "other channels are not held up"
    );
    assert!(cu.in_flight("general"));
    // The session ends: the next in line, in order, then nobody.
    cu.answered(&10).unwrap();
    assert!(!cu.in_flight("general"));
    assert_eq!(cu.next_queued("general"), Some(2));
    assert_eq!(cu.next_queued("general"), Some(3));
    assert_eq!(cu.next_queued("general"), None);
    assert!(cu.waiting_channels().is_empty());
}

#[test]
fn an_empty_answer_that_claims_more_ends_the_session() {
    // A modified client answering "more" with nothing would otherwise be asked again forever,
    // holding up the peers queued behind it for the channel.
    let log = MemLog::default();
    let cu: Catchup<u32, u32> = Catchup::default();
    let (_, asked) = cu
        .request(&log, 1, "general", &Vector::new(), None)
        .unwrap()
        .unwrap();
    let lie = SyncResponse {
        more: true,
        ..Default::default()
    };
    assert!(catchup::check(&log, &asked, &lie).unwrap().next.is_none());
}

/// A log holding `a` messages of amina's and `b` of bilal's in `general`, and those messages.
fn two_authors(o: &Org, a: u64, b: u64) -> (MemLog, Vec<Envelope>) {
    let mut log = MemLog::default();
    let mut all = msgs(&o.amina, "general", a);
    all.extend(msgs(&o.bilal, "general", b));
    accept(&mut log, o.chain.head(), &all, Origin::Gossip, NOW);
    (log, all)
}

/// The wires of an answer, in order.
fn wires(r: &SyncResponse) -> Vec<Vec<u8>> {
    r.messages.iter().map(|m| m.to_vec()).collect()
}

#[test]
fn a_pipelined_request_skips_exactly_what_its_sibling_gets() {
    let o = org();
    let (log, _) = two_authors(&o, 600, 40);
    let head = o.chain.head();
    let ask = |max: u32, skip: Option<u32>| {
        let mut r = request("general", &[]);
        r.max_bytes = Some(max);
        r.skip = skip;
        catchup::answer(&log, head, &o.bilal.id(), r)
            .unwrap()
            .response
    };
    // What one request would get, in order: the longest answer there is, then the rest.
    let mut whole = wires(&ask(u32::MAX, None));
    assert_eq!(whole.len(), sync::MAX_BATCH, "cut by count, not bytes");
    whole.extend(wires(&ask(u32::MAX, Some(u32::MAX))));
    assert_eq!(whole.len(), 640, "the skip is cut by count too");
    // Budgets below one message, of a few messages, across the authors' boundary, past the
    // count limit: the pipelined answer starts where its sibling's ends.
    for (first, second) in [
        (1, 1),
        (1, 5_000),
        (700, 900),
        (90_000, 3_000),
        (u32::MAX, 400),
    ] {
        let a = ask(first, None);
        let b = ask(second, Some(first));
        let (a, b) = (wires(&a), wires(&b));
        assert!(!a.is_empty() && !b.is_empty(), "{first}/{second}");
        let both: Vec<Vec<u8>> = a.iter().chain(&b).cloned().collect();
        assert_eq!(both[..], whole[..both.len()], "{first}/{second}");
    }
    // Skipping everything leaves nothing, and says so.
    let mut r = request("general", &[(o.amina.id(), 590)]);
    r.skip = Some(u32::MAX);
    let r = catchup::answer(&log, head, &o.bilal.id(), r)
        .unwrap()
        .response;
    assert!(r.messages.is_empty() && !r.more);
}

/// A whole catch-up session over a slow link, two requests in flight: every message
/// arrives once, in answers that each check against what they asked, while the previous
/// answer is still unstored (the requester verifies one while the next arrives).
#[test]
fn a_slow_link_session_keeps_two_requests_in_flight_and_gets_everything_once() {
    let o = org();
    let (theirs, all) = two_authors(&o, 300, 120);
    let mut ours = MemLog::default();
    accept(&mut ours, o.chain.head(), &all[..7], Origin::Gossip, NOW);
    let mut cu: Catchup<u32, u32> = Catchup::default();
    // The peer is known slow: a 600 ms round trip and a full answer that took 2 s.
    cu.round_trip(1, 600);
    cu.measured(1, 8_192, 0, 2_000, true);
    type InFlight = std::collections::VecDeque<(u32, SyncRequest)>;
    fn send(
        cu: &mut Catchup<u32, u32>,
        ours: &MemLog,
        q: &mut InFlight,
        sent: &Vector,
        skip: Option<u32>,
    ) {
        if let Some((req, asked)) = cu.request(ours, 1, "general", sent, skip).unwrap() {
            let key = cu.requests as u32 + 1;
            cu.sent(key, 1, asked);
            q.push_back((key, req));
        }
    }
    let mut in_flight = InFlight::new();
    send(&mut cu, &ours, &mut in_flight, &Vector::new(), None);
    let (mut received, mut most, mut unstored) = (0, 0, Vec::new());
    while let Some((k, req)) = in_flight.pop_front() {
        let resp = catchup::answer(&theirs, o.chain.head(), &o.amina.id(), req)
            .unwrap()
            .response;
        let (_, asked) = cu.answered(&k).unwrap();
        let checked = catchup::check(&ours, &asked, &resp).expect("an honest answer holds");
        received += checked.envs.len();
        for (sent, skip) in cu.follow_up(1, "general", checked.next.as_ref(), 0) {
            send(&mut cu, &ours, &mut in_flight, &sent, skip);
        }
        // A pipelined request leaves once the answer ahead of it has had its time.
        if in_flight.len() < 2 {
            assert!(cu.next_due().is_some() || checked.next.is_none());
            for (_, _, sent, skip) in cu.due(u64::MAX) {
                send(&mut cu, &ours, &mut in_flight, &sent, Some(skip));
            }
        }
        most = most.max(in_flight.len());
        // The previous answer is stored now; this one after the next has been checked.
        accept(&mut ours, o.chain.head(), &unstored, Origin::Sync, NOW);
        unstored = checked.envs;
    }
    accept(&mut ours, o.chain.head(), &unstored, Origin::Sync, NOW);
    let heads = majlis_core::proto::Log::heads(&ours, "general").unwrap();
    assert_eq!(heads[&o.amina.id()], (300, 300));
    assert_eq!(heads[&o.bilal.id()], (120, 120));
    assert_eq!(received, 413, "each missing message once");
    assert_eq!(most, 2, "a second request was in flight");
    assert!(
        cu.requests > 10,
        "answers sized to the link: {}",
        cu.requests
    );
}

/// A request unanswered for `STALL_MS` (an insider keeping the stream open, or a peer gone
/// silent) holds its channel's turn no longer; a slow link's request, which may well take
/// that long, keeps it.
#[test]
fn a_stalled_request_holds_the_channel_no_longer() {
    use majlis_core::proto::catchup::STALL_MS;
    let log = MemLog::default();
    let mut cu: Catchup<u32, u32> = Catchup::default();
    let t = 1_000_000;
    let ask_at = |cu: &mut Catchup<u32, u32>, peer: u32, key: u32, at: u64| {
        let (_, mut asked) = cu
            .request(&log, peer, "general", &Vector::new(), None)
            .unwrap()
            .unwrap();
        asked.sent_ms = at;
        cu.sent(key, peer, asked);
    };
    assert!(!cu.queue_behind(1, "general", t));
    ask_at(&mut cu, 1, 10, t);
    assert!(cu.queue_behind(2, "general", t + 1));
    assert!(cu.turn_taken("general", t + STALL_MS - 1));
    // The node wakes when the request stalls, to give the turn on then.
    assert_eq!(cu.turn_free_at(t + 1), Some(t + STALL_MS));
    // Peer 1 never answers: once its request has stalled, the next in line is asked, and
    // a peer connecting now does not queue behind peer 1.
    assert!(!cu.turn_taken("general", t + STALL_MS));
    assert_eq!(
        cu.turn_free_at(t + STALL_MS + 40),
        Some(t + STALL_MS + 40),
        "a stall passed while the node was busy is still acted on"
    );
    assert_eq!(cu.next_queued("general"), Some(2));
    ask_at(&mut cu, 2, 11, t + STALL_MS);
    assert_eq!(
        cu.turn_free_at(t + STALL_MS),
        None,
        "nobody waits behind peer 2"
    );
    assert!(
        cu.queue_behind(3, "general", t + STALL_MS + 1),
        "peer 2 is asked"
    );
    assert_eq!(
        cu.turn_free_at(t + STALL_MS + 1),
        Some(t + 2 * STALL_MS),
        "peer 1's stall has passed; peer 2's is next"
    );
    assert!(!cu.queue_behind(4, "ops", t + STALL_MS + 1));
    // A radio link's request is slow by nature: it keeps its turn however long it takes.
    let mut cu: Catchup<u32, u32> = Catchup::default();
    cu.round_trip(5, 600);
    cu.measured(5, 8_192, 0, 2_000, true);
    ask_at(&mut cu, 5, 12, t);
    assert!(cu.turn_taken("general", t + 10 * STALL_MS));
    assert!(cu.queue_behind(6, "general", t + 10 * STALL_MS));
    assert_eq!(cu.turn_free_at(t), None, "a slow link never stalls");
}

#[test]
fn a_slow_links_session_does_not_hold_up_a_near_peer() {
    let log = MemLog::default();
    let mut cu: Catchup<u32, u32> = Catchup::default();
    // Peer 1 is across a radio link: 600 ms round trips, its answers slow.
    cu.round_trip(1, 600);
    cu.measured(1, 8_192, 0, 2_000, true);
    cu.round_trip(2, 1);
    cu.round_trip(4, 400);
    assert!(!cu.queue_behind(1, "general", 0));
    ask(&mut cu, &log, 1, 10);
    // Peer 2 is on the LAN: asked at once. Peer 3 (no ping yet) and peer 4 (far) wait.
    assert!(!cu.queue_behind(2, "general", 0));
    assert!(cu.queue_behind(3, "general", 0));
    assert!(cu.queue_behind(4, "general", 0));
    // Behind a session with a peer that is not slow, a near one waits as before.
    ask(&mut cu, &log, 2, 11);
    cu.round_trip(5, 1);
    assert!(cu.queue_behind(5, "general", 0));
    // Peer 3's first ping shows it near: it need not wait any longer (peer 4 still does).
    cu.answered(&11).unwrap();
    assert!(cu.near_now(3, 0).is_empty(), "no ping yet");
    cu.round_trip(3, 2);
    assert_eq!(cu.near_now(3, 0), vec!["general".to_string()]);
    assert!(cu.near_now(3, 0).is_empty(), "taken off the queue");
    cu.answered(&10).unwrap();
    assert_eq!(cu.next_queued("general"), Some(4));
}
