//! The shared namespace: what one door writes, the other reads, byte-exact.

use crate::common::*;
use kdss_testkit::{ClusterOpts, Mount};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_through_ksfs_is_an_s3_object_and_back() {
    let Some(c) = start(true, ClusterOpts::default()).await else {
        return;
    };
    let b = c.bucket();
    let m = Mount::new(&c, "a", &b, "").await.unwrap();
    let scratch = c.scratch("files");

    // ksfs -> S3: a multi-stripe file and a small one, in a directory.
    let big = data(1, (9 << 20) + 12_345);
    let small = data(2, 3_000);
    std::fs::create_dir_all(m.join("docs")).unwrap();
    std::fs::write(m.join("docs/big.bin"), &big).unwrap();
    std::fs::write(m.join("docs/small.txt"), &small).unwrap();
    aws_cp(
        &c,
        &format!("s3://{b}/docs/big.bin"),
        scratch.join("big.out").to_str().unwrap(),
    );
    aws_cp(
        &c,
        &format!("s3://{b}/docs/small.txt"),
        scratch.join("small.out").to_str().unwrap(),
    );
    assert_file(&scratch.join("big.out"), &big);
    assert_file(&scratch.join("small.out"), &small);

    // S3 -> ksfs: an object under a new prefix becomes a file in a new directory.
    let up = data(3, (6 << 20) + 7);
    std::fs::write(scratch.join("up.in"), &up).unwrap();
    aws_cp(
        &c,
        scratch.join("up.in").to_str().unwrap(),
        &format!("s3://{b}/uploads/2026/up.bin"),
    );
    assert_file(&m.join("uploads/2026/up.bin"), &up);
    assert!(
        m.join("uploads/2026").is_dir(),
        "the PUT's parent is a real directory"
    );

    // Listing through S3 shows what ksfs wrote.
    let ls = aws(&c, &["s3", "ls", &format!("s3://{b}/docs/")]);
    let ls = String::from_utf8_lossy(&ls.stdout).to_string();
    assert!(
        ls.contains("big.bin") && ls.contains("small.txt"),
        "aws s3 ls: {ls}"
    );

    // Deleting through S3 removes the file from the mount.
    let o = aws(&c, &["s3", "rm", &format!("s3://{b}/docs/small.txt")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m2 = Mount::new(&c, "b", &b, "").await.unwrap();
    assert!(
        !m2.join("docs/small.txt").exists(),
        "deleted object still visible in a fresh mount"
    );
    assert_file(&m2.join("docs/big.bin"), &big);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_boto3_and_s3cmd_pass_the_compatibility_script() {
    if let Some(missing) = missing_s3_clients() {
        // CI installs the clients (.ci/run) and sets KDSS_REQUIRE_S3_CLIENTS, so there a
        // missing client fails the test instead of hiding a broken install.
        let why = format!(
            "{missing} not installed (pip install awscli boto3 s3cmd; .ci/run installs them)"
        );
        assert!(
            std::env::var_os("KDSS_REQUIRE_S3_CLIENTS").is_none(),
            "KDSS_REQUIRE_S3_CLIENTS is set but {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let Some(c) = start(false, ClusterOpts::default()).await else {
        return;
    };
    let (ak, sk) = c.admin_keys();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../s3gw/tests/compat.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .env("S3_ENDPOINT", c.s3_endpoint().unwrap())
        .env("AWS_ACCESS_KEY_ID", ak)
        .env("AWS_SECRET_ACCESS_KEY", sk)
        .current_dir(c.scratch("compat"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "compat.sh failed:\n{text}");
}

/// The first of the S3 clients compat.sh drives that this machine lacks, if any.
fn missing_s3_clients() -> Option<&'static str> {
    let runs = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !runs("aws", &["--version"]) {
        return Some("aws cli");
    }
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    if !runs(&py, &["-c", "import boto3"]) {
        return Some("boto3");
    }
    if !runs("s3cmd", &["--version"]) {
        return Some("s3cmd");
    }
    None
}
