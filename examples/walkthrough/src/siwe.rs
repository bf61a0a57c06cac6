//! The EIP-4361 (Sign-In with Ethereum) message a wallet signs to log in. A frontend builds
//! the same text and asks the wallet for `personal_sign` of it.

use alloy::primitives::Address;
use anyhow::{Context, Result};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The message for `domain` (the gateway's `auth.domain`, `host:port`), signed by `address`
/// on `chain_id`, with the gateway's single-use `nonce`, valid for ten minutes.
pub fn message(domain: &str, address: Address, chain_id: u64, nonce: &str) -> Result<String> {
    let now = OffsetDateTime::now_utc();
    let issued = now.format(&Rfc3339).context("formatting the time")?;
    let expires = (now + time::Duration::minutes(10))
        .format(&Rfc3339)
        .context("formatting the time")?;
    Ok(format!(
        "{domain} wants you to sign in with your Ethereum account:\n\
         {address}\n\
         \n\
         Sign in to use my order on this grid node.\n\
         \n\
         URI: http://{domain}/\n\
         Version: 1\n\
         Chain ID: {chain_id}\n\
         Nonce: {nonce}\n\
         Issued At: {issued}\n\
         Expiration Time: {expires}",
        address = address.to_checksum(None),
    ))
}
