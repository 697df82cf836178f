//! `cargo bench -p latchkey-local`: throughput and latency of the local server at 16
//! connections for `GET /v1/users/me`, `POST /v1/auth/refresh` and `POST /v1/auth/login`,
//! plus the raw argon2id hash time that bounds a login from below.
//!
//! The server is the local server's own stack (embedded store in a temporary directory,
//! every route, default settings unless `LATCHKEY_*` variables say otherwise) on a loopback
//! port. Each scenario runs for `LATCHKEY_BENCH_SECONDS` (default 5) and then stops.

use std::time::{Duration, Instant};

use latchkey::config::{Config, LockoutPolicy};
use latchkey::crypto::passwords::PasswordHasher;
use latchkey::domain::Password;

use serde_json::{Value, json};

const CONNECTIONS: usize = 16;
const PASSWORD: &str = "correct horse battery staple";

#[derive(Clone)]
struct Account {
    email: String,
    access: String,
    refresh: String,
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("LATCHKEY_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let duration = Duration::from_secs(seconds);
    let mut config = Config::from_env().expect("configuration");
    // The failure scenarios below repeat one wrong password thousands of times; lockout would
    // turn them into 429s after six, which measures the lock rather than the login.
    config.lockout = LockoutPolicy {
        account_free_failures: 1_000_000_000,
        account_max_failures_per_hour: 1_000_000_000,
        ..LockoutPolicy::default()
    };
    let data_dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (kernel, objects) = latchkey::app::embedded_kernel(config.clone(), data_dir.path(), &base).expect("kernel");
    let app = latchkey::app::local_app(&kernel, objects);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    println!(
        "latchkey-local bench: {CONNECTIONS} connections, {seconds} s per scenario, argon2id m={} KiB t={} p={}",
        config.argon2.memory_kib, config.argon2.iterations, config.argon2.parallelism
    );
    let hash_ms = argon2_hash_ms(&config).await;
    println!("{:<34} {:>8.2} ms (median of 20, one at a time)", "argon2id hash", hash_ms);

    let mut accounts = Vec::new();
    for n in 0..CONNECTIONS {
        let email = format!("bench{n}@example.com");
        let body = post(
            &latchkey_tests::http_client(),
            &base,
            "/v1/auth/register",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
        accounts.push(Account { email, access: text(&body, "access_token"), refresh: text(&body, "refresh_token") });
    }

    run("GET /v1/users/me", &base, &accounts, CONNECTIONS, duration, |client, base, account| async move {
        let response = client.get(format!("{base}/v1/users/me")).bearer_auth(&account.access).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        account
    })
    .await;

    run("POST /v1/auth/refresh", &base, &accounts, CONNECTIONS, duration, |client, base, mut account| async move {
        let body = post(&client, &base, "/v1/auth/refresh", json!({"refresh_token": account.refresh})).await;
        account.refresh = text(&body, "refresh_token");
        account
    })
    .await;

    let login = |client: reqwest::Client, base: String, account: Account| async move {
        post(&client, &base, "/v1/auth/login", json!({"email": account.email, "password": PASSWORD})).await;
        account
    };
    run("POST /v1/auth/login", &base, &accounts, CONNECTIONS, duration, login).await;
    run("POST /v1/auth/login (1 connection)", &base, &accounts, 1, duration, login).await;
    let unknown = |client: reqwest::Client, base: String, account: Account| async move {
        let body = json!({"email": "nobody@example.com", "password": PASSWORD});
        let response = client.post(format!("{base}/v1/auth/login")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 401);
        response.bytes().await.unwrap();
        account
    };
    run("POST /v1/auth/login unknown (1 conn)", &base, &accounts, 1, duration, unknown).await;
    let wrong_password = |client: reqwest::Client, base: String, account: Account| async move {
        let body = json!({"email": account.email, "password": "not the password"});
        let response = client.post(format!("{base}/v1/auth/login")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 401);
        response.bytes().await.unwrap();
        account
    };
    run("POST /v1/auth/login wrong pw (1 conn)", &base, &accounts, 1, duration, wrong_password).await;

    // Forgot-password (which, unlike email codes, mails on every request) answers in the same
    // time whether or not the account exists.
    let forgot = |known: bool| {
        move |client: reqwest::Client, base: String, account: Account| async move {
            let email = if known { account.email.clone() } else { "nobody@example.com".to_owned() };
            let response = client
                .post(format!("{base}/v1/auth/password/forgot"))
                .json(&json!({"email": email}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202);
            response.bytes().await.unwrap();
            account
        }
    };
    run("POST /v1/auth/password/forgot known (1 conn)", &base, &accounts, 1, duration, forgot(true)).await;
    run("POST /v1/auth/password/forgot unknown (1 conn)", &base, &accounts, 1, duration, forgot(false)).await;
}

async fn argon2_hash_ms(config: &Config) -> f64 {
    let hasher = PasswordHasher::new(config.argon2).expect("argon2 settings");
    let password = Password::new(PASSWORD.into(), config.password_policy).unwrap();
    let mut samples = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        hasher.hash(&password).await.unwrap();
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Runs `request` in a closed loop on `connections` workers until `duration` has passed,
/// then prints requests per second and the 50th and 99th latency percentiles.
async fn run<F, Fut>(name: &str, base: &str, accounts: &[Account], connections: usize, duration: Duration, request: F)
where
    F: Fn(reqwest::Client, String, Account) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Account> + Send,
{
    let started = Instant::now();
    let workers: Vec<_> = accounts[..connections]
        .iter()
        .cloned()
        .map(|mut account| {
            let (request, base) = (request.clone(), base.to_owned());
            tokio::spawn(async move {
                let client = latchkey_tests::http_client();
                let mut latencies = Vec::new();
                while started.elapsed() < duration {
                    let sent = Instant::now();
                    account = request(client.clone(), base.clone(), account).await;
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<f64> = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{name:<34} {:>8.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests)",
        latencies.len() as f64 / elapsed,
        percentile(0.50),
        percentile(0.99),
        latencies.len()
    );
}

async fn post(client: &reqwest::Client, base: &str, path: &str, body: Value) -> Value {
    let response = client.post(format!("{base}{path}")).json(&body).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

fn text(body: &Value, field: &str) -> String {
    body[field].as_str().unwrap_or_else(|| panic!("no {field} in {body}")).to_owned()
}
