//! What can go wrong delivering a card. No variant holds the webhook URL (its path is the
//! bot's token), the signing secret or a signature, so an error can be logged as it is.

/// A failed delivery or a relay that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Lark answered with a business error that retrying does not fix (a bad signature,
    /// 19021; a keyword filter, 19024; a malformed card...).
    #[error("Lark refused the card: code {code}: {msg}")]
    Rejected {
        /// Lark's `code`.
        code: i64,
        /// Lark's `msg`.
        msg: String,
    },
    /// An HTTP status that retrying does not fix (4xx other than 429).
    #[error("Lark answered HTTP {status}: {body}")]
    Http {
        /// The status code.
        status: u16,
        /// The start of the answer.
        body: String,
    },
    /// Every attempt met a transient failure (5xx, 429, a rate-limit code, a timeout, no
    /// connection).
    #[error("gave up after {attempts} attempts, the last: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        last: String,
    },
    /// The webhook URL is not an http(s) URL.
    #[error("the Lark webhook URL is not a valid http(s) URL")]
    BadUrl,
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The relay's listener failed.
    #[error("relay listener: {0}")]
    Listen(#[source] std::io::Error),
}
