//! Shared setup of the gateway integration tests: a real local cluster (masters, storage
//! nodes, one gateway) from the lead's harness, and SigV4 helpers.

#![allow(dead_code)]

use kdss_s3gw::bench::http::{Conn, RawResponse, Signer};
use kdss_testkit::{Cluster, ClusterOpts};
use std::time::SystemTime;

/// A running cluster with its gateway endpoint and the admin's keys.
pub struct Env {
    pub cluster: Cluster,
    pub endpoint: String,
    pub host: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
}

pub async fn start() -> Env {
    let cluster = Cluster::start(ClusterOpts {
        gateways: 1,
        ..Default::default()
    })
    .await
    .expect("cluster starts");
    let endpoint = cluster.s3_endpoint().expect("gateway endpoint");
    let host = endpoint.trim_start_matches("http://").to_string();
    let (access_key, secret_key) = cluster.admin_keys();
    let bucket = cluster.bucket();
    Env {
        cluster,
        endpoint,
        host,
        access_key,
        secret_key,
        bucket,
    }
}

impl Env {
    pub fn signer(&self) -> Signer {
        Signer {
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            region: "us-east-1".into(),
        }
    }

    /// Sends a hand-signed request with the given payload hash, extra signed headers and body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        payload_hash: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        self.send_as(
            &self.signer(),
            method,
            path,
            payload_hash,
            extra,
            body,
            SystemTime::now(),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn send_as(
        &self,
        signer: &Signer,
        method: &str,
        path: &str,
        payload_hash: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        now: SystemTime,
    ) -> RawResponse {
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let s = signer.sign(method, &self.host, path, payload_hash, &extra, now);
        let mut c = Conn::connect(&self.host).await.expect("connect");
        c.send(method, path, &s.headers, body, true)
            .await
            .expect("request")
            .0
    }

    /// Unsigned-payload GET of an object: (status, body).
    pub async fn get(&self, path: &str) -> RawResponse {
        self.send("GET", path, "UNSIGNED-PAYLOAD", &[], b"").await
    }

    pub async fn sdk(&self) -> aws_sdk_s3::Client {
        let creds = aws_sdk_s3::config::Credentials::new(
            &self.access_key,
            &self.secret_key,
            None,
            None,
            "test",
        );
        let http = aws_smithy_http_client::Builder::new().build_http();
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .credentials_provider(creds)
            .http_client(http)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}

/// Deterministic test bytes.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).rotate_left(seed as u32) as u8 ^ seed)
        .collect()
}
