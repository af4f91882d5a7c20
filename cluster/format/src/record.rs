//! Record header: the 64 bytes in front of every shard or tombstone on a device.
//!
//! Byte layout (little-endian):
//!
//! ```text
//!  0..4   magic  b"KDR1" (layout 1) or b"KDR2" (layout 2)
//!  4      kind   1 = shard, 2 = tombstone
//!  5..8   zero
//!  8..16  stripe id
//! 16..20  shard index
//! 20..24  data length in bytes (0 for a tombstone)
//! 24..28  crc32c of the data
//! 28..32  layout 1: zero; layout 2: the checksum block size (4096)
//! 32..40  seq: the device's log sequence number, strictly increasing per write
//! 40..48  version: the seq at which this content was first written (kept when the
//!         compactor relocates a record, so a relocated copy never outranks a later delete)
//! 48..60  zero
//! 60..64  crc32c of bytes 0..60
//! ```
//!
//! Layout 1 follows the header with the data and zero padding up to the next 4 KiB boundary:
//! one crc32c covers the whole data, so any read of a shard reads and checks all of it.
//!
//! Layout 2 (written since format version 2) puts a table of crc32c values right after the
//! header, one per 4 KiB block of data (the last block may be short), then the data, then
//! padding. A read of a few KiB reads the header block, the table entries and the data
//! blocks it covers, and checks each block on its own ([`crate::blocks`]). The whole-data
//! crc32c stays in the header: scans, scrubs and full reads check both.

use crate::{FormatError, get_u32, get_u64, round_up_block};

/// Size of a record header in bytes.
pub const HEADER_LEN: usize = 64;
const MAGIC_V1: &[u8; 4] = b"KDR1";
const MAGIC_V2: &[u8; 4] = b"KDR2";
/// Data bytes one entry of a layout-2 checksum table covers.
pub const CRC_BLOCK: u32 = 4096;

/// How a record's data is checksummed, and so where it starts.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// One crc32c over the whole data, which follows the header.
    V1,
    /// A crc32c per [`CRC_BLOCK`] bytes in a table between header and data.
    #[default]
    V2,
}

impl Layout {
    /// Bytes from the record start to its data.
    pub fn data_offset(self, data_len: u64) -> u64 {
        match self {
            Layout::V1 => HEADER_LEN as u64,
            Layout::V2 => HEADER_LEN as u64 + 4 * data_len.div_ceil(CRC_BLOCK as u64),
        }
    }

    /// Bytes a record of `data_len` bytes occupies on the device (header, table, data,
    /// padding).
    pub fn footprint(self, data_len: u64) -> u64 {
        round_up_block(self.data_offset(data_len) + data_len)
    }
}

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
    /// Where the data starts and how it is checksummed.
    pub layout: Layout,
}

/// Bytes a new record (the current layout) with `data_len` bytes of data occupies on the
/// device.
pub fn record_footprint(data_len: u64) -> u64 {
    Layout::default().footprint(data_len)
}

impl RecordHeader {
    /// Encodes the header into its 64 bytes, computing its checksum.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(match self.layout {
            Layout::V1 => MAGIC_V1,
            Layout::V2 => MAGIC_V2,
        });
        b[4] = self.kind as u8;
        b[8..16].copy_from_slice(&self.stripe_id.to_le_bytes());
        b[16..20].copy_from_slice(&self.shard_index.to_le_bytes());
        b[20..24].copy_from_slice(&self.data_len.to_le_bytes());
        b[24..28].copy_from_slice(&self.data_crc.to_le_bytes());
        if self.layout == Layout::V2 {
            b[28..32].copy_from_slice(&CRC_BLOCK.to_le_bytes());
        }
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
        let layout = match &b[0..4] {
            m if m == MAGIC_V1 => Layout::V1,
            m if m == MAGIC_V2 => Layout::V2,
            _ => {
                return Err(FormatError::BadMagic {
                    what: "record header",
                });
            }
        };
        if crc32c::crc32c(&b[0..60]) != get_u32(b, 60) {
            return Err(FormatError::BadChecksum {
                what: "record header",
            });
        }
        if layout == Layout::V2 && get_u32(b, 28) != CRC_BLOCK {
            return Err(FormatError::Invalid {
                what: "checksum block size",
                detail: get_u32(b, 28).to_string(),
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
            layout,
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
        self.layout.footprint(self.data_len as u64)
    }

    /// Bytes from the record start to its data.
    pub fn data_offset(&self) -> usize {
        self.layout.data_offset(self.data_len as u64) as usize
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

/// Decodes a whole record from `b` (header, table, data; padding may follow): the header,
/// the data and a layout-2 table are all verified, so the returned slice is exactly what was
/// written.
pub fn decode_record(b: &[u8]) -> Result<(RecordHeader, &[u8]), FormatError> {
    let h = RecordHeader::decode(b)?;
    let start = h.data_offset();
    let end = start as u64 + h.data_len as u64;
    if (b.len() as u64) < end {
        return Err(FormatError::Truncated {
            what: "record",
            need: end,
            have: b.len() as u64,
        });
    }
    let data = &b[start..end as usize];
    h.verify_data(data)?;
    if h.layout == Layout::V2 {
        crate::blocks::verify(&b[HEADER_LEN..start], data, 0)?;
    }
    Ok((h, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode_record(h: &RecordHeader, data: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; h.footprint() as usize];
        v[..HEADER_LEN].copy_from_slice(&h.encode());
        let at = h.data_offset();
        v[at..at + data.len()].copy_from_slice(data);
        if h.layout == Layout::V2 {
            crate::blocks::fill_table(&mut v, data.len());
        }
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
            layout: Layout::V2,
        }
    }

    fn layout(v2: bool) -> Layout {
        if v2 { Layout::V2 } else { Layout::V1 }
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

    #[test]
    fn a_layout_1_record_written_by_the_first_format_still_decodes() {
        // Bytes as format version 1 wrote them: magic KDR1, zero at 28..32, data at 64.
        let data = b"written before checksum tables";
        let mut h = header_for(data, 7, 3, 11);
        h.layout = Layout::V1;
        let rec = encode_record(&h, data);
        assert_eq!(&rec[0..4], b"KDR1");
        assert_eq!(&rec[28..32], &[0, 0, 0, 0]);
        assert_eq!(&rec[64..64 + data.len()], data);
        let (h2, d2) = decode_record(&rec).unwrap();
        assert_eq!((h2.layout, d2), (Layout::V1, &data[..]));
    }

    #[test]
    fn a_layout_2_record_keeps_a_table_entry_per_4_kib() {
        let data = vec![5u8; 10_000];
        let h = header_for(&data, 1, 0, 1);
        assert_eq!(h.data_offset(), 64 + 3 * 4);
        assert_eq!(h.footprint(), 12_288);
        let rec = encode_record(&h, &data);
        assert_eq!(&rec[0..4], b"KDR2");
        assert_eq!(crate::get_u32(&rec, 64), crc32c::crc32c(&data[..4096]));
        assert_eq!(crate::get_u32(&rec, 72), crc32c::crc32c(&data[8192..]));
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..9000),
                      stripe in any::<u64>(), shard in any::<u32>(), seq in any::<u64>(),
                      v2 in any::<bool>()) {
            let mut h = header_for(&data, stripe, shard, seq);
            h.layout = layout(v2);
            let rec = encode_record(&h, &data);
            prop_assert_eq!(rec.len() % 4096, 0);
            let (h2, d2) = decode_record(&rec).unwrap();
            prop_assert_eq!(h2, h);
            prop_assert_eq!(d2, &data[..]);
        }

        #[test]
        fn any_byte_flip_is_an_error_never_wrong_data(
            data in proptest::collection::vec(any::<u8>(), 0..5000),
            pos in any::<prop::sample::Index>(), mask in 1u8..=255, v2 in any::<bool>()) {
            let mut h = header_for(&data, 9, 1, 77);
            h.layout = layout(v2);
            let mut rec = encode_record(&h, &data);
            let covered = h.data_offset() + data.len();
            let i = pos.index(covered);
            rec[i] ^= mask;
            prop_assert!(decode_record(&rec).is_err());
        }

        #[test]
        fn any_truncation_is_an_error(
            data in proptest::collection::vec(any::<u8>(), 0..5000),
            cut in any::<prop::sample::Index>(), v2 in any::<bool>()) {
            let mut h = header_for(&data, 9, 1, 77);
            h.layout = layout(v2);
            let rec = encode_record(&h, &data);
            let covered = h.data_offset() + data.len();
            let keep = cut.index(covered);
            let res = decode_record(&rec[..keep]);
            prop_assert!(
                matches!(res, Err(FormatError::Truncated { .. })),
                "expected truncation error, got {:?}", res
            );
        }
    }
}
