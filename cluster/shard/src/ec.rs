//! Erasure coding of stripes with reed-solomon-erasure (simd-accel; Vandermonde RS over
//! GF(2^8), pinned by the on-disk format). Data shards are zero-copy slices of the chunk;
//! only parity (and a padded tail shard) is allocated. Decoding works on any byte range of
//! the shards because RS is computed column by column, so a degraded read of 4 KiB costs
//! 4 KiB from each of k other shards, not whole shards.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use reed_solomon_erasure::galois_8::ReedSolomon;

use crate::ShardError;

/// One codec per (k, m), built once: building inverts matrices.
#[derive(Default)]
pub struct Codecs {
    map: Mutex<HashMap<(u32, u32), Arc<ReedSolomon>>>,
}

impl Codecs {
    /// The codec for `k + m`.
    pub fn get(&self, k: u32, m: u32) -> Result<Arc<ReedSolomon>, ShardError> {
        let mut map = self.map.lock().expect("codec lock");
        if let Some(c) = map.get(&(k, m)) {
            return Ok(c.clone());
        }
        let c = Arc::new(
            ReedSolomon::new(k as usize, m as usize)
                .map_err(|e| ShardError::Codec(format!("EC {k}+{m}: {e:?}")))?,
        );
        map.insert((k, m), c.clone());
        Ok(c)
    }
}

/// The k+m shards of one stripe and their crc32c, ready to send.
#[derive(Debug, Clone)]
pub struct EncodedStripe {
    /// k data shards then m parity shards, each `shard_len` bytes.
    pub shards: Vec<Bytes>,
    /// crc32c of each shard.
    pub crcs: Vec<u32>,
}

/// Splits `chunk` into k data shards of `shard_len` (zero-padded at the tail) and computes
/// m parity shards. CPU-bound: call it off the reactor.
pub fn encode(
    codec: &ReedSolomon,
    chunk: &Bytes,
    shard_len: usize,
) -> Result<EncodedStripe, ShardError> {
    let k = codec.data_shard_count();
    let m = codec.parity_shard_count();
    if chunk.len() > k * shard_len {
        return Err(ShardError::Codec(format!(
            "chunk of {} bytes does not fit {k} shards of {shard_len}",
            chunk.len()
        )));
    }
    let mut data = Vec::with_capacity(k);
    for i in 0..k {
        let start = (i * shard_len).min(chunk.len());
        let end = ((i + 1) * shard_len).min(chunk.len());
        if end - start == shard_len {
            data.push(chunk.slice(start..end));
        } else {
            let mut v = vec![0u8; shard_len];
            v[..end - start].copy_from_slice(&chunk[start..end]);
            data.push(Bytes::from(v));
        }
    }
    let mut parity: Vec<Vec<u8>> = (0..m).map(|_| vec![0u8; shard_len]).collect();
    codec
        .encode_sep(&data, &mut parity)
        .map_err(|e| ShardError::Codec(format!("encode: {e:?}")))?;
    let mut shards = data;
    shards.extend(parity.into_iter().map(Bytes::from));
    let crcs = shards.iter().map(|s| crc32c::crc32c(s)).collect();
    Ok(EncodedStripe { shards, crcs })
}

/// Rebuilds the data shard ranges marked `None` from the ones present (all the same range
/// of their shards). Needs at least k present; returns the k data ranges.
pub fn reconstruct(
    codec: &ReedSolomon,
    mut ranges: Vec<Option<Vec<u8>>>,
) -> Result<Vec<Bytes>, ShardError> {
    let k = codec.data_shard_count();
    codec
        .reconstruct_data(&mut ranges)
        .map_err(|e| ShardError::Codec(format!("decode: {e:?}")))?;
    Ok(ranges
        .into_iter()
        .take(k)
        .map(|r| Bytes::from(r.unwrap_or_default()))
        .collect())
}

/// Rebuilds shard `index` (data or parity), whole, of a stripe whose shards are given in
/// index order with `None` for the ones missing; at least k must be present, all of the same
/// length. This is what the storage node's RebuildShard runs: repair and drain must be able
/// to remake a parity shard too, which [`reconstruct`] (data only) does not. CPU-bound: call
/// it off the reactor.
pub fn reconstruct_shard(
    codec: &ReedSolomon,
    mut shards: Vec<Option<Vec<u8>>>,
    index: usize,
) -> Result<Bytes, ShardError> {
    let n = codec.total_shard_count();
    if shards.len() != n {
        return Err(ShardError::Codec(format!(
            "{} shards given for a stripe of {n}",
            shards.len()
        )));
    }
    if index >= n {
        return Err(ShardError::Codec(format!(
            "shard index {index} outside a stripe of {n}"
        )));
    }
    if shards[index].is_none() {
        codec
            .reconstruct(&mut shards)
            .map_err(|e| ShardError::Codec(format!("decode shard {index}: {e:?}")))?;
    }
    let shard = shards.swap_remove(index).unwrap_or_default();
    Ok(Bytes::from(shard))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policies() -> impl Strategy<Value = (u32, u32)> {
        prop_oneof![
            Just((5u32, 2u32)),
            Just((9, 2)),
            Just((18, 3)),
            Just((29, 3))
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Losing any ≤ m shards of a stripe still yields the original bytes, also when only
        /// a sub-range of each shard is decoded.
        #[test]
        fn decodes_after_losing_any_m_shards(
            (k, m) in policies(),
            len in 1usize..20_000,
            seed in any::<u64>(),
            lost_seed in any::<u64>(),
            range in (0usize..5000, 1usize..5000),
        ) {
            let codecs = Codecs::default();
            let codec = codecs.get(k, m).unwrap();
            let data: Vec<u8> = (0..len).map(|i| (seed.wrapping_mul(i as u64 + 7) >> 13) as u8).collect();
            let chunk = Bytes::from(data.clone());
            let sl = len.div_ceil(k as usize);
            let enc = encode(&codec, &chunk, sl).unwrap();
            prop_assert_eq!(enc.shards.len(), (k + m) as usize);
            // Choose up to m distinct shards to lose.
            let n = (k + m) as usize;
            let mut idx: Vec<usize> = (0..n).collect();
            let mut s = lost_seed;
            for i in (1..n).rev() { s = s.wrapping_mul(6364136223846793005).wrapping_add(1); idx.swap(i, (s >> 33) as usize % (i + 1)); }
            let lost: Vec<usize> = idx[..(lost_seed % (m as u64 + 1)) as usize].to_vec();
            let r0 = range.0.min(sl - 1);
            let r1 = (r0 + range.1).min(sl);
            let ranges: Vec<Option<Vec<u8>>> = (0..n)
                .map(|i| if lost.contains(&i) { None } else { Some(enc.shards[i][r0..r1].to_vec()) })
                .collect();
            let out = reconstruct(&codec, ranges).unwrap();
            for (i, shard) in out.iter().enumerate() {
                for (j, b) in shard.iter().enumerate() {
                    let pos = i * sl + r0 + j;
                    let want = if pos < len { data[pos] } else { 0 };
                    prop_assert_eq!(*b, want);
                }
            }
        }
    }

    #[test]
    fn losing_m_plus_one_is_an_error_not_wrong_data() {
        let codec = Codecs::default().get(5, 2).unwrap();
        let chunk = Bytes::from(vec![7u8; 1000]);
        let enc = encode(&codec, &chunk, 200).unwrap();
        let ranges: Vec<Option<Vec<u8>>> = (0..7)
            .map(|i| {
                if i < 3 {
                    None
                } else {
                    Some(enc.shards[i].to_vec())
                }
            })
            .collect();
        assert!(reconstruct(&codec, ranges).is_err());
    }

    #[test]
    fn data_shards_are_slices_of_the_chunk() {
        let codec = Codecs::default().get(5, 2).unwrap();
        let chunk = Bytes::from(vec![1u8; 1000]);
        let enc = encode(&codec, &chunk, 200).unwrap();
        assert_eq!(enc.shards[0].as_ptr(), chunk.as_ptr());
        assert_eq!(enc.crcs[0], crc32c::crc32c(&chunk[..200]));
    }

    /// Every shard index of every preset comes back byte-exact from what is left after
    /// losing it and up to m - 1 others; losing more than m is an error.
    #[test]
    fn reconstruct_shard_remakes_any_index_of_every_preset() {
        let codecs = Codecs::default();
        for (k, m) in [(5u32, 2u32), (9, 2), (18, 3), (29, 3)] {
            let codec = codecs.get(k, m).unwrap();
            let n = (k + m) as usize;
            let len = 1000 * k as usize + 17;
            let chunk: Vec<u8> = (0..len).map(|i| (i * 31 + k as usize) as u8).collect();
            let sl = len.div_ceil(k as usize);
            let enc = encode(&codec, &Bytes::from(chunk), sl).unwrap();
            for index in 0..n {
                for lost_others in 0..m as usize {
                    // The wanted shard and `lost_others` more, spread over the stripe.
                    let lost: Vec<usize> = (0..=lost_others).map(|j| (index + j * 3) % n).collect();
                    let shards: Vec<Option<Vec<u8>>> = (0..n)
                        .map(|i| (!lost.contains(&i)).then(|| enc.shards[i].to_vec()))
                        .collect();
                    let got = reconstruct_shard(&codec, shards, index).unwrap();
                    assert_eq!(
                        got, enc.shards[index],
                        "{k}+{m} shard {index} lost {lost:?}"
                    );
                    assert_eq!(crc32c::crc32c(&got), enc.crcs[index]);
                }
            }
            let too_few: Vec<Option<Vec<u8>>> = (0..n)
                .map(|i| (i > m as usize).then(|| enc.shards[i].to_vec()))
                .collect();
            assert!(reconstruct_shard(&codec, too_few, 0).is_err(), "{k}+{m}");
        }
    }

    #[test]
    fn reconstruct_shard_refuses_a_wrong_shape() {
        let codec = Codecs::default().get(5, 2).unwrap();
        let shards: Vec<Option<Vec<u8>>> = (0..6).map(|_| Some(vec![0u8; 8])).collect();
        assert!(reconstruct_shard(&codec, shards.clone(), 0).is_err());
        let mut seven = shards;
        seven.push(None);
        assert!(reconstruct_shard(&codec, seven, 7).is_err());
    }
}
