//! The Matrix adapter (matrix-sdk): `!` commands, FAQ auto-replies and crisis replies, in plain and encrypted
//! rooms.
//!
//! It translates room events into [`Incoming`] and renders [`crate::Reply`] as an `m.notice` reply with an HTML
//! body ([`render`]); what to answer is the core's decision. Every message it sends carries an empty
//! `m.mentions`, so nothing pings anyone. History is never answered: messages older than the bot's start are
//! dropped (the server's timestamp against the start), which also covers what a restored store's first sync
//! brings, while messages sent during start-up are still answered; event ids already handled are dropped too.

pub mod render;

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::api::error::ErrorKind;
use matrix_sdk::ruma::events::room::member::{MembershipState, StrippedRoomMemberEvent};
use matrix_sdk::ruma::events::room::message::sanitize::remove_plain_reply_fallback;
use matrix_sdk::ruma::events::room::message::{
    AddMentions, ForwardThread, MessageType, OriginalSyncRoomMessageEvent, RoomMessageEventContent,
};
use matrix_sdk::ruma::events::Mentions;
use matrix_sdk::ruma::{MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedUserId, UserId};
use matrix_sdk::{Client, Room, SessionMeta, SessionTokens};

use super::shared::{chat_reply, InFlight};
use crate::config::{MatrixAuth, MatrixSettings};
use crate::cooldown::Cooldowns;
use crate::{Audience, Bot, Incoming, Reply};

const DEVICE_NAME: &str = "ketamine-info-bot";
const SESSION_FILE: &str = "session.json";
/// Retries with backoff: first delay, longest delay, and how many tries a join gets.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LONGEST_RETRY: Duration = Duration::from_secs(30);
const JOIN_TRIES: u32 = 8;
/// How long one sync waits for news at the homeserver.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Event ids remembered to drop duplicates that a reconnect may deliver again.
const REMEMBERED_EVENTS: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("the homeserver refused the bot's credentials ({0}); check MATRIX_USER and MATRIX_PASSWORD or MATRIX_ACCESS_TOKEN")]
    BadCredentials(String),
    #[error("the session store {path}: {problem}")]
    Store { path: String, problem: String },
    #[error("Matrix: {0}")]
    Other(String),
}

/// Whether an error means the credentials are wrong, which no retry can fix.
fn is_credential_error(error: &matrix_sdk::Error) -> bool {
    is_credential_kind(error.client_api_error_kind())
}

fn is_credential_kind(kind: Option<&ErrorKind>) -> bool {
    matches!(kind, Some(ErrorKind::Forbidden | ErrorKind::UnknownToken { .. } | ErrorKind::UserDeactivated))
}

fn other(error: impl std::fmt::Display) -> MatrixError {
    MatrixError::Other(error.to_string())
}

/// The delay before retry number `attempt` (0-based): doubling from [`FIRST_RETRY`] up to [`LONGEST_RETRY`].
fn backoff(attempt: u32) -> Duration {
    FIRST_RETRY.saturating_mul(1 << attempt.min(16)).min(LONGEST_RETRY)
}

/// Runs the bot on Matrix until `shutdown` completes (at any stage, signing in included), then lets replies in
/// flight finish.
pub async fn run(
    bot: Arc<Bot>,
    settings: MatrixSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MatrixError> {
    let in_flight = InFlight::new();
    let result = tokio::select! {
        result = serve(bot, &settings, in_flight.clone()) => result,
        () = shutdown => {
            tracing::info!("shutting down");
            Ok(())
        }
    };
    in_flight.drain().await;
    result
}

/// Signs in, registers the handlers and syncs until an unrecoverable error.
async fn serve(bot: Arc<Bot>, settings: &MatrixSettings, in_flight: InFlight) -> Result<(), MatrixError> {
    let started = MilliSecondsSinceUnixEpoch::now();
    let store_error = |problem: String| MatrixError::Store { path: settings.store.display().to_string(), problem };
    std::fs::create_dir_all(&settings.store).map_err(|e| store_error(e.to_string()))?;
    let client = Client::builder()
        .homeserver_url(&settings.homeserver)
        .sqlite_store(settings.store.join("sqlite"), None)
        .build()
        .await
        .map_err(other)?;
    sign_in(&client, settings).await?;
    let me = client.user_id().ok_or_else(|| other("signed in without a user id"))?.to_owned();

    let handler = Arc::new(Handler {
        bot,
        me,
        started,
        locale: settings.locale.clone(),
        allowed_inviters: settings.allowed_inviters.clone(),
        cooldowns: Mutex::new(Cooldowns::new(settings.cooldowns.faq, settings.cooldowns.crisis)),
        seen: Mutex::new(SeenEvents::default()),
        in_flight,
    });
    let on_invite = Arc::clone(&handler);
    client.add_event_handler(move |event: StrippedRoomMemberEvent, room: Room| {
        let handler = Arc::clone(&on_invite);
        async move {
            if event.state_key == handler.me && event.content.membership == MembershipState::Invite {
                handler.accept_or_refuse(room, event.sender);
            }
        }
    });
    let on_message = Arc::clone(&handler);
    client.add_event_handler(move |event: OriginalSyncRoomMessageEvent, room: Room| {
        let handler = Arc::clone(&on_message);
        async move { handler.answer(event, room).await }
    });
    tracing::info!(user = %handler.me, "listening");
    sync_forever(&client).await
}

/// Long-polls the homeserver, one sync after another; the event handlers answer what each brings. (matrix-sdk's
/// own sync loop waits a second after a quick sync, which would delay replies in a busy room.) An unreachable
/// or restarting homeserver is retried, ever more slowly, and the stored sync token resumes where it was.
async fn sync_forever(client: &Client) -> Result<(), MatrixError> {
    let settings = SyncSettings::default().timeout(SYNC_TIMEOUT);
    let mut failures = 0;
    loop {
        match client.sync_once(settings.clone()).await {
            Ok(_) if failures > 0 => {
                tracing::info!("the homeserver is answering again");
                failures = 0;
            }
            Ok(_) => {}
            Err(error) if is_credential_error(&error) => return Err(MatrixError::BadCredentials(error.to_string())),
            Err(error) => {
                tracing::warn!(%error, attempt = failures, "sync failed; retrying");
                tokio::time::sleep(backoff(failures)).await;
                failures += 1;
            }
        }
    }
}

/// Restores the saved session, so the bot keeps one device and its keys; otherwise signs in and saves it.
async fn sign_in(client: &Client, settings: &MatrixSettings) -> Result<(), MatrixError> {
    let path = settings.store.join(SESSION_FILE);
    let store_error = |problem: String| MatrixError::Store { path: path.display().to_string(), problem };
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(|e| store_error(e.to_string()))?;
        let session: MatrixSession = serde_json::from_str(&text).map_err(|e| store_error(e.to_string()))?;
        if session.meta.user_id.as_str() != settings.user {
            return Err(store_error(format!("belongs to {}, not {}", session.meta.user_id, settings.user)));
        }
        client.restore_session(session).await.map_err(other)?;
        tracing::info!(device = ?client.device_id(), "restored the saved session");
        return Ok(());
    }
    let session = match &settings.auth {
        MatrixAuth::Password(password) => {
            let mut attempt = 0;
            loop {
                let login = client.matrix_auth().login_username(&settings.user, password.expose());
                match login.initial_device_display_name(DEVICE_NAME).send().await {
                    Ok(_) => break,
                    Err(error) if is_credential_error(&error) => {
                        return Err(MatrixError::BadCredentials(error.to_string()));
                    }
                    Err(error) => {
                        tracing::warn!(%error, attempt, "cannot sign in yet; retrying");
                        tokio::time::sleep(backoff(attempt)).await;
                        attempt += 1;
                    }
                }
            }
            client.matrix_auth().session().ok_or_else(|| other("signed in without a session"))?
        }
        MatrixAuth::AccessToken(token) => session_for_token(&settings.homeserver, token.expose()).await?,
    };
    if client.matrix_auth().session().is_none() {
        client.restore_session(session.clone()).await.map_err(other)?;
    }
    save_session(&path, &session).map_err(|e| store_error(e.to_string()))?;
    tracing::info!(device = %session.meta.device_id, "signed in; session saved");
    Ok(())
}

/// Asks the homeserver which user and device an access token belongs to.
async fn session_for_token(homeserver: &str, token: &str) -> Result<MatrixSession, MatrixError> {
    let probe = Client::builder().homeserver_url(homeserver).build().await.map_err(other)?;
    let placeholder = MatrixSession {
        meta: SessionMeta { user_id: UserId::parse("@probe:localhost").map_err(other)?, device_id: "PROBE".into() },
        tokens: SessionTokens { access_token: token.to_owned(), refresh_token: None },
    };
    probe.restore_session(placeholder).await.map_err(other)?;
    let whoami = probe.whoami().await.map_err(|error| {
        if is_credential_kind(error.client_api_error_kind()) {
            MatrixError::BadCredentials(error.to_string())
        } else {
            other(error)
        }
    })?;
    let device_id = whoami.device_id.ok_or_else(|| other("the access token has no device; log in with a password"))?;
    Ok(MatrixSession {
        meta: SessionMeta { user_id: whoami.user_id, device_id },
        tokens: SessionTokens { access_token: token.to_owned(), refresh_token: None },
    })
}

/// Writes the session (it holds the access token) readable by the bot's user only.
fn save_session(path: &Path, session: &MatrixSession) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(serde_json::to_string(session).map_err(std::io::Error::other)?.as_bytes())
}

/// Matches a user id against an allowlist glob, where `*` is any run of characters and `?` any one.
fn glob_matches(glob: &str, text: &str) -> bool {
    let (glob, text): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    // matched[j]: the glob so far matches the first j characters of the text.
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for &g in &glob {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = match g {
                '*' => matched[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matched[j - 1],
                c => j > 0 && matched[j - 1] && text[j - 1] == c,
            };
        }
        matched = next;
    }
    matched[text.len()]
}

/// Recently handled event ids, oldest first.
#[derive(Default)]
struct SeenEvents {
    order: VecDeque<OwnedEventId>,
    ids: HashSet<OwnedEventId>,
}

impl SeenEvents {
    /// Records `id`; false when it was seen already.
    fn first_time(&mut self, id: &OwnedEventId) -> bool {
        if !self.ids.insert(id.clone()) {
            return false;
        }
        self.order.push_back(id.clone());
        if self.order.len() > REMEMBERED_EVENTS {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        true
    }
}

struct Handler {
    bot: Arc<Bot>,
    me: OwnedUserId,
    started: MilliSecondsSinceUnixEpoch,
    locale: Option<String>,
    allowed_inviters: Vec<String>,
    cooldowns: Mutex<Cooldowns>,
    seen: Mutex<SeenEvents>,
    in_flight: InFlight,
}

impl Handler {
    /// Joins a room the bot was invited to, with retries, when the inviter is allowed; otherwise declines.
    fn accept_or_refuse(self: Arc<Self>, room: Room, inviter: OwnedUserId) {
        tokio::spawn(async move {
            let allowed = self.allowed_inviters.is_empty()
                || self.allowed_inviters.iter().any(|glob| glob_matches(glob, inviter.as_str()));
            if !allowed {
                tracing::info!(room = %room.room_id(), %inviter, "refusing an invite: the inviter is not allowed");
                if let Err(error) = room.leave().await {
                    tracing::warn!(room = %room.room_id(), %error, "could not decline the invite");
                }
                return;
            }
            for attempt in 0..JOIN_TRIES {
                match room.join().await {
                    Ok(()) => {
                        tracing::info!(room = %room.room_id(), %inviter, "joined");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(room = %room.room_id(), %error, attempt, "could not join yet");
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                }
            }
            tracing::error!(room = %room.room_id(), "gave up joining after {JOIN_TRIES} tries");
        });
    }

    async fn answer(&self, event: OriginalSyncRoomMessageEvent, room: Room) {
        let Some(_permit) = self.in_flight.enter().await else { return };
        // Other bots speak in notices; answering only text keeps bots from talking to each other.
        let MessageType::Text(text) = &event.content.msgtype else { return };
        if event.sender == self.me || event.origin_server_ts < self.started {
            return;
        }
        if !self.seen.lock().expect("not poisoned").first_time(&event.event_id) {
            return;
        }
        // A reply quotes the message it answers; only the new text is the member's.
        let body = remove_plain_reply_fallback(&text.body);
        let audience = Audience { locale: self.locale.as_deref(), command_prefix: "!" };
        let Some(reply) = self.reply_to(body, &event, &room, audience) else { return };
        let (plain, html) = render::body_and_html(&reply);
        let content = RoomMessageEventContent::notice_html(plain, html).add_mentions(Mentions::new()).make_reply_to(
            &event,
            ForwardThread::Yes,
            AddMentions::No,
        );
        if let Err(error) = room.send(content).await {
            tracing::error!(room = %room.room_id(), event = %event.event_id, %error, "could not send a reply");
        }
    }

    /// The reply, if any, after the cooldowns for chat; commands are explicit requests and always answered.
    fn reply_to(
        &self,
        body: &str,
        event: &OriginalSyncRoomMessageEvent,
        room: &Room,
        audience: Audience<'_>,
    ) -> Option<Reply> {
        let room_id = room.room_id();
        match Incoming::parse(body, &['!']) {
            Incoming::Command { name, argument } => {
                let reply = self.bot.respond(Incoming::Command { name, argument }, audience);
                tracing::info!(room = %room_id, event = %event.event_id, command = name, answered = reply.is_some(), "command");
                reply
            }
            Incoming::Chat(text) => {
                let place = (room_id.as_str(), event.sender.as_str(), &event.event_id as &dyn std::fmt::Display);
                chat_reply(&self.bot, &self.cooldowns, text, audience, place)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inviter_globs() {
        assert!(glob_matches("@*:example.org", "@alice:example.org"));
        assert!(!glob_matches("@*:example.org", "@alice:example.org.evil"));
        assert!(!glob_matches("@*:example.org", "@alice:other.org"));
        assert!(glob_matches("@alice:matrix.org", "@alice:matrix.org"));
        assert!(glob_matches("@al?ce:*", "@alyce:anywhere"));
        assert!(!glob_matches("@al?ce:*", "@alce:anywhere"));
        assert!(glob_matches("*", "@anyone:anywhere"));
    }

    #[test]
    fn backoff_doubles_up_to_a_limit() {
        assert_eq!(backoff(0), FIRST_RETRY);
        assert_eq!(backoff(1), FIRST_RETRY * 2);
        assert_eq!(backoff(30), LONGEST_RETRY);
    }

    #[test]
    fn duplicate_events_are_seen_once() {
        let mut seen = SeenEvents::default();
        let id: OwnedEventId = "$a:localhost".try_into().unwrap();
        assert!(seen.first_time(&id));
        assert!(!seen.first_time(&id));
        for index in 0..REMEMBERED_EVENTS {
            seen.first_time(&format!("${index}:localhost").try_into().unwrap());
        }
        assert!(seen.ids.len() <= REMEMBERED_EVENTS && seen.first_time(&id), "old ids are forgotten");
    }
}
