//! Drives the real binary through the fake Discord on loopback and prints the latency from MESSAGE_CREATE sent
//! to reply POST received (p50, p99, max over 1,000 messages) and the bot's resident memory.
//!
//! `cargo build --release --features discord,matrix && cargo run --release --example discord_latency`

#[allow(dead_code, reason = "the tests' fake Discord, of which this example needs only a part")]
#[path = "../tests/support/fake_discord.rs"]
mod fake_discord;
#[path = "support/measure.rs"]
mod measure;

use std::process::Stdio;
use std::time::{Duration, Instant};

use fake_discord::{message_create, FakeDiscord, OnIdentify};

const MESSAGES: usize = 1000;
const TOKEN: &str = "latency-token";
const QUESTIONS: &[&str] = &[
    "is ketamine legal?",
    "what are the risks of microdosing ketamine?",
    "does ketamine cause bladder problems?",
    "I want to die",
];

#[tokio::main]
async fn main() {
    let binary = measure::bot_binary();
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let mut bot = tokio::process::Command::new(&binary)
        .args(["discord", "--api-url", &fake.rest_url])
        .env("DISCORD_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the bot starts");
    fake.wait_until_ready().await;

    let mut latencies = Vec::with_capacity(MESSAGES);
    for index in 0..MESSAGES {
        let id = fake.next_id();
        // Each message in its own channel by its own author, so no cooldown holds a reply back.
        let channel = (10_000 + index).to_string();
        let event = message_create(&id, &channel, &(20_000 + index).to_string(), QUESTIONS[index % QUESTIONS.len()]);
        let sent = Instant::now();
        fake.dispatch("MESSAGE_CREATE", event);
        let reply = fake
            .wait_for(Duration::from_secs(10), |r| r.body["message_reference"]["message_id"].as_str() == Some(&id))
            .await;
        latencies.push(reply.at.duration_since(sent));
    }
    let pid = bot.id().expect("running");
    let memory = measure::memory(pid);
    bot.kill().await.ok();

    let title = "Discord adapter against the fake Discord on loopback";
    measure::report(title, "MESSAGE_CREATE -> reply POST", latencies, memory);
}
