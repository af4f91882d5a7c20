//! Legacy SigV2 query-string auth (`AWSAccessKeyId`, `Expires`, `Signature`), because
//! s3cmd `signurl` and aws cli `s3 presign` (unless told `s3v4`) still produce it. Header
//! SigV2 is refused (NotImplemented).
//!
//! Accepted only in the form those tools make: GET, HEAD or PUT of one object, path
//! style (`/bucket/key`), valid for at most 7 days, with no query parameter besides the
//! three above and the `response-*` overrides. The string to sign is AWS's: method,
//! Content-MD5, Content-Type, Expires, the canonicalized `x-amz-*` headers, and the
//! resource with the overrides — so an `x-amz-*` header or an override the signer did not
//! sign breaks the signature.

use super::{Payload, Verified, secrets::SecretCache};
use crate::error::{Code, S3Error, S3Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use http::request::Parts;
use sha1::Sha1;

/// The query parameters of a SigV2 presigned URL that are not part of the resource.
const AUTH_PARAMS: [&str; 3] = ["AWSAccessKeyId", "Expires", "Signature"];

/// Response-header overrides: signed as part of the resource (AWS's sub-resources).
const OVERRIDES: [&str; 6] = [
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
];

/// Longest validity accepted, as for SigV4 presigned URLs.
const MAX_VALIDITY_SECS: i64 = super::presigned::MAX_EXPIRES_SECS;

/// HMAC-SHA1 of `sts` under `secret`, base64: the SigV2 signature.
pub fn sign(secret: &str, sts: &str) -> String {
    let mut m = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(sts.as_bytes());
    B64.encode(m.finalize().into_bytes())
}

/// The string to sign of a SigV2 query-auth request for `resource` (the path, then the
/// sorted overrides as `?name=value&...`): AWS's `StringToSign` with `Expires` in place
/// of `Date`.
pub fn string_to_sign(
    method: &str,
    headers: &http::HeaderMap,
    expires: i64,
    resource: &str,
) -> String {
    let h = |n: &str| {
        headers
            .get(n)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .unwrap_or_default()
    };
    // CanonicalizedAmzHeaders: lowercase names (HeaderMap keeps them so), sorted, trimmed
    // values of a repeated header joined with commas, each line `name:value\n`.
    let mut names: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-amz-"))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut amz = String::new();
    for name in names {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .collect();
        amz.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    format!(
        "{method}\n{}\n{}\n{expires}\n{amz}{resource}",
        h("content-md5"),
        h("content-type")
    )
}

/// What SigV2 auth settles before the user's secret is needed.
pub(crate) struct Prechecked<'a> {
    access_key: &'a str,
    expires: i64,
    given: &'a str,
    /// The `?name=value&...` overrides appended to the resource ("" when none).
    overrides: String,
}

impl Prechecked<'_> {
    /// The access key whose secret [`finish`] needs.
    pub(crate) fn access_key(&self) -> &str {
        self.access_key
    }
}

/// Verifies a SigV2 presigned request.
pub async fn verify(
    parts: &Parts,
    query: &[(String, String)],
    secrets: &SecretCache,
) -> S3Result<Verified> {
    let p = precheck(parts, query)?;
    let secret = secrets.secret(p.access_key()).await?;
    finish(parts, p, &secret)
}

/// Everything of SigV2 auth that needs no secret: the form (method, object path, query
/// parameters) and the validity window.
pub(crate) fn precheck<'a>(
    parts: &Parts,
    query: &'a [(String, String)],
) -> S3Result<Prechecked<'a>> {
    let get = |n: &str| query.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let bad = |m: &str| S3Error::new(Code::AccessDenied, m.to_string());
    let access_key = get("AWSAccessKeyId").ok_or_else(|| bad("missing AWSAccessKeyId"))?;
    let expires: i64 = get("Expires")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("missing Expires"))?;
    let given = get("Signature").ok_or_else(|| bad("missing Signature"))?;
    let method = parts.method.as_str();
    if !matches!(method, "GET" | "HEAD" | "PUT") {
        return Err(bad(
            "SigV2 presigned URLs are accepted for GET, HEAD and PUT of an object only; \
             use SigV4 (X-Amz-Algorithm) for anything else",
        ));
    }
    let path = parts.uri.path().strip_prefix('/').unwrap_or("");
    if !path
        .split_once('/')
        .is_some_and(|(b, k)| !b.is_empty() && !k.is_empty())
    {
        return Err(bad(
            "SigV2 presigned URLs are accepted for path-style object URLs (/bucket/key) only",
        ));
    }
    let mut overrides: Vec<(&str, &str)> = Vec::new();
    for (k, v) in query {
        if AUTH_PARAMS.contains(&k.as_str()) {
            if query.iter().filter(|(k2, _)| k2 == k).count() > 1 {
                return Err(bad(&format!("{k} appears more than once")));
            }
        } else if OVERRIDES.contains(&k.as_str()) {
            if overrides.iter().any(|(o, _)| o == k) {
                return Err(bad(&format!("{k} appears more than once")));
            }
            overrides.push((k, v));
        } else {
            return Err(bad(&format!(
                "query parameter {k:?} is not accepted with a SigV2 presigned URL; use SigV4"
            )));
        }
    }
    overrides.sort_unstable();
    let overrides = overrides
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let now = super::now_secs();
    if now > expires {
        return Err(bad("Request has expired"));
    }
    if expires - now > MAX_VALIDITY_SECS {
        return Err(bad("Expires is more than 7 days (604800 seconds) ahead"));
    }
    Ok(Prechecked {
        access_key,
        expires,
        given,
        overrides,
    })
}

/// Checks the signature of a prechecked SigV2 request with the user's `secret`.
pub(crate) fn finish(parts: &Parts, p: Prechecked<'_>, secret: &str) -> S3Result<Verified> {
    let raw = parts.uri.path();
    let ok = [
        raw.to_string(),
        super::sigv4::uri_decode(raw).unwrap_or_default(),
    ]
    .iter()
    .any(|path| {
        let resource = if p.overrides.is_empty() {
            path.clone()
        } else {
            format!("{path}?{}", p.overrides)
        };
        let sts = string_to_sign(parts.method.as_str(), &parts.headers, p.expires, &resource);
        super::sigv4::constant_time_eq(&sign(secret, &sts), p.given)
    });
    if !ok {
        return Err(S3Error::new(
            Code::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    Ok(Verified {
        access_key: p.access_key.to_string(),
        payload: Payload::Unsigned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SigV2 query-string example of the S3 documentation.
    #[test]
    fn aws_doc_v2_query_example() {
        let sts = "GET\n\n\n1175139620\n/johnsmith/photos/puppy.jpg";
        assert_eq!(
            sign("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", sts),
            "NpgCjnDzrM+WFzoENXmpNDUsSn8="
        );
        assert_eq!(
            string_to_sign(
                "GET",
                &http::HeaderMap::new(),
                1175139620,
                "/johnsmith/photos/puppy.jpg"
            ),
            sts
        );
    }

    /// The canonicalized x-amz-* headers of the S3 documentation's SigV2 upload example.
    #[test]
    fn amz_headers_are_in_the_string_to_sign() {
        let mut h = http::HeaderMap::new();
        h.append(
            "x-amz-meta-reviewedby",
            "joe@johnsmith.net".parse().unwrap(),
        );
        h.append(
            "x-amz-meta-reviewedby",
            "jane@johnsmith.net".parse().unwrap(),
        );
        h.append("x-amz-acl", "public-read".parse().unwrap());
        h.append("content-type", "application/x-download".parse().unwrap());
        h.append("content-md5", "4gJE4saaMU4BqNR0kLY+lw==".parse().unwrap());
        h.append("x-amz-meta-filechecksum", "0x02661779".parse().unwrap());
        let sts = string_to_sign(
            "PUT",
            &h,
            1175139620,
            "/static.johnsmith.net/db-backup.dat.gz",
        );
        assert_eq!(
            sts,
            "PUT\n4gJE4saaMU4BqNR0kLY+lw==\napplication/x-download\n1175139620\n\
             x-amz-acl:public-read\n\
             x-amz-meta-filechecksum:0x02661779\n\
             x-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n\
             /static.johnsmith.net/db-backup.dat.gz"
        );
    }
}
