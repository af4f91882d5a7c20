//! The AWS SDK for Rust against a real local cluster through the gateway: the happy
//! paths of every operation family, checked byte for byte.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use kdss_common::presign::{PresignParams, presign_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_operations_round_trip_through_the_gateway() {
    let env = common::start().await;
    let s3 = env.sdk().await;
    let b = "sdk-ops";

    // Buckets.
    s3.create_bucket()
        .bucket(b)
        .send()
        .await
        .expect("create bucket");
    // In us-east-1, as on AWS, re-creating a bucket you own succeeds (s3-tests checks it).
    s3.create_bucket()
        .bucket(b)
        .send()
        .await
        .expect("owner re-creates its bucket in us-east-1");
    s3.head_bucket()
        .bucket(b)
        .send()
        .await
        .expect("head bucket");
    let names: Vec<String> = s3
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|x| x.name().map(str::to_string))
        .collect();
    assert!(names.contains(&b.to_string()), "{names:?}");
    s3.get_bucket_location()
        .bucket(b)
        .send()
        .await
        .expect("location");

    // Put / get / head with metadata and content headers.
    let body = common::data(100_000, 1);
    s3.put_object()
        .bucket(b)
        .key("dir/obj.bin")
        .content_type("application/x-test")
        .cache_control("max-age=10")
        .metadata("color", "blue")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .expect("put");
    let got = s3
        .get_object()
        .bucket(b)
        .key("dir/obj.bin")
        .send()
        .await
        .expect("get");
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(got.cache_control(), Some("max-age=10"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str),
        Some("blue")
    );
    let etag = got.e_tag().unwrap().to_string();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        &body[..]
    );
    let head = s3
        .head_object()
        .bucket(b)
        .key("dir/obj.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(100_000));
    assert_eq!(head.e_tag(), Some(etag.as_str()));

    // Ranges: closed, open, suffix; a range past the end is 416 InvalidRange.
    for (range, want) in [
        ("bytes=10-19", &body[10..20]),
        ("bytes=99990-", &body[99_990..]),
        ("bytes=-5", &body[99_995..]),
    ] {
        let r = s3
            .get_object()
            .bucket(b)
            .key("dir/obj.bin")
            .range(range)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.body.collect().await.unwrap().into_bytes().as_ref(),
            want,
            "{range}"
        );
    }
    let e = s3
        .get_object()
        .bucket(b)
        .key("dir/obj.bin")
        .range("bytes=200000-")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.into_service_error().meta().code(), Some("InvalidRange"));

    // Conditionals.
    let e = s3
        .get_object()
        .bucket(b)
        .key("dir/obj.bin")
        .if_match("\"nope\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(412));
    let e = s3
        .get_object()
        .bucket(b)
        .key("dir/obj.bin")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(304));

    // Listing: UTF-8 byte order of full keys (a.b before a/b), prefixes folded.
    for k in ["a/b", "a.b", "a/c", "b"] {
        s3.put_object()
            .bucket(b)
            .key(k)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let l = s3.list_objects_v2().bucket(b).send().await.unwrap();
    let keys: Vec<&str> = l.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["a.b", "a/b", "a/c", "b", "dir/obj.bin"]);
    let l = s3
        .list_objects_v2()
        .bucket(b)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = l.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<&str> = l
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!((keys, prefixes), (vec!["a.b", "b"], vec!["a/", "dir/"]));
    let l = s3
        .list_objects_v2()
        .bucket(b)
        .max_keys(2)
        .send()
        .await
        .unwrap();
    assert!(l.is_truncated().unwrap());
    let l2 = s3
        .list_objects_v2()
        .bucket(b)
        .continuation_token(l.next_continuation_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(l2.contents().first().and_then(|o| o.key()), Some("a/c"));
    let v = s3
        .list_object_versions()
        .bucket(b)
        .send()
        .await
        .expect("versions on unversioned bucket");
    assert_eq!(v.versions().len(), 5);

    // Copy (metadata kept), then REPLACE.
    s3.copy_object()
        .bucket(b)
        .key("copy.bin")
        .copy_source(format!("{b}/dir/obj.bin"))
        .send()
        .await
        .expect("copy");
    let c = s3
        .get_object()
        .bucket(b)
        .key("copy.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(
        c.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str),
        Some("blue")
    );
    assert_eq!(
        c.body.collect().await.unwrap().into_bytes().as_ref(),
        &body[..]
    );

    // Multipart: 5 MiB + 1 MiB + an UploadPartCopy range; ETag md5-of-md5s-3.
    let up = s3
        .create_multipart_upload()
        .bucket(b)
        .key("mp.bin")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let p1 = common::data(5 << 20, 2);
    let p2 = common::data(5 << 20, 3); // every part but the last is >= 5 MiB
    let e1 = s3
        .upload_part()
        .bucket(b)
        .key("mp.bin")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from(p1.clone()))
        .send()
        .await
        .unwrap();
    let e2 = s3
        .upload_part()
        .bucket(b)
        .key("mp.bin")
        .upload_id(id)
        .part_number(2)
        .body(ByteStream::from(p2.clone()))
        .send()
        .await
        .unwrap();
    let e3 = s3
        .upload_part_copy()
        .bucket(b)
        .key("mp.bin")
        .upload_id(id)
        .part_number(3)
        .copy_source(format!("{b}/dir/obj.bin"))
        .copy_source_range("bytes=0-999")
        .send()
        .await
        .unwrap();
    let listed = s3
        .list_parts()
        .bucket(b)
        .key("mp.bin")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.parts().len(), 3);
    let l = s3
        .list_objects_v2()
        .bucket(b)
        .prefix("mp")
        .send()
        .await
        .unwrap();
    assert_eq!(l.key_count(), Some(0), "an upload in progress is invisible");
    let parts = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(e1.e_tag().unwrap())
                .build(),
        )
        .parts(
            CompletedPart::builder()
                .part_number(2)
                .e_tag(e2.e_tag().unwrap())
                .build(),
        )
        .parts(
            CompletedPart::builder()
                .part_number(3)
                .e_tag(e3.copy_part_result().unwrap().e_tag().unwrap())
                .build(),
        )
        .build();
    let done = s3
        .complete_multipart_upload()
        .bucket(b)
        .key("mp.bin")
        .upload_id(id)
        .multipart_upload(parts)
        .send()
        .await
        .expect("complete");
    assert!(
        done.e_tag().unwrap().ends_with("-3\""),
        "{:?}",
        done.e_tag()
    );
    let got = s3
        .get_object()
        .bucket(b)
        .key("mp.bin")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let mut want = p1.clone();
    want.extend_from_slice(&p2);
    want.extend_from_slice(&body[..1000]);
    assert_eq!(got.len(), want.len());
    assert!(got.as_ref() == &want[..], "multipart content differs");

    // Presigned GET works without credentials.
    let url = presign_url(&PresignParams {
        endpoint: &env.endpoint,
        region: "us-east-1",
        access_key: &env.access_key,
        secret_key: &env.secret_key,
        method: "GET",
        bucket: b,
        key: "dir/obj.bin",
        expires_secs: 60,
        now: std::time::SystemTime::now(),
    })
    .unwrap();
    let path = url.trim_start_matches(&env.endpoint).to_string();
    let mut c = kdss_s3gw::bench::http::Conn::connect(&env.host)
        .await
        .unwrap();
    let (r, _) = c
        .send(
            "GET",
            &path,
            &[("host".into(), env.host.clone())],
            b"",
            true,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);

    // DeleteObjects as the SDK sends it (a checksum header, no Content-MD5), then the rest.
    let mut del = Delete::builder();
    for k in [
        "a/b",
        "a.b",
        "a/c",
        "b",
        "dir/obj.bin",
        "copy.bin",
        "mp.bin",
    ] {
        del = del.objects(ObjectIdentifier::builder().key(k).build().unwrap());
    }
    let r = s3
        .delete_objects()
        .bucket(b)
        .delete(del.build().unwrap())
        .send()
        .await
        .expect("delete objects");
    assert_eq!(r.deleted().len(), 7);
    assert!(r.errors().is_empty());
    let l = s3.list_objects_v2().bucket(b).send().await.unwrap();
    assert_eq!(
        l.key_count(),
        Some(0),
        "implicit directories went away with their objects: {:?}",
        l.common_prefixes()
    );
    s3.delete_bucket()
        .bucket(b)
        .send()
        .await
        .expect("delete bucket");
    let e = s3.head_bucket().bucket(b).send().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(404));
}
