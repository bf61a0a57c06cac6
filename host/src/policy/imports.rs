//! Which imports a policy component may have. A policy gets `grid:policy` and the part of
//! WASI 0.2 that language runtimes (Rust's std, componentize-js, componentize-py) import
//! for their own start-up, each with a fixed, bounded meaning:
//!
//! | import | what the policy gets |
//! |---|---|
//! | `wasi:clocks/wall-clock`, `monotonic-clock` | the host's now, frozen for the evaluation (a fixture's `now` when it sets one) |
//! | `wasi:random/*` | random bytes, bounded per call and per evaluation |
//! | `wasi:cli/stdout`, `stderr` | a discarding sink with the per-evaluation output budget |
//! | `wasi:cli/stdin` | an empty stream |
//! | `wasi:cli/environment` | no variables, no arguments, no working directory |
//! | `wasi:cli/exit`, `terminal-*` | a trap; no terminals |
//! | `wasi:filesystem/*` | no preopened directories, so no file can be opened |
//! | `wasi:io/*` | streams and pollables of the above; blocking waits trap |
//!
//! Anything else — `wasi:sockets`, `wasi:http` (the shape of a network capability: never
//! granted), or an interface the gateway does not know — refuses the component at load,
//! naming the import and, for the known cases, the build flag that leaves it out.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::error::LoadError;

/// Interfaces (package/name, any 0.2 version) a policy may import.
const ALLOWED: &[&str] = &[
    "grid:policy/host",
    "grid:policy/types",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// Refuses a component that imports anything outside [`ALLOWED`], naming the first such
/// import (and all of them, in order, in the message).
pub(crate) fn check(engine: &Engine, component: &Component) -> Result<(), LoadError> {
    let refused: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|name| !is_allowed(name))
        .map(describe)
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Imports(refused.join("; ")))
    }
}

/// `name` without its `@version`, if it is an allowed interface of WASI 0.2 or grid:policy.
fn is_allowed(name: &str) -> bool {
    let (interface, version) = name.split_once('@').unwrap_or((name, ""));
    let version_ok = if interface.starts_with("wasi:") {
        version.starts_with("0.2.")
    } else {
        true
    };
    version_ok && ALLOWED.contains(&interface)
}

/// The import's name and why it is refused, with the build flag that avoids it.
fn describe(name: &str) -> String {
    let hint = if name.starts_with("wasi:http/") {
        "a network capability the gateway never grants; componentize-js: build with \
         `--disable http --disable fetch-event`; componentize-py: build with `--stub-wasi`"
    } else if name.starts_with("wasi:sockets/") {
        "policies have no network; componentize-py: build with `--stub-wasi`; \
         componentize-js: build with `--disable http`"
    } else if name.starts_with("wasi:") {
        "not provided to policies (only clocks, random, stdio, an empty environment and \
         filesystem of WASI 0.2); componentize-py: `--stub-wasi` removes WASI imports"
    } else {
        "not provided to policies (they import grid:policy and a bounded part of WASI 0.2)"
    };
    format!("`{name}` ({hint})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasi_0_2_runtime_imports_are_allowed_and_network_is_not() {
        assert!(is_allowed("wasi:clocks/wall-clock@0.2.0"));
        assert!(is_allowed("wasi:filesystem/preopens@0.2.3"));
        assert!(is_allowed("grid:policy/host@0.1.0"));
        assert!(!is_allowed("wasi:http/outgoing-handler@0.2.0"));
        assert!(!is_allowed("wasi:sockets/tcp@0.2.0"));
        assert!(!is_allowed("wasi:clocks/wall-clock@0.3.0"));
        assert!(!is_allowed("wasi:keyvalue/store@0.2.0-draft"));
        assert!(describe("wasi:http/types@0.2.0").contains("--disable http"));
        assert!(describe("wasi:sockets/tcp@0.2.0").contains("--stub-wasi"));
    }
}
