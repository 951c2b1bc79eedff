//! Crisis detection: does a message speak of suicidal ideation, and whose?
//!
//! The detector runs the rules of [`rules`] over normalised text (see [`crate::normalize`]). Every rule belongs to
//! a family and a [`CrisisLevel`]; exceptions (negation, hyperbole, idioms, reported speech, technical uses) veto
//! the hits they overlap. The strongest level left wins, and the [`Assessment`] names the rule that decided, so
//! tests and operators can see why, without any message content.

mod rules;

use rules::Strength;

use std::ops::Range;

use regex::{Regex, RegexSet};
use serde::Serialize;

use crate::normalize::compile_pattern;

/// How a message relates to suicide, from least to most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
    /// The stable name used in JSON output and logs.
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

/// The detector's decision and the rule behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    pub level: CrisisLevel,
    /// The rule that set the level (`None` for [`CrisisLevel::None`]).
    pub rule: Option<&'static str>,
    /// When hits were vetoed, the exception that vetoed the strongest of them.
    pub exception: Option<&'static str>,
}

/// Compiled patterns: one set to find out fast whether anything fires, one regex per pattern for the places.
#[derive(Debug)]
struct Table {
    ids: Vec<&'static str>,
    set: RegexSet,
    regexes: Vec<Regex>,
}

impl Table {
    fn new(patterns: impl Iterator<Item = (&'static str, &'static str)>) -> Table {
        let (ids, sources): (Vec<_>, Vec<_>) = patterns.map(|(id, pattern)| (id, compile_pattern(pattern))).unzip();
        let regexes = sources
            .iter()
            .zip(&ids)
            .map(|(source, id)| Regex::new(source).unwrap_or_else(|e| panic!("rule {id}: {e}")))
            .collect();
        let set = RegexSet::new(&sources).expect("every pattern compiled alone, so the set compiles");
        Table { ids, set, regexes }
    }
}

/// The crisis detector. Build it once; [`Detector::assess`] is cheap and never fails.
#[derive(Debug)]
pub struct Detector {
    triggers: Table,
    trigger_levels: Vec<CrisisLevel>,
    trigger_strengths: Vec<rules::Strength>,
    negation: Regex,
    not_now: Regex,
    distress: RegexSet,
    exceptions: Table,
    exception_scopes: Vec<&'static [CrisisLevel]>,
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            triggers: Table::new(rules::TRIGGERS.iter().map(|rule| (rule.id, rule.pattern))),
            trigger_levels: rules::TRIGGERS.iter().map(|rule| rule.level).collect(),
            trigger_strengths: rules::TRIGGERS.iter().map(|rule| rule.strength).collect(),
            negation: compiled(rules::NEGATION),
            not_now: compiled(rules::NOT_NOW),
            distress: RegexSet::new(rules::DISTRESS.iter().map(|p| compile_pattern(p))).expect("valid patterns"),
            exceptions: Table::new(rules::EXCEPTIONS.iter().map(|rule| (rule.id, rule.pattern))),
            exception_scopes: rules::EXCEPTIONS.iter().map(|rule| rule.vetoes).collect(),
        }
    }
}

fn compiled(pattern: &str) -> Regex {
    Regex::new(&compile_pattern(pattern)).expect("the detector's patterns are valid")
}

/// A place where an exception matched, and what it vetoes there.
struct Veto {
    span: Range<usize>,
    id: &'static str,
    scope: &'static [CrisisLevel],
}

impl Detector {
    /// Assesses normalised text (see [`crate::normalize::normalize`]).
    pub fn assess(&self, normalized: &str) -> Assessment {
        let mut decision = Assessment { level: CrisisLevel::None, rule: None, exception: None };
        let fired = self.triggers.set.matches(normalized);
        let distress_signs = std::cell::OnceCell::new();
        let distress_signs = || *distress_signs.get_or_init(|| self.distress.matches(normalized).iter().count());
        if !fired.matched_any() {
            if self.distress.is_match(normalized) && distress_signs() >= rules::MANY_DISTRESS_SIGNS {
                decision.level = CrisisLevel::SelfRisk;
                decision.rule = Some("self.distress.many-signs");
            }
            return decision;
        }
        let vetoes = self.vetoes(normalized);
        let distress = || distress_signs() > 0;
        let mut strongest_vetoed = (CrisisLevel::None, None);
        for rule in fired.iter() {
            let level = self.trigger_levels[rule];
            if level <= decision.level {
                continue;
            }
            let mut vetoed_by = None;
            let stands = self.triggers.regexes[rule].find_iter(normalized).any(|hit| {
                let veto = self.veto(rule, hit.range(), normalized, &vetoes, &distress);
                vetoed_by = vetoed_by.or(veto);
                veto.is_none()
            });
            if stands {
                decision.level = level;
                decision.rule = Some(self.triggers.ids[rule]);
            } else if level > strongest_vetoed.0 {
                strongest_vetoed = (level, vetoed_by);
            }
        }
        if strongest_vetoed.0 > decision.level {
            decision.exception = strongest_vetoed.1;
        }
        decision
    }

    /// What, if anything, vetoes one hit of a rule: a negation just before it, missing or contrary context for
    /// a phrase that is not strong on its own, or an exception overlapping it.
    fn veto(
        &self,
        rule: usize,
        hit: Range<usize>,
        normalized: &str,
        vetoes: &[Veto],
        distress: &dyn Fn() -> bool,
    ) -> Option<&'static str> {
        if self.is_negated(&normalized[..hit.start]) {
            return Some("negation.before");
        }
        let context = match self.trigger_strengths[rule] {
            Strength::Strong => None,
            Strength::Ambiguous => {
                (self.not_now_near(normalized, hit.clone()) && !distress()).then_some("context.not-now")
            }
            Strength::Weak => (!distress()).then_some("weak.without-distress"),
        };
        let level = self.trigger_levels[rule];
        context.or_else(|| {
            let overlapping = vetoes
                .iter()
                .find(|veto| veto.scope.contains(&level) && veto.span.start < hit.end && hit.start < veto.span.end);
            overlapping.map(|veto| veto.id)
        })
    }

    /// Whether a joke, hyperbole or long-past cue stands close to a hit.
    fn not_now_near(&self, normalized: &str, hit: Range<usize>) -> bool {
        let mut start = hit.start.saturating_sub(rules::NOT_NOW_REACH);
        while !normalized.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (hit.end + rules::NOT_NOW_REACH).min(normalized.len());
        while !normalized.is_char_boundary(end) {
            end += 1;
        }
        self.not_now.is_match(&normalized[start..end])
    }

    /// Whether the last few words before a hit, in its clause, negate it.
    fn is_negated(&self, before_hit: &str) -> bool {
        let clause = before_hit.rsplit(['.', '!', '?', ';', ',', ':', '\n']).next().unwrap_or("");
        let window_start = clause
            .char_indices()
            .filter(|&(_, c)| c == ' ')
            .map(|(index, _)| index)
            .rev()
            .nth(rules::NEGATION_WINDOW)
            .unwrap_or(0);
        self.negation.is_match(&clause[window_start..])
    }

    fn vetoes(&self, normalized: &str) -> Vec<Veto> {
        let table = &self.exceptions;
        let matched = table.set.matches(normalized);
        matched
            .iter()
            .flat_map(|index| {
                table.regexes[index].find_iter(normalized).map(move |m| Veto {
                    span: m.range(),
                    id: table.ids[index],
                    scope: self.exception_scopes[index],
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    fn assess(text: &str) -> Assessment {
        Detector::default().assess(&normalize(text))
    }

    #[test]
    fn levels_order_by_urgency() {
        assert!(CrisisLevel::SelfRisk > CrisisLevel::ThirdParty);
        assert!(CrisisLevel::ThirdParty > CrisisLevel::Mention);
        assert!(CrisisLevel::Mention > CrisisLevel::None);
        assert!(CrisisLevel::ThirdParty.is_crisis() && !CrisisLevel::Mention.is_crisis());
    }

    #[test]
    fn the_strongest_level_wins_and_names_its_rule() {
        let decision = assess("My friend is suicidal and honestly I want to die too");
        assert_eq!(decision.level, CrisisLevel::SelfRisk);
        assert!(decision.rule.is_some_and(|id| id.starts_with("self.")), "{decision:?}");
    }

    #[test]
    fn a_vetoed_hit_reports_its_exception() {
        let decision = assess("I'm not suicidal, just tired");
        assert_eq!(decision.level, CrisisLevel::None);
        assert!(decision.exception.is_some_and(|id| id.starts_with("negation.")), "{decision:?}");
    }

    #[test]
    fn a_veto_only_covers_the_hit_it_overlaps() {
        let decision = assess("I'm not suicidal. But I really want to die tonight");
        assert_eq!(decision.level, CrisisLevel::SelfRisk, "{decision:?}");
    }

    #[test]
    fn ordinary_chat_fires_nothing() {
        let decision = assess("good morning everyone, how was your weekend?");
        assert_eq!(decision, Assessment { level: CrisisLevel::None, rule: None, exception: None });
    }
}
