//! The two APIs in front of the functions, as API Gateway plays them: the HTTP API turns each
//! request into a payload 2.0 event for the function its route names and the function's answer
//! back into a response; the WebSocket API turns a connection's opening, messages and closing
//! into `$connect`, route-selected and `$disconnect` events, and serves the Management API
//! (`@connections`) through which the function posts to connections.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::runtime::Function;
use super::template::WebSocketSpec;

/// HTTP APIs take request bodies of at most 10 MB.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Lambda takes a synchronous invocation's event of at most 6 MB.
const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;
/// WebSocket APIs take messages of at most 128 KiB.
const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// A route of the HTTP API: method, path template split at `/`, and its function.
struct HttpRoute {
    method: String,
    segments: Vec<String>,
    template: String,
    function: Arc<Function>,
}

pub struct HttpApi {
    routes: Vec<HttpRoute>,
}

impl HttpApi {
    pub fn new(functions: &[Arc<Function>]) -> Self {
        let routes = functions
            .iter()
            .flat_map(|function| {
                function.spec.routes.iter().map(|(method, path)| HttpRoute {
                    method: method.clone(),
                    segments: path.split('/').map(str::to_owned).collect(),
                    template: path.clone(),
                    function: Arc::clone(function),
                })
            })
            .collect();
        Self { routes }
    }

    pub fn router(self) -> Router {
        Router::new().fallback(http_request).with_state(Arc::new(self))
    }

    /// The route and path parameters of a request; a literal segment wins over a parameter.
    fn route(&self, method: &Method, path: &str) -> Option<(&HttpRoute, BTreeMap<String, String>)> {
        let segments: Vec<&str> = path.split('/').collect();
        let mut matches: Vec<_> = self
            .routes
            .iter()
            .filter(|route| route.method == method.as_str() && route.segments.len() == segments.len())
            .filter_map(|route| {
                let mut parameters = BTreeMap::new();
                for (pattern, segment) in route.segments.iter().zip(&segments) {
                    match pattern.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                        Some(name) if !segment.is_empty() => {
                            parameters.insert(name.to_owned(), percent_decode(segment));
                        }
                        None if pattern == segment => {}
                        _ => return None,
                    }
                }
                Some((route, parameters))
            })
            .collect();
        matches.sort_by_key(|(_, parameters)| parameters.len());
        matches.into_iter().next()
    }
}

fn percent_decode(segment: &str) -> String {
    form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// API Gateway's own answers carry `{"message": ...}`.
fn gateway_error(status: StatusCode, message: &str) -> Response {
    (status, [("content-type", "application/json")], json!({ "message": message }).to_string()).into_response()
}

async fn http_request(
    State(api): State<Arc<HttpApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Some((route, parameters)) = api.route(&parts.method, parts.uri.path()) else {
        return gateway_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let event = http_event(&parts, &route.template, parameters, &body, peer).to_string().into_bytes();
    if event.len() > MAX_EVENT_BYTES {
        return gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    }
    // A function that fails or runs past its timeout (10 or 25 s, inside the HTTP API's 30 s)
    // is an integration error to API Gateway.
    match route.function.invoke(event).await {
        Ok(answer) => http_response(&answer),
        Err(error) => {
            tracing::warn!(function = %route.function.spec.binary, %error, "invocation failed");
            gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// Whether API Gateway hands a body to Lambda as text (valid UTF-8 of a text media type) or
/// base64-encoded.
fn is_text(headers: &HeaderMap, body: &[u8]) -> bool {
    let kind = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let media = kind.split(';').next().unwrap_or("").trim();
    let textual = media.starts_with("text/")
        || ["application/json", "application/xml", "application/javascript"].contains(&media);
    textual && std::str::from_utf8(body).is_ok()
}

/// The payload format 2.0 event of an HTTP API request.
fn http_event(
    parts: &axum::http::request::Parts,
    template: &str,
    parameters: BTreeMap<String, String>,
    body: &Bytes,
    peer: SocketAddr,
) -> Value {
    let mut headers = serde_json::Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split(';').map(|cookie| cookie.trim().to_owned()).filter(|c| !c.is_empty()));
            continue;
        }
        // Repeated headers arrive joined by commas.
        match headers.get_mut(name.as_str()) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let forwarded =
        headers.get("x-forwarded-for").and_then(Value::as_str).map(|chain| format!("{chain}, {}", peer.ip()));
    headers.insert("x-forwarded-for".into(), forwarded.unwrap_or_else(|| peer.ip().to_string()).into());
    headers.insert("x-forwarded-proto".into(), "http".into());
    headers.insert("x-forwarded-port".into(), parts.uri.port_u16().unwrap_or(80).to_string().into());
    let raw_query = parts.uri.query().unwrap_or("");
    let mut query = serde_json::Map::new();
    for (name, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        match query.get_mut(name.as_ref()) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => {
                query.insert(name.into_owned(), Value::String(value.into_owned()));
            }
        }
    }
    let route_key = format!("{} {template}", parts.method);
    let now = time::OffsetDateTime::now_utc();
    let host = headers.get("host").and_then(Value::as_str).unwrap_or("localhost").to_owned();
    let user_agent = headers.get("user-agent").cloned().unwrap_or(Value::String(String::new()));
    let text = is_text(&parts.headers, body);
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or_default(),
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": request_time(now),
            "timeEpoch": now.unix_timestamp_nanos() / 1_000_000,
        },
        "isBase64Encoded": !text && !body.is_empty(),
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !parameters.is_empty() {
        event["pathParameters"] = json!(parameters);
    }
    if !body.is_empty() {
        event["body"] =
            if text { String::from_utf8_lossy(body).into_owned().into() } else { BASE64.encode(body).into() };
    }
    event
}

fn request_time(now: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000");
    now.format(&format).unwrap_or_default()
}

/// A function's payload 2.0 answer as an HTTP response.
fn http_response(answer: &[u8]) -> Response {
    let Ok(answer) = serde_json::from_slice::<Value>(answer) else {
        return gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    // An answer without a status code is itself the body (API Gateway's inference).
    let Some(status) = answer.get("statusCode").and_then(Value::as_u64) else {
        return (StatusCode::OK, [("content-type", "application/json")], answer.to_string()).into_response();
    };
    let Ok(status) = StatusCode::from_u16(status as u16) else {
        return gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let mut headers = HeaderMap::new();
    let mut add = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
            headers.append(name, value);
        }
    };
    for (name, value) in answer["headers"].as_object().into_iter().flatten() {
        add(name, value.as_str().unwrap_or_default());
    }
    for (name, values) in answer["multiValueHeaders"].as_object().into_iter().flatten() {
        for value in values.as_array().into_iter().flatten() {
            add(name, value.as_str().unwrap_or_default());
        }
    }
    for cookie in answer["cookies"].as_array().into_iter().flatten() {
        add("set-cookie", cookie.as_str().unwrap_or_default());
    }
    let body = answer["body"].as_str().unwrap_or_default();
    let body = if answer["isBase64Encoded"].as_bool() == Some(true) {
        match BASE64.decode(body) {
            Ok(bytes) => bytes,
            Err(_) => return gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        }
    } else {
        body.as_bytes().to_vec()
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The WebSocket API: its function, its open connections, and where it is reached.
pub struct WebSocketApi {
    spec: WebSocketSpec,
    function: Arc<Function>,
    connections: Mutex<HashMap<String, mpsc::UnboundedSender<Message>>>,
    domain: String,
}

impl WebSocketApi {
    pub fn new(spec: WebSocketSpec, function: Arc<Function>, domain: String) -> Self {
        Self { spec, function, connections: Mutex::new(HashMap::new()), domain }
    }

    /// The connection route at `/<stage>`, and the Management API at `/<stage>/@connections/{id}`.
    pub fn router(self) -> Router {
        let stage = format!("/{}", self.spec.stage);
        Router::new()
            .route(&stage, get(open))
            .route(&format!("{stage}/@connections/{{id}}"), post(post_to_connection).delete(close_connection))
            .with_state(Arc::new(self))
    }

    fn event(&self, route_key: &str, connection: &Connection) -> Value {
        let now = time::OffsetDateTime::now_utc();
        let event_type = match route_key {
            "$connect" => "CONNECT",
            "$disconnect" => "DISCONNECT",
            _ => "MESSAGE",
        };
        json!({
            "requestContext": {
                "routeKey": route_key,
                "eventType": event_type,
                "messageDirection": "IN",
                "stage": self.spec.stage,
                "requestTime": request_time(now),
                "requestTimeEpoch": now.unix_timestamp_nanos() / 1_000_000,
                "identity": { "sourceIp": connection.peer.ip().to_string() },
                "requestId": uuid::Uuid::new_v4().to_string(),
                "extendedRequestId": uuid::Uuid::new_v4().to_string(),
                "domainName": self.domain,
                "connectionId": connection.id,
                "connectedAt": connection.connected_at,
                "apiId": "local",
            },
            "isBase64Encoded": false,
        })
    }

    /// The route a message takes: the one its selection field names, else `$default`.
    fn route_key(&self, text: &str) -> String {
        let selected = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|body| body.get(&self.spec.selection_field)?.as_str().map(str::to_owned));
        match selected {
            Some(key) if !key.starts_with('$') && self.spec.route_keys.contains(&key) => key,
            _ => "$default".to_owned(),
        }
    }

    async fn invoke(&self, event: Value) -> Option<Value> {
        match self.function.invoke(event.to_string().into_bytes()).await {
            Ok(answer) => serde_json::from_slice(&answer).ok(),
            Err(error) => {
                tracing::warn!(%error, "WebSocket invocation failed");
                None
            }
        }
    }
}

/// What API Gateway tells about a connection in each of its events.
struct Connection {
    id: String,
    connected_at: i128,
    peer: SocketAddr,
}

async fn open(
    State(api): State<Arc<WebSocketApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    // A request that is no WebSocket handshake never reaches $connect.
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let connection = Connection {
        id: BASE64.encode(uuid::Uuid::new_v4().as_bytes())[..16].to_owned(),
        connected_at: time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000,
        peer,
    };
    let mut event = api.event("$connect", &connection);
    let mut multi: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        multi.entry(name.as_str().to_owned()).or_default().push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let single: BTreeMap<&String, &String> =
        multi.iter().filter_map(|(name, values)| Some((name, values.last()?))).collect();
    event["headers"] = json!(single);
    event["multiValueHeaders"] = json!(multi);
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query);
        let multi: BTreeMap<_, _> = query.iter().map(|(k, v)| (k.clone(), vec![v.clone()])).collect();
        event["multiValueQueryStringParameters"] = json!(multi);
    }
    let answer = api.invoke(event).await;
    let status = answer.as_ref().and_then(|a| a["statusCode"].as_u64()).unwrap_or(500);
    if status != 200 {
        let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return gateway_error(status, "Forbidden");
    }
    let protocol = answer.as_ref().and_then(|a| {
        let headers = a["headers"].as_object()?;
        headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-protocol"))?
            .1
            .as_str()
            .map(str::to_owned)
    });
    let upgrade = upgrade.max_message_size(MAX_MESSAGE_BYTES).protocols(protocol);
    upgrade.on_upgrade(move |socket| serve_connection(api, socket, connection))
}

async fn serve_connection(api: Arc<WebSocketApi>, mut socket: WebSocket, connection: Connection) {
    let (outbox, mut posted) = mpsc::unbounded_channel();
    api.connections.lock().unwrap().insert(connection.id.clone(), outbox);
    loop {
        tokio::select! {
            frame = posted.recv() => match frame {
                Some(Message::Close(close)) => {
                    let _ = socket.send(Message::Close(close)).await;
                    break;
                }
                Some(frame) => if socket.send(frame).await.is_err() { break },
                None => break,
            },
            received = socket.recv() => match received {
                Some(Ok(Message::Text(text))) => {
                    let mut event = api.event(&api.route_key(&text), &connection);
                    event["body"] = Value::String(text.to_string());
                    event["requestContext"]["messageId"] = uuid::Uuid::new_v4().to_string().into();
                    api.invoke(event).await;
                }
                Some(Ok(Message::Binary(bytes))) => {
                    let mut event = api.event("$default", &connection);
                    event["body"] = BASE64.encode(&bytes).into();
                    event["isBase64Encoded"] = true.into();
                    api.invoke(event).await;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                _ => break,
            },
        }
    }
    api.connections.lock().unwrap().remove(&connection.id);
    let mut event = api.event("$disconnect", &connection);
    event["requestContext"]["disconnectStatusCode"] = 1005.into();
    api.invoke(event).await;
}

/// `PostToConnection`: the body goes to the connection as one text frame; a connection that
/// is gone answers 410 `GoneException`, which the SDK reads from the error-type header.
async fn post_to_connection(State(api): State<Arc<WebSocketApi>>, Path(id): Path<String>, body: Bytes) -> Response {
    let sender = api.connections.lock().unwrap().get(&id).cloned();
    let frame = Message::Text(String::from_utf8_lossy(&body).into_owned().into());
    match sender.map(|sender| sender.send(frame)) {
        Some(Ok(())) => StatusCode::OK.into_response(),
        _ => gone(),
    }
}

async fn close_connection(State(api): State<Arc<WebSocketApi>>, Path(id): Path<String>) -> Response {
    let sender = api.connections.lock().unwrap().get(&id).cloned();
    match sender.map(|sender| sender.send(Message::Close(None))) {
        Some(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        _ => gone(),
    }
}

fn gone() -> Response {
    let headers = [("x-amzn-errortype", "GoneException"), ("content-type", "application/json")];
    (StatusCode::GONE, headers, json!({ "message": null }).to_string()).into_response()
}
