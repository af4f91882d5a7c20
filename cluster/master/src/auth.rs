//! Who is calling. Every gRPC call to a master carries a `KDSS2` credential
//! (kdss_common::auth) bound to its method, body, time, nonce and `kdss-on-behalf-of`;
//! [`layer::AuthLayer`] verifies it in front of every service, before the body is decoded,
//! and runs the handler with the verified identity in a task-local. Handlers ask
//! [`authenticate`] / [`require_service`], which read that identity (and cross-check it is
//! this request's). The service identity (SERVICE_ACCESS_KEY signed with the cluster secret)
//! is the gateway, the storage nodes, the console and the peers; it may act for a user named
//! in `kdss-on-behalf-of`, and then has exactly that user's rights. Everyone else is a user
//! of the namespace database.

pub mod layer;
pub mod replay;

use kdss_common::auth::signer::Signer;
use kdss_common::auth::{self, AuthError, SERVICE_ACCESS_KEY};
use kdss_common::rpc_error::{self, errno};
use kdss_common::tls::DaemonRole;
use kdss_proto::master::Role;
use sqlx::SqlitePool;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

pub use crate::caller::Caller;

pub(crate) fn unauthenticated(e: impl std::fmt::Display) -> Status {
    rpc_error::status(
        Code::Unauthenticated,
        errno::EACCES,
        "AccessDenied",
        e.to_string(),
    )
}

/// Refuses with PermissionDenied (errno EACCES, code AccessDenied).
pub fn denied(message: impl Into<String>) -> Status {
    rpc_error::status(
        Code::PermissionDenied,
        errno::EACCES,
        "AccessDenied",
        message,
    )
}

/// The identity [`layer::AuthLayer`] verified for the call being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key that signed.
    pub access_key: String,
    /// `kdss-on-behalf-of` as signed (service identity only; None when absent).
    pub on_behalf_of: Option<String>,
    /// The signer's role, for a user's own credential.
    pub role: Option<Role>,
    /// The credential's nonce: ties the identity to the request's own header.
    pub nonce: [u8; auth::NONCE_BYTES],
    /// The credential's time.
    pub unix_ms: u64,
}

tokio::task_local! {
    static VERIFIED: Verified;
}

/// Runs `f` as a call made by `v` (what the layer does around each handler).
pub async fn scope<F: std::future::Future>(v: Verified, f: F) -> F::Output {
    VERIFIED.scope(v, f).await
}

/// The identity verified for this call; refused when the call did not pass the layer, or
/// when `md` carries another credential than the one verified.
fn verified(md: &MetadataMap) -> Result<Verified, Status> {
    let v = VERIFIED
        .try_with(Clone::clone)
        .map_err(|_| unauthenticated("credential not verified (no auth layer)"))?;
    let header = md
        .get(auth::AUTH_HEADER)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| unauthenticated(AuthError::Missing))?;
    let c = auth::parse(header).map_err(unauthenticated)?;
    if c.nonce != v.nonce || c.access_key != v.access_key {
        return Err(unauthenticated("credential differs from the one verified"));
    }
    Ok(v)
}

/// Accepts only the service identity (peers, storage nodes, gateways).
pub fn require_service(md: &MetadataMap) -> Result<(), Status> {
    if verified(md)?.access_key != SERVICE_ACCESS_KEY {
        return Err(denied("this call is reserved for the cluster's services"));
    }
    Ok(())
}

/// On a master serving mutual TLS, accepts only a caller whose certificate (verified
/// against the cluster CA in the handshake) names one of `roles`; on a plaintext master
/// (loopback only, or `insecure = true`) there is no certificate and the check passes.
pub fn require_peer_role<T>(
    req: &tonic::Request<T>,
    mtls: bool,
    roles: &[DaemonRole],
) -> Result<(), Status> {
    if !mtls {
        return Ok(());
    }
    let certs = req.peer_certs();
    let chain: &[_] = certs.as_deref().map(Vec::as_slice).unwrap_or(&[]);
    if roles.iter().any(|r| kdss_common::tls::has_role(chain, *r)) {
        return Ok(());
    }
    let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
    Err(denied(format!(
        "this call needs a daemon certificate of role {} (kdss certs --role){}",
        names.join(" or "),
        if chain.is_empty() {
            "; the caller presented none"
        } else {
            "; the caller's certificate has another role"
        }
    )))
}

/// Resolves the verified caller (and `kdss-on-behalf-of`) to a [`Caller`].
pub async fn authenticate(md: &MetadataMap, pool: &SqlitePool) -> Result<Caller, Status> {
    let v = verified(md)?;
    if v.access_key == SERVICE_ACCESS_KEY {
        return match v.on_behalf_of {
            None => Ok(Caller::service()),
            Some(user) => {
                let role = crate::meta_api::user_role(pool, &user)
                    .await?
                    .ok_or_else(|| unauthenticated(AuthError::UnknownKey(user.clone())))?;
                Ok(Caller {
                    access_key: user,
                    role,
                    service: false,
                })
            }
        };
    }
    Ok(Caller {
        role: v.role.unwrap_or(Role::User),
        access_key: v.access_key,
        service: false,
    })
}

/// How a follower signs the call it forwards to the leader: as the service identity acting
/// for the verified caller, with the caller's nonce and time, so the leader spends that
/// nonce as well (a copy of the caller's credential sent straight to the leader is then a
/// replay). The caller's own proof cannot travel: its body digest covers the bytes the
/// caller sent, and the follower re-encodes the message (protobuf maps have no fixed order).
pub fn forward_signer(secret: &str) -> Result<Signer, Status> {
    let v = VERIFIED
        .try_with(Clone::clone)
        .map_err(|_| unauthenticated("credential not verified (no auth layer)"))?;
    let acting = if v.access_key == SERVICE_ACCESS_KEY {
        v.on_behalf_of
    } else {
        Some(v.access_key)
    };
    Ok(Signer::service(secret)
        .acting_for(acting.as_deref())
        .reusing(v.nonce, v.unix_ms))
}
