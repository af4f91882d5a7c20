//! Walks the whole endpoint × role table (`kdss_console::rbac::ENDPOINTS`) against a live
//! cluster: every endpoint answers 401 without a session, 403 to each role below its row,
//! and lets each role at or above it through (its answer is then whatever the call gives:
//! 200, or 400/404/422 for the deliberately empty or unknown arguments, never 401/403).
//! Also: a change without the CSRF token is refused, the cookie's attributes, sign-out, and
//! the failed-login limit.

use crate::common::{self, Api, create_user};
use kdss_console::rbac::{ConsoleRole, ENDPOINTS};

/// A concrete path for a route pattern: unknown names, so allowed calls change nothing.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{disk}", "00000000deadbeef")
        .replace("{name}", "no-such-bucket")
        .replace("{access_key}", "no-such-user")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_each_role_as_the_table_says() {
    let _one = crate::one_at_a_time().await;
    let c = common::cluster().await;
    let base = common::base(&c);
    let (ak, sk) = c.admin_keys();
    let admin = Api::login(&base, &ak, &sk).await.unwrap();
    assert!(
        admin.set_cookie.contains("HttpOnly")
            && admin.set_cookie.contains("SameSite=Strict")
            && admin.set_cookie.contains("Max-Age="),
        "session cookie attributes: {}",
        admin.set_cookie
    );
    let (vk, vs) = create_user(&admin, "vic", "viewer").await.unwrap();
    let (ok_, os) = create_user(&admin, "olga", "operator").await.unwrap();
    let (_uk, _us) = create_user(&admin, "s3-only", "user").await.unwrap();
    let viewer = Api::login(&base, &vk, &vs).await.unwrap();
    let operator = Api::login(&base, &ok_, &os).await.unwrap();
    let (_, (st, _)) = Api::try_login(&base, &_uk, &_us).await.unwrap();
    assert_eq!(st, 403, "a plain S3 user must not get a console session");

    // Sign-out ends a session, so it goes last.
    let mut rows: Vec<_> = ENDPOINTS.iter().collect();
    rows.sort_by_key(|e| e.path == "/api/logout");
    let anon = Api::anonymous(&base);
    let mut walked = 0;
    for role in ConsoleRole::ALL {
        let api = match role {
            ConsoleRole::Viewer => &viewer,
            ConsoleRole::Operator => &operator,
            ConsoleRole::Admin => &admin,
        };
        for e in &rows {
            let path = concrete(e.path);
            let body = (e.method != "GET").then(|| serde_json::json!({}));
            let (st, b) = anon.call(e.method, &path, body.clone()).await.unwrap();
            assert_eq!(st, 401, "{} {path} without a session: {b}", e.method);
            let (st, b) = api.call(e.method, &path, body).await.unwrap();
            if role >= e.min {
                assert!(
                    st != 401 && st != 403,
                    "{} {path} as {role:?} is allowed by the table, got {st} {b}",
                    e.method
                );
            } else {
                assert_eq!(st, 403, "{} {path} as {role:?}: {b}", e.method);
            }
            walked += 1;
        }
    }
    assert_eq!(walked, ENDPOINTS.len() * 3);

    // A change without the CSRF token is refused even for an admin.
    let admin = Api::login(&base, &ak, &sk).await.unwrap();
    let body = serde_json::json!({ "name": "no-csrf", "ec": "9+2" });
    let (st, _) = admin
        .call_with("POST", "/api/buckets", Some(body.clone()), false)
        .await
        .unwrap();
    assert_eq!(st, 403, "POST without the CSRF token");
    let (st, b) = admin
        .call("POST", "/api/buckets", Some(body))
        .await
        .unwrap();
    assert_eq!(st, 200, "with the token: {b}");
    // Only the presets; and the logged-out session is gone.
    let (st, _) = admin
        .call(
            "POST",
            "/api/buckets",
            Some(serde_json::json!({ "name": "odd", "ec": "3+1" })),
        )
        .await
        .unwrap();
    assert_eq!(st, 400, "EC 3+1 is not a preset");
    let (st, _) = admin.call("POST", "/api/logout", None).await.unwrap();
    assert_eq!(st, 200);
    let (st, _) = admin.call("GET", "/api/session", None).await.unwrap();
    assert_eq!(st, 401, "the session outlived sign-out");

    // Five wrong secrets for a key, then even the right one waits.
    for _ in 0..kdss_console::session::MAX_FAILURES {
        let (_, (st, _)) = Api::try_login(&base, &vk, "wrong-secret").await.unwrap();
        assert_eq!(st, 401);
    }
    let (_, (st, b)) = Api::try_login(&base, &vk, &vs).await.unwrap();
    assert_eq!(st, 429, "failed logins are not limited: {b}");
    let log = c.all_logs(400);
    assert!(
        log.contains("console login failed"),
        "failures are not logged"
    );
    assert!(!log.contains("wrong-secret"), "a secret reached the log");
}
