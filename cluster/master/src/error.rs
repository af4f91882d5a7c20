//! The crate's error type: why a master could not start or stopped.

/// A master failure at startup or while serving.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The Raft log or the state machine could not be opened.
    #[error("raft storage: {0}")]
    Storage(String),
    /// Raft refused to start (bad timing config, fatal error).
    #[error("raft: {0}")]
    Raft(String),
    /// A server stopped with an error.
    #[error("server: {0}")]
    Serve(String),
}

impl MasterError {
    /// An I/O error with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        MasterError::Io {
            what: what.into(),
            source,
        }
    }
}
