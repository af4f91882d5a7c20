//! Access-time policy. The kernel leaves atime to FUSE filesystems (it marks every FUSE
//! inode `S_NOATIME`), and every atime change here is a Raft commit at the master, so ksfs
//! follows Linux's default `relatime`: a read updates atime only when atime is not newer
//! than mtime or ctime, or is a day old: at most one commit per file per change (or day).
//! `strictatime` updates on the first read of every open; `noatime` (and a read-only
//! mount) never. Directories follow the same rule on readdir unless `nodiratime`.

use kdss_proto::master as pb;
use serde::Deserialize;

/// `[mount] atime` and the `-o relatime|strictatime|noatime` mount options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AtimeMode {
    /// Update when atime <= mtime, atime <= ctime, or atime is over a day old (default).
    #[default]
    Relatime,
    /// Update on the first read of every open (one Raft commit per open that reads).
    Strictatime,
    /// Never update atime on reads.
    Noatime,
}

/// A day: relatime's refresh interval, as in Linux.
const DAY_NS: i64 = 24 * 3600 * 1_000_000_000;

/// What this mount does about atime (mode, directories, read-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtimePolicy {
    /// How file reads update atime (`Noatime` on a read-only mount).
    pub mode: AtimeMode,
    /// Whether readdir updates directory atime by the same rule.
    pub dirs: bool,
}

impl AtimePolicy {
    /// The policy of a mount with these settings.
    pub fn new(mode: AtimeMode, nodiratime: bool, read_only: bool) -> Self {
        let mode = if read_only { AtimeMode::Noatime } else { mode };
        AtimePolicy {
            mode,
            dirs: !nodiratime && mode != AtimeMode::Noatime,
        }
    }

    /// Whether a read of an inode with attributes `a` at `now_ns` updates its atime.
    pub fn due(&self, a: &pb::Attr, now_ns: i64) -> bool {
        if a.kind == pb::FileKind::Directory as i32 && !self.dirs {
            return false;
        }
        match self.mode {
            AtimeMode::Noatime => false,
            AtimeMode::Strictatime => true,
            AtimeMode::Relatime => {
                a.atime_ns <= a.mtime_ns
                    || a.atime_ns <= a.ctime_ns
                    || now_ns.saturating_sub(a.atime_ns) >= DAY_NS
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(atime: i64, mtime: i64, ctime: i64, dir: bool) -> pb::Attr {
        pb::Attr {
            atime_ns: atime,
            mtime_ns: mtime,
            ctime_ns: ctime,
            kind: if dir {
                pb::FileKind::Directory as i32
            } else {
                pb::FileKind::Regular as i32
            },
            ..Default::default()
        }
    }

    #[test]
    fn relatime_updates_once_after_each_change_or_after_a_day() {
        let p = AtimePolicy::new(AtimeMode::Relatime, false, false);
        let now = 10 * DAY_NS;
        assert!(
            p.due(&attr(5, 5, 5, false), now),
            "never read since written"
        );
        assert!(
            p.due(&attr(5, 9, 5, false), now),
            "modified after last read"
        );
        assert!(p.due(&attr(5, 4, 9, false), now), "changed after last read");
        assert!(
            !p.due(&attr(now - 1, 4, 4, false), now),
            "read after the change"
        );
        assert!(p.due(&attr(now - DAY_NS, 4, 4, false), now), "a day old");
        assert!(p.due(&attr(5, 5, 5, true), now), "directories too");
    }

    #[test]
    fn noatime_read_only_and_nodiratime_never_update() {
        let a = attr(5, 9, 9, false);
        let d = attr(5, 9, 9, true);
        assert!(!AtimePolicy::new(AtimeMode::Noatime, false, false).due(&a, 10));
        assert!(!AtimePolicy::new(AtimeMode::Strictatime, false, true).due(&a, 10));
        let nodir = AtimePolicy::new(AtimeMode::Relatime, true, false);
        assert!(nodir.due(&a, 10) && !nodir.due(&d, 10));
        let strict = AtimePolicy::new(AtimeMode::Strictatime, false, false);
        assert!(strict.due(&attr(20, 9, 9, false), 21));
    }
}
