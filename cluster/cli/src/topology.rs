//! The failure-domain block of `status` and `node list`: zones, racks, hosts and disks as
//! the online nodes report them, and for each EC policy the buckets use, the highest level
//! whose loss a stripe survives, with a warning when the cluster has more racks (or zones)
//! than one but too few of them to keep m shards per domain (29+3 needs 11 racks).

use kdss_common::topology::{self, Level, Location};
use kdss_proto::master as pb;
use kdss_proto::storage::DiskState;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One EC policy in use and the buckets that use it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Policy {
    /// Data shards.
    pub k: u32,
    /// Parity shards: most shards one failure domain may hold.
    pub m: u32,
    /// Buckets with this policy.
    pub buckets: Vec<String>,
}

/// The distinct policies of `buckets`, each with its bucket names.
pub fn policies(buckets: &[pb::BucketInfo]) -> Vec<Policy> {
    let mut by: BTreeMap<(u32, u32), Vec<String>> = BTreeMap::new();
    for b in buckets {
        by.entry((b.k, b.m)).or_default().push(b.name.clone());
    }
    by.into_iter()
        .map(|((k, m), buckets)| Policy { k, m, buckets })
        .collect()
}

/// Online nodes with where they sit and how many disks can take shards.
fn members(st: &pb::ClusterStatusReply) -> Vec<(Location, String, usize)> {
    st.nodes
        .iter()
        .filter(|n| n.online)
        .map(|n| {
            let disks = n
                .disks
                .iter()
                .filter(|d| d.state == DiskState::Online as i32)
                .count();
            (
                Location::from_labels(&n.zone, &n.rack),
                n.node_id.clone(),
                disks,
            )
        })
        .collect()
}

/// The summary as JSON and as text (a table of racks, then one line per policy and the
/// warnings).
pub fn summary(st: &pb::ClusterStatusReply, policies: &[Policy]) -> (Value, String) {
    let nodes = members(st);
    let mut racks: BTreeMap<&Location, (usize, usize)> = BTreeMap::new();
    for (loc, _, disks) in &nodes {
        let e = racks.entry(loc).or_default();
        e.0 += 1;
        e.1 += disks;
    }
    let zones: std::collections::BTreeSet<&str> =
        nodes.iter().map(|(l, _, _)| l.zone.as_str()).collect();
    let disks: usize = nodes.iter().map(|n| n.2).sum();
    let count = |l: Level| match l {
        Level::Zone => zones.len(),
        Level::Rack => racks.len(),
        Level::Host => nodes.len(),
        Level::Disk => disks,
    };
    // The level an operator expects a stripe to survive: the highest with more than one
    // domain (one zone is no failure domain).
    let expected = Level::DOMAINS
        .into_iter()
        .find(|&l| count(l) > 1)
        .unwrap_or(Level::Host);
    let mut text = format!(
        "\ntopology: {} zones, {} racks, {} hosts, {} disks online\n",
        zones.len(),
        racks.len(),
        nodes.len(),
        disks
    );
    let rows: Vec<Vec<String>> = racks
        .iter()
        .map(|(l, (n, d))| vec![l.zone.clone(), l.rack.clone(), n.to_string(), d.to_string()])
        .collect();
    text.push_str(&crate::view::table(
        &["ZONE", "RACK", "NODES", "DISKS"],
        &rows,
    ));
    let view = nodes.iter().map(|(l, id, d)| (l, id.as_str(), *d));
    let mut pjs = Vec::new();
    for p in policies {
        let (width, m) = ((p.k + p.m) as usize, p.m as usize);
        let level = topology::honoured_level(view.clone(), width, m);
        let needed = topology::domains_needed(width, m);
        let names = p.buckets.join(", ");
        let warning = warning(p, level, expected, needed, count(expected));
        match &warning {
            Some(w) => text.push_str(&format!("WARNING: {w}\n")),
            None => text.push_str(&format!(
                "EC {}+{} (buckets {names}): a stripe survives the loss of any one {level}\n",
                p.k, p.m
            )),
        }
        pjs.push(json!({
            "ec": format!("{}+{}", p.k, p.m), "buckets": p.buckets,
            "survives": (level != Level::Disk).then(|| level.to_string()),
            "expected": expected.to_string(), "needed": needed, "have": count(expected),
            "warning": warning,
        }));
    }
    let js = json!({
        "zones": zones.len(), "racks": racks.len(), "hosts": nodes.len(), "disks": disks,
        "domains": racks.iter().map(|(l, (n, d))| json!({"zone": l.zone, "rack": l.rack, "nodes": n, "disks": d})).collect::<Vec<_>>(),
        "policies": pjs,
    });
    (js, text)
}

/// Why a policy's stripes would not survive losing one domain of the expected level.
fn warning(
    p: &Policy,
    level: Level,
    expected: Level,
    needed: usize,
    have: usize,
) -> Option<String> {
    if level <= expected {
        return None;
    }
    let what = if level == Level::Disk {
        "not even by host: losing one node can lose data".to_string()
    } else {
        format!("by {level} instead: losing a whole {expected} can lose data")
    };
    Some(format!(
        "EC {}+{} (buckets {}) needs {needed} {} to keep at most {} shards of a stripe per \
         {expected}, the cluster has {have} online; stripes are spread {what}",
        p.k,
        p.m,
        p.buckets.join(", "),
        expected.plural(),
        p.m,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, rack: &str, disks: usize) -> pb::NodeStatus {
        pb::NodeStatus {
            node_id: id.into(),
            online: true,
            rack: rack.into(),
            disks: (0..disks)
                .map(|_| kdss_proto::storage::DiskInfo {
                    state: DiskState::Online as i32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn twenty_nine_plus_three_on_four_racks_warns_and_five_plus_two_does_not() {
        let st = pb::ClusterStatusReply {
            nodes: (0..12)
                .map(|i| node(&format!("n{i}"), &format!("r{}", i % 4), 4))
                .collect(),
            ..Default::default()
        };
        let ps = vec![
            Policy {
                k: 5,
                m: 2,
                buckets: vec!["small".into()],
            },
            Policy {
                k: 29,
                m: 3,
                buckets: vec!["wide".into()],
            },
        ];
        let (js, text) = summary(&st, &ps);
        assert_eq!(js["racks"], 4);
        assert!(
            text.contains("EC 5+2 (buckets small): a stripe survives the loss of any one rack"),
            "{text}"
        );
        assert!(
            text.contains("WARNING: EC 29+3 (buckets wide) needs 11 racks")
                && text.contains("has 4 online"),
            "{text}"
        );
        assert!(text.contains("spread by host instead"), "{text}");
        assert_eq!(js["policies"][1]["survives"], "host");
        // Unlabelled: hosts are the domain; 5+2 on 3 hosts cannot keep 2 per host.
        let st = pb::ClusterStatusReply {
            nodes: (0..3).map(|i| node(&format!("n{i}"), "", 3)).collect(),
            ..Default::default()
        };
        let (js, text) = summary(&st, &ps[..1]);
        assert!(
            text.contains("needs 4 hosts") && text.contains("not even by host"),
            "{text}"
        );
        assert_eq!(js["policies"][0]["survives"], Value::Null);
    }
}
