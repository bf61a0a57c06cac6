//! Session cookie keys: from the config, from a file, or generated once into the data
//! directory; plus the previous keys kept for rotation.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cookie::Key;

use crate::config::SessionConfig;

/// The file a generated key is written to, in the data directory.
pub const GENERATED_KEY_FILE: &str = "session.key";

/// The `cookie` crate's private jar needs 64 bytes: 32 for AES-256-GCM, 32 for signing.
const KEY_BYTES: usize = 64;

/// Decodes a base64 key of 64 bytes.
pub fn decode_key(text: &str) -> Result<Key, String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    if bytes.len() != KEY_BYTES {
        return Err(format!(
            "a key is {KEY_BYTES} bytes (base64 of 64 random bytes, e.g. `openssl rand -base64 64`), this one is {}",
            bytes.len()
        ));
    }
    Ok(Key::from(&bytes))
}

/// Reads a key file; it must not be readable by group or others.
pub fn read_key_file(path: &Path) -> Result<Key, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} has mode {mode:03o}: it must be readable by its owner only (chmod 600)",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    decode_key(&text).map_err(|m| format!("{}: {m}", path.display()))
}

/// The current key and the previous ones, in the order they are tried.
#[derive(Clone)]
pub struct KeyRing {
    /// New sessions are sealed with this one.
    pub current: Key,
    /// Still opened, never used to seal.
    pub previous: Vec<Key>,
}

impl std::fmt::Debug for KeyRing {
    /// Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("previous", &self.previous.len())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Loads the keys the config names; without `key` or `key_file`, reads
    /// `<data_dir>/session.key`, generating it (mode 0600) the first time.
    pub fn load(config: &SessionConfig, data_dir: &Path) -> Result<KeyRing, String> {
        let current = match (&config.key, &config.key_file) {
            (Some(key), _) => decode_key(key)?,
            (None, Some(file)) => read_key_file(file)?,
            (None, None) => load_or_generate(&data_dir.join(GENERATED_KEY_FILE))?,
        };
        let mut previous = Vec::new();
        for key in &config.old_keys {
            previous.push(decode_key(key)?);
        }
        for file in &config.old_key_files {
            previous.push(read_key_file(file)?);
        }
        Ok(KeyRing { current, previous })
    }

    /// Every key, the current one first.
    pub fn all(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.current).chain(&self.previous)
    }
}

fn load_or_generate(path: &Path) -> Result<Key, String> {
    if path.exists() {
        return read_key_file(path);
    }
    let key = Key::generate();
    let text = STANDARD.encode(key.master());
    // create_new: if another process generated it in between, use theirs.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(text.as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a session key");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let config = SessionConfig::default();
        let a = KeyRing::load(&config, dir.path()).unwrap();
        let b = KeyRing::load(&config, dir.path()).unwrap();
        assert_eq!(a.current.master(), b.current.master());
        let mode = std::fs::metadata(dir.path().join(GENERATED_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(
            dir.path().join(GENERATED_KEY_FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(
            KeyRing::load(&config, dir.path())
                .unwrap_err()
                .contains("644")
        );
    }
}
