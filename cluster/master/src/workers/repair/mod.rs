//! Repair, the second [`Job`]: brings back the redundancy of every stripe that has a shard
//! on a lost disk (offline or failed), a draining disk, or reported corrupt by its node.
//!
//! One pass:
//! 1. reads the damage: disk states from the replicated table, failed disks and corrupt
//!    shards from the nodes' latest heartbeats;
//! 2. queues every live, committed stripe it touches, most damaged first (a stripe with two
//!    shards to rebuild before one with one: `kdss_meta::repair::damaged`);
//! 3. repairs up to `[repair] max_concurrent` stripes at once ([`stripe::repair`]), paced
//!    by `max_bandwidth` bytes of rebuilt shards per second.
//!
//! Nothing lives only in memory: a stripe's repair is done once the map points away from
//! the damaged disk, so a new leader's pass (after a leader change or a crash) rebuilds
//! exactly what is still left.

pub mod config;
pub mod stripe;

use super::{Job, Progress, Throttle};
use crate::service::State;
use crate::workers::mover::state::{MoveState, Queue};
use config::{RepairSection, parse_bandwidth};
use futures::StreamExt;
use kdss_proto::master::DiskStatus;
use kdss_proto::storage::DiskState;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use stripe::{Damage, Outcome};

/// The replicated setting `kdss-cli repair throttle` writes.
pub const BANDWIDTH_SETTING: &str = "repair.max_bandwidth";

/// The repair engine with its settings.
pub struct RepairJob {
    cfg: RepairSection,
    state: Arc<MoveState>,
    deletes: Throttle,
}

impl RepairJob {
    /// A repair job configured by `[repair]`, reporting into `state`.
    pub fn new(cfg: RepairSection, state: Arc<MoveState>) -> Self {
        RepairJob {
            cfg,
            state,
            deletes: Throttle::new(200),
        }
    }
}

/// The bandwidth in force: the operator's run-time setting, else the config's.
pub async fn bandwidth(st: &State, cfg: &RepairSection) -> u64 {
    match kdss_meta::repair::setting(&st.pool(), BANDWIDTH_SETTING).await {
        Ok(Some(v)) => parse_bandwidth(&v).unwrap_or_else(|_| cfg.bandwidth()),
        _ => cfg.bandwidth(),
    }
}

/// Reads the damage the cluster has now.
async fn damage(st: &State) -> Result<Damage, String> {
    let mut d = Damage::default();
    let rows = kdss_meta::disks::list(&st.pool())
        .await
        .map_err(|e| format!("read disk states: {e}"))?;
    for r in rows {
        match r.status {
            DiskStatus::Offline => {
                d.lost.insert(r.disk_id);
            }
            DiskStatus::Draining => {
                d.draining.insert(r.disk_id);
            }
            _ => {}
        }
    }
    for n in st.registry.reports() {
        for disk in &n.disks {
            if disk.state == DiskState::Failed as i32 {
                d.lost.insert(disk.disk_id);
            }
            if n.online {
                for k in &disk.corrupt_shards {
                    d.corrupt.insert((k.stripe_id, k.shard_index, disk.disk_id));
                }
            }
        }
    }
    Ok(d)
}

impl Job for RepairJob {
    fn name(&self) -> &'static str {
        "repair"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.cfg.interval_sec)
    }

    fn automatic(&self) -> bool {
        self.cfg.enabled
    }

    async fn pass(&self, st: Arc<State>, progress: Arc<Progress>) -> Result<(), String> {
        self.state.set_bandwidth(bandwidth(&st, &self.cfg).await);
        let damage = damage(&st).await?;
        let disks: Vec<u64> = damage
            .lost
            .iter()
            .chain(&damage.draining)
            .copied()
            .collect();
        let mut queue = kdss_meta::repair::damaged(&st.pool(), &disks)
            .await
            .map_err(|e| format!("read damaged stripes: {e}"))?;
        // Corrupt shards on healthy disks join the queue as one shard each.
        let mut extra: BTreeMap<u64, u32> = BTreeMap::new();
        for (stripe, _, _) in &damage.corrupt {
            if !queue.iter().any(|q| q.stripe_id == *stripe) {
                *extra.entry(*stripe).or_default() += 1;
            }
        }
        for (stripe_id, shards) in extra {
            if let Ok(Some(s)) = kdss_meta::read::stripe_state(&st.pool(), stripe_id).await
                && s.committed
                && !s.released
                && let Ok(info) = kdss_meta::read::stripe_info(&st.pool(), None, stripe_id).await
            {
                queue.push(kdss_meta::repair::Damaged {
                    stripe_id,
                    shards,
                    m: info.m,
                    shard_len: info.shard_len,
                });
            }
        }
        queue.sort_by_key(|q| (i64::from(q.m) - i64::from(q.shards), q.stripe_id));
        let mut q = Queue {
            stripes: queue.len() as u64,
            ..Default::default()
        };
        for d in &queue {
            q.shards += u64::from(d.shards);
            q.bytes += u64::from(d.shards) * d.shard_len;
            let i = d.shards.max(1) as usize - 1;
            if q.by_missing.len() <= i {
                q.by_missing.resize(i + 1, 0);
            }
            q.by_missing[i] += 1;
        }
        self.state.set_queue(&q);
        progress.add("stripes_queued", q.stripes);
        progress.add("shards_queued", q.shards);
        if queue.is_empty() {
            self.state.pass_ended();
            return Ok(());
        }
        tracing::info!(
            stripes = q.stripes,
            shards = q.shards,
            bytes = q.bytes,
            "repair: pass starts"
        );
        let damage = &damage;
        let st = &st;
        // What this pass leaves for the next one: the stripes to retry.
        let left = std::sync::Mutex::new(Queue::default());
        futures::stream::iter(queue)
            .for_each_concurrent(self.cfg.max_concurrent as usize, |d| {
                let progress = progress.clone();
                let left = &left;
                async move {
                    if !st.is_leader() {
                        return;
                    }
                    let out =
                        stripe::repair(st, &self.state, &self.deletes, damage, d.stripe_id).await;
                    match out {
                        Outcome::Done => {
                            self.state.stripe_settled();
                            progress.add("stripes_repaired", 1);
                        }
                        Outcome::Retry => {
                            progress.add("stripes_to_retry", 1);
                            let mut l = left.lock().expect("repair leftovers");
                            l.stripes += 1;
                            l.shards += u64::from(d.shards);
                            l.bytes += u64::from(d.shards) * d.shard_len;
                        }
                        Outcome::Unrepairable => {
                            self.state.unrepairable();
                            progress.add("stripes_unrepairable", 1);
                        }
                    }
                }
            })
            .await;
        // Stripes settled without a rebuild (deleted or rewritten meanwhile) leave the
        // figures here; what remains is what the next pass retries.
        if st.is_leader() {
            self.state
                .set_queue(&left.into_inner().expect("repair leftovers"));
            self.state.pass_ended();
        }
        crate::events::repair_done(st, &progress.snapshot());
        Ok(())
    }
}
