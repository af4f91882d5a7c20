//! The `[client]` section that `mount.toml` and `s3gw.toml` both embed: one set of key
//! names, one size syntax, one set of defaults and one range per key, so both doors size
//! the data path the same way and a value the client could not work with is refused when
//! the file is loaded, with the key named.
//!
//! Sizes are integers of bytes or strings with a binary unit (`"4MiB"`, `"256k"`), parsed by
//! [`kdss_common::size::parse_size`] like every other size in KDSS; durations are seconds
//! (`15`, `0.5`). Older names stay accepted: `cache_bytes` and `write_window_bytes` are
//! aliases of `cache_size` and `write_window`, and `rpc_timeout_ms` (milliseconds) may stand
//! in for `rpc_timeout`. [`ClientConfig::validate`] runs the same checks, so a config
//! built in code is held to the same ranges.

use crate::config::ClientConfig;
use kdss_common::limits::MAX_INLINE_BYTES;
use kdss_common::size::parse_size;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Smallest chunk (bytes of file data per stripe): below one 4 KiB record per shard the
/// stripe overhead dwarfs the data.
pub const MIN_CHUNK_SIZE: u64 = 4 << 10;
/// Largest chunk the client works with (one chunk is held in memory per stripe in flight).
pub const MAX_CHUNK_SIZE: u64 = 256 << 20;
/// Largest read cache: a guard against a unit typo (`"256G"` for `"256M"`).
pub const MAX_CACHE_SIZE: u64 = 1 << 40;
/// Most stripes a sequential reader fetches ahead.
pub const MAX_PREFETCH_STRIPES: usize = 64;
/// Most chunk reads in flight per client.
pub const MAX_INFLIGHT_READS: usize = 1024;
/// Largest write window (bytes one writer holds before waiting for durable shards).
pub const MAX_WRITE_WINDOW: u64 = 16 << 30;
/// Default budget of buffered write bytes across all writers of a client: four full
/// write windows, so four files stream at full speed while 32 parallel writers on a slow
/// cluster stay within a few hundred MiB of an application host's memory.
pub const DEFAULT_WRITE_BUFFER_TOTAL: u64 = 256 << 20;
/// Smallest write budget: below it nearly every write becomes a stripe of its own.
pub const MIN_WRITE_BUFFER_TOTAL: u64 = 1 << 20;
/// Largest write budget (a guard against a unit typo; "unbounded" for comparisons).
pub const MAX_WRITE_BUFFER_TOTAL: u64 = 1 << 40;
/// Longest master-call deadline, in seconds.
pub const MAX_RPC_TIMEOUT_SECS: f64 = 3600.0;
/// Longest shard deadline (read, and the fixed part of a put's), in seconds.
pub const MAX_SHARD_DEADLINE_SECS: f64 = 600.0;
/// Longest part of the shard put deadline per MiB of shard, in seconds.
pub const MAX_PUT_DEADLINE_PER_MIB_SECS: f64 = 60.0;

/// How a client sizes its data path: the `[client]` table of both doors' config files.
/// Every key is optional; [`Default`] holds the one set of defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSettings {
    /// Bytes of file data per stripe (default 4 MiB, 4 KiB to 256 MiB).
    #[serde(deserialize_with = "de_size")]
    pub chunk_size: u64,
    /// Byte budget of the read cache (default 256 MiB, 0 turns caching off).
    #[serde(alias = "cache_bytes", deserialize_with = "de_size")]
    pub cache_size: u64,
    /// Stripes fetched ahead of a sequential reader (default 4, 0 to 64).
    pub prefetch_stripes: usize,
    /// Chunk reads in flight across every reader of the client (default 16, 1 to 1024):
    /// past it reads queue in the client instead of at the storage nodes.
    pub max_inflight_reads: usize,
    /// Bytes one writer may hold before it waits for durable shards (default 64 MiB, at
    /// least `chunk_size`, at most 16 GiB); it bounds memory per open file or PUT.
    #[serde(alias = "write_window_bytes", deserialize_with = "de_size")]
    pub write_window: u64,
    /// Files and objects at most this large are kept inline in metadata instead of in a
    /// stripe (default 16 KiB; at most 64 KiB, the master's limit, and at most `chunk_size`).
    #[serde(deserialize_with = "de_size")]
    pub inline_threshold: u64,
    /// Seconds one master call may take before the caller gets an error (default 15,
    /// above 0 and at most 3600).
    pub rpc_timeout: Option<f64>,
    /// The same deadline in milliseconds: the gateway's older name, accepted so existing
    /// files keep loading. Give one of `rpc_timeout` and `rpc_timeout_ms`, not both.
    pub rpc_timeout_ms: Option<u64>,
    /// Seconds a shard read may take before it is read around from parity (default 3,
    /// above 0 and at most 600).
    pub shard_deadline: f64,
    /// Seconds one shard put may take, fixed part (default 10, above 0 and at most 600).
    /// A put past its deadline counts as failed: the shard is moved to another disk
    /// through the master, so one node with a hung disk delays a write instead of
    /// stalling it.
    pub shard_put_deadline: f64,
    /// Seconds added to the shard put deadline per MiB of shard (default 0.5, 0 to 60):
    /// a 64 MiB shard gets 10 + 32 s, enough for a slow disk that still works.
    pub shard_put_deadline_per_mib: f64,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            chunk_size: 4 << 20,
            cache_size: 256 << 20,
            prefetch_stripes: 4,
            max_inflight_reads: 16,
            write_window: 64 << 20,
            inline_threshold: 16 << 10,
            rpc_timeout: None,
            rpc_timeout_ms: None,
            shard_deadline: 3.0,
            shard_put_deadline: 10.0,
            shard_put_deadline_per_mib: 0.5,
        }
    }
}

impl Default for ClientConfig {
    /// The defaults of [`ClientSettings`], a local master and no identity.
    fn default() -> Self {
        ClientSettings::default().client_config(
            vec!["127.0.0.1:6700".into()],
            String::new(),
            String::new(),
        )
    }
}

impl ClientConfig {
    /// Refuses settings the data path cannot work with: the same ranges as the doors'
    /// `[client]` tables ([`ClientSettings::validate`]).
    pub fn validate(&self) -> Result<(), crate::ClientError> {
        if self.masters.is_empty() {
            return Err(crate::ClientError::Invalid(
                "masters: at least one master address is needed".into(),
            ));
        }
        ClientSettings::of_config(self)
            .validate()
            .map_err(|e| crate::ClientError::Invalid(e.to_string()))?;
        check_write_buffer_total(self.write_buffer_total)
            .map_err(|e| crate::ClientError::Invalid(e.to_string()))
    }
}

/// The master-call deadline when neither `rpc_timeout` nor `rpc_timeout_ms` is given.
const DEFAULT_RPC_TIMEOUT_SECS: f64 = 15.0;

/// A setting outside its allowed range: names the key, the value given and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` = {value}: {allowed}")]
pub struct SettingsError {
    /// The key inside the section (`chunk_size`); the door prefixes its table name.
    pub key: &'static str,
    /// The value as given.
    pub value: String,
    /// What is allowed instead.
    pub allowed: String,
}

impl SettingsError {
    /// The message without the key, for errors that name the key elsewhere.
    pub fn detail(&self) -> String {
        format!("{} is not allowed: {}", self.value, self.allowed)
    }
}

fn size_text(n: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

fn check_size(key: &'static str, v: u64, min: u64, max: u64) -> Result<(), SettingsError> {
    if (min..=max).contains(&v) {
        return Ok(());
    }
    Err(SettingsError {
        key,
        value: size_text(v),
        allowed: format!("must be between {} and {}", size_text(min), size_text(max)),
    })
}

/// The range of `write_buffer_total` (ksfs `[mount] write_buffer_total`).
pub fn check_write_buffer_total(v: u64) -> Result<(), SettingsError> {
    check_size(
        "write_buffer_total",
        v,
        MIN_WRITE_BUFFER_TOTAL,
        MAX_WRITE_BUFFER_TOTAL,
    )
}

fn check_count(key: &'static str, v: usize, min: usize, max: usize) -> Result<(), SettingsError> {
    if (min..=max).contains(&v) {
        return Ok(());
    }
    Err(SettingsError {
        key,
        value: v.to_string(),
        allowed: format!("must be between {min} and {max}"),
    })
}

fn check_secs_or_zero(key: &'static str, v: f64, max: f64) -> Result<(), SettingsError> {
    if (0.0..=max).contains(&v) {
        return Ok(());
    }
    Err(SettingsError {
        key,
        value: format!("{v} s"),
        allowed: format!("must be between 0 and {max} seconds"),
    })
}

fn check_secs(key: &'static str, v: f64, max: f64) -> Result<(), SettingsError> {
    if v > 0.0 && v <= max {
        return Ok(());
    }
    Err(SettingsError {
        key,
        value: format!("{v} s"),
        allowed: format!("must be above 0 and at most {max} seconds"),
    })
}

impl ClientSettings {
    /// Checks every value against its range; the first one outside it is the error.
    pub fn validate(&self) -> Result<(), SettingsError> {
        check_size(
            "chunk_size",
            self.chunk_size,
            MIN_CHUNK_SIZE,
            MAX_CHUNK_SIZE,
        )?;
        check_size("cache_size", self.cache_size, 0, MAX_CACHE_SIZE)?;
        check_count(
            "prefetch_stripes",
            self.prefetch_stripes,
            0,
            MAX_PREFETCH_STRIPES,
        )?;
        check_count(
            "max_inflight_reads",
            self.max_inflight_reads,
            1,
            MAX_INFLIGHT_READS,
        )?;
        check_size(
            "write_window",
            self.write_window,
            self.chunk_size,
            MAX_WRITE_WINDOW,
        )
        .map_err(|e| SettingsError {
            allowed: format!("{} (at least chunk_size)", e.allowed),
            ..e
        })?;
        let inline_max = self.chunk_size.min(MAX_INLINE_BYTES as u64);
        check_size("inline_threshold", self.inline_threshold, 0, inline_max).map_err(|e| {
            SettingsError {
                allowed: format!("{} (at most 64KiB and at most chunk_size)", e.allowed),
                ..e
            }
        })?;
        match (self.rpc_timeout, self.rpc_timeout_ms) {
            (Some(_), Some(ms)) => {
                return Err(SettingsError {
                    key: "rpc_timeout_ms",
                    value: ms.to_string(),
                    allowed: "give rpc_timeout (seconds) or rpc_timeout_ms, not both".into(),
                });
            }
            (Some(s), None) => check_secs("rpc_timeout", s, MAX_RPC_TIMEOUT_SECS)?,
            (None, Some(ms)) => {
                check_secs("rpc_timeout_ms", ms as f64 / 1000.0, MAX_RPC_TIMEOUT_SECS).map_err(
                    |e| SettingsError {
                        value: format!("{ms} ms"),
                        ..e
                    },
                )?
            }
            (None, None) => {}
        }
        check_secs(
            "shard_deadline",
            self.shard_deadline,
            MAX_SHARD_DEADLINE_SECS,
        )?;
        check_secs(
            "shard_put_deadline",
            self.shard_put_deadline,
            MAX_SHARD_DEADLINE_SECS,
        )?;
        check_secs_or_zero(
            "shard_put_deadline_per_mib",
            self.shard_put_deadline_per_mib,
            MAX_PUT_DEADLINE_PER_MIB_SECS,
        )
    }

    /// The deadline of one master call, whichever key gave it.
    pub fn rpc_timeout(&self) -> Duration {
        let secs = match (self.rpc_timeout, self.rpc_timeout_ms) {
            (Some(s), _) => s,
            (None, Some(ms)) => ms as f64 / 1000.0,
            (None, None) => DEFAULT_RPC_TIMEOUT_SECS,
        };
        secs_or(secs, DEFAULT_RPC_TIMEOUT_SECS)
    }

    /// The shard read deadline.
    pub fn shard_deadline(&self) -> Duration {
        secs_or(
            self.shard_deadline,
            ClientSettings::default().shard_deadline,
        )
    }

    /// The client configuration for these settings and the given identity.
    pub fn client_config(
        &self,
        masters: Vec<String>,
        access_key: String,
        secret_key: String,
    ) -> ClientConfig {
        ClientConfig {
            masters,
            access_key,
            secret_key,
            chunk_size: self.chunk_size as usize,
            cache_bytes: self.cache_size,
            prefetch_stripes: self.prefetch_stripes,
            max_inflight_reads: self.max_inflight_reads,
            write_window_bytes: self.write_window,
            write_buffer_total: DEFAULT_WRITE_BUFFER_TOTAL,
            rpc_timeout: self.rpc_timeout(),
            shard_deadline: self.shard_deadline(),
            shard_put_deadline: secs_or(
                self.shard_put_deadline,
                ClientSettings::default().shard_put_deadline,
            ),
            shard_put_deadline_per_mib: secs_or(
                self.shard_put_deadline_per_mib,
                ClientSettings::default().shard_put_deadline_per_mib,
            ),
            inline_threshold: self.inline_threshold as usize,
        }
    }

    /// The settings a [`ClientConfig`] carries, so it can be checked by [`Self::validate`].
    pub fn of_config(c: &ClientConfig) -> ClientSettings {
        ClientSettings {
            chunk_size: c.chunk_size as u64,
            cache_size: c.cache_bytes,
            prefetch_stripes: c.prefetch_stripes,
            max_inflight_reads: c.max_inflight_reads,
            write_window: c.write_window_bytes,
            inline_threshold: c.inline_threshold as u64,
            rpc_timeout: Some(c.rpc_timeout.as_secs_f64()),
            rpc_timeout_ms: None,
            shard_deadline: c.shard_deadline.as_secs_f64(),
            shard_put_deadline: c.shard_put_deadline.as_secs_f64(),
            shard_put_deadline_per_mib: c.shard_put_deadline_per_mib.as_secs_f64(),
        }
    }
}

/// `secs` as a duration; `fallback` when it is not a valid one (validation refuses those).
fn secs_or(secs: f64, fallback: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::from_secs_f64(fallback))
}

/// A byte size in a config file: an integer of bytes or a string such as `"4MiB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected a size: bytes as an integer or a string like \"4MiB\"",
            )
        })? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Text(s) => parse_size(&s)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// `deserialize_with` for a `u64` byte size (see [`ByteSize`]).
pub fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    ByteSize::deserialize(d).map(|b| b.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ClientSettings, String> {
        toml::from_str::<ClientSettings>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn an_empty_section_gets_the_one_set_of_defaults() {
        let s = parse("").unwrap();
        assert_eq!(s, ClientSettings::default());
        s.validate().unwrap();
        let c = s.client_config(vec!["m:1".into()], "ak".into(), "sk".into());
        assert_eq!(c.chunk_size, 4 << 20);
        assert_eq!(c.cache_bytes, 256 << 20);
        assert_eq!(c.prefetch_stripes, 4);
        assert_eq!(c.max_inflight_reads, 16);
        assert_eq!(c.write_window_bytes, 64 << 20);
        assert_eq!(c.inline_threshold, 16 << 10);
        assert_eq!(c.rpc_timeout, Duration::from_secs(15));
        assert_eq!(c.shard_deadline, Duration::from_secs(3));
        assert_eq!(c.shard_put_deadline, Duration::from_secs(10));
        assert_eq!(c.put_deadline(0), Duration::from_secs(10));
        assert_eq!(c.put_deadline(64 << 20), Duration::from_secs(42));
        assert_eq!(c.put_deadline(512 << 10), Duration::from_millis(10_250));
        let d = ClientConfig::default();
        assert_eq!(
            (
                d.chunk_size,
                d.cache_bytes,
                d.write_window_bytes,
                d.rpc_timeout
            ),
            (
                c.chunk_size,
                c.cache_bytes,
                c.write_window_bytes,
                c.rpc_timeout
            ),
            "ClientConfig::default comes from the same defaults"
        );
    }

    #[test]
    fn sizes_take_unit_strings_and_integers() {
        let s = parse(
            "chunk_size = \"8MiB\"\ncache_size = 1048576\nwrite_window = \"1 G\"\n\
             inline_threshold = \"4k\"",
        )
        .unwrap();
        assert_eq!(s.chunk_size, 8 << 20);
        assert_eq!(s.cache_size, 1 << 20);
        assert_eq!(s.write_window, 1 << 30);
        assert_eq!(s.inline_threshold, 4 << 10);
        let e = parse("chunk_size = \"8 parsecs\"").unwrap_err();
        assert!(e.contains("unknown unit"), "{e}");
        let e = parse("chunk_size = true").unwrap_err();
        assert!(e.contains("expected a size"), "{e}");
    }

    #[test]
    fn older_names_load_with_the_same_meaning() {
        let s = parse(
            "cache_bytes = 1024\nwrite_window_bytes = 33554432\nrpc_timeout_ms = 2500\n\
             prefetch_stripes = 2",
        )
        .unwrap();
        assert_eq!(s.cache_size, 1024);
        assert_eq!(s.write_window, 32 << 20);
        assert_eq!(s.rpc_timeout(), Duration::from_millis(2500));
        assert_eq!(s.prefetch_stripes, 2);
        s.validate().unwrap();
        let e = parse("cache_size = 1\ncache_bytes = 2").unwrap_err();
        assert!(e.contains("duplicate"), "{e}");
        let both = parse("rpc_timeout = 1\nrpc_timeout_ms = 1000").unwrap();
        assert_eq!(both.validate().unwrap_err().key, "rpc_timeout_ms");
    }

    #[test]
    fn a_typo_is_an_error_naming_the_key() {
        let e = parse("chunk_sise = \"4MiB\"").unwrap_err();
        assert!(e.contains("chunk_sise"), "{e}");
    }

    #[test]
    fn values_out_of_range_name_key_value_and_range() {
        let cases: [(&str, &str, &str); 13] = [
            ("chunk_size = \"512MiB\"", "chunk_size", "512MiB"),
            ("chunk_size = 1024", "chunk_size", "1KiB"),
            ("cache_size = \"2TiB\"", "cache_size", "2TiB"),
            ("prefetch_stripes = 65", "prefetch_stripes", "65"),
            ("max_inflight_reads = 0", "max_inflight_reads", "0"),
            ("write_window = \"1MiB\"", "write_window", "1MiB"),
            (
                "inline_threshold = \"128KiB\"",
                "inline_threshold",
                "128KiB",
            ),
            ("rpc_timeout = 0", "rpc_timeout", "0 s"),
            ("rpc_timeout_ms = 0", "rpc_timeout_ms", "0 ms"),
            ("shard_deadline = -1.0", "shard_deadline", "-1 s"),
            ("shard_put_deadline = 0", "shard_put_deadline", "0 s"),
            ("shard_put_deadline = 601", "shard_put_deadline", "601 s"),
            (
                "shard_put_deadline_per_mib = -0.5",
                "shard_put_deadline_per_mib",
                "-0.5 s",
            ),
        ];
        for (text, key, value) in cases {
            let e = parse(text).unwrap().validate().unwrap_err();
            assert_eq!(e.key, key, "{text}");
            assert_eq!(e.value, value, "{text}");
            assert!(e.allowed.starts_with("must be"), "{text}: {e}");
        }
        let e = parse("chunk_size = \"512MiB\"")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`chunk_size` = 512MiB: must be between 4KiB and 256MiB"
        );
        // inline_threshold is bounded by a small chunk as well.
        let e =
            parse("chunk_size = \"8KiB\"\nwrite_window = \"8KiB\"\ninline_threshold = \"16KiB\"")
                .unwrap()
                .validate()
                .unwrap_err();
        assert_eq!(e.key, "inline_threshold");
    }

    #[test]
    fn a_config_built_in_code_is_held_to_the_same_ranges() {
        let c = ClientConfig {
            chunk_size: 512 << 20,
            ..ClientConfig::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("chunk_size") && e.contains("256MiB"), "{e}");
        ClientConfig::default().validate().unwrap();
    }
}
