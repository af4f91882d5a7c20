//! `[mount] write_buffer_total`: one budget of buffered write bytes for all open files of a
//! mount. Many parallel writers with a small budget all finish byte-exact while the mount's
//! own gauge of buffered bytes, sampled throughout, stays within the budget plus one stripe
//! (the slack a stripe larger than half the budget may take, see the client's
//! `write_budget`); and a single writer whose budget is smaller than one stripe finishes.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// A loopback port free now, for the mount's metrics listener.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The value of the unlabelled metric `name` in the mount's `/metrics`.
fn scrape(addr: SocketAddr, name: &str) -> anyhow::Result<Option<u64>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: ksfs\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse::<f64>().ok().map(|v| v as u64))?
    }))
}

/// Samples `kdss_ksfs_write_buffer_bytes` until stopped; keeps the largest value and the
/// number of samples taken.
struct Sampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    samples: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Sampler {
    fn start(addr: SocketAddr) -> Sampler {
        let (stop, max, samples) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, m, n) = (stop.clone(), max.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Acquire) {
                let v = scrape(addr, "kdss_ksfs_write_buffer_bytes")?
                    .ok_or_else(|| anyhow::anyhow!("no kdss_ksfs_write_buffer_bytes"))?;
                m.fetch_max(v, Ordering::AcqRel);
                n.fetch_add(1, Ordering::AcqRel);
                #[allow(clippy::disallowed_methods)] // a plain thread, not async code
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(())
        });
        Sampler {
            stop,
            max,
            samples,
            thread: Some(thread),
        }
    }

    /// Stops sampling; returns (largest value seen, samples taken).
    fn finish(mut self) -> anyhow::Result<(u64, u64)> {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join().expect("sampler thread")?;
        }
        Ok((
            self.max.load(Ordering::Acquire),
            self.samples.load(Ordering::Acquire),
        ))
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Deterministic content of file `i` (differs per file and per offset).
fn content(i: usize, len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (i as u64).wrapping_mul(0xff51_afd7_ed55_8ccd);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes `data` to `path` in `block`-byte writes, fsyncs, closes.
fn write_file(path: &std::path::Path, data: &[u8], block: usize) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    for b in data.chunks(block) {
        f.write_all(b)?;
    }
    f.sync_all()
}

/// Mounts with `budget`, runs `writers` parallel writers of `len` bytes each, checks every
/// file byte-exact and returns the largest buffered-bytes sample.
async fn run_writers(
    name: &str,
    budget: &str,
    chunk: u64,
    writers: usize,
    len: usize,
) -> anyhow::Result<u64> {
    let cluster = cluster().await?;
    let port = free_port()?;
    let extra = format!(
        "write_buffer_total = {budget:?}\nmetrics_addr = \"127.0.0.1:{port}\"\n\
         [client]\nchunk_size = {chunk}\nwrite_window = {}\n",
        4 * chunk
    );
    let mount = KsfsMount::start(&cluster, name, &extra).await?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let limit = scrape(addr, "kdss_ksfs_write_buffer_limit_bytes")?;
    let sampler = Sampler::start(addr);
    let dir = mount.join("w");
    std::fs::create_dir(&dir)?;
    let handles: Vec<_> = (0..writers)
        .map(|i| {
            let path = dir.join(format!("f{i}"));
            std::thread::spawn(move || write_file(&path, &content(i, len), 128 << 10))
        })
        .collect();
    for h in handles {
        h.join().expect("writer thread")?;
    }
    let (max, samples) = sampler.finish()?;
    for i in 0..writers {
        let got = std::fs::read(dir.join(format!("f{i}")))?;
        assert!(
            got == content(i, len),
            "file f{i}: {} bytes read back differ from the {len} written",
            got.len()
        );
    }
    let after = scrape(addr, "kdss_ksfs_write_buffer_bytes")?;
    assert_eq!(after, Some(0), "every buffer is given back after close");
    println!(
        "{name}: budget {budget} ({limit:?}), {writers} writers x {len} bytes, \
         largest sample {max} bytes of {samples} samples"
    );
    assert!(samples > 0, "the sampler took no sample");
    Ok(max)
}

#[tokio::test(flavor = "multi_thread")]
async fn many_parallel_writers_stay_within_a_small_budget() -> anyhow::Result<()> {
    require_fuse!();
    // 12 writers with a 4 MiB window each could buffer 48 MiB; the budget is 8 MiB.
    let chunk = MIB;
    let max = run_writers("many", "8MiB", chunk, 12, 6 * MIB as usize + 12345).await?;
    assert!(
        max > 0,
        "the gauge never showed buffered bytes while writing"
    );
    assert!(
        max <= 8 * MIB + chunk,
        "buffered bytes reached {max}, past the 8 MiB budget plus one {chunk}-byte stripe"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_writer_with_a_budget_below_one_stripe_completes() -> anyhow::Result<()> {
    require_fuse!();
    // A 1 MiB budget and 4 MiB stripes: every stripe takes the whole in-flight half.
    let chunk = 4 * MIB;
    let max = run_writers("single", "1MiB", chunk, 1, 10 * MIB as usize + 777).await?;
    assert!(
        max <= MIB + chunk,
        "buffered bytes reached {max}, past the 1 MiB budget plus one stripe"
    );
    Ok(())
}
