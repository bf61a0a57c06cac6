//! `sol!` bindings generated from the committed artifacts in `contracts/out/`, so the Rust
//! build never needs solc or node. Regenerate the artifacts with `node contracts/build.mjs`.

#![allow(missing_docs, clippy::too_many_arguments)]

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    Market,
    "../contracts/out/Market.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    TestToken,
    "../contracts/out/TestToken.json"
);

/// `Market.Status` as the ABI carries it (a `uint8`).
pub(crate) mod status {
    pub const CREATED: u8 = 1;
    pub const ACTIVE: u8 = 2;
    pub const CANCELLED: u8 = 3;
    pub const COMPLETED: u8 = 4;

    /// The Solidity enum's name for a status value, for messages.
    pub fn name(value: u8) -> &'static str {
        match value {
            0 => "None",
            CREATED => "Created",
            ACTIVE => "Active",
            CANCELLED => "Cancelled",
            COMPLETED => "Completed",
            _ => "Unknown",
        }
    }
}
