//! Per-provider limits: requests in flight, requests per second, and a
//! pause after `429 Too Many Requests` (its `Retry-After`) that every
//! worker talking to that provider respects.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    in_flight: usize,
    next_at: Option<Instant>,
}

/// Limits shared by the workers of one run.
pub struct Limits {
    state: Mutex<HashMap<String, State>>,
    freed: Condvar,
    max_in_flight: usize,
    default_rate: f64,
    rates: HashMap<String, f64>,
    /// Longest `Retry-After` waited for.
    pub max_retry_after: Duration,
}

/// A slot of one provider; released when dropped.
pub struct Slot<'a> {
    limits: &'a Limits,
    provider: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut m = self.limits.state.lock().expect("limits lock");
        if let Some(s) = m.get_mut(&self.provider) {
            s.in_flight -= 1;
        }
        self.limits.freed.notify_all();
    }
}

impl Limits {
    /// `max_in_flight` per provider; `rates` per provider id (requests/s).
    pub fn new(
        max_in_flight: usize,
        default_rate: f64,
        rates: HashMap<String, f64>,
        max_retry_after: Duration,
    ) -> Limits {
        Limits {
            state: Mutex::new(HashMap::new()),
            freed: Condvar::new(),
            max_in_flight,
            default_rate,
            rates,
            max_retry_after,
        }
    }

    /// Wait for a slot of `provider` and for its next permitted start.
    pub fn acquire(&self, provider: &str) -> Slot<'_> {
        let rate = self
            .rates
            .get(provider)
            .copied()
            .unwrap_or(self.default_rate);
        let interval = if rate > 0.0 {
            Duration::from_secs_f64(1.0 / rate)
        } else {
            Duration::ZERO
        };
        let start = {
            let mut m = self.state.lock().expect("limits lock");
            loop {
                let s = m.entry(provider.to_string()).or_default();
                if s.in_flight < self.max_in_flight {
                    break;
                }
                m = self.freed.wait(m).expect("limits lock");
            }
            let s = m.get_mut(provider).expect("entry");
            s.in_flight += 1;
            let now = Instant::now();
            let start = s.next_at.map_or(now, |t| t.max(now));
            s.next_at = Some(start + interval);
            start
        };
        let now = Instant::now();
        if start > now {
            std::thread::sleep(start - now);
        }
        Slot {
            limits: self,
            provider: provider.to_string(),
        }
    }

    /// Hold every request to `provider` back for `d`.
    pub fn pause(&self, provider: &str, d: Duration) {
        let mut m = self.state.lock().expect("limits lock");
        let s = m.entry(provider.to_string()).or_default();
        let until = Instant::now() + d;
        s.next_at = Some(s.next_at.map_or(until, |t| t.max(until)));
    }
}
