//! Lines on stdout. Output is often piped (`parse dir | head`); a reader
//! that goes away ends a command quietly instead of with a panic.

use std::io::{self, Write};

/// Writes one line on stdout.
pub fn try_line(args: std::fmt::Arguments<'_>) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_fmt(args)?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}

/// Writes one line on stdout for a command that prints as it goes. When the
/// reader has gone away (a closed pipe), nobody reads the rest: the command
/// ends there, with status 0. Any other failure to write ends it with an
/// error and status 1.
pub fn line(args: std::fmt::Arguments<'_>) {
    if let Err(e) = try_line(args) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// Writes one line on stderr, ignoring a failure: a long-running `serve`
/// whose log reader went away (a closed pipe) keeps serving rather than
/// panicking in `eprintln!`.
pub fn note_line(args: std::fmt::Arguments<'_>) {
    if crate::log::json() {
        return write_json_note(tracing::Level::INFO, &args.to_string());
    }
    let mut stderr = io::stderr().lock();
    let _ = stderr
        .write_fmt(args)
        .and_then(|()| stderr.write_all(b"\n"));
}

/// Writes a command's error on stderr: `error: …`, or, with a JSON log, a
/// JSON line at level ERROR.
pub fn error_line(message: &str) {
    if crate::log::json() {
        return write_json_note(tracing::Level::ERROR, message);
    }
    note_line(format_args!("error: {message}"));
}

fn write_json_note(level: tracing::Level, message: &str) {
    let mut line = crate::log::note_json(level, message);
    line.push('\n');
    let _ = io::stderr().lock().write_all(line.as_bytes());
}

/// `eprintln!` that never panics: see [`note_line`].
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::out::note_line(format_args!($($arg)*))
    };
}
pub(crate) use note;

/// `println!` for the commands: see [`line`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
pub(crate) use out;
