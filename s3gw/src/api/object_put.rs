//! PutObject, and the body → stripes path shared with UploadPart: the body streams
//! through the client's StreamWriter (stripes written, nothing committed), is verified at
//! its end (sha256, Content-MD5, x-amz-checksum-*), and only then committed with one
//! master call. A failed check leaves uncommitted stripes for GC and stores nothing.

use super::{Ctx, empty, meta_from_headers, set_header};
use crate::body::RequestBody;
use crate::checksum::Algo;
use crate::error::{Code, S3Error, S3Result};
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http::{Response, StatusCode};
use kdss_client::{StreamWriter, WrittenData};
use kdss_proto::master as pb;

/// Largest single PUT S3 accepts.
pub const MAX_PUT_BYTES: u64 = 5 << 30;

/// The Content-MD5 header decoded, `InvalidDigest` when malformed.
fn content_md5(ctx: &Ctx) -> S3Result<Option<[u8; 16]>> {
    decode_content_md5(ctx.headers.get("content-md5"))
}

/// A Content-MD5 value decoded: 16 bytes in base64, else `InvalidDigest`.
pub(crate) fn decode_content_md5(v: Option<&http::HeaderValue>) -> S3Result<Option<[u8; 16]>> {
    let Some(v) = v else {
        return Ok(None);
    };
    let bad = || {
        S3Error::new(
            Code::InvalidDigest,
            "The Content-MD5 you specified was not valid.",
        )
    };
    let v = v.to_str().map_err(|_| bad())?;
    let raw = B64.decode(v.trim()).map_err(|_| bad())?;
    let arr: [u8; 16] = raw.try_into().map_err(|_| bad())?;
    Ok(Some(arr))
}

/// What a streamed body produced (its ETag: [`WrittenData::etag`]).
pub struct Stored {
    pub written: WrittenData,
    pub checksum: Option<(Algo, String)>,
}

/// Streams the body through `writer` (a small body may come back inline unless the writer
/// runs [`without_inline`](kdss_client::StreamWriter::without_inline), as parts do),
/// verifies it, and returns what to commit.
pub async fn write_body(
    ctx: &Ctx,
    mut writer: StreamWriter,
    body: Body,
    max: u64,
) -> S3Result<Stored> {
    let md5 = content_md5(ctx)?;
    let mut rb = RequestBody::new(body, &ctx.headers, &ctx.payload)?;
    let chunked_te = ctx
        .h("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"));
    match rb.expected_len() {
        Some(n) if n > max => {
            return Err(S3Error::new(
                Code::EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size",
            ));
        }
        None if !chunked_te && !matches!(ctx.payload, crate::auth::Payload::Chunked { .. }) => {
            return Err(S3Error::new(
                Code::MissingContentLength,
                "You must provide the Content-Length HTTP header.",
            ));
        }
        _ => {}
    }
    let mut total = 0u64;
    while let Some(data) = rb.next().await? {
        total += data.len() as u64;
        if total > max {
            return Err(S3Error::new(
                Code::EntityTooLarge,
                "upload exceeds the maximum size",
            ));
        }
        writer.write(data).await?;
    }
    let written = writer.finish().await?;
    if let Some(want) = md5
        && want != written.md5
    {
        return Err(S3Error::new(
            Code::BadDigest,
            "The Content-MD5 you specified did not match what we received.",
        ));
    }
    Ok(Stored {
        written,
        checksum: rb.checksum(),
    })
}

/// PUT of a whole object.
pub async fn put_object(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    body: Body,
) -> S3Result<Response<Body>> {
    super::check_canned_acl(&ctx.headers)?;
    let mut meta = meta_from_headers(&ctx.headers)?;
    if key.ends_with('/') {
        let declared = ctx
            .h("x-amz-decoded-content-length")
            .or_else(|| ctx.h("content-length"))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if declared > 0 {
            return Err(S3Error::new(
                Code::InvalidObjectName,
                "a key ending in '/' is a directory and cannot have a body",
            ));
        }
    }
    if let Some(m) = ctx.h("if-none-match").filter(|v| v.trim() != "*")
        && let Ok(info) = ctx.client.stat_object(bucket, key).await
        && super::object_get::etag_matches(m, &info.etag)
    {
        return Err(S3Error::new(
            Code::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        ));
    }
    let stored = write_body(ctx, ctx.client.stream_writer(bucket), body, MAX_PUT_BYTES).await?;
    if let Some((a, v)) = &stored.checksum {
        meta.checksums.insert(a.name().to_string(), v.clone());
    }
    let req = pb::PutObjectRequest {
        meta: Some(meta),
        if_match: ctx.h("if-match").map(str::to_string),
        if_none_match_star: ctx.h("if-none-match").is_some_and(|v| v.trim() == "*"),
        ..stored.written.put_request(bucket, key)
    };
    let info = ctx.client.put_object(req).await?;
    let mut resp = empty(StatusCode::OK);
    let etag = Some(info.etag)
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| stored.written.etag());
    set_header(resp.headers_mut(), "etag", &etag);
    if let Some((a, v)) = &stored.checksum {
        set_header(resp.headers_mut(), a.header(), v);
    }
    Ok(resp)
}
