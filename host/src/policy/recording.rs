//! Opt-in recording of policy evaluations (`[policy.recording]`): what each policy was
//! asked and what it answered, as JSON lines an operator replays against a candidate
//! (`grid-gateway policy replay`) before putting it into service.
//!
//! Off the request path: an evaluation hands its record to a bounded queue
//! ([`QUEUE_RECORDS`]) and goes on; one writer thread serialises and writes. When the queue
//! is full the record is dropped and counted (`grid_policy_recording_dropped_total`), so a
//! slow disk never slows a quote. Bounded on disk: files of at most `max_bytes`, at most
//! `max_files` of them, the oldest removed first.
//!
//! # What is written, per WIT input type
//!
//! - `quote-request`, `order`, `node-info`, `session-request`: written whole. Every field is
//!   chain data (orders, addresses, amounts) or the node's capacity: nothing secret.
//! - `request-meta`: method, path (already without its query string), host, caller,
//!   order id and scopes as the policy saw them; of the headers only those named in
//!   [`RECORDED_HEADERS`] (an allow-list: a header not on it is never written, whatever
//!   its name). `referer` is not on it although policies see it: it may carry another
//!   site's query string (tokens in links).
//! - answers (`quote`, `decision`, `session-decision`): written whole; a failed
//!   evaluation is written as its stable error code.
//!
//! Session cookies, tokens and `authorization` headers never reach a policy and are not
//! on the allow-list either.
//!
//! # Format (version 1)
//!
//! One JSON object per line, `v` first: see [`Record`]. `now` and `call` are the fixture
//! format's ([`grid_policy_sdk::fixture`]), so `jq '{now, call, expect: .outcome}'` turns
//! a record into a fixture for `policy run`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use grid_policy_sdk as sdk;
use grid_policy_sdk::fixture::{Call, Outcome};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use super::compiled::{CompiledPolicy, rfc3339};
use super::error::EvalError;
use super::metrics::WorldLabels;
use super::state::unix_now;
use super::world::World;

/// Version of the record format, the `v` of every line.
pub const FORMAT_VERSION: u32 = 1;

/// Records waiting for the writer; one more is dropped and counted.
pub const QUEUE_RECORDS: usize = 4096;

/// Request headers written for `authorize-request` (lower case): the allow-list.
pub const RECORDED_HEADERS: [&str; 6] = [
    "accept",
    "content-length",
    "content-type",
    "origin",
    "upgrade",
    "user-agent",
];

/// Name prefix and suffix of recording files: `recording-00000001.jsonl`.
const FILE_PREFIX: &str = "recording-";
const FILE_SUFFIX: &str = ".jsonl";

/// Whether `name` is a recording file's name (`recording-<digits>.jsonl`): nothing else,
/// no separator, so it can name a file in the recordings directory only.
pub fn is_file_name(name: &str) -> bool {
    name.strip_prefix(FILE_PREFIX)
        .and_then(|rest| rest.strip_suffix(FILE_SUFFIX))
        .is_some_and(|seq| !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()))
}

/// `[policy.recording]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    /// Record evaluations. Default false.
    pub enabled: bool,
    /// Where the files go. Default none: `<data_dir>/policy-recordings`.
    pub dir: Option<PathBuf>,
    /// Largest file, in bytes; the next record starts a new file. Default 64 MiB.
    pub max_bytes: u64,
    /// Files kept; the oldest is removed when a new one would exceed it. Default 8.
    pub max_files: u32,
    /// Share of per-request authorizations (`authorize-request`) recorded, 0 to 1: every
    /// proxied request is one. Quotes, payee checks and sessions are all recorded.
    /// Default 0.01.
    pub request_sample_rate: f64,
}

/// Default of `max_bytes`: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// Smallest `max_bytes` accepted: a record is a few hundred bytes to a few KiB.
pub const MIN_MAX_BYTES: u64 = 4096;

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            enabled: false,
            dir: None,
            max_bytes: DEFAULT_MAX_BYTES,
            max_files: 8,
            request_sample_rate: 0.01,
        }
    }
}

impl RecordingConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_bytes < MIN_MAX_BYTES {
            return Err((
                "policy.recording.max_bytes",
                format!("must be at least {MIN_MAX_BYTES}"),
            ));
        }
        if self.max_files == 0 {
            return Err(("policy.recording.max_files", "must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&self.request_sample_rate) {
            return Err((
                "policy.recording.request_sample_rate",
                "must be between 0 and 1".into(),
            ));
        }
        Ok(())
    }

    /// The directory files go to.
    pub fn dir_in(&self, data_dir: &Path) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| data_dir.join("policy-recordings"))
    }
}

/// The policy version a record was answered by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedPolicy {
    /// Its name.
    pub name: String,
    /// sha256 of the component, hex.
    pub sha256: String,
    /// sha256 of its settings text, hex.
    pub settings_sha256: String,
    /// The registry manifest digest, for a version pulled from a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// One line of a recording. `O` is the answer's type: [`Outcome`] when written, a JSON
/// value when read back (an untagged outcome is only unambiguous knowing the world).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record<O = serde_json::Value> {
    /// Format version ([`FORMAT_VERSION`]).
    pub v: u32,
    /// The world evaluated.
    pub world: World,
    /// When it was recorded (RFC 3339).
    pub at: String,
    /// The unix second the evaluation started: replay fixes the policy's clock to it.
    pub now: u64,
    /// The version that answered.
    pub policy: RecordedPolicy,
    /// The question, in the fixture format.
    pub call: Call,
    /// The answer, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<O>,
    /// The stable code of the failure ([`EvalError::kind`]), when there was no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Labels of a dropped record.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// `queue_full`, `too_large` (one record above `max_bytes`) or `write_failed`.
    pub reason: String,
}

/// The recorder's metrics. Cloning shares the series.
#[derive(Clone, Default)]
pub struct RecordingMetrics {
    /// Records written, by world.
    pub recorded: Family<WorldLabels, Counter>,
    /// Records not written, by reason.
    pub dropped: Family<DropLabels, Counter>,
}

impl RecordingMetrics {
    /// Registers the series under `grid_policy_`.
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("grid_policy");
        sub.register(
            "recorded",
            "Policy evaluations written to the recording, by world",
            self.recorded.clone(),
        );
        sub.register(
            "recording_dropped",
            "Policy evaluations not recorded, by reason",
            self.dropped.clone(),
        );
    }

    fn drop_one(&self, reason: &str) {
        self.dropped
            .get_or_create(&DropLabels {
                reason: reason.into(),
            })
            .inc();
    }
}

/// Why recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The directory could not be created or read, or the writer thread not started.
    #[error("policy recording directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

struct Entry {
    at: std::time::SystemTime,
    now: u64,
    policy: Arc<CompiledPolicy>,
    call: Call,
    answer: Result<Outcome, &'static str>,
}

enum Message {
    Record(Box<Entry>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// The recorder: the queue's sending end and the sampling state. Dropping the last
/// handle lets the writer drain the queue, flush and stop.
pub struct Recorder {
    queue: SyncSender<Message>,
    sample_rate: f64,
    requests_seen: AtomicU64,
    metrics: RecordingMetrics,
}

impl Recorder {
    /// Creates the directory (private) and starts the writer thread.
    pub fn start(
        config: &RecordingConfig,
        data_dir: &Path,
        metrics: RecordingMetrics,
    ) -> Result<Arc<Recorder>, RecordingError> {
        let dir = config.dir_in(data_dir);
        let err = |source| RecordingError::Dir {
            path: dir.clone(),
            source,
        };
        create_private_dir(&dir).map_err(err)?;
        let files = existing_files(&dir).map_err(err)?;
        let (queue, receiver) = std::sync::mpsc::sync_channel(QUEUE_RECORDS);
        let writer = Writer {
            next_seq: files.last().map_or(1, |(seq, _)| seq + 1),
            files,
            dir: dir.clone(),
            max_bytes: config.max_bytes,
            max_files: config.max_files as usize,
            current: None,
            metrics: metrics.clone(),
            failing: false,
        };
        std::thread::Builder::new()
            .name("policy-recorder".into())
            .spawn(move || writer.run(receiver))
            .map_err(err)?;
        tracing::info!(dir = %dir.display(), "recording policy evaluations");
        Ok(Arc::new(Recorder {
            queue,
            sample_rate: config.request_sample_rate,
            requests_seen: AtomicU64::new(0),
            metrics,
        }))
    }

    /// Whether this per-request authorization is in the sample: exactly
    /// `request_sample_rate` of them, spread evenly (the n-th is taken when
    /// `floor(n × rate)` steps up), with no random numbers on the request path.
    fn sampled(&self) -> bool {
        if self.sample_rate >= 1.0 {
            return true;
        }
        if self.sample_rate <= 0.0 {
            return false;
        }
        let n = self.requests_seen.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * self.sample_rate).floor() > (n * self.sample_rate).floor()
    }

    /// Waits until every record queued so far is written and flushed (tests, shutdown).
    pub fn flush(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.queue.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    fn submit(&self, entry: Entry) {
        match self.queue.try_send(Message::Record(Box::new(entry))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.metrics.drop_one("queue_full"),
            Err(TrySendError::Disconnected(_)) => self.metrics.drop_one("write_failed"),
        }
    }
}

/// An evaluation being recorded; [`Pending::finish`] hands its answer to the writer.
/// Holds nothing when recording is off or the evaluation is not sampled.
#[must_use]
pub struct Pending {
    inner: Option<(Arc<Recorder>, Arc<CompiledPolicy>, Call, u64)>,
}

/// Starts recording an evaluation of `policy`: `call` is built only when recording is on.
pub fn start(
    recorder: &Option<Arc<Recorder>>,
    policy: &Arc<CompiledPolicy>,
    call: impl FnOnce() -> Call,
) -> Pending {
    Pending {
        inner: recorder
            .as_ref()
            .map(|r| (r.clone(), policy.clone(), call(), unix_now())),
    }
}

/// Starts recording a per-request authorization, if it is in the sample; only the
/// allow-listed headers ([`RECORDED_HEADERS`]) are copied.
pub fn start_request(
    recorder: &Option<Arc<Recorder>>,
    policy: &Arc<CompiledPolicy>,
    request: &sdk::RequestMeta,
) -> Pending {
    match recorder {
        Some(r) if r.sampled() => start(recorder, policy, || Call::AuthorizeRequest {
            request: redact_request(request),
        }),
        _ => Pending { inner: None },
    }
}

/// The request as it is written: every field but the headers, and of those only the
/// allow-listed ones.
pub fn redact_request(request: &sdk::RequestMeta) -> sdk::RequestMeta {
    sdk::RequestMeta {
        method: request.method.clone(),
        path: request.path.clone(),
        host: request.host.clone(),
        headers: request
            .headers
            .iter()
            .filter(|(name, _)| {
                RECORDED_HEADERS
                    .iter()
                    .any(|allowed| name.eq_ignore_ascii_case(allowed))
            })
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect(),
        caller: request.caller,
        order_id: request.order_id.clone(),
        scopes: request.scopes.clone(),
    }
}

impl Pending {
    /// Records the answer (`outcome` makes its fixture form) and passes it through.
    pub fn finish<T>(
        self,
        answer: Result<T, EvalError>,
        outcome: impl FnOnce(&T) -> Outcome,
    ) -> Result<T, EvalError> {
        if let Some((recorder, policy, call, now)) = self.inner {
            recorder.submit(Entry {
                at: std::time::SystemTime::now(),
                now,
                policy,
                call,
                answer: match &answer {
                    Ok(value) => Ok(outcome(value)),
                    Err(e) => Err(e.kind()),
                },
            });
        }
        answer
    }
}

struct Writer {
    dir: PathBuf,
    /// Files present, oldest first: (sequence number, path).
    files: Vec<(u64, PathBuf)>,
    next_seq: u64,
    max_bytes: u64,
    max_files: usize,
    /// The file being written and its size.
    current: Option<(BufWriter<File>, u64)>,
    metrics: RecordingMetrics,
    /// A write failed and was logged; the next success is logged too.
    failing: bool,
}

impl Writer {
    fn run(mut self, queue: Receiver<Message>) {
        while let Ok(message) = queue.recv() {
            self.handle(message);
            // Drain what is queued, then flush once: a burst costs one write.
            while let Ok(message) = queue.try_recv() {
                self.handle(message);
            }
            self.flush();
        }
        self.flush();
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Record(entry) => self.write(*entry),
            Message::Flush(done) => {
                self.flush();
                let _ = done.send(());
            }
        }
    }

    fn flush(&mut self) {
        if let Some((file, _)) = &mut self.current
            && let Err(e) = file.flush()
        {
            self.failed(&e);
        }
    }

    fn write(&mut self, entry: Entry) {
        let world = entry.policy.world();
        let info = entry.policy.info();
        let record = Record {
            v: FORMAT_VERSION,
            world,
            at: rfc3339(entry.at),
            now: entry.now,
            policy: RecordedPolicy {
                name: info.name.clone(),
                sha256: info.sha256.clone(),
                settings_sha256: info.settings_sha256.clone(),
                digest: info.artefact.as_ref().map(|a| a.digest.clone()),
            },
            call: entry.call,
            outcome: entry.answer.as_ref().ok().cloned(),
            error: entry.answer.err().map(str::to_owned),
        };
        let mut line = match serde_json::to_vec(&record) {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!(error = %e, "policy recording: a record does not serialize");
                self.metrics.drop_one("write_failed");
                return;
            }
        };
        line.push(b'\n');
        let len = line.len() as u64;
        if len > self.max_bytes {
            self.metrics.drop_one("too_large");
            return;
        }
        if self
            .current
            .as_ref()
            .is_none_or(|(_, size)| size + len > self.max_bytes)
            && let Err(e) = self.rotate()
        {
            self.failed(&e);
            self.metrics.drop_one("write_failed");
            return;
        }
        let Some((file, size)) = &mut self.current else {
            return;
        };
        match file.write_all(&line) {
            Ok(()) => {
                *size += len;
                self.metrics
                    .recorded
                    .get_or_create(&WorldLabels {
                        world: world.name().into(),
                    })
                    .inc();
                if self.failing {
                    self.failing = false;
                    tracing::info!("policy recording: writing again");
                }
            }
            Err(e) => {
                self.failed(&e);
                self.metrics.drop_one("write_failed");
                // Start a new file next time rather than append after a partial line.
                self.current = None;
            }
        }
    }

    /// Closes the current file, opens the next, and removes the oldest beyond `max_files`.
    fn rotate(&mut self) -> std::io::Result<()> {
        if let Some((mut file, _)) = self.current.take() {
            file.flush()?;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = self.dir.join(format!("{FILE_PREFIX}{seq:08}{FILE_SUFFIX}"));
        let file = open_private(&path)?;
        self.files.push((seq, path));
        while self.files.len() > self.max_files {
            let (_, old) = self.files.remove(0);
            if let Err(e) = std::fs::remove_file(&old)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %old.display(), error = %e, "policy recording: cannot remove an old file");
            }
        }
        self.current = Some((BufWriter::new(file), 0));
        Ok(())
    }

    fn failed(&mut self, error: &std::io::Error) {
        if !self.failing {
            self.failing = true;
            tracing::warn!(dir = %self.dir.display(), %error, "policy recording: write failed; records are dropped until a write succeeds");
        }
    }
}

/// The recording files in `dir`, oldest first.
fn existing_files(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(FILE_PREFIX))
            .and_then(|n| n.strip_suffix(FILE_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            files.push((seq, path));
        }
    }
    files.sort();
    Ok(files)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_takes_exactly_the_rate() {
        let config = RecordingConfig {
            request_sample_rate: 0.25,
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::start(&config, dir.path(), Default::default()).unwrap();
        let taken = (0..1000).filter(|_| recorder.sampled()).count();
        assert_eq!(taken, 250);
    }

    #[test]
    fn only_allow_listed_headers_are_kept() {
        let request = sdk::RequestMeta {
            method: "GET".into(),
            path: "/".into(),
            host: None,
            headers: vec![
                ("Content-Type".into(), "text/plain".into()),
                ("authorization".into(), "Bearer secret".into()),
                ("cookie".into(), "grid_session=secret".into()),
                ("x-api-key".into(), "secret".into()),
                ("referer".into(), "https://a.example/?token=secret".into()),
            ],
            caller: None,
            order_id: None,
            scopes: Vec::new(),
        };
        let kept = redact_request(&request);
        assert_eq!(
            kept.headers,
            vec![("content-type".to_owned(), "text/plain".to_owned())]
        );
    }

    #[test]
    fn validation_names_the_key() {
        for (config, key) in [
            (
                RecordingConfig {
                    max_bytes: 10,
                    ..Default::default()
                },
                "policy.recording.max_bytes",
            ),
            (
                RecordingConfig {
                    max_files: 0,
                    ..Default::default()
                },
                "policy.recording.max_files",
            ),
            (
                RecordingConfig {
                    request_sample_rate: 1.5,
                    ..Default::default()
                },
                "policy.recording.request_sample_rate",
            ),
        ] {
            assert_eq!(config.validate().unwrap_err().0, key);
        }
        assert!(RecordingConfig::default().validate().is_ok());
    }
}
