//! The tower layer in front of the master's gRPC services that verifies KDSS2 credentials:
//! the signature over the method path (from the URI), the time window, the
//! `kdss-on-behalf-of` value, then the body digest, then the nonce against the replay cache.
//! A call that fails is answered `Unauthenticated` without its body being read or decoded;
//! one that passes runs with its [`Verified`] identity in scope (see [`super::authenticate`]).

use super::replay::ReplayCache;
use super::{Verified, unauthenticated};
use crate::service::State;
use http_body_util::BodyExt;
use kdss_common::auth::{self, AuthError, SERVICE_ACCESS_KEY};
use kdss_proto::master::Role;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::Status;
use tonic::body::Body;

/// Largest request body read for verification of a call to `path`, plus the 5-byte gRPC
/// frame header: Raft peers (service identity only) send snapshot chunks up to the Raft
/// message limit, every other call is bounded by the Master service's decoding limit, so a
/// signed user request cannot make the layer buffer more than that.
fn max_body_bytes(path: &str) -> usize {
    use kdss_proto::master::raft_peer_server::SERVICE_NAME as RAFT;
    let raft = path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(RAFT))
        .is_some_and(|rest| rest.starts_with('/'));
    5 + if raft {
        crate::raft::network::MAX_MESSAGE_BYTES
    } else {
        crate::service::MAX_REQUEST_BYTES
    }
}

/// How long a follower waits for a user it does not know yet (just created on the leader,
/// not yet applied here) before refusing the key as unknown.
const UNKNOWN_KEY_GRACE: Duration = Duration::from_millis(500);

/// Users remembered by the verifier before the cache starts over.
const MAX_CACHED_USERS: usize = 10_000;

/// Secrets and roles of users verified lately, each with the users epoch
/// ([`crate::raft::StateMachine::users_epoch`]) it was read under: a copy is used only
/// while no change of users was applied since. Without it every call by a user key paid
/// a database read (two thread hand-offs in sqlx) before its handler started.
#[derive(Default)]
struct UserCache {
    users: std::sync::Mutex<HashMap<String, (String, Role, u64)>>,
}

impl UserCache {
    fn get(&self, access_key: &str, epoch: u64) -> Option<(String, Role)> {
        let u = self.users.lock().unwrap_or_else(|e| e.into_inner());
        u.get(access_key)
            .filter(|(_, _, e)| *e == epoch)
            .map(|(s, r, _)| (s.clone(), *r))
    }

    fn put(&self, access_key: &str, secret: &str, role: Role, epoch: u64) {
        let mut u = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if u.len() >= MAX_CACHED_USERS {
            u.clear();
        }
        u.insert(access_key.to_string(), (secret.to_string(), role, epoch));
    }
}

/// Where user secrets come from.
#[derive(Clone)]
enum Users {
    /// The master's namespace database; followers wait briefly for a key they lack.
    State(Arc<State>),
    /// Service identity only (tests and benchmarks of the verifier itself).
    None,
}

/// Verifies credentials; one per master, shared by every connection.
pub struct Verifier {
    secret: String,
    users: Users,
    replay: ReplayCache,
    cache: UserCache,
}

impl Verifier {
    /// Verifies against `st`'s user table and the cluster secret.
    pub fn new(st: Arc<State>) -> Verifier {
        Verifier {
            secret: st.secret.clone(),
            users: Users::State(st),
            replay: ReplayCache::default(),
            cache: UserCache::default(),
        }
    }

    /// Accepts the service identity only (no user table).
    pub fn service_only(cluster_secret: &str) -> Verifier {
        Verifier {
            secret: cluster_secret.to_string(),
            users: Users::None,
            replay: ReplayCache::default(),
            cache: UserCache::default(),
        }
    }

    /// The secret and role of `access_key`.
    async fn secret_of(&self, access_key: &str) -> Result<(String, Option<Role>), Status> {
        if access_key == SERVICE_ACCESS_KEY {
            return Ok((self.secret.clone(), None));
        }
        let Users::State(st) = &self.users else {
            return Err(unauthenticated(AuthError::UnknownKey(access_key.into())));
        };
        let deadline = tokio::time::Instant::now() + UNKNOWN_KEY_GRACE;
        loop {
            let epoch = st.sm.users_epoch();
            if let Some((secret, role)) = self.cache.get(access_key, epoch) {
                return Ok((secret, Some(role)));
            }
            if let Some((secret, role)) =
                crate::meta_api::user_secret(&st.pool(), &st.seal, access_key).await?
            {
                self.cache.put(access_key, &secret, role, epoch);
                return Ok((secret, Some(role)));
            }
            if st.is_leader() || tokio::time::Instant::now() >= deadline {
                return Err(unauthenticated(AuthError::UnknownKey(access_key.into())));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Checks the headers of a call of `method` at `now_ms`: everything but the body and
    /// the nonce. Returns the identity and the signed body digest.
    pub async fn check_headers(
        &self,
        headers: &http::HeaderMap,
        method: &str,
        now_ms: u64,
    ) -> Result<(Verified, [u8; 32]), Status> {
        let value = headers
            .get(auth::AUTH_HEADER)
            .ok_or_else(|| unauthenticated(AuthError::Missing))?
            .to_str()
            .map_err(|_| unauthenticated(AuthError::Malformed("not ASCII")))?;
        let c = auth::parse(value).map_err(unauthenticated)?;
        let obo = match headers.get(auth::ON_BEHALF_OF_HEADER) {
            None => "",
            Some(v) => v.to_str().map_err(|_| {
                unauthenticated(AuthError::Malformed("kdss-on-behalf-of is not ASCII"))
            })?,
        };
        let (secret, role) = self.secret_of(c.access_key).await?;
        auth::verify(&c, &secret, method, obo, now_ms).map_err(unauthenticated)?;
        let service = c.access_key == SERVICE_ACCESS_KEY;
        Ok((
            Verified {
                access_key: c.access_key.to_string(),
                // Only the service identity acts for others; a user's header is ignored.
                on_behalf_of: (service && !obo.is_empty()).then(|| obo.to_string()),
                role,
                nonce: c.nonce,
                unix_ms: c.unix_ms,
            },
            c.body_sha256,
        ))
    }

    /// Checks the body against the signed digest, then spends the nonce.
    pub fn check_body_and_nonce(
        &self,
        v: &Verified,
        body_sha256: &[u8; 32],
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), Status> {
        if &auth::body_digest(body) != body_sha256 {
            return Err(unauthenticated(AuthError::BodyMismatch));
        }
        self.replay
            .check_and_insert(&v.nonce, v.unix_ms, now_ms)
            .map_err(|e| match e {
                AuthError::Busy => Status::unavailable(e.to_string()),
                e => unauthenticated(e),
            })
    }

    /// The whole check of one request; the body comes back buffered for the service.
    async fn verify(
        &self,
        parts: &http::request::Parts,
        body: Body,
    ) -> Result<(Verified, Body), Status> {
        let now = kdss_common::time::now_ms();
        let (v, digest) = self
            .check_headers(&parts.headers, parts.uri.path(), now)
            .await?;
        let max = max_body_bytes(parts.uri.path());
        let bytes = http_body_util::Limited::new(body, max)
            .collect()
            .await
            .map_err(|e| {
                Status::resource_exhausted(format!(
                    "request body unreadable or over {max} bytes: {e}"
                ))
            })?
            .to_bytes();
        self.check_body_and_nonce(&v, &digest, &bytes, now)?;
        Ok((v, Body::new(http_body_util::Full::new(bytes))))
    }
}

/// `Server::builder().layer(AuthLayer::new(verifier))`.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<Verifier>,
}

impl AuthLayer {
    /// Every call through the layer is verified by `verifier`.
    pub fn new(verifier: Verifier) -> AuthLayer {
        AuthLayer {
            verifier: Arc::new(verifier),
        }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the routes.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

impl<S> tower_service::Service<http::Request<Body>> for AuthService<S>
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    S::Error: Send,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            match verifier.verify(&parts, body).await {
                Ok((v, body)) => {
                    let req = http::Request::from_parts(parts, body);
                    super::scope(v, inner.call(req)).await
                }
                Err(status) => {
                    tracing::debug!(method = parts.uri.path(), %status, "call refused");
                    Ok(status.into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kdss_common::auth::signer::Signer;

    const M: &str = "/kdss.master.v1.Master/Heartbeat";

    fn signed(signer: &Signer, method: &str, body: &[u8]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        let v = signer.header(method, auth::body_digest(body), kdss_common::time::now_ms());
        h.insert(auth::AUTH_HEADER, v.parse().unwrap());
        h
    }

    async fn check(
        v: &Verifier,
        h: &http::HeaderMap,
        method: &str,
        body: &[u8],
    ) -> Result<(), Status> {
        let now = kdss_common::time::now_ms();
        let (id, digest) = v.check_headers(h, method, now).await?;
        v.check_body_and_nonce(&id, &digest, body, now)
    }

    #[tokio::test]
    async fn replay_method_body_and_user_are_refused() {
        let v = Verifier::service_only("cluster-secret");
        let s = Signer::service("cluster-secret");
        let h = signed(&s, M, b"hb");
        check(&v, &h, M, b"hb").await.unwrap();
        let e = check(&v, &h, M, b"hb").await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(e.message().contains("replay"), "{}", e.message());

        let h = signed(&s, M, b"hb");
        let e = check(&v, &h, "/kdss.master.v1.Master/CreateUser", b"hb")
            .await
            .unwrap_err();
        assert!(
            e.message().contains("signature does not match"),
            "{}",
            e.message()
        );
        let e = check(&v, &h, M, b"other body").await.unwrap_err();
        assert!(e.message().contains("body"), "{}", e.message());

        let mut h = signed(&s.acting_for(Some("alice")), M, b"");
        h.insert(auth::ON_BEHALF_OF_HEADER, "alice".parse().unwrap());
        let mut h2 = h.clone();
        h2.insert(auth::ON_BEHALF_OF_HEADER, "admin".parse().unwrap());
        assert!(check(&v, &h2, M, b"").await.is_err());
        check(&v, &h, M, b"").await.unwrap();

        let e = check(&v, &http::HeaderMap::new(), M, b"")
            .await
            .unwrap_err();
        assert!(e.message().contains("missing"), "{}", e.message());
    }

    /// Prints the cost of verifying one service call (headers, body digest, nonce); no
    /// assertion on time.
    #[tokio::test]
    async fn cost_of_verifying_one_call() {
        let v = Verifier::service_only("cluster-secret");
        let s = Signer::service("cluster-secret");
        let body = vec![7u8; 200];
        let n = 20_000;
        let headers: Vec<_> = (0..n).map(|_| signed(&s, M, &body)).collect();
        let t = std::time::Instant::now();
        for h in &headers {
            check(&v, h, M, &body).await.unwrap();
        }
        let per = t.elapsed().as_nanos() / n as u128;
        println!("verify (service credential, 200-byte body): {per} ns per call");
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(signed(&s, M, &body));
        }
        let per = t.elapsed().as_nanos() / n as u128;
        println!("sign (service credential, 200-byte body): {per} ns per call");
    }
}
