//! What a job that moves shards (repair, balance) shows while it works: the queue its last
//! pass found, moves in flight, what this leader moved, the recent rate and the ETA; and
//! the byte throttle all of that job's moves share.

use super::Moved;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// The rate shown is measured over this window.
const RATE_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Counters {
    queued_stripes: u64,
    queued_shards: u64,
    queued_bytes: u64,
    queued_by_missing: Vec<u64>,
    running: u64,
    done_shards: u64,
    done_bytes: u64,
    failed: u64,
    unrepairable_total: u64,
    unrepairable_this_pass: u64,
    unrepairable_last_pass: u64,
    recent: VecDeque<(Instant, u64)>,
}

/// The queue the current pass works through. `missing` counts, per stripe, the shards to
/// move (1 = one lost, ...).
#[derive(Debug, Default, Clone)]
pub struct Queue {
    /// Stripes with at least one shard to move.
    pub stripes: u64,
    /// Shards to move.
    pub shards: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Stripes by shards to move: [0] = 1, [1] = 2, ...
    pub by_missing: Vec<u64>,
}

/// Progress as the status calls show it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MoveStatus {
    /// Stripes still queued.
    pub queued_stripes: u64,
    /// Shards still queued.
    pub queued_shards: u64,
    /// Their bytes.
    pub queued_bytes: u64,
    /// Queued stripes by shards to move: [0] = 1, [1] = 2, ...
    pub queued_by_missing: Vec<u64>,
    /// Moves in flight.
    pub running_shards: u64,
    /// Shards this leader moved.
    pub done_shards: u64,
    /// Their bytes.
    pub done_bytes: u64,
    /// Moves that failed (retried by a later pass).
    pub failed_shards: u64,
    /// Stripes with fewer than k readable shards, as the last pass found them (or the pass
    /// under way, once it found more).
    pub unrepairable_stripes: u64,
    /// Every such finding since this leader started, once per stripe and pass (the metric).
    pub unrepairable_total: u64,
    /// Bytes per second over the last minute.
    pub rate_bytes_per_sec: f64,
    /// Seconds left at that rate: 0 when nothing is queued, -1 when unknown.
    pub eta_sec: i64,
    /// The limit in force (bytes/s, 0 = none).
    pub max_bandwidth: u64,
}

/// Shared between a job and its status call.
#[derive(Debug, Default)]
pub struct MoveState {
    c: Mutex<Counters>,
    /// Bytes per second in force (0 = no limit).
    bandwidth: AtomicU64,
    next: tokio::sync::Mutex<Option<Instant>>,
}

impl MoveState {
    /// The queue the pass just found.
    pub fn set_queue(&self, q: &Queue) {
        let mut c = self.c.lock().expect("move state");
        c.queued_stripes = q.stripes;
        c.queued_shards = q.shards;
        c.queued_bytes = q.bytes;
        c.queued_by_missing = q.by_missing.clone();
    }

    /// A move starts.
    pub fn started(&self) {
        self.c.lock().expect("move state").running += 1;
    }

    /// A move of `bytes` ended. A stale one (the stripe changed under it) leaves the queue
    /// without counting as done or failed: nothing was wrong, there was just nothing to do.
    pub fn finished(&self, how: Moved, bytes: u64) {
        let mut c = self.c.lock().expect("move state");
        c.running = c.running.saturating_sub(1);
        match how {
            Moved::Committed => {
                c.done_shards += 1;
                c.done_bytes += bytes;
                c.recent.push_back((Instant::now(), bytes));
            }
            Moved::Stale => {}
            Moved::Failed => {
                c.failed += 1;
                return;
            }
        }
        c.queued_shards = c.queued_shards.saturating_sub(1);
        c.queued_bytes = c.queued_bytes.saturating_sub(bytes);
    }

    /// A stripe whose queue entry is settled (all its shards moved, or none needed).
    pub fn stripe_settled(&self) {
        let mut c = self.c.lock().expect("move state");
        c.queued_stripes = c.queued_stripes.saturating_sub(1);
    }

    /// A stripe with fewer than k readable shards.
    pub fn unrepairable(&self) {
        let mut c = self.c.lock().expect("move state");
        c.unrepairable_total += 1;
        c.unrepairable_this_pass += 1;
    }

    /// A pass went through its whole queue: its unrepairable count is the current one (a
    /// stripe found again by every pass is one stripe, not one more each time).
    pub fn pass_ended(&self) {
        let mut c = self.c.lock().expect("move state");
        c.unrepairable_last_pass = std::mem::take(&mut c.unrepairable_this_pass);
    }

    /// Sets the bandwidth limit (bytes/s, 0 = none).
    pub fn set_bandwidth(&self, bytes_per_sec: u64) {
        self.bandwidth.store(bytes_per_sec, Ordering::Relaxed);
    }

    /// The bandwidth limit in force.
    pub fn bandwidth(&self) -> u64 {
        self.bandwidth.load(Ordering::Relaxed)
    }

    /// Waits until `bytes` more may be moved under the limit: each move books its share of
    /// the budget, so moves in flight together still average the limit.
    pub async fn take(&self, bytes: u64) {
        let bw = self.bandwidth();
        if bw == 0 {
            return;
        }
        let start = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let start = next.map_or(now, |n| n.max(now));
            *next = Some(start + Duration::from_secs_f64(bytes as f64 / bw as f64));
            start
        };
        tokio::time::sleep_until(start).await;
    }

    /// Status as the CLI shows it.
    pub fn status(&self) -> MoveStatus {
        let mut c = self.c.lock().expect("move state");
        let now = Instant::now();
        while c
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            c.recent.pop_front();
        }
        let rate = match c.recent.front() {
            Some((first, _)) => {
                let span = now.duration_since(*first).max(Duration::from_secs(1));
                c.recent.iter().map(|(_, n)| *n).sum::<u64>() as f64 / span.as_secs_f64()
            }
            None => 0.0,
        };
        let eta_sec = if c.queued_bytes == 0 {
            0
        } else if rate > 0.0 {
            (c.queued_bytes as f64 / rate).ceil() as i64
        } else {
            -1
        };
        MoveStatus {
            queued_stripes: c.queued_stripes,
            queued_shards: c.queued_shards,
            queued_bytes: c.queued_bytes,
            queued_by_missing: c.queued_by_missing.clone(),
            running_shards: c.running,
            done_shards: c.done_shards,
            done_bytes: c.done_bytes,
            failed_shards: c.failed,
            unrepairable_stripes: c.unrepairable_last_pass.max(c.unrepairable_this_pass),
            unrepairable_total: c.unrepairable_total,
            rate_bytes_per_sec: rate,
            eta_sec,
            max_bandwidth: self.bandwidth(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_throttle_spaces_rebuilds_by_their_bytes() {
        let s = MoveState::default();
        s.set_bandwidth(10_000);
        let t0 = Instant::now();
        for _ in 0..5 {
            s.take(500).await;
        }
        // Five bookings of 50 ms each: the fifth starts after 200 ms.
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        s.set_bandwidth(0);
        let t1 = Instant::now();
        s.take(1 << 40).await;
        assert!(
            t1.elapsed() < Duration::from_millis(100),
            "without a limit nothing waits"
        );
    }

    /// A state with three stripes of one 1000-byte shard each queued.
    fn three_queued() -> MoveState {
        let s = MoveState::default();
        s.set_queue(&Queue {
            stripes: 3,
            shards: 3,
            bytes: 3000,
            by_missing: vec![3],
        });
        s
    }

    #[test]
    fn status_reports_rate_and_eta_from_recent_rebuilds() {
        let s = three_queued();
        s.started();
        assert_eq!(s.status().eta_sec, -1, "nothing rebuilt yet: ETA unknown");
        s.finished(Moved::Committed, 1000);
        s.stripe_settled();
        let st = s.status();
        assert_eq!(st.queued_bytes, 2000);
        assert_eq!(st.queued_stripes, 2);
        assert_eq!(st.done_shards, 1);
        assert_eq!(st.running_shards, 0);
        assert!(st.rate_bytes_per_sec > 0.0);
        assert!(st.eta_sec > 0);
    }

    #[test]
    fn a_stale_move_leaves_the_queue_without_counting_as_failed() {
        let s = three_queued();
        for how in [Moved::Stale, Moved::Failed, Moved::Committed] {
            s.started();
            s.finished(how, 1000);
        }
        let st = s.status();
        assert_eq!(st.failed_shards, 1, "only the failed move is a failure");
        assert_eq!(st.done_shards, 1);
        assert_eq!(st.queued_shards, 1, "the failed one is still to do");
        assert_eq!(st.queued_bytes, 1000);
        assert_eq!(st.running_shards, 0);
    }

    #[test]
    fn a_stripe_unrepairable_in_every_pass_counts_once_in_the_status() {
        let s = MoveState::default();
        for _ in 0..3 {
            s.unrepairable();
            s.unrepairable();
            s.pass_ended();
        }
        let st = s.status();
        assert_eq!(
            st.unrepairable_stripes, 2,
            "two stripes, found by each pass"
        );
        assert_eq!(st.unrepairable_total, 6, "the metric counts each finding");
        s.pass_ended();
        assert_eq!(s.status().unrepairable_stripes, 0, "repaired meanwhile");
    }
}
