//! Nonce issuance per client address: a token bucket per address (IPv6 by /64, since one
//! host commonly holds a whole /64), in a map of bounded size.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most addresses tracked at once; past it, buckets that have refilled are dropped, then
/// the least recently seen one.
pub const MAX_CLIENTS: usize = 16_384;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    seen: Instant,
}

/// Token buckets keyed by client address.
#[derive(Debug)]
pub struct IssueLimiter {
    /// Tokens per second; 0 turns the limit off.
    rate: f64,
    /// Bucket size.
    burst: f64,
    max_clients: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl IssueLimiter {
    /// `rate` requests per second per address, bursts of `burst`; `rate` 0: no limit.
    pub fn new(rate: f64, burst: u32, max_clients: usize) -> IssueLimiter {
        IssueLimiter {
            rate,
            burst: f64::from(burst.max(1)),
            max_clients: max_clients.max(1),
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for `client` at `now`: `Err(retry_after)` when it has none.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let key = group(client);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(&key) && buckets.len() >= self.max_clients {
            self.evict(&mut buckets, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            seen: now,
        });
        let refill = now.saturating_duration_since(bucket.seen).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.seen = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }

    /// Addresses tracked now.
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn evict(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        // A bucket that would be full again is the same as no bucket.
        let full_after = Duration::from_secs_f64(self.burst / self.rate);
        buckets.retain(|_, b| now.saturating_duration_since(b.seen) < full_after);
        if buckets.len() >= self.max_clients
            && let Some(oldest) = buckets.iter().min_by_key(|(_, b)| b.seen).map(|(k, _)| *k)
        {
            buckets.remove(&oldest);
        }
    }
}

/// The key of an address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64.
fn group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_its_rate_and_others_are_unaffected() {
        let limiter = IssueLimiter::new(2.0, 3, 4);
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.take(a, t0).is_ok());
        }
        let retry = limiter.take(a, t0).unwrap_err();
        assert!(retry <= Duration::from_millis(500), "{retry:?}");
        assert!(limiter.take("10.0.0.2".parse().unwrap(), t0).is_ok());
        assert!(limiter.take(a, t0 + Duration::from_millis(500)).is_ok());
        // One /64 is one client.
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::2".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.take(v6a, t0).is_ok());
        }
        assert!(limiter.take(v6b, t0).is_err());
    }

    #[test]
    fn the_map_stays_bounded() {
        let limiter = IssueLimiter::new(1.0, 1, 4);
        let t0 = Instant::now();
        for i in 0..100u8 {
            let _ = limiter.take(IpAddr::from([10, 0, 0, i]), t0);
        }
        assert!(limiter.len() <= 4, "{}", limiter.len());
        assert!(
            IssueLimiter::new(0.0, 1, 4)
                .take(IpAddr::from([1, 1, 1, 1]), t0)
                .is_ok()
        );
    }
}
