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
    /// A daemon died while starting; `reason` is its own error line (see
    /// [`crate::Proc::exit_reason`]), not a backtrace.
    #[error("{name} exited before it was ready ({status}): {reason}")]
    Exited {
        name: String,
        status: String,
        reason: String,
    },
    /// Another program listens where a daemon of this cluster must.
    #[error("{addr} ({what}) is already in use by another program; {hint}")]
    PortInUse {
        addr: String,
        what: String,
        hint: String,
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
    /// A file holding a secret, or its directory, could not be written or tightened.
    #[error(transparent)]
    Private(#[from] kdss_common::private_file::PrivateFileError),
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LaunchError {
    let what = what.into();
    move |source| LaunchError::Io { what, source }
}
