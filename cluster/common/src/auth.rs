//! Client authentication to the master. Every gRPC call carries
//! `authorization: KDSS1 <access_key>:<unix_ms>:<hex hmac-sha256(secret, "<access_key>:<unix_ms>")>`;
//! the secret never crosses the wire. A service identity (the S3 gateway, storage nodes)
//! signs with the cluster secret under the access key [`SERVICE_ACCESS_KEY`] and may name
//! the user it acts for in `kdss-on-behalf-of`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Metadata key of the credential.
pub const AUTH_HEADER: &str = "authorization";
/// Metadata key naming the user a service acts for.
pub const ON_BEHALF_OF_HEADER: &str = "kdss-on-behalf-of";
/// Access key of the cluster's own services; its secret is the cluster secret.
pub const SERVICE_ACCESS_KEY: &str = "kdss-service";
/// How far a credential's clock may be from the master's.
pub const MAX_SKEW_MS: u64 = 15 * 60 * 1000;

/// Why a credential was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing authorization")]
    Missing,
    #[error("malformed authorization: {0}")]
    Malformed(&'static str),
    #[error("unknown access key {0:?}")]
    UnknownKey(String),
    #[error("signature does not match for access key {0:?}")]
    BadSignature(String),
    #[error("credential time is {skew_ms} ms away from the master's clock")]
    Skew { skew_ms: u64 },
}

fn signature(secret: &str, access_key: &str, unix_ms: u64) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(format!("{access_key}:{unix_ms}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// The header value for a call made now.
pub fn credential(access_key: &str, secret: &str, unix_ms: u64) -> String {
    format!(
        "KDSS1 {access_key}:{unix_ms}:{}",
        signature(secret, access_key, unix_ms)
    )
}

/// A parsed, not yet verified credential.
#[derive(Debug, PartialEq, Eq)]
pub struct Credential<'a> {
    pub access_key: &'a str,
    pub unix_ms: u64,
    pub signature: &'a str,
}

/// Parses the header value.
pub fn parse(value: &str) -> Result<Credential<'_>, AuthError> {
    let rest = value
        .strip_prefix("KDSS1 ")
        .ok_or(AuthError::Malformed("expected KDSS1 scheme"))?;
    let mut it = rest.rsplitn(3, ':');
    let sig = it.next().ok_or(AuthError::Malformed("missing signature"))?;
    let ms = it.next().ok_or(AuthError::Malformed("missing time"))?;
    let key = it
        .next()
        .ok_or(AuthError::Malformed("missing access key"))?;
    let unix_ms = ms
        .parse()
        .map_err(|_| AuthError::Malformed("time is not a number"))?;
    Ok(Credential {
        access_key: key,
        unix_ms,
        signature: sig,
    })
}

/// Verifies a parsed credential against the user's secret at `now_ms`.
pub fn verify(c: &Credential<'_>, secret: &str, now_ms: u64) -> Result<(), AuthError> {
    let skew_ms = now_ms.abs_diff(c.unix_ms);
    if skew_ms > MAX_SKEW_MS {
        return Err(AuthError::Skew { skew_ms });
    }
    let want = signature(secret, c.access_key, c.unix_ms);
    let mut m = Hmac::<Sha256>::new_from_slice(b"compare").expect("any key length");
    m.update(want.as_bytes());
    // Constant-time comparison through the MAC verifier.
    let mut other = Hmac::<Sha256>::new_from_slice(b"compare").expect("any key length");
    other.update(c.signature.as_bytes());
    if m.verify_slice(&other.finalize().into_bytes()).is_err() {
        return Err(AuthError::BadSignature(c.access_key.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_round_trips_and_rejects_tampering() {
        let v = credential("AKID", "secret", 1_000_000);
        let c = parse(&v).unwrap();
        assert_eq!(c.access_key, "AKID");
        assert_eq!(verify(&c, "secret", 1_000_500), Ok(()));
        assert!(matches!(
            verify(&c, "wrong", 1_000_500),
            Err(AuthError::BadSignature(_))
        ));
        assert!(matches!(
            verify(&c, "secret", 1_000_000 + MAX_SKEW_MS + 1),
            Err(AuthError::Skew { .. })
        ));
        assert!(parse("Bearer x").is_err());
        assert!(parse("KDSS1 a:notanumber:ff").is_err());
    }
}
