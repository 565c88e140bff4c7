//! A real `starflow serve` process for tests, and clients (`starflow repl`) attached to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{CliOutput, starflow_bin};
use crate::fixture::Scratch;

/// A running server; killed on drop if a test did not stop it.
pub struct ServeProcess {
    child: Child,
    /// The connection file it writes.
    pub conn: PathBuf,
    scratch: Scratch,
}

impl ServeProcess {
    /// Starts `starflow serve ARGS --connection-file …` and waits (up to 60 s) for its
    /// connection file.
    pub fn start<S: AsRef<str>>(args: &[S]) -> Self {
        let scratch = Scratch::new("serve");
        let conn = scratch.join("conn.json");
        let log = std::fs::File::create(scratch.join("serve.log")).expect("server log file");
        let child = Command::new(starflow_bin())
            .arg("serve")
            .args(args.iter().map(AsRef::as_ref))
            .arg("--connection-file")
            .arg(&conn)
            .env("HOME", scratch.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start starflow serve");
        let mut server = Self { child, conn, scratch };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !server.conn.exists() {
            if let Some(status) = server.child.try_wait().expect("poll server") {
                panic!("starflow serve exited early ({status}):\n{}", server.log());
            }
            assert!(Instant::now() < deadline, "no connection file after 60 s:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.join("serve.log")).unwrap_or_default()
    }

    /// The process id of process 0.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A scratch folder that lives as long as the server (also its clients' HOME).
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// `starflow repl --connect <conn> ARGS`.
    pub fn repl<S: AsRef<str>>(&self, args: &[S]) -> CliOutput {
        let out = self.repl_command(args).output().expect("run starflow repl");
        CliOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The command for `starflow repl --connect <conn> ARGS` (to spawn it).
    pub fn repl_command<S: AsRef<str>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(starflow_bin());
        cmd.arg("repl").arg("--connect").arg(&self.conn).args(args.iter().map(AsRef::as_ref));
        cmd.env("HOME", self.scratch.path()).stdin(Stdio::null());
        cmd
    }

    /// One statement, its result as CSV.
    pub fn sql(&self, sql: &str) -> CliOutput {
        self.repl(&["--format", "csv", "-c", sql])
    }

    /// Sends a signal (e.g. "TERM") to process 0.
    pub fn signal(&self, signal: &str) {
        let status =
            Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to `timeout` for the server to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll server") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
