//! The life of a mount: connect to the cluster, find the bucket root, mount, serve until
//! `fusermount3 -u` / `umount` or SIGINT/SIGTERM, then flush what is buffered, close
//! the open-file session and make sure the mountpoint is released.

use crate::attr::InoMap;
use crate::config::MountConfig;
use crate::error::KsfsError;
use crate::fs::{AtimeDue, DirAttrs, DirModes, Ksfs, OpenDirs, OpenFiles};
use crate::fuse::KsfsFuse;
use fuser::{MountOption, SessionACL};
use kdss_client::Client;
use kdss_proto::master as pb;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Lifetime of this mount's open-file session at the master (renewed every third of it).
const SESSION_TTL: Duration = Duration::from_secs(60);

/// The kernel mount options for `cfg`.
pub fn fuse_config(cfg: &MountConfig) -> fuser::Config {
    let mut opts = vec![
        MountOption::FSName(cfg.fsname()),
        // The kernel checks permissions (mode bits and POSIX ACLs) on our attributes.
        MountOption::DefaultPermissions,
        if cfg.mount.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    if cfg.mount.dev {
        opts.push(MountOption::Dev);
    }
    if cfg.mount.suid {
        opts.push(MountOption::Suid);
    }
    if !cfg.mount.subtype.is_empty() {
        // As a kernel option: fuser's direct mount would otherwise report plain `fuse`.
        opts.push(MountOption::CUSTOM(format!(
            "subtype={}",
            cfg.mount.subtype
        )));
    }
    let mut c = fuser::Config::default();
    c.mount_options = opts;
    c.acl = if cfg.mount.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    c
}

/// Connects and resolves the bucket root, within the configured timeout; attaches the
/// disk cache when the mount has one.
async fn connect(cfg: &MountConfig) -> Result<(Client, u64), KsfsError> {
    let timeout = cfg.timeout();
    cfg.tls.install()?;
    let client = tokio::time::timeout(timeout, Client::connect(cfg.client_config()))
        .await
        .map_err(|_| KsfsError::Timeout(timeout))?
        .map_err(KsfsError::Connect)?;
    let name = cfg.auth.bucket.clone();
    let call = client.master().get_bucket(pb::BucketRequest { name });
    let reply = tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| KsfsError::Timeout(timeout))?
        .map_err(|e| KsfsError::Bucket {
            bucket: cfg.auth.bucket.clone(),
            message: e.to_string(),
        })?;
    let bucket = reply.bucket.ok_or_else(|| KsfsError::Bucket {
        bucket: cfg.auth.bucket.clone(),
        message: "the master returned no bucket".into(),
    })?;
    if let Some((dir, size)) = cfg.cache_dir() {
        // The master names no cluster id to clients; a bucket's name and creation time
        // stand in for it, so a directory reused after the cluster (or bucket) was made
        // anew never serves the old one's blocks.
        let ns = format!("{}@{}", bucket.name, bucket.created_ns);
        let d = dir.clone();
        let cache =
            tokio::task::spawn_blocking(move || kdss_client::DiskCache::open(&d, size, &ns))
                .await
                .map_err(|e| KsfsError::Runtime(std::io::Error::other(e)))??;
        let s = cache.stats();
        tracing::info!(dir = %dir.display(), size, entries = s.entries, bytes = s.bytes, "disk cache open");
        // A fresh client has none yet.
        let _ = client.attach_disk_cache(cache);
    }
    Ok((client, bucket.root_ino))
}

fn session_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!(
        "ksfs-{}-{}-{:016x}",
        host.trim(),
        std::process::id(),
        rand::random::<u64>()
    )
}

/// Mounts and serves until unmounted (`fusermount3 -u`, `umount`) or SIGINT/SIGTERM, on a
/// runtime of its own (call it from a plain thread, not from inside a tokio runtime).
/// `ready` runs once the mount is live (the background mode lets the parent exit then).
pub fn run(cfg: MountConfig, ready: impl FnOnce()) -> Result<(), KsfsError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ksfs-io")
        .build()
        .map_err(KsfsError::Runtime)?;
    let r = rt.block_on(serve(cfg, signalled(), ready));
    rt.shutdown_timeout(Duration::from_secs(2));
    r
}

/// Mounts and serves until unmounted (`fusermount3 -u`, `umount`) or until `shutdown`
/// resolves, then flushes buffered writes, closes the open-file session and makes sure the
/// mountpoint is released. Runs on the caller's (multi-threaded) tokio runtime; `ready`
/// runs once the mount is live.
pub async fn serve(
    cfg: MountConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(),
) -> Result<(), KsfsError> {
    let mp = cfg.mount.mountpoint.clone();
    if !mp.is_dir() {
        return Err(KsfsError::Mountpoint {
            path: mp,
            message: "is not a directory".into(),
        });
    }
    let (client, root) = connect(&cfg).await?;
    let timeout = cfg.timeout();
    let metrics = Arc::new(crate::metrics::KsfsMetrics::new(client.clone()));
    let metrics_task = match &cfg.mount.metrics_addr {
        None => None,
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| KsfsError::MetricsListen {
                    addr: addr.clone(),
                    source,
                })?;
            let bound = l.local_addr().map_err(KsfsError::Runtime)?;
            tracing::info!(addr = %bound, "ksfs metrics at /metrics");
            Some(tokio::spawn(crate::metrics::serve(l, metrics.clone())))
        }
    };
    let fs = Arc::new(Ksfs {
        client,
        bucket: cfg.auth.bucket.clone(),
        inos: InoMap::new(root),
        attr_ttl: cfg.attr_ttl(),
        entry_ttl: cfg.entry_ttl(),
        timeout,
        data_timeout: timeout.max(Duration::from_secs(15)) * 4,
        files: OpenFiles::default(),
        session: session_id(),
        dirs: OpenDirs::default(),
        atime: cfg.atime_policy(),
        atime_due: AtimeDue::default(),
        dir_attrs: DirAttrs::default(),
        names: Default::default(),
        dir_modes: DirModes::default(),
        notifier: std::sync::OnceLock::new(),
        metrics,
    });
    let keep_alive = {
        let fs = fs.clone();
        tokio::spawn(async move { fs.keep_alive(SESSION_TTL).await })
    };
    let trim = tokio::spawn(crate::trim::trim_when_idle(
        fs.client.clone(),
        fs.metrics.clone(),
    ));
    let adapter = KsfsFuse::new(fs.clone(), tokio::runtime::Handle::current());
    let fuse_cfg = fuse_config(&cfg);
    let mount_at = mp.clone();
    let session =
        tokio::task::spawn_blocking(move || fuser::Session::new(adapter, &mount_at, &fuse_cfg))
            .await
            .map_err(|e| KsfsError::Runtime(std::io::Error::other(e)))?
            .map_err(|source| KsfsError::Mount {
                path: mp.clone(),
                source,
            })?;
    let _ = fs.notifier.set(session.notifier());
    // A second handle on the connection, to ask the kernel whether it still stands.
    let probe = std::os::fd::AsFd::as_fd(&session)
        .try_clone_to_owned()
        .map_err(KsfsError::Runtime)?;
    let background = session.spawn().map_err(KsfsError::Runtime)?;
    tracing::info!(mountpoint = %mp.display(), bucket = %cfg.auth.bucket, root, "ksfs ready");
    ready();

    tokio::select! {
        _ = finished(&background.guard) => tracing::info!("unmounted"),
        _ = shutdown => {
            tracing::info!("shutting down: unmounting");
            if !connection_gone(&probe) {
                unmount(&mp);
            }
        }
    }
    let serve = never_unmount(background);
    let served = tokio::task::spawn_blocking(move || serve.join())
        .await
        .map_err(|e| KsfsError::Runtime(std::io::Error::other(e)))?;
    fs.flush_all().await;
    for h in fs.files.open_master_handles() {
        fs.release_master(h).await;
    }
    keep_alive.abort();
    trim.abort();
    if let Some(t) = metrics_task {
        t.abort();
    }
    tracing::info!("ksfs stopped");
    match served {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(KsfsError::Mount {
            path: mp,
            source: e,
        }),
        Err(_) => Err(KsfsError::Runtime(std::io::Error::other(
            "FUSE thread panicked",
        ))),
    }
}

/// Resolves on SIGINT or SIGTERM: the `shutdown` a standalone mount uses.
pub async fn signalled() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    let sig = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    tracing::info!(signal = sig, "signal received");
}

/// Resolves once the FUSE thread has ended (the kernel ended the connection).
async fn finished<T>(t: &std::thread::JoinHandle<T>) {
    while !t.is_finished() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The FUSE thread's handle, with fuser's own unmount-on-drop disarmed. fuser 0.18 asks
/// whether the mount still stands by reading the connection's POLLERR the wrong way round
/// (fixed upstream in cberner/fuser#703, not released), so dropping its `Mount` after the
/// kernel had unmounted us unmounted the path again; by then a new mount may sit there,
/// and a remount lost it (xfstests' mount cycling, generic/029). We unmount ourselves
/// ([`unmount`], only while [`connection_gone`] says no) and leak fuser's handle: its
/// device fd closes when the process ends.
fn never_unmount(bg: fuser::BackgroundSession) -> std::thread::JoinHandle<std::io::Result<()>> {
    let bg = std::mem::ManuallyDrop::new(bg);
    // SAFETY: `guard` is read out exactly once and `bg` is never dropped, so the handle
    // has one owner; the rest of `bg` is leaked on purpose (see above).
    unsafe { std::ptr::read(&bg.guard) }
}

/// Whether the kernel ended the FUSE connection: /dev/fuse polls POLLERR once the mount is
/// gone or aborted (what libfuse checks before it unmounts).
fn connection_gone(fd: &impl std::os::fd::AsFd) -> bool {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call; zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1 && p.revents & libc::POLLERR != 0
}

/// Unmounts `mp`: umount(2) as root, `fusermount3 -u` otherwise, and lazily when busy.
fn unmount(mp: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(c) = std::ffi::CString::new(mp.as_os_str().as_bytes()) {
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
            return;
        }
    }
    let user = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(mp)
        .stderr(std::process::Stdio::null())
        .status();
    if !user.is_ok_and(|s| s.success()) {
        tracing::warn!(mountpoint = %mp.display(), "unmount failed (busy?); detaching lazily");
        lazy_unmount(mp);
    }
}

/// Detaches a busy mount (`umount -l`): new opens fail, the open files finish.
fn lazy_unmount(mp: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(mp.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let r = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    if r != 0 {
        let _ = std::process::Command::new("fusermount3")
            .arg("-u")
            .arg("-z")
            .arg(mp)
            .status();
    }
}
