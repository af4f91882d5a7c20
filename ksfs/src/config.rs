//! `mount.toml`: which cluster and bucket to mount, where, and how the mount caches.
//!
//! Parsed with `deny_unknown_fields` everywhere so a typo names its file, line and key
//! instead of being silently ignored; `validate()` then checks the values. The data-path
//! sizing is the client's own `[client]` table ([`ClientSettings`], shared with
//! `s3gw.toml`); the keys ksfs once took in `[mount]` (`chunk_size`, `cache_size`,
//! `prefetch_depth`, `write_window`, `timeout`) still load, into that table.

use crate::atime::{AtimeMode, AtimePolicy};
use kdss_client::settings::{
    ByteSize, ClientSettings, DEFAULT_WRITE_BUFFER_TOTAL, check_write_buffer_total,
};
use kdss_common::{ConfigError, config::invalid};
use serde::Deserialize;
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
    /// How the client sizes its data path (all optional). After loading this always holds
    /// the settings in force, including any given under their older `[mount]` names.
    #[serde(default)]
    pub client: Option<ClientSettings>,
    /// `[tls] ca`: the cluster CA that the masters' and storage nodes' certificates must
    /// chain to (docs/security.md, TLS). Without it the mount dials plaintext.
    #[serde(default)]
    pub tls: kdss_common::tls::TlsSection,
    /// Client keys this file gave under an older `[mount]` name: (new name, older name),
    /// so an error names the key as the file spells it.
    #[serde(skip)]
    older_keys: Vec<(&'static str, &'static str)>,
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
    /// Seconds the kernel caches attributes (default 1.0).
    #[serde(default = "default_ttl")]
    pub attr_ttl: f64,
    /// Seconds the kernel caches name → inode lookups (default 1.0).
    #[serde(default = "default_ttl")]
    pub entry_ttl: f64,
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
    /// `host:port` serving Prometheus `/metrics` for this mount (port 0 picks a free
    /// port). None (the default): no listener, since an application host may not want
    /// another open port.
    #[serde(default)]
    pub metrics_addr: Option<String>,
    /// Bytes all open files together may buffer before their writes wait for the cluster
    /// (default 256 MiB, 1 MiB to 1 TiB): dirty data and stripes being written share it.
    /// Each file's own bound is `[client] write_window`.
    #[serde(default)]
    pub write_buffer_total: Option<ByteSize>,
    /// A directory for the read cache's disk tier (created 0700 if missing; its parent
    /// must exist): blocks read from the cluster are kept there across remounts. None (the
    /// default): memory cache only. One mount per directory.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Bytes `cache_dir` may take (default 1 GiB; at least 1 MiB); least recently used
    /// blocks are deleted past it.
    #[serde(default)]
    pub cache_dir_size: Option<ByteSize>,
    /// Older name of `[client] chunk_size`.
    #[serde(default)]
    pub chunk_size: Option<ByteSize>,
    /// Older name of `[client] cache_size`.
    #[serde(default)]
    pub cache_size: Option<ByteSize>,
    /// Older name of `[client] prefetch_stripes`.
    #[serde(default)]
    pub prefetch_depth: Option<usize>,
    /// Older name of `[client] write_window`.
    #[serde(default)]
    pub write_window: Option<ByteSize>,
    /// Older name of `[client] rpc_timeout` (seconds).
    #[serde(default)]
    pub timeout: Option<f64>,
}

fn default_ttl() -> f64 {
    1.0
}
fn default_true() -> bool {
    true
}
fn default_subtype() -> String {
    "ksfs".into()
}

/// `[mount] cache_dir_size` when not given.
pub const DEFAULT_CACHE_DIR_SIZE: u64 = 1 << 30;
/// The smallest `cache_dir_size` taken: a few dozen 64 KiB blocks.
pub const MIN_CACHE_DIR_SIZE: u64 = 1 << 20;

/// Sizes parse like every other KDSS config and flag.
pub use kdss_common::size::parse_size;

impl MountConfig {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut cfg: MountConfig = kdss_common::load_toml(path)?;
        cfg.settle_older_keys(path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Parses and validates `text` (`path` is only used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut cfg: MountConfig = kdss_common::config::parse_toml(path, text)?;
        cfg.settle_older_keys(path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Moves the client keys given under their older `[mount]` names into `[client]`. A
    /// file uses one place or the other: with a `[client]` table present, an older key is
    /// refused, so no setting is silently given twice.
    fn settle_older_keys(&mut self, path: &Path) -> Result<(), ConfigError> {
        let m = &self.mount;
        let older = [
            ("chunk_size", "chunk_size", m.chunk_size.is_some()),
            ("cache_size", "cache_size", m.cache_size.is_some()),
            (
                "prefetch_stripes",
                "prefetch_depth",
                m.prefetch_depth.is_some(),
            ),
            ("write_window", "write_window", m.write_window.is_some()),
            ("rpc_timeout", "timeout", m.timeout.is_some()),
        ];
        self.older_keys = older
            .iter()
            .filter(|(_, _, set)| *set)
            .map(|(new, old, _)| (*new, *old))
            .collect();
        let given = self.older_keys.first().map(|(_, old)| *old);
        match (&self.client, given) {
            (Some(_), Some(key)) => {
                return Err(invalid(
                    path,
                    &format!("mount.{key}"),
                    "client settings belong in the [client] table, which this file has; \
                     move the key there (see mount.toml.example)",
                ));
            }
            (Some(_), None) => return Ok(()),
            (None, _) => {}
        }
        let m = &mut self.mount;
        let mut c = ClientSettings::default();
        if let Some(v) = m.chunk_size.take() {
            c.chunk_size = v.0;
        }
        if let Some(v) = m.cache_size.take() {
            c.cache_size = v.0;
        }
        if let Some(v) = m.prefetch_depth.take() {
            c.prefetch_stripes = v;
        }
        if let Some(v) = m.write_window.take() {
            c.write_window = v.0;
        }
        if let Some(v) = m.timeout.take() {
            c.rpc_timeout = Some(v);
        }
        self.client = Some(c);
        Ok(())
    }

    /// The client settings in force (the defaults when the file gives none).
    pub fn client_settings(&self) -> ClientSettings {
        self.client.clone().unwrap_or_default()
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        self.tls.validate(path)?;
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
        kdss_common::cluster_secret::refuse_placeholder(
            path,
            "auth.secret_key",
            &self.auth.secret_key,
        )?;
        if self.auth.bucket.is_empty() {
            return Err(invalid(path, "auth.bucket", "must not be empty"));
        }
        if self.mount.mountpoint.as_os_str().is_empty() {
            return Err(invalid(path, "mount.mountpoint", "must not be empty"));
        }
        if let Some(m) = &self.mount.metrics_addr
            && m.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(invalid(
                path,
                "mount.metrics_addr",
                format!("`{m}` is not host:port, e.g. 127.0.0.1:9020"),
            ));
        }
        if let Err(e) = self.client_settings().validate() {
            // Named where the file gave it: an older `[mount]` name is reported as such.
            let key = match self.older_name(e.key) {
                Some(older) => format!("mount.{older}"),
                None => format!("client.{}", e.key),
            };
            return Err(invalid(path, &key, e.detail()));
        }
        if let Err(e) = check_write_buffer_total(self.write_buffer_total()) {
            return Err(invalid(path, "mount.write_buffer_total", e.detail()));
        }
        self.validate_cache_dir(path)?;
        for (key, v) in [
            ("mount.attr_ttl", self.mount.attr_ttl),
            ("mount.entry_ttl", self.mount.entry_ttl),
        ] {
            if !(0.0..=3600.0).contains(&v) {
                return Err(invalid(path, key, "must be between 0 and 3600 seconds"));
            }
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

    /// `cache_dir` can be made and used, and `cache_dir_size` is given only with it and
    /// holds at least [`MIN_CACHE_DIR_SIZE`].
    fn validate_cache_dir(&self, path: &Path) -> Result<(), ConfigError> {
        let m = &self.mount;
        let Some(dir) = &m.cache_dir else {
            if m.cache_dir_size.is_some() {
                return Err(invalid(
                    path,
                    "mount.cache_dir_size",
                    "is set but mount.cache_dir is not; name the directory too",
                ));
            }
            return Ok(());
        };
        let key = "mount.cache_dir";
        if !dir.is_absolute() {
            return Err(invalid(
                path,
                key,
                format!("`{}` is not an absolute path", dir.display()),
            ));
        }
        if dir.starts_with(&m.mountpoint) {
            return Err(invalid(
                path,
                key,
                format!("`{}` is inside the mountpoint", dir.display()),
            ));
        }
        match std::fs::metadata(dir) {
            Ok(md) if !md.is_dir() => {
                return Err(invalid(
                    path,
                    key,
                    format!("`{}` is not a directory", dir.display()),
                ));
            }
            Ok(_) => {}
            Err(_) => {
                let parent = dir.parent().unwrap_or(Path::new("/"));
                if !parent.is_dir() {
                    return Err(invalid(
                        path,
                        key,
                        format!(
                            "the parent `{}` of `{}` does not exist",
                            parent.display(),
                            dir.display()
                        ),
                    ));
                }
            }
        }
        if let Some(size) = m.cache_dir_size
            && size.0 < MIN_CACHE_DIR_SIZE
        {
            return Err(invalid(
                path,
                "mount.cache_dir_size",
                format!("{} bytes is below the 1MiB minimum", size.0),
            ));
        }
        Ok(())
    }

    /// The disk tier's directory and size bound, when the mount has one.
    pub fn cache_dir(&self) -> Option<(PathBuf, u64)> {
        let size = self
            .mount
            .cache_dir_size
            .map_or(DEFAULT_CACHE_DIR_SIZE, |b| b.0);
        self.mount.cache_dir.clone().map(|d| (d, size))
    }

    /// The older `[mount]` name this file used for the client key `key`, if any.
    fn older_name(&self, key: &str) -> Option<&'static str> {
        self.older_keys
            .iter()
            .find(|(new, _)| *new == key)
            .map(|(_, old)| *old)
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
        self.client_settings().rpc_timeout()
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

    /// The budget of buffered write bytes across the mount's open files.
    pub fn write_buffer_total(&self) -> u64 {
        self.mount
            .write_buffer_total
            .map_or(DEFAULT_WRITE_BUFFER_TOTAL, |b| b.0)
    }

    /// The client library settings this mount asks for.
    pub fn client_config(&self) -> kdss_client::ClientConfig {
        let mut c = self.client_settings().client_config(
            self.cluster.masters.clone(),
            self.auth.access_key.clone(),
            self.auth.secret_key.clone(),
        );
        c.write_buffer_total = self.write_buffer_total();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = r#"
[cluster]
masters = ["127.0.0.1:6700"]
[auth]
access_key = "ak"
secret_key = "sk"
bucket = "b"
[mount]
mountpoint = "/mnt/kdss"
"#;

    /// Client keys in the `[client]` table.
    fn with_client(client: &str) -> String {
        format!("{HEAD}[client]\n{client}\n")
    }

    /// Client keys under their older `[mount]` names.
    fn with_older(mount: &str) -> String {
        format!("{HEAD}{mount}\n")
    }

    fn parse(text: &str) -> Result<MountConfig, String> {
        MountConfig::parse(Path::new("mount.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_chunk_size_the_client_refuses_is_refused_at_load() {
        // ksfs once took up to 1 GiB, which the client then refused at connect.
        let e = parse(&with_client("chunk_size = \"512MiB\"")).unwrap_err();
        assert!(e.contains("`client.chunk_size`"), "{e}");
        assert!(e.contains("512MiB") && e.contains("256MiB"), "{e}");
        let e = parse(&with_older("chunk_size = \"512MiB\"")).unwrap_err();
        assert!(e.contains("`mount.chunk_size`"), "{e}");
    }

    #[test]
    fn what_the_client_refuses_at_connect_is_refused_at_load() {
        // inline_threshold above a small chunk_size passed ksfs and failed at connect.
        let text = with_client(
            "chunk_size = \"8KiB\"\nwrite_window = \"8KiB\"\ninline_threshold = \"16KiB\"",
        );
        let e = parse(&text).unwrap_err();
        assert!(e.contains("`client.inline_threshold`"), "{e}");
        let c = parse(&with_client(
            "chunk_size = \"8KiB\"\nwrite_window = \"8KiB\"\ninline_threshold = 0",
        ))
        .unwrap();
        c.client_config().validate().unwrap();
        let e = parse(&with_older("timeout = 0")).unwrap_err();
        assert!(e.contains("`mount.timeout`"), "{e}");
    }

    #[test]
    fn good_config_parses_with_defaults_and_units() {
        let c = parse(&with_client("chunk_size = \"8MiB\"\ncache_size = 1048576")).unwrap();
        let cc = c.client_config();
        assert_eq!(cc.chunk_size, 8 << 20);
        assert_eq!(cc.cache_bytes, 1 << 20);
        assert_eq!(cc.prefetch_stripes, 4);
        assert_eq!(cc.masters, vec!["127.0.0.1:6700".to_string()]);
        assert_eq!(c.fsname(), "kdss:b");
        assert_eq!(c.timeout(), Duration::from_secs(15));
        assert!(c.mount.foreground);
        assert_eq!(c.mount.atime, AtimeMode::Relatime);
        let c = parse(HEAD).unwrap();
        assert_eq!(c.client_settings(), ClientSettings::default());
        let c = parse(&format!("{HEAD}atime = \"noatime\"")).unwrap();
        assert_eq!(c.atime_policy().mode, AtimeMode::Noatime);
        assert!(parse(&format!("{HEAD}atime = \"sometimes\"")).is_err());
    }

    #[test]
    fn older_mount_keys_keep_their_meaning() {
        let c = parse(&with_older(
            "chunk_size = \"8MiB\"\ncache_size = \"1MiB\"\nprefetch_depth = 2\n\
             write_window = \"32MiB\"\ntimeout = 2.5",
        ))
        .unwrap();
        let cc = c.client_config();
        assert_eq!(cc.chunk_size, 8 << 20);
        assert_eq!(cc.cache_bytes, 1 << 20);
        assert_eq!(cc.prefetch_stripes, 2);
        assert_eq!(cc.write_window_bytes, 32 << 20);
        assert_eq!(cc.rpc_timeout, Duration::from_millis(2500));
        assert_eq!(c.timeout(), Duration::from_millis(2500));
        // One place or the other, never both.
        let text = format!("{HEAD}cache_size = 1\n[client]\nchunk_size = \"8MiB\"\n");
        let e = parse(&text).unwrap_err();
        assert!(
            e.contains("`mount.cache_size`") && e.contains("[client]"),
            "{e}"
        );
    }

    #[test]
    fn the_shipped_example_parses() {
        let shipped = include_str!("../../mount.toml.example");
        // As a user fills it in: the placeholder key replaced by the real one.
        let text = &shipped.replace("change-me", "0123456789abcdef0123456789abcdef");
        let c = MountConfig::parse(Path::new("mount.toml.example"), text).unwrap();
        assert_eq!(
            c.atime_policy(),
            AtimePolicy::new(AtimeMode::Relatime, false, false)
        );
        assert!(c.client.is_some(), "the example shows the [client] table");
        c.client_config().validate().unwrap();
    }

    #[test]
    fn write_buffer_total_feeds_the_client_and_is_range_checked() {
        let c = parse(HEAD).unwrap();
        assert_eq!(c.client_config().write_buffer_total, 256 << 20);
        let c = parse(&format!("{HEAD}write_buffer_total = \"32MiB\"")).unwrap();
        assert_eq!(c.client_config().write_buffer_total, 32 << 20);
        c.client_config().validate().unwrap();
        let e = parse(&format!("{HEAD}write_buffer_total = \"512KiB\"")).unwrap_err();
        assert!(e.contains("`mount.write_buffer_total`"), "{e}");
        assert!(e.contains("512KiB") && e.contains("1MiB"), "{e}");
        assert!(parse(&format!("{HEAD}write_buffer_total = \"lots\"")).is_err());
    }

    #[test]
    fn cache_dir_is_checked_at_load() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("cache");
        let c = parse(&format!("{HEAD}cache_dir = {:?}", d.display().to_string())).unwrap();
        assert_eq!(c.cache_dir(), Some((d.clone(), 1 << 30)));
        let c = parse(&format!(
            "{HEAD}cache_dir = {:?}\ncache_dir_size = \"64MiB\"",
            d.display().to_string()
        ))
        .unwrap();
        assert_eq!(c.cache_dir(), Some((d.clone(), 64 << 20)));
        assert_eq!(parse(HEAD).unwrap().cache_dir(), None);
        let bad = [
            (
                format!(
                    "cache_dir = {:?}",
                    tmp.path().join("no/such").display().to_string()
                ),
                "mount.cache_dir",
                "does not exist",
            ),
            (
                "cache_dir = \"relative/dir\"".to_string(),
                "mount.cache_dir",
                "absolute",
            ),
            (
                "cache_dir = \"/mnt/kdss/cache\"".to_string(),
                "mount.cache_dir",
                "inside the mountpoint",
            ),
            (
                "cache_dir_size = \"1GiB\"".to_string(),
                "mount.cache_dir_size",
                "mount.cache_dir is not",
            ),
            (
                format!(
                    "cache_dir = {:?}\ncache_dir_size = 0",
                    d.display().to_string()
                ),
                "mount.cache_dir_size",
                "minimum",
            ),
        ];
        for (extra, key, why) in bad {
            let e = parse(&format!("{HEAD}{extra}")).unwrap_err();
            assert!(
                e.contains(&format!("`{key}`")) && e.contains(why),
                "{extra}: {e}"
            );
        }
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = parse(&format!(
            "{HEAD}cache_dir = {:?}",
            file.display().to_string()
        ))
        .unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = parse(&format!("{HEAD}cache_sise = 1048576")).unwrap_err();
        assert!(e.starts_with("mount.toml:10:"), "{e}");
        assert!(e.contains("cache_sise"), "{e}");
        let e = parse(&with_client("chunk_sise = 4096")).unwrap_err();
        assert!(e.starts_with("mount.toml:11:"), "{e}");
        assert!(e.contains("chunk_sise"), "{e}");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let e = parse(&HEAD.replace("bucket = \"b\"", "bucket = \"\"")).unwrap_err();
        assert!(e.contains("auth.bucket"), "{e}");
        let e = parse(&with_client("chunk_size = \"8 parsecs\"")).unwrap_err();
        assert!(e.contains("unknown unit"), "{e}");
        let e = parse(&HEAD.replace("127.0.0.1:6700", "localhost")).unwrap_err();
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
