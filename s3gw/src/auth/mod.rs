//! Request authentication: who sent the request and how its body is protected.
//!
//! One file per wire form: [`header`] (Authorization header), [`presigned`] (query
//! string), [`chunked`] (aws-chunked bodies), with the shared math in [`sigv4`] and user
//! secrets from the master in [`secrets`].

pub mod chunked;
pub mod header;
pub mod presigned;
pub mod presigned_v2;
pub mod secrets;
pub use kdss_common::sigv4;

use crate::error::{Code, S3Error, S3Result};
use http::HeaderMap;
use http::request::Parts;

/// How the body of an authenticated request is protected.
#[derive(Clone)]
pub enum Payload {
    /// `UNSIGNED-PAYLOAD` or a presigned URL: nothing to check but the checksums.
    Unsigned,
    /// A hex sha256 the whole body must hash to.
    Sha256(String),
    /// aws-chunked: signed chunks (`Some`) or unsigned ones, with or without a trailer.
    Chunked {
        signer: Option<chunked::ChunkSigner>,
        trailer: bool,
    },
}

/// A request whose signature was verified.
#[derive(Clone)]
pub struct Verified {
    /// The user's access key (the gateway acts for it).
    pub access_key: String,
    /// How to check the body.
    pub payload: Payload,
}

/// Settings of verification.
#[derive(Clone)]
pub struct AuthSettings {
    /// Allowed distance between the request time and our clock.
    pub max_skew_secs: u64,
}

/// Verifies the request's signature. `Ok(None)` is an anonymous request.
pub async fn authenticate(
    parts: &Parts,
    query: &[(String, String)],
    secrets: &secrets::SecretCache,
    settings: &AuthSettings,
) -> S3Result<Option<Verified>> {
    if let Some(h) = parts.headers.get(http::header::AUTHORIZATION) {
        let h = h
            .to_str()
            .map_err(|_| S3Error::new(Code::AuthorizationHeaderMalformed, "not ASCII"))?;
        return header::verify(parts, h, query, secrets, settings)
            .await
            .map(Some);
    }
    if query
        .iter()
        .any(|(k, _)| k == "X-Amz-Signature" || k == "X-Amz-Credential")
    {
        return presigned::verify(parts, query, secrets, settings)
            .await
            .map(Some);
    }
    if query.iter().any(|(k, _)| k == "AWSAccessKeyId") {
        return presigned_v2::verify(parts, query, secrets).await.map(Some);
    }
    Ok(None)
}

/// The canonical URI of a request: the path decoded, then encoded the SigV4 way.
pub(crate) fn canonical_uris(raw_path: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(2);
    if let Some(decoded) = sigv4::uri_decode(raw_path) {
        out.push(sigv4::uri_encode(&decoded, false));
    }
    if !out.iter().any(|u| u == raw_path) {
        out.push(raw_path.to_string());
    }
    out
}

/// Refuses a request carrying a header that AWS requires to be signed and `signed` (the
/// `SignedHeaders` list) does not name: `host` always, and every `x-amz-*` header present.
/// Without it a holder of a signed request or presigned URL could add, say,
/// `x-amz-copy-source` and turn a PUT into a copy of any object the signer can read, or
/// replay a request against another host. The message names every unsigned header.
pub(crate) fn require_signed(headers: &HeaderMap, signed: &str) -> S3Result<()> {
    let is_signed = |name: &str| signed.split(';').any(|s| s.eq_ignore_ascii_case(name));
    let mut unsigned: Vec<&str> = Vec::new();
    if !is_signed("host") {
        unsigned.push("host");
    }
    for name in headers.keys().map(|n| n.as_str()) {
        if name.starts_with("x-amz-") && !is_signed(name) && !unsigned.contains(&name) {
            unsigned.push(name);
        }
    }
    if unsigned.is_empty() {
        return Ok(());
    }
    Err(S3Error::new(
        Code::AccessDenied,
        format!(
            "There were headers present in the request which were not signed: {}",
            unsigned.join(", ")
        ),
    ))
}

/// The (name, canonical value) pairs of the signed headers, or the missing one.
pub(crate) fn signed_header_values(
    headers: &HeaderMap,
    signed: &str,
) -> S3Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for name in signed.split(';').filter(|n| !n.is_empty()) {
        let vals: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| sigv4::canonical_header_value(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        if vals.is_empty() {
            return Err(S3Error::new(
                Code::SignatureDoesNotMatch,
                format!("signed header {name} is missing from the request"),
            ));
        }
        out.push((name.to_string(), vals.join(",")));
    }
    Ok(out)
}

/// Parses `YYYYMMDDTHHMMSSZ` to unix seconds.
pub(crate) fn parse_amz_date(s: &str) -> Option<i64> {
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, &f)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// The parsed `Credential=` value: access key and scope parts.
pub(crate) struct CredentialScope {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub scope: String,
}

pub(crate) fn parse_credential(c: &str, code: Code) -> S3Result<CredentialScope> {
    let parts: Vec<&str> = c.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" || parts[0].is_empty() {
        return Err(S3Error::new(code, format!("malformed credential {c:?}")));
    }
    if parts[1].len() != 8 || !parts[1].bytes().all(|b| b.is_ascii_digit()) {
        return Err(S3Error::new(
            code,
            format!("credential date {:?} is not YYYYMMDD", parts[1]),
        ));
    }
    if parts[3] != "s3" {
        return Err(S3Error::new(
            code,
            format!("credential names service {:?}, not s3", parts[3]),
        ));
    }
    Ok(CredentialScope {
        access_key: parts[0].to_string(),
        date: parts[1].to_string(),
        region: parts[2].to_string(),
        scope: parts[1..].join("/"),
    })
}

pub(crate) fn now_secs() -> i64 {
    (kdss_common::time::now_ms() / 1000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_parses() {
        assert_eq!(parse_amz_date("20130524T000000Z"), Some(1369353600));
        assert_eq!(parse_amz_date("2013-05-24"), None);
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn host_and_every_amz_header_must_be_signed() {
        let h = headers(&[
            ("host", "gw:9000"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("content-type", "text/plain"),
        ]);
        require_signed(&h, "host;x-amz-content-sha256;x-amz-date").unwrap();
        // Other headers need not be signed.
        require_signed(&h, "HOST;x-amz-content-sha256;X-Amz-Date").unwrap();
        let e = require_signed(&h, "x-amz-content-sha256;x-amz-date").unwrap_err();
        assert_eq!(e.code, Code::AccessDenied);
        assert!(e.message.ends_with("not signed: host"), "{}", e.message);
        let mut h2 = h.clone();
        h2.append("x-amz-copy-source", "other/secret".parse().unwrap());
        h2.append("x-amz-copy-source", "other/secret2".parse().unwrap());
        let e = require_signed(&h2, "host;x-amz-date").unwrap_err();
        assert!(
            e.message
                .ends_with("not signed: x-amz-content-sha256, x-amz-copy-source"),
            "{}",
            e.message
        );
        // A request with no host header still needs host signed (and then fails later,
        // when the signed header is looked up).
        let e = require_signed(&HeaderMap::new(), "").unwrap_err();
        assert!(e.message.ends_with("not signed: host"), "{}", e.message);
    }

    #[test]
    fn canonical_uri_reencodes_and_keeps_raw_fallback() {
        assert_eq!(canonical_uris("/b/a%20b"), vec!["/b/a%20b".to_string()]);
        assert_eq!(
            canonical_uris("/b/a+b"),
            vec!["/b/a%2Bb".to_string(), "/b/a+b".to_string()]
        );
    }
}
