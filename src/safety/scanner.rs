//! Which of the detector's rules, exceptions and distress families occur in a message, found fast. Each is a
//! list of phrases, each phrase a small regex with anchors (literal words of which each match contains one,
//! see [`crate::phrase::Compiled`]). One Aho-Corasick pass over all anchors picks the few phrases worth
//! searching; only those are searched. Most chat has no anchor at all and costs that one pass.

use std::ops::Range;

use aho_corasick::AhoCorasick;
use regex::Regex;
use regex_automata::{PatternID, PatternSet};

/// Literal strings of which every match of a phrase contains one; `None` when unknown.
pub(super) type Anchors = Option<Vec<String>>;

#[derive(Debug)]
pub(super) struct Scanner {
    phrases: Vec<Regex>,
    /// For each phrase, the entry (rule, exception or distress family) it belongs to.
    entry_of_phrase: Vec<usize>,
    /// For each entry, its phrases.
    phrases_of_entry: Vec<Vec<usize>>,
    anchors: AhoCorasick,
    /// For each anchor, the phrases it may start.
    phrases_of_anchor: Vec<Vec<usize>>,
    /// Phrases with no anchors, searched in every message.
    unanchored: Vec<usize>,
}

/// What occurs in one message.
pub(super) struct Found {
    pub entries: PatternSet,
    phrases: PatternSet,
}

impl Scanner {
    /// A scanner for entries given as lists of phrases.
    pub(super) fn new(entries: Vec<Vec<(Regex, Anchors)>>) -> Scanner {
        let (mut phrases, mut entry_of_phrase, mut phrases_of_entry) = (Vec::new(), Vec::new(), Vec::new());
        let (mut anchors, mut phrases_of_anchor, mut unanchored) =
            (Vec::<String>::new(), Vec::<Vec<usize>>::new(), Vec::new());
        for (entry, entry_phrases) in entries.into_iter().enumerate() {
            let mut of_entry = Vec::with_capacity(entry_phrases.len());
            for (regex, phrase_anchors) in entry_phrases {
                let phrase = phrases.len();
                phrases.push(regex);
                entry_of_phrase.push(entry);
                of_entry.push(phrase);
                let Some(phrase_anchors) = phrase_anchors else {
                    unanchored.push(phrase);
                    continue;
                };
                for anchor in phrase_anchors {
                    match anchors.iter().position(|known| *known == anchor) {
                        Some(known) => phrases_of_anchor[known].push(phrase),
                        None => {
                            anchors.push(anchor);
                            phrases_of_anchor.push(vec![phrase]);
                        }
                    }
                }
            }
            phrases_of_entry.push(of_entry);
        }
        let anchors = AhoCorasick::new(&anchors).expect("anchors are short literal strings");
        Scanner { phrases, entry_of_phrase, phrases_of_entry, anchors, phrases_of_anchor, unanchored }
    }

    /// The entries and phrases that occur in `text`.
    pub(super) fn find(&self, text: &str) -> Found {
        let mut found = Found {
            entries: PatternSet::new(self.phrases_of_entry.len()),
            phrases: PatternSet::new(self.phrases.len()),
        };
        // A phrase is searched for once: `tried` marks the candidates already searched.
        let mut tried = PatternSet::new(self.phrases.len());
        let anchored = self
            .anchors
            .find_overlapping_iter(text)
            .flat_map(|anchor| &self.phrases_of_anchor[anchor.pattern().as_usize()]);
        for &phrase in anchored.chain(&self.unanchored) {
            let id = PatternID::new_unchecked(phrase);
            if tried.insert(id) && self.phrases[phrase].is_match(text) {
                found.phrases.insert(id);
                found.entries.insert(PatternID::new_unchecked(self.entry_of_phrase[phrase]));
            }
        }
        found
    }

    /// Every match of the entry's phrases in `text`, phrase by phrase.
    pub(super) fn hits<'a>(
        &'a self,
        entry: usize,
        found: &'a Found,
        text: &'a str,
    ) -> impl Iterator<Item = Range<usize>> + 'a {
        let occurring =
            self.phrases_of_entry[entry].iter().filter(|&&p| found.phrases.contains(PatternID::new_unchecked(p)));
        occurring.flat_map(move |&phrase| self.phrases[phrase].find_iter(text).map(|m| m.range()))
    }
}
