//! Background engines of the leader (docs/architecture.md, "Background work"): the garbage
//! collector, repair and balance; the last two move shards with the one [`mover`].
//!
//! A [`Job`] is a leader-only periodic pass. [`spawn`] runs it: every `interval`, or at
//! once when [`JobHandle::run_now`] is called, and only while this member is the leader.
//! State a job needs across leader changes lives in the replicated state machine: a pass
//! reads the database, talks to storage nodes and proposes mutations, so a new leader's
//! first pass resumes where the old one stopped. What a pass did is in [`JobHandle`]
//! (counters of the last pass and since start, last error, timing), which the CLI shows.
//! [`Throttle`] paces a pass's storage-node calls.

pub mod balance;
pub mod gc;
pub mod inventory;
pub mod mover;
pub mod repair;

use crate::service::State;
use kdss_proto::master::JobStatus;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// The jobs of a master and their settings, shared with the service (status, triggers).
#[derive(Debug)]
pub struct Jobs {
    /// The garbage collector.
    pub gc: Arc<JobHandle>,
    /// The `[gc]` settings it runs with (the bin listing shows their retention).
    pub gc_config: crate::config::GcSection,
    /// Repair (and drain).
    pub repair: Arc<JobHandle>,
    /// The `[repair]` settings it runs with.
    pub repair_config: repair::config::RepairSection,
    /// Repair's queue, progress and throttle, for `repair status`.
    pub repair_state: Arc<mover::state::MoveState>,
    /// Balance.
    pub balance: Arc<JobHandle>,
    /// Balance's moves and phase, for `balance status`.
    pub balance_state: Arc<balance::BalanceState>,
}

impl Jobs {
    /// Handles for jobs that run with these settings (spawned by the server).
    pub fn new(
        gc_config: crate::config::GcSection,
        repair_config: repair::config::RepairSection,
    ) -> Jobs {
        Jobs {
            gc: Arc::default(),
            gc_config,
            repair: Arc::default(),
            repair_state: Arc::default(),
            repair_config,
            balance: Arc::default(),
            balance_state: Arc::default(),
        }
    }
}

impl Jobs {
    /// Starts a repair pass now if repair is automatic (`[repair] enabled`); otherwise
    /// repair waits for `kdss-cli repair run`.
    pub fn repair_now(&self) {
        if self.repair_config.enabled {
            self.repair.run_now();
        }
    }
}

/// Counters a pass fills as it goes (`shards_deleted`, `bytes_freed`, ...).
#[derive(Debug, Default)]
pub struct Progress {
    counters: Mutex<BTreeMap<String, u64>>,
}

impl Progress {
    /// Adds `n` to counter `name`.
    pub fn add(&self, name: &str, n: u64) {
        *self
            .counters
            .lock()
            .expect("progress lock")
            .entry(name.to_string())
            .or_default() += n;
    }

    /// The counters now.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counters.lock().expect("progress lock").clone()
    }
}

/// One background engine.
pub trait Job: Send + Sync + 'static {
    /// Name in logs, metrics and status.
    fn name(&self) -> &'static str;
    /// Time between passes.
    fn interval(&self) -> Duration;
    /// Runs every interval (true) or only when triggered.
    fn automatic(&self) -> bool {
        true
    }
    /// One pass on the leader. Must be idempotent: it may stop at any point (leader
    /// change, crash) and the next pass, on any member, must finish the work.
    fn pass(
        &self,
        st: Arc<State>,
        progress: Arc<Progress>,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

#[derive(Debug, Default, Clone)]
struct Record {
    running: bool,
    last_start_ns: i64,
    last_end_ns: i64,
    last_error: String,
    passes: u64,
    last_pass: BTreeMap<String, u64>,
    totals: BTreeMap<String, u64>,
    interval_sec: u64,
    current: Option<Arc<Progress>>,
}

/// Status and "run now" trigger of one spawned job.
#[derive(Debug, Default)]
pub struct JobHandle {
    record: Mutex<Record>,
    trigger: Notify,
    done: Mutex<Option<watch::Sender<u64>>>,
}

impl JobHandle {
    /// Asks for a pass now (coalesced with one already asked for).
    pub fn run_now(&self) {
        self.trigger.notify_one();
    }

    /// Asks for a pass and waits until a pass that started after this call ended (or
    /// `timeout`). False on timeout (e.g. this member lost leadership).
    pub async fn run_and_wait(&self, timeout: Duration) -> bool {
        let mut rx = match self.done.lock().expect("job done lock").as_ref() {
            Some(tx) => tx.subscribe(),
            None => return false,
        };
        let want = *rx.borrow_and_update() + if self.status().running { 2 } else { 1 };
        self.run_now();
        tokio::time::timeout(timeout, rx.wait_for(|n| *n >= want))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The status the CLI shows (the running pass's counters while it runs).
    pub fn status(&self) -> JobStatus {
        let r = self.record.lock().expect("job record").clone();
        let last_pass = match (&r.current, r.running) {
            (Some(p), true) => p.snapshot(),
            _ => r.last_pass.clone(),
        };
        JobStatus {
            name: String::new(),
            running: r.running,
            last_start_ns: r.last_start_ns,
            last_end_ns: r.last_end_ns,
            last_error: r.last_error,
            passes: r.passes,
            last_pass: last_pass.into_iter().collect(),
            totals: r.totals.into_iter().collect(),
            interval_sec: r.interval_sec,
        }
    }
}

/// Runs `job` until `stop`: a pass every interval and on every trigger, on the leader only.
pub fn spawn<J: Job>(
    st: Arc<State>,
    job: J,
    handle: Arc<JobHandle>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let (tx, _) = watch::channel(0u64);
    *handle.done.lock().expect("job done lock") = Some(tx.clone());
    handle.record.lock().expect("job record").interval_sec = job.interval().as_secs();
    tokio::spawn(async move {
        let mut next = Instant::now() + job.interval();
        loop {
            let timer = tokio::select! {
                _ = tokio::time::sleep_until(next) => true,
                _ = handle.trigger.notified() => false,
                _ = stop.changed() => return,
            };
            next = Instant::now() + job.interval();
            if !st.is_leader() || (timer && !job.automatic()) {
                continue;
            }
            let progress = Arc::new(Progress::default());
            {
                let mut r = handle.record.lock().expect("job record");
                r.running = true;
                r.last_start_ns = kdss_common::time::now_ns();
                r.current = Some(progress.clone());
            }
            let out = tokio::select! {
                out = job.pass(st.clone(), progress.clone()) => out,
                _ = stop.changed() => return,
            };
            let counters = progress.snapshot();
            {
                let mut r = handle.record.lock().expect("job record");
                r.running = false;
                r.current = None;
                r.last_end_ns = kdss_common::time::now_ns();
                r.passes += 1;
                for (k, v) in &counters {
                    *r.totals.entry(k.clone()).or_default() += v;
                }
                r.last_pass = counters;
                r.last_error = out.clone().err().unwrap_or_default();
            }
            match out {
                Ok(()) => tracing::info!(job = job.name(), "pass done"),
                Err(e) => tracing::warn!(job = job.name(), error = %e, "pass failed"),
            }
            tx.send_modify(|n| *n += 1);
        }
    })
}

/// Paces calls to at most `per_sec` per second (a pass awaits [`Throttle::take`] before
/// each storage-node call).
#[derive(Debug)]
pub struct Throttle {
    gap: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Throttle {
    /// A throttle of `per_sec` calls per second (at least 1).
    pub fn new(per_sec: u32) -> Self {
        Throttle {
            gap: Duration::from_secs(1) / per_sec.max(1),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for the next slot.
    pub async fn take(&self) {
        let mut next = self.next.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep_until(*next).await;
        }
        *next = (*next).max(now) + self.gap;
    }
}
