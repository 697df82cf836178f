//! The Lambda path on one machine, for tests and for trying the deployed shape without an AWS
//! account or Docker: every function binary runs under a Runtime API as Lambda runs it, behind
//! an HTTP API and a WebSocket API that read their routes from `template.yaml` and speak API
//! Gateway's event formats, with the environment the template gives each function; AWS itself
//! is whatever the AWS endpoint names (moto's server, in tests).

mod gateway;
pub mod provision;
pub mod runtime;
pub mod template;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use runtime::{Function, Launch, Stats};
use template::{Bindings, Template};

/// What the emulator runs, and against which AWS.
pub struct Settings {
    pub template: PathBuf,
    /// Where the function binaries are (`target/debug`, or `target/release`).
    pub binary_dir: PathBuf,
    /// Template parameters, as `sam deploy --parameter-overrides` gives them.
    pub parameters: BTreeMap<String, String>,
    /// What `!Ref` of each resource stands for: `Table`, `SigningKeySecret`, `AvatarBucket`.
    pub resources: BTreeMap<String, String>,
    /// The AWS endpoint every function's SDK calls (`AWS_ENDPOINT_URL`).
    pub aws_endpoint: String,
    /// Variables every function gets besides the template's (test settings, say).
    pub extra_environment: Vec<(String, String)>,
    /// Where the HTTP API and the WebSocket API listen (bound by the caller, which may need
    /// the address for a parameter such as `PublicUrl`).
    pub http_listener: TcpListener,
    pub websocket_listener: TcpListener,
    pub show_logs: bool,
}

/// The running APIs; dropping it stops them and every function instance.
pub struct Emulator {
    pub http_url: String,
    /// `ws://<address>/<stage>`, when the template has a WebSocket API.
    pub websocket_url: Option<String>,
    /// The template's parameters as the functions see them.
    pub parameters: BTreeMap<String, String>,
    functions: Vec<Arc<Function>>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        let bindings = Bindings { parameters: &settings.parameters, resources: &settings.resources };
        let template = Template::load(&settings.template, &bindings)?;
        let (http, websocket) = (settings.http_listener, settings.websocket_listener);
        let http_url = format!("http://{}", http.local_addr()?);
        let websocket_domain = websocket.local_addr()?.to_string();
        let mut environment = vec![
            ("AWS_ENDPOINT_URL".to_owned(), settings.aws_endpoint.clone()),
            ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID".to_owned(), "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "test".to_owned()),
        ];
        environment.extend(settings.extra_environment.iter().cloned());
        let launch = Launch { binary_dir: settings.binary_dir.clone(), environment, show_logs: settings.show_logs };
        let functions: Vec<Arc<Function>> = template
            .functions
            .iter()
            .map(|spec| {
                let mut launch = launch.clone();
                if let Some(socket) = template.websocket.as_ref().filter(|socket| socket.function == spec.logical_id) {
                    // Management API calls come here (the endpoint a custom domain would fix).
                    let endpoint = format!("http://{websocket_domain}/{}", socket.stage);
                    launch.environment.push(("LATCHKEY_WEBSOCKET_ENDPOINT".to_owned(), endpoint));
                }
                Arc::new(Function::new(spec.clone(), launch))
            })
            .collect();
        let mut servers = vec![serve(http, gateway::HttpApi::new(&functions).router())];
        let mut websocket_url = None;
        if let Some(socket) = &template.websocket {
            let function = functions
                .iter()
                .find(|function| function.spec.logical_id == socket.function)
                .with_context(|| format!("the WebSocket API's function {} is not in the template", socket.function))?;
            websocket_url = Some(format!("ws://{websocket_domain}/{}", socket.stage));
            let api = gateway::WebSocketApi::new(socket.clone(), Arc::clone(function), websocket_domain);
            servers.push(serve(websocket, api.router()));
        }
        Ok(Self { http_url, websocket_url, parameters: template.parameters, functions, servers })
    }

    /// Ends every idle instance: the next request to each function is a cold start.
    pub fn stop_instances(&self) {
        for function in &self.functions {
            function.stop();
        }
    }

    /// The function whose binary is `binary`.
    pub fn function(&self, binary: &str) -> Option<&Function> {
        self.functions.iter().find(|function| function.spec.binary == binary).map(|function| &**function)
    }

    /// Each function's binary and what its instances did so far.
    pub fn stats(&self) -> Vec<(String, u64, Stats)> {
        self.functions.iter().map(|f| (f.spec.binary.clone(), f.spec.memory_mb, f.stats())).collect()
    }
}

fn serve(listener: TcpListener, router: axum::Router) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, app).await;
    })
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
        // Idle instances end now; a busy one when its invocation does.
        for function in &self.functions {
            function.stop();
        }
    }
}
