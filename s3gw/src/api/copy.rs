//! CopyObject (the master shares the source's extents: no data is copied) and
//! UploadPartCopy (a source range read through the client and written as a new part).
//! Both honour `x-amz-copy-source-if-*`.

use super::object_get::Conditions;
use super::{Ctx, meta_from_headers, xml_response};
use crate::error::{Code, S3Error, S3Result};
use crate::xml::{XmlWriter, iso8601};
use axum::body::Body;
use futures::StreamExt;
use http::{Response, StatusCode};
use kdss_proto::master as pb;

/// The decoded `x-amz-copy-source`: (bucket, key).
pub fn parse_copy_source(v: &str) -> S3Result<(String, String)> {
    let v = v.split_once("?versionId=").map(|(a, _)| a).unwrap_or(v);
    let decoded = crate::auth::sigv4::uri_decode(v)
        .ok_or_else(|| S3Error::new(Code::InvalidArgument, "copy source is not UTF-8"))?;
    let d = decoded.strip_prefix('/').unwrap_or(&decoded);
    match d.split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() => Ok((b.to_string(), k.to_string())),
        _ => Err(S3Error::new(
            Code::InvalidArgument,
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )),
    }
}

/// The source named by `x-amz-copy-source`.
fn copy_source(ctx: &Ctx) -> S3Result<(String, String)> {
    parse_copy_source(ctx.h("x-amz-copy-source").unwrap_or_default())
}

/// The `x-amz-copy-source-if-*` conditions against the source's info.
fn check_source(ctx: &Ctx, info: &pb::ObjectInfo) -> S3Result<()> {
    Conditions::from_headers(&ctx.headers, "x-amz-copy-source-").check(
        &info.etag,
        info.mtime_ns,
        false,
    )
}

/// PUT with x-amz-copy-source.
pub async fn copy_object(ctx: &Ctx, bucket: &str, key: &str) -> S3Result<Response<Body>> {
    let (sb, sk) = copy_source(ctx)?;
    check_source(ctx, &ctx.client.stat_object(&sb, &sk).await?)?;
    let replace = match ctx.h("x-amz-metadata-directive").unwrap_or("COPY") {
        "COPY" => false,
        "REPLACE" => true,
        other => {
            return Err(S3Error::new(
                Code::InvalidArgument,
                format!("Unknown metadata directive {other:?}"),
            ));
        }
    };
    if sb == bucket && sk == key && !replace {
        return Err(S3Error::new(
            Code::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let req = pb::CopyObjectRequest {
        src_bucket: sb,
        src_key: sk,
        dst_bucket: bucket.into(),
        dst_key: key.into(),
        replace_meta: replace,
        meta: if replace {
            Some(meta_from_headers(&ctx.headers)?)
        } else {
            None
        },
    };
    let reply: pb::ObjectReply = ctx.client.master().copy_object(req).await?;
    let info = reply.info.unwrap_or_default();
    let mut w = XmlWriter::new("CopyObjectResult");
    w.elem("LastModified", &iso8601(info.mtime_ns))
        .elem("ETag", &info.etag);
    Ok(xml_response(StatusCode::OK, w.finish("CopyObjectResult")))
}

/// The strict `x-amz-copy-source-range` (`bytes=a-b`, inside the source).
pub(crate) fn copy_range(v: Option<&str>, size: u64) -> S3Result<(u64, u64)> {
    let Some(v) = v else { return Ok((0, size)) };
    let bad = || {
        S3Error::new(
            Code::InvalidArgument,
            format!(
                "The x-amz-copy-source-range value {v:?} must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy, within the source of size {size}"
            ),
        )
    };
    let spec = v.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let a: u64 = a.parse().map_err(|_| bad())?;
    let b: u64 = b.parse().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    if b >= size {
        return Err(S3Error::new(
            Code::InvalidRange,
            format!("The requested range {v:?} is not satisfiable for a source of {size} bytes"),
        ));
    }
    Ok((a, b - a + 1))
}

/// UploadPartCopy.
pub async fn upload_part_copy(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part: u32,
) -> S3Result<Response<Body>> {
    let (sb, sk) = copy_source(ctx)?;
    let (info, reader) = ctx.client.open_object(&sb, &sk).await?;
    check_source(ctx, &info)?;
    let (offset, len) = copy_range(ctx.h("x-amz-copy-source-range"), info.size)?;
    let mut writer = ctx.client.stream_writer(bucket).without_inline();
    if len > 0 {
        let mut stream = Box::pin(reader.stream(offset, len));
        while let Some(piece) = stream.next().await {
            writer.write(piece?).await?;
        }
    }
    let w = writer.finish().await?;
    let etag = w.etag();
    let p = ctx
        .client
        .put_part(w.part_request(bucket, key, upload_id, part))
        .await?;
    let mut x = XmlWriter::new("CopyPartResult");
    x.elem("LastModified", &iso8601(p.mtime_ns))
        .elem("ETag", &etag);
    Ok(xml_response(StatusCode::OK, x.finish("CopyPartResult")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_forms() {
        assert_eq!(
            parse_copy_source("/b/k%20x").unwrap(),
            ("b".into(), "k x".into())
        );
        assert_eq!(
            parse_copy_source("b/a/b?versionId=null").unwrap(),
            ("b".into(), "a/b".into())
        );
        assert!(parse_copy_source("b").is_err());
    }

    #[test]
    fn copy_range_is_strict() {
        assert_eq!(
            copy_range(Some("bytes=0-10"), 10).unwrap_err().code,
            Code::InvalidRange
        );
        assert_eq!(copy_range(Some("bytes=0-9"), 10).unwrap(), (0, 10));
        for bad in ["bytes=2-1", "0-1", "bytes=-1-200", "bytes=1-"] {
            assert_eq!(
                copy_range(Some(bad), 10).unwrap_err().code,
                Code::InvalidArgument,
                "{bad}"
            );
        }
    }
}
