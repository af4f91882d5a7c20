//! `kdss bench storage --path P --size S`: the engine's 1 MiB append and read bandwidth and
//! its 4 KiB / 64 KiB shard rates, each beside the raw sequential O_DIRECT bandwidth of the
//! same file measured in the same run (a dd-like loop: 1 MiB blocks, one thread, one
//! fdatasync at the end of the writes). Every engine put is acknowledged only once durable
//! (group commit), so the append figures include fdatasync.
//!
//! It also reads 4 KiB at random offsets of 1 MiB shards stored in each record layout
//! ([`ranges`]): the figure per-block checksums exist for.
//!
//! The file at `path` is (re)formatted: point it at scratch space. A file the bench created
//! is removed at the end.

mod ranges;

use crate::device::Device;
use crate::device::aligned::AlignedBuf;
use crate::engine::{Disk, FormatOptions, OpenOptions, ShardKey, format, record_buf_of};
use crate::error::StorageError;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Scratch file or device (wiped).
    pub path: PathBuf,
    /// Size of the file to create.
    pub size: u64,
    /// Concurrent clients issuing puts and gets.
    pub concurrency: usize,
    /// Time spent on each small-shard measurement.
    pub small_duration: Duration,
}

impl BenchOptions {
    /// Defaults: 16 concurrent clients, 3 s per small-shard figure.
    pub fn new(path: PathBuf, size: u64) -> Self {
        BenchOptions {
            path,
            size,
            concurrency: 16,
            small_duration: Duration::from_secs(3),
        }
    }
}

/// One figure.
#[derive(Clone, Debug)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
}

/// The bench result, printable.
#[derive(Clone, Debug, Default)]
pub struct BenchReport {
    pub raw_write_mibs: f64,
    pub raw_read_mibs: f64,
    pub figures: Vec<Figure>,
    pub direct_io: bool,
    pub bytes: u64,
}

impl BenchReport {
    fn find(&self, name: &str) -> f64 {
        self.figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value)
            .unwrap_or(0.0)
    }
    /// Engine 1 MiB put bandwidth as a share of raw sequential writes.
    pub fn write_ratio(&self) -> f64 {
        self.find("put 1 MiB") / self.raw_write_mibs.max(f64::MIN_POSITIVE)
    }
    /// Engine 1 MiB get bandwidth as a share of raw sequential reads.
    pub fn read_ratio(&self) -> f64 {
        self.find("get 1 MiB") / self.raw_read_mibs.max(f64::MIN_POSITIVE)
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "raw sequential O_DIRECT (1 MiB blocks, 1 thread, {} MiB): write {:.0} MiB/s, read {:.0} MiB/s{}",
            self.bytes >> 20,
            self.raw_write_mibs,
            self.raw_read_mibs,
            if self.direct_io {
                ""
            } else {
                "  [O_DIRECT unavailable: buffered]"
            }
        )?;
        for x in &self.figures {
            writeln!(f, "{:<12} {:>10.0} {}", x.name, x.value, x.unit)?;
        }
        writeln!(
            f,
            "1 MiB put = {:.0}% of raw write, 1 MiB get = {:.0}% of raw read (goal >= 90%); puts are durable (group-committed fdatasync)",
            self.write_ratio() * 100.0,
            self.read_ratio() * 100.0
        )
    }
}

fn io<'a>(
    path: &'a std::path::Path,
    op: &'static str,
) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Raw sequential write then read of `bytes` at `offset` in 1 MiB blocks: (write, read) MiB/s.
fn raw(dev: &Device, offset: u64, bytes: u64) -> Result<(f64, f64), StorageError> {
    let mut buf = AlignedBuf::zeroed(1 << 20);
    for (i, b) in buf.as_mut_slice().iter_mut().enumerate() {
        *b = (i * 31 + 7) as u8;
    }
    let blocks = bytes >> 20;
    let t = Instant::now();
    for i in 0..blocks {
        dev.write_at(buf.as_slice(), offset + (i << 20))
            .map_err(io(dev.path(), "raw write"))?;
    }
    dev.sync().map_err(io(dev.path(), "raw sync"))?;
    let w = (blocks as f64) / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..blocks {
        dev.read_at(buf.as_mut_slice(), offset + (i << 20))
            .map_err(io(dev.path(), "raw read"))?;
    }
    let r = (blocks as f64) / t.elapsed().as_secs_f64();
    Ok((w, r))
}

/// The raw-device reference other benches print beside their figures: sequential
/// O_DIRECT write then read of `bytes` (whole MiB) in 1 MiB blocks on a new scratch file at
/// `path`, which is removed afterwards. Returns (write MiB/s, read MiB/s, O_DIRECT used).
pub fn raw_file_bandwidth(
    path: &std::path::Path,
    bytes: u64,
) -> Result<(f64, f64, bool), StorageError> {
    let bytes = (bytes >> 20 << 20).max(1 << 20);
    let res = (|| {
        std::fs::File::create(path)
            .and_then(|f| f.set_len(bytes))
            .map_err(io(path, "create scratch file"))?;
        let dev = Device::open(path, None)?;
        let (w, r) = raw(&dev, 0, bytes)?;
        Ok((w, r, dev.is_direct()))
    })();
    let _ = std::fs::remove_file(path);
    res
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(2654435761).wrapping_add(seed) as u8)
        .collect()
}

/// Runs `threads` workers; worker `t` calls `op(t, i)` for i = 0.. until it returns false.
fn parallel(
    threads: usize,
    op: impl Fn(usize, u64) -> Result<bool, StorageError> + Sync,
) -> Result<(), StorageError> {
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let op = &op;
                s.spawn(move || {
                    let mut i = 0;
                    while op(t, i)? {
                        i += 1;
                    }
                    Ok::<(), StorageError>(())
                })
            })
            .collect();
        hs.into_iter()
            .try_for_each(|h| h.join().expect("bench thread"))
    })
}

fn put_rate(
    disk: &Disk,
    len: usize,
    threads: usize,
    stop: impl Fn(u64, Instant) -> bool + Sync,
    stripe_base: u64,
) -> Result<(u64, f64), StorageError> {
    let src = pattern(len, stripe_base);
    let crc = crc32c::crc32c(&src);
    let n = AtomicU64::new(0);
    let t0 = Instant::now();
    parallel(threads, |t, i| {
        let done = n.load(Ordering::Relaxed);
        if stop(done, t0) {
            return Ok(false);
        }
        let key = ShardKey {
            stripe: stripe_base + i,
            shard: t as u32,
        };
        disk.put(key, record_buf_of(&src), len, crc)?;
        n.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    })?;
    Ok((n.load(Ordering::Relaxed), t0.elapsed().as_secs_f64()))
}

fn get_rate(
    disk: &Disk,
    count: u64,
    threads: usize,
    stop: impl Fn(u64, Instant) -> bool + Sync,
    stripe_base: u64,
) -> Result<(u64, f64), StorageError> {
    let n = AtomicU64::new(0);
    let per = count.div_ceil(threads as u64);
    let t0 = Instant::now();
    parallel(threads, |t, i| {
        if i >= per || stop(n.load(Ordering::Relaxed), t0) {
            return Ok(false);
        }
        let key = ShardKey {
            stripe: stripe_base + i,
            shard: t as u32,
        };
        match disk.read(key, 0, 0) {
            Ok(r) => {
                std::hint::black_box(r.data());
                n.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Err(StorageError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    })?;
    Ok((n.load(Ordering::Relaxed), t0.elapsed().as_secs_f64()))
}

/// Runs the benchmark. Blocking (threads and device I/O): call it outside an async context
/// or through `spawn_blocking`.
pub fn run(opts: &BenchOptions) -> Result<BenchReport, StorageError> {
    let created = !opts.path.exists();
    let res = run_inner(opts);
    if created {
        let _ = std::fs::remove_file(&opts.path);
    }
    res
}

fn run_inner(opts: &BenchOptions) -> Result<BenchReport, StorageError> {
    let cluster = "kdss-bench";
    let seg = ((opts.size / 16) >> 20 << 20).clamp(4 << 20, 64 << 20);
    let fopts = FormatOptions {
        segment_size: Some(seg),
        force: true,
    };
    format(&opts.path, opts.size, cluster, fopts.clone())?;
    let geo = Disk::open(&opts.path, cluster, OpenOptions::default())?.geometry();
    // Use up to 40% of the capacity for the 1 MiB figures, at most 2 GiB.
    let bytes = ((geo.capacity() * 2 / 5).min(2 << 30) >> 20) << 20;
    let threads = opts.concurrency.max(1);
    let mut rep = BenchReport {
        bytes,
        ..Default::default()
    };
    // Raw figures first (as a dd before the run would), over the region the engine writes.
    {
        let dev = Device::open(&opts.path, None)?;
        rep.direct_io = dev.is_direct();
        let (rw, rr) = raw(&dev, geo.data_start, bytes)?;
        rep.raw_write_mibs = rw;
        rep.raw_read_mibs = rr;
    }
    format(&opts.path, opts.size, cluster, fopts)?;
    let disk = Disk::open(&opts.path, cluster, OpenOptions::default())?;

    let mib = 1usize << 20;
    let count = bytes >> 20;
    let per = count.div_ceil(threads as u64);
    let written = AtomicU64::new(0);
    let src = pattern(mib, 1);
    let crc = crc32c::crc32c(&src);
    let t0 = Instant::now();
    parallel(threads, |t, i| {
        if i >= per {
            return Ok(false);
        }
        let key = ShardKey {
            stripe: 1_000_000 + i,
            shard: t as u32,
        };
        disk.put(key, record_buf_of(&src), mib, crc)?;
        written.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    })?;
    let w = written.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64();
    rep.figures.push(Figure {
        name: "put 1 MiB".into(),
        value: w,
        unit: "MiB/s",
    });
    let (n, secs) = get_rate(&disk, count, threads, |_, _| false, 1_000_000)?;
    rep.figures.push(Figure {
        name: "get 1 MiB".into(),
        value: n as f64 / secs,
        unit: "MiB/s",
    });
    // The 1 MiB shards above have layout 2; write some with layout 1 beside them.
    disk.close()?;
    drop(disk);
    let first_format = OpenOptions {
        layout: kdss_format::Layout::V1,
        ..Default::default()
    };
    let disk = Disk::open(&opts.path, cluster, first_format)?;
    let v1_count = (count / 8).clamp(1, 256);
    let v1_keys: Vec<ShardKey> = (0..v1_count)
        .map(|i| ShardKey {
            stripe: 3_000_000 + i,
            shard: 0,
        })
        .collect();
    for k in &v1_keys {
        disk.put_bytes(*k, &src)?;
    }
    let v2_keys: Vec<ShardKey> = (0..count)
        .map(|i| ShardKey {
            stripe: 1_000_000 + i % per,
            shard: (i / per) as u32,
        })
        .collect();
    let dur = opts.small_duration;
    for (keys, label) in [(&v2_keys, "layout 2"), (&v1_keys, "layout 1")] {
        let figs = ranges::random_4k(&disk, keys, mib as u64, threads, dur, label)?;
        rep.figures.extend(figs);
    }
    disk.close()?;
    drop(disk);
    let disk = Disk::open(&opts.path, cluster, OpenOptions::default())?;

    for (len, base, name) in [
        (4096usize, 10_000_000u64, "4 KiB"),
        (65536, 20_000_000, "64 KiB"),
    ] {
        let dur = opts.small_duration;
        let limit = (geo.capacity() / 6) / kdss_format::record_footprint(len as u64);
        let (n, secs) = put_rate(
            &disk,
            len,
            threads * 2,
            |done, t0| done >= limit || t0.elapsed() >= dur,
            base,
        )?;
        rep.figures.push(Figure {
            name: format!("put {name}"),
            value: n as f64 / secs,
            unit: "ops/s",
        });
        let (n, secs) = get_rate(&disk, n, threads * 2, |_, t0| t0.elapsed() >= dur, base)?;
        rep.figures.push(Figure {
            name: format!("get {name}"),
            value: n as f64 / secs,
            unit: "ops/s",
        });
    }
    drop(disk);
    Ok(rep)
}
