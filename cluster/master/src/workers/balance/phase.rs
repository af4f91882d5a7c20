//! Where a balance stands. `balance status` shows it in words; the "balance started" event
//! fires only when a balance goes from resting to running, not when it resumes from a
//! pause or retries after being stuck (a balance that waits for repair, or finds no move,
//! ends its pass and picks up in the next one, which once announced it again each time).

use std::fmt;

/// The state of the balance on this leader.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Phase {
    /// Nothing asked for since this leader started.
    #[default]
    Idle,
    /// Moving shards.
    Running,
    /// Waiting for repair, which has shards queued or in flight.
    PausedForRepair,
    /// Waiting while clients move more than the limit per disk (bytes/s).
    PausedForClients { load: f64, limit: f64 },
    /// The disks are within the target spread.
    Balanced,
    /// An operator stopped it, or nobody asks for it any more.
    Stopped,
    /// No planned move keeps the spread rule and the target disk's room.
    Stuck { spread: f64 },
}

impl Phase {
    /// Whether a balance is under way: moving, paused, or stuck and retrying each pass. A
    /// round that starts from here continues that balance rather than starting a new one.
    pub fn under_way(&self) -> bool {
        !matches!(self, Phase::Idle | Phase::Balanced | Phase::Stopped)
    }
}

/// A rate for the phase text, in MiB/s with one decimal.
fn per_sec(bytes: f64) -> String {
    format!("{:.1} MiB/s", bytes / f64::from(1 << 20))
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Idle => f.write_str("no balance running"),
            Phase::Running => f.write_str("running"),
            Phase::PausedForRepair => f.write_str("paused: repair first"),
            Phase::PausedForClients { load, limit } => write!(
                f,
                "paused: client load {} per disk over {}",
                per_sec(*load),
                per_sec(*limit)
            ),
            Phase::Balanced => f.write_str("balanced"),
            Phase::Stopped => f.write_str("stopped"),
            Phase::Stuck { spread } => write!(
                f,
                "cannot go on: no shard can move without breaking the spread rule or \
                 overfilling a disk (spread {spread:.1} points)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_and_retries_are_part_of_a_balance_and_resting_states_are_not() {
        let paused = Phase::PausedForClients {
            load: 3.0 * 1048576.0,
            limit: 2.0 * 1048576.0,
        };
        assert_eq!(
            paused.to_string(),
            "paused: client load 3.0 MiB/s per disk over 2.0 MiB/s"
        );
        for p in [
            Phase::Running,
            Phase::PausedForRepair,
            paused,
            Phase::Stuck { spread: 30.0 },
        ] {
            assert!(p.under_way(), "{p}");
        }
        for p in [Phase::Idle, Phase::Balanced, Phase::Stopped] {
            assert!(!p.under_way(), "{p}");
        }
    }
}
