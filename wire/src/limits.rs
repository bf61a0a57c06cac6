//! The limits message heads are read under, and the one parser of a `Content-Length` value.

/// Largest message head read: a client's request head (a larger one goes to hyper, whose
/// own limit is higher) or an app's response head (a larger one is a 502).
pub const MAX_HEAD: usize = 64 * 1024;

/// Most header fields in a message head.
pub const MAX_HEADERS: usize = 100;

/// Bytes moved per read of a body.
pub const READ_CHUNK: usize = 64 * 1024;

/// Capacity a connection's buffers keep while it waits for its next request: heads and
/// small bodies fit; a connection that read one large head or streamed a large body does
/// not hold that much memory while it idles.
pub const KEPT_BUFFER: usize = 16 * 1024;

/// A `Content-Length` value: 1 to 19 digits (so it fits a u64), nothing else.
pub fn content_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_takes_digits_only() {
        assert_eq!(content_length(b" 42 "), Some(42));
        for bad in [&b""[..], b"+1", b"1 2", b"0x1", b"99999999999999999999"] {
            assert_eq!(content_length(bad), None, "{bad:?}");
        }
    }
}
