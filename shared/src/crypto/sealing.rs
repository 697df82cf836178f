//! Secrets at rest and short codes, keyed from the same key material as the signing keys.
//!
//! Each seed of the key material yields, through HKDF-SHA256 with distinct labels, an
//! AES-256-GCM key (TOTP secrets are stored sealed with it) and HMAC keys: 6-digit email
//! codes are stored as their MAC (a plain hash of a 6-digit code is reversed in a second),
//! and the local object store signs its upload and download URLs.
//! A sealed value names the key that sealed it, so rotating the key material keeps every
//! stored secret readable while the old seed stays among the retired keys.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::keys::KeyMaterial;

const SALT: &[u8] = b"latchkey key derivation";
const SEALING_LABEL: &[u8] = b"latchkey/sealing/aes-256-gcm/v1";
const CODE_MAC_LABEL: &[u8] = b"latchkey/code-mac/hmac-sha256/v1";
const URL_MAC_LABEL: &[u8] = b"latchkey/object-urls/hmac-sha256/v1";

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(seed: &str, label: &[u8]) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    Salt::new(HKDF_SHA256, SALT)
        .extract(seed.as_bytes())
        .expand(&[label], Len(32))
        .and_then(|okm| okm.fill(&mut bytes))
        .expect("HKDF-SHA256 can always produce 32 bytes");
    bytes
}

/// Authenticated encryption of small secrets, bound to a context (such as the user id) so a
/// sealed value copied into another record does not open.
pub struct SecretBox {
    keys: Vec<(String, LessSafeKey)>,
}

impl SecretBox {
    pub fn from_material(material: &KeyMaterial) -> Self {
        let keys = material
            .seeds()
            .map(|(kid, seed)| {
                let key = UnboundKey::new(&AES_256_GCM, &derive(seed, SEALING_LABEL)).expect("a 32-byte AES key");
                (kid.to_owned(), LessSafeKey::new(key))
            })
            .collect();
        Self { keys }
    }

    /// `<kid>.<base64url(nonce | ciphertext | tag)>`, sealed with the active key.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let (kid, key) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("the OS random number generator failed");
        let mut sealed = plaintext.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut sealed)
            .expect("AES-GCM sealing of a small value cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{kid}.{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Whether `sealed` was sealed with the active key (if not, it should be sealed again).
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed.rsplit_once('.').is_some_and(|(kid, _)| kid == self.keys[0].0)
    }

    /// The plaintext, or `None` when the value was tampered with, sealed for another context,
    /// or sealed with a key that is no longer in the key material.
    pub fn open(&self, sealed: &str, context: &str) -> Option<Vec<u8>> {
        let (kid, encoded) = sealed.rsplit_once('.')?;
        let (_, key) = self.keys.iter().find(|(candidate, _)| candidate == kid)?;
        let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = key.open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer).ok()?;
        Some(plaintext.to_vec())
    }
}

/// A keyed MAC with the active key, one key per use: rotating the key material voids what
/// is outstanding at that moment (codes and signed URLs live minutes).
pub struct KeyedMac {
    key: hmac::Key,
}

impl KeyedMac {
    /// For email codes.
    pub fn for_codes(material: &KeyMaterial) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, &derive(&material.seed, CODE_MAC_LABEL)) }
    }

    /// For the local object store's signed URLs.
    pub fn for_urls(material: &KeyMaterial) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, &derive(&material.seed, URL_MAC_LABEL)) }
    }

    /// Hex HMAC-SHA256 of `message` in `context` (a code is only valid for the user it was
    /// sent to).
    pub fn mac(&self, message: &str, context: &str) -> String {
        let mut signing = hmac::Context::with_key(&self.key);
        signing.update(context.as_bytes());
        signing.update(&[0]);
        signing.update(message.as_bytes());
        signing.sign().as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Whether `mac_hex` is the MAC of `message` in `context`, compared in constant time.
    pub fn verify(&self, message: &str, context: &str, mac_hex: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.mac(message, context).as_bytes().ct_eq(mac_hex.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::RetiredKey;

    fn material(kid: &str, seed: &str) -> KeyMaterial {
        KeyMaterial { kid: kid.into(), seed: seed.into(), retired: vec![] }
    }

    #[test]
    fn a_sealed_secret_opens_only_in_its_context_and_untampered() {
        let secret_box = SecretBox::from_material(&material("k1", "seed-one-that-is-long-enough-0123456789"));
        let sealed = secret_box.seal(b"totp secret", "user-1");
        assert!(!sealed.contains("totp"));
        assert_eq!(secret_box.open(&sealed, "user-1").as_deref(), Some(&b"totp secret"[..]));
        assert_eq!(secret_box.open(&sealed, "user-2"), None);
        let mut tampered = sealed.clone();
        tampered.replace_range(tampered.len() - 2.., if sealed.ends_with("AA") { "AB" } else { "AA" });
        assert_eq!(secret_box.open(&tampered, "user-1"), None);
        assert_ne!(secret_box.seal(b"totp secret", "user-1"), sealed, "a fresh nonce per seal");
    }

    #[test]
    fn secrets_sealed_before_a_key_rotation_still_open_after_it() {
        let old = SecretBox::from_material(&material("k1", "seed-one-that-is-long-enough-0123456789"));
        let sealed = old.seal(b"secret", "ctx");
        let rotated = KeyMaterial {
            kid: "k2".into(),
            seed: "seed-two-that-is-long-enough-9876543210".into(),
            retired: vec![RetiredKey { kid: "k1".into(), seed: "seed-one-that-is-long-enough-0123456789".into() }],
        };
        let new = SecretBox::from_material(&rotated);
        assert_eq!(new.open(&sealed, "ctx").as_deref(), Some(&b"secret"[..]));
        assert!(new.seal(b"secret", "ctx").starts_with("k2."));
        assert!(!new.is_current(&sealed) && new.is_current(&new.seal(b"secret", "ctx")));
        let forgotten = SecretBox::from_material(&material("k3", "seed-three-that-is-long-enough-000000"));
        assert_eq!(forgotten.open(&sealed, "ctx"), None);
    }

    #[test]
    fn code_macs_depend_on_key_context_and_code() {
        let mac = KeyedMac::for_codes(&material("k1", "seed-one-that-is-long-enough-0123456789"));
        let other = KeyedMac::for_codes(&material("k1", "seed-two-that-is-long-enough-9876543210"));
        let urls = KeyedMac::for_urls(&material("k1", "seed-one-that-is-long-enough-0123456789"));
        assert_ne!(mac.mac("123456", "u1"), urls.mac("123456", "u1"), "one key per use");
        assert!(mac.verify("123456", "u1", &mac.mac("123456", "u1")) && !mac.verify("123456", "u1", "00"));
        assert_eq!(mac.mac("123456", "u1"), mac.mac("123456", "u1"));
        assert_ne!(mac.mac("123456", "u1"), mac.mac("123456", "u2"));
        assert_ne!(mac.mac("123456", "u1"), mac.mac("123457", "u1"));
        assert_ne!(mac.mac("123456", "u1"), other.mac("123456", "u1"));
    }
}
