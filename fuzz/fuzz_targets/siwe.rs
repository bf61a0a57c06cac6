//! The SIWE (EIP-4361) message parser the gateway's login reads with
//! (`signinwithethereum::Message`, `host/src/auth/siwe.rs`): any text is parsed without a
//! panic, and a message it accepts is in the grammar's one rendering — the text the wallet
//! signed *is* the message whose fields the gateway checks (domain, URI, chain, times,
//! nonce). The gateway recovers the signer over the received text, so a parser that accepted
//! a text other than its message's rendering (extra lines, other spacing, a field twice)
//! would let the checked fields differ from what the user was shown: the login refuses such
//! a text (`verify` compares it with the rendering), and this target keeps the property that
//! makes that comparison sound: the rendering of a parsed message parses to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signinwithethereum::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(message) = text.parse::<Message>() else {
        return;
    };
    let rendered = message.to_string();
    let again: Message = rendered
        .parse()
        .unwrap_or_else(|e| panic!("the rendering of a parsed message is refused ({e}): {rendered:?}"));
    assert!(again == message, "{rendered:?}");
    assert_eq!(again.to_string(), rendered);
    let _ = message.eip191_hash();
});
