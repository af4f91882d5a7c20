//! Disaster recovery: every master's data directory destroyed while the storage nodes keep
//! their shards, the masters restored from a metadata backup with `kdss master restore`,
//! and the cluster started again by the launcher on the same data dir. What was written
//! before the backup reads back byte-exact through S3 and a fresh ksfs mount; what came
//! after it is reported, not served half.

use crate::common::*;
use kdss_testkit::{ClusterOpts, Mount, bin_path};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `kdss master restore -c CONFIG --from FILE`.
fn restore(config: &Path, from: &Path) -> Output {
    Command::new(bin_path("kdss").expect("kdss built"))
        .args(["master", "restore", "-c"])
        .arg(config)
        .arg("--from")
        .arg(from)
        .output()
        .expect("run kdss master restore")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Checks that restoring `from` with `config` fails naming `why`, and leaves `data` empty.
fn refused(config: &Path, from: &Path, data: &Path, why: &str) {
    let o = restore(config, from);
    let t = text(&o);
    assert!(
        !o.status.success(),
        "restore of {} succeeded: {t}",
        from.display()
    );
    assert!(t.contains(why), "restore error names {why:?}: {t}");
    let left: Vec<_> = std::fs::read_dir(data)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "a refused restore wrote {left:?}");
}

/// Reads `key` through S3 and expects it absent.
fn absent(c: &kdss_testkit::Cluster, key: &str) {
    let o = aws(
        c,
        &[
            "s3api",
            "head-object",
            "--bucket",
            &c.bucket(),
            "--key",
            key,
        ],
    );
    assert!(
        !o.status.success(),
        "{key} was written after the backup, yet it is served: {}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masters_wiped_and_restored_from_a_backup_serve_everything_written_before_it() {
    let Some(mut c) = start(
        true,
        ClusterOpts {
            masters: 3,
            // The collector stays still, so the shards of what was overwritten or deleted
            // after the backup are still there to read once the backup brings it back.
            master_extra_toml: GC_BY_HAND.into(),
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let b = c.bucket();
    let dir = c.scratch("dr");

    // Before the backup: objects through S3, files through ksfs, from 30 KB to 7.5 MB.
    let objects = put_objects(&c, &dir, "s3/before-", 900, 6, (30_000, 1_500_000));
    let files: Vec<(String, Vec<u8>)> = (0..4u64)
        .map(|i| {
            (
                format!("fs/before-{i}.bin"),
                data(950 + i, 70_000 + i as usize * 2_300_000),
            )
        })
        .collect();
    let mut m = Mount::new(&c, "w", &b, "").await.unwrap();
    std::fs::create_dir_all(m.join("fs")).unwrap();
    for (name, body) in &files {
        std::fs::write(m.join(name), body).unwrap();
    }

    let backup = dir.join("meta.kbak");
    let taken = cli(&c, &["meta", "backup", "--out", backup.to_str().unwrap()]);
    let index = taken["applied_index"].as_u64().unwrap();
    assert!(index > 0, "{taken}");
    assert_eq!(taken["cluster_id"], c.layout.cluster_id.as_str(), "{taken}");

    // After the backup: a new object, an overwrite, a delete, a new file. All of it is
    // lost with the masters.
    put(&c, &dir, "s3/after.bin", &data(990, 200_000));
    put(&c, &dir, "s3/before-0.bin", &data(991, 300_000));
    let o = aws(&c, &["s3", "rm", &format!("s3://{b}/s3/before-1.bin")]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(m.join("fs/after.bin"), data(992, 150_000)).unwrap();
    m.unmount();

    // The disaster: every master's data directory gone, with every daemon stopped. Then
    // a damaged, a cut and a foreign backup are refused before the real one is restored.
    let mut summaries = Vec::new();
    c.restart_all_after(|layout, data_dir| {
        let bytes = std::fs::read(&backup).unwrap();
        let damaged = data_dir.join("damaged.kbak");
        let mut d = bytes.clone();
        let mid = d.len() / 2;
        d[mid] ^= 0x40;
        std::fs::write(&damaged, d).unwrap();
        let cut = data_dir.join("cut.kbak");
        std::fs::write(&cut, &bytes[..bytes.len() - 4096]).unwrap();
        for ml in &layout.masters {
            std::fs::remove_dir_all(&ml.data).unwrap();
            std::fs::create_dir_all(&ml.data).unwrap();
            let config: PathBuf = data_dir.join(format!("config/master-{}.toml", ml.id));
            refused(&config, &damaged, &ml.data, "not a usable metadata backup");
            refused(&config, &cut, &ml.data, "not a usable metadata backup");
            let cfg_text = std::fs::read_to_string(&config).unwrap();
            let other = data_dir.join("other-cluster.toml");
            let foreign = cfg_text.replace(
                &format!("{:?}", layout.cluster_id),
                "\"some-other-cluster\"",
            );
            assert_ne!(foreign, cfg_text, "the config names the cluster id");
            std::fs::write(&other, foreign).unwrap();
            refused(&other, &backup, &ml.data, "is a backup of cluster");

            let o = restore(&config, &backup);
            assert!(o.status.success(), "restore: {}", text(&o));
            summaries.push(String::from_utf8_lossy(&o.stdout).to_string());
        }
    })
    .await
    .unwrap();
    assert_eq!(summaries.len(), 3);
    for s in &summaries {
        assert!(
            s.contains(&format!("Raft index {index} ")),
            "the restore says how far the backup goes: {s}"
        );
        assert!(s.contains("lost:"), "and what is lost: {s}");
    }

    // Everything from before the backup, byte-exact: the overwritten object has its old
    // content and the deleted one is back.
    for (key, body) in &objects {
        get(&c, &dir, key, body);
    }
    absent(&c, "s3/after.bin");
    let m2 = Mount::new(&c, "r", &b, "").await.unwrap();
    for (name, body) in &files {
        assert_file(&m2.join(name), body);
    }
    assert!(
        !m2.join("fs/after.bin").exists(),
        "a file created after the backup is not in the restored namespace"
    );
    for (key, body) in &objects {
        assert_file(&m2.join(key), body);
    }

    // The shards of the lost writes are strays the collector reports as such.
    let st = cli(&c, &["gc", "run"]);
    let after = st["last_pass"]["strays_after_backup"].as_u64().unwrap_or(0);
    assert!(
        after > 0 && after.is_multiple_of(7),
        "whole 5+2 stripes of writes after the backup are reported: {st}"
    );

    // The new group takes writes; new stripes do not collide with those strays.
    let fresh = data(993, 2_500_000);
    put(&c, &dir, "s3/after-restore.bin", &fresh);
    get(&c, &dir, "s3/after-restore.bin", &fresh);
    for (key, body) in &objects {
        get(&c, &dir, key, body);
    }
}
