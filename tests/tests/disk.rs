//! A full disk under a real `majlisd` (needs root for a small tmpfs; CI runs it): sending
//! gives a clear error and writes nothing; what a peer sends meanwhile is not lost; when
//! space returns the node carries on by itself, without a restart.

use std::process::Command;
use std::time::{Duration, Instant};

use majlis_tests::{free_port, netns_available, wait_until, Daemon};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn new(at: &std::path::Path, mb: u32) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fill the file system holding `dir` to the last byte.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let p = dir.join("filler");
    let mut f = std::fs::File::create(&p).unwrap();
    let block = vec![0u8; 1 << 16];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
    p
}

#[test]
fn a_full_disk_refuses_clearly_loses_nothing_and_recovers_without_a_restart() {
    if !netns_available("disk full (tmpfs)") {
        return;
    }
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::new(&tmp.path().join("small"), 48);
    let mut amina = Daemon::new(&bin, &disk.0, "amina");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    amina.ok(&["init", "--name", "amina"]);
    let org = amina.ok(&["org", "create", "--name", "acme"]);
    let id = bilal.ok(&["init", "--name", "bilal"]);
    bilal.ok(&["org", "join", &org]);
    amina.ok(&["roster", "add", "--name", "bilal", "--device", &id]);
    let a_addr = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    amina.start_local(&["--no-mdns", "--listen", &a_addr]);
    bilal.start_local(&["--no-mdns", "--peer", &a_addr]);
    wait_until("connected", 30, || amina.peers().len() == 1);
    let mut acked = vec![amina.ok(&["send", "general", "before the disk filled"])];
    wait_until("delivered", 30, || bilal.history("general").len() == 1);

    let filler = fill(&disk.0);
    let out = amina.cli(&["send", "general", "while full"]);
    let err = String::from_utf8_lossy(&out.stderr);
    println!("send on a full disk: {}", err.trim());
    assert!(!out.status.success());
    assert!(
        err.contains("is full") && err.contains("nothing was written"),
        "{err}"
    );
    let file = tmp.path().join("plan.pdf");
    std::fs::write(&file, vec![7u8; 100_000]).unwrap();
    let shared = amina.cli(&["share", "general", file.to_str().unwrap()]);
    assert!(!shared.status.success());
    assert!(String::from_utf8_lossy(&shared.stderr).contains("is full"));
    // bilal goes on talking; amina cannot store it now.
    for i in 0..5 {
        acked.push(bilal.ok(&["send", "general", &format!("bilal while amina is full {i}")]));
    }
    std::thread::sleep(Duration::from_secs(1));
    let at_amina = amina.history("general").len();
    println!("amina holds {at_amina} messages while full");
    assert!(amina.peers().len() == 1, "the node stays up and connected");

    // Space returns: no restart.
    std::fs::remove_file(filler).unwrap();
    let t = Instant::now();
    acked.push(amina.ok(&["send", "general", "after space returned"]));
    wait_until("everything at both", 30, || {
        amina.history("general").len() == 7 && bilal.history("general").len() == 7
    });
    println!(
        "recovered without a restart: all 7 messages at both {:.2} s after space returned",
        t.elapsed().as_secs_f64()
    );
    let ids: Vec<String> = amina
        .history("general")
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        acked.iter().all(|a| ids.contains(a)),
        "an acknowledged message is missing"
    );
    assert!(!ids.iter().any(|i| amina
        .history("general")
        .iter()
        .any(|m| m["id"] == i.as_str() && m["text"] == "while full")));
    assert!(amina.stop() && bilal.stop());
    drop(disk);
}
