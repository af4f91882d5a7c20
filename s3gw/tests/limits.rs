//! Bounded resources, against a real local cluster with the gateway served in this
//! process (so each test sets its own limits and reads its own metrics listener):
//! slow-header (slowloris) connections are dropped after `header_read_timeout_secs` while
//! normal requests are served, connections past `max_connections` wait until one closes,
//! one unknown access key repeated costs the master one lookup, not one per request, and
//! a request body that stops or trickles is cut after `body_read_timeout_secs`.

use kdss_s3gw::S3Config;
use kdss_s3gw::bench::http::{Conn, RawResponse, Signer};
use kdss_testkit::{Cluster, ClusterOpts};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A gateway served by this process until dropped.
struct Gateway {
    addr: String,
    metrics: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    signer: Signer,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Gateway {
    /// Starts a gateway over `cluster` with `s3_extra` lines in `[s3]`; returns once it
    /// answers a signed request.
    async fn start(cluster: &Cluster, s3_extra: &str) -> Gateway {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let m = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let metrics = m.local_addr().unwrap().to_string();
        let masters: Vec<String> = cluster.masters().iter().map(|m| format!("{m:?}")).collect();
        let text = format!(
            "[s3]\nlisten = \"127.0.0.1:0\"\n{s3_extra}\n[cluster]\nmasters = [{}]\nsecret = {:?}\n",
            masters.join(", "),
            cluster.secret()
        );
        let cfg = S3Config::parse(std::path::Path::new("s3gw.toml"), &text).expect("config");
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(kdss_s3gw::serve_with_metrics(l, Some(m), cfg, async {
            let _ = rx.await;
        }));
        let (access_key, secret_key) = cluster.admin_keys();
        let gw = Gateway {
            addr,
            metrics,
            stop: Some(tx),
            signer: Signer {
                access_key,
                secret_key,
                region: "us-east-1".into(),
            },
        };
        let r = tokio::time::timeout(Duration::from_secs(60), gw.get(&gw.signer, "/test"))
            .await
            .expect("the gateway answers within 60 s");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        gw
    }

    /// A signed GET on `conn`.
    async fn get_on(&self, conn: &mut Conn, signer: &Signer, path: &str) -> RawResponse {
        let s = signer.sign(
            "GET",
            &self.addr,
            path,
            "UNSIGNED-PAYLOAD",
            &[],
            SystemTime::now(),
        );
        conn.send("GET", path, &s.headers, b"", true)
            .await
            .expect("request")
            .0
    }

    /// A signed GET on a new connection.
    async fn get(&self, signer: &Signer, path: &str) -> RawResponse {
        let mut c = Conn::connect(&self.addr).await.expect("connect");
        self.get_on(&mut c, signer, path).await
    }

    /// The value of the metric line starting with `series` (name and labels).
    async fn metric(&self, series: &str) -> f64 {
        let mut c = Conn::connect(&self.metrics).await.unwrap();
        let (r, _) = c
            .send(
                "GET",
                "/metrics",
                &[("host".into(), self.metrics.clone())],
                b"",
                true,
            )
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&r.body).to_string();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }
}

async fn cluster() -> Cluster {
    Cluster::start(ClusterOpts::default())
        .await
        .expect("cluster starts")
}

/// Sends a request head one byte per second; returns when the gateway closed the
/// connection (the time since connecting), or None if it was still open after 12 s.
async fn slowloris(addr: String, i: usize) -> Option<Duration> {
    let t0 = Instant::now();
    let s = TcpStream::connect(&addr).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let closed = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return t0.elapsed(),
                Ok(_) => {}
            }
        }
    });
    let head = format!(
        "GET /test HTTP/1.1\r\nHost: {addr}\r\nX-Slow-{i}: {}\r\n\r\n",
        "a".repeat(40)
    );
    for b in head.bytes() {
        if closed.is_finished() || t0.elapsed() > Duration::from_secs(12) {
            break;
        }
        if w.write_all(&[b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    match tokio::time::timeout(Duration::from_secs(1), closed).await {
        Ok(Ok(d)) => Some(d),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_header_connections_are_dropped_while_normal_requests_are_served() {
    let cluster = cluster().await;
    let gw = Gateway::start(&cluster, "header_read_timeout_secs = 2").await;
    let slow: Vec<_> = (0..20)
        .map(|i| tokio::spawn(slowloris(gw.addr.clone(), i)))
        .collect();
    // Meanwhile: new connections and one keep-alive connection are served promptly.
    let mut keep = Conn::connect(&gw.addr).await.unwrap();
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = Instant::now();
        let r = gw.get(&gw.signer, "/test").await;
        assert_eq!(r.status, 200, "round {round}");
        let r = gw.get_on(&mut keep, &gw.signer, "/test").await;
        assert_eq!(r.status, 200, "keep-alive round {round}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "round {round} took {:?} with 20 slow connections open",
            t.elapsed()
        );
    }
    for (i, s) in slow.into_iter().enumerate() {
        let closed = s.await.unwrap();
        let d = closed.unwrap_or_else(|| panic!("slow connection {i} still open after 12 s"));
        assert!(
            d >= Duration::from_millis(1500) && d <= Duration::from_millis(4500),
            "slow connection {i} closed after {d:?}, want about 2 s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_past_the_cap_wait_until_one_closes() {
    let cluster = cluster().await;
    let gw = Gateway::start(
        &cluster,
        "max_connections = 8\nheader_read_timeout_secs = 8",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(&gw.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gw.metric("kdss_s3gw_connections_open").await, 8.0);
    let ninth = {
        let signer = gw.signer.clone();
        let addr = gw.addr.clone();
        tokio::spawn(async move {
            let mut c = Conn::connect(&addr)
                .await
                .expect("the kernel accepts into the backlog");
            let s = signer.sign(
                "GET",
                &addr,
                "/test",
                "UNSIGNED-PAYLOAD",
                &[],
                SystemTime::now(),
            );
            c.send("GET", "/test", &s.headers, b"", true)
                .await
                .unwrap()
                .0
        })
    };
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(
        !ninth.is_finished(),
        "a ninth connection is not served while 8 are open"
    );
    assert_eq!(gw.metric("kdss_s3gw_connections_open").await, 8.0);
    idle.truncate(6);
    let r = tokio::time::timeout(Duration::from_secs(3), ninth)
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert_eq!(r.status, 200);
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_access_key_costs_the_master_one_lookup_not_one_per_request() {
    let cluster = cluster().await;
    let gw = Gateway::start(&cluster, "unknown_key_cache_secs = 2").await;
    let unknown = r#"kdss_s3gw_secret_lookups_total{result="unknown"}"#;
    let found = r#"kdss_s3gw_secret_lookups_total{result="found"}"#;
    assert_eq!(gw.metric(found).await, 1.0, "the start-up request");
    let bad = Signer {
        access_key: "KDNOSUCHKEY0000000000".into(),
        secret_key: "not-a-secret".into(),
        region: "us-east-1".into(),
    };
    // 100 requests, 10 connections at a time.
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let bad = bad.clone();
            let addr = gw.addr.clone();
            tokio::spawn(async move {
                let mut c = Conn::connect(&addr).await.unwrap();
                let mut codes = Vec::new();
                for _ in 0..10 {
                    let s = bad.sign(
                        "GET",
                        &addr,
                        "/test",
                        "UNSIGNED-PAYLOAD",
                        &[],
                        SystemTime::now(),
                    );
                    let r = c
                        .send("GET", "/test", &s.headers, b"", true)
                        .await
                        .unwrap()
                        .0;
                    codes.push((r.status, r.error_code()));
                }
                codes
            })
        })
        .collect();
    for t in tasks {
        for c in t.await.unwrap() {
            assert_eq!(c, (403, "InvalidAccessKeyId".to_string()));
        }
    }
    let n = gw.metric(unknown).await;
    assert!(
        (1.0..=2.0).contains(&n),
        "100 requests with one unknown key made {n} master lookups"
    );
    // Known keys are cached as before.
    for _ in 0..10 {
        assert_eq!(gw.get(&gw.signer, "/test").await.status, 200);
    }
    assert_eq!(gw.metric(found).await, 1.0);
    // A key no user can have is refused without asking.
    let long = Signer {
        access_key: "K".repeat(200),
        ..bad.clone()
    };
    let r = gw.get(&long, "/test").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "InvalidAccessKeyId")
    );
    assert_eq!(gw.metric(unknown).await, n);
    // "Unknown" is forgotten after unknown_key_cache_secs: a user created meanwhile works.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let r = gw.get(&bad, "/test").await;
    assert_eq!(r.error_code(), "InvalidAccessKeyId");
    assert_eq!(gw.metric(unknown).await, n + 1.0);
}

/// Sends a signed PUT head announcing 100 000 bytes, then 10 bytes of body, then (with
/// `trickle`) one byte every 500 ms or (without) nothing. Returns what the gateway sent
/// before it closed the connection, or None if it was still open after 20 s.
async fn slow_body(addr: String, signer: Signer, i: usize, trickle: bool) -> Option<String> {
    let t0 = Instant::now();
    let path = format!("/test/slow-body-{i}");
    let s = signer.sign(
        "PUT",
        &addr,
        &path,
        "UNSIGNED-PAYLOAD",
        &[],
        SystemTime::now(),
    );
    let mut head = format!("PUT {path} HTTP/1.1\r\n");
    for (k, v) in &s.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("content-length: 100000\r\n\r\n");
    let tcp = TcpStream::connect(&addr).await.unwrap();
    let (mut r, mut w) = tcp.into_split();
    let closed = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    w.write_all(head.as_bytes()).await.unwrap();
    w.write_all(&[b'x'; 10]).await.unwrap();
    while !closed.is_finished() && t0.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if trickle && w.write_all(b"x").await.is_err() {
            break;
        }
    }
    match tokio::time::timeout(Duration::from_secs(1), closed).await {
        Ok(Ok(got)) => Some(String::from_utf8_lossy(&got).to_string()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_or_trickled_bodies_are_cut_while_normal_requests_are_served() {
    let cluster = cluster().await;
    let gw = Gateway::start(&cluster, "body_read_timeout_secs = 2").await;
    let slow: Vec<_> = (0..10)
        .map(|i| tokio::spawn(slow_body(gw.addr.clone(), gw.signer.clone(), i, i % 2 == 0)))
        .collect();
    // Meanwhile other requests are served, on new and kept-alive connections.
    let mut keep = Conn::connect(&gw.addr).await.unwrap();
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            gw.get(&gw.signer, "/test").await.status,
            200,
            "round {round}"
        );
        let r = gw.get_on(&mut keep, &gw.signer, "/test").await;
        assert_eq!(r.status, 200, "keep-alive round {round}");
    }
    for (i, s) in slow.into_iter().enumerate() {
        let what = if i % 2 == 0 { "trickled" } else { "stalled" };
        let answer = s
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{what} body {i}: connection still open after 20 s"));
        assert!(
            answer.starts_with("HTTP/1.1 400") && answer.contains("<Code>RequestTimeout</Code>"),
            "{what} body {i}: {answer}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{what} body {i}: {answer}"
        );
    }
    // None of the cut uploads left an object.
    for i in 0..10 {
        let r = gw.get(&gw.signer, &format!("/test/slow-body-{i}")).await;
        assert_eq!(r.status, 404, "slow-body-{i}");
    }
}
