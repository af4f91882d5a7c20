//! The node's HTTP port: `/metrics` (Prometheus text), `/health`, and — only when the
//! test-only `[fault]` section is enabled — `POST /fault` to switch injected faults on a
//! named disk at run time.

use crate::device::fault::{FaultKind, FaultOp, FaultRule};
use crate::node_shared::NodeShared;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use std::sync::Arc;

/// Query of `POST /fault?disk=<path or disk id>&kind=eio|latency|corrupt|clear&op=…&latency_ms=…`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultQuery {
    disk: String,
    kind: String,
    #[serde(default)]
    op: Option<FaultOp>,
    #[serde(default)]
    latency_ms: u64,
    #[serde(default)]
    after: u64,
}

async fn metrics(State(node): State<Arc<NodeShared>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        node.metrics.render(),
    )
}

async fn fault(
    State(node): State<Arc<NodeShared>>,
    Query(q): Query<FaultQuery>,
) -> (StatusCode, String) {
    let Some(disk) = node.disks.iter().find(|d| {
        d.path().display().to_string() == q.disk
            || d.id().to_string() == q.disk
            || format!("{}", d.id().0) == q.disk
    }) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no disk {:?} on this node\n", q.disk),
        );
    };
    let Some(layer) = disk.fault() else {
        return (StatusCode::CONFLICT, "fault layer not installed\n".into());
    };
    let kind = match q.kind.as_str() {
        "clear" => {
            layer.set(vec![]);
            return (StatusCode::OK, "cleared\n".into());
        }
        "eio" => FaultKind::Eio,
        "latency" => FaultKind::Latency,
        "corrupt" => FaultKind::Corrupt,
        other => {
            return (
                StatusCode::BAD_REQUEST,
                format!("unknown fault kind {other:?}\n"),
            );
        }
    };
    let rule = FaultRule {
        kind,
        op: q.op.unwrap_or_default(),
        latency_ms: q.latency_ms,
        after: q.after,
    };
    tracing::warn!(disk = %disk.id(), ?rule, "fault injected");
    layer.set(vec![rule]);
    (StatusCode::OK, "injected\n".into())
}

/// The router; `/fault` only when `faults` is true.
pub fn router(node: Arc<NodeShared>, faults: bool) -> Router {
    let mut r = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok\n" }));
    if faults {
        r = r.route("/fault", post(fault));
    }
    r.with_state(node)
}
