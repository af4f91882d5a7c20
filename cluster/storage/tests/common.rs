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
