//! What the bot keeps between restarts: each server's moderator settings, members' opt-outs, staff alerts and
//! daily counts. Never message text: alerts hold ids, the crisis level and the detector's category.
//!
//! [`Store`] is what the adapters use, opened by [`open`] from the operator's setting: [`SqliteStore`] keeps it
//! in one SQLite file (the default), [`PostgresStore`] in a PostgreSQL database that several processes share. Both
//! apply the schema's migrations at start; a database that is locked by another process, corrupted, or from a
//! newer version of the bot is a clear error, and is left as it is.

use std::path::PathBuf;

use crate::moderation::ServerSettings;
use crate::safety::{Category, CrisisLevel};

#[cfg(feature = "platform")]
mod postgres;
#[cfg(feature = "platform")]
mod sqlite;
#[cfg(feature = "platform")]
pub use {postgres::PostgresStore, sqlite::SqliteStore};

/// One step of the schema in each database's dialect: `SCHEMA[n]` takes a database from version `n` to `n + 1`.
pub struct Migration {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub const SCHEMA: &[Migration] = &[
    // 1: settings, opt-outs, alerts, daily counts.
    Migration {
        sqlite: "CREATE TABLE server_settings (server TEXT PRIMARY KEY, settings TEXT NOT NULL);
             CREATE TABLE opt_outs (member TEXT PRIMARY KEY, since INTEGER NOT NULL);
             CREATE TABLE alerts (
                 id INTEGER PRIMARY KEY,
                 server TEXT NOT NULL,
                 channel TEXT NOT NULL,
                 message TEXT NOT NULL,
                 member TEXT,
                 level TEXT NOT NULL,
                 category TEXT,
                 created_at INTEGER NOT NULL,
                 alert_channel TEXT NOT NULL,
                 alert_message TEXT,
                 acknowledged_by TEXT,
                 acknowledged_at INTEGER,
                 reminded_at INTEGER
             );
             CREATE INDEX alerts_open ON alerts (acknowledged_at, reminded_at);
             CREATE TABLE resources_sent (server TEXT NOT NULL, member TEXT NOT NULL, sent_at INTEGER NOT NULL);
             CREATE INDEX resources_sent_member ON resources_sent (server, member, sent_at);
             CREATE TABLE daily_counts (
                 day INTEGER NOT NULL,
                 server TEXT NOT NULL,
                 kind TEXT NOT NULL,
                 key TEXT NOT NULL,
                 count INTEGER NOT NULL,
                 PRIMARY KEY (day, server, kind, key)
             );",
        postgres: "CREATE TABLE server_settings (server TEXT PRIMARY KEY, settings TEXT NOT NULL);
             CREATE TABLE opt_outs (member TEXT PRIMARY KEY, since BIGINT NOT NULL);
             CREATE TABLE alerts (
                 id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 server TEXT NOT NULL,
                 channel TEXT NOT NULL,
                 message TEXT NOT NULL,
                 member TEXT,
                 level TEXT NOT NULL,
                 category TEXT,
                 created_at BIGINT NOT NULL,
                 alert_channel TEXT NOT NULL,
                 alert_message TEXT,
                 acknowledged_by TEXT,
                 acknowledged_at BIGINT,
                 reminded_at BIGINT
             );
             CREATE INDEX alerts_open ON alerts (acknowledged_at, reminded_at);
             CREATE INDEX alerts_by_message ON alerts (alert_message);
             CREATE TABLE resources_sent (server TEXT NOT NULL, member TEXT NOT NULL, sent_at BIGINT NOT NULL);
             CREATE INDEX resources_sent_member ON resources_sent (server, member, sent_at);
             CREATE TABLE daily_counts (
                 day BIGINT NOT NULL,
                 server TEXT NOT NULL,
                 kind TEXT NOT NULL,
                 key TEXT NOT NULL,
                 count BIGINT NOT NULL,
                 PRIMARY KEY (day, server, kind, key)
             );",
    },
];

/// Opens the state database the operator chose, bringing its schema up to date.
#[cfg(feature = "platform")]
pub fn open(location: &crate::config::StateLocation) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    use crate::config::StateLocation;
    Ok(match location {
        StateLocation::File(path) => std::sync::Arc::new(SqliteStore::open(path)?),
        StateLocation::Postgres(url) => std::sync::Arc::new(PostgresStore::open(url.expose())?),
    })
}

/// An alert's level as stored by [`CrisisLevel::as_str`].
#[cfg(feature = "platform")]
fn stored_level(text: String) -> CrisisLevel {
    serde_json::from_value(serde_json::Value::String(text)).unwrap_or(CrisisLevel::SelfRisk)
}

/// An alert's category as stored by [`Category::as_str`].
#[cfg(feature = "platform")]
fn stored_category(text: Option<String>) -> Option<Category> {
    text.and_then(|text| serde_json::from_value(serde_json::Value::String(text)).ok())
}

/// Seconds since the Unix epoch, as stored. Tests move it forward instead of waiting.
#[derive(Debug, Clone, Default)]
pub struct Clock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl Clock {
    pub fn now(&self) -> i64 {
        let system = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        system.as_secs() as i64 + self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Moves this clock (and its clones) forward.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How long alert records (and records of resources sent) are kept, in seconds.
pub const ALERT_RETENTION_SECONDS: i64 = 30 * 24 * 60 * 60;

/// A database driver's own error.
pub type DriverError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the state database {path} is in use by another process (locked); stop it, or give this one --state")]
    Locked { path: PathBuf },
    #[error("the state database {path} is not a database this bot can read (corrupted?); it was left untouched")]
    Corrupted { path: PathBuf, source: DriverError },
    #[error(
        "the state database {database} has schema version {found}, newer than this bot knows ({known}); run the \
         newer bot, or restore a backup"
    )]
    Newer { database: String, found: i64, known: i64 },
    #[error("cannot back up the state database {path} before migrating it")]
    Backup { path: PathBuf, source: std::io::Error },
    #[error("cannot take the lock file {path}")]
    Claim { path: PathBuf, source: std::io::Error },
    #[error("cannot reach the state database {database}")]
    Unreachable { database: String, source: DriverError },
    #[error("the state database")]
    Database(#[source] DriverError),
    #[error("the state database holds settings this bot cannot read")]
    Settings(#[from] serde_json::Error),
}

/// A staff alert as stored: where and what level, never what was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    pub id: i64,
    pub server: String,
    pub channel: String,
    pub message: String,
    /// `None` once the member asked to be forgotten.
    pub member: Option<String>,
    pub level: CrisisLevel,
    pub category: Option<Category>,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub alert_channel: String,
    pub alert_message: Option<String>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<i64>,
    pub reminded_at: Option<i64>,
}

/// A new alert, before it has an id.
#[derive(Debug, Clone)]
pub struct NewAlert<'a> {
    pub server: &'a str,
    pub channel: &'a str,
    pub message: &'a str,
    pub member: &'a str,
    pub level: CrisisLevel,
    pub category: Option<Category>,
    pub created_at: i64,
    pub alert_channel: &'a str,
}

/// Counts over a period, for `/ketamine-stats`: no ids, no text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// FAQ replies by topic id.
    pub faq_by_topic: Vec<(String, i64)>,
    /// Crisis replies by level.
    pub crisis_by_level: Vec<(String, i64)>,
    pub alerts: i64,
    /// The median time from an alert to its acknowledgement, in seconds.
    pub median_ack_seconds: Option<i64>,
}

/// The bot's state. Behind a trait so that a server database can serve several processes.
pub trait Store: Send + Sync {
    /// A server's settings; the defaults when it has none.
    fn settings(&self, server: &str) -> Result<ServerSettings, StoreError>;
    fn save_settings(&self, server: &str, settings: &ServerSettings) -> Result<(), StoreError>;
    fn opted_out(&self, member: &str) -> Result<bool, StoreError>;
    fn set_opted_out(&self, member: &str, opted_out: bool, now: i64) -> Result<(), StoreError>;
    fn add_alert(&self, alert: &NewAlert<'_>) -> Result<i64, StoreError>;
    fn set_alert_message(&self, id: i64, alert_message: &str) -> Result<(), StoreError>;
    fn alert(&self, id: i64) -> Result<Option<AlertRecord>, StoreError>;
    /// The alert posted as `alert_message` (a platform's message or event id).
    fn alert_by_message(&self, alert_message: &str) -> Result<Option<AlertRecord>, StoreError>;
    /// Records who acknowledged an alert; false when it was acknowledged already.
    fn acknowledge(&self, id: i64, by: &str, at: i64) -> Result<bool, StoreError>;
    /// Alerts neither acknowledged nor reminded about, oldest first.
    fn unanswered_alerts(&self) -> Result<Vec<AlertRecord>, StoreError>;
    fn mark_reminded(&self, id: i64, at: i64) -> Result<(), StoreError>;
    /// When a moderator last sent `member` crisis resources in `server`.
    fn last_resources_sent(&self, server: &str, member: &str) -> Result<Option<i64>, StoreError>;
    fn record_resources_sent(&self, server: &str, member: &str, at: i64) -> Result<(), StoreError>;
    /// Adds one to a day's count of `kind` (`faq`, `crisis`, `alert`) for `key` (a topic id, a level).
    fn count(&self, day: i64, server: &str, kind: &str, key: &str) -> Result<(), StoreError>;
    /// Counts for the days `from_day..=to_day`.
    fn stats(&self, server: &str, from_day: i64, to_day: i64, since: i64) -> Result<Stats, StoreError>;
    /// Deletes a member's opt-out, the record of resources sent to them, and their id from stored alerts.
    fn forget(&self, member: &str) -> Result<(), StoreError>;
    /// Deletes alert records older than the retention period.
    fn prune(&self, now: i64) -> Result<usize, StoreError>;
    /// Claims `name` (such as one Discord shard) for this process for as long as the returned guard lives; `None`
    /// while another process holds it, so that two copies never answer the same messages.
    fn claim(&self, name: &str) -> Result<Option<Claim>, StoreError>;
}

/// A name held by [`Store::claim`]; dropping it releases the name.
pub struct Claim {
    _held: Box<dyn Send>,
}

#[cfg(feature = "platform")]
impl Claim {
    fn new(held: impl Send + 'static) -> Claim {
        Claim { _held: Box::new(held) }
    }
}

/// Holds an advisory lock on the file at `path` (created `0600` if missing) for as long as the file is open;
/// `None` when another process holds it.
pub fn lock_file(path: &std::path::Path) -> std::io::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(error)) => Err(error),
    }
}

/// What every [`Store`] does, checked by each store's own tests through [`store_contract_tests`].
#[cfg(all(test, feature = "platform"))]
mod contract {
    use super::*;

    /// One test per contract check for a store: `$new` makes a new, empty database from a name and gives its
    /// location, `$open` opens a store at a location.
    macro_rules! store_contract_tests {
        ($new:expr, $open:expr) => {
            #[test]
            fn settings_and_opt_outs_survive_reopening() {
                let location = $new("reopen");
                $crate::state::contract::settings_and_opt_outs_survive_reopening(&|| Box::new($open(&location)));
            }

            #[test]
            fn alerts_are_acknowledged_once_reminded_once_forgotten_and_pruned() {
                let store = $open(&$new("alerts"));
                $crate::state::contract::alerts_are_acknowledged_once_reminded_once_forgotten_and_pruned(&store);
            }

            #[test]
            fn stats_count_by_topic_level_and_acknowledgement_time() {
                $crate::state::contract::stats_count_by_topic_level_and_acknowledgement_time(&$open(&$new("stats")));
            }

            #[test]
            fn a_claim_is_held_until_dropped() {
                $crate::state::contract::a_claim_is_held_until_dropped(&$open(&$new("claims")));
            }
        };
    }
    pub(crate) use store_contract_tests;

    pub fn a_claim_is_held_until_dropped(store: &dyn Store) {
        let claim = store.claim("discord-1-shard-0").unwrap().expect("free");
        assert!(store.claim("discord-1-shard-0").unwrap().is_none(), "held");
        let other = store.claim("discord-1-shard-1").unwrap();
        assert!(other.is_some(), "another name is free");
        drop(claim);
        assert!(store.claim("discord-1-shard-0").unwrap().is_some(), "released");
    }

    fn alert<'a>(member: &'a str, created_at: i64) -> NewAlert<'a> {
        NewAlert {
            server: "s",
            channel: "c",
            message: "m",
            member,
            level: CrisisLevel::SelfRisk,
            category: Some(Category::Plan),
            created_at,
            alert_channel: "staff",
        }
    }

    pub fn settings_and_opt_outs_survive_reopening(open: &dyn Fn() -> Box<dyn Store>) {
        let store = open();
        assert_eq!(store.settings("s").unwrap(), ServerSettings::default());
        let settings = ServerSettings { region: Some("gb".into()), ..ServerSettings::default() };
        store.save_settings("s", &settings).unwrap();
        store.set_opted_out("ann", true, 1).unwrap();
        drop(store);
        let store = open();
        assert_eq!(store.settings("s").unwrap(), settings);
        assert!(store.opted_out("ann").unwrap() && !store.opted_out("bob").unwrap());
        store.set_opted_out("ann", false, 2).unwrap();
        assert!(!store.opted_out("ann").unwrap());
    }

    pub fn alerts_are_acknowledged_once_reminded_once_forgotten_and_pruned(store: &dyn Store) {
        let id = store.add_alert(&alert("ann", 100)).unwrap();
        let other = store.add_alert(&alert("bob", 200)).unwrap();
        let unanswered = || store.unanswered_alerts().unwrap().iter().map(|a| a.id).collect::<Vec<_>>();
        assert_eq!(unanswered(), [id, other]);
        store.mark_reminded(id, 160).unwrap();
        assert_eq!(unanswered(), [other], "one reminder");
        store.set_alert_message(other, "$event").unwrap();
        assert_eq!(store.alert_by_message("$event").unwrap().map(|a| a.id), Some(other));
        assert!(store.acknowledge(other, "mod", 260).unwrap());
        assert!(!store.acknowledge(other, "mod2", 270).unwrap(), "acknowledged once");
        assert!(unanswered().is_empty());
        assert_eq!(store.alert(other).unwrap().unwrap().acknowledged_by.as_deref(), Some("mod"));
        store.record_resources_sent("s", "ann", 120).unwrap();
        assert_eq!(store.last_resources_sent("s", "ann").unwrap(), Some(120));
        assert_eq!(store.last_resources_sent("other", "ann").unwrap(), None);
        store.set_opted_out("ann", true, 130).unwrap();
        store.forget("ann").unwrap();
        assert_eq!(store.alert(id).unwrap().unwrap().member, None);
        assert_eq!(store.last_resources_sent("s", "ann").unwrap(), None);
        assert!(!store.opted_out("ann").unwrap());
        assert_eq!(store.prune(200 + ALERT_RETENTION_SECONDS).unwrap(), 1, "only the older alert");
        assert!(store.alert(id).unwrap().is_none() && store.alert(other).unwrap().is_some());
    }

    pub fn stats_count_by_topic_level_and_acknowledgement_time(store: &dyn Store) {
        for (day, kind, key) in [(1, "faq", "dosing"), (2, "faq", "dosing"), (2, "faq", "legal"), (2, "crisis", "self")]
        {
            store.count(day, "s", kind, key).unwrap();
        }
        store.count(2, "s", "alert", "self").unwrap();
        store.count(40, "s", "faq", "legal").unwrap();
        let id = store.add_alert(&alert("ann", 1000)).unwrap();
        store.acknowledge(id, "mod", 1060).unwrap();
        let stats = store.stats("s", 0, 30, 0).unwrap();
        assert_eq!(stats.faq_by_topic, [("dosing".to_owned(), 2), ("legal".to_owned(), 1)]);
        assert_eq!(stats.crisis_by_level, [("self".to_owned(), 1)]);
        assert_eq!((stats.alerts, stats.median_ack_seconds), (1, Some(60)));
        assert_eq!(store.stats("other", 0, 30, 0).unwrap(), Stats::default());
    }
}
