//! Why a mount could not start or ended badly.

use std::path::PathBuf;

/// A failure of the mount as a whole (operations report errno to the kernel instead).
#[derive(Debug, thiserror::Error)]
pub enum KsfsError {
    #[error(transparent)]
    Config(#[from] kdss_common::ConfigError),
    #[error("cannot connect to the cluster: {0}")]
    Connect(#[source] kdss_client::ClientError),
    #[error("no answer from the cluster within {0:?}")]
    Timeout(std::time::Duration),
    #[error("bucket `{bucket}`: {message}")]
    Bucket { bucket: String, message: String },
    #[error("mountpoint {path}: {message}")]
    Mountpoint { path: PathBuf, message: String },
    #[error("mount on {path} failed: {source}")]
    Mount {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen for metrics on {addr}: {source}")]
    MetricsListen {
        addr: String,
        source: std::io::Error,
    },
    #[error("[tls]: {0}")]
    Tls(#[from] kdss_common::tls::TlsError),
    #[error("[mount] cache_dir: {0}")]
    DiskCache(#[from] kdss_client::DiskCacheError),
    #[error("runtime: {0}")]
    Runtime(#[source] std::io::Error),
}
