//! Why a local cluster could not be started or driven.

use std::path::PathBuf;

/// A launch failure, naming the process or file involved.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{name} exited before it was ready ({status}); last log lines:\n{log_tail}")]
    Exited {
        name: String,
        status: String,
        log_tail: String,
    },
    #[error("{name} not ready after {secs} s: {last_error}; last log lines:\n{log_tail}")]
    NotReady {
        name: String,
        secs: u64,
        last_error: String,
        log_tail: String,
    },
    #[error("{path}: {message}")]
    BadLayout { path: PathBuf, message: String },
    #[error("formatting {path} failed: {message}")]
    Format { path: PathBuf, message: String },
    #[error("master call failed: {0}")]
    Rpc(#[from] tonic::Status),
    #[error("invalid spec: {0}")]
    Spec(String),
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LaunchError {
    let what = what.into();
    move |source| LaunchError::Io { what, source }
}
