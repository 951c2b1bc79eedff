//! The Matrix adapter against a real Synapse on 127.0.0.1 (installed from PyPI on first use).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ketamine_info_bot::config::{CooldownSettings, MatrixAuth, MatrixSettings, Secret, StateLocation};
use ketamine_info_bot::platforms::matrix::{self, MatrixError};
use ketamine_info_bot::state::Clock;
use ketamine_info_bot::{Bot, Catalog, LiveBot};
use matrix_sdk::ruma::events::room::message::{ReplacementMetadata, RoomMessageEventContent};
use matrix_sdk::ruma::OwnedEventId;
use matrix_sdk::Room;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::bot_process::{bot_command, free_address, scrape, terminate};
use crate::support::matrix_member::{Member, Received};
use crate::support::synapse::Synapse;

const PASSWORD: &str = "correct horse battery staple";
const WAIT: Duration = Duration::from_secs(60);
/// How long to watch for a reply that must not come.
const QUIET: Duration = Duration::from_secs(2);

/// One homeserver for the tests that do not restart it.
fn shared_synapse() -> &'static Synapse {
    static SHARED: OnceLock<Synapse> = OnceLock::new();
    tokio::task::block_in_place(|| SHARED.get_or_init(|| Synapse::start("shared")))
}

/// A user name no other test uses (every device of an account sees every event, so each test has its own).
fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("matrix-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bot() -> Arc<Bot> {
    Arc::new(Bot::new(Catalog::built_in()))
}

fn settings(synapse: &Synapse, user: &str, store: &Path) -> MatrixSettings {
    MatrixSettings {
        homeserver: synapse.url.clone(),
        user: user.to_owned(),
        auth: MatrixAuth::Password(Secret::new(PASSWORD)),
        store: store.to_owned(),
        allowed_inviters: Vec::new(),
        locale: None,
        store_passphrase: None,
        catch_up: MatrixSettings::DEFAULT_CATCH_UP,
        state: StateLocation::File(store.with_extension("state.db")),
        clock: Clock::default(),
    }
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), MatrixError>>,
}

impl Running {
    fn start(settings: MatrixSettings) -> Running {
        Running::start_with(bot(), settings)
    }

    fn start_with(bot: Arc<Bot>, settings: MatrixSettings) -> Running {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(matrix::run(Arc::new(LiveBot::new(bot)), settings, async {
            let _ = stopped.await;
        }));
        Running { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(WAIT, self.task).await.expect("the bot stops").expect("no panic");
        result.expect("a clean stop");
    }
}

/// A bot account, a member account, and a room of the member's that the bot has joined.
struct Scene {
    bot_user: String,
    store: PathBuf,
    member: Member,
    room: Room,
    running: Running,
}

async fn scene(synapse: &Synapse, encrypted: bool) -> Scene {
    scene_with(synapse, encrypted, CooldownSettings::DEFAULT).await
}

async fn scene_with(synapse: &Synapse, encrypted: bool, cooldowns: CooldownSettings) -> Scene {
    let (bot_name, member_name) = (unique("bot"), unique("member"));
    let bot_user = synapse.register(&bot_name, PASSWORD).await;
    let member_user = synapse.register(&member_name, PASSWORD).await;
    let store = scratch(&bot_name);
    let running = Running::start_with(
        Arc::new(Bot::new(Catalog::built_in()).with_cooldowns(cooldowns)),
        settings(synapse, &bot_user, &store.join("bot")),
    );
    let member = Member::login(&synapse.url, &member_user, PASSWORD, &store.join("member")).await;
    let room = member.create_room(encrypted, &[&bot_user]).await;
    assert!(member.wait_for_membership(&room, &bot_user, WAIT).await, "the bot joins when invited");
    Scene { bot_user, store, member, room, running }
}

fn disclaimer() -> String {
    bot().catalog().disclaimer.clone()
}

async fn ask(scene: &Scene, text: &str) -> Received {
    let event = scene.member.say(&scene.room, text).await;
    scene.member.reply_to(&event, WAIT).await
}

async fn expect_silence(member: &Member, event: &OwnedEventId) {
    tokio::time::sleep(QUIET).await;
    assert!(member.replies_to(event).is_empty(), "the bot answered {event}");
}

/// The checks every reply must pass: a notice from the bot, plain and HTML bodies ending with the disclaimer,
/// an empty `m.mentions`, and a reply relation.
fn assert_proper_reply(reply: &Received, bot_user: &str) {
    let content = &reply.event["content"];
    assert_eq!(reply.sender, bot_user);
    assert_eq!(content["msgtype"], "m.notice");
    assert!(reply.body().ends_with(&disclaimer()), "{}", reply.body());
    assert_eq!(content["format"], "org.matrix.custom.html");
    assert!(content["formatted_body"].as_str().unwrap().ends_with("</em></p>"));
    assert_eq!(content["m.mentions"], json!({}), "mentions nobody");
    assert!(reply.in_reply_to().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn joins_when_invited_and_answers_commands_questions_and_crises() {
    let synapse = shared_synapse();
    // One member writes every kind of message here; the cooldowns have a test of their own.
    let no_cooldowns = CooldownSettings { faq: Duration::ZERO, crisis: Duration::ZERO };
    let scene = scene_with(synapse, false, no_cooldowns).await;
    let bot = bot();
    let crisis = &bot.catalog().crisis;

    let risks = ask(&scene, "!ketamine-risks").await;
    assert!(risks.body().contains("Potential Risks:"));
    let help = ask(&scene, "!ketamine help").await;
    assert!(help.body().contains("!ketamine-legal") && help.body().contains("!crisis-resources"));
    let picked = ask(&scene, "!ketamine legal-status").await;
    assert!(picked.body().contains("Schedule III"));
    let uk = ask(&scene, "!crisis-resources uk").await;
    assert!(uk.body().contains("116 123") && !uk.body().contains("988"));
    let faq = ask(&scene, "is ketamine legal?").await;
    assert!(faq.body().contains("Schedule III"));
    let own = ask(&scene, "I want to kill myself").await;
    assert!(own.body().starts_with(&crisis.texts.self_title) && own.body().contains("findahelpline.com"));
    let friend = ask(&scene, "my friend said she wants to kill herself").await;
    assert!(friend.body().starts_with(&crisis.texts.third_party_title));
    let mention = ask(&scene, "does ketamine help with suicidal ideation?").await;
    assert!(mention.body().contains(&crisis.texts.mention));
    for reply in [&risks, &help, &picked, &uk, &faq, &own, &friend, &mention] {
        assert_proper_reply(reply, &scene.bot_user);
    }

    // A prefix does not make a command: these are chat, and reach the crisis detector.
    for crisis_chat in ["!!! I want to kill myself", "!help me I want to die"] {
        let reply = ask(&scene, crisis_chat).await;
        assert!(reply.body().starts_with(&crisis.texts.self_title), "{crisis_chat}");
        assert_proper_reply(&reply, &scene.bot_user);
    }
    for chatter in ["good morning everyone", "this homework is killing me", "!no-such-command"] {
        let event = scene.member.say(&scene.room, chatter).await;
        expect_silence(&scene.member, &event).await;
    }
    scene.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn applies_the_same_cooldowns_as_discord() {
    let synapse = shared_synapse();
    let scene = scene(synapse, false).await;
    ask(&scene, "is ketamine legal?").await;
    let again = scene.member.say(&scene.room, "is ketamine legal though?").await;
    expect_silence(&scene.member, &again).await;
    let crisis = ask(&scene, "I want to die. Is ketamine legal?").await; // never waits on the FAQ cooldown
    assert!(crisis.body().contains("988") && !crisis.body().contains("Schedule III"), "the crisis block alone");
    let repeated = scene.member.say(&scene.room, "I still want to die").await;
    expect_silence(&scene.member, &repeated).await; // one crisis reply per person per window
    assert!(ask(&scene, "!ketamine-legal").await.body().contains("Schedule III"), "commands have their own cooldown");
    scene.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ignores_notices_and_its_own_messages_and_never_pings_the_room() {
    let synapse = shared_synapse();
    let scene = scene(synapse, false).await;
    let notice = scene.member.send(&scene.room, RoomMessageEventContent::notice_plain("is ketamine legal?")).await;
    expect_silence(&scene.member, &notice).await;

    // The bot's own account, from another device, writing text: still itself.
    let itself = Member::login(&synapse.url, &scene.bot_user, PASSWORD, &scene.store.join("itself")).await;
    let room = itself.client.get_room(scene.room.room_id()).expect("the bot is in the room");
    let own = itself.say(&room, "is ketamine legal?").await;
    expect_silence(&scene.member, &own).await;

    let ping = ask(&scene, "@room is ketamine legal?").await;
    assert_proper_reply(&ping, &scene.bot_user);
    assert!(!ping.body().contains("@room") && ping.event["content"]["m.mentions"].get("room").is_none());
    scene.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_in_encrypted_rooms() {
    let synapse = shared_synapse();
    let scene = scene(synapse, true).await;
    assert!(scene.room.latest_encryption_state().await.expect("state").is_encrypted());
    let reply = ask(&scene, "is ketamine legal?").await;
    assert!(reply.body().contains("Schedule III"), "decrypted: {}", reply.body());
    assert_proper_reply(&reply, &scene.bot_user);
    let crisis = ask(&scene, "I want to die").await;
    assert!(crisis.body().contains("988"));
    scene.running.stop().await;
}

/// Waits until the bot has signed in and saved its session in `store`; returns the session file's path.
async fn wait_for_sign_in(store: &Path) -> PathBuf {
    let session = store.join("session.json");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(&session).unwrap_or_default();
        if serde_json::from_str::<Value>(&text).is_ok_and(|saved| saved["access_token"].is_string()) {
            return session;
        }
        assert!(std::time::Instant::now() < deadline, "the bot signs in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The bot's devices, asked with its own saved session.
async fn devices(synapse: &Synapse, store: &Path) -> Vec<Value> {
    let session: Value = serde_json::from_str(&std::fs::read_to_string(store.join("session.json")).unwrap()).unwrap();
    let token = session["access_token"].as_str().unwrap();
    let response = reqwest::Client::new()
        .get(format!("{}/_matrix/client/v3/devices", synapse.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let devices: Value = response.json().await.unwrap();
    devices["devices"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_the_device_and_answers_what_came_while_it_was_down_if_recent() {
    let synapse = shared_synapse();
    let scene = scene(synapse, true).await;
    ask(&scene, "is ketamine legal?").await;
    let bot_store = scene.store.join("bot");
    let before = devices(synapse, &bot_store).await;
    scene.running.stop().await;

    let catch_up = Duration::from_secs(6);
    let too_old = scene.member.say(&scene.room, "I want to kill myself").await;
    tokio::time::sleep(catch_up + Duration::from_secs(1)).await;
    let recent = scene.member.say(&scene.room, "does ketamine cause bladder problems?").await;
    let recent_crisis = scene.member.say(&scene.room, "I'm going to end my life").await;
    let running = Running::start(MatrixSettings { catch_up, ..settings(synapse, &scene.bot_user, &bot_store) });
    let reply = scene.member.reply_to(&recent, WAIT).await;
    assert!(reply.body().contains("bladder"), "answers in the encrypted room what came while it was down");
    assert!(scene.member.reply_to(&recent_crisis, WAIT).await.body().contains("988"));
    expect_silence(&scene.member, &too_old).await;

    let after = devices(synapse, &bot_store).await;
    let device_ids = |devices: &[Value]| -> Vec<String> {
        devices.iter().map(|d| d["device_id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(device_ids(&before), device_ids(&after), "no new device");
    let named = after.iter().filter(|d| d["display_name"] == "ketamine-info-bot").count();
    assert_eq!(named, 1, "one bot device (the other is the test's registration): {after:?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_start_never_answers_history() {
    let synapse = shared_synapse();
    let bot_user = synapse.register(&unique("bot"), PASSWORD).await;
    let member_user = synapse.register(&unique("member"), PASSWORD).await;
    let store = scratch(&unique("history"));
    let member = Member::login(&synapse.url, &member_user, PASSWORD, &store.join("member")).await;
    let room = member.create_room(false, &[&bot_user]).await;
    let before = member.say(&room, "I want to kill myself").await;
    let running = Running::start(settings(synapse, &bot_user, &store.join("bot")));
    assert!(member.wait_for_membership(&room, &bot_user, WAIT).await);
    let after = member.say(&room, "is ketamine legal?").await;
    member.reply_to(&after, WAIT).await;
    expect_silence(&member, &before).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_that_raises_the_crisis_level_is_answered_once() {
    let synapse = shared_synapse();
    let scene = scene(synapse, false).await;
    let original = scene.member.say(&scene.room, "rough day").await;
    expect_silence(&scene.member, &original).await;
    let edit = |text: &str| {
        let metadata = ReplacementMetadata::new(original.clone(), None);
        RoomMessageEventContent::text_plain(text).make_replacement(metadata)
    };
    scene.member.send(&scene.room, edit("rough day. I want to kill myself")).await;
    let reply = scene.member.reply_to(&original, WAIT).await;
    assert!(reply.body().contains("988"), "answered as a reply to the original message");
    scene.member.send(&scene.room, edit("I'm going to kill myself tonight")).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(scene.member.replies_to(&original).len(), 1, "one crisis reply per message");
    scene.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_process_with_the_same_store_refuses_to_start() {
    let synapse = shared_synapse();
    let bot_user = synapse.register(&unique("bot"), PASSWORD).await;
    let store = scratch(&unique("twice"));
    let running = Running::start(settings(synapse, &bot_user, &store));
    wait_for_sign_in(&store).await;
    let output = matrix_bot(synapse, &bot_user, PASSWORD, &store).output();
    let output = tokio::time::timeout(WAIT, output).await.expect("exits by itself").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("another ketamine-info-bot is running"), "{stderr}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_is_private_and_its_crypto_store_encrypted() {
    use std::os::unix::fs::PermissionsExt;
    let synapse = shared_synapse();
    let bot_user = synapse.register(&unique("bot"), PASSWORD).await;
    let store = scratch(&unique("private")).join("store");
    let running = Running::start(settings(synapse, &bot_user, &store));
    let session = wait_for_sign_in(&store).await;
    running.stop().await;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store), 0o700);
    assert_eq!(mode(&session), 0o600);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&session).unwrap()).unwrap();
    let passphrase = saved["store_passphrase"].as_str().expect("a generated passphrase");
    assert_eq!(passphrase.len(), 64);

    // The crypto store opens only with its passphrase.
    let output = matrix_bot(synapse, &bot_user, PASSWORD, &store).env("MATRIX_STORE_PASSPHRASE", "wrong").output();
    let output = tokio::time::timeout(WAIT, output).await.expect("exits by itself").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a wrong passphrase cannot open the store: {stderr}");
    assert!(!stderr.contains(passphrase) && !stderr.contains("wrong\""), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_errors_that_cannot_heal_end_the_process() {
    let synapse = shared_synapse();
    let bot_user = synapse.register(&unique("bot"), PASSWORD).await;
    let store = scratch(&unique("revoked"));
    let running = Running::start(settings(synapse, &bot_user, &store));
    let session = wait_for_sign_in(&store).await;
    running.stop().await;
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&session).unwrap()).unwrap();
    let devices_before = devices(synapse, &store).await.len();

    // A session file deleted while its store remains: signing in again would make a device the keys do not fit.
    let kept = std::fs::read(&session).unwrap();
    std::fs::remove_file(&session).unwrap();
    let output = matrix_bot(synapse, &bot_user, PASSWORD, &store).output();
    let output = tokio::time::timeout(WAIT, output).await.expect("exits by itself").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("session.json"), "{stderr}");
    std::fs::write(&session, kept).unwrap();
    assert_eq!(devices(synapse, &store).await.len(), devices_before, "no new device");

    // A revoked token: a clear error and an exit, no retry loop.
    let logout = reqwest::Client::new()
        .post(format!("{}/_matrix/client/v3/logout", synapse.url))
        .bearer_auth(saved["access_token"].as_str().unwrap())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success());
    let output = matrix_bot(synapse, &bot_user, PASSWORD, &store).output();
    let output = tokio::time::timeout(WAIT, output).await.expect("exits by itself, no retry loop").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("refused the bot's credentials"), "{stderr}");
    assert!(!stderr.contains(saved["access_token"].as_str().unwrap()), "the token is never printed");

    // A deactivated account: signing in with the password on a fresh store ends the same way.
    synapse.deactivate(&bot_user).await;
    let output = matrix_bot(synapse, &bot_user, PASSWORD, &scratch(&unique("deactivated"))).output();
    let output = tokio::time::timeout(WAIT, output).await.expect("exits by itself, no retry loop").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("refused the bot's credentials"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_room_delays_nobody_else_and_crisis_replies_go_first() {
    let synapse = shared_synapse();
    let scene = scene(synapse, false).await;
    let other = scene.member.create_room(false, &[&scene.bot_user]).await;
    assert!(scene.member.wait_for_membership(&other, &scene.bot_user, WAIT).await);
    // The bot may send one message a second, after a burst of one: a dozen commands keep this room's queue busy
    // for twelve seconds.
    synapse.limit_messages(&scene.bot_user, 1, 1).await;
    let bot = bot();
    let mut asked = Vec::new();
    for topic in bot.catalog().topics.iter().take(12) {
        asked.push(scene.member.say(&scene.room, &format!("!{}", topic.command)).await);
    }
    let crisis = scene.member.say(&scene.room, "I want to kill myself").await;
    let sent_elsewhere = std::time::Instant::now();
    let elsewhere = scene.member.say(&other, "my friend wants to kill herself").await;
    let elsewhere_reply = scene.member.reply_to(&elsewhere, Duration::from_secs(90)).await;
    let waited = elsewhere_reply.at - sent_elsewhere;
    assert!(waited < Duration::from_secs(6), "the other room waited {waited:?} for this room's queue");
    let crisis_reply = scene.member.reply_to(&crisis, Duration::from_secs(90)).await;
    let last_command = scene.member.reply_to(asked.last().unwrap(), Duration::from_secs(90)).await;
    assert!(crisis_reply.at < last_command.at, "the crisis reply overtook the queued commands");
    // A command reply is retried once at most, so one that loses the race for the send budget twice is given
    // up (and logged); none is sent twice.
    let answers: Vec<usize> = asked.iter().map(|event| scene.member.replies_to(event).len()).collect();
    assert!(answers.iter().all(|&count| count <= 1), "{answers:?}");
    assert!(answers.iter().sum::<usize>() >= asked.len() - 2, "{answers:?}");
    scene.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_have_a_per_member_cooldown_and_spam_delays_no_crisis_reply() {
    let synapse = shared_synapse();
    let scene = scene(synapse, false).await;
    let other = scene.member.create_room(false, &[&scene.bot_user]).await;
    assert!(scene.member.wait_for_membership(&other, &scene.bot_user, WAIT).await);
    assert!(ask(&scene, "!ketamine-risks").await.body().contains("Potential Risks:"));
    let mut spam = Vec::new();
    for _ in 0..3 {
        spam.push(scene.member.say(&scene.room, "!ketamine-risks").await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let sent = std::time::Instant::now();
    let crisis = scene.member.say(&other, "I want to kill myself").await;
    let reply = scene.member.reply_to(&crisis, WAIT).await;
    assert!(reply.at - sent < Duration::from_secs(1), "the crisis reply took {:?}", reply.at - sent);
    for event in &spam {
        expect_silence(&scene.member, event).await;
    }
    scene.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn undecryptable_messages_are_counted_without_content() {
    let synapse = shared_synapse();
    let BinaryScene { child, member, room, .. } = binary_scene(synapse, "utd", &[]).await;
    let garbled = json!({
        "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg",
        "sender_key": "tfl0RFfPGWYR2lUPp7Gp5Y6f4Pn6JCZgmJfszyRKzBc", "session_id": "nosuchsession", "device_id": "NOPE"
    });
    room.send_raw("m.room.encrypted", garbled).await.expect("sent");
    let question = member.say(&room, "is ketamine legal?").await;
    member.reply_to(&question, WAIT).await;
    let (status, stderr) = terminate(child, WAIT).await;
    assert!(status.success());
    assert!(stderr.contains("could not decrypt a message") && stderr.contains("count=1"), "{stderr}");
    assert!(stderr.contains(room.room_id().as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_allowed_inviters_are_followed() {
    let synapse = shared_synapse();
    let bot_user = synapse.register(&unique("bot"), PASSWORD).await;
    let friend_user = synapse.register(&unique("friend"), PASSWORD).await;
    let stranger_user = synapse.register(&unique("stranger"), PASSWORD).await;
    let store = scratch(&unique("allowlist"));
    let mut bot_settings = settings(synapse, &bot_user, &store.join("bot"));
    bot_settings.allowed_inviters = vec![friend_user.replace("friend", "fri*")];
    let running = Running::start(bot_settings);

    let stranger = Member::login(&synapse.url, &stranger_user, PASSWORD, &store.join("stranger")).await;
    let refused = stranger.create_room(false, &[&bot_user]).await;
    assert!(!stranger.wait_for_membership(&refused, &bot_user, WAIT).await, "the bot declines a stranger");

    let friend = Member::login(&synapse.url, &friend_user, PASSWORD, &store.join("friend")).await;
    let accepted = friend.create_room(false, &[&bot_user]).await;
    assert!(friend.wait_for_membership(&accepted, &bot_user, WAIT).await, "the bot joins a friend");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn survives_a_homeserver_restart_without_duplicate_replies() {
    let synapse = tokio::task::block_in_place(|| Synapse::start("restarting"));
    let scene = scene(&synapse, false).await;
    let first = scene.member.say(&scene.room, "is ketamine legal?").await;
    scene.member.reply_to(&first, WAIT).await;

    tokio::task::block_in_place(|| synapse.restart());
    let second = scene.member.say(&scene.room, "does ketamine cause bladder problems?").await;
    let reply = scene.member.reply_to(&second, Duration::from_secs(90)).await;
    assert!(reply.body().contains("bladder"));
    tokio::time::sleep(QUIET).await;
    assert_eq!(scene.member.replies_to(&first).len(), 1, "no duplicate reply");
    assert_eq!(scene.member.replies_to(&second).len(), 1, "no duplicate reply");
    scene.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn signs_in_with_an_access_token_and_keeps_its_device() {
    let synapse = shared_synapse();
    let (bot_user, token) = synapse.register_with_token(&unique("bot"), PASSWORD).await;
    let member_user = synapse.register(&unique("member"), PASSWORD).await;
    let store = scratch(&unique("token"));
    let bot_settings = MatrixSettings {
        auth: MatrixAuth::AccessToken(Secret::new(&token)),
        ..settings(synapse, &bot_user, &store.join("bot"))
    };
    let running = Running::start(bot_settings);
    let member = Member::login(&synapse.url, &member_user, PASSWORD, &store.join("member")).await;
    let room = member.create_room(true, &[&bot_user]).await;
    assert!(member.wait_for_membership(&room, &bot_user, WAIT).await);
    let question = member.say(&room, "is ketamine legal?").await;
    assert!(member.reply_to(&question, WAIT).await.body().contains("Schedule III"));
    let devices = devices(synapse, &store.join("bot")).await;
    assert_eq!(devices.len(), 1, "the token's own device, no new one: {devices:?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn waits_for_a_homeserver_that_is_down_at_start() {
    let synapse = tokio::task::block_in_place(|| Synapse::start("late"));
    let bot_user = synapse.register(&unique("bot"), PASSWORD).await;
    let member_user = synapse.register(&unique("member"), PASSWORD).await;
    let store = scratch(&unique("late"));
    tokio::task::block_in_place(|| synapse.stop());
    let running = Running::start(settings(&synapse, &bot_user, &store.join("bot")));
    tokio::time::sleep(Duration::from_secs(3)).await; // the bot keeps trying to sign in
    assert!(!running.task.is_finished(), "an unreachable homeserver is retried, not fatal");
    running.stop().await; // a stop request ends the retries cleanly, even before the bot has signed in

    let running = Running::start(settings(&synapse, &bot_user, &store.join("bot")));
    tokio::task::block_in_place(|| synapse.restart());
    let member = Member::login(&synapse.url, &member_user, PASSWORD, &store.join("member")).await;
    let room = member.create_room(false, &[&bot_user]).await;
    assert!(member.wait_for_membership(&room, &bot_user, WAIT).await);
    let question = member.say(&room, "is ketamine legal?").await;
    assert!(member.reply_to(&question, WAIT).await.body().contains("Schedule III"));
    running.stop().await;
}

/// The real binary on Matrix as a new bot account, a member and a room of the member's that the bot joined.
struct BinaryScene {
    child: tokio::process::Child,
    bot_user: String,
    member: Member,
    room: Room,
    /// The bot's store is `bot` in it.
    store: PathBuf,
}

/// The real binary (with `args` after `matrix`) in a room of a member's.
async fn binary_scene(synapse: &Synapse, name: &str, args: &[&str]) -> BinaryScene {
    let bot_user = synapse.register(&unique("bot"), PASSWORD).await;
    let member_user = synapse.register(&unique("member"), PASSWORD).await;
    let store = scratch(&unique(name));
    let child = matrix_bot(synapse, &bot_user, PASSWORD, &store.join("bot")).args(args).spawn().unwrap();
    let member = Member::login(&synapse.url, &member_user, PASSWORD, &store.join("member")).await;
    let room = member.create_room(false, &[&bot_user]).await;
    assert!(member.wait_for_membership(&room, &bot_user, WAIT).await);
    BinaryScene { child, bot_user, member, room, store }
}

/// The real binary on Matrix, configured through the environment as an operator would.
fn matrix_bot(synapse: &Synapse, user: &str, password: &str, store: &Path) -> tokio::process::Command {
    let mut command = bot_command(&["matrix"]);
    command
        .env("MATRIX_HOMESERVER", &synapse.url)
        .env("MATRIX_USER", user)
        .env("MATRIX_PASSWORD", password)
        .env("MATRIX_STORE", store)
        .env("STATE_PATH", store.with_extension("state.db"))
        .env_remove("MATRIX_ACCESS_TOKEN");
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_a_clear_error_without_retries() {
    let synapse = shared_synapse();
    let bot_user = synapse.register(&unique("bot"), PASSWORD).await;
    let store = scratch(&unique("wrong"));
    let output = matrix_bot(synapse, &bot_user, "not-the-password", &store).output();
    let output = tokio::time::timeout(WAIT, output).await.expect("exits by itself, no retry loop").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("refused the bot's credentials"), "{stderr}");
    assert!(!stderr.contains("not-the-password"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_binary_cleanly() {
    let synapse = shared_synapse();
    let BinaryScene { child, member, room, .. } = binary_scene(synapse, "sigterm", &[]).await;
    let question = member.say(&room, "is ketamine legal?").await;
    member.reply_to(&question, WAIT).await;

    let (status, stderr) = terminate(child, WAIT).await;
    assert!(status.success(), "{status:?}");
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(!stderr.contains("is ketamine legal") && !stderr.contains(PASSWORD), "no content or secrets in logs");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_arriving_as_the_bot_stops_is_answered_once_before_or_after_the_restart() {
    let synapse = shared_synapse();
    let BinaryScene { child, bot_user, member, room, store } = binary_scene(synapse, "stopping", &[]).await;
    let question = member.say(&room, "is ketamine legal?").await;
    member.reply_to(&question, WAIT).await;

    let crisis = member.say(&room, "I want to kill myself").await;
    let (status, _) = terminate(child, WAIT).await;
    assert!(status.success());
    let restarted = matrix_bot(synapse, &bot_user, PASSWORD, &store.join("bot")).spawn().unwrap();
    let reply = member.reply_to(&crisis, WAIT).await;
    assert!(reply.body().contains("988"));
    let after = member.say(&room, "does ketamine cause bladder problems?").await;
    member.reply_to(&after, WAIT).await;
    assert_eq!(member.replies_to(&crisis).len(), 1, "answered once");
    assert_eq!(member.replies_to(&question).len(), 1, "what was answered before the stop is not answered again");
    terminate(restarted, WAIT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn moderators_set_up_a_staff_room_acknowledge_alerts_and_members_opt_out() {
    let synapse = shared_synapse();
    let (bot_user, moderator_user, member_user) = (
        synapse.register(&unique("bot"), PASSWORD).await,
        synapse.register(&unique("mod"), PASSWORD).await,
        synapse.register(&unique("member"), PASSWORD).await,
    );
    let store = scratch(&unique("toolkit"));
    let clock = Clock::default();
    let bot_settings = MatrixSettings { clock: clock.clone(), ..settings(synapse, &bot_user, &store.join("bot")) };
    let running = Running::start(bot_settings);
    let moderator = Member::login(&synapse.url, &moderator_user, PASSWORD, &store.join("mod")).await;
    let member = Member::login(&synapse.url, &member_user, PASSWORD, &store.join("member")).await;
    let room = moderator.create_room(false, &[&bot_user, &member_user]).await;
    let staff = moderator.create_room(false, &[&bot_user]).await;
    assert!(moderator.wait_for_membership(&room, &bot_user, WAIT).await);
    assert!(moderator.wait_for_membership(&staff, &bot_user, WAIT).await);
    let member_room = member.join(room.room_id()).await;
    assert!(moderator.wait_for_membership(&room, &member_user, WAIT).await);

    let command =
        moderator.say(&room, &format!("!ketamine-settings alerts {} {moderator_user}", staff.room_id())).await;
    let saved = moderator.reply_to(&command, WAIT).await;
    assert!(saved.body().contains("Saved") && saved.body().ends_with(&disclaimer()), "{}", saved.body());
    let line = moderator.say(&room, "!ketamine-settings add-line Our peer line: https://peer.example.org").await;
    assert!(moderator.reply_to(&line, WAIT).await.body().contains("Local line 1"));
    let refused = member.say(&member_room, "!ketamine-settings faq-replies off").await;
    assert!(member.reply_to(&refused, WAIT).await.body().contains("power level 50"));

    // A crisis: the public reply with the room's local line, and an alert in the staff room without the text.
    let crisis = member.say(&member_room, "I want to kill myself tonight").await;
    let reply = member.reply_to(&crisis, WAIT).await;
    assert!(reply.body().contains("988") && reply.body().contains("https://peer.example.org"));
    let link = format!("https://matrix.to/#/{}/{crisis}", room.room_id());
    let alert = moderator.wait_for(WAIT, |r| r.body().contains(&link)).await;
    assert!(
        alert.body().contains("Possible crisis: self") && !alert.body().contains("kill myself"),
        "{}",
        alert.body()
    );
    assert_eq!(alert.event["content"]["m.mentions"], json!({}), "the alert pings nobody");
    let alert_id: OwnedEventId = alert.event["event_id"].as_str().unwrap().try_into().unwrap();
    moderator.react(&staff, &alert_id, "✅").await;
    let acknowledged = moderator.reply_to(&alert_id, WAIT).await;
    assert!(acknowledged.body().contains(&format!("Acknowledged by {moderator_user}")));

    // An alert nobody acknowledges gets one reminder after realert-minutes, mentioning the named moderator.
    let second = member.say(&member_room, "my friend said she wants to kill herself").await;
    let second_link = format!("https://matrix.to/#/{}/{second}", room.room_id());
    moderator
        .wait_for(WAIT, |r| r.body().contains(&second_link) && r.body().contains("Possible crisis: third_party"))
        .await;
    clock.advance(11 * 60);
    let reminder = moderator
        .wait_for(WAIT, |r| r.body().contains("not acknowledged yet") && r.body().contains(&second_link))
        .await;
    assert_eq!(reminder.event["content"]["m.mentions"]["user_ids"], json!([moderator_user]));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(moderator.received(|r| r.body().contains("not acknowledged yet")).len(), 1, "one reminder");
    // `!ack` in reply to the alert acknowledges it too.
    let second_alert = moderator.received(|r| r.body().contains(&second_link) && r.body().contains("Possible crisis"));
    let second_alert: OwnedEventId = second_alert[0].event["event_id"].as_str().unwrap().try_into().unwrap();
    let mut ack = RoomMessageEventContent::text_plain("!ack");
    ack.relates_to =
        Some(matrix_sdk::ruma::events::room::message::Relation::Reply(matrix_sdk::ruma::events::relation::Reply::new(
            matrix_sdk::ruma::events::relation::InReplyTo::new(second_alert),
        )));
    let ack = moderator.send(&staff, ack).await;
    assert!(moderator.reply_to(&ack, WAIT).await.body().contains(&format!("Acknowledged by {moderator_user}")));

    // A member opts out: no automatic replies; commands still answer.
    let optout = member.say(&member_room, "!ketamine-optout").await;
    assert!(member.reply_to(&optout, WAIT).await.body().starts_with("Done"));
    let question = member.say(&member_room, "is ketamine legal?").await;
    expect_silence(&member, &question).await;
    running.stop().await;

    // Settings and opt-outs survive a restart.
    let running = Running::start(MatrixSettings { clock, ..settings(synapse, &bot_user, &store.join("bot")) });
    let show = moderator.say(&room, "!ketamine-settings").await;
    let shown = moderator.reply_to(&show, WAIT).await;
    assert!(shown.body().contains(&format!("Staff alerts: to {}", staff.room_id())), "{}", shown.body());
    let again = member.say(&member_room, "is ketamine legal?").await;
    expect_silence(&member, &again).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn moderators_send_resources_and_members_read_privacy_stats_and_are_forgotten() {
    use matrix_sdk::ruma::events::relation::{InReplyTo, Reply};
    use matrix_sdk::ruma::events::room::message::Relation;
    let synapse = shared_synapse();
    let scene = scene(synapse, false).await;
    let privacy = ask(&scene, "!ketamine-privacy").await;
    assert!(privacy.body().starts_with("What this bot reads") && privacy.body().ends_with(&disclaimer()));

    // The room's creator moderates it: resources in reply to a message, once an hour per member.
    let quiet = scene.member.say(&scene.room, "everything is grey and I can't see a way out").await;
    let send = |to: &OwnedEventId| {
        let mut content = RoomMessageEventContent::text_plain("!ketamine-send-resources");
        content.relates_to = Some(Relation::Reply(Reply::new(InReplyTo::new(to.clone()))));
        content
    };
    let first = scene.member.send(&scene.room, send(&quiet)).await;
    assert!(scene.member.reply_to(&first, WAIT).await.body().starts_with("Sent."));
    let resources =
        scene.member.wait_for(WAIT, |r| r.sender == scene.bot_user && r.in_reply_to() == Some(quiet.as_str())).await;
    assert!(resources.body().contains("988") && resources.body().ends_with(&disclaimer()));
    let second = scene.member.send(&scene.room, send(&quiet)).await;
    assert!(scene.member.reply_to(&second, WAIT).await.body().contains("less than an hour ago"));

    ask(&scene, "is ketamine legal?").await;
    tokio::time::sleep(QUIET).await; // counted once the homeserver has taken the reply
    let stats = ask(&scene, "!ketamine-stats").await;
    assert!(stats.body().starts_with("Last 7 days: FAQ replies: legal-status 1."), "{}", stats.body());
    let forget = ask(&scene, "!ketamine-forget-me").await;
    assert!(forget.body().starts_with("Done"));
    let third = scene.member.send(&scene.room, send(&quiet)).await;
    assert!(scene.member.reply_to(&third, WAIT).await.body().starts_with("Sent."), "the record went with the member");
    scene.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invite_the_bot_could_not_join_is_tried_again_at_the_next_start() {
    let synapse = shared_synapse();
    let Scene { bot_user, store, member, room: first_room, running } = scene(synapse, false).await;
    let bot_store = store.join("bot");
    running.stop().await;
    // Invited while it is down, into a room the homeserver then blocks: the join is refused.
    let room = member.create_room(false, &[&bot_user]).await;
    synapse.block_room(room.room_id().as_str(), true).await;
    let running = Running::start(settings(synapse, &bot_user, &bot_store));
    let question = member.say(&first_room, "is ketamine legal?").await;
    member.reply_to(&question, WAIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!member.has_joined(&room, &bot_user).await, "a blocked room is not joined");
    running.stop().await;

    synapse.block_room(room.room_id().as_str(), false).await;
    let running = Running::start(settings(synapse, &bot_user, &bot_store));
    assert!(member.wait_for_membership(&room, &bot_user, WAIT).await, "the open invite is joined at the next start");
    let question = member.say(&room, "is ketamine legal?").await;
    assert!(member.reply_to(&question, WAIT).await.body().contains("Schedule III"));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_matrix_replies_and_health_reports_the_sync() {
    let address = free_address();
    let BinaryScene { child, member, room, .. } =
        binary_scene(shared_synapse(), "metrics", &["--metrics", &address]).await;
    let question = member.say(&room, "is ketamine legal?").await;
    member.reply_to(&question, WAIT).await;
    let crisis = member.say(&room, "I want to kill myself").await;
    member.reply_to(&crisis, WAIT).await;
    let repeated = member.say(&room, "I want to kill myself").await;
    expect_silence(&member, &repeated).await;

    let (status, metrics) = scrape(&address, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        r#"ketamine_replies_total{platform="matrix",kind="faq",level="none"} 1"#,
        r#"ketamine_replies_total{platform="matrix",kind="crisis",level="self"} 1"#,
        r#"ketamine_cooldown_suppressed_total{platform="matrix"} 1"#,
        r#"ketamine_reply_latency_seconds_count{platform="matrix"} 2"#,
        r#"ketamine_platform_connected{platform="matrix"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    assert!(!metrics.contains("kill") && !metrics.contains(room.room_id().as_str()), "no text, no ids");
    assert_eq!(scrape(&address, "/healthz").await, (200, r#"{"matrix": true}"#.to_owned()));
    let (status, _) = terminate(child, WAIT).await;
    assert!(status.success());
}
