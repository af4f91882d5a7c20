//! Three masters as real processes on loopback: leader failover under a stream of writes,
//! a follower catching up by snapshot, and a restart of the whole group.

mod common;

use common::{Cluster, list_dir, make_bucket, mkdir};
use kdss_common::rpc_error::{errno, errno_of};
use kdss_master::bench::Client;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tonic::Code;

/// Writes `names` one by one, moving to the next master on any transport/leader error and
/// retrying the same name there. Returns the names acknowledged (EEXIST on a retry means
/// the first attempt was applied before its answer was lost) and the longest stall.
async fn write_all(clients: &[Client], root: u64, names: &[String]) -> (Vec<String>, Duration) {
    let mut acked = Vec::new();
    let mut at = 0usize;
    let mut longest = Duration::ZERO;
    for name in names {
        let started = Instant::now();
        let mut retried = false;
        loop {
            match clients[at % clients.len()]
                .clone()
                .mkdir(mkdir(root, name))
                .await
            {
                Ok(_) => break,
                Err(e) if retried && errno_of(&e) == errno::EEXIST => break,
                Err(e) if e.code() == Code::AlreadyExists => panic!("{name} created twice: {e}"),
                Err(_) => {
                    retried = true;
                    at += 1;
                    assert!(
                        started.elapsed() < Duration::from_secs(30),
                        "no progress on {name}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        longest = longest.max(started.elapsed());
        acked.push(name.clone());
    }
    (acked, longest)
}

fn clients(c: &Cluster) -> Vec<Client> {
    c.masters.iter().map(|m| m.client()).collect()
}

async fn assert_listing(c: &mut Client, root: u64, want: &[String]) {
    // Unavailable (a leadership change in progress) is retried, as clients do.
    let deadline = Instant::now() + Duration::from_secs(15);
    let got = loop {
        match list_dir(c, "bkt", root).await {
            Ok(v) => break v,
            Err(e) if e.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("listing failed: {e}"),
        }
    };
    let set: HashSet<&String> = got.iter().collect();
    assert_eq!(set.len(), got.len(), "a name is listed twice");
    for n in want {
        assert!(set.contains(n), "acknowledged {n} is missing");
    }
    assert_eq!(
        got.len(),
        want.len(),
        "entries appeared that were never written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_during_writes_loses_nothing_and_applies_nothing_twice() {
    let mut c = Cluster::start(3, 100_000);
    let root = make_bucket(&c).await;
    let cl = clients(&c);
    let names: Vec<String> = (0..400).map(|i| format!("d{i:04}")).collect();
    let writer = {
        let (cl, names) = (cl.clone(), names.clone());
        tokio::spawn(async move { write_all(&cl, root, &names).await })
    };
    // Kill the leader once the stream is well under way.
    let leader = c.wait_leader(Duration::from_secs(10)).await;
    let mut probe = c.masters[leader].client();
    loop {
        let n = list_dir(&mut probe, "bkt", root)
            .await
            .map(|v| v.len())
            .unwrap_or(0);
        if n >= 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed_at = Instant::now();
    c.masters[leader].kill();
    let new_leader = c.wait_leader(Duration::from_secs(10)).await;
    let failover = killed_at.elapsed();
    assert_ne!(new_leader, leader);
    let (acked, stall) = writer.await.unwrap();
    eprintln!("new leader after {failover:?}; longest write stall {stall:?}");
    assert!(
        failover < Duration::from_secs(10),
        "failover took {failover:?}"
    );
    let mut l = c.masters[new_leader].client();
    assert_listing(&mut l, root, &acked).await;
    // The old leader comes back as a follower and converges on the same state.
    c.masters[leader].start();
    let other = (0..3).find(|&i| i != leader && i != new_leader).unwrap();
    c.masters[other].kill();
    c.masters[new_leader].kill();
    c.masters[new_leader].start();
    let l = c.wait_leader(Duration::from_secs(20)).await;
    let mut l = c.masters[l].client();
    assert_listing(&mut l, root, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_down_for_a_while_catches_up_by_snapshot() {
    // Snapshot every 50 entries, keep 20: a follower 300 entries behind needs a snapshot.
    let mut c = Cluster::start(3, 50);
    let root = make_bucket(&c).await;
    let leader = c.wait_leader(Duration::from_secs(10)).await;
    let f = (0..3).find(|&i| i != leader).unwrap();
    c.masters[f].kill();
    let names: Vec<String> = (0..300).map(|i| format!("s{i:04}")).collect();
    let (acked, _) = write_all(&clients(&c), root, &names).await;
    c.masters[f].start();
    // Wait until the follower applied as far as the leader.
    let target = {
        let (_, body) = common::http_get(&c.masters[leader].http, "/health")
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["applied_index"].as_u64().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((_, body)) = common::http_get(&c.masters[f].http, "/health").await
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
            && v["applied_index"].as_u64().unwrap_or(0) >= target
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "follower did not catch up\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        c.log_of(f).contains("installing snapshot"),
        "caught up without a snapshot"
    );
    // With the third member gone, the caught-up follower and the leader form the quorum;
    // then the leader goes too and the caught-up follower must lead with everything.
    let other = (0..3).find(|&i| i != leader && i != f).unwrap();
    c.masters[other].kill();
    let mut cf = c.masters[f].client();
    assert_listing(&mut cf, root, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_master_keeps_the_state() {
    let mut c = Cluster::start(3, 64);
    let root = make_bucket(&c).await;
    let names: Vec<String> = (0..150).map(|i| format!("r{i:04}")).collect();
    let (acked, _) = write_all(&clients(&c), root, &names).await;
    // A clean stop of one, a crash of the others.
    c.masters[0].stop().await;
    c.masters[1].kill();
    c.masters[2].kill();
    for m in &mut c.masters {
        m.start();
    }
    let l = c.wait_leader(Duration::from_secs(30)).await;
    let mut cl = c.masters[l].client();
    assert_listing(&mut cl, root, &acked).await;
    // And the group still takes writes.
    let (more, _) = write_all(&clients(&c), root, &["after".to_string()]).await;
    assert_eq!(more.len(), 1);
}

/// Unmounts a test's tmpfs when dropped (lazily: a killed master may still hold files).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `at`, or None where this process may not mount (not root).
    fn mount(at: &std::path::Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "kdss-test"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_whose_disk_fills_exits_and_comes_back_with_every_acknowledged_write() {
    let mut c = Cluster::configure(1, 10_000);
    let data = c.masters[0].dir.join("data");
    let Some(_fs) = Tmpfs::mount(&data, "8m") else {
        assert!(
            unsafe { libc::geteuid() } != 0,
            "root could not mount a tmpfs"
        );
        eprintln!("skipped: mounting a small filesystem for the master needs root");
        return;
    };
    c.masters[0].start();
    let root = make_bucket(&c).await;
    let before: Vec<String> = (0..20).map(|i| format!("before-{i:02}")).collect();
    let (mut acked, _) = write_all(&clients(&c), root, &before).await;
    // Take every free byte of the master's filesystem.
    let filler = data.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0xa5u8; 64 << 10];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let mut client = c.masters[0].client();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = c.masters[0].exited() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the master kept running on a full disk ({} writes acknowledged)\n{}",
            acked.len(),
            c.logs()
        );
        let name = format!("full-{:04}-{}", acked.len(), "n".repeat(200));
        let call = client.mkdir(mkdir(root, &name));
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(5), call).await {
            acked.push(name);
        }
    };
    assert!(!status.success(), "exited with {status}");
    let log = c.log_of(0);
    assert!(
        log.contains("Raft stopped on a fatal error"),
        "the log does not say why the master stopped\n{}",
        c.logs()
    );
    // With room again, a restart has everything that was acknowledged.
    std::fs::remove_file(&filler).unwrap();
    c.masters[0].start();
    c.wait_leader(Duration::from_secs(30)).await;
    let mut cl = c.masters[0].client();
    let got = {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match list_dir(&mut cl, "bkt", root).await {
                Ok(v) => break v,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("listing after the restart: {e}\n{}", c.logs()),
            }
        }
    };
    for n in &acked {
        assert!(got.contains(n), "acknowledged {} is lost", &n[..9]);
    }
    let (more, _) = write_all(&clients(&c), root, &["after".to_string()]).await;
    assert_eq!(more.len(), 1, "the restarted master takes writes");
}
