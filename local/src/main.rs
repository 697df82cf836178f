//! `latchkey-local`: every Latchkey route on one port, on the embedded store, no AWS needed.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use latchkey::config::Config;
use latchkey::http::{Function, router};

#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "LATCHKEY_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Directory for the database, the signing key and the mail outbox (created if missing).
    #[arg(long, env = "LATCHKEY_DATA_DIR", default_value = "./.latchkey")]
    data_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    latchkey::http::logging::init_tracing();
    let args = Args::parse();
    let config = Config::from_env()?;
    let state = latchkey::app::embedded_state(config, &args.data_dir)?;
    let listener =
        tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
    tracing::info!(addr = %listener.local_addr()?, data_dir = %args.data_dir.display(), "latchkey-local is serving");
    // The peer address is what per-address throttling counts.
    let app = router(&Function::ALL, state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
