//! The checksum of a multipart object, decided at CompleteMultipartUpload: COMPOSITE (the
//! checksum of the parts' checksums, `-N`) or FULL_OBJECT (CRCs of the parts combined into
//! the CRC of the whole content), checked against the `x-amz-checksum-*` header a client
//! sends with Complete.

use super::Ctx;
use crate::checksum::Algo;
use crate::error::{Code, S3Error, S3Result};
use crate::xml;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kdss_proto::master as pb;

/// The composite checksum S3 reports for a multipart object: the checksum of the
/// concatenated part checksums, suffixed with the part count.
pub fn composite_checksum(algo: Algo, parts: &[String]) -> Option<String> {
    let mut h = algo.hasher();
    for p in parts {
        h.update(&B64.decode(p).ok()?);
    }
    Some(format!("{}-{}", h.finish(), parts.len()))
}

/// How a multipart object's checksum derives from its parts' (S3 `x-amz-checksum-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumType {
    /// The checksum of the concatenated part checksums, suffixed `-N`.
    Composite,
    /// The checksum of the whole content (CRCs only: combined from the parts' CRCs).
    FullObject,
}

impl ChecksumType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumType::Composite => "COMPOSITE",
            ChecksumType::FullObject => "FULL_OBJECT",
        }
    }
}

/// S3's default type of an algorithm: CRC64NVME is always FULL_OBJECT, the others
/// COMPOSITE unless asked.
pub fn default_type(a: Algo) -> ChecksumType {
    if a == Algo::Crc64Nvme {
        ChecksumType::FullObject
    } else {
        ChecksumType::Composite
    }
}

/// The sizes of an upload's parts by part number (for FULL_OBJECT CRCs).
async fn part_sizes(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> S3Result<std::collections::HashMap<u32, u64>> {
    let mut sizes = std::collections::HashMap::new();
    let mut marker = 0;
    loop {
        let req = pb::ListPartsRequest {
            bucket: bucket.into(),
            key: key.into(),
            upload_id: upload_id.into(),
            part_number_marker: marker,
            max_parts: 1000,
        };
        let r: pb::ListPartsReply = ctx.client.master().list_parts(req).await?;
        for p in &r.parts {
            sizes.insert(p.part_number, p.size);
        }
        match r.parts.last() {
            Some(last) if r.is_truncated => marker = last.part_number,
            _ => return Ok(sizes),
        }
    }
}

/// The object checksum a Complete stores: the algorithm named by an `x-amz-checksum-*`
/// header, else the one every listed part carries; COMPOSITE or FULL_OBJECT from
/// `x-amz-checksum-type`, else from the header value's `-N` suffix, else S3's default.
/// A header value that is malformed, names parts without that checksum, or differs
/// from what the parts give is BadDigest.
pub async fn object_checksum(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[xml::CompletePartXml],
) -> S3Result<Option<(Algo, String, ChecksumType)>> {
    let bad = |a: Algo, why: &str| {
        S3Error::new(
            Code::BadDigest,
            format!("The {} you specified {why}.", a.header()),
        )
    };
    let named = Algo::ALL
        .into_iter()
        .find_map(|a| ctx.h(a.header()).map(|v| (a, v.trim().to_string())));
    let algo = match &named {
        Some((a, _)) => *a,
        None => match Algo::ALL
            .into_iter()
            .find(|a| parts.iter().all(|p| p.checksum(*a).is_some()))
        {
            Some(a) => a,
            None => return Ok(None),
        },
    };
    let want_len = B64.decode(algo.of(b"")).map(|d| d.len()).unwrap_or(0);
    let header_type = match ctx.h("x-amz-checksum-type").map(str::to_ascii_uppercase) {
        Some(t) if t == "COMPOSITE" => Some(ChecksumType::Composite),
        Some(t) if t == "FULL_OBJECT" => Some(ChecksumType::FullObject),
        Some(t) => {
            return Err(S3Error::new(
                Code::InvalidRequest,
                format!("unknown x-amz-checksum-type {t:?}"),
            ));
        }
        None => None,
    };
    let mut kind = header_type.unwrap_or_else(|| default_type(algo));
    if let Some((_, v)) = &named {
        let (raw, suffix) = match v.rsplit_once('-') {
            Some((r, n)) if n.parse::<u32>().is_ok() => (r, true),
            _ => (v.as_str(), false),
        };
        if B64.decode(raw).map(|d| d.len()) != Ok(want_len) {
            return Err(bad(algo, "is not a valid checksum"));
        }
        if header_type.is_none() {
            kind = if suffix {
                ChecksumType::Composite
            } else {
                ChecksumType::FullObject
            };
        }
    }
    if kind == ChecksumType::FullObject && !algo.combinable() {
        kind = ChecksumType::Composite;
    }
    let Some(vals) = parts
        .iter()
        .map(|p| p.checksum(algo))
        .collect::<Option<Vec<_>>>()
    else {
        return Err(bad(
            algo,
            "names parts without a checksum of that algorithm",
        ));
    };
    let computed = match kind {
        ChecksumType::Composite => composite_checksum(algo, &vals),
        ChecksumType::FullObject => {
            let sizes = match part_sizes(ctx, bucket, key, upload_id).await {
                Ok(s) => s,
                // Completed already: the repeat answers with what was stored.
                Err(e) if e.code == Code::NoSuchUpload => return Ok(None),
                Err(e) => return Err(e),
            };
            let with_len: Option<Vec<(String, u64)>> = parts
                .iter()
                .zip(vals)
                .map(|(p, v)| Some((v, *sizes.get(&p.part_number)?)))
                .collect();
            // A part that was never uploaded: the master answers InvalidPart below.
            with_len.and_then(|l| algo.combine(&l))
        }
    };
    let Some(computed) = computed else {
        return Err(bad(algo, "does not describe these parts"));
    };
    if let Some((_, v)) = &named {
        let base = |s: &str| s.split('-').next().unwrap_or("").to_string();
        if base(v) != base(&computed) {
            return Err(bad(algo, "did not match the checksum of the parts"));
        }
    }
    Ok(Some((algo, computed, kind)))
}

/// Fills in the COMPOSITE checksum of a multipart object whose Complete named no checksum
/// (ETag-only parts) from the part checksums verified at UploadPart, when every part has
/// one of the same algorithm, as S3 does for uploads created with a checksum algorithm.
pub fn derive_from_parts(meta: &mut pb::ObjectMeta) {
    if meta.checksums.keys().any(|k| Algo::parse(k).is_some()) || meta.parts.is_empty() {
        return;
    }
    for a in Algo::ALL {
        let vals: Option<Vec<String>> = meta
            .parts
            .iter()
            .map(|p| p.checksums.get(a.name()).cloned())
            .collect();
        if let Some(v) = vals.and_then(|v| composite_checksum(a, &v)) {
            meta.checksums.insert(a.name().to_string(), v);
            meta.checksum_type = ChecksumType::Composite.as_str().to_string();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etag_only_complete_reports_the_composite_of_stored_part_checksums() {
        let part = |sum: &str| pb::ObjectPart {
            checksums: [("SHA256".to_string(), sum.to_string())].into(),
            ..Default::default()
        };
        let (a, b) = (Algo::Sha256.of(b"a"), Algo::Sha256.of(b"b"));
        let mut meta = pb::ObjectMeta {
            parts: vec![part(&a), part(&b)],
            ..Default::default()
        };
        derive_from_parts(&mut meta);
        assert_eq!(
            meta.checksums["SHA256"],
            composite_checksum(Algo::Sha256, &[a, b]).unwrap()
        );
        assert_eq!(meta.checksum_type, "COMPOSITE");
        // A stored object checksum wins.
        let mut kept = pb::ObjectMeta {
            checksums: [("CRC32".to_string(), "AAAAAA==".to_string())].into(),
            parts: meta.parts.clone(),
            ..Default::default()
        };
        derive_from_parts(&mut kept);
        assert_eq!(kept.checksums.len(), 1);
    }

    #[test]
    fn composite_checksum_has_part_count() {
        let parts = vec![Algo::Crc32.of(b"a"), Algo::Crc32.of(b"b")];
        let c = composite_checksum(Algo::Crc32, &parts).unwrap();
        assert!(c.ends_with("-2"), "{c}");
    }
}
