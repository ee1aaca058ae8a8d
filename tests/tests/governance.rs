//! Data governance from the command line of real `majlisd` processes (the second test on the
//! namespace LAN, needs root; CI runs it with MAJLIS_REQUIRE_NETNS=1): an admin sets
//! retention, places and releases holds and requests an erasure (a member may not); a
//! member exports their own data and the admin anyone's; the exports are read by third-party
//! parsers (Python's json + jsonschema against `docs/`, csv and email packages), and every
//! file matches the manifest's BLAKE3 hash. Every action shows in `majlisd audit`.

use std::path::{Path, PathBuf};

use majlis_tests::{netns_available, py, wait_until, Daemon, Lan};

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

/// Every file the manifest lists exists and has the BLAKE3 hash it gives; nothing else is
/// in the export but the manifest.
fn check_manifest(dir: &Path) -> serde_json::Value {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let mut listed = 0;
    for f in m["files"].as_array().unwrap() {
        let p = dir.join(f["path"].as_str().unwrap());
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len() as u64, f["bytes"].as_u64().unwrap(), "{p:?}");
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            f["blake3"].as_str().unwrap(),
            "{p:?}"
        );
        listed += 1;
    }
    let on_disk = walk(dir).len();
    assert_eq!(on_disk, listed + 1, "every file but the manifest is listed");
    m
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn retention_holds_erasure_and_exports_from_the_command_line() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    majlis_tests::start_pair_local(&mut ds, &[]);

    ds[0].ok(&["send", "general", "صباح الخير، الاجتماع في العاشرة"]);
    ds[0].ok(&[
        "send",
        "general",
        "Good morning, \"the meeting\" is at ten,\nroom 2",
    ]);
    let src = tmp.path().join("agenda.txt");
    std::fs::write(&src, "1. budget\n2. hiring\n").unwrap();
    let file_id = ds[0].ok(&["share", "general", src.to_str().unwrap()]);
    let file_id = file_id.lines().last().unwrap().trim().to_string();
    ds[1].ok(&["send", "general", "bilal's own words"]);
    wait_until("both have all four", 20, || {
        ds.iter().all(|d| d.history("general").len() == 4)
    });
    ds[0].ok(&["reply", &file_id, "ردّ على الملف"]);
    wait_until("the reply is everywhere", 20, || {
        ds[1].history("general")[2]["replies"] == 1
    });

    // A member may not govern, nor export others' data.
    let e = ds[1].fails(&["retention", "set", "--days", "30"]);
    assert!(e.contains("only admins"), "{e}");
    let e = ds[1].fails(&["export", "--all", "--out", "/tmp/never"]);
    assert!(e.contains("only an admin or the archive"), "{e}");
    let e = ds[0].fails(&["retention", "set", "--days", "0"]);
    assert!(e.contains("not a number of days"), "{e}");
    let e = ds[0].fails(&["export", "--out", "/tmp/never"]);
    assert!(e.contains("--member") || e.contains("required"), "{e}");
    // Swapped dates are a mistake to point out, not an export of nothing.
    let e = ds[0].fails(&[
        "export",
        "--all",
        "--out",
        "/tmp/never",
        "--from",
        "2026-12-04",
        "--to",
        "2026-12-01",
    ]);
    assert!(e.contains("the period is empty"), "{e}");
    assert!(!std::path::Path::new("/tmp/never").exists());

    // The admin sets retention and a hold, then an erasure that the hold holds back.
    ds[0].ok(&["retention", "set", "--days", "365", "--files-days", "30"]);
    ds[0].ok(&[
        "retention",
        "set",
        "--days",
        "forever",
        "--channel",
        "general",
    ]);
    let placed = ds[0].ok(&["hold", "add", "--member", "bilal", "--reason", "case 17"]);
    assert!(placed.starts_with("placed legal hold "), "{placed}");
    let said = ds[0].ok(&["erase", "--member", "bilal"]);
    assert!(said.contains("legal holds win over erasure"), "{said}");
    let shown = ds[0].all(&["retention", "show"]);
    assert!(
        shown.contains("org: messages 365 days, files 30 days; #general: messages forever"),
        "{shown}"
    );
    assert!(
        shown.contains("hold ") && shown.contains("case 17"),
        "{shown}"
    );
    assert!(
        shown.contains("erasure ") && shown.contains("everything bilal wrote"),
        "{shown}"
    );
    wait_until("bilal's node has the rules", 20, || {
        ds[1].all(&["hold", "list"]).contains("members bilal")
    });
    let sweep = ds[1].ok(&["retention", "sweep"]);
    assert!(
        sweep.contains("0 messages expired, 0 erased"),
        "held: {sweep}"
    );
    assert_eq!(
        ds[1].history("general").len(),
        4,
        "a hold keeps bilal's message"
    );

    // Exports: a member their own data; the admin everything, in three formats.
    let out = tmp.path().join("bilal-export");
    ds[1].ok(&[
        "export",
        "--member",
        "bilal",
        "--out",
        out.to_str().unwrap(),
    ]);
    let m = check_manifest(&out);
    assert_eq!(m["counts"]["messages"], 1);
    let e = ds[1].fails(&[
        "export",
        "--member",
        "bilal",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(e.contains("not empty"), "{e}");

    // A renamed channel is exported under both names: the wire name its messages are signed
    // under, and the one people see; so is a member an admin gave a full name.
    ds[0].ok(&["channel", "rename", "general", "lobby"]);
    ds[0].ok(&["roster", "full-name", "--name", "amina", "أمينة الحداد"]);
    let json = tmp.path().join("json");
    let csv = tmp.path().join("csv");
    let eml = tmp.path().join("eml");
    for (fmt, dir) in [("json", &json), ("csv", &csv), ("eml", &eml)] {
        let said = ds[0].ok(&[
            "export",
            "--member",
            "amina",
            "--format",
            fmt,
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(said.contains("exported 4 messages"), "{fmt}: {said}");
        let m = check_manifest(dir);
        assert_eq!(m["counts"]["files"], 1, "{fmt}: the shared file is in it");
        assert!(m["counts"]["roster_versions"].as_u64().unwrap() >= 6);
        assert_eq!(
            std::fs::read(
                dir.join(
                    m["files"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|f| f["path"].as_str().unwrap().starts_with("files/"))
                        .unwrap()["path"]
                        .as_str()
                        .unwrap()
                )
            )
            .unwrap(),
            b"1. budget\n2. hiring\n"
        );
    }
    // JSON: valid against the documented schemas, Arabic intact.
    let v = py(
        r#"
import json, sys, jsonschema
docs, out = sys.argv[1], sys.argv[2]
for schema, doc in (("export.schema.json", "messages.json"), ("export-manifest.schema.json", "manifest.json")):
    s = json.load(open(f"{docs}/{schema}", encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(s)
    jsonschema.validate(json.load(open(f"{out}/{doc}", encoding="utf-8")), s, format_checker=jsonschema.FormatChecker())
msgs = json.load(open(f"{out}/messages.json", encoding="utf-8"))["messages"]
print("|".join(m["kind"] + ":" + m["text"] for m in msgs))
print(sorted({m["channel"] + ">" + m["channel_name"] for m in msgs}))
print(sorted({m["sender"] + ">" + m["sender_name"] for m in msgs}))
"#,
        &[&docs(), &json],
    );
    assert!(
        v.ends_with("['general>lobby']\n['amina>أمينة الحداد']\n"),
        "{v}"
    );
    assert!(v.contains("message:صباح الخير، الاجتماع في العاشرة"), "{v}");
    assert!(v.contains("reply:ردّ على الملف"), "{v}");
    assert!(v.contains("file:"), "{v}");
    assert!(!v.contains("bilal's own words"), "only amina's: {v}");
    // CSV: Python's csv module reads the quoted, multi-line text back exactly.
    let v = py(
        r#"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/messages.csv", encoding="utf-8", newline="")))
print(len(rows)); print(rows[1]["text"]); print(rows[0]["sender"]); print(rows[0]["channel_name"])
print(rows[0]["sender_name"])
"#,
        &[&csv],
    );
    assert_eq!(
        v, "4\nGood morning, \"the meeting\" is at ten,\nroom 2\namina\nlobby\nأمينة الحداد\n",
        "{v}"
    );
    // EML: Python's email package parses every message; the Arabic subject and body decode.
    let v = py(
        r#"
import sys, pathlib, email
from email import policy
out = []
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.eml")):
    m = email.message_from_bytes(p.read_bytes(), policy=policy.default)
    assert m["Message-ID"] and m["Date"] and m["From"], p
    out.append(str(m["From"].addresses[0].display_name) + ">" + m.get_body(preferencelist=("plain",)).get_content().strip())
    out.append(m["Subject"] + " " + m["X-Majlis-Channel"])
print("|".join(out))
"#,
        &[&eml],
    );
    assert!(v.contains("#lobby (message) general"), "{v}");
    assert!(!v.contains("#general"), "{v}");
    assert!(
        v.contains("أمينة الحداد>صباح الخير، الاجتماع في العاشرة"),
        "{v}"
    );
    assert_eq!(v.matches("أمينة الحداد>").count(), 4, "{v}");

    // Released: the erasure applies on both nodes; the audit shows every step.
    let list = ds[0].all(&["hold", "list", "--json"]);
    let holds: serde_json::Value = serde_json::from_str(&list).unwrap();
    let id = holds[0]["id"].as_u64().unwrap().to_string();
    ds[0].ok(&["hold", "release", &id]);
    wait_until("bilal's message is erased on both", 20, || {
        ds.iter()
            .all(|d| d.history("general").iter().all(|m| m["sender"] != "bilal"))
    });
    ds[0].ok(&["roster", "receipts", "off"]);
    let e = ds[0].fails(&["roster", "receipts", "maybe"]);
    assert!(e.contains("possible values"), "{e}");
    let audit = ds[0].all(&["audit"]);
    for what in [
        "read_receipts_changed",
        "retention_changed",
        "hold_placed",
        "erasure_requested",
        "hold_released",
    ] {
        assert!(audit.contains(what), "{what}: {audit}");
    }
    assert!(
        audit.contains("on this device") && audit.contains("export") && !audit.contains("TAMPERED"),
        "{audit}"
    );
    for d in &mut ds {
        assert!(d.stop());
    }
}

/// Retention with the clock moved forward (libfaketime, +2 days; no sleeping) on the
/// namespace LAN over mDNS: the admin and the relay delete the expired messages as soon as the
/// rule is signed; a member whose node was off during all of it comes back holding them, takes
/// the rule, deletes them too, and none of them reaches anyone again.
#[test]
fn retention_with_the_clock_moved_on_the_namespace_lan() {
    if !netns_available("governance") {
        return;
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("gv", 3).unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal", "relay"]);
    for (i, d) in ds.iter_mut().enumerate() {
        d.start(&lan, i, &[]);
    }
    wait_until("all connected over mDNS", 30, || ds[0].peers().len() == 2);
    wait_until("bilal has the roster", 30, || {
        ds[1].cli(&["roster", "show"]).status.success()
    });
    ds[0].ok(&["send", "general", "old from amina"]);
    ds[1].ok(&["send", "general", "old from bilal"]);
    wait_until("all three hold both", 30, || {
        ds.iter().all(|d| d.history("general").len() == 2)
    });
    for d in &mut ds {
        assert!(d.stop());
    }

    // Two days later (for amina and the relay; bilal stays off).
    let preload = majlis_tests::faketime_preload();
    let later = ["env", preload.as_str(), "FAKETIME=+2d"];
    ds[0].start_wrapped(&lan, 0, &later, &[]);
    ds[2].start_wrapped(&lan, 2, &later, &[]);
    ds[0].ok(&["retention", "set", "--days", "1"]);
    wait_until("amina and the relay swept", 30, || {
        ds[0].history("general").is_empty() && ds[2].history("general").is_empty()
    });
    ds[0].ok(&["send", "general", "new from amina"]);
    wait_until("the relay has the new one", 30, || {
        ds[2].history("general").len() == 1
    });

    // bilal comes back with both old messages on disk and the old roster.
    ds[1].start_wrapped(&lan, 1, &later, &[]);
    wait_until("bilal took the rule, swept and caught up", 30, || {
        let h = ds[1].history("general");
        h.len() == 1 && h[0]["text"] == "new from amina"
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    let texts = |d: &Daemon| -> Vec<String> {
        d.history("general")
            .iter()
            .map(|m| m["text"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        texts(&ds[0]),
        ["new from amina"],
        "nothing came back to amina"
    );
    assert_eq!(texts(&ds[1]), ["new from amina"]);
    assert_eq!(
        ds[2].history("general").len(),
        1,
        "nothing came back to the relay"
    );
    let stats = ds[0].stats();
    assert!(
        stats["rejected"]["expired"].as_u64().unwrap_or(0) <= 2,
        "at most bilal's two old messages were offered and not taken: {stats}"
    );
    for d in &mut ds {
        assert!(d.stop());
    }
}
