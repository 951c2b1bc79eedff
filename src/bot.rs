//! The bot as a pure function: an incoming chat message or command, and who it is for, to an optional [`Reply`].

use crate::content::{Catalog, Topic};
use crate::normalize::normalize;
use crate::reply::{Composer, Reply};
use crate::safety::{Assessment, Detector};

/// Who a reply is for: the member's locale picks crisis lines; the prefix is how the platform writes commands.
#[derive(Debug, Clone, Copy)]
pub struct Audience<'a> {
    /// A BCP 47 locale such as `en-GB` (Discord sends one with every interaction).
    pub locale: Option<&'a str>,
    /// `/` on Discord, `!` on Matrix.
    pub command_prefix: &'a str,
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
    pub assessment: Assessment,
    /// The topics the message asks about, in file order; the first one answers.
    pub topics: Vec<&'a Topic>,
    pub reply: Option<Reply>,
}

/// The platform-independent bot: validated content plus the crisis detector.
#[derive(Debug)]
pub struct Bot {
    catalog: Catalog,
    detector: Detector,
}

impl Bot {
    pub fn new(catalog: Catalog) -> Bot {
        Bot { catalog, detector: Detector::default() }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The reply to a message or command; `None` means stay silent.
    pub fn respond(&self, incoming: Incoming<'_>, audience: Audience<'_>) -> Option<Reply> {
        match incoming {
            Incoming::Chat(text) => self.chat(text, audience).reply,
            Incoming::Command { name, argument } => self.command(name, argument, audience),
        }
    }

    /// Classifies a chat message and composes the reply.
    pub fn chat(&self, text: &str, audience: Audience<'_>) -> ChatOutcome<'_> {
        let normalized = normalize(text);
        let assessment = self.detector.assess(&normalized);
        let topics: Vec<&Topic> =
            self.catalog.matcher.topics(&normalized).into_iter().map(|index| &self.catalog.topics[index]).collect();
        let reply = self.composer(None, audience).chat(assessment.level, topics.first().copied());
        ChatOutcome { assessment, topics, reply }
    }

    /// The reply to a command, or `None` for a command the bot does not have. `argument` is the topic for the
    /// help command and the region for the crisis-resources command.
    pub fn command(&self, name: &str, argument: Option<&str>, audience: Audience<'_>) -> Option<Reply> {
        let catalog = &self.catalog;
        if name == catalog.crisis.command {
            return Some(self.composer(argument, audience).resources());
        }
        let composer = self.composer(None, audience);
        if name == catalog.help.command {
            return Some(match argument.and_then(|topic| catalog.topic_by_name(topic)) {
                Some(topic) => composer.topic(topic),
                None => composer.help(audience.command_prefix),
            });
        }
        catalog.topic_by_command(name).map(|topic| composer.topic(topic))
    }

    fn composer(&self, region: Option<&str>, audience: Audience<'_>) -> Composer<'_> {
        let regions = self.catalog.crisis.regions_for(region, audience.locale);
        Composer { catalog: &self.catalog, regions }
    }
}
