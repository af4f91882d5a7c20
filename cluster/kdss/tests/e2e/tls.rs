//! TLS (`kdss up --tls`): every door works over TLS for clients that trust the cluster CA
//! — aws cli, boto3, ksfs, kdss-cli — and is closed to plaintext clients, to clients that
//! do not trust the CA, and to a daemon whose certificate the cluster CA did not sign. A
//! daemon refuses to serve plaintext on a non-loopback address.

use crate::common::{assert_file, aws, data, python, skip_reason};
use kdss_common::tls::DaemonRole;
use kdss_launch::Proc;
use kdss_launch::tls::CertAuthority;
use kdss_testkit::{Cluster, ClusterOpts, Mount, bin_path};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Skips (or fails, where CI requires the clients) when aws cli, boto3 or FUSE is missing.
fn skip(need_fuse: bool) -> bool {
    let boto3 = Command::new("python3")
        .args(["-c", "import boto3"])
        .output()
        .is_ok_and(|o| o.status.success());
    let why = skip_reason(need_fuse).or((!boto3).then(|| "boto3 not installed".into()));
    let Some(why) = why else { return false };
    assert!(
        std::env::var_os("KDSS_REQUIRE_S3_CLIENTS").is_none() || why.contains("fuse"),
        "KDSS_REQUIRE_S3_CLIENTS is set but {why}"
    );
    eprintln!("skipped: {why}");
    true
}

async fn tls_cluster() -> Cluster {
    Cluster::start(ClusterOpts {
        gateways: 1,
        tls: true,
        ..ClusterOpts::default()
    })
    .await
    .unwrap()
}

/// `kdss-cli --output json ARGS` as the admin against `masters`, trusting `ca` if given.
fn cli_with(c: &Cluster, masters: &str, ca: Option<&std::path::Path>, args: &[&str]) -> Output {
    let (ak, sk) = c.admin_keys();
    let mut cmd = Command::new(bin_path("kdss-cli").unwrap());
    cmd.env("KDSS_MASTERS", masters)
        .env("KDSS_ACCESS_KEY", ak)
        .env("KDSS_SECRET_KEY", sk)
        .env_remove("KDSS_CONFIG")
        .env_remove("KDSS_CA");
    if let Some(ca) = ca {
        cmd.env("KDSS_CA", ca);
    }
    cmd.args(["--output", "json"]).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cluster_serves_aws_cli_boto3_ksfs_and_the_cli() {
    if skip(true) {
        return;
    }
    let c = tls_cluster().await;
    let endpoint = c.s3_endpoint().unwrap();
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    let ca = c.layout.ca_path().expect("a TLS cluster has a CA");
    let b = c.bucket();
    let dir = c.scratch("tls-files");

    // aws cli over https with AWS_CA_BUNDLE: a multi-stripe object round-trips.
    let body = data(16, 5 << 20);
    std::fs::write(dir.join("in.bin"), &body).unwrap();
    let dst = format!("s3://{b}/aws/in.bin");
    let o = aws(
        &c,
        &[
            "s3",
            "cp",
            "--only-show-errors",
            dir.join("in.bin").to_str().unwrap(),
            &dst,
        ],
    );
    assert!(o.status.success(), "aws put over TLS: {}", text(&o));
    let o = aws(
        &c,
        &[
            "s3",
            "cp",
            "--only-show-errors",
            &dst,
            dir.join("out.bin").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "aws get over TLS: {}", text(&o));
    assert_file(&dir.join("out.bin"), &body);

    // boto3 (AWS_CA_BUNDLE as well): put and get back.
    let prog = r#"
import boto3, os, sys
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
body = os.urandom(300000)
s3.put_object(Bucket=sys.argv[1], Key="boto3/x", Body=body)
got = s3.get_object(Bucket=sys.argv[1], Key="boto3/x")["Body"].read()
assert got == body, "boto3 read back other bytes"
print("ok")
"#;
    let out = python(&c, prog, &[&b]).wait_with_output().unwrap();
    assert!(out.status.success(), "boto3 over TLS: {}", text(&out));

    // ksfs verifies the masters and storage nodes with the CA: write through the mount,
    // read back byte-exact from the mount and through S3.
    let mut m = Mount::new(&c, "tls", &b, "").await.unwrap();
    let file = data(17, 3 << 20);
    std::fs::write(m.join("fuse.bin"), &file).unwrap();
    std::fs::File::open(m.join("fuse.bin"))
        .unwrap()
        .sync_all()
        .unwrap();
    assert_file(&m.join("fuse.bin"), &file);
    m.unmount();
    let o = aws(
        &c,
        &[
            "s3",
            "cp",
            "--only-show-errors",
            &format!("s3://{b}/fuse.bin"),
            dir.join("fuse.bin").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "aws get of the ksfs file: {}", text(&o));
    assert_file(&dir.join("fuse.bin"), &file);
    let m2 = Mount::new(&c, "tls2", &b, "").await.unwrap();
    assert_file(&m2.join("aws/in.bin"), &body);

    // kdss-cli trusting the CA works; not trusting it, or speaking plaintext, fails.
    let masters = c.masters().join(",");
    let o = cli_with(&c, &masters, Some(&ca), &["status"]);
    assert!(o.status.success(), "kdss-cli with the CA: {}", text(&o));
    let o = cli_with(&c, &format!("http://{}", c.masters()[0]), None, &["status"]);
    assert!(
        !o.status.success(),
        "plaintext gRPC to a TLS master answered: {}",
        text(&o)
    );
    let other = CertAuthority::load_or_create(&c.scratch("other-ca")).unwrap();
    let o = cli_with(&c, &masters, Some(&other.ca_path()), &["status"]);
    assert!(
        !o.status.success(),
        "a CLI trusting another CA was served: {}",
        text(&o)
    );

    // aws cli without the CA refuses the gateway's certificate.
    let (ak, sk) = c.admin_keys();
    let o = Command::new("aws")
        .env("AWS_ACCESS_KEY_ID", ak)
        .env("AWS_SECRET_ACCESS_KEY", sk)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_CA_BUNDLE")
        .args(["--cli-read-timeout", "5", "--cli-connect-timeout", "5"])
        .args([
            "--endpoint-url",
            &endpoint,
            "s3",
            "ls",
            &format!("s3://{b}/"),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success(), "aws without the CA listed the bucket");
    assert!(
        text(&o).to_lowercase().contains("ssl") || text(&o).contains("certificate"),
        "aws without the CA failed, but not on the certificate: {}",
        text(&o)
    );

    // Plaintext HTTP to the gateway and to a master's HTTP port gets no HTTP answer.
    for addr in [
        c.layout.gateways[0].clone(),
        c.layout.masters[0].http.clone(),
    ] {
        let head = plaintext_get(&addr);
        assert!(
            !head.starts_with("HTTP/"),
            "{addr} answered plaintext HTTP: {head:?}"
        );
    }
}

/// Sends a plaintext `GET /` and returns whatever comes back (empty when the server hung
/// up), within a few seconds.
fn plaintext_get(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = write!(s, "GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).to_string()
}

/// A storage node joining the cluster with a certificate from `ca`: its config is
/// node-1's with a new id, port and device, and `ca`'s certificate in `[tls]`.
async fn extra_node(c: &Cluster, ca: &CertAuthority, name: &str) -> Proc {
    let dir = c.scratch(name);
    let disk = dir.join("disk.img");
    let out = Command::new(bin_path("kdss").unwrap())
        .args([
            "format-disk",
            "--size",
            "256MiB",
            "--cluster-id",
            &c.layout.cluster_id,
        ])
        .arg("--path")
        .arg(&disk)
        .output()
        .unwrap();
    assert!(out.status.success(), "format-disk: {}", text(&out));
    let f = ca.issue(name, DaemonRole::Storage, &[]).unwrap();
    let port = |_: ()| kdss_launch::free_port().unwrap();
    let masters: Vec<String> = c.masters().iter().map(|m| format!("{m:?}")).collect();
    let toml = format!(
        "[node]\nid = {name:?}\ngrpc_addr = \"127.0.0.1:{}\"\nhttp_addr = \"127.0.0.1:{}\"\n\n\
         [cluster]\nid = {:?}\nsecret = {:?}\nmasters = [{}]\n\n[[disk]]\npath = {:?}\n\n\
         [tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
        port(()),
        port(()),
        c.layout.cluster_id,
        c.layout.secret,
        masters.join(", "),
        disk.display().to_string(),
        c.layout.ca_path().unwrap().display().to_string(),
        f.cert.display().to_string(),
        f.key.display().to_string(),
    );
    let cfg = dir.join("storage.toml");
    std::fs::write(&cfg, toml).unwrap();
    let env = vec![("RUST_LOG".to_string(), "info".to_string())];
    Proc::spawn(
        name,
        &bin_path("kdss").unwrap(),
        vec!["storage".into(), "-c".into(), cfg.into_os_string()],
        &env,
        dir.join("storage.log"),
    )
    .unwrap()
}

/// Whether the masters list `node` online within `within`.
async fn comes_online(c: &Cluster, node: &str, within: Duration) -> bool {
    let ca = c.layout.ca_path().unwrap();
    let masters = c.masters().join(",");
    let start = Instant::now();
    while start.elapsed() < within {
        let o = cli_with(c, &masters, Some(&ca), &["node", "list"]);
        assert!(o.status.success(), "node list: {}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let online = v
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["id"].as_str() == Some(node) && n["online"].as_bool() == Some(true));
        if online {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_certificate_from_another_ca_is_refused() {
    if skip(false) {
        return;
    }
    let c = tls_cluster().await;
    // A node with a certificate of its own making cannot heartbeat: the masters refuse
    // its handshake, though it knows the cluster secret and trusts the cluster CA.
    let rogue_ca = CertAuthority::load_or_create(&c.scratch("rogue-ca")).unwrap();
    let mut rogue = extra_node(&c, &rogue_ca, "node-rogue").await;
    assert!(
        !comes_online(&c, "node-rogue", Duration::from_secs(8)).await,
        "a node with a foreign certificate joined"
    );
    assert!(rogue.exit_status().is_none(), "{}", rogue.log_tail(20));
    let log = rogue.log_tail(50);
    rogue.stop(Duration::from_secs(10));
    assert!(
        log.to_lowercase().contains("certificate") || log.contains("transport"),
        "the rogue node's log does not show the refused handshake:\n{log}"
    );
    // The control: the same node with a certificate the cluster CA signed joins.
    let cluster_ca = CertAuthority::load_or_create(c.layout.tls_dir.as_ref().unwrap()).unwrap();
    let mut good = extra_node(&c, &cluster_ca, "node-extra").await;
    assert!(
        comes_online(&c, "node-extra", Duration::from_secs(30)).await,
        "a node with a cluster certificate did not join: {}",
        good.log_tail(30)
    );
    good.stop(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_on_a_non_loopback_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("master.toml");
    let port = kdss_launch::free_port().unwrap();
    std::fs::write(
        &cfg,
        format!(
            "[master]\nid = 1\ngrpc_addr = \"0.0.0.0:{port}\"\nhttp_addr = \"127.0.0.1:0\"\n\
             data_dir = {:?}\n\n[cluster]\nid = \"c\"\nsecret = \"0123456789abcdef0123456789abcdef\"\n",
            dir.path().join("m").display().to_string()
        ),
    )
    .unwrap();
    let o = Command::new(bin_path("kdss").unwrap())
        .arg("master")
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(
        !o.status.success(),
        "a plaintext master started on 0.0.0.0: {t}"
    );
    for want in [
        cfg.to_str().unwrap(),
        &format!("0.0.0.0:{port}"),
        "insecure = true",
    ] {
        assert!(t.contains(want), "the refusal does not name {want:?}: {t}");
    }
}

/// One `Vote` call to the first master's Raft service, signed with the cluster secret,
/// presenting `identity` (a certificate pair) or none.
/// A channel to `master` over TLS, presenting `identity` when given.
async fn tls_channel(
    c: &Cluster,
    master: &str,
    identity: Option<&kdss_launch::tls::CertFiles>,
) -> tonic::transport::Channel {
    let section = kdss_common::tls::TlsSection {
        ca: c.layout.ca_path(),
        cert: identity.map(|f| f.cert.clone()),
        key: identity.map(|f| f.key.clone()),
        insecure: false,
    };
    let tls = kdss_common::tls::ClientTls::load(&section)
        .unwrap()
        .unwrap();
    kdss_common::tls::endpoint_with(master, Some(&tls))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn raft_vote(c: &Cluster, identity: Option<&kdss_launch::tls::CertFiles>) -> tonic::Status {
    use kdss_proto::master::RaftMessage;
    use kdss_proto::master::raft_peer_client::RaftPeerClient;
    let ch = tls_channel(c, &c.masters()[0], identity).await;
    let req = kdss_master::raft::network::with_cluster(
        &c.layout.cluster_id,
        RaftMessage {
            payload: b"not a vote".to_vec(),
        },
    );
    let signed = kdss_common::auth::signer::Signer::service(&c.layout.secret).wrap(ch);
    RaftPeerClient::new(signed).vote(req).await.unwrap_err()
}

/// GetUserSecret for the admin's key, signed with the cluster secret (as every daemon can),
/// sent to `master` with `identity`'s certificate.
async fn user_secret(
    c: &Cluster,
    master: &str,
    identity: &kdss_launch::tls::CertFiles,
) -> Result<String, tonic::Status> {
    use kdss_proto::master::master_client::MasterClient;
    let ch = tls_channel(c, master, Some(identity)).await;
    let signed = kdss_common::auth::signer::Signer::service(&c.layout.secret).wrap(ch);
    let req = kdss_proto::master::GetUserSecretRequest {
        access_key: c.admin_keys().0,
    };
    let r = MasterClient::new(signed).get_user_secret(req).await?;
    Ok(r.into_inner().secret_key)
}

/// Every daemon holds the cluster secret; the certificate's role decides what it gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_gateway_certificate_gets_user_secrets_and_only_a_master_speaks_raft() {
    let c = Cluster::start(ClusterOpts {
        masters: 3,
        tls: true,
        ..ClusterOpts::default()
    })
    .await
    .unwrap();
    let ca = CertAuthority::load_or_create(c.layout.tls_dir.as_ref().unwrap()).unwrap();
    let gateway = ca.issue("s3gw-9", DaemonRole::Gateway, &[]).unwrap();
    let storage = ca.issue("node-9", DaemonRole::Storage, &[]).unwrap();
    let admin_secret = c.admin_keys().1;
    // Asked of every master: followers check the caller, then forward to the leader.
    for m in c.masters() {
        let got = user_secret(&c, &m, &gateway).await;
        assert_eq!(
            got.as_deref().ok(),
            Some(admin_secret.as_str()),
            "{m}: {got:?}"
        );
        let refused = user_secret(&c, &m, &storage).await.unwrap_err();
        assert_eq!(
            refused.code(),
            tonic::Code::PermissionDenied,
            "{m}: {refused:?}"
        );
        assert!(refused.message().contains("gateway"), "{refused:?}");
    }
    let vote = raft_vote(&c, Some(&storage)).await;
    assert_eq!(vote.code(), tonic::Code::PermissionDenied, "{vote:?}");
    assert!(vote.message().contains("master"), "{vote:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_calls_need_a_cluster_certificate_besides_the_secret() {
    let c = Cluster::start(ClusterOpts {
        tls: true,
        ..ClusterOpts::default()
    })
    .await
    .unwrap();
    // Knowing the cluster secret is not enough to speak Raft on a TLS master.
    let anonymous = raft_vote(&c, None).await;
    assert_eq!(
        anonymous.code(),
        tonic::Code::Unauthenticated,
        "{anonymous:?}"
    );
    assert!(anonymous.message().contains("certificate"), "{anonymous:?}");
    // With a certificate of the cluster CA the call gets past the gate (and fails on the
    // payload, which is no vote).
    let ca = CertAuthority::load_or_create(c.layout.tls_dir.as_ref().unwrap()).unwrap();
    let peer = ca.issue("master-9", DaemonRole::Master, &[]).unwrap();
    let with_cert = raft_vote(&c, Some(&peer)).await;
    assert_eq!(
        with_cert.code(),
        tonic::Code::InvalidArgument,
        "{with_cert:?}"
    );
}
