//! Users' secret keys at rest. The `users.secret_key` column, the Raft entries that create
//! users, snapshots and backups hold a user's secret only sealed: AES-256-GCM under a key
//! derived from the cluster secret (HKDF-SHA256 with a purpose label), a random nonce per
//! secret, the user's access key as associated data (a sealed value moved to another row
//! does not open). The leader seals before proposing ([`crate::prepare`]); the master opens
//! a secret only to verify a user's call or to hand it to a gateway.
//!
//! Stored form: `kdss-sealed1:<key id>:<hex nonce><hex ciphertext and tag>`. The key id (8 hex
//! digits, derived from the cluster secret with another label) names the key without
//! revealing it, so a master started with another cluster secret says so instead of
//! failing on every call with a bare decryption error. Rows written before sealing existed
//! hold the plaintext; [`is_sealed`] tells them apart and the leader seals them through Raft
//! (`SealUserSecrets`).

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;

/// Prefix of a sealed secret (version 1 of the format).
pub const PREFIX: &str = "kdss-sealed1:";
const SALT: &[u8] = b"kdss";
const KEY_LABEL: &[u8] = b"kdss/meta/users.secret_key/aes-256-gcm/v1";
const ID_LABEL: &[u8] = b"kdss/meta/users.secret_key/key-id/v1";

/// Why a stored secret did not open.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Sealed under a key this master does not have: its cluster secret is another one.
    #[error(
        "the secret key of user {access_key:?} was encrypted under another cluster secret \
         (key id {stored}, this master's cluster secret gives {ours}): `[cluster] secret` in \
         this master's config is not the one the cluster's metadata was written with"
    )]
    WrongClusterSecret {
        /// The user whose secret did not open.
        access_key: String,
        /// The key id in the stored value.
        stored: String,
        /// The key id of this master's cluster secret.
        ours: String,
    },
    /// The stored value is damaged or not in the sealed format.
    #[error("the stored secret key of user {access_key:?} is damaged: {why}")]
    Damaged {
        /// The user whose secret did not open.
        access_key: String,
        /// What was wrong with it.
        why: &'static str,
    },
}

/// Seals and opens users' secret keys with the key derived from the cluster secret.
pub struct SecretSeal {
    key: LessSafeKey,
    key_id: String,
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl SecretSeal {
    /// The seal of a cluster secret.
    pub fn new(cluster_secret: &str) -> SecretSeal {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(cluster_secret.as_bytes());
        let mut key = [0u8; 32];
        prk.expand(&[KEY_LABEL], Len(32))
            .and_then(|okm| okm.fill(&mut key))
            .expect("HKDF-SHA256 yields 32 bytes");
        let mut id = [0u8; 4];
        prk.expand(&[ID_LABEL], Len(4))
            .and_then(|okm| okm.fill(&mut id))
            .expect("HKDF-SHA256 yields 4 bytes");
        let unbound = UnboundKey::new(&AES_256_GCM, &key).expect("AES-256 takes 32 bytes");
        SecretSeal {
            key: LessSafeKey::new(unbound),
            key_id: hex::encode(id),
        }
    }

    /// The id of this seal's key (8 hex digits).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// `secret` of `access_key`, sealed under a fresh random nonce.
    pub fn seal(&self, access_key: &str, secret: &str) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut buf = secret.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(access_key.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM seals any length under 64 GiB");
        format!(
            "{PREFIX}{}:{}{}",
            self.key_id,
            hex::encode(nonce),
            hex::encode(buf)
        )
    }

    /// The secret of `access_key` from its stored form; a plaintext row (written before
    /// sealing) is returned as it is.
    pub fn open(&self, access_key: &str, stored: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let damaged = |why| SealError::Damaged {
            access_key: access_key.to_string(),
            why,
        };
        let (id, body) = rest.split_once(':').ok_or_else(|| damaged("no key id"))?;
        if id != self.key_id {
            return Err(SealError::WrongClusterSecret {
                access_key: access_key.to_string(),
                stored: id.chars().take(16).collect(),
                ours: self.key_id.clone(),
            });
        }
        let bytes = hex::decode(body).map_err(|_| damaged("not hex"))?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(damaged("too short"));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| damaged("bad nonce"))?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(access_key.as_bytes()), &mut sealed)
            .map_err(|_| {
                damaged("authentication tag does not match (altered, or moved from another user)")
            })?;
        String::from_utf8(plain.to_vec()).map_err(|_| damaged("not UTF-8"))
    }
}

/// Whether a stored secret is sealed (false for rows written before sealing existed).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef-cluster-a";
    const B: &str = "0123456789abcdef0123456789abcdef-cluster-b";

    #[test]
    fn seals_and_opens_without_the_plaintext_in_the_stored_form() {
        let s = SecretSeal::new(A);
        let stored = s.seal("KDALICE", "alice-secret-key-123");
        assert!(is_sealed(&stored));
        assert!(!stored.contains("alice-secret-key-123"));
        assert_ne!(
            stored,
            s.seal("KDALICE", "alice-secret-key-123"),
            "fresh nonce"
        );
        assert_eq!(s.open("KDALICE", &stored).unwrap(), "alice-secret-key-123");
        assert_eq!(s.open("KDALICE", "legacy-plain").unwrap(), "legacy-plain");
    }

    #[test]
    fn another_cluster_secret_is_named_not_garbage() {
        let stored = SecretSeal::new(A).seal("KDALICE", "alice-secret-key-123");
        let e = SecretSeal::new(B).open("KDALICE", &stored).unwrap_err();
        assert!(matches!(e, SealError::WrongClusterSecret { .. }), "{e}");
        assert!(e.to_string().contains("another cluster secret"), "{e}");
    }

    #[test]
    fn moved_or_altered_values_do_not_open() {
        let s = SecretSeal::new(A);
        let stored = s.seal("KDALICE", "alice-secret-key-123");
        assert!(matches!(
            s.open("KDBOB", &stored),
            Err(SealError::Damaged { .. })
        ));
        let mut bad = stored.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert!(matches!(
            s.open("KDALICE", &bad),
            Err(SealError::Damaged { .. })
        ));
        assert!(
            s.open("KDALICE", &format!("{PREFIX}{}:zz", s.key_id()))
                .is_err()
        );
    }
}
