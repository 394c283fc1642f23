//! Running the `kustomer-webhooks` binary as a real process, for the CLI's
//! test suites.

// Each suite uses some of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_kustomer-webhooks");
/// The repository root, where the default paths resolve.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary with `args` in `dir`.
pub fn run_in(dir: impl AsRef<Path>, args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the binary with `args` at the repository root.
pub fn run(args: &[&str]) -> Run {
    run_in(ROOT, args)
}

/// Runs the binary with `args` at the repository root, nothing reading its
/// stdout (a pipe closed before it writes, as `command | true` leaves it):
/// its status and stderr.
pub fn run_unread(args: &[impl AsRef<std::ffi::OsStr>]) -> Run {
    use std::process::Stdio;
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(ROOT)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("the binary ends");
    Run {
        code: out.status.code(),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
