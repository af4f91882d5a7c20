//! A standalone master daemon for this crate's multi-process tests (the product binary is
//! `kdss master -c master.toml`, which calls the same [`kdss_master::run`]).

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn,sqlx=warn".into()),
        )
        .with_ansi(false)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let path = match args.iter().position(|a| a == "-c") {
        Some(i) if i + 1 < args.len() => std::path::PathBuf::from(&args[i + 1]),
        _ => {
            eprintln!("usage: kdss-master -c master.toml");
            return std::process::ExitCode::from(2);
        }
    };
    let cfg = match kdss_master::MasterConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let res = rt.block_on(kdss_master::run(cfg, async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }));
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("master failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
