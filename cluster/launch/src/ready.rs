//! Readiness checks: a daemon is ready when it answers, not after a sleep.

use crate::error::LaunchError;
use crate::process::Proc;
use crate::rpc::AdminRpc;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(50);

fn exited(p: &mut Proc) -> Option<LaunchError> {
    p.exit_status().map(|status| LaunchError::Exited {
        name: p.name.clone(),
        status,
        log_tail: p.log_tail(30),
    })
}

/// Waits until `addr` accepts TCP connections while `p` stays alive.
pub async fn wait_tcp(p: &mut Proc, addr: &str, timeout: Duration) -> Result<(), LaunchError> {
    let start = Instant::now();
    let mut last = String::from("not tried");
    while start.elapsed() < timeout {
        if let Some(e) = exited(p) {
            return Err(e);
        }
        match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("connect {addr}: {e}"),
        }
        tokio::time::sleep(POLL).await;
    }
    Err(LaunchError::NotReady {
        name: p.name.clone(),
        secs: timeout.as_secs(),
        last_error: last,
        log_tail: p.log_tail(30),
    })
}

/// Waits until some master names a leader; returns a connection to a master that does.
pub async fn wait_leader(
    masters: &mut [Proc],
    addrs: &[String],
    access_key: &str,
    secret_key: &str,
    timeout: Duration,
) -> Result<AdminRpc, LaunchError> {
    let start = Instant::now();
    let mut last = String::from("not tried");
    while start.elapsed() < timeout {
        for (p, addr) in masters.iter_mut().zip(addrs) {
            if let Some(e) = exited(p) {
                return Err(e);
            }
            match AdminRpc::connect(addr, access_key, secret_key, Duration::from_secs(2)).await {
                Ok(rpc) => match rpc.status().await {
                    Ok(s) if s.leader_id != 0 => return Ok(rpc),
                    Ok(_) => last = format!("{addr}: no leader yet"),
                    Err(e) => last = format!("{addr}: {e}"),
                },
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        tokio::time::sleep(POLL * 4).await;
    }
    let tails: Vec<String> = masters
        .iter()
        .map(|p| format!("[{}]\n{}", p.name, p.log_tail(15)))
        .collect();
    Err(LaunchError::NotReady {
        name: "masters".into(),
        secs: timeout.as_secs(),
        last_error: last,
        log_tail: tails.join("\n"),
    })
}

/// Waits until the master reports `node_ids` online with all their disks.
pub async fn wait_nodes_online(
    rpc: &AdminRpc,
    nodes: &mut [Proc],
    node_ids: &[String],
    disks_per_node: usize,
    timeout: Duration,
) -> Result<(), LaunchError> {
    let start = Instant::now();
    let mut last = String::from("not tried");
    while start.elapsed() < timeout {
        for p in nodes.iter_mut() {
            if let Some(e) = exited(p) {
                return Err(e);
            }
        }
        match rpc.status().await {
            Ok(s) => {
                let missing: Vec<&String> = node_ids
                    .iter()
                    .filter(|id| {
                        !s.nodes.iter().any(|n| {
                            &&n.node_id == id && n.online && n.disks.len() >= disks_per_node
                        })
                    })
                    .collect();
                if missing.is_empty() {
                    return Ok(());
                }
                last = format!("not yet online: {missing:?}");
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(POLL * 4).await;
    }
    let tails: Vec<String> = nodes
        .iter()
        .map(|p| format!("[{}]\n{}", p.name, p.log_tail(10)))
        .collect();
    Err(LaunchError::NotReady {
        name: "storage nodes".into(),
        secs: timeout.as_secs(),
        last_error: last,
        log_tail: tails.join("\n"),
    })
}
