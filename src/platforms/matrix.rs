//! The Matrix adapter (matrix-sdk): `!` commands, FAQ auto-replies and crisis replies, in plain and encrypted
//! rooms.
//!
//! It translates room events into [`crate::Incoming`] and renders [`crate::Reply`] as an `m.notice` reply with an
//! HTML body ([`render`]); what to answer is the core's decision. Every message it sends carries an empty
//! `m.mentions`, so nothing pings anyone.
//!
//! - **The sync loop is never held up.** Handlers decide and queue; each room has its own sender task
//!   ([`Outbox`]) that sends crisis replies first and waits out a rate limit in that room alone.
//! - **Nothing is lost to a restart.** The bot keeps its own sync position (`sync-position` in the store),
//!   saved only when every reply for the events before it has been sent; after a restart with a saved session
//!   it answers what arrived while it was down, if younger than the catch-up window (5 minutes by default).
//!   Older messages, and everything on a first start, are history and never answered; event ids already
//!   handled are dropped too.
//! - **Edits** (`m.replace`) are assessed again and answered when they raise the crisis level.
//! - **One process per store**, held by a lock file; the store is `0700`, its crypto store encrypted.

pub mod render;
pub mod staff;

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::{RequestConfig, SyncSettings};
use matrix_sdk::ruma::api::client::filter::FilterDefinition;
use matrix_sdk::ruma::api::error::{ErrorKind, LimitExceededErrorData, RetryAfter};
use matrix_sdk::ruma::events::reaction::OriginalSyncReactionEvent;
use matrix_sdk::ruma::events::relation::{InReplyTo, Reply as ReplyRelation};
use matrix_sdk::ruma::events::room::encrypted::OriginalSyncRoomEncryptedEvent;
use matrix_sdk::ruma::events::room::member::{MembershipState, StrippedRoomMemberEvent};
use matrix_sdk::ruma::events::room::message::sanitize::remove_plain_reply_fallback;
use matrix_sdk::ruma::events::room::message::{
    MessageType, OriginalSyncRoomMessageEvent, Relation, RoomMessageEventContent,
};
use matrix_sdk::ruma::events::Mentions;
use matrix_sdk::ruma::{
    MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedUserId, TransactionId, UInt, UserId,
};
use matrix_sdk::{Client, Room, SessionMeta, SessionTokens};
use tokio::sync::OwnedSemaphorePermit;

use super::metrics::{Metrics, METRICS};
use super::shared::{count_reply, decide_chat, opted_out, server_settings, InFlight, Retry};
use crate::config::{MatrixAuth, MatrixSettings};
use crate::cooldown::{Cooldowns, Place, Ticket};
use crate::delivery::SendFailure;
use crate::{Audience, Incoming, LiveBot, Reply};

const DEVICE_NAME: &str = "ketamine-info-bot";
const SESSION_FILE: &str = "session.json";
const SYNC_POSITION_FILE: &str = "sync-position";
const LOCK_FILE: &str = "lock";
const CRYPTO_STORE: &str = "sqlite";
/// Retries with backoff: first delay, longest delay, and how many tries a join gets.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LONGEST_RETRY: Duration = Duration::from_secs(30);
const JOIN_TRIES: u32 = 8;
/// How long one sync waits for news at the homeserver.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Event ids remembered to drop duplicates that a reconnect may deliver again.
const REMEMBERED_EVENTS: usize = 4096;
/// How often unacknowledged alerts are checked for their reminder.
const REMINDER_TICK: Duration = Duration::from_secs(2);
/// Replies that are not urgent waiting in one room; beyond this the newest is dropped (a room is being flooded).
const QUEUED_PER_ROOM: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error(
        "the homeserver refused the bot's credentials; check MATRIX_USER and MATRIX_PASSWORD or \
         MATRIX_ACCESS_TOKEN (a revoked token or a deactivated account cannot sign in again)"
    )]
    BadCredentials(#[source] matrix_sdk::Error),
    #[error("the session store {path}: {problem}")]
    Store { path: PathBuf, problem: String },
    #[error("the session store {path}")]
    StoreIo { path: PathBuf, source: std::io::Error },
    #[error(
        "another ketamine-info-bot is running with the store {0} (it holds the lock file there); two copies \
         would answer every message twice"
    )]
    AlreadyRunning(PathBuf),
    #[error("cannot open the state database")]
    State(#[source] crate::state::StoreError),
    #[error("Matrix")]
    Client(#[source] matrix_sdk::Error),
    #[error("Matrix client setup")]
    Build(#[source] Box<matrix_sdk::ClientBuildError>),
    #[error("Matrix: {0}")]
    Other(&'static str),
}

/// Whether an error means the credentials are wrong, which no retry can fix.
fn is_credential_error(error: &matrix_sdk::Error) -> bool {
    is_credential_kind(error.client_api_error_kind())
}

fn is_credential_kind(kind: Option<&ErrorKind>) -> bool {
    matches!(kind, Some(ErrorKind::Forbidden | ErrorKind::UnknownToken { .. } | ErrorKind::UserDeactivated))
}

/// What a failed request means for a retry: network errors, 5xx and rate limits pass; nothing else does.
fn send_failure(error: &matrix_sdk::Error) -> SendFailure {
    let reason = error.to_string();
    if let Some(ErrorKind::LimitExceeded(LimitExceededErrorData { retry_after, .. })) = error.client_api_error_kind() {
        let retry_after = retry_after.as_ref().map(|retry_after| match retry_after {
            RetryAfter::Delay(delay) => *delay,
            RetryAfter::DateTime(at) => at.duration_since(std::time::SystemTime::now()).unwrap_or_default(),
        });
        return SendFailure::Transient { reason, retry_after };
    }
    let transient = match error {
        matrix_sdk::Error::Http(http) => match http.as_client_api_error() {
            Some(api) => api.status_code.is_server_error(),
            None => matches!(**http, matrix_sdk::HttpError::Reqwest(_)),
        },
        _ => false,
    };
    if transient {
        SendFailure::Transient { reason, retry_after: None }
    } else {
        SendFailure::Permanent { reason }
    }
}

/// The delay before retry number `attempt` (0-based): doubling from [`FIRST_RETRY`] up to [`LONGEST_RETRY`].
fn backoff(attempt: u32) -> Duration {
    FIRST_RETRY.saturating_mul(1 << attempt.min(16)).min(LONGEST_RETRY)
}

/// Runs the bot on Matrix until `shutdown` completes (at any stage, signing in included). Then it stops
/// syncing, lets the handlers and queued replies finish (within a bound), and saves the sync position.
pub async fn run(
    bot: Arc<LiveBot>,
    settings: MatrixSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MatrixError> {
    let store = Store::open(&settings.store)?;
    let in_flight = InFlight::new();
    let outbox = Arc::new(Outbox::default());
    let position = SyncPosition::default();
    let result = tokio::select! {
        result = serve(bot, &settings, &store, in_flight.clone(), Arc::clone(&outbox), &position) => result,
        () = shutdown => {
            tracing::info!("shutting down");
            Ok(())
        }
    };
    in_flight.drain().await;
    // Replies still queued after the drain are answered again after a restart, if still recent.
    match position.latest() {
        Some(token) if outbox.is_idle() => store.save_sync_position(&token)?,
        Some(_) => tracing::warn!("replies were still queued; the next start resumes before them"),
        None => {}
    }
    result
}

/// The store folder, held by this process for as long as it runs.
struct Store {
    path: PathBuf,
    /// Holds the advisory lock; released when the process ends, however it ends.
    _lock: std::fs::File,
}

impl Store {
    /// Creates the folder (`0700`: it holds the access token and the encryption keys) and takes its lock.
    fn open(path: &Path) -> Result<Store, MatrixError> {
        let io_error = |source| MatrixError::StoreIo { path: path.to_owned(), source };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(io_error)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io_error)?;
        match crate::state::lock_file(&path.join(LOCK_FILE)).map_err(io_error)? {
            Some(lock) => Ok(Store { path: path.to_owned(), _lock: lock }),
            None => Err(MatrixError::AlreadyRunning(path.to_owned())),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn saved_sync_position(&self) -> Option<String> {
        std::fs::read_to_string(self.file(SYNC_POSITION_FILE)).ok().map(|token| token.trim().to_owned())
    }

    fn save_sync_position(&self, token: &str) -> Result<(), MatrixError> {
        write_private(&self.file(SYNC_POSITION_FILE), token.as_bytes())
            .map_err(|source| MatrixError::StoreIo { path: self.file(SYNC_POSITION_FILE), source })
    }
}

/// The sync token up to which every event has been handled and every reply sent, when known.
#[derive(Default)]
struct SyncPosition(Mutex<Option<String>>);

impl SyncPosition {
    fn latest(&self) -> Option<String> {
        self.0.lock().expect("not poisoned").clone()
    }

    fn set(&self, token: String) {
        *self.0.lock().expect("not poisoned") = Some(token);
    }
}

/// What the session file holds: the session (with its access token) once signed in, and the crypto store's
/// passphrase, written before the store is created so that a start that never signs in loses nothing.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedSession {
    #[serde(flatten)]
    session: Option<MatrixSession>,
    /// Generated on the first start when `MATRIX_STORE_PASSPHRASE` is not set; absent in sessions saved by
    /// versions that did not encrypt the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    store_passphrase: Option<String>,
}

impl SavedSession {
    fn save(&self, store: &Store) -> Result<(), MatrixError> {
        let text = serde_json::to_vec(self).map_err(|_| MatrixError::Other("cannot encode the session"))?;
        write_private(&store.file(SESSION_FILE), &text)
            .map_err(|source| MatrixError::StoreIo { path: store.file(SESSION_FILE), source })
    }
}

/// Signs in, registers the handlers and syncs until an unrecoverable error.
async fn serve(
    bot: Arc<LiveBot>,
    settings: &MatrixSettings,
    store: &Store,
    in_flight: InFlight,
    outbox: Arc<Outbox>,
    position: &SyncPosition,
) -> Result<(), MatrixError> {
    let started = MilliSecondsSinceUnixEpoch::now();
    let mut saved = match read_session(store, settings)? {
        Some(saved) => saved,
        None => {
            let generated = match settings.store_passphrase {
                Some(_) => None,
                None => Some(
                    generate_passphrase()
                        .map_err(|source| MatrixError::StoreIo { path: PathBuf::from("/dev/urandom"), source })?,
                ),
            };
            let saved = SavedSession { session: None, store_passphrase: generated };
            saved.save(store)?;
            saved
        }
    };
    let passphrase = match &settings.store_passphrase {
        Some(passphrase) => Some(passphrase.expose().to_owned()),
        None => saved.store_passphrase.clone(),
    };
    let client = Client::builder()
        .homeserver_url(&settings.homeserver)
        .sqlite_store(store.file(CRYPTO_STORE), passphrase.as_deref())
        .build()
        .await
        .map_err(|error| MatrixError::Build(Box::new(error)))?;
    let restored = saved.session.is_some();
    match saved.session.take() {
        Some(session) => {
            client.restore_session(session).await.map_err(MatrixError::Client)?;
            tracing::info!(device = ?client.device_id(), "restored the saved session");
        }
        None => {
            saved.session = Some(sign_in(&client, settings).await?);
            saved.save(store)?;
            tracing::info!(device = ?client.device_id(), "signed in; session saved");
        }
    }
    let me = client.user_id().ok_or(MatrixError::Other("signed in without a user id"))?.to_owned();

    // After a restart, what arrived while the bot was down is answered if it is recent; on a first start the
    // timeline is history.
    let catch_up = if restored { settings.catch_up } else { Duration::ZERO };
    let cutoff_millis = u64::from(started.0).saturating_sub(catch_up.as_millis() as u64);
    let cutoff = MilliSecondsSinceUnixEpoch(UInt::try_from(cutoff_millis).unwrap_or_default());
    let state = crate::state::open(&settings.state).map_err(MatrixError::State)?;
    let toolkit = staff::Toolkit { bot: Arc::clone(&bot), store: state, clock: settings.clock.clone() };
    let reminders = (toolkit.clone(), client.clone());
    tokio::spawn(async move {
        let (toolkit, client) = reminders;
        let mut tick = tokio::time::interval(REMINDER_TICK);
        let mut last_prune = 0;
        loop {
            tick.tick().await;
            if let Err(error) = toolkit.remind(&client, &mut last_prune).await {
                tracing::error!(%error, "cannot check alerts for reminders");
            }
        }
    });
    let handler = Arc::new(Handler {
        cooldowns: Arc::new(Mutex::new(Cooldowns::new(bot.get().cooldowns()))),
        bot,
        toolkit,
        me,
        cutoff,
        locale: settings.locale.clone(),
        allowed_inviters: settings.allowed_inviters.clone(),
        seen: Mutex::new(SeenEvents::default()),
        outbox,
        undecryptable: Mutex::new(HashMap::new()),
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
    let on_reaction = Arc::clone(&handler);
    client.add_event_handler(move |event: OriginalSyncReactionEvent, room: Room| {
        let handler = Arc::clone(&on_reaction);
        async move { handler.react(event, room).await }
    });
    let on_undecryptable = Arc::clone(&handler);
    client.add_event_handler(move |_: OriginalSyncRoomEncryptedEvent, room: Room| {
        let handler = Arc::clone(&on_undecryptable);
        async move { handler.count_undecryptable(&room) }
    });
    // The invites still open in the store are those whose joins failed (or were cut short by a stop): try again.
    for room in client.invited_rooms() {
        if let Ok(invite) = room.invite_details().await {
            Arc::clone(&handler).accept_or_refuse(room, invite.inviter_id);
        }
    }
    tracing::info!(user = %handler.me, catch_up_seconds = catch_up.as_secs(), "listening");
    let from = store.saved_sync_position();
    sync_forever(&client, &handler.outbox, store, from, position).await
}

/// Reads the session file, if any. A store with encryption keys but no session file belongs to a device whose
/// session is lost: signing in again would make a new device that the keys do not match.
fn read_session(store: &Store, settings: &MatrixSettings) -> Result<Option<SavedSession>, MatrixError> {
    let path = store.file(SESSION_FILE);
    let store_error = |problem: String| MatrixError::Store { path: path.clone(), problem };
    if !path.exists() {
        if store.file(CRYPTO_STORE).exists() {
            return Err(store_error(format!(
                "is missing, but {} holds the keys of the device it named. Restore {SESSION_FILE}, or move the \
                 store folder away to start over with a new device",
                store.file(CRYPTO_STORE).display()
            )));
        }
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|source| MatrixError::StoreIo { path: path.clone(), source })?;
    let saved: SavedSession = serde_json::from_str(&text).map_err(|e| store_error(e.to_string()))?;
    if let Some(session) = saved.session.as_ref().filter(|session| session.meta.user_id.as_str() != settings.user) {
        return Err(store_error(format!("belongs to {}, not {}", session.meta.user_id, settings.user)));
    }
    Ok(Some(saved))
}

/// 32 random bytes from the kernel, as hex.
fn generate_passphrase() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Long-polls the homeserver, one sync after another, from the saved position when there is one; the event
/// handlers queue what each sync brings. (matrix-sdk's own sync loop waits a second after a quick sync, which
/// would delay replies in a busy room.) An unreachable or restarting homeserver is retried, ever more slowly.
/// Members are loaded lazily, so a big room does not fill memory and the store.
async fn sync_forever(
    client: &Client,
    outbox: &Outbox,
    store: &Store,
    from: Option<String>,
    position: &SyncPosition,
) -> Result<(), MatrixError> {
    let settings = SyncSettings::default().timeout(SYNC_TIMEOUT).filter(sync_filter().into());
    let mut token = from;
    let mut failures = 0;
    loop {
        let settings = match &token {
            Some(token) => settings.clone().token(token.clone()),
            None => settings.clone(),
        };
        match client.sync_once(settings).await {
            Ok(response) => {
                METRICS.set_connected("matrix", true);
                if failures > 0 {
                    tracing::info!("the homeserver is answering again");
                    failures = 0;
                }
                // Every handler for this sync has run; once its replies are sent, it is safe to resume after it.
                position.set(response.next_batch.clone());
                if outbox.is_idle() {
                    if let Err(error) = store.save_sync_position(&response.next_batch) {
                        tracing::warn!(%error, "cannot save the sync position");
                    }
                }
                token = Some(response.next_batch);
            }
            Err(error) if is_credential_error(&error) => return Err(MatrixError::BadCredentials(error)),
            Err(error) => {
                Metrics::count(&METRICS.sync_errors, "matrix");
                METRICS.set_connected("matrix", false);
                tracing::warn!(%error, attempt = failures, "sync failed; retrying");
                tokio::time::sleep(backoff(failures)).await;
                failures += 1;
            }
        }
    }
}

/// What each sync asks for: room members only as far as the events need them (lazy loading), so a big room
/// does not fill memory and the store with every member.
fn sync_filter() -> FilterDefinition {
    FilterDefinition::with_lazy_loading()
}

/// Signs in with the password or the access token. Only network errors and server errors are retried: a
/// refusal cannot heal, and each new try would make the homeserver a new device.
async fn sign_in(client: &Client, settings: &MatrixSettings) -> Result<MatrixSession, MatrixError> {
    let session = match &settings.auth {
        MatrixAuth::Password(password) => {
            let mut attempt = 0;
            loop {
                let login = client.matrix_auth().login_username(&settings.user, password.expose());
                match login.initial_device_display_name(DEVICE_NAME).send().await {
                    Ok(_) => break,
                    Err(error) if is_credential_error(&error) => {
                        return Err(MatrixError::BadCredentials(error));
                    }
                    Err(error) if matches!(send_failure(&error), SendFailure::Transient { .. }) => {
                        tracing::warn!(%error, attempt, "cannot sign in yet; retrying");
                        tokio::time::sleep(backoff(attempt)).await;
                        attempt += 1;
                    }
                    Err(error) => return Err(MatrixError::Client(error)),
                }
            }
            client.matrix_auth().session().ok_or(MatrixError::Other("signed in without a session"))?
        }
        MatrixAuth::AccessToken(token) => {
            let session = session_for_token(&settings.homeserver, token.expose()).await?;
            client.restore_session(session.clone()).await.map_err(MatrixError::Client)?;
            session
        }
    };
    Ok(session)
}

/// Asks the homeserver which user and device an access token belongs to.
async fn session_for_token(homeserver: &str, token: &str) -> Result<MatrixSession, MatrixError> {
    let probe = Client::builder()
        .homeserver_url(homeserver)
        .build()
        .await
        .map_err(|error| MatrixError::Build(Box::new(error)))?;
    let placeholder = MatrixSession {
        meta: SessionMeta {
            user_id: UserId::parse("@probe:localhost").expect("a valid id"),
            device_id: "PROBE".into(),
        },
        tokens: SessionTokens { access_token: token.to_owned(), refresh_token: None },
    };
    probe.restore_session(placeholder).await.map_err(MatrixError::Client)?;
    let whoami = probe.whoami().await.map_err(|error| {
        if is_credential_kind(error.client_api_error_kind()) {
            MatrixError::BadCredentials(error.into())
        } else {
            MatrixError::Client(error.into())
        }
    })?;
    let device_id =
        whoami.device_id.ok_or(MatrixError::Other("the access token has no device; log in with a password"))?;
    Ok(MatrixSession {
        meta: SessionMeta { user_id: whoami.user_id, device_id },
        tokens: SessionTokens { access_token: token.to_owned(), refresh_token: None },
    })
}

/// Writes a file readable by the bot's user only (the session holds the access token).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(contents)
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
    bot: Arc<LiveBot>,
    toolkit: staff::Toolkit,
    me: OwnedUserId,
    /// Messages older than this are history and never answered.
    cutoff: MilliSecondsSinceUnixEpoch,
    locale: Option<String>,
    allowed_inviters: Vec<String>,
    cooldowns: Arc<Mutex<Cooldowns>>,
    seen: Mutex<SeenEvents>,
    outbox: Arc<Outbox>,
    /// Undecryptable messages per room since the start, logged as a count.
    undecryptable: Mutex<HashMap<OwnedRoomId, u64>>,
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
                    Err(error) => match send_failure(&error) {
                        SendFailure::Transient { retry_after, .. } => {
                            tracing::warn!(room = %room.room_id(), %error, attempt, "could not join yet");
                            tokio::time::sleep(retry_after.unwrap_or_else(|| backoff(attempt))).await;
                        }
                        SendFailure::Permanent { .. } => {
                            tracing::error!(room = %room.room_id(), %error, "the homeserver refused the join; trying again at the next start");
                            return;
                        }
                    },
                }
            }
            tracing::error!(room = %room.room_id(), "gave up joining after {JOIN_TRIES} tries; trying again at the next start");
        });
    }

    /// Decides the reply to a message (or to an edit's new text) and queues it; never waits on a send.
    async fn answer(&self, event: OriginalSyncRoomMessageEvent, room: Room) {
        let Some(permit) = self.in_flight.enter().await.map(Arc::new) else { return };
        if event.sender == self.me || event.origin_server_ts < self.cutoff {
            return;
        }
        if !self.seen.lock().expect("not poisoned").first_time(&event.event_id) {
            return;
        }
        // An edit carries the whole new text; it is assessed as the message it replaces.
        let (msgtype, message, edit) = match &event.content.relates_to {
            Some(Relation::Replacement(replacement)) => {
                (&replacement.new_content.msgtype, replacement.event_id.clone(), true)
            }
            _ => (&event.content.msgtype, event.event_id.clone(), false),
        };
        // Other bots speak in notices; answering only text keeps bots from talking to each other.
        let MessageType::Text(text) = msgtype else { return };
        // A reply quotes the message it answers; only the new text is the member's.
        let body = remove_plain_reply_fallback(&text.body);
        let place = Place {
            platform: "matrix",
            channel: room.room_id().to_string(),
            person: event.sender.to_string(),
            message: message.to_string(),
        };
        if let Some((name, arguments)) = staff::command(body).filter(|_| !edit) {
            tracing::info!(room = %place.channel, event = %place.message, command = name, "toolkit command");
            let answers = self.toolkit.answer(&room, &event, name, arguments).await;
            self.queue_answers(&room, answers, &place, &permit);
            return;
        }
        let store = self.toolkit.store.as_ref();
        let settings = server_settings(store, &place.channel);
        let opted_out = opted_out(store, &place.person);
        let audience = Audience { locale: self.locale.as_deref(), command_prefix: "!", server: Some(&settings) };
        let bot = self.bot.get();
        let decided = match bot.parse(body, &['!']) {
            Incoming::Command { .. } if edit => None,
            Incoming::Command { name, argument } => {
                let ticket = {
                    let mut cooldowns = self.cooldowns.lock().expect("not poisoned");
                    cooldowns.set_windows(bot.cooldowns());
                    cooldowns.admit_command(&place, name, Instant::now())
                };
                tracing::info!(room = %place.channel, event = %place.message, command = name, answered = ticket.is_some(), "command");
                ticket.map(|ticket| (bot.command(name, argument, audience), Some(ticket), false))
            }
            Incoming::Chat(text) => {
                let decision = decide_chat(&bot, &self.cooldowns, text, audience, &place, edit, opted_out);
                if let Some(facts) = decision.alert {
                    self.toolkit.alert(room.client(), &settings, &place, facts).await;
                }
                decision.reply.map(|admitted| (admitted.reply, Some(admitted.ticket), true))
            }
        };
        let Some((reply, ticket, automatic)) = decided else { return };
        let job =
            Job { reply, ticket, automatic, created: Instant::now(), in_reply_to: message, place, _permit: permit };
        self.outbox.send(room, job, &self.cooldowns, &self.toolkit);
    }

    /// A ✅ reaction on an alert in a staff room acknowledges it, from a moderator of that room.
    async fn react(&self, event: OriginalSyncReactionEvent, room: Room) {
        let Some(permit) = self.in_flight.enter().await.map(Arc::new) else { return };
        let annotation = &event.content.relates_to;
        if event.sender == self.me || annotation.key != staff::ACKNOWLEDGE_REACTION {
            return;
        }
        let place = Place {
            platform: "matrix",
            channel: room.room_id().to_string(),
            person: event.sender.to_string(),
            message: event.event_id.to_string(),
        };
        let answers = self.toolkit.reaction(&room, &annotation.event_id, &event.sender).await;
        self.queue_answers(&room, answers, &place, &permit);
    }

    /// Queues the toolkit's answers (notices, resources) for `room`: no cooldown, not counted as automatic.
    fn queue_answers(
        &self,
        room: &Room,
        answers: Vec<staff::Answer>,
        place: &Place,
        permit: &Arc<OwnedSemaphorePermit>,
    ) {
        for (reply, to) in answers {
            let job = Job {
                reply,
                ticket: None,
                automatic: false,
                created: Instant::now(),
                in_reply_to: to,
                place: place.clone(),
                _permit: Arc::clone(permit),
            };
            self.outbox.send(room.clone(), job, &self.cooldowns, &self.toolkit);
        }
    }

    /// Counts a message the bot could not decrypt, by room; the count is logged, the message never.
    fn count_undecryptable(&self, room: &Room) {
        let mut counts = self.undecryptable.lock().expect("not poisoned");
        let count = counts.entry(room.room_id().to_owned()).or_default();
        *count += 1;
        tracing::warn!(room = %room.room_id(), count = *count, "could not decrypt a message");
    }
}

/// A reply waiting to be sent to a room.
struct Job {
    reply: Reply,
    /// The cooldown windows it took, given back if it cannot be sent.
    ticket: Option<Ticket>,
    /// An automatic reply, counted for the room's statistics once sent.
    automatic: bool,
    /// When the event it answers was handled, for the reply latency.
    created: Instant,
    in_reply_to: OwnedEventId,
    place: Place,
    /// Keeps a shutdown waiting until the reply (and any sent with it) is sent or given up.
    _permit: Arc<OwnedSemaphorePermit>,
}

/// Replies waiting in one room: urgent ones (crisis replies, crisis resources) first, in arrival order.
struct RoomQueue<T> {
    urgent: VecDeque<T>,
    other: VecDeque<T>,
}

impl<T> Default for RoomQueue<T> {
    fn default() -> Self {
        RoomQueue { urgent: VecDeque::new(), other: VecDeque::new() }
    }
}

impl<T> RoomQueue<T> {
    /// Queues an item; a non-urgent one is handed back when [`QUEUED_PER_ROOM`] are waiting already. Urgent
    /// ones are never refused: each person gets one per window, so they cannot flood a room.
    fn push(&mut self, item: T, urgent: bool) -> Result<(), T> {
        match urgent {
            true => self.urgent.push_back(item),
            false if self.other.len() >= QUEUED_PER_ROOM => return Err(item),
            false => self.other.push_back(item),
        }
        Ok(())
    }

    /// The next item, urgent ones first; others only when `others_may_go`.
    fn pop(&mut self, others_may_go: bool) -> Option<T> {
        match self.urgent.pop_front() {
            Some(item) => Some(item),
            None if others_may_go => self.other.pop_front(),
            None => None,
        }
    }

    fn is_empty(&self) -> bool {
        self.urgent.is_empty() && self.other.is_empty()
    }
}

/// One queue and one sender task per room, so that a slow or rate-limited room delays nobody else.
struct Outbox {
    rooms: Mutex<HashMap<OwnedRoomId, Arc<RoomSender>>>,
    /// Urgent replies queued or being sent, in every room. The homeserver's rate limit is the account's, shared by
    /// all rooms, so while any is waiting the other replies hold back and leave the budget to it.
    urgent: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Default for Outbox {
    fn default() -> Outbox {
        Outbox { rooms: Mutex::default(), urgent: Arc::new(tokio::sync::watch::Sender::new(0)) }
    }
}

#[derive(Default)]
struct RoomSender {
    queue: Mutex<RoomQueue<Job>>,
    /// Whether its task is sending; false once the queue has run dry and the task has ended. It is set false
    /// under the queue's lock, so a reply queued meanwhile is either taken by the task or starts a new one.
    busy: Mutex<bool>,
}

impl Outbox {
    /// Queues a reply for `room`, starting the room's sender task if none is running.
    fn send(&self, room: Room, job: Job, cooldowns: &Arc<Mutex<Cooldowns>>, toolkit: &staff::Toolkit) {
        let sender = Arc::clone(self.rooms.lock().expect("not poisoned").entry(room.room_id().to_owned()).or_default());
        let urgent = job.reply.is_urgent();
        if urgent {
            self.urgent.send_modify(|waiting| *waiting += 1);
        }
        if let Err(job) = sender.queue.lock().expect("not poisoned").push(job, urgent) {
            crate::delivery::count_given_up();
            tracing::error!(room = %job.place.channel, message = %job.place.message, "gave up a reply: the room's queue is full");
            if let Some(ticket) = job.ticket {
                cooldowns.lock().expect("not poisoned").release(ticket);
            }
            return;
        }
        if std::mem::replace(&mut *sender.busy.lock().expect("not poisoned"), true) {
            return; // its task takes it
        }
        let (cooldowns, urgent) = (Arc::clone(cooldowns), Arc::clone(&self.urgent));
        let toolkit = toolkit.clone();
        tokio::spawn(async move { sender.run(room, cooldowns, toolkit, urgent).await });
    }

    /// Whether no reply is waiting or being sent anywhere.
    fn is_idle(&self) -> bool {
        self.rooms.lock().expect("not poisoned").values().all(|sender| !*sender.busy.lock().expect("not poisoned"))
    }
}

impl RoomSender {
    /// Sends the room's replies, urgent ones first and others only while no room has an urgent one waiting,
    /// until the queue is empty.
    async fn run(
        &self,
        room: Room,
        cooldowns: Arc<Mutex<Cooldowns>>,
        toolkit: staff::Toolkit,
        urgent: Arc<tokio::sync::watch::Sender<usize>>,
    ) {
        loop {
            // Subscribed before looking, so an urgent reply that ends meanwhile still wakes this task.
            let mut urgent_changes = urgent.subscribe();
            let job = {
                let mut queue = self.queue.lock().expect("not poisoned");
                if queue.is_empty() {
                    *self.busy.lock().expect("not poisoned") = false;
                    return;
                }
                queue.pop(*urgent_changes.borrow_and_update() == 0)
            };
            match job {
                Some(job) if job.reply.is_urgent() => {
                    send_reply(&room, job, &cooldowns, &toolkit).await;
                    urgent.send_modify(|waiting| *waiting -= 1);
                }
                Some(job) => send_reply(&room, job, &cooldowns, &toolkit).await,
                // Another room's urgent reply is waiting; each gives up within minutes, so this wait ends.
                None => {
                    let _ = urgent_changes.changed().await;
                }
            }
        }
    }
}

/// Sends one reply as an `m.notice` in reply to its message, with retries under one transaction id, so a retry
/// of a send that did arrive is not shown twice. matrix-sdk's own retries are off: a rate limit is waited out
/// here, in this room's task, instead of inside a handler.
async fn send_reply(room: &Room, job: Job, cooldowns: &Mutex<Cooldowns>, toolkit: &staff::Toolkit) {
    let (plain, html) = render::body_and_html(&job.reply);
    let mut content = RoomMessageEventContent::notice_html(plain, html).add_mentions(Mentions::new());
    content.relates_to = Some(Relation::Reply(ReplyRelation::new(InReplyTo::new(job.in_reply_to.clone()))));
    let transaction = TransactionId::new();
    let mut retry = Retry::new(&job.reply, &job.place);
    loop {
        let sent = room
            .send(content.clone())
            .with_transaction_id(transaction.clone())
            .with_request_config(RequestConfig::new().disable_retry())
            .await;
        match sent {
            Ok(_) => {
                METRICS.reply_sent("matrix", &job.reply, job.automatic, job.created.elapsed());
                if job.automatic {
                    count_reply(toolkit.store.as_ref(), &toolkit.clock, room.room_id().as_str(), &job.reply);
                }
                return;
            }
            Err(error) if retry.again(send_failure(&error)).await => {}
            Err(_) => break,
        }
    }
    if let Some(ticket) = job.ticket {
        cooldowns.lock().expect("not poisoned").release(ticket);
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
    fn syncs_load_members_lazily() {
        let filter = serde_json::to_value(sync_filter()).unwrap();
        assert_eq!(filter["room"]["state"]["lazy_load_members"], true, "{filter}");
    }

    #[test]
    fn urgent_replies_go_first_and_a_flood_is_bounded() {
        let mut queue = RoomQueue::default();
        for index in 0..QUEUED_PER_ROOM {
            assert!(queue.push(format!("faq {index}"), false).is_ok());
        }
        assert_eq!(queue.push("one too many".to_owned(), false), Err("one too many".to_owned()));
        assert!(queue.push("crisis".to_owned(), true).is_ok(), "urgent replies are never refused");
        assert_eq!(queue.pop(false).as_deref(), Some("crisis"));
        assert_eq!(queue.pop(false), None, "others wait while another room has an urgent reply");
        assert!(!queue.is_empty());
        assert_eq!(queue.pop(true).as_deref(), Some("faq 0"));
        assert_eq!(std::iter::from_fn(|| queue.pop(true)).count(), QUEUED_PER_ROOM - 1, "nothing else was lost");
        assert!(queue.is_empty());
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
