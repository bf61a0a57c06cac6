//! Shared helpers of the host's integration tests: the real wasm components build.rs
//! built, fixtures, engines with test limits.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use grid_gateway::policy::{
    CompiledPolicy, Isolation, PolicyEngine, PolicySource, RuntimeLimits, World,
};
use grid_policy_sdk::{Address, NodeInfo, Resources};

pub const PRICING_LINEAR: &str = env!("GRID_WASM_PRICING_LINEAR");
pub const PAYEE_WALLETS: &str = env!("GRID_WASM_PAYEE_WALLETS");
pub const AUTHZ_ORDER_OWNER: &str = env!("GRID_WASM_AUTHZ_ORDER_OWNER");
pub const HOSTILE: &str = env!("GRID_WASM_HOSTILE");
/// An authorization policy that prints and panics on request (`policies/testing/chatty-authz`).
pub const CHATTY_AUTHZ: &str = env!("GRID_WASM_CHATTY_AUTHZ");
/// The example pricing policy of `examples/pricing-surge`.
pub const PRICING_SURGE: &str = env!("GRID_WASM_PRICING_SURGE");

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn fixtures_of(policy: &str) -> PathBuf {
    workspace().join("policies").join(policy).join("fixtures")
}

pub fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Limits for tests: a short deadline and small memory so hostile cases end quickly.
pub fn test_limits(isolation: Isolation) -> RuntimeLimits {
    RuntimeLimits {
        deadline: Duration::from_millis(50),
        memory_bytes: 16 << 20,
        max_instances: 64,
        isolation,
        ..RuntimeLimits::default()
    }
}

pub fn engine(isolation: Isolation) -> PolicyEngine {
    PolicyEngine::builder()
        .limits(test_limits(isolation))
        .build()
        .unwrap()
}

pub fn load(engine: &PolicyEngine, world: World, path: &str, settings: &str) -> CompiledPolicy {
    engine
        .load(
            world,
            Path::new(path).file_name().unwrap().to_str().unwrap(),
            PolicySource::File(path.into()),
            &wasm(path),
            settings,
        )
        .unwrap_or_else(|e| panic!("loading {path}: {e}"))
}

/// A node with 8 cores and 8 GiB free, wallet 0x11…11, on anvil's chain id.
pub fn node() -> NodeInfo {
    let r = Resources {
        cpu_millis: 8000,
        memory_bytes: 8 << 30,
        ..Default::default()
    };
    NodeInfo {
        wallet: Address([0x11; 20]),
        chain_id: 31337,
        total: r.clone(),
        free: r,
    }
}
