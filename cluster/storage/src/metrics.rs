//! Prometheus metrics of a storage node: request counts and latency histograms per gRPC
//! operation, and per-disk counters and gauges (bytes and records written/read, errors,
//! capacity/used/dead/free bytes, compaction and scrub progress) read from the engines at
//! scrape time: device latency histograms per disk and kind of call, and the
//! S.M.A.R.T. verdict where the device has one.

use crate::device::latency::IoKind;
use crate::engine::{Disk, DiskCounters};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;
/// Reads one S.M.A.R.T. gauge value from a verdict.
type SmartFn = fn(&crate::device::smart::SmartStatus) -> i64;
/// Reads one gauge value of a disk.
type GaugeFn = fn(&crate::engine::DiskStats, &Disk) -> i64;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

/// The node's metrics registry and the request-side metrics the service updates.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    rebuilds: Family<Labels, Counter>,
    rebuilt_bytes: Counter,
    rebuild_source_bytes: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

#[derive(Debug)]
struct DiskCollector {
    disks: Vec<Arc<Disk>>,
}

fn counter_of<'a>(c: &'a DiskCounters, name: &str) -> &'a AtomicU64 {
    match name {
        "bytes_written" => &c.bytes_written,
        "records_written" => &c.records_written,
        "bytes_read" => &c.bytes_read,
        "records_read" => &c.records_read,
        "device_read_bytes" => &c.device_read_bytes,
        "io_errors" => &c.io_errors,
        "checksum_errors" => &c.checksum_errors,
        "syncs" => &c.syncs,
        "compactions" => &c.compactions,
        "compacted_bytes" => &c.compacted_bytes,
        "scrub_passes" => &c.scrub_passes,
        "scrub_bytes" => &c.scrub_bytes,
        _ => &c.scrub_corrupt,
    }
}

const COUNTERS: [(&str, &str); 13] = [
    (
        "bytes_written",
        "Bytes written to the device (records, padding, segment headers)",
    ),
    ("records_written", "Records made durable"),
    ("bytes_read", "Shard bytes returned by reads"),
    ("records_read", "Shard reads served"),
    (
        "device_read_bytes",
        "Device bytes shard reads fetched, checksum blocks and headers included",
    ),
    ("io_errors", "Device I/O errors"),
    ("checksum_errors", "Records that failed their checksum"),
    ("syncs", "fdatasync calls (one per group-commit batch)"),
    ("compactions", "Segments compacted and freed"),
    ("compacted_bytes", "Bytes relocated by the compactor"),
    ("scrub_passes", "Completed scrub passes"),
    ("scrub_bytes", "Bytes verified by the scrubber"),
    ("scrub_corrupt", "Corrupt records found by the scrubber"),
];

impl Collector for DiskCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let labels: Vec<Labels> = self
            .disks
            .iter()
            .map(|d| {
                vec![
                    ("disk".to_string(), d.id().to_string()),
                    ("path".to_string(), d.path().display().to_string()),
                ]
            })
            .collect();
        for (name, help) in COUNTERS {
            let full = format!("kdss_storage_disk_{name}");
            let c = ConstCounter::new(0u64);
            let mut me = encoder.encode_descriptor(&full, help, None, c.metric_type())?;
            for (d, l) in self.disks.iter().zip(&labels) {
                let v = DiskCounters::get(counter_of(d.counters(), name));
                ConstCounter::new(v).encode(me.encode_family(l)?)?;
            }
        }
        let stats: Vec<_> = self.disks.iter().map(|d| d.stats()).collect();
        let gauges: [(&str, &str, GaugeFn); 10] = [
            ("capacity_bytes", "Bytes usable for records", |s, _| {
                s.capacity as i64
            }),
            ("used_bytes", "Bytes of live records", |s, _| s.used as i64),
            (
                "dead_bytes",
                "Bytes of deleted or superseded records not yet compacted",
                |s, _| s.dead as i64,
            ),
            (
                "free_bytes",
                "Bytes still appendable (compactor reserve excluded)",
                |s, _| s.free as i64,
            ),
            ("records", "Live shards", |s, _| s.records as i64),
            ("failed", "1 when an I/O error failed the disk", |s, _| {
                s.failed as i64
            }),
            (
                "compaction_running",
                "1 while a segment is being compacted",
                |_, d| DiskCounters::get(&d.counters().compaction_running) as i64,
            ),
            (
                "write_queue_bytes",
                "Shard bytes admitted to the write queue and not yet durable",
                |_, d| DiskCounters::get(&d.counters().write_queue_bytes) as i64,
            ),
            (
                "write_queue_peak_bytes",
                "Most shard bytes the write queue held at once since start",
                |_, d| DiskCounters::get(&d.counters().write_queue_peak_bytes) as i64,
            ),
            (
                "scrub_pass_progress_permille",
                "Progress of the current scrub pass, in 1/1000",
                |_, d| {
                    let c = d.counters();
                    let total = DiskCounters::get(&c.scrub_pass_total).max(1);
                    (DiskCounters::get(&c.scrub_pass_done) * 1000 / total) as i64
                },
            ),
        ];
        for (name, help, f) in gauges {
            let full = format!("kdss_storage_disk_{name}");
            let g = ConstGauge::new(0i64);
            let mut me = encoder.encode_descriptor(&full, help, None, g.metric_type())?;
            for ((d, s), l) in self.disks.iter().zip(&stats).zip(&labels) {
                ConstGauge::new(f(s, d)).encode(me.encode_family(l)?)?;
            }
        }
        self.encode_io_latency(&mut encoder, &labels)?;
        self.encode_smart(&mut encoder, &labels)
    }
}

impl DiskCollector {
    /// `kdss_storage_disk_io_seconds{op="read"|"write"}`: every pread, and every pwritev
    /// and fdatasync, as the device layer timed them.
    fn encode_io_latency(
        &self,
        encoder: &mut DescriptorEncoder,
        labels: &[Labels],
    ) -> Result<(), std::fmt::Error> {
        let mut me = encoder.encode_descriptor(
            "kdss_storage_disk_io_duration_seconds",
            "Device call latency: op=read is pread, op=write is pwritev and fdatasync",
            None,
            MetricType::Histogram,
        )?;
        for (d, l) in self.disks.iter().zip(labels) {
            for (kind, op) in [(IoKind::Read, "read"), (IoKind::Write, "write")] {
                let mut l = l.clone();
                l.push(("op".into(), op.into()));
                let h = d.device().latency().histogram(kind);
                h.encode(me.encode_family(&l)?)?;
            }
        }
        Ok(())
    }

    /// The S.M.A.R.T. verdict: whether the device gave one, and whether it says failing.
    fn encode_smart(
        &self,
        encoder: &mut DescriptorEncoder,
        labels: &[Labels],
    ) -> Result<(), std::fmt::Error> {
        let smart: Vec<_> = self.disks.iter().map(|d| d.device().smart()).collect();
        let rows: [(&str, &str, SmartFn); 2] = [
            (
                "kdss_storage_disk_smart_available",
                "1 when smartctl gave a verdict for the device (0 for files, loop devices, no smartctl)",
                |s| i64::from(s.text == "PASSED" || s.text == "FAILED"),
            ),
            (
                "kdss_storage_disk_smart_failing",
                "1 when the device's own S.M.A.R.T. self-assessment reports failure",
                |s| i64::from(s.failing),
            ),
        ];
        for (name, help, f) in rows {
            let mut me = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (s, l) in smart.iter().zip(labels) {
                ConstGauge::new(f(s)).encode(me.encode_family(l)?)?;
            }
        }
        Ok(())
    }
}

impl Metrics {
    /// Registers the request metrics and a collector over `disks`.
    pub fn new(disks: Vec<Arc<Disk>>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "kdss_storage_requests",
            "gRPC requests by operation and result",
            requests.clone(),
        );
        registry.register(
            "kdss_storage_request_duration_seconds",
            "gRPC request latency by operation (put/delete include the group-commit fsync)",
            latency.clone(),
        );
        let rebuilds = Family::<Labels, Counter>::default();
        let rebuilt_bytes = Counter::default();
        let rebuild_source_bytes = Counter::default();
        registry.register(
            "kdss_storage_rebuilds",
            "RebuildShard calls by outcome (copy, decode, too_few_sources, refused, failed)",
            rebuilds.clone(),
        );
        registry.register(
            "kdss_storage_rebuilt_bytes",
            "Bytes of shards made by RebuildShard and stored here",
            rebuilt_bytes.clone(),
        );
        registry.register(
            "kdss_storage_rebuild_source_bytes",
            "Shard bytes RebuildShard fetched from other nodes",
            rebuild_source_bytes.clone(),
        );
        // Every outcome from the start, so a rule on one of them has a series at 0.
        for outcome in ["copy", "decode", "too_few_sources", "refused", "failed"] {
            let _ = rebuilds.get_or_create(&vec![("outcome".into(), outcome.into())]);
        }
        registry.register_collector(Box::new(DiskCollector { disks }));
        Metrics {
            registry,
            requests,
            latency,
            rebuilds,
            rebuilt_bytes,
            rebuild_source_bytes,
        }
    }

    /// Records one finished rebuild: its outcome, the bytes stored and the bytes fetched.
    pub fn observe_rebuild(&self, outcome: &str, stored: u64, fetched: u64) {
        self.rebuilds
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
        self.rebuilt_bytes.inc_by(stored);
        self.rebuild_source_bytes.inc_by(fetched);
    }

    /// Records one finished request.
    pub fn observe(&self, op: &str, ok: bool, seconds: f64) {
        let result = if ok { "ok" } else { "error" };
        self.requests
            .get_or_create(&vec![
                ("op".into(), op.into()),
                ("result".into(), result.into()),
            ])
            .inc();
        self.latency
            .get_or_create(&vec![("op".into(), op.into())])
            .observe(seconds);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        out
    }
}
