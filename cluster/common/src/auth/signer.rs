//! The client half of KDSS2: a tower service around a gRPC channel that signs each request
//! with its method path and body. It buffers the request body (every master and peer call
//! sends one message; nothing client-streaming goes through it), hashes it, and sets
//! `authorization` and `kdss-on-behalf-of` itself, so the two cannot disagree.

use super::{AUTH_HEADER, Claims, ON_BEHALF_OF_HEADER, SERVICE_ACCESS_KEY};
use http_body_util::BodyExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::body::Body;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Who signs: an access key and its secret, optionally acting for a user.
#[derive(Clone)]
pub struct Signer {
    access_key: Arc<str>,
    secret: Arc<str>,
    on_behalf_of: Option<Arc<str>>,
    /// Nonce and time to sign with instead of fresh ones (see [`Signer::reusing`]).
    fixed: Option<([u8; super::NONCE_BYTES], u64)>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key", &self.access_key)
            .field("on_behalf_of", &self.on_behalf_of)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Signs as `access_key` with `secret`.
    pub fn new(access_key: &str, secret: &str) -> Signer {
        Signer {
            access_key: access_key.into(),
            secret: secret.into(),
            on_behalf_of: None,
            fixed: None,
        }
    }

    /// The cluster's service identity (its secret is the cluster secret).
    pub fn service(cluster_secret: &str) -> Signer {
        Signer::new(SERVICE_ACCESS_KEY, cluster_secret)
    }

    /// The same identity acting for `user` (None: for itself).
    pub fn acting_for(&self, user: Option<&str>) -> Signer {
        Signer {
            on_behalf_of: user.map(Into::into),
            ..self.clone()
        }
    }

    /// The same identity signing with `nonce` and `unix_ms` instead of fresh ones: a master
    /// forwarding a verified call to the leader signs it with the caller's nonce and time,
    /// so the leader spends that nonce too and the caller's own credential cannot be
    /// replayed to it directly. For one call only: a second call would be a replay.
    pub fn reusing(&self, nonce: [u8; super::NONCE_BYTES], unix_ms: u64) -> Signer {
        Signer {
            fixed: Some((nonce, unix_ms)),
            ..self.clone()
        }
    }

    /// The access key the calls are signed with.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The user the calls act for.
    pub fn on_behalf_of(&self) -> Option<&str> {
        self.on_behalf_of.as_deref()
    }

    /// The `authorization` value for one call of `method` with a body hashing to
    /// `body_sha256`, made at `unix_ms` with a fresh nonce (or the fixed nonce and time of
    /// [`Signer::reusing`]).
    pub fn header(&self, method: &str, body_sha256: [u8; 32], unix_ms: u64) -> String {
        let (nonce, unix_ms) = self.fixed.unwrap_or_else(|| (super::new_nonce(), unix_ms));
        super::sign(
            &self.secret,
            &Claims {
                access_key: &self.access_key,
                method,
                unix_ms,
                nonce,
                on_behalf_of: self.on_behalf_of.as_deref().unwrap_or(""),
                body_sha256,
            },
        )
    }

    /// Wraps `inner` (a tonic Channel) so every call through it is signed.
    pub fn wrap<S>(&self, inner: S) -> Signed<S> {
        Signed {
            inner,
            signer: self.clone(),
        }
    }

    /// Signs a buffered request: sets both headers from this signer.
    fn apply(&self, parts: &mut http::request::Parts, body: &[u8]) -> Result<(), BoxError> {
        let value = self.header(
            parts.uri.path(),
            super::body_digest(body),
            crate::time::now_ms(),
        );
        parts.headers.insert(AUTH_HEADER, value.try_into()?);
        match &self.on_behalf_of {
            Some(u) => {
                let v = http::HeaderValue::from_str(u)
                    .map_err(|_| format!("user {u:?} is not a valid header value"))?;
                parts.headers.insert(ON_BEHALF_OF_HEADER, v);
            }
            None => {
                parts.headers.remove(ON_BEHALF_OF_HEADER);
            }
        }
        Ok(())
    }
}

/// A channel whose calls are signed by [`Signer`]; use it where a `Channel` was used:
/// `MasterClient::new(signer.wrap(channel))`.
#[derive(Clone, Debug)]
pub struct Signed<S> {
    inner: S,
    signer: Signer,
}

impl<S> Signed<S> {
    /// The identity calls are signed with.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
}

impl<S, B> tower_service::Service<http::Request<Body>> for Signed<S>
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // The readied service goes into the future; a fresh clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let signer = self.signer.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let bytes = body.collect().await?.to_bytes();
            signer.apply(&mut parts, &bytes)?;
            let req = http::Request::from_parts(parts, Body::new(http_body_util::Full::new(bytes)));
            inner.call(req).await.map_err(Into::into)
        })
    }
}
