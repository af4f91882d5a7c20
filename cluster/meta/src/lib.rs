//! kdss-meta: the deterministic state machine of the KDSS master. Buckets, users, the
//! POSIX tree of each bucket (inodes, dentries, xattrs, hard links, symlinks), its S3
//! view (objects, listing, multipart), extent maps, stripes with reference counts, and
//! open-file tracking — all in ONE SQLite database, so the master can snapshot it with
//! `VACUUM INTO` and install a snapshot by replacing the file.
//!
//! The master (cluster/master) replicates [`apply`] with openraft and serves the read
//! queries of [`read`] over gRPC. Entry points:
//! - [`open`] / [`open_memory`] / [`migrate`]: the database.
//! - [`prepare`]: fills what must be random (generated secrets) on the leader before a
//!   mutation is proposed, and seals users' secrets ([`sealed`]); apply itself never uses
//!   randomness or the clock.
//! - [`apply`]: one replicated [`Mutation`]; domain failures come back inside
//!   `MutationReply.failure` with nothing changed (a savepoint per mutation).
//! - [`failure_status`] and `From<MetaError> for tonic::Status`: errors on the wire.
//!
//! Module map: `tree` (inode/dentry primitives), `posix`, `rename`, `opens`, `data`
//! (stripes, CommitWrite), `extents` (overlay, refcounts), `objects` (S3 rules, see its
//! doc), `listing`, `multipart`, `accounts` (buckets, users, grants), `bucket_rows`
//! (looking a bucket up), `read`, `trash` (the recycle bin), `gc` (the replicated half of
//! the garbage collector), `disks` (the replicated disk states), `repair` (the
//! damaged-stripe queue, MoveShard, settings), `sizes` (the size limits the master checks
//! before proposing).

pub mod accounts;
mod apply;
pub mod bucket_rows;
pub mod data;
pub mod disks;
pub mod error;
pub mod extents;
pub mod gc;
pub mod inode;
pub mod listing;
pub mod multipart;
pub mod names;
pub mod objects;
pub mod objmeta;
pub mod opens;
pub mod posix;
pub mod read;
pub mod rename;
pub mod repair;
mod schema;
pub mod sealed;
pub mod sizes;
mod stripe_reads;
pub mod trash;
pub mod tree;

pub use apply::{
    OPEN_SAVEPOINT, RELEASE_SAVEPOINT, apply, apply_in_savepoint, changes_users, prepare,
};
pub use error::{MetaError, failure_status};
pub use kdss_proto::master::{Mutation, MutationReply};
pub use schema::{migrate, open, open_memory};
