#![recursion_limit = "256"]
//! ketamine-info-bot: curated answers about ketamine therapy and microdosing, crisis resources when someone
//! speaks of suicide, and the source's disclaimer on every reply, for Discord, Matrix and the terminal.
//!
//! # Layout
//! The core is pure and synchronous: no I/O, no platform types.
//! - [`content`]: `responses.toml` -> a validated [`Catalog`]; every error names file, line and column.
//! - [`normalize`]: the one text normal form shared by the detector and the matcher.
//! - [`phrase`]: the phrase language in which the crisis rules and the content's keywords are written.
//! - [`safety`]: the crisis detector ([`Detector`]), built from the rules files `crisis-rules/*.toml`, one per
//!   language.
//! - [`matching`]: chat message -> topics, by the keywords in the content.
//! - [`reply`]: [`Reply`] (crisis block, snippet, disclaimer) and the [`Render`] trait adapters implement.
//! - [`bot`]: [`Bot::respond`], the pure function from an incoming message or command to a reply; [`LiveBot`],
//!   the version the adapters answer with, replaced whole when the content is reloaded.
//! - [`moderation`]: moderators' settings per server and the pure decisions that follow (where to reply, when
//!   to alert staff, opt-outs).
//! - [`cooldown`]: which chat replies go out: cooldowns, escalation, edits (pure; the clock is passed in).
//! - [`delivery`]: how long a failed send is retried, by how urgent the reply is.
//!
//! ```
//! use ketamine_info_bot::{Audience, Bot, Catalog, CrisisLevel, Incoming};
//!
//! let catalog = Catalog::built_in();
//! let bot = Bot::new(catalog);
//! let audience = Audience { locale: Some("en-GB"), command_prefix: "/", server: None };
//!
//! let reply = bot.respond(Incoming::Chat("is ketamine legal?"), audience).expect("a question gets an answer");
//! assert!(reply.to_plain_text().ends_with(&bot.catalog().disclaimer));
//!
//! assert!(bot.respond(Incoming::Chat("good morning"), audience).is_none());
//! assert_eq!(bot.chat("I want to kill myself", audience).assessment.level, CrisisLevel::SelfRisk);
//! ```
//!
//! At the edges:
//! - [`config`]: operator settings from a file and the environment; secrets that never print.
//! - [`state`]: what is kept between restarts (settings, opt-outs, alerts, counts), in SQLite or, shared by
//!   several processes, PostgreSQL; never message text.
//! - [`platforms`]: the adapters, which only translate: console, Discord (`discord` feature) and Matrix
//!   (`matrix` feature).
//!
//! The binary (`src/main.rs`) parses the command line and hands over to an adapter.

pub mod bot;
pub mod config;
pub mod content;
pub mod cooldown;
pub mod delivery;
pub mod matching;
pub mod moderation;
pub mod normalize;
pub mod phrase;
pub mod platforms;
pub mod reply;
pub mod safety;
pub mod state;

pub use bot::{Audience, Bot, ChatOutcome, Incoming, LiveBot};
pub use content::{Catalog, ContentError, ContentErrors};
pub use cooldown::Place;
pub use reply::{Render, Reply, ReplyKind};
pub use safety::{Assessment, CrisisLevel, Detector};
