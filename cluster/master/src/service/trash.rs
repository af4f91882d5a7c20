//! The recycle-bin and GC calls (`kdss-cli trash ...`, `kdss-cli gc ...`): operators and
//! admins only. Listing and status read the leader's database; restore and purge are
//! mutations; purge and `GcRun` trigger a collector pass at once.

use super::{MasterService, unexpected};
use crate::auth::{Caller, denied};
use crate::workers::gc::retention_ns;
use kdss_proto::master as pb;
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use std::time::Duration;
use tonic::{Request, Response, Status};

type R<T> = Result<Response<T>, Status>;

/// How long `GcRun { wait: true }` waits for the pass.
const RUN_WAIT: Duration = Duration::from_secs(120);

impl MasterService {
    /// The caller, if an operator or admin.
    pub(crate) async fn operator(
        &self,
        md: &tonic::metadata::MetadataMap,
    ) -> Result<Caller, Status> {
        let caller = self.st.caller(md).await?;
        if !caller.may_operate() {
            return Err(denied(format!(
                "{} may not run cluster operations (recycle bin, GC, disks, repair, balance): operator or admin only",
                caller.access_key
            )));
        }
        Ok(caller)
    }

    pub(crate) async fn list_trash_checked(
        &self,
        req: Request<pb::ListTrashRequest>,
    ) -> R<pb::ListTrashReply> {
        self.operator(req.metadata()).await?;
        let cfg = &self.st.jobs.gc_config;
        let mut out = kdss_meta::trash::list(&self.st.pool(), req.get_ref(), retention_ns(cfg))
            .await
            .map_err(Status::from)?;
        out.retention_hours = cfg.auto_gc_pending_hours;
        Ok(Response::new(out))
    }

    pub(crate) async fn restore_trash_checked(
        &self,
        req: Request<pb::RestoreTrashRequest>,
    ) -> R<pb::RestoreTrashReply> {
        let caller = self.operator(req.metadata()).await?;
        match self
            .st
            .propose(&caller, Op::RestoreTrash(req.into_inner()))
            .await?
        {
            Reply::RestoreTrash(r) => Ok(Response::new(r)),
            other => Err(unexpected(other)),
        }
    }

    pub(crate) async fn purge_trash_checked(
        &self,
        req: Request<pb::PurgeTrashRequest>,
    ) -> R<pb::PurgeTrashReply> {
        let caller = self.operator(req.metadata()).await?;
        let out = match self
            .st
            .propose(&caller, Op::PurgeTrash(req.into_inner()))
            .await?
        {
            Reply::PurgeTrash(r) => r,
            other => return Err(unexpected(other)),
        };
        self.st.jobs.gc.run_now();
        Ok(Response::new(out))
    }

    pub(crate) async fn gc_status_checked(
        &self,
        req: Request<pb::GcStatusRequest>,
    ) -> R<pb::GcStatusReply> {
        self.operator(req.metadata()).await?;
        self.gc_status().await.map(Response::new)
    }

    pub(crate) async fn gc_run_checked(
        &self,
        req: Request<pb::GcRunRequest>,
    ) -> R<pb::GcStatusReply> {
        self.operator(req.metadata()).await?;
        if req.get_ref().wait {
            if !self.st.jobs.gc.run_and_wait(RUN_WAIT).await {
                return Err(Status::deadline_exceeded(format!(
                    "the GC pass did not finish within {}s (still running, or leadership moved)",
                    RUN_WAIT.as_secs()
                )));
            }
        } else {
            self.st.jobs.gc.run_now();
        }
        self.gc_status().await.map(Response::new)
    }

    async fn gc_status(&self) -> Result<pb::GcStatusReply, Status> {
        let pool = self.st.pool();
        let p = kdss_meta::gc::pending(&pool).await.map_err(Status::from)?;
        let (items, bytes) = kdss_meta::trash::totals(&pool)
            .await
            .map_err(Status::from)?;
        let mut job = self.st.jobs.gc.status();
        job.name = "gc".to_string();
        Ok(pb::GcStatusReply {
            pending_stripes: p.stripes,
            pending_bytes: p.bytes,
            pending_shards: p.shards,
            trash_items: items,
            trash_bytes: bytes,
            stale_writing_stripes: p.writing,
            job: Some(job),
        })
    }
}
