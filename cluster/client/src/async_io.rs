//! Tokio `AsyncRead` / `AsyncWrite` over the data path, so callers can use `tokio::io::copy`
//! and friends (kdss-cli cp, any tool with a reader or writer in hand) instead of driving
//! the stream and writer APIs by hand.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{ClientError, FileReader, StreamWriter, WrittenData};

/// Bytes the writer adapter gathers before handing them to the stream writer: large enough
/// that the 8 KiB writes of `tokio::io::copy` do not each cost a task hop.
const GATHER: usize = 1 << 20;

fn to_io(e: ClientError) -> io::Error {
    io::Error::other(e)
}

/// `AsyncRead` over `[offset, offset+len)` of a file, with the reader's prefetch.
pub struct ReadAdapter {
    stream: Pin<Box<dyn Stream<Item = Result<Bytes, ClientError>> + Send>>,
    current: Bytes,
}

impl FileReader {
    /// An `AsyncRead` over a byte range (prefetching ahead; memory stays bounded).
    pub fn into_async_read(self, offset: u64, len: u64) -> ReadAdapter {
        ReadAdapter {
            stream: Box::pin(self.stream(offset, len)),
            current: Bytes::new(),
        }
    }
}

impl AsyncRead for ReadAdapter {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.current.is_empty() {
            match ready!(this.stream.as_mut().poll_next(cx)) {
                Some(Ok(b)) => this.current = b,
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.current.len().min(buf.remaining());
        buf.put_slice(&this.current.split_to(n));
        Poll::Ready(Ok(()))
    }
}

type Pending = Pin<Box<dyn Future<Output = (StreamWriter, Result<(), ClientError>)> + Send>>;

/// `AsyncWrite` into a [`StreamWriter`]; call [`WriteAdapter::finish`] at the end for the
/// extents to commit. A failed write fails every later call with the same error.
pub struct WriteAdapter {
    writer: Option<StreamWriter>,
    pending: Option<Pending>,
    gathered: BytesMut,
    failed: Option<String>,
}

impl StreamWriter {
    /// This writer as an `AsyncWrite`.
    pub fn into_async_write(self) -> WriteAdapter {
        WriteAdapter {
            writer: Some(self),
            pending: None,
            gathered: BytesMut::new(),
            failed: None,
        }
    }
}

impl WriteAdapter {
    /// Waits for the write in flight; Ok when the writer is free and nothing failed.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(p) = self.pending.as_mut() {
            let (w, r) = ready!(p.as_mut().poll(cx));
            self.pending = None;
            self.writer = Some(w);
            if let Err(e) = r {
                self.failed = Some(e.to_string());
            }
        }
        match &self.failed {
            Some(m) => Poll::Ready(Err(io::Error::other(m.clone()))),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Hands the gathered bytes to the stream writer (in the background of later polls).
    fn dispatch(&mut self) {
        if self.gathered.is_empty() {
            return;
        }
        let data = self.gathered.split().freeze();
        let mut w = self.writer.take().expect("idle writer present");
        self.pending = Some(Box::pin(async move {
            let r = w.write(data).await;
            (w, r)
        }));
    }

    /// Sends what is gathered, waits until every shard is durable and returns what to
    /// commit (PutObject, PutPart).
    pub async fn finish(mut self) -> Result<WrittenData, ClientError> {
        futures::future::poll_fn(|cx| self.poll_idle(cx))
            .await
            .map_err(io_to_client)?;
        self.dispatch();
        futures::future::poll_fn(|cx| self.poll_idle(cx))
            .await
            .map_err(io_to_client)?;
        self.writer.take().expect("idle writer").finish().await
    }
}

fn io_to_client(e: io::Error) -> ClientError {
    ClientError::Internal(format!("earlier write failed: {e}"))
}

impl AsyncWrite for WriteAdapter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.gathered.len() >= GATHER {
            ready!(this.poll_idle(cx))?;
            this.dispatch();
        }
        if let Some(m) = &this.failed {
            return Poll::Ready(Err(io::Error::other(m.clone())));
        }
        let n = buf.len().min(GATHER * 2 - this.gathered.len());
        this.gathered.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_idle(cx))?;
        if !this.gathered.is_empty() {
            this.dispatch();
            ready!(this.poll_idle(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}
