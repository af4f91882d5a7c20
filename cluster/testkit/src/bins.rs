//! Finds the workspace binaries a test runs, building them once per test process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn build_all() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("KDSS_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = workspace_root();
    let status = std::process::Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--workspace", "--bins", "--quiet"])
        .status()
        .map_err(|e| format!("cannot run cargo to build the kdss binaries: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --workspace --bins failed ({status})"));
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    Ok(target.join("debug"))
}

/// Path of workspace binary `name` (`kdss`, `ksfs`, `kdss-cli`), fresh for this test run.
pub fn bin_path(name: &str) -> anyhow::Result<PathBuf> {
    let dir = BUILT
        .get_or_init(build_all)
        .clone()
        .map_err(anyhow::Error::msg)?;
    let p = dir.join(name);
    anyhow::ensure!(
        p.exists(),
        "binary {} not found after building",
        p.display()
    );
    Ok(p)
}
