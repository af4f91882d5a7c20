//! The superblock: what a device is, whose it is, and whether its index checkpoint can be
//! trusted. Two copies sit at offsets 0 and 4096; each update writes the copy the older
//! generation sits in, so a torn superblock write always leaves the previous one intact
//! (recovery level L1).
//!
//! Byte layout of one 4 KiB copy (little-endian):
//!
//! ```text
//!    0..8    magic b"KDSSSB\0\x01"
//!    8..12   format version (2; 1 before shard records had block checksums)
//!   12..16   flags: bit 0 = clean shutdown (the checkpoint describes the whole device)
//!   16..24   generation: +1 per write; the valid copy with the higher one wins
//!   24..32   disk id (random at format time)
//!   32..40   cluster hash: FNV-1a 64 of the cluster id string of the configs
//!   40..48   device size in bytes
//!   48..56   segment size in bytes
//!   56..64   data start: device offset of segment 0
//!   64..72   segment count
//!   72..80   checkpoint area offset
//!   80..88   checkpoint area capacity in bytes
//!   88..96   checkpoint length in bytes (0 = none)
//!   96..100  crc32c of the checkpoint bytes
//!  100..104  zero
//!  104..112  next seq at the time of the checkpoint
//!  112       cluster id string length (<= 64)
//!  113..177  cluster id string (kept for error messages; the hash is what is compared)
//!  177..4092 zero
//! 4092..4096 crc32c of bytes 0..4092
//! ```

use crate::{BLOCK, FormatError, get_u32, get_u64};

const MAGIC: &[u8; 8] = b"KDSSSB\0\x01";
/// Format version this build writes: 2 since shard records carry a checksum per 4 KiB
/// block. A device of version 1 is read as it is and marked 2 on its first open (it may
/// then hold layout-2 records, which a version-1 build must not scan past as garbage).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this build reads.
pub const FIRST_FORMAT_VERSION: u32 = 1;
/// Longest cluster id string stored verbatim.
pub const MAX_CLUSTER_ID_LEN: usize = 64;

/// One decoded superblock copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuperBlock {
    pub generation: u64,
    pub clean: bool,
    pub disk_id: u64,
    pub cluster_hash: u64,
    pub cluster_id: String,
    pub device_size: u64,
    pub segment_size: u64,
    pub data_start: u64,
    pub segment_count: u64,
    pub checkpoint_offset: u64,
    pub checkpoint_capacity: u64,
    pub checkpoint_len: u64,
    pub checkpoint_crc: u32,
    pub next_seq: u64,
}

/// The u64 a cluster id string is compared by (FNV-1a 64): stable across builds and
/// platforms, so a device formatted for another cluster is recognised as foreign.
pub fn cluster_hash(cluster_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in cluster_id.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl SuperBlock {
    /// Device offset of copy `i` (0 or 1).
    pub fn copy_offset(i: u64) -> u64 {
        i * BLOCK
    }

    /// Which copy (0 or 1) this generation is written to: copies alternate.
    pub fn slot(&self) -> u64 {
        self.generation % 2
    }

    /// Encodes into one 4 KiB block.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK as usize];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(self.clean as u32).to_le_bytes());
        let fields = [
            self.generation,
            self.disk_id,
            self.cluster_hash,
            self.device_size,
            self.segment_size,
            self.data_start,
            self.segment_count,
            self.checkpoint_offset,
            self.checkpoint_capacity,
            self.checkpoint_len,
        ];
        for (i, f) in fields.iter().enumerate() {
            b[16 + i * 8..24 + i * 8].copy_from_slice(&f.to_le_bytes());
        }
        b[96..100].copy_from_slice(&self.checkpoint_crc.to_le_bytes());
        b[104..112].copy_from_slice(&self.next_seq.to_le_bytes());
        let id = self.cluster_id.as_bytes();
        let n = id.len().min(MAX_CLUSTER_ID_LEN);
        b[112] = n as u8;
        b[113..113 + n].copy_from_slice(&id[..n]);
        let crc = crc32c::crc32c(&b[0..4092]);
        b[4092..4096].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and verifies one copy.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        if b.len() < BLOCK as usize {
            return Err(FormatError::Truncated {
                what: "superblock",
                need: BLOCK,
                have: b.len() as u64,
            });
        }
        if &b[0..8] != MAGIC {
            return Err(FormatError::BadMagic { what: "superblock" });
        }
        if crc32c::crc32c(&b[0..4092]) != get_u32(b, 4092) {
            return Err(FormatError::BadChecksum { what: "superblock" });
        }
        let version = get_u32(b, 8);
        if !(FIRST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(FormatError::Version(version));
        }
        let n = (b[112] as usize).min(MAX_CLUSTER_ID_LEN);
        let sb = SuperBlock {
            clean: get_u32(b, 12) & 1 == 1,
            generation: get_u64(b, 16),
            disk_id: get_u64(b, 24),
            cluster_hash: get_u64(b, 32),
            device_size: get_u64(b, 40),
            segment_size: get_u64(b, 48),
            data_start: get_u64(b, 56),
            segment_count: get_u64(b, 64),
            checkpoint_offset: get_u64(b, 72),
            checkpoint_capacity: get_u64(b, 80),
            checkpoint_len: get_u64(b, 88),
            checkpoint_crc: get_u32(b, 96),
            next_seq: get_u64(b, 104),
            cluster_id: String::from_utf8_lossy(&b[113..113 + n]).into_owned(),
        };
        sb.check_geometry()?;
        Ok(sb)
    }

    fn check_geometry(&self) -> Result<(), FormatError> {
        let bad = |detail: String| {
            Err(FormatError::Invalid {
                what: "superblock geometry",
                detail,
            })
        };
        if self.segment_size == 0 || !self.segment_size.is_multiple_of(BLOCK) {
            return bad(format!("segment size {}", self.segment_size));
        }
        let end = self
            .segment_count
            .checked_mul(self.segment_size)
            .and_then(|s| s.checked_add(self.data_start));
        match end {
            Some(e) if e <= self.device_size => {}
            _ => {
                return bad(format!(
                    "{} segments do not fit the device",
                    self.segment_count
                ));
            }
        }
        // checked: a hostile superblock with a checkpoint area past u64::MAX must be an
        // error, not an overflow panic (debug) or a wrapped sum that passes (release).
        let area_end = self.checkpoint_offset.checked_add(self.checkpoint_capacity);
        if area_end.is_none_or(|e| e > self.data_start)
            || self.checkpoint_len > self.checkpoint_capacity
        {
            return bad("checkpoint area overlaps the data".into());
        }
        Ok(())
    }

    /// Picks the copy to trust from the two decoded copies: the valid one with the higher
    /// generation. Returns the error of copy 0 when neither is valid.
    pub fn pick(
        a: Result<SuperBlock, FormatError>,
        b: Result<SuperBlock, FormatError>,
    ) -> Result<SuperBlock, FormatError> {
        match (a, b) {
            (Ok(a), Ok(b)) => Ok(if b.generation > a.generation { b } else { a }),
            (Ok(a), Err(_)) => Ok(a),
            (Err(_), Ok(b)) => Ok(b),
            (Err(e), Err(_)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(generation: u64) -> SuperBlock {
        SuperBlock {
            generation,
            clean: true,
            disk_id: 0xdead_beef,
            cluster_hash: cluster_hash("kdss-local"),
            cluster_id: "kdss-local".into(),
            device_size: 1 << 30,
            segment_size: 16 << 20,
            data_start: 1 << 20,
            segment_count: 63,
            checkpoint_offset: 8192,
            checkpoint_capacity: (1 << 20) - 8192,
            checkpoint_len: 100,
            checkpoint_crc: 5,
            next_seq: 42,
        }
    }

    #[test]
    fn newer_valid_copy_wins_and_corrupt_copy_falls_back() {
        let a = sample(4);
        let b = sample(5);
        let pick = SuperBlock::pick(
            SuperBlock::decode(&a.encode()),
            SuperBlock::decode(&b.encode()),
        );
        assert_eq!(pick.unwrap().generation, 5);
        let mut broken = b.encode();
        broken[30] ^= 1;
        let pick = SuperBlock::pick(SuperBlock::decode(&a.encode()), SuperBlock::decode(&broken));
        assert_eq!(pick.unwrap().generation, 4);
    }

    /// `sb` encoded as a build of format `version` wrote it.
    fn as_version(sb: &SuperBlock, version: u32) -> Vec<u8> {
        let mut b = sb.encode();
        b[8..12].copy_from_slice(&version.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..4092]);
        b[4092..4096].copy_from_slice(&crc.to_le_bytes());
        b
    }

    #[test]
    fn a_first_format_device_is_read_and_written_back_as_version_2() {
        let sb = sample(4);
        let v1 = as_version(&sb, 1);
        assert_eq!(SuperBlock::decode(&v1).unwrap(), sb);
        assert_eq!(&sb.encode()[8..12], &2u32.to_le_bytes());
        assert_eq!(
            SuperBlock::decode(&as_version(&sb, 3)),
            Err(FormatError::Version(3))
        );
    }

    #[test]
    fn zeroed_device_is_bad_magic() {
        assert_eq!(
            SuperBlock::decode(&[0u8; 4096]),
            Err(FormatError::BadMagic { what: "superblock" })
        );
    }

    #[test]
    fn cluster_hash_is_fnv1a() {
        assert_eq!(cluster_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(cluster_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }

    proptest! {
        #[test]
        fn round_trip_and_any_flip_is_refused(generation in any::<u64>(),
                                              pos in 0usize..4096, mask in 1u8..=255) {
            let sb = sample(generation);
            let enc = sb.encode();
            prop_assert_eq!(SuperBlock::decode(&enc).unwrap(), sb);
            let mut bad = enc.clone();
            bad[pos] ^= mask;
            prop_assert!(SuperBlock::decode(&bad).is_err());
            prop_assert!(SuperBlock::decode(&enc[..pos]).is_err());
        }
    }
}
