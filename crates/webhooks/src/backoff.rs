//! How long to wait before the next attempt: exponential, capped.
//!
//! Attempt 1 is sent at once; attempt n (n ≥ 2) waits `base · 2^(n-2)`, at
//! most `cap`. With the defaults (1 s, 5 minutes, 6 attempts) a delivery is
//! given up after 1 + 2 + 4 + 8 + 16 = 31 s of waiting.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base: Duration::from_secs(1), cap: Duration::from_secs(300), max_attempts: 6 }
    }
}

impl Backoff {
    /// The wait before `attempt` (1-based), or `None` when attempts are used up.
    pub fn before(&self, attempt: u32) -> Option<Duration> {
        if attempt == 0 || attempt > self.max_attempts.max(1) {
            return None;
        }
        if attempt == 1 {
            return Some(Duration::ZERO);
        }
        let factor = 1u32.checked_shl(attempt - 2).unwrap_or(u32::MAX);
        Some(self.base.checked_mul(factor).unwrap_or(self.cap).min(self.cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_attempts_are_bounded() {
        let b = Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(10), max_attempts: 6 };
        let waits: Vec<_> = (1..=7).map(|a| b.before(a).map(|d| d.as_secs())).collect();
        assert_eq!(waits, vec![Some(0), Some(1), Some(2), Some(4), Some(8), Some(10), None]);
        assert_eq!(b.before(0), None);
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let b = Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(300), max_attempts: u32::MAX };
        assert_eq!(b.before(40), Some(Duration::from_secs(300)));
        assert_eq!(b.before(u32::MAX), Some(Duration::from_secs(300)));
    }
}
