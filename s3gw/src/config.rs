//! `s3gw.toml`: where the gateway listens, which masters it signs in to, and how its
//! client data path is sized. Parsed with `deny_unknown_fields` so a typo is reported
//! with file, line and key instead of being silently ignored.

use kdss_common::ConfigError;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// The whole gateway configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// HTTP listener and S3 identity of the gateway.
    pub s3: S3Section,
    /// The cluster the gateway fronts.
    pub cluster: ClusterSection,
    /// Sizing of the client data path (all optional).
    #[serde(default)]
    pub client: ClientSection,
}

/// `[s3]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Section {
    /// `host:port` to listen on (port 0 picks a free port; the bound address is logged).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Region the gateway answers for; SigV4 scopes must name it.
    #[serde(default = "default_region")]
    pub region: String,
    /// Optional domain for virtual-host style requests (`bucket.<domain>`).
    #[serde(default)]
    pub domain: Option<String>,
    /// How far a request's `x-amz-date` may be from our clock, in seconds.
    #[serde(default = "default_skew")]
    pub max_skew_secs: u64,
    /// How long a user's secret fetched from the master is reused, in seconds.
    #[serde(default = "default_secret_ttl")]
    pub secret_cache_secs: u64,
}

/// `[cluster]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Master gRPC addresses.
    pub masters: Vec<String>,
    /// The cluster secret: the gateway signs in with the service identity.
    pub secret: String,
    /// Cluster id (informational; accepted so one `[cluster]` block can be shared).
    #[serde(default)]
    pub id: Option<String>,
}

/// `[client]`: passed to kdss-client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSection {
    /// Bytes of object data per stripe.
    #[serde(default = "default_chunk")]
    pub chunk_size: usize,
    /// Read cache budget in bytes.
    #[serde(default = "default_cache")]
    pub cache_bytes: u64,
    /// Chunks (stripes) one GET reads ahead of what it has sent.
    #[serde(default = "default_prefetch")]
    pub prefetch_stripes: usize,
    /// Chunk reads in flight across all GETs of this gateway: beyond it GETs wait in the
    /// gateway instead of queueing at the storage nodes past the client's shard deadline.
    #[serde(default = "default_inflight_reads")]
    pub max_inflight_reads: usize,
    /// Bytes one PUT may hold before waiting for durable shards (memory bound per request).
    #[serde(default = "default_window")]
    pub write_window_bytes: u64,
    /// Objects at most this large are stored inline in metadata (default: the client
    /// library's, so the gateway and ksfs store small files the same way).
    #[serde(default = "default_inline")]
    pub inline_threshold: usize,
    /// Deadline of one master call, in milliseconds.
    #[serde(default = "default_rpc_timeout")]
    pub rpc_timeout_ms: u64,
}

impl Default for ClientSection {
    fn default() -> Self {
        ClientSection {
            chunk_size: default_chunk(),
            cache_bytes: default_cache(),
            prefetch_stripes: default_prefetch(),
            max_inflight_reads: default_inflight_reads(),
            write_window_bytes: default_window(),
            inline_threshold: default_inline(),
            rpc_timeout_ms: default_rpc_timeout(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:9000".into()
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_skew() -> u64 {
    15 * 60
}
fn default_secret_ttl() -> u64 {
    10
}
fn default_chunk() -> usize {
    4 << 20
}
fn default_cache() -> u64 {
    256 << 20
}
fn default_prefetch() -> usize {
    4
}
fn default_inflight_reads() -> usize {
    16
}
fn default_window() -> u64 {
    32 << 20
}
fn default_inline() -> usize {
    kdss_client::ClientConfig::default().inline_threshold
}
fn default_rpc_timeout() -> u64 {
    15_000
}

impl S3Config {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let cfg: S3Config = kdss_common::load_toml(path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Parses and validates TOML text (`path` only names the source in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let cfg: S3Config = kdss_common::config::parse_toml(path, text)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        use kdss_common::config::invalid;
        if self.s3.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                path,
                "s3.listen",
                "expected host:port, e.g. 127.0.0.1:9000",
            ));
        }
        if self.s3.region.is_empty() {
            return Err(invalid(path, "s3.region", "must not be empty"));
        }
        if self.cluster.masters.is_empty() {
            return Err(invalid(path, "cluster.masters", "name at least one master"));
        }
        if self.cluster.secret.is_empty() {
            return Err(invalid(path, "cluster.secret", "must not be empty"));
        }
        if self.client.chunk_size < 4096
            || self.client.chunk_size > kdss_client::config::MAX_CHUNK_SIZE
        {
            return Err(invalid(
                path,
                "client.chunk_size",
                "between 4 KiB and 256 MiB",
            ));
        }
        if self.client.max_inflight_reads == 0 {
            return Err(invalid(path, "client.max_inflight_reads", "at least 1"));
        }
        if self.client.write_window_bytes < self.client.chunk_size as u64 {
            return Err(invalid(
                path,
                "client.write_window_bytes",
                "at least one chunk_size",
            ));
        }
        Ok(())
    }

    /// The kdss-client settings for the service identity.
    pub fn client_config(&self) -> kdss_client::ClientConfig {
        kdss_client::ClientConfig {
            masters: self.cluster.masters.clone(),
            access_key: kdss_common::auth::SERVICE_ACCESS_KEY.into(),
            secret_key: self.cluster.secret.clone(),
            chunk_size: self.client.chunk_size,
            cache_bytes: self.client.cache_bytes,
            prefetch_stripes: self.client.prefetch_stripes,
            max_inflight_reads: self.client.max_inflight_reads,
            write_window_bytes: self.client.write_window_bytes,
            rpc_timeout: Duration::from_millis(self.client.rpc_timeout_ms),
            inline_threshold: self.client.inline_threshold,
            ..kdss_client::ClientConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_defaults() {
        let text = "[s3]\nlisten = \"127.0.0.1:0\"\n[cluster]\nmasters = [\"127.0.0.1:6700\"]\nsecret = \"s\"\n";
        let c = S3Config::parse(Path::new("s3gw.toml"), text).unwrap();
        assert_eq!(c.s3.region, "us-east-1");
        assert_eq!(c.client.chunk_size, 4 << 20);
        assert_eq!(
            c.client.inline_threshold,
            kdss_client::ClientConfig::default().inline_threshold,
            "small objects are inlined as the client library decides"
        );
        assert_eq!(
            ClientSection::default().inline_threshold,
            c.client.inline_threshold
        );
    }

    #[test]
    fn typo_is_named_with_line() {
        let text = "[s3]\nlisten = \"127.0.0.1:0\"\nregoin = \"x\"\n[cluster]\nmasters = []\nsecret = \"s\"\n";
        let e = S3Config::parse(Path::new("s3gw.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s3gw.toml:3:"), "{e}");
        assert!(e.contains("regoin"), "{e}");
    }

    #[test]
    fn empty_masters_is_invalid() {
        let text = "[s3]\n[cluster]\nmasters = []\nsecret = \"s\"\n";
        let e = S3Config::parse(Path::new("s3gw.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster.masters"), "{e}");
    }
}
