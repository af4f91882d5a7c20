//! Runs the S3 benchmark (`kdss_s3gw::bench`) against a running cluster and gateway:
//! `cargo run -p kdss-s3gw --example bench -- http://127.0.0.1:9000 127.0.0.1:6700 AK SK BUCKET [large_count small_count]`
//! Recorded figures and how they were taken: `s3gw/bench/RESULTS.md`.

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 5 {
        anyhow::bail!("usage: bench ENDPOINT MASTER ACCESS_KEY SECRET_KEY BUCKET [LARGE SMALL]");
    }
    let opts = kdss_s3gw::bench::BenchOpts {
        endpoint: a[0].clone(),
        masters: vec![a[1].clone()],
        access_key: a[2].clone(),
        secret_key: a[3].clone(),
        bucket: a[4].clone(),
        large_count: a.get(5).and_then(|v| v.parse().ok()).unwrap_or(4),
        small_count: a.get(6).and_then(|v| v.parse().ok()).unwrap_or(256),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new()?;
    let rows = rt.block_on(kdss_s3gw::bench::run_bench(&opts))?;
    print!("{}", kdss_s3gw::bench::report(&rows));
    Ok(())
}
