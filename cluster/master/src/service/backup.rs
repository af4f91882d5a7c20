//! The metadata backup calls (`kdss-cli meta backup`, `kdss-cli meta backups`): admins
//! only, answered by the leader itself (a follower's copy could lag behind acknowledged
//! writes, and a stream is not worth proxying: the client follows the leader hint).

use super::MasterService;
use crate::auth::denied;
use crate::backup::file::{CHUNK, list, take};
use kdss_proto::master as pb;
use std::pin::Pin;
use tokio::io::AsyncReadExt;
use tonic::{Request, Response, Status};

/// The stream of a backup file's bytes.
pub type BackupStream =
    Pin<Box<dyn futures::Stream<Item = Result<pb::MetaBackupChunk, Status>> + Send>>;

impl MasterService {
    /// Refuses unless the caller is an admin and this member is the caught-up leader.
    async fn backup_admin<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let caller = self.st.caller(req.metadata()).await?;
        if !caller.is_admin() {
            return Err(denied(format!(
                "{} may not read metadata backups: they hold every user's keys; admin only",
                caller.access_key
            )));
        }
        if self.st.route(req).await?.is_some() {
            return Err(super::no_leader(self.st.leader().1.as_deref()));
        }
        Ok(())
    }

    pub(crate) async fn meta_backup_checked(
        &self,
        req: Request<pb::MetaBackupRequest>,
    ) -> Result<Response<BackupStream>, Status> {
        self.backup_admin(&req).await?;
        let taken = take(&self.st.sm, &self.st.backups.cluster_id)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let header = taken
            .header
            .encode()
            .map_err(|e| Status::internal(e.to_string()))?;
        let mut body = tokio::fs::File::open(&taken.body)
            .await
            .map_err(|e| Status::internal(format!("open the staged copy: {e}")))?;
        tracing::info!(
            index = taken.header.applied_index,
            size = taken.header.body_len,
            "streaming a metadata backup"
        );
        let stream = async_stream::try_stream! {
            // Keeps the staged copy until the stream ends (or the client goes away).
            let _taken = taken;
            yield pb::MetaBackupChunk { data: header };
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = body
                    .read(&mut buf)
                    .await
                    .map_err(|e| Status::internal(format!("read the staged copy: {e}")))?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                yield pb::MetaBackupChunk { data: buf };
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }

    pub(crate) async fn list_meta_backups_checked(
        &self,
        req: Request<pb::ListMetaBackupsRequest>,
    ) -> Result<Response<pb::ListMetaBackupsReply>, Status> {
        self.backup_admin(&req).await?;
        let mut out = pb::ListMetaBackupsReply {
            leader_id: self.st.id,
            ..Default::default()
        };
        let Some(s) = &self.st.backups.schedule else {
            return Ok(Response::new(out));
        };
        out.dir = s.dir.display().to_string();
        out.interval_sec = s.interval.as_secs();
        out.keep = s.keep;
        let mut job = self.st.backups.handle.status();
        job.name = "backup".into();
        out.job = Some(job);
        let dir = s.dir.clone();
        let files = tokio::task::spawn_blocking(move || list(&dir))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(e.to_string()))?;
        out.backups = files
            .into_iter()
            .map(|f| match f.header {
                Ok(h) => pb::MetaBackupEntry {
                    name: f.name,
                    created_ms: h.created_ms,
                    applied_index: h.applied_index,
                    applied_term: h.applied_term,
                    size_bytes: f.size,
                    error: String::new(),
                },
                Err(e) => pb::MetaBackupEntry {
                    name: f.name,
                    size_bytes: f.size,
                    error: e,
                    ..Default::default()
                },
            })
            .collect();
        Ok(Response::new(out))
    }
}
