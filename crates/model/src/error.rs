//! The crate's one error type. Every message names the server, what failed and what to do; none ever
//! contains the API key.

use std::fmt;
use std::time::Duration;

use crate::ProviderKind;

/// The server a request went to, as a person reads it: "the Anthropic API" (or "the Anthropic API at URL"
/// for a non-default base URL) or "the OpenAI-compatible server at URL".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Wire protocol.
    pub kind: ProviderKind,
    /// Base URL as configured, without a trailing `/`.
    pub base_url: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ProviderKind::Anthropic if self.base_url == ProviderKind::Anthropic.default_base_url() => {
                f.write_str("the Anthropic API")
            }
            kind => write!(f, "the {} at {}", kind.display_name(), self.base_url),
        }
    }
}

/// An HTTP error reply, as the provider described it in its error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// HTTP status code.
    pub status: u16,
    /// The provider's error type (`rate_limit_error`, `invalid_request_error`, ...), when it gave one.
    pub error_type: Option<String>,
    /// The provider's message, or the start of the body when it was not the usual JSON.
    pub message: String,
}

impl ApiFailure {
    /// Status and error type: `429 rate_limit_error`, or just `404`.
    pub fn code(&self) -> String {
        match &self.error_type {
            Some(error_type) => format!("{} {error_type}", self.status),
            None => self.status.to_string(),
        }
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() { f.write_str(&self.code()) } else { write!(f, "{}: {}", self.code(), self.message) }
    }
}

/// Why a model request failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The server refused the API key (401 or 403).
    #[error(
        "{endpoint} rejected the key ({failure}); run `errand login` again, or fix the key where `errand doctor` \
         says it comes from"
    )]
    KeyRejected {
        /// Where the request went.
        endpoint: Endpoint,
        /// What the server said.
        failure: ApiFailure,
    },
    /// The server wants an API key and none was set (401 or 403).
    #[error("{endpoint} wants an API key ({failure}); run `errand login`, or set {}", .endpoint.kind.key_var())]
    KeyMissing {
        /// Where the request went.
        endpoint: Endpoint,
        /// What the server said.
        failure: ApiFailure,
    },
    /// The server does not know the model, or the URL is wrong (404).
    #[error("{endpoint} found no model \"{model}\" or no such URL ({failure}); check --model and --base-url")]
    NotFound {
        /// Where the request went.
        endpoint: Endpoint,
        /// The model asked for.
        model: String,
        /// What the server said.
        failure: ApiFailure,
    },
    /// The server refused this request for good (400, 413, 422 and any other status not worth retrying).
    #[error("{endpoint} refused the request ({}): {}", .failure.code(), refusal_message(.failure))]
    Refused {
        /// Where the request went.
        endpoint: Endpoint,
        /// What the server said.
        failure: ApiFailure,
    },
    /// The server kept answering with a transient error (429, 5xx, 529) until the retries ran out.
    #[error("{endpoint} {}: {failure}; try again later", still_failing(*.retries))]
    Unavailable {
        /// Where the request went.
        endpoint: Endpoint,
        /// Retries made before giving up.
        retries: u32,
        /// The last answer.
        failure: ApiFailure,
    },
    /// The server could not read the model's own output as a tool call and answered with an error (llama.cpp's
    /// 500 "... does not match the expected format", "Failed to parse ..."). The same model and chat template
    /// fail the same way again, so this is not retried.
    #[error(
        "{endpoint} could not parse the model's output as a tool call ({failure}); this model or its chat          template does not produce the tool-call format the server expects, and asking again fails the same          way: use a model made for tool calling, or start the server with a chat template that supports tools          (llama.cpp: --jinja); --no-plan spares the model the plan tool's call"
    )]
    UnparsedOutput {
        /// Where the request went.
        endpoint: Endpoint,
        /// What the server said.
        failure: ApiFailure,
    },
    /// No connection, or no response headers in time, until the retries ran out.
    #[error("could not reach {endpoint}: {detail}; {}", connect_hint(.endpoint.kind))]
    Connect {
        /// Where the request went.
        endpoint: Endpoint,
        /// Retries made before giving up.
        retries: u32,
        /// What went wrong: "connection refused", "no response headers within 30 s", ...
        detail: String,
    },
    /// The reply started streaming, then the connection failed or closed early. Not retried, because
    /// deltas were already handed on.
    #[error("the reply from {endpoint} broke off mid-stream: {detail}")]
    StreamBroken {
        /// Where the request went.
        endpoint: Endpoint,
        /// What went wrong.
        detail: String,
    },
    /// The reply went silent for longer than the idle timeout.
    #[error("{endpoint} sent nothing for {} s; the reply was abandoned", seconds(.idle))]
    Stalled {
        /// Where the request went.
        endpoint: Endpoint,
        /// The idle timeout that ran out.
        idle: Duration,
    },
    /// The server sent an error event in the middle of the reply (e.g. `overloaded_error`).
    #[error("{endpoint} reported an error mid-reply ({error_type}): {message}; try again later")]
    StreamError {
        /// Where the request went.
        endpoint: Endpoint,
        /// The provider's error type.
        error_type: String,
        /// The provider's message.
        message: String,
    },
    /// The server sent something this client cannot read.
    #[error("{endpoint} sent a malformed stream event: {detail}")]
    Protocol {
        /// Where the request went.
        endpoint: Endpoint,
        /// What was wrong with it.
        detail: String,
    },
    /// The configured base URL cannot be used.
    #[error("the base URL \"{base_url}\" is not a usable URL ({detail}); check --base-url")]
    InvalidBaseUrl {
        /// The URL as configured.
        base_url: String,
        /// Why it cannot be used.
        detail: String,
    },
    /// The API key cannot be put in an HTTP header.
    #[error("{key_var} contains characters that cannot be sent in an HTTP header (a newline?); check the key")]
    InvalidApiKey {
        /// The environment variable the key comes from.
        key_var: &'static str,
    },
    /// The HTTP client could not be built.
    #[error("could not set up the HTTP client: {detail}")]
    Client {
        /// What went wrong.
        detail: String,
    },
}

impl ModelError {
    /// Whether the same request might succeed later. The client has already retried what it could; this
    /// tells the caller whether starting the turn over is worth it.
    pub fn is_retryable(&self) -> bool {
        match self {
            ModelError::Unavailable { .. }
            | ModelError::Connect { .. }
            | ModelError::StreamBroken { .. }
            | ModelError::Stalled { .. } => true,
            ModelError::StreamError { error_type, .. } => matches!(
                error_type.as_str(),
                "overloaded_error" | "api_error" | "rate_limit_error" | "server_error" | "timeout_error"
            ),
            ModelError::KeyRejected { .. }
            | ModelError::KeyMissing { .. }
            | ModelError::NotFound { .. }
            | ModelError::Refused { .. }
            | ModelError::UnparsedOutput { .. }
            | ModelError::Protocol { .. }
            | ModelError::InvalidBaseUrl { .. }
            | ModelError::InvalidApiKey { .. }
            | ModelError::Client { .. } => false,
        }
    }

    /// The HTTP status behind this error, when a server answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ModelError::KeyRejected { failure, .. }
            | ModelError::KeyMissing { failure, .. }
            | ModelError::NotFound { failure, .. }
            | ModelError::Refused { failure, .. }
            | ModelError::UnparsedOutput { failure, .. }
            | ModelError::Unavailable { failure, .. } => Some(failure.status),
            _ => None,
        }
    }
}

/// Whether a server error says the server could not parse the model's output (a tool call in a format its
/// chat template does not know): llama.cpp answers these with a 500, which would otherwise read as an outage.
pub(crate) fn is_unparsed_output(failure: &ApiFailure) -> bool {
    let message = failure.message.to_ascii_lowercase();
    failure.status == 500
        && (message.contains("does not match the expected format")
            || message.contains("failed to parse tool call")
            || message.contains("failed to parse input"))
}

fn refusal_message(failure: &ApiFailure) -> &str {
    if failure.message.is_empty() { "no reason given" } else { &failure.message }
}

fn still_failing(retries: u32) -> String {
    match retries {
        0 => "is failing".to_string(),
        1 => "is still failing after 1 retry".to_string(),
        n => format!("is still failing after {n} retries"),
    }
}

fn connect_hint(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Anthropic => "check the network connection (and --base-url if set)",
        ProviderKind::Openai => "is it running? (check --base-url)",
    }
}

/// "120" for whole seconds, "0.25" below or between them.
pub(crate) fn seconds(duration: &Duration) -> String {
    if duration.subsec_nanos() == 0 {
        duration.as_secs().to_string()
    } else {
        let text = format!("{:.3}", duration.as_secs_f64());
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anthropic() -> Endpoint {
        Endpoint { kind: ProviderKind::Anthropic, base_url: "https://api.anthropic.com".into() }
    }

    fn ollama() -> Endpoint {
        Endpoint { kind: ProviderKind::Openai, base_url: "http://localhost:11434/v1".into() }
    }

    fn failure(status: u16, error_type: Option<&str>, message: &str) -> ApiFailure {
        ApiFailure { status, error_type: error_type.map(str::to_string), message: message.into() }
    }

    #[test]
    fn messages_name_the_server_the_problem_and_the_fix() {
        let cases = [
            (
                ModelError::KeyRejected {
                    endpoint: anthropic(),
                    failure: failure(401, Some("authentication_error"), "invalid x-api-key"),
                },
                "the Anthropic API rejected the key (401 authentication_error: invalid x-api-key); run `errand \
                 login` again, or fix the key where `errand doctor` says it comes from",
            ),
            (
                ModelError::KeyMissing { endpoint: ollama(), failure: failure(401, None, "unauthorized") },
                "the OpenAI-compatible server at http://localhost:11434/v1 wants an API key (401: unauthorized); \
                 run `errand login`, or set OPENAI_API_KEY",
            ),
            (
                ModelError::NotFound {
                    endpoint: ollama(),
                    model: "llama9".into(),
                    failure: failure(404, None, "model 'llama9' not found"),
                },
                "the OpenAI-compatible server at http://localhost:11434/v1 found no model \"llama9\" or no such \
                 URL (404: model 'llama9' not found); check --model and --base-url",
            ),
            (
                ModelError::Refused {
                    endpoint: anthropic(),
                    failure: failure(400, Some("invalid_request_error"), "messages: field required"),
                },
                "the Anthropic API refused the request (400 invalid_request_error): messages: field required",
            ),
            (
                ModelError::Unavailable {
                    endpoint: anthropic(),
                    retries: 4,
                    failure: failure(529, Some("overloaded_error"), "Overloaded"),
                },
                "the Anthropic API is still failing after 4 retries: 529 overloaded_error: Overloaded; try again \
                 later",
            ),
            (
                ModelError::Connect { endpoint: ollama(), retries: 4, detail: "connection refused".into() },
                "could not reach the OpenAI-compatible server at http://localhost:11434/v1: connection refused; \
                 is it running? (check --base-url)",
            ),
            (
                ModelError::StreamBroken { endpoint: anthropic(), detail: "connection reset".into() },
                "the reply from the Anthropic API broke off mid-stream: connection reset",
            ),
            (
                ModelError::Stalled { endpoint: anthropic(), idle: Duration::from_secs(120) },
                "the Anthropic API sent nothing for 120 s; the reply was abandoned",
            ),
            (
                ModelError::Protocol { endpoint: ollama(), detail: "not JSON".into() },
                "the OpenAI-compatible server at http://localhost:11434/v1 sent a malformed stream event: not JSON",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn a_server_that_cannot_parse_the_models_output_is_told_apart_from_an_outage() {
        let parse =
            failure(500, Some("server_error"), "Value looks like object, but does not match the expected format");
        assert!(is_unparsed_output(&parse));
        assert!(!is_unparsed_output(&failure(500, None, "internal error")));
        assert!(!is_unparsed_output(&failure(503, None, "does not match the expected format")));
        let error = ModelError::UnparsedOutput { endpoint: ollama(), failure: parse };
        assert!(!error.is_retryable());
        let text = error.to_string();
        assert!(text.contains("could not parse the model's output as a tool call"), "{text}");
        assert!(!text.contains("try again later"), "{text}");
    }

    #[test]
    fn a_custom_anthropic_base_url_is_named() {
        let endpoint = Endpoint { kind: ProviderKind::Anthropic, base_url: "http://127.0.0.1:9".into() };
        assert_eq!(endpoint.to_string(), "the Anthropic API at http://127.0.0.1:9");
    }

    #[test]
    fn status_and_retryability_follow_the_variant() {
        let unavailable =
            ModelError::Unavailable { endpoint: anthropic(), retries: 0, failure: failure(503, None, "") };
        assert_eq!(unavailable.status(), Some(503));
        assert!(unavailable.is_retryable());
        assert_eq!(unavailable.to_string(), "the Anthropic API is failing: 503; try again later");

        let refused = ModelError::Refused { endpoint: anthropic(), failure: failure(400, None, "") };
        assert_eq!(refused.status(), Some(400));
        assert!(!refused.is_retryable());

        let stalled = ModelError::Stalled { endpoint: ollama(), idle: Duration::from_millis(250) };
        assert_eq!(stalled.status(), None);
        assert!(stalled.is_retryable());
        assert!(stalled.to_string().contains("sent nothing for 0.25 s"));

        let overloaded = ModelError::StreamError {
            endpoint: anthropic(),
            error_type: "overloaded_error".into(),
            message: "Overloaded".into(),
        };
        assert!(overloaded.is_retryable());
        let invalid = ModelError::StreamError {
            endpoint: anthropic(),
            error_type: "invalid_request_error".into(),
            message: "bad".into(),
        };
        assert!(!invalid.is_retryable());
    }
}
