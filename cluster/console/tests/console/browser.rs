//! The console in a real browser: headless Chromium driven through WebDriver against a
//! `kdss up`-shaped cluster. Signs in as admin, sees 4/4 nodes and 8 disks, creates a bucket
//! with EC 9+2 and a viewer, signs in as the viewer and finds the create forms absent and
//! the API refusing, then kills a storage node and watches the dashboard turn Degraded.
//! Saves a screenshot of every page under docs/console/. Skipped (with the reason) without
//! `chromium` and `chromedriver`, unless KDSS_REQUIRE_CHROMIUM=1.

use crate::common;
use crate::webdriver::{Browser, missing};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn shots() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/console");
    std::fs::create_dir_all(&p).expect("create docs/console");
    p
}

async fn sign_in(b: &Browser, base: &str, ak: &str, sk: &str) -> anyhow::Result<()> {
    b.goto(&format!("{base}/login")).await?;
    b.type_into("#access_key", ak).await?;
    b.type_into("#secret_key", sk).await?;
    b.click("#login-submit").await?;
    b.wait_text("#role", Duration::from_secs(20), |t| !t.is_empty())
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_viewer_in_headless_chromium() {
    if let Some(why) = missing() {
        assert!(
            std::env::var("KDSS_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "KDSS_REQUIRE_CHROMIUM=1 but {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let _one = crate::one_at_a_time().await;
    let mut c = common::cluster().await;
    let base = common::base(&c);
    let dir = shots();
    let b = Browser::start().await.expect("start headless Chromium");
    let long = Duration::from_secs(30);

    // Unsigned visitors land on the login page.
    b.goto(&format!("{base}/")).await.unwrap();
    assert!(b.current_url().await.unwrap().ends_with("/login"));
    b.screenshot(&dir.join("login.png")).await.unwrap();

    let (ak, sk) = c.admin_keys();
    sign_in(&b, &base, &ak, &sk).await.unwrap();
    assert_eq!(b.text("#role").await.unwrap(), "admin");
    b.wait_text("#nodes-count", long, |t| t == "4/4")
        .await
        .unwrap();
    b.wait_text("#disks-count", long, |t| t == "8/8")
        .await
        .unwrap();
    b.wait_text("#health", long, |t| t == "Healthy")
        .await
        .unwrap();
    // The charts follow traffic without a reload: write until the page shows it.
    let stop = Arc::new(AtomicBool::new(false));
    let watch = async {
        let seen = b
            .wait_text("#chart-throughput-label", Duration::from_secs(60), |t| {
                t.contains("samples") && !t.contains("peak 0 B/s")
            })
            .await;
        stop.store(true, Ordering::Relaxed);
        seen
    };
    let (written, seen) = tokio::join!(common::traffic(&c, stop.clone()), watch);
    let written = written.expect("write traffic");
    assert!(written > 0);
    seen.expect("the throughput chart shows the writes");
    let iops = b.text("#chart-iops-label").await.unwrap();
    assert!(!iops.contains("peak 0 IOPS"), "no IOPS charted: {iops}");
    b.screenshot(&dir.join("dashboard.png")).await.unwrap();

    b.goto(&format!("{base}/nodes")).await.unwrap();
    assert_eq!(
        b.find_all("#disks tr").await.unwrap().len(),
        9,
        "8 disks + header"
    );
    b.screenshot(&dir.join("nodes.png")).await.unwrap();

    b.goto(&format!("{base}/buckets")).await.unwrap();
    b.type_into("#bucket-name", "photos").await.unwrap();
    b.click("#bucket-ec option[value='9+2']").await.unwrap();
    b.click("#create-bucket-submit").await.unwrap();
    b.wait_text("tr[data-bucket='photos'] td.ec", long, |t| t == "9+2")
        .await
        .unwrap();
    b.screenshot(&dir.join("buckets.png")).await.unwrap();

    b.goto(&format!("{base}/users")).await.unwrap();
    b.type_into("#user-name", "vera").await.unwrap();
    b.click("#user-role option[value='viewer']").await.unwrap();
    b.click("#create-user-submit").await.unwrap();
    let vk = b.text("#new-access-key").await.unwrap();
    let vs = b.text("#new-secret-key").await.unwrap();
    assert!(!vk.is_empty() && !vs.is_empty(), "keys shown once");
    b.screenshot(&dir.join("users.png")).await.unwrap();

    for page in ["alerts", "config", "jobs"] {
        b.goto(&format!("{base}/{page}")).await.unwrap();
        b.find("main h1").await.unwrap();
        b.screenshot(&dir.join(format!("{page}.png")))
            .await
            .unwrap();
        if page == "config" {
            let config = b.text("#config").await.unwrap();
            assert!(
                !config.contains(&c.secret()) && !config.contains(&sk),
                "a secret on the Config page"
            );
        }
    }

    b.click("#logout").await.unwrap();
    b.find("#login").await.unwrap();

    sign_in(&b, &base, &vk, &vs).await.unwrap();
    assert_eq!(b.text("#role").await.unwrap(), "viewer");
    b.goto(&format!("{base}/buckets")).await.unwrap();
    b.find("#buckets").await.unwrap();
    assert!(
        b.find_all("#create-bucket").await.unwrap().is_empty(),
        "viewer sees create bucket"
    );
    assert!(
        b.find_all("#buckets button").await.unwrap().is_empty(),
        "viewer sees delete"
    );
    b.screenshot(&dir.join("buckets-viewer.png")).await.unwrap();
    b.goto(&format!("{base}/users")).await.unwrap();
    b.find("#users").await.unwrap();
    assert!(
        b.find_all("#create-user").await.unwrap().is_empty(),
        "viewer sees create user"
    );
    b.goto(&format!("{base}/nodes")).await.unwrap();
    assert!(
        b.find_all("#disks button").await.unwrap().is_empty(),
        "viewer sees disk actions"
    );
    // The server refuses what the page does not offer, with the viewer's own session.
    let refused = b
        .eval(
            "return (async () => { const t = document.querySelector('meta[name=csrf-token]').content; \
             const h = {'Content-Type': 'application/json', 'X-CSRF-Token': t}; \
             const a = await fetch('/api/buckets', {method: 'POST', headers: h, \
                 body: JSON.stringify({name: 'sneaky', ec: '5+2'})}); \
             const u = await fetch('/api/users', {method: 'POST', headers: h, \
                 body: JSON.stringify({name: 'x', role: 'admin'})}); \
             return [a.status, u.status]; })();",
        )
        .await
        .unwrap();
    assert_eq!(refused, serde_json::json!([403, 403]), "viewer's API calls");

    c.kill_node(0);
    b.goto(&format!("{base}/")).await.unwrap();
    b.wait_text("#health", Duration::from_secs(90), |t| t == "Degraded")
        .await
        .unwrap();
    b.wait_text("#nodes-count", long, |t| t == "3/4")
        .await
        .unwrap();
    let why = b.text("#health-reasons").await.unwrap();
    assert!(why.contains("offline"), "no reason shown: {why}");
    b.screenshot(&dir.join("dashboard-degraded.png"))
        .await
        .unwrap();

    // The Alerts page lists the lost node now, and among the recent events (the ones Lark
    // gets) once the health pass has reported it.
    b.goto(&format!("{base}/alerts")).await.unwrap();
    let current = b.text("#current-alerts").await.unwrap();
    assert!(current.contains("offline"), "current alerts: {current}");
    let t = std::time::Instant::now();
    loop {
        let recent = b.text("main").await.unwrap();
        if recent.contains("storage node lost") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "no node event: {recent}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        b.goto(&format!("{base}/alerts")).await.unwrap();
    }
    b.screenshot(&dir.join("alerts-degraded.png"))
        .await
        .unwrap();
}
