//! Small files (issue 19): how many master calls a 4 KiB file costs per phase, counted from
//! the master's own per-method counters (`kdss_master_op_duration_seconds_count`), and the
//! semantics the cheaper paths must keep: an open on one mount sees what another mount
//! closed, a handle reads its own writes, and the atime a read commits never rolls back a
//! ctime this mount changed after the open.

mod common;

use common::KsfsMount;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

/// Files per measured phase.
const N: u64 = 20;

/// Master methods a file operation may cause (not heartbeats, keep-alives or jobs).
const FILE_OPS: &[&str] = &[
    "lookup",
    "get_attr",
    "set_attr",
    "set_atimes",
    "create",
    "commit_write",
    "allocate_stripe",
    "get_extents",
    "unlink",
    "open",
    "release",
    "get_xattr",
    "read_dir",
];

/// The master's call count per method.
async fn master_calls(cluster: &kdss_testkit::Cluster) -> HashMap<String, u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(&cluster.layout.masters[0].http)
        .await
        .expect("master metrics port");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    let mut out = HashMap::new();
    for l in body.lines() {
        let Some(rest) = l.strip_prefix("kdss_master_op_duration_seconds_count{") else {
            continue;
        };
        let Some(op) = rest.split("op=\"").nth(1).and_then(|r| r.split('"').next()) else {
            continue;
        };
        let n: f64 = l.rsplit(' ').next().unwrap().parse().unwrap();
        out.insert(op.to_string(), n as u64);
    }
    out
}

/// Runs `f` and returns the file-operation calls the master served meanwhile, by method.
async fn count<F: FnOnce()>(cluster: &kdss_testkit::Cluster, f: F) -> HashMap<String, u64> {
    let before = master_calls(cluster).await;
    tokio::task::block_in_place(f);
    let after = master_calls(cluster).await;
    FILE_OPS
        .iter()
        .map(|op| {
            let d = after.get(*op).copied().unwrap_or(0) - before.get(*op).copied().unwrap_or(0);
            (op.to_string(), d)
        })
        .filter(|(_, d)| *d > 0)
        .collect()
}

fn total(c: &HashMap<String, u64>) -> u64 {
    c.values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_file_phases_cost_few_master_calls() -> anyhow::Result<()> {
    require_fuse!();
    let cluster = common::cluster().await?;
    // The writer and a reader that has never seen the files (no kernel caches there).
    let a = KsfsMount::start(&cluster, "a", "attr_ttl = 1\nentry_ttl = 1").await?;
    let b = KsfsMount::start(&cluster, "b", "attr_ttl = 1\nentry_ttl = 1").await?;
    let data = vec![7u8; 4096];
    fs::create_dir(a.join("d"))?;
    let create = count(&cluster, || {
        for i in 0..N {
            let mut f = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(a.join(&format!("d/f{i}")))
                .unwrap();
            f.write_all(&data).unwrap();
        }
    })
    .await;
    // The reader's first look at the directory.
    fs::metadata(b.join("d"))?;
    let stat = count(&cluster, || {
        for i in 0..N {
            assert_eq!(
                fs::metadata(b.join(&format!("d/f{i}"))).unwrap().len(),
                4096
            );
        }
    })
    .await;
    let c = KsfsMount::start(&cluster, "c", "attr_ttl = 1\nentry_ttl = 1").await?;
    fs::metadata(c.join("d"))?;
    let read = count(&cluster, || {
        for i in 0..N {
            assert_eq!(fs::read(c.join(&format!("d/f{i}"))).unwrap(), data);
        }
        // The last batch of atimes leaves after the batcher's gathering window.
        #[allow(clippy::disallowed_methods)] // blocking test code
        std::thread::sleep(10 * ksfs::fs::GATHER);
    })
    .await;
    // The atime commits left the read path and run in the background: another mount sees
    // each file's atime move past its mtime (relatime) once its attribute cache expires.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for i in 0..N {
        loop {
            let m = fs::metadata(b.join(&format!("d/f{i}")))?;
            if (m.atime(), m.atime_nsec()) > (m.mtime(), m.mtime_nsec()) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "f{i}: atime {}.{} never passed mtime {}.{}",
                m.atime(),
                m.atime_nsec(),
                m.mtime(),
                m.mtime_nsec()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let delete = count(&cluster, || {
        for i in 0..N {
            fs::remove_file(b.join(&format!("d/f{i}"))).unwrap();
        }
    })
    .await;
    for (phase, c) in [
        ("create", &create),
        ("stat", &stat),
        ("read", &read),
        ("delete", &delete),
    ] {
        eprintln!(
            "{phase}: {:.2} master calls per file {c:?}",
            total(c) as f64 / N as f64
        );
    }
    // Create: negative lookup, create, the commit with the bytes inline; plus one look at
    // the directory's default ACL. The kernel's GetAttr of the directory it changed
    // (default_permissions) is answered from the parent attributes in Create's reply, its
    // `security.capability` check before each write by the mount.
    assert!(total(&create) <= 3 * N + 1, "create: {create:?}");
    assert!(create.get("get_xattr") <= Some(&1), "create: {create:?}");
    assert!(create.get("get_attr") <= Some(&1), "create: {create:?}");
    // Stat after a fresh mount: two lookups that carry the attributes, then one page of
    // the directory with attributes answers the rest.
    assert!(total(&stat) <= 3, "stat: {stat:?}");
    assert_eq!(stat.get("read_dir"), Some(&1), "stat: {stat:?}");
    // Read of a 4 KiB file: one open call with attributes and extents (inline bytes), the
    // relatime atime commit (in the background); no GetAttr; lookups as for stat.
    assert!(total(&read) <= 2 * N + 3, "read: {read:?}");
    assert!(read.get("lookup") <= Some(&2), "read: {read:?}");
    // The atimes go in batches (SetAtimes), not a SetAttr each.
    assert_eq!(read.get("set_attr"), None, "read: {read:?}");
    assert!(read.get("set_atimes") >= Some(&1), "read: {read:?}");
    assert_eq!(read.get("get_attr"), None, "read: {read:?}");
    // Delete: lookup and unlink; the kernel's GetAttr of the directory it changed is
    // answered from Unlink's reply.
    assert!(total(&delete) <= 2 * N + 1, "delete: {delete:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_snapshots_keep_close_to_open_and_own_writes() -> anyhow::Result<()> {
    require_fuse!();
    let cluster = common::cluster().await?;
    let ttl = "attr_ttl = 5\nentry_ttl = 5";
    let a = KsfsMount::start(&cluster, "a", ttl).await?;
    let b = KsfsMount::start(&cluster, "b", ttl).await?;
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        let (pa, pb) = (a.join("f"), b.join("f"));
        fs::write(&pa, b"one")?;
        // B holds a handle open on the old content while A replaces it.
        let mut held = fs::File::open(&pb)?;
        let mut s = String::new();
        held.read_to_string(&mut s)?;
        assert_eq!(s, "one");
        fs::write(&pa, b"two")?;
        // A new open on B sees A's close, though B's handle and caches knew "one".
        assert_eq!(fs::read(&pb)?, b"two");
        drop(held);
        // Read-your-writes through one read-write handle: the open's snapshot is old.
        let mut f = OpenOptions::new().read(true).write(true).open(&pb)?;
        f.write_all(b"TW")?;
        f.seek(SeekFrom::Start(0))?;
        let mut got = String::new();
        f.read_to_string(&mut got)?;
        assert_eq!(got, "TWo");
        drop(f);
        assert_eq!(fs::read(&pa)?, b"TWo");

        // A read's atime commit keeps the ctime this mount gave the file after the open.
        let p = a.join("atime");
        fs::write(&p, b"data")?;
        let mut f = fs::File::open(&p)?;
        #[allow(clippy::disallowed_methods)] // blocking test code: ctimes 20 ms apart
        std::thread::sleep(std::time::Duration::from_millis(20));
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        let changed = fs::metadata(&p)?;
        let mut s = String::new();
        f.read_to_string(&mut s)?;
        drop(f);
        let after = fs::metadata(&p)?;
        assert_eq!(
            (after.ctime(), after.ctime_nsec()),
            (changed.ctime(), changed.ctime_nsec()),
            "the atime commit rolled ctime back"
        );
        assert!(
            (after.atime(), after.atime_nsec()) >= (changed.mtime(), changed.mtime_nsec()),
            "relatime: the read did not set atime"
        );
        // And seen from the other mount, after its attribute cache.
        let other = fs::metadata(b.join("atime"))?;
        assert_eq!(other.ctime_nsec(), changed.ctime_nsec());
        Ok(())
    })?;
    Ok(())
}

fn cpath(p: &std::path::Path) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// `security.capability` of `p`, if it has one.
fn caps(p: &std::path::Path) -> Option<Vec<u8>> {
    let (c, n) = (cpath(p), c"security.capability");
    let mut buf = vec![0u8; 64];
    // SAFETY: valid C strings and a buffer of the given length.
    let r = unsafe { libc::getxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        assert_eq!(e.raw_os_error(), Some(libc::ENODATA), "getxattr: {e}");
        return None;
    }
    buf.truncate(r as usize);
    Some(buf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_still_drops_capabilities_set_on_a_new_file() -> anyhow::Result<()> {
    require_fuse!();
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: setting security.capability needs root");
        return Ok(());
    }
    let cluster = common::cluster().await?;
    let a = KsfsMount::start(&cluster, "a", "attr_ttl = 5\nentry_ttl = 5").await?;
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        let p = a.join("tool");
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&p)?;
        f.write_all(b"#!/bin/true\n")?;
        // VFS_CAP_REVISION_2 with CAP_NET_BIND_SERVICE permitted, set on the file while
        // it is still open from its creation here.
        let mut v = 0x0200_0000u32.to_le_bytes().to_vec();
        for w in [1u32 << 10, 0, 0, 0] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        let (c, n) = (cpath(&p), c"security.capability");
        // SAFETY: valid C strings and a value buffer of the given length.
        let r = unsafe { libc::setxattr(c.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
        assert_eq!(r, 0, "setxattr: {}", std::io::Error::last_os_error());
        assert_eq!(caps(&p), Some(v));
        // A write must make the kernel remove them (it asks for them first).
        f.write_all(b"exit 0\n")?;
        drop(f);
        assert_eq!(caps(&p), None, "the write kept the file's capabilities");
        Ok(())
    })?;
    Ok(())
}

/// Makes the kernel forget unused dentries and inodes, so the next `stat` is a lookup.
fn drop_dentries() {
    fs::write("/proc/sys/vm/drop_caches", "2").expect("drop_caches (needs root)");
}

fn size_of(p: &std::path::Path) -> std::io::Result<u64> {
    fs::metadata(p).map(|m| m.len())
}

/// The pages of directories a mount reads when lookups scan them never show this mount an
/// older state than its own changes left, and show another mount's changes within the ttl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanned_directory_pages_keep_up_with_changes() -> anyhow::Result<()> {
    require_fuse!();
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: drop_caches needs root");
        return Ok(());
    }
    let cluster = common::cluster().await?;
    let ttl = "attr_ttl = 3\nentry_ttl = 3";
    let a = KsfsMount::start(&cluster, "a", ttl).await?;
    let b = KsfsMount::start(&cluster, "b", ttl).await?;
    fs::create_dir(b.join("d"))?;
    for i in 0..10 {
        fs::write(b.join(&format!("d/f{i}")), b"four")?;
    }
    let scan = count(&cluster, || {
        drop_dentries();
        for i in 0..10 {
            assert_eq!(size_of(&a.join(&format!("d/f{i}"))).unwrap(), 4);
        }
    })
    .await;
    assert_eq!(scan.get("read_dir"), Some(&1), "a page was read: {scan:?}");
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        // This mount's own write, then a lookup: the page's size is older than the write.
        fs::write(a.join("d/f5"), vec![1u8; 100])?;
        drop_dentries();
        assert_eq!(
            size_of(&a.join("d/f5"))?,
            100,
            "own write hidden by the page"
        );
        // Own attribute change.
        fs::set_permissions(a.join("d/f4"), fs::Permissions::from_mode(0o600))?;
        drop_dentries();
        assert_eq!(fs::metadata(a.join("d/f4"))?.mode() & 0o777, 0o600);
        // Own unlink and rename.
        fs::remove_file(a.join("d/f7"))?;
        fs::rename(a.join("d/f8"), a.join("d/g8"))?;
        drop_dentries();
        assert_eq!(
            common::errno_of("stat f7", fs::metadata(a.join("d/f7"))),
            libc::ENOENT
        );
        assert_eq!(
            common::errno_of("stat f8", fs::metadata(a.join("d/f8"))),
            libc::ENOENT
        );
        assert_eq!(size_of(&a.join("d/g8"))?, 4);
        // A name another mount created is never hidden by a page without it.
        fs::write(b.join("d/new"), b"new")?;
        assert_eq!(size_of(&a.join("d/new"))?, 3);
        // Another mount's change shows once the ttl has passed.
        fs::write(b.join("d/f6"), vec![2u8; 50])?;
        #[allow(clippy::disallowed_methods)] // blocking test code: past the 3 s ttl
        std::thread::sleep(std::time::Duration::from_millis(3100));
        drop_dentries();
        assert_eq!(
            size_of(&a.join("d/f6"))?,
            50,
            "another mount's write after the ttl"
        );
        Ok(())
    })?;
    Ok(())
}
