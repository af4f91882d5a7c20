//! Partitions across network namespaces, checked by history: S3 clients (through the
//! gateway) and file clients (through two ksfs mounts, each on a host of its own) put,
//! read, delete, rename and list a few keys of one bucket while faults are cut into the
//! wire and healed: the Raft leader cut off from every host, the leader cut off from the
//! other masters only, a minority (one master and a mount) cut off from the rest, a
//! storage node whose link to the clients (not to the masters) fails one way or both,
//! what the leader sends the other masters dropped (one way only), wall clocks stepped
//! inside the credential window (the leader, a follower, a node, the gateway and a
//! mount), slow and lossy links (delay, jitter and loss on the leader's, the gateway's
//! and a mount's link), and a node's clock stepped outside the window while it runs
//! (see `faults/`). Every call's invocation and
//! completion is recorded; the history (with final reads of every key after the heal,
//! through S3 and through each mount) must be linearizable, which also means no
//! acknowledged write was lost, no read saw a value nobody wrote or one overwritten
//! before the read began, and close-to-open holds across the mounts; lists (through S3
//! and the mounts) must agree with the writes and deletes around them. A cut-off master
//! must rejoin by itself; the mount on the minority side must answer errors while cut
//! off, never hang, and serve again by itself after the heal; the node whose clock left
//! the window must be counted offline and come back by itself once it is right.
//! The clock-skew round also runs `kdss-cli` with its clock 200 s off (outside the
//! window), which must be refused with an error naming the clock skew.
//! A second test makes the stale read those runs found deterministic: a read aimed at a
//! leader cut off from the other masters, after the new leader took a write.
//!
//! CI-sized by default (each fault once, about two minutes of traffic).
//! `KDSS_PARTITION=full` runs each fault twice with longer phases. A failing run leaves its
//! history as JSON and prints the path; `kdss_history::History::load` reads it back.
//! `KDSS_PARTITION_CORRUPT=1` replaces the last read's value with one nobody wrote, to
//! see what a failing run reports. `KDSS_PARTITION_ONLY=<text>` runs only the rounds
//! whose fault's name contains it (`SlowLossy`, `Clock`...), to look at one fault.

mod clients;
mod faults;

use clients::files::{self, FileClient};
use clients::s3::{self, S3};
use clients::summary;
use faults::clocks::{self, SKEWED_NODE};
use faults::{Cut, FAULTS, Fault, MINORITY_MOUNT};
use kdss_common::auth::signer::Signed;
use kdss_history::{Budget, Call, History, Outcome, Recorder, Verdict, check};
use kdss_proto::master as pb;
use kdss_proto::master::master_client::MasterClient;
use kdss_testkit::fuse_unavailable;
use kdss_testkit::netns::{NetCluster, NetOpts, faketime_unavailable, netns_unavailable};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const S3_CLIENTS: u64 = 5;
/// ksfs mounts, each on its own host, and file clients on each.
const MOUNTS: usize = 2;
const FILE_CLIENTS: usize = 2;
/// The mounts' `[client] rpc_timeout`: a master call past it is EIO.
const MOUNT_RPC_TIMEOUT: u64 = 5;
/// Longest a file call may take with the mounts' timeouts: a put is two master calls
/// (create, rename) and a close whose flush is bounded by ksfs's data deadline
/// (`max(rpc_timeout, 15 s) × 4` = 60 s), with slack for the test machine.
const FILE_CALL_BOUND: Duration = Duration::from_secs(60 + 2 * MOUNT_RPC_TIMEOUT + 20);

/// Skips with the reason, unless KDSS_REQUIRE_NETNS is set (CI runs as root and must run).
/// The history test also needs FUSE (its mounts) and libfaketime (its clock-skew round).
fn skip(history_test: bool) -> bool {
    let why = netns_unavailable().or_else(|| {
        history_test
            .then(|| fuse_unavailable().or_else(faketime_unavailable))
            .flatten()
    });
    let Some(why) = why else {
        return false;
    };
    assert!(
        std::env::var_os("KDSS_REQUIRE_NETNS").is_none(),
        "KDSS_REQUIRE_NETNS is set but {why}"
    );
    eprintln!("skipped: {why}");
    true
}

/// What the calls inside a fault window did: (acknowledged writes, answered reads,
/// errors), counting calls both invoked and completed inside it, of the processes
/// `which` selects.
fn inside(h: &History, window: (u64, u64), which: impl Fn(u64) -> bool) -> (usize, usize, usize) {
    let ops: Vec<_> = h
        .ops
        .iter()
        .filter(|o| which(o.process) && o.invoked_ns >= window.0 && o.completed_ns <= window.1)
        .collect();
    let count = |f: &dyn Fn(&kdss_history::Operation) -> bool| ops.iter().filter(|o| f(o)).count();
    (
        count(&|o| o.outcome == Outcome::Ok && matches!(o.call, Call::Put { .. })),
        count(&|o| matches!(o.outcome, Outcome::Read { .. } | Outcome::Listed { .. })),
        count(&|o| matches!(o.outcome, Outcome::Unknown | Outcome::Failed)),
    )
}

/// Whether a process is a file client of mount `name` (`mount-2`...).
fn on_mount(name: &str) -> impl Fn(u64) -> bool + Copy {
    let m: usize = name
        .trim_start_matches("mount-")
        .parse()
        .expect("a mount name");
    move |process| (1..=FILE_CLIENTS).any(|i| files::process_id(m, i) == process)
}

/// The calls of the processes `which` selects that ended inside `window`, wherever they
/// began: (answered, ended in an error). A cut-off mount answering errors rather than
/// hanging; a slowed mount still answering.
fn completed_inside(
    h: &History,
    window: (u64, u64),
    which: impl Fn(u64) -> bool,
) -> (usize, usize) {
    let (mut answered, mut errors) = (0, 0);
    for o in h
        .ops
        .iter()
        .filter(|o| which(o.process) && o.completed_ns >= window.0 && o.completed_ns <= window.1)
    {
        if matches!(o.outcome, Outcome::Unknown | Outcome::Failed) {
            errors += 1;
        } else {
            answered += 1;
        }
    }
    (answered, errors)
}

/// The calls in progress of the file clients `which` selects, and for how long.
fn in_flight(fc: &[FileClient], which: impl Fn(u64) -> bool) -> Vec<(u64, Duration, String)> {
    fc.iter()
        .filter(|f| which(f.process))
        .filter_map(|f| f.in_flight().map(|(d, what)| (f.process, d, what)))
        .collect()
}

/// A file call running longer than every deadline of its mount allows, if any.
fn hung(fc: &[FileClient]) -> Option<String> {
    in_flight(fc, |_| true)
        .into_iter()
        .find(|(_, d, _)| *d >= FILE_CALL_BOUND)
        .map(|(p, d, what)| {
            format!("file client {p}: {what} has run for {d:?}, past every deadline of its mount")
        })
}

/// The calls of the processes `which` selects that overlap `window`, one a line.
fn overlapping(h: &History, window: (u64, u64), which: impl Fn(u64) -> bool) -> String {
    h.ops
        .iter()
        .filter(|o| which(o.process) && o.invoked_ns <= window.1 && o.completed_ns >= window.0)
        .map(|o| {
            format!(
                "    p{} {:?} {:?} -> {:?} [{:.3}s .. {:.3}s] (cut {:.3}s .. {:.3}s)",
                o.process,
                o.call,
                o.key,
                o.outcome,
                o.invoked_ns as f64 / 1e9,
                o.completed_ns as f64 / 1e9,
                window.0 as f64 / 1e9,
                window.1 as f64 / 1e9
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits (bounded) until a call of the processes `which` selects, begun after `since`,
/// completed as `served` asks: the cluster serving them again by itself after a heal.
async fn wait_served(
    rec: &Recorder,
    since: u64,
    which: impl Fn(u64) -> bool,
    served: impl Fn(&Outcome, &Call) -> bool,
    what: &str,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let done = rec
            .history()
            .ops
            .iter()
            .any(|o| which(o.process) && o.invoked_ns >= since && served(&o.outcome, &o.call));
        if done {
            return Ok(start.elapsed());
        }
        if start.elapsed() > FILE_CALL_BOUND {
            return Err(format!("{what} within {FILE_CALL_BOUND:?} of the heal"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until a client of the minority mount completed a call without error that it
/// began after `since`.
async fn wait_minority_serves(rec: &Recorder, since: u64) -> Result<Duration, String> {
    let answered = |o: &Outcome, _: &Call| {
        matches!(
            o,
            Outcome::Ok | Outcome::Read { .. } | Outcome::Listed { .. }
        )
    };
    let what = format!("{MINORITY_MOUNT} served no call");
    wait_served(rec, since, on_mount(MINORITY_MOUNT), answered, &what).await
}

/// Waits until some client's write begun after `since` was acknowledged.
async fn wait_write_acked(rec: &Recorder, since: u64) -> Result<Duration, String> {
    let acked = |o: &Outcome, c: &Call| *o == Outcome::Ok && matches!(c, Call::Put { .. });
    wait_served(rec, since, |_| true, acked, "no write was acknowledged").await
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
async fn partitions_keep_s3_and_mounts_linearizable_and_cut_hosts_recover() {
    if skip(true) {
        return;
    }
    let full = std::env::var("KDSS_PARTITION").is_ok_and(|v| v == "full");
    let (rounds, calm, cut) = if full {
        (2 * FAULTS.len(), 10, 30)
    } else {
        (FAULTS.len(), 5, 15)
    };
    // The long run makes three times the calls: over twice the keys, each key's history
    // (and the rename pairs' joint ones) stays within the checker's budget.
    clients::set_keys(if full { 10 } else { 5 });
    let rpc = MOUNT_RPC_TIMEOUT.to_string();
    let mut c = NetCluster::start(NetOpts {
        // Fail over within the test's call timeout, as a deploy on a real network would.
        gateway_client: vec![("rpc_timeout".into(), "5".into())],
        mounts: MOUNTS,
        // No kernel caching of names and attributes: every open asks the cluster, the
        // strict close-to-open this test holds the mounts to. With the default caches a
        // name renamed away by another mount still leads to its inode, now under the
        // other name, for up to a second (docs/partitions.md).
        mount_extra_toml: "entry_ttl = 0.0\nattr_ttl = 0.0\n".into(),
        mount_client: vec![("rpc_timeout".into(), rpc)],
        skewable: clocks::skewable_hosts(),
        shaped: faults::shaped_hosts(),
        ..NetOpts::default()
    })
    .await
    .expect("start the namespace cluster");
    let s3 = S3::new(&c);
    let rec = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..S3_CLIENTS)
        .map(|p| tokio::spawn(s3::client(p, s3.clone(), rec.clone(), stop.clone())))
        .collect();
    let mut file_clients = Vec::new();
    for m in 1..=MOUNTS {
        let root = c.mount_path(&format!("mount-{m}"));
        for i in 1..=FILE_CLIENTS {
            let p = files::process_id(m, i);
            file_clients.push(FileClient::start(
                p,
                root.clone(),
                rec.clone(),
                stop.clone(),
            ));
        }
    }

    let mut faults = Vec::new();
    // What the rounds found wrong; reported with the history kept, after the check.
    let mut problems: Vec<String> = Vec::new();
    // A debugging aid: only the rounds whose fault's name contains this.
    let only = std::env::var("KDSS_PARTITION_ONLY").ok();
    for round in 0..rounds {
        let fault = FAULTS[round % FAULTS.len()];
        if let Some(o) = &only
            && !format!("{fault:?}").contains(o.as_str())
        {
            continue;
        }
        tokio::time::sleep(Duration::from_secs(calm)).await;
        let span = faults::span(fault, cut);
        let Cut {
            what,
            master,
            skewed,
        } = faults::inject(&mut c, fault, round, span).await;
        let begin = rec.now_ns();
        eprintln!("[partition] round {round}: {what}");
        tokio::time::sleep(Duration::from_secs(span)).await;
        let stuck = in_flight(&file_clients, |p| {
            fault == Fault::Minority && on_mount(MINORITY_MOUNT)(p)
        });
        if let Some(p) = hung(&file_clients) {
            problems.push(format!("round {round}: {p}"));
        }
        let others: Vec<String> = (1..=3)
            .map(|i| format!("master-{i}"))
            .filter(|m| *m != master)
            .collect();
        let commit = c
            .status_of(&others[0])
            .await
            .map(|s| s.commit_index)
            .unwrap_or(0);
        let end = rec.now_ns();
        let mut note_in_force = String::new();
        match fault {
            Fault::ClockSkew => {
                // Still skewed: the clocks must show it, every master must keep up with
                // the leader and the node must still count as online.
                for p in clocks::offset_problems(&s3, &c, &skewed, span).await {
                    problems.push(format!("round {round}: {p}"));
                }
                let follower = &skewed
                    .iter()
                    .find(|(h, _)| h.starts_with("master") && *h != master)
                    .expect("a skewed follower")
                    .0;
                note_in_force = wait_rejoined(&mut c, follower, commit).await;
                if let Err(e) =
                    clocks::wait_node(&mut c, SKEWED_NODE, true, Duration::from_secs(1)).await
                {
                    problems.push(format!("round {round}: its clock skewed, {e}"));
                }
            }
            Fault::NodeClockOutsideWindow => {
                for p in clocks::offset_problems(&s3, &c, &skewed, span).await {
                    problems.push(format!("round {round}: {p}"));
                }
                // Its heartbeats are refused: the leader must count it offline by now.
                match clocks::wait_node(&mut c, SKEWED_NODE, false, Duration::from_secs(1)).await {
                    Ok(_) => note_in_force = format!("{SKEWED_NODE} offline"),
                    Err(e) => problems.push(format!(
                        "round {round}: with its clock outside the window, {e}"
                    )),
                }
                if !clocks::log_names_skew(&c, SKEWED_NODE) {
                    problems.push(format!(
                        "round {round}: {SKEWED_NODE}'s log does not say its calls were \
                         refused for clock skew"
                    ));
                }
            }
            Fault::SlowLossyLinks => {
                let dropped: Vec<String> = c
                    .net
                    .hosts
                    .iter()
                    .map(|h| (h.name.clone(), c.net.dropped(&h.name)))
                    .filter(|(_, d)| *d > 0)
                    .map(|(h, d)| format!("{h} {d}"))
                    .collect();
                note_in_force = format!("frames dropped so far: {}", dropped.join(", "));
            }
            _ => {}
        }
        for (h, _) in &skewed {
            c.skew_clock(h, 0).expect("set a clock right");
        }
        if fault == Fault::ClockSkew && round < FAULTS.len() {
            problems.extend(clocks::clock_window_problems(&c).await);
        }
        c.net.heal().expect("heal");
        let back = match fault {
            Fault::Minority => Some(wait_minority_serves(&rec, end).await),
            Fault::LeaderOneWay => Some(wait_write_acked(&rec, end).await),
            Fault::NodeClockOutsideWindow => {
                Some(clocks::wait_node(&mut c, SKEWED_NODE, true, Duration::from_secs(60)).await)
            }
            _ => None,
        };
        let views = wait_rejoined(&mut c, &master, commit).await;
        let h = rec.history();
        let window = (begin, end);
        let all = inside(&h, window, |_| true);
        eprintln!(
            "[partition] round {round}: healed; {master} rejoined: {views}; inside the cut \
             (acknowledged writes, answered reads, errors): all {all:?}; {note_in_force}"
        );
        let mut note = format!("{what}: inside the cut {all:?}");
        if !note_in_force.is_empty() {
            note += &format!("; {note_in_force}");
        }
        if let Some(back) = &back {
            eprintln!("[partition] round {round}: back {back:?} after the heal");
            if let Err(e) = back {
                problems.push(format!("round {round}: {e}"));
            }
            note += &format!("; back {back:?} after the heal");
        }
        match fault {
            Fault::Minority => {
                let minority = on_mount(MINORITY_MOUNT);
                let m = inside(&h, window, minority);
                let (_, errors) = completed_inside(&h, window, minority);
                eprintln!(
                    "[partition] round {round}: {MINORITY_MOUNT} inside the cut {m:?}, \
                     in flight at its end {stuck:?}; its calls overlapping the cut:\n{}",
                    overlapping(&h, window, minority)
                );
                if errors == 0 {
                    problems.push(format!(
                        "round {round}: {MINORITY_MOUNT}, cut off with a minority, answered no \
                         call with an error within the {span}s cut (calls inside: {m:?}; in \
                         flight at its end: {stuck:?})"
                    ));
                }
                note += &format!("; {MINORITY_MOUNT}: {errors} errors answered inside");
            }
            Fault::NodeFromClients | Fault::NodeClockOutsideWindow => {
                if all.0 == 0 {
                    problems.push(format!(
                        "round {round}: no write was acknowledged while {what}: writes did \
                         not go around the node"
                    ));
                }
            }
            Fault::ClockSkew | Fault::SlowLossyLinks => {
                // Served through S3 and through the skewed or slowed mount. Over the slow
                // links a file put takes seconds (several master calls and a stripe of
                // shard puts, each a few round trips of 150 ms or more with losses to
                // retransmit), so for the mount count the calls it answered inside the
                // round, wherever they began.
                let (by_mount, _) = completed_inside(&h, window, on_mount("mount-1"));
                note += &format!("; mount-1 answered {by_mount} calls inside");
                if all.0 == 0 || all.1 == 0 || by_mount == 0 {
                    problems.push(format!(
                        "round {round}: with {what}, writes or reads were not served: all \
                         {all:?}, mount-1 answered {by_mount} calls"
                    ));
                }
            }
            Fault::IsolateLeader | Fault::LeaderFromMasters | Fault::LeaderOneWay => {}
        }
        faults.push(note);
    }
    tokio::time::sleep(Duration::from_secs(calm)).await;
    stop.store(true, Ordering::Relaxed);
    for t in clients {
        t.await.expect("client task");
    }
    for f in file_clients {
        let joined = tokio::task::spawn_blocking(move || f.join(FILE_CALL_BOUND)).await;
        if let Err(e) = joined.expect("join a file client") {
            problems.push(e);
        }
    }
    s3::final_reads(&s3, &rec).await;
    for m in 1..=MOUNTS {
        let root = c.mount_path(&format!("mount-{m}"));
        let r = rec.clone();
        let p = files::process_id(m, 0);
        tokio::task::spawn_blocking(move || files::final_reads(&root, p, &r, FILE_CALL_BOUND))
            .await
            .expect("final reads through a mount");
    }
    let dead = c.dead();
    assert!(dead.is_empty(), "daemons died: {dead:?}");
    // At most one node is out of reach in any round, so the rest always hold a stripe's
    // k+m disks: a refusal for want of disks means the leader lost track of healthy nodes.
    let gateway_log =
        std::fs::read_to_string(c.dir.path().join("logs").join("s3gw-1.log")).unwrap_or_default();
    let no_disks: Vec<&str> = gateway_log
        .lines()
        .filter(|l| l.contains("InsufficientStorage"))
        .collect();
    if let Some(first) = no_disks.first() {
        problems.push(format!(
            "the gateway refused {} writes for want of writable disks while at most one node \
             was out of reach; the first: {first}",
            no_disks.len()
        ));
    }

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
    eprintln!(
        "[partition] faults: {faults:#?}\n[partition] {}",
        summary(&history)
    );
    let report = check(&history, Budget::default()).expect("a well-formed history");
    let keep = || {
        let path =
            kdss_testkit::test_tmp_root().join(format!("partition-history-{}.json", c.net.id));
        history.save(&path).expect("save the history");
        path
    };
    if !problems.is_empty() {
        panic!(
            "{} (history kept at {}; it is {})",
            problems.join("\n"),
            keep().display(),
            match &report.verdict {
                Verdict::Linearizable => "linearizable",
                Verdict::GaveUp { .. } => "too large for the checker's budget",
                Verdict::NotLinearizable(_) | Verdict::BadList(_) => "not linearizable either",
            }
        );
    }
    match &report.verdict {
        Verdict::Linearizable => {}
        Verdict::NotLinearizable(a) => {
            panic!(
                "history not linearizable (kept at {}):\n{a}",
                keep().display()
            )
        }
        Verdict::BadList(a) => {
            panic!(
                "a list contradicts the history (kept at {}):\n{a}",
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
    let acked = |files: bool| {
        history
            .ops
            .iter()
            .filter(|o| o.outcome == Outcome::Ok && matches!(o.call, Call::Put { .. }))
            .filter(|o| files::is_file_process(o.process) == files)
            .count()
    };
    assert!(
        acked(false) > 0 && acked(true) > 0,
        "no write was acknowledged through S3 or through the mounts: {}",
        summary(&history)
    );
    eprintln!(
        "[partition] linearizable: {} ops checked on {} keys ({} unknown writes), {} lists \
         agree with them",
        report.checked, report.keys, report.unknown_writes, report.lists
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
    if skip(false) {
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
