//! Live throughput and IOPS for the dashboard's charts: a task samples the nodes' heartbeat
//! figures every [`EVERY`] and keeps the last [`KEEP`] samples in a ring. Throughput is the
//! change of the disks' client byte counters between two samples; IOPS are the latency
//! samples the nodes counted over their last report window.

use crate::backend::Backend;
use kdss_proto::master as pb;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How often the console samples.
pub const EVERY: Duration = Duration::from_secs(3);
/// Samples kept (10 minutes).
pub const KEEP: usize = 200;

/// One point of the charts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RatePoint {
    /// Unix milliseconds.
    pub t_ms: u64,
    /// Client bytes per second, all disks.
    pub bytes_per_sec: f64,
    /// Reads and writes per second, all disks.
    pub iops: f64,
}

/// The ring of recent points.
#[derive(Debug, Default)]
pub struct Rates {
    points: Mutex<VecDeque<RatePoint>>,
    last: Mutex<Option<(u64, u64)>>,
}

impl Rates {
    /// The recent points, oldest first.
    pub fn points(&self) -> Vec<RatePoint> {
        self.points
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect()
    }

    fn add(&self, t_ms: u64, client_bytes: u64, iops: f64) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let bytes_per_sec = match *last {
            // A node restart resets its counter: count that interval as 0, not negative.
            Some((t0, b0)) if t_ms > t0 => {
                client_bytes.saturating_sub(b0) as f64 * 1000.0 / (t_ms - t0) as f64
            }
            _ => 0.0,
        };
        *last = Some((t_ms, client_bytes));
        let mut p = self.points.lock().unwrap_or_else(|p| p.into_inner());
        p.push_back(RatePoint {
            t_ms,
            bytes_per_sec,
            iops,
        });
        while p.len() > KEEP {
            p.pop_front();
        }
    }
}

fn sample(st: &pb::ClusterStatusReply) -> (u64, f64) {
    let mut bytes = 0u64;
    let mut iops = 0.0;
    for d in st.nodes.iter().filter(|n| n.online).flat_map(|n| &n.disks) {
        bytes += d.client_bytes;
        if let Some(h) = &d.health
            && h.window_ms > 0
        {
            iops += (h.read_samples + h.write_samples) as f64 * 1000.0 / h.window_ms as f64;
        }
    }
    (bytes, iops)
}

/// Samples until the console (the owner of `rates` and `backend`) is dropped.
pub fn spawn(rates: Weak<Rates>, backend: Weak<Backend>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let (Some(rates), Some(backend)) = (rates.upgrade(), backend.upgrade()) else {
                return;
            };
            sample_once(&rates, &backend).await;
        }
    });
}

async fn sample_once(rates: &Arc<Rates>, backend: &Backend) {
    match backend
        .read()
        .cluster_status(pb::ClusterStatusRequest {})
        .await
    {
        Ok(st) => {
            let (b, iops) = sample(&st);
            rates.add(kdss_common::time::now_ms(), b, iops);
        }
        Err(e) => tracing::debug!(error = %e, "console: rate sample failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_reset_counts_as_zero_and_the_ring_is_bounded() {
        let r = Rates::default();
        r.add(1000, 0, 0.0);
        r.add(2000, 4096, 1.0);
        r.add(3000, 100, 0.0);
        let p = r.points();
        assert_eq!(p[1].bytes_per_sec, 4096.0);
        assert_eq!(p[2].bytes_per_sec, 0.0);
        for i in 0..(KEEP as u64 + 10) {
            r.add(4000 + i * 1000, 0, 0.0);
        }
        assert_eq!(r.points().len(), KEEP);
    }
}
