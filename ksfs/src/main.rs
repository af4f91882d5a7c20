//! `ksfs -c mount.toml`: mount a KDSS bucket. Also the program behind
//! `mount -t fuse.ksfs SOURCE DIR -o opts` (see xfstests/mount.fuse.ksfs), which passes
//! the mountpoint, the source name and options on the command line.

use anyhow::Context;
use clap::Parser;
use ksfs::MountConfig;
use ksfs::atime::AtimeMode;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

/// Mount a KDSS bucket as a POSIX filesystem.
#[derive(Parser, Debug)]
#[command(name = "ksfs", version)]
struct Args {
    /// The mount configuration (see mount.toml.example).
    #[arg(short = 'c', long = "config")]
    config: PathBuf,
    /// Overrides `[mount] mountpoint`.
    #[arg(long)]
    mountpoint: Option<PathBuf>,
    /// Overrides `[mount] fsname` (the source name `mount` and `df` show).
    #[arg(long)]
    fsname: Option<String>,
    /// Detach once mounted (overrides `[mount] foreground`).
    #[arg(long)]
    background: bool,
    /// Stay in the foreground (overrides `[mount] foreground`).
    #[arg(long, conflicts_with = "background")]
    foreground: bool,
    /// mount(8)-style options: ro, rw, allow_other, subtype=NAME, fsname=NAME, relatime,
    /// strictatime, noatime, nodiratime, dev, suid; others (dev, suid, ...) are accepted and ignored.
    #[arg(short = 'o')]
    options: Vec<String>,
}

fn apply_options(cfg: &mut MountConfig, args: &Args) {
    if let Some(m) = &args.mountpoint {
        cfg.mount.mountpoint = m.clone();
    }
    if let Some(f) = &args.fsname {
        cfg.mount.fsname = Some(f.clone());
    }
    if args.background {
        cfg.mount.foreground = false;
    }
    if args.foreground {
        cfg.mount.foreground = true;
    }
    for o in args.options.iter().flat_map(|o| o.split(',')) {
        match o.split_once('=') {
            Some(("subtype", v)) => cfg.mount.subtype = v.to_string(),
            Some(("fsname", v)) => cfg.mount.fsname = Some(v.to_string()),
            _ => match o {
                "ro" => cfg.mount.read_only = true,
                "rw" => cfg.mount.read_only = false,
                "allow_other" => cfg.mount.allow_other = true,
                // FUSE leaves atime to us (the kernel marks FUSE inodes S_NOATIME).
                "relatime" | "atime" => cfg.mount.atime = AtimeMode::Relatime,
                "strictatime" => cfg.mount.atime = AtimeMode::Strictatime,
                "noatime" => cfg.mount.atime = AtimeMode::Noatime,
                "nodiratime" => cfg.mount.nodiratime = true,
                "dev" => cfg.mount.dev = true,
                "nodev" => cfg.mount.dev = false,
                "suid" => cfg.mount.suid = true,
                "nosuid" => cfg.mount.suid = false,
                "diratime" => cfg.mount.nodiratime = false,
                // mount(8) passes generic options (relatime, dev, ...); the kernel already
                // applied what it understands, and printing here would pollute callers.
                _ => {}
            },
        }
    }
}

fn init_tracing(log_file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match log_file {
        Some(p) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening log file {}", p.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

/// Forks: the parent waits until the child reports the mount live (one byte on a pipe)
/// and exits 0, or exits 1 if the child died first. Returns the pipe's write end in the
/// child. Runs before any thread exists (no runtime yet), so fork is safe.
fn daemonize() -> anyhow::Result<OwnedFd> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe() writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe");
    }
    // SAFETY: the process is single-threaded here.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    // SAFETY: both descriptors were just created by pipe() and are owned here only.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    if pid > 0 {
        drop(wr);
        let mut f = std::fs::File::from(rd);
        let mut b = [0u8; 1];
        let ok = std::io::Read::read(&mut f, &mut b).unwrap_or(0) == 1;
        std::process::exit(if ok { 0 } else { 1 });
    }
    drop(rd);
    // SAFETY: plain libc calls on the child's own session and standard descriptors.
    unsafe {
        libc::setsid();
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
    }
    Ok(wr)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut cfg = MountConfig::load(&args.config)?;
    apply_options(&mut cfg, &args);
    cfg.validate(&args.config)?;
    let ready_pipe = if cfg.mount.foreground {
        None
    } else {
        Some(daemonize()?)
    };
    init_tracing(if ready_pipe.is_some() {
        cfg.mount.log_file.as_deref()
    } else {
        None
    })?;
    let r = ksfs::mount::run(cfg, move || {
        if let Some(fd) = ready_pipe {
            let mut f = std::fs::File::from(fd);
            let _ = std::io::Write::write_all(&mut f, b"1");
        }
    });
    if let Err(e) = &r {
        tracing::error!(error = %e, "ksfs failed");
    }
    Ok(r?)
}
