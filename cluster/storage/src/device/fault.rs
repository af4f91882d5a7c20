//! Test-only fault injection in the device I/O path: EIO, added latency or silent corruption
//! on a named disk. Only a `[fault] enabled = true` section in storage.toml (meant for tests)
//! installs rules; without it the device carries no fault layer at all.

use serde::Deserialize;
use std::sync::Mutex;
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
    rules: Mutex<Vec<(FaultRule, u64)>>,
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
            rules: Mutex::new(rules.into_iter().map(|r| (r, 0)).collect()),
        }
    }

    /// Replaces the rules (tests switch faults on and off on a running node).
    pub fn set(&self, rules: Vec<FaultRule>) {
        *self.rules.lock().expect("fault lock") = rules.into_iter().map(|r| (r, 0)).collect();
    }

    /// Applies latency rules and tells the caller what else to do for an `op` call.
    pub fn on(&self, op: FaultOp) -> FaultAction {
        let mut act = FaultAction::default();
        let mut sleep = 0;
        {
            let mut rules = self.rules.lock().expect("fault lock");
            for (r, seen) in rules.iter_mut() {
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
