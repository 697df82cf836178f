//! What is deployed matches what is served: the SAM template, the OpenAPI document and the
//! sample events against the router's route table, and key loading from Secrets Manager.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use latchkey::crypto::keys::{KeyMaterial, SigningKeys};
use latchkey::http::Function;
use latchkey::kernel::Kernel;
use latchkey_tests::{Backend, fresh_store, test_config};
use serde_norway::Value as Yaml;
use tower::ServiceExt;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

fn read_yaml(file: &str) -> Yaml {
    let text = std::fs::read_to_string(repo_root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{file} is not YAML: {e}"))
}

/// (function, METHOD, path) for every route the handlers serve.
fn served_routes() -> BTreeSet<(String, String, String)> {
    latchkey::functions::table()
        .into_iter()
        .map(|(function, method, path)| (function.name().to_owned(), method.to_string(), path.to_owned()))
        .collect()
}

fn text(value: &Yaml, key: &str) -> String {
    value.get(key).and_then(Yaml::as_str).unwrap_or_else(|| panic!("missing {key} in {value:?}")).to_owned()
}

#[test]
fn template_routes_are_exactly_the_routes_the_handlers_serve() {
    let template = read_yaml("template.yaml");
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mut deployed = BTreeSet::new();
    for resource in resources.values().filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function")) {
        let binary = text(&resource["Metadata"]["BuildProperties"], "Binary");
        assert!(repo_root().join("functions").join(&binary).join("Cargo.toml").exists(), "no crate functions/{binary}");
        for event in resource["Properties"]["Events"].as_mapping().into_iter().flat_map(|events| events.values()) {
            if event["Type"].as_str() == Some("HttpApi") {
                let properties = &event["Properties"];
                deployed.insert((binary.clone(), text(properties, "Method").to_uppercase(), text(properties, "Path")));
            }
        }
    }
    assert_eq!(deployed, served_routes());
}

#[test]
fn openapi_documents_exactly_the_routes_the_handlers_serve() {
    let spec = read_yaml("openapi.yaml");
    assert!(text(&spec, "openapi").starts_with("3.1"), "OpenAPI 3.1");
    let mut documented = BTreeSet::new();
    for (path, operations) in spec["paths"].as_mapping().expect("paths") {
        for (method, operation) in operations.as_mapping().expect("operations") {
            let method = method.as_str().unwrap().to_uppercase();
            if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                let function = text(operation, "x-latchkey-function");
                documented.insert((function, method, path.as_str().unwrap().to_owned()));
            }
        }
    }
    assert_eq!(documented, served_routes());
}

/// `openapi.yaml` is the document the code generates, so the contract clients read is the one
/// the handlers, their typed bodies and the parsers' limits define.
#[test]
fn the_checked_in_openapi_document_is_the_one_the_code_generates() {
    let checked_in = std::fs::read_to_string(repo_root().join("openapi.yaml")).expect("openapi.yaml");
    assert!(
        checked_in == latchkey::openapi::yaml(),
        "openapi.yaml differs from the generated document; write it with \
         `cargo run -p latchkey-local -- openapi > openapi.yaml`"
    );
}

/// The sample events, in an order that gives each a known status against one fresh store.
/// Tokens come from the last response that had both; `logout-all` uses the registration's.
/// `REPLACE_WITH_USER_ID` becomes the id of the signed-in user (`user.id` of the last
/// register, login or refresh response).
const EVENT_SCRIPT: [(&str, &str, u16); 47] = [
    ("register", "register", 201),
    // With the registration's token, before login: changing the password ends every *other*
    // session, and the registration's session must live until `logout-all`. It keeps the
    // password, so login still works.
    ("password", "change", 200),
    ("login", "login", 200),
    ("users", "me", 200),
    ("users", "status", 200),
    // Phone and `extra` only: the email and the user name stay, so no password is needed and
    // the later events that name the account still find it.
    ("users", "update-me", 200),
    // "bogus" names no link: NOT_FOUND.
    ("users", "confirm-email", 404),
    // `^a` matches "ada" (a non-admin sees public profiles).
    ("users", "list", 200),
    // The caller's own record.
    ("users", "get-user", 200),
    // The caller is no admin: PERMISSION_DENIED before the (unknown) id is looked up.
    ("users", "administer", 403),
    ("users", "delete-user", 403),
    ("friends", "list", 200),
    // "grace" has no account: NOT_FOUND, both ways.
    ("friends", "add", 404),
    ("friends", "remove", 404),
    // The avatar function stores objects in a local directory here, not in S3.
    ("avatar", "upload-url", 200),
    // "bogus" names no upload: NOT_FOUND.
    ("avatar", "confirm", 404),
    // A real PNG, base64-encoded as API Gateway hands binary bodies over (lambda_http decodes it).
    ("avatar", "upload", 200),
    // The caller's own avatar, just uploaded.
    ("avatar", "view", 200),
    ("avatar", "delete", 200),
    // No provider is configured here: the provider routes are 404, and the flow's records
    // are checked before any provider would be called.
    ("oauth", "sign-in", 404),
    ("oauth", "authorize", 404),
    ("oauth", "callback", 404),
    ("oauth", "exchange", 400),
    ("oauth", "identities", 200),
    ("oauth", "link", 404),
    ("oauth", "unlink", 404),
    ("chat", "ticket", 201),
    // "nobody_here" has no account; the conversation id names no conversation.
    ("chat", "start", 404),
    ("chat", "list", 200),
    ("chat", "messages", 404),
    // Before enable, so no setup is pending: FAILED_PRECONDITION whatever the code. (After
    // enable, a wrong code is refused only almost surely: any code may be a current one.)
    ("totp", "verify", 400),
    ("totp", "enable", 200),
    // The setup was never verified, so TOTP is not enabled: FAILED_PRECONDITION.
    ("totp", "disable", 400),
    ("email", "mfa-email", 200),
    ("email", "email-code", 202),
    // The answer is the same whether or not "ada" is locked out (or exists).
    ("email", "unlock", 202),
    // "bogus" names no link: NOT_FOUND.
    ("email", "verify", 404),
    ("email", "verify-resend", 202),
    ("password", "forgot", 202),
    ("password", "reset", 404),
    ("tokens", "jwks", 200),
    ("tokens", "introspect", 200),
    ("refresh", "refresh", 200),
    ("logout", "logout", 200),
    ("logout", "logout-all", 200),
    // Signed in again (every login ended above), the account is withdrawn: its sessions end
    // and its login names are released, so nothing may follow.
    ("login", "login", 200),
    ("users", "delete-me", 200),
];

#[tokio::test]
async fn every_sample_event_replays_through_its_lambda_handler() {
    let (store, _guard) = fresh_store(Backend::Embedded).await;
    let (outbox, objects_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = test_config();
    let mailer = latchkey::mail::outbox::Outbox::new(outbox.path(), latchkey::kernel::sender(&config)).unwrap();
    let keys = latchkey_tests::fresh_keys();
    // The avatar events need an object store; the local one stands in for the bucket.
    let mac = latchkey::crypto::sealing::KeyedMac::for_urls(&keys);
    let objects = latchkey::objects::local::LocalObjects::new(objects_dir.path(), "http://127.0.0.1:1", mac).unwrap();
    let kernel = Kernel::new(config, store, &keys, Arc::new(mailer), Some(Arc::new(objects))).unwrap();

    let on_disk: BTreeSet<(String, String)> = std::fs::read_dir(repo_root().join("events"))
        .expect("events/")
        .map(|dir| dir.unwrap().path())
        // WebSocket events, not HTTP API ones: tests/chat.rs replays them.
        .filter(|dir| !dir.ends_with("chat-ws"))
        .flat_map(|dir| {
            let function = dir.file_name().unwrap().to_string_lossy().into_owned();
            std::fs::read_dir(&dir).unwrap().map(move |file| {
                (function.clone(), file.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
            })
        })
        .collect();
    let scripted: BTreeSet<(String, String)> =
        EVENT_SCRIPT.iter().map(|(f, e, _)| (f.to_string(), e.to_string())).collect();
    assert_eq!(on_disk, scripted, "every event file is replayed, and only those");

    let (mut access, mut refresh, mut first_access) = (String::new(), String::new(), String::new());
    let mut user_id = String::new();
    let mut covered = BTreeSet::new();
    for (function_name, event, expected) in EVENT_SCRIPT {
        let function = *Function::ALL.iter().find(|f| f.name() == function_name).expect("a function");
        let raw = std::fs::read_to_string(repo_root().join(format!("events/{function_name}/{event}.json"))).unwrap();
        if event == "logout-all" {
            // The login's session was just logged out; end the registration's session instead.
            access = first_access.clone();
        }
        let raw = raw
            .replace("REPLACE_WITH_ACCESS_TOKEN", &access)
            .replace("REPLACE_WITH_REFRESH_TOKEN", &refresh)
            .replace("REPLACE_WITH_USER_ID", &user_id);
        let request =
            lambda_http::request::from_str(&raw).unwrap_or_else(|e| panic!("{event}: not an API Gateway event: {e}"));
        // The route is the event's `routeKey`, with `{param}` templates as in the route table;
        // the path must fit it, each parameter as `pathParameters` gives it.
        {
            let fields: serde_json::Value = serde_json::from_str(&raw).unwrap();
            let route_key = fields["routeKey"].as_str().unwrap_or_else(|| panic!("{event}: no routeKey"));
            assert_eq!(fields["requestContext"]["routeKey"], route_key, "{event}: requestContext.routeKey");
            let (method, template) =
                route_key.split_once(' ').unwrap_or_else(|| panic!("{event}: routeKey {route_key:?}"));
            assert_eq!(method, request.method().as_str(), "{event}: the method of routeKey");
            let path = request.uri().path();
            let (patterns, segments): (Vec<&str>, Vec<&str>) =
                (template.split('/').collect(), path.split('/').collect());
            assert_eq!(patterns.len(), segments.len(), "{event}: {path} does not fit {template}");
            for (pattern, segment) in patterns.iter().zip(&segments) {
                match pattern.strip_prefix('{').and_then(|name| name.strip_suffix('}')) {
                    Some(name) => {
                        assert_eq!(fields["pathParameters"][name], *segment, "{event}: pathParameters.{name}")
                    }
                    None => assert_eq!(pattern, segment, "{event}: {path} does not fit {template}"),
                }
            }
            covered.insert((function_name.to_owned(), method.to_owned(), template.to_owned()));
        }

        // The same router the function's main.rs hands to lambda_http::run.
        let response =
            latchkey::lambda::app(latchkey::functions::router(function, &kernel)).oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(status, expected, "{function_name}/{event}: {}", String::from_utf8_lossy(&body));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if let (Some(a), Some(r)) = (json["access_token"].as_str(), json["refresh_token"].as_str()) {
            (access, refresh) = (a.to_owned(), r.to_owned());
            if first_access.is_empty() {
                first_access = a.to_owned();
            }
            if let Some(id) = json["user"]["id"].as_str() {
                user_id = id.to_owned();
            }
        }
    }
    assert_eq!(covered, served_routes(), "one event per route");
}

#[tokio::test]
async fn signing_keys_load_from_the_secret_the_template_generates() {
    let client = aws_sdk_secretsmanager::Client::new(&latchkey_tests::aws_sdk_config());
    let name = format!("latchkey-test-{}", uuid::Uuid::new_v4());
    // The shape GenerateSecretString produces from the template's SecretStringTemplate.
    let secret = r#"{"kid": "k1", "seed": "q6Vh2Zc0bM4rT8yLx1NwP5sJ7eKdA3fG9uHiYoQzR2tC4vB6nM8lK0jX1wE3aS5d"}"#;
    client.create_secret().name(&name).secret_string(secret).send().await.expect("create secret in moto");

    let config = test_config();
    let json = latchkey::lambda::secret_string(&client, &name).await.expect("the secret reads");
    let material = KeyMaterial::from_json(&json).expect("keys load");
    let keys = SigningKeys::from_material(&material, &config.issuer, &config.audience).unwrap();
    assert_eq!(keys.jwks()["keys"][0]["kid"], "k1");
    let from_same_secret =
        SigningKeys::from_material(&KeyMaterial::from_json(secret).unwrap(), &config.issuer, &config.audience).unwrap();
    assert_eq!(keys.jwks(), from_same_secret.jwks(), "the key is a function of the secret alone");

    let missing = latchkey::lambda::secret_string(&client, "no-such-secret").await;
    let message = missing.expect_err("a missing secret fails").to_string();
    assert!(message.contains("no-such-secret"), "names the secret: {message}");
    client.delete_secret().secret_id(&name).force_delete_without_recovery(true).send().await.unwrap();
}

/// On Lambda the client is API Gateway's `requestContext.http.sourceIp`: failures from one
/// address lock that address, not another.
#[tokio::test]
async fn lockout_counts_the_source_ip_of_api_gateway_events() {
    let (store, _guard) = fresh_store(Backend::Embedded).await;
    let outbox = tempfile::tempdir().unwrap();
    let lockout = latchkey::config::LockoutPolicy { ip_max_failures_per_hour: 4, ..Default::default() };
    let config = latchkey::config::Config { lockout, ..test_config() };
    let mailer = latchkey::mail::outbox::Outbox::new(outbox.path(), latchkey::kernel::sender(&config)).unwrap();
    let kernel = Kernel::new(config, store, &latchkey_tests::fresh_keys(), Arc::new(mailer), None).unwrap();
    let template = std::fs::read_to_string(repo_root().join("events/login/login.json")).unwrap();
    let attempt = |n: usize, source_ip: &str| {
        let mut event: serde_json::Value = serde_json::from_str(&template).unwrap();
        event["body"] =
            serde_json::json!({"username": format!("nobody{n}"), "password": "wrong password"}).to_string().into();
        event["requestContext"]["http"]["sourceIp"] = source_ip.into();
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let app = latchkey::lambda::app(latchkey::functions::router(Function::Login, &kernel));
        async move { app.oneshot(request).await.unwrap().status().as_u16() }
    };
    for n in 0..4 {
        assert_eq!(attempt(n, "203.0.113.10").await, 401);
    }
    assert_eq!(attempt(4, "203.0.113.10").await, 429, "the failing address is locked");
    assert_eq!(attempt(5, "198.51.100.7").await, 401, "another address is not");
}

/// Each function's `main.rs` serves its own routes (the ones the template routes to it) and
/// names exactly the adapters the template grants it: SES where it may send mail, S3 where it
/// may touch avatars. A binary naming another's routes, or an adapter it is not granted,
/// would fail only on AWS.
#[test]
fn each_function_serves_its_own_routes_with_the_adapters_the_template_grants() {
    let template = read_yaml("template.yaml");
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mut checked = 0;
    for resource in resources.values().filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function")) {
        let binary = text(&resource["Metadata"]["BuildProperties"], "Binary");
        if binary == "chat-ws" {
            continue;
        }
        let main = std::fs::read_to_string(repo_root().join(format!("functions/{binary}/src/main.rs"))).unwrap();
        let routes = format!("latchkey::functions::{binary},");
        assert!(main.contains(&routes), "functions/{binary}/src/main.rs does not serve {routes}");
        let policies = serde_norway::to_string(&resource["Properties"]["Policies"]).unwrap();
        let grants_mail = policies.contains("ses:SendEmail");
        let grants_objects = policies.contains("s3:");
        assert_eq!(
            main.contains("mail: Some(lambda::ses)"),
            grants_mail,
            "{binary}: SES adapter against its SES grant"
        );
        assert_eq!(
            main.contains("objects: Some(lambda::s3)"),
            grants_objects,
            "{binary}: S3 adapter against its S3 grant"
        );
        checked += 1;
    }
    assert_eq!(checked, Function::ALL.len(), "every HTTP function was checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_lambda_path_a_route_the_template_lacks_gets_api_gateways_own_404() {
    let server = latchkey_tests::TestServer::start(Backend::Lambda).await;
    for (method, path) in [("GET", "/v1/auth/login"), ("POST", "/v1/nothing-here"), ("GET", "/v1/users/a/b/c")] {
        let reply = server.client.request(method.parse().unwrap(), server.url(path)).send().await.expect("an answer");
        assert_eq!(reply.status(), 404, "{method} {path}");
        let body: serde_json::Value = reply.json().await.expect("JSON");
        assert_eq!(body, serde_json::json!({"message": "Not Found"}), "{method} {path}: no function saw it");
    }
}
