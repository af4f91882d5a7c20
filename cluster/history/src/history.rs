//! What a history holds (one [`Operation`] per client call) and how tests record one.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a client asked the store to do with one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// Write `value` (replacing any value).
    Put { value: String },
    /// Read the value, or learn that the key is absent.
    Get,
    /// Remove the key (absent keys stay absent).
    Delete,
    /// Move the key's value to key `to`, replacing what `to` held; the key is absent
    /// after. Takes effect only while the key holds a value: a rename answered "no such
    /// key" changed nothing and is recorded as failed. The checker judges the keys that
    /// renames join as one group (see [`crate::check`]).
    Rename { to: String },
    /// List the keys that exist (the operation's `key` is the listed prefix or
    /// directory, for the report). A multi-key read: the register search leaves it out
    /// and [`crate::check`] judges it against the writes and deletes around it.
    List,
}

/// How a call ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A put or delete was acknowledged.
    Ok,
    /// A get answered: the value, or `None` when the key was absent.
    Read { value: Option<String> },
    /// A list answered with these keys.
    Listed { keys: Vec<String> },
    /// The call certainly changed nothing (refused before it could take effect).
    Failed,
    /// The client cannot tell (timeout, connection lost, cancelled): the call may have
    /// taken effect once, at any time after its invocation, or never.
    Unknown,
}

/// One client call: who made it, on which key, what it asked, what it got, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The client (one call at a time per process, as in Jepsen).
    pub process: u64,
    pub key: String,
    pub call: Call,
    pub outcome: Outcome,
    /// Nanoseconds since the recorder's start when the call was sent.
    pub invoked_ns: u64,
    /// Nanoseconds since the recorder's start when the answer arrived (or the client gave
    /// up, for [`Outcome::Unknown`], where it bounds nothing).
    pub completed_ns: u64,
}

/// A history that does not describe possible client calls, or one that cannot be saved or
/// loaded.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("operation {index} ({op}): {why}")]
    Malformed {
        index: usize,
        op: String,
        why: &'static str,
    },
    #[error(
        "renames join {} keys into one group ({}); the checker takes at most {max} keys \
         a group: rename within smaller groups of keys",
        keys.len(),
        keys.join(", ")
    )]
    GroupTooLarge { keys: Vec<String>, max: usize },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("history file {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Every operation of a run, in the order they completed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub ops: Vec<Operation>,
}

impl History {
    /// Refuses operations whose outcome cannot answer their call (an acknowledged get
    /// without a value, a put that "read" something) or that complete before they start,
    /// so the checker never judges a history the recorder could not have made.
    pub fn validate(&self) -> Result<(), HistoryError> {
        for (index, op) in self.ops.iter().enumerate() {
            let bad = |why| HistoryError::Malformed {
                index,
                op: format!("{op:?}"),
                why,
            };
            match (&op.call, &op.outcome) {
                (Call::Get | Call::List, Outcome::Ok) => {
                    return Err(bad("a get or list acknowledged without an answer"));
                }
                (
                    Call::Put { .. } | Call::Delete | Call::Rename { .. },
                    Outcome::Read { .. } | Outcome::Listed { .. },
                ) => {
                    return Err(bad("a put, delete or rename answered with a read value"));
                }
                (Call::Rename { to }, _) if *to == op.key => {
                    return Err(bad("a rename onto its own key"));
                }
                (Call::Get, Outcome::Listed { .. }) => {
                    return Err(bad("a get answered with a list of keys"));
                }
                (Call::List, Outcome::Read { .. }) => {
                    return Err(bad("a list answered with one value"));
                }
                _ => {}
            }
            if op.outcome != Outcome::Unknown && op.completed_ns < op.invoked_ns {
                return Err(bad("completed before it was invoked"));
            }
        }
        Ok(())
    }

    /// Writes the history as JSON, the artifact a failing run leaves behind.
    pub fn save(&self, path: &Path) -> Result<(), HistoryError> {
        let text = serde_json::to_string_pretty(self).map_err(|source| HistoryError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        std::fs::write(path, text).map_err(|source| HistoryError::Io {
            what: "write",
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a history saved by [`History::save`] (to check it again after a fix).
    pub fn load(path: &Path) -> Result<History, HistoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Io {
            what: "read",
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| HistoryError::Json {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Collects operations from many concurrent clients against one clock.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    ops: Arc<Mutex<Vec<Operation>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            ops: Arc::default(),
        }
    }

    /// The recorder's clock (nanoseconds since it started), the one operations are timed
    /// by: tests note fault windows with it to ask what calls did inside them.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Notes the invocation time; call this right before sending the request.
    pub fn invoke(&self, process: u64, key: &str, call: Call) -> Pending {
        Pending {
            rec: self.clone(),
            op: Some(Operation {
                process,
                key: key.to_string(),
                call,
                outcome: Outcome::Unknown,
                invoked_ns: self.now_ns(),
                completed_ns: 0,
            }),
        }
    }

    /// The operations recorded so far.
    pub fn history(&self) -> History {
        History {
            ops: self.ops.lock().expect("recorder lock").clone(),
        }
    }
}

/// A call in flight. Completing it records it; dropping it uncompleted (a cancelled
/// task, a panic) records it as [`Outcome::Unknown`], which is what the client knows.
pub struct Pending {
    rec: Recorder,
    op: Option<Operation>,
}

impl Pending {
    /// Records the answer; call this right after the response arrived.
    pub fn complete(mut self, outcome: Outcome) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Outcome) {
        if let Some(mut op) = self.op.take() {
            op.outcome = outcome;
            op.completed_ns = self.rec.now_ns();
            self.rec.ops.lock().expect("recorder lock").push(op);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.finish(Outcome::Unknown);
    }
}
