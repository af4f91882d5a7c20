//! `[repair]`: how fast and how wide the leader rebuilds lost redundancy.

use kdss_common::config::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `[repair]` (optional; the defaults repair at once, at most 256 MiB/s cluster-wide).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RepairSection {
    /// Rebuild automatically (default true). When false, repair runs only on
    /// `kdss-cli repair run`; disk states and degraded reads work as before.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Seconds between passes (default 60). A disk going offline or draining, by the
    /// health pass or by hand, starts a pass at once.
    #[serde(default = "default_interval")]
    pub interval_sec: u64,
    /// Rebuilt shard bytes per second, cluster-wide: a size like "256MiB" or "0" for no
    /// limit (default "256MiB"). `kdss-cli repair throttle` overrides it at run time.
    #[serde(default = "default_bandwidth")]
    pub max_bandwidth: String,
    /// Shard rebuilds in flight at once, cluster-wide (default 4). Each costs the target
    /// node about k + 1 shards of memory while it decodes.
    #[serde(default = "default_concurrent")]
    pub max_concurrent: u32,
}

fn default_enabled() -> bool {
    true
}
fn default_interval() -> u64 {
    60
}
fn default_bandwidth() -> String {
    "256MiB".into()
}
fn default_concurrent() -> u32 {
    4
}

impl Default for RepairSection {
    fn default() -> Self {
        RepairSection {
            enabled: default_enabled(),
            interval_sec: default_interval(),
            max_bandwidth: default_bandwidth(),
            max_concurrent: default_concurrent(),
        }
    }
}

impl RepairSection {
    /// The configured bandwidth in bytes per second (0 = unlimited).
    pub fn bandwidth(&self) -> u64 {
        parse_bandwidth(&self.max_bandwidth).unwrap_or(0)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: format!("repair.{key}"),
            message: why,
        };
        if self.interval_sec == 0 {
            return Err(bad("interval_sec", "must be > 0".into()));
        }
        if self.max_concurrent == 0 || self.max_concurrent > 256 {
            return Err(bad("max_concurrent", "must be 1..=256".into()));
        }
        parse_bandwidth(&self.max_bandwidth).map_err(|e| bad("max_bandwidth", e))?;
        Ok(())
    }
}

/// Parses a bandwidth setting (bytes per second; 0 = no limit).
pub use kdss_common::size::parse_rate as parse_bandwidth;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_in_bandwidth_names_the_key() {
        let s = RepairSection {
            max_bandwidth: "12 parsecs".into(),
            ..Default::default()
        };
        let e = s.validate(Path::new("m.toml")).unwrap_err().to_string();
        assert!(e.contains("repair.max_bandwidth"), "{e}");
    }
}
