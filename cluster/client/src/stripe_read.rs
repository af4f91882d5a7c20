//! Reading byte ranges of stripes: only the data shards a range overlaps, block by block
//! through the cache, one fetch per run of missing blocks shared by every concurrent reader
//! (single-flight) that looks in the disk tier first when there is one, and a degraded read
//! from any k other shards when a shard is missing, corrupt, unreachable or slower than the
//! shard deadline. Fewer than k readable shards is
//! [`ShardFault::Unrecoverable`]: never wrong data.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use kdss_proto::master as pb;

use crate::cache::BLOCK_SIZE;
use crate::layout::{block_span, shard_pieces};
use crate::shard_io::ShardFault;
use crate::state::{InflightRun, Shared};

/// Per-reader read options.
#[derive(Clone, Default, Debug)]
pub(crate) struct ReadOpts {
    /// Shard indices treated as lost (bench and tests: simulated loss without killing nodes).
    pub lost: Arc<Vec<u32>>,
}

static RUN_IDS: AtomicU64 = AtomicU64::new(1);

fn concat(parts: Vec<Bytes>) -> Bytes {
    if parts.len() == 1 {
        return parts.into_iter().next().expect("one part");
    }
    // The one copy of a multi-block read: blocks are sliced, never joined per shard first
    // (joining shard by shard and then the shards cost a second full copy, ~20 % of a
    // sequential reader's CPU in a perf profile, issue 19).
    let mut b = BytesMut::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        b.extend_from_slice(&p);
    }
    b.freeze()
}

/// Reads `[offset, offset+len)` of the stripe's data.
pub(crate) async fn read_stripe_range(
    sh: &Arc<Shared>,
    stripe: &Arc<pb::StripeInfo>,
    offset: u64,
    len: u64,
    opts: &ReadOpts,
) -> Result<Bytes, ShardFault> {
    if offset + len > stripe.k as u64 * stripe.shard_len {
        return Err(ShardFault::Corrupt(format!(
            "range {offset}+{len} is outside stripe {} ({}x{})",
            stripe.stripe_id, stripe.k, stripe.shard_len
        )));
    }
    let pieces = shard_pieces(stripe.shard_len, offset, len);
    let futs = pieces
        .iter()
        .map(|p| read_shard_range(sh, stripe, p.shard, p.offset, p.len, opts));
    let parts = futures::future::try_join_all(futs).await?;
    Ok(concat(parts.into_iter().flatten().collect()))
}

async fn read_shard_range(
    sh: &Arc<Shared>,
    stripe: &Arc<pb::StripeInfo>,
    shard: u32,
    offset: u64,
    len: u64,
    opts: &ReadOpts,
) -> Result<Vec<Bytes>, ShardFault> {
    let (b0, b1) = block_span(BLOCK_SIZE, offset, len);
    let blocks = get_blocks(
        sh.clone(),
        stripe.clone(),
        shard,
        b0,
        b1,
        true,
        opts.clone(),
    )
    .await?;
    let mut skip = (offset - b0 * BLOCK_SIZE) as usize;
    let mut need = len as usize;
    let mut out = Vec::with_capacity(blocks.len());
    for b in blocks {
        let n = (b.len() - skip).min(need);
        out.push(b.slice(skip..skip + n));
        skip = 0;
        need -= n;
    }
    Ok(out)
}

/// The blocks `[b0, b1)` of one shard, from the cache, from fetches in flight, or fetched now.
/// `degrade`: reconstruct from other shards when this one fails (false for the helpers of a
/// degraded read, which wait only on direct fetches so two degraded reads never wait on each
/// other).
fn get_blocks(
    sh: Arc<Shared>,
    stripe: Arc<pb::StripeInfo>,
    shard: u32,
    b0: u64,
    b1: u64,
    degrade: bool,
    opts: ReadOpts,
) -> BoxFuture<'static, Result<Vec<Bytes>, ShardFault>> {
    async move {
        let sid = stripe.stripe_id;
        let mut ready: Vec<Option<Bytes>> = vec![None; (b1 - b0) as usize];
        let mut waits: Vec<(u64, InflightRun)> = Vec::new();
        {
            let mut inf = sh.inflight.lock().expect("inflight lock");
            let mut b = b0;
            while b < b1 {
                let key = (sid, shard, b);
                if let Some(run) = inf.get(&key) {
                    waits.push((b, run.clone()));
                    b += 1;
                    continue;
                }
                if let Some(data) = sh.cache.get(&key) {
                    ready[(b - b0) as usize] = Some(data);
                    b += 1;
                    continue;
                }
                let rs = b;
                while b < b1
                    && !inf.contains_key(&(sid, shard, b))
                    && !sh.cache.contains(&(sid, shard, b))
                {
                    b += 1;
                }
                let run = start_run(&sh, &mut inf, &stripe, shard, rs, b, degrade, &opts);
                for bb in rs..b {
                    waits.push((bb, run.clone()));
                }
            }
        }
        for (b, run) in waits {
            let fut = if degrade {
                run.complete.clone()
            } else {
                run.direct.clone()
            };
            let data = match fut.await {
                Ok(d) => d,
                // A helper's run does not degrade; a reader that needs this block does.
                Err(f) if degrade && !run.degrades && !matches!(f, ShardFault::Denied(_)) => {
                    let off = b * BLOCK_SIZE;
                    let len = (stripe.shard_len - off).min(BLOCK_SIZE);
                    let d =
                        degraded(sh.clone(), stripe.clone(), shard, off, len, opts.clone()).await?;
                    ready[(b - b0) as usize] = Some(d);
                    continue;
                }
                Err(f) => return Err(f),
            };
            let from = ((b - run.first_block) * BLOCK_SIZE) as usize;
            let to = (from + BLOCK_SIZE as usize).min(data.len());
            if from >= to {
                return Err(ShardFault::Corrupt(format!(
                    "short shard {shard} of stripe {sid}"
                )));
            }
            ready[(b - b0) as usize] = Some(data.slice(from..to));
        }
        Ok(ready
            .into_iter()
            .map(|b| b.expect("every block resolved"))
            .collect())
    }
    .boxed()
}

/// Registers and spawns the fetch of blocks `[rs, re)` of one shard.
#[allow(clippy::too_many_arguments)]
fn start_run(
    sh: &Arc<Shared>,
    inf: &mut std::collections::HashMap<crate::cache::BlockKey, InflightRun>,
    stripe: &Arc<pb::StripeInfo>,
    shard: u32,
    rs: u64,
    re: u64,
    degrade: bool,
    opts: &ReadOpts,
) -> InflightRun {
    let off = rs * BLOCK_SIZE;
    let len = (re * BLOCK_SIZE).min(stripe.shard_len) - off;
    let from_disk = Arc::new(AtomicBool::new(false));
    let direct = {
        let (sh, stripe, opts, fd) = (sh.clone(), stripe.clone(), opts.clone(), from_disk.clone());
        async move {
            if !opts.lost.contains(&shard)
                && let Some(d) = from_disk_tier(&sh, stripe.stripe_id, shard, rs, re, len).await
            {
                fd.store(true, Ordering::Release);
                return Ok(d);
            }
            direct_fetch(&sh, &stripe, shard, off, len, degrade, &opts).await
        }
        .boxed()
        .shared()
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let complete = rx
        .map(|r| r.unwrap_or_else(|_| Err(ShardFault::Failed("fetch task ended".into()))))
        .boxed()
        .shared();
    let id = RUN_IDS.fetch_add(1, Ordering::Relaxed);
    let run = InflightRun {
        id,
        first_block: rs,
        direct: direct.clone(),
        complete,
        degrades: degrade,
    };
    for b in rs..re {
        inf.insert((stripe.stripe_id, shard, b), run.clone());
    }
    let (sh, stripe, opts) = (sh.clone(), stripe.clone(), opts.clone());
    tokio::spawn(async move {
        let r = match direct.await {
            Err(f) if degrade && !matches!(f, ShardFault::Denied(_)) => {
                tracing::debug!(stripe = stripe.stripe_id, shard, fault = %f, "degraded read");
                match degraded(sh.clone(), stripe.clone(), shard, off, len, opts.clone()).await {
                    // Read around a disk the master does not call online only while k
                    // others can be read; otherwise read it after all.
                    Err(e) if avoided(&stripe, shard) => {
                        tracing::debug!(stripe = stripe.stripe_id, shard, error = %e, "reading a shard of a disk not online");
                        direct_fetch(&sh, &stripe, shard, off, len, false, &opts).await
                    }
                    other => other,
                }
            }
            other => other,
        };
        if let Ok(data) = &r {
            for b in rs..re {
                let from = ((b - rs) * BLOCK_SIZE) as usize;
                let to = (from + BLOCK_SIZE as usize).min(data.len());
                if from < to {
                    sh.cache
                        .insert((stripe.stripe_id, shard, b), data.slice(from..to));
                }
            }
            if let Some(dc) = sh.disk.get()
                && !from_disk.load(Ordering::Acquire)
            {
                dc.offer_run(stripe.stripe_id, shard, rs, data.clone());
            }
        }
        {
            let mut inf = sh.inflight.lock().expect("inflight lock");
            for b in rs..re {
                let key = (stripe.stripe_id, shard, b);
                if inf.get(&key).is_some_and(|x| x.id == id) {
                    inf.remove(&key);
                }
            }
        }
        let _ = tx.send(r);
    });
    run
}

/// Blocks `[rs, re)` of a shard (`len` bytes) from the disk tier, when it holds them all
/// (checked in memory first, so a miss costs no disk access).
async fn from_disk_tier(
    sh: &Shared,
    stripe: u64,
    shard: u32,
    rs: u64,
    re: u64,
    len: u64,
) -> Option<Bytes> {
    let dc = sh.disk.get()?.clone();
    if !dc.has_run(stripe, shard, rs, re) {
        return None;
    }
    tokio::task::spawn_blocking(move || dc.read_run(stripe, shard, rs, re, len as usize))
        .await
        .ok()
        .flatten()
}

/// True when the shard's disk is one a reader goes around (not online for the master).
fn avoided(stripe: &pb::StripeInfo, shard: u32) -> bool {
    location(stripe, shard).is_some_and(crate::read_order::read_around)
}

/// Where the master says a shard of the stripe lives.
fn location(stripe: &pb::StripeInfo, shard: u32) -> Option<&pb::ShardLocation> {
    stripe.shards.iter().find(|l| l.shard_index == shard)
}

/// Reads a shard range from the shard's own disk, within the shard deadline.
async fn direct_fetch(
    sh: &Shared,
    stripe: &pb::StripeInfo,
    shard: u32,
    off: u64,
    len: u64,
    skip_bad: bool,
    opts: &ReadOpts,
) -> Result<Bytes, ShardFault> {
    if opts.lost.contains(&shard) {
        return Err(ShardFault::Missing("simulated loss".into()));
    }
    let Some(loc) = location(stripe, shard) else {
        return Err(ShardFault::Missing(format!(
            "no location for shard {shard}"
        )));
    };
    if skip_bad && crate::read_order::read_around(loc) {
        return Err(ShardFault::Failed(format!(
            "disk {:016x} is not online for the master; reading around it",
            loc.disk_id
        )));
    }
    if skip_bad && sh.is_bad(&loc.node_addr) {
        return Err(ShardFault::Failed(format!(
            "node {} failed recently",
            loc.node_id
        )));
    }
    let r = tokio::time::timeout(
        sh.cfg.shard_deadline,
        sh.nodes.get_range(loc, stripe.stripe_id, off, len),
    )
    .await;
    match r {
        Err(_) => {
            sh.mark_bad(&loc.node_addr);
            Err(ShardFault::Slow)
        }
        Ok(Err(f @ ShardFault::Failed(_))) => {
            sh.mark_bad(&loc.node_addr);
            Err(f)
        }
        Ok(r) => r,
    }
}

/// Rebuilds `[off, off+len)` of data shard `target` from the same range of k other shards,
/// healthy nodes first, parity as needed.
fn degraded(
    sh: Arc<Shared>,
    stripe: Arc<pb::StripeInfo>,
    target: u32,
    off: u64,
    len: u64,
    opts: ReadOpts,
) -> BoxFuture<'static, Result<Bytes, ShardFault>> {
    async move {
        let (k, n) = (stripe.k as usize, (stripe.k + stripe.m) as usize);
        let codec = sh
            .codecs
            .get(stripe.k, stripe.m)
            .map_err(|e| ShardFault::Failed(e.to_string()))?;
        let node_of = |i: u32| location(&stripe, i).map(|l| l.node_addr.clone());
        let mut candidates: Vec<u32> = (0..n as u32)
            .filter(|i| *i != target && !opts.lost.contains(i))
            .collect();
        let rank_of = |i: u32| location(&stripe, i).map_or(u8::MAX, crate::read_order::rank);
        candidates.sort_by_key(|i| (rank_of(*i), node_of(*i).is_none_or(|a| sh.is_bad(&a)), *i));
        let mut candidates = candidates.into_iter();
        let (b0, b1) = block_span(BLOCK_SIZE, off, len);
        let skip = (off - b0 * BLOCK_SIZE) as usize;
        let fetch = |i: u32| {
            let f = get_blocks(sh.clone(), stripe.clone(), i, b0, b1, false, opts.clone());
            async move { (i, f.await) }
        };
        let mut running = FuturesUnordered::new();
        for i in candidates.by_ref().take(k) {
            running.push(fetch(i));
        }
        let mut ranges: Vec<Option<Vec<u8>>> = vec![None; n];
        let mut got = 0;
        let mut denied = None;
        while let Some((i, r)) = running.next().await {
            match r {
                Ok(blocks) => {
                    let mut v = Vec::with_capacity(len as usize);
                    for (j, b) in blocks.iter().enumerate() {
                        v.extend_from_slice(if j == 0 { &b[skip..] } else { b });
                    }
                    v.truncate(len as usize);
                    ranges[i as usize] = Some(v);
                    got += 1;
                    if got == k {
                        break;
                    }
                }
                Err(f) => {
                    if let ShardFault::Denied(_) = f {
                        denied = Some(f);
                    }
                    if let Some(next) = candidates.next() {
                        running.push(fetch(next));
                    }
                }
            }
        }
        if got < k {
            return Err(denied.unwrap_or(ShardFault::Unrecoverable {
                stripe_id: stripe.stripe_id,
                available: got,
                needed: k,
            }));
        }
        drop(running);
        let out = crate::ec::reconstruct(&codec, ranges)
            .map_err(|e| ShardFault::Failed(format!("reconstruct: {e}")))?;
        Ok(out.into_iter().nth(target as usize).unwrap_or_default())
    }
    .boxed()
}
