//! Bad input gets a clean, documented error naming the problem: never a panic or a 500.

use latchkey_tests::{Backend, PASSWORD, TestServer};
use serde_json::json;

async fn server() -> TestServer {
    TestServer::start(Backend::Embedded).await
}

#[tokio::test]
async fn malformed_json_is_400() {
    let server = server().await;
    for body in ["{", "not json", "{\"email\": }", "", "[1,2]", "null"] {
        let message = server.post_raw("/v1/auth/register", body).await.error(400, "INVALID_ARGUMENT");
        assert!(!message.is_empty(), "body {body:?}");
    }
}

#[tokio::test]
async fn missing_fields_are_400_naming_the_field() {
    let server = server().await;
    let message =
        server.post("/v1/auth/register", json!({"email": "ada@example.com"})).await.error(400, "INVALID_ARGUMENT");
    assert!(message.contains("password"), "{message}");
    let message = server.post("/v1/auth/refresh", json!({})).await.error(400, "INVALID_ARGUMENT");
    assert!(message.contains("refresh_token"), "{message}");
    let message = server.post("/v1/auth/introspect", json!({})).await.error(400, "INVALID_ARGUMENT");
    assert!(message.contains("token"), "{message}");
}

#[tokio::test]
async fn wrong_types_are_400_naming_the_field() {
    let server = server().await;
    for (body, field) in [
        (json!({"email": 42, "password": PASSWORD}), "email"),
        (json!({"email": "ada@example.com", "password": ["a"]}), "password"),
        (json!({"email": "ada@example.com", "password": PASSWORD, "username": {"a": 1}}), "username"),
        (json!({"email": "ada@example.com", "password": PASSWORD, "phone": true}), "phone"),
    ] {
        let reply = server.post("/v1/auth/register", body).await;
        reply.error(400, "INVALID_ARGUMENT");
        assert_eq!(reply.body["details"][0]["field"], field, "{}", reply.body);
    }
}

#[tokio::test]
async fn invalid_values_are_400_naming_the_field() {
    let server = server().await;
    let long_email = format!("{}@example.com", "a".repeat(250));
    for (body, field) in [
        (json!({"email": "not-an-email", "password": PASSWORD}), "email"),
        (json!({"email": long_email, "password": PASSWORD}), "email"),
        (json!({"email": "ada@example.com", "password": "short"}), "password"),
        (json!({"email": "ada@example.com", "password": "x".repeat(129)}), "password"),
        (json!({"email": "ada@example.com", "password": PASSWORD, "username": "a b"}), "username"),
        (json!({"email": "ada@example.com", "password": PASSWORD, "username": "u".repeat(33)}), "username"),
        (json!({"email": "ada@example.com", "password": PASSWORD, "phone": "555-0100"}), "phone"),
    ] {
        let reply = server.post("/v1/auth/register", body.clone()).await;
        reply.error(400, "INVALID_ARGUMENT");
        assert_eq!(reply.body["details"][0]["field"], field, "{body}: {}", reply.body);
    }
}

#[tokio::test]
async fn passwords_up_to_128_characters_are_accepted_and_never_truncated() {
    let server = server().await;
    let long = "ü".repeat(128);
    let reply = server.post("/v1/auth/register", json!({"email": "ada@example.com", "password": long})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let truncated = &long[..long.len() - 2];
    let wrong = server.post("/v1/auth/login", json!({"email": "ada@example.com", "password": truncated})).await;
    wrong.error(401, "UNAUTHENTICATED");
    let right = server.post("/v1/auth/login", json!({"email": "ada@example.com", "password": long})).await;
    assert_eq!(right.status, 200);
}

#[tokio::test]
async fn login_needs_exactly_one_identifier() {
    let server = server().await;
    for body in
        [json!({"password": PASSWORD}), json!({"email": "ada@example.com", "username": "ada", "password": PASSWORD})]
    {
        let message = server.post("/v1/auth/login", body).await.error(400, "INVALID_ARGUMENT");
        assert!(message.contains("exactly one of email, username or phone"), "{message}");
    }
    server
        .post("/v1/auth/login", json!({"email": "ada@example.com", "password": ""}))
        .await
        .error(400, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let server = server().await;
    let padding = "x".repeat(70 * 1024);
    let reply = server
        .post("/v1/auth/register", json!({"email": "ada@example.com", "password": PASSWORD, "pad": padding}))
        .await;
    reply.error(413, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn missing_or_malformed_authorization_is_401_with_a_bearer_challenge() {
    let server = server().await;
    let missing = server.get("/v1/users/me", None).await;
    assert!(missing.error(401, "UNAUTHENTICATED").contains("missing"));
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    let invalid = server.get("/v1/users/me", Some("not.a.jwt")).await;
    invalid.error(401, "UNAUTHENTICATED");
    assert_eq!(invalid.headers["www-authenticate"], "Bearer error=\"invalid_token\"");
    // Routes that take no bearer token do not challenge for one.
    let login = server.post("/v1/auth/login", json!({"email": "nobody@example.com", "password": "whatever1"})).await;
    login.error(401, "UNAUTHENTICATED");
    assert!(login.headers.get("www-authenticate").is_none());
    for header in ["Basic YWRhOnB3", "Bearer", "Bearer ", "token-without-scheme", "Bearer not.a.jwt"] {
        let reply = server.client.get(server.url("/v1/users/me")).header("authorization", header).send().await.unwrap();
        latchkey_tests::Reply::of("GET", reply).await.error(401, "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let server = server().await;
    server.get("/v1/nope", None).await.error(404, "NOT_FOUND");
    let reply = server.client.delete(server.url("/v1/auth/login")).send().await.unwrap();
    latchkey_tests::Reply::of("DELETE", reply).await.error(405, "UNIMPLEMENTED");
}

#[tokio::test]
async fn a_storage_outage_is_503_without_internal_detail() {
    // A DynamoDB store whose table does not exist: every call fails inside the SDK.
    let table = latchkey_tests::TestTable::create().await;
    let store = latchkey::store::dynamodb::DynamoStore::new(table.client.clone(), "no-such-table");
    let server = TestServer::with_store(
        std::sync::Arc::new(store),
        latchkey_tests::StoreGuard::Table(table),
        latchkey_tests::test_config(),
    )
    .await;
    let reply = server.post("/v1/auth/register", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    let message = reply.error(503, "UNAVAILABLE");
    assert!(!message.contains("ResourceNotFound") && !message.contains("no-such-table"), "{message}");
    let reply = server.post("/v1/auth/login", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    reply.error(503, "UNAVAILABLE");
}

/// Every route of the second-factor and password work refuses malformed fields by name, and
/// every signed-in one refuses a missing token, before doing anything.
#[tokio::test]
async fn second_factor_and_password_routes_name_the_bad_field() {
    let server = server().await;
    let tokens = server.register("ada@example.com", None).await;
    let signed_in = [
        ("POST", "/v1/auth/totp/enable", json!({}), "password"),
        ("POST", "/v1/auth/totp/enable", json!({"password": ""}), "password"),
        ("POST", "/v1/auth/totp/verify", json!({"totp_code": "12345"}), "totp_code"),
        ("POST", "/v1/auth/totp/verify", json!({"totp_code": "abcdef"}), "totp_code"),
        ("POST", "/v1/auth/totp/verify", json!({"totp_code": 123456}), "totp_code"),
        ("POST", "/v1/auth/totp/disable", json!({"password": PASSWORD}), "totp_code"),
        ("POST", "/v1/auth/password/change", json!({"current_password": PASSWORD}), "new_password"),
        (
            "POST",
            "/v1/auth/password/change",
            json!({"current_password": "", "new_password": "long enough"}),
            "current_password",
        ),
        ("PUT", "/v1/users/me/mfa/email", json!({"enabled": "yes", "password": PASSWORD}), "enabled"),
        ("PUT", "/v1/users/me/mfa/email", json!({"enabled": true}), "password"),
    ];
    for (method, path, body, field) in signed_in {
        let request = server.client.request(method.parse().unwrap(), server.url(path));
        let anonymous = request.try_clone().unwrap().json(&body).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{method} {path} without a token");
        let response = request.bearer_auth(&tokens.access).json(&body).send().await.unwrap();
        let reply = latchkey_tests::Reply::of(method, response).await;
        reply.error(400, "INVALID_ARGUMENT");
        assert_eq!(reply.body["details"][0]["field"], field, "{method} {path} {body}: {}", reply.body);
    }
    let anonymous = [
        ("/v1/auth/password/forgot", json!({"email": "nope"}), "email"),
        ("/v1/auth/password/forgot", json!({}), "email"),
        ("/v1/auth/password/reset", json!({"token": "", "new_password": "long enough"}), "token"),
        ("/v1/auth/password/reset", json!({"token": "t", "new_password": "short"}), "new_password"),
        ("/v1/auth/email/verify", json!({"token": " "}), "token"),
        ("/v1/auth/email-code", json!({"email": "nope"}), "email"),
        ("/v1/auth/login", json!({"email": "ada@example.com", "password": PASSWORD, "totp_code": "1"}), "totp_code"),
        (
            "/v1/auth/login",
            json!({"email": "ada@example.com", "password": PASSWORD, "email_code": "12 34 5x"}),
            "email_code",
        ),
    ];
    for (path, body, field) in anonymous {
        let reply = server.post(path, body.clone()).await;
        reply.error(400, "INVALID_ARGUMENT");
        assert_eq!(reply.body["details"][0]["field"], field, "{path} {body}: {}", reply.body);
    }
    for body in [json!({}), json!({"email": "ada@example.com", "username": "ada"})] {
        server.post("/v1/auth/email-code", body).await.error(400, "INVALID_ARGUMENT");
    }
    let two_factors =
        json!({"email": "ada@example.com", "password": PASSWORD, "totp_code": "123456", "email_code": "123456"});
    server.post("/v1/auth/login", two_factors).await.error(400, "INVALID_ARGUMENT");
}

/// A page on another origin can send `text/plain` without a preflight: JSON routes refuse
/// every body that is not declared as JSON.
#[tokio::test]
async fn a_body_not_declared_as_json_is_415_and_changes_nothing() {
    let server = server().await;
    let body = json!({"email": "ada@example.com", "password": PASSWORD}).to_string();
    for content_type in
        [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data"), None]
    {
        for path in ["/v1/auth/register", "/v1/auth/login", "/v1/auth/password/forgot"] {
            let mut request = server.client.post(server.url(path)).body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let reply = latchkey_tests::Reply::of("POST", request.send().await.unwrap()).await;
            let message = reply.error(415, "INVALID_ARGUMENT");
            assert!(message.contains("application/json"), "{path} {content_type:?}: {message}");
        }
    }
    // Nothing was registered: the address is still free.
    assert_eq!(
        server.post("/v1/auth/register", json!({"email": "ada@example.com", "password": PASSWORD})).await.status,
        201
    );
    let declared = server
        .client
        .post(server.url("/v1/auth/login"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 200);
}

#[tokio::test]
async fn a_body_must_be_exactly_one_json_object() {
    let server = server().await;
    let register = json!({"email": "ada@example.com", "password": PASSWORD}).to_string();
    for body in [format!("{register} xx"), format!("{register}{register}"), format!("[{register}]"), "null".into()] {
        let message = server.post_raw("/v1/auth/register", body.clone()).await.error(400, "INVALID_ARGUMENT");
        assert!(!message.contains("Request") && !message.contains("struct"), "{body}: {message}");
    }
    server.register("ada@example.com", None).await;
    let login = json!({"email": "ada@example.com", "password": PASSWORD}).to_string();
    server.post_raw("/v1/auth/login", format!("{login}!!!")).await.error(400, "INVALID_ARGUMENT");
    // A wrong type inside a sign-in body names its field.
    let reply =
        server.post("/v1/auth/login", json!({"email": "ada@example.com", "password": PASSWORD, "totp_code": 1})).await;
    reply.error(400, "INVALID_ARGUMENT");
    assert_eq!(reply.body["details"][0]["field"], "totp_code", "{}", reply.body);
}

#[tokio::test]
async fn path_and_query_parameters_that_do_not_parse_are_json_errors_naming_them() {
    let server = server().await;
    let tokens = server.register("ada@example.com", None).await;
    for (method, path, field) in [
        ("GET", "/v1/users/%FF", "id"),
        ("PATCH", "/v1/users/%FF", "id"),
        ("DELETE", "/v1/users/%FF", "id"),
        ("GET", "/v1/users/%FF/avatar", "id"),
        ("PUT", "/v1/users/me/friends/%C3%28", "username"),
        ("DELETE", "/v1/users/me/friends/%FF", "username"),
        ("GET", "/v1/conversations/%FF", "id"),
        ("POST", "/v1/auth/oauth/%FF", "provider"),
        ("GET", "/v1/auth/oauth/%FF/authorize", "provider"),
        ("DELETE", "/v1/users/me/identities/%FF", "provider"),
    ] {
        let request = server.client.request(method.parse().unwrap(), server.url(path)).bearer_auth(&tokens.access);
        let reply = latchkey_tests::Reply::of(method, request.json(&json!({})).send().await.unwrap()).await;
        reply.error(400, "INVALID_ARGUMENT");
        assert_eq!(reply.body["details"][0]["field"], field, "{method} {path}: {}", reply.body);
    }
    for (query, field) in [("size=lots", "size"), ("page=%FF", "page")] {
        let reply = server.get(&format!("/v1/users?{query}"), Some(&tokens.access)).await;
        reply.error(400, "INVALID_ARGUMENT");
        assert_eq!(reply.body["details"][0]["field"], field, "{query}: {}", reply.body);
    }
    let reply = server.get("/v1/conversations?limit=ten", Some(&tokens.access)).await;
    reply.error(400, "INVALID_ARGUMENT");
    assert_eq!(reply.body["details"][0]["field"], "limit", "{}", reply.body);
}

#[tokio::test]
async fn an_email_address_with_characters_mail_parsers_split_on_is_refused() {
    let server = server().await;
    for email in ["victim,attacker@example.com", "victim<attacker@example.com", "a>b@example.com", "\"q\"@example.com"]
    {
        let reply = server.post("/v1/auth/register", json!({"email": email, "password": PASSWORD})).await;
        reply.error(400, "INVALID_ARGUMENT");
        assert_eq!(reply.body["details"][0]["field"], "email", "{email}: {}", reply.body);
    }
    let fine =
        server.post("/v1/auth/register", json!({"email": "o'brien+tag@example.com", "password": PASSWORD})).await;
    assert_eq!(fine.status, 201, "{}", fine.body);
}

mod slow_clients {
    use std::time::{Duration, Instant};

    use latchkey::http::server::ServerLimits;
    use latchkey_tests::TestServer;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const LIMITS: ServerLimits = ServerLimits {
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(3),
        max_connections: 2,
        max_connections_per_ip: 2,
        shutdown_grace: Duration::from_secs(1),
    };

    async fn connect(server: &TestServer) -> TcpStream {
        TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap()
    }

    /// Everything the server sends until it closes the connection (a test that waits 20 s
    /// for that has failed).
    async fn read_to_close(stream: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
            .await
            .expect("the server closed the connection")
            .ok();
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn headers_that_never_finish_lose_their_connection() {
        let server = TestServer::start_with_limits(LIMITS).await;
        let mut stream = connect(&server).await;
        stream.write_all(b"POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.unwrap();
        let answer = read_to_close(&mut stream).await;
        assert!(!answer.contains("200 OK"), "{answer}");
    }

    #[tokio::test]
    async fn a_body_shorter_than_its_length_is_408_and_the_connection_closes() {
        let server = TestServer::start_with_limits(LIMITS).await;
        let mut stream = connect(&server).await;
        let head = "POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(br#"{"email": "#).await.unwrap();
        let answer = read_to_close(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("DEADLINE_EXCEEDED"), "{answer}");
    }

    #[tokio::test]
    async fn a_body_trickled_to_stay_under_the_pause_limit_still_ends_at_the_request_deadline() {
        let server = TestServer::start_with_limits(LIMITS).await;
        let mut stream = connect(&server).await;
        let head = "POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        // One byte every half second: never a pause of a second, never a whole body.
        let trickle = tokio::spawn(async move {
            for _ in 0..40 {
                if writer.write_all(b" ").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut answer)).await.expect("closed").ok();
        trickle.abort();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }

    #[tokio::test]
    async fn one_address_holds_at_most_its_share_of_the_connections() {
        let limits = ServerLimits { max_connections: 8, max_connections_per_ip: 1, ..LIMITS };
        let server = TestServer::start_with_limits(limits).await;
        let mut held = connect(&server).await;
        held.write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A second connection from the same address is closed without an answer.
        let mut second = connect(&server).await;
        let _ = second.write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert_eq!(read_to_close(&mut second).await, "");
        drop(held);
    }

    #[tokio::test]
    async fn past_the_connection_limit_clients_wait_until_a_slot_frees() {
        let server = TestServer::start_with_limits(LIMITS).await;
        // Two connections that hold their slots until the header timeout drops them.
        let (mut first, mut second) = (connect(&server).await, connect(&server).await);
        for stream in [&mut first, &mut second] {
            stream.write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let third = tokio::spawn({
            let url = server.url("/.well-known/jwks.json");
            let client = server.client.clone();
            async move {
                let status = client.get(url).send().await.unwrap().status();
                (status, Instant::now())
            }
        });
        let closed = |mut stream: TcpStream| async move {
            read_to_close(&mut stream).await;
            Instant::now()
        };
        let (first, second) = tokio::join!(closed(first), closed(second));
        let freed = first.min(second);
        let (status, answered) = third.await.unwrap();
        assert_eq!(status, 200);
        assert!(answered >= freed, "the third client was served only once a slot was free");
    }
}

/// The routes this change added refuse malformed fields by name, before doing anything.
#[tokio::test]
async fn the_unlock_and_email_confirmation_routes_name_the_bad_field() {
    let server = server().await;
    let tokens = server.register("ada@example.com", None).await;
    for (body, field) in [
        (json!({"email": "not an address"}), Some("email")),
        (json!({"phone": "12"}), Some("phone")),
        (json!({}), None),
        (json!({"email": "ada@example.com", "username": "ada"}), None),
    ] {
        let reply = server.post("/v1/auth/unlock", body.clone()).await;
        reply.error(400, "INVALID_ARGUMENT");
        assert_eq!(reply.body["details"][0]["field"].as_str(), field, "{body}: {}", reply.body);
    }
    let login = json!({"email": "ada@example.com", "password": PASSWORD, "unlock_token": " "});
    let reply = server.post("/v1/auth/login", login).await;
    reply.error(400, "INVALID_ARGUMENT");
    assert_eq!(reply.body["details"][0]["field"], "unlock_token", "{}", reply.body);
    for (body, field) in [(json!({}), "token"), (json!({"token": " "}), "token"), (json!({"token": 7}), "token")] {
        let reply = server.post_authorized("/v1/users/me/email/confirm", &tokens.access, body.clone()).await;
        reply.error(400, "INVALID_ARGUMENT");
        assert_eq!(reply.body["details"][0]["field"], field, "{body}: {}", reply.body);
    }
    server.post("/v1/users/me/email/confirm", json!({"token": "x"})).await.error(401, "UNAUTHENTICATED");
    let wrong = json!({"email": "new@example.com", "current_password": PASSWORD, "email_code": "12ab56"});
    let reply = server.patch_authorized("/v1/users/me", &tokens.access, wrong).await;
    assert_eq!(reply.body["details"][0]["field"], "email_code", "{}", reply.body);
}

/// The generated document carries the parsers' limits, so a client built from it sends only
/// what the server takes: what the parsers refuse is outside the schemas, and what the schemas
/// allow at their edges is taken.
#[tokio::test]
async fn the_documented_schemas_refuse_what_the_parsers_refuse_and_allow_what_they_take() {
    use latchkey_tests::{query_parameter_allows, schema_allows};

    let refused = [
        ("RegisterRequest", json!({"email": "", "password": PASSWORD})),
        ("RegisterRequest", json!({"email": "ada@localhost", "password": PASSWORD})),
        ("RegisterRequest", json!({"email": format!("{}@example.com", "a".repeat(65)), "password": PASSWORD})),
        ("RegisterRequest", json!({"email": "ada@example.com", "password": "short"})),
        ("RegisterRequest", json!({"email": "ada@example.com", "password": PASSWORD, "username": "a"})),
        ("RegisterRequest", json!({"email": "ada@example.com", "password": PASSWORD, "phone": "555"})),
        ("LoginRequest", json!({"email": "ada@example.com", "username": "ada", "password": PASSWORD})),
        ("LoginRequest", json!({"email": null, "password": PASSWORD})),
        (
            "LoginRequest",
            json!({"username": "ada", "password": PASSWORD, "totp_code": "123456", "email_code": "654321"}),
        ),
        ("LoginRequest", json!({"username": "ada", "password": PASSWORD, "totp_code": "12345"})),
        ("LoginRequest", json!({"username": "ada", "password": ""})),
        ("ProviderSignInRequest", json!({"access_token": "t", "nonce": "n"})),
        ("UploadUrlRequest", json!({"filename": "a.png", "content_type": "image/bmp", "size": 10})),
        ("UploadUrlRequest", json!({"filename": "a.png", "content_type": "image/png", "size": 0})),
        ("AdminChangeRequest", json!({"status": "WITHDRAWN"})),
        ("UpdateProfileRequest", json!({"extra": {"": 1}})),
        ("UpdateProfileRequest", json!({"extra": {"deep": [{"n": 1e127}]}})),
        ("UpdateProfileRequest", json!({"extra": [1, 2]})),
    ];
    for (schema, body) in &refused {
        assert!(!schema_allows(schema, body), "{schema} allows {body}, which the server refuses");
    }
    let server = server().await;
    for (_, body) in refused.iter().filter(|(schema, _)| *schema == "RegisterRequest") {
        server.post("/v1/auth/register", body.clone()).await.error(400, "INVALID_ARGUMENT");
    }

    let tokens = server.register("ada@example.com", Some("ada")).await;
    for (_, body) in refused.iter().filter(|(schema, _)| *schema == "UpdateProfileRequest") {
        server.patch_authorized("/v1/users/me", &tokens.access, body.clone()).await.error(400, "INVALID_ARGUMENT");
    }
    let extra = json!({"extra": {"theme": "dark", "scores": [0, 1.5e-3, -7], "nested": {"ok": true}}});
    assert!(schema_allows("UpdateProfileRequest", &extra));
    let reply = server.patch_authorized("/v1/users/me", &tokens.access, extra).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // JSON Schema counts 1060.0 as an integer: the server takes it as one.
    let upload = json!({"filename": "a.png", "content_type": "image/png", "size": 1060.0});
    assert!(schema_allows("UploadUrlRequest", &upload));
    let reply = server.post_authorized("/v1/avatar/upload-url", &tokens.access, upload).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The last page the document allows is answered (empty); the next is outside it.
    let last = 184_467_440_737_095_516_u64;
    assert!(query_parameter_allows("/v1/users", "page", &json!(last)));
    assert!(!query_parameter_allows("/v1/users", "page", &json!(last + 1)));
    let page = server.get(&format!("/v1/users?page={last}"), Some(&tokens.access)).await;
    assert_eq!((page.status, page.body["users"].as_array().map(Vec::len)), (200, Some(0)), "{}", page.body);
    server.get(&format!("/v1/users?page={}", last + 1), Some(&tokens.access)).await.error(400, "INVALID_ARGUMENT");
}
