//! Scheduled backups: a leader-only [`Job`] that writes a backup file into `[backup] dir`
//! every `interval` and deletes the oldest beyond `keep`. Each master writes to its own
//! disk while it leads, so after a leader change the newest files are on the new leader.

use super::BackupSection;
use super::file::{prune, scheduled_name, take};
use crate::service::State;
use crate::workers::{Job, JobHandle, Progress};
use std::sync::Arc;
use std::time::Duration;

/// What the service needs to answer backup calls: the cluster id the headers name and
/// the scheduled backups' settings and status.
#[derive(Debug, Default)]
pub struct Backups {
    /// `[cluster] id`.
    pub cluster_id: String,
    /// `[backup]`, when scheduled backups are on.
    pub schedule: Option<BackupSection>,
    /// The scheduled job's status.
    pub handle: Arc<JobHandle>,
}

/// The scheduled backup job.
pub struct BackupJob {
    cfg: BackupSection,
}

impl BackupJob {
    /// A job with these settings.
    pub fn new(cfg: BackupSection) -> Self {
        BackupJob { cfg }
    }
}

impl Job for BackupJob {
    fn name(&self) -> &'static str {
        "backup"
    }

    fn interval(&self) -> Duration {
        self.cfg.interval
    }

    async fn pass(&self, st: Arc<State>, progress: Arc<Progress>) -> Result<(), String> {
        // Only a confirmed leader that applied what its predecessors committed backs up, so
        // that the backup holds every acknowledged write.
        st.read_barrier()
            .await
            .map_err(|e| e.message().to_string())?;
        let dir = self.cfg.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let taken = take(&st.sm, &st.backups.cluster_id)
            .await
            .map_err(|e| e.to_string())?;
        let dest = dir.join(scheduled_name(&taken.header));
        let keep = self.cfg.keep as usize;
        let index = taken.header.applied_index;
        let (size, gone) = tokio::task::spawn_blocking(move || {
            let size = taken.write_to(&dest)?;
            Ok::<_, super::BackupError>((size, prune(&dir, keep)?))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        tracing::info!(
            index,
            size,
            deleted = gone.len(),
            "scheduled metadata backup written"
        );
        progress.add("backups_written", 1);
        progress.add("backup_bytes", size);
        progress.add("backups_deleted", gone.len() as u64);
        Ok(())
    }
}
