//! ListObjects v1 and v2 and ListObjectVersions (answered on unversioned buckets: every
//! object is its only version, id `null`). The master returns keys in UTF-8 byte order
//! of full keys with common prefixes folded; this file maps markers, tokens and
//! encoding-type=url onto that one RPC.

use super::{Ctx, xml_response};
use crate::auth::sigv4::uri_encode;
use crate::error::{Code, S3Error, S3Result};
use crate::xml::{XmlWriter, iso8601};
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use http::{Response, StatusCode};
use kdss_proto::master as pb;

/// Largest page S3 returns.
const MAX_KEYS: u32 = 1000;

fn max_keys(ctx: &Ctx, name: &str) -> S3Result<u32> {
    match ctx.q(name) {
        None => Ok(MAX_KEYS),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n.min(MAX_KEYS as i64) as u32),
            _ => Err(S3Error::new(
                Code::InvalidArgument,
                format!("Provided {name} not an integer or within integer range"),
            )),
        },
    }
}

async fn fetch(
    ctx: &Ctx,
    bucket: &str,
    prefix: &str,
    delimiter: &str,
    start_after: &str,
    max: u32,
) -> S3Result<pb::ListObjectsReply> {
    if max == 0 {
        ctx.bucket(bucket).await?;
        return Ok(pb::ListObjectsReply::default());
    }
    let req = pb::ListObjectsRequest {
        bucket: bucket.into(),
        prefix: prefix.into(),
        delimiter: delimiter.into(),
        start_after: start_after.into(),
        max_keys: max,
    };
    ctx.client
        .master()
        .list_objects(req)
        .await
        .map_err(crate::S3Error::from)
}

struct Enc(bool);
impl Enc {
    fn e(&self, s: &str) -> String {
        if self.0 {
            uri_encode(s, false)
        } else {
            s.to_string()
        }
    }
}

fn object(w: &mut XmlWriter, enc: &Enc, o: &pb::ObjectInfo, owner: bool) {
    w.elem("Key", &enc.e(&o.key))
        .elem("LastModified", &iso8601(o.mtime_ns))
        .elem("ETag", &o.etag)
        .elem("Size", &o.size.to_string())
        .elem("StorageClass", "STANDARD");
    if owner {
        w.open("Owner")
            .elem("ID", &o.owner)
            .elem("DisplayName", &o.owner)
            .close("Owner");
    }
}

/// GET bucket (list-type=1 or 2).
pub async fn list_objects(ctx: &Ctx, bucket: &str, v2: bool) -> S3Result<Response<Body>> {
    let prefix = ctx.q("prefix").unwrap_or("").to_string();
    let delimiter = ctx.q("delimiter").unwrap_or("").to_string();
    let max = max_keys(ctx, "max-keys")?;
    let enc = match ctx.q("encoding-type") {
        None => Enc(false),
        Some(t) if t.eq_ignore_ascii_case("url") => Enc(true),
        Some(t) => {
            return Err(S3Error::new(
                Code::InvalidArgument,
                format!("Invalid Encoding Method specified in Request: {t}"),
            ));
        }
    };
    let token = ctx.q("continuation-token");
    let start_after = if v2 {
        match token {
            Some(t) => {
                let raw = TOKEN.decode(t).map_err(|_| {
                    S3Error::new(
                        Code::InvalidArgument,
                        "The continuation token provided is incorrect",
                    )
                })?;
                String::from_utf8(raw)
                    .map_err(|_| S3Error::new(Code::InvalidArgument, "bad continuation token"))?
            }
            None => ctx.q("start-after").unwrap_or("").to_string(),
        }
    } else {
        ctx.q("marker").unwrap_or("").to_string()
    };
    let r = fetch(ctx, bucket, &prefix, &delimiter, &start_after, max).await?;
    let mut w = XmlWriter::new("ListBucketResult");
    // botocore decodes the top-level Prefix only for v2.
    let top_prefix = if v2 { enc.e(&prefix) } else { prefix.clone() };
    w.elem("Name", bucket).elem("Prefix", &top_prefix);
    if v2 {
        if let Some(t) = token {
            w.elem("ContinuationToken", t);
        }
        if let Some(s) = ctx.q("start-after") {
            w.elem("StartAfter", &enc.e(s));
        }
        w.elem(
            "KeyCount",
            &(r.objects.len() + r.common_prefixes.len()).to_string(),
        );
    } else {
        w.elem("Marker", &enc.e(&start_after));
    }
    w.elem("MaxKeys", &max.to_string());
    if !delimiter.is_empty() {
        w.elem("Delimiter", &enc.e(&delimiter));
    }
    if enc.0 {
        w.elem("EncodingType", "url");
    }
    w.elem("IsTruncated", if r.is_truncated { "true" } else { "false" });
    if r.is_truncated {
        let next = if r.next_marker.is_empty() {
            let last_obj = r.objects.last().map(|o| o.key.clone()).unwrap_or_default();
            let last_pre = r.common_prefixes.last().cloned().unwrap_or_default();
            last_obj.max(last_pre)
        } else {
            r.next_marker.clone()
        };
        if v2 {
            w.elem("NextContinuationToken", &TOKEN.encode(next.as_bytes()));
        } else {
            w.elem("NextMarker", &enc.e(&next));
        }
    }
    let owner = !v2 || ctx.q("fetch-owner") == Some("true");
    for o in &r.objects {
        w.open("Contents");
        object(&mut w, &enc, o, owner);
        w.close("Contents");
    }
    for p in &r.common_prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", &enc.e(p))
            .close("CommonPrefixes");
    }
    Ok(xml_response(StatusCode::OK, w.finish("ListBucketResult")))
}

/// GET ?versions on an unversioned bucket.
pub async fn list_versions(ctx: &Ctx, bucket: &str) -> S3Result<Response<Body>> {
    let prefix = ctx.q("prefix").unwrap_or("").to_string();
    let delimiter = ctx.q("delimiter").unwrap_or("").to_string();
    let max = max_keys(ctx, "max-keys")?;
    let key_marker = ctx.q("key-marker").unwrap_or("").to_string();
    let enc = Enc(ctx
        .q("encoding-type")
        .is_some_and(|t| t.eq_ignore_ascii_case("url")));
    let r = fetch(ctx, bucket, &prefix, &delimiter, &key_marker, max).await?;
    let mut w = XmlWriter::new("ListVersionsResult");
    w.elem("Name", bucket)
        .elem("Prefix", &enc.e(&prefix))
        .elem("KeyMarker", &enc.e(&key_marker))
        .elem("VersionIdMarker", ctx.q("version-id-marker").unwrap_or(""))
        .elem("MaxKeys", &max.to_string());
    if !delimiter.is_empty() {
        w.elem("Delimiter", &enc.e(&delimiter));
    }
    if enc.0 {
        w.elem("EncodingType", "url");
    }
    w.elem("IsTruncated", if r.is_truncated { "true" } else { "false" });
    if r.is_truncated {
        w.elem("NextKeyMarker", &enc.e(&r.next_marker))
            .elem("NextVersionIdMarker", "null");
    }
    for o in &r.objects {
        w.open("Version");
        w.elem("Key", &enc.e(&o.key))
            .elem("VersionId", "null")
            .elem("IsLatest", "true");
        w.elem("LastModified", &iso8601(o.mtime_ns))
            .elem("ETag", &o.etag)
            .elem("Size", &o.size.to_string())
            .elem("StorageClass", "STANDARD");
        w.open("Owner")
            .elem("ID", &o.owner)
            .elem("DisplayName", &o.owner)
            .close("Owner");
        w.close("Version");
    }
    for p in &r.common_prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", &enc.e(p))
            .close("CommonPrefixes");
    }
    Ok(xml_response(StatusCode::OK, w.finish("ListVersionsResult")))
}
