//! Lark's custom-bot signature ("signature verification" in the bot's security settings).
//!
//! The documented scheme is unusual: the key of the HMAC-SHA256 is the string
//! `"{timestamp}\n{secret}"` and the message is empty; the tag, base64-encoded (standard
//! alphabet, padded), travels as `sign` beside `timestamp` (Unix seconds, as a string) in the
//! JSON body. Lark refuses a timestamp more than an hour away from its clock (code 19021), so
//! a message is signed at each attempt, never once for all retries.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `sign` field for `timestamp` (Unix seconds) and the bot's signing `secret`.
pub fn sign(timestamp: u64, secret: &str) -> String {
    let key = format!("{timestamp}\n{secret}");
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .expect("HMAC takes a key of any length");
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `sign` is the signature of `timestamp` under `secret`, compared in constant time
/// (for receivers that check, like the tests' stand-in for Lark).
pub fn verify(timestamp: u64, secret: &str, sign: &str) -> bool {
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(sign) else {
        return false;
    };
    let key = format!("{timestamp}\n{secret}");
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference value computed independently with Python's hmac module:
    /// `base64(hmac.new(b"1599360473\ntest-secret", b"", sha256).digest())`.
    #[test]
    fn matches_the_documented_scheme() {
        assert_eq!(sign(1599360473, "test-secret"), REFERENCE);
        assert!(verify(1599360473, "test-secret", REFERENCE));
    }

    #[test]
    fn another_second_or_secret_is_another_signature() {
        assert!(!verify(1599360474, "test-secret", REFERENCE));
        assert!(!verify(1599360473, "test-secreT", REFERENCE));
        assert!(!verify(1599360473, "test-secret", "not base64!"));
    }

    const REFERENCE: &str = "wSds2BzzFIIGf/WrhUO+NI1q/9j+FRJd3JNHKAq0NZY=";
}
