//! Per-disk I/O latency: every read, write and sync of a device is timed (fault-layer delay
//! included, so an injected slow disk looks slow), and the heartbeat reports p50/p99 over
//! the recent window. The master compares these with other disks' to find slow ones.

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window the percentiles cover.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Samples kept per kind; a busy disk's window is the most recent this many calls.
const MAX_SAMPLES: usize = 4096;

/// Which calls a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoKind {
    /// pread.
    Read,
    /// pwritev and fdatasync.
    Write,
}

/// Percentiles of one kind of call over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// Median, microseconds.
    pub p50_us: u64,
    /// 99th percentile, microseconds.
    pub p99_us: u64,
    /// Calls measured in the window.
    pub samples: u64,
}

/// Recent latencies of one device.
#[derive(Debug)]
pub struct LatencyRecorder {
    window: Duration,
    samples: Mutex<[VecDeque<(Instant, u64)>; 2]>,
    /// Every call since the disk opened, in seconds: the window above serves the health
    /// pass, these serve Prometheus, which computes its own percentiles over any range.
    histograms: [Histogram; 2],
}

/// Buckets of the device latency histograms: 50 µs to about 6.5 s.
fn device_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder::new(WINDOW)
    }
}

fn slot(kind: IoKind) -> usize {
    match kind {
        IoKind::Read => 0,
        IoKind::Write => 1,
    }
}

impl LatencyRecorder {
    /// A recorder whose percentiles cover `window`.
    pub fn new(window: Duration) -> Self {
        LatencyRecorder {
            window,
            samples: Mutex::new([VecDeque::new(), VecDeque::new()]),
            histograms: [device_histogram(), device_histogram()],
        }
    }

    /// The cumulative histogram of `kind` (seconds), for `/metrics`.
    pub fn histogram(&self, kind: IoKind) -> &Histogram {
        &self.histograms[slot(kind)]
    }

    /// The window the percentiles cover.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Records one call that took `took`.
    pub fn record(&self, kind: IoKind, took: Duration) {
        self.histograms[slot(kind)].observe(took.as_secs_f64());
        let now = Instant::now();
        let mut s = self.samples.lock().expect("latency lock");
        let q = &mut s[slot(kind)];
        if q.len() >= MAX_SAMPLES {
            q.pop_front();
        }
        q.push_back((now, took.as_micros() as u64));
    }

    /// Percentiles of `kind` over the window (dropping older samples).
    pub fn percentiles(&self, kind: IoKind) -> Percentiles {
        let now = Instant::now();
        let mut s = self.samples.lock().expect("latency lock");
        let q = &mut s[slot(kind)];
        while q
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > self.window)
        {
            q.pop_front();
        }
        let mut v: Vec<u64> = q.iter().map(|(_, us)| *us).collect();
        drop(s);
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_unstable();
        let at = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
        Percentiles {
            p50_us: at(0.50),
            p99_us: at(0.99),
            samples: v.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_cover_the_window_per_kind() {
        let r = LatencyRecorder::new(Duration::from_secs(60));
        for ms in 1..=100 {
            r.record(IoKind::Read, Duration::from_millis(ms));
        }
        r.record(IoKind::Write, Duration::from_millis(7));
        let p = r.percentiles(IoKind::Read);
        assert_eq!((p.p50_us, p.p99_us, p.samples), (50_000, 99_000, 100));
        assert_eq!(r.percentiles(IoKind::Write).samples, 1);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a plain test thread, no reactor
    fn old_samples_leave_the_window() {
        let r = LatencyRecorder::new(Duration::from_millis(30));
        r.record(IoKind::Read, Duration::from_millis(500));
        std::thread::sleep(Duration::from_millis(60));
        r.record(IoKind::Read, Duration::from_millis(2));
        let p = r.percentiles(IoKind::Read);
        assert_eq!((p.samples, p.p99_us), (1, 2_000));
    }
}
