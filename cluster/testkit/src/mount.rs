//! A real ksfs mount for tests: `kdss mount -c mount.toml` as a child process, ready when
//! the mountpoint shows in /proc/self/mountinfo, unmounted (SIGTERM, then
//! `fusermount3 -u -z`) on drop even when the test failed.

use crate::Cluster;
use kdss_launch::Proc;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why FUSE tests cannot run here, if they cannot.
pub fn fuse_unavailable() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse does not exist".into());
    }
    let ok = std::process::Command::new("fusermount3")
        .arg("--version")
        .output();
    if ok.is_err() {
        return Some("fusermount3 not found (install the fuse3 package)".into());
    }
    None
}

/// Whether `mp` is a mount point now.
pub fn is_mounted(mp: &Path) -> bool {
    let want = mp.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| {
            t.lines()
                .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
        })
        .unwrap_or(false)
}

/// A mounted bucket.
pub struct Mount {
    pub path: PathBuf,
    proc: Option<Proc>,
}

impl Mount {
    /// Mounts `bucket` of `cluster` at a fresh directory named `name` with the admin keys.
    /// `extra_mount_toml` is appended to the `[mount]` table (for example `attr_ttl = ...`).
    pub async fn new(
        cluster: &Cluster,
        name: &str,
        bucket: &str,
        extra_mount_toml: &str,
    ) -> anyhow::Result<Mount> {
        let path = cluster.scratch(&format!("mnt-{name}"));
        let path = std::fs::canonicalize(&path)?;
        let (ak, sk) = cluster.admin_keys();
        let masters: Vec<String> = cluster.masters().iter().map(|m| format!("{m:?}")).collect();
        let cfg = format!(
            "[cluster]\nmasters = [{}]\n\n[auth]\naccess_key = {ak:?}\nsecret_key = {sk:?}\nbucket = {bucket:?}\n\n\
             [mount]\nmountpoint = {:?}\n{extra_mount_toml}\n",
            masters.join(", "),
            path.display().to_string(),
        );
        let cfg_path = cluster.scratch("config").join(format!("mount-{name}.toml"));
        std::fs::write(&cfg_path, cfg)?;
        let kdss = crate::bin_path("kdss")?;
        let log = cluster.scratch("logs").join(format!("mount-{name}.log"));
        let env = vec![("RUST_LOG".to_string(), "info".to_string())];
        let args = vec!["mount".into(), "-c".into(), cfg_path.into_os_string()];
        let mut p = Proc::spawn(&format!("ksfs-{name}"), &kdss, args, &env, log)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_mounted(&path) {
            if let Some(st) = p.exit_status() {
                anyhow::bail!("ksfs exited ({st}) before mounting:\n{}", p.log_tail(30));
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "ksfs did not mount within 30 s:\n{}",
                p.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Mount {
            path,
            proc: Some(p),
        })
    }

    /// A path inside the mount.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// The mount's log tail (for assertion messages).
    pub fn log_tail(&self, n: usize) -> String {
        self.proc
            .as_ref()
            .map(|p| p.log_tail(n))
            .unwrap_or_default()
    }

    /// Unmounts now (SIGTERM; lazy fusermount3 if the mount is still there).
    pub fn unmount(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop(Duration::from_secs(10));
        }
        if is_mounted(&self.path) {
            let _ = std::process::Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.path)
                .status();
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.unmount();
    }
}
