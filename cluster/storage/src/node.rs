//! The storage node daemon: opens its disks, serves gRPC and HTTP, runs the compactor, the
//! scrubber and the master heartbeat, and on shutdown stops them and closes every disk
//! cleanly (checkpoint + clean-shutdown flag).

use crate::config::{CompactorSection, ScrubSection, StorageConfig};
use crate::device::fault::FaultLayer;
use crate::engine::{Disk, OpenOptions};
use crate::error::StorageError;
use crate::heartbeat::{self, Advertise};
use crate::node_shared::NodeShared;
use crate::service::StorageService;
use kdss_proto::storage::storage_server::StorageServer;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Largest gRPC message sent (get chunks are 1 MiB; this leaves room).
pub const MAX_MESSAGE: usize = 64 << 20;

/// Largest gRPC message accepted. tonic decodes a whole message before the handler (and so
/// the capability check) runs, so this bounds what an unauthenticated peer makes a node
/// buffer per stream. The largest legitimate one is a PutShard piece: writers stream a
/// shard in pieces of 1 MiB (kdss-shard's PUT_PIECE) plus a header of well under 1 KiB.
pub const MAX_REQUEST: usize = 4 << 20;

/// Binds the configured addresses and serves until `shutdown` resolves.
pub async fn run(
    cfg: StorageConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StorageError> {
    let bind = |addr: String| async move {
        TcpListener::bind(&addr)
            .await
            .map_err(|source| StorageError::Bind { addr, source })
    };
    let grpc = bind(cfg.node.grpc_addr.clone()).await?;
    let http = bind(cfg.node.http_addr.clone()).await?;
    serve(cfg, grpc, http, shutdown).await
}

/// Opens every configured disk (in parallel, on blocking threads).
async fn open_disks(cfg: &StorageConfig) -> Result<Vec<Arc<Disk>>, StorageError> {
    let mut tasks = Vec::new();
    for d in &cfg.disks {
        let path = d.path.clone();
        let cluster = cfg.cluster.id.clone();
        let write_queue_bytes = cfg.limits.write_queue_bytes;
        let fault = cfg.fault.enabled.then(|| {
            let rules = cfg
                .fault
                .rule
                .iter()
                .filter(|r| r.disk == path)
                .map(|r| r.rule())
                .collect();
            Arc::new(FaultLayer::new(rules))
        });
        tasks.push(tokio::task::spawn_blocking(move || {
            Disk::open(
                &path,
                &cluster,
                OpenOptions {
                    fault,
                    write_queue_bytes: Some(write_queue_bytes),
                    ..Default::default()
                },
            )
        }));
    }
    let mut disks = Vec::new();
    let mut first_err = None;
    for t in tasks {
        match t.await.map_err(|e| StorageError::Serve(e.to_string()))? {
            Ok(d) => disks.push(Arc::new(d)),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        close_disks(disks).await;
        return Err(e);
    }
    Ok(disks)
}

async fn close_disks(disks: Vec<Arc<Disk>>) -> Option<StorageError> {
    let mut err = None;
    for d in disks {
        let r = tokio::task::spawn_blocking(move || d.close()).await;
        if let Ok(Err(e)) = r {
            tracing::error!(error = %e, "closing disk failed");
            err.get_or_insert(e);
        }
    }
    err
}

/// Serves on already bound listeners (tests bind port 0 and pass them in).
pub async fn serve(
    cfg: StorageConfig,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StorageError> {
    let tls = cfg
        .tls
        .install()
        .map_err(|e| StorageError::Serve(format!("[tls]: {e}")))?;
    let disks = open_disks(&cfg).await?;
    let node = Arc::new(NodeShared::new(
        cfg.node.id.clone(),
        disks.clone(),
        &cfg.cluster.secret,
        &cfg.rebuild,
    ));
    let grpc_addr = grpc
        .local_addr()
        .map_err(|e| StorageError::Serve(e.to_string()))?;
    let http_addr = http
        .local_addr()
        .map_err(|e| StorageError::Serve(e.to_string()))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };

    let svc = StorageServer::new(StorageService::new(node.clone()))
        .max_decoding_message_size(MAX_REQUEST)
        .max_encoding_message_size(MAX_MESSAGE);
    // A call past its deadline is dropped (its disk admission given back); past the
    // concurrency limit new calls wait on their connection.
    let mut builder = tonic::transport::Server::builder()
        .timeout(cfg.limits.request_timeout())
        .concurrency_limit_per_connection(cfg.limits.max_concurrent_per_connection);
    if let Some(t) = &tls {
        builder = builder
            .tls_config(t.grpc.clone())
            .map_err(|e| StorageError::Serve(format!("[tls]: {e}")))?;
    }
    let grpc_task = tokio::spawn(builder.add_service(svc).serve_with_incoming_shutdown(
        // Nagle held the second write of each small reply until the client's
        // delayed ACK (40 ms): a 4 KiB shard read cost 43 ms.
        tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
        stopped(stop_rx.clone()),
    ));
    let fault_secret = cfg.fault.enabled.then_some(cfg.cluster.secret.as_str());
    let router = crate::http::router(node.clone(), fault_secret);
    let http_stop = stopped(stop_rx.clone());
    let http_tls = tls.map(|t| t.http);
    let http_task = tokio::spawn(kdss_common::tls::http::serve(
        http, router, http_tls, http_stop,
    ));
    let scrub_stop = Arc::new(AtomicBool::new(false));
    let mut background = Vec::new();
    if cfg.compactor.enabled {
        background.push(tokio::spawn(compactor_loop(
            node.clone(),
            cfg.compactor.clone(),
            stop_rx.clone(),
        )));
    }
    if cfg.scrub.enabled {
        background.push(tokio::spawn(scrub_loop(
            node.clone(),
            cfg.scrub.clone(),
            scrub_stop.clone(),
            stop_rx.clone(),
        )));
    }
    let adv = Advertise {
        grpc_addr: cfg
            .node
            .advertise_addr
            .clone()
            .unwrap_or_else(|| grpc_addr.to_string()),
        http_addr: http_addr.to_string(),
        zone: cfg.node.zone.clone(),
        rack: cfg.node.rack.clone(),
    };
    background.push(tokio::spawn(heartbeat::run(
        node.clone(),
        cfg.cluster.masters.clone(),
        cfg.cluster.secret.clone(),
        adv,
        stop_rx.clone(),
    )));
    tracing::info!(node = %cfg.node.id, grpc = %grpc_addr, http = %http_addr, disks = disks.len(),
        "storage node ready");

    let mut result = Ok(());
    tokio::select! {
        _ = shutdown => {}
        r = stopped(stop_rx.clone()) => r,
    }
    tracing::info!(node = %cfg.node.id, "storage node shutting down");
    let _ = stop_tx.send(true);
    scrub_stop.store(true, Ordering::SeqCst);
    match grpc_task.await {
        Ok(Err(e)) => result = Err(StorageError::Serve(e.to_string())),
        Err(e) => result = Err(StorageError::Serve(e.to_string())),
        Ok(Ok(())) => {}
    }
    let _ = http_task.await;
    for b in background {
        let _ = b.await;
    }
    drop(node);
    if let Some(e) = close_disks(disks).await {
        result = result.and(Err(e));
    }
    tracing::info!(node = %cfg.node.id, "storage node stopped");
    result
}

async fn compactor_loop(
    node: Arc<NodeShared>,
    cfg: CompactorSection,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|v| *v) => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        for disk in &node.disks {
            loop {
                let threshold = if disk.idle_for_ms() >= cfg.idle_ms {
                    cfg.threshold
                } else {
                    cfg.force_threshold
                };
                let d = disk.clone();
                match tokio::task::spawn_blocking(move || d.compact_once(threshold)).await {
                    Ok(Ok(Some(_))) if !*stop.borrow() => continue,
                    Ok(Err(e)) => {
                        tracing::warn!(disk = %disk.id(), error = %e, "compaction failed")
                    }
                    _ => {}
                }
                break;
            }
        }
    }
}

async fn scrub_loop(
    node: Arc<NodeShared>,
    cfg: ScrubSection,
    halt: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut wait = Duration::from_secs(10);
    loop {
        tokio::select! {
            _ = stop.wait_for(|v| *v) => return,
            _ = tokio::time::sleep(wait) => {}
        }
        for disk in &node.disks {
            let d = disk.clone();
            let h = halt.clone();
            let rate = cfg.bytes_per_sec as f64;
            let r = tokio::task::spawn_blocking(move || {
                let t0 = Instant::now();
                let mut bytes = 0u64;
                d.scrub_pass(|n| {
                    bytes += n;
                    let due = Duration::from_secs_f64(bytes as f64 / rate);
                    let el = t0.elapsed();
                    if due > el {
                        // Pacing on a blocking thread, not the reactor.
                        #[allow(clippy::disallowed_methods)]
                        std::thread::sleep((due - el).min(Duration::from_millis(200)));
                    }
                    !h.load(Ordering::SeqCst)
                })
            })
            .await;
            match r {
                Ok(Ok(rep)) => tracing::info!(disk = %disk.id(), records = rep.records,
                    corrupt = rep.corrupt.len(), "scrub pass done"),
                Ok(Err(e)) => tracing::warn!(disk = %disk.id(), error = %e, "scrub pass failed"),
                Err(_) => {}
            }
            if halt.load(Ordering::SeqCst) {
                return;
            }
        }
        wait = Duration::from_secs(cfg.interval_sec.max(1));
    }
}
