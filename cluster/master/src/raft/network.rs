//! Raft traffic to peers over the `RaftPeer` gRPC service: each openraft request is sent as
//! serde_json in `RaftMessage.payload`, signed with the service identity (cluster secret);
//! the reply payload is the serde_json of `Result<Response, RaftError>`.

use super::{Node, NodeId, TypeConfig};
use kdss_common::auth::signer::Signer;
use kdss_proto::master::RaftMessage;
use kdss_proto::master::raft_peer_client::RaftPeerClient;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tonic::transport::Channel;

/// Largest Raft message (snapshot chunks travel as JSON).
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// Makes one [`PeerClient`] per target; holds the cluster secret that signs every call.
#[derive(Clone)]
pub struct PeerNetwork {
    secret: String,
    cluster: String,
}

impl PeerNetwork {
    /// A factory signing with `cluster_secret` and naming cluster `cluster_id`.
    pub fn new(cluster_secret: &str, cluster_id: &str) -> Self {
        PeerNetwork {
            secret: cluster_secret.to_string(),
            cluster: cluster_id.to_string(),
        }
    }
}

/// A lazily connected channel to one peer.
pub struct PeerClient {
    target: NodeId,
    channel: Result<Channel, String>,
    signer: Signer,
    cluster: String,
}

/// A lazy channel to `addr` (host:port) with the settings every master-to-master call uses.
pub fn lazy_channel(addr: &str) -> Result<Channel, String> {
    kdss_common::tls::endpoint(addr).map(|e| {
        e.connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .connect_lazy()
    })
}

/// Metadata naming the sender's cluster on master-to-master calls. A master refuses a
/// call from another cluster: two clusters sharing a secret whose peer lists cross (a
/// copied config, a reused address) must not feed each other votes and entries, which
/// openraft takes for its own group's and can panic on. A call without it (a master of
/// an older version) is still taken.
pub const CLUSTER_HEADER: &str = "kdss-cluster";

/// A request naming the sender's cluster. The credential is added by the channel the call
/// goes through (`Signer::service(secret).wrap(channel)`), which sees the method and body.
pub fn with_cluster<T>(cluster: &str, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Ok(v) = cluster.parse() {
        req.metadata_mut().insert(CLUSTER_HEADER, v);
    }
    req
}

/// Refuses a peer call that names another cluster than `ours`.
#[allow(clippy::result_large_err)] // tonic's Status, as every handler returns
pub fn require_cluster(md: &tonic::metadata::MetadataMap, ours: &str) -> Result<(), tonic::Status> {
    match md.get(CLUSTER_HEADER).map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(theirs)) if theirs == ours => Ok(()),
        Some(theirs) => Err(tonic::Status::failed_precondition(format!(
            "call from a master of cluster {:?}; this master belongs to cluster {ours:?} \
             (check [cluster] id and peers in master.toml)",
            theirs.unwrap_or("<not text>")
        ))),
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerClient {
        PeerClient {
            target,
            channel: lazy_channel(&node.addr),
            signer: Signer::service(&self.secret),
            cluster: self.cluster.clone(),
        }
    }
}

type RpcErr<E> = RPCError<NodeId, Node, RaftError<NodeId, E>>;

impl PeerClient {
    async fn call<Req, Resp, E>(
        &self,
        which: Which,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RpcErr<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let channel = self
            .channel
            .clone()
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&std::io::Error::other(e))))?;
        let payload =
            serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut client = RaftPeerClient::new(self.signer.wrap(channel))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let mut r = with_cluster(&self.cluster, RaftMessage { payload });
        r.set_timeout(ttl);
        let fut = async {
            match which {
                Which::Append => client.append_entries(r).await,
                Which::Vote => client.vote(r).await,
                Which::Snapshot => client.install_snapshot(r).await,
            }
        };
        let reply = match tokio::time::timeout(ttl, fut).await {
            Err(_) => {
                let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "raft rpc timed out");
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
            Ok(Err(status)) => {
                let e = std::io::Error::other(status.to_string());
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        let res: Result<Resp, RaftError<NodeId, E>> = serde_json::from_slice(&reply.payload)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

#[derive(Clone, Copy)]
enum Which {
    Append,
    Vote,
    Snapshot,
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        self.call(Which::Append, &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        self.call(Which::Snapshot, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        self.call(Which::Vote, &rpc, option.hard_ttl()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_call_from_another_cluster_is_refused_and_names_both() {
        let req = with_cluster("alpha", ());
        assert!(require_cluster(req.metadata(), "alpha").is_ok());
        let e = require_cluster(req.metadata(), "beta").unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        assert!(
            e.message().contains("\"alpha\"") && e.message().contains("\"beta\""),
            "{}",
            e.message()
        );
        let unnamed = tonic::Request::new(());
        assert!(
            require_cluster(unnamed.metadata(), "beta").is_ok(),
            "a master of an older version names no cluster"
        );
    }
}
