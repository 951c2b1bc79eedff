//! What the latency examples share: finding the release binary, and reporting latency and memory.

use std::path::PathBuf;
use std::time::Duration;

/// The release binary beside this example (`target/release/ketamine-info-bot`).
pub fn bot_binary() -> PathBuf {
    let binary = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("ketamine-info-bot");
    assert!(binary.exists(), "build the bot first: cargo build --release ({} is missing)", binary.display());
    binary
}

/// A field of /proc/PID/status in kilobytes (VmRSS: now; VmHWM: peak).
fn memory_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|line| line.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The bot's resident memory now and at its peak, read while it still runs.
pub struct Memory {
    now: Option<u64>,
    peak: Option<u64>,
}

pub fn memory(pid: u32) -> Memory {
    Memory { now: memory_kb(pid, "VmRSS:"), peak: memory_kb(pid, "VmHWM:") }
}

/// Prints p50, p99 and max of `latencies` (labelled `what`) and the memory.
pub fn report(title: &str, what: &str, mut latencies: Vec<Duration>, memory: Memory) {
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("{title}, {} messages, one at a time:", latencies.len());
    println!(
        "  {what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap()),
    );
    let megabytes = |kb: Option<u64>| kb.map_or("unknown".to_owned(), |kb| format!("{:.1} MB", kb as f64 / 1024.0));
    println!("  bot resident memory: {} now, {} peak", megabytes(memory.now), megabytes(memory.peak));
}
