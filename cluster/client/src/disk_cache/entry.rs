//! One entry file on disk: a run of consecutive blocks of one shard, behind a header that
//! names what the bytes are (cluster, stripe, shard, first block, block count, length of the
//! last block) and holds a crc32c per block, itself covered by a crc32c of the header.
//! Block `i` starts at `data_start + i * BLOCK_SIZE`, where `data_start` is the header
//! rounded up to whole 4 KiB pages, so a range read of one block reads the header page and
//! that block and checks just those.
//!
//! A reader trusts nothing it did not check: a header cut short, a flipped bit in it, or a
//! file another cluster wrote into a reused directory decode as an [`EntryError`] and the
//! whole file is a miss; a block cut short by a crash or with a flipped bit fails on its own
//! and the blocks before it are still served.

use bytes::Bytes;

use crate::cache::{BLOCK_SIZE, BlockKey};

/// First bytes of every entry.
pub const MAGIC: [u8; 4] = *b"KDDC";
/// Layout of the header below; a different one is a miss (and the file is deleted).
/// Version 1 was one block per file (`.blk` names); such files are removed at open.
pub const VERSION: u16 = 2;
/// Header bytes before the crc table: magic, version, name length, stripe, shard, first
/// block, block count, length of the last block, crc32c of the header.
const FIXED: usize = 4 + 2 + 2 + 8 + 4 + 8 + 4 + 4 + 4;
/// Where the header's own crc32c sits (computed with these 4 bytes zero).
const HEADER_CRC_AT: usize = FIXED - 4;
/// Data starts on a page boundary.
const PAGE: usize = 4096;
/// Most blocks one file holds (4 MiB): the eviction unit stays small and the header of a
/// short cluster name fits one page.
pub const MAX_BLOCKS: usize = 64;

/// Why an entry (or one block of it) was not returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("header cut short ({0} bytes)")]
    Truncated(usize),
    #[error("not a block entry (bad magic)")]
    Magic,
    #[error("entry format version {0}, this build reads {VERSION}")]
    Version(u16),
    #[error("header checksum mismatch")]
    HeaderChecksum,
    #[error("entry of another cluster")]
    Cluster,
    #[error("entry holds {0:?} x{1}, expected another run")]
    Key(BlockKey, u32),
    #[error("block {0} of the entry cut short")]
    BlockTruncated(usize),
    #[error("block {0} of the entry fails its checksum")]
    Checksum(usize),
}

/// What a verified header says: the blocks' checksums and where their data starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub crcs: Vec<u32>,
    pub last_len: usize,
    pub data_start: usize,
}

impl Header {
    /// The header of `data_len` bytes of blocks whose crc32c are `crcs` (computed by the
    /// writer as it writes each block); [`Header::encode`] places it.
    pub fn new(crcs: Vec<u32>, data_len: usize) -> Header {
        let last_len = data_len - (crcs.len().saturating_sub(1)) * BLOCK_SIZE as usize;
        Header {
            crcs,
            last_len,
            data_start: 0,
        }
    }

    /// Byte range of block `i` in the file.
    pub fn block_range(&self, i: usize) -> std::ops::Range<usize> {
        let from = self.data_start + i * BLOCK_SIZE as usize;
        let len = if i + 1 == self.crcs.len() {
            self.last_len
        } else {
            BLOCK_SIZE as usize
        };
        from..from + len
    }

    /// The bytes of the header (padded to whole pages) for run `key` x `crcs.len()` of
    /// `cluster`; sets `data_start`.
    pub fn encode(&mut self, cluster: &str, key: BlockKey) -> Vec<u8> {
        let name = cluster.as_bytes();
        let len = FIXED + 4 * self.crcs.len() + name.len();
        let mut b = Vec::with_capacity(len.next_multiple_of(PAGE));
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(&key.0.to_le_bytes());
        b.extend_from_slice(&key.1.to_le_bytes());
        b.extend_from_slice(&key.2.to_le_bytes());
        b.extend_from_slice(&(self.crcs.len() as u32).to_le_bytes());
        b.extend_from_slice(&(self.last_len as u32).to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        for c in &self.crcs {
            b.extend_from_slice(&c.to_le_bytes());
        }
        b.extend_from_slice(name);
        let crc = crc32c::crc32c(&b);
        b[HEADER_CRC_AT..FIXED].copy_from_slice(&crc.to_le_bytes());
        b.resize(len.next_multiple_of(PAGE), 0);
        self.data_start = b.len();
        b
    }

    /// Bytes a reader reads first to find the header of a run of `count` blocks of
    /// `cluster` (the whole header, padding included).
    pub fn read_len(cluster: &str, count: usize) -> usize {
        (FIXED + 4 * count + cluster.len()).next_multiple_of(PAGE)
    }

    /// The header at the start of `buf` (read from the file), if it is run `key` x `count`
    /// of `cluster` and its checksum holds.
    pub fn decode(
        buf: &[u8],
        cluster: &str,
        key: BlockKey,
        count: usize,
    ) -> Result<Header, EntryError> {
        if buf.len() < FIXED {
            return Err(EntryError::Truncated(buf.len()));
        }
        let u16_at = |o: usize| u16::from_le_bytes(buf[o..o + 2].try_into().expect("2 bytes"));
        let u32_at = |o: usize| u32::from_le_bytes(buf[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(buf[o..o + 8].try_into().expect("8 bytes"));
        if buf[..4] != MAGIC {
            return Err(EntryError::Magic);
        }
        let version = u16_at(4);
        if version != VERSION {
            return Err(EntryError::Version(version));
        }
        let n = u32_at(28) as usize;
        let name_len = u16_at(6) as usize;
        let len = FIXED + 4 * n + name_len;
        if buf.len() < len {
            return Err(EntryError::Truncated(buf.len()));
        }
        let mut crc = crc32c::crc32c(&buf[..HEADER_CRC_AT]);
        crc = crc32c::crc32c_append(crc, &[0; 4]);
        crc = crc32c::crc32c_append(crc, &buf[FIXED..len]);
        if crc != u32_at(HEADER_CRC_AT) {
            return Err(EntryError::HeaderChecksum);
        }
        if &buf[len - name_len..len] != cluster.as_bytes() {
            return Err(EntryError::Cluster);
        }
        let found = (u64_at(8), u32_at(16), u64_at(20));
        let last_len = u32_at(32) as usize;
        if found != key || n != count || n == 0 || last_len > BLOCK_SIZE as usize {
            return Err(EntryError::Key(found, n as u32));
        }
        let crcs = buf[FIXED..FIXED + 4 * n]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Ok(Header {
            crcs,
            last_len,
            data_start: len.next_multiple_of(PAGE),
        })
    }

    /// Block `i` out of `data`, the file's bytes from `base` on, if it is whole there and
    /// its checksum holds.
    pub fn block(&self, i: usize, data: &Bytes, base: usize) -> Result<Bytes, EntryError> {
        let r = self.block_range(i);
        if r.start < base || r.end - base > data.len() {
            return Err(EntryError::BlockTruncated(i));
        }
        let b = data.slice(r.start - base..r.end - base);
        if crc32c::crc32c(&b) != self.crcs[i] {
            return Err(EntryError::Checksum(i));
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests;
