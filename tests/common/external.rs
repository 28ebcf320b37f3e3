//! Running the official SDK clients and the conformance suite, which live
//! outside Cargo: Node packages in `tests/js` (installed by `npm ci`) and a
//! Python virtualenv in `target/pyenv`, both set up by `scripts/test`. A
//! missing toolchain fails the test with the command that installs it.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::Value;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn js_dir() -> PathBuf {
    let dir = repo().join("tests/js");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").is_dir(),
        "Node packages are missing: run `npm ci` in tests/js (./scripts/test does)"
    );
    dir
}

/// `node`, with the preload that gives Node 20 what the conformance
/// suite's build needs from Node 22 (see tests/js/node20-compat.mjs).
pub fn node() -> tokio::process::Command {
    let mut command = tokio::process::Command::new("node");
    command
        .current_dir(js_dir())
        .arg("--import")
        .arg("./node20-compat.mjs")
        .kill_on_drop(true);
    command
}

pub fn python() -> tokio::process::Command {
    let python = std::env::var_os("PORTCULLIS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/pyenv/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: create it with `python3 -m venv target/pyenv && target/pyenv/bin/pip install -r tests/python/requirements.txt` (./scripts/test does)",
        python.display()
    );
    let mut command = tokio::process::Command::new(python);
    command
        .current_dir(repo().join("tests/python"))
        .kill_on_drop(true);
    command
}

/// Runs `command` to completion (at most `within`), requires success and
/// returns the JSON object it printed last on stdout.
pub async fn run_json(mut command: tokio::process::Command, within: Duration) -> Value {
    let described = format!("{:?}", command.as_std());
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = tokio::time::timeout(within, command.output())
        .await
        .unwrap_or_else(|_| panic!("{described} did not finish within {within:?}"))
        .unwrap_or_else(|e| panic!("{described} could not start: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{described} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    serde_json::from_str(
        last.unwrap_or_else(|| panic!("{described} printed no JSON:\n{stdout}\n{stderr}")),
    )
    .unwrap_or_else(|e| panic!("{described} printed bad JSON ({e}):\n{stdout}"))
}
