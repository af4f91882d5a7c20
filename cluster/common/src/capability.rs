//! Shard capabilities (invariant 6): the master signs (stripe, shard, op, disk, length,
//! expiry) with the cluster secret; a storage node verifies the MAC, the target and the
//! length before any disk I/O. A client therefore reaches only the shards the master handed
//! it, only on the disk the master placed them on, writes only as many bytes as the stripe's
//! shards have, and only until the capability expires.
//!
//! Checksums are not bound: the master places a shard before the client has encoded it, so
//! it cannot know the crc32c of a write; a read needs none (the node verifies the crc stored
//! with the record on every read). See docs/security.md, "Data path privileges".

use hmac::{Hmac, Mac};
use kdss_proto::storage::{Capability, ShardOp};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation of the MAC input, so no other HMAC of the cluster secret (request
/// credentials, presigned URLs) and no capability of the earlier 24-byte layout can pass as
/// one of these.
const MAC_DOMAIN: &[u8] = b"kdss-cap-v2\0";

/// Why a capability was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CapError {
    #[error("missing capability")]
    Missing,
    #[error("capability is for {what}, not for this request")]
    WrongTarget { what: &'static str },
    #[error("capability is for disk {cap:016x}, the request names disk {req:016x}")]
    WrongDisk { cap: u64, req: u64 },
    #[error("capability allows a shard of {cap} bytes, the request puts {req}")]
    WrongLength { cap: u64, req: u64 },
    #[error("capability expired {ago_ms} ms ago")]
    Expired { ago_ms: u64 },
    #[error("capability signature is invalid")]
    BadMac,
}

/// One shard of one stripe on one disk: what a capability names and a request addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardTarget {
    pub stripe_id: u64,
    pub shard_index: u32,
    pub disk_id: u64,
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

fn mac_input(cap: &Capability) -> Vec<u8> {
    let mut b = Vec::with_capacity(MAC_DOMAIN.len() + 40);
    b.extend_from_slice(MAC_DOMAIN);
    b.extend_from_slice(&cap.stripe_id.to_le_bytes());
    b.extend_from_slice(&cap.shard_index.to_le_bytes());
    b.extend_from_slice(&cap.op.to_le_bytes());
    b.extend_from_slice(&cap.disk_id.to_le_bytes());
    b.extend_from_slice(&cap.shard_len.to_le_bytes());
    b.extend_from_slice(&cap.expires_unix_ms.to_le_bytes());
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

    /// Signs a capability for `op` on `target`, valid until `expires_unix_ms`. `shard_len`
    /// is the stripe's shard length: a WRITE must put exactly that many bytes.
    pub fn sign(
        &self,
        target: ShardTarget,
        op: ShardOp,
        shard_len: u64,
        expires_unix_ms: u64,
    ) -> Capability {
        let mut cap = Capability {
            stripe_id: target.stripe_id,
            shard_index: target.shard_index,
            op: op as i32,
            expires_unix_ms,
            mac: Vec::new(),
            disk_id: target.disk_id,
            shard_len,
        };
        cap.mac = self.mac(&mac_input(&cap)).finalize().into_bytes().to_vec();
        cap
    }

    /// Checks that `cap` allows `op` on `target` at `now_ms` (the MAC in constant time).
    /// Returns the shard length the capability was signed for.
    pub fn verify(
        &self,
        cap: Option<&Capability>,
        target: ShardTarget,
        op: ShardOp,
        now_ms: u64,
    ) -> Result<u64, CapError> {
        let cap = cap.ok_or(CapError::Missing)?;
        if cap.stripe_id != target.stripe_id || cap.shard_index != target.shard_index {
            return Err(CapError::WrongTarget {
                what: "another shard",
            });
        }
        if cap.op != op as i32 {
            return Err(CapError::WrongTarget {
                what: "another operation",
            });
        }
        if cap.disk_id != target.disk_id {
            return Err(CapError::WrongDisk {
                cap: cap.disk_id,
                req: target.disk_id,
            });
        }
        self.mac(&mac_input(cap))
            .verify_slice(&cap.mac)
            .map_err(|_| CapError::BadMac)?;
        if cap.expires_unix_ms < now_ms {
            return Err(CapError::Expired {
                ago_ms: now_ms - cap.expires_unix_ms,
            });
        }
        Ok(cap.shard_len)
    }

    /// [`verify`](Self::verify) for a WRITE of `total_len` bytes: the length must be the
    /// signed one, so a writer can neither grow a shard nor leave a short one.
    pub fn verify_write(
        &self,
        cap: Option<&Capability>,
        target: ShardTarget,
        total_len: u64,
        now_ms: u64,
    ) -> Result<(), CapError> {
        let len = self.verify(cap, target, ShardOp::Write, now_ms)?;
        if len != total_len {
            return Err(CapError::WrongLength {
                cap: len,
                req: total_len,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: ShardTarget = ShardTarget {
        stripe_id: 7,
        shard_index: 2,
        disk_id: 0xd15c,
    };

    #[test]
    fn capability_checks_target_op_disk_mac_and_expiry() {
        let key = CapabilityKey::new("s3cret");
        let cap = key.sign(T, ShardOp::Write, 4096, 1_000);
        assert_eq!(key.verify(Some(&cap), T, ShardOp::Write, 999), Ok(4096));
        assert_eq!(
            key.verify(None, T, ShardOp::Write, 999),
            Err(CapError::Missing)
        );
        let other_shard = ShardTarget {
            shard_index: 3,
            ..T
        };
        assert!(matches!(
            key.verify(Some(&cap), other_shard, ShardOp::Write, 0),
            Err(CapError::WrongTarget { .. })
        ));
        assert!(matches!(
            key.verify(Some(&cap), T, ShardOp::Read, 0),
            Err(CapError::WrongTarget { .. })
        ));
        let other_disk = ShardTarget { disk_id: 1, ..T };
        assert_eq!(
            key.verify(Some(&cap), other_disk, ShardOp::Write, 0),
            Err(CapError::WrongDisk {
                cap: 0xd15c,
                req: 1
            })
        );
        assert_eq!(
            key.verify(Some(&cap), T, ShardOp::Write, 1_500),
            Err(CapError::Expired { ago_ms: 500 })
        );
        let other = CapabilityKey::new("other");
        assert_eq!(
            other.verify(Some(&cap), T, ShardOp::Write, 0),
            Err(CapError::BadMac)
        );
        let mut forged = cap.clone();
        forged.expires_unix_ms = u64::MAX;
        assert_eq!(
            key.verify(Some(&forged), T, ShardOp::Write, 0),
            Err(CapError::BadMac)
        );
    }

    #[test]
    fn disk_and_length_are_signed_and_writes_must_match_the_length() {
        let key = CapabilityKey::new("s3cret");
        let cap = key.sign(T, ShardOp::Write, 4096, u64::MAX);
        assert_eq!(key.verify_write(Some(&cap), T, 4096, 0), Ok(()));
        for len in [0, 4095, 4097, 64 << 20] {
            assert_eq!(
                key.verify_write(Some(&cap), T, len, 0),
                Err(CapError::WrongLength {
                    cap: 4096,
                    req: len
                })
            );
        }
        // Rewriting the disk or the length in a signed capability breaks its MAC.
        let mut moved = cap.clone();
        moved.disk_id = 1;
        let there = ShardTarget { disk_id: 1, ..T };
        assert_eq!(
            key.verify(Some(&moved), there, ShardOp::Write, 0),
            Err(CapError::BadMac)
        );
        let mut longer = cap.clone();
        longer.shard_len = 1 << 30;
        assert_eq!(
            key.verify_write(Some(&longer), T, 1 << 30, 0),
            Err(CapError::BadMac)
        );
    }
}
