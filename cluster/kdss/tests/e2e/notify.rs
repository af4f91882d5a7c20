//! Lark notifications as an operator gets them: Alertmanager's alerts through `kdss notify`
//! and the master's own events reach a Lark custom bot as signed cards, and a Lark that
//! fails or rate-limits at first still gets every card. The bot is played by [`FakeLark`],
//! an HTTP server in the test that checks each body's shape and signature the way Lark
//! does, answers errors to the first attempts, and records the cards it accepted.

use crate::common::*;
use axum::Json;
use axum::extract::State;
use axum::routing::post;
use kdss_testkit::{Cluster, ClusterOpts, bin_path};
use serde_json::{Value, json};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bot's token in the webhook path; must never appear in a log.
const TOKEN: &str = "e2e-hook-token-5f2c";
/// The bot's signing secret; must never appear in a log.
const SECRET: &str = "e2e-signing-secret-91ab";

#[derive(Default)]
struct Seen {
    /// Cards accepted, in order.
    cards: Vec<Value>,
    /// Every POST, accepted or not.
    attempts: u32,
    /// Answers still to fail (a 500, then a rate-limit code, alternating).
    fail_next: u32,
    /// Why bodies were refused (bad shape or signature): must stay empty.
    refused: Vec<String>,
}

/// A stand-in for Lark's custom-bot webhook on a free port.
struct FakeLark {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Checks a body as Lark would: an interactive card with a header and elements, and a
/// fresh, valid signature.
fn check_body(body: &Value) -> Result<(), String> {
    if body["msg_type"] != "interactive" {
        return Err(format!("msg_type is {}", body["msg_type"]));
    }
    let card = &body["card"];
    if !card["header"]["title"]["content"].is_string() || !card["elements"].is_array() {
        return Err(format!("not a card: {card}"));
    }
    let ts: u64 = body["timestamp"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .ok_or("no timestamp string")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now.abs_diff(ts) > 3600 {
        return Err(format!("timestamp {ts} is more than an hour from {now}"));
    }
    let sign = body["sign"].as_str().ok_or("no sign")?;
    if !kdss_notify::sign::verify(ts, SECRET, sign) {
        return Err("sign match fail".into());
    }
    Ok(())
}

async fn hook(
    State(seen): State<Arc<Mutex<Seen>>>,
    Json(body): Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut s = seen.lock().unwrap();
    s.attempts += 1;
    if let Err(why) = check_body(&body) {
        s.refused.push(why.clone());
        return Json(json!({"code": 19021, "msg": why, "data": {}})).into_response();
    }
    if s.fail_next > 0 {
        s.fail_next -= 1;
        return if s.fail_next % 2 == 1 {
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "upstream busy",
            )
                .into_response()
        } else {
            Json(json!({"code": 9499, "msg": "too many request", "data": {}})).into_response()
        };
    }
    s.cards.push(body["card"].clone());
    Json(json!({"code": 0, "msg": "success", "data": {}})).into_response()
}

impl FakeLark {
    /// Starts the bot; its first `fail_first` answers are errors.
    async fn start(fail_first: u32) -> FakeLark {
        let seen = Arc::new(Mutex::new(Seen {
            fail_next: fail_first,
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route("/open-apis/bot/v2/hook/{token}", post(hook))
            .with_state(seen.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(l, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        FakeLark {
            addr,
            seen,
            stop: Some(stop),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/open-apis/bot/v2/hook/{TOKEN}", self.addr)
    }

    /// Waits until a card whose title satisfies `want` arrives; panics after `within`.
    async fn wait_card(&self, within: Duration, want: impl Fn(&str) -> bool) -> Value {
        let t = Instant::now();
        loop {
            {
                let s = self.seen.lock().unwrap();
                assert!(s.refused.is_empty(), "Lark refused bodies: {:?}", s.refused);
                if let Some(c) = s.cards.iter().find(|c| want(&title(c))) {
                    return c.clone();
                }
                assert!(
                    t.elapsed() < within,
                    "card not posted within {within:?}; cards: {:#?}",
                    s.cards.iter().map(title).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for FakeLark {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn title(card: &Value) -> String {
    card["header"]["title"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// All the markdown of a card, one string.
fn text(card: &Value) -> String {
    card["elements"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["text"]["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A running `kdss notify`, stopped (SIGKILL) on drop; its log is in `dir/relay.log`.
struct RelayProc {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl RelayProc {
    fn start(lark_url: &str, cluster: &str) -> RelayProc {
        Self::signed_with(lark_url, cluster, SECRET)
    }

    /// A relay that signs with `secret` (the bot's, or a wrong one).
    fn signed_with(lark_url: &str, cluster: &str, secret: &str) -> RelayProc {
        let dir = tempfile::Builder::new()
            .prefix("notify-")
            .tempdir_in(kdss_testkit::test_tmp_root())
            .unwrap();
        let cfg = dir.path().join("notify.toml");
        std::fs::write(
            &cfg,
            format!(
                "listen = \"127.0.0.1:0\"\nlark_url = {lark_url:?}\nlark_secret = {secret:?}\n\
                 cluster = {cluster:?}\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("relay.log")).unwrap();
        let mut child = Command::new(bin_path("kdss").unwrap())
            .args(["notify", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start kdss notify");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut relay = RelayProc {
            child,
            addr: String::new(),
            dir,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("kdss notify did not start:\n{}", relay.log()));
        relay.addr = line
            .strip_prefix("listening on http://")
            .and_then(|r| r.strip_suffix("/alerts"))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        relay
    }

    fn url(&self) -> String {
        format!("http://{}/alerts", self.addr)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("relay.log")).unwrap_or_default()
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `METHOD http://ADDR/PATH` with a JSON body over plain HTTP/1.0 (the relay and
/// Alertmanager listen on loopback); returns the status and the body.
fn http(method: &str, url: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, format!("cannot connect to {addr}"));
    };
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The log must never hold the bot's token, its secret or a signature.
fn assert_no_secrets(log: &str) {
    assert!(!log.contains(TOKEN), "webhook token in the log:\n{log}");
    assert!(!log.contains(SECRET), "signing secret in the log:\n{log}");
    assert!(!log.contains("\"sign\""), "a signature in the log:\n{log}");
}

/// An Alertmanager notification (webhook payload version 4) with two firing alerts and a
/// resolved one.
fn alertmanager_payload() -> Value {
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=~\"^(?:.*)$\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "lark",
        "groupLabels": {},
        "commonLabels": {"job": "kdss-storage"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "DiskSpaceCritical", "severity": "critical",
                           "instance": "node-1:6801", "disk": "disk-0", "job": "kdss-storage"},
                "annotations": {"summary": "disk-0 on node-1 is 93% full",
                                "description": "Used space above 90% for 5 minutes."},
                "startsAt": "2026-12-05T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
                "fingerprint": "a1b2c3d4e5f60718"
            },
            {
                "status": "firing",
                "labels": {"alertname": "ECRepairQueueHigh", "severity": "warning", "job": "kdss-master"},
                "annotations": {"summary": "152 stripes wait for repair"},
                "startsAt": "2026-12-05T10:02:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=y",
                "fingerprint": "0b1c2d3e4f506172"
            },
            {
                "status": "resolved",
                "labels": {"alertname": "NodeHeartbeatLost", "severity": "critical", "node": "node-3"},
                "annotations": {"summary": "node-3 sent no heartbeat for over 30 s"},
                "startsAt": "2026-12-05T09:00:00Z",
                "endsAt": "2026-12-05T09:04:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=z",
                "fingerprint": "99887766aabbccdd"
            }
        ]
    })
}

/// Alertmanager's notification becomes two signed cards in the chat: the firing alerts on
/// a red card with each severity and summary, the resolved one on a green card, both named
/// for the cluster; Lark answering 500 and then a rate-limit code first only delays them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_notification_becomes_firing_and_resolved_cards() {
    let lark = FakeLark::start(2).await;
    let relay = RelayProc::start(&lark.url(), "e2e-cluster");
    let (status, body) = tokio::task::spawn_blocking({
        let url = relay.url();
        move || http("POST", &url, &alertmanager_payload().to_string())
    })
    .await
    .unwrap();
    assert_eq!(
        status,
        200,
        "relay answered {status}: {body}\n{}",
        relay.log()
    );

    let firing = lark
        .wait_card(Duration::from_secs(10), |t| t.starts_with("[FIRING"))
        .await;
    assert_eq!(
        title(&firing),
        "[FIRING:2] DiskSpaceCritical, ECRepairQueueHigh · e2e-cluster"
    );
    assert_eq!(
        firing["header"]["template"], "red",
        "highest severity is critical"
    );
    let t = text(&firing);
    for want in [
        "**DiskSpaceCritical** · severity: **critical** · firing · cluster: e2e-cluster",
        "disk-0 on node-1 is 93% full",
        "**ECRepairQueueHigh** · severity: **warning**",
        "152 stripes wait for repair",
        "instance=node-1:6801",
    ] {
        assert!(t.contains(want), "firing card lacks {want:?}:\n{t}");
    }

    let resolved = lark
        .wait_card(Duration::from_secs(10), |t| t.starts_with("[RESOLVED"))
        .await;
    assert_eq!(
        title(&resolved),
        "[RESOLVED:1] NodeHeartbeatLost · e2e-cluster"
    );
    assert_eq!(resolved["header"]["template"], "green");
    let t = text(&resolved);
    assert!(t.contains("node-3 sent no heartbeat for over 30 s"), "{t}");
    assert!(t.contains("severity: **critical** · resolved"), "{t}");

    {
        let s = lark.seen.lock().unwrap();
        assert_eq!(s.cards.len(), 2, "one card per state");
        assert_eq!(s.attempts, 4, "two failed answers, then two cards");
    }
    let log = relay.log();
    assert!(log.contains("retrying"), "the retries are logged:\n{log}");
    assert_no_secrets(&log);

    // Something that is not an Alertmanager payload is refused with the reason.
    let (status, body) = http("POST", &relay.url(), "{\"alerts\": 3}");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Alertmanager"), "{body}");
}

/// A relay whose secret is not the bot's gets Lark's signature refusal, which retrying
/// cannot fix: Alertmanager is answered 502 with Lark's code, at once, and the chat gets
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_reported_to_alertmanager_not_retried() {
    let lark = FakeLark::start(0).await;
    let relay = RelayProc::signed_with(&lark.url(), "e2e-cluster", "not-the-bots-secret");
    let t = Instant::now();
    let (status, body) = tokio::task::spawn_blocking({
        let url = relay.url();
        move || http("POST", &url, &alertmanager_payload().to_string())
    })
    .await
    .unwrap();
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("code 19021"), "{body}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "a final refusal is not retried"
    );
    let s = lark.seen.lock().unwrap();
    assert_eq!(
        (s.attempts, s.cards.len()),
        (2, 0),
        "one attempt per card, none shown"
    );
    assert!(
        s.refused.iter().all(|r| r == "sign match fail"),
        "{:?}",
        s.refused
    );
    drop(s);
    let log = relay.log();
    assert!(log.contains("code 19021"), "the refusal is logged:\n{log}");
    assert!(
        !log.contains("not-the-bots-secret") && !log.contains(TOKEN),
        "{log}"
    );
}

/// The Debian binary, where installed.
fn alertmanager_bin() -> Option<&'static str> {
    ["prometheus-alertmanager", "alertmanager"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// A running Alertmanager, killed on drop.
struct Alertmanager {
    child: Child,
    url: String,
    log: std::path::PathBuf,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    async fn start(bin: &str, dir: &Path, webhook: &str) -> Alertmanager {
        let cfg = dir.join("alertmanager.yml");
        std::fs::write(
            &cfg,
            format!(
                "route:\n  receiver: lark\n  group_by: ['alertname']\n  group_wait: 1s\n  \
                 group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: lark\n    \
                 webhook_configs:\n      - url: {webhook}\n        send_resolved: true\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = dir.join("alertmanager.log");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start alertmanager");
        let am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let t = Instant::now();
        loop {
            if http("GET", &format!("{}/-/ready", am.url), "").0 == 200 {
                return am;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "alertmanager not ready:\n{}",
                std::fs::read_to_string(&am.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn post_alert(&self, alert: Value) {
        let (status, body) = http(
            "POST",
            &format!("{}/api/v2/alerts", self.url),
            &json!([alert]).to_string(),
        );
        assert_eq!(status, 200, "POST /api/v2/alerts: {body}");
    }
}

/// With the real Alertmanager in the chain: an alert pushed to its API v2 reaches the chat
/// as a firing card, and its resolution as a green card.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_in_the_chain_delivers_firing_and_resolved() {
    let Some(bin) = alertmanager_bin() else {
        let why = "prometheus-alertmanager not installed (apt-get install prometheus-alertmanager)";
        assert!(
            std::env::var("KDSS_REQUIRE_PROMETHEUS").as_deref() != Ok("1"),
            "KDSS_REQUIRE_PROMETHEUS=1 but {why}"
        );
        eprintln!("skipped: {why}");
        return;
    };
    let lark = FakeLark::start(1).await;
    let relay = RelayProc::start(&lark.url(), "e2e-am");
    let am = Alertmanager::start(bin, relay.dir.path(), &relay.url()).await;

    let labels = json!({"alertname": "KdssE2eAlert", "severity": "critical", "instance": "node-9"});
    let annotations = json!({"summary": "pushed through Alertmanager by the e2e test"});
    am.post_alert(json!({"labels": labels, "annotations": annotations,
                         "startsAt": kdss_notify::event::now_utc()}))
        .await;
    let firing = lark
        .wait_card(Duration::from_secs(30), |t| {
            t == "[FIRING:1] KdssE2eAlert · e2e-am"
        })
        .await;
    assert_eq!(firing["header"]["template"], "red");
    let t = text(&firing);
    assert!(
        t.contains("pushed through Alertmanager by the e2e test"),
        "{t}"
    );
    assert!(t.contains("instance=node-9"), "{t}");
    assert!(t.contains("severity: **critical**"), "{t}");

    am.post_alert(json!({"labels": labels, "annotations": annotations,
                         "endsAt": kdss_notify::event::now_utc()}))
        .await;
    let resolved = lark
        .wait_card(Duration::from_secs(30), |t| {
            t == "[RESOLVED:1] KdssE2eAlert · e2e-am"
        })
        .await;
    assert_eq!(resolved["header"]["template"], "green");
    assert_no_secrets(&relay.log());
}

/// The master's own events: taking a disk offline with kdss-cli posts a red card naming the
/// disk, its node and the operator's reason, and the repair that follows posts when it has
/// rebuilt the disk's stripes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_offline_and_repair_reach_lark_from_the_master() {
    let lark = FakeLark::start(1).await;
    let c = Cluster::start(ClusterOpts {
        master_extra_toml: format!(
            "[notify]\nlark_url = {:?}\nlark_secret = {SECRET:?}\n",
            lark.url()
        ),
        ..Default::default()
    })
    .await
    .unwrap();

    // Some data, so the offline disk holds shards to rebuild.
    let src = c.scratch("notify").join("data.bin");
    std::fs::write(&src, data(7, 3 << 20)).unwrap();
    kdss_cli_text(
        &c,
        &[
            "cp",
            "-q",
            src.to_str().unwrap(),
            &format!("kdss://{}/data.bin", c.bucket()),
        ],
    );
    let list = cli(&c, &["disk", "list"]);
    let disk = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["mapped_shards"].as_u64().unwrap_or(0) > 0)
        .unwrap_or_else(|| panic!("no disk holds shards: {list:#}"));
    let id = disk["disk_id"].as_str().unwrap().to_string();
    let node = disk["node"].as_str().unwrap().to_string();

    kdss_cli_text(
        &c,
        &[
            "disk",
            "offline",
            &id,
            "--reason",
            "e2e: replacing the disk",
        ],
    );
    let card = lark
        .wait_card(Duration::from_secs(30), |t| {
            t.starts_with("[EVENT] disk offline · ")
        })
        .await;
    assert_eq!(card["header"]["template"], "red");
    let t = text(&card);
    assert!(t.contains(&format!("disk {id} on {node}")), "{t}");
    assert!(t.contains("e2e: replacing the disk"), "{t}");
    assert!(t.contains("operator"), "{t}");

    let card = lark
        .wait_card(Duration::from_secs(60), |t| {
            t.starts_with("[EVENT] repair pass done · ")
        })
        .await;
    let t = text(&card);
    assert!(
        t.contains("stripes repaired") && !t.starts_with("**0 stripes"),
        "{t}"
    );

    let logs = c.all_logs(400);
    assert!(
        !logs.contains(TOKEN) && !logs.contains(SECRET),
        "secret in a master log"
    );
}
