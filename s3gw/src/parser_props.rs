//! Property tests of every parser of network input in the gateway: arbitrary bytes and
//! strings, and valid inputs with one thing changed, fed to the Authorization header and
//! presigned-URL checks (SigV4 and SigV2), the query-string and date parsers, the
//! aws-chunked decoder, the XML request bodies, Range and copy-source headers, checksum
//! headers, metadata headers and the router. Each must return (an error for garbage),
//! never panic. 256 cases each keeps a debug run to seconds.

use crate::api::copy::{copy_range, parse_copy_source};
use crate::api::multipart_checksum::composite_checksum;
use crate::api::object_get::{Conditions, parse_range};
use crate::api::object_put::decode_content_md5;
use crate::auth::chunked::{ChunkSigner, ChunkedDecoder, Step, encode_signed, encode_unsigned};
use crate::auth::{self, AuthSettings, header, presigned, presigned_v2, sigv4};
use crate::body::RequestBody;
use crate::checksum::Algo;
use crate::error::Code;
use crate::xml::{self, CompleteMultipartXml, CreateBucketXml, DeleteXml};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SETTINGS: AuthSettings = AuthSettings { max_skew_secs: 900 };

/// Pieces of the XML bodies the gateway reads, and of XML that must not be expanded.
const XML_PIECES: &[&str] = &[
    "<CompleteMultipartUpload>",
    "</CompleteMultipartUpload>",
    "<Part>",
    "</Part>",
    "<PartNumber>",
    "</PartNumber>",
    "<ETag>",
    "</ETag>",
    "<ChecksumCRC32>",
    "<Delete>",
    "</Delete>",
    "<Object>",
    "</Object>",
    "<Key>",
    "</Key>",
    "<Quiet>",
    "</Quiet>",
    "<VersionId>",
    "<CreateBucketConfiguration>",
    "<LocationConstraint>",
    "</LocationConstraint>",
    "<?xml version=\"1.0\"?>",
    "<!DOCTYPE x [<!ENTITY e \"e\">]>",
    "&e;",
    "&amp;",
    "&#0;",
    "&#xD800;",
    "<![CDATA[",
    "]]>",
    "1",
    "-1",
    "4294967296",
    "\"etag\"",
    "true",
    "<",
    ">",
    "/",
];

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Header names a request might carry: the ones the gateway reads and random others.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("host".to_string()),
        Just("authorization".to_string()),
        Just("x-amz-date".to_string()),
        Just("date".to_string()),
        Just("x-amz-content-sha256".to_string()),
        Just("x-amz-copy-source".to_string()),
        Just("x-amz-copy-source-range".to_string()),
        Just("x-amz-decoded-content-length".to_string()),
        Just("x-amz-trailer".to_string()),
        Just("x-amz-sdk-checksum-algorithm".to_string()),
        Just("x-amz-checksum-crc32".to_string()),
        Just("x-amz-checksum-sha256".to_string()),
        Just("content-md5".to_string()),
        Just("content-type".to_string()),
        Just("content-length".to_string()),
        Just("content-encoding".to_string()),
        Just("range".to_string()),
        Just("if-match".to_string()),
        Just("if-modified-since".to_string()),
        "x-amz-meta-[a-z0-9-]{0,12}",
        "x-amz-[a-z0-9-]{1,16}",
        "[a-z][a-z0-9-]{0,16}",
    ]
}

/// Header values as the network can deliver them (any byte a header value may hold).
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        "[ -~]{0,64}".prop_map(String::into_bytes),
        any::<String>().prop_map(String::into_bytes),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    proptest::collection::vec((header_name(), header_value()), 0..10)
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::HEAD),
        Just(Method::PUT),
        Just(Method::POST),
        Just(Method::DELETE),
        Just(Method::OPTIONS),
    ]
}

/// Request paths: printable, percent escapes (valid or not), slashes.
fn path() -> impl Strategy<Value = String> {
    "/[a-zA-Z0-9%/._~+!$&'()*,;=:@-]{0,40}"
}

/// Raw query strings: pairs of arbitrary text, percent-encoded or not.
fn raw_query() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,80}",
        any::<String>(),
        proptest::collection::vec(
            (
                prop_oneof![
                    Just("X-Amz-Algorithm".to_string()),
                    Just("X-Amz-Credential".to_string()),
                    Just("X-Amz-Date".to_string()),
                    Just("X-Amz-Expires".to_string()),
                    Just("X-Amz-SignedHeaders".to_string()),
                    Just("X-Amz-Signature".to_string()),
                    Just("AWSAccessKeyId".to_string()),
                    Just("Expires".to_string()),
                    Just("Signature".to_string()),
                    Just("uploadId".to_string()),
                    Just("partNumber".to_string()),
                    Just("response-content-type".to_string()),
                    "[a-zA-Z-]{1,12}",
                ],
                "[ -~]{0,30}",
            ),
            0..8
        )
        .prop_map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={}", sigv4::uri_encode(v, true)))
                .collect::<Vec<_>>()
                .join("&")
        }),
    ]
}

/// A request head with the given parts; header values the `http` crate refuses (as hyper
/// would) are left out.
fn parts(method: Method, path: &str, raw_query: &str, hs: &[(String, Vec<u8>)]) -> Parts {
    let uri: http::Uri = if raw_query.is_empty() {
        path.parse()
    } else {
        format!("{path}?{raw_query}")
            .parse()
            .or_else(|_| format!("{path}?{}", sigv4::uri_encode(raw_query, false)).parse())
    }
    .unwrap_or_else(|_| "/".parse().unwrap());
    let mut p = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(())
        .unwrap()
        .into_parts()
        .0;
    for (k, v) in hs {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            p.headers.append(k, v);
        }
    }
    p
}

fn now() -> SystemTime {
    SystemTime::now()
}

/// A correctly header-signed request (host, x-amz-content-sha256, x-amz-date and `extra`
/// signed), as a client sends it.
fn signed_request(method: &str, path_q: &str, extra: &[(String, String)]) -> Parts {
    let date = crate::dates::amz_date(now());
    let (path, query) = path_q.split_once('?').unwrap_or((path_q, ""));
    let mut hs: Vec<(String, String)> = vec![
        ("host".into(), "gw.example:9000".into()),
        ("x-amz-content-sha256".into(), "UNSIGNED-PAYLOAD".into()),
        ("x-amz-date".into(), date.clone()),
    ];
    hs.extend(extra.iter().cloned());
    hs.sort();
    let names = hs
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canon: Vec<(String, String)> = hs
        .iter()
        .map(|(k, v)| (k.clone(), sigv4::canonical_header_value(v)))
        .collect();
    let cq = sigv4::canonical_query(&sigv4::query_pairs(query), None);
    let cr = sigv4::canonical_request(method, path, &cq, &canon, &names, "UNSIGNED-PAYLOAD");
    let scope = format!("{}/us-east-1/s3/aws4_request", &date[..8]);
    let key = sigv4::signing_key(SECRET, &date[..8], "us-east-1", "s3");
    let sig = sigv4::signature(&key, &sigv4::string_to_sign(&date, &scope, &cr));
    let auth = format!(
        "{} Credential=AK/{scope}, SignedHeaders={names}, Signature={sig}",
        sigv4::ALGORITHM
    );
    let mut p = http::Request::builder()
        .method(method)
        .uri(path_q)
        .body(())
        .unwrap()
        .into_parts()
        .0;
    for (k, v) in hs {
        p.headers.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    p.headers.insert("authorization", auth.parse().unwrap());
    p
}

fn header_auth(p: &Parts) -> Result<auth::Verified, crate::S3Error> {
    let query = sigv4::query_pairs(p.uri.query().unwrap_or(""));
    let value = p
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let pre = header::precheck(p, value, &SETTINGS)?;
    header::finish(p, &query, pre, SECRET)
}

/// A SigV4 presigned query for `path` signed with host only.
fn presigned_v4_query(method: &str, path: &str) -> String {
    let url = kdss_common::presign::presign_url(&kdss_common::presign::PresignParams {
        endpoint: "http://gw.example:9000",
        region: "us-east-1",
        access_key: "AK",
        secret_key: SECRET,
        method,
        bucket: path.trim_start_matches('/').split('/').next().unwrap(),
        key: path
            .trim_start_matches('/')
            .split_once('/')
            .map(|x| x.1)
            .unwrap(),
        expires_secs: 600,
        now: now(),
    })
    .unwrap();
    url.split_once('?').unwrap().1.to_string()
}

fn presigned_v4_auth(p: &Parts) -> Result<auth::Verified, crate::S3Error> {
    let query = sigv4::query_pairs(p.uri.query().unwrap_or(""));
    let pre = presigned::precheck(p, &query, &SETTINGS)?;
    presigned::finish(p, &query, pre, SECRET)
}

/// A SigV2 presigned query for `path` (no headers signed but what `headers` hold).
fn presigned_v2_query(method: &str, path: &str, headers: &HeaderMap) -> String {
    let expires = crate::auth::now_secs() + 600;
    let sts = presigned_v2::string_to_sign(method, headers, expires, path);
    let sig = presigned_v2::sign(SECRET, &sts);
    format!(
        "AWSAccessKeyId=AK&Expires={expires}&Signature={}",
        sigv4::uri_encode(&sig, true)
    )
}

fn presigned_v2_auth(p: &Parts) -> Result<auth::Verified, crate::S3Error> {
    let query = sigv4::query_pairs(p.uri.query().unwrap_or(""));
    let pre = presigned_v2::precheck(p, &query)?;
    presigned_v2::finish(p, pre, SECRET)
}

fn chunk_signer() -> ChunkSigner {
    ChunkSigner {
        key: sigv4::signing_key(SECRET, "20130524", "us-east-1", "s3"),
        amz_date: "20130524T000000Z".into(),
        scope: "20130524/us-east-1/s3/aws4_request".into(),
        seed: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
    }
}

/// Feeds `body` to a decoder in pieces of `piece` bytes: the data and trailers, or the
/// first error. Also checks the decoder never hands out more bytes than it was given.
fn decode(
    signer: Option<ChunkSigner>,
    trailer: bool,
    body: &[u8],
    piece: usize,
) -> Result<Vec<u8>, crate::auth::chunked::ChunkError> {
    let mut d = ChunkedDecoder::new(signer, trailer);
    let mut out = Vec::new();
    for p in body.chunks(piece.max(1)) {
        d.push(p);
        while let Step::Data(b) = d.step()? {
            out.extend_from_slice(&b);
        }
    }
    d.finish()?;
    assert!(out.len() <= body.len());
    Ok(out)
}

/// Runs a RequestBody over `body` to its end.
fn read_body(
    body: Vec<u8>,
    headers: &HeaderMap,
    payload: &auth::Payload,
) -> Result<Vec<u8>, crate::S3Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let b = RequestBody::new(axum::body::Body::from(body), headers, payload)?;
        Ok(b.collect(1 << 20).await?.to_vec())
    })
}

proptest! {
    #![proptest_config(config())]

    // ---------------- SigV4 header auth ----------------

    #[test]
    fn authorization_header_garbage_is_refused(
        value in prop_oneof![
            any::<String>(),
            "[ -~]{0,200}",
            "AWS4-HMAC-SHA256 [ -~]{0,200}",
            ("[ -~]{0,60}", "[ -~]{0,60}", "[ -~]{0,70}").prop_map(|(c, h, s)|
                format!("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}")),
        ],
        m in method(), p in path(), q in raw_query(), hs in headers(),
    ) {
        let _ = header::parse(&value);
        let mut p = parts(m, &p, &q, &hs);
        if let Ok(v) = HeaderValue::from_str(&value) {
            p.headers.insert("authorization", v);
        }
        let query = sigv4::query_pairs(p.uri.query().unwrap_or(""));
        if let Ok(pre) = header::precheck(&p, &value, &SETTINGS) {
            // A random signature never matches.
            prop_assert!(header::finish(&p, &query, pre, SECRET).is_err());
        }
    }

    #[test]
    fn a_signed_request_with_any_unsigned_amz_header_added_is_refused(
        name in "x-amz-[a-z0-9-]{1,20}",
        value in "[!-~]{1,40}",
        extra_signed in proptest::option::of(("x-amz-meta-[a-z]{1,8}", "[!-~]{1,20}")),
    ) {
        let extra: Vec<(String, String)> = extra_signed.into_iter().collect();
        let mut p = signed_request("PUT", "/bucket/key", &extra);
        prop_assert!(header_auth(&p).is_ok(), "the unmodified request verifies");
        prop_assume!(!p.headers.contains_key(name.as_str()));
        p.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
        let e = header_auth(&p).err().expect("refused");
        prop_assert_eq!(e.code, Code::AccessDenied);
        prop_assert!(e.message.contains(&name), "{}", e.message);
    }

    #[test]
    fn a_signed_request_with_one_byte_changed_is_refused(
        which in 0usize..4, pos in any::<prop::sample::Index>(), flip in 1u8..=255,
    ) {
        let mut p = signed_request("GET", "/bucket/key?list-type=2&prefix=a", &[]);
        let name = ["authorization", "x-amz-date", "host", "x-amz-content-sha256"][which];
        let mut v = p.headers.get(name).unwrap().as_bytes().to_vec();
        // In the Authorization header, the signature (the access key and the separators
        // are not covered by it: a changed key is a different secret at the master).
        let from = if name == "authorization" {
            v.len() - 64
        } else {
            0
        };
        let i = from + pos.index(v.len() - from);
        v[i] ^= flip;
        prop_assume!(HeaderValue::from_bytes(&v).is_ok());
        p.headers.insert(name, HeaderValue::from_bytes(&v).unwrap());
        prop_assert!(header_auth(&p).is_err());
    }

    // ---------------- SigV4 presigned URLs ----------------

    #[test]
    fn presigned_v4_garbage_is_refused(
        m in method(), p in path(), q in raw_query(), hs in headers(),
    ) {
        let p = parts(m, &p, &q, &hs);
        let query = sigv4::query_pairs(p.uri.query().unwrap_or(""));
        if let Ok(pre) = presigned::precheck(&p, &query, &SETTINGS) {
            prop_assert!(presigned::finish(&p, &query, pre, SECRET).is_err());
        }
    }

    #[test]
    fn a_presigned_v4_url_takes_no_unsigned_amz_header(
        name in "x-amz-[a-z0-9-]{1,20}", value in "[!-~]{1,40}",
    ) {
        let q = presigned_v4_query("PUT", "/bucket/key");
        let mut p = parts(Method::PUT, "/bucket/key", "", &[]);
        p.uri = format!("/bucket/key?{q}").parse().unwrap();
        p.headers.insert("host", "gw.example:9000".parse().unwrap());
        prop_assert!(presigned_v4_auth(&p).is_ok(), "the URL as made verifies");
        p.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
        let e = presigned_v4_auth(&p).err().expect("refused");
        prop_assert_eq!(e.code, Code::AccessDenied);
        prop_assert!(e.message.contains(&name), "{}", e.message);
    }

    #[test]
    fn a_presigned_v4_url_with_a_parameter_added_or_changed_is_refused(
        k in "[a-zA-Z-]{1,12}", v in "[ -~]{0,20}", drop_one in 0usize..6,
    ) {
        let q = presigned_v4_query("GET", "/bucket/key");
        let mut p = parts(Method::GET, "/bucket/key", "", &[]);
        p.headers.insert("host", "gw.example:9000".parse().unwrap());
        prop_assume!(k != "X-Amz-Signature");
        let added = format!("{q}&{k}={}", sigv4::uri_encode(&v, true));
        p.uri = format!("/bucket/key?{added}").parse().unwrap();
        prop_assert!(presigned_v4_auth(&p).is_err());
        let kept: Vec<&str> = q
            .split('&')
            .enumerate()
            .filter(|(i, _)| *i != drop_one)
            .map(|(_, x)| x)
            .collect();
        p.uri = format!("/bucket/key?{}", kept.join("&")).parse().unwrap();
        prop_assert!(presigned_v4_auth(&p).is_err());
    }

    // ---------------- SigV2 presigned URLs ----------------

    #[test]
    fn presigned_v2_garbage_is_refused(
        m in method(), p in path(), q in raw_query(), hs in headers(),
    ) {
        let p = parts(m, &p, &q, &hs);
        let query = sigv4::query_pairs(p.uri.query().unwrap_or(""));
        if let Ok(pre) = presigned_v2::precheck(&p, &query) {
            prop_assert!(presigned_v2::finish(&p, pre, SECRET).is_err());
        }
    }

    #[test]
    fn a_presigned_v2_url_takes_no_added_amz_header_or_parameter(
        name in "x-amz-[a-z0-9-]{1,20}", value in "[!-~]{1,40}",
        k in "[a-zA-Z-]{1,12}", v in "[ -~]{0,20}",
    ) {
        let q = presigned_v2_query("PUT", "/bucket/key", &HeaderMap::new());
        let mut p = parts(Method::PUT, "/bucket/key", "", &[]);
        p.uri = format!("/bucket/key?{q}").parse().unwrap();
        prop_assert!(presigned_v2_auth(&p).is_ok(), "the URL as made verifies");
        let mut with_header = p.clone();
        with_header.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
        let e = presigned_v2_auth(&with_header).err().expect("refused");
        prop_assert_eq!(e.code, Code::SignatureDoesNotMatch);
        prop_assume!(!["AWSAccessKeyId", "Expires", "Signature"].contains(&k.as_str()));
        p.uri = format!("/bucket/key?{q}&{k}={}", sigv4::uri_encode(&v, true))
            .parse()
            .unwrap();
        prop_assert!(presigned_v2_auth(&p).is_err());
    }

    // ---------------- query strings, credentials, dates ----------------

    #[test]
    fn query_and_credential_and_date_parsers_take_anything(s in any::<String>(), b in any::<Vec<u8>>()) {
        let pairs = sigv4::query_pairs(&s);
        let _ = sigv4::canonical_query(&pairs, Some("X-Amz-Signature"));
        let _ = sigv4::uri_decode(&s);
        let _ = auth::canonical_uris(&s);
        let _ = auth::parse_credential(&s, Code::AuthorizationHeaderMalformed);
        let _ = auth::parse_amz_date(&s);
        let _ = crate::dates::parse_http_date(&s);
        let lossy = String::from_utf8_lossy(&b);
        let _ = crate::dates::parse_http_date(&lossy);
        let _ = auth::parse_amz_date(&lossy);
    }

    #[test]
    fn amz_dates_round_trip(secs in 0i64..253_402_300_799) {
        let t = UNIX_EPOCH + Duration::from_secs(secs as u64);
        prop_assert_eq!(auth::parse_amz_date(&crate::dates::amz_date(t)), Some(secs));
        let http = httpdate::fmt_http_date(t);
        prop_assert_eq!(crate::dates::parse_http_date(&http), Some(secs));
    }

    // ---------------- aws-chunked ----------------

    #[test]
    fn chunked_decoder_takes_arbitrary_bytes(
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..600),
            proptest::collection::vec(
                prop_oneof![
                    Just(b"\r\n".to_vec()),
                    Just(b"0".to_vec()),
                    Just(b";chunk-signature=".to_vec()),
                    Just(b"x-amz-checksum-crc32:".to_vec()),
                    "[0-9a-fA-F]{1,17}".prop_map(String::into_bytes),
                    proptest::collection::vec(any::<u8>(), 0..20),
                ],
                0..30,
            ).prop_map(|v| v.concat()),
        ],
        signed in any::<bool>(), trailer in any::<bool>(), piece in 1usize..100,
    ) {
        let signer = signed.then(chunk_signer);
        let r = decode(signer, trailer, &body, piece);
        if signed {
            // Random bytes never carry valid chunk signatures, except a body that is
            // only a final chunk without one... which is refused too.
            prop_assert!(r.is_err());
        }
    }

    #[test]
    fn chunked_bodies_with_one_byte_changed_never_decode_to_other_data(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        chunk in 1usize..1500, pos in any::<prop::sample::Index>(), flip in 1u8..=255,
        piece in 1usize..700, with_trailer in any::<bool>(),
    ) {
        let trailer = with_trailer.then_some(("x-amz-checksum-crc32", "AAAAAA=="));
        let body = encode_signed(&chunk_signer(), &data, chunk, trailer);
        prop_assert_eq!(decode(Some(chunk_signer()), with_trailer, &body, piece).unwrap(), data.clone());
        let mut bad = body.clone();
        let i = pos.index(bad.len());
        bad[i] ^= flip;
        if let Ok(out) = decode(Some(chunk_signer()), with_trailer, &bad, piece) {
            prop_assert_eq!(out, data.clone());
        }
        let unsigned = encode_unsigned(&data, chunk, ("x-amz-checksum-crc32", "AAAAAA=="));
        prop_assert_eq!(decode(None, true, &unsigned, piece).unwrap(), data);
    }

    // ---------------- request bodies and checksum headers ----------------

    #[test]
    fn request_bodies_with_arbitrary_checksum_headers_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        hs in proptest::collection::vec((
            prop_oneof![
                Just("x-amz-checksum-crc32".to_string()),
                Just("x-amz-checksum-crc32c".to_string()),
                Just("x-amz-checksum-crc64nvme".to_string()),
                Just("x-amz-checksum-sha1".to_string()),
                Just("x-amz-checksum-sha256".to_string()),
                Just("x-amz-trailer".to_string()),
                Just("x-amz-sdk-checksum-algorithm".to_string()),
                Just("x-amz-decoded-content-length".to_string()),
                Just("content-length".to_string()),
                Just("content-md5".to_string()),
            ],
            header_value(),
        ), 0..4),
        kind in 0u8..4,
    ) {
        let p = parts(Method::PUT, "/b/k", "", &hs);
        let payload = match kind {
            0 => auth::Payload::Unsigned,
            1 => auth::Payload::Sha256(sigv4::sha256_hex(&body)),
            2 => auth::Payload::Chunked { signer: None, trailer: true },
            _ => auth::Payload::Chunked { signer: Some(chunk_signer()), trailer: false },
        };
        let _ = read_body(body, &p.headers, &payload);
        let _ = decode_content_md5(p.headers.get("content-md5"));
        for (_, v) in &hs {
            let s = String::from_utf8_lossy(v);
            let _ = Algo::parse(&s);
        }
    }

    #[test]
    fn a_checksum_header_that_does_not_match_the_body_is_refused(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        algo in prop::sample::select(Algo::ALL.to_vec()),
        wrong in "[A-Za-z0-9+/=]{0,60}",
    ) {
        let right = algo.of(&body);
        prop_assume!(wrong != right);
        let mut h = HeaderMap::new();
        h.insert(algo.header(), HeaderValue::from_str(&wrong).unwrap());
        let e = read_body(body.clone(), &h, &auth::Payload::Unsigned).unwrap_err();
        prop_assert_eq!(e.code, Code::BadDigest);
        h.insert(algo.header(), HeaderValue::from_str(&right).unwrap());
        prop_assert_eq!(read_body(body.clone(), &h, &auth::Payload::Unsigned).unwrap(), body);
    }

    #[test]
    fn composite_checksums_take_arbitrary_part_values(
        parts in proptest::collection::vec(any::<String>(), 0..5),
        algo in prop::sample::select(Algo::ALL.to_vec()),
    ) {
        let _ = composite_checksum(algo, &parts);
    }

    // ---------------- XML bodies ----------------

    #[test]
    fn xml_bodies_take_arbitrary_bytes(
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..400),
            proptest::collection::vec(
                prop::sample::select(XML_PIECES).prop_map(|s| s.as_bytes().to_vec()),
                0..40,
            ).prop_map(|v| v.concat()),
        ],
    ) {
        for r in [
            xml::parse::<CompleteMultipartXml>(&body).map(|_| ()),
            xml::parse::<DeleteXml>(&body).map(|_| ()),
            xml::parse::<CreateBucketXml>(&body).map(|_| ()),
        ] {
            if !body.contains(&b'<') {
                prop_assert!(r.is_err(), "{:?}", String::from_utf8_lossy(&body));
            }
        }
    }

    // ---------------- Range, copy source, conditions, metadata ----------------

    #[test]
    fn ranges_are_inside_the_object_or_refused(
        h in prop_oneof![
            any::<String>(),
            "bytes=[0-9]{0,21}-[0-9]{0,21}",
            "bytes= ?-?[0-9]{0,5} ?- ?[0-9]{0,5}[,]?",
        ],
        size in prop_oneof![Just(0u64), Just(1), 0u64..100_000, Just(u64::MAX)],
    ) {
        if let Ok(Some((start, len))) = parse_range(Some(&h), size) {
            prop_assert!(len >= 1 && start.checked_add(len).is_some_and(|e| e <= size));
        }
        if let Ok((start, len)) = copy_range(Some(&h), size) {
            prop_assert!(len >= 1 && start.checked_add(len).is_some_and(|e| e <= size));
        }
    }

    #[test]
    fn copy_sources_name_a_bucket_and_a_key_or_are_refused(s in prop_oneof![
        any::<String>(), "/?[a-z%0-9]{0,8}/?[a-z%0-9/]{0,12}(\\?versionId=[a-z]{0,4})?",
    ]) {
        if let Ok((b, k)) = parse_copy_source(&s) {
            prop_assert!(!b.is_empty() && !k.is_empty());
        }
    }

    #[test]
    fn conditions_and_metadata_headers_take_anything(
        hs in headers(), etag in "[ -~]{0,40}", mtime in any::<i64>(), is_get in any::<bool>(),
    ) {
        let p = parts(Method::GET, "/b/k", "", &hs);
        for prefix in ["", "x-amz-copy-source-"] {
            let _ = Conditions::from_headers(&p.headers, prefix).check(&etag, mtime, is_get);
        }
        let _ = crate::api::meta_from_headers(&p.headers);
    }

    // ---------------- routing ----------------

    #[test]
    fn the_router_takes_any_target(
        m in method(), p in prop_oneof![path(), any::<String>()], q in raw_query(),
        host in proptest::option::of("[ -~]{0,40}"), hs in headers(),
    ) {
        let query = sigv4::query_pairs(&q);
        let h = parts(Method::GET, "/", "", &hs).headers;
        for domain in [None, Some("s3.example.com")] {
            if let Ok((b, k)) = crate::router::bucket_and_key(&p, host.as_deref(), domain) {
                let _ = crate::router::route(&m, b, k, &query, &h);
            }
        }
    }
}
