//! One structured log line per request: method, route, status, latency, request id.
//! Bodies, headers and query strings are never logged: they carry passwords and tokens.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// The request id the platform assigned (API Gateway's, via the Lambda adapter), if any.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".to_owned());
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let response = next.run(request).await;
    tracing::info!(
        %method,
        route,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id,
        "request"
    );
    response
}

/// Logs as JSON when Lambda asks for it (`AWS_LAMBDA_LOG_FORMAT=JSON`), as text otherwise.
/// The levels come from `RUST_LOG` (`info`, `debug`, `latchkey=debug,info`: a level, and
/// levels per target; default `info`). Targets, not `EnvFilter`: its span and field filters
/// would link a regular-expression engine into every function.
pub fn init_tracing() {
    use std::str::FromStr;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let levels = std::env::var("RUST_LOG").ok().and_then(|levels| Targets::from_str(&levels).ok());
    let filter = levels.unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    // Colour only for a person at a terminal: escape codes garble files and log services.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let layer = tracing_subscriber::fmt::layer().with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter);
    let result = match json {
        true => registry.with(layer.json().with_current_span(false).without_time()).try_init(),
        false => registry.with(layer).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}
