//! How Raft's refusals reach a caller: Unavailable with `kdss-leader` naming the leader's
//! address when one is known, so clients retry there. Here, below both the proposer and
//! the service, so each uses it without depending on the other.

use super::{NodeId, Raft};
use kdss_common::rpc_error::{self, LEADER_KEY, errno};
use openraft::error::{ClientWriteError, RaftError};
use tonic::{Code, Status};

/// Unavailable, naming the leader when known.
pub fn no_leader(leader_addr: Option<&str>) -> Status {
    let mut s = rpc_error::status(
        Code::Unavailable,
        errno::EIO,
        "ServiceUnavailable",
        match leader_addr {
            Some(a) => format!("not the leader; the leader is {a}"),
            None => "no leader elected yet; retry".to_string(),
        },
    );
    if let Some(v) = leader_addr.and_then(|a| a.parse().ok()) {
        s.metadata_mut().insert(LEADER_KEY, v);
    }
    s
}

/// Maps a failed proposal: lost leadership becomes Unavailable with the leader's address.
pub fn write_error(
    raft: &Raft,
    e: RaftError<NodeId, ClientWriteError<NodeId, super::Node>>,
) -> Status {
    let _ = raft;
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            no_leader(f.leader_node.as_ref().map(|n| n.addr.as_str()))
        }
        other => rpc_error::status(
            Code::Unavailable,
            errno::EIO,
            "ServiceUnavailable",
            other.to_string(),
        ),
    }
}

/// A batch whose leader's term ended before Raft answered it: the next leader may still
/// commit it, or it may be lost, so the caller is told the outcome is unknown (and where
/// the leader is, when known).
pub fn term_ended(raft: &Raft, term: u64) -> Status {
    let leader = {
        let m = raft.metrics();
        let m = m.borrow();
        m.current_leader
            .and_then(|id| m.membership_config.membership().get_node(&id).cloned())
    };
    let mut s = rpc_error::status(
        Code::Unavailable,
        errno::EIO,
        "ServiceUnavailable",
        format!(
            "this master's term {term} ended while the mutation was in Raft: it may or may \
             not have been applied; check before repeating it"
        ),
    );
    if let Some(v) = leader.and_then(|n| n.addr.parse().ok()) {
        s.metadata_mut().insert(LEADER_KEY, v);
    }
    s
}
