//! The commands. Each returns a [`View`]; all master calls go through kdss-client.

use crate::disks::disk_rows;
use crate::settings::Settings;
use crate::view::{self, View};
use anyhow::Context;
use kdss_client::{Client, ClientConfig};
use kdss_proto::master as pb;
use serde_json::{Value, json};

/// A client on the settings' masters, signed in with its keys.
pub async fn connect(s: &Settings) -> anyhow::Result<Client> {
    s.tls.install().context("[tls]")?;
    let cfg = ClientConfig {
        masters: s.masters.clone(),
        access_key: s.access_key.clone(),
        secret_key: s.secret_key.clone(),
        ..ClientConfig::default()
    };
    Client::connect(cfg)
        .await
        .with_context(|| format!("connecting to masters {:?}", s.masters))
}

async fn cluster_status(s: &Settings) -> anyhow::Result<pb::ClusterStatusReply> {
    let c = connect(s).await?;
    Ok(c.master()
        .cluster_status(pb::ClusterStatusRequest {})
        .await?)
}

/// The failure-domain summary of `st` against the EC policies of the buckets the caller
/// can list (none when listing fails: the summary then shows the topology only).
async fn topology_block(s: &Settings, st: &pb::ClusterStatusReply) -> (Value, String) {
    let buckets = match connect(s).await {
        Ok(c) => c
            .master()
            .list_buckets(pb::ListBucketsRequest {})
            .await
            .map(|r| r.buckets)
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    crate::topology::summary(st, &crate::topology::policies(&buckets))
}

/// `status`.
pub async fn status(s: &Settings) -> anyhow::Result<View> {
    let st = cluster_status(s).await?;
    let leader = st.masters.iter().find(|m| m.id == st.leader_id);
    let disks: usize = st.nodes.iter().map(|n| n.disks.len()).sum();
    let online = st.nodes.iter().filter(|n| n.online).count();
    let masters: Vec<Value> = st
        .masters
        .iter()
        .map(|m| json!({"id": m.id, "grpc": m.grpc_addr, "http": m.http_addr, "leader": m.leader, "reachable": m.reachable}))
        .collect();
    let (disk_js, disk_rows) = disk_rows(&st);
    let (topo_js, topo_text) = topology_block(s, &st).await;
    let json = json!({
        "leader": leader.map(|m| json!({"id": m.id, "grpc": m.grpc_addr})),
        "leader_id": st.leader_id, "term": st.term, "commit_index": st.commit_index,
        "masters": masters,
        "nodes": st.nodes.iter().map(|n| json!({"id": n.node_id, "grpc": n.grpc_addr, "online": n.online, "disks": n.disks.len(), "zone": n.zone, "rack": n.rack})).collect::<Vec<_>>(),
        "topology": topo_js,
        "disks": disk_js,
        "raw_capacity_bytes": st.raw_capacity_bytes, "raw_used_bytes": st.raw_used_bytes,
        "capacity": capacity_json(&st),
    });
    let mut t = String::new();
    t.push_str(&format!(
        "leader: {} (term {}, commit index {})\n",
        leader
            .map(|m| format!("master {} at {}", m.id, m.grpc_addr))
            .unwrap_or_else(|| "none".into()),
        st.term,
        st.commit_index
    ));
    let mrows: Vec<Vec<String>> = st
        .masters
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.grpc_addr.clone(),
                if m.leader { "leader" } else { "follower" }.into(),
                if m.reachable { "up" } else { "unreachable" }.into(),
            ]
        })
        .collect();
    t.push_str(&view::table(&["MASTER", "GRPC", "ROLE", "STATE"], &mrows));
    t.push_str(&format!(
        "\nnodes: {online}/{} online, {disks} disks\n",
        st.nodes.len()
    ));
    t.push_str(&view::table(
        &["NODE", "DISK", "STATE", "USED", "CAPACITY", "USE%", "PATH"],
        &disk_rows,
    ));
    let usable: Vec<String> = kdss_common::EcPolicy::PRESETS
        .iter()
        .map(|p| {
            format!(
                "{p}: {}",
                view::bytes((st.raw_capacity_bytes as f64 * p.efficiency()) as u64)
            )
        })
        .collect();
    t.push_str(&format!(
        "\nraw capacity {}, used {}\nusable capacity by EC policy: {}\n",
        view::bytes(st.raw_capacity_bytes),
        view::bytes(st.raw_used_bytes),
        usable.join(", "),
    ));
    t.push_str(&topo_text);
    if let Some(w) = capacity_warning(&st) {
        t.push_str(&w);
    }
    Ok(View { json, text: t })
}

/// Used share of the raw capacity in percent (0 without disks).
fn used_pct(st: &pb::ClusterStatusReply) -> u64 {
    st.raw_used_bytes
        .saturating_mul(100)
        .checked_div(st.raw_capacity_bytes)
        .unwrap_or(0)
}

/// Where the cluster stands against the master's `[capacity]` thresholds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CapacityState {
    /// No disk reported yet, or a master too old to send its thresholds.
    Unknown,
    Ok,
    /// Past `alert_pct`.
    Alert,
    /// Past `reject_pct`: new stripes are refused.
    WritesRefused,
}

impl CapacityState {
    fn of(st: &pb::ClusterStatusReply) -> CapacityState {
        let pct = used_pct(st);
        if st.raw_capacity_bytes == 0 || st.capacity_reject_pct == 0 {
            CapacityState::Unknown
        } else if pct >= u64::from(st.capacity_reject_pct) {
            CapacityState::WritesRefused
        } else if pct >= u64::from(st.capacity_alert_pct) {
            CapacityState::Alert
        } else {
            CapacityState::Ok
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            CapacityState::Unknown => "unknown",
            CapacityState::Ok => "ok",
            CapacityState::Alert => "alert",
            CapacityState::WritesRefused => "writes refused",
        }
    }
}

fn capacity_json(st: &pb::ClusterStatusReply) -> Value {
    json!({
        "used_pct": used_pct(st),
        "alert_pct": st.capacity_alert_pct,
        "reject_pct": st.capacity_reject_pct,
        "state": CapacityState::of(st).as_str(),
    })
}

/// The line `status` ends with when the cluster is past its alert threshold.
fn capacity_warning(st: &pb::ClusterStatusReply) -> Option<String> {
    let pct = used_pct(st);
    match CapacityState::of(st) {
        CapacityState::WritesRefused => Some(format!(
            "\nWARNING: cluster is {pct}% full; new writes are refused from {}%. Reads and \
             deletes still work: delete, then `kdss-cli trash purge` and `kdss-cli gc run` to \
             free space.\n",
            st.capacity_reject_pct
        )),
        CapacityState::Alert => Some(format!(
            "\nWARNING: cluster is {pct}% full (alert at {}%); new writes will be refused \
             from {}%.\n",
            st.capacity_alert_pct, st.capacity_reject_pct
        )),
        CapacityState::Ok | CapacityState::Unknown => None,
    }
}

/// `node list`.
pub async fn node_list(s: &Settings) -> anyhow::Result<View> {
    let st = cluster_status(s).await?;
    let js: Vec<Value> = st
        .nodes
        .iter()
        .map(|n| json!({"id": n.node_id, "grpc": n.grpc_addr, "http": n.http_addr, "online": n.online, "last_heartbeat_ms": n.last_heartbeat_ms, "disks": n.disks.len(), "zone": n.zone, "rack": n.rack}))
        .collect();
    let rows: Vec<Vec<String>> = st
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.node_id.clone(),
                n.zone.clone(),
                n.rack.clone(),
                n.grpc_addr.clone(),
                if n.online { "online" } else { "offline" }.into(),
                n.disks.len().to_string(),
                view::bytes(n.disks.iter().map(|d| d.used_bytes).sum()),
                view::bytes(n.disks.iter().map(|d| d.capacity_bytes).sum()),
            ]
        })
        .collect();
    let mut text = view::table(
        &[
            "NODE", "ZONE", "RACK", "GRPC", "STATE", "DISKS", "USED", "CAPACITY",
        ],
        &rows,
    );
    text.push_str(&topology_block(s, &st).await.1);
    Ok(View {
        json: Value::Array(js),
        text,
    })
}

/// `bucket ...`.
#[derive(clap::Subcommand)]
pub enum BucketCmd {
    /// Create a bucket with an EC preset (5+2, 9+2, 18+3, 29+3).
    Create {
        name: String,
        /// EC policy; default: the masters' [ec] setting.
        #[arg(long)]
        ec: Option<kdss_common::EcPolicy>,
        /// Owner's access key; default: you.
        #[arg(long)]
        owner: Option<String>,
    },
    /// List buckets you can reach.
    List,
    /// Delete an empty bucket.
    Delete { name: String },
}

fn bucket_json(b: &pb::BucketInfo) -> Value {
    json!({"name": b.name, "owner": b.owner, "ec": format!("{}+{}", b.k, b.m), "created_ns": b.created_ns, "root_ino": b.root_ino})
}

/// `bucket create|list|delete`.
pub async fn bucket(s: &Settings, cmd: BucketCmd) -> anyhow::Result<View> {
    let c = connect(s).await?;
    match cmd {
        BucketCmd::Create { name, ec, owner } => {
            let (k, m) = ec.map(|e| (e.k, e.m)).unwrap_or((0, 0));
            let req = pb::CreateBucketRequest {
                name,
                k,
                m,
                owner: owner.unwrap_or_default(),
            };
            let r = c.master().create_bucket(req);
            let b = r.await?.bucket.context("master returned no bucket")?;
            Ok(View {
                text: format!(
                    "created bucket {} (EC {}+{}, owner {})\n",
                    b.name, b.k, b.m, b.owner
                ),
                json: bucket_json(&b),
            })
        }
        BucketCmd::List => {
            let r = c.master().list_buckets(pb::ListBucketsRequest {});
            let bs = r.await?.buckets;
            let rows: Vec<Vec<String>> = bs
                .iter()
                .map(|b| vec![b.name.clone(), format!("{}+{}", b.k, b.m), b.owner.clone()])
                .collect();
            Ok(View {
                json: Value::Array(bs.iter().map(bucket_json).collect()),
                text: view::table(&["BUCKET", "EC", "OWNER"], &rows),
            })
        }
        BucketCmd::Delete { name } => {
            let req = pb::BucketRequest { name: name.clone() };
            c.master().delete_bucket(req).await?;
            Ok(View {
                json: json!({"deleted": name}),
                text: format!("deleted bucket {name}\n"),
            })
        }
    }
}

/// `user ...`.
#[derive(clap::Subcommand)]
pub enum UserCmd {
    /// Create a user; keys are generated unless given (test suites bring their own).
    Create {
        name: String,
        /// The new user's access key (generated when absent). Its own name: fields named
        /// like the global --access-key/--secret-key would share their clap ids.
        #[arg(long = "key")]
        new_access_key: Option<String>,
        /// The new user's secret key (generated when absent).
        #[arg(long = "secret")]
        new_secret_key: Option<String>,
        /// admin, operator, viewer or user.
        #[arg(long, default_value = "user")]
        role: String,
    },
    /// List users (never their secrets).
    List,
    /// Delete a user by access key.
    Delete {
        /// The user's access key.
        #[arg(value_name = "ACCESS_KEY")]
        user_key: String,
    },
    /// Change a user's role; its keys, bucket grants and buckets stay.
    SetRole {
        /// The user's access key.
        #[arg(value_name = "ACCESS_KEY")]
        user_key: String,
        /// admin, operator, viewer or user.
        role: String,
    },
}

fn role_of(s: &str) -> anyhow::Result<pb::Role> {
    Ok(match s {
        "admin" => pb::Role::Admin,
        "operator" => pb::Role::Operator,
        "viewer" => pb::Role::Viewer,
        "user" => pb::Role::User,
        other => anyhow::bail!("unknown role {other:?}: use admin, operator, viewer or user"),
    })
}

fn role_name(r: i32) -> &'static str {
    match pb::Role::try_from(r).unwrap_or(pb::Role::Unspecified) {
        pb::Role::Admin => "admin",
        pb::Role::Operator => "operator",
        pb::Role::Viewer => "viewer",
        pb::Role::User => "user",
        pb::Role::Unspecified => "unknown",
    }
}

/// `user create|list|delete`.
pub async fn user(s: &Settings, cmd: UserCmd) -> anyhow::Result<View> {
    let c = connect(s).await?;
    match cmd {
        UserCmd::Create {
            name,
            new_access_key,
            new_secret_key,
            role,
        } => {
            let req = pb::CreateUserRequest {
                name,
                access_key: new_access_key.unwrap_or_default(),
                secret_key: new_secret_key.unwrap_or_default(),
                role: role_of(&role)? as i32,
            };
            let r = c.master().create_user(req).await?;
            let u = r.user.context("master returned no user")?;
            Ok(View {
                text: format!(
                    "created user {} ({})\naccess key  {}\nsecret key  {}\n",
                    u.name,
                    role_name(u.role),
                    u.access_key,
                    r.secret_key
                ),
                json: json!({"name": u.name, "access_key": u.access_key, "secret_key": r.secret_key, "role": role_name(u.role)}),
            })
        }
        UserCmd::List => {
            let r = c.master().list_users(pb::ListUsersRequest {});
            let us = r.await?.users;
            let rows: Vec<Vec<String>> = us
                .iter()
                .map(|u| {
                    vec![
                        u.name.clone(),
                        u.access_key.clone(),
                        role_name(u.role).into(),
                    ]
                })
                .collect();
            Ok(View {
                json: Value::Array(
                    us.iter()
                        .map(|u| json!({"name": u.name, "access_key": u.access_key, "role": role_name(u.role)}))
                        .collect(),
                ),
                text: view::table(&["NAME", "ACCESS KEY", "ROLE"], &rows),
            })
        }
        UserCmd::Delete { user_key } => {
            let req = pb::DeleteUserRequest {
                access_key: user_key.clone(),
            };
            c.master().delete_user(req).await?;
            Ok(View {
                json: json!({"deleted": user_key}),
                text: format!("deleted user {user_key}\n"),
            })
        }
        UserCmd::SetRole { user_key, role } => {
            let req = pb::SetUserRoleRequest {
                access_key: user_key.clone(),
                role: role_of(&role)? as i32,
            };
            c.master().set_user_role(req).await?;
            Ok(View {
                json: json!({"access_key": user_key, "role": role}),
                text: format!("user {user_key} is now {role}\n"),
            })
        }
    }
}

/// `presign get|put`.
#[derive(clap::Args)]
pub struct PresignArgs {
    /// get or put.
    #[arg(value_parser = ["get", "put"])]
    pub method: String,
    #[arg(long)]
    pub bucket: String,
    #[arg(long)]
    pub key: String,
    /// Seconds the URL stays valid (1 to 604800).
    #[arg(long, default_value_t = 3600)]
    pub expires: u64,
}

/// Prints a presigned URL (no master call: signing needs only the keys).
pub fn presign(s: &Settings, a: PresignArgs) -> anyhow::Result<View> {
    let url = kdss_common::presign::presign_url(&kdss_common::presign::PresignParams {
        endpoint: &s.s3_endpoint,
        region: &s.region,
        access_key: &s.access_key,
        secret_key: &s.secret_key,
        method: &a.method,
        bucket: &a.bucket,
        key: &a.key,
        expires_secs: a.expires,
        now: std::time::SystemTime::now(),
    })?;
    Ok(View {
        json: json!({"url": url, "expires_in": a.expires}),
        text: format!("{url}\n"),
    })
}
