//! `DIR/cluster.json`: what runs where, for scripts and tests (DESIGN.md, "The two commands").

use serde::Serialize;
use std::path::PathBuf;

/// S3 endpoint and credentials.
#[derive(Debug, Serialize)]
pub struct S3Json {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

/// One master.
#[derive(Debug, Serialize)]
pub struct MasterJson {
    pub id: u64,
    pub grpc: String,
    pub http: String,
    pub pid: Option<u32>,
    pub data: PathBuf,
}

/// One storage node.
#[derive(Debug, Serialize)]
pub struct NodeJson {
    pub id: String,
    pub grpc: String,
    pub http: String,
    pub pid: Option<u32>,
    pub disks: Vec<PathBuf>,
}

/// One gateway.
#[derive(Debug, Serialize)]
pub struct GatewayJson {
    pub http: String,
    pub pid: Option<u32>,
}

/// The whole file.
#[derive(Debug, Serialize)]
pub struct ClusterJson {
    pub s3: Option<S3Json>,
    pub bucket: Option<String>,
    pub mountpoint: Option<PathBuf>,
    pub console: String,
    pub masters: Vec<MasterJson>,
    pub storage_nodes: Vec<NodeJson>,
    pub s3gw: Vec<GatewayJson>,
}
