//! Certificates from PEM files, reloaded when they change.
//!
//! Like the policy watcher (`crate::policy::watcher`), the parent directories are watched
//! (so atomic renames and a Kubernetes Secret's `..data` symlink swap are seen), events
//! are debounced, and a periodic re-check catches what events miss; a file whose identity,
//! size and modification time are unchanged is not read again. A pair that fails to load
//! keeps the last good certificate in service and says why: a warning in the log,
//! `/_grid/v1/node` (`tls[].last_error`) and the `grid_tls_certificate_reload_failures_total`
//! counter (`grid_tls_certificates_failing` counts the pairs failing now).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde::Serialize;

use super::{CertStore, TlsError};

/// One certificate and key pair and the hosts it serves (none: the default).
#[derive(Clone, Debug)]
pub struct Source {
    /// Lower-case host names; empty for the default certificate.
    pub hosts: Vec<String>,
    /// The chain.
    pub cert_file: PathBuf,
    /// The key.
    pub key_file: PathBuf,
}

/// The metrics of certificates from files.
#[derive(Clone, Debug, Default)]
pub struct TlsMetrics {
    /// Reloads that failed (the previous certificate kept serving).
    pub reload_failures: Counter,
    /// Certificate pairs whose files fail to load right now.
    pub failing: Gauge,
    /// Successful reloads after a change.
    pub reloads: Counter,
}

impl TlsMetrics {
    /// Registers under `grid_tls_`.
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("grid_tls");
        sub.register(
            "certificate_reload_failures",
            "Certificate files that failed to load; the previous certificate kept serving",
            self.reload_failures.clone(),
        );
        sub.register(
            "certificates_failing",
            "Certificate pairs whose files fail to load now",
            self.failing.clone(),
        );
        sub.register(
            "certificate_reloads",
            "Certificates reloaded from changed files",
            self.reloads.clone(),
        );
    }
}

/// One pair's state, for `/_grid/v1/node` (its schema there, closed).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateStatus {
    /// The hosts it serves; empty for the default certificate.
    pub hosts: Vec<String>,
    /// The certificate file.
    pub cert_file: String,
    /// A certificate from these files is in service.
    pub serving: bool,
    /// Why the files' current content is not in service (`null` when it is).
    pub last_error: Option<String>,
}

/// Identity (device, inode), size and modification time of both files.
type Stamp = Option<(u64, u64, u64, i64, i64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

struct Pair {
    source: Source,
    stamps: (Stamp, Stamp),
    status: CertificateStatus,
}

/// Certificates from files, put into a [`CertStore`]; see the module docs.
pub struct FileCertificates {
    store: Arc<CertStore>,
    pairs: Mutex<Vec<Pair>>,
    metrics: TlsMetrics,
}

/// Largest certificate or key file read (a chain is a few KB).
const MAX_FILE: u64 = 1024 * 1024;

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let error = |message: String| TlsError::Read {
        path: path.to_owned(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| error(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(error(format!("larger than {MAX_FILE} bytes")));
    }
    Ok(bytes)
}

/// Reads a PEM chain and its key and checks they belong together.
pub fn load_pair(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let pem = |path: &Path, message: String| TlsError::Pem {
        path: path.to_owned(),
        message,
    };
    let cert_pem = read(cert_file)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(cert_file, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(pem(cert_file, "no CERTIFICATE block".into()));
    }
    let key_pem = read(key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| pem(key_file, format!("no usable private key: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| pem(key_file, format!("unsupported private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert: cert_file.to_owned(),
                key: key_file.to_owned(),
            })
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) | Ok(()) => {
            Ok(certified)
        }
        Err(other) => Err(pem(cert_file, other.to_string())),
    }
}

impl FileCertificates {
    /// Loads every source into `store`; the first one that fails is the error (a node does
    /// not start without the certificates it was configured with).
    pub fn load(
        store: Arc<CertStore>,
        sources: Vec<Source>,
        metrics: TlsMetrics,
    ) -> Result<FileCertificates, TlsError> {
        let mut pairs = Vec::with_capacity(sources.len());
        for source in sources {
            let stamps = (stamp(&source.cert_file), stamp(&source.key_file));
            let key = Arc::new(load_pair(&source.cert_file, &source.key_file)?);
            install(&store, &source, key);
            pairs.push(Pair {
                status: CertificateStatus {
                    hosts: source.hosts.clone(),
                    cert_file: source.cert_file.display().to_string(),
                    serving: true,
                    last_error: None,
                },
                source,
                stamps,
            });
        }
        Ok(FileCertificates {
            store,
            pairs: Mutex::new(pairs),
            metrics,
        })
    }

    /// The store the certificates are served from.
    pub fn store(&self) -> &Arc<CertStore> {
        &self.store
    }

    /// Each pair's state.
    pub fn status(&self) -> Vec<CertificateStatus> {
        let pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        pairs.iter().map(|p| p.status.clone()).collect()
    }

    /// Reloads the pairs whose files changed since they were last read.
    pub fn rescan(&self) {
        let mut pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        for pair in pairs.iter_mut() {
            let stamps = (stamp(&pair.source.cert_file), stamp(&pair.source.key_file));
            if stamps == pair.stamps {
                continue;
            }
            pair.stamps = stamps;
            let was_failing = pair.status.last_error.is_some();
            match load_pair(&pair.source.cert_file, &pair.source.key_file) {
                Ok(key) => {
                    install(&self.store, &pair.source, Arc::new(key));
                    pair.status.serving = true;
                    pair.status.last_error = None;
                    if was_failing {
                        self.metrics.failing.dec();
                    }
                    self.metrics.reloads.inc();
                    tracing::info!(cert = %pair.source.cert_file.display(), "certificate reloaded");
                }
                Err(error) => {
                    tracing::warn!(%error, cert = %pair.source.cert_file.display(),
                        "certificate not reloaded; the previous one keeps serving");
                    pair.status.last_error = Some(error.to_string());
                    self.metrics.reload_failures.inc();
                    if !was_failing {
                        self.metrics.failing.inc();
                    }
                }
            }
        }
    }

    /// Watches the files' directories and re-checks every `poll`, until the task is aborted.
    pub fn spawn_watcher(self: Arc<Self>, poll: Duration) -> tokio::task::JoinHandle<()> {
        let (events, mut changed) = tokio::sync::mpsc::unbounded_channel::<()>();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
                let _ = events.send(());
            }
        });
        let watcher = match watcher {
            Ok(mut watcher) => {
                let mut dirs: Vec<PathBuf> = Vec::new();
                for pair in self.pairs.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                    for file in [&pair.source.cert_file, &pair.source.key_file] {
                        let dir = match file.parent() {
                            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
                            _ => PathBuf::from("."),
                        };
                        if !dirs.contains(&dir) {
                            dirs.push(dir);
                        }
                    }
                }
                for dir in &dirs {
                    if let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                        tracing::warn!(%error, dir = %dir.display(),
                            "cannot watch certificate directory; re-checking on a timer only");
                    }
                }
                Some(watcher)
            }
            Err(error) => {
                tracing::warn!(%error, "no file events; certificates re-checked on a timer only");
                None
            }
        };
        tokio::spawn(async move {
            let _watcher = watcher;
            loop {
                tokio::select! {
                    Some(()) = changed.recv() => {
                        // Writers change files in several steps: let them finish.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        while changed.try_recv().is_ok() {}
                    }
                    () = tokio::time::sleep(poll) => {}
                }
                let this = self.clone();
                let _ = tokio::task::spawn_blocking(move || this.rescan()).await;
            }
        })
    }
}

fn install(store: &CertStore, source: &Source, key: Arc<CertifiedKey>) {
    if source.hosts.is_empty() {
        store.set_default(Some(key));
    } else {
        for host in &source.hosts {
            store.set(host, key.clone());
        }
    }
}
