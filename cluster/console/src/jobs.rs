//! Repair, GC and balance as one table: state, progress, rate and ETA, read from the
//! leader's status calls (the same figures `kdss-cli repair|gc|balance status` prints).

use crate::backend::Backend;
use crate::data::bytes;
use crate::error::ConsoleError;
use kdss_proto::master as pb;
use serde::Serialize;

/// One background job.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    /// repair, gc or balance.
    pub name: &'static str,
    /// Whether a pass runs now.
    pub running: bool,
    /// One line on what it does.
    pub state: String,
    /// Done of (done + queued) in percent; None when nothing is queued or done.
    pub progress_pct: Option<f64>,
    /// Work left, human-readable.
    pub queued: String,
    /// Work done since this leader started, human-readable.
    pub done: String,
    /// Bytes per second over the last minute.
    pub rate: String,
    /// "-" when unknown.
    pub eta: String,
    /// Passes since this leader started.
    pub passes: u64,
    /// The last pass's error, if any.
    pub last_error: String,
}

fn progress(done: u64, queued: u64) -> Option<f64> {
    (done + queued > 0).then(|| done as f64 * 100.0 / (done + queued) as f64)
}

fn eta(sec: i64) -> String {
    match sec {
        s if s < 0 => "-".into(),
        0 => "done".into(),
        s if s < 120 => format!("{s} s"),
        s => format!("{} min", s / 60),
    }
}

fn rate(bps: f64) -> String {
    format!("{}/s", bytes(bps as u64))
}

/// The three jobs.
pub async fn jobs(b: &Backend) -> Result<Vec<JobRow>, ConsoleError> {
    let r = b.read().repair_status(pb::RepairStatusRequest {}).await?;
    let g = b.read().gc_status(pb::GcStatusRequest {}).await?;
    let bl = b.read().balance_status(pb::BalanceStatusRequest {}).await?;
    let job = |j: &Option<pb::JobStatus>| {
        let j = j.clone().unwrap_or_default();
        (j.running, j.passes, j.last_error)
    };
    let (rr, rp, re) = job(&r.job);
    let (gr, gp, ge) = job(&g.job);
    let (br, bp, be) = job(&bl.job);
    Ok(vec![
        JobRow {
            name: "repair",
            running: rr || r.running_shards > 0,
            state: if r.unrepairable_stripes > 0 {
                format!("{} stripes unrepairable", r.unrepairable_stripes)
            } else if r.queued_stripes > 0 {
                format!("{} stripes to rebuild", r.queued_stripes)
            } else {
                "nothing to repair".into()
            },
            progress_pct: progress(r.done_bytes, r.queued_bytes),
            queued: format!("{} shards, {}", r.queued_shards, bytes(r.queued_bytes)),
            done: format!("{} shards, {}", r.done_shards, bytes(r.done_bytes)),
            rate: rate(r.rate_bytes_per_sec),
            eta: eta(r.eta_sec),
            passes: rp,
            last_error: re,
        },
        JobRow {
            name: "gc",
            running: gr,
            state: format!(
                "{} stripes pending, {} items in the recycle bin",
                g.pending_stripes, g.trash_items
            ),
            progress_pct: None,
            queued: format!("{} shards, {}", g.pending_shards, bytes(g.pending_bytes)),
            done: "-".into(),
            rate: "-".into(),
            eta: "-".into(),
            passes: gp,
            last_error: ge,
        },
        JobRow {
            name: "balance",
            running: br || bl.running,
            state: format!("{} (imbalance {:.1}%)", bl.state, bl.imbalance_pct),
            progress_pct: progress(bl.done_bytes, bl.queued_bytes),
            queued: format!("{} shards, {}", bl.queued_shards, bytes(bl.queued_bytes)),
            done: format!("{} shards, {}", bl.done_shards, bytes(bl.done_bytes)),
            rate: rate(bl.rate_bytes_per_sec),
            eta: eta(bl.eta_sec),
            passes: bp,
            last_error: be,
        },
    ])
}
