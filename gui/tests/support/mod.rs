//! Shared by the Xvfb smoke test and the GUI benchmark: a seeded organization on disk, a
//! private X server, and the real `majlis` binary running on it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use majlis_core::e2e::Plain;
use majlis_core::{Profile, Role, RosterChange};

/// An org "Acme Trading" founded by amina in `root/amina` (returned), with members bilal,
/// chen and ليلى (a guest), channels `general`, `ops` and `مبيعات` (sales, Arabic), a
/// conversation in English and one in Arabic, and `filler` more messages in `general`.
pub fn seed(root: &Path, filler: usize) -> PathBuf {
    let dir = root.join("amina");
    let admin = Profile::init(&dir, "amina").unwrap();
    admin.org_create("Acme Trading").unwrap();
    let org = admin.org().unwrap().unwrap();
    let mut chain = admin.chain().unwrap();
    let mut others = Vec::new();
    for (name, role) in [
        ("bilal", Role::Member),
        ("chen", Role::Member),
        ("ليلى", Role::Guest),
    ] {
        let p = Profile::init(&root.join(format!("m{}", others.len())), name).unwrap();
        p.org_join(org).unwrap();
        admin
            .change_roster(
                &mut chain,
                &RosterChange::AddMember {
                    name: name.into(),
                    device: p.device_id(),
                    role: Some(role),
                },
            )
            .unwrap();
        others.push((name, p));
    }
    for (name, members) in [
        ("ops", None),
        (
            "مبيعات",
            Some(vec!["amina".to_string(), "bilal".into(), "ليلى".into()]),
        ),
    ] {
        admin
            .change_roster(
                &mut chain,
                &RosterChange::CreateChannel {
                    name: name.into(),
                    members,
                },
            )
            .unwrap();
    }
    for (_, p) in &others {
        let mut c = p.chain().unwrap();
        p.apply_rosters(&mut c, chain.versions().to_vec()).unwrap();
    }
    // A message (or an act) by member `who` (0: amina), as amina's node would hold it.
    let act = |who: usize, channel: &str, what: Plain| -> majlis_core::MessageId {
        // A millisecond of its own, so the conversation's order (by time) is the seed's.
        std::thread::sleep(Duration::from_millis(2));
        if who == 0 {
            let envs = admin.compose_act(&chain, channel, what).unwrap();
            envs.last().unwrap().id
        } else {
            let (name, p) = &others[who - 1];
            let envs = p.compose_act(&p.chain().unwrap(), channel, what).unwrap();
            for env in &envs {
                admin.store().insert_message(env, name).unwrap();
                admin.absorb(env).unwrap();
            }
            envs.last().unwrap().id
        }
    };
    let say = |who: usize, channel: &str, text: &str| act(who, channel, Plain::Text(text.into()));
    for i in 0..filler {
        say(
            0,
            "general",
            &format!("archived note {i}: stock count for aisle {}", i % 40),
        );
    }
    let delivery = say(
        0,
        "general",
        "Good morning team! The Al Noor delivery arrives at 10:00.",
    );
    let invoice = say(
        1,
        "general",
        "I'll take it. Invoice INV-2041 is ready for signing.",
    );
    say(1, "general", "Unloading at *bay 3*, not ~2~.");
    say(
        2,
        "general",
        "Thanks. Stand-up moved to 14:30 in room 2, @amina.",
    );
    say(0, "general", "Perfect, see you there.");
    // What the details panel and the rows show: a topic, a pin, a reaction, a thread.
    act(
        0,
        "general",
        Plain::Topic {
            topic: "Company-wide news and the day's logistics".into(),
            description: "Deliveries, stand-ups and anything everyone should know.".into(),
        },
    );
    act(
        0,
        "general",
        Plain::Pin {
            of: delivery,
            on: true,
        },
    );
    act(
        2,
        "general",
        Plain::React {
            to: invoice,
            emoji: "👍".into(),
            on: true,
        },
    );
    act(
        0,
        "general",
        Plain::Reply {
            to: invoice,
            text: "Signed, thanks.".into(),
            also_channel: false,
        },
    );
    // A poll in #ops that two have answered.
    let poll = act(
        0,
        "ops",
        Plain::Poll {
            question: "Which day for the stock take?".into(),
            options: vec!["Thursday".into(), "Friday".into(), "Saturday".into()],
            multi: false,
        },
    );
    for (who, choice) in [(1, 1), (2, 1)] {
        act(
            who,
            "ops",
            Plain::Vote {
                poll,
                choices: vec![choice],
            },
        );
    }
    // A picture amina shared in #ops, under the poll: drawn in the conversation.
    let blobs = admin.blobs().unwrap();
    let pic = root.join("stock-take-layout.png");
    floor_plan().save(&pic).unwrap();
    let prepared = majlis_core::files::prepare(&pic, blobs.dir()).unwrap();
    blobs.adopt(&prepared, "ops").unwrap();
    let info = majlis_core::files::FileInfo {
        name: "stock-take-layout.png".into(),
        mime: "image/png".into(),
        size: prepared.blob.size,
        caption: "Aisles for the stock take".into(),
        key: prepared.key,
    };
    std::thread::sleep(Duration::from_millis(2));
    admin
        .compose_file(&chain, "ops", prepared.blob, Plain::File(info))
        .unwrap();
    say(0, "مبيعات", "صباح الخير يا فريق، وصلت طلبية النور.");
    say(1, "مبيعات", "الفاتورة INV-2041 جاهزة للتوقيع.");
    say(3, "مبيعات", "شكرا! سأرسل *التصميم* الساعة 14:30");
    say(0, "مبيعات", "ممتاز، شكرا للجميع!");
    admin.store().outbox_clear().unwrap();
    admin.store().flush().unwrap();
    dir
}

/// A warehouse's floor plan, drawn: aisles on a light floor, one marked.
fn floor_plan() -> image::RgbImage {
    image::RgbImage::from_fn(480, 270, |x, y| {
        let aisle = (x / 40) % 3 == 1 && (30..240).contains(&y);
        let marked = (200..240).contains(&x) && (30..240).contains(&y);
        let wall = x < 6 || y < 6 || x > 473 || y > 263;
        image::Rgb(match (wall, marked, aisle) {
            (true, _, _) => [60, 64, 72],
            (_, true, _) => [214, 120, 40],
            (_, _, true) => [90, 130, 180],
            _ => [236, 232, 222],
        })
    })
}

/// A private X server (Xvfb) on a free display number, killed on drop.
pub struct Xvfb {
    child: Child,
    pub display: String,
    /// Held while it runs: two tests starting one at once would pick the same number.
    _turn: std::sync::MutexGuard<'static, ()>,
}

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Xvfb {
    /// `None` if Xvfb is not installed.
    pub fn start() -> Option<Xvfb> {
        if Command::new("Xvfb")
            .arg("-help")
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return None;
        }
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let n = (90..200)
            .find(|n| {
                !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                    && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .expect("a free X display number");
        let child = Command::new("Xvfb")
            .args([
                format!(":{n}").as_str(),
                "-screen",
                "0",
                "1000x680x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts");
        let t = Instant::now();
        while !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "Xvfb did not come up"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Xvfb {
            child,
            display: format!(":{n}"),
            _turn: turn,
        })
    }

    /// A screenshot of the whole screen as (width, height, RGB bytes), via ImageMagick's
    /// `import`; also written to `png` if given.
    pub fn screenshot(&self, png: Option<&Path>) -> (usize, usize, Vec<u8>) {
        if let Some(p) = png {
            let ok = Command::new("import")
                .args(["-display", &self.display, "-window", "root"])
                .arg(p)
                .status()
                .expect("ImageMagick's import runs");
            assert!(ok.success(), "import failed");
        }
        let out = Command::new("import")
            .args(["-display", &self.display, "-window", "root", "ppm:-"])
            .output()
            .expect("ImageMagick's import runs");
        assert!(
            out.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_ppm(&out.stdout).expect("a P6 image")
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_ppm(data: &[u8]) -> Option<(usize, usize, Vec<u8>)> {
    // "P6" <ws> width <ws> height <ws> maxval <one ws> pixels
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while data.get(i)?.is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while !data.get(i)?.is_ascii_whitespace() {
            i += 1;
        }
        fields.push(std::str::from_utf8(&data[start..i]).ok()?.to_string());
    }
    if fields[0] != "P6" {
        return None;
    }
    let (w, h): (usize, usize) = (fields[1].parse().ok()?, fields[2].parse().ok()?);
    // Samples of two bytes (big-endian) where maxval is over 255, as ImageMagick writes them
    // at its usual quantum depth: keep the high byte.
    let wide = fields[3].parse::<u32>().ok()? > 255;
    let n = w * h * 3 * if wide { 2 } else { 1 };
    let px = data.get(i + 1..i + 1 + n)?;
    let px = match wide {
        true => px.iter().step_by(2).copied().collect(),
        false => px.to_vec(),
    };
    Some((w, h, px))
}

/// Distinct colours in an RGB buffer (a blank or black screen has one or two).
pub fn distinct_colors(rgb: &[u8]) -> usize {
    rgb.chunks_exact(3)
        .map(|p| u32::from_be_bytes([0, p[0], p[1], p[2]]))
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// The real `majlis` binary on `display`, until it reports its first frame.
pub struct App {
    pub child: Child,
    pub first_frame_ms: u64,
}

impl App {
    pub fn start(bin: &Path, display: &str, data: &Path, extra: &[&str]) -> App {
        let mut child = Command::new(bin)
            .arg("--data")
            .arg(data)
            .args(["--no-mdns", "--report-startup"])
            .args(extra)
            .env("DISPLAY", display)
            .env_remove("WAYLAND_DISPLAY")
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("majlis starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut log = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(ms) = line
                    .strip_prefix("first frame after ")
                    .and_then(|r| r.strip_suffix(" ms"))
                {
                    let _ = tx.send(Ok(ms.parse::<u64>().unwrap_or(0)));
                }
                log.push_str(&line);
                log.push('\n');
            }
            let _ = tx.send(Err(log));
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(ms)) => App {
                child,
                first_frame_ms: ms,
            },
            Ok(Err(log)) => panic!("majlis exited before its first frame:\n{log}"),
            Err(_) => {
                let _ = child.kill();
                panic!("majlis showed no frame within 60 s")
            }
        }
    }

    /// CPU time used (user + system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
        ticks as f64 / 100.0
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
