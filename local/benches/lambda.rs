//! `cargo bench -p latchkey-local --bench lambda`: every function binary as Lambda runs it,
//! measured against a hello-world `lambda_http` function built the same way
//! (`lambda-baseline`): init (exec to the first poll for an event, the Secrets Manager read
//! included), the first invocation of each instance against its second, and the peak
//! resident memory (`VmHWM`) of any instance over the run.
//!
//! Each of `LATCHKEY_BENCH_RUNS` rounds (default 10) ends every instance and sends each
//! function its request twice: a cold start, then a warm one. The requests do what the
//! function does most expensively without changing what the next round sees (a register of a
//! new address, a login, wrong passwords where a route checks one).
//!
//! Then the operations the cost model prices (docs/cost.md) run `LATCHKEY_BENCH_OPERATIONS`
//! times each (default 100) on warm instances: the CPU time the function's process spends per
//! operation, and the AWS calls it makes, as moto counts them.
//!
//! Needs release builds of the functions and the baseline in `target/release` (or
//! `LATCHKEY_TEST_FUNCTIONS_DIR`): `cargo build --release --bins`; and moto's server
//! (`LATCHKEY_TEST_AWS_ENDPOINT`). `scripts/lambda-bench` does both.

use std::time::Duration;

use latchkey::config::{Config, LockoutPolicy};
use latchkey_local::emulator::runtime::{Function, Launch};
use latchkey_local::emulator::template::FunctionSpec;
use latchkey_tests::{TestTable, fresh_keys, unique_email};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

/// What a round sends each function (method, path, body; the access token is added).
fn request(function: &str, user_id: &str) -> Option<(&'static str, String, Value)> {
    let wrong = "not the password at all";
    Some(match function {
        "register" => {
            ("POST", "/v1/auth/register".into(), json!({"email": unique_email("bench"), "password": PASSWORD}))
        }
        "login" => ("POST", "/v1/auth/login".into(), json!({"email": "bench@example.com", "password": PASSWORD})),
        "refresh" => ("POST", "/v1/auth/refresh".into(), json!({"refresh_token": "not-a-refresh-token"})),
        "logout" => ("POST", "/v1/auth/logout".into(), json!({"refresh_token": "not-a-refresh-token"})),
        "users" => ("DELETE", "/v1/users/me".into(), json!({"password": wrong})),
        "tokens" => ("POST", "/v1/auth/introspect".into(), Value::Null),
        "totp" => ("POST", "/v1/auth/totp/enable".into(), json!({"password": wrong})),
        "password" => (
            "POST",
            "/v1/auth/password/change".into(),
            json!({"current_password": wrong, "new_password": "a new long passphrase"}),
        ),
        "email" => ("POST", "/v1/auth/email/verify".into(), json!({"token": "not-a-token"})),
        "friends" => ("GET", "/v1/users/me/friends".into(), Value::Null),
        "avatar" => ("GET", format!("/v1/users/{user_id}/avatar"), Value::Null),
        "oauth" => ("GET", "/v1/users/me/identities".into(), Value::Null),
        "chat" => ("GET", "/v1/conversations".into(), Value::Null),
        _ => return None,
    })
}

async fn login(client: &reqwest::Client, base: &str) -> Value {
    let body = json!({"email": "bench@example.com", "password": PASSWORD});
    client.post(format!("{base}/v1/auth/login")).json(&body).send().await.expect("login").json().await.expect("JSON")
}

/// What moto has served so far, per operation (scripts/moto_server.py counts them).
async fn aws_calls() -> std::collections::BTreeMap<String, u64> {
    let url = format!("{}/latchkey/request-counts", latchkey_tests::aws_endpoint());
    let reply = reqwest::get(url).await.expect("moto's request counts");
    reply.json().await.expect("scripts/moto_server.py answers its counts")
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("LATCHKEY_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let dir = std::env::var("LATCHKEY_TEST_FUNCTIONS_DIR").unwrap_or_else(|_| {
        let dir = format!("{}/../target/release", env!("CARGO_MANIFEST_DIR"));
        // SAFETY: set before any thread that reads the environment starts.
        unsafe { std::env::set_var("LATCHKEY_TEST_FUNCTIONS_DIR", &dir) };
        dir
    });
    // Production settings, except that the wrong passwords above must not lock the account.
    let config = Config {
        lockout: LockoutPolicy {
            account_free_failures: 1_000_000,
            account_max_failures_per_hour: 1_000_000,
            ip_free_failures: 1_000_000,
            ip_max_failures_per_hour: 1_000_000,
        },
        ..Config::default()
    };
    let table = TestTable::create().await;
    let keys = fresh_keys();
    let (base, stack) = latchkey_tests::lambda::start(&config, &table, &keys, &[]).await;
    let emulator = &stack.emulator;
    let client = latchkey_tests::http_client();
    let registered: Value = client
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"email": "bench@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("JSON");
    let access = registered["access_token"].as_str().expect("an access token").to_owned();
    let user_id = registered["user"]["id"].as_str().expect("a user id").to_owned();
    let websocket = emulator.websocket_url.clone().expect("a WebSocket API");
    let functions: Vec<String> = emulator.stats().into_iter().map(|(binary, _, _)| binary).collect();

    let baseline = Function::new(
        FunctionSpec {
            logical_id: "Baseline".into(),
            binary: "lambda-baseline".into(),
            routes: vec![],
            timeout_seconds: 3,
            memory_mb: 128,
            log_format: "JSON".into(),
            environment: Default::default(),
        },
        Launch { binary_dir: dir.clone().into(), environment: vec![], show_logs: false },
    );
    let hello = std::fs::read(format!("{}/../events/tokens/jwks.json", env!("CARGO_MANIFEST_DIR"))).expect("an event");

    for _ in 0..runs {
        emulator.stop_instances();
        baseline.stop();
        for _ in 0..2 {
            baseline.invoke(hello.clone()).await.expect("the baseline answers");
        }
        for function in &functions {
            for _ in 0..2 {
                if function == "chat-ws" {
                    // $connect with a ticket nobody issued: the ticket is spent by a conditional delete.
                    let refused = tokio_tungstenite::connect_async(format!("{websocket}?ticket=unknown")).await;
                    assert!(refused.is_err(), "an unknown ticket opens no connection");
                    continue;
                }
                let (method, path, body) = request(function, &user_id).expect("a request for every function");
                let body = if path == "/v1/auth/introspect" { json!({"token": access}) } else { body };
                let mut call = client.request(method.parse().unwrap(), format!("{base}{path}")).bearer_auth(&access);
                if !body.is_null() {
                    call = call.json(&body);
                }
                let status = call.send().await.expect("the HTTP API answers").status();
                assert!(status.as_u16() < 500, "{function} {method} {path}: {status}");
            }
        }
    }

    // The cold-start figures are what the rounds did; the operations below add warm calls.
    let round_stats = emulator.stats();
    let operations: u32 = std::env::var("LATCHKEY_BENCH_OPERATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
    println!("Per operation, warm, {operations} times each: CPU time of the function's process, and AWS calls");
    let mut refresh = login(&client, &base).await["refresh_token"].as_str().unwrap().to_owned();
    for (operation, binary) in [("register", "register"), ("login", "login"), ("refresh", "refresh"), ("me", "users")] {
        let function = emulator.function(binary).expect("the function");
        let (cpu_before, calls_before) = (function.cpu_time(), aws_calls().await);
        for _ in 0..operations {
            let reply = match operation {
                "register" => {
                    let body = json!({"email": unique_email("cost"), "password": PASSWORD});
                    client.post(format!("{base}/v1/auth/register")).json(&body).send().await
                }
                "login" => {
                    client
                        .post(format!("{base}/v1/auth/login"))
                        .json(&json!({"email": "bench@example.com", "password": PASSWORD}))
                        .send()
                        .await
                }
                "refresh" => {
                    client.post(format!("{base}/v1/auth/refresh")).json(&json!({"refresh_token": refresh})).send().await
                }
                _ => client.get(format!("{base}/v1/users/me")).bearer_auth(&access).send().await,
            };
            let body: Value = reply.expect("an answer").json().await.expect("JSON");
            if operation == "refresh" {
                refresh = body["refresh_token"].as_str().expect("a rotated refresh token").to_owned();
            }
        }
        let cpu = function.cpu_time().saturating_sub(cpu_before).as_secs_f64() * 1000.0 / f64::from(operations);
        let after = aws_calls().await;
        let calls: Vec<String> = after
            .iter()
            .filter_map(|(name, count)| {
                let delta = count - calls_before.get(name).copied().unwrap_or(0);
                (delta > 0).then(|| format!("{name} {:.1}", delta as f64 / f64::from(operations)))
            })
            .collect();
        println!("{operation:<9} ({binary}): {cpu:.2} ms CPU; {}", calls.join(", "));
    }

    let median = |mut times: Vec<Duration>| -> f64 {
        if times.is_empty() {
            return f64::NAN;
        }
        times.sort();
        times[times.len() / 2].as_secs_f64() * 1000.0
    };
    let base_stats = baseline.stats();
    let base_init = median(base_stats.inits.clone());
    println!("Lambda functions as Lambda runs them: {runs} cold starts each, medians; binaries in {dir}");
    println!(
        "{:<16} {:>9} {:>9} {:>12} {:>12} {:>13} {:>11}",
        "function", "init ms", "x hello", "1st call ms", "2nd call ms", "peak RSS MiB", "MemorySize"
    );
    let mut rows = vec![("lambda-baseline".to_owned(), 128, base_stats)];
    rows.extend(round_stats);
    for (binary, memory_mb, stats) in rows {
        let init = median(stats.inits);
        println!(
            "{:<16} {:>9.2} {:>9.2} {:>12.2} {:>12.2} {:>13.1} {:>8} MB",
            binary,
            init,
            init / base_init,
            median(stats.first_invocations),
            median(stats.later_invocations),
            stats.peak_rss_kib as f64 / 1024.0,
            memory_mb
        );
    }
}
