//! Engine behaviour on a real device file: put/read/delete, ranges, reopen at each
//! recovery level, compaction, and the refusals of issue 2 item 5.

use kdss_storage::StorageError;
use kdss_storage::engine::{Disk, FormatOptions, IndexSource, OpenOptions, ShardKey, format};
use std::path::Path;

const CLUSTER: &str = "test-cluster";

fn key(stripe: u64, shard: u32) -> ShardKey {
    ShardKey { stripe, shard }
}

fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn fresh(dir: &Path, size: u64, seg: u64) -> std::path::PathBuf {
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

#[test]
fn put_read_range_delete_and_clean_reopen_is_l0() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 32 << 20, 1 << 20);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    for i in 0..20u64 {
        d.put_bytes(key(i, 1), &data(i, (i as usize * 7919) % 300_000))
            .unwrap();
    }
    let r = d.read(key(3, 1), 0, 0).unwrap();
    assert_eq!(r.data(), &data(3, 3 * 7919)[..]);
    let r = d.read(key(5, 1), 100, 1000).unwrap();
    assert_eq!(r.data(), &data(5, 5 * 7919)[100..1100]);
    assert!(matches!(
        d.read(key(5, 1), 40_000, 1),
        Err(StorageError::BadRange { .. })
    ));
    assert!(d.delete(key(4, 1)).unwrap());
    assert!(!d.delete(key(4, 1)).unwrap());
    assert!(matches!(
        d.read(key(4, 1), 0, 0),
        Err(StorageError::NotFound { .. })
    ));
    d.close().unwrap();
    drop(d);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    assert_eq!(d.recovery().index, IndexSource::Checkpoint);
    assert!(!d.recovery().superblock_fallback);
    for i in 0..20u64 {
        let r = d.read(key(i, 1), 0, 0);
        if i == 4 {
            assert!(r.is_err());
        } else {
            assert_eq!(
                r.unwrap().data(),
                &data(i, (i as usize * 7919) % 300_000)[..]
            );
        }
    }
}

#[test]
fn crash_reopen_rebuilds_by_scan_l2() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 32 << 20, 1 << 20);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    for i in 0..50u64 {
        d.put_bytes(key(i, 0), &data(i, 50_000)).unwrap();
    }
    for i in 0..10u64 {
        d.delete(key(i, 0)).unwrap();
    }
    drop(d); // crash: no checkpoint
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    assert!(
        matches!(d.recovery().index, IndexSource::Scan { .. }),
        "{:?}",
        d.recovery()
    );
    for i in 0..50u64 {
        let r = d.read(key(i, 0), 0, 0);
        if i < 10 {
            assert!(matches!(r, Err(StorageError::NotFound { .. })));
        } else {
            assert_eq!(r.unwrap().data(), &data(i, 50_000)[..]);
        }
    }
}

#[test]
fn compaction_frees_segments_and_keeps_deletes_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 16 << 20, 512 << 10);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    for i in 0..100u64 {
        d.put_bytes(key(i, 0), &data(i, 60_000)).unwrap();
    }
    for i in (0..100u64).filter(|i| i % 3 != 0) {
        d.delete(key(i, 0)).unwrap();
    }
    let before = d.stats();
    let mut n = 0;
    while let Some(_r) = d.compact_once(0.2).unwrap() {
        n += 1;
        assert!(n < 200);
    }
    assert!(n > 0);
    let after = d.stats();
    assert!(after.dead < before.dead, "{before:?} {after:?}");
    for i in 0..100u64 {
        let r = d.read(key(i, 0), 0, 0);
        if i % 3 == 0 {
            assert_eq!(r.unwrap().data(), &data(i, 60_000)[..]);
        } else {
            assert!(r.is_err());
        }
    }
    drop(d);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    for i in 0..100u64 {
        assert_eq!(d.read(key(i, 0), 0, 0).is_ok(), i % 3 == 0, "shard {i}");
    }
}

#[test]
fn compaction_leaves_a_segment_alone_while_shards_written_into_it_await_their_sync() {
    use kdss_storage::device::fault::{FaultKind, FaultLayer, FaultOp, FaultRule};
    use std::sync::Arc;
    const SEG: u64 = 256 << 10;
    // Data lengths that take exactly n 4 KiB blocks with the 64-byte record header and a
    // 4-byte checksum per block.
    let blocks = |n: usize| n * 4096 - 64 - 4 * n;
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 4 << 20, SEG);
    let layer = Arc::new(FaultLayer::default());
    let d = Arc::new(
        Disk::open(
            &p,
            CLUSTER,
            OpenOptions {
                fault: Some(layer.clone()),
                ..Default::default()
            },
        )
        .unwrap(),
    );
    // One segment (63 blocks after its header): three shards of 15 blocks, deleted (three
    // tombstone blocks), so 45 of its 48 used blocks are dead and 15 are left.
    let offsets: Vec<u64> = (0..3)
        .map(|i| d.put_bytes(key(i, 0), &data(i, blocks(15))).unwrap().offset)
        .collect();
    // The first record of a fresh disk follows the header block of its first segment.
    let seg_start = offsets[0] - 4096;
    let in_seg = |off: u64| (seg_start..seg_start + SEG).contains(&off);
    assert!(
        offsets.iter().all(|o| in_seg(*o)),
        "the shards share one segment"
    );
    for i in 0..3 {
        assert!(d.delete(key(i, 0)).unwrap());
    }
    // Slow syncs: a 14-block shard lands in the segment's room and waits for its sync while
    // a 2-block one does not fit and seals the segment.
    layer.set(vec![FaultRule {
        kind: FaultKind::Latency,
        op: FaultOp::Sync,
        latency_ms: 1500,
        after: 0,
    }]);
    let put = |k: u64, len: usize| {
        let d = d.clone();
        let t = std::thread::spawn(move || d.put_bytes(key(k, 0), &data(k, len)).unwrap());
        // A plain thread, no reactor to block.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(std::time::Duration::from_millis(150));
        t
    };
    let waiting = put(10, blocks(14));
    let sealing = put(11, blocks(2));
    // The segment is sealed and mostly dead, but a shard in it is not settled yet.
    let compacted = d.compact_once(0.5).unwrap();
    let waiting = waiting.join().unwrap();
    let sealing = sealing.join().unwrap();
    assert!(
        in_seg(waiting.offset),
        "the scenario: shard 10 in the segment"
    );
    assert!(!in_seg(sealing.offset), "the scenario: shard 11 sealed it");
    layer.set(vec![]);
    assert_eq!(
        compacted, None,
        "compacted the segment with a shard still unsettled"
    );
    // Compaction later moves the settled shard; both survive a reopen.
    while d.compact_once(0.5).unwrap().is_some() {}
    drop(d);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    assert_eq!(
        d.read(key(10, 0), 0, 0).unwrap().data(),
        &data(10, blocks(14))[..]
    );
    assert_eq!(
        d.read(key(11, 0), 0, 0).unwrap().data(),
        &data(11, blocks(2))[..]
    );
}
