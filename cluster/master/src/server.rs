//! Starting and stopping a master: open the Raft log and the namespace database, start Raft,
//! bind gRPC (Master + RaftPeer) and HTTP, bootstrap the group and the admin user, and run
//! the small leader duties (expiring client sessions). `run` is the daemon contract;
//! [`start`] returns a handle with the bound addresses, for in-process tests.

use crate::config::MasterConfig;
use crate::error::MasterError;
use crate::metrics::Metrics;
use crate::raft::log_store::LogStore;
use crate::raft::network::{MAX_MESSAGE_BYTES, PeerNetwork};
use crate::raft::peer_service::PeerService;
use crate::raft::{Node, NodeId, Raft, StateMachine};
use crate::service::{MasterService, State};
use kdss_proto::master as pb;
use kdss_proto::master::master_server::MasterServer;
use kdss_proto::master::raft_peer_server::RaftPeerServer;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// TCP keepalive on accepted gRPC connections: a peer that vanished without a FIN is
/// noticed even while its connection is idle at the HTTP/2 level.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// A running master.
pub struct RunningMaster {
    /// The bound gRPC address.
    pub grpc_addr: SocketAddr,
    /// The bound HTTP address.
    pub http_addr: SocketAddr,
    /// Shared state (tests inspect it).
    pub state: Arc<State>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    grpc: JoinHandle<Result<(), tonic::transport::Error>>,
}

/// Serves `cfg` until `shutdown` resolves, then stops cleanly (the daemon contract).
pub async fn run(
    cfg: MasterConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), MasterError> {
    let m = start(cfg).await?;
    tokio::select! {
        _ = shutdown => m.stop().await,
        fatal = raft_fatal(m.state.raft.clone()) => {
            tracing::error!(error = %fatal,
                "Raft stopped on a fatal error; the master exits so that a supervisor restarts it");
            if let Err(e) = m.stop().await {
                tracing::warn!(error = %e, "stopping after the fatal Raft error");
            }
            Err(MasterError::Raft(format!("stopped on a fatal error: {fatal}")))
        }
    }
}

/// Resolves with the error once Raft's core stops on its own: most often the log could not
/// be written (the master's disk is full or failing). Such a master no longer votes nor
/// applies anything, so lingering would only hide it; exiting makes it visible and lets a
/// supervisor (the systemd units in deploy/ restart on failure) start it again once the
/// cause is gone.
async fn raft_fatal(raft: Raft) -> String {
    let mut rx = raft.metrics();
    loop {
        if let Err(e) = &rx.borrow_and_update().running_state {
            return e.to_string();
        }
        if rx.changed().await.is_err() {
            return "the Raft core is gone".to_string();
        }
    }
}

fn raft_config(cfg: &MasterConfig) -> Result<openraft::Config, MasterError> {
    let r = &cfg.raft;
    openraft::Config {
        cluster_name: cfg.cluster.id.clone(),
        heartbeat_interval: r.heartbeat_ms,
        election_timeout_min: r.election_timeout_min_ms,
        election_timeout_max: r.election_timeout_max_ms,
        install_snapshot_timeout: 10_000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(r.snapshot_every),
        max_in_snapshot_log_to_keep: r.keep_logs,
        snapshot_max_chunk_size: 1 << 20,
        max_payload_entries: 1000,
        ..Default::default()
    }
    .validate()
    .map_err(|e| MasterError::Raft(e.to_string()))
}

/// Opens the stores, starts Raft and the servers; returns once they listen.
pub async fn start(cfg: MasterConfig) -> Result<RunningMaster, MasterError> {
    let tls = cfg
        .tls
        .install()
        .map_err(|e| MasterError::Serve(format!("[tls]: {e}")))?;
    let dir = &cfg.master.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| MasterError::io(format!("create {dir:?}"), e))?;
    let grpc_l = tokio::net::TcpListener::bind(cfg.master.grpc_addr)
        .await
        .map_err(|e| MasterError::io(format!("bind gRPC {}", cfg.master.grpc_addr), e))?;
    let http_l = tokio::net::TcpListener::bind(cfg.master.http_addr)
        .await
        .map_err(|e| MasterError::io(format!("bind HTTP {}", cfg.master.http_addr), e))?;
    let grpc_addr = grpc_l
        .local_addr()
        .map_err(|e| MasterError::io("local addr", e))?;
    let http_addr = http_l
        .local_addr()
        .map_err(|e| MasterError::io("local addr", e))?;

    let log = LogStore::open(&dir.join("raft-log.db"))
        .await
        .map_err(|e| MasterError::Storage(e.to_string()))?;
    let sm = StateMachine::open(dir)
        .await
        .map_err(|e| MasterError::Storage(e.to_string()))?;
    let metrics = Arc::new(Metrics::new(log.stats()));
    let raft = Raft::new(
        cfg.master.id,
        Arc::new(raft_config(&cfg)?),
        PeerNetwork::new(&cfg.cluster.secret, &cfg.cluster.id),
        log,
        sm.clone(),
    )
    .await
    .map_err(|e| MasterError::Raft(e.to_string()))?;

    let mut members = cfg.members();
    if members.len() == 1 {
        members[0].grpc_addr = grpc_addr.to_string();
    }
    let mut http_addrs = HashMap::new();
    http_addrs.insert(cfg.master.id, http_addr.to_string());
    let mut st = State::new(
        cfg.master.id,
        &cfg.cluster.secret,
        raft.clone(),
        sm,
        metrics,
        cfg.capacity.reject_pct,
        cfg.capacity.alert_pct,
        http_addrs,
        cfg.ec_policy(),
        cfg.gc.clone(),
        cfg.repair.clone(),
        &cfg.limits,
    );
    st.balance = cfg.balance.clone();
    st.backups.cluster_id = cfg.cluster.id.clone();
    st.mtls = tls.is_some();
    st.backups.schedule = cfg.backup.clone();
    st.events = crate::events::Events::start(&cfg.notify, &cfg.cluster.id, cfg.master.id)
        .map_err(|e| MasterError::Serve(format!("[notify]: {e}")))?;
    crate::service::seal::check_cluster_secret(&st).await?;
    let st = Arc::new(st);

    let (stop, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let svc = MasterServer::new(MasterService::new(st.clone()))
        .max_decoding_message_size(crate::service::MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let peer = RaftPeerServer::new(
        PeerService::new(raft.clone(), st.proposer.clone()).require_client_cert(tls.is_some()),
    )
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let incoming = tonic::transport::server::TcpIncoming::from(grpc_l)
        .with_nodelay(Some(true))
        .with_keepalive(Some(TCP_KEEPALIVE));
    let mut builder = cfg.limits.grpc_server();
    if let Some(t) = &tls {
        builder = builder
            .tls_config(t.grpc.clone())
            .map_err(|e| MasterError::Serve(format!("[tls]: {e}")))?;
    }
    let grpc = tokio::spawn(
        builder
            .layer(crate::auth::layer::AuthLayer::new(
                crate::auth::layer::Verifier::new(st.clone()),
            ))
            .add_service(svc)
            .add_service(peer)
            .serve_with_incoming_shutdown(incoming, stopped(stop_rx.clone())),
    );
    let mut tasks = Vec::new();
    let console = kdss_console::router(crate::console::config(&cfg, &st, grpc_addr))
        .map_err(|e| MasterError::Serve(format!("console: {e}")))?;
    let router = crate::http::router(st.clone()).merge(console);
    let http_stop = stopped(stop_rx.clone());
    let http_tls = tls.map(|t| t.http);
    tasks.push(tokio::spawn(async move {
        if let Err(e) = kdss_common::tls::http::serve(http_l, router, http_tls, http_stop).await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    }));
    tasks.push(tokio::spawn(bootstrap(
        raft.clone(),
        cfg.master.id,
        members,
        stop_rx.clone(),
    )));
    if let Some(admin) = cfg.admin.clone() {
        tasks.push(tokio::spawn(ensure_admin(
            st.clone(),
            admin,
            stop_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(leader_duties(st.clone(), stop_rx.clone())));
    tasks.push(crate::workers::spawn(
        st.clone(),
        crate::workers::gc::GcJob::new(st.jobs.gc_config.clone()),
        st.jobs.gc.clone(),
        stop_rx.clone(),
    ));
    tasks.push(crate::workers::spawn(
        st.clone(),
        crate::workers::repair::RepairJob::new(
            st.jobs.repair_config.clone(),
            st.jobs.repair_state.clone(),
        ),
        st.jobs.repair.clone(),
        stop_rx.clone(),
    ));
    tasks.push(crate::workers::spawn(
        st.clone(),
        crate::workers::balance::BalanceJob::new(st.balance.clone(), st.jobs.balance_state.clone()),
        st.jobs.balance.clone(),
        stop_rx.clone(),
    ));
    if let Some(b) = cfg.backup.clone() {
        tasks.push(crate::workers::spawn(
            st.clone(),
            crate::backup::BackupJob::new(b),
            st.backups.handle.clone(),
            stop_rx.clone(),
        ));
    }
    tasks.push(tokio::spawn(crate::health::job::run(
        st.clone(),
        cfg.health.clone(),
        stop_rx.clone(),
    )));
    tasks.push(tokio::spawn(watch_metrics(st.clone(), stop_rx)));
    tracing::info!(id = cfg.master.id, %grpc_addr, %http_addr, "master ready");
    Ok(RunningMaster {
        grpc_addr,
        http_addr,
        state: st,
        stop,
        tasks,
        grpc,
    })
}

impl RunningMaster {
    /// Stops the servers, Raft and the database.
    pub async fn stop(self) -> Result<(), MasterError> {
        let _ = self.stop.send(true);
        let served = self.grpc.await;
        for t in self.tasks {
            let _ = t.await;
        }
        if let Err(e) = self.state.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        self.state.sm.close().await;
        tracing::info!(id = self.state.id, "master stopped");
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(MasterError::Serve(e.to_string())),
            Err(e) => Err(MasterError::Serve(e.to_string())),
        }
    }
}

/// Initializes the group on first start: a lone master initializes itself; with peers, the
/// member with the lowest id initializes all peers as voters, but only after waiting an
/// election period for a member that already has state to reach it. Idempotent: an
/// initialized member (state on disk, or contacted by a leader) does nothing.
async fn bootstrap(
    raft: Raft,
    id: NodeId,
    members: Vec<crate::config::PeerConfig>,
    stop: watch::Receiver<bool>,
) {
    if raft.is_initialized().await.unwrap_or(true) {
        return;
    }
    if members.iter().map(|p| p.id).min() != Some(id) {
        return;
    }
    if members.len() > 1 {
        let wait = Duration::from_millis(raft.config().election_timeout_max * 3);
        let contacted = raft
            .wait(Some(wait))
            .metrics(
                |m| m.membership_config.membership().nodes().count() > 0,
                "contacted",
            )
            .await;
        if contacted.is_ok() || *stop.borrow() {
            return;
        }
    }
    let nodes: BTreeMap<NodeId, Node> = members
        .iter()
        .map(|p| {
            (
                p.id,
                Node {
                    addr: p.grpc_addr.clone(),
                },
            )
        })
        .collect();
    match raft.initialize(nodes).await {
        Ok(()) => tracing::info!(members = members.len(), "initialized the Raft group"),
        Err(e) => tracing::info!(error = %e, "group already initialized"),
    }
}

/// Creates the `[admin]` user through Raft once a leader exists, if it does not exist yet.
async fn ensure_admin(
    st: Arc<State>,
    admin: crate::config::AdminSection,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match crate::meta_api::user_role(&st.pool(), &admin.access_key).await {
            Ok(Some(_)) => return,
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(error = %e, "admin lookup");
                continue;
            }
        }
        if !st.is_leader() {
            continue;
        }
        let caller = crate::auth::Caller::service();
        let op = pb::mutation::Op::CreateUser(pb::CreateUserRequest {
            name: "admin".to_string(),
            access_key: admin.access_key.clone(),
            secret_key: admin.secret_key.clone(),
            role: pb::Role::Admin as i32,
        });
        match st.propose(&caller, op).await {
            Ok(_) => tracing::info!(access_key = %admin.access_key, "created the admin user"),
            Err(e) => tracing::warn!(error = %e, "could not create the admin user yet"),
        }
    }
}

/// Leader-only periodic work: expire the opens of clients whose sessions lapsed.
async fn leader_duties(st: Arc<State>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if !st.is_leader() {
            continue;
        }
        let caller = crate::auth::Caller::service();
        let op = pb::mutation::Op::ExpireSessions(pb::ExpireSessionsOp {
            now_ns: kdss_common::time::now_ns(),
        });
        if let Err(e) = st.propose(&caller, op).await {
            tracing::debug!(error = %e, "expire sessions");
        }
        crate::service::seal::seal_plaintext_secrets(&st).await;
    }
}

async fn watch_metrics(st: Arc<State>, mut stop: watch::Receiver<bool>) {
    let mut rx = st.raft.metrics();
    loop {
        crate::http::refresh_metrics(&st);
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}
