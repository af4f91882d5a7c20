//! The Raft log, durable in its own SQLite file (`raft-log.db`, WAL, `synchronous=FULL`).
//!
//! Layout: `log(idx INTEGER PRIMARY KEY, entry BLOB)` holds serde_json entries;
//! `kv(key TEXT PRIMARY KEY, value BLOB)` holds `vote`, `committed` and `purged`.
//!
//! Group commit: `append` puts entries in the in-memory tail (readable at once, as openraft
//! requires) and queues them for the writer thread; the writer drains everything queued,
//! writes it in one transaction (one fsync) and then completes every flush callback. Under
//! concurrent client writes many entries therefore share one fsync. Order of log I/O (append,
//! truncate, purge, vote) is the queue order, which is the order openraft issued them.
//!
//! The writer is a plain thread that owns a rusqlite connection and calls SQLite directly:
//! through sqlx every statement of a commit (BEGIN, INSERT, COMMIT) was a round trip to the
//! connection's worker thread, and BEGIN and COMMIT wait for the caller to acknowledge, so one
//! append cost about ten context switches before and after its fsync. Now it costs two: the
//! wake-up of the writer and the flush callback. Once a write fails the writer writes nothing
//! more and fails every later operation: what SQLite left after a failed fsync is not trusted.

use super::{Entry, LogId, NodeId, StorageError, TypeConfig, io_err};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{RaftLogReader, StorageIOError, Vote};
use rusqlite::{Connection, params};
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
    /// Opens (or creates) the log at `path` and loads its unpurged entries. The database is
    /// opened and read on the writer thread, which then keeps the connection.
    pub async fn open(path: &Path) -> Result<Self, StorageError> {
        let (loaded, wait) = oneshot::channel();
        let (tx, rx) = mpsc::unbounded_channel();
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("raft-log".to_string())
            .spawn(move || writer(&path, loaded, rx))
            .map_err(sto)?;
        let (mem, stats) = wait.await.map_err(|_| sto_read("log writer stopped"))??;
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

type Loaded = Result<(Arc<Mutex<LogMem>>, Arc<LogStats>), StorageError>;

/// Opens the database, creating the tables, and reads what it holds.
#[allow(clippy::result_large_err)] // openraft's error type, not ours
fn load(path: &Path) -> Result<(Connection, LogMem), StorageError> {
    let conn = Connection::open(path).map_err(sto_read)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(sto)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(sto(format!("{} refused WAL mode ({mode})", path.display())));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sto)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL); \
         CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);",
    )
    .map_err(sto)?;
    let mut mem = LogMem::default();
    {
        let mut q = conn
            .prepare("SELECT key, value FROM kv")
            .map_err(sto_read)?;
        let mut rows = q.query([]).map_err(sto_read)?;
        while let Some(row) = rows.next().map_err(sto_read)? {
            let key: String = row.get(0).map_err(sto_read)?;
            let value: Vec<u8> = row.get(1).map_err(sto_read)?;
            match key.as_str() {
                "vote" => mem.vote = serde_json::from_slice(&value).map_err(sto_read)?,
                "committed" => mem.committed = serde_json::from_slice(&value).map_err(sto_read)?,
                "purged" => mem.purged = serde_json::from_slice(&value).map_err(sto_read)?,
                _ => {}
            }
        }
        let mut q = conn
            .prepare("SELECT idx, entry FROM log ORDER BY idx")
            .map_err(sto_read)?;
        let mut rows = q.query([]).map_err(sto_read)?;
        while let Some(row) = rows.next().map_err(sto_read)? {
            let idx: i64 = row.get(0).map_err(sto_read)?;
            let bytes: Vec<u8> = row.get(1).map_err(sto_read)?;
            let e: Entry = serde_json::from_slice(&bytes).map_err(sto_read)?;
            mem.entries.insert(idx as u64, e);
        }
    }
    Ok((conn, mem))
}

/// The writer thread: loads the log (answering on `loaded`), then drains the queue into one
/// transaction per round. The committed log id rides along with whatever the round writes
/// (it is an optimisation for restart, not needed for safety, so it never costs an fsync of
/// its own).
fn writer(path: &Path, loaded: oneshot::Sender<Loaded>, mut rx: mpsc::UnboundedReceiver<WriteOp>) {
    let (mut conn, mem) = match load(path) {
        Ok(x) => x,
        Err(e) => {
            let _ = loaded.send(Err(e));
            return;
        }
    };
    let stats = Arc::new(LogStats::default());
    if let Some(c) = mem.committed {
        stats.committed_index.store(c.index, Ordering::Relaxed);
    }
    let mut committed_written = mem.committed;
    let mem = Arc::new(Mutex::new(mem));
    if loaded.send(Ok((mem.clone(), stats.clone()))).is_err() {
        return;
    }
    let mut failed: Option<String> = None;
    while let Some(first) = rx.blocking_recv() {
        let mut ops = vec![first];
        while ops.len() < MAX_BATCH_OPS {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let committed = mem.lock().expect("log mutex").committed;
        let committed = (committed != committed_written).then_some(committed);
        let res = match &failed {
            Some(e) => Err(format!("an earlier raft log write failed: {e}")),
            None => write_batch(&mut conn, &ops, committed).map_err(|e| e.to_string()),
        };
        match &res {
            Ok(()) => {
                if let Some(c) = committed {
                    committed_written = c;
                }
            }
            Err(e) if failed.is_none() => {
                tracing::error!(error = %e, "raft log write failed; the log takes no more writes");
                failed = Some(e.clone());
            }
            Err(_) => {}
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
}

/// Writes one round of queued operations in one transaction.
fn write_batch(
    conn: &mut Connection,
    ops: &[WriteOp],
    committed: Option<Option<LogId>>,
) -> Result<(), WriteError> {
    let tx = conn.transaction()?;
    if let Some(c) = committed {
        put_kv(&tx, "committed", &c)?;
    }
    for op in ops {
        match op {
            WriteOp::Append(entries, _) => {
                let mut insert =
                    tx.prepare_cached("INSERT OR REPLACE INTO log (idx, entry) VALUES (?1, ?2)")?;
                for (idx, bytes) in entries {
                    insert.execute(params![*idx as i64, bytes])?;
                }
            }
            WriteOp::Truncate(from) => {
                tx.execute("DELETE FROM log WHERE idx >= ?1", [*from as i64])?;
            }
            WriteOp::Purge(upto) => {
                tx.execute("DELETE FROM log WHERE idx <= ?1", [upto.index as i64])?;
                put_kv(&tx, "purged", &Some(*upto))?;
            }
            WriteOp::Vote(v, _) => put_kv(&tx, "vote", &Some(*v))?,
        }
    }
    Ok(tx.commit()?)
}

/// Why a round of log writes failed.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("raft log database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("raft log value: {0}")]
    Encode(#[from] serde_json::Error),
}

fn put_kv<T: serde::Serialize>(tx: &Connection, key: &str, v: &T) -> Result<(), WriteError> {
    let bytes = serde_json::to_vec(v)?;
    tx.execute(
        "INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)",
        params![key, bytes],
    )?;
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
