//! The read barrier: a leader answers from its own database only inside a lease a quorum
//! confirmed.
//!
//! Believing to be leader is not enough: openraft 0.9 does not step a leader down when it
//! loses its quorum, so a leader cut off from the other masters (but still reachable by
//! clients) keeps `ServerState::Leader` while the others elect a new leader and accept
//! writes. Answering reads from its database then returns values overwritten long ago
//! (issue 17: a read 52 s stale).
//!
//! So before serving, the leader confirms it still leads: `Raft::get_read_log_id` sends a
//! heartbeat to every follower and returns once a quorum acknowledged it in the current
//! term; the leader then waits until it applied everything committed up to that point
//! (which also covers a new leader that has not yet applied its predecessor's commits).
//!
//! Why a confirmation may serve reads for [`State::lease_len`] (election_timeout_min / 2)
//! after the instant `start` it was *sent*: each follower that acknowledged received the
//! heartbeat at some time `t >= start`, and openraft 0.9.25 then
//! - refuses any vote request until `t + leader_lease`, where `leader_lease` is
//!   election_timeout_max (`EngineConfig::new` in src/engine/engine_config.rs; the check
//!   is in `Engine::handle_vote_req`, src/engine/engine_impl.rs, against the vote's
//!   `utime`, which `update_vote` touches on every append-entries from the leader), and
//! - starts no election of its own before `t + leader_lease + election_timeout`
//!   (`RaftCore::handle_tick_election`, src/core/raft_core.rs).
//!
//! A new leader needs the votes of a quorum, which shares a member with the quorum that
//! acknowledged, so none can be elected (let alone commit a write) before
//! `start + election_timeout_max` by the followers' clocks. Our lease ends at
//! `start + election_timeout_min / 2` by our clock: at most a quarter of that interval
//! (min <= max), which leaves room for clocks running at different rates (a monotonic
//! clock drifts by parts per million, not by a factor of two) and for scheduling delays
//! between reading the clock and serving. Every write acknowledged before a read began was
//! therefore committed and applied by this leader, and the read sees it. (The leader
//! itself may still grant its vote to a candidate; it then moves to the candidate's term,
//! and the lease, kept per term, no longer holds.)
//!
//! Cost: one confirmation per lease period at most, not one per call: concurrent callers
//! wait for the confirmation under way and share its outcome. A failed confirmation
//! answers Unavailable ("no leader"), which clients retry elsewhere.

use super::{State, no_leader};
use openraft::error::{CheckIsLeaderError, RaftError};
use std::time::{Duration, Instant};
use tonic::Status;

/// How long a new leader may take to apply what its predecessors committed.
const CATCH_UP: Duration = Duration::from_secs(10);

/// The lease and the single flight of confirmations.
#[derive(Default)]
pub(crate) struct ReadLease {
    state: std::sync::Mutex<LeaseState>,
    /// Held while a confirmation runs; callers arriving meanwhile queue here.
    confirming: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct LeaseState {
    /// The term a quorum confirmed and the instant until which reads are safe in it.
    valid: Option<(u64, Instant)>,
    /// Confirmations finished so far.
    rounds: u64,
    /// The refusal of the last one, when it failed.
    last_error: Option<Status>,
}

impl ReadLease {
    /// Ok when the lease holds for `term` now; otherwise the number of rounds finished.
    fn holds(&self, term: u64) -> Result<(), u64> {
        let s = self.state.lock().expect("read lease");
        match s.valid {
            Some((t, until)) if t == term && Instant::now() < until => Ok(()),
            _ => Err(s.rounds),
        }
    }

    /// After waiting for the confirmation under way: its outcome, when one finished since
    /// round `seen` (None: run a new one).
    fn shared(&self, term: u64, seen: u64) -> Option<Result<(), Status>> {
        let s = self.state.lock().expect("read lease");
        match (&s.valid, &s.last_error) {
            (Some((t, until)), _) if *t == term && Instant::now() < *until => Some(Ok(())),
            (_, Some(e)) if s.rounds != seen => Some(Err(e.clone())),
            _ => None,
        }
    }

    fn finish(&self, term: u64, until: Instant, outcome: &Result<(), Status>) {
        let mut s = self.state.lock().expect("read lease");
        s.rounds += 1;
        match outcome {
            Ok(()) => {
                s.valid = Some((term, until));
                s.last_error = None;
            }
            Err(e) => {
                s.valid = None;
                s.last_error = Some(e.clone());
            }
        }
    }
}

impl State {
    /// How long after sending a confirmed heartbeat round the leader serves reads locally:
    /// half the shortest election timeout (see the module comment for why that is safe).
    pub(crate) fn lease_len(&self) -> Duration {
        Duration::from_millis(self.raft.config().election_timeout_min / 2)
    }

    /// Returns once this member may answer from its own database: it is leader, a quorum
    /// confirmed that within the lease, and it applied everything committed before. Every
    /// local read on the leader passes here first.
    pub(crate) async fn read_barrier(&self) -> Result<(), Status> {
        let term = self.raft.metrics().borrow().current_term;
        let seen = match self.lease.holds(term) {
            Ok(()) => return Ok(()),
            Err(rounds) => rounds,
        };
        let _one = self.lease.confirming.lock().await;
        if let Some(shared) = self.lease.shared(term, seen) {
            return shared;
        }
        let start = Instant::now();
        let outcome = self.confirm().await;
        self.lease.finish(term, start + self.lease_len(), &outcome);
        outcome
    }

    /// One confirmation: a quorum acknowledges a heartbeat of this term, then the local
    /// state machine catches up to what was committed when it was sent.
    async fn confirm(&self) -> Result<(), Status> {
        let wait = Duration::from_millis(self.raft.config().election_timeout_max * 2);
        let read = match tokio::time::timeout(wait, self.raft.get_read_log_id()).await {
            Ok(Ok((read, _applied))) => read,
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                return Err(no_leader(f.leader_node.as_ref().map(|n| n.addr.as_str())));
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "read barrier: leadership not confirmed");
                return Err(no_leader(None));
            }
            Err(_) => {
                tracing::info!(
                    ?wait,
                    "read barrier: no quorum confirmed this leader; refusing reads"
                );
                return Err(no_leader(None));
            }
        };
        if let Some(r) = read {
            self.raft
                .wait(Some(CATCH_UP))
                .applied_index_at_least(Some(r.index), "read barrier: leader catches up")
                .await
                .map_err(|_| no_leader(None))?;
        }
        Ok(())
    }
}
