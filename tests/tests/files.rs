//! Files between real `majlisd` processes (loopback, static peers; no root needed): share from
//! the CLI, a relay that stores it, a receiver killed with SIGKILL mid-download that resumes
//! from the relay alone once the sender is gone, and the bytes saved equal the original.

use std::time::Duration;

use majlis_tests::{free_port, wait_until, Daemon};

fn have(d: &Daemon, blob: &str) -> (u64, u64, bool) {
    d.files()
        .iter()
        .find(|f| f["blob"] == blob)
        .map(|f| {
            (
                f["have"].as_u64().unwrap_or(0),
                f["chunks"].as_u64().unwrap_or(0),
                f["complete"] == true,
            )
        })
        .unwrap_or((0, 0, false))
}

#[test]
fn a_file_survives_a_killed_receiver_and_comes_from_the_relay_when_the_sender_is_gone() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    let mut relay = Daemon::new(&bin, tmp.path(), "relay");
    amina.ok(&["init", "--name", "amina"]);
    let org = amina.ok(&["org", "create", "--name", "acme"]);
    for (d, role) in [(&bilal, "member"), (&relay, "relay")] {
        let id = d.ok(&["init", "--name", &d.name]);
        d.ok(&["org", "join", &org]);
        amina.ok(&[
            "roster", "add", "--name", &d.name, "--device", &id, "--role", role,
        ]);
    }
    let (pa, pr) = (free_port(), free_port());
    let a_addr = format!("/ip4/127.0.0.1/tcp/{pa}");
    let r_addr = format!("/ip4/127.0.0.1/tcp/{pr}");
    amina.start_local(&["--no-mdns", "--listen", &a_addr]);
    relay.start_local(&["--no-mdns", "--listen", &r_addr, "--peer", &a_addr]);
    bilal.start_local(&["--no-mdns", "--peer", &a_addr, "--peer", &r_addr]);
    wait_until("all connected", 30, || amina.peers().len() == 2);

    // 40 MiB of data that does not compress, shared with the real CLI.
    let src = tmp.path().join("survey scan.iso");
    let mut data = vec![0u8; 40 * 1024 * 1024 + 123];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&src, &data).unwrap();
    let t = std::time::Instant::now();
    let msg = amina.ok(&[
        "share",
        "general",
        src.to_str().unwrap(),
        "--caption",
        "site survey",
    ]);
    // (Debug builds seal at a few MB/s: the AEAD's generic code is compiled unoptimized.)
    println!(
        "shared 40 MiB in {:?} (encrypt + hash + fsync)",
        t.elapsed()
    );
    let mut blob = String::new();
    wait_until("bilal sees the file message", 30, || {
        let h = bilal.history("general");
        // (Shown locked until its key grant is in; keys and message may arrive in any order.)
        match h
            .iter()
            .find(|m| m["id"] == msg.as_str() && m["locked"] == false)
        {
            Some(m) => {
                assert_eq!(m["text"], "site survey");
                assert_eq!(m["file"]["name"], "survey scan.iso");
                blob = m["file"]["blob"].as_str().unwrap().to_string();
                true
            }
            None => false,
        }
    });
    let t = std::time::Instant::now();
    wait_until("the relay stores it", 60, || have(&relay, &blob).2);
    println!("relay fetched 40 MiB in {:?}", t.elapsed());
    assert_eq!(have(&bilal, &blob).0, 0, "a big file waits until asked");

    // Asked while bilal's node is stopped: it is not on his disk, and the CLI says so.
    let out = tmp.path().join("copy.iso");
    assert!(bilal.stop());
    let early = bilal.cli(&["get", &msg, "--out", out.to_str().unwrap()]);
    assert!(!early.status.success());
    let said = String::from_utf8_lossy(&early.stderr);
    assert!(said.contains("not downloaded on this device yet"), "{said}");
    assert!(!out.exists());
    let listed = bilal.ok(&["files"]);
    assert!(
        listed.contains("survey scan.iso") && listed.contains("not downloaded"),
        "{listed}"
    );
    bilal.start_local(&["--no-mdns", "--peer", &a_addr, "--peer", &r_addr]);
    wait_until("bilal connected again", 30, || amina.peers().len() == 2);

    // bilal asks; his node is killed a quarter of the way in.
    let get = {
        let (bin, dir, out, msg) = (bin.clone(), bilal.dir.clone(), out.clone(), msg.clone());
        std::thread::spawn(move || {
            std::process::Command::new(bin)
                .arg("--data")
                .arg(dir)
                .args(["get", &msg, "--out", out.to_str().unwrap()])
                .output()
                .unwrap()
        })
    };
    let mut chunks = 0;
    wait_until("a quarter downloaded", 60, || {
        let (h, n, done) = have(&bilal, &blob);
        chunks = n;
        done || (n > 0 && h * 4 >= n)
    });
    bilal.kill();
    let killed_get = get.join().unwrap();
    assert!(
        !killed_get.status.success(),
        "get must fail when its node dies"
    );
    assert!(!out.exists(), "no partial file at the destination");

    // The sender leaves; bilal restarts with only the relay reachable, and resumes.
    assert!(amina.stop());
    bilal.start_local(&["--no-mdns", "--peer", &r_addr]);
    let (resumed, _, _) = have(&bilal, &blob);
    println!("after SIGKILL: {resumed} of {chunks} chunks kept");
    assert!(resumed > 0, "verified chunks were kept across SIGKILL");
    let t = std::time::Instant::now();
    let saved = bilal.ok(&[
        "get",
        &msg,
        "--out",
        out.to_str().unwrap(),
        "--timeout",
        "120",
    ]);
    println!(
        "resumed from the relay alone and decrypted in {:?}",
        t.elapsed()
    );
    assert_eq!(saved, out.to_str().unwrap());
    assert!(
        std::fs::read(&out).unwrap() == data,
        "the saved file differs"
    );
    let received = bilal.stats()["chunks_received"].as_u64().unwrap();
    assert!(
        received <= chunks - resumed + 12,
        "{received} chunks fetched after the restart for {} missing",
        chunks - resumed
    );
    // Wrong input gets a clear error, not a panic.
    let bad = bilal.cli(&["get", "not-an-id", "--out", "/tmp/x"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("message id"));
    let missing = bilal.cli(&["share", "general", "/nonexistent/file.pdf"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/file.pdf"));
    // The org's file policy: the relay (not an admin) cannot set it; bilal's node refuses
    // to share what it forbids, before reading the file.
    assert!(!relay
        .cli(&["roster", "files", "--max-size", "1M"])
        .status
        .success());
    let bad_size = bilal.cli(&["roster", "files", "--max-size", "lots"]);
    assert!(String::from_utf8_lossy(&bad_size.stderr).contains("is not a size"));
    std::thread::sleep(Duration::from_millis(100));
    assert!(bilal.stop() && relay.stop());
    // With its node stopped, a file already downloaded is saved from the data directory.
    let offline = tmp.path().join("offline copy.iso");
    let saved = bilal.ok(&["get", &msg, "--out", offline.to_str().unwrap()]);
    assert_eq!(saved, offline.to_str().unwrap());
    assert!(
        std::fs::read(&offline).unwrap() == data,
        "the file saved offline differs"
    );
    let listed = bilal.ok(&["files"]);
    assert!(
        listed.contains("survey scan.iso\t40.0 MiB\tcomplete"),
        "{listed}"
    );
    let unknown = bilal.cli(&["get", &"0".repeat(64), "--out", out.to_str().unwrap()]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no message 0000"));
    amina.start_local(&["--no-mdns", "--listen", &a_addr]);
    bilal.start_local(&["--no-mdns", "--peer", &a_addr]);
    amina.ok(&[
        "roster",
        "files",
        "--max-size",
        "1M",
        "--types",
        "image/*,application/pdf",
    ]);
    wait_until("bilal has the file policy", 30, || {
        String::from_utf8_lossy(&bilal.cli(&["roster", "show"]).stdout)
            .contains("files: up to 1.0 MiB")
    });
    let refused = bilal.cli(&["share", "general", src.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("allows files up to"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let png = tmp.path().join("photo.png");
    std::fs::write(&png, b"not really a png, but small").unwrap();
    bilal.ok(&["share", "general", png.to_str().unwrap()]);
    let zip = tmp.path().join("notes.zip");
    std::fs::write(&zip, b"small").unwrap();
    let refused = bilal.cli(&["share", "general", zip.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only these file types"));
    assert!(amina.stop() && bilal.stop());
}
