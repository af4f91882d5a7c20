//! ksfs: mounts one KDSS bucket as a POSIX directory with FUSE (`ksfs -c mount.toml`).
//!
//! A thin door over the client library (docs/architecture.md): the namespace is the master's tree
//! of the bucket, and every byte goes through `kdss_client` (chunk → stripe → EC →
//! shards on storage nodes; reads through its cache and prefetch). There is no second
//! data path.
//!
//! Main parts: [`config::MountConfig`] (`mount.toml`), [`fs::Ksfs`] (each kernel
//! operation as an async function with deadlines), [`fuse::KsfsFuse`] (the `fuser`
//! adapter that hands requests to tokio and replies from the task), [`serve`] (connect,
//! mount, serve until unmounted or `shutdown`, flush, unmount, on the caller's runtime)
//! and [`run`] (the same on a runtime of its own until SIGINT/SIGTERM: `ksfs` and
//! `kdss mount` call it); [`metrics`] (served on `[mount] metrics_addr` when set); [`trim`]
//! (freed write buffers handed back to the system once writes go quiet).

pub mod atime;
pub mod attr;
pub mod config;
pub mod error;
pub mod fs;
pub mod fuse;
pub mod metrics;
pub mod mount;
pub mod trim;

pub use config::MountConfig;
pub use error::KsfsError;
pub use mount::{run, serve};
