//! Batching of concurrent proposals into one Raft entry.
//!
//! openraft 0.9 appends client writes one by one and waits for each flush before the next
//! append, so concurrent writes would each pay an fsync on every member. The proposer queues
//! mutations and, while at most [`IN_FLIGHT`] batches are in Raft, packs everything queued
//! into one entry: a [`Command`] holding length-delimited `Mutation`s, whose [`Reply`] holds
//! the length-delimited `MutationReply`s in the same order. One entry = one fsync per member
//! for the whole batch; the state machine applies the batch in one transaction.
//!
//! The queue is bounded: a mutation needs one of `[limits] proposal_queue` slots, held from
//! when it is queued until its reply arrives. A mutation that finds none waits up to
//! `proposal_wait_ms` for one (slots are handed out in arrival order) and then fails with
//! Unavailable, code [`QUEUE_FULL`], which clients retry; nothing of it was proposed.
//!
//! A batch stops waiting for Raft once this member's term as leader ends. openraft 0.9
//! answers a pending `client_write` when the entry is applied or its log is truncated, but
//! not when the entry is purged under a snapshot: a leader that lost its quorum with
//! entries in its log and then installed a newer leader's snapshot (issue 17, run c1e58)
//! never hears of them again. Waiting on such a batch would hold its [`IN_FLIGHT`] slot
//! forever, and once both are held no mutation is proposed again, while reads, which do
//! not pass here, are still served.

use super::{Command, Raft};
use kdss_common::rpc_error::{self, errno};
use kdss_proto::master as pb;
use openraft::{RaftMetrics, ServerState};
use prost::Message;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tonic::{Code, Status};

/// Batches in Raft at once (one being flushed, one being built/replicated).
pub const IN_FLIGHT: usize = 2;
/// Most mutations in one entry.
pub const MAX_BATCH: usize = 512;

type Waiter = oneshot::Sender<Result<pb::MutationReply, Status>>;

/// Error code of a mutation refused because the proposal queue stayed full.
pub const QUEUE_FULL: &str = "ProposalQueueFull";

/// Hands mutations to the batching task.
#[derive(Clone)]
pub struct Proposer {
    // Unbounded as a channel, bounded by `slots`: nothing is sent without a slot.
    tx: mpsc::UnboundedSender<(pb::Mutation, Waiter)>,
    slots: Arc<Semaphore>,
    bound: usize,
    wait: Duration,
}

impl Proposer {
    /// Starts the batching task over `raft`, admitting at most `bound` mutations at once;
    /// one more waits up to `wait` for a slot.
    pub fn start(raft: Raft, bound: usize, wait: Duration) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(batcher(raft, rx));
        Proposer {
            tx,
            slots: Arc::new(Semaphore::new(bound)),
            bound,
            wait,
        }
    }

    /// A slot in the queue, waiting up to the configured time for one.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, Status> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(Status::unavailable("master is shutting down")),
            Err(_) => Err(rpc_error::status(
                Code::Unavailable,
                errno::EAGAIN,
                QUEUE_FULL,
                format!(
                    "the Raft proposal queue is full ({} mutations waiting or in Raft, none \
                     freed within {} ms); nothing was changed, retry later",
                    self.bound,
                    self.wait.as_millis()
                ),
            )),
        }
    }

    /// Proposes one mutation and waits for its reply. Every mutation passes here, so this
    /// is where one with a field above its size limit is refused, before it takes a slot
    /// or reaches the log.
    pub async fn propose(&self, m: pb::Mutation) -> Result<pb::MutationReply, Status> {
        if let Some(op) = &m.op {
            crate::meta_api::check_sizes(op)?;
        }
        let _slot = self.slot().await?;
        let (done, wait) = oneshot::channel();
        self.tx
            .send((m, done))
            .map_err(|_| Status::unavailable("master is shutting down"))?;
        wait.await
            .map_err(|_| Status::unavailable("master is shutting down"))?
    }
}

/// Encodes a batch of mutations as one command.
pub fn encode_batch<'a>(ms: impl IntoIterator<Item = &'a pb::Mutation>) -> Command {
    let mut buf = Vec::new();
    for m in ms {
        m.encode_length_delimited(&mut buf).expect("Vec grows");
    }
    Command(buf)
}

/// Decodes the replies of a batch.
pub fn decode_replies(mut bytes: &[u8]) -> Result<Vec<pb::MutationReply>, prost::DecodeError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        out.push(pb::MutationReply::decode_length_delimited(&mut bytes)?);
    }
    Ok(out)
}

async fn batcher(raft: Raft, mut rx: mpsc::UnboundedReceiver<(pb::Mutation, Waiter)>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        // While we waited for a slot, more proposals queued: take them all.
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(x) => batch.push(x),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let cmd = encode_batch(batch.iter().map(|(m, _)| m));
            let (term, leading) = {
                let m = raft.metrics();
                let m = m.borrow();
                (m.current_term, m.state == ServerState::Leader)
            };
            let res = tokio::select! {
                res = raft.client_write(cmd) => res,
                () = term_ends(raft.metrics(), term, leading) => {
                    let s = super::status::term_ended(&raft, term);
                    for (_, w) in batch {
                        let _ = w.send(Err(s.clone()));
                    }
                    return;
                }
            };
            match res {
                Err(e) => {
                    let s = super::status::write_error(&raft, e);
                    for (_, w) in batch {
                        let _ = w.send(Err(s.clone()));
                    }
                }
                Ok(r) => match decode_replies(&r.data.0) {
                    Ok(replies) if replies.len() == batch.len() => {
                        for ((_, w), rep) in batch.into_iter().zip(replies) {
                            let _ = w.send(Ok(rep));
                        }
                    }
                    other => {
                        let s = Status::internal(format!("batch reply does not match: {other:?}"));
                        for (_, w) in batch {
                            let _ = w.send(Err(s.clone()));
                        }
                    }
                },
            }
        });
    }
}

/// Resolves once this member's `term` is over: a new term, or (when it led at the start)
/// no longer leading, or Raft shut down. openraft may never answer a write proposed in a
/// term that ended (see the module comment), so the proposer stops waiting then.
async fn term_ends(
    mut m: watch::Receiver<RaftMetrics<super::NodeId, super::Node>>,
    term: u64,
    leading: bool,
) {
    let _ = m
        .wait_for(|m| m.current_term != term || (leading && m.state != ServerState::Leader))
        .await;
}
