//! Reply cooldowns shared by the chat adapters, so a busy channel is not flooded.
//!
//! - FAQ auto-replies: at most one per topic per channel per [`Cooldowns::faq`] window.
//! - Crisis replies never wait on FAQ cooldowns, but one person gets at most one per channel per
//!   [`Cooldowns::crisis`] window: nobody is answered again and again.
//!
//! Commands are explicit requests and are never limited; adapters only ask here about chat replies.
//! The clock is passed in, so the rules are tested without waiting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::reply::{Reply, ReplyKind};

/// Entries beyond this many are pruned of expired ones, so memory stays bounded on a busy server.
const PRUNE_ABOVE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Faq { channel: String, topic: String },
    Crisis { channel: String, person: String },
}

/// Remembers when each kind of reply was last sent where.
#[derive(Debug)]
pub struct Cooldowns {
    pub faq: Duration,
    pub crisis: Duration,
    last_sent: HashMap<Key, Instant>,
}

impl Cooldowns {
    pub fn new(faq: Duration, crisis: Duration) -> Cooldowns {
        Cooldowns { faq, crisis, last_sent: HashMap::new() }
    }

    /// Whether a chat reply from `person` in `channel` may be sent at `now`; when it may, it is recorded as sent.
    pub fn admit(&mut self, channel: &str, person: &str, reply: &Reply, now: Instant) -> bool {
        let (key, window) = match reply.kind() {
            ReplyKind::Topic { id, crisis } if !crisis.is_crisis() => {
                (Key::Faq { channel: channel.to_owned(), topic: id.clone() }, self.faq)
            }
            _ => (Key::Crisis { channel: channel.to_owned(), person: person.to_owned() }, self.crisis),
        };
        if self.last_sent.get(&key).is_some_and(|&sent| now.saturating_duration_since(sent) < window) {
            return false;
        }
        if self.last_sent.len() >= PRUNE_ABOVE {
            let longest = self.faq.max(self.crisis);
            self.last_sent.retain(|_, &mut sent| now.saturating_duration_since(sent) < longest);
        }
        self.last_sent.insert(key, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Audience, Bot, Catalog, Incoming};

    const MINUTE: Duration = Duration::from_secs(60);

    fn bot() -> Bot {
        Bot::new(Catalog::parse("responses.toml", include_str!("../responses.toml")).unwrap())
    }

    fn reply(bot: &Bot, text: &str) -> Reply {
        let audience = Audience { locale: None, command_prefix: "/" };
        bot.respond(Incoming::Chat(text), audience).expect("a reply")
    }

    #[test]
    fn one_faq_reply_per_topic_and_channel_per_window() {
        let bot = bot();
        let legal = reply(&bot, "is ketamine legal?");
        let bladder = reply(&bot, "does ketamine hurt the bladder?");
        let mut cooldowns = Cooldowns::new(10 * MINUTE, 30 * MINUTE);
        let start = Instant::now();
        assert!(cooldowns.admit("general", "ann", &legal, start));
        assert!(!cooldowns.admit("general", "bob", &legal, start + MINUTE), "same topic, same channel");
        assert!(cooldowns.admit("other", "bob", &legal, start + MINUTE), "another channel");
        assert!(cooldowns.admit("general", "bob", &bladder, start + MINUTE), "another topic");
        assert!(cooldowns.admit("general", "bob", &legal, start + 10 * MINUTE), "the window has passed");
    }

    #[test]
    fn crisis_replies_ignore_faq_cooldowns_but_not_one_per_person() {
        let bot = bot();
        let legal = reply(&bot, "is ketamine legal?");
        let crisis = reply(&bot, "I want to die. is ketamine legal?");
        let mut cooldowns = Cooldowns::new(10 * MINUTE, 30 * MINUTE);
        let start = Instant::now();
        assert!(cooldowns.admit("general", "ann", &legal, start));
        assert!(cooldowns.admit("general", "ann", &crisis, start), "crisis replies never wait on the FAQ");
        assert!(cooldowns.admit("general", "bob", &crisis, start), "another person");
        assert!(!cooldowns.admit("general", "ann", &crisis, start + 29 * MINUTE), "one per person per window");
        assert!(cooldowns.admit("general", "ann", &crisis, start + 30 * MINUTE));
    }

    #[test]
    fn memory_stays_bounded() {
        let bot = bot();
        let legal = reply(&bot, "is ketamine legal?");
        let mut cooldowns = Cooldowns::new(MINUTE, MINUTE);
        let start = Instant::now();
        for channel in 0..3 * PRUNE_ABOVE {
            let now = start + Duration::from_secs(channel as u64);
            assert!(cooldowns.admit(&channel.to_string(), "ann", &legal, now));
        }
        assert!(cooldowns.last_sent.len() <= PRUNE_ABOVE + 1);
    }
}
