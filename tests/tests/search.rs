//! `majlisd search` with real nodes on loopback (no namespaces needed): Arabic and English
//! as people type them, filters, live updates, and privacy: a member never finds what a
//! private channel they are not in says, even though their node relays it.

use std::time::Instant;

use majlis_tests::{free_port, org, wait_until, Daemon};

fn search(d: &Daemon, q: &str) -> Vec<serde_json::Value> {
    let out = d.cli(&["search", q, "--json"]);
    assert!(
        out.status.success(),
        "search {q}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn texts(hits: &[serde_json::Value]) -> Vec<String> {
    hits.iter()
        .map(|h| h["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn search_finds_what_a_member_may_read_in_arabic_and_english() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = org(&bin, tmp.path(), &["amina", "bilal", "carol"]);
    ds[0].ok(&["channel", "create", "board", "--members", "amina,carol"]);
    let port = free_port();
    let a_addr = format!("/ip4/127.0.0.1/tcp/{port}");
    ds[0].start_local(&["--no-mdns", "--listen", &a_addr]);
    for d in &mut ds[1..] {
        d.start_local(&[
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--peer",
            &a_addr,
        ]);
    }
    wait_until("all connected", 30, || ds[0].peers().len() == 2);
    ds[0].ok(&["send", "general", "اجتماعُ الإدارة غداً في المدرسة"]);
    ds[1].ok(&[
        "send",
        "general",
        "The quarterly reports are ready, see https://intranet.test/q3",
    ]);
    ds[0].ok(&["send", "board", "salaries for next year"]);
    ds[0].ok(&["send", "@bilal", "هل وصلت الفاتورة؟"]);
    wait_until("carol has the board message", 30, || {
        ds[2].history("board").len() == 1
    });
    wait_until("bilal has three", 30, || {
        ds[1].history("general").len() == 2 && ds[1].history("@amina").len() == 1
    });

    let b = &ds[1];
    // Arabic typed without hamza, tashkeel or ta marbuta; the article dropped.
    assert_eq!(
        texts(&search(b, "الاداره")),
        ["اجتماعُ الإدارة غداً في المدرسة"]
    );
    assert_eq!(search(b, "مدرسه").len(), 1);
    assert_eq!(search(b, "فاتوره").len(), 1);
    // English stems; filters.
    assert_eq!(search(b, "report").len(), 1);
    assert_eq!(search(b, "from:amina").len(), 2);
    assert_eq!(search(b, "in:@amina").len(), 1);
    assert_eq!(search(b, "in:@Amina").len(), 1, "a name in any case");
    assert_eq!(
        search(b, "quarterly in:#General").len(),
        1,
        "a channel in any case"
    );
    assert_eq!(search(b, "has:link").len(), 1);
    let hit = &search(b, "quarterly")[0];
    assert_eq!(hit["channel"], "general");
    assert_eq!(hit["sender"], "bilal");
    assert!(
        hit["snippet"].as_str().unwrap().contains("[quarterly]"),
        "{hit}"
    );
    assert!(hit["id"].is_string() && hit["sent_at"].is_u64(), "{hit}");
    // Bilal's node holds the private message (sealed) but cannot read it: never found.
    assert!(search(b, "salaries").is_empty());
    assert!(search(b, "in:#board").is_empty());
    // Carol may read #board.
    assert_eq!(search(&ds[2], "salaries").len(), 1);

    // A message arriving now is searchable at once.
    let t = Instant::now();
    ds[0].ok(&["send", "general", "the invoice for the hospital"]);
    wait_until("bilal finds the new message", 10, || {
        search(b, "hospital").len() == 1
    });
    println!(
        "search: a new message was found at the other node {:.2} s after send",
        t.elapsed().as_secs_f64()
    );

    // Mistakes get a clear error.
    let out = b.cli(&["search", "frm:amina"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown filter 'frm:'"));

    // Killed mid-flight and started again, the index (rebuilt from the store) gives the
    // same answers as before.
    let queries = [
        "report",
        "from:amina",
        "الاداره",
        "hospital",
        "in:@amina",
        "has:link",
    ];
    let ids = |d: &Daemon| -> Vec<Vec<String>> {
        queries
            .iter()
            .map(|q| {
                search(d, q)
                    .iter()
                    .map(|h| h["id"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .collect()
    };
    let before = ids(&ds[1]);
    ds[1].kill();
    ds[1].start_local(&[
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--peer",
        &a_addr,
    ]);
    wait_until("the rebuilt index answers as before", 15, || {
        ids(&ds[1]) == before
    });

    // Offline, from the store.
    assert!(ds[1].stop());
    let b = &ds[1];
    assert_eq!(search(b, "الاداره").len(), 1);
    assert_eq!(search(b, "hospital").len(), 1);
    assert!(search(b, "salaries").is_empty());
    let out = b.cli(&["search", "hospital"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("general ["),
        "human output"
    );
    for d in &mut ds {
        assert!(d.stop());
    }
}
