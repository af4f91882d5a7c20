//! SigV4 in the `Authorization` header: parse, rebuild the canonical request from the
//! signed headers only, compare in constant time, check the clock skew.

use super::{AuthSettings, Payload, Verified, chunked::ChunkSigner, secrets::SecretCache, sigv4};
use crate::error::{Code, S3Error, S3Result};
use http::request::Parts;

/// The fields of an `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
pub(crate) struct AuthHeader<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

pub(crate) fn parse(h: &str) -> S3Result<AuthHeader<'_>> {
    let malformed = |m: &str| S3Error::new(Code::AuthorizationHeaderMalformed, m.to_string());
    let rest = h.strip_prefix(sigv4::ALGORITHM).ok_or_else(|| {
        if h.starts_with("AWS ") {
            S3Error::new(Code::NotImplemented, "SigV2 is not supported; use SigV4")
        } else {
            malformed("unsupported authorization type")
        }
    })?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    Ok(AuthHeader {
        credential: credential.ok_or_else(|| malformed("missing Credential"))?,
        signed_headers: signed_headers.ok_or_else(|| malformed("missing SignedHeaders"))?,
        signature: signature.ok_or_else(|| malformed("missing Signature"))?,
    })
}

/// What header auth settles before the user's secret is needed.
pub(crate) struct Prechecked<'a> {
    ah: AuthHeader<'a>,
    cred: super::CredentialScope,
    amz_date: String,
    payload_hash: String,
}

impl Prechecked<'_> {
    /// The access key whose secret [`finish`] needs.
    pub(crate) fn access_key(&self) -> &str {
        &self.cred.access_key
    }
}

/// Verifies header auth and says how the body must be checked.
pub async fn verify(
    parts: &Parts,
    value: &str,
    query: &[(String, String)],
    secrets: &SecretCache,
    settings: &AuthSettings,
) -> S3Result<Verified> {
    let p = precheck(parts, value, settings)?;
    let secret = secrets.secret(p.access_key()).await?;
    finish(parts, query, p, &secret)
}

/// Everything of header auth that needs no secret: the header's form, the credential
/// scope, that `host` and every `x-amz-*` header are signed, the request time.
pub(crate) fn precheck<'a>(
    parts: &Parts,
    value: &'a str,
    settings: &AuthSettings,
) -> S3Result<Prechecked<'a>> {
    let ah = parse(value)?;
    let cred = super::parse_credential(ah.credential, Code::AuthorizationHeaderMalformed)?;
    let headers = &parts.headers;
    super::require_signed(headers, ah.signed_headers)?;
    // x-amz-date, or the Date header (botocore signs Date when one is present); the string
    // to sign always carries the ISO 8601 form.
    let (amz_date, t) = match headers.get("x-amz-date").and_then(|v| v.to_str().ok()) {
        Some(d) => {
            let t = super::parse_amz_date(d)
                .ok_or_else(|| S3Error::new(Code::AccessDenied, "malformed x-amz-date"))?;
            (d.to_string(), t)
        }
        None => {
            let d = headers
                .get(http::header::DATE)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| S3Error::new(Code::AccessDenied, "missing x-amz-date"))?;
            let t = crate::dates::parse_http_date(d)
                .ok_or_else(|| S3Error::new(Code::AccessDenied, "malformed Date"))?;
            (
                crate::dates::amz_date(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(t as u64),
                ),
                t,
            )
        }
    };
    if (super::now_secs() - t).unsigned_abs() > settings.max_skew_secs {
        return Err(S3Error::new(
            Code::RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large.",
        ));
    }
    if !amz_date.starts_with(&cred.date) {
        return Err(S3Error::new(
            Code::AuthorizationHeaderMalformed,
            "credential date does not match x-amz-date",
        ));
    }
    let payload_hash = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            S3Error::new(
                Code::InvalidRequest,
                "Missing required header for this request: x-amz-content-sha256",
            )
        })?
        .to_string();
    Ok(Prechecked {
        ah,
        cred,
        amz_date,
        payload_hash,
    })
}

/// Checks the signature of a prechecked request with the user's `secret`.
pub(crate) fn finish(
    parts: &Parts,
    query: &[(String, String)],
    p: Prechecked<'_>,
    secret: &str,
) -> S3Result<Verified> {
    let Prechecked {
        ah,
        cred,
        amz_date,
        payload_hash,
    } = p;
    let headers = &parts.headers;
    let key = sigv4::signing_key(secret, &cred.date, &cred.region, "s3");
    let hv = super::signed_header_values(headers, ah.signed_headers)?;
    let cq = sigv4::canonical_query(query, None);
    let method = parts.method.as_str();
    let ok = super::canonical_uris(parts.uri.path()).iter().any(|uri| {
        let cr = sigv4::canonical_request(method, uri, &cq, &hv, ah.signed_headers, &payload_hash);
        let want = sigv4::signature(&key, &sigv4::string_to_sign(&amz_date, &cred.scope, &cr));
        sigv4::constant_time_eq(&want, ah.signature)
    });
    if !ok {
        return Err(S3Error::new(
            Code::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    let signer = || ChunkSigner {
        key,
        amz_date: amz_date.clone(),
        scope: cred.scope.clone(),
        seed: ah.signature.to_string(),
    };
    let payload = match payload_hash.as_str() {
        "UNSIGNED-PAYLOAD" => Payload::Unsigned,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Payload::Chunked {
            signer: Some(signer()),
            trailer: false,
        },
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => Payload::Chunked {
            signer: Some(signer()),
            trailer: true,
        },
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Payload::Chunked {
            signer: None,
            trailer: true,
        },
        h if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Payload::Sha256(h.to_ascii_lowercase())
        }
        other => {
            return Err(S3Error::new(
                Code::InvalidArgument,
                format!("x-amz-content-sha256 {other:?} is not supported"),
            ));
        }
    };
    Ok(Verified {
        access_key: cred.access_key,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_fields() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
        let a = parse(h).unwrap();
        assert_eq!(
            a.signed_headers,
            "host;range;x-amz-content-sha256;x-amz-date"
        );
        assert!(a.credential.starts_with("AKIAIOSFODNN7EXAMPLE/"));
        assert!(parse("AWS4-HMAC-SHA256 Credential=x").is_err());
        assert_eq!(
            parse("AWS AK:sig").err().unwrap().code,
            Code::NotImplemented
        );
    }
}
