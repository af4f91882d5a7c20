//! The crate's error type and the domain failures that `apply` returns inside a
//! `MutationReply` (they are deterministic: every master computes the same one).

use kdss_common::rpc_error::{self, errno};
use kdss_proto::master::MetaFailure;
use tonic::Code;

/// Why a namespace call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// A domain failure (ENOENT, NoSuchKey, BucketNotEmpty, ...): the request was refused
    /// and nothing changed. `apply` turns this into `MutationReply.failure`.
    #[error("{}: {} (errno {})", .0.code, .0.message, .0.errno)]
    Failure(MetaFailure),
    /// The database failed; the state machine cannot go on with this entry.
    #[error("sqlite: {0}")]
    Sql(#[from] sqlx::Error),
    /// The database holds something this version cannot read.
    #[error("corrupt namespace database: {0}")]
    Corrupt(String),
    /// A user's stored secret key cannot be decrypted (another cluster secret, or damage).
    #[error("{0}")]
    Sealed(#[from] crate::sealed::SealError),
}

impl MetaError {
    /// The failure this error carries, if it is a domain failure.
    pub fn failure(&self) -> Option<&MetaFailure> {
        match self {
            MetaError::Failure(f) => Some(f),
            _ => None,
        }
    }
}

/// Builds a domain failure.
pub(crate) fn fail(errno: i32, code: &str, message: impl Into<String>) -> MetaError {
    MetaError::Failure(MetaFailure {
        errno,
        code: code.to_string(),
        message: message.into(),
    })
}

/// Shorthands for the failures that recur.
pub(crate) fn enoent(what: impl std::fmt::Display) -> MetaError {
    fail(
        errno::ENOENT,
        "NotFound",
        format!("{what}: no such file or directory"),
    )
}
pub(crate) fn einval(message: impl Into<String>) -> MetaError {
    fail(errno::EINVAL, "InvalidArgument", message)
}
pub(crate) fn no_such_bucket(name: &str) -> MetaError {
    fail(
        errno::ENOENT,
        "NoSuchBucket",
        format!("bucket {name:?} does not exist"),
    )
}
pub(crate) fn no_such_key(key: &str) -> MetaError {
    fail(
        errno::ENOENT,
        "NoSuchKey",
        format!("key {key:?} does not exist"),
    )
}

/// Turns a domain failure into the gRPC status both doors understand (errno for ksfs,
/// code for the S3 gateway, see kdss_common::rpc_error).
pub fn failure_status(f: &MetaFailure) -> tonic::Status {
    rpc_error::status(grpc_code(f), f.errno, &f.code, f.message.clone())
}

fn grpc_code(f: &MetaFailure) -> Code {
    match f.code.as_str() {
        "PreconditionFailed" | "BucketNotEmpty" | "ObjectConflict" => {
            return Code::FailedPrecondition;
        }
        "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall" | "KeyTooLongError"
        | "InvalidBucketName" => return Code::InvalidArgument,
        "AccessDenied" => return Code::PermissionDenied,
        _ => {}
    }
    match f.errno {
        errno::ENOENT | errno::ENODATA => Code::NotFound,
        errno::EEXIST => Code::AlreadyExists,
        errno::EINVAL | errno::ENAMETOOLONG | errno::ERANGE | errno::EFBIG | errno::E2BIG => {
            Code::InvalidArgument
        }
        errno::EACCES | errno::EPERM => Code::PermissionDenied,
        errno::ENOSPC => Code::ResourceExhausted,
        errno::ENOTEMPTY
        | errno::ENOTDIR
        | errno::EISDIR
        | errno::ESTALE
        | errno::EBADF
        | errno::EXDEV => Code::FailedPrecondition,
        errno::ENOSYS | errno::ENOTSUP => Code::Unimplemented,
        _ => Code::Internal,
    }
}

impl From<MetaError> for tonic::Status {
    fn from(e: MetaError) -> Self {
        match e {
            MetaError::Failure(f) => failure_status(&f),
            other => rpc_error::status(
                Code::Internal,
                errno::EIO,
                "InternalError",
                other.to_string(),
            ),
        }
    }
}

/// Result of the crate's functions.
pub type Result<T, E = MetaError> = std::result::Result<T, E>;
