//! Cluster events to a Lark group (`[notify]` in master.toml; off without `lark_url`).
//!
//! Call sites are one line where the event happens: a disk state change (the health pass,
//! `kdss-cli disk offline|online|drain`), a node that stopped heartbeating, a repair pass
//! that rebuilt or gave up on stripes, a balance that starts. Only the leader reports, so a
//! group of three masters sends each event once. [`Events::emit`] never waits: events go
//! into a bounded queue that one task drains through [`kdss_notify::LarkSender`] (with its
//! retries); when the webhook is slow and the queue is full, further events are dropped and
//! counted, and the master goes on as if nothing was configured.

use crate::config::NotifySection;
use crate::service::State;
use kdss_notify::{ClusterEvent, EventKind, LarkSender, RetryPolicy};
use kdss_proto::master::{DiskStatus, SetDiskStateOp};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Events waiting for the webhook at most; more are dropped.
pub const QUEUE: usize = 64;
/// Recent events kept for the console's Alerts page, Lark or not.
pub const RECENT: usize = 200;

/// The master's event reporter (or a reporter that does nothing, when `[notify]` is off).
#[derive(Debug, Default)]
pub struct Events {
    tx: Option<mpsc::Sender<ClusterEvent>>,
    dropped: AtomicU64,
    source: String,
    /// The last [`RECENT`] events with their time (Unix ms), for the console.
    recent: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<(i64, ClusterEvent)>>>,
}

impl Events {
    /// A reporter that sends nothing.
    pub fn off() -> Events {
        Events::default()
    }

    /// Starts the sending task for `cfg` (nothing when `lark_url` is unset); cards carry
    /// the cluster's name and this master's id. Must be called inside the runtime.
    pub fn start(
        cfg: &NotifySection,
        cluster: &str,
        master_id: u64,
    ) -> Result<Events, kdss_notify::NotifyError> {
        let source = format!("master {master_id}");
        let Some(url) = &cfg.lark_url else {
            return Ok(Events {
                source,
                ..Events::default()
            });
        };
        let sender = LarkSender::new(url, cfg.lark_secret.clone(), RetryPolicy::default())?;
        let (tx, mut rx) = mpsc::channel::<ClusterEvent>(QUEUE);
        let cluster = cluster.to_string();
        tracing::info!(
            host = %sender.host(),
            signed = cfg.lark_secret.is_some(),
            "cluster events go to Lark"
        );
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let card = ev.card(&cluster, &kdss_notify::event::now_utc());
                match sender.send(&card).await {
                    Ok(d) => tracing::info!(
                        title = %card.title,
                        attempts = d.attempts,
                        "event posted to Lark"
                    ),
                    Err(e) => {
                        tracing::warn!(title = %card.title, error = %e, "event not posted to Lark")
                    }
                }
            }
        });
        Ok(Events {
            tx: Some(tx),
            dropped: AtomicU64::new(0),
            source,
            recent: Default::default(),
        })
    }

    /// Queues `kind` about `subject` without waiting; drops it when the queue is full. The
    /// event is also kept among the recent ones the console shows, with or without Lark.
    pub fn emit(&self, kind: EventKind, subject: String, detail: String) {
        let ev = ClusterEvent {
            kind,
            subject,
            detail,
            source: self.source.clone(),
        };
        {
            let mut r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            r.push_back((kdss_common::time::now_ms() as i64, ev.clone()));
            while r.len() > RECENT {
                r.pop_front();
            }
        }
        let Some(tx) = &self.tx else { return };
        if tx.try_send(ev).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                dropped = n,
                "Lark event queue full (webhook slow or down): event dropped"
            );
        }
    }

    /// The recent events for the console, oldest first; reads the same ring later emits
    /// fill, so the feed stays live after the state is built.
    pub fn feed(&self) -> kdss_console::EventFeed {
        let recent = self.recent.clone();
        std::sync::Arc::new(move || {
            let r = recent.lock().unwrap_or_else(|p| p.into_inner());
            r.iter()
                .map(|(at_ms, e)| kdss_console::EventRow {
                    at_ms: *at_ms,
                    kind: e.kind.title().to_string(),
                    subject: e.subject.clone(),
                    detail: format!("{} ({})", e.detail, e.source),
                    alert: matches!(
                        e.kind.severity(),
                        kdss_notify::Severity::Critical | kdss_notify::Severity::Warning
                    ),
                })
                .collect()
        })
    }

    /// Events dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A disk state was recorded (`by`: the operator's access key, or the health pass).
pub fn disk_state(st: &State, op: &SetDiskStateOp, by: &str) {
    let kind = match DiskStatus::try_from(op.status).unwrap_or_default() {
        DiskStatus::Offline => EventKind::DiskOffline,
        DiskStatus::Suspect => EventKind::DiskSuspect,
        DiskStatus::Draining => EventKind::DiskDraining,
        DiskStatus::Online | DiskStatus::Unspecified => EventKind::DiskOnline,
    };
    if !st.is_leader() {
        return;
    }
    let reason = if op.reason.is_empty() {
        "no reason given"
    } else {
        &op.reason
    };
    st.events.emit(
        kind,
        format!("disk {:016x} on {}", op.disk_id, op.node_id),
        format!("reason: {reason} (set by {by})"),
    );
}

/// Compares the nodes' liveness with `online`, the nodes the last call saw online, and
/// reports each that went silent since (a new leader starts with an empty set, so it never
/// reports a node it did not see alive).
pub fn node_transitions(st: &State, online: &mut BTreeSet<String>) {
    for n in st.registry.reports() {
        if n.online {
            online.insert(n.node_id);
        } else if online.remove(&n.node_id) && st.is_leader() {
            st.events.emit(
                EventKind::NodeLost,
                format!("storage node {}", n.node_id),
                format!(
                    "no heartbeat for {} s; its {} disks are not written to",
                    n.age.as_secs(),
                    n.disks.len()
                ),
            );
        }
    }
}

/// A repair pass ended with these counters; reported when it rebuilt stripes or found some
/// it cannot rebuild (a pass that only retries says nothing new).
pub fn repair_done(st: &State, counters: &BTreeMap<String, u64>) {
    let get = |k: &str| counters.get(k).copied().unwrap_or(0);
    let (done, retry, lost) = (
        get("stripes_repaired"),
        get("stripes_to_retry"),
        get("stripes_unrepairable"),
    );
    if (done == 0 && lost == 0) || !st.is_leader() {
        return;
    }
    st.events.emit(
        EventKind::RepairDone,
        format!("{done} stripes repaired"),
        format!(
            "{retry} left for the next pass, {lost} unrepairable (of {} queued)",
            get("stripes_queued")
        ),
    );
}

/// A balance starts (its caller skips the rounds of one already under way).
pub fn balance_started(st: &State, spread: f64) {
    if !st.is_leader() {
        return;
    }
    st.events.emit(
        EventKind::BalanceStarted,
        format!("spread {spread:.1} percentage points"),
        format!(
            "moving shards from the fullest disks to the emptiest until within {} points \
             (kdss-cli balance status)",
            st.balance.threshold_pct
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A webhook that accepts connections and never answers must not hold the master up:
    /// emitting stays instant and what does not fit the queue is counted as dropped.
    #[tokio::test]
    async fn a_stuck_webhook_never_blocks_the_caller() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let cfg = NotifySection {
            lark_url: Some(kdss_notify::Secret::new(url)),
            lark_secret: None,
        };
        let ev = Events::start(&cfg, "c", 1).unwrap();
        let t = std::time::Instant::now();
        for i in 0..(QUEUE as u64 * 4) {
            ev.emit(EventKind::DiskOffline, format!("disk {i}"), String::new());
        }
        assert!(t.elapsed() < std::time::Duration::from_millis(500));
        assert!(ev.dropped() >= QUEUE as u64 * 2, "{}", ev.dropped());
        drop(l);
    }

    #[test]
    fn off_sends_nothing_and_drops_nothing() {
        let ev = Events::off();
        ev.emit(EventKind::DiskOffline, "d".into(), String::new());
        assert_eq!(ev.dropped(), 0);
    }
}
