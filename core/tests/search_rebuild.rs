//! A rebuild of the search index from a real sealed store reads it a page at a time and
//! indexes every message once, across page boundaries.

use majlis_core::search::{self, Order, SearchIndex};
use majlis_core::Profile;

#[test]
fn a_rebuild_across_pages_indexes_every_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = Profile::init(&dir.path().join("a"), "a").unwrap();
    p.org_create("acme").unwrap();
    let chain = p.chain().unwrap();
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
