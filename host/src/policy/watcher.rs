//! Hot reload: a policy directory holds, per world, an optional `<world>.wasm` and an
//! optional `<world>.settings.json`. A world without a `.wasm` runs the built-in reference
//! policy (with the directory's settings file, if any).
//!
//! The watcher listens to the directory itself, not to single files, so editor saves,
//! atomic renames and a Kubernetes ConfigMap's `..data` symlink swap are all seen; events
//! are debounced, and a periodic rescan catches what events miss (network filesystems,
//! overlay mounts). A rescan is cheap: files are hashed and only a changed fingerprint is
//! compiled, on a blocking thread, then validated and swapped in.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use super::builtin;
use super::compiled::{PolicySource, sha256_hex};
use super::error::LoadError;
use super::limits::duration_ms;
use super::set::PolicySet;
use super::world::World;

/// How the watcher behaves; every default explained.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// Quiet time after the last file event before rescanning: editors and `cp` write in
    /// several steps; 50 ms joins them without slowing a reload noticeably.
    #[serde(with = "duration_ms", rename = "debounce_ms")]
    pub debounce: Duration,
    /// Rescan this often even without events. 2 s bounds how stale a policy can be on a
    /// filesystem without change events, at the cost of hashing a few hundred KB.
    #[serde(with = "duration_ms", rename = "poll_interval_ms")]
    pub poll_interval: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            debounce: Duration::from_millis(50),
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// First wait before retrying a rescan that failed with unchanged files; doubled per
/// failure up to [`MAX_RETRY_BACKOFF`].
const FIRST_RETRY_BACKOFF: Duration = Duration::from_secs(1);
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);

/// Whether a file event is a change worth a rescan: creations, writes, metadata changes,
/// renames and removals, not reads.
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    matches!(
        kind,
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
    )
}

/// Identity (device, inode), size and modification time of a file, following symlinks (a
/// ConfigMap's `..data` swap changes the inode); `None` when it does not exist.
type FileStamp = Option<(u64, u64, u64, i64, i64)>;

/// The stamps of every file the policies are read from: unchanged stamps mean a rescan
/// would read the same bytes, so it is skipped without opening any file.
fn snapshot(dir: &Path) -> Vec<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    World::ALL
        .iter()
        .flat_map(|&world| [wasm_path(dir, world), settings_path(dir, world)])
        .map(|path| {
            std::fs::metadata(path)
                .ok()
                .map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
        })
        .collect()
}

/// The longest a burst of events can postpone a rescan, in multiples of the debounce.
const MAX_DEBOUNCE_FACTOR: u32 = 10;

/// The files a world's policy is made of, read from disk.
struct Candidate {
    name: String,
    source: PolicySource,
    wasm: Vec<u8>,
    settings: String,
    fingerprint: String,
}

/// The `.wasm` file of a world in a policy directory.
pub fn wasm_path(dir: &Path, world: World) -> PathBuf {
    dir.join(format!("{}.wasm", world.name()))
}

/// The settings file of a world in a policy directory.
pub fn settings_path(dir: &Path, world: World) -> PathBuf {
    dir.join(format!("{}.settings.json", world.name()))
}

/// Why the files of a world could not be read: the error, and for a file refused by its
/// size alone the stamp it was refused at (see [`oversize_fingerprint`]), so the same
/// file is not looked at again until it changes.
pub(crate) type ReadFailure = (LoadError, Option<String>);

/// Stands for an oversize file's bytes in a failure's fingerprint: its path, identity, size
/// and modification time. Unchanged, the file would be refused the same way again.
fn oversize_fingerprint(path: &Path, meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "too-large:{}:{}:{}:{}:{}.{}",
        path.display(),
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    )
}

/// Reads a file of at most `limit` bytes, `None` when it does not exist. The size is
/// checked before reading (from the open file, so a symlink swap in between cannot slip a
/// larger file in) and the read itself stops past `limit`, for a file that grows meanwhile.
pub(crate) fn read_capped(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, ReadFailure> {
    use std::io::Read;
    let read_error = |e: std::io::Error| {
        (
            LoadError::Read {
                path: path.to_owned(),
                message: e.to_string(),
            },
            None,
        )
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(e)),
    };
    let meta = file.metadata().map_err(read_error)?;
    let too_large = |size: u64| LoadError::TooLarge {
        path: path.to_owned(),
        size,
        limit,
    };
    if meta.len() > limit {
        return Err((
            too_large(meta.len()),
            Some(oversize_fingerprint(path, &meta)),
        ));
    }
    // Room for what the metadata promised, and one byte past the cap to notice growth.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limit {
        // Grew while being read: refused, and retried (it may be a copy still under way).
        let size = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        return Err((too_large(size), None));
    }
    Ok(Some(bytes))
}

/// What should serve `world` according to `dir` (`None` for no directory): the file, else
/// the built-in. `Ok(None)` when there is neither. No file larger than `limit` is read.
fn candidate(
    dir: Option<&Path>,
    world: World,
    limit: u64,
) -> Result<Option<Candidate>, ReadFailure> {
    let settings = match dir {
        Some(dir) => match read_capped(&settings_path(dir, world), limit)? {
            Some(bytes) => {
                String::from_utf8(bytes).map_err(|_| (LoadError::SettingsNotText, None))?
            }
            None => String::new(),
        },
        None => String::new(),
    };
    let file = match dir {
        Some(dir) => {
            let path = wasm_path(dir, world);
            read_capped(&path, limit)?.map(|wasm| (path, wasm))
        }
        None => None,
    };
    let Some((name, source, wasm)) = builtin::choose(world, file) else {
        return Ok(None);
    };
    let fingerprint = format!("{}:{}", sha256_hex(&wasm), sha256_hex(settings.as_bytes()));
    Ok(Some(Candidate {
        name,
        source,
        wasm,
        settings,
        fingerprint,
    }))
}

/// What one rescan did for one world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The files match the version in service (or a version that already failed).
    Unchanged,
    /// A new version is in service.
    Loaded,
    /// The new files were refused; the previous version (if any) stays.
    Failed(String),
    /// No file and no built-in policy for this world.
    Missing,
}

/// Rescans `dir` once and loads what changed. Compilation runs on the blocking pool.
/// Rescans are serialised, so two callers (the watcher and an operator's trigger, say)
/// cannot install an older candidate after a newer one.
pub async fn reload(set: &Arc<PolicySet>, dir: Option<&Path>) -> Vec<(World, ReloadOutcome)> {
    let _one_at_a_time = set.reload_lock().lock().await;
    let mut outcomes = Vec::new();
    for world in World::ALL {
        let outcome = reload_world(set, dir, world).await;
        outcomes.push((world, outcome));
    }
    outcomes
}

async fn reload_world(set: &Arc<PolicySet>, dir: Option<&Path>, world: World) -> ReloadOutcome {
    if set.is_remote(world) {
        // Served from a registry artefact (`crate::oci::follower`), not from the directory.
        return ReloadOutcome::Unchanged;
    }
    if set.requires_signatures()
        && let Some(dir) = dir
        && let Some(path) = [wasm_path(dir, world), settings_path(dir, world)]
            .into_iter()
            .find(|p| p.exists())
    {
        // Files are unsigned: refused once per file (the stamp), the version in service
        // (if any) stays.
        let stamp = format!("unsigned:{}:{:?}", path.display(), snapshot(dir));
        if set.failed_fingerprint(world).as_deref() == Some(stamp.as_str()) {
            return ReloadOutcome::Unchanged;
        }
        let error = LoadError::Refused {
            code: "policy_unsigned",
            message: format!(
                "{} is an unsigned local file and policy.require_signatures is on: publish it signed through [policy.oci]",
                path.display()
            ),
        };
        let message = error.to_string();
        set.record_failure(world, &error, Some(stamp));
        return ReloadOutcome::Failed(message);
    }
    let candidate = match candidate(dir, world, set.max_file_bytes()) {
        Ok(Some(c)) => c,
        Ok(None) => return ReloadOutcome::Missing,
        Err((e, Some(stamp))) => {
            // A file over the size cap: refused once, and not again while it stays the same
            // file (which the watcher's back-off would otherwise keep retrying).
            if set.failed_fingerprint(world).as_deref() == Some(stamp.as_str()) {
                return ReloadOutcome::Unchanged;
            }
            set.record_failure(world, &e, Some(stamp));
            return ReloadOutcome::Failed(e.to_string());
        }
        Err((e, None)) => {
            // Unreadable now, maybe readable on the next scan: recorded, retried.
            set.record_failure(world, &e, None);
            return ReloadOutcome::Failed(e.to_string());
        }
    };
    let serving = set
        .current(world)
        .map(|p| format!("{}:{}", p.info().sha256, p.info().settings_sha256));
    if serving.as_deref() == Some(candidate.fingerprint.as_str()) {
        // Back to the version in service (a bad edit reverted): nothing to load, and the
        // error about the reverted file no longer applies.
        set.clear_failure(world);
        return ReloadOutcome::Unchanged;
    }
    if set.failed_fingerprint(world).as_deref() == Some(candidate.fingerprint.as_str()) {
        return ReloadOutcome::Unchanged;
    }
    if set.origin(world).as_deref() == Some(candidate.fingerprint.as_str()) {
        // The files the watcher last installed, replaced since by a promotion or a
        // rollback (`policy::lifecycle`): that choice stands until the files change.
        return ReloadOutcome::Unchanged;
    }
    let engine = set.engine().clone();
    let Candidate {
        name,
        source,
        wasm,
        settings,
        fingerprint,
    } = candidate;
    let loaded =
        tokio::task::spawn_blocking(move || engine.load(world, &name, source, &wasm, &settings))
            .await;
    match loaded {
        Ok(Ok(policy)) => {
            set.install_by(policy, "watcher", Some(fingerprint));
            ReloadOutcome::Loaded
        }
        Ok(Err(e)) => {
            let message = e.to_string();
            let permanent = e.is_permanent().then_some(fingerprint);
            set.record_failure(world, &e, permanent);
            ReloadOutcome::Failed(message)
        }
        Err(join) => ReloadOutcome::Failed(format!("the compile task failed: {join}")),
    }
}

/// A running watcher; dropping it (or calling [`WatcherHandle::stop`]) stops it.
pub struct WatcherHandle {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl WatcherHandle {
    /// Stops the watcher and waits for its task to end.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for WatcherHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Watches `dir` and reloads policies as its files change. Call [`reload`] first for the
/// initial load; this only reacts to later changes.
pub fn spawn_watcher(set: Arc<PolicySet>, dir: PathBuf, config: WatchConfig) -> WatcherHandle {
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<()>();
    // The notify watcher lives inside the task so it stops with it. If the platform
    // watcher cannot start (inotify limits, say), polling alone keeps reload working.
    let fs_watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Only changes: the rescan's own reads are reported as access events, and reacting
        // to them made an idle watcher rescan without end.
        if event.is_ok_and(|e| is_change(&e.kind)) {
            let _ = events_tx.send(());
        }
    })
    .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|_| w));
    let fs_watcher = match fs_watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the policy directory; polling only");
            None
        }
    };
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let _keep_alive = fs_watcher;
        let mut poll = tokio::time::interval(config.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await; // the first tick fires at once; the initial load was done
        // Closed when the platform watcher could not start: polling carries on alone.
        let mut events_open = true;
        // What the files looked like at the last rescan, and when a rescan whose files are
        // unchanged is due again (after a transient failure, with back-off). Empty at first,
        // so the first tick or event rescans once: files may have changed between the
        // caller's initial load and this task's start.
        let mut seen: Vec<FileStamp> = Vec::new();
        let mut retry: Option<(tokio::time::Instant, Duration)> = None;
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                event = events_rx.recv(), if events_open => {
                    if event.is_none() {
                        events_open = false;
                        continue;
                    }
                    // Debounce: wait until events stop arriving for `debounce`, but no
                    // longer than MAX_DEBOUNCE_FACTOR × debounce in all, so a directory
                    // written to without pause still reloads.
                    let give_up = tokio::time::Instant::now() + config.debounce * MAX_DEBOUNCE_FACTOR;
                    loop {
                        let quiet_until = (tokio::time::Instant::now() + config.debounce).min(give_up);
                        match tokio::time::timeout_at(quiet_until, events_rx.recv()).await {
                            Ok(Some(())) if tokio::time::Instant::now() < give_up => continue,
                            _ => break,
                        }
                    }
                }
                _ = poll.tick() => {}
            }
            let now = snapshot(&dir);
            let retry_due = retry.is_some_and(|(at, _)| tokio::time::Instant::now() >= at);
            if now == seen && !retry_due {
                continue;
            }
            let backoff = match retry {
                Some((_, last)) if now == seen => (last * 2).min(MAX_RETRY_BACKOFF),
                _ => FIRST_RETRY_BACKOFF,
            };
            seen = now;
            set.engine().metrics().rescans.inc();
            let outcomes = reload(&set, Some(&dir)).await;
            let failed = outcomes
                .iter()
                .any(|(_, outcome)| matches!(outcome, ReloadOutcome::Failed(_)));
            // A failure that may pass (an unreadable file, a validate-settings that ran out of
            // time) is retried, at 1 s, 2 s, 4 s … up to a minute while its files stay the
            // same; a failure that cannot pass is answered Unchanged on the retry, ending it.
            retry = failed.then(|| (tokio::time::Instant::now() + backoff, backoff));
        }
    });
    WatcherHandle {
        stop,
        task: Some(task),
    }
}
