//! Two mounts of one bucket (close-to-open consistency, also for files replaced by a
//! rename while the other mount still caches their names), `cp -r` of a source tree then
//! `diff -r` through both mounts, the `df` figures, and a dead master giving EIO within
//! the configured timeout instead of a hang.

mod common;

use common::KsfsMount;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn close_to_open(a: &KsfsMount, b: &KsfsMount) {
    let (pa, pb) = (a.join("shared.txt"), b.join("shared.txt"));
    fs::write(&pa, b"version one").unwrap();
    // B opens after A closed: it sees what A wrote.
    assert_eq!(fs::read(&pb).unwrap(), b"version one");
    // Same size, new bytes: B's cached pages must not survive its next open.
    fs::write(&pa, b"version two").unwrap();
    assert_eq!(fs::read(&pb).unwrap(), b"version two");
    // B appends and closes; A sees it on open.
    let mut f = OpenOptions::new().append(true).open(&pb).unwrap();
    f.write_all(b" + b").unwrap();
    drop(f);
    assert_eq!(fs::read(&pa).unwrap(), b"version two + b");
    // A file created on A shows up on B once the entry cache (entry_ttl) has passed.
    fs::create_dir(a.join("from-a")).unwrap();
    fs::write(a.join("from-a/f"), b"x").unwrap();
    assert_eq!(fs::read(b.join("from-a/f")).unwrap(), b"x");
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn copy_tree_and_diff(a: &KsfsMount, b: &KsfsMount) {
    // The workspace's own sources: hundreds of files, nested directories.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dst = a.join("tree");
    fs::create_dir(&dst).unwrap();
    let started = Instant::now();
    for part in ["proto", "cluster/common", "ksfs/src", "ksfs/tests"] {
        let to = dst.join(part.replace('/', "_"));
        run(Command::new("cp").arg("-r").arg(src.join(part)).arg(&to));
        run(Command::new("diff").arg("-r").arg(src.join(part)).arg(&to));
        let through_b = b.join("tree").join(part.replace('/', "_"));
        run(Command::new("diff")
            .arg("-r")
            .arg(src.join(part))
            .arg(&through_b));
    }
    let files = run(Command::new("find").arg(&dst).arg("-type").arg("f"))
        .lines()
        .count();
    eprintln!(
        "cp -r + diff -r of {files} files in {:?}",
        started.elapsed()
    );
    assert!(files > 20, "copied only {files} files");
}

fn df_figures(a: &KsfsMount) {
    let out = run(Command::new("df")
        .arg("-B1")
        .arg("--output=size,used,avail,fstype")
        .arg(&a.path));
    let line = out.lines().nth(1).expect("df prints a line");
    let v: Vec<&str> = line.split_whitespace().collect();
    let (size, used, avail): (u64, u64, u64) = (
        v[0].parse().unwrap(),
        v[1].parse().unwrap(),
        v[2].parse().unwrap(),
    );
    eprintln!("df: size {size} used {used} avail {avail} type {}", v[3]);
    assert!(size > 0, "df shows no capacity: {line}");
    assert!(used <= size && avail <= size, "{line}");
    assert_eq!(v[3], "fuse.ksfs");
    let h = run(Command::new("df").arg("-h").arg(&a.path));
    eprintln!("{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_mounts_copy_tree_and_df() -> anyhow::Result<()> {
    require_fuse!();
    let cluster = common::cluster().await?;
    let ttl = "attr_ttl = 0.5\nentry_ttl = 0.5";
    let a = KsfsMount::start(&cluster, "a", ttl).await?;
    let b = KsfsMount::start(&cluster, "b", ttl).await?;
    tokio::task::block_in_place(|| {
        close_to_open(&a, &b);
        copy_tree_and_diff(&a, &b);
        df_figures(&a);
    });
    Ok(())
}

/// A file replaced (temporary file renamed over it) or removed on A is seen so at B's
/// next open, although B's kernel still caches the name (entry and attribute caches of
/// 5 s, far longer than the steps take): B's open of the inode the name used to lead to
/// answers ESTALE and the kernel looks the name up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replaced_on_one_mount_is_seen_at_the_next_open_on_another() -> anyhow::Result<()> {
    require_fuse!();
    let cluster = common::cluster().await?;
    let ttl = "attr_ttl = 5.0\nentry_ttl = 5.0";
    let a = KsfsMount::start(&cluster, "a", ttl).await?;
    let b = KsfsMount::start(&cluster, "b", ttl).await?;
    tokio::task::block_in_place(|| {
        for round in 0..3 {
            let (pa, pb) = (a.join("doc"), b.join("doc"));
            fs::write(&pa, format!("old {round}")).unwrap();
            assert_eq!(fs::read_to_string(&pb).unwrap(), format!("old {round}"));
            // Replaced as editors and the partition test's clients do it.
            let tmp = a.join(".doc.tmp");
            fs::write(&tmp, format!("new {round}")).unwrap();
            fs::rename(&tmp, &pa).unwrap();
            assert_eq!(
                fs::read_to_string(&pb).unwrap(),
                format!("new {round}"),
                "B read the file A replaced, at its next open"
            );
            // Replaced while A holds the old file open (the master keeps it for A).
            let held = fs::File::open(&pa).unwrap();
            fs::write(&tmp, format!("newer {round}")).unwrap();
            fs::rename(&tmp, &pa).unwrap();
            assert_eq!(
                fs::read_to_string(&pb).unwrap(),
                format!("newer {round}"),
                "B read the file A replaced while holding the old one open"
            );
            drop(held);
            // Removed on A: B's next open finds nothing.
            fs::remove_file(&pa).unwrap();
            let e = fs::read(&pb).unwrap_err();
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::NotFound,
                "B after A removed it"
            );
        }
    });
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_master_gives_eio_not_a_hang() -> anyhow::Result<()> {
    require_fuse!();
    let mut cluster = common::cluster().await?;
    let mut m =
        KsfsMount::start(&cluster, "eio", "timeout = 2\nattr_ttl = 0\nentry_ttl = 0").await?;
    fs::write(m.join("before"), b"ok")?;
    cluster.kill_master(0);
    let path = m.join("after-the-master-died");
    let started = Instant::now();
    let r = tokio::task::spawn_blocking(move || fs::metadata(&path).map(|_| ()));
    let r = tokio::time::timeout(Duration::from_secs(30), r)
        .await
        .expect("stat hung for 30 s on a dead master")?;
    let took = started.elapsed();
    assert_eq!(
        r.unwrap_err().raw_os_error(),
        Some(libc::EIO),
        "after {took:?}"
    );
    eprintln!("stat on a dead master: EIO after {took:?}");
    // The mount still unmounts cleanly.
    let st = m.stop().expect("ksfs exits on SIGTERM");
    assert!(st.success(), "ksfs exit status {st}");
    assert!(!common::is_mounted(&m.path));
    Ok(())
}
