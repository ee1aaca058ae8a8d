//! Helpers for multi-host tests on one machine: a private virtual LAN made of network
//! namespaces, and real `majlisd` processes running inside it.
//!
//! Layout: one namespace holds a bridge (the switch); each host is a namespace with `lo` and
//! an `eth0` veth whose peer is a port on the bridge. Multicast (mDNS) stays inside. Cutting a
//! host off is taking its bridge port down. Everything is deleted on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub mod radio;

/// Whether this process may create namespaces. If not, say so loudly; when
/// `MAJLIS_REQUIRE_NETNS=1` (as in CI) a missing capability is a failure, not a skip.
pub fn netns_available(test: &str) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let ip = Command::new("ip").arg("-V").output().is_ok();
    if root && ip {
        return true;
    }
    let why = if !ip {
        "the `ip` command (iproute2) is missing"
    } else {
        "it is not running as root"
    };
    skip(
        test,
        &format!("network namespaces, but {why}"),
        "Run `sudo -E cargo test -p majlis-tests` (CI runs it as root).",
    )
}

/// A test cannot run here for want of `what`: say so loudly and return false; when
/// `MAJLIS_REQUIRE_NETNS=1` (as in CI, which installs everything) fail instead.
pub fn skip(test: &str, what: &str, how: &str) -> bool {
    if std::env::var("MAJLIS_REQUIRE_NETNS").as_deref() == Ok("1") {
        panic!("{test}: needs {what}, and MAJLIS_REQUIRE_NETNS=1. {how}");
    }
    eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!("!!! SKIPPED {test}: it needs {what}.");
    eprintln!("!!! {how}");
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
    false
}

/// Make room in the kernel's neighbour (ARP and NDP) tables for `hosts` namespaces that all
/// talk to each other. Those tables are one per kernel, shared by every namespace, and hold
/// 1 024 entries by default (`gc_thresh3`): past about 30 hosts all-to-all, new neighbours are
/// refused ("neighbor table overflow"), SYNs wait in SYN-SENT and nodes never connect. A real
/// LAN has a kernel per machine, so this is sized for the emulation only. Limits are only
/// ever raised (other tests may be running), never lowered.
fn size_neighbour_tables(hosts: usize) -> Result<()> {
    // Each host learns every other host over IPv4 and IPv6 (link-local), plus slack.
    let want = (hosts * hosts + 1024) as u64;
    for family in ["ipv4", "ipv6"] {
        for (knob, share) in [("gc_thresh1", 4), ("gc_thresh2", 2), ("gc_thresh3", 1)] {
            let path = format!("/proc/sys/net/{family}/neigh/default/{knob}");
            let now: u64 = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {path}"))?
                .trim()
                .parse()
                .with_context(|| format!("parsing {path}"))?;
            let target = want / share;
            if now < target {
                std::fs::write(&path, target.to_string())
                    .with_context(|| format!("raising {path} to {target} (needs root)"))?;
            }
        }
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A private LAN of `n` hosts at 10.77.X.1..n/24.
pub struct Lan {
    prefix: String,
    pub hosts: Vec<String>,
    pub addrs: Vec<String>,
    /// Namespaces that are not hosts (a router), deleted with the LAN.
    others: Vec<String>,
    /// Emulated radio links (see [`Lan::set_radio`]).
    radios: Vec<radio::Radio>,
}

impl Lan {
    pub fn new(tag: &str, n: usize) -> Result<Lan> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let prefix = format!("mj{}{tag}{k}", std::process::id());
        let subnet = 1 + (std::process::id() + k * 7) % 250;
        let sw = format!("{prefix}sw");
        let mut lan = Lan {
            prefix: prefix.clone(),
            hosts: Vec::new(),
            addrs: Vec::new(),
            others: Vec::new(),
            radios: Vec::new(),
        };
        size_neighbour_tables(n)?;
        ip(&["netns", "add", &sw])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for i in 0..n {
            lan.add_host(i, "br0", &format!("10.77.{subnet}"), None)?;
        }
        Ok(lan)
    }

    /// Sites that multicast does not join: one bridge and subnet per site (10.77.S.x for the
    /// first, 10.78.S.x for the second, …), and a router namespace with a leg in each that
    /// forwards unicast between them (hosts route through it). mDNS stays inside a site.
    /// Hosts are numbered across sites in order.
    pub fn sites(tag: &str, sizes: &[usize]) -> Result<Lan> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let prefix = format!("mj{}{tag}s{k}", std::process::id());
        let subnet = 1 + (std::process::id() + k * 11) % 250;
        let sw = format!("{prefix}sw");
        let router = format!("{prefix}r");
        let mut lan = Lan {
            prefix: prefix.clone(),
            hosts: Vec::new(),
            addrs: Vec::new(),
            others: Vec::new(),
            radios: Vec::new(),
        };
        size_neighbour_tables(sizes.iter().sum::<usize>() + sizes.len())?;
        ip(&["netns", "add", &sw])?;
        ip(&["netns", "add", &router])?;
        lan.others.push(router.clone());
        ip(&["-n", &router, "link", "set", "lo", "up"])?;
        let fwd = Command::new("ip")
            .args([
                "netns",
                "exec",
                &router,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ])
            .status()?;
        if !fwd.success() {
            bail!("cannot enable forwarding in the router namespace");
        }
        let mut i = 0;
        for (s, n) in sizes.iter().enumerate() {
            let net = format!("10.{}.{subnet}", 77 + s);
            let br = format!("br{s}");
            ip(&["-n", &sw, "link", "add", &br, "type", "bridge"])?;
            ip(&["-n", &sw, "link", "set", &br, "up"])?;
            let leg = format!("eth{s}");
            let rport = format!("r{s}");
            ip(&[
                "-n", &router, "link", "add", &leg, "type", "veth", "peer", "name", &rport,
                "netns", &sw,
            ])?;
            ip(&["-n", &sw, "link", "set", &rport, "master", &br, "up"])?;
            ip(&[
                "-n",
                &router,
                "addr",
                "add",
                &format!("{net}.254/24"),
                "dev",
                &leg,
            ])?;
            ip(&["-n", &router, "link", "set", &leg, "up"])?;
            for _ in 0..*n {
                lan.add_host(i, &br, &net, Some(&format!("{net}.254")))?;
                i += 1;
            }
        }
        Ok(lan)
    }

    /// Host `i`: a namespace at `{net}.{i + 1}/24` whose `eth0` is a port of bridge `br`,
    /// routing through `gateway` if given.
    fn add_host(&mut self, i: usize, br: &str, net: &str, gateway: Option<&str>) -> Result<()> {
        let sw = format!("{}sw", self.prefix);
        let h = format!("{}h{i}", self.prefix);
        let port = format!("p{i}");
        let addr = format!("{net}.{}", i + 1);
        ip(&["netns", "add", &h])?;
        self.hosts.push(h.clone());
        ip(&[
            "-n", &h, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns", &sw,
        ])?;
        ip(&["-n", &sw, "link", "set", &port, "master", br, "up"])?;
        ip(&[
            "-n",
            &h,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &h, "link", "set", "lo", "up"])?;
        ip(&["-n", &h, "link", "set", "eth0", "up"])?;
        if let Some(gw) = gateway {
            ip(&["-n", &h, "route", "add", "default", "via", gw])?;
        }
        self.addrs.push(addr);
        Ok(())
    }

    /// Make the LAN IPv6-only, as a field router that hands out a ULA prefix does: every
    /// host loses its IPv4 address and gets `fd77:S::{i+1}/64` (no duplicate-address wait).
    /// Their `fe80::` addresses are removed, so only the ULA ones can carry anything. `addrs`
    /// become the IPv6 ones.
    pub fn ipv6_only(&mut self) -> Result<()> {
        let subnet = 1 + std::process::id() % 250;
        for (i, h) in self.hosts.iter().enumerate() {
            ip(&["-n", h, "-4", "addr", "flush", "dev", "eth0"])?;
            let a = format!("fd77:{subnet:x}::{:x}", i + 1);
            ip(&[
                "-n",
                h,
                "-6",
                "addr",
                "add",
                &format!("{a}/64"),
                "dev",
                "eth0",
                "nodad",
            ])?;
            ip(&[
                "-n", h, "-6", "addr", "flush", "dev", "eth0", "scope", "link",
            ])?;
            self.addrs[i] = a;
        }
        Ok(())
    }

    /// Give every host only an IPv4 link-local address (`169.254.S.{i+1}/16`), as two laptops
    /// on a cable do when no DHCP server answers.
    pub fn ipv4_link_local(&mut self) -> Result<()> {
        let subnet = 1 + std::process::id() % 250;
        for (i, h) in self.hosts.iter().enumerate() {
            ip(&["-n", h, "-4", "addr", "flush", "dev", "eth0"])?;
            let a = format!("169.254.{subnet}.{}", i + 1);
            ip(&["-n", h, "addr", "add", &format!("{a}/16"), "dev", "eth0"])?;
            self.addrs[i] = a;
        }
        Ok(())
    }

    /// Leave every host only the `fe80::` address its interface gave itself: no IPv4, no
    /// IPv6 prefix (a cable or an ad-hoc Wi-Fi with nothing that assigns addresses). Waits
    /// until the kernel has finished duplicate-address detection. `addrs` become those.
    pub fn link_local_only(&mut self) -> Result<()> {
        for (i, h) in self.hosts.iter().enumerate() {
            ip(&["-n", h, "-4", "addr", "flush", "dev", "eth0"])?;
            let deadline = Instant::now() + Duration::from_secs(15);
            self.addrs[i] = loop {
                let out = Command::new("ip")
                    .args([
                        "-n", h, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
                    ])
                    .output()?;
                let text = String::from_utf8_lossy(&out.stdout);
                let ready = text
                    .lines()
                    .find(|l| !l.contains("tentative"))
                    .and_then(|l| {
                        let a = l.split_whitespace().skip_while(|w| *w != "inet6").nth(1)?;
                        Some(a.split('/').next()?.to_string())
                    });
                if let Some(a) = ready {
                    break a;
                }
                if Instant::now() > deadline {
                    bail!("{h}: no usable fe80:: address after 15 s: {text}");
                }
                std::thread::sleep(Duration::from_millis(100));
            };
        }
        Ok(())
    }

    /// Add a ULA address (`fd78:S::{i+1}/64`) next to each host's IPv4 one: dual stack.
    pub fn dual_stack(&mut self) -> Result<()> {
        let subnet = 1 + std::process::id() % 250;
        for (i, h) in self.hosts.iter().enumerate() {
            let a = format!("fd78:{subnet:x}::{:x}/64", i + 1);
            ip(&["-n", h, "-6", "addr", "add", &a, "dev", "eth0", "nodad"])?;
        }
        Ok(())
    }

    /// Replace host `i`'s cable by an emulated radio link (see [`radio`]): `link.kbit`
    /// each way, `link.delay` one way, its buffer and loss. The host keeps its address.
    pub fn set_radio(&mut self, i: usize, link: radio::Link) -> Result<()> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (h, sw) = (&self.hosts[i], format!("{}sw", self.prefix));
        let port = format!("p{i}");
        let shown = Command::new("ip")
            .args(["-n", &sw, "-o", "link", "show", &port])
            .output()?;
        let shown = String::from_utf8_lossy(&shown.stdout);
        let bridge = shown
            .split_whitespace()
            .skip_while(|w| *w != "master")
            .nth(1)
            .context("the host's switch port has a bridge")?
            .to_string();
        ip(&["-n", h, "link", "del", "eth0"])?;
        let tag = format!("mjr{}x{k}", std::process::id() % 100_000);
        let (host_end, switch_end) = (format!("{tag}a"), format!("{tag}b"));
        let a = radio::open_tap(&host_end)?;
        let b = radio::open_tap(&switch_end)?;
        ip(&["link", "set", &host_end, "netns", h])?;
        ip(&["-n", h, "link", "set", &host_end, "name", "eth0"])?;
        ip(&[
            "-n",
            h,
            "addr",
            "add",
            &format!("{}/24", self.addrs[i]),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", h, "link", "set", "eth0", "up"])?;
        ip(&["link", "set", &switch_end, "netns", &sw])?;
        ip(&["-n", &sw, "link", "set", &switch_end, "name", &port])?;
        ip(&["-n", &sw, "link", "set", &port, "master", &bridge, "up"])?;
        self.radios.push(radio::Radio::start(a, b, link));
        Ok(())
    }

    /// Frames the LAN's radio links lost and duplicated so far.
    pub fn radio_counts(&self) -> (u64, u64) {
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        self.radios.iter().fold((0, 0), |(l, d), r| {
            (l + load(&r.lost), d + load(&r.duplicated))
        })
    }

    /// Move host `i` to another IPv4 address on the same LAN (`net.{octet}`), as a laptop
    /// that joins another network: its old address is removed. Returns the new address.
    pub fn move_host(&mut self, i: usize, octet: u8) -> Result<String> {
        let net = self.addrs[i]
            .rsplit_once('.')
            .map(|(n, _)| n.to_string())
            .context("an IPv4 host")?;
        let new = format!("{net}.{octet}");
        ip(&["-n", &self.hosts[i], "-4", "addr", "flush", "dev", "eth0"])?;
        ip(&[
            "-n",
            &self.hosts[i],
            "addr",
            "add",
            &format!("{new}/24"),
            "dev",
            "eth0",
        ])?;
        self.addrs[i] = new.clone();
        Ok(new)
    }

    /// Bytes host `i`'s `eth0` has received plus sent (whole frames).
    pub fn iface_bytes(&self, i: usize) -> Result<u64> {
        let mut total = 0;
        for dir in ["rx_bytes", "tx_bytes"] {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.hosts[i], "cat"])
                .arg(format!("/sys/class/net/eth0/statistics/{dir}"))
                .output()?;
            total += String::from_utf8_lossy(&out.stdout).trim().parse::<u64>()?;
        }
        Ok(total)
    }

    /// Take host `i` off the LAN (its switch port goes down) or put it back.
    pub fn set_link(&self, i: usize, up: bool) -> Result<()> {
        ip(&[
            "-n",
            &format!("{}sw", self.prefix),
            "link",
            "set",
            &format!("p{i}"),
            if up { "up" } else { "down" },
        ])
    }

    /// Make host `i`'s link lossy: drop `percent` % of the packets it sends and of those it
    /// receives (nftables `numgen random`; loopback untouched). This kernel has no netem, so
    /// loss is all a test can add at the packet level; delay and reordering live in the
    /// simulator (`majlis_core::sim`).
    pub fn set_loss(&self, i: usize, percent: u32) -> Result<()> {
        let rules = format!(
            "table inet majlis_loss {{\n\
               chain inbound {{ type filter hook input priority 0; iifname \"lo\" accept; numgen random mod 100 < {percent} counter drop; }}\n\
               chain outbound {{ type filter hook output priority 0; oifname \"lo\" accept; numgen random mod 100 < {percent} counter drop; }}\n\
             }}\n"
        );
        self.nft(i, &rules)
    }

    /// Block multicast DNS on host `i` (a firewall dropping UDP port 5353 both ways), as
    /// some office networks do.
    pub fn block_mdns(&self, i: usize) -> Result<()> {
        let rules = "table inet majlis_mdns {\n\
             chain inbound { type filter hook input priority 0; udp dport 5353 drop; }\n\
             chain outbound { type filter hook output priority 0; udp dport 5353 drop; }\n\
             }\n";
        self.nft(i, rules)
    }

    /// Load an nftables ruleset into host `i`.
    fn nft(&self, i: usize, rules: &str) -> Result<()> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.hosts[i], "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running nft (install nftables)")?;
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(rules.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "nft failed on host {i}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Packets host `i`'s loss rules dropped so far (both directions).
    pub fn dropped(&self, i: usize) -> u64 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.hosts[i],
                "nft",
                "list",
                "table",
                "inet",
                "majlis_loss",
            ])
            .output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        text.split("packets ")
            .skip(1)
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    /// A command that runs inside host `i`.
    pub fn command(&self, i: usize, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.hosts[i]]).arg(program);
        c
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        self.radios.clear();
        for h in self.hosts.iter().chain(&self.others) {
            let _ = ip(&["netns", "del", h]);
        }
        let _ = ip(&["netns", "del", &format!("{}sw", self.prefix)]);
    }
}

/// One device: a data directory, and a running `majlisd run` when started.
pub struct Daemon {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
    /// `MAJLIS_LOG` of `majlisd run`.
    pub log_filter: String,
    /// Arguments put before every command (e.g. `--passphrase-file F`).
    pub global: Vec<String>,
    /// Extra environment of `majlisd run` (e.g. a fault injector in `LD_PRELOAD`).
    pub env: Vec<(String, String)>,
}

impl Daemon {
    pub fn new(bin: &Path, root: &Path, name: &str) -> Daemon {
        Daemon {
            bin: bin.to_path_buf(),
            dir: root.join(name),
            name: name.to_string(),
            child: None,
            log: root.join(format!("{name}.log")),
            log_filter: "warn,majlis_core=debug".into(),
            global: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Run a CLI command for this device (outside any namespace: the API is a Unix socket).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("--data")
            .arg(&self.dir)
            .args(&self.global)
            .args(args)
            .output()
            .expect("majlisd runs")
    }

    /// Run a CLI command that must succeed; returns its whole stdout.
    pub fn all(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{}: majlisd {} failed: {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run a CLI command that must fail; returns what it said on stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            !out.status.success(),
            "{}: majlisd {} should have failed",
            self.name,
            args.join(" ")
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Run a CLI command that must succeed; returns its last stdout line.
    /// Take an identity as `name` and found the org `org` with it: this device's peer id
    /// (what a test's own client dials) and the org's id (what it joins).
    pub fn found(&self, name: &str, org: &str) -> (libp2p::PeerId, String) {
        let id: majlis_core::DeviceId = self
            .ok(&["init", "--name", name])
            .parse()
            .expect("init prints the device id last");
        (id.peer_id(), self.ok(&["org", "create", "--name", org]))
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.all(args)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string()
    }

    /// Start `majlisd run` inside host `host` of `lan`, and wait for its API socket.
    pub fn start(&mut self, lan: &Lan, host: usize, extra: &[&str]) {
        let cmd = lan.command(host, &self.bin);
        self.spawn(cmd, extra);
    }

    /// Start `majlisd run` inside host `host` of `lan` under a wrapper program (e.g.
    /// `faketime -f +10m` for a wrong clock), and wait for its API socket.
    pub fn start_wrapped(&mut self, lan: &Lan, host: usize, wrapper: &[&str], extra: &[&str]) {
        let mut cmd = lan.command(host, Path::new(wrapper[0]));
        cmd.args(&wrapper[1..]).arg(&self.bin);
        self.spawn(cmd, extra);
    }

    /// Start `majlisd run` in this network namespace (use `--no-mdns` and loopback).
    pub fn start_local(&mut self, extra: &[&str]) {
        let cmd = Command::new(&self.bin);
        self.spawn(cmd, extra);
    }

    /// Start `majlisd run` here and return at once, as `majlisd run &` in a script does.
    pub fn launch(&mut self, extra: &[&str]) {
        self.spawn_child(Command::new(&self.bin), extra);
    }

    fn spawn(&mut self, cmd: Command, extra: &[&str]) {
        self.spawn_child(cmd, extra);
        self.wait_api();
    }

    /// Wait until the running node's local API answers.
    pub fn wait_api(&self) {
        let sock = self.dir.join("majlisd.sock");
        let t = Instant::now();
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "{} did not start; log:\n{}",
                self.name,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn_child(&mut self, mut cmd: Command, extra: &[&str]) {
        assert!(self.child.is_none(), "{} already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = cmd
            .arg("--data")
            .arg(&self.dir)
            .args(&self.global)
            .arg("run")
            .args(extra)
            .env("MAJLIS_LOG", &self.log_filter)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn majlisd run");
        self.child = Some(child);
    }

    /// SIGTERM and wait; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let t = Instant::now();
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st.success();
            }
            if t.elapsed() > Duration::from_secs(10) {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the running node exited by itself, and how (reaped if so).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let st = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(st)
    }

    /// The pid of the running node, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the log, headed by the daemon's name: for a failure message,
    /// so that a test that fails once in CI says what the nodes were doing.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(n);
        format!(
            "--- {} ---\n{}",
            self.log.display(),
            lines[from..].join("\n")
        )
    }

    /// `history CHANNEL --json` as parsed objects.
    /// A command's output as JSON lines (lines that are not JSON are left out).
    fn json_lines(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let out = self.cli(args);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The history every node should agree on: [`Daemon::history_as_shown`] without the
    /// receipts of this node's own lines (`delivered_to`, `read_by`), which are this
    /// device's view and differ between the devices that hold the same messages.
    pub fn history(&self, channel: &str) -> Vec<serde_json::Value> {
        let mut h = self.history_as_shown(channel);
        for m in &mut h {
            if let Some(m) = m.as_object_mut() {
                m.remove("delivered_to");
                m.remove("read_by");
            }
        }
        h
    }

    /// `history --json` as this node prints it, receipts included.
    pub fn history_as_shown(&self, channel: &str) -> Vec<serde_json::Value> {
        self.json_lines(&["history", channel, "--json", "--limit", "100000"])
    }

    pub fn peers(&self) -> Vec<serde_json::Value> {
        self.json_lines(&["peers", "--json"])
    }

    /// The files this node knows of (`files --json`: blob, chunks, have, complete, …).
    pub fn files(&self) -> Vec<serde_json::Value> {
        self.json_lines(&["files", "--json"])
    }

    pub fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["stats"])).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An org of `names` set up through the CLI: the first founds it and is its admin, the others
/// join and are added (`relay` gets the relay role, `bot` the bot role). None is started.
pub fn org(bin: &Path, root: &Path, names: &[&str]) -> Vec<Daemon> {
    let ds: Vec<Daemon> = names.iter().map(|n| Daemon::new(bin, root, n)).collect();
    ds[0].ok(&["init", "--name", names[0]]);
    let org = ds[0].ok(&["org", "create", "--name", "acme"]);
    for d in &ds[1..] {
        let id = d.ok(&["init", "--name", &d.name]);
        d.ok(&["org", "join", &org]);
        let mut args = vec!["roster", "add", "--name", &d.name, "--device", &id];
        if d.name == "relay" {
            args.extend(["--role", "relay"]);
        }
        if d.name == "bot" {
            args.extend(["--role", "bot"]);
        }
        ds[0].ok(&args);
    }
    ds
}

/// Start `ds[0]` on loopback (no mDNS; `first_extra` added to its arguments) and `ds[1]`
/// pointed at it, and wait until they are connected.
pub fn start_pair_local(ds: &mut [Daemon], first_extra: &[&str]) {
    let addr = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let mut args = vec!["--no-mdns", "--listen", &addr];
    args.extend_from_slice(first_extra);
    ds[0].start_local(&args);
    ds[1].start_local(&[
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--peer",
        &addr,
    ]);
    wait_until("connected", 20, || ds[0].peers().len() == 1);
}

/// Copy a directory tree (a data directory, as a backup or a copied disk would).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A cheap pseudo-random number (tests need variety, not quality).
pub fn jitter(max: u64) -> u64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (n ^ (n >> 7).wrapping_mul(0x9E37_79B9)) % max.max(1)
}

/// Poll `f` until it returns true or `secs` pass.
/// [`wait_until`], and on a timeout the failure also says `detail()` (typically the nodes'
/// log tails, [`Daemon::log_tail`]).
pub fn wait_or_tell(
    what: &str,
    secs: u64,
    mut f: impl FnMut() -> bool,
    detail: impl FnOnce() -> String,
) {
    let t = Instant::now();
    while !f() {
        if t.elapsed() >= Duration::from_secs(secs) {
            panic!("timed out after {secs}s waiting for {what}\n{}", detail());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `LD_PRELOAD=…/libfaketimeMT.so.1`, for `Daemon::start_wrapped(…, &["env", &preload,
/// "FAKETIME=+2d"], …)` (`env` execs, so a stop signal reaches majlisd). Fails the test when
/// libfaketime is missing (CI installs it).
pub fn faketime_preload() -> String {
    let lib = std::fs::read_dir("/usr/lib")
        .expect("/usr/lib")
        .flatten()
        .map(|d| d.path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists())
        .expect("libfaketime (apt-get install faketime; .ci/run does)");
    format!("LD_PRELOAD={}", lib.display())
}

/// A Python with `jsonschema` (CI installs python3-jsonschema). Missing: the test fails,
/// it does not skip.
pub fn python() -> String {
    for p in ["python3", "/usr/bin/python3"] {
        let ok = std::process::Command::new(p)
            .args(["-c", "import jsonschema, csv, email"])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return p.to_string();
        }
    }
    panic!("no python3 with jsonschema: install python3-jsonschema (.ci/run does)");
}

/// Run a Python `script` (from [`python`]) with `args`; its standard output. A third-party
/// reader of what Majlis writes (exports): a failure fails the test.
pub fn py(script: &str, args: &[&std::path::Path]) -> String {
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
