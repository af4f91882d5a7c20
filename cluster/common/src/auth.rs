//! Caller authentication on the internal gRPC APIs (master and Raft peer calls).
//!
//! Every call carries
//! `authorization: KDSS2 <access_key>:<unix_ms>:<nonce>:<body_sha256>:<signature>` where
//! `signature` is hex HMAC-SHA256(secret, [`string_to_sign`]) over the access key, the gRPC
//! method path, the time, a 128-bit random nonce, the `kdss-on-behalf-of` value (empty when
//! absent) and the SHA-256 of the request body as sent on the wire (gRPC framing included).
//! The secret never crosses the wire. A proof is therefore good for one method, one body,
//! one acted-for user and [`MAX_SKEW_MS`] either side of the verifier's clock; the verifier
//! keeps the nonces it accepted for that long and refuses a second use (see kdss-master's
//! `auth::replay`). The client side is [`signer::Signed`], a tower service around a channel:
//! tonic interceptors see neither the method nor the body.
//!
//! A service identity (the S3 gateway, storage nodes, console, peer masters) signs with the
//! cluster secret under [`SERVICE_ACCESS_KEY`] and may name the user it acts for.

pub mod signer;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Metadata key of the credential.
pub const AUTH_HEADER: &str = "authorization";
/// Metadata key naming the user a service acts for; its value is inside the signature.
pub const ON_BEHALF_OF_HEADER: &str = "kdss-on-behalf-of";
/// Access key of the cluster's own services; its secret is the cluster secret.
pub const SERVICE_ACCESS_KEY: &str = "kdss-service";
/// The scheme word at the start of the header value.
pub const SCHEME: &str = "KDSS2";
/// How far a credential's time may be from the verifier's clock, either way: the window in
/// which a captured credential is worth anything, and the clock skew between daemons the
/// cluster tolerates. Two minutes: NTP-synchronised hosts are within milliseconds, and the
/// replay cache must remember every nonce for this long.
pub const MAX_SKEW_MS: u64 = 2 * 60 * 1000;
/// Random bytes per credential (128 bits): two calls never share a nonce by chance.
pub const NONCE_BYTES: usize = 16;

/// Why a credential was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing authorization")]
    Missing,
    #[error("malformed authorization: {0}")]
    Malformed(&'static str),
    #[error("unknown access key {0:?}")]
    UnknownKey(String),
    #[error(
        "signature does not match for access key {0:?} (it covers the method, the time, the \
         nonce, kdss-on-behalf-of and the request body)"
    )]
    BadSignature(String),
    #[error(
        "clock skew: credential time is {skew_ms} ms away from this server's clock (at most \
         {max_ms} ms allowed); check the clocks (NTP) of the caller and of this server"
    )]
    Skew { skew_ms: u64, max_ms: u64 },
    #[error("credential already used: replay refused (nonce {0})")]
    Replay(String),
    #[error("request body does not match the signed digest")]
    BodyMismatch,
    #[error("replay cache is full: too many calls within the credential window, retry")]
    Busy,
}

/// What one call's proof binds. Built by the signer and, from the request, by the verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims<'a> {
    pub access_key: &'a str,
    /// gRPC method path, `/kdss.master.v1.Master/CreateUser`.
    pub method: &'a str,
    pub unix_ms: u64,
    pub nonce: [u8; NONCE_BYTES],
    /// `kdss-on-behalf-of`, "" when absent.
    pub on_behalf_of: &'a str,
    /// SHA-256 of the request body bytes.
    pub body_sha256: [u8; 32],
}

/// The bytes the HMAC covers: one field per line, after a scheme line so a KDSS2 proof can
/// never be mistaken for any other MAC made with the same secret. No field can hold a
/// newline (header values and URI paths cannot), so the encoding is unambiguous.
pub fn string_to_sign(c: &Claims<'_>) -> String {
    format!(
        "{SCHEME}\n{}\n{}\n{}\n{}\n{}\n{}",
        c.access_key,
        c.method,
        c.unix_ms,
        hex::encode(c.nonce),
        c.on_behalf_of,
        hex::encode(c.body_sha256)
    )
}

fn mac(secret: &str, c: &Claims<'_>) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(string_to_sign(c).as_bytes());
    m
}

/// The `method` a KDSS2 proof names for a plain HTTP request (the storage node's test-only
/// `/fault`): verb and path with query, so the proof covers exactly what the request asks.
pub fn http_method(verb: &str, path_and_query: &str) -> String {
    format!("{verb} {path_and_query}")
}

/// SHA-256 of a request body, as both ends compute it.
pub fn body_digest(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// A fresh random nonce.
pub fn new_nonce() -> [u8; NONCE_BYTES] {
    rand::random()
}

/// The header value proving `c` with `secret`.
pub fn sign(secret: &str, c: &Claims<'_>) -> String {
    format!(
        "{SCHEME} {}:{}:{}:{}:{}",
        c.access_key,
        c.unix_ms,
        hex::encode(c.nonce),
        hex::encode(c.body_sha256),
        hex::encode(mac(secret, c).finalize().into_bytes())
    )
}

/// A parsed, not yet verified credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential<'a> {
    pub access_key: &'a str,
    pub unix_ms: u64,
    pub nonce: [u8; NONCE_BYTES],
    pub body_sha256: [u8; 32],
    pub signature: [u8; 32],
}

fn hex_array<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N], AuthError> {
    let mut out = [0u8; N];
    if s.len() != 2 * N {
        return Err(AuthError::Malformed(what));
    }
    hex::decode_to_slice(s, &mut out).map_err(|_| AuthError::Malformed(what))?;
    Ok(out)
}

/// Parses the header value. The access key may contain `:`; the other fields cannot.
pub fn parse(value: &str) -> Result<Credential<'_>, AuthError> {
    let rest = value
        .strip_prefix(SCHEME)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(AuthError::Malformed("expected the KDSS2 scheme"))?;
    let mut it = rest.rsplitn(5, ':');
    let sig = it.next().ok_or(AuthError::Malformed("missing signature"))?;
    let body = it
        .next()
        .ok_or(AuthError::Malformed("missing body digest"))?;
    let nonce = it.next().ok_or(AuthError::Malformed("missing nonce"))?;
    let ms = it.next().ok_or(AuthError::Malformed("missing time"))?;
    let key = it
        .next()
        .ok_or(AuthError::Malformed("missing access key"))?;
    if key.is_empty() {
        return Err(AuthError::Malformed("empty access key"));
    }
    let unix_ms = ms
        .parse()
        .map_err(|_| AuthError::Malformed("time is not a number"))?;
    Ok(Credential {
        access_key: key,
        unix_ms,
        nonce: hex_array(nonce, "nonce is not 32 hex digits")?,
        body_sha256: hex_array(body, "body digest is not 64 hex digits")?,
        signature: hex_array(sig, "signature is not 64 hex digits")?,
    })
}

impl Credential<'_> {
    /// The claims this credential makes for a call of `method` acting for `on_behalf_of`.
    pub fn claims<'a>(&'a self, method: &'a str, on_behalf_of: &'a str) -> Claims<'a> {
        Claims {
            access_key: self.access_key,
            method,
            unix_ms: self.unix_ms,
            nonce: self.nonce,
            on_behalf_of,
            body_sha256: self.body_sha256,
        }
    }
}

/// Verifies the signature and the time of a call of `method` acting for `on_behalf_of`
/// ("" when none) at `now_ms`. The body digest and the nonce are the caller's to check
/// (the body may not have been read yet; the replay cache lives with the server).
pub fn verify(
    c: &Credential<'_>,
    secret: &str,
    method: &str,
    on_behalf_of: &str,
    now_ms: u64,
) -> Result<(), AuthError> {
    let skew_ms = now_ms.abs_diff(c.unix_ms);
    if skew_ms > MAX_SKEW_MS {
        return Err(AuthError::Skew {
            skew_ms,
            max_ms: MAX_SKEW_MS,
        });
    }
    // `verify_slice` compares in constant time.
    mac(secret, &c.claims(method, on_behalf_of))
        .verify_slice(&c.signature)
        .map_err(|_| AuthError::BadSignature(c.access_key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const M: &str = "/kdss.master.v1.Master/Heartbeat";

    fn claims<'a>(key: &'a str, obo: &'a str, ms: u64) -> Claims<'a> {
        Claims {
            access_key: key,
            method: M,
            unix_ms: ms,
            nonce: [7; NONCE_BYTES],
            on_behalf_of: obo,
            body_sha256: body_digest(b"body"),
        }
    }

    #[test]
    fn credential_round_trips() {
        let v = sign("secret", &claims("AK:with:colons", "", 1_000_000));
        let c = parse(&v).unwrap();
        assert_eq!(c.access_key, "AK:with:colons");
        assert_eq!(c.unix_ms, 1_000_000);
        assert_eq!(c.nonce, [7; NONCE_BYTES]);
        assert_eq!(c.body_sha256, body_digest(b"body"));
        assert_eq!(verify(&c, "secret", M, "", 1_000_500), Ok(()));
    }

    #[test]
    fn every_bound_field_is_checked() {
        let v = sign("secret", &claims("kdss-service", "alice", 1_000_000));
        let c = parse(&v).unwrap();
        let now = 1_000_000;
        assert_eq!(verify(&c, "secret", M, "alice", now), Ok(()));
        let bad = |r: Result<(), AuthError>| matches!(r, Err(AuthError::BadSignature(_)));
        assert!(bad(verify(&c, "wrong", M, "alice", now)), "secret");
        assert!(
            bad(verify(
                &c,
                "secret",
                "/kdss.master.v1.Master/CreateUser",
                "alice",
                now
            )),
            "method"
        );
        assert!(bad(verify(&c, "secret", M, "bob", now)), "on-behalf-of");
        assert!(
            bad(verify(&c, "secret", M, "", now)),
            "on-behalf-of dropped"
        );
        let mut other_body = c.clone();
        other_body.body_sha256 = body_digest(b"other");
        assert!(bad(verify(&other_body, "secret", M, "alice", now)), "body");
        let mut other_nonce = c.clone();
        other_nonce.nonce = [8; NONCE_BYTES];
        assert!(
            bad(verify(&other_nonce, "secret", M, "alice", now)),
            "nonce"
        );
        let mut other_time = c.clone();
        other_time.unix_ms += 1;
        assert!(bad(verify(&other_time, "secret", M, "alice", now)), "time");
    }

    #[test]
    fn the_window_is_max_skew_either_way() {
        let at = 10 * MAX_SKEW_MS;
        let v = sign("s", &claims("k", "", at));
        let c = parse(&v).unwrap();
        assert_eq!(verify(&c, "s", M, "", at + MAX_SKEW_MS), Ok(()));
        assert_eq!(verify(&c, "s", M, "", at - MAX_SKEW_MS), Ok(()));
        for now in [at + MAX_SKEW_MS + 1, at - MAX_SKEW_MS - 1] {
            assert!(matches!(
                verify(&c, "s", M, "", now),
                Err(AuthError::Skew { .. })
            ));
        }
    }

    #[test]
    fn malformed_values_are_refused_with_the_reason() {
        for (v, why) in [
            ("Bearer x", "scheme"),
            ("KDSS1 a:1:ff", "scheme"),
            ("KDSS2 a:notanumber:00:00:00", "time"),
            ("KDSS2 a:1:00:00:00", "nonce"),
            (
                "KDSS2 :1:00000000000000000000000000000000:00:00",
                "empty access key",
            ),
        ] {
            let e = parse(v).unwrap_err().to_string();
            assert!(e.contains(why), "{v:?} -> {e}");
        }
        let good = sign("s", &claims("k", "", 1));
        assert!(parse(&good[..good.len() - 2]).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = parse(&s);
            let _ = parse(&format!("KDSS2 {s}"));
        }

        #[test]
        fn parse_never_panics_on_colon_fields(parts in proptest::collection::vec("[0-9a-fA-F:é]{0,70}", 0..7)) {
            let v = format!("KDSS2 {}", parts.join(":"));
            if let Ok(c) = parse(&v) {
                let _ = verify(&c, "s", M, "", 0);
            }
        }
    }
}
