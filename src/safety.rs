//! Crisis detection: does a message speak of suicidal ideation, and whose?
//!
//! The rules are data: [`crisis-rules/en.toml`](../../crisis-rules/en.toml), loaded and validated by [`rules`],
//! written as phrases (see [`crate::phrase`]) and organised by the categories of the Columbia scale. Every rule
//! has a [`CrisisLevel`] and a [`Strength`]; exceptions (negation, hyperbole, idioms, reported speech, technical
//! uses) veto or lower the hits they overlap. The strongest level left wins, and the [`Assessment`] names the
//! rule that decided and its category, so tests and operators can see why, without any message content.
//!
//! Speed: the scanner (`safety/scanner.rs`) finds which rules, exceptions and distress families occur with one
//! Aho-Corasick pass over the phrases' anchor words; only the places a decision needs are looked at again.

mod rules;
mod scanner;

use std::cell::OnceCell;
use std::ops::Range;

use regex::Regex;
use regex_automata::PatternID;
use serde::{Deserialize, Serialize};

pub use rules::BUILT_IN_RULES;

/// How a message relates to suicide, from least to most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrisisLevel {
    /// Nothing about suicide or self-harm.
    None,
    /// Suicide or self-harm as a topic ("does ketamine help with suicidal ideation?").
    Mention,
    /// Concern that someone else may be at risk.
    ThirdParty,
    /// The writer's own suicidal thoughts, intent, plans or self-harm.
    #[serde(rename = "self")]
    SelfRisk,
}

impl CrisisLevel {
    /// The stable name used in JSON output, logs and the rules file.
    pub fn as_str(self) -> &'static str {
        match self {
            CrisisLevel::None => "none",
            CrisisLevel::Mention => "mention",
            CrisisLevel::ThirdParty => "third_party",
            CrisisLevel::SelfRisk => "self",
        }
    }

    /// Whether the reply leads with a full crisis block.
    pub fn is_crisis(self) -> bool {
        self >= CrisisLevel::ThirdParty
    }
}

/// What kind of language a rule recognises: the ideation and behaviour categories of the Columbia
/// Suicide Severity Rating Scale (C-SSRS), plus the kinds the scale does not grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// C-SSRS 1: wish to be dead, or not to wake up.
    WishToBeDead,
    /// C-SSRS 2: non-specific active suicidal thoughts.
    ActiveThoughts,
    /// C-SSRS 3: thoughts of a method, without intent or plan.
    Method,
    /// C-SSRS 4: intent to act.
    Intent,
    /// C-SSRS 5: a plan, often with a time.
    Plan,
    /// Behaviour: acquiring or saving means, writing a note, giving things away, saying goodbye.
    Preparatory,
    /// Behaviour: an aborted, interrupted or actual attempt.
    Attempt,
    /// Non-suicidal self-injury.
    SelfHarm,
    /// How much of something is lethal, or how to die.
    LethalityQuestion,
    /// Several warning signs (988 / AFSP lists) together, with no crisis phrase.
    WarningSigns,
    /// Someone else's ideation, intent or self-harm.
    SomeoneElse,
    /// Suicide or self-harm as a topic.
    Topic,
}

impl Category {
    /// Whether the words show imminent risk: intent, a plan, preparation (a note, means at hand, a farewell) or
    /// an attempt. Such a message is answered even within the crisis cooldown ([`crate::cooldown`]).
    pub fn is_imminent(self) -> bool {
        matches!(self, Category::Intent | Category::Plan | Category::Preparatory | Category::Attempt)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::WishToBeDead => "wish-to-be-dead",
            Category::ActiveThoughts => "active-thoughts",
            Category::Method => "method",
            Category::Intent => "intent",
            Category::Plan => "plan",
            Category::Preparatory => "preparatory",
            Category::Attempt => "attempt",
            Category::SelfHarm => "self-harm",
            Category::LethalityQuestion => "lethality-question",
            Category::WarningSigns => "warning-signs",
            Category::SomeoneElse => "someone-else",
            Category::Topic => "topic",
        }
    }
}

/// How much a hit needs from the rest of the message to stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    /// Stands on its own.
    Strong,
    /// Also said as hyperbole or about the past ("this song makes me want to die", "six years ago I wanted to
    /// kill myself"): stands unless a not-now sign is near and nothing in the message says otherwise.
    Ambiguous,
    /// Says little alone ("I just want it to end"): stands with support, namely a distress sign or another
    /// crisis phrase of a different rule.
    Weak,
}

/// The detector's decision and the rule behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment<'d> {
    pub level: CrisisLevel,
    /// The rule that set the level (`None` for [`CrisisLevel::None`]).
    pub rule: Option<&'d str>,
    pub category: Option<Category>,
    /// When hits were vetoed, the exception that vetoed the strongest of them.
    pub exception: Option<&'d str>,
}

impl Assessment<'_> {
    const NONE: Assessment<'static> =
        Assessment { level: CrisisLevel::None, rule: None, category: None, exception: None };
}

/// A rule: phrases that raise a message to a level.
#[derive(Debug)]
struct Rule {
    id: String,
    level: CrisisLevel,
    strength: Strength,
    category: Category,
}

/// An exception: phrases that veto the hits they overlap, at some levels, or lower them to another level.
#[derive(Debug)]
struct Exception {
    id: String,
    vetoes: Vec<CrisisLevel>,
    lowers_to: Option<CrisisLevel>,
}

/// Tuning that applies to every rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The language the rules read (ISO 639-1); it picks the language of the crisis reply.
    language: String,
    /// How many words before a hit, within its clause, may negate it.
    negation_window: usize,
    /// How many bytes around a hit not-now signs and time markers are looked for.
    context_reach: usize,
    /// How many distinct distress families make a crisis on their own.
    many_distress_signs: usize,
}

/// The crisis detector. Build it once; [`Detector::assess`] is cheap and never fails.
#[derive(Debug)]
pub struct Detector {
    rules: Vec<Rule>,
    /// The examples of the `self` rules that stand without support (strong and ambiguous): what a server's
    /// allowed phrase must never silence.
    first_person_examples: Vec<String>,
    exceptions: Vec<Exception>,
    /// Distress families, by id.
    distress: Vec<String>,
    /// The phrases of every rule, then every exception, then every distress family, by that index.
    scan: scanner::Scanner,
    negation: Regex,
    not_now: Regex,
    imminent: Regex,
    settings: Settings,
}

impl Default for Detector {
    /// The English rules built into the binary; a unit test proves they load and their examples hold.
    fn default() -> Self {
        let (name, text) = BUILT_IN_RULES[0];
        Detector::parse(name, text).unwrap_or_else(|errors| panic!("{errors}"))
    }
}

impl Detector {
    /// Every language's rules built into the binary, English first.
    pub fn built_in() -> Vec<Detector> {
        BUILT_IN_RULES
            .iter()
            .map(|(name, text)| Detector::parse(name, text).unwrap_or_else(|errors| panic!("{errors}")))
            .collect()
    }

    /// The language of its rules (ISO 639-1).
    pub fn language(&self) -> &str {
        &self.settings.language
    }
}

/// A place where an exception matched.
struct Veto {
    span: Range<usize>,
    exception: usize,
}

/// Every place where an exception matched, by start, so a hit finds the ones overlapping it by binary search.
struct Vetoes {
    by_start: Vec<Veto>,
    longest: usize,
}

impl Vetoes {
    fn overlapping(&self, hit: &Range<usize>) -> impl Iterator<Item = &Veto> + use<'_> {
        let start = hit.start;
        let first = self.by_start.partition_point(|v| v.span.start + self.longest <= start);
        let end = self.by_start.partition_point(|v| v.span.start < hit.end);
        self.by_start[first..end.max(first)].iter().filter(move |v| v.span.end > start)
    }
}

/// How far back from a hit negation is looked for: a few words, never the whole message.
const NEGATION_BYTES: usize = 96;
/// Words that start a new clause.
const CONJUNCTIONS: &[&str] = &["and", "but", "so", "because", "then", "yet"];
/// How many unnegated hits of each rule are kept as support for weak phrases of other rules.
const SUPPORT_HITS: usize = 2;

/// What one search learned about a message, computed as far as a decision needs it.
struct Scan<'t> {
    text: &'t str,
    found: scanner::Found,
    vetoes: OnceCell<Vetoes>,
    /// Hits of the `self` rules that no negation or exception drops, a few per rule, as support for weak phrases.
    support: OnceCell<Vec<(usize, Range<usize>)>>,
    /// Leave this exception out (to check what an exception's examples owe to it).
    disabled_exception: Option<usize>,
}

impl Scan<'_> {
    /// Whether the pattern with this index (rules, then exceptions, then distress families) occurs.
    fn has(&self, pattern: usize) -> bool {
        self.found.entries.contains(PatternID::new_unchecked(pattern))
    }
}

impl Detector {
    /// How many rules, exceptions and distress families the detector has.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.rules.len(), self.exceptions.len(), self.distress.len())
    }

    /// The examples of the `self` rules that stand on their own ("I want to die", "I'm going to end it tonight").
    pub fn first_person_examples(&self) -> &[String] {
        &self.first_person_examples
    }

    /// Assesses normalised text (see [`crate::normalize::normalize`]).
    pub fn assess(&self, normalized: &str) -> Assessment<'_> {
        self.assess_with(normalized, None)
    }

    fn scan<'t>(&self, normalized: &'t str, disabled_exception: Option<usize>) -> Scan<'t> {
        let found = self.scan.find(normalized);
        Scan { text: normalized, found, vetoes: OnceCell::new(), support: OnceCell::new(), disabled_exception }
    }

    fn assess_with(&self, normalized: &str, disabled_exception: Option<usize>) -> Assessment<'_> {
        let scan = self.scan(normalized, disabled_exception);
        if scan.found.entries.is_empty() {
            return Assessment::NONE;
        }
        let mut decision = Assessment::NONE;
        let mut strongest_vetoed: (CrisisLevel, Option<&str>) = (CrisisLevel::None, None);
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.level <= decision.level || !scan.has(index) {
                continue;
            }
            match self.standing_level(index, &scan) {
                Ok((level, hit)) if level > decision.level => {
                    let category = self.category(rule, &hit, &scan);
                    decision = Assessment { level, rule: Some(&rule.id), category: Some(category), exception: None };
                }
                Ok(_) => {}
                Err(veto) if rule.level > strongest_vetoed.0 => strongest_vetoed = (rule.level, Some(veto)),
                Err(_) => {}
            }
        }
        if decision.level < CrisisLevel::SelfRisk && self.distress_signs(&scan) >= self.settings.many_distress_signs {
            decision = Assessment {
                level: CrisisLevel::SelfRisk,
                rule: Some("warning-signs.many"),
                category: Some(Category::WarningSigns),
                exception: None,
            };
        }
        if strongest_vetoed.0 > decision.level {
            decision.exception = strongest_vetoed.1;
        }
        decision
    }

    /// The highest level at which a hit of the rule stands, with that hit, or the veto of its last hit.
    fn standing_level<'a>(&'a self, rule: usize, scan: &Scan<'_>) -> Result<(CrisisLevel, Range<usize>), &'a str> {
        let mut veto = "no hit";
        let mut best: Option<(CrisisLevel, Range<usize>)> = None;
        for hit in self.scan.hits(rule, &scan.found, scan.text) {
            match self.hit_level(rule, hit.clone(), scan) {
                Ok(level) if level == self.rules[rule].level => return Ok((level, hit)),
                Ok(level) if best.as_ref().is_none_or(|(best, _)| level > *best) => best = Some((level, hit)),
                Ok(_) => {}
                Err(reason) => veto = reason,
            }
        }
        best.ok_or(veto)
    }

    /// A rule's category, except that a time marker near a wish or thought makes it intent ("I want to die
    /// tonight").
    fn category(&self, rule: &Rule, hit: &Range<usize>, scan: &Scan<'_>) -> Category {
        let thought = matches!(rule.category, Category::WishToBeDead | Category::ActiveThoughts);
        let timed = || self.imminent.is_match(&scan.text[around(scan.text, hit, self.settings.context_reach)]);
        if thought && rule.level == CrisisLevel::SelfRisk && timed() {
            Category::Intent
        } else {
            rule.category
        }
    }

    /// The level one hit stands at, or what vetoes it: a negation just before it, missing or contrary
    /// context for a phrase that is not strong on its own, or an exception overlapping it.
    fn hit_level<'a>(&'a self, index: usize, hit: Range<usize>, scan: &Scan<'_>) -> Result<CrisisLevel, &'a str> {
        let rule = &self.rules[index];
        if self.is_negated(&scan.text[..hit.start]) {
            return Err("negation.before");
        }
        let near = |regex: &Regex| regex.is_match(&scan.text[around(scan.text, &hit, self.settings.context_reach)]);
        match rule.strength {
            Strength::Strong => {}
            Strength::Ambiguous => {
                if near(&self.not_now) && !near(&self.imminent) && self.distress_signs(scan) == 0 {
                    return Err("context.not-now");
                }
            }
            Strength::Weak => {
                let supported = self.distress_signs(scan) > 0 || self.other_crisis_rule_occurs(index, &hit, scan);
                if !supported {
                    return Err("weak.without-support");
                }
            }
        }
        let mut level = rule.level;
        for veto in self.vetoes(scan).overlapping(&hit) {
            let exception = &self.exceptions[veto.exception];
            if exception.vetoes.contains(&level) {
                match exception.lowers_to {
                    Some(lower) => level = lower,
                    None => return Err(&exception.id),
                }
            }
        }
        Ok(level)
    }

    /// Whether a `self` rule other than `index` has a hit elsewhere in the message that no negation or exception
    /// drops: two different crisis phrases support each other ("I've got everything I need" ... "I'm doing it tonight").
    fn other_crisis_rule_occurs(&self, index: usize, hit: &Range<usize>, scan: &Scan<'_>) -> bool {
        let support = scan.support.get_or_init(|| {
            let found = self
                .rules
                .iter()
                .enumerate()
                .filter(|(other, rule)| rule.level == CrisisLevel::SelfRisk && scan.has(*other));
            found
                .flat_map(|(other, _)| {
                    let unvetoed = self.scan.hits(other, &scan.found, scan.text).filter(|hit| {
                        let excepted = self
                            .vetoes(scan)
                            .overlapping(hit)
                            .any(|veto| self.exceptions[veto.exception].vetoes.contains(&CrisisLevel::SelfRisk));
                        !excepted && !self.is_negated(&scan.text[..hit.start])
                    });
                    unvetoed.take(SUPPORT_HITS).map(move |hit| (other, hit))
                })
                .collect()
        });
        support.iter().any(|(other, span)| *other != index && (span.end <= hit.start || span.start >= hit.end))
    }

    fn distress_signs(&self, scan: &Scan<'_>) -> usize {
        let first = self.rules.len() + self.exceptions.len();
        (first..first + self.distress.len()).filter(|&pattern| scan.has(pattern)).count()
    }

    fn vetoes<'s>(&self, scan: &'s Scan<'_>) -> &'s Vetoes {
        scan.vetoes.get_or_init(|| {
            let first = self.rules.len();
            let found = self
                .exceptions
                .iter()
                .enumerate()
                .filter(|(index, _)| scan.has(first + index) && scan.disabled_exception != Some(*index));
            let mut by_start: Vec<Veto> = found
                .flat_map(|(exception, _)| {
                    let hits = self.scan.hits(first + exception, &scan.found, scan.text);
                    hits.map(move |span| Veto { span, exception })
                })
                .collect();
            by_start.sort_by_key(|veto| veto.span.start);
            let longest = by_start.iter().map(|veto| veto.span.len()).max().unwrap_or(0);
            Vetoes { by_start, longest }
        })
    }

    /// Whether the last few words before a hit, in its clause, negate it.
    fn is_negated(&self, before_hit: &str) -> bool {
        let recent = &before_hit[around(before_hit, &(before_hit.len()..before_hit.len()), NEGATION_BYTES)];
        let sentence = recent.rsplit(['.', '!', '?', ';', ',', ':', '\n']).next().unwrap_or("");
        let window_start = sentence
            .char_indices()
            .filter(|&(_, c)| c == ' ')
            .map(|(index, _)| index)
            .rev()
            .nth(self.settings.negation_window)
            .unwrap_or(0);
        let window = &sentence[window_start..];
        // A conjunction starts a new clause: "without dairy and I feel suicidal" is not negated.
        let mut clause_start = 0;
        let mut offset = 0;
        for word in window.split(' ') {
            offset += word.len() + 1;
            if CONJUNCTIONS.contains(&word) {
                clause_start = offset.min(window.len());
            }
        }
        self.negation.is_match(&window[clause_start..])
    }
}

/// The bytes of `text` within `reach` of `hit`, widened to character boundaries.
fn around(text: &str, hit: &Range<usize>, reach: usize) -> Range<usize> {
    let mut start = hit.start.saturating_sub(reach);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (hit.end + reach).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    fn assess(text: &str) -> Assessment<'static> {
        static DETECTOR: std::sync::LazyLock<Detector> = std::sync::LazyLock::new(Detector::default);
        DETECTOR.assess(&normalize(text))
    }

    #[test]
    fn levels_order_by_urgency() {
        assert!(CrisisLevel::SelfRisk > CrisisLevel::ThirdParty);
        assert!(CrisisLevel::ThirdParty > CrisisLevel::Mention);
        assert!(CrisisLevel::Mention > CrisisLevel::None);
        assert!(CrisisLevel::ThirdParty.is_crisis() && !CrisisLevel::Mention.is_crisis());
    }

    #[test]
    fn the_strongest_level_wins_and_names_its_rule_and_category() {
        let decision = assess("My friend is suicidal and honestly I want to die too");
        assert_eq!(decision.level, CrisisLevel::SelfRisk);
        assert!(decision.rule.is_some_and(|id| id.starts_with("self.")), "{decision:?}");
        assert!(decision.category.is_some(), "{decision:?}");
    }

    #[test]
    fn a_time_marker_turns_a_wish_into_intent() {
        assert_eq!(assess("I just want to die").category, Some(Category::WishToBeDead));
        assert_eq!(assess("I just want to die tonight").category, Some(Category::Intent));
        assert_eq!(assess("I want to kill myself when everyone is asleep").category, Some(Category::Intent));
        assert_eq!(assess("this song makes me want to die lol").level, CrisisLevel::None);
        assert_eq!(assess("I want to die tonight lol").level, CrisisLevel::SelfRisk, "a time outweighs the joke");
    }

    #[test]
    fn a_vetoed_hit_reports_its_exception() {
        let decision = assess("I'm not suicidal, just tired");
        assert_eq!(decision.level, CrisisLevel::None);
        assert!(decision.exception.is_some_and(|id| id.starts_with("negation")), "{decision:?}");
    }

    #[test]
    fn a_veto_only_covers_the_hit_it_overlaps() {
        let decision = assess("I'm not suicidal. But I really want to die tonight");
        assert_eq!(decision.level, CrisisLevel::SelfRisk, "{decision:?}");
    }

    #[test]
    fn ordinary_chat_fires_nothing() {
        assert_eq!(assess("good morning everyone, how was your weekend?"), Assessment::NONE);
    }

    #[test]
    fn the_probes_of_the_detector_issue_are_answered() {
        let cases = [
            ("what's the lethal dose of ketamine", CrisisLevel::SelfRisk),
            ("how much ketamine would it take to overdose and die", CrisisLevel::SelfRisk),
            (
                "I've got everything I need now and I'm doing it tonight. thank you all for being my friends",
                CrisisLevel::SelfRisk,
            ),
            ("my brother texted me that he's going to end it all tonight", CrisisLevel::ThirdParty),
            ("kill\u{2066} myself", CrisisLevel::SelfRisk),
            ("this boss fight is killing me lol", CrisisLevel::None),
        ];
        for (text, level) in cases {
            assert_eq!(assess(text).level, level, "{text:?} -> {:?}", assess(text));
        }
    }

    #[test]
    fn a_crisis_at_the_end_of_a_long_message_full_of_vetoed_phrases_is_found() {
        let noise = "kill myself lol, i'm done, ".repeat(64 * 1024 / 26);
        assert_eq!(assess(&noise).level, CrisisLevel::None);
        let text = format!("{noise} honestly I want to end my life tonight");
        assert_eq!(assess(&text).level, CrisisLevel::SelfRisk);
        assert!(text.len() > 64 * 1024);
    }

    /// Messages every rule file must keep at `self`, from the rules' own examples.
    const CRISIS: &[&str] = &[
        "I want to kill myself",
        "I just want to die",
        "I've written my suicide note",
        "what's the lethal dose of ketamine",
        "I keep having suicidal thoughts",
        "I wish I could sleep and never wake up",
        "I'm going to take all of my pills",
    ];

    /// Format characters (Cf), variation selectors and the combining grapheme joiner.
    const INVISIBLE: &[char] = &[
        '\u{00ad}',
        '\u{061c}',
        '\u{180e}',
        '\u{200b}',
        '\u{200c}',
        '\u{200d}',
        '\u{200e}',
        '\u{202a}',
        '\u{202e}',
        '\u{2060}',
        '\u{2066}',
        '\u{2069}',
        '\u{feff}',
        '\u{fe0f}',
        '\u{e0001}',
        '\u{e0041}',
        '\u{034f}',
        '\u{1d173}',
    ];

    proptest::proptest! {
        #[test]
        fn format_characters_anywhere_change_nothing(
            message in proptest::sample::select(CRISIS),
            inserts in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::sample::select(INVISIBLE)), 1..6),
        ) {
            let mut chars: Vec<char> = message.chars().collect();
            for (at, c) in inserts {
                chars.insert(at.index(chars.len() + 1), c);
            }
            let text: String = chars.into_iter().collect();
            proptest::prop_assert_eq!(assess(&text).level, CrisisLevel::SelfRisk, "{:?}", text);
        }

        #[test]
        fn case_repeated_letters_and_spacing_change_nothing(
            message in proptest::sample::select(CRISIS),
            upper in proptest::prelude::any::<bool>(),
            repeats in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..4),
            spaces in "[ \t]{1,4}",
        ) {
            let mut words: Vec<String> = message.split(' ').map(|word| {
                if upper { word.to_uppercase() } else { word.to_owned() }
            }).collect();
            for at in repeats {
                let word = at.index(words.len());
                let letters: Vec<char> = words[word].chars().collect();
                let position = letters.iter().rposition(|c| c.is_alphabetic()).unwrap_or(0);
                let doubled: String = letters.iter().enumerate()
                    .flat_map(|(i, c)| std::iter::repeat_n(*c, if i == position { 3 } else { 1 }))
                    .collect();
                words[word] = doubled;
            }
            let text = words.join(&spaces);
            proptest::prop_assert_eq!(assess(&text).level, CrisisLevel::SelfRisk, "{:?}", text);
        }

        #[test]
        fn any_input_is_assessed_without_panicking(text in ".{0,2000}") {
            let decision = assess(&text);
            proptest::prop_assert_eq!(decision.rule.is_some(), decision.level != CrisisLevel::None);
        }
    }
}
