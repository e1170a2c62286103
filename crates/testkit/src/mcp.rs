//! An MCP server of the 2026-07-28 revision, on loopback over streamable HTTP, for errand's tests: it answers
//! `server/discover`, serves each request statelessly with its per-request `_meta`, asks for input with an
//! `input_required` result, and runs a long call as a task of the tasks extension. Built on rmcp's server
//! side. Started with fewer revisions (`&["2025-11-25"]`), it is a server that knows discovery but not the
//! newest revision, and answers it with a version mismatch (-32022).
//!
//! Its tools:
//! - `echo {text}`: the text back, at once.
//! - `weather {}`: answers `input_required` asking for a city (a form), then "It is sunny in CITY.".
//! - `slow_sum {a, b, seconds, confirm}`: with a client that declares the tasks extension, a task whose status
//!   message says what it does, finishing after `seconds` (default 1) with the sum; `tasks/cancel` ends it.
//!   With `confirm: true` the task first asks, through `tasks/get`, whether to go on (answered with
//!   `tasks/update`), and ends with "not added" when the answer is no.
//!
//! Every HTTP request is recorded with its JSON-RPC method (`rpc`) and its `MCP-Protocol-Version`, `Mcp-Method`
//! and `Mcp-Name` headers, and every task's end, for tests to check what went over the wire.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock, CreateTaskResult,
    ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction, GetTaskParams, GetTaskResult, InputRequest,
    InputRequests, InputRequiredResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerCapabilities,
    ServerConfig, Tool, UpdateTaskParams,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::task_manager::{TaskExit, TaskManager, TaskOptions};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{Value, json};

/// One thing the server saw: an HTTP request's MCP headers, or a task ending.
pub type McpEvent = Value;

/// The running test server.
pub struct McpTestServer {
    url: String,
    events: Arc<Mutex<Vec<McpEvent>>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl McpTestServer {
    /// Starts the server on a free loopback port, speaking `versions` (e.g. `&["2026-07-28"]`).
    pub async fn start(versions: &[&str]) -> anyhow::Result<Self> {
        let events: Arc<Mutex<Vec<McpEvent>>> = Arc::default();
        let handler = TestServer {
            versions: versions
                .iter()
                .map(|version| serde_json::from_value::<ProtocolVersion>(json!(version)).unwrap_or_default())
                .collect(),
            tasks: TaskManager::new(),
            events: events.clone(),
        };
        let service = StreamableHttpService::new(
            move || Ok(handler.clone()),
            Arc::new(LocalSessionManager::default()),
            StreamableHttpServerConfig::default(),
        );
        let seen = events.clone();
        let router = axum::Router::new().nest_service("/mcp", service).layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let seen = seen.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    // The body is read whole to record its JSON-RPC method, then handed on unchanged.
                    let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
                    let header =
                        |name: &str| parts.headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_string);
                    let rpc = serde_json::from_slice::<Value>(&bytes)
                        .ok()
                        .and_then(|message| message["method"].as_str().map(str::to_string));
                    let event = json!({
                        "http": parts.method.as_str(),
                        "rpc": rpc,
                        "protocol_version": header("mcp-protocol-version"),
                        "method": header("mcp-method"),
                        "name": header("mcp-name"),
                    });
                    if let Ok(mut seen) = seen.lock() {
                        seen.push(event);
                    }
                    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://127.0.0.1:{}/mcp", listener.local_addr()?.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self { url, events, stop })
    }

    /// The server's address (its `/mcp` endpoint).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// What the server saw so far, in order.
    pub fn events(&self) -> Vec<McpEvent> {
        self.events.lock().map(|events| events.clone()).unwrap_or_default()
    }

    /// Stops the server.
    pub fn stop(self) {
        let _ = self.stop.send(());
    }
}

#[derive(Clone)]
struct TestServer {
    versions: Vec<ProtocolVersion>,
    tasks: TaskManager,
    events: Arc<Mutex<Vec<McpEvent>>>,
}

impl TestServer {
    fn record(&self, event: McpEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }
}

fn tool(name: &str, description: &str, schema: Value) -> Tool {
    let Value::Object(schema) = schema else { unreachable!("tool schemas are objects") };
    // Every tool here only reads: none changes anything anywhere.
    Tool::new(name.to_string(), description.to_string(), Arc::new(schema))
        .with_annotations(rmcp::model::ToolAnnotations::new().read_only(true))
}

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text.into())])
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_tasks().build());
        info.server_info = rmcp::model::Implementation::new("errand-test-2026", "1.0.0");
        if let Some(newest) = self.versions.iter().max_by(|a, b| a.as_str().cmp(b.as_str())) {
            info.protocol_version = newest.clone();
        }
        info
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Owned(self.versions.clone())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![
            tool(
                "echo",
                "Says the text back.",
                json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
            ),
            tool(
                "weather",
                "Tells the weather in a city it asks you for.",
                json!({"type": "object", "properties": {}}),
            ),
            tool(
                "slow_sum",
                "Adds two numbers, slowly, as a task.",
                json!({"type": "object", "properties": {
                    "a": {"type": "number"}, "b": {"type": "number"}, "seconds": {"type": "number"},
                    "confirm": {"type": "boolean"}
                }, "required": ["a", "b"]}),
            ),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = Value::Object(request.arguments.clone().unwrap_or_default());
        match request.name.as_ref() {
            "echo" => Ok(text(arguments["text"].as_str().unwrap_or_default()).into()),
            "weather" => {
                // The request state is opaque to the client; this server keeps none of its own in it.
                let answered = request.input_responses.as_ref().and_then(|responses| responses.get("city"));
                let Some(answer) = answered else {
                    let schema =
                        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
                    let form = ElicitRequestParams::FormElicitationParams {
                        meta: None,
                        message: "Which city do you want the weather for?".into(),
                        requested_schema: serde_json::from_value(schema)
                            .map_err(|error| ErrorData::internal_error(error.to_string(), None))?,
                    };
                    let mut asked = InputRequests::new();
                    asked.insert("city".into(), InputRequest::Elicitation(ElicitRequest::new(form)));
                    self.record(json!({"input_required": "weather"}));
                    return Ok(InputRequiredResult::new(Some(asked), Some("asked-city".into())).into());
                };
                let answer: ElicitResult = serde_json::from_value(answer.clone())
                    .map_err(|error| ErrorData::invalid_params(error.to_string(), None))?;
                self.record(json!({"answered": "weather", "request_state": request.request_state}));
                Ok(text(match answer.action {
                    ElicitationAction::Accept => format!(
                        "It is sunny in {}.",
                        answer.content.as_ref().and_then(|content| content["city"].as_str()).unwrap_or("nowhere")
                    ),
                    _ => "No city, no weather.".to_string(),
                })
                .into())
            }
            "slow_sum" => {
                if !context.client_capabilities().is_some_and(|capabilities| capabilities.supports_tasks()) {
                    return Err(ErrorData::invalid_request("slow_sum runs only as a task", None));
                }
                let (a, b) = (arguments["a"].as_f64().unwrap_or(0.0), arguments["b"].as_f64().unwrap_or(0.0));
                let seconds = arguments["seconds"].as_f64().unwrap_or(1.0);
                let confirm = arguments["confirm"].as_bool().unwrap_or(false);
                let events = self.events.clone();
                let options = TaskOptions::new().with_poll_interval_ms(100);
                let task = self.tasks.spawn(options, move |task| {
                    Box::pin(async move {
                        let record = |event: Value| {
                            if let Ok(mut events) = events.lock() {
                                events.push(event);
                            }
                        };
                        if confirm {
                            task.set_status_message("waiting for a yes");
                            let schema = json!({"type": "object", "properties": {"go": {"type": "boolean"}}, "required": ["go"]});
                            let form = ElicitRequestParams::FormElicitationParams {
                                meta: None,
                                message: format!("Add {a} and {b}?"),
                                requested_schema: serde_json::from_value(schema)
                                    .map_err(|error| TaskExit::Error(ErrorData::internal_error(error.to_string(), None)))?,
                            };
                            let answer =
                                task.request_input("go", InputRequest::Elicitation(ElicitRequest::new(form))).await?;
                            record(json!({"task": "answered", "answer": answer}));
                            if answer["content"]["go"] != json!(true) {
                                return Ok(text("not added"));
                            }
                        }
                        task.set_status_message(format!("adding {a} and {b}"));
                        tokio::select! {
                            () = task.cancelled() => {
                                record(json!({"task": "cancelled"}));
                                Err(TaskExit::Cancelled)
                            }
                            () = tokio::time::sleep(Duration::from_secs_f64(seconds)) => {
                                record(json!({"task": "completed"}));
                                Ok(text(format!("{}", a + b)))
                            }
                        }
                    })
                });
                Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
            }
            other => Err(ErrorData::invalid_params(format!("no tool {other}"), None)),
        }
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        Ok(GetTaskResult::new(self.tasks.get_task(&request.task_id)?))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks.update_task(&request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks.cancel_task(&request.task_id)
    }
}
