//! Renders the daemons' TOML configs from a [`Layout`]. The keys are the ones the
//! daemons document (master.toml, storage.toml, s3gw.toml in deploy/).

use crate::layout::{Layout, MasterLayout, NodeLayout};
use crate::spec::ClusterSpec;

fn quoted_list(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", q.join(", "))
}

/// master.toml for one master.
pub fn master_toml(l: &Layout, m: &MasterLayout, spec: &ClusterSpec) -> String {
    let peers: Vec<String> = l
        .masters
        .iter()
        .map(|p| format!("{{ id = {}, grpc_addr = {:?} }}", p.id, p.grpc))
        .collect();
    let (k, mm) = l.ec.split_once('+').unwrap_or(("5", "2"));
    format!(
        "[master]\nid = {}\ngrpc_addr = {:?}\nhttp_addr = {:?}\ndata_dir = {:?}\n\n\
         [cluster]\nid = {:?}\nsecret = {:?}\npeers = [{}]\n\n\
         [admin]\naccess_key = {:?}\nsecret_key = {:?}\n\n\
         [ec]\ndata_shards = {k}\nparity_shards = {mm}\n\n{}",
        m.id,
        m.grpc,
        m.http,
        m.data.display().to_string(),
        l.cluster_id,
        l.secret,
        peers.join(", "),
        l.admin_access_key,
        l.admin_secret_key,
        spec.master_extra_toml,
    )
}

/// storage.toml for one node.
pub fn storage_toml(l: &Layout, n: &NodeLayout, spec: &ClusterSpec) -> String {
    let rack = n
        .rack
        .as_ref()
        .map(|r| format!("rack = {r:?}\n"))
        .unwrap_or_default();
    let mut s = format!(
        "[node]\nid = {:?}\ngrpc_addr = {:?}\nhttp_addr = {:?}\n{rack}\n\
         [cluster]\nid = {:?}\nsecret = {:?}\nmasters = {}\n\n",
        n.id,
        n.grpc,
        n.http,
        l.cluster_id,
        l.secret,
        quoted_list(&l.master_addrs()),
    );
    for d in &n.disks {
        s.push_str(&format!(
            "[[disk]]\npath = {:?}\n\n",
            d.display().to_string()
        ));
    }
    s.push_str(&spec.storage_extra_toml);
    s
}

/// s3gw.toml for one gateway; `metrics` is its metrics listener, if any.
pub fn s3gw_toml(l: &Layout, listen: &str, metrics: Option<&str>) -> String {
    let metrics = metrics
        .map(|m| format!("metrics_listen = {m:?}\n"))
        .unwrap_or_default();
    format!(
        "[s3]\nlisten = {listen:?}\n{metrics}region = {:?}\n\n[cluster]\nmasters = {}\nsecret = {:?}\n",
        l.region,
        quoted_list(&l.master_addrs()),
        l.secret,
    )
}
