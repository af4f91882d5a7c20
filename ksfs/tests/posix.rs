//! POSIX through the kernel on a real ksfs mount: a table of failing calls with the errno
//! each must give, then the behaviours a local filesystem has (O_APPEND, O_TRUNC, O_EXCL,
//! sparse files, open-then-unlinked, hard and symbolic links, rename flags, xattrs,
//! chmod/chown/utimens, truncate, mmap, fallocate, statfs), and the atime rules
//! (relatime by default, noatime as a mount option).

mod common;

use common::{KsfsMount, check, cpath, errno_of};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

fn renameat2(a: &Path, b: &Path, flags: u32) -> std::io::Result<i32> {
    let (a, b) = (cpath(a), cpath(b));
    // SAFETY: valid NUL-terminated paths; AT_FDCWD resolves them from the cwd.
    check(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    })
}

fn setxattr(p: &Path, name: &str, v: &[u8], flags: i32) -> std::io::Result<i32> {
    let (p, n) = (cpath(p), std::ffi::CString::new(name).unwrap());
    // SAFETY: valid C strings and a value buffer of the given length.
    check(unsafe { libc::setxattr(p.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), flags) })
}

fn getxattr(p: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    let (p, n) = (cpath(p), std::ffi::CString::new(name).unwrap());
    let mut buf = vec![0u8; 65536];
    // SAFETY: valid C strings and a buffer of the given length.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(r as usize);
    Ok(buf)
}

fn errno_table(m: &KsfsMount) {
    let d = m.join("t");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("file"), b"x").unwrap();
    fs::create_dir_all(d.join("full/sub")).unwrap();
    fs::create_dir(d.join("empty")).unwrap();
    setxattr(&d.join("file"), "user.present", b"1", 0).unwrap();

    type Case<'a> = (&'a str, Box<dyn Fn() -> std::io::Result<()> + 'a>, i32);
    let cases: Vec<Case> = vec![
        (
            "open missing",
            Box::new(|| File::open(d.join("nope")).map(drop)),
            libc::ENOENT,
        ),
        (
            "mkdir existing",
            Box::new(|| fs::create_dir(d.join("full"))),
            libc::EEXIST,
        ),
        (
            "O_CREAT|O_EXCL existing",
            Box::new(|| {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(d.join("file"))
                    .map(drop)
            }),
            libc::EEXIST,
        ),
        (
            "rmdir non-empty",
            Box::new(|| fs::remove_dir(d.join("full"))),
            libc::ENOTEMPTY,
        ),
        (
            "rmdir file",
            Box::new(|| fs::remove_dir(d.join("file"))),
            libc::ENOTDIR,
        ),
        (
            "unlink dir",
            Box::new(|| fs::remove_file(d.join("empty"))),
            libc::EISDIR,
        ),
        (
            "path through file",
            Box::new(|| File::open(d.join("file/x")).map(drop)),
            libc::ENOTDIR,
        ),
        (
            "rename dir into itself",
            Box::new(|| fs::rename(d.join("full"), d.join("full/sub/in"))),
            libc::EINVAL,
        ),
        (
            "rename over non-empty dir",
            Box::new(|| fs::rename(d.join("empty"), d.join("full"))),
            libc::ENOTEMPTY,
        ),
        (
            "rename file over dir",
            Box::new(|| fs::rename(d.join("file"), d.join("empty"))),
            libc::EISDIR,
        ),
        (
            "rename dir over file",
            Box::new(|| fs::rename(d.join("empty"), d.join("file"))),
            libc::ENOTDIR,
        ),
        (
            "RENAME_NOREPLACE onto existing",
            Box::new(|| {
                renameat2(&d.join("empty"), &d.join("full"), libc::RENAME_NOREPLACE).map(drop)
            }),
            libc::EEXIST,
        ),
        (
            "rename missing",
            Box::new(|| fs::rename(d.join("nope"), d.join("x"))),
            libc::ENOENT,
        ),
        (
            "hard link to dir",
            Box::new(|| fs::hard_link(d.join("full"), d.join("l"))),
            libc::EPERM,
        ),
        (
            "hard link onto existing",
            Box::new(|| fs::hard_link(d.join("file"), d.join("empty"))),
            libc::EEXIST,
        ),
        (
            "readlink on file",
            Box::new(|| fs::read_link(d.join("file")).map(drop)),
            libc::EINVAL,
        ),
        (
            "name of 256 bytes",
            Box::new(|| fs::write(d.join("n".repeat(256)), b"")),
            libc::ENAMETOOLONG,
        ),
        (
            "getxattr missing",
            Box::new(|| getxattr(&d.join("file"), "user.nope").map(drop)),
            libc::ENODATA,
        ),
        (
            "XATTR_CREATE existing",
            Box::new(|| {
                setxattr(&d.join("file"), "user.present", b"2", libc::XATTR_CREATE).map(drop)
            }),
            libc::EEXIST,
        ),
        (
            "XATTR_REPLACE missing",
            Box::new(|| {
                setxattr(&d.join("file"), "user.nope", b"2", libc::XATTR_REPLACE).map(drop)
            }),
            libc::ENODATA,
        ),
        (
            "write to O_RDONLY fd",
            Box::new(|| File::open(d.join("file"))?.write_all(b"y")),
            libc::EBADF,
        ),
        (
            "read a directory",
            Box::new(|| fs::read(d.join("full")).map(drop)),
            libc::EISDIR,
        ),
    ];
    let mut wrong = Vec::new();
    for (name, f, want) in &cases {
        match f() {
            Ok(()) => wrong.push(format!("{name}: succeeded, want errno {want}")),
            Err(e) if e.raw_os_error() == Some(*want) => {}
            Err(e) => wrong.push(format!("{name}: {e}, want errno {want}")),
        }
    }
    assert!(wrong.is_empty(), "errno table:\n{}", wrong.join("\n"));
}

fn behaviours(m: &KsfsMount) {
    let d = m.join("b");
    fs::create_dir(&d).unwrap();

    // O_APPEND appends after what is there, even when the offset says otherwise.
    let p = d.join("append");
    fs::write(&p, b"hello").unwrap();
    let mut f = OpenOptions::new().append(true).open(&p).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(b" world").unwrap();
    drop(f);
    assert_eq!(fs::read(&p).unwrap(), b"hello world");

    // O_TRUNC empties.
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    f.write_all(b"new").unwrap();
    drop(f);
    assert_eq!(fs::read(&p).unwrap(), b"new");

    // A sparse file: a hole reads as zeros, the size is the end of the last write.
    let p = d.join("sparse");
    let mut f = File::create(&p).unwrap();
    f.seek(SeekFrom::Start(10 << 20)).unwrap();
    f.write_all(b"end").unwrap();
    drop(f);
    let data = fs::read(&p).unwrap();
    assert_eq!(data.len(), (10 << 20) + 3);
    assert!(data[..10 << 20].iter().all(|b| *b == 0));
    assert_eq!(&data[10 << 20..], b"end");

    // Open, unlink, still readable and writable through the descriptor.
    let p = d.join("orphan");
    fs::write(&p, b"still here").unwrap();
    let mut f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    fs::remove_file(&p).unwrap();
    assert_eq!(errno_of("stat unlinked", fs::metadata(&p)), libc::ENOENT);
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "still here");
    f.write_all(b"!").unwrap();
    f.sync_all().unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    s.clear();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "still here!");
    drop(f);

    // Hard links share the inode; symlinks resolve.
    let p = d.join("orig");
    fs::write(&p, b"shared").unwrap();
    fs::hard_link(&p, d.join("link")).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().nlink(), 2);
    assert_eq!(
        fs::metadata(&p).unwrap().ino(),
        fs::metadata(d.join("link")).unwrap().ino()
    );
    std::os::unix::fs::symlink("orig", d.join("sym")).unwrap();
    assert_eq!(fs::read_link(d.join("sym")).unwrap(), Path::new("orig"));
    assert_eq!(fs::read(d.join("sym")).unwrap(), b"shared");
    fs::remove_file(&p).unwrap();
    assert_eq!(fs::read(d.join("link")).unwrap(), b"shared");
    assert_eq!(fs::metadata(d.join("link")).unwrap().nlink(), 1);

    // RENAME_EXCHANGE swaps; plain rename replaces.
    fs::write(d.join("x"), b"X").unwrap();
    fs::write(d.join("y"), b"Y").unwrap();
    renameat2(&d.join("x"), &d.join("y"), libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(fs::read(d.join("x")).unwrap(), b"Y");
    assert_eq!(fs::read(d.join("y")).unwrap(), b"X");
    fs::rename(d.join("x"), d.join("y")).unwrap();
    assert_eq!(fs::read(d.join("y")).unwrap(), b"Y");
    assert!(!d.join("x").exists());

    // chmod, chown, utimens, truncate up and down.
    let p = d.join("attrs");
    fs::write(&p, b"0123456789").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
    std::os::unix::fs::chown(&p, Some(1234), Some(5678)).unwrap();
    let md = fs::metadata(&p).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 5678));
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(t)
        .unwrap();
    assert_eq!(fs::metadata(&p).unwrap().mtime(), 1_000_000_000);
    let f = File::options().write(true).open(&p).unwrap();
    f.set_len(4).unwrap();
    f.set_len(8).unwrap();
    drop(f);
    assert_eq!(fs::read(&p).unwrap(), b"0123\0\0\0\0");

    // xattrs round-trip and list.
    setxattr(&p, "user.k", b"value", 0).unwrap();
    assert_eq!(getxattr(&p, "user.k").unwrap(), b"value");

    // Shared writable mmap: writes reach the file, reads see the file.
    let p = d.join("mmap");
    fs::write(&p, vec![b'a'; 8192]).unwrap();
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    // SAFETY: a fresh shared mapping of 8192 bytes of an open file, unmapped below.
    unsafe {
        use std::os::fd::AsRawFd;
        let ptr = libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(ptr, libc::MAP_FAILED);
        let s = std::slice::from_raw_parts_mut(ptr.cast::<u8>(), 8192);
        assert_eq!(s[100], b'a');
        s[4096..4101].copy_from_slice(b"mmap!");
        assert_eq!(libc::msync(ptr, 8192, libc::MS_SYNC), 0);
        libc::munmap(ptr, 8192);
    }
    drop(f);
    let data = fs::read(&p).unwrap();
    assert_eq!(&data[4096..4101], b"mmap!");
    assert_eq!(data[0], b'a');

    // fallocate extends the size; the new range reads as zeros.
    let p = d.join("falloc");
    let f = File::create(&p).unwrap();
    {
        use std::os::fd::AsRawFd;
        // SAFETY: fallocate on an open descriptor.
        check(unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, 1 << 20) }).unwrap();
    }
    // Past the cluster's free space: ENOSPC and the size stays (xfstests generic/213);
    // inside the file no space is asked for.
    {
        use std::os::fd::AsRawFd;
        // SAFETY: statvfs is plain data; all-zero is a valid value.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid NUL-terminated path and a statvfs to fill.
        check(unsafe { libc::statvfs(cpath(&d).as_ptr(), &mut st) }).unwrap();
        let too_big = (2 * st.f_bavail * st.f_frsize) as libc::off_t;
        assert!(too_big > 0);
        let fd = f.as_raw_fd();
        for mode in [0, libc::FALLOC_FL_KEEP_SIZE] {
            // SAFETY: fallocate on an open descriptor.
            let r = check(unsafe { libc::fallocate(fd, mode, 0, too_big) });
            assert_eq!(errno_of("fallocate past free space", r), libc::ENOSPC);
        }
        // SAFETY: fallocate on an open descriptor.
        check(unsafe { libc::fallocate(fd, 0, 4096, 8192) }).unwrap();
    }
    drop(f);
    assert_eq!(fs::metadata(&p).unwrap().len(), 1 << 20);

    // O_EXCL creates once.
    let p = d.join("excl");
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&p)
        .unwrap();
    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);

    // readdir lists what is there (with "." and "..").
    let mut names: Vec<String> = fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "append", "attrs", "excl", "falloc", "link", "mmap", "sparse", "sym", "y"
        ]
    );
    let out = std::process::Command::new("ls")
        .arg("-a")
        .arg(&d)
        .output()
        .unwrap();
    let ls = String::from_utf8_lossy(&out.stdout);
    assert!(
        ls.lines().any(|l| l == ".") && ls.lines().any(|l| l == ".."),
        "{ls}"
    );
}

fn many_entries_readdir(m: &KsfsMount) {
    let d = m.join("many");
    fs::create_dir(&d).unwrap();
    for i in 0..600 {
        File::create(d.join(format!("f{i:04}"))).unwrap();
    }
    let n = fs::read_dir(&d).unwrap().count();
    assert_eq!(n, 600, "readdir across several batches");
}

/// (atime, mtime, ctime) in nanoseconds.
fn times(p: &Path) -> [i128; 3] {
    let m = fs::metadata(p).unwrap();
    let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
    [
        ns(m.atime(), m.atime_nsec()),
        ns(m.mtime(), m.mtime_nsec()),
        ns(m.ctime(), m.ctime_nsec()),
    ]
}

/// relatime (the default): the first read after a change updates atime and nothing else,
/// the next read does not; listing a changed directory updates its atime. A `noatime`
/// mount never updates atime.
fn atime_rules(m: &KsfsMount, noatime: &KsfsMount) {
    let p = m.join("atime");
    fs::write(&p, b"read me").unwrap();
    let t0 = times(&p);
    assert_eq!(fs::read(&p).unwrap(), b"read me");
    let t1 = times(&p);
    assert!(
        t1[0] > t0[0],
        "first read after a write updates atime: {t0:?} -> {t1:?}"
    );
    assert_eq!(t1[1..], t0[1..], "a read changes neither mtime nor ctime");
    fs::read(&p).unwrap();
    assert_eq!(times(&p), t1, "relatime: a second read leaves atime");
    let d = m.join("atime-dir");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("f"), b"").unwrap();
    let d0 = times(&d);
    assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
    assert!(
        times(&d)[0] > d0[0],
        "listing a changed directory updates its atime"
    );

    let p = noatime.join("noatime");
    fs::write(&p, b"read me").unwrap();
    let t0 = times(&p);
    fs::read(&p).unwrap();
    assert_eq!(times(&p), t0, "noatime: reads leave atime");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posix_errno_table_and_behaviours() -> anyhow::Result<()> {
    require_fuse!();
    let cluster = common::cluster().await?;
    let m = KsfsMount::start(&cluster, "posix", "").await?;
    errno_table(&m);
    behaviours(&m);
    many_entries_readdir(&m);
    let noatime = KsfsMount::start(&cluster, "noatime", "atime = \"noatime\"").await?;
    atime_rules(&m, &noatime);
    Ok(())
}
