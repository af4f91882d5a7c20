//! Where a local cluster's daemons listen, and proof that those ports are free before
//! anything starts (another program on 9000 or 6700 is a newcomer's first error).
//!
//! A port base `B` (`kdss up --port-base`, default 6700) places master i at B+10i (gRPC)
//! and B+10i+1 (HTTP), storage node i at B+100+10i / B+100+10i+1 and S3 gateway i at
//! B+2300+i, so the default base gives the documented 6700 / 6800 / 9000. Metrics
//! listeners of their own: gateway i at B+2310+i (9010), the mount at B+2320 (9020);
//! masters and storage nodes serve `/metrics` on their HTTP ports.

use crate::error::LaunchError;
use crate::layout::Layout;
use crate::spec::ClusterSpec;

/// The base of the documented ports (master 6700, nodes 6800, gateway 9000).
pub const STANDARD_BASE: u16 = 6700;
/// Offset of storage node 0's gRPC port from the base.
pub const NODE_OFFSET: u16 = 100;
/// Offset of gateway 0's S3 port from the base.
pub const GATEWAY_OFFSET: u16 = 2300;
/// Offset of gateway 0's metrics port from the base.
pub const GATEWAY_METRICS_OFFSET: u16 = 2310;
/// Offset of the ksfs mount's metrics port from the base.
pub const MOUNT_METRICS_OFFSET: u16 = 2320;
/// Most gateways a port base has room for (below the gateways' metrics ports).
pub const MAX_GATEWAYS: usize = 10;
/// Most masters a port base has room for (their ports must stay below the nodes').
pub const MAX_MASTERS: usize = 9;
/// Most storage nodes a port base has room for (below the gateways' ports).
pub const MAX_NODES: usize = 219;

/// Master `i`'s (gRPC, HTTP) ports for base `b`.
pub fn master_ports(b: u16, i: usize) -> (u16, u16) {
    let p = b + 10 * i as u16;
    (p, p + 1)
}

/// Storage node `i`'s (gRPC, HTTP) ports for base `b`.
pub fn node_ports(b: u16, i: usize) -> (u16, u16) {
    let p = b + NODE_OFFSET + 10 * i as u16;
    (p, p + 1)
}

/// Gateway `i`'s S3 port for base `b`.
pub fn gateway_port(b: u16, i: usize) -> u16 {
    b + GATEWAY_OFFSET + i as u16
}

/// Gateway `i`'s metrics port for base `b`.
pub fn gateway_metrics_port(b: u16, i: usize) -> u16 {
    b + GATEWAY_METRICS_OFFSET + i as u16
}

/// The ksfs mount's metrics port for base `b`.
pub fn mount_metrics_port(b: u16) -> u16 {
    b + MOUNT_METRICS_OFFSET
}

/// Whether base `b` leaves room for the spec's daemons below port 65536.
pub fn base_fits(b: u16, _spec: &ClusterSpec) -> bool {
    (b as usize) + MOUNT_METRICS_OFFSET as usize <= u16::MAX as usize
}

/// Every port of a base plan for `spec`.
fn plan_ports(b: u16, spec: &ClusterSpec) -> Vec<u16> {
    let mut v = Vec::new();
    for i in 0..spec.masters {
        let (g, h) = master_ports(b, i);
        v.extend([g, h]);
    }
    for i in 0..spec.nodes {
        let (g, h) = node_ports(b, i);
        v.extend([g, h]);
    }
    v.extend((0..spec.gateways).map(|i| gateway_port(b, i)));
    v.extend((0..spec.gateways).map(|i| gateway_metrics_port(b, i)));
    v.push(mount_metrics_port(b));
    v
}

/// Ports handed out by this process (tests start several clusters at once).
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// Lowest port tests use: below it live well-known services.
const TEST_LOW: u16 = 20000;
/// Start of Linux's ephemeral range (32768-60999), with some margin.
const TEST_HIGH: u16 = 32000;

/// Whether `addr` can be bound now (nothing else listens there).
fn bindable(addr: impl std::net::ToSocketAddrs) -> bool {
    std::net::TcpListener::bind(addr).is_ok()
}

/// A port that was free a moment ago, below Linux's ephemeral range (32768-60999). A port
/// from `bind(:0)` lies inside that range, where any outgoing connection of a concurrent
/// test can take it before the daemon binds it ("node exited before it was ready" in CI).
/// Never the same port twice per process.
pub fn free_port() -> Result<u16, LaunchError> {
    let mut given = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = rand::random_range(TEST_LOW..TEST_HIGH);
        if given.contains(&port) {
            continue;
        }
        if bindable(("127.0.0.1", port)) {
            given.push(port);
            return Ok(port);
        }
    }
    Err(LaunchError::Io {
        what: format!("pick a free port in {TEST_LOW}-{}", TEST_HIGH - 1),
        source: std::io::Error::new(std::io::ErrorKind::AddrInUse, "1000 tries, none free"),
    })
}

/// A port base for `spec` (its counts of masters, nodes and gateways) whose every port
/// was free a moment ago and was never handed out by this process, below the ephemeral
/// range like [`free_port`]. For tests that run `kdss up --port-base` as a separate
/// process, or that occupy one of its ports on purpose.
pub fn free_port_base(spec: &ClusterSpec) -> Result<u16, LaunchError> {
    let top = TEST_HIGH - MOUNT_METRICS_OFFSET - 1;
    let mut given = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..200 {
        let b = rand::random_range(TEST_LOW..top);
        let ports = plan_ports(b, spec);
        if ports
            .iter()
            .all(|p| !given.contains(p) && bindable(("127.0.0.1", *p)))
        {
            given.extend(ports);
            return Ok(b);
        }
    }
    Err(LaunchError::Io {
        what: format!("pick a free port base in {TEST_LOW}-{top}"),
        source: std::io::Error::new(std::io::ErrorKind::AddrInUse, "200 tries, none free"),
    })
}

/// Every address of `layout` with the daemon and role that listens there.
fn listeners(layout: &Layout) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for m in &layout.masters {
        v.push((m.grpc.clone(), format!("master-{} gRPC", m.id)));
        v.push((m.http.clone(), format!("master-{} HTTP", m.id)));
    }
    for n in &layout.nodes {
        v.push((n.grpc.clone(), format!("{} gRPC", n.id)));
        v.push((n.http.clone(), format!("{} HTTP", n.id)));
    }
    for (i, g) in layout.gateways.iter().enumerate() {
        v.push((g.clone(), format!("s3gw-{} S3 endpoint", i + 1)));
    }
    for (i, g) in layout.gateway_metrics.iter().enumerate() {
        v.push((g.clone(), format!("s3gw-{} metrics", i + 1)));
    }
    if let Some(m) = &layout.mount_metrics {
        v.push((m.clone(), "ksfs mount metrics".into()));
    }
    v
}

/// The first address of `layout` that another program holds, with whose it would have
/// been: `(address, "s3gw-1 S3 endpoint")`. Checked before anything starts, so the error
/// names the port instead of a daemon dying on it (or, for an HTTP port, a readiness
/// probe reaching the other program).
pub fn first_taken(layout: &Layout) -> Option<(String, String)> {
    listeners(layout)
        .into_iter()
        .find(|(addr, _)| !bindable(addr.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ClusterSpec {
        ClusterSpec::new("/tmp/x".into(), "/bin/true".into())
    }

    #[test]
    fn standard_base_gives_the_documented_ports() {
        assert_eq!(master_ports(STANDARD_BASE, 0), (6700, 6701));
        assert_eq!(master_ports(STANDARD_BASE, 2), (6720, 6721));
        assert_eq!(node_ports(STANDARD_BASE, 3), (6830, 6831));
        assert_eq!(gateway_port(STANDARD_BASE, 0), 9000);
        assert_eq!(gateway_metrics_port(STANDARD_BASE, 0), 9010);
        assert_eq!(mount_metrics_port(STANDARD_BASE), 9020);
    }

    #[test]
    fn free_base_never_repeats_a_port() {
        let s = spec();
        let a = plan_ports(free_port_base(&s).unwrap(), &s);
        let b = plan_ports(free_port_base(&s).unwrap(), &s);
        assert!(a.iter().all(|p| !b.contains(p)), "{a:?} / {b:?}");
        assert!(a.iter().all(|p| (TEST_LOW..TEST_HIGH).contains(p)));
    }

    #[test]
    fn a_held_port_is_named() {
        let mut s = spec();
        s.ports = crate::PortPlan::Base(free_port_base(&s).unwrap());
        let l = Layout::plan(&s).unwrap();
        assert_eq!(first_taken(&l), None);
        let _held = std::net::TcpListener::bind(l.gateways[0].as_str()).unwrap();
        let (addr, what) = first_taken(&l).unwrap();
        assert_eq!(addr, l.gateways[0]);
        assert_eq!(what, "s3gw-1 S3 endpoint");
    }
}
