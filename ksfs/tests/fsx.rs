//! fsx-style random operations (write, truncate, read, mmap read/write, holes, rename,
//! fsync, close/reopen) on a file in a ksfs mount and on a reference file on local disk,
//! comparing contents after every read and at the end. Seeded and reproducible:
//! FSX_SEED=<n> FSX_OPS=<n> cargo test -p ksfs --test fsx.

mod common;

use common::KsfsMount;
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Largest file the run produces (holes make it sparse).
const MAX_LEN: u64 = 4 << 20;

struct Pair {
    dirs: [PathBuf; 2],
    name: &'static str,
    files: [File; 2],
    log: Vec<String>,
}

fn open(p: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(p)
        .unwrap()
}

impl Pair {
    fn path(&self, i: usize) -> PathBuf {
        self.dirs[i].join(self.name)
    }

    fn fail(&self, what: String) -> ! {
        let tail = &self.log[self.log.len().saturating_sub(25)..];
        panic!("{what}\nlast operations:\n{}", tail.join("\n"));
    }

    fn len(&self) -> u64 {
        let a = self.files[0].metadata().unwrap().len();
        let b = self.files[1].metadata().unwrap().len();
        if a != b {
            self.fail(format!("size differs: mount {a}, reference {b}"));
        }
        a
    }

    fn compare(&self, off: u64, len: usize, how: &str) {
        let mut a = vec![0u8; len];
        let mut b = vec![0u8; len];
        let na = read_full(&self.files[0], &mut a, off);
        let nb = read_full(&self.files[1], &mut b, off);
        if na != nb || a[..na] != b[..nb] {
            let first = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(na.min(nb));
            self.fail(format!(
                "{how} read at {off} len {len}: mount {na} bytes, reference {nb}; first \
                 difference at {}",
                off + first as u64
            ));
        }
    }
}

fn read_full(f: &File, buf: &mut [u8], off: u64) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off + n as u64).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

fn mmap_read(f: &File, off: u64, len: usize) -> Vec<u8> {
    let page = 4096u64;
    let start = off / page * page;
    let map_len = (off + len as u64 - start) as usize;
    // SAFETY: a fresh read-only shared mapping within the file's size, unmapped below.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            start as i64,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap read");
        let s = std::slice::from_raw_parts(p.cast::<u8>().add((off - start) as usize), len);
        let v = s.to_vec();
        libc::munmap(p, map_len);
        v
    }
}

fn mmap_write(f: &File, off: u64, data: &[u8]) {
    let page = 4096u64;
    let start = off / page * page;
    let map_len = (off + data.len() as u64 - start) as usize;
    // SAFETY: a fresh shared writable mapping within the file's size, synced and unmapped.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            start as i64,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap write");
        let s =
            std::slice::from_raw_parts_mut(p.cast::<u8>().add((off - start) as usize), data.len());
        s.copy_from_slice(data);
        assert_eq!(libc::msync(p, map_len, libc::MS_SYNC), 0);
        libc::munmap(p, map_len);
    }
}

fn run(mount_dir: &Path, ref_dir: &Path, seed: u64, ops: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let dirs = [mount_dir.to_path_buf(), ref_dir.to_path_buf()];
    let files = [open(&dirs[0].join("a")), open(&dirs[1].join("a"))];
    let mut p = Pair {
        dirs,
        name: "a",
        files,
        log: Vec::new(),
    };
    for step in 0..ops {
        let len = p.len();
        let op = rng.random_range(0..100);
        match op {
            0..=34 => {
                let off = rng.random_range(0..MAX_LEN - (64 << 10));
                let n = rng.random_range(1..64 << 10);
                let data: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                p.log.push(format!("{step}: write {off} +{n}"));
                for f in &p.files {
                    f.write_all_at(&data, off).unwrap();
                }
            }
            35..=59 => {
                let off = rng.random_range(0..len.max(1));
                let n = rng.random_range(1..128 << 10);
                p.log.push(format!("{step}: read {off} +{n}"));
                p.compare(off, n, "pread");
            }
            60..=67 => {
                let to = if rng.random_bool(0.5) {
                    rng.random_range(0..len.max(1))
                } else {
                    rng.random_range(0..MAX_LEN)
                };
                p.log.push(format!("{step}: truncate {to}"));
                for f in &p.files {
                    f.set_len(to).unwrap();
                }
            }
            68..=75 if len > 0 => {
                let off = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - off).min(64 << 10)) as usize;
                p.log.push(format!("{step}: mmap read {off} +{n}"));
                let a = mmap_read(&p.files[0], off, n);
                let b = mmap_read(&p.files[1], off, n);
                if a != b {
                    p.fail(format!("mmap read at {off} +{n} differs"));
                }
            }
            76..=82 if len > 0 => {
                let off = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - off).min(32 << 10)) as usize;
                let data: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                p.log.push(format!("{step}: mmap write {off} +{n}"));
                for f in &p.files {
                    mmap_write(f, off, &data);
                }
            }
            83..=87 if len + 32 < MAX_LEN => {
                // A hole: a small write far past the end.
                let off = rng.random_range(len..MAX_LEN - 16);
                p.log.push(format!("{step}: hole write at {off}"));
                for f in &p.files {
                    f.write_all_at(b"holeyhole", off).unwrap();
                }
            }
            88..=91 => {
                let next = if p.name == "a" { "b" } else { "a" };
                p.log.push(format!("{step}: rename {} -> {next}", p.name));
                for i in 0..2 {
                    std::fs::rename(p.path(i), p.dirs[i].join(next)).unwrap();
                }
                p.name = next;
            }
            92..=95 => {
                p.log.push(format!("{step}: fsync"));
                for f in &p.files {
                    f.sync_all().unwrap();
                }
            }
            _ => {
                p.log.push(format!("{step}: close + reopen"));
                p.files = [open(&p.path(0)), open(&p.path(1))];
            }
        }
    }
    let len = p.len();
    p.compare(0, len as usize, "final");
    // And once more through a fresh open (what close() made durable).
    p.files = [open(&p.path(0)), open(&p.path(1))];
    p.compare(0, len as usize, "after reopen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsx_random_operations_match_a_local_file() -> anyhow::Result<()> {
    require_fuse!();
    let seed: u64 = std::env::var("FSX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261130);
    let ops: usize = std::env::var("FSX_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    eprintln!("fsx: seed {seed}, {ops} operations (FSX_SEED / FSX_OPS to change)");
    let cluster = common::cluster().await?;
    let m = KsfsMount::start(&cluster, "fsx", "").await?;
    let reference = cluster.scratch("fsx-reference");
    let dir = m.join("fsx");
    std::fs::create_dir(&dir)?;
    let started = std::time::Instant::now();
    tokio::task::block_in_place(|| run(&dir, &reference, seed, ops));
    eprintln!("fsx: {ops} operations in {:?}", started.elapsed());
    Ok(())
}
