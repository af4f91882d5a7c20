//! `kdss notify -c notify.toml`: the Alertmanager → Lark relay as a daemon.

use anyhow::Context;
use kdss_notify::relay::{Relay, serve};
use kdss_notify::{LarkSender, RelayConfig, RetryPolicy};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// `kdss notify --help`: what the relay does and how to wire it.
pub const LONG_ABOUT: &str = "Relay Prometheus Alertmanager's alerts to a Lark (Feishu) group.\n\n\
    Listens for Alertmanager's webhook (POST /alerts, payload version 4) and posts each \
    notification to a Lark custom bot as interactive cards: one card for the firing alerts \
    (red, orange or blue by the highest severity label) and one for the resolved ones (green), \
    each alert with its severity, summary and labels, and the cluster name on every card. \
    Requests are signed when the config has the bot's lark_secret; a failed post is retried \
    with backoff (Lark down, HTTP 5xx or 429, rate-limit codes), and a post that still fails \
    answers 502 so Alertmanager tries again later. GET /healthz answers ok.\n\n\
    Point Alertmanager at it with a receiver whose webhook_configs url is \
    http://LISTEN/alerts and send_resolved: true. Prints `listening on http://ADDR/alerts` \
    once it serves. The webhook address and the secret are never logged.\n\n\
    Example config: deploy/notify.toml (it refuses to run until its REPLACE-ME values are \
    filled in).";

/// `kdss notify`.
#[derive(clap::Args)]
pub struct NotifyArgs {
    /// Path of notify.toml: `listen` (address for Alertmanager, default 127.0.0.1:9095),
    /// `lark_url` (the custom bot's webhook), `lark_secret` (optional signing secret) and
    /// `cluster` (the name shown on every card).
    #[arg(short, long)]
    config: PathBuf,
}

/// Runs the relay until SIGINT/SIGTERM.
pub async fn run(args: NotifyArgs) -> anyhow::Result<()> {
    let cfg = RelayConfig::load(&args.config)?;
    let sender = LarkSender::new(
        &cfg.lark_url,
        cfg.lark_secret.clone(),
        RetryPolicy::default(),
    )
    .context("Lark webhook")?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("bind {}", cfg.listen))?;
    let addr = listener.local_addr().context("local address")?;
    tracing::info!(
        %addr,
        lark_host = %sender.host(),
        signed = cfg.lark_secret.is_some(),
        cluster = %cfg.cluster,
        "notify relay ready"
    );
    println!("listening on http://{addr}/alerts");
    std::io::stdout().flush().ok();
    let relay = Arc::new(Relay {
        sender,
        cluster: cfg.cluster,
    });
    serve(listener, relay, crate::signals::shutdown())
        .await
        .context("notify relay failed")
}
