//! A host link the test process carries itself, so it can delay, jitter and drop frames:
//! what `tc netem` does, for kernels without `sch_netem` (the Firecracker guests these
//! tests run on have none, nor NFQUEUE).
//!
//! The host's interface is a TAP device moved into its namespace; its twin TAP device is
//! the bridge port. Two threads of the test process copy Ethernet frames between them,
//! one per direction, each holding frames in a FIFO until they are due: a frame read at
//! `t` is written at `t + delay ± jitter` (never before the frame ahead of it, so there
//! is no reordering), or dropped with probability `loss`. With no impairment a frame is
//! written as soon as it is read.

use anyhow::{Context, bail};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a shaped link does to every frame, each direction alike.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Impairment {
    /// Added to every frame's trip, each way.
    pub delay: Duration,
    /// A frame's delay is `delay` plus or minus up to this much (uniform).
    pub jitter: Duration,
    /// Share of frames dropped, 0.0 to 1.0.
    pub loss: f64,
}

/// Both TAP devices of one host and the threads between them; dropping it stops the
/// threads and closes the devices, which removes them.
pub(super) struct ShapedLink {
    impairment: Arc<Mutex<Impairment>>,
    /// Frames dropped by `loss` so far, both directions: shows the loss was applied.
    dropped: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl ShapedLink {
    /// Creates TAP devices `inner` (to be moved into the host's namespace) and `outer`
    /// (the bridge port) in the root namespace and starts copying between them.
    pub(super) fn new(inner: &str, outer: &str) -> anyhow::Result<ShapedLink> {
        let a = open_tap(inner)?;
        let b = open_tap(outer)?;
        let impairment = Arc::new(Mutex::new(Impairment::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for (src, dst) in [(a.try_clone()?, b.try_clone()?), (b, a)] {
            let (imp, stop, dropped) = (impairment.clone(), stop.clone(), dropped.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("wire-{inner}"))
                    .spawn(move || carry(src, dst, &imp, &dropped, &stop))
                    .context("start a link thread")?,
            );
        }
        Ok(ShapedLink {
            impairment,
            dropped,
            stop,
            threads,
        })
    }

    /// Applies `imp` to frames read from now on.
    pub(super) fn set(&self, imp: Impairment) {
        *self.impairment.lock().expect("impairment lock") = imp;
    }

    /// Frames dropped by loss since the link was made.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for ShapedLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// `TUNSETIFF`, `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Opens a new non-persistent TAP device `name` (Ethernet frames, no packet header),
/// non-blocking; it exists as long as the file is open.
fn open_tap(name: &str) -> anyhow::Result<File> {
    if name.len() >= libc::IFNAMSIZ {
        bail!(
            "interface name {name} is longer than {} bytes",
            libc::IFNAMSIZ - 1
        );
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/net/tun")
        .context("open /dev/net/tun (TAP devices)")?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: `req` is a properly laid out ifreq that outlives the call, and the fd is open.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF, &mut req) };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("TUNSETIFF {name}"));
    }
    Ok(f)
}

/// Waits until `f` is readable or `timeout` passed.
fn wait_readable(f: &File, timeout: Duration) {
    let mut p = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_micros().div_ceil(1000).min(100) as libc::c_int;
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// Copies frames from `src` to `dst` until `stop`, each held until due.
fn carry(
    mut src: File,
    mut dst: File,
    imp: &Mutex<Impairment>,
    dropped: &AtomicU64,
    stop: &AtomicBool,
) {
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut buf = vec![0u8; 65_536];
    let mut last_due = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let wait = queue
            .front()
            .map(|(due, _)| due.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(100));
        wait_readable(&src, wait);
        let i = *imp.lock().expect("impairment lock");
        loop {
            match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if i.loss > 0.0 && rand::random::<f64>() < i.loss {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let mut due = Instant::now() + i.delay;
                    if !i.jitter.is_zero() {
                        let j = i.jitter.mul_f64(rand::random::<f64>());
                        due = if rand::random::<bool>() {
                            due + j
                        } else {
                            due.checked_sub(j).unwrap_or(due)
                        };
                    }
                    last_due = due.max(last_due);
                    queue.push_back((last_due, buf[..n].to_vec()));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // The device went away (its namespace deleted): nothing left to carry.
                Err(_) => return,
            }
        }
        let now = Instant::now();
        while queue.front().is_some_and(|(due, _)| *due <= now) {
            let (_, frame) = queue.pop_front().expect("front");
            // A link taken down or a full queue drops the frame, as a wire would.
            let _ = dst.write(&frame);
        }
    }
}
