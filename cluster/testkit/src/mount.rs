//! A real ksfs mount for tests: `kdss mount -c mount.toml` as a child process, ready when
//! the mountpoint shows in /proc/self/mountinfo, unmounted (SIGTERM, then
//! `fusermount3 -u -z`) on drop even when the test failed.

use crate::Cluster;
use kdss_launch::{Proc, is_mounted};
use std::path::PathBuf;
use std::time::Duration;

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
        let path = std::fs::canonicalize(cluster.scratch(&format!("mnt-{name}")))?;
        let kdss = crate::bin_path("kdss")?;
        let config = cluster.scratch("config").join(format!("mount-{name}.toml"));
        let log = cluster.scratch("logs").join(format!("mount-{name}.log"));
        let name = format!("ksfs-{name}");
        let req = kdss_launch::MountRequest {
            name: &name,
            bucket,
            mountpoint: &path,
            extra: extra_mount_toml,
            config: &config,
            log: &log,
        };
        let p = kdss_launch::spawn_mount(&cluster.layout, &kdss, req).await?;
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
