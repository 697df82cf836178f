//! TOTP (RFC 6238): SHA-1, 6 digits, 30-second steps, one step of skew each way, which is
//! what every authenticator app understands.

use totp_rs::{Algorithm, Builder, Totp};

/// RFC 4226 recommends 160-bit shared secrets.
pub const SECRET_BYTES: usize = 20;
pub const STEP_SECONDS: u64 = 30;
const DIGITS: u8 = 6;

/// What a user needs to add the secret to an authenticator app.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrollment {
    pub secret_base32: String,
    /// `otpauth://totp/<issuer>:<account>?secret=...&issuer=...`
    pub url: String,
    /// The URL as a QR code: `data:image/png;base64,...`.
    pub qr_png: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the TOTP enrollment: {0}")]
pub struct TotpError(String);

pub fn generate_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    aws_lc_rs::rand::fill(&mut secret).expect("the OS random number generator failed");
    secret
}

fn builder(secret: &[u8], digits: u8) -> Builder {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(digits)
        .with_skew(1)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret.to_vec())
}

fn totp(secret: &[u8], digits: u8) -> Totp {
    builder(secret, digits).build_noncompliant()
}

/// The otpauth URL and QR code for `secret`, labelled `issuer:account`.
pub fn enrollment(secret: &[u8], issuer: &str, account: &str) -> Result<Enrollment, TotpError> {
    // otpauth labels use ':' as the separator, so it cannot appear inside either part.
    let issuer = issuer.replace(':', " ");
    let totp = builder(secret, DIGITS)
        .with_issuer(Some(issuer))
        .with_account_name(account.replace(':', " "))
        .build()
        .map_err(|error| TotpError(format!("{error:?}")))?;
    let url = totp.to_url().map_err(|error| TotpError(format!("{error:?}")))?;
    let qr = totp.to_qr_base64().map_err(|error| TotpError(format!("{error:?}")))?;
    Ok(Enrollment { secret_base32: totp.secret().to_base32(), url, qr_png: format!("data:image/png;base64,{qr}") })
}

/// The time step (Unix time / 30) whose code is `code`, within one step of `now`.
/// Comparison is constant-time; the caller must refuse a step it has already accepted.
pub fn matching_step(secret: &[u8], code: &str, now: u64) -> Option<u64> {
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    totp(secret, DIGITS).check(code, now)
}

/// The code of `secret` at Unix time `time` (for tests and the RFC vectors).
pub fn code_at(secret: &[u8], digits: u8, time: u64) -> String {
    totp(secret, digits).generate(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_appendix_b_sha1_vectors() {
        let secret = b"12345678901234567890";
        for (time, expected) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(secret, 8, time), expected, "T = {time}");
        }
    }

    #[test]
    fn a_code_matches_its_own_step_and_one_step_either_side_only() {
        let secret = generate_secret();
        let now = 1_700_000_015;
        let step = now / STEP_SECONDS;
        let code = code_at(&secret, 6, now);
        assert_eq!(matching_step(&secret, &code, now), Some(step));
        assert_eq!(matching_step(&secret, &code, now + STEP_SECONDS), Some(step));
        assert_eq!(matching_step(&secret, &code, now - STEP_SECONDS), Some(step));
        assert_eq!(matching_step(&secret, &code, now + 2 * STEP_SECONDS), None);
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "12a456", now), None);
    }

    #[test]
    fn enrollment_carries_issuer_account_and_a_png_qr_code() {
        let secret = generate_secret();
        let enrollment = enrollment(&secret, "Acme: Prod", "ada@example.com").unwrap();
        assert_eq!(enrollment.secret_base32.len(), 32);
        assert!(enrollment.url.starts_with("otpauth://totp/Acme%20%20Prod:ada%40example.com?"), "{}", enrollment.url);
        assert!(enrollment.url.contains(&format!("secret={}", enrollment.secret_base32)));
        assert!(enrollment.qr_png.starts_with("data:image/png;base64,iVBORw0KGgo"), "a PNG signature");
    }
}
