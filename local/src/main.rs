//! `latchkey-local`: every Latchkey route on one port, on the embedded store, no AWS needed;
//! `latchkey-local admin ...`, which makes the first admin of a store (local or DynamoDB); and
//! `latchkey-local openapi`, which prints the API contract (`openapi.yaml`).

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use latchkey::config::Config;
use latchkey::domain::{Email, Password};
use latchkey::features::directory::AdminBootstrap;
use latchkey::http::server::ServerLimits;
use latchkey::store::ItemStore;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on.
    #[arg(long, env = "LATCHKEY_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Where clients reach this server, for the signed avatar URLs it hands out (default: the
    /// address it listens on).
    #[arg(long, env = "LATCHKEY_PUBLIC_URL")]
    public_url: Option<String>,
    /// Directory for the database, the signing key and the mail outbox (created if missing).
    #[arg(long, global = true, env = "LATCHKEY_DATA_DIR", default_value = "./.latchkey")]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Create or promote admins. There are no default accounts: this is how the first admin is made.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Print the OpenAPI document generated from the code (what `openapi.yaml` holds).
    Openapi,
    /// Serve the deployed shape: every function binary under a Lambda Runtime API, behind an
    /// HTTP API and a WebSocket API read from template.yaml, against the AWS endpoint given
    /// (moto's server: `scripts/lambda-local` starts one and builds the binaries).
    Lambda(LambdaArgs),
}

#[derive(Args)]
struct LambdaArgs {
    /// The AWS endpoint the functions call (DynamoDB, SES, S3, Secrets Manager).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    aws_endpoint: String,
    /// Where the HTTP API listens.
    #[arg(long, default_value = "127.0.0.1:3000")]
    http_addr: SocketAddr,
    /// Where the WebSocket API listens (its stage is the path: ws://<addr>/v1).
    #[arg(long, default_value = "127.0.0.1:3001")]
    websocket_addr: SocketAddr,
    /// The directory holding the function binaries.
    #[arg(long, default_value = "target/debug")]
    binaries: PathBuf,
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// A template parameter, as NAME=VALUE (repeatable), as `sam deploy --parameter-overrides`.
    #[arg(long = "parameter", value_parser = parse_parameter)]
    parameters: Vec<(String, String)>,
    /// Names the table, secret and bucket made in the AWS endpoint (`<stack>-table`, ...).
    #[arg(long, default_value = "latchkey-local")]
    stack: String,
}

fn parse_parameter(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
    Ok((name.to_owned(), value.to_owned()))
}

#[derive(Subcommand)]
enum AdminAction {
    /// Create an account with the admin role. The password is read from LATCHKEY_ADMIN_PASSWORD
    /// if set, else from standard input.
    Create(Target),
    /// Give an existing account the admin role.
    Grant(Target),
}

#[derive(Args)]
struct Target {
    /// The account's email address.
    #[arg(long)]
    email: String,
    /// The DynamoDB table of a deployed stack (AWS credentials and region from the usual
    /// environment), instead of the local data directory.
    #[arg(long, env = "LATCHKEY_TABLE")]
    table: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    latchkey::http::logging::init_tracing();
    let cli = Cli::parse();
    let config = Config::from_env()?;
    match cli.command {
        None => serve(config, cli.addr, cli.public_url, cli.data_dir).await,
        Some(Command::Admin { action }) => admin(config, action, cli.data_dir).await,
        Some(Command::Openapi) => {
            print!("{}", latchkey::openapi::yaml());
            Ok(())
        }
        Some(Command::Lambda(args)) => lambda(args).await,
    }
}

async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))
}

async fn lambda(args: LambdaArgs) -> anyhow::Result<()> {
    use latchkey_local::emulator::{Emulator, Settings, provision};
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&args.aws_endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "local"))
        .load()
        .await;
    let (table, secret, bucket) =
        (format!("{}-table", args.stack), format!("{}-signing-keys", args.stack), format!("{}-avatars", args.stack));
    provision::table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await?;
    let keys = latchkey::crypto::keys::KeyMaterial {
        kid: "k1".into(),
        seed: latchkey::crypto::secrets::generate(),
        retired: vec![],
    };
    provision::signing_key_secret(&sdk, &secret, &keys).await?;
    provision::bucket(&sdk, &bucket).await?;
    let resources = [("Table", table), ("SigningKeySecret", secret), ("AvatarBucket", bucket)]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    let emulator = Emulator::start(Settings {
        template: args.template,
        binary_dir: args.binaries,
        parameters: args.parameters.into_iter().collect(),
        resources,
        aws_endpoint: args.aws_endpoint,
        extra_environment: vec![("LATCHKEY_S3_FORCE_PATH_STYLE".into(), "true".into())],
        http_listener: bind(args.http_addr).await?,
        websocket_listener: bind(args.websocket_addr).await?,
        show_logs: true,
    })
    .await?;
    if let Some(from) = emulator.parameters.get("MailFrom") {
        provision::mail_identity(&sdk, from).await?;
    }
    println!("HTTP API: {}", emulator.http_url);
    if let Some(url) = &emulator.websocket_url {
        println!("WebSocket API: {url}");
    }
    let _ = tokio::signal::ctrl_c().await;
    // What each function's instances did: for sizing MemorySize (docs/lambda.md).
    for (binary, memory_mb, stats) in emulator.stats() {
        if stats.inits.is_empty() {
            continue;
        }
        println!(
            "{binary}: {} instance(s), peak RSS {} KiB, MemorySize {memory_mb} MB",
            stats.inits.len(),
            stats.peak_rss_kib
        );
    }
    Ok(())
}

async fn serve(
    mut config: Config,
    addr: SocketAddr,
    public_url: Option<String>,
    data_dir: PathBuf,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    // Signed object URLs and the sign-in providers' callback point back at this server.
    let public_url = public_url.unwrap_or_else(|| format!("http://{bound}"));
    config.public_url = Some(public_url.trim_end_matches('/').to_owned());
    let (kernel, objects) = latchkey::app::embedded_kernel(config, &data_dir, &public_url)?;
    tracing::info!(addr = %bound, data_dir = %data_dir.display(), "latchkey-local is serving");
    let app = latchkey::app::local_app(&kernel, objects);
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    latchkey::http::server::serve(listener, app, ServerLimits::default(), stop).await?;
    Ok(())
}

async fn admin(config: Config, action: AdminAction, data_dir: PathBuf) -> anyhow::Result<()> {
    let (AdminAction::Create(target) | AdminAction::Grant(target)) = &action;
    let email = Email::parse(&target.email).map_err(|error| anyhow::anyhow!("--email {}: {error}", target.email))?;
    let store: Arc<dyn ItemStore> = match &target.table {
        Some(table) => {
            let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            Arc::new(latchkey::store::dynamodb::DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table))
        }
        None => {
            latchkey::private_files::create_dir(&data_dir)
                .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
            Arc::new(latchkey::store::embedded::EmbeddedStore::open(&data_dir.join("latchkey.redb"))?)
        }
    };
    let bootstrap = AdminBootstrap::new(store, &config)?;
    let user = match action {
        AdminAction::Create(_) => {
            let password = Password::new(read_password()?, config.password_policy)
                .map_err(|error| anyhow::anyhow!("the password {error}"))?;
            bootstrap.create(email, password).await?
        }
        AdminAction::Grant(_) => bootstrap.grant(email).await?,
    };
    println!("{} ({}) is an admin", user.account_label(), user.id);
    Ok(())
}

/// The new admin's password: from LATCHKEY_ADMIN_PASSWORD (for scripts), else one line of
/// standard input, read without echo when it is a terminal.
fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("LATCHKEY_ADMIN_PASSWORD") {
        return Ok(password);
    }
    if std::io::stdin().is_terminal() {
        return Ok(rpassword::prompt_password("Password for the new admin: ")?);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password: set LATCHKEY_ADMIN_PASSWORD or write it to standard input");
    }
    Ok(password)
}
