//! The body-read deadline: a request body must keep arriving. Of every
//! [`WINDOW_BYTES`] of a body (or its end), the gateway waits at most
//! `body_read_timeout_secs` in all for the client; past that the next read fails and the
//! gateway answers `400 RequestTimeout` and closes the connection. A client that sends
//! its headers and then stops, or trickles a few bytes now and then, so frees its
//! connection slot after one window, while a slow but moving upload (64 KiB per window:
//! about 2 KiB/s at the default 30 s) is never cut. Only time spent waiting for the
//! client counts: while a handler is busy elsewhere (storing a stripe) and does not read,
//! the clock stops.

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Bytes that must arrive within one window for the body to count as moving.
pub const WINDOW_BYTES: u64 = 64 << 10;

/// Why a body read failed: it did not move within the window.
#[derive(Debug, thiserror::Error)]
#[error("the client sent less than {WINDOW_BYTES} bytes of the request body in {0:?} of waiting")]
pub struct BodyTimedOut(pub Duration);

/// `body` with the deadline; the flag is set once it fired.
pub fn limit(body: Body, window: Duration) -> (Body, Arc<AtomicBool>) {
    let fired = Arc::new(AtomicBool::new(false));
    let timed = Timed {
        inner: body,
        sleep: Box::pin(tokio::time::sleep(window)),
        window,
        got: 0,
        waited: Duration::ZERO,
        wait_start: None,
        fired: fired.clone(),
    };
    (Body::new(timed), fired)
}

struct Timed {
    inner: Body,
    sleep: Pin<Box<Sleep>>,
    window: Duration,
    /// Bytes and waiting time of the current window.
    got: u64,
    waited: Duration,
    /// When the current wait for the client began (a poll found no data).
    wait_start: Option<Instant>,
    fired: Arc<AtomicBool>,
}

impl http_body::Body for Timed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.fired.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(this.window)))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(ws) = this.wait_start.take() {
                    this.waited += ws.elapsed();
                }
                if let Some(d) = f.data_ref() {
                    this.got += d.len() as u64;
                    if this.got >= WINDOW_BYTES {
                        this.got = 0;
                        this.waited = Duration::ZERO;
                    }
                }
                Poll::Ready(Some(Ok(f)))
            }
            Poll::Pending => {
                if this.wait_start.is_none() {
                    let now = Instant::now();
                    this.wait_start = Some(now);
                    let left = this.window.saturating_sub(this.waited);
                    this.sleep.as_mut().reset(now + left);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.fired.store(true, Ordering::Relaxed);
                        Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(this.window)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
