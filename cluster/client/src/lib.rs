//! THE client data path of KDSS — the one implementation of writing and reading file
//! data, used by ksfs, the S3 gateway and kdss-cli (DESIGN.md, "the client data path").
//!
//! Writes: bytes → chunks → one stripe per chunk, EC-encoded (k+m) on the client → shards
//! sent in parallel to the disks the master placed, with their capabilities → the extent
//! map committed only when every shard is durable (invariant 1).
//! Reads: extents → only the data shards a range overlaps → degraded read from any k
//! shards when one is missing, corrupt or slow → LRU cache, sequential prefetch.
//!
//! Main types: [`Client`] (cheap to clone), [`FileReader`], [`FileWriter`] (random
//! access, for ksfs), [`StreamWriter`] (sequential, for S3 PUT and parts).
//!
//! CONTRACT NOTE (skeleton laid down before the implementation): the public signatures in
//! this file are what ksfs and s3gw code against. Change them only additively.

pub mod config;
pub mod error;
pub mod master;

pub use config::ClientConfig;
pub use error::ClientError;
pub use master::MasterClient;

use bytes::Bytes;
use kdss_proto::master as pb;

/// A connection to a KDSS cluster: master channels, storage-node channels, the cache.
#[derive(Clone)]
pub struct Client {
    _private: (),
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
    /// Connects to the masters named in `cfg` and authenticates.
    pub async fn connect(cfg: ClientConfig) -> Result<Client, ClientError> {
        let _ = cfg;
        todo!("kdss-client: connect")
    }

    /// Namespace and admin calls to the master (auth, leader failover and timeouts inside).
    pub fn master(&self) -> &MasterClient {
        todo!("kdss-client: master")
    }

    /// The same connections and cache, acting for another user (the S3 gateway signs in
    /// with the service identity and acts for the user whose SigV4 it verified).
    pub fn acting_for(&self, access_key: &str) -> Client {
        let _ = access_key;
        todo!("kdss-client: acting_for")
    }

    /// Opens a file for reading: a snapshot of its extents, so a reader finishes on the
    /// version it opened even if the file is replaced meanwhile.
    pub async fn open_reader(&self, bucket: &str, ino: u64) -> Result<FileReader, ClientError> {
        let _ = (bucket, ino);
        todo!("kdss-client: open_reader")
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
        let _ = (bucket, attr_size, extents, stripes, inline_data);
        todo!("kdss-client: reader_from_extents")
    }

    /// Random-access writer for one inode; data is buffered up to the configured window
    /// and made durable + committed (CommitWrite) by `flush`.
    pub fn file_writer(&self, bucket: &str, ino: u64) -> FileWriter {
        let _ = (bucket, ino);
        todo!("kdss-client: file_writer")
    }

    /// Sequential writer that stores stripes but commits nothing: the caller commits the
    /// returned extents (PutObject, PutPart). Memory stays within the write window.
    pub fn stream_writer(&self, bucket: &str) -> StreamWriter {
        let _ = bucket;
        todo!("kdss-client: stream_writer")
    }
}

/// A snapshot of one file's extents, reading through the cache.
pub struct FileReader {
    _private: (),
}

impl FileReader {
    /// File size in the snapshot.
    pub fn size(&self) -> u64 {
        todo!()
    }
    /// Reads `len` bytes at `offset` (short only at end of file; holes are zeros).
    pub async fn read_at(&self, offset: u64, len: u64) -> Result<Bytes, ClientError> {
        let _ = (offset, len);
        todo!()
    }
    /// Streams `[offset, offset+len)` in order, prefetching ahead; memory stays bounded.
    pub fn stream(
        self,
        offset: u64,
        len: u64,
    ) -> impl futures::Stream<Item = Result<Bytes, ClientError>> + Send + 'static {
        let _ = (offset, len);
        futures::stream::empty()
    }
}

/// Random-access writer (ksfs): buffered writes, durable on `flush`.
pub struct FileWriter {
    _private: (),
}

impl FileWriter {
    /// Buffers `data` at `offset`; may write stripes early when the window fills.
    pub async fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), ClientError> {
        let _ = (offset, data);
        todo!()
    }
    /// Makes everything written so far durable and commits it; returns the new attributes.
    pub async fn flush(&mut self) -> Result<pb::Attr, ClientError> {
        todo!()
    }
    /// Bytes buffered and not yet durable.
    pub fn pending_bytes(&self) -> u64 {
        todo!()
    }
}

/// Sequential writer (S3 PUT / UploadPart).
pub struct StreamWriter {
    _private: (),
}

impl StreamWriter {
    /// Appends `data`; full chunks are encoded and sent while more arrives.
    pub async fn write(&mut self, data: Bytes) -> Result<(), ClientError> {
        let _ = data;
        todo!()
    }
    /// Writes the tail and waits until every shard is durable.
    pub async fn finish(self) -> Result<WrittenData, ClientError> {
        todo!()
    }
}
