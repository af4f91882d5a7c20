//! Files, secrets and processes (docs/security.md): every file `kdss up` writes that holds
//! the cluster secret or the admin's secret key is 0600 in a 0700 directory, and every
//! daemon refuses to start with a short cluster secret or a `CHANGE-ME` placeholder of the
//! shipped configs, naming the file and the key.

use crate::first_errors::{Up, base};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every regular file under `dir`, with the device images left out (large, no secrets).
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_none_or(|x| x != "img") {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn up_writes_every_file_with_a_secret_0600_in_a_0700_dir() {
    let b = base();
    let mnt = tempfile::Builder::new()
        .prefix("mnt-")
        .tempdir_in(kdss_testkit::test_tmp_root())
        .unwrap();
    // Canonical: mountinfo shows the path without the `..` of the test tmp root.
    let mnt_arg = std::fs::canonicalize(mnt.path())
        .unwrap()
        .display()
        .to_string();
    let mount = kdss_testkit::fuse_unavailable().is_none();
    let args: Vec<&str> = if mount {
        vec!["--mount", &mnt_arg]
    } else {
        vec!["--no-mount"]
    };
    let mut up = Up::start_with(b, &args);
    up.wait_for(120, "the banner", |o, _| o.contains("Press Ctrl-C"));
    let data = up.data();
    let layout: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("layout.json")).unwrap()).unwrap();
    let secrets = [
        layout["secret"].as_str().unwrap().to_string(),
        layout["admin_secret_key"].as_str().unwrap().to_string(),
    ];
    assert!(
        secrets[0].len() >= 32,
        "kdss up makes a cluster secret the daemons accept"
    );

    // The files the issue names, each with a secret in it.
    let mut named = vec![
        data.join("cluster.json"),
        data.join("layout.json"),
        data.join("cli.toml"),
        data.join("config/master-1.toml"),
        data.join("config/node-1.toml"),
        data.join("config/s3gw-1.toml"),
    ];
    if mount {
        named.push(data.join("config/mount.toml"));
    }
    for f in &named {
        let text = std::fs::read(f).unwrap();
        assert!(
            secrets.iter().any(|s| contains(&text, s)),
            "{} holds a secret",
            f.display()
        );
        assert_eq!(mode(f), 0o600, "{}", f.display());
        assert_eq!(mode(f.parent().unwrap()), 0o700, "{}", f.display());
    }
    // And every other file that holds one, wherever it is.
    let mut all = Vec::new();
    files(&data, &mut all);
    let with_secret: Vec<&PathBuf> = all
        .iter()
        .filter(|f| {
            let text = std::fs::read(f).unwrap_or_default();
            secrets.iter().any(|s| contains(&text, s))
        })
        .collect();
    for f in &with_secret {
        let loose: Vec<_> = f
            .ancestors()
            .skip(1)
            .take_while(|d| d.starts_with(&data))
            .filter(|d| mode(d) != 0o700)
            .collect();
        assert!(
            mode(f) == 0o600 || loose.is_empty(),
            "{} holds a secret, is {:o} and sits in directories {loose:?} that others may enter",
            f.display(),
            mode(f)
        );
    }
    assert!(
        all.iter()
            .all(|f| !f.file_name().unwrap().to_string_lossy().contains(".tmp-")),
        "no temp file left behind: {all:?}"
    );
    for d in ["", "config", "logs", "master-1", "node-1"] {
        assert_eq!(mode(&data.join(d)), 0o700, "{}/{d}", data.display());
    }
}

/// Runs `kdss ARGS` and expects it to exit non-zero within 30 s; its stderr.
fn refused(args: &[&str]) -> String {
    let mut child = Command::new(kdss_testkit::bin_path("kdss").unwrap())
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kdss {args:?} still runs after 30 s: the secret was accepted");
        }
        crate::first_errors::pause();
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "kdss {args:?} exited 0: {err}");
    err
}

fn deploy(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn daemons_refuse_a_short_or_placeholder_cluster_secret() {
    let dir = tempfile::tempdir().unwrap();
    let placeholder = "CHANGE-ME-long-random-string";
    let good = "7f3a9c1e5b2d8f4a6c0e9b7d5f3a1c8e";
    for (daemon, file) in [
        ("master", "master.toml"),
        ("storage", "storage.toml"),
        ("s3gw", "s3gw.toml"),
    ] {
        let shipped = deploy(file);
        assert!(
            shipped.contains(placeholder),
            "{file} ships the placeholder"
        );
        // The shipped config as it is; then with a real-looking but short secret.
        let cases = [
            ("placeholder", shipped.clone(), "placeholder"),
            (
                "short",
                shipped.replace(placeholder, "s3cret"),
                "at least 32",
            ),
        ];
        for (case, text, why) in cases {
            let cfg = dir.path().join(format!("{case}-{file}"));
            std::fs::write(&cfg, text).unwrap();
            let cfg_s = cfg.display().to_string();
            let err = refused(&[daemon, "-c", &cfg_s]);
            assert!(
                err.contains(&cfg_s) && err.contains("`cluster.secret`") && err.contains(why),
                "kdss {daemon} with a {case} secret: {err}"
            );
        }
        // The bootstrap admin of the shipped master.toml is a placeholder too.
        if daemon == "master" {
            let cfg = dir.path().join("admin-master.toml");
            std::fs::write(&cfg, shipped.replace(placeholder, good)).unwrap();
            let cfg_s = cfg.display().to_string();
            let err = refused(&["master", "-c", &cfg_s]);
            assert!(
                err.contains(&cfg_s) && err.contains("`admin.secret_key`"),
                "{err}"
            );
        }
    }
    // ksfs: the example mount.toml's user secret (`change-me`, any case is refused).
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../mount.toml.example");
    let cfg = dir.path().join("mount.toml");
    std::fs::copy(example, &cfg).unwrap();
    let cfg_s = cfg.display().to_string();
    let err = refused(&["mount", "-c", &cfg_s]);
    assert!(
        err.contains("`auth.secret_key`") && err.contains("placeholder"),
        "{err}"
    );
}
