//! What operators scrape (`--metrics ADDR`): Prometheus text on `/metrics` and each platform's connection on
//! `/healthz`. Counts and timings only: no label carries a user id, a channel or any text.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{Reply, ReplyKind};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Platform {
    pub platform: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplyLabels {
    pub platform: &'static str,
    /// `faq`, `crisis`, `command` or `notice`.
    pub kind: &'static str,
    /// The crisis level answered (`none` for FAQ answers and commands).
    pub level: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// `ok` or `error`.
    pub result: &'static str,
}

/// Every metric the bot keeps.
pub struct Metrics {
    registry: Registry,
    pub replies: Family<ReplyLabels, Counter>,
    pub suppressed: Family<Platform, Counter>,
    pub send_failures: Family<Platform, Counter>,
    pub retries: Family<Platform, Counter>,
    pub given_up: Family<Platform, Counter>,
    pub reconnects: Family<Platform, Counter>,
    pub sync_errors: Family<Platform, Counter>,
    pub reply_latency: Family<Platform, Histogram>,
    pub reloads: Family<Outcome, Counter>,
    pub connected: Family<Platform, Gauge>,
}

/// The bot's metrics, one set per process.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ketamine");
        let metrics = Metrics {
            replies: Family::default(),
            suppressed: Family::default(),
            send_failures: Family::default(),
            retries: Family::default(),
            given_up: Family::default(),
            reconnects: Family::default(),
            sync_errors: Family::default(),
            reply_latency: Family::new_with_constructor(|| {
                Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0].into_iter())
            }),
            reloads: Family::default(),
            connected: Family::default(),
            registry: Registry::default(),
        };
        registry.register("replies", "Replies sent, by kind and crisis level", metrics.replies.clone());
        registry.register("cooldown_suppressed", "Replies held back by a cooldown", metrics.suppressed.clone());
        registry.register("send_failures", "Failed attempts to send a reply", metrics.send_failures.clone());
        registry.register("send_retries", "Attempts to send a reply again after a failure", metrics.retries.clone());
        registry.register("replies_given_up", "Replies given up after their retries", metrics.given_up.clone());
        registry.register("gateway_reconnects", "Discord gateway sessions resumed", metrics.reconnects.clone());
        registry.register("sync_errors", "Matrix syncs that failed", metrics.sync_errors.clone());
        registry.register(
            "reply_latency_seconds",
            "From a message's arrival to its reply sent",
            metrics.reply_latency.clone(),
        );
        registry.register("content_reloads", "Content reloads, by result", metrics.reloads.clone());
        registry.register("platform_connected", "1 while the platform is connected", metrics.connected.clone());
        Metrics { registry, ..metrics }
    }

    /// Counts a reply sent (`automatic`: to chat, not to a command), and its latency.
    pub fn reply_sent(&self, platform: &'static str, reply: &Reply, automatic: bool, latency: Duration) {
        let level = reply.kind().crisis_level();
        let kind = match reply.kind() {
            ReplyKind::Notice => "notice",
            _ if !automatic => "command",
            _ if level.is_crisis() => "crisis",
            _ => "faq",
        };
        self.replies.get_or_create(&ReplyLabels { platform, kind, level: level.as_str() }).inc();
        self.reply_latency.get_or_create(&Platform { platform }).observe(latency.as_secs_f64());
    }

    /// Counts one of the per-platform events.
    pub fn count(family: &Family<Platform, Counter>, platform: &'static str) {
        family.get_or_create(&Platform { platform }).inc();
    }

    pub fn set_connected(&self, platform: &'static str, connected: bool) {
        self.connected.get_or_create(&Platform { platform }).set(i64::from(connected));
    }

    fn text(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }

    /// `{"discord": true, ...}` for the platforms that run, and whether all are connected.
    fn health(&self, platforms: &[&'static str]) -> (bool, String) {
        let states: Vec<(&str, bool)> = platforms
            .iter()
            .map(|&platform| (platform, self.connected.get_or_create(&Platform { platform }).get() == 1))
            .collect();
        let body = states.iter().map(|(platform, up)| format!("\"{platform}\": {up}")).collect::<Vec<_>>().join(", ");
        (states.iter().all(|(_, up)| *up), format!("{{{body}}}"))
    }
}

/// Serves `/metrics` and `/healthz` on `address` until the process ends. A plain HTTP/1.1 responder: one
/// request per connection, GET only.
pub async fn serve(address: std::net::SocketAddr, platforms: Vec<&'static str>) -> std::io::Result<()> {
    let listener = TcpListener::bind(address).await?;
    tracing::info!(%address, "serving metrics");
    loop {
        let (mut stream, _) = listener.accept().await?;
        let platforms = platforms.clone();
        tokio::spawn(async move {
            // The whole head, even when it arrives in pieces: closing with unread bytes would reset the connection.
            let mut request = Vec::with_capacity(1024);
            let head = async {
                while !request.ends_with(b"\r\n\r\n") && request.len() < 8192 {
                    if stream.read_buf(&mut request).await? == 0 {
                        break;
                    }
                }
                Ok::<_, std::io::Error>(())
            };
            let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(5), head).await else { return };
            let line = String::from_utf8_lossy(&request);
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let (status, kind, body) = match path {
                "/metrics" => ("200 OK", "text/plain; version=0.0.4", METRICS.text()),
                "/healthz" => match METRICS.health(&platforms) {
                    (true, body) => ("200 OK", "application/json", body),
                    (false, body) => ("503 Service Unavailable", "application/json", body),
                },
                _ => ("404 Not Found", "text/plain", "not found\n".to_owned()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}
