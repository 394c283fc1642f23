//! Running the `kustomer-webhooks` binary as a real process, for the CLI's
//! test suites.

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
#[allow(dead_code, reason = "not every suite runs at the root")]
pub fn run(args: &[&str]) -> Run {
    run_in(ROOT, args)
}
