//! The part both wire clients share: sending the request with retries, reading the streamed body with an
//! idle timeout, and turning failures into [`ModelError`]s. Each protocol plugs in a [`Decoder`] that turns
//! SSE events into [`ModelEvent`]s and assembles the final [`Response`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::Value;

use crate::error::{ApiFailure, Endpoint, seconds};
use crate::sse::{SseEvent, SseParser};
use crate::{ModelError, ModelEvent, ModelStream, ProviderSettings, Response, retry};

/// What can go wrong while decoding a stream, before it is tied to an [`Endpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamFault {
    /// An event this client cannot read.
    Protocol(String),
    /// The stream ended before the reply was complete.
    Broken(String),
    /// The server sent an error event.
    Remote {
        /// The provider's error type.
        error_type: String,
        /// The provider's message.
        message: String,
    },
}

/// One protocol's reading of a reply stream.
pub(crate) trait Decoder: Send + 'static {
    /// Takes one SSE event; appends the events to hand on to `out`.
    fn event(&mut self, event: &SseEvent, out: &mut Vec<ModelEvent>) -> Result<(), StreamFault>;
    /// The server said the reply is complete (`message_stop`, `[DONE]`).
    fn is_done(&self) -> bool;
    /// Called once, when the reply is complete or the body ended: appends any tool calls not yet handed on
    /// and returns the assembled reply, or [`StreamFault::Broken`] when the body ended too early.
    fn finish(&mut self, out: &mut Vec<ModelEvent>) -> Result<Response, StreamFault>;
}

/// An HTTP client bound to one provider endpoint.
pub(crate) struct Transport {
    client: reqwest::Client,
    endpoint: Endpoint,
    url: reqwest::Url,
    headers: HeaderMap,
    settings: ProviderSettings,
}

impl Transport {
    /// Builds the client for `settings`, posting to `{base_url}{path}` with `headers` on every request.
    pub(crate) fn new(settings: ProviderSettings, path: &str, headers: HeaderMap) -> Result<Self, ModelError> {
        let base_url = settings.base_url.trim().trim_end_matches('/').to_string();
        let invalid = |detail: String| ModelError::InvalidBaseUrl { base_url: settings.base_url.clone(), detail };
        let url = reqwest::Url::parse(&format!("{base_url}{path}")).map_err(|error| invalid(error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!("the scheme must be http or https, not {}", url.scheme())));
        }
        // reqwest is built without a default crypto provider; whoever installs one first wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("errand/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ModelError::Client { detail: error_chain(&error) })?;
        Ok(Self { client, endpoint: Endpoint { kind: settings.kind, base_url }, url, headers, settings })
    }

    /// Sends `body` and streams the reply through `decoder`. `model` is named in a 404 error.
    /// The headers every request carries.
    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub(crate) fn stream<D: Decoder>(self: &Arc<Self>, body: &Value, model: String, decoder: D) -> ModelStream {
        let body = match serde_json::to_vec(body) {
            Ok(body) => Bytes::from(body),
            Err(error) => {
                let error = ModelError::Client { detail: format!("could not encode the request: {error}") };
                return futures::stream::once(async move { Err(error) }).boxed();
            }
        };
        let driver = Driver {
            transport: Arc::clone(self),
            body,
            model,
            decoder,
            phase: Phase::Send { retries: 0 },
            queue: VecDeque::new(),
            started: std::time::Instant::now(),
        };
        futures::stream::unfold(driver, |mut driver| async move { driver.next().await.map(|item| (item, driver)) })
            .boxed()
    }

    /// `GET` this transport's URL once, without retries, and read the JSON answer: for cheap checks such as
    /// the models list. Errors are classified as a model request's are.
    pub(crate) async fn get_json(&self) -> Result<Value, ModelError> {
        let endpoint = self.endpoint.clone();
        let request = self.client.get(self.url.clone()).headers(self.headers.clone()).send();
        let response = match tokio::time::timeout(self.settings.connect_timeout, request).await {
            Err(_) => {
                let detail = format!("no response within {} s", seconds(&self.settings.connect_timeout));
                return Err(ModelError::Connect { endpoint, retries: 0, detail });
            }
            Ok(Err(error)) => return Err(ModelError::Connect { endpoint, retries: 0, detail: connect_detail(&error) }),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if (200..300).contains(&status) {
            return serde_json::from_str(&body).map_err(|error| ModelError::Protocol {
                endpoint,
                detail: format!("the answer is not JSON: {error}"),
            });
        }
        let failure = self.failure(status, &body);
        Err(match status {
            401 | 403 if self.settings.api_key.is_some() => ModelError::KeyRejected { endpoint, failure },
            401 | 403 => ModelError::KeyMissing { endpoint, failure },
            404 => ModelError::NotFound { endpoint, model: String::new(), failure },
            status if retry::is_retryable_status(status) => ModelError::Unavailable { endpoint, retries: 0, failure },
            _ => ModelError::Refused { endpoint, failure },
        })
    }

    /// One HTTP request, up to the response headers.
    async fn attempt(&self, body: Bytes) -> Result<reqwest::Response, AttemptFailure> {
        let connect_timeout = self.settings.connect_timeout;
        // Some servers (llama.cpp, vLLM under load) send the response headers only once the prompt is
        // processed, which can take longer than connecting; the stream's idle allowance applies to them too.
        let headers_timeout = self.settings.idle_timeout.max(connect_timeout);
        let request = self.client.post(self.url.clone()).headers(self.headers.clone()).body(body).send();
        let response = match tokio::time::timeout(headers_timeout, request).await {
            Err(_) => {
                return Err(AttemptFailure::Connect(format!("no response within {} s", seconds(&headers_timeout))));
            }
            Ok(Err(error)) => return Err(AttemptFailure::Connect(connect_detail(&error))),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        let server_wish = retry::server_wish(response.headers(), SystemTime::now());
        // The error body is small; a server that stalls on it still gets the status reported.
        let body = tokio::time::timeout(connect_timeout, response.text()).await.ok().and_then(Result::ok);
        let failure = self.failure(status, body.as_deref().unwrap_or_default());
        Err(AttemptFailure::Status { failure, server_wish })
    }

    /// The server's error body as an [`ApiFailure`], with the API key blotted out should the server echo it.
    fn failure(&self, status: u16, body: &str) -> ApiFailure {
        let mut failure = parse_failure(status, body);
        if let Some(key) = self.settings.api_key.as_deref().filter(|key| key.len() >= 8) {
            failure.message = failure.message.replace(key, "<redacted>");
        }
        failure
    }
}

enum Phase {
    Send { retries: u32 },
    Wait { retries: u32, delay: Duration },
    Body { body: BoxStream<'static, reqwest::Result<Bytes>>, parser: SseParser },
    Done,
}

/// Why one attempt failed before the body started.
enum AttemptFailure {
    Status { failure: ApiFailure, server_wish: Option<Duration> },
    Connect(String),
}

struct Driver<D> {
    transport: Arc<Transport>,
    body: Bytes,
    model: String,
    decoder: D,
    phase: Phase,
    queue: VecDeque<Result<ModelEvent, ModelError>>,
    started: std::time::Instant,
}

impl<D: Decoder> Driver<D> {
    async fn next(&mut self) -> Option<Result<ModelEvent, ModelError>> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return None,
                Phase::Wait { retries, delay } => {
                    tokio::time::sleep(delay).await;
                    self.phase = Phase::Send { retries };
                }
                Phase::Send { retries } => match self.transport.attempt(self.body.clone()).await {
                    Ok(response) => {
                        self.phase = Phase::Body { body: response.bytes_stream().boxed(), parser: SseParser::default() }
                    }
                    Err(failure) => self.after_failure(failure, retries),
                },
                Phase::Body { mut body, mut parser } => {
                    let idle = self.transport.settings.idle_timeout;
                    match tokio::time::timeout(idle, body.next()).await {
                        Err(_) => self.fail(ModelError::Stalled { endpoint: self.endpoint(), idle }),
                        Ok(Some(Err(error))) => self
                            .fail(ModelError::StreamBroken { endpoint: self.endpoint(), detail: error_chain(&error) }),
                        Ok(Some(Ok(chunk))) => {
                            if !self.decode(parser.push(&chunk)) {
                                self.phase = Phase::Body { body, parser };
                            }
                        }
                        Ok(None) => self.end_of_body(parser.finish()),
                    }
                }
            }
        }
    }

    fn after_failure(&mut self, failure: AttemptFailure, retries: u32) {
        let policy = self.transport.settings.retry;
        let (retryable, server_wish, reason) = match &failure {
            AttemptFailure::Status { failure, server_wish } => (
                retry::is_retryable_status(failure.status) && !crate::error::is_unparsed_output(failure),
                *server_wish,
                failure.to_string(),
            ),
            AttemptFailure::Connect(detail) => (true, None, detail.clone()),
        };
        if retryable && retries < policy.max_retries {
            let attempt = retries + 1;
            let delay = retry::delay(&policy, attempt, server_wish);
            tracing::debug!(endpoint = %self.endpoint(), attempt, ?delay, %reason, "retrying model request");
            self.queue.push_back(Ok(ModelEvent::Retrying { attempt, delay, reason }));
            self.phase = Phase::Wait { retries: attempt, delay };
            return;
        }
        let endpoint = self.endpoint();
        let error = match failure {
            AttemptFailure::Connect(detail) => ModelError::Connect { endpoint, retries, detail },
            AttemptFailure::Status { failure, .. } if crate::error::is_unparsed_output(&failure) => {
                ModelError::UnparsedOutput { endpoint, failure }
            }
            AttemptFailure::Status { failure, .. } if retryable => {
                ModelError::Unavailable { endpoint, retries, failure }
            }
            AttemptFailure::Status { failure, .. } => match failure.status {
                401 | 403 if self.transport.settings.api_key.is_some() => ModelError::KeyRejected { endpoint, failure },
                401 | 403 => ModelError::KeyMissing { endpoint, failure },
                404 => ModelError::NotFound { endpoint, model: self.model.clone(), failure },
                _ => ModelError::Refused { endpoint, failure },
            },
        };
        self.fail(error);
    }

    /// Feeds events to the decoder; true when the stream is over (completed or failed).
    fn decode(&mut self, events: Vec<SseEvent>) -> bool {
        let mut out = Vec::new();
        for event in &events {
            let result = self.decoder.event(event, &mut out);
            self.queue.extend(out.drain(..).map(Ok));
            if let Err(fault) = result {
                self.fail_with_fault(fault);
                return true;
            }
            if self.decoder.is_done() {
                self.complete();
                return true;
            }
        }
        false
    }

    fn end_of_body(&mut self, last: Option<SseEvent>) {
        if let Some(event) = last {
            let mut out = Vec::new();
            let result = self.decoder.event(&event, &mut out);
            self.queue.extend(out.into_iter().map(Ok));
            match result {
                // A half-written last event is the symptom of a cut; `finish` reports the cut itself.
                Ok(()) | Err(StreamFault::Protocol(_)) => {}
                Err(fault) => return self.fail_with_fault(fault),
            }
        }
        self.complete();
    }

    fn complete(&mut self) {
        let mut out = Vec::new();
        let result = self.decoder.finish(&mut out);
        self.queue.extend(out.into_iter().map(Ok));
        match result {
            Ok(mut response) => {
                response.request_bytes = self.body.len() as u64;
                response.duration_ms = self.started.elapsed().as_millis() as u64;
                self.queue.push_back(Ok(ModelEvent::Completed(response)))
            }
            Err(fault) => self.fail_with_fault(fault),
        }
        self.phase = Phase::Done;
    }

    fn fail_with_fault(&mut self, fault: StreamFault) {
        let endpoint = self.endpoint();
        self.fail(match fault {
            StreamFault::Protocol(detail) => ModelError::Protocol { endpoint, detail },
            StreamFault::Broken(detail) => ModelError::StreamBroken { endpoint, detail },
            StreamFault::Remote { error_type, message } => ModelError::StreamError { endpoint, error_type, message },
        });
    }

    fn fail(&mut self, error: ModelError) {
        self.queue.push_back(Err(error));
        self.phase = Phase::Done;
    }

    fn endpoint(&self) -> Endpoint {
        self.transport.endpoint.clone()
    }
}

/// Reads a provider error body: `{"error":{"type","message"}}` (Anthropic, OpenAI), `{"error":"..."}`
/// (Ollama), `{"message"}` or `{"detail"}` (various); anything else is quoted, shortened.
pub(crate) fn parse_failure(status: u16, body: &str) -> ApiFailure {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let error = json.get("error").unwrap_or(&Value::Null);
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_string);
    let error_type = text(error.get("type")).filter(|error_type| !error_type.is_empty());
    let message = text(error.get("message"))
        .or_else(|| text(Some(error)))
        .or_else(|| text(json.get("message")))
        .or_else(|| text(json.get("detail")))
        .unwrap_or_else(|| shorten(body.trim(), 300));
    ApiFailure { status, error_type, message }
}

fn shorten(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// What went wrong sending a request, in a few words: "connection refused", or the innermost cause.
fn connect_detail(error: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::ConnectionRefused => return "connection refused".into(),
                ErrorKind::ConnectionReset => return "connection reset".into(),
                ErrorKind::ConnectionAborted => return "connection aborted".into(),
                ErrorKind::TimedOut => return "timed out while connecting".into(),
                _ => {}
            }
        }
        source = current.source();
    }
    if error.is_timeout() {
        return "timed out while connecting".into();
    }
    error_chain(error)
}

/// An error and its causes, joined with ": " (reqwest's own message alone is often just "error sending
/// request").
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(current) = source {
        let part = current.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = current.source();
    }
    text
}

/// A header value that HTTP logging never prints.
pub(crate) fn secret_header(value: &str) -> Option<HeaderValue> {
    let mut header = HeaderValue::from_str(value).ok()?;
    header.set_sensitive(true);
    Some(header)
}

/// Headers every request carries.
pub(crate) fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers
}

/// A temperature as JSON, written as a person would (`0.7`, not `0.699999988079071`).
pub(crate) fn temperature(value: f32) -> Value {
    value.to_string().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
}

/// The string at `key`, when there is one and it is not empty.
pub(crate) fn non_empty_str<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str).filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn failure(status: u16, error_type: Option<&str>, message: &str) -> ApiFailure {
        ApiFailure { status, error_type: error_type.map(str::to_string), message: message.into() }
    }

    #[test]
    fn error_bodies_of_each_shape() {
        let anthropic = r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
        assert_eq!(parse_failure(429, anthropic), failure(429, Some("rate_limit_error"), "slow down"));
        let openai = r#"{"error":{"message":"Incorrect API key","type":"invalid_request_error","code":"x"}}"#;
        assert_eq!(parse_failure(401, openai), failure(401, Some("invalid_request_error"), "Incorrect API key"));
        let openai_untyped = r#"{"error":{"message":"nope","type":null}}"#;
        assert_eq!(parse_failure(401, openai_untyped), failure(401, None, "nope"));
        let ollama = r#"{"error":"model \"llama9\" not found, try pulling it first"}"#;
        assert_eq!(parse_failure(404, ollama), failure(404, None, "model \"llama9\" not found, try pulling it first"));
        assert_eq!(parse_failure(422, r#"{"detail":"bad field"}"#), failure(422, None, "bad field"));
        assert_eq!(parse_failure(502, "  <html>Bad Gateway</html>\n"), failure(502, None, "<html>Bad Gateway</html>"));
        assert_eq!(parse_failure(503, ""), failure(503, None, ""));
    }

    #[test]
    fn long_plain_bodies_are_shortened() {
        let parsed = parse_failure(500, &"x".repeat(1000));
        assert_eq!(parsed.message.chars().count(), 301);
        assert!(parsed.message.ends_with('…'));
    }

    #[test]
    fn an_echoed_key_is_redacted() {
        let settings = ProviderSettings { api_key: Some("sk-secret-123456".into()), ..ProviderSettings::default() };
        let transport = Transport::new(settings, "/v1/messages", HeaderMap::new()).unwrap();
        let parsed = transport.failure(401, r#"{"error":{"message":"key sk-secret-123456 is wrong"}}"#);
        assert_eq!(parsed.message, "key <redacted> is wrong");
    }

    #[test]
    fn base_url_is_trimmed_and_checked() {
        let settings =
            ProviderSettings { base_url: "http://localhost:11434/v1/".into(), ..ProviderSettings::default() };
        let transport = Transport::new(settings, "/chat/completions", HeaderMap::new()).unwrap();
        assert_eq!(transport.url.as_str(), "http://localhost:11434/v1/chat/completions");
        assert_eq!(transport.endpoint.base_url, "http://localhost:11434/v1");

        for bad in ["localhost:11434", "ftp://example.com", "not a url"] {
            let settings = ProviderSettings { base_url: bad.into(), ..ProviderSettings::default() };
            let error = Transport::new(settings, "/v1/messages", HeaderMap::new()).err().unwrap();
            assert!(matches!(error, ModelError::InvalidBaseUrl { .. }), "{bad}: {error}");
        }
    }

    #[test]
    fn temperatures_are_written_plainly() {
        assert_eq!(temperature(0.7).to_string(), "0.7");
        assert_eq!(temperature(1.0).to_string(), "1.0");
        assert_eq!(temperature(f32::NAN), Value::Null);
    }

    /// Serves the n-th connection with `replies[n]`, raw; `None` accepts and never answers.
    async fn raw_server(replies: Vec<Option<&'static str>>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            for reply in replies {
                let (mut socket, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut received = Vec::new();
                    let mut buffer = [0u8; 4096];
                    // Read the whole request so the client never sees a reset while still sending.
                    loop {
                        let text = String::from_utf8_lossy(&received).to_lowercase();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text
                                .lines()
                                .find_map(|line| line.strip_prefix("content-length:"))
                                .map_or(0, |value| value.trim().parse::<usize>().unwrap());
                            if received.len() >= end + 4 + length {
                                break;
                            }
                        }
                        let read = socket.read(&mut buffer).await.unwrap();
                        if read == 0 {
                            return;
                        }
                        received.extend_from_slice(&buffer[..read]);
                    }
                    match reply {
                        Some(reply) => {
                            socket.write_all(reply.as_bytes()).await.unwrap();
                            socket.shutdown().await.unwrap();
                        }
                        None => tokio::time::sleep(Duration::from_secs(60)).await,
                    }
                });
            }
        });
        url
    }

    fn raw_settings(base_url: String) -> ProviderSettings {
        ProviderSettings {
            base_url,
            retry: crate::RetryPolicy {
                max_retries: 1,
                initial_delay: Duration::from_millis(1),
                max_delay: Duration::from_secs(1),
            },
            connect_timeout: Duration::from_millis(200),
            idle_timeout: Duration::from_secs(5),
            ..ProviderSettings::default()
        }
    }

    async fn collect(settings: &ProviderSettings) -> Vec<Result<ModelEvent, ModelError>> {
        let provider = crate::connect(settings).unwrap();
        let request = crate::Request {
            model: "m".into(),
            system: vec![],
            messages: vec![crate::Message::user_text("hi")],
            tools: vec![],
            max_tokens: 10,
            temperature: None,
            cache_tools: false,
        };
        provider.stream(request).collect().await
    }

    #[tokio::test]
    async fn response_headers_that_never_come_count_as_a_connection_failure() {
        // The wait for headers is the longer of the connect and idle allowances.
        let settings = ProviderSettings {
            idle_timeout: Duration::from_millis(300),
            ..raw_settings(raw_server(vec![None, None]).await)
        };
        let mut items = collect(&settings).await.into_iter();
        let Some(Ok(ModelEvent::Retrying { attempt: 1, reason, .. })) = items.next() else { panic!("no retry") };
        assert_eq!(reason, "no response within 0.3 s");
        let Some(Err(error)) = items.next() else { panic!("no error") };
        assert!(matches!(error, ModelError::Connect { retries: 1, .. }), "{error:?}");
        assert!(error.to_string().starts_with("could not reach the Anthropic API at http://127.0.0.1:"), "{error}");
        assert!(items.next().is_none());
    }

    #[tokio::test]
    async fn retry_after_ms_sets_the_delay() {
        const BUSY: &str = "HTTP/1.1 503 Service Unavailable\r\nretry-after-ms: 7\r\ncontent-type: application/json\r\n\
                            content-length: 62\r\nconnection: close\r\n\r\n\
                            {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"busy\"}}";
        const REPLY: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
                             event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\"}}\n\n\
                             event: content_block_start\n\
                             data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
                             event: content_block_delta\n\
                             data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hey\"}}\n\n\
                             event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}\n\n\
                             event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        assert_eq!(BUSY.split("\r\n\r\n").nth(1).unwrap().len(), 62);
        let settings = raw_settings(raw_server(vec![Some(BUSY), Some(REPLY)]).await);
        let items: Vec<ModelEvent> = collect(&settings).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            items[..2],
            [
                ModelEvent::Retrying {
                    attempt: 1,
                    delay: Duration::from_millis(7),
                    reason: "503 api_error: busy".into()
                },
                ModelEvent::TextDelta("hey".into()),
            ]
        );
        let ModelEvent::Completed(response) = &items[2] else { panic!("{items:?}") };
        assert_eq!(response.message, crate::Message::assistant_text("hey"));
    }

    #[tokio::test]
    async fn an_empty_body_is_a_broken_stream() {
        const EMPTY: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 0\r\n\r\n";
        let settings = raw_settings(raw_server(vec![Some(EMPTY)]).await);
        let items = collect(&settings).await;
        assert_eq!(items.len(), 1);
        let Err(error) = &items[0] else { panic!("{items:?}") };
        assert!(matches!(error, ModelError::StreamBroken { .. }), "{error:?}");
    }
}
