//! `kdss-cli gc status|run`: the garbage collector's backlog and last pass.

use crate::commands::connect;
use crate::settings::Settings;
use crate::trash::utc;
use crate::view::{self, View};
use clap::Subcommand;
use kdss_proto::master as pb;
use serde_json::json;

/// `gc` subcommands.
#[derive(Subcommand)]
pub enum GcCmd {
    /// What is pending (stripes, shards, bytes), the bin, and the last pass.
    Status,
    /// Run a pass now and wait for it.
    Run,
}

/// A job's last (or running) pass: start -> end or "running", and its error if any.
pub fn last_pass(job: &pb::JobStatus) -> String {
    let end = if job.running {
        "running".to_string()
    } else {
        utc(job.last_end_ns)
    };
    let error = if job.last_error.is_empty() {
        String::new()
    } else {
        format!(" (error: {})", job.last_error)
    };
    format!("{} -> {end}{error}", utc(job.last_start_ns))
}

fn status_view(r: &pb::GcStatusReply) -> View {
    let job = r.job.clone().unwrap_or_default();
    let mut counters: Vec<(&String, &u64)> = job.last_pass.iter().collect();
    counters.sort();
    let mut text = format!(
        "pending:      {} stripe(s), {} shard(s), {} raw\n\
         recycle bin:  {} item(s), {}\n\
         writing:      {} stripe(s) allocated, not committed yet\n\
         last pass:    {}\n\
         passes:       {} on this leader, every {} s\n",
        r.pending_stripes,
        r.pending_shards,
        view::bytes(r.pending_bytes),
        r.trash_items,
        view::bytes(r.trash_bytes),
        r.stale_writing_stripes,
        last_pass(&job),
        job.passes,
        job.interval_sec,
    );
    for (k, v) in counters {
        text.push_str(&format!("  {k}: {v}\n"));
    }
    View {
        json: json!({
            "pending_stripes": r.pending_stripes, "pending_shards": r.pending_shards,
            "pending_bytes": r.pending_bytes, "trash_items": r.trash_items,
            "trash_bytes": r.trash_bytes, "writing_stripes": r.stale_writing_stripes,
            "running": job.running, "last_start_ns": job.last_start_ns,
            "last_end_ns": job.last_end_ns, "last_error": job.last_error,
            "passes": job.passes, "interval_sec": job.interval_sec,
            "last_pass": job.last_pass, "totals": job.totals,
        }),
        text,
    }
}

/// Runs a `gc` subcommand.
pub async fn gc(s: &Settings, cmd: GcCmd) -> anyhow::Result<View> {
    let c = connect(s).await?;
    let r = match cmd {
        GcCmd::Status => c.master().gc_status(pb::GcStatusRequest {}).await?,
        GcCmd::Run => c.master().gc_run(pb::GcRunRequest { wait: true }).await?,
    };
    Ok(status_view(&r))
}
