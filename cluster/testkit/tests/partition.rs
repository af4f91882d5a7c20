//! Partitions across network namespaces, checked by history: concurrent S3 clients put,
//! get and delete a few keys through the gateway while the Raft leader is cut off, from
//! every other host or from the other masters only, and then healed. Every call's invocation and completion is recorded;
//! the history (with a final read of every key after the heal) must be linearizable,
//! which also means no acknowledged write was lost and no read saw a value nobody wrote
//! or one overwritten before the read began. The old leader must rejoin by itself.
//! A second test makes the stale read those runs found deterministic: a read aimed at a
//! leader cut off from the other masters, after the new leader took a write.
//!
//! CI-sized by default (each partition once, about a minute of traffic).
//! `KDSS_PARTITION=full` runs six rounds with longer phases. A failing run leaves its history as JSON and
//! prints the path; `kdss_history::History::load` reads it back. `KDSS_PARTITION_CORRUPT=1`
//! replaces the last read's value with one nobody wrote, to see what a failing run reports.

use kdss_common::auth::signer::Signed;
use kdss_common::presign::{PresignParams, presign_url};
use kdss_history::{Budget, Call, History, Outcome, Recorder, Verdict, check};
use kdss_proto::master as pb;
use kdss_proto::master::master_client::MasterClient;
use kdss_testkit::netns::{NetCluster, NetOpts, netns_unavailable};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tonic::transport::Channel;

/// Seconds a client waits for an answer before it counts the call as unknown.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const KEYS: usize = 5;
const CLIENTS: u64 = 5;

/// Skips with the reason, unless KDSS_REQUIRE_NETNS is set (CI runs as root and must run).
fn skip() -> bool {
    let Some(why) = netns_unavailable() else {
        return false;
    };
    assert!(
        std::env::var_os("KDSS_REQUIRE_NETNS").is_none(),
        "KDSS_REQUIRE_NETNS is set but {why}"
    );
    eprintln!("skipped: {why}");
    true
}

/// A small S3 client: presigned URLs over HTTPS trusting the cluster CA.
#[derive(Clone)]
struct S3 {
    http: reqwest::Client,
    endpoint: String,
    access_key: String,
    secret_key: String,
    bucket: String,
}

/// What one HTTP exchange gave: the status and body, or no answer.
type Answer = Result<(u16, Vec<u8>), String>;

impl S3 {
    fn new(c: &NetCluster) -> S3 {
        let mut tls = (*c.tls.rustls()).clone();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(CALL_TIMEOUT)
            .connect_timeout(CALL_TIMEOUT)
            .build()
            .expect("http client");
        S3 {
            http,
            endpoint: c.s3_endpoint(),
            access_key: c.access_key.clone(),
            secret_key: c.secret_key.clone(),
            bucket: c.bucket.clone(),
        }
    }

    async fn send(&self, method: &str, key: &str, body: Option<Vec<u8>>) -> Answer {
        let url = presign_url(&PresignParams {
            endpoint: &self.endpoint,
            region: "us-east-1",
            access_key: &self.access_key,
            secret_key: &self.secret_key,
            method,
            bucket: &self.bucket,
            key,
            expires_secs: 600,
            now: SystemTime::now(),
        })
        .expect("presign");
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, url);
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        Ok((status, body.to_vec()))
    }
}

/// The object body for `value`: the value and a `|`, repeated to `len` bytes (at least
/// once), so a read can tell a whole body of one put from a torn or mixed one. Large
/// bodies go through the storage nodes, small ones stay inline in the metadata.
fn body_of(value: &str, len: usize) -> Vec<u8> {
    let unit = format!("{value}|");
    let n = len.div_ceil(unit.len()).max(1);
    unit.repeat(n).into_bytes()
}

/// The value a body carries, or a marker no put ever writes when it is not a whole body.
fn value_of(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let Some((value, _)) = text.split_once('|') else {
        return format!("torn-body-of-{}-bytes", body.len());
    };
    if body_of(value, body.len()) == body {
        value.to_string()
    } else {
        format!("torn-body-of-{}-bytes", body.len())
    }
}

/// How an answer ends a call. Only answers that prove the call changed nothing count as
/// failed (none here: a 5xx after a timeout inside the gateway may still commit).
fn outcome(call: &Call, a: &Answer) -> Outcome {
    match (call, a) {
        (Call::Put { .. }, Ok((200, _))) => Outcome::Ok,
        (Call::Delete, Ok((204 | 200, _))) => Outcome::Ok,
        (Call::Get, Ok((200, body))) => Outcome::Read {
            value: Some(value_of(body)),
        },
        (Call::Get, Ok((404, body))) if String::from_utf8_lossy(body).contains("NoSuchKey") => {
            Outcome::Read { value: None }
        }
        _ => Outcome::Unknown,
    }
}

/// One client: random calls on the key space until `stop`, one at a time.
async fn client(process: u64, s3: S3, rec: Recorder, stop: Arc<AtomicBool>) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("k{}", rand::random_range(0..KEYS));
        let call = match rand::random_range(0..10) {
            0..4 => Call::Put {
                value: format!("p{process}-{n}"),
            },
            4..8 => Call::Get,
            _ => Call::Delete,
        };
        let pending = rec.invoke(process, &key, call.clone());
        let answer = match &call {
            Call::Put { value } => {
                let len = if n.is_multiple_of(2) { 40_000 } else { 100 };
                s3.send("PUT", &key, Some(body_of(value, len))).await
            }
            Call::Get => s3.send("GET", &key, None).await,
            Call::Delete => s3.send("DELETE", &key, None).await,
        };
        let o = outcome(&call, &answer);
        if o == Outcome::Unknown {
            // A partition makes calls time out; pause so clients do not spin.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        pending.complete(o);
    }
}

/// After the heal: reads every key until it answers (the final state the history must
/// explain; an acknowledged write that was lost shows up here).
async fn final_reads(s3: &S3, rec: &Recorder) {
    for k in 0..KEYS {
        let key = format!("k{k}");
        let start = Instant::now();
        loop {
            let pending = rec.invoke(1000, &key, Call::Get);
            let a = s3.send("GET", &key, None).await;
            let o = outcome(&Call::Get, &a);
            let done = o != Outcome::Unknown;
            pending.complete(o);
            if done {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no answer to a read of {key} two minutes after the heal: {a:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Counts of what the history holds, for the log and docs/partitions.md.
fn summary(h: &History) -> String {
    let count =
        |f: &dyn Fn(&kdss_history::Operation) -> bool| h.ops.iter().filter(|o| f(o)).count();
    format!(
        "{} calls: {} acknowledged puts and deletes, {} reads answered, {} unknown, {} failed",
        h.ops.len(),
        count(&|o| o.outcome == Outcome::Ok),
        count(&|o| matches!(o.outcome, Outcome::Read { .. })),
        count(&|o| o.outcome == Outcome::Unknown),
        count(&|o| o.outcome == Outcome::Failed),
    )
}

/// Waits until the masters agree on one leader in one term, the formerly cut-off
/// `old` among them, and `old` has committed at least `commit` entries.
async fn wait_rejoined(c: &mut NetCluster, old: &str, commit: u64) -> String {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(90) {
        let mut views = Vec::new();
        for i in 1..=3 {
            match c.status_of(&format!("master-{i}")).await {
                Ok(s) => views.push((s.leader_id, s.term, s.commit_index)),
                Err(e) => {
                    last = e.to_string();
                    views.push((0, 0, 0));
                }
            }
        }
        let old_view = views[old.trim_start_matches("master-").parse::<usize>().unwrap() - 1];
        let agree = views
            .iter()
            .all(|v| v.0 != 0 && v.0 == views[0].0 && v.1 == views[0].1);
        if agree && old_view.2 >= commit {
            return format!("{views:?}");
        }
        last = format!("views (leader, term, commit): {views:?} {last}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{old} did not rejoin within 90 s of the heal: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_partition_keeps_s3_linearizable_and_the_leader_rejoins() {
    if skip() {
        return;
    }
    let full = std::env::var("KDSS_PARTITION").is_ok_and(|v| v == "full");
    let (rounds, calm, cut) = if full { (6, 10, 30) } else { (2, 5, 15) };
    let mut c = NetCluster::start(NetOpts {
        // Fail over within the test's call timeout, as a deploy on a real network would.
        gateway_client: vec![("rpc_timeout".into(), "5".into())],
        ..NetOpts::default()
    })
    .await
    .expect("start the namespace cluster");
    let s3 = S3::new(&c);
    let rec = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|p| tokio::spawn(client(p, s3.clone(), rec.clone(), stop.clone())))
        .collect();

    let mut faults = Vec::new();
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_secs(calm)).await;
        let (_, leader) = c.leader().await.expect("a leader before the cut");
        let others: Vec<String> = (1..=3)
            .map(|i| format!("master-{i}"))
            .filter(|m| *m != leader)
            .collect();
        // Even rounds: the leader loses every other host. Odd rounds: only the other
        // masters, so the gateway and nodes still reach a leader that lost its quorum
        // (a stale leader must not answer reads from its own state).
        let fault = if round % 2 == 0 {
            c.net.isolate(&leader).expect("cut the leader off");
            format!("{leader} cut off from every host for {cut}s")
        } else {
            let o: Vec<&str> = others.iter().map(String::as_str).collect();
            c.net
                .partition(&[&leader], &o)
                .expect("cut the leader from the masters");
            format!("{leader} cut off from the other masters for {cut}s")
        };
        eprintln!("[partition] round {round}: {fault}");
        tokio::time::sleep(Duration::from_secs(cut)).await;
        let commit = c
            .status_of(&others[0])
            .await
            .map(|s| s.commit_index)
            .unwrap_or(0);
        c.net.heal().expect("heal");
        let views = wait_rejoined(&mut c, &leader, commit).await;
        eprintln!("[partition] round {round}: healed; {leader} rejoined: {views}");
        faults.push(fault);
    }
    tokio::time::sleep(Duration::from_secs(calm)).await;
    stop.store(true, Ordering::Relaxed);
    for t in clients {
        t.await.expect("client task");
    }
    final_reads(&s3, &rec).await;
    let dead = c.dead();
    assert!(dead.is_empty(), "daemons died: {dead:?}");

    let mut history = rec.history();
    if std::env::var_os("KDSS_PARTITION_CORRUPT").is_some() {
        // Shows what a failing run looks like: the last read now saw a value nobody wrote.
        if let Some(o) = history
            .ops
            .iter_mut()
            .rev()
            .find(|o| matches!(o.outcome, Outcome::Read { .. }))
        {
            o.outcome = Outcome::Read {
                value: Some("never-written".into()),
            };
        }
    }
    eprintln!("[partition] faults: {faults:?}; {}", summary(&history));
    let report = check(&history, Budget::default()).expect("a well-formed history");
    let keep = || {
        let path =
            kdss_testkit::test_tmp_root().join(format!("partition-history-{}.json", c.net.id));
        history.save(&path).expect("save the history");
        path
    };
    match &report.verdict {
        Verdict::Linearizable => {}
        Verdict::NotLinearizable(a) => {
            panic!(
                "history not linearizable (kept at {}):\n{a}",
                keep().display()
            )
        }
        Verdict::GaveUp { key } => {
            panic!(
                "checker gave up on key {key} (history kept at {})",
                keep().display()
            )
        }
    }
    let acked = history
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && matches!(o.call, Call::Put { .. }))
        .count();
    assert!(
        acked > 0,
        "no write was acknowledged: {}",
        summary(&history)
    );
    eprintln!(
        "[partition] linearizable: {} ops checked on {} keys ({} unknown writes)",
        report.checked, report.keys, report.unknown_writes
    );
}

/// Puts `key` with no body and etag `"<value>"` through master `m` (the etag is the value
/// a later read shows).
async fn put_etag(
    m: &mut MasterClient<Signed<Channel>>,
    bucket: &str,
    key: &str,
    value: &str,
) -> Result<(), tonic::Status> {
    m.put_object(pb::PutObjectRequest {
        bucket: bucket.into(),
        key: key.into(),
        size: 0,
        etag: format!("\"{value}\""),
        ..Default::default()
    })
    .await
    .map(|_| ())
}

/// The etag master `m` answers for `key` (as the master itself answers, or proxies).
async fn etag_of(
    m: &mut MasterClient<Signed<Channel>>,
    bucket: &str,
    key: &str,
) -> Result<String, tonic::Status> {
    let r = m
        .head_object(pb::HeadObjectRequest {
            bucket: bucket.into(),
            key: key.into(),
            with_extents: false,
        })
        .await?
        .into_inner();
    Ok(r.info.map(|i| i.etag).unwrap_or_default())
}

/// Issue 17's stale read, made deterministic: the leader is cut off from the other
/// masters only (clients still reach it), the other two elect a new leader, a write
/// goes through the new leader, then a read is aimed at the old leader alone. It must
/// refuse (Unavailable, the "no leader" answer clients retry elsewhere) or return the
/// new value, never the old one; after the heal it rejoins and reads the new value.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_cut_from_the_masters_serves_no_stale_read() {
    if skip() {
        return;
    }
    let mut c = NetCluster::start(NetOpts::default())
        .await
        .expect("start the namespace cluster");
    let call = Duration::from_secs(10);
    let bucket = c.bucket.clone();
    let (old_id, old) = c.leader().await.expect("a leader before the cut");
    let others: Vec<String> = (1..=3)
        .map(|i| format!("master-{i}"))
        .filter(|m| *m != old)
        .collect();
    let mut on_old = c
        .master_client(&old, call)
        .await
        .expect("client of the leader");
    put_etag(&mut on_old, &bucket, "probe", "before-cut")
        .await
        .expect("put through the leader");
    assert_eq!(
        etag_of(&mut on_old, &bucket, "probe").await.expect("read"),
        "\"before-cut\""
    );

    let o: Vec<&str> = others.iter().map(String::as_str).collect();
    c.net
        .partition(&[&old], &o)
        .expect("cut the leader from the masters");
    eprintln!("[stale-read] {old} cut off from {others:?}");
    let start = Instant::now();
    let new = loop {
        let mut found = None;
        for m in &others {
            if let Ok(s) = c.status_of(m).await
                && s.leader_id != 0
                && s.leader_id != old_id
            {
                found = Some(format!("master-{}", s.leader_id));
            }
        }
        if let Some(n) = found {
            break n;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{others:?} elected no new leader within 60 s of the cut"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let mut on_new = c
        .master_client(&new, call)
        .await
        .expect("client of the new leader");
    let start = Instant::now();
    loop {
        match put_etag(&mut on_new, &bucket, "probe", "after-cut").await {
            Ok(()) => break,
            Err(e) => assert!(
                start.elapsed() < Duration::from_secs(60),
                "the new leader {new} took no write within 60 s: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let believes = c.status_of(&old).await.map(|s| (s.leader_id, s.term));
    eprintln!("[stale-read] {new} took the write; {old} sees (leader, term) {believes:?}");

    let answer = etag_of(&mut on_old, &bucket, "probe").await;
    eprintln!("[stale-read] {old} answered the read with {answer:?}");
    match answer {
        Ok(etag) => assert_eq!(
            etag, "\"after-cut\"",
            "{old}, cut off from the masters, answered a stale read after {new} took a write"
        ),
        Err(e) => assert_eq!(
            e.code(),
            tonic::Code::Unavailable,
            "{old} refused the read, but not with the no-leader answer: {e}"
        ),
    }

    let commit = c.status_of(&new).await.map(|s| s.commit_index).unwrap_or(0);
    c.net.heal().expect("heal");
    let views = wait_rejoined(&mut c, &old, commit).await;
    eprintln!("[stale-read] healed; {old} rejoined: {views}");
    let start = Instant::now();
    loop {
        match etag_of(&mut on_old, &bucket, "probe").await {
            Ok(etag) => {
                assert_eq!(etag, "\"after-cut\"", "{old} after the heal");
                break;
            }
            Err(e) => assert!(
                start.elapsed() < Duration::from_secs(60),
                "{old} answered no read within 60 s of rejoining: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let dead = c.dead();
    assert!(dead.is_empty(), "daemons died: {dead:?}");
}
