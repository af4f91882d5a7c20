//! `[limits]` of storage.toml: what one node takes on at once, so a flood of requests or a
//! slow device makes callers wait or fail instead of the node growing without bound.
//!
//! ```toml
//! [limits]
//! request_timeout_secs = 300              # a gRPC call still running after this fails
//! max_concurrent_per_connection = 256          # gRPC calls served at once per connection
//! write_queue_bytes = 268435456          # shard bytes admitted per disk, not yet durable
//! ```

use kdss_common::ConfigError;
use kdss_common::config::invalid;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// `[limits]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Seconds a gRPC call may run before the node answers DeadlineExceeded and drops it
    /// (a client's own shorter `grpc-timeout` wins). Bounds what a stalled sender or a
    /// hung device holds. Default 300, 1 to 86400.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// gRPC calls served at once on one connection; more wait, and their HTTP/2 stream
    /// windows push back on the sender. Default 256, 1 to 65536.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent_per_connection: usize,
    /// Shard bytes queued for one disk and not yet durable; a put past it waits for room
    /// before it is queued. Default 256 MiB, 1 MiB to 64 GiB.
    #[serde(default = "default_write_queue")]
    pub write_queue_bytes: u64,
}

fn default_request_timeout() -> u64 {
    300
}
fn default_max_concurrent() -> usize {
    256
}
fn default_write_queue() -> u64 {
    crate::engine::DEFAULT_WRITE_QUEUE_BYTES
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            request_timeout_secs: default_request_timeout(),
            max_concurrent_per_connection: default_max_concurrent(),
            write_queue_bytes: default_write_queue(),
        }
    }
}

impl LimitsSection {
    /// Refuses values outside their ranges, naming the key.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        if !(1..=86_400).contains(&self.request_timeout_secs) {
            return Err(invalid(
                path,
                "limits.request_timeout_secs",
                format!(
                    "{} is not allowed: must be 1 to 86400",
                    self.request_timeout_secs
                ),
            ));
        }
        if !(1..=65_536).contains(&self.max_concurrent_per_connection) {
            return Err(invalid(
                path,
                "limits.max_concurrent_per_connection",
                format!(
                    "{} is not allowed: must be 1 to 65536",
                    self.max_concurrent_per_connection
                ),
            ));
        }
        if !(1 << 20..=64 << 30).contains(&self.write_queue_bytes) {
            return Err(invalid(
                path,
                "limits.write_queue_bytes",
                format!(
                    "{} is not allowed: must be 1048576 (1 MiB) to 68719476736 (64 GiB)",
                    self.write_queue_bytes
                ),
            ));
        }
        Ok(())
    }

    /// The gRPC request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_out_of_range_are_refused_naming_the_key() {
        let p = Path::new("storage.toml");
        LimitsSection::default().validate(p).unwrap();
        let cases = [
            (
                LimitsSection {
                    request_timeout_secs: 0,
                    ..Default::default()
                },
                "limits.request_timeout_secs",
            ),
            (
                LimitsSection {
                    max_concurrent_per_connection: 0,
                    ..Default::default()
                },
                "limits.max_concurrent_per_connection",
            ),
            (
                LimitsSection {
                    write_queue_bytes: 4096,
                    ..Default::default()
                },
                "limits.write_queue_bytes",
            ),
        ];
        for (l, key) in cases {
            let e = l.validate(p).unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
    }
}
