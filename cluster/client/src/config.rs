//! Client settings. Libraries take typed structs; the binaries parse files into them.

use std::time::Duration;

/// Largest chunk (bytes of file data per stripe) the client works with; the doors' config
/// files refuse larger values at parse time with this same bound.
pub const MAX_CHUNK_SIZE: usize = 256 << 20;

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
    /// Deadline of one master call; past it the caller gets EIO, never a hang.
    pub rpc_timeout: Duration,
    /// A shard read slower than this is read around (degraded read from parity).
    pub shard_deadline: Duration,
    /// Files at most this large live inline in metadata.
    pub inline_threshold: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            masters: vec!["127.0.0.1:6700".into()],
            access_key: String::new(),
            secret_key: String::new(),
            chunk_size: 4 << 20,
            cache_bytes: 256 << 20,
            prefetch_stripes: 4,
            max_inflight_reads: 16,
            write_window_bytes: 64 << 20,
            rpc_timeout: Duration::from_secs(15),
            shard_deadline: Duration::from_secs(3),
            inline_threshold: 16 << 10,
        }
    }
}

impl ClientConfig {
    /// Refuses settings the data path cannot work with.
    pub fn validate(&self) -> Result<(), crate::ClientError> {
        let bad = |m: &str| Err(crate::ClientError::Invalid(m.to_string()));
        if self.masters.is_empty() {
            return bad("masters: at least one master address is needed");
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return bad("chunk_size: must be between 1 byte and 256 MiB");
        }
        if self.max_inflight_reads == 0 {
            return bad("max_inflight_reads: at least 1");
        }
        if self.rpc_timeout.is_zero() || self.shard_deadline.is_zero() {
            return bad("rpc_timeout and shard_deadline must be positive");
        }
        if self.inline_threshold > self.chunk_size
            || self.inline_threshold > kdss_common::limits::MAX_INLINE_BYTES
        {
            return bad("inline_threshold: must not exceed chunk_size nor 64 KiB");
        }
        Ok(())
    }
}
