//! `cargo bench -p latchkey-local --bench chat`: chat fan-out latency on the local server, from
//! a client sending a message to the other participant's client receiving it, with 100
//! conversations running at once (200 WebSocket clients).
//!
//! Each conversation is a closed loop: send, wait until the receiver has the message (and
//! the sender its ack), repeat, for `LATCHKEY_BENCH_SECONDS` (default 5). The store is the
//! embedded one in a temporary directory; every message is stored before it is delivered.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use latchkey::config::Config;
use latchkey::crypto::passwords::Argon2Settings;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const CONVERSATIONS: usize = 100;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("LATCHKEY_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let config = Config {
        // Setting up 200 accounts should not take the time of 200 real password hashes, and a
        // closed loop sends faster than the per-connection limit allows.
        argon2: Argon2Settings { memory_kib: 256, iterations: 1, parallelism: 1 },
        chat_rate_limit: u32::MAX,
        ..Config::from_env().expect("configuration")
    };
    let data_dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (kernel, objects) = latchkey::app::embedded_kernel(config, data_dir.path(), &base).expect("kernel");
    let app = latchkey::app::local_app(&kernel, objects);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = latchkey_tests::http_client();
    let pairs = futures::future::join_all((0..CONVERSATIONS).map(|n| pair(&client, &base, n))).await;
    println!("latchkey-local chat bench: {CONVERSATIONS} conversations at once, {seconds} s, embedded store");

    let started = Instant::now();
    let duration = Duration::from_secs(seconds);
    let loops = pairs.into_iter().map(|(conversation_id, mut sender, mut receiver)| {
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < duration {
                let frame = json!({ "action": "send_message", "conversation_id": conversation_id, "text": "ping", "client_id": "b" });
                let sent = Instant::now();
                sender.send(WsMessage::Text(frame.to_string().into())).await.unwrap();
                expect(&mut receiver, "message").await;
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                expect(&mut sender, "ack").await;
            }
            latencies
        })
    });
    let mut latencies: Vec<f64> = Vec::new();
    for worker in futures::future::join_all(loops).await {
        latencies.extend(worker.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{:<34} {:>8.0} msg/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} messages)",
        "send -> receive (fan-out)",
        latencies.len() as f64 / elapsed,
        percentile(0.50),
        percentile(0.99),
        latencies.len()
    );
}

/// Two signed-in users with a conversation, each with an open chat socket.
async fn pair(client: &reqwest::Client, base: &str, n: usize) -> (String, Socket, Socket) {
    let (initiator, receiver) =
        (user(client, base, &format!("a{n}")).await, user(client, base, &format!("b{n}")).await);
    let started =
        post(client, base, "/v1/conversations", &initiator, json!({ "username": format!("bench_b{n}") })).await;
    let conversation_id = started["conversation_id"].as_str().unwrap().to_owned();
    (conversation_id, socket(client, base, &initiator).await, socket(client, base, &receiver).await)
}

/// Registers `bench_<name>` and answers its access token.
async fn user(client: &reqwest::Client, base: &str, name: &str) -> String {
    let body = json!({ "email": format!("{name}@bench.example.com"), "username": format!("bench_{name}"), "password": "correct horse battery staple" });
    let response = client.post(format!("{base}/v1/auth/register")).json(&body).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap_or_else(|| panic!("register: {body}")).to_owned()
}

async fn socket(client: &reqwest::Client, base: &str, access_token: &str) -> Socket {
    let ticket = post(client, base, "/v1/chat/ticket", access_token, json!({})).await;
    let url = format!("{}/v1/chat/ws?ticket={}", base.replacen("http", "ws", 1), ticket["ticket"].as_str().unwrap());
    tokio_tungstenite::connect_async(url).await.expect("connect").0
}

async fn post(client: &reqwest::Client, base: &str, path: &str, access_token: &str, body: Value) -> Value {
    let response = client.post(format!("{base}{path}")).bearer_auth(access_token).json(&body).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

async fn expect(socket: &mut Socket, kind: &str) {
    loop {
        if let WsMessage::Text(text) = socket.next().await.expect("open").expect("a frame") {
            let frame: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(frame["type"], kind, "{frame}");
            return;
        }
    }
}
