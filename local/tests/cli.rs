//! The `latchkey-local` binary as a developer runs it.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

struct LocalServer {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl LocalServer {
    fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = data_dir.with_extension(format!("{port}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_latchkey-local"))
            .args(["--addr", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data_dir)
            .env("LATCHKEY_ARGON2_MEMORY_KIB", "256")
            .env("LATCHKEY_ARGON2_ITERATIONS", "1")
            .env("RUST_LOG", "debug")
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("latchkey-local starts");
        let server = Self { child, base: format!("http://127.0.0.1:{port}"), log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "latchkey-local did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response =
            latchkey_tests::http_client().post(format!("{}{path}", self.base)).json(&body).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn accounts_and_signing_keys_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = LocalServer::start(&data);
    let (status, _) = first.post("/v1/auth/register", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(status, 201);
    let jwks: Value =
        reqwest::get(format!("{}/.well-known/jwks.json", first.base)).await.unwrap().json().await.unwrap();
    drop(first);

    let second = LocalServer::start(&data);
    let (status, body) = second.post("/v1/auth/login", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(status, 200, "{body}");
    let again: Value =
        reqwest::get(format!("{}/.well-known/jwks.json", second.base)).await.unwrap().json().await.unwrap();
    assert_eq!(jwks, again);
}

#[tokio::test]
async fn a_second_server_on_the_same_data_directory_says_it_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _running = LocalServer::start(&data);
    let second = Command::new(env!("CARGO_BIN_EXE_latchkey-local"))
        .args(["--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");
}

#[tokio::test]
async fn logs_show_each_request_but_never_a_password_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(&dir.path().join("data"));
    let (_, registered) =
        server.post("/v1/auth/register", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    let (_, refreshed) = server.post("/v1/auth/refresh", json!({"refresh_token": registered["refresh_token"]})).await;
    server.post("/v1/auth/refresh", json!({"refresh_token": registered["refresh_token"]})).await; // reuse: logged as a warning
    server.post("/v1/auth/login", json!({"email": "ada@example.com", "password": "a wrong password"})).await;
    std::thread::sleep(Duration::from_millis(100));

    let output = server.output();
    assert_eq!(output.matches("route=\"/v1/auth/refresh\"").count(), 2, "one line per request:\n{output}");
    assert!(output.contains("status=401"), "{output}");
    assert!(output.contains("reused"), "the reuse is logged:\n{output}");
    let secrets = [
        PASSWORD,
        "a wrong password",
        registered["access_token"].as_str().unwrap(),
        registered["refresh_token"].as_str().unwrap(),
        refreshed["access_token"].as_str().unwrap(),
        refreshed["refresh_token"].as_str().unwrap(),
    ];
    for secret in secrets {
        assert!(!output.contains(secret), "a secret reached the log:\n{output}");
    }
}

/// The local server's mail lands in `<data dir>/outbox`; the log names recipient and subject,
/// never the code or link inside.
#[tokio::test]
async fn mail_goes_to_the_outbox_and_its_secrets_stay_out_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = LocalServer::start_with(&data, &[("LATCHKEY_REQUIRE_EMAIL_CODES", "true")]);
    server.post("/v1/auth/register", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    let (status, _) = server.post("/v1/auth/email-code", json!({"email": "ada@example.com"})).await;
    assert_eq!(status, 202);
    let (status, _) = server.post("/v1/auth/password/forgot", json!({"email": "ada@example.com"})).await;
    assert_eq!(status, 202);
    std::thread::sleep(Duration::from_millis(100));

    let mut messages: Vec<String> = std::fs::read_dir(data.join("outbox"))
        .expect("an outbox under the data directory")
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    assert_eq!(messages.len(), 3, "verification, code and reset");
    messages.sort_by_key(|message| message.contains("sign-in code"));
    let code_mail = messages.last().unwrap();
    let code = regex_lite_digits(code_mail).expect("a six-digit code in the mail");
    let reset_mail = messages.iter().find(|m| m.contains("reset-password#token=")).expect("a reset mail");
    let token =
        reset_mail.split("#token=").nth(1).unwrap().split(|c: char| c.is_whitespace() || c == '"').next().unwrap();

    let output = server.output();
    assert!(output.contains("ada@example.com") && output.contains("sign-in code"), "recipient and subject:\n{output}");
    assert!(!output.contains(&code), "the email code reached the log:\n{output}");
    assert!(!output.contains(token), "the reset token reached the log:\n{output}");
}

/// The code of a sign-in mail: the text part puts it alone on its line.
fn regex_lite_digits(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|line| line.len() == 6 && line.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
}

fn admin_command(data_dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey-local"))
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("LATCHKEY_ARGON2_MEMORY_KIB", "256")
        .env("LATCHKEY_ARGON2_ITERATIONS", "1")
        .env_remove("LATCHKEY_ADMIN_PASSWORD")
        .env_remove("LATCHKEY_TABLE")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("latchkey-local admin runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn admin_create_and_grant_make_admins_and_refuse_a_store_the_server_holds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let created = admin_command(&data, &["create", "--email", "root@example.com"], &[], "a long admin password\n");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert!(String::from_utf8_lossy(&created.stdout).contains("root@example.com"));
    let weak =
        admin_command(&data, &["create", "--email", "weak@example.com"], &[("LATCHKEY_ADMIN_PASSWORD", "short")], "");
    assert!(!weak.status.success() && String::from_utf8_lossy(&weak.stderr).contains("at least 8"));

    let server = LocalServer::start(&data);
    let in_use = admin_command(&data, &["grant", "--email", "root@example.com"], &[], "");
    assert!(!in_use.status.success());
    assert!(
        String::from_utf8_lossy(&in_use.stderr).contains("in use by another process"),
        "{}",
        String::from_utf8_lossy(&in_use.stderr)
    );
    let (status, body) =
        server.post("/v1/auth/login", json!({"email": "root@example.com", "password": "a long admin password"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "ADMIN");
    server.post("/v1/auth/register", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    drop(server);

    let granted = admin_command(&data, &["grant", "--email", "ada@example.com"], &[], "");
    assert!(granted.status.success(), "{}", String::from_utf8_lossy(&granted.stderr));
    let unknown = admin_command(&data, &["grant", "--email", "nobody@example.com"], &[], "");
    assert!(!unknown.status.success() && String::from_utf8_lossy(&unknown.stderr).contains("no such user"));
    let server = LocalServer::start(&data);
    let (_, body) = server.post("/v1/auth/login", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(body["user"]["role"], "ADMIN");
}

#[tokio::test]
async fn admin_create_works_on_a_deployed_stacks_dynamodb_table() {
    let table = latchkey_tests::TestTable::create().await;
    let endpoint = latchkey_tests::aws_endpoint();
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("LATCHKEY_ADMIN_PASSWORD", "a long admin password"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let created =
        admin_command(dir.path(), &["create", "--email", "root@example.com", "--table", &table.name], &env, "");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let users = latchkey::repo::UserRepo::new(std::sync::Arc::new(table.store()));
    let identifier =
        latchkey::domain::LoginIdentifier::Email(latchkey::domain::Email::parse("root@example.com").unwrap());
    let stored = users.find_by_login(&identifier).await.unwrap().expect("the admin is in the table");
    assert_eq!(stored.user.role, latchkey::domain::Role::Admin);
    assert_eq!(users.admin_count().await.unwrap(), 1);
    assert!(!dir.path().join("latchkey.redb").exists(), "the local store was not touched");
}

/// The data directory holds password hashes, sealed secrets, the signing key and mail with
/// reset links: nobody but the server's own user may read any of it.
#[tokio::test]
async fn the_data_directory_and_every_file_in_it_are_private_to_the_servers_user() {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A directory left world-readable by an older version is narrowed too.
    std::fs::DirBuilder::new().mode(0o755).create(&data).unwrap();
    let server = LocalServer::start(&data);
    let (status, _) = server.post("/v1/auth/register", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(status, 201);
    let (status, _) = server.post("/v1/auth/password/forgot", json!({"email": "ada@example.com"})).await;
    assert_eq!(status, 202);
    let mut seen = Vec::new();
    let mut pending = vec![data.clone()];
    while let Some(path) = pending.pop() {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        if path.is_dir() {
            assert_eq!(mode, 0o700, "{}", path.display());
            pending.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
        } else {
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    for expected in ["latchkey.redb", "signing-key.json", "outbox"] {
        assert!(seen.iter().any(|name| name == expected), "{expected} in {seen:?}");
    }
    assert!(seen.iter().filter(|name| name.ends_with(".eml")).count() >= 2, "the mails were checked: {seen:?}");
}
