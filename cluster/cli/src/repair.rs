//! `kdss-cli repair status|run|throttle`: what the leader's repair has left to rebuild, how
//! fast it goes and when it will be done, and the operator's hand on its bandwidth.

use crate::commands::connect;
use crate::settings::Settings;
use crate::view::{self, View};
use clap::{Args, Subcommand};
use kdss_proto::master as pb;
use serde_json::json;
use std::time::Duration;

/// `repair` subcommands.
#[derive(Subcommand)]
pub enum RepairCmd {
    /// Queued, running and rebuilt shards and bytes, the rate over the last minute, ETA.
    Status(StatusArgs),
    /// Start a pass now (a disk set offline or draining starts one by itself).
    Run(StatusArgs),
    /// Set the cluster-wide rebuild bandwidth (e.g. 100MiB/s; 0 = no limit), or go back
    /// to the master config's `[repair] max_bandwidth` with --reset.
    Throttle(ThrottleArgs),
}

/// Following a repair.
#[derive(Args)]
pub struct StatusArgs {
    /// Keep printing progress to stderr every 2 s until nothing is queued or running.
    #[arg(long)]
    pub wait: bool,
}

/// The new limit.
#[derive(Args)]
pub struct ThrottleArgs {
    /// Rebuilt bytes per second, cluster-wide: 100MiB/s, 1G, 0 (no limit).
    #[arg(required_unless_present = "reset")]
    pub rate: Option<String>,
    /// Forget the run-time limit; the config file's applies again.
    #[arg(long, conflicts_with = "rate")]
    pub reset: bool,
}

/// One line of progress (`repair run --wait`, `status --wait`).
pub fn progress_line(r: &pb::RepairStatusReply) -> String {
    let total = r.done_bytes + r.queued_bytes;
    let pct = (r.done_bytes * 100).checked_div(total).unwrap_or(100);
    format!(
        "repair: {pct}% ({} of {}), {} shard(s) left, {} running, {}, ETA {}",
        view::bytes(r.done_bytes),
        view::bytes(total),
        r.queued_shards,
        r.running_shards,
        view::rate(r.rate_bytes_per_sec),
        view::eta(r.eta_sec)
    )
}

fn status_view(r: &pb::RepairStatusReply) -> View {
    let job = r.job.clone().unwrap_or_default();
    let by_missing: Vec<String> = r
        .queued_by_missing
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| format!("{n} missing {}", i + 1))
        .collect();
    let limit = if r.max_bandwidth == 0 {
        "none".to_string()
    } else {
        format!("{}/s", view::bytes(r.max_bandwidth))
    };
    let text = format!(
        "queued:       {} stripe(s), {} shard(s), {}{}\n\
         running:      {} shard(s)\n\
         rebuilt:      {} shard(s), {} (since this leader started)\n\
         failed:       {} attempt(s) (retried by the next pass)\n\
         unrepairable: {} stripe(s) with fewer than k readable shards\n\
         rate:         {} over the last minute; limit {}\n\
         ETA:          {}\n\
         last pass:    {}\n",
        r.queued_stripes,
        r.queued_shards,
        view::bytes(r.queued_bytes),
        if by_missing.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_missing.join(", "))
        },
        r.running_shards,
        r.done_shards,
        view::bytes(r.done_bytes),
        r.failed_shards,
        r.unrepairable_stripes,
        view::rate(r.rate_bytes_per_sec),
        limit,
        view::eta(r.eta_sec),
        crate::gc::last_pass(&job),
    );
    View {
        json: json!({
            "queued_stripes": r.queued_stripes, "queued_shards": r.queued_shards,
            "queued_bytes": r.queued_bytes, "queued_by_missing": r.queued_by_missing,
            "running_shards": r.running_shards, "done_shards": r.done_shards,
            "done_bytes": r.done_bytes, "failed_shards": r.failed_shards,
            "unrepairable_stripes": r.unrepairable_stripes,
            "rate_bytes_per_sec": r.rate_bytes_per_sec, "eta_sec": r.eta_sec,
            "max_bandwidth": r.max_bandwidth,
            "running": job.running, "passes": job.passes, "last_start_ns": job.last_start_ns,
            "last_end_ns": job.last_end_ns, "last_error": job.last_error,
            "interval_sec": job.interval_sec,
        }),
        text,
    }
}

/// Polls status until the queue is empty and nothing runs, printing progress to stderr.
async fn follow(
    c: &kdss_client::Client,
    mut r: pb::RepairStatusReply,
) -> anyhow::Result<pb::RepairStatusReply> {
    loop {
        let busy = r.job.as_ref().is_some_and(|j| j.running);
        if r.queued_shards == 0 && r.running_shards == 0 && !busy {
            return Ok(r);
        }
        eprintln!("{}", progress_line(&r));
        tokio::time::sleep(Duration::from_secs(2)).await;
        r = c.master().repair_status(pb::RepairStatusRequest {}).await?;
    }
}

/// Runs a `repair` subcommand.
pub async fn repair(s: &Settings, cmd: RepairCmd) -> anyhow::Result<View> {
    let c = connect(s).await?;
    let r = match cmd {
        RepairCmd::Status(a) => {
            let r = c.master().repair_status(pb::RepairStatusRequest {}).await?;
            if a.wait { follow(&c, r).await? } else { r }
        }
        RepairCmd::Run(a) => {
            let r = c
                .master()
                .repair_run(pb::GcRunRequest { wait: false })
                .await?;
            if a.wait {
                // Let the pass we asked for build its queue before following it.
                tokio::time::sleep(Duration::from_secs(1)).await;
                let r = c.master().repair_status(pb::RepairStatusRequest {}).await?;
                follow(&c, r).await?
            } else {
                r
            }
        }
        RepairCmd::Throttle(a) => {
            let max_bandwidth = match &a.rate {
                Some(v) if !a.reset => kdss_common::size::parse_rate(v)
                    .map_err(|e| anyhow::anyhow!("rate {v:?}: {e}"))?,
                _ => 0,
            };
            c.master()
                .repair_throttle(pb::RepairThrottleRequest {
                    max_bandwidth,
                    reset: a.reset,
                })
                .await?
        }
    };
    Ok(status_view(&r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_names_done_total_rate_and_eta() {
        let r = pb::RepairStatusReply {
            done_bytes: 30 << 20,
            queued_bytes: 70 << 20,
            queued_shards: 7,
            running_shards: 2,
            rate_bytes_per_sec: (10 << 20) as f64,
            eta_sec: 7,
            ..Default::default()
        };
        let l = progress_line(&r);
        assert!(l.starts_with("repair: 30%"), "{l}");
        assert!(l.contains("7 shard(s) left"), "{l}");
        assert!(l.contains("ETA 7s"), "{l}");
        assert_eq!(view::eta(-1), "unknown");
        assert_eq!(view::eta(3700), "1h01m");
        assert_eq!(view::eta(600), "10m00s");
    }
}
