//! Deploys the test token and the Market to a dev chain and prints the config lines:
//! `cargo run -p grid-chain --example deploy_dev -- http://127.0.0.1:8545`.
//! (The gateway's `grid-gateway chain deploy-dev --rpc <url>` does the same.)

use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rpc_url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8545".to_owned());
    let deployment = grid_chain::deploy_dev(&rpc_url, Duration::from_secs(10)).await?;
    eprintln!(
        "deployed TestToken at {} and Market at {} (deployer {})",
        deployment.token, deployment.market, deployment.deployer
    );
    print!("{}", deployment.config_toml());
    Ok(())
}
