//! Ed25519 access-token signing keys: JWT signing, verification and the public JWKS.
//!
//! Key material is a small JSON document, the same locally (a file in the data directory)
//! and on Lambda (a Secrets Manager secret the template generates):
//! `{"kid": "...", "seed": "...", "retired": [{"kid": "...", "seed": "..."}]}`.
//! The top-level key signs; retired keys are still published and accepted, so a key can be
//! rotated without signing anybody out. A seed is any high-entropy string; the Ed25519
//! private key is its SHA-256, which lets CloudFormation's `GenerateSecretString` make one.

use std::io::Write as _;
use std::path::Path;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::Role;

/// The JWT `typ` header of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyMaterial {
    pub kid: String,
    pub seed: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetiredKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetiredKey {
    pub kid: String,
    pub seed: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key material is not valid JSON of the documented shape: {0}")]
    Format(String),
    #[error("signing key {0} is unusable")]
    Unusable(String),
    #[error("cannot read or write the signing key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl KeyMaterial {
    pub fn from_json(json: &str) -> Result<Self, KeyError> {
        serde_json::from_str(json).map_err(|e| KeyError::Format(e.to_string()))
    }

    /// Every (kid, seed) pair, the active one first.
    pub fn seeds(&self) -> impl Iterator<Item = (&str, &str)> {
        std::iter::once((self.kid.as_str(), self.seed.as_str()))
            .chain(self.retired.iter().map(|retired| (retired.kid.as_str(), retired.seed.as_str())))
    }

    /// Reads the key file, creating it (mode 0600) with a fresh key on first start. The new
    /// file is written and synced under a temporary name, then linked into place, so a crash
    /// never leaves a half-written key and two racing first starts agree on one key.
    pub fn load_or_create_file(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io { path: path.display().to_string(), source };
        if !path.exists() {
            let material = KeyMaterial {
                kid: format!("local-{}", &crate::crypto::secrets::hash(&crate::crypto::secrets::generate())[..12]),
                seed: crate::crypto::secrets::generate(),
                retired: Vec::new(),
            };
            let json = serde_json::to_string_pretty(&material).expect("key material serialises");
            let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let written = options.open(&temporary).and_then(|mut file| {
                file.write_all(json.as_bytes())?;
                file.sync_all()
            });
            let linked = written.and_then(|()| match std::fs::hard_link(&temporary, path) {
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                other => other,
            });
            let _ = std::fs::remove_file(&temporary);
            linked.map_err(io)?;
        }
        Self::from_json(&std::fs::read_to_string(path).map_err(io)?)
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub sid: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

struct VerifyingKey {
    kid: String,
    x: String,
    key: DecodingKey,
}

pub struct SigningKeys {
    kid: String,
    signing: EncodingKey,
    verifying: Vec<VerifyingKey>,
    validation: Validation,
}

impl SigningKeys {
    pub fn from_material(material: &KeyMaterial, issuer: &str, audience: &str) -> Result<Self, KeyError> {
        let (pkcs8, x) = derive(&material.kid, &material.seed)?;
        let mut verifying = vec![VerifyingKey {
            kid: material.kid.clone(),
            key: DecodingKey::from_ed_components(&x).map_err(|_| KeyError::Unusable(material.kid.clone()))?,
            x,
        }];
        for retired in &material.retired {
            let (_, x) = derive(&retired.kid, &retired.seed)?;
            let key = DecodingKey::from_ed_components(&x).map_err(|_| KeyError::Unusable(retired.kid.clone()))?;
            verifying.push(VerifyingKey { kid: retired.kid.clone(), x, key });
        }
        // Pin the algorithm and check issuer, audience and expiry (RFC 8725).
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 0;
        Ok(Self { kid: material.kid.clone(), signing: EncodingKey::from_ed_der(&pkcs8), verifying, validation })
    }

    pub fn sign(&self, claims: &AccessClaims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing).expect("Ed25519 signing cannot fail with a valid key")
    }

    /// The claims of a valid, unexpired access token of ours; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return None;
        }
        let kid = header.kid?;
        let key = self.verifying.iter().find(|candidate| candidate.kid == kid)?;
        jsonwebtoken::decode::<AccessClaims>(token, &key.key, &self.validation).ok().map(|data| data.claims)
    }

    /// The public keys as a JWK Set (RFC 7517, RFC 8037).
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .verifying
            .iter()
            .map(
                |key| json!({"kty": "OKP", "crv": "Ed25519", "x": key.x, "kid": key.kid, "use": "sig", "alg": "EdDSA"}),
            )
            .collect();
        json!({ "keys": keys })
    }
}

/// The PKCS#8 private key and the base64url public key for a seed.
fn derive(kid: &str, seed: &str) -> Result<(Vec<u8>, String), KeyError> {
    if seed.len() < 32 {
        return Err(KeyError::Unusable(format!("{kid} (its seed must have at least 32 characters)")));
    }
    let private = digest(&SHA256, seed.as_bytes());
    let pair = Ed25519KeyPair::from_seed_unchecked(private.as_ref()).map_err(|_| KeyError::Unusable(kid.into()))?;
    let pkcs8 = pair.to_pkcs8v1().map_err(|_| KeyError::Unusable(kid.into()))?;
    Ok((pkcs8.as_ref().to_vec(), URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    const SEED: &str = "a-test-seed-that-is-long-enough-0123456789";

    fn keys() -> SigningKeys {
        SigningKeys::from_material(&KeyMaterial { kid: "k1".into(), seed: SEED.into(), retired: vec![] }, "iss", "aud")
            .unwrap()
    }

    fn claims() -> AccessClaims {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        AccessClaims {
            iss: "iss".into(),
            aud: "aud".into(),
            sub: "user".into(),
            sid: "session".into(),
            role: Role::User,
            iat: now,
            exp: now + 600,
            jti: "jti".into(),
        }
    }

    fn b64(json: &Value) -> String {
        URL_SAFE_NO_PAD.encode(json.to_string())
    }

    #[test]
    fn a_signed_token_verifies_and_carries_its_claims() {
        let token = keys().sign(&claims());
        assert_eq!(keys().verify(&token), Some(claims()));
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!((header.typ.as_deref(), header.kid.as_deref()), (Some("at+jwt"), Some("k1")));
    }

    #[test]
    fn alg_none_is_rejected() {
        let header = json!({"alg": "none", "typ": "at+jwt", "kid": "k1"});
        let token = format!("{}.{}.", b64(&header), b64(&serde_json::to_value(claims()).unwrap()));
        assert_eq!(keys().verify(&token), None);
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_rejected() {
        let public_x = keys().jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(ACCESS_TOKEN_TYPE.into());
        header.kid = Some("k1".into());
        for secret in [public_x.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(&public_x).unwrap()] {
            let forged = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&secret)).unwrap();
            assert_eq!(keys().verify(&forged), None);
        }
    }

    #[test]
    fn a_tampered_payload_or_signature_is_rejected() {
        let token = keys().sign(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let mut admin = serde_json::to_value(claims()).unwrap();
        admin["role"] = json!("ADMIN");
        assert_eq!(keys().verify(&format!("{}.{}.{}", parts[0], b64(&admin), parts[2])), None);
        let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        signature[0] ^= 1;
        let flipped = URL_SAFE_NO_PAD.encode(signature);
        assert_eq!(keys().verify(&format!("{}.{}.{flipped}", parts[0], parts[1])), None);
    }

    #[test]
    fn wrong_issuer_audience_type_or_expiry_is_rejected() {
        let other_issuer = SigningKeys::from_material(
            &KeyMaterial { kid: "k1".into(), seed: SEED.into(), retired: vec![] },
            "elsewhere",
            "aud",
        )
        .unwrap();
        assert_eq!(other_issuer.verify(&keys().sign(&claims())), None, "issuer");
        let mut wrong_audience = claims();
        wrong_audience.aud = "another-app".into();
        assert_eq!(keys().verify(&keys().sign(&wrong_audience)), None, "audience");
        let mut expired = claims();
        expired.exp = expired.iat - 1;
        assert_eq!(keys().verify(&keys().sign(&expired)), None, "expiry");

        let (pkcs8, _) = derive("k1", SEED).unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("k1".into());
        header.typ = Some("JWT".into());
        let id_token_like = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_ed_der(&pkcs8)).unwrap();
        assert_eq!(keys().verify(&id_token_like), None, "typ must be at+jwt");
    }

    #[test]
    fn a_retired_key_still_verifies_and_is_published_while_the_new_one_signs() {
        let old = keys();
        let old_token = old.sign(&claims());
        let rotated = SigningKeys::from_material(
            &KeyMaterial {
                kid: "k2".into(),
                seed: "another-long-seed-for-the-new-key-9876543210".into(),
                retired: vec![RetiredKey { kid: "k1".into(), seed: SEED.into() }],
            },
            "iss",
            "aud",
        )
        .unwrap();
        assert_eq!(rotated.verify(&old_token), Some(claims()));
        let jwks = rotated.jwks();
        let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids, ["k2", "k1"]);
        let new_token = rotated.sign(&claims());
        assert_eq!(jsonwebtoken::decode_header(&new_token).unwrap().kid.as_deref(), Some("k2"));
        assert_eq!(old.verify(&new_token), None, "an unknown kid is rejected");
    }

    #[test]
    fn a_key_file_is_created_once_private_and_reused() {
        let dir = tempfile_dir();
        let path = dir.join("signing-key.json");
        let first =
            SigningKeys::from_material(&KeyMaterial::load_or_create_file(&path).unwrap(), "iss", "aud").unwrap();
        let second =
            SigningKeys::from_material(&KeyMaterial::load_or_create_file(&path).unwrap(), "iss", "aud").unwrap();
        assert_eq!(first.jwks(), second.jwks());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("latchkey-keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn short_seeds_are_refused() {
        let short = KeyMaterial { kid: "k".into(), seed: "too-short".into(), retired: vec![] };
        assert!(matches!(SigningKeys::from_material(&short, "iss", "aud"), Err(KeyError::Unusable(_))));
    }
}
