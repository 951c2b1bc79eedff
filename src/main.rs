//! The `ketamine-info-bot` binary: parses the command line, loads the content, hands over to an adapter.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
#[cfg(feature = "platform")]
use ketamine_info_bot::config::CooldownSettings;
use ketamine_info_bot::platforms::console;
use ketamine_info_bot::safety::BUILT_IN_RULES;
use ketamine_info_bot::{Audience, Bot, Catalog, Detector, Incoming};
use serde::Serialize;

const DEFAULT_RESPONSES: &str = "responses.toml";

/// An information-and-safety bot for mental-health communities: ketamine facts from one source document,
/// crisis resources when someone speaks of suicide, and a disclaimer on every reply.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Content file; defaults to ./responses.toml, else the copy built into the binary.
    #[arg(long, global = true, value_name = "PATH")]
    responses: Option<PathBuf>,
    /// The member's locale (en-US, en-GB, en-AU, fr-CA, ...), which picks the crisis lines.
    #[arg(long, global = true, value_name = "LOCALE")]
    locale: Option<String>,
    /// Operator settings file (TOML); the environment overrides it.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// The state database: moderator settings, opt-outs, staff alerts (default ./ketamine-info-bot.db, or
    /// STATE_PATH). It never holds message text.
    #[arg(long, global = true, value_name = "PATH")]
    state: Option<PathBuf>,
    /// On a platform, reload the content file when it changes (SIGHUP always reloads it).
    #[arg(long, global = true)]
    watch: bool,
    /// On a platform, serve Prometheus metrics on /metrics and health on /healthz at this address (off by default).
    #[arg(long, global = true, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    #[command(subcommand)]
    command: Option<Mode>,
}

#[derive(Subcommand)]
enum Mode {
    /// Chat with the bot in the terminal (the default; also reads piped input).
    Console,
    /// Print exactly what the bot would send in reply to a chat message; nothing when it stays silent.
    Ask { message: String },
    /// Print the reply to a command, such as `ketamine-risks` or `crisis-resources uk`.
    Command { name: String, argument: Option<String> },
    /// Read one message per line on stdin; write one JSON object per line: crisis level, topics, reply.
    Classify,
    /// Validate a content file, the crisis rules (running every rule's examples) and the --config file if one is
    /// given: a summary and exit 0, or every error and exit 1.
    Check {
        path: Option<PathBuf>,
        /// A crisis rules file to validate instead of the built-in ones (crisis-rules/*.toml).
        #[arg(long, value_name = "PATH")]
        rules: Option<PathBuf>,
    },
    /// Ask a running bot's /healthz (at its --metrics address): exit 0 when every platform is connected. For
    /// container health checks, which need no HTTP client in the image.
    Health { address: std::net::SocketAddr },
    /// Run on Discord. The token comes from DISCORD_TOKEN or DISCORD_TOKEN_FILE, never from a flag. Needs a build
    /// with the `discord` feature.
    Discord {
        /// Send every REST call to this proxy (such as twilight-http-proxy), which then owns rate limiting.
        #[arg(long, value_name = "URL", value_parser = ketamine_info_bot::config::HttpUrl::parse)]
        api_url: Option<ketamine_info_bot::config::HttpUrl>,
        /// Run without the privileged Message Content intent: slash commands only, no chat replies.
        #[arg(long)]
        commands_only: bool,
        /// Run only these shards, such as `0-3` (or DISCORD_SHARDS), so that several processes share one bot.
        #[arg(long, value_name = "RANGE")]
        shards: Option<String>,
        /// The number of shards across all processes (or DISCORD_TOTAL_SHARDS).
        #[arg(long, value_name = "N")]
        total_shards: Option<u32>,
    },
    /// Run on Matrix. Settings from MATRIX_HOMESERVER, MATRIX_USER, MATRIX_PASSWORD or MATRIX_ACCESS_TOKEN
    /// (or their _FILE forms) and MATRIX_STORE, or the [matrix] section of --config. Needs a build with the
    /// `matrix` feature.
    Matrix,
}

impl Mode {
    /// Whether this mode runs on a chat platform (and logs its decisions) rather than in the terminal.
    fn is_platform(&self) -> bool {
        matches!(self, Mode::Discord { .. } | Mode::Matrix)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(if cli.command.as_ref().is_some_and(Mode::is_platform) { PLATFORM_LOGS } else { "warn" });
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The default log filter on a platform: the bot's decisions at `info` (one line each, ids only); the libraries
/// at `warn`, because their `info` and lower record whole events (serenity's gateway spans), message text
/// included. matrix-sdk's note that no key backup is set up would repeat forever.
const PLATFORM_LOGS: &str = "info,serenity=warn,matrix_sdk=warn,matrix_sdk_base=warn,matrix_sdk_crypto=warn,\
                             matrix_sdk_sqlite=warn,ruma=warn,matrix_sdk_crypto::backups=error";

/// Logs go to stderr, `warn` and up for terminal commands and [`PLATFORM_LOGS`] for platforms unless `RUST_LOG`
/// says otherwise; the bot's own never carry message content.
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    // Colours only on a terminal: a journal or a log file gets plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let locale = cli.locale.as_deref();
    let command = cli.command.unwrap_or(Mode::Console);
    if let Mode::Check { path, rules } = &command {
        let path = path.as_deref().or(cli.responses.as_deref()).unwrap_or(Path::new(DEFAULT_RESPONSES));
        return check(path, rules.as_deref(), cli.config.as_deref());
    }
    if let Mode::Health { address } = command {
        return health(address);
    }
    let (catalog, content_file) = load_catalog(cli.responses.as_deref())?;
    #[cfg(not(feature = "platform"))]
    let _ = content_file; // only the platforms reload it
    #[cfg(feature = "platform")]
    let ops = |platform| Ops {
        reload: Reload { content: content_file, config: cli.config.clone(), watch: cli.watch },
        metrics: cli.metrics,
        platform,
    };
    let bot = Bot::new(catalog);
    let stdout = io::stdout();
    match command {
        Mode::Console => {
            let interactive = io::stdin().is_terminal();
            console::run(&bot, locale, io::stdin().lock(), stdout.lock(), interactive)?;
        }
        Mode::Ask { message } => {
            if let Some(reply) = bot.respond(Incoming::Chat(&message), audience(locale)) {
                writeln!(stdout.lock(), "{}", reply.to_plain_text())?;
            }
        }
        Mode::Command { name, argument } => {
            let name = name.trim_start_matches(['/', '!']);
            if !bot.has_command(name) {
                let help = &bot.catalog().help.command;
                anyhow::bail!("no command {name:?}; `{} command {help}` lists them", env!("CARGO_PKG_NAME"));
            }
            let reply = bot.command(name, argument.as_deref(), audience(locale));
            writeln!(stdout.lock(), "{}", reply.to_plain_text())?;
        }
        Mode::Classify => classify(&bot, locale, io::stdin().lock(), stdout.lock())?,
        #[cfg(feature = "discord")]
        Mode::Discord { api_url, commands_only, shards, total_shards } => {
            let file = config_file(cli.config.as_deref())?;
            let flags = ketamine_info_bot::config::DiscordFlags {
                api_url,
                commands_only,
                shards,
                total_shards,
                state: cli.state,
            };
            let settings = ketamine_info_bot::config::DiscordSettings::resolve(&file, &env_var, flags)?;
            let run = |bot| ketamine_info_bot::platforms::discord::run(bot, settings, shutdown_signal());
            serve(bot, &file, ops("discord"), run)?;
        }
        #[cfg(feature = "matrix")]
        Mode::Matrix => {
            let file = config_file(cli.config.as_deref())?;
            let settings = ketamine_info_bot::config::MatrixSettings::resolve(&file, &env_var, cli.state)?;
            let run = |bot| ketamine_info_bot::platforms::matrix::run(bot, settings, shutdown_signal());
            serve(bot, &file, ops("matrix"), run)?;
        }
        #[cfg(not(feature = "discord"))]
        Mode::Discord { .. } => return Err(not_built("discord")),
        #[cfg(not(feature = "matrix"))]
        Mode::Matrix => return Err(not_built("matrix")),
        Mode::Check { .. } | Mode::Health { .. } => unreachable!("handled before the content is loaded"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The error for a platform this binary was built without: the console's quick build has none.
#[cfg(not(all(feature = "discord", feature = "matrix")))]
fn not_built(platform: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "this build has no {platform} adapter (the `{platform}` feature was off); build and run it with\n    \
         cargo run --release --features {platform} -- {platform}\nor install it with\n    \
         cargo install --path . --features {platform}"
    )
}

fn audience(locale: Option<&str>) -> Audience<'_> {
    Audience { locale, command_prefix: "/", server: None }
}

/// Loads `path`, or `./responses.toml`, or the built-in copy when neither is given nor present; with the file it
/// came from, if any.
fn load_catalog(path: Option<&Path>) -> anyhow::Result<(Catalog, Option<PathBuf>)> {
    let default = Path::new(DEFAULT_RESPONSES);
    let file = match path {
        Some(path) => path,
        None if default.exists() => default,
        None => return Ok((Catalog::built_in(), None)),
    };
    let catalog =
        parse_content(file).map_err(|error| anyhow::anyhow!("invalid content, the bot will not start:\n{error}"))?;
    Ok((catalog, Some(file.to_owned())))
}

/// Reads and validates a content file; every problem with its file, line and column.
fn parse_content(file: &Path) -> anyhow::Result<Catalog> {
    let name = file.display().to_string();
    tracing::debug!(source = %name, "loading content");
    Catalog::parse(&name, &read(file)?).map_err(|errors| anyhow::anyhow!("{errors}"))
}

/// When the platforms reload the content and the settings file: on SIGHUP, and with `--watch` when either
/// changes.
#[cfg(feature = "platform")]
struct Reload {
    /// `None` for the built-in content, which cannot change.
    content: Option<PathBuf>,
    /// The operator's settings file: its `[cooldowns]` apply at once, the rest at the next start.
    config: Option<PathBuf>,
    watch: bool,
}

#[cfg(feature = "platform")]
impl Reload {
    /// How often `--watch` looks at the file.
    const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

    /// The bot as the files say now: the content (or the built-in copy) with the settings file's cooldowns.
    fn load(&self) -> anyhow::Result<Bot> {
        let catalog = match &self.content {
            Some(file) => parse_content(file)?,
            None => Catalog::built_in(),
        };
        let settings = config_file(self.config.as_deref())?;
        Ok(Bot::new(catalog).with_cooldowns(CooldownSettings::resolve(&settings.cooldowns, &env_var)?))
    }

    /// Reloads the bot into `live` whenever asked, for as long as the bot runs. A file that fails to parse is
    /// logged with every problem's place, and the last good content and settings keep serving.
    async fn keep_fresh(self, live: std::sync::Arc<ketamine_info_bot::LiveBot>) {
        use tokio::signal::unix::{signal, SignalKind};
        let files: Vec<PathBuf> = self.content.iter().chain(&self.config).cloned().collect();
        if files.is_empty() {
            return;
        }
        let mut hangup = signal(SignalKind::hangup()).expect("SIGHUP can be watched");
        let modified = || -> Vec<_> {
            files.iter().map(|file| std::fs::metadata(file).and_then(|meta| meta.modified()).ok()).collect()
        };
        let mut last_seen = modified();
        let mut tick = tokio::time::interval(Self::WATCH_EVERY);
        loop {
            tokio::select! {
                _ = hangup.recv() => {}
                _ = tick.tick(), if self.watch => {
                    if modified() == last_seen {
                        continue;
                    }
                }
            }
            last_seen = modified();
            match self.load() {
                Ok(bot) => {
                    live.replace(bot);
                    count_reload("ok");
                    tracing::info!(?files, "content and cooldowns reloaded (other settings apply at the next start)");
                }
                Err(errors) => {
                    count_reload("error");
                    tracing::error!(
                        ?files,
                        "not reloaded, the last good content and settings keep serving:\n{errors:#}"
                    )
                }
            }
        }
    }
}

/// The operator's settings file, or empty settings when none is given.
#[cfg(feature = "platform")]
fn config_file(path: Option<&Path>) -> anyhow::Result<ketamine_info_bot::config::ConfigFile> {
    match path {
        Some(path) => Ok(ketamine_info_bot::config::ConfigFile::parse(&path.display().to_string(), &read(path)?)?),
        None => Ok(Default::default()),
    }
}

#[cfg(feature = "platform")]
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(feature = "platform")]
fn count_reload(result: &'static str) {
    use ketamine_info_bot::platforms::metrics::{Outcome, METRICS};
    METRICS.reloads.get_or_create(&Outcome { result }).inc();
}

/// What runs beside a platform adapter: content reloads and, when asked, the metrics endpoint.
#[cfg(feature = "platform")]
struct Ops {
    reload: Reload,
    metrics: Option<std::net::SocketAddr>,
    platform: &'static str,
}

/// Runs a platform adapter on a new runtime until it stops, with the settings file's cooldowns and its [`Ops`].
#[cfg(feature = "platform")]
fn serve<F, E>(
    bot: Bot,
    settings: &ketamine_info_bot::config::ConfigFile,
    ops: Ops,
    run: impl FnOnce(std::sync::Arc<ketamine_info_bot::LiveBot>) -> F,
) -> anyhow::Result<()>
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let bot = bot.with_cooldowns(CooldownSettings::resolve(&settings.cooldowns, &env_var)?);
    let live = std::sync::Arc::new(ketamine_info_bot::LiveBot::new(bot));
    tokio::runtime::Runtime::new()?.block_on(async {
        if let Some(address) = ops.metrics {
            let endpoint = ketamine_info_bot::platforms::metrics::serve(address, vec![ops.platform]);
            tokio::spawn(async move {
                if let Err(error) = endpoint.await {
                    tracing::error!(%error, "the metrics endpoint stopped");
                }
            });
        }
        tokio::spawn(ops.reload.keep_fresh(std::sync::Arc::clone(&live)));
        run(live).await
    })?;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
#[cfg(feature = "platform")]
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM can be watched");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

fn health(address: std::net::SocketAddr) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    let timeout = std::time::Duration::from_secs(5);
    let mut stream = std::net::TcpStream::connect_timeout(&address, timeout)
        .with_context(|| format!("no bot serves metrics at {address}"))?;
    stream.set_read_timeout(Some(timeout))?;
    // One write: a request that arrives in pieces may be answered after its first piece, and the rest, unread
    // when the server closes, turns its close into a reset.
    stream.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    println!("{body}");
    Ok(if head.starts_with("HTTP/1.1 200") { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn check(path: &Path, rules: Option<&Path>, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let content = check_content(path)?;
    let config = match config {
        Some(config) => {
            match ketamine_info_bot::config::ConfigFile::parse(&config.display().to_string(), &read(config)?) {
                Ok(_) => {
                    println!("{}: OK", config.display());
                    true
                }
                Err(error) => {
                    eprintln!("{error}");
                    false
                }
            }
        }
        None => true,
    };
    let files = match rules {
        Some(rules) => vec![(rules.display().to_string(), read(rules)?)],
        None => BUILT_IN_RULES.iter().map(|(name, text)| (format!("built-in {name}"), (*text).to_owned())).collect(),
    };
    let mut rules = true;
    for (name, text) in files {
        match Detector::parse(&name, &text) {
            Ok(detector) => {
                let (count, exceptions, distress) = detector.counts();
                println!(
                    "{name}: OK ({}): {count} rules, {exceptions} exceptions, {distress} distress families; every \
                     example holds",
                    detector.language()
                );
            }
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!("{name}: {} error(s)", errors.0.len());
                rules = false;
            }
        }
    }
    Ok(if content && rules && config { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Validates a content file; prints a summary or every error.
fn check_content(path: &Path) -> anyhow::Result<bool> {
    let text = read(path)?;
    match Catalog::parse(&path.display().to_string(), &text) {
        Ok(catalog) => {
            println!(
                "{}: OK: {} topics, {} commands, {} crisis regions (hotlines last checked {})",
                path.display(),
                catalog.topics.len(),
                catalog.topics.len() + 2,
                catalog.crisis.regions.len(),
                catalog.crisis.last_checked,
            );
            Ok(true)
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{}: {} error(s)", path.display(), errors.0.len());
            Ok(false)
        }
    }
}

/// One line of `classify` output.
#[derive(Serialize)]
struct Classification<'a> {
    crisis: &'static str,
    /// The language of the rules that assessed it (`en` when none fired).
    language: &'a str,
    /// The rule that decided and its category, or the exception that vetoed the strongest hit.
    rule: Option<&'a str>,
    category: Option<&'static str>,
    exception: Option<&'a str>,
    topics: Vec<&'a str>,
    reply: Option<String>,
}

fn classify(bot: &Bot, locale: Option<&str>, input: impl BufRead, mut output: impl Write) -> anyhow::Result<()> {
    for line in input.lines() {
        let line = line?;
        let outcome = bot.chat(&line, audience(locale));
        let classification = Classification {
            crisis: outcome.assessment.level.as_str(),
            language: outcome.language,
            rule: outcome.assessment.rule,
            category: outcome.assessment.category.map(|category| category.as_str()),
            exception: outcome.assessment.exception,
            topics: outcome.topics.iter().map(|topic| topic.id.as_str()).collect(),
            reply: outcome.reply.map(|reply| reply.to_plain_text()),
        };
        serde_json::to_writer(&mut output, &classification)?;
        writeln!(output)?;
    }
    Ok(())
}
