//! Sign-in under load, used by `host/benches/nonce.sh`: how many login nonces a gateway
//! issues per second over HTTP, and what a nonce flood does to the latency of logins.
//!
//! `nonce_bench serve <port> <work dir>` runs a whole gateway the way `grid-gateway serve`
//! does (the same runtime, `server::serve`, SIGTERM to stop), with no chain and no cluster,
//! the nonce limit off (`auth.nonce_rate_per_sec = 0`), and its store seeded with an active
//! order of the bench's wallet, so that the authorization policy grants it a session. It
//! writes `<work dir>/ready` once it listens.
//!
//! `nonce_bench load <port> <gateway pid> [seconds] [clients] [logins]` is the load client,
//! over HTTP/1.1 keep-alive connections on loopback:
//! 1. idle: `logins` sign-ins one after the other (`GET …/auth/nonce`, sign the EIP-4361
//!    message, `POST …/auth/login`; the POST is timed);
//! 2. flood: `clients` connections (default 8) asking for nonces as fast as they are
//!    answered, for `seconds` (default 10): nonces/s;
//! 3. flood + logins: the same flood while the same number of logins is timed again.
//!
//! It prints one line per phase with the CPU time the gateway and the client used in it.
//! Any answer but 200 fails the run.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use bytes::Bytes;
use grid_gateway::config::Config;
use grid_gateway::policy::unix_now;
use grid_gateway::store::{OrderRecord, OrderState, Store};
use grid_policy_sdk::{Address, Amount, Order, OrderStatus, Resources};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// The gateway's `auth.domain`; messages name it and a `URI:` on it.
const DOMAIN: &str = "bench.local";
/// The chain id a gateway without a chain expects (`auth.chain_id` unset).
const CHAIN_ID: u64 = 1;
/// The bench wallet's private key (any scalar below the curve order).
const KEY: [u8; 32] = [0x42; 32];

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn wallet() -> PrivateKeySigner {
    PrivateKeySigner::from_slice(&KEY).expect("a valid key")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("load") => load(&args[1..]),
        _ => Err("usage: nonce_bench serve <port> <work dir> | \
                  load <port> <gateway pid> [seconds] [clients] [logins]"
            .into()),
    };
    if let Err(e) = result {
        eprintln!("nonce_bench: {e}");
        std::process::exit(1);
    }
}

fn serve(args: &[String]) -> Result<(), Failure> {
    let [port, work] = args else {
        return Err("serve <port> <work dir>".into());
    };
    let port: u16 = port.parse()?;
    let work = Path::new(work);
    let data_dir = work.join("data");
    seed(&data_dir)?;
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nlog_format = \"text\"\n\
         [auth]\ndomain = \"{DOMAIN}\"\nnonce_rate_per_sec = 0\n[session]\nsecure = false\n",
        data_dir.display()
    );
    let config = Config::from_toml(&text, Path::new("nonce-bench.toml"), [])?;
    grid_gateway::server::init_tracing(config.log_format);
    // As `grid-gateway serve` does.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ready = work.join("ready");
    runtime.block_on(grid_gateway::server::serve(config, async move {
        // `serve` binds before it awaits the shutdown future.
        let _ = std::fs::write(&ready, b"ready\n");
        grid_gateway::server::shutdown_signal().await;
    }))?;
    Ok(())
}

/// The bench wallet's active order, 30 days long: the reference authorization policy
/// grants a session only to a wallet with one.
fn seed(data_dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(data_dir)?;
    let store = Store::open(data_dir)?;
    let now = unix_now();
    let user = Address(wallet().address().0.0);
    let order = Order {
        id: "1".into(),
        user,
        provider: Address::ZERO,
        payee: Address::ZERO,
        resources: Resources {
            cpu_millis: 1000,
            memory_bytes: 1 << 30,
            ..Resources::default()
        },
        duration_secs: 30 * 86_400,
        payment: Amount::from(1u64),
        start_time: Some(now),
        created_at: now,
        status: OrderStatus::Active,
    };
    store.put_order(&OrderRecord {
        order,
        state: OrderState::Active,
        tx_hash: None,
        accepted_at: now,
    })?;
    Ok(())
}

/// One keep-alive HTTP/1.1 connection.
async fn connect(port: u16) -> Result<SendRequest<Full<Bytes>>, Failure> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends `request`; its body when the answer is 200.
async fn call(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<Bytes, Failure> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if status != StatusCode::OK {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)).into());
    }
    Ok(body)
}

fn nonce_request() -> Request<Full<Bytes>> {
    Request::get("/_grid/v1/auth/nonce")
        .header("host", DOMAIN)
        .body(Full::default())
        .expect("a valid request")
}

async fn nonce(sender: &mut SendRequest<Full<Bytes>>) -> Result<String, Failure> {
    let body = call(sender, nonce_request()).await?;
    let json: serde_json::Value = serde_json::from_slice(&body)?;
    json["nonce"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no nonce in the answer".into())
}

fn rfc3339(unix: u64) -> Result<String, Failure> {
    let at = time::OffsetDateTime::from_unix_timestamp(i64::try_from(unix)?)?;
    Ok(at.format(&time::format_description::well_known::Rfc3339)?)
}

/// One sign-in: the time of its `POST …/auth/login` alone (the nonce and the signature,
/// the wallet's part, are not counted).
async fn login(
    sender: &mut SendRequest<Full<Bytes>>,
    wallet: &PrivateKeySigner,
) -> Result<Duration, Failure> {
    let nonce = nonce(sender).await?;
    let now = unix_now();
    let message = format!(
        "{DOMAIN} wants you to sign in with your Ethereum account:\n{address}\n\n\
         Sign in to the grid node.\n\nURI: https://{DOMAIN}/\nVersion: 1\nChain ID: {CHAIN_ID}\n\
         Nonce: {nonce}\nIssued At: {issued}\nExpiration Time: {expires}",
        address = wallet.address().to_checksum(None),
        issued = rfc3339(now)?,
        expires = rfc3339(now + 600)?,
    );
    let signature = wallet.sign_message_sync(message.as_bytes())?;
    let body = serde_json::json!({
        "message": message,
        "signature": format!("0x{}", hex::encode(signature.as_bytes())),
    });
    let request = Request::post("/_grid/v1/auth/login")
        .header("host", DOMAIN)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let started = Instant::now();
    call(sender, request).await?;
    Ok(started.elapsed())
}

/// `count` logins one after the other on one connection: (p50, p99, max).
async fn logins(port: u16, count: usize) -> Result<(Duration, Duration, Duration), Failure> {
    let wallet = wallet();
    let mut sender = connect(port).await?;
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        times.push(login(&mut sender, &wallet).await?);
    }
    times.sort();
    let at = |q: usize| times[(times.len() * q).div_ceil(100).max(1) - 1];
    Ok((at(50), at(99), times[times.len() - 1]))
}

/// `clients` connections asking for nonces until `stop`; the total answered.
fn flood(
    port: u16,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Result<u64, Failure>> {
    tokio::spawn(async move {
        let answered = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (stop, answered) = (stop.clone(), answered.clone());
            tasks.push(tokio::spawn(async move {
                let mut sender = connect(port).await?;
                while !stop.load(Ordering::Relaxed) {
                    call(&mut sender, nonce_request()).await?;
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, Failure>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        Ok(answered.load(Ordering::Relaxed))
    })
}

/// CPU seconds (user + system) `pid` has used so far, from `/proc/<pid>/stat`.
fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // The fields after the command name (which is in parentheses and may hold spaces).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 a second
    // on Linux).
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// Measures CPU of the gateway and of this client across a phase.
struct Cpu<'a> {
    gateway: &'a str,
    start: (f64, f64, Instant),
}

impl<'a> Cpu<'a> {
    fn start(gateway: &'a str) -> Self {
        Cpu {
            gateway,
            start: (cpu_secs(gateway), cpu_secs("self"), Instant::now()),
        }
    }

    /// "gateway X cores, client Y cores" over the phase.
    fn report(&self) -> String {
        let wall = self.start.2.elapsed().as_secs_f64();
        let gateway = (cpu_secs(self.gateway) - self.start.0) / wall;
        let client = (cpu_secs("self") - self.start.1) / wall;
        format!("cpu: gateway {gateway:.2} cores, client {client:.2} cores")
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn load(args: &[String]) -> Result<(), Failure> {
    let (Some(port), Some(pid)) = (args.first(), args.get(1)) else {
        return Err("load <port> <gateway pid> [seconds] [clients] [logins]".into());
    };
    let port: u16 = port.parse()?;
    let number = |i: usize, default: u64| -> Result<u64, Failure> {
        Ok(args
            .get(i)
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let seconds = number(2, 10)?;
    let clients = usize::try_from(number(3, 8)?)?;
    let count = usize::try_from(number(4, 200)?)?.max(1);
    // Two threads: one core each for the flood's connections and the login's, at most;
    // the gateway has the same two cores.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Warm-up: connections, the policy's instances, the store's pages.
        logins(port, 10).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let warm = flood(port, clients, stop.clone());
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        warm.await??;

        let cpu = Cpu::start(pid);
        let (p50, p99, max) = logins(port, count).await?;
        println!(
            "idle:           {count} logins  p50 {}  p99 {}  max {}  ({})",
            ms(p50),
            ms(p99),
            ms(max),
            cpu.report()
        );

        let cpu = Cpu::start(pid);
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let nonces = flood(port, clients, stop.clone());
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let answered = nonces.await??;
        let rate = answered as f64 / started.elapsed().as_secs_f64();
        println!(
            "flood:          {clients} clients {seconds} s  {answered} nonces  {rate:.0} nonces/s  ({})",
            cpu.report()
        );

        let cpu = Cpu::start(pid);
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let nonces = flood(port, clients, stop.clone());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let timed = logins(port, count).await;
        stop.store(true, Ordering::Relaxed);
        let answered = nonces.await??;
        let (p50, p99, max) = timed?;
        let rate = answered as f64 / started.elapsed().as_secs_f64();
        println!(
            "flood + logins: {count} logins  p50 {}  p99 {}  max {}  during {rate:.0} nonces/s  ({})",
            ms(p50),
            ms(p99),
            ms(max),
            cpu.report()
        );
        Ok(())
    })
}
