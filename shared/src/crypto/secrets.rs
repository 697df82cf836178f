//! Single-use secrets: refresh and reset tokens, email codes and recovery codes. All random
//! from the OS CSPRNG, shown once, stored only as a hash (or a keyed MAC, see `sealing`).

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// 32 bytes (256 bits) from the OS CSPRNG, base64url without padding (43 characters).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the OS random number generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A uniformly random string of `digits` decimal digits (an email one-time code).
pub fn generate_digits(digits: u32) -> String {
    let modulus = 10u32.pow(digits);
    // Rejection sampling: values above the last whole multiple of `modulus` would bias low digits.
    let limit = u32::MAX - u32::MAX % modulus;
    loop {
        let mut bytes = [0u8; 4];
        aws_lc_rs::rand::fill(&mut bytes).expect("the OS random number generator failed");
        let value = u32::from_le_bytes(bytes);
        if value < limit {
            return format!("{:0width$}", value % modulus, width = digits as usize);
        }
    }
}

/// Recovery codes use an alphabet without look-alikes (no 0/o, 1/l/i).
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A recovery code: 16 characters of a 31-letter alphabet (79 bits), shown as `xxxx-xxxx-xxxx-xxxx`.
/// That is far beyond offline guessing, so a plain SHA-256 is a fit way to store it.
pub fn generate_recovery_code() -> String {
    let mut code = String::with_capacity(19);
    while code.len() < 19 {
        let mut byte = [0u8; 1];
        aws_lc_rs::rand::fill(&mut byte).expect("the OS random number generator failed");
        // 248 = 8 * 31: rejecting the rest keeps every letter equally likely.
        if byte[0] < 248 {
            if matches!(code.len(), 4 | 9 | 14) {
                code.push('-');
            }
            code.push(char::from(RECOVERY_ALPHABET[usize::from(byte[0] % 31)]));
        }
    }
    code
}

/// A recovery code as typed (any case, with or without dashes and spaces), in stored form.
pub fn normalize_recovery_code(typed: &str) -> String {
    typed.chars().filter(|c| !matches!(c, '-' | ' ')).flat_map(char::to_lowercase).collect()
}

/// SHA-256 in hex. A fast hash is right here: the input already has 256 bits of entropy,
/// so there is nothing to stretch, and lookups by hash need a deterministic value.
pub fn hash(secret: &str) -> String {
    digest(&SHA256, secret.as_bytes()).as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_carry_256_bits_and_differ() {
        let (a, b) = (generate(), generate());
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn digit_codes_have_the_asked_length_and_vary() {
        let codes: std::collections::HashSet<String> = (0..50).map(|_| generate_digits(6)).collect();
        assert!(codes.iter().all(|code| code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())));
        assert!(codes.len() > 45);
    }

    #[test]
    fn recovery_codes_are_grouped_and_normalise_from_what_users_type() {
        let code = generate_recovery_code();
        assert_eq!(code.len(), 19);
        assert_eq!(code.matches('-').count(), 3);
        assert!(code.replace('-', "").bytes().all(|b| RECOVERY_ALPHABET.contains(&b)));
        let typed = code.to_uppercase().replace('-', " ");
        assert_eq!(normalize_recovery_code(&typed), normalize_recovery_code(&code));
        assert_eq!(normalize_recovery_code(&code).len(), 16);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
