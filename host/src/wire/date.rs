//! The `Date` header a proxy adds to a response that has none (RFC 9110 §6.6.1), formatted
//! once a second per HTTP worker ([`super::WorkerState`]).

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// One worker's `Date` value, formatted again when the second changes.
///
/// Not `Sync`: shared by reference by the connections of one worker only.
#[derive(Debug, Default)]
pub struct DateCache {
    /// The second formatted, and its text.
    cached: RefCell<(u64, String)>,
}

impl DateCache {
    /// Appends `date: <now>\r\n`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let now = SystemTime::now();
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let mut cached = self.cached.borrow_mut();
        let (at, text) = &mut *cached;
        if *at != second || text.is_empty() {
            *text = httpdate::fmt_http_date(now);
            *at = second;
        }
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_is_an_http_date_of_now() {
        let dates = DateCache::default();
        let before = SystemTime::now() - std::time::Duration::from_secs(1);
        let mut out = b"x: 1\r\n".to_vec();
        dates.write(&mut out);
        let field = std::str::from_utf8(&out).expect("ASCII");
        let value = field
            .strip_prefix("x: 1\r\ndate: ")
            .and_then(|rest| rest.strip_suffix("\r\n"))
            .expect("appended as one field");
        let date = httpdate::parse_http_date(value).expect("an IMF-fixdate");
        assert!(date >= before);
        // Written again from the same cache: the same form.
        let mut again = Vec::new();
        dates.write(&mut again);
        assert!(again.starts_with(b"date: ") && again.ends_with(b" GMT\r\n"));
    }
}
