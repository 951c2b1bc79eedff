//! What moderators decide for their server, and the pure decisions that follow from it: where FAQ and crisis
//! replies go, when staff are alerted, what a member who opted out gets. Adapters load [`ServerSettings`] from
//! the [`crate::state::Store`], hand them to the core in [`crate::Audience`], and carry out the [`Plan`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bot::ChatOutcome;
use crate::content::PINGS;
use crate::normalize::normalize;
use crate::safety::{Category, CrisisLevel, Detector};
use crate::state::Stats;
use crate::Catalog;

/// Local resources a server may add after the regional lines.
pub const MAX_LOCAL_LINES: usize = 5;
pub const MAX_LOCAL_LINE_CHARS: usize = 200;
/// Phrases a server may allow.
pub const MAX_ALLOWED_PHRASES: usize = 50;
const DEFAULT_REALERT_MINUTES: u32 = 10;

/// Where staff alerts go, and whom a reminder pings: a role on Discord, users the moderators named on Matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertTarget {
    pub channel: String,
    pub role: Option<String>,
    #[serde(default)]
    pub users: Vec<String>,
}

/// Reads a settings command as typed in chat (Matrix: `!ketamine-settings alerts !staff:example.org @mod:example.org`),
/// where the room is the server: `None` for `show`.
pub fn parse_settings(arguments: &str) -> Result<Option<Change>, String> {
    let arguments = arguments.trim();
    let (name, rest) = arguments.split_once(char::is_whitespace).unwrap_or((arguments, ""));
    let rest = rest.trim();
    let number = || rest.parse::<u32>().map_err(|_| format!("`{name}` needs a number"));
    let text = || if rest.is_empty() { Err(format!("`{name}` needs a text")) } else { Ok(rest.to_owned()) };
    Ok(Some(match (name, rest) {
        ("" | "show", _) => return Ok(None),
        ("faq-replies", "on" | "off") => Change::FaqReplies { on: rest == "on", channel: None },
        ("crisis-replies", "public" | "alert-only") => {
            Change::CrisisReplies { alert_only: rest == "alert-only", channel: None }
        }
        ("alerts", "off") => Change::Alerts(None),
        ("alerts", _) => {
            let mut words = rest.split_whitespace();
            let channel = words.next().ok_or("`alerts` needs the staff room's id")?.to_owned();
            Change::Alerts(Some(AlertTarget { channel, role: None, users: words.map(str::to_owned).collect() }))
        }
        ("realert-minutes", _) => Change::RealertMinutes(number()?),
        ("faq-cooldown", _) => Change::FaqCooldown(number()?),
        ("region", _) => Change::Region(text()?),
        ("add-line", _) => Change::AddLine(text()?),
        ("remove-line", _) => Change::RemoveLine(number()? as usize),
        ("allow-phrase", _) => match rest.split_once(char::is_whitespace) {
            Some((action @ ("add" | "remove"), phrase)) => {
                Change::AllowPhrase { add: action == "add", phrase: phrase.trim().to_owned() }
            }
            _ => return Err("`allow-phrase` needs add or remove, then the phrase".to_owned()),
        },
        _ => {
            return Err(format!(
                "unknown setting {arguments:?}; the settings are show, faq-replies on|off, crisis-replies \
                 public|alert-only, alerts <room> [users to ping] | off, realert-minutes N, region R, add-line TEXT, \
                 remove-line N, allow-phrase add|remove PHRASE, faq-cooldown N"
            ))
        }
    }))
}

/// One server's (or Matrix room's) moderator settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// Automatic FAQ replies in the whole server; commands always answer.
    pub faq_replies: bool,
    /// Channels whose FAQ replies differ from the server's.
    pub faq_channels: BTreeMap<String, bool>,
    /// Public crisis replies in the whole server (otherwise staff alerts only).
    pub crisis_replies: bool,
    /// Channels whose crisis replies differ from the server's: `false` is alert-only.
    pub crisis_channels: BTreeMap<String, bool>,
    pub alerts: Option<AlertTarget>,
    /// After this long without an acknowledgement, one reminder.
    pub realert_minutes: u32,
    /// A region id of the content: the crisis lines when the member's locale names none.
    pub region: Option<String>,
    /// Local resources shown after the regional lines.
    pub local_lines: Vec<String>,
    /// Phrases that never trigger a crisis reply here (a song called "Suicide Season").
    pub allowed_phrases: Vec<String>,
    /// The FAQ cooldown here, in minutes, when not the operator's default.
    pub faq_cooldown_minutes: Option<u32>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            faq_replies: true,
            faq_channels: BTreeMap::new(),
            crisis_replies: true,
            crisis_channels: BTreeMap::new(),
            alerts: None,
            realert_minutes: DEFAULT_REALERT_MINUTES,
            region: None,
            local_lines: Vec::new(),
            allowed_phrases: Vec::new(),
            faq_cooldown_minutes: None,
        }
    }
}

/// A change a moderator asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    FaqReplies {
        on: bool,
        channel: Option<String>,
    },
    CrisisReplies {
        alert_only: bool,
        channel: Option<String>,
    },
    Alerts(Option<AlertTarget>),
    RealertMinutes(u32),
    Region(String),
    AddLine(String),
    /// 1-based, as shown by `show`.
    RemoveLine(usize),
    AllowPhrase {
        add: bool,
        phrase: String,
    },
    FaqCooldown(u32),
}

/// Why a change was refused, said to the moderator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("set a staff channel first (`alerts`): in an alert-only channel staff are the only ones told")]
    NoStaffChannel,
    #[error("no region {0:?}; the regions are: {1}")]
    UnknownRegion(String, String),
    #[error("a server has at most {MAX_LOCAL_LINES} local lines; remove one first")]
    TooManyLines,
    #[error("a local line has at most {MAX_LOCAL_LINE_CHARS} characters; this one has {0}")]
    LineTooLong(usize),
    #[error("a local line may not mention anyone ({0:?})")]
    LineMentions(String),
    #[error("links in a local line must start with https:// ({0:?})")]
    InsecureLink(String),
    #[error("there is no line {0}; `show` lists them")]
    NoSuchLine(usize),
    #[error("a server allows at most {MAX_ALLOWED_PHRASES} phrases")]
    TooManyPhrases,
    #[error("an allowed phrase needs at least one letter")]
    EmptyPhrase,
    #[error("{0:?} would silence a message the bot must answer: {1:?}")]
    SilencesCrisis(String, String),
    #[error("{0:?} is not an allowed phrase here")]
    NoSuchPhrase(String),
    #[error("minutes must be between 1 and {1}; got {0}")]
    OutOfRange(u32, u32),
}

impl ServerSettings {
    /// The settings after `change`, or why it is refused. The detector decides which allowed phrases are safe.
    pub fn apply(&self, change: Change, catalog: &Catalog, detectors: &[Detector]) -> Result<ServerSettings, Refusal> {
        let mut next = self.clone();
        match change {
            Change::FaqReplies { on, channel: None } => {
                next.faq_replies = on;
                next.faq_channels.clear();
            }
            Change::FaqReplies { on, channel: Some(channel) } => {
                next.faq_channels.insert(channel, on);
            }
            Change::CrisisReplies { alert_only: true, .. } if self.alerts.is_none() => {
                return Err(Refusal::NoStaffChannel);
            }
            Change::CrisisReplies { alert_only, channel: None } => {
                next.crisis_replies = !alert_only;
                next.crisis_channels.clear();
            }
            Change::CrisisReplies { alert_only, channel: Some(channel) } => {
                next.crisis_channels.insert(channel, !alert_only);
            }
            Change::Alerts(target) => {
                if target.is_none() {
                    // Nobody would be told: every channel is public again.
                    next.crisis_replies = true;
                    next.crisis_channels.clear();
                }
                next.alerts = target;
            }
            Change::RealertMinutes(minutes) => next.realert_minutes = in_range(minutes, 24 * 60)?,
            Change::Region(wanted) => {
                let regions = &catalog.crisis.regions;
                let region =
                    regions.iter().find(|r| r.id.eq_ignore_ascii_case(&wanted) || r.name.eq_ignore_ascii_case(&wanted));
                let names = || regions.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ");
                next.region = Some(region.ok_or_else(|| Refusal::UnknownRegion(wanted.clone(), names()))?.id.clone());
            }
            Change::AddLine(line) => {
                if self.local_lines.len() >= MAX_LOCAL_LINES {
                    return Err(Refusal::TooManyLines);
                }
                next.local_lines.push(valid_line(&line)?);
            }
            Change::RemoveLine(number) => {
                if number == 0 || number > self.local_lines.len() {
                    return Err(Refusal::NoSuchLine(number));
                }
                next.local_lines.remove(number - 1);
            }
            Change::AllowPhrase { add: true, phrase } => {
                if self.allowed_phrases.len() >= MAX_ALLOWED_PHRASES {
                    return Err(Refusal::TooManyPhrases);
                }
                let phrase = phrase.trim().to_owned();
                if !normalize(&phrase).chars().any(char::is_alphanumeric) {
                    return Err(Refusal::EmptyPhrase);
                }
                if let Some(example) = detectors.iter().find_map(|detector| silenced_example(&phrase, detector)) {
                    return Err(Refusal::SilencesCrisis(phrase, example.to_owned()));
                }
                if !next.allowed_phrases.iter().any(|known| normalize(known) == normalize(&phrase)) {
                    next.allowed_phrases.push(phrase);
                }
            }
            Change::AllowPhrase { add: false, phrase } => {
                let before = next.allowed_phrases.len();
                next.allowed_phrases.retain(|known| normalize(known) != normalize(&phrase));
                if next.allowed_phrases.len() == before {
                    return Err(Refusal::NoSuchPhrase(phrase));
                }
            }
            Change::FaqCooldown(minutes) => next.faq_cooldown_minutes = Some(in_range(minutes, 7 * 24 * 60)?),
        }
        Ok(next)
    }

    /// Whether automatic FAQ replies may go out in `channel`.
    pub fn faq_allowed(&self, channel: &str) -> bool {
        self.faq_channels.get(channel).copied().unwrap_or(self.faq_replies)
    }

    /// Whether a crisis in `channel` gets a public reply (otherwise only a staff alert).
    pub fn crisis_public(&self, channel: &str) -> bool {
        self.crisis_channels.get(channel).copied().unwrap_or(self.crisis_replies)
    }
}

fn in_range(minutes: u32, most: u32) -> Result<u32, Refusal> {
    if (1..=most).contains(&minutes) {
        Ok(minutes)
    } else {
        Err(Refusal::OutOfRange(minutes, most))
    }
}

/// A local line as given, or why not: short, no mention syntax, links only over https.
fn valid_line(line: &str) -> Result<String, Refusal> {
    let line = line.trim();
    let length = line.chars().count();
    if length == 0 || length > MAX_LOCAL_LINE_CHARS {
        return Err(Refusal::LineTooLong(length));
    }
    if let Some(ping) = PINGS.iter().find(|ping| line.contains(**ping)) {
        return Err(Refusal::LineMentions((*ping).to_owned()));
    }
    let lowered = line.to_lowercase();
    if let Some(word) = lowered.split_whitespace().find(|word| word.contains("://") && !word.starts_with("https://")) {
        return Err(Refusal::InsecureLink(word.to_owned()));
    }
    Ok(line.to_owned())
}

/// The first of the detector's first-person examples that the phrase, allowed, would bring below `self`.
fn silenced_example<'d>(phrase: &str, detector: &'d Detector) -> Option<&'d str> {
    let allowed = [phrase.to_owned()];
    detector.first_person_examples().iter().map(String::as_str).find(|example| {
        let text = without_allowed(&normalize(example), &allowed);
        detector.assess(&text).level < CrisisLevel::SelfRisk
    })
}

/// Normalised text with every allowed phrase blanked out, so the detector does not see it.
pub fn without_allowed(normalized: &str, allowed: &[String]) -> String {
    let mut text = normalized.to_owned();
    for phrase in allowed {
        let phrase = normalize(phrase);
        let phrase = phrase.trim();
        if !phrase.is_empty() {
            text = text.replace(phrase, &" ".repeat(phrase.len()));
        }
    }
    text
}

/// What the bot tells a member who asks what it does with their messages.
pub const PRIVACY: &str = "What this bot reads: messages in the channels it can see, to answer questions about \
ketamine and to notice when someone may be in crisis. What it keeps: never what anyone wrote. It keeps each \
server's settings, the ids of members who opted out, and for 30 days staff alerts that name a channel, a message \
link, a member and the crisis level (no text); daily counts without ids are kept for statistics. Who sees alerts: \
the staff channel this server's moderators chose, if any, whether or not you opted out. Opting out \
(`optout`) stops automatic replies to you everywhere; commands still answer. `forget-me` deletes your opt-out and \
your id from stored alerts.";

impl ServerSettings {
    /// The settings as a moderator reads them, one line each; `channel` and `role` write a platform's mention
    /// of an id (one that does not ping).
    pub fn describe(&self, channel: impl Fn(&str) -> String, role: impl Fn(&str) -> String) -> Vec<String> {
        let on_off = |on: bool| if on { "on" } else { "off" };
        let mut lines = vec![format!("FAQ replies: {} in the server", on_off(self.faq_replies))];
        lines.extend(
            self.faq_channels.iter().map(|(id, on)| format!("FAQ replies: {} in {}", on_off(*on), channel(id))),
        );
        lines.push(match &self.alerts {
            Some(target) => {
                let pinged: Vec<String> =
                    target.role.iter().map(|id| role(id)).chain(target.users.iter().cloned()).collect();
                let pinged = if pinged.is_empty() { "nobody".to_owned() } else { pinged.join(", ") };
                format!("Staff alerts: to {}, reminders ping {pinged}", channel(&target.channel))
            }
            None => "Staff alerts: off".to_owned(),
        });
        let mode = |public: bool| if public { "public" } else { "alert-only" };
        lines.push(format!("Crisis replies: {} in the server", mode(self.crisis_replies)));
        lines.extend(
            self.crisis_channels
                .iter()
                .map(|(id, public)| format!("Crisis replies: {} in {}", mode(*public), channel(id))),
        );
        lines.push(format!("Reminder after: {} minutes", self.realert_minutes));
        lines.push(format!("Region: {}", self.region.as_deref().unwrap_or("from each member's locale")));
        lines.extend(
            self.local_lines.iter().enumerate().map(|(index, line)| format!("Local line {}: {line}", index + 1)),
        );
        if !self.allowed_phrases.is_empty() {
            lines.push(format!("Allowed phrases: {}", self.allowed_phrases.join("; ")));
        }
        if let Some(minutes) = self.faq_cooldown_minutes {
            lines.push(format!("FAQ cooldown: {minutes} minutes"));
        }
        lines
    }

    /// Whether an unacknowledged alert created at `created_at` is due its one reminder at `now` (seconds).
    pub fn reminder_due(&self, created_at: i64, now: i64) -> bool {
        now - created_at >= i64::from(self.realert_minutes) * 60
    }
}

/// How long after a moderator sent a member crisis resources another send to them is refused, in seconds.
pub const RESOURCES_WINDOW_SECONDS: i64 = 60 * 60;

/// Whether a moderator may send crisis resources to a member who last got them at `last` (seconds).
pub fn resources_allowed(last: Option<i64>, now: i64) -> bool {
    last.is_none_or(|last| now - last >= RESOURCES_WINDOW_SECONDS)
}

/// `/ketamine-stats` for the last 7 and 30 days: counts only, no ids, no text.
pub fn describe_stats(periods: &[(u32, Stats)]) -> String {
    let list = |counts: &[(String, i64)]| match counts.is_empty() {
        true => "none".to_owned(),
        false => counts.iter().map(|(key, count)| format!("{key} {count}")).collect::<Vec<_>>().join(", "),
    };
    periods
        .iter()
        .map(|(days, stats)| {
            let median = stats.median_ack_seconds.map_or("-".to_owned(), |seconds| format!("{} min", (seconds + 59) / 60));
            format!(
                "Last {days} days: FAQ replies: {}. Crisis replies: {}. Staff alerts: {}, median time to acknowledge {median}.",
                list(&stats.faq_by_topic),
                list(&stats.crisis_by_level),
                stats.alerts,
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What to do about a chat message, given the server's settings and the member's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Send the reply the core composed (still subject to the cooldowns).
    pub reply: bool,
    /// Alert staff: a `self` or `third_party` crisis, with a staff channel set.
    pub alert: Option<AlertFacts>,
}

/// What a staff alert says about the message: never its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertFacts {
    pub level: CrisisLevel,
    pub category: Option<Category>,
}

/// The plan for a chat message in `channel`: FAQ replies only where they are on, crisis replies unless the
/// channel is alert-only, nothing automatic for a member who opted out; staff alerts for `self` and
/// `third_party` crises whenever a staff channel is set, opted out or not (the server's policy).
pub fn plan(settings: &ServerSettings, channel: &str, opted_out: bool, outcome: &ChatOutcome<'_>) -> Plan {
    let level = outcome.assessment.level;
    let alert = (level.is_crisis() && settings.alerts.is_some())
        .then_some(AlertFacts { level, category: outcome.assessment.category });
    let reply = outcome.reply.is_some()
        && !opted_out
        && match level {
            // A mention's reply is a snippet with a resources line: an FAQ reply as far as channels go.
            CrisisLevel::None | CrisisLevel::Mention => settings.faq_allowed(channel),
            CrisisLevel::ThirdParty | CrisisLevel::SelfRisk => settings.crisis_public(channel),
        };
    Plan { reply, alert }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Audience, Bot};

    fn bot() -> &'static Bot {
        static BOT: std::sync::LazyLock<Bot> = std::sync::LazyLock::new(|| Bot::new(Catalog::built_in()));
        &BOT
    }

    fn apply(settings: &ServerSettings, change: Change) -> Result<ServerSettings, Refusal> {
        settings.apply(change, bot().catalog(), bot().detectors())
    }

    fn staff() -> ServerSettings {
        let target = AlertTarget { channel: "staff".into(), role: Some("mods".into()), users: Vec::new() };
        apply(&ServerSettings::default(), Change::Alerts(Some(target))).unwrap()
    }

    #[test]
    fn alert_only_needs_a_staff_channel_and_ends_with_it() {
        let change = Change::CrisisReplies { alert_only: true, channel: Some("peer".into()) };
        assert_eq!(apply(&ServerSettings::default(), change.clone()), Err(Refusal::NoStaffChannel));
        let settings = apply(&staff(), change).unwrap();
        assert!(!settings.crisis_public("peer") && settings.crisis_public("general"));
        let everywhere = apply(&settings, Change::CrisisReplies { alert_only: true, channel: None }).unwrap();
        assert!(!everywhere.crisis_public("general") && !everywhere.crisis_public("peer"));
        let off = apply(&everywhere, Change::Alerts(None)).unwrap();
        assert!(off.crisis_public("peer") && off.crisis_public("general"), "without staff to tell, all is public");
    }

    #[test]
    fn faq_replies_by_server_and_channel() {
        let off = apply(&ServerSettings::default(), Change::FaqReplies { on: false, channel: None }).unwrap();
        assert!(!off.faq_allowed("general"));
        let one_on = apply(&off, Change::FaqReplies { on: true, channel: Some("questions".into()) }).unwrap();
        assert!(one_on.faq_allowed("questions") && !one_on.faq_allowed("general"));
        let all_on = apply(&one_on, Change::FaqReplies { on: true, channel: None }).unwrap();
        assert!(all_on.faq_allowed("general") && all_on.faq_channels.is_empty());
    }

    #[test]
    fn local_lines_are_short_ping_free_and_https_only() {
        let settings = ServerSettings::default();
        let line = "Our peer line: https://example.org/help, evenings 6-10pm";
        let added = apply(&settings, Change::AddLine(line.into())).unwrap();
        assert_eq!(added.local_lines, [line]);
        let long = "x".repeat(201);
        assert_eq!(apply(&settings, Change::AddLine(long)), Err(Refusal::LineTooLong(201)));
        assert!(matches!(apply(&settings, Change::AddLine("call <@123>".into())), Err(Refusal::LineMentions(_))));
        assert!(matches!(apply(&settings, Change::AddLine("@everyone help".into())), Err(Refusal::LineMentions(_))));
        let insecure = Change::AddLine("see http://example.org".into());
        assert_eq!(apply(&settings, insecure), Err(Refusal::InsecureLink("http://example.org".into())));
        let mut full = settings.clone();
        for index in 0..MAX_LOCAL_LINES {
            full = apply(&full, Change::AddLine(format!("line {index}"))).unwrap();
        }
        assert_eq!(apply(&full, Change::AddLine("one more".into())), Err(Refusal::TooManyLines));
        let removed = apply(&full, Change::RemoveLine(1)).unwrap();
        assert_eq!(removed.local_lines.first().map(String::as_str), Some("line 1"));
        assert_eq!(apply(&full, Change::RemoveLine(9)), Err(Refusal::NoSuchLine(9)));
    }

    #[test]
    fn an_allowed_phrase_quiets_its_own_words_but_never_a_crisis() {
        let settings =
            apply(&ServerSettings::default(), Change::AllowPhrase { add: true, phrase: "Suicide Season".into() })
                .unwrap();
        let audience = Audience { locale: None, command_prefix: "/", server: Some(&settings) };
        assert_eq!(bot().chat("I love the song Suicide Season", audience).assessment.level, CrisisLevel::None);
        let crisis = bot().chat("suicide season was fine. I want to kill myself", audience);
        assert_eq!(crisis.assessment.level, CrisisLevel::SelfRisk);
        let nowhere = Audience { server: None, ..audience };
        assert!(bot().chat("I love the song Suicide Season", nowhere).assessment.level > CrisisLevel::None);

        for phrase in ["kill myself", "want to die", "I want to"] {
            let refused = apply(&ServerSettings::default(), Change::AllowPhrase { add: true, phrase: phrase.into() });
            assert!(matches!(refused, Err(Refusal::SilencesCrisis(..))), "{phrase}: {refused:?}");
        }
        assert_eq!(apply(&settings, Change::AllowPhrase { add: true, phrase: "!!".into() }), Err(Refusal::EmptyPhrase));
        let removed = apply(&settings, Change::AllowPhrase { add: false, phrase: "suicide season".into() }).unwrap();
        assert!(removed.allowed_phrases.is_empty());
    }

    #[test]
    fn regions_and_minutes_are_checked() {
        let settings = ServerSettings::default();
        assert_eq!(apply(&settings, Change::Region("GB".into())).unwrap().region.as_deref(), Some("gb"));
        assert!(matches!(apply(&settings, Change::Region("atlantis".into())), Err(Refusal::UnknownRegion(..))));
        assert_eq!(apply(&settings, Change::RealertMinutes(0)), Err(Refusal::OutOfRange(0, 1440)));
        assert_eq!(apply(&settings, Change::FaqCooldown(30)).unwrap().faq_cooldown_minutes, Some(30));
    }

    #[test]
    fn settings_typed_in_chat_read_as_changes() {
        assert_eq!(parse_settings(""), Ok(None));
        assert_eq!(parse_settings("faq-replies off"), Ok(Some(Change::FaqReplies { on: false, channel: None })));
        let alerts = AlertTarget { channel: "!staff:x".into(), role: None, users: vec!["@mod:x".into()] };
        assert_eq!(parse_settings("alerts !staff:x @mod:x"), Ok(Some(Change::Alerts(Some(alerts)))));
        assert_eq!(parse_settings("alerts off"), Ok(Some(Change::Alerts(None))));
        let phrase = Change::AllowPhrase { add: true, phrase: "Suicide Season".into() };
        assert_eq!(parse_settings("allow-phrase add Suicide Season"), Ok(Some(phrase)));
        assert_eq!(
            parse_settings("add-line Call us: https://x.org"),
            Ok(Some(Change::AddLine("Call us: https://x.org".into())))
        );
        assert!(parse_settings("realert-minutes soon").is_err() && parse_settings("colour blue").is_err());
    }

    #[test]
    fn resources_go_to_a_member_at_most_once_an_hour() {
        assert!(resources_allowed(None, 1000));
        assert!(!resources_allowed(Some(1000), 1000 + RESOURCES_WINDOW_SECONDS - 1));
        assert!(resources_allowed(Some(1000), 1000 + RESOURCES_WINDOW_SECONDS));
    }

    #[test]
    fn stats_read_as_counts_without_ids() {
        let week = Stats {
            faq_by_topic: vec![("dosing".into(), 3)],
            crisis_by_level: vec![("self".into(), 1)],
            alerts: 1,
            median_ack_seconds: Some(61),
        };
        let text = describe_stats(&[(7, week), (30, Stats::default())]);
        assert_eq!(
            text,
            "Last 7 days: FAQ replies: dosing 3. Crisis replies: self 1. Staff alerts: 1, median time to acknowledge 2 min.\n\
             Last 30 days: FAQ replies: none. Crisis replies: none. Staff alerts: 0, median time to acknowledge -."
        );
    }

    #[test]
    fn the_plan_follows_channels_opt_outs_and_alerts() {
        let settings =
            apply(&staff(), Change::CrisisReplies { alert_only: true, channel: Some("peer".into()) }).unwrap();
        let settings = apply(&settings, Change::FaqReplies { on: false, channel: Some("quiet".into()) }).unwrap();
        let audience = Audience { locale: None, command_prefix: "/", server: Some(&settings) };
        let crisis = bot().chat("I want to kill myself", audience);
        let question = bot().chat("is ketamine legal?", audience);
        let facts = Some(AlertFacts { level: CrisisLevel::SelfRisk, category: crisis.assessment.category });
        assert_eq!(plan(&settings, "general", false, &crisis), Plan { reply: true, alert: facts });
        assert_eq!(plan(&settings, "peer", false, &crisis), Plan { reply: false, alert: facts }, "alert-only");
        assert_eq!(plan(&settings, "general", true, &crisis), Plan { reply: false, alert: facts }, "opted out");
        assert_eq!(plan(&settings, "general", false, &question), Plan { reply: true, alert: None });
        assert_eq!(plan(&settings, "quiet", false, &question), Plan { reply: false, alert: None });
        assert_eq!(plan(&settings, "general", true, &question), Plan { reply: false, alert: None });
        let no_staff = ServerSettings::default();
        assert_eq!(plan(&no_staff, "general", false, &crisis).alert, None);
    }
}
