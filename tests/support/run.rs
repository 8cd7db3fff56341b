//! Running the built `lambdaflow` binary from integration tests, in temporary directories.

// Each test crate uses a part of this.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the binary with `args`.
pub fn lambdaflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lambdaflow"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs the binary, which must succeed; returns its standard output.
pub fn ok_bytes(args: &[&str]) -> Vec<u8> {
    let out = lambdaflow(args);
    assert!(
        out.status.success(),
        "lambdaflow {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// [`ok_bytes`], as text.
pub fn ok(args: &[&str]) -> String {
    String::from_utf8(ok_bytes(args)).unwrap()
}

/// A JSON file.
pub fn json(path: impl AsRef<Path>) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A file's non-empty lines.
pub fn lines_of(path: impl AsRef<Path>) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// A temporary directory, removed when dropped.
pub struct Dirs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Dirs {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        Dirs { _tmp: tmp, root }
    }

    /// A path inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// A path inside it, as a command-line argument.
    pub fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// `count` generated events (1 % malformed) with `seed`, written to `name`; returns its path.
    pub fn generate(&self, name: &str, count: u64, seed: u64) -> String {
        let path = self.arg(name);
        ok(&[
            "generate",
            "--count",
            &count.to_string(),
            "--seed",
            &seed.to_string(),
            "--bad-fraction",
            "0.01",
            "-o",
            &path,
        ]);
        path
    }
}

/// The binary with `args`, its output dropped: for runs a test starts and watches over HTTP or
/// the lake, then stops.
pub fn quiet(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lambdaflow"));
    command
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

/// `lambdaflow cluster --processes 2 -- run --quiet` with `run_args`, as [`quiet`] starts it.
pub fn two_process_run(run_args: &[&str]) -> Command {
    let mut command = quiet(&["cluster", "--processes", "2", "--", "run", "--quiet"]);
    command.args(run_args);
    command
}

/// A free port whose next one is free too (process 0's and process 1's).
pub fn two_free_ports() -> u16 {
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    (0..50)
        .map(|_| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        })
        .find(|&p| p < u16::MAX && free(p) && free(p + 1))
        .expect("two free ports in a row")
}

/// `GET path` from `addr`: the status code and the body.
pub fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, text.split("\r\n\r\n").nth(1)?.to_owned()))
}
