//! The state in one SQLite file, in WAL mode, migrated after a backup copy of the file.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{lock_file, stored_category, stored_level, Claim};
use super::{AlertRecord, NewAlert, Stats, Store, StoreError, ALERT_RETENTION_SECONDS, SCHEMA};
use crate::moderation::ServerSettings;

/// The state in one SQLite file.
pub struct SqliteStore {
    connection: Mutex<Connection>,
    path: PathBuf,
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
            _ => StoreError::Corrupted { path: path.to_owned(), source: Box::new(error) },
        };
        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(refused)?;
        let known = SCHEMA.len() as i64;
        if version > known {
            return Err(StoreError::Newer { database: path.display().to_string(), found: version, known });
        }
        if existed && version < known && version > 0 {
            let backup = PathBuf::from(format!("{}.v{version}.bak", path.display()));
            std::fs::copy(path, &backup).map_err(|source| StoreError::Backup { path: path.to_owned(), source })?;
        }
        let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(refused)?;
        debug_assert_eq!(mode, "wal");
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(refused)?;
        for (from, migration) in SCHEMA.iter().enumerate().skip(version as usize) {
            transaction.execute_batch(migration.sqlite)?;
            transaction.pragma_update(None, "user_version", from as i64 + 1)?;
        }
        transaction.commit()?;
        Ok(SqliteStore { connection: Mutex::new(connection), path: path.to_owned() })
    }

    fn with<T>(&self, work: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        Ok(work(&self.connection.lock().expect("not poisoned"))?)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError::Database(Box::new(error))
    }
}

fn alert_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRecord> {
    Ok(AlertRecord {
        id: row.get("id")?,
        server: row.get("server")?,
        channel: row.get("channel")?,
        message: row.get("message")?,
        member: row.get("member")?,
        level: stored_level(row.get("level")?),
        category: stored_category(row.get("category")?),
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

    /// A lock file beside the database: `<database>.<name>.lock`.
    fn claim(&self, name: &str) -> Result<Option<Claim>, StoreError> {
        let path = PathBuf::from(format!("{}.{name}.lock", self.path.display()));
        match lock_file(&path) {
            Ok(held) => Ok(held.map(Claim::new)),
            Err(source) => Err(StoreError::Claim { path, source }),
        }
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

    super::super::contract::store_contract_tests!(scratch, |path: &PathBuf| SqliteStore::open(path).unwrap());

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
        for version in 0..SCHEMA.len() {
            let path = scratch(&format!("migrate-{version}"));
            let old = Connection::open(&path).unwrap();
            for migration in &SCHEMA[..version] {
                old.execute_batch(migration.sqlite).unwrap();
            }
            old.pragma_update(None, "user_version", version as i64).unwrap();
            drop(old);
            let store = SqliteStore::open(&path).unwrap();
            let latest: i64 = store.with(|db| db.query_row("PRAGMA user_version", [], |row| row.get(0))).unwrap();
            assert_eq!(latest, SCHEMA.len() as i64, "from version {version}");
            store.save_settings("s", &ServerSettings::default()).unwrap();
            let backup = PathBuf::from(format!("{}.v{version}.bak", path.display()));
            assert_eq!(backup.exists(), version > 0, "a backup of every database that had a schema");
        }
    }
}
