//! File handles across a remount and rename with RENAME_WHITEOUT, through the kernel on a
//! real mount. A directory's handle taken before an unmount opens the same directory
//! after it, at its path (the kernel walks up with lookups of ".."; xfstests generic/477),
//! and the handle of a file removed meanwhile is ESTALE, as on a local filesystem
//! (generic/426). RENAME_WHITEOUT leaves a 0:0 character device at the old name, owned by
//! the caller (generic/078; overlayfs asks it of its upper layer).

mod common;

use common::{KsfsMount, check, cpath, errno_of, name_to_handle, open_by_handle};
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

fn path_of(f: &fs::File) -> std::io::Result<PathBuf> {
    fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd()))
}

fn rename_whiteout(a: &Path, b: &Path, flags: u32) -> std::io::Result<i32> {
    let (a, b) = (cpath(a), cpath(b));
    // SAFETY: valid NUL-terminated paths; AT_FDCWD resolves them from the cwd.
    check(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_WHITEOUT | flags,
        )
    })
}

/// renameat2(a, b, RENAME_WHITEOUT) in a child whose group ids are `gid` (uid stays root,
/// which keeps CAP_MKNOD); 0 or the errno.
fn rename_whiteout_as_group(gid: u32, a: &Path, b: &Path) -> i32 {
    let (a, b) = (cpath(a), cpath(b));
    // SAFETY: the child makes only async-signal-safe calls and leaves with _exit.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork");
        if pid == 0 {
            if libc::setresgid(gid, gid, gid) != 0 {
                libc::_exit(100);
            }
            let r = libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_WHITEOUT,
            );
            libc::_exit(if r == 0 { 0 } else { *libc::__errno_location() });
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        libc::WEXITSTATUS(status)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_taken_before_a_remount_resolve_after_it() -> anyhow::Result<()> {
    require_fuse!();
    let cluster = common::cluster().await?;
    let mut m = KsfsMount::start(&cluster, "handles", "").await?;
    fs::create_dir_all(m.join("a/b/c"))?;
    fs::create_dir(m.join("top"))?;
    fs::write(m.join("a/b/c/file"), b"kept")?;
    fs::write(m.join("gone"), b"removed")?;
    let dir = name_to_handle(&m.join("a/b/c"))?;
    let file = name_to_handle(&m.join("a/b/c/file"))?;
    let gone = name_to_handle(&m.join("gone"))?;
    // Moved after the handle was taken: the path after the remount is the new one.
    fs::rename(m.join("a/b"), m.join("top/b"))?;
    fs::remove_file(m.join("gone"))?;
    m.stop();

    let m = KsfsMount::start(&cluster, "handles", "").await?;
    let d = open_by_handle(&m.path, &dir, libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(|e| anyhow::anyhow!("open_by_handle_at of a directory: {e}"))?;
    assert_eq!(path_of(&d)?, m.join("top/b/c"), "reconnected to its path");
    assert_eq!(d.metadata()?.ino(), fs::metadata(m.join("top/b/c"))?.ino());
    let f = open_by_handle(&m.path, &file, libc::O_RDONLY)
        .map_err(|e| anyhow::anyhow!("open_by_handle_at of a file: {e}"))?;
    assert_eq!(f.metadata()?.len(), 4);
    assert_eq!(
        errno_of(
            "open_by_handle_at of a removed file",
            open_by_handle(&m.path, &gone, libc::O_RDONLY)
        ),
        libc::ESTALE
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_whiteout_leaves_a_whiteout_at_the_old_name() -> anyhow::Result<()> {
    require_fuse!();
    let cluster = common::cluster().await?;
    // allow_other: the last rename comes from another group, which a mount for its owner
    // alone refuses (EACCES).
    let m = KsfsMount::start(&cluster, "whiteout", "allow_other = true").await?;
    let d = m.join("w");
    fs::create_dir_all(d.join("sub"))?;
    fs::write(d.join("src"), b"moved")?;
    fs::write(d.join("dst"), b"replaced")?;

    // Over an existing file.
    rename_whiteout(&d.join("src"), &d.join("dst"), 0)
        .map_err(|e| anyhow::anyhow!("renameat2 RENAME_WHITEOUT: {e}"))?;
    assert_eq!(fs::read(d.join("dst"))?, b"moved");
    let w = fs::symlink_metadata(d.join("src"))?;
    assert!(w.file_type().is_char_device(), "{:?}", w.file_type());
    assert_eq!((w.rdev(), w.mode() & 0o7777, w.nlink()), (0, 0, 1));

    // A directory to a new name; the old name is a whiteout in the listing too.
    rename_whiteout(&d.join("sub"), &d.join("sub2"), libc::RENAME_NOREPLACE)?;
    assert!(fs::metadata(d.join("sub2"))?.is_dir());
    let kinds: Vec<(String, bool)> = fs::read_dir(&d)?
        .map(|e| {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            (e.file_name().into_string().unwrap(), ft.is_char_device())
        })
        .collect();
    let mut kinds = kinds;
    kinds.sort();
    let want = [
        ("dst", false),
        ("src", true),
        ("sub", true),
        ("sub2", false),
    ];
    let want: Vec<(String, bool)> = want.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    assert_eq!(kinds, want);

    // The whiteout belongs to the caller (here its group).
    fs::write(d.join("g"), b"")?;
    assert_eq!(
        rename_whiteout_as_group(4242, &d.join("g"), &d.join("g2")),
        0
    );
    let w = fs::symlink_metadata(d.join("g"))?;
    assert!(w.file_type().is_char_device());
    assert_eq!(w.gid(), 4242);
    Ok(())
}
