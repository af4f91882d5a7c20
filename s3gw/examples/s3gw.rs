//! Runs one gateway from an `s3gw.toml` without the `kdss` binary: for iterating on the
//! gateway against a cluster started by `kdss up` (conformance runs, benchmarks).
//!
//! `cargo run -p kdss-s3gw --example s3gw -- path/to/s3gw.toml`

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: s3gw CONFIG"))?;
    let cfg = kdss_s3gw::S3Config::load(std::path::Path::new(&path))?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        kdss_s3gw::run(cfg, stop).await
    })?;
    Ok(())
}
