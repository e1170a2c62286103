//! rmcp's streamable HTTP client (reqwest), with the last `WWW-Authenticate` challenge a server answered kept
//! aside. rmcp reports a request refused with 401 or 403 (at the handshake or after it) only as "Auth required"
//! or "Insufficient scope", without the header; the challenge, which names the scope the server wants
//! (step-up authorization), is what signing in again needs. This is the one place errand reads it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use sse_stream::Sse;

/// The last challenge a server sent, shared between the client and the connection.
pub(crate) type LastChallenge = Arc<Mutex<Option<String>>>;

/// reqwest's client for rmcp, keeping each 401/403 challenge in `challenge`.
#[derive(Clone)]
pub(crate) struct WatchedClient {
    pub(crate) inner: reqwest::Client,
    pub(crate) challenge: LastChallenge,
}

impl WatchedClient {
    fn keep<T>(
        &self,
        result: Result<T, StreamableHttpError<reqwest::Error>>,
    ) -> Result<T, StreamableHttpError<reqwest::Error>> {
        let header = match &result {
            Err(StreamableHttpError::AuthRequired(error)) => Some(error.www_authenticate_header.clone()),
            Err(StreamableHttpError::InsufficientScope(error)) => Some(error.www_authenticate_header.clone()),
            _ => None,
        };
        if let Some(header) = header
            && let Ok(mut kept) = self.challenge.lock()
        {
            *kept = Some(header);
        }
        result
    }
}

impl StreamableHttpClient for WatchedClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>> {
        self.keep(self.inner.post_message(uri, message, session_id, auth_header, custom_headers).await)
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>> {
        let result = self
            .inner
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        self.keep(result)
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>> {
        let result = self
            .inner
            .post_message_with_response_limits(uri, message, session_id, auth_header, custom_headers, limits)
            .await;
        self.keep(result)
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<reqwest::Error>> {
        self.inner.delete_session(uri, session_id, auth_header, custom_headers).await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<reqwest::Error>> {
        self.keep(self.inner.get_stream(uri, session_id, last_event_id, auth_header, custom_headers).await)
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<reqwest::Error>> {
        let result = self
            .inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        self.keep(result)
    }
}

#[cfg(test)]
mod tests {
    use rmcp::transport::streamable_http_client::{AuthRequiredError, InsufficientScopeError};

    use super::*;

    #[test]
    fn a_refusal_keeps_its_challenge_and_other_results_do_not() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = WatchedClient { inner: reqwest::Client::new(), challenge: LastChallenge::default() };
        let header = r#"Bearer error="invalid_token", scope="mcp:basic""#.to_string();
        let refused: Result<(), _> = Err(StreamableHttpError::AuthRequired(AuthRequiredError::new(header.clone())));
        assert!(client.keep(refused).is_err(), "the error is passed on");
        assert_eq!(client.challenge.lock().unwrap().take(), Some(header));
        let wider = r#"Bearer error="insufficient_scope", scope="mcp:basic mcp:write""#.to_string();
        let step_up: Result<(), _> =
            Err(StreamableHttpError::InsufficientScope(InsufficientScopeError::new(wider.clone(), None)));
        let _ = client.keep(step_up);
        assert_eq!(client.challenge.lock().unwrap().take(), Some(wider));
        let closed: Result<(), _> = Err(StreamableHttpError::TransportChannelClosed);
        let _ = client.keep(closed);
        assert_eq!(client.challenge.lock().unwrap().take(), None);
    }
}
