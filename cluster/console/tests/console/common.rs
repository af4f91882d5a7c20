//! A `kdss up`-shaped test cluster and a small client of the console's JSON API.

use anyhow::Context;
use kdss_testkit::{Cluster, ClusterOpts};
use reqwest::Method;
use serde_json::{Value, json};

/// One master, 4 storage nodes × 2 disks: the shape `kdss up` starts by default.
pub async fn cluster() -> Cluster {
    Cluster::start(ClusterOpts::default())
        .await
        .expect("start the cluster")
}

/// The console's base URL on the first master.
pub fn base(c: &Cluster) -> String {
    format!("http://{}", c.layout.masters[0].http)
}

/// A signed-in (or anonymous) caller of the API: the session cookie and the CSRF token.
pub struct Api {
    http: reqwest::Client,
    base: String,
    pub cookie: Option<String>,
    pub csrf: String,
    /// The Set-Cookie header of the login answer.
    pub set_cookie: String,
}

/// Status and JSON body (Null when the body is not JSON).
pub type Answer = (u16, Value);

/// An HTTP client for the tests. Built alone, this crate's reqwest brings its own TLS
/// provider; in `cargo test --workspace` it is unified with kdss-notify's
/// `rustls-no-provider` and panics without one, so ring is installed first (a provider
/// installed before is kept). ring's provider is marked deprecated for lacking
/// post-quantum key exchange, which plain-HTTP tests on loopback do not use.
#[allow(deprecated)]
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

impl Api {
    /// A caller without a session.
    pub fn anonymous(base: &str) -> Api {
        Api {
            http: http_client(),
            base: base.to_string(),
            cookie: None,
            csrf: String::new(),
            set_cookie: String::new(),
        }
    }

    /// `POST /api/login` with the raw answer.
    pub async fn try_login(base: &str, ak: &str, sk: &str) -> anyhow::Result<(Api, Answer)> {
        let mut api = Api::anonymous(base);
        let r = api
            .http
            .post(format!("{base}/api/login"))
            .json(&json!({ "access_key": ak, "secret_key": sk }))
            .send()
            .await?;
        let status = r.status().as_u16();
        if let Some(sc) = r.headers().get("set-cookie") {
            api.set_cookie = sc.to_str()?.to_string();
            api.cookie = api.set_cookie.split(';').next().map(str::to_string);
        }
        let body: Value = r.json().await.unwrap_or(Value::Null);
        api.csrf = body["csrf"].as_str().unwrap_or_default().to_string();
        Ok((api, (status, body)))
    }

    /// Signs in or fails with the answer.
    pub async fn login(base: &str, ak: &str, sk: &str) -> anyhow::Result<Api> {
        let (api, (status, body)) = Api::try_login(base, ak, sk).await?;
        anyhow::ensure!(status == 200, "login {ak}: {status} {body}");
        Ok(api)
    }

    /// Calls `method path` with the session and the CSRF token (when `csrf`).
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> anyhow::Result<Answer> {
        let m = Method::from_bytes(method.as_bytes())?;
        let mut rb = self.http.request(m, format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            rb = rb.header("cookie", c);
        }
        if csrf {
            rb = rb.header("x-csrf-token", &self.csrf);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// Calls with the session and the CSRF token.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Answer> {
        self.call_with(method, path, body, true).await
    }
}

/// Creates a user through the console as `admin`; returns (access key, secret key).
pub async fn create_user(admin: &Api, name: &str, role: &str) -> anyhow::Result<(String, String)> {
    let (st, b) = admin
        .call(
            "POST",
            "/api/users",
            Some(json!({ "name": name, "role": role })),
        )
        .await?;
    anyhow::ensure!(st == 200, "create user {name}: {st} {b}");
    Ok((
        b["access_key"].as_str().unwrap_or_default().to_string(),
        b["secret_key"].as_str().unwrap_or_default().to_string(),
    ))
}

/// Writes 4 MiB objects into the cluster's test bucket through the client library until
/// `stop` turns true, so the dashboard's charts have traffic to show; returns the count.
pub async fn traffic(
    c: &Cluster,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<u64> {
    use std::sync::atomic::Ordering;
    let (ak, sk) = c.admin_keys();
    let client = kdss_client::Client::connect(kdss_client::ClientConfig {
        masters: c.masters(),
        access_key: ak,
        secret_key: sk,
        ..kdss_client::ClientConfig::default()
    })
    .await?;
    let bucket = c.bucket();
    let piece = bytes::Bytes::from(vec![0x5a; 4 << 20]);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut w = client.stream_writer(&bucket);
        w.write(piece.clone()).await?;
        let done = w.finish().await?;
        let key = format!("traffic/{}", n % 4);
        client.put_object(done.put_request(&bucket, &key)).await?;
        n += 1;
    }
    Ok(n)
}
