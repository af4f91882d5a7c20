//! Recovery levels on a real device file: L0 (clean), L1 (corrupt superblock copy), L2
//! (deleted or stale checkpoint, torn tail record, SIGKILL during appends). Each checks
//! that every acknowledged shard reads back byte-exact and nothing corrupt is returned.

mod common;

use common::*;
use kdss_format::SuperBlock;
use kdss_storage::StorageError;
use kdss_storage::engine::{Disk, IndexSource, OpenOptions, ShardKey};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fill(d: &Disk, stripes: std::ops::Range<u64>) -> Vec<ShardKey> {
    let mut acked = Vec::new();
    for s in stripes {
        let k = key(s, (s % 7) as u32);
        d.put_bytes(k, &content(k, len_of(k))).unwrap();
        acked.push(k);
    }
    acked
}

fn check_all(d: &Disk, acked: &[ShardKey]) {
    for k in acked {
        let r = d
            .read(*k, 0, 0)
            .unwrap_or_else(|e| panic!("acked shard {k:?} lost: {e}"));
        assert_eq!(
            r.data(),
            &content(*k, len_of(*k))[..],
            "shard {k:?} differs"
        );
    }
}

fn open(p: &Path) -> Disk {
    Disk::open(p, CLUSTER, OpenOptions::default()).unwrap()
}

fn superblocks(p: &Path) -> [Result<SuperBlock, kdss_format::FormatError>; 2] {
    let b = peek(p, 0, 8192);
    [
        SuperBlock::decode(&b[..4096]),
        SuperBlock::decode(&b[4096..]),
    ]
}

#[test]
fn l1_corrupt_newest_superblock_falls_back_to_the_other_copy() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 32 << 20, 1 << 20);
    let d = open(&p);
    let acked = fill(&d, 0..40);
    d.close().unwrap();
    drop(d);
    let [a, b] = superblocks(&p);
    let newest = if a.as_ref().unwrap().generation > b.as_ref().unwrap().generation {
        0
    } else {
        1
    };
    poke(&p, newest * 4096 + 100, &[0xff; 16]);
    let d = open(&p);
    assert!(d.recovery().superblock_fallback, "{:?}", d.recovery());
    check_all(&d, &acked);
    d.close().unwrap();
    drop(d);
    // Both copies were rewritten: the next open needs no fallback and is L0.
    let d = open(&p);
    assert!(!d.recovery().superblock_fallback);
    assert_eq!(d.recovery().index, IndexSource::Checkpoint);
    check_all(&d, &acked);
}

#[test]
fn l2_deleted_checkpoint_rebuilds_by_scan() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 32 << 20, 1 << 20);
    let d = open(&p);
    let acked = fill(&d, 0..60);
    let geo = d.geometry();
    d.close().unwrap();
    drop(d);
    poke(
        &p,
        geo.checkpoint_offset,
        &vec![0u8; geo.checkpoint_capacity as usize],
    );
    let d = open(&p);
    match &d.recovery().index {
        IndexSource::Scan {
            reason, records, ..
        } => {
            assert!(reason.contains("checksum"), "{reason}");
            assert_eq!(*records, 60);
        }
        other => panic!("expected a scan, got {other:?}"),
    }
    check_all(&d, &acked);
}

#[test]
fn l2_stale_checkpoint_is_detected_and_newer_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 32 << 20, 1 << 20);
    let d = open(&p);
    let mut acked = fill(&d, 0..30);
    let geo = d.geometry();
    d.close().unwrap();
    drop(d);
    let saved = peek(&p, 0, geo.data_start as usize);
    let d = open(&p);
    acked.extend(fill(&d, 30..80));
    drop(d); // crash
    // Put back the old, clean-flagged superblocks and checkpoint: stale.
    poke(&p, 0, &saved);
    let d = open(&p);
    match &d.recovery().index {
        IndexSource::Scan { reason, .. } => assert!(reason.contains("stale"), "{reason}"),
        other => panic!("stale checkpoint was trusted: {other:?}"),
    }
    check_all(&d, &acked);
}

#[test]
fn l2_torn_tail_record_is_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(dir.path(), 32 << 20, 1 << 20);
    let d = open(&p);
    let acked = fill(&d, 0..20);
    let torn = key(999, 1);
    let placed = d.put_bytes(torn, &content(torn, 50_000)).unwrap();
    drop(d); // crash, then tear the last record: its second half never reached the device
    poke(&p, placed.offset + 28_672, &vec![0u8; 24_576]);
    let d = open(&p);
    match &d.recovery().index {
        IndexSource::Scan { skipped, .. } => assert_eq!(*skipped, 1),
        other => panic!("expected a scan, got {other:?}"),
    }
    assert!(matches!(
        d.read(torn, 0, 0),
        Err(StorageError::NotFound { .. })
    ));
    check_all(&d, &acked);
    // Appends continue after recovery and survive another crash.
    let more = fill(&d, 20..30);
    drop(d);
    let d = open(&p);
    check_all(&d, &acked);
    check_all(&d, &more);
}

/// Child side of `kill_during_appends`: appends forever from 8 threads, printing one
/// `ACK stripe shard` line per durable put. Does nothing unless started by the parent.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var("KDSS_CRASH_CHILD") else {
        return;
    };
    let base: u64 = std::env::var("KDSS_CRASH_BASE").unwrap().parse().unwrap();
    let d = Disk::open(Path::new(&path), CLUSTER, OpenOptions::default()).unwrap();
    std::thread::scope(|s| {
        for t in 0..8u32 {
            let d = &d;
            s.spawn(move || {
                for i in 0.. {
                    let k = key(base + i, t);
                    match d.put_bytes(k, &content(k, len_of(k))) {
                        Ok(_) => {
                            use std::io::Write;
                            let mut out = std::io::stdout().lock();
                            writeln!(out, "ACK {} {}", k.stripe, k.shard).unwrap();
                            out.flush().unwrap();
                        }
                        Err(StorageError::DiskFull { .. }) => return,
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
}

#[test]
fn kill_during_appends_loses_no_acknowledged_shard() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let p = fresh(dir.path(), 256 << 20, 4 << 20);
    let mut acked: Vec<ShardKey> = Vec::new();
    for round in 0..3u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("KDSS_CRASH_CHILD", &p)
            .env("KDSS_CRASH_BASE", (round * 1_000_000).to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        struct Kill(std::process::Child);
        impl Drop for Kill {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let stdout = child.stdout.take().unwrap();
        let mut child = Kill(child);
        let mut lines = std::io::BufReader::new(stdout).lines();
        let t0 = Instant::now();
        let mut n = 0;
        // Kill it mid-stream: after a few hundred acks (or 20 s at most).
        while n < 200 + round as usize * 150 && t0.elapsed() < Duration::from_secs(20) {
            let Some(Ok(l)) = lines.next() else { break };
            if let Some(rest) = l.strip_prefix("ACK ") {
                let mut it = rest.split(' ');
                let stripe = it.next().unwrap().parse().unwrap();
                let shard = it.next().unwrap().parse().unwrap();
                acked.push(key(stripe, shard));
                n += 1;
            }
        }
        // SIGKILL, then collect the acks printed before it died.
        unsafe { libc::kill(child.0.id() as i32, libc::SIGKILL) };
        for l in lines.map_while(Result::ok) {
            if let Some(rest) = l.strip_prefix("ACK ") {
                let mut it = rest.split(' ');
                acked.push(key(
                    it.next().unwrap().parse().unwrap(),
                    it.next().unwrap().parse().unwrap(),
                ));
            }
        }
        let _ = child.0.wait();
        assert!(n > 0, "child acknowledged nothing");
        let d = open(&p);
        assert!(matches!(d.recovery().index, IndexSource::Scan { .. }));
        check_all(&d, &acked);
        // Nothing wrong is ever returned for any key the child may have tried.
        for t in 0..8u32 {
            for i in 0..(n as u64 + 50) {
                let k = key(round * 1_000_000 + i, t);
                if let Ok(r) = d.read(k, 0, 0) {
                    assert_eq!(r.data(), &content(k, len_of(k))[..]);
                }
            }
        }
        drop(d);
    }
    println!(
        "{} acknowledged shards verified after 3 SIGKILLs",
        acked.len()
    );
}
