//! Range reads of shards with a checksum per 4 KiB block (record layout 2): a small read
//! fetches a few blocks, not the record; a corrupt block fails exactly the reads that touch
//! it; records of the first format (one checksum per record) stay readable beside new ones,
//! through a clean reopen, a scan and a compaction.

mod common;

use common::{CLUSTER, content, fresh, key, peek, poke};
use kdss_format::{Layout, RecordHeader};
use kdss_storage::StorageError;
use kdss_storage::engine::{Disk, DiskCounters, IndexSource, OpenOptions};

const MIB: u64 = 1 << 20;

fn device_read(d: &Disk) -> u64 {
    DiskCounters::get(&d.counters().device_read_bytes)
}

#[test]
fn a_4_kib_read_of_a_large_shard_fetches_a_few_blocks_not_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 64 * MIB, 8 * MIB);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    let k = key(1, 0);
    let data = content(k, 820 << 10);
    d.put_bytes(k, &data).unwrap();

    for (off, len) in [
        (500_000u64, 4096u64),
        (0, 4096),
        (820 * 1024 - 4096, 4096),
        (4096 * 7, 1),
    ] {
        let before = device_read(&d);
        let r = d.read(k, off, len).unwrap();
        assert_eq!(
            r.data(),
            &data[off as usize..(off + len) as usize],
            "{off}+{len}"
        );
        let fetched = device_read(&d) - before;
        // The header block (with the table entries) and the device blocks under at most two
        // checksum blocks (data starts after the table, so three): the old layout read
        // all 824 KiB of the record.
        assert!(
            fetched <= 16 << 10,
            "{off}+{len}: {fetched} device bytes for {len}"
        );
    }
    // A whole read still works and is checked block by block.
    assert_eq!(d.read(k, 0, 0).unwrap().data(), &data[..]);
}

#[test]
fn a_corrupt_block_fails_the_reads_that_touch_it_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 32 * MIB, 4 * MIB);
    let k = key(2, 1);
    let data = content(k, 256 << 10);
    let offset = {
        let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
        let placed = d.put_bytes(k, &data).unwrap();
        d.close().unwrap();
        placed.offset
    };
    let h = RecordHeader::decode(&peek(&p, offset, 64)).unwrap();
    assert_eq!(h.layout, Layout::V2);
    // Flip one byte in data block 10.
    let at = offset + h.data_offset() as u64 + 10 * 4096 + 123;
    let mut b = peek(&p, at, 1);
    b[0] ^= 0x5a;
    poke(&p, at, &b);

    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    let r = d.read(k, 20 * 4096, 4096).unwrap();
    assert_eq!(r.data(), &data[20 * 4096..21 * 4096]);
    assert!(
        d.corrupt_shards(10).0.is_empty(),
        "a clean block marks nothing"
    );
    for (off, len) in [(10 * 4096 + 100, 10), (9 * 4096, 8192), (0, 0)] {
        match d.read(k, off, len) {
            Err(StorageError::ChecksumMismatch { detail, .. }) => {
                assert!(detail.contains("block 10"), "{detail}")
            }
            Err(e) => panic!("{off}+{len}: unexpected error {e}"),
            Ok(_) => panic!("{off}+{len}: corrupt bytes were returned"),
        }
    }
    assert_eq!(
        d.corrupt_shards(10).0,
        vec![k],
        "the shard is reported for repair"
    );
}

#[test]
fn records_of_the_first_format_stay_readable_beside_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 32 * MIB, MIB);
    let old: Vec<_> = (0..6).map(|i| key(10 + i, 0)).collect();
    let new: Vec<_> = (0..6).map(|i| key(20 + i, 0)).collect();
    let len = 300_000;
    {
        let first_format = OpenOptions {
            layout: Layout::V1,
            ..Default::default()
        };
        let d = Disk::open(&p, CLUSTER, first_format).unwrap();
        for k in &old {
            let placed = d.put_bytes(*k, &content(*k, len)).unwrap();
            let h = RecordHeader::decode(&peek(&p, placed.offset, 64)).unwrap();
            assert_eq!(h.layout, Layout::V1);
        }
        d.close().unwrap();
    }
    let check = |d: &Disk, what: &str| {
        for k in old.iter().chain(&new) {
            let want = content(*k, len);
            assert_eq!(d.read(*k, 0, 0).unwrap().data(), &want[..], "{what}: {k:?}");
            let r = d.read(*k, 123_456, 5000).unwrap();
            assert_eq!(r.data(), &want[123_456..128_456], "{what}: {k:?} range");
        }
    };
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    for k in &new {
        d.put_bytes(*k, &content(*k, len)).unwrap();
    }
    check(&d, "mixed");
    d.close().unwrap();
    drop(d);

    // A clean reopen (the checkpoint carries each record's layout).
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    assert_eq!(d.recovery().index, IndexSource::Checkpoint);
    check(&d, "checkpoint");
    // Delete every other shard so segments become sparse, and compact: the survivors of
    // both layouts are relocated as they are.
    for k in old.iter().chain(&new).step_by(2) {
        d.delete(*k).unwrap();
    }
    let mut moved = 0;
    while let Some(r) = d.compact_once(0.2).unwrap() {
        moved += r.relocated_records;
    }
    assert!(moved > 0, "the compactor relocated records");
    for k in old.iter().chain(&new).skip(1).step_by(2) {
        let want = content(*k, len);
        assert_eq!(
            d.read(*k, 0, 0).unwrap().data(),
            &want[..],
            "compacted {k:?}"
        );
    }
    drop(d);

    // A crash (no checkpoint): the scan reads both layouts from the records themselves.
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    assert!(
        matches!(d.recovery().index, IndexSource::Scan { .. }),
        "{:?}",
        d.recovery()
    );
    for k in old.iter().chain(&new).skip(1).step_by(2) {
        let want = content(*k, len);
        assert_eq!(
            d.read(*k, 1000, 70_000).unwrap().data(),
            &want[1000..71_000],
            "scanned {k:?}"
        );
    }
}
