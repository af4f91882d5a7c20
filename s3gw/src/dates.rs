//! The two date forms requests carry: `x-amz-date` (ISO 8601 basic, what SigV4 signs) and
//! the HTTP `Date` / `If-Modified-Since` form. Below both the signature checks and the
//! handlers, which each read them.

use std::time::{SystemTime, UNIX_EPOCH};

/// Parses an HTTP date to unix seconds.
pub fn parse_http_date(s: &str) -> Option<i64> {
    // Python's formatdate() without usegmt writes "-0000" for GMT.
    let s = s.trim();
    let s = match s.strip_suffix("-0000").or_else(|| s.strip_suffix("+0000")) {
        Some(head) => format!("{head}GMT"),
        None => s.to_string(),
    };
    httpdate::parse_http_date(&s)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
}

/// `x-amz-date` for `t`.
pub fn amz_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default()
}
