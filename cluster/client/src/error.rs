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
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl ClientError {
    /// The errno a POSIX caller should see.
    pub fn errno(&self) -> i32 {
        match self {
            ClientError::Master(s) => rpc_error::errno_of(s),
            ClientError::Invalid(_) => errno::EINVAL,
            _ => errno::EIO,
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

impl From<tonic::Status> for ClientError {
    fn from(s: tonic::Status) -> Self {
        ClientError::Master(s)
    }
}
