//! Shard plumbing shared by everything that moves shards: the erasure codec ([`ec`]) and
//! shard transfer to and from storage nodes ([`shard_io`]), with the channel builder they
//! connect through ([`channel`]).
//!
//! It is its own crate so that the client (writes and degraded reads) and the storage node
//! (RebuildShard) use one codec and one transfer path: the storage node cannot depend on
//! kdss-client, whose tests start storage nodes.

pub mod channel;
pub mod ec;
pub mod error;
pub mod shard_io;

pub use error::ShardError;
pub use shard_io::{NodePool, ShardFault};
