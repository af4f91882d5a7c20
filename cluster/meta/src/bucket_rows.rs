//! Reading a bucket's row. Below [`crate::accounts`] (which creates and deletes buckets and
//! aborts their uploads through [`crate::multipart`]) so that multipart and objects can look
//! buckets up without an arrow back to accounts.

use crate::error::{Result, no_such_bucket};
use kdss_proto::master::BucketInfo;
use sqlx::{Row, SqliteConnection};

/// Reads a bucket row.
pub async fn bucket(c: &mut SqliteConnection, name: &str) -> Result<Option<BucketInfo>> {
    let row = sqlx::query("SELECT * FROM buckets WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *c)
        .await?;
    row.map(|r| bucket_from_row(&r)).transpose()
}

/// Reads a bucket row or fails with NoSuchBucket.
pub async fn need_bucket(c: &mut SqliteConnection, name: &str) -> Result<BucketInfo> {
    bucket(c, name).await?.ok_or_else(|| no_such_bucket(name))
}

/// Maps a `buckets` row.
pub fn bucket_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<BucketInfo> {
    Ok(BucketInfo {
        name: r.try_get("name")?,
        owner: r.try_get("owner")?,
        k: r.try_get::<i64, _>("k")? as u32,
        m: r.try_get::<i64, _>("m")? as u32,
        created_ns: r.try_get("created_ns")?,
        root_ino: r.try_get::<i64, _>("root_ino")? as u64,
        default_uid: r.try_get::<i64, _>("default_uid")? as u32,
        default_gid: r.try_get::<i64, _>("default_gid")? as u32,
        default_file_mode: r.try_get::<i64, _>("default_file_mode")? as u32,
        default_dir_mode: r.try_get::<i64, _>("default_dir_mode")? as u32,
    })
}
