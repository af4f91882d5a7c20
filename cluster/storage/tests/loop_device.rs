//! The engine on a real block device: a loop device over a file (needs root and losetup).
//! Where the machine does not allow it the test prints why and passes without running.

mod common;

use common::*;
use kdss_storage::engine::{Disk, IndexSource, OpenOptions};
use std::process::Command;

struct LoopDev(String);
impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

fn attach(file: &std::path::Path) -> Result<LoopDev, String> {
    let out = Command::new("losetup")
        .args(["--find", "--show", "--direct-io=on"])
        .arg(file)
        .output()
        .map_err(|e| format!("cannot run losetup: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "losetup failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(LoopDev(
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

#[test]
fn engine_on_a_loop_device_survives_crash_and_clean_restart() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let file = dir.path().join("backing.img");
    std::fs::File::create(&file)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let dev = match attach(&file) {
        Ok(d) => d,
        Err(why) => {
            println!("SKIPPED engine_on_a_loop_device: {why}");
            return;
        }
    };
    let path = std::path::PathBuf::from(&dev.0);
    let id = kdss_storage::format_disk(&path, 0, CLUSTER).unwrap();
    let d = Disk::open(&path, CLUSTER, OpenOptions::default()).unwrap();
    assert_eq!(d.id(), id);
    assert_eq!(d.geometry().device_size, 64 << 20, "size from BLKGETSIZE64");
    let keys: Vec<_> = (0..100u64).map(|s| key(s, 1)).collect();
    for k in &keys {
        d.put_bytes(*k, &content(*k, len_of(*k))).unwrap();
    }
    drop(d); // crash
    let d = Disk::open(&path, CLUSTER, OpenOptions::default()).unwrap();
    assert!(matches!(d.recovery().index, IndexSource::Scan { .. }));
    for k in &keys {
        assert_eq!(
            d.read(*k, 0, 0).unwrap().data(),
            &content(*k, len_of(*k))[..]
        );
    }
    d.close().unwrap();
    drop(d);
    let d = Disk::open(&path, CLUSTER, OpenOptions::default()).unwrap();
    assert_eq!(d.recovery().index, IndexSource::Checkpoint);
    for k in &keys {
        assert_eq!(
            d.read(*k, 0, 0).unwrap().data(),
            &content(*k, len_of(*k))[..]
        );
    }
}
