//! Replication of the namespace with openraft 0.9 (kept behind this one module so that a move
//! to openraft 0.10 touches only here).
//!
//! - [`log_store`]: the Raft log in its own SQLite file; appends are group-committed (every
//!   append queued while a transaction is in flight joins the next one: one fsync per batch).
//! - [`state_machine`]: the namespace database of `kdss-meta`; a batch of committed entries is
//!   applied in one transaction together with the last applied log id and the membership;
//!   snapshots are `VACUUM INTO` copies of that database.
//! - [`network`] / [`peer_service`]: the `RaftPeer` gRPC service (serde_json payloads).

pub mod log_store;
pub mod network;
pub mod peer_service;
pub mod proposer;
pub mod state_machine;
pub mod status;
#[cfg(test)]
mod suite_test;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::io::Cursor;

pub use state_machine::StateMachine;

/// Raft member id (= `[master] id`).
pub type NodeId = u64;
/// A member as Raft knows it: `addr` is its gRPC address.
pub type Node = openraft::BasicNode;

openraft::declare_raft_types!(
    /// The KDSS Raft types: entries carry a prost-encoded `Mutation`, replies a prost-encoded
    /// `MutationReply`.
    pub TypeConfig:
        D = Command,
        R = Reply,
        NodeId = NodeId,
        Node = Node,
);

/// The running Raft node.
pub type Raft = openraft::Raft<TypeConfig>;
/// One log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id.
pub type LogId = openraft::LogId<NodeId>;
/// Storage error type of our stores.
pub type StorageError = openraft::StorageError<NodeId>;

fn ser_b64<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
}

fn de_b64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(serde::de::Error::custom)
}

/// A replicated command: a batch of length-delimited prost-encoded
/// `kdss_proto::master::Mutation`s (see [`proposer`]); base64 in JSON so that log entries
/// and AppendEntries payloads stay compact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command(#[serde(serialize_with = "ser_b64", deserialize_with = "de_b64")] pub Vec<u8>);

/// What applying a command returned: the length-delimited `MutationReply`s of its batch, in
/// order (empty for blank and membership entries).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply(#[serde(serialize_with = "ser_b64", deserialize_with = "de_b64")] pub Vec<u8>);

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Command({} bytes)", self.0.len())
    }
}

/// Turns any error into a storage error on the log or state machine.
pub(crate) fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}
