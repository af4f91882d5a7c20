//! The `RaftPeer` gRPC service: receives openraft messages from peers (serde_json payloads,
//! service identity required) and hands them to the local Raft node.

use super::Raft;
use super::proposer::Proposer;
use kdss_common::tls::DaemonRole;
use kdss_proto::master::Mutation;
use kdss_proto::master::RaftMessage;
use kdss_proto::master::raft_peer_server::RaftPeer;
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Request, Response, Status};

/// Serves peers' Raft traffic into `raft`.
pub struct PeerService {
    raft: Raft,
    proposer: Proposer,
    require_cert: bool,
}

impl PeerService {
    /// A service for `raft`; the auth layer in front of it verifies the callers, and it
    /// accepts only the service identity.
    pub fn new(raft: Raft, proposer: Proposer) -> Self {
        PeerService {
            raft,
            proposer,
            require_cert: false,
        }
    }

    /// On a TLS listener, peers must also present a certificate the cluster CA signed
    /// (the server verified it in the handshake): the cluster secret alone does not make
    /// a Raft peer.
    pub fn require_client_cert(mut self, on: bool) -> Self {
        self.require_cert = on;
        self
    }

    fn check_cert<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if self.require_cert && req.peer_certs().is_none_or(|c| c.is_empty()) {
            return Err(Status::unauthenticated(
                "Raft calls need a certificate signed by the cluster CA (mutual TLS)",
            ));
        }
        // A storage node or gateway certificate is signed by the same CA: only masters
        // are Raft peers.
        crate::auth::require_peer_role(req, self.require_cert, &[DaemonRole::Master])
    }

    /// The caller is a master of this cluster.
    fn check(&self, md: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        crate::auth::require_service(md)?;
        super::network::require_cluster(md, &self.raft.config().cluster_name)
    }

    fn open<T: DeserializeOwned>(&self, req: Request<RaftMessage>) -> Result<T, Status> {
        self.check_cert(&req)?;
        self.check(req.metadata())?;
        serde_json::from_slice(&req.get_ref().payload)
            .map_err(|e| Status::invalid_argument(format!("bad raft payload: {e}")))
    }
}

fn reply<T: Serialize>(v: &T) -> Result<Response<RaftMessage>, Status> {
    let payload = serde_json::to_vec(v).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(RaftMessage { payload }))
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let r = self.open(req)?;
        reply(&self.raft.append_entries(r).await)
    }

    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let r = self.open(req)?;
        reply(&self.raft.vote(r).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let r = self.open(req)?;
        reply(&self.raft.install_snapshot(r).await)
    }

    /// A write forwarded by a peer: the payload is a prost-encoded `Mutation` whose context
    /// the sender filled; the reply payload is the prost-encoded `MutationReply`.
    async fn client_write(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.check_cert(&req)?;
        self.check(req.metadata())?;
        let m = Mutation::decode(req.into_inner().payload.as_slice())
            .map_err(|e| Status::invalid_argument(format!("bad mutation: {e}")))?;
        let reply = self.proposer.propose(m).await?;
        Ok(Response::new(RaftMessage {
            payload: reply.encode_to_vec(),
        }))
    }
}
