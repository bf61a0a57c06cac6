//! The `grid-gateway` binary: argument parsing and exit codes. Errors become `anyhow`
//! only here, at the edge.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use grid_gateway::cli::policy::{self as policy_cmd, CommandError, PolicyOptions};
use grid_gateway::cli::registry as registry_cmd;
use grid_gateway::cli::replay as replay_cmd;
use grid_gateway::cli::scaffold::{self, Lang, NewOptions, SdkSource};
use grid_gateway::config::Config;
use grid_gateway::policy::{Isolation, RuntimeLimits, World};

#[derive(Parser)]
#[command(
    name = "grid-gateway",
    version,
    about = "Provider gateway of a decentralized compute market"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate, check and benchmark policies locally, without a running gateway.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Development helpers for the chain side.
    #[command(subcommand)]
    Chain(ChainCommand),
    /// Run the gateway.
    Serve {
        /// The TOML config (`GRID_GATEWAY__*` variables override its keys).
        #[arg(long, env = "GRID_GATEWAY_CONFIG")]
        config: PathBuf,
    },
    /// Check a config file.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config (with the environment's overrides) and the files it names; exit 1
    /// with the offending key when something is wrong.
    Check {
        /// The TOML config.
        #[arg(long, env = "GRID_GATEWAY_CONFIG")]
        config: PathBuf,
    },
}

fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    Ok(Config::load(path, std::env::vars())?)
}

fn serve_command(path: &std::path::Path) -> anyhow::Result<()> {
    let config = load_config(path)?;
    grid_gateway::server::init_tracing(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(grid_gateway::server::serve(
        config,
        grid_gateway::server::shutdown_signal(),
    ))?;
    Ok(())
}

fn config_command(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Check { config: path } => {
            let config = load_config(&path)?;
            let notes = config.check_files()?;
            println!("{}: ok", path.display());
            println!("listen: {}", config.listen);
            println!("data_dir: {}", config.data_dir.display());
            println!(
                "auth.domain: {} (chain id {})",
                config.auth.domain,
                config.auth_chain_id()
            );
            for note in notes {
                println!("{note}");
            }
            Ok(())
        }
    }
}

#[derive(Subcommand)]
enum ChainCommand {
    /// Deploy the test token and the Market to a development chain (anvil's first funded
    /// account pays) and print the `[chain]` config lines to paste.
    DeployDev {
        /// JSON-RPC endpoint of the development chain.
        #[arg(long, default_value = "http://127.0.0.1:8545")]
        rpc: String,
        /// Bound on waiting for the chain, in seconds.
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
    },
}

fn chain_command(command: ChainCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match command {
        ChainCommand::DeployDev { rpc, timeout_secs } => {
            let deployment = runtime.block_on(grid_chain::deploy_dev(
                &rpc,
                Duration::from_secs(timeout_secs),
            ))?;
            eprintln!(
                "deployed TestToken at {} and Market at {} (deployer {})",
                deployment.token, deployment.market, deployment.deployer
            );
            use std::io::Write;
            write!(std::io::stdout(), "{}", deployment.config_toml())?;
            Ok(())
        }
    }
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Evaluate a policy on a fixture (or a directory of fixtures) and print the answers as JSON.
    ///
    /// Exit 0 when every fixture got an answer (matching its `expect`, if it has one);
    /// 1 when the policy cannot be loaded or evaluated, or an answer differs from `expect`.
    Run {
        #[command(flatten)]
        policy: PolicyArgs,
        /// A fixture file, or a directory whose *.json files (but settings.json) are fixtures.
        #[arg(long)]
        input: PathBuf,
    },
    /// Load a policy as the gateway would (compile, world, imports, settings) without evaluating.
    Check {
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Evaluate a fixture many times and print p50/p99/mean per evaluation (µs).
    Bench {
        #[command(flatten)]
        policy: PolicyArgs,
        /// The fixture to evaluate (the first one, for a directory).
        #[arg(long)]
        input: PathBuf,
        /// Timed evaluations.
        #[arg(long, default_value_t = 10_000)]
        iterations: u32,
        /// Untimed evaluations first (warm instances, caches).
        #[arg(long, default_value_t = 200)]
        warmup: u32,
    },
    /// Replay recorded evaluations (`[policy.recording]`) on a candidate policy and report
    /// what would change: outcome transitions, price deltas, examples.
    ///
    /// Records of another world than the candidate's are skipped and counted; bad lines
    /// (corrupt, truncated) are reported with their line number and counted. Exit 0 when
    /// the replay ran, whatever changed; 1 only on a usage or load error (no --policy, an
    /// unreadable recording, a candidate that does not load).
    Replay {
        #[command(flatten)]
        policy: PolicyArgs,
        /// A recording file (`recording-*.jsonl`); repeat for several.
        #[arg(long = "recording", required = true)]
        recordings: Vec<PathBuf>,
        /// Changed answers to show, with their input and both answers.
        #[arg(long, default_value_t = 5)]
        examples: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Scaffold a policy project (Rust, TypeScript or Python) that builds and passes its own
    /// fixtures as generated, with a README of the loop.
    ///
    /// Refuses a bad name (`bad_name`), an existing non-empty directory
    /// (`directory_not_empty`), and, for TypeScript and Python, no grid-gateway checkout to
    /// take the SDK from (`sdk_not_found`).
    New {
        /// The policy's language.
        #[arg(long, value_enum)]
        lang: LangArg,
        /// The world the policy implements.
        #[arg(long, value_enum)]
        world: WorldArg,
        /// The project's name: lower-case letters, digits and single dashes (`my-pricing`).
        name: String,
        /// The project directory (created; must be absent or empty). Default: ./NAME.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A grid-gateway checkout to take the SDK from. Default: the checkout the project
        /// directory is in, else the one this binary was built from.
        #[arg(long)]
        sdk_path: Option<PathBuf>,
    },
    /// Push a component and its settings to an OCI registry as a policy artefact, signed
    /// with --sign-key when given. Prints the reference, digest and signer as JSON.
    Push {
        /// Where to push: `registry/repository:tag`.
        reference: String,
        /// The world the policy implements.
        #[arg(long, value_enum)]
        world: WorldArg,
        /// The component (.wasm).
        #[arg(long)]
        policy: PathBuf,
        /// The policy's settings (JSON).
        #[arg(long)]
        settings: Option<PathBuf>,
        /// A file holding the signer's private key in hex (the node wallet's format).
        #[arg(long)]
        sign_key: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryFlags,
    },
    /// Sign the artefact a reference points at now (EIP-191 over its manifest digest) and
    /// push the signature beside it (tag `sha256-<hex>.sig`).
    Sign {
        /// `registry/repository:tag` or `registry/repository@sha256:…`.
        reference: String,
        /// A file holding the signer's private key in hex.
        #[arg(long)]
        sign_key: PathBuf,
        #[command(flatten)]
        registry: RegistryFlags,
    },
    /// Pull a policy artefact, verify it (digests; signature when --trusted-signer is
    /// given) and write `<world>.wasm` and `<world>.settings.json` into --out.
    Pull {
        /// `registry/repository:tag` or `registry/repository@sha256:…`.
        reference: String,
        /// The world the policy implements (names the files written).
        #[arg(long, value_enum)]
        world: WorldArg,
        /// Directory to write into (a policy directory, say).
        #[arg(long)]
        out: PathBuf,
        /// Accept only artefacts signed by this address (repeatable).
        #[arg(long = "trusted-signer")]
        trusted_signers: Vec<grid_chain::Address>,
        #[command(flatten)]
        registry: RegistryFlags,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LangArg {
    Rust,
    #[value(alias = "ts")]
    Typescript,
    #[value(alias = "py")]
    Python,
}

impl From<LangArg> for Lang {
    fn from(l: LangArg) -> Self {
        match l {
            LangArg::Rust => Lang::Rust,
            LangArg::Typescript => Lang::TypeScript,
            LangArg::Python => Lang::Python,
        }
    }
}

#[derive(Args)]
struct RegistryFlags {
    /// Speak plain HTTP to the registry (one on loopback); HTTPS otherwise.
    #[arg(long)]
    plain_http: bool,
    /// Registry credentials: a Docker config.json-style file (`{"auths": {...}}`).
    #[arg(long)]
    credentials: Option<PathBuf>,
}

impl RegistryFlags {
    fn args(&self) -> registry_cmd::RegistryArgs {
        registry_cmd::RegistryArgs {
            plain_http: self.plain_http,
            credentials: self.credentials.clone(),
        }
    }
}

/// A registry refusal as the CLI prints it: its stable code first.
fn with_code(error: grid_gateway::oci::OciError) -> anyhow::Error {
    anyhow::anyhow!("{}: {error}", error.code())
}

fn registry_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

#[derive(Clone, Copy, ValueEnum)]
enum WorldArg {
    Pricing,
    Payee,
    Authorization,
}

impl From<WorldArg> for World {
    fn from(w: WorldArg) -> Self {
        match w {
            WorldArg::Pricing => World::Pricing,
            WorldArg::Payee => World::Payee,
            WorldArg::Authorization => World::Authorization,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum IsolationArg {
    /// Reuse warm instances; discard after a failure or --max-uses evaluations.
    Pooled,
    /// A new instance per evaluation.
    Fresh,
}

#[derive(Args)]
struct PolicyArgs {
    /// The world the policy implements (inferred from the fixture for run and bench).
    #[arg(long, value_enum)]
    world: Option<WorldArg>,
    /// The component (.wasm); the built-in reference policy of the world when omitted.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The policy's settings (JSON).
    #[arg(long)]
    settings: Option<PathBuf>,
    /// Deadline of one evaluation, in milliseconds (loading the policy, its instantiation
    /// and settings check, gets at least as long).
    #[arg(long, default_value_t = 10)]
    deadline_ms: u64,
    /// Memory cap of one instance, in MiB.
    #[arg(long, default_value_t = 64)]
    memory_mib: usize,
    /// How instances are reused.
    #[arg(long, value_enum, default_value_t = IsolationArg::Pooled)]
    isolation: IsolationArg,
    /// With pooled isolation: evaluations one instance serves before it is replaced.
    #[arg(long, default_value_t = 1000)]
    max_uses: u32,
    /// Keep compiled components in this directory (as the gateway's
    /// `data_dir/policy-cache`) and load them from it instead of compiling again.
    #[arg(long)]
    compile_cache: Option<PathBuf>,
}

impl PolicyArgs {
    fn options(&self) -> PolicyOptions {
        let deadline = Duration::from_millis(self.deadline_ms);
        PolicyOptions {
            world: self.world.map(World::from),
            policy: self.policy.clone(),
            settings: self.settings.clone(),
            limits: RuntimeLimits {
                deadline,
                // The config requires load_deadline >= deadline; a longer --deadline-ms than
                // the default load deadline would otherwise refuse every run.
                load_deadline: RuntimeLimits::default().load_deadline.max(deadline),
                memory_bytes: self.memory_mib.saturating_mul(1 << 20),
                isolation: match self.isolation {
                    IsolationArg::Pooled => Isolation::Pooled {
                        max_uses: self.max_uses,
                    },
                    IsolationArg::Fresh => Isolation::Fresh,
                },
                ..RuntimeLimits::default()
            },
            compile_cache: self.compile_cache.clone(),
        }
    }
}

/// Prints JSON to stdout; a closed pipe (`| head`) is an error to report, not a panic.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn policy_command(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Run { policy, input } => match policy_cmd::run(&policy.options(), &input) {
            Ok(results) => {
                // One fixture: print its answer alone, the common case while iterating.
                if let [single] = results.as_slice() {
                    print_json(&single.outcome)
                } else {
                    print_json(&results)
                }
            }
            Err((results, error)) => {
                for r in &results {
                    if let Some(diff) = &r.mismatch {
                        eprintln!("{}: {diff}", r.fixture.display());
                    }
                }
                if !results.is_empty() {
                    print_json(&results)?;
                }
                Err(error.into())
            }
        },
        PolicyCommand::Check { policy } => {
            let options = policy.options();
            if options.world.is_none() {
                return Err(CommandError::NoWorld.into());
            }
            print_json(&policy_cmd::check(&options)?)
        }
        PolicyCommand::Bench {
            policy,
            input,
            iterations,
            warmup,
        } => print_json(&policy_cmd::bench(
            &policy.options(),
            &input,
            iterations,
            warmup,
        )?),
        PolicyCommand::Replay {
            policy,
            recordings,
            examples,
            json,
        } => {
            let report = replay_cmd::replay(&replay_cmd::ReplayOptions {
                policy: policy.options(),
                recordings,
                examples,
            })?;
            for bad in &report.bad_lines {
                eprintln!("{}:{}: {}", bad.file.display(), bad.line, bad.error);
            }
            if json {
                print_json(&report)
            } else {
                print!("{}", replay_cmd::render_text(&report));
                Ok(())
            }
        }
        PolicyCommand::New {
            lang,
            world,
            name,
            dir,
            sdk_path,
        } => {
            let made = scaffold::new_project(&NewOptions {
                lang: lang.into(),
                world: world.into(),
                name,
                dir,
                sdk_path,
                // The checkout this binary was built from, if it is still there.
                fallback_checkout: std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .parent()
                    .map(std::path::Path::to_path_buf),
            })?;
            let sdk = match &made.sdk {
                SdkSource::Path(p) => format!("the SDK by path: {p}"),
                SdkSource::Registry(v) => format!("grid-policy-sdk {v} from crates.io"),
            };
            println!("created {} ({sdk})", made.dir.display());
            for file in &made.files {
                println!("  {}", file.display());
            }
            println!("next: {}", made.dir.join("README.md").display());
            Ok(())
        }
        PolicyCommand::Push {
            reference,
            world,
            policy,
            settings,
            sign_key,
            registry,
        } => print_json(
            &registry_runtime()?
                .block_on(registry_cmd::push(
                    &registry.args(),
                    &reference,
                    world.into(),
                    &policy,
                    settings.as_deref(),
                    sign_key.as_deref(),
                ))
                .map_err(with_code)?,
        ),
        PolicyCommand::Sign {
            reference,
            sign_key,
            registry,
        } => print_json(
            &registry_runtime()?
                .block_on(registry_cmd::sign(&registry.args(), &reference, &sign_key))
                .map_err(with_code)?,
        ),
        PolicyCommand::Pull {
            reference,
            world,
            out,
            trusted_signers,
            registry,
        } => print_json(
            &registry_runtime()?
                .block_on(registry_cmd::pull(
                    &registry.args(),
                    &reference,
                    world.into(),
                    trusted_signers,
                    &out,
                ))
                .map_err(with_code)?,
        ),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` installs its own subscriber (its config chooses the format).
    if !matches!(cli.command, Command::Serve { .. }) {
        init_cli_tracing();
    }
    let result = match cli.command {
        Command::Policy(command) => policy_command(command),
        Command::Chain(command) => chain_command(command),
        Command::Serve { config } => serve_command(&config),
        Command::Config(command) => config_command(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_cli_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}
