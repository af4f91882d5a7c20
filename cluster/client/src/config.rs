//! Client configuration: the typed struct a [`crate::Client`] is built from. The doors'
//! config files carry the sizing part as [`crate::settings::ClientSettings`] (their
//! `[client]` table) and convert it with `ClientSettings::client_config`; this struct adds
//! the identity. Its `Default` and `validate` live in [`crate::settings`] beside the
//! defaults and ranges they use, so this module imports nothing of the crate.

use std::time::Duration;

/// How a [`crate::Client`] connects and how it sizes its buffers.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Master gRPC addresses (`host:port`); any member answers or forwards to the leader.
    pub masters: Vec<String>,
    pub access_key: String,
    pub secret_key: String,
    /// Bytes of file data per stripe.
    pub chunk_size: usize,
    /// Byte budget of the read cache.
    pub cache_bytes: u64,
    /// Stripes to fetch ahead of a sequential reader (and chunks one stream reads ahead).
    pub prefetch_stripes: usize,
    /// Chunk reads in flight across every reader of this client. Past it reads wait in the
    /// client, where waiting costs nothing, instead of queueing at the storage nodes past
    /// `shard_deadline` (which marks nodes slow and can fail the read); read-ahead that
    /// finds no free slot is skipped rather than queued.
    pub max_inflight_reads: usize,
    /// Bytes a writer may hold before it must wait for shards to become durable.
    pub write_window_bytes: u64,
    /// Bytes all writers of this client may buffer together (dirty bytes and stripes in
    /// flight); past it writers wait. Bounds the memory of many open files or PUTs at
    /// once, where `write_window_bytes` bounds one.
    pub write_buffer_total: u64,
    /// Deadline of one master call; past it the caller gets EIO, never a hang.
    pub rpc_timeout: Duration,
    /// A shard read slower than this is read around (degraded read from parity).
    pub shard_deadline: Duration,
    /// Fixed part of the deadline of one shard put: past the deadline the put counts as
    /// failed and the shard moves to another disk, so a node whose disk hangs delays a
    /// stripe by one deadline instead of stalling it. See [`ClientConfig::put_deadline`].
    pub shard_put_deadline: Duration,
    /// Part of the shard put deadline added per MiB of shard, so large shards on a slow
    /// but working disk are not cut off.
    pub shard_put_deadline_per_mib: Duration,
    /// Files at most this large live inline in metadata.
    pub inline_threshold: usize,
}

impl ClientConfig {
    /// The deadline of one put of a `shard_len`-byte shard: the fixed part plus the part
    /// per MiB, pro rata.
    pub fn put_deadline(&self, shard_len: u64) -> Duration {
        let mib = shard_len as f64 / (1u64 << 20) as f64;
        self.shard_put_deadline + self.shard_put_deadline_per_mib.mul_f64(mib)
    }
}
