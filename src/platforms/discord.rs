//! The Discord adapter (serenity): slash commands, FAQ auto-replies and crisis replies.
//!
//! It translates Discord events into [`Incoming`] and renders [`crate::Reply`] into messages within Discord's
//! limits ([`render`]); what to answer is the core's decision. Every message, interaction response and followup
//! carries empty allowed mentions, so nothing the bot sends pings anyone.

pub mod render;
pub mod staff;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serenity::all::{
    ButtonStyle, ChannelId, ClientBuilder, Command, CommandInteraction, CommandOptionType, Context, CreateActionRow,
    CreateAllowedMentions, CreateAutocompleteResponse, CreateButton, CreateCommand, CreateCommandOption,
    CreateInteractionResponse, CreateInteractionResponseFollowup, CreateInteractionResponseMessage, CreateMessage,
    EventHandler, GatewayIntents, Guild, GuildId, HttpBuilder, Interaction, Message, MessageId, MessageReference,
    MessageReferenceKind, MessageUpdateEvent, Ready, ResolvedValue, ResumedEvent, User, UserId,
};
use serenity::async_trait;
use serenity::gateway::{ConnectionStage, ShardStageUpdateEvent};

use super::metrics::{Metrics, METRICS};
use super::shared::{count_reply, decide_chat, opted_out, server_settings, InFlight, Retry};
use crate::config::{DiscordSettings, Shards};
use crate::cooldown::{Cooldowns, Place};
use crate::delivery::SendFailure;
use crate::state::StoreError;
use crate::{Audience, Bot, Catalog, LiveBot, Reply};

/// Names of the options the adapter adds to commands.
const PRIVATE_OPTION: &str = "private";
const TOPIC_OPTION: &str = "topic";
const REGION_OPTION: &str = "region";

#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error(
        "Discord rejected the bot token ({0}). Check DISCORD_TOKEN (or the file named by DISCORD_TOKEN_FILE): \
         it is the token from the Bot page of your application in the Developer Portal"
    )]
    BadToken(&'static str),
    #[error(
        "Discord refused the Message Content intent (gateway close 4014). Either enable \"Message Content Intent\" \
         under Bot > Privileged Gateway Intents in the Developer Portal, or run with --commands-only to keep slash \
         commands working without chat replies"
    )]
    DisallowedIntents,
    #[error(
        "another ketamine-info-bot is running shard {shard} of this Discord application with the same state \
         database; two copies would answer every message twice (give each process its own --shards)"
    )]
    AlreadyRunning { shard: u32 },
    #[error("cannot open the state database")]
    State(#[source] StoreError),
    #[error("cannot read the application from Discord")]
    Application(#[source] serenity::Error),
    #[error("Discord")]
    Client(#[source] serenity::Error),
}

/// Discord's JSON error codes that mean the replied-to message cannot be referenced: unknown message, invalid
/// form body (the reference), and no permission to read message history.
const REFERENCE_REFUSED: [isize; 3] = [10008, 50035, 160002];

/// What one failed request means for its retry, and whether Discord refused the message reference.
fn send_failure(error: &serenity::Error) -> (SendFailure, bool) {
    use serenity::http::HttpError;
    let reason = error.to_string();
    match error {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => {
            let status = response.status_code.as_u16();
            let reference_refused = status == 400 && REFERENCE_REFUSED.contains(&response.error.code);
            let reason = format!("HTTP {status}, Discord code {}", response.error.code);
            // With serenity's own rate limiter a 429 never gets here: it waits out `retry_after` itself. Behind a
            // proxy that passes a 429 on, the wait is not known and the backoff applies.
            let failure = if status == 429 || status >= 500 {
                SendFailure::Transient { reason, retry_after: None }
            } else {
                SendFailure::Permanent { reason }
            };
            (failure, reference_refused)
        }
        serenity::Error::Http(HttpError::Request(_)) | serenity::Error::Io(_) => {
            (SendFailure::Transient { reason, retry_after: None }, false)
        }
        _ => (SendFailure::Permanent { reason }, false),
    }
}

/// Runs the bot on Discord until `shutdown` completes, then lets replies in flight finish.
pub async fn run(
    bot: Arc<LiveBot>,
    settings: DiscordSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DiscordError> {
    let mut http = HttpBuilder::new(settings.token.expose());
    if let Some(url) = &settings.api_url {
        // A proxy such as twilight-http-proxy owns rate limiting; serenity's own limiter would bypass it.
        http = http.proxy(url.as_str()).ratelimiter_disabled(true);
    }
    let http = http.build();
    let application = http.get_current_application_info().await.map_err(|error| match &error {
        serenity::Error::Http(http) if http.status_code().is_some_and(|s| s.as_u16() == 401) => {
            DiscordError::BadToken("HTTP 401")
        }
        _ => DiscordError::Application(error),
    })?;
    http.set_application_id(application.id);
    let store = crate::state::open(&settings.state).map_err(DiscordError::State)?;
    // Each shard is claimed for as long as this process runs it.
    let mut claims = Vec::new();
    for shard in settings.shards.ids() {
        match store.claim(&format!("discord-{}-shard-{shard}", application.id)).map_err(DiscordError::State)? {
            Some(claim) => claims.push(claim),
            None => return Err(DiscordError::AlreadyRunning { shard }),
        }
    }

    let mut intents = GatewayIntents::GUILDS;
    if !settings.commands_only {
        intents |= GatewayIntents::GUILD_MESSAGES | GatewayIntents::DIRECT_MESSAGES | GatewayIntents::MESSAGE_CONTENT;
    }
    let in_flight = InFlight::new();
    let handler = Handler {
        bot: Arc::clone(&bot),
        registry: Arc::new(Registry {
            owner: settings.shards.first == 0,
            guild: settings.guild_id.map(|id| GuildId::new(id.get())),
            registered: tokio::sync::Mutex::new(None),
        }),
        cooldowns: Mutex::new(Cooldowns::new(bot.get().cooldowns())),
        me: OnceLock::new(),
        guild_locales: RwLock::new(HashMap::new()),
        in_flight: in_flight.clone(),
        toolkit: staff::Toolkit { bot: Arc::clone(&bot), store, clock: settings.clock.clone() },
        reminders: OnceLock::new(),
        shards: settings.shards,
        connected: Mutex::new(std::collections::HashSet::new()),
    };
    let mut client =
        ClientBuilder::new_with_http(http, intents).event_handler(handler).await.map_err(DiscordError::Client)?;
    let shards = Arc::clone(&client.shard_manager);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        shards.shutdown_all().await;
    });
    let shards = settings.shards;
    tracing::info!(application = %application.id, commands_only = settings.commands_only, %shards, "connecting to Discord");
    // serenity's range is inclusive at both ends, despite the type.
    let result = client.start_shard_range(shards.first..shards.last, shards.total).await;
    in_flight.drain().await;
    drop(claims);
    result.map_err(|error| match error {
        serenity::Error::Gateway(serenity::gateway::GatewayError::DisallowedGatewayIntents) => {
            DiscordError::DisallowedIntents
        }
        serenity::Error::Gateway(serenity::gateway::GatewayError::InvalidAuthentication) => {
            DiscordError::BadToken("gateway close 4004")
        }
        other => DiscordError::Client(other),
    })
}

/// The slash commands for the content: one per topic, the topic picker and the crisis resources.
pub fn commands(catalog: &Catalog) -> Vec<CreateCommand> {
    let private = || {
        CreateCommandOption::new(CommandOptionType::Boolean, PRIVATE_OPTION, "Only you see the answer").required(false)
    };
    let topics = catalog
        .topics
        .iter()
        .map(|topic| CreateCommand::new(&topic.command).description(&topic.description).add_option(private()));
    let picker = CreateCommand::new(&catalog.help.command)
        .description(&catalog.help.description)
        .add_option(
            CreateCommandOption::new(
                CommandOptionType::String,
                TOPIC_OPTION,
                "The topic; leave empty to list them all",
            )
            .set_autocomplete(true),
        )
        .add_option(private());
    let regions = catalog.crisis.regions.iter().take(render::MAX_AUTOCOMPLETE_CHOICES).fold(
        CreateCommandOption::new(CommandOptionType::String, REGION_OPTION, "Where you are; by default your locale"),
        |option, region| option.add_string_choice(&region.name, &region.id),
    );
    let resources = CreateCommand::new(&catalog.crisis.command)
        .description(&catalog.crisis.description)
        .add_option(regions)
        .add_option(private());
    topics.chain([picker, resources]).collect()
}

/// Allowed mentions that allow nothing: no `@everyone`, roles, users, nor the author of a replied-to message.
fn no_pings() -> CreateAllowedMentions {
    CreateAllowedMentions::new().replied_user(false)
}

/// The slash commands as last registered, so that a content reload registers them again only when their
/// definitions changed (one bulk overwrite).
struct Registry {
    /// Whether this process registers at all: commands belong to the application, not to a shard, so only the
    /// process that runs shard 0 registers them.
    owner: bool,
    /// Commands go to this server only (instant, for testing) instead of globally.
    guild: Option<GuildId>,
    /// The definitions last registered, as Discord receives them.
    registered: tokio::sync::Mutex<Option<String>>,
}

impl Registry {
    /// Registers the commands of `bot`'s content, unless exactly these are registered already.
    async fn sync(&self, http: &serenity::http::Http, bot: &Bot) {
        let mut commands = commands(bot.catalog());
        commands.extend(staff::commands());
        let definitions = serde_json::to_string(&commands).unwrap_or_default();
        let mut registered = self.registered.lock().await;
        if !self.owner || registered.as_deref() == Some(definitions.as_str()) {
            return;
        }
        let count = commands.len();
        let result = match self.guild {
            Some(guild) => guild.set_commands(http, commands).await,
            None => Command::set_global_commands(http, commands).await,
        };
        match result {
            Ok(_) => {
                tracing::info!(count, guild = ?self.guild.map(|g| g.get()), "registered commands");
                *registered = Some(definitions);
            }
            Err(error) => tracing::error!(%error, "could not register commands"),
        }
    }
}

struct Handler {
    bot: Arc<LiveBot>,
    registry: Arc<Registry>,
    cooldowns: Mutex<Cooldowns>,
    me: OnceLock<UserId>,
    /// Each server's preferred locale, which picks crisis lines for chat messages.
    guild_locales: RwLock<HashMap<GuildId, String>>,
    in_flight: InFlight,
    toolkit: staff::Toolkit,
    /// The task that posts reminders, started with the first READY.
    reminders: OnceLock<tokio::task::JoinHandle<()>>,
    /// The shards this process runs: it reminds staff about its own servers' alerts only.
    shards: Shards,
    /// Those of them connected now: the process is healthy when all are.
    connected: Mutex<std::collections::HashSet<u32>>,
}

/// How often unacknowledged alerts are checked for their reminder.
const REMINDER_TICK: std::time::Duration = std::time::Duration::from_secs(2);

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let _ = self.me.set(ready.user.id);
        self.shard_connected(ctx.shard_id.0, true);
        let (toolkit, reminder_ctx, shards) = (self.toolkit.clone(), ctx.clone(), self.shards);
        let (live, registry) = (Arc::clone(&self.bot), Arc::clone(&self.registry));
        self.reminders.get_or_init(|| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(REMINDER_TICK);
                let mut generation = live.generation();
                let mut last_prune = 0;
                loop {
                    tick.tick().await;
                    if live.generation() != generation {
                        generation = live.generation();
                        registry.sync(&reminder_ctx.http, &live.get()).await;
                    }
                    if let Err(error) = staff::remind(&reminder_ctx, &toolkit, shards, &mut last_prune).await {
                        tracing::error!(%error, "cannot check alerts for reminders");
                    }
                }
            })
        });
        self.registry.sync(&ctx.http, &self.bot.get()).await;
    }

    async fn resume(&self, ctx: Context, _event: ResumedEvent) {
        Metrics::count(&METRICS.reconnects, "discord");
        self.shard_connected(ctx.shard_id.0, true);
    }

    async fn shard_stage_update(&self, _ctx: Context, event: ShardStageUpdateEvent) {
        self.shard_connected(event.shard_id.0, event.new == ConnectionStage::Connected);
    }

    async fn guild_create(&self, _ctx: Context, guild: Guild, _is_new: Option<bool>) {
        self.guild_locales.write().expect("not poisoned").insert(guild.id, guild.preferred_locale);
    }

    async fn message(&self, ctx: Context, message: Message) {
        let Some(_permit) = self.in_flight.enter().await else { return };
        let written = Written {
            received: std::time::Instant::now(),
            author: &message.author,
            from_webhook: message.webhook_id.is_some(),
            text: &message.content,
            channel: message.channel_id,
            message: message.id,
            guild: message.guild_id,
        };
        self.answer_chat(&ctx, written, false).await;
    }

    /// An edited message is assessed again: answered when its new text raises its crisis level.
    async fn message_update(
        &self,
        ctx: Context,
        _old: Option<Message>,
        _new: Option<Message>,
        event: MessageUpdateEvent,
    ) {
        let Some(_permit) = self.in_flight.enter().await else { return };
        // Updates that carry no text (an embed resolved, a pin) change nothing the bot assesses.
        let (Some(author), Some(content)) = (&event.author, &event.content) else { return };
        let written = Written {
            received: std::time::Instant::now(),
            author,
            from_webhook: event.webhook_id.flatten().is_some(),
            text: content,
            channel: event.channel_id,
            message: event.id,
            guild: event.guild_id,
        };
        self.answer_chat(&ctx, written, true).await;
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let Some(_permit) = self.in_flight.enter().await else { return };
        match interaction {
            Interaction::Command(command) => match command.data.name.as_str() {
                staff::SETTINGS_COMMAND => staff::settings_command(&ctx, &command, &self.toolkit).await,
                staff::OPT_OUT_COMMAND
                | staff::OPT_IN_COMMAND
                | staff::PRIVACY_COMMAND
                | staff::STATS_COMMAND
                | staff::FORGET_COMMAND => staff::member_command(&ctx, &command, &self.toolkit).await,
                staff::SEND_RESOURCES => staff::send_resources(&ctx, &command, &self.toolkit).await,
                _ => self.answer_command(&ctx, &command).await,
            },
            Interaction::Autocomplete(autocomplete) => self.autocomplete(&ctx, &autocomplete).await,
            Interaction::Component(component) => staff::button(&ctx, &component, &self.toolkit).await,
            _ => {}
        }
    }
}

/// A chat message or the new text of an edited one, as the handlers need it.
struct Written<'a> {
    /// When the event arrived, for the reply latency.
    received: std::time::Instant,
    author: &'a User,
    from_webhook: bool,
    text: &'a str,
    channel: ChannelId,
    message: MessageId,
    guild: Option<GuildId>,
}

/// A reference that makes the bot's message a reply to another, and that Discord drops instead of refusing the
/// reply when that message is gone.
pub(crate) fn reply_reference(channel: ChannelId, message: MessageId, guild: Option<GuildId>) -> MessageReference {
    let mut reference = MessageReference::new(MessageReferenceKind::Default, channel).message_id(message);
    reference.guild_id = guild;
    reference.fail_if_not_exists = Some(false);
    reference
}

impl Handler {
    fn shard_connected(&self, shard: u32, connected: bool) {
        let mut shards = self.connected.lock().expect("not poisoned");
        if connected {
            shards.insert(shard);
        } else {
            shards.remove(&shard);
        }
        METRICS.set_connected("discord", self.shards.ids().all(|shard| shards.contains(&shard)));
    }

    /// Answers a chat message or edit (the cooldowns decide), as a reply to it; never to bots, webhooks or itself.
    async fn answer_chat(&self, ctx: &Context, written: Written<'_>, edit: bool) {
        let author = written.author;
        if author.bot || written.from_webhook || self.me.get() == Some(&author.id) {
            return;
        }
        let locale = written.guild.and_then(|g| self.guild_locales.read().expect("not poisoned").get(&g).cloned());
        let store = self.toolkit.store.as_ref();
        let settings = written.guild.map(|guild| server_settings(store, &guild.to_string()));
        let opted_out = opted_out(store, &author.id.to_string());
        let audience = Audience { locale: locale.as_deref(), command_prefix: "/", server: settings.as_ref() };
        let (channel, message) = (written.channel, written.message);
        let place = Place {
            platform: "discord",
            channel: channel.to_string(),
            person: author.id.to_string(),
            message: message.to_string(),
        };
        let bot = self.bot.get();
        let decision = decide_chat(&bot, &self.cooldowns, written.text, audience, &place, edit, opted_out);
        if let Some(admitted) = decision.reply {
            self.send_chat_reply(ctx, &written, &place, admitted).await;
        }
        if let (Some(facts), Some(guild), Some(settings)) = (decision.alert, written.guild, &settings) {
            staff::alert(ctx, &self.toolkit, settings, staff::Seen { guild, place: &place }, facts).await;
        }
    }

    /// Sends an automatic reply as a reply to the message, with the button that opts its member out; when it
    /// cannot be sent, its cooldown windows are given back.
    async fn send_chat_reply(
        &self,
        ctx: &Context,
        written: &Written<'_>,
        place: &Place,
        admitted: crate::cooldown::Admitted,
    ) {
        let (channel, message) = (written.channel, written.message);
        let opt_out = CreateButton::new(format!("{}{}", staff::OPT_OUT_BUTTON, written.author.id))
            .label("Don't reply to me automatically")
            .style(ButtonStyle::Secondary);
        let mut parts = render::messages(&admitted.reply).into_iter().peekable();
        let mut reference = Some(reply_reference(channel, message, written.guild));
        let mut retry = Retry::new(&admitted.reply, place);
        let sent = loop {
            let Some(text) = parts.peek() else { break true };
            let mut create = CreateMessage::new().content(text).allowed_mentions(no_pings());
            if parts.len() == 1 {
                create = create.components(vec![CreateActionRow::Buttons(vec![opt_out.clone()])]);
            }
            if let Some(reference) = &reference {
                create = create.reference_message(reference.clone());
            }
            let error = match channel.send_message(&ctx.http, create).await {
                Ok(_) => {
                    parts.next();
                    reference = None;
                    continue;
                }
                Err(error) => error,
            };
            match send_failure(&error) {
                (_, true) if reference.is_some() => {
                    // Deleted, or not readable by the bot: the reply goes out without the reference.
                    tracing::warn!(%message, %error, "Discord refused the reference; sending without it");
                    reference = None;
                }
                (failure, _) => {
                    if !retry.again(failure).await {
                        break false;
                    }
                }
            }
        };
        if !sent {
            self.cooldowns.lock().expect("not poisoned").release(admitted.ticket);
            return;
        }
        METRICS.reply_sent("discord", &admitted.reply, true, written.received.elapsed());
        if let Some(guild) = written.guild {
            count_reply(self.toolkit.store.as_ref(), &self.toolkit.clock, &guild.to_string(), &admitted.reply);
        }
    }

    async fn answer_command(&self, ctx: &Context, command: &CommandInteraction) {
        let mut private = false;
        let mut argument = None;
        for option in command.data.options() {
            match (option.name, option.value) {
                (PRIVATE_OPTION, ResolvedValue::Boolean(value)) => private = value,
                (TOPIC_OPTION | REGION_OPTION, ResolvedValue::String(value)) => argument = Some(value),
                _ => {}
            }
        }
        let audience = Audience { locale: Some(&command.locale), command_prefix: "/", server: None };
        let name = command.data.name.as_str();
        let started = std::time::Instant::now();
        let reply = self.bot.get().command(name, argument, audience);
        tracing::info!(interaction = %command.id, command = name, private, "command reply");
        if self.send_interaction_reply(ctx, command, &reply, private).await {
            METRICS.reply_sent("discord", &reply, false, started.elapsed());
        }
    }

    /// Answers an interaction: the first message as its response, any more as followups, each retried as
    /// [`deliver`] says.
    /// True when every part was sent.
    async fn send_interaction_reply(
        &self,
        ctx: &Context,
        command: &CommandInteraction,
        reply: &Reply,
        private: bool,
    ) -> bool {
        let place = Place {
            platform: "discord",
            channel: command.channel_id.to_string(),
            person: command.user.id.to_string(),
            message: command.id.to_string(),
        };
        let mut parts = render::messages(reply).into_iter().peekable();
        let mut responded = false;
        let mut retry = Retry::new(reply, &place);
        while let Some(text) = parts.peek() {
            let sent = if responded {
                let followup = CreateInteractionResponseFollowup::new()
                    .content(text)
                    .ephemeral(private)
                    .allowed_mentions(no_pings());
                command.create_followup(&ctx.http, followup).await.map(drop)
            } else {
                let response = CreateInteractionResponseMessage::new()
                    .content(text)
                    .ephemeral(private)
                    .allowed_mentions(no_pings());
                command.create_response(&ctx.http, CreateInteractionResponse::Message(response)).await
            };
            match sent {
                Ok(()) => {
                    parts.next();
                    responded = true;
                }
                Err(error) if retry.again(send_failure(&error).0).await => {}
                Err(_) => return false,
            }
        }
        true
    }

    async fn autocomplete(&self, ctx: &Context, interaction: &CommandInteraction) {
        let typed = interaction.data.autocomplete().map_or("", |option| option.value);
        let bot = self.bot.get();
        let choices = bot.topic_choices(typed, render::MAX_AUTOCOMPLETE_CHOICES).into_iter().fold(
            CreateAutocompleteResponse::new(),
            |response, topic| {
                let name: String = topic.description.chars().take(render::MAX_CHOICE_NAME).collect();
                response.add_string_choice(name, &topic.id)
            },
        );
        let response = CreateInteractionResponse::Autocomplete(choices);
        if let Err(error) = interaction.create_response(&ctx.http, response).await {
            tracing::error!(interaction = %interaction.id, %error, "could not answer autocomplete");
        }
    }
}
