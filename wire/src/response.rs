//! An app's response head on the wire fast path, and how its body ends (RFC 9112 §6.3).

use crate::chunked::{ChunkedError, ChunkedScanner};
use crate::fields::{HeaderList, Headers};
use crate::limits::{MAX_HEADERS, content_length};

/// Why an app's response head is refused (the client gets a 502).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResponseError {
    /// Not an HTTP/1 response head.
    #[error("invalid response head: {0}")]
    Malformed(httparse::Error),
    /// A head without a status code or version.
    #[error("incomplete status line")]
    IncompleteStatusLine,
    /// Three digits under 100: not a status code (RFC 9110 §15; hyper refuses it too).
    #[error("status {0} is not a status code")]
    InvalidStatus(u16),
    /// A switch of protocols nobody asked for (the fast path never forwards an upgrade).
    #[error("101 Switching Protocols without an upgrade request")]
    SwitchingProtocols,
    /// A `Content-Length` that is not one decimal length (or a list of the same one).
    #[error("invalid Content-Length")]
    InvalidContentLength,
}

/// How the end of a response body is known.
#[derive(Clone, Debug)]
pub enum Framing {
    /// This many bytes are left (0: no body, or all sent).
    Length(u64),
    /// Chunked, passed through as it is.
    Chunked(ChunkedScanner),
    /// Until the app closes the connection.
    UntilClose,
}

impl Framing {
    /// How many of `bytes` belong to the body.
    pub fn take(&mut self, bytes: &[u8]) -> Result<usize, ChunkedError> {
        match self {
            Framing::Length(left) => {
                let take = (*left).min(bytes.len() as u64);
                *left -= take;
                // At most `bytes.len()`.
                Ok(take as usize)
            }
            Framing::Chunked(scanner) => scanner.scan(bytes),
            Framing::UntilClose => Ok(bytes.len()),
        }
    }

    /// Whether the whole body has been taken.
    pub fn is_done(&self) -> bool {
        match self {
            Framing::Length(left) => *left == 0,
            Framing::Chunked(scanner) => scanner.is_done(),
            Framing::UntilClose => false,
        }
    }
}

/// A final response head.
#[derive(Debug)]
pub struct ResponseHead<'b> {
    /// Three digits, 200 to 999 (never interim).
    pub status: u16,
    /// The minor version: 0 or 1.
    pub version: u8,
    /// The reason phrase as sent.
    pub reason: &'b str,
    /// Length of the head, its empty line included.
    pub head_len: usize,
    /// The fields as sent, in order.
    pub fields: HeaderList<'b>,
    /// How the body ends.
    pub framing: Framing,
    /// Both `Transfer-Encoding` and `Content-Length` were sent (the chunks are read; the
    /// connection is not reused).
    pub both_lengths: bool,
}

/// What the start of an app's answer holds.
#[derive(Debug)]
pub enum ResponsePart<'b> {
    /// Not a whole head yet.
    Partial,
    /// An interim response (`100 Continue`, `103 Early Hints`) of this length: dropped
    /// (the fast path never forwards `Expect`); the final one follows.
    Interim {
        /// Its length.
        head_len: usize,
    },
    /// The final response head.
    Final(ResponseHead<'b>),
}

/// Parses the response head at the start of `buf`, the answer to a (`is_head`) request.
pub fn parse(buf: &[u8], is_head: bool) -> Result<ResponsePart<'_>, ResponseError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(ResponsePart::Partial),
        Err(e) => return Err(ResponseError::Malformed(e)),
    };
    let (Some(status), Some(version)) = (response.code, response.version) else {
        return Err(ResponseError::IncompleteStatusLine);
    };
    if status < 100 {
        return Err(ResponseError::InvalidStatus(status));
    }
    if (100..200).contains(&status) {
        if status == 101 {
            return Err(ResponseError::SwitchingProtocols);
        }
        return Ok(ResponsePart::Interim { head_len });
    }
    let mut list = HeaderList::with_capacity(response.headers.len() + 4);
    for field in response.headers.iter() {
        list.push(field.name, field.value);
    }
    let both_lengths = list.contains("transfer-encoding") && list.contains("content-length");
    let framing = framing_of(&list, status, is_head)?;
    Ok(ResponsePart::Final(ResponseHead {
        status,
        version,
        reason: response.reason.unwrap_or_default(),
        head_len,
        fields: list,
        framing,
        both_lengths,
    }))
}

/// How the body of a response with `status` to a (`is_head`) request ends (RFC 9112 §6.3).
pub fn framing_of(
    list: &HeaderList<'_>,
    status: u16,
    is_head: bool,
) -> Result<Framing, ResponseError> {
    if is_head || status == 204 || status == 304 {
        return Ok(Framing::Length(0));
    }
    if list.contains("transfer-encoding") {
        let chunked = list
            .values("transfer-encoding")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .last()
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
        return Ok(if chunked {
            Framing::Chunked(ChunkedScanner::default())
        } else {
            Framing::UntilClose
        });
    }
    let mut length = None;
    for (_, value) in list
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
    {
        for part in value.split(|&b| b == b',') {
            match (content_length(part), length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Err(ResponseError::InvalidContentLength),
            }
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn final_head(raw: &[u8], is_head: bool) -> ResponseHead<'_> {
        match parse(raw, is_head) {
            Ok(ResponsePart::Final(head)) => head,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_framing_follows_rfc_9112_section_6_3() {
        let length = final_head(b"HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\n", false);
        assert!(matches!(length.framing, Framing::Length(5)));
        let chunked = final_head(
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
            false,
        );
        assert!(matches!(chunked.framing, Framing::Chunked(_)) && chunked.both_lengths);
        let not_last = final_head(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n",
            false,
        );
        assert!(matches!(not_last.framing, Framing::UntilClose));
        let head = final_head(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", true);
        assert!(matches!(head.framing, Framing::Length(0)));
        let none = final_head(b"HTTP/1.0 200 OK\r\n\r\n", false);
        assert!(matches!(none.framing, Framing::UntilClose) && none.version == 0);
    }

    #[test]
    fn bad_heads_and_lengths_are_refused() {
        for (raw, want) in [
            (
                &b"HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\n"[..],
                ResponseError::InvalidContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: +5\r\n\r\n",
                ResponseError::InvalidContentLength,
            ),
            (
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                ResponseError::SwitchingProtocols,
            ),
            // Found by fuzz/response_head: httparse reads any three digits.
            (b"HTTP/1.1 000 OK\r\n\r\n", ResponseError::InvalidStatus(0)),
            (
                b"HTTP/1.1 099 OK\r\ncontent-length: 0\r\n\r\n",
                ResponseError::InvalidStatus(99),
            ),
        ] {
            assert_eq!(parse(raw, false).err(), Some(want));
        }
        assert!(matches!(
            parse(b"HTTP/1.1 2000 OK\r\n\r\n", false),
            Err(ResponseError::Malformed(_))
        ));
    }

    #[test]
    fn an_interim_response_is_told_apart() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        assert!(matches!(
            parse(raw, false),
            Ok(ResponsePart::Interim { head_len: 25 })
        ));
        assert!(matches!(
            parse(&raw[..20], false),
            Ok(ResponsePart::Partial)
        ));
    }
}
