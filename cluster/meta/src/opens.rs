//! Open-file tracking. An open handle keeps an unlinked inode (nlink 0) alive until the
//! last Release; handles belong to a client session that must be renewed with KeepAlive,
//! and ExpireSessions drops the handles of sessions past their ttl (a crashed client)
//! and frees the inodes nothing references any more.

use crate::error::{Result, einval, fail};
use crate::tree;
use kdss_common::rpc_error::errno;
use kdss_proto::master::{
    ExpireSessionsOp, KeepAliveRequest, OpenReply, OpenRequest, ReleaseRequest,
};
use sqlx::SqliteConnection;

/// Ttl of a session that opened files before its first KeepAlive.
pub const DEFAULT_SESSION_TTL_MS: u64 = 120_000;

/// Longest ttl a KeepAlive may ask for. A session's handles keep unlinked inodes (and their
/// stripes) alive until it expires; a client that stops renewing must lose them within
/// minutes, not keep them forever. Larger requests are refused (InvalidArgument).
pub const MAX_SESSION_TTL_MS: u64 = 10 * 60 * 1000;

fn denied(message: String) -> crate::MetaError {
    fail(errno::EACCES, "AccessDenied", message)
}

/// Refuses a KeepAlive ttl above [`MAX_SESSION_TTL_MS`] (the master checks it before
/// proposing; apply checks it again).
pub fn check_ttl(ttl_ms: u64) -> Result<()> {
    if ttl_ms > MAX_SESSION_TTL_MS {
        return Err(einval(format!(
            "session ttl {ttl_ms} ms is above the limit of {MAX_SESSION_TTL_MS} ms"
        )));
    }
    Ok(())
}

/// Creates or renews `session` for `caller`. A session belongs to the user that made it:
/// another user's Open or KeepAlive on it is refused. Sessions from before owners were
/// recorded (owner '') are taken by the first user that renews them.
async fn touch_session(
    c: &mut SqliteConnection,
    session: &str,
    ttl_ms: Option<u64>,
    now: i64,
    caller: &str,
) -> Result<()> {
    let owner: Option<String> = sqlx::query_scalar("SELECT owner FROM sessions WHERE session = ?")
        .bind(session)
        .fetch_optional(&mut *c)
        .await?;
    if let Some(o) = owner
        && !o.is_empty()
        && o != caller
    {
        return Err(denied(format!(
            "session {session:?} belongs to another user, not {caller:?}"
        )));
    }
    sqlx::query(
        "INSERT INTO sessions (session, ttl_ms, last_ns, owner) VALUES (?, ?, ?, ?) \
         ON CONFLICT (session) DO UPDATE SET last_ns = excluded.last_ns, \
         owner = excluded.owner, \
         ttl_ms = CASE WHEN ? THEN excluded.ttl_ms ELSE sessions.ttl_ms END",
    )
    .bind(session)
    .bind(ttl_ms.unwrap_or(DEFAULT_SESSION_TTL_MS) as i64)
    .bind(now)
    .bind(caller)
    .bind(ttl_ms.is_some())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Opens an inode for a session of `caller`: returns a handle (from SQL, monotonic) and the
/// attrs. The handle belongs to that caller, bucket and session.
pub async fn open(
    c: &mut SqliteConnection,
    r: &OpenRequest,
    now: i64,
    caller: &str,
) -> Result<OpenReply> {
    let inode = tree::inode_in(c, &r.bucket, r.ino).await?;
    touch_session(c, &r.session, None, now, caller).await?;
    let handle: i64 = sqlx::query_scalar(
        "INSERT INTO opens (ino, session, write, opened_ns, owner, bucket) \
         VALUES (?, ?, ?, ?, ?, ?) RETURNING handle",
    )
    .bind(r.ino as i64)
    .bind(&r.session)
    .bind(r.write)
    .bind(now)
    .bind(caller)
    .bind(&r.bucket)
    .fetch_one(&mut *c)
    .await?;
    Ok(OpenReply {
        handle: handle as u64,
        attr: Some(inode.attr()),
    })
}

/// Releases a handle of `caller` (unknown handles are ignored: a release may race an
/// expiry); frees the inode if it was unlinked and this was its last open. A handle of
/// another user, bucket or session is refused and stays open: handle numbers are
/// sequential, so knowing one proves nothing. Handles from before owners were recorded
/// (owner '') are matched by session alone.
pub async fn release(
    c: &mut SqliteConnection,
    r: &ReleaseRequest,
    now: i64,
    caller: &str,
) -> Result<()> {
    let row: Option<(String, String, String)> =
        sqlx::query_as("SELECT session, owner, bucket FROM opens WHERE handle = ?")
            .bind(r.handle as i64)
            .fetch_optional(&mut *c)
            .await?;
    let Some((session, owner, bucket)) = row else {
        return Ok(());
    };
    let legacy = owner.is_empty();
    if session != r.session || (!legacy && (owner != caller || bucket != r.bucket)) {
        return Err(denied(format!(
            "handle {} is not an open of {caller:?} in bucket {:?}, session {:?}",
            r.handle, r.bucket, r.session
        )));
    }
    let ino: Option<i64> = sqlx::query_scalar("DELETE FROM opens WHERE handle = ? RETURNING ino")
        .bind(r.handle as i64)
        .fetch_optional(&mut *c)
        .await?;
    if let Some(ino) = ino {
        tree::free_if_unreferenced(c, ino as u64, now).await?;
    }
    Ok(())
}

/// Renews a session of `caller` (creating it) with its ttl (0: the default; above
/// [`MAX_SESSION_TTL_MS`]: refused).
pub async fn keep_alive(
    c: &mut SqliteConnection,
    r: &KeepAliveRequest,
    now: i64,
    caller: &str,
) -> Result<()> {
    check_ttl(r.ttl_ms)?;
    let ttl = if r.ttl_ms == 0 {
        DEFAULT_SESSION_TTL_MS
    } else {
        r.ttl_ms
    };
    touch_session(c, &r.session, Some(ttl), now, caller).await
}

/// Drops sessions not renewed within their ttl, their handles, and the orphan inodes
/// those handles kept alive. Time from the op (or the entry's ctx when 0).
pub async fn expire(c: &mut SqliteConnection, op: &ExpireSessionsOp, ctx_now: i64) -> Result<()> {
    let now = if op.now_ns != 0 { op.now_ns } else { ctx_now };
    let dead: Vec<String> = sqlx::query_scalar(
        "DELETE FROM sessions WHERE last_ns + ttl_ms * 1000000 < ? RETURNING session",
    )
    .bind(now)
    .fetch_all(&mut *c)
    .await?;
    for s in dead {
        let mut inos: Vec<i64> =
            sqlx::query_scalar("DELETE FROM opens WHERE session = ? RETURNING ino")
                .bind(&s)
                .fetch_all(&mut *c)
                .await?;
        inos.sort_unstable();
        inos.dedup();
        for ino in inos {
            tree::free_if_unreferenced(c, ino as u64, now).await?;
        }
    }
    Ok(())
}
