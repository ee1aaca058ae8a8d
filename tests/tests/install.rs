//! The server install, for real: `headless/debian/majlisd.service` exactly as the package
//! ships it, run by a real systemd (PID 1 of a pid and mount namespace this test makes), set
//! up the way docs/operations.md says. Needs root (CI runs it as root with
//! MAJLIS_REQUIRE_NETNS=1) and systemd's binary (`.ci/run` installs it).
//!
//! Nothing of the host changes: inside the namespace `/usr/bin` gains `majlisd` through a
//! bind mount, `/etc/passwd` and `/etc/group` gain the `majlis` user through bind mounts of
//! copies, `/var/lib`, `/var/log` and `/run` are private, and the boot-time cleaning of
//! `/tmp` is masked.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use majlis_tests::{free_port, netns_available, wait_until, Daemon};

/// The `majlis` user inside the namespace (an id no Debian system user takes).
const UID: u32 = 64_321;

/// systemd as PID 1 of its own namespaces; killed (and with it everything it started) on drop.
struct Systemd {
    child: Child,
    pid: u32,
}

impl Systemd {
    fn boot(work: &Path, bin: &Path) -> Systemd {
        let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../headless/debian/majlisd.service");
        let script = format!(
            r#"set -e
W={work}
mount --make-rprivate /
mount -t tmpfs tmpfs /run
# /usr/bin as it is, plus majlisd: a directory of links into a second view of the real one.
# Both under /run, which the service sees (its /tmp is private, so links into $W, which may
# be under /tmp, would lead nowhere there).
B=/run/majlis-test
mkdir -p $B/realbin $B/usrbin
mount --bind /usr/bin $B/realbin
for f in $B/realbin/* $B/realbin/.[!.]*; do
  if [ -e "$f" ] || [ -L "$f" ]; then ln -s "$f" $B/usrbin/; fi
done
cp {bin} $B/usrbin/majlisd
mount --bind $B/usrbin /usr/bin
cp /etc/passwd $W/passwd; cp /etc/group $W/group
echo "majlis:x:{uid}:{uid}::/var/lib/majlis:/usr/sbin/nologin" >> $W/passwd
echo "majlis:x:{uid}:" >> $W/group
mount --bind $W/passwd /etc/passwd
mount --bind $W/group /etc/group
mkdir -p $W/varlib $W/varlog
mount --bind $W/varlib /var/lib
mount --bind $W/varlog /var/log
mkdir -p /run/systemd/system/majlisd.service.d
cp {unit} /run/systemd/system/majlisd.service
# systemd-tmpfiles empties /tmp at boot: not the host's.
ln -s /dev/null /run/systemd/system/systemd-tmpfiles-setup.service
ln -s /dev/null /run/systemd/system/tmp.mount
cat > /run/systemd/system/majlis-test.target <<EOF
[Unit]
Description=majlisd install test
Requires=basic.target
After=basic.target
EOF
exec /lib/systemd/systemd --system --unit=majlis-test.target --log-target=console
"#,
            work = work.display(),
            bin = bin.display(),
            unit = unit.display(),
            uid = UID,
        );
        let log = std::fs::File::create(work.join("systemd.log")).unwrap();
        let mut child = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--mount",
                "--mount-proc",
                "--uts",
                "--ipc",
            ])
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("unshare runs");
        // The namespace's PID 1 is unshare's one child.
        let children = format!("/proc/{0}/task/{0}/children", child.id());
        let t = Instant::now();
        let pid = loop {
            let s = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(p) = s.split_whitespace().next() {
                break p.parse().unwrap();
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the namespace did not start ({status}): {}", tail(work));
            }
            assert!(t.elapsed() < Duration::from_secs(10), "no PID 1 after 10 s");
            std::thread::sleep(Duration::from_millis(20));
        };
        let sd = Systemd { child, pid };
        let t = Instant::now();
        loop {
            let state = sd.run(&["systemctl", "is-system-running"]);
            let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
            if state == "running" || state == "degraded" {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "systemd did not finish booting ({state}): {}",
                tail(work)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        sd
    }

    /// Run a command inside the namespaces.
    fn run(&self, cmd: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-m", "-p", "-u", "-i"])
            .args(cmd)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter runs")
    }

    /// Run a command that must succeed; its stdout.
    fn ok(&self, cmd: &[&str]) -> String {
        let out = self.run(cmd);
        assert!(
            out.status.success(),
            "{} failed: {}{}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A property of the service (`systemctl show -p NAME --value`).
    fn show(&self, prop: &str) -> String {
        self.ok(&["systemctl", "show", "majlisd", "-p", prop, "--value"])
            .trim()
            .to_string()
    }

    fn journal(&self) -> String {
        String::from_utf8_lossy(
            &self
                .run(&["journalctl", "-u", "majlisd", "--no-pager"])
                .stdout,
        )
        .into_owned()
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        // SIGKILL to a namespace's PID 1 ends every process in it.
        let _ = Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn tail(work: &Path) -> String {
    let s = std::fs::read_to_string(work.join("systemd.log")).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn systemd_available() -> bool {
    Path::new("/lib/systemd/systemd").exists()
        && Command::new("nsenter").arg("--version").output().is_ok()
        || majlis_tests::skip(
            "the install test",
            "systemd and nsenter",
            "apt-get install systemd util-linux (.ci/run does).",
        )
}

/// The unit as shipped starts `majlisd` under its hardening (system call filter, read-only
/// system, private /tmp, no capabilities), as the `majlis` user, on a data directory set up
/// and sealed as docs/operations.md says; it relays a member's message, answers the CLI over
/// its socket (`doctor` finds nothing wrong), was never restarted, and stops cleanly. The
/// unit denied `setpriority`, which the search thread calls: every start was killed (SIGSYS)
/// until it was allowed, and this test failed.
#[test]
fn the_shipped_systemd_unit_runs_a_sealed_relay_and_stops_cleanly() {
    if !netns_available("install") || !systemd_available() {
        return;
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    // Under /tmp, as a CI clone is: the service's private /tmp hides it, which the set-up
    // must survive.
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("ns");
    std::fs::create_dir_all(&work).unwrap();
    let sd = Systemd::boot(&work, &bin);

    // The admin's laptop (outside the namespace; same network).
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    amina.ok(&["init", "--name", "amina"]);
    let org = amina.ok(&["org", "create", "--name", "acme"]);
    let addr = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    amina.start_local(&["--no-mdns", "--listen", &addr]);

    // docs/operations.md, "Set up the data directory": one-off commands as the service runs
    // them. The passphrase is a file only the service user reads. (Credentials, the guide's
    // LoadCredential=, are handed over by systemd through a mount this sandbox cannot make;
    // the same file reaches the process as MAJLIS_PASSPHRASE_FILE instead.)
    let pass = "/var/lib/majlis-passphrase";
    sd.ok(&[
        "sh",
        "-c",
        &format!("head -c 32 /dev/urandom | base64 > {pass}; chown majlis:majlis {pass}; chmod 400 {pass}"),
    ]);
    let env = format!("Environment=MAJLIS_PASSPHRASE_FILE={pass}");
    let mj = |args: &[&str]| -> String {
        let mut cmd = vec![
            "systemd-run",
            "--quiet",
            "--pipe",
            "--wait",
            "--collect",
            "-p",
            "User=majlis",
            "-p",
            "Group=majlis",
            "-p",
            "StateDirectory=majlis",
            "-p",
            &env,
            "/usr/bin/majlisd",
            "--data",
            "/var/lib/majlis",
            "--require-sealed",
        ];
        cmd.extend_from_slice(args);
        sd.ok(&cmd)
    };
    let id = mj(&["init", "--name", "relay-1"]);
    let id = id.lines().last().unwrap().trim().to_string();
    mj(&["org", "join", &org]);
    amina.ok(&[
        "roster", "add", "--name", "relay-1", "--device", &id, "--role", "relay",
    ]);

    // Where to find amina, and the passphrase, in place of the credential.
    let dropin = format!(
        "[Service]\nLoadCredential=\n{env}\nEnvironment=MAJLIS_RUN_ARGS=\"--no-mdns --peer {addr}\"\n"
    );
    std::fs::write(work.join("dropin.conf"), dropin).unwrap();
    sd.ok(&[
        "cp",
        &work.join("dropin.conf").display().to_string(),
        "/run/systemd/system/majlisd.service.d/test.conf",
    ]);
    sd.ok(&["systemctl", "daemon-reload"]);
    sd.ok(&["systemctl", "start", "majlisd"]);

    let relay = |args: &[&str]| -> Output {
        let mut cmd = vec![
            "runuser",
            "-u",
            "majlis",
            "--",
            "/usr/bin/majlisd",
            "--data",
            "/var/lib/majlis",
        ];
        cmd.extend_from_slice(args);
        sd.run(&cmd)
    };
    let t = Instant::now();
    while !String::from_utf8_lossy(&relay(&["peers"]).stdout).contains("amina") {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the service never reached amina: {} {} {}\n{}",
            sd.show("ActiveState"),
            sd.show("Result"),
            sd.show("NRestarts"),
            sd.journal()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    amina.ok(&["send", "general", "to the relay"]);
    wait_until("the relay holds amina's message", 20, || {
        String::from_utf8_lossy(&relay(&["history", "general"]).stdout).contains("amina:")
    });
    let doctor = relay(&["doctor"]);
    assert!(
        doctor.status.success(),
        "doctor: {}",
        String::from_utf8_lossy(&doctor.stdout)
    );

    // It ran hardened, as the user, sealed, and was never killed and restarted.
    assert_eq!(sd.show("ActiveState"), "active");
    assert_eq!(sd.show("NRestarts"), "0", "{}", sd.journal());
    assert!(!sd.show("SystemCallFilter").is_empty());
    assert_eq!(sd.show("ProtectSystem"), "strict");
    let main_pid = sd.show("MainPID");
    let status = sd.ok(&["cat", &format!("/proc/{main_pid}/status")]);
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains(&UID.to_string())),
        "runs as majlis: {status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("CapEff:") && l.trim_end().ends_with("0000000000000000")),
        "no capabilities: {status}"
    );
    let ls = sd.ok(&["ls", "-ln", "/var/lib/majlis", "/var/lib"]);
    assert!(
        ls.lines().any(|l| l.starts_with("drwx------")
            && l.ends_with(" majlis")
            && l.contains(&UID.to_string())),
        "the data directory is the user's, mode 0700: {ls}"
    );
    assert!(
        ls.contains("data.key.sealed") && !ls.contains(" data.key\n"),
        "{ls}"
    );

    sd.ok(&["systemctl", "stop", "majlisd"]);
    assert_eq!(sd.show("ActiveState"), "inactive");
    assert_eq!(sd.show("Result"), "success", "{}", sd.journal());
    assert!(sd.journal().contains("shutting down"), "{}", sd.journal());
}
