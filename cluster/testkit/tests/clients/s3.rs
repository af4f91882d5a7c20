//! S3 clients: presigned URLs over HTTPS trusting the cluster CA.

use super::{CALL_TIMEOUT, body_len, body_of, is_key, random_key, value_of};
use kdss_common::presign::{PresignParams, presign_url};
use kdss_history::{Call, Outcome, Recorder};
use kdss_testkit::netns::NetCluster;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// A small S3 client of the cluster's gateway.
#[derive(Clone)]
pub struct S3 {
    http: reqwest::Client,
    endpoint: String,
    access_key: String,
    secret_key: String,
    bucket: String,
}

/// What one HTTP exchange gave: the status and body, or no answer.
pub type Answer = Result<(u16, Vec<u8>), String>;

impl S3 {
    pub fn new(c: &NetCluster) -> S3 {
        let mut tls = (*c.tls.rustls()).clone();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(CALL_TIMEOUT)
            .connect_timeout(CALL_TIMEOUT)
            .build()
            .expect("http client");
        S3 {
            http,
            endpoint: c.s3_endpoint(),
            access_key: c.access_key.clone(),
            secret_key: c.secret_key.clone(),
            bucket: c.bucket.clone(),
        }
    }

    /// The time in the `Date` header of an HTTPS GET of `url`: the answering daemon's
    /// wall clock, to the second.
    pub async fn date_of(&self, url: &str) -> Result<SystemTime, String> {
        let r = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        let date = r
            .headers()
            .get("date")
            .ok_or_else(|| format!("{url}: no Date header"))?;
        let text = date.to_str().map_err(|e| e.to_string())?;
        httpdate::parse_http_date(text).map_err(|e| format!("{url}: Date {text:?}: {e}"))
    }

    pub async fn send(&self, method: &str, key: &str, body: Option<Vec<u8>>) -> Answer {
        let url = presign_url(&PresignParams {
            endpoint: &self.endpoint,
            region: "us-east-1",
            access_key: &self.access_key,
            secret_key: &self.secret_key,
            method,
            bucket: &self.bucket,
            key,
            expires_secs: 600,
            now: SystemTime::now(),
        })
        .expect("presign");
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, url);
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        Ok((status, body.to_vec()))
    }
}

/// How an answer ends a call. Only answers that prove the call changed nothing count as
/// failed (none here: a 5xx after a timeout inside the gateway may still commit).
pub fn outcome(call: &Call, a: &Answer) -> Outcome {
    match (call, a) {
        (Call::Put { .. }, Ok((200, _))) => Outcome::Ok,
        (Call::Delete, Ok((204 | 200, _))) => Outcome::Ok,
        (Call::Get, Ok((200, body))) => Outcome::Read {
            value: Some(value_of(body)),
        },
        (Call::Get, Ok((404, body))) if String::from_utf8_lossy(body).contains("NoSuchKey") => {
            Outcome::Read { value: None }
        }
        (Call::List, Ok((200, body))) => match listed_keys(body) {
            Some(keys) => Outcome::Listed { keys },
            None => Outcome::Unknown,
        },
        _ => Outcome::Unknown,
    }
}

/// The keys of the key space a ListObjects answer names (sorted), or `None` when the
/// answer is not a whole, untruncated listing.
fn listed_keys(body: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains("</ListBucketResult>") || text.contains("<IsTruncated>true") {
        return None;
    }
    let mut keys: Vec<String> = text
        .split("<Key>")
        .skip(1)
        .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_string()))
        .filter(|k| is_key(k))
        .collect();
    keys.sort();
    Some(keys)
}

/// One S3 client: random calls on the key space until `stop`, one at a time.
pub async fn client(process: u64, s3: S3, rec: Recorder, stop: Arc<AtomicBool>) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = random_key();
        let call = match rand::random_range(0..10) {
            0..4 => Call::Put {
                value: format!("p{process}-{n}"),
            },
            4..7 => Call::Get,
            7 => Call::List,
            _ => Call::Delete,
        };
        let on = if call == Call::List { "" } else { key.as_str() };
        let pending = rec.invoke(process, on, call.clone());
        let answer = match &call {
            Call::Put { value } => {
                s3.send("PUT", &key, Some(body_of(value, body_len(n))))
                    .await
            }
            Call::Get => s3.send("GET", &key, None).await,
            Call::Delete => s3.send("DELETE", &key, None).await,
            // ListObjects (v1) of the whole bucket: the key space and the file clients'
            // temporary files, far below one page.
            Call::List => s3.send("GET", "", None).await,
            Call::Rename { .. } => unreachable!("S3 has no rename"),
        };
        let o = outcome(&call, &answer);
        if o == Outcome::Unknown {
            // A partition makes calls time out; pause so clients do not spin.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        pending.complete(o);
    }
}

/// After the heal: reads every key until it answers (the final state the history must
/// explain; an acknowledged write that was lost shows up here).
pub async fn final_reads(s3: &S3, rec: &Recorder) {
    for k in 0..super::keys() {
        let key = format!("k{k}");
        let start = Instant::now();
        loop {
            let pending = rec.invoke(1000, &key, Call::Get);
            let a = s3.send("GET", &key, None).await;
            let o = outcome(&Call::Get, &a);
            let done = o != Outcome::Unknown;
            pending.complete(o);
            if done {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no answer to a read of {key} two minutes after the heal: {a:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
