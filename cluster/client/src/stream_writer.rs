//! Sequential writer (S3 PUT and UploadPart): full chunks are encoded and sent while more
//! data arrives; memory stays within the write window however long the stream. The MD5 of
//! the bytes (S3 ETag) is computed in blocking tasks beside the network work.

use bytes::{Bytes, BytesMut};
use md5::Digest;

use crate::stripe_write::Pipeline;
use crate::{Client, ClientError, WrittenData};

/// Sequential writer (S3 PUT / UploadPart).
pub struct StreamWriter {
    pipeline: Pipeline,
    chunk_size: usize,
    inline_threshold: usize,
    buf: BytesMut,
    /// Bytes handed to the pipeline so far (file offset of `buf`'s first byte).
    submitted: u64,
    md5: Md5Chain,
}

/// Bytes hashed per blocking task: large enough that the hop is cheap, small enough that the
/// hash keeps pace with the network.
const MD5_BATCH: usize = 4 << 20;

/// MD5 over the stream, computed in order by one short blocking task at a time (no thread
/// is held while the writer waits for data, so thousands of uploads cost no threads).
#[derive(Default)]
struct Md5Chain {
    pending: Vec<Bytes>,
    pending_len: usize,
    hasher: Option<md5::Md5>,
    running: Option<tokio::task::JoinHandle<md5::Md5>>,
}

impl Md5Chain {
    async fn push(&mut self, b: Bytes) -> Result<(), ClientError> {
        self.pending_len += b.len();
        self.pending.push(b);
        if self.pending_len >= MD5_BATCH {
            self.kick().await?;
        }
        Ok(())
    }

    async fn take_hasher(&mut self) -> Result<md5::Md5, ClientError> {
        if let Some(t) = self.running.take() {
            return t
                .await
                .map_err(|e| ClientError::Internal(format!("md5 task: {e}")));
        }
        Ok(self.hasher.take().unwrap_or_default())
    }

    async fn kick(&mut self) -> Result<(), ClientError> {
        let mut h = self.take_hasher().await?;
        let batch = std::mem::take(&mut self.pending);
        self.pending_len = 0;
        self.running = Some(tokio::task::spawn_blocking(move || {
            for b in batch {
                h.update(&b);
            }
            h
        }));
        Ok(())
    }

    async fn finish(mut self) -> Result<[u8; 16], ClientError> {
        let mut h = self.take_hasher().await?;
        for b in std::mem::take(&mut self.pending) {
            h.update(&b);
        }
        Ok(h.finalize().into())
    }
}

impl StreamWriter {
    pub(crate) fn new(client: &Client, bucket: &str) -> StreamWriter {
        let cfg = &client.shared.cfg;
        StreamWriter {
            pipeline: Pipeline::new(client.shared.clone(), client.master.clone(), bucket.into()),
            chunk_size: cfg.chunk_size.max(1),
            inline_threshold: cfg.inline_threshold,
            buf: BytesMut::new(),
            submitted: 0,
            md5: Md5Chain::default(),
        }
    }

    /// This writer never returns inline data, however small the stream: everything is
    /// written as stripes (S3 multipart parts: the master keeps inline bytes only as an
    /// object's base layer, so a small part past the first could not be stitched).
    pub fn without_inline(mut self) -> StreamWriter {
        self.inline_threshold = 0;
        self
    }

    /// Appends `data`; full chunks are encoded and sent while more arrives.
    pub async fn write(&mut self, data: Bytes) -> Result<(), ClientError> {
        if data.is_empty() {
            return Ok(());
        }
        self.md5.push(data.clone()).await?;
        let mut data = data;
        while !data.is_empty() {
            // A whole chunk arriving with an empty buffer goes out without a copy.
            if self.buf.is_empty() && data.len() >= self.chunk_size {
                let chunk = data.split_to(self.chunk_size);
                self.send(chunk).await?;
                continue;
            }
            if self.buf.capacity() == 0 {
                self.buf.reserve(self.chunk_size);
            }
            let n = (self.chunk_size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data.split_to(n));
            if self.buf.len() == self.chunk_size {
                let chunk = std::mem::take(&mut self.buf).freeze();
                self.send(chunk).await?;
            }
        }
        Ok(())
    }

    /// Bytes this writer keeps alive now: the partial chunk, stripes not yet durable and
    /// bytes still queued for the MD5 (an upper bound; the last two share buffers). Stays
    /// within the write window plus one chunk and one MD5 batch, however long the stream.
    pub fn buffered_bytes(&self) -> u64 {
        (self.buf.len() + self.md5.pending_len) as u64 + self.pipeline.inflight_bytes()
    }

    async fn send(&mut self, chunk: Bytes) -> Result<(), ClientError> {
        let off = self.submitted;
        self.submitted += chunk.len() as u64;
        self.pipeline.submit(off, chunk).await
    }

    /// Writes the tail and waits until every shard is durable.
    pub async fn finish(mut self) -> Result<WrittenData, ClientError> {
        let size = self.submitted + self.buf.len() as u64;
        let md5 = std::mem::take(&mut self.md5).finish().await?;
        let tail = std::mem::take(&mut self.buf).freeze();
        if self.submitted == 0 && (tail.is_empty() || tail.len() <= self.inline_threshold) {
            let inline_data = if tail.is_empty() { None } else { Some(tail) };
            return Ok(WrittenData {
                extents: Vec::new(),
                size,
                md5,
                inline_data,
            });
        }
        if !tail.is_empty() {
            self.send(tail).await?;
        }
        self.pipeline.drain().await?;
        let extents = std::mem::take(&mut self.pipeline.done);
        Ok(WrittenData {
            extents,
            size,
            md5,
            inline_data: None,
        })
    }
}
