//! What can go wrong loading or evaluating a policy. Every failure of a policy ends here
//! as a value; none of them panics or hangs the gateway.

use std::path::PathBuf;
use std::time::Duration;

use super::world::World;

/// Why a policy version could not be put into service. The previous version (if any)
/// keeps serving; the error is kept for `/_grid/v1/node` and the logs.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The `.wasm` or settings file could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// The `.wasm` or settings file is larger than `policy.max_file_bytes`: it is not read
    /// (or, when it grew while being read, not read further).
    #[error("{path} has {size} bytes, more than policy.max_file_bytes ({limit})")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size when refused.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// The bytes are not a valid WebAssembly component (or are a core module).
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    /// The component needs imports the gateway does not provide (a policy gets
    /// `grid:policy` and a bounded part of WASI 0.2, see `policy::imports`); the message
    /// names each such import and the build flag that leaves it out.
    #[error("the component imports something the gateway does not provide: {0}")]
    Imports(String),
    /// The component does not export the world it is loaded as.
    #[error("the component does not implement the {expected} world ({wit}): {detail}", wit = expected.wit_id())]
    WrongWorld {
        /// The world it was loaded as.
        expected: World,
        /// What is missing or mistyped.
        detail: String,
    },
    /// The settings file is not UTF-8 text.
    #[error("the settings file is not UTF-8 text")]
    SettingsNotText,
    /// The policy's `validate-settings` refused the settings.
    #[error("the policy rejected its settings: {0}")]
    SettingsRejected(String),
    /// `validate-settings` itself failed (trap, deadline, memory).
    #[error("validating settings failed: {0}")]
    SettingsEvaluation(#[source] EvalError),
    /// The artefact was not accepted before compiling (an unsigned or tampered artefact
    /// from a registry, the registry unreachable): `code` is the distributor's stable code
    /// (`policy_unsigned`, `policy_digest_mismatch`, ...).
    #[error("{message}")]
    Refused {
        /// Stable snake_case code.
        code: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl LoadError {
    /// True when loading the same bytes again would fail the same way (a corrupt file, a
    /// wrong world, refused settings), so the file need not be retried until it changes.
    /// A read error or a failed settings evaluation (a deadline missed on a busy machine)
    /// may pass next time.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            LoadError::Compile(_)
                | LoadError::Imports(_)
                | LoadError::WrongWorld { .. }
                | LoadError::SettingsNotText
                | LoadError::SettingsRejected(_)
        )
    }

    /// A stable snake_case code for metrics, logs and the node endpoint.
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::Read { .. } => "read_failed",
            LoadError::TooLarge { .. } => "policy_file_too_large",
            LoadError::Compile(_) => "invalid_component",
            LoadError::Imports(_) => "unsupported_imports",
            LoadError::WrongWorld { .. } => "wrong_world",
            LoadError::SettingsNotText => "settings_not_text",
            LoadError::SettingsRejected(_) => "settings_rejected",
            LoadError::SettingsEvaluation(_) => "settings_evaluation_failed",
            LoadError::Refused { code, .. } => code,
        }
    }
}

/// Why one evaluation gave no answer. The caller turns it into a refusal of the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The policy ran past its deadline and was interrupted.
    #[error("the policy ran past its {0:?} deadline")]
    Deadline(Duration),
    /// The policy tried to grow its memory past the cap.
    #[error("the policy exceeded its memory limit of {0} bytes")]
    Memory(usize),
    /// The policy trapped (a panic, an unreachable, a stack overflow …).
    #[error("the policy trapped: {0}")]
    Trap(String),
    /// The policy answered something that is not a valid answer (a price that is not a
    /// number, say).
    #[error("the policy returned an invalid answer: {0}")]
    InvalidOutput(String),
    /// A new instance could not be created (the instance pool is exhausted, or the
    /// component's start-up failed).
    #[error("the policy could not be instantiated: {0}")]
    Instantiate(String),
    /// The call belongs to another world than the policy's (a fixture for the wrong
    /// policy, say).
    #[error("a {call} call cannot be evaluated by a {policy} policy")]
    WrongCall {
        /// The world of the call.
        call: World,
        /// The world of the policy.
        policy: World,
    },
    /// The evaluation was lost: its host code panicked, or the evaluation threads are gone.
    #[error("the evaluation was cancelled")]
    Cancelled,
    /// More evaluations are waiting than the evaluation threads can take; the gateway
    /// refuses rather than queue without bound.
    #[error("too many policy evaluations are waiting")]
    Overloaded,
}

impl EvalError {
    /// A stable snake_case label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            EvalError::Deadline(_) => "deadline",
            EvalError::Memory(_) => "memory",
            EvalError::Trap(_) => "trap",
            EvalError::InvalidOutput(_) => "invalid_output",
            EvalError::Instantiate(_) => "instantiate",
            EvalError::WrongCall { .. } => "wrong_call",
            EvalError::Cancelled => "cancelled",
            EvalError::Overloaded => "overloaded",
        }
    }
}
