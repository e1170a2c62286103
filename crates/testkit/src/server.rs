//! The HTTP side: binding, routing, recording each request, playing the next turn, and shutting down.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State as AxumState};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::record::{Protocol, RecordedRequest};
use crate::reply::{Context, Ending, Reply, tokens};
use crate::script::{Script, StandingReply, Turn};
use crate::{anthropic, invariants, openai};

/// Called with one log line per request, e.g. `#3 anthropic POST /v1/messages 12345 bytes -> text`, and one
/// `violation: ...` line per breach.
type Observer = Box<dyn Fn(&str) + Send + Sync>;

/// A running scripted server; shuts down on drop.
pub struct MockLlm {
    shared: Arc<Shared>,
    address: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Bumped on every change of `state`, so waiters need not poll.
    changed: watch::Sender<()>,
    /// Becomes true when the server shuts down; stalls end early on it.
    shutdown: watch::Receiver<bool>,
    observer: Option<Observer>,
    /// Waited before each reply, after the request is recorded.
    latency: Duration,
    /// The only key taken, if any.
    required_key: Option<String>,
}

struct State {
    turns: VecDeque<Turn>,
    standing: Vec<StandingReply>,
    played: usize,
    requests: Vec<RecordedRequest>,
    violations: Vec<String>,
    /// Requests whose reply has not finished streaming yet.
    open_replies: usize,
    /// The providers' prompt caches, as requests would have filled them.
    cache: crate::cache::PromptCache,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a test thread panicked; the recorded data is still worth reading.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn observe(&self, line: &str) {
        if let Some(observer) = &self.observer {
            observer(line);
        }
    }
}

/// Marks a reply as open until dropped, which happens when its body has been streamed or abandoned.
struct OpenReply(Arc<Shared>);

impl Drop for OpenReply {
    fn drop(&mut self) {
        self.0.state().open_replies -= 1;
        self.0.changed.send_replace(());
    }
}

impl MockLlm {
    /// Binds 127.0.0.1:0 and serves `script` in a background tokio task.
    pub async fn start(script: Script) -> io::Result<MockLlm> {
        Self::start_on(script, 0).await
    }

    /// Same, on a given port (0 = any).
    pub async fn start_on(script: Script, port: u16) -> io::Result<MockLlm> {
        Self::launch(script, port, None).await
    }

    /// Same, calling `observer` with one line per request (`#3 anthropic POST /v1/messages 12345 bytes -> text`)
    /// and one `violation: ...` line per invariant breach.
    pub async fn start_with_observer(
        script: Script,
        port: u16,
        observer: impl Fn(&str) + Send + Sync + 'static,
    ) -> io::Result<MockLlm> {
        Self::launch(script, port, Some(Box::new(observer))).await
    }

    async fn launch(script: Script, port: u16, observer: Option<Observer>) -> io::Result<MockLlm> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let address = listener.local_addr()?;
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let latency = Duration::from_millis(script.latency_ms);
        let state = State {
            turns: script.turns.into(),
            standing: script.standing,
            played: 0,
            requests: Vec::new(),
            violations: Vec::new(),
            open_replies: 0,
            cache: Default::default(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed: watch::Sender::new(()),
            shutdown: shutdown_receiver.clone(),
            observer,
            latency,
            required_key: script.required_key,
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let mut stop = shutdown_receiver;
        let server = tokio::spawn(async move {
            let stopped = async move {
                // An error means the MockLlm is gone, which is a reason to stop too.
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            // Serving only fails if accepting fails for good; the tests then see connection errors.
            let _ = axum::serve(listener, router).with_graceful_shutdown(stopped).await;
        });
        Ok(MockLlm { shared, address, shutdown, server: Some(server) })
    }

    /// Base URL for the Anthropic client: "http://127.0.0.1:PORT" (client posts to {url}/v1/messages).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Base URL for the OpenAI client: "http://127.0.0.1:PORT/v1" (client posts to {openai_url}/chat/completions).
    pub fn openai_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Every request received so far, in order (including ones answered with scripted errors).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    /// Invariant breaches seen so far, each a human-readable sentence naming the request number.
    pub fn violations(&self) -> Vec<String> {
        self.shared.state().violations.clone()
    }

    /// Turns not yet played.
    pub fn remaining_turns(&self) -> usize {
        self.shared.state().turns.len()
    }

    /// Panics with a clear message if there are violations or unplayed turns.
    #[track_caller]
    pub fn assert_clean(&self) {
        let state = self.shared.state();
        let mut problems = Vec::new();
        if !state.violations.is_empty() {
            problems.push(format!(
                "{} invariant violation(s):\n  {}",
                state.violations.len(),
                state.violations.join("\n  ")
            ));
        }
        if !state.turns.is_empty() {
            let labels: Vec<String> = state.turns.iter().map(Turn::label).collect();
            problems.push(format!(
                "{} scripted turn(s) never played after {} request(s): {}",
                state.turns.len(),
                state.requests.len(),
                labels.join(", ")
            ));
        }
        if !problems.is_empty() {
            let problems = problems.join("\n");
            drop(state);
            panic!("errand-mock-llm is not clean:\n{problems}");
        }
    }

    /// Waits until every turn has been played and every reply has finished streaming.
    pub async fn wait_until_done(&self) {
        let mut changed = self.shared.changed.subscribe();
        loop {
            {
                let state = self.shared.state();
                if state.turns.is_empty() && state.open_replies == 0 {
                    return;
                }
            }
            if changed.changed().await.is_err() {
                return;
            }
        }
    }

    /// Stops accepting requests, ends stalls, and waits for replies in flight to finish.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(server) = self.server.take() {
            // A join error means the server task panicked or was cancelled: it has stopped either way.
            let _ = server.await;
        }
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

/// The models the server lists: errand's default Claude model and the name the tests give OpenAI-compatible
/// runs.
pub const MODELS: [&str; 2] = ["claude-sonnet-4-5", "test-model"];

async fn handle(AxumState(shared): AxumState<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    if let Some(required) = &shared.required_key {
        let header = |name: &str| parts.headers.get(name).and_then(|value| value.to_str().ok());
        let given = header("x-api-key").or_else(|| header("authorization").and_then(|v| v.strip_prefix("Bearer ")));
        if given != Some(required.as_str()) {
            shared.observe(&format!("{} {path} -> 401 (wrong or missing key)", parts.method));
            let message = "errand-mock-llm: invalid x-api-key";
            let reply = if path.ends_with("/chat/completions") || path == "/models" {
                openai::error(0, 401, Some(message), None)
            } else {
                anthropic::error(0, 401, Some(message), None)
            };
            let mut response = Response::builder().status(StatusCode::UNAUTHORIZED);
            for (name, value) in reply.headers {
                response = response.header(name, value);
            }
            return response
                .body(Body::from(reply.chunks.concat()))
                .unwrap_or_else(|_| StatusCode::UNAUTHORIZED.into_response());
        }
    }
    let protocol = match (&parts.method, path.as_str()) {
        // The models list (Anthropic's GET /v1/models, OpenAI's GET {base}/models) consumes no turn, unless
        // the next turn is an HTTP error: a scripted failure answers whatever request comes next.
        (&Method::GET, "/v1/models" | "/models") => {
            let failure = {
                let mut state = shared.state();
                match state.turns.front() {
                    Some(Turn::HttpError { status, message, .. }) => {
                        let answer = (*status, message.clone());
                        state.turns.pop_front();
                        state.played += 1;
                        Some(answer)
                    }
                    _ => None,
                }
            };
            shared.changed.send_replace(());
            if let Some((status, message)) = failure {
                shared.observe(&format!("GET {path} -> http_error {status}"));
                let message = message.unwrap_or_else(|| format!("errand-mock-llm: scripted {status}"));
                let body = json!({"type": "error", "error": {"type": "scripted_error", "message": message}});
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return (status, axum::Json(body)).into_response();
            }
            shared.observe(&format!("GET {path} -> models"));
            let data: Vec<Value> = MODELS
                .iter()
                .map(|id| json!({"id": id, "object": "model", "type": "model", "display_name": id}))
                .collect();
            let body = json!({"object": "list", "data": data, "has_more": false});
            return axum::Json(body).into_response();
        }
        (&Method::POST, "/v1/messages") => Protocol::Anthropic,
        (&Method::POST, "/v1/chat/completions" | "/chat/completions") => Protocol::Openai,
        _ => {
            shared.observe(&format!("unrouted {} {path} -> 404", parts.method));
            let message = format!(
                "errand-mock-llm: no route for {} {path}; use POST /v1/messages or POST /v1/chat/completions",
                parts.method
            );
            let body = json!({"type": "error", "error": {"type": "not_found_error", "message": message}});
            return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
        }
    };
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(error) => {
            let message = format!("errand-mock-llm: could not read the request body: {error}");
            return (StatusCode::BAD_REQUEST, message).into_response();
        }
    };
    let recorded = RecordedRequest {
        protocol,
        path: path.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let context = Context {
        number: 0,
        model: recorded.json["model"].as_str().unwrap_or("unknown").to_string(),
        input_tokens: tokens(body.len()),
        stream: recorded.is_stream(),
        include_usage: recorded.json["stream_options"]["include_usage"] == Value::Bool(true),
        cache: Default::default(),
    };

    let (number, turn, played, breaches, cache) = {
        let mut state = shared.state();
        let number = state.requests.len() + 1;
        let mut breaches = invariants::check(number, &recorded);
        let cache = match protocol {
            Protocol::Anthropic => state.cache.anthropic(&recorded.json).unwrap_or_else(|problem| {
                breaches.push(format!("request #{number} ({protocol}): {problem}"));
                Default::default()
            }),
            Protocol::Openai => state.cache.openai(&recorded.json),
        };
        let last_turn = recorded.last_turn_text();
        let standing = state.standing.iter().find(|standing| last_turn.contains(&standing.contains));
        let turn = match standing.map(|standing| standing.turn.clone()) {
            // A standing reply consumes no turn.
            Some(turn) => Some(turn),
            None => {
                let turn = state.turns.pop_front();
                if turn.is_some() {
                    state.played += 1;
                } else {
                    let played = state.played;
                    breaches.push(format!(
                        "request #{number} ({protocol}): arrived after the script was exhausted ({played} turns played)"
                    ));
                }
                turn
            }
        };
        state.violations.extend(breaches.iter().cloned());
        state.requests.push(recorded);
        state.open_replies += 1;
        (number, turn, state.played, breaches, cache)
    };
    let open = OpenReply(shared.clone());
    shared.changed.send_replace(());
    let context = Context { number, cache, ..context };
    if !shared.latency.is_zero() {
        let mut shutdown = shared.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(shared.latency) => {}
            _ = shutdown.wait_for(|stopped| *stopped) => {}
        }
    }

    let reply = match (&turn, protocol) {
        (Some(turn), Protocol::Anthropic) => anthropic::reply(&context, turn),
        (Some(turn), Protocol::Openai) => openai::reply(&context, turn),
        (None, _) => {
            let message = format!("errand-mock-llm: script exhausted after {played} turns");
            match protocol {
                Protocol::Anthropic => anthropic::error(number, 500, Some(&message), None),
                Protocol::Openai => openai::error(number, 500, Some(&message), None),
            }
        }
    };
    let label = turn.as_ref().map_or_else(|| "script exhausted".to_string(), Turn::label);
    shared.observe(&format!("#{number} {protocol} POST {path} {} bytes -> {label}", body.len()));
    for breach in &breaches {
        shared.observe(&format!("violation: {breach}"));
    }
    respond(reply, open, shared.shutdown.clone())
}

fn respond(reply: Reply, open: OpenReply, shutdown: watch::Receiver<bool>) -> Response {
    let mut builder =
        Response::builder().status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (name, value) in reply.headers {
        builder = builder.header(name, value);
    }
    let body = if !reply.event_stream && reply.ending == Ending::Complete {
        // A whole JSON document goes out with a content-length, like the real APIs; `open` ends here.
        Body::from(reply.chunks.concat())
    } else {
        body_stream(reply.chunks.into(), reply.ending, open, shutdown)
    };
    builder.body(body).unwrap_or_else(|error| {
        (StatusCode::INTERNAL_SERVER_ERROR, format!("errand-mock-llm: could not build a reply: {error}"))
            .into_response()
    })
}

struct Streaming {
    chunks: VecDeque<Bytes>,
    ending: Option<Ending>,
    shutdown: watch::Receiver<bool>,
    _open: OpenReply,
}

/// A body that sends `chunks`, then ends as `ending` says: normally, by aborting the connection, or after
/// a silence.
fn body_stream(chunks: VecDeque<Bytes>, ending: Ending, open: OpenReply, shutdown: watch::Receiver<bool>) -> Body {
    let streaming = Streaming { chunks, ending: Some(ending), shutdown, _open: open };
    Body::from_stream(futures::stream::unfold(streaming, |mut streaming| async move {
        if let Some(chunk) = streaming.chunks.pop_front() {
            return Some((Ok(chunk), streaming));
        }
        match streaming.ending.take()? {
            Ending::Complete => None,
            Ending::Cut => {
                // Give the events already queued time to leave before the connection is torn down.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let error = io::Error::new(io::ErrorKind::ConnectionAborted, "errand-mock-llm: scripted cut");
                Some((Err(error), streaming))
            }
            Ending::Stall(seconds) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(seconds)) => {}
                    _ = streaming.shutdown.wait_for(|stopped| *stopped) => {}
                }
                None
            }
        }
    }))
}
