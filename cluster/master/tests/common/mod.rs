//! A small harness for multi-process master tests: each master is the `kdss-master` binary
//! of this crate (the same `kdss_master::run` that `kdss master` calls) on loopback ports the
//! OS handed out, with its data dir and log under a temp dir. Processes are SIGKILLed on
//! drop; the logs are printed when a test fails.

#![allow(dead_code)]

use kdss_master::bench::{Client, Credential, client};
use kdss_proto::master as pb;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SECRET: &str = "test-cluster-secret-0123456789abcdef";
pub const ADMIN_KEY: &str = "admin";
pub const ADMIN_SECRET: &str = "admin-secret-key";

/// A port that was free a moment ago, outside the ephemeral range: a master restarted on
/// its port must not find it taken by some test's outgoing connection.
pub fn free_port() -> u16 {
    kdss_launch::free_port().expect("a free test port")
}

pub struct Master {
    pub id: u64,
    pub grpc: String,
    pub http: String,
    pub dir: PathBuf,
    pub cfg: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Master {
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "master {} already running", self.id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kdss-master"))
            .arg("-c")
            .arg(&self.cfg)
            .env("RUST_LOG", "info,openraft=warn,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn kdss-master");
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(st)) = c.try_wait() {
                    assert!(st.success(), "master {} exited with {st}", self.id);
                    return;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    panic!("master {} did not stop on SIGTERM", self.id);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Sends `sig` to the running process (SIGSTOP / SIGCONT: a master that is alive but
    /// hears nothing and says nothing, as behind a partition).
    pub fn signal(&self, sig: i32) {
        let c = self.child.as_ref().expect("master is running");
        assert_eq!(unsafe { libc::kill(c.id() as i32, sig) }, 0, "kill({sig})");
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// How the process ended, if it did (then it no longer counts as running).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let st = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(st)
    }

    pub fn client(&self) -> Client {
        client(&self.grpc, service()).unwrap()
    }
}

pub fn service() -> Credential {
    Credential {
        access_key: kdss_common::auth::SERVICE_ACCESS_KEY.into(),
        secret_key: SECRET.into(),
        on_behalf_of: None,
    }
}

pub fn admin() -> Credential {
    Credential {
        access_key: ADMIN_KEY.into(),
        secret_key: ADMIN_SECRET.into(),
        on_behalf_of: None,
    }
}

pub struct Cluster {
    pub masters: Vec<Master>,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Writes configs for `n` masters (snapshot every `snapshot_every` entries) and starts them.
    pub fn start(n: usize, snapshot_every: u64) -> Cluster {
        let mut c = Cluster::configure(n, snapshot_every);
        for m in &mut c.masters {
            m.start();
        }
        c
    }

    /// Writes configs for `n` masters, each with its data in `<dir>/data`, and starts none.
    pub fn configure(n: usize, snapshot_every: u64) -> Cluster {
        Cluster::configure_on(n, snapshot_every, |_| "127.0.0.1".to_string())
    }

    /// Like [`Cluster::start`], with master `i` (from 0) listening on `127.0.0.<base + i>`:
    /// one master's address can then be cut off (see `tests/stuck_proposals.rs`).
    pub fn start_apart(n: usize, snapshot_every: u64, base: u8) -> Cluster {
        let mut c = Cluster::configure_on(n, snapshot_every, |i| {
            format!("127.0.0.{}", base as usize + i)
        });
        for m in &mut c.masters {
            m.start();
        }
        c
    }

    /// Writes configs for `n` masters, master `i` listening on `host(i)`.
    pub fn configure_on(n: usize, snapshot_every: u64, host: impl Fn(usize) -> String) -> Cluster {
        let base = std::env::var_os("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&base).unwrap();
        let dir = tempfile::Builder::new()
            .prefix("masters-")
            .tempdir_in(base)
            .unwrap();
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        // Each cluster its own id, as each real cluster has: a mixed-up peer list between
        // two test clusters is refused rather than merged.
        let cluster_id = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let peers = ports
            .iter()
            .enumerate()
            .map(|(i, (g, _))| format!("{{ id = {}, grpc_addr = \"{}:{g}\" }}", i + 1, host(i)))
            .collect::<Vec<_>>()
            .join(", ");
        let mut masters = Vec::new();
        for (i, (g, h)) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let ip = host(i);
            let mdir = dir.path().join(format!("m{id}"));
            std::fs::create_dir_all(&mdir).unwrap();
            let cfg = mdir.join("master.toml");
            std::fs::write(
                &cfg,
                format!(
                    "[master]\nid = {id}\ngrpc_addr = \"{ip}:{g}\"\nhttp_addr = \"{ip}:{h}\"\n\
                     data_dir = \"{}\"\n[cluster]\nid = \"{cluster_id}\"\nsecret = \"{SECRET}\"\npeers = [{peers}]\n\
                     [admin]\naccess_key = \"{ADMIN_KEY}\"\nsecret_key = \"{ADMIN_SECRET}\"\n\
                     [raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 700\n\
                     election_timeout_max_ms = 1400\nsnapshot_every = {snapshot_every}\nkeep_logs = 20\n",
                    mdir.join("data").display()
                ),
            )
            .unwrap();
            masters.push(Master {
                id,
                grpc: format!("{ip}:{g}"),
                http: format!("{ip}:{h}"),
                log: mdir.join("master.log"),
                dir: mdir,
                cfg,
                child: None,
            });
        }
        Cluster { masters, dir }
    }

    pub fn addrs(&self) -> Vec<String> {
        self.masters.iter().map(|m| m.grpc.clone()).collect()
    }

    /// Waits until a running master names a leader that is running; returns its index.
    pub async fn wait_leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            for m in self.masters.iter().filter(|m| m.running()) {
                if let Ok(r) = m.client().cluster_status(pb::ClusterStatusRequest {}).await {
                    let r = r.into_inner();
                    if let Some(i) = self
                        .masters
                        .iter()
                        .position(|x| x.id == r.leader_id && x.running())
                    {
                        // The leader must agree that it leads.
                        if let Ok(s) = self.masters[i]
                            .client()
                            .cluster_status(pb::ClusterStatusRequest {})
                            .await
                            && s.into_inner().leader_id == r.leader_id
                        {
                            return i;
                        }
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no leader within {within:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn logs(&self) -> String {
        let mut s = String::new();
        for m in &self.masters {
            let text = std::fs::read_to_string(&m.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            s.push_str(&format!("----- master {} ({})\n", m.id, m.log.display()));
            // A backtrace fills the tail; the panic message above it is the useful part.
            let lines: Vec<&str> = text.lines().collect();
            for (i, l) in lines.iter().enumerate() {
                if l.contains("panicked at") {
                    s.push_str(&format!("PANIC: {l}\n"));
                    if let Some(next) = lines.get(i + 1) {
                        s.push_str(&format!("PANIC: {next}\n"));
                    }
                }
            }
            for l in tail.into_iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    pub fn log_of(&self, i: usize) -> String {
        std::fs::read_to_string(&self.masters[i].log).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        for m in &mut self.masters {
            m.kill();
        }
    }
}

/// [`http_get_blocking`] off the async reactor.
pub async fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let (a, p) = (addr.to_string(), path.to_string());
    tokio::task::spawn_blocking(move || http_get_blocking(&a, &p))
        .await
        .unwrap()
}

/// GET http://addr/path with a bare HTTP/1.0 request; returns (status, body).
pub fn http_get_blocking(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let code = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// Every name in a directory, paging with cookies.
pub async fn list_dir(
    c: &mut Client,
    bucket: &str,
    ino: u64,
) -> Result<Vec<String>, tonic::Status> {
    let mut names = Vec::new();
    let mut cookie = 0;
    loop {
        let r = c
            .read_dir(pb::ReadDirRequest {
                bucket: bucket.into(),
                ino,
                cookie,
                limit: 500,
                plus: false,
            })
            .await?
            .into_inner();
        names.extend(r.entries.iter().map(|e| e.name.clone()));
        match r.entries.last() {
            Some(e) if !r.eof => cookie = e.cookie,
            _ => return Ok(names),
        }
    }
}

pub fn data_dir(m: &Master) -> &Path {
    &m.dir
}

/// Creates bucket `bkt` as the admin once a leader exists; returns its root inode.
pub async fn make_bucket(c: &Cluster) -> u64 {
    let l = c.wait_leader(Duration::from_secs(30)).await;
    let mut admin = kdss_master::bench::client(&c.masters[l].grpc, admin()).unwrap();
    // The admin user is created through Raft just after the election.
    for _ in 0..200 {
        match admin
            .create_bucket(pb::CreateBucketRequest {
                name: "bkt".into(),
                ..Default::default()
            })
            .await
        {
            Ok(r) => return r.into_inner().bucket.unwrap().root_ino,
            Err(e)
                if e.code() == tonic::Code::Unauthenticated
                    || e.code() == tonic::Code::Unavailable =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("create bucket: {e}\n{}", c.logs()),
        }
    }
    panic!("could not create the bucket\n{}", c.logs());
}

/// A mkdir of `name` under `root` in bucket `bkt`.
pub fn mkdir(root: u64, name: &str) -> pb::MkdirRequest {
    pb::MkdirRequest {
        bucket: "bkt".into(),
        parent: root,
        name: name.into(),
        mode: 0o755,
        ..Default::default()
    }
}

/// An in-process master (`kdss_master::start`) on port-0 listeners with `extra` appended to
/// its config (e.g. a `[limits]` table), returned once a leader serves the admin user.
pub async fn single_master(dir: &Path, extra: &str) -> kdss_master::RunningMaster {
    let text = format!(
        "[master]\nid = 1\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\
         [cluster]\nid = \"t\"\nsecret = \"{SECRET}\"\n[admin]\naccess_key = \"{ADMIN_KEY}\"\n\
         secret_key = \"{ADMIN_SECRET}\"\n{extra}\n",
        dir.display()
    );
    let cfg = kdss_master::MasterConfig::parse(Path::new("master.toml"), &text).unwrap();
    let m = kdss_master::start(cfg).await.unwrap();
    let mut c = client(&m.grpc_addr.to_string(), admin()).unwrap();
    for _ in 0..400 {
        if c.list_users(pb::ListUsersRequest {}).await.is_ok() {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("single master never became ready");
}
