//! The disk tier on a real directory: the size bound, the index rebuilt at open, temp files
//! a crash left, and entries that must not be served.

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
            on_disk(m.len())
        };
    }
    n
}

#[test]
fn the_directory_stays_within_the_bound_and_a_reopen_finds_the_newest_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let entry = on_disk((BS + 64) as u64);
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
    let path = c.core.path((c.core.tag, (9, 0, 0)));
    let mut raw = std::fs::read(&path).unwrap();
    raw[100] ^= 1;
    std::fs::write(&path, &raw).unwrap();
    assert!(c.has_run(9, 0, 0, 1));
    assert_eq!(c.read_run(9, 0, 0, 1, BS), None);
    assert!(!path.exists(), "the corrupt entry is deleted");
    assert!(!c.has_run(9, 0, 0, 1), "and forgotten");
    assert_eq!(c.stats().corrupt, 1);
    // A torn entry (cut short).
    let path = c.core.path((c.core.tag, (9, 0, 1)));
    let raw = std::fs::read(&path).unwrap();
    std::fs::write(&path, &raw[..raw.len() / 2]).unwrap();
    assert_eq!(c.read_run(9, 0, 1, 2, BS), None);
    assert_eq!(c.stats().corrupt, 2);
    drop(c);

    // Another cluster's entry under this cluster's name (a tag collision): refused.
    let other = DiskCache::open(&dir, 1 << 20, "two@2").unwrap();
    other.offer_run(9, 0, 5, Bytes::from(block(5)));
    drain(&other);
    let theirs = other.core.path((other.core.tag, (9, 0, 5)));
    drop(other);
    let c = DiskCache::open(&dir, 1 << 20, "one@1").unwrap();
    let ours = c.core.path((c.core.tag, (9, 0, 5)));
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
