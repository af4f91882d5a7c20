//! Handing memory back to the system once writes go quiet. Write buffers are megabytes
//! each, allocated on one runtime thread and freed on another; glibc's malloc keeps such
//! freed memory in its per-thread arenas (and raises its mmap threshold after the first
//! large free, so later buffers come from those arenas too), so a mount that buffered a
//! few hundred MiB kept most of it resident long after its writers finished
//! (ksfs/bench/RESULTS.md). `malloc_trim(0)` returns the free pages of every arena; it
//! walks the heaps, so it runs once per quiet period, off the reactor, never during writes.

use crate::metrics::KsfsMetrics;
use kdss_client::Client;
use std::sync::Arc;
use std::time::Duration;

/// How long writes must have been quiet (nothing accepted, nothing buffered) before the
/// memory they used is handed back.
pub const QUIET: Duration = Duration::from_secs(5);

/// Runs until dropped: after each quiet period that followed writes, trims the heap once.
pub async fn trim_when_idle(client: Client, metrics: Arc<KsfsMetrics>) {
    let mut tick = tokio::time::interval(QUIET);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = metrics.written_total();
    let mut trimmed = seen;
    loop {
        tick.tick().await;
        let now = metrics.written_total();
        let quiet = now == seen && client.write_buffer_usage().0 == 0;
        seen = now;
        if quiet && now != trimmed {
            trimmed = now;
            let t = std::time::Instant::now();
            if tokio::task::spawn_blocking(release_free_memory)
                .await
                .is_ok()
            {
                tracing::debug!(took = ?t.elapsed(), "returned free heap memory after writes");
            }
        }
    }
}

/// Returns the allocator's free pages to the system.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only inspects and releases the allocator's own free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
