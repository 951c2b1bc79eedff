//! The terminal adapter: type as a member would, see what the bot would send. No token, no network.
//!
//! A line that starts with `/` or `!` and one of the bot's commands is a command (`/ketamine-risks`,
//! `!crisis-resources uk`); anything else is a chat message.

use std::io::{self, BufRead, Write};

use crate::{Audience, Bot};

/// What the console says when the bot would stay silent, in interactive sessions only.
const SILENCE: &str = "(no reply: the bot stays silent)";

/// Reads lines from `input` until it ends and writes each reply to `output`. Interactive sessions get a
/// prompt and a note when the bot stays silent; piped input gets replies only, separated by blank lines.
pub fn run(
    bot: &Bot,
    locale: Option<&str>,
    input: impl BufRead,
    mut output: impl Write,
    interactive: bool,
) -> io::Result<()> {
    let audience = Audience { locale, command_prefix: "/", server: None };
    if interactive {
        let help = &bot.catalog().help.command;
        writeln!(output, "ketamine-info-bot console: write as a member would. /{help} lists topics; Ctrl-D quits.")?;
    }
    let mut lines = input.lines();
    loop {
        if interactive {
            write!(output, "> ")?;
            output.flush()?;
        }
        let Some(line) = lines.next().transpose()? else { break };
        if line.trim().is_empty() {
            continue;
        }
        match bot.respond(bot.parse(&line, &['/', '!']), audience) {
            Some(reply) => writeln!(output, "{}\n", reply.to_plain_text())?,
            None if interactive => writeln!(output, "{SILENCE}\n")?,
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;

    fn session(input: &str, interactive: bool) -> String {
        let bot = Bot::new(Catalog::built_in());
        let mut output = Vec::new();
        run(&bot, Some("en-GB"), input.as_bytes(), &mut output, interactive).unwrap();
        String::from_utf8(output).unwrap()
    }

    #[test]
    fn interactive_sessions_prompt_and_say_when_the_bot_stays_silent() {
        let output = session("good morning\n!ketamine-legal\n", true);
        assert!(output.starts_with("ketamine-info-bot console:") && output.contains("> "));
        assert!(output.contains(SILENCE) && output.contains("Schedule III"));
    }

    #[test]
    fn piped_sessions_print_replies_only() {
        let output = session("good morning\n\nI want to die\n", false);
        assert!(!output.contains(SILENCE) && !output.contains("> "));
        assert!(output.starts_with("You don't have to go through this alone") && output.contains("116 123"));
    }
}
