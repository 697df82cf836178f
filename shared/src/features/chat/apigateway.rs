//! The chat edge on AWS: the `chat-ws` function behind an API Gateway WebSocket API
//! (`$connect`, `$disconnect`, `send_message`, `$default`), delivering frames with the API
//! Gateway Management API's `PostToConnection`.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::error::{DisplayErrorContext, SdkError};
use aws_sdk_apigatewaymanagement::primitives::Blob;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest, ApiGatewayWebsocketProxyRequestContext,
};
use lambda_http::aws_lambda_events::encodings::Body;
use lambda_http::http::{HeaderMap, HeaderValue};

use super::frames::{
    ChatDelivery, DeliveryError, SUBPROTOCOL, ServerFrame, handle_frame, offers_subprotocol, ticket_of,
};
use super::service::{ChatError, ChatService};
use crate::http::error::ApiError;

pub struct ApiGatewayDelivery {
    client: Client,
}

#[async_trait]
impl ChatDelivery for ApiGatewayDelivery {
    async fn push(&self, connection_id: &str, frame: &ServerFrame) -> Result<(), DeliveryError> {
        let sent =
            self.client.post_to_connection().connection_id(connection_id).data(Blob::new(frame.to_json())).send().await;
        match sent {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(error)) if error.err().is_gone_exception() => Err(DeliveryError::Gone),
            Err(error) => Err(DeliveryError::Failed(DisplayErrorContext(error).to_string())),
        }
    }
}

/// Management API clients, built once per endpoint: `https://<domain>/<stage>` of the event,
/// unless an endpoint is fixed (a custom domain without the stage path, or a test server).
pub struct ManagementClients {
    sdk: aws_config::SdkConfig,
    fixed_endpoint: Option<String>,
    clients: Mutex<HashMap<String, Client>>,
}

impl ManagementClients {
    pub fn new(sdk: aws_config::SdkConfig, fixed_endpoint: Option<String>) -> Self {
        Self { sdk, fixed_endpoint, clients: Mutex::new(HashMap::new()) }
    }

    fn delivery_for(&self, context: &ApiGatewayWebsocketProxyRequestContext) -> ApiGatewayDelivery {
        let endpoint = self.fixed_endpoint.clone().unwrap_or_else(|| {
            let domain = context.domain_name.as_deref().unwrap_or_default();
            format!("https://{domain}/{}", context.stage.as_deref().unwrap_or_default())
        });
        let mut clients = self.clients.lock().expect("not poisoned");
        let client = clients.entry(endpoint.clone()).or_insert_with(|| {
            let config = aws_sdk_apigatewaymanagement::config::Builder::from(&self.sdk).endpoint_url(endpoint).build();
            Client::from_conf(config)
        });
        ApiGatewayDelivery { client: client.clone() }
    }
}

/// Handles one WebSocket event: opens the connection with its ticket, forgets it on
/// disconnect, and hands every other frame to the shared frame handling.
pub async fn handle(
    chat: &ChatService,
    clients: &ManagementClients,
    event: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let context = &event.request_context;
    let Some(connection_id) = context.connection_id.as_deref() else {
        return respond(ApiError::from(ChatError::InvalidTicket).body(), 400, None);
    };
    match context.route_key.as_deref() {
        Some("$connect") => {
            let protocols = event.headers.get("sec-websocket-protocol").and_then(|value| value.to_str().ok());
            let ticket = ticket_of(event.query_string_parameters.first("ticket"), protocols);
            let opened = match ticket {
                Some(ticket) => chat.open_chat_connection(&ticket, connection_id).await,
                None => Err(ChatError::InvalidTicket),
            };
            match opened {
                // A browser that offered our subprotocol must see it accepted.
                Ok(_) => respond(serde_json::json!({}), 200, offers_subprotocol(protocols).then_some(SUBPROTOCOL)),
                Err(error) => {
                    let error = ApiError::from(error);
                    let status = error.status();
                    respond(error.body(), status, None)
                }
            }
        }
        Some("$disconnect") => {
            if let Err(error) = chat.close_chat_connection(connection_id).await {
                tracing::warn!(%error, "a closed chat connection was not removed");
            }
            respond(serde_json::json!({}), 200, None)
        }
        _ => {
            let delivery = clients.delivery_for(context);
            handle_frame(chat, connection_id, event.body.as_deref().unwrap_or_default(), &delivery).await;
            respond(serde_json::json!({}), 200, None)
        }
    }
}

fn respond(body: serde_json::Value, status: u16, protocol: Option<&'static str>) -> ApiGatewayProxyResponse {
    let mut headers = HeaderMap::new();
    if let Some(protocol) = protocol {
        headers.insert("sec-websocket-protocol", HeaderValue::from_static(protocol));
    }
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = Some(Body::Text(body.to_string()));
    response
}
