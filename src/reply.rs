//! [`Reply`]: crisis block, snippet, disclaimer. Built only here, rendered only through [`Render`], which takes
//! the disclaimer last: a reply without its disclaimer cannot be produced.

use crate::content::{Catalog, CrisisTexts, Region, Topic};
use crate::safety::CrisisLevel;

/// One part of a reply, before the disclaimer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Section {
    Heading(String),
    Paragraph(String),
    /// Items such as hotlines or topics, one per line.
    List(Vec<String>),
}

/// What a reply answers, for adapters' cooldowns and for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyKind {
    /// A topic snippet, with or without a crisis block or resources line.
    Topic {
        id: String,
        crisis: CrisisLevel,
    },
    /// A crisis block or resources line with no snippet.
    Crisis(CrisisLevel),
    Help,
    Resources,
    /// A message about the bot itself: a moderator's settings, an opt-out confirmation, a staff alert.
    Notice,
}

impl ReplyKind {
    /// The crisis level the reply answers (`none` for help, resources and plain topics).
    pub fn crisis_level(&self) -> CrisisLevel {
        match self {
            ReplyKind::Topic { crisis, .. } | ReplyKind::Crisis(crisis) => *crisis,
            ReplyKind::Help | ReplyKind::Resources | ReplyKind::Notice => CrisisLevel::None,
        }
    }
}

/// A reply, ready for an adapter to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    kind: ReplyKind,
    sections: Vec<Section>,
    disclaimer: String,
}

/// How an adapter turns a reply into its platform's text. [`Reply::render`] calls the section methods in order,
/// then `finish` with the disclaimer: the only way to get the output.
pub trait Render {
    type Output;
    fn heading(&mut self, text: &str);
    fn paragraph(&mut self, text: &str);
    fn list(&mut self, items: &[String]);
    fn finish(self, disclaimer: &str) -> Self::Output;
}

impl Reply {
    pub fn kind(&self) -> &ReplyKind {
        &self.kind
    }

    /// Whether the reply is for someone who may be in crisis: a crisis block or the crisis resources. Such
    /// replies are retried longest and sent first.
    pub fn is_urgent(&self) -> bool {
        self.kind == ReplyKind::Resources || self.kind.crisis_level().is_crisis()
    }

    pub fn render<R: Render>(&self, mut renderer: R) -> R::Output {
        for section in &self.sections {
            match section {
                Section::Heading(text) => renderer.heading(text),
                Section::Paragraph(text) => renderer.paragraph(text),
                Section::List(items) => renderer.list(items),
            }
        }
        renderer.finish(&self.disclaimer)
    }

    /// Plain text: sections separated by blank lines, list items as `- ` lines, the disclaimer last.
    pub fn to_plain_text(&self) -> String {
        self.render(PlainText::default())
    }
}

/// The plain-text rendering used by the console, the CLI and as the fallback body of rich messages.
#[derive(Default)]
struct PlainText {
    text: String,
}

impl PlainText {
    fn block(&mut self) -> &mut String {
        if !self.text.is_empty() {
            self.text.push_str("\n\n");
        }
        &mut self.text
    }
}

impl Render for PlainText {
    type Output = String;

    fn heading(&mut self, text: &str) {
        self.block().push_str(text);
    }

    fn paragraph(&mut self, text: &str) {
        self.block().push_str(text);
    }

    fn list(&mut self, items: &[String]) {
        let block = self.block();
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                block.push('\n');
            }
            block.push_str("- ");
            block.push_str(item);
        }
    }

    fn finish(mut self, disclaimer: &str) -> String {
        self.block().push_str(disclaimer);
        self.text
    }
}

/// Builds replies from validated content.
pub(crate) struct Composer<'a> {
    pub catalog: &'a Catalog,
    /// The crisis texts in the member's language.
    pub texts: &'a CrisisTexts,
    pub regions: Vec<&'a Region>,
    /// A server's own resources, shown after the regional lines.
    pub local_lines: &'a [String],
}

impl Composer<'_> {
    fn reply(&self, kind: ReplyKind, sections: Vec<Section>) -> Reply {
        Reply { kind, sections, disclaimer: self.catalog.disclaimer.clone() }
    }

    /// The reply to a chat message, or `None` when the bot stays silent.
    ///
    /// Safe messaging: at `self` the reply is the crisis block alone (a member in crisis gets people to talk to,
    /// not facts about doses; the topic stays one command away); at `third_party` a snippet may follow the
    /// block unless its topic is marked `with_crisis = false`.
    pub fn chat(&self, crisis: CrisisLevel, topic: Option<&Topic>) -> Option<Reply> {
        let topic = topic.filter(|topic| match crisis {
            CrisisLevel::SelfRisk => false,
            CrisisLevel::ThirdParty => topic.with_crisis,
            CrisisLevel::Mention | CrisisLevel::None => true,
        });
        let mut sections = Vec::new();
        if crisis.is_crisis() {
            self.crisis_block(crisis, &mut sections);
        }
        if let Some(topic) = topic {
            snippet(topic, &mut sections);
        }
        if crisis == CrisisLevel::Mention {
            self.resources_line(&mut sections);
        }
        if sections.is_empty() {
            return None;
        }
        let kind = match topic {
            Some(topic) => ReplyKind::Topic { id: topic.id.clone(), crisis },
            None => ReplyKind::Crisis(crisis),
        };
        Some(self.reply(kind, sections))
    }

    pub fn topic(&self, topic: &Topic) -> Reply {
        let mut sections = Vec::new();
        snippet(topic, &mut sections);
        self.reply(ReplyKind::Topic { id: topic.id.clone(), crisis: CrisisLevel::None }, sections)
    }

    /// The topic list, with commands written with the platform's prefix (`/` or `!`).
    pub fn help(&self, command_prefix: &str) -> Reply {
        let catalog = self.catalog;
        let commands = catalog.topics.iter().map(|t| (&t.command, &t.description));
        let crisis = std::iter::once((&catalog.crisis.command, &catalog.crisis.description));
        let items =
            commands.chain(crisis).map(|(command, description)| format!("{command_prefix}{command}: {description}"));
        let sections = vec![
            Section::Heading(catalog.help.title.clone()),
            Section::Paragraph(catalog.help.intro.clone()),
            Section::List(items.collect()),
        ];
        self.reply(ReplyKind::Help, sections)
    }

    /// A notice: each line of `text` a paragraph, then the disclaimer like every reply.
    pub fn notice(&self, text: &str) -> Reply {
        let sections =
            text.lines().filter(|line| !line.trim().is_empty()).map(|line| Section::Paragraph(line.to_owned()));
        self.reply(ReplyKind::Notice, sections.collect())
    }

    pub fn resources(&self) -> Reply {
        let texts = self.texts;
        let sections = vec![
            Section::Heading(texts.resources_title.clone()),
            Section::Paragraph(texts.resources_intro.clone()),
            Section::List(self.hotlines()),
            Section::Paragraph(texts.emergency.clone()),
            Section::Paragraph(texts.checked.replace("{date}", &self.catalog.crisis.last_checked)),
        ];
        self.reply(ReplyKind::Resources, sections)
    }

    fn crisis_block(&self, level: CrisisLevel, sections: &mut Vec<Section>) {
        let texts = self.texts;
        let (title, intro) = if level == CrisisLevel::SelfRisk {
            (&texts.self_title, &texts.self_intro)
        } else {
            (&texts.third_party_title, &texts.third_party_intro)
        };
        sections.push(Section::Heading(title.clone()));
        sections.push(Section::Paragraph(intro.clone()));
        sections.push(Section::List(self.hotlines()));
        sections.push(Section::Paragraph(texts.emergency.clone()));
        sections.push(Section::Paragraph(texts.automated.clone()));
    }

    fn resources_line(&self, sections: &mut Vec<Section>) {
        sections.push(Section::Paragraph(self.texts.mention.clone()));
        sections.push(Section::List(self.hotlines()));
    }

    /// The regions' lines, each named by its region when several regions are shown, then the directory.
    fn hotlines(&self) -> Vec<String> {
        let several = self.regions.len() > 1;
        let lines = self.regions.iter().flat_map(|region| {
            region
                .lines
                .iter()
                .map(move |line| if several { format!("{} - {line}", region.name) } else { line.clone() })
        });
        let local = self.local_lines.iter().cloned();
        lines.chain(local).chain(std::iter::once(self.texts.directory.clone())).collect()
    }
}

/// A topic's body: lines starting with `- ` become a list, other lines paragraphs.
fn snippet(topic: &Topic, sections: &mut Vec<Section>) {
    for line in topic.body.lines().map(str::trim).filter(|line| !line.is_empty()) {
        match (line.strip_prefix("- "), sections.last_mut()) {
            (Some(item), Some(Section::List(items))) => items.push(item.to_owned()),
            (Some(item), _) => sections.push(Section::List(vec![item.to_owned()])),
            (None, _) => sections.push(Section::Paragraph(line.to_owned())),
        }
    }
}

/// The length in characters of the longest reply `topic` can be part of: after a crisis block, in the language
/// and for the region with the most text.
pub(crate) fn longest_reply_chars(catalog: &Catalog, topic: &Topic) -> usize {
    let crisis = &catalog.crisis;
    let fallback = crisis.regions_for(None, None, None, crate::content::ENGLISH);
    let region_sets: Vec<Vec<&Region>> =
        crisis.regions.iter().map(|region| vec![region]).chain([fallback, Vec::new()]).collect();
    let every_language = std::iter::once(&crisis.texts).chain(crisis.translations.iter().map(|(_, texts)| texts));
    every_language
        .flat_map(|texts| {
            region_sets.iter().filter_map(move |regions| {
                let composer = Composer { catalog, texts, regions: regions.clone(), local_lines: &[] };
                composer.chat(CrisisLevel::ThirdParty, Some(topic))
            })
        })
        .map(|reply| reply.to_plain_text().chars().count())
        .max()
        .unwrap_or(0)
}
