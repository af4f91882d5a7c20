//! The KDSS storage node: a record engine per raw device ([`engine::Disk`]), the shard gRPC
//! service ([`service::StorageService`]), `/metrics`, and registration with the masters.
//!
//! What other crates use: [`config::StorageConfig`], [`run`], [`format_disk`] and
//! [`bench`]; everything else reaches a node through the gRPC service
//! `kdss_proto::storage::storage_server::Storage`.

#[cfg(feature = "bench")]
pub mod bench;
pub mod config;
pub mod device;
pub mod engine;
pub mod error;
pub mod heartbeat;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod node;
pub mod node_shared;
pub mod rebuild;
pub mod service;

pub use config::StorageConfig;
pub use error::StorageError;
pub use node::{run, serve};

use kdss_common::DiskId;
use std::path::Path;

/// Formats `path` for `cluster_id` (creating a missing file of `size_bytes`, growing a
/// smaller one) and returns its new disk id. A device that is already formatted is refused
/// with [`StorageError::AlreadyFormatted`]; use [`reformat_disk`] to wipe one on purpose.
pub fn format_disk(path: &Path, size_bytes: u64, cluster_id: &str) -> Result<DiskId, StorageError> {
    engine::format(
        path,
        size_bytes,
        cluster_id,
        engine::FormatOptions::default(),
    )
}

/// Like [`format_disk`], but wipes a formatted device (all its shards are lost).
pub fn reformat_disk(
    path: &Path,
    size_bytes: u64,
    cluster_id: &str,
) -> Result<DiskId, StorageError> {
    engine::format(
        path,
        size_bytes,
        cluster_id,
        engine::FormatOptions {
            segment_size: None,
            force: true,
        },
    )
}
