//! KDSS web console: served by every master on its HTTP port at `/`.
//!
//! [`router`] builds the axum router the master mounts beside `/metrics` and `/health`:
//! server-rendered pages ([`pages`], maud templates, assets embedded in the binary) and a
//! JSON API under `/api/` ([`api`]) that the pages' little JavaScript calls. Every API
//! request passes [`guard`]: a server-side session ([`session`]), the endpoint × role table
//! ([`rbac`]) and, for state-changing requests, the session's CSRF token. The console reaches
//! the cluster through the master's own gRPC API ([`backend`]), so a change made here is
//! checked by the master as the signed-in user as well.

pub mod api;
pub mod backend;
pub mod data;
pub mod error;
pub mod jobs;
pub mod pages;
pub mod rates;
pub mod rbac;
pub mod session;

pub use backend::{ConsoleConfig, EventFeed, EventRow};
pub use error::ConsoleError;
pub use rbac::ConsoleRole;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use session::{LoginLimiter, Session, SessionStore};
use std::sync::Arc;
use std::time::Duration;

/// Everything a console request needs, shared by the handlers.
pub struct Console {
    /// What the master passed in.
    pub cfg: ConsoleConfig,
    /// Calls to the masters.
    pub backend: Arc<backend::Backend>,
    /// Signed-in users.
    pub sessions: SessionStore,
    /// Failed-login counts.
    pub limiter: LoginLimiter,
    /// The charts' samples.
    pub rates: Arc<rates::Rates>,
}

/// Shared console state, as the handlers take it.
pub type Shared = Arc<Console>;

/// The console's router (pages and `/api/`), with its sampling task started. Must be
/// called inside the Tokio runtime; the task ends when the router is dropped.
pub fn router(cfg: ConsoleConfig) -> Result<Router, ConsoleError> {
    let backend = Arc::new(backend::Backend::new(&cfg)?);
    let rates = Arc::new(rates::Rates::default());
    rates::spawn(Arc::downgrade(&rates), Arc::downgrade(&backend));
    let c = Arc::new(Console {
        sessions: SessionStore::new(cfg.session_ttl),
        limiter: LoginLimiter::new(Duration::from_secs(300)),
        cfg,
        backend,
        rates,
    });
    let api = api::routes().route_layer(axum::middleware::from_fn_with_state(c.clone(), guard));
    Ok(pages::routes()
        .merge(api)
        .route("/api/login", axum::routing::post(api::login))
        .with_state(c))
}

/// The session named by the request's cookie, if it is live.
pub fn session_of(c: &Console, headers: &HeaderMap) -> Option<Session> {
    let id = cookie(headers, session::COOKIE)?;
    c.sessions.get(&id)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The API's gate: 401 without a live session, 403 when the table refuses the role (or
/// has no entry: closed by default), 403 when a state-changing request lacks the CSRF
/// token. Passes the session to the handler as an extension.
async fn guard(State(c): State<Shared>, mut req: Request, next: Next) -> Response {
    match check(&c, &req) {
        Ok(s) => {
            req.extensions_mut().insert(s);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

fn check(c: &Console, req: &Request) -> Result<Session, ConsoleError> {
    let s = session_of(c, req.headers()).ok_or(ConsoleError::NoSession)?;
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let method = req.method();
    let Some(ep) = rbac::endpoint(method.as_str(), &path) else {
        return Err(ConsoleError::Forbidden {
            role: s.role.name(),
            needs: "an entry in the console's table",
            what: "call an endpoint the table does not list",
        });
    };
    if s.role < ep.min {
        return Err(ConsoleError::Forbidden {
            role: s.role.name(),
            needs: ep.min.name(),
            what: ep.what,
        });
    }
    if !matches!(*method, Method::GET | Method::HEAD) {
        let token = req
            .headers()
            .get(session::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !session::same(token, &s.csrf) {
            return Err(ConsoleError::Csrf);
        }
    }
    Ok(s)
}
