//! `s3gw.toml`: where the gateway listens, which masters it signs in to, and how its
//! client data path is sized. Parsed with `deny_unknown_fields` so a typo is reported
//! with file, line and key instead of being silently ignored.

use kdss_client::ClientSettings;
use kdss_common::ConfigError;
use serde::Deserialize;
use std::path::Path;

/// The whole gateway configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// HTTP listener and S3 identity of the gateway.
    pub s3: S3Section,
    /// The cluster the gateway fronts.
    pub cluster: ClusterSection,
    /// Sizing of the client data path (all optional): the client's own table, the same
    /// keys, defaults and ranges as `[client]` in mount.toml.
    #[serde(default)]
    pub client: ClientSettings,
    /// Certificates for the S3 and metrics listeners and for dialling the cluster
    /// (docs/security.md, TLS).
    #[serde(default)]
    pub tls: kdss_common::tls::TlsSection,
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
    /// How long an access key the master does not know is answered InvalidAccessKeyId
    /// without asking again, in seconds: a client (or an attacker) repeating an unknown key
    /// costs one master call per this many seconds, not one per request. 0 turns it off.
    #[serde(default = "default_unknown_key_ttl")]
    pub unknown_key_cache_secs: u64,
    /// Seconds a connection may take to send a complete request head (request line and
    /// headers), counted from when the gateway starts waiting for it; also how long an idle
    /// keep-alive connection is kept. Slow-header (slowloris) connections are closed after
    /// it. 1 to 3600.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_secs: u64,
    /// Seconds the gateway waits in all for each 64 KiB of a request body (or its end)
    /// before it answers RequestTimeout and closes the connection: a client that stops or
    /// trickles its body frees its slot. 1 to 3600.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout_secs: u64,
    /// Client connections served at once. Past it the gateway stops accepting: new
    /// connections wait in the kernel's listen backlog until one closes. 1 to 1000000.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// `host:port` serving Prometheus `/metrics` (port 0 picks a free port). A listener of
    /// its own because on the S3 port `/metrics` is a bucket. None (the default): no
    /// metrics listener.
    #[serde(default)]
    pub metrics_listen: Option<String>,
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
fn default_unknown_key_ttl() -> u64 {
    5
}
fn default_header_read_timeout() -> u64 {
    10
}
fn default_body_read_timeout() -> u64 {
    30
}
fn default_max_connections() -> usize {
    1024
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
        if let Some(m) = &self.s3.metrics_listen
            && m.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(invalid(
                path,
                "s3.metrics_listen",
                "expected host:port, e.g. 127.0.0.1:9010",
            ));
        }
        self.tls.validate(path)?;
        self.tls.check_listen(path, "s3.listen", &self.s3.listen)?;
        if let Some(m) = &self.s3.metrics_listen {
            self.tls.check_listen(path, "s3.metrics_listen", m)?;
        }
        if !(1..=3600).contains(&self.s3.header_read_timeout_secs) {
            return Err(invalid(
                path,
                "s3.header_read_timeout_secs",
                "must be between 1 and 3600 seconds",
            ));
        }
        if !(1..=3600).contains(&self.s3.body_read_timeout_secs) {
            return Err(invalid(
                path,
                "s3.body_read_timeout_secs",
                "must be between 1 and 3600 seconds",
            ));
        }
        if !(1..=1_000_000).contains(&self.s3.max_connections) {
            return Err(invalid(
                path,
                "s3.max_connections",
                "must be between 1 and 1000000",
            ));
        }
        if self.s3.unknown_key_cache_secs > 3600 {
            return Err(invalid(
                path,
                "s3.unknown_key_cache_secs",
                "must be at most 3600 seconds",
            ));
        }
        if self.s3.region.is_empty() {
            return Err(invalid(path, "s3.region", "must not be empty"));
        }
        if self.cluster.masters.is_empty() {
            return Err(invalid(path, "cluster.masters", "name at least one master"));
        }
        kdss_common::cluster_secret::validate(path, "cluster.secret", &self.cluster.secret)?;
        if let Err(e) = self.client.validate() {
            return Err(invalid(path, &format!("client.{}", e.key), e.detail()));
        }
        Ok(())
    }

    /// The kdss-client settings for the service identity.
    pub fn client_config(&self) -> kdss_client::ClientConfig {
        self.client.client_config(
            self.cluster.masters.clone(),
            kdss_common::auth::SERVICE_ACCESS_KEY.into(),
            self.cluster.secret.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_defaults() {
        let text = "[s3]\nlisten = \"127.0.0.1:0\"\n[cluster]\nmasters = [\"127.0.0.1:6700\"]\nsecret = \"0123456789abcdef0123456789abcdef\"\n";
        let c = S3Config::parse(Path::new("s3gw.toml"), text).unwrap();
        assert_eq!(c.s3.region, "us-east-1");
        assert_eq!(c.s3.header_read_timeout_secs, 10);
        assert_eq!(c.s3.max_connections, 1024);
        assert_eq!(c.s3.unknown_key_cache_secs, 5);
        assert_eq!(c.client, ClientSettings::default());
        assert_eq!(c.client_config().chunk_size, 4 << 20);
    }

    const HEAD: &str = "[s3]\nlisten = \"127.0.0.1:0\"\n[cluster]\nmasters = [\"127.0.0.1:6700\"]\nsecret = \"0123456789abcdef0123456789abcdef\"\n";

    #[test]
    fn the_client_table_keeps_its_older_names() {
        // The names s3gw.toml used before the section was shared with mount.toml.
        let text = format!(
            "{HEAD}[client]\nchunk_size = 1048576\ncache_bytes = 2097152\nprefetch_stripes = 2\n\
             max_inflight_reads = 8\nwrite_window_bytes = 8388608\ninline_threshold = 0\n\
             rpc_timeout_ms = 2500\n"
        );
        let c = S3Config::parse(Path::new("s3gw.toml"), &text)
            .unwrap()
            .client_config();
        assert_eq!(c.chunk_size, 1 << 20);
        assert_eq!(c.cache_bytes, 2 << 20);
        assert_eq!(c.prefetch_stripes, 2);
        assert_eq!(c.max_inflight_reads, 8);
        assert_eq!(c.write_window_bytes, 8 << 20);
        assert_eq!(c.inline_threshold, 0);
        assert_eq!(c.rpc_timeout, std::time::Duration::from_millis(2500));
        // And takes the shared names and size strings.
        let text = format!("{HEAD}[client]\ncache_size = \"2MiB\"\nwrite_window = \"8MiB\"\n");
        let c = S3Config::parse(Path::new("s3gw.toml"), &text).unwrap();
        assert_eq!(c.client.cache_size, 2 << 20);
        assert_eq!(c.client.write_window, 8 << 20);
    }

    #[test]
    fn client_values_out_of_range_name_key_value_and_range() {
        let text = format!("{HEAD}[client]\nchunk_size = \"512MiB\"\n");
        let e = S3Config::parse(Path::new("s3gw.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`client.chunk_size`"), "{e}");
        assert!(
            e.contains("512MiB") && e.contains("between 4KiB and 256MiB"),
            "{e}"
        );
        let text = format!("{HEAD}[client]\nchunk_sise = 1\n");
        let e = S3Config::parse(Path::new("s3gw.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s3gw.toml:7:") && e.contains("chunk_sise"),
            "{e}"
        );
    }

    #[test]
    fn the_shipped_example_parses() {
        let shipped = include_str!("../../deploy/s3gw.toml");
        // As an operator fills it in: the placeholder replaced by a generated secret.
        let text = &shipped.replace("CHANGE-ME", "0123456789abcdef0123456789abcdef");
        let c = S3Config::parse(Path::new("deploy/s3gw.toml"), text).unwrap();
        c.client_config().validate().unwrap();
    }

    #[test]
    fn typo_is_named_with_line() {
        let text = "[s3]\nlisten = \"127.0.0.1:0\"\nregoin = \"x\"\n[cluster]\nmasters = []\nsecret = \"0123456789abcdef0123456789abcdef\"\n";
        let e = S3Config::parse(Path::new("s3gw.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s3gw.toml:3:"), "{e}");
        assert!(e.contains("regoin"), "{e}");
    }

    #[test]
    fn resource_limits_out_of_range_are_named() {
        for (line, key) in [
            (
                "header_read_timeout_secs = 0",
                "s3.header_read_timeout_secs",
            ),
            ("max_connections = 0", "s3.max_connections"),
            (
                "unknown_key_cache_secs = 86400",
                "s3.unknown_key_cache_secs",
            ),
        ] {
            let text = format!(
                "[s3]\nlisten = \"127.0.0.1:0\"\n{line}\n[cluster]\nmasters = [\"127.0.0.1:6700\"]\nsecret = \"s\"\n"
            );
            let e = S3Config::parse(Path::new("s3gw.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{line}: {e}");
        }
    }

    #[test]
    fn empty_masters_is_invalid() {
        let text = "[s3]\n[cluster]\nmasters = []\nsecret = \"0123456789abcdef0123456789abcdef\"\n";
        let e = S3Config::parse(Path::new("s3gw.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster.masters"), "{e}");
    }
}
