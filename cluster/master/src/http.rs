//! The HTTP side of a master: `/metrics` (Prometheus text) and `/health` (200 with the
//! member's Raft view as JSON, 503 while no leader is known).

use crate::service::State;
use axum::Router;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

/// The router.
pub fn router(st: Arc<State>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(st)
}

async fn metrics(AxState(st): AxState<Arc<State>>) -> impl IntoResponse {
    refresh_metrics(&st);
    // Capacity walks every node's disks: once per scrape, not on every Raft change.
    let c = st.registry.capacity();
    st.metrics.update_capacity(&c, st.alert_pct, st.reject_pct);
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
}

async fn health(AxState(st): AxState<Arc<State>>) -> impl IntoResponse {
    let (leader, addr) = st.leader();
    let body = serde_json::json!({
        "id": st.id,
        "leader_id": leader,
        "leader_grpc": addr,
        "is_leader": st.is_leader(),
        "applied_index": st.sm.applied_index(),
    });
    let code = if leader.is_some() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body))
}

/// Copies openraft's view into the Prometheus gauges.
pub fn refresh_metrics(st: &State) {
    let m = st.raft.metrics().borrow().clone();
    st.metrics.update_raft(
        m.current_term,
        m.current_leader == Some(st.id),
        m.current_leader,
        m.last_applied.map(|l| l.index).unwrap_or(0),
    );
}
