//! The faults of the history test: what each round cuts into the wire or the clocks, and
//! what is checked while it is in force.

pub mod clocks;

use kdss_testkit::netns::{Impairment, NetCluster};
use std::time::Duration;

/// The faults of the history test, one per round, in this order (repeated when the run
/// has more rounds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// The Raft leader loses every other host.
    IsolateLeader,
    /// The leader loses the other masters only: the gateway and nodes still reach a
    /// leader without a quorum, which must not answer from its own, possibly stale, state.
    LeaderFromMasters,
    /// A follower master and one mount are cut off from every other host: the mount
    /// must answer errors, not hang, and serve again after the heal.
    Minority,
    /// A storage node's link to the gateway and the mounts fails, not to the masters,
    /// which still take it for healthy: writes must go around it and reads of its shards
    /// be degraded. The first time only what the node sends the clients is dropped (their
    /// requests arrive, so it may store a shard nobody hears it acknowledge); the next
    /// time both ways.
    NodeFromClients,
    /// What the leader sends to the other masters is dropped, what they send it still
    /// arrives: it hears their votes and appends but its answers and heartbeats are lost.
    /// The others must elect a leader of their own and the old one follow it once healed.
    LeaderOneWay,
    /// Wall clocks stepped inside the credential window, opposite ways on both sides of
    /// most links: the leader, `node-1` and `mount-1` by [`clocks::SKEW_SECS`], a follower
    /// and the gateway by the opposite (forward the first time, back the next). Every
    /// call they sign or verify is up to twice that off, and they must keep serving.
    ClockSkew,
    /// A slow, lossy network: the links of the leader, the gateway and `mount-1` delay
    /// and drop frames ([`SLOW_LINKS`]). Calls take longer, none may hang or be lost.
    SlowLossyLinks,
    /// `node-1`'s clock stepped outside the credential window while it runs: the masters
    /// must refuse its heartbeats (saying why), count it offline, and writes go around
    /// it; once its clock is right it must come back online by itself.
    NodeClockOutsideWindow,
}

pub const FAULTS: [Fault; 8] = [
    Fault::IsolateLeader,
    Fault::LeaderFromMasters,
    Fault::Minority,
    Fault::NodeFromClients,
    Fault::LeaderOneWay,
    Fault::ClockSkew,
    Fault::SlowLossyLinks,
    Fault::NodeClockOutsideWindow,
];

/// The mount cut off with the minority.
pub const MINORITY_MOUNT: &str = "mount-2";

/// Hosts whose links the test process carries, so [`Fault::SlowLossyLinks`] can impair
/// them: every master (any may be leader), the gateway and one mount.
pub fn shaped_hosts() -> Vec<String> {
    let mut h: Vec<String> = (1..=3).map(|i| format!("master-{i}")).collect();
    h.extend(["s3gw-1".into(), "mount-1".into()]);
    h
}

/// The impairments of [`Fault::SlowLossyLinks`]: (host, or `leader`, delay ms, jitter
/// ms, loss), each way of the host's link; a round trip over two of them is about
/// 100-200 ms with a few per cent of frames lost, a slow WAN.
pub const SLOW_LINKS: [(&str, u64, u64, f64); 3] = [
    ("leader", 30, 10, 0.02),
    ("s3gw-1", 20, 10, 0.02),
    ("mount-1", 50, 20, 0.05),
];

/// A fault in force: what was cut, and the master that must rejoin after the heal.
pub struct Cut {
    pub what: String,
    pub master: String,
    /// Hosts whose clocks were stepped, with the step.
    pub skewed: Vec<(String, i64)>,
}

/// How long `fault` stays in force in a run whose cuts last `cut` seconds. Skewed
/// clocks and slow links need no time to heal from, only enough traffic to show the
/// cluster serving; the node whose clock is outside the window needs the masters'
/// offline grace (6 s) and more.
pub fn span(fault: Fault, cut: u64) -> u64 {
    match fault {
        Fault::ClockSkew | Fault::SlowLossyLinks => cut * 2 / 3,
        Fault::NodeClockOutsideWindow => cut * 4 / 5,
        _ => cut,
    }
}

/// Which pass over [`FAULTS`] round `round` is in (0 first).
pub fn pass(round: usize) -> usize {
    round / FAULTS.len()
}

pub async fn inject(c: &mut NetCluster, fault: Fault, round: usize, cut: u64) -> Cut {
    let (_, leader) = c.leader().await.expect("a leader before the cut");
    let masters: Vec<String> = (1..=3).map(|i| format!("master-{i}")).collect();
    let others: Vec<&str> = masters
        .iter()
        .map(String::as_str)
        .filter(|m| *m != leader)
        .collect();
    let follower = others[round % others.len()].to_string();
    let simple = |what: String, master: String| Cut {
        what,
        master,
        skewed: Vec::new(),
    };
    match fault {
        Fault::IsolateLeader => {
            c.net.isolate(&leader).expect("cut the leader off");
            simple(
                format!("{leader} cut off from every host for {cut}s"),
                leader,
            )
        }
        Fault::LeaderFromMasters => {
            c.net
                .partition(&[&leader], &others)
                .expect("cut the leader from the masters");
            simple(
                format!("{leader} cut off from the other masters for {cut}s"),
                leader,
            )
        }
        Fault::Minority => {
            let side = [follower.as_str(), MINORITY_MOUNT];
            let rest: Vec<String> = c
                .net
                .hosts
                .iter()
                .map(|h| h.name.clone())
                .filter(|n| !side.contains(&n.as_str()))
                .collect();
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            c.net.partition(&side, &rest).expect("cut the minority off");
            simple(
                format!("{follower} and {MINORITY_MOUNT} cut off from the rest for {cut}s"),
                follower,
            )
        }
        Fault::NodeFromClients => {
            let node = format!("node-{}", 1 + round % 5);
            let clients: Vec<String> = c
                .net
                .hosts
                .iter()
                .map(|h| h.name.clone())
                .filter(|n| n.starts_with("s3gw-") || n.starts_with("mount-"))
                .collect();
            let one_way = pass(round).is_multiple_of(2);
            for cl in &clients {
                c.net
                    .cut_one_way(&node, cl)
                    .expect("drop what the node sends a client");
                if !one_way {
                    c.net
                        .cut_one_way(cl, &node)
                        .expect("drop what a client sends the node");
                }
            }
            let how = if one_way {
                "what it sends the gateway and mounts dropped (not the reverse)"
            } else {
                "cut off from the gateway and mounts"
            };
            simple(format!("{node}: {how} for {cut}s"), leader)
        }
        Fault::LeaderOneWay => {
            for o in &others {
                c.net
                    .cut_one_way(&leader, o)
                    .expect("drop what the leader sends the masters");
            }
            simple(
                format!(
                    "what {leader} sends the other masters dropped (not the reverse) for {cut}s"
                ),
                leader,
            )
        }
        Fault::ClockSkew => {
            let s = clocks::skew_of(round);
            let skewed: Vec<(String, i64)> = vec![
                (leader.clone(), s),
                (clocks::SKEWED_NODE.into(), s),
                ("mount-1".into(), s),
                (follower.clone(), -s),
                ("s3gw-1".into(), -s),
            ];
            for (h, secs) in &skewed {
                c.skew_clock(h, *secs).expect("step a clock");
            }
            let list: Vec<String> = skewed.iter().map(|(h, s)| format!("{h} {s:+}s")).collect();
            Cut {
                what: format!("clocks stepped: {} for {cut}s", list.join(", ")),
                master: leader,
                skewed,
            }
        }
        Fault::SlowLossyLinks => {
            let mut list = Vec::new();
            for (host, delay, jitter, loss) in SLOW_LINKS {
                let host = if host == "leader" {
                    leader.as_str()
                } else {
                    host
                };
                let imp = Impairment {
                    delay: Duration::from_millis(delay),
                    jitter: Duration::from_millis(jitter),
                    loss,
                };
                c.net.impair(host, imp).expect("impair a link");
                list.push(format!(
                    "{host} {delay}±{jitter} ms, {:.0} % loss",
                    loss * 100.0
                ));
            }
            simple(
                format!("slow, lossy links: {} for {cut}s", list.join("; ")),
                leader,
            )
        }
        Fault::NodeClockOutsideWindow => {
            let s = clocks::OUTSIDE_SECS * clocks::skew_of(round).signum();
            c.skew_clock(clocks::SKEWED_NODE, s).expect("step a clock");
            Cut {
                what: format!("{}'s clock {s:+}s for {cut}s", clocks::SKEWED_NODE),
                master: leader,
                skewed: vec![(clocks::SKEWED_NODE.into(), s)],
            }
        }
    }
}
