//! Field encryption at rest: AES-256-GCM with versioned keys and associated data.
//!
//! A ciphertext is `version (1 byte) || nonce (12 bytes) || ciphertext+tag`. The associated data
//! names the row and field (e.g. `shops/<id>/lwa_refresh_token`), so a ciphertext copied to
//! another row or column does not decrypt. Keys come from the environment
//! (`CONNECTOR_ENCRYPTION_KEYS="1:<base64 32 bytes>,2:<base64 32 bytes>"`, the last one encrypts);
//! older versions stay readable until `ctl keys rotate` re-encrypts.

use std::{collections::BTreeMap, fmt};

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

/// Environment variable holding the keyring.
pub const KEYS_ENV: &str = "CONNECTOR_ENCRYPTION_KEYS";

const NONCE_LEN: usize = 12;

/// Errors of the keyring. Messages never contain key material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error(
        "{KEYS_ENV} is not set: give one or more keys as \"1:<base64 of 32 random bytes>\" (generate one with `ctl keys generate`)"
    )]
    Missing,
    #[error(
        "{KEYS_ENV} entry {index} is invalid: {reason}; expected \"<version 1-255>:<base64 of 32 bytes>\" separated by commas"
    )]
    InvalidKey { index: usize, reason: &'static str },
    #[error("ciphertext was written with key version {0}, which is not in {KEYS_ENV}")]
    UnknownVersion(u8),
    #[error("ciphertext is too short or corrupted")]
    Malformed,
    #[error("decryption failed: wrong key, or the ciphertext belongs to another row or field")]
    Decrypt,
    #[error("decrypted value is not UTF-8")]
    NotUtf8,
}

/// The set of keys, by version. `Debug` never prints key material.
#[derive(Clone)]
pub struct Keyring {
    current: u8,
    keys: BTreeMap<u8, Aes256Gcm>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// Reads the keyring from [`KEYS_ENV`].
    pub fn from_env() -> Result<Self, CryptoError> {
        let v = std::env::var(KEYS_ENV).map_err(|_| CryptoError::Missing)?;
        Self::parse(&v)
    }

    /// Parses `"1:<b64>,2:<b64>"`; the last entry is the current (encrypting) key.
    pub fn parse(spec: &str) -> Result<Self, CryptoError> {
        let mut keys = BTreeMap::new();
        let mut current = None;
        for (index, entry) in spec
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let (ver, b64) = entry.split_once(':').ok_or(CryptoError::InvalidKey {
                index,
                reason: "missing \"version:\" prefix",
            })?;
            let ver: u8 =
                ver.trim()
                    .parse()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or(CryptoError::InvalidKey {
                        index,
                        reason: "version is not a number from 1 to 255",
                    })?;
            let bytes = STANDARD
                .decode(b64.trim())
                .map_err(|_| CryptoError::InvalidKey {
                    index,
                    reason: "key is not valid base64",
                })?;
            let cipher =
                Aes256Gcm::new_from_slice(&bytes).map_err(|_| CryptoError::InvalidKey {
                    index,
                    reason: "key is not 32 bytes",
                })?;
            keys.insert(ver, cipher);
            current = Some(ver);
        }
        let current = current.ok_or(CryptoError::Missing)?;
        Ok(Self { current, keys })
    }

    /// A fresh random key in the environment format, for `ctl keys generate`.
    pub fn generate_key(version: u8) -> String {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        format!("{version}:{}", STANDARD.encode(k))
    }

    /// The version new ciphertexts are written with.
    pub fn current_version(&self) -> u8 {
        self.current
    }

    /// Encrypts `plaintext`, binding it to `aad` (row and field).
    pub fn encrypt(&self, plaintext: &[u8], aad: &str) -> Vec<u8> {
        let cipher = &self.keys[&self.current];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(self.current);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Encrypts a secret string.
    pub fn encrypt_secret(&self, secret: &SecretString, aad: &str) -> Vec<u8> {
        self.encrypt(secret.expose_secret().as_bytes(), aad)
    }

    /// Decrypts a ciphertext written by [`Keyring::encrypt`] with the same `aad`.
    pub fn decrypt(&self, data: &[u8], aad: &str) -> Result<Vec<u8>, CryptoError> {
        if data.len() < 1 + NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let cipher = self
            .keys
            .get(&data[0])
            .ok_or(CryptoError::UnknownVersion(data[0]))?;
        let nonce: [u8; NONCE_LEN] = data[1..1 + NONCE_LEN]
            .try_into()
            .map_err(|_| CryptoError::Malformed)?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &data[1 + NONCE_LEN..],
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Decrypt)
    }

    /// Decrypts into a [`SecretString`].
    pub fn decrypt_secret(&self, data: &[u8], aad: &str) -> Result<SecretString, CryptoError> {
        let bytes = self.decrypt(data, aad)?;
        String::from_utf8(bytes)
            .map(SecretString::from)
            .map_err(|_| CryptoError::NotUtf8)
    }

    /// The key version a ciphertext was written with (for rotation).
    pub fn version_of(data: &[u8]) -> Option<u8> {
        data.first().copied()
    }

    /// Whether a ciphertext should be re-encrypted with the current key.
    pub fn needs_rotation(&self, data: &[u8]) -> bool {
        Self::version_of(data) != Some(self.current)
    }

    /// A keyring with a fixed key, for tests and the demo only.
    pub fn for_testing() -> Self {
        Self::parse(&format!("1:{}", STANDARD.encode([7u8; 32]))).expect("static test key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let k = Keyring::for_testing();
        let ct = k.encrypt(b"Atzr|refresh", "shops/1/lwa_refresh_token");
        assert_eq!(
            k.decrypt(&ct, "shops/1/lwa_refresh_token").unwrap(),
            b"Atzr|refresh"
        );
        assert!(
            !ct.windows(5).any(|w| w == b"Atzr|"),
            "plaintext visible in ciphertext"
        );
        // Another row or field: refused.
        assert!(matches!(
            k.decrypt(&ct, "shops/2/lwa_refresh_token"),
            Err(CryptoError::Decrypt)
        ));
        assert!(matches!(
            k.decrypt(&ct, "shops/1/lwa_client_secret"),
            Err(CryptoError::Decrypt)
        ));
        // Tampering: refused.
        let mut bad = ct.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(k.decrypt(&bad, "shops/1/lwa_refresh_token").is_err());
        assert!(matches!(
            k.decrypt(&ct[..10], "x"),
            Err(CryptoError::Malformed)
        ));
    }

    #[test]
    fn nonces_differ() {
        let k = Keyring::for_testing();
        assert_ne!(k.encrypt(b"same", "a"), k.encrypt(b"same", "a"));
    }

    #[test]
    fn rotation() {
        let old_spec = Keyring::generate_key(1);
        let old = Keyring::parse(&old_spec).unwrap();
        let ct = old.encrypt(b"secret", "f");
        let spec = format!("{old_spec},{}", Keyring::generate_key(2));
        let both = Keyring::parse(&spec).unwrap();
        assert_eq!(both.current_version(), 2);
        assert!(both.needs_rotation(&ct));
        assert_eq!(both.decrypt(&ct, "f").unwrap(), b"secret");
        let re = both.encrypt(&both.decrypt(&ct, "f").unwrap(), "f");
        assert!(!both.needs_rotation(&re));
        let only_new = Keyring::parse(spec.split(',').nth(1).unwrap()).unwrap();
        assert!(matches!(
            only_new.decrypt(&ct, "f"),
            Err(CryptoError::UnknownVersion(1))
        ));
    }

    #[test]
    fn bad_specs_name_the_problem() {
        assert!(matches!(Keyring::parse(""), Err(CryptoError::Missing)));
        let e = Keyring::parse("1:notbase64!").unwrap_err().to_string();
        assert!(e.contains("base64"), "{e}");
        let e = Keyring::parse(&format!("1:{}", STANDARD.encode([1u8; 16])))
            .unwrap_err()
            .to_string();
        assert!(e.contains("32 bytes"), "{e}");
        let e = Keyring::parse("x:AAAA").unwrap_err().to_string();
        assert!(e.contains("version"), "{e}");
        let dbg = format!("{:?}", Keyring::for_testing());
        assert!(!dbg.contains("7, 7"), "{dbg}");
    }
}
