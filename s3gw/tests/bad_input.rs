//! Hand-signed requests against a real local cluster: the aws-chunked forms (signed
//! chunks, unsigned and signed trailers) that boto3 over http never sends, and bad input
//! — bad signature, unknown key, skewed clock, expired presign, tampered chunk, wrong
//! trailer checksum, wrong payload hash, malformed CompleteMultipartUpload XML, a key
//! that cannot be a path — each a 4xx with the right code and nothing stored.

mod common;

use kdss_common::presign::{PresignParams, presign_url};
use kdss_s3gw::auth::chunked::{encode_signed, encode_unsigned};
use kdss_s3gw::auth::sigv4::sha256_hex;
use kdss_s3gw::bench::http::Signer;
use kdss_s3gw::checksum::Algo;
use std::time::{Duration, SystemTime};

async fn absent(env: &common::Env, path: &str) {
    let r = env.send("HEAD", path, "UNSIGNED-PAYLOAD", &[], b"").await;
    assert_eq!(r.status, 404, "{path} must not exist after a refused write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_forms_work_and_bad_input_stores_nothing() {
    let env = common::start().await;
    let b = env.bucket.clone();
    let data = common::data(200_000, 9);
    let len = data.len().to_string();

    // Signed payload (sha256 of the body) and UNSIGNED-PAYLOAD.
    let p = format!("/{b}/plain-signed");
    let r = env.send("PUT", &p, &sha256_hex(&data), &[], &data).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(env.get(&p).await.body, data);

    // STREAMING-AWS4-HMAC-SHA256-PAYLOAD: chunk signatures chained from the seed.
    let p = format!("/{b}/chunked-signed");
    let extra = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", len.as_str()),
    ];
    let ex: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let signed = env.signer().sign(
        "PUT",
        &env.host,
        &p,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        &ex,
        SystemTime::now(),
    );
    let body = encode_signed(&signed.chunk_signer(), &data, 65536, None);
    let mut c = kdss_s3gw::bench::http::Conn::connect(&env.host)
        .await
        .unwrap();
    let (r, _) = c
        .send("PUT", &p, &signed.headers, &body, true)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(env.get(&p).await.body, data);

    // The same with one byte of chunk data changed: SignatureDoesNotMatch, nothing stored.
    let p = format!("/{b}/chunked-tampered");
    let signed = env.signer().sign(
        "PUT",
        &env.host,
        &p,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        &ex,
        SystemTime::now(),
    );
    let mut body = encode_signed(&signed.chunk_signer(), &data, 65536, None);
    let i = body.len() / 2;
    body[i] ^= 1;
    let mut c = kdss_s3gw::bench::http::Conn::connect(&env.host)
        .await
        .unwrap();
    let (r, _) = c
        .send("PUT", &p, &signed.headers, &body, true)
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "SignatureDoesNotMatch")
    );
    absent(&env, &p).await;

    // STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer: right, then wrong.
    for (name, crc, ok) in [
        ("trailer-ok", Algo::Crc32.of(&data), true),
        ("trailer-bad", Algo::Crc32.of(b"other"), false),
    ] {
        let p = format!("/{b}/{name}");
        let extra = [
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", len.as_str()),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ];
        let body = encode_unsigned(&data, 8192, ("x-amz-checksum-crc32", &crc));
        let r = env
            .send(
                "PUT",
                &p,
                "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                &extra,
                &body,
            )
            .await;
        if ok {
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            assert_eq!(r.header("x-amz-checksum-crc32"), Some(crc.as_str()));
            assert_eq!(env.get(&p).await.body, data);
            let h = env
                .send(
                    "HEAD",
                    &p,
                    "UNSIGNED-PAYLOAD",
                    &[("x-amz-checksum-mode", "ENABLED")],
                    b"",
                )
                .await;
            assert_eq!(
                h.header("x-amz-checksum-crc32"),
                Some(crc.as_str()),
                "checksum stored and returned"
            );
        } else {
            assert_eq!((r.status, r.error_code().as_str()), (400, "BadDigest"));
            absent(&env, &p).await;
        }
    }

    // STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER with a CRC32C trailer.
    let p = format!("/{b}/signed-trailer");
    let crc = Algo::Crc32c.of(&data);
    let ex: Vec<(String, String)> = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", len.as_str()),
        ("x-amz-trailer", "x-amz-checksum-crc32c"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let signed = env.signer().sign(
        "PUT",
        &env.host,
        &p,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        &ex,
        SystemTime::now(),
    );
    let body = encode_signed(
        &signed.chunk_signer(),
        &data,
        65536,
        Some(("x-amz-checksum-crc32c", &crc)),
    );
    let mut c = kdss_s3gw::bench::http::Conn::connect(&env.host)
        .await
        .unwrap();
    let (r, _) = c
        .send("PUT", &p, &signed.headers, &body, true)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(env.get(&p).await.body, data);

    // Payload hash that does not match the body.
    let p = format!("/{b}/bad-sha");
    let r = env
        .send("PUT", &p, &sha256_hex(b"something else"), &[], &data)
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "XAmzContentSHA256Mismatch")
    );
    absent(&env, &p).await;

    // Wrong secret; unknown access key; a clock 20 minutes off.
    let p = format!("/{b}/bad-sig");
    let wrong = Signer {
        secret_key: "not-the-secret".into(),
        ..env.signer()
    };
    let r = env
        .send_as(
            &wrong,
            "PUT",
            &p,
            "UNSIGNED-PAYLOAD",
            &[],
            b"x",
            SystemTime::now(),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "SignatureDoesNotMatch")
    );
    absent(&env, &p).await;
    let nobody = Signer {
        access_key: "NOSUCHKEY0000000".into(),
        ..env.signer()
    };
    let r = env
        .send_as(
            &nobody,
            "GET",
            &format!("/{b}"),
            "UNSIGNED-PAYLOAD",
            &[],
            b"",
            SystemTime::now(),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "InvalidAccessKeyId")
    );
    let skewed = SystemTime::now() - Duration::from_secs(20 * 60);
    let r = env
        .send_as(
            &env.signer(),
            "GET",
            &format!("/{b}"),
            "UNSIGNED-PAYLOAD",
            &[],
            b"",
            skewed,
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "RequestTimeTooSkewed")
    );
    assert!(r.header("x-amz-request-id").is_some());
    assert!(String::from_utf8_lossy(&r.body).contains("<RequestId>"));

    // An expired presigned PUT.
    let url = presign_url(&PresignParams {
        endpoint: &env.endpoint,
        region: "us-east-1",
        access_key: &env.access_key,
        secret_key: &env.secret_key,
        method: "PUT",
        bucket: &b,
        key: "presigned-expired",
        expires_secs: 1,
        now: SystemTime::now() - Duration::from_secs(10),
    })
    .unwrap();
    let path = url.trim_start_matches(&env.endpoint).to_string();
    let mut c = kdss_s3gw::bench::http::Conn::connect(&env.host)
        .await
        .unwrap();
    let (r, _) = c
        .send(
            "PUT",
            &path,
            &[("host".into(), env.host.clone())],
            b"data",
            true,
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.error_code().as_str()), (403, "AccessDenied"));
    absent(&env, &format!("/{b}/presigned-expired")).await;

    // Malformed XML in CompleteMultipartUpload.
    let p = format!("/{b}/mp-bad-xml");
    let r = env
        .send(
            "POST",
            &format!("{p}?uploads"),
            "UNSIGNED-PAYLOAD",
            &[],
            b"",
        )
        .await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).to_string();
    let id = text
        .split_once("<UploadId>")
        .unwrap()
        .1
        .split_once("</UploadId>")
        .unwrap()
        .0
        .to_string();
    let part = common::data(1000, 4);
    let r = env
        .send(
            "PUT",
            &format!("{p}?partNumber=1&uploadId={id}"),
            "UNSIGNED-PAYLOAD",
            &[],
            &part,
        )
        .await;
    assert_eq!(r.status, 200);
    let xml = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>";
    let r = env
        .send(
            "POST",
            &format!("{p}?uploadId={id}"),
            "UNSIGNED-PAYLOAD",
            &[],
            xml,
        )
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "MalformedXML"));
    absent(&env, &p).await;

    // A key that cannot be a path.
    let p = format!("/{b}/x//y");
    let r = env.send("PUT", &p, "UNSIGNED-PAYLOAD", &[], b"data").await;
    assert!(
        (400..500).contains(&r.status),
        "a//b refused, got {} {}",
        r.status,
        r.error_code()
    );
    absent(&env, &p).await;
}
