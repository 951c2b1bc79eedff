//! The Discord adapter against a fake Discord on loopback: every behaviour of the adapter, with every request
//! body checked against Discord's OpenAPI spec and limits.

use std::sync::Arc;
use std::time::Duration;

use std::num::NonZeroU64;

use ketamine_info_bot::config::{DiscordSettings, HttpUrl, Secret, Shards, StateLocation};
use ketamine_info_bot::platforms::discord::{self, DiscordError};
use ketamine_info_bot::state::Clock;
use ketamine_info_bot::{Bot, Catalog, LiveBot};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::bot_process::{bot_command, free_address, scrape, terminate};
use crate::support::discord_contract::assert_valid;
use crate::support::fake_discord::{
    button_press, created_message, guild_command, guild_create, interaction_create, message_create, message_update,
    Failure, FakeDiscord, OnIdentify, Request,
};

const TOKEN: &str = "test-token";
const WAIT: Duration = Duration::from_secs(20);
/// How long to watch for a reply that must not come.
const QUIET: Duration = Duration::from_millis(400);

fn bot() -> Arc<Bot> {
    Arc::new(Bot::new(Catalog::built_in()))
}

fn disclaimer() -> String {
    bot().catalog().disclaimer.clone()
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), DiscordError>>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(WAIT, self.task).await.expect("the bot stops").expect("no panic");
        result.expect("a clean stop");
    }
}

fn settings(fake: &FakeDiscord, guild_id: Option<u64>) -> DiscordSettings {
    DiscordSettings {
        token: Secret::new(TOKEN),
        guild_id: guild_id.and_then(NonZeroU64::new),
        api_url: Some(HttpUrl::parse(&fake.rest_url).unwrap()),
        commands_only: false,
        shards: Shards::ALL,
        state: StateLocation::File(state_path()),
        clock: Clock::default(),
    }
}

/// A state database of its own for each bot (and so its own single-instance lock).
fn state_path() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let next = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("discord-{}-{next}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("state.db")
}

fn start(settings: DiscordSettings) -> Running {
    start_with(bot(), settings)
}

fn start_with(bot: Arc<Bot>, settings: DiscordSettings) -> Running {
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(discord::run(Arc::new(LiveBot::new(bot)), settings, async {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

async fn ready_bot(guild_id: Option<u64>) -> (FakeDiscord, Running) {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let running = start(settings(&fake, guild_id));
    fake.wait_until_ready().await;
    (fake, running)
}

/// Stops the bot, then checks every request it sent against Discord's contract.
async fn stop_and_check(fake: &FakeDiscord, running: Running) {
    running.stop().await;
    assert_valid(&fake.requests());
}

/// Asks for autocomplete choices for `typed` in `/ketamine topic:` and returns the callback.
async fn autocomplete(fake: &FakeDiscord, typed: &str) -> Request {
    let id = fake.next_id();
    let options = json!([{"name": "topic", "type": 3, "value": typed, "focused": true}]);
    fake.dispatch("INTERACTION_CREATE", interaction_create(&id, 4, "ketamine", options, "en-US"));
    fake.wait_for(WAIT, |r| r.path.starts_with(&format!("/interactions/{id}/"))).await
}

fn is_reply_to(request: &Request, message_id: &str) -> bool {
    request.method == "POST"
        && request.path.ends_with("/messages")
        && request.body["message_reference"]["message_id"].as_str() == Some(message_id)
}

fn replies_to(fake: &FakeDiscord, message_id: &str) -> Vec<Request> {
    fake.requests().into_iter().filter(|r| is_reply_to(r, message_id)).collect()
}

/// Sends a chat message and returns the bot's reply to it.
async fn say(fake: &FakeDiscord, channel: &str, author: &str, content: &str) -> Request {
    send(fake, message_create(&fake.next_id(), channel, author, content)).await
}

/// Dispatches a MESSAGE_CREATE payload and returns the bot's reply to it.
async fn send(fake: &FakeDiscord, message: Value) -> Request {
    let id = message["id"].as_str().unwrap().to_owned();
    fake.dispatch("MESSAGE_CREATE", message);
    fake.wait_for(WAIT, |r| is_reply_to(r, &id)).await
}

/// Sends a chat message and asserts that the bot stays silent.
async fn say_expecting_silence(fake: &FakeDiscord, message: Value) {
    let id = message["id"].as_str().unwrap().to_owned();
    fake.dispatch("MESSAGE_CREATE", message);
    tokio::time::sleep(QUIET).await;
    assert!(replies_to(fake, &id).is_empty(), "the bot answered message {id}");
}

/// Runs a slash command and returns the interaction callback.
async fn run_command(fake: &FakeDiscord, name: &str, options: Value, locale: &str) -> Request {
    let id = fake.next_id();
    fake.dispatch("INTERACTION_CREATE", interaction_create(&id, 2, name, options, locale));
    let path = format!("/interactions/{id}/");
    fake.wait_for(WAIT, |r| r.path.starts_with(&path)).await
}

fn content(request: &Request) -> &str {
    request.body["content"].as_str().or(request.body["data"]["content"].as_str()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn registers_every_command_with_one_bulk_overwrite() {
    let (fake, running) = ready_bot(Some(500)).await;
    let registration = fake.wait_until_ready().await;
    assert_eq!(registration.path, "/applications/1000/guilds/500/commands");
    let names: Vec<&str> = registration.body.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    let catalog = bot();
    for topic in &catalog.catalog().topics {
        let command = registration.body.as_array().unwrap().iter().find(|c| c["name"] == topic.command.as_str());
        assert_eq!(command.expect("registered")["description"], topic.description.as_str());
    }
    assert!(names.contains(&"ketamine") && names.contains(&"crisis-resources") && names.contains(&"ketamine-risks"));
    let puts = fake.requests().into_iter().filter(|r| r.method == "PUT").count();
    assert_eq!(puts, 1, "one bulk overwrite");
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn registers_globally_without_a_server_id() {
    let (fake, running) = ready_bot(None).await;
    assert_eq!(fake.wait_until_ready().await.path, "/applications/1000/commands");
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_slash_command_answers_with_the_disclaimer_last() {
    let (fake, running) = ready_bot(Some(500)).await;
    let catalog = bot();
    let disclaimer = disclaimer();
    for topic in &catalog.catalog().topics {
        let callback = run_command(&fake, &topic.command, json!([]), "en-US").await;
        assert_eq!(callback.body["type"], 4);
        let text = content(&callback);
        assert!(text.contains(topic.body.lines().last().unwrap().trim_start_matches("- ")), "{text}");
        assert!(text.ends_with(&disclaimer));
        assert_eq!(callback.body["data"]["flags"].as_u64().unwrap_or(0) & 64, 0, "public unless asked");
    }
    let help = run_command(&fake, "ketamine", json!([]), "en-US").await;
    assert!(content(&help).contains("/ketamine-bladder") && content(&help).ends_with(&disclaimer));
    let picked =
        run_command(&fake, "ketamine", json!([{"name": "topic", "type": 3, "value": "legal-status"}]), "en-US").await;
    assert!(content(&picked).contains("Schedule III"));
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crisis_resources_follow_the_members_locale_or_the_chosen_region() {
    let (fake, running) = ready_bot(Some(500)).await;
    let uk = run_command(&fake, "crisis-resources", json!([]), "en-GB").await;
    assert!(content(&uk).contains("116 123") && !content(&uk).contains("988"), "{}", content(&uk));
    let unknown = run_command(&fake, "crisis-resources", json!([]), "sv-SE").await;
    assert!(content(&unknown).contains("988") && content(&unknown).contains("116 123"));
    assert!(content(&unknown).contains("findahelpline.com"));
    let brazil = run_command(&fake, "crisis-resources", json!([]), "pt-BR").await;
    assert!(content(&brazil).starts_with("**Apoio em momentos de crise**") && content(&brazil).contains("188"));
    assert!(content(&brazil).ends_with(&disclaimer()));
    let chosen =
        run_command(&fake, "crisis-resources", json!([{"name": "region", "type": 3, "value": "au"}]), "en-US").await;
    assert!(content(&chosen).contains("13 11 14") && content(&chosen).ends_with(&disclaimer()));
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_private_option_makes_the_reply_ephemeral() {
    let (fake, running) = ready_bot(Some(500)).await;
    let callback =
        run_command(&fake, "ketamine-legal", json!([{"name": "private", "type": 5, "value": true}]), "en-US").await;
    assert_eq!(callback.body["data"]["flags"], 64);
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_longer_than_a_message_continues_in_followups_that_keep_the_disclaimer() {
    let responses = ketamine_info_bot::content::BUILT_IN_RESPONSES;
    let short = "body = \"Legal Status: Ketamine is a Schedule III controlled substance in the United States. Possessing it without a prescription is illegal.\"";
    assert!(responses.contains(short), "the fixture changed");
    let long_body =
        format!("body = \"{}\"", "Ketamine is a Schedule III controlled substance in the United States. ".repeat(40));
    let bot = Arc::new(Bot::new(Catalog::parse("long.toml", &responses.replacen(short, &long_body, 1)).unwrap()));
    let disclaimer = bot.catalog().disclaimer.clone();
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let running = start_with(bot, settings(&fake, Some(500)));
    fake.wait_until_ready().await;
    let callback =
        run_command(&fake, "ketamine-legal", json!([{"name": "private", "type": 5, "value": true}]), "en-US").await;
    let followup = fake.wait_for(WAIT, |r| r.path.starts_with("/webhooks/1000/")).await;
    for part in [content(&callback), content(&followup)] {
        assert!(part.ends_with(&disclaimer) && part.chars().count() <= 2000);
        assert!(part.trim_end_matches(&disclaimer).trim_end().ends_with('.'), "cut mid-sentence");
    }
    assert_eq!(callback.body["data"]["flags"], 64);
    assert_eq!(followup.body["flags"], 64, "the followup is private too");
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn autocomplete_offers_at_most_25_topics_filtered_by_what_is_typed() {
    let (fake, running) = ready_bot(Some(500)).await;
    let callback = autocomplete(&fake, "blad").await;
    assert_eq!(callback.body["type"], 8);
    assert_eq!(
        callback.body["data"]["choices"],
        json!([{"name": "Bladder problems linked to chronic ketamine use", "value": "bladder-problems"}])
    );

    let everything = autocomplete(&fake, "").await;
    let count = everything.body["data"]["choices"].as_array().unwrap().len();
    assert_eq!(count, bot().catalog().topics.len().min(25));
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn questions_get_a_reply_to_the_message_and_chatter_gets_silence() {
    let (fake, running) = ready_bot(Some(500)).await;
    let reply = say(&fake, "600", "42", "is ketamine legal in the US?").await;
    assert_eq!(reply.path, "/channels/600/messages");
    assert!(content(&reply).contains("Schedule III") && content(&reply).ends_with(&disclaimer()));
    assert_eq!(reply.body["message_reference"]["channel_id"], "600");
    for chatter in ["good morning everyone", "this homework is killing me", "kill the process", "I'm dying to see it"] {
        say_expecting_silence(&fake, message_create(&fake.next_id(), "600", "42", chatter)).await;
    }
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crisis_replies_for_self_someone_else_and_mentions_use_the_servers_locale() {
    let (fake, running) = ready_bot(Some(500)).await;
    fake.dispatch("GUILD_CREATE", guild_create("500", "en-GB"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let catalog = bot();
    let crisis = &catalog.catalog().crisis;

    let own = say(&fake, "601", "1", "I want to kill myself").await;
    assert!(content(&own).starts_with(&format!("**{}**", crisis.texts.self_title)), "{}", content(&own));
    assert!(content(&own).contains("116 123") && !content(&own).contains("988"), "server locale en-GB");

    let friend = say(&fake, "601", "2", "my friend said she wants to kill herself").await;
    assert!(content(&friend).starts_with(&format!("**{}**", crisis.texts.third_party_title)));

    let mention = say(&fake, "601", "3", "does ketamine help with suicidal ideation?").await;
    assert!(content(&mention).contains(&crisis.texts.mention) && !content(&mention).contains(&crisis.texts.self_title));
    for reply in [&own, &friend, &mention] {
        assert!(content(reply).ends_with(&catalog.catalog().disclaimer));
    }
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_messages_get_answers_and_crisis_replies_too() {
    let (fake, running) = ready_bot(Some(500)).await;
    let direct = |text: &str| {
        let mut message = message_create(&fake.next_id(), "609", "5", text);
        message.as_object_mut().unwrap().remove("guild_id");
        message
    };
    let answer = send(&fake, direct("is ketamine legal?")).await;
    assert!(content(&answer).contains("Schedule III") && content(&answer).ends_with(&disclaimer()));
    let reply = send(&fake, direct("I want to kill myself")).await;
    // No server, so no server locale: the international directory with the US and UK lines.
    assert!(content(&reply).contains("988") && content(&reply).contains("116 123"));
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bots_webhooks_and_itself_are_ignored() {
    let (fake, running) = ready_bot(Some(500)).await;
    let mut from_bot = message_create(&fake.next_id(), "602", "77", "I want to kill myself");
    from_bot["author"]["bot"] = json!(true);
    say_expecting_silence(&fake, from_bot).await;
    let mut from_webhook = message_create(&fake.next_id(), "602", "78", "is ketamine legal?");
    from_webhook["webhook_id"] = json!("990");
    say_expecting_silence(&fake, from_webhook).await;
    let mut from_itself = message_create(&fake.next_id(), "602", "1000", "is ketamine legal?");
    from_itself["author"]["username"] = json!("testbot");
    say_expecting_silence(&fake, from_itself).await;
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faq_and_crisis_cooldowns() {
    let (fake, running) = ready_bot(Some(500)).await;
    say(&fake, "603", "1", "is ketamine legal?").await;
    say_expecting_silence(&fake, message_create(&fake.next_id(), "603", "2", "is ketamine legal though?")).await;
    say(&fake, "604", "2", "is ketamine legal?").await; // another channel has its own cooldown

    // A crisis reply never waits on the FAQ cooldown of its topic...
    let crisis = say(&fake, "603", "3", "I want to die. is ketamine legal?").await;
    assert!(content(&crisis).contains("988") && !content(&crisis).contains("Schedule III"), "the crisis block alone");
    // ...but one person gets one crisis reply per channel per window.
    say_expecting_silence(&fake, message_create(&fake.next_id(), "603", "3", "I still want to die")).await;
    say(&fake, "603", "4", "I want to die").await; // someone else is answered
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_is_pinged_even_when_the_message_pings_everyone() {
    let (fake, running) = ready_bot(Some(500)).await;
    let reply = say(&fake, "605", "1", "@everyone @here <@123> is ketamine legal?").await;
    assert_eq!(reply.body["allowed_mentions"], json!({"parse": [], "users": [], "roles": [], "replied_user": false}));
    assert!(!content(&reply).contains("@everyone") && !content(&reply).contains("<@"));
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keeps_replying_after_the_connection_drops() {
    let (fake, running) = ready_bot(Some(500)).await;
    say(&fake, "606", "1", "is ketamine legal?").await;
    fake.drop_connection().await;
    let reply = say(&fake, "606", "1", "does ketamine cause bladder problems?").await;
    assert!(content(&reply).contains("bladder"));
    assert_eq!(fake.identifies(), 1, "resumed, not identified again");
    assert!(fake.resumes() >= 1);
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_only_drops_the_message_intents() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let running = start(DiscordSettings { commands_only: true, ..settings(&fake, Some(500)) });
    fake.wait_until_ready().await;
    let intents = fake.identify_intents().expect("identified");
    assert_eq!(intents & (1 << 15), 0, "no MESSAGE_CONTENT");
    assert_eq!(intents & (1 << 9), 0, "no GUILD_MESSAGES");
    let callback = run_command(&fake, "ketamine-legal", json!([]), "en-US").await;
    assert!(content(&callback).contains("Schedule III"));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn identifies_with_the_message_content_intent_by_default() {
    let (fake, running) = ready_bot(Some(500)).await;
    let intents = fake.identify_intents().expect("identified");
    for (bit, name) in [(0, "GUILDS"), (9, "GUILD_MESSAGES"), (12, "DIRECT_MESSAGES"), (15, "MESSAGE_CONTENT")] {
        assert_ne!(intents & (1 << bit), 0, "{name}");
    }
    running.stop().await;
}

/// Starts the real binary on the fake.
fn spawn_binary(fake: &FakeDiscord, token: &str) -> tokio::process::Child {
    spawn_binary_in(fake, token, &state_path())
}

fn spawn_binary_in(fake: &FakeDiscord, token: &str, state: &std::path::Path) -> tokio::process::Child {
    let mut command = bot_command(&["discord", "--api-url", &fake.rest_url]);
    command.env("DISCORD_TOKEN", token).env_remove("DISCORD_TOKEN_FILE").env("STATE_PATH", state);
    command.spawn().unwrap()
}

/// Runs the real binary against the fake until it exits; returns its exit status and standard error.
async fn run_binary(fake: &FakeDiscord, token: &str) -> (std::process::ExitStatus, String) {
    let child = spawn_binary(fake, token);
    let output = tokio::time::timeout(WAIT, child.wait_with_output()).await.expect("the bot exits by itself").unwrap();
    (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_message_content_intent_says_what_to_do_and_exits() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Close(4014)).await;
    let (status, stderr) = run_binary(&fake, TOKEN).await;
    assert!(!status.success());
    assert!(stderr.contains("Message Content Intent") && stderr.contains("--commands-only"), "{stderr}");
    assert_eq!(fake.identifies(), 1, "no retry loop");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_token_is_a_clear_error_without_retries_and_is_never_printed() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let (status, stderr) = run_binary(&fake, "wrong-token-value").await;
    assert!(!status.success());
    assert!(stderr.contains("rejected the bot token") && stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains("wrong-token-value"));
    assert_eq!(fake.identifies(), 0);

    // A token that REST accepts but the gateway refuses (close 4004).
    fake.set_on_identify(OnIdentify::Close(4004));
    let (status, stderr) = run_binary(&fake, TOKEN).await;
    assert!(!status.success() && stderr.contains("4004"), "{stderr}");
    assert!(!stderr.contains(TOKEN));
    assert_eq!(fake.identifies(), 1, "no retry loop");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_binary_cleanly_after_replies_in_flight() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let child = spawn_binary(&fake, TOKEN);
    fake.wait_until_ready().await;
    // Discord takes its time to create the reply, and the stop comes while the bot waits for it.
    let delay = Duration::from_millis(1500);
    fake.set_message_delay(delay);
    let in_flight = say(&fake, "607", "1", "is ketamine legal?").await;
    let (status, stderr) = terminate(child, WAIT).await;
    assert!(status.success(), "{status:?}");
    assert!(in_flight.at.elapsed() >= delay - Duration::from_millis(100), "exited before the reply finished");
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(!stderr.contains("is ketamine legal") && !stderr.contains(TOKEN), "no content or token in logs");
}

fn message_posts(fake: &FakeDiscord, channel: &str) -> Vec<Request> {
    let path = format!("/channels/{channel}/messages");
    fake.requests().into_iter().filter(|r| r.method == "POST" && r.path == path).collect()
}

/// Waits until `count` messages were posted to `channel` (failed ones included) and returns them.
async fn wait_for_posts(fake: &FakeDiscord, channel: &str, count: usize) -> Vec<Request> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let posts = message_posts(fake, channel);
        if posts.len() >= count {
            return posts;
        }
        assert!(std::time::Instant::now() < deadline, "only {} posts: {posts:#?}", posts.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_to_a_deleted_message_is_sent_anyway() {
    let (fake, running) = ready_bot(Some(500)).await;
    let id = fake.next_id();
    // Deleted before the bot answers (a member, or PluralKit a second later).
    fake.delete_message(&id);
    let reply = send(&fake, message_create(&id, "610", "1", "I want to kill myself")).await;
    assert_eq!(reply.body["message_reference"]["fail_if_not_exists"], false);
    assert!(content(&reply).contains("988"));
    tokio::time::sleep(QUIET).await;
    assert_eq!(message_posts(&fake, "610").len(), 1, "accepted the first time");
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_reference_is_dropped_and_the_reply_sent_without_it() {
    let (fake, running) = ready_bot(Some(500)).await;
    fake.refuse_references(true);
    let id = fake.next_id();
    fake.dispatch("MESSAGE_CREATE", message_create(&id, "611", "1", "I want to kill myself"));
    let unreferenced =
        fake.wait_for(WAIT, |r| r.path == "/channels/611/messages" && r.body["message_reference"].is_null()).await;
    assert!(content(&unreferenced).contains("988") && content(&unreferenced).ends_with(&disclaimer()));
    assert_eq!(message_posts(&fake, "611").len(), 2, "one refused with the reference, one sent without");
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crisis_replies_are_retried_through_server_errors_and_rate_limits() {
    let (fake, running) = ready_bot(Some(500)).await;
    let server_error = Failure { status: 500, code: 0, retry_after: None };
    let rate_limited = Failure { status: 429, code: 0, retry_after: Some(1.0) };
    fake.fail_next_messages(&[server_error, rate_limited]);
    let started = std::time::Instant::now();
    fake.dispatch("MESSAGE_CREATE", message_create(&fake.next_id(), "612", "1", "I want to kill myself"));
    wait_for_posts(&fake, "612", 1).await;
    fake.drop_connection().await; // the retries go on across a reconnect
    let posts = wait_for_posts(&fake, "612", 3).await;
    assert!(content(&posts[2]).contains("988"));
    tokio::time::sleep(QUIET).await;
    assert_eq!(message_posts(&fake, "612").len(), 3, "500, 429, then delivered");
    assert!(posts[2].at - posts[1].at >= Duration::from_secs(1), "waited after the rate limit");
    assert!(started.elapsed() < Duration::from_secs(10));
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faq_replies_are_retried_once_and_a_failure_keeps_no_cooldown() {
    let (fake, running) = ready_bot(Some(500)).await;
    let server_error = Failure { status: 502, code: 0, retry_after: None };
    fake.fail_next_messages(&[server_error, server_error]);
    let id = fake.next_id();
    fake.dispatch("MESSAGE_CREATE", message_create(&id, "613", "1", "is ketamine legal?"));
    wait_for_posts(&fake, "613", 2).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(message_posts(&fake, "613").len(), 2, "one try and one retry, then given up");
    // The failed reply did not take the topic's cooldown: the next question is answered.
    let reply = say(&fake, "613", "2", "is ketamine legal?").await;
    assert!(content(&reply).contains("Schedule III"));
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crisis_reply_refused_outright_does_not_silence_the_next_one() {
    let (fake, running) = ready_bot(Some(500)).await;
    fake.fail_next_messages(&[Failure { status: 403, code: 50013, retry_after: None }]);
    let given_up_before = ketamine_info_bot::delivery::given_up();
    let id = fake.next_id();
    fake.dispatch("MESSAGE_CREATE", message_create(&id, "614", "1", "I want to kill myself"));
    fake.wait_for(WAIT, |r| is_reply_to(r, &id)).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(message_posts(&fake, "614").len(), 1, "a refusal is not retried");
    assert!(ketamine_info_bot::delivery::given_up() > given_up_before, "the reply given up is counted");
    let reply = say(&fake, "614", "1", "I want to kill myself").await;
    assert!(content(&reply).contains("988"), "the failed reply used up no cooldown");
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn escalation_and_imminent_risk_pass_the_crisis_cooldown() {
    let (fake, running) = ready_bot(Some(500)).await;
    let friend = say(&fake, "615", "1", "my friend wants to kill herself").await;
    assert!(content(&friend).starts_with("**Helping someone"), "{}", content(&friend));
    let own = say(&fake, "615", "1", "I want to kill myself too").await;
    assert!(content(&own).starts_with("**You don't have to go through this alone**"), "a higher level");
    say_expecting_silence(&fake, message_create(&fake.next_id(), "615", "1", "I want to die")).await;
    let plan = say(&fake, "615", "1", "I'm going to kill myself tonight").await;
    assert!(content(&plan).contains("988"), "imminent risk passes the window");
    say_expecting_silence(&fake, message_create(&fake.next_id(), "615", "1", "I'm doing it tonight")).await;
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_that_raises_the_crisis_level_is_answered_once() {
    let (fake, running) = ready_bot(Some(500)).await;
    let id = fake.next_id();
    say_expecting_silence(&fake, message_create(&id, "616", "1", "rough day")).await;
    fake.dispatch("MESSAGE_UPDATE", message_update(&id, "616", "1", "rough day. I want to kill myself"));
    let reply = fake.wait_for(WAIT, |r| is_reply_to(r, &id)).await;
    assert!(content(&reply).contains("988"));
    fake.dispatch("MESSAGE_UPDATE", message_update(&id, "616", "1", "I'm going to kill myself tonight"));
    tokio::time::sleep(QUIET).await;
    assert_eq!(replies_to(&fake, &id).len(), 1, "one crisis reply per message");
    let question = fake.next_id();
    say(&fake, "616", "2", "is ketamine legal?").await;
    fake.dispatch("MESSAGE_UPDATE", message_update(&question, "616", "2", "is ketamine legal in the UK?"));
    tokio::time::sleep(QUIET).await;
    assert!(replies_to(&fake, &question).is_empty(), "an edit that raises nothing is not answered");
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_starting_with_a_slash_reaches_the_crisis_detector() {
    let (fake, running) = ready_bot(Some(500)).await;
    let reply = say(&fake, "617", "1", "/help I want to die").await;
    assert!(content(&reply).contains("988"));
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_copy_with_the_same_token_and_state_folder_refuses_to_start() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let state = state_path();
    let first = spawn_binary_in(&fake, TOKEN, &state);
    fake.wait_until_ready().await;
    let second = spawn_binary_in(&fake, TOKEN, &state);
    let output = tokio::time::timeout(WAIT, second.wait_with_output()).await.expect("exits by itself").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("another ketamine-info-bot is running"), "{stderr}");
    assert_eq!(fake.identifies(), 1, "the second copy never connected");
    let (status, _) = terminate(first, WAIT).await;
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_id_of_zero_is_refused_before_connecting() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let mut command = bot_command(&["discord", "--api-url", &fake.rest_url]);
    command.env("DISCORD_TOKEN", TOKEN).env("DISCORD_GUILD_ID", "0").env("STATE_PATH", state_path());
    let output = tokio::time::timeout(WAIT, command.output()).await.expect("exits by itself").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("DISCORD_GUILD_ID"), "{stderr}");
    assert!(fake.requests().is_empty(), "nothing was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_message_text_in_the_logs_even_at_trace() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let mut command = bot_command(&["discord", "--api-url", &fake.rest_url]);
    command.env("DISCORD_TOKEN", TOKEN).env("STATE_PATH", state_path()).env("RUST_LOG", "ketamine_info_bot=trace");
    let child = command.spawn().unwrap();
    fake.wait_until_ready().await;
    fake.fail_next_messages(&[Failure { status: 403, code: 50013, retry_after: None }]);
    let said = [
        "is ketamine legal where I live",
        "I want to kill myself tonight",
        "my friend Alex wants to kill herself",
        "/help I want to die now",
        "good morning everyone",
    ];
    for text in said {
        fake.dispatch("MESSAGE_CREATE", message_create(&fake.next_id(), "618", "1", text));
    }
    let id = fake.next_id();
    fake.dispatch("MESSAGE_CREATE", message_create(&id, "618", "2", "rough day"));
    fake.dispatch("MESSAGE_UPDATE", message_update(&id, "618", "2", "rough day, I am going to end my life"));
    fake.wait_for(WAIT, |r| is_reply_to(r, &id)).await;
    let (status, stderr) = terminate(child, WAIT).await;
    assert!(status.success());
    assert!(stderr.contains("chat reply"), "the decisions are logged: {stderr}");
    assert!(stderr.contains("ERROR") && stderr.contains("gave up a reply"), "a reply given up is an error: {stderr}");
    for text in said.iter().chain(&["rough day", "end my life"]) {
        assert!(!stderr.contains(text), "{text:?} in the logs:\n{stderr}");
    }
}

const MANAGE_GUILD: u64 = 1 << 5;
const MANAGE_MESSAGES: u64 = 1 << 13;
const MODERATOR: u64 = MANAGE_GUILD | MANAGE_MESSAGES;

/// Runs `/ketamine-settings <sub> ...` as `user` and returns the ephemeral answer.
async fn settings_command(fake: &FakeDiscord, sub: &str, options: Value, user: &str, permissions: u64) -> String {
    let id = fake.next_id();
    let options = json!([{"name": sub, "type": 1, "options": options}]);
    fake.dispatch("INTERACTION_CREATE", guild_command(&id, "ketamine-settings", options, user, permissions, &[]));
    let callback = fake.wait_for(WAIT, |r| r.path.starts_with(&format!("/interactions/{id}/"))).await;
    assert_eq!(callback.body["data"]["flags"], 64, "settings are answered privately");
    assert!(content(&callback).ends_with(&disclaimer()), "every reply ends with the disclaimer");
    content(&callback).to_owned()
}

/// Presses a button on a message the bot created; returns the callback.
async fn press(
    fake: &FakeDiscord,
    custom_id: &str,
    on: &Value,
    user: &str,
    permissions: u64,
    roles: &[&str],
) -> Request {
    let id = fake.next_id();
    fake.dispatch("INTERACTION_CREATE", button_press(&id, custom_id, user, permissions, roles, on));
    fake.wait_for(WAIT, |r| r.path.starts_with(&format!("/interactions/{id}/"))).await
}

/// Sets up staff alerts to channel 900 with role 77, alert-only crisis replies in 601, a local line and an
/// allowed phrase, as a moderator would.
async fn moderated_server(fake: &FakeDiscord) {
    let alerts = json!([{"name": "channel", "type": 7, "value": "900"}, {"name": "role", "type": 8, "value": "77"}]);
    let answer = settings_command(fake, "alerts", alerts, "10", MODERATOR).await;
    assert!(answer.contains("Saved") && answer.contains("Staff alerts: to <#900>, reminders ping <@&77>"), "{answer}");
    let alert_only =
        json!([{"name": "mode", "type": 3, "value": "alert-only"}, {"name": "channel", "type": 7, "value": "601"}]);
    let answer = settings_command(fake, "crisis-replies", alert_only, "10", MODERATOR).await;
    assert!(answer.contains("Crisis replies: alert-only in <#601>"), "{answer}");
    let line = json!([{"name": "text", "type": 3, "value": "Our peer support line: https://peer.example.org"}]);
    assert!(settings_command(fake, "add-line", line, "10", MODERATOR).await.contains("Local line 1"));
    let phrase = json!([{"name": "action", "type": 3, "value": "add"}, {"name": "phrase", "type": 3, "value": "Suicide Season"}]);
    assert!(settings_command(fake, "allow-phrase", phrase, "10", MODERATOR)
        .await
        .contains("Allowed phrases: Suicide Season"));
}

#[tokio::test(flavor = "multi_thread")]
async fn moderators_set_up_alerts_and_staff_acknowledge_them_without_seeing_text() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let clock = Clock::default();
    let state = state_path();
    let running = start(DiscordSettings {
        clock: clock.clone(),
        state: StateLocation::File(state.clone()),
        ..settings(&fake, Some(500))
    });
    let registration = fake.wait_until_ready().await;
    let registered = registration.body.as_array().unwrap();
    let settings_definition = registered.iter().find(|c| c["name"] == "ketamine-settings").expect("registered");
    assert_eq!(settings_definition["default_member_permissions"], MANAGE_GUILD.to_string());
    // A staff channel the bot cannot post in is flagged at once, not at the first crisis.
    fake.fail_next_messages(&[Failure { status: 403, code: 50013, retry_after: None }]);
    let unwritable = json!([{"name": "channel", "type": 7, "value": "901"}]);
    let answer = settings_command(&fake, "alerts", unwritable, "10", MODERATOR).await;
    assert!(answer.contains("Warning: the bot cannot post in <#901>"), "{answer}");
    moderated_server(&fake).await;
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.path == "/channels/900/messages" && content(r).contains("changed the bot's settings")));

    let refused =
        json!([{"name": "action", "type": 3, "value": "add"}, {"name": "phrase", "type": 3, "value": "kill myself"}]);
    let answer = settings_command(&fake, "allow-phrase", refused, "10", MODERATOR).await;
    assert!(answer.starts_with("Not changed") && answer.contains("would silence"), "{answer}");

    // A public crisis reply with the server's local line and the opt-out button, and an alert to staff.
    let crisis_text = "I want to kill myself tonight";
    let reply = say(&fake, "600", "42", crisis_text).await;
    assert!(content(&reply).contains("988") && content(&reply).contains("https://peer.example.org"));
    assert_eq!(reply.body["components"][0]["components"][0]["custom_id"], "kib-optout:42");
    let alert =
        fake.wait_for(WAIT, |r| r.path == "/channels/900/messages" && content(r).contains("Possible crisis")).await;
    assert!(content(&alert).contains("<@42>") && content(&alert).contains("https://discord.com/channels/500/600/"));
    assert!(content(&alert).ends_with(&disclaimer()));
    assert!(!content(&alert).contains("kill myself"), "never the text: {}", content(&alert));
    assert_eq!(alert.body["allowed_mentions"]["parse"], json!([]), "the member is named, not pinged");

    // Alert-only: no public reply in 601, an alert all the same.
    let quiet = fake.next_id();
    say_expecting_silence(&fake, message_create(&quiet, "601", "43", "I want to die")).await;
    fake.wait_for(WAIT, |r| r.path == "/channels/900/messages" && content(r).contains(&format!("/601/{quiet}"))).await;
    // The allowed phrase: nothing.
    say_expecting_silence(&fake, message_create(&fake.next_id(), "600", "44", "I love the song Suicide Season")).await;

    // Acknowledge: refused to a member without the permission or the role, done for one with the role.
    let ack = alert.body["components"][0]["components"][0]["custom_id"].as_str().unwrap().to_owned();
    let posted = created_message(&alert, "990001");
    let refusal = press(&fake, &ack, &posted, "50", 0, &[]).await;
    assert_eq!((refusal.body["type"].as_u64(), refusal.body["data"]["flags"].as_u64()), (Some(4), Some(64)));
    let done = press(&fake, &ack, &posted, "51", 0, &["77"]).await;
    assert_eq!(done.body["type"], 7, "the alert is edited");
    assert!(content(&done).contains("Acknowledged by <@51>") && done.body["data"]["components"] == json!([]));

    // The unacknowledged alert gets one reminder after realert-minutes, pinging the role and nobody else.
    let reminders = || fake.requests().into_iter().filter(|r| content(r).contains("not acknowledged yet")).count();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(reminders(), 0, "not before ten minutes");
    clock.advance(11 * 60);
    let reminder = fake.wait_for(WAIT, |r| content(r).contains("not acknowledged yet")).await;
    assert!(content(&reminder).starts_with("<@&77>") && content(&reminder).contains(&format!("/601/{quiet}")));
    assert_eq!(reminder.body["allowed_mentions"]["roles"], json!(["77"]));
    assert_eq!(reminder.body["allowed_mentions"]["parse"], json!([]));
    assert!(reminder.body["allowed_mentions"]["users"].as_array().is_none_or(|users| users.is_empty()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(reminders(), 1, "one reminder");
    stop_and_check(&fake, running).await;

    // Nothing stored holds what anyone wrote.
    let dump = std::process::Command::new("sqlite3").arg(&state).arg(".dump").output();
    let stored = match dump {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout).into_owned(),
        _ => String::from_utf8_lossy(&std::fs::read(&state).unwrap()).into_owned(),
    };
    for text in [crisis_text, "I want to die", "Suicide Season was"] {
        assert!(!stored.contains(text), "{text:?} stored");
    }
    assert!(stored.contains("peer.example.org"), "the settings are there: the check reads the database");
}

#[tokio::test(flavor = "multi_thread")]
async fn members_opt_out_and_settings_survive_a_restart() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let state = state_path();
    let running = start(DiscordSettings { state: StateLocation::File(state.clone()), ..settings(&fake, Some(500)) });
    fake.wait_until_ready().await;
    moderated_server(&fake).await;
    let id = fake.next_id();
    fake.dispatch("INTERACTION_CREATE", guild_command(&id, "ketamine-optout", json!([]), "44", 0, &[]));
    let answer = fake.wait_for(WAIT, |r| r.path.starts_with(&format!("/interactions/{id}/"))).await;
    assert_eq!(answer.body["data"]["flags"], 64);
    say_expecting_silence(&fake, message_create(&fake.next_id(), "600", "44", "is ketamine legal?")).await;
    let crisis = fake.next_id();
    say_expecting_silence(&fake, message_create(&crisis, "600", "44", "I want to kill myself")).await;
    fake.wait_for(WAIT, |r| r.path == "/channels/900/messages" && content(r).contains(&format!("/600/{crisis}"))).await;
    assert!(
        content(&run_command(&fake, "ketamine-legal", json!([]), "en-US").await).contains("Schedule III"),
        "commands answer"
    );

    // The button on an automatic reply: only the member it answered may use it.
    let reply = say(&fake, "600", "45", "does ketamine cause bladder problems?").await;
    let posted = created_message(&reply, "990002");
    let refused = press(&fake, "kib-optout:45", &posted, "46", 0, &[]).await;
    assert!(content(&refused).contains("Only the member"));
    let accepted = press(&fake, "kib-optout:45", &posted, "45", 0, &[]).await;
    assert!(content(&accepted).starts_with("Done"));
    running.stop().await;

    let identified = fake.identifies();
    let running = start(DiscordSettings { state: StateLocation::File(state), ..settings(&fake, Some(500)) });
    while fake.identifies() == identified {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shown = settings_command(&fake, "show", json!([]), "10", MODERATOR).await;
    assert!(shown.contains("<#900>") && shown.contains("Allowed phrases: Suicide Season"), "{shown}");
    say_expecting_silence(&fake, message_create(&fake.next_id(), "600", "45", "is ketamine legal?")).await;
    let id = fake.next_id();
    fake.dispatch("INTERACTION_CREATE", guild_command(&id, "ketamine-optin", json!([]), "44", 0, &[]));
    fake.wait_for(WAIT, |r| r.path.starts_with(&format!("/interactions/{id}/"))).await;
    let back = say(&fake, "600", "44", "is ketamine legal?").await;
    assert!(content(&back).contains("Schedule III"), "opted in again");
    stop_and_check(&fake, running).await;
}

/// Runs the "Send crisis resources" message command on `message` as a moderator; returns the ephemeral answer.
async fn send_resources(fake: &FakeDiscord, message: &Value, moderator: &str) -> String {
    let id = fake.next_id();
    let mut interaction = guild_command(&id, "Send crisis resources", json!(null), moderator, MODERATOR, &[]);
    let target = message["id"].as_str().unwrap();
    interaction["data"] = json!({
        "id": "801", "name": "Send crisis resources", "type": 3, "target_id": target,
        "resolved": {"messages": {target: message}}
    });
    fake.dispatch("INTERACTION_CREATE", interaction);
    let callback = fake.wait_for(WAIT, |r| r.path.starts_with(&format!("/interactions/{id}/"))).await;
    assert_eq!(callback.body["data"]["flags"], 64);
    content(&callback).to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn moderators_send_resources_see_stats_and_members_are_forgotten() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let running = start(settings(&fake, Some(500)));
    let registration = fake.wait_until_ready().await;
    let menu = registration.body.as_array().unwrap().iter().find(|c| c["name"] == "Send crisis resources").cloned();
    assert_eq!(menu.expect("registered")["type"], 3, "a message command");
    moderated_server(&fake).await;
    let region = json!([{"name": "region", "type": 3, "value": "gb"}]);
    assert!(settings_command(&fake, "region", region, "10", MODERATOR).await.contains("Region: gb"));

    // A message the detector does not catch, which a moderator answers by hand.
    let message = message_create(&fake.next_id(), "602", "47", "everything is grey and I can't see a way out");
    fake.dispatch("MESSAGE_CREATE", message.clone());
    assert!(send_resources(&fake, &message, "10").await.starts_with("Sent."));
    let sent = fake.wait_for(WAIT, |r| is_reply_to(r, message["id"].as_str().unwrap())).await;
    assert!(
        content(&sent).contains("116 123") && content(&sent).contains("https://peer.example.org"),
        "the server's region and line"
    );
    assert_eq!(sent.body["allowed_mentions"]["parse"], json!([]));
    fake.wait_for(WAIT, |r| {
        r.path == "/channels/900/messages" && content(r).contains("sent crisis resources to <@47>")
    })
    .await;
    let again = send_resources(&fake, &message, "11").await;
    assert!(again.contains("less than an hour ago"), "{again}");

    say(&fake, "600", "48", "is ketamine legal?").await;
    tokio::time::sleep(QUIET).await; // counted once Discord has answered the send
    let id = fake.next_id();
    fake.dispatch("INTERACTION_CREATE", guild_command(&id, "ketamine-stats", json!([]), "10", MODERATOR, &[]));
    let stats = fake.wait_for(WAIT, |r| r.path.starts_with(&format!("/interactions/{id}/"))).await;
    assert!(content(&stats).contains("Last 7 days: FAQ replies: legal-status 1."), "{}", content(&stats));
    assert!(!content(&stats).contains("<@"), "no ids");

    let id = fake.next_id();
    fake.dispatch("INTERACTION_CREATE", guild_command(&id, "ketamine-forget-me", json!([]), "47", 0, &[]));
    let forgotten = fake.wait_for(WAIT, |r| r.path.starts_with(&format!("/interactions/{id}/"))).await;
    assert!(content(&forgotten).starts_with("Done"));
    assert!(
        send_resources(&fake, &message, "10").await.starts_with("Sent."),
        "the record of the first send is gone too"
    );
    stop_and_check(&fake, running).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_state_database_stops_the_bot_and_is_left_untouched() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let state = state_path();
    let garbage = b"not a database: someone copied a text file here by mistake ..............".to_vec();
    std::fs::write(&state, &garbage).unwrap();
    let child = spawn_binary_in(&fake, TOKEN, &state);
    let output = tokio::time::timeout(WAIT, child.wait_with_output()).await.expect("exits by itself").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("state database") && stderr.contains("corrupted"), "{stderr}");
    assert_eq!(std::fs::read(&state).unwrap(), garbage, "left as it was");
    assert_eq!(fake.identifies(), 0, "never connected");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_settings_list_continues_in_private_followups() {
    let (fake, running) = ready_bot(Some(500)).await;
    for index in 0..5 {
        let text = format!("Local line {index}: https://peer.example.org/{}", "x".repeat(150));
        settings_command(&fake, "add-line", json!([{"name": "text", "type": 3, "value": text}]), "10", MODERATOR).await;
    }
    for index in 0..12 {
        let phrase = format!("the blue lagoon fan club meetup number {index} at the old harbour");
        let options =
            json!([{"name": "action", "type": 3, "value": "add"}, {"name": "phrase", "type": 3, "value": phrase}]);
        settings_command(&fake, "allow-phrase", options, "10", MODERATOR).await;
    }
    let id = fake.next_id();
    let options = json!([{"name": "show", "type": 1, "options": []}]);
    fake.dispatch("INTERACTION_CREATE", guild_command(&id, "ketamine-settings", options, "10", MODERATOR, &[]));
    let token = format!("/webhooks/1000/token{id}");
    let followup = fake.wait_for(WAIT, |r| r.path.starts_with(&token)).await;
    assert_eq!(followup.body["flags"], 64, "private too");
    assert!(content(&followup).ends_with(&disclaimer()) && content(&followup).contains("old harbour"));
    stop_and_check(&fake, running).await;
}

/// Asks "is ketamine legal?" in a fresh channel (no FAQ cooldown) until the reply contains `expected`.
async fn legal_answer_contains(fake: &FakeDiscord, expected: &str) -> bool {
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        let channel = fake.next_id();
        if content(&say(fake, &channel, "1", "is ketamine legal?").await).contains(expected) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Starts the real binary on a copy of the shipped content in a file of its own (with `flags`, such as
/// `--watch`), ready; returns it and the file.
async fn spawn_with_content_file(fake: &FakeDiscord, flags: &[&str]) -> (tokio::process::Child, std::path::PathBuf) {
    let state = state_path();
    let content_file = state.with_file_name("responses.toml");
    std::fs::write(&content_file, ketamine_info_bot::content::BUILT_IN_RESPONSES).unwrap();
    let mut args = vec!["--responses", content_file.to_str().unwrap()];
    args.extend(flags);
    args.extend(["discord", "--api-url", &fake.rest_url]);
    let mut command = bot_command(&args);
    command.env("DISCORD_TOKEN", TOKEN).env("STATE_PATH", &state);
    let child = command.spawn().unwrap();
    fake.wait_until_ready().await;
    (child, content_file)
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_content_and_a_broken_edit_keeps_the_last_good_one() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let (child, content_file) = spawn_with_content_file(&fake, &[]).await;
    let shipped = ketamine_info_bot::content::BUILT_IN_RESPONSES;
    let hangup = || {
        let pid = child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    };
    let registrations = || fake.requests().into_iter().filter(|r| r.method == "PUT").collect::<Vec<_>>();
    assert!(legal_answer_contains(&fake, "Schedule III").await);

    // A body edited: the next messages get it; the commands are the same, so nothing is registered again.
    let old_body = "Possessing it without a prescription is illegal.";
    std::fs::write(
        &content_file,
        shipped.replacen(old_body, "Possessing it without a prescription is illegal (reloaded).", 1),
    )
    .unwrap();
    hangup();
    assert!(legal_answer_contains(&fake, "(reloaded)").await, "the new content serves");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(registrations().len(), 1, "unchanged commands are not registered again");

    // A description edited: one bulk overwrite with the new definitions.
    let old_description = "The legal status of ketamine in the United States";
    let edited = shipped.replacen(old_body, "Possessing it without a prescription is illegal (reloaded).", 1).replacen(
        old_description,
        "Ketamine and the law in the United States",
        1,
    );
    std::fs::write(&content_file, &edited).unwrap();
    hangup();
    let registration =
        fake.wait_for(WAIT, |r| r.method == "PUT" && r.body.to_string().contains("Ketamine and the law")).await;
    assert!(registration.body.as_array().unwrap().len() > 20);
    assert_eq!(registrations().len(), 2, "one bulk overwrite");

    // A broken edit: an error with file, line and column, and the last good content keeps serving.
    std::fs::write(&content_file, edited.replacen("[[topic]]", "[[topic]\n", 1)).unwrap();
    hangup();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(legal_answer_contains(&fake, "(reloaded)").await, "still the last good content");
    let (status, stderr) = terminate(child, WAIT).await;
    assert!(status.success());
    let place = format!("{}:", content_file.display());
    assert!(stderr.contains("not reloaded") && stderr.contains(&place), "{stderr}");
    assert_eq!(registrations().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_settings_files_cooldowns_and_a_broken_edit_keeps_the_last_good_ones() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let config = state_path().with_file_name("bot.toml");
    std::fs::write(&config, "[cooldowns]\nfaq_seconds = 600\n").unwrap();
    let (child, _) = spawn_with_content_file(&fake, &["--config", config.to_str().unwrap()]).await;
    let hangup = || {
        let pid = child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    };
    let answered = |author: &'static str| {
        let fake = &fake;
        async move {
            let message = message_create(&fake.next_id(), "610", author, "is ketamine legal?");
            let id = message["id"].as_str().unwrap().to_owned();
            fake.dispatch("MESSAGE_CREATE", message);
            tokio::time::sleep(QUIET).await;
            !replies_to(fake, &id).is_empty()
        }
    };
    assert!(answered("1").await);
    assert!(!answered("2").await, "the FAQ window of the settings file holds");

    std::fs::write(&config, "[cooldowns]\nfaq_seconds = 0\n").unwrap();
    hangup();
    let deadline = std::time::Instant::now() + WAIT;
    while !answered("3").await {
        assert!(std::time::Instant::now() < deadline, "the new window applies without a restart");
    }
    assert!(answered("4").await, "no window any more");

    std::fs::write(&config, "[cooldowns]\nfaq_seconds = \"soon\"\n").unwrap();
    hangup();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(answered("5").await && answered("6").await, "the last good settings keep serving");
    let (status, stderr) = terminate(child, WAIT).await;
    assert!(status.success());
    let place = format!("{}:2:", config.display());
    assert!(stderr.contains("not reloaded") && stderr.contains(&place), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_reloads_the_content_when_the_file_changes() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let (child, content_file) = spawn_with_content_file(&fake, &["--watch"]).await;
    let shipped = ketamine_info_bot::content::BUILT_IN_RESPONSES;
    assert!(legal_answer_contains(&fake, "Schedule III").await);
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new modification time, even on coarse clocks
    let edited = shipped.replacen("is illegal.", "is illegal (watched).", 1);
    std::fs::write(&content_file, edited).unwrap();
    assert!(legal_answer_contains(&fake, "(watched)").await, "reloaded without a signal");
    let (status, stderr) = terminate(child, WAIT).await;
    assert!(status.success() && stderr.contains("content and cooldowns reloaded"), "{stderr}");
}

/// GETs `path` from the bot's metrics endpoint; the status and the body.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_replies_suppressions_and_retries_without_ids() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    let address = free_address();
    let mut command = bot_command(&["--metrics", &address, "discord", "--api-url", &fake.rest_url]);
    command.env("DISCORD_TOKEN", TOKEN).env("STATE_PATH", state_path());
    let child = command.spawn().unwrap();
    fake.wait_until_ready().await;

    say(&fake, "620", "1", "is ketamine legal?").await;
    say(&fake, "621", "2", "I want to kill myself").await;
    say_expecting_silence(&fake, message_create(&fake.next_id(), "621", "2", "I want to kill myself")).await;
    fake.fail_next_messages(&[Failure { status: 500, code: 0, retry_after: None }]);
    fake.dispatch("MESSAGE_CREATE", message_create(&fake.next_id(), "622", "3", "I want to kill myself"));
    wait_for_posts(&fake, "622", 2).await;
    run_command(&fake, "ketamine-legal", json!([]), "en-US").await;
    tokio::time::sleep(QUIET).await;

    let (status, metrics) = scrape(&address, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        r#"ketamine_replies_total{platform="discord",kind="faq",level="none"} 1"#,
        r#"ketamine_replies_total{platform="discord",kind="crisis",level="self"} 2"#,
        r#"ketamine_replies_total{platform="discord",kind="command",level="none"} 1"#,
        r#"ketamine_cooldown_suppressed_total{platform="discord"} 1"#,
        r#"ketamine_send_failures_total{platform="discord"} 1"#,
        r#"ketamine_send_retries_total{platform="discord"} 1"#,
        r#"ketamine_reply_latency_seconds_count{platform="discord"} 4"#,
        r#"ketamine_platform_connected{platform="discord"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    // Ids could only be in labels (a value such as a latency sum may contain the same digits); text nowhere.
    let labels: Vec<&str> =
        metrics.lines().filter_map(|line| Some(line.split_once('{')?.1.split_once('}')?.0)).collect();
    for id in ["620", "621", "622", "\"1\"", "\"2\"", "\"3\""] {
        assert!(labels.iter().all(|labels| !labels.contains(id)), "{id} in the metrics' labels");
    }
    assert!(!metrics.contains("kill"), "message text in the metrics");
    let (status, health) = scrape(&address, "/healthz").await;
    assert_eq!((status, health.as_str()), (200, r#"{"discord": true}"#));
    let (status, _) = scrape(&address, "/elsewhere").await;
    assert_eq!(status, 404);
    let probe = || bot_command(&["health", &address]).status();
    assert!(probe().await.unwrap().success(), "the container health check passes while connected");
    terminate(child, WAIT).await;
    assert!(!probe().await.unwrap().success(), "and fails when the bot is gone");
}

/// A server on shard 1 of 2: Discord routes a server's events to shard `(id >> 22) % total`.
const SHARD_ONE_GUILD: &str = "4194304";

/// `message` as written in another server.
fn in_guild(mut message: Value, guild: &str) -> Value {
    message["guild_id"] = json!(guild);
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn two_shard_processes_on_one_postgres_answer_each_message_once_and_share_opt_outs() {
    let fake = FakeDiscord::start(TOKEN, OnIdentify::Ready).await;
    // Over TLS, as processes on several machines would reach it; the test server's certificate authority is
    // trusted through SSL_CERT_FILE.
    let (url, authority) =
        tokio::task::spawn_blocking(|| crate::support::postgres::database_over_tls("shards")).await.unwrap();
    let command = |range: &str| {
        let mut command =
            bot_command(&["discord", "--api-url", &fake.rest_url, "--shards", range, "--total-shards", "2"]);
        command.env("DISCORD_TOKEN", TOKEN).env("STATE_URL", &url).env("DISCORD_GUILD_ID", "500");
        command.env_remove("SSL_CERT_DIR").env_remove("SSL_CERT_FILE");
        command
    };
    let spawn = |range: &str| command(range).env("SSL_CERT_FILE", &authority).spawn().unwrap();

    // Without the authority the server's certificate is not trusted: a clear error, never a plain connection.
    let untrusted = command("0").output();
    let untrusted = tokio::time::timeout(WAIT, untrusted).await.expect("exits by itself").unwrap();
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(!untrusted.status.success() && stderr.contains("cannot reach the state database"), "{stderr}");
    assert!(!stderr.contains(crate::support::postgres::PASSWORD), "the URL's password is never printed");

    let (low, high) = (spawn("0"), spawn("1-1"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while fake.identified_shards().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "both processes identify: {:?}", fake.identified_shards());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut shards = fake.identified_shards();
    shards.sort();
    assert_eq!(shards, [[0, 2], [1, 2]], "each process identifies as its own shard of two");

    // A third process for shard 1 finds it claimed in the shared database and never connects.
    let third = spawn("1").wait_with_output();
    let third = tokio::time::timeout(WAIT, third).await.expect("exits by itself").unwrap();
    let stderr = String::from_utf8_lossy(&third.stderr);
    assert!(!third.status.success() && stderr.contains("running shard 1"), "{stderr}");
    assert_eq!(fake.identifies(), 2);

    // Each server's messages reach one process, which answers each once.
    let on_shard_zero = message_create(&fake.next_id(), "600", "45", "is ketamine legal?");
    let on_shard_one = in_guild(message_create(&fake.next_id(), "601", "46", "is ketamine legal?"), SHARD_ONE_GUILD);
    let ids = [on_shard_zero["id"].as_str().unwrap().to_owned(), on_shard_one["id"].as_str().unwrap().to_owned()];
    send(&fake, on_shard_zero).await;
    send(&fake, on_shard_one).await;
    tokio::time::sleep(QUIET).await;
    for id in &ids {
        assert_eq!(replies_to(&fake, id).len(), 1, "message {id} is answered exactly once");
    }

    // An opt-out taken by the process of shard 0 holds in a server of the process of shard 1.
    let id = fake.next_id();
    fake.dispatch("INTERACTION_CREATE", guild_command(&id, "ketamine-optout", json!([]), "47", 0, &[]));
    fake.wait_for(WAIT, |r| r.path.starts_with(&format!("/interactions/{id}/"))).await;
    let question = message_create(&fake.next_id(), "601", "47", "is ketamine legal?");
    say_expecting_silence(&fake, in_guild(question, SHARD_ONE_GUILD)).await;

    let registrations = fake.requests().iter().filter(|r| r.method == "PUT" && r.path.ends_with("/commands")).count();
    assert_eq!(registrations, 1, "commands are registered by the process that runs shard 0 only");
    for process in [low, high] {
        let (status, _) = terminate(process, WAIT).await;
        assert!(status.success());
    }
    assert_valid(&fake.requests());
}
