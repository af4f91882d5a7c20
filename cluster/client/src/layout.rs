//! Pure arithmetic of the data layout: how a chunk becomes a stripe's shards, which shard
//! bytes a byte range of a stripe touches, and which extents a file range overlaps.
//!
//! A stripe's data is split into k contiguous pieces of `shard_len` bytes
//! (docs/architecture.md, "Writing"): stripe byte `x` lives in data shard `x / shard_len` at offset `x % shard_len`,
//! so a small read touches one data shard.

use kdss_proto::master as pb;

/// Shard length for `data_len` bytes over `k` data shards: `ceil(data_len / k)`, at least 1.
/// Not padded further: the storage record pads to its own block size anyway.
pub fn shard_len_for(data_len: u64, k: u32) -> u64 {
    data_len.div_ceil(k.max(1) as u64).max(1)
}

/// One contiguous piece of a stripe byte range that lies inside one data shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardPiece {
    /// Data shard index.
    pub shard: u32,
    /// Offset inside the shard.
    pub offset: u64,
    /// Bytes.
    pub len: u64,
}

/// Splits `[offset, offset+len)` of a stripe's data into per-shard pieces, in order.
pub fn shard_pieces(shard_len: u64, offset: u64, len: u64) -> Vec<ShardPiece> {
    let mut out = Vec::new();
    if shard_len == 0 {
        return out;
    }
    let mut pos = offset;
    let end = offset + len;
    while pos < end {
        let shard = pos / shard_len;
        let in_shard = pos % shard_len;
        let n = (shard_len - in_shard).min(end - pos);
        out.push(ShardPiece {
            shard: shard as u32,
            offset: in_shard,
            len: n,
        });
        pos += n;
    }
    out
}

/// One piece of a file range: either a hole (zeros) or bytes of a stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilePiece {
    /// `len` bytes of zeros.
    Hole { len: u64 },
    /// `len` bytes at `stripe_offset` of `stripe_id`.
    Data {
        stripe_id: u64,
        stripe_offset: u64,
        len: u64,
    },
}

/// Maps a file range onto sorted, non-overlapping `extents`: the pieces cover the range
/// exactly, in order; uncovered ranges are holes.
pub fn file_pieces(extents: &[pb::Extent], offset: u64, len: u64) -> Vec<FilePiece> {
    let mut out = Vec::new();
    let end = offset + len;
    let mut pos = offset;
    // First extent that ends after `offset`.
    let start = extents.partition_point(|e| e.file_offset + e.len <= offset);
    for e in &extents[start..] {
        if pos >= end || e.file_offset >= end {
            break;
        }
        if e.file_offset > pos {
            out.push(FilePiece::Hole {
                len: e.file_offset - pos,
            });
            pos = e.file_offset;
        }
        let e_end = e.file_offset + e.len;
        let n = e_end.min(end) - pos;
        if n > 0 {
            out.push(FilePiece::Data {
                stripe_id: e.stripe_id,
                stripe_offset: e.stripe_offset + (pos - e.file_offset),
                len: n,
            });
            pos += n;
        }
    }
    if pos < end {
        out.push(FilePiece::Hole { len: end - pos });
    }
    out
}

/// Sorts extents by offset and overlays later entries of the list onto earlier ones, giving
/// a non-overlapping map (what the master's CommitWrite does with one batch).
pub fn normalize_extents(list: &[pb::Extent]) -> Vec<pb::Extent> {
    let mut map: std::collections::BTreeMap<u64, pb::Extent> = std::collections::BTreeMap::new();
    for e in list.iter().filter(|e| e.len > 0) {
        overlay(&mut map, *e);
    }
    map.into_values().collect()
}

/// Puts `e` into `map` (keyed by file offset), cutting whatever it covers.
pub fn overlay(map: &mut std::collections::BTreeMap<u64, pb::Extent>, e: pb::Extent) {
    let (start, end) = (e.file_offset, e.file_offset + e.len);
    let hit: Vec<u64> = map
        .range(..end)
        .rev()
        .take_while(|(_, x)| x.file_offset + x.len > start)
        .map(|(k, _)| *k)
        .collect();
    for k in hit {
        let x = map.remove(&k).expect("key just seen");
        let x_end = x.file_offset + x.len;
        if x.file_offset < start {
            let mut left = x;
            left.len = start - x.file_offset;
            map.insert(left.file_offset, left);
        }
        if x_end > end {
            let cut = end - x.file_offset;
            let right = pb::Extent {
                file_offset: end,
                len: x_end - end,
                stripe_id: x.stripe_id,
                stripe_offset: x.stripe_offset + cut,
            };
            map.insert(end, right);
        }
    }
    map.insert(start, e);
}

/// Half-open block range `[first, last)` of `block_size`-byte blocks covering `[offset, offset+len)`.
pub fn block_span(block_size: u64, offset: u64, len: u64) -> (u64, u64) {
    if len == 0 {
        return (offset / block_size, offset / block_size);
    }
    (offset / block_size, (offset + len).div_ceil(block_size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ext(file_offset: u64, len: u64, stripe_id: u64, stripe_offset: u64) -> pb::Extent {
        pb::Extent {
            file_offset,
            len,
            stripe_id,
            stripe_offset,
        }
    }

    #[test]
    fn shard_len_is_ceiling_and_never_zero() {
        assert_eq!(shard_len_for(10, 5), 2);
        assert_eq!(shard_len_for(11, 5), 3);
        assert_eq!(shard_len_for(0, 5), 1);
        assert_eq!(shard_len_for(4 << 20, 5), 838_861);
    }

    #[test]
    fn pieces_split_at_shard_boundaries() {
        let p = shard_pieces(10, 8, 15);
        assert_eq!(
            p,
            vec![
                ShardPiece {
                    shard: 0,
                    offset: 8,
                    len: 2
                },
                ShardPiece {
                    shard: 1,
                    offset: 0,
                    len: 10
                },
                ShardPiece {
                    shard: 2,
                    offset: 0,
                    len: 3
                },
            ]
        );
    }

    #[test]
    fn file_pieces_fill_holes_with_zeros() {
        let e = vec![ext(10, 10, 1, 0), ext(30, 5, 2, 7)];
        assert_eq!(
            file_pieces(&e, 0, 40),
            vec![
                FilePiece::Hole { len: 10 },
                FilePiece::Data {
                    stripe_id: 1,
                    stripe_offset: 0,
                    len: 10
                },
                FilePiece::Hole { len: 10 },
                FilePiece::Data {
                    stripe_id: 2,
                    stripe_offset: 7,
                    len: 5
                },
                FilePiece::Hole { len: 5 },
            ]
        );
        assert_eq!(
            file_pieces(&e, 15, 3),
            vec![FilePiece::Data {
                stripe_id: 1,
                stripe_offset: 5,
                len: 3
            }]
        );
    }

    proptest! {
        /// Overlaying extents one by one gives the same bytes as writing them into an array:
        /// the last writer of each byte wins.
        #[test]
        fn overlay_matches_a_byte_model(writes in proptest::collection::vec((0u64..200, 1u64..60), 1..20)) {
            let mut model = vec![None::<(u64, u64)>; 300];
            let mut list = Vec::new();
            for (i, (off, len)) in writes.iter().enumerate() {
                let sid = i as u64 + 1;
                for b in 0..*len {
                    model[(off + b) as usize] = Some((sid, b + 3));
                }
                list.push(ext(*off, *len, sid, 3));
            }
            let norm = normalize_extents(&list);
            for w in norm.windows(2) {
                prop_assert!(w[0].file_offset + w[0].len <= w[1].file_offset);
            }
            let pieces = file_pieces(&norm, 0, 300);
            let mut pos = 0u64;
            for p in pieces {
                match p {
                    FilePiece::Hole { len } => {
                        for b in 0..len { prop_assert_eq!(model[(pos + b) as usize], None); }
                        pos += len;
                    }
                    FilePiece::Data { stripe_id, stripe_offset, len } => {
                        for b in 0..len {
                            prop_assert_eq!(model[(pos + b) as usize], Some((stripe_id, stripe_offset + b)));
                        }
                        pos += len;
                    }
                }
            }
            prop_assert_eq!(pos, 300);
        }

        #[test]
        fn shard_pieces_cover_the_range(shard_len in 1u64..50, off in 0u64..200, len in 0u64..200) {
            let p = shard_pieces(shard_len, off, len);
            prop_assert_eq!(p.iter().map(|x| x.len).sum::<u64>(), len);
            let mut pos = off;
            for x in p {
                prop_assert_eq!(x.shard as u64 * shard_len + x.offset, pos);
                prop_assert!(x.offset + x.len <= shard_len);
                pos += x.len;
            }
        }
    }
}
