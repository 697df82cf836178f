//! The smallest `lambda_http` function: what a cold start costs before any of Latchkey's own
//! work (configuration, SDK clients, the signing-key secret). The Lambda benchmark compares
//! every function with it.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async { Ok::<_, Error>(Response::new(Body::from("hello"))) })).await
}
