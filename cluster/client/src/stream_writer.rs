//! Sequential writer (S3 PUT and UploadPart): full chunks are encoded and sent while more
//! data arrives; memory stays within the write window however long the stream. The MD5 of
//! the bytes (S3 ETag) is computed on a blocking thread beside the network work.

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
    md5_tx: Option<std::sync::mpsc::Sender<Bytes>>,
    md5_task: Option<tokio::task::JoinHandle<[u8; 16]>>,
}

impl StreamWriter {
    pub(crate) fn new(client: &Client, bucket: &str) -> StreamWriter {
        let cfg = &client.shared.cfg;
        let (tx, rx) = std::sync::mpsc::channel::<Bytes>();
        let task = tokio::task::spawn_blocking(move || {
            let mut h = md5::Md5::new();
            while let Ok(b) = rx.recv() {
                h.update(&b);
            }
            h.finalize().into()
        });
        StreamWriter {
            pipeline: Pipeline::new(client.shared.clone(), client.master.clone(), bucket.into()),
            chunk_size: cfg.chunk_size.max(1),
            inline_threshold: cfg.inline_threshold,
            buf: BytesMut::new(),
            submitted: 0,
            md5_tx: Some(tx),
            md5_task: Some(task),
        }
    }

    /// Appends `data`; full chunks are encoded and sent while more arrives.
    pub async fn write(&mut self, data: Bytes) -> Result<(), ClientError> {
        if data.is_empty() {
            return Ok(());
        }
        if let Some(tx) = &self.md5_tx {
            let _ = tx.send(data.clone());
        }
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

    async fn send(&mut self, chunk: Bytes) -> Result<(), ClientError> {
        let off = self.submitted;
        self.submitted += chunk.len() as u64;
        self.pipeline.submit(off, chunk).await
    }

    /// Writes the tail and waits until every shard is durable.
    pub async fn finish(mut self) -> Result<WrittenData, ClientError> {
        let size = self.submitted + self.buf.len() as u64;
        drop(self.md5_tx.take());
        let md5 = match self.md5_task.take() {
            Some(t) => t
                .await
                .map_err(|e| ClientError::Invalid(format!("md5 task: {e}")))?,
            None => [0; 16],
        };
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
