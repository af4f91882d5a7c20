//! What the pages and the API show, read from the masters: one function per view, each
//! returning a serializable struct, so the JSON API and the server-rendered page of a view
//! show the same thing. Health (Healthy / Degraded / Critical, with why) is derived here.

use crate::backend::Backend;
use crate::error::ConsoleError;
use kdss_proto::master as pb;
use serde::Serialize;

/// Overall state and the reasons for it.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// "Healthy", "Degraded" or "Critical".
    pub level: &'static str,
    /// Why, one line each (empty when healthy).
    pub reasons: Vec<String>,
}

/// The dashboard's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub health: Health,
    pub nodes_online: usize,
    pub nodes_total: usize,
    pub disks_active: usize,
    pub disks_total: usize,
    pub capacity_used: u64,
    pub capacity_total: u64,
    pub capacity_pct: f64,
    pub leader_id: u64,
    pub masters: Vec<MasterRow>,
    pub repair_queued_stripes: u64,
}

/// One master of the Raft group.
#[derive(Debug, Clone, Serialize)]
pub struct MasterRow {
    pub id: u64,
    pub grpc: String,
    pub http: String,
    pub leader: bool,
    pub reachable: bool,
}

/// One storage node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    pub id: String,
    pub grpc: String,
    pub online: bool,
    /// Failure domain as the master reports it (`zone / rack`; `default` for a level the
    /// node did not declare), empty only from a master that predates failure domains.
    pub location: String,
    pub heartbeat_age_ms: i64,
    pub disks: usize,
    pub used: u64,
    pub capacity: u64,
}

/// One disk, with the master's state and the node's last report.
#[derive(Debug, Clone, Serialize)]
pub struct DiskRow {
    pub node_id: String,
    /// Hex, as kdss-cli prints it.
    pub disk_id: String,
    pub path: String,
    /// online, suspect, offline or draining (the master's state).
    pub status: &'static str,
    pub reason: String,
    pub node_online: bool,
    pub heartbeat_age_ms: i64,
    pub used: u64,
    pub capacity: u64,
    pub used_pct: f64,
    pub io_errors: u64,
    pub checksum_errors: u64,
    pub smart: String,
    pub read_p99_us: u64,
    pub write_p99_us: u64,
    pub mapped_shards: u64,
}

/// One bucket with its policy and contents.
#[derive(Debug, Clone, Serialize)]
pub struct BucketRow {
    pub name: String,
    pub owner: String,
    /// "k+m".
    pub ec: String,
    pub objects: u64,
    pub bytes: u64,
    /// True when counting stopped at [`COUNT_LIMIT`] objects.
    pub counted_partly: bool,
}

/// One user; never its secret.
#[derive(Debug, Clone, Serialize)]
pub struct UserRow {
    pub name: String,
    pub access_key: String,
    pub role: &'static str,
}

/// Objects counted per bucket at most (listing pages through the keys).
pub const COUNT_LIMIT: u64 = 100_000;

/// Name of a master role as the console spells it.
pub fn role_name(r: pb::Role) -> &'static str {
    match r {
        pb::Role::Admin => "admin",
        pb::Role::Operator => "operator",
        pb::Role::Viewer => "viewer",
        pb::Role::User | pb::Role::Unspecified => "user",
    }
}

/// The master role of a console spelling.
pub fn parse_role(s: &str) -> Result<pb::Role, ConsoleError> {
    match s {
        "admin" => Ok(pb::Role::Admin),
        "operator" => Ok(pb::Role::Operator),
        "viewer" => Ok(pb::Role::Viewer),
        "user" => Ok(pb::Role::User),
        other => Err(ConsoleError::BadRequest(format!(
            "role {other:?}: use admin, operator, viewer or user"
        ))),
    }
}

fn status_name(s: pb::DiskStatus) -> &'static str {
    match s {
        pb::DiskStatus::Online | pb::DiskStatus::Unspecified => "online",
        pb::DiskStatus::Suspect => "suspect",
        pb::DiskStatus::Offline => "offline",
        pb::DiskStatus::Draining => "draining",
    }
}

/// Nodes as this master sees them.
pub fn nodes(st: &pb::ClusterStatusReply) -> Vec<NodeRow> {
    let now = kdss_common::time::now_ms() as i64;
    st.nodes
        .iter()
        .map(|n| NodeRow {
            id: n.node_id.clone(),
            grpc: n.grpc_addr.clone(),
            online: n.online,
            location: [n.zone.as_str(), n.rack.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" / "),
            heartbeat_age_ms: (now - n.last_heartbeat_ms).max(0),
            disks: n.disks.len(),
            used: n.disks.iter().map(|d| d.used_bytes).sum(),
            capacity: n.disks.iter().map(|d| d.capacity_bytes).sum(),
        })
        .collect()
}

/// Every disk.
pub async fn disks(b: &Backend) -> Result<Vec<DiskRow>, ConsoleError> {
    let r = b.read().list_disks(pb::ListDisksRequest {}).await?;
    Ok(r.disks
        .into_iter()
        .map(|e| {
            let status = status_name(e.status());
            let i = e.info.unwrap_or_default();
            let h = i.health.unwrap_or_default();
            DiskRow {
                node_id: e.node_id,
                disk_id: format!("{:016x}", i.disk_id),
                path: i.path,
                status,
                reason: e.reason,
                node_online: e.node_online,
                heartbeat_age_ms: e.heartbeat_age_ms,
                used: i.used_bytes,
                capacity: i.capacity_bytes,
                used_pct: pct(i.used_bytes, i.capacity_bytes),
                io_errors: i.io_errors,
                checksum_errors: i.checksum_errors,
                smart: if h.smart_status.is_empty() {
                    "not reported".into()
                } else {
                    h.smart_status
                },
                read_p99_us: h.read_p99_us,
                write_p99_us: h.write_p99_us,
                mapped_shards: e.mapped_shards,
            }
        })
        .collect())
}

fn pct(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
    }
}

/// The dashboard: counts, capacity and health with its reasons.
pub async fn overview(b: &Backend, default_ec: (u32, u32)) -> Result<Overview, ConsoleError> {
    let st = b.read().cluster_status(pb::ClusterStatusRequest {}).await?;
    let disks = disks(b).await?;
    let repair = b.read().repair_status(pb::RepairStatusRequest {}).await?;
    let nodes = nodes(&st);
    let masters: Vec<MasterRow> = st
        .masters
        .iter()
        .map(|m| MasterRow {
            id: m.id,
            grpc: m.grpc_addr.clone(),
            http: m.http_addr.clone(),
            leader: m.leader,
            reachable: m.reachable,
        })
        .collect();
    let capacity_pct = pct(st.raw_used_bytes, st.raw_capacity_bytes);
    let active = |d: &&DiskRow| d.status == "online" && d.node_online;
    let mut critical = Vec::new();
    let mut degraded = Vec::new();
    if st.leader_id == 0 {
        critical.push("no master leader: the cluster cannot change anything".to_string());
    }
    if repair.unrepairable_stripes > 0 {
        critical.push(format!(
            "{} stripes have fewer than k readable shards (data lost)",
            repair.unrepairable_stripes
        ));
    }
    let offline: Vec<&NodeRow> = nodes.iter().filter(|n| !n.online).collect();
    if offline.len() > default_ec.1 as usize {
        critical.push(format!(
            "{} nodes offline, more than the default parity m = {}",
            offline.len(),
            default_ec.1
        ));
    }
    if st.capacity_reject_pct > 0 && capacity_pct >= f64::from(st.capacity_reject_pct) {
        critical.push(format!(
            "capacity {capacity_pct:.1}% used: writes refused from {}%",
            st.capacity_reject_pct
        ));
    } else if st.capacity_alert_pct > 0 && capacity_pct >= f64::from(st.capacity_alert_pct) {
        degraded.push(format!(
            "capacity {capacity_pct:.1}% used (alert from {}%)",
            st.capacity_alert_pct
        ));
    }
    for n in &offline {
        degraded.push(format!(
            "node {} offline (no heartbeat for {} s)",
            n.id,
            n.heartbeat_age_ms / 1000
        ));
    }
    for d in disks.iter().filter(|d| d.status != "online") {
        degraded.push(format!(
            "disk {} on {} is {}",
            d.disk_id, d.node_id, d.status
        ));
    }
    for m in masters.iter().filter(|m| !m.reachable) {
        degraded.push(format!("master {} unreachable", m.id));
    }
    if repair.queued_stripes > 0 {
        degraded.push(format!(
            "{} stripes waiting for repair",
            repair.queued_stripes
        ));
    }
    let level = if !critical.is_empty() {
        "Critical"
    } else if !degraded.is_empty() {
        "Degraded"
    } else {
        "Healthy"
    };
    critical.extend(degraded);
    Ok(Overview {
        health: Health {
            level,
            reasons: critical,
        },
        nodes_online: nodes.len() - offline.len(),
        nodes_total: nodes.len(),
        disks_active: disks.iter().filter(active).count(),
        disks_total: disks.len(),
        capacity_used: st.raw_used_bytes,
        capacity_total: st.raw_capacity_bytes,
        capacity_pct,
        leader_id: st.leader_id,
        masters,
        repair_queued_stripes: repair.queued_stripes,
    })
}

/// Every bucket with its policy, object count and bytes.
pub async fn buckets(b: &Backend) -> Result<Vec<BucketRow>, ConsoleError> {
    let list = b.read().list_buckets(pb::ListBucketsRequest {}).await?;
    let mut out = Vec::with_capacity(list.buckets.len());
    for bk in list.buckets {
        let (mut objects, mut bytes, mut after) = (0u64, 0u64, String::new());
        let counted_partly = loop {
            let page = b
                .read()
                .list_objects(pb::ListObjectsRequest {
                    bucket: bk.name.clone(),
                    start_after: after.clone(),
                    max_keys: 1000,
                    ..Default::default()
                })
                .await?;
            for o in page.objects.iter().filter(|o| !o.is_dir) {
                objects += 1;
                bytes += o.size;
            }
            match page.objects.last() {
                Some(last) if page.is_truncated => after = last.key.clone(),
                _ => break false,
            }
            if objects >= COUNT_LIMIT {
                break true;
            }
        };
        out.push(BucketRow {
            name: bk.name,
            owner: bk.owner,
            ec: format!("{}+{}", bk.k, bk.m),
            objects,
            bytes,
            counted_partly,
        });
    }
    Ok(out)
}

/// Every user, without secrets.
pub async fn users(b: &Backend) -> Result<Vec<UserRow>, ConsoleError> {
    let r = b.read().list_users(pb::ListUsersRequest {}).await?;
    Ok(r.users
        .into_iter()
        .map(|u| UserRow {
            role: role_name(u.role()),
            name: u.name,
            access_key: u.access_key,
        })
        .collect())
}

/// Human-readable bytes (binary units).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
