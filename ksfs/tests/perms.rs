//! Ownership and permission work the kernel leaves to a FUSE filesystem, through the
//! kernel on a real mount: setgid directories pass their group (and, to subdirectories,
//! the setgid bit) to new inodes (xfstests generic/444); an access ACL sets the mode bits
//! and one the mode alone says is not stored (generic/375); file handles open the file
//! they name (generic/426); a default ACL is inherited in place of the umask (generic/444)
//! and a new one applies at once (generic/697); fallocate by another user drops
//! setuid/setgid as VFS does (generic/683).

mod common;

use common::{KsfsMount, check, cpath};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn set_acl(p: &Path, entries: &[(u16, u16, u32)]) -> std::io::Result<i32> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    let (p, n) = (cpath(p), c"system.posix_acl_access");
    // SAFETY: valid C strings and a value buffer of the given length.
    check(unsafe { libc::setxattr(p.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), 0) })
}

fn set_default_acl(p: &Path, entries: &[(u16, u16, u32)]) -> std::io::Result<i32> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    let (p, n) = (cpath(p), c"system.posix_acl_default");
    // SAFETY: valid C strings and a value buffer of the given length.
    check(unsafe { libc::setxattr(p.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), 0) })
}

/// fallocate(8 KiB) on `f` from a child process running as `uid`:`uid` with no
/// supplementary groups; the child's exit status: 0, the errno, or 100 (no setuid).
fn fallocate_as(uid: u32, f: &fs::File) -> i32 {
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: the child makes only async-signal-safe calls and leaves with _exit.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let ok = libc::setgroups(0, std::ptr::null()) == 0
                && libc::setresgid(uid, uid, uid) == 0
                && libc::setresuid(uid, uid, uid) == 0;
            if !ok {
                libc::_exit(100);
            }
            let r = libc::fallocate(fd, 0, 0, 8192);
            libc::_exit(if r == 0 { 0 } else { *libc::__errno_location() });
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        libc::WEXITSTATUS(status)
    }
}

/// The mode as `stat -c %a` sees it: statx asking for the mode alone (the kernel may
/// answer from its attribute cache).
fn statx_mode(p: &Path) -> u32 {
    // SAFETY: statx is plain data; all-zero is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let c = cpath(p);
    // SAFETY: a valid NUL-terminated path and a statx to fill.
    check(unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_MODE, &mut stx) })
        .unwrap();
    u32::from(stx.stx_mode) & 0o7777
}

fn has_acl(p: &Path) -> bool {
    let (p, n) = (cpath(p), c"system.posix_acl_access");
    // SAFETY: a size query (null buffer, length 0) on valid C strings.
    unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) >= 0 }
}

/// name_to_handle_at then open_by_handle_at; the inode the reopened descriptor names.
fn reopen_by_handle(mount: &Path, p: &Path) -> std::io::Result<u64> {
    let h = common::name_to_handle(p)?;
    Ok(common::open_by_handle(mount, &h, libc::O_RDONLY)?
        .metadata()?
        .ino())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setgid_dirs_acl_modes_and_file_handles() -> anyhow::Result<()> {
    require_fuse!();
    let cluster = common::cluster().await?;
    // allow_other: a fallocate below comes from another user.
    let m = KsfsMount::start(&cluster, "perms", "allow_other = true").await?;

    // A setgid directory owned by group 4242: new entries take group 4242, subdirectories
    // are setgid too, files are not made setgid.
    let d = m.join("sgid");
    fs::create_dir(&d)?;
    std::os::unix::fs::chown(&d, None, Some(4242))?;
    fs::set_permissions(&d, fs::Permissions::from_mode(0o2775))?;
    fs::create_dir(d.join("sub"))?;
    fs::write(d.join("file"), b"x")?;
    let sub = fs::metadata(d.join("sub"))?;
    assert_eq!(sub.gid(), 4242, "subdirectory group");
    assert_ne!(
        sub.mode() & libc::S_ISGID,
        0,
        "subdirectory inherits setgid"
    );
    let file = fs::metadata(d.join("file"))?;
    assert_eq!(file.gid(), 4242, "file group");
    assert_eq!(
        file.mode() & libc::S_ISGID,
        0,
        "a file does not become setgid"
    );

    // An access ACL with only the base entries is the mode: it sets the bits, no xattr.
    let p = m.join("acl");
    fs::write(&p, b"x")?;
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644))?;
    set_acl(
        &p,
        &[
            (0x01, 7, u32::MAX),
            (0x04, 5, u32::MAX),
            (0x20, 0, u32::MAX),
        ],
    )?;
    assert_eq!(fs::metadata(&p)?.mode() & 0o7777, 0o750);
    assert!(!has_acl(&p), "an ACL equivalent to the mode is not stored");
    // A named-user entry with a mask: stored, and the group bits are the mask.
    set_acl(
        &p,
        &[
            (0x01, 6, u32::MAX),
            (0x02, 7, 1234),
            (0x04, 4, u32::MAX),
            (0x10, 7, u32::MAX),
            (0x20, 4, u32::MAX),
        ],
    )?;
    assert_eq!(fs::metadata(&p)?.mode() & 0o777, 0o674);
    assert!(has_acl(&p));

    // The umask applies without a default ACL; a parent's default ACL replaces it and is
    // inherited (by a subdirectory also as its default ACL).
    // SAFETY: umask only changes this process's file creation mask.
    unsafe { libc::umask(0o022) };
    fs::write(m.join("umasked"), b"")?;
    assert_eq!(fs::metadata(m.join("umasked"))?.mode() & 0o777, 0o644);
    let d = m.join("dacl");
    fs::create_dir(&d)?;
    set_default_acl(
        &d,
        &[
            (0x01, 7, u32::MAX),
            (0x04, 0, u32::MAX),
            (0x20, 0, u32::MAX),
        ],
    )?;
    fs::write(d.join("f"), b"")?;
    assert_eq!(
        fs::metadata(d.join("f"))?.mode() & 0o777,
        0o600,
        "default ACL, not umask"
    );
    fs::create_dir(d.join("sub"))?;
    assert_eq!(fs::metadata(d.join("sub"))?.mode() & 0o777, 0o700);
    fs::write(d.join("sub/g"), b"")?;
    assert_eq!(
        fs::metadata(d.join("sub/g"))?.mode() & 0o777,
        0o600,
        "inherited default"
    );

    // A default ACL set here applies to the next create at once (not the cached one).
    set_default_acl(
        &d,
        &[
            (0x01, 6, u32::MAX),
            (0x04, 4, u32::MAX),
            (0x20, 4, u32::MAX),
        ],
    )?;
    fs::write(d.join("h"), b"")?;
    assert_eq!(
        fs::metadata(d.join("h"))?.mode() & 0o777,
        0o644,
        "the new default ACL"
    );

    // fallocate by another user drops setuid, and setgid also without group exec when
    // that user is not in the file's group (as VFS; generic/683); a member keeps it.
    let p = m.join("setid");
    fs::write(&p, b"x")?;
    fs::set_permissions(&p, fs::Permissions::from_mode(0o6666))?;
    let f = fs::OpenOptions::new().write(true).open(&p)?;
    assert_eq!(fallocate_as(65534, &f), 0);
    assert_eq!(statx_mode(&p), 0o666, "non-member (kernel cache)");
    assert_eq!(fs::metadata(&p)?.mode() & 0o7777, 0o666, "non-member");
    std::os::unix::fs::chown(&p, None, Some(65534))?;
    fs::set_permissions(&p, fs::Permissions::from_mode(0o2666))?;
    assert_eq!(fallocate_as(65534, &f), 0);
    assert_eq!(fs::metadata(&p)?.mode() & 0o7777, 0o2666, "member");
    drop(f);

    // A file handle opens the file it names.
    let ino = fs::metadata(&p)?.ino();
    let again =
        reopen_by_handle(&m.path, &p).map_err(|e| anyhow::anyhow!("open_by_handle_at: {e}"))?;
    assert_eq!(again, ino);
    Ok(())
}
