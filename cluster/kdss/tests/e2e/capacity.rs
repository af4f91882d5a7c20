//! A cluster past `[capacity] reject_pct` refuses new writes with an error that says so —
//! 507 InsufficientStorage through S3 (not a 503 that clients retry), ENOSPC through the
//! mount — while reads, deletes and purges keep working, so a full cluster can be emptied;
//! `kdss-cli status` and the master's metrics show it.

use crate::common::*;
use kdss_testkit::{ClusterOpts, Mount};
use std::io::Write;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_reject_pct_writes_fail_clearly_while_reads_deletes_and_purges_go_on() {
    let Some(c) = start(
        true,
        ClusterOpts {
            // 8 disks of 256 MiB: 2% is about 41 MiB of shards, a few 8 MiB objects.
            master_extra_toml: "[capacity]\nalert_pct = 1\nreject_pct = 2\n\
                                [gc]\ninterval_sec = 3600\nauto_gc_pending_hours = 0\n"
                .into(),
            ..ClusterOpts::default()
        },
    )
    .await
    else {
        return;
    };
    let b = c.bucket();
    let scratch = c.scratch("capacity");
    let first = data(31, 8 << 20);
    let src = scratch.join("first.bin");
    std::fs::write(&src, &first).unwrap();
    aws_cp(&c, src.to_str().unwrap(), &format!("s3://{b}/first.bin"));

    // Fill until the master refuses: each PUT adds ~11 MiB of shards, and heartbeats carry
    // the usage to the master every 2 s.
    let mut refusal = None;
    for i in 0..30 {
        let o = aws(
            &c,
            &[
                "s3",
                "cp",
                "--only-show-errors",
                src.to_str().unwrap(),
                &format!("s3://{b}/fill-{i}.bin"),
            ],
        );
        if !o.status.success() {
            refusal = Some(String::from_utf8_lossy(&o.stderr).to_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let refusal = refusal.expect("writes were never refused past reject_pct");
    eprintln!("refused: {}", refusal.trim());

    // The operator sees it: `kdss-cli status` and the master's metrics say writes are refused.
    let st = cli(&c, &["status"]);
    assert_eq!(
        st["capacity"]["state"], "writes refused",
        "{}",
        st["capacity"]
    );
    assert_eq!(st["capacity"]["reject_pct"], 2);
    let text = http_get(&c.layout.masters[0].http, "/metrics");
    assert_eq!(
        metric_sum(&text, "kdss_master_capacity_writes_refused"),
        1.0
    );
    assert_eq!(metric_sum(&text, "kdss_master_capacity_alert"), 1.0);
    assert!(
        refusal.contains("InsufficientStorage") && refusal.contains("full"),
        "the refusal should name the cause: {refusal}"
    );

    // The mount refuses too, with ENOSPC at the latest when the data must become durable.
    let m = Mount::new(&c, "cap", &b, "").await.unwrap();
    let mut f = std::fs::File::create(m.join("big.bin")).unwrap();
    let err = f
        .write_all(&first)
        .and_then(|_| f.sync_all())
        .expect_err("a write past reject_pct was accepted by the mount");
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    drop(f);

    // Reads go on, byte-exact.
    let out = scratch.join("first.out");
    aws_cp(&c, &format!("s3://{b}/first.bin"), out.to_str().unwrap());
    assert_file(&out, &first);

    // Deletes and a purge go on.
    let o = aws(&c, &["s3", "rm", "--recursive", &format!("s3://{b}/")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ls = aws(&c, &["s3", "ls", "--recursive", &format!("s3://{b}/")]);
    assert!(
        !String::from_utf8_lossy(&ls.stdout).contains(".bin"),
        "{}",
        String::from_utf8_lossy(&ls.stdout)
    );
    let p = cli(&c, &["trash", "purge", "--all"]);
    assert!(p["items"].as_u64().unwrap_or(0) >= 2, "{p}");
}
