//! The disk tier on a real directory: the size bound, the index rebuilt at open, temp files
//! a crash left, files of the old format, and blocks that must not be served.

use super::*;
use std::time::{Duration, Instant};

const BS: usize = BLOCK_SIZE as usize;

fn block(seed: u8) -> Vec<u8> {
    (0..BS).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

/// Waits until the writer thread has taken everything queued.
fn drain(c: &DiskCache) {
    let t = Instant::now();
    while c.queued_bytes() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "write queue never drained"
        );
        #[allow(clippy::disallowed_methods)] // a plain test thread, not async code
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Bytes the files under `dir` take, as the index counts them.
fn du(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            du(&e.path())
        } else {
            index::on_disk(m.len())
        };
    }
    n
}

#[test]
fn the_directory_stays_within_the_bound_and_a_reopen_finds_the_newest_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let entry = index::on_disk((4096 + BS) as u64);
    let limit = 5 * entry;
    let c = DiskCache::open(&dir, limit, "test@1").unwrap();
    for b in 0..20u64 {
        c.offer_run(3, 1, b, Bytes::from(block(b as u8)));
        drain(&c);
        assert!(du(&dir) <= limit, "after block {b}: {} > {limit}", du(&dir));
    }
    let s = c.stats();
    assert_eq!((s.writes, s.entries, s.evictions), (20, 5, 15), "{s:?}");
    assert_eq!(s.bytes, du(&dir));
    drop(c);

    // A remount: the newest five are found, verified and served.
    let c = DiskCache::open(&dir, limit, "test@1").unwrap();
    assert_eq!(c.stats().entries, 5);
    assert!(!c.has_run(3, 1, 14, 15));
    assert!(c.has_run(3, 1, 15, 20));
    let got = c.read_run(3, 1, 15, 20, 5 * BS).unwrap();
    for (i, b) in (15..20u8).enumerate() {
        assert_eq!(&got[i * BS..(i + 1) * BS], &block(b)[..], "block {b}");
    }
    assert_eq!((c.stats().hits, c.stats().misses), (5, 1));
    drop(c);

    // A smaller bound at open evicts down to it.
    let c = DiskCache::open(&dir, 2 * entry, "test@1").unwrap();
    assert_eq!(c.stats().entries, 2);
    assert!(du(&dir) <= 2 * entry);
}

#[test]
fn temp_files_are_removed_at_open_and_the_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    drop(DiskCache::open(&dir, 1 << 20, "c").unwrap());
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    std::fs::write(dir.join("tmp/17.tmp"), b"half an entry").unwrap();
    std::fs::write(dir.join("blocks/stray"), b"not an entry").unwrap();
    drop(DiskCache::open(&dir, 1 << 20, "c").unwrap());
    assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
    assert!(!dir.join("blocks/stray").exists());
}

#[test]
fn a_corrupt_or_foreign_entry_is_a_miss_deleted_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let c = DiskCache::open(&dir, 1 << 20, "one@1").unwrap();
    c.offer_run(9, 0, 0, Bytes::from(block(1)));
    c.offer_run(9, 0, 1, Bytes::from(block(2)));
    drain(&c);
    let path = c.core.path(((c.core.tag, (9, 0, 0)), 1));
    let mut raw = std::fs::read(&path).unwrap();
    raw[30] ^= 1; // the header's block count
    std::fs::write(&path, &raw).unwrap();
    assert!(c.has_run(9, 0, 0, 1));
    assert_eq!(c.read_run(9, 0, 0, 1, BS), None);
    assert!(!path.exists(), "the corrupt entry is deleted");
    assert!(!c.has_run(9, 0, 0, 1), "and forgotten");
    assert_eq!(c.stats().corrupt, 1);
    // A torn entry (cut short).
    let path = c.core.path(((c.core.tag, (9, 0, 1)), 1));
    let raw = std::fs::read(&path).unwrap();
    std::fs::write(&path, &raw[..raw.len() / 2]).unwrap();
    assert_eq!(c.read_run(9, 0, 1, 2, BS), None);
    assert_eq!(c.stats().corrupt, 2);
    drop(c);

    // Another cluster's entry under this cluster's name (a tag collision): refused.
    let other = DiskCache::open(&dir, 1 << 20, "two@2").unwrap();
    other.offer_run(9, 0, 5, Bytes::from(block(5)));
    drain(&other);
    let theirs = other.core.path(((other.core.tag, (9, 0, 5)), 1));
    drop(other);
    let c = DiskCache::open(&dir, 1 << 20, "one@1").unwrap();
    let ours = c.core.path(((c.core.tag, (9, 0, 5)), 1));
    std::fs::rename(&theirs, &ours).unwrap();
    drop(c);
    let c = DiskCache::open(&dir, 1 << 20, "one@1").unwrap();
    assert!(c.has_run(9, 0, 5, 6));
    assert_eq!(c.read_run(9, 0, 5, 6, BS), None);
    assert_eq!(c.stats().corrupt, 1);
}

#[test]
fn a_full_queue_drops_writes_instead_of_growing() {
    let tmp = tempfile::tempdir().unwrap();
    let c = DiskCache::open(&tmp.path().join("c"), 1 << 30, "c").unwrap();
    // Far more than the queue holds, offered faster than one thread writes them.
    let big = Bytes::from(vec![7u8; 4 << 20]);
    for s in 0..64 {
        c.offer_run(s, 0, 0, big.clone());
        assert!(c.queued_bytes() <= QUEUE_BYTES);
    }
    drain(&c);
    let s = c.stats();
    assert!(s.dropped > 0, "{s:?}");
    assert_eq!(s.writes + s.dropped, 64 * 64, "{s:?}");
}

/// `n` blocks of data (the last one `last` bytes), different per seed.
fn run(seed: u8, n: usize, last: usize) -> Bytes {
    let mut d = Vec::new();
    for i in 0..n {
        d.extend_from_slice(&block(seed.wrapping_add(i as u8)));
    }
    d.truncate((n - 1) * BS + last);
    Bytes::from(d)
}

/// The one file the cache holds.
fn only_file(dir: &Path) -> PathBuf {
    let mut files = Vec::new();
    for sub in std::fs::read_dir(dir.join("blocks")).unwrap().flatten() {
        files.extend(
            std::fs::read_dir(sub.path())
                .unwrap()
                .flatten()
                .map(|f| f.path()),
        );
    }
    assert_eq!(files.len(), 1, "{files:?}");
    files.pop().unwrap()
}

#[test]
fn a_run_is_one_file_whose_blocks_read_alone_or_across_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let c = DiskCache::open(&dir, 1 << 30, "c").unwrap();
    let data = run(1, 10, 777);
    c.offer_run(4, 2, 100, data.clone());
    drain(&c);
    let s = c.stats();
    assert_eq!((s.writes, s.entries, s.files), (10, 10, 1), "{s:?}");
    assert_eq!(
        only_file(&dir).metadata().unwrap().len(),
        4096 + data.len() as u64
    );
    let b3 = c.read_run(4, 2, 103, 104, BS).unwrap();
    assert!(b3[..] == data[3 * BS..4 * BS]);
    assert!(c.read_run(4, 2, 109, 110, 777).unwrap() == data.slice(9 * BS..));
    // Overlapping runs: only the blocks not held make new files. (Here 109 being short in
    // the middle of a shard is test data only: a shard's last block is its only short one.)
    let more = run(1, 14, BS);
    c.offer_run(4, 2, 100, more.clone());
    c.offer_run(4, 2, 96, run(200, 4, BS));
    drain(&c);
    let s = c.stats();
    assert_eq!((s.writes, s.entries, s.files), (10 + 4 + 4, 18, 3), "{s:?}");
    let across = c.read_run(4, 2, 98, 109, 11 * BS).unwrap();
    assert!(across[..2 * BS] == run(200, 4, BS)[2 * BS..]);
    assert!(across[2 * BS..] == data[..9 * BS]);
    let tail = c.read_run(4, 2, 110, 114, 4 * BS).unwrap();
    assert!(tail[..] == more[10 * BS..]);
    assert_eq!((c.stats().hits, c.stats().misses), (17, 0));
}

#[test]
fn a_torn_run_file_serves_the_whole_blocks_before_the_tear_and_misses_after() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let c = DiskCache::open(&dir, 1 << 30, "c").unwrap();
    let data = run(7, 8, BS);
    c.offer_run(1, 0, 0, data.clone());
    drain(&c);
    let path = only_file(&dir);
    let raw = std::fs::read(&path).unwrap();
    std::fs::write(&path, &raw[..4096 + 3 * BS + 1000]).unwrap();
    for b in 0..8u64 {
        let got = c.read_run(1, 0, b, b + 1, BS);
        let at = b as usize * BS;
        if b < 3 {
            assert!(got.as_deref() == Some(&data[at..at + BS]), "block {b}");
        } else {
            assert!(got.is_none(), "block {b} is past the tear");
        }
    }
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.corrupt), (3, 5, 5), "{s:?}");
    assert!(c.read_run(1, 0, 0, 3, 3 * BS).as_deref() == Some(&data[..3 * BS]));
    assert!(!c.has_run(1, 0, 3, 4), "blocks past the tear are forgotten");
}

#[test]
fn a_corrupt_byte_misses_only_its_block() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let c = DiskCache::open(&dir, 1 << 30, "c").unwrap();
    let data = run(9, 6, 5000);
    c.offer_run(2, 1, 10, data.clone());
    drain(&c);
    let path = only_file(&dir);
    let mut raw = std::fs::read(&path).unwrap();
    raw[4096 + 4 * BS + 1234] ^= 0x10;
    std::fs::write(&path, &raw).unwrap();
    assert!(c.read_run(2, 1, 13, 16, 2 * BS + 5000).is_none());
    assert_eq!(c.stats().corrupt, 1);
    assert!(path.exists(), "the file still serves its other blocks");
    for b in [10u64, 11, 12, 13, 15] {
        let at = (b - 10) as usize * BS;
        let want = &data[at..(at + BS).min(data.len())];
        let got = c.read_run(2, 1, b, b + 1, want.len());
        assert!(got.as_deref() == Some(want), "block {b}");
    }
    assert!(!c.has_run(2, 1, 14, 15));
    assert_eq!((c.stats().corrupt, c.stats().entries), (1, 5));
}

/// A hit after the first reads only its blocks (the verified header is kept in memory);
/// a block spoiled on disk after that is still caught by the crc32c that header gave.
#[test]
fn a_block_spoiled_after_its_header_was_kept_is_still_a_miss() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let c = DiskCache::open(&dir, 1 << 30, "c").unwrap();
    let data = run(3, 4, BS);
    c.offer_run(5, 0, 0, data.clone());
    drain(&c);
    assert!(c.read_run(5, 0, 0, 1, BS).as_deref() == Some(&data[..BS]));
    let path = only_file(&dir);
    let mut raw = std::fs::read(&path).unwrap();
    raw[4096 + 2 * BS + 17] ^= 0x01;
    std::fs::write(&path, &raw).unwrap();
    assert!(
        c.read_run(5, 0, 2, 3, BS).is_none(),
        "the spoiled block is not served"
    );
    assert!(c.read_run(5, 0, 3, 4, BS).as_deref() == Some(&data[3 * BS..]));
    let s = c.stats();
    assert_eq!((s.hits, s.corrupt), (2, 1), "{s:?}");
}

#[test]
fn run_files_stay_within_the_bound_and_a_remount_hits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let file = index::on_disk((4096 + 4 * BS) as u64);
    let limit = 2 * file + file / 2;
    let c = DiskCache::open(&dir, limit, "c").unwrap();
    for s in 0..10u64 {
        c.offer_run(s, 0, 0, run(s as u8, 4, BS));
        drain(&c);
        assert!(du(&dir) <= limit, "after run {s}: {} > {limit}", du(&dir));
    }
    let st = c.stats();
    assert_eq!((st.files, st.entries, st.evictions), (2, 8, 8), "{st:?}");
    assert_eq!(st.bytes, du(&dir));
    drop(c);

    let c = DiskCache::open(&dir, limit, "c").unwrap();
    assert_eq!((c.stats().files, c.stats().entries), (2, 8));
    assert!(!c.has_run(7, 0, 0, 1));
    for s in [8u64, 9] {
        assert!(c.has_run(s, 0, 0, 4));
        let got = c.read_run(s, 0, 1, 4, 3 * BS).unwrap();
        assert!(got[..] == run(s as u8, 4, BS)[BS..], "stripe {s}");
    }
    assert_eq!((c.stats().hits, c.stats().corrupt), (6, 0));
}

#[test]
fn one_block_files_of_format_1_are_deleted_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    drop(DiskCache::open(&dir, 1 << 20, "c").unwrap());
    let old = dir.join("blocks/3a/0000abcd-9-0-0.blk");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::write(&old, b"KDDC\x01\x00 an entry of format 1").unwrap();
    let c = DiskCache::open(&dir, 1 << 20, "c").unwrap();
    assert!(!old.exists());
    assert_eq!(c.stats().files, 0);
}
