//! The Discord adapter (serenity): slash commands, FAQ auto-replies and crisis replies.
//!
//! It translates Discord events into [`Incoming`] and renders [`crate::Reply`] into messages within Discord's
//! limits ([`render`]); what to answer is the core's decision. Every message, interaction response and followup
//! carries empty allowed mentions, so nothing the bot sends pings anyone.

pub mod render;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serenity::all::{
    ClientBuilder, Command, CommandInteraction, CommandOptionType, Context, CreateAllowedMentions,
    CreateAutocompleteResponse, CreateCommand, CreateCommandOption, CreateInteractionResponse,
    CreateInteractionResponseFollowup, CreateInteractionResponseMessage, CreateMessage, EventHandler, GatewayIntents,
    Guild, GuildId, HttpBuilder, Interaction, Message, Ready, ResolvedValue, UserId,
};
use serenity::async_trait;

use super::shared::{chat_reply, InFlight};
use crate::config::DiscordSettings;
use crate::cooldown::Cooldowns;
use crate::{Audience, Bot, Catalog, Incoming, Reply};

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
    #[error("Discord: {0}")]
    Other(String),
}

/// Runs the bot on Discord until `shutdown` completes, then lets replies in flight finish.
pub async fn run(
    bot: Arc<Bot>,
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
        _ => DiscordError::Other(format!("cannot read the application: {error}")),
    })?;
    http.set_application_id(application.id);

    let mut intents = GatewayIntents::GUILDS;
    if !settings.commands_only {
        intents |= GatewayIntents::GUILD_MESSAGES | GatewayIntents::DIRECT_MESSAGES | GatewayIntents::MESSAGE_CONTENT;
    }
    let in_flight = InFlight::new();
    let handler = Handler {
        bot,
        guild: settings.guild_id.map(GuildId::new),
        cooldowns: Mutex::new(Cooldowns::new(settings.cooldowns.faq, settings.cooldowns.crisis)),
        me: OnceLock::new(),
        guild_locales: RwLock::new(HashMap::new()),
        in_flight: in_flight.clone(),
    };
    let mut client = ClientBuilder::new_with_http(http, intents)
        .event_handler(handler)
        .await
        .map_err(|error| DiscordError::Other(error.to_string()))?;
    let shards = Arc::clone(&client.shard_manager);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        shards.shutdown_all().await;
    });
    tracing::info!(application = %application.id, commands_only = settings.commands_only, "connecting to Discord");
    let result = client.start().await;
    in_flight.drain().await;
    result.map_err(|error| match error {
        serenity::Error::Gateway(serenity::gateway::GatewayError::DisallowedGatewayIntents) => {
            DiscordError::DisallowedIntents
        }
        serenity::Error::Gateway(serenity::gateway::GatewayError::InvalidAuthentication) => {
            DiscordError::BadToken("gateway close 4004")
        }
        other => DiscordError::Other(other.to_string()),
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

struct Handler {
    bot: Arc<Bot>,
    /// Commands go to this server only (instant, for testing) instead of globally.
    guild: Option<GuildId>,
    cooldowns: Mutex<Cooldowns>,
    me: OnceLock<UserId>,
    /// Each server's preferred locale, which picks crisis lines for chat messages.
    guild_locales: RwLock<HashMap<GuildId, String>>,
    in_flight: InFlight,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let _ = self.me.set(ready.user.id);
        let commands = commands(self.bot.catalog());
        let count = commands.len();
        let registered = match self.guild {
            Some(guild) => guild.set_commands(&ctx.http, commands).await,
            None => Command::set_global_commands(&ctx.http, commands).await,
        };
        match registered {
            Ok(_) => tracing::info!(count, guild = ?self.guild.map(|g| g.get()), "registered commands"),
            Err(error) => tracing::error!(%error, "could not register commands"),
        }
    }

    async fn guild_create(&self, _ctx: Context, guild: Guild, _is_new: Option<bool>) {
        self.guild_locales.write().expect("not poisoned").insert(guild.id, guild.preferred_locale);
    }

    async fn message(&self, ctx: Context, message: Message) {
        let Some(_permit) = self.in_flight.enter().await else { return };
        let from_a_person = !message.author.bot && message.webhook_id.is_none();
        if !from_a_person || self.me.get() == Some(&message.author.id) {
            return;
        }
        let locale = message.guild_id.and_then(|g| self.guild_locales.read().expect("not poisoned").get(&g).cloned());
        let audience = Audience { locale: locale.as_deref(), command_prefix: "/" };
        let (channel, person) = (message.channel_id.to_string(), message.author.id.to_string());
        let place = (channel.as_str(), person.as_str(), &message.id as &dyn std::fmt::Display);
        let Some(reply) = chat_reply(&self.bot, &self.cooldowns, &message.content, audience, place) else { return };
        for (index, text) in render::messages(&reply).into_iter().enumerate() {
            let mut create = CreateMessage::new().content(text).allowed_mentions(no_pings());
            if index == 0 {
                create = create.reference_message(&message);
            }
            if let Err(error) = message.channel_id.send_message(&ctx.http, create).await {
                tracing::error!(message = %message.id, %error, "could not send a reply");
                return;
            }
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let Some(_permit) = self.in_flight.enter().await else { return };
        match interaction {
            Interaction::Command(command) => self.answer_command(&ctx, &command).await,
            Interaction::Autocomplete(autocomplete) => self.autocomplete(&ctx, &autocomplete).await,
            _ => {}
        }
    }
}

impl Handler {
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
        let audience = Audience { locale: Some(&command.locale), command_prefix: "/" };
        let name = command.data.name.as_str();
        let reply = self.bot.respond(Incoming::Command { name, argument }, audience).unwrap_or_else(|| {
            // A command registered by an older version of the content: show what there is now.
            let help = Incoming::Command { name: &self.bot.catalog().help.command, argument: None };
            self.bot.respond(help, audience).expect("the help command always answers")
        });
        tracing::info!(interaction = %command.id, command = name, private, "command reply");
        self.send_interaction_reply(ctx, command, &reply, private).await;
    }

    async fn send_interaction_reply(&self, ctx: &Context, command: &CommandInteraction, reply: &Reply, private: bool) {
        let mut messages = render::messages(reply).into_iter();
        let first = messages.next().expect("a reply renders to at least one message");
        let response =
            CreateInteractionResponseMessage::new().content(first).ephemeral(private).allowed_mentions(no_pings());
        if let Err(error) = command.create_response(&ctx.http, CreateInteractionResponse::Message(response)).await {
            tracing::error!(interaction = %command.id, %error, "could not answer a command");
            return;
        }
        for text in messages {
            let followup =
                CreateInteractionResponseFollowup::new().content(text).ephemeral(private).allowed_mentions(no_pings());
            if let Err(error) = command.create_followup(&ctx.http, followup).await {
                tracing::error!(interaction = %command.id, %error, "could not send a followup");
                return;
            }
        }
    }

    async fn autocomplete(&self, ctx: &Context, interaction: &CommandInteraction) {
        let typed = interaction.data.autocomplete().map(|option| option.value.to_lowercase()).unwrap_or_default();
        let typed = typed.trim();
        let choices = self
            .bot
            .catalog()
            .topics
            .iter()
            .filter(|topic| {
                typed.is_empty()
                    || topic.id.contains(typed)
                    || topic.command.contains(typed)
                    || topic.description.to_lowercase().contains(typed)
            })
            .take(render::MAX_AUTOCOMPLETE_CHOICES)
            .fold(CreateAutocompleteResponse::new(), |response, topic| {
                let name: String = topic.description.chars().take(render::MAX_CHOICE_NAME).collect();
                response.add_string_choice(name, &topic.id)
            });
        let response = CreateInteractionResponse::Autocomplete(choices);
        if let Err(error) = interaction.create_response(&ctx.http, response).await {
            tracing::error!(interaction = %interaction.id, %error, "could not answer autocomplete");
        }
    }
}
