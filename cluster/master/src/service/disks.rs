//! The disk-state calls (`kdss-cli disk list|offline|online|drain`): operators and admins
//! only. Listing joins the nodes' last reports with the replicated states; a change is one
//! `SetDiskStateOp` marked as the operator's, which the automatic health pass never undoes.

use super::{MasterService, unexpected};
use crate::health::job::refresh;
use crate::meta_api::DiskStateRow;
use kdss_common::rpc_error::{self, errno};
use kdss_proto::master as pb;
use kdss_proto::master::DiskStatus;
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use tonic::{Code, Request, Response, Status};

type R<T> = Result<Response<T>, Status>;

fn entry(
    node_id: &str,
    online: bool,
    age_ms: i64,
    info: Option<kdss_proto::storage::DiskInfo>,
    row: Option<&DiskStateRow>,
) -> pb::DiskEntry {
    pb::DiskEntry {
        node_id: node_id.to_string(),
        node_online: online,
        heartbeat_age_ms: age_ms,
        info,
        status: row.map_or(DiskStatus::Online, |r| r.status) as i32,
        reason: row.map(|r| r.reason.clone()).unwrap_or_default(),
        since_ns: row.map_or(0, |r| r.since_ns),
        set_by: match row {
            Some(r) if r.by_operator => "operator".into(),
            Some(_) => "auto".into(),
            None => String::new(),
        },
        mapped_shards: 0,
    }
}

impl MasterService {
    /// Every disk: those the nodes report, then state rows of disks no node reports now.
    fn disk_entries(&self) -> Vec<pb::DiskEntry> {
        let rows = self.st.registry.state_rows();
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for n in self.st.registry.reports() {
            for d in &n.disks {
                seen.insert(d.disk_id);
                out.push(entry(
                    &n.node_id,
                    n.online,
                    n.age.as_millis() as i64,
                    Some(d.clone()),
                    rows.get(&d.disk_id),
                ));
            }
        }
        for r in rows.values().filter(|r| !seen.contains(&r.disk_id)) {
            let mut e = entry(&r.node_id, false, -1, None, Some(r));
            e.info = Some(kdss_proto::storage::DiskInfo {
                disk_id: r.disk_id,
                ..Default::default()
            });
            out.push(e);
        }
        out
    }

    pub(crate) async fn list_disks_checked(
        &self,
        req: Request<pb::ListDisksRequest>,
    ) -> R<pb::ListDisksReply> {
        self.operator(req.metadata()).await?;
        refresh(&self.st).await?;
        let mapped: std::collections::BTreeMap<u64, u64> =
            kdss_meta::repair::shards_per_disk(&self.st.pool())
                .await
                .map_err(Status::from)?
                .into_iter()
                .collect();
        let mut disks = self.disk_entries();
        for d in &mut disks {
            let id = d.info.as_ref().map_or(0, |i| i.disk_id);
            d.mapped_shards = mapped.get(&id).copied().unwrap_or(0);
        }
        Ok(Response::new(pb::ListDisksReply { disks }))
    }

    pub(crate) async fn set_disk_state_checked(
        &self,
        req: Request<pb::SetDiskStateRequest>,
    ) -> R<pb::DiskEntry> {
        let caller = self.operator(req.metadata()).await?;
        let r = req.into_inner();
        refresh(&self.st).await?;
        let Some(found) = self
            .disk_entries()
            .into_iter()
            .find(|e| e.info.as_ref().is_some_and(|d| d.disk_id == r.disk_id))
        else {
            return Err(rpc_error::status(
                Code::NotFound,
                errno::ENOENT,
                "NoSuchDisk",
                format!(
                    "no node reports disk {:016x} (see kdss-cli disk list)",
                    r.disk_id
                ),
            ));
        };
        let op = pb::SetDiskStateOp {
            node_id: found.node_id,
            disk_id: r.disk_id,
            status: r.status,
            reason: r.reason,
            by_operator: true,
        };
        match self
            .st
            .propose(&caller, Op::SetDiskState(op.clone()))
            .await?
        {
            Reply::Empty(_) => {}
            other => return Err(unexpected(other)),
        }
        crate::events::disk_state(&self.st, &op, &format!("operator {}", caller.access_key));
        refresh(&self.st).await?;
        // Offline and draining disks have shards to rebuild or move: start now.
        self.st.jobs.repair_now();
        tracing::warn!(
            disk = format!("{:016x}", r.disk_id),
            status = crate::health::status_name(DiskStatus::try_from(r.status).unwrap_or_default()),
            by = %caller.access_key,
            "disk state set by an operator"
        );
        self.disk_entries()
            .into_iter()
            .find(|e| e.info.as_ref().is_some_and(|d| d.disk_id == r.disk_id))
            .map(Response::new)
            .ok_or_else(|| Status::internal("disk vanished while its state was set"))
    }
}
