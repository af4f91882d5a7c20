//! `[limits]` of master.toml: how much one master gives its callers at once. The gRPC
//! server gets a deadline per call, a cap on calls in flight per connection and HTTP/2 and
//! TCP keepalive (so dead peers free their connections); the Raft proposer gets a bounded
//! queue ([`crate::raft::proposer`]) so a flood of mutations waits for a slot, then fails
//! with a retryable error, instead of piling up in memory without end.

use kdss_common::{ConfigError, config::invalid};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// `[limits]` (optional).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Mutations admitted to the Raft proposer at once, waiting for a batch or in Raft
    /// (default 4096).
    #[serde(default = "default_proposal_queue")]
    pub proposal_queue: usize,
    /// How long a mutation waits for a proposer slot before it fails with Unavailable
    /// (default 5000 ms; 0 = fail at once when the queue is full).
    #[serde(default = "default_proposal_wait")]
    pub proposal_wait_ms: u64,
    /// Deadline of one gRPC call, streaming replies excepted once their first message is
    /// sent (default 60 s).
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Calls served at once on one client connection; more wait for one to end (default 256).
    #[serde(default = "default_per_connection")]
    pub max_concurrent_per_connection: usize,
    /// HTTP/2 streams one connection may open at once (default 256).
    #[serde(default = "default_streams")]
    pub max_concurrent_streams: u32,
    /// HTTP/2 ping period on idle connections (default 30 s).
    #[serde(default = "default_keepalive_interval")]
    pub http2_keepalive_interval_secs: u64,
    /// A connection whose ping is not answered within this is closed (default 10 s).
    #[serde(default = "default_keepalive_timeout")]
    pub http2_keepalive_timeout_secs: u64,
}

fn default_proposal_queue() -> usize {
    4096
}
fn default_proposal_wait() -> u64 {
    5000
}
fn default_request_timeout() -> u64 {
    60
}
fn default_per_connection() -> usize {
    256
}
fn default_streams() -> u32 {
    256
}
fn default_keepalive_interval() -> u64 {
    30
}
fn default_keepalive_timeout() -> u64 {
    10
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            proposal_queue: default_proposal_queue(),
            proposal_wait_ms: default_proposal_wait(),
            request_timeout_secs: default_request_timeout(),
            max_concurrent_per_connection: default_per_connection(),
            max_concurrent_streams: default_streams(),
            http2_keepalive_interval_secs: default_keepalive_interval(),
            http2_keepalive_timeout_secs: default_keepalive_timeout(),
        }
    }
}

impl LimitsSection {
    /// Refuses values that would switch a limit off or stop the master from working.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let ranges: [(&str, u64, u64, u64); 7] = [
            (
                "limits.proposal_queue",
                self.proposal_queue as u64,
                1,
                1 << 20,
            ),
            ("limits.proposal_wait_ms", self.proposal_wait_ms, 0, 600_000),
            (
                "limits.request_timeout_secs",
                self.request_timeout_secs,
                1,
                3600,
            ),
            (
                "limits.max_concurrent_per_connection",
                self.max_concurrent_per_connection as u64,
                1,
                65_536,
            ),
            (
                "limits.max_concurrent_streams",
                self.max_concurrent_streams as u64,
                1,
                65_536,
            ),
            (
                "limits.http2_keepalive_interval_secs",
                self.http2_keepalive_interval_secs,
                1,
                3600,
            ),
            (
                "limits.http2_keepalive_timeout_secs",
                self.http2_keepalive_timeout_secs,
                1,
                3600,
            ),
        ];
        for (key, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                return Err(invalid(path, key, format!("must be {lo} to {hi}, not {v}")));
            }
        }
        Ok(())
    }

    /// How long a mutation waits for a proposer slot.
    pub fn proposal_wait(&self) -> Duration {
        Duration::from_millis(self.proposal_wait_ms)
    }

    /// The gRPC server builder with these limits.
    pub fn grpc_server(&self) -> tonic::transport::Server {
        tonic::transport::Server::builder()
            .timeout(Duration::from_secs(self.request_timeout_secs))
            .concurrency_limit_per_connection(self.max_concurrent_per_connection)
            .max_concurrent_streams(self.max_concurrent_streams)
            .http2_keepalive_interval(Some(Duration::from_secs(
                self.http2_keepalive_interval_secs,
            )))
            .http2_keepalive_timeout(Some(Duration::from_secs(self.http2_keepalive_timeout_secs)))
    }
}
