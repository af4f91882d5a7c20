//! Writing one chunk as one stripe (invariant 1): allocate on the master while encoding off
//! the reactor, send the k+m shards in parallel to their disks, replace a failed target
//! through the master and retry that shard. The stripe is usable only when all k+m shards
//! are acknowledged durable; the caller commits extents after that, never before.
//!
//! [`Pipeline`] keeps several stripes in flight while the caller produces more data, with
//! the bytes in flight bounded by the writer's window and by the client's write budget.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use kdss_proto::master as pb;

use crate::layout::shard_len_for;
use crate::state::Shared;
use crate::{ClientError, MasterClient};

/// Attempts per shard (the first target plus replacements) before the stripe fails; the
/// attempts also stop when the master-call deadline has passed since the first failure.
const SHARD_ATTEMPTS: usize = 12;

/// The EC policy of `bucket`, cached after the first GetBucket.
pub(crate) async fn bucket_policy(
    sh: &Shared,
    master: &MasterClient,
    bucket: &str,
) -> Result<(u32, u32), ClientError> {
    if let Some(p) = sh.policies.lock().expect("policy lock").get(bucket) {
        return Ok(*p);
    }
    let req = pb::BucketRequest {
        name: bucket.to_string(),
    };
    let b = master.get_bucket(req).await?;
    let b = b
        .bucket
        .ok_or_else(|| ClientError::Internal(format!("bucket {bucket}: no info")))?;
    let p = (b.k, b.m);
    sh.policies
        .lock()
        .expect("policy lock")
        .insert(bucket.to_string(), p);
    Ok(p)
}

/// Writes `chunk` as one new stripe of `bucket`; returns its id once every shard is durable.
pub(crate) async fn write_stripe(
    sh: Arc<Shared>,
    master: MasterClient,
    bucket: String,
    chunk: Bytes,
) -> Result<u64, ClientError> {
    let (k, m) = bucket_policy(&sh, &master, &bucket).await?;
    let data_len = chunk.len() as u64;
    let shard_len = shard_len_for(data_len, k);
    let codec = sh.codecs.get(k, m)?;
    let enc = {
        let chunk = chunk.clone();
        tokio::task::spawn_blocking(move || crate::ec::encode(&codec, &chunk, shard_len as usize))
    };
    let req = pb::AllocateStripeRequest {
        bucket: bucket.clone(),
        data_len,
        shard_len,
    };
    let alloc = master.allocate_stripe(req);
    let (enc, alloc) = tokio::join!(enc, alloc);
    let enc = enc.map_err(|e| ClientError::Internal(format!("encode task: {e}")))??;
    let stripe = alloc?
        .stripe
        .ok_or_else(|| ClientError::Internal("no stripe allocated".into()))?;
    if stripe.k != k || stripe.m != m || stripe.shard_len != shard_len {
        sh.policies.lock().expect("policy lock").remove(&bucket);
        return Err(ClientError::Internal(format!(
            "master allocated {}+{} x {} for a {k}+{m} x {shard_len} stripe",
            stripe.k, stripe.m, stripe.shard_len
        )));
    }
    let sid = stripe.stripe_id;
    let puts = enc
        .shards
        .iter()
        .zip(enc.crcs.iter())
        .enumerate()
        .map(|(i, (shard, crc))| {
            let loc = stripe
                .shards
                .iter()
                .find(|l| l.shard_index == i as u32)
                .cloned();
            put_with_replace(
                &sh,
                &master,
                &bucket,
                sid,
                i as u32,
                loc,
                shard.clone(),
                *crc,
            )
        });
    futures::future::try_join_all(puts).await?;
    Ok(sid)
}

/// Puts one shard; when the put fails or runs past its deadline
/// ([`crate::ClientConfig::put_deadline`]) asks the master for another disk and tries
/// again. An abandoned put may still land on its disk later; the master's map then names
/// the replacement disk only, so no read ever uses that copy and the collector deletes it.
#[allow(clippy::too_many_arguments)]
async fn put_with_replace(
    sh: &Shared,
    master: &MasterClient,
    bucket: &str,
    stripe_id: u64,
    shard_index: u32,
    loc: Option<pb::ShardLocation>,
    shard: Bytes,
    crc: u32,
) -> Result<(), ClientError> {
    let mut loc = loc;
    let mut last = None;
    let started = std::time::Instant::now();
    let mut backoff = std::time::Duration::from_millis(50);
    let deadline = sh.cfg.put_deadline(shard.len() as u64);
    let mut attempts = 0;
    for attempt in 0..SHARD_ATTEMPTS {
        if attempt >= 2 {
            // The master may still place on a node that just died (it learns from missed
            // heartbeats): give it time to notice instead of burning the attempts at once.
            if started.elapsed() > master.timeout() {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
        }
        let failed_disk = match &loc {
            // The allocated target hung a put of this client a moment ago: move the shard
            // away at once rather than wait out another deadline there.
            Some(l) if attempt == 0 && sh.is_slow_disk(l.disk_id) => {
                tracing::info!(
                    stripe_id,
                    shard_index,
                    disk = l.disk_id,
                    "target recently past its put deadline; replacing"
                );
                l.disk_id
            }
            Some(l) => {
                attempts += 1;
                let put = sh.nodes.put_shard(l, stripe_id, shard.clone(), crc);
                let e = match tokio::time::timeout(deadline, put).await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(e)) => ClientError::from(e),
                    Err(_) => {
                        sh.mark_slow_disk(l.disk_id);
                        put_timeout(l, stripe_id, shard.len(), deadline)
                    }
                };
                tracing::warn!(stripe_id, shard_index, attempt, error = %e, "shard put failed; replacing target");
                last = Some(e);
                l.disk_id
            }
            None => 0,
        };
        let req = pb::ReplaceShardRequest {
            bucket: bucket.to_string(),
            stripe_id,
            shard_index,
            failed_disk_id: failed_disk,
        };
        let r = master.replace_shard(req).await;
        match (r, last.take()) {
            (Ok(r), l) => {
                last = l;
                loc = r.location;
            }
            // Say why the shard needed a new target, not only why none was found.
            (Err(e), Some(ClientError::Storage { node, status })) => {
                let msg = format!("{}; no replacement target: {e}", status.message());
                return Err(ClientError::Storage {
                    node,
                    status: tonic::Status::new(status.code(), msg),
                });
            }
            (Err(e), _) => return Err(e),
        }
    }
    Err(match last {
        Some(ClientError::Storage { node, status }) => {
            let msg = format!(
                "{}; gave up on shard {shard_index} of stripe {stripe_id} after {attempts} \
                 put attempts in {:.1?}",
                status.message(),
                started.elapsed()
            );
            ClientError::Storage {
                node,
                status: tonic::Status::new(status.code(), msg),
            }
        }
        Some(e) => e,
        None => ClientError::Internal(format!("no target for shard {shard_index}")),
    })
}

/// The error of a shard put that ran past its deadline. `Unavailable`, like a node that
/// cannot answer: the gateway answers 503, ksfs EIO.
fn put_timeout(
    l: &pb::ShardLocation,
    stripe_id: u64,
    len: usize,
    deadline: std::time::Duration,
) -> ClientError {
    ClientError::Storage {
        node: format!("{} ({})", l.node_id, l.node_addr),
        status: tonic::Status::unavailable(format!(
            "put of shard {} of stripe {stripe_id} ({len} bytes) to disk {} did not finish \
             within its {:.1?} deadline (client.shard_put_deadline + \
             client.shard_put_deadline_per_mib)",
            l.shard_index, l.disk_id, deadline
        )),
    }
}

/// `(file offset, bytes, task writing the stripe)`.
type InflightStripe = (u64, u64, tokio::task::JoinHandle<Result<u64, ClientError>>);

/// Stripes being written, oldest first, bounded by a window of bytes and of stripes.
pub(crate) struct Pipeline {
    sh: Arc<Shared>,
    master: MasterClient,
    bucket: String,
    window: u64,
    /// Stripes in flight at most: the window in whole chunks. Bytes alone do not bound
    /// them: 8-byte dirty runs (an mmap flush touching every page) made one stripe each and
    /// started tens of thousands at once, k+m shard puts apiece (xfstests generic/346: EIO).
    max_stripes: usize,
    inflight: VecDeque<InflightStripe>,
    inflight_bytes: u64,
    /// Most stripes in flight at once so far.
    pub peak_stripes: usize,
    /// Extents of durable stripes, in submission order (file offsets as submitted).
    pub done: Vec<pb::Extent>,
}

impl Pipeline {
    pub fn new(sh: Arc<Shared>, master: MasterClient, bucket: String) -> Pipeline {
        let window = sh.cfg.write_window_bytes.max(sh.cfg.chunk_size as u64);
        let max_stripes = (window / sh.cfg.chunk_size.max(1) as u64).max(2) as usize;
        Pipeline {
            sh,
            master,
            bucket,
            window,
            max_stripes,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            peak_stripes: 0,
            done: Vec::new(),
        }
    }

    /// Bytes handed over and not yet durable.
    pub fn inflight_bytes(&self) -> u64 {
        self.inflight_bytes
    }

    /// Starts writing `chunk` (file bytes at `file_offset`) as a stripe; first waits for older
    /// stripes while the window is full, then for room in the client's write budget.
    pub async fn submit(&mut self, file_offset: u64, chunk: Bytes) -> Result<(), ClientError> {
        let len = chunk.len() as u64;
        while !self.inflight.is_empty()
            && (self.inflight_bytes + len > self.window || self.inflight.len() >= self.max_stripes)
        {
            self.complete_oldest().await?;
        }
        // The client-wide budget: wait for bytes there too; they come back when the
        // stripe task ends (durable, failed or aborted), with its buffers freed.
        let admission = self.sh.write_budget.admit(len).await;
        let stripe = write_stripe(
            self.sh.clone(),
            self.master.clone(),
            self.bucket.clone(),
            chunk,
        );
        let task = tokio::spawn(async move {
            let r = stripe.await;
            drop(admission);
            r
        });
        self.inflight.push_back((file_offset, len, task));
        self.inflight_bytes += len;
        self.peak_stripes = self.peak_stripes.max(self.inflight.len());
        Ok(())
    }

    async fn complete_oldest(&mut self) -> Result<(), ClientError> {
        let Some((file_offset, len, task)) = self.inflight.pop_front() else {
            return Ok(());
        };
        self.inflight_bytes -= len;
        let sid = task
            .await
            .map_err(|e| ClientError::Internal(format!("stripe task: {e}")))??;
        self.done.push(pb::Extent {
            file_offset,
            len,
            stripe_id: sid,
            stripe_offset: 0,
        });
        Ok(())
    }

    /// Waits until every submitted stripe is durable.
    pub async fn drain(&mut self) -> Result<(), ClientError> {
        while !self.inflight.is_empty() {
            self.complete_oldest().await?;
        }
        Ok(())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // An abandoned writer stops sending; unreferenced stripes are the master's GC's job.
        for (_, _, t) in &self.inflight {
            t.abort();
        }
    }
}
