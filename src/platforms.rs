//! Adapters: each translates one platform's events into [`crate::Incoming`] and renders [`crate::Reply`] for it.
//! They hold no product logic.

pub mod console;
#[cfg(feature = "discord")]
pub mod discord;
#[cfg(feature = "matrix")]
pub mod matrix;

/// What the chat adapters share: replies in flight that a shutdown waits for, and chat replies under the
/// cooldowns, logged the same way everywhere (ids and decisions, never message content).
#[cfg(any(feature = "discord", feature = "matrix"))]
mod shared {
    use std::fmt::Display;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use tokio::sync::{Semaphore, SemaphorePermit};

    use crate::cooldown::Cooldowns;
    use crate::{Audience, Bot, Reply};

    /// How long a shutdown waits for replies already being sent.
    const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
    /// Handlers that may run at once; a shutdown takes them all to know that none is left.
    const MAX_IN_FLIGHT: u32 = 1 << 16;

    /// Counts event handlers at work, so a shutdown can let them finish.
    #[derive(Clone)]
    pub struct InFlight(Arc<Semaphore>);

    impl InFlight {
        pub fn new() -> InFlight {
            InFlight(Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize)))
        }

        /// Marks a handler at work until the permit drops; `None` once the adapter is shutting down.
        pub async fn enter(&self) -> Option<SemaphorePermit<'_>> {
            self.0.acquire().await.ok()
        }

        /// Waits until no handler is at work, or [`DRAIN_TIMEOUT`] has passed.
        pub async fn drain(&self) {
            if tokio::time::timeout(DRAIN_TIMEOUT, self.0.acquire_many(MAX_IN_FLIGHT)).await.is_err() {
                tracing::warn!("replies still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
            }
        }
    }

    /// The reply to a chat message from `person` in `channel`, if the bot answers and the cooldowns let it.
    pub fn chat_reply(
        bot: &Bot,
        cooldowns: &Mutex<Cooldowns>,
        text: &str,
        audience: Audience<'_>,
        (channel, person, message): (&str, &str, &dyn Display),
    ) -> Option<Reply> {
        let outcome = bot.chat(text, audience);
        let reply = outcome.reply?;
        let admitted = cooldowns.lock().expect("not poisoned").admit(channel, person, &reply, Instant::now());
        tracing::info!(
            %message,
            channel,
            crisis = outcome.assessment.level.as_str(),
            rule = outcome.assessment.rule.unwrap_or("-"),
            category = outcome.assessment.category.map_or("-", |category| category.as_str()),
            topic = outcome.topics.first().map_or("-", |t| t.id.as_str()),
            admitted,
            "chat reply"
        );
        admitted.then_some(reply)
    }
}
