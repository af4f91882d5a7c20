//! Multipart uploads: Create, UploadPart (a part's stripes committed as the part),
//! Complete (the master stitches parts by extent, computes the md5-of-md5s-N ETag and
//! refuses InvalidPart / InvalidPartOrder / EntityTooSmall), Abort, ListParts,
//! ListMultipartUploads. An upload in progress is not an object until Complete.

use super::object_get::etag_matches;
use super::object_put::write_body;
use super::{Ctx, empty, meta_from_headers, set_header, xml_response};
use crate::body::RequestBody;
use crate::checksum::Algo;
use crate::error::{Code, S3Error, S3Result};
use crate::xml::{self, XmlWriter, iso8601};
use axum::body::Body;
use http::{Response, StatusCode};
use kdss_proto::master as pb;

/// POST ?uploads.
pub async fn create(ctx: &Ctx, bucket: &str, key: &str) -> S3Result<Response<Body>> {
    super::check_canned_acl(&ctx.headers)?;
    let meta = meta_from_headers(&ctx.headers)?;
    let req = pb::CreateMultipartRequest {
        bucket: bucket.into(),
        key: key.into(),
        meta: Some(meta),
    };
    let r: pb::CreateMultipartReply = ctx.client.master().create_multipart(req).await?;
    let mut w = XmlWriter::new("InitiateMultipartUploadResult");
    w.elem("Bucket", bucket)
        .elem("Key", key)
        .elem("UploadId", &r.upload_id);
    let mut resp = xml_response(StatusCode::OK, w.finish("InitiateMultipartUploadResult"));
    if let Some(a) = ctx.h("x-amz-checksum-algorithm").and_then(Algo::parse) {
        set_header(resp.headers_mut(), "x-amz-checksum-algorithm", a.name());
        let t = ctx
            .h("x-amz-checksum-type")
            .map(str::to_ascii_uppercase)
            .unwrap_or_else(|| {
                super::multipart_checksum::default_type(a)
                    .as_str()
                    .to_string()
            });
        set_header(resp.headers_mut(), "x-amz-checksum-type", &t);
    }
    Ok(resp)
}

/// PUT ?partNumber&uploadId.
pub async fn upload_part(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part: u32,
    body: Body,
) -> S3Result<Response<Body>> {
    let writer = ctx.client.stream_writer(bucket).without_inline();
    let stored = write_body(ctx, writer, body, super::object_put::MAX_PUT_BYTES).await?;
    let req = pb::PutPartRequest {
        checksums: stored
            .checksum
            .iter()
            .map(|(a, v)| (a.name().to_string(), v.clone()))
            .collect(),
        ..stored.written.part_request(bucket, key, upload_id, part)
    };
    ctx.client.put_part(req).await?;
    let mut resp = empty(StatusCode::OK);
    set_header(resp.headers_mut(), "etag", &stored.written.etag());
    if let Some((a, v)) = &stored.checksum {
        set_header(resp.headers_mut(), a.header(), v);
    }
    Ok(resp)
}

/// The md5-of-md5s-N ETag that `parts` stitch to (unquoted), if every ETag is an md5.
fn multipart_etag(parts: &[xml::CompletePartXml]) -> Option<String> {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    for p in parts {
        h.update(hex::decode(p.etag.trim().trim_matches('"')).ok()?);
    }
    Some(format!("{}-{}", hex::encode(h.finalize()), parts.len()))
}

/// POST ?uploadId.
pub async fn complete(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    upload_id: &str,
    body: Body,
) -> S3Result<Response<Body>> {
    let raw = RequestBody::with_checksums(body, &ctx.headers, &ctx.payload, false)?
        .collect(4 << 20)
        .await?;
    let mut doc: xml::CompleteMultipartXml = xml::parse(&raw)?;
    // A part listed twice in a row (a resent part) counts once, with its last ETag.
    let mut parts: Vec<xml::CompletePartXml> = Vec::with_capacity(doc.parts.len());
    for p in doc.parts.drain(..) {
        match parts.last_mut() {
            Some(last) if last.part_number == p.part_number => *last = p,
            _ => parts.push(p),
        }
    }
    doc.parts = parts;
    if doc.parts.is_empty() {
        return Err(S3Error::new(
            Code::MalformedXML,
            "You must specify at least one part",
        ));
    }
    let if_match = ctx.h("if-match");
    let if_none_match = ctx.h("if-none-match");
    if if_match.is_some() || if_none_match.is_some() {
        let cur = ctx
            .client
            .stat_object(bucket, key)
            .await
            .map_err(S3Error::from);
        let etag = match cur {
            Ok(info) => Some(info.etag),
            Err(e) if e.code == Code::NoSuchKey => None,
            Err(e) => return Err(e),
        };
        let failed = || {
            S3Error::new(
                Code::PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold",
            )
        };
        match (if_match, &etag) {
            (Some(_), None) => {
                return Err(S3Error::new(
                    Code::NoSuchKey,
                    "The specified key does not exist.",
                ));
            }
            (Some(m), Some(e)) if !etag_matches(m, e) => return Err(failed()),
            _ => {}
        }
        if let (Some(m), Some(e)) = (if_none_match, &etag)
            && etag_matches(m, e)
        {
            return Err(failed());
        }
    }
    let checksum =
        super::multipart_checksum::object_checksum(ctx, bucket, key, upload_id, &doc.parts).await?;
    let req = pb::CompleteMultipartRequest {
        bucket: bucket.into(),
        key: key.into(),
        upload_id: upload_id.into(),
        parts: doc
            .parts
            .iter()
            .map(|p| pb::CompletePart {
                part_number: p.part_number,
                etag: p.etag.clone(),
                checksums: Algo::ALL
                    .into_iter()
                    .filter_map(|a| Some((a.name().to_string(), p.checksum(a)?)))
                    .collect(),
            })
            .collect(),
        checksums: checksum
            .iter()
            .map(|(a, v, _)| (a.name().to_string(), v.clone()))
            .collect(),
        checksum_type: checksum
            .as_ref()
            .map(|(_, _, t)| t.as_str().to_string())
            .unwrap_or_default(),
    };
    let info = match ctx
        .client
        .master()
        .complete_multipart(req)
        .await
        .map_err(crate::S3Error::from)
    {
        Ok(pb::ObjectReply { info }) => info.unwrap_or_default(),
        // Completing an upload twice answers the same (S3 does): the object is there with
        // the ETag these parts give.
        Err(e) if e.code == Code::NoSuchUpload => {
            let want = multipart_etag(&doc.parts).ok_or(e)?;
            let gone = || S3Error::new(Code::NoSuchUpload, "The specified upload does not exist.");
            let info = ctx
                .client
                .stat_object(bucket, key)
                .await
                .map_err(|_| gone())?;
            if info.etag.trim_matches('"') != want {
                return Err(gone());
            }
            info
        }
        Err(e) => return Err(e),
    };
    let mut w = XmlWriter::new("CompleteMultipartUploadResult");
    w.elem("Location", &format!("/{bucket}/{key}"))
        .elem("Bucket", bucket)
        .elem("Key", key)
        .elem("ETag", &info.etag);
    // The stored checksum (also when this Complete repeats an earlier one).
    let mut meta = info.meta.unwrap_or_default();
    super::multipart_checksum::derive_from_parts(&mut meta);
    if let Some((name, v)) = meta
        .checksums
        .iter()
        .find(|(k, _)| Algo::parse(k).is_some())
    {
        let t = if meta.checksum_type.is_empty() {
            "FULL_OBJECT"
        } else {
            &meta.checksum_type
        };
        w.elem(&format!("Checksum{}", name.to_ascii_uppercase()), v)
            .elem("ChecksumType", t);
    }
    Ok(xml_response(
        StatusCode::OK,
        w.finish("CompleteMultipartUploadResult"),
    ))
}

/// DELETE ?uploadId.
pub async fn abort(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> S3Result<Response<Body>> {
    let req = pb::AbortMultipartRequest {
        bucket: bucket.into(),
        key: key.into(),
        upload_id: upload_id.into(),
    };
    let _: pb::Empty = ctx.client.master().abort_multipart(req).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

fn owner(w: &mut XmlWriter, tag: &str, id: &str) {
    w.open(tag)
        .elem("ID", id)
        .elem("DisplayName", id)
        .close(tag);
}

fn parse_max(v: Option<&str>, default: u32, name: &str) -> S3Result<u32> {
    match v {
        None => Ok(default),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n.min(default as i64) as u32)
            .ok_or_else(|| {
                S3Error::new(
                    Code::InvalidArgument,
                    format!("{name} must be a non-negative integer"),
                )
            }),
    }
}

/// GET ?uploadId.
pub async fn list_parts(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> S3Result<Response<Body>> {
    let max = parse_max(ctx.q("max-parts"), 1000, "max-parts")?;
    let marker: u32 = ctx
        .q("part-number-marker")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let req = pb::ListPartsRequest {
        bucket: bucket.into(),
        key: key.into(),
        upload_id: upload_id.into(),
        part_number_marker: marker,
        max_parts: max,
    };
    let r: pb::ListPartsReply = ctx.client.master().list_parts(req).await?;
    let mut w = XmlWriter::new("ListPartsResult");
    w.elem("Bucket", bucket)
        .elem("Key", key)
        .elem("UploadId", upload_id);
    owner(&mut w, "Initiator", &ctx.user);
    owner(&mut w, "Owner", &ctx.user);
    w.elem("StorageClass", "STANDARD")
        .elem("PartNumberMarker", &marker.to_string())
        .elem("MaxParts", &max.to_string())
        .elem("IsTruncated", if r.is_truncated { "true" } else { "false" });
    let next = r
        .parts
        .last()
        .map(|p| p.part_number)
        .unwrap_or(r.next_part_number_marker);
    w.elem("NextPartNumberMarker", &next.to_string());
    for p in &r.parts {
        w.open("Part")
            .elem("PartNumber", &p.part_number.to_string())
            .elem("LastModified", &iso8601(p.mtime_ns))
            .elem("ETag", &p.etag)
            .elem("Size", &p.size.to_string())
            .close("Part");
    }
    Ok(xml_response(StatusCode::OK, w.finish("ListPartsResult")))
}

/// GET ?uploads.
pub async fn list_uploads(ctx: &Ctx, bucket: &str) -> S3Result<Response<Body>> {
    let max = parse_max(ctx.q("max-uploads"), 1000, "max-uploads")?;
    let prefix = ctx.q("prefix").unwrap_or("").to_string();
    let key_marker = ctx.q("key-marker").unwrap_or("").to_string();
    let id_marker = ctx.q("upload-id-marker").unwrap_or("").to_string();
    let req = pb::ListMultipartUploadsRequest {
        bucket: bucket.into(),
        prefix: prefix.clone(),
        key_marker: key_marker.clone(),
        upload_id_marker: id_marker.clone(),
        max_uploads: max,
    };
    let r: pb::ListMultipartUploadsReply = ctx.client.master().list_multipart_uploads(req).await?;
    let mut w = XmlWriter::new("ListMultipartUploadsResult");
    w.elem("Bucket", bucket)
        .elem("KeyMarker", &key_marker)
        .elem("UploadIdMarker", &id_marker)
        .elem("Prefix", &prefix)
        .elem("MaxUploads", &max.to_string())
        .elem("IsTruncated", if r.is_truncated { "true" } else { "false" });
    if let Some(last) = r.uploads.last() {
        w.elem("NextKeyMarker", &last.key)
            .elem("NextUploadIdMarker", &last.upload_id);
    }
    for u in &r.uploads {
        w.open("Upload")
            .elem("Key", &u.key)
            .elem("UploadId", &u.upload_id);
        owner(&mut w, "Initiator", &ctx.user);
        owner(&mut w, "Owner", &ctx.user);
        w.elem("StorageClass", "STANDARD")
            .elem("Initiated", &iso8601(u.initiated_ns))
            .close("Upload");
    }
    Ok(xml_response(
        StatusCode::OK,
        w.finish("ListMultipartUploadsResult"),
    ))
}
