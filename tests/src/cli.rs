//! Running the `starflow` binary.
//!
//! `env!("CARGO_BIN_EXE_starflow")` only exists for tests of the package that owns the
//! binary, and a binary cannot be a dev-dependency, so the test finds it beside its own
//! executable: tests live in `<target>/<profile>/deps/`, the binary is
//! `<target>/<profile>/starflow`. Before the first use in a process the binary is (re)built
//! with `cargo build -p starflow-launcher` for that profile — a no-op when it is up to date,
//! and it keeps a plain `cargo test -p starflow-e2e` from testing a stale binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::fixture::{DP02, NULLS, dp02, nulls_catalog, target_dir};

/// The `starflow` binary, built on first use.
pub fn starflow_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let deps = exe.parent().expect("deps folder");
        let profile_dir = if deps.ends_with("deps") { deps.parent().expect("profile folder") } else { deps };
        let profile = profile_dir.file_name().and_then(|n| n.to_str()).expect("profile folder name");
        let bin = profile_dir.join(format!("starflow{}", std::env::consts::EXE_SUFFIX));
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace)
            .args(["build", "--quiet", "-p", "starflow-launcher", "--bin", "starflow"])
            .arg("--target-dir")
            .arg(target_dir());
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let out = cmd.output().expect("run cargo build for the starflow binary");
        assert!(
            out.status.success(),
            "cargo build -p starflow-launcher failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(bin.is_file(), "starflow binary missing at {}", bin.display());
        bin
    })
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct CliOutput {
    /// Exit code (None if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "starflow failed:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "panic text in stderr:\n{}", self.stderr);
        &self.stdout
    }

    /// Asserts a clean user-facing failure: exit code 1, stderr starting with `error:`,
    /// no panic text, and every `needle` in the message. Returns stderr.
    #[track_caller]
    pub fn clean_error(&self, needles: &[&str]) -> &str {
        let err = &self.stderr;
        assert_eq!(self.code, Some(1), "expected exit code 1; stdout:\n{}\nstderr:\n{err}", self.stdout);
        assert!(err.starts_with("error:"), "stderr does not start with \"error:\":\n{err}");
        assert!(!err.contains("panicked"), "panic text in stderr:\n{err}");
        for needle in needles {
            assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
        }
        err
    }
}

/// The lines of a result, sorted when its order is not defined.
pub fn output_lines(text: &str, sort: bool) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if sort {
        lines.sort();
    }
    lines
}

/// Runs `starflow` with `args`.
pub fn starflow<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> CliOutput {
    let out = Command::new(starflow_bin()).args(args).output().expect("run starflow");
    CliOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `--catalog dp02=<fixture> --catalog nulls=<fixture>`.
pub fn catalog_args() -> Vec<String> {
    vec![
        "--catalog".into(),
        format!("{DP02}={}", dp02().dir.display()),
        "--catalog".into(),
        format!("{NULLS}={}", nulls_catalog().display()),
    ]
}

/// `starflow query <fixture catalogs> <extra> <sql>`.
pub fn starflow_query(extra: &[&str], sql: &str) -> CliOutput {
    let mut args: Vec<String> = vec!["query".into()];
    args.extend(catalog_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(sql.into());
    starflow(&args)
}
