//! Chat message -> topics, through the keyword patterns of `responses.toml`.
//!
//! A message matches only when it is about ketamine (`[matching].subject`), asks something
//! (`[matching].question`) and matches a topic's keywords; ordinary chat matches nothing. Topics come back in
//! file order, and the first one answers: the order of `responses.toml` is the documented tie-break, so
//! specific topics are listed before general ones.

use regex::{Regex, RegexSet};

#[derive(Debug)]
pub struct Matcher {
    subject: Regex,
    question: Regex,
    /// Every keyword of every topic, in one set so a message is scanned once.
    keywords: RegexSet,
    /// For each pattern of `keywords`, the index of its topic.
    topic_of_pattern: Vec<usize>,
}

impl Matcher {
    /// Builds the matcher from compiled pattern sources (see [`crate::phrase::compile`]), one list of
    /// keywords per topic in file order.
    pub(crate) fn new(subject: String, question: String, keywords: Vec<Vec<String>>) -> Result<Self, regex::Error> {
        let topic_of_pattern = keywords
            .iter()
            .enumerate()
            .flat_map(|(topic, patterns)| std::iter::repeat_n(topic, patterns.len()))
            .collect();
        Ok(Matcher {
            subject: Regex::new(&subject)?,
            question: Regex::new(&question)?,
            keywords: RegexSet::new(keywords.iter().flatten())?,
            topic_of_pattern,
        })
    }

    /// Indexes of the topics that `normalized` (see [`crate::normalize::normalize`]) asks about, in file order.
    pub(crate) fn topics(&self, normalized: &str) -> Vec<usize> {
        if !self.subject.is_match(normalized) || !self.question.is_match(normalized) {
            return Vec::new();
        }
        let mut topics: Vec<usize> =
            self.keywords.matches(normalized).iter().map(|p| self.topic_of_pattern[p]).collect();
        topics.dedup();
        topics
    }
}
