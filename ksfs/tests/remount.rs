//! A mount replaced at the same path: `umount`, then a new ksfs mounts there before the old
//! process has finished its teardown (xfstests' mount cycling does this, generic/029 among
//! them). The old process must leave the new mount alone.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid as i32, sig) };
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_mount_ending_after_a_new_one_took_its_path_leaves_the_new_one_alone()
-> anyhow::Result<()> {
    require_fuse!();
    let cluster = cluster().await?;
    let mut old = KsfsMount::start(&cluster, "old", "").await?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(old.join("kept"))?;
        f.write_all(b"written before the remount")?;
        f.sync_all()?;
    }
    let pid = old.pid().expect("old ksfs pid");
    // Stopped, the old process cannot notice the unmount until the new mount is live: the
    // order a loaded machine can produce by chance.
    signal(pid, libc::SIGSTOP);
    // umount(2) itself: umount(8) stats the path first, which waits on the stopped server.
    let path = std::ffi::CString::new(old.path.as_os_str().as_encoded_bytes())?;
    let um = std::thread::spawn(move || {
        // SAFETY: a valid NUL-terminated path owned by this thread.
        let r = unsafe { libc::umount2(path.as_ptr(), 0) };
        (r == 0)
            .then_some(())
            .ok_or_else(std::io::Error::last_os_error)
    });
    let t = Instant::now();
    while !um.is_finished() {
        if t.elapsed() > Duration::from_secs(20) {
            signal(pid, libc::SIGCONT);
            anyhow::bail!("umount(2) did not return within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Err(e) = um.join().expect("umount thread") {
        signal(pid, libc::SIGCONT);
        anyhow::bail!("umount {}: {e}", old.path.display());
    }
    assert!(!is_mounted(&old.path));

    let new = KsfsMount::start_at(&cluster, "new", &old.path, "").await?;
    signal(pid, libc::SIGCONT);
    let ended = old.wait_exit(Duration::from_secs(30)).await;
    assert!(
        ended.is_some_and(|s| s.success()),
        "the old ksfs should end cleanly after its unmount ({ended:?}):\n{}",
        old.log_tail(30)
    );
    // Give a stray unmount of the path time to land before looking.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        is_mounted(&new.path),
        "the new mount at {} is gone; old process's log:\n{}",
        new.path.display(),
        old.log_tail(30)
    );
    assert_eq!(
        std::fs::read(new.join("kept"))?,
        b"written before the remount"
    );
    Ok(())
}
