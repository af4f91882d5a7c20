//! A cluster spread over network namespaces, so tests see what separate hosts see: each
//! daemon has its own network stack and address on a Linux bridge, and faults are cut
//! into the wire between them (routes that drop packets, links taken down, links the test
//! process carries with delay, jitter and loss: `wire.rs`).
//!
//! [`Net`] is the wire: a bridge in the root namespace (the test process reaches every
//! host through it) and one namespace per host joined to it by a veth pair, named with a
//! per-run id so parallel runs never collide, and removed on drop. [`NetCluster`] starts
//! 3 masters, 5 storage nodes (file-backed disks) and an S3 gateway on it with
//! `ip netns exec`, from configs made out of `deploy/*.toml` (the documented multi-host
//! deploy, TLS on, certificates from `kdss certs`), and stops them on drop; with
//! [`NetOpts::mounts`] it also runs ksfs mounts of the bucket, each on a host of its own;
//! [`NetOpts::skewable`] hosts run with a wall clock the test can step (`clock.rs`).

mod clock;
mod cluster;
mod configs;
mod mount;
mod net;
mod wire;

pub use clock::{LIBFAKETIME, faketime_env, faketime_unavailable};
pub use cluster::{NetCluster, NetOpts};
pub use net::{Host, Net};
pub use wire::Impairment;

use anyhow::{Context, bail};
use std::process::Command;

/// Why namespace tests cannot run here (`None`: they can): they need root and iproute2.
pub fn netns_unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !root {
        return Some("network namespace tests need root (ip netns add)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("the `ip` command (Debian package iproute2) is missing".into()),
    }
}

/// Runs `ip ARGS`, failing with its stderr.
pub(crate) fn ip(args: &[&str]) -> anyhow::Result<()> {
    run("ip", args)
}

pub(crate) fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let o = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("run {program}"))?;
    if !o.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}
