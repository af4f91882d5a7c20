//! `kdss bench balance`: how fast a balance moves shards with a bandwidth limit and
//! without one, and what a client gets meanwhile, beside its throughput with no balance
//! running, in the same run.
//!
//! Balance needs an uneven cluster, which only growing makes, so the bench has two steps:
//! `--fill` writes data into the cluster as it is; after `kdss up --nodes N+1` adds a node,
//! a run without `--fill` measures: the client alone, then a balance under `--limit` for
//! `--limited-secs` (stopped after), then an unlimited one for as long under the client's
//! write/read loop (where it yields to a busy client), then the same balance to the end
//! with the client gone.

use crate::bench_load::{Loop, PREFIX, fill, mib_s, round};
use kdss_client::{Client, ClientConfig};
use kdss_proto::master as pb;
use std::time::{Duration, Instant};

/// What to measure with.
pub struct BalanceBench {
    /// The cluster and the admin identity.
    pub cfg: ClientConfig,
    /// Bucket to write in.
    pub bucket: String,
    /// Fill this many bytes and stop (step one); 0 measures (step two).
    pub fill: u64,
    /// The limit of the first, timed balance (bytes/s).
    pub limit: u64,
    /// How long the limited balance runs.
    pub limited: Duration,
    /// Bytes of one foreground write-then-read round.
    pub round: u64,
}

async fn status(c: &Client) -> anyhow::Result<pb::BalanceStatusReply> {
    Ok(c.master()
        .balance_status(pb::BalanceStatusRequest {})
        .await?)
}

async fn start(c: &Client, limit: u64) -> anyhow::Result<pb::BalanceStatusReply> {
    Ok(c.master()
        .balance_start(pb::BalanceStartRequest {
            max_bandwidth: limit,
            set_bandwidth: true,
        })
        .await?)
}

/// Runs the bench and prints its figures.
pub async fn run(o: BalanceBench) -> anyhow::Result<()> {
    let c = Client::connect(o.cfg.clone()).await?;
    let b = &o.bucket;
    if o.fill > 0 {
        fill(&c, b, o.fill).await?;
        println!(
            "now add a node (kdss up --nodes N+1 on the same --data) and run \
             kdss bench balance again without --fill"
        );
        return Ok(());
    }
    let s0 = status(&c).await?;
    anyhow::ensure!(
        s0.imbalance_pct > f64::from(s0.threshold_pct),
        "the disks are within the threshold ({:.1} points of {}): fill the cluster with \
         --fill, add a node, then measure",
        s0.imbalance_pct,
        s0.threshold_pct
    );
    println!(
        "imbalance {:.1} points over {} disk(s), threshold {}",
        s0.imbalance_pct,
        s0.disks.len(),
        s0.threshold_pct
    );
    let key = format!("{PREFIX}load");
    let (w0, r0) = round(&c, b, &key, o.round).await?;
    println!(
        "no balance, foreground: write {w0:.0} MiB/s, read {r0:.0} MiB/s ({} MiB rounds)",
        o.round >> 20
    );

    // Limited, for a fixed time.
    let before = start(&c, o.limit).await?;
    let t = Instant::now();
    tokio::time::sleep(o.limited).await;
    let mid = status(&c).await?;
    let took = t.elapsed();
    c.master().balance_stop(pb::BalanceStopRequest {}).await?;
    let moved = mid.done_bytes.saturating_sub(before.done_bytes);
    let rate = mib_s(moved, took);
    println!(
        "balance limited to {} MiB/s: {} MiB moved in {:.1} s = {rate:.1} MiB/s ({:.0} % of the limit)",
        o.limit >> 20,
        moved >> 20,
        took.as_secs_f64(),
        rate * 100.0 / (o.limit as f64 / (1 << 20) as f64)
    );
    while status(&c).await?.running_shards > 0 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Unlimited under the client loop, for the same time: the balance yields to a busy
    // client ([balance] pause_client_per_disk), so this shows what the client keeps.
    let load = Loop::start(&c, b, &key, o.round);
    let before = start(&c, 0).await?;
    let t = Instant::now();
    let mut states = Vec::new();
    while t.elapsed() < o.limited {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = status(&c).await?;
        if !states.contains(&s.state) {
            states.push(s.state.clone());
        }
    }
    let mid = status(&c).await?;
    let took = t.elapsed();
    let (rounds, w1, r1) = load.stop().await?;
    let moved = mid.done_bytes.saturating_sub(before.done_bytes);
    println!(
        "balance without a limit under the client loop: {} MiB moved in {:.1} s = {:.1} MiB/s; \
         states seen: {}",
        moved >> 20,
        took.as_secs_f64(),
        mib_s(moved, took),
        states.join(" | ")
    );
    println!(
        "  foreground meanwhile ({rounds} round(s)): write {w1:.0} MiB/s ({:.0} % of no \
         balance), read {r1:.0} MiB/s ({:.0} %)",
        w1 * 100.0 / w0,
        r1 * 100.0 / r0
    );

    // The client gone, the balance runs unlimited to the end.
    let before = mid;
    let t = Instant::now();
    let end = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = status(&c).await?;
        if !s.running && s.running_shards == 0 {
            break s;
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(3600),
            "balance not done after an hour: {}",
            s.state
        );
    };
    let took = t.elapsed();
    let moved = end.done_bytes.saturating_sub(before.done_bytes);
    println!(
        "balance without a limit, client idle: {} shard(s), {} MiB in {:.1} s = {:.1} MiB/s, \
         ended {:?} with the imbalance at {:.1} points",
        end.done_shards.saturating_sub(before.done_shards),
        moved >> 20,
        took.as_secs_f64(),
        mib_s(moved, took),
        end.state,
        end.imbalance_pct
    );
    c.delete_object(b, &key).await?;
    Ok(())
}
