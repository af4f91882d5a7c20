//! The per-block checksums of a layout-2 record: filling the table when a record is written,
//! and checking only the blocks a range read touched.

use crate::FormatError;
use crate::record::{CRC_BLOCK, HEADER_LEN, Layout};
use std::ops::Range;

/// What a read of `[offset, offset + len)` of a layout-2 record's data must fetch, in bytes
/// from the record start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSpan {
    /// The first checksum block the range touches.
    pub first_block: u64,
    /// The table entries of the blocks the range touches.
    pub table: Range<u64>,
    /// Those blocks' data (the last one may be short).
    pub data: Range<u64>,
}

/// The checksum blocks that `[offset, offset + len)` of `data_len` bytes touches. The caller
/// has checked that the range lies inside the data; an empty range touches no block.
pub fn span(data_len: u64, offset: u64, len: u64) -> BlockSpan {
    let bs = CRC_BLOCK as u64;
    let data_at = Layout::V2.data_offset(data_len);
    let (b0, b1) = if len == 0 {
        (offset / bs, offset / bs)
    } else {
        (offset / bs, (offset + len).div_ceil(bs))
    };
    BlockSpan {
        first_block: b0,
        table: HEADER_LEN as u64 + 4 * b0..HEADER_LEN as u64 + 4 * b1,
        data: data_at + b0 * bs..data_at + (b1 * bs).min(data_len),
    }
}

/// Writes the checksum table of a layout-2 record whose `data_len` bytes already sit at
/// their offset in `record`.
pub fn fill_table(record: &mut [u8], data_len: usize) {
    let start = Layout::V2.data_offset(data_len as u64) as usize;
    let (head, data) = record.split_at_mut(start);
    let table = &mut head[HEADER_LEN..];
    for (i, block) in data[..data_len].chunks(CRC_BLOCK as usize).enumerate() {
        table[4 * i..4 * i + 4].copy_from_slice(&crc32c::crc32c(block).to_le_bytes());
    }
}

/// Checks `data`, which starts at checksum block `first_block`, against `table`, the entries
/// of the blocks it covers. A mismatch names the block; bytes that fail are never accepted.
pub fn verify(table: &[u8], data: &[u8], first_block: u64) -> Result<(), FormatError> {
    let blocks = data.len().div_ceil(CRC_BLOCK as usize);
    if table.len() != 4 * blocks {
        return Err(FormatError::Truncated {
            what: "record checksum table",
            need: 4 * blocks as u64,
            have: table.len() as u64,
        });
    }
    for (i, block) in data.chunks(CRC_BLOCK as usize).enumerate() {
        let stored = crate::get_u32(table, 4 * i);
        let computed = crc32c::crc32c(block);
        if stored != computed {
            return Err(FormatError::BlockChecksum {
                block: first_block + i as u64,
                stored,
                computed,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(data: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8; Layout::V2.footprint(data.len() as u64) as usize];
        let at = Layout::V2.data_offset(data.len() as u64) as usize;
        r[at..at + data.len()].copy_from_slice(data);
        fill_table(&mut r, data.len());
        r
    }

    fn slice(r: &[u8], range: &Range<u64>) -> Vec<u8> {
        r[range.start as usize..range.end as usize].to_vec()
    }

    #[test]
    fn a_read_inside_one_block_needs_one_entry_and_one_block() {
        let s = span(820 << 10, 500_000, 4096);
        assert_eq!(s.first_block, 122);
        assert_eq!(
            s.table.end - s.table.start,
            8,
            "4096 bytes at 500000 straddle two blocks"
        );
        assert_eq!(s.data.end - s.data.start, 8192);
        let s = span(820 << 10, 4096 * 10, 4096);
        assert_eq!(
            (s.table.end - s.table.start, s.data.end - s.data.start),
            (4, 4096)
        );
    }

    proptest! {
        #[test]
        fn any_range_verifies_and_holds_the_bytes_asked_for(
            data in proptest::collection::vec(any::<u8>(), 1..40_000),
            a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
            let r = record(&data);
            let (x, y) = (a.index(data.len()), b.index(data.len()));
            let (off, len) = (x.min(y) as u64, (x.max(y) - x.min(y)) as u64 + 1);
            let s = span(data.len() as u64, off, len);
            let got = slice(&r, &s.data);
            prop_assert!(verify(&slice(&r, &s.table), &got, s.first_block).is_ok());
            let skip = (off - s.first_block * CRC_BLOCK as u64) as usize;
            prop_assert_eq!(&got[skip..skip + len as usize], &data[off as usize..(off + len) as usize]);
        }

        #[test]
        fn a_flipped_byte_in_a_block_or_its_entry_fails_that_block(
            data in proptest::collection::vec(any::<u8>(), 1..40_000),
            pos in any::<prop::sample::Index>(), in_table in any::<bool>(), mask in 1u8..=255) {
            let mut r = record(&data);
            let i = pos.index(data.len());
            let block = i as u64 / CRC_BLOCK as u64;
            let at = if in_table {
                HEADER_LEN + 4 * block as usize + i % 4
            } else {
                Layout::V2.data_offset(data.len() as u64) as usize + i
            };
            r[at] ^= mask;
            let s = span(data.len() as u64, i as u64, 1);
            let res = verify(&slice(&r, &s.table), &slice(&r, &s.data), s.first_block);
            let failed_block = matches!(res, Err(FormatError::BlockChecksum { block: b, .. }) if b == block);
            prop_assert!(failed_block, "{:?}", res);
        }
    }
}
