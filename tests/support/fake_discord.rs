//! A fake Discord on loopback: the REST API the bot calls and a gateway that speaks the real protocol
//! (HELLO, IDENTIFY, READY, heartbeats, RESUME, dispatches, close codes). Tests script it and read back every
//! request the bot sent.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as Frame;

pub const APPLICATION_ID: &str = "1000";
pub const BOT_USER_ID: &str = "1000";

/// What the gateway does when the bot identifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnIdentify {
    Ready,
    /// Close the connection with this code (4004 bad token, 4014 disallowed intents).
    Close(u16),
}

/// One HTTP request the bot made.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub at: Instant,
}

enum Command {
    Send(Value),
    Drop,
}

struct Shared {
    token: String,
    gateway_url: Mutex<String>,
    on_identify: Mutex<OnIdentify>,
    requests: Mutex<Vec<Request>>,
    request_seen: Notify,
    /// The gateway connection of each shard the bot identified as.
    connections: Mutex<HashMap<u64, mpsc::UnboundedSender<Command>>>,
    /// The `[shard, total]` of every IDENTIFY.
    identified_shards: Mutex<Vec<[u64; 2]>>,
    connected: Notify,
    sequence: AtomicU64,
    ids: AtomicU64,
    identifies: AtomicUsize,
    resumes: AtomicUsize,
    identify_intents: Mutex<Option<u64>>,
    /// How long creating a message takes, to catch replies in flight.
    message_delay: Mutex<Duration>,
    /// Answers for the next message creations, in order, instead of creating them.
    message_failures: Mutex<VecDeque<Failure>>,
    /// Messages that are gone: a reply referencing one is refused unless `fail_if_not_exists` is false.
    deleted: Mutex<HashSet<String>>,
    /// Refuse every reply that references a message (no Read Message History permission).
    refuse_references: AtomicBool,
}

/// An error answer to a message creation.
#[derive(Clone, Copy, Debug)]
pub struct Failure {
    pub status: u16,
    /// Discord's JSON error code.
    pub code: u32,
    /// For a 429: seconds to wait, in the body and the `Retry-After` header.
    pub retry_after: Option<f64>,
}

pub struct FakeDiscord {
    pub rest_url: String,
    shared: Arc<Shared>,
}

impl FakeDiscord {
    /// Starts REST and gateway servers on 127.0.0.1 with free ports. `token` is the only one accepted.
    pub async fn start(token: &str, on_identify: OnIdentify) -> FakeDiscord {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            gateway_url: Mutex::new(String::new()),
            on_identify: Mutex::new(on_identify),
            requests: Mutex::new(Vec::new()),
            request_seen: Notify::new(),
            connections: Mutex::new(HashMap::new()),
            identified_shards: Mutex::new(Vec::new()),
            connected: Notify::new(),
            sequence: AtomicU64::new(0),
            ids: AtomicU64::new(900_000),
            identifies: AtomicUsize::new(0),
            resumes: AtomicUsize::new(0),
            identify_intents: Mutex::new(None),
            message_delay: Mutex::new(Duration::ZERO),
            message_failures: Mutex::new(VecDeque::new()),
            deleted: Mutex::new(HashSet::new()),
            refuse_references: AtomicBool::new(false),
        });

        let gateway = TcpListener::bind("127.0.0.1:0").await.unwrap();
        *shared.gateway_url.lock().unwrap() = format!("ws://{}", gateway.local_addr().unwrap());
        let for_gateway = Arc::clone(&shared);
        tokio::spawn(async move {
            while let Ok((stream, _)) = gateway.accept().await {
                tokio::spawn(serve_gateway(stream, Arc::clone(&for_gateway)));
            }
        });

        let rest = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address: SocketAddr = rest.local_addr().unwrap();
        let app = Router::new().fallback(serve_rest).with_state(Arc::clone(&shared));
        let server = axum::Server::from_tcp(rest).unwrap().serve(app.into_make_service());
        tokio::spawn(server);
        FakeDiscord { rest_url: format!("http://{address}"), shared }
    }

    pub fn set_on_identify(&self, on_identify: OnIdentify) {
        *self.shared.on_identify.lock().unwrap() = on_identify;
    }

    /// Makes every message creation take this long before it is answered.
    pub fn set_message_delay(&self, delay: Duration) {
        *self.shared.message_delay.lock().unwrap() = delay;
    }

    /// Answers the next message creations with these failures, one each, in order.
    pub fn fail_next_messages(&self, failures: &[Failure]) {
        self.shared.message_failures.lock().unwrap().extend(failures.iter().copied());
    }

    /// Marks a message as deleted, as a member (or PluralKit) deleting it would.
    pub fn delete_message(&self, id: &str) {
        self.shared.deleted.lock().unwrap().insert(id.to_owned());
    }

    /// Refuses (400, code 160002) every message that references another, as Discord does when the bot may not
    /// read the channel's history.
    pub fn refuse_references(&self, refuse: bool) {
        self.shared.refuse_references.store(refuse, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn identifies(&self) -> usize {
        self.shared.identifies.load(Ordering::SeqCst)
    }

    pub fn resumes(&self) -> usize {
        self.shared.resumes.load(Ordering::SeqCst)
    }

    /// The intents of the last IDENTIFY.
    pub fn identify_intents(&self) -> Option<u64> {
        *self.shared.identify_intents.lock().unwrap()
    }

    /// Waits for a request that satisfies `matches`, seen before or arriving within `timeout`.
    pub async fn wait_for(&self, timeout: Duration, matches: impl Fn(&Request) -> bool) -> Request {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let seen = self.shared.request_seen.notified();
            if let Some(found) = self.requests().into_iter().find(|r| matches(r)) {
                return found;
            }
            if tokio::time::timeout_at(deadline, seen).await.is_err() {
                panic!("no matching request within {timeout:?}; requests: {:#?}", self.requests());
            }
        }
    }

    /// Waits until the bot has identified and registered its commands.
    pub async fn wait_until_ready(&self) -> Request {
        self.wait_for(Duration::from_secs(20), |r| r.method == "PUT" && r.path.ends_with("/commands")).await
    }

    /// The `[shard, total]` of every IDENTIFY so far.
    pub fn identified_shards(&self) -> Vec<[u64; 2]> {
        self.shared.identified_shards.lock().unwrap().clone()
    }

    /// Sends a dispatch event on the connection of the shard Discord would use: `(guild_id >> 22) % total`, and
    /// shard 0 for events outside a server.
    pub fn dispatch(&self, event: &str, data: Value) {
        let guild = data["guild_id"].as_str().and_then(|id| id.parse::<u64>().ok());
        let total = self.identified_shards().last().map_or(1, |[_, total]| *total).max(1);
        let shard = guild.map_or(0, |guild| (guild >> 22) % total);
        let sequence = self.shared.sequence.fetch_add(1, Ordering::SeqCst) + 1;
        let frame = json!({"op": 0, "t": event, "s": sequence, "d": data});
        let connections = self.shared.connections.lock().unwrap();
        let connection = connections.get(&shard).unwrap_or_else(|| panic!("no connection for shard {shard}"));
        connection.send(Command::Send(frame)).expect("connection open");
    }

    /// Drops the gateway connections without a close frame, as a network failure would.
    pub async fn drop_connection(&self) {
        let reconnected = self.shared.connected.notified();
        for (_, connection) in self.shared.connections.lock().unwrap().drain() {
            let _ = connection.send(Command::Drop);
        }
        tokio::time::timeout(Duration::from_secs(20), reconnected).await.expect("the bot reconnects");
    }

    /// A fresh snowflake for test events.
    pub fn next_id(&self) -> String {
        self.shared.ids.fetch_add(1, Ordering::SeqCst).to_string()
    }
}

async fn serve_gateway(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else { return };
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 41250}});
    if socket.send(Frame::text(hello.to_string())).await.is_err() {
        return;
    }
    let (commands, mut inbox) = mpsc::unbounded_channel();
    loop {
        tokio::select! {
            frame = socket.next() => {
                let Some(Ok(frame)) = frame else { return };
                let Ok(text) = frame.to_text() else { continue };
                let Ok(payload) = serde_json::from_str::<Value>(text) else { continue };
                match payload["op"].as_u64() {
                    Some(1) => {
                        let _ = socket.send(Frame::text(json!({"op": 11}).to_string())).await;
                    }
                    Some(2) => {
                        shared.identifies.fetch_add(1, Ordering::SeqCst);
                        let shard = payload["d"]["shard"].as_array().map_or([0, 1], |pair| {
                            [pair[0].as_u64().unwrap_or(0), pair[1].as_u64().unwrap_or(1)]
                        });
                        shared.identified_shards.lock().unwrap().push(shard);
                        *shared.identify_intents.lock().unwrap() = payload["d"]["intents"].as_u64();
                        let token_ok = payload["d"]["token"].as_str().map(|t| t.trim_start_matches("Bot ")) == Some(&shared.token);
                        let on_identify = *shared.on_identify.lock().unwrap();
                        let close = if !token_ok { Some(4004) } else if let OnIdentify::Close(code) = on_identify { Some(code) } else { None };
                        if let Some(code) = close {
                            let frame = CloseFrame { code: CloseCode::from(code), reason: "fake discord".into() };
                            let _ = socket.send(Frame::Close(Some(frame))).await;
                            return;
                        }
                        let sequence = shared.sequence.fetch_add(1, Ordering::SeqCst) + 1;
                        let ready = json!({"op": 0, "t": "READY", "s": sequence, "d": {
                            "v": 10, "user": {"id": BOT_USER_ID, "username": "testbot", "bot": true}, "guilds": [],
                            "session_id": format!("s{}", shard[0]), "resume_gateway_url": *shared.gateway_url.lock().unwrap(),
                            "application": {"id": APPLICATION_ID, "flags": 0}}});
                        // The connection is known before READY leaves, so a test never dispatches into a gap.
                        shared.connections.lock().unwrap().insert(shard[0], commands.clone());
                        let _ = socket.send(Frame::text(ready.to_string())).await;
                        shared.connected.notify_waiters();
                    }
                    Some(6) => {
                        shared.resumes.fetch_add(1, Ordering::SeqCst);
                        let sequence = shared.sequence.load(Ordering::SeqCst);
                        let resumed = json!({"op": 0, "t": "RESUMED", "s": sequence, "d": {}});
                        let session = payload["d"]["session_id"].as_str().unwrap_or_default();
                        let shard = session.trim_start_matches('s').parse().unwrap_or(0);
                        shared.connections.lock().unwrap().insert(shard, commands.clone());
                        let _ = socket.send(Frame::text(resumed.to_string())).await;
                        shared.connected.notify_waiters();
                    }
                    _ => {}
                }
            }
            command = inbox.recv() => match command {
                Some(Command::Send(frame)) => {
                    if socket.send(Frame::text(frame.to_string())).await.is_err() {
                        return;
                    }
                }
                Some(Command::Drop) | None => return,
            },
        }
    }
}

async fn serve_rest(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_start_matches("/api/v10").to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start_matches("Bot ") == shared.token);
    // Interaction callbacks and webhooks are authorised by their token in the path, not the bot token.
    let token_in_path = path.starts_with("/interactions/") || path.starts_with("/webhooks/");
    shared.requests.lock().unwrap().push(Request {
        method: method.to_string(),
        path: path.clone(),
        body: body.clone(),
        at: Instant::now(),
    });
    shared.request_seen.notify_waiters();
    if !authorized && !token_in_path {
        let error = json!({"message": "401: Unauthorized", "code": 0});
        return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let next_id = || shared.ids.fetch_add(1, Ordering::SeqCst).to_string();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["gateway"]) => Json(json!({"url": *shared.gateway_url.lock().unwrap()})).into_response(),
        ("GET", ["gateway", "bot"]) => Json(json!({
            "url": *shared.gateway_url.lock().unwrap(), "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        }))
        .into_response(),
        ("GET", ["oauth2", "applications", "@me"]) => Json(json!({
            "id": APPLICATION_ID, "name": "ketamine-info-bot", "icon": null, "description": "",
            "bot_public": true, "bot_require_code_grant": false, "verify_key": "0", "flags": 0
        }))
        .into_response(),
        ("PUT", ["applications", _, "commands"] | ["applications", _, "guilds", _, "commands"]) => {
            let echoed: Vec<Value> = body
                .as_array()
                .into_iter()
                .flatten()
                .map(|command| {
                    let mut command = command.clone();
                    command["id"] = json!(next_id());
                    command["application_id"] = json!(APPLICATION_ID);
                    command["version"] = json!("1");
                    // As Discord answers: the command's own type (1 when not given), a description even if empty.
                    command["type"] = command.get("type").cloned().unwrap_or(json!(1));
                    if command["description"].is_null() {
                        command["description"] = json!("");
                    }
                    command["default_member_permissions"] = Value::Null;
                    command
                })
                .collect();
            Json(Value::Array(echoed)).into_response()
        }
        ("POST", ["channels", channel, "messages"]) => {
            let delay = *shared.message_delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            if let Some(failure) = shared.message_failures.lock().unwrap().pop_front() {
                return failure_response(failure);
            }
            let reference = &body["message_reference"];
            if reference.is_object() {
                let gone =
                    reference["message_id"].as_str().is_some_and(|id| shared.deleted.lock().unwrap().contains(id));
                let fail_if_gone = reference["fail_if_not_exists"].as_bool().unwrap_or(true);
                if shared.refuse_references.load(Ordering::SeqCst) {
                    return failure_response(Failure { status: 400, code: 160002, retry_after: None });
                }
                if gone && fail_if_gone {
                    return failure_response(Failure { status: 400, code: 50035, retry_after: None });
                }
            }
            Json(message_json(&next_id(), channel, &body)).into_response()
        }
        ("POST", ["interactions", _, _, "callback"]) => StatusCode::NO_CONTENT.into_response(),
        ("POST", ["webhooks", _, _]) => Json(message_json(&next_id(), "0", &body)).into_response(),
        _ => {
            let error = json!({"message": "404: Not Found", "code": 0});
            (StatusCode::NOT_FOUND, Json(error)).into_response()
        }
    }
}

/// Discord's error answer: JSON with `code` and `message`, and for a 429 `retry_after` and its header.
fn failure_response(failure: Failure) -> Response {
    let status = StatusCode::from_u16(failure.status).unwrap();
    let mut body = json!({"message": format!("fake failure {}", failure.status), "code": failure.code});
    let mut response = match failure.retry_after {
        Some(seconds) => {
            body["retry_after"] = json!(seconds);
            body["global"] = json!(false);
            let mut response = (status, Json(body)).into_response();
            response.headers_mut().insert("retry-after", seconds.to_string().parse().unwrap());
            response
        }
        None => (status, Json(body)).into_response(),
    };
    response.headers_mut().insert("content-type", "application/json".parse().unwrap());
    response
}

/// The message Discord would return for a message the bot created.
fn message_json(id: &str, channel: &str, body: &Value) -> Value {
    json!({
        "id": id, "channel_id": channel, "content": body["content"].as_str().unwrap_or(""),
        "author": {"id": BOT_USER_ID, "username": "testbot", "bot": true},
        "timestamp": "2026-11-27T10:00:00.000000+00:00", "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
        "pinned": false, "type": 0
    })
}

/// A MESSAGE_CREATE payload from a person (or, with `bot`, from another bot).
pub fn message_create(id: &str, channel: &str, author: &str, content: &str) -> Value {
    json!({
        "id": id, "channel_id": channel, "guild_id": "500",
        "author": {"id": author, "username": format!("user{author}"), "bot": false},
        "content": content, "timestamp": "2026-11-27T10:00:00.000000+00:00", "edited_timestamp": null,
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
        "embeds": [], "pinned": false, "type": 0
    })
}

/// A MESSAGE_UPDATE payload: the message with new text, as Discord sends after an edit.
pub fn message_update(id: &str, channel: &str, author: &str, content: &str) -> Value {
    let mut message = message_create(id, channel, author, content);
    message["edited_timestamp"] = json!("2026-11-27T10:01:00.000000+00:00");
    message
}

/// A slash-command INTERACTION_CREATE payload. `kind` 2 is a command, 4 autocomplete.
pub fn interaction_create(id: &str, kind: u8, name: &str, options: Value, locale: &str) -> Value {
    json!({
        "id": id, "application_id": APPLICATION_ID, "type": kind, "token": format!("token{id}"), "version": 1,
        "channel_id": "700", "locale": locale, "entitlements": [], "attachment_size_limit": 8388608,
        "data": {"id": "800", "name": name, "type": 1, "options": options},
        "user": {"id": "42", "username": "member"}
    })
}

/// A member of server 500 in an interaction, with resolved permissions and roles.
fn member(user: &str, permissions: u64, roles: &[&str]) -> Value {
    json!({
        "user": {"id": user, "username": format!("user{user}")}, "roles": roles, "joined_at": "2026-01-01T00:00:00.000000+00:00",
        "deaf": false, "mute": false, "flags": 0, "permissions": permissions.to_string()
    })
}

/// A slash command run in server 500 by `user` with these permissions and roles.
pub fn guild_command(id: &str, name: &str, options: Value, user: &str, permissions: u64, roles: &[&str]) -> Value {
    let mut interaction = interaction_create(id, 2, name, options, "en-US");
    let object = interaction.as_object_mut().unwrap();
    object.remove("user");
    object.insert("guild_id".into(), json!("500"));
    object.insert("member".into(), member(user, permissions, roles));
    interaction
}

/// A button press (`custom_id`) on a message of the bot's, in server 500.
pub fn button_press(id: &str, custom_id: &str, user: &str, permissions: u64, roles: &[&str], message: &Value) -> Value {
    json!({
        "id": id, "application_id": APPLICATION_ID, "type": 3, "token": format!("token{id}"), "version": 1,
        "guild_id": "500", "channel_id": message["channel_id"], "locale": "en-US", "entitlements": [],
        "attachment_size_limit": 8388608, "member": member(user, permissions, roles), "message": message,
        "data": {"custom_id": custom_id, "component_type": 2}
    })
}

/// The message the fake created for a request the bot sent (as Discord would return it).
pub fn created_message(request: &Request, id: &str) -> Value {
    let channel = request.path.trim_start_matches("/channels/").trim_end_matches("/messages");
    message_json(id, channel, &request.body)
}

/// A GUILD_CREATE payload for a server with a preferred locale.
pub fn guild_create(id: &str, preferred_locale: &str) -> Value {
    json!({
        "id": id, "name": "test server", "icon": null, "owner_id": "1", "afk_channel_id": null, "afk_timeout": 300,
        "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0, "roles": [],
        "emojis": [], "features": [], "mfa_level": 0, "system_channel_flags": 0, "premium_tier": 0,
        "preferred_locale": preferred_locale, "nsfw_level": 0, "stickers": [], "premium_progress_bar_enabled": false,
        "joined_at": "2026-11-27T10:00:00.000000+00:00", "unavailable": false, "member_count": 2, "voice_states": [],
        "members": [], "channels": [], "threads": [], "presences": [], "stage_instances": [],
        "guild_scheduled_events": [], "large": false
    })
}
