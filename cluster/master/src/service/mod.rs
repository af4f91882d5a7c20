//! The `Master` gRPC service.
//!
//! Routing: the leader serves every call; a follower proxies every namespace, data, object,
//! bucket and user call to the leader (same request, same credential, plus `kdss-forwarded`),
//! so a client talking to any member reads its own writes. Only `ClusterStatus`,
//! `RegisterNode` and `Heartbeat` are answered by every member itself. With no leader (or a
//! forwarded call reaching a non-leader) the answer is Unavailable with `kdss-leader` naming
//! the leader's address when one is known.
//!
//! Reads on the leader come from its local database, but only inside a read lease a quorum
//! confirmed ([`lease`]): a leader cut off from the other masters refuses rather than answer
//! stale. Writes become one `Mutation` proposed through Raft, whose `ctx` (time, caller,
//! role) is filled here so that applying is deterministic on every member.

mod backup;
mod balance;
mod cluster;
mod data;
mod disks;
mod lease;
mod modes;
mod repair;
mod rpc;
pub mod seal;
mod trash;

use crate::auth::{self, Caller};
// Kept at their old paths: the service's submodules and the workers import them from here.
pub use crate::config::{READ_CAPABILITY_TTL_MS, WRITE_CAPABILITY_TTL_MS};
use crate::membership::Registry;
use crate::metrics::Metrics;
pub use crate::raft::status::{no_leader, write_error};
use crate::raft::{NodeId, Raft, StateMachine};
use kdss_common::CapabilityKey;
use kdss_proto::master as pb;
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use openraft::ServerState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// Largest request the `Master` service decodes. tonic decodes a message before any handler
/// (and so authentication) runs, so this bounds what an unauthenticated peer makes a master
/// buffer. The largest legitimate requests are far smaller: inline data is capped at 64 KiB
/// (`kdss_common::limits::MAX_INLINE_BYTES`), a CommitWrite carries at most 1024 extents
/// (about 40 KiB), a DeleteObjects 1000 keys of at most 1 KiB, a CompleteMultipart 10 000
/// parts of about 150 bytes (1.5 MiB). Replies and the Raft peer service keep their own,
/// larger limits (listings, snapshots).
pub const MAX_REQUEST_BYTES: usize = 4 << 20;

/// Metadata flag on a call a follower proxied to the leader (never proxied twice).
pub const FORWARDED_HEADER: &str = "kdss-forwarded";
/// Metadata flag on a heartbeat one master relays to the others.
pub const RELAYED_HEADER: &str = "kdss-relayed";

/// Everything the service needs, shared with the background tasks.
pub struct State {
    /// This member's id.
    pub id: NodeId,
    /// Cluster secret (service identity, capabilities).
    pub secret: String,
    /// The Raft node.
    pub raft: Raft,
    /// The namespace database (reads).
    pub sm: StateMachine,
    /// Storage nodes and disks.
    pub registry: Registry,
    /// Signs shard capabilities.
    pub caps: CapabilityKey,
    /// Seals and opens users' secret keys (key derived from the cluster secret).
    pub seal: kdss_meta::sealed::SecretSeal,
    /// Batches concurrent mutations into Raft entries.
    pub proposer: crate::raft::proposer::Proposer,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Refuse allocations above this used share (percent).
    pub reject_pct: u8,
    /// Log an alert above this used share (percent).
    pub alert_pct: u8,
    /// HTTP address of each member (for ClusterStatus).
    pub http_addrs: HashMap<NodeId, String>,
    /// EC policy of buckets created without one.
    pub default_ec: kdss_common::EcPolicy,
    /// Background jobs (status, run-now triggers, settings).
    pub jobs: crate::workers::Jobs,
    /// `[balance]`: the threshold `BalanceStatus` reports (defaults until the server sets it).
    pub balance: crate::config::BalanceSection,
    /// Cluster events to Lark (off until the server starts it from `[notify]`).
    pub events: crate::events::Events,
    /// Metadata backups: the cluster id headers carry and the schedule (set by the server).
    pub backups: crate::backup::Backups,
    /// Whether this master serves mutual TLS, so a caller's certificate role can be
    /// checked (false on a plaintext loopback cluster: there is no certificate to check).
    pub mtls: bool,
    channels: Mutex<HashMap<String, Channel>>,
    lease: lease::ReadLease,
}

/// The `Master` gRPC service.
#[derive(Clone)]
pub struct MasterService {
    pub(crate) st: Arc<State>,
}

impl MasterService {
    /// The service over shared state.
    pub fn new(st: Arc<State>) -> Self {
        MasterService { st }
    }
}

impl State {
    /// Builds the shared state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: NodeId,
        secret: &str,
        raft: Raft,
        sm: StateMachine,
        metrics: Arc<Metrics>,
        reject_pct: u8,
        alert_pct: u8,
        http_addrs: HashMap<NodeId, String>,
        default_ec: kdss_common::EcPolicy,
        gc: crate::config::GcSection,
        repair: crate::workers::repair::config::RepairSection,
        limits: &crate::limits::LimitsSection,
    ) -> Self {
        State {
            id,
            secret: secret.to_string(),
            proposer: crate::raft::proposer::Proposer::start(
                raft.clone(),
                limits.proposal_queue,
                limits.proposal_wait(),
            ),
            raft,
            sm,
            registry: Registry::default(),
            caps: CapabilityKey::new(secret),
            seal: kdss_meta::sealed::SecretSeal::new(secret),
            metrics,
            reject_pct,
            alert_pct,
            http_addrs,
            default_ec,
            jobs: crate::workers::Jobs::new(gc, repair),
            balance: crate::config::BalanceSection::default(),
            events: crate::events::Events::off(),
            backups: crate::backup::Backups::default(),
            mtls: false,
            channels: Mutex::new(HashMap::new()),
            lease: lease::ReadLease::default(),
        }
    }

    /// The namespace database.
    pub fn pool(&self) -> sqlx::SqlitePool {
        self.sm.pool()
    }

    /// Current leader id and its gRPC address, if known.
    pub fn leader(&self) -> (Option<NodeId>, Option<String>) {
        let m = self.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader;
        let addr = id.and_then(|l| {
            m.membership_config
                .membership()
                .get_node(&l)
                .map(|n| n.addr.clone())
        });
        (id, addr)
    }

    /// True when this member is the leader now.
    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.id)
    }

    /// A capability for `op` on `target`, valid for the op's lifetime: READ for
    /// [`READ_CAPABILITY_TTL_MS`], anything else (WRITE, DELETE, LIST) for
    /// [`WRITE_CAPABILITY_TTL_MS`]. `shard_len` is the stripe's shard length (0 for LIST).
    pub fn capability(
        &self,
        target: kdss_common::ShardTarget,
        op: kdss_proto::storage::ShardOp,
        shard_len: u64,
    ) -> kdss_proto::storage::Capability {
        let ttl = match op {
            kdss_proto::storage::ShardOp::Read => READ_CAPABILITY_TTL_MS,
            _ => WRITE_CAPABILITY_TTL_MS,
        };
        let exp = kdss_common::time::now_ms() + ttl;
        self.caps.sign(target, op, shard_len, exp)
    }

    /// A cached channel to another member's gRPC address.
    pub fn channel(&self, addr: &str) -> Result<Channel, Status> {
        let mut ch = self.channels.lock().expect("channel cache");
        if let Some(c) = ch.get(addr) {
            return Ok(c.clone());
        }
        let c = crate::raft::network::lazy_channel(addr).map_err(Status::internal)?;
        ch.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// None when this member serves the call; the leader's channel when it must be proxied.
    /// The leader serves only after the read barrier ([`State::read_barrier`]); writes pass
    /// it too, which costs at most one confirmation per lease and keeps one path.
    pub async fn route<T>(&self, req: &Request<T>) -> Result<Option<Channel>, Status> {
        if self.is_leader() {
            self.read_barrier().await?;
            return Ok(None);
        }
        let (id, addr) = self.leader();
        let forwarded = req.metadata().contains_key(FORWARDED_HEADER);
        match (id, addr) {
            (Some(id), Some(addr)) if id != self.id && !forwarded => Ok(Some(self.channel(&addr)?)),
            (_, addr) => Err(no_leader(addr.as_deref())),
        }
    }

    /// Authenticates the call against the local user table.
    pub async fn caller(&self, md: &MetadataMap) -> Result<Caller, Status> {
        auth::authenticate(md, &self.pool()).await
    }

    /// Refuses unless `caller` may use `bucket` (and may write, when `write`).
    pub async fn check_bucket(
        &self,
        caller: &Caller,
        bucket: &str,
        write: bool,
    ) -> Result<(), Status> {
        if write && !caller.may_write() {
            return Err(auth::denied(format!(
                "{} is a viewer: read only",
                caller.access_key
            )));
        }
        if caller.is_admin() {
            return Ok(());
        }
        let pool = self.pool();
        if crate::meta_api::bucket_access(&pool, bucket, caller).await? {
            return Ok(());
        }
        // Say NoSuchBucket for a bucket that does not exist, AccessDenied otherwise.
        crate::meta_api::get_bucket(&pool, bucket).await?;
        Err(auth::denied(format!(
            "{} may not use bucket {bucket:?}",
            caller.access_key
        )))
    }

    /// Proposes one mutation through Raft and returns its reply (a domain failure is an Err
    /// carrying errno and code).
    pub async fn propose(&self, caller: &Caller, op: Op) -> Result<Reply, Status> {
        let mut m = pb::Mutation {
            ctx: Some(pb::ApplyContext {
                now_ns: kdss_common::time::now_ns(),
                caller: caller.access_key.clone(),
                caller_role: caller.role as u32,
            }),
            op: Some(op),
        };
        let plain_secret = crate::meta_api::prepare(&mut m, &self.seal)?;
        let r = self.proposer.propose(m).await?;
        if let Some(f) = r.failure {
            return Err(crate::meta_api::failure_status(&f));
        }
        let reply = r
            .reply
            .ok_or_else(|| Status::internal("mutation reply without a result"))?;
        Ok(match (reply, plain_secret) {
            // The entry carried the secret sealed; its creator gets it in clear, once.
            (Reply::CreateUser(mut u), Some(plain)) => {
                u.secret_key = plain;
                Reply::CreateUser(u)
            }
            (reply, _) => reply,
        })
    }
}

/// The request marked as forwarded, for the leader; the channel it goes through signs it
/// for the verified caller ([`auth::forward_signer`]).
pub fn forwarded<T>(req: Request<T>) -> Request<T> {
    let mut out = Request::new(req.into_inner());
    out.metadata_mut().insert(
        FORWARDED_HEADER,
        tonic::metadata::MetadataValue::from_static("1"),
    );
    out
}

/// A reply variant that does not match the mutation (a bug, never a user error).
pub fn unexpected(r: Reply) -> Status {
    Status::internal(format!("unexpected mutation reply {r:?}"))
}
