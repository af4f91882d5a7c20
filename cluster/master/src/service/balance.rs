//! The balance calls. `BalanceStatus` (`kdss-cli balance status`): how full each disk is,
//! the spread between the fullest and the emptiest against `[balance] threshold_pct`, and
//! the progress of a balance; any signed-in caller may ask, as for `ClusterStatus`.
//! `BalanceStart` and `BalanceStop` (operators and admins) write replicated settings, so a
//! new leader carries on with what was asked.

use super::MasterService;
use crate::auth::Caller;
use crate::health::job::refresh;
use crate::workers::balance::{self, BANDWIDTH_SETTING, REQUESTED_SETTING, usage};
use kdss_common::rpc_error::{self, errno};
use kdss_proto::master as pb;
use tonic::{Code, Request, Response, Status};

fn internal(e: String) -> Status {
    rpc_error::status(Code::Unavailable, errno::EIO, "ServiceUnavailable", e)
}

impl MasterService {
    pub(crate) async fn balance_status_checked(
        &self,
        req: Request<pb::BalanceStatusRequest>,
    ) -> Result<Response<pb::BalanceStatusReply>, Status> {
        self.st.caller(req.metadata()).await?;
        Ok(Response::new(self.balance_status().await?))
    }

    pub(crate) async fn balance_start_checked(
        &self,
        req: Request<pb::BalanceStartRequest>,
    ) -> Result<Response<pb::BalanceStatusReply>, Status> {
        let caller = self.operator(req.metadata()).await?;
        let r = req.into_inner();
        let bw = if r.set_bandwidth {
            r.max_bandwidth.to_string()
        } else {
            String::new()
        };
        balance::set(&self.st, &caller, BANDWIDTH_SETTING, &bw)
            .await
            .map_err(internal)?;
        balance::set(&self.st, &caller, REQUESTED_SETTING, "1")
            .await
            .map_err(internal)?;
        let bytes_per_sec = balance::bandwidth(&self.st, &self.st.balance).await;
        self.st
            .jobs
            .balance_state
            .moves
            .set_bandwidth(bytes_per_sec);
        self.st.jobs.balance.run_now();
        tracing::warn!(bytes_per_sec, by = %caller.access_key, "balance started");
        Ok(Response::new(self.balance_status().await?))
    }

    pub(crate) async fn balance_stop_checked(
        &self,
        req: Request<pb::BalanceStopRequest>,
    ) -> Result<Response<pb::BalanceStatusReply>, Status> {
        let caller = self.operator(req.metadata()).await?;
        stop(&self.st, &caller).await.map_err(internal)?;
        tracing::warn!(by = %caller.access_key, "balance stopped");
        Ok(Response::new(self.balance_status().await?))
    }

    async fn balance_status(&self) -> Result<pb::BalanceStatusReply, Status> {
        refresh(&self.st).await?;
        let reg = &self.st.registry;
        let disks = usage::disks(&reg.reports(), |id| reg.disk_status(id));
        let moves = self.st.jobs.balance_state.moves.status();
        let mut job = self.st.jobs.balance.status();
        job.name = "balance".into();
        let running = balance::requested(&self.st).await;
        let max_bandwidth = balance::bandwidth(&self.st, &self.st.balance).await;
        Ok(pb::BalanceStatusReply {
            imbalance_pct: usage::imbalance(&disks),
            disks,
            threshold_pct: self.st.balance.threshold_pct,
            max_bandwidth,
            running,
            state: self.st.jobs.balance_state.phase().to_string(),
            queued_shards: moves.queued_shards,
            queued_bytes: moves.queued_bytes,
            running_shards: moves.running_shards,
            done_shards: moves.done_shards,
            done_bytes: moves.done_bytes,
            failed_shards: moves.failed_shards,
            rate_bytes_per_sec: moves.rate_bytes_per_sec,
            eta_sec: moves.eta_sec,
            job: Some(job),
        })
    }
}

/// Ends a balance: the request goes, moves not yet started are skipped.
async fn stop(st: &crate::service::State, caller: &Caller) -> Result<(), String> {
    balance::set(st, caller, REQUESTED_SETTING, "").await?;
    st.jobs.balance_state.stopped();
    Ok(())
}
