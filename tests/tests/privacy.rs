//! Private means private, at rest and in logs, with real `majlisd` processes (loopback, no
//! namespaces needed): after a session with a known phrase in a private channel and a DM,
//! with every log at debug level, a byte scan of both data directories and of every log and
//! stdout finds the phrase nowhere. Stores are sealed by a passphrase; without one `majlisd`
//! warns at every start, and `--require-sealed` refuses.

use std::path::Path;

use majlis_tests::{free_port, wait_until, Daemon};

const PHRASE: &str = "PRIVACY-PHRASE the quarterly numbers";

fn files_with(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_with(&p, needle));
        } else if let Ok(b) = std::fs::read(&p) {
            if b.windows(needle.len()).any(|w| w == needle) {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[test]
fn no_plaintext_in_data_directories_or_logs_and_unsealed_stores_are_called_out() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let pass = tmp.path().join("passphrase");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    for d in [&mut amina, &mut bilal] {
        d.global = vec!["--passphrase-file".into(), pass.display().to_string()];
        d.log_filter = "debug".into();
    }
    amina.ok(&["init", "--name", "amina"]);
    let org = amina.ok(&["org", "create", "--name", "acme"]);
    let id = bilal.ok(&["init", "--name", "bilal"]);
    bilal.ok(&["org", "join", &org]);
    amina.ok(&["roster", "add", "--name", "bilal", "--device", &id]);
    amina.ok(&["channel", "create", "hr", "--members", "amina,bilal"]);

    let port = free_port();
    amina.start_local(&[
        "--no-mdns",
        "--listen",
        &format!("/ip4/127.0.0.1/tcp/{port}"),
    ]);
    bilal.start_local(&["--no-mdns", "--peer", &format!("/ip4/127.0.0.1/tcp/{port}")]);
    wait_until("connected", 30, || amina.peers().len() == 1);
    // Bilal lists amina only once he holds the roster she hands him; before that he may
    // not post (a CI run sent too early).
    wait_until("bilal has the roster", 30, || bilal.peers().len() == 1);
    amina.ok(&["send", "hr", &format!("{PHRASE} (hr)")]);
    bilal.ok(&["send", "@amina", &format!("{PHRASE} (dm)")]);
    wait_until("bilal reads hr", 30, || {
        bilal
            .history("hr")
            .iter()
            .any(|m| m["text"].as_str().unwrap_or("").starts_with(PHRASE))
    });
    wait_until("amina reads the DM", 30, || {
        amina
            .history("@bilal")
            .iter()
            .any(|m| m["text"].as_str().unwrap_or("").starts_with(PHRASE))
    });
    assert!(amina.stop() && bilal.stop());

    let logs = amina.log_text() + &bilal.log_text();
    assert!(
        logs.len() > 1000,
        "debug logs were written ({} bytes)",
        logs.len()
    );
    let leaks = files_with(tmp.path(), PHRASE.as_bytes());
    assert!(leaks.is_empty(), "the phrase is in {leaks:?}");
    assert!(
        !logs.contains("NOT sealed"),
        "sealed stores were called unsealed"
    );

    // No passphrase and no keyring: a warning at every start; --require-sealed refuses.
    let plain = Daemon::new(&bin, tmp.path(), "plain");
    let out = plain.cli(&["init", "--name", "plain"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOT sealed"));
    let out = plain.cli(&["id"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOT sealed"));
    // Empty settings are no settings (a unit's `Environment=MAJLIS_PASSPHRASE_FILE=`).
    let out = std::process::Command::new(&bin)
        .args(["--data", &plain.dir.display().to_string(), "id"])
        .env("MAJLIS_PASSPHRASE_FILE", "")
        .env("MAJLIS_REQUIRE_SEALED", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOT sealed"));
    let out = plain.cli(&["--require-sealed", "id"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sealing is required"));
    let strict = Daemon::new(&bin, tmp.path(), "strict");
    let out = strict.cli(&["--require-sealed", "init", "--name", "strict"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--passphrase-file"));

    // The root key goes offline: exported under its own passphrase and erased here; the
    // device can no longer sign as the org, and signs again once it is imported.
    let rootpass = tmp.path().join("rootpass");
    std::fs::write(&rootpass, "another long passphrase\n").unwrap();
    let usb = tmp.path().join("usb-org-root.key");
    let rp = rootpass.display().to_string();
    let usb_s = usb.display().to_string();
    amina.ok(&[
        "org",
        "root-key",
        "export",
        "--out",
        &usb_s,
        "--root-passphrase-file",
        &rp,
    ]);
    assert!(!amina.dir.join("org-root.key").exists());
    assert!(usb.exists());
    let e = amina.cli(&[
        "org",
        "root-key",
        "import",
        &usb_s,
        "--root-passphrase-file",
        &pass.display().to_string(),
    ]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("wrong passphrase"));
    amina.ok(&[
        "org",
        "root-key",
        "import",
        &usb_s,
        "--root-passphrase-file",
        &rp,
    ]);
    assert!(amina.dir.join("org-root.key").exists());
}
