//! The gateway's own accept loop (axum's `serve` has no limits): HTTP/1.1 with keep-alive,
//! a deadline on each request head, and a cap on connections served at once.
//!
//! - **Header-read timeout**: hyper's `header_read_timeout` (it needs a timer, given here)
//!   closes a connection whose request line and headers are not complete within the
//!   deadline, counted from when the gateway starts waiting for them. Trickling one byte at
//!   a time does not extend it (slowloris). An idle keep-alive connection waits for its
//!   next request head, so it is closed after the same time.
//! - **Connection cap**: a connection is accepted only with a permit; at the cap the loop
//!   stops accepting and new connections wait in the kernel's listen backlog (the client's
//!   connect succeeds, its request is read once a served connection closes). Waiting
//!   rather than refusing keeps normal clients working through a burst, and the
//!   header-read timeout frees the permits of connections that send nothing.
//!
//! - **TLS**: with a certificate, the rustls handshake runs inside the same header-read
//!   deadline, so a client that stalls the handshake holds its permit no longer than one
//!   that stalls its headers.
//!
//! Shutdown stops accepting, asks every connection to finish its current request, and
//! waits until all are closed.

use crate::metrics::GatewayMetrics;
use futures::future::{BoxFuture, Shared};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::{TlsAcceptor, rustls::ServerConfig};

/// How much one gateway gives its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a connection has to send a complete request head.
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// Accept errors that concern one connection only (the listener is fine).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Serves `app` on `listener` within `limits` (over TLS with `tls`) until `shutdown`
/// resolves, then waits for the open connections to finish.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<Arc<ServerConfig>>,
    limits: Limits,
    metrics: Arc<GatewayMetrics>,
    shutdown: Shared<BoxFuture<'static, ()>>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            _ = shutdown.clone() => break,
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let tcp = tokio::select! {
            _ = shutdown.clone() => break,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        // Small responses must not wait for delayed ACKs (Nagle).
        let _ = tcp.set_nodelay(true);
        let open = metrics.connection_opened();
        let service = TowerToHyperService::new(app.clone());
        let stop = shutdown.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _open = open;
            let Some(acceptor) = acceptor else {
                return serve_connection(tcp, service, limits, stop).await;
            };
            match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => serve_connection(tls, service, limits, stop).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake refused"),
                Err(_) => tracing::debug!("TLS handshake not done within the header-read timeout"),
            }
        });
    }
    // Every permit back means every connection closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
}

/// One HTTP/1.1 connection on `io` (TCP or TLS) with the header-read deadline, finishing its
/// current request when `stop` resolves.
async fn serve_connection<I>(
    io: I,
    service: TowerToHyperService<axum::Router>,
    limits: Limits,
    stop: Shared<BoxFuture<'static, ()>>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection closed");
    }
}
