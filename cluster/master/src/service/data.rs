//! The data-path calls: stripe allocation (placement, invariant 3) and shard replacement with
//! WRITE capabilities, extent and object reads with READ capabilities (invariant 6), statfs.

use super::{MasterService, unexpected};
use crate::meta_api as meta;
use crate::placement::{Need, PlacementError, place_replacement, place_shards, with_suspect};
use kdss_common::ShardTarget;
use kdss_common::rpc_error::{self, errno};
use kdss_proto::master as pb;
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use kdss_proto::storage::ShardOp;
use std::time::Instant;
use tonic::{Code, Request, Response, Status};

type R<T> = Result<Response<T>, Status>;

/// Block size reported by statfs.
const BLOCK_SIZE: u64 = 4096;

fn placement_status(e: PlacementError) -> Status {
    rpc_error::status(
        Code::ResourceExhausted,
        errno::ENOSPC,
        "InsufficientCapacity",
        e.to_string(),
    )
}

impl MasterService {
    /// Fills node addresses and capabilities for `op` into every shard of `stripes`: each
    /// capability names the shard's disk and the stripe's shard length.
    pub(crate) fn grant(&self, stripes: &mut [pb::StripeInfo], op: ShardOp) {
        for s in stripes {
            for sh in &mut s.shards {
                self.locate(s.stripe_id, s.shard_len, sh, op);
            }
        }
    }

    /// Fills the node address, disk status and a capability for `op` into one location.
    fn locate(&self, stripe_id: u64, shard_len: u64, sh: &mut pb::ShardLocation, op: ShardOp) {
        sh.node_addr = self.st.registry.addr_of(&sh.node_id).unwrap_or_default();
        sh.disk_status = self.st.registry.disk_status(sh.disk_id) as i32;
        let target = ShardTarget {
            stripe_id,
            shard_index: sh.shard_index,
            disk_id: sh.disk_id,
        };
        sh.cap = Some(self.st.capability(target, op, shard_len));
    }

    fn check_capacity(&self) -> Result<(), Status> {
        let c = self.st.registry.capacity();
        if let Some(pct) = c.used_pct() {
            if pct >= u64::from(self.st.reject_pct) {
                return Err(rpc_error::status(
                    Code::ResourceExhausted,
                    errno::ENOSPC,
                    "InsufficientCapacity",
                    format!(
                        "cluster is {pct}% full (writes are refused from {}%)",
                        self.st.reject_pct
                    ),
                ));
            }
            if pct >= u64::from(self.st.alert_pct) {
                tracing::warn!(pct, alert_pct = self.st.alert_pct, "cluster capacity alert");
            }
        }
        Ok(())
    }

    pub(crate) async fn allocate(
        &self,
        req: Request<pb::AllocateStripeRequest>,
    ) -> R<pb::AllocateStripeReply> {
        let t = Instant::now();
        let caller = self.st.caller(req.metadata()).await?;
        let r = req.into_inner();
        self.st.check_bucket(&caller, &r.bucket, true).await?;
        let b = meta::get_bucket(&self.st.pool(), &r.bucket).await?;
        if r.shard_len == 0 || r.data_len > r.shard_len.saturating_mul(u64::from(b.k)) {
            return Err(rpc_error::status(
                Code::InvalidArgument,
                errno::EINVAL,
                "InvalidArgument",
                format!(
                    "data_len {} does not fit k={} shards of {}",
                    r.data_len, b.k, r.shard_len
                ),
            ));
        }
        self.check_capacity()?;
        let width = (b.k + b.m) as usize;
        let need = Need {
            shards: width,
            m: b.m as usize,
            shard_len: r.shard_len,
            existing: &[],
            exclude: &[],
        };
        let healthy = self.st.registry.writable_disks();
        let suspect = self.st.registry.suspect_disks();
        let placed = with_suspect(&healthy, &suspect, &need, |c| {
            place_shards(c, &need, &mut rand::rng())
        })
        .map_err(placement_status)?;
        let shards = placed
            .iter()
            .enumerate()
            .map(|(i, d)| pb::ShardLocation {
                shard_index: i as u32,
                node_id: d.node_id.clone(),
                disk_id: d.disk_id,
                ..Default::default()
            })
            .collect();
        let op = pb::CreateStripeOp {
            bucket: r.bucket,
            k: b.k,
            m: b.m,
            shard_len: r.shard_len,
            data_len: r.data_len,
            shards,
        };
        let out = self.st.propose(&caller, Op::CreateStripe(op)).await;
        self.st.metrics.observe("allocate_stripe", t);
        let mut stripe = match out? {
            Reply::Stripe(s) => s,
            other => return Err(unexpected(other)),
        };
        self.grant(std::slice::from_mut(&mut stripe), ShardOp::Write);
        Ok(Response::new(pb::AllocateStripeReply {
            stripe: Some(stripe),
        }))
    }

    /// ReplaceShard: a writer moves a shard of a stripe it is still writing off a target
    /// that failed. Committed stripes are refused (see `kdss_meta::data::check_replaceable`).
    pub(crate) async fn replace(
        &self,
        req: Request<pb::ReplaceShardRequest>,
    ) -> R<pb::ReplaceShardReply> {
        let caller = self.st.caller(req.metadata()).await?;
        let r = req.into_inner();
        self.st.check_bucket(&caller, &r.bucket, true).await?;
        let stripe = meta::stripe_info(&self.st.pool(), &r.bucket, r.stripe_id).await?;
        // Refused before placing anything; apply checks again, atomically with the move.
        meta::check_replaceable(&self.st.pool(), r.stripe_id, &caller).await?;
        let existing = self.st.registry.locate(
            stripe
                .shards
                .iter()
                .filter(|s| s.shard_index != r.shard_index)
                .map(|s| (s.node_id.as_str(), s.disk_id)),
        );
        let mut exclude = vec![r.failed_disk_id];
        let cur = stripe
            .shards
            .iter()
            .find(|s| s.shard_index == r.shard_index);
        if let Some(cur) = cur {
            exclude.push(cur.disk_id);
        }
        let failed_node = cur.map(|c| c.node_id.as_str()).unwrap_or_default();
        let need = Need {
            shards: 1,
            m: stripe.m as usize,
            shard_len: stripe.shard_len,
            existing: &existing,
            exclude: &exclude,
        };
        let healthy = self.st.registry.writable_disks();
        let suspect = self.st.registry.suspect_disks();
        let placed = with_suspect(&healthy, &suspect, &need, |c| {
            place_replacement(c, &need, failed_node, &mut rand::rng())
        })
        .map_err(placement_status)?;
        let op = pb::ReplaceShardOp {
            stripe_id: r.stripe_id,
            shard_index: r.shard_index,
            node_id: placed.node_id,
            disk_id: placed.disk_id,
        };
        let mut loc = match self.st.propose(&caller, Op::ReplaceShard(op)).await? {
            Reply::Location(l) => l,
            other => return Err(unexpected(other)),
        };
        self.locate(r.stripe_id, stripe.shard_len, &mut loc, ShardOp::Write);
        Ok(Response::new(pb::ReplaceShardReply {
            location: Some(loc),
        }))
    }

    pub(crate) async fn extents(
        &self,
        req: Request<pb::GetExtentsRequest>,
    ) -> R<pb::GetExtentsReply> {
        let t = Instant::now();
        let caller = self.st.caller(req.metadata()).await?;
        let r = req.into_inner();
        self.st.check_bucket(&caller, &r.bucket, false).await?;
        let mut out = meta::get_extents(&self.st.pool(), &r).await?;
        self.grant(&mut out.stripes, ShardOp::Read);
        self.st.metrics.observe("get_extents", t);
        Ok(Response::new(out))
    }

    pub(crate) async fn head(&self, req: Request<pb::HeadObjectRequest>) -> R<pb::HeadObjectReply> {
        let t = Instant::now();
        let caller = self.st.caller(req.metadata()).await?;
        let r = req.into_inner();
        self.st.check_bucket(&caller, &r.bucket, false).await?;
        let mut out = meta::head_object(&self.st.pool(), &r).await?;
        self.grant(&mut out.stripes, ShardOp::Read);
        self.st.metrics.observe("head_object", t);
        Ok(Response::new(out))
    }

    /// Usable bytes = free raw bytes of writable disks × k/(k+m) of the bucket.
    pub(crate) async fn statfs(&self, req: Request<pb::StatFsRequest>) -> R<pb::StatFsReply> {
        let caller = self.st.caller(req.metadata()).await?;
        let r = req.into_inner();
        self.st.check_bucket(&caller, &r.bucket, false).await?;
        let pool = self.st.pool();
        let b = meta::get_bucket(&pool, &r.bucket).await?;
        let files = meta::file_count(&pool, &r.bucket).await?;
        let c = self.st.registry.capacity();
        let eff = |raw: u64| (raw as u128 * b.k as u128 / (b.k + b.m).max(1) as u128) as u64;
        let blocks = eff(c.capacity) / BLOCK_SIZE;
        let free = (eff(c.free_writable) / BLOCK_SIZE).min(blocks);
        Ok(Response::new(pb::StatFsReply {
            block_size: BLOCK_SIZE,
            blocks,
            blocks_free: free,
            blocks_avail: free,
            files,
            files_free: u64::from(u32::MAX).saturating_sub(files),
            name_max: 255,
        }))
    }
}
