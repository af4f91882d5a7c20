//! Delivering a card to a Lark custom bot: sign, POST, read Lark's answer, retry what is
//! transient with exponential backoff.
//!
//! Transient: no connection, a timeout, HTTP 5xx or 429, and Lark's rate-limit answers
//! (a JSON `code` in [`RATE_LIMIT_CODES`], which Lark may send with HTTP 200 or 400).
//! Anything else Lark says with `code != 0` is final: a wrong signature does not get right
//! by asking again. Logs name the host only: the URL's path is the bot's token, and neither
//! the secret nor a signature is ever logged.

use crate::card::Card;
use crate::error::NotifyError;
use crate::sign::sign;
use serde_json::{Value, json};
use std::fmt;
use std::time::Duration;

/// Lark's "too many requests" codes: the custom bot's own limit (100 a minute, 5 a second
/// per bot, 9499) and the message service's tenant (11232) and per-chat (230020) limits.
pub const RATE_LIMIT_CODES: [i64; 3] = [9499, 11232, 230020];

/// A string kept out of `Debug` and `Display`: the signing secret and the webhook URL, so a
/// config or a sender printed with `{:?}` shows neither.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How hard to try: attempts, the first backoff (doubled each time, up to the cap, with up
/// to a quarter of jitter), and the time one attempt may take.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, at least 1.
    pub attempts: u32,
    /// Wait after the first failure.
    pub first_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Time allowed for one request, connection included.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts over about 8 s: inside Alertmanager's default webhook timeout, and
    /// long enough to ride out a rate-limit second.
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(4),
            timeout: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `n` (1-based).
    pub fn backoff(&self, n: u32) -> Duration {
        let base = self
            .first_backoff
            .saturating_mul(1u32 << (n - 1).min(16))
            .min(self.max_backoff);
        let jitter = rand::random::<f64>() * 0.25;
        base.mul_f64(1.0 + jitter)
    }
}

/// A Lark custom bot to send cards to.
#[derive(Debug, Clone)]
pub struct LarkSender {
    client: reqwest::Client,
    url: Secret,
    host: String,
    secret: Option<Secret>,
    retry: RetryPolicy,
}

/// What one attempt came to.
enum Attempt {
    Sent,
    Retry(String),
    Final(NotifyError),
}

/// A delivered card: how many attempts it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Attempts made, the successful one included.
    pub attempts: u32,
}

/// Makes ring the process's rustls provider (reqwest is built without one); a provider
/// installed before is kept. rustls marks ring's provider deprecated for lacking
/// post-quantum key exchange, which only aws-lc-rs offers; a webhook POST does not need it,
/// and aws-lc-rs is the slowest C build there is.
#[allow(deprecated)]
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl LarkSender {
    /// A sender to the webhook `url`, signing with `secret` when the bot has signature
    /// verification on.
    pub fn new(
        url: &Secret,
        secret: Option<Secret>,
        retry: RetryPolicy,
    ) -> Result<LarkSender, NotifyError> {
        let parsed = reqwest::Url::parse(url.expose()).map_err(|_| NotifyError::BadUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(NotifyError::BadUrl);
        }
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(retry.timeout)
            .connect_timeout(retry.timeout)
            .build()
            .map_err(|e| NotifyError::Client(e.without_url().to_string()))?;
        Ok(LarkSender {
            client,
            host: parsed.host_str().unwrap_or_default().to_string(),
            url: url.clone(),
            secret,
            retry: RetryPolicy {
                attempts: retry.attempts.max(1),
                ..retry
            },
        })
    }

    /// The webhook's host, for logs.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The message body for `card`, signed now if the bot has a secret.
    pub fn body(&self, card: &Card) -> Value {
        let mut body = json!({"msg_type": "interactive", "card": card.to_json()});
        if let Some(secret) = &self.secret {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            body["timestamp"] = Value::String(now.to_string());
            body["sign"] = Value::String(sign(now, secret.expose()));
        }
        body
    }

    /// Sends `card`, retrying transient failures by the policy.
    pub async fn send(&self, card: &Card) -> Result<Delivered, NotifyError> {
        let mut n = 0;
        loop {
            n += 1;
            match self.attempt(card).await {
                Attempt::Sent => return Ok(Delivered { attempts: n }),
                Attempt::Final(e) => return Err(e),
                Attempt::Retry(why) if n >= self.retry.attempts => {
                    return Err(NotifyError::GaveUp {
                        attempts: n,
                        last: why,
                    });
                }
                Attempt::Retry(why) => {
                    let wait = self.retry.backoff(n);
                    tracing::warn!(
                        host = %self.host,
                        attempt = n,
                        error = %why,
                        retry_in_ms = wait.as_millis() as u64,
                        "Lark delivery failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt(&self, card: &Card) -> Attempt {
        let resp = match self
            .client
            .post(self.url.expose())
            .json(&self.body(card))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(e.without_url().to_string()),
        };
        let status = resp.status();
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => return Attempt::Retry(e.without_url().to_string()),
        };
        judge(status.as_u16(), &text)
    }
}

/// Lark's answer to one attempt: status and body.
fn judge(status: u16, text: &str) -> Attempt {
    let answer: Option<Value> = serde_json::from_str(text).ok();
    // Older custom bots answer `StatusCode`, newer ones `code`; both 0 on success.
    let code = answer
        .as_ref()
        .and_then(|v| v.get("code").or_else(|| v.get("StatusCode")))
        .and_then(Value::as_i64);
    let msg = answer
        .as_ref()
        .and_then(|v| v.get("msg").or_else(|| v.get("StatusMessage")))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let head: String = text.chars().take(200).collect();
    if let Some(c) = code.filter(|c| RATE_LIMIT_CODES.contains(c)) {
        return Attempt::Retry(format!("rate limited: code {c}: {msg}"));
    }
    if status == 429 || status >= 500 {
        return Attempt::Retry(format!("HTTP {status}: {head}"));
    }
    if !(200..300).contains(&status) {
        return match code.filter(|c| *c != 0) {
            Some(code) => Attempt::Final(NotifyError::Rejected { code, msg }),
            None => Attempt::Final(NotifyError::Http { status, body: head }),
        };
    }
    match code {
        Some(c) if c != 0 => Attempt::Final(NotifyError::Rejected { code: c, msg }),
        _ => Attempt::Sent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(a: Attempt) -> &'static str {
        match a {
            Attempt::Sent => "sent",
            Attempt::Retry(_) => "retry",
            Attempt::Final(_) => "final",
        }
    }

    #[test]
    fn lark_answers_are_sorted_into_sent_retry_and_final() {
        assert_eq!(
            kind(judge(200, r#"{"code":0,"msg":"success","data":{}}"#)),
            "sent"
        );
        assert_eq!(
            kind(judge(200, r#"{"StatusCode":0,"StatusMessage":"success"}"#)),
            "sent"
        );
        assert_eq!(
            kind(judge(200, r#"{"code":9499,"msg":"too many request"}"#)),
            "retry"
        );
        assert_eq!(
            kind(judge(400, r#"{"code":11232,"msg":"rate limit"}"#)),
            "retry"
        );
        assert_eq!(kind(judge(503, "upstream down")), "retry");
        assert_eq!(kind(judge(429, "")), "retry");
        assert_eq!(
            kind(judge(200, r#"{"code":19021,"msg":"sign match fail"}"#)),
            "final"
        );
        assert_eq!(kind(judge(404, "no such hook")), "final");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            attempts: 9,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
        };
        let b1 = p.backoff(1);
        assert!(b1 >= Duration::from_millis(100) && b1 <= Duration::from_millis(125));
        let b2 = p.backoff(2);
        assert!(b2 >= Duration::from_millis(200) && b2 <= Duration::from_millis(250));
        let b8 = p.backoff(8);
        assert!(b8 >= Duration::from_millis(500) && b8 <= Duration::from_millis(625));
    }

    #[test]
    fn the_url_and_the_secret_never_show_in_debug_output() {
        let url = Secret::new("https://open.feishu.cn/open-apis/bot/v2/hook/token-123");
        let s = LarkSender::new(&url, Some(Secret::new("s3cr3t")), RetryPolicy::default()).unwrap();
        let dbg = format!("{s:?}");
        assert!(
            !dbg.contains("token-123") && !dbg.contains("s3cr3t"),
            "{dbg}"
        );
        assert_eq!(s.host(), "open.feishu.cn");
    }

    #[test]
    fn a_signed_body_carries_timestamp_and_sign_that_verify() {
        let url = Secret::new("http://127.0.0.1:1/hook");
        let s = LarkSender::new(&url, Some(Secret::new("k")), RetryPolicy::default()).unwrap();
        let card = Card {
            title: "t".into(),
            severity: crate::card::Severity::Info,
            sections: vec!["x".into()],
            note: String::new(),
        };
        let body = s.body(&card);
        assert_eq!(body["msg_type"], "interactive");
        let ts: u64 = body["timestamp"].as_str().unwrap().parse().unwrap();
        assert!(crate::sign::verify(ts, "k", body["sign"].as_str().unwrap()));
        let unsigned = LarkSender::new(&url, None, RetryPolicy::default()).unwrap();
        assert!(unsigned.body(&card).get("sign").is_none());
        assert!(LarkSender::new(&Secret::new("ftp://x/y"), None, RetryPolicy::default()).is_err());
    }
}
