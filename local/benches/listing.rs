//! `GET /v1/users` at 100,000 accounts: seeds the embedded store (and DynamoDB in moto, when
//! LATCHKEY_TEST_AWS_ENDPOINT points at one) and prints the latency of a filtered page, with
//! the directory read cold (as every LATCHKEY_DIRECTORY_CACHE_SECONDS) and from the cache.
//!
//! `cargo bench -p latchkey-local --bench listing` (LATCHKEY_BENCH_USERS to change the count;
//! `./scripts/test`'s moto, or any moto, for the DynamoDB figures).

use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey::config::Config;
use latchkey::crypto::keys::KeyMaterial;
use latchkey::domain::{Email, Password, Role, User, Username};
use latchkey::http::{Function, router};
use latchkey::mail::outbox::Outbox;
use latchkey::repo::UserRepo;
use latchkey::service::{AdminBootstrap, AuthService};
use latchkey::store::{Item, ItemStore, Write};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::main]
async fn main() {
    let count: usize = std::env::var("LATCHKEY_BENCH_USERS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let embedded = latchkey::store::embedded::EmbeddedStore::open(&dir.path().join("bench.redb")).expect("redb");
    measure("embedded (redb)", Arc::new(embedded), count, dir.path()).await;

    match std::env::var("LATCHKEY_TEST_AWS_ENDPOINT") {
        Ok(_) => {
            let table = latchkey_tests::TestTable::create().await;
            measure("DynamoDB (moto)", Arc::new(table.store()), count, dir.path()).await;
        }
        Err(_) => println!("DynamoDB (moto): skipped; set LATCHKEY_TEST_AWS_ENDPOINT to a moto server to measure it"),
    }
}

async fn measure(backend: &str, store: Arc<dyn ItemStore>, count: usize, dir: &std::path::Path) {
    let seeding = Instant::now();
    seed(store.as_ref(), count).await;
    println!("{backend}: seeded {count} accounts in {:.1} s", seeding.elapsed().as_secs_f64());

    for cache_seconds in [0, 60] {
        let config = Config { directory_cache_seconds: cache_seconds, ..Config::from_env().expect("configuration") };
        let admin = format!("admin-{cache_seconds}@example.com");
        AdminBootstrap::new(Arc::clone(&store), &config)
            .unwrap()
            .create(Email::parse(&admin).unwrap(), Password::new(PASSWORD.into(), config.password_policy).unwrap())
            .await
            .expect("an admin");
        let outbox = Outbox::new(&dir.join("outbox"), AuthService::sender(&config)).unwrap();
        let keys = KeyMaterial::load_or_create_file(&dir.join("key.json")).unwrap();
        let state = latchkey::app::state(config, Arc::clone(&store), &keys, Arc::new(outbox), None).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, router(&Function::ALL, state)).await.unwrap() });
        let client = reqwest::Client::new();
        let login: Value = client
            .post(format!("{base}/v1/auth/login"))
            .json(&json!({"email": admin, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["access_token"].as_str().expect("signed in").to_owned();

        // Users whose name starts with "user0042": 100 of 100,000, page 2 of size 20.
        let url = format!("{base}/v1/users?filter_name=%5Euser0042&page=2&size=20");
        let mut times = Vec::new();
        let mut total = Value::Null;
        for _ in 0..if cache_seconds == 0 { 5 } else { 50 } {
            let started = Instant::now();
            let page: Value = client.get(&url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
            times.push(started.elapsed());
            total = page["total_count"].clone();
        }
        let label = if cache_seconds == 0 { "directory read every time" } else { "directory cached" };
        // With the cache, the first request reads the directory and the rest do not.
        let first = times[0];
        let steady = if cache_seconds == 0 { &times[..] } else { &times[1..] };
        println!(
            "{backend}: filtered page ({label}): first {:.1} ms, median {:.1} ms over {} (total_count {total})",
            ms(first),
            ms(median(steady)),
            steady.len()
        );
        server.abort();
    }
}

/// Writes `count` accounts straight into the store: the same items registration writes,
/// with one precomputed password hash (hashing 100,000 passwords would measure argon2).
async fn seed(store: &dyn ItemStore, count: usize) {
    let hash = latchkey::crypto::passwords::PasswordHasher::new(Config::default().argon2)
        .unwrap()
        .hash(&Password::new(PASSWORD.into(), Default::default()).unwrap())
        .await
        .unwrap();
    let mut items: Vec<Item> = Vec::with_capacity(count * 4);
    for n in 0..count {
        let email = Email::parse(&format!("user{n:06}@example.com")).unwrap();
        let username = Username::parse(&format!("user{n:06}")).unwrap();
        let user = User {
            role: Role::User,
            ..User::new_email_user(email, Some(username), None, time::OffsetDateTime::now_utc())
        };
        for write in UserRepo::creation_writes(&user, Some(hash.clone())).unwrap() {
            if let Write::Put { item, .. } = write {
                items.push(item);
            }
        }
        if items.len() >= 10_000 {
            store.import(std::mem::take(&mut items)).await.expect("import");
        }
    }
    store.import(items).await.expect("import");
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
