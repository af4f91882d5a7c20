//! Histories of concurrent operations on a key-value store, and a checker that decides
//! whether a history is linearizable: whether some order of the operations, each placed
//! between its invocation and its completion, explains every answer the clients saw.
//!
//! Partition tests record every S3 call into a [`Recorder`] while faults are injected,
//! then hand the [`History`] to [`check`]. The model is a register per key (put, get,
//! delete); keys are independent, so the search runs per key, which keeps it small.
//! Renames join keys: the keys they touch are searched together as one small map.
//! The search is Wing & Gong's, with Lowe's memoization of (linearized set, state) as
//! Porcupine does it; calls whose outcome the client does not know (a timeout) may have
//! taken effect once at any time after their invocation, or never. Lists (multi-key
//! reads) are held to the writes and deletes around them (`lists.rs`).

mod check;
mod history;
mod lists;

pub use check::{Anomaly, Budget, MAX_GROUP, Report, Verdict, check};
pub use history::{Call, History, HistoryError, Operation, Outcome, Pending, Recorder};
pub use lists::{ListAnomaly, ListFault};
