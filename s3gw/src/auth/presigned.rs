//! SigV4 presigned URLs (query-string auth): `X-Amz-Algorithm`, `X-Amz-Credential`,
//! `X-Amz-Date`, `X-Amz-Expires` (1 s .. 7 days), `X-Amz-SignedHeaders`,
//! `X-Amz-Signature`. The body is UNSIGNED-PAYLOAD.

use super::{AuthSettings, Payload, Verified, secrets::SecretCache, sigv4};
use crate::error::{Code, S3Error, S3Result};
use http::request::Parts;

/// Longest validity S3 accepts for a presigned URL.
pub const MAX_EXPIRES_SECS: i64 = 7 * 24 * 3600;

fn param<'a>(q: &'a [(String, String)], name: &str) -> S3Result<&'a str> {
    q.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| {
            S3Error::new(
                Code::AuthorizationQueryParametersError,
                format!("missing {name}"),
            )
        })
}

/// Verifies a presigned request.
pub async fn verify(
    parts: &Parts,
    query: &[(String, String)],
    secrets: &SecretCache,
    settings: &AuthSettings,
) -> S3Result<Verified> {
    let bad = |m: &str| S3Error::new(Code::AuthorizationQueryParametersError, m.to_string());
    if param(query, "X-Amz-Algorithm")? != sigv4::ALGORITHM {
        return Err(bad("X-Amz-Algorithm must be AWS4-HMAC-SHA256"));
    }
    let cred = super::parse_credential(
        param(query, "X-Amz-Credential")?,
        Code::AuthorizationQueryParametersError,
    )?;
    let amz_date = param(query, "X-Amz-Date")?.to_string();
    let t = super::parse_amz_date(&amz_date).ok_or_else(|| bad("malformed X-Amz-Date"))?;
    let expires: i64 = param(query, "X-Amz-Expires")?
        .parse()
        .map_err(|_| bad("X-Amz-Expires not a number"))?;
    if !(1..=MAX_EXPIRES_SECS).contains(&expires) {
        return Err(S3Error::new(
            Code::AccessDenied,
            "X-Amz-Expires must be between 1 and 604800 seconds",
        ));
    }
    let now = super::now_secs();
    if now > t + expires {
        return Err(S3Error::new(Code::AccessDenied, "Request has expired"));
    }
    if t - now > settings.max_skew_secs as i64 {
        return Err(S3Error::new(Code::AccessDenied, "Request is not valid yet"));
    }
    let signed_headers = param(query, "X-Amz-SignedHeaders")?;
    let given = param(query, "X-Amz-Signature")?;
    let payload_hash = query
        .iter()
        .find(|(k, _)| k == "X-Amz-Content-Sha256")
        .map(|(_, v)| v.as_str())
        .unwrap_or("UNSIGNED-PAYLOAD");
    let secret = secrets.secret(&cred.access_key).await?;
    let key = sigv4::signing_key(&secret, &cred.date, &cred.region, "s3");
    let hv = super::signed_header_values(&parts.headers, signed_headers)?;
    let cq = sigv4::canonical_query(query, Some("X-Amz-Signature"));
    let method = parts.method.as_str();
    let ok = super::canonical_uris(parts.uri.path()).iter().any(|uri| {
        let cr = sigv4::canonical_request(method, uri, &cq, &hv, signed_headers, payload_hash);
        let want = sigv4::signature(&key, &sigv4::string_to_sign(&amz_date, &cred.scope, &cr));
        sigv4::constant_time_eq(&want, given)
    });
    if !ok {
        return Err(S3Error::new(
            Code::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    Ok(Verified {
        access_key: cred.access_key,
        payload: Payload::Unsigned,
    })
}
