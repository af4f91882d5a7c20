//! S.M.A.R.T. health of a device, from `smartctl --json -H -A` (smartmontools, which the
//! deploy docs install). Only real block devices are asked; a regular file or a loop
//! device has no S.M.A.R.T. and says "not available" with the reason, never a blank. The
//! probe runs on its own thread at most every [`REFRESH`], so a heartbeat never waits on it.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a block device is asked again.
pub const REFRESH: Duration = Duration::from_secs(600);
/// Major device number of loop devices.
const LOOP_MAJOR: u32 = 7;

/// The last verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmartStatus {
    /// "PASSED", "FAILED", or "not available: <why>".
    pub text: String,
    /// True only when the device reports that it is failing.
    pub failing: bool,
}

fn unavailable(why: impl std::fmt::Display) -> SmartStatus {
    SmartStatus {
        text: format!("not available: {why}"),
        failing: false,
    }
}

/// Why `path` cannot have S.M.A.R.T. data, or None for a device worth asking.
pub fn not_applicable(path: &Path) -> Option<String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot stat {}: {e}", path.display())),
    };
    if !meta.file_type().is_block_device() {
        return Some("a regular file, not a block device".into());
    }
    let major = libc::major(meta.rdev());
    if major == LOOP_MAJOR {
        return Some("a loop device".into());
    }
    None
}

/// Reads the overall verdict from smartctl's JSON (`"smart_status": {"passed": bool}`)
/// without a JSON library: the key and the boolean are all that is needed.
pub fn parse_verdict(json: &str) -> Option<bool> {
    let at = json.find("\"smart_status\"")?;
    let rest = &json[at..];
    let p = rest.find("\"passed\"")?;
    let after = rest[p + "\"passed\"".len()..]
        .trim_start()
        .strip_prefix(':')?;
    let after = after.trim_start();
    if after.starts_with("true") {
        Some(true)
    } else if after.starts_with("false") {
        Some(false)
    } else {
        None
    }
}

fn ask(path: &Path) -> SmartStatus {
    let out = match Command::new("smartctl")
        .args(["--json", "-H", "-A"])
        .arg(path)
        .output()
    {
        Ok(o) => o,
        Err(e) => return unavailable(format!("smartctl cannot run ({e}); install smartmontools")),
    };
    match parse_verdict(&String::from_utf8_lossy(&out.stdout)) {
        Some(true) => SmartStatus {
            text: "PASSED".into(),
            failing: false,
        },
        Some(false) => SmartStatus {
            text: "FAILED".into(),
            failing: true,
        },
        None => unavailable(format!(
            "smartctl gave no health verdict (exit status {})",
            out.status.code().unwrap_or(-1)
        )),
    }
}

/// The cached S.M.A.R.T. status of one device.
#[derive(Debug)]
pub struct SmartProbe {
    path: PathBuf,
    state: Arc<Mutex<(Option<Instant>, SmartStatus, bool)>>,
}

impl SmartProbe {
    /// A probe for `path`; files and loop devices get their final answer at once.
    pub fn new(path: &Path) -> SmartProbe {
        let initial = match not_applicable(path) {
            Some(why) => (Some(Instant::now()), unavailable(why), true),
            None => (None, unavailable("not read yet"), false),
        };
        SmartProbe {
            path: path.to_path_buf(),
            state: Arc::new(Mutex::new(initial)),
        }
    }

    /// The last verdict; starts a refresh in the background when it is due.
    pub fn status(&self) -> SmartStatus {
        let mut st = self.state.lock().expect("smart lock");
        let (last, status, fixed) = &mut *st;
        let due = !*fixed && last.is_none_or(|t| t.elapsed() >= REFRESH);
        if due {
            *last = Some(Instant::now());
            let (path, state) = (self.path.clone(), self.state.clone());
            let spawned = std::thread::Builder::new()
                .name("kdss-smart".into())
                .spawn(move || {
                    let s = ask(&path);
                    state.lock().expect("smart lock").1 = s;
                });
            if let Err(e) = spawned {
                *status = unavailable(format!("cannot start the probe: {e}"));
            }
        }
        status.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_says_not_available_with_the_reason() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let s = SmartProbe::new(f.path()).status();
        assert_eq!(s.text, "not available: a regular file, not a block device");
        assert!(!s.failing);
    }

    #[test]
    fn the_verdict_is_read_from_smartctl_json() {
        let ok = r#"{"smartctl":{"exit_status":0},"smart_status": {"passed": true},"ata_smart_attributes":{}}"#;
        let bad = r#"{"smart_status":{"passed":false}}"#;
        assert_eq!(parse_verdict(ok), Some(true));
        assert_eq!(parse_verdict(bad), Some(false));
        assert_eq!(parse_verdict(r#"{"smartctl":{"messages":[]}}"#), None);
    }
}
