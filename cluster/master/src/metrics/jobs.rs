//! The leader's background engines as metrics: repair and balance queues, moves in flight
//! and done (from the one shard mover's [`MoveStatus`]), the collector's backlog and what
//! it freed, and each job's passes and last error.
//!
//! Queues and totals live in the leader's memory, so a follower exports zeros for them;
//! dashboards and alerts take the `max` over masters. The GC backlog comes from the
//! replicated database and is the same on every member.

use crate::workers::mover::state::MoveStatus;
use kdss_proto::master::JobStatus;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;

/// Advances a counter that mirrors a monotonic figure kept elsewhere.
pub fn advance(c: &Counter, to: u64) {
    c.inc_by(to.saturating_sub(c.get()));
}

/// Queue, in-flight and totals of one user of the shard mover (repair or balance).
struct MoverMetrics {
    queue_stripes: Gauge,
    queue_shards: Gauge,
    queue_bytes: Gauge,
    running: Gauge,
    moved_shards: Counter,
    moved_bytes: Counter,
    failed: Counter,
}

impl MoverMetrics {
    fn register(r: &mut Registry, job: &str, moved: &str) -> Self {
        let m = MoverMetrics {
            queue_stripes: Gauge::default(),
            queue_shards: Gauge::default(),
            queue_bytes: Gauge::default(),
            running: Gauge::default(),
            moved_shards: Counter::default(),
            moved_bytes: Counter::default(),
            failed: Counter::default(),
        };
        let names = [
            (
                "queue_stripes",
                "stripes with shards still to move in the current pass",
            ),
            ("queue_shards", "shards still to move in the current pass"),
            ("queue_bytes", "bytes of the shards still to move"),
            ("running_shards", "shard moves in flight"),
        ];
        let gauges = [
            &m.queue_stripes,
            &m.queue_shards,
            &m.queue_bytes,
            &m.running,
        ];
        for ((name, help), g) in names.into_iter().zip(gauges) {
            r.register(format!("{job}_{name}"), format!("{job}: {help}"), g.clone());
        }
        r.register(
            format!("{job}_{moved}_shards"),
            format!("{job}: shards moved and committed by this master as leader"),
            m.moved_shards.clone(),
        );
        r.register(
            format!("{job}_{moved}_bytes"),
            format!("{job}: bytes of the shards moved"),
            m.moved_bytes.clone(),
        );
        r.register(
            format!("{job}_failed_shards"),
            format!("{job}: moves that did not commit (retried by a later pass)"),
            m.failed.clone(),
        );
        m
    }

    fn update(&self, s: &MoveStatus) {
        self.queue_stripes.set(s.queued_stripes as i64);
        self.queue_shards.set(s.queued_shards as i64);
        self.queue_bytes.set(s.queued_bytes as i64);
        self.running.set(s.running_shards as i64);
        advance(&self.moved_shards, s.done_shards);
        advance(&self.moved_bytes, s.done_bytes);
        advance(&self.failed, s.failed_shards);
    }
}

/// The collector's backlog (replicated, the same on every master).
#[derive(Debug, Clone, Copy, Default)]
pub struct GcBacklog {
    pub stripes: u64,
    pub shards: u64,
    pub bytes: u64,
    pub trash_items: u64,
    pub trash_bytes: u64,
}

/// Metrics of repair, balance, GC and the job runner.
pub struct JobMetrics {
    repair: MoverMetrics,
    degraded: Family<Labels, Gauge>,
    unrepairable: Counter,
    balance: MoverMetrics,
    imbalance: Gauge<f64, AtomicU64>,
    gc_backlog: [Gauge; 5],
    gc_deleted_shards: Counter,
    gc_freed_bytes: Counter,
    gc_delete_errors: Counter,
    passes: Family<Labels, Counter>,
    last_failed: Family<Labels, Gauge>,
    last_end: Family<Labels, Gauge<f64, AtomicU64>>,
}

/// Most shards missing per stripe the degraded gauge has a series for (the widest preset,
/// 29+3, loses at most 3 and stays readable).
const MAX_MISSING_LABEL: usize = 4;

impl JobMetrics {
    /// Registers everything in `r` (prefix `kdss_master`).
    pub fn register(r: &mut Registry) -> Self {
        let repair = MoverMetrics::register(r, "repair", "rebuilt");
        let balance = MoverMetrics::register(r, "balance", "moved");
        let m = JobMetrics {
            repair,
            degraded: Family::default(),
            unrepairable: Counter::default(),
            balance,
            imbalance: Gauge::default(),
            gc_backlog: Default::default(),
            gc_deleted_shards: Counter::default(),
            gc_freed_bytes: Counter::default(),
            gc_delete_errors: Counter::default(),
            passes: Family::default(),
            last_failed: Family::default(),
            last_end: Family::default(),
        };
        r.register(
            "stripes_degraded",
            "committed stripes with shards to rebuild, by how many (missing_shards; 4 = 4 or more), as the last repair pass found them",
            m.degraded.clone(),
        );
        r.register(
            "repair_unrepairable_stripes",
            "stripes a repair pass found with fewer than k readable shards (counted once per pass)",
            m.unrepairable.clone(),
        );
        r.register(
            "balance_imbalance_ratio",
            "spread of used share between the fullest and the emptiest counted disk, 0 to 1",
            m.imbalance.clone(),
        );
        let backlog = [
            (
                "gc_pending_stripes",
                "released stripes the collector has not forgotten yet",
            ),
            ("gc_pending_shards", "their shards not deleted yet"),
            ("gc_pending_bytes", "raw bytes those shards hold"),
            ("trash_items", "entries in the recycle bin"),
            ("trash_bytes", "logical bytes of the recycle bin's entries"),
        ];
        for ((name, help), g) in backlog.into_iter().zip(&m.gc_backlog) {
            r.register(name, help, g.clone());
        }
        r.register(
            "gc_deleted_shards",
            "shards the collector deleted on storage nodes (this master as leader)",
            m.gc_deleted_shards.clone(),
        );
        r.register(
            "gc_freed_bytes",
            "bytes of the shards the collector deleted",
            m.gc_freed_bytes.clone(),
        );
        r.register(
            "gc_delete_errors",
            "shard deletes that failed (retried by a later pass)",
            m.gc_delete_errors.clone(),
        );
        r.register(
            "job_passes",
            "passes a background job (gc, repair, balance) ran on this master",
            m.passes.clone(),
        );
        r.register(
            "job_last_pass_failed",
            "1 when the job's last pass on this master ended with an error",
            m.last_failed.clone(),
        );
        r.register(
            "job_last_pass_end_timestamp_seconds",
            "Unix time the job's last pass on this master ended (0: none yet)",
            m.last_end.clone(),
        );
        m
    }

    /// Refreshes the repair figures.
    pub fn update_repair(&self, s: &MoveStatus) {
        self.repair.update(s);
        advance(&self.unrepairable, s.unrepairable_total);
        let mut by = [0u64; MAX_MISSING_LABEL];
        for (i, n) in s.queued_by_missing.iter().enumerate() {
            by[i.min(MAX_MISSING_LABEL - 1)] += n;
        }
        for (i, n) in by.iter().enumerate() {
            let l = vec![("missing_shards".to_string(), (i + 1).to_string())];
            self.degraded.get_or_create(&l).set(*n as i64);
        }
    }

    /// Refreshes the balance figures; `imbalance_pct` in percentage points.
    pub fn update_balance(&self, s: &MoveStatus, imbalance_pct: f64) {
        self.balance.update(s);
        self.imbalance.set(imbalance_pct / 100.0);
    }

    /// Refreshes the collector's backlog.
    pub fn update_gc_backlog(&self, b: GcBacklog) {
        let v = [b.stripes, b.shards, b.bytes, b.trash_items, b.trash_bytes];
        for (g, v) in self.gc_backlog.iter().zip(v) {
            g.set(v as i64);
        }
    }

    /// Refreshes one job's runner figures (and, for `gc`, what it deleted).
    pub fn update_job(&self, name: &str, s: &JobStatus) {
        let l = vec![("job".to_string(), name.to_string())];
        advance(&self.passes.get_or_create(&l), s.passes);
        self.last_failed
            .get_or_create(&l)
            .set(i64::from(!s.last_error.is_empty()));
        self.last_end
            .get_or_create(&l)
            .set(s.last_end_ns as f64 / 1e9);
        if name == "gc" {
            let total = |k: &str| s.totals.get(k).copied().unwrap_or(0);
            advance(&self.gc_deleted_shards, total("shards_deleted"));
            advance(&self.gc_freed_bytes, total("bytes_freed"));
            advance(&self.gc_delete_errors, total("delete_errors"));
        }
    }
}
