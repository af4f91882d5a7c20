//! `[health]` of master.toml: when the leader's health pass calls a disk slow, erroring or
//! silent. The defaults suit production; tests shrink the windows and the grace.

use kdss_common::{ConfigError, config::invalid};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// `[health]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// Seconds between health passes on the leader (default 5). Each pass is one "window"
    /// for the counts below.
    #[serde(default = "default_interval")]
    pub interval_sec: u64,
    /// Seconds a storage node may stay silent before its disks go offline (default 600:
    /// long enough for a reboot, so a routine restart does not take its disks out).
    #[serde(default = "default_silent_grace")]
    pub silent_grace_sec: u64,
    /// A disk is slow in a window when its p99 latency is above this multiple of its
    /// peers' median p99 (default 4.0) ...
    #[serde(default = "default_slow_factor")]
    pub slow_factor: f64,
    /// ... and above this many milliseconds (default 20), so idle fast disks with tiny
    /// latencies never look slow to each other.
    #[serde(default = "default_slow_floor")]
    pub slow_floor_ms: u64,
    /// Latency samples a disk needs in a window to be judged (default 20).
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
    /// Other judged disks needed for a median worth comparing with (default 3).
    #[serde(default = "default_min_peers")]
    pub min_peers: usize,
    /// Consecutive bad windows (slow or new errors) before a disk becomes suspect (default 3).
    #[serde(default = "default_suspect_after")]
    pub suspect_after_windows: u32,
    /// Consecutive healthy windows before a suspect disk is online again (default 12).
    #[serde(default = "default_recover_after")]
    pub recover_after_windows: u32,
    /// Consecutive bad windows while suspect before the disk goes offline (default 60).
    #[serde(default = "default_offline_after")]
    pub offline_after_windows: u32,
    /// New I/O plus checksum errors in one window that make the window bad (default 1).
    #[serde(default = "default_error_threshold")]
    pub error_threshold: u64,
}

fn default_interval() -> u64 {
    5
}
fn default_silent_grace() -> u64 {
    600
}
fn default_slow_factor() -> f64 {
    4.0
}
fn default_slow_floor() -> u64 {
    20
}
fn default_min_samples() -> u64 {
    20
}
fn default_min_peers() -> usize {
    3
}
fn default_suspect_after() -> u32 {
    3
}
fn default_recover_after() -> u32 {
    12
}
fn default_offline_after() -> u32 {
    60
}
fn default_error_threshold() -> u64 {
    1
}

impl Default for HealthSection {
    fn default() -> Self {
        HealthSection {
            interval_sec: default_interval(),
            silent_grace_sec: default_silent_grace(),
            slow_factor: default_slow_factor(),
            slow_floor_ms: default_slow_floor(),
            min_samples: default_min_samples(),
            min_peers: default_min_peers(),
            suspect_after_windows: default_suspect_after(),
            recover_after_windows: default_recover_after(),
            offline_after_windows: default_offline_after(),
            error_threshold: default_error_threshold(),
        }
    }
}

impl HealthSection {
    /// Time between passes.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_sec)
    }

    /// Checks values that parse but cannot work, naming the key.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let positive = [
            ("health.interval_sec", self.interval_sec),
            ("health.silent_grace_sec", self.silent_grace_sec),
            ("health.min_samples", self.min_samples),
            ("health.min_peers", self.min_peers as u64),
            (
                "health.suspect_after_windows",
                self.suspect_after_windows.into(),
            ),
            (
                "health.recover_after_windows",
                self.recover_after_windows.into(),
            ),
            (
                "health.offline_after_windows",
                self.offline_after_windows.into(),
            ),
            ("health.error_threshold", self.error_threshold),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(invalid(path, key, "must be > 0"));
            }
        }
        if !self.slow_factor.is_finite() || self.slow_factor <= 1.0 {
            return Err(invalid(
                path,
                "health.slow_factor",
                "must be a number above 1.0 (a disk as fast as its peers is not slow)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let p = Path::new("master.toml");
        assert!(HealthSection::default().validate(p).is_ok());
        let e = HealthSection {
            slow_factor: 0.5,
            ..Default::default()
        }
        .validate(p)
        .unwrap_err();
        assert!(e.to_string().contains("health.slow_factor"), "{e}");
        let e = HealthSection {
            silent_grace_sec: 0,
            ..Default::default()
        }
        .validate(p)
        .unwrap_err();
        assert!(e.to_string().contains("health.silent_grace_sec"), "{e}");
    }
}
