//! A newcomer's first errors with `kdss up`, run as the real binary: a port another
//! program holds is named with the flag that avoids it (not "KDSS is up" with the S3
//! endpoint pointing at the other program, not a backtrace); a daemon that dies after
//! start is reported; a stopped cluster's cluster.json shows no live pids.

use kdss_launch::ports::{gateway_port, master_ports};
use kdss_launch::{ClusterSpec, free_port_base};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `kdss up` process with its output in files; on drop, Ctrl-C, then SIGKILL for it and
/// every daemon its cluster.json still lists.
pub(crate) struct Up {
    child: Child,
    dir: tempfile::TempDir,
}

impl Up {
    fn start(base: u16) -> Up {
        Up::start_with(base, &["--no-mount"])
    }

    /// `kdss up` on `base` with `args` besides the small disks, port base and data dir.
    pub(crate) fn start_with(base: u16, args: &[&str]) -> Up {
        let dir = tempfile::Builder::new()
            .prefix("up-")
            .tempdir_in(kdss_testkit::test_tmp_root())
            .unwrap();
        let out = std::fs::File::create(dir.path().join("stdout")).unwrap();
        let err = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let child = Command::new(kdss_testkit::bin_path("kdss").unwrap())
            .arg("up")
            .args(args)
            .args(["--disk-size", "64MiB", "--port-base"])
            .arg(base.to_string())
            .arg("--data")
            .arg(dir.path().join("data"))
            // A user who did not ask for backtraces.
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        Up { child, dir }
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// stdout and stderr so far.
    pub(crate) fn output(&self) -> (String, String) {
        let read = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        (read("stdout"), read("stderr"))
    }

    /// Waits until `done` holds for (stdout, stderr) or `kdss up` exits; panics with its
    /// output after `secs`.
    pub(crate) fn wait_for(&mut self, secs: u64, what: &str, done: impl Fn(&str, &str) -> bool) {
        let start = Instant::now();
        loop {
            let (o, e) = self.output();
            if done(&o, &e) {
                return;
            }
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!("kdss up exited ({s}) before {what}:\n{o}\n{e}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "no {what} after {secs} s:\n{o}\n{e}"
            );
            pause();
        }
    }

    /// Waits for `kdss up` to exit by itself; its status.
    fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            let (o, e) = self.output();
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "kdss up still runs after {secs} s:\n{o}\n{e}"
            );
            pause();
        }
    }

    fn cluster_json(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.data().join("cluster.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn sigint(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.sigint();
            let start = Instant::now();
            while matches!(self.child.try_wait(), Ok(None))
                && start.elapsed() < Duration::from_secs(20)
            {
                pause();
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let Ok(text) = std::fs::read_to_string(self.data().join("cluster.json")) else {
            return;
        };
        for pid in pids(&serde_json::from_str(&text).unwrap_or_default()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// The poll interval of these tests (plain threads, no async runtime to block).
#[allow(clippy::disallowed_methods)]
pub(crate) fn pause() {
    std::thread::sleep(Duration::from_millis(100));
}

/// Every non-null pid in a cluster.json.
fn pids(j: &serde_json::Value) -> Vec<u64> {
    ["masters", "storage_nodes", "s3gw"]
        .iter()
        .filter_map(|k| j[k].as_array())
        .flatten()
        .filter_map(|d| d["pid"].as_u64())
        .collect()
}

fn alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// A free port base for `kdss up`'s default shape (1 master, 4 nodes, 1 gateway).
pub(crate) fn base() -> u16 {
    let spec = ClusterSpec::new(PathBuf::new(), PathBuf::new());
    free_port_base(&spec).unwrap()
}

/// Runs `kdss up` with `port` held by a plain listener that is not ours; it must fail
/// naming the address and `--port-base`, without a backtrace or the "up" banner.
fn refused_when_held(base: u16, port: u16) {
    let _held = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mut up = Up::start(base);
    let status = up.wait_exit(60);
    let (out, err) = up.output();
    let all = format!("{out}\n{err}");
    assert!(!status.success(), "kdss up succeeded:\n{all}");
    assert!(all.contains(&format!("127.0.0.1:{port}")), "{all}");
    assert!(
        all.contains("already in use") && all.contains("--port-base"),
        "{all}"
    );
    assert!(!all.to_lowercase().contains("backtrace"), "{all}");
    assert!(!all.contains("KDSS is up"), "{all}");
    // Nothing was fixed in the data dir: the same --data with another base works.
    assert!(!up.data().join("layout.json").exists());
}

#[test]
fn up_names_a_taken_gateway_port_and_the_flag() {
    let b = base();
    refused_when_held(b, gateway_port(b, 0));
}

#[test]
fn up_names_a_taken_master_port_and_the_flag() {
    let b = base();
    refused_when_held(b, master_ports(b, 0).0);
}

#[test]
fn up_reports_a_dead_daemon_and_leaves_no_live_pids_when_stopped() {
    let b = base();
    let mut up = Up::start(b);
    up.wait_for(120, "the banner", |o, _| o.contains("Press Ctrl-C"));
    let (out, _) = up.output();
    let s3 = format!("http://127.0.0.1:{}", gateway_port(b, 0));
    assert!(out.contains("KDSS is up") && out.contains(&s3), "{out}");
    let running = up.cluster_json();
    assert_eq!(running["state"], "running");
    let started = pids(&running);
    assert_eq!(started.len(), 6, "1 master, 4 nodes, 1 gateway: {running}");
    assert!(started.iter().all(|p| alive(*p)));

    // A gateway that dies after start is reported, and cluster.json drops its pid.
    let gw = running["s3gw"][0]["pid"].as_u64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gw as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    up.wait_for(10, "the death report", |_, e| e.contains("s3gw-1 died"));
    let json = up.data().join("cluster.json");
    up.wait_for(5, "cluster.json without the gateway's pid", |_, _| {
        let text = std::fs::read_to_string(&json).unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&text)
            .is_ok_and(|j| j["s3gw"][0]["pid"].is_null())
    });

    up.sigint();
    let status = up.wait_exit(60);
    let (out, err) = up.output();
    assert!(status.success(), "{out}\n{err}");
    let stopped = up.cluster_json();
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert!(pids(&stopped).is_empty(), "{stopped}");
    assert!(started.iter().all(|p| !alive(*p)), "{started:?} still run");
}
