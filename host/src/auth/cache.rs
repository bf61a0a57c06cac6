//! Opened tokens: a bounded map from a sealed token (cookie value or bearer token) to the
//! session id it opened to, so a request carrying a token seen before skips the AES-GCM
//! open (its key schedule, base64, a cookie jar) that was ~15 % of a proxied request.
//!
//! It caches the cryptographic step only, never a decision: the session record (revoked,
//! expiry) is still read from the store and checked against now on every request, so a
//! logout, a logout-all, a revocation or an expiry takes effect on the very next request
//! whether the token is cached or not. Only a token that opened is inserted: a forged or
//! tampered one is never cached, and costs a full open every time as before. The cache
//! belongs to the [`AuthService`](super::AuthService) with its key ring: a ring is never
//! changed in place (rotation restarts the node with the new ring), so no entry outlives
//! the keys that opened it.
//!
//! Bounded: [`CAPACITY`] entries over [`SHARDS`] mutex-guarded shards (a request holds
//! one shard for a hash-map probe), each evicting by the clock (second-chance) policy, so
//! a flood of distinct tokens cannot grow it, and only tokens the node sealed get in.
//! Looked up by a keyed SipHash of the token (a random key per process), then compared in
//! constant time.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Mutex;

use subtle::ConstantTimeEq;

/// Entries in all, at most. A token is ~80 bytes and a session id 32: ~1.5 MB when full.
pub const CAPACITY: usize = 8192;
/// Shards, each with its own lock and clock.
pub const SHARDS: usize = 16;

/// Token → session id.
pub(crate) struct TokenCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    hasher: RandomState,
}

struct Shard {
    /// The token's hash → its entry's position in `entries`.
    index: HashMap<u64, usize, BuildHasherDefault<Prehashed>>,
    entries: Vec<Entry>,
    /// The clock's hand: the next entry considered for eviction.
    hand: usize,
}

struct Entry {
    hash: u64,
    /// The cookie name it was sealed under (bound into the seal as associated data).
    name: &'static str,
    token: Box<str>,
    id: Box<str>,
    /// Read since the hand last passed: spared once.
    referenced: bool,
}

impl TokenCache {
    /// A cache of at most `capacity` entries (rounded up to a multiple of the shards).
    pub(crate) fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        TokenCache {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        index: HashMap::default(),
                        entries: Vec::new(),
                        hand: 0,
                    })
                })
                .collect(),
            per_shard,
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, token: &str) -> (u64, &Mutex<Shard>) {
        let hash = self.hasher.hash_one(token);
        // The shard's map uses the low bits (buckets) and the top 7 (tags): the shard
        // comes from bits in between.
        let shard = &self.shards[(hash >> 32) as usize % SHARDS];
        (hash, shard)
    }

    /// The session id `token` opened to under the cookie name `name`, if cached. A token
    /// cached under another name is not one of `name`'s (the name is bound into the seal):
    /// None, as opening it would answer.
    pub(crate) fn get(&self, name: &'static str, token: &str) -> Lookup {
        let (hash, shard) = self.shard(token);
        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        let Some(&at) = shard.index.get(&hash) else {
            return Lookup::Miss;
        };
        let entry = &mut shard.entries[at];
        if !bool::from(entry.token.as_bytes().ct_eq(token.as_bytes())) {
            // Another token with the same 64-bit hash: not this one.
            return Lookup::Miss;
        }
        if entry.name != name {
            return Lookup::OtherName;
        }
        entry.referenced = true;
        Lookup::Hit(entry.id.to_string())
    }

    /// Remembers that `token` opened to `id` under `name`. Call only with a token that
    /// opened.
    pub(crate) fn insert(&self, name: &'static str, token: &str, id: &str) {
        let (hash, shard) = self.shard(token);
        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        let entry = Entry {
            hash,
            name,
            token: token.into(),
            id: id.into(),
            referenced: false,
        };
        if let Some(&at) = shard.index.get(&hash) {
            // The same token again (two requests opened it at once), or another with the
            // same hash: the newer one takes the place.
            shard.entries[at] = entry;
            return;
        }
        if shard.entries.len() < self.per_shard {
            let at = shard.entries.len();
            shard.entries.push(entry);
            shard.index.insert(hash, at);
            return;
        }
        // Full: the clock. Every entry read since the hand passed is spared once, so this
        // ends within two turns.
        let len = shard.entries.len();
        loop {
            let at = shard.hand;
            shard.hand = (at + 1) % len;
            let victim = &mut shard.entries[at];
            if victim.referenced {
                victim.referenced = false;
                continue;
            }
            let old = victim.hash;
            *victim = entry;
            shard.index.remove(&old);
            shard.index.insert(hash, at);
            return;
        }
    }

    /// Entries held now.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).entries.len())
            .sum()
    }
}

/// What the cache knows of a token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Opened before, under this name, to this session id.
    Hit(String),
    /// Opened before under another cookie name: it does not open under this one.
    OtherName,
    /// Not known: open it.
    Miss,
}

/// The index's keys are already keyed SipHash values: used as they are.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_token_answers_its_id_under_its_own_name_only() {
        let cache = TokenCache::new(64);
        assert_eq!(cache.get("a", "token-1"), Lookup::Miss);
        cache.insert("a", "token-1", "session-1");
        assert_eq!(cache.get("a", "token-1"), Lookup::Hit("session-1".into()));
        assert_eq!(cache.get("b", "token-1"), Lookup::OtherName);
        assert_eq!(cache.get("a", "token-2"), Lookup::Miss);
        // A prefix or an extension of a cached token is another token.
        assert_eq!(cache.get("a", "token-"), Lookup::Miss);
        assert_eq!(cache.get("a", "token-10"), Lookup::Miss);
        cache.insert("a", "token-1", "session-1");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_bound_holds_under_a_flood_of_distinct_tokens_and_read_entries_survive_it() {
        let cache = TokenCache::new(CAPACITY);
        cache.insert("a", "kept", "session-kept");
        for i in 0..CAPACITY * 4 {
            // The kept token is read between insertions, as a live session's requests
            // would: the clock spares it.
            if i % (CAPACITY / SHARDS / 2) == 0 {
                assert_eq!(
                    cache.get("a", "kept"),
                    Lookup::Hit("session-kept".into()),
                    "evicted after {i} insertions"
                );
            }
            cache.insert("a", &format!("flood-{i}"), "session");
            assert!(cache.len() <= CAPACITY, "{} entries", cache.len());
        }
        assert_eq!(cache.len(), CAPACITY);
        // Each shard is full, and what it holds is still found.
        assert_eq!(
            cache.get("a", &format!("flood-{}", CAPACITY * 4 - 1)),
            Lookup::Hit("session".into())
        );
    }
}
