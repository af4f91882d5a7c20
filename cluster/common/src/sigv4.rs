//! SigV4 primitives shared by header auth, presigned URLs, aws-chunked bodies and the
//! presign builder: URI encoding, the canonical request, the string to sign and the
//! signing key. Pure functions, tested against the AWS documentation examples.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The SigV4 algorithm name.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// sha256 of the empty string, hex.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// HMAC-SHA256.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Hex sha256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The key derived from the secret for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// Hex HMAC of `string_to_sign` with the signing key.
pub fn signature(key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac(key, string_to_sign.as_bytes()))
}

/// Compares two signatures without leaking where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.bytes()
        .zip(b.bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// URI-encodes per SigV4: everything but `A-Za-z0-9-_.~` (and `/` unless `encode_slash`).
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => {
                out.push('%');
                out.push_str(&format!("{b:02X}"));
            }
        }
    }
    out
}

/// Percent-decodes (lossless for UTF-8; invalid UTF-8 is an error).
pub fn uri_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// Decoded query pairs in the order they appear (`a&b=1` gives `("a","")`, `("b","1")`).
pub fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let k = uri_decode(k).unwrap_or_else(|| k.to_string());
            let v = uri_decode(v).unwrap_or_else(|| v.to_string());
            (k, v)
        })
        .collect()
}

/// The canonical query string of decoded pairs, skipping `skip` (X-Amz-Signature).
pub fn canonical_query(pairs: &[(String, String)], skip: Option<&str>) -> String {
    let mut enc: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != skip)
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    enc.sort();
    enc.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Trims a header value and collapses inner runs of spaces, as SigV4 requires.
pub fn canonical_header_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut space = false;
    for c in v.trim().chars() {
        if c == ' ' || c == '\t' {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

/// The canonical request. `headers` are (lowercase name, canonical value) in the order of
/// `signed_headers`, which is the `;`-joined list.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    headers: &[(String, String)],
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    let mut s = String::with_capacity(256);
    s.push_str(method);
    s.push('\n');
    s.push_str(canonical_uri);
    s.push('\n');
    s.push_str(canonical_query);
    s.push('\n');
    for (k, v) in headers {
        s.push_str(k);
        s.push(':');
        s.push_str(v);
        s.push('\n');
    }
    s.push('\n');
    s.push_str(signed_headers);
    s.push('\n');
    s.push_str(payload_hash);
    s
}

/// The string to sign for a request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The string to sign of one aws-chunked chunk.
pub fn chunk_string_to_sign(amz_date: &str, scope: &str, prev: &str, chunk_sha256: &str) -> String {
    format!("{ALGORITHM}-PAYLOAD\n{amz_date}\n{scope}\n{prev}\n{EMPTY_SHA256}\n{chunk_sha256}")
}

/// The string to sign of the trailer of a signed aws-chunked body.
pub fn trailer_string_to_sign(amz_date: &str, scope: &str, prev: &str, trailer: &str) -> String {
    format!(
        "{ALGORITHM}-TRAILER\n{amz_date}\n{scope}\n{prev}\n{}",
        sha256_hex(trailer.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";

    fn key() -> [u8; 32] {
        signing_key(SECRET, "20130524", "us-east-1", "s3")
    }

    /// AWS S3 docs, "Example: GET Object" (header auth, Range header).
    #[test]
    fn aws_doc_get_object_example() {
        let headers = vec![
            (
                "host".to_string(),
                "examplebucket.s3.amazonaws.com".to_string(),
            ),
            ("range".to_string(), "bytes=0-9".to_string()),
            ("x-amz-content-sha256".to_string(), EMPTY_SHA256.to_string()),
            ("x-amz-date".to_string(), "20130524T000000Z".to_string()),
        ];
        let signed = "host;range;x-amz-content-sha256;x-amz-date";
        let cr = canonical_request("GET", "/test.txt", "", &headers, signed, EMPTY_SHA256);
        let sts = string_to_sign("20130524T000000Z", SCOPE, &cr);
        assert_eq!(
            signature(&key(), &sts),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// AWS S3 docs, "Example: PUT Object" (signed payload, x-amz-storage-class).
    #[test]
    fn aws_doc_put_object_example() {
        let payload = sha256_hex(b"Welcome to Amazon S3.");
        assert_eq!(
            payload,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let headers = vec![
            (
                "date".to_string(),
                "Fri, 24 May 2013 00:00:00 GMT".to_string(),
            ),
            (
                "host".to_string(),
                "examplebucket.s3.amazonaws.com".to_string(),
            ),
            ("x-amz-content-sha256".to_string(), payload.clone()),
            ("x-amz-date".to_string(), "20130524T000000Z".to_string()),
            (
                "x-amz-storage-class".to_string(),
                "REDUCED_REDUNDANCY".to_string(),
            ),
        ];
        let signed = "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class";
        let uri = format!("/{}", uri_encode("test$file.text", false));
        let cr = canonical_request("PUT", &uri, "", &headers, signed, &payload);
        let sts = string_to_sign("20130524T000000Z", SCOPE, &cr);
        assert_eq!(
            signature(&key(), &sts),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    /// AWS S3 docs, "Example: GET Bucket Lifecycle" / list objects with a query string.
    #[test]
    fn aws_doc_list_objects_example() {
        let headers = vec![
            (
                "host".to_string(),
                "examplebucket.s3.amazonaws.com".to_string(),
            ),
            ("x-amz-content-sha256".to_string(), EMPTY_SHA256.to_string()),
            ("x-amz-date".to_string(), "20130524T000000Z".to_string()),
        ];
        let signed = "host;x-amz-content-sha256;x-amz-date";
        let q = canonical_query(&query_pairs("prefix=J&max-keys=2"), None);
        assert_eq!(q, "max-keys=2&prefix=J");
        let cr = canonical_request("GET", "/", &q, &headers, signed, EMPTY_SHA256);
        let sts = string_to_sign("20130524T000000Z", SCOPE, &cr);
        assert_eq!(
            signature(&key(), &sts),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    /// AWS S3 docs, presigned URL example (query auth, 86400 s).
    #[test]
    fn aws_doc_presigned_url_example() {
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host";
        let headers = vec![(
            "host".to_string(),
            "examplebucket.s3.amazonaws.com".to_string(),
        )];
        let cq = canonical_query(&query_pairs(q), Some("X-Amz-Signature"));
        let cr = canonical_request(
            "GET",
            "/test.txt",
            &cq,
            &headers,
            "host",
            "UNSIGNED-PAYLOAD",
        );
        let sts = string_to_sign("20130524T000000Z", SCOPE, &cr);
        assert_eq!(
            signature(&key(), &sts),
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    /// AWS S3 docs, "Signature Calculations for the Authorization Header: Transferring
    /// Payload in Multiple Chunks": seed and first chunk signatures.
    #[test]
    fn aws_doc_chunked_seed_and_first_chunk() {
        let headers = vec![
            ("content-encoding".to_string(), "aws-chunked".to_string()),
            ("content-length".to_string(), "66824".to_string()),
            ("host".to_string(), "s3.amazonaws.com".to_string()),
            (
                "x-amz-content-sha256".to_string(),
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_string(),
            ),
            ("x-amz-date".to_string(), "20130524T000000Z".to_string()),
            (
                "x-amz-decoded-content-length".to_string(),
                "66560".to_string(),
            ),
            (
                "x-amz-storage-class".to_string(),
                "REDUCED_REDUNDANCY".to_string(),
            ),
        ];
        let signed = "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class";
        let cr = canonical_request(
            "PUT",
            "/examplebucket/chunkObject.txt",
            "",
            &headers,
            signed,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        );
        let seed = signature(&key(), &string_to_sign("20130524T000000Z", SCOPE, &cr));
        assert_eq!(
            seed,
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
        );
        let chunk = vec![b'a'; 65536];
        let sts = chunk_string_to_sign("20130524T000000Z", SCOPE, &seed, &sha256_hex(&chunk));
        assert_eq!(
            signature(&key(), &sts),
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        );
    }

    #[test]
    fn encoding_keeps_unreserved_and_slash() {
        assert_eq!(uri_encode("a b/c+d~", false), "a%20b/c%2Bd~");
        assert_eq!(uri_encode("a/b", true), "a%2Fb");
        assert_eq!(canonical_header_value("  a   b  c "), "a b c");
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
    }
}
