//! The chunked scanner (RFC 9112 §7.1): any bytes are scanned without a panic, and the
//! verdict does not depend on how the body is cut into reads — scanned whole, or in two
//! pieces at a cut the first two bytes choose, it ends at the same byte or fails alike.
#![no_main]

use grid_wire::chunked::ChunkedScanner;
use libfuzzer_sys::fuzz_target;

/// Scans `pieces` in turn: how many bytes belong to the body, and whether it ended; None
/// when it is malformed.
fn scan(pieces: &[&[u8]]) -> Option<(usize, bool)> {
    let mut scanner = ChunkedScanner::default();
    let mut taken = 0;
    for piece in pieces {
        let n = scanner.scan(piece).ok()?;
        assert!(n <= piece.len());
        taken += n;
        if n < piece.len() {
            assert!(scanner.is_done());
            break;
        }
    }
    Some((taken, scanner.is_done()))
}

fuzz_target!(|data: &[u8]| {
    let Some((cut, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let cut = usize::from(u16::from_le_bytes(*cut)).min(body.len());
    let whole = scan(&[body]);
    let split = scan(&[&body[..cut], &body[cut..]]);
    assert_eq!(whole, split, "cut at {cut}");
    if let Some((taken, done)) = whole {
        assert!(done || taken == body.len());
        if done {
            assert!(body[..taken].ends_with(b"\r\n"));
        }
    }
});
