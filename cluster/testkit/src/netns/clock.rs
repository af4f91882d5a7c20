//! Skewed wall clocks: a daemon started with libfaketime preloaded reads its wall clock
//! through a file of ours (`clock-<host>` in the run's directory), so a test can step that
//! host's clock forward or back while the daemon runs, as an NTP step on a real host
//! would. The monotonic clock (timers, deadlines, Raft timeouts) is left alone: a host's
//! wall clock being off does not make its timers fire early.

use super::NetCluster;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// Where Debian's `libfaketime` package puts the preload library (x86_64).
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Why skewed-clock tests cannot run here (`None`: they can).
pub fn faketime_unavailable() -> Option<String> {
    (!Path::new(LIBFAKETIME).exists()).then(|| {
        format!("{LIBFAKETIME} is missing (Debian package faketime; apt-get install faketime)")
    })
}

/// The environment that runs a program with its wall clock `offset` (libfaketime's
/// syntax: `+90s`, `-2m`), fixed for its lifetime.
pub fn faketime_env(offset: &str) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), LIBFAKETIME.into()),
        ("FAKETIME".into(), offset.into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

/// The environment of a daemon whose wall clock follows the offset written in `file`,
/// read again at most once a second.
pub(super) fn skewable_env(file: &Path) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), LIBFAKETIME.into()),
        ("FAKETIME_TIMESTAMP_FILE".into(), file.display().to_string()),
        ("FAKETIME_CACHE_DURATION".into(), "1".into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

impl NetCluster {
    /// The file holding host `name`'s clock offset (see [`super::NetOpts::skewable`]).
    pub(super) fn clock_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("clock-{name}"))
    }

    /// Steps the wall clock of `name` (one of [`super::NetOpts::skewable`]) to `secs`
    /// seconds from the true time; 0 sets it right. The daemon sees it within a second
    /// or two (libfaketime's cache).
    pub fn skew_clock(&self, name: &str, secs: i64) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.opts.skewable.iter().any(|h| h == name),
            "{name} was not started with a skewable clock (NetOpts::skewable)"
        );
        let p = self.clock_file(name);
        std::fs::write(&p, format!("{secs:+}s\n")).with_context(|| format!("write {}", p.display()))
    }
}
