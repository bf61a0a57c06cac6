//! Registry credentials from a Docker `config.json`-style file, the file `docker login`,
//! `oras login` and `helm registry login` write:
//!
//! ```json
//! { "auths": { "registry.example.net": { "auth": "<base64 of user:password>" } } }
//! ```
//!
//! `"username"` and `"password"` fields are accepted instead of `"auth"`, and
//! `"identitytoken"` as a bearer token. Registries not listed are used anonymously.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;

use super::OciError;

#[derive(Clone, Default, serde::Deserialize)]
struct Entry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

/// Credentials per registry host (`host[:port]`).
#[derive(Clone, Default)]
pub struct Credentials {
    by_registry: BTreeMap<String, RegistryAuth>,
}

impl std::fmt::Debug for Credentials {
    /// The registries only: a password must not end up in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_registry.keys()).finish()
    }
}

impl Credentials {
    /// Reads a credentials file.
    pub fn from_file(path: &Path) -> Result<Self, OciError> {
        let invalid = |message: String| OciError::Credentials {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        let file: File = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let mut by_registry = BTreeMap::new();
        for (registry, entry) in file.auths {
            let auth = if let Some(token) = entry.identitytoken {
                RegistryAuth::Bearer(token)
            } else if let Some(encoded) = entry.auth {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| invalid(format!("{registry}: auth is not base64 text")))?;
                let (user, password) = decoded
                    .split_once(':')
                    .ok_or_else(|| invalid(format!("{registry}: auth is not user:password")))?;
                RegistryAuth::Basic(user.to_owned(), password.to_owned())
            } else if let (Some(user), Some(password)) = (entry.username, entry.password) {
                RegistryAuth::Basic(user, password)
            } else {
                return Err(invalid(format!(
                    "{registry}: no auth, username/password or identitytoken"
                )));
            };
            let host = registry
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned();
            by_registry.insert(host, auth);
        }
        Ok(Credentials { by_registry })
    }

    /// Basic credentials for one registry (tests, the CLI's flags).
    pub fn basic(registry: &str, user: &str, password: &str) -> Self {
        let mut by_registry = BTreeMap::new();
        by_registry.insert(
            registry.to_owned(),
            RegistryAuth::Basic(user.to_owned(), password.to_owned()),
        );
        Credentials { by_registry }
    }

    /// What to present to `registry`.
    pub fn auth_for(&self, registry: &str) -> RegistryAuth {
        self.by_registry
            .get(registry)
            .cloned()
            .unwrap_or(RegistryAuth::Anonymous)
    }
}
