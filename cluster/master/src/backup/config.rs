//! `[backup]` in master.toml: scheduled metadata backups on the leader.
//!
//! ```toml
//! [backup]
//! dir = "/var/backups/kdss-meta"   # on the masters' own disks; copy it off the machine
//! interval = "6h"                  # seconds, or a number with s, m, h or d
//! keep = 28                        # newest files kept; older ones are deleted
//! ```

use kdss_common::{ConfigError, config::invalid};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The shortest interval accepted: a backup copies the whole namespace, so more often
/// than this is a typo (a bare `6` meaning hours) rather than a policy.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// `[backup]`: where the leader writes its scheduled backups, how often, and how many it
/// keeps. Absent: no scheduled backups (`kdss-cli meta backup` still works).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSection {
    /// Directory of the backup files (created if absent). Every master that may become
    /// leader writes to its own copy of this path.
    pub dir: PathBuf,
    /// Time between backups: whole seconds, or a string such as `"90s"`, `"15m"`, `"6h"`,
    /// `"1d"` (default `"6h"`).
    #[serde(default = "default_interval", deserialize_with = "de_interval")]
    pub interval: Duration,
    /// Backup files kept in `dir`; after each backup the oldest beyond this are deleted
    /// (default 28).
    #[serde(default = "default_keep")]
    pub keep: u32,
}

fn default_interval() -> Duration {
    Duration::from_secs(6 * 3600)
}
fn default_keep() -> u32 {
    28
}

/// Parses `"6h"`-style intervals (and bare seconds).
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a number followed by s, m, h or d"))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?} (use s, m, h or d)"
            ));
        }
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

fn de_interval<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(n) => Ok(Duration::from_secs(n)),
        Raw::Text(s) => parse_interval(&s)
            .map_err(|e| serde::de::Error::custom(format!("backup.interval: {e}"))),
    }
}

impl BackupSection {
    /// Checks values that parse but cannot work.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        if self.dir.as_os_str().is_empty() {
            return Err(invalid(path, "backup.dir", "must not be empty"));
        }
        if self.interval < MIN_INTERVAL {
            return Err(invalid(path, "backup.interval", "must be at least 1s"));
        }
        if self.keep == 0 {
            return Err(invalid(
                path,
                "backup.keep",
                "must be at least 1 (0 would delete every backup it writes)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::MasterConfig;
    use std::path::Path;
    use std::time::Duration;

    const MINIMAL: &str = "[master]\nid = 1\ngrpc_addr = \"127.0.0.1:6700\"\n\
        http_addr = \"127.0.0.1:6701\"\ndata_dir = \"/tmp/m1\"\n\
        [cluster]\nid = \"kdss-local\"\nsecret = \"0123456789abcdef0123456789abcdef\"\n";

    fn parse(extra: &str) -> Result<MasterConfig, String> {
        MasterConfig::parse(Path::new("master.toml"), &format!("{MINIMAL}{extra}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn backups_are_off_unless_configured_and_take_defaults() {
        assert!(parse("").unwrap().backup.is_none());
        let c = parse("[backup]\ndir = \"/b\"\n").unwrap();
        let b = c.backup.unwrap();
        assert_eq!((b.interval, b.keep), (Duration::from_secs(6 * 3600), 28));
        let c = parse("[backup]\ndir = \"/b\"\ninterval = \"15m\"\nkeep = 3\n").unwrap();
        let b = c.backup.unwrap();
        assert_eq!((b.interval, b.keep), (Duration::from_secs(900), 3));
        let c = parse("[backup]\ndir = \"/b\"\ninterval = 90\n").unwrap();
        assert_eq!(c.backup.unwrap().interval, Duration::from_secs(90));
    }

    #[test]
    fn a_typo_or_a_bad_value_names_the_key() {
        let e = parse("[backup]\ndir = \"/b\"\nintervall = \"1h\"\n").unwrap_err();
        assert!(e.contains("intervall") && e.contains("master.toml:"), "{e}");
        let e = parse("[backup]\ndir = \"/b\"\ninterval = \"6 hours\"\n").unwrap_err();
        assert!(e.contains("backup.interval"), "{e}");
        let e = parse("[backup]\ndir = \"/b\"\nkeep = 0\n").unwrap_err();
        assert!(e.contains("backup.keep"), "{e}");
        let e = parse("[backup]\ndir = \"/b\"\ninterval = 0\n").unwrap_err();
        assert!(e.contains("backup.interval"), "{e}");
        let e = parse("[backup]\ninterval = \"1h\"\n").unwrap_err();
        assert!(e.contains("dir"), "{e}");
    }
}
