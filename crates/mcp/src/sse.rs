//! The legacy HTTP+SSE transport (protocol 2024-11-05), which rmcp does not speak as a client: a long-lived
//! `GET` whose event stream first names an endpoint (`event: endpoint`), then carries the server's messages
//! (`event: message`); the client `POST`s each of its messages to that endpoint.

use std::future::Future;

use futures::StreamExt as _;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::service::RoleClient;
use tokio::sync::mpsc;

/// Messages from the server waiting to be read; the stream reader waits when the session falls behind.
const INCOMING_QUEUE: usize = 64;

/// A message could not be sent to the server's endpoint.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SseError(String);

/// Why connecting to an SSE endpoint failed.
pub(crate) enum SseConnectError {
    /// The server wants authorization (HTTP 401), with its `WWW-Authenticate` header.
    Unauthorized(Option<String>),
    /// Anything else, said for the person.
    Failed(String),
}

/// A connection over the legacy transport.
pub(crate) struct SseTransport {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    headers: http::HeaderMap,
    incoming: mpsc::Receiver<ServerJsonRpcMessage>,
    reader: tokio::task::JoinHandle<()>,
}

impl SseTransport {
    /// Opens the event stream at `url` and waits for the server to name its message endpoint.
    pub(crate) async fn connect(
        http: reqwest::Client,
        url: &str,
        headers: http::HeaderMap,
    ) -> Result<Self, SseConnectError> {
        let failed = SseConnectError::Failed;
        let base = reqwest::Url::parse(url).map_err(|error| failed(format!("{url} is not a URL: {error}")))?;
        let response = http
            .get(base.clone())
            .headers(headers.clone())
            .header(http::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|error| failed(format!("cannot reach {url}: {error}")))?;
        let status = response.status();
        if status == http::StatusCode::UNAUTHORIZED {
            let challenge = response
                .headers()
                .get(http::header::WWW_AUTHENTICATE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            return Err(SseConnectError::Unauthorized(challenge));
        }
        if !status.is_success() {
            return Err(failed(format!("{url} answered {status} to the request for its event stream")));
        }
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if !content_type.starts_with("text/event-stream") {
            return Err(failed(format!(
                "{url} answered with {content_type:?}, not an event stream; if it is a streamable HTTP server, add it \
                 with --transport http"
            )));
        }
        let mut events = sse_stream::SseStream::from_bytes_stream(response.bytes_stream());
        let endpoint = loop {
            match events.next().await {
                Some(Ok(event)) if event.event.as_deref() == Some("endpoint") => {
                    let path = event.data.unwrap_or_default();
                    let endpoint = base
                        .join(path.trim())
                        .map_err(|error| failed(format!("{url} named an endpoint errand cannot read ({error})")))?;
                    // Messages may carry credentials: they go only where the stream came from.
                    if endpoint.origin() != base.origin() {
                        return Err(failed(format!(
                            "{url} named {endpoint} as its message endpoint, on another origin; errand refuses to \
                             send messages there"
                        )));
                    }
                    break endpoint;
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(failed(format!("the event stream from {url} broke: {error}"))),
                None => return Err(failed(format!("{url} closed its event stream before naming its endpoint"))),
            }
        };
        let (sender, incoming) = mpsc::channel(INCOMING_QUEUE);
        let reader = tokio::spawn(async move {
            while let Some(Ok(event)) = events.next().await {
                if !matches!(event.event.as_deref(), None | Some("message")) {
                    continue;
                }
                let Some(data) = event.data else { continue };
                // A message errand cannot read is skipped; the request it answers then times out with a reason.
                let Ok(message) = serde_json::from_str::<ServerJsonRpcMessage>(&data) else { continue };
                if sender.send(message).await.is_err() {
                    break;
                }
            }
        });
        Ok(Self { http, endpoint, headers, incoming, reader })
    }
}

impl rmcp::transport::Transport<RoleClient> for SseTransport {
    type Error = SseError;

    fn send(&mut self, message: ClientJsonRpcMessage) -> impl Future<Output = Result<(), SseError>> + Send + 'static {
        let body = serde_json::to_vec(&message);
        let request = self
            .http
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .header(http::header::CONTENT_TYPE, "application/json");
        let endpoint = self.endpoint.clone();
        async move {
            let body = body.map_err(|error| SseError(format!("cannot encode a message: {error}")))?;
            let response = request
                .body(body)
                .send()
                .await
                .map_err(|error| SseError(format!("cannot reach {endpoint}: {error}")))?;
            let status = response.status();
            if !status.is_success() {
                let text = response.text().await.unwrap_or_default();
                return Err(SseError(format!("{endpoint} answered {status}: {}", text.trim())));
            }
            Ok(())
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ServerJsonRpcMessage>> + Send {
        self.incoming.recv()
    }

    fn close(&mut self) -> impl Future<Output = Result<(), SseError>> + Send {
        self.reader.abort();
        std::future::ready(Ok(()))
    }
}

impl Drop for SseTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
