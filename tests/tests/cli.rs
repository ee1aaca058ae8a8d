//! The `majlisd` command line as an admin and members use it, with real processes on
//! loopback (no namespaces needed): roles and policy, direct messages with `@NAME`, and clear
//! errors (non-zero exit, a message saying what to do) for wrong arguments and refused
//! actions.

use majlis_tests::{free_port, wait_until, Daemon};

#[test]
fn admin_sets_policy_and_members_exchange_direct_messages() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    let mut bilal = Daemon::new(&bin, tmp.path(), "bilal");
    let gita = Daemon::new(&bin, tmp.path(), "gita");
    amina.ok(&["init", "--name", "amina"]);
    let org = amina.ok(&["org", "create", "--name", "acme"]);
    for (d, role) in [(&bilal, "member"), (&gita, "guest")] {
        let id = d.ok(&["init", "--name", &d.name]);
        d.ok(&["org", "join", &org]);
        amina.ok(&[
            "roster", "add", "--name", &d.name, "--device", &id, "--role", role,
        ]);
    }

    // Wrong arguments and refused actions: a clear error, nothing changed.
    let e = amina.fails(&["roster", "add", "--name", "x", "--device", "nope"]);
    assert!(e.contains("device"), "{e}");
    let e = amina.fails(&[
        "roster", "add", "--name", "x", "--device", "y", "--role", "boss",
    ]);
    assert!(e.contains("possible values"), "{e}");
    let e = amina.fails(&["send", "random", "hi"]);
    assert!(
        e.contains("no channel 'random'") && e.contains("general"),
        "{e}"
    );
    // A mistyped channel is not an empty one.
    let e = amina.fails(&["history", "genral"]);
    assert!(e.contains("no channel 'genral'"), "{e}");
    let e = amina.fails(&["send", "@nobody", "hi"]);
    assert!(e.contains("no member named 'nobody'"), "{e}");
    let e = amina.fails(&["send", "@gita", "hi"]);
    assert!(e.contains("not allowed by the org policy"), "{e}");
    let e = amina.fails(&["roster", "policy", "--dms", "sometimes"]);
    assert!(e.contains("possible values"), "{e}");
    assert!(amina.ok(&["roster", "show"]).contains("general"));
    // A peer without a port, or on a transport nodes do not speak: told what to write.
    for bad in ["10.1.2.3", "/ip4/10.1.2.3/udp/7441/quic-v1"] {
        let e = amina.fails(&["run", "--no-mdns", "--peer", bad]);
        assert!(e.contains("--peer") && e.contains("IP:PORT"), "{e}");
    }
    // An address this host does not have: what it means, and the system's reason.
    let e = amina.fails(&["run", "--no-mdns", "--listen", "10.99.99.99:7441"]);
    assert!(
        e.contains("cannot listen on /ip4/10.99.99.99/tcp/7441: this machine has no such address (the network interface is down, or the address is another machine's) [Cannot assign"),
        "{e}"
    );
    // A port another program holds: said so, with the advice to pick another address.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let e = amina.fails(&["run", "--no-mdns", "--listen", &format!("127.0.0.1:{port}")]);
    assert!(
        e.contains("another program listens on that port already")
            && e.contains("pick another --listen"),
        "{e}"
    );
    drop(held);

    // Policy: DMs off, then on for everyone (guests too); the audit log shows both.
    amina.ok(&["roster", "policy", "--dms", "off"]);
    let e = amina.fails(&["send", "@bilal", "hi"]);
    assert!(e.contains("not allowed"), "{e}");
    amina.ok(&["roster", "policy", "--dms", "all"]);
    let audit = amina.cli(&["audit", "--json"]);
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert_eq!(audit.matches("policy_changed").count(), 2, "{audit}");

    // Bilal needs the roster: he gets it when he connects (bootstrap exception). He gives
    // amina's address as people write one.
    let port = free_port();
    let addr = format!("/ip4/127.0.0.1/tcp/{port}");
    amina.start_local(&["--no-mdns", "--listen", &addr]);
    bilal.start_local(&[
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--peer",
        &format!("127.0.0.1:{port}"),
    ]);
    wait_until("bilal connected", 20, || amina.peers().len() == 1);
    amina.ok(&["send", "@bilal", "salam"]);
    amina.ok(&["send", "@gita", "welcome, contractor"]);
    wait_until("bilal got the DM", 20, || {
        bilal.history("@amina").len() == 1
    });
    bilal.ok(&["send", "@amina", "wa alaykum"]);
    wait_until("amina got the reply", 20, || {
        amina.history("@bilal").len() == 2
    });
    let texts: Vec<String> = amina
        .history("@bilal")
        .iter()
        .map(|m| {
            format!(
                "{}: {}",
                m["sender"].as_str().unwrap(),
                m["text"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(texts, ["amina: salam", "bilal: wa alaykum"]);
    // The DM with the guest is amina's and gita's only. Names are read from the reader's
    // side, so to bilal `@amina,gita` is his own group conversation with them (empty), and
    // he cannot name theirs (core's tests check that his store holds none of it).
    assert_eq!(
        bilal.history("@amina,gita"),
        Vec::<serde_json::Value>::new()
    );
    assert_eq!(amina.history("@gita").len(), 1);
    // Amina's ticks, as the app shows them: bilal's device holds her line (his catch-up
    // request said so), gita's device was never up.
    let plain = |d: &Daemon, with: &str| {
        String::from_utf8_lossy(&d.cli(&["history", with]).stdout).into_owned()
    };
    wait_until("amina's DM shows delivered", 20, || {
        plain(&amina, "@bilal").contains("amina: salam  ✓✓ delivered\n")
    });
    assert_eq!(
        amina.history_as_shown("@bilal")[0]["delivered_to"],
        serde_json::json!(["bilal"])
    );
    assert!(plain(&amina, "@gita").contains("amina: welcome, contractor  ✓ sent\n"));
    // Only our own lines carry ticks.
    let text = plain(&amina, "@bilal");
    assert!(text.contains("bilal: wa alaykum\n"), "{text}");
    assert!(bilal.history_as_shown("@amina")[0]
        .get("delivered_to")
        .is_none());
    assert!(amina.stop() && bilal.stop());
    // Offline, history @NAME reads the local store, ticks included.
    assert_eq!(bilal.history("@amina").len(), 2);
    assert!(plain(&amina, "@bilal").contains("amina: salam  ✓✓ delivered\n"));
    // Bilal leaves: the conversation stays amina's to read, and a line to him is refused
    // with the reason.
    amina.ok(&["roster", "remove", "--name", "bilal"]);
    assert_eq!(amina.history("@bilal").len(), 2);
    let e = amina.fails(&["send", "@bilal", "are you there?"]);
    assert!(e.contains("bilal has left the organization"), "{e}");
}

/// The quick start as a new user scripts it: `majlisd run &` and, at once, `majlisd send`.
/// The starting node holds the data directory before its local API answers; the command
/// waits for it instead of failing, and a directory held by a live node is never reported
/// as a full or damaged disk.
#[test]
fn a_command_right_after_run_waits_for_the_starting_node() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut amina = Daemon::new(&bin, tmp.path(), "amina");
    amina.ok(&["init", "--name", "amina"]);
    amina.ok(&["org", "create", "--name", "acme"]);
    for i in 0..3 {
        amina.launch(&["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
        let out = amina.cli(&["send", "general", &format!("hi {i}")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "send right after run failed: {stderr}"
        );
        assert!(!stderr.contains("disk"), "{stderr}");
        wait_until("the message is in history", 15, || {
            amina
                .history("general")
                .iter()
                .any(|m| m["text"] == format!("hi {i}"))
        });
        // A command only a stopped node can run says who holds the directory.
        amina.wait_api();
        let e = amina.fails(&["org", "create", "--name", "other"]);
        assert!(e.contains("in use") && !e.contains("disk"), "{e}");
        // A second node for the same directory is refused at once, saying why.
        let t = std::time::Instant::now();
        let e = amina.fails(&["run", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
        assert!(e.contains("already running"), "{e}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            t.elapsed()
        );
        assert!(amina.stop());
    }
    assert_eq!(amina.history("general").len(), 3);
}

/// Threads, edits, deletions and reactions from the command line of two real nodes: what
/// one member does, the other's `history` and `thread` show; refused actions say why.
#[test]
fn replies_edits_deletions_and_reactions_from_the_command_line() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    majlis_tests::start_pair_local(&mut ds, &[]);

    let id = ds[0].ok(&["send", "general", "standup at 9"]);
    let id = id.lines().last().unwrap().trim().to_string();
    wait_until("bilal has it", 20, || ds[1].history("general").len() == 1);
    ds[1].ok(&["reply", &id, "I'll be late"]);
    ds[1].ok(&["react", &id, "👍"]);
    ds[0].ok(&["edit", &id, "standup at 9:30"]);
    let e = ds[1].fails(&["edit", &id, "no standup"]);
    assert!(e.contains("only amina can edit"), "{e}");
    let e = ds[1].fails(&["react", &id, "two words"]);
    assert!(e.contains("not a reaction"), "{e}");
    let e = ds[1].fails(&["delete", &"0".repeat(64)]);
    assert!(e.contains("no message"), "{e}");

    wait_until("bilal sees the edit", 20, || {
        ds[1]
            .history("general")
            .first()
            .is_some_and(|m| m["text"] == "standup at 9:30" && m["edited"] == true)
    });
    wait_until("amina sees the reply and the reaction", 20, || {
        let h = ds[0].history("general");
        h.len() == 1 && h[0]["replies"] == 1 && h[0]["reactions"][0]["emoji"] == "👍"
    });
    let text = ds[0].all(&["history", "general"]);
    assert!(
        text.contains("standup at 9:30 (edited) [👍 1] [1 reply from bilal"),
        "{text}"
    );
    let thread = ds[0].all(&["thread", &id, "--json"]);
    let texts: Vec<String> = thread
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].to_string())
        .collect();
    assert_eq!(texts, ["\"standup at 9:30\"", "\"I'll be late\""]);

    // The admin deletes it; both show it deleted, and nothing more can be done to it.
    ds[0].ok(&["delete", &id]);
    wait_until("bilal sees it deleted", 20, || {
        ds[1].history("general")[0]["deleted"] == true
    });
    let e = ds[1].fails(&["react", &id, "🎉"]);
    assert!(e.contains("was deleted"), "{e}");
    for d in &mut ds {
        assert!(d.stop());
    }
}

/// A message is named on the command line by the first digits of its id, as `history
/// --ids` shows them (like a short commit hash), through the running node or, with none, the
/// store; too few digits, or digits that name none, get a clear error. `history --before`
/// pages back from one; `threads` lists the thread both take part in, through the running
/// node, and from the store one amina is only mentioned in too. An answer whose
/// reader has gone (`| head -1`) ends the command quietly, not with a panic.
#[test]
fn a_message_is_named_by_the_first_digits_its_history_shows() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    majlis_tests::start_pair_local(&mut ds, &[]);
    for text in ["standup at 9", "lunch at one", "review at four"] {
        ds[0].ok(&["send", "general", text]);
    }
    wait_until("bilal has them", 20, || ds[1].history("general").len() == 3);
    let ids: Vec<String> = ds[1]
        .history("general")
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    let text = ds[1].all(&["history", "general", "--ids"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for (line, id) in lines.iter().zip(&ids) {
        assert!(line.starts_with(&format!("{} [", &id[..8])), "{line}");
    }
    assert!(lines[1].ends_with("amina: lunch at one"), "{text}");

    let lunch = &ids[1];
    ds[1].ok(&["react", &lunch[..8], "👍"]);
    let reply = ds[1].ok(&["reply", &lunch[..6], "count me in"]);
    wait_until("amina sees the reaction and the reply on lunch", 20, || {
        let h = ds[0].history("general");
        h.len() == 3
            && h[1]["id"] == lunch.as_str()
            && h[1]["reactions"][0]["emoji"] == "👍"
            && h[1]["replies"] == 1
    });
    let e = ds[1].fails(&["react", &lunch[..5], "👍"]);
    assert!(e.contains("6 or more"), "{e}");
    let unknown = (0..=0xffu32)
        .map(|n| format!("{n:02x}0000"))
        .find(|p| {
            !ids.iter()
                .chain([&reply])
                .any(|id| id.starts_with(p.as_str()))
        })
        .unwrap();
    let e = ds[1].fails(&["react", &unknown, "👍"]);
    assert!(
        e.contains("no message on this device has an id starting with"),
        "{e}"
    );
    let found = ds[1].all(&["search", "lunch", "--ids"]);
    assert!(found.starts_with(&lunch[..8]), "{found}");
    // The threads each takes part in: amina's message bilal replied to, for both.
    for d in &ds {
        let threads = d.all(&["threads", "--ids"]);
        let lines: Vec<&str> = threads.lines().collect();
        assert_eq!(lines.len(), 2, "{threads}");
        assert!(
            lines[0].starts_with(&format!("{} general [", &lunch[..8])),
            "{threads}"
        );
        assert!(lines[0].ends_with("amina: lunch at one"), "{threads}");
        assert!(
            lines[1].contains("1 reply, the latest [") && lines[1].ends_with("bilal: count me in"),
            "{threads}"
        );
    }
    // Older history a page at a time, before a message named by its digits; a page cut by
    // the limit says how to see the older ones.
    let cut = ds[1].cli(&["history", "general", "--limit", "2"]);
    let hint = format!(
        "(older messages: majlisd history general --before {})",
        &ids[1][..8]
    );
    assert!(
        String::from_utf8_lossy(&cut.stderr).contains(&hint),
        "{cut:?}"
    );
    assert_eq!(String::from_utf8_lossy(&cut.stdout).lines().count(), 2);
    let whole = ds[1].cli(&["history", "general", "--limit", "3"]);
    assert!(!String::from_utf8_lossy(&whole.stderr).contains("older messages"));
    assert_eq!(String::from_utf8_lossy(&whole.stdout).lines().count(), 3);
    let page = ds[1].all(&[
        "history",
        "general",
        "--limit",
        "1",
        "--before",
        &ids[2][..8],
    ]);
    assert!(page.contains("amina: lunch at one"), "{page}");
    assert_eq!(page.lines().count(), 1, "{page}");
    let e = ds[1].fails(&["history", "@amina", "--before", &ids[2][..8]]);
    assert!(e.contains("not in that conversation"), "{e}");

    // A thread amina is only mentioned in: hers to follow too (read from the store below).
    let van = ds[1].ok(&["send", "general", "@amina the van is back"]);
    ds[1].ok(&["reply", &van[..8], "it is at gate 2"]);
    wait_until("amina holds his reply", 20, || {
        ds[0].all(&["thread", &van[..8], "--ids"]).lines().count() == 2
    });

    // A reader that has gone: the pipe is closed before majlisd writes a line.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(&bin)
        .arg("--data")
        .arg(&ds[1].dir)
        .args(["history", "general", "--ids"])
        .stdout(writer)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !said.contains("panicked"), "{said}");

    // No node running: the store names it.
    for d in &mut ds {
        assert!(d.stop());
    }
    let page = ds[1].all(&["history", "general", "--before", &lunch[..8]]);
    assert!(page.contains("amina: standup at 9"), "{page}");
    assert_eq!(page.lines().count(), 1, "{page}");
    // Its link, as the app's "Copy link" gives it, names it too.
    let linked = ds[1].all(&["thread", &format!("majlis:message/{lunch}"), "--ids"]);
    let thread = ds[1].all(&["thread", &lunch[..7], "--ids"]);
    assert_eq!(linked, thread);
    let lines: Vec<&str> = thread.lines().collect();
    assert_eq!(lines.len(), 2, "{thread}");
    assert!(
        lines[1].starts_with(&reply[..8]) && lines[1].contains("count me in"),
        "{thread}"
    );
    let threads = ds[0].all(&["threads", "--json"]);
    let t: Vec<serde_json::Value> = threads
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<_> = t
        .iter()
        .map(|t| (&t["root"]["id"], &t["last"]["text"], &t["shown"]))
        .collect();
    let (general, van, lunch) = (
        serde_json::json!("general"),
        serde_json::json!(van),
        serde_json::json!(lunch),
    );
    let (gate, count_me) = (
        serde_json::json!("it is at gate 2"),
        serde_json::json!("count me in"),
    );
    assert_eq!(
        seen,
        [(&van, &gate, &general), (&lunch, &count_me, &general)],
        "{threads}"
    );
}

/// What `cmd` prints, given `input` on its standard input.
trait WithStdin {
    fn output_with_stdin(&mut self, input: &[u8]) -> std::process::Output;
}

impl WithStdin for std::process::Command {
    fn output_with_stdin(&mut self, input: &[u8]) -> std::process::Output {
        use std::io::Write;
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }
}

/// `history --follow` prints the history, then each new message and reply once, in order,
/// as the running node gets them, a message piped into `send CHANNEL -` among them; a
/// reaction or an edit says what it did to which message (and so does `run
/// --print-messages`); a channel bilal may not read is not followed, nor without a running
/// node (told to start one).
#[test]
fn history_follow_prints_each_new_message_as_it_arrives() {
    use std::io::BufRead;
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    majlis_tests::start_pair_local(&mut ds, &["--print-messages"]);
    let first = ds[0].ok(&["send", "general", "before"]);
    wait_until("bilal has it", 20, || ds[1].history("general").len() == 1);
    let mut child = std::process::Command::new(&bin)
        .arg("--data")
        .arg(&ds[1].dir)
        .args(["history", "general", "--follow"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let next = || rx.recv_timeout(std::time::Duration::from_secs(20));
    assert!(next().unwrap().ends_with("amina: before"));
    for text in ["one", "two", "three"] {
        ds[0].ok(&["send", "general", text]);
    }
    ds[0].ok(&["react", &first, "👍"]);
    ds[0].ok(&["reply", &first, "four"]);
    let lines: Vec<String> = (0..5).map(|_| next().unwrap()).collect();
    let reacted = format!("amina reacted 👍 to {}", &first[..8]);
    let ends = [
        "amina: one",
        "amina: two",
        "amina: three",
        reacted.as_str(),
        "↳ amina: four",
    ];
    for (line, end) in lines.iter().zip(ends) {
        assert!(line.ends_with(end), "{lines:?}");
    }
    ds[0].ok(&["edit", &first, "before, edited"]);
    let edited = format!("amina edited {}: before, edited", &first[..8]);
    assert!(next().unwrap().ends_with(&edited));
    ds[0].ok(&["send", "general", "five"]);
    assert!(next().unwrap().ends_with("amina: five"), "nothing between");
    // A script's output, piped in (`-`): its lines, without the last newline.
    let send = std::process::Command::new(&bin)
        .arg("--data")
        .arg(&ds[0].dir)
        .args(["send", "general", "-"])
        .stdin(std::process::Stdio::piped())
        .output_with_stdin(b"build failed\nsee the log\n");
    assert!(
        send.status.success(),
        "{}",
        String::from_utf8_lossy(&send.stderr)
    );
    assert!(next().unwrap().ends_with("amina: build failed"));
    assert_eq!(next().unwrap(), "see the log");
    child.kill().unwrap();
    child.wait().unwrap();
    // A follow whose reader goes (`| grep -m1`) ends then, not at the next message.
    let mut short = std::process::Command::new(&bin)
        .arg("--data")
        .arg(&ds[1].dir)
        .args(["history", "general", "--follow", "--limit", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut shown = std::io::BufReader::new(short.stdout.take().unwrap()).lines();
    assert!(shown
        .next()
        .unwrap()
        .unwrap()
        .ends_with("amina: build failed"));
    assert_eq!(shown.next().unwrap().unwrap(), "see the log");
    // All written: the follow waits for the node's next message when its reader goes.
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(shown);
    let t = std::time::Instant::now();
    let ended = loop {
        if let Some(st) = short.try_wait().unwrap() {
            break Some(st);
        }
        if t.elapsed() > std::time::Duration::from_secs(5) {
            short.kill().unwrap();
            short.wait().unwrap();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(
        ended.is_some_and(|st| st.success()),
        "the follow outlived its reader: {ended:?}"
    );
    // `run --print-messages` prints the same lines, a message with its short id.
    let printed = ds[0].log_text();
    for line in [
        format!("#general {} [", &first[..8]),
        format!("] amina reacted 👍 to {}", &first[..8]),
        format!("] amina edited {}: before, edited", &first[..8]),
    ] {
        assert!(printed.contains(&line), "{line} not in {printed}");
    }
    // A channel bilal may not read is not followed either.
    ds[0].ok(&["channel", "create", "board", "--members", "amina"]);
    wait_until("bilal knows of #board", 20, || {
        !ds[1].fails(&["history", "board"]).contains("no channel")
    });
    let e = ds[1].fails(&["history", "board", "--follow"]);
    assert_eq!(e, ds[1].fails(&["history", "board"]));
    // Nor by a client of the node's socket that asks to follow it without the history.
    let socket = std::os::unix::net::UnixStream::connect(ds[1].dir.join("majlisd.sock")).unwrap();
    let mut w = socket.try_clone().unwrap();
    std::io::Write::write_all(&mut w, b"{\"cmd\":\"follow\",\"channel\":\"board\"}\n").unwrap();
    let mut answer = String::new();
    std::io::BufReader::new(socket)
        .read_line(&mut answer)
        .unwrap();
    assert!(answer.starts_with("{\"error\""), "{answer}");
    for d in &mut ds {
        assert!(d.stop());
    }
    let e = ds[1].fails(&["history", "general", "-f"]);
    assert!(e.contains("start `majlisd run`"), "{e}");
}

/// A client of the node's local socket that sends a line that is not text, or one that never
/// ends, is told why and cut off; the node's memory does not grow with such a line, and
/// it goes on serving everyone else (`api::MAX_REQUEST`).
#[test]
fn the_nodes_socket_refuses_what_it_cannot_read_and_goes_on() {
    use std::io::{Read, Write};
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    majlis_tests::start_pair_local(&mut ds, &[]);
    let ask = |bytes: &[u8]| -> String {
        let mut s =
            std::os::unix::net::UnixStream::connect(ds[0].dir.join("majlisd.sock")).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        // Written on a thread: the node may stop reading (and answer) before all of it.
        let mut w = s.try_clone().unwrap();
        let bytes = bytes.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = w.write_all(&bytes);
            let _ = w.shutdown(std::net::Shutdown::Write);
        });
        // The answer, then the end (or a reset: the node closes on a client still writing).
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !answer.is_empty() => {
                    break
                }
                Err(e) => panic!("an answer, then the end: {e:?}"),
            }
        }
        let _ = writer.join();
        String::from_utf8_lossy(&answer).to_string()
    };
    let rss = || -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", ds[0].pid().unwrap())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    };
    let answer = ask(b"{\"cmd\":\"send\",\"channel\":\"general\",\"text\":\"\xff\xfe\"}\n");
    assert!(answer.starts_with("{\"error\""), "{answer}");
    assert!(answer.contains("not UTF-8"), "{answer}");
    // A last request without its newline is still answered.
    let answer = ask(b"{\"cmd\":\"peers\"}");
    assert!(answer.starts_with("{\"peers\""), "{answer}");
    let before = rss();
    let endless = vec![b'a'; 64 << 20];
    let answer = ask(&endless);
    assert!(answer.contains("a request over 1024 KiB"), "{answer}");
    let grew = rss().saturating_sub(before);
    assert!(
        grew < 16 << 10,
        "64 MiB without a newline grew the node by {grew} kB"
    );
    // The node goes on: a message sent now reaches bilal, and nothing else was sent.
    ds[0].ok(&["send", "general", "still here"]);
    wait_until("bilal has it", 20, || ds[1].history("general").len() == 1);
    assert_eq!(ds[0].history("general")[0]["text"], "still here");
    for d in &mut ds {
        assert!(d.stop());
    }
}

/// A colleague's message with terminal escape sequences (set the window title, clear the
/// screen, recolour) is printed by `history` and `search` with its control characters
/// written out, so it cannot drive the reader's terminal; `--json` keeps the text as sent.
/// (Statuses, names and poll options refuse control characters when they are made.)
#[test]
fn a_colleagues_text_cannot_drive_the_terminal() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    majlis_tests::start_pair_local(&mut ds, &[]);
    let sneaky = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m invoice";
    ds[0].ok(&["send", "general", sneaky]);
    wait_until("bilal has it", 20, || ds[1].history("general").len() == 1);
    assert_eq!(ds[1].history("general")[0]["text"], sneaky);
    let shown = r"\u001b]0;pwned\u0007\u001b[2J\u009b31m invoice";
    let text = ds[1].all(&["history", "general"]);
    assert!(text.contains(shown), "{text}");
    let found = ds[1].all(&["search", "invoice"]);
    assert!(found.contains("pwned"), "{found}");
    for out in [text, found] {
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    }
    for d in &mut ds {
        assert!(d.stop());
    }
}

/// Channel details from the command line of two real nodes: a topic and a pin set on one
/// show in the other's `channel show`; leaving an open channel shows there too; a restricted
/// channel cannot be left by its member.
#[test]
fn topic_pins_and_leaving_from_the_command_line() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    ds[0].ok(&["channel", "create", "board", "--members", "amina,bilal"]);
    // Names nobody could tell apart from an existing one are refused, with what to type.
    let e = ds[0].fails(&["channel", "create", "#news"]);
    assert!(
        e.contains("starts with '#'") && e.contains("try 'news'"),
        "{e}"
    );
    let e = ds[0].fails(&["channel", "create", "Board"]);
    assert!(e.contains("only in case"), "{e}");
    let e = ds[0].fails(&["channel", "create", "bоard"]); // a Cyrillic "о"
    assert!(e.contains("looks like the channel 'board'"), "{e}");
    let other = majlis_tests::Daemon::new(&bin, tmp.path(), "other");
    let device = other.ok(&["init", "--name", "other"]);
    let e = ds[0].fails(&["roster", "add", "--name", "biIal", "--device", &device]);
    assert!(e.contains("looks like the member 'bilal'"), "{e}");
    majlis_tests::start_pair_local(&mut ds, &[]);

    // A channel as the views show it, in any case.
    let id = ds[0].ok(&["send", "#General", "holiday rota"]);
    let id = id.lines().last().unwrap().trim().to_string();
    wait_until("bilal has it", 20, || ds[1].history("general").len() == 1);
    ds[0].ok(&[
        "channel",
        "topic",
        "general",
        "Company news",
        "--description",
        "Announcements for everyone",
    ]);
    ds[1].ok(&["pin", &id]);
    ds[1].ok(&["channel", "leave", "#General"]);
    let e = ds[1].fails(&["channel", "leave", "board"]);
    assert!(e.contains("an admin adds or removes them"), "{e}");
    let e = ds[1].fails(&["pin", &id]);
    assert!(e.contains("already pinned"), "{e}");

    wait_until("amina's node shows the pin and bilal gone", 20, || {
        let out = ds[0].cli(&["channel", "show", "general", "--json"]);
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        v["details"]["topic"] == "Company news"
            && v["pinned"][0]["text"] == "holiday rota"
            && v["details"]["left"][0] == "bilal"
    });
    let out = ds[1].cli(&["channel", "show", "general"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("topic: Company news (set by amina")
            && text.contains("description: Announcements for everyone")
            && text.contains("pinned: 1")
            && text.contains("holiday rota"),
        "{text}"
    );
    // A pin is listed with the short id that unpins it.
    let pinned = text.lines().find(|l| l.contains("holiday rota")).unwrap();
    let short = pinned.split_whitespace().next().unwrap();
    assert!(id.starts_with(short) && short.len() == 8, "{pinned}");
    ds[0].ok(&["pin", short, "--remove"]);
    wait_until("bilal sees it unpinned", 20, || {
        ds[1]
            .all(&["channel", "show", "general"])
            .contains("pinned: 0")
    });
    // None of it is a row of the channel's history.
    assert_eq!(ds[1].history("general").len(), 1);
    for d in &mut ds {
        assert!(d.stop());
    }
}

/// An admin changes who is on a private channel from the command line, offline and then
/// against the running node: a member put on it reads it, one taken off is told he may no
/// longer, at once. Mistakes get a reason and change nothing.
#[test]
fn an_admin_puts_members_on_a_channel_and_takes_them_off() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    ds[0].ok(&["channel", "create", "legal", "--members", "amina"]);
    let e = ds[0].fails(&["channel", "members", "legal"]);
    assert!(e.contains("--add") && e.contains("--everyone"), "{e}");
    let e = ds[0].fails(&["channel", "members", "general", "--add", "bilal"]);
    assert!(e.contains("#general is open to every member"), "{e}");
    let e = ds[0].fails(&["channel", "members", "legal", "--add", "zed"]);
    assert!(e.contains("'zed', who is not a member"), "{e}");
    let e = ds[0].fails(&["channel", "members", "legal", "--remove", "amina"]);
    assert!(e.contains("no members left"), "{e}");
    ds[0].ok(&["channel", "members", "legal", "--add", "bilal"]);

    majlis_tests::start_pair_local(&mut ds, &[]);
    ds[0].ok(&["send", "legal", "the contract is signed"]);
    wait_until("bilal reads #legal", 20, || {
        ds[1].cli(&["history", "legal", "--json"]).status.success()
            && ds[1].history("legal").len() == 1
    });
    let show = |d: &majlis_tests::Daemon| {
        String::from_utf8_lossy(&d.cli(&["channel", "show", "legal"]).stdout).into_owned()
    };
    assert!(show(&ds[0]).starts_with("members: amina, bilal\n"));
    ds[0].ok(&["channel", "members", "legal", "--remove", "bilal"]);
    assert!(show(&ds[0]).starts_with("members: amina\n"));
    wait_until("bilal is told #legal is closed to him", 20, || {
        let out = ds[1].cli(&["history", "legal"]);
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("an admin can add you")
    });
    let e = ds[1].fails(&["send", "legal", "still here?"]);
    assert!(
        e.contains(
            "'bilal' may not post in #legal: it is open to amina only; an admin can add you to it"
        ),
        "{e}"
    );
    // A mistyped name is answered with the channels one may read.
    let e = ds[1].fails(&["history", "legl"]);
    assert!(
        e.contains("no channel 'legl'; channels: general (or @NAME"),
        "{e}"
    );
    let e = ds[0].fails(&["history", "legl"]);
    assert!(e.contains("channels: general, legal (or @NAME"), "{e}");
    // Only an admin changes who is on a channel.
    let e = ds[1].fails(&["channel", "members", "legal", "--add", "bilal"]);
    assert!(e.contains("admin"), "{e}");
    let audit = String::from_utf8_lossy(&ds[0].cli(&["audit", "--json"]).stdout).into_owned();
    assert_eq!(audit.matches("channel_changed").count(), 2, "{audit}");
    assert!(ds[0].stop() && ds[1].stop());
}

/// An admin archives a channel from the command line when its project ends: its history
/// stays readable and searchable on every node, nobody can post (the member is told why),
/// only an admin archives, and brought back it takes posts again.
#[test]
fn an_admin_archives_a_channel_and_brings_it_back() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    ds[0].ok(&["channel", "create", "launch"]);
    ds[0].ok(&["channel", "create", "board", "--members", "amina"]);
    // The channels one may read, from the data directory while no node runs.
    let list = ds[0].all(&["channel", "list"]);
    assert_eq!(
        list.lines()
            .map(|l| l.split(' ').next().unwrap())
            .collect::<Vec<_>>(),
        ["#general", "#launch", "#board"],
        "{list}"
    );
    majlis_tests::start_pair_local(&mut ds, &[]);
    ds[1].ok(&["send", "launch", "the launch checklist is done"]);
    wait_until("amina has it", 20, || ds[0].history("launch").len() == 1);

    let out = ds[0].ok(&["channel", "archive", "#Launch"]);
    assert!(out.starts_with("archived: "), "{out}");
    let e = ds[0].fails(&["channel", "archive", "@bilal"]);
    assert!(e.contains("direct messages are not archived"), "{e}");
    let e = ds[0].fails(&["channel", "archive", "launch"]);
    assert!(e.contains("already archived"), "{e}");
    wait_until("bilal is told #launch is archived", 20, || {
        let out = ds[1].cli(&["send", "launch", "one more thing"]);
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("#launch is archived")
    });
    let e = ds[0].fails(&["send", "launch", "admins too"]);
    assert!(e.contains("nothing more can be posted"), "{e}");
    // Still there to read and to find, and said so.
    assert_eq!(ds[1].history("launch").len(), 1);
    let found = ds[1].ok(&["search", "checklist"]);
    assert!(found.contains("launch"), "{found}");
    let show =
        String::from_utf8_lossy(&ds[1].cli(&["channel", "show", "launch"]).stdout).into_owned();
    assert!(show.starts_with("archived: "), "{show}");
    let roster = ds[1].all(&["roster", "show"]);
    assert!(
        roster.contains("launch           everyone  (archived)"),
        "{roster}"
    );
    // And from the running node, with what each is to this member.
    ds[1].ok(&["channel", "leave", "general"]);
    let list = ds[1].all(&["channel", "list"]);
    assert!(
        list.contains("#general          everyone  (left)")
            && list.contains("#launch           everyone  (archived)")
            && !list.contains("board"),
        "{list}"
    );
    let json = ds[1].all(&["channel", "list", "--json"]);
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[1]["name"], "launch");
    assert_eq!(rows[1]["archived"], true);
    // Only an admin archives, or brings back.
    let e = ds[1].fails(&["channel", "unarchive", "launch"]);
    assert!(e.contains("admin"), "{e}");

    ds[0].ok(&["channel", "unarchive", "launch"]);
    wait_until("bilal posts in #launch again", 20, || {
        ds[1].cli(&["send", "launch", "relaunch"]).status.success()
    });
    wait_until("amina has it", 20, || ds[0].history("launch").len() == 2);
    let audit = String::from_utf8_lossy(&ds[0].cli(&["audit", "--json"]).stdout).into_owned();
    assert!(
        audit.contains("channel_archived") && audit.contains("channel_unarchived"),
        "{audit}"
    );
    assert!(ds[0].stop() && ds[1].stop());
}

/// An admin renames a channel from the command line when a team changes its name: both
/// nodes list it, and accept it, under the new name; its history, and what the member
/// posts under either name, stay one conversation; only an admin renames, names taken or
/// looking alike are refused; renaming it to its first name undoes it.
#[test]
fn an_admin_renames_a_channel_and_its_history_stays() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    ds[0].ok(&["channel", "create", "launch"]);
    ds[0].ok(&["retention", "set", "--days", "30", "--channel", "launch"]);
    ds[0].ok(&["hold", "add", "--channel", "launch", "--reason", "audit"]);
    majlis_tests::start_pair_local(&mut ds, &[]);
    ds[1].ok(&["send", "launch", "the launch checklist is done"]);
    wait_until("amina has it", 20, || ds[0].history("launch").len() == 1);

    let out = ds[0].ok(&["channel", "rename", "#Launch", "release"]);
    assert!(
        out.starts_with("renamed: everyone sees it as #release"),
        "{out}"
    );
    let e = ds[0].fails(&["channel", "rename", "general", "Release"]);
    assert!(e.contains("only in case"), "{e}");
    let e = ds[0].fails(&["channel", "rename", "@bilal", "x"]);
    assert!(e.contains("direct messages are not renamed"), "{e}");
    let e = ds[0].fails(&["channel", "create", "release"]);
    assert!(e.contains("already exists"), "{e}");
    let e = ds[1].fails(&["channel", "rename", "general", "lobby"]);
    assert!(e.contains("admin"), "{e}");

    // bilal's node takes the new name: listed under it, and posted to by it.
    wait_until("bilal lists #release", 20, || {
        ds[1]
            .all(&["channel", "list"])
            .contains("#release          everyone  (was #launch)")
    });
    ds[1].ok(&["send", "#release", "and the notes are out"]);
    wait_until("amina has both, in one conversation", 20, || {
        ds[0].history("release").len() == 2
    });
    let texts: Vec<String> = ds[0]
        .history("launch")
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        texts,
        ["the launch checklist is done", "and the notes are out"],
        "the old name still names it"
    );
    let found = ds[0].ok(&["search", "notes in:#release"]);
    assert!(
        found.starts_with("release [") && found.contains("and the [notes] are out"),
        "{found}"
    );
    let json = ds[1].all(&["channel", "list", "--json"]);
    let row: serde_json::Value = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["name"] == "launch")
        .unwrap();
    assert_eq!(row["display_name"], "release", "{json}");
    let roster = ds[1].all(&["roster", "show"]);
    assert!(
        roster.contains("release          everyone  (was launch)"),
        "{roster}"
    );
    // Its retention rule and legal hold are the channel's, and say its new name.
    let rules = ds[1].all(&["retention", "show"]);
    assert!(
        rules.contains("#release: messages 30 days") && rules.contains("channels release (audit)"),
        "{rules}"
    );

    // Renamed back to its first name, the rename is gone.
    ds[0].ok(&["channel", "rename", "release", "launch"]);
    wait_until("bilal lists #launch again", 20, || {
        let list = ds[1].all(&["channel", "list"]);
        list.contains("#launch ") && !list.contains("release")
    });
    let e = ds[1].fails(&["send", "release", "gone?"]);
    assert!(
        e.contains("no channel 'release'; channels: general, launch"),
        "{e}"
    );
    let audit = String::from_utf8_lossy(&ds[0].cli(&["audit", "--json"]).stdout).into_owned();
    assert_eq!(audit.matches("channel_renamed").count(), 2, "{audit}");
    assert!(ds[0].stop() && ds[1].stop());
}

/// An admin gives colleagues their full names from the command line: `roster show` lists
/// them, a reader's `history --json` and search carry the author's, a DM and `from:` take
/// the full name as typed; a name that is someone else's, or looks like it, is refused, and
/// only an admin sets one; taken away, the roster name is shown again. Job titles likewise:
/// listed beside the name, refused when not text or not from an admin, taken away.
#[test]
fn an_admin_gives_members_their_full_names() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    majlis_tests::start_pair_local(&mut ds, &[]);

    let out = ds[0].ok(&["roster", "full-name", "--name", "amina", "Amina Haddad"]);
    assert!(
        out.starts_with("everyone sees amina as 'Amina Haddad'"),
        "{out}"
    );
    ds[0].ok(&["roster", "full-name", "--name", "Bilal", "بلال أحمد"]);
    let e = ds[0].fails(&["roster", "full-name", "--name", "bilal", "AMINA HADDAD"]);
    assert!(e.contains("the full name of 'amina'"), "{e}");
    let e = ds[0].fails(&["roster", "full-name", "--name", "bilal", "Amina"]);
    assert!(e.contains("the member 'amina'"), "{e}");
    let e = ds[1].fails(&["roster", "full-name", "--name", "bilal", "Bilal the Boss"]);
    assert!(e.contains("admin"), "{e}");
    let e = ds[0].fails(&["roster", "full-name", "--name", "bilal"]);
    assert!(e.contains("--clear"), "{e}");

    // A newcomer joins with their full name, in one version.
    let chen = majlis_core::DeviceKey::generate().id().to_string();
    let out = ds[0].ok(&[
        "roster",
        "add",
        "--name",
        "chen",
        "--device",
        &chen,
        "--full-name",
        "Chen Wei",
    ]);
    assert!(out.starts_with("roster is now at version"), "{out}");
    wait_until("bilal's roster names amina and chen", 20, || {
        let roster = ds[1].all(&["roster", "show"]);
        roster.contains("(Amina Haddad)") && roster.contains(&format!("{chen}  (Chen Wei)"))
    });
    ds[0].ok(&["send", "general", "the audit starts monday"]);
    wait_until("bilal has it", 20, || ds[1].history("general").len() == 1);
    let row = &ds[1].history("general")[0];
    assert_eq!(
        (row["sender"].as_str(), row["sender_name"].as_str()),
        (Some("amina"), Some("Amina Haddad")),
        "{row}"
    );
    // Typed as people know each other: a DM to "Amina Haddad", search from:"amina haddad".
    ds[1].ok(&["send", "@Amina Haddad", "the list is ready"]);
    wait_until("amina has the DM", 20, || {
        ds[0].history("@bilal").len() == 1
    });
    let found = ds[1].ok(&["search", "audit from:\"amina haddad\""]);
    assert!(found.contains("the [audit] starts monday"), "{found}");
    let mine = ds[0].history("@bilal");
    assert_eq!(mine[0]["sender_name"], "بلال أحمد", "{mine:?}");

    // A job title beside the name, in bilal's roster too.
    let out = ds[0].ok(&["roster", "title", "--name", "amina", "Head of finance"]);
    assert!(
        out.starts_with("amina's job title is 'Head of finance'"),
        "{out}"
    );
    let e = ds[1].fails(&["roster", "title", "--name", "bilal", "Director"]);
    assert!(e.contains("admin"), "{e}");
    let e = ds[0].fails(&["roster", "title", "--name", "bilal", " Director"]);
    assert!(e.contains("is not a good job title for 'bilal'"), "{e}");
    let e = ds[0].fails(&["roster", "title", "--name", "bilal"]);
    assert!(e.contains("--clear"), "{e}");
    wait_until("bilal's roster gives amina's title", 20, || {
        ds[1]
            .all(&["roster", "show"])
            .contains("(Amina Haddad, Head of finance)")
    });
    let out = ds[0].ok(&["roster", "title", "--name", "amina", "--clear"]);
    assert!(out.starts_with("amina has no job title"), "{out}");

    // Taken away: bilal's history shows amina's roster name again.
    let out = ds[0].ok(&["roster", "full-name", "--name", "amina", "--clear"]);
    assert!(
        out.starts_with("amina is shown by their roster name again"),
        "{out}"
    );
    wait_until("bilal's node drops the full name", 20, || {
        ds[1].history("general")[0].get("sender_name").is_none()
    });
    let audit = String::from_utf8_lossy(&ds[0].cli(&["audit", "--json"]).stdout).into_owned();
    assert_eq!(audit.matches("full_name_changed").count(), 4, "{audit}");
    assert_eq!(audit.matches("title_changed").count(), 2, "{audit}");
    assert!(
        audit
            .lines()
            .any(|v| v.contains(r#""member_added","name":"chen""#)
                && v.contains(r#""full_name_changed","name":"chen""#)),
        "chen's joining and full name are not one version: {audit}"
    );
    assert!(ds[0].stop() && ds[1].stop());
}

/// An admin makes a group (`@it-support`) with bilal in it: a mention of it reaches bilal
/// (his `mentions:me` finds it) and not amina, who is not in it; bilal's roster lists it;
/// only admins make groups, and a name a mention could take for a member's is refused; a
/// channel's members can be named by the group; deleted, the mention reaches nobody.
#[test]
fn an_admin_makes_a_group_that_one_mention_reaches() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    majlis_tests::start_pair_local(&mut ds, &[]);

    let out = ds[0].ok(&["roster", "group", "@it-support", "--members", "Bilal"]);
    assert!(out.starts_with("@it-support reaches Bilal"), "{out}");
    let e = ds[0].fails(&["roster", "group", "BILAL", "--members", "amina"]);
    assert!(e.contains("the name of member 'bilal'"), "{e}");
    let e = ds[0].fails(&["roster", "group", "here", "--members", "amina"]);
    assert!(e.contains("@here already means"), "{e}");
    let e = ds[1].fails(&["roster", "group", "sales", "--members", "bilal"]);
    assert!(e.contains("admin"), "{e}");
    let e = ds[0].fails(&["roster", "group", "sales"]);
    assert!(e.contains("--members"), "{e}");
    wait_until("bilal's roster lists the group", 20, || {
        ds[1]
            .all(&["roster", "show"])
            .contains("@it-support      bilal")
    });

    ds[1].ok(&["send", "general", "the printer is out of toner"]);
    ds[0].ok(&["send", "general", "@IT-Support can you look at it?"]);
    wait_until("bilal has both", 20, || ds[1].history("general").len() == 2);
    let found = ds[1].ok(&["search", "mentions:me"]);
    assert!(found.contains("can you look at it?"), "{found}");
    assert!(!found.contains("toner"), "{found}");
    let theirs = ds[0].ok(&["search", "mentions:me"]);
    assert!(
        !theirs.contains("look at it"),
        "amina is not in it: {theirs}"
    );

    // A channel's members named by the group.
    ds[0].ok(&["channel", "create", "helpdesk", "--members", "amina"]);
    ds[0].ok(&["channel", "members", "helpdesk", "--add", "@it-support"]);
    wait_until("bilal reads #helpdesk", 20, || {
        ds[1].all(&["channel", "list"]).contains("helpdesk")
    });

    ds[0].ok(&["roster", "group", "it-support", "--delete"]);
    wait_until("bilal's roster drops it", 20, || {
        !ds[1].all(&["roster", "show"]).contains("@it-support")
    });
    let found = ds[1].all(&["search", "mentions:me"]);
    assert!(!found.contains("look at it"), "{found}");
    let audit = String::from_utf8_lossy(&ds[0].cli(&["audit", "--json"]).stdout).into_owned();
    assert_eq!(audit.matches("group_changed").count(), 2, "{audit}");
    assert!(ds[0].stop() && ds[1].stop());
}

/// Amina sets her status from the command line, to last two hours: bilal's `presence
/// show` lists it with its end, and still does once his node has stopped; a status that is
/// not one line, a length of no time or an end already past is refused with what to write;
/// cleared, her own list is empty again.
#[test]
fn a_status_set_from_the_command_line_reaches_colleagues() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    let e = ds[0].fails(&["presence", "set", "In a meeting"]);
    assert!(e.contains("start `majlisd run`"), "{e}");
    majlis_tests::start_pair_local(&mut ds, &[]);

    let out = ds[0].ok(&["presence", "set", "In a meeting", "--for", "2h"]);
    assert!(out.starts_with("your status is set"), "{out}");
    let e = ds[0].fails(&["presence", "set", "In a\nmeeting"]);
    assert!(e.contains("one line"), "{e}");
    let e = ds[0].fails(&["presence", "set", "Out", "--for", "0s"]);
    assert!(e.contains("30m, 2h or 3days"), "{e}");
    let e = ds[0].fails(&["presence", "set", "Out", "--until", "2001-01-01"]);
    assert!(e.contains("give a time ahead"), "{e}");
    wait_until("bilal sees her status", 20, || {
        ds[1]
            .all(&["presence", "show"])
            .starts_with("amina            In a meeting  (until ")
    });
    let line = ds[1].ok(&["presence", "show", "--json"]);
    let st: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    let lasts = st["until"].as_u64().unwrap() - st["set_at"].as_u64().unwrap();
    assert!((7_190_000..=7_200_000).contains(&lasts), "{st}");
    assert!(ds[1].stop());
    let kept = ds[1].ok(&["presence", "show"]);
    assert!(kept.contains("In a meeting"), "not kept: {kept}");
    ds[0].ok(&["presence", "clear"]);
    wait_until("her own list empties", 20, || {
        ds[0].all(&["presence", "show"]).trim() == "nobody has set a status"
    });
    assert!(ds[0].stop());
}

/// Bilal forwards amina's message from #general to their DM: amina's history shows where
/// it came from and that it matches the original; a message that is not there, or editing
/// the forward, are refused with why. He saves her message for later: `search is:saved`
/// finds it, and not once he takes it off the list.
#[test]
fn a_forward_from_the_command_line_says_where_it_came_from() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    majlis_tests::start_pair_local(&mut ds, &[]);
    let id = ds[0].ok(&["send", "general", "the audit starts monday"]);
    let id = id.trim();
    wait_until("bilal has it", 20, || ds[1].history("general").len() == 1);
    let fwd = ds[1].ok(&["forward", id, "@amina"]);
    let fwd = fwd.trim();
    wait_until("amina has the forward", 20, || {
        ds[0].history("@bilal").len() == 1
    });
    let lines = ds[0].ok(&["history", "@bilal"]);
    assert!(
        lines.contains(
            "bilal: [forwarded from amina in #general; matches the original] the audit starts monday"
        ),
        "{lines}"
    );
    let row = &ds[0].history("@bilal")[0];
    assert_eq!(row["forwarded"]["check"], "matches", "{row}");
    assert_eq!(row["forwarded"]["id"].as_str(), Some(id), "{row}");
    let e = ds[1].fails(&["edit", fwd, "the audit is cancelled"]);
    assert!(e.contains("keeps its author's words"), "{e}");
    let e = ds[1].fails(&["forward", &"ab".repeat(32), "general"]);
    assert!(e.contains("no message"), "{e}");

    // Saved for later, found with is:saved, taken off the list.
    let out = ds[1].ok(&["bookmark", id]);
    assert!(out.starts_with("saved for later"), "{out}");
    let e = ds[1].fails(&["bookmark", id]);
    assert!(e.contains("saved already"), "{e}");
    let found = ds[1].ok(&["search", "is:saved"]);
    assert!(found.contains("the audit starts monday"), "{found}");
    assert_eq!(found.lines().count(), 1, "{found}");
    ds[1].ok(&["bookmark", id, "--remove"]);
    let found = ds[1].all(&["search", "is:saved"]);
    assert!(!found.contains("the audit"), "{found}");
    assert!(ds[0].stop() && ds[1].stop());
}

/// Amina asks from the command line, bilal votes by the numbers `history` shows, changes his
/// mind and is refused what the poll does not take; closed, it takes no more; an export says
/// who chose what.
#[test]
fn a_poll_from_the_command_line() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    let e = ds[0].fails(&[
        "poll", "general", "Lunch?", "--option", "a", "--option", "b",
    ]);
    assert!(e.contains("start `majlisd run`"), "{e}");
    majlis_tests::start_pair_local(&mut ds, &[]);
    let e = ds[0].fails(&["poll", "general", "Lunch?", "--option", "Pizza"]);
    assert!(e.contains("2 to 12 options, not 1"), "{e}");
    let e = ds[0].fails(&["poll", "general", "Lunch?"]);
    assert!(e.contains("--option"), "{e}");
    let id = ds[0].ok(&[
        "poll",
        "general",
        "Lunch on Friday?",
        "--option",
        "Pizza",
        "--option",
        "Sushi",
    ]);
    let id = id.trim();
    wait_until("bilal has it", 20, || ds[1].history("general").len() == 1);
    ds[1].ok(&["vote", id, "1"]);
    ds[1].ok(&["vote", id, "2"]);
    let e = ds[1].fails(&["vote", id, "1", "2"]);
    assert!(e.contains("takes one choice"), "{e}");
    let e = ds[1].fails(&["vote", id, "3"]);
    assert!(e.contains("options 1 to 2, not 3"), "{e}");
    let e = ds[1].fails(&["vote", id, "0"]);
    assert!(e.contains("0"), "{e}");
    let e = ds[1].fails(&["vote", id]);
    assert!(e.contains("required"), "{e}");
    let e = ds[1].fails(&["vote", id, "--close"]);
    assert!(e.contains("only amina (who asked)"), "{e}");
    let line = "amina: Lunch on Friday? [poll: 1. Pizza (0) · 2. Sushi (1: bilal);";
    wait_until("amina counts bilal's latest vote", 20, || {
        ds[0].all(&["history", "general"]).contains(line)
    });
    let row = &ds[0].history("general")[0];
    assert_eq!(row["poll"]["options"][1]["voters"][0], "bilal", "{row}");
    ds[0].ok(&["vote", id, "--close"]);
    wait_until("bilal sees it closed", 20, || {
        ds[1]
            .all(&["history", "general"])
            .contains("closed by amina]")
    });
    let e = ds[1].fails(&["vote", id, "1"]);
    assert!(e.contains("closed by amina"), "{e}");

    let out = tmp.path().join("export");
    ds[0].ok(&[
        "export",
        "--channel",
        "general",
        "--out",
        out.to_str().unwrap(),
    ]);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("messages.json")).unwrap()).unwrap();
    let rows = doc["messages"].as_array().unwrap();
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["poll", "vote", "vote", "close_poll"], "{doc}");
    assert_eq!(rows[0]["poll"]["options"][1], "Sushi", "{doc}");
    assert_eq!(rows[2]["choices"], serde_json::json!([1]), "{doc}");
    assert_eq!(rows[2]["target"].as_str(), Some(id), "{doc}");
    // As documented: Python's jsonschema holds the export to docs/export.schema.json.
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    majlis_tests::py(
        r#"
import json, sys, jsonschema
s = json.load(open(sys.argv[1] + "/export.schema.json", encoding="utf-8"))
jsonschema.validate(json.load(open(sys.argv[2] + "/messages.json", encoding="utf-8")), s)
"#,
        &[&docs, &out],
    );
    assert!(ds[0].stop() && ds[1].stop());
}

/// An RFC 3339 time `secs` seconds from now (as `date` writes it).
fn in_secs(secs: u64) -> String {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + secs;
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{at}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Amina writes a message now for three seconds later: `scheduled` lists it, bilal has
/// nothing until then, then it arrives and nothing waits; one cancelled never goes; a time
/// past, or no running node, is refused with what to do.
#[test]
fn a_message_for_later_from_the_command_line() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    let e = ds[0].fails(&["send", "general", "hello", "--at", &in_secs(60)]);
    assert!(e.contains("start `majlisd run`"), "{e}");
    majlis_tests::start_pair_local(&mut ds, &[]);

    let out = ds[0].all(&["send", "general", "standup now", "--at", &in_secs(3)]);
    assert!(out.starts_with("kept; it is sent at "), "{out}");
    let id = ds[0].ok(&["send", "@bilal", "never mind", "--at", &in_secs(3600)]);
    let id = id.trim();
    let listed = ds[0].all(&["scheduled"]);
    assert!(
        listed.contains("standup now") && listed.contains("never mind"),
        "{listed}"
    );
    let out = ds[0].ok(&["scheduled", "--cancel", id]);
    assert!(out.starts_with("taken off the schedule"), "{out}");
    let e = ds[0].fails(&["send", "general", "late", "--at", "2001-01-01"]);
    assert!(e.contains("has passed"), "{e}");
    assert!(ds[1].history("general").is_empty(), "sent early");
    wait_until("bilal has it at its time", 20, || {
        ds[1].history("general").len() == 1
    });
    assert_eq!(ds[1].history("general")[0]["text"], "standup now");
    assert_eq!(
        ds[0].ok(&["scheduled"]).trim(),
        "nothing is waiting to be sent"
    );
    assert!(ds[1].history("@amina").is_empty(), "the cancelled one went");
    assert!(ds[0].stop() && ds[1].stop());
}

/// Bilal asks to be reminded of amina's message in two seconds: `reminders` lists it, and
/// `majlisd run` says it at its time, once; one cancelled is never said; a time past, a
/// message not here, or no running node is refused with what to do.
#[test]
fn a_reminder_from_the_command_line_is_said_by_the_running_node() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    let nowhere = "ab".repeat(32);
    let e = ds[1].fails(&["remind", &nowhere, "--in", "1h"]);
    assert!(e.contains("start `majlisd run`"), "{e}");
    majlis_tests::start_pair_local(&mut ds, &[]);
    let id = ds[0].ok(&["send", "general", "the budget is due"]);
    let id = id.trim();
    wait_until("bilal has it", 20, || ds[1].history("general").len() == 1);
    let e = ds[1].fails(&["remind", id]);
    assert!(e.contains("--in"), "{e}");
    let e = ds[1].fails(&["remind", id, "--at", "2001-01-01"]);
    assert!(e.contains("has passed"), "{e}");
    let e = ds[1].fails(&["remind", &nowhere, "--in", "1h"]);
    assert!(e.contains("no message"), "{e}");
    let out = ds[1].all(&["remind", id, "--in", "2s"]);
    assert!(out.starts_with("you will be reminded at "), "{out}");
    let later = ds[1].ok(&["remind", id, "--in", "1day"]);
    let listed = ds[1].all(&["reminders"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.contains(id) && listed.contains("general"),
        "{listed}"
    );
    let out = ds[1].ok(&["reminders", "--cancel", later.trim()]);
    assert!(out.starts_with("reminder cancelled"), "{out}");
    wait_until("majlisd run says it", 20, || {
        ds[1]
            .log_text()
            .contains(&format!("message {id} in general"))
    });
    assert_eq!(ds[1].ok(&["reminders"]).trim(), "no reminders are waiting");
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert_eq!(
        ds[1].log_text().matches("reminder ").count(),
        1,
        "said once: {}",
        ds[1].log_text()
    );
    assert!(ds[0].stop() && ds[1].stop());
}

/// An admin makes #news a channel where only she posts: a member reads it (what she posts
/// reaches him, readable), is told why his own post is refused, and sees who posts in his
/// channel list; only admins set it, only readers can be named; let reply in its threads,
/// he replies (and his list says so), and no longer once turned off; set back to everyone,
/// he posts.
#[test]
fn an_admin_lets_only_some_post_in_a_channel() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_majlisd-e2e"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = majlis_tests::org(&bin, tmp.path(), &["amina", "bilal"]);
    ds[0].ok(&["channel", "create", "news"]);
    ds[0].ok(&["channel", "create", "board", "--members", "amina"]);
    majlis_tests::start_pair_local(&mut ds, &[]);

    let out = ds[0].ok(&["channel", "posters", "#News", "--only", "amina"]);
    assert!(out.starts_with("only amina posts there"), "{out}");
    let e = ds[0].fails(&["channel", "posters", "board", "--only", "bilal"]);
    assert!(e.contains("'bilal' does not read #board"), "{e}");
    let e = ds[1].fails(&["channel", "posters", "news", "--everyone"]);
    assert!(e.contains("admin"), "{e}");
    let e = ds[0].fails(&["channel", "posters", "news"]);
    assert!(e.contains("--only") && e.contains("--everyone"), "{e}");

    wait_until("bilal's list says who posts", 20, || {
        ds[1].all(&["channel", "list"]).contains("(posts: amina)")
    });
    ds[0].ok(&["send", "news", "the office is closed on friday"]);
    wait_until("bilal reads it", 20, || {
        ds[1]
            .history("news")
            .first()
            .is_some_and(|m| m["text"] == "the office is closed on friday")
    });
    let e = ds[1].fails(&["send", "news", "which friday?"]);
    assert!(
        e.contains("'bilal' reads #news and may not post in it: only amina posts there"),
        "{e}"
    );
    // He reacts to it and votes in her poll all the same; a reply is still refused.
    let news = ds[0].history("news")[0]["id"].as_str().unwrap().to_string();
    ds[1].ok(&["react", &news[..8], "👍"]);
    let e = ds[1].fails(&["reply", &news[..8], "which friday?"]);
    assert!(e.contains("only amina posts there"), "{e}");
    let poll = ds[0]
        .ok(&[
            "poll", "news", "Lunch?", "--option", "Pizza", "--option", "Sushi",
        ])
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    wait_until("bilal holds the poll", 20, || {
        ds[1].history("news").len() == 2
    });
    ds[1].ok(&["vote", &poll[..8], "2"]);
    wait_until("amina counts his reaction and his vote", 20, || {
        let h = ds[0].history("news");
        h[0]["reactions"][0]["members"][0] == "bilal"
            && h[1]["poll"]["options"][1]["voters"][0] == "bilal"
    });

    // Readers reply in its threads: only an admin says so, and only where some post.
    let e = ds[1].fails(&["channel", "replies", "news", "--on"]);
    assert!(e.contains("admin"), "{e}");
    let e = ds[0].fails(&["channel", "replies", "board", "--on"]);
    assert!(e.contains("set who posts first"), "{e}");
    let e = ds[0].fails(&["channel", "replies", "news"]);
    assert!(e.contains("--on") && e.contains("--off"), "{e}");
    ds[0].ok(&["channel", "replies", "news", "--on"]);
    wait_until("bilal's list says he replies", 20, || {
        ds[1]
            .all(&["channel", "list"])
            .contains("(readers reply in threads)")
    });
    ds[1].ok(&["reply", &news[..8], "which friday?"]);
    wait_until("amina holds his reply", 20, || {
        ds[0].history("news")[0]["replies"] == 1
    });
    let e = ds[1].fails(&["reply", "--also-channel", &news[..8], "and the next?"]);
    assert!(e.contains("only amina posts there"), "{e}");
    let out = ds[0].ok(&["channel", "replies", "news", "--off"]);
    assert!(out.contains("what readers replied stays"), "{out}");
    wait_until("bilal's node has it", 20, || {
        !ds[1]
            .all(&["channel", "list"])
            .contains("(readers reply in threads)")
    });
    let e = ds[1].fails(&["reply", &news[..8], "and the next?"]);
    assert!(e.contains("only amina posts there"), "{e}");
    assert_eq!(ds[0].history("news")[0]["replies"], 1);

    ds[0].ok(&["channel", "posters", "news", "--everyone"]);
    wait_until("bilal posts again", 20, || {
        ds[1]
            .cli(&["send", "news", "which friday?"])
            .status
            .success()
    });
    wait_until("amina has it", 20, || ds[0].history("news").len() == 3);
    let audit = String::from_utf8_lossy(&ds[0].cli(&["audit", "--json"]).stdout).into_owned();
    assert_eq!(
        audit.matches("channel_posters_changed").count(),
        2,
        "{audit}"
    );
    assert_eq!(
        audit.matches("channel_replies_changed").count(),
        2,
        "{audit}"
    );
    assert!(ds[0].stop() && ds[1].stop());
}
