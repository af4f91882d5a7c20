//! Client errors, with the errno ksfs returns and the code the S3 gateway maps.

use kdss_common::rpc_error::{self, errno};

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("master: {0}")]
    Master(tonic::Status),
    #[error("cannot reach any master of {0:?}")]
    NoMaster(Vec<String>),
    #[error("stripe {stripe_id}: only {available} of {needed} shards readable; data unavailable")]
    Unrecoverable {
        stripe_id: u64,
        available: usize,
        needed: usize,
    },
    #[error("storage node {node}: {status}")]
    Storage { node: String, status: tonic::Status },
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The caller asked for something that cannot work (a bad setting or argument):
    /// EINVAL / 4xx.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A fault inside the client or in what the cluster answered (a failed task, an
    /// encoder error, a reply missing a field): not the caller's doing, so EIO / 5xx.
    #[error("internal fault: {0}")]
    Internal(String),
}

impl ClientError {
    /// The errno a POSIX caller should see.
    pub fn errno(&self) -> i32 {
        match self {
            ClientError::Master(s) => rpc_error::errno_of(s),
            ClientError::Invalid(_) => errno::EINVAL,
            // Every other failure is the cluster's or the client's, never the caller's.
            ClientError::NoMaster(_)
            | ClientError::Unrecoverable { .. }
            | ClientError::Storage { .. }
            | ClientError::Timeout(_)
            | ClientError::Internal(_) => errno::EIO,
        }
    }
    /// The stable code string from the master, if the failure came with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Master(s) => rpc_error::code_of(s),
            _ => None,
        }
    }
}

/// Codec faults and unreachable addresses are internal; a node's refusal of a put stays a
/// storage error naming the node.
impl From<kdss_shard::ShardError> for ClientError {
    fn from(e: kdss_shard::ShardError) -> Self {
        match e {
            kdss_shard::ShardError::Codec(m) | kdss_shard::ShardError::Connect(m) => {
                ClientError::Internal(m)
            }
            kdss_shard::ShardError::Storage { node, status } => {
                ClientError::Storage { node, status }
            }
        }
    }
}

impl From<tonic::Status> for ClientError {
    fn from(s: tonic::Status) -> Self {
        ClientError::Master(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_faults_are_eio_and_caller_errors_einval() {
        assert_eq!(
            ClientError::Internal("encode task".into()).errno(),
            errno::EIO
        );
        assert_eq!(
            ClientError::Invalid("chunk_size".into()).errno(),
            errno::EINVAL
        );
    }
}
