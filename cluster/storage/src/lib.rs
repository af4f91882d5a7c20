//! The KDSS storage node: a record engine per raw device ([`engine::Disk`]), the shard gRPC
//! service, `/metrics`, and registration with the masters.
//!
//! What other crates use: [`config::StorageConfig`], [`run`], [`format_disk`] and
//! [`bench`]; everything else reaches a node through the gRPC service
//! `kdss_proto::storage::storage_server::Storage`.

pub mod device;
pub mod engine;
pub mod error;

pub use error::StorageError;
