//! `master.toml`: who this master is, which group it belongs to, and the knobs of its
//! background policies. Parsed with `deny_unknown_fields` everywhere so a typo is an error
//! naming file, line and key; `validate()` then checks the values that parse but make no sense.

use kdss_common::{ConfigError, EcPolicy, config::invalid, load_toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// READ capabilities (GetExtents, HeadObject, rebuild sources) live this long: a reader may
/// keep a file's map that long. The collector's default read grace waits out one lifetime.
pub const READ_CAPABILITY_TTL_MS: u64 = 10 * 60 * 1000;

/// WRITE, DELETE and LIST capabilities live this long. A node checks a capability when a
/// request's first message arrives (a put's first message holds at most 1 MiB), not while
/// the rest streams in; a writer allocates a stripe just before putting its shards, and a
/// put that starts late is refused and retried on a new target with a fresh capability
/// (ReplaceShard). Two minutes also bounds how long a leaked write capability is of use.
pub const WRITE_CAPABILITY_TTL_MS: u64 = 2 * 60 * 1000;

/// The whole master configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterConfig {
    /// This member's identity and addresses.
    pub master: MasterSection,
    /// The Raft group and the shared secret.
    pub cluster: ClusterSection,
    /// Bootstrap admin user, created on first start if absent.
    #[serde(default)]
    pub admin: Option<AdminSection>,
    /// Default EC policy of new buckets.
    #[serde(default)]
    pub ec: EcSection,
    /// Garbage collection policy (consumed by the GC worker).
    #[serde(default)]
    pub gc: GcSection,
    /// Capacity alert and write-reject thresholds.
    #[serde(default)]
    pub capacity: CapacitySection,
    /// Raft timing and log compaction; the defaults suit production, tests shrink them.
    #[serde(default)]
    pub raft: RaftSection,
    /// When disks count as slow, erroring or silent (the health pass on the leader).
    #[serde(default)]
    pub health: crate::health::config::HealthSection,
    /// How fast and how wide lost redundancy is rebuilt.
    #[serde(default)]
    pub repair: crate::workers::repair::config::RepairSection,
    /// How even the disks should be and how fast a balance may move shards.
    #[serde(default)]
    pub balance: BalanceSection,
    /// Where the leader reports cluster events (off by default).
    #[serde(default)]
    pub notify: NotifySection,
    /// Scheduled metadata backups on the leader (off unless present).
    #[serde(default)]
    pub backup: Option<crate::backup::BackupSection>,
    /// Certificates for the gRPC and HTTP listeners and for dialling peers and nodes
    /// (docs/security.md, TLS).
    #[serde(default)]
    pub tls: kdss_common::tls::TlsSection,
    /// `[limits]`: gRPC server limits and the bound of the Raft proposer queue.
    #[serde(default)]
    pub limits: crate::limits::LimitsSection,
}

/// `[notify]`: cluster events (disk offline or suspect, node lost, repair done, balance
/// started) posted by the leader to a Lark custom bot as cards. Off unless `lark_url` is
/// set. Both values print as `***` in debug output.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    /// The bot's webhook address (`https://open.feishu.cn/open-apis/bot/v2/hook/...`).
    #[serde(default)]
    pub lark_url: Option<kdss_notify::Secret>,
    /// The bot's signing secret, when its security settings verify signatures.
    #[serde(default)]
    pub lark_secret: Option<kdss_notify::Secret>,
}

impl NotifySection {
    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        match &self.lark_url {
            Some(url) => kdss_notify::config::check_lark(
                path,
                "notify.",
                url.expose(),
                self.lark_secret.as_ref().map(kdss_notify::Secret::expose),
            ),
            None if self.lark_secret.is_some() => Err(invalid(
                path,
                "notify.lark_secret",
                "set without notify.lark_url: events go nowhere",
            )),
            None => Ok(()),
        }
    }
}

/// `[master]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterSection {
    /// Raft member id, unique in the group, > 0.
    pub id: u64,
    /// gRPC listen address (clients, storage nodes, peers).
    pub grpc_addr: SocketAddr,
    /// HTTP listen address (`/metrics`, `/health`).
    pub http_addr: SocketAddr,
    /// Directory holding the Raft log and the namespace database.
    pub data_dir: PathBuf,
}

/// `[cluster]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Cluster name; storage nodes must carry the same.
    pub id: String,
    /// Cluster secret: signs capabilities and the service identity.
    pub secret: String,
    /// All members of the group (may be empty or only this member: a single master).
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
}

/// One member of the Raft group.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Its `[master] id`.
    pub id: u64,
    /// Its gRPC address.
    pub grpc_addr: String,
}

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Access key of the bootstrap admin.
    pub access_key: String,
    /// Secret key of the bootstrap admin.
    pub secret_key: String,
}

/// `[ec]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EcSection {
    /// k (default 5).
    #[serde(default = "default_k")]
    pub data_shards: u32,
    /// m (default 2).
    #[serde(default = "default_m")]
    pub parity_shards: u32,
}

fn default_k() -> u32 {
    5
}
fn default_m() -> u32 {
    2
}

impl Default for EcSection {
    fn default() -> Self {
        EcSection {
            data_shards: default_k(),
            parity_shards: default_m(),
        }
    }
}

/// `[gc]`: the recycle bin and the garbage collector (a leader-only background job).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GcSection {
    /// Seconds between GC passes on the leader (default 3600). `kdss-cli gc run` and
    /// `kdss-cli trash purge` start a pass at once whatever this says.
    #[serde(default = "default_gc_interval")]
    pub interval_sec: u64,
    /// Hours a deleted file or object stays in the recycle bin before a pass purges it
    /// (default 48). 0 keeps items until they are purged by hand.
    #[serde(default = "default_gc_pending")]
    pub auto_gc_pending_hours: u64,
    /// Minutes after which an allocated, never committed stripe (a writer that crashed)
    /// is garbage, and a shard no stripe names is deleted (default 120). Fractions are
    /// allowed so tests can use seconds.
    #[serde(default = "default_stale_writing")]
    pub stale_writing_minutes: f64,
    /// Shard deletes per second the collector sends, cluster-wide (default 500): the
    /// throttle that keeps a big purge from starving client I/O.
    #[serde(default = "default_gc_rate")]
    pub max_deletes_per_sec: u32,
    /// Seconds a stripe stays on disk after its last reference went before the collector
    /// deletes its shards (default 600, the lifetime of a read capability): a reader that
    /// opened the old version before an overwrite, truncate or purge can finish reading it.
    #[serde(default = "default_read_grace")]
    pub read_grace_sec: u64,
}

fn default_gc_interval() -> u64 {
    3600
}
fn default_gc_pending() -> u64 {
    48
}
fn default_stale_writing() -> f64 {
    120.0
}
fn default_gc_rate() -> u32 {
    500
}
fn default_read_grace() -> u64 {
    READ_CAPABILITY_TTL_MS / 1000
}

impl Default for GcSection {
    fn default() -> Self {
        GcSection {
            interval_sec: default_gc_interval(),
            auto_gc_pending_hours: default_gc_pending(),
            stale_writing_minutes: default_stale_writing(),
            max_deletes_per_sec: default_gc_rate(),
            read_grace_sec: default_read_grace(),
        }
    }
}

/// `[capacity]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySection {
    /// Used share (percent) above which the master logs an alert (default 95).
    #[serde(default = "default_alert")]
    pub alert_pct: u8,
    /// Used share (percent) above which stripe allocation is refused (default 99).
    #[serde(default = "default_reject")]
    pub reject_pct: u8,
}

fn default_alert() -> u8 {
    95
}
fn default_reject() -> u8 {
    99
}

impl Default for CapacitySection {
    fn default() -> Self {
        CapacitySection {
            alert_pct: default_alert(),
            reject_pct: default_reject(),
        }
    }
}

/// `[raft]` (optional): timing and log compaction.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RaftSection {
    /// Leader heartbeat period in ms (default 300). openraft also gives every append and
    /// heartbeat RPC this long to answer, so it must exceed a round trip plus TCP's
    /// minimum retransmission timeout (200 ms on Linux): at 100 ms, 2 % loss and 30 ms
    /// of delay on the leader's link stopped every commit and read (docs/partitions.md).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_ms: u64,
    /// Lower bound of the election timeout in ms (default 1500, five heartbeats): how
    /// long followers wait without a heartbeat before electing another leader.
    #[serde(default = "default_election_min")]
    pub election_timeout_min_ms: u64,
    /// Upper bound of the election timeout in ms (default 3000).
    #[serde(default = "default_election_max")]
    pub election_timeout_max_ms: u64,
    /// Build a snapshot every this many applied entries (default 5000).
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot, for slow followers (default 1000).
    #[serde(default = "default_keep_logs")]
    pub keep_logs: u64,
}

fn default_heartbeat() -> u64 {
    300
}
fn default_election_min() -> u64 {
    1500
}
fn default_election_max() -> u64 {
    3000
}
fn default_snapshot_every() -> u64 {
    5000
}
fn default_keep_logs() -> u64 {
    1000
}

impl Default for RaftSection {
    fn default() -> Self {
        RaftSection {
            heartbeat_ms: default_heartbeat(),
            election_timeout_min_ms: default_election_min(),
            election_timeout_max_ms: default_election_max(),
            snapshot_every: default_snapshot_every(),
            keep_logs: default_keep_logs(),
        }
    }
}

/// `[balance]`: the target a balance evens disks to, its cluster-wide bandwidth, and
/// whether it starts by itself.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceSection {
    /// Largest spread, in percentage points of used space, between the fullest and the
    /// emptiest online disk that counts as balanced (default 10).
    #[serde(default = "default_balance_threshold")]
    pub threshold_pct: u32,
    /// Bytes per second a balance may move, cluster-wide: an integer or a size string
    /// with an optional `/s` (`"100MiB/s"`, default). 0 means no limit.
    #[serde(
        default = "default_balance_bandwidth",
        deserialize_with = "de_bandwidth"
    )]
    pub max_bandwidth: u64,
    /// Start a balance by itself when the imbalance exceeds the threshold (default false:
    /// only `kdss-cli balance start` starts one).
    #[serde(default)]
    pub auto_start: bool,
    /// Seconds between balance passes (default 30). Each pass re-reads the disks' usage
    /// and plans the moves that bring them within the threshold.
    #[serde(default = "default_balance_interval")]
    pub interval_sec: u64,
    /// Shard moves in flight at once, cluster-wide (default 2).
    #[serde(default = "default_balance_concurrent")]
    pub max_concurrent: u32,
    /// Client traffic per disk, as a rate (`"32MiB/s"`, default), above which moves wait:
    /// clients come first. Measured from the nodes' heartbeats as the shard bytes clients
    /// read and wrote, averaged over the online disks; moves go on once it falls under
    /// 80 % of this. 0 never waits.
    #[serde(
        default = "default_balance_pause_client",
        deserialize_with = "de_pause_client"
    )]
    pub pause_client_per_disk: u64,
}

fn default_balance_threshold() -> u32 {
    10
}
fn default_balance_interval() -> u64 {
    30
}
fn default_balance_concurrent() -> u32 {
    2
}
fn default_balance_bandwidth() -> u64 {
    100 << 20
}
fn default_balance_pause_client() -> u64 {
    32 << 20
}

impl Default for BalanceSection {
    fn default() -> Self {
        BalanceSection {
            threshold_pct: default_balance_threshold(),
            max_bandwidth: default_balance_bandwidth(),
            auto_start: false,
            interval_sec: default_balance_interval(),
            max_concurrent: default_balance_concurrent(),
            pause_client_per_disk: default_balance_pause_client(),
        }
    }
}

impl BalanceSection {
    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        if !(1..=99).contains(&self.threshold_pct) {
            return Err(invalid(
                path,
                "balance.threshold_pct",
                "must be between 1 and 99 percentage points",
            ));
        }
        if self.interval_sec == 0 {
            return Err(invalid(path, "balance.interval_sec", "must be > 0"));
        }
        if !(1..=64).contains(&self.max_concurrent) {
            return Err(invalid(path, "balance.max_concurrent", "must be 1..=64"));
        }
        Ok(())
    }
}

/// A rate written as bytes per second or as a size with an optional `/s` (`"100MiB/s"`).
fn de_bandwidth<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_rate(d, "balance.max_bandwidth")
}

fn de_pause_client<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_rate(d, "balance.pause_client_per_disk")
}

/// A rate as an integer of bytes/s or a size string with an optional `/s`; a bad one is
/// refused with `key` named.
fn de_rate<'de, D: serde::Deserializer<'de>>(d: D, key: &str) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(n) => Ok(n),
        Raw::Text(s) => kdss_common::size::parse_rate(&s)
            .map_err(|e| serde::de::Error::custom(format!("{key}: {e}"))),
    }
}

impl MasterConfig {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let cfg: MasterConfig = load_toml(path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Parses and validates TOML text (`path` only names the file in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let cfg: MasterConfig = kdss_common::config::parse_toml(path, text)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        if self.master.id == 0 {
            return Err(invalid(path, "master.id", "must be > 0"));
        }
        kdss_common::cluster_secret::validate(path, "cluster.secret", &self.cluster.secret)?;
        if self.cluster.id.is_empty() {
            return Err(invalid(path, "cluster.id", "must not be empty"));
        }
        let mut ids: Vec<u64> = self.cluster.peers.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(invalid(path, "cluster.peers", "duplicate peer id"));
        }
        if !self.cluster.peers.is_empty() && !ids.contains(&self.master.id) {
            return Err(invalid(
                path,
                "cluster.peers",
                "must list this master's own id",
            ));
        }
        if ids.contains(&0) {
            return Err(invalid(path, "cluster.peers", "peer ids must be > 0"));
        }
        EcPolicy::new(self.ec.data_shards, self.ec.parity_shards)
            .map_err(|e| invalid(path, "ec", e.to_string()))?;
        if self.capacity.reject_pct > 100 || self.capacity.alert_pct > self.capacity.reject_pct {
            return Err(invalid(
                path,
                "capacity",
                "need alert_pct <= reject_pct <= 100",
            ));
        }
        self.tls.validate(path)?;
        let addrs = [
            ("master.grpc_addr", self.master.grpc_addr),
            ("master.http_addr", self.master.http_addr),
        ];
        for (key, addr) in addrs {
            self.tls.check_listen(path, key, &addr.to_string())?;
        }
        self.health.validate(path)?;
        self.limits.validate(path)?;
        self.repair.validate(path)?;
        self.balance.validate(path)?;
        self.notify.validate(path)?;
        if let Some(b) = &self.backup {
            b.validate(path)?;
        }
        if self.gc.interval_sec == 0 {
            return Err(invalid(path, "gc.interval_sec", "must be > 0"));
        }
        if self.gc.max_deletes_per_sec == 0 {
            return Err(invalid(path, "gc.max_deletes_per_sec", "must be > 0"));
        }
        if !(self.gc.stale_writing_minutes > 0.0 && self.gc.stale_writing_minutes.is_finite()) {
            return Err(invalid(
                path,
                "gc.stale_writing_minutes",
                "must be > 0 (a writer needs time to commit)",
            ));
        }
        if let Some(a) = &self.admin {
            if a.access_key.is_empty() || a.secret_key.len() < 8 {
                return Err(invalid(
                    path,
                    "admin",
                    "access_key must be set and secret_key at least 8 characters",
                ));
            }
            kdss_common::cluster_secret::refuse_placeholder(
                path,
                "admin.secret_key",
                &a.secret_key,
            )?;
            if a.access_key == kdss_common::auth::SERVICE_ACCESS_KEY {
                return Err(invalid(
                    path,
                    "admin.access_key",
                    "reserved for the service identity",
                ));
            }
        }
        let r = &self.raft;
        if r.heartbeat_ms == 0
            || r.election_timeout_min_ms <= r.heartbeat_ms
            || r.election_timeout_max_ms <= r.election_timeout_min_ms
        {
            return Err(invalid(
                path,
                "raft",
                "need 0 < heartbeat_ms < election_timeout_min_ms < election_timeout_max_ms",
            ));
        }
        if r.snapshot_every == 0 {
            return Err(invalid(path, "raft.snapshot_every", "must be > 0"));
        }
        Ok(())
    }

    /// The peers of the group including this member (a lone master lists itself).
    pub fn members(&self) -> Vec<PeerConfig> {
        if self.cluster.peers.is_empty() {
            vec![PeerConfig {
                id: self.master.id,
                grpc_addr: self.master.grpc_addr.to_string(),
            }]
        } else {
            self.cluster.peers.clone()
        }
    }

    /// The default EC policy of new buckets.
    pub fn ec_policy(&self) -> EcPolicy {
        EcPolicy {
            k: self.ec.data_shards,
            m: self.ec.parity_shards,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[master]
id = 1
grpc_addr = "127.0.0.1:6700"
http_addr = "127.0.0.1:6701"
data_dir = "/tmp/m1"
[cluster]
id = "kdss-local"
secret = "0123456789abcdef0123456789abcdef"
"#;

    #[test]
    fn minimal_config_takes_documented_defaults() {
        let c = MasterConfig::parse(Path::new("master.toml"), MINIMAL).unwrap();
        assert_eq!(c.ec_policy(), EcPolicy { k: 5, m: 2 });
        assert_eq!(c.capacity.reject_pct, 99);
        assert_eq!(c.gc.auto_gc_pending_hours, 48);
        assert_eq!(c.members().len(), 1);
    }

    /// The commented example operators copy must stay loadable as the keys change.
    #[test]
    fn the_deploy_example_parses_with_its_documented_values() {
        let shipped = include_str!("../../../deploy/master.toml");
        let e = MasterConfig::parse(Path::new("deploy/master.toml"), shipped).unwrap_err();
        assert!(
            e.to_string().contains("CHANGE-ME"),
            "placeholders refused: {e}"
        );
        // As an operator fills it in: the placeholders replaced by generated values.
        let text = &shipped.replace("CHANGE-ME", "0123456789abcdef0123456789abcdef");
        let c = MasterConfig::parse(Path::new("deploy/master.toml"), text).unwrap();
        assert_eq!(c.gc.stale_writing_minutes, 120.0);
        assert_eq!(c.health.silent_grace_sec, 600);
        assert_eq!(c.balance.threshold_pct, 10);
        assert_eq!(c.balance.max_bandwidth, 100 << 20);
        assert!(c.tls.serves_tls(), "the deploy example runs TLS");
    }

    #[test]
    fn balance_section_parses_rates_and_refuses_a_useless_threshold() {
        let c = MasterConfig::parse(Path::new("m.toml"), MINIMAL).unwrap();
        assert_eq!(c.balance.threshold_pct, 10);
        assert_eq!(c.balance.max_bandwidth, 100 << 20);
        let text = format!("{MINIMAL}[balance]\nthreshold_pct = 5\nmax_bandwidth = \"40MiB/s\"\n");
        let c = MasterConfig::parse(Path::new("m.toml"), &text).unwrap();
        assert_eq!(
            (c.balance.threshold_pct, c.balance.max_bandwidth),
            (5, 40 << 20)
        );
        let text = format!("{MINIMAL}[balance]\nmax_bandwidth = 0\n");
        let c = MasterConfig::parse(Path::new("m.toml"), &text).unwrap();
        assert_eq!(c.balance.max_bandwidth, 0);
        let text = format!("{MINIMAL}[balance]\nthreshold_pct = 0\n");
        let e = MasterConfig::parse(Path::new("m.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("balance.threshold_pct"), "{e}");
        let text = format!("{MINIMAL}[balance]\nmax_bandwidth = \"fast\"\n");
        let e = MasterConfig::parse(Path::new("m.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_bandwidth"), "{e}");
    }

    #[test]
    fn notify_is_off_by_default_and_refuses_placeholders() {
        let c = MasterConfig::parse(Path::new("m.toml"), MINIMAL).unwrap();
        assert!(c.notify.lark_url.is_none());
        let text = format!(
            "{MINIMAL}[notify]\nlark_url = \"https://open.feishu.cn/open-apis/bot/v2/hook/t0k3n\"\n\
             lark_secret = \"s3cr3t-value\"\n"
        );
        let c = MasterConfig::parse(Path::new("m.toml"), &text).unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("t0k3n") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        let text = format!("{MINIMAL}[notify]\nlark_url = \"https://x/hook/REPLACE-ME\"\n");
        let e = MasterConfig::parse(Path::new("m.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("notify.lark_url"), "{e}");
        let text = format!("{MINIMAL}[notify]\nlark_secret = \"abc\"\n");
        let e = MasterConfig::parse(Path::new("m.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("notify.lark_secret"), "{e}");
    }

    #[test]
    fn typo_is_named_with_file_and_line() {
        let text = format!("{MINIMAL}[capacity]\nreject_pcnt = 90\n");
        let e = MasterConfig::parse(Path::new("master.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("master.toml:11:"), "{e}");
        assert!(e.contains("reject_pcnt"), "{e}");
    }

    #[test]
    fn invalid_values_are_refused() {
        let bad_ec = format!("{MINIMAL}[ec]\ndata_shards = 4\nparity_shards = 2\n");
        let e = MasterConfig::parse(Path::new("m.toml"), &bad_ec)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`ec`"), "{e}");
        let not_member = MINIMAL.replace(
            "secret = \"0123456789abcdef0123456789abcdef\"",
            "secret = \"0123456789abcdef0123456789abcdef\"\npeers = [{ id = 2, grpc_addr = \"127.0.0.1:1\" }]",
        );
        let e = MasterConfig::parse(Path::new("m.toml"), &not_member)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster.peers"), "{e}");
    }
}
