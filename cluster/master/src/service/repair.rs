//! The repair calls (`kdss-cli repair status|run|throttle`): operators and admins only.
//! The queue and progress come from the leader's repair job; the throttle is a replicated
//! setting, so a new leader keeps what the operator set.

use super::{MasterService, unexpected};
use crate::workers::repair::config::parse_bandwidth;
use crate::workers::repair::{BANDWIDTH_SETTING, bandwidth};
use kdss_common::rpc_error::{self, errno};
use kdss_proto::master as pb;
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use std::time::Duration;
use tonic::{Code, Request, Response, Status};

type R<T> = Result<Response<T>, Status>;

/// How long `repair run --wait` holds the call for one pass.
const RUN_WAIT: Duration = Duration::from_secs(120);

impl MasterService {
    pub(crate) async fn repair_status_checked(
        &self,
        req: Request<pb::RepairStatusRequest>,
    ) -> R<pb::RepairStatusReply> {
        self.operator(req.metadata()).await?;
        Ok(Response::new(self.repair_status()))
    }

    pub(crate) async fn repair_run_checked(
        &self,
        req: Request<pb::GcRunRequest>,
    ) -> R<pb::RepairStatusReply> {
        self.operator(req.metadata()).await?;
        let job = &self.st.jobs.repair;
        if req.get_ref().wait {
            if !job.run_and_wait(RUN_WAIT).await {
                return Err(Status::deadline_exceeded(format!(
                    "the repair pass did not finish within {}s (still running, or leadership \
                     moved); follow it with kdss-cli repair status",
                    RUN_WAIT.as_secs()
                )));
            }
        } else {
            job.run_now();
        }
        Ok(Response::new(self.repair_status()))
    }

    pub(crate) async fn repair_throttle_checked(
        &self,
        req: Request<pb::RepairThrottleRequest>,
    ) -> R<pb::RepairStatusReply> {
        let caller = self.operator(req.metadata()).await?;
        let r = req.into_inner();
        let value = if r.reset {
            String::new()
        } else {
            r.max_bandwidth.to_string()
        };
        if !r.reset && parse_bandwidth(&value).is_err() {
            return Err(rpc_error::status(
                Code::InvalidArgument,
                errno::EINVAL,
                "InvalidArgument",
                format!("bad bandwidth {value}"),
            ));
        }
        let op = pb::SetSettingOp {
            key: BANDWIDTH_SETTING.into(),
            value,
        };
        match self.st.propose(&caller, Op::SetSetting(op)).await? {
            Reply::Empty(_) => {}
            other => return Err(unexpected(other)),
        }
        let bw = bandwidth(&self.st, &self.st.jobs.repair_config).await;
        self.st.jobs.repair_state.set_bandwidth(bw);
        tracing::warn!(bytes_per_sec = bw, by = %caller.access_key, "repair bandwidth set");
        Ok(Response::new(self.repair_status()))
    }

    fn repair_status(&self) -> pb::RepairStatusReply {
        let s = self.st.jobs.repair_state.status();
        let mut job = self.st.jobs.repair.status();
        job.name = "repair".into();
        pb::RepairStatusReply {
            queued_stripes: s.queued_stripes,
            queued_shards: s.queued_shards,
            queued_bytes: s.queued_bytes,
            queued_by_missing: s.queued_by_missing,
            running_shards: s.running_shards,
            done_shards: s.done_shards,
            done_bytes: s.done_bytes,
            failed_shards: s.failed_shards,
            unrepairable_stripes: s.unrepairable_stripes,
            rate_bytes_per_sec: s.rate_bytes_per_sec,
            eta_sec: s.eta_sec,
            max_bandwidth: s.max_bandwidth,
            job: Some(job),
        }
    }
}
