//! Issue 2 item 5: each bad situation gets an error naming the problem, and nothing changes.

mod common;

use common::*;
use kdss_storage::engine::{Disk, FormatOptions, OpenOptions, format};
use kdss_storage::{StorageConfig, StorageError, format_disk};

#[test]
fn unformatted_device_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("raw.img");
    std::fs::write(&p, vec![7u8; 1 << 20]).unwrap();
    let e = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap_err();
    assert!(matches!(e, StorageError::Unformatted { .. }), "{e}");
    assert!(e.to_string().contains("not a KDSS device"), "{e}");
    assert_eq!(std::fs::read(&p).unwrap(), vec![7u8; 1 << 20]);
}

#[test]
fn foreign_cluster_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 16 << 20, 1 << 20);
    let before = std::fs::read(&p).unwrap();
    let e = Disk::open(&p, "other-cluster", OpenOptions::default()).unwrap_err();
    assert!(matches!(e, StorageError::ForeignCluster { .. }), "{e}");
    assert!(
        e.to_string().contains("test-cluster") && e.to_string().contains("other-cluster"),
        "{e}"
    );
    assert_eq!(std::fs::read(&p).unwrap(), before);
}

#[test]
fn formatted_device_is_not_reformatted_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.img");
    let id = format_disk(&p, 16 << 20, CLUSTER).unwrap();
    let before = std::fs::read(&p).unwrap();
    let e = format_disk(&p, 16 << 20, CLUSTER).unwrap_err();
    assert!(
        matches!(e, StorageError::AlreadyFormatted { disk, .. } if disk == id),
        "{e}"
    );
    assert_eq!(std::fs::read(&p).unwrap(), before);
    let id2 = format(
        &p,
        16 << 20,
        CLUSTER,
        FormatOptions {
            segment_size: None,
            force: true,
        },
    )
    .unwrap();
    assert_ne!(id, id2);
}

#[test]
fn second_opener_is_refused_by_the_exclusive_lock() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 16 << 20, 1 << 20);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    d.put_bytes(key(1, 1), b"hello").unwrap();
    let e = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap_err();
    assert!(matches!(e, StorageError::Locked { .. }), "{e}");
    assert!(e.to_string().contains("in use"), "{e}");
    let e = format_disk(&p, 16 << 20, CLUSTER).unwrap_err();
    assert!(matches!(e, StorageError::Locked { .. }), "{e}");
    assert_eq!(d.read(key(1, 1), 0, 0).unwrap().data(), b"hello");
}

#[test]
fn full_device_refuses_before_acknowledging_anything_partial() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 4 << 20, 256 << 10);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    let mut acked = Vec::new();
    let err = loop {
        let k = key(acked.len() as u64, 0);
        match d.put_bytes(k, &content(k, 100_000)) {
            Ok(_) => acked.push(k),
            Err(e) => break e,
        }
        assert!(acked.len() < 1000);
    };
    assert!(matches!(err, StorageError::DiskFull { .. }), "{err}");
    assert!(err.to_string().contains("full"), "{err}");
    let refused = key(acked.len() as u64, 0);
    assert!(matches!(
        d.read(refused, 0, 0),
        Err(StorageError::NotFound { .. })
    ));
    drop(d);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    assert!(matches!(
        d.read(refused, 0, 0),
        Err(StorageError::NotFound { .. })
    ));
    for k in &acked {
        assert_eq!(d.read(*k, 0, 0).unwrap().data(), &content(*k, 100_000)[..]);
    }
}

/// Fills a device with 100 kB shards until it refuses one; returns those it took.
fn fill_until_full(d: &Disk, first: u64) -> Vec<kdss_storage::engine::ShardKey> {
    let mut acked = Vec::new();
    loop {
        let k = key(first + acked.len() as u64, 0);
        match d.put_bytes(k, &content(k, 100_000)) {
            Ok(_) => acked.push(k),
            Err(StorageError::DiskFull { .. }) => return acked,
            Err(e) => panic!("{e}"),
        }
        assert!(acked.len() < 1000);
    }
}

#[test]
fn a_full_device_still_takes_deletes_and_compaction_gives_the_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 4 << 20, 256 << 10);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    let acked = fill_until_full(&d, 0);
    assert!(acked.len() >= 20, "{} shards", acked.len());
    assert!(d.stats().free < 100_000, "{:?}", d.stats());
    // More tombstones than the open segment has room for: they go on into the segment
    // that new shards leave free.
    for k in &acked {
        assert!(d.delete(*k).unwrap(), "delete {k:?} on the full disk");
    }
    drop(d);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    for k in &acked {
        assert!(matches!(
            d.read(*k, 0, 0),
            Err(StorageError::NotFound { .. })
        ));
    }
    let mut freed = 0;
    while d.compact_once(0.5).unwrap().is_some() {
        freed += 1;
    }
    assert!(freed >= 10, "{freed} segments freed");
    let again = fill_until_full(&d, 10_000);
    assert!(
        again.len() * 4 >= acked.len() * 3,
        "{} shards fit after compaction, {} before",
        again.len(),
        acked.len()
    );
    for k in &again {
        assert_eq!(d.read(*k, 0, 0).unwrap().data(), &content(*k, 100_000)[..]);
    }
}

#[test]
fn shard_failing_its_checksum_is_an_error_never_data() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 16 << 20, 1 << 20);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    let k = key(5, 2);
    let placed = d.put_bytes(k, &content(k, 30_000)).unwrap();
    d.put_bytes(key(6, 2), b"neighbour").unwrap();
    d.close().unwrap();
    drop(d);
    let h = kdss_format::RecordHeader::decode(&peek(&p, placed.offset, 64)).unwrap();
    let at = placed.offset + h.data_offset() as u64 + 12_345;
    let mut byte = peek(&p, at, 1);
    byte[0] ^= 0x01;
    poke(&p, at, &byte);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    for (off, len) in [(12_340, 10), (0, 0)] {
        let e = d
            .read(k, off, len)
            .err()
            .expect("corrupt shard must not be returned");
        assert!(matches!(e, StorageError::ChecksumMismatch { .. }), "{e}");
        assert!(e.to_string().contains("checksum"), "{e}");
    }
    let rep = d.scrub_pass(|_| true).unwrap();
    assert_eq!(rep.corrupt, vec![k]);
    assert_eq!(d.read(key(6, 2), 0, 0).unwrap().data(), b"neighbour");
}

#[test]
fn config_typo_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("storage.toml");
    std::fs::write(
        &p,
        "[node]\nid = \"n1\"\ngrpc_addr = \"127.0.0.1:6800\"\nhttp_addr = \"127.0.0.1:6801\"\n\
         [cluster]\nid = \"c\"\nsecret = \"0123456789abcdef0123456789abcdef\"\n[[disk]]\npath = \"/x\"\n[scrub]\nbytes_per_secc = 5\n",
    )
    .unwrap();
    let e = StorageConfig::load(&p).unwrap_err().to_string();
    assert!(e.contains("storage.toml:11:"), "{e}");
    assert!(e.contains("bytes_per_secc"), "{e}");
}

#[test]
fn write_error_fails_the_disk_and_it_is_never_written_again() {
    use kdss_storage::device::fault::{FaultKind, FaultLayer, FaultOp, FaultRule};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 16 << 20, 1 << 20);
    let layer = Arc::new(FaultLayer::default());
    let d = Disk::open(
        &p,
        CLUSTER,
        OpenOptions {
            fault: Some(layer.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    d.put_bytes(key(1, 0), b"before").unwrap();
    layer.set(vec![FaultRule {
        kind: FaultKind::Eio,
        op: FaultOp::Sync,
        latency_ms: 0,
        after: 0,
    }]);
    assert!(matches!(
        d.put_bytes(key(2, 0), b"x"),
        Err(StorageError::DiskFailed { .. })
    ));
    layer.set(vec![]);
    assert!(d.is_failed());
    assert!(matches!(
        d.put_bytes(key(3, 0), b"y"),
        Err(StorageError::DiskFailed { .. })
    ));
    assert_eq!(d.read(key(1, 0), 0, 0).unwrap().data(), b"before");
    // One good sync, the failed one, and none after the failure.
    assert_eq!(
        d.counters()
            .syncs
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}
