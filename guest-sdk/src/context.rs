//! What a policy may ask of the host during an evaluation: the time and a log.

/// Severity of a policy log line; the gateway logs it with the policy's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed.
    Trace,
    /// Detail for the policy author.
    Debug,
    /// Normal operation.
    Info,
    /// Something the operator should look at.
    Warn,
    /// Something went wrong.
    Error,
}

/// Handed to every policy call. In a component it reads the host's clock and writes to
/// the host's log; in a native test, build one with [`Context::at`].
#[derive(Clone, Copy, Debug)]
pub struct Context {
    now: u64,
    sink: fn(Level, &str),
}

impl Context {
    /// A context at a fixed unix time whose log lines go to standard error: for tests.
    pub fn at(now: u64) -> Self {
        Context {
            now,
            sink: |level, message| eprintln!("[{level:?}] {message}"),
        }
    }

    /// A context with a custom log sink (the guest glue passes the host's `log`).
    pub fn with_sink(now: u64, sink: fn(Level, &str)) -> Self {
        Context { now, sink }
    }

    /// Current unix time in seconds, as the gateway sees it.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Writes a log line through the gateway's log.
    pub fn log(&self, level: Level, message: &str) {
        (self.sink)(level, message)
    }
}
