//! One daemon as a child process: spawned with its log file, stopped with SIGTERM then
//! SIGKILL, killed alone for fault tests, restarted with the same arguments.

use crate::error::{LaunchError, io};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A supervised child process of the `kdss` binary (or any program).
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    /// Starts `program args...`, appending stdout and stderr to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: Vec<OsString>,
        env: &[(String, String)],
        log: PathBuf,
    ) -> Result<Proc, LaunchError> {
        let mut p = Proc {
            name: name.to_string(),
            program: program.to_path_buf(),
            args,
            env: env.to_vec(),
            log,
            child: None,
        };
        p.start()?;
        Ok(p)
    }

    /// (Re)starts the process with its original arguments. No-op when it runs.
    pub fn start(&mut self) -> Result<(), LaunchError> {
        if self.is_running() {
            return Ok(());
        }
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .map_err(io(format!("open log {}", self.log.display())))
        };
        let (out, err) = (open()?, open()?);
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(io(format!(
            "start {} ({})",
            self.name,
            self.program.display()
        )))?;
        self.child = Some(child);
        Ok(())
    }

    /// The OS pid while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The OS pid while the process is alive: what `cluster.json` records (never the pid of
    /// a dead process, which the OS may give to another).
    pub fn live_pid(&mut self) -> Option<u32> {
        if self.is_running() { self.pid() } else { None }
    }

    /// Whether the child is alive (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The exit status, if the child has exited.
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(s))) => Some(s.to_string()),
            _ => None,
        }
    }

    /// Log file of the process.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `n` lines of the log, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Why the process exited, for a person: its last `error: …` line (the `kdss`
    /// binary's way to report a fatal error, backtrace after it only when
    /// `RUST_BACKTRACE` asks) and where its log is; without one, the log's last lines.
    pub fn exit_reason(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let line = text.lines().rev().find_map(|l| {
            l.strip_prefix("error: ")
                .or_else(|| l.strip_prefix("Error: "))
        });
        match line {
            Some(l) => format!("{l}\n  (log: {})", self.log.display()),
            None => format!(
                "no error message; last lines of {}:\n{}",
                self.log.display(),
                self.log_tail(15)
            ),
        }
    }

    fn signal(&self, sig: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
            unsafe {
                libc::kill(pid as i32, sig);
            }
        }
    }

    /// SIGKILL: the crash a fault test wants. Waits until the process is gone.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// SIGTERM, then SIGKILL after `grace`. Blocking; fine from Drop.
    #[allow(clippy::disallowed_methods)] // blocking by design: used from Drop and sync code
    pub fn stop(&mut self, grace: Duration) {
        if !self.is_running() {
            self.child = None;
            return;
        }
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.is_running() {
                self.child = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!(name = %self.name, "did not stop within {grace:?}; sending SIGKILL");
        self.kill();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}
