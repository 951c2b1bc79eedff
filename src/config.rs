//! Operator settings: an optional config file (`--config bot.toml`), overridden by the environment.
//! Secrets come from the environment or from a file named there, never from the command line, and a
//! [`Secret`] prints as `<redacted>` wherever it is formatted.

use std::fmt;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// A token or password. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one call that sends it to the platform.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}:{line}:{column}: {message}")]
    File { file: String, line: usize, column: usize, message: String },
    #[error("{name} is not set (nor {name}_FILE): {why}")]
    Missing { name: &'static str, why: &'static str },
    #[error("cannot read the file named by {name}: {path}: {source}")]
    SecretFile { name: String, path: PathBuf, source: std::io::Error },
    #[error("{name}={value:?}: {problem}")]
    Invalid { name: &'static str, value: String, problem: &'static str },
}

/// The config file. Every section and key is optional; unknown keys are errors, so typos are caught.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub discord: DiscordFile,
    #[serde(default)]
    pub matrix: MatrixFile,
    #[serde(default)]
    pub cooldowns: CooldownFile,
    #[serde(default)]
    pub state: StateFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    pub path: Option<PathBuf>,
    /// A file holding a PostgreSQL URL (which may carry a password, so never the URL itself).
    pub url_file: Option<PathBuf>,
}

/// Where the state database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// A SQLite file, for one process.
    File(PathBuf),
    /// A PostgreSQL database (a `postgres://` URL, maybe with a password) that several processes share.
    Postgres(Secret),
}

/// `--state PATH`; else a PostgreSQL URL from `STATE_URL`, `STATE_URL_FILE` or the file's `[state] url_file`;
/// else a path from `STATE_PATH` or the file's `[state] path`; else `./ketamine-info-bot.db`.
pub fn state_location(
    file: &ConfigFile,
    env: &impl Environment,
    flag: Option<PathBuf>,
) -> Result<StateLocation, ConfigError> {
    if let Some(path) = flag {
        return Ok(StateLocation::File(path));
    }
    if let Some(url) = secret(env, "STATE_URL", file.state.url_file.as_ref())? {
        if !["postgres://", "postgresql://"].iter().any(|scheme| url.expose().starts_with(scheme)) {
            return Err(ConfigError::Invalid {
                name: "STATE_URL",
                value: url.to_string(),
                problem: "expected postgres://user:password@host:port/database",
            });
        }
        return Ok(StateLocation::Postgres(url));
    }
    let path = env.get("STATE_PATH").map(PathBuf::from).or_else(|| file.state.path.clone());
    Ok(StateLocation::File(path.unwrap_or_else(|| PathBuf::from("ketamine-info-bot.db"))))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordFile {
    pub token_file: Option<PathBuf>,
    pub guild_id: Option<NonZeroU64>,
    pub api_url: Option<HttpUrl>,
    pub commands_only: Option<bool>,
    /// The shards this process runs, `"0-3"` or `"2"`, of `total_shards`.
    pub shards: Option<String>,
    pub total_shards: Option<u32>,
}

/// The Discord shards this process runs: `first..=last` of `total`. Discord sends a server's events to shard
/// `(server id >> 22) % total`, so processes with disjoint ranges share one bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shards {
    pub first: u32,
    pub last: u32,
    pub total: u32,
}

impl Shards {
    /// One process, one shard: every server.
    pub const ALL: Shards = Shards { first: 0, last: 0, total: 1 };

    /// From a range (`"0-3"`, or `"2"` for one shard) and the total; every shard when only the total is given.
    pub fn parse(range: Option<&str>, total: u32) -> Result<Shards, &'static str> {
        let number =
            |text: &str| text.trim().parse::<u32>().map_err(|_| "expected a shard number or a range such as 0-3");
        let (first, last) = match range.map(|range| range.split_once('-').unwrap_or((range, range))) {
            Some((first, last)) => (number(first)?, number(last)?),
            None => (0, total.saturating_sub(1)),
        };
        match () {
            _ if total == 0 => Err("the total number of shards must be at least 1"),
            _ if first > last => Err("the range's first shard comes after its last"),
            _ if last >= total => Err("shards are numbered from 0 to the total number of shards minus 1"),
            _ => Ok(Shards { first, last, total }),
        }
    }

    pub fn ids(self) -> std::ops::RangeInclusive<u32> {
        self.first..=self.last
    }

    /// Whether the server's events come to this process.
    pub fn has_guild(self, guild: u64) -> bool {
        self.ids().contains(&((guild >> 22) % u64::from(self.total)).try_into().unwrap_or(u32::MAX))
    }
}

impl fmt::Display for Shards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{} of {}", self.first, self.last, self.total)
    }
}

/// What the command line says for Discord; each flag overrides the environment and the file.
#[derive(Debug, Default)]
pub struct DiscordFlags {
    pub api_url: Option<HttpUrl>,
    pub commands_only: bool,
    pub shards: Option<String>,
    pub total_shards: Option<u32>,
    pub state: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixFile {
    pub homeserver: Option<HttpUrl>,
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    pub access_token_file: Option<PathBuf>,
    pub store: Option<PathBuf>,
    pub allowed_inviters: Option<Vec<String>>,
    pub locale: Option<String>,
    pub store_passphrase_file: Option<PathBuf>,
    pub catch_up_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CooldownFile {
    pub faq_seconds: Option<u64>,
    pub crisis_seconds: Option<u64>,
}

/// An `http` or `https` URL with a host, checked when it is read rather than when it is first used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(String);

impl HttpUrl {
    pub fn parse(value: &str) -> Result<HttpUrl, &'static str> {
        let rest = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://"));
        let host = rest.map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
        match host {
            Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(HttpUrl(value.to_owned())),
            _ => Err("expected an http:// or https:// URL with a host"),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<HttpUrl, D::Error> {
        let value = String::deserialize(deserializer)?;
        HttpUrl::parse(&value).map_err(serde::de::Error::custom)
    }
}

impl ConfigFile {
    /// Parses and checks the file: unknown keys, values of the wrong type and values that could only fail later
    /// (a server id of 0, a URL that is not one) are errors naming the line and column.
    pub fn parse(file: &str, text: &str) -> Result<ConfigFile, ConfigError> {
        toml::from_str(text).map_err(|error| {
            let start = error.span().map_or(0, |span| span.start);
            let line = text[..start].matches('\n').count() + 1;
            let column = text[..start].rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            ConfigError::File { file: file.to_owned(), line, column, message: error.message().trim().to_owned() }
        })
    }
}

/// How the environment is read: `std::env::var` in the binary, a map in tests.
pub trait Environment {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Environment for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name).filter(|value| !value.is_empty())
    }
}

/// Reads a secret from `NAME`, else from the file named by `NAME_FILE`, else from `file_fallback`.
/// Surrounding white space (a trailing newline in a secrets file) is dropped.
pub fn secret(
    env: &impl Environment,
    name: &str,
    file_fallback: Option<&PathBuf>,
) -> Result<Option<Secret>, ConfigError> {
    if let Some(value) = env.get(name) {
        return Ok(Some(Secret::new(value.trim())));
    }
    let file_variable = format!("{name}_FILE");
    let path = match env.get(&file_variable) {
        Some(path) => PathBuf::from(path),
        None => match file_fallback {
            Some(path) => path.clone(),
            None => return Ok(None),
        },
    };
    let value = std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
        name: file_variable,
        path: path.clone(),
        source,
    })?;
    Ok(Some(Secret::new(value.trim())))
}

/// Everything the Discord adapter needs to run.
#[derive(Debug)]
pub struct DiscordSettings {
    pub token: Secret,
    /// Register commands to this server only (instant, for testing); otherwise globally.
    pub guild_id: Option<NonZeroU64>,
    /// Send every REST call to this proxy, which then owns rate limiting.
    pub api_url: Option<HttpUrl>,
    /// Run without the Message Content intent: slash commands only, no chat replies.
    pub commands_only: bool,
    pub shards: Shards,
    /// The state database (moderator settings, opt-outs, alerts), which also keeps a second copy with the same
    /// token (and shards) from starting.
    pub state: StateLocation,
    /// The time staff alerts and reminders go by; tests move it forward.
    pub clock: crate::state::Clock,
}

impl DiscordSettings {
    /// File values, overridden by the environment, overridden by command-line flags.
    pub fn resolve(
        file: &ConfigFile,
        env: &impl Environment,
        flags: DiscordFlags,
    ) -> Result<DiscordSettings, ConfigError> {
        let token = secret(env, "DISCORD_TOKEN", file.discord.token_file.as_ref())?.ok_or(ConfigError::Missing {
            name: "DISCORD_TOKEN",
            why: "the Discord adapter needs the bot token (run `console` to try the bot without one)",
        })?;
        let guild_id = match env.get("DISCORD_GUILD_ID") {
            Some(value) => Some(value.parse().map_err(|_| ConfigError::Invalid {
                name: "DISCORD_GUILD_ID",
                value,
                problem: "expected a server id (a number above 0)",
            })?),
            None => file.discord.guild_id,
        };
        let api_url = match flags.api_url {
            Some(url) => Some(url),
            None => url_from_env(env, "DISCORD_API_URL")?.or_else(|| file.discord.api_url.clone()),
        };
        let range = flags.shards.or_else(|| env.get("DISCORD_SHARDS")).or_else(|| file.discord.shards.clone());
        let total = match (flags.total_shards, env.get("DISCORD_TOTAL_SHARDS")) {
            (Some(total), _) => Some(total),
            (None, Some(value)) => Some(value.parse().map_err(|_| ConfigError::Invalid {
                name: "DISCORD_TOTAL_SHARDS",
                value,
                problem: "expected a number of shards",
            })?),
            (None, None) => file.discord.total_shards,
        };
        let shards =
            match (total, range) {
                (None, None) => Shards::ALL,
                (None, Some(_)) => {
                    return Err(ConfigError::Missing {
                        name: "DISCORD_TOTAL_SHARDS",
                        why: "a shard range needs the total number of shards across all processes (--total-shards)",
                    })
                }
                (Some(total), range) => Shards::parse(range.as_deref(), total).map_err(|problem| {
                    ConfigError::Invalid { name: "DISCORD_SHARDS", value: range.unwrap_or_default(), problem }
                })?,
            };
        Ok(DiscordSettings {
            token,
            guild_id,
            api_url,
            commands_only: flags.commands_only || file.discord.commands_only.unwrap_or(false),
            shards,
            state: state_location(file, env, flags.state)?,
            clock: crate::state::Clock::default(),
        })
    }
}

/// A URL from the environment, checked like one from the file.
fn url_from_env(env: &impl Environment, name: &'static str) -> Result<Option<HttpUrl>, ConfigError> {
    env.get(name)
        .map(|value| HttpUrl::parse(&value).map_err(|problem| ConfigError::Invalid { name, value, problem }))
        .transpose()
}

/// How the Matrix bot account signs in.
#[derive(Debug, Clone)]
pub enum MatrixAuth {
    Password(Secret),
    AccessToken(Secret),
}

/// Everything the Matrix adapter needs to run.
#[derive(Debug, Clone)]
pub struct MatrixSettings {
    /// The homeserver's URL, such as `https://matrix.example.org`.
    pub homeserver: String,
    /// The bot's full user id, such as `@ketamine-info:example.org`.
    pub user: String,
    pub auth: MatrixAuth,
    /// Folder for the saved session and the encryption store.
    pub store: PathBuf,
    /// Who may invite the bot (globs such as `@*:example.org`); empty means anyone.
    pub allowed_inviters: Vec<String>,
    /// The locale whose crisis lines the bot shows (Matrix does not say where members are).
    pub locale: Option<String>,
    /// Encrypts the crypto store; when unset, one is generated on the first start and kept in the session file.
    pub store_passphrase: Option<Secret>,
    /// After a restart, messages that arrived while the bot was down are answered if younger than this.
    pub catch_up: Duration,
    /// The state database (moderator settings, opt-outs, alerts).
    pub state: StateLocation,
    /// The time staff alerts and reminders go by; tests move it forward.
    pub clock: crate::state::Clock,
}

impl MatrixSettings {
    pub const DEFAULT_CATCH_UP: Duration = Duration::from_secs(5 * 60);
}

impl MatrixSettings {
    /// File values, overridden by the environment.
    pub fn resolve(
        file: &ConfigFile,
        env: &impl Environment,
        state_flag: Option<PathBuf>,
    ) -> Result<MatrixSettings, ConfigError> {
        let matrix = &file.matrix;
        let required = |name: &'static str, from_file: &Option<String>, why: &'static str| {
            env.get(name).or_else(|| from_file.clone()).ok_or(ConfigError::Missing { name, why })
        };
        let homeserver = url_from_env(env, "MATRIX_HOMESERVER")?
            .or_else(|| matrix.homeserver.clone())
            .ok_or(ConfigError::Missing { name: "MATRIX_HOMESERVER", why: "the homeserver's URL" })?
            .0;
        let user = required("MATRIX_USER", &matrix.user, "the bot's full user id, such as @bot:example.org")?;
        if !(user.starts_with('@') && user.contains(':')) {
            return Err(ConfigError::Invalid { name: "MATRIX_USER", value: user, problem: "expected @name:server" });
        }
        let auth = match secret(env, "MATRIX_ACCESS_TOKEN", matrix.access_token_file.as_ref())? {
            Some(token) => MatrixAuth::AccessToken(token),
            None => MatrixAuth::Password(secret(env, "MATRIX_PASSWORD", matrix.password_file.as_ref())?.ok_or(
                ConfigError::Missing {
                    name: "MATRIX_PASSWORD",
                    why: "set it or MATRIX_ACCESS_TOKEN for the bot account",
                },
            )?),
        };
        let store = env.get("MATRIX_STORE").map(PathBuf::from).or_else(|| matrix.store.clone());
        let allowed_inviters = match env.get("MATRIX_ALLOWED_INVITERS") {
            Some(list) => list.split(',').map(|glob| glob.trim().to_owned()).filter(|g| !g.is_empty()).collect(),
            None => matrix.allowed_inviters.clone().unwrap_or_default(),
        };
        Ok(MatrixSettings {
            homeserver,
            user,
            auth,
            store: store.unwrap_or_else(|| PathBuf::from("matrix-store")),
            allowed_inviters,
            locale: env.get("MATRIX_LOCALE").or_else(|| matrix.locale.clone()),
            store_passphrase: secret(env, "MATRIX_STORE_PASSPHRASE", matrix.store_passphrase_file.as_ref())?,
            catch_up: seconds(env, "MATRIX_CATCH_UP_SECONDS", matrix.catch_up_seconds, Self::DEFAULT_CATCH_UP)?,
            state: state_location(file, env, state_flag)?,
            clock: crate::state::Clock::default(),
        })
    }
}

/// The reply cooldowns: FAQ per topic and channel, crisis per person and channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CooldownSettings {
    pub faq: Duration,
    pub crisis: Duration,
}

impl CooldownSettings {
    pub const DEFAULT: CooldownSettings =
        CooldownSettings { faq: Duration::from_secs(10 * 60), crisis: Duration::from_secs(30 * 60) };

    pub fn resolve(file: &CooldownFile, env: &impl Environment) -> Result<CooldownSettings, ConfigError> {
        Ok(CooldownSettings {
            faq: seconds(env, "FAQ_COOLDOWN_SECONDS", file.faq_seconds, Self::DEFAULT.faq)?,
            crisis: seconds(env, "CRISIS_COOLDOWN_SECONDS", file.crisis_seconds, Self::DEFAULT.crisis)?,
        })
    }
}

/// A duration in whole seconds from `name`, else from the file, else `default`.
fn seconds(
    env: &impl Environment,
    name: &'static str,
    from_file: Option<u64>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match env.get(name) {
        Some(value) => value.parse().map(Duration::from_secs).map_err(|_| ConfigError::Invalid {
            name,
            value,
            problem: "expected a whole number of seconds",
        }),
        None => Ok(from_file.map_or(default, Duration::from_secs)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "<redacted> <redacted>");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn a_secret_comes_from_the_variable_then_its_file() {
        let path = std::env::temp_dir().join(format!("kib-secret-{}", std::process::id()));
        std::fs::write(&path, "from-file\n").unwrap();
        let path_text = path.to_str().unwrap();
        let from_var = secret(&env(&[("TOKEN", "from-var"), ("TOKEN_FILE", path_text)]), "TOKEN", None).unwrap();
        assert_eq!(from_var.unwrap().expose(), "from-var");
        let from_file = secret(&env(&[("TOKEN_FILE", path_text)]), "TOKEN", None).unwrap();
        assert_eq!(from_file.unwrap().expose(), "from-file");
        let fallback = secret(&env(&[]), "TOKEN", Some(&path)).unwrap();
        assert_eq!(fallback.unwrap().expose(), "from-file");
        assert!(secret(&env(&[]), "TOKEN", None).unwrap().is_none());
        let missing = secret(&env(&[("TOKEN_FILE", "/nonexistent/token")]), "TOKEN", None).unwrap_err();
        assert!(missing.to_string().contains("TOKEN_FILE") && missing.to_string().contains("/nonexistent/token"));
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let file = ConfigFile::parse("bot.toml", "[cooldowns]\nfaq_seconds = 60\ncrisis_seconds = 120\n").unwrap();
        let from_file = CooldownSettings::resolve(&file.cooldowns, &env(&[])).unwrap();
        assert_eq!(from_file, CooldownSettings { faq: Duration::from_secs(60), crisis: Duration::from_secs(120) });
        let overridden = CooldownSettings::resolve(&file.cooldowns, &env(&[("FAQ_COOLDOWN_SECONDS", "5")])).unwrap();
        assert_eq!(overridden.faq, Duration::from_secs(5));
        assert_eq!(CooldownSettings::resolve(&CooldownFile::default(), &env(&[])).unwrap(), CooldownSettings::DEFAULT);
        assert!(CooldownSettings::resolve(&file.cooldowns, &env(&[("FAQ_COOLDOWN_SECONDS", "soon")])).is_err());
    }

    #[test]
    fn discord_settings_layer_file_environment_and_flags() {
        let file = ConfigFile::parse("bot.toml", "[discord]\nguild_id = 1\napi_url = \"http://file\"\n").unwrap();
        let env_only = env(&[("DISCORD_TOKEN", "t0ken"), ("DISCORD_GUILD_ID", "2")]);
        let settings = DiscordSettings::resolve(&file, &env_only, DiscordFlags::default()).unwrap();
        assert_eq!(settings.guild_id, NonZeroU64::new(2));
        assert_eq!(settings.api_url.as_ref().map(HttpUrl::as_str), Some("http://file"));
        assert!(!format!("{settings:?}").contains("t0ken"), "the token never prints");
        let flag = HttpUrl::parse("http://flag").unwrap();
        let flags = DiscordFlags { api_url: Some(flag.clone()), commands_only: true, ..DiscordFlags::default() };
        let flagged = DiscordSettings::resolve(&file, &env_only, flags).unwrap();
        assert_eq!(flagged.api_url, Some(flag));
        assert!(flagged.commands_only);
        let missing = DiscordSettings::resolve(&file, &env(&[]), DiscordFlags::default()).unwrap_err();
        assert!(missing.to_string().contains("DISCORD_TOKEN"));
    }

    #[test]
    fn the_state_is_a_flag_path_else_a_postgres_url_else_a_path_and_the_url_never_prints() {
        let file = ConfigFile::parse("bot.toml", "[state]\npath = \"/file.db\"\n").unwrap();
        let url = "postgres://bot:s3cret@127.0.0.1/kib";
        let location =
            |vars: &[(&str, &str)], flag: Option<&str>| state_location(&file, &env(vars), flag.map(PathBuf::from));
        assert_eq!(location(&[], None).unwrap(), StateLocation::File("/file.db".into()));
        assert_eq!(location(&[("STATE_PATH", "/env.db")], None).unwrap(), StateLocation::File("/env.db".into()));
        let shared = location(&[("STATE_PATH", "/env.db"), ("STATE_URL", url)], None).unwrap();
        assert_eq!(shared, StateLocation::Postgres(Secret::new(url)));
        assert!(!format!("{shared:?}").contains("s3cret"));
        assert_eq!(location(&[("STATE_URL", url)], Some("/flag.db")).unwrap(), StateLocation::File("/flag.db".into()));
        let wrong = location(&[("STATE_URL", "mysql://bot:s3cret@host/kib")], None).unwrap_err().to_string();
        assert!(wrong.contains("STATE_URL") && !wrong.contains("s3cret"), "{wrong}");
        let default = state_location(&ConfigFile::default(), &env(&[]), None).unwrap();
        assert_eq!(default, StateLocation::File("ketamine-info-bot.db".into()));
    }

    #[test]
    fn shard_ranges_are_checked_and_place_each_server_on_one_shard() {
        assert_eq!(Shards::parse(Some("0-3"), 8), Ok(Shards { first: 0, last: 3, total: 8 }));
        assert_eq!(Shards::parse(Some("5"), 8), Ok(Shards { first: 5, last: 5, total: 8 }));
        assert_eq!(Shards::parse(None, 4), Ok(Shards { first: 0, last: 3, total: 4 }));
        for (range, total) in [("3-1", 8), ("0-8", 8), ("x", 8), ("0", 0), ("-1", 4)] {
            assert!(Shards::parse(Some(range), total).is_err(), "{range} of {total}");
        }
        // Discord's formula: (server id >> 22) % total.
        let (low, high) = (Shards::parse(Some("0-0"), 2).unwrap(), Shards::parse(Some("1-1"), 2).unwrap());
        for guild in [500, 1 << 22, 81384788765712384, 613425648685547541] {
            assert!(low.has_guild(guild) != high.has_guild(guild), "exactly one process has {guild}");
            assert!(Shards::ALL.has_guild(guild));
        }
        assert!(high.has_guild(1 << 22) && low.has_guild(500));

        let file = ConfigFile::parse("bot.toml", "[discord]\nshards = \"2-3\"\ntotal_shards = 4\n").unwrap();
        let token = [("DISCORD_TOKEN", "t")];
        let settings = |vars: &[(&str, &str)], flags| DiscordSettings::resolve(&file, &env(vars), flags);
        assert_eq!(settings(&token, DiscordFlags::default()).unwrap().shards, Shards { first: 2, last: 3, total: 4 });
        let from_env =
            settings(&[token[0], ("DISCORD_SHARDS", "1"), ("DISCORD_TOTAL_SHARDS", "2")], DiscordFlags::default());
        assert_eq!(from_env.unwrap().shards, Shards { first: 1, last: 1, total: 2 });
        let flags = DiscordFlags { shards: Some("0-3".into()), total_shards: Some(8), ..DiscordFlags::default() };
        assert_eq!(settings(&token, flags).unwrap().shards.to_string(), "0-3 of 8");
        let too_far = DiscordFlags { shards: Some("0-3".into()), total_shards: Some(2), ..DiscordFlags::default() };
        assert!(settings(&token, too_far).unwrap_err().to_string().contains("DISCORD_SHARDS"));
        let without_total = DiscordFlags { shards: Some("1".into()), ..DiscordFlags::default() };
        let no_total = DiscordSettings::resolve(&ConfigFile::default(), &env(&token), without_total).unwrap_err();
        assert!(no_total.to_string().contains("DISCORD_TOTAL_SHARDS"), "{no_total}");
        let default = DiscordSettings::resolve(&ConfigFile::default(), &env(&token), DiscordFlags::default());
        assert_eq!(default.unwrap().shards, Shards::ALL);
    }

    #[test]
    fn matrix_settings_layer_file_and_environment() {
        let text =
            "[matrix]\nhomeserver = \"http://file\"\nuser = \"@bot:file\"\nallowed_inviters = [\"@*:example.org\"]\n";
        let file = ConfigFile::parse("bot.toml", text).unwrap();
        let settings = MatrixSettings::resolve(&file, &env(&[("MATRIX_PASSWORD", "pa55")]), None).unwrap();
        assert_eq!((settings.homeserver.as_str(), settings.user.as_str()), ("http://file", "@bot:file"));
        assert_eq!(settings.allowed_inviters, ["@*:example.org"]);
        assert_eq!(settings.store, PathBuf::from("matrix-store"));
        assert_eq!(settings.catch_up, MatrixSettings::DEFAULT_CATCH_UP);
        assert_eq!(settings.state, StateLocation::File(PathBuf::from("ketamine-info-bot.db")));
        assert!(matches!(&settings.auth, MatrixAuth::Password(p) if p.expose() == "pa55"));
        assert!(!format!("{settings:?}").contains("pa55"), "the password never prints");
        let token =
            env(&[("MATRIX_ACCESS_TOKEN", "syt_x"), ("MATRIX_HOMESERVER", "http://env"), ("MATRIX_STORE", "/s")]);
        let settings = MatrixSettings::resolve(&file, &token, None).unwrap();
        assert!(matches!(settings.auth, MatrixAuth::AccessToken(_)));
        assert_eq!((settings.homeserver.as_str(), settings.store), ("http://env", PathBuf::from("/s")));
        assert!(MatrixSettings::resolve(&file, &env(&[]), None).unwrap_err().to_string().contains("MATRIX_PASSWORD"));
        let bad_user = env(&[("MATRIX_USER", "bot"), ("MATRIX_PASSWORD", "x")]);
        assert!(MatrixSettings::resolve(&file, &bad_user, None).is_err());
    }

    #[test]
    fn every_key_in_the_example_file_is_real() {
        // Uncomment every `# key = value` line of the shipped example: unknown keys would be errors.
        let example = include_str!("../bot.example.toml");
        let uncommented: String = example
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(setting) if setting.split_once(" = ").is_some_and(|(key, _)| !key.contains(' ')) => setting,
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let file = ConfigFile::parse("bot.example.toml", &uncommented).unwrap();
        assert!(file.discord.guild_id.is_some() && file.matrix.allowed_inviters.is_some());
        assert!(file.cooldowns.faq_seconds.is_some() && file.matrix.locale.is_some());
    }

    #[test]
    fn config_file_errors_name_the_line_and_column() {
        let error = ConfigFile::parse("bot.toml", "[discord]\nguild = 1\n").unwrap_err();
        assert!(error.to_string().starts_with("bot.toml:2:1:") && error.to_string().contains("guild"), "{error}");
    }

    #[test]
    fn settings_that_could_only_fail_later_are_refused_when_read() {
        let zero = ConfigFile::parse("bot.toml", "[discord]\nguild_id = 0\n").unwrap_err().to_string();
        assert!(zero.starts_with("bot.toml:2:12:"), "{zero}");
        let url = ConfigFile::parse("bot.toml", "[matrix]\nhomeserver = \"matrix.org\"\n").unwrap_err().to_string();
        assert!(url.starts_with("bot.toml:2:14:") && url.contains("http"), "{url}");
        let env_zero = env(&[("DISCORD_TOKEN", "t"), ("DISCORD_GUILD_ID", "0")]);
        let error = DiscordSettings::resolve(&ConfigFile::default(), &env_zero, DiscordFlags::default()).unwrap_err();
        assert!(error.to_string().contains("DISCORD_GUILD_ID"), "{error}");
        let env_url = env(&[("DISCORD_TOKEN", "t"), ("DISCORD_API_URL", "localhost:3000")]);
        assert!(DiscordSettings::resolve(&ConfigFile::default(), &env_url, DiscordFlags::default()).is_err());
        assert!(HttpUrl::parse("https://matrix.example.org/").is_ok() && HttpUrl::parse("https://").is_err());
    }
}
