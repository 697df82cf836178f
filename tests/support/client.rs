//! The HTTP client side of the tests: a client, and the replies and tokens they read.

use serde_json::Value;

/// An HTTP client for the tests. reqwest is built without a TLS backend of its own: the
/// library's (aws-lc-rs) is installed first.
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("an HTTP client")
}

pub fn http_client_builder() -> reqwest::ClientBuilder {
    latchkey::oauth::install_tls_backend();
    reqwest::Client::builder()
}

pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub user_id: String,
}

impl Tokens {
    pub fn of(reply: &Reply) -> Self {
        let text = |field: &str| {
            reply.body[field].as_str().unwrap_or_else(|| panic!("no {field} in {}", reply.body)).to_owned()
        };
        Self {
            access: text("access_token"),
            refresh: text("refresh_token"),
            user_id: reply.body["user"]["id"].as_str().unwrap().to_owned(),
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The reply to a `method` request, its body checked against the API contract.
    pub async fn of(method: &str, response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let path = response.url().path().to_owned();
        let bytes = response.bytes().await.expect("body");
        let body = match (status, bytes.is_empty()) {
            (204, empty) => {
                assert!(empty, "a 204 has no body");
                Value::Null
            }
            // A redirect (the provider flows) carries its answer in `Location`.
            (300..=399, true) => Value::Null,
            _ => serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("status {status}: the body is not JSON: {:?}", String::from_utf8_lossy(&bytes))
            }),
        };
        super::contract::check(method, &path, status, &body);
        Self { status, headers, body }
    }

    /// Asserts the documented error shape and returns the message.
    pub fn error(&self, status: u16, grpc_status: &str) -> String {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        assert_eq!(self.body["status"], grpc_status, "body: {}", self.body);
        assert!(self.body["code"].is_u64() && self.body["details"].is_array(), "error shape: {}", self.body);
        self.body["message"].as_str().expect("message").to_owned()
    }
}
