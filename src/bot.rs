//! The bot as a pure function: an incoming chat message or command, and who it is for, to an optional [`Reply`].

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::config::CooldownSettings;
use crate::content::{Catalog, Topic, ENGLISH};
use crate::moderation::{without_allowed, ServerSettings};
use crate::normalize::normalize;
use crate::reply::{Composer, Reply};
use crate::safety::{Assessment, CrisisLevel, Detector};

/// Who a reply is for: the member's locale picks crisis lines; the prefix is how the platform writes commands;
/// the server's moderator settings add its region, local lines and allowed phrases.
#[derive(Debug, Clone, Copy)]
pub struct Audience<'a> {
    /// A BCP 47 locale such as `en-GB` (Discord sends one with every interaction).
    pub locale: Option<&'a str>,
    /// `/` on Discord, `!` on Matrix.
    pub command_prefix: &'a str,
    /// The settings of the server (or room) the message is in; `None` in DMs and the console.
    pub server: Option<&'a ServerSettings>,
}

/// Something a member sent.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    Chat(&'a str),
    Command { name: &'a str, argument: Option<&'a str> },
}

/// Everything the bot decided about a chat message.
#[derive(Debug)]
pub struct ChatOutcome<'a> {
    pub assessment: Assessment<'a>,
    /// The topics the message asks about, in file order; the first one answers.
    pub topics: Vec<&'a Topic>,
    /// The language of the rules that assessed the message (English when no rule fired); the crisis texts are
    /// in it.
    pub language: &'a str,
    pub reply: Option<Reply>,
    /// What to send instead when the crisis cooldown holds `reply` back: the topic's answer without crisis
    /// text, where the level allows a snippet (never at `self`, never a topic marked `with_crisis = false`
    /// at `third_party`); `None` otherwise. See [`crate::cooldown`].
    pub faq_instead: Option<Reply>,
}

/// The bot the adapters answer with: replaced whole when the content is reloaded, so every message is answered by
/// one consistent version, the last good one.
#[derive(Debug)]
pub struct LiveBot {
    current: RwLock<Arc<Bot>>,
    /// How many times it was replaced, so adapters notice a reload (Discord re-registers changed commands).
    generation: AtomicU64,
}

impl LiveBot {
    pub fn new(bot: impl Into<Arc<Bot>>) -> LiveBot {
        LiveBot { current: RwLock::new(bot.into()), generation: AtomicU64::new(0) }
    }

    /// The bot now; hold it for the whole of one message.
    pub fn get(&self) -> Arc<Bot> {
        Arc::clone(&self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Serves `bot` from the next message on.
    pub fn replace(&self, bot: Bot) {
        *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(bot);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

/// The platform-independent bot: validated content plus the crisis detector of each language.
#[derive(Debug)]
pub struct Bot {
    catalog: Catalog,
    /// English first: of equal levels, the first language's assessment stands.
    detectors: Vec<Detector>,
    /// How often the same reply may repeat: operator settings, reloaded with the content.
    cooldowns: CooldownSettings,
}

impl Bot {
    pub fn new(catalog: Catalog) -> Bot {
        Bot { catalog, detectors: Detector::built_in(), cooldowns: CooldownSettings::DEFAULT }
    }

    /// The same bot with the operator's cooldown windows.
    pub fn with_cooldowns(self, cooldowns: CooldownSettings) -> Bot {
        Bot { cooldowns, ..self }
    }

    pub fn cooldowns(&self) -> CooldownSettings {
        self.cooldowns
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The crisis detectors, one per language, English first.
    pub fn detectors(&self) -> &[Detector] {
        &self.detectors
    }

    /// Reads a line as a platform delivers it: one of the bot's commands when it starts with one of `prefixes`
    /// followed by a command's name (`!ketamine-risks`, `!crisis-resources united kingdom`); anything else is
    /// chat, whatever it starts with (`!!! I want to die`, `/help me`), so the crisis detector sees it.
    pub fn parse<'a>(&self, line: &'a str, prefixes: &[char]) -> Incoming<'a> {
        let line = line.trim();
        let Some(command) = line.strip_prefix(prefixes) else { return Incoming::Chat(line) };
        let (name, argument) = match command.split_once(char::is_whitespace) {
            Some((name, argument)) => (name, Some(argument.trim()).filter(|a| !a.is_empty())),
            None => (command, None),
        };
        if self.has_command(name) {
            Incoming::Command { name, argument }
        } else {
            Incoming::Chat(line)
        }
    }

    /// Whether `name` is one of the bot's commands.
    pub fn has_command(&self, name: &str) -> bool {
        let catalog = &self.catalog;
        name == catalog.crisis.command || name == catalog.help.command || catalog.topic_by_command(name).is_some()
    }

    /// The reply to a message or command; `None` means stay silent (commands always answer).
    pub fn respond(&self, incoming: Incoming<'_>, audience: Audience<'_>) -> Option<Reply> {
        match incoming {
            Incoming::Chat(text) => self.chat(text, audience).reply,
            Incoming::Command { name, argument } => Some(self.command(name, argument, audience)),
        }
    }

    /// Classifies a chat message and composes the reply.
    pub fn chat(&self, text: &str, audience: Audience<'_>) -> ChatOutcome<'_> {
        let normalized = normalize(text);
        let allowed = audience.server.map_or(&[][..], |server| server.allowed_phrases.as_slice());
        // Blanked only where a server allows phrases: most messages are assessed as normalised, uncopied.
        let assessed: Cow<'_, str> = if allowed.is_empty() {
            Cow::Borrowed(&normalized)
        } else {
            Cow::Owned(without_allowed(&normalized, allowed))
        };
        let (assessment, language) = self
            .detectors
            .iter()
            .map(|detector| (detector.assess(&assessed), detector.language()))
            .reduce(|best, next| if next.0.level > best.0.level { next } else { best })
            .expect("at least the English rules");
        let language = if assessment.level > CrisisLevel::None { language } else { ENGLISH };
        let topics: Vec<&Topic> =
            self.catalog.matcher.topics(&normalized).into_iter().map(|index| &self.catalog.topics[index]).collect();
        let composer = self.composer(None, audience, language);
        let topic = topics.first().copied();
        let reply = composer.chat(assessment.level, topic);
        let faq_instead = match assessment.level {
            CrisisLevel::SelfRisk => None,
            CrisisLevel::ThirdParty => topic.filter(|topic| topic.with_crisis).map(|topic| composer.topic(topic)),
            CrisisLevel::Mention | CrisisLevel::None => topic.map(|topic| composer.topic(topic)),
        };
        ChatOutcome { assessment, topics, language, reply, faq_instead }
    }

    /// The reply to a command. `argument` is the topic for the help command and the region for the
    /// crisis-resources command; an argument that speaks of a crisis (`!ketamine I want to die`) gets the crisis
    /// reply instead. A name the bot does not have (a command registered by older content) gets the help.
    pub fn command(&self, name: &str, argument: Option<&str>, audience: Audience<'_>) -> Reply {
        if let Some(outcome) = argument.map(|text| self.chat(text, audience)) {
            if let Some(crisis) = outcome.reply.filter(|_| outcome.assessment.level.is_crisis()) {
                return crisis;
            }
        }
        let catalog = &self.catalog;
        // A command's crisis texts follow the member's locale (snippets stay English: the source document is).
        let language = catalog.crisis.language_of(audience.locale);
        if name == catalog.crisis.command {
            return self.composer(argument, audience, language).resources();
        }
        let composer = self.composer(None, audience, language);
        let topic = match catalog.topic_by_command(name) {
            Some(topic) => Some(topic),
            None if name == catalog.help.command => argument.and_then(|topic| catalog.topic_by_name(topic)),
            None => None,
        };
        match topic {
            Some(topic) => composer.topic(topic),
            None => composer.help(audience.command_prefix),
        }
    }

    /// A notice about the bot itself (settings, opt-outs, staff alerts), which ends with the disclaimer like
    /// every reply.
    pub fn notice(&self, text: &str) -> Reply {
        let texts = &self.catalog.crisis.texts;
        Composer { catalog: &self.catalog, texts, regions: Vec::new(), local_lines: &[] }.notice(text)
    }

    /// The topics offered while a member types a topic's name: those whose id, command or description contains
    /// what was typed (all of them for nothing typed), in file order, at most `limit`.
    pub fn topic_choices(&self, typed: &str, limit: usize) -> Vec<&Topic> {
        let typed = typed.trim().to_lowercase();
        let matches = |topic: &&Topic| {
            topic.id.contains(&typed)
                || topic.command.contains(&typed)
                || topic.description.to_lowercase().contains(&typed)
        };
        self.catalog.topics.iter().filter(matches).take(limit).collect()
    }

    /// Composes in `language`, with the regions for the request, the member's locale and the server.
    fn composer<'a>(&'a self, region: Option<&str>, audience: Audience<'a>, language: &str) -> Composer<'a> {
        let (crisis, server) = (&self.catalog.crisis, audience.server);
        let regions = crisis.regions_for(region, audience.locale, server.and_then(|s| s.region.as_deref()), language);
        let local_lines = server.map_or(&[][..], |s| s.local_lines.as_slice());
        Composer { catalog: &self.catalog, texts: crisis.texts_in(language), regions, local_lines }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::reply::ReplyKind;
    use crate::CrisisLevel;

    fn bot() -> &'static Bot {
        static BOT: std::sync::LazyLock<Bot> = std::sync::LazyLock::new(|| Bot::new(Catalog::built_in()));
        &BOT
    }

    const US: Audience<'static> = Audience { locale: Some("en-US"), command_prefix: "/", server: None };

    fn chat(bot: &Bot, text: &str, audience: Audience<'_>) -> Option<String> {
        bot.respond(Incoming::Chat(text), audience).map(|reply| reply.to_plain_text())
    }

    #[test]
    fn lines_are_commands_only_when_they_name_one_of_the_bots_commands() {
        let bot = bot();
        assert!(matches!(
            bot.parse("!ketamine-risks", &['!']),
            Incoming::Command { name: "ketamine-risks", argument: None }
        ));
        assert!(matches!(
            bot.parse(" !crisis-resources  united kingdom ", &['!']),
            Incoming::Command { name: "crisis-resources", argument: Some("united kingdom") }
        ));
        assert!(matches!(bot.parse("/ketamine legal", &['/', '!']), Incoming::Command { name: "ketamine", .. }));
        assert!(matches!(bot.parse("/ketamine", &['!']), Incoming::Chat("/ketamine")));
        assert!(matches!(bot.parse("!", &['!']), Incoming::Chat("!")));
        assert!(matches!(bot.parse("  is ketamine legal? ", &['!']), Incoming::Chat("is ketamine legal?")));
        // The prefix alone does not make a command: these reach the crisis detector.
        for line in ["!!! I want to kill myself", "!help me I want to die", "/help I want to die", "! I want to die"] {
            assert!(matches!(bot.parse(line, &['!', '/']), Incoming::Chat(_)), "{line}");
            let reply = bot.respond(bot.parse(line, &['!', '/']), US).expect("a crisis reply");
            assert_eq!(reply.kind(), &ReplyKind::Crisis(CrisisLevel::SelfRisk), "{line}");
        }
    }

    #[test]
    fn a_command_whose_argument_speaks_of_a_crisis_gets_the_crisis_reply() {
        let bot = bot();
        let reply = bot.command("ketamine", Some("I want to kill myself"), US);
        assert_eq!(reply.kind(), &ReplyKind::Crisis(CrisisLevel::SelfRisk));
        assert_eq!(bot.command("ketamine", Some("suicide"), US).kind(), &ReplyKind::Help, "a mention is no crisis");
    }

    #[test]
    fn topic_choices_filter_by_what_is_typed() {
        let bot = bot();
        let ids = |typed| bot.topic_choices(typed, 25).into_iter().map(|t| t.id.as_str()).collect::<Vec<_>>();
        assert_eq!(ids("BLAD"), ["bladder-problems"]);
        assert_eq!(ids("").len(), bot.catalog().topics.len().min(25));
        assert_eq!(bot.topic_choices("", 2).len(), 2);
        assert!(ids("no such topic").is_empty());
    }

    #[test]
    fn faq_instead_of_a_held_back_crisis_reply_only_where_the_level_allows_a_snippet() {
        let bot = bot();
        let faq = |text| bot.chat(text, US).faq_instead.map(|reply| reply.kind().clone());
        let legal = Some(ReplyKind::Topic { id: "legal-status".into(), crisis: CrisisLevel::None });
        assert_eq!(faq("I want to die. is ketamine legal?"), None, "self: never a snippet");
        assert_eq!(faq("my friend is suicidal, is ketamine legal?"), legal);
        assert_eq!(faq("my friend is suicidal, how much ketamine is too much?"), None, "dosing is not for crises");
        assert!(faq("does ketamine help with suicidal ideation?").is_some());
        assert_eq!(faq("I want to die"), None, "no topic, no snippet");
    }

    #[test]
    fn a_question_gets_its_snippet_and_the_disclaimer() {
        let bot = bot();
        let reply = chat(bot, "what are the risks of microdosing ketamine?", US).expect("a reply");
        assert!(reply.contains("Bladder Problems: Chronic ketamine use has been linked to serious bladder problems."));
        assert!(reply.ends_with(&bot.catalog().disclaimer));
        assert!(!reply.contains("988"), "no crisis text for a plain question");
    }

    #[test]
    fn ordinary_chat_and_idioms_get_silence() {
        let bot = bot();
        for text in ["good morning", "this homework is killing me", "kill the process", "", "   "] {
            assert_eq!(chat(bot, text, US), None, "{text:?}");
        }
    }

    #[test]
    fn the_writers_own_crisis_leads_with_resources_for_their_region() {
        let bot = bot();
        let reply = chat(bot, "I want to kill myself", Audience { locale: Some("en-GB"), ..US }).unwrap();
        assert!(reply.starts_with(&bot.catalog().crisis.texts.self_title), "{reply}");
        assert!(reply.contains("116 123") && reply.contains("findahelpline.com") && !reply.contains("988"));
        assert!(reply.contains("emergency services") && reply.contains("not a clinician"));
        assert!(reply.ends_with(&bot.catalog().disclaimer));
    }

    #[test]
    fn the_writers_own_crisis_gets_the_crisis_block_alone_whatever_it_asked() {
        let bot = bot();
        for text in
            ["I want to die. Is ketamine legal?", "what's the lethal dose of ketamine", "how much ketamine to overdose"]
        {
            let outcome = bot.chat(text, US);
            assert_eq!(outcome.assessment.level, CrisisLevel::SelfRisk, "{text}");
            let reply = outcome.reply.unwrap();
            assert_eq!(reply.kind(), &ReplyKind::Crisis(CrisisLevel::SelfRisk), "{text}");
            let plain = reply.to_plain_text();
            assert!(plain.starts_with(&bot.catalog().crisis.texts.self_title) && plain.contains("988"), "{plain}");
            for topic in &bot.catalog().topics {
                assert!(!plain.contains(&topic.body), "{text}: snippet {} in a crisis reply", topic.id);
            }
            assert!(plain.ends_with(&bot.catalog().disclaimer));
        }
    }

    #[test]
    fn concern_for_someone_else_may_carry_a_snippet_but_never_dosing() {
        let bot = bot();
        let outcome = bot.chat("my friend is suicidal, is ketamine legal?", US);
        assert_eq!(outcome.assessment.level, CrisisLevel::ThirdParty);
        let text = outcome.reply.unwrap().to_plain_text();
        assert!(text.find("988").unwrap() < text.find("Schedule III").unwrap(), "{text}");

        let outcome = bot.chat("my friend is suicidal, how much ketamine is too much?", US);
        assert_eq!(outcome.topics.first().map(|topic| topic.id.as_str()), Some("dosing"));
        let reply = outcome.reply.unwrap();
        assert_eq!(reply.kind(), &ReplyKind::Crisis(CrisisLevel::ThirdParty));
        let dosing = bot.catalog().topic_by_command("ketamine-dosing").unwrap();
        assert!(!dosing.with_crisis && !reply.to_plain_text().contains(&dosing.body));
    }

    #[test]
    fn concern_for_someone_else_is_framed_for_helping() {
        let bot = bot();
        let reply = chat(bot, "my friend said she wants to kill herself", US).unwrap();
        assert!(reply.starts_with(&bot.catalog().crisis.texts.third_party_title), "{reply}");
    }

    #[test]
    fn a_mention_adds_a_short_resources_line_after_the_snippet() {
        let bot = bot();
        let outcome = bot.chat("does ketamine help with suicidal ideation?", Audience { locale: Some("en-AU"), ..US });
        assert_eq!(outcome.assessment.level, CrisisLevel::Mention);
        let text = outcome.reply.unwrap().to_plain_text();
        assert!(text.starts_with("Ketamine, originally developed"), "{text}");
        assert!(text.contains(&bot.catalog().crisis.texts.mention) && text.contains("13 11 14"));
        assert!(!text.contains(&bot.catalog().crisis.texts.self_title));
    }

    #[test]
    fn commands_answer_topics_help_and_resources() {
        let bot = bot();
        let command = |name, argument| bot.respond(Incoming::Command { name, argument }, US).map(|r| r.to_plain_text());
        assert!(command("ketamine-legal", None).unwrap().contains("Schedule III"));
        assert!(command("ketamine", Some("legal-status")).unwrap().contains("Schedule III"));
        let help = command("ketamine", None).unwrap();
        for topic in &bot.catalog().topics {
            assert!(help.contains(&format!("/{}: {}", topic.command, topic.description)));
        }
        assert!(help.contains("/crisis-resources"));
        let canada = command("crisis-resources", Some("canada")).unwrap();
        assert!(canada.contains("9-8-8") && canada.contains("2026-11-27") && !canada.contains("741741"));
        assert_eq!(command("no-such-command", None), Some(help), "an unknown command gets the help");
    }

    #[test]
    fn crisis_resources_follow_the_members_language_and_country() {
        let bot = bot();
        let resources = |locale| {
            let audience = Audience { locale: Some(locale), ..US };
            bot.command("crisis-resources", None, audience).to_plain_text()
        };
        let brazil = resources("pt-BR");
        assert!(brazil.starts_with("Apoio em momentos de crise") && brazil.contains("CVV") && brazil.contains("188"));
        assert!(brazil.contains("Linhas verificadas em 2026-11-27") && brazil.ends_with(&bot.catalog().disclaimer));
        let mexico = resources("es-MX");
        assert!(mexico.starts_with("Líneas de ayuda en crisis") && mexico.contains("Línea de la Vida"), "{mexico}");
        assert!(resources("fr-FR").contains("3114") && resources("de-DE").contains("TelefonSeelsorge"));
        let spanish_in_the_us = resources("es-US");
        assert!(spanish_in_the_us.contains("988 y marca 2") && spanish_in_the_us.contains("findahelpline.com"));
        let spanish_nowhere = resources("es");
        assert!(spanish_nowhere.contains("findahelpline.com") && spanish_nowhere.contains("servicios de emergencia"));
        assert!(!spanish_nowhere.contains("988"), "no country, no other country's lines");
        let english = resources("en-GB");
        assert!(english.starts_with("Crisis resources") && english.contains("116 123"));
    }

    #[test]
    fn help_uses_the_platforms_prefix() {
        let bot = bot();
        let incoming = Incoming::Command { name: "ketamine", argument: Some("help") };
        let help = bot.respond(incoming, Audience { command_prefix: "!", ..US }).unwrap().to_plain_text();
        assert!(help.contains("!ketamine-risks") && !help.contains("/ketamine-risks"));
    }

    /// Messages built from pieces that reach every path: questions, crisis words, mass mentions, markup.
    fn message() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "ketamine",
            "is ketamine legal?",
            "I want to kill myself",
            "my friend is suicidal",
            "suicide",
            "@everyone",
            "@here",
            "<@123>",
            "<@&456>",
            "<#789>",
            "@room",
            "kms",
            "lol",
            "not",
            "?",
            "\u{200b}",
            "k1ll",
            "myself",
            "risks",
            "microdosing",
            "**bold**",
            "`code`",
            "\n",
            "||spoiler||",
        ]);
        (prop::collection::vec(pieces, 0..8), any::<String>()).prop_map(|(pieces, noise)| {
            let mut text = pieces.join(" ");
            text.push_str(&noise);
            text
        })
    }

    proptest! {
        #[test]
        fn every_reply_ends_with_the_disclaimer_and_pings_nobody(text in message(), locale in "[a-z]{2}(-[A-Z]{2})?") {
            let bot = bot();
            let audience = Audience { locale: Some(&locale), command_prefix: "/", server: None };
            let replies = [
                bot.respond(Incoming::Chat(&text), audience),
                bot.respond(Incoming::Command { name: "ketamine", argument: Some(&text) }, audience),
                bot.respond(Incoming::Command { name: "crisis-resources", argument: Some(&text) }, audience),
            ];
            for reply in replies.into_iter().flatten() {
                let rendered = reply.to_plain_text();
                prop_assert!(rendered.ends_with(&bot.catalog().disclaimer));
                for ping in ["@everyone", "@here", "@room", "<@", "<#"] {
                    prop_assert!(!rendered.contains(ping), "{ping} in {rendered:?}");
                }
            }
        }
    }
}
