//! KDSS master: the single source of truth for what exists and where it lives.
//!
//! A group of 1, 3 or 5 masters replicates the namespace with openraft ([`raft`]): every
//! mutation is one Raft entry applied by `kdss-meta` to a SQLite database; the Raft log is
//! group-committed so concurrent writes share fsyncs. The `Master` gRPC service
//! ([`service`]) authenticates every call ([`auth`]), proxies calls from followers to the
//! leader, serves reads from the leader's database, places stripes ([`placement`]) on the
//! disks that storage nodes report in their heartbeats ([`membership`]) and hands out shard
//! capabilities; [`health`] keeps each disk's state (online, suspect, offline, draining);
//! [`events`] tells a Lark group when one changes, a repair ends or a balance starts;
//! [`console`] mounts the web console (`kdss-console`) on the HTTP port;
//! [`backup`] copies the namespace into backup files and restores one into a new group.
//! [`run`] is the daemon entry point (`kdss master -c master.toml`); `bench` (with the
//! `bench` feature only) measures metadata operations against running masters.

pub mod auth;
pub mod backup;
// Benchmarks are for `kdss bench` and tests, not the library API: built only with the
// `bench` feature (the kdss binary and this crate's own tests turn it on).
#[cfg(feature = "bench")]
pub mod bench;
pub mod caller;
pub mod config;
pub mod console;
pub mod error;
pub mod events;
pub mod health;
pub mod http;
pub mod limits;
pub mod membership;
pub mod meta_api;
pub mod metrics;
pub mod placement;
pub mod raft;
pub mod server;
pub mod service;
pub mod workers;

pub use config::MasterConfig;
pub use error::MasterError;
pub use server::{RunningMaster, run, start};
