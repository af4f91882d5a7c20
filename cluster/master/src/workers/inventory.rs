//! The inventory half of the collector: shards a storage node holds that the stripe map
//! does not reference on that disk. They come from a writer that moved a shard to another
//! disk (`ReplaceShard`) after the first copy landed, a crash between a shard write and its
//! record, or a stray copy that outlived its stripe. Each pass asks every online node for
//! each disk's list of live shards, checks them against the replicated map
//! ([`kdss_meta::gc::unreferenced`]) and deletes a shard only once it stayed unreferenced
//! for `[gc] stale_writing_minutes` since this leader first saw it, checking once more
//! right before the delete. The first-seen times live in memory: a new leader starts the
//! clock again, which only delays a delete. On a namespace restored from a metadata backup,
//! strays of stripes the lost group wrote after the backup are counted apart
//! (`strays_after_backup`) and logged, so the operator sees what the backup missed.

use super::Progress;
use super::Throttle;
use super::gc::{Deleted, delete_shard};
use crate::service::State;
use kdss_common::ShardTarget;
use kdss_proto::storage::storage_client::StorageClient;
use kdss_proto::storage::{DiskState, ListShardsRequest, ShardKey, ShardOp};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Time a disk's inventory may take to stream.
const LIST_TIMEOUT: Duration = Duration::from_secs(120);
/// Shards checked against the map per read transaction.
const CHECK_BATCH: usize = 512;

/// A shard on one disk of one node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Stray {
    node: String,
    disk: u64,
    stripe: u64,
    shard: u32,
}

/// Unreferenced shards seen so far, with when this leader first saw each.
#[derive(Debug, Default)]
pub struct Inventory {
    first_seen: Mutex<HashMap<Stray, i64>>,
}

impl Inventory {
    /// One inventory pass over every online node's disks. `delay_ns` is how long a shard
    /// must stay unreferenced before it is deleted.
    pub async fn pass(
        &self,
        st: &State,
        throttle: &Throttle,
        delay_ns: i64,
        progress: &Progress,
    ) -> Result<(), String> {
        let now = kdss_common::time::now_ns();
        let point = crate::backup::restore_point(&st.pool())
            .await
            .map_err(|e| format!("read the restore point: {e}"))?;
        let mut seen: HashMap<Stray, i64> = HashMap::new();
        for node in st.registry.statuses().into_iter().filter(|n| n.online) {
            for disk in &node.disks {
                if disk.state == DiskState::Failed as i32 {
                    continue;
                }
                let listed = match list_disk(st, &node.grpc_addr, disk.disk_id).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(node = %node.node_id, disk = disk.disk_id, error = %e,
                            "gc inventory: listing failed; next pass retries");
                        progress.add("inventory_errors", 1);
                        continue;
                    }
                };
                progress.add("inventory_shards_listed", listed.len() as u64);
                for chunk in listed.chunks(CHECK_BATCH) {
                    let strays =
                        kdss_meta::gc::unreferenced(&st.pool(), &node.node_id, disk.disk_id, chunk)
                            .await
                            .map_err(|e| format!("check inventory against the stripe map: {e}"))?;
                    for (stripe, shard) in strays {
                        let k = Stray {
                            node: node.node_id.clone(),
                            disk: disk.disk_id,
                            stripe,
                            shard,
                        };
                        let first = self.first_seen(&k).unwrap_or(now);
                        seen.insert(k, first);
                    }
                }
            }
        }
        progress.add("strays_seen", seen.len() as u64);
        if let Some(p) = point {
            report_after_backup(&p, &seen, progress);
        }
        *self.first_seen.lock().expect("inventory lock") = seen.clone();
        for (k, first) in seen {
            if now.saturating_sub(first) < delay_ns {
                progress.add("strays_waiting", 1);
                continue;
            }
            // The map may have changed since the listing: ask once more.
            let still =
                kdss_meta::gc::unreferenced(&st.pool(), &k.node, k.disk, &[(k.stripe, k.shard)])
                    .await
                    .map_err(|e| format!("recheck a stray shard: {e}"))?;
            if still.is_empty() {
                continue;
            }
            let key = ShardKey {
                stripe_id: k.stripe,
                shard_index: k.shard,
            };
            match delete_shard(st, throttle, &k.node, k.disk, key).await {
                Deleted::Existed => {
                    tracing::info!(node = %k.node, disk = k.disk, stripe = k.stripe,
                        shard = k.shard, "gc inventory: deleted an unreferenced shard");
                    progress.add("strays_deleted", 1);
                    self.first_seen.lock().expect("inventory lock").remove(&k);
                }
                Deleted::Absent => {
                    self.first_seen.lock().expect("inventory lock").remove(&k);
                }
                Deleted::NodeAway | Deleted::Failed => progress.add("delete_errors", 1),
            }
        }
        Ok(())
    }

    fn first_seen(&self, k: &Stray) -> Option<i64> {
        self.first_seen
            .lock()
            .expect("inventory lock")
            .get(k)
            .copied()
    }
}

/// Counts and logs the strays of stripes written after the backup this namespace was
/// restored from: data of acknowledged writes that the restore could not bring back.
fn report_after_backup(
    p: &crate::backup::RestorePoint,
    seen: &HashMap<Stray, i64>,
    progress: &Progress,
) {
    let mut stripes: Vec<u64> = seen
        .keys()
        .map(|k| k.stripe)
        .filter(|&s| p.after_backup(s))
        .collect();
    stripes.sort_unstable();
    stripes.dedup();
    if stripes.is_empty() {
        return;
    }
    let shards = seen.keys().filter(|k| p.after_backup(k.stripe)).count();
    progress.add("strays_after_backup", shards as u64);
    tracing::warn!(
        stripes = stripes.len(),
        shards,
        first = stripes[0],
        last = stripes[stripes.len() - 1],
        backup_index = p.backup_index,
        backup_created_ms = p.backup_created_ms,
        "gc inventory: shards of stripes written after the metadata backup this namespace \
         was restored from; no entry references them (those writes were lost with the \
         masters) and they are deleted once unreferenced for stale_writing_minutes"
    );
}

/// Every live shard of one disk, as the node lists it.
async fn list_disk(st: &State, addr: &str, disk_id: u64) -> Result<Vec<(u64, u32)>, String> {
    let ch = st.channel(addr).map_err(|e| e.message().to_string())?;
    let target = ShardTarget {
        stripe_id: 0,
        shard_index: 0,
        disk_id,
    };
    let mut req = tonic::Request::new(ListShardsRequest {
        disk_id,
        cap: Some(st.capability(target, ShardOp::List, 0)),
    });
    req.set_timeout(LIST_TIMEOUT);
    let mut stream = StorageClient::new(ch)
        .list_shards(req)
        .await
        .map_err(|e| e.message().to_string())?
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|e| e.message().to_string())?
    {
        out.extend(chunk.shards.iter().map(|s| (s.stripe_id, s.shard_index)));
    }
    Ok(out)
}
