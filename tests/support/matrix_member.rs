//! A member of Matrix rooms for the tests: a real matrix-sdk client (encryption included) that creates rooms,
//! invites the bot, sends messages and collects everything it receives.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use matrix_sdk::config::SyncSettings;
use matrix_sdk::event_handler::RawEvent;
use matrix_sdk::ruma::api::client::room::create_room::v3::{Request as CreateRoom, RoomPreset};
use matrix_sdk::ruma::events::room::message::{OriginalSyncRoomMessageEvent, RoomMessageEventContent};
use matrix_sdk::ruma::{OwnedEventId, UserId};
use matrix_sdk::{Client, Room, RoomMemberships};
use serde_json::Value;
use tokio::sync::Notify;

/// A message the member received.
#[derive(Clone, Debug)]
pub struct Received {
    pub sender: String,
    /// When it arrived.
    pub at: std::time::Instant,
    /// The event as JSON (decrypted, in encrypted rooms).
    pub event: Value,
}

impl Received {
    pub fn body(&self) -> &str {
        self.event["content"]["body"].as_str().unwrap_or_default()
    }

    pub fn in_reply_to(&self) -> Option<&str> {
        self.event["content"]["m.relates_to"]["m.in_reply_to"]["event_id"].as_str()
    }
}

pub struct Member {
    pub client: Client,
    received: Arc<Mutex<Vec<Received>>>,
    arrived: Arc<Notify>,
}

impl Member {
    /// Logs in with a password, syncs once, then keeps syncing in the background.
    pub async fn login(homeserver: &str, user: &str, password: &str, store: &Path) -> Member {
        let client =
            Client::builder().homeserver_url(homeserver).sqlite_store(store, None).build().await.expect("a client");
        client
            .matrix_auth()
            .login_username(user, password)
            .initial_device_display_name("test member")
            .send()
            .await
            .expect("login");
        client.sync_once(SyncSettings::default()).await.expect("first sync");
        let received = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let (sink, notify) = (Arc::clone(&received), Arc::clone(&arrived));
        client.add_event_handler(move |event: OriginalSyncRoomMessageEvent, raw: RawEvent| {
            let (sink, notify) = (Arc::clone(&sink), Arc::clone(&notify));
            async move {
                let event_json = serde_json::from_str(raw.0.get()).unwrap_or(Value::Null);
                let received =
                    Received { sender: event.sender.to_string(), at: std::time::Instant::now(), event: event_json };
                sink.lock().unwrap().push(received);
                notify.notify_waiters();
            }
        });
        // One long poll after another, through homeserver restarts (an error only means "try again shortly").
        let syncing = client.clone();
        tokio::spawn(async move {
            let settings = SyncSettings::default().timeout(Duration::from_secs(30));
            loop {
                if syncing.sync_once(settings.clone()).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        });
        Member { client, received, arrived }
    }

    /// Creates a private room, encrypted or not, and invites `guests`.
    pub async fn create_room(&self, encrypted: bool, guests: &[&str]) -> Room {
        let mut request = CreateRoom::new();
        request.preset = Some(RoomPreset::PrivateChat);
        let room = self.client.create_room(request).await.expect("a room");
        if encrypted {
            room.enable_encryption().await.expect("encryption on");
        }
        for guest in guests {
            room.invite_user_by_id(&UserId::parse(*guest).unwrap()).await.expect("an invite");
        }
        room
    }

    /// Whether `user` has joined `room`, as far as this member has synced.
    pub async fn has_joined(&self, room: &Room, user: &str) -> bool {
        let user = UserId::parse(user).unwrap();
        room.members(RoomMemberships::JOIN).await.unwrap_or_default().iter().any(|member| member.user_id() == user)
    }

    /// Waits until `user` has joined `room` (true) or left it (false).
    pub async fn wait_for_membership(&self, room: &Room, user: &str, timeout: Duration) -> bool {
        let user = UserId::parse(user).unwrap();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.has_joined(room, user.as_str()).await {
                return true;
            }
            let left = room.members(RoomMemberships::LEAVE).await.unwrap_or_default();
            if left.iter().any(|member| member.user_id() == user) {
                return false;
            }
            assert!(tokio::time::Instant::now() < deadline, "{user} neither joined nor left within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn send(&self, room: &Room, content: RoomMessageEventContent) -> OwnedEventId {
        room.send(content).await.expect("sent").response.event_id
    }

    pub async fn say(&self, room: &Room, text: &str) -> OwnedEventId {
        self.send(room, RoomMessageEventContent::text_plain(text)).await
    }

    /// Everything received in reply to `event`.
    pub fn replies_to(&self, event: &OwnedEventId) -> Vec<Received> {
        let received = self.received.lock().unwrap();
        received.iter().filter(|r| r.in_reply_to() == Some(event.as_str())).cloned().collect()
    }

    /// Waits for the first reply to `event`.
    pub async fn reply_to(&self, event: &OwnedEventId, timeout: Duration) -> Received {
        self.wait_for(timeout, |received| received.in_reply_to() == Some(event.as_str())).await
    }

    /// Waits for the first message received that satisfies `matches`.
    pub async fn wait_for(&self, timeout: Duration, matches: impl Fn(&Received) -> bool) -> Received {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.arrived.notified();
            if let Some(found) = self.received.lock().unwrap().iter().find(|r| matches(r)).cloned() {
                return found;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("no matching message within {timeout:?}");
            }
        }
    }

    /// Everything received that satisfies `matches`.
    pub fn received(&self, matches: impl Fn(&Received) -> bool) -> Vec<Received> {
        self.received.lock().unwrap().iter().filter(|r| matches(r)).cloned().collect()
    }

    /// Joins a room the member was invited to.
    pub async fn join(&self, room: &matrix_sdk::ruma::RoomId) -> Room {
        self.client.join_room_by_id(room).await.expect("joined")
    }

    /// Reacts to `event` with `key`.
    pub async fn react(&self, room: &Room, event: &OwnedEventId, key: &str) {
        use matrix_sdk::ruma::events::reaction::ReactionEventContent;
        use matrix_sdk::ruma::events::relation::Annotation;
        room.send(ReactionEventContent::new(Annotation::new(event.clone(), key.to_owned()))).await.expect("reacted");
    }
}
