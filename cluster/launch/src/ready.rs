//! Readiness checks: a daemon is ready when it answers as itself, not after a sleep and
//! not when some program accepts a TCP connection on its port (another program on the
//! gateway's port would take the user's S3 traffic). Masters prove themselves with an
//! authenticated gRPC status, storage nodes by being online at the master, gateways by
//! their `Server: kdss` header.

use crate::error::LaunchError;
use crate::process::Proc;
use crate::rpc::AdminRpc;
use kdss_common::tls::ClientTls;
use std::sync::Arc;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(50);

fn exited(p: &mut Proc) -> Option<LaunchError> {
    p.exit_status().map(|status| LaunchError::Exited {
        name: p.name.clone(),
        status,
        reason: p.exit_reason(),
    })
}

/// Polls `probe` until it succeeds while `p` stays alive: `p`'s own exit is reported at
/// once, and past `timeout` the probe's last complaint and `p`'s log tail.
async fn wait_until<F, Fut>(
    p: &mut Proc,
    timeout: Duration,
    mut probe: F,
) -> Result<(), LaunchError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    let mut last = String::from("not tried");
    while start.elapsed() < timeout {
        if let Some(e) = exited(p) {
            return Err(e);
        }
        match probe().await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
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

/// Waits until `addr` accepts TCP connections while `p` stays alive.
pub async fn wait_tcp(p: &mut Proc, addr: &str, timeout: Duration) -> Result<(), LaunchError> {
    wait_until(p, timeout, || async {
        tokio::net::TcpStream::connect(addr)
            .await
            .map(drop)
            .map_err(|e| format!("connect {addr}: {e}"))
    })
    .await
}

/// How long one HTTP probe may take (a foreign program may accept and never answer).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a KDSS gateway sends in every response, error or not (s3gw `server.rs`).
const GATEWAY_SERVER: &str = "kdss";

/// Sends `GET /` to `addr` and checks the answer comes from a KDSS gateway: an S3 error
/// (anonymous requests are refused) with the `Server: kdss` header.
async fn probe_gateway(addr: &str, tls: Option<&Arc<ClientTls>>) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let mut s = crate::tls::MaybeTls::connect(tcp, addr, tls).await?;
        let req = format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("send to {addr}: {e}"))?;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
            let n = s
                .read(&mut buf)
                .await
                .map_err(|e| format!("read from {addr}: {e}"))?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<Vec<u8>, String>(head)
    };
    let head = tokio::time::timeout(PROBE_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            format!("{addr} accepted but sent no HTTP answer within {PROBE_TIMEOUT:?}")
        })??;
    let text = String::from_utf8_lossy(&head);
    let server = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("server")
            .then(|| v.trim().to_string())
    });
    match server {
        Some(s) if s == GATEWAY_SERVER => Ok(()),
        Some(s) => Err(format!(
            "{addr} answers, but as {s:?}, not as a KDSS gateway: another program has the port"
        )),
        None => Err(format!(
            "{addr} answers, but without a Server header, not as a KDSS gateway \
             (first line: {:?})",
            text.lines().next().unwrap_or("")
        )),
    }
}

/// Waits until `p`, an S3 gateway, answers on `addr` as a KDSS gateway while it stays
/// alive. A program that merely accepts connections there is not our gateway.
pub async fn wait_gateway(
    p: &mut Proc,
    addr: &str,
    tls: Option<&Arc<ClientTls>>,
    timeout: Duration,
) -> Result<(), LaunchError> {
    wait_until(p, timeout, || probe_gateway(addr, tls)).await
}

/// Waits until some master names a leader; returns a connection to a master that does.
pub async fn wait_leader(
    masters: &mut [Proc],
    addrs: &[String],
    access_key: &str,
    secret_key: &str,
    tls: Option<&Arc<ClientTls>>,
    timeout: Duration,
) -> Result<AdminRpc, LaunchError> {
    let start = Instant::now();
    let mut last = String::from("not tried");
    while start.elapsed() < timeout {
        for (p, addr) in masters.iter_mut().zip(addrs) {
            if let Some(e) = exited(p) {
                return Err(e);
            }
            match AdminRpc::connect(addr, access_key, secret_key, tls, Duration::from_secs(2)).await
            {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::path::Path;

    /// Answers every connection on a fresh port with `reply`; returns the address.
    fn fake_http(reply: &'static str) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(reply.as_bytes());
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_foreign_http_server_is_not_our_gateway() {
        let addr =
            fake_http("HTTP/1.1 403 Forbidden\r\nServer: MinIO\r\nContent-Length: 0\r\n\r\n");
        let e = probe_gateway(&addr, None).await.unwrap_err();
        assert!(e.contains("MinIO") && e.contains("another program"), "{e}");
    }

    #[tokio::test]
    async fn a_silent_listener_is_not_our_gateway() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let e = probe_gateway(&addr, None).await.unwrap_err();
        assert!(e.contains("no HTTP answer"), "{e}");
    }

    #[tokio::test]
    async fn the_kdss_server_header_is_our_gateway() {
        let addr = fake_http("HTTP/1.1 403 Forbidden\r\nserver: kdss\r\ncontent-length: 0\r\n\r\n");
        probe_gateway(&addr, None).await.unwrap();
    }

    #[tokio::test]
    async fn a_gateway_that_exits_is_reported_with_its_error_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("gw.log");
        std::fs::write(
            &log,
            "error: S3 gateway failed: bind 127.0.0.1:9000: in use\n",
        )
        .unwrap();
        let mut p = Proc::spawn("s3gw-1", Path::new("/bin/true"), vec![], &[], log).unwrap();
        let addr = fake_http("HTTP/1.1 200 OK\r\nServer: MinIO\r\n\r\n");
        let e = wait_gateway(&mut p, &addr, None, Duration::from_secs(10))
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, LaunchError::Exited { .. }), "{text}");
        assert!(text.contains("bind 127.0.0.1:9000: in use"), "{text}");
    }
}
