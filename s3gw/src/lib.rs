//! kdss-s3gw: the S3 door of KDSS. An axum server that verifies SigV4 (header, presigned,
//! aws-chunked with trailers), maps S3 operations onto the master's Object RPCs and moves
//! object bytes through the one client data path (kdss-client), streaming both ways.
//!
//! Main pieces: [`config::S3Config`] and [`run`] (the daemon contract), [`accept`] (the
//! accept loop: header-read timeout, connection cap), [`body_timeout`] (the body-read
//! deadline), [`router`]
//! (request → `Endpoint`), [`server`] (one match over endpoints), [`api`] (one file per
//! area), [`auth`] (SigV4 forms; the primitives are `kdss_common::sigv4`, shared with
//! kdss-cli's presigner), [`error`] (the one S3 error enum), [`dates`] (the two date
//! forms requests carry), [`metrics`] (served on `[s3] metrics_listen`); `bench` (the S3 benchmark and a raw HTTP/SigV4 client for tests)
//! is built with the `bench` feature only.

pub mod accept;
pub mod api;
pub mod auth;
// Benchmarks are for `kdss bench` and tests, not the library API: built only with the
// `bench` feature (the kdss binary and this crate's own tests turn it on).
#[cfg(feature = "bench")]
pub mod bench;
pub mod body;
pub mod body_timeout;
pub mod checksum;
pub mod config;
pub mod dates;
pub mod error;
pub mod metrics;
#[cfg(test)]
mod parser_props;
pub mod router;
pub mod server;
pub mod xml;

pub use config::S3Config;
pub use error::{Code, S3Error};

use futures::FutureExt;
use kdss_client::Client;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Why the gateway could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    #[error("[tls]: {0}")]
    Tls(#[from] kdss_common::tls::TlsError),
    #[error("connecting to the masters: {0}")]
    Client(#[from] kdss_client::ClientError),
}

/// Binds `[s3] listen`, signs in to the masters, serves until `shutdown` resolves.
pub async fn run(
    cfg: S3Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let listener =
        TcpListener::bind(&cfg.s3.listen)
            .await
            .map_err(|source| GatewayError::Bind {
                addr: cfg.s3.listen.clone(),
                source,
            })?;
    serve(listener, cfg, shutdown).await
}

/// Serves on an already bound listener (tests and benches bind port 0); the metrics
/// listener, if any, is bound from `[s3] metrics_listen`.
pub async fn serve(
    listener: TcpListener,
    cfg: S3Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let metrics_listener = match &cfg.s3.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| GatewayError::Bind {
                    addr: addr.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    serve_with_metrics(listener, metrics_listener, cfg, shutdown).await
}

/// Serves S3 on `listener` and `/metrics` on `metrics_listener` (both already bound, so a
/// test knows their ports); `[s3] metrics_listen` is not read.
pub async fn serve_with_metrics(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    cfg: S3Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let shutdown = shutdown.boxed().shared();
    let tls = cfg.tls.install()?.map(|t| t.http);
    let client = loop {
        tokio::select! {
            _ = shutdown.clone() => return Ok(()),
            r = Client::connect(cfg.client_config()) => match r {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "no master answers yet; retrying");
                    tokio::select! {
                        _ = shutdown.clone() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            }
        }
    };
    let metrics = Arc::new(metrics::GatewayMetrics::new());
    if let Some(l) = metrics_listener {
        let bound = l.local_addr().map_err(GatewayError::Serve)?;
        tracing::info!(addr = %bound, "s3 gateway metrics at /metrics");
        let app = metrics::router(metrics.clone());
        let stop = shutdown.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            if let Err(e) = kdss_common::tls::http::serve(l, app, tls, stop).await {
                tracing::warn!(error = %e, "metrics listener stopped");
            }
        });
    }
    let state = Arc::new(server::AppState {
        secrets: auth::secrets::SecretCache::new(
            client.clone(),
            Duration::from_secs(cfg.s3.secret_cache_secs),
            Duration::from_secs(cfg.s3.unknown_key_cache_secs),
            metrics.clone(),
        ),
        client,
        auth: auth::AuthSettings {
            max_skew_secs: cfg.s3.max_skew_secs,
        },
        region: cfg.s3.region.clone(),
        domain: cfg.s3.domain.clone(),
        next_id: Default::default(),
        metrics: metrics.clone(),
        body_read_timeout: Duration::from_secs(cfg.s3.body_read_timeout_secs),
    });
    let addr = listener.local_addr().map_err(GatewayError::Serve)?;
    let limits = accept::Limits {
        header_read_timeout: Duration::from_secs(cfg.s3.header_read_timeout_secs),
        max_connections: cfg.s3.max_connections,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        %addr,
        %scheme,
        region = %cfg.s3.region,
        header_read_timeout_secs = cfg.s3.header_read_timeout_secs,
        max_connections = cfg.s3.max_connections,
        "s3 gateway ready"
    );
    accept::serve(listener, server::app(state), tls, limits, metrics, shutdown).await;
    tracing::info!("s3 gateway stopped");
    Ok(())
}
