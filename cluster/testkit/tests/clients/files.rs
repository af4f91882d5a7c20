//! File clients: each a thread making blocking file calls through one ksfs mount, as an
//! application on that mount's host would. A write replaces the whole file (a temporary
//! file written and closed, then renamed over the key, so a reader never sees it half
//! done); a read opens, reads and closes; a delete unlinks; a rename moves one key onto
//! its partner (`rename(2)`, atomic on the mount; S3 has no rename); a list reads the
//! directory.
//! Each is recorded as one operation from its first call to its last call's return, so
//! the history check covers close-to-open across mounts: a read whose open began after
//! another mount's write (close and rename) returned must see that write or a later one.

use super::{body_len, body_of, is_key, random_key, rename_partner, value_of};
use kdss_history::{Call, Outcome, Recorder};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Process ids of file clients start here (100 per mount), apart from the S3 clients'.
const FIRST_PROCESS: u64 = 100;

/// Whether a history process is a file client.
pub fn is_file_process(process: u64) -> bool {
    (FIRST_PROCESS..1000).contains(&process)
}

/// The process id of client `i` of mount `m` (both from 1).
pub fn process_id(mount: usize, i: usize) -> u64 {
    FIRST_PROCESS * mount as u64 + i as u64
}

/// A running file client: what it is doing now, for the hang checks.
pub struct FileClient {
    pub process: u64,
    /// The call in progress and when it began.
    pub busy: Arc<Mutex<Option<(Instant, String)>>>,
    thread: Option<JoinHandle<()>>,
}

impl FileClient {
    /// Starts a client on the mounted directory `root`, until `stop`.
    pub fn start(process: u64, root: PathBuf, rec: Recorder, stop: Arc<AtomicBool>) -> Self {
        let busy = Arc::new(Mutex::new(None));
        let b = busy.clone();
        let thread = std::thread::Builder::new()
            .name(format!("files-{process}"))
            .spawn(move || run(process, &root, &rec, &stop, &b))
            .expect("spawn a file client");
        FileClient {
            process,
            busy,
            thread: Some(thread),
        }
    }

    /// How long the call in progress has been running, and what it is.
    pub fn in_flight(&self) -> Option<(Duration, String)> {
        let b = self.busy.lock().expect("busy lock");
        b.as_ref().map(|(t, what)| (t.elapsed(), what.clone()))
    }

    /// Waits up to `bound` for the client to stop (after `stop` was set); otherwise says
    /// which call it is stuck in (a mount call with no deadline) and leaves it. Blocks:
    /// call it off the async runtime (`spawn_blocking`).
    pub fn join(mut self, bound: Duration) -> Result<(), String> {
        let start = Instant::now();
        let t = self.thread.take().expect("joined once");
        while !t.is_finished() {
            if start.elapsed() > bound {
                return Err(format!(
                    "file client {} hung: {:?} has not returned",
                    self.process,
                    self.in_flight()
                ));
            }
            pause(Duration::from_millis(100));
        }
        t.join().expect("file client thread");
        Ok(())
    }
}

/// Sleeps the calling thread: file clients and their joins are blocking code, on threads
/// of their own (never on the async runtime's).
#[allow(clippy::disallowed_methods)]
fn pause(d: Duration) {
    std::thread::sleep(d);
}

fn run(
    process: u64,
    root: &Path,
    rec: &Recorder,
    stop: &AtomicBool,
    busy: &Mutex<Option<(Instant, String)>>,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = random_key();
        let call = match (rand::random_range(0..20), rename_partner(&key)) {
            (0..6, _) => Call::Put {
                value: format!("f{process}-{n}"),
            },
            (6..12, _) | (15..17, None) => Call::Get,
            (12..15, _) => Call::Delete,
            (15..17, Some(to)) => Call::Rename { to },
            _ => Call::List,
        };
        let on = if call == Call::List { "" } else { key.as_str() };
        *busy.lock().expect("busy lock") = Some((Instant::now(), format!("{call:?} {on}")));
        let pending = rec.invoke(process, on, call.clone());
        let o = one_call(root, process, n, &key, &call);
        pending.complete(o.clone());
        *busy.lock().expect("busy lock") = None;
        if matches!(o, Outcome::Unknown | Outcome::Failed) {
            // A partition makes calls fail; pause so clients do not spin.
            pause(Duration::from_millis(200));
        }
    }
}

/// Makes one call through the mount and says how it ended.
pub fn one_call(root: &Path, process: u64, n: u64, key: &str, call: &Call) -> Outcome {
    let path = root.join(key);
    match call {
        Call::Put { value } => {
            let tmp = root.join(format!(".tmp-{process}-{n}"));
            if write_closed(&tmp, &body_of(value, body_len(n))).is_err() {
                // The key was not touched: the rename never ran.
                let _ = std::fs::remove_file(&tmp);
                return Outcome::Failed;
            }
            match std::fs::rename(&tmp, &path) {
                Ok(()) => Outcome::Ok,
                Err(_) => {
                    let _ = std::fs::remove_file(&tmp);
                    Outcome::Unknown
                }
            }
        }
        Call::Get => match std::fs::read(&path) {
            Ok(body) => Outcome::Read {
                value: Some(value_of(&body)),
            },
            Err(e) if e.kind() == ErrorKind::NotFound => Outcome::Read { value: None },
            Err(_) => Outcome::Unknown,
        },
        // Not found: the key was absent when the unlink looked it up, which a delete
        // of an absent key leaves absent.
        Call::Delete => match std::fs::remove_file(&path) {
            Ok(()) => Outcome::Ok,
            Err(e) if e.kind() == ErrorKind::NotFound => Outcome::Ok,
            Err(_) => Outcome::Unknown,
        },
        // Not found: the source was absent, and a rename that finds no source moves
        // nothing (a mount must not answer it after moving the file).
        Call::Rename { to } => match std::fs::rename(&path, root.join(to)) {
            Ok(()) => Outcome::Ok,
            Err(e) if e.kind() == ErrorKind::NotFound => Outcome::Failed,
            Err(_) => Outcome::Unknown,
        },
        Call::List => list(root).map_or(Outcome::Unknown, |keys| Outcome::Listed { keys }),
    }
}

/// Creates `path` with `body` and closes it, failing when close fails: a FUSE mount
/// reports a failed flush of the written data only there, and `std::fs::write` (like
/// every `File` drop) ignores close's result, so a rename after it would publish a
/// file whose data never reached the cluster.
fn write_closed(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::fd::IntoRawFd;
    let mut f = std::fs::File::create(path)?;
    f.write_all(body)?;
    let fd = f.into_raw_fd();
    // SAFETY: `fd` was just taken from the File, which no longer owns or closes it.
    if unsafe { libc::close(fd) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn list(root: &Path) -> std::io::Result<Vec<String>> {
    let mut keys = Vec::new();
    for e in std::fs::read_dir(root)? {
        let name = e?.file_name().to_string_lossy().to_string();
        if is_key(&name) {
            keys.push(name);
        }
    }
    keys.sort();
    Ok(keys)
}

/// After the heal: reads every key through the mount at `root` until it answers, as
/// process `process`, giving up after `bound`.
pub fn final_reads(root: &Path, process: u64, rec: &Recorder, bound: Duration) {
    for k in 0..super::keys() {
        let key = format!("k{k}");
        let start = Instant::now();
        loop {
            let pending = rec.invoke(process, &key, Call::Get);
            let o = one_call(root, process, 0, &key, &Call::Get);
            let done = o != Outcome::Unknown;
            pending.complete(o);
            if done {
                break;
            }
            assert!(
                start.elapsed() < bound,
                "mount at {} answered no read of {key} within {bound:?} of the heal",
                root.display()
            );
            pause(Duration::from_millis(500));
        }
    }
}
