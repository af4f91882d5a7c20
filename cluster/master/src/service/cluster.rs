//! Buckets and users (who may create, delete, grant, list) and membership (node heartbeats,
//! cluster status). Rules: admins do everything; a user creates buckets it owns, deletes and
//! grants its own buckets and lists the buckets it reaches; viewers only read; user
//! management is for admins; node registration is for the service identity.

use super::{MasterService, RELAYED_HEADER, unexpected};
use crate::auth::{self, Caller};
use crate::membership::HEARTBEAT_INTERVAL;
use crate::meta_api as meta;
use kdss_proto::master as pb;
use kdss_proto::master::master_client::MasterClient;
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

type R<T> = Result<Response<T>, Status>;

/// How long a master may take to pass a node's report on to the leader, or to confirm
/// it leads, before it turns the node away: well inside the node's heartbeat deadline.
const RELAY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);

impl MasterService {
    /// Authenticates and requires an admin.
    pub(crate) async fn admin(&self, md: &MetadataMap) -> Result<Caller, Status> {
        let c = self.st.caller(md).await?;
        if !c.is_admin() {
            return Err(auth::denied(format!("{} is not an admin", c.access_key)));
        }
        Ok(c)
    }

    /// Admin, or the owner of `bucket`.
    async fn owner_or_admin(&self, caller: &Caller, bucket: &str) -> Result<(), Status> {
        if caller.is_admin() {
            return Ok(());
        }
        let b = meta::get_bucket(&self.st.pool(), bucket).await?;
        if b.owner == caller.access_key && caller.may_write() {
            return Ok(());
        }
        Err(auth::denied(format!(
            "{} does not own bucket {bucket:?}",
            caller.access_key
        )))
    }

    pub(crate) async fn create_bucket_checked(
        &self,
        req: Request<pb::CreateBucketRequest>,
    ) -> R<pb::BucketReply> {
        let caller = self.st.caller(req.metadata()).await?;
        let mut r = req.into_inner();
        if !caller.may_write() {
            return Err(auth::denied("viewers may not create buckets"));
        }
        if r.owner.is_empty() {
            r.owner = caller.access_key.clone();
        } else if r.owner != caller.access_key && !caller.is_admin() {
            return Err(auth::denied(
                "only an admin creates buckets for another user",
            ));
        }
        if r.owner == kdss_common::auth::SERVICE_ACCESS_KEY {
            return Err(auth::denied(
                "a bucket must be owned by a user; name the owner",
            ));
        }
        if r.k == 0 && r.m == 0 {
            r.k = self.st.default_ec.k;
            r.m = self.st.default_ec.m;
        }
        match self.st.propose(&caller, Op::CreateBucket(r)).await? {
            Reply::Bucket(b) => Ok(Response::new(b)),
            other => Err(unexpected(other)),
        }
    }

    pub(crate) async fn delete_bucket_checked(
        &self,
        req: Request<pb::BucketRequest>,
    ) -> R<pb::Empty> {
        let caller = self.st.caller(req.metadata()).await?;
        let name = req.into_inner().name;
        self.owner_or_admin(&caller, &name).await?;
        match self
            .st
            .propose(&caller, Op::DeleteBucket(pb::DeleteBucketOp { name }))
            .await?
        {
            Reply::Empty(e) => Ok(Response::new(e)),
            other => Err(unexpected(other)),
        }
    }

    pub(crate) async fn grant_checked(&self, req: Request<pb::GrantBucketRequest>) -> R<pb::Empty> {
        let caller = self.st.caller(req.metadata()).await?;
        let r = req.into_inner();
        self.owner_or_admin(&caller, &r.bucket).await?;
        match self.st.propose(&caller, Op::GrantBucket(r)).await? {
            Reply::Empty(e) => Ok(Response::new(e)),
            other => Err(unexpected(other)),
        }
    }

    pub(crate) async fn list_buckets_visible(
        &self,
        req: Request<pb::ListBucketsRequest>,
    ) -> R<pb::ListBucketsReply> {
        let caller = self.st.caller(req.metadata()).await?;
        let pool = self.st.pool();
        let mut all = meta::list_buckets(&pool).await?;
        if !caller.is_admin() {
            let mut visible = Vec::with_capacity(all.buckets.len());
            for b in all.buckets {
                if meta::bucket_access(&pool, &b.name, &caller).await? {
                    visible.push(b);
                }
            }
            all.buckets = visible;
        }
        Ok(Response::new(all))
    }

    /// RegisterNode and Heartbeat: recorded locally, relayed once to the other members.
    /// The leader's view is the one placement uses, so a follower answers only once the
    /// leader took the relay; when it cannot reach the leader it refuses, naming it, and
    /// the node registers with the leader itself; a leader answers only inside its read
    /// lease, so a node does not stay with one that lost its quorum. (A fire-and-forget
    /// relay left nodes talking to a follower whose sends to the leader were lost: they
    /// heard answers and stayed, the leader aged every node out and refused all writes,
    /// issue 17's one-way round.)
    pub(crate) async fn node_heartbeat(
        &self,
        req: Request<pb::RegisterNodeRequest>,
    ) -> R<pb::RegisterNodeReply> {
        auth::require_service(req.metadata())?;
        let relayed = req.metadata().contains_key(RELAYED_HEADER);
        let r = req.into_inner();
        if r.node_id.is_empty() || r.grpc_addr.is_empty() {
            return Err(Status::invalid_argument(
                "node_id and grpc_addr are required",
            ));
        }
        self.st
            .registry
            .record(&r)
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        if !relayed {
            let members = self.members();
            let leader_id = self.st.raft.metrics().borrow().current_leader;
            let leader = leader_id
                .filter(|l| *l != self.st.id)
                .and_then(|l| members.iter().find(|(id, _)| *id == l).cloned());
            // Every other member keeps its own view of the nodes, so a master elected
            // while this one cannot reach the leader already knows them.
            for (id, addr) in members {
                if id != self.st.id && leader.as_ref().is_none_or(|(l, _)| *l != id) {
                    let (this, r) = (self.clone(), r.clone());
                    tokio::spawn(async move {
                        if let Err(e) = this.relay_to(id, &addr, r).await {
                            tracing::debug!(peer = id, error = %e, "heartbeat relay failed");
                        }
                    });
                }
            }
            if leader_id == Some(self.st.id) {
                // A leader cut off from the other masters keeps believing it leads; its
                // view of the nodes is worthless to the leader they elect, so it answers
                // only while a quorum confirms it (the read lease), and quickly: a node
                // waiting here is not registering with the leader the others elect.
                let confirm = tokio::time::timeout(RELAY_DEADLINE, self.st.read_barrier());
                match confirm.await {
                    Ok(r) => r?,
                    Err(_) => return Err(crate::raft::status::no_leader(None)),
                }
            }
            if let Some((id, addr)) = &leader
                && let Err(e) = self.relay_to(*id, addr, r.clone()).await
            {
                tracing::info!(leader = %addr, error = %e, node = %r.node_id,
                    "cannot relay a node's heartbeat to the leader; sending the node there");
                return Err(crate::raft::status::no_leader(Some(addr)));
            }
        }
        Ok(Response::new(pb::RegisterNodeReply {
            heartbeat_interval_ms: HEARTBEAT_INTERVAL.as_millis() as u64,
        }))
    }

    /// Every member of the Raft group: (id, address).
    fn members(&self) -> Vec<(u64, String)> {
        let m = self.st.raft.metrics();
        let m = m.borrow();
        m.membership_config
            .membership()
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect()
    }

    /// Hands a node's report to member `id` at `addr`, marked relayed so it goes no
    /// further; at most [`RELAY_DEADLINE`].
    async fn relay_to(
        &self,
        id: u64,
        addr: &str,
        r: pb::RegisterNodeRequest,
    ) -> Result<(), Status> {
        let ch = self.st.channel(addr)?;
        let mut req = crate::raft::network::with_cluster(&self.st.raft.config().cluster_name, r);
        req.metadata_mut().insert(
            RELAYED_HEADER,
            tonic::metadata::MetadataValue::from_static("1"),
        );
        req.set_timeout(RELAY_DEADLINE);
        let signer = kdss_common::auth::signer::Signer::service(&self.st.secret);
        let mut client = MasterClient::new(signer.wrap(ch));
        match tokio::time::timeout(RELAY_DEADLINE, client.heartbeat(req)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "member {id} ({addr}) did not take the relay within {RELAY_DEADLINE:?}"
            ))),
        }
    }

    /// ClusterStatus, answered by every member from its own view.
    pub(crate) async fn status(
        &self,
        req: Request<pb::ClusterStatusRequest>,
    ) -> R<pb::ClusterStatusReply> {
        if auth::require_service(req.metadata()).is_err() {
            self.st.caller(req.metadata()).await?;
        }
        let m = self.st.raft.metrics().borrow().clone();
        let leader = m.current_leader;
        let reachable: Option<Vec<u64>> = m.replication.as_ref().map(|r| {
            r.iter()
                .filter(|(_, l)| l.is_some())
                .map(|(id, _)| *id)
                .collect()
        });
        let masters = m
            .membership_config
            .membership()
            .nodes()
            .map(|(id, n)| pb::MasterStatus {
                id: *id,
                grpc_addr: n.addr.clone(),
                http_addr: self.st.http_addrs.get(id).cloned().unwrap_or_default(),
                leader: leader == Some(*id),
                reachable: *id == self.st.id
                    || leader == Some(*id)
                    || reachable.as_ref().is_some_and(|r| r.contains(id)),
            })
            .collect();
        let c = self.st.registry.capacity();
        let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
        Ok(Response::new(pb::ClusterStatusReply {
            masters,
            leader_id: leader.unwrap_or(0),
            term: m.current_term,
            commit_index: self.st.metrics.commit_index().max(applied),
            nodes: self.st.registry.statuses(),
            raw_capacity_bytes: c.capacity,
            raw_used_bytes: c.used,
            capacity_alert_pct: u32::from(self.st.alert_pct),
            capacity_reject_pct: u32::from(self.st.reject_pct),
        }))
    }
}
