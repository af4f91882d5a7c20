//! Record header: the 64 bytes in front of every shard or tombstone on a device.
//!
//! Byte layout (little-endian):
//!
//! ```text
//!  0..4   magic  b"KDR1"
//!  4      kind   1 = shard, 2 = tombstone
//!  5..8   zero
//!  8..16  stripe id
//! 16..20  shard index
//! 20..24  data length in bytes (0 for a tombstone)
//! 24..28  crc32c of the data
//! 28..32  zero
//! 32..40  seq: the device's log sequence number, strictly increasing per write
//! 40..48  version: the seq at which this content was first written (kept when the
//!         compactor relocates a record, so a relocated copy never outranks a later delete)
//! 48..60  zero
//! 60..64  crc32c of bytes 0..60
//! ```
//!
//! followed by the data and zero padding up to the next 4 KiB boundary.

use crate::{FormatError, get_u32, get_u64, round_up_block};

/// Size of a record header in bytes.
pub const HEADER_LEN: usize = 64;
const MAGIC: &[u8; 4] = b"KDR1";

/// What a record holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// Shard data.
    Shard = 1,
    /// A delete marker: the shard with a lower version is gone.
    Tombstone = 2,
}

/// The decoded, checksum-verified header of a record.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub kind: RecordKind,
    pub stripe_id: u64,
    pub shard_index: u32,
    pub data_len: u32,
    pub data_crc: u32,
    pub seq: u64,
    pub version: u64,
}

/// Bytes a record with `data_len` bytes of data occupies on the device (header, data, padding).
pub fn record_footprint(data_len: u64) -> u64 {
    round_up_block(HEADER_LEN as u64 + data_len)
}

impl RecordHeader {
    /// Encodes the header into its 64 bytes, computing its checksum.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(MAGIC);
        b[4] = self.kind as u8;
        b[8..16].copy_from_slice(&self.stripe_id.to_le_bytes());
        b[16..20].copy_from_slice(&self.shard_index.to_le_bytes());
        b[20..24].copy_from_slice(&self.data_len.to_le_bytes());
        b[24..28].copy_from_slice(&self.data_crc.to_le_bytes());
        b[32..40].copy_from_slice(&self.seq.to_le_bytes());
        b[40..48].copy_from_slice(&self.version.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and verifies a header from the first 64 bytes of `b`.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        if b.len() < HEADER_LEN {
            return Err(FormatError::Truncated {
                what: "record header",
                need: HEADER_LEN as u64,
                have: b.len() as u64,
            });
        }
        if &b[0..4] != MAGIC {
            return Err(FormatError::BadMagic {
                what: "record header",
            });
        }
        if crc32c::crc32c(&b[0..60]) != get_u32(b, 60) {
            return Err(FormatError::BadChecksum {
                what: "record header",
            });
        }
        let kind = match b[4] {
            1 => RecordKind::Shard,
            2 => RecordKind::Tombstone,
            k => {
                return Err(FormatError::Invalid {
                    what: "record kind",
                    detail: k.to_string(),
                });
            }
        };
        let h = RecordHeader {
            kind,
            stripe_id: get_u64(b, 8),
            shard_index: get_u32(b, 16),
            data_len: get_u32(b, 20),
            data_crc: get_u32(b, 24),
            seq: get_u64(b, 32),
            version: get_u64(b, 40),
        };
        if kind == RecordKind::Tombstone && h.data_len != 0 {
            return Err(FormatError::Invalid {
                what: "tombstone length",
                detail: h.data_len.to_string(),
            });
        }
        Ok(h)
    }

    /// Bytes this record occupies on the device.
    pub fn footprint(&self) -> u64 {
        record_footprint(self.data_len as u64)
    }

    /// Checks `data` (exactly the record's data) against the header's length and crc32c.
    pub fn verify_data(&self, data: &[u8]) -> Result<(), FormatError> {
        if data.len() as u64 != self.data_len as u64 {
            return Err(FormatError::Truncated {
                what: "record data",
                need: self.data_len as u64,
                have: data.len() as u64,
            });
        }
        let computed = crc32c::crc32c(data);
        if computed != self.data_crc {
            return Err(FormatError::DataChecksum {
                stored: self.data_crc,
                computed,
            });
        }
        Ok(())
    }
}

/// Decodes a whole record from `b` (header then data; padding may follow): the header and the
/// data are both verified, so the returned slice is exactly what was written.
pub fn decode_record(b: &[u8]) -> Result<(RecordHeader, &[u8]), FormatError> {
    let h = RecordHeader::decode(b)?;
    let end = HEADER_LEN as u64 + h.data_len as u64;
    if (b.len() as u64) < end {
        return Err(FormatError::Truncated {
            what: "record",
            need: end,
            have: b.len() as u64,
        });
    }
    let data = &b[HEADER_LEN..end as usize];
    h.verify_data(data)?;
    Ok((h, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode_record(h: &RecordHeader, data: &[u8]) -> Vec<u8> {
        let mut v = h.encode().to_vec();
        v.extend_from_slice(data);
        v.resize(record_footprint(data.len() as u64) as usize, 0);
        v
    }

    fn header_for(data: &[u8], stripe_id: u64, shard_index: u32, seq: u64) -> RecordHeader {
        RecordHeader {
            kind: RecordKind::Shard,
            stripe_id,
            shard_index,
            data_len: data.len() as u32,
            data_crc: crc32c::crc32c(data),
            seq,
            version: seq,
        }
    }

    #[test]
    fn tombstone_with_data_length_is_refused() {
        let mut h = header_for(b"", 1, 2, 3);
        h.kind = RecordKind::Tombstone;
        h.data_len = 5;
        assert!(matches!(
            RecordHeader::decode(&h.encode()),
            Err(FormatError::Invalid { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..9000),
                      stripe in any::<u64>(), shard in any::<u32>(), seq in any::<u64>()) {
            let h = header_for(&data, stripe, shard, seq);
            let rec = encode_record(&h, &data);
            prop_assert_eq!(rec.len() % 4096, 0);
            let (h2, d2) = decode_record(&rec).unwrap();
            prop_assert_eq!(h2, h);
            prop_assert_eq!(d2, &data[..]);
        }

        #[test]
        fn any_byte_flip_is_an_error_never_wrong_data(
            data in proptest::collection::vec(any::<u8>(), 0..5000),
            pos in any::<prop::sample::Index>(), mask in 1u8..=255) {
            let h = header_for(&data, 9, 1, 77);
            let mut rec = encode_record(&h, &data);
            let covered = HEADER_LEN + data.len();
            let i = pos.index(covered);
            rec[i] ^= mask;
            prop_assert!(decode_record(&rec).is_err());
        }

        #[test]
        fn any_truncation_is_an_error(
            data in proptest::collection::vec(any::<u8>(), 0..5000),
            cut in any::<prop::sample::Index>()) {
            let h = header_for(&data, 9, 1, 77);
            let rec = encode_record(&h, &data);
            let covered = HEADER_LEN + data.len();
            let keep = cut.index(covered);
            let res = decode_record(&rec[..keep]);
            prop_assert!(
                matches!(res, Err(FormatError::Truncated { .. })),
                "expected truncation error, got {:?}", res
            );
        }
    }
}
