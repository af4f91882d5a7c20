//! Who is calling: every Master call carries a `KDSS1` credential (kdss_common::auth). The
//! service identity (SERVICE_ACCESS_KEY signed with the cluster secret) is the gateway, the
//! storage nodes and the peers; it may act for a user named in `kdss-on-behalf-of`, and then
//! has exactly that user's rights. Everyone else is a user of the namespace database.

use kdss_common::auth::{self, AuthError, ON_BEHALF_OF_HEADER, SERVICE_ACCESS_KEY};
use kdss_common::rpc_error::{self, errno};
use sqlx::SqlitePool;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

pub use crate::caller::Caller;

fn unauthenticated(e: impl std::fmt::Display) -> Status {
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

/// Accepts only the service identity (peers, storage nodes, gateways).
pub fn require_service(md: &MetadataMap, secret: &str) -> Result<(), Status> {
    let v = md
        .get(auth::AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthenticated(AuthError::Missing))?;
    let c = auth::parse(v).map_err(unauthenticated)?;
    if c.access_key != SERVICE_ACCESS_KEY {
        return Err(denied("this call is reserved for the cluster's services"));
    }
    auth::verify(&c, secret, kdss_common::time::now_ms()).map_err(unauthenticated)
}

/// Verifies the credential and resolves the user (and `kdss-on-behalf-of`).
pub async fn authenticate(
    md: &MetadataMap,
    secret: &str,
    pool: &SqlitePool,
) -> Result<Caller, Status> {
    let v = md
        .get(auth::AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthenticated(AuthError::Missing))?;
    let c = auth::parse(v).map_err(unauthenticated)?;
    let now = kdss_common::time::now_ms();
    if c.access_key == SERVICE_ACCESS_KEY {
        auth::verify(&c, secret, now).map_err(unauthenticated)?;
        let obo = md.get(ON_BEHALF_OF_HEADER).and_then(|v| v.to_str().ok());
        return match obo {
            None | Some("") => Ok(Caller::service()),
            Some(user) => {
                let (_, role) = crate::meta_api::user_secret(pool, user)
                    .await?
                    .ok_or_else(|| unauthenticated(AuthError::UnknownKey(user.to_string())))?;
                Ok(Caller {
                    access_key: user.to_string(),
                    role,
                    service: false,
                })
            }
        };
    }
    let (user_secret, role) = crate::meta_api::user_secret(pool, c.access_key)
        .await?
        .ok_or_else(|| unauthenticated(AuthError::UnknownKey(c.access_key.to_string())))?;
    auth::verify(&c, &user_secret, now).map_err(unauthenticated)?;
    Ok(Caller {
        access_key: c.access_key.to_string(),
        role,
        service: false,
    })
}
