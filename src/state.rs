//! What the bot keeps between restarts: each server's moderator settings, members' opt-outs, staff alerts and
//! daily counts. Never message text: alerts hold ids, the crisis level and the detector's category.
//!
//! [`Store`] is what the adapters use; [`SqliteStore`] keeps it in one SQLite file (WAL mode), with the schema's
//! migrations embedded and applied at start, after a backup copy of the file. A database that is locked by
//! another process, corrupted, or from a newer version of the bot is a clear error, and the file is left as it is.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::moderation::ServerSettings;
use crate::safety::{Category, CrisisLevel};

/// The schema, one step per version: `MIGRATIONS[n]` takes a database from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: settings, opt-outs, alerts, daily counts.
    "CREATE TABLE server_settings (server TEXT PRIMARY KEY, settings TEXT NOT NULL);
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
];

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

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the state database {path} is in use by another process (locked); stop it, or give this one --state")]
    Locked { path: PathBuf },
    #[error("the state database {path} is not a database this bot can read (corrupted?); it was left untouched")]
    Corrupted { path: PathBuf, source: rusqlite::Error },
    #[error(
        "the state database {path} has schema version {found}, newer than this bot knows ({known}); run the newer \
         bot, or restore a backup"
    )]
    Newer { path: PathBuf, found: i64, known: i64 },
    #[error("cannot back up the state database {path} before migrating it")]
    Backup { path: PathBuf, source: std::io::Error },
    #[error("the state database")]
    Sqlite(#[from] rusqlite::Error),
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
}

/// The state in one SQLite file.
pub struct SqliteStore {
    connection: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` and brings its schema up to date, after copying the file to
    /// `<path>.v<N>.bak` when there is something to migrate.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let existed = path.exists();
        let mut connection = Connection::open(path)?;
        // Until the schema is known to be ours, a failure means another process holds the file, or it is not a
        // database this bot can read.
        let refused = |error: rusqlite::Error| match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Locked { path: path.to_owned() }
            }
            _ => StoreError::Corrupted { path: path.to_owned(), source: error },
        };
        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(refused)?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::Newer { path: path.to_owned(), found: version, known });
        }
        if existed && version < known && version > 0 {
            let backup = PathBuf::from(format!("{}.v{version}.bak", path.display()));
            std::fs::copy(path, &backup).map_err(|source| StoreError::Backup { path: path.to_owned(), source })?;
        }
        let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(refused)?;
        debug_assert_eq!(mode, "wal");
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(refused)?;
        for (from, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            transaction.execute_batch(migration)?;
            transaction.pragma_update(None, "user_version", from as i64 + 1)?;
        }
        transaction.commit()?;
        Ok(SqliteStore { connection: Mutex::new(connection) })
    }

    fn with<T>(&self, work: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        Ok(work(&self.connection.lock().expect("not poisoned"))?)
    }
}

fn alert_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRecord> {
    let level: String = row.get("level")?;
    let category: Option<String> = row.get("category")?;
    Ok(AlertRecord {
        id: row.get("id")?,
        server: row.get("server")?,
        channel: row.get("channel")?,
        message: row.get("message")?,
        member: row.get("member")?,
        level: serde_json::from_value(serde_json::Value::String(level)).unwrap_or(CrisisLevel::SelfRisk),
        category: category.and_then(|category| serde_json::from_value(serde_json::Value::String(category)).ok()),
        created_at: row.get("created_at")?,
        alert_channel: row.get("alert_channel")?,
        alert_message: row.get("alert_message")?,
        acknowledged_by: row.get("acknowledged_by")?,
        acknowledged_at: row.get("acknowledged_at")?,
        reminded_at: row.get("reminded_at")?,
    })
}

impl Store for SqliteStore {
    fn settings(&self, server: &str) -> Result<ServerSettings, StoreError> {
        let text: Option<String> = self.with(|db| {
            db.query_row("SELECT settings FROM server_settings WHERE server = ?1", [server], |row| row.get(0))
                .optional()
        })?;
        Ok(match text {
            Some(text) => serde_json::from_str(&text)?,
            None => ServerSettings::default(),
        })
    }

    fn save_settings(&self, server: &str, settings: &ServerSettings) -> Result<(), StoreError> {
        let text = serde_json::to_string(settings)?;
        self.with(|db| {
            db.execute(
                "INSERT INTO server_settings (server, settings) VALUES (?1, ?2)
                 ON CONFLICT (server) DO UPDATE SET settings = excluded.settings",
                params![server, text],
            )
        })?;
        Ok(())
    }

    fn opted_out(&self, member: &str) -> Result<bool, StoreError> {
        self.with(|db| {
            db.query_row("SELECT 1 FROM opt_outs WHERE member = ?1", [member], |_| Ok(()))
                .optional()
                .map(|found| found.is_some())
        })
    }

    fn set_opted_out(&self, member: &str, opted_out: bool, now: i64) -> Result<(), StoreError> {
        self.with(|db| match opted_out {
            true => db.execute("INSERT OR IGNORE INTO opt_outs (member, since) VALUES (?1, ?2)", params![member, now]),
            false => db.execute("DELETE FROM opt_outs WHERE member = ?1", [member]),
        })?;
        Ok(())
    }

    fn add_alert(&self, alert: &NewAlert<'_>) -> Result<i64, StoreError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO alerts (server, channel, message, member, level, category, created_at, alert_channel)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    alert.server,
                    alert.channel,
                    alert.message,
                    alert.member,
                    alert.level.as_str(),
                    alert.category.map(|category| category.as_str()),
                    alert.created_at,
                    alert.alert_channel
                ],
            )?;
            Ok(db.last_insert_rowid())
        })
    }

    fn set_alert_message(&self, id: i64, alert_message: &str) -> Result<(), StoreError> {
        self.with(|db| db.execute("UPDATE alerts SET alert_message = ?2 WHERE id = ?1", params![id, alert_message]))?;
        Ok(())
    }

    fn alert(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        self.with(|db| db.query_row("SELECT * FROM alerts WHERE id = ?1", [id], alert_from_row).optional())
    }

    fn alert_by_message(&self, alert_message: &str) -> Result<Option<AlertRecord>, StoreError> {
        self.with(|db| {
            db.query_row("SELECT * FROM alerts WHERE alert_message = ?1", [alert_message], alert_from_row).optional()
        })
    }

    fn acknowledge(&self, id: i64, by: &str, at: i64) -> Result<bool, StoreError> {
        let changed = self.with(|db| {
            db.execute(
                "UPDATE alerts SET acknowledged_by = ?2, acknowledged_at = ?3 WHERE id = ?1 AND acknowledged_at IS NULL",
                params![id, by, at],
            )
        })?;
        Ok(changed == 1)
    }

    fn unanswered_alerts(&self) -> Result<Vec<AlertRecord>, StoreError> {
        self.with(|db| {
            let mut statement =
                db.prepare("SELECT * FROM alerts WHERE acknowledged_at IS NULL AND reminded_at IS NULL ORDER BY id")?;
            let rows = statement.query_map([], alert_from_row)?;
            rows.collect()
        })
    }

    fn mark_reminded(&self, id: i64, at: i64) -> Result<(), StoreError> {
        self.with(|db| db.execute("UPDATE alerts SET reminded_at = ?2 WHERE id = ?1", params![id, at]))?;
        Ok(())
    }

    fn last_resources_sent(&self, server: &str, member: &str) -> Result<Option<i64>, StoreError> {
        self.with(|db| {
            db.query_row(
                "SELECT MAX(sent_at) FROM resources_sent WHERE server = ?1 AND member = ?2",
                params![server, member],
                |row| row.get(0),
            )
        })
    }

    fn record_resources_sent(&self, server: &str, member: &str, at: i64) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO resources_sent (server, member, sent_at) VALUES (?1, ?2, ?3)",
                params![server, member, at],
            )
        })?;
        Ok(())
    }

    fn count(&self, day: i64, server: &str, kind: &str, key: &str) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO daily_counts (day, server, kind, key, count) VALUES (?1, ?2, ?3, ?4, 1)
                 ON CONFLICT (day, server, kind, key) DO UPDATE SET count = count + 1",
                params![day, server, kind, key],
            )
        })?;
        Ok(())
    }

    fn stats(&self, server: &str, from_day: i64, to_day: i64, since: i64) -> Result<Stats, StoreError> {
        self.with(|db| {
            let sums = |kind: &str| -> rusqlite::Result<Vec<(String, i64)>> {
                let mut statement = db.prepare(
                    "SELECT key, SUM(count) FROM daily_counts WHERE server = ?1 AND kind = ?2 AND day BETWEEN ?3 AND ?4
                     GROUP BY key ORDER BY SUM(count) DESC, key",
                )?;
                let rows = statement
                    .query_map(params![server, kind, from_day, to_day], |row| Ok((row.get(0)?, row.get(1)?)))?;
                rows.collect()
            };
            let alerts = sums("alert")?.iter().map(|(_, count)| count).sum();
            let mut statement = db.prepare(
                "SELECT acknowledged_at - created_at FROM alerts WHERE server = ?1 AND created_at >= ?2
                 AND acknowledged_at IS NOT NULL ORDER BY 1",
            )?;
            let waits: Vec<i64> =
                statement.query_map(params![server, since], |row| row.get(0))?.collect::<Result<_, _>>()?;
            Ok(Stats {
                faq_by_topic: sums("faq")?,
                crisis_by_level: sums("crisis")?,
                alerts,
                median_ack_seconds: waits.get(waits.len() / 2).copied().filter(|_| !waits.is_empty()),
            })
        })
    }

    fn forget(&self, member: &str) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute("DELETE FROM opt_outs WHERE member = ?1", [member])?;
            db.execute("DELETE FROM resources_sent WHERE member = ?1", [member])?;
            db.execute("UPDATE alerts SET member = NULL WHERE member = ?1", [member])
        })?;
        Ok(())
    }

    fn prune(&self, now: i64) -> Result<usize, StoreError> {
        self.with(|db| {
            let cutoff = now - ALERT_RETENTION_SECONDS;
            db.execute("DELETE FROM resources_sent WHERE sent_at < ?1", [cutoff])?;
            db.execute("DELETE FROM alerts WHERE created_at < ?1", [cutoff])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kib-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("state.db")
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

    #[test]
    fn settings_and_opt_outs_survive_reopening() {
        let path = scratch("reopen");
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.settings("s").unwrap(), ServerSettings::default());
        let settings = ServerSettings { region: Some("gb".into()), ..ServerSettings::default() };
        store.save_settings("s", &settings).unwrap();
        store.set_opted_out("ann", true, 1).unwrap();
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.settings("s").unwrap(), settings);
        assert!(store.opted_out("ann").unwrap() && !store.opted_out("bob").unwrap());
        store.set_opted_out("ann", false, 2).unwrap();
        assert!(!store.opted_out("ann").unwrap());
    }

    #[test]
    fn alerts_are_acknowledged_once_reminded_once_forgotten_and_pruned() {
        let store = SqliteStore::open(&scratch("alerts")).unwrap();
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

    #[test]
    fn stats_count_by_topic_level_and_acknowledgement_time() {
        let store = SqliteStore::open(&scratch("stats")).unwrap();
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

    #[test]
    fn a_corrupted_or_newer_database_is_refused_and_left_untouched() {
        let path = scratch("corrupt");
        std::fs::write(&path, b"this is not a database, it is a text file of some length ........").unwrap();
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(SqliteStore::open(&path), Err(StoreError::Corrupted { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), before);

        let path = scratch("newer");
        Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
        let error = SqliteStore::open(&path).err().expect("refused");
        assert!(error.to_string().contains("schema version 99"), "{error}");
    }

    #[test]
    fn a_locked_database_is_a_clear_error() {
        let path = scratch("locked");
        drop(SqliteStore::open(&path).unwrap());
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let error = SqliteStore::open(&path).err().expect("refused");
        assert!(matches!(error, StoreError::Locked { .. }), "{error}");
    }

    #[test]
    fn every_earlier_schema_is_backed_up_then_migrated() {
        for version in 0..MIGRATIONS.len() {
            let path = scratch(&format!("migrate-{version}"));
            let old = Connection::open(&path).unwrap();
            for migration in &MIGRATIONS[..version] {
                old.execute_batch(migration).unwrap();
            }
            old.pragma_update(None, "user_version", version as i64).unwrap();
            drop(old);
            let store = SqliteStore::open(&path).unwrap();
            let latest: i64 = store.with(|db| db.query_row("PRAGMA user_version", [], |row| row.get(0))).unwrap();
            assert_eq!(latest, MIGRATIONS.len() as i64, "from version {version}");
            store.save_settings("s", &ServerSettings::default()).unwrap();
            let backup = PathBuf::from(format!("{}.v{version}.bak", path.display()));
            assert_eq!(backup.exists(), version > 0, "a backup of every database that had a schema");
        }
    }
}
