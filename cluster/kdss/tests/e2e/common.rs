//! Shared pieces: the real S3 clients, reproducible data, skip reasons.

use kdss_testkit::{Cluster, ClusterOpts, bin_path};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Why these tests cannot run here (printed, then the test returns), if they cannot.
pub fn skip_reason(need_fuse: bool) -> Option<String> {
    if let Some(r) = need_fuse.then(kdss_testkit::fuse_unavailable).flatten() {
        return Some(r);
    }
    if Command::new("aws").arg("--version").output().is_err() {
        return Some("aws cli not found (pip install awscli)".into());
    }
    None
}

/// Starts a cluster with one gateway (plus `opts`), or prints why the test is skipped and
/// returns None.
pub async fn start(need_fuse: bool, opts: ClusterOpts) -> Option<Cluster> {
    if let Some(r) = skip_reason(need_fuse) {
        eprintln!("skipped: {r}");
        return None;
    }
    Some(
        Cluster::start(ClusterOpts {
            gateways: 1,
            ..opts
        })
        .await
        .unwrap(),
    )
}

/// Runs `aws <args>` against the cluster's first gateway with the admin keys.
pub fn aws(c: &Cluster, args: &[&str]) -> Output {
    let (ak, sk) = c.admin_keys();
    let endpoint = c.s3_endpoint().expect("cluster has a gateway");
    let mut cmd = Command::new("aws");
    trust_cluster_ca(c, &mut cmd);
    cmd.env("AWS_ACCESS_KEY_ID", ak)
        .env("AWS_SECRET_ACCESS_KEY", sk)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .arg("--endpoint-url")
        .arg(endpoint)
        .args(args)
        .output()
        .expect("aws runs")
}

/// `aws s3 cp SRC DST`, panicking with its output on failure.
pub fn aws_cp(c: &Cluster, src: &str, dst: &str) {
    let o = aws(c, &["s3", "cp", "--only-show-errors", src, dst]);
    assert!(
        o.status.success(),
        "aws s3 cp {src} {dst} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs a Python program (boto3) with the cluster's endpoint and keys in the environment.
pub fn python(c: &Cluster, program: &str, args: &[&str]) -> std::process::Child {
    let (ak, sk) = c.admin_keys();
    let mut cmd = Command::new("python3");
    trust_cluster_ca(c, &mut cmd);
    cmd.env("AWS_ACCESS_KEY_ID", ak)
        .env("AWS_SECRET_ACCESS_KEY", sk)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("S3_ENDPOINT", c.s3_endpoint().expect("gateway"))
        .arg("-c")
        .arg(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs")
}

/// Points aws cli and boto3 at the cluster CA of a TLS cluster (`AWS_CA_BUNDLE`).
pub fn trust_cluster_ca(c: &Cluster, cmd: &mut Command) {
    if let Some(ca) = c.layout.ca_path() {
        cmd.env("AWS_CA_BUNDLE", ca);
    }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Asserts that `path` holds exactly `want`, with a short message instead of a byte dump.
pub fn assert_file(path: &Path, want: &[u8]) {
    let got = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(got.len(), want.len(), "{}: length", path.display());
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
        panic!("{}: content differs from offset {at}", path.display());
    }
}

/// GETs `http://addr/path` with a plain HTTP/1.0 request and returns the body.
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// Sum of a Prometheus counter family over all its label sets.
pub fn metric_sum(metrics_text: &str, name: &str) -> f64 {
    metrics_text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs `kdss-cli --output json ARGS` as the admin; panics with its output on failure.
pub fn cli(c: &Cluster, args: &[&str]) -> Value {
    let out = cli_output(&c.masters(), &c.admin_keys(), args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kdss-cli {args:?} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("kdss-cli {args:?}: {e}: {text}"))
}

/// Runs `kdss-cli --output json ARGS` against `masters` with the admin `keys`, for a
/// thread that cannot hold the cluster (it is being killed and restarted meanwhile).
pub fn cli_output(masters: &[String], (ak, sk): &(String, String), args: &[&str]) -> Output {
    Command::new(bin_path("kdss-cli").expect("kdss-cli built"))
        .env("KDSS_MASTERS", masters.join(","))
        .env("KDSS_ACCESS_KEY", ak)
        .env("KDSS_SECRET_KEY", sk)
        .env_remove("KDSS_CONFIG")
        .args(["--output", "json"])
        .args(args)
        .output()
        .expect("run kdss-cli")
}

/// `[gc]` for tests that drive the collector themselves: no timed passes, no retention in
/// the bin, no read grace. Tests append their own `[gc]` keys after it.
pub const GC_BY_HAND: &str =
    "[gc]\ninterval_sec = 3600\nauto_gc_pending_hours = 0\nread_grace_sec = 0\n";

/// Flips one data byte in every shard record of disk `disk` of node `n`, with the node
/// stopped, then restarts it; returns the (stripe, shard) of each record hit.
pub async fn corrupt_disk(c: &mut Cluster, n: usize, disk: usize) -> Vec<(u64, u32)> {
    let path = c.layout.nodes[n].disks[disk].clone();
    c.nodes[n].stop(std::time::Duration::from_secs(15));
    let mut dev = std::fs::read(&path).unwrap();
    let block = kdss_format::BLOCK as usize;
    let mut hits = Vec::new();
    for off in (0..dev.len() - block).step_by(block) {
        let Ok(h) = kdss_format::record::RecordHeader::decode(&dev[off..off + 64]) else {
            continue;
        };
        if h.kind == kdss_format::record::RecordKind::Shard && h.data_len > 0 {
            dev[off + h.data_offset() + h.data_len as usize / 2] ^= 0xff;
            hits.push((h.stripe_id, h.shard_index));
        }
    }
    std::fs::write(&path, &dev).unwrap();
    c.restart_node(n).await.unwrap();
    hits
}

/// Polls `kdss-cli --output json ARGS` until `ok` holds; panics with the last answer after
/// `within`. Returns the answer that satisfied `ok`.
pub async fn wait_cli(
    c: &Cluster,
    args: &[&str],
    within: std::time::Duration,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let t = std::time::Instant::now();
    loop {
        let v = cli(c, args);
        if ok(&v) {
            return v;
        }
        assert!(
            t.elapsed() < within,
            "{what} not seen within {within:?}: {v:#}\n{}",
            c.all_logs(30)
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

pub fn put(c: &Cluster, dir: &std::path::Path, key: &str, body: &[u8]) {
    let f = dir.join(key.replace('/', "_"));
    std::fs::write(&f, body).unwrap();
    aws_cp(
        c,
        f.to_str().unwrap(),
        &format!("s3://{}/{key}", c.bucket()),
    );
}

/// Puts `n` objects `PREFIX{i}.bin` of `base + i * step` bytes (seeded `seed + i`).
pub fn put_objects(
    c: &Cluster,
    dir: &std::path::Path,
    prefix: &str,
    seed: u64,
    n: u64,
    (base, step): (usize, usize),
) -> Vec<(String, Vec<u8>)> {
    let objects: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            (
                format!("{prefix}{i}.bin"),
                data(seed + i, base + i as usize * step),
            )
        })
        .collect();
    for (k, b) in &objects {
        put(c, dir, k, b);
    }
    objects
}

pub fn get(c: &Cluster, dir: &std::path::Path, key: &str, want: &[u8]) {
    let out = dir.join(format!("{}.back", key.replace('/', "_")));
    aws_cp(
        c,
        &format!("s3://{}/{key}", c.bucket()),
        out.to_str().unwrap(),
    );
    assert_file(&out, want);
}

/// A boto3 client in a loop: put then get of objects under `load/` (sizes from argv[2]
/// to argv[3] bytes, a pause of argv[4] seconds after each pair), one line per pair
/// ("OK" or "FAIL ..."), until stopped. Retries are off, so any request the cluster
/// fails shows.
const S3_LOAD: &str = r#"
import boto3, botocore.config, os, random, sys, threading
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"],
    config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=60))
bucket = sys.argv[1]
low, high, pause = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
i = 0
while not stop.is_set():
    body = random.Random(i).randbytes(low + (i * 7919) % (high - low))
    key = f"load/{i % 16}"
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        print("OK" if got == body else f"FAIL {i} wrong bytes", flush=True)
    except Exception as e:
        print(f"FAIL {i} {type(e).__name__}: {e}", flush=True)
    i += 1
    stop.wait(pause)
"#;

/// [`S3_LOAD`] running against a cluster's bucket.
pub struct S3Load {
    child: std::process::Child,
    reader: std::thread::JoinHandle<Vec<String>>,
}

impl S3Load {
    /// Starts a heavy load: 0.3-1.8 MB objects back to back.
    pub fn start(c: &Cluster) -> S3Load {
        Self::paced(c, 300_000..1_800_000, 0.0)
    }

    /// Starts a load of `sizes` bytes per object with `pause` seconds after each pair.
    pub fn paced(c: &Cluster, sizes: std::ops::Range<usize>, pause: f64) -> S3Load {
        use std::io::BufRead;
        let args = [
            c.bucket(),
            sizes.start.to_string(),
            sizes.end.to_string(),
            pause.to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = python(c, S3_LOAD, &args);
        let out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            std::io::BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        S3Load { child, reader }
    }

    /// Stops the load and returns its lines.
    pub fn stop(mut self) -> Vec<String> {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
        self.reader.join().unwrap()
    }
}

/// `kdss-cli ARGS` in text form, as an operator sees it.
pub fn kdss_cli_text(c: &Cluster, args: &[&str]) -> String {
    let (ak, sk) = c.admin_keys();
    let out = std::process::Command::new(kdss_testkit::bin_path("kdss-cli").unwrap())
        .env("KDSS_MASTERS", c.masters().join(","))
        .env("KDSS_ACCESS_KEY", ak)
        .env("KDSS_SECRET_KEY", sk)
        .env_remove("KDSS_CONFIG")
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "kdss-cli {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("$ kdss-cli {}\n{text}", args.join(" "));
    text
}

/// A port nobody listened on a moment ago, outside the ephemeral range.
pub fn free_port() -> u16 {
    kdss_launch::free_port().expect("a free test port")
}
