//! The Raft log, durable in its own SQLite file (`raft-log.db`, WAL, `synchronous=FULL`).
//!
//! Layout: `log(idx INTEGER PRIMARY KEY, entry BLOB)` holds serde_json entries;
//! `kv(key TEXT PRIMARY KEY, value BLOB)` holds `vote`, `committed` and `purged`.
//!
//! Group commit: `append` puts entries in the in-memory tail (readable at once, as openraft
//! requires) and queues them for the writer task; the writer drains everything queued,
//! writes it in one transaction (one fsync) and then completes every flush callback. Under
//! concurrent client writes many entries therefore share one fsync. Order of log I/O (append,
//! truncate, purge, vote) is the queue order, which is the order openraft issued them.

use super::{Entry, LogId, NodeId, StorageError, TypeConfig, io_err};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{RaftLogReader, StorageIOError, Vote};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqlitePool};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Most queued operations written in one transaction.
const MAX_BATCH_OPS: usize = 4096;

/// What is kept in memory: every entry not yet purged, plus the small durable values.
#[derive(Default)]
struct LogMem {
    entries: BTreeMap<u64, Entry>,
    purged: Option<LogId>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId>,
}

enum WriteOp {
    Append(Vec<(u64, Vec<u8>)>, Option<LogFlushed<TypeConfig>>),
    Truncate(u64),
    Purge(LogId),
    Vote(Vote<NodeId>, oneshot::Sender<Result<(), String>>),
}

/// Shared counters exposed to metrics.
#[derive(Default, Debug)]
pub struct LogStats {
    /// Transactions (fsyncs) written.
    pub batches: AtomicU64,
    /// Entries written.
    pub entries: AtomicU64,
    /// Last committed index seen (0 = none).
    pub committed_index: AtomicU64,
}

/// The log store handed to openraft.
#[derive(Clone)]
pub struct LogStore {
    mem: Arc<Mutex<LogMem>>,
    tx: mpsc::UnboundedSender<WriteOp>,
    stats: Arc<LogStats>,
}

/// A reader over the in-memory log (used by replication tasks).
#[derive(Clone)]
pub struct LogReader {
    mem: Arc<Mutex<LogMem>>,
}

fn sto(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_logs(&io_err(e)).into()
}

fn sto_read(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_logs(&io_err(e)).into()
}

impl LogStore {
    /// Opens (or creates) the log at `path` and loads its unpurged entries.
    pub async fn open(path: &Path) -> Result<Self, StorageError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(sto_read)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL)",
        )
        .execute(&pool)
        .await
        .map_err(sto)?;
        sqlx::query("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            .execute(&pool)
            .await
            .map_err(sto)?;
        let mut mem = LogMem::default();
        for row in sqlx::query("SELECT key, value FROM kv")
            .fetch_all(&pool)
            .await
            .map_err(sto_read)?
        {
            let key: String = row.get(0);
            let value: Vec<u8> = row.get(1);
            match key.as_str() {
                "vote" => mem.vote = serde_json::from_slice(&value).map_err(sto_read)?,
                "committed" => mem.committed = serde_json::from_slice(&value).map_err(sto_read)?,
                "purged" => mem.purged = serde_json::from_slice(&value).map_err(sto_read)?,
                _ => {}
            }
        }
        let rows = sqlx::query("SELECT idx, entry FROM log ORDER BY idx")
            .fetch_all(&pool)
            .await
            .map_err(sto_read)?;
        for row in rows {
            let idx: i64 = row.get(0);
            let bytes: Vec<u8> = row.get(1);
            let e: Entry = serde_json::from_slice(&bytes).map_err(sto_read)?;
            mem.entries.insert(idx as u64, e);
        }
        let stats = Arc::new(LogStats::default());
        if let Some(c) = mem.committed {
            stats.committed_index.store(c.index, Ordering::Relaxed);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let mem = Arc::new(Mutex::new(mem));
        tokio::spawn(writer(pool, rx, stats.clone(), mem.clone()));
        Ok(LogStore { mem, tx, stats })
    }

    /// Counters for metrics.
    pub fn stats(&self) -> Arc<LogStats> {
        self.stats.clone()
    }

    #[allow(clippy::result_large_err)] // openraft's error type, not ours
    fn send(&self, op: WriteOp) -> Result<(), StorageError> {
        self.tx.send(op).map_err(|_| sto("log writer stopped"))
    }
}

/// The group-commit writer: drains the queue into one transaction per round. The committed
/// log id rides along with whatever the round writes (it is an optimisation for restart, not
/// needed for safety, so it never costs an fsync of its own).
async fn writer(
    pool: SqlitePool,
    mut rx: mpsc::UnboundedReceiver<WriteOp>,
    stats: Arc<LogStats>,
    mem: Arc<Mutex<LogMem>>,
) {
    // One connection for the writer's life, outside the pool: a pooled one pings its worker
    // thread when taken and again when returned, two more hand-offs on every commit.
    let mut conn = match pool.acquire().await {
        Ok(c) => c.detach(),
        Err(e) => {
            tracing::error!(error = %e, "raft log: no database connection; log writes fail");
            return;
        }
    };
    let mut committed_written = mem.lock().expect("log mutex").committed;
    while let Some(first) = rx.recv().await {
        let mut ops = vec![first];
        while ops.len() < MAX_BATCH_OPS {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let committed = mem.lock().expect("log mutex").committed;
        let committed = (committed != committed_written).then_some(committed);
        let res = write_batch(&mut conn, &ops, committed).await;
        if res.is_ok()
            && let Some(c) = committed
        {
            committed_written = c;
        }
        if let Err(e) = &res {
            tracing::error!(error = %e, "raft log write failed");
        }
        let mut n = 0u64;
        for op in ops {
            match op {
                WriteOp::Append(entries, cb) => {
                    n += entries.len() as u64;
                    if let Some(cb) = cb {
                        cb.log_io_completed(res.clone().map_err(io_err));
                    }
                }
                WriteOp::Vote(_, done) => {
                    let _ = done.send(res.clone());
                }
                _ => {}
            }
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.entries.fetch_add(n, Ordering::Relaxed);
    }
    let _ = conn.close().await;
    pool.close().await;
}

async fn write_batch(
    conn: &mut sqlx::SqliteConnection,
    ops: &[WriteOp],
    committed: Option<Option<LogId>>,
) -> Result<(), String> {
    let mut tx = conn.begin().await.map_err(|e| e.to_string())?;
    if let Some(c) = committed {
        put_kv(&mut tx, "committed", &c).await?;
    }
    for op in ops {
        match op {
            WriteOp::Append(entries, _) => {
                for (idx, bytes) in entries {
                    sqlx::query("INSERT OR REPLACE INTO log (idx, entry) VALUES (?, ?)")
                        .bind(*idx as i64)
                        .bind(bytes)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            WriteOp::Truncate(from) => {
                sqlx::query("DELETE FROM log WHERE idx >= ?")
                    .bind(*from as i64)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            WriteOp::Purge(upto) => {
                sqlx::query("DELETE FROM log WHERE idx <= ?")
                    .bind(upto.index as i64)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| e.to_string())?;
                put_kv(&mut tx, "purged", &Some(*upto)).await?;
            }
            WriteOp::Vote(v, _) => put_kv(&mut tx, "vote", &Some(*v)).await?,
        }
    }
    tx.commit().await.map_err(|e| e.to_string())
}

async fn put_kv<T: serde::Serialize>(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    key: &str,
    v: &T,
) -> Result<(), String> {
    let bytes = serde_json::to_vec(v).map_err(|e| e.to_string())?;
    sqlx::query("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)")
        .bind(key)
        .bind(bytes)
        .execute(&mut **tx)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn read_range<RB: RangeBounds<u64>>(mem: &Mutex<LogMem>, range: RB) -> Vec<Entry> {
    let m = mem.lock().expect("log mutex");
    m.entries.range(range).map(|(_, e)| e.clone()).collect()
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(read_range(&self.mem, range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(read_range(&self.mem, range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let m = self.mem.lock().expect("log mutex");
        let last = m
            .entries
            .iter()
            .next_back()
            .map(|(_, e)| e.log_id)
            .or(m.purged);
        Ok(LogState {
            last_purged_log_id: m.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            mem: self.mem.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let (done, wait) = oneshot::channel();
        self.send(WriteOp::Vote(*vote, done))?;
        wait.await
            .map_err(|_| sto("log writer stopped"))?
            .map_err(|e| StorageError::from(StorageIOError::write_vote(&io_err(e))))?;
        self.mem.lock().expect("log mutex").vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        Ok(self.mem.lock().expect("log mutex").vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.mem.lock().expect("log mutex").committed = committed;
        if let Some(c) = committed {
            self.stats.committed_index.store(c.index, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.mem.lock().expect("log mutex").committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut encoded = Vec::new();
        {
            let mut m = self.mem.lock().expect("log mutex");
            for e in entries {
                encoded.push((e.log_id.index, serde_json::to_vec(&e).map_err(sto)?));
                m.entries.insert(e.log_id.index, e);
            }
        }
        self.send(WriteOp::Append(encoded, Some(callback)))
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut m = self.mem.lock().expect("log mutex");
            let _ = m.entries.split_off(&log_id.index);
        }
        self.send(WriteOp::Truncate(log_id.index))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut m = self.mem.lock().expect("log mutex");
            m.entries = m.entries.split_off(&(log_id.index + 1));
            m.purged = Some(log_id);
        }
        self.send(WriteOp::Purge(log_id))
    }
}
