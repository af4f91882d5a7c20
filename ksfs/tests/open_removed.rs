//! Descriptors whose name was removed under them, through the kernel on a real mount:
//! `fstat` answers with nlink 0 (not ENOENT) for a file replaced by `rename` and for a
//! directory removed by `rmdir` or replaced by `rename` (xfstests generic/035), the file
//! stays readable, and the removed directory reads as empty.

mod common;

use common::{KsfsMount, check};
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsRawFd;

fn fstat(f: &File) -> std::io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value; fstat fills it from an open descriptor.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `f` is an open descriptor and `st` a writable stat buffer.
    check(unsafe { libc::fstat(f.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// Names a directory descriptor lists (through a dup, so `f` stays open).
fn list_fd(f: &File) -> Vec<String> {
    let mut names = Vec::new();
    // SAFETY: dup of an open descriptor; fdopendir takes ownership of the copy, which
    // closedir releases; readdir's entries are read before the next call.
    unsafe {
        let fd = libc::dup(f.as_raw_fd());
        assert!(fd >= 0);
        let dir = libc::fdopendir(fd);
        assert!(!dir.is_null());
        loop {
            let e = libc::readdir(dir);
            if e.is_null() {
                break;
            }
            let name = std::ffi::CStr::from_ptr((*e).d_name.as_ptr());
            names.push(name.to_string_lossy().into_owned());
        }
        libc::closedir(dir);
    }
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fstat_after_rename_over_and_rmdir_sees_nlink_zero() -> anyhow::Result<()> {
    require_fuse!();
    let cluster = common::cluster().await?;
    let m = KsfsMount::start(&cluster, "removed", "").await?;
    let d = m.join("r");
    fs::create_dir(&d)?;

    // A file replaced by rename: still fstat-able (nlink 0) and readable.
    fs::write(d.join("file1"), b"new")?;
    fs::write(d.join("file2"), b"old content")?;
    let mut f = File::open(d.join("file2"))?;
    fs::rename(d.join("file1"), d.join("file2"))?;
    let st = fstat(&f).map_err(|e| anyhow::anyhow!("fstat of replaced file: {e}"))?;
    assert_eq!(st.st_nlink, 0, "replaced file");
    let mut s = String::new();
    f.read_to_string(&mut s)?;
    assert_eq!(s, "old content");
    drop(f);
    assert_eq!(fs::read(d.join("file2"))?, b"new");

    // A directory replaced by rename.
    fs::create_dir(d.join("dir1"))?;
    fs::create_dir(d.join("dir2"))?;
    let dir = File::open(d.join("dir2"))?;
    fs::rename(d.join("dir1"), d.join("dir2"))?;
    let st = fstat(&dir).map_err(|e| anyhow::anyhow!("fstat of replaced directory: {e}"))?;
    assert_eq!(st.st_nlink, 0, "replaced directory");
    assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFDIR);
    drop(dir);
    assert!(d.join("dir2").is_dir());

    // A directory removed by rmdir: nlink 0, and it lists nothing but "." and "..".
    fs::create_dir(d.join("gone"))?;
    let dir = File::open(d.join("gone"))?;
    fs::remove_dir(d.join("gone"))?;
    let st = fstat(&dir).map_err(|e| anyhow::anyhow!("fstat of removed directory: {e}"))?;
    assert_eq!(st.st_nlink, 0, "removed directory");
    let names = list_fd(&dir);
    assert!(names.iter().all(|n| n == "." || n == ".."), "{names:?}");
    drop(dir);
    assert!(!d.join("gone").exists());
    Ok(())
}
