//! Disk health (docs/architecture.md, "Disk states"): the master's verdict on every disk,
//! online, suspect, offline or draining, kept in the replicated `disk_states` table so a new
//! leader starts from the same states.
//!
//! - [`config`]: the `[health]` knobs.
//! - [`slow`]: which disks are slow against their peers in a window (pure).
//! - [`state`]: the state machine over one window's signals (pure).
//! - [`job`]: the loop that refreshes every member's cache of the states and, on the leader,
//!   judges the latest heartbeats and proposes the changes.
//!
//! Operators set states by hand with `kdss-cli disk offline|online|drain`
//! (`service/disks.rs`); the automatic pass never overrides those.

pub mod config;
pub mod job;
pub mod slow;
pub mod state;

use kdss_proto::master::DiskStatus;

/// The word `disk list` prints for a status.
pub fn status_name(s: DiskStatus) -> &'static str {
    match s {
        DiskStatus::Unspecified | DiskStatus::Online => "online",
        DiskStatus::Suspect => "suspect",
        DiskStatus::Offline => "offline",
        DiskStatus::Draining => "draining",
    }
}
