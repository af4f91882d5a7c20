//! What an operator's monitoring sees (issue 14): the alert rules pass promtool's own checks
//! and unit tests, and a real Prometheus scraping a running cluster through the addresses
//! in cluster.json finds every metric a rule or a Grafana panel names, and pages
//! NodeHeartbeatLost when a storage node is SIGKILLed.
//!
//! Needs Debian's `prometheus` package (promtool and prometheus). Without it both tests
//! are skipped with the reason, unless `KDSS_REQUIRE_PROMETHEUS=1` (CI) makes that a
//! failure.

use crate::common::*;
use kdss_launch::cluster_json::ClusterState;
use kdss_testkit::{ClusterOpts, Mount};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `deploy/` of this repository.
fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The named tool from the prometheus package, or None (printed) when it is missing and
/// not required.
fn prometheus_tool(name: &str) -> Option<&str> {
    if Command::new(name).arg("--version").output().is_ok() {
        return Some(name);
    }
    let why = format!("{name} not found (apt-get install prometheus)");
    assert!(
        std::env::var("KDSS_REQUIRE_PROMETHEUS").as_deref() != Ok("1"),
        "KDSS_REQUIRE_PROMETHEUS=1 but {why}"
    );
    eprintln!("skipped: {why}");
    None
}

/// The alert names of a rules file, in order.
fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// Every metric name an expression mentions: our `kdss_` names and Prometheus's `up`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if word(bytes[i]) && (i == 0 || !word(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && word(bytes[i]) {
                i += 1;
            }
            let w = &expr[start..i];
            // `up` only as a selector (`up{` or `up ==`), not inside a label value.
            let selector = expr[i..].trim_start().starts_with(['{', '=']);
            if w.starts_with("kdss_") || (w == "up" && selector) {
                out.insert(w.to_string());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The `expr` lines of a rules file.
fn rule_exprs(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .map(|e| serde_json::from_str::<String>(e.trim()).unwrap_or_else(|_| e.trim().into()))
        .collect()
}

/// Every `expr` of every dashboard under deploy/grafana/dashboards, with its file.
fn dashboard_exprs() -> Vec<(String, String)> {
    fn walk(v: &Value, file: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr", Value::String(e)) => out.push((file.to_string(), e.clone())),
                        _ => walk(v, file, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, file, out)),
            _ => {}
        }
    }
    let dir = deploy_dir().join("grafana/dashboards");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
            walk(&v, &p.file_name().unwrap().to_string_lossy(), &mut out);
        }
    }
    out
}

#[test]
fn alert_rules_pass_promtool_and_each_has_a_test_and_a_runbook_entry() {
    let Some(promtool) = prometheus_tool("promtool") else {
        return;
    };
    let dir = deploy_dir().join("prometheus");
    for args in [
        vec!["check", "rules", "alerts.yml"],
        vec!["test", "rules", "alerts_test.yml"],
        vec!["check", "config", "prometheus.yml"],
    ] {
        let out = Command::new(promtool)
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("promtool runs");
        assert!(
            out.status.success(),
            "promtool {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rules = std::fs::read_to_string(dir.join("alerts.yml")).unwrap();
    let names = alert_names(&rules);
    assert!(
        names.len() >= 32,
        "{} rules, at least 32 promised",
        names.len()
    );
    for must in [
        "DiskSpaceCritical",
        "DiskSmartWarning",
        "NodeHeartbeatLost",
        "ECRepairQueueHigh",
        "APILatencyP99High",
        "ReplicationLagHigh",
    ] {
        assert!(names.iter().any(|n| n == must), "{must} missing");
    }
    let tests = std::fs::read_to_string(dir.join("alerts_test.yml")).unwrap();
    let runbook = std::fs::read_to_string(deploy_dir().join("../docs/runbook.md")).unwrap();
    for n in &names {
        // A fire and a resolve: two evaluations of each rule.
        let evals = tests.matches(&format!("alertname: {n}\n")).count();
        assert!(evals >= 2, "{n}: {evals} evaluations in alerts_test.yml");
        assert!(
            runbook.contains(&format!("## {n}\n")),
            "{n} has no section in docs/runbook.md"
        );
    }
}

/// A child process killed (and waited for) on drop, even when the test panics.
struct Killed {
    child: Child,
    log: PathBuf,
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("prometheus log tail:");
            tail.iter().rev().for_each(|l| eprintln!("{l}"));
        }
    }
}

/// A scrape config for the cluster described by `cluster_json`, scraping every second,
/// with `rules` as its rule file.
fn scrape_config(cluster_json: &Value, rules: &Path) -> String {
    let addrs = |list: &str| -> Vec<String> {
        cluster_json[list]
            .as_array()
            .unwrap_or_else(|| panic!("cluster.json has no {list}: {cluster_json}"))
            .iter()
            .map(|d| {
                d["metrics"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{list} entry without metrics: {d}"))
                    .to_string()
            })
            .collect()
    };
    let mut text = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {:?}\nscrape_configs:\n",
        rules.display().to_string()
    );
    for (job, list) in [
        ("kdss-master", "masters"),
        ("kdss-storage", "storage_nodes"),
        ("kdss-s3gw", "s3gw"),
        ("kdss-ksfs", "mounts"),
    ] {
        let targets = addrs(list);
        assert!(!targets.is_empty(), "no {list} in cluster.json");
        text.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: {targets:?}\n"
        ));
    }
    text
}

/// alerts.yml with NodeHeartbeatLost's `for:` shortened to one second.
fn rules_with_short_heartbeat_for(rules: &str) -> String {
    let mut out = Vec::new();
    let mut in_rule = false;
    for l in rules.lines() {
        if l.trim().starts_with("- alert:") {
            in_rule = l.trim() == "- alert: NodeHeartbeatLost";
        }
        if in_rule && l.trim().starts_with("for:") {
            out.push(l.replace(l.trim(), "for: 1s"));
            continue;
        }
        out.push(l.to_string());
    }
    out.join("\n")
}

/// The body of GET `path`, or "" while nothing listens.
fn http_get_or_empty(addr: &str, path: &str) -> String {
    if std::net::TcpStream::connect(addr).is_err() {
        return String::new();
    }
    http_get(addr, path)
}

/// GET `path` of Prometheus's API as JSON.
fn api(addr: &str, path: &str) -> Value {
    let body = http_get(addr, path);
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_every_metric_the_rules_and_dashboards_use_and_pages_a_dead_node() {
    let (Some(_), Some(prometheus)) = (prometheus_tool("promtool"), prometheus_tool("prometheus"))
    else {
        return;
    };
    let Some(mut c) = start(true, ClusterOpts::default()).await else {
        return;
    };
    let mount_metrics = c
        .layout
        .mount_metrics
        .clone()
        .expect("layout has a mount port");
    let mnt = Mount::new(
        &c,
        "obs",
        &c.bucket(),
        &format!("metrics_addr = {mount_metrics:?}\n"),
    )
    .await
    .unwrap();
    let json_path = c
        .write_cluster_json(Some(mnt.path.clone()), ClusterState::Running)
        .unwrap();
    let cluster_json: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();

    // Prometheus in a scratch dir, scraping what cluster.json names.
    let dir = c.scratch("prometheus");
    let rules = std::fs::read_to_string(deploy_dir().join("prometheus/alerts.yml")).unwrap();
    let rules_path = dir.join("alerts.yml");
    std::fs::write(&rules_path, rules_with_short_heartbeat_for(&rules)).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, scrape_config(&cluster_json, &rules_path)).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let log = dir.join("prometheus.log");
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("prometheus starts");
    let _prometheus = Killed { child, log };
    let t = Instant::now();
    while !http_get_or_empty(&addr, "/-/ready").contains("Ready") {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "prometheus not ready within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Traffic through both doors: S3 put, list, get; files written, read and looked up.
    let src = c.scratch("obs").join("obj.bin");
    let body = data(14, 3 << 20);
    std::fs::write(&src, &body).unwrap();
    let key = format!("s3://{}/obs/obj.bin", c.bucket());
    aws_cp(&c, src.to_str().unwrap(), &key);
    let back = c.scratch("obs").join("obj.back");
    aws_cp(&c, &key, back.to_str().unwrap());
    assert_file(&back, &body);
    let o = aws(&c, &["s3", "ls", &format!("s3://{}/obs/", c.bucket())]);
    assert!(o.status.success());
    std::fs::write(mnt.join("from-ksfs.bin"), data(15, 5 << 20)).unwrap();
    assert_file(&mnt.join("obs/obj.bin"), &body);
    assert!(!mnt.join("no-such-file").exists());

    // Every name a rule or a panel uses, against what Prometheus scraped.
    let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
    for e in rule_exprs(&rules) {
        for n in metric_names(&e) {
            wanted.insert((n, "alerts.yml".into()));
        }
    }
    let panels = dashboard_exprs();
    assert!(panels.len() >= 20, "only {} panel queries", panels.len());
    for (file, e) in &panels {
        for n in metric_names(e) {
            wanted.insert((n, file.clone()));
        }
    }
    // Prometheus scrapes its targets one by one, the first pass over a few seconds: wait
    // for every name and every target before judging.
    let t = Instant::now();
    let (missing, targets) = loop {
        let names = api(&addr, "/api/v1/label/__name__/values");
        let have: BTreeSet<&str> = names["data"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let missing: Vec<_> = wanted
            .iter()
            .filter(|(n, _)| !have.contains(n.as_str()))
            .collect();
        let targets = api(&addr, "/api/v1/targets");
        let all_up = targets["data"]["activeTargets"]
            .as_array()
            .is_some_and(|a| a.iter().all(|t| t["health"] == "up"));
        if (missing.is_empty() && all_up) || t.elapsed() > Duration::from_secs(60) {
            break (format!("{missing:?}"), targets);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(missing, "[]", "metric names used but never scraped");
    let active = targets["data"]["activeTargets"].as_array().unwrap();
    assert!(
        active.iter().all(|t| t["health"] == "up"),
        "a target is not up: {targets:#}"
    );

    // SIGKILL one storage node: NodeHeartbeatLost must fire for it (30 s without a
    // heartbeat, `for:` shortened to 1 s here).
    let victim = c.layout.nodes[1].id.clone();
    let killed = Instant::now();
    c.kill_node(1);
    loop {
        let alerts = api(&addr, "/api/v1/alerts");
        let firing = alerts["data"]["alerts"].as_array().is_some_and(|a| {
            a.iter().any(|a| {
                a["labels"]["alertname"] == "NodeHeartbeatLost"
                    && a["labels"]["node"] == victim.as_str()
                    && a["state"] == "firing"
            })
        });
        if firing {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(120),
            "NodeHeartbeatLost not firing for {victim} 120 s after the kill: {alerts:#}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The last heartbeat came at most one interval (2 s) before the kill.
    assert!(
        killed.elapsed() >= Duration::from_secs(27),
        "fired {:?} after the kill, before 30 s without a heartbeat",
        killed.elapsed()
    );
    drop(mnt);
}

#[test]
fn metric_names_are_found_in_expressions() {
    let e = r#"sum by (le) (rate(kdss_s3gw_request_duration_seconds_bucket{op="up"}[5m])) > 0.5 or up{job="kdss-master"} == 0"#;
    let got: Vec<String> = metric_names(e).into_iter().collect();
    assert_eq!(got, ["kdss_s3gw_request_duration_seconds_bucket", "up"]);
}
