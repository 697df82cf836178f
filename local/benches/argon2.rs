//! One argon2id hash with the default settings (19 MiB, 2 passes, 1 lane), as registration and
//! every password check do, under the release profile: the figure the profile's opt-levels are
//! chosen against. `cargo bench -p latchkey-local --bench argon2`.

use std::time::Instant;

use latchkey::crypto::passwords::{Argon2Settings, PasswordHasher};
use latchkey::domain::{Password, PasswordPolicy};

#[tokio::main]
async fn main() {
    let hasher = PasswordHasher::new(Argon2Settings::default()).expect("settings");
    let password = Password::new("correct horse battery staple".into(), PasswordPolicy::default()).unwrap();
    let mut times = Vec::new();
    for _ in 0..21 {
        let started = Instant::now();
        hasher.hash(&password).await.expect("a hash");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!("argon2id m=19456 KiB t=2 p=1: median {:.1} ms, min {:.1} ms over {}", times[10], times[0], times.len());
}
