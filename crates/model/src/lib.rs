//! Owns the conversation with a language model: provider-neutral message types, the [`Provider`] trait,
//! and the two wire clients (Anthropic Messages, OpenAI-compatible Chat Completions) with streaming,
//! retries, a pricing table and a table of context windows. Does not know about tools, files or sessions.
//!
//! # Example
//!
//! ```no_run
//! use errand_model::{connect, Message, ModelEvent, ProviderKind, ProviderSettings, Request};
//! use futures::StreamExt;
//!
//! # async fn demo() -> Result<(), errand_model::ModelError> {
//! let provider = connect(&ProviderSettings {
//!     kind: ProviderKind::Openai,
//!     base_url: "http://localhost:11434/v1".into(),
//!     api_key: None,
//!     ..ProviderSettings::default()
//! })?;
//! let request = Request {
//!     model: "llama3.2".into(),
//!     system: vec![],
//!     messages: vec![Message::user_text("Say hi")],
//!     tools: vec![],
//!     max_tokens: 256,
//!     temperature: None,
//!     cache_tools: false,
//! };
//! let mut events = provider.stream(request);
//! while let Some(event) = events.next().await {
//!     if let ModelEvent::TextDelta(text) = event? {
//!         print!("{text}");
//!     }
//! }
//! # Ok(()) }
//! ```

mod anthropic;
mod error;
mod openai;
pub mod pricing;
mod retry;
mod sse;
mod transport;
mod types;
pub mod window;

use std::time::Duration;

use futures::stream::BoxStream;

pub use error::{ApiFailure, Endpoint, ModelError};
pub use types::*;

/// A stream of model events for one request; ends after [`ModelEvent::Completed`] or an error.
pub type ModelStream = BoxStream<'static, Result<ModelEvent, ModelError>>;

/// A language model reachable over some wire protocol.
///
/// Implementations retry transient failures themselves (reporting each as [`ModelEvent::Retrying`]) and turn
/// every other failure, including a stream that breaks or goes silent, into a [`ModelError`]. Dropping the
/// stream aborts the request.
pub trait Provider: Send + Sync {
    /// Which wire protocol this speaks.
    fn kind(&self) -> ProviderKind;
    /// Sends `request` and streams the reply.
    fn stream(&self, request: Request) -> ModelStream;
}

/// The wire protocols errand speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Anthropic Messages API (`POST {base}/v1/messages`).
    #[default]
    Anthropic,
    /// OpenAI-compatible Chat Completions (`POST {base}/chat/completions`): OpenAI, Ollama, vLLM,
    /// llama.cpp server, LM Studio, OpenRouter.
    Openai,
}

impl ProviderKind {
    /// Lower-case name as used in flags and config (`anthropic`, `openai`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Openai => "openai",
        }
    }

    /// The environment variable that holds this provider's API key.
    pub fn key_var(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
            ProviderKind::Openai => "OPENAI_API_KEY",
        }
    }

    /// The environment variable that names this provider's base URL.
    pub fn base_url_var(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "ANTHROPIC_BASE_URL",
            ProviderKind::Openai => "OPENAI_BASE_URL",
        }
    }

    /// Human name for messages ("the Anthropic API").
    pub fn display_name(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "Anthropic API",
            ProviderKind::Openai => "OpenAI-compatible server",
        }
    }

    /// The base URL used when none is configured.
    pub fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "https://api.anthropic.com",
            ProviderKind::Openai => "https://api.openai.com/v1",
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to reach a provider. Built by the front end from flags, environment and config.
#[derive(Clone, PartialEq)]
pub struct ProviderSettings {
    /// Wire protocol.
    pub kind: ProviderKind,
    /// Base URL: `https://api.anthropic.com` for Anthropic; for OpenAI-compatible servers the URL that
    /// `/chat/completions` is appended to (e.g. `http://localhost:11434/v1`).
    pub base_url: String,
    /// API key; optional for local OpenAI-compatible servers. Never logged.
    pub api_key: Option<String>,
    /// Retry policy for transient failures.
    pub retry: RetryPolicy,
    /// Time allowed to open the connection.
    pub connect_timeout: Duration,
    /// Time allowed for the response headers after sending (at least `connect_timeout`), and for any gap
    /// in the reply stream: a stream silent for longer is abandoned with [`ModelError::Stalled`].
    pub idle_timeout: Duration,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            kind: ProviderKind::Anthropic,
            base_url: ProviderKind::Anthropic.default_base_url().into(),
            api_key: None,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("retry", &self.retry)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// When and how long to wait before retrying a failed request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: u32,
    /// Delay before the first retry; doubles each time, with jitter.
    pub initial_delay: Duration,
    /// Upper bound on any one delay, `retry-after` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_retries: 4, initial_delay: Duration::from_millis(500), max_delay: Duration::from_secs(60) }
    }
}

/// Builds the client for `settings`.
pub fn connect(settings: &ProviderSettings) -> Result<Box<dyn Provider>, ModelError> {
    match settings.kind {
        ProviderKind::Anthropic => Ok(Box::new(anthropic::AnthropicClient::new(settings.clone())?)),
        ProviderKind::Openai => Ok(Box::new(openai::OpenAiClient::new(settings.clone())?)),
    }
}

/// The model ids the provider lists: `GET {base}/v1/models` (Anthropic) or `GET {base}/models`
/// (OpenAI-compatible), once, without retries. A cheap request that shows whether the server is reachable,
/// whether it takes the key, and which models it serves; nothing is generated.
pub async fn list_models(settings: &ProviderSettings) -> Result<Vec<String>, ModelError> {
    let transport = match settings.kind {
        ProviderKind::Anthropic => anthropic::AnthropicClient::transport_for(settings.clone(), "/v1/models")?,
        ProviderKind::Openai => openai::OpenAiClient::transport_for(settings.clone(), "/models")?,
    };
    let answer = transport.get_json().await?;
    // Both APIs answer {"data": [{"id": ...}, ...]}; Ollama's OpenAI-compatible list does too.
    Ok(answer
        .get("data")
        .and_then(serde_json::Value::as_array)
        .map(|models| {
            models
                .iter()
                .filter_map(|model| model.get("id").and_then(serde_json::Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}
