//! Errors of the codec and of shard puts. Reads report a [`crate::ShardFault`] instead,
//! because a degraded read or a rebuild decides from its kind whether another shard helps.

/// Why a codec call or a shard put failed.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// The codec refused (bad k+m, too few shards, shards of unequal length): a fault of
    /// the caller's bookkeeping, never of the data on disk.
    #[error("{0}")]
    Codec(String),
    /// A channel to a node could not be built (a malformed address).
    #[error("{0}")]
    Connect(String),
    /// A storage node refused or failed a put.
    #[error("storage node {node}: {status}")]
    Storage { node: String, status: tonic::Status },
}
