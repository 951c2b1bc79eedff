//! Text normalisation shared by the crisis detector and the topic matcher.
//!
//! People write `K1LL`, `k i l l`, `kiiill`, `don t`, fullwidth letters or zalgo text, on purpose or not.
//! [`normalize`] folds all of these into one plain form, and [`compile_pattern`] applies the same folding to
//! patterns, so a pattern is written once in ordinary English and matches every spelling.
//!
//! The normal form: compatibility-decomposed (NFKD, which includes every NFKC folding) with combining marks,
//! zero-width characters and apostrophes removed; lower case; digit and symbol swaps undone inside words
//! (`k1ll`, `$uicide`); letters spaced or dotted apart joined (`k i l l`, `k.i.l.l`); runs of one letter folded
//! to a single letter (`diiie` -> `die`, and also `kill` -> `kil`); words separated by single spaces;
//! punctuation kept (repeats folded), so patterns can see sentence ends.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Normalises `text`; see the module documentation for the normal form.
pub fn normalize(text: &str) -> String {
    let mut chars = Vec::with_capacity(text.len());
    let mut previous_lower = false;
    let mut push = |c: char, chars: &mut Vec<char>| {
        // Pasted text loses its spaces where a title meets a body ("kill myselfI tried"): a capital right after
        // a small letter starts a new word.
        if c.is_ascii() {
            if c.is_ascii_uppercase() && previous_lower {
                chars.push(' ');
            }
            previous_lower = c.is_ascii_lowercase();
            chars.push(c.to_ascii_lowercase());
            return;
        }
        if c.is_uppercase() && previous_lower {
            chars.push(' ');
        }
        previous_lower = c.is_lowercase();
        chars.extend(c.to_lowercase());
    };
    for c in text.chars() {
        if c.is_ascii() {
            push(c, &mut chars);
        } else if !is_invisible(c) {
            // NFKD one character at a time: canonical reordering only moves combining marks, which go anyway.
            decompose_compatible(c, |part| {
                if !is_combining_mark(part) && !is_invisible(part) {
                    push(part, &mut chars);
                }
            });
        }
    }
    chars.retain(|&c| !is_apostrophe(c));

    let tokens = tokenize(&chars);
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    while index < tokens.len() {
        let (run, letters) = spaced_letter_run(&chars, &tokens[index..]);
        if letters >= SPACED_RUN {
            let spaced = tokens[index..index + run].iter().filter_map(|token| match *token {
                Token::Word(start, _) => Some(chars[start]),
                Token::Mark(..) => None,
            });
            push_word(&mut out, spaced);
            index += run;
            continue;
        }
        match tokens[index] {
            Token::Word(start, end) => push_word(&mut out, unswapped(&chars[start..end])),
            Token::Mark(mark, spaced) => {
                if out.ends_with(' ') && mark.is_ascii_punctuation() {
                    out.pop();
                }
                if !out.ends_with(mark) {
                    out.push(mark);
                }
                if spaced {
                    out.push(' ');
                }
            }
        }
        index += 1;
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Rewrites a regular expression written for plain lower-case English so that it matches normalised text:
/// an apostrophe means "apostrophe optional" (`don't` matches `dont` and `don t`), runs of one letter are folded
/// like the text's, and `\b` is the ASCII word boundary, which keeps matching on the fast DFA engines.
pub fn compile_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut previous_letter = None;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let mut letter = None;
        match c {
            '\\' => match chars.next() {
                Some('b') => out.push_str("(?-u:\\b)"),
                Some('B') => out.push_str("(?-u:\\B)"),
                Some(escaped) => {
                    out.push('\\');
                    out.push(escaped);
                }
                None => out.push('\\'),
            },
            c if is_apostrophe(c) => out.push_str(" ?"),
            c if c.is_ascii_alphabetic() => {
                letter = Some(c.to_ascii_lowercase());
                if previous_letter != letter {
                    out.push(c);
                }
            }
            c => out.push(c),
        }
        previous_letter = letter;
    }
    out
}

/// Characters that show nothing and hide inside words (`k\u{200b}ill`, `kill\u{2066} myself`): every format
/// character (Unicode general category Cf, as of Unicode 15: soft hyphen, zero-width characters, bidi
/// controls, word joiner, tag characters, ...), variation selectors and the combining grapheme joiner.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{0600}'..='\u{0605}' | '\u{061c}' | '\u{06dd}' | '\u{070f}' | '\u{0890}'..='\u{0891}'
        | '\u{08e2}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{110bd}' | '\u{110cd}'
        | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0001}'
        | '\u{e0020}'..='\u{e007f}'
        // Variation selectors, Mongolian free variation selectors, combining grapheme joiner.
        | '\u{fe00}'..='\u{fe0f}' | '\u{e0100}'..='\u{e01ef}' | '\u{180b}'..='\u{180d}' | '\u{180f}' | '\u{034f}')
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | '‘' | 'ʼ' | '`' | '´' | 'ʻ')
}

/// The letter a digit or symbol stands for inside a word (`k1ll`, `d3ad`, `$uicide`).
fn unswap(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        _ => return None,
    })
}

/// Characters that can belong to a word: letters, digits, and the symbols that [`unswap`] knows.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || unswap(c).is_some() || (!c.is_ascii() && c.is_alphanumeric())
}

/// A word's characters with swaps undone, provided the word has a letter (so `988` and `24` stay numbers).
fn unswapped(word: &[char]) -> impl Iterator<Item = char> + '_ {
    let has_letter = word.iter().any(|c| c.is_alphabetic());
    word.iter().map(move |&c| if has_letter { unswap(c).unwrap_or(c) } else { c })
}

/// Appends a word, separated from the previous one by a space, with runs of one letter folded.
fn push_word(out: &mut String, word: impl Iterator<Item = char>) {
    if out.ends_with(|c: char| is_word_char(c)) {
        out.push(' ');
    }
    let mut previous = None;
    for c in word {
        if !(c.is_alphabetic() && previous == Some(c)) {
            out.push(c);
        }
        previous = Some(c);
    }
}

/// A run of at least this many one-letter words (`k i l l`, `k.i.l.l`) is joined into one word.
const SPACED_RUN: usize = 3;

#[derive(Clone, Copy)]
enum Token {
    /// A word: a range of the character buffer.
    Word(usize, usize),
    /// A punctuation mark or symbol, and whether white space follows it (`self-harm` keeps its hyphen tight).
    Mark(char, bool),
}

fn tokenize(chars: &[char]) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(chars.len() / 4 + 1);
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        if is_word_char(c) {
            let start = index;
            while index < chars.len() && is_word_char(chars[index]) {
                index += 1;
            }
            // A trailing `!` or `|` is punctuation, not a swapped `i`: `die!!` is `die!`.
            let mut end = index;
            while end > start + 1 && matches!(chars[end - 1], '!' | '|') {
                end -= 1;
            }
            tokens.push(Token::Word(start, end));
            if end < index {
                tokens.push(Token::Mark(chars[end], true));
            }
        } else {
            index += 1;
            if !c.is_whitespace() {
                // Sentence punctuation always ends a word; a hyphen or slash between letters keeps them together.
                let spaced = matches!(c, '.' | ',' | ';' | '?' | '!')
                    || chars.get(index).is_none_or(|next| !is_word_char(*next));
                tokens.push(Token::Mark(c, spaced));
            }
        }
    }
    tokens
}

/// Measures the spaced-out word at the start of `tokens`: one-letter words, each pair joined by white space or
/// by one of `.`, `-`, `_`, `*`. Returns the tokens it spans (ending on a letter) and its number of letters.
fn spaced_letter_run(chars: &[char], tokens: &[Token]) -> (usize, usize) {
    let (mut span, mut letters, mut expect_letter) = (0, 0, true);
    for (index, token) in tokens.iter().enumerate() {
        match *token {
            Token::Word(start, end) if end - start == 1 && chars[start].is_alphabetic() => {
                letters += 1;
                span = index + 1;
                expect_letter = false;
            }
            Token::Mark('.' | '-' | '_' | '*', _) if !expect_letter => expect_letter = true,
            _ => break,
        }
    }
    (span, letters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_spellings_into_one_form() {
        let cases = [
            ("I want to KILL myself", "i want to kil myself"),
            ("I want to k1ll mys3lf", "i want to kil myself"),
            ("k i l l   myself", "kil myself"),
            ("k.i.l.l myself", "kil myself"),
            ("i wanna diiiie", "i wana die"),
            ("I don't want to be here", "i dont want to be here"),
            ("I don’t want to be here", "i dont want to be here"),
            ("ｋｉｌｌ ｍｙｓｅｌｆ", "kil myself"),
            ("k\u{200b}ill myself", "kil myself"),
            ("kill\u{2066} myself", "kil myself"),
            ("ki\u{e0041}ll my\u{fe0f}self\u{202e}", "kil myself"),
            ("caf\u{e9} na\u{ef}ve", "cafe naive"),
            ("k̷i̷l̷l̷ myself", "kil myself"),
            ("$uicide", "suicide"),
            ("call 988 now!!!", "cal 988 now!"),
            ("why... ok", "why. ok"),
            ("  lots\tof\n\nspace  ", "lots of space"),
            ("I'm a person", "im a person"),
            ("a b", "a b"),
            ("I just want to die.Nobody cares", "i just want to die. nobody cares"),
            ("kill myselfI tried", "kil myself i tried"),
            ("self-harm, long-term", "self-harm, long-term"),
            ("wait...what", "wait. what"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn patterns_fold_like_text() {
        assert_eq!(compile_pattern("kill myself"), "kil myself");
        assert_eq!(compile_pattern("don't"), "don ?t");
        assert_eq!(compile_pattern(r"\bbe\b"), r"(?-u:\b)be(?-u:\b)");
        assert_eq!(compile_pattern(r"\\kk"), r"\\k");
        assert_eq!(compile_pattern(r"\d\d"), r"\d\d");
    }

    #[test]
    fn a_compiled_pattern_matches_every_spelling() {
        let pattern = regex::Regex::new(&compile_pattern(r"\bdon't want to live\b")).unwrap();
        for text in ["I DON'T want to live", "i don t want to liiive", "i dont w4nt to live"] {
            assert!(pattern.is_match(&normalize(text)), "{text:?}");
        }
    }
}
