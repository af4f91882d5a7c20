//! Balance, the third [`Job`]: evens out disk usage after a cluster grows or a workload
//! shifts, with the same mover as repair ([`crate::workers::mover`]).
//!
//! A balance is asked for by `kdss-cli balance start` (a replicated setting, so a new
//! leader carries on) or, with `[balance] auto_start`, by the imbalance passing the
//! threshold. A pass then works in rounds until the disks are within half the threshold
//! (the margin keeps a balance from restarting at once), it is stopped, or leadership moves:
//! 1. read each disk's usage from the last heartbeats ([`usage`]);
//! 2. plan moves from the fullest disks to the emptiest ([`plan`]), never giving a node
//!    more shards of a stripe than it had;
//! 3. move them, `max_concurrent` at a time, paced by the bandwidth limit;
//! 4. wait for the nodes' next heartbeats, so the next round plans from fresh figures.
//!
//! Repair comes first: while repair has shards queued or in flight, the balance pauses.
//! Clients come first too: before each move it waits while the clients' traffic per disk
//! (from the heartbeats' counters) is over `[balance] pause_client_per_disk`, and goes on
//! once it falls under 80 % of it.

pub mod phase;
pub mod plan;
pub mod usage;

use super::mover::state::{MoveState, Queue};
use super::mover::{self, Move, Moved};
use super::{Job, Progress, Throttle};
use crate::auth::Caller;
use crate::config::BalanceSection;
use crate::membership::HEARTBEAT_INTERVAL;
use crate::placement::DiskCandidate;
use crate::service::State;
use futures::StreamExt;
use kdss_proto::master::mutation::Op;
use kdss_proto::master::{DiskStatus, SetSettingOp, StripeInfo};
pub use phase::Phase;
use plan::{DiskLoad, PlannedMove};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Replicated setting: "1" while a balance is asked for.
pub const REQUESTED_SETTING: &str = "balance.requested";
/// Replicated setting: the bandwidth `balance start --max-bandwidth` asked for.
pub const BANDWIDTH_SETTING: &str = "balance.max_bandwidth";

/// Most moves one round plans; the next round re-plans from fresh usage.
const MAX_MOVES_PER_ROUND: usize = 2048;
/// Most stripes read per source disk per round.
const MAX_STRIPES_PER_DISK: usize = 4096;

/// What the balance reports besides its moves.
#[derive(Debug, Default)]
pub struct BalanceState {
    /// Queue, progress and the byte throttle of the moves.
    pub moves: MoveState,
    phase: Mutex<Phase>,
}

impl BalanceState {
    /// What the balance does now (`balance status` shows it in words).
    pub fn phase(&self) -> Phase {
        self.phase.lock().expect("balance phase").clone()
    }

    /// An operator stopped the balance.
    pub fn stopped(&self) {
        self.set_phase(Phase::Stopped);
    }

    fn set_phase(&self, p: Phase) {
        *self.phase.lock().expect("balance phase") = p;
    }
}

/// The balance engine with its settings.
pub struct BalanceJob {
    cfg: BalanceSection,
    state: Arc<BalanceState>,
    deletes: Throttle,
}

impl BalanceJob {
    /// A balance job configured by `[balance]`, reporting into `state`.
    pub fn new(cfg: BalanceSection, state: Arc<BalanceState>) -> Self {
        BalanceJob {
            cfg,
            state,
            deletes: Throttle::new(200),
        }
    }
}

/// The bandwidth in force: what `balance start` asked for, else the config's.
pub async fn bandwidth(st: &State, cfg: &BalanceSection) -> u64 {
    match kdss_meta::repair::setting(&st.pool(), BANDWIDTH_SETTING).await {
        Ok(Some(v)) => kdss_common::size::parse_rate(&v).unwrap_or(cfg.max_bandwidth),
        _ => cfg.max_bandwidth,
    }
}

/// Whether an operator asked for a balance that has not ended.
pub async fn requested(st: &State) -> bool {
    matches!(
        kdss_meta::repair::setting(&st.pool(), REQUESTED_SETTING).await,
        Ok(Some(v)) if v == "1"
    )
}

/// Writes a replicated balance setting ("" removes it).
pub async fn set(st: &State, caller: &Caller, key: &str, value: &str) -> Result<(), String> {
    let op = SetSettingOp {
        key: key.into(),
        value: value.into(),
    };
    st.propose(caller, Op::SetSetting(op))
        .await
        .map(|_| ())
        .map_err(|e| format!("write {key}: {}", e.message()))
}

/// Repair has work queued or in flight: the balance waits for it.
fn repair_busy(st: &State) -> bool {
    let r = st.jobs.repair_state.status();
    r.queued_shards > 0 || r.running_shards > 0
}

/// The disks in service with their usage, from the last heartbeats.
fn loads(st: &State) -> Vec<DiskLoad> {
    let reg = &st.registry;
    let writable: BTreeMap<u64, DiskCandidate> = reg
        .writable_disks()
        .into_iter()
        .map(|d| (d.disk_id, d))
        .collect();
    let locations = reg.locations();
    usage::disks(&reg.reports(), |id| reg.disk_status(id))
        .into_iter()
        .filter(|d| d.counted)
        .map(|d| DiskLoad {
            writable: writable.contains_key(&d.disk_id),
            location: locations.get(&d.node_id).cloned().unwrap_or_default(),
            free: writable.get(&d.disk_id).map_or(0, |c| c.free_bytes),
            node_id: d.node_id,
            disk_id: d.disk_id,
            capacity: d.capacity_bytes,
            used: d.used_bytes,
        })
        .collect()
}

/// Live stripes with a shard on each disk fuller than the mean, for the planner.
async fn stripes_on_full_disks(
    st: &State,
    disks: &[DiskLoad],
) -> Result<BTreeMap<u64, Vec<StripeInfo>>, String> {
    let cap: u64 = disks.iter().map(|d| d.capacity).sum();
    let used: u64 = disks.iter().map(|d| d.used).sum();
    let mean = used as f64 / cap.max(1) as f64;
    let mut out = BTreeMap::new();
    for d in disks
        .iter()
        .filter(|d| d.used as f64 > mean * d.capacity as f64)
    {
        let rows = kdss_meta::repair::damaged(&st.pool(), &[d.disk_id])
            .await
            .map_err(|e| format!("read stripes on disk {:016x}: {e}", d.disk_id))?;
        let mut infos = Vec::new();
        for r in rows.into_iter().take(MAX_STRIPES_PER_DISK) {
            if let Ok(i) = kdss_meta::read::stripe_info(&st.pool(), None, r.stripe_id).await {
                infos.push(i);
            }
        }
        out.insert(d.disk_id, infos);
    }
    Ok(out)
}

impl BalanceJob {
    /// Whether this pass should balance: asked for, or automatic and over the threshold.
    async fn wanted(&self, st: &State, spread: f64) -> bool {
        requested(st).await || (self.cfg.auto_start && spread > f64::from(self.cfg.threshold_pct))
    }

    /// Moves one planned shard, if the stripe still has it where the plan saw it.
    async fn move_one(&self, st: &State, m: &PlannedMove) -> Moved {
        let Ok(info) = kdss_meta::read::stripe_info(&st.pool(), None, m.stripe_id).await else {
            return Moved::Stale;
        };
        let Some(old) = info
            .shards
            .iter()
            .find(|s| s.shard_index == m.shard_index && s.disk_id == m.from_disk)
            .cloned()
        else {
            return Moved::Stale;
        };
        let to = DiskCandidate {
            node_id: m.to_node.clone(),
            disk_id: m.to_disk,
            free_bytes: 0,
            location: Default::default(),
        };
        let sources = mover::sources(st, &info, m.shard_index, |sh| {
            match st.registry.disk_status(sh.disk_id) {
                DiskStatus::Offline => None,
                DiskStatus::Online => Some(0),
                _ => Some(1),
            }
        });
        let mv = Move {
            info: &info,
            old: &old,
            to: &to,
            sources,
            job: "balance",
        };
        mover::move_shard(st, &self.state.moves, &self.deletes, mv).await
    }

    /// One round: plan and move. Returns the moves committed.
    async fn round(
        &self,
        st: &State,
        disks: &[DiskLoad],
        progress: &Progress,
    ) -> Result<u64, String> {
        let on_disk = stripes_on_full_disks(st, disks).await?;
        let target = f64::from(self.cfg.threshold_pct) / 2.0;
        let moves = plan::plan(disks, &on_disk, target, MAX_MOVES_PER_ROUND);
        let q = Queue {
            stripes: moves.len() as u64,
            shards: moves.len() as u64,
            bytes: moves.iter().map(|m| m.bytes).sum(),
            by_missing: vec![moves.len() as u64],
        };
        self.state.moves.set_queue(&q);
        progress.add("shards_planned", q.shards);
        if moves.is_empty() {
            return Ok(0);
        }
        tracing::info!(shards = q.shards, bytes = q.bytes, "balance: round starts");
        let committed = std::sync::atomic::AtomicU64::new(0);
        futures::stream::iter(moves)
            .for_each_concurrent(self.cfg.max_concurrent as usize, |m| {
                let committed = &committed;
                async move {
                    if !st.is_leader() || !self.still_wanted(st).await {
                        return;
                    }
                    match self.move_one(st, &m).await {
                        Moved::Committed => {
                            committed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            progress.add("shards_moved", 1);
                            progress.add("bytes_moved", m.bytes);
                        }
                        Moved::Stale => progress.add("shards_skipped", 1),
                        Moved::Failed => progress.add("shards_failed", 1),
                    }
                    self.state.moves.stripe_settled();
                }
            })
            .await;
        self.state.moves.set_queue(&Queue::default());
        Ok(committed.into_inner())
    }

    /// Checked before each move: stopped, or repair needs the bandwidth; waits first
    /// while clients are busy.
    async fn still_wanted(&self, st: &State) -> bool {
        if repair_busy(st) {
            self.state.set_phase(Phase::PausedForRepair);
            return false;
        }
        self.yield_to_clients(st).await;
        st.is_leader() && (requested(st).await || self.cfg.auto_start)
    }

    /// Waits while the clients' traffic per disk is over the pause threshold (then under
    /// 80 % of it, so a load hovering at the threshold does not flap), saying so in the
    /// phase. Returns at once when the threshold is 0.
    async fn yield_to_clients(&self, st: &State) {
        let limit = self.cfg.pause_client_per_disk as f64;
        let mut paused = false;
        loop {
            let load = st.registry.client_load().per_disk();
            let over = limit > 0.0 && load > if paused { limit * 0.8 } else { limit };
            if !over || !st.is_leader() || !(requested(st).await || self.cfg.auto_start) {
                break;
            }
            if !paused {
                tracing::info!(per_disk = load, limit, "balance: clients busy; moves wait");
            }
            paused = true;
            self.state
                .set_phase(Phase::PausedForClients { load, limit });
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if paused {
            self.state.set_phase(Phase::Running);
        }
    }
}

impl Job for BalanceJob {
    fn name(&self) -> &'static str {
        "balance"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.cfg.interval_sec)
    }

    async fn pass(&self, st: Arc<State>, progress: Arc<Progress>) -> Result<(), String> {
        loop {
            if !st.is_leader() {
                return Ok(());
            }
            let disks = loads(&st);
            let spread = plan::spread(&disks);
            if !self.wanted(&st, spread).await {
                if self.state.phase().under_way() {
                    self.state.set_phase(Phase::Stopped);
                }
                return Ok(());
            }
            if repair_busy(&st) {
                self.state.set_phase(Phase::PausedForRepair);
                return Ok(());
            }
            let target = f64::from(self.cfg.threshold_pct) / 2.0;
            if spread <= target {
                self.state.set_phase(Phase::Balanced);
                if requested(&st).await {
                    set(&st, &Caller::service(), REQUESTED_SETTING, "").await?;
                }
                tracing::info!(spread, "balance: disks within target; done");
                return Ok(());
            }
            self.state
                .moves
                .set_bandwidth(bandwidth(&st, &self.cfg).await);
            if !self.state.phase().under_way() {
                crate::events::balance_started(&st, spread);
            }
            self.state.set_phase(Phase::Running);
            let moved = self.round(&st, &disks, &progress).await?;
            if moved == 0 {
                if self.state.phase() == Phase::Running {
                    self.state.set_phase(Phase::Stuck { spread });
                }
                return Ok(());
            }
            // Let every node report its new usage before planning again.
            tokio::time::sleep(HEARTBEAT_INTERVAL * 2 + Duration::from_millis(500)).await;
        }
    }
}
