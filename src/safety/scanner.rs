//! Which of the detector's rules, exceptions and distress families occur in a message, found fast. Each is a
//! list of phrases, each phrase a small regex with anchors (literal words of which each match contains one,
//! see [`crate::phrase::Compiled`]) and a longest match. One Aho-Corasick pass over all anchors finds the
//! places worth looking at; a phrase is then searched for only within its longest match of one of its
//! anchors. Most chat has no anchor at all and costs that one pass; a long post costs little more.

use std::ops::Range;

use aho_corasick::AhoCorasick;
use regex_automata::{meta, Input, PatternID, PatternSet};

use crate::phrase::{self, Compiled};

/// A phrase ready to search for.
#[derive(Debug)]
pub(super) struct Phrase {
    regex: meta::Regex,
    anchors: Option<Vec<String>>,
    /// The most bytes a match can span, when bounded.
    longest: Option<usize>,
}

impl Phrase {
    pub(super) fn new(compiled: Compiled) -> Result<Phrase, String> {
        let problem = |error: &dyn std::fmt::Display| phrase::last_line(&error.to_string());
        let hir = regex_syntax::Parser::new().parse(&compiled.regex).map_err(|e| problem(&e))?;
        let longest = hir.properties().maximum_len();
        let regex = meta::Regex::builder().build_from_hir(&hir).map_err(|e| problem(&e))?;
        Ok(Phrase { regex, anchors: compiled.anchors, longest })
    }
}

#[derive(Debug)]
pub(super) struct Scanner {
    phrases: Vec<Phrase>,
    /// For each phrase, the entry (rule, exception or distress family) it belongs to.
    entry_of_phrase: Vec<usize>,
    /// For each entry, its phrases.
    phrases_of_entry: Vec<Vec<usize>>,
    anchors: AhoCorasick,
    /// For each anchor, the phrases that contain it.
    phrases_of_anchor: Vec<Vec<usize>>,
    /// Phrases that must be searched for in the whole of every message: no anchors, or no longest match.
    everywhere: Vec<usize>,
}

/// What occurs in one message.
pub(super) struct Found {
    pub entries: PatternSet,
    phrases: PatternSet,
}

impl Scanner {
    /// A scanner for entries given as lists of phrases.
    pub(super) fn new(entries: Vec<Vec<Phrase>>) -> Scanner {
        let (mut phrases, mut entry_of_phrase, mut phrases_of_entry) = (Vec::new(), Vec::new(), Vec::new());
        let (mut anchors, mut phrases_of_anchor) = (Vec::<String>::new(), Vec::<Vec<usize>>::new());
        let mut everywhere = Vec::new();
        for (entry, entry_phrases) in entries.into_iter().enumerate() {
            let mut of_entry = Vec::with_capacity(entry_phrases.len());
            for phrase in entry_phrases {
                let index = phrases.len();
                entry_of_phrase.push(entry);
                of_entry.push(index);
                match (&phrase.anchors, phrase.longest) {
                    (Some(phrase_anchors), Some(_)) => {
                        for anchor in phrase_anchors {
                            match anchors.iter().position(|known| known == anchor) {
                                Some(known) => phrases_of_anchor[known].push(index),
                                None => {
                                    anchors.push(anchor.clone());
                                    phrases_of_anchor.push(vec![index]);
                                }
                            }
                        }
                    }
                    _ => everywhere.push(index),
                }
                phrases.push(phrase);
            }
            phrases_of_entry.push(of_entry);
        }
        let anchors = AhoCorasick::new(&anchors).expect("anchors are short literal strings");
        Scanner { phrases, entry_of_phrase, phrases_of_entry, anchors, phrases_of_anchor, everywhere }
    }

    /// The entries and phrases that occur in `text`.
    pub(super) fn find(&self, text: &str) -> Found {
        let mut found = Found {
            entries: PatternSet::new(self.phrases_of_entry.len()),
            phrases: PatternSet::new(self.phrases.len()),
        };
        let add = |found: &mut Found, phrase: usize| {
            found.phrases.insert(PatternID::new_unchecked(phrase));
            found.entries.insert(PatternID::new_unchecked(self.entry_of_phrase[phrase]));
        };
        for anchor in self.anchors.find_overlapping_iter(text) {
            for &index in &self.phrases_of_anchor[anchor.pattern().as_usize()] {
                let phrase = &self.phrases[index];
                if found.phrases.contains(PatternID::new_unchecked(index)) {
                    continue;
                }
                // Whatever the phrase matches around this anchor lies within its longest match of it.
                let reach = phrase.longest.expect("anchored phrases have a longest match");
                let window = super::around(text, &anchor.range(), reach);
                if phrase.regex.is_match(Input::new(text).span(window)) {
                    add(&mut found, index);
                }
            }
        }
        for &index in &self.everywhere {
            if self.phrases[index].regex.is_match(text) {
                add(&mut found, index);
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
        occurring.flat_map(move |&phrase| self.phrases[phrase].regex.find_iter(text).map(|m| m.range()))
    }
}
