//! A slow radio link emulated in user space, for hosts on a namespace LAN.
//!
//! This kernel has `tbf` (rate) but not `netem` (delay, loss), so a host's cable is replaced
//! by two TAP devices, one in the host (its `eth0`) and one on the switch (its port), and
//! two threads per direction carry Ethernet frames between them the way a radio link would:
//! one frame at a time at the link's bit rate, each arriving `delay` (± `jitter`, which
//! reorders frames) after it left, with a bounded queue (tail drop), random loss and
//! duplication. Everything is frames, so ARP, multicast (mDNS) and TCP all see the same link.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// How the link behaves, each way.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    pub kbit: u32,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Each frame's delay varies uniformly by up to this much either way; frames overtake
    /// each other.
    pub jitter: Duration,
    /// Probability that a frame is lost, 0.0..1.0.
    pub loss: f64,
    /// Probability that a frame arrives twice.
    pub duplicate: f64,
    /// A frame that would wait longer than this behind others is dropped (the radio's
    /// buffer).
    pub queue: Duration,
}

impl Link {
    /// A jittery LAN link as the lossy tests and `lanbench lossy` use it: fast (100 Mbit/s),
    /// 5 ± 2 ms each way so frames overtake each other, 1 % duplicated, `loss` lost.
    pub fn jittery(loss: f64) -> Link {
        Link {
            kbit: 100_000,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(2),
            loss,
            duplicate: 0.01,
            queue: Duration::from_millis(200),
        }
    }
}

/// The running emulator of one link; stops (and closes its devices) when dropped.
pub struct Radio {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Frames lost (at random or to a full buffer) and duplicated so far, both ways.
    pub lost: Arc<AtomicU64>,
    pub duplicated: Arc<AtomicU64>,
}

impl Radio {
    /// Carry frames between the TAP devices `a` and `b` (already opened with [`open_tap`]).
    pub fn start(a: File, b: File, link: Link) -> Radio {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Counts {
            lost: Arc::new(AtomicU64::new(0)),
            duplicated: Arc::new(AtomicU64::new(0)),
        };
        let (a, b) = (Arc::new(a), Arc::new(b));
        let mut threads = Vec::new();
        for (i, (from, to)) in [(a.clone(), b.clone()), (b, a)].into_iter().enumerate() {
            let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
            let (s, c) = (stop.clone(), counts.clone());
            threads.push(std::thread::spawn(move || {
                receive(&from, tx, link, &s, &c, 0x9e37_79b9 + i as u64)
            }));
            let s = stop.clone();
            threads.push(std::thread::spawn(move || deliver(&to, rx, &s)));
        }
        Radio {
            stop,
            threads,
            lost: counts.lost,
            duplicated: counts.duplicated,
        }
    }
}

impl Drop for Radio {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[derive(Clone)]
struct Counts {
    lost: Arc<AtomicU64>,
    duplicated: Arc<AtomicU64>,
}

/// Read frames as they leave one end; schedule each for the moment it would arrive.
fn receive(
    from: &File,
    tx: mpsc::Sender<(Instant, Vec<u8>)>,
    link: Link,
    stop: &AtomicBool,
    counts: &Counts,
    mut seed: u64,
) {
    let bytes_per_sec = f64::from(link.kbit) * 1000.0 / 8.0;
    // When the link is free again (the last frame finished going out).
    let mut free_at = Instant::now();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        if !readable(from, 100) {
            continue;
        }
        let n = match (&*from).read(&mut buf) {
            Ok(n) => n,
            Err(_) => return,
        };
        let now = Instant::now();
        let start = free_at.max(now);
        if start - now > link.queue {
            counts.lost.fetch_add(1, Ordering::Relaxed);
            continue; // the radio's buffer is full
        }
        free_at = start + Duration::from_secs_f64(n as f64 / bytes_per_sec);
        // xorshift: test noise, not cryptography.
        let mut chance = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 1_000_000) as f64 / 1_000_000.0
        };
        if chance() < link.loss {
            counts.lost.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let copies = if chance() < link.duplicate {
            counts.duplicated.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = free_at + link.delay + link.jitter.mul_f64(2.0 * chance());
            let at = at.checked_sub(link.jitter).unwrap_or(at);
            if tx.send((at, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    }
}

/// Write each frame out of the other end when its time comes (earliest first: with jitter,
/// a later frame may be due sooner).
fn deliver(to: &File, rx: mpsc::Receiver<(Instant, Vec<u8>)>, stop: &AtomicBool) {
    let mut due: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>> = BinaryHeap::new();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        let wait = due
            .peek()
            .map_or(Duration::from_millis(100), |Reverse((at, ..))| {
                at.saturating_duration_since(now)
                    .min(Duration::from_millis(100))
            });
        match rx.recv_timeout(wait) {
            Ok((at, frame)) => {
                n += 1;
                due.push(Reverse((at, n, frame)));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) if due.is_empty() => return,
            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
        }
        let now = Instant::now();
        while due.peek().is_some_and(|Reverse((at, ..))| *at <= now) {
            let Some(Reverse((_, _, frame))) = due.pop() else {
                break;
            };
            // A frame the device will not take (it is down) is lost, as on a radio.
            let _ = (&*to).write(&frame);
        }
    }
}

fn readable(f: &File, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut p, 1, timeout_ms) > 0 && p.revents & libc::POLLIN != 0 }
}

/// Create a TAP device named `name` in this process's namespace, owned by the returned file
/// (it disappears when the file is closed). Frames are read and written without a header.
pub fn open_tap(name: &str) -> Result<File> {
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    if name.len() > 15 {
        bail!("interface name {name} is longer than 15 bytes");
    }
    let path = c"/dev/net/tun";
    // SAFETY: a valid C string; the result is checked.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        bail!("open /dev/net/tun: {}", std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    let mut req = IfReq {
        name: [0; 16],
        flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which `IfReq` lays out.
    if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req) } < 0 {
        bail!("TUNSETIFF {name}: {}", std::io::Error::last_os_error());
    }
    Ok(file)
}
