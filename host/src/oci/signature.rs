//! Policy signatures: an EIP-191 `personal_sign` by an Ethereum account over the text
//! `grid-policy:<manifest digest>`.
//!
//! Why this scheme: operators of this gateway already hold and guard Ethereum keys (the
//! node's wallet, their treasury, hardware wallets); any wallet can sign the text offline;
//! verifying needs only the secp256k1 recovery the gateway already uses for sign-in; and
//! a trusted signer is an address, which fits in a config file. The manifest digest covers
//! the config and every layer's digest, so one signature covers the component and its
//! settings.

use std::path::Path;
use std::str::FromStr;

use alloy::primitives::Address;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;

use super::OciError;

/// The signed text for a manifest digest.
pub fn message(digest: &str) -> String {
    format!("grid-policy:{digest}")
}

/// A signature as stored in the registry (the signature artefact's config blob).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignatureDoc {
    /// The manifest digest signed (`sha256:<hex>`).
    pub digest: String,
    /// The address that signed, as the signer claims it (checked by recovery).
    pub signer: String,
    /// The 65-byte signature, `0x` hex.
    pub signature: String,
}

/// A signing key.
pub struct Signer {
    key: PrivateKeySigner,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("address", &self.key.address())
            .finish()
    }
}

impl Signer {
    /// A signer from a key in memory.
    pub fn new(key: PrivateKeySigner) -> Self {
        Signer { key }
    }

    /// Reads a raw hex private key (`0x` optional) from a file, the node wallet's format.
    pub fn from_key_file(path: &Path) -> Result<Self, OciError> {
        let invalid = |message: String| OciError::Key {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        let key = PrivateKeySigner::from_str(text.trim())
            .map_err(|_| invalid("expected 64 hex digits of a secp256k1 private key".into()))?;
        Ok(Signer { key })
    }

    /// The signer's address.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// Signs `digest`.
    pub fn sign(&self, digest: &str) -> SignatureDoc {
        // Signing with a valid in-memory key over a message cannot fail; an error here
        // would be a bug in the signer, and the empty signature it leaves is refused.
        let signature = self
            .key
            .sign_message_sync(message(digest).as_bytes())
            .map(|s| format!("0x{}", hex::encode(s.as_bytes())))
            .unwrap_or_default();
        SignatureDoc {
            digest: digest.to_owned(),
            signer: self.key.address().to_checksum(None),
            signature,
        }
    }
}

/// The accounts whose signatures are accepted. Empty: signatures are not checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedSigners {
    signers: Vec<Address>,
}

impl TrustedSigners {
    /// These accounts.
    pub fn new(signers: Vec<Address>) -> Self {
        TrustedSigners { signers }
    }

    /// True when nobody is trusted (verification off).
    pub fn is_empty(&self) -> bool {
        self.signers.is_empty()
    }

    /// Checks `doc` is a signature over `digest` by a trusted account; returns the
    /// account (checksummed).
    pub fn verify(&self, doc: &SignatureDoc, digest: &str) -> Result<String, OciError> {
        if doc.digest != digest {
            return Err(OciError::SignatureInvalid(format!(
                "the signature is over {}, not {digest}",
                doc.digest
            )));
        }
        let bytes = doc
            .signature
            .strip_prefix("0x")
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| OciError::SignatureInvalid("signature is not 0x hex".into()))?;
        let signature = alloy::primitives::Signature::try_from(bytes.as_slice())
            .map_err(|e| OciError::SignatureInvalid(format!("malformed signature: {e}")))?;
        let recovered = signature
            .recover_address_from_msg(message(digest).as_bytes())
            .map_err(|e| OciError::SignatureInvalid(format!("no signer recovered: {e}")))?;
        let claimed = Address::from_str(&doc.signer).ok();
        if claimed.is_some_and(|c| c != recovered) {
            return Err(OciError::SignatureInvalid(format!(
                "signature recovers {recovered}, not the claimed {}",
                doc.signer
            )));
        }
        if !self.signers.contains(&recovered) {
            return Err(OciError::SignerUntrusted(recovered.to_checksum(None)));
        }
        Ok(recovered.to_checksum(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_signature_verifies_and_others_are_refused_with_their_codes() {
        let signer = Signer::new(PrivateKeySigner::random());
        let other = Signer::new(PrivateKeySigner::random());
        let trust = TrustedSigners::new(vec![signer.address()]);
        let digest = format!("sha256:{}", "ab".repeat(32));
        let doc = signer.sign(&digest);
        assert_eq!(
            trust.verify(&doc, &digest),
            Ok(signer.address().to_checksum(None))
        );
        let elsewhere = format!("sha256:{}", "cd".repeat(32));
        assert_eq!(
            trust.verify(&doc, &elsewhere).map_err(|e| e.code()),
            Err("policy_signature_invalid")
        );
        let mut moved = doc.clone();
        moved.digest = elsewhere.clone();
        assert_eq!(
            trust.verify(&moved, &elsewhere).map_err(|e| e.code()),
            Err("policy_signature_invalid")
        );
        assert_eq!(
            trust
                .verify(&other.sign(&digest), &digest)
                .map_err(|e| e.code()),
            Err("policy_signer_untrusted")
        );
    }
}
