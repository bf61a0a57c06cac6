//! Login nonces that cost nothing until used: a nonce is 12 random bytes and its expiry,
//! authenticated with HMAC-SHA256 under a key derived from the session key, in hex (the
//! SIWE grammar allows only alphanumerics). Issuing one writes nothing; a login opens it
//! (any key of the ring, so a rotation does not void nonces in flight) and only then
//! records it as used, in the store, until it expires.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::KeyRing;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation: the session key also seals cookies.
const LABEL: &[u8] = b"grid-gateway login nonce v1";
const RANDOM: usize = 12;
const EXPIRY: usize = 8;
const TAG: usize = 16;
const BYTES: usize = RANDOM + EXPIRY + TAG;

/// Why a nonce does not open.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// Not a nonce this node issued under any of its keys, or altered since.
    #[error("the nonce was not issued by this node")]
    Forged,
    /// Issued here, but its time is over.
    #[error("the nonce expired")]
    Expired,
}

/// Seals and opens nonces with the key ring's signing halves.
#[derive(Clone)]
pub struct NonceSealer {
    /// One MAC per key, current first, each already keyed (cloning is cheaper than keying).
    macs: Vec<HmacSha256>,
}

impl std::fmt::Debug for NonceSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceSealer")
            .field("keys", &self.macs.len())
            .finish()
    }
}

impl NonceSealer {
    /// A sealer for every key of `keys`.
    pub fn new(keys: &KeyRing) -> NonceSealer {
        let macs = keys
            .all()
            .map(|key| {
                let mut mac = <HmacSha256 as Mac>::new_from_slice(key.signing())
                    .expect("HMAC takes a key of any length");
                mac.update(LABEL);
                mac
            })
            .collect();
        NonceSealer { macs }
    }

    /// A new nonce valid until `expires_at` (unix seconds).
    pub fn seal(&self, expires_at: u64) -> String {
        let mut bytes = [0u8; BYTES];
        rand::rng().fill_bytes(&mut bytes[..RANDOM]);
        bytes[RANDOM..RANDOM + EXPIRY].copy_from_slice(&expires_at.to_be_bytes());
        let mut mac = self.macs[0].clone();
        mac.update(&bytes[..RANDOM + EXPIRY]);
        let tag = mac.finalize().into_bytes();
        bytes[RANDOM + EXPIRY..].copy_from_slice(&tag[..TAG]);
        hex::encode(bytes)
    }

    /// Opens `nonce` at `now`: its expiry when it is authentic and unexpired.
    pub fn open(&self, nonce: &str, now: u64) -> Result<u64, NonceError> {
        let mut bytes = [0u8; BYTES];
        if nonce.len() != BYTES * 2 || hex::decode_to_slice(nonce, &mut bytes).is_err() {
            return Err(NonceError::Forged);
        }
        let (body, tag) = bytes.split_at(RANDOM + EXPIRY);
        let authentic = self.macs.iter().any(|mac| {
            let mut mac = mac.clone();
            mac.update(body);
            mac.verify_truncated_left(tag).is_ok()
        });
        if !authentic {
            return Err(NonceError::Forged);
        }
        let mut expiry = [0u8; EXPIRY];
        expiry.copy_from_slice(&body[RANDOM..]);
        let expires_at = u64::from_be_bytes(expiry);
        if expires_at <= now {
            return Err(NonceError::Expired);
        }
        Ok(expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cookie::Key;

    fn ring(current: &Key, previous: &[&Key]) -> KeyRing {
        KeyRing {
            current: current.clone(),
            previous: previous.iter().map(|k| (*k).clone()).collect(),
        }
    }

    #[test]
    fn a_nonce_opens_until_it_expires_and_not_after_any_change() {
        let key = Key::generate();
        let sealer = NonceSealer::new(&ring(&key, &[]));
        let nonce = sealer.seal(100);
        assert!(nonce.bytes().all(|b| b.is_ascii_alphanumeric()), "{nonce}");
        assert_eq!(sealer.open(&nonce, 99), Ok(100));
        assert_eq!(sealer.open(&nonce, 100), Err(NonceError::Expired));
        assert_ne!(sealer.seal(100), nonce, "random part");
        // Any flipped digit, a truncation, another key: forged.
        for i in 0..nonce.len() {
            let mut chars: Vec<char> = nonce.chars().collect();
            chars[i] = if chars[i] == '0' { '1' } else { '0' };
            let tampered: String = chars.into_iter().collect();
            assert_eq!(sealer.open(&tampered, 0), Err(NonceError::Forged), "{i}");
        }
        assert_eq!(sealer.open(&nonce[..70], 0), Err(NonceError::Forged));
        assert_eq!(sealer.open("neverissued123", 0), Err(NonceError::Forged));
        let other = NonceSealer::new(&ring(&Key::generate(), &[]));
        assert_eq!(other.open(&nonce, 0), Err(NonceError::Forged));
        // After a rotation the old key still opens nonces issued before it.
        let rotated = NonceSealer::new(&ring(&Key::generate(), &[&key]));
        assert_eq!(rotated.open(&nonce, 0), Ok(100));
    }
}
