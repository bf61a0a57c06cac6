//! `grid-gateway policy run|check|bench`: a policy author's local loop, like `kwctl` for
//! Kubewarden. Evaluates a policy against JSON fixtures without a running gateway.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use grid_policy_sdk::fixture::{self, Fixture};
use serde::Serialize;

use crate::policy::builtin;
use crate::policy::{
    CompiledPolicy, EngineError, EvalError, Isolation, LoadError, PolicyEngine, RuntimeLimits,
    World,
};

/// What a policy command failed on.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A file could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A fixture is not valid JSON of the fixture format.
    #[error("{path} is not a valid fixture: {message}")]
    Fixture {
        /// The file.
        path: PathBuf,
        /// The parse error.
        message: String,
    },
    /// The fixture asks another world than the policy's.
    #[error("{path} calls the {call} world but the policy is loaded as {world}")]
    WorldMismatch {
        /// The fixture.
        path: PathBuf,
        /// Its call's world.
        call: &'static str,
        /// The policy's world.
        world: World,
    },
    /// No `--policy` and no built-in policy for the world.
    #[error("no --policy given and this binary has no built-in {0} policy")]
    NoPolicy(World),
    /// No `--world` and nothing to infer it from.
    #[error("--world is required when it cannot be inferred from the input")]
    NoWorld,
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The policy could not be loaded. The cause is the error's source, printed once by
    /// `{:#}`.
    #[error("cannot load the policy")]
    Load(#[from] LoadError),
    /// The policy gave no answer.
    #[error("{path}: evaluation failed: {error}")]
    Eval {
        /// The fixture.
        path: PathBuf,
        /// The failure.
        error: EvalError,
    },
    /// One or more fixtures' answers differ from their `expect`.
    #[error("{failed} of {total} fixture(s) did not give the expected answer")]
    Expectation {
        /// How many failed.
        failed: usize,
        /// How many ran.
        total: usize,
    },
    /// `policy replay` without `--policy`: there is no candidate.
    #[error("--policy is required: the candidate to replay the recording on")]
    NoCandidate,
    /// `--iterations` out of range.
    #[error("--iterations must be between 1 and {MAX_BENCH_ITERATIONS}")]
    Iterations,
}

/// The most evaluations `policy bench` times (each sample is kept to compute percentiles).
pub const MAX_BENCH_ITERATIONS: u32 = 10_000_000;

/// Options shared by the policy commands.
#[derive(Clone, Debug, Default)]
pub struct PolicyOptions {
    /// The world; inferred from the fixture when `None`.
    pub world: Option<World>,
    /// The component; the built-in policy of the world when `None`.
    pub policy: Option<PathBuf>,
    /// The settings file; none when `None`.
    pub settings: Option<PathBuf>,
    /// Runtime limits (deadline, memory, isolation).
    pub limits: RuntimeLimits,
    /// A directory for compiled components, as the gateway's `data_dir/policy-cache`: a
    /// component compiled by an earlier command is loaded from it instead of compiled.
    pub compile_cache: Option<PathBuf>,
}

/// How a command got the policy's machine code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadedFrom {
    /// Compiled from the component's bytes.
    Compiled,
    /// Read from the `--compile-cache` directory.
    CompileCache,
}

fn read(path: &Path) -> Result<Vec<u8>, CommandError> {
    std::fs::read(path).map_err(|e| CommandError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

pub(crate) fn load(options: &PolicyOptions, world: World) -> Result<CompiledPolicy, CommandError> {
    Ok(load_timed(options, world)?.0)
}

/// Loads the policy as the gateway does and says how long it took (compile or cache
/// read, link, world check, `validate-settings`) and where the code came from.
fn load_timed(
    options: &PolicyOptions,
    world: World,
) -> Result<(CompiledPolicy, Duration, LoadedFrom), CommandError> {
    let mut builder = PolicyEngine::builder().limits(options.limits.clone());
    if let Some(dir) = &options.compile_cache {
        builder = builder.compile_cache(dir.clone(), crate::policy::disk_cache::DEFAULT_MAX_BYTES);
    }
    let engine = builder.build()?;
    let settings = match &options.settings {
        Some(path) => String::from_utf8(read(path)?).map_err(|_| LoadError::SettingsNotText)?,
        None => String::new(),
    };
    let file = match &options.policy {
        Some(path) => Some((path.clone(), read(path)?)),
        None => None,
    };
    let (name, source, wasm) = builtin::choose(world, file).ok_or(CommandError::NoPolicy(world))?;
    let started = Instant::now();
    let policy = engine.load(world, &name, source, &wasm, &settings)?;
    let took = started.elapsed();
    let from = if engine.metrics().compile_cache_loads.get() > 0 {
        LoadedFrom::CompileCache
    } else {
        LoadedFrom::Compiled
    };
    Ok((policy, took, from))
}

/// Fixture files under `input`: the file itself, or every fixture in the directory.
fn fixtures(input: &Path) -> Result<Vec<(PathBuf, Fixture)>, CommandError> {
    let files = if input.is_dir() {
        fixture::files_in(input).map_err(|e| CommandError::Read {
            path: input.to_owned(),
            message: e.to_string(),
        })?
    } else {
        vec![input.to_owned()]
    };
    files
        .into_iter()
        .map(|path| {
            let fixture = fixture::read_file(&path).map_err(|message| CommandError::Fixture {
                path: path.clone(),
                message,
            })?;
            Ok((path, fixture))
        })
        .collect()
}

fn world_of(
    options: &PolicyOptions,
    fixtures: &[(PathBuf, Fixture)],
) -> Result<World, CommandError> {
    let world = match options.world {
        Some(w) => w,
        None => fixtures
            .first()
            .and_then(|(_, f)| f.call.world().parse().ok())
            .ok_or(CommandError::NoWorld)?,
    };
    for (path, fixture) in fixtures {
        if fixture.call.world() != world.name() {
            return Err(CommandError::WorldMismatch {
                path: path.clone(),
                call: fixture.call.world(),
                world,
            });
        }
    }
    Ok(world)
}

/// One fixture's result in `policy run`'s output.
#[derive(Debug, Serialize)]
pub struct RunResult {
    /// The fixture file.
    pub fixture: PathBuf,
    /// The policy's answer.
    pub outcome: grid_policy_sdk::Outcome,
    /// `None` without an `expect`; else whether the answer matched it.
    pub expect_matched: Option<bool>,
    /// How the answer differs from `expect`, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<String>,
}

/// `policy run`: evaluates each fixture and returns the answers. Fails with
/// [`CommandError::Expectation`] (after computing every answer) when an `expect` differs.
pub fn run(
    options: &PolicyOptions,
    input: &Path,
) -> Result<Vec<RunResult>, (Vec<RunResult>, CommandError)> {
    let prepared = (|| {
        let fixtures = fixtures(input)?;
        let world = world_of(options, &fixtures)?;
        Ok((load(options, world)?, fixtures))
    })();
    let (policy, fixtures) = prepared.map_err(|e| (Vec::new(), e))?;
    let mut results = Vec::new();
    for (path, fixture) in fixtures {
        match policy.evaluate_call(&fixture.call, fixture.now) {
            Ok(outcome) => {
                let checked = fixture.expect.as_ref().map(|_| fixture.check(&outcome));
                results.push(RunResult {
                    fixture: path,
                    outcome,
                    expect_matched: checked.as_ref().map(Result::is_ok),
                    mismatch: checked.and_then(Result::err),
                });
            }
            Err(error) => return Err((results, CommandError::Eval { path, error })),
        }
    }
    let failed = results
        .iter()
        .filter(|r| r.expect_matched == Some(false))
        .count();
    if failed > 0 {
        let total = results.len();
        return Err((results, CommandError::Expectation { failed, total }));
    }
    Ok(results)
}

/// `policy check`'s answer.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// The policy's identity.
    #[serde(flatten)]
    pub info: crate::policy::PolicyInfo,
    /// Always "valid": a check that fails returns an error instead.
    pub settings: &'static str,
}

/// `policy check`: loads the policy as the gateway would (compile, world, imports,
/// settings) without evaluating anything.
pub fn check(options: &PolicyOptions) -> Result<CheckReport, CommandError> {
    let world = options.world.ok_or(CommandError::NoWorld)?;
    let policy = load(options, world)?;
    Ok(CheckReport {
        info: policy.info().clone(),
        settings: "valid",
    })
}

/// `policy bench`'s answer: per-evaluation times in microseconds.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// The fixture benchmarked.
    pub fixture: PathBuf,
    /// Isolation mode in force.
    pub isolation: Isolation,
    /// Evaluations timed.
    pub iterations: u32,
    /// Time to load the policy before the first evaluation: compile (or read from
    /// `--compile-cache`), link, world check, `validate-settings`.
    pub load_ms: f64,
    /// Where the machine code came from.
    pub loaded_from: LoadedFrom,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Fastest.
    pub min_us: f64,
    /// Slowest.
    pub max_us: f64,
}

/// `policy bench`: evaluates the first fixture `iterations` times (after `warmup`
/// untimed evaluations) and reports the distribution.
pub fn bench(
    options: &PolicyOptions,
    input: &Path,
    iterations: u32,
    warmup: u32,
) -> Result<BenchReport, CommandError> {
    if iterations == 0 || iterations > MAX_BENCH_ITERATIONS {
        return Err(CommandError::Iterations);
    }
    let fixtures = fixtures(input)?;
    let world = world_of(options, &fixtures)?;
    let (policy, load_time, loaded_from) = load_timed(options, world)?;
    let Some((path, fixture)) = fixtures.into_iter().next() else {
        return Err(CommandError::Fixture {
            path: input.to_owned(),
            message: "no fixture found".into(),
        });
    };
    let eval = || {
        policy
            .evaluate_call(&fixture.call, fixture.now)
            .map_err(|error| CommandError::Eval {
                path: path.clone(),
                error,
            })
    };
    for _ in 0..warmup {
        eval()?;
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(iterations as usize);
    for _ in 0..iterations {
        let started = Instant::now();
        eval()?;
        samples.push(started.elapsed());
    }
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pick = |q: f64| us(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    let mean = samples.iter().map(|d| us(*d)).sum::<f64>() / samples.len() as f64;
    Ok(BenchReport {
        fixture: path,
        isolation: options.limits.isolation,
        iterations,
        load_ms: load_time.as_secs_f64() * 1e3,
        loaded_from,
        p50_us: pick(0.50),
        p99_us: pick(0.99),
        mean_us: mean,
        min_us: us(samples[0]),
        max_us: us(samples[samples.len() - 1]),
    })
}
