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
    },
}

/// Runs a `kdss master` action.
pub async fn run(action: MasterAction) -> anyhow::Result<()> {
    let MasterAction::Restore { config, from } = action;
    let cfg = kdss_master::config::MasterConfig::load(&config)?;
    let r = kdss_master::backup::restore(&cfg, &from)
        .await
        .context("restore refused")?;
    let h = &r.header;
    let members: Vec<String> = r
        .members
        .iter()
        .map(|(id, addr)| format!("{id} ({addr})"))
        .collect();
    println!(
        "restored {} into {}\n\
         backup: cluster {}, Raft index {} (term {}), taken at {} ms since the epoch\n\
         new master group: {}; it starts from index {} at term 0\n\
         writes acknowledged after the backup are not in the namespace: objects and files \
         created after it are gone, deleted ones are back, overwritten ones have their old \
         content (if its shards were not collected yet).\n\
         their shards are orphans on the storage nodes (stripe ids {} and up); the collector's \
         inventory deletes them once they stayed unreferenced for [gc] stale_writing_minutes.\n\
         new stripes start at id {}.\n\
         next: start this master (other masters of the group with empty data directories), \
         then the storage nodes; they re-attach with their next heartbeat.",
        from.display(),
        r.data_dir.display(),
        h.cluster_id,
        h.applied_index,
        h.applied_term,
        h.created_ms,
        members.join(", "),
        h.applied_index,
        r.last_stripe_id + 1,
        r.next_stripe_id,
    );
    Ok(())
}
