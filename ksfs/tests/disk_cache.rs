//! `[mount] cache_dir`, the read cache's disk tier, through real mounts of a real cluster:
//! a remount reads a file back from the disk cache alone after every storage node is gone;
//! a corrupt entry is detected, counted and read around; and a file replaced through the
//! S3 door (the gateway's own client calls) never reads back as the cached old content.

mod common;

use anyhow::Context;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A loopback port free now, for a mount's metrics listener.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The value of the unlabelled metric `name` in the mount's `/metrics` (0 when absent).
fn scrape(port: u16, name: &str) -> anyhow::Result<u64> {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: ksfs\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse::<f64>().ok().map(|v| v as u64))?
        })
        .unwrap_or(0))
}

/// The disk tier's counters of one mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Disk {
    hits: u64,
    misses: u64,
    corrupt: u64,
    writes: u64,
    drops: u64,
    entries: u64,
    files: u64,
}

fn disk(port: u16) -> anyhow::Result<Disk> {
    let m = |n: &str| scrape(port, &format!("kdss_ksfs_disk_cache_{n}"));
    Ok(Disk {
        hits: m("hits_total")?,
        misses: m("misses_total")?,
        corrupt: m("corrupt_total")?,
        writes: m("writes_total")?,
        drops: m("write_drops_total")?,
        entries: m("entries")?,
        files: m("files")?,
    })
}

/// Waits until the mount's disk-cache writes have stopped (the same counters over a few
/// samples) and returns them.
async fn settled(port: u16) -> anyhow::Result<Disk> {
    let t = Instant::now();
    let mut last = disk(port)?;
    let mut same = 0;
    while same < 5 {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(60),
            "disk cache writes never settled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = disk(port)?;
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    Ok(last)
}

/// Deterministic content (differs per seed and per offset).
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed.wrapping_mul(0xff51_afd7_ed55_8ccd);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn write_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// The `[mount]` lines of a mount with the disk tier at `dir` and metrics on `port`; TTLs
/// of 0 so a file replaced elsewhere is looked up again at once.
fn with_cache(dir: &Path, port: u16) -> String {
    format!(
        "cache_dir = {:?}\ncache_dir_size = \"256MiB\"\nmetrics_addr = \"127.0.0.1:{port}\"\n\
         attr_ttl = 0.0\nentry_ttl = 0.0\n",
        dir.display().to_string()
    )
}

/// Mounts with the disk tier, reads `name` (expecting `want`) and waits until what that
/// read fetched is on disk; returns the counters then.
async fn fill(
    cluster: &kdss_testkit::Cluster,
    mount: &str,
    dir: &Path,
    name: &str,
    want: &[u8],
) -> anyhow::Result<Disk> {
    let port = free_port()?;
    let m = KsfsMount::start(cluster, mount, &with_cache(dir, port)).await?;
    assert!(
        std::fs::read(m.join(name))? == want,
        "{name} read back differs"
    );
    let d = settled(port).await?;
    assert!(
        d.writes > 0,
        "the read wrote nothing to the disk cache: {d:?}"
    );
    assert_eq!(
        d.drops, 0,
        "a write was dropped, so a remount would miss: {d:?}"
    );
    Ok(d)
}

/// The entry files of a cache directory (each a run of blocks).
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(dir.join("blocks"))
        .expect("blocks dir")
        .flatten()
    {
        for f in std::fs::read_dir(sub.path()).expect("subdir").flatten() {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

const LEN: usize = (6 << 20) + 12_345;

#[tokio::test(flavor = "multi_thread")]
async fn a_remount_reads_a_file_from_the_disk_cache_with_every_storage_node_gone()
-> anyhow::Result<()> {
    require_fuse!();
    let mut cluster = cluster().await?;
    let dir = cluster.scratch("dcache").join("cache");
    let data = content(1, LEN);
    {
        let w = KsfsMount::start(&cluster, "writer", "").await?;
        write_file(&w.join("f"), &data)?;
    }
    let filled = fill(&cluster, "fill", &dir, "f", &data).await?;
    assert_eq!(filled.entries, filled.writes);
    assert_eq!(entries(&dir).len() as u64, filled.files);
    assert!(
        filled.files < filled.entries,
        "one file per block: {filled:?}"
    );

    // The master stays (extents); every storage node goes.
    for i in 0..4 {
        cluster.kill_node(i);
    }
    {
        let bare = KsfsMount::start(&cluster, "bare", "attr_ttl = 0.0\n").await?;
        assert!(
            std::fs::read(bare.join("f")).is_err(),
            "a mount without the disk cache read the file with no storage node up"
        );
    }
    let port = free_port()?;
    let m = KsfsMount::start(&cluster, "again", &with_cache(&dir, port)).await?;
    let got = std::fs::read(m.join("f")).context("reading f with every storage node gone")?;
    assert!(
        got == data,
        "{} bytes read back from the disk cache differ",
        got.len()
    );
    let d = disk(port)?;
    assert!(
        d.hits >= filled.entries,
        "hits {d:?} after filling {filled:?}"
    );
    assert_eq!((d.misses, d.corrupt), (0, 0), "{d:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_entry_is_counted_and_read_around() -> anyhow::Result<()> {
    require_fuse!();
    let cluster = cluster().await?;
    let dir = cluster.scratch("dcache").join("cache");
    let data = content(2, LEN);
    {
        let w = KsfsMount::start(&cluster, "writer", "").await?;
        write_file(&w.join("f"), &data)?;
    }
    fill(&cluster, "fill", &dir, "f", &data).await?;
    // The first byte of every 4 KiB page after the first flipped in every file: blocks start
    // on page boundaries after the header, so each block (and any header longer than a
    // page) has a bad byte.
    let files = entries(&dir);
    assert!(!files.is_empty());
    for f in &files {
        let mut raw = std::fs::read(f)?;
        for at in (4096..raw.len()).step_by(4096) {
            raw[at] ^= 0x01;
        }
        std::fs::write(f, raw)?;
    }
    let port = free_port()?;
    let m = KsfsMount::start(&cluster, "again", &with_cache(&dir, port)).await?;
    let got = std::fs::read(m.join("f"))?;
    assert!(got == data, "the read returned corrupt cached bytes");
    let d = disk(port)?;
    assert!(d.corrupt >= 1, "no corrupt entry counted: {d:?}");
    assert_eq!(d.hits, 0, "a corrupt entry was served: {d:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_replaced_through_s3_never_reads_back_as_the_cached_content() -> anyhow::Result<()> {
    require_fuse!();
    let cluster = cluster().await?;
    let dir = cluster.scratch("dcache").join("cache");
    let old = content(3, LEN);
    let new = content(4, LEN);
    {
        let w = KsfsMount::start(&cluster, "writer", "").await?;
        write_file(&w.join("f"), &old)?;
    }
    let port = free_port()?;
    let m = KsfsMount::start(&cluster, "reader", &with_cache(&dir, port)).await?;
    assert!(std::fs::read(m.join("f"))? == old);
    let before = settled(port).await?;
    assert!(before.writes > 0, "{before:?}");

    // A PutObject of the same key, as the S3 gateway makes it.
    let (ak, sk) = cluster.admin_keys();
    let client = kdss_client::Client::connect(
        kdss_client::ClientSettings::default().client_config(cluster.masters(), ak, sk),
    )
    .await?;
    let mut w = client.stream_writer(&cluster.bucket());
    w.write(bytes::Bytes::from(new.clone())).await?;
    let written = w.finish().await?;
    client
        .put_object(written.put_request(&cluster.bucket(), "f"))
        .await?;

    // Reopened in the mount that cached the old content.
    let got = std::fs::read(m.join("f"))?;
    assert!(
        got == new,
        "the mount read the old (cached) content after the PutObject"
    );
    drop(m);
    // And in a new mount on the same cache directory.
    let port = free_port()?;
    let m = KsfsMount::start(&cluster, "again", &with_cache(&dir, port)).await?;
    let got = std::fs::read(m.join("f"))?;
    assert!(
        got == new,
        "a remount read the old (cached) content after the PutObject"
    );
    Ok(())
}
