//! The state in a PostgreSQL database, which several bot processes (on several machines) share: each process
//! keeps one connection and opens a new one when it drops. Migrations run in one transaction under an advisory
//! lock, so processes that start together migrate one after the other.
//!
//! TLS follows the URL's `sslmode` (`disable`, `prefer`, the default, or `require`), and the server's certificate
//! is always verified, host name included, against the system's certificate authorities (or `SSL_CERT_FILE`).

use std::sync::{Mutex, PoisonError};

use postgres::{Client, Config, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{stored_category, stored_level, Claim, SCHEMA};
use super::{AlertRecord, NewAlert, Stats, Store, StoreError, ALERT_RETENTION_SECONDS};
use crate::moderation::ServerSettings;

/// The advisory lock key under which the schema is migrated.
const MIGRATION_LOCK: i64 = 0x6b69_625f_7363_6865; // "kib_sche"

pub struct PostgresStore {
    config: Config,
    tls: MakeRustlsConnect,
    /// The database's host and name, for errors: never the URL, which may hold a password.
    database: String,
    client: Mutex<Option<Client>>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`) and brings its schema up
    /// to date.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let config: Config = url.parse().map_err(|source| StoreError::Unreachable {
            database: "from STATE_URL (not a postgres:// URL)".to_owned(),
            source: Box::new(source),
        })?;
        let database = describe(&config);
        let store = PostgresStore { config, tls: tls(), database, client: Mutex::new(None) };
        store.with(|db| {
            let known = SCHEMA.len() as i64;
            let mut transaction = db.transaction()?;
            transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            transaction.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
            let version: i64 =
                transaction.query_opt("SELECT version FROM schema_version", &[])?.map_or(0, |row| row.get(0));
            if version > known {
                return Err(StoreError::Newer { database: describe(&store.config), found: version, known });
            }
            for migration in &SCHEMA[version as usize..] {
                transaction.batch_execute(migration.postgres)?;
            }
            transaction.execute("DELETE FROM schema_version", &[])?;
            transaction.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&known])?;
            transaction.commit()?;
            Ok(())
        })?;
        Ok(store)
    }

    fn connect(&self) -> Result<Client, StoreError> {
        self.config
            .connect(self.tls.clone())
            .map_err(|source| StoreError::Unreachable { database: self.database.clone(), source: Box::new(source) })
    }

    /// Runs `work` on this process's connection, connecting first if there is none or it was lost.
    fn with<T: Send>(&self, work: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send) -> Result<T, StoreError> {
        off_runtime(|| {
            let mut client = self.client.lock().unwrap_or_else(PoisonError::into_inner);
            if client.as_ref().is_none_or(Client::is_closed) {
                *client = Some(self.connect()?);
            }
            work(client.as_mut().expect("connected above"))
        })
    }

    fn execute(&self, statement: &str, values: &[&(dyn postgres::types::ToSql + Sync)]) -> Result<u64, StoreError> {
        self.with(|db| Ok(db.execute(statement, values)?))
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        let client = self.client.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        off_runtime(move || drop(client));
    }
}

/// Runs `work` on a short-lived thread of its own. `postgres::Client` drives a runtime of its own (to connect,
/// query and close), which must not start on a thread of the bot's runtime; a thread costs tens of microseconds,
/// beside a database round trip.
fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(work).join().expect("a database call does not panic"))
}

impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> StoreError {
        StoreError::Database(Box::new(error))
    }
}

/// TLS that trusts the system's certificate authorities (`SSL_CERT_FILE` or `SSL_CERT_DIR` name others).
fn tls() -> MakeRustlsConnect {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the default protocol versions are supported")
        .with_root_certificates(roots)
        .with_no_client_auth();
    MakeRustlsConnect::new(config)
}

/// `host:port/database` from a connection config, without user or password.
fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("postgres://{host}:{port}/{}", config.get_dbname().unwrap_or_default())
}

fn alert_from_row(row: &Row) -> AlertRecord {
    AlertRecord {
        id: row.get("id"),
        server: row.get("server"),
        channel: row.get("channel"),
        message: row.get("message"),
        member: row.get("member"),
        level: stored_level(row.get("level")),
        category: stored_category(row.get("category")),
        created_at: row.get("created_at"),
        alert_channel: row.get("alert_channel"),
        alert_message: row.get("alert_message"),
        acknowledged_by: row.get("acknowledged_by"),
        acknowledged_at: row.get("acknowledged_at"),
        reminded_at: row.get("reminded_at"),
    }
}

impl Store for PostgresStore {
    fn settings(&self, server: &str) -> Result<ServerSettings, StoreError> {
        let text: Option<String> = self.with(|db| {
            Ok(db
                .query_opt("SELECT settings FROM server_settings WHERE server = $1", &[&server])?
                .map(|row| row.get(0)))
        })?;
        Ok(match text {
            Some(text) => serde_json::from_str(&text)?,
            None => ServerSettings::default(),
        })
    }

    fn save_settings(&self, server: &str, settings: &ServerSettings) -> Result<(), StoreError> {
        let text = serde_json::to_string(settings)?;
        self.execute(
            "INSERT INTO server_settings (server, settings) VALUES ($1, $2)
             ON CONFLICT (server) DO UPDATE SET settings = excluded.settings",
            &[&server, &text],
        )?;
        Ok(())
    }

    fn opted_out(&self, member: &str) -> Result<bool, StoreError> {
        self.with(|db| Ok(db.query_opt("SELECT 1 FROM opt_outs WHERE member = $1", &[&member])?.is_some()))
    }

    fn set_opted_out(&self, member: &str, opted_out: bool, now: i64) -> Result<(), StoreError> {
        match opted_out {
            true => self.execute(
                "INSERT INTO opt_outs (member, since) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&member, &now],
            )?,
            false => self.execute("DELETE FROM opt_outs WHERE member = $1", &[&member])?,
        };
        Ok(())
    }

    fn add_alert(&self, alert: &NewAlert<'_>) -> Result<i64, StoreError> {
        self.with(|db| {
            let row = db.query_one(
                "INSERT INTO alerts (server, channel, message, member, level, category, created_at, alert_channel)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    &alert.server,
                    &alert.channel,
                    &alert.message,
                    &alert.member,
                    &alert.level.as_str(),
                    &alert.category.map(|category| category.as_str()),
                    &alert.created_at,
                    &alert.alert_channel,
                ],
            )?;
            Ok(row.get(0))
        })
    }

    fn set_alert_message(&self, id: i64, alert_message: &str) -> Result<(), StoreError> {
        self.execute("UPDATE alerts SET alert_message = $2 WHERE id = $1", &[&id, &alert_message])?;
        Ok(())
    }

    fn alert(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        self.with(|db| Ok(db.query_opt("SELECT * FROM alerts WHERE id = $1", &[&id])?.as_ref().map(alert_from_row)))
    }

    fn alert_by_message(&self, alert_message: &str) -> Result<Option<AlertRecord>, StoreError> {
        self.with(|db| {
            let row = db.query_opt("SELECT * FROM alerts WHERE alert_message = $1", &[&alert_message])?;
            Ok(row.as_ref().map(alert_from_row))
        })
    }

    fn acknowledge(&self, id: i64, by: &str, at: i64) -> Result<bool, StoreError> {
        let changed = self.execute(
            "UPDATE alerts SET acknowledged_by = $2, acknowledged_at = $3 WHERE id = $1 AND acknowledged_at IS NULL",
            &[&id, &by, &at],
        )?;
        Ok(changed == 1)
    }

    fn unanswered_alerts(&self) -> Result<Vec<AlertRecord>, StoreError> {
        self.with(|db| {
            let rows = db
                .query("SELECT * FROM alerts WHERE acknowledged_at IS NULL AND reminded_at IS NULL ORDER BY id", &[])?;
            Ok(rows.iter().map(alert_from_row).collect())
        })
    }

    fn mark_reminded(&self, id: i64, at: i64) -> Result<(), StoreError> {
        self.execute("UPDATE alerts SET reminded_at = $2 WHERE id = $1", &[&id, &at])?;
        Ok(())
    }

    fn last_resources_sent(&self, server: &str, member: &str) -> Result<Option<i64>, StoreError> {
        self.with(|db| {
            let row = db.query_one(
                "SELECT MAX(sent_at) FROM resources_sent WHERE server = $1 AND member = $2",
                &[&server, &member],
            )?;
            Ok(row.get(0))
        })
    }

    fn record_resources_sent(&self, server: &str, member: &str, at: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO resources_sent (server, member, sent_at) VALUES ($1, $2, $3)",
            &[&server, &member, &at],
        )?;
        Ok(())
    }

    fn count(&self, day: i64, server: &str, kind: &str, key: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO daily_counts (day, server, kind, key, count) VALUES ($1, $2, $3, $4, 1)
             ON CONFLICT (day, server, kind, key) DO UPDATE SET count = daily_counts.count + 1",
            &[&day, &server, &kind, &key],
        )?;
        Ok(())
    }

    fn stats(&self, server: &str, from_day: i64, to_day: i64, since: i64) -> Result<Stats, StoreError> {
        self.with(|db| {
            let mut sums = |kind: &str| -> Result<Vec<(String, i64)>, postgres::Error> {
                let rows = db.query(
                    "SELECT key, SUM(count)::BIGINT FROM daily_counts
                     WHERE server = $1 AND kind = $2 AND day BETWEEN $3 AND $4
                     GROUP BY key ORDER BY SUM(count) DESC, key",
                    &[&server, &kind, &from_day, &to_day],
                )?;
                Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
            };
            let (faq_by_topic, crisis_by_level) = (sums("faq")?, sums("crisis")?);
            let alerts = sums("alert")?.iter().map(|(_, count)| count).sum();
            let waits: Vec<i64> = db
                .query(
                    "SELECT acknowledged_at - created_at FROM alerts WHERE server = $1 AND created_at >= $2
                     AND acknowledged_at IS NOT NULL ORDER BY 1",
                    &[&server, &since],
                )?
                .iter()
                .map(|row| row.get(0))
                .collect();
            Ok(Stats {
                faq_by_topic,
                crisis_by_level,
                alerts,
                median_ack_seconds: waits.get(waits.len() / 2).copied().filter(|_| !waits.is_empty()),
            })
        })
    }

    fn forget(&self, member: &str) -> Result<(), StoreError> {
        self.with(|db| {
            let mut transaction = db.transaction()?;
            transaction.execute("DELETE FROM opt_outs WHERE member = $1", &[&member])?;
            transaction.execute("DELETE FROM resources_sent WHERE member = $1", &[&member])?;
            transaction.execute("UPDATE alerts SET member = NULL WHERE member = $1", &[&member])?;
            Ok(transaction.commit()?)
        })
    }

    fn prune(&self, now: i64) -> Result<usize, StoreError> {
        let cutoff = now - ALERT_RETENTION_SECONDS;
        self.execute("DELETE FROM resources_sent WHERE sent_at < $1", &[&cutoff])?;
        Ok(self.execute("DELETE FROM alerts WHERE created_at < $1", &[&cutoff])? as usize)
    }

    /// A session advisory lock on a connection of its own, which holds it until the claim is dropped (or the
    /// process dies and the server closes the connection).
    fn claim(&self, name: &str) -> Result<Option<Claim>, StoreError> {
        off_runtime(|| {
            let mut holder = self.connect()?;
            let row = holder.query_one("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", &[&name])?;
            Ok(row.get::<_, bool>(0).then(|| Claim::new(ClaimConnection(Some(holder)))))
        })
    }
}

/// The connection that holds a claim; closed off the bot's runtime, like every `postgres::Client`.
struct ClaimConnection(Option<Client>);

impl Drop for ClaimConnection {
    fn drop(&mut self) {
        let client = self.0.take();
        off_runtime(move || drop(client));
    }
}

/// The end-to-end tests' PostgreSQL harness, shared with these unit tests.
#[cfg(test)]
#[path = "../../tests/support/postgres.rs"]
mod test_server;

#[cfg(test)]
mod tests {
    use super::*;

    /// A new, empty database on the test PostgreSQL server, which the harness starts (and installs) itself.
    fn fresh(name: &str) -> String {
        super::test_server::database(name)
    }

    super::super::contract::store_contract_tests!(fresh, |url: &String| PostgresStore::open(url).unwrap());

    #[test]
    fn processes_starting_together_migrate_once_and_a_newer_schema_is_refused() {
        let url = fresh("migrate");
        let starts: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn({
                    let url = url.clone();
                    move || PostgresStore::open(&url).map(|_| ())
                })
            })
            .collect();
        for start in starts {
            start.join().unwrap().expect("every process starts");
        }
        let store = PostgresStore::open(&url).unwrap();
        let version: i64 =
            store.with(|db| Ok(db.query_one("SELECT version FROM schema_version", &[])?.get(0))).unwrap();
        assert_eq!(version, SCHEMA.len() as i64);
        store.execute("UPDATE schema_version SET version = 99", &[]).unwrap();
        let error = PostgresStore::open(&url).err().expect("refused");
        assert!(error.to_string().contains("schema version 99"), "{error}");
        assert!(!error.to_string().contains("password"), "{error}");
    }

    #[test]
    fn a_server_whose_certificate_is_not_trusted_is_refused_not_used_in_plain_text() {
        let (url, _authority) = super::test_server::database_over_tls("untrusted");
        let error = PostgresStore::open(&url).err().expect("refused");
        assert!(matches!(error, StoreError::Unreachable { .. }), "{error}");
    }

    #[test]
    fn an_unreachable_server_is_a_clear_error_without_the_password() {
        let error = PostgresStore::open("postgres://bot:hunter2@127.0.0.1:1/state").err().expect("refused");
        let text = error.to_string();
        assert!(text.contains("127.0.0.1:1/state") && !text.contains("hunter2"), "{text}");
    }
}
