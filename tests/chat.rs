//! Chat: conversations over REST, and real WebSocket clients talking through the local server's
//! `/v1/chat/ws`, on both backends.

use std::time::Duration;

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use lambda_http::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use latchkey::config::Config;
use latchkey::features::chat::ChatService;
use latchkey::features::chat::apigateway::{ManagementClients, handle};
use latchkey::kernel::Kernel;
use latchkey::repo::{ChatConnection, ChatRepo};
use latchkey_tests::{Backend, Reply, TestServer, Tokens, on_every_backend, test_config, unique_email};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

on_every_backend!(
    a_conversation_needs_a_connected_user_and_is_never_duplicated,
    two_clients_exchange_messages_in_real_time_with_acks,
    an_offline_receiver_reads_the_messages_over_rest_newest_first,
    conversations_are_listed_by_latest_activity_with_their_last_message,
);

/// A user with a username, signed in.
struct ChatUser {
    username: String,
    tokens: Tokens,
}

async fn chat_user(server: &TestServer, name: &str) -> ChatUser {
    let email = unique_email(name);
    let username = format!("{name}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let tokens = server.register(&email, Some(&username)).await;
    ChatUser { username, tokens }
}

async fn start(server: &TestServer, from: &ChatUser, to: &str) -> Reply {
    server.post_authorized("/v1/conversations", &from.tokens.access, json!({ "username": to })).await
}

/// The id of a new conversation between two connected users.
async fn conversation(server: &TestServer, from: &ChatUser, to: &ChatUser) -> String {
    let reply = start(server, from, &to.username).await;
    assert!(reply.status == 201 || reply.status == 200, "{}", reply.body);
    reply.body["conversation_id"].as_str().unwrap().to_owned()
}

async fn ticket(server: &TestServer, user: &ChatUser) -> String {
    let reply = server.post_authorized("/v1/chat/ticket", &user.tokens.access, json!({})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["expires_in"], 30);
    reply.body["ticket"].as_str().unwrap().to_owned()
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One WebSocket client of `/v1/chat/ws`.
struct ChatClient {
    socket: Socket,
}

impl ChatClient {
    async fn connect(server: &TestServer, user: &ChatUser) -> Self {
        let ticket = ticket(server, user).await;
        Self::connect_with(server, &format!("?ticket={ticket}")).await.expect("the ticket opens a connection")
    }

    async fn connect_with(server: &TestServer, query: &str) -> Result<Self, u16> {
        let url = format!("{}{query}", server.websocket_url);
        Self::open(url.into_client_request().unwrap()).await
    }

    async fn open(request: tokio_tungstenite::tungstenite::handshake::client::Request) -> Result<Self, u16> {
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(Self { socket }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(error) => panic!("connect: {error}"),
        }
    }

    async fn send_raw(&mut self, text: &str) {
        self.socket.send(WsMessage::Text(text.into())).await.expect("send");
    }

    async fn send(&mut self, conversation_id: &str, text: &str, client_id: &str) {
        let frame = json!({ "action": "send_message", "conversation_id": conversation_id, "text": text, "client_id": client_id });
        self.send_raw(&frame.to_string()).await;
    }

    /// The next frame; a test that waits 10 s for one has failed.
    async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("no frame arrived")
                .expect("the connection closed")
                .expect("a frame");
            if let WsMessage::Text(text) = message {
                return serde_json::from_str(&text).expect("frames are JSON");
            }
        }
    }

    /// Sends a message and answers its acknowledgement.
    async fn say(&mut self, conversation_id: &str, text: &str) -> Value {
        let client_id = uuid::Uuid::new_v4().to_string();
        self.send(conversation_id, text, &client_id).await;
        let ack = self.next().await;
        assert_eq!((ack["type"].as_str(), ack["client_id"].as_str()), (Some("ack"), Some(client_id.as_str())), "{ack}");
        ack
    }

    async fn close(mut self) {
        self.socket.close(None).await.expect("close");
    }
}

fn error_status(frame: &Value) -> &str {
    assert_eq!(frame["type"], "error", "{frame}");
    frame["error"]["status"].as_str().unwrap_or_default()
}

async fn a_conversation_needs_a_connected_user_and_is_never_duplicated(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (chat_user(&server, "alice").await, chat_user(&server, "bob").await);

    let created = start(&server, &alice, &bob.username).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["initiator"]["username"], alice.username.as_str());
    assert_eq!(created.body["receiver"]["username"], bob.username.as_str());
    assert_eq!(created.body["receiver"]["is_connected"], true);
    assert!(created.body["receiver"].get("email").is_none(), "public profiles only");
    let id = &created.body["conversation_id"];
    let again = start(&server, &alice, &bob.username).await;
    assert_eq!((again.status, &again.body["conversation_id"]), (200, id));
    let other_way = start(&server, &bob, &alice.username.to_uppercase()).await;
    assert_eq!((other_way.status, &other_way.body["conversation_id"]), (200, id), "one conversation per pair");

    let carol = chat_user(&server, "carol").await;
    server.post_authorized("/v1/auth/logout-all", &carol.tokens.access, json!({})).await;
    let offline = start(&server, &alice, &carol.username).await;
    offline.error(409, "FAILED_PRECONDITION");
    assert_eq!(offline.body["details"][0]["reason"], "USER_NOT_CONNECTED");
    start(&server, &alice, "nobody_at_all").await.error(404, "NOT_FOUND");
    start(&server, &alice, &alice.username).await.error(400, "FAILED_PRECONDITION");
    start(&server, &alice, "no spaces allowed").await.error(400, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn concurrent_starts_between_two_users_make_one_conversation() {
    let server = TestServer::start(Backend::Embedded).await;
    let (alice, bob) = (chat_user(&server, "alice").await, chat_user(&server, "bob").await);
    let starts = (0..10).map(|n| {
        if n % 2 == 0 { start(&server, &alice, &bob.username) } else { start(&server, &bob, &alice.username) }
    });
    let replies = futures::future::join_all(starts).await;
    assert_eq!(replies.iter().filter(|reply| reply.status == 201).count(), 1);
    let ids: std::collections::HashSet<String> =
        replies.iter().map(|reply| reply.body["conversation_id"].to_string()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
}

async fn two_clients_exchange_messages_in_real_time_with_acks(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (chat_user(&server, "alice").await, chat_user(&server, "bob").await);
    let id = conversation(&server, &alice, &bob).await;
    let (mut alice_socket, mut bob_socket) =
        (ChatClient::connect(&server, &alice).await, ChatClient::connect(&server, &bob).await);

    let ack = alice_socket.say(&id, "hi bob").await;
    let received = bob_socket.next().await;
    assert_eq!(received["type"], "message", "{received}");
    assert_eq!(received["conversation_id"], id.as_str());
    assert_eq!(received["message"], ack["message"], "the receiver gets the message the sender's ack names");
    assert_eq!(received["message"]["text"], "hi bob");
    assert_eq!(received["message"]["sender"], alice.tokens.user_id.as_str());

    bob_socket.say(&id, "hello alice ✓").await;
    assert_eq!(alice_socket.next().await["message"]["text"], "hello alice ✓");

    // Alice's second device gets what she sends from the first.
    let mut alice_tablet = ChatClient::connect(&server, &alice).await;
    let ack = alice_socket.say(&id, "from my phone").await;
    assert_eq!(alice_tablet.next().await["message"], ack["message"]);
    assert_eq!(bob_socket.next().await["message"], ack["message"]);
}

#[tokio::test]
async fn bad_frames_get_an_error_frame_and_the_connection_stays_open() {
    let server = TestServer::start(Backend::Embedded).await;
    let (alice, bob, carol) =
        (chat_user(&server, "alice").await, chat_user(&server, "bob").await, chat_user(&server, "carol").await);
    let ours = conversation(&server, &alice, &bob).await;
    let theirs = conversation(&server, &bob, &carol).await;
    let mut socket = ChatClient::connect(&server, &alice).await;

    let cases = [
        (json!({ "action": "send_message", "conversation_id": ours, "text": "  ", "client_id": "e1" }).to_string(), "INVALID_ARGUMENT"),
        (json!({ "action": "send_message", "conversation_id": ours, "text": "x".repeat(4097), "client_id": "e2" }).to_string(), "INVALID_ARGUMENT"),
        (json!({ "action": "shout", "conversation_id": ours, "text": "hi", "client_id": "e3" }).to_string(), "INVALID_ARGUMENT"),
        (json!({ "action": "send_message", "conversation_id": theirs, "text": "let me in", "client_id": "e4" }).to_string(), "PERMISSION_DENIED"),
        (json!({ "action": "send_message", "conversation_id": uuid::Uuid::now_v7(), "text": "hi", "client_id": "e5" }).to_string(), "NOT_FOUND"),
        ("not json at all".to_owned(), "INVALID_ARGUMENT"),
    ];
    for (frame, status) in &cases {
        socket.send_raw(frame).await;
        let answer = socket.next().await;
        assert_eq!(error_status(&answer), *status, "{frame}: {answer}");
    }
    let named = socket.next_error_for("e4", &theirs).await;
    assert!(named["error"]["message"].as_str().unwrap().contains("participants"), "{named}");
    // Nothing of that reached Carol's conversation, and the connection still works.
    socket.say(&ours, "still here").await;
    let read = server.get(&format!("/v1/conversations/{theirs}"), Some(&carol.tokens.access)).await;
    assert_eq!(read.body["messages"], json!([]));
}

impl ChatClient {
    /// Sends a refused frame again and answers its error frame, which echoes the client id.
    async fn next_error_for(&mut self, client_id: &str, conversation_id: &str) -> Value {
        self.send(conversation_id, "again", client_id).await;
        let frame = self.next().await;
        assert_eq!(frame["client_id"], client_id, "{frame}");
        frame
    }
}

#[tokio::test]
async fn only_the_participants_read_a_conversation() {
    let server = TestServer::start(Backend::Embedded).await;
    let (alice, bob, eve) =
        (chat_user(&server, "alice").await, chat_user(&server, "bob").await, chat_user(&server, "eve").await);
    let id = conversation(&server, &alice, &bob).await;
    assert_eq!(server.get(&format!("/v1/conversations/{id}"), Some(&bob.tokens.access)).await.status, 200);
    server.get(&format!("/v1/conversations/{id}"), Some(&eve.tokens.access)).await.error(403, "PERMISSION_DENIED");
    let missing = uuid::Uuid::now_v7();
    server.get(&format!("/v1/conversations/{missing}"), Some(&alice.tokens.access)).await.error(404, "NOT_FOUND");
    server.get("/v1/conversations/42", Some(&alice.tokens.access)).await.error(404, "NOT_FOUND");
    server.get(&format!("/v1/conversations/{id}"), None).await.error(401, "UNAUTHENTICATED");
    server
        .get(&format!("/v1/conversations/{id}?limit=0"), Some(&alice.tokens.access))
        .await
        .error(400, "INVALID_ARGUMENT");
    server
        .get(&format!("/v1/conversations/{id}?before=yesterday"), Some(&alice.tokens.access))
        .await
        .error(400, "INVALID_ARGUMENT");
    server
        .get("/v1/conversations?cursor=%27%20OR%201%3D1", Some(&alice.tokens.access))
        .await
        .error(400, "INVALID_ARGUMENT");
}

async fn an_offline_receiver_reads_the_messages_over_rest_newest_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (chat_user(&server, "alice").await, chat_user(&server, "bob").await);
    let id = conversation(&server, &alice, &bob).await;
    let mut socket = ChatClient::connect(&server, &alice).await;
    let mut sent = Vec::new();
    for n in 0..5 {
        sent.push(socket.say(&id, &format!("message {n}")).await["message"]["id"].as_str().unwrap().to_owned());
    }
    socket.close().await;
    let mut ordered = sent.clone();
    ordered.sort();
    assert_eq!(sent, ordered, "ids sort in the order the messages were sent");

    // Bob was never online to the chat: everything is stored for him.
    let path = format!("/v1/conversations/{id}?limit=3");
    let first = server.get(&path, Some(&bob.tokens.access)).await;
    let texts = |reply: &Reply| {
        reply.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&first), ["message 4", "message 3", "message 2"]);
    let cursor = first.body["next_cursor"].as_str().expect("more pages");
    let older = server.get(&format!("{path}&before={cursor}"), Some(&bob.tokens.access)).await;
    assert_eq!(texts(&older), ["message 1", "message 0"]);
    assert_eq!(older.body["next_cursor"], Value::Null);

    // Reconnecting, Bob reads the same history and the conversation goes on live.
    let mut bob_socket = ChatClient::connect(&server, &bob).await;
    let mut alice_socket = ChatClient::connect(&server, &alice).await;
    let ack = alice_socket.say(&id, "welcome back").await;
    assert_eq!(bob_socket.next().await["message"], ack["message"]);
    assert_eq!(texts(&server.get(&path, Some(&bob.tokens.access)).await)[0], "welcome back");
}

async fn conversations_are_listed_by_latest_activity_with_their_last_message(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob, carol) =
        (chat_user(&server, "alice").await, chat_user(&server, "bob").await, chat_user(&server, "carol").await);
    let with_bob = conversation(&server, &alice, &bob).await;
    let with_carol = conversation(&server, &carol, &alice).await;
    let listed = |reply: &Reply| {
        reply.body["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["conversation_id"].as_str().unwrap().to_owned(),
                    c["last_message"]["text"].as_str().map(String::from),
                )
            })
            .collect::<Vec<_>>()
    };
    let fresh = server.get("/v1/conversations", Some(&alice.tokens.access)).await;
    assert_eq!(listed(&fresh), [(with_carol.clone(), None), (with_bob.clone(), None)], "newest first");

    let mut socket = ChatClient::connect(&server, &alice).await;
    socket.say(&with_bob, "to bob").await;
    let after = server.get("/v1/conversations", Some(&alice.tokens.access)).await;
    assert_eq!(listed(&after), [(with_bob.clone(), Some("to bob".into())), (with_carol.clone(), None)]);
    socket.say(&with_carol, "to carol").await;
    socket.say(&with_carol, "to carol again").await;
    let page = server.get("/v1/conversations?limit=1", Some(&alice.tokens.access)).await;
    assert_eq!(listed(&page), [(with_carol.clone(), Some("to carol again".into()))]);
    let cursor = page.body["next_cursor"].as_str().expect("a second page");
    let next = server.get(&format!("/v1/conversations?limit=1&cursor={cursor}"), Some(&alice.tokens.access)).await;
    assert_eq!(listed(&next), [(with_bob.clone(), Some("to bob".into()))]);
    assert_eq!(
        listed(&server.get("/v1/conversations", Some(&bob.tokens.access)).await),
        [(with_bob, Some("to bob".into()))]
    );
    assert_eq!(page.body["conversations"][0]["initiator"]["username"], carol.username.as_str());
}

#[tokio::test]
async fn a_ticket_opens_one_connection_and_nothing_else_does() {
    let server = TestServer::start(Backend::Embedded).await;
    let alice = chat_user(&server, "alice").await;
    let ticket = ticket(&server, &alice).await;
    ChatClient::connect_with(&server, &format!("?ticket={ticket}")).await.expect("the first use opens");
    assert_eq!(ChatClient::connect_with(&server, &format!("?ticket={ticket}")).await.err(), Some(401), "single use");
    assert_eq!(ChatClient::connect_with(&server, "").await.err(), Some(401), "no ticket");
    assert_eq!(ChatClient::connect_with(&server, "?ticket=made-up").await.err(), Some(401));
    assert_eq!(
        ChatClient::connect_with(&server, &format!("?ticket={}", alice.tokens.access)).await.err(),
        Some(401),
        "an access token is no ticket"
    );

    // Without the ticket in the URL: as a subprotocol, the way browsers can send it.
    let url = format!("{}/v1/chat/ws", server.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    let protocols = format!("latchkey-chat, latchkey-ticket.{}", self::ticket(&server, &alice).await);
    request.headers_mut().insert("sec-websocket-protocol", protocols.parse().unwrap());
    let (_, response) = tokio_tungstenite::connect_async(request).await.expect("the subprotocol ticket opens");
    assert_eq!(response.headers()["sec-websocket-protocol"], "latchkey-chat");

    // A ticket is good for 30 seconds.
    let late = self::ticket(&server, &alice).await;
    let key = latchkey::store::Key::new(format!("CHAT_TICKET#{}", latchkey::crypto::secrets::hash(&late)), "TICKET");
    let mut item = server.store.get(&key).await.unwrap().expect("the ticket is stored by its hash");
    let expired = item.attributes["expires_at"].as_i64().unwrap() - 31;
    item.attributes.insert("expires_at".into(), json!(expired));
    server.store.write(vec![latchkey::store::Write::put(item, latchkey::store::Condition::Always)]).await.unwrap();
    assert_eq!(ChatClient::connect_with(&server, &format!("?ticket={late}")).await.err(), Some(401), "expired");
}

#[tokio::test]
async fn a_flood_from_one_connection_is_throttled() {
    let server = TestServer::start_with(Backend::Embedded, Config { chat_rate_limit: 5, ..test_config() }).await;
    let (alice, bob) = (chat_user(&server, "alice").await, chat_user(&server, "bob").await);
    let id = conversation(&server, &alice, &bob).await;
    let mut socket = ChatClient::connect(&server, &alice).await;
    for n in 0..8 {
        socket.send(&id, &format!("spam {n}"), &format!("s{n}")).await;
    }
    let mut frames = Vec::new();
    for _ in 0..8 {
        frames.push(socket.next().await);
    }
    assert_eq!(frames.iter().filter(|f| f["type"] == "ack").count(), 5, "{frames:?}");
    let refused: Vec<&Value> = frames.iter().filter(|f| f["type"] == "error").collect();
    assert_eq!(refused.len(), 3);
    for frame in refused {
        assert_eq!(error_status(frame), "RESOURCE_EXHAUSTED");
        assert_eq!(frame["error"]["details"][0]["reason"], "TOO_MANY_MESSAGES");
        assert!(frame["error"]["details"][0]["retry_after_seconds"].as_i64().unwrap() >= 1);
    }
    let stored = server.get(&format!("/v1/conversations/{id}?limit=100"), Some(&bob.tokens.access)).await;
    assert_eq!(stored.body["messages"].as_array().unwrap().len(), 5, "refused messages are not stored");
}

#[tokio::test]
async fn an_open_chat_connection_counts_as_connected_and_a_gone_one_is_forgotten() {
    let server = TestServer::start(Backend::Embedded).await;
    let (alice, bob) = (chat_user(&server, "alice").await, chat_user(&server, "bob").await);
    let id = conversation(&server, &alice, &bob).await;
    let socket = ChatClient::connect(&server, &bob).await;
    server.post_authorized("/v1/auth/logout-all", &bob.tokens.access, json!({})).await;
    // Bob as the directory shows him to other users.
    let profile_path = format!("/v1/users?filter_name=^{}$", bob.username);
    let is_connected =
        async || server.get(&profile_path, Some(&alice.tokens.access)).await.body["users"][0]["is_connected"] == true;
    assert!(is_connected().await, "no session, but an open socket");
    socket.close().await;
    let mut connected = true;
    for _ in 0..50 {
        connected = is_connected().await;
        if !connected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!connected, "closing the socket ends the presence");

    // A connection record whose socket is gone (a missed disconnect) is dropped at delivery.
    let chat = ChatRepo::new(server.store.clone());
    let bob_id = latchkey::domain::UserId::parse(&bob.tokens.user_id).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let stale = ChatConnection {
        connection_id: "stale".into(),
        user_id: bob_id,
        session_epoch: 0,
        ttl: now + 600,
        window_start: now,
        window_count: 0,
    };
    chat.add_connection(&stale).await.unwrap();
    assert_eq!(chat.live_connections(bob_id, 0, now).await.unwrap(), ["stale"]);
    ChatClient::connect(&server, &alice).await.say(&id, "anyone?").await;
    assert!(chat.live_connections(bob_id, 0, now).await.unwrap().is_empty(), "the gone connection was removed");
}

#[tokio::test]
async fn a_password_change_ends_what_the_old_logins_opened() {
    let server = TestServer::start(Backend::Embedded).await;
    let (alice, bob) = (chat_user(&server, "alice").await, chat_user(&server, "bob").await);
    let id = conversation(&server, &alice, &bob).await;
    let mut socket = ChatClient::connect(&server, &alice).await;
    socket.say(&id, "before").await;
    let unused_ticket = ticket(&server, &alice).await;
    let change = json!({ "current_password": latchkey_tests::PASSWORD, "new_password": "a whole new passphrase" });
    let changed = server.post_authorized("/v1/auth/password/change", &alice.tokens.access, change).await;
    assert_eq!(changed.status, 200, "{}", changed.body);

    socket.send(&id, "after", "late").await;
    let refused = socket.next().await;
    assert_eq!(error_status(&refused), "UNAUTHENTICATED", "{refused}");
    assert_eq!(refused["error"]["details"][0]["reason"], "INVALID_TICKET");
    let stored = server.get(&format!("/v1/conversations/{id}"), Some(&bob.tokens.access)).await;
    assert_eq!(stored.body["messages"].as_array().unwrap().len(), 1, "only the message sent before the change");
    let late = ChatClient::connect_with(&server, &format!("?ticket={unused_ticket}")).await;
    assert_eq!(late.err(), Some(401), "a ticket issued before the change opens nothing");
}

#[tokio::test]
async fn a_socket_opened_before_a_password_change_no_longer_receives_or_counts_as_presence() {
    let server = TestServer::start(Backend::Embedded).await;
    let (alice, bob) = (chat_user(&server, "alice").await, chat_user(&server, "bob").await);
    let id = conversation(&server, &alice, &bob).await;
    let _old_socket = ChatClient::connect(&server, &bob).await;
    let change = json!({ "current_password": latchkey_tests::PASSWORD, "new_password": "a whole new passphrase" });
    assert_eq!(server.post_authorized("/v1/auth/password/change", &bob.tokens.access, change).await.status, 200);
    server.post_authorized("/v1/auth/logout-all", &bob.tokens.access, json!({})).await;

    let directory = format!("/v1/users?filter_name=^{}$", bob.username);
    let listed = server.get(&directory, Some(&alice.tokens.access)).await;
    assert_eq!(listed.body["users"][0]["is_connected"], false, "the old socket speaks for no one");
    let bob_id = latchkey::domain::UserId::parse(&bob.tokens.user_id).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let chat = ChatRepo::new(server.store.clone());
    assert!(chat.live_connections(bob_id, 1, now).await.unwrap().is_empty(), "nothing is pushed to it");
    ChatClient::connect(&server, &alice).await.say(&id, "still there?").await;
}

/// One of `events/chat-ws/*.json` (as API Gateway sends it to the `chat-ws` function), with
/// its placeholders filled in.
fn websocket_event(name: &str, replacements: &[(&str, &str)]) -> ApiGatewayWebsocketProxyRequest {
    let path = format!("{}/../events/chat-ws/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (placeholder, value) in replacements {
        raw = raw.replace(placeholder, value);
    }
    serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{name}: not a WebSocket event: {e}"))
}

/// What moto's Management API received for each connection (`PostToConnection` bodies).
async fn posted_to_connections() -> Value {
    let url = format!("{}/latchkey/websocket-posts", latchkey_tests::aws_endpoint());
    latchkey_tests::http_client().get(url).send().await.expect("moto").json().await.expect("JSON")
}

/// The `chat-ws` function's handler, fed the sample events, on DynamoDB and delivering through
/// the API Gateway Management API, both in moto.
#[tokio::test]
async fn the_websocket_function_opens_connections_relays_through_post_to_connection_and_closes() {
    let server = TestServer::start(Backend::DynamoDb).await;
    let (alice, bob) = (chat_user(&server, "alice").await, chat_user(&server, "bob").await);
    let id = conversation(&server, &alice, &bob).await;
    let outbox = tempfile::tempdir().unwrap();
    let mailer = latchkey::mail::outbox::Outbox::new(outbox.path(), latchkey::kernel::sender(&test_config())).unwrap();
    let keys = latchkey_tests::fresh_keys();
    let kernel = Kernel::new(test_config(), server.store.clone(), &keys, Arc::new(mailer), None).unwrap();
    let chat = ChatService::new(&kernel);
    let clients = ManagementClients::new(latchkey_tests::aws_sdk_config(), Some(latchkey_tests::aws_endpoint()));
    let (alice_connection, bob_connection) =
        (format!("alice-{}", uuid::Uuid::new_v4()), format!("bob-{}", uuid::Uuid::new_v4()));

    let alice_ticket = ticket(&server, &alice).await;
    for (connection, ticket) in
        [(&alice_connection, alice_ticket.clone()), (&bob_connection, ticket(&server, &bob).await)]
    {
        let event =
            websocket_event("connect", &[("REPLACE_WITH_TICKET", &ticket), ("REPLACE_WITH_CONNECTION_ID", connection)]);
        let response = handle(&chat, &clients, event).await;
        assert_eq!(response.status_code, 200, "{:?}", response.body);
        assert_eq!(response.headers["sec-websocket-protocol"], "latchkey-chat", "the offered subprotocol is accepted");
    }
    for ticket in [alice_ticket.as_str(), "made-up"] {
        let event =
            websocket_event("connect", &[("REPLACE_WITH_TICKET", ticket), ("REPLACE_WITH_CONNECTION_ID", "intruder")]);
        assert_eq!(handle(&chat, &clients, event).await.status_code, 401, "a spent or unknown ticket opens nothing");
    }

    let send = websocket_event(
        "send-message",
        &[("REPLACE_WITH_CONNECTION_ID", &alice_connection), ("REPLACE_WITH_CONVERSATION_ID", &id)],
    );
    assert_eq!(handle(&chat, &clients, send).await.status_code, 200);
    let posts = posted_to_connections().await;
    let to_bob = posts[&bob_connection].as_str().expect("a post to Bob's connection");
    assert!(to_bob.contains(r#""type":"message""#) && to_bob.contains("hello from Lambda"), "{to_bob}");
    let to_alice = posts[&alice_connection].as_str().expect("an ack to Alice's connection");
    assert!(to_alice.contains(r#""type":"ack""#) && to_alice.contains(r#""client_id":"c-1""#), "{to_alice}");
    let stored = server.get(&format!("/v1/conversations/{id}"), Some(&bob.tokens.access)).await;
    assert_eq!(stored.body["messages"][0]["text"], "hello from Lambda");

    let nowhere = uuid::Uuid::now_v7().to_string();
    let lost = websocket_event(
        "send-message",
        &[("REPLACE_WITH_CONNECTION_ID", &alice_connection), ("REPLACE_WITH_CONVERSATION_ID", &nowhere)],
    );
    assert_eq!(handle(&chat, &clients, lost).await.status_code, 200, "a refused frame keeps the connection");
    let to_alice = posted_to_connections().await[&alice_connection].as_str().unwrap().to_owned();
    assert!(to_alice.contains(r#""type":"error""#) && to_alice.contains("NOT_FOUND"), "{to_alice}");

    let disconnect = websocket_event("disconnect", &[("REPLACE_WITH_CONNECTION_ID", &bob_connection)]);
    assert_eq!(handle(&chat, &clients, disconnect).await.status_code, 200);
    let bob_id = latchkey::domain::UserId::parse(&bob.tokens.user_id).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(ChatRepo::new(server.store.clone()).live_connections(bob_id, 0, now).await.unwrap().is_empty());
}

/// A message is at most 4 KiB: a frame far past what one message can take closes the
/// connection instead of being buffered whole.
#[tokio::test]
async fn a_frame_far_larger_than_any_message_closes_the_connection() {
    let server = TestServer::start(Backend::Embedded).await;
    let (alice, bob) = (chat_user(&server, "alice").await, chat_user(&server, "bob").await);
    let ours = conversation(&server, &alice, &bob).await;
    let mut socket = ChatClient::connect(&server, &alice).await;
    // The largest real message, every character escaped, is still accepted (and refused by
    // the text limit only if too long).
    let escaped = format!(
        r#"{{"action": "send_message", "conversation_id": "{ours}", "text": "{}", "client_id": "big"}}"#,
        "\\u00e9".repeat(2048)
    );
    socket.send_raw(&escaped).await;
    assert_eq!(socket.next().await["type"], "ack");
    let huge = json!({ "action": "send_message", "conversation_id": ours, "text": "x".repeat(64 * 1024), "client_id": "huge" });
    let _ = socket.socket.send(WsMessage::Text(huge.to_string().into())).await;
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.socket.next()).await.expect("the server answers") {
            None | Some(Err(_)) => break true,
            Some(Ok(WsMessage::Close(_))) => break true,
            Some(Ok(WsMessage::Text(text))) => panic!("the frame was read: {text}"),
            Some(Ok(_)) => {}
        }
    };
    assert!(closed);
}
