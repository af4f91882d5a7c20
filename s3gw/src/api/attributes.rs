//! GetObjectAttributes (`GET /bucket/key?attributes`): ETag, Checksum, ObjectParts,
//! StorageClass and ObjectSize as the `x-amz-object-attributes` header asks, from one
//! HeadObject. Parts are those recorded at CompleteMultipart, paged with
//! `x-amz-max-parts` / `x-amz-part-number-marker` (part numbers are positions, 1-based).

use super::object_get::{Conditions, recorded_parts};
use super::{Ctx, http_date, set_header, xml_response};
use crate::checksum::Algo;
use crate::error::{Code, S3Error, S3Result};
use crate::xml::XmlWriter;
use axum::body::Body;
use http::{Response, StatusCode};
use kdss_proto::master as pb;

/// The attributes a request may name.
const KNOWN: &[&str] = &[
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];

fn header_u32(ctx: &Ctx, name: &str, default: u32) -> S3Result<u32> {
    match ctx.h(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| S3Error::new(Code::InvalidArgument, format!("{name} must be an integer"))),
    }
}

/// GET ?attributes.
pub async fn get_attributes(ctx: &Ctx, bucket: &str, key: &str) -> S3Result<Response<Body>> {
    // One header with a comma-separated list, or the header repeated (the Rust SDK).
    let wanted: Vec<String> = ctx
        .headers
        .get_all("x-amz-object-attributes")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    if wanted.is_empty() {
        return Err(S3Error::new(
            Code::InvalidArgument,
            "x-amz-object-attributes names no attribute",
        ));
    }
    if let Some(a) = wanted.iter().find(|a| !KNOWN.contains(&a.as_str())) {
        return Err(S3Error::new(
            Code::InvalidArgument,
            format!("unknown object attribute {a:?}"),
        ));
    }
    let max_parts = header_u32(ctx, "x-amz-max-parts", 1000)?.min(1000);
    let marker = header_u32(ctx, "x-amz-part-number-marker", 0)?;
    let req = pb::HeadObjectRequest {
        bucket: bucket.into(),
        key: key.into(),
        with_extents: false,
    };
    let reply: pb::HeadObjectReply = ctx.client.master().head_object(req).await?;
    let info = reply.info.unwrap_or_default();
    Conditions::from_headers(&ctx.headers, "").check(&info.etag, info.mtime_ns, true)?;
    let mut meta = info.meta.clone().unwrap_or_default();
    if recorded_parts(&info).is_some() {
        super::multipart_checksum::derive_from_parts(&mut meta);
    }
    let want = |a: &str| wanted.iter().any(|w| w == a);
    let mut w = XmlWriter::new("GetObjectAttributesResponse");
    if want("ETag") {
        w.elem("ETag", info.etag.trim_matches('"'));
    }
    let checksum = meta
        .checksums
        .iter()
        .find_map(|(k, v)| Some((Algo::parse(k)?, v)));
    if want("Checksum")
        && let Some((a, v)) = checksum
    {
        let t = if meta.checksum_type.is_empty() {
            "FULL_OBJECT"
        } else {
            &meta.checksum_type
        };
        w.open("Checksum")
            .elem(&format!("Checksum{}", a.name()), v)
            .elem("ChecksumType", t)
            .close("Checksum");
    }
    if want("ObjectParts")
        && let Some(parts) = recorded_parts(&info)
    {
        let start = (marker as usize).min(parts.len());
        let end = (start + max_parts as usize).min(parts.len());
        let truncated = end < parts.len();
        w.open("ObjectParts")
            .elem("PartsCount", &parts.len().to_string())
            .elem("PartNumberMarker", &marker.to_string())
            .elem("NextPartNumberMarker", &end.to_string())
            .elem("MaxParts", &max_parts.to_string())
            .elem("IsTruncated", if truncated { "true" } else { "false" });
        for (i, p) in parts[start..end].iter().enumerate() {
            w.open("Part")
                .elem("PartNumber", &(start + i + 1).to_string())
                .elem("Size", &p.size.to_string());
            let mut sums: Vec<_> = p
                .checksums
                .iter()
                .filter_map(|(k, v)| Some((Algo::parse(k)?, v)))
                .collect();
            sums.sort_by_key(|(a, _)| a.name());
            for (a, v) in sums {
                w.elem(&format!("Checksum{}", a.name()), v);
            }
            w.close("Part");
        }
        w.close("ObjectParts");
    }
    if want("StorageClass") {
        w.elem("StorageClass", "STANDARD");
    }
    if want("ObjectSize") {
        w.elem("ObjectSize", &info.size.to_string());
    }
    let mut resp = xml_response(StatusCode::OK, w.finish("GetObjectAttributesResponse"));
    set_header(
        resp.headers_mut(),
        "last-modified",
        &http_date(info.mtime_ns),
    );
    Ok(resp)
}
