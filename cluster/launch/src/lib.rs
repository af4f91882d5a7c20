//! Starts a whole KDSS cluster on one machine as child processes of the `kdss` binary —
//! masters, storage nodes on file-backed raw devices, S3 gateways — and supervises it.
//! `kdss up` and the test harness (`kdss-testkit`) both use this one implementation, so
//! what a newcomer runs is what the tests exercise.
//!
//! Main types: [`ClusterSpec`] (what to run), [`LocalCluster`] (the running processes),
//! [`Layout`] (ports, secrets and paths, persisted so a restart finds the same data).

mod configs;
mod error;
mod fault;
mod layout;
mod mount;
pub mod ports;
mod process;
mod ready;
mod rpc;
mod spec;
pub mod tls;

pub mod cluster;
pub mod cluster_json;

pub use cluster::LocalCluster;
pub use error::LaunchError;
pub use fault::{fault_credential, post_fault, service_credential};
pub use layout::{Layout, MasterLayout, NodeLayout, Origin};
pub use mount::{MountRequest, fuse_unavailable, is_mounted, spawn_mount};
pub use ports::{STANDARD_BASE, free_port, free_port_base};
pub use process::Proc;
pub use rpc::AdminRpc;
pub use spec::{ClusterSpec, PortPlan};
