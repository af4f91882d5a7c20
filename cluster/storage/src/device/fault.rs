//! Test-only fault injection in the device I/O path: EIO, added latency, silent corruption
//! or a hang (the call blocks until the rules change, as an fdatasync stuck in a dying
//! disk's firmware does) on a named disk. Only a `[fault] enabled = true` section in storage.toml (meant for tests)
//! installs rules; without it the device carries no fault layer at all.

use serde::Deserialize;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// What a rule does to the I/O it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// Fail the call with EIO.
    Eio,
    /// Sleep `latency_ms` before the call.
    Latency,
    /// Flip a byte: in the buffer returned by a read, or in the bytes written.
    Corrupt,
    /// Block the call until the rules are replaced (`kind=clear` or another fault): a
    /// device that stops answering without failing.
    Hang,
}

/// Which calls a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FaultOp {
    Read,
    Write,
    /// fdatasync.
    Sync,
    #[default]
    Any,
}

/// One injected fault.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// What to inject.
    pub kind: FaultKind,
    /// Which calls it applies to (default any).
    #[serde(default)]
    pub op: FaultOp,
    /// Delay for `latency` rules.
    #[serde(default)]
    pub latency_ms: u64,
    /// Let this many matching calls through before the rule starts firing.
    #[serde(default)]
    pub after: u64,
}

/// The rules of one device, changeable at run time by tests.
#[derive(Debug, Default)]
pub struct FaultLayer {
    rules: Mutex<Rules>,
    /// Woken whenever the rules are replaced, so hung calls look again.
    changed: Condvar,
}

/// The rules with how many matching calls each has seen, and a generation that
/// [`FaultLayer::set`] bumps.
#[derive(Debug, Default)]
struct Rules {
    list: Vec<(FaultRule, u64)>,
    generation: u64,
}

/// What the device must do for one call.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FaultAction {
    pub eio: bool,
    pub corrupt: bool,
}

impl FaultLayer {
    /// A layer with `rules` installed.
    pub fn new(rules: Vec<FaultRule>) -> Self {
        FaultLayer {
            rules: Mutex::new(Rules {
                list: rules.into_iter().map(|r| (r, 0)).collect(),
                generation: 0,
            }),
            changed: Condvar::new(),
        }
    }

    /// Replaces the rules (tests switch faults on and off on a running node); calls hung
    /// by the old rules go on.
    pub fn set(&self, rules: Vec<FaultRule>) {
        let mut g = self.rules.lock().expect("fault lock");
        g.list = rules.into_iter().map(|r| (r, 0)).collect();
        g.generation += 1;
        drop(g);
        self.changed.notify_all();
    }

    /// Applies latency rules and tells the caller what else to do for an `op` call.
    pub fn on(&self, op: FaultOp) -> FaultAction {
        let mut act = FaultAction::default();
        let mut sleep = 0;
        let mut hang = false;
        {
            let mut rules = self.rules.lock().expect("fault lock");
            for (r, seen) in rules.list.iter_mut() {
                if r.op != FaultOp::Any && r.op != op {
                    continue;
                }
                *seen += 1;
                if *seen <= r.after {
                    continue;
                }
                match r.kind {
                    FaultKind::Eio => act.eio = true,
                    FaultKind::Latency => sleep += r.latency_ms,
                    FaultKind::Corrupt => act.corrupt = op != FaultOp::Sync,
                    FaultKind::Hang => hang = true,
                }
            }
            if hang {
                // Device I/O runs on blocking threads: waiting here blocks only this disk.
                let generation = rules.generation;
                tracing::warn!(?op, "fault layer: device call hung until the rules change");
                while rules.generation == generation {
                    rules = self.changed.wait(rules).expect("fault lock");
                }
            }
        }
        if sleep > 0 {
            // Device I/O runs on blocking threads, never on the async reactor.
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(sleep));
        }
        act
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn a_hung_call_goes_on_when_the_rules_change() {
        let layer = Arc::new(FaultLayer::new(vec![FaultRule {
            kind: FaultKind::Hang,
            op: FaultOp::Sync,
            latency_ms: 0,
            after: 0,
        }]));
        // Other ops pass a sync-only hang.
        assert_eq!(layer.on(FaultOp::Write), FaultAction::default());
        let done = Arc::new(AtomicBool::new(false));
        let (l, d) = (layer.clone(), done.clone());
        let t = std::thread::spawn(move || {
            l.on(FaultOp::Sync);
            d.store(true, Ordering::SeqCst);
        });
        // Still hung after a while (nothing but `set` wakes it).
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(200));
        assert!(!done.load(Ordering::SeqCst), "the sync did not hang");
        layer.set(vec![]);
        t.join().unwrap();
        assert!(done.load(Ordering::SeqCst));
        assert_eq!(layer.on(FaultOp::Sync), FaultAction::default());
    }
}
