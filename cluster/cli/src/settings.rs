//! Where kdss-cli finds the cluster and its credentials: flags first, then the
//! environment (KDSS_MASTERS, KDSS_ACCESS_KEY, KDSS_SECRET_KEY, KDSS_S3_ENDPOINT, KDSS_CA),
//! then a config file (`--config`, KDSS_CONFIG, or the `cli.toml` that `kdss up` writes).

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The config file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Master gRPC addresses.
    #[serde(default)]
    pub masters: Vec<String>,
    #[serde(default)]
    pub access_key: Option<String>,
    #[serde(default)]
    pub secret_key: Option<String>,
    /// S3 endpoint for `presign` (http://host:port).
    #[serde(default)]
    pub s3_endpoint: Option<String>,
    /// S3 region for `presign`.
    #[serde(default)]
    pub region: Option<String>,
    /// `[tls] ca`: the cluster CA the masters' certificates must chain to.
    #[serde(default)]
    pub tls: kdss_common::tls::TlsSection,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub masters: Vec<String>,
    pub access_key: String,
    pub secret_key: String,
    pub s3_endpoint: String,
    pub region: String,
    /// TLS to the masters and storage nodes (`[tls]` of the config file, or KDSS_CA).
    pub tls: kdss_common::tls::TlsSection,
}

/// Flag values (None when not given).
#[derive(Debug, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub masters: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub s3_endpoint: Option<String>,
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// Resolves flags, environment and config file, in that order of precedence.
pub fn resolve(o: Overrides) -> anyhow::Result<Settings> {
    let path = o
        .config
        .or_else(|| env("KDSS_CONFIG").map(PathBuf::from))
        .or_else(|| {
            let p = Path::new("kdss-data/cli.toml");
            p.exists().then(|| p.to_path_buf())
        });
    let file: FileSettings = match &path {
        Some(p) => kdss_common::load_toml(p)?,
        None => FileSettings::default(),
    };
    let split = |s: String| {
        s.split(',')
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect()
    };
    let masters: Vec<String> = o
        .masters
        .or_else(|| env("KDSS_MASTERS"))
        .map(split)
        .unwrap_or(file.masters);
    let masters = if masters.is_empty() {
        vec!["127.0.0.1:6700".to_string()]
    } else {
        masters
    };
    let need = |v: Option<String>, what: &str, var: &str| {
        v.ok_or_else(|| {
            anyhow::anyhow!(
                "no {what}: pass --{}, set {var}, or use --config FILE",
                what.replace(' ', "-")
            )
        })
    };
    Ok(Settings {
        masters,
        access_key: need(
            o.access_key
                .or_else(|| env("KDSS_ACCESS_KEY"))
                .or(file.access_key),
            "access key",
            "KDSS_ACCESS_KEY",
        )?,
        secret_key: need(
            o.secret_key
                .or_else(|| env("KDSS_SECRET_KEY"))
                .or(file.secret_key),
            "secret key",
            "KDSS_SECRET_KEY",
        )?,
        s3_endpoint: o
            .s3_endpoint
            .or_else(|| env("KDSS_S3_ENDPOINT"))
            .or(file.s3_endpoint)
            .unwrap_or_else(|| "http://127.0.0.1:9000".into()),
        region: file.region.unwrap_or_else(|| "us-east-1".into()),
        tls: match env("KDSS_CA") {
            Some(ca) => kdss_common::tls::TlsSection {
                ca: Some(ca.into()),
                ..Default::default()
            },
            None => file.tls,
        },
    })
}
