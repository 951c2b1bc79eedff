//! Adapters: each translates one platform's events into [`crate::Incoming`] and renders [`crate::Reply`] for it.
//! They hold no product logic.

pub mod console;
#[cfg(feature = "discord")]
pub mod discord;
#[cfg(feature = "matrix")]
pub mod matrix;
#[cfg(feature = "platform")]
pub mod metrics;

/// What the chat adapters share: replies in flight that a shutdown waits for, chat replies under the cooldowns,
/// and delivery with retries, logged the same way everywhere (ids and decisions, never message content).
#[cfg(feature = "platform")]
mod shared {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use tokio::sync::{OwnedSemaphorePermit, Semaphore};

    use super::metrics::{Metrics, METRICS};
    use crate::cooldown::{Admission, Admitted, Cooldowns, Place};
    use crate::delivery::{self, SendFailure};
    use crate::moderation::{self, AlertFacts, AlertTarget, ServerSettings};
    use crate::state::{AlertRecord, Clock, NewAlert, Store, StoreError};
    use crate::{Audience, Bot, Reply, ReplyKind};

    /// How long a shutdown waits for replies already being sent.
    const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
    /// Handlers that may run at once; a shutdown takes them all to know that none is left.
    const MAX_IN_FLIGHT: u32 = 1 << 16;

    /// Counts event handlers at work and replies waiting to be sent, so a shutdown can let them finish.
    #[derive(Clone)]
    pub struct InFlight(Arc<Semaphore>);

    impl InFlight {
        pub fn new() -> InFlight {
            InFlight(Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize)))
        }

        /// Marks a handler at work until the permit drops; `None` once the adapter is shutting down.
        pub async fn enter(&self) -> Option<OwnedSemaphorePermit> {
            Arc::clone(&self.0).acquire_owned().await.ok()
        }

        /// Waits until no handler is at work, or [`DRAIN_TIMEOUT`] has passed.
        pub async fn drain(&self) {
            if tokio::time::timeout(DRAIN_TIMEOUT, self.0.acquire_many(MAX_IN_FLIGHT)).await.is_err() {
                tracing::warn!("replies still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
            }
        }
    }

    /// What to do about a chat message: the reply to send, if any, and the staff alert to post, if any.
    pub struct ChatDecision {
        pub reply: Option<Admitted>,
        pub alert: Option<AlertFacts>,
    }

    /// Decides about a chat message (or, with `edit`, its new text) from `place`: the core's reply, the server's
    /// settings (in `audience`) and the member's opt-out, then the cooldowns. A crisis that the cooldowns let
    /// through alerts staff even where no public reply goes out (alert-only channels, opted-out members), so
    /// alerts are rate-limited like replies. The decision is logged by ids, never content.
    pub fn decide_chat(
        bot: &Bot,
        cooldowns: &Mutex<Cooldowns>,
        text: &str,
        audience: Audience<'_>,
        place: &Place,
        edit: bool,
        opted_out: bool,
    ) -> ChatDecision {
        let outcome = bot.chat(text, audience);
        let had_reply = outcome.reply.is_some();
        let (level, rule, category) = (outcome.assessment.level, outcome.assessment.rule, outcome.assessment.category);
        let topic = outcome.topics.first().map(|topic| topic.id.clone());
        let default = ServerSettings::default();
        let settings = audience.server.unwrap_or(&default);
        let plan = moderation::plan(settings, &place.channel, opted_out, &outcome);
        let faq_window = settings.faq_cooldown_minutes.map(|minutes| Duration::from_secs(u64::from(minutes) * 60));
        let mut cooldowns = cooldowns.lock().expect("not poisoned");
        cooldowns.set_windows(bot.cooldowns());
        let admitted = if edit {
            cooldowns.admit_edit(place, outcome, Instant::now())
        } else {
            cooldowns.admit_chat(place, outcome, Instant::now(), faq_window)
        };
        if had_reply && admitted.is_none() {
            Metrics::count(&METRICS.suppressed, place.platform);
        }
        let crisis_admitted = admitted.as_ref().is_some_and(|admitted| admitted.admission != Admission::FaqInstead);
        let alert = plan.alert.filter(|_| crisis_admitted);
        tracing::info!(
            channel = place.channel,
            person = place.person,
            message = place.message,
            edit,
            crisis = level.as_str(),
            rule = rule.unwrap_or("-"),
            category = category.map_or("-", |category| category.as_str()),
            topic = topic.as_deref().unwrap_or("-"),
            admitted = admitted.as_ref().map_or("no", |admitted| admitted.admission.as_str()),
            public = plan.reply,
            alert = alert.is_some(),
            "chat reply"
        );
        let reply = match admitted {
            Some(admitted) if plan.reply => Some(admitted),
            // Not sent: the window stays taken only to pace the staff alert.
            Some(admitted) if alert.is_none() => {
                cooldowns.release(admitted.ticket);
                None
            }
            _ => None,
        };
        ChatDecision { reply, alert }
    }

    /// Counts an automatic reply for the server's statistics (`/ketamine-stats`): FAQ replies by topic, crisis
    /// replies by level; no ids.
    pub fn count_reply(store: &dyn Store, clock: &Clock, server: &str, reply: &Reply) {
        let (kind, key) = match reply.kind() {
            ReplyKind::Topic { id, crisis } if !crisis.is_crisis() => ("faq", id.clone()),
            kind => ("crisis", kind.crisis_level().as_str().to_owned()),
        };
        if let Err(error) = store.count(clock.now() / 86_400, server, kind, &key) {
            tracing::warn!(%error, "cannot count a reply");
        }
    }

    /// A server's (or room's) settings; the defaults if they cannot be read (logged), so the bot keeps answering.
    pub fn server_settings(store: &dyn Store, server: &str) -> ServerSettings {
        store.settings(server).unwrap_or_else(|error| {
            tracing::error!(%error, "cannot read the server's settings; using the defaults");
            ServerSettings::default()
        })
    }

    /// Whether a member opted out of automatic replies; when that cannot be read (logged), no: a crisis reply is
    /// never withheld for want of a database.
    pub fn opted_out(store: &dyn Store, member: &str) -> bool {
        store.opted_out(member).unwrap_or_else(|error| {
            tracing::error!(%error, "cannot read opt-outs");
            false
        })
    }

    /// Records a staff alert about `place` in `server` and counts it for the statistics; the alert's id.
    pub fn record_alert(
        store: &dyn Store,
        server: &str,
        place: &Place,
        facts: AlertFacts,
        alert_channel: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let id = store.add_alert(&NewAlert {
            server,
            channel: &place.channel,
            message: &place.message,
            member: &place.person,
            level: facts.level,
            category: facts.category,
            created_at: now,
            alert_channel,
        })?;
        if let Err(error) = store.count(now / 86_400, server, "alert", facts.level.as_str()) {
            tracing::warn!(%error, "cannot count an alert");
        }
        Ok(id)
    }

    /// How often records past their retention are deleted, in seconds.
    const PRUNE_EVERY: i64 = 60 * 60;

    /// This platform's alerts (`ours`) that nobody acknowledged within their server's `realert-minutes`, each
    /// marked reminded (so it gets one reminder) and paired with where the reminder goes. Once an hour (after
    /// `last_prune`), records past their retention are deleted too.
    pub fn alerts_to_remind(
        store: &dyn Store,
        now: i64,
        ours: impl Fn(&AlertRecord) -> bool,
        last_prune: &mut i64,
    ) -> Result<Vec<(AlertRecord, AlertTarget)>, StoreError> {
        if now - *last_prune >= PRUNE_EVERY {
            store.prune(now)?;
            *last_prune = now;
        }
        let mut due = Vec::new();
        for record in store.unanswered_alerts()?.into_iter().filter(|record| ours(record)) {
            let settings = store.settings(&record.server)?;
            if !settings.reminder_due(record.created_at, now) {
                continue;
            }
            store.mark_reminded(record.id, now)?;
            if let Some(target) = settings.alerts {
                due.push((record, target));
            }
        }
        Ok(due)
    }

    /// The retries of one reply, as [`delivery`] says: call [`Retry::again`] after each failed attempt.
    pub struct Retry<'a> {
        urgent: bool,
        place: &'a Place,
        started: Instant,
        failures: u32,
    }

    impl<'a> Retry<'a> {
        pub fn new(reply: &Reply, place: &'a Place) -> Retry<'a> {
            Retry { urgent: reply.is_urgent(), place, started: Instant::now(), failures: 0 }
        }

        /// Retries for a message that must arrive, such as a staff alert.
        pub fn urgent(place: &'a Place) -> Retry<'a> {
            Retry { urgent: true, place, started: Instant::now(), failures: 0 }
        }

        /// After a failed attempt: waits and returns true when the reply should be tried again; otherwise logs
        /// at `error` that it was given up (place and reason, never the text), counts it and returns false.
        pub async fn again(&mut self, failure: SendFailure) -> bool {
            self.failures += 1;
            let place = self.place;
            Metrics::count(&METRICS.send_failures, place.platform);
            match delivery::next_attempt(self.urgent, self.failures, self.started.elapsed(), &failure) {
                Some(wait) => {
                    Metrics::count(&METRICS.retries, place.platform);
                    tracing::warn!(channel = place.channel, message = place.message, %failure, ?wait, "send failed; retrying");
                    tokio::time::sleep(wait).await;
                    true
                }
                None => {
                    delivery::count_given_up();
                    Metrics::count(&METRICS.given_up, place.platform);
                    tracing::error!(
                        channel = place.channel,
                        person = place.person,
                        message = place.message,
                        urgent = self.urgent,
                        failures = self.failures,
                        %failure,
                        "gave up a reply"
                    );
                    false
                }
            }
        }
    }
}
