//! Prometheus metrics of a master: Raft position (term, leader, commit and apply index, apply
//! lag), log group-commit counters, and a latency histogram per operation; the cluster as
//! this master sees it ([`cluster`]: nodes, disks, capacity, replication lag) and the
//! leader's background jobs ([`jobs`]: repair, balance, GC). Every name is listed with
//! its type, labels and meaning in docs/metrics.md.

pub mod cluster;
pub mod jobs;

use crate::raft::log_store::LogStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Label of the per-operation histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    /// The gRPC method, e.g. `create`.
    pub op: String,
}

/// The master's metrics.
pub struct Metrics {
    registry: std::sync::Mutex<Registry>,
    term: Gauge,
    leader: Gauge,
    leader_id: Gauge,
    commit_index: Gauge,
    applied_index: Gauge,
    apply_lag: Gauge,
    capacity_raw: Gauge,
    capacity_used: Gauge,
    capacity_alert: Gauge,
    capacity_rejecting: Gauge,
    log_batches: Counter,
    log_entries: Counter,
    ops: Family<OpLabel, Histogram>,
    log_stats: Arc<LogStats>,
    /// Nodes, disks, capacity and replication gauges.
    pub cluster: cluster::ClusterGauges,
    /// Repair, balance and GC metrics.
    pub jobs: jobs::JobMetrics,
}

impl Metrics {
    /// Registers every metric; `log_stats` are the log store's counters.
    pub fn new(log_stats: Arc<LogStats>) -> Self {
        let mut r = Registry::with_prefix("kdss_master");
        let cluster = cluster::ClusterGauges::register(&mut r);
        let jobs = jobs::JobMetrics::register(&mut r);
        let m = Metrics {
            registry: std::sync::Mutex::new(Registry::default()),
            term: Gauge::default(),
            leader: Gauge::default(),
            leader_id: Gauge::default(),
            commit_index: Gauge::default(),
            applied_index: Gauge::default(),
            apply_lag: Gauge::default(),
            capacity_raw: Gauge::default(),
            capacity_used: Gauge::default(),
            capacity_alert: Gauge::default(),
            capacity_rejecting: Gauge::default(),
            log_batches: Counter::default(),
            log_entries: Counter::default(),
            ops: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 16))
            }),
            log_stats,
            cluster,
            jobs,
        };
        r.register("raft_term", "current Raft term", m.term.clone());
        r.register(
            "raft_is_leader",
            "1 if this master is the leader",
            m.leader.clone(),
        );
        r.register(
            "raft_leader_id",
            "id of the current leader (0 = none)",
            m.leader_id.clone(),
        );
        r.register(
            "raft_commit_index",
            "last committed log index",
            m.commit_index.clone(),
        );
        r.register(
            "raft_applied_index",
            "last applied log index",
            m.applied_index.clone(),
        );
        r.register(
            "raft_apply_lag_entries",
            "committed but not yet applied entries",
            m.apply_lag.clone(),
        );
        r.register(
            "raft_log_batches",
            "log transactions (fsyncs)",
            m.log_batches.clone(),
        );
        r.register(
            "raft_log_entries",
            "log entries written",
            m.log_entries.clone(),
        );
        r.register(
            "op_duration_seconds",
            "latency of master operations by gRPC method",
            m.ops.clone(),
        );
        r.register(
            "capacity_raw_bytes",
            "raw capacity of the online disks",
            m.capacity_raw.clone(),
        );
        r.register(
            "capacity_used_bytes",
            "raw bytes used on the online disks (live and not yet compacted)",
            m.capacity_used.clone(),
        );
        r.register(
            "capacity_alert",
            "1 when the used share reached [capacity] alert_pct",
            m.capacity_alert.clone(),
        );
        r.register(
            "capacity_writes_refused",
            "1 when the used share reached [capacity] reject_pct and new stripes are refused",
            m.capacity_rejecting.clone(),
        );
        *m.registry.lock().expect("metrics lock") = r;
        m
    }

    /// Records one operation's latency.
    pub fn observe(&self, op: &str, started: Instant) {
        self.ops
            .get_or_create(&OpLabel { op: op.to_string() })
            .observe(started.elapsed().as_secs_f64());
    }

    /// Refreshes the Raft gauges from openraft's metrics.
    pub fn update_raft(&self, term: u64, is_leader: bool, leader: Option<u64>, applied: u64) {
        let commit = self
            .log_stats
            .committed_index
            .load(Ordering::Relaxed)
            .max(applied);
        self.term.set(term as i64);
        self.leader.set(i64::from(is_leader));
        self.leader_id.set(leader.unwrap_or(0) as i64);
        self.commit_index.set(commit as i64);
        self.applied_index.set(applied as i64);
        self.apply_lag.set(commit.saturating_sub(applied) as i64);
        let b = self.log_stats.batches.load(Ordering::Relaxed);
        let e = self.log_stats.entries.load(Ordering::Relaxed);
        jobs::advance(&self.log_batches, b);
        jobs::advance(&self.log_entries, e);
    }

    /// Refreshes the capacity gauges from `c`: raw and used bytes, and whether the used
    /// share reached the alert and reject thresholds (percent).
    pub fn update_capacity(
        &self,
        c: &crate::membership::Capacity,
        ec: kdss_common::EcPolicy,
        alert_pct: u8,
        reject_pct: u8,
    ) {
        self.cluster.update_capacity(c, ec);
        let reached = |t: u8| i64::from(c.used_pct().is_some_and(|p| p >= u64::from(t)));
        self.capacity_raw.set(c.capacity as i64);
        self.capacity_used.set(c.used as i64);
        self.capacity_alert.set(reached(alert_pct));
        self.capacity_rejecting.set(reached(reject_pct));
    }

    /// Last committed index known.
    pub fn commit_index(&self) -> u64 {
        self.commit_index.get() as u64
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let r = self.registry.lock().expect("metrics lock");
        let _ = prometheus_client::encoding::text::encode(&mut s, &r);
        s
    }
}
