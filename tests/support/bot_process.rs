//! The real binary as a separate process, the way operators run it.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// The binary with `args`, logging at `info` to a piped standard error, killed if the test drops it.
pub fn bot_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ketamine-info-bot"));
    command
        .args(args)
        .env("RUST_LOG", "info")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Sends SIGTERM and waits up to `timeout` for the exit; returns the status and everything the bot logged.
pub async fn terminate(mut child: Child, timeout: Duration) -> (ExitStatus, String) {
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(timeout, child.wait()).await.expect("stops within the timeout").unwrap();
    let mut stderr = String::new();
    child.stderr.take().expect("piped").read_to_string(&mut stderr).await.unwrap();
    (status, stderr)
}

/// A loopback address with a free port, for the bot's `--metrics`.
pub fn free_address() -> String {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}

/// GETs `path` from the bot's metrics endpoint: the status and the body.
pub async fn scrape(address: &str, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{address}{path}")).await.expect("the endpoint answers");
    (response.status().as_u16(), response.text().await.unwrap())
}
