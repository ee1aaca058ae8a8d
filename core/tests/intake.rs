//! The intake pipeline on its own: no network, no disk (an in-memory log).

use majlis_core::message::{Envelope, Reject, Unsigned, PLAINTEXT_FORMAT};
use majlis_core::proto::{accept, MemLog, Origin, Verdict};
use majlis_core::roster::{RosterChain, RosterSigner, VerifiedRoster};
use majlis_core::{DeviceKey, OrgKey, Roster};

const NOW: u64 = 1_800_000_000_000;
const DAY: u64 = 24 * 60 * 60 * 1000;

fn org() -> (DeviceKey, RosterChain) {
    let root = OrgKey::generate();
    let admin = DeviceKey::generate();
    // Founded a week before the messages: they may be dated anywhere after it.
    let roster = Roster::genesis(&root, "o", "amina", admin.id(), NOW - 7 * DAY);
    let mut chain = RosterChain::new(root.org_id());
    chain.apply(vec![VerifiedRoster::sign(
        roster,
        RosterSigner::Root(&root),
    )]);
    (admin, chain)
}

fn msg(key: &DeviceKey, seq: u64, prev: Option<&Envelope>, text: &str) -> Envelope {
    Envelope::sign(
        key,
        Unsigned {
            format: PLAINTEXT_FORMAT,
            author: key.id(),
            channel: "general".into(),
            sent_at: NOW,
            seq,
            prev: prev.map(|p| p.id),
            body: text.as_bytes().to_vec(),
        },
    )
}

/// The same message with one signature byte flipped (same id, broken signature).
fn forged(env: &Envelope) -> Envelope {
    let mut w = env.wire.clone();
    let at = w.len() - 1;
    w[at] ^= 1;
    Envelope::decode_unverified(&w).expect("still decodes")
}

#[test]
fn a_message_is_stored_once_and_a_replay_is_a_duplicate() {
    let (key, chain) = org();
    let mut log = MemLog::default();
    let m = msg(&key, 1, None, "hi");
    let v = accept(
        &mut log,
        chain.head(),
        &[m.clone(), m.clone()],
        Origin::Gossip,
        NOW,
    );
    assert!(
        matches!(v[0], Verdict::Accepted { gap: false, .. }),
        "{v:?}"
    );
    assert_eq!(v[1], Verdict::Duplicate);
    let v = accept(&mut log, chain.head(), &[m], Origin::Sync, NOW);
    assert_eq!(v, vec![Verdict::Duplicate]);
    assert_eq!(log.len(), 1);
}

#[test]
fn a_forged_copy_ahead_of_the_real_message_does_not_shadow_it() {
    let (key, chain) = org();
    let mut log = MemLog::default();
    let m = msg(&key, 1, None, "real");
    let f = forged(&m);
    assert_eq!(f.id, m.id, "the forgery claims the real message's id");
    let v = accept(&mut log, chain.head(), &[f, m], Origin::Gossip, NOW);
    assert_eq!(v[0], Verdict::Rejected(Reject::BadSignature));
    assert!(matches!(v[1], Verdict::Accepted { .. }), "{v:?}");
}

#[test]
fn one_forged_signature_in_a_catch_up_answer_stores_none_of_it() {
    let (key, chain) = org();
    let mut log = MemLog::default();
    let a = msg(&key, 1, None, "one");
    let b = msg(&key, 2, Some(&a), "two");
    let v = accept(
        &mut log,
        chain.head(),
        &[a.clone(), forged(&b)],
        Origin::Sync,
        NOW,
    );
    assert!(
        v.iter()
            .all(|v| *v == Verdict::Rejected(Reject::BadSignature)),
        "{v:?}"
    );
    assert!(log.is_empty());
    // By gossip each stands alone.
    let v = accept(
        &mut log,
        chain.head(),
        &[a, forged(&b)],
        Origin::Gossip,
        NOW,
    );
    assert!(matches!(v[0], Verdict::Accepted { .. }));
    assert_eq!(v[1], Verdict::Rejected(Reject::BadSignature));
}

#[test]
fn chain_rules_refuse_a_second_message_at_a_seq_and_flag_gaps() {
    let (key, chain) = org();
    let mut log = MemLog::default();
    let a = msg(&key, 1, None, "one");
    let a2 = msg(&key, 1, None, "one, again, different");
    let b = msg(&key, 2, Some(&a), "two, not delivered yet");
    let c = msg(&key, 3, Some(&b), "three, after a gap");
    let far = msg(&key, 5000, Some(&a), "far beyond the gap limit");
    let v = accept(
        &mut log,
        chain.head(),
        &[a, a2, c, far],
        Origin::Gossip,
        NOW,
    );
    assert!(matches!(v[0], Verdict::Accepted { gap: false, .. }));
    assert!(matches!(v[1], Verdict::Rejected(Reject::Chain(_))), "{v:?}");
    assert!(matches!(v[2], Verdict::Accepted { gap: true, .. }), "{v:?}");
    assert!(
        matches!(v[3], Verdict::Rejected(Reject::Gap { .. })),
        "{v:?}"
    );
    // A gap is counted, not shouted; a chain break is shouted.
    assert!(!v[3].is_loud(Origin::Gossip));
    assert!(v[1].is_loud(Origin::Sync));
}

#[test]
fn a_skip_past_reserved_seqs_is_taken_and_moves_the_prefix_but_a_backward_link_is_not() {
    let (key, chain) = org();
    let mut log = MemLog::default();
    let a = msg(&key, 1, None, "one");
    // The author crashed with seqs 2..=8 reserved: its next message skips them.
    let s = msg(&key, 9, Some(&a), "nine, after a restart");
    let t = msg(&key, 10, Some(&s), "ten");
    // Names a held message that is not before it: no honest client signs that.
    let back = msg(&key, 5, Some(&s), "five, after nine?");
    let v = accept(
        &mut log,
        chain.head(),
        &[a, s, t, back],
        Origin::Gossip,
        NOW,
    );
    assert!(
        matches!(v[1], Verdict::Accepted { gap: false, .. }),
        "{v:?}"
    );
    assert!(
        matches!(v[2], Verdict::Accepted { gap: false, .. }),
        "{v:?}"
    );
    assert!(matches!(v[3], Verdict::Rejected(Reject::Chain(_))), "{v:?}");
    use majlis_core::proto::Log;
    assert_eq!(log.head("general", &key.id()).unwrap(), (10, 10));
}

#[test]
fn an_author_off_the_roster_is_refused_loudly_by_gossip_quietly_in_catch_up() {
    let (_, chain) = org();
    let stranger = DeviceKey::generate();
    let mut log = MemLog::default();
    let m = msg(&stranger, 1, None, "let me in");
    let v = accept(
        &mut log,
        chain.head(),
        std::slice::from_ref(&m),
        Origin::Gossip,
        NOW,
    );
    assert_eq!(
        v[0],
        Verdict::Rejected(Reject::UnknownDevice(stranger.id()))
    );
    assert!(v[0].is_loud(Origin::Gossip));
    // A peer whose roster is behind ours may still hold such messages: not a lie.
    assert!(!v[0].is_loud(Origin::Sync));
    // Nor is anything accepted before the roster arrives.
    let v = accept(&mut log, None, &[m], Origin::Gossip, NOW);
    assert!(matches!(v[0], Verdict::Rejected(Reject::UnknownDevice(_))));
    assert!(log.is_empty());
}

fn dated(key: &DeviceKey, seq: u64, prev: Option<&Envelope>, sent_at: u64) -> Envelope {
    Envelope::sign(
        key,
        Unsigned {
            format: PLAINTEXT_FORMAT,
            author: key.id(),
            channel: "general".into(),
            sent_at,
            seq,
            prev: prev.map(|p| p.id),
            body: format!("at {sent_at}").into_bytes(),
        },
    )
}

/// A member (a modified client) dates a message well before its previous one, to slip it
/// into the past of the conversation: refused as backdated, whichever neighbour is held;
/// a clock a little behind (NTP steps) is not.
#[test]
fn a_backdated_message_is_refused_against_either_neighbour() {
    let (key, chain) = org();
    let min = 60_000;
    let mut log = MemLog::default();
    let m1 = dated(&key, 1, None, NOW - 60 * min);
    let m2 = dated(&key, 2, Some(&m1), NOW - 61 * min);
    let m3 = dated(&key, 3, Some(&m2), NOW - 24 * 60 * min);
    let v = accept(
        &mut log,
        chain.head(),
        &[m1, m2.clone()],
        Origin::Gossip,
        NOW,
    );
    assert!(
        v.iter().all(|v| matches!(v, Verdict::Accepted { .. })),
        "{v:?}"
    );
    let v = accept(&mut log, chain.head(), &[m3], Origin::Gossip, NOW);
    assert!(
        matches!(v[0], Verdict::Rejected(Reject::Backdated { .. })),
        "{v:?}"
    );
    if let Verdict::Rejected(r) = &v[0] {
        assert_eq!(r.kind(), "backdated");
    }

    // The successor held first (a gap filled later): the late predecessor, dated after it,
    // is the one that cannot be true.
    let (key, chain) = org();
    let mut log = MemLog::default();
    let a1 = dated(&key, 1, None, NOW - 60 * min);
    let a2 = dated(&key, 2, Some(&a1), NOW - 10 * min);
    let a3 = dated(&key, 3, Some(&a2), NOW - 30 * min);
    let v = accept(&mut log, chain.head(), &[a1, a3], Origin::Sync, NOW);
    assert!(
        v.iter().all(|v| matches!(v, Verdict::Accepted { .. })),
        "{v:?}"
    );
    let v = accept(&mut log, chain.head(), &[a2], Origin::Sync, NOW);
    assert!(
        matches!(v[0], Verdict::Rejected(Reject::Backdated { .. })),
        "{v:?}"
    );
}

/// An author's first message in a channel has no neighbour to be checked against; it may
/// still not be dated more than an hour before its device joined the roster (slipped into
/// history from before it was a member). Within the hour it is taken (an admin's clock a
/// little ahead), and the sender's own client clamps to that bound.
#[test]
fn a_first_message_cannot_be_dated_before_its_device_joined() {
    let root = OrgKey::generate();
    let key = DeviceKey::generate();
    let joined = NOW - DAY;
    let roster = Roster::genesis(&root, "o", "amina", key.id(), joined);
    let mut chain = RosterChain::new(root.org_id());
    chain.apply(vec![VerifiedRoster::sign(
        roster,
        RosterSigner::Root(&root),
    )]);
    assert_eq!(chain.head().unwrap().listed_since(&key.id()), Some(joined));
    let mut log = MemLog::default();
    let min = 60_000;
    let old = dated(&key, 1, None, joined - 365 * DAY);
    let v = accept(&mut log, chain.head(), &[old], Origin::Gossip, NOW);
    assert!(
        matches!(v[0], Verdict::Rejected(Reject::Backdated { .. })),
        "{v:?}"
    );
    let v = accept(
        &mut log,
        chain.head(),
        &[dated(&key, 1, None, joined - 61 * min)],
        Origin::Sync,
        NOW,
    );
    assert!(
        matches!(v[0], Verdict::Rejected(Reject::Backdated { .. })),
        "{v:?}"
    );
    let v = accept(
        &mut log,
        chain.head(),
        &[dated(&key, 1, None, joined - 59 * min)],
        Origin::Gossip,
        NOW,
    );
    assert!(matches!(v[0], Verdict::Accepted { .. }), "{v:?}");
}

/// The chain check reads nothing above an author's highest seq held, so that seq must be
/// exact even after a crash that kept log entries the head on disk does not count: a
/// roster member's modified client re-signing seqs it already used is refused by the real
/// store after a restart, not taken as new.
#[test]
fn a_fork_after_a_crash_is_refused_by_the_store_that_reopened() {
    let (key, chain) = org();
    let dir = tempfile::tempdir().unwrap();
    let dk = majlis_core::seal::DataKey::generate();
    let a = msg(&key, 1, None, "one");
    let b = msg(&key, 2, Some(&a), "two");
    let c = msg(&key, 3, Some(&b), "three");
    {
        let mut store = majlis_core::store::Store::open(dir.path(), dk.clone()).unwrap();
        let v = accept(
            &mut store,
            chain.head(),
            &[a, b.clone(), c],
            Origin::Gossip,
            NOW,
        );
        assert!(
            v.iter().all(|v| matches!(v, Verdict::Accepted { .. })),
            "{v:?}"
        );
        // No flush: the heads stay in memory, as in a crash.
    }
    let mut store = majlis_core::store::Store::open(dir.path(), dk).unwrap();
    let fork3 = msg(&key, 3, Some(&b), "three, signed again differently");
    let fork4 = msg(&key, 4, Some(&fork3), "four, on the fork");
    let v = accept(
        &mut store,
        chain.head(),
        &[fork3, fork4],
        Origin::Gossip,
        NOW,
    );
    assert!(matches!(v[0], Verdict::Rejected(Reject::Chain(_))), "{v:?}");
    assert!(!matches!(v[1], Verdict::Accepted { .. }), "{v:?}");
}
