//! ksfs mounts on the namespace network, each on a host of its own.
//!
//! `ip netns exec` runs its command in a new mount namespace (it remounts /sys there, and
//! makes `/` a slave of the root namespace's mounts), so a FUSE mount made by a ksfs
//! started that way is seen only inside that mount namespace, not by the test process.
//! The test reaches it through `/proc/<ksfs pid>/root`: a path walked from there follows
//! the mounts of the ksfs process's namespace. The file calls are made by the test
//! process, so they need no helper process; the mount's cluster traffic leaves from
//! its host's network namespace, where the faults are cut.

use super::NetCluster;
use super::cluster::MASTER_PORT;
use crate::bin_path;
use anyhow::{Context, bail};
use kdss_launch::Proc;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MOUNTED: Duration = Duration::from_secs(60);

impl NetCluster {
    /// Where the mount of host `name` (`mount-1`...) is inside its own mount namespace:
    /// a canonical path, as the kernel's mount table shows it.
    fn mountpoint(&self, name: &str) -> PathBuf {
        let dir = std::fs::canonicalize(self.dir.path()).expect("the run's directory");
        dir.join(format!("mnt-{name}"))
    }

    /// The mount of host `name` as the test process reaches it: through the ksfs
    /// process's root, so its mount namespace's mounts are followed.
    pub fn mount_path(&self, name: &str) -> PathBuf {
        let pid = self
            .procs
            .iter()
            .find(|p| p.name == name)
            .and_then(Proc::pid)
            .unwrap_or_else(|| panic!("no running mount {name}"));
        let mp = self.mountpoint(name);
        PathBuf::from(format!("/proc/{pid}/root{}", mp.display()))
    }

    /// Writes `mount.toml` for host `name`: the bucket with the admin keys, the masters
    /// by their bridge addresses, the cluster CA, `[mount]` and `[client]` keys from
    /// [`super::NetOpts`].
    pub(super) fn write_mount(&self, name: &str) -> anyhow::Result<()> {
        let mp = self.mountpoint(name);
        std::fs::create_dir_all(&mp)?;
        let masters: Vec<String> = (1..=self.opts.masters)
            .map(|i| {
                let ip = &self.net.host(&format!("master-{i}")).ip;
                format!("{:?}", format!("{ip}:{MASTER_PORT}"))
            })
            .collect();
        let client: String = self
            .opts
            .mount_client
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        let text = format!(
            "[cluster]\nmasters = [{}]\n\n[auth]\naccess_key = {:?}\nsecret_key = {:?}\n\
             bucket = {:?}\n\n[mount]\nmountpoint = {:?}\n{}\n[client]\n{client}\n\
             [tls]\nca = {:?}\n",
            masters.join(", "),
            self.access_key,
            self.secret_key,
            self.bucket,
            mp.display().to_string(),
            self.opts.mount_extra_toml,
            self.ca.display().to_string(),
        );
        let p = self.config_path(name);
        std::fs::write(&p, text).with_context(|| format!("write {}", p.display()))
    }

    /// Starts ksfs on host `name` and waits until its mount shows in its own namespace.
    pub(super) async fn start_mount(&mut self, name: &str) -> anyhow::Result<()> {
        let kdss = bin_path("kdss")?;
        self.spawn(&kdss, "mount", name)?;
        let mp = self.mountpoint(name).display().to_string();
        let start = Instant::now();
        loop {
            let p = self
                .procs
                .iter_mut()
                .find(|p| p.name == name)
                .expect("just spawned");
            if let Some(status) = p.exit_status() {
                bail!(
                    "{name} exited ({status}) before mounting:\n{}",
                    p.log_tail(30)
                );
            }
            if let Some(pid) = p.pid()
                && mounted_in(pid, &mp)
            {
                return Ok(());
            }
            if start.elapsed() > MOUNTED {
                bail!(
                    "{name}: {mp} not mounted within {MOUNTED:?}:\n{}",
                    p.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether process `pid`'s mount namespace has a mount at `mp`.
fn mounted_in(pid: u32, mp: &str) -> bool {
    std::fs::read_to_string(Path::new(&format!("/proc/{pid}/mountinfo")))
        .map(|t| t.lines().any(|l| l.split(' ').nth(4) == Some(mp)))
        .unwrap_or(false)
}
