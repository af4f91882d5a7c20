//! The S3 benchmark, run with `examples/bench.rs` (`kdss bench` has no `s3` subcommand yet;
//! figures in `s3gw/bench/RESULTS.md`): PUT and GET throughput of large objects (64 MiB)
//! and ops/s of small ones (4 KiB) at several concurrencies, through the gateway (HTTP +
//! SigV4) and, in the same run, through the client library directly (the stream writer,
//! PutObject, HeadObject and the reader the gateway uses), so the gateway's own cost shows.
//! Every PUT is acknowledged only once durable (invariant 1) on both paths. The library
//! path runs with the gateway's `[client]` defaults (chunk, write window, inline threshold,
//! read-ahead, reads in flight), so the two paths differ only by the gateway. Each row's
//! objects are deleted once measured; the master keeps deleted data in its recycle bin for
//! `[gc] auto_gc_pending_hours` (48 h), so their space comes back only after that.

pub mod http;

use bytes::Bytes;
use http::{Conn, Signer};
use kdss_client::Client;
use kdss_proto::master as pb;
use std::time::{Instant, SystemTime};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOpts {
    /// `http://host:port` of a gateway.
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Master gRPC addresses (for the client-library path).
    pub masters: Vec<String>,
    /// An existing bucket the user may write.
    pub bucket: String,
    /// Size of the large objects (64 MiB).
    pub large_size: usize,
    /// Large objects per concurrency level.
    pub large_count: usize,
    /// Size of the small objects (4 KiB).
    pub small_size: usize,
    /// Small objects per concurrency level.
    pub small_count: usize,
    /// Concurrency levels (1 and 32).
    pub concurrency: Vec<usize>,
}

impl Default for BenchOpts {
    fn default() -> Self {
        BenchOpts {
            endpoint: "http://127.0.0.1:9000".into(),
            region: "us-east-1".into(),
            access_key: String::new(),
            secret_key: String::new(),
            masters: vec!["127.0.0.1:6700".into()],
            bucket: "kdss".into(),
            large_size: 64 << 20,
            large_count: 4,
            small_size: 4096,
            small_count: 256,
            concurrency: vec![1, 32],
        }
    }
}

/// One measured line.
#[derive(Debug, Clone)]
pub struct BenchRow {
    /// `s3` (through the gateway) or `client` (the library directly).
    pub path: &'static str,
    /// `put` or `get`.
    pub op: &'static str,
    pub object_size: usize,
    pub concurrency: usize,
    pub ops: usize,
    pub secs: f64,
}

impl BenchRow {
    /// MiB/s moved.
    pub fn mib_per_sec(&self) -> f64 {
        (self.ops * self.object_size) as f64 / (1 << 20) as f64 / self.secs
    }
    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("bad endpoint {0:?}: expected http://host:port")]
    Endpoint(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("gateway answered {status} to {op}: {code}")]
    Status {
        op: String,
        status: u16,
        code: String,
    },
    #[error("client: {0}")]
    Client(#[from] kdss_client::ClientError),
    #[error("deleting the bench object {key} failed: {code} {message}")]
    Cleanup {
        key: String,
        code: String,
        message: String,
    },
    #[error("data read back differs from what was written ({0})")]
    Mismatch(String),
}

fn payload(size: usize, seed: u64) -> Bytes {
    let mut v = vec![0u8; size];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in v.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    Bytes::from(v)
}

async fn s3_worker(
    host: String,
    signer: Signer,
    bucket: String,
    keys: Vec<String>,
    data: Bytes,
    put: bool,
) -> Result<(), BenchError> {
    let mut conn = Conn::connect(&host).await?;
    for key in keys {
        let path = format!("/{bucket}/{key}");
        let method = if put { "PUT" } else { "GET" };
        let s = signer.sign(
            method,
            &host,
            &path,
            "UNSIGNED-PAYLOAD",
            &[],
            SystemTime::now(),
        );
        let body: &[u8] = if put { &data } else { &[] };
        let (resp, n) = conn.send(method, &path, &s.headers, body, false).await?;
        if resp.status != 200 {
            return Err(BenchError::Status {
                op: format!("{method} {path}"),
                status: resp.status,
                code: resp.error_code(),
            });
        }
        if !put && n != data.len() as u64 {
            return Err(BenchError::Mismatch(format!(
                "GET {path}: {n} bytes, want {}",
                data.len()
            )));
        }
    }
    Ok(())
}

async fn client_worker(
    client: Client,
    bucket: String,
    keys: Vec<String>,
    data: Bytes,
    put: bool,
) -> Result<(), BenchError> {
    use futures::StreamExt;
    for key in keys {
        if put {
            let mut w = client.stream_writer(&bucket);
            w.write(data.clone()).await?;
            let wd = w.finish().await?;
            client.put_object(wd.put_request(&bucket, &key)).await?;
        } else {
            // Read as the gateway reads: the client's stream within its read admission.
            let (info, reader) = client.open_object(&bucket, &key).await?;
            let mut s = Box::pin(reader.stream(0, info.size));
            let mut n = 0u64;
            while let Some(piece) = s.next().await {
                n += piece?.len() as u64;
            }
            if n != data.len() as u64 {
                return Err(BenchError::Mismatch(format!("client GET {key}: {n} bytes")));
            }
        }
    }
    Ok(())
}

/// Runs the whole matrix and returns one row per (path, op, size, concurrency).
pub async fn run_bench(opts: &BenchOpts) -> Result<Vec<BenchRow>, BenchError> {
    let host = opts
        .endpoint
        .strip_prefix("http://")
        .map(|h| h.trim_end_matches('/').to_string())
        .ok_or_else(|| BenchError::Endpoint(opts.endpoint.clone()))?;
    let signer = Signer {
        access_key: opts.access_key.clone(),
        secret_key: opts.secret_key.clone(),
        region: opts.region.clone(),
    };
    // As the gateway builds its client (crate::config::S3Config::client_config): the
    // shared `[client]` defaults.
    let client = Client::connect(kdss_client::ClientSettings::default().client_config(
        opts.masters.clone(),
        opts.access_key.clone(),
        opts.secret_key.clone(),
    ))
    .await?;
    let mut rows = Vec::new();
    let run_id = kdss_common::time::now_ms();
    for (size, count) in [
        (opts.large_size, opts.large_count),
        (opts.small_size, opts.small_count),
    ] {
        let data = payload(size, run_id);
        for &conc in &opts.concurrency {
            let count = count.max(conc);
            for path in ["s3", "client"] {
                let keys: Vec<String> = (0..count)
                    .map(|i| format!("bench-{run_id}/{path}-{size}-{conc}/{i:06}"))
                    .collect();
                for (op, put) in [("put", true), ("get", false)] {
                    let t = Instant::now();
                    let mut tasks = Vec::new();
                    for w in 0..conc {
                        let mine: Vec<String> =
                            keys.iter().skip(w).step_by(conc).cloned().collect();
                        let data = data.clone();
                        let bucket = opts.bucket.clone();
                        if path == "s3" {
                            tasks.push(tokio::spawn(s3_worker(
                                host.clone(),
                                signer.clone(),
                                bucket,
                                mine,
                                data,
                                put,
                            )));
                        } else {
                            tasks.push(tokio::spawn(client_worker(
                                client.clone(),
                                bucket,
                                mine,
                                data,
                                put,
                            )));
                        }
                    }
                    for t in tasks {
                        t.await
                            .map_err(|e| std::io::Error::other(e.to_string()))??;
                    }
                    let secs = t.elapsed().as_secs_f64();
                    rows.push(BenchRow {
                        path,
                        op,
                        object_size: size,
                        concurrency: conc,
                        ops: count,
                        secs,
                    });
                }
                delete_keys(&client, &opts.bucket, &keys).await?;
            }
        }
    }
    Ok(rows)
}

/// Deletes a row's objects (not timed), in DeleteObjects batches.
async fn delete_keys(client: &Client, bucket: &str, keys: &[String]) -> Result<(), BenchError> {
    for batch in keys.chunks(1000) {
        let req = pb::DeleteObjectsRequest {
            bucket: bucket.to_string(),
            keys: batch.to_vec(),
        };
        let reply = client.master().delete_objects(req).await?;
        if let Some(bad) = reply
            .results
            .into_iter()
            .find(|r| !r.ok && r.code != "NoSuchKey")
        {
            return Err(BenchError::Cleanup {
                key: bad.key,
                code: bad.code,
                message: bad.message,
            });
        }
    }
    Ok(())
}

/// A table of the rows, for people.
pub fn report(rows: &[BenchRow]) -> String {
    let mut s = format!(
        "{:<7} {:<4} {:>10} {:>5} {:>7} {:>10} {:>10}\n",
        "path", "op", "size", "conc", "ops", "MiB/s", "ops/s"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<7} {:<4} {:>10} {:>5} {:>7} {:>10.1} {:>10.1}\n",
            r.path,
            r.op,
            r.object_size,
            r.concurrency,
            r.ops,
            r.mib_per_sec(),
            r.ops_per_sec()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_deterministic_and_not_constant() {
        let a = payload(4096, 7);
        assert_eq!(a, payload(4096, 7));
        assert_ne!(a, payload(4096, 8));
        assert!(a.iter().any(|&b| b != a[0]));
        let r = BenchRow {
            path: "s3",
            op: "put",
            object_size: 1 << 20,
            concurrency: 1,
            ops: 10,
            secs: 2.0,
        };
        assert_eq!(r.mib_per_sec(), 5.0);
        assert!(report(&[r]).contains("5.0"));
    }
}
