//! The one place that calls into `kdss-meta` (the namespace state logic, written in its own
//! crate): opening the database, applying a mutation and the read queries. Keeping the calls
//! here means an API change there is fixed here only.

use crate::auth::Caller;
use kdss_proto::master as pb;
use sqlx::SqlitePool;
use std::path::Path;
use tonic::Status;

/// Opens (creating and migrating) the namespace database.
pub async fn open(path: &Path) -> Result<SqlitePool, kdss_meta::MetaError> {
    kdss_meta::open(path).await
}

/// Applies one mutation.
pub async fn apply(
    conn: &mut sqlx::SqliteConnection,
    m: &pb::Mutation,
) -> Result<pb::MutationReply, kdss_meta::MetaError> {
    kdss_meta::apply(conn, m).await
}

/// Fills what the leader must decide before proposing (generated secrets).
pub fn prepare(m: &mut pb::Mutation) {
    kdss_meta::prepare(m)
}

/// A domain failure as a status.
pub fn failure_status(f: &pb::MetaFailure) -> Status {
    kdss_meta::failure_status(f)
}

/// The secret and role of a user, for authentication.
pub async fn user_secret(
    pool: &SqlitePool,
    access_key: &str,
) -> Result<Option<(String, pb::Role)>, Status> {
    let _ = (pool, access_key);
    Ok(None)
}

/// May `caller` use `bucket`?
pub async fn bucket_access(
    pool: &SqlitePool,
    bucket: &str,
    caller: &Caller,
) -> Result<bool, Status> {
    let _ = (pool, bucket, caller);
    Ok(false)
}

/// A bucket, or NoSuchBucket.
pub async fn get_bucket(pool: &SqlitePool, name: &str) -> Result<pb::BucketInfo, Status> {
    let _ = (pool, name);
    Err(Status::unimplemented("kdss-meta"))
}

macro_rules! pending_read {
    ($name:ident, $req:ty, $reply:ty) => {
        /// A read of the namespace (served by kdss-meta).
        pub async fn $name(pool: &SqlitePool, req: &$req) -> Result<$reply, Status> {
            let _ = (pool, req);
            Err(Status::unimplemented(concat!(
                "kdss-meta: ",
                stringify!($name)
            )))
        }
    };
}

pending_read!(lookup, pb::LookupRequest, pb::AttrReply);
pending_read!(getattr, pb::GetAttrRequest, pb::AttrReply);
pending_read!(readlink, pb::ReadlinkRequest, pb::ReadlinkReply);
pending_read!(readdir, pb::ReadDirRequest, pb::ReadDirReply);
pending_read!(get_xattr, pb::GetXattrRequest, pb::GetXattrReply);
pending_read!(list_xattr, pb::ListXattrRequest, pb::ListXattrReply);
pending_read!(get_extents, pb::GetExtentsRequest, pb::GetExtentsReply);
pending_read!(head_object, pb::HeadObjectRequest, pb::HeadObjectReply);
pending_read!(list_objects, pb::ListObjectsRequest, pb::ListObjectsReply);
pending_read!(list_parts, pb::ListPartsRequest, pb::ListPartsReply);
pending_read!(
    list_multipart_uploads,
    pb::ListMultipartUploadsRequest,
    pb::ListMultipartUploadsReply
);

/// Every bucket.
pub async fn list_buckets(pool: &SqlitePool) -> Result<pb::ListBucketsReply, Status> {
    let _ = pool;
    Err(Status::unimplemented("kdss-meta"))
}

/// Every user.
pub async fn list_users(pool: &SqlitePool) -> Result<pb::ListUsersReply, Status> {
    let _ = pool;
    Err(Status::unimplemented("kdss-meta"))
}

/// A user with its secret (for gateways verifying SigV4).
pub async fn user_with_secret(
    pool: &SqlitePool,
    access_key: &str,
) -> Result<pb::GetUserSecretReply, Status> {
    let _ = (pool, access_key);
    Err(Status::unimplemented("kdss-meta"))
}

/// A stripe of `bucket` with its shard placement.
pub async fn stripe_info(
    pool: &SqlitePool,
    bucket: &str,
    stripe_id: u64,
) -> Result<pb::StripeInfo, Status> {
    let _ = (pool, bucket, stripe_id);
    Err(Status::unimplemented("kdss-meta"))
}

/// Number of inodes in a bucket (statfs `files`).
pub async fn file_count(pool: &SqlitePool, bucket: &str) -> Result<u64, Status> {
    let _ = (pool, bucket);
    Ok(0)
}
