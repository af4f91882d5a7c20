//! Buckets (S3 names, EC preset, owner, root directory, defaults for S3-created files),
//! users (keys and roles) and grants of buckets to users.

use crate::error::{MetaError, Result, einval, fail};
use crate::multipart;
use crate::names::check_bucket_name;
use crate::sealed;
use crate::tree::{self, NewInode};
use kdss_common::EcPolicy;
use kdss_common::rpc_error::errno;
use kdss_proto::master::{
    BucketInfo, CreateBucketRequest, CreateUserReply, CreateUserRequest, DeleteUserRequest,
    FileKind, GrantBucketRequest, Role, SealUserSecretsOp, SetUserRoleRequest, UserInfo,
};
use sqlx::{Row, SqliteConnection};

// Bucket lookups live below this module (multipart and objects use them, and this module
// uses multipart); re-exported so `accounts::need_bucket` keeps working for the rest.
pub use crate::bucket_rows::{bucket, bucket_from_row, need_bucket};

/// Owner uid of files the S3 door creates (until a bucket says otherwise).
pub const DEFAULT_UID: u32 = 0;
/// Group of files the S3 door creates.
pub const DEFAULT_GID: u32 = 0;
/// Mode of files the S3 door creates.
pub const DEFAULT_FILE_MODE: u32 = 0o644;
/// Mode of directories the S3 door creates, and of a bucket's root.
pub const DEFAULT_DIR_MODE: u32 = 0o755;

/// Creates a bucket with its root directory. k = m = 0 takes the default preset (the
/// master fills `[ec]` from its config before proposing); other shapes must be presets.
pub async fn create_bucket(
    c: &mut SqliteConnection,
    r: &CreateBucketRequest,
    now: i64,
    caller: &str,
) -> Result<BucketInfo> {
    check_bucket_name(&r.name)?;
    let policy = if r.k == 0 && r.m == 0 {
        EcPolicy::default()
    } else {
        EcPolicy::new(r.k, r.m)
            .map_err(|e| fail(errno::EINVAL, "InvalidEcPolicy", e.to_string()))?
    };
    let owner = if r.owner.is_empty() {
        caller
    } else {
        r.owner.as_str()
    };
    if let Some(b) = bucket(c, &r.name).await? {
        let code = if b.owner == owner {
            "BucketAlreadyOwnedByYou"
        } else {
            "BucketAlreadyExists"
        };
        return Err(fail(
            errno::EEXIST,
            code,
            format!("bucket {:?} already exists", r.name),
        ));
    }
    let root = tree::create_inode(
        c,
        NewInode {
            bucket: &r.name,
            kind: FileKind::Directory,
            mode: DEFAULT_DIR_MODE,
            uid: DEFAULT_UID,
            gid: DEFAULT_GID,
            rdev: 0,
            now,
            symlink: None,
            implicit: false,
            owner,
        },
    )
    .await?;
    sqlx::query(
        "INSERT INTO buckets (name, owner, k, m, created_ns, root_ino, default_uid, default_gid, \
         default_file_mode, default_dir_mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&r.name)
    .bind(owner)
    .bind(policy.k as i64)
    .bind(policy.m as i64)
    .bind(now)
    .bind(root.ino as i64)
    .bind(DEFAULT_UID as i64)
    .bind(DEFAULT_GID as i64)
    .bind(DEFAULT_FILE_MODE as i64)
    .bind(DEFAULT_DIR_MODE as i64)
    .execute(&mut *c)
    .await?;
    need_bucket(c, &r.name).await
}

/// Deletes an empty bucket (BucketNotEmpty otherwise). Uploads in progress are aborted
/// and inodes kept alive only by open handles are freed.
pub async fn delete_bucket(c: &mut SqliteConnection, name: &str, now: i64) -> Result<()> {
    let b = need_bucket(c, name).await?;
    if tree::has_children(c, b.root_ino).await? {
        return Err(fail(
            errno::ENOTEMPTY,
            "BucketNotEmpty",
            format!("bucket {name:?} is not empty"),
        ));
    }
    multipart::abort_all(c, name, now).await?;
    // Binned files stay in the recycle bin (restorable if the bucket is made again,
    // purged by retention or by hand otherwise).
    let inos: Vec<i64> = sqlx::query_scalar(
        "SELECT ino FROM inodes WHERE bucket = ? AND ino NOT IN (SELECT ino FROM trash) ORDER BY ino",
    )
        .bind(name)
        .fetch_all(&mut *c)
        .await?;
    for ino in inos {
        sqlx::query("DELETE FROM opens WHERE ino = ?")
            .bind(ino)
            .execute(&mut *c)
            .await?;
        tree::free_inode(c, ino as u64, now).await?;
    }
    sqlx::query("DELETE FROM grants WHERE bucket = ?")
        .bind(name)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM buckets WHERE name = ?")
        .bind(name)
        .execute(&mut *c)
        .await?;
    Ok(())
}

fn valid_role(role: i32) -> Result<Role> {
    match Role::try_from(role) {
        Ok(Role::Unspecified) | Err(_) => Err(einval(format!("unknown role {role}"))),
        Ok(r) => Ok(r),
    }
}

/// Creates a user. The secret must be filled and sealed on the leader before proposing
/// ([`crate::prepare`] does it): a secret derived from the log would be guessable, apply
/// cannot use randomness, and the log must not carry it in clear. A plaintext secret is
/// still accepted, as entries written before sealing carry one; the leader seals such rows
/// later ([`seal_secrets`]). An empty access key (entries of before [`crate::prepare`]
/// chose one) is derived deterministically from the entry (access keys are public names).
pub async fn create_user(
    c: &mut SqliteConnection,
    r: &CreateUserRequest,
    now: i64,
) -> Result<CreateUserReply> {
    let role = if r.role == 0 {
        Role::User
    } else {
        valid_role(r.role)?
    };
    if r.secret_key.is_empty() {
        return Err(einval(
            "secret_key is empty: call kdss_meta::prepare on the leader before proposing",
        ));
    }
    if !sealed::is_sealed(&r.secret_key) {
        check_secret(&r.secret_key)?;
    }
    let access_key = if r.access_key.is_empty() {
        let seq: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *c)
            .await?;
        use md5::{Digest, Md5};
        let d = Md5::digest(format!("{now}:{seq}:{}", r.name).as_bytes());
        format!("KD{}", hex::encode_upper(&d[..9]))
    } else {
        r.access_key.clone()
    };
    if access_key.len() > 128 || access_key.contains(|ch: char| ch.is_whitespace() || ch == ',') {
        return Err(einval(
            "access key must be at most 128 characters without spaces or commas",
        ));
    }
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE access_key = ?")
        .bind(&access_key)
        .fetch_optional(&mut *c)
        .await?;
    if exists.is_some() {
        return Err(fail(
            errno::EEXIST,
            "UserAlreadyExists",
            format!("access key {access_key:?} exists"),
        ));
    }
    let name = if r.name.is_empty() {
        access_key.clone()
    } else {
        r.name.clone()
    };
    sqlx::query(
        "INSERT INTO users (access_key, name, secret_key, role, created_ns) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&access_key)
    .bind(&name)
    .bind(&r.secret_key)
    .bind(role as i64)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(CreateUserReply {
        user: Some(UserInfo {
            name,
            access_key,
            role: role as i32,
            created_ns: now,
        }),
        secret_key: r.secret_key.clone(),
    })
}

/// Refuses a user's secret key that is too short to be one.
pub fn check_secret(secret: &str) -> Result<()> {
    if secret.len() < 8 {
        return Err(einval("secret_key must have at least 8 characters"));
    }
    Ok(())
}

/// Stores the sealed secrets the leader made for rows that still hold a plaintext secret
/// (written before sealing existed). Rows already sealed, or deleted since, are left alone,
/// so a repeated or late entry changes nothing.
pub async fn seal_secrets(c: &mut SqliteConnection, r: &SealUserSecretsOp) -> Result<()> {
    for s in &r.secrets {
        if !sealed::is_sealed(&s.sealed) {
            return Err(einval(format!(
                "SealUserSecrets for {:?} carries a value that is not sealed",
                s.access_key
            )));
        }
        sqlx::query(
            "UPDATE users SET secret_key = ? WHERE access_key = ? AND secret_key NOT LIKE 'kdss-sealed1:%'",
        )
        .bind(&s.sealed)
        .bind(&s.access_key)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Access keys and stored secrets of the users whose secret is still plaintext.
pub async fn unsealed_secrets(c: &mut SqliteConnection) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT access_key, secret_key FROM users WHERE secret_key NOT LIKE 'kdss-sealed1:%' ORDER BY access_key",
    )
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("access_key")?, r.try_get("secret_key")?)))
        .collect()
}

/// One sealed secret of the database, to check at start that this master's cluster secret
/// opens them (None when no row is sealed yet).
pub async fn any_sealed_secret(c: &mut SqliteConnection) -> Result<Option<(String, String)>> {
    let row = sqlx::query(
        "SELECT access_key, secret_key FROM users WHERE secret_key LIKE 'kdss-sealed1:%' LIMIT 1",
    )
    .fetch_optional(&mut *c)
    .await?;
    row.map(|r| Ok((r.try_get("access_key")?, r.try_get("secret_key")?)))
        .transpose()
}

/// Deletes a user and its grants (buckets it owns keep their owner name).
pub async fn delete_user(c: &mut SqliteConnection, r: &DeleteUserRequest) -> Result<()> {
    let done = sqlx::query("DELETE FROM users WHERE access_key = ?")
        .bind(&r.access_key)
        .execute(&mut *c)
        .await?;
    if done.rows_affected() == 0 {
        return Err(no_such_user(&r.access_key));
    }
    sqlx::query("DELETE FROM grants WHERE access_key = ?")
        .bind(&r.access_key)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Changes a user's role; keys, grants and owned buckets stay.
pub async fn set_role(c: &mut SqliteConnection, r: &SetUserRoleRequest) -> Result<()> {
    let role = valid_role(r.role)?;
    let done = sqlx::query("UPDATE users SET role = ? WHERE access_key = ?")
        .bind(role as i64)
        .bind(&r.access_key)
        .execute(&mut *c)
        .await?;
    if done.rows_affected() == 0 {
        return Err(no_such_user(&r.access_key));
    }
    Ok(())
}

fn no_such_user(key: &str) -> MetaError {
    fail(
        errno::ENOENT,
        "NoSuchUser",
        format!("no user with access key {key:?}"),
    )
}

/// Lets a user reach a bucket it does not own.
pub async fn grant(c: &mut SqliteConnection, r: &GrantBucketRequest) -> Result<()> {
    need_bucket(c, &r.bucket).await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE access_key = ?")
        .bind(&r.access_key)
        .fetch_optional(&mut *c)
        .await?;
    if exists.is_none() {
        return Err(no_such_user(&r.access_key));
    }
    sqlx::query("INSERT OR IGNORE INTO grants (bucket, access_key) VALUES (?, ?)")
        .bind(&r.bucket)
        .bind(&r.access_key)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Maps a `users` row.
pub fn user_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<UserInfo> {
    Ok(UserInfo {
        name: r.try_get("name")?,
        access_key: r.try_get("access_key")?,
        role: r.try_get::<i64, _>("role")? as i32,
        created_ns: r.try_get("created_ns")?,
    })
}
