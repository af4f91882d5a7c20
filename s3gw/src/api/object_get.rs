//! GetObject and HeadObject: conditionals (If-Match, If-None-Match, If-Modified-Since,
//! If-Unmodified-Since), Range (`a-b`, `a-`, `-n`; 416 InvalidRange), response-header
//! overrides, checksums with `x-amz-checksum-mode: ENABLED`. The body streams from the
//! extents the HeadObject reply named, so the reader finishes on the version it opened.

use super::{Ctx, checksum_headers, empty, object_headers, set_header};
use crate::error::{Code, S3Error, S3Result};
use axum::body::Body;
use futures::TryStreamExt;
use http::{HeaderMap, Response, StatusCode};
use kdss_proto::master as pb;
use std::collections::HashMap;

/// The four conditional headers of a request (plain or `x-amz-copy-source-` prefixed).
pub struct Conditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<i64>,
    pub if_unmodified_since: Option<i64>,
}

impl Conditions {
    /// Reads the headers named `<prefix>if-match`, ...
    pub fn from_headers(h: &HeaderMap, prefix: &str) -> Self {
        let get = |n: &str| {
            h.get(format!("{prefix}{n}"))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Conditions {
            if_match: get("if-match"),
            if_none_match: get("if-none-match"),
            if_modified_since: get("if-modified-since").and_then(|s| super::parse_http_date(&s)),
            if_unmodified_since: get("if-unmodified-since")
                .and_then(|s| super::parse_http_date(&s)),
        }
    }

    /// Checks the conditions against an object. `not_modified_is_304` is true for
    /// GET/HEAD (a failed If-None-Match / If-Modified-Since is 304), false for copies (412).
    pub fn check(&self, etag: &str, mtime_ns: i64, not_modified_is_304: bool) -> S3Result<()> {
        let mtime = mtime_ns / 1_000_000_000;
        let failed = || {
            S3Error::new(
                Code::PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold",
            )
        };
        let not_modified = || {
            if not_modified_is_304 {
                S3Error::new(Code::NotModified, "Not Modified")
            } else {
                failed()
            }
        };
        match &self.if_match {
            Some(m) if !etag_matches(m, etag) => return Err(failed()),
            Some(_) => {}
            None => {
                if let Some(t) = self.if_unmodified_since
                    && mtime > t
                {
                    return Err(failed());
                }
            }
        }
        match &self.if_none_match {
            Some(m) if etag_matches(m, etag) => return Err(not_modified()),
            Some(_) => {}
            None => {
                if let Some(t) = self.if_modified_since
                    && mtime <= t
                {
                    return Err(not_modified());
                }
            }
        }
        Ok(())
    }
}

/// Does an If-Match / If-None-Match list name `etag` (`*` names any)?
pub fn etag_matches(list: &str, etag: &str) -> bool {
    let etag = etag.trim_matches('"');
    list.split(',')
        .map(|e| e.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|e| e == "*" || e == etag)
}

/// A parsed `Range` against an object of `size` bytes: `Ok(None)` serves the whole object.
pub fn parse_range(header: Option<&str>, size: u64) -> S3Result<Option<(u64, u64)>> {
    let Some(h) = header else { return Ok(None) };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let unsatisfiable = || {
        S3Error::new(Code::InvalidRange, "The requested range is not satisfiable")
            .with_header("content-range", format!("bytes */{size}"))
    };
    let (a, b) = spec.split_once('-').unwrap_or((spec, ""));
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = match b.parse() {
            Ok(n) => n,
            Err(_) => return Ok(None),
        };
        if n == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        let n = n.min(size);
        return Ok(Some((size - n, n)));
    }
    let Ok(start) = a.parse::<u64>() else {
        return Ok(None);
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return Ok(None),
        }
    };
    if start >= size {
        return Err(unsatisfiable());
    }
    let end = end.min(size - 1);
    Ok(Some((start, end - start + 1)))
}

/// What `?partNumber=N` selects.
struct PartSel {
    /// The part's bytes (None: the whole object, for objects not uploaded in parts).
    range: Option<(u64, u64)>,
    /// The object's part count (`x-amz-mp-parts-count`).
    count: usize,
    /// The part's checksums as verified at UploadPart.
    checksums: HashMap<String, String>,
}

/// The parts recorded at CompleteMultipart, if they still describe the content (sizes
/// add up; a ksfs rewrite drops them).
pub fn recorded_parts(info: &pb::ObjectInfo) -> Option<&[pb::ObjectPart]> {
    let parts = &info.meta.as_ref()?.parts;
    let total: u64 = parts.iter().map(|p| p.size).sum();
    (!parts.is_empty() && total == info.size).then_some(parts.as_slice())
}

/// Resolves `?partNumber`: part N (1-based, in object order) of a multipart object, the
/// whole object for part 1 of any other object, InvalidPart past the count.
fn select_part(q: Option<&str>, info: &pb::ObjectInfo) -> S3Result<Option<PartSel>> {
    let Some(q) = q else { return Ok(None) };
    let n = match q.parse::<usize>() {
        Ok(n) if (1..=10_000).contains(&n) => n,
        _ => {
            return Err(S3Error::new(
                Code::InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive",
            ));
        }
    };
    let out_of_range = || {
        S3Error::new(
            Code::InvalidPart,
            "The requested partnumber is not satisfiable",
        )
    };
    match recorded_parts(info) {
        Some(parts) => {
            let p = parts.get(n - 1).ok_or_else(out_of_range)?;
            let offset: u64 = parts[..n - 1].iter().map(|p| p.size).sum();
            Ok(Some(PartSel {
                range: (p.size > 0).then_some((offset, p.size)),
                count: parts.len(),
                checksums: p.checksums.clone(),
            }))
        }
        None if n == 1 => Ok(Some(PartSel {
            range: None,
            count: 1,
            checksums: info.meta.clone().unwrap_or_default().checksums,
        })),
        None => Err(out_of_range()),
    }
}

const OVERRIDES: &[(&str, &str)] = &[
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

/// GET (with body) or HEAD (headers only) of an object.
pub async fn get_object(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    head: bool,
) -> S3Result<Response<Body>> {
    // A GET opens the version current now: the body streams from it even if the key is
    // overwritten meanwhile. A HEAD needs only the info.
    let (info, reader) = if head {
        (ctx.client.stat_object(bucket, key).await?, None)
    } else {
        let (info, reader) = ctx.client.open_object(bucket, key).await?;
        (info, Some(reader))
    };
    Conditions::from_headers(&ctx.headers, "")
        .check(&info.etag, info.mtime_ns, true)
        .map_err(|e| {
            if e.code == Code::NotModified {
                let mut e = e;
                e.headers.push(("etag", info.etag.clone()));
                e.headers
                    .push(("last-modified", super::http_date(info.mtime_ns)));
                e
            } else {
                e
            }
        })?;
    let mut meta = info.meta.clone().unwrap_or_default();
    if recorded_parts(&info).is_some() {
        super::multipart_checksum::derive_from_parts(&mut meta);
    }
    let part = select_part(ctx.q("partNumber"), &info)?;
    let range = match &part {
        Some(p) => p.range,
        None => parse_range(ctx.h("range"), info.size)?,
    };
    let (offset, len, status) = match range {
        Some((o, l)) => (o, l, StatusCode::PARTIAL_CONTENT),
        None => (0, info.size, StatusCode::OK),
    };
    let mut resp = if let Some(reader) = reader.filter(|_| len > 0) {
        // Headers are gone once the body streams: a failure now can only cut the
        // connection short, so say why in the log.
        let (b, k) = (bucket.to_string(), key.to_string());
        let stream = reader.stream(offset, len).inspect_err(move |e| {
            tracing::warn!(bucket = %b, key = %k, error = %e, "GET body failed mid-stream");
        });
        let mut r = Response::new(Body::from_stream(stream));
        *r.status_mut() = status;
        r
    } else {
        empty(status)
    };
    let h = resp.headers_mut();
    object_headers(h, &info);
    let checksum_mode = ctx
        .h("x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"));
    if checksum_mode {
        // A checksum describes a whole object or a whole part, never another range.
        match &part {
            Some(p) => checksum_headers(h, &p.checksums, &meta.checksum_type),
            None if range.is_none() => checksum_headers(h, &meta.checksums, &meta.checksum_type),
            None => {}
        }
    }
    set_header(h, "content-length", &len.to_string());
    if range.is_some() {
        set_header(
            h,
            "content-range",
            &format!("bytes {offset}-{}/{}", offset + len - 1, info.size),
        );
    }
    if let Some(p) = &part {
        set_header(h, "x-amz-mp-parts-count", &p.count.to_string());
    }
    for (q, hn) in OVERRIDES {
        if let Some(v) = ctx.q(q) {
            set_header(h, hn, v);
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_s3() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100).unwrap(), Some((0, 10)));
        assert_eq!(
            parse_range(Some("bytes=90-200"), 100).unwrap(),
            Some((90, 10))
        );
        assert_eq!(parse_range(Some("bytes=95-"), 100).unwrap(), Some((95, 5)));
        assert_eq!(parse_range(Some("bytes=-10"), 100).unwrap(), Some((90, 10)));
        assert_eq!(
            parse_range(Some("bytes=-500"), 100).unwrap(),
            Some((0, 100))
        );
        assert_eq!(parse_range(Some("bytes=9-3"), 100).unwrap(), None);
        assert_eq!(parse_range(Some("items=0-3"), 100).unwrap(), None);
        let e = parse_range(Some("bytes=100-200"), 100).unwrap_err();
        assert_eq!(e.code, Code::InvalidRange);
        assert_eq!(e.headers[0].1, "bytes */100");
        assert_eq!(
            parse_range(Some("bytes=0-1"), 0).unwrap_err().code,
            Code::InvalidRange
        );
    }

    fn info_with_parts(sizes: &[u64]) -> pb::ObjectInfo {
        let parts = sizes
            .iter()
            .enumerate()
            .map(|(i, s)| pb::ObjectPart {
                part_number: i as u32 * 2 + 1,
                size: *s,
                ..Default::default()
            })
            .collect();
        pb::ObjectInfo {
            size: sizes.iter().sum(),
            meta: Some(pb::ObjectMeta {
                parts,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn part_number_selects_a_recorded_part_by_position() {
        let info = info_with_parts(&[10, 10, 3]);
        let p = select_part(Some("2"), &info).unwrap().unwrap();
        assert_eq!((p.range, p.count), (Some((10, 10)), 3));
        let p = select_part(Some("3"), &info).unwrap().unwrap();
        assert_eq!(p.range, Some((20, 3)));
        assert_eq!(
            select_part(Some("4"), &info).err().unwrap().code,
            Code::InvalidPart
        );
        assert_eq!(
            select_part(Some("0"), &info).err().unwrap().code,
            Code::InvalidArgument
        );
        assert!(select_part(None, &info).unwrap().is_none());
        // Parts that no longer add up (content rewritten through ksfs) are not used.
        let mut stale = info_with_parts(&[10, 10]);
        stale.size = 7;
        let p = select_part(Some("1"), &stale).unwrap().unwrap();
        assert_eq!((p.range, p.count), (None, 1));
        assert_eq!(
            select_part(Some("2"), &stale).err().unwrap().code,
            Code::InvalidPart
        );
    }

    #[test]
    fn conditionals_follow_rfc7232_precedence() {
        let c =
            |im: Option<&str>, inm: Option<&str>, ims: Option<i64>, ius: Option<i64>| Conditions {
                if_match: im.map(str::to_string),
                if_none_match: inm.map(str::to_string),
                if_modified_since: ims,
                if_unmodified_since: ius,
            };
        let (etag, mtime) = ("\"abc\"", 1000 * 1_000_000_000);
        assert!(
            c(Some("\"abc\""), None, None, None)
                .check(etag, mtime, true)
                .is_ok()
        );
        assert_eq!(
            c(Some("zzz"), None, None, None)
                .check(etag, mtime, true)
                .unwrap_err()
                .code,
            Code::PreconditionFailed
        );
        assert_eq!(
            c(None, Some("abc"), None, None)
                .check(etag, mtime, true)
                .unwrap_err()
                .code,
            Code::NotModified
        );
        assert_eq!(
            c(None, Some("abc"), None, None)
                .check(etag, mtime, false)
                .unwrap_err()
                .code,
            Code::PreconditionFailed
        );
        assert_eq!(
            c(None, None, Some(2000), None)
                .check(etag, mtime, true)
                .unwrap_err()
                .code,
            Code::NotModified
        );
        assert!(
            c(None, None, Some(500), None)
                .check(etag, mtime, true)
                .is_ok()
        );
        assert_eq!(
            c(None, None, None, Some(500))
                .check(etag, mtime, true)
                .unwrap_err()
                .code,
            Code::PreconditionFailed
        );
        // If-Match that holds overrides a failing If-Unmodified-Since.
        assert!(
            c(Some("*"), None, None, Some(500))
                .check(etag, mtime, true)
                .is_ok()
        );
    }
}
