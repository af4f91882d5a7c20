//! The JSON API under `/api/`: thin handlers that parse, make one master call (acting for
//! the signed-in user when they change something) and map one error. Who may call which is
//! decided before a handler runs, by [`crate::rbac::ENDPOINTS`] in the guard.

use crate::data::{self, parse_role};
use crate::error::ConsoleError;
use crate::session::{COOKIE, Session};
use crate::{Shared, jobs};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use kdss_proto::master as pb;
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;

type R = Result<Json<Value>, ConsoleError>;

/// The EC presets the console offers (k+m).
pub const EC_PRESETS: [(u32, u32); 4] = [(5, 2), (9, 2), (18, 3), (29, 3)];

/// The API routes (without `/api/login`, which is outside the guard).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/session", get(whoami))
        .route("/api/logout", post(logout))
        .route("/api/overview", get(overview))
        .route("/api/rates", get(rates))
        .route("/api/events", get(events))
        .route("/api/nodes", get(nodes))
        .route("/api/disks", get(disks))
        .route("/api/disks/{disk}/state", post(disk_state))
        .route("/api/buckets", get(buckets).post(create_bucket))
        .route("/api/buckets/{name}", delete(delete_bucket))
        .route("/api/users", get(users).post(create_user))
        .route("/api/users/{access_key}", delete(delete_user))
        .route("/api/users/{access_key}/role", post(change_role))
        .route("/api/jobs", get(jobs))
        .route("/api/jobs/repair/run", post(repair_run))
        .route("/api/jobs/gc/run", post(gc_run))
        .route("/api/jobs/balance/start", post(balance_start))
        .route("/api/jobs/balance/stop", post(balance_stop))
        .route("/api/config", get(config))
}

fn ok(v: impl serde::Serialize) -> R {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| ConsoleError::Unavailable(format!("encode: {e}")))
}

/// Sign-in form.
#[derive(Deserialize)]
pub struct Login {
    access_key: String,
    secret_key: String,
}

/// `POST /api/login`: verifies the key pair against the masters and opens a session.
/// Failures are counted per client address and per key, logged without the secret, and
/// past [`crate::session::MAX_FAILURES`] refused until the window ends.
pub async fn login(
    State(c): State<Shared>,
    ext: axum::http::Extensions,
    Json(l): Json<Login>,
) -> Result<Response, ConsoleError> {
    let ip = ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let keys = [format!("ip:{ip}"), format!("key:{}", l.access_key)];
    if let Some(wait) = c.limiter.blocked(&keys) {
        tracing::warn!(access_key = %l.access_key, %ip, "console login refused: too many failures");
        return Err(ConsoleError::RateLimited(wait));
    }
    let role = match c.backend.verify(&l.access_key, &l.secret_key).await {
        Ok(r) => r,
        Err(e @ ConsoleError::LoginRefused(_)) => {
            c.limiter.failed(&keys);
            tracing::warn!(access_key = %l.access_key, %ip, reason = %e, "console login failed");
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    c.limiter.succeeded(&keys[1]);
    let (id, s) = c.sessions.create(&l.access_key, role);
    tracing::info!(access_key = %l.access_key, role = role.name(), %ip, "console login");
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        c.sessions.ttl().as_secs()
    );
    let body = json!({ "access_key": s.access_key, "role": role, "csrf": s.csrf });
    Ok(with_cookie(Json(body), &cookie))
}

fn with_cookie(body: impl IntoResponse, cookie: &str) -> Response {
    let mut r = body.into_response();
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(c): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(id) = crate::cookie(&headers, COOKIE) {
        c.sessions.remove(&id);
    }
    let gone = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    with_cookie(Json(json!({ "signed_out": true })), &gone)
}

async fn whoami(Extension(s): Extension<Session>) -> R {
    ok(json!({ "access_key": s.access_key, "role": s.role, "csrf": s.csrf }))
}

async fn overview(State(c): State<Shared>) -> R {
    ok(data::overview(&c.backend, c.cfg.default_ec).await?)
}

async fn rates(State(c): State<Shared>) -> R {
    ok(c.rates.points())
}

async fn events(State(c): State<Shared>) -> R {
    ok((c.cfg.events)())
}

async fn nodes(State(c): State<Shared>) -> R {
    let st = c
        .backend
        .read()
        .cluster_status(pb::ClusterStatusRequest {})
        .await?;
    ok(data::nodes(&st))
}

async fn disks(State(c): State<Shared>) -> R {
    ok(data::disks(&c.backend).await?)
}

/// A disk action.
#[derive(Deserialize)]
struct DiskAction {
    /// offline, online or drain.
    state: String,
    #[serde(default)]
    reason: String,
}

async fn disk_state(
    State(c): State<Shared>,
    Extension(s): Extension<Session>,
    Path(disk): Path<String>,
    Json(a): Json<DiskAction>,
) -> R {
    let disk_id = u64::from_str_radix(&disk, 16)
        .map_err(|_| ConsoleError::BadRequest(format!("disk id {disk:?} is not hex")))?;
    let status = match a.state.as_str() {
        "offline" => pb::DiskStatus::Offline,
        "online" => pb::DiskStatus::Online,
        "drain" | "draining" => pb::DiskStatus::Draining,
        other => {
            return Err(ConsoleError::BadRequest(format!(
                "state {other:?}: use offline, online or drain"
            )));
        }
    };
    let reason = if a.reason.is_empty() {
        format!("set from the console by {}", s.access_key)
    } else {
        a.reason
    };
    let e = c
        .backend
        .acting(&s.access_key)
        .set_disk_state(pb::SetDiskStateRequest {
            disk_id,
            status: status as i32,
            reason,
        })
        .await?;
    ok(json!({ "disk_id": disk, "status": e.status }))
}

async fn buckets(State(c): State<Shared>) -> R {
    ok(data::buckets(&c.backend).await?)
}

/// A new bucket: its name and an EC preset ("9+2").
#[derive(Deserialize)]
struct NewBucket {
    name: String,
    ec: String,
}

async fn create_bucket(
    State(c): State<Shared>,
    Extension(s): Extension<Session>,
    Json(b): Json<NewBucket>,
) -> R {
    let (k, m) = b
        .ec
        .split_once('+')
        .and_then(|(k, m)| Some((k.trim().parse().ok()?, m.trim().parse().ok()?)))
        .filter(|p| EC_PRESETS.contains(p))
        .ok_or_else(|| {
            ConsoleError::BadRequest(format!("EC {:?}: choose one of 5+2, 9+2, 18+3, 29+3", b.ec))
        })?;
    let r = c
        .backend
        .acting(&s.access_key)
        .create_bucket(pb::CreateBucketRequest {
            name: b.name,
            k,
            m,
            owner: String::new(),
        })
        .await?;
    let b = r.bucket.unwrap_or_default();
    ok(json!({ "name": b.name, "ec": format!("{}+{}", b.k, b.m) }))
}

async fn delete_bucket(
    State(c): State<Shared>,
    Extension(s): Extension<Session>,
    Path(name): Path<String>,
) -> R {
    c.backend
        .acting(&s.access_key)
        .delete_bucket(pb::BucketRequest { name: name.clone() })
        .await?;
    ok(json!({ "deleted": name }))
}

async fn users(State(c): State<Shared>) -> R {
    ok(data::users(&c.backend).await?)
}

/// A new user; empty keys are generated by the master.
#[derive(Deserialize)]
struct NewUser {
    name: String,
    role: String,
    #[serde(default)]
    access_key: String,
}

async fn create_user(
    State(c): State<Shared>,
    Extension(s): Extension<Session>,
    Json(u): Json<NewUser>,
) -> R {
    if u.name.trim().is_empty() {
        return Err(ConsoleError::BadRequest("a user needs a name".into()));
    }
    let role = parse_role(&u.role)?;
    let r = c
        .backend
        .acting(&s.access_key)
        .create_user(pb::CreateUserRequest {
            name: u.name,
            access_key: u.access_key,
            secret_key: String::new(),
            role: role as i32,
        })
        .await?;
    let user = r.user.unwrap_or_default();
    tracing::info!(by = %s.access_key, user = %user.access_key, role = u.role, "console: user created");
    // The one time the secret is shown.
    ok(json!({
        "name": user.name,
        "access_key": user.access_key,
        "secret_key": r.secret_key,
        "role": data::role_name(user.role()),
    }))
}

fn not_yourself(s: &Session, ak: &str, what: &str) -> Result<(), ConsoleError> {
    if s.access_key == ak {
        return Err(ConsoleError::BadRequest(format!(
            "you may not {what} yourself (sign in as another admin)"
        )));
    }
    Ok(())
}

async fn delete_user(
    State(c): State<Shared>,
    Extension(s): Extension<Session>,
    Path(ak): Path<String>,
) -> R {
    not_yourself(&s, &ak, "delete")?;
    c.backend
        .acting(&s.access_key)
        .delete_user(pb::DeleteUserRequest {
            access_key: ak.clone(),
        })
        .await?;
    c.sessions.remove_user(&ak);
    tracing::info!(by = %s.access_key, user = %ak, "console: user deleted");
    ok(json!({ "deleted": ak }))
}

/// A role change.
#[derive(Deserialize)]
struct RoleChange {
    role: String,
}

/// Keys, grants and owned buckets stay; the user's console sessions end.
async fn change_role(
    State(c): State<Shared>,
    Extension(s): Extension<Session>,
    Path(ak): Path<String>,
    Json(r): Json<RoleChange>,
) -> R {
    not_yourself(&s, &ak, "change the role of")?;
    let role = parse_role(&r.role)?;
    c.backend
        .acting(&s.access_key)
        .set_user_role(pb::SetUserRoleRequest {
            access_key: ak.clone(),
            role: role as i32,
        })
        .await?;
    c.sessions.remove_user(&ak);
    tracing::info!(by = %s.access_key, user = %ak, role = r.role, "console: role changed");
    ok(json!({ "access_key": ak, "role": data::role_name(role) }))
}

async fn jobs(State(c): State<Shared>) -> R {
    ok(jobs::jobs(&c.backend).await?)
}

async fn repair_run(State(c): State<Shared>, Extension(s): Extension<Session>) -> R {
    let m = c.backend.acting(&s.access_key);
    m.repair_run(pb::GcRunRequest { wait: false }).await?;
    ok(json!({ "started": "repair" }))
}

async fn gc_run(State(c): State<Shared>, Extension(s): Extension<Session>) -> R {
    let m = c.backend.acting(&s.access_key);
    m.gc_run(pb::GcRunRequest { wait: false }).await?;
    ok(json!({ "started": "gc" }))
}

async fn balance_start(State(c): State<Shared>, Extension(s): Extension<Session>) -> R {
    let m = c.backend.acting(&s.access_key);
    m.balance_start(pb::BalanceStartRequest::default()).await?;
    ok(json!({ "started": "balance" }))
}

async fn balance_stop(State(c): State<Shared>, Extension(s): Extension<Session>) -> R {
    let m = c.backend.acting(&s.access_key);
    m.balance_stop(pb::BalanceStopRequest {}).await?;
    ok(json!({ "stopped": "balance" }))
}

async fn config(State(c): State<Shared>) -> R {
    ok(c.cfg
        .settings
        .iter()
        .map(|(k, v)| json!({ "key": k, "value": v }))
        .collect::<Vec<_>>())
}
