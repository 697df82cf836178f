//! `GET /v1/users` at 100,000 accounts: seeds the embedded store (and DynamoDB in moto, when
//! LATCHKEY_TEST_AWS_ENDPOINT points at one) and prints the latency of a filtered page as the
//! users handler gets it from the service, with the directory read every time (as happens
//! once per LATCHKEY_DIRECTORY_CACHE_SECONDS) and from the cache.
//!
//! `cargo bench -p latchkey-local --bench listing` (LATCHKEY_BENCH_USERS to change the count;
//! `./scripts/test`'s moto, or any moto, for the DynamoDB figures).

use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey::config::Config;
use latchkey::crypto::keys::KeyMaterial;
use latchkey::domain::{Email, Password, Pattern, PatternAllowance, Role, User, Username};
use latchkey::features::directory::{DirectoryService, UserQuery};
use latchkey::kernel::{Kernel, Principal};
use latchkey::mail::outbox::Outbox;
use latchkey::repo::UserRepo;
use latchkey::store::{Item, ItemStore, Write};

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
    let admin = seed(store.as_ref(), count).await;
    println!("{backend}: seeded {count} accounts in {:.1} s", seeding.elapsed().as_secs_f64());

    let config = Config { directory_cache_seconds: 600, ..Config::from_env().expect("configuration") };
    let outbox = Outbox::new(&dir.join("outbox"), latchkey::kernel::sender(&config)).unwrap();
    let keys = KeyMaterial::load_or_create_file(&dir.join("key.json")).unwrap();
    let kernel = Kernel::new(config, Arc::clone(&store), &keys, Arc::new(outbox), None).unwrap();
    let directory = DirectoryService::new(&kernel);
    // The service as the users handler calls it, for a signed-in admin: what is measured is
    // the listing, not a sign-in (whose transactions moto runs in time linear in the table).
    let principal = Principal {
        user: admin,
        session_id: uuid::Uuid::new_v4(),
        session_epoch: 0,
        totp_enabled: false,
        email_codes_enabled: false,
    };
    let mut times = Vec::new();
    let mut total = 0;
    for _ in 0..30 {
        // Users whose name starts with "user0042": 100 of 100,000, page 2 of size 20.
        let name = Pattern::parse("^user0042", PatternAllowance::Member).unwrap();
        let query = UserQuery { name: Some(name), email: None, page: 2, size: 20 };
        let started = Instant::now();
        let page = directory.list_users(&principal, query).await.expect("a page");
        times.push(started.elapsed());
        total = page.total_count;
        assert_eq!(page.users.len(), 20);
    }
    // The first request reads the whole directory (as one does every cache interval); the
    // rest filter the cached copy and read the page's 20 records.
    println!(
        "{backend}: filtered page (total_count {total}): reading the directory {:.1} ms; cached: median {:.1} ms, max {:.1} ms over {}",
        ms(times[0]),
        ms(median(&times[1..])),
        ms(*times[1..].iter().max().unwrap()),
        times.len() - 1
    );
}

/// Writes `count` accounts and one admin straight into the store: the same items registration
/// writes, with one precomputed password hash (hashing 100,000 passwords would measure
/// argon2). Answers the admin.
async fn seed(store: &dyn ItemStore, count: usize) -> User {
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
    let admin = User {
        role: Role::Admin,
        ..User::new_email_user(Email::parse("admin@example.com").unwrap(), None, None, time::OffsetDateTime::now_utc())
    };
    for write in UserRepo::creation_writes(&admin, Some(hash)).unwrap() {
        if let Write::Put { item, .. } = write {
            items.push(item);
        }
    }
    store.import(items).await.expect("import");
    admin
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
