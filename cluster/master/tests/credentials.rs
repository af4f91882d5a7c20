//! Attacks on the internal credential against a real `kdss-master` process: a credential
//! made by the real signer is captured before it is sent (as a sniffer on the wire would
//! see it), then replayed by hand with raw tonic metadata: a second use, another method,
//! a stale time, another on-behalf-of user. Each is refused `Unauthenticated`, and the
//! untouched credential is shown to work once, so the refusal is about the change.

mod common;

use common::{Cluster, SECRET};
use kdss_common::auth::signer::Signer;
use kdss_common::auth::{self, MAX_SKEW_MS};
use kdss_proto::master as pb;
use kdss_proto::master::master_client::MasterClient;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::Code;
use tonic::transport::Channel;

/// A "channel" that records the signed request's headers and sends nothing.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Option<http::HeaderMap>>>);

impl tower_service::Service<http::Request<tonic::body::Body>> for Capture {
    type Response = http::Response<tonic::body::Body>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        *self.0.lock().unwrap() = Some(req.headers().clone());
        std::future::ready(Err("captured, not sent".into()))
    }
}

/// The headers `signer` puts on a heartbeat carrying `hb`.
async fn captured_heartbeat(signer: &Signer, hb: &pb::RegisterNodeRequest) -> http::HeaderMap {
    let cap = Capture::default();
    let mut c = MasterClient::new(signer.wrap(cap.clone()));
    let _ = c.heartbeat(hb.clone()).await;
    cap.0.lock().unwrap().take().expect("a request was signed")
}

/// The headers `signer` puts on a ListBuckets call.
async fn captured_list_buckets(signer: &Signer) -> http::HeaderMap {
    let cap = Capture::default();
    let mut c = MasterClient::new(signer.wrap(cap.clone()));
    let _ = c.list_buckets(pb::ListBucketsRequest {}).await;
    cap.0.lock().unwrap().take().expect("a request was signed")
}

/// `msg` with the given headers copied into its metadata, for a raw unsigned client.
fn with_headers<T>(msg: T, h: &http::HeaderMap) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    for key in [auth::AUTH_HEADER, auth::ON_BEHALF_OF_HEADER] {
        if let Some(v) = h.get(key) {
            r.metadata_mut()
                .insert(key, v.to_str().unwrap().parse().unwrap());
        }
    }
    r
}

fn heartbeat() -> pb::RegisterNodeRequest {
    pb::RegisterNodeRequest {
        node_id: "attack-node".into(),
        grpc_addr: "127.0.0.1:1".into(),
        http_addr: "127.0.0.1:2".into(),
        ..Default::default()
    }
}

fn assert_refused(r: Result<impl std::fmt::Debug, tonic::Status>, needle: &str) {
    let e = r.expect_err("the forged call was accepted");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(
        e.message().contains(needle),
        "expected {needle:?} in {:?}",
        e.message()
    );
}

async fn raw_client(c: &Cluster) -> MasterClient<Channel> {
    let l = c.wait_leader(Duration::from_secs(30)).await;
    let ch = kdss_master::raft::network::lazy_channel(&c.masters[l].grpc).unwrap();
    MasterClient::new(ch)
}

#[tokio::test]
async fn captured_credentials_cannot_be_replayed_moved_or_stretched() {
    let c = Cluster::start(1, 1000);
    let mut raw = raw_client(&c).await;
    let service = Signer::service(SECRET);
    // The node exists (a heartbeat from an unknown node is fine too, but be realistic).
    let mut signed = MasterClient::new(
        service.wrap(kdss_master::raft::network::lazy_channel(&c.masters[0].grpc).unwrap()),
    );
    signed.register_node(heartbeat()).await.unwrap();

    // (a) The same heartbeat credential twice: the first is the real call, the second a replay.
    let h = captured_heartbeat(&service, &heartbeat()).await;
    raw.heartbeat(with_headers(heartbeat(), &h)).await.unwrap();
    assert_refused(raw.heartbeat(with_headers(heartbeat(), &h)).await, "replay");

    // (b) A fresh (never used) heartbeat credential on the admin calls it would unlock.
    let h = captured_heartbeat(&service, &heartbeat()).await;
    let secret_req = pb::GetUserSecretRequest {
        access_key: common::ADMIN_KEY.into(),
    };
    assert_refused(
        raw.get_user_secret(with_headers(secret_req, &h)).await,
        "signature does not match",
    );
    let create = pb::CreateUserRequest {
        name: "mallory".into(),
        role: pb::Role::Admin as i32,
        ..Default::default()
    };
    assert_refused(
        raw.create_user(with_headers(create, &h)).await,
        "signature does not match",
    );
    // The same heartbeat with another body (a node pointed elsewhere) is refused too.
    let mut moved = heartbeat();
    moved.grpc_addr = "10.6.6.6:7000".into();
    assert_refused(
        raw.heartbeat(with_headers(moved, &h)).await,
        "body does not match",
    );
    // And the untouched credential still works once: the refusals were about the changes.
    raw.heartbeat(with_headers(heartbeat(), &h)).await.unwrap();

    // (c) Time: a correct signature made outside the window is refused; inside, taken.
    let body = {
        let msg = pb::ClusterStatusRequest {}.encode_to_vec();
        let mut framed = vec![0u8];
        framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        framed.extend_from_slice(&msg);
        auth::body_digest(&framed)
    };
    let method = "/kdss.master.v1.Master/ClusterStatus";
    let now = kdss_common::time::now_ms();
    for (at, ok) in [
        (now - MAX_SKEW_MS - 10_000, false),
        (now + MAX_SKEW_MS + 10_000, false),
        (now - MAX_SKEW_MS / 2, true),
        (now + MAX_SKEW_MS / 2, true),
    ] {
        let mut h = http::HeaderMap::new();
        h.insert(
            auth::AUTH_HEADER,
            service.header(method, body, at).parse().unwrap(),
        );
        let r = raw
            .cluster_status(with_headers(pb::ClusterStatusRequest {}, &h))
            .await;
        if ok {
            r.unwrap();
        } else {
            assert_refused(r, "away from this server's clock");
        }
    }

    // (d) A service credential acting for one user, re-pointed at another.
    let l = c.wait_leader(Duration::from_secs(30)).await;
    let mut admin = kdss_master::bench::client(&c.masters[l].grpc, common::admin()).unwrap();
    // The admin user is created through Raft just after the election.
    let mut created = false;
    for _ in 0..200 {
        let r = admin
            .create_user(pb::CreateUserRequest {
                name: "alice".into(),
                access_key: "alice-key".into(),
                secret_key: "alice-secret-key-0123456789".into(),
                role: pb::Role::User as i32,
            })
            .await;
        match r {
            Ok(_) => {
                created = true;
                break;
            }
            Err(e) if e.code() == Code::Unauthenticated => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("create user: {e:?}"),
        }
    }
    assert!(created, "the admin user never appeared\n{}", c.logs());
    let h = captured_list_buckets(&service.acting_for(Some("alice-key"))).await;
    assert_eq!(h.get(auth::ON_BEHALF_OF_HEADER).unwrap(), "alice-key");
    for other in [Some("admin"), None] {
        let mut forged = h.clone();
        match other {
            Some(u) => forged.insert(auth::ON_BEHALF_OF_HEADER, u.parse().unwrap()),
            None => forged.remove(auth::ON_BEHALF_OF_HEADER),
        };
        assert_refused(
            raw.list_buckets(with_headers(pb::ListBucketsRequest {}, &forged))
                .await,
            "signature does not match",
        );
    }
    raw.list_buckets(with_headers(pb::ListBucketsRequest {}, &h))
        .await
        .unwrap();

    // The old scheme is gone.
    let mut h = http::HeaderMap::new();
    h.insert(
        auth::AUTH_HEADER,
        "KDSS1 kdss-service:1:00".parse().unwrap(),
    );
    assert_refused(
        raw.cluster_status(with_headers(pb::ClusterStatusRequest {}, &h))
            .await,
        "KDSS2",
    );
}

/// Calls through a follower are forwarded to the leader signed by the follower for the
/// verified caller with the caller's nonce: the nonce is spent on the follower and on the
/// leader, so the captured credential replays to neither.
#[tokio::test]
async fn a_follower_forwards_a_users_call_and_refuses_its_replay() {
    let c = Cluster::start(3, 1000);
    let l = c.wait_leader(Duration::from_secs(30)).await;
    let f = (l + 1) % 3;
    let admin = Signer::new(common::ADMIN_KEY, common::ADMIN_SECRET);
    let ch = kdss_master::raft::network::lazy_channel(&c.masters[f].grpc).unwrap();
    let mut raw = MasterClient::new(ch);
    let mut to_leader =
        MasterClient::new(kdss_master::raft::network::lazy_channel(&c.masters[l].grpc).unwrap());
    // The admin user is created through Raft after the election; wait for it on the follower.
    let mut ok = false;
    for _ in 0..100 {
        let cap = Capture::default();
        let _ = MasterClient::new(admin.wrap(cap.clone()))
            .create_bucket(pb::CreateBucketRequest {
                name: "viafollower".into(),
                ..Default::default()
            })
            .await;
        let h = cap.0.lock().unwrap().take().unwrap();
        let req = || pb::CreateBucketRequest {
            name: "viafollower".into(),
            ..Default::default()
        };
        match raw.create_bucket(with_headers(req(), &h)).await {
            Ok(_) => {
                assert_refused(raw.create_bucket(with_headers(req(), &h)).await, "replay");
                assert_refused(
                    to_leader.create_bucket(with_headers(req(), &h)).await,
                    "replay",
                );
                ok = true;
                break;
            }
            Err(e) if matches!(e.code(), Code::Unauthenticated | Code::Unavailable) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("create bucket through a follower: {e:?}\n{}", c.logs()),
        }
    }
    assert!(
        ok,
        "never created the bucket through the follower\n{}",
        c.logs()
    );
}
