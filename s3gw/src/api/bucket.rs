//! Bucket operations: ListBuckets (paginated), CreateBucket (EC policy from
//! `x-kdss-ec: K+M` or the cluster default), HeadBucket, DeleteBucket (BucketNotEmpty),
//! GetBucketLocation, and the versioning / ACL reads that clients probe.

use super::{Ctx, empty, set_header, xml_response};
use crate::body::RequestBody;
use crate::error::{Code, S3Error, S3Result};
use crate::xml::{self, XmlWriter, iso8601};
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use http::{Response, StatusCode};
use kdss_common::EcPolicy;
use kdss_proto::master as pb;

/// S3 bucket naming rules (3–63 chars, lowercase, digits, `.` and `-`, alphanumeric ends,
/// no `..`, not an IP address).
pub fn valid_bucket_name(n: &str) -> bool {
    let b = n.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return false;
    }
    let ok_char = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-';
    if !b.iter().all(ok_char)
        || !b[0].is_ascii_alphanumeric()
        || !b[b.len() - 1].is_ascii_alphanumeric()
    {
        return false;
    }
    if n.contains("..") || n.contains(".-") || n.contains("-.") {
        return false;
    }
    n.parse::<std::net::Ipv4Addr>().is_err()
}

/// GET / (only the caller's own buckets, as S3 does).
pub async fn list_buckets(ctx: &Ctx) -> S3Result<Response<Body>> {
    let r: pb::ListBucketsReply = ctx
        .client
        .master()
        .list_buckets(pb::ListBucketsRequest {})
        .await?;
    let mut buckets: Vec<pb::BucketInfo> = r
        .buckets
        .into_iter()
        .filter(|b| b.owner == ctx.user)
        .collect();
    buckets.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(p) = ctx.q("prefix") {
        buckets.retain(|b| b.name.starts_with(p));
    }
    if let Some(t) = ctx.q("continuation-token") {
        let after = TOKEN
            .decode(t)
            .ok()
            .and_then(|v| String::from_utf8(v).ok())
            .unwrap_or_default();
        buckets.retain(|b| b.name > after);
    }
    let max = match ctx.q("max-buckets") {
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                S3Error::new(
                    Code::InvalidArgument,
                    "max-buckets must be between 1 and 10000",
                )
            })?,
        None => usize::MAX,
    };
    let truncated = buckets.len() > max;
    buckets.truncate(max);
    let mut w = XmlWriter::new("ListAllMyBucketsResult");
    w.open("Owner")
        .elem("ID", &ctx.user)
        .elem("DisplayName", &ctx.user)
        .close("Owner");
    w.open("Buckets");
    for b in &buckets {
        w.open("Bucket")
            .elem("Name", &b.name)
            .elem("CreationDate", &iso8601(b.created_ns))
            .elem("BucketRegion", &ctx.region)
            .close("Bucket");
    }
    w.close("Buckets");
    if truncated && let Some(last) = buckets.last() {
        w.elem("ContinuationToken", &TOKEN.encode(last.name.as_bytes()));
    }
    if let Some(p) = ctx.q("prefix") {
        w.elem("Prefix", p);
    }
    Ok(xml_response(
        StatusCode::OK,
        w.finish("ListAllMyBucketsResult"),
    ))
}

/// PUT /bucket.
pub async fn create_bucket(ctx: &Ctx, bucket: &str, body: Body) -> S3Result<Response<Body>> {
    if !valid_bucket_name(bucket) {
        return Err(S3Error::new(
            Code::InvalidBucketName,
            "The specified bucket is not valid.",
        ));
    }
    super::check_canned_acl(&ctx.headers)?;
    let raw = RequestBody::new(body, &ctx.headers, &ctx.payload)?
        .collect(64 << 10)
        .await?;
    if !raw.iter().all(|b| b.is_ascii_whitespace()) {
        let _: xml::CreateBucketXml = xml::parse(&raw)?;
    }
    let (k, m) = match ctx.h("x-kdss-ec") {
        Some(v) => {
            let p: EcPolicy = v
                .parse()
                .map_err(|e| S3Error::new(Code::InvalidArgument, format!("x-kdss-ec: {e}")))?;
            (p.k, p.m)
        }
        None => (0, 0),
    };
    let req = pb::CreateBucketRequest {
        name: bucket.into(),
        k,
        m,
        owner: ctx.user.clone(),
    };
    match ctx
        .client
        .master()
        .create_bucket(req)
        .await
        .map_err(crate::S3Error::from)
    {
        Ok(pb::BucketReply { .. }) => {}
        Err(e)
            if e.code == Code::BucketAlreadyExists || e.code == Code::BucketAlreadyOwnedByYou =>
        {
            let mine = ctx.bucket(bucket).await;
            if let Ok(r) = mine
                && r.bucket.is_some_and(|b| b.owner == ctx.user)
            {
                // us-east-1 answers a re-create by the owner with 200, as AWS does.
                if ctx.region == "us-east-1" {
                    let mut resp = empty(StatusCode::OK);
                    set_header(resp.headers_mut(), "location", &format!("/{bucket}"));
                    return Ok(resp);
                }
                return Err(S3Error::new(
                    Code::BucketAlreadyOwnedByYou,
                    "Your previous request to create the named bucket succeeded and you already own it.",
                ));
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    }
    let mut resp = empty(StatusCode::OK);
    set_header(resp.headers_mut(), "location", &format!("/{bucket}"));
    Ok(resp)
}

/// DELETE /bucket.
pub async fn delete_bucket(ctx: &Ctx, bucket: &str) -> S3Result<Response<Body>> {
    let _: pb::Empty = ctx
        .client
        .master()
        .delete_bucket(pb::BucketRequest {
            name: bucket.into(),
        })
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// HEAD /bucket.
pub async fn head_bucket(ctx: &Ctx, bucket: &str) -> S3Result<Response<Body>> {
    ctx.bucket(bucket).await?;
    let mut resp = empty(StatusCode::OK);
    set_header(resp.headers_mut(), "x-amz-bucket-region", &ctx.region);
    Ok(resp)
}

/// GET /bucket?location.
pub async fn location(ctx: &Ctx, bucket: &str) -> S3Result<Response<Body>> {
    ctx.bucket(bucket).await?;
    let region = if ctx.region == "us-east-1" {
        ""
    } else {
        ctx.region.as_str()
    };
    // The root element's text is the region; us-east-1 is the empty constraint.
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{}\">{}</LocationConstraint>",
        xml::NS,
        xml::escape(region)
    );
    Ok(xml_response(StatusCode::OK, body))
}

/// GET /bucket?versioning: buckets are unversioned.
pub async fn versioning(ctx: &Ctx, bucket: &str) -> S3Result<Response<Body>> {
    ctx.bucket(bucket).await?;
    let w = XmlWriter::new("VersioningConfiguration");
    Ok(xml_response(
        StatusCode::OK,
        w.finish("VersioningConfiguration"),
    ))
}

/// GET ?acl: the owner has FULL_CONTROL (ACLs are not otherwise modelled).
pub fn acl(ctx: &Ctx) -> Response<Body> {
    let mut w = XmlWriter::new("AccessControlPolicy");
    w.open("Owner")
        .elem("ID", &ctx.user)
        .elem("DisplayName", &ctx.user)
        .close("Owner");
    w.open("AccessControlList").open("Grant");
    w.s_grantee(&ctx.user);
    w.elem("Permission", "FULL_CONTROL")
        .close("Grant")
        .close("AccessControlList");
    xml_response(StatusCode::OK, w.finish("AccessControlPolicy"))
}

trait Grantee {
    fn s_grantee(&mut self, id: &str);
}
impl Grantee for XmlWriter {
    fn s_grantee(&mut self, id: &str) {
        self.raw("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">");
        self.elem("ID", id).elem("DisplayName", id).close("Grantee");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for good in ["abc", "a-b.c", "1bucket", &"a".repeat(63)] {
            assert!(valid_bucket_name(good), "{good}");
        }
        for bad in [
            "ab",
            "Abc",
            "a_b",
            "-ab",
            "ab-",
            "a..b",
            "192.168.1.1",
            &"a".repeat(64),
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }
}
