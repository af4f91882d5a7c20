//! `kdss bench repair`: how fast the redundancy of a lost disk comes back, on an idle
//! cluster and under a client load, beside the client's own throughput on the healthy
//! cluster measured in the same run.
//!
//! It fills the bucket, measures a sequential write and read, then takes the disk with the
//! most shards offline (as the health pass does with a dead disk: its shards are decoded
//! from the others) and times the repair until the map names no shard on it. Then it does
//! the same with a second disk while the write/read loop runs. Both disks are put back
//! online at the end (empty: their old records are garbage the inventory collects), and
//! the objects it wrote are deleted.

use crate::bench_load::{Loop, PREFIX, clean, fill, mib_s, round};
use kdss_client::{Client, ClientConfig};
use kdss_proto::master as pb;
use std::time::{Duration, Instant};

/// What to measure with.
pub struct RepairBench {
    /// The cluster and the admin identity.
    pub cfg: ClientConfig,
    /// Bucket to fill.
    pub bucket: String,
    /// Object bytes written before the first disk is lost.
    pub fill: u64,
    /// Bytes of one foreground write/read round.
    pub round: u64,
}

/// The disk with the most shards mapped to it, other than `not`.
async fn fullest_disk(c: &Client, not: &[u64]) -> anyhow::Result<pb::DiskEntry> {
    let disks = c.master().list_disks(pb::ListDisksRequest {}).await?.disks;
    disks
        .into_iter()
        .filter(|d| d.status == pb::DiskStatus::Online as i32)
        .filter(|d| d.info.as_ref().is_some_and(|i| !not.contains(&i.disk_id)))
        .max_by_key(|d| d.mapped_shards)
        .ok_or_else(|| anyhow::anyhow!("no online disk left to take offline"))
}

async fn set_state(c: &Client, disk_id: u64, s: pb::DiskStatus) -> anyhow::Result<()> {
    c.master()
        .set_disk_state(pb::SetDiskStateRequest {
            disk_id,
            status: s as i32,
            reason: "kdss bench repair".into(),
        })
        .await?;
    Ok(())
}

/// What one lost disk cost.
struct Loss {
    shards: u64,
    bytes: u64,
    took: Duration,
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  rebuilt {} shard(s), {} MiB, full redundancy after {:.1} s: {:.0} MiB/s",
            self.shards,
            self.bytes >> 20,
            self.took.as_secs_f64(),
            mib_s(self.bytes, self.took)
        )
    }
}

/// Takes `disk` offline and waits until a repair pass that started after it ended with
/// nothing queued or running.
async fn lose(c: &Client, disk: &pb::DiskEntry) -> anyhow::Result<Loss> {
    let id = disk.info.as_ref().map_or(0, |i| i.disk_id);
    let before = c.master().repair_status(pb::RepairStatusRequest {}).await?;
    let passes = before.job.as_ref().map_or(0, |j| j.passes);
    let t0 = Instant::now();
    set_state(c, id, pb::DiskStatus::Offline).await?;
    let mut last_print = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let r = c.master().repair_status(pb::RepairStatusRequest {}).await?;
        let job = r.job.clone().unwrap_or_default();
        if last_print.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  {} shard(s) queued, {:.1} MiB/s, ETA {} s",
                r.queued_shards,
                r.rate_bytes_per_sec / (1 << 20) as f64,
                r.eta_sec
            );
            last_print = Instant::now();
        }
        anyhow::ensure!(
            r.unrepairable_stripes == before.unrepairable_stripes,
            "repair found unrepairable stripes: {r:?}"
        );
        if job.passes > passes && !job.running && r.queued_shards == 0 && r.running_shards == 0 {
            return Ok(Loss {
                shards: r.done_shards.saturating_sub(before.done_shards),
                bytes: r.done_bytes.saturating_sub(before.done_bytes),
                took: t0.elapsed(),
            });
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(3600),
            "repair not done after an hour"
        );
    }
}

/// Runs the bench and prints its figures.
pub async fn run(o: RepairBench) -> anyhow::Result<()> {
    let c = Client::connect(o.cfg.clone()).await?;
    let b = &o.bucket;
    let r = c.master().repair_status(pb::RepairStatusRequest {}).await?;
    let limit = if r.max_bandwidth == 0 {
        "none".to_string()
    } else {
        format!("{} MiB/s", r.max_bandwidth >> 20)
    };
    println!("repair bandwidth limit in force: {limit} (kdss-cli repair throttle changes it)");

    let filled = fill(&c, b, o.fill).await?;

    let key = format!("{PREFIX}load");
    let (w0, r0) = round(&c, b, &key, o.round).await?;
    println!(
        "healthy cluster, foreground: write {w0:.0} MiB/s, read {r0:.0} MiB/s ({} MiB rounds)",
        o.round >> 20
    );

    let first = fullest_disk(&c, &[]).await?;
    let first_id = first.info.as_ref().map_or(0, |i| i.disk_id);
    println!(
        "losing disk {first_id:016x} on {} ({} shard(s) mapped), idle cluster",
        first.node_id, first.mapped_shards
    );
    let idle = lose(&c, &first).await?;
    println!("{idle}");

    let second = fullest_disk(&c, &[first_id]).await?;
    let second_id = second.info.as_ref().map_or(0, |i| i.disk_id);
    println!(
        "losing disk {second_id:016x} on {} ({} shard(s) mapped), under a write/read loop",
        second.node_id, second.mapped_shards
    );
    let load = Loop::start(&c, b, &key, o.round);
    let busy = lose(&c, &second).await;
    let (rounds, w1, r1) = load.stop().await?;
    let busy = busy?;
    println!("{busy}");
    println!(
        "  foreground meanwhile ({rounds} round(s)): write {w1:.0} MiB/s ({:.0} % of healthy), \
         read {r1:.0} MiB/s ({:.0} %)",
        w1 * 100.0 / w0,
        r1 * 100.0 / r0
    );

    for id in [first_id, second_id] {
        set_state(&c, id, pb::DiskStatus::Online).await?;
    }
    clean(&c, b, filled, &key).await?;
    println!("both disks are back online (empty); the bench's objects are deleted");
    Ok(())
}
