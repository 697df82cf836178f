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
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = log_levels(std::env::var("RUST_LOG").ok().as_deref());
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

/// `RUST_LOG` as levels: comma-separated `level` or `target=level` entries, spaces and empty
/// entries ignored; `info` when it is unset, empty or not understood.
fn log_levels(raw: Option<&str>) -> tracing_subscriber::filter::Targets {
    use std::str::FromStr;
    use tracing_subscriber::filter::Targets;
    let entries: Vec<&str> = raw.unwrap_or_default().split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
    // A bare word that is not a level would be read as a target with no level: nothing logs.
    let understood = !entries.is_empty()
        && entries.iter().all(|entry| entry.contains('=') || tracing::Level::from_str(entry).is_ok());
    match understood {
        true => {
            Targets::from_str(&entries.join(",")).unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO))
        }
        false => Targets::new().with_default(tracing::Level::INFO),
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::log_levels;

    /// The most verbose level `RUST_LOG` enables for `target`.
    fn level(raw: Option<&str>, target: &str) -> Option<Level> {
        let levels = log_levels(raw);
        [Level::TRACE, Level::DEBUG, Level::INFO, Level::WARN, Level::ERROR]
            .into_iter()
            .find(|level| levels.would_enable(target, level))
    }

    #[test]
    fn rust_log_takes_a_level_or_levels_per_target_and_falls_back_to_info() {
        assert_eq!(level(None, "latchkey"), Some(Level::INFO));
        assert_eq!(level(Some(""), "latchkey"), Some(Level::INFO));
        assert_eq!(level(Some("debug "), "latchkey"), Some(Level::DEBUG));
        assert_eq!(level(Some("info,"), "latchkey"), Some(Level::INFO));
        assert_eq!(level(Some("warn, latchkey=debug"), "latchkey::kernel"), Some(Level::DEBUG));
        assert_eq!(level(Some("warn, latchkey=debug"), "hyper"), Some(Level::WARN));
        assert_eq!(level(Some("verbose"), "latchkey"), Some(Level::INFO), "not a level: the default");
    }
}
