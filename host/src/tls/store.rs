//! The certificates the HTTPS listener serves, picked by SNI, replaceable at run time.
//!
//! Lookups are lock-free (an [`ArcSwap`] of the whole table); a change builds a new table
//! and swaps it in, so a handshake in progress keeps the certificate it picked.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::ACME_TLS_ALPN;

#[derive(Clone, Default)]
struct Table {
    /// Lower-case host name (or `*.domain`) → certificate.
    by_name: HashMap<String, Arc<CertifiedKey>>,
    /// For a client without SNI or a name nobody holds a certificate for.
    default: Option<Arc<CertifiedKey>>,
    /// TLS-ALPN-01 challenge certificates by host name (RFC 8737).
    challenges: HashMap<String, Arc<CertifiedKey>>,
}

/// The certificate store; see the module docs.
#[derive(Default)]
pub struct CertStore {
    table: ArcSwap<Table>,
    /// Serialises writers (each copies the table, changes it, swaps it).
    write: Mutex<()>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = self.table.load();
        f.debug_struct("CertStore")
            .field("names", &table.by_name.keys().collect::<Vec<_>>())
            .field("default", &table.default.is_some())
            .finish()
    }
}

impl CertStore {
    /// An empty store: every handshake fails until a certificate is set.
    pub fn new() -> Self {
        Self::default()
    }

    fn change(&self, edit: impl FnOnce(&mut Table)) {
        let _writing = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut table = Table::clone(&self.table.load());
        edit(&mut table);
        self.table.store(Arc::new(table));
    }

    /// Serves `key` for `host` (lower-cased; `*.domain` for a wildcard) from now on.
    pub fn set(&self, host: &str, key: Arc<CertifiedKey>) {
        let host = host.to_ascii_lowercase();
        self.change(|t| {
            t.by_name.insert(host, key);
        });
    }

    /// Stops serving a certificate for `host`.
    pub fn remove(&self, host: &str) {
        let host = host.to_ascii_lowercase();
        self.change(|t| {
            t.by_name.remove(&host);
        });
    }

    /// Serves `key` to clients whose name matches no host.
    pub fn set_default(&self, key: Option<Arc<CertifiedKey>>) {
        self.change(|t| t.default = key);
    }

    /// Answers TLS-ALPN-01 for `host` with `key` (the challenge certificate) until
    /// [`CertStore::clear_challenge`].
    pub fn set_challenge(&self, host: &str, key: Arc<CertifiedKey>) {
        let host = host.to_ascii_lowercase();
        self.change(|t| {
            t.challenges.insert(host, key);
        });
    }

    /// Removes `host`'s challenge certificate.
    pub fn clear_challenge(&self, host: &str) {
        let host = host.to_ascii_lowercase();
        self.change(|t| {
            t.challenges.remove(&host);
        });
    }

    /// The certificate served for `server_name` (`None`: no SNI).
    pub fn pick(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let table = self.table.load();
        if let Some(name) = server_name {
            let name = name.to_ascii_lowercase();
            if let Some(key) = table.by_name.get(&name) {
                return Some(key.clone());
            }
            if let Some((_, parent)) = name.split_once('.')
                && let Some(key) = table.by_name.get(&format!("*.{parent}"))
            {
                return Some(key.clone());
            }
        }
        table.default.clone()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offered: Vec<&[u8]> = hello.alpn().map(Iterator::collect).unwrap_or_default();
        let challenge = !offered.is_empty() && offered.iter().all(|p| *p == ACME_TLS_ALPN);
        if challenge {
            // Only a challenge certificate answers a validation; never the real one.
            let name = hello.server_name()?.to_ascii_lowercase();
            return self.table.load().challenges.get(&name).cloned();
        }
        self.pick(hello.server_name())
    }
}
