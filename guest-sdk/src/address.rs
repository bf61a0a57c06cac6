//! Ethereum addresses: 20 bytes, parsed from `0x`-prefixed hex in any letter case.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 20-byte account address.
///
/// Equality compares the bytes, so `0xAbC…` and `0xabc…` are the same address: checksum
/// casing (EIP-55) is presentation, not identity. Displayed as lowercase `0x` hex.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub [u8; 20]);

/// Why a string is not an [`Address`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressParseError(String);

impl fmt::Display for AddressParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an address: expected 0x followed by 40 hex digits",
            self.0
        )
    }
}

impl std::error::Error for AddressParseError {}

impl Address {
    /// The zero address.
    pub const ZERO: Address = Address([0; 20]);

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl FromStr for Address {
    type Err = AddressParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || AddressParseError(s.to_owned());
        let hex = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .ok_or_else(err)?;
        if hex.len() != 40 {
            return Err(err());
        }
        let mut out = [0u8; 20];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or_else(err)?;
            let lo = hex_value(pair[1]).ok_or_else(err)?;
            out[i] = (hi << 4) | lo;
        }
        Ok(Address(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Into one buffer and one write: an address is formatted for every policy call
        // that carries one (per proxied request), and 20 `write!`s cost ten times this.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 42];
        text[..2].copy_from_slice(b"0x");
        for (i, b) in self.0.iter().enumerate() {
            text[2 + 2 * i] = HEX[usize::from(b >> 4)];
            text[3 + 2 * i] = HEX[usize::from(b & 0xf)];
        }
        // Only ASCII was written.
        f.write_str(core::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_does_not_change_identity() {
        let a: Address = "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01"
            .parse()
            .unwrap();
        let b: Address = "0xabcdef0123456789abcdef0123456789abcdef01"
            .parse()
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "0xabcdef0123456789abcdef0123456789abcdef01");
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "0x",
            "abcdef0123456789abcdef0123456789abcdef01",
            "0xabcdef0123456789abcdef0123456789abcdef0",
            "0xabcdef0123456789abcdef0123456789abcdef0g",
        ] {
            assert!(bad.parse::<Address>().is_err(), "{bad:?} parsed");
        }
    }
}
