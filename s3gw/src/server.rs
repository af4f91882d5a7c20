//! The HTTP side: one axum fallback handler that gives every request an id, verifies its
//! signature, routes it to an [`Endpoint`] and runs one `match`; errors become S3 XML in
//! [`crate::error`]. Stateless: any number of gateways can serve the same cluster.

use crate::api::{self, Ctx};
use crate::auth::{self, AuthSettings, secrets::SecretCache};
use crate::error::{Code, S3Error, S3Result};
use crate::router::{self, Endpoint};
use axum::body::Body;
use axum::extract::{Request, State};
use http::{HeaderValue, Method, Response};
use kdss_client::Client;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What every request shares.
pub struct AppState {
    /// The client signed in as the service identity.
    pub client: Client,
    /// User secrets for SigV4.
    pub secrets: SecretCache,
    /// Verification settings.
    pub auth: AuthSettings,
    /// Region we answer for.
    pub region: String,
    /// Domain for virtual-host style requests.
    pub domain: Option<String>,
    /// Source of request ids.
    pub next_id: AtomicU64,
    /// Request counts, latency and bytes (served on the metrics listener, never here).
    pub metrics: Arc<crate::metrics::GatewayMetrics>,
    /// Longest wait for a request body to move ([`crate::body_timeout`]).
    pub body_read_timeout: std::time::Duration,
}

/// The axum application.
pub fn app(state: Arc<AppState>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

fn request_id(state: &AppState) -> String {
    let n = state.next_id.fetch_add(1, Ordering::Relaxed);
    format!("{:016X}", n ^ ((kdss_common::time::now_ns() as u64) << 20))
}

async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response<Body> {
    let started = std::time::Instant::now();
    let _in_flight = state.metrics.in_flight();
    let id = request_id(&state);
    let method = req.method().clone();
    let resource = req.uri().path().to_string();
    let (parts, body) = req.into_parts();
    let (body, body_timed_out) =
        crate::body_timeout::limit(state.metrics.count_received(body), state.body_read_timeout);
    let req = Request::from_parts(parts, body);
    let mut op = crate::metrics::UNROUTED;
    let mut result = dispatch(&state, req, &mut op).await;
    let body_timed_out = body_timed_out.load(Ordering::Relaxed);
    if body_timed_out {
        result = Err(S3Error::new(
            Code::RequestTimeout,
            "Your socket connection to the server was not read from or written to within the \
             timeout period: the request body stopped arriving. The connection is closed.",
        ));
    }
    let mut error = None;
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            error = Some(e.code);
            if e.code.status().is_server_error() {
                tracing::warn!(request_id = %id, %method, %resource, error = %e, "request failed");
            } else {
                tracing::debug!(request_id = %id, %method, %resource, error = %e, "request refused");
            }
            e.into_response(&id, &resource, method != Method::HEAD)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-amz-request-id", v.clone());
        resp.headers_mut().insert("x-amz-id-2", v);
    }
    resp.headers_mut()
        .insert("server", HeaderValue::from_static("kdss"));
    if body_timed_out {
        // The rest of the body may never come: do not wait for it on this connection.
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    state.metrics.answered(op, resp.status(), error, started);
    resp.map(|b| state.metrics.count_sent(b))
}

/// Verifies, routes and runs one request; `op` is set to the operation once it is known.
async fn dispatch(
    state: &AppState,
    req: Request,
    op: &mut &'static str,
) -> S3Result<Response<Body>> {
    let (parts, body) = req.into_parts();
    if parts.method == Method::OPTIONS {
        return Err(S3Error::new(
            Code::InvalidRequest,
            "Insufficient information. Origin request header needed.",
        ));
    }
    let query = auth::sigv4::query_pairs(parts.uri.query().unwrap_or(""));
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok());
    let (bucket, key) = router::bucket_and_key(parts.uri.path(), host, state.domain.as_deref())?;
    let Some(verified) = auth::authenticate(&parts, &query, &state.secrets, &state.auth).await?
    else {
        return Err(anonymous_refusal(state, &bucket).await);
    };
    let endpoint = router::route(&parts.method, bucket, key, &query, &parts.headers)?;
    *op = endpoint.name();
    let ctx = Ctx {
        client: state.client.acting_for(&verified.access_key),
        user: verified.access_key,
        region: state.region.clone(),
        query,
        headers: parts.headers,
        payload: verified.payload,
    };
    tracing::debug!(?endpoint, user = %ctx.user, "request");
    run_endpoint(&ctx, endpoint, body).await
}

/// Anonymous requests are refused; as in S3, a bucket that does not exist says so first
/// (NoSuchBucket), since bucket names are global and their existence is not a secret.
async fn anonymous_refusal(state: &AppState, bucket: &str) -> S3Error {
    let denied = S3Error::new(Code::AccessDenied, "Anonymous access is not allowed");
    if bucket.is_empty() {
        return denied;
    }
    let req = kdss_proto::master::BucketRequest {
        name: bucket.into(),
    };
    let found: S3Result<kdss_proto::master::BucketReply> = state
        .client
        .master()
        .get_bucket(req)
        .await
        .map_err(crate::S3Error::from);
    match found {
        Err(e) if e.code == Code::NoSuchBucket => e,
        _ => denied,
    }
}

async fn run_endpoint(ctx: &Ctx, endpoint: Endpoint, body: Body) -> S3Result<Response<Body>> {
    use Endpoint::*;
    use api::*;
    match endpoint {
        ListBuckets => bucket::list_buckets(ctx).await,
        CreateBucket { bucket } => bucket::create_bucket(ctx, &bucket, body).await,
        DeleteBucket { bucket } => bucket::delete_bucket(ctx, &bucket).await,
        HeadBucket { bucket } => bucket::head_bucket(ctx, &bucket).await,
        GetBucketLocation { bucket } => bucket::location(ctx, &bucket).await,
        GetBucketVersioning { bucket } => bucket::versioning(ctx, &bucket).await,
        GetBucketAcl { bucket } => {
            bucket::head_bucket(ctx, &bucket).await?;
            Ok(bucket::acl(ctx))
        }
        PutBucketAcl { bucket } => {
            check_canned_acl(&ctx.headers)?;
            bucket::head_bucket(ctx, &bucket).await?;
            Ok(empty(http::StatusCode::OK))
        }
        ListObjects { bucket, v2 } => list::list_objects(ctx, &bucket, v2).await,
        ListObjectVersions { bucket } => list::list_versions(ctx, &bucket).await,
        ListMultipartUploads { bucket } => multipart::list_uploads(ctx, &bucket).await,
        DeleteObjects { bucket } => delete::delete_objects(ctx, &bucket, body).await,
        GetObject { bucket, key } => object_get::get_object(ctx, &bucket, &key, false).await,
        HeadObject { bucket, key } => object_get::get_object(ctx, &bucket, &key, true).await,
        PutObject { bucket, key } => object_put::put_object(ctx, &bucket, &key, body).await,
        CopyObject { bucket, key } => copy::copy_object(ctx, &bucket, &key).await,
        DeleteObject { bucket, key } => delete::delete_object(ctx, &bucket, &key).await,
        GetObjectAttributes { bucket, key } => attributes::get_attributes(ctx, &bucket, &key).await,
        GetObjectAcl { bucket, key } => {
            object_get::get_object(ctx, &bucket, &key, true).await?;
            Ok(bucket::acl(ctx))
        }
        PutObjectAcl { bucket, key } => {
            check_canned_acl(&ctx.headers)?;
            object_get::get_object(ctx, &bucket, &key, true).await?;
            Ok(empty(http::StatusCode::OK))
        }
        CreateMultipartUpload { bucket, key } => multipart::create(ctx, &bucket, &key).await,
        UploadPart {
            bucket,
            key,
            upload_id,
            part,
        } => multipart::upload_part(ctx, &bucket, &key, &upload_id, part, body).await,
        UploadPartCopy {
            bucket,
            key,
            upload_id,
            part,
        } => copy::upload_part_copy(ctx, &bucket, &key, &upload_id, part).await,
        CompleteMultipartUpload {
            bucket,
            key,
            upload_id,
        } => multipart::complete(ctx, &bucket, &key, &upload_id, body).await,
        AbortMultipartUpload {
            bucket,
            key,
            upload_id,
        } => multipart::abort(ctx, &bucket, &key, &upload_id).await,
        ListParts {
            bucket,
            key,
            upload_id,
        } => multipart::list_parts(ctx, &bucket, &key, &upload_id).await,
    }
}
