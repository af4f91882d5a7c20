//! A ksfs mount of a local cluster's bucket: `kdss mount -c mount.toml` as a child
//! process, ready when the mountpoint shows in /proc/self/mountinfo. Used by `kdss up`
//! and the test harness alike.

use crate::error::LaunchError;
use crate::layout::Layout;
use crate::process::Proc;
use std::path::Path;
use std::time::{Duration, Instant};

const MOUNT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a mount cannot be made here, if it cannot.
pub fn fuse_unavailable() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse does not exist".into());
    }
    if std::process::Command::new("fusermount3")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("fusermount3 not found (install the fuse3 package)".into());
    }
    None
}

/// Whether `mp` (absolute, without `.` components) is a mount point now.
pub fn is_mounted(mp: &Path) -> bool {
    let want = mp.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| {
            t.lines()
                .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
        })
        .unwrap_or(false)
}

/// What to mount and where its files go.
#[derive(Debug, Clone, Copy)]
pub struct MountRequest<'a> {
    /// Process name (logs, errors).
    pub name: &'a str,
    pub bucket: &'a str,
    /// Absolute, without `.` components (it is matched against mountinfo).
    pub mountpoint: &'a Path,
    /// TOML appended to the `[mount]` table.
    pub extra: &'a str,
    /// Where the mount.toml is written.
    pub config: &'a Path,
    /// Log file of the ksfs process.
    pub log: &'a Path,
}

/// Writes a mount.toml (0600) for the request with the admin keys, starts `kdss mount` and waits
/// until the bucket is mounted.
pub async fn spawn_mount(
    layout: &Layout,
    kdss_bin: &Path,
    r: MountRequest<'_>,
) -> Result<Proc, LaunchError> {
    let MountRequest {
        name,
        bucket,
        mountpoint,
        extra,
        config,
        log,
    } = r;
    if is_mounted(mountpoint) {
        return Err(LaunchError::Spec(format!(
            "{} is already a mount point; unmount it (fusermount3 -u) or choose another",
            mountpoint.display()
        )));
    }
    let masters: Vec<String> = layout
        .master_addrs()
        .iter()
        .map(|a| format!("{a:?}"))
        .collect();
    let text = format!(
        "[cluster]\nmasters = [{}]\n\n[auth]\naccess_key = {:?}\nsecret_key = {:?}\nbucket = {bucket:?}\n\n\
         [mount]\nmountpoint = {:?}\n{extra}\n",
        masters.join(", "),
        layout.admin_access_key,
        layout.admin_secret_key,
        mountpoint.display().to_string(),
    ) + &crate::tls::client_section(layout);
    crate::cluster::write(config, &text)?;
    let args = vec![
        "mount".into(),
        "-c".into(),
        config.as_os_str().to_os_string(),
    ];
    let env = vec![("RUST_LOG".to_string(), "info".to_string())];
    let mut p = Proc::spawn(name, kdss_bin, args, &env, log.to_path_buf())?;
    let start = Instant::now();
    while !is_mounted(mountpoint) {
        if let Some(status) = p.exit_status() {
            return Err(LaunchError::Exited {
                name: name.into(),
                status,
                reason: p.exit_reason(),
            });
        }
        if start.elapsed() > MOUNT_TIMEOUT {
            return Err(LaunchError::NotReady {
                name: name.into(),
                secs: MOUNT_TIMEOUT.as_secs(),
                last_error: format!("{} not in /proc/self/mountinfo", mountpoint.display()),
                log_tail: p.log_tail(30),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(p)
}
