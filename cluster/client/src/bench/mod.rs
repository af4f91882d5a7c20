//! `kdss bench client`: the data path measured end to end against a running cluster, beside
//! the reference figures of the same machine taken in the same run (EC encode alone, memcpy,
//! file write + fsync), so a regression is visible as a ratio, not a guess.
//!
//! Durability: the write figure includes `flush`, which returns only when every shard of
//! every stripe is durable on its disk and the extents are committed (invariant 1).
//! Degraded reads use simulated loss: the reader never asks for the lost shard indices
//! ([`crate::FileReader::with_simulated_loss`]) and reconstructs from parity instead.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use kdss_proto::master as pb;

use crate::{Client, ClientConfig, ClientError};

pub mod small_files;

/// What to measure and where.
#[derive(Debug, Clone)]
pub struct BenchOpts {
    pub masters: Vec<String>,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    /// Bytes written and read sequentially (default 1 GiB).
    pub size_bytes: u64,
    /// Chunk (stripe data) size; None = the client default.
    pub chunk_size: Option<usize>,
    /// Random 4 KiB reads per pass (cold, then warm).
    pub random_reads: usize,
    /// Random reads in flight.
    pub concurrency: usize,
    /// Directory for the file write + fsync reference (default: the temp dir).
    pub scratch_dir: Option<std::path::PathBuf>,
}

impl Default for BenchOpts {
    fn default() -> Self {
        BenchOpts {
            masters: vec!["127.0.0.1:6700".into()],
            access_key: String::new(),
            secret_key: String::new(),
            bucket: "kdss".into(),
            size_bytes: 1 << 30,
            chunk_size: None,
            random_reads: 2000,
            concurrency: 16,
            scratch_dir: None,
        }
    }
}

/// The figures of one run (bytes per second unless named otherwise).
#[derive(Debug, Clone, Default)]
pub struct BenchReport {
    pub size_bytes: u64,
    pub chunk_size: usize,
    pub ec: (u32, u32),
    pub ec_encode_bps: f64,
    pub memcpy_bps: f64,
    pub file_write_fsync_bps: f64,
    pub write_bps: f64,
    pub read_cold_bps: f64,
    pub read_degraded_1_bps: f64,
    pub read_degraded_2_bps: f64,
    pub random_4k_cold_iops: f64,
    pub random_4k_warm_iops: f64,
}

fn mib(bps: f64) -> String {
    format!("{:8.1} MiB/s", bps / (1 << 20) as f64)
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (k, m) = self.ec;
        writeln!(
            f,
            "kdss client bench: {} MiB, EC {k}+{m}, chunk {} KiB",
            self.size_bytes >> 20,
            self.chunk_size >> 10
        )?;
        writeln!(
            f,
            "  reference  EC encode (1 thread)     {}",
            mib(self.ec_encode_bps)
        )?;
        writeln!(
            f,
            "  reference  memcpy                   {}",
            mib(self.memcpy_bps)
        )?;
        writeln!(
            f,
            "  reference  file write + fsync       {}",
            mib(self.file_write_fsync_bps)
        )?;
        writeln!(
            f,
            "  sequential write (durable+commit)   {}",
            mib(self.write_bps)
        )?;
        writeln!(
            f,
            "  sequential read, cold cache         {}",
            mib(self.read_cold_bps)
        )?;
        writeln!(
            f,
            "  degraded read, 1 shard lost         {}",
            mib(self.read_degraded_1_bps)
        )?;
        writeln!(
            f,
            "  degraded read, 2 shards lost        {}",
            mib(self.read_degraded_2_bps)
        )?;
        writeln!(
            f,
            "  random 4 KiB reads, cold cache      {:8.0} /s",
            self.random_4k_cold_iops
        )?;
        write!(
            f,
            "  random 4 KiB reads, warm cache      {:8.0} /s",
            self.random_4k_warm_iops
        )
    }
}

/// Deterministic, incompressible-looking bytes.
fn pattern(len: usize, seed: u64) -> Bytes {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

fn rate(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64().max(1e-9)
}

/// EC encode throughput alone (data bytes in per second), one thread, stripes of `chunk`.
pub fn measure_encode(k: u32, m: u32, chunk: usize, total: u64) -> Result<f64, ClientError> {
    let codec = crate::ec::Codecs::default().get(k, m)?;
    let data = pattern(chunk, 7);
    let sl = crate::layout::shard_len_for(chunk as u64, k) as usize;
    let n = (total / chunk as u64).max(1);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(crate::ec::encode(&codec, &data, sl)?);
    }
    Ok(rate(n * chunk as u64, t.elapsed()))
}

fn measure_memcpy(total: usize) -> f64 {
    let src = pattern(64 << 20, 3);
    let mut dst = vec![0u8; src.len()];
    let n = (total / src.len()).max(1);
    let t = Instant::now();
    for _ in 0..n {
        dst.copy_from_slice(&src);
        std::hint::black_box(&dst);
    }
    rate((n * src.len()) as u64, t.elapsed())
}

fn measure_file_write(dir: &std::path::Path, total: usize) -> std::io::Result<f64> {
    use std::io::Write;
    let path = dir.join(format!("kdss-bench-{}.tmp", std::process::id()));
    let buf = pattern(4 << 20, 5);
    let t = Instant::now();
    let r = (|| {
        let mut f = std::fs::File::create(&path)?;
        for _ in 0..(total / buf.len()).max(1) {
            f.write_all(&buf)?;
        }
        f.sync_all()
    })();
    let d = t.elapsed();
    let _ = std::fs::remove_file(&path);
    r?;
    Ok(rate(total as u64, d))
}

/// Runs the whole bench against a running cluster; the file it writes is removed at the end.
pub async fn run(opts: BenchOpts) -> Result<BenchReport, ClientError> {
    let mut cfg = ClientConfig {
        masters: opts.masters.clone(),
        access_key: opts.access_key.clone(),
        secret_key: opts.secret_key.clone(),
        ..ClientConfig::default()
    };
    if let Some(c) = opts.chunk_size {
        cfg.chunk_size = c;
    }
    let chunk = cfg.chunk_size;
    let client = Client::connect(cfg).await?;
    let b = &opts.bucket;
    let (k, m) = crate::stripe_write::bucket_policy(&client.shared, client.master(), b).await?;
    let mut rep = BenchReport {
        size_bytes: opts.size_bytes,
        chunk_size: chunk,
        ec: (k, m),
        ..Default::default()
    };
    let ref_bytes = opts.size_bytes.min(512 << 20);
    rep.ec_encode_bps = tokio::task::spawn_blocking(move || measure_encode(k, m, chunk, ref_bytes))
        .await
        .map_err(|e| ClientError::Internal(e.to_string()))??;
    rep.memcpy_bps = tokio::task::spawn_blocking(move || measure_memcpy(ref_bytes as usize))
        .await
        .map_err(|e| ClientError::Internal(e.to_string()))?;
    let dir = opts.scratch_dir.clone().unwrap_or_else(std::env::temp_dir);
    rep.file_write_fsync_bps =
        tokio::task::spawn_blocking(move || measure_file_write(&dir, ref_bytes as usize))
            .await
            .map_err(|e| ClientError::Internal(e.to_string()))?
            .map_err(|e| ClientError::Internal(format!("file write reference: {e}")))?;

    let root = bucket_root(&client, b).await?;
    let name = format!("kdss-bench-{}", kdss_common::time::now_ms());
    let ino = create_file(&client, b, root, &name).await?;
    let result = measure_file(&client, b, ino, &opts, &mut rep).await;
    let _ = client
        .master()
        .unlink(pb::UnlinkRequest {
            bucket: b.clone(),
            parent: root,
            name: name.clone(),
        })
        .await;
    result.map(|_| rep)
}

/// The root directory inode of a bucket.
async fn bucket_root(client: &Client, bucket: &str) -> Result<u64, ClientError> {
    let req = pb::BucketRequest {
        name: bucket.to_string(),
    };
    client
        .master()
        .get_bucket(req)
        .await?
        .bucket
        .map(|b| b.root_ino)
        .ok_or_else(|| ClientError::Internal("no bucket info".into()))
}

/// Creates a new regular file (exclusive) and returns its inode.
async fn create_file(
    client: &Client,
    bucket: &str,
    parent: u64,
    name: &str,
) -> Result<u64, ClientError> {
    let req = pb::CreateRequest {
        bucket: bucket.to_string(),
        parent,
        name: name.to_string(),
        kind: pb::FileKind::Regular as i32,
        mode: 0o644,
        exclusive: true,
        ..Default::default()
    };
    client
        .master()
        .create(req)
        .await?
        .attr
        .map(|a| a.ino)
        .ok_or_else(|| ClientError::Internal("no attributes".into()))
}

async fn measure_file(
    client: &Client,
    bucket: &str,
    ino: u64,
    opts: &BenchOpts,
    rep: &mut BenchReport,
) -> Result<(), ClientError> {
    let size = opts.size_bytes;
    let src = pattern(16 << 20, 11);
    let piece = 1usize << 20;
    let expected = |off: u64, len: usize| -> Vec<u8> {
        (0..len)
            .map(|i| src[((off + i as u64) % src.len() as u64) as usize])
            .collect()
    };
    // Sequential write, 1 MiB writes, durable + committed at the end.
    let t = Instant::now();
    let mut w = client.file_writer(bucket, ino);
    let mut off = 0u64;
    while off < size {
        let n = piece.min((size - off) as usize);
        let s = (off % src.len() as u64) as usize;
        if s + n <= src.len() {
            w.write_at(off, &src[s..s + n]).await?;
        } else {
            w.write_at(off, &expected(off, n)).await?;
        }
        off += n as u64;
    }
    w.flush().await?;
    rep.write_bps = rate(size, t.elapsed());

    let reader = client.open_reader(bucket, ino).await?;
    for (lost, slot) in [(vec![], 0), (vec![0u32], 1), (vec![0u32, 1], 2)] {
        client.clear_cache();
        let r = reader.with_simulated_loss(&lost);
        let t = Instant::now();
        let mut pos = 0u64;
        let mut st = Box::pin(r.stream(0, size));
        while let Some(b) = st.next().await {
            let b = b?;
            if pos == 0 && b[..] != expected(0, b.len())[..] {
                return Err(ClientError::Internal(format!(
                    "bench read back wrong bytes (lost {lost:?})"
                )));
            }
            pos += b.len() as u64;
        }
        if pos != size {
            return Err(ClientError::Internal(format!(
                "bench read {pos} of {size} bytes"
            )));
        }
        let bps = rate(size, t.elapsed());
        match slot {
            0 => rep.read_cold_bps = bps,
            1 => rep.read_degraded_1_bps = bps,
            _ => rep.read_degraded_2_bps = bps,
        }
    }

    // Random 4 KiB reads: the same offsets cold, then warm.
    let blocks = (size / 4096).max(1);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let offs: Vec<u64> = (0..opts.random_reads)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % blocks) * 4096
        })
        .collect();
    client.clear_cache();
    for slot in 0..2 {
        let t = Instant::now();
        let reads = futures::stream::iter(offs.iter().copied())
            .map(|o| {
                let r = reader.clone();
                async move { r.read_at(o, 4096).await }
            })
            .buffer_unordered(opts.concurrency.max(1));
        let results: Vec<_> = reads.collect().await;
        for r in results {
            r?;
        }
        let iops = offs.len() as f64 / t.elapsed().as_secs_f64().max(1e-9);
        if slot == 0 {
            rep.random_4k_cold_iops = iops;
        } else {
            rep.random_4k_warm_iops = iops;
        }
    }
    Ok(())
}
