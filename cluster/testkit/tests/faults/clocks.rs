//! Clocks of the history test: steps inside and outside the credential window, and how
//! the test sees a daemon's clock.

use super::super::clients::s3::S3;
use kdss_testkit::netns::{NetCluster, faketime_env};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far the clock-skew round steps each skewed clock, one side forward and the other
/// back: two hosts on opposite sides are twice this apart, 100 s, inside the 120 s window
/// of `kdss_common::auth::MAX_SKEW_MS` and far from the milliseconds of NTP-synchronised
/// hosts.
pub const SKEW_SECS: i64 = 50;
/// How far the outside-the-window round steps `SKEWED_NODE`: past the 120 s window.
pub const OUTSIDE_SECS: i64 = 200;
/// A clock `kdss-cli` may have (inside the window against masters on the true time).
const CLI_SKEW_SECS: i64 = 90;
/// The storage node whose clock the clock rounds step (started under libfaketime).
pub const SKEWED_NODE: &str = "node-1";

/// Hosts whose daemons run under libfaketime: every master (any may be leader or the
/// follower), the skewed node, the gateway and `mount-1`.
pub fn skewable_hosts() -> Vec<String> {
    let mut h: Vec<String> = (1..=3).map(|i| format!("master-{i}")).collect();
    h.extend([SKEWED_NODE.into(), "s3gw-1".into(), "mount-1".into()]);
    h
}

/// The clock step of the clock rounds in round `round`: forward, then back the next pass.
pub fn skew_of(round: usize) -> i64 {
    if super::pass(round).is_multiple_of(2) {
        SKEW_SECS
    } else {
        -SKEW_SECS
    }
}

/// Runs `kdss-cli status` against the masters with its wall clock `offset` (libfaketime):
/// whether it succeeded, and its stderr.
pub async fn cli_status_at(c: &NetCluster, offset: &str) -> (bool, String) {
    let cli = kdss_testkit::bin_path("kdss-cli").expect("kdss-cli built");
    let masters: Vec<String> = (1..=3)
        .map(|i| c.master_addr(&format!("master-{i}")))
        .collect();
    let mut cmd = tokio::process::Command::new(cli);
    cmd.arg("status")
        .env("KDSS_MASTERS", masters.join(","))
        .env("KDSS_ACCESS_KEY", &c.access_key)
        .env("KDSS_SECRET_KEY", &c.secret_key)
        .env("KDSS_CA", &c.ca)
        .env_remove("KDSS_CONFIG")
        .envs(faketime_env(offset))
        .kill_on_drop(true);
    let o = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("kdss-cli status answered within 60 s")
        .expect("run kdss-cli");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A client whose clock is off by less than the credential window is served; one off by
/// more is refused with an error that says the clocks disagree (so an operator looks at
/// NTP, not at the keys). What is wrong, if anything.
pub async fn clock_window_problems(c: &NetCluster) -> Vec<String> {
    let mut problems = Vec::new();
    let inside = format!("{CLI_SKEW_SECS:+}s");
    let (ok, err) = cli_status_at(c, &inside).await;
    if !ok {
        problems.push(format!(
            "kdss-cli with its clock {inside} (inside the window) was refused: {err}"
        ));
    }
    for outside in ["+200s", "-200s"] {
        let (ok, err) = cli_status_at(c, outside).await;
        eprintln!("[partition] kdss-cli status with its clock {outside}: ok {ok}, {err}");
        if ok || !err.contains("clock skew") {
            problems.push(format!(
                "kdss-cli with its clock {outside} (outside the 120 s window) should be \
                 refused with an error naming the clock skew; succeeded {ok}, said: {err}"
            ));
        }
    }
    problems
}

/// How many seconds host `name`'s wall clock is ahead of the test's (negative: behind),
/// read from the `Date` header of its HTTP side (whole seconds, so within a second);
/// `None` for a host without one (a mount).
pub async fn clock_offset(s3: &S3, c: &NetCluster, name: &str) -> Option<Result<i64, String>> {
    let url = if name.starts_with("master") {
        c.http_url(name, "/health")
    } else if name.starts_with("node") {
        c.http_url(name, "/metrics")
    } else if name.starts_with("s3gw") {
        format!("{}/", c.s3_endpoint())
    } else {
        return None;
    };
    let before = SystemTime::now();
    let secs = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    };
    Some(
        s3.date_of(&url)
            .await
            .map(|theirs| secs(theirs) - secs(before)),
    )
}

/// The skewed daemons' `Date` headers must show their steps: the skew really is in the
/// daemons. What is wrong, if anything. `span` is how long the clocks have been off.
pub async fn offset_problems(
    s3: &S3,
    c: &NetCluster,
    skewed: &[(String, i64)],
    span: u64,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (h, want) in skewed {
        // The Date header is cached and refreshed only once the wall clock passes the
        // next second after the last refresh (hyper), so after a step back it stands
        // still at the time of the step: `-span` after the round, not `want`.
        let seen = if *want < 0 { -(span as i64) } else { *want };
        let Some(off) = clock_offset(s3, c, h).await else {
            continue;
        };
        eprintln!("[partition] {h}'s clock is {off:?} s off");
        match off {
            Ok(off) if (off - seen).abs() <= 2 => {}
            other => problems.push(format!(
                "{h}'s clock should be {want:+}s off, its Date header says {other:?}"
            )),
        }
    }
    problems
}

/// Whether the leader counts node `id` online.
pub async fn node_online(c: &mut NetCluster, id: &str) -> anyhow::Result<bool> {
    let s = c.admin().await?.status().await?;
    Ok(s.nodes.iter().any(|n| n.node_id == id && n.online))
}

/// Waits up to `bound` until the leader's view of node `id` is `online`; how long it took.
pub async fn wait_node(
    c: &mut NetCluster,
    id: &str,
    online: bool,
    bound: Duration,
) -> Result<Duration, String> {
    let start = std::time::Instant::now();
    let mut last = String::new();
    while start.elapsed() < bound {
        match node_online(c, id).await {
            Ok(o) if o == online => return Ok(start.elapsed()),
            Ok(o) => last = format!("online {o}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!(
        "{id} not {} within {bound:?}: {last}",
        if online { "online" } else { "offline" }
    ))
}

/// Whether `host`'s log names the clock skew: what an operator reads to learn why a node
/// with a wrong clock went offline.
pub fn log_names_skew(c: &NetCluster, host: &str) -> bool {
    let log = c.dir.path().join("logs").join(format!("{host}.log"));
    std::fs::read_to_string(log).is_ok_and(|t| t.contains("clock skew"))
}
