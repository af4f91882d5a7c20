//! One error type for the console, mapped to an HTTP status and a JSON body in one place.
//! Errors say whose fault they are: the caller's (4xx) or the cluster's (5xx).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kdss_client::ClientError;

/// Why a console request failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No session (or an expired one): the caller must sign in.
    #[error("sign in first")]
    NoSession,
    /// The key pair did not verify, or the user may not use the console.
    #[error("{0}")]
    LoginRefused(String),
    /// The key pair is right but the user's role has no console access (plain S3 users).
    #[error("{0}")]
    NoConsoleRole(String),
    /// Too many failed logins from this address or for this key.
    #[error("too many failed logins; try again in {0} s")]
    RateLimited(u64),
    /// A state-changing request without the session's CSRF token.
    #[error("missing or wrong CSRF token")]
    Csrf,
    /// The session's role is below what the endpoint requires.
    #[error("{role} may not {what} (needs {needs})")]
    Forbidden {
        role: &'static str,
        needs: &'static str,
        what: &'static str,
    },
    /// The request itself is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The master refused or failed the call; its status says whose fault.
    #[error("{}", .0.message())]
    Master(tonic::Status),
    /// The master could not be reached in time, or the client failed otherwise.
    #[error("cluster unavailable: {0}")]
    Unavailable(String),
}

impl From<ClientError> for ConsoleError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Master(s) => ConsoleError::Master(s),
            other => ConsoleError::Unavailable(other.to_string()),
        }
    }
}

impl ConsoleError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        use tonic::Code;
        match self {
            ConsoleError::NoSession | ConsoleError::LoginRefused(_) => StatusCode::UNAUTHORIZED,
            ConsoleError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ConsoleError::Csrf
            | ConsoleError::Forbidden { .. }
            | ConsoleError::NoConsoleRole(_) => StatusCode::FORBIDDEN,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ConsoleError::Master(s) => match s.code() {
                Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
                Code::NotFound => StatusCode::NOT_FOUND,
                Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => {
                    StatusCode::CONFLICT
                }
                Code::PermissionDenied => StatusCode::FORBIDDEN,
                Code::Unauthenticated => StatusCode::UNAUTHORIZED,
                Code::ResourceExhausted => StatusCode::INSUFFICIENT_STORAGE,
                Code::Unavailable | Code::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            },
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let code = self.status();
        if code.is_server_error() {
            tracing::warn!(error = %self, "console request failed");
        }
        let body = serde_json::json!({ "error": self.to_string(), "status": code.as_u16() });
        (code, axum::Json(body)).into_response()
    }
}
