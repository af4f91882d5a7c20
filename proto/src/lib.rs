//! KDSS wire types. Generated code only: `storage` is the storage-node API, `master` the
//! master API (namespace, data path, objects, membership) and the Raft peer service.

#![allow(clippy::all, missing_docs)]

/// Storage node API (`kdss.storage.v1`).
pub mod storage {
    tonic::include_proto!("kdss.storage.v1");
}

/// Master API (`kdss.master.v1`).
pub mod master {
    tonic::include_proto!("kdss.master.v1");
}
