//! How hard the bot tries to deliver a reply: a crisis reply is retried through transient failures for up to
//! [`CRISIS_RETRY_BUDGET`]; any other reply is retried once at most. Pure, so the policy is tested without a
//! network; the adapters run it ([`crate::platforms`]) and count what they finally give up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a crisis reply is retried before the bot gives up on it.
pub const CRISIS_RETRY_BUDGET: Duration = Duration::from_secs(120);
/// The first wait after a failure with no `retry_after`; it doubles after each failure.
const FIRST_WAIT: Duration = Duration::from_secs(1);
const LONGEST_WAIT: Duration = Duration::from_secs(30);
/// The longest wait worth taking for a reply that is not urgent: a later answer would be out of place.
const LONGEST_WAIT_NOT_URGENT: Duration = Duration::from_secs(10);

/// Why one attempt to send a reply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendFailure {
    /// A server error, rate limit or lost connection: the same request may succeed later.
    #[error("{reason} (transient)")]
    Transient { reason: String, retry_after: Option<Duration> },
    /// A refusal that no retry can change (no permission, channel gone).
    #[error("{reason}")]
    Permanent { reason: String },
}

/// The wait before the next attempt after `failures` failed ones (the last being `failure`) over `elapsed`, or
/// `None` to give up.
pub fn next_attempt(urgent: bool, failures: u32, elapsed: Duration, failure: &SendFailure) -> Option<Duration> {
    let SendFailure::Transient { retry_after, .. } = failure else { return None };
    let doubling = FIRST_WAIT.saturating_mul(1 << failures.saturating_sub(1).min(16)).min(LONGEST_WAIT);
    let wait = retry_after.unwrap_or(doubling);
    if urgent {
        (elapsed + wait <= CRISIS_RETRY_BUDGET).then_some(wait)
    } else {
        (failures == 1 && wait <= LONGEST_WAIT_NOT_URGENT).then_some(wait)
    }
}

static GIVEN_UP: AtomicU64 = AtomicU64::new(0);

/// Replies given up since the start (kept for the metrics endpoint).
pub fn given_up() -> u64 {
    GIVEN_UP.load(Ordering::Relaxed)
}

/// Counts a reply given up.
pub fn count_given_up() {
    GIVEN_UP.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient(retry_after: Option<Duration>) -> SendFailure {
        SendFailure::Transient { reason: "HTTP 500".into(), retry_after }
    }

    #[test]
    fn crisis_replies_are_retried_with_backoff_for_two_minutes() {
        let second = Duration::from_secs(1);
        assert_eq!(next_attempt(true, 1, Duration::ZERO, &transient(None)), Some(second));
        assert_eq!(next_attempt(true, 2, second, &transient(None)), Some(2 * second));
        assert_eq!(next_attempt(true, 3, 3 * second, &transient(None)), Some(4 * second));
        assert_eq!(next_attempt(true, 9, 60 * second, &transient(None)), Some(LONGEST_WAIT));
        assert_eq!(next_attempt(true, 12, 100 * second, &transient(None)), None, "past the budget");
        let total: Duration = (1..)
            .scan(Duration::ZERO, |elapsed, failures| {
                let wait = next_attempt(true, failures, *elapsed, &transient(None))?;
                *elapsed += wait;
                Some(wait)
            })
            .sum();
        assert!(total <= CRISIS_RETRY_BUDGET && total >= CRISIS_RETRY_BUDGET - LONGEST_WAIT, "{total:?}");
    }

    #[test]
    fn retry_after_is_honoured() {
        let wait = Duration::from_millis(2500);
        assert_eq!(next_attempt(true, 1, Duration::ZERO, &transient(Some(wait))), Some(wait));
        assert_eq!(next_attempt(false, 1, Duration::ZERO, &transient(Some(wait))), Some(wait));
        let long = Duration::from_secs(60);
        assert_eq!(next_attempt(false, 1, Duration::ZERO, &transient(Some(long))), None, "too late for an FAQ");
        assert_eq!(next_attempt(true, 1, Duration::from_secs(90), &transient(Some(long))), None, "past the budget");
    }

    #[test]
    fn other_replies_are_retried_once_and_refusals_never() {
        assert!(next_attempt(false, 1, Duration::ZERO, &transient(None)).is_some());
        assert_eq!(next_attempt(false, 2, Duration::from_secs(1), &transient(None)), None);
        let refused = SendFailure::Permanent { reason: "HTTP 403".into() };
        assert_eq!(next_attempt(true, 1, Duration::ZERO, &refused), None);
    }
}
