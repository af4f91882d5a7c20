//! Secrets at rest (docs/security.md): a user's secret key created through the API is in
//! no master file (database, WAL, Raft log, snapshots) nor in a metadata backup, only
//! sealed; the user still signs S3 requests with it; and a database row holding a
//! plaintext secret (as versions before sealing wrote) is sealed by the leader through
//! Raft, to the same bytes on every master, and keeps working.

use crate::common::{cli, skip_reason};
use kdss_testkit::{Cluster, ClusterOpts};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The files under `dir` whose bytes contain `needle`.
fn holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut all = Vec::new();
    files(dir, &mut all);
    all.into_iter()
        .filter(|f| {
            std::fs::read(f)
                .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

fn aws_as(c: &Cluster, (ak, sk): (&str, &str), args: &[&str]) -> Output {
    Command::new("aws")
        .env("AWS_ACCESS_KEY_ID", ak)
        .env("AWS_SECRET_ACCESS_KEY", sk)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .arg("--endpoint-url")
        .arg(c.s3_endpoint().expect("a gateway"))
        .args(args)
        .output()
        .expect("aws runs")
}

fn ok(o: Output, what: &str) -> String {
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{what}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The stored `users.secret_key` of `access_key` in a master's database.
fn stored(db: &Path, access_key: &str) -> String {
    let o = Command::new("sqlite3")
        .arg(db)
        .arg(format!(
            "SELECT secret_key FROM users WHERE access_key = '{access_key}'"
        ))
        .output()
        .expect("sqlite3 runs");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn user_secrets_are_sealed_at_rest_and_plaintext_rows_migrate() {
    if let Some(r) = skip_reason(false) {
        eprintln!("skipped: {r}");
        return;
    }
    if Command::new("sqlite3").arg("--version").output().is_err() {
        eprintln!("skipped: sqlite3 not found");
        return;
    }
    let mut c = Cluster::start(ClusterOpts {
        masters: 3,
        gateways: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    let user = cli(&c, &["user", "create", "sealed-user"]);
    let ak = user["access_key"].as_str().unwrap().to_string();
    let sk = user["secret_key"].as_str().unwrap().to_string();
    assert!(
        sk.len() >= 20,
        "the creator gets the secret in clear: {user}"
    );

    // The user signs S3 requests with it.
    let body = c.scratch("sealed").join("body");
    std::fs::write(&body, b"sealed at rest").unwrap();
    ok(aws_as(&c, (&ak, &sk), &["s3", "mb", "s3://sealedb"]), "mb");
    ok(
        aws_as(
            &c,
            (&ak, &sk),
            &["s3", "cp", body.to_str().unwrap(), "s3://sealedb/o"],
        ),
        "put",
    );

    // The backup, and every file of every master: databases, WAL, Raft log, snapshots.
    let backup = c.scratch("sealed").join("meta.kbak");
    cli(&c, &["meta", "backup", "--out", backup.to_str().unwrap()]);
    let bytes = std::fs::read(&backup).unwrap();
    assert!(bytes.len() > 1000, "a backup was written");
    assert!(
        !bytes.windows(sk.len()).any(|w| w == sk.as_bytes()),
        "the backup holds the user's secret in clear"
    );
    let masters: Vec<PathBuf> = c.layout.masters.iter().map(|m| m.data.clone()).collect();
    for dir in &masters {
        let hits = holding(dir, &sk);
        assert!(hits.is_empty(), "plaintext secret in {hits:?}");
        assert!(
            !holding(dir, "kdss-sealed1:").is_empty(),
            "{} holds sealed secrets",
            dir.display()
        );
    }

    // A database of before sealing: the same user's row holds its secret in clear on every
    // master (written with every daemon down, as an old version left it).
    let dbs: Vec<PathBuf> = masters.iter().map(|d| d.join("meta.db")).collect();
    let (ak2, sk2) = (ak.clone(), sk.clone());
    let dbs2 = dbs.clone();
    c.restart_all_after(move |_, _| {
        for db in &dbs2 {
            let o = Command::new("sqlite3")
                .arg(db)
                .arg(format!(
                    "PRAGMA journal_mode=WAL; UPDATE users SET secret_key = '{sk2}' WHERE access_key = '{ak2}'"
                ))
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(stored(db, &ak2), sk2, "plaintext row planted in {}", db.display());
        }
    })
    .await
    .unwrap();

    // The leader seals it through Raft: every master ends with the same sealed bytes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let sealed = loop {
        let now: Vec<String> = dbs.iter().map(|db| stored(db, &ak)).collect();
        if now.iter().all(|s| s.starts_with("kdss-sealed1:")) {
            assert!(
                now.iter().all(|s| s == &now[0]),
                "masters hold different bytes: {now:?}"
            );
            break now[0].clone();
        }
        assert!(Instant::now() < deadline, "not sealed in 60 s: {now:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(!sealed.contains(&sk));
    let got = ok(
        aws_as(&c, (&ak, &sk), &["s3", "cp", "s3://sealedb/o", "-"]),
        "get after migration",
    );
    assert_eq!(got, "sealed at rest");
}
