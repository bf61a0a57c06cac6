//! The command-line tools built into the gateway binary (the `clap` definitions live in
//! `main.rs`; the work is done here so it can be tested without a process).

pub mod policy;
pub mod registry;
pub mod replay;
pub mod scaffold;
