//! Open-file tracking. An open handle keeps an unlinked inode (nlink 0) alive until the
//! last Release; handles belong to a client session that must be renewed with KeepAlive,
//! and ExpireSessions drops the handles of sessions past their ttl (a crashed client)
//! and frees the inodes nothing references any more.

use crate::error::Result;
use crate::tree;
use kdss_proto::master::{
    ExpireSessionsOp, KeepAliveRequest, OpenReply, OpenRequest, ReleaseRequest,
};
use sqlx::SqliteConnection;

/// Ttl of a session that opened files before its first KeepAlive.
pub const DEFAULT_SESSION_TTL_MS: u64 = 120_000;

async fn touch_session(
    c: &mut SqliteConnection,
    session: &str,
    ttl_ms: Option<u64>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (session, ttl_ms, last_ns) VALUES (?, ?, ?) \
         ON CONFLICT (session) DO UPDATE SET last_ns = excluded.last_ns, \
         ttl_ms = CASE WHEN ? THEN excluded.ttl_ms ELSE sessions.ttl_ms END",
    )
    .bind(session)
    .bind(ttl_ms.unwrap_or(DEFAULT_SESSION_TTL_MS) as i64)
    .bind(now)
    .bind(ttl_ms.is_some())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Opens an inode for a session: returns a handle (from SQL, monotonic) and the attrs.
pub async fn open(c: &mut SqliteConnection, r: &OpenRequest, now: i64) -> Result<OpenReply> {
    let inode = tree::inode_in(c, &r.bucket, r.ino).await?;
    touch_session(c, &r.session, None, now).await?;
    let handle: i64 = sqlx::query_scalar(
        "INSERT INTO opens (ino, session, write, opened_ns) VALUES (?, ?, ?, ?) RETURNING handle",
    )
    .bind(r.ino as i64)
    .bind(&r.session)
    .bind(r.write)
    .bind(now)
    .fetch_one(&mut *c)
    .await?;
    Ok(OpenReply {
        handle: handle as u64,
        attr: Some(inode.attr()),
    })
}

/// Releases a handle (unknown handles are ignored: a release may race an expiry); frees
/// the inode if it was unlinked and this was its last open.
pub async fn release(c: &mut SqliteConnection, r: &ReleaseRequest, now: i64) -> Result<()> {
    let ino: Option<i64> = sqlx::query_scalar("DELETE FROM opens WHERE handle = ? RETURNING ino")
        .bind(r.handle as i64)
        .fetch_optional(&mut *c)
        .await?;
    if let Some(ino) = ino {
        tree::free_if_unreferenced(c, ino as u64, now).await?;
    }
    Ok(())
}

/// Renews a session (creating it) with its ttl.
pub async fn keep_alive(c: &mut SqliteConnection, r: &KeepAliveRequest, now: i64) -> Result<()> {
    let ttl = if r.ttl_ms == 0 {
        DEFAULT_SESSION_TTL_MS
    } else {
        r.ttl_ms
    };
    touch_session(c, &r.session, Some(ttl), now).await
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
