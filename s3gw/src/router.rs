//! S3 request → typed [`Endpoint`]: bucket and key from the path (or the Host for
//! virtual-host style), the operation from method, sub-resource query parameters and
//! a few headers. The server then runs one `match` over the endpoint.

use crate::error::{Code, S3Error, S3Result};
use http::{HeaderMap, Method};

/// Every operation the gateway serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    ListBuckets,
    CreateBucket {
        bucket: String,
    },
    DeleteBucket {
        bucket: String,
    },
    HeadBucket {
        bucket: String,
    },
    GetBucketLocation {
        bucket: String,
    },
    GetBucketVersioning {
        bucket: String,
    },
    GetBucketAcl {
        bucket: String,
    },
    PutBucketAcl {
        bucket: String,
    },
    ListObjects {
        bucket: String,
        v2: bool,
    },
    ListObjectVersions {
        bucket: String,
    },
    ListMultipartUploads {
        bucket: String,
    },
    DeleteObjects {
        bucket: String,
    },
    GetObject {
        bucket: String,
        key: String,
    },
    HeadObject {
        bucket: String,
        key: String,
    },
    PutObject {
        bucket: String,
        key: String,
    },
    CopyObject {
        bucket: String,
        key: String,
    },
    DeleteObject {
        bucket: String,
        key: String,
    },
    GetObjectAcl {
        bucket: String,
        key: String,
    },
    GetObjectAttributes {
        bucket: String,
        key: String,
    },
    PutObjectAcl {
        bucket: String,
        key: String,
    },
    CreateMultipartUpload {
        bucket: String,
        key: String,
    },
    UploadPart {
        bucket: String,
        key: String,
        upload_id: String,
        part: u32,
    },
    UploadPartCopy {
        bucket: String,
        key: String,
        upload_id: String,
        part: u32,
    },
    CompleteMultipartUpload {
        bucket: String,
        key: String,
        upload_id: String,
    },
    AbortMultipartUpload {
        bucket: String,
        key: String,
        upload_id: String,
    },
    ListParts {
        bucket: String,
        key: String,
        upload_id: String,
    },
}

impl Endpoint {
    /// The S3 operation's name, the `op` label of the gateway's metrics: one of a fixed
    /// set, never a bucket or key.
    pub fn name(&self) -> &'static str {
        use Endpoint::*;
        match self {
            ListBuckets => "ListBuckets",
            CreateBucket { .. } => "CreateBucket",
            DeleteBucket { .. } => "DeleteBucket",
            HeadBucket { .. } => "HeadBucket",
            GetBucketLocation { .. } => "GetBucketLocation",
            GetBucketVersioning { .. } => "GetBucketVersioning",
            GetBucketAcl { .. } => "GetBucketAcl",
            PutBucketAcl { .. } => "PutBucketAcl",
            ListObjects { .. } => "ListObjects",
            ListObjectVersions { .. } => "ListObjectVersions",
            ListMultipartUploads { .. } => "ListMultipartUploads",
            DeleteObjects { .. } => "DeleteObjects",
            GetObject { .. } => "GetObject",
            HeadObject { .. } => "HeadObject",
            PutObject { .. } => "PutObject",
            CopyObject { .. } => "CopyObject",
            DeleteObject { .. } => "DeleteObject",
            GetObjectAcl { .. } => "GetObjectAcl",
            GetObjectAttributes { .. } => "GetObjectAttributes",
            PutObjectAcl { .. } => "PutObjectAcl",
            CreateMultipartUpload { .. } => "CreateMultipartUpload",
            UploadPart { .. } => "UploadPart",
            UploadPartCopy { .. } => "UploadPartCopy",
            CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
            AbortMultipartUpload { .. } => "AbortMultipartUpload",
            ListParts { .. } => "ListParts",
        }
    }
}

/// Bucket sub-resources we do not implement: answered with NotImplemented, not with
/// a listing that a client would misread.
const UNSUPPORTED: &[&str] = &[
    "cors",
    "policy",
    "lifecycle",
    "tagging",
    "website",
    "logging",
    "notification",
    "replication",
    "encryption",
    "object-lock",
    "retention",
    "legal-hold",
    "accelerate",
    "requestPayment",
    "ownershipControls",
    "publicAccessBlock",
    "analytics",
    "metrics",
    "inventory",
    "intelligent-tiering",
    "select",
    "restore",
    "torrent",
];

fn has(q: &[(String, String)], name: &str) -> bool {
    q.iter().any(|(k, _)| k == name)
}

fn get<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Splits the request target into (bucket, key); both may be empty.
pub fn bucket_and_key(
    raw_path: &str,
    host: Option<&str>,
    domain: Option<&str>,
) -> S3Result<(String, String)> {
    let path = crate::auth::sigv4::uri_decode(raw_path)
        .ok_or_else(|| S3Error::new(Code::InvalidRequest, "path is not valid UTF-8"))?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    if let (Some(host), Some(domain)) = (host, domain) {
        let host = host.split(':').next().unwrap_or(host);
        if let Some(b) = host.strip_suffix(domain).and_then(|b| b.strip_suffix('.'))
            && !b.is_empty()
        {
            check_key_chars(path)?;
            return Ok((b.to_string(), path.to_string()));
        }
    }
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) => (b.to_string(), k.to_string()),
        None => (path.to_string(), String::new()),
    };
    check_key_chars(&key)?;
    Ok((bucket, key))
}

/// Keys with C1 control characters (U+0080..U+009F) are refused as S3 refuses them
/// (400, "Couldn't parse the specified URI."): they are not text any client can show,
/// and a name with them never becomes a file.
fn check_key_chars(key: &str) -> S3Result<()> {
    if key.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)) {
        return Err(S3Error::new(
            Code::InvalidURI,
            "Couldn't parse the specified URI.",
        ));
    }
    Ok(())
}

fn upload_id(q: &[(String, String)]) -> Option<String> {
    get(q, "uploadId").map(str::to_string)
}

fn part_number(q: &[(String, String)]) -> S3Result<u32> {
    let p = get(q, "partNumber").unwrap_or("");
    match p.parse::<u32>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err(S3Error::new(
            Code::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        )),
    }
}

/// Classifies a request.
pub fn route(
    method: &Method,
    bucket: String,
    key: String,
    q: &[(String, String)],
    headers: &HeaderMap,
) -> S3Result<Endpoint> {
    use Endpoint::*;
    if let Some(sub) = UNSUPPORTED.iter().find(|s| has(q, s)) {
        return Err(S3Error::new(
            Code::NotImplemented,
            format!("?{sub} is not implemented"),
        ));
    }
    let not_allowed = || {
        S3Error::new(
            Code::MethodNotAllowed,
            "method not allowed on this resource",
        )
    };
    if bucket.is_empty() {
        return match *method {
            Method::GET => Ok(ListBuckets),
            _ => Err(not_allowed()),
        };
    }
    if key.is_empty() {
        return Ok(match *method {
            Method::GET if has(q, "location") => GetBucketLocation { bucket },
            Method::GET if has(q, "versioning") => GetBucketVersioning { bucket },
            Method::GET if has(q, "acl") => GetBucketAcl { bucket },
            Method::GET if has(q, "versions") => ListObjectVersions { bucket },
            Method::GET if has(q, "uploads") => ListMultipartUploads { bucket },
            Method::GET => ListObjects {
                bucket,
                v2: get(q, "list-type") == Some("2"),
            },
            Method::HEAD => HeadBucket { bucket },
            Method::PUT if has(q, "acl") => PutBucketAcl { bucket },
            Method::PUT if has(q, "versioning") => {
                return Err(S3Error::new(
                    Code::NotImplemented,
                    "versioning is not implemented",
                ));
            }
            Method::PUT => CreateBucket { bucket },
            Method::DELETE => DeleteBucket { bucket },
            Method::POST if has(q, "delete") => DeleteObjects { bucket },
            _ => return Err(not_allowed()),
        });
    }
    let copy = headers.contains_key("x-amz-copy-source");
    Ok(match *method {
        Method::GET if has(q, "acl") => GetObjectAcl { bucket, key },
        Method::GET if has(q, "attributes") => GetObjectAttributes { bucket, key },
        Method::GET => match upload_id(q) {
            Some(upload_id) => ListParts {
                bucket,
                key,
                upload_id,
            },
            None => GetObject { bucket, key },
        },
        Method::HEAD => HeadObject { bucket, key },
        Method::PUT if has(q, "acl") => PutObjectAcl { bucket, key },
        Method::PUT => match upload_id(q) {
            Some(upload_id) => {
                let part = part_number(q)?;
                if copy {
                    UploadPartCopy {
                        bucket,
                        key,
                        upload_id,
                        part,
                    }
                } else {
                    UploadPart {
                        bucket,
                        key,
                        upload_id,
                        part,
                    }
                }
            }
            None if copy => CopyObject { bucket, key },
            None => PutObject { bucket, key },
        },
        Method::POST if has(q, "uploads") => CreateMultipartUpload { bucket, key },
        Method::POST => match upload_id(q) {
            Some(upload_id) => CompleteMultipartUpload {
                bucket,
                key,
                upload_id,
            },
            None => return Err(not_allowed()),
        },
        Method::DELETE => match upload_id(q) {
            Some(upload_id) => AbortMultipartUpload {
                bucket,
                key,
                upload_id,
            },
            None => DeleteObject { bucket, key },
        },
        _ => return Err(not_allowed()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sigv4::query_pairs;

    fn r(m: Method, path: &str, q: &str) -> Endpoint {
        let (b, k) = bucket_and_key(path, None, None).unwrap();
        route(&m, b, k, &query_pairs(q), &HeaderMap::new()).unwrap()
    }

    #[test]
    fn routes_by_method_path_and_subresource() {
        assert_eq!(r(Method::GET, "/", ""), Endpoint::ListBuckets);
        assert_eq!(
            r(Method::GET, "/b", "list-type=2"),
            Endpoint::ListObjects {
                bucket: "b".into(),
                v2: true
            }
        );
        assert_eq!(
            r(Method::GET, "/b/", ""),
            Endpoint::ListObjects {
                bucket: "b".into(),
                v2: false
            }
        );
        assert_eq!(
            r(Method::POST, "/b", "delete"),
            Endpoint::DeleteObjects { bucket: "b".into() }
        );
        assert_eq!(
            r(Method::GET, "/b/a%20b/c/", ""),
            Endpoint::GetObject {
                bucket: "b".into(),
                key: "a b/c/".into()
            }
        );
        assert_eq!(
            r(Method::PUT, "/b/k", "partNumber=3&uploadId=u"),
            Endpoint::UploadPart {
                bucket: "b".into(),
                key: "k".into(),
                upload_id: "u".into(),
                part: 3
            }
        );
        assert_eq!(
            r(Method::POST, "/b/k", "uploadId=u"),
            Endpoint::CompleteMultipartUpload {
                bucket: "b".into(),
                key: "k".into(),
                upload_id: "u".into()
            }
        );
        assert_eq!(
            r(Method::GET, "/b", "versions"),
            Endpoint::ListObjectVersions { bucket: "b".into() }
        );
    }

    #[test]
    fn c1_control_characters_in_a_key_are_an_invalid_uri() {
        // s3-tests test_object_read_unreadable: key "\xae\x8a-".
        let e = bucket_and_key("/b/%C2%AE%C2%8A-", None, None).unwrap_err();
        assert_eq!(e.code, Code::InvalidURI);
        assert_eq!(e.code.status(), http::StatusCode::BAD_REQUEST);
        assert!(bucket_and_key("/b/caf%C3%A9%C2%AE", None, None).is_ok());
    }

    #[test]
    fn virtual_host_takes_bucket_from_host() {
        let (b, k) = bucket_and_key("/x/y", Some("bk.s3.local:9000"), Some("s3.local")).unwrap();
        assert_eq!((b.as_str(), k.as_str()), ("bk", "x/y"));
    }

    #[test]
    fn bad_part_number_and_unsupported_subresources_are_errors() {
        let (b, k) = bucket_and_key("/b/k", None, None).unwrap();
        let e = route(
            &Method::PUT,
            b,
            k,
            &query_pairs("partNumber=0&uploadId=u"),
            &HeaderMap::new(),
        );
        assert_eq!(e.unwrap_err().code, Code::InvalidArgument);
        let e = route(
            &Method::GET,
            "b".into(),
            "".into(),
            &query_pairs("cors"),
            &HeaderMap::new(),
        );
        assert_eq!(e.unwrap_err().code, Code::NotImplemented);
    }
}
