//! The KDSS on-disk format, pure (no I/O) so it can be property-tested on its own.
//!
//! A storage device is laid out as
//!
//! ```text
//! [SuperBlock copy 0, 4 KiB][SuperBlock copy 1, 4 KiB][index checkpoint area]
//! [segment 0: SegmentHeader 4 KiB | Record | Record | ...][segment 1] ...
//! Record = RecordHeader 64 B | crc32c per 4 KiB of data (layout 2) | data | zero padding to 4 KiB
//! ```
//!
//! Main types: [`SuperBlock`] (two copies, the valid one with the higher generation wins),
//! [`RecordHeader`] (every record is self-describing and checksummed, so the index can be
//! rebuilt from the device alone), [`SegmentHeader`] (marks a segment in use and the sequence
//! number it was opened at, so stale records of an earlier life of the segment are ignored) and
//! [`Checkpoint`] (the index serialized on clean shutdown). [`BackupHeader`] heads the
//! masters' metadata backup files. Decoding never returns data that
//! failed its checksum: every failure is a [`FormatError`].

pub mod backup;
pub mod blocks;
pub mod checkpoint;
pub mod error;
pub mod record;
pub mod segment;
pub mod superblock;

pub use backup::BackupHeader;
pub use checkpoint::{Checkpoint, CheckpointEntry, CheckpointSegment};
pub use error::FormatError;
pub use record::{CRC_BLOCK, Layout, RecordHeader, RecordKind, decode_record, record_footprint};
pub use segment::SegmentHeader;
pub use superblock::{SuperBlock, cluster_hash};

/// The device block size: every record, segment and superblock starts on this boundary,
/// which is what O_DIRECT needs.
pub const BLOCK: u64 = 4096;

/// Rounds `n` up to a multiple of [`BLOCK`].
pub const fn round_up_block(n: u64) -> u64 {
    n.div_ceil(BLOCK) * BLOCK
}

/// Reads a little-endian u64 at `at` (callers have checked the length).
pub(crate) fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads a little-endian u32 at `at` (callers have checked the length).
pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
