//! `responses.toml` -> a validated [`Catalog`].
//!
//! Everything that can be wrong with the content is found here, once, with file, line and column; a
//! [`Catalog`] that exists is valid, so answering a message never fails.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::matching::Matcher;
use crate::phrase::{self, Vocabulary};

/// The largest reply the content may produce, in characters: the smallest limit of the platforms the bot
/// renders to (a Discord embed description). Checked for every topic with the longest crisis block.
pub const MAX_REPLY_CHARS: usize = 4096;

/// The longest disclaimer, in characters. Every message ends with it, so on Discord (2,000 characters a
/// message) it must leave room for the reply: at this length half of each message is still the reply's.
pub const MAX_DISCLAIMER_CHARS: usize = 1000;

/// The content compiled into the binary: `responses.toml` as shipped.
pub const BUILT_IN_RESPONSES: &str = include_str!("../responses.toml");

/// Slash-command and description limits (Discord's, which are the strictest of the platforms).
const MAX_COMMAND_CHARS: usize = 32;
const MAX_DESCRIPTION_CHARS: usize = 100;

/// Text that notifies people on some platform: mass mentions and Discord's raw mention syntax.
pub(crate) const PINGS: &[&str] = &["@everyone", "@here", "@room", "<@", "<#", "<!"];

/// Validated content: the disclaimer, the topics, the crisis texts and the chat matcher.
#[derive(Debug)]
pub struct Catalog {
    pub disclaimer: String,
    pub help: Help,
    pub crisis: CrisisContent,
    pub topics: Vec<Topic>,
    pub(crate) matcher: Matcher,
}

/// A topic: one snippet of the source document, reachable by command and by chat keywords.
#[derive(Debug)]
pub struct Topic {
    pub id: String,
    pub command: String,
    pub description: String,
    /// Where in the source document the body comes from.
    pub section: String,
    pub body: String,
    /// Whether the snippet may follow a crisis block for someone else (`false` for dosing facts).
    pub with_crisis: bool,
}

/// The topic picker and help command.
#[derive(Debug)]
pub struct Help {
    pub command: String,
    pub description: String,
    pub title: String,
    pub intro: String,
}

/// The crisis texts in one language.
#[derive(Debug)]
pub struct CrisisTexts {
    pub directory: String,
    pub emergency: String,
    pub automated: String,
    pub self_title: String,
    pub self_intro: String,
    pub third_party_title: String,
    pub third_party_intro: String,
    pub mention: String,
    pub resources_title: String,
    pub resources_intro: String,
    /// When the lines were checked, with `{date}` where the date goes.
    pub checked: String,
}

/// Crisis texts by language and hotlines by region.
#[derive(Debug)]
pub struct CrisisContent {
    pub command: String,
    pub description: String,
    /// When the hotline facts were last verified (`YYYY-MM-DD`).
    pub last_checked: String,
    /// The English texts, which every other language falls back to.
    pub texts: CrisisTexts,
    /// Other languages' texts, by ISO 639-1 code.
    pub translations: Vec<(String, CrisisTexts)>,
    pub regions: Vec<Region>,
    /// Indexes into `regions` shown when the member's region is unknown.
    pub(crate) fallback: Vec<usize>,
}

/// A region's hotlines.
#[derive(Debug)]
pub struct Region {
    pub id: String,
    pub name: String,
    /// The language of its lines (ISO 639-1).
    pub language: String,
    /// ISO 3166 country codes, upper case, matched against the country part of a locale (`en-GB` -> `GB`).
    pub countries: Vec<String>,
    pub lines: Vec<String>,
}

impl CrisisContent {
    /// The regions whose lines to show to a member reading `language`: the region named by `requested` (an id,
    /// country code or name, as typed after `/crisis-resources`), else the one of `locale`'s country, else the
    /// server's region (its moderators' choice). Of a country's regions, the one in `language` comes first. With
    /// no region known: in English the fallback regions; in another language none (the directory and the
    /// emergency sentence stand alone).
    pub fn regions_for(
        &self,
        requested: Option<&str>,
        locale: Option<&str>,
        server: Option<&str>,
        language: &str,
    ) -> Vec<&Region> {
        let best = |matches: &dyn Fn(&Region) -> bool| {
            let mut found = self.regions.iter().filter(|region| matches(region));
            let first = found.next()?;
            Some(std::iter::once(first).chain(found).find(|region| region.language == language).unwrap_or(first))
        };
        let named = |name: Option<&str>| {
            let name = name.map(str::trim).filter(|name| !name.is_empty())?;
            let by_id = self.regions.iter().find(|region| region.id.eq_ignore_ascii_case(name));
            by_id.or_else(|| {
                best(&|region: &Region| {
                    region.name.eq_ignore_ascii_case(name)
                        || region.countries.iter().any(|c| c.eq_ignore_ascii_case(name))
                })
            })
        };
        let by_locale = || {
            let country = locale.and_then(country_of_locale)?;
            best(&|region: &Region| region.countries.iter().any(|c| c.eq_ignore_ascii_case(country)))
        };
        match named(requested).or_else(by_locale).or_else(|| named(server)) {
            Some(region) => vec![region],
            None if language == ENGLISH => self.fallback.iter().map(|&index| &self.regions[index]).collect(),
            None => Vec::new(),
        }
    }

    /// The texts in `language`, or in English when there are none in it.
    pub fn texts_in(&self, language: &str) -> &CrisisTexts {
        self.translations.iter().find(|(code, _)| code == language).map_or(&self.texts, |(_, texts)| texts)
    }

    /// The language of a locale (`es-MX` -> `es`) when the content has texts in it; otherwise English.
    pub fn language_of<'a>(&'a self, locale: Option<&str>) -> &'a str {
        let wanted = locale.and_then(|locale| locale.split(['-', '_']).next()).unwrap_or(ENGLISH);
        self.translations.iter().find(|(code, _)| code.eq_ignore_ascii_case(wanted)).map_or(ENGLISH, |(code, _)| code)
    }
}

/// The language every text has.
pub const ENGLISH: &str = "en";

/// The country subtag of a BCP 47 locale such as `en-GB`, `fr_CA` or `zh-Hant-TW`.
fn country_of_locale(locale: &str) -> Option<&str> {
    locale.split(['-', '_']).skip(1).find(|part| part.len() == 2 && part.chars().all(|c| c.is_ascii_alphabetic()))
}

/// One problem in a content file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub problem: String,
}

impl fmt::Display for ContentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.problem)
    }
}

/// Every problem found in a content file, in file order.
#[derive(Debug, thiserror::Error)]
pub struct ContentErrors(pub Vec<ContentError>);

impl fmt::Display for ContentErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[allow(dead_code, reason = "names the source document for readers of the file; nothing reads it")]
    source: String,
    disclaimer: Spanned<String>,
    #[serde(default)]
    vocab: HashMap<String, Vec<String>>,
    matching: RawMatching,
    help: RawHelp,
    crisis: RawCrisis,
    topic: Vec<RawTopic>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatching {
    subject: Vec<Spanned<String>>,
    question: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHelp {
    command: Spanned<String>,
    description: Spanned<String>,
    title: Spanned<String>,
    intro: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrisis {
    command: Spanned<String>,
    description: Spanned<String>,
    last_checked: Spanned<toml::value::Datetime>,
    texts: Spanned<std::collections::BTreeMap<String, RawTexts>>,
    fallback_regions: Vec<Spanned<String>>,
    region: Vec<RawRegion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTexts {
    directory: Spanned<String>,
    emergency: Spanned<String>,
    automated: Spanned<String>,
    self_title: Spanned<String>,
    self_intro: Spanned<String>,
    third_party_title: Spanned<String>,
    third_party_intro: Spanned<String>,
    mention: Spanned<String>,
    resources_title: Spanned<String>,
    resources_intro: Spanned<String>,
    checked: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    id: Spanned<String>,
    name: Spanned<String>,
    language: Option<Spanned<String>>,
    countries: Vec<Spanned<String>>,
    lines: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    id: Spanned<String>,
    command: Spanned<String>,
    description: Spanned<String>,
    section: Spanned<String>,
    keywords: Vec<Spanned<String>>,
    body: Spanned<String>,
    #[serde(default = "yes")]
    with_crisis: bool,
}

fn yes() -> bool {
    true
}

/// Collects problems with their places while the raw content is turned into a catalog.
pub(crate) struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<(usize, ContentError)>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Checker<'a> {
        Checker { file, text, errors: Vec::new() }
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    pub(crate) fn error(&mut self, span: Range<usize>, problem: impl Into<String>) {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let error = ContentError { file: self.file.to_owned(), line, column, problem: problem.into() };
        self.errors.push((start, error));
    }

    /// A required text: present, not blank, and unable to ping anyone on any platform.
    fn text(&mut self, field: &str, value: Spanned<String>) -> String {
        if value.get_ref().trim().is_empty() {
            self.error(value.span(), format!("`{field}` is empty"));
        }
        if let Some(ping) = PINGS.iter().find(|ping| value.get_ref().contains(**ping)) {
            self.error(value.span(), format!("`{field}` contains {ping:?}, which could notify people"));
        }
        value.into_inner().trim().to_owned()
    }

    fn command(&mut self, value: Spanned<String>, seen: &mut HashMap<String, ()>) -> String {
        let name = value.get_ref();
        let valid = (1..=MAX_COMMAND_CHARS).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            self.error(
                value.span(),
                format!("command name {name:?} must be 1-{MAX_COMMAND_CHARS} characters of a-z, 0-9, - and _"),
            );
        } else if seen.insert(name.clone(), ()).is_some() {
            self.error(value.span(), format!("duplicate command name {name:?}"));
        }
        value.into_inner()
    }

    fn description(&mut self, value: Spanned<String>) -> String {
        let length = value.get_ref().chars().count();
        if !(1..=MAX_DESCRIPTION_CHARS).contains(&length) {
            self.error(
                value.span(),
                format!("description must be 1-{MAX_DESCRIPTION_CHARS} characters, it has {length}"),
            );
        }
        value.into_inner()
    }

    /// Compiles phrases (see [`crate::phrase`]) as the matcher will; returns their alternation when all are valid.
    fn phrases(&mut self, phrases: &[Spanned<String>], vocabulary: &Vocabulary) -> Option<String> {
        let mut sources = Vec::with_capacity(phrases.len());
        for phrase in phrases {
            match phrase::compile(phrase.get_ref(), vocabulary) {
                Ok(compiled) => sources.push(format!("(?:{})", compiled.regex)),
                Err(problem) => self.error(phrase.span(), problem),
            }
        }
        (sources.len() == phrases.len()).then(|| sources.join("|"))
    }
}

impl Catalog {
    /// The content shipped with the bot ([`BUILT_IN_RESPONSES`]), which is valid: a test checks it.
    pub fn built_in() -> Catalog {
        Catalog::parse("built-in responses.toml", BUILT_IN_RESPONSES).expect("the shipped responses.toml is valid")
    }

    /// Parses and validates the content of `file` (the name is used in error messages only).
    pub fn parse(file: &str, text: &str) -> Result<Catalog, ContentErrors> {
        let mut checker = Checker { file, text, errors: Vec::new() };
        let raw: RawCatalog = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(error) => {
                checker.error(error.span().unwrap_or(0..0), error.message().trim().to_owned());
                return Err(checker.into_errors());
            }
        };
        let Some((catalog, topic_spans)) = checker.build(raw).filter(|_| checker.errors.is_empty()) else {
            return Err(checker.into_errors());
        };
        for (topic, span) in catalog.topics.iter().zip(topic_spans) {
            let length = crate::reply::longest_reply_chars(&catalog, topic);
            if length > MAX_REPLY_CHARS {
                let problem = format!(
                    "topic {:?}: its longest reply (with a crisis block) has {length} characters, \
                     more than the {MAX_REPLY_CHARS} a reply may have",
                    topic.id
                );
                checker.error(span, problem);
            }
        }
        if checker.errors.is_empty() {
            Ok(catalog)
        } else {
            Err(checker.into_errors())
        }
    }

    /// The topic a command name answers.
    pub fn topic_by_command(&self, command: &str) -> Option<&Topic> {
        self.topics.iter().find(|topic| topic.command == command)
    }

    /// The topic with this id or command name, as typed after `/ketamine`.
    pub fn topic_by_name(&self, name: &str) -> Option<&Topic> {
        let name = name.trim().trim_start_matches(['/', '!']);
        self.topics.iter().find(|t| t.id.eq_ignore_ascii_case(name) || t.command.eq_ignore_ascii_case(name))
    }
}

impl Checker<'_> {
    pub(crate) fn into_errors(mut self) -> ContentErrors {
        self.errors.sort_by_key(|(offset, _)| *offset);
        ContentErrors(self.errors.into_iter().map(|(_, error)| error).collect())
    }

    /// Builds the catalog, and the span of each topic's id for the checks that need a whole catalog.
    fn build(&mut self, raw: RawCatalog) -> Option<(Catalog, Vec<Range<usize>>)> {
        let mut commands = HashMap::new();
        let disclaimer_chars = raw.disclaimer.get_ref().trim().chars().count();
        if disclaimer_chars > MAX_DISCLAIMER_CHARS {
            let problem = format!(
                "the disclaimer has {disclaimer_chars} characters; at most {MAX_DISCLAIMER_CHARS} leave room for \
                 the reply in a 2,000-character Discord message"
            );
            self.error(raw.disclaimer.span(), problem);
        }
        let disclaimer = self.text("disclaimer", raw.disclaimer);
        let vocabulary = Vocabulary::new(raw.vocab);
        let subject = self.phrases(&raw.matching.subject, &vocabulary);
        let question = self.phrases(&raw.matching.question, &vocabulary);
        let help = Help {
            command: self.command(raw.help.command, &mut commands),
            description: self.description(raw.help.description),
            title: self.text("help.title", raw.help.title),
            intro: self.text("help.intro", raw.help.intro),
        };
        let crisis = self.crisis(raw.crisis, &mut commands);

        let mut ids = HashMap::new();
        let mut topics = Vec::with_capacity(raw.topic.len());
        let mut topic_spans = Vec::with_capacity(raw.topic.len());
        let mut keywords = Vec::with_capacity(raw.topic.len());
        for topic in raw.topic {
            if ids.insert(topic.id.get_ref().clone(), ()).is_some() {
                self.error(topic.id.span(), format!("duplicate topic id {:?}", topic.id.get_ref()));
            }
            let patterns: Vec<Option<String>> =
                topic.keywords.iter().map(|k| self.phrases(std::slice::from_ref(k), &vocabulary)).collect();
            keywords.push(patterns.into_iter().collect::<Option<Vec<_>>>());
            topic_spans.push(topic.id.span());
            topics.push(Topic {
                id: self.text("topic.id", topic.id),
                command: self.command(topic.command, &mut commands),
                description: self.description(topic.description),
                section: self.text("topic.section", topic.section),
                body: self.text("topic.body", topic.body),
                with_crisis: topic.with_crisis,
            });
        }

        let keywords: Option<Vec<Vec<String>>> = keywords.into_iter().collect();
        let matcher = match Matcher::new(subject?, question?, keywords?) {
            Ok(matcher) => matcher,
            Err(error) => {
                let problem = format!("the keyword patterns together are too large: {error}");
                self.error(0..0, phrase::last_line(&problem));
                return None;
            }
        };
        Some((Catalog { disclaimer, help, crisis: crisis?, topics, matcher }, topic_spans))
    }

    fn crisis(&mut self, raw: RawCrisis, commands: &mut HashMap<String, ()>) -> Option<CrisisContent> {
        let mut region_ids = HashMap::new();
        let mut regions = Vec::with_capacity(raw.region.len());
        for region in raw.region {
            if region_ids.insert(region.id.get_ref().clone(), regions.len()).is_some() {
                self.error(region.id.span(), format!("duplicate region id {:?}", region.id.get_ref()));
            }
            if region.lines.get_ref().is_empty() {
                self.error(region.lines.span(), format!("region {:?} has no lines", region.id.get_ref()));
            }
            let countries = region.countries.into_iter().map(|c| {
                let valid = c.get_ref().len() == 2 && c.get_ref().chars().all(|l| l.is_ascii_uppercase());
                if !valid {
                    self.error(c.span(), format!("country {:?} must be a two-letter upper-case code", c.get_ref()));
                }
                c.into_inner()
            });
            let countries = countries.collect();
            let lines = region.lines.into_inner().into_iter().map(|l| self.text("region.lines", l)).collect();
            let language = match region.language {
                Some(language) if !raw.texts.get_ref().contains_key(language.get_ref()) => {
                    self.error(
                        language.span(),
                        format!("no [crisis.texts.{}] for this region's language", language.get_ref()),
                    );
                    language.into_inner()
                }
                Some(language) => language.into_inner(),
                None => ENGLISH.to_owned(),
            };
            regions.push(Region {
                id: self.text("region.id", region.id),
                name: self.text("region.name", region.name),
                language,
                countries,
                lines,
            });
        }
        let mut fallback = Vec::new();
        for id in &raw.fallback_regions {
            match region_ids.get(id.get_ref()) {
                Some(&index) => fallback.push(index),
                None => self.error(id.span(), format!("fallback region {:?} is not a [[crisis.region]]", id.get_ref())),
            }
        }
        let last_checked = raw.last_checked.get_ref();
        if last_checked.date.is_none() || last_checked.time.is_some() {
            self.error(raw.last_checked.span(), "`last_checked` must be a date such as 2026-11-27");
        }
        let texts_span = raw.texts.span();
        let mut english = None;
        let mut translations = Vec::new();
        for (language, raw_texts) in raw.texts.into_inner() {
            let valid = language.len() == 2 && language.chars().all(|c| c.is_ascii_lowercase());
            if !valid {
                self.error(
                    texts_span.clone(),
                    format!("[crisis.texts.{language}]: a language is a two-letter ISO 639-1 code"),
                );
            }
            let texts = self.crisis_texts(&language, raw_texts);
            match language == ENGLISH {
                true => english = Some(texts),
                false => translations.push((language, texts)),
            }
        }
        let Some(texts) = english else {
            self.error(texts_span, "[crisis.texts.en] is missing: English is every language's fallback");
            return None;
        };
        Some(CrisisContent {
            command: self.command(raw.command, commands),
            description: self.description(raw.description),
            last_checked: raw.last_checked.into_inner().to_string(),
            texts,
            translations,
            regions,
            fallback,
        })
    }

    fn crisis_texts(&mut self, language: &str, raw: RawTexts) -> CrisisTexts {
        let field = |name: &str| format!("crisis.texts.{language}.{name}");
        if !raw.checked.get_ref().contains("{date}") {
            self.error(raw.checked.span(), format!("`{}` must contain {{date}}", field("checked")));
        }
        CrisisTexts {
            directory: self.text(&field("directory"), raw.directory),
            emergency: self.text(&field("emergency"), raw.emergency),
            automated: self.text(&field("automated"), raw.automated),
            self_title: self.text(&field("self_title"), raw.self_title),
            self_intro: self.text(&field("self_intro"), raw.self_intro),
            third_party_title: self.text(&field("third_party_title"), raw.third_party_title),
            third_party_intro: self.text(&field("third_party_intro"), raw.third_party_intro),
            mention: self.text(&field("mention"), raw.mention),
            resources_title: self.text(&field("resources_title"), raw.resources_title),
            resources_intro: self.text(&field("resources_intro"), raw.resources_intro),
            checked: self.text(&field("checked"), raw.checked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    const RESPONSES: &str = BUILT_IN_RESPONSES;
    const SOURCE: &str = include_str!("../source/ketamine-therapy-and-microdosing.txt");

    fn catalog() -> Catalog {
        Catalog::built_in()
    }

    /// The problems found in `responses.toml` after replacing `from` with `to`.
    fn errors_after(from: &str, to: &str) -> Vec<ContentError> {
        assert!(RESPONSES.contains(from), "the fixture no longer contains {from:?}");
        let broken = RESPONSES.replacen(from, to, 1);
        match Catalog::parse("broken.toml", &broken) {
            Ok(_) => panic!("replacing {from:?} with {to:?} was accepted"),
            Err(errors) => errors.0,
        }
    }

    fn assert_one_error(from: &str, to: &str, problem: &str) -> ContentError {
        let errors = errors_after(from, to);
        assert!(
            errors.iter().any(|e| e.problem.contains(problem) && e.file == "broken.toml" && e.line > 1),
            "expected {problem:?} with a place, got {errors:?}"
        );
        errors.into_iter().find(|e| e.problem.contains(problem)).unwrap()
    }

    /// Lower case, straight quotes, single spaces; no list bullets and no stray footnote marker.
    fn fidelity_form(text: &str) -> String {
        let text = text.replace(['’', '‘'], "'").replace(['“', '”'], "\"").to_lowercase();
        let lines = text.lines().map(|line| line.trim().trim_start_matches("- ").trim());
        let joined = lines.collect::<Vec<_>>().join(" ");
        joined.split_whitespace().filter(|word| *word != "1").collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn the_shipped_content_is_valid() {
        let catalog = catalog();
        let commands: Vec<&str> = catalog.topics.iter().map(|t| t.command.as_str()).collect();
        for required in [
            "ketamine-risks",
            "ketamine-therapy",
            "ketamine-how-it-works",
            "ketamine-side-effects",
            "ketamine-microdosing",
            "ketamine-evidence",
            "ketamine-legal",
            "ketamine-safety",
        ] {
            assert!(commands.contains(&required), "no topic answers {required}");
        }
        assert_eq!(catalog.help.command, "ketamine");
        assert_eq!(catalog.crisis.command, "crisis-resources");
        assert_eq!(catalog.crisis.last_checked, "2026-11-27");
    }

    #[test]
    fn every_sentence_of_every_body_is_in_the_source_document() {
        let source = fidelity_form(SOURCE);
        for topic in catalog().topics {
            for line in topic.body.lines() {
                let line = fidelity_form(line);
                let sentences = line.split_inclusive(['.', '?', '!']).map(str::trim).filter(|s| !s.is_empty());
                for sentence in sentences {
                    assert!(source.contains(sentence), "topic {}: not in the source: {sentence:?}", topic.id);
                }
            }
        }
    }

    #[test]
    fn the_disclaimer_is_the_documents_own() {
        let disclaimer = catalog().disclaimer;
        assert!(fidelity_form(SOURCE).contains(&fidelity_form(&disclaimer)), "{disclaimer:?}");
        assert!(disclaimer.starts_with("Disclaimer:"));
    }

    #[test]
    fn every_region_of_the_crisis_facts_is_present() {
        let catalog = catalog();
        let lines_of = |id: &str| catalog.crisis.regions.iter().find(|r| r.id == id).unwrap().lines.join("\n");
        assert!(lines_of("us").contains("988") && lines_of("us").contains("HOME to 741741"));
        assert!(lines_of("ca").contains("9-8-8") && lines_of("ca").contains("CONNECT to 686868"));
        assert!(lines_of("gb").contains("116 123") && lines_of("gb").contains("SHOUT to 85258"));
        assert!(lines_of("ie").contains("116 123"));
        assert!(lines_of("au").contains("13 11 14") && lines_of("au").contains("0477 13 11 14"));
        assert!(catalog.crisis.texts.directory.contains("findahelpline.com"));
        // Mistakes other bots made: Crisis Text Line is not 988; Canada's old number is gone.
        assert!(!lines_of("us").contains("Crisis Text Line: call or text 988"));
        assert!(!RESPONSES.contains("1-833-456-4566"));
    }

    #[test]
    fn regions_follow_the_request_then_the_locale_then_the_fallback() {
        let catalog = catalog();
        let ids = |request: Option<&str>, locale: Option<&str>| -> Vec<String> {
            catalog.crisis.regions_for(request, locale, None, ENGLISH).iter().map(|r| r.id.clone()).collect()
        };
        assert_eq!(ids(None, Some("en-US")), ["us"]);
        assert_eq!(ids(None, Some("en-GB")), ["gb"]);
        assert_eq!(ids(None, Some("en-AU")), ["au"]);
        assert_eq!(ids(None, Some("fr-CA")), ["ca"], "English text: the English Canadian lines");
        assert_eq!(ids(None, Some("en_IE")), ["ie"]);
        assert_eq!(ids(None, Some("de")), ["us", "gb"]);
        assert_eq!(ids(None, Some("pt-BR")), ["br"], "a country with lines in another language still gets them");
        assert_eq!(ids(None, None), ["us", "gb"]);
        assert_eq!(ids(Some("Canada"), Some("en-US")), ["ca"]);
        assert_eq!(ids(Some("uk"), None), ["gb"]);
        assert_eq!(ids(Some("narnia"), Some("en-AU")), ["au"]);
        let server = |locale: Option<&str>| catalog.crisis.regions_for(None, locale, Some("gb"), ENGLISH)[0].id.clone();
        assert_eq!((server(None), server(Some("en-AU"))), ("gb".to_owned(), "au".to_owned()), "the locale first");
    }

    #[test]
    fn regions_in_the_members_language_come_first() {
        let catalog = catalog();
        let ids = |locale: &str| -> Vec<String> {
            let language = catalog.crisis.language_of(Some(locale));
            catalog.crisis.regions_for(None, Some(locale), None, language).iter().map(|r| r.id.clone()).collect()
        };
        assert_eq!(ids("es-MX"), ["mx"]);
        assert_eq!(ids("es-US"), ["us-es"], "988 has a Spanish option");
        assert_eq!(ids("fr-CA"), ["ca-fr"]);
        assert_eq!(ids("pt-BR"), ["br"]);
        assert_eq!(
            (ids("nl-BE"), ids("fr-BE"), ids("de-BE")),
            (vec!["be-nl".to_owned()], vec!["be-fr".to_owned()], vec!["be-de".to_owned()])
        );
        assert_eq!((ids("it-CH"), ids("de-CH")), (vec!["ch-it".to_owned()], vec!["ch-de".to_owned()]));
        assert!(ids("es").is_empty(), "a language with no country: the directory and the emergency sentence");
        assert_eq!(catalog.crisis.language_of(Some("de-AT")), "de");
        assert_eq!(catalog.crisis.language_of(Some("sv-SE")), ENGLISH, "no Swedish texts: English");
        assert_eq!(catalog.crisis.texts_in("it").self_title, "Non devi affrontare tutto questo senza sostegno");
    }

    #[test]
    fn every_language_has_every_text_and_every_region_a_language_with_texts() {
        assert_one_error(
            "checked = \"Líneas comprobadas el {date}.\"",
            "checked = \"Líneas comprobadas.\"",
            "must contain {date}",
        );
        assert_one_error("language = \"nl\"", "language = \"sv\"", "no [crisis.texts.sv]");
        assert_one_error("[crisis.texts.en]", "[crisis.texts.english]", "[crisis.texts.en] is missing");
    }

    #[test]
    fn topics_are_found_by_command_id_or_typed_name() {
        let catalog = catalog();
        assert_eq!(catalog.topic_by_command("ketamine-risks").unwrap().id, "microdosing-risks");
        assert_eq!(catalog.topic_by_name("/Ketamine-Legal").unwrap().id, "legal-status");
        assert_eq!(catalog.topic_by_name("side-effects").unwrap().command, "ketamine-side-effects");
        assert!(catalog.topic_by_command("ketamine").is_none());
    }

    #[test]
    fn invalid_toml_names_file_line_and_column() {
        let error = assert_one_error("[help]", "[help", "");
        assert!(error.column >= 1);
        assert!(error.to_string().starts_with(&format!("broken.toml:{}:", error.line)));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert_one_error("section = \"In Conclusion\"", "section = \"In Conclusion\"\ncolour = \"red\"", "colour");
    }

    #[test]
    fn duplicate_ids_and_commands_are_rejected() {
        assert_one_error("id = \"dosing\"", "id = \"dependence\"", "duplicate topic id");
        assert_one_error("command = \"ketamine-dosing\"", "command = \"ketamine-risks\"", "duplicate command name");
        assert_one_error("command = \"ketamine-dosing\"", "command = \"crisis-resources\"", "duplicate command name");
        assert_one_error("id = \"ie\"", "id = \"gb\"", "duplicate region id");
    }

    #[test]
    fn invalid_phrases_are_rejected_with_their_place() {
        let error = assert_one_error("'cystitis'", "'(cystitis'", "missing");
        let line = RESPONSES.lines().position(|l| l.contains("'cystitis'")).unwrap() + 1;
        assert_eq!(error.line, line);
        assert_one_error("'cystitis'", r"'re:cyst(itis'", "invalid regular expression");
        assert_one_error("subject = [\"{ketamine}\"", "subject = [\"{ketamin}\"", "no vocabulary {ketamin}");
    }

    #[test]
    fn with_crisis_must_be_true_or_false() {
        assert_one_error("with_crisis = false", "with_crisis = \"no\"", "invalid type");
    }

    #[test]
    fn command_names_must_follow_discords_rules() {
        assert_one_error("command = \"ketamine-dosing\"", "command = \"Ketamine Dosing\"", "command name");
        assert_one_error("command = \"ketamine-dosing\"", "command = \"\"", "command name");
        let long = format!("command = \"{}\"", "k".repeat(33));
        assert_one_error("command = \"ketamine-dosing\"", &long, "command name");
    }

    #[test]
    fn descriptions_must_have_1_to_100_characters() {
        let from = "description = \"Bladder problems linked to chronic ketamine use\"";
        assert_one_error(from, "description = \"\"", "1-100 characters");
        assert_one_error(from, &format!("description = \"{}\"", "x".repeat(101)), "it has 101");
    }

    #[test]
    fn empty_bodies_and_texts_are_rejected() {
        let body = "body = \"Bladder Problems: Chronic ketamine use has been linked to serious bladder problems.\"";
        assert_one_error(body, "body = \"  \"", "`topic.body` is empty");
        assert_one_error("[crisis]\ncommand", "[crisis]\nemergency2 = 1\ncommand", "emergency2");
    }

    #[test]
    fn replies_that_could_ping_are_rejected() {
        let body = "body = \"Bladder Problems: Chronic ketamine use has been linked to serious bladder problems.\"";
        assert_one_error(body, "body = \"Ask @everyone\"", "could notify");
        assert_one_error(body, "body = \"Ask <@123>\"", "could notify");
    }

    #[test]
    fn replies_too_long_for_the_platforms_are_rejected() {
        let body = "body = \"Bladder Problems: Chronic ketamine use has been linked to serious bladder problems.\"";
        let long = format!("body = \"{}\"", "Bladder problems. ".repeat(250));
        assert_one_error(body, &long, "longest reply");
    }

    #[test]
    fn a_disclaimer_must_leave_room_for_the_reply() {
        let disclaimer = RESPONSES.lines().find(|line| line.starts_with("disclaimer = ")).expect("one line");
        let at_the_limit = format!("disclaimer = \"{}\"", "x".repeat(MAX_DISCLAIMER_CHARS));
        let too_long = format!("disclaimer = \"{}\"", "x".repeat(1998));
        assert!(Catalog::parse("ok.toml", &RESPONSES.replacen(disclaimer, &at_the_limit, 1)).is_ok());
        assert_one_error(disclaimer, &too_long, "the disclaimer has 1998 characters");
    }

    #[test]
    fn every_error_is_reported_not_just_the_first() {
        let broken = RESPONSES.replacen("command = \"ketamine-dosing\"", "command = \"Bad Name\"", 1).replacen(
            "'cystitis'",
            "'(('",
            1,
        );
        let errors = Catalog::parse("broken.toml", &broken).unwrap_err().0;
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].line < errors[1].line, "errors come in file order");
    }

    #[test]
    fn fallback_regions_must_exist_and_dates_be_dates() {
        assert_one_error(
            "fallback_regions = [\"us\", \"gb\"]",
            "fallback_regions = [\"us\", \"xx\"]",
            "fallback region",
        );
        assert_one_error("last_checked = 2026-11-27", "last_checked = 2026-11-27T10:00:00", "must be a date");
    }

    #[test]
    fn keywords_match_normalised_text() {
        let catalog = catalog();
        let topics = |text: &str| -> Vec<String> {
            let indexes = catalog.matcher.topics(&normalize(text));
            indexes.into_iter().map(|i| catalog.topics[i].id.clone()).collect()
        };
        assert_eq!(topics("what are the risks of microdosing ketamine?")[0], "microdosing-risks");
        assert_eq!(topics("Is ketamine legal in the US?")[0], "legal-status");
        assert_eq!(topics("does ketamine cause bladder problems?")[0], "bladder-problems");
        assert_eq!(topics("how does ketamine work in the brain?")[0], "how-it-works");
        assert_eq!(topics("what are the side effects of ketamine therapy?")[0], "side-effects");
        assert_eq!(topics("what is spravato?")[0], "therapy");
        // Not about ketamine, or not asking: nothing.
        assert!(topics("what are the risks of skydiving?").is_empty());
        assert!(topics("had my ketamine infusion today, feeling good").is_empty());
        assert!(topics("good morning").is_empty());
    }
}
