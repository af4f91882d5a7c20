//! `kdss-cli balance status|start|stop`: a bar per disk with its used share, the imbalance
//! (how many percentage points lie between the fullest and the emptiest disk in service)
//! against `[balance] threshold_pct`, and a balance's progress: moved and remaining
//! shards and bytes, rate, ETA.

use crate::commands::connect;
use crate::settings::Settings;
use crate::view::{self, View};
use clap::{Args, Subcommand};
use kdss_proto::master as pb;
use serde_json::json;
use std::time::Duration;

/// `balance` subcommands.
#[derive(Subcommand)]
pub enum BalanceCmd {
    /// Each disk's used share as a bar, the imbalance (fullest minus emptiest online
    /// disk, in percentage points; offline, draining and failed disks and disks of silent
    /// nodes are shown but not counted) against the master's [balance] threshold_pct, and
    /// whether a balance runs. Used means live shard bytes of the disk's capacity, as the
    /// node last reported them (the USE% of `disk list`).
    Status(FollowArgs),
    /// Move shards from the fullest disks to the emptiest until the imbalance is within
    /// half the threshold. Runs on the master leader (a new leader carries on); pauses
    /// while repair has work. Each shard is copied, committed only if its stripe is
    /// unchanged, and its old copy deleted last.
    Start(StartArgs),
    /// Stop a balance: moves in flight finish, no new one starts.
    Stop,
}

/// Following a balance.
#[derive(Args)]
pub struct FollowArgs {
    /// Keep printing progress to stderr every 2 s until the balance ends.
    #[arg(long)]
    pub wait: bool,
}

/// How a balance runs.
#[derive(Args)]
pub struct StartArgs {
    /// Moved bytes per second, cluster-wide (100MB/s, 1GiB, 0 = no limit). Without it
    /// the master config's `[balance] max_bandwidth` applies.
    #[arg(long)]
    pub max_bandwidth: Option<String>,
    /// Follow its progress until it ends.
    #[arg(long)]
    pub wait: bool,
}

/// Cells of the usage bar.
const BAR_WIDTH: usize = 20;

/// `████████░░░░  54%`: the share filled, rounded to the nearest cell.
fn bar(pct: f64) -> String {
    let filled = ((pct.clamp(0.0, 100.0) / 100.0) * BAR_WIDTH as f64).round() as usize;
    format!(
        "{}{} {:>3.0}%",
        "█".repeat(filled),
        "░".repeat(BAR_WIDTH - filled),
        pct
    )
}

/// `node-1/disk-0.img`, `node-7/sda`: the node and the last part of the device path.
fn disk_name(d: &pb::BalanceDisk) -> String {
    let dev = std::path::Path::new(&d.path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{:016x}", d.disk_id));
    format!("{}/{dev}", d.node_id)
}

/// What a balance is doing, as the leader says.
fn state_text(r: &pb::BalanceStatusReply) -> String {
    if r.state.is_empty() {
        "no balance running".into()
    } else {
        r.state.clone()
    }
}

/// One line of progress (`balance start --wait`, `status --wait`).
pub fn progress_line(r: &pb::BalanceStatusReply) -> String {
    format!(
        "balance: {} — imbalance {:.1} points (threshold {}); moved {} shard(s), {}; \
         {} shard(s) ({}) left this round, {} running; {}, ETA {}",
        state_text(r),
        r.imbalance_pct,
        r.threshold_pct,
        r.done_shards,
        view::bytes(r.done_bytes),
        r.queued_shards,
        view::bytes(r.queued_bytes),
        r.running_shards,
        view::rate(r.rate_bytes_per_sec),
        view::eta(r.eta_sec),
    )
}

fn limit(bytes_per_sec: u64) -> String {
    if bytes_per_sec == 0 {
        "unlimited".into()
    } else {
        format!("{}/s", view::bytes(bytes_per_sec))
    }
}

fn status_view(r: &pb::BalanceStatusReply) -> View {
    let over = r.imbalance_pct > f64::from(r.threshold_pct);
    let rows: Vec<Vec<String>> = r
        .disks
        .iter()
        .map(|d| {
            vec![
                disk_name(d),
                format!("{:016x}", d.disk_id),
                if d.counted {
                    d.state.clone()
                } else {
                    format!("{} (not counted)", d.state)
                },
                view::bytes(d.used_bytes),
                view::bytes(d.capacity_bytes),
                bar(d.used_pct),
            ]
        })
        .collect();
    let mut text = view::table(&["DISK", "ID", "STATE", "USED", "SIZE", "USE"], &rows);
    let counted = r.disks.iter().filter(|d| d.counted).count();
    text.push_str(&format!(
        "\nimbalance:  {:.1} points between the fullest and the emptiest of {counted} disk(s) \
         in service; threshold {} points: {}\n\
         balance:    {} (max bandwidth {})\n\
         moved:      {} shard(s), {} (since this leader started); {} failed\n\
         this round: {} shard(s), {} left, {} running\n\
         rate:       {} over the last minute; ETA {}\n",
        r.imbalance_pct,
        r.threshold_pct,
        if over { "over" } else { "within" },
        state_text(r),
        limit(r.max_bandwidth),
        r.done_shards,
        view::bytes(r.done_bytes),
        r.failed_shards,
        r.queued_shards,
        view::bytes(r.queued_bytes),
        r.running_shards,
        view::rate(r.rate_bytes_per_sec),
        view::eta(r.eta_sec),
    ));
    let disks: Vec<serde_json::Value> = r
        .disks
        .iter()
        .map(|d| {
            json!({
                "name": disk_name(d), "node": d.node_id, "disk_id": format!("{:016x}", d.disk_id),
                "path": d.path, "state": d.state, "counted": d.counted,
                "capacity_bytes": d.capacity_bytes, "used_bytes": d.used_bytes,
                "used_pct": d.used_pct,
            })
        })
        .collect();
    View {
        json: json!({
            "disks": disks,
            "imbalance_pct": r.imbalance_pct,
            "threshold_pct": r.threshold_pct,
            "over_threshold": over,
            "max_bandwidth_bytes_per_sec": r.max_bandwidth,
            "balance": {
                "running": r.running, "state": state_text(r),
                "moved_shards": r.done_shards, "moved_bytes": r.done_bytes,
                "failed_shards": r.failed_shards,
                "queued_shards": r.queued_shards, "queued_bytes": r.queued_bytes,
                "running_shards": r.running_shards,
                "rate_bytes_per_sec": r.rate_bytes_per_sec, "eta_sec": r.eta_sec,
                "passes": r.job.as_ref().map_or(0, |j| j.passes),
                "last_error": r.job.as_ref().map(|j| j.last_error.clone()).unwrap_or_default(),
            },
        }),
        text,
    }
}

/// Polls status while a balance is asked for, printing progress to stderr.
async fn follow(
    c: &kdss_client::Client,
    mut r: pb::BalanceStatusReply,
) -> anyhow::Result<pb::BalanceStatusReply> {
    while r.running || r.running_shards > 0 {
        eprintln!("{}", progress_line(&r));
        tokio::time::sleep(Duration::from_secs(2)).await;
        r = c
            .master()
            .balance_status(pb::BalanceStatusRequest {})
            .await?;
    }
    Ok(r)
}

/// Runs a `balance` subcommand.
pub async fn balance(s: &Settings, cmd: BalanceCmd) -> anyhow::Result<View> {
    let c = connect(s).await?;
    let r = match cmd {
        BalanceCmd::Status(a) => {
            let r = c
                .master()
                .balance_status(pb::BalanceStatusRequest {})
                .await?;
            if a.wait { follow(&c, r).await? } else { r }
        }
        BalanceCmd::Start(a) => {
            let max_bandwidth = match &a.max_bandwidth {
                Some(v) => Some(
                    kdss_common::size::parse_rate(v)
                        .map_err(|e| anyhow::anyhow!("--max-bandwidth {v:?}: {e}"))?,
                ),
                None => None,
            };
            let r = c
                .master()
                .balance_start(pb::BalanceStartRequest {
                    max_bandwidth: max_bandwidth.unwrap_or(0),
                    set_bandwidth: max_bandwidth.is_some(),
                })
                .await?;
            if a.wait { follow(&c, r).await? } else { r }
        }
        BalanceCmd::Stop => c.master().balance_stop(pb::BalanceStopRequest {}).await?,
    };
    Ok(status_view(&r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_its_share_of_cells() {
        assert_eq!(bar(0.0), format!("{}   0%", "░".repeat(20)));
        assert_eq!(
            bar(82.0),
            format!("{}{}  82%", "█".repeat(16), "░".repeat(4))
        );
        assert_eq!(bar(100.0), format!("{} 100%", "█".repeat(20)));
        assert_eq!(bar(140.0).chars().filter(|c| *c == '█').count(), 20);
    }

    #[test]
    fn the_text_names_disks_and_says_no_balance_runs() {
        let r = pb::BalanceStatusReply {
            disks: vec![
                pb::BalanceDisk {
                    node_id: "node-1".into(),
                    disk_id: 0xab,
                    path: "/data/node-1/disk-3.img".into(),
                    capacity_bytes: 100 << 20,
                    used_bytes: 82 << 20,
                    used_pct: 82.0,
                    state: "online".into(),
                    counted: true,
                },
                pb::BalanceDisk {
                    node_id: "node-2".into(),
                    disk_id: 0xcd,
                    path: "/dev/sda".into(),
                    capacity_bytes: 100 << 20,
                    used_bytes: 0,
                    used_pct: 0.0,
                    state: "draining".into(),
                    counted: false,
                },
            ],
            imbalance_pct: 0.0,
            threshold_pct: 10,
            max_bandwidth: 100 << 20,
            running: false,
            ..Default::default()
        };
        let v = status_view(&r);
        assert!(v.text.contains("node-1/disk-3.img"), "{}", v.text);
        assert!(v.text.contains("node-2/sda"), "{}", v.text);
        assert!(v.text.contains("draining (not counted)"), "{}", v.text);
        assert!(v.text.contains("no balance running"), "{}", v.text);
        assert!(v.text.contains("100.0 MiB/s"), "{}", v.text);
        assert_eq!(v.json["balance"]["state"], "no balance running");
        assert_eq!(v.json["disks"][0]["disk_id"], "00000000000000ab");
        assert_eq!(v.json["over_threshold"], false);
    }
}
