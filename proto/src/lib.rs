//! KDSS wire types. Generated code only: `storage` is the storage-node API, `master` the
//! master API (namespace, data path, objects, membership) and the Raft peer service.

#![allow(clippy::all, missing_docs)]

/// Generated modules, nested as the proto packages are (`kdss.storage.v1`, `kdss.master.v1`)
/// so that cross-package references resolve.
pub mod kdss {
    pub mod storage {
        pub mod v1 {
            tonic::include_proto!("kdss.storage.v1");
        }
    }
    pub mod master {
        pub mod v1 {
            tonic::include_proto!("kdss.master.v1");
        }
    }
}

/// Master API (`kdss.master.v1`).
pub use kdss::master::v1 as master;
/// Storage node API (`kdss.storage.v1`).
pub use kdss::storage::v1 as storage;
