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
    refresh_cluster_metrics(&st).await;
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

/// Refreshes what a scrape reads from the registry, the jobs and the database: walked
/// once per scrape, not on every Raft change.
async fn refresh_cluster_metrics(st: &State) {
    let m = &st.metrics;
    let c = st.registry.capacity();
    m.update_capacity(&c, st.default_ec, st.alert_pct, st.reject_pct);
    let reports = st.registry.reports();
    let status = |d| st.registry.disk_status(d);
    m.cluster.update_nodes(&reports, status);
    let raft = st.raft.metrics().borrow().clone();
    let matched = raft
        .replication
        .unwrap_or_default()
        .into_iter()
        .map(|(id, l)| (id, l.map(|l| l.index)))
        .collect();
    m.cluster
        .update_replication(raft.last_log_index.unwrap_or(0), &matched);
    let jobs = &st.jobs;
    m.jobs.update_repair(&jobs.repair_state.status());
    let usage = crate::workers::balance::usage::disks(&reports, status);
    let imbalance = crate::workers::balance::usage::imbalance(&usage);
    m.jobs
        .update_balance(&jobs.balance_state.moves.status(), imbalance);
    for (name, h) in [
        ("gc", &jobs.gc),
        ("repair", &jobs.repair),
        ("balance", &jobs.balance),
    ] {
        m.jobs.update_job(name, &h.status());
    }
    let pool = st.pool();
    match (
        kdss_meta::gc::pending(&pool).await,
        kdss_meta::trash::totals(&pool).await,
    ) {
        (Ok(p), Ok((items, bytes))) => m.jobs.update_gc_backlog(crate::metrics::jobs::GcBacklog {
            stripes: p.stripes,
            shards: p.shards,
            bytes: p.bytes,
            trash_items: items,
            trash_bytes: bytes,
        }),
        (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "metrics: GC backlog unreadable"),
    }
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
