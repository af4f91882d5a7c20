//! The health loop. Every member refreshes its cache of the replicated disk states each
//! interval (so a member that becomes leader places and grants with the table's states, not
//! a blank cache). On the leader, each interval is one window: it reads the nodes' latest
//! reports, finds slow disks, judges every disk and proposes the changes as
//! `SetDiskStateOp`s. Window counts live in memory; a new leader starts counting afresh,
//! which only delays a change by a few windows.

use super::config::HealthSection;
use super::slow::{LatencyView, SlowRule, slow_disks};
use super::state::{Current, Signals, Tracker, judge};
use crate::auth::Caller;
use crate::service::State;
use kdss_proto::master::mutation::Op;
use kdss_proto::master::{DiskStatus, SetDiskStateOp};
use kdss_proto::storage::DiskState;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// Per-disk memory of the leader's pass.
#[derive(Debug, Default)]
struct Memory {
    trackers: HashMap<u64, Tracker>,
    /// Error counters (I/O + checksum) at the previous window.
    errors: HashMap<u64, u64>,
    /// Nodes online at the previous window (a node that leaves this set is reported lost).
    online_nodes: std::collections::BTreeSet<String>,
}

/// Reloads the cached disk states from the replicated table.
pub async fn refresh(st: &State) -> Result<(), tonic::Status> {
    let rows = crate::meta_api::disk_states(&st.pool()).await?;
    st.registry.set_states(rows);
    Ok(())
}

/// Runs until `stop`.
pub async fn run(st: Arc<State>, cfg: HealthSection, mut stop: watch::Receiver<bool>) {
    let mut mem = Memory::default();
    loop {
        if let Err(e) = refresh(&st).await {
            tracing::warn!(error = %e, "cannot read disk states");
        } else if st.is_leader() {
            leader_window(&st, &cfg, &mut mem).await;
        } else {
            mem = Memory::default();
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.interval()) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Judges one window and records the changes.
async fn leader_window(st: &State, cfg: &HealthSection, mem: &mut Memory) {
    crate::events::node_transitions(st, &mut mem.online_nodes);
    let mut changed = false;
    for op in window(st, cfg, mem) {
        tracing::warn!(
            node = %op.node_id,
            disk = format!("{:016x}", op.disk_id),
            status = super::status_name(DiskStatus::try_from(op.status).unwrap_or_default()),
            reason = %op.reason,
            "disk state changes"
        );
        match st
            .propose(&Caller::service(), Op::SetDiskState(op.clone()))
            .await
        {
            Ok(_) => {
                changed = true;
                crate::events::disk_state(st, &op, "the health pass");
            }
            Err(e) => tracing::warn!(error = %e, "cannot record a disk state"),
        }
    }
    if changed {
        if let Err(e) = refresh(st).await {
            tracing::warn!(error = %e, "cannot read disk states");
        }
        // A disk that went offline has redundancy to rebuild now, not at the next tick.
        st.jobs.repair_now();
    }
}

/// One window on the leader: the state changes the latest reports call for.
fn window(st: &State, cfg: &HealthSection, mem: &mut Memory) -> Vec<SetDiskStateOp> {
    let reports = st.registry.reports();
    let rows = st.registry.state_rows();
    let grace = std::time::Duration::from_secs(cfg.silent_grace_sec);
    let views: Vec<LatencyView> = reports
        .iter()
        .filter(|n| n.online)
        .flat_map(|n| n.disks.iter())
        .filter_map(|d| {
            let h = d.health.as_ref()?;
            Some(LatencyView {
                disk_id: d.disk_id,
                read_p99_us: h.read_p99_us,
                read_samples: h.read_samples,
                write_p99_us: h.write_p99_us,
                write_samples: h.write_samples,
            })
        })
        .collect();
    let rule = SlowRule {
        factor: cfg.slow_factor,
        floor_us: cfg.slow_floor_ms * 1000,
        min_samples: cfg.min_samples,
        min_peers: cfg.min_peers,
    };
    let slow = slow_disks(&views, &rule);
    let mut out = Vec::new();
    for n in &reports {
        let silent = (n.age > grace).then_some(n.age.as_secs());
        for d in &n.disks {
            let errors = d.io_errors + d.checksum_errors;
            let before = mem.errors.insert(d.disk_id, errors);
            let new_errors = match before {
                Some(b) if errors >= b => errors - b,
                _ => 0,
            };
            let sig = Signals {
                silent_for_sec: silent,
                device_failed: d.state == DiskState::Failed as i32,
                smart_failing: d
                    .health
                    .as_ref()
                    .filter(|h| h.smart_failing)
                    .map(|h| h.smart_status.clone()),
                slow: if n.online {
                    slow.get(&d.disk_id).cloned()
                } else {
                    None
                },
                new_errors,
            };
            let row = rows.get(&d.disk_id);
            let cur = Current {
                status: row.map_or(DiskStatus::Online, |r| r.status),
                by_operator: row.is_some_and(|r| r.by_operator),
            };
            let t = mem.trackers.entry(d.disk_id).or_default();
            if let Some(v) = judge(&cur, &sig, t, cfg) {
                out.push(SetDiskStateOp {
                    node_id: n.node_id.clone(),
                    disk_id: d.disk_id,
                    status: v.status as i32,
                    reason: v.reason,
                    by_operator: false,
                });
            }
        }
    }
    out
}
