//! Development helpers: deploy the test token and the Market to a dev chain such as anvil,
//! and print the config lines that point a gateway at them.

use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::{Provider as _, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;

use crate::bindings::{Market, TestToken};
use crate::rpc;
use crate::{Error, Result};

/// anvil's (and hardhat's) first default account, funded with 10 000 ETH on every dev chain.
/// Public knowledge: never use it on a real network.
pub const ANVIL_DEV_KEY: &str =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// What [`deploy_dev`] deployed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevDeployment {
    /// The endpoint it was deployed through.
    pub rpc_url: String,
    /// The chain's id.
    pub chain_id: u64,
    /// The mintable `TestToken` ("Grid Test Token", GRIDT, 18 decimals).
    pub token: Address,
    /// The Market, paid in `token`.
    pub market: Address,
    /// The account that deployed both (anvil's first).
    pub deployer: Address,
    /// A block at or before the deployment: where an event follower can start.
    pub start_block: u64,
}

impl DevDeployment {
    /// The `[chain]` config lines for this deployment.
    pub fn config_toml(&self) -> String {
        render_config(
            &self.rpc_url,
            self.market,
            self.token,
            self.chain_id,
            self.start_block,
        )
    }
}

/// The `[chain]` TOML lines that point a gateway at a Market, to paste into its config.
pub fn render_config(
    rpc_url: &str,
    market: Address,
    token: Address,
    chain_id: u64,
    start_block: u64,
) -> String {
    // Debug-quoting escapes quotes and backslashes the way TOML basic strings want.
    format!(
        "[chain]\nrpc_url = {rpc_url:?}\nmarket = \"{market}\"\ntoken = \"{token}\"\nchain_id = {chain_id}\nstart_block = {start_block}\n"
    )
}

/// Deploys `TestToken` and `Market(token)` with anvil's first default account.
///
/// Each RPC call is bounded by `timeout`; an unreachable endpoint is
/// [`Error::ChainUnavailable`].
pub async fn deploy_dev(rpc_url: &str, timeout: Duration) -> Result<DevDeployment> {
    let signer: PrivateKeySigner = ANVIL_DEV_KEY.parse().map_err(|e| Error::Config {
        reason: format!("dev key: {e}"),
    })?;
    let deployer = signer.address();
    // Here alloy's fillers are fine: one short-lived process, one account, no retries.
    let provider = ProviderBuilder::new()
        .wallet(signer)
        .connect_client(rpc::http_transport(rpc_url, timeout)?);

    let chain_id = rpc::bounded(timeout, "eth_chainId", provider.get_chain_id()).await?;
    let start_block = rpc::bounded(timeout, "eth_blockNumber", provider.get_block_number()).await?;

    // A deployment is a send plus a receipt wait: give it a few call timeouts.
    let deploy_bound = timeout * 4;
    let token = bounded_deploy(
        deploy_bound,
        "deploy TestToken",
        TestToken::deploy(&provider, "Grid Test Token".to_owned(), "GRIDT".to_owned()),
    )
    .await?;
    let token = *token.address();
    let market = bounded_deploy(
        deploy_bound,
        "deploy Market",
        Market::deploy(&provider, token),
    )
    .await?;
    Ok(DevDeployment {
        rpc_url: rpc_url.to_owned(),
        chain_id,
        token,
        market: *market.address(),
        deployer,
        start_block,
    })
}

async fn bounded_deploy<T>(
    bound: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, alloy::contract::Error>>,
) -> Result<T> {
    match tokio::time::timeout(bound, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(alloy::contract::Error::TransportError(e))) => Err(rpc::classify(what, e)),
        Ok(Err(e)) => Err(Error::Rpc {
            message: format!("{what}: {e}"),
        }),
        Err(_) => Err(Error::unavailable(format!(
            "{what}: not done within {} ms",
            bound.as_millis()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lines_are_toml_the_config_type_reads() {
        let text = render_config(
            "http://127.0.0.1:8545",
            Address::repeat_byte(0x11),
            Address::repeat_byte(0x22),
            31337,
            3,
        );
        assert!(text.starts_with("[chain]\nrpc_url = \"http://127.0.0.1:8545\"\n"));
        assert!(text.contains("chain_id = 31337\n"));
        assert!(text.contains(&format!("market = \"{}\"", Address::repeat_byte(0x11))));

        // Pasted under a gateway config, the lines read back as a `ChainConfig`.
        #[derive(serde::Deserialize)]
        struct GatewayConfig {
            chain: crate::ChainConfig,
        }
        let parsed: GatewayConfig = toml::from_str(&text).expect("valid TOML");
        assert_eq!(parsed.chain.market, Address::repeat_byte(0x11));
        assert_eq!(parsed.chain.token, Some(Address::repeat_byte(0x22)));
        assert_eq!(
            (parsed.chain.chain_id, parsed.chain.start_block),
            (31337, 3)
        );
        assert_eq!(parsed.chain.rpc_url, "http://127.0.0.1:8545");
    }
}
