//! A benchmark of metadata operations against running masters: create, stat (lookup), readdir
//! of a large directory and rename, at a chosen concurrency, reported as ops/s and latency
//! percentiles. Every create and rename is durable (committed through Raft, fsynced on a
//! quorum) before it is answered. `kdss bench meta --masters ADDRS` calls [`run_meta_bench`].

use kdss_common::auth::signer::{Signed, Signer};
use kdss_proto::master as pb;
use kdss_proto::master::master_client::MasterClient;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Who the benchmark calls as.
#[derive(Clone)]
pub struct Credential {
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// User the (service) credential acts for.
    pub on_behalf_of: Option<String>,
}

/// An authenticated Master client (every call signed with KDSS2).
pub type Client = MasterClient<Signed<Channel>>;

/// A client on `addr` (host:port), connecting lazily.
pub fn client(addr: &str, cred: Credential) -> Result<Client, BenchError> {
    let ch = crate::raft::network::lazy_channel(addr).map_err(BenchError::Connect)?;
    let signer =
        Signer::new(&cred.access_key, &cred.secret_key).acting_for(cred.on_behalf_of.as_deref());
    Ok(MasterClient::new(signer.wrap(ch)).max_decoding_message_size(64 << 20))
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Bad address.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A call failed.
    #[error("{op} failed: {status}")]
    Call {
        /// The operation.
        op: &'static str,
        /// Its status.
        status: tonic::Status,
    },
    /// No master named a leader.
    #[error("no leader among {0:?}")]
    NoLeader(Vec<String>),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Master gRPC addresses.
    pub masters: Vec<String>,
    /// Credential (an admin, or the service identity acting for one).
    pub access_key: String,
    /// Secret of `access_key`.
    pub secret_key: String,
    /// User the service identity acts for (and owner of the bench bucket).
    pub on_behalf_of: Option<String>,
    /// Files created, stat'ed and renamed (and the size of the directory listed).
    pub files: usize,
    /// Calls in flight.
    pub concurrency: usize,
}

/// Figures of one operation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpFigures {
    /// create, stat, readdir, rename.
    pub op: &'static str,
    /// Operations done (readdir: entries listed).
    pub count: usize,
    /// Wall time.
    pub seconds: f64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Median latency of one call, ms.
    pub p50_ms: f64,
    /// 99th percentile latency of one call, ms.
    pub p99_ms: f64,
}

impl std::fmt::Display for OpFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<8} {:>7} ops {:>8.2} s {:>9.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            self.op, self.count, self.seconds, self.ops_per_sec, self.p50_ms, self.p99_ms
        )
    }
}

fn figures(op: &'static str, count: usize, wall: Duration, mut lat: Vec<Duration>) -> OpFigures {
    lat.sort_unstable();
    let pct = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
            lat[i].as_secs_f64() * 1000.0
        }
    };
    OpFigures {
        op,
        count,
        seconds: wall.as_secs_f64(),
        ops_per_sec: count as f64 / wall.as_secs_f64().max(1e-9),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

/// Finds the leader's gRPC address by asking each master.
pub async fn find_leader(masters: &[String], cred: &Credential) -> Result<String, BenchError> {
    for _ in 0..100 {
        for a in masters {
            let Ok(mut c) = client(a, cred.clone()) else {
                continue;
            };
            if let Ok(r) = c.cluster_status(pb::ClusterStatusRequest {}).await {
                let r = r.into_inner();
                if let Some(m) = r.masters.iter().find(|m| m.id == r.leader_id && m.leader) {
                    return Ok(m.grpc_addr.clone());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(BenchError::NoLeader(masters.to_vec()))
}

/// Runs `n` calls of `f(i)` with `conc` in flight; returns wall time and per-call latencies.
async fn drive<F, Fut>(n: usize, conc: usize, f: F) -> Result<(Duration, Vec<Duration>), BenchError>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), BenchError>> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc.max(1) {
        let (f, next) = (f.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, BenchError>(lat);
                }
                let t = Instant::now();
                f(i).await?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.expect("bench task panicked")?);
    }
    Ok((start.elapsed(), all))
}

fn call(op: &'static str) -> impl Fn(tonic::Status) -> BenchError {
    move |status| BenchError::Call { op, status }
}

/// Creates a fresh bucket and directory, then measures create, stat, readdir and rename.
pub async fn run_meta_bench(o: &BenchOptions) -> Result<Vec<OpFigures>, BenchError> {
    let cred = Credential {
        access_key: o.access_key.clone(),
        secret_key: o.secret_key.clone(),
        on_behalf_of: o.on_behalf_of.clone(),
    };
    let leader = find_leader(&o.masters, &cred).await?;
    let c = client(&leader, cred)?;
    let tag = format!("{:08x}", rand::random::<u32>());
    let bucket = format!("bench-{tag}");
    let b = c
        .clone()
        .create_bucket(pb::CreateBucketRequest {
            name: bucket.clone(),
            ..Default::default()
        })
        .await
        .map_err(call("create_bucket"))?
        .into_inner()
        .bucket
        .unwrap_or_default();
    let dir = c
        .clone()
        .mkdir(pb::MkdirRequest {
            bucket: bucket.clone(),
            parent: b.root_ino,
            name: "d".into(),
            mode: 0o755,
            ..Default::default()
        })
        .await
        .map_err(call("mkdir"))?
        .into_inner()
        .attr
        .unwrap_or_default()
        .ino;
    let mut out = Vec::new();
    let (n, conc) = (o.files, o.concurrency);

    let (cl, bk) = (c.clone(), bucket.clone());
    let (wall, lat) = drive(n, conc, move |i| {
        let (mut cl, bk) = (cl.clone(), bk.clone());
        async move {
            let r = pb::CreateRequest {
                bucket: bk,
                parent: dir,
                name: format!("f{i:06}"),
                kind: pb::FileKind::Regular as i32,
                mode: 0o644,
                exclusive: true,
                ..Default::default()
            };
            cl.create(r).await.map(drop).map_err(call("create"))
        }
    })
    .await?;
    out.push(figures("create", n, wall, lat));

    let (cl, bk) = (c.clone(), bucket.clone());
    let (wall, lat) = drive(n, conc, move |i| {
        let (mut cl, bk) = (cl.clone(), bk.clone());
        async move {
            let r = pb::LookupRequest {
                bucket: bk,
                parent: dir,
                name: format!("f{i:06}"),
            };
            cl.lookup(r).await.map(drop).map_err(call("stat"))
        }
    })
    .await?;
    out.push(figures("stat", n, wall, lat));

    // Readdir: list the whole directory `conc` times in parallel, 1000 entries per call.
    let (cl, bk) = (c.clone(), bucket.clone());
    let start = Instant::now();
    let (_, lat) = drive(conc.max(1), conc, move |_| {
        let (mut cl, bk) = (cl.clone(), bk.clone());
        async move {
            let mut cookie = 0;
            let mut seen = 0usize;
            loop {
                let r = pb::ReadDirRequest {
                    bucket: bk.clone(),
                    ino: dir,
                    cookie,
                    limit: 1000,
                    plus: false,
                };
                let rep = cl.read_dir(r).await.map_err(call("readdir"))?.into_inner();
                seen += rep.entries.len();
                match rep.entries.last() {
                    Some(e) if !rep.eof => cookie = e.cookie,
                    _ => break,
                }
            }
            if seen != n {
                let s = tonic::Status::data_loss(format!("listed {seen} entries, created {n}"));
                return Err(BenchError::Call {
                    op: "readdir",
                    status: s,
                });
            }
            Ok(())
        }
    })
    .await?;
    let listed = n * conc.max(1);
    let mut f = figures("readdir", listed, start.elapsed(), lat);
    f.op = "readdir";
    out.push(f);

    let (cl, bk) = (c.clone(), bucket.clone());
    let (wall, lat) = drive(n, conc, move |i| {
        let (mut cl, bk) = (cl.clone(), bk.clone());
        async move {
            let r = pb::RenameRequest {
                bucket: bk,
                parent: dir,
                name: format!("f{i:06}"),
                new_parent: dir,
                new_name: format!("g{i:06}"),
                flags: 0,
                ..Default::default()
            };
            cl.rename(r).await.map(drop).map_err(call("rename"))
        }
    })
    .await?;
    out.push(figures("rename", n, wall, lat));
    Ok(out)
}
