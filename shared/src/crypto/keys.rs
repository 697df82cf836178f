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

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

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

    pub fn from_json(json: &str, issuer: &str, audience: &str) -> Result<Self, KeyError> {
        let material: KeyMaterial = serde_json::from_str(json).map_err(|e| KeyError::Format(e.to_string()))?;
        Self::from_material(&material, issuer, audience)
    }

    /// Reads the key file, creating it (mode 0600) with a fresh key on first start.
    pub fn load_or_create_file(path: &Path, issuer: &str, audience: &str) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io { path: path.display().to_string(), source };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                let material = KeyMaterial {
                    kid: format!("local-{}", &crate::crypto::secrets::hash(&crate::crypto::secrets::generate())[..12]),
                    seed: crate::crypto::secrets::generate(),
                    retired: Vec::new(),
                };
                let json = serde_json::to_string_pretty(&material).expect("key material serialises");
                file.write_all(json.as_bytes()).map_err(io)?;
                Self::from_material(&material, issuer, audience)
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::from_json(&std::fs::read_to_string(path).map_err(io)?, issuer, audience)
            }
            Err(error) => Err(io(error)),
        }
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
            .map(|key| json!({"kty": "OKP", "crv": "Ed25519", "x": key.x, "kid": key.kid, "use": "sig", "alg": "EdDSA"}))
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
