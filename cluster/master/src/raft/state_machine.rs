//! The replicated state machine: the namespace database of `kdss-meta` (`meta.db`).
//!
//! A batch of committed entries is applied in ONE transaction (a savepoint per mutation),
//! together with the row of `kdss_raft_applied` that records the last applied log id and the
//! membership. So a crash can never leave an entry applied without
//! its log id (which would apply it twice on restart) or the reverse.
//!
//! Snapshots: `VACUUM INTO snapshot-building.db`, whose own `kdss_raft_applied` row is the
//! snapshot's meta; installing one replaces `meta.db` and reopens it.

use super::{Entry, LogId, Node, NodeId, Reply, StorageError, TypeConfig, io_err};
use kdss_proto::master as pb;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, RaftSnapshotBuilder, SnapshotMeta, StorageIOError, StoredMembership};
use prost::Message;
use sqlx::{AssertSqlSafe, Connection, Row, SqliteConnection, SqlitePool};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Applied log id + membership, as stored and as snapshot meta.
type Applied = (Option<LogId>, StoredMembership<NodeId, Node>);

const APPLIED_DDL: &str = "CREATE TABLE IF NOT EXISTS kdss_raft_applied \
    (id INTEGER PRIMARY KEY CHECK (id = 0), last_applied TEXT, membership TEXT NOT NULL)";

struct Shared {
    dir: PathBuf,
    pool: RwLock<SqlitePool>,
    applied_index: AtomicU64,
    /// Moves whenever the users table may have changed (see [`StateMachine::users_epoch`]).
    users_epoch: AtomicU64,
    /// Serializes snapshot building and installing.
    snap_lock: tokio::sync::Mutex<()>,
    /// The connection batches are applied on, held outside the pool: a pooled connection
    /// costs a ping to its worker thread each time it goes back, on every commit. Opened on
    /// first use; dropped when a snapshot replaces the database.
    apply_conn: tokio::sync::Mutex<Option<SqliteConnection>>,
}

/// The state machine handed to openraft; clones share the database. Also the read side of
/// the master: [`StateMachine::pool`] is the database that reads are served from.
#[derive(Clone)]
pub struct StateMachine {
    s: Arc<Shared>,
}

fn sm_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(&io_err(e)).into()
}

fn snap_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_snapshot(None, &io_err(e)).into()
}

async fn open_db(path: &Path) -> Result<SqlitePool, StorageError> {
    let pool = crate::meta_api::open(path).await.map_err(sm_err)?;
    sqlx::query(APPLIED_DDL)
        .execute(&pool)
        .await
        .map_err(sm_err)?;
    Ok(pool)
}

async fn read_applied(pool: &SqlitePool) -> Result<Applied, StorageError> {
    let row = sqlx::query("SELECT last_applied, membership FROM kdss_raft_applied WHERE id = 0")
        .fetch_optional(pool)
        .await
        .map_err(sm_err)?;
    match row {
        None => Ok((None, StoredMembership::default())),
        Some(r) => {
            let la: Option<String> = r.get(0);
            let mem: String = r.get(1);
            let la = match la {
                Some(s) => serde_json::from_str(&s).map_err(sm_err)?,
                None => None,
            };
            Ok((la, serde_json::from_str(&mem).map_err(sm_err)?))
        }
    }
}

fn remove_db_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

impl StateMachine {
    /// Opens (or creates) the namespace database under `dir`.
    pub async fn open(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(sm_err)?;
        let pool = open_db(&dir.join("meta.db")).await?;
        let (la, _) = read_applied(&pool).await?;
        Ok(StateMachine {
            s: Arc::new(Shared {
                dir: dir.to_path_buf(),
                pool: RwLock::new(pool),
                applied_index: AtomicU64::new(la.map(|l| l.index).unwrap_or(0)),
                users_epoch: AtomicU64::new(0),
                snap_lock: tokio::sync::Mutex::new(()),
                apply_conn: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// The namespace database, for reads. Reopened when a snapshot is installed, so take it
    /// per request rather than keeping it.
    pub fn pool(&self) -> SqlitePool {
        self.s.pool.read().expect("pool lock").clone()
    }

    /// Index of the last applied entry (0 = none).
    pub fn applied_index(&self) -> u64 {
        self.s.applied_index.load(Ordering::Relaxed)
    }

    /// A number that moves after every applied change of users (keys, roles, sealed
    /// secrets) and every installed snapshot: what was read of a user while it held still
    /// is still true. Read it before reading the user, so a change committed meanwhile
    /// makes the copy stale rather than current.
    pub fn users_epoch(&self) -> u64 {
        self.s.users_epoch.load(Ordering::Acquire)
    }

    /// Closes the database (clean shutdown).
    pub async fn close(&self) {
        self.close_apply_conn().await;
        self.pool().close().await;
    }

    async fn close_apply_conn(&self) {
        if let Some(c) = self.s.apply_conn.lock().await.take() {
            let _ = c.close().await;
        }
    }

    fn snapshot_path(&self) -> PathBuf {
        self.s.dir.join("snapshot.db")
    }
}

/// The answer to an undecodable rest of a batch.
fn undecodable(e: prost::DecodeError) -> pb::MutationReply {
    pb::MutationReply {
        reply: None,
        failure: Some(pb::MetaFailure {
            errno: kdss_common::rpc_error::errno::EINVAL,
            code: "InvalidArgument".to_string(),
            message: format!("undecodable mutation: {e}"),
        }),
    }
}

/// Applies one mutation inside the batch transaction, in the savepoint the batch opened.
async fn apply_mutation(conn: &mut SqliteConnection, m: &pb::Mutation) -> pb::MutationReply {
    match crate::meta_api::apply_in_savepoint(conn, m).await {
        Ok(r) => r,
        // An internal failure of one mutation (kdss-meta rolled its savepoint back) is
        // answered as EIO rather than stopping the state machine, so one bad entry cannot
        // take every master down; it is logged loudly.
        Err(e) => {
            tracing::error!(error = %e, "mutation failed inside the state machine");
            pb::MutationReply {
                reply: None,
                failure: Some(pb::MetaFailure {
                    errno: kdss_common::rpc_error::errno::EIO,
                    code: "InternalError".to_string(),
                    message: e.to_string(),
                }),
            }
        }
    }
}

/// The SQL of one batch that is not a mutation's own: BEGIN, a savepoint around each
/// mutation, the applied row and COMMIT. Through sqlx every call is a round trip to the
/// connection's thread (and its own BEGIN and COMMIT also wait for an acknowledgement), so
/// these statements are queued and sent together with the next ones: one call before each
/// mutation (`BEGIN` or the previous `RELEASE`, then `SAVEPOINT`) and one at the end
/// (`RELEASE`, the applied row, `COMMIT`).
#[derive(Default)]
struct BatchSql {
    pending: String,
    begun: bool,
    in_savepoint: bool,
}

impl BatchSql {
    fn push(&mut self, stmt: &str) {
        if !self.begun {
            self.pending.push_str("BEGIN;");
            self.begun = true;
        }
        if self.in_savepoint {
            self.pending.push_str(crate::meta_api::RELEASE_SAVEPOINT);
            self.pending.push(';');
            self.in_savepoint = false;
        }
        self.pending.push_str(stmt);
        self.pending.push(';');
    }

    async fn send(&mut self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        let sql = std::mem::take(&mut self.pending);
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
        Ok(())
    }

    /// Opens the savepoint of the next mutation.
    async fn savepoint(&mut self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        self.push(crate::meta_api::OPEN_SAVEPOINT);
        self.send(conn).await?;
        self.in_savepoint = true;
        Ok(())
    }
}

/// A text value as an SQL literal (the applied row is sent inline with COMMIT, and a raw
/// multi-statement call takes no bound parameters).
fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The statement that records `last` (and the membership, when the batch changed it).
fn applied_row_sql(
    last: LogId,
    membership: Option<StoredMembership<NodeId, Node>>,
) -> Result<String, serde_json::Error> {
    let la = sql_text(&serde_json::to_string(&Some(last))?);
    Ok(match membership {
        Some(m) => format!(
            "INSERT INTO kdss_raft_applied (id, last_applied, membership) VALUES (0, {la}, {}) \
             ON CONFLICT(id) DO UPDATE SET last_applied = excluded.last_applied, \
             membership = excluded.membership",
            sql_text(&serde_json::to_string(&m)?)
        ),
        None => format!(
            "INSERT INTO kdss_raft_applied (id, last_applied, membership) VALUES (0, {la}, {}) \
             ON CONFLICT(id) DO UPDATE SET last_applied = excluded.last_applied",
            sql_text(&serde_json::to_string(
                &StoredMembership::<NodeId, Node>::default()
            )?)
        ),
    })
}

/// What applying a batch produced.
struct BatchDone {
    replies: Vec<Reply>,
    last: Option<LogId>,
    users_changed: bool,
}

/// Applies `entries` in one transaction on `conn`. On an error the transaction may be left
/// open: the caller drops the connection, which rolls it back.
async fn apply_batch<I>(conn: &mut SqliteConnection, entries: I) -> Result<BatchDone, StorageError>
where
    I: IntoIterator<Item = Entry>,
{
    let mut sql = BatchSql::default();
    let mut replies = Vec::new();
    let mut last = None;
    let mut membership = None;
    let mut users_changed = false;
    for entry in entries {
        last = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => replies.push(Reply::default()),
            EntryPayload::Normal(cmd) => {
                let mut out = Vec::new();
                let mut rest = cmd.0.as_slice();
                while !rest.is_empty() {
                    let r = match pb::Mutation::decode_length_delimited(&mut rest) {
                        Ok(m) => {
                            users_changed |= m.op.as_ref().is_some_and(kdss_meta::changes_users);
                            sql.savepoint(conn).await.map_err(sm_err)?;
                            apply_mutation(conn, &m).await
                        }
                        Err(e) => {
                            rest = &[];
                            undecodable(e)
                        }
                    };
                    r.encode_length_delimited(&mut out).map_err(sm_err)?;
                }
                replies.push(Reply(out));
            }
            EntryPayload::Membership(m) => {
                membership = Some(StoredMembership::new(Some(entry.log_id), m));
                replies.push(Reply::default());
            }
        }
    }
    if let Some(last) = last {
        sql.push(&applied_row_sql(last, membership).map_err(sm_err)?);
        sql.push("COMMIT");
        sql.send(conn).await.map_err(sm_err)?;
    }
    Ok(BatchDone {
        replies,
        last,
        users_changed,
    })
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<Applied, StorageError> {
        read_applied(&self.pool()).await
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Reply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut slot = self.s.apply_conn.lock().await;
        let conn = match &mut *slot {
            Some(c) => c,
            None => slot.insert(self.pool().acquire().await.map_err(sm_err)?.detach()),
        };
        let done = match apply_batch(conn, entries).await {
            Ok(d) => d,
            Err(e) => {
                // Closing the connection rolls back whatever the batch left open.
                if let Some(c) = slot.take() {
                    let _ = c.close().await;
                }
                return Err(e);
            }
        };
        if let Some(last) = done.last {
            self.s.applied_index.store(last.index, Ordering::Relaxed);
        }
        if done.users_changed {
            self.s.users_epoch.fetch_add(1, Ordering::AcqRel);
        }
        Ok(done.replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let _g = self.s.snap_lock.lock().await;
        let bytes = snapshot.into_inner();
        tracing::info!(size = bytes.len(), snapshot = %meta.snapshot_id, "installing snapshot");
        let incoming = self.s.dir.join("meta-installing.db");
        remove_db_files(&incoming);
        std::fs::write(&incoming, &bytes).map_err(snap_err)?;
        let live = self.s.dir.join("meta.db");
        self.close_apply_conn().await;
        let old = self.pool();
        old.close().await;
        remove_db_files(&live);
        std::fs::rename(&incoming, &live).map_err(snap_err)?;
        let pool = open_db(&live).await?;
        let (la, _) = read_applied(&pool).await?;
        *self.s.pool.write().expect("pool lock") = pool;
        self.s
            .applied_index
            .store(la.map(|l| l.index).unwrap_or(0), Ordering::Relaxed);
        self.s.users_epoch.fetch_add(1, Ordering::AcqRel);
        // Keep it as our current snapshot too, so we can serve it to others.
        let tmp = self.s.dir.join("snapshot-building.db");
        std::fs::write(&tmp, &bytes).map_err(snap_err)?;
        std::fs::rename(&tmp, self.snapshot_path()).map_err(snap_err)?;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let _g = self.s.snap_lock.lock().await;
        let db = self.snapshot_path();
        if !db.exists() {
            return Ok(None);
        }
        let meta = snapshot_meta_of(&db).await?;
        let data = std::fs::read(&db).map_err(snap_err)?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// The meta of a snapshot file, read from its own `kdss_raft_applied` row (so file and meta
/// can never disagree, whatever a crash interrupted).
async fn snapshot_meta_of(path: &Path) -> Result<SnapshotMeta<NodeId, Node>, StorageError> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true);
    let p = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .map_err(snap_err)?;
    let r = read_applied(&p).await;
    p.close().await;
    let (la, last_membership) = r?;
    let snapshot_id = match la {
        Some(l) => format!("{}-{}", l.leader_id, l.index),
        None => "empty".to_string(),
    };
    Ok(SnapshotMeta {
        last_log_id: la,
        last_membership,
        snapshot_id,
    })
}

impl StateMachine {
    /// The directory of the database (backups stage their copies here).
    pub fn dir(&self) -> &Path {
        &self.s.dir
    }

    /// Copies the applied namespace to `dest` with `VACUUM INTO` (the snapshot copy) and
    /// returns the meta read from the copy's own applied row: consistent by construction,
    /// whatever was applied while VACUUM ran. Writers go on meanwhile (WAL); only snapshot
    /// building and installing wait. Used by Raft snapshots and metadata backups alike.
    pub async fn copy_to(&self, dest: &Path) -> Result<SnapshotMeta<NodeId, Node>, StorageError> {
        let _g = self.s.snap_lock.lock().await;
        self.copy_locked(dest).await
    }

    async fn copy_locked(&self, dest: &Path) -> Result<SnapshotMeta<NodeId, Node>, StorageError> {
        remove_db_files(dest);
        let path = dest
            .to_str()
            .ok_or_else(|| snap_err("data dir is not UTF-8"))?;
        sqlx::query("VACUUM INTO ?")
            .bind(path)
            .execute(&self.pool())
            .await
            .map_err(snap_err)?;
        snapshot_meta_of(dest).await
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let _g = self.s.snap_lock.lock().await;
        let building = self.s.dir.join("snapshot-building.db");
        let meta = self.copy_locked(&building).await?;
        let data = std::fs::read(&building).map_err(snap_err)?;
        std::fs::rename(&building, self.snapshot_path()).map_err(snap_err)?;
        tracing::info!(size = data.len(), snapshot = %meta.snapshot_id, "built snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
