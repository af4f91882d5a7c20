//! Where things sit on a device: superblocks, checkpoint area, segments. Chosen at format
//! time and read back from the superblock.

use crate::error::StorageError;
use kdss_format::{BLOCK, SuperBlock, round_up_block};
use std::path::Path;

const MIB: u64 = 1 << 20;
/// Fewest segments a device may have (one stays in reserve for the compactor).
pub const MIN_SEGMENTS: u64 = 4;

/// Device layout.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub device_size: u64,
    pub segment_size: u64,
    pub data_start: u64,
    pub segment_count: u32,
    pub checkpoint_offset: u64,
    pub checkpoint_capacity: u64,
}

impl Geometry {
    /// Picks a layout for a device of `size` bytes; `segment_size` overrides the default
    /// (1/64 of the device, between 4 MiB and 256 MiB; smaller on small devices).
    pub fn choose(path: &Path, size: u64, segment_size: Option<u64>) -> Result<Self, StorageError> {
        let size = size / BLOCK * BLOCK;
        let checkpoint_offset = 2 * BLOCK;
        let checkpoint_capacity = round_up_block((size / 128).max(64 * 1024));
        let data_start = checkpoint_offset + checkpoint_capacity;
        let seg = match segment_size {
            Some(s) => round_up_block(s.max(2 * BLOCK)),
            None => {
                let s = (size / 64).clamp(4 * MIB, 256 * MIB) / MIB * MIB;
                if size / s < 8 {
                    ((size / 16) / (64 * 1024) * (64 * 1024)).max(64 * 1024)
                } else {
                    s
                }
            }
        };
        let min = data_start + MIN_SEGMENTS * seg;
        if size < min {
            return Err(StorageError::TooSmall {
                path: path.to_path_buf(),
                size,
                min,
            });
        }
        Ok(Geometry {
            device_size: size,
            segment_size: seg,
            data_start,
            segment_count: ((size - data_start) / seg) as u32,
            checkpoint_offset,
            checkpoint_capacity,
        })
    }

    /// The layout a superblock describes.
    pub fn from_superblock(sb: &SuperBlock) -> Self {
        Geometry {
            device_size: sb.device_size,
            segment_size: sb.segment_size,
            data_start: sb.data_start,
            segment_count: sb.segment_count as u32,
            checkpoint_offset: sb.checkpoint_offset,
            checkpoint_capacity: sb.checkpoint_capacity,
        }
    }

    /// Device offset of segment `i`.
    pub fn seg_offset(&self, i: u32) -> u64 {
        self.data_start + i as u64 * self.segment_size
    }

    /// Largest shard a record can hold (a record never spans segments): what is left of a
    /// segment after its header block, the record header and 4 table bytes per 4 KiB.
    pub fn max_shard_len(&self) -> u64 {
        let room = self.segment_size - BLOCK - kdss_format::record::HEADER_LEN as u64;
        let block = kdss_format::CRC_BLOCK as u64;
        let whole = room / (block + 4);
        let rest = (room % (block + 4)).saturating_sub(4);
        let len = (whole * block + rest).min(u32::MAX as u64);
        debug_assert!(kdss_format::record_footprint(len) <= self.segment_size - BLOCK);
        len
    }

    /// Bytes usable for records in all segments.
    pub fn capacity(&self) -> u64 {
        self.segment_count as u64 * (self.segment_size - BLOCK)
    }
}
