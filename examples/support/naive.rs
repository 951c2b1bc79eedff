//! The naive detector the evaluation and the benchmark compare against: 21 lower-case substrings, one `Regex`
//! each, on a lowercase copy of every message.

use regex::Regex;

pub struct Naive {
    keywords: Vec<Regex>,
}

impl Naive {
    pub fn new() -> Naive {
        let words = [
            "suicide",
            "suicidal",
            "kill myself",
            "kms",
            "want to die",
            "end my life",
            "overdose",
            "self harm",
            "self-harm",
            "cut myself",
            "hang myself",
            "end it all",
            "take my life",
            "kill me",
            "better off dead",
            "no reason to live",
            "wish i was dead",
            "want to be dead",
            "unalive",
            "sewerslide",
            "hurt myself",
        ];
        Naive { keywords: words.iter().map(|w| Regex::new(&regex::escape(w)).unwrap()).collect() }
    }

    pub fn flags(&self, message: &str) -> bool {
        let lower = message.to_lowercase();
        self.keywords.iter().any(|keyword| keyword.is_match(&lower))
    }
}
