//! A member's data directory restored from a backup, with real `majlisd` processes: she
//! writes a line offline before her node has caught up, which takes a seq her colleague
//! already holds another message of hers at (a fork). Her node takes the line back, fetches
//! her own later messages and sends the line again: both histories agree, line for line.

use majlis_tests::{copy_dir, free_port, org, wait_until, Daemon};

fn texts(d: &Daemon) -> Vec<String> {
    d.history("general")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_member_restored_from_a_backup_gets_her_line_through_after_all() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = org(&bin, tmp.path(), &["amina", "bilal"]);
    let b_addr = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    ds[1].start_local(&["--no-mdns", "--listen", &b_addr]);
    let amina_run = [
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--peer",
        &b_addr,
    ];
    ds[0].start_local(&amina_run);
    wait_until("connected", 20, || ds[0].peers().len() == 1);
    ds[0].ok(&["send", "general", "before the backup"]);
    wait_until("bilal has it", 20, || texts(&ds[1]).len() == 1);
    assert!(ds[0].stop());
    let backup = tmp.path().join("amina-backup");
    copy_dir(&ds[0].dir, &backup);

    ds[0].start_local(&amina_run);
    ds[0].ok(&["send", "general", "after the backup 1"]);
    ds[0].ok(&["send", "general", "after the backup 2"]);
    wait_until("bilal has three", 20, || texts(&ds[1]).len() == 3);
    assert!(ds[0].stop());

    // The disk is restored; she writes before her node has reached anyone.
    std::fs::remove_dir_all(&ds[0].dir).unwrap();
    copy_dir(&backup, &ds[0].dir);
    ds[0].ok(&["send", "general", "after the restore"]);
    ds[0].start_local(&amina_run);
    let want = [
        "before the backup",
        "after the backup 1",
        "after the backup 2",
        "after the restore",
    ];
    wait_until("both show the same four lines", 30, || {
        texts(&ds[0]) == want && texts(&ds[1]) == want
    });
    let ids = |d: &Daemon| -> Vec<String> {
        d.history("general")
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&ds[0]), ids(&ds[1]));
    // Her node said why, and doctor finds nothing left to fix.
    assert!(
        ds[0]
            .log_text()
            .contains("this data directory is an older copy"),
        "{}",
        ds[0].log_tail(20)
    );
    let doctor = ds[0].cli(&["doctor"]);
    assert!(
        doctor.status.success(),
        "{}",
        String::from_utf8_lossy(&doctor.stdout)
    );
    for d in &mut ds {
        assert!(d.stop());
    }
}
