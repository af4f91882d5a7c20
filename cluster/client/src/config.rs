//! Client configuration: the typed struct a [`crate::Client`] is built from. The doors'
//! config files carry the sizing part as [`ClientSettings`] (their `[client]` table) and
//! convert it with [`ClientSettings::client_config`]; this struct adds the identity.

use crate::settings::ClientSettings;
use std::time::Duration;

/// Largest chunk (bytes of file data per stripe) the client works with.
pub const MAX_CHUNK_SIZE: usize = crate::settings::MAX_CHUNK_SIZE as usize;

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
            .map_err(|e| crate::ClientError::Invalid(e.to_string()))
    }
}
