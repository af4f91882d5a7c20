//! The rules a secret in a config file must meet before a daemon starts with it. The cluster
//! secret keys every capability and the service identity (admin on every master): a short
//! one can be guessed offline from one sniffed credential, and the `CHANGE-ME` placeholder
//! of deploy/*.toml is public. Every loader that reads a cluster secret calls [`validate`];
//! loaders of user secret keys call [`refuse_placeholder`].

use crate::config::{ConfigError, invalid};
use std::path::Path;

/// Fewest bytes a cluster secret may have: 256 bits when it is random hex or base64 of
/// 24+ bytes, well past offline guessing of an HMAC-SHA256 key.
pub const MIN_LEN: usize = 32;

/// The marker the shipped example configs put where a secret belongs (any case).
pub const PLACEHOLDER: &str = "CHANGE-ME";

/// How to make a good secret, quoted in every refusal.
const HOW: &str = "generate one with `openssl rand -hex 32` and put the same value in every \
                   master, storage node and gateway config";

/// Refuses a cluster secret shorter than [`MIN_LEN`] bytes or holding the placeholder;
/// the error names the file and the key (`cluster.secret`), never the value.
pub fn validate(path: &Path, key: &str, secret: &str) -> Result<(), ConfigError> {
    refuse_placeholder(path, key, secret)?;
    if secret.len() < MIN_LEN {
        return Err(invalid(
            path,
            key,
            format!(
                "the cluster secret is {} bytes, it must be at least {MIN_LEN}; {HOW}",
                secret.len()
            ),
        ));
    }
    Ok(())
}

/// Refuses a secret still holding the [`PLACEHOLDER`] of the example configs (for user
/// secret keys, whose length the master decides).
pub fn refuse_placeholder(path: &Path, key: &str, secret: &str) -> Result<(), ConfigError> {
    if secret
        .to_ascii_uppercase()
        .contains(&PLACEHOLDER.to_ascii_uppercase())
    {
        return Err(invalid(
            path,
            key,
            format!("still the {PLACEHOLDER} placeholder of the example config; {HOW}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_placeholder_secrets_are_refused_naming_file_and_key() {
        let p = Path::new("/etc/kdss/storage.toml");
        let short = validate(p, "cluster.secret", "s3cret")
            .unwrap_err()
            .to_string();
        assert!(short.starts_with("/etc/kdss/storage.toml: invalid value for `cluster.secret`"));
        assert!(
            short.contains("6 bytes") && short.contains("at least 32"),
            "{short}"
        );
        assert!(
            !short.contains("s3cret"),
            "the value is never printed: {short}"
        );
        let long_placeholder = "CHANGE-ME-long-random-string-0123456789";
        let e = validate(p, "cluster.secret", long_placeholder)
            .unwrap_err()
            .to_string();
        assert!(e.contains("placeholder"), "{e}");
        assert!(refuse_placeholder(p, "auth.secret_key", "change-me").is_err());
        assert!(validate(p, "cluster.secret", &"a".repeat(31)).is_err());
        assert!(validate(p, "cluster.secret", &"a".repeat(32)).is_ok());
    }
}
