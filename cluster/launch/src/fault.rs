//! The client of a storage node's test-only `POST /fault` (the `[fault]` section of
//! storage.toml): tests switch injected disk faults at run time through it. The node
//! answers only requests signed as the service identity with the cluster secret.

use crate::cluster::LocalCluster;
use crate::error::{LaunchError, io};
use kdss_common::auth;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `POST /fault?{query}` to a node's HTTP address with `authorization` (if any) as
/// the credential header; the status code and body of the answer.
pub async fn post_fault(
    http_addr: &str,
    query: &str,
    authorization: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(http_addr).await?;
    let auth_line = authorization
        .map(|a| format!("{}: {a}\r\n", auth::AUTH_HEADER))
        .unwrap_or_default();
    let req = format!(
        "POST /fault?{query} HTTP/1.0\r\nHost: {http_addr}\r\n{auth_line}Content-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text:?}")))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}

/// A KDSS2 credential for `POST /fault?{query}` (empty body) signed by `access_key` with
/// `secret` at `unix_ms`; the node binds it to that exact query, so a captured one cannot
/// switch another fault.
pub fn fault_credential(access_key: &str, secret: &str, query: &str, unix_ms: u64) -> String {
    let method = auth::http_method("POST", &format!("/fault?{query}"));
    auth::sign(
        secret,
        &auth::Claims {
            access_key,
            method: &method,
            unix_ms,
            nonce: auth::new_nonce(),
            on_behalf_of: "",
            body_sha256: auth::body_digest(b""),
        },
    )
}

/// The service credential for `POST /fault?{query}` made now.
pub fn service_credential(cluster_secret: &str, query: &str) -> String {
    fault_credential(
        auth::SERVICE_ACCESS_KEY,
        cluster_secret,
        query,
        kdss_common::time::now_ms(),
    )
}

impl LocalCluster {
    /// Switches faults on storage node `node` (`disk=…&kind=eio|latency|corrupt|clear…`,
    /// see the storage node's `http` module), signed with the cluster secret; the node's
    /// answer, or an error naming its status when it did not take the fault.
    pub async fn inject_fault(&self, node: usize, query: &str) -> Result<String, LaunchError> {
        let addr = &self.layout.nodes[node].http;
        let cred = service_credential(&self.layout.secret, query);
        let (status, body) = post_fault(addr, query, Some(&cred))
            .await
            .map_err(io(format!("POST /fault to {addr}")))?;
        if status != 200 {
            return Err(LaunchError::Spec(format!(
                "POST /fault?{query} to {addr} answered {status}: {}",
                body.trim()
            )));
        }
        Ok(body)
    }
}
