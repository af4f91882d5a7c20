//! What this master hands the web console (the `kdss-console` crate) when mounting it on
//! the HTTP port: its own gRPC address (a follower forwards writes to the leader), the
//! cluster secret for the service identity, the recent events, and the effective settings
//! with every secret left out.

use crate::MasterConfig;
use crate::service::State;
use std::net::SocketAddr;
use std::time::Duration;

/// How long a console session lives without use.
pub const SESSION_TTL: Duration = Duration::from_secs(3600);

/// The console's configuration for this master.
pub fn config(
    cfg: &MasterConfig,
    st: &State,
    grpc_addr: SocketAddr,
) -> kdss_console::ConsoleConfig {
    let mut masters = vec![grpc_addr.to_string()];
    masters.extend(
        cfg.cluster
            .peers
            .iter()
            .filter(|p| p.id != cfg.master.id)
            .map(|p| p.grpc_addr.clone()),
    );
    kdss_console::ConsoleConfig {
        masters,
        secret: cfg.cluster.secret.clone(),
        default_ec: (st.default_ec.k, st.default_ec.m),
        settings: settings(cfg, grpc_addr),
        events: st.events.feed(),
        session_ttl: SESSION_TTL,
    }
}

/// The effective settings as (key, value). Secrets never appear: the cluster secret and
/// the admin's secret key are left out, `[notify]` prints its URL and secret as `***`.
pub fn settings(cfg: &MasterConfig, grpc_addr: SocketAddr) -> Vec<(String, String)> {
    let peers: Vec<String> = cfg
        .cluster
        .peers
        .iter()
        .map(|p| format!("{}={}", p.id, p.grpc_addr))
        .collect();
    let s = |k: &str, v: String| (k.to_string(), v);
    let mut out = vec![
        s("cluster.id", cfg.cluster.id.clone()),
        s("cluster.peers", peers.join(", ")),
        s("master.id", cfg.master.id.to_string()),
        s("master.grpc_addr", grpc_addr.to_string()),
        s("master.http_addr", cfg.master.http_addr.to_string()),
        s("master.data_dir", cfg.master.data_dir.display().to_string()),
        s(
            "admin.access_key",
            cfg.admin
                .as_ref()
                .map_or("(none)".into(), |a| a.access_key.clone()),
        ),
    ];
    let sections: [(&str, serde_json::Result<serde_json::Value>); 7] = [
        ("ec", serde_json::to_value(&cfg.ec)),
        ("gc", serde_json::to_value(&cfg.gc)),
        ("capacity", serde_json::to_value(&cfg.capacity)),
        ("raft", serde_json::to_value(&cfg.raft)),
        ("health", serde_json::to_value(&cfg.health)),
        ("repair", serde_json::to_value(&cfg.repair)),
        ("balance", serde_json::to_value(&cfg.balance)),
    ];
    for (name, value) in sections {
        match value {
            Ok(serde_json::Value::Object(fields)) => out.extend(
                fields
                    .into_iter()
                    .map(|(k, v)| (format!("{name}.{k}"), plain(&v))),
            ),
            Ok(other) => out.push((name.to_string(), plain(&other))),
            Err(e) => out.push((name.to_string(), format!("(unreadable: {e})"))),
        }
    }
    let hidden = |set: bool| if set { "***" } else { "(not set)" }.to_string();
    out.push(s("notify.lark_url", hidden(cfg.notify.lark_url.is_some())));
    out.push(s(
        "notify.lark_secret",
        hidden(cfg.notify.lark_secret.is_some()),
    ));
    out
}

/// A setting's value as an operator would type it in the TOML file (strings unquoted).
fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "(not set)".to_string(),
        other => other.to_string(),
    }
}
