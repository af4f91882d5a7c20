//! A leader that loses its quorum with writes in Raft, is then brought up to date by a
//! snapshot and later elected again must take writes again (issue 17, run c1e58: from
//! round 5 on no write was acknowledged for three minutes while reads were answered).

mod common;

use common::{Cluster, Master, http_get, make_bucket, mkdir};
use kdss_common::rpc_error::{errno, errno_of};
use kdss_proto::master as pb;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::time::{sleep, timeout};
use tonic::Code;

/// Longer than a refused read barrier takes (twice election_timeout_max, 2.8 s in the
/// harness), so a call still unanswered after it was taken into Raft.
const IN_RAFT: Duration = Duration::from_secs(5);

/// The leader among the masters `which`, asking only them, each call bounded (a stopped
/// master does not answer).
async fn leader_among(c: &Cluster, which: &[usize], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    let status = |i: usize| async move {
        let mut cl = c.masters[i].client();
        match timeout(
            Duration::from_secs(2),
            cl.cluster_status(pb::ClusterStatusRequest {}),
        )
        .await
        {
            Ok(Ok(r)) => Some(r.into_inner().leader_id),
            _ => None,
        }
    };
    loop {
        for &i in which {
            if let Some(id) = status(i).await
                && let Some(j) = which.iter().copied().find(|&j| c.masters[j].id == id)
                && status(j).await == Some(id)
            {
                return j;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no leader among {which:?} within {within:?}\n{}",
            c.logs()
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// While it lives, packets to `ip` are dropped (a blackhole route in the local table):
/// new connections to it fail and established ones go silent, as behind a partition, so
/// nothing sent to a master there waits in its socket to be read later.
struct Blackhole(String);

impl Blackhole {
    fn route(verb: &str, ip: &str) -> bool {
        std::process::Command::new("ip")
            .args([
                "route",
                verb,
                "blackhole",
                &format!("{ip}/32"),
                "table",
                "local",
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// None without the rights (root) or `ip` to add the route.
    fn new(ip: &str) -> Option<Blackhole> {
        Self::route("add", ip).then(|| Blackhole(ip.to_string()))
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        Self::route("del", &self.0);
    }
}

fn host(m: &Master) -> &str {
    m.grpc.rsplit_once(':').expect("host:port").0
}

async fn applied(m: &Master) -> Option<u64> {
    let (_, body) = http_get(&m.http, "/health").await.ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["applied_index"].as_u64()
}

/// Creates `names` through the masters `which`, moving on after any error.
async fn write_through(c: &Cluster, which: &[usize], root: u64, names: &[String]) {
    let mut at = 0usize;
    for name in names {
        let started = Instant::now();
        let mut retried = false;
        loop {
            let mut cl = c.masters[which[at % which.len()]].client();
            match timeout(IN_RAFT, cl.mkdir(mkdir(root, name))).await {
                Ok(Ok(_)) => break,
                Ok(Err(e)) if retried && errno_of(&e) == errno::EEXIST => break,
                _ => {
                    retried = true;
                    at += 1;
                    assert!(
                        started.elapsed() < Duration::from_secs(30),
                        "no progress on {name}\n{}",
                        c.logs()
                    );
                    sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_pending_writes_a_snapshot_replaced_takes_writes_when_elected_again() {
    // Masters on 127.0.0.201-203, so that one can be cut off by address (a route left by
    // a run that was killed is removed first).
    for i in 201..=203 {
        Blackhole::route("del", &format!("127.0.0.{i}"));
    }
    match Blackhole::new("127.0.0.201") {
        Some(probe) => drop(probe),
        None => {
            eprintln!("skipped: adding a blackhole route needs root and iproute2");
            return;
        }
    }
    // Snapshot every 50 entries, keep 20: a master 200 entries behind gets a snapshot.
    let mut c = Cluster::start_apart(3, 50, 201);
    let root = make_bucket(&c).await;
    let l = c.wait_leader(Duration::from_secs(10)).await;
    let f: Vec<usize> = (0..3).filter(|&i| i != l).collect();

    // Writers stream mkdirs at the leader; both followers die under them. What the leader
    // took into Raft within its read lease stays in its log, never committed.
    let stop = Arc::new(AtomicBool::new(false));
    let in_raft = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..16 {
        let (mut cl, stop, in_raft) = (c.masters[l].client(), stop.clone(), in_raft.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if timeout(IN_RAFT, cl.mkdir(mkdir(root, &format!("w{w}-{n}"))))
                    .await
                    .is_err()
                {
                    in_raft.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    sleep(Duration::from_millis(500)).await;
    c.masters[f[0]].kill();
    c.masters[f[1]].kill();
    sleep(IN_RAFT + Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(
        in_raft.load(Ordering::Relaxed) > 0,
        "no write was left in Raft when the followers died: nothing was set up\n{}",
        c.logs()
    );

    // The old leader is cut off (it neither sends, being stopped, nor receives, its
    // address being blackholed) while the other two elect a leader and write far past its
    // log, so it can only be brought up by a snapshot.
    // Its uncommitted entries follow what it applied: the snapshot it gets must end well
    // past them, or installing it truncates them (which answers their writers).
    let behind = applied(&c.masters[l])
        .await
        .expect("the old leader's health");
    let cut = Blackhole::new(host(&c.masters[l])).expect("cut the old leader off");
    c.masters[l].signal(libc::SIGSTOP);
    c.masters[f[0]].start();
    c.masters[f[1]].start();
    let n = leader_among(&c, &f, Duration::from_secs(30)).await;
    let mut chunk = 0;
    while applied(&c.masters[n]).await.unwrap_or(0) < behind + 200 {
        let names: Vec<String> = (0..50).map(|i| format!("s{chunk}-{i:02}")).collect();
        write_through(&c, &f, root, &names).await;
        chunk += 1;
    }
    drop(cut);
    c.masters[l].signal(libc::SIGCONT);
    let target = applied(&c.masters[n])
        .await
        .expect("the new leader's health");
    let deadline = Instant::now() + Duration::from_secs(30);
    while applied(&c.masters[l]).await.unwrap_or(0) < target {
        assert!(
            Instant::now() < deadline,
            "the old leader did not catch up\n{}",
            c.logs()
        );
        sleep(Duration::from_millis(50)).await;
    }
    assert!(
        c.log_of(l).contains("installing snapshot"),
        "the old leader caught up without a snapshot\n{}",
        c.logs()
    );

    // Elect the old leader again: while another master leads, kill it, let the other two
    // elect one of them, and bring it back (a restarted leader may resume its old term).
    for _ in 0..20 {
        let cur = c.wait_leader(Duration::from_secs(20)).await;
        if cur == l {
            break;
        }
        c.masters[cur].kill();
        c.wait_leader(Duration::from_secs(20)).await;
        c.masters[cur].start();
        sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        c.wait_leader(Duration::from_secs(20)).await,
        l,
        "could not make the old leader lead again"
    );

    eprintln!("old leader had applied {behind}; the others wrote {chunk} × 50 names past it");
    // It must take a write, not hold it forever behind the batches it lost.
    let mut cl = c.masters[l].client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match timeout(IN_RAFT, cl.mkdir(mkdir(root, "after"))).await {
            Ok(Ok(_)) => break,
            Ok(Err(e)) if e.code() == Code::Unavailable && Instant::now() < deadline => {
                sleep(Duration::from_millis(100)).await
            }
            Ok(Err(e)) => panic!("write through the re-elected leader failed: {e}"),
            Err(_) => panic!(
                "a write through the re-elected leader (master {}) was not answered within \
                 {IN_RAFT:?}: its proposer still waits for the batches it lost\n{}",
                c.masters[l].id,
                c.logs()
            ),
        }
    }
}
