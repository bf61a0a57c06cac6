//! The user's side of the Market contract: pay into escrow, create, extend and cancel an
//! order. A frontend sends the same transactions from the user's wallet.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, bail};
use grid_chain::bindings::{Market, TestToken};

/// The user's wallet on the Market.
pub struct UserMarket {
    market: Market::MarketInstance<DynProvider>,
    provider: DynProvider,
}

impl UserMarket {
    pub fn connect(rpc: &str, market: Address, signer: PrivateKeySigner) -> Result<UserMarket> {
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_http(rpc.parse().context("--rpc is not a URL")?)
            .erased();
        Ok(UserMarket {
            market: Market::new(market, provider.clone()),
            provider,
        })
    }

    /// Mints `amount` of the dev chain's test token to `user` and lets the Market pull it.
    /// Only the dev token can be minted by anyone; on a real chain the user buys the token.
    pub async fn fund_with_test_tokens(&self, user: Address, amount: U256) -> Result<Address> {
        let token_address = self.market.token().call().await.context("Market.token()")?;
        let token = TestToken::new(token_address, self.provider.clone());
        let receipt = token
            .mint(user, amount)
            .send()
            .await
            .context("TestToken.mint")?
            .get_receipt()
            .await
            .context("TestToken.mint receipt")?;
        ensure_success(receipt.status(), "TestToken.mint")?;
        let receipt = token
            .approve(*self.market.address(), U256::MAX)
            .send()
            .await
            .context("TestToken.approve")?
            .get_receipt()
            .await
            .context("TestToken.approve receipt")?;
        ensure_success(receipt.status(), "TestToken.approve")?;
        Ok(token_address)
    }

    /// `Market.createOrder`: escrows `amount` for `resources` during `duration_secs`,
    /// addressed to the node's wallet; returns the new order's id.
    pub async fn create_order(
        &self,
        provider: Address,
        payee: Address,
        resources: Market::Resources,
        duration_secs: u64,
        amount: U256,
    ) -> Result<U256> {
        let receipt = self
            .market
            .createOrder(provider, payee, resources, duration_secs, amount)
            .send()
            .await
            .context("Market.createOrder")?
            .get_receipt()
            .await
            .context("Market.createOrder receipt")?;
        ensure_success(receipt.status(), "Market.createOrder")?;
        let created = receipt
            .decoded_log::<Market::OrderCreated>()
            .context("Market.createOrder emitted no OrderCreated")?;
        Ok(created.id)
    }

    /// `Market.extend`: buys `extra_secs` more for `extra_amount`.
    pub async fn extend(&self, id: U256, extra_secs: u64, extra_amount: U256) -> Result<()> {
        let receipt = self
            .market
            .extend(id, extra_secs, extra_amount)
            .send()
            .await
            .context("Market.extend")?
            .get_receipt()
            .await
            .context("Market.extend receipt")?;
        ensure_success(receipt.status(), "Market.extend")
    }

    /// `Market.cancel`: ends the order; returns (paid to the payee, refunded to the user).
    pub async fn cancel(&self, id: U256) -> Result<(U256, U256)> {
        let receipt = self
            .market
            .cancel(id)
            .send()
            .await
            .context("Market.cancel")?
            .get_receipt()
            .await
            .context("Market.cancel receipt")?;
        ensure_success(receipt.status(), "Market.cancel")?;
        let cancelled = receipt
            .decoded_log::<Market::OrderCancelled>()
            .context("Market.cancel emitted no OrderCancelled")?;
        Ok((cancelled.paidToPayee, cancelled.refunded))
    }
}

fn ensure_success(ok: bool, what: &str) -> Result<()> {
    if !ok {
        bail!("{what} reverted");
    }
    Ok(())
}
