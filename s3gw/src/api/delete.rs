//! DeleteObject and DeleteObjects. Both go through the master's two-phase delete; the
//! batch form accepts Content-MD5 or any x-amz-checksum-* (boto3 sends a CRC and no MD5)
//! and reports per key. Deleting a missing key succeeds, as in S3.
//!
//! Conditional deletes (`If-Match`, `x-amz-if-match-size`, `x-amz-if-match-last-modified-time`,
//! or `ETag` / `Size` / `LastModifiedTime` on a DeleteObjects entry) are refused and nothing
//! is deleted: the master's delete takes no condition, and checking before deleting would let
//! a concurrent overwrite be deleted, which is exactly what the condition is there to prevent.

use super::{Ctx, empty, xml_response};
use crate::body::RequestBody;
use crate::error::{Code, S3Error, S3Result};
use crate::xml::{self, XmlWriter};
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http::{Response, StatusCode};
use kdss_proto::master as pb;
use md5::{Digest, Md5};

/// Headers that make a DELETE conditional.
const DELETE_CONDITIONS: [&str; 3] = [
    "if-match",
    "x-amz-if-match-size",
    "x-amz-if-match-last-modified-time",
];

fn conditional_delete_refused() -> S3Error {
    S3Error::new(
        Code::NotImplemented,
        "conditional delete is not supported; nothing was deleted",
    )
}

/// DELETE of one object.
pub async fn delete_object(ctx: &Ctx, bucket: &str, key: &str) -> S3Result<Response<Body>> {
    if DELETE_CONDITIONS
        .iter()
        .any(|h| ctx.headers.contains_key(*h))
    {
        return Err(conditional_delete_refused());
    }
    match ctx
        .client
        .delete_object(bucket, key)
        .await
        .map_err(S3Error::from)
    {
        Ok(_existed) => Ok(empty(StatusCode::NO_CONTENT)),
        Err(e) if e.code == Code::NoSuchKey => Ok(empty(StatusCode::NO_CONTENT)),
        Err(e) => Err(e),
    }
}

/// POST ?delete.
pub async fn delete_objects(ctx: &Ctx, bucket: &str, body: Body) -> S3Result<Response<Body>> {
    let raw = RequestBody::new(body, &ctx.headers, &ctx.payload)?
        .collect(2 << 20)
        .await?;
    if let Some(md5) = ctx.h("content-md5") {
        let want = B64
            .decode(md5.trim())
            .map_err(|_| S3Error::new(Code::InvalidDigest, "bad Content-MD5"))?;
        if want.as_slice() != Md5::digest(&raw).as_slice() {
            return Err(S3Error::new(
                Code::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    let doc: xml::DeleteXml = xml::parse(&raw)?;
    if doc.objects.len() > 1000 {
        return Err(S3Error::new(
            Code::MalformedXML,
            "at most 1000 keys per DeleteObjects request",
        ));
    }
    let quiet = doc.quiet.unwrap_or(false);
    let (conditional, plain): (Vec<_>, Vec<_>) =
        doc.objects.iter().partition(|o| o.is_conditional());
    let keys: Vec<String> = plain.iter().map(|o| o.key.clone()).collect();
    let results = if keys.is_empty() {
        Vec::new()
    } else {
        let req = pb::DeleteObjectsRequest {
            bucket: bucket.into(),
            keys,
        };
        let r: pb::DeleteObjectsReply = ctx.client.master().delete_objects(req).await?;
        r.results
    };
    let mut w = XmlWriter::new("DeleteResult");
    for r in &results {
        if r.ok || r.code == "NoSuchKey" {
            if !quiet {
                w.open("Deleted").elem("Key", &r.key).close("Deleted");
            }
        } else {
            w.open("Error")
                .elem("Key", &r.key)
                .elem("Code", &r.code)
                .elem("Message", &r.message)
                .close("Error");
        }
    }
    let refused = conditional_delete_refused();
    for o in conditional {
        w.open("Error")
            .elem("Key", &o.key)
            .elem("Code", refused.code.as_str())
            .elem("Message", &refused.message)
            .close("Error");
    }
    Ok(xml_response(StatusCode::OK, w.finish("DeleteResult")))
}
