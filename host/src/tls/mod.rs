//! TLS termination: the `[tls]` settings, the certificate store the HTTPS listener picks
//! certificates from by SNI ([`store`]), and certificates read from files and reloaded when
//! they change ([`files`]).
//!
//! The store is the one place certificates are served from; files are one source of them.
//! An ACME issuer is another: it puts what it obtains under a host name
//! ([`CertStore::set`]) and answers TLS-ALPN-01 challenges through
//! [`CertStore::set_challenge`]; a connection that negotiates `acme-tls/1` is closed once
//! its handshake is done.

pub mod acme;
pub mod files;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use serde::{Deserialize, Serialize};

pub use acme::{AcmeConfig, AcmeHostStatus, AcmeIssuer, AcmeMetrics};
pub use files::{CertificateStatus, FileCertificates, TlsMetrics};
pub use store::CertStore;

/// The ALPN protocol of TLS-ALPN-01 challenges (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Why TLS cannot be set up or a certificate cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// A file holds no usable PEM certificate chain or private key.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The private key does not belong to the certificate.
    #[error("{key}: the private key does not match the certificate {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the settings.
    #[error("TLS settings: {0}")]
    Rustls(#[from] rustls::Error),
}

/// `[tls]`: an HTTPS listener beside the plain one (`listen`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Address the HTTPS listener binds (`0.0.0.0:443`).
    pub listen: SocketAddr,
    /// Certificate chain (PEM) served when no `[[tls.certificates]]` entry names the host
    /// the client asked for (or it sent no SNI).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Certificates for named hosts, picked by SNI; `*.apps.example.com` matches one label.
    #[serde(default)]
    pub certificates: Vec<CertificateFiles>,
    /// The plain listener answers `308` to `https://` (except ACME HTTP-01 challenges and,
    /// with `plain_health`, the health endpoints). Default true.
    #[serde(default = "yes")]
    pub redirect_http: bool,
    /// `/_grid/healthz` and `/_grid/readyz` stay served on the plain listener (for probes
    /// that speak plain HTTP). Default false.
    #[serde(default)]
    pub plain_health: bool,
    /// `Strict-Transport-Security` on HTTPS responses.
    #[serde(default)]
    pub hsts: HstsConfig,
    /// Certificate files are also re-checked this often, besides file events. Default 2 s.
    #[serde(default = "default_poll")]
    pub reload_poll_ms: u64,
    /// Certificates from an ACME CA (`[tls.acme]`).
    #[serde(default)]
    pub acme: Option<AcmeConfig>,
}

fn yes() -> bool {
    true
}

fn default_poll() -> u64 {
    2000
}

/// A certificate and key for the hosts it serves.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    /// The host names (SNI) it is served for.
    pub hosts: Vec<String>,
    /// Certificate chain, PEM, leaf first.
    pub cert_file: PathBuf,
    /// Its private key, PEM.
    pub key_file: PathBuf,
}

/// `[tls.hsts]`: off unless `max_age_secs` is above 0.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HstsConfig {
    /// `max-age`; 0 (default) sends no header.
    pub max_age_secs: u64,
    /// Adds `includeSubDomains` (every app host under the gateway's domain too).
    pub include_subdomains: bool,
}

impl HstsConfig {
    /// The header's value, when on.
    pub fn header_value(&self) -> Option<http::HeaderValue> {
        if self.max_age_secs == 0 {
            return None;
        }
        let mut value = format!("max-age={}", self.max_age_secs);
        if self.include_subdomains {
            value.push_str("; includeSubDomains");
        }
        http::HeaderValue::from_str(&value).ok()
    }
}

impl TlsConfig {
    /// How often files are re-checked without events.
    pub fn reload_poll(&self) -> Duration {
        Duration::from_millis(self.reload_poll_ms.max(100))
    }

    /// Every certificate source: `(label, hosts, cert, key)`; the default's hosts are empty.
    pub fn sources(&self) -> Vec<files::Source> {
        let mut sources = Vec::new();
        if let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) {
            sources.push(files::Source {
                hosts: Vec::new(),
                cert_file: cert.clone(),
                key_file: key.clone(),
            });
        }
        for entry in &self.certificates {
            sources.push(files::Source {
                hosts: entry.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
                cert_file: entry.cert_file.clone(),
                key_file: entry.key_file.clone(),
            });
        }
        sources
    }

    /// What serde cannot check: `(key, message)` for the first problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err((
                "tls.cert_file",
                "set both cert_file and key_file, or neither".into(),
            ));
        }
        if self.cert_file.is_none() && self.certificates.is_empty() && self.acme.is_none() {
            return Err((
                "tls.certificates",
                "no certificate: set cert_file and key_file, [[tls.certificates]] or [tls.acme]"
                    .into(),
            ));
        }
        if let Some(acme) = &self.acme {
            acme.validate()?;
        }
        for entry in &self.certificates {
            if entry.hosts.is_empty() {
                return Err((
                    "tls.certificates",
                    format!("{}: hosts is empty", entry.cert_file.display()),
                ));
            }
            for host in &entry.hosts {
                let name = host.strip_prefix("*.").unwrap_or(host);
                let ok = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                    && !name.starts_with('.')
                    && !name.ends_with('.');
                if !ok {
                    return Err((
                        "tls.certificates",
                        format!("{host:?} is not a host name (or *.domain)"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The rustls server settings over `store`: TLS 1.3 and 1.2 on the ring provider, ALPN
/// `h2`, `http/1.1` (and `acme-tls/1` for challenges), session resumption by tickets and
/// by an in-memory cache. rustls implements no renegotiation.
pub fn server_config(store: Arc<CertStore>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(16 * 1024);
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(Arc::new(config))
}
