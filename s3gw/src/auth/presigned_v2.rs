//! Legacy SigV2 query-string auth (`AWSAccessKeyId`, `Expires`, `Signature`), accepted for
//! GET/HEAD/PUT presigned URLs only because s3cmd `signurl` still produces them. Header
//! SigV2 is refused (NotImplemented).

use super::{Payload, Verified, secrets::SecretCache};
use crate::error::{Code, S3Error, S3Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use http::request::Parts;
use sha1::Sha1;

fn sign(secret: &str, sts: &str) -> String {
    let mut m = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(sts.as_bytes());
    B64.encode(m.finalize().into_bytes())
}

/// Verifies a SigV2 presigned request.
pub async fn verify(
    parts: &Parts,
    query: &[(String, String)],
    secrets: &SecretCache,
) -> S3Result<Verified> {
    let get = |n: &str| query.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let bad = |m: &str| S3Error::new(Code::AccessDenied, m.to_string());
    let access_key = get("AWSAccessKeyId").ok_or_else(|| bad("missing AWSAccessKeyId"))?;
    let expires: i64 = get("Expires")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("missing Expires"))?;
    let given = get("Signature").ok_or_else(|| bad("missing Signature"))?;
    if super::now_secs() > expires {
        return Err(bad("Request has expired"));
    }
    let h = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let secret = secrets.secret(access_key).await?;
    let raw = parts.uri.path();
    let ok = [
        raw.to_string(),
        super::sigv4::uri_decode(raw).unwrap_or_default(),
    ]
    .iter()
    .any(|p| {
        let sts = format!(
            "{}\n{}\n{}\n{expires}\n{p}",
            parts.method.as_str(),
            h("content-md5"),
            h("content-type")
        );
        super::sigv4::constant_time_eq(&sign(&secret, &sts), given)
    });
    if !ok {
        return Err(S3Error::new(
            Code::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    Ok(Verified {
        access_key: access_key.to_string(),
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
    }
}
