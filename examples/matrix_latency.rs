//! Drives the real binary through a real Synapse on loopback and prints the time from a message sent to the
//! bot's reply received (p50, p99, max over 200 messages) and the bot's resident memory.
//!
//! `cargo build --release --features discord,matrix && cargo run --release --example matrix_latency` (installs Synapse on first use)

#![recursion_limit = "256"]

#[allow(dead_code, reason = "the tests' Matrix member, of which this example needs only a part")]
#[path = "../tests/support/matrix_member.rs"]
mod matrix_member;
#[path = "support/measure.rs"]
mod measure;
#[allow(dead_code, reason = "the tests' Synapse harness, of which this example needs only a part")]
#[path = "../tests/support/synapse.rs"]
mod synapse;

use std::process::Stdio;
use std::time::{Duration, Instant};

use matrix_member::Member;
use synapse::Synapse;

const MESSAGES: usize = 200;
const PASSWORD: &str = "latency-password";
const QUESTIONS: &[&str] =
    &["is ketamine legal?", "what are the risks of microdosing ketamine?", "does ketamine cause bladder problems?"];

#[tokio::main]
async fn main() {
    let binary = measure::bot_binary();
    let synapse = tokio::task::block_in_place(|| Synapse::start("latency"));
    let bot_user = synapse.register("latencybot", PASSWORD).await;
    let member_user = synapse.register("latencymember", PASSWORD).await;
    let store = std::env::temp_dir().join(format!("kib-matrix-latency-{}", std::process::id()));
    let mut bot = tokio::process::Command::new(&binary)
        .arg("matrix")
        .env("MATRIX_HOMESERVER", &synapse.url)
        .env("MATRIX_USER", &bot_user)
        .env("MATRIX_PASSWORD", PASSWORD)
        .env("MATRIX_STORE", store.join("bot"))
        .env("FAQ_COOLDOWN_SECONDS", "0") // every question is answered, so every one is timed
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the bot starts");
    let member = Member::login(&synapse.url, &member_user, PASSWORD, &store.join("member")).await;
    let room = member.create_room(false, &[&bot_user]).await;
    assert!(member.wait_for_membership(&room, &bot_user, Duration::from_secs(60)).await, "the bot joins");

    let mut latencies = Vec::with_capacity(MESSAGES);
    for index in 0..MESSAGES {
        let sent = Instant::now();
        let event = member.say(&room, QUESTIONS[index % QUESTIONS.len()]).await;
        let reply = member.reply_to(&event, Duration::from_secs(30)).await;
        latencies.push(reply.at.duration_since(sent));
    }
    let pid = bot.id().expect("running");
    let memory = measure::memory(pid);
    bot.kill().await.ok();
    let _ = std::fs::remove_dir_all(&store);

    let title = format!("Matrix adapter against Synapse {} on loopback", synapse::SYNAPSE_VERSION);
    measure::report(&title, "message sent -> reply received", latencies, memory);
}
