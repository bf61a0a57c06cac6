//! Where a chunked body (RFC 9112 §7.1) ends, found while its bytes pass through unchanged:
//! the fast path forwards an app's chunks as they are and only needs to know when the
//! message is over (to reuse the connection, or to refuse a malformed one).

/// A malformed chunked body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed chunked body")]
pub struct ChunkedError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size.
    Size,
    /// Whitespace after the size, before `;` or CR.
    SizeSpace,
    /// `;extensions` up to CR.
    Extension,
    /// The LF ending a size line.
    SizeLf,
    /// Chunk data.
    Data,
    /// The CR after chunk data.
    DataCr,
    /// The LF after chunk data.
    DataLf,
    /// The start of a trailer line, or of the final empty line.
    TrailerStart,
    /// Inside a trailer field's name.
    TrailerName,
    /// Inside a trailer field's value (after its `:`).
    TrailerValue,
    /// The LF ending a trailer field line.
    TrailerLf,
    /// The LF ending the final empty line.
    EndLf,
    /// The body is complete.
    Done,
}

/// Follows a chunked body across reads.
#[derive(Clone, Debug)]
pub struct ChunkedScanner {
    state: State,
    /// The current chunk's size while reading it, then what is left of its data.
    size: u64,
    digits: u8,
}

impl Default for ChunkedScanner {
    fn default() -> Self {
        ChunkedScanner {
            state: State::Size,
            size: 0,
            digits: 0,
        }
    }
}

impl ChunkedScanner {
    /// Whether the last chunk and the trailer section have been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Scans the next `bytes` of the body; returns how many of them belong to it (all of
    /// them, unless the body ends inside `bytes`).
    pub fn scan(&mut self, bytes: &[u8]) -> Result<usize, ChunkedError> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            self.state = match self.state {
                State::Done => return Ok(i),
                State::Size => match (b as char).to_digit(16) {
                    // 16 hex digits hold any u64; more is an attack on the counter.
                    Some(_) if self.digits == 16 => return Err(ChunkedError),
                    Some(d) => {
                        self.size = self.size << 4 | u64::from(d);
                        self.digits += 1;
                        State::Size
                    }
                    None if self.digits == 0 => return Err(ChunkedError),
                    None => match b {
                        b'\r' => State::SizeLf,
                        b';' => State::Extension,
                        b' ' | b'\t' => State::SizeSpace,
                        _ => return Err(ChunkedError),
                    },
                },
                State::SizeSpace => match b {
                    b' ' | b'\t' => State::SizeSpace,
                    b';' => State::Extension,
                    b'\r' => State::SizeLf,
                    _ => return Err(ChunkedError),
                },
                State::Extension => match b {
                    b'\r' => State::SizeLf,
                    _ if is_control(b) => return Err(ChunkedError),
                    _ => State::Extension,
                },
                State::SizeLf if b == b'\n' => {
                    self.digits = 0;
                    if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    }
                }
                State::Data => {
                    let take = self.size.min((bytes.len() - i) as u64);
                    self.size -= take;
                    // `take` is at most what is left of `bytes`, so it fits in usize.
                    i += take as usize;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::Size,
                State::TrailerStart if b == b'\r' => State::EndLf,
                // A field line: a name, a colon, a value; no control bytes.
                State::TrailerStart | State::TrailerName if b == b':' => {
                    if self.state == State::TrailerStart {
                        return Err(ChunkedError);
                    }
                    State::TrailerValue
                }
                State::TrailerStart | State::TrailerName if is_control(b) => {
                    return Err(ChunkedError);
                }
                State::TrailerStart | State::TrailerName => State::TrailerName,
                State::TrailerValue if b == b'\r' => State::TrailerLf,
                State::TrailerValue if is_control(b) => return Err(ChunkedError),
                State::TrailerValue => State::TrailerValue,
                State::TrailerLf if b == b'\n' => State::TrailerStart,
                State::EndLf if b == b'\n' => State::Done,
                State::SizeLf | State::DataCr | State::DataLf | State::TrailerLf | State::EndLf => {
                    return Err(ChunkedError);
                }
            };
            i += 1;
        }
        Ok(i)
    }
}

/// Control bytes other than a tab: never part of a chunk extension or a field line.
fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"5;ext=1\r\nhello\r\n7 \t;x=\"q\"\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";

    #[test]
    fn a_whole_body_ends_where_it_ends() {
        let mut scanner = ChunkedScanner::default();
        let mut bytes = BODY.to_vec();
        bytes.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(scanner.scan(&bytes), Ok(BODY.len()));
        assert!(scanner.is_done());
    }

    #[test]
    fn a_body_split_at_every_byte_is_followed() {
        let mut scanner = ChunkedScanner::default();
        for (n, byte) in BODY.iter().enumerate() {
            assert!(!scanner.is_done(), "done early at byte {n}");
            assert_eq!(scanner.scan(std::slice::from_ref(byte)), Ok(1), "byte {n}");
        }
        assert!(scanner.is_done());
    }

    #[test]
    fn an_empty_body_is_the_last_chunk_alone() {
        let mut scanner = ChunkedScanner::default();
        assert_eq!(scanner.scan(b"0\r\n\r\n"), Ok(5));
        assert!(scanner.is_done());
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\nhello",
            b"5\r\nhelloX",
            b"11111111111111111\r\n",
            b"0\r\nbad\nline",
            b"5 junk\r\n",
            b"5;a\x00b\r\n",
            b"0\r\nno colon here\r\n",
            b"0\r\n: no name\r\n",
        ] {
            assert_eq!(
                ChunkedScanner::default().scan(bad),
                Err(ChunkedError),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
