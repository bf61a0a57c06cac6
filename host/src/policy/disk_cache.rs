//! Compiled components on disk, so a restart (or a reload of a component compiled before)
//! loads machine code instead of compiling again: an interpreter-based component (a
//! TypeScript or Python policy, tens of megabytes) takes seconds to compile and a few
//! tens of milliseconds to load.
//!
//! One file per component and engine: `<dir>/<sha256 of the component>-<engine key>.cwasm`,
//! where the engine key hashes wasmtime's `precompile_compatibility_hash` (its version and
//! every setting that changes the code). Each file is wasmtime's serialized component
//! followed by the sha256 of those bytes; a file whose checksum, header or engine does not
//! match is ignored, removed and compiled again — the cache is never trusted blindly.
//! Files are written to a temporary name and renamed, so a crash leaves no half file
//! under a real name. After each write the oldest files (by last use) are removed until
//! the directory holds at most its byte budget.
//!
//! What it does not defend against: someone who can write the gateway's private data
//! directory (mode 0700) could put machine code there with a matching checksum; they
//! could equally replace the gateway binary.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use wasmtime::Engine;
use wasmtime::component::Component;

/// Default byte budget of the directory.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

const SUFFIX: &str = "cwasm";
const CHECKSUM_BYTES: usize = 32;

/// Where compiled components are kept, and how much of the disk they may take.
#[derive(Clone, Debug)]
pub struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
    engine_key: String,
}

impl DiskCache {
    /// A cache in `dir` (created on first write) for components of `engine`.
    pub(crate) fn new(dir: PathBuf, max_bytes: u64, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        DiskCache {
            dir,
            max_bytes,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.{SUFFIX}", self.engine_key))
    }

    /// The component compiled earlier from bytes with this sha256, if a sound file holds
    /// it. A file that is not (corrupt, truncated, from another wasmtime) is removed.
    pub(crate) fn get(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        let bytes = std::fs::read(&path).ok()?;
        match Self::decode(engine, &bytes) {
            Ok(component) => {
                // Last use, for eviction; failing to record it only makes eviction less fair.
                if let Ok(file) = std::fs::File::options().write(true).open(&path) {
                    let _ = file.set_modified(SystemTime::now());
                }
                Some(component)
            }
            Err(why) => {
                tracing::warn!(path = %path.display(), %why, "ignoring a compiled policy in the cache; compiling again");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    fn decode(engine: &Engine, bytes: &[u8]) -> Result<Component, String> {
        let split = bytes
            .len()
            .checked_sub(CHECKSUM_BYTES)
            .ok_or("shorter than its checksum")?;
        let (code, checksum) = bytes.split_at(split);
        use sha2::Digest;
        if sha2::Sha256::digest(code).as_slice() != checksum {
            return Err("checksum mismatch".into());
        }
        // SAFETY: wasmtime requires the bytes to come from `Component::serialize` of a
        // compatible engine. They were written by `put` below (checksum verified above,
        // in the gateway's private data directory) and wasmtime itself checks the header,
        // its version and the engine's settings before using them.
        unsafe { Component::deserialize(engine, code) }.map_err(|e| format!("{e:#}"))
    }

    /// Keeps `component` (compiled from bytes with this sha256). Failures are logged, not
    /// returned: without the cache the gateway only compiles again next time.
    pub(crate) fn put(&self, sha256: &str, component: &Component) {
        if let Err(e) = self.write(sha256, component) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot keep a compiled policy on disk");
        }
        self.evict(&self.path(sha256));
    }

    fn write(&self, sha256: &str, component: &Component) -> Result<(), String> {
        let mut bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
        use sha2::Digest;
        let checksum = sha2::Sha256::digest(&bytes);
        bytes.extend_from_slice(&checksum);
        if bytes.len() as u64 > self.max_bytes {
            return Err(format!(
                "{} bytes compiled, more than the cache's {} bytes",
                bytes.len(),
                self.max_bytes
            ));
        }
        create_private_dir(&self.dir).map_err(|e| e.to_string())?;
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = self
            .dir
            .join(format!(".{sha256}.{}.{n}.tmp", std::process::id()));
        let written = std::fs::File::create(&temp)
            .and_then(|mut file| {
                file.write_all(&bytes)?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&temp, self.path(sha256)));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written.map_err(|e| e.to_string())
    }

    /// Removes the least recently used files (never `keep`, the one just written, even
    /// when a coarse file clock gives others the same time) until the rest fit the budget.
    fn evict(&self, keep: &Path) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == SUFFIX) && e.path() != keep)
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let kept = std::fs::metadata(keep).map(|m| m.len()).unwrap_or(0);
        let mut total: u64 = kept + files.iter().map(|(_, len, _)| len).sum::<u64>();
        files.sort();
        for (_, len, path) in files {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(len);
            }
        }
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
