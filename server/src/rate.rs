//! Per-connection message rate: a token bucket that takes the time as input,
//! so it is tested without clocks or sleeps.

use std::time::Instant;

/// Allows `per_second` messages per second on average and bursts of up to
/// one second's worth.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(per_second: u32, now: Instant) -> Self {
        let per_second = f64::from(per_second.max(1));
        TokenBucket {
            per_second,
            tokens: per_second,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_of_one_seconds_worth_passes_then_the_next_is_refused() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, t0);
        assert!((0..10).all(|_| bucket.try_take(t0)));
        assert!(!bucket.try_take(t0));
    }

    #[test]
    fn tokens_come_back_at_the_configured_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, t0);
        while bucket.try_take(t0) {}
        let later = t0 + Duration::from_millis(250);
        let granted = (0..10).filter(|_| bucket.try_take(later)).count();
        assert_eq!(granted, 2, "250 ms at 10/s refills two and a half tokens");
    }

    #[test]
    fn idle_time_does_not_bank_more_than_one_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(5, t0);
        let later = t0 + Duration::from_secs(60);
        let granted = (0..100).filter(|_| bucket.try_take(later)).count();
        assert_eq!(granted, 5);
    }
}
