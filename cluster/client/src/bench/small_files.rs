//! Small files, one after another as `cp` of a source tree does them: create, write, close
//! (flush: durable and committed) and then open + read back, per second, for each size with
//! the file kept inline in metadata and with it written as a stripe. This is the
//! measurement behind the default `inline_threshold`.

use std::time::Instant;

use kdss_proto::master as pb;

use super::pattern;
use crate::{Client, ClientConfig, ClientError};

/// One size, one storage form.
#[derive(Debug, Clone)]
pub struct SmallFileFigure {
    pub size: usize,
    pub inline: bool,
    pub creates_per_s: f64,
    pub reads_per_s: f64,
}

/// Measures `count` files per (size, form) in the root of `bucket`; removes them after.
/// Inline is measured only for sizes the master can keep inline.
pub async fn run(
    cfg: ClientConfig,
    bucket: &str,
    sizes: &[usize],
    count: usize,
) -> Result<Vec<SmallFileFigure>, ClientError> {
    let mut out = Vec::new();
    for &size in sizes {
        for inline in [false, true] {
            if inline && size > kdss_common::limits::MAX_INLINE_BYTES {
                continue;
            }
            let cfg = ClientConfig {
                inline_threshold: if inline { size } else { 0 },
                chunk_size: cfg.chunk_size.max(size),
                ..cfg.clone()
            };
            let client = Client::connect(cfg).await?;
            out.push(measure(&client, bucket, size, inline, count).await?);
        }
    }
    Ok(out)
}

impl std::fmt::Display for SmallFileFigure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>5} KiB {:<6} {:>8.0} creates/s {:>8.0} reads/s",
            self.size >> 10,
            if self.inline { "inline" } else { "stripe" },
            self.creates_per_s,
            self.reads_per_s
        )
    }
}

async fn measure(
    client: &Client,
    bucket: &str,
    size: usize,
    inline: bool,
    count: usize,
) -> Result<SmallFileFigure, ClientError> {
    let root = super::bucket_root(client, bucket).await?;
    let data = pattern(size, size as u64);
    let tag = format!(
        "kdss-bench-small-{}-{size}-{inline}",
        kdss_common::time::now_ms()
    );
    let mut inos = Vec::with_capacity(count);
    let t = Instant::now();
    for i in 0..count {
        let ino = super::create_file(client, bucket, root, &format!("{tag}-{i}")).await?;
        let mut w = client.file_writer(bucket, ino);
        w.write_at(0, &data).await?;
        w.flush().await?;
        inos.push(ino);
    }
    let creates_per_s = count as f64 / t.elapsed().as_secs_f64();
    client.clear_cache();
    let t = Instant::now();
    for &ino in &inos {
        let r = client.open_reader(bucket, ino).await?;
        if r.extents().is_empty() != inline {
            return Err(ClientError::Internal(format!(
                "{size}-byte file stored {} inline, expected the opposite",
                if inline { "not" } else { "" }
            )));
        }
        if r.read_at(0, size as u64).await?[..] != data[..] {
            return Err(ClientError::Internal(
                "small file read back wrong bytes".into(),
            ));
        }
    }
    let reads_per_s = count as f64 / t.elapsed().as_secs_f64();
    for i in 0..count {
        let req = pb::UnlinkRequest {
            bucket: bucket.to_string(),
            parent: root,
            name: format!("{tag}-{i}"),
        };
        client.master().unlink(req).await?;
    }
    Ok(SmallFileFigure {
        size,
        inline,
        creates_per_s,
        reads_per_s,
    })
}
