//! Kubernetes resource quantities ("500m", "2", "4Gi", "1.5G", "1e9"), as written in
//! pod specs and in the gateway's HTTP API, turned into the integers the WIT carries:
//! cpu in millicores, memory and storage in bytes.

use core::fmt;

/// Why a string is not a quantity, or does not fit the unit asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantityError {
    input: String,
    reason: &'static str,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a valid quantity: {}",
            self.input, self.reason
        )
    }
}

impl std::error::Error for QuantityError {}

/// Parses a cpu quantity into millicores, rounding a finer value up to 1m as Kubernetes does
/// ("100m" → 100, "2" → 2000, "0.5" → 500, "1.0001" → 1001).
pub fn parse_cpu_millis(input: &str) -> Result<u64, QuantityError> {
    parse_scaled(input, 1000)
}

/// Parses a memory or storage quantity into bytes, rounding a fraction of a byte up
/// ("4Gi" → 4294967296, "1G" → 1000000000, "1.5Ki" → 1536, "128974848", "129e6").
pub fn parse_bytes(input: &str) -> Result<u64, QuantityError> {
    parse_scaled(input, 1)
}

/// Formats millicores the way Kubernetes prints them: whole cores without a suffix, else `m`.
pub fn format_cpu_millis(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// Formats bytes with the largest binary suffix that divides them exactly ("4Gi", "1536", "3Mi").
pub fn format_bytes(bytes: u64) -> String {
    const SUFFIXES: [(&str, u64); 6] = [
        ("Ei", 1 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (suffix, unit) in SUFFIXES {
        if bytes != 0 && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// value(input) × `factor`, rounded up, as an integer.
fn parse_scaled(input: &str, factor: u64) -> Result<u64, QuantityError> {
    let err = |reason| QuantityError {
        input: input.to_owned(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s.len() > 64 {
        return Err(err("too long"));
    }
    // Number part: digits with at most one decimal point. Negative quantities make no
    // sense for a request of capacity, so a sign is refused rather than carried.
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    if number.is_empty() || number == "." {
        return Err(err("expected a number first"));
    }
    let (int_part, frac_part) = match number.split_once('.') {
        // Trailing zeros of a fraction change nothing but would overflow the mantissa.
        Some((i, f)) => (i, f.trim_end_matches('0')),
        None => (number, ""),
    };
    if frac_part.contains('.') {
        return Err(err("more than one decimal point"));
    }
    let mut mantissa: u128 = 0;
    for c in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(u128::from(c - b'0')))
            .ok_or_else(|| err("too large"))?;
    }
    // value = mantissa × 10^exp10 × binary
    let mut exp10: i32 = -(frac_part.len() as i32);
    let mut binary: u128 = 1;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => binary = 1 << 10,
        "Mi" => binary = 1 << 20,
        "Gi" => binary = 1 << 30,
        "Ti" => binary = 1 << 40,
        "Pi" => binary = 1 << 50,
        "Ei" => binary = 1 << 60,
        other => {
            let exponent = other
                .strip_prefix('e')
                .or_else(|| other.strip_prefix('E'))
                .ok_or_else(|| err("unknown suffix"))?;
            let exponent: i32 = exponent.parse().map_err(|_| err("bad exponent"))?;
            if !(-30..=30).contains(&exponent) {
                return Err(err("exponent out of range"));
            }
            exp10 += exponent;
        }
    }
    let mut value = mantissa
        .checked_mul(binary)
        .and_then(|v| v.checked_mul(u128::from(factor)))
        .ok_or_else(|| err("too large"))?;
    if exp10 >= 0 {
        for _ in 0..exp10 {
            value = value.checked_mul(10).ok_or_else(|| err("too large"))?;
        }
    } else {
        let mut divisor: u128 = 1;
        for _ in 0..(-exp10) {
            divisor = match divisor.checked_mul(10) {
                Some(d) => d,
                // Dividing by more than u128 can hold leaves at most a fraction: round up.
                None => return Ok(u64::from(value != 0)),
            };
        }
        value = value.div_ceil(divisor);
    }
    u64::try_from(value).map_err(|_| err("too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities() {
        assert_eq!(parse_cpu_millis("2").unwrap(), 2000);
        assert_eq!(parse_cpu_millis("500m").unwrap(), 500);
        assert_eq!(parse_cpu_millis("0.5").unwrap(), 500);
        assert_eq!(parse_cpu_millis("1.0001").unwrap(), 1001);
        assert_eq!(parse_cpu_millis("100u").unwrap(), 1);
        assert_eq!(parse_cpu_millis("0").unwrap(), 0);
        assert_eq!(parse_cpu_millis("2e3").unwrap(), 2_000_000);
        let long_zeros = format!("1.{}", "0".repeat(60));
        assert_eq!(parse_cpu_millis(&long_zeros).unwrap(), 1000);
    }

    #[test]
    fn byte_quantities() {
        assert_eq!(parse_bytes("4Gi").unwrap(), 4 << 30);
        assert_eq!(parse_bytes("1G").unwrap(), 1_000_000_000);
        assert_eq!(parse_bytes("1.5Ki").unwrap(), 1536);
        assert_eq!(parse_bytes("128974848").unwrap(), 128_974_848);
        assert_eq!(parse_bytes("129e6").unwrap(), 129_000_000);
        assert_eq!(parse_bytes("123Mi").unwrap(), 123 << 20);
        assert_eq!(
            parse_bytes("1m").unwrap(),
            1,
            "a fraction of a byte rounds up"
        );
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            "",
            "-1",
            "Gi",
            "1.2.3",
            "4GB",
            "1x",
            "1e",
            "1e99",
            ".",
            "99999999999Ei",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn formats_round_trip() {
        for bytes in [0u64, 1536, 3 << 20, 4 << 30, 12345] {
            assert_eq!(parse_bytes(&format_bytes(bytes)).unwrap(), bytes);
        }
        for millis in [0u64, 250, 1000, 2500] {
            assert_eq!(
                parse_cpu_millis(&format_cpu_millis(millis)).unwrap(),
                millis
            );
        }
        assert_eq!(format_bytes(4 << 30), "4Gi");
        assert_eq!(format_cpu_millis(2000), "2");
    }
}
