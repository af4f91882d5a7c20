//! Smoke run of `kdss bench storage` on a scratch file: the report has every figure and
//! they are positive. Set KDSS_BENCH_SIZE (bytes) for a longer run whose figures count.

use kdss_storage::bench::{BenchOptions, run};
use std::time::Duration;

#[test]
fn bench_reports_every_figure_beside_raw() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let size = std::env::var("KDSS_BENCH_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256 << 20);
    let mut opts = BenchOptions::new(dir.path().join("bench.img"), size);
    if size < (1 << 30) {
        opts.small_duration = Duration::from_millis(300);
    }
    let rep = run(&opts).unwrap();
    println!("{rep}");
    assert!(rep.raw_write_mibs > 0.0 && rep.raw_read_mibs > 0.0);
    assert_eq!(rep.figures.len(), 10);
    assert!(rep.figures.iter().all(|f| f.value > 0.0), "{rep}");
    let kib = |label: &str| {
        let name = format!("  device KiB per read, {label}");
        rep.figures.iter().find(|f| f.name == name).unwrap().value
    };
    // A 4 KiB read of a 1 MiB shard: the whole record for layout 1, a few blocks for 2.
    assert!(kib("layout 1") > 1024.0, "{rep}");
    assert!(kib("layout 2") <= 16.0, "{rep}");
    assert!(
        !dir.path().join("bench.img").exists(),
        "bench removes the file it created"
    );
}
