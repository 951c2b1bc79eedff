//! The phrase language of the content and rules files: what editors write instead of regular expressions.
//!
//! A phrase is a sequence of words matched against normalised text (see [`crate::normalize`]), as whole words:
//!
//! | syntax | matches |
//! | --- | --- |
//! | `want to die` | those words, in that order; spaces or hyphens between them optional (`wanttodie`) |
//! | `don't`, `self-harm` | apostrophe and hyphen optional (`dont`, `don t`, `self harm`, `selfharm`) |
//! | `{soon}` | any entry of the vocabulary `soon` |
//! | `(pills \| meds)` | one of the alternatives, each a phrase |
//! | `[just]`, `[really \| just]` | an optional phrase, or one of optional alternatives |
//! | `*` / `*3` | any one word / up to three words |
//! | `bladder*` | a word that starts with `bladder` |
//! | `?`, `.`, `!`, `,`, `&` | that punctuation mark, right after the word before it |
//! | `^` (first) | the start of the message |
//! | `re:<regex>` | a raw regular expression, only where a phrase cannot say it |
//!
//! Words are written in plain lower case and folded like the text (`kill` also matches `k1ll`, `kiiill` and
//! `k i l l`; `café` matches `cafe`). [`compile`] turns a phrase into a regular expression for the `regex`
//! crates; word boundaries are ASCII, which keeps matching on the fast DFA engines.

use std::collections::HashMap;

use crate::normalize::{compile_pattern, normalize};

/// Named lists of phrases that phrases refer to as `{name}`.
#[derive(Debug, Default)]
pub struct Vocabulary {
    entries: HashMap<String, Vec<String>>,
}

/// A word of normalised text, for gaps: anything up to a space or a sentence mark. Bounded, so that every
/// phrase has a longest match and can be searched for near its anchors only.
const WORD: &str = r"[^\s.,;:!?]{1,40}";
/// Between two words: a space, a hyphen or nothing (words run together in hashtags and usernames).
const JOIN: &str = "[- ]?";
/// How deep vocabularies may refer to vocabularies; deeper is a cycle or a mistake.
const MAX_DEPTH: usize = 8;

impl Vocabulary {
    pub fn new(entries: HashMap<String, Vec<String>>) -> Vocabulary {
        Vocabulary { entries }
    }

    /// Checks that one vocabulary can be built; says why not.
    pub fn check_entry(&self, name: &str) -> Result<(), String> {
        Parser { vocabulary: self, depth: 0 }.vocabulary(name).map(drop)
    }
}

/// A compiled phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// The source of a regular expression over normalised text.
    pub regex: String,
    /// Literal strings of normalised text of which every match contains at least one (for a prefilter), or
    /// `None` when no such set is known (raw regular expressions).
    pub anchors: Option<Vec<String>>,
}

/// Compiles a phrase to a regular expression over normalised text, with its anchors.
pub fn compile(phrase: &str, vocabulary: &Vocabulary) -> Result<Compiled, String> {
    if let Some(raw) = phrase.strip_prefix("re:") {
        let source = compile_pattern(raw);
        return match regex::Regex::new(&source) {
            Ok(_) => Ok(Compiled { regex: source, anchors: None }),
            Err(error) => Err(format!("invalid regular expression {raw:?}: {}", last_line(&error.to_string()))),
        };
    }
    let pieces = Parser { vocabulary, depth: 0 }.sequence(&mut Tokens::new(phrase), None)?;
    if pieces.iter().all(|piece| piece.optional) {
        return Err(format!("phrase {phrase:?} has no required word, so it would match everywhere"));
    }
    Ok(Compiled { regex: assemble(&pieces, true), anchors: sequence_anchors(&pieces) })
}

/// regex's errors draw the pattern over several lines; the last line says what is wrong.
pub(crate) fn last_line(text: &str) -> String {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(text).trim().to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Gap,
    Mark,
    Start,
}

#[derive(Debug)]
struct Piece {
    kind: Kind,
    optional: bool,
    regex: String,
    /// Strings of which every match of the piece contains one, when there are such (see [`Compiled`]).
    anchors: Anchors,
}

type Anchors = Option<Vec<String>>;

/// The anchors of a sequence: those of its required piece whose shortest anchor is longest (rarer words
/// make a sharper prefilter), or none when no required piece has any.
fn sequence_anchors(pieces: &[Piece]) -> Anchors {
    let required = pieces.iter().filter(|piece| !piece.optional).filter_map(|piece| piece.anchors.as_ref());
    let score =
        |anchors: &&Vec<String>| (anchors.iter().map(String::len).min().unwrap_or(0), std::cmp::Reverse(anchors.len()));
    required.max_by_key(score).cloned()
}

/// A group of alternatives, each a regex with its anchors: anchored only when every alternative is.
fn group(alternatives: Vec<(String, Anchors)>) -> (String, Anchors) {
    let mut sources = Vec::with_capacity(alternatives.len());
    let mut anchors = Some(Vec::new());
    for (source, alternative) in alternatives {
        sources.push(source);
        anchors = anchors.zip(alternative).map(|(mut all, more)| {
            all.extend(more);
            all
        });
    }
    (format!("(?:{})", sources.join("|")), anchors)
}

/// Joins pieces with optional spaces between words (required around gaps), optionally with word boundaries
/// at the ends.
fn assemble(pieces: &[Piece], bounded: bool) -> String {
    let mut out = String::new();
    // Half boundaries: a phrase may not start or end inside a word, whatever stands beside it (an emoji).
    if bounded && pieces.first().is_some_and(|p| p.kind == Kind::Word) {
        out.push_str(r"(?-u:\b{start-half})");
    }
    for (index, piece) in pieces.iter().enumerate() {
        let separator = match (index.checked_sub(1).map(|i| pieces[i].kind), piece.kind) {
            (None | Some(Kind::Start | Kind::Gap), _) | (_, Kind::Mark) => "",
            (_, Kind::Gap) => " ",
            _ => JOIN,
        };
        if piece.optional {
            out.push_str(&format!("(?:{separator}{})?", piece.regex));
        } else {
            out.push_str(separator);
            out.push_str(&piece.regex);
        }
    }
    if bounded && pieces.last().is_some_and(|p| p.kind == Kind::Word) {
        out.push_str(r"(?-u:\b{end-half})");
    }
    out
}

/// The characters of a phrase, with a little lookahead.
struct Tokens<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Tokens<'a> {
        Tokens { text, at: 0 }
    }

    fn peek(&mut self) -> Option<char> {
        let rest = &self.text[self.at..];
        let trimmed = rest.trim_start();
        self.at += rest.len() - trimmed.len();
        trimmed.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        Some(c)
    }

    /// The characters up to the first that `stop` rejects.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let rest = &self.text[self.at..];
        let end = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        self.at += end;
        &rest[..end]
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '\'' | '’' | '-')
}

struct Parser<'v> {
    vocabulary: &'v Vocabulary,
    depth: usize,
}

impl Parser<'_> {
    /// Pieces up to the end of the phrase or the `close` character (which is consumed).
    fn sequence(&mut self, tokens: &mut Tokens<'_>, close: Option<char>) -> Result<Vec<Piece>, String> {
        let mut pieces: Vec<Piece> = Vec::new();
        loop {
            let Some(c) = tokens.peek() else {
                return match close {
                    Some(close) => Err(format!("{close:?} is missing in {:?}", tokens.text)),
                    None if pieces.is_empty() => Err("empty phrase".to_owned()),
                    None => Ok(pieces),
                };
            };
            if Some(c) == close || (c == '|' && close.is_some()) {
                return if pieces.is_empty() { Err(format!("empty part in {:?}", tokens.text)) } else { Ok(pieces) };
            }
            tokens.bump();
            let piece = match c {
                '{' => {
                    let name = tokens.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
                    if tokens.bump() != Some('}') {
                        return Err(format!("`{{{name}` must end with `}}` in {:?}", tokens.text));
                    }
                    let (regex, anchors) = self.vocabulary(name)?;
                    Piece { kind: Kind::Word, optional: false, regex, anchors }
                }
                '(' | '[' => {
                    let (regex, anchors) = self.alternatives(tokens, if c == '(' { ')' } else { ']' })?;
                    Piece { kind: Kind::Word, optional: c == '[', regex, anchors }
                }
                '*' => {
                    let count = tokens.take_while(|c| c.is_ascii_digit());
                    if pieces.is_empty() || tokens.peek().is_none_or(|next| Some(next) == close || next == '|') {
                        return Err(format!("a gap `*` must stand between words in {:?}", tokens.text));
                    }
                    // Each word of a gap brings the space after it.
                    let times = match count.parse::<usize>() {
                        Err(_) => "{1}".to_owned(),
                        Ok(count @ 1..=8) => format!("{{0,{count}}}"),
                        Ok(_) => return Err(format!("a gap `*{count}` may span 1 to 8 words")),
                    };
                    Piece { kind: Kind::Gap, optional: false, regex: format!("(?:{WORD} ){times}"), anchors: None }
                }
                '?' | '.' | '!' | ',' | '&' => Piece {
                    kind: Kind::Mark,
                    optional: false,
                    regex: regex::escape(&c.to_string()),
                    anchors: Some(vec![c.to_string()]),
                },
                '^' if pieces.is_empty() && close.is_none() => {
                    Piece { kind: Kind::Start, optional: false, regex: "^".to_owned(), anchors: None }
                }
                c if is_word_char(c) => {
                    tokens.at -= c.len_utf8();
                    self.word(tokens.take_while(is_word_char), tokens)?
                }
                other => return Err(format!("unexpected {other:?} in {:?}", tokens.text)),
            };
            pieces.push(piece);
        }
    }

    /// `(a | b c)` or `[a | b c]` after its opening bracket: the alternatives as one group.
    fn alternatives(&mut self, tokens: &mut Tokens<'_>, close: char) -> Result<(String, Anchors), String> {
        let mut alternatives = Vec::new();
        loop {
            let pieces = self.sequence(tokens, Some(close))?;
            alternatives.push((assemble(&pieces, false), sequence_anchors(&pieces)));
            match tokens.bump() {
                Some('|') => continue,
                _ => return Ok(group(alternatives)),
            }
        }
    }

    /// A literal word, folded like the text; `word*` is a prefix.
    fn word(&self, word: &str, tokens: &mut Tokens<'_>) -> Result<Piece, String> {
        let prefix = tokens.text[tokens.at..].starts_with('*');
        if prefix {
            tokens.at += 1;
        }
        let mut regex = String::new();
        let mut longest_part = String::new();
        let mut rest = word;
        loop {
            let end = rest.find(['\'', '’', '-']).unwrap_or(rest.len());
            let part = normalize(&rest[..end]).replace(' ', "");
            let separator = rest[end..].chars().next();
            // A contraction on its own (`'s`, `'re`) continues the word before it: `he 's` is `hes`.
            let contraction = regex.is_empty() && end == 0 && separator.is_some_and(|c| c != '-');
            if part.is_empty() && !contraction {
                return Err(format!("{word:?} is not a word"));
            }
            regex.push_str(&regex::escape(&part));
            if part.len() > longest_part.len() {
                longest_part = part;
            }
            let Some(separator) = separator else { break };
            // Apostrophes may be missing or spaced (`dont`, `don t`), hyphens a space or nothing.
            if !contraction {
                regex.push_str(if separator == '-' { JOIN } else { "[ ]?" });
            }
            rest = &rest[end + separator.len_utf8()..];
        }
        if prefix {
            regex.push_str("[a-z0-9]*");
        }
        Ok(Piece { kind: Kind::Word, optional: false, regex, anchors: Some(vec![longest_part]) })
    }

    fn vocabulary(&mut self, name: &str) -> Result<(String, Anchors), String> {
        let Some(entries) = self.vocabulary.entries.get(name) else {
            return Err(format!("no vocabulary {{{name}}}"));
        };
        if self.depth >= MAX_DEPTH {
            return Err(format!("vocabulary {{{name}}} refers to itself"));
        }
        self.depth += 1;
        let mut alternatives = Vec::with_capacity(entries.len());
        for entry in entries {
            let alternative = match entry.strip_prefix("re:") {
                Some(raw) => (compile_pattern(raw), None),
                None => {
                    let pieces =
                        self.sequence(&mut Tokens::new(entry), None).map_err(|e| format!("in {{{name}}}: {e}"))?;
                    (assemble(&pieces, false), sequence_anchors(&pieces))
                }
            };
            alternatives.push(alternative);
        }
        self.depth -= 1;
        Ok(group(alternatives))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vocabulary {
        let entries = [
            ("soon", vec!["tonight", "today", "this weekend", "when everyone (is | goes) asleep"]),
            ("i", vec!["i", "i'm", "im"]),
            ("loop", vec!["{loop}"]),
        ];
        Vocabulary::new(
            entries.into_iter().map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect())).collect(),
        )
    }

    fn matches(phrase: &str, text: &str) -> bool {
        let compiled = compile(phrase, &vocabulary()).unwrap_or_else(|e| panic!("{phrase:?}: {e}"));
        let matched = regex::Regex::new(&compiled.regex).unwrap().is_match(&normalize(text));
        if matched {
            let anchors = compiled.anchors.unwrap_or_else(|| vec![String::new()]);
            assert!(
                anchors.iter().any(|a| normalize(text).contains(a)),
                "{phrase:?} matched {text:?} but no anchor of {anchors:?} is in it"
            );
        }
        matched
    }

    #[test]
    fn words_match_every_spelling_and_only_whole_words() {
        for text in ["I want to KILL myself", "i want to k1ll myself", "i wanna killmyself", "want-to-kill-myself"] {
            assert!(matches("want to kill myself", text) || matches("wanna kill myself", text), "{text:?}");
        }
        assert!(matches("end my life", "endmylife"));
        assert!(!matches("die", "diet coke"));
        assert!(!matches("die", "buddie"));
        for text in ["I don't", "i dont", "i don t"] {
            assert!(matches("i don't", text), "{text:?}");
        }
        for text in ["self-harm", "self harm", "selfharm"] {
            assert!(matches("self-harm", text), "{text:?}");
        }
        assert!(matches("café", "CAFE"));
        assert!(matches("(he | she) ('s | is) going", "she's going"));
    }

    #[test]
    fn vocabularies_groups_options_gaps_and_prefixes() {
        assert!(matches("{i} doing it {soon}", "I'm doing it when everyone goes asleep"));
        assert!(matches("{i} doing it {soon}", "im doing it tonight"));
        assert!(!matches("{i} doing it {soon}", "im doing it later"));
        assert!(matches("take all (my | the) (pills | meds)", "take all the meds"));
        assert!(matches("[just] want to die", "want to die"));
        assert!(matches("i [really] want to die", "i really want to die"));
        assert!(matches("i [really | just] want to die", "i just want to die"));
        assert!(matches("sleep (and | &) never", "sleep & never"));
        assert!(matches("i *3 suicidal", "i have been very suicidal"));
        assert!(!matches("i *2 suicidal", "i have been very suicidal"));
        assert!(matches("i * suicidal", "i am suicidal"));
        assert!(matches("i *3 suicidal", "i suicidal"));
        assert!(!matches("i * suicidal", "i suicidal"));
        assert!(matches("bladder*", "bladders"));
        assert!(matches("ketamine ?", "is it ketamine?"));
        assert!(matches("^ what", "what is it"));
        assert!(!matches("^ what", "so what is it"));
        assert!(matches(r"re:\bpee(ing)?\b", "peeing"));
    }

    #[test]
    fn anchors_are_the_rarest_required_words() {
        let anchors = |phrase: &str| compile(phrase, &vocabulary()).unwrap().anchors;
        assert_eq!(anchors("i want to kill myself"), Some(vec!["myself".to_owned()]));
        assert_eq!(anchors("[really] die (tonight | today)"), Some(vec!["tonight".to_owned(), "today".to_owned()]));
        assert_eq!(anchors("{i} doing it {soon}"), Some(vec!["doing".to_owned()]));
        assert_eq!(anchors("kill"), Some(vec!["kil".to_owned()]), "folded like the text");
        assert_eq!(anchors(r"re:\bpee\b"), None);
    }

    #[test]
    fn mistakes_are_explained() {
        let vocabulary = vocabulary();
        let error = |phrase: &str| compile(phrase, &vocabulary).unwrap_err();
        assert!(error("{nothing}").contains("no vocabulary"));
        assert!(error("{loop}").contains("refers to itself"));
        assert!(error("(a | b").contains("missing"));
        assert!(error("[maybe]").contains("no required word"));
        assert!(error("a *9 b").contains("1 to 8"));
        assert!(error("a *2").contains("between words"));
        assert!(error("a # b").contains("unexpected"));
        assert!(error(r"re:(").contains("invalid regular expression"));
        assert!(error("").contains("empty"));
    }
}
