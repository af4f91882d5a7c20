//! `kdss-cli cp`: copy a local file into a bucket or an object out to a local file through
//! the client data path (the same code as ksfs and the S3 gateway), with progress and ETA
//! on stderr for large copies.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::commands::connect;
use crate::settings::Settings;
use crate::view::View;

/// Arguments of `cp`.
#[derive(Args)]
pub struct CpArgs {
    /// Source: a local path or kdss://BUCKET/KEY.
    pub src: String,
    /// Destination: kdss://BUCKET/KEY or a local path (the other side of SRC).
    pub dst: String,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `kdss://bucket/key` → (bucket, key).
fn remote(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix("kdss://")?;
    rest.split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
}

/// Runs `cp`.
pub async fn cp(s: &Settings, a: CpArgs) -> anyhow::Result<View> {
    let c = connect(s).await?;
    match (remote(&a.src), remote(&a.dst)) {
        (None, Some((bucket, key))) => upload(&c, &a, bucket, key).await,
        (Some((bucket, key)), None) => download(&c, &a, bucket, key).await,
        _ => bail!(
            "cp copies between a local path and kdss://BUCKET/KEY (got {:?} -> {:?})",
            a.src,
            a.dst
        ),
    }
}

async fn upload(
    c: &kdss_client::Client,
    a: &CpArgs,
    bucket: &str,
    key: &str,
) -> anyhow::Result<View> {
    let mut file = tokio::fs::File::open(&a.src)
        .await
        .with_context(|| format!("open {}", a.src))?;
    let total = file.metadata().await?.len();
    let mut w = c.stream_writer(bucket).into_async_write();
    let t = copy_with_progress(&mut file, &mut w, total, a.quiet).await?;
    let wd = w.finish().await.context("writing shards")?;
    let info = c
        .put_object(wd.put_request(bucket, key))
        .await
        .with_context(|| format!("committing kdss://{bucket}/{key}"))?;
    Ok(done(&a.src, &a.dst, wd.size, t, &info.etag))
}

async fn download(
    c: &kdss_client::Client,
    a: &CpArgs,
    bucket: &str,
    key: &str,
) -> anyhow::Result<View> {
    let (info, reader) = c
        .open_object(bucket, key)
        .await
        .with_context(|| format!("kdss://{bucket}/{key}"))?;
    let mut file = tokio::fs::File::create(&a.dst)
        .await
        .with_context(|| format!("create {}", a.dst))?;
    let mut r = reader.into_async_read(0, info.size);
    let t = copy_with_progress(&mut r, &mut file, info.size, a.quiet).await?;
    file.sync_all()
        .await
        .with_context(|| format!("fsync {}", a.dst))?;
    Ok(done(&a.src, &a.dst, info.size, t, &info.etag))
}

fn done(src: &str, dst: &str, bytes: u64, t: Duration, etag: &str) -> View {
    let mibs = bytes as f64 / (1 << 20) as f64 / t.as_secs_f64().max(1e-9);
    View {
        json: json!({"src": src, "dst": dst, "bytes": bytes, "seconds": t.as_secs_f64(), "etag": etag}),
        text: format!(
            "{src} -> {dst}: {bytes} bytes in {:.1} s ({mibs:.1} MiB/s)\n",
            t.as_secs_f64()
        ),
    }
}

/// Copies everything, printing bytes done, rate and ETA to stderr about once a second.
async fn copy_with_progress(
    r: &mut (impl AsyncRead + Unpin),
    w: &mut (impl AsyncWrite + Unpin),
    total: u64,
    quiet: bool,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut last = start;
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = r.read(&mut buf).await.context("reading")?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n]).await.context("writing")?;
        done += n as u64;
        if !quiet && last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            eprintln!("{}", progress_line(done, total, start.elapsed()));
        }
    }
    w.flush().await.context("writing")?;
    Ok(start.elapsed())
}

/// "12.0 / 100.0 MiB (12%), 45.2 MiB/s, ETA 2 s".
fn progress_line(done: u64, total: u64, elapsed: Duration) -> String {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let rate = mib(done) / elapsed.as_secs_f64().max(1e-9);
    let eta = if rate > 0.0 {
        format!("{:.0} s", mib(total.saturating_sub(done)) / rate)
    } else {
        "unknown".into()
    };
    format!(
        "{:.1} / {:.1} MiB ({}%), {rate:.1} MiB/s, ETA {eta}",
        mib(done),
        mib(total),
        (done * 100).checked_div(total).unwrap_or(100)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_and_progress_lines() {
        assert_eq!(remote("kdss://b/dir/k"), Some(("b", "dir/k")));
        assert_eq!(remote("kdss://b/"), None);
        assert_eq!(remote("/tmp/x"), None);
        assert_eq!(
            progress_line(50 << 20, 100 << 20, Duration::from_secs(5)),
            "50.0 / 100.0 MiB (50%), 10.0 MiB/s, ETA 5 s"
        );
    }
}
