//! Master access: the generated gRPC client behind auth, leader failover and deadlines.
//!
//! Every configured master gets one lazily connected channel. `MasterClient::call` runs a
//! request against the current member and moves to another one (or to the leader a follower
//! names in `kdss-leader`) when the member is unreachable, always inside `rpc_timeout`: a dead
//! cluster yields an error by the deadline, never a hang. Callers use the typed method of
//! each RPC (`master.lookup(req).await?`, generated in `master_calls.rs`), which goes through
//! `call`; nothing outside this crate spells out the retry closure.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kdss_common::auth::signer::{Signed, Signer};
use kdss_proto::master as pb;
use tonic::transport::Channel;

/// Calls the master API: one typed method per RPC (`lookup`, `head_object`, …), each with
/// leader failover, retry and the deadline. `rpc()` hands out the raw generated client
/// whose channel signs each call (and adds `kdss-on-behalf-of` when acting for a user).
#[derive(Clone)]
pub struct MasterClient {
    pool: Arc<MasterPool>,
    auth: Signer,
    timeout: Duration,
}

/// The generated client type on a channel that signs every call (KDSS2: the method, the
/// body, the time, a nonce and `kdss-on-behalf-of` are bound into each call's proof).
pub type Rpc = pb::master_client::MasterClient<Signed<Channel>>;

/// The channels to the masters, shared by every identity of one [`crate::Client`].
struct MasterPool {
    /// `(address, channel)`; grows when a follower names a leader we were not configured with.
    members: Mutex<Vec<(String, Channel)>>,
    /// Index of the member tried first (the last one that answered).
    current: AtomicUsize,
    connect_timeout: Duration,
}

/// Masters and storage nodes are dialled the same way (kdss-shard holds the builder).
pub(crate) use kdss_shard::channel::lazy_channel;

impl MasterPool {
    fn member(&self, i: usize) -> (String, Channel) {
        let m = self.members.lock().expect("master pool lock");
        m[i % m.len()].clone()
    }

    fn len(&self) -> usize {
        self.members.lock().expect("master pool lock").len()
    }

    /// Index of `addr`, adding it when unknown (a leader hint).
    fn index_of(&self, addr: &str) -> Option<usize> {
        let mut m = self.members.lock().expect("master pool lock");
        if let Some(i) = m.iter().position(|(a, _)| a == addr) {
            return Some(i);
        }
        let ch = lazy_channel(addr, self.connect_timeout).ok()?;
        m.push((addr.to_string(), ch));
        Some(m.len() - 1)
    }
}

/// Whether a failed call should be retried on another master: the member was unreachable,
/// is not (or no longer) the leader, or the transport broke before an answer.
fn is_failover(s: &tonic::Status) -> bool {
    match s.code() {
        tonic::Code::Unavailable => true,
        tonic::Code::Unknown | tonic::Code::Internal => {
            let msg = s.message();
            msg.contains("transport error")
                || msg.contains("connection")
                || msg.contains("h2 protocol error")
        }
        _ => false,
    }
}

impl MasterClient {
    /// Channels to `masters`, connected lazily. Fails only on a malformed address.
    pub(crate) fn new(
        masters: &[String],
        access_key: &str,
        secret_key: &str,
        timeout: Duration,
    ) -> Result<MasterClient, crate::ClientError> {
        if masters.is_empty() {
            return Err(crate::ClientError::Invalid(
                "no master address configured".into(),
            ));
        }
        let connect_timeout = timeout.min(Duration::from_secs(3));
        let mut members = Vec::with_capacity(masters.len());
        for a in masters {
            let ch = lazy_channel(a, connect_timeout).map_err(crate::ClientError::Invalid)?;
            members.push((a.clone(), ch));
        }
        Ok(MasterClient {
            pool: Arc::new(MasterPool {
                members: Mutex::new(members),
                current: AtomicUsize::new(0),
                connect_timeout,
            }),
            auth: Signer::new(access_key, secret_key),
            timeout,
        })
    }

    /// The same channels, acting for `user` (`kdss-on-behalf-of`).
    pub(crate) fn acting_for(&self, user: &str) -> MasterClient {
        MasterClient {
            pool: self.pool.clone(),
            auth: self.auth.acting_for(Some(user)),
            timeout: self.timeout,
        }
    }

    /// The access key calls are made for (the acted-for user when acting for one).
    pub fn identity(&self) -> &str {
        self.auth.on_behalf_of().unwrap_or(self.auth.access_key())
    }

    /// The deadline of one master call (failover and retries included).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn rpc_on(&self, ch: Channel) -> Rpc {
        pb::master_client::MasterClient::new(self.auth.wrap(ch))
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20)
    }

    /// A client on the current master (the leader when known). Calls that fail with
    /// Unavailable should be retried through [`MasterClient::call`].
    pub fn rpc(&self) -> Rpc {
        let (_, ch) = self.pool.member(self.pool.current.load(Ordering::Relaxed));
        self.rpc_on(ch)
    }

    /// Runs `f` against a master, retrying on another member when one is unreachable,
    /// within the configured deadline. The one implementation behind the typed methods.
    pub(crate) async fn call<T, F, Fut>(&self, f: F) -> Result<T, crate::ClientError>
    where
        F: Fn(Rpc) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut idx = self.pool.current.load(Ordering::Relaxed);
        let mut backoff = Duration::from_millis(20);
        let mut last: Option<tonic::Status> = None;
        let mut tried = 0usize;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.deadline_error(last));
            }
            let remaining = deadline - now;
            let n = self.pool.len();
            // With several masters, one hung member must not eat the whole deadline.
            let attempt = if n > 1 {
                (self.timeout / n as u32)
                    .max(Duration::from_secs(2))
                    .min(remaining)
            } else {
                remaining
            };
            let (addr, ch) = self.pool.member(idx);
            match tokio::time::timeout(attempt, f(self.rpc_on(ch))).await {
                Ok(Ok(resp)) => {
                    self.pool.current.store(idx % n, Ordering::Relaxed);
                    return Ok(resp.into_inner());
                }
                Ok(Err(s)) if is_failover(&s) => {
                    tracing::debug!(master = %addr, status = %s, "master unavailable, failing over");
                    let hint = s
                        .metadata()
                        .get(kdss_common::rpc_error::LEADER_KEY)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|a| self.pool.index_of(a));
                    idx = hint.unwrap_or(idx + 1);
                    last = Some(s);
                }
                Ok(Err(s)) => return Err(crate::ClientError::Master(s)),
                Err(_) => {
                    tracing::debug!(master = %addr, "master call timed out, failing over");
                    idx += 1;
                }
            }
            tried += 1;
            // After a full round of members, back off before the next round.
            if tried.is_multiple_of(n) {
                let now = Instant::now();
                if now >= deadline {
                    return Err(self.deadline_error(last));
                }
                tokio::time::sleep(backoff.min(deadline - now)).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
    }

    fn deadline_error(&self, last: Option<tonic::Status>) -> crate::ClientError {
        match last {
            Some(s) if s.code() == tonic::Code::Unavailable && s.message().contains("leader") => {
                crate::ClientError::Master(s)
            }
            Some(_) => crate::ClientError::NoMaster(
                self.pool
                    .members
                    .lock()
                    .expect("master pool lock")
                    .iter()
                    .map(|m| m.0.clone())
                    .collect(),
            ),
            None => crate::ClientError::Timeout(self.timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dead_cluster_fails_within_the_deadline() {
        // Bind then drop: the ports are closed, nobody answers.
        let a = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let b = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mc = MasterClient::new(
            &[a.to_string(), b.to_string()],
            "ak",
            "sk",
            Duration::from_millis(800),
        )
        .unwrap();
        let t0 = Instant::now();
        let r = mc.cluster_status(pb::ClusterStatusRequest {}).await;
        let took = t0.elapsed();
        assert!(matches!(r, Err(crate::ClientError::NoMaster(_))), "{r:?}");
        assert!(took < Duration::from_millis(1500), "took {took:?}");
    }

    #[tokio::test]
    async fn a_silent_master_times_out_instead_of_hanging() {
        // Accepts TCP but never speaks HTTP/2.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut socks = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                socks.push(s);
            }
        });
        let mc =
            MasterClient::new(&[addr.to_string()], "ak", "sk", Duration::from_millis(500)).unwrap();
        let t0 = Instant::now();
        let r = mc.cluster_status(pb::ClusterStatusRequest {}).await;
        assert!(r.is_err());
        assert!(
            t0.elapsed() < Duration::from_millis(1200),
            "took {:?}",
            t0.elapsed()
        );
        hold.abort();
    }
}
