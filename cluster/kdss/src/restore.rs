//! `kdss master restore -c master.toml --from FILE`: writes a metadata backup into this
//! master's (empty) data directory as the start of a new master group, then says what the
//! operator should know: how far the backup goes, and what happens to writes made after it.

use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;

/// What `kdss master` can do besides running.
#[derive(Subcommand)]
pub enum MasterAction {
    /// Restore a metadata backup (`kdss-cli meta backup`, or a scheduled one) into this
    /// master's empty data directory; start the masters afterwards as usual.
    Restore {
        /// Path of master.toml (its [cluster] id must match the backup's).
        #[arg(short, long)]
        config: PathBuf,
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// Restore a backup whose cluster id differs from the config's (only when the
        /// storage nodes really hold that cluster's shards, e.g. after renaming it).
        #[arg(long)]
        allow_other_cluster: bool,
    },
}

/// Runs a `kdss master` action.
pub async fn run(action: MasterAction) -> anyhow::Result<()> {
    let MasterAction::Restore {
        config,
        from,
        allow_other_cluster,
    } = action;
    let cfg = kdss_master::config::MasterConfig::load(&config)?;
    let r = kdss_master::backup::restore(&cfg, &from, allow_other_cluster)
        .await
        .context("restore refused")?;
    let h = &r.header;
    if h.cluster_id != cfg.cluster.id {
        eprintln!(
            "warning: restored a backup of cluster {:?} into cluster {:?} (--allow-other-cluster)",
            h.cluster_id, cfg.cluster.id
        );
    }
    let members: Vec<String> = r
        .members
        .iter()
        .map(|(id, addr)| format!("{id} ({addr})"))
        .collect();
    let p = &r.point;
    println!(
        "restored {} into {}\n\
         backup: cluster {}, Raft index {} (term {}), taken at {} ms since the epoch\n\
         new master group: {}; it starts from index {} at term 0\n\
         lost: every write acknowledged after the backup. Objects and files created after it \
         are gone, deleted ones are back (readable if their shards were not collected yet), \
         overwritten ones have their old content.\n\
         orphans: shards of stripes written after the backup (stripe ids {} to {}) stay on the \
         storage nodes; the collector's inventory reports them and deletes them once they \
         stayed unreferenced for [gc] stale_writing_minutes. New stripes start at id {}.\n\
         next: restore every other master of the group the same way, start the masters, then \
         the storage nodes (they re-attach with their next heartbeat); remount ksfs clients.",
        from.display(),
        r.data_dir.display(),
        h.cluster_id,
        h.applied_index,
        h.applied_term,
        h.created_ms,
        members.join(", "),
        h.applied_index,
        p.last_stripe_id + 1,
        p.next_stripe_id - 1,
        p.next_stripe_id,
    );
    Ok(())
}
