//! The storage crate's error type, and its mapping to gRPC statuses in one place.

use kdss_common::DiskId;
use kdss_common::rpc_error::{errno, status};
use std::path::PathBuf;
use tonic::Code;

/// Everything that can go wrong in the engine, the node or the bench.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{path}: {op} failed: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{path} is not a KDSS device ({reason}); format it with `kdss format-disk`")]
    Unformatted { path: PathBuf, reason: String },
    #[error("{path} belongs to cluster {found:?}, not {expected:?}")]
    ForeignCluster {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{path} is already formatted as {disk}; refusing to reformat it")]
    AlreadyFormatted { path: PathBuf, disk: DiskId },
    #[error("{path} is in use by another process (exclusive lock held)")]
    Locked { path: PathBuf },
    #[error("{path} is too small: {size} bytes, need at least {min}")]
    TooSmall { path: PathBuf, size: u64, min: u64 },
    #[error("{path}: corrupt metadata: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("{disk} has failed after an I/O error and accepts no more writes")]
    DiskFailed { disk: DiskId },
    #[error("{disk} is full: {need} bytes needed, {free} free")]
    DiskFull { disk: DiskId, need: u64, free: u64 },
    #[error("shard of {len} bytes is larger than the {max} bytes a record can hold on {disk}")]
    ShardTooLarge { disk: DiskId, len: u64, max: u64 },
    #[error("shard {stripe}/{shard} not found on {disk}")]
    NotFound {
        disk: DiskId,
        stripe: u64,
        shard: u32,
    },
    #[error("shard {stripe}/{shard} on {disk} at offset {offset} failed its checksum: {detail}")]
    ChecksumMismatch {
        disk: DiskId,
        stripe: u64,
        shard: u32,
        offset: u64,
        detail: String,
    },
    #[error("range {offset}+{len} is outside the shard of {shard_len} bytes")]
    BadRange {
        offset: u64,
        len: u64,
        shard_len: u64,
    },
    #[error(
        "cannot rebuild shard {stripe}/{shard}: only {readable} of the {needed} source shards needed were readable (failed: {failed})"
    )]
    TooFewSources {
        stripe: u64,
        shard: u32,
        readable: usize,
        needed: usize,
        failed: String,
    },
    #[error("no disk {0} on this node")]
    NoSuchDisk(DiskId),
    #[error("the engine of {0} has stopped")]
    Stopped(DiskId),
    #[error(transparent)]
    Config(#[from] kdss_common::ConfigError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("gRPC server failed: {0}")]
    Serve(String),
}

impl StorageError {
    /// The gRPC status a client sees, with errno and a stable code string.
    pub fn to_status(&self) -> tonic::Status {
        let (grpc, eno, code) = match self {
            StorageError::NotFound { .. } => (Code::NotFound, errno::ENOENT, "NoSuchShard"),
            StorageError::NoSuchDisk(_) => (Code::NotFound, errno::ENOENT, "NoSuchDisk"),
            StorageError::ChecksumMismatch { .. } => {
                (Code::DataLoss, errno::EIO, "ChecksumMismatch")
            }
            StorageError::DiskFull { .. } => (Code::ResourceExhausted, errno::ENOSPC, "DiskFull"),
            StorageError::ShardTooLarge { .. } => {
                (Code::InvalidArgument, errno::EFBIG, "ShardTooLarge")
            }
            StorageError::TooFewSources { .. } => {
                (Code::FailedPrecondition, errno::EIO, "TooFewSources")
            }
            StorageError::BadRange { .. } => (Code::OutOfRange, errno::EINVAL, "InvalidRange"),
            StorageError::DiskFailed { .. } | StorageError::Stopped(_) => {
                (Code::Unavailable, errno::EIO, "DiskFailed")
            }
            _ => (Code::Internal, errno::EIO, "InternalError"),
        };
        status(grpc, eno, code, self.to_string())
    }
}
