//! Sign-In with Ethereum (EIP-4361) checks: the message grammar is the
//! `signinwithethereum` crate's; the policy (domain, chain, times, signature) is ours.
//! [`verify`] checks what needs no chain; a signature no key recovers to the message's
//! address may still be a contract wallet's (EIP-1271), which the caller asks the chain
//! about. The nonce is checked by the caller, against the store, after these pass.

use alloy::primitives::Signature;
use grid_policy_sdk::Address;
use signinwithethereum::Message;

use crate::error::{Error, Result};

/// What a login must match.
#[derive(Clone, Debug)]
pub struct Expectations {
    /// The gateway's domain (authority).
    pub domain: String,
    /// Origins (`scheme://host[:port]`) a message's `URI:` may be on besides
    /// `http(s)://<domain>`: the frontends the node allows (`http.cors_origins`).
    pub origins: Vec<String>,
    /// The node's chain id.
    pub chain_id: u64,
    /// Tolerated clock difference, seconds.
    pub skew_secs: u64,
}

/// A message that passed the checks that need no chain.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The message's address.
    pub address: Address,
    /// True when the ECDSA signer of the signature is `address`; false means only a
    /// contract wallet at `address` can vouch for it (EIP-1271).
    pub signed_by_key: bool,
    /// The signature's bytes.
    pub signature: Vec<u8>,
    /// The message's nonce, to consume.
    pub nonce: String,
    /// The message's expiration time (unix seconds), if any: a session never outlives it.
    pub expires_at: Option<u64>,
    /// The message's `Resources:` entries (the operator scope is one).
    pub resources: Vec<String>,
}

/// Parses `text`, checks domain, chain, times at `now`, and whether `signature` (hex,
/// EIP-191 personal_sign over the exact text) recovers to the message's address.
pub fn verify(text: &str, signature: &str, expect: &Expectations, now: u64) -> Result<Verified> {
    let message: Message = text
        .parse()
        .map_err(|e| Error::MalformedMessage(format!("{e}")))?;
    // The parser reads some texts that are not its message's one rendering (`Chain ID:
    // 031337`, `+31337`): the fields checked below must be the text the wallet showed and
    // signed, so only the rendering itself is accepted (EIP-4361 has one spelling of each
    // field; the parser keeps time stamps and the address as written, so a wallet's text
    // renders back to itself). fuzz/fuzz_targets/siwe.rs keeps the parser's side of this.
    if message.to_string() != text {
        return Err(Error::MalformedMessage(
            "the message is not in EIP-4361's form (a field spelled otherwise than the grammar writes it)"
                .into(),
        ));
    }
    let domain = message.domain.as_str();
    if !domain.eq_ignore_ascii_case(&expect.domain) {
        return Err(Error::WrongDomain {
            got: domain.to_owned(),
            expected: expect.domain.clone(),
        });
    }
    if !uri_is_ours(message.uri.as_str(), expect) {
        return Err(Error::WrongUri {
            got: message.uri.as_str().to_owned(),
        });
    }
    if message.chain_id != expect.chain_id {
        return Err(Error::WrongChain {
            got: message.chain_id,
            expected: expect.chain_id,
        });
    }
    let unix = |t: &signinwithethereum::TimeStamp| t.as_ref().unix_timestamp();
    let now_i = i64::try_from(now).unwrap_or(i64::MAX);
    let skew = i64::try_from(expect.skew_secs).unwrap_or(0);
    let expires_at = message.expiration_time.as_ref().map(unix);
    if let Some(exp) = expires_at
        && exp.saturating_add(skew) <= now_i
    {
        return Err(Error::MessageExpired);
    }
    if let Some(nbf) = message.not_before.as_ref().map(unix)
        && nbf.saturating_sub(skew) > now_i
    {
        return Err(Error::MessageNotYetValid);
    }
    if unix(&message.issued_at).saturating_sub(skew) > now_i {
        return Err(Error::MessageNotYetValid);
    }

    let bytes = hex_signature(signature)?;
    // The signature covers the text as the wallet showed it, byte for byte, so recover
    // over the received text rather than a re-rendering of the parsed message.
    let signed_by_key = bytes.len() == 65
        && Signature::from_raw(&bytes)
            .ok()
            .and_then(|s| s.recover_address_from_msg(text.as_bytes()).ok())
            .is_some_and(|signer| signer.0.0 == message.address);
    Ok(Verified {
        address: Address(message.address),
        signed_by_key,
        signature: bytes,
        nonce: message.nonce.clone(),
        expires_at: expires_at.and_then(|e| u64::try_from(e).ok()),
        resources: message
            .resources
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
    })
}

/// True when `uri` is on `http(s)://<domain>` or on one of the configured origins.
fn uri_is_ours(uri: &str, expect: &Expectations) -> bool {
    let Ok(uri) = uri.parse::<http::Uri>() else {
        return false;
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return false;
    };
    // No user info: `https://gateway.example@evil.example/` is evil.example's.
    if authority.as_str().contains('@') {
        return false;
    }
    let on_domain = matches!(scheme, "http" | "https")
        && authority.as_str().eq_ignore_ascii_case(&expect.domain);
    let origin = format!("{scheme}://{authority}");
    on_domain
        || expect
            .origins
            .iter()
            .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(&origin))
}

fn hex_signature(text: &str) -> Result<Vec<u8>> {
    let hex_part = text.strip_prefix("0x").unwrap_or(text);
    let bytes =
        hex::decode(hex_part).map_err(|_| Error::MalformedMessage("signature: not hex".into()))?;
    // 65 bytes (r, s, v) for a key; a contract wallet's signature can be any length.
    if bytes.len() < 65 {
        return Err(Error::MalformedMessage(format!(
            "signature: {} bytes, expected at least 65",
            bytes.len()
        )));
    }
    Ok(bytes)
}
