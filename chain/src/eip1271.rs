//! EIP-1271: asking a contract wallet whether a signature is its own, for sign-in with
//! contract wallets (multisigs, smart accounts) whose "signature" no key can recover.

use std::time::Duration;

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, Bytes};
use alloy::providers::Provider as _;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;

use crate::rpc::{self, Provider};
use crate::{Error, Result};

alloy::sol! {
    /// The EIP-1271 interface.
    interface IERC1271 {
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
    }
}

/// What a wallet returns for a valid signature: `isValidSignature`'s own selector.
pub const MAGIC_VALUE: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];

/// Calls `wallet.isValidSignature(hash, signature)` at the latest block. False for an address
/// without code, a contract without the function, a revert, or any other answer than the
/// magic value; an error only when the chain cannot be asked.
pub(crate) async fn is_valid_signature(
    provider: &Provider,
    wallet: Address,
    hash: B256,
    signature: Bytes,
    timeout: Duration,
) -> Result<bool> {
    let call = IERC1271::isValidSignatureCall { hash, signature };
    let tx = TransactionRequest::default()
        .to(wallet)
        .input(Bytes::from(call.abi_encode()).into());
    match rpc::bounded(
        timeout,
        "eth_call isValidSignature",
        provider.call(tx).block(BlockId::latest()),
    )
    .await
    {
        // An ABI-encoded bytes4 is one 32-byte word, left-aligned.
        Ok(out) => Ok(out.len() == 32 && out[..4] == MAGIC_VALUE),
        Err(Error::Reverted { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
