//! A rebuild of the search index from a real sealed store reads it a page at a time and
//! indexes every message once, across page boundaries.

use majlis_core::roster::RosterChain;
use majlis_core::search::{self, Order, SearchIndex};
use majlis_core::Profile;

/// A device that founded an org of its own, and the org's roster.
fn founder(dir: &std::path::Path) -> (Profile, RosterChain) {
    let p = Profile::init(&dir.join("a"), "a").unwrap();
    p.org_create("acme").unwrap();
    let chain = p.chain().unwrap();
    (p, chain)
}

#[test]
fn a_rebuild_across_pages_indexes_every_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let (p, chain) = founder(dir.path());
    let n = 4096 + 7;
    for i in 0..n {
        p.compose(&chain, "general", &format!("w{i:05} common"))
            .unwrap();
    }
    p.store().flush().unwrap();
    let mut ix = SearchIndex::new().unwrap();
    assert_eq!(search::index_store(&mut ix, p.store(), "").unwrap(), n);
    ix.commit().unwrap();
    let me = p.device_id();
    let head = chain.head();
    let find = |ix: &SearchIndex, q: &str| {
        search::query(ix, p.store(), q, head, &me, Order::Newest, 10_000)
            .unwrap()
            .len()
    };
    for i in [0, 6, 7, 4095, 4096, n - 1] {
        assert_eq!(find(&ix, &format!("w{i:05}")), 1, "message {i} once");
    }
    assert_eq!(find(&ix, "common"), n);
    // Indexing a channel again (its keys arrived) replaces, never duplicates.
    search::index_store(&mut ix, p.store(), "general").unwrap();
    ix.commit().unwrap();
    assert_eq!(find(&ix, "common"), n);
}

/// Thread replies are acts filed under their root, not rows of the channel: a rebuild (every
/// start, and a channel whose keys arrive) finds them as a live node does, each once, edited
/// as they show, and not the one its author deleted.
#[test]
fn a_rebuild_finds_thread_replies() {
    use majlis_core::e2e::Plain;
    let dir = tempfile::tempdir().unwrap();
    let (p, chain) = founder(dir.path());
    let root = p.compose(&chain, "general", "the plan for spring").unwrap()[0].id;
    let reply = |text: &str, also_channel| {
        let act = Plain::Reply {
            to: root,
            text: text.into(),
            also_channel,
        };
        p.compose_act(&chain, "general", act).unwrap()[0].id
    };
    reply("thanks, reading it", false);
    reply("shared with everyone too", true);
    let edited = reply("first draft wording", false);
    let gone = reply("a typo here", false);
    let act = |a: Plain| p.compose_act(&chain, "general", a).unwrap();
    act(Plain::Edit {
        of: edited,
        text: "final wording".into(),
    });
    act(Plain::Delete { of: gone });
    p.store().flush().unwrap();

    let mut ix = SearchIndex::new().unwrap();
    search::index_store(&mut ix, p.store(), "").unwrap();
    ix.commit().unwrap();
    let me = p.device_id();
    let find = |q: &str| {
        search::query(&ix, p.store(), q, chain.head(), &me, Order::Newest, 100)
            .unwrap()
            .into_iter()
            .map(|h| h.message.text)
            .collect::<Vec<_>>()
    };
    assert_eq!(find("reading"), ["thanks, reading it"]);
    assert_eq!(find("everyone"), ["shared with everyone too"]);
    assert_eq!(find("wording"), ["final wording"]);
    assert!(find("typo").is_empty(), "a deleted reply is not found");
    assert_eq!(find("plan"), ["the plan for spring"]);
}
