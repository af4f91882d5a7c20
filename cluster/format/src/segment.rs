//! Segment header: the first 4 KiB block of a segment in use. A segment whose first block
//! does not decode is free. Records in a segment count only if their seq is above the
//! segment's `open_seq`, so records left over from an earlier life of a reused segment are
//! never mistaken for current ones.
//!
//! Byte layout (little-endian):
//!
//! ```text
//!  0..8   magic b"KDSSSEG1"
//!  8..16  open seq: the device seq when the segment was opened
//! 16..20  segment index
//! 20..24  zero
//! 24..28  crc32c of bytes 0..24
//! 28..4096 zero
//! ```

use crate::{BLOCK, FormatError, get_u32, get_u64};

const MAGIC: &[u8; 8] = b"KDSSSEG1";

/// The decoded header of a segment in use.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub open_seq: u64,
    pub index: u32,
}

impl SegmentHeader {
    /// Encodes into one 4 KiB block.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK as usize];
        b[0..8].copy_from_slice(MAGIC);
        b[8..16].copy_from_slice(&self.open_seq.to_le_bytes());
        b[16..20].copy_from_slice(&self.index.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..24]);
        b[24..28].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and verifies; any error means the segment is free.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        if b.len() < 28 {
            return Err(FormatError::Truncated {
                what: "segment header",
                need: 28,
                have: b.len() as u64,
            });
        }
        if &b[0..8] != MAGIC {
            return Err(FormatError::BadMagic {
                what: "segment header",
            });
        }
        if crc32c::crc32c(&b[0..24]) != get_u32(b, 24) {
            return Err(FormatError::BadChecksum {
                what: "segment header",
            });
        }
        Ok(SegmentHeader {
            open_seq: get_u64(b, 8),
            index: get_u32(b, 16),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_flip() {
        let h = SegmentHeader {
            open_seq: 99,
            index: 3,
        };
        let mut e = h.encode();
        assert_eq!(SegmentHeader::decode(&e), Ok(h));
        e[9] ^= 0x10;
        assert!(SegmentHeader::decode(&e).is_err());
        assert!(SegmentHeader::decode(&[0u8; 4096]).is_err());
    }
}
