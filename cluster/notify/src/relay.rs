//! The Alertmanager webhook receiver (`kdss notify`): `POST /alerts` takes Alertmanager's
//! version-4 payload and posts its cards to Lark before answering, so a delivery that
//! failed after all retries answers 502 and Alertmanager sends the notification again.
//! `GET /healthz` answers `ok` for probes.
//!
//! [`serve`] takes a bound listener and a shutdown future (tests bind port 0).

use crate::alertmanager::WebhookMessage;
use crate::card::alert_cards;
use crate::error::NotifyError;
use crate::sender::LarkSender;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use std::future::Future;
use std::sync::Arc;

/// Largest Alertmanager body accepted (a group of a few thousand alerts).
pub const MAX_BODY: usize = 4 << 20;

/// What the receiver needs: where to send, and the cluster name for the cards.
#[derive(Debug)]
pub struct Relay {
    /// The Lark bot.
    pub sender: LarkSender,
    /// Cluster name shown on every card.
    pub cluster: String,
}

/// The receiver's routes.
pub fn router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route("/alerts", post(alerts))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(relay)
}

/// Serves `relay` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    relay: Arc<Relay>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NotifyError> {
    axum::serve(listener, router(relay))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(NotifyError::Listen)
}

async fn alerts(State(relay): State<Arc<Relay>>, body: axum::body::Bytes) -> (StatusCode, String) {
    let msg: WebhookMessage = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "not an Alertmanager webhook payload");
            return (
                StatusCode::BAD_REQUEST,
                format!("not an Alertmanager webhook payload (version 4): {e}\n"),
            );
        }
    };
    let cards = alert_cards(&msg, &relay.cluster);
    let mut failed = Vec::new();
    for card in &cards {
        match relay.sender.send(card).await {
            Ok(d) => tracing::info!(
                title = %card.title,
                attempts = d.attempts,
                host = %relay.sender.host(),
                "card posted to Lark"
            ),
            Err(e) => {
                tracing::error!(title = %card.title, error = %e, "card not posted to Lark");
                failed.push(e.to_string());
            }
        }
    }
    if failed.is_empty() {
        (StatusCode::OK, format!("{} cards posted\n", cards.len()))
    } else {
        (
            StatusCode::BAD_GATEWAY,
            format!(
                "{} of {} cards not posted: {}\n",
                failed.len(),
                cards.len(),
                failed.join("; ")
            ),
        )
    }
}
