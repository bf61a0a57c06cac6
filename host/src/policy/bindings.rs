//! Host-side bindings of the `grid:policy` worlds, generated from `wit/`.
//!
//! The pricing bindings own the shared `types` and `host` interfaces; the other two worlds
//! reuse them (`with`), so the gateway has one Rust type per WIT type and one
//! implementation of the host interface.

#![allow(missing_docs, clippy::all)]

pub mod pricing {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "grid:policy/pricing@0.1.0",
    });
}

pub mod payee {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "grid:policy/payee@0.1.0",
        with: {
            "grid:policy/types@0.1.0": super::pricing::grid::policy::types,
            "grid:policy/host@0.1.0": super::pricing::grid::policy::host,
        },
    });
}

pub mod authorization {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "grid:policy/authorization@0.1.0",
        with: {
            "grid:policy/types@0.1.0": super::pricing::grid::policy::types,
            "grid:policy/host@0.1.0": super::pricing::grid::policy::host,
        },
    });
}

pub use pricing::grid::policy::host;
pub use pricing::grid::policy::types;
