//! Builds the guest crates (the reference policies, the hostile test policy and the example
//! policy in `examples/`) for `wasm32-wasip2` with a nested cargo, so the gateway can embed
//! the reference policies and the tests can load real components, all from a plain
//! `cargo build` / `cargo test`.
//!
//! The nested build uses its own target directory (beside the outer one) so it never waits
//! on the outer build's lock, and a clean environment so the outer build's flags, wrappers
//! (clippy) and target do not leak into it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Guest crates built here: (package, wasm file stem, env var the host reads). The hostile,
/// chatty and example policies are only read by tests.
const GUESTS: [(&str, &str, &str); 6] = [
    (
        "pricing-linear",
        "pricing_linear",
        "GRID_WASM_PRICING_LINEAR",
    ),
    ("payee-wallets", "payee_wallets", "GRID_WASM_PAYEE_WALLETS"),
    (
        "authz-order-owner",
        "authz_order_owner",
        "GRID_WASM_AUTHZ_ORDER_OWNER",
    ),
    ("hostile-policy", "hostile_policy", "GRID_WASM_HOSTILE"),
    ("chatty-authz", "chatty_authz", "GRID_WASM_CHATTY_AUTHZ"),
    ("pricing-surge", "pricing_surge", "GRID_WASM_PRICING_SURGE"),
];

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "policy";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    // Only the example policy of `examples/`: app manifests and walkthroughs there are no
    // reason to rebuild the gateway.
    for dir in ["wit", "guest-sdk", "policies", "examples/pricing-surge"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    println!("cargo:rerun-if-env-changed=GRID_GUEST_TARGET_DIR");

    let target_dir = guest_target_dir(&workspace);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        // By the time a build script runs the outer cargo has settled Cargo.lock; the
        // nested build must not change it.
        .args([
            "build",
            "--locked",
            "--target",
            TARGET,
            "--profile",
            PROFILE,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for (package, _, _) in GUESTS {
        cmd.args(["-p", package]);
    }
    // Drop what cargo sets for this build script and what would change the nested build's
    // target, flags or compiler (clippy's wrapper, say); keep the user's cargo settings
    // (CARGO_HOME, registries, proxies, network) and the jobserver (CARGO_MAKEFLAGS), so
    // the nested build shares the outer build's job slots.
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let set_for_build_script = [
            "CARGO_PKG_",
            "CARGO_CFG_",
            "CARGO_FEATURE_",
            "CARGO_MANIFEST_",
            "CARGO_PROFILE_",
        ]
        .iter()
        .any(|prefix| key.starts_with(prefix));
        let changes_the_build = matches!(
            key,
            "CARGO_ENCODED_RUSTFLAGS"
                | "CARGO_TARGET_DIR"
                | "CARGO_BUILD_TARGET"
                | "CARGO_BUILD_TARGET_DIR"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_CRATE_NAME"
                | "RUSTFLAGS"
                | "RUSTDOCFLAGS"
                | "RUSTC_WRAPPER"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "RUSTC"
                | "RUSTDOC"
        );
        if set_for_build_script || changes_the_build {
            cmd.env_remove(key);
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the policies: {e}"));
    if !status.success() {
        panic!(
            "building the policies for {TARGET} failed (see above). If the target is missing: \
             `rustup target add {TARGET}`"
        );
    }
    for (_, stem, var) in GUESTS {
        let wasm = target_dir
            .join(TARGET)
            .join(PROFILE)
            .join(format!("{stem}.wasm"));
        assert!(wasm.exists(), "{} was not produced", wasm.display());
        println!("cargo:rustc-env={var}={}", wasm.display());
    }
}

/// `<outer target dir>/guests`, found from OUT_DIR (`<target>/<profile>/build/<pkg>/out`,
/// or one level deeper with `--target`), unless GRID_GUEST_TARGET_DIR says otherwise.
fn guest_target_dir(workspace: &Path) -> PathBuf {
    if let Some(dir) = env::var_os("GRID_GUEST_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    out_dir
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").exists())
        .map(|target| target.join("guests"))
        .unwrap_or_else(|| workspace.join("target").join("guests"))
}
