//! The rules file -> a [`Detector`]: every problem with file, line and column, and every example of every rule,
//! exception and distress family run against the detector it builds.

use std::collections::{BTreeMap, HashMap, HashSet};

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::scanner::{Phrase, Scanner};
use super::{Category, CrisisLevel, Detector, Exception, Rule, Settings, Strength};
use crate::content::{Checker, ContentErrors};
use crate::normalize::normalize;
use crate::phrase::{self, Vocabulary};

/// The rules built into the binary, one file per language, English first: `(file name, text)`.
pub const BUILT_IN_RULES: &[(&str, &str)] = &[
    ("crisis-rules/en.toml", include_str!("../../crisis-rules/en.toml")),
    ("crisis-rules/es.toml", include_str!("../../crisis-rules/es.toml")),
    ("crisis-rules/fr.toml", include_str!("../../crisis-rules/fr.toml")),
    ("crisis-rules/de.toml", include_str!("../../crisis-rules/de.toml")),
    ("crisis-rules/pt.toml", include_str!("../../crisis-rules/pt.toml")),
    ("crisis-rules/it.toml", include_str!("../../crisis-rules/it.toml")),
    ("crisis-rules/nl.toml", include_str!("../../crisis-rules/nl.toml")),
];

/// The English rules, which the tests of the format edit.
#[cfg(test)]
const ENGLISH_RULES: &str = BUILT_IN_RULES[0].1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    settings: Settings,
    vocab: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    signals: RawSignals,
    distress: Vec<RawDistress>,
    rule: Vec<RawRule>,
    exception: Vec<RawException>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignals {
    negation: Vec<Spanned<String>>,
    not_now: Vec<Spanned<String>>,
    imminent: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDistress {
    id: Spanned<String>,
    why: Spanned<String>,
    phrases: Vec<Spanned<String>>,
    examples: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    level: Spanned<CrisisLevel>,
    strength: Strength,
    category: Category,
    why: Spanned<String>,
    phrases: Vec<Spanned<String>>,
    examples: Vec<Spanned<String>>,
    #[serde(default)]
    not: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    id: Spanned<String>,
    why: Spanned<String>,
    vetoes: Vec<CrisisLevel>,
    lowers_to: Option<CrisisLevel>,
    phrases: Vec<Spanned<String>>,
    examples: Vec<Spanned<String>>,
}

/// What each example must show, kept until the detector exists to run them.
enum Expectation {
    /// The message is assessed at the rule's level, and the rule stands.
    Fires(usize),
    /// The message is assessed below the rule's level.
    Quiet(usize),
    /// The exception lowers the message's level.
    Changes(usize),
    /// The distress family occurs in the message.
    Shows(usize),
}

impl Detector {
    /// Loads and validates a rules file (the name is used in error messages only), then runs its examples.
    pub fn parse(file: &str, text: &str) -> Result<Detector, ContentErrors> {
        let mut checker = Checker::new(file, text);
        let raw: RawRules = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(error) => {
                checker.error(error.span().unwrap_or(0..0), error.message().trim().to_owned());
                return Err(checker.into_errors());
            }
        };
        let mut builder = Builder { checker, vocabulary: Vocabulary::default(), examples: Vec::new() };
        let detector = builder.build(raw);
        let Builder { mut checker, examples, .. } = builder;
        let Some(detector) = detector.filter(|_| !checker.has_errors()) else {
            return Err(checker.into_errors());
        };
        for (example, expectation) in examples {
            if let Some(problem) = detector.unmet(example.get_ref(), &expectation) {
                checker.error(example.span(), problem);
            }
        }
        if checker.has_errors() {
            Err(checker.into_errors())
        } else {
            Ok(detector)
        }
    }

    /// Why `example` does not show what it must, if it does not.
    fn unmet(&self, example: &str, expectation: &Expectation) -> Option<String> {
        let normalized = normalize(example);
        let decision = self.assess(&normalized);
        let decided = || match decision.rule {
            Some(rule) => format!("`{}` by {rule}", decision.level.as_str()),
            None => format!("`{}`", decision.level.as_str()),
        };
        match *expectation {
            Expectation::Fires(index) => {
                let rule = &self.rules[index];
                let standing = self.standing_level(index, &self.scan(&normalized, None));
                let stands = standing.is_ok_and(|(level, _)| level == rule.level);
                (decision.level != rule.level || !stands).then(|| {
                    format!("example of {} must be `{}` by it, but is {}", rule.id, rule.level.as_str(), decided())
                })
            }
            Expectation::Quiet(index) => {
                let rule = &self.rules[index];
                (decision.level >= rule.level).then(|| {
                    format!(
                        "`not` example of {} must be below `{}`, but is {}",
                        rule.id,
                        rule.level.as_str(),
                        decided()
                    )
                })
            }
            Expectation::Changes(index) => {
                let without = self.assess_with(&normalized, Some(index)).level;
                (decision.level >= without).then(|| {
                    let id = &self.exceptions[index].id;
                    format!("example of {id} must be lowered by it, but is {} with it or without", decided())
                })
            }
            Expectation::Shows(family) => {
                let first = self.rules.len() + self.exceptions.len();
                let found = self.scan(&normalized, None).has(first + family);
                (!found).then(|| format!("example of {} does not show it", self.distress[family]))
            }
        }
    }
}

/// What rules, exceptions and distress families have in common.
struct Entry<'r> {
    id: &'r Spanned<String>,
    why: &'r Spanned<String>,
    phrases: &'r [Spanned<String>],
}

struct Builder<'a> {
    checker: Checker<'a>,
    vocabulary: Vocabulary,
    examples: Vec<(Spanned<String>, Expectation)>,
}

impl Builder<'_> {
    fn build(&mut self, raw: RawRules) -> Option<Detector> {
        let entries = raw.vocab.iter().map(|(name, entries)| {
            (name.clone(), entries.get_ref().iter().map(|entry| entry.get_ref().clone()).collect())
        });
        self.vocabulary = Vocabulary::new(entries.collect::<HashMap<_, _>>());
        for (name, entries) in &raw.vocab {
            if let Err(problem) = self.vocabulary.check_entry(name) {
                self.checker.error(entries.span(), problem);
            }
        }
        let negation = self.alternation("negation", &raw.signals.negation);
        let not_now = self.alternation("not_now", &raw.signals.not_now);
        let imminent = self.alternation("imminent", &raw.signals.imminent);

        let mut ids = HashSet::new();
        let mut entries = Vec::new();
        let mut rules = Vec::with_capacity(raw.rule.len());
        let mut first_person_examples = Vec::new();
        for raw_rule in raw.rule {
            if *raw_rule.level.get_ref() == CrisisLevel::None {
                self.checker.error(raw_rule.level.span(), "a rule's level must be mention, third_party or self");
            }
            let index = rules.len();
            if *raw_rule.level.get_ref() == CrisisLevel::SelfRisk && raw_rule.strength != Strength::Weak {
                first_person_examples.extend(raw_rule.examples.iter().map(|example| example.get_ref().clone()));
            }
            let examples = raw_rule.examples.into_iter().map(|e| (e, Expectation::Fires(index)));
            let not = raw_rule.not.into_iter().map(|e| (e, Expectation::Quiet(index)));
            let entry = Entry { id: &raw_rule.id, why: &raw_rule.why, phrases: &raw_rule.phrases };
            entries.push(self.entry(&mut ids, entry, examples.chain(not).collect())?);
            rules.push(Rule {
                id: raw_rule.id.into_inner(),
                level: raw_rule.level.into_inner(),
                strength: raw_rule.strength,
                category: raw_rule.category,
            });
        }
        let mut exceptions = Vec::with_capacity(raw.exception.len());
        for raw in raw.exception {
            let index = exceptions.len();
            let examples = raw.examples.into_iter().map(|e| (e, Expectation::Changes(index))).collect();
            let entry = Entry { id: &raw.id, why: &raw.why, phrases: &raw.phrases };
            entries.push(self.entry(&mut ids, entry, examples)?);
            let (vetoes, lowers_to) = (raw.vetoes, raw.lowers_to);
            exceptions.push(Exception { id: raw.id.into_inner(), vetoes, lowers_to });
        }
        let mut distress = Vec::with_capacity(raw.distress.len());
        for family in raw.distress {
            let index = distress.len();
            let examples = family.examples.into_iter().map(|e| (e, Expectation::Shows(index))).collect();
            let entry = Entry { id: &family.id, why: &family.why, phrases: &family.phrases };
            entries.push(self.entry(&mut ids, entry, examples)?);
            distress.push(family.id.into_inner());
        }
        let scan = Scanner::new(entries);
        Some(Detector {
            rules,
            first_person_examples,
            exceptions,
            distress,
            scan,
            negation: negation?,
            not_now: not_now?,
            imminent: imminent?,
            settings: raw.settings,
        })
    }

    /// Checks what every rule, exception and distress family has (a unique id, a `why`, examples) and compiles
    /// its phrases.
    fn entry(
        &mut self,
        ids: &mut HashSet<String>,
        entry: Entry<'_>,
        examples: Vec<(Spanned<String>, Expectation)>,
    ) -> Option<Vec<Phrase>> {
        self.unique(ids, entry.id);
        self.prose(entry.why);
        if examples.is_empty() {
            self.checker.error(entry.id.span(), format!("{} has no examples", entry.id.get_ref()));
        }
        self.examples.extend(examples);
        let compiled = self.compile(entry.id, entry.phrases)?;
        match compiled.into_iter().map(Phrase::new).collect() {
            Ok(phrases) => Some(phrases),
            Err(problem) => {
                self.checker.error(entry.id.span(), format!("{}: {problem}", entry.id.get_ref()));
                None
            }
        }
    }

    fn unique(&mut self, ids: &mut HashSet<String>, id: &Spanned<String>) {
        let valid = !id.get_ref().is_empty()
            && id.get_ref().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if !valid {
            self.checker
                .error(id.span(), format!("id {:?} must be lower-case letters, digits, -, _ and .", id.get_ref()));
        } else if !ids.insert(id.get_ref().clone()) {
            self.checker.error(id.span(), format!("duplicate id {:?}", id.get_ref()));
        }
    }

    fn prose(&mut self, why: &Spanned<String>) {
        if why.get_ref().trim().is_empty() || why.get_ref().contains('\n') {
            self.checker.error(why.span(), "`why` must be one line saying what the rule recognises");
        }
    }

    /// Compiles each phrase, reporting each mistake at its place.
    fn compile(&mut self, id: &Spanned<String>, phrases: &[Spanned<String>]) -> Option<Vec<phrase::Compiled>> {
        if phrases.is_empty() {
            self.checker.error(id.span(), format!("{} has no phrases", id.get_ref()));
            return None;
        }
        let mut compiled = Vec::with_capacity(phrases.len());
        for phrase in phrases {
            match phrase::compile(phrase.get_ref(), &self.vocabulary) {
                Ok(phrase) => compiled.push(phrase),
                Err(problem) => self.checker.error(phrase.span(), problem),
            }
        }
        (compiled.len() == phrases.len()).then_some(compiled)
    }

    /// A signal's phrases as one regex: signals are looked for in a few words around a hit only.
    fn alternation(&mut self, name: &str, phrases: &[Spanned<String>]) -> Option<Regex> {
        let id = Spanned::new(0..0, format!("signals.{name}"));
        let sources: Vec<String> = self.compile(&id, phrases)?.iter().map(|c| format!("(?:{})", c.regex)).collect();
        Some(Regex::new(&sources.join("|")).expect("every phrase is a valid regex"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problems found in the built-in rules after replacing `from` with `to`.
    fn errors_after(from: &str, to: &str) -> Vec<crate::ContentError> {
        assert!(ENGLISH_RULES.contains(from), "the rules no longer contain {from:?}");
        match Detector::parse("broken.toml", &ENGLISH_RULES.replacen(from, to, 1)) {
            Ok(_) => panic!("replacing {from:?} with {to:?} was accepted"),
            Err(errors) => errors.0,
        }
    }

    fn assert_error(from: &str, to: &str, problem: &str) {
        let errors = errors_after(from, to);
        let line = ENGLISH_RULES[..ENGLISH_RULES.find(from).unwrap()].lines().count();
        assert!(
            errors.iter().any(|e| e.problem.contains(problem) && e.file == "broken.toml" && e.line >= line),
            "expected {problem:?} at or after line {line}, got {errors:?}"
        );
    }

    #[test]
    fn the_built_in_rules_load_and_every_example_holds() {
        for (name, text) in BUILT_IN_RULES {
            if let Err(errors) = Detector::parse(name, text) {
                panic!("{name}: {} problem(s):\n{errors}", errors.0.len());
            }
        }
    }

    #[test]
    fn a_failing_example_is_reported_at_its_place() {
        assert_error("examples = [\"I want to kill myself\"", "examples = [\"good morning\"", "must be `self`");
        assert_error("\"this homework is killing me\"", "\"I want to kill myself\"", "must be below");
    }

    #[test]
    fn mistakes_in_the_file_name_their_place() {
        assert_error("level = \"self\"", "level = \"selfish\"", "unknown variant");
        assert_error("strength = \"strong\"", "strength = \"strong\"\ncolour = 1", "colour");
        assert_error("\"{kill_verb} {myself}\"", "\"{kil} {myself}\"", "no vocabulary {kil}");
        assert_error("\"{kill_verb} {myself}\"", "\"({kill_verb} {myself}\"", "missing");
        assert_error("id = \"self.active.kill-myself\"", "id = \"self.active.suicidal\"", "duplicate id");
        assert_error("level = \"self\"", "level = \"none\"", "a rule's level");
    }
}
