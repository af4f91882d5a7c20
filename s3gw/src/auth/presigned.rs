//! SigV4 presigned URLs (query-string auth): `X-Amz-Algorithm`, `X-Amz-Credential`,
//! `X-Amz-Date`, `X-Amz-Expires` (1 s .. 7 days), `X-Amz-SignedHeaders`,
//! `X-Amz-Signature`. The body is UNSIGNED-PAYLOAD. As on AWS, `host` and every `x-amz-*`
//! header sent with the URL must be among `X-Amz-SignedHeaders`.

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

/// What presigned-URL auth settles before the user's secret is needed.
pub(crate) struct Prechecked<'a> {
    cred: super::CredentialScope,
    amz_date: &'a str,
    signed_headers: &'a str,
    given: &'a str,
    payload_hash: &'a str,
}

impl Prechecked<'_> {
    /// The access key whose secret [`finish`] needs.
    pub(crate) fn access_key(&self) -> &str {
        &self.cred.access_key
    }
}

/// Verifies a presigned request.
pub async fn verify(
    parts: &Parts,
    query: &[(String, String)],
    secrets: &SecretCache,
    settings: &AuthSettings,
) -> S3Result<Verified> {
    let p = precheck(parts, query, settings)?;
    let secret = secrets.secret(p.access_key()).await?;
    finish(parts, query, p, &secret)
}

/// Everything of presigned-URL auth that needs no secret: the `X-Amz-*` parameters, the
/// validity window, and that `host` and every `x-amz-*` header sent are signed (the
/// `X-Amz-*` query parameters are covered by the canonical query string).
pub(crate) fn precheck<'a>(
    parts: &Parts,
    query: &'a [(String, String)],
    settings: &AuthSettings,
) -> S3Result<Prechecked<'a>> {
    let bad = |m: &str| S3Error::new(Code::AuthorizationQueryParametersError, m.to_string());
    if param(query, "X-Amz-Algorithm")? != sigv4::ALGORITHM {
        return Err(bad("X-Amz-Algorithm must be AWS4-HMAC-SHA256"));
    }
    let cred = super::parse_credential(
        param(query, "X-Amz-Credential")?,
        Code::AuthorizationQueryParametersError,
    )?;
    let signed_headers = param(query, "X-Amz-SignedHeaders")?;
    super::require_signed(&parts.headers, signed_headers)?;
    let amz_date = param(query, "X-Amz-Date")?;
    let t = super::parse_amz_date(amz_date).ok_or_else(|| bad("malformed X-Amz-Date"))?;
    if !amz_date.starts_with(&cred.date) {
        return Err(bad("credential date does not match X-Amz-Date"));
    }
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
    let given = param(query, "X-Amz-Signature")?;
    let payload_hash = query
        .iter()
        .find(|(k, _)| k == "X-Amz-Content-Sha256")
        .map(|(_, v)| v.as_str())
        .unwrap_or("UNSIGNED-PAYLOAD");
    Ok(Prechecked {
        cred,
        amz_date,
        signed_headers,
        given,
        payload_hash,
    })
}

/// Checks the signature of a prechecked presigned request with the user's `secret`.
pub(crate) fn finish(
    parts: &Parts,
    query: &[(String, String)],
    p: Prechecked<'_>,
    secret: &str,
) -> S3Result<Verified> {
    let key = sigv4::signing_key(secret, &p.cred.date, &p.cred.region, "s3");
    let hv = super::signed_header_values(&parts.headers, p.signed_headers)?;
    let cq = sigv4::canonical_query(query, Some("X-Amz-Signature"));
    let method = parts.method.as_str();
    let ok = super::canonical_uris(parts.uri.path()).iter().any(|uri| {
        let cr = sigv4::canonical_request(method, uri, &cq, &hv, p.signed_headers, p.payload_hash);
        let want = sigv4::signature(&key, &sigv4::string_to_sign(p.amz_date, &p.cred.scope, &cr));
        sigv4::constant_time_eq(&want, p.given)
    });
    if !ok {
        return Err(S3Error::new(
            Code::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    // A URL signed for one body (`X-Amz-Content-Sha256` = its hash) takes only that body.
    let payload = match p.payload_hash {
        "UNSIGNED-PAYLOAD" => Payload::Unsigned,
        h if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Payload::Sha256(h.to_ascii_lowercase())
        }
        other => {
            return Err(S3Error::new(
                Code::AuthorizationQueryParametersError,
                format!("X-Amz-Content-Sha256 {other:?} is not supported in a presigned URL"),
            ));
        }
    };
    Ok(Verified {
        access_key: p.cred.access_key,
        payload,
    })
}
