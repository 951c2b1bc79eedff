//! The moderator toolkit on Matrix, room by room: `!ketamine-settings` for members with power level 50 or more,
//! staff alerts to a staff room (a `matrix.to` link, never the text) acknowledged by a ✅ reaction or `!ack`, one
//! reminder that pings only users the moderators named, `!ketamine-optout` / `-optin` / `-privacy` / `-stats` /
//! `-forget-me`, and `!ketamine-send-resources` in reply to a message. What is allowed and when to alert is
//! decided in [`crate::moderation`].

use std::sync::Arc;

use matrix_sdk::ruma::events::room::message::{OriginalSyncRoomMessageEvent, Relation, RoomMessageEventContent};
use matrix_sdk::ruma::events::room::power_levels::UserPowerLevel;
use matrix_sdk::ruma::events::Mentions;
use matrix_sdk::ruma::{OwnedEventId, OwnedUserId, RoomId, UserId};
use matrix_sdk::{Client, Room};

use super::{render, send_failure};
use crate::cooldown::Place;
use crate::moderation::{
    describe_stats, parse_settings, resources_allowed, AlertFacts, Change, ServerSettings, PRIVACY,
};
use crate::platforms::shared::{alerts_to_remind, record_alert, Retry};
use crate::state::{AlertRecord, Clock, Store, StoreError};
use crate::{Audience, LiveBot, Reply};

/// The power level a member needs for moderator commands and to acknowledge alerts.
const MODERATOR_LEVEL: i64 = 50;
/// The reaction that acknowledges an alert.
pub const ACKNOWLEDGE_REACTION: &str = "✅";

/// What the toolkit works with: the bot (for its texts and detector), the state and the clock.
#[derive(Clone)]
pub struct Toolkit {
    pub bot: Arc<LiveBot>,
    pub store: Arc<dyn Store>,
    pub clock: Clock,
}

/// A reply for the room's queue: what, and the event it answers.
pub type Answer = (Reply, OwnedEventId);

/// The toolkit's command in a line (`!ketamine-settings faq-replies off` -> (`ketamine-settings`, `faq-replies
/// off`)), if it is one.
pub fn command(body: &str) -> Option<(&str, &str)> {
    let line = body.trim().strip_prefix('!')?;
    let (name, arguments) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let known = [
        "ketamine-settings",
        "ketamine-optout",
        "ketamine-optin",
        "ketamine-privacy",
        "ketamine-stats",
        "ketamine-forget-me",
        "ketamine-send-resources",
        "ack",
    ];
    known.contains(&name).then_some((name, arguments.trim()))
}

/// Whether `user` may moderate `room` (power level 50 or more).
async fn moderates(room: &Room, user: &UserId) -> bool {
    match room.get_member(user).await {
        Ok(Some(member)) => match member.power_level() {
            UserPowerLevel::Infinite => true,
            UserPowerLevel::Int(level) => i64::from(level) >= MODERATOR_LEVEL,
            _ => false,
        },
        _ => false,
    }
}

/// The event a message replies to, if any.
fn replied_to(event: &OriginalSyncRoomMessageEvent) -> Option<OwnedEventId> {
    match &event.content.relates_to {
        Some(Relation::Reply(reply)) => Some(reply.in_reply_to.event_id.clone()),
        _ => None,
    }
}

impl Toolkit {
    fn notice(&self, text: &str, to: &OwnedEventId) -> Vec<Answer> {
        vec![(self.bot.get().notice(text), to.clone())]
    }

    /// Answers a toolkit command; the answers go to the room's queue.
    pub async fn answer(
        &self,
        room: &Room,
        event: &OriginalSyncRoomMessageEvent,
        name: &str,
        arguments: &str,
    ) -> Vec<Answer> {
        let (store, sender, to) = (self.store.as_ref(), &event.sender, &event.event_id);
        let moderator_only = matches!(name, "ketamine-settings" | "ketamine-stats" | "ketamine-send-resources" | "ack");
        if moderator_only && !moderates(room, sender).await {
            return self.notice("Only members with power level 50 or more in this room can do that.", to);
        }
        let failed = |error: StoreError| {
            tracing::error!(%error, command = name, "the state database failed");
            "The bot cannot do that right now; try again.".to_owned()
        };
        let room_key = room.room_id().to_string();
        let text = match name {
            "ketamine-settings" => self.settings(&room.client(), &room_key, arguments, sender).unwrap_or_else(failed),
            "ketamine-optout" | "ketamine-optin" => {
                let out = name == "ketamine-optout";
                match store.set_opted_out(sender.as_str(), out, self.clock.now()) {
                    Ok(()) if out => "Done: the bot will not reply to you automatically anywhere. Commands still \
                                      answer; staff alerts follow each room's policy. !ketamine-optin undoes this."
                        .to_owned(),
                    Ok(()) => "Done: automatic replies to you are back on.".to_owned(),
                    Err(error) => failed(error),
                }
            }
            "ketamine-forget-me" => match store.forget(sender.as_str()) {
                Ok(()) => "Done: your opt-out and your id in stored alerts are deleted.".to_owned(),
                Err(error) => failed(error),
            },
            "ketamine-stats" => {
                let today = self.clock.now() / 86_400;
                let period = |days: i64| {
                    store
                        .stats(&room_key, today - days + 1, today, (today - days + 1) * 86_400)
                        .map(|s| (days as u32, s))
                };
                match period(7).and_then(|week| Ok(vec![week, period(30)?])) {
                    Ok(periods) => describe_stats(&periods),
                    Err(error) => failed(error),
                }
            }
            "ketamine-send-resources" => return self.send_resources(room, event).await,
            "ack" => match replied_to(event) {
                Some(alert) => self.acknowledge(&alert, sender).unwrap_or_else(failed),
                None => "Reply to an alert with !ack to acknowledge it.".to_owned(),
            },
            _ => PRIVACY.to_owned(),
        };
        self.notice(&text, to)
    }

    fn settings(&self, client: &Client, room: &str, arguments: &str, moderator: &UserId) -> Result<String, StoreError> {
        let (bot, settings) = (self.bot.get(), self.store.settings(room)?);
        let summary = |settings: &ServerSettings| settings.describe(str::to_owned, str::to_owned).join("\n");
        Ok(match parse_settings(arguments) {
            Err(problem) => problem,
            Ok(None) => summary(&settings),
            // Alerts sent to a room the bot is not in would be lost: refuse now, not at the first crisis.
            Ok(Some(Change::Alerts(Some(target)))) if !in_room(client, &target.channel) => format!(
                "Not changed: the bot is not in {}. Give the staff room's id (!abc:example.org, in its settings) and \
                 invite the bot there first.",
                target.channel
            ),
            Ok(Some(change)) => match settings.apply(change, bot.catalog(), bot.detectors()) {
                Err(refusal) => format!("Not changed: {refusal}."),
                Ok(next) => {
                    self.store.save_settings(room, &next)?;
                    tracing::info!(room, %moderator, "settings changed");
                    format!("Saved.\n{}", summary(&next))
                }
            },
        })
    }

    /// `!ack` or a ✅ reaction on an alert: recorded once; the answer says who.
    fn acknowledge(&self, alert: &OwnedEventId, by: &UserId) -> Result<String, StoreError> {
        let Some(record) = self.store.alert_by_message(alert.as_str())? else {
            return Ok("That is not an alert the bot keeps (alerts are deleted after 30 days).".to_owned());
        };
        Ok(match self.store.acknowledge(record.id, by.as_str(), self.clock.now())? {
            true => {
                tracing::info!(alert = record.id, "alert acknowledged");
                format!("Acknowledged by {by}.")
            }
            false => "Someone has acknowledged this alert already.".to_owned(),
        })
    }

    /// A ✅ reaction from a moderator of the staff room on one of its alerts.
    pub async fn reaction(&self, room: &Room, alert: &OwnedEventId, by: &OwnedUserId) -> Vec<Answer> {
        if !moderates(room, by).await {
            return Vec::new(); // anyone may react; only moderators acknowledge
        }
        match self.acknowledge(alert, by) {
            Ok(text) => self.notice(&text, alert),
            Err(error) => {
                tracing::error!(%error, "cannot acknowledge an alert");
                Vec::new()
            }
        }
    }

    /// `!ketamine-send-resources` in reply to a member's message: the crisis resources for the room's region as a
    /// reply to it, a note to staff, and a refusal for a second send to the same member within an hour.
    async fn send_resources(&self, room: &Room, event: &OriginalSyncRoomMessageEvent) -> Vec<Answer> {
        let Some(target) = replied_to(event) else {
            return self.notice("Reply to the member's message with !ketamine-send-resources.", &event.event_id);
        };
        let member = match room
            .event(&target, None)
            .await
            .ok()
            .and_then(|found| found.kind.raw().get_field::<OwnedUserId>("sender").ok().flatten())
        {
            Some(member) => member,
            None => return self.notice("The bot cannot read that message.", &event.event_id),
        };
        let (room_key, now) = (room.room_id().to_string(), self.clock.now());
        let last = self.store.last_resources_sent(&room_key, member.as_str()).unwrap_or_else(|error| {
            tracing::error!(%error, "cannot read when resources were last sent");
            None
        });
        if !resources_allowed(last, now) {
            let refusal = format!("{member} was sent crisis resources less than an hour ago; not sent again.");
            return self.notice(&refusal, &event.event_id);
        }
        if let Err(error) = self.store.record_resources_sent(&room_key, member.as_str(), now) {
            tracing::error!(%error, "cannot record resources sent");
        }
        let settings = self.store.settings(&room_key).unwrap_or_default();
        let audience = Audience { locale: None, command_prefix: "!", server: Some(&settings) };
        let bot = self.bot.get();
        let resources = bot.command(&bot.catalog().crisis.command, None, audience);
        if let Some(staff) = &settings.alerts {
            let note = format!("{} sent crisis resources to {member} in {}.", event.sender, room.room_id());
            post(room.client(), &staff.channel, &self.bot.get().notice(&note), Mentions::new()).await;
        }
        vec![(resources, target), (self.bot.get().notice("Sent."), event.event_id.clone())]
    }

    /// Posts a staff alert (level, category, room, a matrix.to link, the member, the time; never the text) and
    /// records it.
    pub async fn alert(&self, client: Client, settings: &ServerSettings, place: &Place, facts: AlertFacts) {
        let Some(target) = &settings.alerts else { return };
        let now = self.clock.now();
        let recorded = record_alert(self.store.as_ref(), &place.channel, place, facts, &target.channel, now);
        let category = facts.category.map_or(String::new(), |category| format!(" ({})", category.as_str()));
        let text = format!(
            "Possible crisis: {}{category}\n{} in {}: https://matrix.to/#/{}/{}\nThe bot never copies what was written; \
             open the link to read it. React with {ACKNOWLEDGE_REACTION} or reply !ack to acknowledge.",
            facts.level.as_str(),
            place.person,
            place.channel,
            place.channel,
            place.message,
        );
        let posted = post(client, &target.channel, &self.bot.get().notice(&text), Mentions::new()).await;
        match (recorded, posted) {
            (Ok(id), Some(event)) => {
                if let Err(error) = self.store.set_alert_message(id, event.as_str()) {
                    tracing::warn!(%error, "cannot record the alert's event");
                }
                tracing::info!(alert = id, level = facts.level.as_str(), "staff alerted");
            }
            (Err(error), _) => tracing::error!(%error, "cannot record a staff alert"),
            (_, None) => tracing::error!(room = target.channel, "gave up a staff alert"),
        }
    }

    /// Posts the one reminder for each Matrix alert nobody acknowledged within its room's `realert-minutes`,
    /// mentioning only the users the moderators named.
    pub async fn remind(&self, client: &Client, last_prune: &mut i64) -> Result<(), StoreError> {
        // Matrix alerts only (staff room ids start with '!'); a Discord adapter sharing the database has its own.
        let ours = |record: &AlertRecord| record.alert_channel.starts_with('!');
        for (record, target) in alerts_to_remind(self.store.as_ref(), self.clock.now(), ours, last_prune)? {
            let users: Vec<OwnedUserId> = target.users.iter().filter_map(|user| UserId::parse(user).ok()).collect();
            let names: Vec<&str> = users.iter().map(|user| user.as_str()).collect();
            let text = format!("{} An alert is not acknowledged yet: {}", names.join(" "), link(&record));
            post(client.clone(), &target.channel, &self.bot.get().notice(text.trim()), Mentions::with_user_ids(users))
                .await;
        }
        Ok(())
    }
}

/// Whether the bot has joined the room with this id.
fn in_room(client: &Client, room: &str) -> bool {
    RoomId::parse(room)
        .ok()
        .and_then(|id| client.get_room(&id))
        .is_some_and(|room| room.state() == matrix_sdk::RoomState::Joined)
}

fn link(record: &AlertRecord) -> String {
    format!("https://matrix.to/#/{}/{}", record.channel, record.message)
}

/// Posts a notice to a room the bot is in, retried like an urgent reply; the event id, or `None` if given up.
async fn post(client: Client, room: &str, notice: &Reply, mentions: Mentions) -> Option<OwnedEventId> {
    let room = RoomId::parse(room).ok().and_then(|id| client.get_room(&id))?;
    let (plain, html) = render::body_and_html(notice);
    let content = RoomMessageEventContent::notice_html(plain, html).add_mentions(mentions);
    let place =
        Place { platform: "matrix", channel: room.room_id().to_string(), person: "-".into(), message: "-".into() };
    let mut retry = Retry::urgent(&place);
    loop {
        match room.send(content.clone()).await {
            Ok(sent) => return Some(sent.response.event_id),
            Err(error) if retry.again(send_failure(&error)).await => {}
            Err(_) => return None,
        }
    }
}
