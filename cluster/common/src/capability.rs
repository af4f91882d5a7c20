//! Shard capabilities (invariant 6): the master signs (stripe, shard, op, expiry) with the
//! cluster secret; a storage node verifies the MAC before any disk I/O. A client therefore
//! reaches only the shards the master handed it, and only until the capability expires.

use hmac::{Hmac, Mac};
use kdss_proto::storage::{Capability, ShardOp};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a capability was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CapError {
    #[error("missing capability")]
    Missing,
    #[error("capability is for {what}, not for this request")]
    WrongTarget { what: &'static str },
    #[error("capability expired {ago_ms} ms ago")]
    Expired { ago_ms: u64 },
    #[error("capability signature is invalid")]
    BadMac,
}

/// The cluster secret, ready to sign and verify capabilities.
#[derive(Clone)]
pub struct CapabilityKey {
    secret: Vec<u8>,
}

impl std::fmt::Debug for CapabilityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CapabilityKey(..)")
    }
}

fn mac_input(stripe_id: u64, shard_index: u32, op: i32, expires_unix_ms: u64) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[0..8].copy_from_slice(&stripe_id.to_le_bytes());
    b[8..12].copy_from_slice(&shard_index.to_le_bytes());
    b[12..16].copy_from_slice(&op.to_le_bytes());
    b[16..24].copy_from_slice(&expires_unix_ms.to_le_bytes());
    b
}

impl CapabilityKey {
    /// Derives the key from the cluster secret string of the configs.
    pub fn new(cluster_secret: &str) -> Self {
        CapabilityKey {
            secret: cluster_secret.as_bytes().to_vec(),
        }
    }

    fn mac(&self, input: &[u8]) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        m.update(input);
        m
    }

    /// Signs a capability valid until `expires_unix_ms`.
    pub fn sign(
        &self,
        stripe_id: u64,
        shard_index: u32,
        op: ShardOp,
        expires_unix_ms: u64,
    ) -> Capability {
        let input = mac_input(stripe_id, shard_index, op as i32, expires_unix_ms);
        Capability {
            stripe_id,
            shard_index,
            op: op as i32,
            expires_unix_ms,
            mac: self.mac(&input).finalize().into_bytes().to_vec(),
        }
    }

    /// Checks that `cap` allows `op` on (stripe, shard) at `now_ms`, in constant time for the MAC.
    pub fn verify(
        &self,
        cap: Option<&Capability>,
        stripe_id: u64,
        shard_index: u32,
        op: ShardOp,
        now_ms: u64,
    ) -> Result<(), CapError> {
        let cap = cap.ok_or(CapError::Missing)?;
        if cap.stripe_id != stripe_id || cap.shard_index != shard_index {
            return Err(CapError::WrongTarget {
                what: "another shard",
            });
        }
        if cap.op != op as i32 {
            return Err(CapError::WrongTarget {
                what: "another operation",
            });
        }
        let input = mac_input(cap.stripe_id, cap.shard_index, cap.op, cap.expires_unix_ms);
        self.mac(&input)
            .verify_slice(&cap.mac)
            .map_err(|_| CapError::BadMac)?;
        if cap.expires_unix_ms < now_ms {
            return Err(CapError::Expired {
                ago_ms: now_ms - cap.expires_unix_ms,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_checks_target_op_mac_and_expiry() {
        let key = CapabilityKey::new("s3cret");
        let cap = key.sign(7, 2, ShardOp::Write, 1_000);
        assert_eq!(key.verify(Some(&cap), 7, 2, ShardOp::Write, 999), Ok(()));
        assert_eq!(
            key.verify(None, 7, 2, ShardOp::Write, 999),
            Err(CapError::Missing)
        );
        assert!(matches!(
            key.verify(Some(&cap), 7, 3, ShardOp::Write, 0),
            Err(CapError::WrongTarget { .. })
        ));
        assert!(matches!(
            key.verify(Some(&cap), 7, 2, ShardOp::Read, 0),
            Err(CapError::WrongTarget { .. })
        ));
        assert_eq!(
            key.verify(Some(&cap), 7, 2, ShardOp::Write, 1_500),
            Err(CapError::Expired { ago_ms: 500 })
        );
        let other = CapabilityKey::new("other");
        assert_eq!(
            other.verify(Some(&cap), 7, 2, ShardOp::Write, 0),
            Err(CapError::BadMac)
        );
        let mut forged = cap.clone();
        forged.expires_unix_ms = u64::MAX;
        assert_eq!(
            key.verify(Some(&forged), 7, 2, ShardOp::Write, 0),
            Err(CapError::BadMac)
        );
    }
}
