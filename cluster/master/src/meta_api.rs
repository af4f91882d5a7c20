//! The one place that calls into `kdss-meta` (the namespace state logic, written in its own
//! crate): opening the database, applying a mutation and the read queries. Keeping the calls
//! here means an API change there is fixed here only.

use crate::caller::Caller;
use kdss_meta::sealed::SecretSeal;
use kdss_proto::master as pb;
use sqlx::SqlitePool;
use std::path::Path;
use tonic::Status;

pub use kdss_meta::disks::DiskStateRow;

/// Every disk state row (disks not plainly online).
pub async fn disk_states(pool: &SqlitePool) -> Result<Vec<DiskStateRow>, Status> {
    Ok(kdss_meta::disks::list(pool).await?)
}

/// Opens (creating and migrating) the namespace database.
pub async fn open(path: &Path) -> Result<SqlitePool, kdss_meta::MetaError> {
    kdss_meta::open(path).await
}

/// Opens the savepoint [`apply_in_savepoint`] runs in.
pub const OPEN_SAVEPOINT: &str = kdss_meta::OPEN_SAVEPOINT;
/// Releases the savepoint after [`apply_in_savepoint`].
pub const RELEASE_SAVEPOINT: &str = kdss_meta::RELEASE_SAVEPOINT;

/// Applies one mutation inside a savepoint the caller opened and releases.
pub async fn apply_in_savepoint(
    conn: &mut sqlx::SqliteConnection,
    m: &pb::Mutation,
) -> Result<pb::MutationReply, kdss_meta::MetaError> {
    kdss_meta::apply_in_savepoint(conn, m).await
}

/// Fills what the leader must decide before proposing (generated keys) and seals a new
/// user's secret; returns that secret in clear for the reply.
pub fn prepare(m: &mut pb::Mutation, seal: &SecretSeal) -> Result<Option<String>, Status> {
    Ok(kdss_meta::prepare(m, seal)?)
}

/// Refuses a mutation whose caller-sized fields (names, keys, xattrs, metadata) are above
/// their limits, before it is proposed.
pub fn check_sizes(op: &pb::mutation::Op) -> Result<(), Status> {
    Ok(kdss_meta::sizes::check(op)?)
}

/// A domain failure as a status.
pub fn failure_status(f: &pb::MetaFailure) -> Status {
    kdss_meta::failure_status(f)
}

/// The secret (opened) and role of a user, for authentication.
pub async fn user_secret(
    pool: &SqlitePool,
    seal: &SecretSeal,
    access_key: &str,
) -> Result<Option<(String, pb::Role)>, Status> {
    let u = kdss_meta::read::user_by_access_key(pool, access_key).await?;
    u.map(|r| {
        let role = r.user.as_ref().map(|u| u.role()).unwrap_or(pb::Role::User);
        Ok((open_secret(seal, access_key, &r.secret_key)?, role))
    })
    .transpose()
}

/// The role of a user, None for an unknown access key (its secret stays sealed).
pub async fn user_role(pool: &SqlitePool, access_key: &str) -> Result<Option<pb::Role>, Status> {
    let u = kdss_meta::read::user_by_access_key(pool, access_key).await?;
    Ok(u.map(|r| r.user.as_ref().map(|u| u.role()).unwrap_or(pb::Role::User)))
}

fn open_secret(seal: &SecretSeal, access_key: &str, stored: &str) -> Result<String, Status> {
    seal.open(access_key, stored)
        .map_err(|e| Status::from(kdss_meta::MetaError::from(e)))
}

/// May `caller` use `bucket`?
pub async fn bucket_access(
    pool: &SqlitePool,
    bucket: &str,
    caller: &Caller,
) -> Result<bool, Status> {
    Ok(
        kdss_meta::read::bucket_access(pool, bucket, &caller.access_key, caller.role as i32)
            .await?,
    )
}

/// A bucket, or NoSuchBucket.
pub async fn get_bucket(pool: &SqlitePool, name: &str) -> Result<pb::BucketInfo, Status> {
    let r = kdss_meta::read::get_bucket(
        pool,
        &pb::BucketRequest {
            name: name.to_string(),
        },
    )
    .await?;
    r.bucket
        .ok_or_else(|| Status::not_found(format!("bucket {name:?}")))
}

macro_rules! read {
    ($name:ident, $req:ty, $reply:ty) => {
        /// A read of the namespace, served by kdss-meta from the local database.
        pub async fn $name(pool: &SqlitePool, req: &$req) -> Result<$reply, Status> {
            Ok(kdss_meta::read::$name(pool, req).await?)
        }
    };
}

read!(lookup, pb::LookupRequest, pb::AttrReply);
read!(getattr, pb::GetAttrRequest, pb::AttrReply);
read!(readlink, pb::ReadlinkRequest, pb::ReadlinkReply);
read!(readdir, pb::ReadDirRequest, pb::ReadDirReply);
read!(get_xattr, pb::GetXattrRequest, pb::GetXattrReply);
read!(list_xattr, pb::ListXattrRequest, pb::ListXattrReply);
read!(get_extents, pb::GetExtentsRequest, pb::GetExtentsReply);
read!(head_object, pb::HeadObjectRequest, pb::HeadObjectReply);
read!(list_objects, pb::ListObjectsRequest, pb::ListObjectsReply);
read!(list_parts, pb::ListPartsRequest, pb::ListPartsReply);
read!(
    list_multipart_uploads,
    pb::ListMultipartUploadsRequest,
    pb::ListMultipartUploadsReply
);

/// Every bucket.
pub async fn list_buckets(pool: &SqlitePool) -> Result<pb::ListBucketsReply, Status> {
    Ok(kdss_meta::read::list_buckets(pool).await?)
}

/// Every user.
pub async fn list_users(pool: &SqlitePool) -> Result<pb::ListUsersReply, Status> {
    Ok(kdss_meta::read::list_users(pool).await?)
}

/// A user with its secret opened (for gateways verifying SigV4).
pub async fn user_with_secret(
    pool: &SqlitePool,
    seal: &SecretSeal,
    access_key: &str,
) -> Result<pb::GetUserSecretReply, Status> {
    let mut r = kdss_meta::read::user_by_access_key(pool, access_key)
        .await?
        .ok_or_else(|| {
            kdss_common::rpc_error::status(
                tonic::Code::NotFound,
                kdss_common::rpc_error::errno::ENOENT,
                "InvalidAccessKeyId",
                format!("no user with access key {access_key:?}"),
            )
        })?;
    r.secret_key = open_secret(seal, access_key, &r.secret_key)?;
    Ok(r)
}

/// Users whose stored secret is still plaintext (rows of before sealing), as
/// (access key, secret).
pub async fn unsealed_secrets(pool: &SqlitePool) -> Result<Vec<(String, String)>, Status> {
    let mut c = pool.acquire().await.map_err(kdss_meta::MetaError::from)?;
    Ok(kdss_meta::accounts::unsealed_secrets(&mut c).await?)
}

/// Checks that `seal` opens the database's sealed secrets (one is tried); the error names
/// a wrong cluster secret.
pub async fn check_seal(pool: &SqlitePool, seal: &SecretSeal) -> Result<(), kdss_meta::MetaError> {
    let mut c = pool.acquire().await?;
    if let Some((key, stored)) = kdss_meta::accounts::any_sealed_secret(&mut c).await? {
        seal.open(&key, &stored)?;
    }
    Ok(())
}

/// A stripe of `bucket` with its shard placement.
pub async fn stripe_info(
    pool: &SqlitePool,
    bucket: &str,
    stripe_id: u64,
) -> Result<pb::StripeInfo, Status> {
    Ok(kdss_meta::read::stripe_info(pool, Some(bucket), stripe_id).await?)
}

/// Refuses unless `caller` may ReplaceShard in stripe `stripe_id` (its writer, still
/// uncommitted).
pub async fn check_replaceable(
    pool: &SqlitePool,
    stripe_id: u64,
    caller: &Caller,
) -> Result<(), Status> {
    let mut c = pool.acquire().await.map_err(kdss_meta::MetaError::from)?;
    kdss_meta::data::check_replaceable(&mut c, stripe_id, &caller.access_key).await?;
    Ok(())
}

/// Number of inodes in a bucket (statfs `files`).
pub async fn file_count(pool: &SqlitePool, bucket: &str) -> Result<u64, Status> {
    Ok(kdss_meta::read::file_count(pool, bucket).await?)
}

/// Stripes with a shard on `disk_id` (for repair).
pub async fn stripes_on_disk(
    pool: &SqlitePool,
    disk_id: u64,
) -> Result<Vec<pb::StripeInfo>, Status> {
    Ok(kdss_meta::read::stripes_on_disk(pool, disk_id).await?)
}
