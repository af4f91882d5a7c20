//! THE client data path of KDSS — the one implementation of writing and reading file
//! data, used by ksfs, the S3 gateway and kdss-cli (docs/architecture.md, "Writing" and
//! "Reading").
//!
//! Writes: bytes → chunks → one stripe per chunk, EC-encoded (k+m) on the client → shards
//! sent in parallel to the disks the master placed, with their capabilities → the extent
//! map committed only when every shard is durable (invariant 1).
//! Reads: extents → only the data shards a range overlaps → degraded read from any k
//! shards when one is missing, corrupt or slow → LRU cache, sequential prefetch.
//!
//! Main types: [`Client`] (cheap to clone), [`FileReader`], [`FileWriter`] (random
//! access, for ksfs), [`StreamWriter`] (sequential, for S3 PUT and parts).

mod async_io;
#[cfg(feature = "bench")]
pub mod bench;
mod cache;
pub mod config;
mod disk_cache;
pub mod error;
mod file_writer;
pub mod layout;
pub mod master;
mod master_calls;
mod objects;
mod read_order;
#[cfg(test)]
mod read_path_tests;
mod reader;
pub mod settings;
mod state;
mod stream_writer;
mod stripe_read;
mod stripe_write;
mod write_budget;

pub use async_io::{ReadAdapter, WriteAdapter};
pub use cache::CacheStats;
pub use config::ClientConfig;
pub use disk_cache::{DiskCache, DiskCacheError, DiskCacheStats};
pub use error::ClientError;
pub use file_writer::FileWriter;
pub use master::MasterClient;
pub use reader::FileReader;
pub use settings::ClientSettings;
pub use stream_writer::StreamWriter;

use std::sync::Arc;

/// The codec and shard transfer live in kdss-shard (shared with the storage node's
/// RebuildShard); these names keep the client's `crate::ec` / `crate::shard_io` paths.
use kdss_shard::{ec, shard_io};

use bytes::Bytes;
use kdss_proto::master as pb;

/// A connection to a KDSS cluster: master channels, storage-node channels, the cache.
/// Cheap to clone; clones and `acting_for` views share channels and cache.
#[derive(Clone)]
pub struct Client {
    shared: Arc<state::Shared>,
    master: MasterClient,
}

/// What a [`StreamWriter`] wrote: the extents to commit (offsets from 0), the size and
/// the MD5 of the bytes (S3 ETags), or inline data when the whole stream was small.
#[derive(Debug, Clone, Default)]
pub struct WrittenData {
    pub extents: Vec<pb::Extent>,
    pub size: u64,
    pub md5: [u8; 16],
    pub inline_data: Option<Bytes>,
}

impl Client {
    /// Connects to the masters named in `cfg` and authenticates (one ListBuckets call, so a
    /// wrong key fails here and not at the first file operation).
    pub async fn connect(cfg: ClientConfig) -> Result<Client, ClientError> {
        let c = Client::connect_lazy(cfg)?;
        c.master.list_buckets(pb::ListBucketsRequest {}).await?;
        Ok(c)
    }

    /// A client whose channels connect on first use; nothing is checked yet.
    pub fn connect_lazy(cfg: ClientConfig) -> Result<Client, ClientError> {
        cfg.validate()?;
        let master = MasterClient::new(
            &cfg.masters,
            &cfg.access_key,
            &cfg.secret_key,
            cfg.rpc_timeout,
        )?;
        Ok(Client {
            shared: Arc::new(state::Shared::new(cfg)),
            master,
        })
    }

    /// Namespace and admin calls to the master (auth, leader failover and timeouts inside).
    pub fn master(&self) -> &MasterClient {
        &self.master
    }

    /// The settings this client runs with.
    pub fn config(&self) -> &ClientConfig {
        &self.shared.cfg
    }

    /// The same connections and cache, acting for another user (the S3 gateway signs in
    /// with the service identity and acts for the user whose SigV4 it verified).
    pub fn acting_for(&self, access_key: &str) -> Client {
        Client {
            shared: self.shared.clone(),
            master: self.master.acting_for(access_key),
        }
    }

    /// Opens a file for reading: a snapshot of its extents, so a reader finishes on the
    /// version it opened even if the file is replaced meanwhile.
    pub async fn open_reader(&self, bucket: &str, ino: u64) -> Result<FileReader, ClientError> {
        Ok(self.open_with_attr(bucket, ino).await?.1)
    }

    /// Opens a snapshot of file `ino` and returns it with the file's attributes, both from
    /// one GetExtents round trip: an `open()` for reading needs the attributes (close-to-open:
    /// has the content version changed?) and its first read needs the extents, so asking
    /// once saves a master call per opened file (issue 19: a 4 KiB file read costs one call
    /// for the open instead of two).
    pub async fn open_with_attr(
        &self,
        bucket: &str,
        ino: u64,
    ) -> Result<(pb::Attr, FileReader), ClientError> {
        let req = pb::GetExtentsRequest {
            bucket: bucket.to_string(),
            ino,
            offset: 0,
            len: 0,
        };
        let r = self.master.get_extents(req).await?;
        let attr = r
            .attr
            .ok_or_else(|| ClientError::Internal(format!("GetExtents of {ino}: no attributes")))?;
        let reader = FileReader::new(
            self.shared.clone(),
            self.master.clone(),
            bucket,
            Some(ino),
            attr.size,
            r.extents,
            r.stripes,
            Bytes::from(r.inline_data),
        );
        Ok((attr, reader))
    }

    /// A reader over an object whose extents the caller already has (HeadObject with_extents).
    pub fn reader_from_extents(
        &self,
        bucket: &str,
        attr_size: u64,
        extents: Vec<pb::Extent>,
        stripes: Vec<pb::StripeInfo>,
        inline_data: Bytes,
    ) -> FileReader {
        FileReader::new(
            self.shared.clone(),
            self.master.clone(),
            bucket,
            None,
            attr_size,
            extents,
            stripes,
            inline_data,
        )
    }

    /// Random-access writer for one inode; data is buffered up to the configured window
    /// and made durable + committed (CommitWrite) by `flush`.
    pub fn file_writer(&self, bucket: &str, ino: u64) -> FileWriter {
        FileWriter::new(self, bucket, ino)
    }

    /// Sequential writer that stores stripes but commits nothing: the caller commits the
    /// returned extents (PutObject, PutPart). Memory stays within the write window.
    pub fn stream_writer(&self, bucket: &str) -> StreamWriter {
        StreamWriter::new(self, bucket)
    }

    /// Sets a file's size (truncate or extend with a hole); flush writers of it first.
    pub async fn truncate(
        &self,
        bucket: &str,
        ino: u64,
        size: u64,
    ) -> Result<pb::Attr, ClientError> {
        let req = pb::SetAttrRequest {
            bucket: bucket.to_string(),
            ino,
            size: Some(size),
            mtime_now: true,
            ..Default::default()
        };
        let r = self.master.set_attr(req).await?;
        r.attr
            .ok_or_else(|| ClientError::Internal("SetAttr without attributes".into()))
    }

    /// Read-cache counters and occupancy.
    pub fn cache_stats(&self) -> CacheStats {
        self.shared.cache.stats()
    }

    /// Puts `cache` under the memory cache as its disk tier (ksfs `[mount] cache_dir`):
    /// memory misses look there before asking storage nodes, and fetched blocks are
    /// written there. Once per client; a second call hands the cache back.
    pub fn attach_disk_cache(&self, cache: DiskCache) -> Result<(), DiskCache> {
        self.shared
            .disk
            .set(Arc::new(cache))
            .map_err(|c| Arc::into_inner(c).expect("never shared"))
    }

    /// Disk-tier counters and occupancy, when the client has one.
    pub fn disk_cache_stats(&self) -> Option<DiskCacheStats> {
        self.shared.disk.get().map(|d| d.stats())
    }

    /// Buffered write bytes counted against `write_buffer_total` now, and that budget
    /// (a stripe larger than half the budget may take the count past it by one stripe).
    pub fn write_buffer_usage(&self) -> (u64, u64) {
        let b = &self.shared.write_budget;
        (b.in_use(), b.total())
    }

    /// Empties the read cache (benches measure cold reads after it).
    pub fn clear_cache(&self) {
        self.shared.cache.clear()
    }
}
