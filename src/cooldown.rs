//! Which replies go out, so a busy channel is not flooded and a person in crisis is never shut out.
//!
//! - FAQ auto-replies: at most one per topic per channel per [`Cooldowns::faq`] window.
//! - Crisis replies (levels `mention`, `third_party`, `self`) never wait on FAQ cooldowns. One person gets at most
//!   one reply per channel and level per [`Cooldowns::crisis`] window, except that
//!   - a level higher than the last one they were answered at is always answered (`mention` -> `third_party` ->
//!     `self`), and
//!   - a message showing imminent risk (intent, a plan, preparation, an attempt) is answered whatever the
//!     window, at most once per [`IMMINENT_WINDOW`] per person.
//!
//!   A message held back by the window gets the topic's answer without crisis text where its level allows a
//!   snippet ([`ChatOutcome::faq_instead`], under the FAQ cooldown), and otherwise nothing: at `self` a member
//!   is not sent the same crisis block twice in half an hour.
//! - Commands, on platforms where members type them as chat: one answer per command per member and channel per
//!   FAQ window ([`Cooldowns::admit_command`]).
//! - Edits: an edited message is answered only when its new text raises its crisis level, and a message gets at
//!   most one crisis block ([`Cooldowns::admit_edit`]).
//!
//! Admission reserves the window; a reply that could not be delivered gives it back ([`Cooldowns::release`]), so a
//! failed send never silences the next message. The clock is passed in, so the rules are tested without waiting.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::bot::ChatOutcome;
use crate::config::CooldownSettings;
use crate::reply::Reply;
use crate::safety::CrisisLevel;

/// How often a message showing imminent risk may pass the crisis window, per person.
pub const IMMINENT_WINDOW: Duration = Duration::from_secs(60);
/// Entries beyond this many are pruned of expired ones, so memory stays bounded on a busy server.
const PRUNE_ABOVE: usize = 4096;
/// Messages whose crisis level is remembered for their edits.
const REMEMBERED_MESSAGES: usize = 4096;

/// Where a message was written and by whom: platform ids, never what was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Place {
    /// The platform (`discord`, `matrix`), for metrics.
    pub platform: &'static str,
    /// The channel or room.
    pub channel: String,
    /// The member who wrote.
    pub person: String,
    /// The message.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Faq { channel: String, topic: String },
    Crisis { channel: String, person: String, level: CrisisLevel },
    Imminent { person: String },
    Command { channel: String, person: String, name: String },
}

/// The FAQ window a reply holds: its topic's in `channel`, if it answers a topic.
fn faq_key(channel: &str, reply: &Reply) -> Option<Key> {
    match reply.kind() {
        crate::ReplyKind::Topic { id, .. } => Some(Key::Faq { channel: channel.to_owned(), topic: id.clone() }),
        _ => None,
    }
}

/// Why a reply was let through, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Nothing like it was sent within its window.
    Fresh,
    /// A higher crisis level than the person's last reply.
    Escalation,
    /// Imminent risk, through the crisis window.
    Imminent,
    /// The topic's answer, sent instead of a crisis reply held back by the window.
    FaqInstead,
}

impl Admission {
    pub fn as_str(self) -> &'static str {
        match self {
            Admission::Fresh => "fresh",
            Admission::Escalation => "escalation",
            Admission::Imminent => "imminent",
            Admission::FaqInstead => "faq-instead",
        }
    }
}

/// The windows a sent reply holds, with what they held before, so a failed send can give them back.
#[derive(Debug)]
#[must_use = "release the ticket when the reply could not be sent"]
pub struct Ticket {
    taken: Vec<(Key, Instant, Option<Instant>)>,
    /// The message whose crisis block this reply is, for [`Cooldowns::admit_edit`].
    crisis_block_for: Option<String>,
}

/// A reply let through, and the ticket that gives its windows back if it cannot be sent.
#[derive(Debug)]
pub struct Admitted {
    pub reply: Reply,
    pub admission: Admission,
    pub ticket: Ticket,
}

/// What one message was assessed at, and whether it has had its crisis block.
#[derive(Debug, Clone, Copy)]
struct MessageState {
    level: CrisisLevel,
    crisis_block_sent: bool,
}

/// Remembers when each kind of reply was last sent where, and the crisis level of recent messages.
#[derive(Debug)]
pub struct Cooldowns {
    pub faq: Duration,
    pub crisis: Duration,
    last_sent: HashMap<Key, Instant>,
    messages: HashMap<String, MessageState>,
    message_order: VecDeque<String>,
}

impl Cooldowns {
    pub fn new(windows: CooldownSettings) -> Cooldowns {
        let CooldownSettings { faq, crisis } = windows;
        Cooldowns { faq, crisis, last_sent: HashMap::new(), messages: HashMap::new(), message_order: VecDeque::new() }
    }

    /// Takes the windows the operator's settings now give (they are reloaded with the content); what was sent
    /// stays remembered.
    pub fn set_windows(&mut self, windows: CooldownSettings) {
        (self.faq, self.crisis) = (windows.faq, windows.crisis);
    }

    /// What to send in reply to a new chat message at `now`, if anything; its windows are taken. `faq` is the
    /// server's own FAQ window, when its moderators chose one.
    pub fn admit_chat(
        &mut self,
        place: &Place,
        outcome: ChatOutcome<'_>,
        now: Instant,
        faq: Option<Duration>,
    ) -> Option<Admitted> {
        self.remember(&place.message, outcome.assessment.level);
        self.admit(place, outcome, now, Some(faq.unwrap_or(self.faq)))
    }

    /// What to send in reply to an edit of a message, if anything: only when the new text raises the message's
    /// crisis level (an unknown message counts as `none`), and never a second crisis block for one message.
    pub fn admit_edit(&mut self, place: &Place, outcome: ChatOutcome<'_>, now: Instant) -> Option<Admitted> {
        let level = outcome.assessment.level;
        let before = self.messages.get(&place.message).copied();
        let level_before = before.map_or(CrisisLevel::None, |state| state.level);
        let had_block = before.is_some_and(|state| state.crisis_block_sent);
        self.remember(&place.message, level.max(level_before));
        let raised = level > level_before;
        if !raised || had_block {
            return None;
        }
        self.admit(place, outcome, now, None)
    }

    /// Whether a member's command may be answered at `now`; when it may, its window is taken.
    pub fn admit_command(&mut self, place: &Place, name: &str, now: Instant) -> Option<Ticket> {
        let key = Key::Command { channel: place.channel.clone(), person: place.person.clone(), name: name.to_owned() };
        if self.holds(&key, self.faq, now) {
            return None;
        }
        Some(self.take(vec![key], None, now))
    }

    /// Gives back the windows a reply took, because it could not be sent.
    pub fn release(&mut self, ticket: Ticket) {
        for (key, taken_at, before) in ticket.taken {
            if self.last_sent.get(&key) != Some(&taken_at) {
                continue; // a later reply holds it now
            }
            match before {
                Some(before) => self.last_sent.insert(key, before),
                None => self.last_sent.remove(&key),
            };
        }
        if let Some(state) = ticket.crisis_block_for.and_then(|message| self.messages.get_mut(&message)) {
            state.crisis_block_sent = false;
        }
    }

    /// `faq`: the FAQ window, or `None` for no FAQ answer at all (edits).
    fn admit(
        &mut self,
        place: &Place,
        outcome: ChatOutcome<'_>,
        now: Instant,
        faq: Option<Duration>,
    ) -> Option<Admitted> {
        let level = outcome.assessment.level;
        let reply = outcome.reply?;
        if level == CrisisLevel::None {
            return self.admit_faq(&place.channel, reply, faq?, Admission::Fresh, now);
        }
        let crisis_key = |level| Key::Crisis { channel: place.channel.clone(), person: place.person.clone(), level };
        let imminent_key = Key::Imminent { person: place.person.clone() };
        let admission = if !self.holds(&crisis_key(level), self.crisis, now) {
            Some(Admission::Fresh)
        } else if self.last_crisis_level(place, now).is_some_and(|last| last < level) {
            Some(Admission::Escalation)
        } else if outcome.assessment.category.is_some_and(|category| category.is_imminent())
            && !self.holds(&imminent_key, IMMINENT_WINDOW, now)
        {
            Some(Admission::Imminent)
        } else {
            None
        };
        let Some(admission) = admission else {
            let window = faq?;
            return self.admit_faq(&place.channel, outcome.faq_instead?, window, Admission::FaqInstead, now);
        };
        let mut keys = vec![crisis_key(level)];
        keys.extend(faq_key(&place.channel, &reply));
        if admission == Admission::Imminent {
            keys.push(imminent_key);
        }
        let crisis_block_for = level.is_crisis().then(|| place.message.clone());
        if let Some(state) = crisis_block_for.as_ref().and_then(|message| self.messages.get_mut(message)) {
            state.crisis_block_sent = true;
        }
        let ticket = self.take(keys, crisis_block_for, now);
        Some(Admitted { reply, admission, ticket })
    }

    /// A topic's answer under the FAQ cooldown of that topic in `channel`.
    fn admit_faq(
        &mut self,
        channel: &str,
        reply: Reply,
        window: Duration,
        admission: Admission,
        now: Instant,
    ) -> Option<Admitted> {
        let key = faq_key(channel, &reply)?;
        if self.holds(&key, window, now) {
            return None;
        }
        let ticket = self.take(vec![key], None, now);
        Some(Admitted { reply, admission, ticket })
    }

    /// The level of the person's most recent crisis reply in this channel, within the window.
    fn last_crisis_level(&self, place: &Place, now: Instant) -> Option<CrisisLevel> {
        [CrisisLevel::Mention, CrisisLevel::ThirdParty, CrisisLevel::SelfRisk]
            .into_iter()
            .filter_map(|level| {
                let key = Key::Crisis { channel: place.channel.clone(), person: place.person.clone(), level };
                let sent = *self.last_sent.get(&key)?;
                (now.saturating_duration_since(sent) < self.crisis).then_some((sent, level))
            })
            .max()
            .map(|(_, level)| level)
    }

    fn holds(&self, key: &Key, window: Duration, now: Instant) -> bool {
        self.last_sent.get(key).is_some_and(|&sent| now.saturating_duration_since(sent) < window)
    }

    fn take(&mut self, keys: Vec<Key>, crisis_block_for: Option<String>, now: Instant) -> Ticket {
        if self.last_sent.len() >= PRUNE_ABOVE {
            let longest = self.faq.max(self.crisis).max(IMMINENT_WINDOW);
            self.last_sent.retain(|_, &mut sent| now.saturating_duration_since(sent) < longest);
        }
        let taken = keys
            .into_iter()
            .map(|key| {
                let before = self.last_sent.insert(key.clone(), now);
                (key, now, before)
            })
            .collect();
        Ticket { taken, crisis_block_for }
    }

    fn remember(&mut self, message: &str, level: CrisisLevel) {
        let state = MessageState { level, crisis_block_sent: false };
        match self.messages.get_mut(message) {
            Some(known) => known.level = level,
            None => {
                self.messages.insert(message.to_owned(), state);
                self.message_order.push_back(message.to_owned());
                if self.message_order.len() > REMEMBERED_MESSAGES {
                    if let Some(oldest) = self.message_order.pop_front() {
                        self.messages.remove(&oldest);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Audience, Bot, Catalog, ReplyKind};

    const MINUTE: Duration = Duration::from_secs(60);
    const AUDIENCE: Audience<'static> = Audience { locale: None, command_prefix: "/", server: None };

    fn bot() -> &'static Bot {
        static BOT: std::sync::LazyLock<Bot> = std::sync::LazyLock::new(|| Bot::new(Catalog::built_in()));
        &BOT
    }

    fn place(channel: &str, person: &str) -> Place {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let message = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string();
        Place { platform: "test", channel: channel.into(), person: person.into(), message }
    }

    /// The kind of reply admitted for a new message, or `None`.
    fn chat(cooldowns: &mut Cooldowns, place: &Place, text: &str, now: Instant) -> Option<ReplyKind> {
        let outcome = bot().chat(text, AUDIENCE);
        cooldowns.admit_chat(place, outcome, now, None).map(|admitted| admitted.reply.kind().clone())
    }

    fn cooldowns() -> Cooldowns {
        Cooldowns::new(CooldownSettings { faq: 10 * MINUTE, crisis: 30 * MINUTE })
    }

    #[test]
    fn one_faq_reply_per_topic_and_channel_per_window() {
        let mut cooldowns = cooldowns();
        let start = Instant::now();
        let legal = "is ketamine legal?";
        assert!(chat(&mut cooldowns, &place("general", "ann"), legal, start).is_some());
        assert!(chat(&mut cooldowns, &place("general", "bob"), legal, start + MINUTE).is_none(), "same topic");
        assert!(chat(&mut cooldowns, &place("other", "bob"), legal, start + MINUTE).is_some(), "another channel");
        let bladder = "does ketamine hurt the bladder?";
        assert!(chat(&mut cooldowns, &place("general", "bob"), bladder, start + MINUTE).is_some(), "another topic");
        assert!(chat(&mut cooldowns, &place("general", "bob"), legal, start + 10 * MINUTE).is_some(), "window passed");
    }

    #[test]
    fn a_servers_own_faq_window_replaces_the_default() {
        let mut cooldowns = cooldowns();
        let start = Instant::now();
        let mut ask = |person: &str, at: Instant| {
            let outcome = bot().chat("is ketamine legal?", AUDIENCE);
            cooldowns.admit_chat(&place("general", person), outcome, at, Some(MINUTE)).is_some()
        };
        assert!(ask("ann", start));
        assert!(!ask("bob", start + MINUTE / 2));
        assert!(ask("bob", start + 2 * MINUTE), "the default ten minutes would still hold it");
    }

    #[test]
    fn crisis_replies_ignore_faq_cooldowns_but_not_one_per_person_and_level() {
        let mut cooldowns = cooldowns();
        let start = Instant::now();
        let crisis = Some(ReplyKind::Crisis(CrisisLevel::SelfRisk));
        assert!(chat(&mut cooldowns, &place("general", "ann"), "is ketamine legal?", start).is_some());
        let with_question = "I want to die. is ketamine legal?";
        assert_eq!(chat(&mut cooldowns, &place("general", "ann"), with_question, start), crisis, "never waits on FAQ");
        assert_eq!(chat(&mut cooldowns, &place("general", "bob"), "I want to die", start), crisis, "another person");
        let later = start + 29 * MINUTE;
        assert_eq!(chat(&mut cooldowns, &place("general", "ann"), "I want to die", later), None, "one per window");
        assert_eq!(chat(&mut cooldowns, &place("other", "ann"), "I want to die", later), crisis, "another channel");
        assert_eq!(chat(&mut cooldowns, &place("general", "ann"), "I want to die", start + 30 * MINUTE), crisis);
    }

    #[test]
    fn a_higher_level_than_the_last_reply_is_always_answered() {
        let mut cooldowns = cooldowns();
        let start = Instant::now();
        let here = || place("general", "ann");
        let mention = chat(&mut cooldowns, &here(), "does ketamine help with suicidal ideation?", start);
        assert!(matches!(mention, Some(ReplyKind::Topic { crisis: CrisisLevel::Mention, .. })), "{mention:?}");
        let friend = chat(&mut cooldowns, &here(), "my friend wants to kill herself", start + MINUTE);
        assert_eq!(friend, Some(ReplyKind::Crisis(CrisisLevel::ThirdParty)));
        let own = chat(&mut cooldowns, &here(), "I want to kill myself", start + 2 * MINUTE);
        assert_eq!(own, Some(ReplyKind::Crisis(CrisisLevel::SelfRisk)));
        let friend_again = chat(&mut cooldowns, &here(), "my friend wants to kill herself", start + 3 * MINUTE);
        assert_eq!(friend_again, None, "third_party is held: answered two minutes ago");
        // The last reply was `self`; a `third_party` reply in between would make `self` an escalation again.
        assert_eq!(chat(&mut cooldowns, &here(), "I want to kill myself", start + 4 * MINUTE), None);
    }

    #[test]
    fn escalation_after_a_lower_reply_passes_the_window_of_its_own_level() {
        let mut cooldowns = cooldowns();
        let start = Instant::now();
        let here = || place("general", "ann");
        assert!(chat(&mut cooldowns, &here(), "I want to kill myself", start).is_some());
        assert!(chat(&mut cooldowns, &here(), "my friend wants to kill herself", start + MINUTE).is_some());
        let own = chat(&mut cooldowns, &here(), "I want to kill myself", start + 2 * MINUTE);
        assert_eq!(own, Some(ReplyKind::Crisis(CrisisLevel::SelfRisk)), "self is higher than the last reply");
    }

    #[test]
    fn imminent_risk_passes_the_window_once_a_minute() {
        let mut cooldowns = cooldowns();
        let start = Instant::now();
        let here = || place("general", "ann");
        let crisis = Some(ReplyKind::Crisis(CrisisLevel::SelfRisk));
        assert_eq!(chat(&mut cooldowns, &here(), "I want to die", start), crisis);
        let plan = "I'm going to kill myself tonight";
        assert_eq!(bot().chat(plan, AUDIENCE).assessment.category.map(|c| c.is_imminent()), Some(true));
        assert_eq!(chat(&mut cooldowns, &here(), plan, start + MINUTE), crisis, "imminent passes the window");
        assert_eq!(chat(&mut cooldowns, &here(), plan, start + MINUTE + MINUTE / 2), None, "once a minute");
        assert_eq!(chat(&mut cooldowns, &here(), plan, start + 2 * MINUTE + MINUTE / 2), crisis);
        assert_eq!(chat(&mut cooldowns, &here(), "I want to die", start + 3 * MINUTE), None, "not imminent");
    }

    #[test]
    fn a_held_back_crisis_reply_becomes_the_faq_answer_where_the_level_allows_one() {
        let mut cooldowns = cooldowns();
        let start = Instant::now();
        let here = || place("general", "ann");
        let question = "my friend is suicidal, is ketamine legal?";
        let first = cooldowns.admit_chat(&here(), bot().chat(question, AUDIENCE), start, None).unwrap();
        assert_eq!(
            first.reply.kind(),
            &ReplyKind::Topic { id: "legal-status".into(), crisis: CrisisLevel::ThirdParty }
        );
        let other_topic = "my friend is suicidal, does ketamine hurt the bladder?";
        let second = cooldowns.admit_chat(&here(), bot().chat(other_topic, AUDIENCE), start + MINUTE, None).unwrap();
        assert_eq!(second.admission, Admission::FaqInstead);
        assert_eq!(second.reply.kind(), &ReplyKind::Topic { id: "bladder-problems".into(), crisis: CrisisLevel::None });
        assert!(!second.reply.to_plain_text().contains("988"), "no second crisis block");
        let same_topic = chat(&mut cooldowns, &here(), question, start + 2 * MINUTE);
        assert_eq!(same_topic, None, "the FAQ answer is under the FAQ cooldown too");
        assert!(chat(&mut cooldowns, &here(), "I want to die. is ketamine legal?", start).is_some());
        let held = "I want to die. does ketamine hurt the bladder?";
        assert_eq!(chat(&mut cooldowns, &here(), held, start + 3 * MINUTE), None, "self: nothing instead");
    }

    #[test]
    fn a_failed_send_gives_the_window_back() {
        let mut cooldowns = cooldowns();
        let start = Instant::now();
        let here = || place("general", "ann");
        let failed = cooldowns.admit_chat(&here(), bot().chat("I want to die", AUDIENCE), start, None).unwrap();
        cooldowns.release(failed.ticket);
        let retried = chat(&mut cooldowns, &here(), "I want to die", start + MINUTE);
        assert_eq!(retried, Some(ReplyKind::Crisis(CrisisLevel::SelfRisk)), "the failure silenced nothing");
        assert_eq!(chat(&mut cooldowns, &here(), "I want to die", start + 2 * MINUTE), None, "the success holds");

        let faq = cooldowns.admit_chat(&here(), bot().chat("is ketamine legal?", AUDIENCE), start, None).unwrap();
        let later = chat(&mut cooldowns, &place("general", "bob"), "is ketamine legal?", start + MINUTE);
        assert!(later.is_none());
        cooldowns.release(faq.ticket);
        assert!(chat(&mut cooldowns, &place("general", "bob"), "is ketamine legal?", start + MINUTE).is_some());
    }

    #[test]
    fn releasing_an_old_ticket_keeps_a_newer_reply() {
        let mut cooldowns = cooldowns();
        let start = Instant::now();
        let old =
            cooldowns.admit_chat(&place("general", "ann"), bot().chat("I want to die", AUDIENCE), start, None).unwrap();
        let renewed = start + 31 * MINUTE;
        assert!(chat(&mut cooldowns, &place("general", "ann"), "I want to die", renewed).is_some());
        cooldowns.release(old.ticket);
        assert_eq!(chat(&mut cooldowns, &place("general", "ann"), "I want to die", renewed + MINUTE), None);
    }

    #[test]
    fn an_edit_is_answered_only_when_it_raises_the_level_and_once_with_a_crisis_block() {
        let mut cooldowns = cooldowns();
        let start = Instant::now();
        let message = place("general", "ann");
        let edit = |cooldowns: &mut Cooldowns, text: &str, minutes: u32| {
            let outcome = bot().chat(text, AUDIENCE);
            cooldowns.admit_edit(&message, outcome, start + minutes * MINUTE).map(|a| a.reply.kind().clone())
        };
        assert!(chat(&mut cooldowns, &message, "is ketamine legal?", start).is_some());
        assert_eq!(edit(&mut cooldowns, "is ketamine legal in the UK?", 1), None, "an FAQ edit is not answered");
        let mention = edit(&mut cooldowns, "does ketamine help with suicidal ideation?", 2);
        assert!(matches!(mention, Some(ReplyKind::Topic { crisis: CrisisLevel::Mention, .. })), "{mention:?}");
        assert_eq!(edit(&mut cooldowns, "suicide", 3), None, "the same level again");
        assert_eq!(edit(&mut cooldowns, "I want to kill myself", 4), Some(ReplyKind::Crisis(CrisisLevel::SelfRisk)));
        assert_eq!(edit(&mut cooldowns, "I'm going to kill myself tonight", 5), None, "one crisis block a message");
        let unknown = place("general", "bob");
        let outcome = bot().chat("I want to kill myself", AUDIENCE);
        assert!(cooldowns.admit_edit(&unknown, outcome, start).is_some(), "an edit of a message from before the start");
    }

    #[test]
    fn commands_get_one_answer_per_member_command_and_channel_per_window() {
        let mut cooldowns = cooldowns();
        let start = Instant::now();
        let ann = place("general", "ann");
        assert!(cooldowns.admit_command(&ann, "ketamine-risks", start).is_some());
        assert!(cooldowns.admit_command(&ann, "ketamine-risks", start + Duration::from_secs(1)).is_none());
        assert!(cooldowns.admit_command(&ann, "ketamine-legal", start).is_some(), "another command");
        assert!(cooldowns.admit_command(&place("general", "bob"), "ketamine-risks", start).is_some(), "another member");
        assert!(cooldowns.admit_command(&ann, "ketamine-risks", start + 10 * MINUTE).is_some());
    }

    #[test]
    fn memory_stays_bounded() {
        let mut cooldowns = Cooldowns::new(CooldownSettings { faq: MINUTE, crisis: MINUTE });
        let start = Instant::now();
        for channel in 0..3 * PRUNE_ABOVE {
            let now = start + Duration::from_secs(channel as u64);
            assert!(chat(&mut cooldowns, &place(&channel.to_string(), "ann"), "is ketamine legal?", now).is_some());
        }
        assert!(cooldowns.last_sent.len() <= PRUNE_ABOVE + 1);
        assert!(
            cooldowns.messages.len() <= REMEMBERED_MESSAGES && cooldowns.message_order.len() <= REMEMBERED_MESSAGES
        );
    }
}
