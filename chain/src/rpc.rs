//! The RPC connection: every call bounded by a timeout, every failure sorted into the crate's
//! error kinds, revert data decoded into the contract's custom error names.

use std::future::{Future, IntoFuture};
use std::time::Duration;

use alloy::providers::RootProvider;
use alloy::rpc::client::RpcClient;
use alloy::sol_types::SolInterface;
use alloy::transports::http::reqwest;
use alloy::transports::{RpcError, TransportErrorKind};

use crate::bindings::{Market, TestToken, status};
use crate::{Error, Result};

/// The provider the crate uses: no fillers, because the signer task fills nonce, gas and fees
/// itself (alloy's cached nonce filler goes wrong across reorgs and cloned providers).
pub(crate) type Provider = RootProvider;

/// An HTTP provider whose requests time out after `timeout` at the HTTP level as well, so a
/// hung connection is torn down rather than left open behind an abandoned future.
pub(crate) fn connect(rpc_url: &str, timeout: Duration) -> Result<Provider> {
    Ok(RootProvider::new(http_transport(rpc_url, timeout)?))
}

/// The JSON-RPC client over HTTP with `timeout` on connect and on every request.
pub(crate) fn http_transport(rpc_url: &str, timeout: Duration) -> Result<RpcClient> {
    let url: reqwest::Url = rpc_url.parse().map_err(|e| Error::Config {
        reason: format!("rpc_url {rpc_url:?}: {e}"),
    })?;
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| Error::Config {
            reason: format!("HTTP client: {e}"),
        })?;
    Ok(RpcClient::new_http_with_client(http, url))
}

/// Runs one RPC call with an upper bound on its duration and sorts its error.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    what: &str,
    call: impl IntoFuture<Output = Result<T, RpcError<TransportErrorKind>>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, call.into_future()).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(classify(what, e)),
        Err(_) => Err(Error::unavailable(format!(
            "{what}: no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

/// Sorts an alloy RPC error: transport failures mean the chain is unavailable; an error
/// response with revert data is a revert; anything else is the node saying no.
pub(crate) fn classify(what: &str, e: RpcError<TransportErrorKind>) -> Error {
    match e {
        RpcError::Transport(kind) => Error::unavailable(format!("{what}: {kind}")),
        RpcError::ErrorResp(payload) => {
            if let Some(data) = payload.as_revert_data() {
                Error::Reverted {
                    reason: decode_revert(&data),
                    tx_hash: None,
                }
            } else if payload.message.contains("revert") {
                Error::Reverted {
                    reason: payload.message.to_string(),
                    tx_hash: None,
                }
            } else {
                Error::Rpc {
                    message: format!("{what}: {} (code {})", payload.message, payload.code),
                }
            }
        }
        RpcError::NullResp => Error::InvalidResponse {
            reason: format!("{what}: null response"),
        },
        RpcError::DeserError { err, .. } => Error::InvalidResponse {
            reason: format!("{what}: {err}"),
        },
        other => Error::Rpc {
            message: format!("{what}: {other}"),
        },
    }
}

/// Names the revert: the Market's or the token's custom error with its arguments, else a
/// revert string or panic code, else the raw data in hex.
pub(crate) fn decode_revert(data: &[u8]) -> String {
    use Market::MarketErrors as M;
    use TestToken::TestTokenErrors as T;
    if data.is_empty() {
        return "reverted without data".into();
    }
    if let Ok(e) = M::abi_decode(data) {
        return match e {
            M::OrderNotFound(e) => format!("OrderNotFound(id: {})", e.id),
            M::NotProvider(e) => format!("NotProvider(id: {}, caller: {})", e.id, e.caller),
            M::NotUser(e) => format!("NotUser(id: {}, caller: {})", e.id, e.caller),
            M::NotCreated(e) => {
                format!(
                    "NotCreated(id: {}, status: {})",
                    e.id,
                    status::name(e.status)
                )
            }
            M::NotActive(e) => {
                format!(
                    "NotActive(id: {}, status: {})",
                    e.id,
                    status::name(e.status)
                )
            }
            M::OrderClosed(e) => {
                format!(
                    "OrderClosed(id: {}, status: {})",
                    e.id,
                    status::name(e.status)
                )
            }
            M::OrderExpired(e) => format!("OrderExpired(id: {})", e.id),
            M::ZeroAddress(_) => "ZeroAddress".into(),
            M::ZeroDuration(_) => "ZeroDuration".into(),
            M::ZeroAmount(_) => "ZeroAmount".into(),
            M::TransferFailed(_) => "TransferFailed".into(),
        };
    }
    if let Ok(e) = T::abi_decode(data) {
        return match e {
            T::InsufficientBalance(e) => format!(
                "InsufficientBalance(from: {}, balance: {}, needed: {})",
                e.from, e.balance, e.needed
            ),
            T::InsufficientAllowance(e) => format!(
                "InsufficientAllowance(owner: {}, spender: {}, allowance: {}, needed: {})",
                e.owner, e.spender, e.allowance, e.needed
            ),
            T::ZeroAddress(_) => "ZeroAddress".into(),
        };
    }
    match alloy::sol_types::decode_revert_reason(data) {
        Some(reason) if !reason.is_empty() => reason,
        _ => format!("unknown revert data {}", alloy::hex::encode_prefixed(data)),
    }
}

/// Retries `op` while it fails with [`Error::ChainUnavailable`], with exponential backoff.
/// Every other error returns at once: a revert or a bad key does not get better by waiting.
pub(crate) async fn retry<T, F, Fut>(attempts: u32, first_backoff: Duration, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    const MAX_BACKOFF: Duration = Duration::from_secs(30);
    let mut backoff = first_backoff;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if e.is_unavailable() && attempt < attempts.max(1) => {
                tracing::warn!(error = %e, attempt, "chain unavailable, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, U256};
    use alloy::sol_types::SolError;

    #[test]
    fn decodes_custom_errors_by_name() {
        let data = Market::NotProvider {
            id: U256::from(7),
            caller: Address::ZERO,
        }
        .abi_encode();
        let reason = decode_revert(&data);
        assert!(
            reason.starts_with("NotProvider(id: 7, caller: 0x0000"),
            "{reason}"
        );
        let data = Market::NotCreated {
            id: U256::from(7),
            status: status::ACTIVE,
        }
        .abi_encode();
        assert_eq!(decode_revert(&data), "NotCreated(id: 7, status: Active)");
        assert_eq!(decode_revert(&[]), "reverted without data");
    }

    #[tokio::test]
    async fn retries_only_unavailable() {
        let mut calls = 0;
        let out: Result<()> = retry(3, Duration::from_millis(1), || {
            calls += 1;
            async { Err(Error::unavailable("down")) }
        })
        .await;
        assert!(matches!(out, Err(Error::ChainUnavailable { .. })));
        assert_eq!(calls, 3);

        let mut calls = 0;
        let out: Result<()> = retry(3, Duration::from_millis(1), || {
            calls += 1;
            async {
                Err(Error::Reverted {
                    reason: "NotUser".into(),
                    tx_hash: None,
                })
            }
        })
        .await;
        assert!(matches!(out, Err(Error::Reverted { .. })));
        assert_eq!(calls, 1);
    }
}
