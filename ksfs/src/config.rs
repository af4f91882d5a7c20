//! `mount.toml`: which cluster and bucket to mount, where, and how the mount caches.
//!
//! Parsed with `deny_unknown_fields` everywhere so a typo names its file, line and key
//! instead of being silently ignored; `validate()` then checks the values.

use crate::atime::{AtimeMode, AtimePolicy};
use kdss_common::{ConfigError, config::invalid};
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole `mount.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountConfig {
    /// Which cluster to talk to.
    pub cluster: ClusterSection,
    /// Who we are and which bucket we mount.
    pub auth: AuthSection,
    /// Where and how to mount.
    pub mount: MountSection,
}

/// `[cluster]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Master gRPC addresses (`host:port`); any member answers or forwards to the leader.
    pub masters: Vec<String>,
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Access key of the user the mount acts as.
    pub access_key: String,
    /// Its secret key.
    pub secret_key: String,
    /// The bucket whose tree becomes the mounted directory.
    pub bucket: String,
}

/// `[mount]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountSection {
    /// Directory to mount on (must exist).
    pub mountpoint: PathBuf,
    /// Bytes of file data per stripe (default 4 MiB); accepts `4194304` or `"4MiB"`.
    #[serde(default = "default_chunk_size", deserialize_with = "de_size")]
    pub chunk_size: u64,
    /// Byte budget of the read cache (default 256 MiB).
    #[serde(default = "default_cache_size", deserialize_with = "de_size")]
    pub cache_size: u64,
    /// Stripes fetched ahead of a sequential reader (default 4).
    #[serde(default = "default_prefetch_depth")]
    pub prefetch_depth: usize,
    /// Bytes a file may buffer before its writes must become durable (default 64 MiB).
    #[serde(default = "default_write_window", deserialize_with = "de_size")]
    pub write_window: u64,
    /// Seconds the kernel caches attributes (default 1.0).
    #[serde(default = "default_ttl")]
    pub attr_ttl: f64,
    /// Seconds the kernel caches name → inode lookups (default 1.0).
    #[serde(default = "default_ttl")]
    pub entry_ttl: f64,
    /// Seconds a cluster call may take before the caller gets EIO (default 15).
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Stay in the foreground (default true); `false` detaches once mounted.
    #[serde(default = "default_true")]
    pub foreground: bool,
    /// Log file when running in the background (default: logs are discarded).
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// Let other users use the mount (needs `user_allow_other` in /etc/fuse.conf for non-root).
    #[serde(default)]
    pub allow_other: bool,
    /// Source name shown by `mount` and `df` (default `kdss:<bucket>`).
    #[serde(default)]
    pub fsname: Option<String>,
    /// Mount type subtype: `"ksfs"` (default) reports `fuse.ksfs`; `""` reports plain `fuse`
    /// (what xfstests' `_fs_type` expects, see xfstests/README.md).
    #[serde(default = "default_subtype")]
    pub subtype: String,
    /// Mount read-only.
    #[serde(default)]
    pub read_only: bool,
    /// How reads update access times: `"relatime"` (default, as Linux), `"strictatime"`
    /// or `"noatime"`; each update is a metadata commit (see `crate::atime`).
    #[serde(default)]
    pub atime: AtimeMode,
    /// Never update directory access times on readdir (default false).
    #[serde(default)]
    pub nodiratime: bool,
    /// Device files on the mount can be opened (default false: FUSE mounts are `nodev`).
    #[serde(default)]
    pub dev: bool,
    /// Setuid/setgid bits take effect on exec (default false: FUSE mounts are `nosuid`).
    #[serde(default)]
    pub suid: bool,
}

fn default_chunk_size() -> u64 {
    4 << 20
}
fn default_cache_size() -> u64 {
    256 << 20
}
fn default_prefetch_depth() -> usize {
    4
}
fn default_write_window() -> u64 {
    64 << 20
}
fn default_ttl() -> f64 {
    1.0
}
fn default_timeout() -> f64 {
    15.0
}
fn default_true() -> bool {
    true
}
fn default_subtype() -> String {
    "ksfs".into()
}

/// A byte size written as an integer or as a string with a unit (`"4MiB"`, `"1G"`).
fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(n) => Ok(n),
        Raw::Text(s) => parse_size(&s).map_err(serde::de::Error::custom),
    }
}

/// Sizes parse like every other KDSS config and flag.
pub use kdss_common::size::parse_size;

impl MountConfig {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let cfg: MountConfig = kdss_common::load_toml(path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Parses and validates `text` (`path` is only used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let cfg: MountConfig = kdss_common::config::parse_toml(path, text)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        if self.cluster.masters.is_empty() {
            return Err(invalid(path, "cluster.masters", "name at least one master"));
        }
        if let Some(m) = self.cluster.masters.iter().find(|m| !m.contains(':')) {
            return Err(invalid(
                path,
                "cluster.masters",
                format!("`{m}` is not host:port"),
            ));
        }
        if self.auth.access_key.is_empty() {
            return Err(invalid(path, "auth.access_key", "must not be empty"));
        }
        if self.auth.secret_key.is_empty() {
            return Err(invalid(path, "auth.secret_key", "must not be empty"));
        }
        if self.auth.bucket.is_empty() {
            return Err(invalid(path, "auth.bucket", "must not be empty"));
        }
        if self.mount.mountpoint.as_os_str().is_empty() {
            return Err(invalid(path, "mount.mountpoint", "must not be empty"));
        }
        // The client's bound: ksfs once took up to 1 GiB, which the client refused at connect.
        if !(4096..=kdss_client::config::MAX_CHUNK_SIZE as u64).contains(&self.mount.chunk_size) {
            return Err(invalid(
                path,
                "mount.chunk_size",
                "must be between 4KiB and 256MiB",
            ));
        }
        if self.mount.write_window < self.mount.chunk_size {
            return Err(invalid(
                path,
                "mount.write_window",
                "must be at least chunk_size",
            ));
        }
        for (key, v) in [
            ("mount.attr_ttl", self.mount.attr_ttl),
            ("mount.entry_ttl", self.mount.entry_ttl),
        ] {
            if !(0.0..=3600.0).contains(&v) {
                return Err(invalid(path, key, "must be between 0 and 3600 seconds"));
            }
        }
        if !(self.mount.timeout > 0.0 && self.mount.timeout <= 3600.0) {
            return Err(invalid(
                path,
                "mount.timeout",
                "must be between 0 and 3600 seconds",
            ));
        }
        if self.mount.subtype.contains([',', ' ', '/']) {
            return Err(invalid(
                path,
                "mount.subtype",
                "must not contain `,`, `/` or spaces",
            ));
        }
        Ok(())
    }

    /// Kernel attribute cache lifetime.
    pub fn attr_ttl(&self) -> Duration {
        Duration::from_secs_f64(self.mount.attr_ttl)
    }
    /// Kernel entry cache lifetime.
    pub fn entry_ttl(&self) -> Duration {
        Duration::from_secs_f64(self.mount.entry_ttl)
    }
    /// Deadline of one cluster call.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.mount.timeout)
    }
    /// The access-time policy of this mount.
    pub fn atime_policy(&self) -> AtimePolicy {
        AtimePolicy::new(
            self.mount.atime,
            self.mount.nodiratime,
            self.mount.read_only,
        )
    }
    /// The source name the mount shows.
    pub fn fsname(&self) -> String {
        self.mount
            .fsname
            .clone()
            .unwrap_or_else(|| format!("kdss:{}", self.auth.bucket))
    }

    /// The client library settings this mount asks for.
    pub fn client_config(&self) -> kdss_client::ClientConfig {
        kdss_client::ClientConfig {
            masters: self.cluster.masters.clone(),
            access_key: self.auth.access_key.clone(),
            secret_key: self.auth.secret_key.clone(),
            chunk_size: self.mount.chunk_size as usize,
            cache_bytes: self.mount.cache_size,
            prefetch_stripes: self.mount.prefetch_depth,
            write_window_bytes: self.mount.write_window,
            rpc_timeout: self.timeout(),
            ..kdss_client::ClientConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[cluster]
masters = ["127.0.0.1:6700"]
[auth]
access_key = "ak"
secret_key = "sk"
bucket = "b"
[mount]
mountpoint = "/mnt/kdss"
chunk_size = "8MiB"
cache_size = 1048576
"#;

    #[test]
    fn a_chunk_size_the_client_refuses_is_refused_at_parse() {
        // ksfs once took up to 1 GiB, which the client then refused at connect.
        let big = GOOD.replace("chunk_size = \"8MiB\"", "chunk_size = \"512MiB\"");
        let e = MountConfig::parse(Path::new("mount.toml"), &big)
            .unwrap_err()
            .to_string();
        assert!(e.contains("mount.chunk_size"), "{e}");
    }

    #[test]
    fn good_config_parses_with_defaults_and_units() {
        let c = MountConfig::parse(Path::new("mount.toml"), GOOD).unwrap();
        assert_eq!(c.mount.chunk_size, 8 << 20);
        assert_eq!(c.mount.cache_size, 1 << 20);
        assert_eq!(c.mount.prefetch_depth, 4);
        assert_eq!(c.fsname(), "kdss:b");
        assert_eq!(c.timeout(), Duration::from_secs(15));
        assert!(c.mount.foreground);
        assert_eq!(c.mount.atime, AtimeMode::Relatime);
        let text = GOOD.replace(
            "cache_size = 1048576",
            "cache_size = 1\natime = \"noatime\"",
        );
        let c = MountConfig::parse(Path::new("mount.toml"), &text).unwrap();
        assert_eq!(c.atime_policy().mode, AtimeMode::Noatime);
        let text = GOOD.replace("cache_size = 1048576", "atime = \"sometimes\"");
        assert!(MountConfig::parse(Path::new("mount.toml"), &text).is_err());
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../../mount.toml.example");
        let c = MountConfig::parse(Path::new("mount.toml.example"), text).unwrap();
        assert_eq!(
            c.atime_policy(),
            AtimePolicy::new(AtimeMode::Relatime, false, false)
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = GOOD.replace("cache_size = 1048576", "cache_sise = 1048576");
        let e = MountConfig::parse(Path::new("mount.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("mount.toml:11:"), "{e}");
        assert!(e.contains("cache_sise"), "{e}");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let text = GOOD.replace("bucket = \"b\"", "bucket = \"\"");
        let e = MountConfig::parse(Path::new("m.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("auth.bucket"), "{e}");
        let text = GOOD.replace("\"8MiB\"", "\"8 parsecs\"");
        let e = MountConfig::parse(Path::new("m.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown unit"), "{e}");
        let text = GOOD.replace("127.0.0.1:6700", "localhost");
        let e = MountConfig::parse(Path::new("m.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster.masters"), "{e}");
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("4k").unwrap(), 4096);
        assert_eq!(parse_size("64 MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
