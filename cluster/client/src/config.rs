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
    /// Files at most this large live inline in metadata.
    pub inline_threshold: usize,
}
