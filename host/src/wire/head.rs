//! Message heads on the wire, for both sides: the limits heads are read under, the one
//! parser of a `Content-Length` value, and the one writer of request, response and error
//! heads ([`HeadWriter`]).

use super::date::DateCache;
use crate::proxy::headers::HeaderList;

pub use grid_wire::limits::{KEPT_BUFFER, MAX_HEAD, MAX_HEADERS, READ_CHUNK, content_length};

/// Appends `n` in decimal (without the formatter's machinery: per field of every head).
pub fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Writes one HTTP/1.1 message head into a buffer: the start line, then each field in the
/// order written, then the empty line ([`HeadWriter::finish`]). Every head the wire path
/// sends (the request to the app, the response to the client, an error) is written here.
pub struct HeadWriter<'o> {
    out: &'o mut Vec<u8>,
}

impl<'o> HeadWriter<'o> {
    /// A request head, replacing what `out` held: `<method> <target> HTTP/1.1`.
    pub fn request(out: &'o mut Vec<u8>, method: &str, target: &str) -> Self {
        out.clear();
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        HeadWriter { out }
    }

    /// A response head, replacing what `out` held: `HTTP/1.1 <status> <reason>`. `status`
    /// has three digits (httparse and `http::StatusCode` read no other).
    pub fn response(out: &'o mut Vec<u8>, status: u16, reason: &str) -> Self {
        out.clear();
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(&[
            b'0' + (status / 100 % 10) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
            b' ',
        ]);
        out.extend_from_slice(reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        HeadWriter { out }
    }

    /// One field, `<name>: <value>`.
    pub fn field(&mut self, name: &[u8], value: &[u8]) -> &mut Self {
        self.out.extend_from_slice(name);
        self.out.extend_from_slice(b": ");
        self.out.extend_from_slice(value);
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// Every field of `list`, in its order.
    pub fn fields(&mut self, list: &HeaderList<'_>) -> &mut Self {
        for (name, value) in list.iter() {
            self.field(name.as_bytes(), value);
        }
        self
    }

    /// One field whose value `value` writes in place.
    pub fn field_with(&mut self, name: &[u8], value: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        self.out.extend_from_slice(name);
        self.out.extend_from_slice(b": ");
        value(self.out);
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// `content-length: <length>`.
    pub fn content_length(&mut self, length: u64) -> &mut Self {
        self.field_with(b"content-length", |out| write_decimal(out, length))
    }

    /// `connection: close`.
    pub fn close(&mut self) -> &mut Self {
        self.field(b"connection", b"close")
    }

    /// `date: <now>` (RFC 9110 §6.6.1), from the worker's `dates`.
    pub fn date(&mut self, dates: &DateCache) -> &mut Self {
        dates.write(self.out);
        self
    }

    /// Ends the head with its empty line; the body (if any) follows in the same buffer.
    pub fn finish(self) -> &'o mut Vec<u8> {
        self.out.extend_from_slice(b"\r\n");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_head_is_written_in_order() {
        let mut out = b"left over".to_vec();
        let mut list = HeaderList::with_capacity(1);
        list.push("x-app", b"1");
        let mut head = HeadWriter::response(&mut out, 404, "Not Found");
        head.fields(&list).content_length(3).close();
        head.finish();
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nx-app: 1\r\ncontent-length: 3\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn a_request_head_starts_with_its_request_line() {
        let mut out = Vec::new();
        HeadWriter::request(&mut out, "GET", "/a?b")
            .field(b"host", b"app:80")
            .content_length(0);
        assert_eq!(
            out,
            b"GET /a?b HTTP/1.1\r\nhost: app:80\r\ncontent-length: 0\r\n"
        );
    }
}
