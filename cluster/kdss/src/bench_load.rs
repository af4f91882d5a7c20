//! The foreground workload the cluster benches share: objects written and read whole
//! through the client library, and a write-then-read loop that runs while a background
//! job (repair, balance) works, so its throughput can be set beside the healthy figure.

use bytes::Bytes;
use futures::StreamExt;
use kdss_client::Client;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Key prefix of everything the benches write.
pub const PREFIX: &str = "kdss-bench/";

pub fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64().max(1e-9)
}

/// Writes `len` bytes of a pattern as object `key`.
pub async fn put(c: &Client, bucket: &str, key: &str, len: u64, seed: u8) -> anyhow::Result<()> {
    let piece: Bytes = (0..1usize << 20)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into();
    let mut w = c.stream_writer(bucket);
    let mut left = len;
    while left > 0 {
        let n = left.min(piece.len() as u64) as usize;
        w.write(piece.slice(..n)).await?;
        left -= n as u64;
    }
    let done = w.finish().await?;
    c.put_object(done.put_request(bucket, key)).await?;
    Ok(())
}

/// Reads object `key` whole; returns its length.
pub async fn get(c: &Client, bucket: &str, key: &str) -> anyhow::Result<u64> {
    let (info, r) = c.open_object(bucket, key).await?;
    let mut n = 0u64;
    let mut s = Box::pin(r.stream(0, info.size));
    while let Some(b) = s.next().await {
        n += b?.len() as u64;
    }
    Ok(n)
}

/// One foreground round: write `len` bytes, then read them; MiB/s of each.
pub async fn round(c: &Client, bucket: &str, key: &str, len: u64) -> anyhow::Result<(f64, f64)> {
    let t = Instant::now();
    put(c, bucket, key, len, 7).await?;
    let w = mib_s(len, t.elapsed());
    c.clear_cache();
    let t = Instant::now();
    let n = get(c, bucket, key).await?;
    anyhow::ensure!(n == len, "read {n} bytes of {len}");
    let r = mib_s(len, t.elapsed());
    // The overwritten version sits in the bin: free its space for the next round.
    purge_ours(c, bucket).await?;
    Ok((w, r))
}

/// Write-then-read rounds of one object, back to back, until stopped.
pub struct Loop {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<Vec<(f64, f64)>>>,
}

impl Loop {
    /// Starts rounds of `len` bytes at `bucket/key`.
    pub fn start(c: &Client, bucket: &str, key: &str, len: u64) -> Loop {
        let stop = Arc::new(AtomicBool::new(false));
        let (c, b, key, flag) = (c.clone(), bucket.to_string(), key.to_string(), stop.clone());
        let task = tokio::spawn(async move {
            let mut rounds = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                rounds.push(round(&c, &b, &key, len).await?);
            }
            anyhow::Ok(rounds)
        });
        Loop { stop, task }
    }

    /// Stops after the round in progress; returns the rounds run and their mean write and
    /// read MiB/s.
    pub async fn stop(self) -> anyhow::Result<(usize, f64, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        let rounds = self.task.await??;
        let n = rounds.len().max(1) as f64;
        let (w, r) = rounds
            .iter()
            .fold((0.0, 0.0), |(w, r), (a, b)| (w + a / n, r + b / n));
        Ok((rounds.len(), w, r))
    }
}

/// Writes `bytes` of objects of 64 MiB at most under `{PREFIX}fill/`; returns how many.
pub async fn fill(c: &Client, bucket: &str, bytes: u64) -> anyhow::Result<usize> {
    let object = 64u64 << 20;
    let t = Instant::now();
    let mut written = 0u64;
    let mut i = 0;
    while written < bytes {
        let n = object.min(bytes - written);
        put(c, bucket, &format!("{PREFIX}fill/{i}"), n, i as u8).await?;
        written += n;
        i += 1;
    }
    println!(
        "fill: {} MiB in {i} object(s) at {:.0} MiB/s",
        written >> 20,
        mib_s(written, t.elapsed())
    );
    Ok(i)
}

/// Deletes what [`fill`] and the rounds at `key` wrote, and purges it from the bin.
pub async fn clean(c: &Client, bucket: &str, filled: usize, key: &str) -> anyhow::Result<()> {
    for j in 0..filled {
        c.delete_object(bucket, &format!("{PREFIX}fill/{j}"))
            .await?;
    }
    c.delete_object(bucket, key).await?;
    purge_ours(c, bucket).await
}

/// Purges the bench's own versions from the recycle bin (an overwrite keeps the old one
/// there), so rounds do not fill the disks; the master collects them at once.
pub async fn purge_ours(c: &Client, bucket: &str) -> anyhow::Result<()> {
    use kdss_proto::master as pb;
    let mut ids = Vec::new();
    let mut after_id = 0;
    loop {
        let page = c
            .master()
            .list_trash(pb::ListTrashRequest {
                bucket: bucket.into(),
                after_id,
                limit: 1000,
            })
            .await?
            .items;
        let Some(last) = page.last() else { break };
        after_id = last.id;
        ids.extend(
            page.iter()
                .filter(|t| t.path.trim_start_matches('/').starts_with(PREFIX))
                .map(|t| t.id),
        );
    }
    if !ids.is_empty() {
        c.master()
            .purge_trash(pb::PurgeTrashRequest {
                ids,
                ..Default::default()
            })
            .await?;
    }
    Ok(())
}
