//! Avatars end to end: on the embedded backend through the local object directory (whose
//! signed URLs the test server serves), on the AWS backend through S3 in moto, with real
//! uploads to the presigned URLs by a plain HTTP client.

use latchkey_tests::{Backend, Reply, TestServer, Tokens, on_every_backend, unique_email};
use serde_json::{Value, json};

on_every_backend!(
    an_uploaded_and_confirmed_avatar_is_shown_to_every_signed_in_user,
    confirming_someone_elses_token_or_twice_is_404,
    a_text_file_declared_as_png_is_refused_and_removed,
    confirming_before_uploading_is_400,
    wrong_types_and_sizes_get_no_url,
    at_most_five_upload_urls_are_pending_at_once,
    a_new_avatar_replaces_and_deletes_the_old_one,
    deleting_the_avatar_clears_it_and_deleting_none_is_404,
    a_direct_upload_is_checked_like_a_presigned_one,
    html_behind_an_image_signature_is_refused_both_ways,
);

/// A 1×1 PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc`\0\0\0\x02\0\x01T\xa2O_\0\0\0\0IEND\xaeB`\x82";

async fn upload_url(server: &TestServer, tokens: &Tokens, content_type: &str, size: usize) -> Reply {
    let body = json!({"filename": "me.png", "content_type": content_type, "size": size});
    server.post_authorized("/v1/avatar/upload-url", &tokens.access, body).await
}

/// PUTs `body` to the presigned URL of `ticket` with the headers it asks for (or overrides).
async fn put_to(server: &TestServer, ticket: &Value, body: &[u8], content_type: Option<&str>) -> u16 {
    let mut request = server.client.put(ticket["url"].as_str().unwrap());
    for (name, value) in ticket["headers"].as_object().unwrap() {
        if name != "content-length" && !(name == "content-type" && content_type.is_some()) {
            request = request.header(name, value.as_str().unwrap());
        }
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.body(body.to_vec()).send().await.unwrap().status().as_u16()
}

async fn fetch(server: &TestServer, url: &str) -> (u16, Vec<u8>) {
    let response = server.client.get(url).send().await.unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
}

/// Uploads `PNG` as the avatar of `tokens`; answers the confirmed view URL.
async fn set_avatar(server: &TestServer, tokens: &Tokens) -> String {
    let ticket = upload_url(server, tokens, "image/png", PNG.len()).await;
    assert_eq!(ticket.status, 200, "{}", ticket.body);
    assert_eq!(put_to(server, &ticket.body, PNG, None).await, 200);
    let confirmed = server
        .post_authorized("/v1/avatar/confirm", &tokens.access, json!({"token": ticket.body["token_to_confirm"]}))
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    confirmed.body["url"].as_str().unwrap().to_owned()
}

async fn an_uploaded_and_confirmed_avatar_is_shown_to_every_signed_in_user(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = server.register(&unique_email("ada"), None).await;
    let grace = server.register(&unique_email("grace"), None).await;
    let ticket = upload_url(&server, &ada, "image/png", PNG.len()).await;
    assert_eq!(ticket.body["method"], "PUT");
    assert!(ticket.body["expires_in"].as_u64().unwrap() <= 300);
    let url = set_avatar(&server, &ada).await;
    assert_eq!(fetch(&server, &url).await, (200, PNG.to_vec()));

    let me = server.get("/v1/users/me", Some(&ada.access)).await;
    let path = format!("/v1/users/{}/avatar", ada.user_id);
    assert_eq!(me.body["avatar"], path.as_str());
    let seen = server.get(&path, Some(&grace.access)).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(fetch(&server, seen.body["url"].as_str().unwrap()).await, (200, PNG.to_vec()));
    server.get(&path, None).await.error(401, "UNAUTHENTICATED");
    server.get(&format!("/v1/users/{}/avatar", grace.user_id), Some(&ada.access)).await.error(404, "NOT_FOUND");
}

async fn confirming_someone_elses_token_or_twice_is_404(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = server.register(&unique_email("ada"), None).await;
    let mallory = server.register(&unique_email("mallory"), None).await;
    let ticket = upload_url(&server, &ada, "image/png", PNG.len()).await;
    assert_eq!(put_to(&server, &ticket.body, PNG, None).await, 200);
    let token = json!({"token": ticket.body["token_to_confirm"]});
    server.post_authorized("/v1/avatar/confirm", &mallory.access, token.clone()).await.error(404, "NOT_FOUND");
    assert_eq!(server.get("/v1/users/me", Some(&mallory.access)).await.body["avatar"], Value::Null);
    assert_eq!(server.post_authorized("/v1/avatar/confirm", &ada.access, token.clone()).await.status, 200);
    server.post_authorized("/v1/avatar/confirm", &ada.access, token).await.error(404, "NOT_FOUND");
    let forged = json!({"token": format!("{}.{}", ada.user_id, "A".repeat(43))});
    server.post_authorized("/v1/avatar/confirm", &ada.access, forged).await.error(404, "NOT_FOUND");
}

async fn a_text_file_declared_as_png_is_refused_and_removed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = server.register(&unique_email("ada"), None).await;
    let text = b"<html>definitely not a picture</html>";
    let ticket = upload_url(&server, &ada, "image/png", text.len()).await;
    assert_eq!(put_to(&server, &ticket.body, text, None).await, 200);
    let token = json!({"token": ticket.body["token_to_confirm"]});
    let refused = server.post_authorized("/v1/avatar/confirm", &ada.access, token.clone()).await;
    let message = refused.error(400, "INVALID_ARGUMENT");
    assert!(message.contains("not a image/png image"), "{message}");
    // The object was deleted: confirming again finds nothing uploaded.
    let again = server.post_authorized("/v1/avatar/confirm", &ada.access, token).await;
    assert!(again.error(400, "INVALID_ARGUMENT").contains("nothing was uploaded"));
    assert_eq!(server.get("/v1/users/me", Some(&ada.access)).await.body["avatar"], Value::Null);
}

async fn confirming_before_uploading_is_400(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = server.register(&unique_email("ada"), None).await;
    let ticket = upload_url(&server, &ada, "image/png", PNG.len()).await;
    let token = json!({"token": ticket.body["token_to_confirm"]});
    let reply = server.post_authorized("/v1/avatar/confirm", &ada.access, token).await;
    assert!(reply.error(400, "INVALID_ARGUMENT").contains("nothing was uploaded"));
}

async fn wrong_types_and_sizes_get_no_url(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = server.register(&unique_email("ada"), None).await;
    for (content_type, size, field) in [
        ("text/html", 100, "content_type"),
        ("image/svg+xml", 100, "content_type"),
        ("image/png", 0, "size"),
        ("image/png", 5 * 1024 * 1024 + 1, "size"),
    ] {
        let reply = upload_url(&server, &ada, content_type, size).await;
        reply.error(400, "INVALID_ARGUMENT");
        assert_eq!(reply.body["details"][0]["field"], field, "{}", reply.body);
        assert!(reply.body.get("url").is_none());
    }
    let no_name = json!({"filename": " ", "content_type": "image/png", "size": 10});
    server.post_authorized("/v1/avatar/upload-url", &ada.access, no_name).await.error(400, "INVALID_ARGUMENT");
    server
        .post("/v1/avatar/upload-url", json!({"filename": "a.png", "content_type": "image/png", "size": 10}))
        .await
        .error(401, "UNAUTHENTICATED");
}

async fn at_most_five_upload_urls_are_pending_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = server.register(&unique_email("ada"), None).await;
    for _ in 0..5 {
        assert_eq!(upload_url(&server, &ada, "image/png", PNG.len()).await.status, 200);
    }
    let refused = upload_url(&server, &ada, "image/png", PNG.len()).await;
    refused.error(429, "RESOURCE_EXHAUSTED");
    let retry_after: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    // Someone else is not affected.
    let grace = server.register(&unique_email("grace"), None).await;
    assert_eq!(upload_url(&server, &grace, "image/png", PNG.len()).await.status, 200);
}

async fn a_new_avatar_replaces_and_deletes_the_old_one(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = server.register(&unique_email("ada"), None).await;
    let first = set_avatar(&server, &ada).await;
    let second = set_avatar(&server, &ada).await;
    assert_ne!(first, second);
    assert_eq!(fetch(&server, &second).await.0, 200);
    assert_eq!(fetch(&server, &first).await.0, 404, "the replaced object is deleted");
}

async fn deleting_the_avatar_clears_it_and_deleting_none_is_404(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = server.register(&unique_email("ada"), None).await;
    server.delete_authorized("/v1/avatar", &ada.access, None).await.error(404, "NOT_FOUND");
    let url = set_avatar(&server, &ada).await;
    assert_eq!(server.delete_authorized("/v1/avatar", &ada.access, None).await.status, 200);
    assert_eq!(fetch(&server, &url).await.0, 404);
    server.get(&format!("/v1/users/{}/avatar", ada.user_id), Some(&ada.access)).await.error(404, "NOT_FOUND");
    assert_eq!(server.get("/v1/users/me", Some(&ada.access)).await.body["avatar"], Value::Null);
}

async fn a_direct_upload_is_checked_like_a_presigned_one(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = server.register(&unique_email("ada"), None).await;
    let put = |body: Vec<u8>, content_type: &'static str| {
        let request =
            server.client.put(server.url("/v1/avatar")).bearer_auth(&ada.access).header("content-type", content_type);
        async move {
            let reply = Reply::of("PUT", request.body(body).send().await.unwrap()).await;
            (reply.status, reply.body)
        }
    };
    let (status, body) = put(PNG.to_vec(), "image/png").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fetch(&server, body["url"].as_str().unwrap()).await, (200, PNG.to_vec()));
    let (status, body) = put(b"plain text".to_vec(), "image/png").await;
    assert_eq!((status, body["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "{body}");
    let (status, _) = put(PNG.to_vec(), "text/plain").await;
    assert_eq!(status, 400);
    // Bodies above the API's 64 KiB JSON limit are fine on this route, up to 4 MiB.
    let mut large = PNG.to_vec();
    large.resize(1024 * 1024, 0);
    let (status, body) = put(large, "image/png").await;
    assert_eq!(status, 200, "{body}");
    let mut huge = PNG.to_vec();
    huge.resize(4 * 1024 * 1024 + 1, 0);
    let (status, body) = put(huge, "image/png").await;
    assert_eq!(status, 413, "{body}");
}

/// The local adapter's signed URLs refuse what S3 refuses: another content type or length,
/// a tampered signature or another key (expiry is unit-tested in `objects::local`).
#[tokio::test]
async fn local_upload_urls_refuse_what_was_not_signed() {
    let server = TestServer::start(Backend::Embedded).await;
    let ada = server.register(&unique_email("ada"), None).await;
    let ticket = upload_url(&server, &ada, "image/png", PNG.len()).await.body;
    let url = ticket["url"].as_str().unwrap().to_owned();
    assert_eq!(put_to(&server, &ticket, PNG, Some("image/gif")).await, 403, "another content type");
    let longer = [PNG, b"extra"].concat();
    assert_eq!(put_to(&server, &ticket, &longer, None).await, 403, "another length");
    let tampered = json!({"url": url.replace("signature=", "signature=0"), "headers": ticket["headers"]});
    assert_eq!(put_to(&server, &tampered, PNG, None).await, 403, "a tampered signature");
    let other_key = json!({"url": url.replace("/uploads/", "/avatars/"), "headers": ticket["headers"]});
    assert_eq!(put_to(&server, &other_key, PNG, None).await, 403, "another key");
    assert_eq!(put_to(&server, &ticket, PNG, None).await, 200, "the signed request itself works");
}

fn query_value(url: &str, name: &str) -> String {
    let query = url.split_once('?').expect("a query").1;
    let pair = query
        .split('&')
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {url}"));
    pair.split_once('=').unwrap().1.replace("%3B", ";")
}

/// moto does not check presigned signatures, so this checks what the URL signs: S3 refuses
/// a PUT whose signed headers differ.
#[tokio::test]
async fn s3_upload_urls_sign_the_content_type_and_length_and_expire_in_five_minutes() {
    use latchkey::objects::ObjectStore;
    let bucket = latchkey_tests::TestBucket::create().await;
    let ticket = bucket
        .objects()
        .presign_upload("uploads/u/a.png", "image/png", 67, latchkey::features::avatars::URL_LIFETIME)
        .await
        .unwrap();
    let signed: Vec<String> = query_value(&ticket.url, "X-Amz-SignedHeaders").split(';').map(str::to_owned).collect();
    assert!(signed.contains(&"content-type".to_owned()) && signed.contains(&"content-length".to_owned()), "{signed:?}");
    assert_eq!(query_value(&ticket.url, "X-Amz-Expires"), "300");
}

/// An S3-compatible server that does verify signatures (s3s-fs) refuses a PUT with another
/// content type, and an expired URL.
#[tokio::test]
async fn an_s3_server_that_checks_signatures_refuses_what_was_not_signed() {
    use latchkey::objects::ObjectStore;
    let binary = std::env::var("LATCHKEY_TEST_S3S_FS").unwrap_or_else(|_| {
        panic!(
            "LATCHKEY_TEST_S3S_FS is not set. Run the test command (`./scripts/test`), which installs s3s-fs, or \\
             `cargo install s3s-fs@0.14.1 --locked --features binary` and export LATCHKEY_TEST_S3S_FS=<its path>"
        )
    });
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("avatars")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new(&binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", "AK", "--secret-key", "SK"])
        .arg(root.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {binary}: {error}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "s3s-fs did not listen");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(aws_sdk_s3::config::Credentials::new(
            "AK", "SK", None, None, "tests",
        )))
        .build();
    let objects = latchkey::objects::s3::S3Objects::new(latchkey_tests::s3_client(&config), "avatars");
    let server = TestServer::start(Backend::Embedded).await;
    let upload = |ticket: latchkey::objects::UploadTicket| json!({"url": ticket.url, "headers": ticket.headers.into_iter().collect::<std::collections::HashMap<_, _>>()});

    let ticket = upload(
        objects
            .presign_upload("uploads/u/a.png", "image/png", PNG.len() as u64, latchkey::features::avatars::URL_LIFETIME)
            .await
            .unwrap(),
    );
    assert_eq!(put_to(&server, &ticket, PNG, Some("image/gif")).await, 403, "another content type");
    let longer = [PNG, b"extra"].concat();
    assert_ne!(put_to(&server, &ticket, &longer, None).await, 200, "another length");
    assert_eq!(put_to(&server, &ticket, PNG, None).await, 200, "the signed request itself");
    assert_eq!(objects.size("uploads/u/a.png").await.unwrap(), Some(PNG.len() as u64));

    let short = upload(
        objects
            .presign_upload("uploads/u/b.png", "image/png", PNG.len() as u64, std::time::Duration::from_secs(1))
            .await
            .unwrap(),
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(put_to(&server, &short, PNG, None).await, 403, "an expired URL");
    let _ = child.kill();
    let _ = child.wait();
}

/// Withdrawing an account deletes its avatar image, not only the reference to it.
#[tokio::test]
async fn withdrawing_an_account_deletes_its_avatar() {
    for backend in [Backend::Embedded, Backend::DynamoDb] {
        let server = TestServer::start(backend).await;
        let ada = server.register(&unique_email("ada"), None).await;
        let url = set_avatar(&server, &ada).await;
        let password = json!({"password": latchkey_tests::PASSWORD});
        assert_eq!(server.delete_authorized("/v1/users/me", &ada.access, Some(password)).await.status, 200);
        assert_eq!(fetch(&server, &url).await.0, 404, "{backend:?}");
    }
}

async fn html_behind_an_image_signature_is_refused_both_ways(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = server.register(&unique_email("ada"), None).await;
    let disguised = b"GIF89a<html><script>alert(document.cookie)</script></html>".to_vec();
    let direct = server
        .client
        .put(server.url("/v1/avatar"))
        .bearer_auth(&ada.access)
        .header("content-type", "image/gif")
        .body(disguised.clone())
        .send()
        .await
        .unwrap();
    let direct = Reply::of("PUT", direct).await;
    direct.error(400, "INVALID_ARGUMENT");
    assert_eq!(direct.body["details"][0]["reason"], "INVALID_UPLOAD", "{}", direct.body);
    let ticket = upload_url(&server, &ada, "image/gif", disguised.len()).await;
    assert_eq!(put_to(&server, &ticket.body, &disguised, None).await, 200);
    let confirm = json!({"token": ticket.body["token_to_confirm"]});
    let confirmed = server.post_authorized("/v1/avatar/confirm", &ada.access, confirm).await;
    confirmed.error(400, "INVALID_ARGUMENT");
    assert_eq!(confirmed.body["details"][0]["reason"], "INVALID_UPLOAD", "{}", confirmed.body);
}

/// The local server serves an avatar as the image it was checked to be, and nothing else.
#[tokio::test]
async fn local_avatars_are_served_with_nosniff_and_a_sandboxing_policy() {
    let server = TestServer::start(Backend::Embedded).await;
    let ada = server.register(&unique_email("ada"), None).await;
    let url = set_avatar(&server, &ada).await;
    let response = server.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["content-security-policy"], "default-src 'none'; sandbox");
}
