//! Newtype ids, so a disk id can never be passed where another number is expected.
//!
//! Only the disk id is a newtype today: it crosses the storage engine, the format and the
//! capability code. Stripe ids and inode numbers travel as the `u64` of the wire types.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A formatted disk; written in its superblock at format time, unique in a cluster.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DiskId(pub u64);

impl fmt::Display for DiskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "disk-{:016x}", self.0)
    }
}
