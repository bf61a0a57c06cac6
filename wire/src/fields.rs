//! Header fields as the gateway rewrites them, written once for both header containers it
//! forwards with: hyper's `HeaderMap` (the general path) and the wire fast path's
//! [`HeaderList`] (headers as they arrived, in order, borrowed from the read buffer).

use std::borrow::Cow;

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// What header rewriting needs of a set of headers. Names are lower case here;
/// implementations compare case-insensitively. Values that are not visible ASCII are
/// skipped by [`Headers::values`] (as `HeaderValue::to_str` does) but still removed.
pub trait Headers {
    /// Every value of `name`, in order.
    fn values<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s str>;
    /// Whether `name` is present at all.
    fn contains(&self, name: &str) -> bool;
    /// Removes every `name`.
    fn remove(&mut self, name: &str);
    /// Replaces every `name` with one `value`; a value that is not a valid header value
    /// removes the header instead.
    fn set(&mut self, name: &'static str, value: &str);
    /// Removes every header whose name `doomed` says yes to (names as they are held: lower
    /// case in a `HeaderMap`, as sent in a `HeaderList`; `doomed` compares without case).
    fn remove_names(&mut self, doomed: impl Fn(&str) -> bool);
    /// Removes the values of `name` that `doomed` says yes to (as bytes: values that are
    /// not text are judged too), keeping the others in order; returns how many went.
    fn remove_values(&mut self, name: &str, doomed: impl Fn(&[u8]) -> bool) -> usize;
}

impl Headers for HeaderMap {
    fn values<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s str> {
        self.get_all(name).iter().filter_map(|v| v.to_str().ok())
    }

    fn contains(&self, name: &str) -> bool {
        self.contains_key(name)
    }

    fn remove(&mut self, name: &str) {
        HeaderMap::remove(self, name);
    }

    fn set(&mut self, name: &'static str, value: &str) {
        match HeaderValue::from_str(value) {
            Ok(v) => {
                self.insert(HeaderName::from_static(name), v);
            }
            Err(_) => {
                HeaderMap::remove(self, name);
            }
        }
    }

    fn remove_names(&mut self, doomed: impl Fn(&str) -> bool) {
        let names: Vec<HeaderName> = self
            .keys()
            .filter(|name| doomed(name.as_str()))
            .cloned()
            .collect();
        for name in names {
            HeaderMap::remove(self, name);
        }
    }

    fn remove_values(&mut self, name: &str, doomed: impl Fn(&[u8]) -> bool) -> usize {
        if !self.get_all(name).iter().any(|v| doomed(v.as_bytes())) {
            return 0;
        }
        let Ok(key) = HeaderName::from_bytes(name.as_bytes()) else {
            return 0;
        };
        let values: Vec<HeaderValue> = self.get_all(&key).iter().cloned().collect();
        HeaderMap::remove(self, &key);
        let mut removed = 0;
        for value in values {
            if doomed(value.as_bytes()) {
                removed += 1;
            } else {
                self.append(key.clone(), value);
            }
        }
        removed
    }
}

/// Headers as they came off the wire: names as sent, values as bytes, order kept.
/// Borrows from the buffer the head was read into; what the gateway sets is owned.
#[derive(Debug, Default)]
pub struct HeaderList<'b> {
    entries: Vec<(&'b str, Cow<'b, [u8]>)>,
}

impl<'b> HeaderList<'b> {
    /// A list of `capacity` headers.
    pub fn with_capacity(capacity: usize) -> Self {
        HeaderList {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Appends one header.
    pub fn push(&mut self, name: &'b str, value: &'b [u8]) {
        self.entries.push((name, Cow::Borrowed(value)));
    }

    /// Every header, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(n, v)| (*n, v.as_ref()))
    }
}

impl Headers for HeaderList<'_> {
    fn values<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s str> {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| visible_ascii(v))
    }

    fn contains(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    fn remove(&mut self, name: &str) {
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    fn set(&mut self, name: &'static str, value: &str) {
        self.remove(name);
        if HeaderValue::from_str(value).is_ok() {
            self.entries
                .push((name, Cow::Owned(value.as_bytes().to_vec())));
        }
    }

    fn remove_names(&mut self, doomed: impl Fn(&str) -> bool) {
        self.entries.retain(|(name, _)| !doomed(name));
    }

    fn remove_values(&mut self, name: &str, doomed: impl Fn(&[u8]) -> bool) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|(n, v)| !(n.eq_ignore_ascii_case(name) && doomed(v)));
        before - self.entries.len()
    }
}

/// `value` as text when it is what `HeaderValue::to_str` accepts (visible ASCII, spaces and
/// tabs).
fn visible_ascii(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}
