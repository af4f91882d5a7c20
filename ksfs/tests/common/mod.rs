//! Real-mount harness for ksfs tests: a real cluster (`kdss_testkit::Cluster`) and the
//! `ksfs` binary of this crate mounted on a scratch directory; ready when the mountpoint
//! shows in /proc/self/mountinfo; SIGTERM, then a lazy `fusermount3 -u -z` and SIGKILL on
//! drop, even when the test failed (the mount's log is printed then).
#![allow(dead_code)]

use anyhow::{Context, bail};
use kdss_testkit::{Cluster, ClusterOpts};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why FUSE tests cannot run here (printed, and the test returns early), if they cannot.
pub fn skip_reason() -> Option<String> {
    kdss_testkit::fuse_unavailable()
}

/// Skips the calling test with a printed reason when FUSE is unavailable.
#[macro_export]
macro_rules! require_fuse {
    () => {
        if let Some(why) = common::skip_reason() {
            eprintln!("SKIPPED: {why}");
            return Ok(());
        }
    };
}

/// The harness's default cluster (1 master, 4 nodes × 2 disks, EC 5+2).
pub async fn cluster() -> anyhow::Result<Cluster> {
    Cluster::start(ClusterOpts::default()).await
}

pub use kdss_testkit::is_mounted;

/// A running `ksfs` process and its mountpoint.
pub struct KsfsMount {
    pub path: PathBuf,
    pub config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl KsfsMount {
    /// Mounts the cluster's bucket at `<scratch>/mnt-<name>`; `extra` is appended to the
    /// `[mount]` table.
    pub async fn start(cluster: &Cluster, name: &str, extra: &str) -> anyhow::Result<KsfsMount> {
        let path = std::fs::canonicalize(cluster.scratch(&format!("mnt-{name}")))?;
        Self::start_at(cluster, name, &path, extra).await
    }

    /// Mounts the cluster's bucket at `path` (config and log named after `name`).
    pub async fn start_at(
        cluster: &Cluster,
        name: &str,
        path: &Path,
        extra: &str,
    ) -> anyhow::Result<KsfsMount> {
        let path = path.to_path_buf();
        let (ak, sk) = cluster.admin_keys();
        let masters: Vec<String> = cluster.masters().iter().map(|m| format!("{m:?}")).collect();
        let text = format!(
            "[cluster]\nmasters = [{}]\n[auth]\naccess_key = {ak:?}\nsecret_key = {sk:?}\n\
             bucket = {:?}\n[mount]\nmountpoint = {:?}\n{extra}\n",
            masters.join(", "),
            cluster.bucket(),
            path.display().to_string(),
        );
        let config = cluster.scratch("config").join(format!("mount-{name}.toml"));
        std::fs::write(&config, text)?;
        let log = cluster.scratch("logs").join(format!("ksfs-{name}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_ksfs"))
            .arg("-c")
            .arg(&config)
            .env(
                "RUST_LOG",
                std::env::var("KSFS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("spawning ksfs")?;
        let mut m = KsfsMount {
            path,
            config,
            log,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_mounted(&m.path) {
            if let Some(st) = m.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("ksfs exited ({st}) before mounting:\n{}", m.log_tail(40));
            }
            if Instant::now() > deadline {
                bail!("ksfs did not mount within 30 s:\n{}", m.log_tail(40));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(m)
    }

    /// A path inside the mount.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// The last `n` lines of the mount's log.
    pub fn log_tail(&self, n: usize) -> String {
        let t = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The ksfs process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Waits up to `limit` for the process to end by itself (after an unmount from outside).
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status.
    #[allow(clippy::disallowed_methods)] // blocking wait in a sync teardown path
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break Some(st);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if status.is_none() {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.path)
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
        if is_mounted(&self.path) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.path)
                .status();
        }
        status
    }
}

impl Drop for KsfsMount {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("[ksfs] test failed; mount log:\n{}", self.log_tail(60));
        }
        self.stop();
    }
}

/// The errno of a failed std call (panics on success, naming `what`).
pub fn errno_of<T: std::fmt::Debug>(what: &str, r: std::io::Result<T>) -> i32 {
    match r {
        Ok(v) => panic!("{what}: expected an error, got {v:?}"),
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

/// A `-1`-style libc return turned into a Result.
pub fn check(rc: i32) -> std::io::Result<i32> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// NUL-terminated path for libc calls.
pub fn cpath(p: &Path) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

/// A file handle as name_to_handle_at(2) fills it (`struct file_handle` with room for
/// any handle FUSE makes).
#[repr(C)]
#[derive(Clone)]
pub struct FileHandle {
    bytes: u32,
    kind: i32,
    f: [u8; 128],
}

/// The file handle of `p` (name_to_handle_at without AT_HANDLE_* flags).
pub fn name_to_handle(p: &Path) -> std::io::Result<FileHandle> {
    let mut h = FileHandle {
        bytes: 128,
        kind: 0,
        f: [0; 128],
    };
    let mut mount_id = 0;
    let cp = cpath(p);
    // SAFETY: a valid path and a handle buffer whose `bytes` says its capacity.
    check(unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            cp.as_ptr(),
            &mut h as *mut FileHandle,
            &mut mount_id as *mut i32,
            0,
        ) as i32
    })?;
    Ok(h)
}

/// Opens what handle `h` names through the mount at `mount` (open_by_handle_at, root
/// only), with open(2) `flags`.
pub fn open_by_handle(mount: &Path, h: &FileHandle, flags: i32) -> std::io::Result<std::fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let m = std::fs::File::open(mount)?;
    let mut h = h.clone();
    // SAFETY: a handle filled in by name_to_handle_at, and a descriptor on the mount.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            m.as_raw_fd(),
            &mut h as *mut FileHandle,
            flags,
        ) as i32
    })?;
    // SAFETY: `fd` was just opened and is owned here only.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}
