//! Owns what errand's egress proxy lets a command send: the gate that judges each connection and request by
//! the session's `network` rules (host rules, and request rules `network(HOST, METHOD PATH)`), the taint gate
//! for requests (a new host, an upload, credentials errand did not put there), and the credentials errand
//! injects (`inject` rules) so that no secret ever enters the sandbox.
//!
//! A request the person must answer waits at the proxy while the question goes to the person (or the inbox);
//! with no one to ask it is refused with 403, and the refusal says why.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use errand_sandbox::{Grants, ProxyRequest, Verdict};
use tokio_util::sync::CancellationToken;

use crate::approval::{ApprovalAnswer, ApprovalRequest, Asking, Settled, Slot};
use crate::event::{Answerer, EventMsg};
use crate::policy::{AFTER_UNTRUSTED, Decision, Policy, compile_host_glob};
use crate::taint::SharedTaint;
use crate::writer::Emitter;

/// After taint, a request body larger than this is an upload and is asked about.
pub const UPLOAD_BYTES: u64 = 16 * 1024;

/// Request headers that carry credentials: a command sending one errand did not inject, after untrusted content
/// entered the conversation, may be using an attacker's key to send the person's files to the attacker's
/// account on an allowed host.
const CREDENTIAL_HEADERS: [&str; 8] = [
    "authorization",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-goog-api-key",
    "private-token",
    "x-access-token",
    "cookie",
];

/// Query parameters that carry credentials.
const CREDENTIAL_PARAMETERS: [&str; 12] = [
    "key",
    "api_key",
    "apikey",
    "api-key",
    "token",
    "access_token",
    "auth",
    "password",
    "secret",
    "client_secret",
    "sig",
    "signature",
];

/// A problem with an `inject` rule.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid inject rule `{rule}` from {origin}: {problem}; write it as `header NAME from env VAR for HOST` or `header \
     NAME from secret NAME [prefix \"Bearer \"] for HOST`"
)]
pub struct InjectionError {
    /// The rule as written.
    pub rule: String,
    /// Where it came from.
    pub origin: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Where an injected header's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// errand's own environment variable.
    Env(String),
    /// A named secret of `errand secret set`.
    Secret(String),
}

/// `inject header Authorization from env GITHUB_TOKEN prefix "Bearer " for api.github.com`: the proxy sets the
/// header on every request to a matching host; the command never sees the value.
#[derive(Clone)]
pub struct Injection {
    /// The rule as written, for messages.
    pub text: String,
    /// The header's name, as written.
    pub header: String,
    /// Where the value comes from.
    pub from: SecretSource,
    /// Text put before the value (`Bearer `).
    pub prefix: String,
    host_pattern: String,
    host: globset::GlobMatcher,
    value: Option<errand_config::Secret>,
}

impl std::fmt::Debug for Injection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Injection").field("text", &self.text).finish_non_exhaustive()
    }
}

impl Injection {
    /// Parses `[inject] header NAME from (env VAR | secret NAME) [prefix "TEXT"] for HOST` from `origin`.
    pub fn parse(text: &str, origin: &str) -> Result<Injection, InjectionError> {
        let invalid =
            |problem: String| InjectionError { rule: text.trim().to_string(), origin: origin.to_string(), problem };
        let words = split_words(text).map_err(invalid)?;
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let words = words.strip_prefix(&["inject"]).unwrap_or(&words);
        let (header, from, rest) = match words {
            ["header", header, "from", "env", var, rest @ ..] => (*header, SecretSource::Env(var.to_string()), rest),
            ["header", header, "from", "secret", name, rest @ ..] => {
                (*header, SecretSource::Secret(name.to_string()), rest)
            }
            _ => return Err(invalid("it does not read `header NAME from env VAR` or `from secret NAME`".into())),
        };
        let (prefix, host) = match rest {
            ["prefix", prefix, "for", host] => (prefix.to_string(), *host),
            ["for", host] => (String::new(), *host),
            _ => return Err(invalid("it must end with `for HOST` (after an optional `prefix \"TEXT\"`)".into())),
        };
        if header.is_empty() || !header.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-') {
            return Err(invalid(format!("`{header}` is not a header name")));
        }
        if prefix.contains(['\r', '\n']) {
            return Err(invalid("the prefix holds a line break".into()));
        }
        let matcher = compile_host_glob(host).map_err(|problem| invalid(format!("the host `{host}` is {problem}")))?;
        Ok(Injection {
            text: text.trim().to_string(),
            header: header.to_string(),
            from,
            prefix,
            host_pattern: host.to_string(),
            host: matcher,
            value: None,
        })
    }

    /// Reads the value from errand's environment (through `env`) or `credentials`; an error names the rule and
    /// what is missing.
    pub fn resolve(
        &mut self,
        env: impl Fn(&str) -> Option<String>,
        credentials: Option<&errand_config::Credentials>,
    ) -> Result<(), String> {
        let value = match &self.from {
            SecretSource::Env(var) => env(var).filter(|value| !value.is_empty()).ok_or_else(|| {
                format!(
                    "the inject rule `{}` takes its value from ${var}, which is not set in errand's environment",
                    self.text
                )
            })?,
            SecretSource::Secret(name) => {
                let missing = || {
                    format!(
                        "the inject rule `{}` names the secret {name}, which is not stored; store it with `errand secret \
                         set {name}`",
                        self.text
                    )
                };
                let credentials = credentials.ok_or_else(missing)?;
                match credentials.secret(name) {
                    Ok(Some(secret)) => secret.expose().to_string(),
                    Ok(None) => return Err(missing()),
                    Err(error) => {
                        return Err(format!("the inject rule `{}` cannot read its secret: {error}", self.text));
                    }
                }
            }
        };
        if value.contains(['\r', '\n']) {
            return Err(format!("the value for the inject rule `{}` holds a line break", self.text));
        }
        self.value = Some(errand_config::Secret::new(format!("{}{value}", self.prefix)));
        Ok(())
    }

    /// Whether the rule sets its header on requests to `host`.
    pub fn applies_to(&self, host: &str) -> bool {
        self.host.is_match(host)
    }

    /// The host pattern as written.
    pub fn host_pattern(&self) -> &str {
        &self.host_pattern
    }
}

/// Splits on spaces, keeping `"quoted text"` (which may hold spaces) as one word.
fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').ok_or_else(|| "a quotation mark is never closed".to_string())?;
            words.push(quoted[..end].to_string());
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            words.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    Ok(words)
}

/// The egress proxy's gate for one session.
pub(crate) struct EgressPolicy {
    pub(crate) policy: Policy,
    pub(crate) grants: Arc<Grants>,
    pub(crate) emitter: Emitter,
    pub(crate) taint: SharedTaint,
    pub(crate) injections: Arc<Vec<Injection>>,
    pub(crate) asking: Arc<Asking>,
    /// The answers so far, by what was asked (`upload to HOST`, `HOST`), so each is asked once: `None` for
    /// allowed, else why not (`the person said no`).
    pub(crate) answered: Mutex<HashMap<String, Option<String>>>,
    pub(crate) asked: std::sync::atomic::AtomicU64,
}

impl EgressPolicy {
    /// Judges `request`; `Err` is the refusal's reason.
    async fn judge(&self, request: &ProxyRequest) -> Result<Verdict, String> {
        let host = request.host.as_str();
        if request.method == "CONNECT" {
            match self.policy.judge_connect(host, &self.grants) {
                Decision::Allow => {}
                Decision::Deny(reason) => return Err(reason),
                Decision::Ask(_) => {
                    return Err(format!(
                        "{host} is not an allowed host; the person can allow it with --allow-net {host}"
                    ));
                }
            }
            self.new_host_after_taint(request).await?;
            let tainted = crate::taint::lock(&self.taint).is_tainted();
            let inspect = tainted
                || self.policy.judges_requests_to(host)
                || self.injections.iter().any(|injection| injection.applies_to(host));
            crate::taint::lock(&self.taint).reached(host);
            return Ok(if inspect { Verdict::Inspect } else { Verdict::Forward { inject: Vec::new() } });
        }

        let path = request.path.as_deref().unwrap_or("/");
        match self.policy.judge_request(host, &request.method, path) {
            Decision::Allow => {}
            Decision::Deny(reason) => return Err(reason),
            Decision::Ask(reason) => {
                let key = format!("{} {host}{}", request.method, path.split('?').next().unwrap_or_default());
                self.ask_person(request, &key, reason).await?;
            }
        }
        // A tunnel's host was judged when it opened.
        if !request.tls {
            self.new_host_after_taint(request).await?;
        }
        let injected: Vec<&Injection> = self.injections.iter().filter(|injection| injection.applies_to(host)).collect();
        let source = crate::taint::lock(&self.taint).source();
        if let Some(source) = source {
            if let Some(carried) = foreign_credentials(request, &injected) {
                return Err(format!(
                    "the request carries credentials errand did not put there ({carried}), {AFTER_UNTRUSTED} \
                     ({source}); errand refuses them, since they may be someone else's account. Commands use \
                     credentials only through inject rules in config.toml"
                ));
            }
            if let Some(upload) = upload(request) {
                let reason = format!(
                    "a command uploading to {host} ({upload}) {AFTER_UNTRUSTED} ({source}) needs your approval"
                );
                self.ask_person(request, &format!("upload to {host}"), reason).await?;
            }
        }
        crate::taint::lock(&self.taint).reached(host);
        let inject = injected
            .iter()
            .filter_map(|injection| {
                injection.value.as_ref().map(|value| (injection.header.clone(), value.expose().to_string()))
            })
            .collect();
        Ok(Verdict::Forward { inject })
    }

    /// After taint, a host the session had not reached before is the person's to allow.
    async fn new_host_after_taint(&self, request: &ProxyRequest) -> Result<(), String> {
        let (source, reached) = {
            let taint = crate::taint::lock(&self.taint);
            (taint.source(), taint.knows_host(&request.host))
        };
        match source {
            Some(source) if !reached => {
                let reason = format!(
                    "a command reaching {}, a host this session had not reached before, {AFTER_UNTRUSTED} ({source}) \
                     needs your approval",
                    request.host
                );
                self.ask_person(request, &request.host, reason).await?;
                crate::taint::lock(&self.taint).allowed_by_person(&request.host);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Asks the person (or the inbox) about `request`, once per `key`; `Err` is the refusal.
    async fn ask_person(&self, request: &ProxyRequest, key: &str, reason: String) -> Result<(), String> {
        if let Some(answer) = self.answered.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key) {
            return match answer {
                None => Ok(()),
                Some(why_not) => Err(format!("{reason}; {why_not}")),
            };
        }
        let number = self.asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let call_id = format!("net-{number}");
        let approval = ApprovalRequest {
            call_id: call_id.clone(),
            tool: "network".into(),
            input: serde_json::json!({
                "method": request.method,
                "host": request.host,
                "port": request.port,
                "path": request.path,
            }),
            reason: reason.clone(),
        };
        let cancel: CancellationToken = self.asking.current_stop();
        let answer = self.asking.open(Slot::Call(call_id.clone()));
        let _ = self.emitter.emit(EventMsg::ApprovalRequested(approval.clone()));
        let question = |session| errand_store::NewQuestion {
            session_id: session,
            kind: errand_store::QuestionKind::Approval,
            request_id: call_id.clone(),
            subject: "network".into(),
            reason: Some(reason.clone()),
            body: serde_json::json!({ "input": approval.input }),
            expires_at: None,
        };
        let settled = self.asking.settle(Slot::Call(call_id.clone()), answer, question, &self.emitter, &cancel).await;
        let (answer, by) = match settled {
            Ok(Settled::Answer(crate::Op::Approve { allow, remember, reason, .. })) => {
                (ApprovalAnswer::from_op(allow, remember, reason), Answerer::Person)
            }
            Ok(Settled::Answer(_)) => (ApprovalAnswer::Deny { reason: None }, Answerer::Person),
            Ok(Settled::Expired(_)) => (ApprovalAnswer::Deny { reason: None }, Answerer::Expired),
            Ok(Settled::Cancelled) => (ApprovalAnswer::Deny { reason: None }, Answerer::Cancelled),
            Ok(Settled::NoOne) | Err(_) => (ApprovalAnswer::Deny { reason: None }, Answerer::NoTerminal),
        };
        let _ = self.emitter.emit(EventMsg::ApprovalResolved { call_id, answer: answer.clone(), by: by.clone() });
        let why_not = match (answer, by) {
            (ApprovalAnswer::AllowOnce | ApprovalAnswer::AllowSession, _) => None,
            (ApprovalAnswer::Deny { .. }, Answerer::Person) => Some("the person said no".to_string()),
            (ApprovalAnswer::Deny { .. }, _) => {
                Some("no one answered the question, and it needs the person's approval".to_string())
            }
        };
        self.answered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.to_string(), why_not.clone());
        match why_not {
            None => Ok(()),
            Some(why_not) => Err(format!("{reason}; {why_not}")),
        }
    }
}

impl errand_sandbox::EgressGate for EgressPolicy {
    fn check<'a>(
        &'a self,
        request: &'a ProxyRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Verdict> + Send + 'a>> {
        Box::pin(async move { self.judge(request).await.unwrap_or_else(Verdict::Refuse) })
    }

    fn report(&self, request: &ProxyRequest, allowed: bool, reason: Option<&str>) {
        let _ = self.emitter.emit(EventMsg::NetworkRequest {
            call_id: None,
            method: request.method.clone(),
            host: request.host.clone(),
            port: request.port,
            allowed,
            reason: reason.map(str::to_string),
        });
    }
}

/// The credentials `request` carries that errand did not inject: a header (other than one an inject rule for
/// the host replaces) or a query parameter; described by name only.
fn foreign_credentials(request: &ProxyRequest, injected: &[&Injection]) -> Option<String> {
    let replaced = |name: &str| injected.iter().any(|injection| injection.header.eq_ignore_ascii_case(name));
    if let Some((name, _)) = request
        .headers
        .iter()
        .find(|(name, _)| CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) && !replaced(name))
    {
        return Some(format!("the header {name}"));
    }
    let query = request.path.as_deref()?.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let name = pair.split('=').next().unwrap_or_default().to_ascii_lowercase();
        CREDENTIAL_PARAMETERS.contains(&name.as_str()).then(|| format!("the query parameter {name}"))
    })
}

/// Why `request` is an upload (a `PUT`, a multipart body, a body over [`UPLOAD_BYTES`] or of unknown length).
fn upload(request: &ProxyRequest) -> Option<String> {
    if request.method == "PUT" {
        return Some("PUT".into());
    }
    let content_type = request.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if content_type.is_some_and(|(_, value)| value.trim_start().to_ascii_lowercase().starts_with("multipart/")) {
        return Some(format!("{} with a multipart body", request.method));
    }
    match request.content_length {
        Some(length) if length > UPLOAD_BYTES => Some(format!("{} with a {length}-byte body", request.method)),
        _ if request.chunked => Some(format!("{} with a body of unknown length", request.method)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> ProxyRequest {
        ProxyRequest {
            host: "api.example.com".into(),
            port: 443,
            method: method.into(),
            path: Some(path.into()),
            tls: true,
            headers: headers.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect(),
            content_length: None,
            chunked: false,
        }
    }

    #[test]
    fn inject_rules_parse_with_or_without_the_word_inject_and_a_prefix() {
        let rule =
            Injection::parse("inject header Authorization from env GITHUB_TOKEN for api.github.com", "c").unwrap();
        assert_eq!(
            (rule.header.as_str(), &rule.from, rule.prefix.as_str(), rule.host_pattern()),
            ("Authorization", &SecretSource::Env("GITHUB_TOKEN".into()), "", "api.github.com")
        );
        let rule =
            Injection::parse(r#"header x-api-key from secret WEATHER prefix "Key " for *.weather.test"#, "c").unwrap();
        assert_eq!((&rule.from, rule.prefix.as_str()), (&SecretSource::Secret("WEATHER".into()), "Key "));
        assert!(rule.applies_to("eu.weather.test") && !rule.applies_to("weather.test.evil.com"));
        for (text, problem) in [
            ("header Authorization from env TOKEN", "must end with `for HOST`"),
            ("header Authorization from file /x for a.com", "does not read"),
            ("header Bad:Name from env TOKEN for a.com", "is not a header name"),
            (r#"header A from env T prefix "open for a.com"#, "never closed"),
        ] {
            let error = Injection::parse(text, "config.toml").unwrap_err().to_string();
            assert!(error.contains(problem), "{text}: {error}");
            assert!(error.contains("config.toml"), "{error}");
        }
    }

    #[test]
    fn an_injection_reads_its_value_from_the_environment_and_never_shows_it() {
        let env = |name: &str| (name == "TOKEN").then(|| "s3cr3t-value".to_string());
        let mut rule =
            Injection::parse("header Authorization from env TOKEN prefix \"Bearer \" for a.test", "c").unwrap();
        rule.resolve(env, None).unwrap();
        assert_eq!(rule.value.as_ref().map(|value| value.expose()), Some("Bearer s3cr3t-value"));
        assert!(!format!("{rule:?}").contains("s3cr3t"));
        let mut missing = Injection::parse("header A from env UNSET for a.test", "c").unwrap();
        assert!(missing.resolve(env, None).unwrap_err().contains("$UNSET, which is not set"));
        let mut secret = Injection::parse("header A from secret NOPE for a.test", "c").unwrap();
        assert!(secret.resolve(env, None).unwrap_err().contains("errand secret set NOPE"));
    }

    #[test]
    fn credentials_are_found_in_headers_and_the_query_unless_errand_injects_them() {
        let bearer = request("POST", "/v1/files", &[("authorization", "Bearer attacker")]);
        assert_eq!(foreign_credentials(&bearer, &[]).as_deref(), Some("the header authorization"));
        let injection = Injection::parse("header Authorization from env T for api.example.com", "c").unwrap();
        assert_eq!(foreign_credentials(&bearer, &[&injection]), None);
        let keyed = request("GET", "/v1/x?q=1&api_key=abc", &[("accept", "*/*")]);
        assert_eq!(foreign_credentials(&keyed, &[]).as_deref(), Some("the query parameter api_key"));
        assert_eq!(foreign_credentials(&request("GET", "/v1/x?q=key", &[]), &[]), None);
        let x_api_key = request("POST", "/v1/messages", &[("x-api-key", "sk-attacker")]);
        assert_eq!(foreign_credentials(&x_api_key, &[]).as_deref(), Some("the header x-api-key"));
    }

    #[test]
    fn uploads_are_puts_multipart_bodies_and_bodies_over_16_kb_or_of_unknown_length() {
        assert_eq!(upload(&request("PUT", "/f", &[])).as_deref(), Some("PUT"));
        let multipart = request("POST", "/f", &[("content-type", "multipart/form-data; boundary=x")]);
        assert_eq!(upload(&multipart).as_deref(), Some("POST with a multipart body"));
        let big = ProxyRequest { content_length: Some(UPLOAD_BYTES + 1), ..request("POST", "/f", &[]) };
        assert_eq!(upload(&big).as_deref(), Some("POST with a 16385-byte body"));
        let small = ProxyRequest { content_length: Some(UPLOAD_BYTES), ..request("POST", "/f", &[]) };
        assert_eq!(upload(&small), None);
        let chunked = ProxyRequest { chunked: true, ..request("POST", "/f", &[]) };
        assert_eq!(upload(&chunked).as_deref(), Some("POST with a body of unknown length"));
        assert_eq!(upload(&request("GET", "/f", &[])), None);
    }
}
