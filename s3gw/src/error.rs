//! The one S3 error type of the gateway. Every failure — auth, bad input, a master
//! refusal, a storage fault — becomes an [`S3Error`] whose [`Code`] is mapped to an HTTP
//! status and an S3 XML body here and nowhere else.

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode};
use kdss_client::ClientError;

/// S3 error codes the gateway answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    BadDigest,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    EntityTooLarge,
    EntityTooSmall,
    IncompleteBody,
    InternalError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidBucketName,
    InvalidDigest,
    InvalidObjectName,
    InvalidPart,
    InvalidPartOrder,
    InvalidRange,
    InvalidRequest,
    InvalidURI,
    KeyTooLongError,
    MalformedXML,
    MethodNotAllowed,
    MissingContentLength,
    MissingSecurityHeader,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    NotImplemented,
    NotModified,
    PreconditionFailed,
    RequestTimeTooSkewed,
    /// The request body stopped arriving (`body_read_timeout_secs`); the connection closes.
    RequestTimeout,
    ServiceUnavailable,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
    ConditionalRequestConflict,
    /// A key collides with the tree (`a` is a file and `a/b` is written, or the reverse).
    ObjectConflict,
    /// The cluster passed `[capacity] reject_pct`: writes are refused (507, as MinIO answers
    /// a full backend) while reads and deletes go on. Not 503: retrying does not help.
    InsufficientStorage,
}

impl Code {
    /// The HTTP status of the code.
    pub fn status(self) -> StatusCode {
        use Code::*;
        match self {
            AccessDenied | InvalidAccessKeyId | RequestTimeTooSkewed | SignatureDoesNotMatch => {
                StatusCode::FORBIDDEN
            }
            BucketAlreadyExists
            | BucketAlreadyOwnedByYou
            | BucketNotEmpty
            | ConditionalRequestConflict
            | ObjectConflict => StatusCode::CONFLICT,
            NoSuchBucket | NoSuchKey | NoSuchUpload => StatusCode::NOT_FOUND,
            InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            MissingContentLength => StatusCode::LENGTH_REQUIRED,
            NotImplemented => StatusCode::NOT_IMPLEMENTED,
            NotModified => StatusCode::NOT_MODIFIED,
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The code string on the wire.
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            AccessDenied => "AccessDenied",
            AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            BadDigest => "BadDigest",
            BucketAlreadyExists => "BucketAlreadyExists",
            BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            BucketNotEmpty => "BucketNotEmpty",
            EntityTooLarge => "EntityTooLarge",
            EntityTooSmall => "EntityTooSmall",
            IncompleteBody => "IncompleteBody",
            InternalError => "InternalError",
            InvalidAccessKeyId => "InvalidAccessKeyId",
            InvalidArgument => "InvalidArgument",
            InvalidBucketName => "InvalidBucketName",
            InvalidDigest => "InvalidDigest",
            InvalidObjectName => "InvalidObjectName",
            InvalidPart => "InvalidPart",
            InvalidPartOrder => "InvalidPartOrder",
            InvalidRange => "InvalidRange",
            InvalidRequest => "InvalidRequest",
            InvalidURI => "InvalidURI",
            KeyTooLongError => "KeyTooLongError",
            MalformedXML => "MalformedXML",
            MethodNotAllowed => "MethodNotAllowed",
            MissingContentLength => "MissingContentLength",
            MissingSecurityHeader => "MissingSecurityHeader",
            NoSuchBucket => "NoSuchBucket",
            NoSuchKey => "NoSuchKey",
            NoSuchUpload => "NoSuchUpload",
            NotImplemented => "NotImplemented",
            NotModified => "NotModified",
            PreconditionFailed => "PreconditionFailed",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            RequestTimeout => "RequestTimeout",
            ServiceUnavailable => "ServiceUnavailable",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
            ConditionalRequestConflict => "ConditionalRequestConflict",
            ObjectConflict => "ObjectConflict",
            InsufficientStorage => "InsufficientStorage",
        }
    }

    /// The code for a `kdss-code` string from the master, if it is one we know.
    pub fn from_master(code: &str) -> Option<Code> {
        use Code::*;
        Some(match code {
            "AccessDenied" | "PermissionDenied" => AccessDenied,
            "BucketAlreadyExists" => BucketAlreadyExists,
            "BucketAlreadyOwnedByYou" => BucketAlreadyOwnedByYou,
            "BucketNotEmpty" => BucketNotEmpty,
            "EntityTooSmall" => EntityTooSmall,
            "EntityTooLarge" => EntityTooLarge,
            "InvalidArgument" => InvalidArgument,
            "InvalidBucketName" => InvalidBucketName,
            "InvalidObjectName" | "InvalidKey" => InvalidObjectName,
            "InvalidPart" => InvalidPart,
            "InvalidPartOrder" => InvalidPartOrder,
            "InvalidRequest" => InvalidRequest,
            "KeyTooLongError" => KeyTooLongError,
            "MalformedXML" => MalformedXML,
            "NoSuchBucket" => NoSuchBucket,
            "NoSuchKey" | "NotFound" => NoSuchKey,
            "ObjectConflict" | "NotADirectory" | "IsADirectory" | "NotEmpty" => ObjectConflict,
            "InvalidEcPolicy" => InvalidArgument,
            "NoSuchUpload" => NoSuchUpload,
            "PreconditionFailed" => PreconditionFailed,
            "InvalidAccessKeyId" | "NoSuchUser" => InvalidAccessKeyId,
            "ConditionalRequestConflict" => ConditionalRequestConflict,
            "NotImplemented" => NotImplemented,
            "ServiceUnavailable" | "SlowDown" => ServiceUnavailable,
            "InsufficientCapacity" => InsufficientStorage,
            _ => return None,
        })
    }
}

/// One failed S3 request: the code and a human message.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct S3Error {
    pub code: Code,
    pub message: String,
    /// Extra headers (e.g. `Content-Range: bytes */N` on InvalidRange).
    pub headers: Vec<(&'static str, String)>,
}

/// Shorthand for results of request handlers.
pub type S3Result<T> = Result<T, S3Error>;

impl S3Error {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        S3Error {
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The response for this error. `with_body` is false for HEAD (S3 sends no body).
    pub fn into_response(
        self,
        request_id: &str,
        resource: &str,
        with_body: bool,
    ) -> Response<Body> {
        let status = self.code.status();
        let body = if with_body && self.code != Code::NotModified {
            crate::xml::error_body(self.code.as_str(), &self.message, resource, request_id)
        } else {
            String::new()
        };
        let mut resp = Response::new(Body::from(body.clone()));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        if !body.is_empty() {
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
        }
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(k, v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert("x-amz-request-id", v);
        }
        resp
    }
}

impl From<crate::xml::MalformedXml> for S3Error {
    fn from(e: crate::xml::MalformedXml) -> Self {
        S3Error::new(Code::MalformedXML, e.0)
    }
}

impl From<ClientError> for S3Error {
    fn from(e: ClientError) -> Self {
        if let Some(code) = e.code().and_then(Code::from_master) {
            let msg = match &e {
                ClientError::Master(s) => s.message().to_string(),
                other => other.to_string(),
            };
            return S3Error::new(code, msg);
        }
        let code = match &e {
            ClientError::Master(s) => match s.code() {
                tonic::Code::NotFound => Code::NoSuchKey,
                tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => Code::AccessDenied,
                tonic::Code::InvalidArgument => Code::InvalidArgument,
                tonic::Code::AlreadyExists => Code::PreconditionFailed,
                tonic::Code::FailedPrecondition => Code::PreconditionFailed,
                tonic::Code::ResourceExhausted | tonic::Code::Unavailable => {
                    Code::ServiceUnavailable
                }
                tonic::Code::Unimplemented => Code::NotImplemented,
                _ => Code::InternalError,
            },
            // The caller's mistake: 400. A fault inside the client: 500, never a 4xx.
            ClientError::Invalid(_) => Code::InvalidArgument,
            ClientError::Internal(_) => Code::InternalError,
            ClientError::NoMaster(_) | ClientError::Timeout(_) => Code::ServiceUnavailable,
            // A full disk with no replacement, or a node that cannot answer: the same 503 the
            // master's ResourceExhausted gives, not an internal error.
            ClientError::Storage { status, .. }
                if matches!(
                    status.code(),
                    tonic::Code::ResourceExhausted | tonic::Code::Unavailable
                ) =>
            {
                Code::ServiceUnavailable
            }
            _ => Code::InternalError,
        };
        tracing::debug!(error = %e, code = code.as_str(), "client error");
        S3Error::new(code, e.to_string())
    }
}

/// Builds an [`S3Error`]: `s3err!(NoSuchKey, "key {k} not found")`.
#[macro_export]
macro_rules! s3err {
    ($code:ident) => {
        $crate::error::S3Error::new($crate::error::Code::$code, stringify!($code))
    };
    ($code:ident, $($arg:tt)+) => {
        $crate::error::S3Error::new($crate::error::Code::$code, format!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_client_fault_is_a_500_not_a_400() {
        let e = S3Error::from(ClientError::Internal("encode task: panicked".into()));
        assert_eq!(e.code, Code::InternalError);
        assert_eq!(e.code.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        let e = S3Error::from(ClientError::Invalid("chunk_size out of range".into()));
        assert_eq!(e.code.status(), http::StatusCode::BAD_REQUEST);
    }
    use kdss_common::rpc_error::{errno, status};

    #[test]
    fn master_codes_map_to_s3_status() {
        let e: S3Error = ClientError::Master(status(
            tonic::Code::FailedPrecondition,
            errno::ENOTEMPTY,
            "BucketNotEmpty",
            "bucket b is not empty",
        ))
        .into();
        assert_eq!(e.code, Code::BucketNotEmpty);
        assert_eq!(e.code.status(), StatusCode::CONFLICT);
        let e: S3Error = ClientError::Master(tonic::Status::not_found("x")).into();
        assert_eq!(e.code.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn full_disks_are_service_unavailable_on_every_path() {
        let full = "disk d is full; no replacement target";
        let e: S3Error = ClientError::Storage {
            node: "node-1".into(),
            status: tonic::Status::resource_exhausted(full),
        }
        .into();
        assert_eq!(e.code, Code::ServiceUnavailable);
        let e: S3Error = ClientError::Master(tonic::Status::resource_exhausted(full)).into();
        assert_eq!(e.code, Code::ServiceUnavailable);
        let e: S3Error = ClientError::Storage {
            node: "node-1".into(),
            status: tonic::Status::data_loss("checksum"),
        }
        .into();
        assert_eq!(e.code, Code::InternalError);
    }

    #[test]
    fn a_full_cluster_is_507_insufficient_storage_not_a_retryable_503() {
        let e: S3Error = ClientError::Master(status(
            tonic::Code::ResourceExhausted,
            errno::ENOSPC,
            "InsufficientCapacity",
            "cluster is 99% full (writes are refused from 99%)",
        ))
        .into();
        assert_eq!(e.code, Code::InsufficientStorage);
        assert_eq!(e.code.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert!(e.message.contains("99% full"), "{}", e.message);
    }

    #[test]
    fn error_response_carries_request_id_in_header_and_body() {
        let r = s3err!(NoSuchKey, "no such key k").into_response("req-1", "/b/k", true);
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()["x-amz-request-id"], "req-1");
        let r = s3err!(NoSuchKey).into_response("req-2", "/b/k", false);
        assert_eq!(r.headers()["x-amz-request-id"], "req-2");
    }
}
