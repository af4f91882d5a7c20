//! The S3 operations, one file per area, each a thin adapter: S3 request → the client's
//! object API / typed master calls (`ctx.client.master().head_object(req)`) → S3 response.
//! Shared pieces live here: the request context, response builders and object-header
//! rendering.

pub mod attributes;
pub mod bucket;
pub mod copy;
pub mod delete;
pub mod list;
pub mod multipart;
pub mod multipart_checksum;
pub mod object_get;
pub mod object_put;

use crate::auth::Payload;
// Kept here for the handlers (`super::parse_http_date`).
pub use crate::dates::parse_http_date;
use crate::error::{Code, S3Error, S3Result};
use axum::body::Body;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use kdss_client::Client;
use kdss_proto::master as pb;

/// What a handler knows about its request.
pub struct Ctx {
    /// The client acting for the verified user.
    pub client: Client,
    /// The user's access key.
    pub user: String,
    /// The region we answer for.
    pub region: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Request headers.
    pub headers: HeaderMap,
    /// How the body is protected.
    pub payload: Payload,
}

impl Ctx {
    /// The bucket's info for the acting user: NoSuchBucket / AccessDenied when it cannot
    /// use it (HEAD bucket, location, versioning and empty listings ask only that).
    pub async fn bucket(&self, bucket: &str) -> S3Result<pb::BucketReply> {
        let req = pb::BucketRequest {
            name: bucket.into(),
        };
        Ok(self.client.master().get_bucket(req).await?)
    }

    /// A query parameter.
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// A request header as text.
    pub fn h(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A response with an XML body.
pub fn xml_response(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

/// A response without a body.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// Sets a header if the value is valid.
pub fn set_header(h: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        http::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        h.insert(n, v);
    }
}

/// RFC 7231 date of a time in ns.
pub fn http_date(ns: i64) -> String {
    let secs = (ns.max(0) / 1_000_000_000) as u64;
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Object metadata from PUT / CreateMultipartUpload / CopyObject(REPLACE) headers.
pub fn meta_from_headers(h: &HeaderMap) -> S3Result<pb::ObjectMeta> {
    let get = |n: &str| {
        h.get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut meta = pb::ObjectMeta {
        content_type: get("content-type"),
        content_encoding: strip_aws_chunked(&get("content-encoding")),
        content_disposition: get("content-disposition"),
        content_language: get("content-language"),
        cache_control: get("cache-control"),
        expires: get("expires"),
        ..Default::default()
    };
    let mut size = 0usize;
    for (name, value) in h {
        if let Some(k) = name.as_str().strip_prefix("x-amz-meta-") {
            let v = header_text(value.as_bytes());
            size += k.len() + v.len();
            meta.user.insert(k.to_string(), v);
        }
    }
    if size > 2048 {
        return Err(S3Error::new(
            Code::InvalidArgument,
            "Your metadata headers exceed the maximum allowed metadata size (2 KiB)",
        ));
    }
    Ok(meta)
}

/// A metadata header value as text: clients (botocore, the AWS SDKs) send non-ASCII values
/// as UTF-8 bytes; anything that is not UTF-8 is taken as latin-1, byte for byte.
fn header_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    }
}

/// A metadata value as a response header. HTTP clients read header bytes as latin-1
/// (botocore does), so text within latin-1 goes out as those bytes; text beyond it is
/// RFC 2047 encoded (`=?UTF-8?B?...?=`), as S3 does.
pub fn header_value_of(text: &str) -> Option<HeaderValue> {
    let latin1: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(c as u32).ok()).collect();
    match latin1 {
        Some(b) => HeaderValue::from_bytes(&b).ok(),
        None => {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
            HeaderValue::from_str(&format!("=?UTF-8?B?{b64}?=")).ok()
        }
    }
}

/// `Content-Encoding` without the transport-only `aws-chunked`.
fn strip_aws_chunked(v: &str) -> String {
    if !v.to_ascii_lowercase().contains("aws-chunked") {
        return v.trim().to_string();
    }
    v.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes the headers every GET/HEAD of an object carries (checksums: see
/// [`checksum_headers`]).
pub fn object_headers(h: &mut HeaderMap, info: &pb::ObjectInfo) {
    set_header(h, "etag", &info.etag);
    set_header(h, "last-modified", &http_date(info.mtime_ns));
    set_header(h, "accept-ranges", "bytes");
    let meta = info.meta.clone().unwrap_or_default();
    let ct = if meta.content_type.is_empty() {
        "binary/octet-stream"
    } else {
        &meta.content_type
    };
    set_header(h, "content-type", ct);
    for (name, v) in [
        ("content-encoding", &meta.content_encoding),
        ("content-disposition", &meta.content_disposition),
        ("content-language", &meta.content_language),
        ("cache-control", &meta.cache_control),
        ("expires", &meta.expires),
    ] {
        if !v.is_empty() {
            set_header(h, name, v);
        }
    }
    for (k, v) in &meta.user {
        if let (Some(value), Ok(name)) = (
            header_value_of(v),
            http::HeaderName::from_bytes(format!("x-amz-meta-{k}").as_bytes()),
        ) {
            h.insert(name, value);
        }
    }
}

/// Writes `x-amz-checksum-<algo>` for stored checksums and `x-amz-checksum-type` (the
/// object's type: COMPOSITE for multipart checksums of checksums, else FULL_OBJECT).
pub fn checksum_headers(
    h: &mut HeaderMap,
    checksums: &std::collections::HashMap<String, String>,
    checksum_type: &str,
) {
    let mut any = false;
    for (k, v) in checksums {
        if let Some(a) = crate::checksum::Algo::parse(k) {
            set_header(h, a.header(), v);
            any = true;
        }
    }
    if any {
        let t = if checksum_type.is_empty() {
            "FULL_OBJECT"
        } else {
            checksum_type
        };
        set_header(h, "x-amz-checksum-type", t);
    }
}

/// Validates a canned ACL header (we accept and ignore valid ones).
pub fn check_canned_acl(h: &HeaderMap) -> S3Result<()> {
    const OK: &[&str] = &[
        "private",
        "public-read",
        "public-read-write",
        "authenticated-read",
        "aws-exec-read",
        "bucket-owner-read",
        "bucket-owner-full-control",
        "log-delivery-write",
    ];
    match h.get("x-amz-acl").map(|v| v.to_str().unwrap_or("")) {
        Some(v) if !OK.contains(&v) => Err(S3Error::new(
            Code::InvalidArgument,
            format!("invalid canned ACL {v:?}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_metadata_goes_out_as_latin1_bytes_or_rfc2047() {
        // botocore sends "Hello World\xe9" as UTF-8 and reads response headers as latin-1
        // (s3-tests test_object_set_get_unicode_metadata).
        let text = header_text(b"Hello World\xc3\xa9");
        assert_eq!(text, "Hello World\u{e9}");
        assert_eq!(
            header_value_of(&text).unwrap().as_bytes(),
            b"Hello World\xe9"
        );
        // Bytes that are not UTF-8 are latin-1 and round-trip byte for byte.
        let raw = header_text(b"caf\xe9");
        assert_eq!(header_value_of(&raw).unwrap().as_bytes(), b"caf\xe9");
        // Beyond latin-1: RFC 2047.
        assert_eq!(
            header_value_of("\u{65e5}\u{672c}")
                .unwrap()
                .to_str()
                .unwrap(),
            "=?UTF-8?B?5pel5pys?="
        );
    }
}
