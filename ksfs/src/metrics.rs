//! A mount's Prometheus metrics, served on `[mount] metrics_addr` when set: kernel
//! operations by name with their latency and how many run, file bytes read and written,
//! the client's read cache (memory and disk tiers) and read-ahead, buffered write bytes against the mount's
//! `write_buffer_total`, and failed cluster calls by kind. Labels are
//! operation names and fixed kinds, never a path or a user.

use kdss_client::Client;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Instant;

type Labels = Vec<(String, String)>;

fn latency_histogram() -> Histogram {
    // 50 µs to about 6.5 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

/// Which cluster call failed (the `call` label of `kdss_ksfs_cluster_errors_total`).
#[derive(Debug, Clone, Copy)]
pub enum CallKind {
    /// A metadata call to the masters.
    Master,
    /// A data-path call (stripes to and from storage nodes, commits).
    Data,
}

/// How it failed (the `kind` label).
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    /// The cluster answered with an errno other than EIO (ENOENT, EEXIST...: often the
    /// caller's question, counted so a storm of them shows).
    Refused,
    /// The cluster failed (EIO to the caller).
    Io,
    /// No answer within the deadline (EIO to the caller).
    Timeout,
}

fn error_labels(call: CallKind, kind: Failure) -> Labels {
    let call = match call {
        CallKind::Master => "master",
        CallKind::Data => "data",
    };
    let kind = match kind {
        Failure::Refused => "refused",
        Failure::Io => "io",
        Failure::Timeout => "timeout",
    };
    vec![("call".into(), call.into()), ("kind".into(), kind.into())]
}

/// The mount's metrics.
pub struct KsfsMetrics {
    registry: Registry,
    ops: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    read_bytes: Counter,
    written_bytes: Counter,
    errors: Family<Labels, Counter>,
}

/// The client's cache counters and write-buffer usage, read at scrape time (names get the
/// registry's prefix).
struct CacheCollector {
    client: Client,
}

impl std::fmt::Debug for CacheCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheCollector")
    }
}

impl Collector for CacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.client.cache_stats();
        let counters = [
            ("cache_hits", "cache blocks found in the read cache", s.hits),
            (
                "cache_misses",
                "cache blocks fetched from storage nodes",
                s.misses,
            ),
            (
                "prefetches",
                "stripe ranges read ahead for sequential readers",
                s.prefetches,
            ),
            (
                "prefetch_bytes",
                "bytes the read-aheads asked for",
                s.prefetch_bytes,
            ),
        ];
        for (name, help, v) in counters {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let (buffered, budget) = self.client.write_buffer_usage();
        let gauges = [
            ("cache_bytes", "bytes held by the read cache", s.bytes),
            (
                "write_buffer_bytes",
                "file bytes of writes buffered or being written, counted against the budget",
                buffered,
            ),
            (
                "write_buffer_limit_bytes",
                "the budget of buffered write bytes ([mount] write_buffer_total)",
                budget,
            ),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v as i64);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        self.encode_disk(encoder)
    }
}

impl CacheCollector {
    /// The disk tier's series (`[mount] cache_dir`); zeros when the mount has none.
    fn encode_disk(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let d = self.client.disk_cache_stats().unwrap_or_default();
        let counters = [
            ("disk_cache_hits", "blocks read from the disk cache", d.hits),
            (
                "disk_cache_misses",
                "blocks looked for in the disk cache and not found there",
                d.misses,
            ),
            (
                "disk_cache_corrupt",
                "disk cache blocks found torn or corrupt, or in a file of another cluster",
                d.corrupt,
            ),
            (
                "disk_cache_writes",
                "blocks written to the disk cache",
                d.writes,
            ),
            (
                "disk_cache_write_drops",
                "blocks not written to the disk cache (queue full or write failed)",
                d.dropped,
            ),
            (
                "disk_cache_evictions",
                "disk cache files deleted to stay within cache_dir_size",
                d.evictions,
            ),
        ];
        for (name, help, v) in counters {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let gauges = [
            (
                "disk_cache_bytes",
                "bytes the disk cache takes on disk",
                d.bytes,
            ),
            (
                "disk_cache_entries",
                "blocks held by the disk cache",
                d.entries,
            ),
            (
                "disk_cache_files",
                "files the disk cache holds its blocks in (a run of blocks each)",
                d.files,
            ),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v as i64);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

/// Counts an operation in flight until dropped, then records its latency.
pub struct OpTimer {
    m: std::sync::Arc<KsfsMetrics>,
    op: &'static str,
    started: Instant,
}

impl Drop for OpTimer {
    fn drop(&mut self) {
        let l = vec![("op".to_string(), self.op.to_string())];
        self.m.in_flight.dec();
        self.m.ops.get_or_create(&l).inc();
        self.m
            .latency
            .get_or_create(&l)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl KsfsMetrics {
    /// Registers every metric under `kdss_ksfs_`; the cache figures come from `client`.
    pub fn new(client: Client) -> Self {
        let mut r = Registry::with_prefix("kdss_ksfs");
        let ops = Family::<Labels, Counter>::default();
        let latency =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let (in_flight, read_bytes, written_bytes) =
            (Gauge::default(), Counter::default(), Counter::default());
        let errors = Family::<Labels, Counter>::default();
        r.register(
            "fuse_ops",
            "kernel requests answered, by operation",
            ops.clone(),
        );
        r.register(
            "fuse_op_duration_seconds",
            "time from a kernel request to its reply, by operation",
            latency.clone(),
        );
        r.register(
            "fuse_ops_in_flight",
            "kernel requests being served",
            in_flight.clone(),
        );
        r.register(
            "read_bytes",
            "file bytes returned to readers",
            read_bytes.clone(),
        );
        r.register(
            "written_bytes",
            "file bytes accepted from writers",
            written_bytes.clone(),
        );
        r.register(
            "cluster_errors",
            "failed cluster calls by call (master, data) and kind (refused, io, timeout)",
            errors.clone(),
        );
        r.register_collector(Box::new(CacheCollector { client }));
        let m = KsfsMetrics {
            registry: r,
            ops,
            latency,
            in_flight,
            read_bytes,
            written_bytes,
            errors,
        };
        // Every call and kind from the start, so a rule on them has a series at 0.
        for call in [CallKind::Master, CallKind::Data] {
            for kind in [Failure::Refused, Failure::Io, Failure::Timeout] {
                let _ = m.errors.get_or_create(&error_labels(call, kind));
            }
        }
        m
    }

    /// Starts timing one kernel operation.
    pub fn op(self: &std::sync::Arc<Self>, op: &'static str) -> OpTimer {
        self.in_flight.inc();
        OpTimer {
            m: self.clone(),
            op,
            started: Instant::now(),
        }
    }

    /// Counts bytes returned by a read.
    pub fn read(&self, n: usize) {
        self.read_bytes.inc_by(n as u64);
    }

    /// Counts bytes accepted by a write.
    pub fn written(&self, n: usize) {
        self.written_bytes.inc_by(n as u64);
    }

    /// File bytes accepted from writers since the mount started.
    pub fn written_total(&self) -> u64 {
        self.written_bytes.get()
    }

    /// Counts one failed cluster call.
    pub fn cluster_error(&self, call: CallKind, kind: Failure) {
        self.errors.get_or_create(&error_labels(call, kind)).inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut s, &self.registry) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        s
    }
}

/// Serves `/metrics` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, m: std::sync::Arc<KsfsMetrics>) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let m = m.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.encode(),
                )
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "metrics listener stopped");
    }
}
