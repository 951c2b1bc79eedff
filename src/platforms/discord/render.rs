//! Discord's limits, and replies rendered within them. The one place that knows them.

use crate::reply::{Render, Reply};

/// Characters in a message's `content`.
pub const MAX_CONTENT: usize = 2000;
/// Choices in an autocomplete response.
pub const MAX_AUTOCOMPLETE_CHOICES: usize = 25;
/// Characters in an autocomplete choice's name and in a command option's description.
pub const MAX_CHOICE_NAME: usize = 100;

/// A reply as Discord messages: usually one; more only when the reply is longer than one message may be. Blocks
/// (heading, paragraph, list) are never cut unless one alone is too long, then at a line or sentence end; every
/// message ends with the disclaimer, and the crisis block, which comes first, is never dropped.
pub fn messages(reply: &Reply) -> Vec<String> {
    reply.render(Markdown::default())
}

#[derive(Default)]
struct Markdown {
    blocks: Vec<String>,
}

impl Render for Markdown {
    type Output = Vec<String>;

    fn heading(&mut self, text: &str) {
        self.blocks.push(format!("**{text}**"));
    }

    fn paragraph(&mut self, text: &str) {
        self.blocks.push(text.to_owned());
    }

    fn list(&mut self, items: &[String]) {
        self.blocks.push(items.iter().map(|item| format!("- {item}")).collect::<Vec<_>>().join("\n"));
    }

    fn finish(self, disclaimer: &str) -> Vec<String> {
        const SEPARATOR: &str = "\n\n";
        let budget = MAX_CONTENT - SEPARATOR.len() - disclaimer.chars().count();
        let pieces = self.blocks.iter().flat_map(|block| split_to_fit(block, budget));
        let mut messages: Vec<String> = Vec::new();
        let mut current = String::new();
        for piece in pieces {
            let needed = if current.is_empty() { 0 } else { SEPARATOR.len() } + piece.chars().count();
            if !current.is_empty() && current.chars().count() + needed > budget {
                messages.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push_str(SEPARATOR);
            }
            current.push_str(&piece);
        }
        messages.push(current);
        messages
            .into_iter()
            .map(|body| if body.is_empty() { disclaimer.to_owned() } else { format!("{body}{SEPARATOR}{disclaimer}") })
            .collect()
    }
}

/// Splits a block longer than `budget` characters at line ends, then sentence ends, then spaces.
fn split_to_fit(block: &str, budget: usize) -> Vec<String> {
    if block.chars().count() <= budget {
        return vec![block.to_owned()];
    }
    for separator in ["\n", ". ", " "] {
        let parts: Vec<&str> = block.split_inclusive(separator).collect();
        if parts.len() > 1 {
            let mut pieces = Vec::new();
            let mut current = String::new();
            for part in parts {
                if !current.is_empty() && current.chars().count() + part.chars().count() > budget {
                    pieces.push(current.trim_end().to_owned());
                    current.clear();
                }
                current.push_str(part);
            }
            pieces.push(current.trim_end().to_owned());
            return pieces.into_iter().flat_map(|piece| split_to_fit(&piece, budget)).collect();
        }
    }
    // One word longer than a message: nothing sensible is left but to cut it.
    let chars: Vec<char> = block.chars().collect();
    chars.chunks(budget).map(|chunk| chunk.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Audience, Bot, Catalog, Incoming};

    fn bot() -> Bot {
        Bot::new(Catalog::built_in())
    }

    #[test]
    fn a_reply_is_one_message_ending_with_the_disclaimer() {
        let bot = bot();
        let audience = Audience { locale: None, command_prefix: "/", server: None };
        let reply = bot.respond(Incoming::Chat("I want to die. what are the risks of ketamine?"), audience).unwrap();
        let messages = messages(&reply);
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].starts_with("**You don't have to go through this alone**"));
        assert!(messages[0].ends_with(&bot.catalog().disclaimer) && messages[0].chars().count() <= MAX_CONTENT);
    }

    #[test]
    fn a_long_reply_is_split_between_blocks_and_every_message_keeps_the_disclaimer() {
        let mut markdown = Markdown::default();
        markdown.heading("Crisis");
        for index in 0..12 {
            markdown.paragraph(&format!("Paragraph {index}. {}", "Words that go on. ".repeat(12)));
        }
        let disclaimer = "Disclaimer: not medical advice.";
        let messages = markdown.finish(disclaimer);
        assert!(messages.len() > 1);
        assert!(messages[0].starts_with("**Crisis**"));
        for message in &messages {
            assert!(message.chars().count() <= MAX_CONTENT && message.ends_with(disclaimer));
            assert!(message.trim_end_matches(disclaimer).trim_end().ends_with('.'), "cut mid-sentence: {message}");
        }
        let total: usize = messages.iter().map(|m| m.matches("Paragraph").count()).sum();
        assert_eq!(total, 12, "nothing is lost");
    }

    #[test]
    fn an_overlong_block_is_cut_at_sentence_ends() {
        let block = "One sentence here. ".repeat(300);
        let pieces = split_to_fit(block.trim_end(), 500);
        assert!(pieces.len() > 1);
        for piece in &pieces {
            assert!(piece.chars().count() <= 500 && piece.ends_with('.'), "{piece:?}");
        }
    }
}
