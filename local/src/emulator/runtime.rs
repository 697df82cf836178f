//! Function binaries run as Lambda runs them: each instance is a process whose
//! `AWS_LAMBDA_RUNTIME_API` is a Runtime API served here, which hands it one event at a time
//! (`GET .../invocation/next`) and takes its answer (`POST .../invocation/{id}/response` or
//! `/error`). A function keeps its warm instances and starts another when all are busy.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};

use super::template::FunctionSpec;

/// Why an invocation has no answer; API Gateway answers each with its own status.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("the function's binary cannot be started: {0}")]
    Start(String),
    #[error("the function failed: {0}")]
    Failed(String),
    #[error("the function did not answer within its timeout")]
    TimedOut,
}

/// What each instance's process is given besides its template environment.
#[derive(Clone)]
pub struct Launch {
    pub binary_dir: PathBuf,
    /// The AWS endpoint, region and credentials, and any settings the caller adds.
    pub environment: Vec<(String, String)>,
    /// Whether the processes' log lines reach this process's standard error.
    pub show_logs: bool,
}

/// The most instances of one function at once; more invocations wait for one to be free
/// (as a reserved concurrency would make them, less the throttling).
const MAX_INSTANCES: usize = 8;
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// One function: its spec, and its idle warm instances.
pub struct Function {
    pub spec: FunctionSpec,
    launch: Launch,
    busy: tokio::sync::Semaphore,
    idle: Mutex<Vec<Instance>>,
    stats: Mutex<Stats>,
}

/// What a function's instances have done, for the benchmarks.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Exec to the first poll for an event, per instance started.
    pub inits: Vec<Duration>,
    /// Event handed over to answer received: each instance's first invocation, and the rest.
    pub first_invocations: Vec<Duration>,
    pub later_invocations: Vec<Duration>,
    /// The largest resident set (`VmHWM`) any instance reached, in KiB.
    pub peak_rss_kib: u64,
}

impl Function {
    pub fn new(spec: FunctionSpec, launch: Launch) -> Self {
        let busy = tokio::sync::Semaphore::new(MAX_INSTANCES);
        Self { spec, launch, busy, idle: Mutex::new(Vec::new()), stats: Mutex::new(Stats::default()) }
    }

    /// Runs one event through a warm instance, or a new one when none is idle.
    pub async fn invoke(&self, event: Vec<u8>) -> Result<Vec<u8>, InvokeError> {
        let _permit = self.busy.acquire().await.map_err(|_| InvokeError::Failed("stopped".into()))?;
        let idle = self.idle.lock().unwrap().pop();
        let mut instance = match idle {
            Some(instance) => instance,
            None => self.start().await?,
        };
        let timeout = Duration::from_secs(self.spec.timeout_seconds);
        let started = Instant::now();
        let outcome = instance.invoke(event, timeout).await;
        {
            let mut stats = self.stats.lock().unwrap();
            let invocations =
                if instance.invoked { &mut stats.later_invocations } else { &mut stats.first_invocations };
            invocations.push(started.elapsed());
        }
        instance.invoked = true;
        self.note_peak(&instance);
        // An instance that failed or timed out is not reused (Lambda restarts it).
        if outcome.is_ok() {
            self.idle.lock().unwrap().push(instance);
        }
        outcome
    }

    /// Ends the idle instances (the next invocation starts a new one: a cold start).
    pub fn stop(&self) {
        let mut idle = self.idle.lock().unwrap();
        for instance in idle.iter() {
            self.note_peak(instance);
        }
        idle.clear();
    }

    /// The CPU time the idle instances' processes have used, every thread counted.
    pub fn cpu_time(&self) -> Duration {
        self.idle.lock().unwrap().iter().filter_map(Instance::cpu_time).sum()
    }

    pub fn stats(&self) -> Stats {
        for instance in self.idle.lock().unwrap().iter() {
            self.note_peak(instance);
        }
        self.stats.lock().unwrap().clone()
    }

    fn note_peak(&self, instance: &Instance) {
        if let Some(peak) = instance.peak_rss_kib() {
            let mut stats = self.stats.lock().unwrap();
            stats.peak_rss_kib = stats.peak_rss_kib.max(peak);
        }
    }

    async fn start(&self) -> Result<Instance, InvokeError> {
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| InvokeError::Start(e.to_string()))?;
        let address = listener.local_addr().map_err(|e| InvokeError::Start(e.to_string()))?;
        let (events, queue) = mpsc::channel(1);
        let (polled, first_poll) = oneshot::channel();
        let api = Arc::new(RuntimeApi {
            queue: tokio::sync::Mutex::new(queue),
            pending: Mutex::new(HashMap::new()),
            polled: Mutex::new(Some(polled)),
            init_error: Mutex::new(None),
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{}", self.spec.logical_id),
        });
        let server = tokio::spawn({
            let api = Arc::clone(&api);
            async move {
                let _ = axum::serve(listener, api.router()).await;
            }
        });
        let binary = self.launch.binary_dir.join(&self.spec.binary);
        let output = || if self.launch.show_logs { Stdio::inherit() } else { Stdio::null() };
        let started = Instant::now();
        let child = tokio::process::Command::new(&binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.spec.logical_id)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", self.spec.memory_mb.to_string())
            .env("AWS_LAMBDA_LOG_FORMAT", &self.spec.log_format)
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", self.spec.logical_id))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .envs(&self.spec.environment)
            .envs(self.launch.environment.iter().cloned())
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                InvokeError::Start(format!(
                    "{}: {error} (build the functions first: cargo build --workspace --bins)",
                    binary.display()
                ))
            })?;
        let mut instance = Instance { child, api, events, server, invoked: false };
        // Init ends at the first poll; a process that exits before it failed to initialise, and
        // Lambda gives up on an init after 10 s.
        tokio::select! {
            _ = first_poll => {}
            () = tokio::time::sleep(INIT_TIMEOUT) => {
                return Err(InvokeError::Start(format!("{} did not finish its init within 10 s", self.spec.binary)));
            }
            status = instance.child.wait() => {
                let reason = instance.api.init_error.lock().unwrap().take().unwrap_or_default();
                return Err(InvokeError::Start(format!("{} exited during init ({status:?}) {reason}", self.spec.binary)));
            }
        }
        self.stats.lock().unwrap().inits.push(started.elapsed());
        Ok(instance)
    }
}

struct Instance {
    child: tokio::process::Child,
    api: Arc<RuntimeApi>,
    events: mpsc::Sender<Invocation>,
    server: tokio::task::JoinHandle<()>,
    /// Whether it has had an event (its first is the one a cold start delays).
    invoked: bool,
}

impl Instance {
    async fn invoke(&mut self, event: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, InvokeError> {
        let (reply, answer) = oneshot::channel();
        let deadline = std::time::SystemTime::now() + timeout;
        let deadline_ms = deadline.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        let invocation = Invocation { id: uuid::Uuid::new_v4().to_string(), event, deadline_ms, reply };
        self.events.send(invocation).await.map_err(|_| InvokeError::Failed("the instance is gone".into()))?;
        tokio::select! {
            answer = answer => match answer {
                Ok(Outcome::Response(body)) => Ok(body),
                Ok(Outcome::Error(body)) => Err(InvokeError::Failed(String::from_utf8_lossy(&body).into_owned())),
                Err(_) => Err(InvokeError::Failed("the instance dropped the invocation".into())),
            },
            status = self.child.wait() => Err(InvokeError::Failed(format!("the process exited: {status:?}"))),
            () = tokio::time::sleep(timeout) => Err(InvokeError::TimedOut),
        }
    }

    /// User and system time from `/proc/<pid>/stat`, which counts threads that have exited too
    /// (argon2's blocking threads come and go), in clock ticks of 10 ms.
    fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()?)).ok()?;
        // After the command name in parentheses: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10))
    }

    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
        let _ = self.child.start_kill();
    }
}

struct Invocation {
    id: String,
    event: Vec<u8>,
    deadline_ms: u128,
    reply: oneshot::Sender<Outcome>,
}

enum Outcome {
    Response(Vec<u8>),
    Error(Vec<u8>),
}

/// The Runtime API of one instance (the 2018-06-01 interface).
struct RuntimeApi {
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    polled: Mutex<Option<oneshot::Sender<()>>>,
    init_error: Mutex<Option<String>>,
    function_arn: String,
}

impl RuntimeApi {
    fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(self)
    }
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> Response {
    if let Some(polled) = api.polled.lock().unwrap().take() {
        let _ = polled.send(());
    }
    let Some(invocation) = api.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    api.pending.lock().unwrap().insert(invocation.id.clone(), invocation.reply);
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", invocation.id);
    set("lambda-runtime-deadline-ms", invocation.deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", api.function_arn.clone());
    set("lambda-runtime-trace-id", format!("Root=1-{:08x}-{}", 0, uuid::Uuid::new_v4().simple()));
    set("content-type", "application/json".into());
    (headers, invocation.event).into_response()
}

async fn respond(State(api): State<Arc<RuntimeApi>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    settle(&api, &id, Outcome::Response(body.to_vec()))
}

async fn fail(State(api): State<Arc<RuntimeApi>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    settle(&api, &id, Outcome::Error(body.to_vec()))
}

fn settle(api: &RuntimeApi, id: &str, outcome: Outcome) -> StatusCode {
    match api.pending.lock().unwrap().remove(id) {
        Some(reply) => {
            let _ = reply.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn init_error(State(api): State<Arc<RuntimeApi>>, body: Bytes) -> StatusCode {
    *api.init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}
