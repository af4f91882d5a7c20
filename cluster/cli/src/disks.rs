//! `kdss-cli disk list|offline|online|drain`: every disk with the master's state and why,
//! and an operator's hand on that state. Also the per-disk rows `status` prints.

use crate::commands::connect;
use crate::settings::Settings;
use crate::trash::utc;
use crate::view::{self, View};
use clap::{Args, Subcommand};
use kdss_proto::master as pb;
use kdss_proto::master::DiskStatus;
use kdss_proto::storage::DiskState;
use serde_json::{Value, json};

/// `disk` subcommands.
#[derive(Subcommand)]
pub enum DiskCmd {
    /// List every disk with node, state (and why), heartbeat age, latency and usage.
    List,
    /// Take a disk out of service: no new shards, read last. Stays until `disk online`.
    Offline(SetArgs),
    /// Put a disk back in service (also clears a state the health pass set).
    Online(SetArgs),
    /// Drain a disk: no new shards while its data is moved off.
    Drain(SetArgs),
}

/// The disk and why.
#[derive(Args)]
pub struct SetArgs {
    /// Disk id as `disk list` prints it (hex).
    pub id: String,
    /// Why, shown by `disk list`.
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// The node's own word on a disk (it stops writing to full or failed disks by itself).
fn device_state(d: i32) -> &'static str {
    match DiskState::try_from(d).unwrap_or(DiskState::Unspecified) {
        DiskState::Online => "online",
        DiskState::Readonly => "readonly",
        DiskState::Failed => "failed",
        DiskState::Unspecified => "unknown",
    }
}

fn status_name(s: i32) -> &'static str {
    match DiskStatus::try_from(s).unwrap_or(DiskStatus::Unspecified) {
        DiskStatus::Unspecified | DiskStatus::Online => "online",
        DiskStatus::Suspect => "suspect",
        DiskStatus::Offline => "offline",
        DiskStatus::Draining => "draining",
    }
}

/// A disk of `status` as JSON (the node's report only).
pub fn disk_json(node: &str, d: &kdss_proto::storage::DiskInfo) -> Value {
    json!({
        "node": node, "disk_id": format!("{:016x}", d.disk_id), "path": d.path,
        "state": device_state(d.state), "capacity_bytes": d.capacity_bytes, "used_bytes": d.used_bytes,
        "dead_bytes": d.dead_bytes, "free_bytes": d.free_bytes, "records": d.records,
        "io_errors": d.io_errors, "checksum_errors": d.checksum_errors,
    })
}

/// The disk rows of `status`: JSON and table rows from the nodes' reports.
pub fn disk_rows(st: &pb::ClusterStatusReply) -> (Vec<Value>, Vec<Vec<String>>) {
    let mut js = Vec::new();
    let mut rows = Vec::new();
    for n in &st.nodes {
        for d in &n.disks {
            js.push(disk_json(&n.node_id, d));
            rows.push(vec![
                n.node_id.clone(),
                format!("{:016x}", d.disk_id),
                device_state(d.state).into(),
                view::bytes(d.used_bytes),
                view::bytes(d.capacity_bytes),
                format!("{}%", use_pct(d)),
                d.path.clone(),
            ]);
        }
    }
    (js, rows)
}

fn use_pct(d: &kdss_proto::storage::DiskInfo) -> u64 {
    (d.used_bytes * 100)
        .checked_div(d.capacity_bytes)
        .unwrap_or(0)
}

fn entry_json(e: &pb::DiskEntry) -> Value {
    let d = e.info.clone().unwrap_or_default();
    let mut v = disk_json(&e.node_id, &d);
    let h = d.health.clone().unwrap_or_default();
    let extra = json!({
        "state": status_name(e.status),
        "mapped_shards": e.mapped_shards,
        "corrupt_shards": d.corrupt_shards.len() + usize::from(d.corrupt_shards_more),
        "reason": e.reason,
        "since_ns": e.since_ns,
        "set_by": e.set_by,
        "device_state": device_state(d.state),
        "node_online": e.node_online,
        "heartbeat_age_ms": e.heartbeat_age_ms,
        "health": {
            "window_ms": h.window_ms,
            "read_p50_us": h.read_p50_us, "read_p99_us": h.read_p99_us, "read_samples": h.read_samples,
            "write_p50_us": h.write_p50_us, "write_p99_us": h.write_p99_us, "write_samples": h.write_samples,
            "smart": if h.smart_status.is_empty() { "not reported" } else { h.smart_status.as_str() },
            "smart_failing": h.smart_failing,
        },
    });
    if let (Some(o), Some(x)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(x.clone());
    }
    v
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

fn list_view(r: &pb::ListDisksReply) -> View {
    let rows: Vec<Vec<String>> = r
        .disks
        .iter()
        .map(|e| {
            let d = e.info.clone().unwrap_or_default();
            let h = d.health.clone().unwrap_or_default();
            let age = if e.heartbeat_age_ms < 0 {
                "never".to_string()
            } else {
                format!("{}s", e.heartbeat_age_ms / 1000)
            };
            let why = match (e.reason.is_empty(), e.set_by.as_str()) {
                (true, "") => String::new(),
                (true, by) => format!("({by})"),
                (false, by) => format!("{} ({by}, since {})", e.reason, utc(e.since_ns)),
            };
            vec![
                e.node_id.clone(),
                format!("{:016x}", d.disk_id),
                status_name(e.status).into(),
                age,
                format!("{}/{}", ms(h.read_p99_us), ms(h.write_p99_us)),
                (d.io_errors + d.checksum_errors).to_string(),
                view::bytes(d.used_bytes),
                format!("{}%", use_pct(&d)),
                e.mapped_shards.to_string(),
                if h.smart_status.is_empty() {
                    "-".into()
                } else {
                    h.smart_status.clone()
                },
                why,
            ]
        })
        .collect();
    View {
        json: Value::Array(r.disks.iter().map(entry_json).collect()),
        text: view::table(
            &[
                "NODE",
                "DISK",
                "STATE",
                "HEARD",
                "P99 R/W ms",
                "ERRORS",
                "USED",
                "USE%",
                "SHARDS",
                "SMART",
                "WHY",
            ],
            &rows,
        ),
    }
}

/// Runs a `disk` subcommand.
pub async fn disk(s: &Settings, cmd: DiskCmd) -> anyhow::Result<View> {
    let c = connect(s).await?;
    let (a, status) = match cmd {
        DiskCmd::List => {
            return Ok(list_view(
                &c.master().list_disks(pb::ListDisksRequest {}).await?,
            ));
        }
        DiskCmd::Offline(a) => (a, DiskStatus::Offline),
        DiskCmd::Online(a) => (a, DiskStatus::Online),
        DiskCmd::Drain(a) => (a, DiskStatus::Draining),
    };
    let disk_id = u64::from_str_radix(a.id.trim_start_matches("0x"), 16).map_err(|e| {
        anyhow::anyhow!(
            "disk id {:?} is not hex as `disk list` prints it: {e}",
            a.id
        )
    })?;
    let e = c
        .master()
        .set_disk_state(pb::SetDiskStateRequest {
            disk_id,
            status: status as i32,
            reason: a.reason,
        })
        .await?;
    Ok(list_view(&pb::ListDisksReply { disks: vec![e] }))
}
