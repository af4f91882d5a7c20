//! Registration with the masters: RegisterNode, then Heartbeat with every disk's DiskInfo at
//! the interval the master asks for, signed with the service identity. While no master
//! answers it retries quietly (masters may start after the node).

use crate::node_shared::NodeShared;
use kdss_common::auth::signer::{Signed, Signer};
use kdss_proto::master::RegisterNodeRequest;
use kdss_proto::master::master_client::MasterClient;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tonic::transport::Channel;

/// Where the node tells the masters it can be reached, and where it sits (its failure
/// domain, which placement spreads stripes across).
#[derive(Clone, Debug)]
pub struct Advertise {
    pub grpc_addr: String,
    pub http_addr: String,
    /// `[node] zone`.
    pub zone: String,
    /// `[node] rack`.
    pub rack: String,
}

impl Advertise {
    /// The registration or heartbeat message: who and where the node is, and its disks.
    fn report(&self, node: &NodeShared) -> RegisterNodeRequest {
        RegisterNodeRequest {
            node_id: node.node_id.clone(),
            grpc_addr: self.grpc_addr.clone(),
            http_addr: self.http_addr.clone(),
            disks: node.disk_infos(),
            zone: self.zone.clone(),
            rack: self.rack.clone(),
        }
    }
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(3);
const RETRY: Duration = Duration::from_secs(1);
/// Wait before asking another master after one refused the node (answered, so alive).
const REFUSED_RETRY: Duration = Duration::from_millis(200);
/// How long a master that refused the node is skipped when a hint names it again.
const REFUSED_FOR: Duration = Duration::from_secs(3);

/// Deadline of a registration (forwarded to the leader by a follower, so it may take a
/// Raft-loaded master a while).
const REGISTER_DEADLINE: Duration = Duration::from_secs(5);

/// A request with a call deadline; the channel signs it (see [`connect`]).
fn timed<T>(msg: T, deadline: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(deadline);
    r
}

/// A heartbeat's deadline: one interval. The leader counts a node offline after
/// `OFFLINE_AFTER_MISSED` (3) intervals without news; a node whose master stopped
/// answering must notice and register elsewhere within that, which a 5 s deadline on a 2 s
/// interval did not allow (2 + 5 > 6: for a second after a leader was cut off, the new
/// leader saw no node online and refused every write, issue 17 run 8a095).
fn heartbeat_deadline(interval: Duration) -> Duration {
    interval.clamp(Duration::from_millis(500), REGISTER_DEADLINE)
}

/// A client on `addr` whose calls are signed with the service identity (KDSS2), over TLS
/// when the process has a `[tls]` section.
async fn connect(addr: &str, signer: &Signer) -> Option<MasterClient<Signed<Channel>>> {
    let ep = match kdss_common::tls::endpoint(addr) {
        Ok(ep) => ep.connect_timeout(Duration::from_secs(2)),
        Err(e) => {
            tracing::warn!(master = %addr, error = %e, "cannot dial master");
            return None;
        }
    };
    let ch = ep.connect().await.ok()?;
    Some(MasterClient::new(signer.wrap(ch)))
}

/// Runs until `stop` turns true.
pub async fn run(
    node: Arc<NodeShared>,
    masters: Vec<String>,
    secret: String,
    adv: Advertise,
    mut stop: watch::Receiver<bool>,
) {
    if masters.is_empty() {
        tracing::info!("no masters configured; not registering");
        return;
    }
    let signer = Signer::service(&secret);
    let mut failures = 0u64;
    let mut next = 0usize;
    let mut leader_hint: Option<String> = None;
    // The master that last turned the node away and when: a hint pointing straight back
    // to it (a follower naming a leader that lost its quorum) is not followed for a while,
    // so the node tries the other masters instead of bouncing between the two.
    let mut refused: Option<(String, std::time::Instant)> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let recently_refused = |a: &String| {
            refused
                .as_ref()
                .is_some_and(|(r, at)| r == a && at.elapsed() < REFUSED_FOR)
        };
        let addr = match leader_hint.take() {
            Some(h) if !recently_refused(&h) => h,
            _ => {
                let mut a = masters[next % masters.len()].clone();
                if recently_refused(&a) && masters.len() > 1 {
                    next += 1;
                    a = masters[next % masters.len()].clone();
                }
                a
            }
        };
        next += 1;
        let mut delay = RETRY;
        if let Some(mut client) = connect(&addr, &signer).await {
            let req = adv.report(&node);
            match client.register_node(timed(req, REGISTER_DEADLINE)).await {
                Ok(reply) => {
                    tracing::info!(master = %addr, "registered with master");
                    failures = 0;
                    let ms = reply.into_inner().heartbeat_interval_ms;
                    let interval = if ms == 0 {
                        DEFAULT_INTERVAL
                    } else {
                        Duration::from_millis(ms)
                    };
                    // Heartbeat until it fails, then register again.
                    loop {
                        tokio::select! {
                            _ = stop.wait_for(|v| *v) => return,
                            _ = tokio::time::sleep(interval) => {}
                        }
                        let req = adv.report(&node);
                        if let Err(s) = client
                            .heartbeat(timed(req, heartbeat_deadline(interval)))
                            .await
                        {
                            tracing::warn!(master = %addr, status = %s, "heartbeat failed; registering again");
                            leader_hint = leader_of(&s);
                            refused = Some((addr.clone(), std::time::Instant::now()));
                            break;
                        }
                    }
                    delay = Duration::from_millis(100);
                }
                Err(s) => {
                    leader_hint = leader_of(&s);
                    refused = Some((addr.clone(), std::time::Instant::now()));
                    // An answer, not a silence: the next master is worth asking soon.
                    delay = REFUSED_RETRY;
                    failures += 1;
                    if failures % 30 == 1 {
                        tracing::warn!(master = %addr, status = %s, "master refused registration; retrying");
                    }
                }
            }
        } else {
            failures += 1;
            if failures % 30 == 1 {
                tracing::info!(master = %addr, "no master reachable yet; retrying");
            }
        }
        tokio::select! {
            _ = stop.wait_for(|v| *v) => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

fn leader_of(s: &tonic::Status) -> Option<String> {
    s.metadata()
        .get(kdss_common::rpc_error::LEADER_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node notices a silent master (one interval of waiting plus the deadline) before
    /// the leader's three missed intervals mark it offline, at every interval a master
    /// may ask for.
    #[test]
    fn a_failed_heartbeat_is_noticed_before_the_node_counts_as_offline() {
        for ms in [500, 1000, 2000, 3000, 5000] {
            let interval = Duration::from_millis(ms);
            let noticed = interval + heartbeat_deadline(interval);
            assert!(noticed < interval * 3, "interval {interval:?}: {noticed:?}");
        }
    }
}
