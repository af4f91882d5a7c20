//! Multipart objects keep their parts: GET/HEAD ?partNumber serve one part (with its
//! checksum), GetObjectAttributes lists them, and the object's checksum is the COMPOSITE
//! or FULL_OBJECT one S3 defines, checked against what the client names at Complete.
//! The AWS SDK for Rust against a real local cluster.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
    ObjectAttributes,
};
use kdss_s3gw::checksum::Algo;

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_parts_and_checksums_are_served() {
    let env = common::start().await;
    let s3 = env.sdk().await;
    let b = &env.bucket;
    let key = "mp/full-object";
    let sizes = [5 * MIB, 5 * MIB, 1234];
    let bodies: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| common::data(*n, i as u8 + 1))
        .collect();
    let whole: Vec<u8> = bodies.concat();

    let up = s3
        .create_multipart_upload()
        .bucket(b)
        .key(key)
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await
        .expect("create upload");
    let id = up.upload_id().unwrap().to_string();
    let mut parts = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let n = i as i32 + 1;
        let sum = Algo::Crc32c.of(body);
        let r = s3
            .upload_part()
            .bucket(b)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .checksum_crc32_c(&sum)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .expect("upload part");
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .checksum_crc32_c(sum)
                .build(),
        );
    }
    let whole_crc = Algo::Crc32c.of(&whole);
    let done = s3
        .complete_multipart_upload()
        .bucket(b)
        .key(key)
        .upload_id(&id)
        .checksum_crc32_c(&whole_crc)
        .checksum_type(ChecksumType::FullObject)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("complete with the whole object's CRC32C");
    assert_eq!(done.checksum_crc32_c(), Some(whole_crc.as_str()));
    assert_eq!(done.checksum_type(), Some(&ChecksumType::FullObject));

    let head = s3
        .head_object()
        .bucket(b)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_crc32_c(), Some(whole_crc.as_str()));
    assert_eq!(head.checksum_type(), Some(&ChecksumType::FullObject));

    let mut at = 0;
    for (i, body) in bodies.iter().enumerate() {
        let n = i as i32 + 1;
        let g = s3
            .get_object()
            .bucket(b)
            .key(key)
            .part_number(n)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("GET ?partNumber");
        assert_eq!(g.parts_count(), Some(3));
        assert_eq!(g.content_length(), Some(body.len() as i64));
        assert_eq!(
            g.content_range(),
            Some(format!("bytes {at}-{}/{}", at + body.len() - 1, whole.len()).as_str())
        );
        assert_eq!(
            g.checksum_crc32_c(),
            Some(Algo::Crc32c.of(body).as_str()),
            "a part GET carries the part's checksum"
        );
        let got = g.body.collect().await.unwrap().into_bytes();
        assert!(got[..] == body[..], "part {n} content");
        at += body.len();
    }
    let e = s3
        .get_object()
        .bucket(b)
        .key(key)
        .part_number(4)
        .send()
        .await
        .expect_err("part 4 of 3");
    assert_eq!(
        e.raw_response().map(|r| r.status().as_u16()),
        Some(400),
        "{e:?}"
    );

    let attrs = s3
        .get_object_attributes()
        .bucket(b)
        .key(key)
        .object_attributes(ObjectAttributes::ObjectParts)
        .object_attributes(ObjectAttributes::Checksum)
        .object_attributes(ObjectAttributes::ObjectSize)
        .max_parts(2)
        .send()
        .await
        .expect("GetObjectAttributes");
    assert_eq!(attrs.object_size(), Some(whole.len() as i64));
    let op = attrs.object_parts().unwrap();
    assert_eq!(op.total_parts_count(), Some(3));
    assert_eq!(op.is_truncated(), Some(true));
    let listed: Vec<(Option<i32>, Option<i64>)> = op
        .parts()
        .iter()
        .map(|p| (p.part_number(), p.size()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (Some(1), Some(5 * MIB as i64)),
            (Some(2), Some(5 * MIB as i64))
        ]
    );
    assert_eq!(
        attrs.checksum().and_then(|c| c.checksum_crc32_c()),
        Some(whole_crc.as_str())
    );

    // A Complete whose named checksum is not the parts' is BadDigest, and stores nothing.
    let up = s3
        .create_multipart_upload()
        .bucket(b)
        .key("mp/bad")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let sum = Algo::Sha256.of(&bodies[2]);
    let r = s3
        .upload_part()
        .bucket(b)
        .key("mp/bad")
        .upload_id(&id)
        .part_number(1)
        .checksum_sha256(&sum)
        .body(ByteStream::from(bodies[2].clone()))
        .send()
        .await
        .unwrap();
    let part = CompletedPart::builder()
        .part_number(1)
        .e_tag(r.e_tag().unwrap())
        .checksum_sha256(&sum)
        .build();
    let e = s3
        .complete_multipart_upload()
        .bucket(b)
        .key("mp/bad")
        .upload_id(&id)
        .checksum_sha256(format!("{}-1", Algo::Sha256.of(b"something else")))
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(part.clone())
                .build(),
        )
        .send()
        .await
        .expect_err("wrong composite checksum");
    assert_eq!(
        e.as_service_error().and_then(|s| s.meta().code()),
        Some("BadDigest"),
        "{e:?}"
    );
    assert!(
        s3.head_object()
            .bucket(b)
            .key("mp/bad")
            .send()
            .await
            .is_err()
    );
    // The right composite: sha256 of the part's binary sha256, then -1.
    let composite = {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&sum)
            .unwrap();
        format!("{}-1", Algo::Sha256.of(&raw))
    };
    let done = s3
        .complete_multipart_upload()
        .bucket(b)
        .key("mp/bad")
        .upload_id(&id)
        .checksum_sha256(&composite)
        .multipart_upload(CompletedMultipartUpload::builder().parts(part).build())
        .send()
        .await
        .expect("complete with the composite checksum");
    assert_eq!(done.checksum_sha256(), Some(composite.as_str()));
    assert_eq!(done.checksum_type(), Some(&ChecksumType::Composite));
}
