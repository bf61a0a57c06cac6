//! The node wallet: from an encrypted JSON keystore or from a raw key file that only its owner
//! can read. The key never appears in an error or a log.

use std::fs;
use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;

use crate::{Error, Result};

/// Where the keystore password comes from. Never the config file itself, which tends to be
/// world-readable and committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// This environment variable holds it.
    Env(String),
    /// This file holds it (one trailing newline is ignored).
    File(PathBuf),
}

/// Where the node's private key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// An encrypted JSON keystore (Web3 Secret Storage, as geth and `cast wallet` write).
    Keystore {
        /// The keystore file.
        path: PathBuf,
        /// Its password.
        password: PasswordSource,
    },
    /// A file holding the private key in hex (`0x` optional). It must be mode 0600 or
    /// stricter: a key readable by other users is refused, not used.
    KeyFile {
        /// The key file.
        path: PathBuf,
    },
}

/// The node's signing key and the address it controls.
#[derive(Clone)]
pub struct NodeWallet {
    signer: PrivateKeySigner,
}

impl std::fmt::Debug for NodeWallet {
    /// Only the address: a key must not end up in a log by way of `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeWallet")
            .field("address", &self.address())
            .finish()
    }
}

impl NodeWallet {
    /// Loads the key from `source`.
    pub fn load(source: &KeySource) -> Result<Self> {
        match source {
            KeySource::KeyFile { path } => Self::from_key_file(path),
            KeySource::Keystore { path, password } => {
                let password = read_password(password)?;
                let signer = PrivateKeySigner::decrypt_keystore(path, password.as_bytes())
                    .map_err(|e| Error::Keystore {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                Ok(NodeWallet { signer })
            }
        }
    }

    /// Loads a raw hex key from a file that must not be readable by group or others.
    pub fn from_key_file(path: &Path) -> Result<Self> {
        let key_file_err = |source| Error::KeyFile {
            path: path.to_owned(),
            source,
        };
        let meta = fs::metadata(path).map_err(key_file_err)?;
        check_owner_only(path, &meta)?;
        let text = fs::read_to_string(path).map_err(key_file_err)?;
        let hex = text.trim();
        let hex = hex.strip_prefix("0x").unwrap_or(hex);
        let invalid = |reason: &str| Error::InvalidKey {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if hex.len() != 64 {
            return Err(invalid("expected 64 hex digits"));
        }
        let bytes = alloy::hex::decode(hex).map_err(|_| invalid("not hex"))?;
        let signer = PrivateKeySigner::from_slice(&bytes)
            .map_err(|_| invalid("not a valid secp256k1 private key"))?;
        Ok(NodeWallet { signer })
    }

    /// A wallet from a signer already in memory (tests, the dev helper).
    pub fn from_signer(signer: PrivateKeySigner) -> Self {
        NodeWallet { signer }
    }

    /// The node's address: the provider address orders name.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    pub(crate) fn signer(&self) -> &PrivateKeySigner {
        &self.signer
    }
}

#[cfg(unix)]
fn check_owner_only(path: &Path, meta: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::KeyPermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_path: &Path, _meta: &fs::Metadata) -> Result<()> {
    // No mode bits to check; the operator must protect the file with the platform's ACLs.
    Ok(())
}

fn read_password(source: &PasswordSource) -> Result<String> {
    match source {
        PasswordSource::Env(var) => std::env::var(var).map_err(|e| Error::Password {
            reason: format!("environment variable {var}: {e}"),
        }),
        PasswordSource::File(path) => {
            let text = fs::read_to_string(path).map_err(|e| Error::Password {
                reason: format!("{}: {e}", path.display()),
            })?;
            // Editors and `echo` add a newline that is not part of the password.
            let text = text.strip_suffix('\n').unwrap_or(&text);
            Ok(text.strip_suffix('\r').unwrap_or(text).to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    // anvil's second default account: a well-known test key, never a real one.
    const KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    const ADDRESS: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn key_file_with_owner_only_mode_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "key", &format!("{KEY}\n"), 0o600);
        let wallet = NodeWallet::from_key_file(&path).expect("loads");
        assert_eq!(wallet.address().to_string(), ADDRESS);
        assert!(!format!("{wallet:?}").contains(&KEY[2..]));
    }

    #[test]
    fn key_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        for mode in [0o644, 0o640, 0o604] {
            let path = write(dir.path(), "key", KEY, mode);
            match NodeWallet::from_key_file(&path) {
                Err(Error::KeyPermissions { mode: m, .. }) => assert_eq!(m, mode),
                other => panic!("mode {mode:o}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_key_is_refused_without_echoing_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "key", "0xnothex-secret", 0o600);
        let err = NodeWallet::from_key_file(&path).expect_err("refused");
        assert!(matches!(err, Error::InvalidKey { .. }));
        assert!(!err.to_string().contains("secret"));
        let missing = dir.path().join("missing");
        assert!(matches!(
            NodeWallet::from_key_file(&missing),
            Err(Error::KeyFile { .. })
        ));
    }

    #[test]
    fn keystore_decrypts_with_password_file_and_refuses_a_wrong_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = alloy::hex::decode(KEY).expect("hex");
        let mut rng = rand_core();
        PrivateKeySigner::encrypt_keystore(dir.path(), &mut rng, &key, "hunter2", Some("ks.json"))
            .expect("encrypt");
        let path = dir.path().join("ks.json");
        let good = write(dir.path(), "pw", "hunter2\n", 0o600);
        let wallet = NodeWallet::load(&KeySource::Keystore {
            path: path.clone(),
            password: PasswordSource::File(good),
        })
        .expect("decrypts");
        assert_eq!(wallet.address().to_string(), ADDRESS);

        let bad = write(dir.path(), "bad", "hunter3", 0o600);
        assert!(matches!(
            NodeWallet::load(&KeySource::Keystore {
                path: path.clone(),
                password: PasswordSource::File(bad),
            }),
            Err(Error::Keystore { .. })
        ));
        assert!(matches!(
            NodeWallet::load(&KeySource::Keystore {
                path,
                password: PasswordSource::Env("GRID_CHAIN_TEST_UNSET_PASSWORD_VAR".into()),
            }),
            Err(Error::Password { .. })
        ));
    }

    // rand 0.8: the version eth-keystore's `Rng + CryptoRng` bounds are written against.
    fn rand_core() -> impl rand::CryptoRng + rand::Rng {
        rand::thread_rng()
    }
}
