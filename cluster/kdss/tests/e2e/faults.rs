//! Pull the plug: storage nodes killed, devices corrupted, the whole cluster restarted —
//! and acknowledged data is still there, byte-exact, through both doors.

use crate::common::*;
use kdss_testkit::{ClusterOpts, Mount};
use std::io::{BufRead, BufReader, Write};

/// boto3 writer/verifier. `write BUCKET N`: PUTs N objects of reproducible content and
/// prints `ACK i` or `ERR i` after each. `verify BUCKET`: reads ACK/ERR lines on stdin and
/// prints `OK i`, `LOST i` (an acknowledged object missing or wrong) or `HALF i` (an
/// unacknowledged object visible but not whole).
const S3_STREAM: &str = r#"
import boto3, botocore.config, os, random, sys
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"],
    config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=60))
def body(i):
    return random.Random(i).randbytes(100_000 + (i * 7919) % 2_500_000)
mode, bucket = sys.argv[1], sys.argv[2]
if mode == "write":
    for i in range(int(sys.argv[3])):
        try:
            s3.put_object(Bucket=bucket, Key=f"stream/obj-{i:04}", Body=body(i))
            print(f"ACK {i}", flush=True)
        except Exception as e:
            print(f"ERR {i} {type(e).__name__}", flush=True)
else:
    for line in sys.stdin:
        kind, i = line.split()[0], int(line.split()[1])
        try:
            got = s3.get_object(Bucket=bucket, Key=f"stream/obj-{i:04}")["Body"].read()
        except s3.exceptions.NoSuchKey:
            got = None
        if kind == "ACK":
            print(("OK" if got == body(i) else "LOST") + f" {i}", flush=True)
        else:
            print(("OK" if got is None or got == body(i) else "HALF") + f" {i}", flush=True)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_storage_node_killed_everything_still_reads_through_both_doors() {
    let Some(mut c) = start(true, ClusterOpts::default()).await else {
        return;
    };
    let b = c.bucket();
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            (
                format!("dir{}/f{i}.bin", i % 2),
                data(10 + i, 1_000 + i as usize * 1_700_000),
            )
        })
        .collect();
    {
        let m = Mount::new(&c, "w", &b, "").await.unwrap();
        for (name, bytes) in &files {
            std::fs::create_dir_all(m.join(name).parent().unwrap()).unwrap();
            std::fs::write(m.join(name), bytes).unwrap();
        }
    }
    c.kill_node(0);
    c.restart_gateway(0).await.unwrap(); // a cold gateway cache: reads must hit the nodes
    let m = Mount::new(&c, "r", &b, "").await.unwrap();
    let scratch = c.scratch("out");
    for (name, bytes) in &files {
        assert_file(&m.join(name), bytes);
        let out = scratch.join(name.replace('/', "_"));
        aws_cp(&c, &format!("s3://{b}/{name}"), out.to_str().unwrap());
        assert_file(&out, bytes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_nodes_killed_mid_write_stream_lose_no_acknowledged_object() {
    // 5 nodes x 2 disks: with one node down 8 disks remain for 7 shards, so writes go on;
    // with two down they fail — and must fail whole.
    let Some(mut c) = start(
        false,
        ClusterOpts {
            nodes: 5,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let b = c.bucket();
    let mut w = python(&c, S3_STREAM, &["write", &b, "60"]);
    let mut lines = BufReader::new(w.stdout.take().unwrap()).lines();
    let mut log = Vec::new();
    while let Some(Ok(l)) = lines.next() {
        log.push(l);
        match log.len() {
            12 => c.kill_node(0),
            30 => c.kill_node(1),
            45 => {
                c.restart_node(0).await.unwrap();
                c.restart_node(1).await.unwrap();
            }
            _ => {}
        }
    }
    let st = w.wait().unwrap();
    assert!(st.success(), "writer failed: {st}");
    let acks = log.iter().filter(|l| l.starts_with("ACK")).count();
    assert!(
        acks >= 30,
        "too few writes acknowledged ({acks}/60): {log:?}"
    );

    let mut v = python(&c, S3_STREAM, &["verify", &b]);
    {
        let mut stdin = v.stdin.take().unwrap();
        for l in &log {
            writeln!(stdin, "{l}").unwrap();
        }
    }
    let out = v.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let bad: Vec<&str> = report.lines().filter(|l| !l.starts_with("OK")).collect();
    assert!(
        out.status.success(),
        "verifier failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report.lines().count(), 60, "verifier output: {report}");
    assert!(bad.is_empty(), "lost or half-visible objects: {bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_records_are_read_around_and_reported() {
    let Some(mut c) = start(false, ClusterOpts::default()).await else {
        return;
    };
    let b = c.bucket();
    let scratch = c.scratch("corrupt");
    let body = data(77, 5 << 20);
    std::fs::write(scratch.join("in"), &body).unwrap();
    aws_cp(
        &c,
        scratch.join("in").to_str().unwrap(),
        &format!("s3://{b}/victim.bin"),
    );

    // Flip one data byte in every shard record of disk 0 on nodes 0 and 1, while each node
    // is stopped. A stripe has at most one shard per disk, so each loses at most m = 2.
    let mut hits = corrupt_disk(&mut c, 0, 0).await;
    hits.extend(corrupt_disk(&mut c, 1, 0).await);
    assert!(!hits.is_empty(), "no shard records found on the devices");
    c.restart_gateway(0).await.unwrap();

    aws_cp(
        &c,
        &format!("s3://{b}/victim.bin"),
        scratch.join("out").to_str().unwrap(),
    );
    assert_file(&scratch.join("out"), &body);

    let mut detected = 0.0;
    for node in &c.layout.nodes {
        let text = http_get(&node.http, "/metrics");
        detected += metric_sum(&text, "kdss_storage_disk_checksum_errors_total")
            + metric_sum(&text, "kdss_storage_disk_checksum_errors");
    }
    assert!(
        detected >= 1.0,
        "corruption of {} records went unreported in /metrics",
        hits.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_restart_keeps_files_and_objects() {
    let Some(mut c) = start(true, ClusterOpts::default()).await else {
        return;
    };
    let b = c.bucket();
    let scratch = c.scratch("restart");
    let f = data(5, (3 << 20) + 5);
    let o = data(6, 700_000);
    {
        let m = Mount::new(&c, "w", &b, "").await.unwrap();
        std::fs::write(m.join("through-ksfs.bin"), &f).unwrap();
    }
    std::fs::write(scratch.join("o"), &o).unwrap();
    aws_cp(
        &c,
        scratch.join("o").to_str().unwrap(),
        &format!("s3://{b}/through-s3.bin"),
    );

    c.restart_all().await.unwrap();

    let m = Mount::new(&c, "r", &b, "").await.unwrap();
    assert_file(&m.join("through-ksfs.bin"), &f);
    assert_file(&m.join("through-s3.bin"), &o);
    aws_cp(
        &c,
        &format!("s3://{b}/through-ksfs.bin"),
        scratch.join("f.out").to_str().unwrap(),
    );
    assert_file(&scratch.join("f.out"), &f);
}
