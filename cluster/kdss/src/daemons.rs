//! `kdss master | storage | s3gw -c FILE`: load the config (errors name file, line and
//! key), run the daemon until SIGINT/SIGTERM.

use anyhow::Context;
use std::path::Path;

/// Runs a master until a shutdown signal.
pub async fn master(config: &Path) -> anyhow::Result<()> {
    let cfg = kdss_master::config::MasterConfig::load(config)?;
    kdss_master::run(cfg, crate::signals::shutdown())
        .await
        .context("master failed")
}

/// Runs a storage node until a shutdown signal.
pub async fn storage(config: &Path) -> anyhow::Result<()> {
    let cfg = kdss_storage::config::StorageConfig::load(config)?;
    kdss_storage::run(cfg, crate::signals::shutdown())
        .await
        .context("storage node failed")
}

/// Runs an S3 gateway until a shutdown signal.
pub async fn s3gw(config: &Path) -> anyhow::Result<()> {
    let cfg = kdss_s3gw::config::S3Config::load(config)?;
    kdss_s3gw::run(cfg, crate::signals::shutdown())
        .await
        .context("S3 gateway failed")
}

/// Mounts a bucket with ksfs until SIGINT/SIGTERM (ksfs flushes, then unmounts) or
/// `fusermount3 -u`.
pub fn mount(config: &Path) -> anyhow::Result<()> {
    let cfg = ksfs::MountConfig::load(config)?;
    ksfs::mount::run(cfg, || tracing::info!("ksfs mounted; ready")).context("ksfs failed")
}

/// Formats one device file or block device for a cluster.
pub fn format_disk(path: &Path, size: u64, cluster_id: &str) -> anyhow::Result<()> {
    let id = kdss_storage::format_disk(path, size, cluster_id)
        .with_context(|| format!("formatting {}", path.display()))?;
    println!(
        "formatted {} as {} ({} MiB) for cluster {cluster_id}",
        path.display(),
        id,
        size >> 20
    );
    Ok(())
}
