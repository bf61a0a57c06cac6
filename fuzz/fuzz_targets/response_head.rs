//! An app's response head and its body's framing: any bytes are parsed without a panic; a
//! final head's framing follows RFC 9112 §6.3, and its body is taken, in pieces, never past
//! the bytes given. The first byte says whether the request was a HEAD and where to cut.
#![no_main]

use grid_wire::fields::Headers;
use grid_wire::response::{self, Framing, ResponsePart};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut data)) = data.split_first() else {
        return;
    };
    let is_head = flags & 1 == 1;
    // Interim responses are dropped, as the wire path does.
    let head = loop {
        match response::parse(data, is_head) {
            Ok(ResponsePart::Interim { head_len }) => {
                assert!(head_len > 0 && head_len <= data.len());
                data = &data[head_len..];
            }
            Ok(ResponsePart::Final(head)) => break head,
            Ok(ResponsePart::Partial) | Err(_) => return,
        }
    };
    assert!((200..1000).contains(&head.status));
    assert!(head.head_len <= data.len());
    let bodiless = is_head || head.status == 204 || head.status == 304;
    match &head.framing {
        Framing::Length(n) if bodiless => assert_eq!(*n, 0),
        Framing::Length(_) => assert!(!head.fields.contains("transfer-encoding")),
        Framing::Chunked(_) => assert!(!bodiless && head.fields.contains("transfer-encoding")),
        Framing::UntilClose => assert!(!bodiless),
    }
    let mut framing = head.framing.clone();
    let body = &data[head.head_len..];
    let cut = usize::from(flags >> 1).min(body.len());
    let mut taken = 0;
    for piece in [&body[..cut], &body[cut..]] {
        match framing.take(piece) {
            Ok(n) => {
                assert!(n <= piece.len());
                taken += n;
                if n < piece.len() {
                    assert!(framing.is_done());
                    break;
                }
            }
            Err(_) => return,
        }
    }
    assert!(taken <= body.len());
});
