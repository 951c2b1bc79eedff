//! The moderator toolkit on Discord: `/ketamine-settings`, member choice (`/ketamine-optout`, `/ketamine-optin`,
//! `/ketamine-privacy`), and staff alerts with their Acknowledge button and one reminder. It translates commands
//! into [`Change`]s and alerts into messages; what is allowed and when to alert is decided in
//! [`crate::moderation`].

use serenity::all::{
    ButtonStyle, ChannelId, CommandInteraction, CommandOptionType, CommandType, ComponentInteraction, Context,
    CreateActionRow, CreateAllowedMentions, CreateButton, CreateCommand, CreateCommandOption,
    CreateInteractionResponse, CreateInteractionResponseFollowup, CreateInteractionResponseMessage, CreateMessage,
    GuildId, Permissions, ResolvedOption, ResolvedTarget, ResolvedValue, RoleId, Unresolved,
};

use super::no_pings;
use crate::config::Shards;
use crate::cooldown::Place;
use crate::moderation::{describe_stats, resources_allowed, AlertFacts, AlertTarget, Change, ServerSettings, PRIVACY};
use crate::platforms::shared::{alerts_to_remind, record_alert, Retry};
use crate::state::{AlertRecord, Clock, Store, StoreError};
use crate::Audience;

/// What the toolkit works with: the bot (for its texts and detector), the state and the clock.
#[derive(Clone)]
pub struct Toolkit {
    pub bot: std::sync::Arc<crate::LiveBot>,
    pub store: std::sync::Arc<dyn Store>,
    pub clock: Clock,
}

impl Toolkit {
    /// A notice as one Discord message (alerts, reminders and logs are short), ending with the disclaimer like
    /// every reply.
    fn notice(&self, text: &str) -> String {
        super::render::messages(&self.bot.get().notice(text)).swap_remove(0)
    }
}

pub const SETTINGS_COMMAND: &str = "ketamine-settings";
pub const OPT_OUT_COMMAND: &str = "ketamine-optout";
pub const OPT_IN_COMMAND: &str = "ketamine-optin";
pub const PRIVACY_COMMAND: &str = "ketamine-privacy";
pub const STATS_COMMAND: &str = "ketamine-stats";
pub const FORGET_COMMAND: &str = "ketamine-forget-me";
/// The message context-menu command.
pub const SEND_RESOURCES: &str = "Send crisis resources";
/// Custom ids of the buttons: the alert's id or the member's follows the prefix.
const ACKNOWLEDGE: &str = "kib-ack:";
pub const OPT_OUT_BUTTON: &str = "kib-optout:";

/// The moderator and member commands.
pub fn commands() -> Vec<CreateCommand> {
    let sub =
        |name: &str, description: &str| CreateCommandOption::new(CommandOptionType::SubCommand, name, description);
    let string = |name: &str, description: &str| {
        CreateCommandOption::new(CommandOptionType::String, name, description).required(true)
    };
    let channel = |required: bool| {
        CreateCommandOption::new(CommandOptionType::Channel, "channel", "One channel; leave empty for the server")
            .required(required)
    };
    let minutes =
        || CreateCommandOption::new(CommandOptionType::Integer, "minutes", "Minutes").required(true).min_int_value(1);
    let settings = CreateCommand::new(SETTINGS_COMMAND)
        .description("Choose where the bot speaks and who is alerted")
        .default_member_permissions(Permissions::MANAGE_GUILD)
        .dm_permission(false)
        .add_option(sub("show", "Show this server's settings"))
        .add_option(
            sub("faq-replies", "Automatic FAQ replies on or off (commands always answer)")
                .add_sub_option(CreateCommandOption::new(CommandOptionType::Boolean, "on", "On or off").required(true))
                .add_sub_option(channel(false)),
        )
        .add_option(
            sub("crisis-replies", "Public crisis replies, or staff alerts only, in a channel")
                .add_sub_option(
                    string("mode", "public or alert-only")
                        .add_string_choice("public", "public")
                        .add_string_choice("alert-only", "alert-only"),
                )
                .add_sub_option(channel(false)),
        )
        .add_option(
            sub("alerts", "Send staff alerts to a channel, with a role for reminders")
                .add_sub_option(channel(true).description("The staff channel"))
                .add_sub_option(CreateCommandOption::new(CommandOptionType::Role, "role", "Pinged by reminders")),
        )
        .add_option(sub("alerts-off", "Stop staff alerts"))
        .add_option(sub("realert-minutes", "Minutes before one reminder").add_sub_option(minutes()))
        .add_option(
            sub("region", "The crisis lines when a member's locale says nothing")
                .add_sub_option(string("region", "A region id such as gb")),
        )
        .add_option(
            sub("add-line", "Add a local resource (200 characters, https links)")
                .add_sub_option(string("text", "The line")),
        )
        .add_option(
            sub("remove-line", "Remove a local resource").add_sub_option(
                CreateCommandOption::new(CommandOptionType::Integer, "number", "As shown by show")
                    .required(true)
                    .min_int_value(1),
            ),
        )
        .add_option(
            sub("allow-phrase", "A phrase that never triggers a crisis reply here")
                .add_sub_option(
                    string("action", "add or remove")
                        .add_string_choice("add", "add")
                        .add_string_choice("remove", "remove"),
                )
                .add_sub_option(string("phrase", "Such as a game's title")),
        )
        .add_option(
            sub("faq-cooldown", "Minutes between FAQ replies on one topic in a channel").add_sub_option(minutes()),
        );
    let everywhere = |name: &str, description: &str| CreateCommand::new(name).description(description);
    let stats = CreateCommand::new(STATS_COMMAND)
        .description("Replies and alerts over 7 and 30 days (no names, no text)")
        .default_member_permissions(Permissions::MANAGE_GUILD)
        .dm_permission(false);
    let send_resources = CreateCommand::new(SEND_RESOURCES)
        .kind(CommandType::Message)
        .default_member_permissions(Permissions::MANAGE_MESSAGES)
        .dm_permission(false);
    vec![
        settings,
        stats,
        send_resources,
        everywhere(OPT_OUT_COMMAND, "Stop automatic replies to you, everywhere"),
        everywhere(OPT_IN_COMMAND, "Receive automatic replies again"),
        everywhere(PRIVACY_COMMAND, "What the bot reads and keeps"),
        everywhere(FORGET_COMMAND, "Delete your opt-out and your id from stored alerts"),
    ]
}

/// What a `/ketamine-settings` subcommand asks for: `None` for `show`.
fn change(options: &[ResolvedOption<'_>]) -> Result<Option<Change>, String> {
    let Some(ResolvedOption { name, value: ResolvedValue::SubCommand(options), .. }) = options.first() else {
        return Err("choose a setting".into());
    };
    let string = |key: &str| {
        options.iter().find(|o| o.name == key).and_then(|o| match o.value {
            ResolvedValue::String(value) => Some(value.to_owned()),
            _ => None,
        })
    };
    let integer = |key: &str| {
        options.iter().find(|o| o.name == key).and_then(|o| match o.value {
            ResolvedValue::Integer(value) => u32::try_from(value).ok(),
            _ => None,
        })
    };
    // Discord sends the channel and role objects along; their ids are all the settings keep.
    let channel = options.iter().find_map(|o| match (o.name, &o.value) {
        ("channel", ResolvedValue::Channel(channel)) => Some(channel.id.to_string()),
        ("channel", ResolvedValue::Unresolved(Unresolved::Channel(id))) => Some(id.to_string()),
        _ => None,
    });
    let role = options.iter().find_map(|o| match (o.name, &o.value) {
        ("role", ResolvedValue::Role(role)) => Some(role.id.to_string()),
        ("role", ResolvedValue::Unresolved(Unresolved::RoleId(id))) => Some(id.to_string()),
        _ => None,
    });
    let missing = || format!("`{name}` needs its options");
    Ok(Some(match *name {
        "show" => return Ok(None),
        "faq-replies" => {
            let on = options.iter().any(|o| o.name == "on" && matches!(o.value, ResolvedValue::Boolean(true)));
            Change::FaqReplies { on, channel }
        }
        "crisis-replies" => {
            Change::CrisisReplies { alert_only: string("mode").as_deref() == Some("alert-only"), channel }
        }
        "alerts" => {
            Change::Alerts(Some(AlertTarget { channel: channel.ok_or_else(missing)?, role, users: Vec::new() }))
        }
        "alerts-off" => Change::Alerts(None),
        "realert-minutes" => Change::RealertMinutes(integer("minutes").ok_or_else(missing)?),
        "region" => Change::Region(string("region").ok_or_else(missing)?),
        "add-line" => Change::AddLine(string("text").ok_or_else(missing)?),
        "remove-line" => Change::RemoveLine(integer("number").ok_or_else(missing)? as usize),
        "allow-phrase" => Change::AllowPhrase {
            add: string("action").as_deref() != Some("remove"),
            phrase: string("phrase").ok_or_else(missing)?,
        },
        "faq-cooldown" => Change::FaqCooldown(integer("minutes").ok_or_else(missing)?),
        other => return Err(format!("no setting {other:?}")),
    }))
}

fn channel_mention(id: &str) -> String {
    format!("<#{id}>")
}

fn role_mention(id: &str) -> String {
    format!("<@&{id}>")
}

/// Answers `/ketamine-settings` ephemerally and logs a change to the staff channel.
pub async fn settings_command(ctx: &Context, command: &CommandInteraction, toolkit: &Toolkit) {
    let (bot, store) = (&toolkit.bot.get(), toolkit.store.as_ref());
    let Some(guild) = command.guild_id else { return };
    let server = guild.to_string();
    let answer = match (store.settings(&server), change(&command.data.options())) {
        (Err(error), _) => {
            tracing::error!(%error, "cannot read settings");
            "The bot cannot read this server's settings right now; try again.".to_owned()
        }
        (_, Err(problem)) => problem,
        (Ok(settings), Ok(None)) => settings.describe(channel_mention, role_mention).join("\n"),
        (Ok(settings), Ok(Some(change))) => match settings.apply(change, bot.catalog(), bot.detectors()) {
            Err(refusal) => format!("Not changed: {refusal}."),
            Ok(next) => match store.save_settings(&server, &next) {
                Err(error) => {
                    tracing::error!(%error, "cannot save settings");
                    "Not changed: the bot cannot save settings right now; try again.".to_owned()
                }
                Ok(()) => {
                    tracing::info!(guild = %guild, moderator = %command.user.id, "settings changed");
                    let summary = next.describe(channel_mention, role_mention).join("\n");
                    let mut answer = format!("Saved.\n{summary}");
                    if let Some(target) = &next.alerts.or(settings.alerts) {
                        let log =
                            toolkit.notice(&format!("<@{}> changed the bot's settings:\n{summary}", command.user.id));
                        let message = CreateMessage::new().content(log).allowed_mentions(no_pings());
                        if post(ctx, &target.channel, message).await.is_none() {
                            // Alerts sent there would be lost: say so now, not at the first crisis.
                            answer.push_str(&format!(
                                "\nWarning: the bot cannot post in {}; give it View Channel and Send Messages \
                                 there, or staff alerts will not arrive.",
                                channel_mention(&target.channel)
                            ));
                        }
                    }
                    answer
                }
            },
        },
    };
    respond_privately(ctx, command, toolkit, &answer).await;
}

/// `/ketamine-optout`, `/ketamine-optin`, `/ketamine-forget-me`, `/ketamine-privacy` and `/ketamine-stats`,
/// answered ephemerally.
pub async fn member_command(ctx: &Context, command: &CommandInteraction, toolkit: &Toolkit) {
    let (store, clock) = (toolkit.store.as_ref(), &toolkit.clock);
    let member = command.user.id.to_string();
    let answer = match command.data.name.as_str() {
        FORGET_COMMAND => match store.forget(&member) {
            Ok(()) => "Done: your opt-out and your id in stored alerts are deleted.".to_owned(),
            Err(error) => {
                tracing::error!(%error, "cannot forget a member");
                "The bot cannot do that right now; try again.".to_owned()
            }
        },
        STATS_COMMAND => {
            let (Some(guild), today) = (command.guild_id, clock.now() / 86_400) else { return };
            let period = |days: u32| {
                let since = (today - i64::from(days) + 1) * 86_400;
                store.stats(&guild.to_string(), today - i64::from(days) + 1, today, since).map(|stats| (days, stats))
            };
            match period(7).and_then(|week| Ok(vec![week, period(30)?])) {
                Ok(periods) => describe_stats(&periods),
                Err(error) => {
                    tracing::error!(%error, "cannot read statistics");
                    "The bot cannot read its statistics right now; try again.".to_owned()
                }
            }
        }
        OPT_OUT_COMMAND | OPT_IN_COMMAND => {
            let out = command.data.name == OPT_OUT_COMMAND;
            match store.set_opted_out(&member, out, clock.now()) {
                Ok(()) if out => "Done: the bot will not reply to you automatically anywhere. Commands still \
                                  answer; staff alerts follow each server's policy. `/ketamine-optin` undoes this."
                    .to_owned(),
                Ok(()) => "Done: automatic replies to you are back on.".to_owned(),
                Err(error) => {
                    tracing::error!(%error, "cannot save an opt-out");
                    "The bot cannot save that right now; try again.".to_owned()
                }
            }
        }
        _ => PRIVACY.to_owned(),
    };
    respond_privately(ctx, command, toolkit, &answer).await;
}

/// Answers only the member who asked: the notice as the response, and as private followups if it is longer than
/// one message (a `show` with many long phrases).
async fn respond_privately(ctx: &Context, command: &CommandInteraction, toolkit: &Toolkit, text: &str) {
    let mut parts = super::render::messages(&toolkit.bot.get().notice(text)).into_iter();
    let first = parts.next().expect("a reply renders to at least one message");
    let message = CreateInteractionResponseMessage::new().content(first).ephemeral(true).allowed_mentions(no_pings());
    if let Err(error) = command.create_response(&ctx.http, CreateInteractionResponse::Message(message)).await {
        tracing::error!(interaction = %command.id, %error, "could not answer a command");
        return;
    }
    for part in parts {
        let followup =
            CreateInteractionResponseFollowup::new().content(part).ephemeral(true).allowed_mentions(no_pings());
        if let Err(error) = command.create_followup(&ctx.http, followup).await {
            tracing::error!(interaction = %command.id, %error, "could not send a followup");
            return;
        }
    }
}

/// "Send crisis resources" on a message: the resources block for the server's region as a reply to it (no
/// ping), a note to staff of who sent it, and a refusal for a second send to the same member within an hour.
pub async fn send_resources(ctx: &Context, command: &CommandInteraction, toolkit: &Toolkit) {
    let (bot, store, clock) = (&toolkit.bot.get(), toolkit.store.as_ref(), &toolkit.clock);
    let (Some(guild), Some(ResolvedTarget::Message(target))) = (command.guild_id, command.data.target()) else {
        return;
    };
    let (server, member, now) = (guild.to_string(), target.author.id.to_string(), clock.now());
    let settings = store.settings(&server).unwrap_or_default();
    let last = store.last_resources_sent(&server, &member).unwrap_or_else(|error| {
        tracing::error!(%error, "cannot read when resources were last sent");
        None
    });
    if !resources_allowed(last, now) {
        let refusal = format!("<@{member}> was sent crisis resources less than an hour ago; not sent again.");
        return respond_privately(ctx, command, toolkit, &refusal).await;
    }
    let audience = Audience { locale: None, command_prefix: "/", server: Some(&settings) };
    let reply = bot.command(&bot.catalog().crisis.command, None, audience);
    let reference = super::reply_reference(target.channel_id, target.id, Some(guild));
    let mut sent = true;
    for (index, text) in super::render::messages(&reply).into_iter().enumerate() {
        let mut message = CreateMessage::new().content(text).allowed_mentions(no_pings());
        if index == 0 {
            message = message.reference_message(reference.clone());
        }
        sent &= post(ctx, &target.channel_id.to_string(), message).await.is_some();
    }
    if !sent {
        return respond_privately(ctx, command, toolkit, "The resources could not be sent; try again.").await;
    }
    if let Err(error) = store.record_resources_sent(&server, &member, now) {
        tracing::error!(%error, "cannot record resources sent");
    }
    tracing::info!(guild = %guild, moderator = %command.user.id, "crisis resources sent");
    if let Some(target_channel) = settings.alerts.as_ref().map(|alerts| alerts.channel.clone()) {
        let note = toolkit.notice(&format!(
            "<@{}> sent crisis resources to <@{member}> in <#{}>.",
            command.user.id, target.channel_id
        ));
        post(ctx, &target_channel, CreateMessage::new().content(note).allowed_mentions(no_pings())).await;
    }
    respond_privately(ctx, command, toolkit, "Sent.").await;
}

/// Posts a message to a channel, retried like an urgent reply; false when it was given up.
async fn post(ctx: &Context, channel: &str, message: CreateMessage) -> Option<String> {
    let id = channel.parse::<u64>().ok().filter(|id| *id != 0).map(ChannelId::new)?;
    let place = Place { platform: "discord", channel: channel.to_owned(), person: "-".into(), message: "-".into() };
    let mut retry = Retry::urgent(&place);
    loop {
        match id.send_message(&ctx.http, message.clone()).await {
            Ok(sent) => return Some(sent.id.to_string()),
            Err(error) if retry.again(super::send_failure(&error).0).await => {}
            Err(_) => return None,
        }
    }
}

/// Where a crisis was seen, for the staff alert.
pub struct Seen<'a> {
    pub guild: GuildId,
    pub place: &'a Place,
}

/// Posts a staff alert (level, category, channel, jump link, member as a mention that does not ping, time; never
/// the text) with an Acknowledge button, and records it.
pub async fn alert(ctx: &Context, toolkit: &Toolkit, settings: &ServerSettings, seen: Seen<'_>, facts: AlertFacts) {
    let (store, clock) = (toolkit.store.as_ref(), &toolkit.clock);
    let Some(target) = &settings.alerts else { return };
    let (guild, place) = (seen.guild.to_string(), seen.place);
    let now = clock.now();
    let id = record_alert(store, &guild, place, facts, &target.channel, now).unwrap_or_else(|error| {
        tracing::error!(%error, "cannot record a staff alert; posting it anyway");
        0
    });
    let record = AlertRecord {
        id,
        server: guild,
        channel: place.channel.clone(),
        message: place.message.clone(),
        member: Some(place.person.clone()),
        level: facts.level,
        category: facts.category,
        created_at: now,
        alert_channel: target.channel.clone(),
        alert_message: None,
        acknowledged_by: None,
        acknowledged_at: None,
        reminded_at: None,
    };
    let button = CreateButton::new(format!("{ACKNOWLEDGE}{id}")).label("Acknowledge").style(ButtonStyle::Primary);
    let message = CreateMessage::new()
        .content(toolkit.notice(&alert_text(&record)))
        .components(vec![CreateActionRow::Buttons(vec![button])])
        .allowed_mentions(no_pings());
    match post(ctx, &target.channel, message).await {
        Some(posted) => {
            if let Err(error) = store.set_alert_message(id, &posted) {
                tracing::warn!(%error, "cannot record the alert's message");
            }
            tracing::info!(alert = id, level = facts.level.as_str(), "staff alerted");
        }
        None => tracing::error!(alert = id, channel = target.channel, "gave up a staff alert"),
    }
}

/// An alert as staff read it.
fn alert_text(record: &AlertRecord) -> String {
    let member =
        record.member.as_deref().map_or("a member who asked to be forgotten".to_owned(), |id| format!("<@{id}>"));
    let category = record.category.map_or(String::new(), |category| format!(" ({})", category.as_str()));
    format!(
        "**Possible crisis: {level}**{category}\n{member} in <#{channel}>: https://discord.com/channels/{server}/{channel}/{message}\n<t:{at}:f>. The bot never copies what was written; open the link to read it.",
        level = record.level.as_str(),
        channel = record.channel,
        server = record.server,
        message = record.message,
        at = record.created_at,
    )
}

/// Handles the Acknowledge and opt-out buttons.
pub async fn button(ctx: &Context, component: &ComponentInteraction, toolkit: &Toolkit) {
    let (store, clock) = (toolkit.store.as_ref(), &toolkit.clock);
    let private = |text: &str| private(toolkit, text);
    let custom_id = component.data.custom_id.as_str();
    let response = if let Some(id) = custom_id.strip_prefix(ACKNOWLEDGE).and_then(|id| id.parse::<i64>().ok()) {
        acknowledge(component, toolkit, id)
    } else if let Some(member) = custom_id.strip_prefix(OPT_OUT_BUTTON) {
        if member != component.user.id.to_string() {
            private("Only the member this reply was for can use this button.")
        } else if let Err(error) = store.set_opted_out(member, true, clock.now()) {
            tracing::error!(%error, "cannot save an opt-out");
            private("The bot cannot save that right now; try again.")
        } else {
            private("Done: the bot will not reply to you automatically anywhere. `/ketamine-optin` undoes this.")
        }
    } else {
        return;
    };
    if let Err(error) = component.create_response(&ctx.http, response).await {
        tracing::error!(interaction = %component.id, %error, "could not answer a button");
    }
}

fn private(toolkit: &Toolkit, text: &str) -> CreateInteractionResponse {
    CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new()
            .content(toolkit.notice(text))
            .ephemeral(true)
            .allowed_mentions(no_pings()),
    )
}

/// Acknowledges an alert for a member who may manage messages or holds the alert role; others are refused.
fn acknowledge(component: &ComponentInteraction, toolkit: &Toolkit, id: i64) -> CreateInteractionResponse {
    let (store, clock) = (toolkit.store.as_ref(), &toolkit.clock);
    let private = |text: &str| private(toolkit, text);
    let record = match store.alert(id) {
        Ok(Some(record)) => record,
        Ok(None) => return private("This alert is no longer kept (alerts are deleted after 30 days)."),
        Err(error) => {
            tracing::error!(%error, "cannot read an alert");
            return private("The bot cannot read this alert right now; try again.");
        }
    };
    let alert_role =
        store.settings(&record.server).ok().and_then(|settings| settings.alerts).and_then(|target| target.role);
    let member = component.member.as_ref();
    let manages = member.and_then(|m| m.permissions).is_some_and(|p| p.contains(Permissions::MANAGE_MESSAGES));
    let has_role = member.is_some_and(|m| m.roles.iter().any(|role| Some(role.to_string()) == alert_role));
    if !(manages || has_role) {
        return private("Only members who can manage messages, or hold the alert role, can acknowledge alerts.");
    }
    let (by, at) = (component.user.id.to_string(), clock.now());
    match store.acknowledge(id, &by, at) {
        Ok(true) => {
            tracing::info!(alert = id, "alert acknowledged");
            let text = toolkit.notice(&format!("{}\nAcknowledged by <@{by}> <t:{at}:f>.", alert_text(&record)));
            CreateInteractionResponse::UpdateMessage(
                CreateInteractionResponseMessage::new().content(text).components(vec![]).allowed_mentions(no_pings()),
            )
        }
        Ok(false) => private("Someone has acknowledged this alert already."),
        Err(error) => {
            tracing::error!(%error, "cannot acknowledge an alert");
            private("The bot cannot save that right now; try again.")
        }
    }
}

/// Posts the one reminder for each alert nobody acknowledged within its server's `realert-minutes`, pinging the
/// server's alert role: the only ping the bot sends, with allowed mentions naming that role and nothing else.
pub async fn remind(ctx: &Context, toolkit: &Toolkit, shards: Shards, last_prune: &mut i64) -> Result<(), StoreError> {
    // Discord's alerts only (a Matrix adapter sharing the database reminds about its own), and of those the
    // servers on this process's shards.
    let ours = |record: &AlertRecord| {
        record.alert_channel.parse::<u64>().is_ok() && record.server.parse().is_ok_and(|guild| shards.has_guild(guild))
    };
    for (record, target) in alerts_to_remind(toolkit.store.as_ref(), toolkit.clock.now(), ours, last_prune)? {
        let link = format!("https://discord.com/channels/{}/{}/{}", record.server, record.channel, record.message);
        let (content, mentions) = match target.role.as_deref().and_then(|role| role.parse::<u64>().ok()) {
            Some(role) => (
                format!("<@&{role}> an alert from <t:{}:R> is not acknowledged yet: {link}", record.created_at),
                CreateAllowedMentions::new().roles(vec![RoleId::new(role)]).replied_user(false),
            ),
            None => (format!("An alert from <t:{}:R> is not acknowledged yet: {link}", record.created_at), no_pings()),
        };
        let message = CreateMessage::new().content(toolkit.notice(&content)).allowed_mentions(mentions);
        if post(ctx, &target.channel, message).await.is_none() {
            tracing::error!(alert = record.id, "gave up a reminder");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_names_place_level_and_time_but_never_text() {
        let record = AlertRecord {
            id: 1,
            server: "5".into(),
            channel: "6".into(),
            message: "7".into(),
            member: Some("8".into()),
            level: crate::CrisisLevel::SelfRisk,
            category: Some(crate::safety::Category::Plan),
            created_at: 1_700_000_000,
            alert_channel: "9".into(),
            alert_message: None,
            acknowledged_by: None,
            acknowledged_at: None,
            reminded_at: None,
        };
        let text = alert_text(&record);
        assert!(text.contains("self") && text.contains("(plan)") && text.contains("<@8>") && text.contains("<#6>"));
        assert!(text.contains("https://discord.com/channels/5/6/7") && text.contains("<t:1700000000:f>"));
        let forgotten = alert_text(&AlertRecord { member: None, ..record });
        assert!(!forgotten.contains("<@8>"));
    }
}
