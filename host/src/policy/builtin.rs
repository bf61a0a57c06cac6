//! The reference policies embedded in the binary, so a gateway with an empty policy
//! directory still prices, checks payees and authorizes (feature `builtin-policies`).

use std::path::PathBuf;

use super::compiled::PolicySource;
use super::world::World;

/// A policy compiled into the gateway.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinPolicy {
    /// The world it serves.
    pub world: World,
    /// Its crate name under `policies/`.
    pub name: &'static str,
    /// The component bytes.
    pub wasm: &'static [u8],
}

#[cfg(feature = "builtin-policies")]
const BUILTIN: [BuiltinPolicy; 3] = [
    BuiltinPolicy {
        world: World::Pricing,
        name: "pricing-linear",
        wasm: include_bytes!(env!("GRID_WASM_PRICING_LINEAR")),
    },
    BuiltinPolicy {
        world: World::Payee,
        name: "payee-wallets",
        wasm: include_bytes!(env!("GRID_WASM_PAYEE_WALLETS")),
    },
    BuiltinPolicy {
        world: World::Authorization,
        name: "authz-order-owner",
        wasm: include_bytes!(env!("GRID_WASM_AUTHZ_ORDER_OWNER")),
    },
];

#[cfg(not(feature = "builtin-policies"))]
const BUILTIN: [BuiltinPolicy; 0] = [];

/// The built-in policy of a world, if the binary carries one.
pub fn builtin(world: World) -> Option<BuiltinPolicy> {
    BUILTIN.iter().copied().find(|b| b.world == world)
}

/// Every built-in policy.
pub fn all() -> &'static [BuiltinPolicy] {
    &BUILTIN
}

/// What serves `world`: the operator's file (its path and bytes) when there is one, else
/// the built-in policy. Returns the policy's display name, source and bytes; `None` when
/// there is neither.
pub fn choose(
    world: World,
    file: Option<(PathBuf, Vec<u8>)>,
) -> Option<(String, PolicySource, Vec<u8>)> {
    match file {
        Some((path, wasm)) => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Some((name, PolicySource::File(path), wasm))
        }
        None => builtin(world).map(|b| {
            (
                format!("builtin:{}", b.name),
                PolicySource::Builtin,
                b.wasm.to_vec(),
            )
        }),
    }
}
