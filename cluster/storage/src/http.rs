//! The node's HTTP port: `/metrics` (Prometheus text), `/health`, and — only when the
//! test-only `[fault]` section is enabled — `POST /fault` to switch injected faults on a
//! named disk at run time. `/fault` can make a disk fail or return corrupt data, so it
//! answers only callers holding the cluster secret: the request carries the service
//! credential (`authorization: KDSS2 kdss-service:…` made for this very query,
//! [`kdss_common::auth`]) and anything else is refused 401 before the query is read.

use crate::device::fault::{FaultKind, FaultOp, FaultRule};
use crate::node_shared::NodeShared;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use kdss_common::auth::{self, AuthError};
use serde::Deserialize;
use std::sync::Arc;

/// Query of `POST /fault?disk=<path or disk id>&kind=eio|latency|corrupt|hang|clear&op=…&latency_ms=…`.
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

/// What `/fault` needs: the disks and the secret its callers must sign with.
#[derive(Clone)]
struct FaultDoor {
    node: Arc<NodeShared>,
    cluster_secret: Arc<str>,
}

/// Checks that the request carries a valid service credential for the cluster secret, made
/// for this very query with an empty body. There is no replay cache here: a captured proof
/// repeats only the same fault switch within the credential window.
fn check_service(headers: &HeaderMap, uri: &Uri, cluster_secret: &str) -> Result<(), AuthError> {
    let value = headers
        .get(auth::AUTH_HEADER)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Malformed("not ASCII"))?;
    let c = auth::parse(value)?;
    if c.access_key != auth::SERVICE_ACCESS_KEY {
        return Err(AuthError::UnknownKey(c.access_key.to_string()));
    }
    if c.body_sha256 != auth::body_digest(b"") {
        return Err(AuthError::BodyMismatch);
    }
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/fault");
    let method = auth::http_method("POST", path);
    auth::verify(&c, cluster_secret, &method, "", kdss_common::time::now_ms())
}

async fn fault(
    State(door): State<FaultDoor>,
    headers: HeaderMap,
    uri: Uri,
) -> (StatusCode, String) {
    if let Err(e) = check_service(&headers, &uri, &door.cluster_secret) {
        tracing::warn!(error = %e, "POST /fault refused");
        return (
            StatusCode::UNAUTHORIZED,
            format!("/fault needs the service credential: {e}\n"),
        );
    }
    let q = match Query::<FaultQuery>::try_from_uri(&uri) {
        Ok(Query(q)) => q,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let node = door.node;
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
        "hang" => FaultKind::Hang,
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

/// The router; `/fault` only when `fault_secret` is given (the `[fault]` section is
/// enabled), answering only requests signed with that cluster secret.
pub fn router(node: Arc<NodeShared>, fault_secret: Option<&str>) -> Router {
    let mut r = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok\n" }))
        .with_state(node.clone());
    if let Some(secret) = fault_secret {
        let door = FaultDoor {
            node,
            cluster_secret: secret.into(),
        };
        r = r.merge(Router::new().route("/fault", post(fault)).with_state(door));
    }
    r
}
