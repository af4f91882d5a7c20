//! The gateway's Prometheus metrics, served on their own listener (`[s3] metrics_listen`)
//! because on the S3 port `/metrics` is a bucket name: requests by S3 operation and status
//! class, latency to the response head by operation, body bytes in and out, refused
//! signatures and permissions by S3 error code, requests in flight, open client
//! connections, and secret lookups sent to the master by result. Labels come from
//! fixed sets (operation names, status classes, error codes), never from a bucket, key or
//! access key.

use axum::body::Body;
use http_body_util::BodyExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Instant;

type Labels = Vec<(String, String)>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The `op` label of a request that never reached an operation (bad path, bad signature).
pub const UNROUTED: &str = "unrouted";

/// S3 error codes that mean "who you are or what you may do" was refused.
const AUTH_CODES: [crate::Code; 7] = [
    crate::Code::AccessDenied,
    crate::Code::AuthorizationHeaderMalformed,
    crate::Code::AuthorizationQueryParametersError,
    crate::Code::InvalidAccessKeyId,
    crate::Code::RequestTimeTooSkewed,
    crate::Code::SignatureDoesNotMatch,
    crate::Code::MissingSecurityHeader,
];

/// The gateway's registry and the metrics requests update.
pub struct GatewayMetrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    received: Counter,
    sent: Counter,
    auth_failures: Family<Labels, Counter>,
    in_flight: Gauge,
    connections: Gauge,
    secret_lookups: Family<Labels, Counter>,
}

/// Counts an open client connection until dropped.
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// How a secret lookup sent to the master ended (the `result` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupResult {
    /// The master knows the key.
    Found,
    /// The master does not know the key.
    Unknown,
    /// The master could not answer.
    Error,
}

impl LookupResult {
    fn as_str(self) -> &'static str {
        match self {
            LookupResult::Found => "found",
            LookupResult::Unknown => "unknown",
            LookupResult::Error => "error",
        }
    }
}

/// Counts a request in flight until dropped.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `2xx`, `3xx`, `4xx` or `5xx`.
pub fn status_class(status: http::StatusCode) -> &'static str {
    match status.as_u16() {
        100..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl GatewayMetrics {
    /// Registers every metric under `kdss_s3gw_`.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("kdss_s3gw");
        let m = GatewayMetrics {
            registry: Registry::default(),
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            received: Counter::default(),
            sent: Counter::default(),
            auth_failures: Family::default(),
            in_flight: Gauge::default(),
            connections: Gauge::default(),
            secret_lookups: Family::default(),
        };
        r.register(
            "requests",
            "S3 requests answered, by operation and status class",
            m.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "time from request to response head, by operation (a GET body streams after it)",
            m.duration.clone(),
        );
        r.register(
            "received_bytes",
            "request body bytes read from clients",
            m.received.clone(),
        );
        r.register(
            "sent_bytes",
            "response body bytes sent to clients",
            m.sent.clone(),
        );
        r.register(
            "auth_failures",
            "requests refused for their signature, key, clock or permissions, by S3 error code",
            m.auth_failures.clone(),
        );
        r.register(
            "requests_in_flight",
            "requests received and not yet answered",
            m.in_flight.clone(),
        );
        r.register(
            "connections_open",
            "client connections being served (at most [s3] max_connections)",
            m.connections.clone(),
        );
        r.register(
            "secret_lookups",
            "user secrets asked of the master (cache misses), by result: found, unknown, error",
            m.secret_lookups.clone(),
        );
        for res in [
            LookupResult::Found,
            LookupResult::Unknown,
            LookupResult::Error,
        ] {
            let _ = m
                .secret_lookups
                .get_or_create(&vec![("result".into(), res.as_str().into())]);
        }
        // Every code from the start, so a rule on auth failures has a series at 0.
        for code in AUTH_CODES {
            let _ = m
                .auth_failures
                .get_or_create(&vec![("code".into(), code.as_str().into())]);
        }
        GatewayMetrics { registry: r, ..m }
    }

    /// Marks a request in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Marks a client connection open until the guard drops.
    pub fn connection_opened(&self) -> OpenConnection {
        self.connections.inc();
        OpenConnection(self.connections.clone())
    }

    /// Counts one secret lookup sent to the master.
    pub fn secret_lookup(&self, result: LookupResult) {
        self.secret_lookups
            .get_or_create(&vec![("result".into(), result.as_str().into())])
            .inc();
    }

    /// Counts the answer to one request that started at `started`; `error` is the S3 error
    /// code when it failed.
    pub fn answered(
        &self,
        op: &str,
        status: http::StatusCode,
        error: Option<crate::Code>,
        started: Instant,
    ) {
        self.requests
            .get_or_create(&vec![
                ("op".into(), op.into()),
                ("status_class".into(), status_class(status).into()),
            ])
            .inc();
        self.duration
            .get_or_create(&vec![("op".into(), op.into())])
            .observe(started.elapsed().as_secs_f64());
        if let Some(code) = error.filter(|c| AUTH_CODES.contains(c)) {
            self.auth_failures
                .get_or_create(&vec![("code".into(), code.as_str().into())])
                .inc();
        }
    }

    /// The request body, counting its bytes as they are read.
    pub fn count_received(&self, body: Body) -> Body {
        counted(body, self.received.clone())
    }

    /// The response body, counting its bytes as they are sent.
    pub fn count_sent(&self, body: Body) -> Body {
        counted(body, self.sent.clone())
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut s, &self.registry) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        s
    }
}

fn counted(body: Body, c: Counter) -> Body {
    Body::new(body.map_frame(move |f| {
        if let Some(d) = f.data_ref() {
            c.inc_by(d.len() as u64);
        }
        f
    }))
}

/// The metrics listener's router: `/metrics` only.
pub fn router(m: std::sync::Arc<GatewayMetrics>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let m = m.clone();
            async move {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.encode(),
                )
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_counted_by_operation_class_and_auth_code() {
        let m = GatewayMetrics::new();
        let t = Instant::now();
        m.answered("GetObject", http::StatusCode::OK, None, t);
        m.answered(
            UNROUTED,
            http::StatusCode::FORBIDDEN,
            Some(crate::Code::SignatureDoesNotMatch),
            t,
        );
        m.answered(
            "GetObject",
            http::StatusCode::NOT_FOUND,
            Some(crate::Code::NoSuchKey),
            t,
        );
        let text = m.encode();
        for line in [
            "kdss_s3gw_requests_total{op=\"GetObject\",status_class=\"2xx\"} 1",
            "kdss_s3gw_requests_total{op=\"GetObject\",status_class=\"4xx\"} 1",
            "kdss_s3gw_requests_total{op=\"unrouted\",status_class=\"4xx\"} 1",
            "kdss_s3gw_auth_failures_total{code=\"SignatureDoesNotMatch\"} 1",
            "kdss_s3gw_request_duration_seconds_count{op=\"GetObject\"} 2",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("NoSuchKey"), "{text}");
    }

    #[test]
    fn connections_and_secret_lookups_are_exported() {
        let m = GatewayMetrics::new();
        let c = m.connection_opened();
        m.secret_lookup(LookupResult::Unknown);
        let text = m.encode();
        assert!(text.contains("kdss_s3gw_connections_open 1"), "{text}");
        assert!(
            text.contains("kdss_s3gw_secret_lookups_total{result=\"unknown\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("kdss_s3gw_secret_lookups_total{result=\"found\"} 0"),
            "{text}"
        );
        drop(c);
        assert!(m.encode().contains("kdss_s3gw_connections_open 0"));
    }
}
