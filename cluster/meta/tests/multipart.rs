//! Multipart uploads: stitching by extent, ETag, and every refusal S3 defines.

mod common;
use common::{BUCKET, Ns};
use kdss_meta::read;
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use kdss_proto::master::*;

const MIB: u64 = 1024 * 1024;

async fn create(ns: &mut Ns, key: &str) -> String {
    let meta = ObjectMeta {
        content_type: "video/mp4".into(),
        ..Default::default()
    };
    match ns
        .ok(Op::CreateMultipart(CreateMultipartRequest {
            bucket: BUCKET.into(),
            key: key.into(),
            meta: Some(meta),
        }))
        .await
    {
        Reply::CreateMultipart(r) => r.upload_id,
        other => panic!("{other:?}"),
    }
}

/// Uploads part `n` of `size` bytes on a fresh stripe; returns (etag, stripe).
async fn part(ns: &mut Ns, key: &str, id: &str, n: u32, size: u64) -> (String, u64) {
    let s = ns.stripe(size).await;
    let etag = format!("{:032x}", (n as u64) << 32 | size);
    ns.ok(Op::PutPart(PutPartRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        upload_id: id.into(),
        part_number: n,
        extents: vec![Extent {
            file_offset: 0,
            len: size,
            stripe_id: s,
            stripe_offset: 0,
        }],
        size,
        etag: etag.clone(),
        inline_data: vec![],
        ..Default::default()
    }))
    .await;
    (etag, s)
}

fn complete(key: &str, id: &str, parts: &[(u32, &str)]) -> Op {
    Op::CompleteMultipart(CompleteMultipartRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        upload_id: id.into(),
        parts: parts
            .iter()
            .map(|(n, e)| CompletePart {
                part_number: *n,
                etag: format!("\"{e}\""),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

#[tokio::test]
async fn complete_stitches_parts_by_extent() {
    let mut ns = Ns::new().await;
    let id = create(&mut ns, "big").await;
    let (e1, s1) = part(&mut ns, "big", &id, 1, 5 * MIB).await;
    let (_, replaced) = part(&mut ns, "big", &id, 2, 6 * MIB).await;
    let (e2, s2) = part(&mut ns, "big", &id, 2, 5 * MIB).await;
    assert_eq!(
        ns.refcount(replaced).await,
        (0, true),
        "a replaced part releases its stripe"
    );
    let (_, unused) = part(&mut ns, "big", &id, 3, 1).await;
    let (e4, s4) = part(&mut ns, "big", &id, 4, 100).await;
    // Invisible while in progress.
    let l = read::list_objects(
        &ns.pool,
        &ListObjectsRequest {
            bucket: BUCKET.into(),
            max_keys: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(l.objects.is_empty());
    let up = read::list_multipart_uploads(
        &ns.pool,
        &ListMultipartUploadsRequest {
            bucket: BUCKET.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(up.uploads.len(), 1);
    let parts = read::list_parts(
        &ns.pool,
        &ListPartsRequest {
            bucket: BUCKET.into(),
            key: "big".into(),
            upload_id: id.clone(),
            part_number_marker: 0,
            max_parts: 2,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        parts
            .parts
            .iter()
            .map(|p| p.part_number)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(parts.is_truncated);
    assert_eq!(parts.next_part_number_marker, 2);

    let Reply::Object(o) = ns
        .ok(complete("big", &id, &[(1, &e1), (2, &e2), (4, &e4)]))
        .await
    else {
        panic!()
    };
    let info = o.info.unwrap();
    assert_eq!(info.size, 10 * MIB + 100);
    assert_eq!(
        info.etag,
        format!(
            "\"{}\"",
            kdss_meta::multipart::multipart_etag(&[e1, e2, e4])
        )
    );
    assert!(info.etag.ends_with("-3\""));
    let h = read::head_object(
        &ns.pool,
        &HeadObjectRequest {
            bucket: BUCKET.into(),
            key: "big".into(),
            with_extents: true,
        },
    )
    .await
    .unwrap();
    let offsets: Vec<(u64, u64)> = h
        .extents
        .iter()
        .map(|e| (e.file_offset, e.stripe_id))
        .collect();
    assert_eq!(offsets, vec![(0, s1), (5 * MIB, s2), (10 * MIB, s4)]);
    assert_eq!(h.info.unwrap().meta.unwrap().content_type, "video/mp4");
    for s in [s1, s2, s4] {
        assert_eq!(ns.refcount(s).await, (1, false));
    }
    assert_eq!(
        ns.refcount(unused).await,
        (0, true),
        "parts left out are released"
    );
    let up = read::list_multipart_uploads(
        &ns.pool,
        &ListMultipartUploadsRequest {
            bucket: BUCKET.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(up.uploads.is_empty());
}

#[tokio::test]
async fn complete_refusals() {
    let mut ns = Ns::new().await;
    let id = create(&mut ns, "k").await;
    let (e1, _) = part(&mut ns, "k", &id, 1, MIB).await;
    let (e2, _) = part(&mut ns, "k", &id, 2, MIB).await;
    let cases: Vec<(Op, &str)> = vec![
        (complete("k", &id, &[(1, &e1), (3, &e2)]), "InvalidPart"),
        (
            complete("k", &id, &[(1, "ffffffffffffffffffffffffffffffff")]),
            "InvalidPart",
        ),
        (
            complete("k", &id, &[(2, &e2), (1, &e1)]),
            "InvalidPartOrder",
        ),
        (
            complete("k", &id, &[(1, &e1), (1, &e1)]),
            "InvalidPartOrder",
        ),
        (complete("k", &id, &[(1, &e1), (2, &e2)]), "EntityTooSmall"),
        (complete("k", "nope", &[(1, &e1)]), "NoSuchUpload"),
        (complete("other", &id, &[(1, &e1)]), "NoSuchUpload"),
        (complete("k", &id, &[]), "MalformedXML"),
    ];
    let before = ns.dump().await;
    for (op, code) in cases {
        assert_eq!(ns.fail(op.clone()).await.code, code, "{op:?}");
    }
    assert_eq!(
        before,
        ns.dump().await,
        "a refused Complete changes nothing"
    );
    // A single small part is fine (it is the last one).
    ns.ok(complete("k", &id, &[(2, &e2)])).await;
}

#[tokio::test]
async fn abort_releases_parts() {
    let mut ns = Ns::new().await;
    let id = create(&mut ns, "k").await;
    let (_, s1) = part(&mut ns, "k", &id, 1, 10).await;
    let (_, s2) = part(&mut ns, "k", &id, 7, 10).await;
    ns.ok(Op::AbortMultipart(AbortMultipartRequest {
        bucket: BUCKET.into(),
        key: "k".into(),
        upload_id: id.clone(),
    }))
    .await;
    assert_eq!(ns.refcount(s1).await, (0, true));
    assert_eq!(ns.refcount(s2).await, (0, true));
    let f = ns
        .fail(Op::AbortMultipart(AbortMultipartRequest {
            bucket: BUCKET.into(),
            key: "k".into(),
            upload_id: id,
        }))
        .await;
    assert_eq!(f.code, "NoSuchUpload");
    let invalid = ns
        .fail(Op::CreateMultipart(CreateMultipartRequest {
            bucket: BUCKET.into(),
            key: "a//b".into(),
            meta: None,
        }))
        .await;
    assert_eq!(invalid.code, "InvalidArgument");
}

/// GET ?partNumber and multipart checksums need the parts recorded on the object: sizes in
/// object order, the checksums verified at UploadPart, and the object checksum the gateway
/// computed. A Complete naming a part checksum that differs from the stored one is refused.
#[tokio::test]
async fn complete_records_parts_and_checks_part_checksums() {
    let mut ns = Ns::new().await;
    let id = create(&mut ns, "ck").await;
    let mut etags = Vec::new();
    for (n, size, sum) in [(1u32, 5 * MIB, "AAAAAQ=="), (3, 7, "AAAAAw==")] {
        let s = ns.stripe(size).await;
        let etag = format!("{:032x}", n);
        let mut checksums = std::collections::HashMap::new();
        checksums.insert("CRC32".to_string(), sum.to_string());
        ns.ok(Op::PutPart(PutPartRequest {
            bucket: BUCKET.into(),
            key: "ck".into(),
            upload_id: id.clone(),
            part_number: n,
            extents: vec![Extent {
                file_offset: 0,
                len: size,
                stripe_id: s,
                stripe_offset: 0,
            }],
            size,
            etag: etag.clone(),
            checksums,
            ..Default::default()
        }))
        .await;
        etags.push((n, etag, sum));
    }
    let request = |wrong: bool| {
        let parts = etags
            .iter()
            .map(|(n, e, sum)| {
                let mut checksums = std::collections::HashMap::new();
                let v = if wrong && *n == 3 { "BBBBBB==" } else { *sum };
                checksums.insert("CRC32".to_string(), v.to_string());
                CompletePart {
                    part_number: *n,
                    etag: e.clone(),
                    checksums,
                }
            })
            .collect();
        let mut checksums = std::collections::HashMap::new();
        checksums.insert("CRC32".to_string(), "composite-2".to_string());
        Op::CompleteMultipart(CompleteMultipartRequest {
            bucket: BUCKET.into(),
            key: "ck".into(),
            upload_id: id.clone(),
            parts,
            checksums,
            checksum_type: "COMPOSITE".into(),
        })
    };
    let f = ns.fail(request(true)).await;
    assert_eq!(f.code, "InvalidPart", "{f:?}");
    ns.ok(request(false)).await;
    let h = read::head_object(
        &ns.pool,
        &HeadObjectRequest {
            bucket: BUCKET.into(),
            key: "ck".into(),
            with_extents: false,
        },
    )
    .await
    .unwrap();
    let meta = h.info.unwrap().meta.unwrap();
    assert_eq!(meta.checksum_type, "COMPOSITE");
    assert_eq!(meta.checksums["CRC32"], "composite-2");
    let parts: Vec<_> = meta
        .parts
        .iter()
        .map(|p| (p.part_number, p.size, p.checksums["CRC32"].as_str()))
        .collect();
    assert_eq!(parts, vec![(1, 5 * MIB, "AAAAAQ=="), (3, 7, "AAAAAw==")]);
}
