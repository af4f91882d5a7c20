//! Attacks on the gateway's signature checks against a real local cluster: a presigned
//! PUT URL (ours, the AWS SDK's, SigV2) or a signed request with an `x-amz-copy-source`
//! header added by whoever holds it — which would copy an object the signer can read into
//! the URL's key — and a signed request that does not sign `host`. Each is refused with
//! the unsigned header named, and nothing is written.

mod common;

use aws_sdk_s3::presigning::PresigningConfig;
use kdss_common::presign::{PresignParams, presign_url};
use kdss_s3gw::auth::presigned_v2;
use kdss_s3gw::auth::sigv4;
use kdss_s3gw::bench::http::{Conn, RawResponse};
use std::time::{Duration, SystemTime};

async fn absent(env: &common::Env, path: &str) {
    let r = env.send("HEAD", path, "UNSIGNED-PAYLOAD", &[], b"").await;
    assert_eq!(
        r.status, 404,
        "{path} must not exist after a refused request"
    );
}

async fn raw(
    env: &common::Env,
    method: &str,
    path_q: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let h: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut c = Conn::connect(&env.host).await.expect("connect");
    c.send(method, path_q, &h, body, true)
        .await
        .expect("request")
        .0
}

fn text(r: &RawResponse) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

/// Asserts a 403 whose code is `code` and whose message names `header`.
fn refused(r: &RawResponse, code: &str, header: &str) {
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, code),
        "{}",
        text(r)
    );
    assert!(
        text(r).contains(header),
        "the refusal names {header}: {}",
        text(r)
    );
}

/// Sends an SDK-presigned request with the headers it names (and `add`).
async fn send_presigned(
    env: &common::Env,
    p: &aws_sdk_s3::presigning::PresignedRequest,
    add: Option<(&str, &str)>,
    body: &[u8],
) -> RawResponse {
    let path = p.uri().trim_start_matches(&env.endpoint).to_string();
    let mut h: Vec<(&str, &str)> = p.headers().collect();
    if !h.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        h.push(("host", &env.host));
    }
    h.extend(add);
    raw(env, p.method(), &path, &h, body).await
}

/// A SigV2 presigned URL path+query for `path`, signing `amz` headers and `overrides`.
fn presign_v2(
    env: &common::Env,
    method: &str,
    path: &str,
    amz: &[(&str, &str)],
    overrides: &[(&str, &str)],
) -> String {
    let expires = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 300;
    let mut h = http::HeaderMap::new();
    for (k, v) in amz {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let mut resource = path.to_string();
    if !overrides.is_empty() {
        let mut o: Vec<String> = overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
        o.sort();
        resource = format!("{resource}?{}", o.join("&"));
    }
    let sig = presigned_v2::sign(
        &env.secret_key,
        &presigned_v2::string_to_sign(method, &h, expires, &resource),
    );
    let mut q = format!(
        "AWSAccessKeyId={}&Expires={expires}&Signature={}",
        env.access_key,
        sigv4::uri_encode(&sig, true)
    );
    for (k, v) in overrides {
        q.push_str(&format!("&{k}={}", sigv4::uri_encode(v, true)));
    }
    format!("{path}?{q}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_unsigned_headers_are_refused_and_change_nothing() {
    let env = common::start().await;
    let b = env.bucket.clone();
    let secret = b"the secret object another bucket holds";
    let r = env
        .send("PUT", "/vault", "UNSIGNED-PAYLOAD", &[], b"")
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let r = env
        .send("PUT", "/vault/secret", "UNSIGNED-PAYLOAD", &[], secret)
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let copy_source = ("x-amz-copy-source", "vault/secret");

    // 1. Our presigned PUT URL (kdss-cli presign): works as made, refused with a header.
    let url = |key: &str| {
        let url = presign_url(&PresignParams {
            endpoint: &env.endpoint,
            region: "us-east-1",
            access_key: &env.access_key,
            secret_key: &env.secret_key,
            method: "PUT",
            bucket: &b,
            key,
            expires_secs: 300,
            now: SystemTime::now(),
        })
        .unwrap();
        url.trim_start_matches(&env.endpoint).to_string()
    };
    let host = ("host", env.host.as_str());
    let r = raw(&env, "PUT", &url("presigned-ok"), &[host], b"data").await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(env.get(&format!("/{b}/presigned-ok")).await.body, b"data");
    let r = raw(
        &env,
        "PUT",
        &url("presigned-copy"),
        &[host, copy_source],
        b"",
    )
    .await;
    refused(&r, "AccessDenied", "x-amz-copy-source");
    absent(&env, &format!("/{b}/presigned-copy")).await;
    // Sent to another host than the one signed: the signature breaks.
    let r = raw(
        &env,
        "PUT",
        &url("presigned-host"),
        &[("host", "evil.example:9000")],
        b"x",
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "SignatureDoesNotMatch")
    );
    absent(&env, &format!("/{b}/presigned-host")).await;

    // 2. A presigned PUT made by the AWS SDK for Rust, sent with the headers it names.
    let s3 = env.sdk().await;
    let presign = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let ok = s3
        .put_object()
        .bucket(&b)
        .key("sdk-ok")
        .presigned(presign.clone())
        .await
        .unwrap();
    let copy = s3
        .put_object()
        .bucket(&b)
        .key("sdk-copy")
        .presigned(presign)
        .await
        .unwrap();
    let r = send_presigned(&env, &ok, None, b"sdk data").await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(env.get(&format!("/{b}/sdk-ok")).await.body, b"sdk data");
    let r = send_presigned(&env, &copy, Some(copy_source), b"").await;
    refused(&r, "AccessDenied", "x-amz-copy-source");
    absent(&env, &format!("/{b}/sdk-copy")).await;

    // 3. A header-signed PUT with the copy source added after signing.
    let p = format!("/{b}/signed-copy");
    let s = env.signer().sign(
        "PUT",
        &env.host,
        &p,
        "UNSIGNED-PAYLOAD",
        &[],
        SystemTime::now(),
    );
    let mut h: Vec<(&str, &str)> = s
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    h.push(copy_source);
    let r = raw(&env, "PUT", &p, &h, b"").await;
    refused(&r, "AccessDenied", "x-amz-copy-source");
    absent(&env, &p).await;

    // 4. A header-signed PUT that does not sign host, sent with another Host.
    let p = format!("/{b}/unsigned-host");
    let date = kdss_s3gw::bench::http::amz_date(SystemTime::now());
    let signed = "x-amz-content-sha256;x-amz-date";
    let hv = vec![
        (
            "x-amz-content-sha256".to_string(),
            "UNSIGNED-PAYLOAD".to_string(),
        ),
        ("x-amz-date".to_string(), date.clone()),
    ];
    let cr = sigv4::canonical_request("PUT", &p, "", &hv, signed, "UNSIGNED-PAYLOAD");
    let scope = format!("{}/us-east-1/s3/aws4_request", &date[..8]);
    let key = sigv4::signing_key(&env.secret_key, &date[..8], "us-east-1", "s3");
    let sig = sigv4::signature(&key, &sigv4::string_to_sign(&date, &scope, &cr));
    let auth = format!(
        "{} Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}",
        sigv4::ALGORITHM,
        env.access_key
    );
    let h = [
        ("host", "evil.example:9000"),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ("x-amz-date", date.as_str()),
        ("authorization", auth.as_str()),
    ];
    let r = raw(&env, "PUT", &p, &h, b"x").await;
    refused(&r, "AccessDenied", "host");
    absent(&env, &p).await;

    // 5. SigV2 presigned URLs (s3cmd signurl, aws cli presign): as made they work; an
    // added x-amz-* header or query parameter breaks them.
    let p = format!("/{b}/v2-ok");
    let r = raw(
        &env,
        "PUT",
        &presign_v2(&env, "PUT", &p, &[], &[]),
        &[host],
        b"v2",
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(env.get(&p).await.body, b"v2");
    let p = format!("/{b}/v2-copy");
    let r = raw(
        &env,
        "PUT",
        &presign_v2(&env, "PUT", &p, &[], &[]),
        &[host, copy_source],
        b"",
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "SignatureDoesNotMatch"),
        "{}",
        text(&r)
    );
    absent(&env, &p).await;
    // With the copy source signed by the key's owner, the copy is theirs to make.
    let p = format!("/{b}/v2-signed-copy");
    let r = raw(
        &env,
        "PUT",
        &presign_v2(&env, "PUT", &p, &[copy_source], &[]),
        &[host, copy_source],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(env.get(&p).await.body, secret);
    // Response overrides: signed ones apply, added ones are refused.
    let p = format!("/{b}/v2-ok");
    let ct = ("response-content-type", "text/plain; charset=x");
    let r = raw(
        &env,
        "GET",
        &presign_v2(&env, "GET", &p, &[], &[ct]),
        &[host],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=x"));
    let q = format!(
        "{}&response-content-type=text%2Fhtml",
        presign_v2(&env, "GET", &p, &[], &[])
    );
    let r = raw(&env, "GET", &q, &[host], b"").await;
    assert_eq!(r.status, 403, "{}", text(&r));
    // Only GET, HEAD and PUT of an object.
    let r = raw(
        &env,
        "DELETE",
        &presign_v2(&env, "DELETE", &p, &[], &[]),
        &[host],
        b"",
    )
    .await;
    refused(&r, "AccessDenied", "GET, HEAD and PUT");
    assert_eq!(env.get(&p).await.status, 200, "the DELETE deleted nothing");

    // The secret is where it was, and only there.
    assert_eq!(env.get("/vault/secret").await.body, secret);
}
