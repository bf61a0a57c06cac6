//! A user's whole journey on a grid-gateway node, step by step: create an order on chain,
//! quote it, have the node accept it, sign in with the wallet, deploy an app from a
//! manifest URL, call it through the gateway, extend the order, cancel it and watch the
//! app torn down.
//!
//! Every step is one documented HTTP call to the gateway or one transaction to the Market,
//! printed as it happens, so this is also the reference for frontend developers. It fails
//! (exit status 1, the step and the answer printed) when any step does not do what the
//! API promises; `scripts/dev-node.sh` runs it against a fresh local node, and CI does too.

mod api;
mod market;
mod siwe;

use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use grid_chain::bindings::Market;
use serde_json::{Value, json};

use api::Api;
use market::UserMarket;

/// anvil's default account 1: a public test key, never for a real network.
const ANVIL_USER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

#[derive(Parser)]
#[command(about = "Walk a user's journey against a grid-gateway node")]
struct Args {
    /// The gateway's base URL.
    #[arg(long, env = "GRID_GATEWAY", default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// The chain's JSON-RPC endpoint (the user's wallet sends its transactions there).
    #[arg(long, env = "GRID_RPC")]
    rpc: String,
    /// The user's private key (hex). Default: anvil's account 1.
    #[arg(long, env = "GRID_USER_KEY", default_value = ANVIL_USER_KEY, hide_default_value = true)]
    user_key: String,
    /// Who the order pays: must be a payee the node's payee policy accepts.
    #[arg(long, env = "GRID_PAYEE")]
    payee: Address,
    /// The app's Kubernetes YAML.
    #[arg(long, env = "GRID_MANIFEST_URL")]
    manifest_url: String,
    /// The sign-in domain (the gateway's `auth.domain`). Default: the gateway URL's host:port.
    #[arg(long)]
    domain: Option<String>,
    /// Mint test tokens to the user first (dev chain only: anyone may mint its token).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    mint: bool,
    /// How long to wait for the app to become available.
    #[arg(long, default_value_t = 120)]
    deploy_timeout_secs: u64,
    /// Write the session's bearer token (the login answer's `token`) to this file and stay
    /// signed in (no step 12), for a tool that goes on calling the API as this user
    /// (`scripts/api-check.sh`).
    #[arg(long)]
    session_out: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("\nwalkthrough FAILED: {e:#}");
        std::process::exit(1);
    }
}

/// The order the user buys: one core, 512 MiB, 1 GiB of storage, for an hour.
fn order_resources() -> (Value, Market::Resources, u64) {
    let spec = json!({"cpu": "1", "memory": "512Mi", "storage": "1Gi", "gpu": 0});
    let resources = Market::Resources {
        cpuMillis: 1_000,
        memoryBytes: 512 << 20,
        storageBytes: 1 << 30,
        gpus: 0,
        gpuModel: String::new(),
    };
    (spec, resources, 3600)
}

async fn run(args: Args) -> Result<()> {
    let signer: PrivateKeySigner = args
        .user_key
        .parse()
        .context("--user-key is not a private key")?;
    let user = signer.address();
    let mut api = Api::new(&args.gateway)?;
    let domain = match args.domain {
        Some(d) => d,
        None => domain_of(&args.gateway)?,
    };

    step(1, "Is the node ready? (store, policies, chain, cluster)");
    let ready = api.get("/_grid/readyz").await?.expect(200)?;
    ensure!(ready["ready"] == true, "the node is not ready: {ready}");

    step(
        2,
        "Who is the node? Its wallet (orders must name it), Market and capacity",
    );
    let node = api.get("/_grid/v1/node").await?.expect(200)?;
    let provider: Address = str_field(&node, "wallet")?
        .parse()
        .context("the node's wallet")?;
    let market: Address = node["market"]
        .as_str()
        .context("the node has no [chain]: it cannot take orders")?
        .parse()
        .context("the node's market")?;
    let chain_id = node["chain_id"].as_u64().context("the node's chain_id")?;
    let wallet = UserMarket::connect(&args.rpc, market, signer.clone())?;

    step(
        3,
        "What would it cost? An inline quote, before any order exists",
    );
    let (spec, resources, duration) = order_resources();
    let inline = api
        .post(
            "/_grid/v1/quote",
            json!({"resources": spec, "duration_secs": duration, "payment": "0"}),
        )
        .await?
        .expect(200)?;
    let price: U256 = str_field(&inline, "price")?
        .parse()
        .context("the quote's price")?;
    println!("  price for {duration} s: {price} (smallest token units)");

    step(
        4,
        "Create the order on chain, paying the quoted price into escrow",
    );
    if args.mint {
        let token = wallet
            .fund_with_test_tokens(user, price * U256::from(10))
            .await?;
        println!("  minted test tokens ({token}) to {user} and approved the Market");
    }
    let id = wallet
        .create_order(provider, args.payee, resources, duration, price)
        .await?;
    println!(
        "  Market.createOrder → order {id} (user {user}, payee {})",
        args.payee
    );
    let id = id.to_string();

    step(
        5,
        "Quote the order itself: does the node take it at this payment?",
    );
    let quote = api
        .post("/_grid/v1/quote", json!({"order_id": id}))
        .await?
        .expect(200)?;
    ensure!(
        quote["acceptable"] == true,
        "the node would refuse the order: {quote}"
    );

    step(
        6,
        "Accept: the node checks the payee, stores the order and locks it on chain",
    );
    let accepted = api
        .post(&format!("/_grid/v1/orders/{id}/accept"), json!({}))
        .await?
        .expect(200)?;
    ensure!(accepted["status"] == "active", "not active: {accepted}");

    step(
        7,
        "Sign in with the wallet (EIP-4361): nonce, sign, login → session cookie",
    );
    let nonce = api.get("/_grid/v1/auth/nonce").await?.expect(200)?;
    let message = siwe::message(&domain, user, chain_id, str_field(&nonce, "nonce")?)?;
    let signature = signer
        .sign_message_sync(message.as_bytes())
        .context("signing the sign-in message")?;
    let login = api
        .post(
            "/_grid/v1/auth/login",
            json!({"message": message, "signature": alloy::hex::encode_prefixed(signature.as_bytes())}),
        )
        .await?;
    let set_cookie = login.set_cookie.clone();
    let answer = login.expect(200)?;
    if let Some(path) = &args.session_out {
        let token = answer["token"]
            .as_str()
            .context("the login answer has no token")?;
        std::fs::write(path, token).context("writing --session-out")?;
    }
    api.keep_session(&set_cookie.context("the login set no session cookie")?);
    let session = api.get("/_grid/v1/auth/session").await?.expect(200)?;
    ensure!(
        session["address"].as_str().map(str::to_lowercase) == Some(format!("{user:#x}")),
        "the session is not the user's: {session}"
    );

    step(
        8,
        "Deploy the app from its manifest URL, then wait until it is available",
    );
    api.post(
        "/_grid/v1/apps",
        json!({"order_id": id, "manifest_url": args.manifest_url}),
    )
    .await?
    .expect(202)?;
    let app = wait_for(
        &api,
        &format!("/_grid/v1/apps/{id}"),
        Duration::from_secs(args.deploy_timeout_secs),
        |app| match app["status"].as_str() {
            Some("available") => Ok(true),
            Some("failed") => bail!("the deploy failed: {app}"),
            _ => Ok(false),
        },
    )
    .await?;
    println!("  namespace {}", app["namespace"]);

    step(
        9,
        "Call the app through the gateway (any path outside /_grid/ is the app's)",
    );
    let answer = api
        .get("/hello?from=walkthrough")
        .await?
        .expect(200)
        .context("the app did not answer through the gateway")?;
    if let (Some(headers), Some(cookie_name)) =
        (answer["headers"].as_object(), api.session_cookie_name())
    {
        let leaked = headers
            .get("cookie")
            .and_then(Value::as_str)
            .is_some_and(|c| c.contains(cookie_name));
        ensure!(!leaked, "the session cookie reached the app: {answer}");
        println!("  the app saw no session cookie: the gateway keeps it to itself");
    }

    step(
        10,
        "Extend the order on chain by an hour; the node follows the chain's event",
    );
    let before = api
        .get(&format!("/_grid/v1/orders/{id}"))
        .await?
        .expect(200)?;
    let old_duration = before["duration_secs"].as_u64().context("duration_secs")?;
    wallet.extend(id.parse()?, duration, price).await?;
    println!("  Market.extend({id}, {duration} s, {price})");
    let after = wait_for(
        &api,
        &format!("/_grid/v1/orders/{id}"),
        Duration::from_secs(60),
        |order| Ok(order["duration_secs"].as_u64() == Some(old_duration + duration)),
    )
    .await?;
    println!("  ends_at {} → {}", before["ends_at"], after["ends_at"]);

    step(
        11,
        "Cancel the order on chain; the node tears the app down and frees the capacity",
    );
    let (paid, refunded) = wallet.cancel(id.parse()?).await?;
    println!("  Market.cancel({id}) → {paid} paid to the payee, {refunded} refunded");
    let gone = wait_for(
        &api,
        &format!("/_grid/v1/apps/{id}"),
        Duration::from_secs(60),
        |app| Ok(app["status"] == "deleted"),
    )
    .await?;
    println!("  app {} ({})", gone["status"], gone["code"]);
    let order = api
        .get(&format!("/_grid/v1/orders/{id}"))
        .await?
        .expect(200)?;
    ensure!(
        order["state"] == "cancelled",
        "the order is not cancelled: {order}"
    );
    let after = api.get("/hello?from=walkthrough").await?;
    ensure!(
        after.status.is_client_error(),
        "the app still answers after the cancel: {}",
        after.status
    );

    if let Some(path) = &args.session_out {
        println!(
            "\n(the session stays signed in: its token is in {} for what runs next)",
            path.display()
        );
    } else {
        step(12, "Sign out");
        api.post("/_grid/v1/auth/logout", json!({}))
            .await?
            .expect(200)?;
    }

    println!("\nwalkthrough: every step succeeded (order {id})");
    Ok(())
}

fn step(n: u32, what: &str) {
    println!("\n\x1b[1m{n:>2}. {what}\x1b[0m");
}

fn str_field<'a>(json: &'a Value, field: &str) -> Result<&'a str> {
    json[field]
        .as_str()
        .with_context(|| format!("the answer has no {field:?}: {json}"))
}

/// `host:port` of the gateway URL: the sign-in domain a local node is configured with.
fn domain_of(url: &str) -> Result<String> {
    let url = reqwest::Url::parse(url).context("--gateway is not a URL")?;
    let host = url.host_str().context("--gateway has no host")?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// Polls `GET path` until `done` says so, printing the request once and the answer it
/// ended on.
async fn wait_for(
    api: &Api,
    path: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> Result<bool>,
) -> Result<Value> {
    println!("  → GET {path} (every 0.5 s until it changes)");
    let deadline = Instant::now() + timeout;
    let started = Instant::now();
    loop {
        let reply = api.poll(path).await?.expect(200)?;
        if done(&reply)? {
            println!(
                "  ← 200 OK after {:.1} s: {}",
                started.elapsed().as_secs_f64(),
                api::short(&reply)
            );
            return Ok(reply);
        }
        if Instant::now() >= deadline {
            bail!("gave up after {timeout:?} waiting on {path}: {reply}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
