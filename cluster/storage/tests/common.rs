//! Helpers shared by the storage integration tests (included with `mod common;`).
#![allow(dead_code)]

use kdss_storage::engine::{FormatOptions, ShardKey, format};
use std::path::{Path, PathBuf};

pub const CLUSTER: &str = "test-cluster";

pub fn key(stripe: u64, shard: u32) -> ShardKey {
    ShardKey { stripe, shard }
}

/// Deterministic content of a shard, so any byte returned can be checked.
pub fn content(k: ShardKey, len: usize) -> Vec<u8> {
    let mut x = (k.stripe.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ k.shard as u64) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A length derived from the key (0 .. 200 KiB).
pub fn len_of(k: ShardKey) -> usize {
    ((k.stripe.wrapping_mul(7919) ^ (k.shard as u64 * 104_729)) % 200_000) as usize
}

pub fn fresh(dir: &Path, size: u64, seg: u64) -> PathBuf {
    let p = dir.join("disk.img");
    format(
        &p,
        size,
        CLUSTER,
        FormatOptions {
            segment_size: Some(seg),
            force: false,
        },
    )
    .unwrap();
    p
}

/// Overwrites `bytes` at `off` of a file (buffered; the engine is closed).
pub fn poke(path: &Path, off: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, off).unwrap();
    f.sync_all().unwrap();
}

pub fn peek(path: &Path, off: u64, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).unwrap();
    let mut b = vec![0u8; len];
    f.read_exact_at(&mut b, off).unwrap();
    b
}

/// The messages of a PutShard of `data` as shard 0 of `stripe`, in 100 kB pieces; the
/// capability rides on the first.
pub fn put_stream(
    stripe: u64,
    disk_id: u64,
    cap: Option<kdss_proto::storage::Capability>,
    data: &[u8],
) -> impl futures::Stream<Item = kdss_proto::storage::PutShardRequest> + use<> {
    let mut msgs = Vec::new();
    for (i, c) in data.chunks(100_000).enumerate() {
        msgs.push(kdss_proto::storage::PutShardRequest {
            key: (i == 0).then_some(kdss_proto::storage::ShardKey {
                stripe_id: stripe,
                shard_index: 0,
            }),
            disk_id,
            cap: if i == 0 { cap.clone() } else { None },
            total_len: data.len() as u64,
            crc32c: crc32c::crc32c(data),
            data: bytes::Bytes::copy_from_slice(c),
        });
    }
    futures::stream::iter(msgs)
}
