//! Token amounts: a u256 in the token's smallest unit, written as a decimal string
//! everywhere it crosses a boundary (WIT, JSON, the chain's `uint256`).

use core::fmt;
use core::str::FromStr;

use ruint::aliases::U256;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount of the payment token in its smallest unit (like wei for ether).
///
/// Arithmetic is checked: every operation that could overflow returns `Option`,
/// so a policy cannot silently wrap a price around to a small number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(U256);

/// Why a string is not an [`Amount`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmountParseError(String);

impl fmt::Display for AmountParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an amount: expected a decimal integer between 0 and 2^256-1",
            self.0
        )
    }
}

impl std::error::Error for AmountParseError {}

impl Amount {
    /// Zero tokens.
    pub const ZERO: Amount = Amount(U256::ZERO);
    /// The largest amount a u256 holds.
    pub const MAX: Amount = Amount(U256::MAX);

    /// An amount from a machine integer.
    pub const fn from_u128(value: u128) -> Self {
        Amount(U256::from_limbs([value as u64, (value >> 64) as u64, 0, 0]))
    }

    /// The underlying 256-bit integer (ruint), for callers that need more than the helpers.
    pub const fn as_u256(&self) -> U256 {
        self.0
    }

    /// Wraps a 256-bit integer.
    pub const fn from_u256(value: U256) -> Self {
        Amount(value)
    }

    /// `self + rhs`, or `None` on overflow.
    pub fn checked_add(self, rhs: Amount) -> Option<Amount> {
        self.0.checked_add(rhs.0).map(Amount)
    }

    /// `self - rhs`, or `None` when `rhs` is larger.
    pub fn checked_sub(self, rhs: Amount) -> Option<Amount> {
        self.0.checked_sub(rhs.0).map(Amount)
    }

    /// `self * factor`, or `None` on overflow.
    pub fn checked_mul(self, factor: u64) -> Option<Amount> {
        self.0.checked_mul(U256::from(factor)).map(Amount)
    }

    /// `self * rhs`, or `None` on overflow.
    pub fn checked_mul_amount(self, rhs: Amount) -> Option<Amount> {
        self.0.checked_mul(rhs.0).map(Amount)
    }

    /// `self / divisor`, rounded down, or `None` when dividing by zero.
    pub fn checked_div(self, divisor: u64) -> Option<Amount> {
        if divisor == 0 {
            None
        } else {
            Some(Amount(self.0 / U256::from(divisor)))
        }
    }

    /// `self * numerator / denominator` with the product taken at 512 bits, rounded up,
    /// so a price scaled by a fraction (a discount, a partial hour) never overflows in the
    /// middle and never rounds in the buyer's favour. `None` when the result does not fit
    /// or `denominator` is zero.
    pub fn mul_div_ceil(self, numerator: u64, denominator: u64) -> Option<Amount> {
        if denominator == 0 {
            return None;
        }
        let (q, r) = self
            .0
            .widening_mul::<256, 4, 512, 8>(U256::from(numerator))
            .div_rem(ruint::Uint::<512, 8>::from(denominator));
        let q = if r.is_zero() {
            q
        } else {
            q.checked_add(ruint::Uint::<512, 8>::from(1u8))?
        };
        U256::checked_from_limbs_slice(q.as_limbs()).map(Amount)
    }

    /// True for zero.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

impl From<u64> for Amount {
    fn from(value: u64) -> Self {
        Amount(U256::from(value))
    }
}

impl From<U256> for Amount {
    fn from(value: U256) -> Self {
        Amount(value)
    }
}

impl From<Amount> for U256 {
    fn from(value: Amount) -> Self {
        value.0
    }
}

impl FromStr for Amount {
    type Err = AmountParseError;

    /// Parses a plain decimal integer. Signs, spaces, `0x`, exponents and fractions are
    /// refused: an amount that means something other than what it looks like is worse
    /// than an error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 78 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountParseError(s.to_owned()));
        }
        U256::from_str_radix(s, 10)
            .map(Amount)
            .map_err(|_| AmountParseError(s.to_owned()))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    /// Accepts a decimal string, and for convenience in hand-written fixtures and settings
    /// a JSON integer that fits in u64.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Number(u64),
        }
        match Repr::deserialize(deserializer)? {
            Repr::Text(s) => s.parse().map_err(serde::de::Error::custom),
            Repr::Number(n) => Ok(Amount::from(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_full_range() {
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        let a: Amount = max.parse().unwrap();
        assert_eq!(a, Amount::MAX);
        assert_eq!(a.to_string(), max);
        assert_eq!("0".parse::<Amount>().unwrap(), Amount::ZERO);
    }

    #[test]
    fn refuses_what_is_not_a_plain_decimal() {
        for bad in [
            "",
            "-1",
            "+1",
            "1.5",
            "1e18",
            "0x10",
            " 1",
            "abc",
            "115792089237316195423570985008687907853269984665640564039457584007913129639936",
        ] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        assert_eq!(Amount::MAX.checked_add(Amount::from(1)), None);
        assert_eq!(Amount::ZERO.checked_sub(Amount::from(1)), None);
        assert_eq!(Amount::MAX.checked_mul(2), None);
        assert_eq!(Amount::from(7).checked_mul(6), Some(Amount::from(42)));
        assert_eq!(Amount::from(7).checked_div(0), None);
    }

    #[test]
    fn mul_div_rounds_up_and_survives_wide_products() {
        assert_eq!(Amount::from(10).mul_div_ceil(1, 3), Some(Amount::from(4)));
        assert_eq!(Amount::from(9).mul_div_ceil(1, 3), Some(Amount::from(3)));
        // MAX * 2 / 2 overflows at 256 bits but not at 512.
        assert_eq!(Amount::MAX.mul_div_ceil(2, 2), Some(Amount::MAX));
        assert_eq!(Amount::MAX.mul_div_ceil(3, 2), None);
        assert_eq!(Amount::from(1).mul_div_ceil(1, 0), None);
    }

    #[test]
    fn serde_uses_decimal_strings() {
        let a = Amount::from(1_000_000_000_000_000_000u64);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            "\"1000000000000000000\""
        );
        let back: Amount = serde_json::from_str("\"1000000000000000000\"").unwrap();
        assert_eq!(back, a);
        let from_number: Amount = serde_json::from_str("5").unwrap();
        assert_eq!(from_number, Amount::from(5));
        assert!(serde_json::from_str::<Amount>("\"-5\"").is_err());
    }
}
