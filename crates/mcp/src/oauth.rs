//! OAuth 2.1 for HTTP servers, as the MCP authorization specification (2025-11-25) asks of a client:
//! protected-resource metadata (RFC 9728, from the `WWW-Authenticate` challenge or the well-known paths),
//! authorization-server metadata (RFC 8414 and OpenID discovery, with the 2025-03-26 fallbacks), dynamic client
//! registration (RFC 7591), a client ID metadata document, or a pre-registered client, the authorization-code flow with PKCE (S256) and the
//! `resource` parameter (RFC 8707), and refresh. The authorization server is held to its name: its metadata must
//! be its own (RFC 8414 section 3.3), the redirect back must carry that name when the server says it sends one
//! (RFC 9207, against mix-up attacks), and stored tokens record which server issued them. Tokens are kept in one file only the user can read
//! ([`CredentialStore`]); they are sent to the server and its authorization server, and nowhere else: never
//! to a log, an event or the model.
//!
//! The person's part (opening the authorization page and coming back to errand's loopback address) is the
//! caller's: [`Authorization::url`] is where to send them, [`Authorization::finish`] takes the redirect.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest as _;

/// Seconds before expiry at which a token is refreshed rather than sent.
const REFRESH_MARGIN_SECS: u64 = 60;
/// How long one request to an authorization server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Signing in failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// An authorization server or the MCP server could not be reached or answered with an error.
    #[error("{what}: {reason}")]
    Request {
        /// What errand was doing, naming the address.
        what: String,
        /// What went wrong.
        reason: String,
    },
    /// The servers do not offer what the flow needs.
    #[error("{0}")]
    Unsupported(String),
    /// The redirect back to errand did not carry a code for this sign-in.
    #[error("{0}")]
    Redirect(String),
    /// The credential file could not be read or written.
    #[error("cannot {action} {}: {reason}", path.display())]
    Store {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// What a server's `WWW-Authenticate: Bearer …` challenge says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenge {
    /// Where its protected-resource metadata is.
    pub resource_metadata: Option<String>,
    /// The scope it asks for.
    pub scope: Option<String>,
    /// The error code (`invalid_token`, `insufficient_scope`).
    pub error: Option<String>,
}

impl Challenge {
    /// Reads the parameters of a `WWW-Authenticate` header value (quoted or bare, any order).
    pub fn parse(header: &str) -> Self {
        let mut challenge = Self::default();
        let mut rest = header.trim();
        if let Some(after) = rest.strip_prefix("Bearer").or_else(|| rest.strip_prefix("bearer")) {
            rest = after;
        }
        while !rest.is_empty() {
            rest = rest.trim_start_matches([' ', ',']);
            let Some(equals) = rest.find('=') else { break };
            let key = rest[..equals].trim().to_ascii_lowercase();
            rest = &rest[equals + 1..];
            let value;
            if let Some(quoted) = rest.strip_prefix('"') {
                let end = quoted.find('"').unwrap_or(quoted.len());
                value = quoted[..end].to_string();
                rest = quoted.get(end + 1..).unwrap_or("");
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                value = rest[..end].trim().to_string();
                rest = &rest[end..];
            }
            match key.as_str() {
                "resource_metadata" => challenge.resource_metadata = Some(value),
                "scope" => challenge.scope = Some(value),
                "error" => challenge.error = Some(value),
                _ => {}
            }
        }
        challenge
    }
}

/// How errand identifies itself to an authorization server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Registration {
    /// Register dynamically (RFC 7591) where the server allows it.
    #[default]
    Dynamic,
    /// Use a client ID metadata document: the HTTPS address where the person (or their organisation)
    /// publishes the document [`client_metadata_document`] makes is the client id, with servers that take
    /// them (`client_id_metadata_document_supported`); others get a dynamic registration. Check the address
    /// with [`check_metadata_url`] first.
    MetadataDocument {
        /// The document's address, which is also the client id.
        url: String,
    },
    /// A client the person registered with the server beforehand.
    PreRegistered {
        /// Its id.
        client_id: String,
        /// Its secret, for confidential clients.
        client_secret: Option<String>,
    },
}

/// What errand keeps for one server after signing in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The resource the tokens are for (the server's canonical URL).
    pub resource: String,
    /// Where tokens are refreshed.
    pub token_endpoint: String,
    /// The client id errand used.
    pub client_id: String,
    /// The client secret, for confidential clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub auth_method: String,
    /// The access token.
    pub access_token: String,
    /// The refresh token, when the server gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires (seconds since the epoch), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The scope granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The authorization server that issued the tokens (its `issuer`); absent in credentials kept before
    /// errand recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

impl Credentials {
    /// Whether the access token has expired, or is about to.
    pub fn expired(&self) -> bool {
        self.expires_at.is_some_and(|at| now() + REFRESH_MARGIN_SECS >= at)
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The file of credentials, one entry per server URL, readable only by the user (mode 0600), written
/// atomically so an interrupted write never leaves it half-written.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
}

impl CredentialStore {
    /// The store at `path` (created on first write).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_all(&self) -> Result<BTreeMap<String, Credentials>, OAuthError> {
        let failed = |reason: String| OAuthError::Store { action: "read", path: self.path.clone(), reason };
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|error| failed(format!("{error}; delete it and sign in again (errand mcp login)"))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(error) => Err(failed(error.to_string())),
        }
    }

    /// The credentials for a server URL.
    pub fn get(&self, url: &str) -> Result<Option<Credentials>, OAuthError> {
        Ok(self.read_all()?.remove(url))
    }

    /// Keeps credentials for a server URL, replacing earlier ones.
    pub fn put(&self, url: &str, credentials: &Credentials) -> Result<(), OAuthError> {
        let mut all = self.read_all()?;
        all.insert(url.to_string(), credentials.clone());
        self.write_all(&all)
    }

    /// Forgets a server's credentials; whether there were any.
    pub fn remove(&self, url: &str) -> Result<bool, OAuthError> {
        let mut all = self.read_all()?;
        let removed = all.remove(url).is_some();
        if removed {
            self.write_all(&all)?;
        }
        Ok(removed)
    }

    fn write_all(&self, all: &BTreeMap<String, Credentials>) -> Result<(), OAuthError> {
        use std::os::unix::fs::PermissionsExt as _;
        let failed = |reason: String| OAuthError::Store { action: "write", path: self.path.clone(), reason };
        let folder = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(folder).map_err(|e| failed(e.to_string()))?;
        let text = serde_json::to_vec_pretty(all).map_err(|e| failed(e.to_string()))?;
        let mut temporary =
            tempfile::Builder::new().prefix(".credentials-").tempfile_in(folder).map_err(|e| failed(e.to_string()))?;
        temporary
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| failed(e.to_string()))?;
        temporary.write_all(&text).map_err(|e| failed(e.to_string()))?;
        temporary.as_file().sync_all().map_err(|e| failed(e.to_string()))?;
        temporary.persist(&self.path).map_err(|e| failed(e.error.to_string()))?;
        Ok(())
    }
}

/// What errand learned about where and how to sign in.
#[derive(Debug, Clone)]
struct Endpoints {
    resource: String,
    /// Whether the authorization server takes a client ID metadata document's address as a client id.
    metadata_documents: bool,
    /// The authorization server's name, as its metadata gives it (its origin for servers without metadata).
    issuer: String,
    /// Whether it names itself in the redirect back (`authorization_response_iss_parameter_supported`).
    names_itself: bool,
    authorization: String,
    token: String,
    registration: Option<String>,
    scopes_supported: Vec<String>,
    auth_methods: Vec<String>,
}

/// A sign-in under way: send the person to [`Authorization::url`], then hand the redirect to
/// [`Authorization::finish`].
#[derive(Debug)]
pub struct Authorization {
    url: String,
    state: String,
    verifier: String,
    redirect_uri: String,
    endpoints: Endpoints,
    client_id: String,
    client_secret: Option<String>,
    auth_method: String,
    http: reqwest::Client,
}

fn random_text(bytes: usize) -> Result<String, OAuthError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer)
        .map_err(|error| OAuthError::Unsupported(format!("the system offers no secure random numbers: {error}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer))
}

/// An HTTP client for the authorization flow: no redirects followed (a redirect is an answer to read, not to
/// chase with the person's codes), bounded requests.
fn http_client() -> Result<reqwest::Client, OAuthError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|error| OAuthError::Unsupported(format!("cannot make an HTTP client: {error}")))
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Option<Value>, OAuthError> {
    let response = http
        .get(url)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|error| OAuthError::Request { what: format!("fetching {url}"), reason: error.to_string() })?;
    if !response.status().is_success() {
        return Ok(None);
    }
    let body = response.bytes().await.unwrap_or_default();
    Ok(serde_json::from_slice::<Value>(&body).ok().filter(Value::is_object))
}

/// `https://host/.well-known/{name}{path}`: the well-known location for a URL with a path (RFC 8414, RFC 9728).
fn well_known(url: &reqwest::Url, name: &str, with_path: bool) -> String {
    let path = url.path().trim_end_matches('/');
    let suffix = if with_path { path } else { "" };
    format!("{}/.well-known/{name}{suffix}", url.origin().ascii_serialization())
}

/// Whether two issuer identifiers name the same server: compared as strings, with no normalisation of case,
/// ports, trailing slashes or escapes (RFC 8414 section 3.3, RFC 9207 section 2.4), since a look-alike is
/// exactly what a mix-up attack uses.
fn same_issuer(a: &str, b: &str) -> bool {
    a == b
}

/// Whether protected-resource metadata's `resource` is the server errand is signing in to: the same URL, or
/// one the server's URL lies under (RFC 9728 section 3.3). Metadata for another resource would have errand
/// ask for tokens meant for someone else.
fn resource_covers(resource: &str, server_url: &str) -> bool {
    let resource = resource.trim_end_matches('/');
    server_url == resource
        || server_url.trim_end_matches('/') == resource
        || server_url.strip_prefix(resource).is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'))
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
}

async fn discover(http: &reqwest::Client, server_url: &str, challenge: &Challenge) -> Result<Endpoints, OAuthError> {
    let server = reqwest::Url::parse(server_url)
        .map_err(|error| OAuthError::Unsupported(format!("{server_url} is not a URL: {error}")))?;
    // Protected-resource metadata: where the challenge says, else path-based, else at the root.
    let mut candidates = Vec::new();
    candidates.extend(challenge.resource_metadata.clone());
    if !server.path().trim_end_matches('/').is_empty() {
        candidates.push(well_known(&server, "oauth-protected-resource", true));
    }
    candidates.push(well_known(&server, "oauth-protected-resource", false));
    let mut resource_metadata = None;
    for candidate in candidates {
        if let Some(found) = get_json(http, &candidate).await? {
            resource_metadata = Some(found);
            break;
        }
    }
    let (resource, named_issuer, scopes_supported) = match &resource_metadata {
        Some(metadata) => (
            metadata["resource"].as_str().unwrap_or(server_url).to_string(),
            strings(&metadata["authorization_servers"]).into_iter().next(),
            strings(&metadata["scopes_supported"]),
        ),
        None => (server_url.to_string(), None, Vec::new()),
    };
    if !resource_covers(&resource, server_url) {
        return Err(OAuthError::Unsupported(format!(
            "the server's protected-resource metadata is for {resource}, not {server_url}; errand does not sign in \
             with metadata for another resource (RFC 9728 section 3.3). Check the server's URL, or tell its owner"
        )));
    }
    // Servers of the 2025-03-26 protocol have no resource metadata: their origin is the authorization server,
    // and its name is whatever its own metadata says.
    let guessed = named_issuer.is_none();
    let issuer = named_issuer.unwrap_or_else(|| server.origin().ascii_serialization());
    let issuer_url = reqwest::Url::parse(&issuer).map_err(|error| {
        OAuthError::Unsupported(format!("the authorization server {issuer:?} is not a URL: {error}"))
    })?;
    let has_path = !issuer_url.path().trim_end_matches('/').is_empty();
    let candidates = if has_path {
        vec![
            well_known(&issuer_url, "oauth-authorization-server", true),
            well_known(&issuer_url, "openid-configuration", true),
            format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')),
        ]
    } else {
        vec![
            well_known(&issuer_url, "oauth-authorization-server", false),
            well_known(&issuer_url, "openid-configuration", false),
        ]
    };
    let mut metadata = None;
    for candidate in candidates {
        if let Some(found) = get_json(http, &candidate).await? {
            metadata = Some(found);
            break;
        }
    }
    let origin = issuer_url.origin().ascii_serialization();
    let Some(metadata) = metadata else {
        // The 2025-03-26 fallback: the default endpoints at the authorization server's root.
        return Ok(Endpoints {
            resource,
            issuer,
            names_itself: false,
            metadata_documents: false,
            authorization: format!("{origin}/authorize"),
            token: format!("{origin}/token"),
            registration: Some(format!("{origin}/register")),
            scopes_supported,
            auth_methods: Vec::new(),
        });
    };
    // Metadata that names another issuer is not this server's (RFC 8414 section 3.3): following its endpoints
    // would hand the sign-in to whoever wrote it.
    if let Some(named) = metadata["issuer"].as_str()
        && !guessed
        && !same_issuer(named, &issuer)
    {
        return Err(OAuthError::Unsupported(format!(
            "the authorization server metadata fetched for {issuer} names the issuer {named}; errand does not sign in \
             with metadata that is not the server's own (RFC 8414 section 3.3). Tell the server's owner"
        )));
    }
    let methods = strings(&metadata["code_challenge_methods_supported"]);
    if !methods.is_empty() && !methods.iter().any(|method| method == "S256") {
        return Err(OAuthError::Unsupported(format!(
            "the authorization server {issuer} does not support PKCE with S256, which errand requires"
        )));
    }
    let endpoint = |key: &str| metadata[key].as_str().map(str::to_string);
    let issuer = match metadata["issuer"].as_str() {
        Some(named) if guessed => named.to_string(),
        _ => issuer,
    };
    Ok(Endpoints {
        resource,
        names_itself: metadata["authorization_response_iss_parameter_supported"].as_bool() == Some(true),
        metadata_documents: metadata["client_id_metadata_document_supported"].as_bool() == Some(true),
        issuer,
        authorization: endpoint("authorization_endpoint").unwrap_or_else(|| format!("{origin}/authorize")),
        token: endpoint("token_endpoint").unwrap_or_else(|| format!("{origin}/token")),
        registration: endpoint("registration_endpoint"),
        scopes_supported,
        auth_methods: strings(&metadata["token_endpoint_auth_methods_supported"]),
    })
}

/// Starts signing in to the server at `server_url`: discovers where, registers errand as a client (or uses
/// the pre-registered one), and builds the authorization address for `redirect_uri` with PKCE. `challenge`
/// is the server's `WWW-Authenticate` header, when it sent one; its scope wins over the advertised ones.
/// `earlier` is what an earlier sign-in to the server holds: signing in again with the same authorization
/// server (a step-up for more scope) asks for its scope too, so what worked before keeps working (SEP-2350).
/// Credentials are the issuer's: a server that moved to another authorization server starts afresh there.
pub async fn authorize(
    server_url: &str,
    challenge: Option<&str>,
    redirect_uri: &str,
    registration: &Registration,
    earlier: Option<&Credentials>,
) -> Result<Authorization, OAuthError> {
    let http = http_client()?;
    let challenge = challenge.map(Challenge::parse).unwrap_or_default();
    let endpoints = discover(&http, server_url, &challenge).await?;
    let (client_id, client_secret, auth_method) = match registration {
        Registration::PreRegistered { client_id, client_secret } => {
            let method = match client_secret {
                None => "none",
                Some(_) if endpoints.auth_methods.iter().any(|m| m == "client_secret_basic") => "client_secret_basic",
                Some(_) if endpoints.auth_methods.iter().any(|m| m == "client_secret_post") => "client_secret_post",
                Some(_) => "client_secret_basic",
            };
            (client_id.clone(), client_secret.clone(), method.to_string())
        }
        // A metadata document is a public client's identity: the server reads who errand is from it, and
        // there is no secret to present.
        Registration::MetadataDocument { url } if endpoints.metadata_documents => (url.clone(), None, "none".into()),
        Registration::MetadataDocument { .. } | Registration::Dynamic => {
            register(&http, &endpoints, redirect_uri).await?
        }
    };
    let scope = challenge
        .scope
        .clone()
        .or_else(|| (!endpoints.scopes_supported.is_empty()).then(|| endpoints.scopes_supported.join(" ")));
    // Credentials kept before errand recorded issuers count as this issuer's.
    let earlier_scope = earlier
        .filter(|earlier| earlier.issuer.as_deref().is_none_or(|issuer| same_issuer(issuer, &endpoints.issuer)))
        .and_then(|earlier| earlier.scope.as_deref());
    let scope = scope_union(scope.as_deref(), earlier_scope);
    let verifier = random_text(48)?;
    let code_challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let state = random_text(24)?;
    let mut url = reqwest::Url::parse(&endpoints.authorization).map_err(|error| {
        OAuthError::Unsupported(format!(
            "the authorization endpoint {:?} is not a URL: {error}",
            endpoints.authorization
        ))
    })?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_challenge", &code_challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state)
            .append_pair("resource", &endpoints.resource);
        if let Some(scope) = &scope {
            query.append_pair("scope", scope);
        }
    }
    Ok(Authorization {
        url: url.to_string(),
        state,
        verifier,
        redirect_uri: redirect_uri.to_string(),
        endpoints,
        client_id,
        client_secret,
        auth_method,
        http,
    })
}

/// Whether `url` can be a client ID metadata document's address: `https`, with a path to the document, and
/// neither a fragment nor credentials (draft-ietf-oauth-client-id-metadata-document, section 3).
pub fn check_metadata_url(url: &str) -> Result<(), OAuthError> {
    let refused = |why: &str| {
        OAuthError::Unsupported(format!(
            "{url:?} cannot be a client ID metadata document's address: {why}; give the https address where the \
             document `errand mcp client-metadata URL` prints is published"
        ))
    };
    let parsed = reqwest::Url::parse(url).map_err(|error| refused(&error.to_string()))?;
    if parsed.scheme() != "https" {
        return Err(refused("it must use https"));
    }
    if parsed.path().trim_start_matches('/').is_empty() {
        return Err(refused("it must have a path to the document"));
    }
    if parsed.fragment().is_some() || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refused("it must not have a fragment or a user name"));
    }
    Ok(())
}

/// The client ID metadata document to publish at `url` for errand: a public client (no secret) that signs
/// people in with the authorization code flow and PKCE, redirected back to errand on the loopback address.
/// errand listens on a port the system picks, so the redirect addresses leave the port out: authorization
/// servers let native clients' loopback ports vary (RFC 8252, section 7.3).
pub fn client_metadata_document(url: &str) -> Value {
    serde_json::json!({
        "client_id": url,
        "client_name": "errand",
        "redirect_uris": ["http://127.0.0.1/callback", "http://localhost/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    })
}

/// The scopes of `wanted` with those of `earlier` it lacks, in order, each once; `None` when both are empty.
fn scope_union(wanted: Option<&str>, earlier: Option<&str>) -> Option<String> {
    let mut scopes: Vec<&str> = Vec::new();
    for scope in wanted.into_iter().chain(earlier).flat_map(str::split_whitespace) {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    (!scopes.is_empty()).then(|| scopes.join(" "))
}

/// Dynamic client registration: errand as a public client when the server allows, else as the confidential
/// client the server makes it.
async fn register(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    redirect_uri: &str,
) -> Result<(String, Option<String>, String), OAuthError> {
    let Some(registration) = &endpoints.registration else {
        return Err(OAuthError::Unsupported(
            "the authorization server does not let clients register themselves; register errand with it and add \
             the client id to the server's entry"
                .into(),
        ));
    };
    let methods = &endpoints.auth_methods;
    let wanted = if methods.is_empty() || methods.iter().any(|m| m == "none") {
        "none"
    } else if methods.iter().any(|m| m == "client_secret_basic") {
        "client_secret_basic"
    } else {
        "client_secret_post"
    };
    let body = serde_json::json!({
        "client_name": "errand",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": wanted,
        // A program on the person's machine, redirected to loopback (SEP-837, RFC 8252).
        "application_type": "native",
    });
    let what = format!("registering errand with {registration}");
    let response = http
        .post(registration)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|error| OAuthError::Request { what: what.clone(), reason: error.to_string() })?;
    let status = response.status();
    let answer: Value = serde_json::from_slice(&response.bytes().await.unwrap_or_default()).unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(OAuthError::Request { what, reason: format!("{status}: {answer}") });
    }
    let Some(client_id) = answer["client_id"].as_str() else {
        return Err(OAuthError::Request { what, reason: "the answer has no client_id".into() });
    };
    let secret = answer["client_secret"].as_str().map(str::to_string);
    let method = match (answer["token_endpoint_auth_method"].as_str(), &secret) {
        (Some(method), _) => method.to_string(),
        (None, None) => "none".to_string(),
        (None, Some(_)) if wanted == "none" => "client_secret_basic".to_string(),
        (None, Some(_)) => wanted.to_string(),
    };
    Ok((client_id.to_string(), secret, method))
}

/// Posts a token request with the client's authentication, and reads the tokens.
async fn token_request(
    http: &reqwest::Client,
    token_endpoint: &str,
    client_id: &str,
    client_secret: Option<&str>,
    auth_method: &str,
    fields: &[(&str, &str)],
) -> Result<Value, OAuthError> {
    // The form is built before any await: its serializer cannot be held across one in a Send future.
    let (body, basic) = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in fields {
            form.append_pair(key, value);
        }
        let mut basic = None;
        match (auth_method, client_secret) {
            ("client_secret_basic", Some(secret)) => {
                let encode = |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", encode(client_id), encode(secret));
                basic = Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)));
            }
            ("client_secret_post", Some(secret)) => {
                form.append_pair("client_id", client_id).append_pair("client_secret", secret);
            }
            _ => {
                form.append_pair("client_id", client_id);
            }
        }
        (form.finish(), basic)
    };
    let mut request = http.post(token_endpoint).header(http::header::ACCEPT, "application/json");
    if let Some(basic) = basic {
        request = request.header(http::header::AUTHORIZATION, basic);
    }
    let what = format!("asking {token_endpoint} for a token");
    let response = request
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|error| OAuthError::Request { what: what.clone(), reason: error.to_string() })?;
    let status = response.status();
    let answer: Value = serde_json::from_slice(&response.bytes().await.unwrap_or_default()).unwrap_or(Value::Null);
    if !status.is_success() || answer["access_token"].as_str().is_none() {
        // The answer's error fields only: a token endpoint's answer never reaches a message whole.
        let reason = format!(
            "{status}: {} {}",
            answer["error"].as_str().unwrap_or("no access token in the answer"),
            answer["error_description"].as_str().unwrap_or("")
        );
        return Err(OAuthError::Request { what, reason: reason.trim().to_string() });
    }
    Ok(answer)
}

/// `earlier` with the tokens of a token endpoint's `answer`: a new access token, its expiry and scope, and the
/// refresh token the answer gives (else the one `earlier` held).
fn with_tokens(earlier: Credentials, answer: &Value) -> Credentials {
    Credentials {
        access_token: answer["access_token"].as_str().unwrap_or_default().to_string(),
        refresh_token: answer["refresh_token"].as_str().map(str::to_string).or(earlier.refresh_token),
        expires_at: answer["expires_in"].as_u64().map(|seconds| now() + seconds),
        scope: answer["scope"].as_str().map(str::to_string),
        ..earlier
    }
}

impl Authorization {
    /// Where to send the person.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The authorization server signing the person in (its `issuer`).
    pub fn issuer(&self) -> &str {
        &self.endpoints.issuer
    }

    /// Exchanges the code of the redirect back to errand (the query of the redirect URL) for tokens.
    pub async fn finish(self, redirect_query: &str) -> Result<Credentials, OAuthError> {
        let pairs: BTreeMap<String, String> =
            url::form_urlencoded::parse(redirect_query.as_bytes()).into_owned().collect();
        if let Some(error) = pairs.get("error") {
            let description = pairs.get("error_description").map(String::as_str).unwrap_or("");
            return Err(OAuthError::Redirect(format!("the authorization server refused: {error} {description}")));
        }
        if pairs.get("state") != Some(&self.state) {
            return Err(OAuthError::Redirect(
                "the redirect does not belong to this sign-in (its state differs); start again".into(),
            ));
        }
        // RFC 9207: a redirect naming another authorization server is a mix-up (a code meant for that server
        // would be sent to this one's token endpoint, or the other way round), and a server that says it names
        // itself must do so.
        match pairs.get("iss") {
            Some(iss) if !same_issuer(iss, &self.endpoints.issuer) => {
                return Err(OAuthError::Redirect(format!(
                    "the redirect comes from the authorization server {iss}, but errand asked {}; its code was not \
                     used (RFC 9207: this is how a mix-up attack looks). Start again, and tell the server's owner \
                     if it repeats",
                    self.endpoints.issuer
                )));
            }
            None if self.endpoints.names_itself => {
                return Err(OAuthError::Redirect(format!(
                    "the redirect does not name its authorization server, though {} says it always does (RFC 9207); \
                     its code was not used. Start again",
                    self.endpoints.issuer
                )));
            }
            _ => {}
        }
        let Some(code) = pairs.get("code") else {
            return Err(OAuthError::Redirect("the redirect carries no authorization code".into()));
        };
        let answer = token_request(
            &self.http,
            &self.endpoints.token,
            &self.client_id,
            self.client_secret.as_deref(),
            &self.auth_method,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("code_verifier", &self.verifier),
                ("resource", &self.endpoints.resource),
            ],
        )
        .await?;
        let issued = Credentials {
            resource: self.endpoints.resource.clone(),
            token_endpoint: self.endpoints.token.clone(),
            client_id: self.client_id,
            client_secret: self.client_secret,
            auth_method: self.auth_method,
            access_token: String::new(),
            refresh_token: None,
            expires_at: None,
            scope: None,
            issuer: Some(self.endpoints.issuer),
        };
        Ok(with_tokens(issued, &answer))
    }
}

/// Trades a refresh token for a new access token.
pub async fn refresh(credentials: &Credentials) -> Result<Credentials, OAuthError> {
    let Some(refresh_token) = &credentials.refresh_token else {
        return Err(OAuthError::Unsupported("the server gave no refresh token; sign in again".into()));
    };
    let http = http_client()?;
    let answer = token_request(
        &http,
        &credentials.token_endpoint,
        &credentials.client_id,
        credentials.client_secret.as_deref(),
        &credentials.auth_method,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("resource", &credentials.resource)],
    )
    .await?;
    Ok(with_tokens(credentials.clone(), &answer))
}

/// Follows an authorization address the way a browser whose person approves at once would, without a
/// browser: the authorization server's redirect to `redirect_uri` is read, not followed. For automated
/// clients (the conformance suite's servers approve without asking); a person signs in in their browser.
pub async fn approve_without_browser(authorization: &Authorization) -> Result<String, OAuthError> {
    let what = format!("opening {}", authorization.endpoints.authorization);
    let response = authorization
        .http
        .get(&authorization.url)
        .send()
        .await
        .map_err(|error| OAuthError::Request { what: what.clone(), reason: error.to_string() })?;
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| OAuthError::Request { what, reason: format!("{} without a redirect", response.status()) })?;
    let location = reqwest::Url::parse(location)
        .map_err(|error| OAuthError::Redirect(format!("the redirect {location:?} is not a URL: {error}")))?;
    Ok(location.query().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_quoted_or_bare() {
        let challenge = Challenge::parse(
            r#"Bearer error="insufficient_scope", scope="mcp:basic mcp:write", resource_metadata="http://h/.well-known/oauth-protected-resource/mcp""#,
        );
        assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(challenge.scope.as_deref(), Some("mcp:basic mcp:write"));
        assert_eq!(challenge.resource_metadata.as_deref(), Some("http://h/.well-known/oauth-protected-resource/mcp"));
        let bare = Challenge::parse("Bearer realm=x, error=invalid_token");
        assert_eq!(bare.error.as_deref(), Some("invalid_token"));
        assert_eq!(Challenge::parse(""), Challenge::default());
    }

    #[test]
    fn well_known_locations_insert_the_path() {
        let url = reqwest::Url::parse("https://auth.example/tenant1/").unwrap();
        assert_eq!(
            well_known(&url, "oauth-authorization-server", true),
            "https://auth.example/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            well_known(&url, "oauth-protected-resource", false),
            "https://auth.example/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn the_store_is_private_and_round_trips() {
        use std::os::unix::fs::PermissionsExt as _;
        let folder = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(folder.path().join("mcp-credentials.json"));
        assert_eq!(store.get("https://s/mcp").unwrap(), None);
        let credentials = Credentials {
            resource: "https://s/mcp".into(),
            token_endpoint: "https://a/token".into(),
            client_id: "c".into(),
            client_secret: None,
            auth_method: "none".into(),
            access_token: "secret-token".into(),
            refresh_token: Some("r".into()),
            expires_at: Some(now() + 30),
            scope: None,
            issuer: Some("https://a".into()),
        };
        store.put("https://s/mcp", &credentials).unwrap();
        assert_eq!(store.get("https://s/mcp").unwrap(), Some(credentials.clone()));
        let mode = std::fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(credentials.expired(), "30 s left is inside the refresh margin");
        assert!(store.remove("https://s/mcp").unwrap());
        assert!(!store.remove("https://s/mcp").unwrap());
        // Credentials kept before errand recorded the issuer still read.
        std::fs::write(
            store.path(),
            r#"{"https://s/mcp": {"resource": "https://s/mcp", "token_endpoint": "https://a/token", "client_id": "c",
                "auth_method": "none", "access_token": "t"}}"#,
        )
        .unwrap();
        assert_eq!(store.get("https://s/mcp").unwrap().unwrap().issuer, None);
        std::fs::write(store.path(), "{broken").unwrap();
        let error = store.get("https://s/mcp").unwrap_err().to_string();
        assert!(error.contains("mcp-credentials.json") && error.contains("sign in again"), "{error}");
    }

    fn pending_sign_in(names_itself: bool) -> Authorization {
        Authorization {
            url: "https://auth.example/authorize?x".into(),
            state: "st".into(),
            verifier: "v".into(),
            redirect_uri: "http://127.0.0.1:9/callback".into(),
            endpoints: Endpoints {
                resource: "https://s/mcp".into(),
                metadata_documents: false,
                issuer: "https://auth.example".into(),
                names_itself,
                // Nothing listens here: a check that lets the redirect through fails on the exchange instead.
                authorization: "http://127.0.0.1:9/authorize".into(),
                token: "http://127.0.0.1:9/token".into(),
                registration: None,
                scopes_supported: Vec::new(),
                auth_methods: Vec::new(),
            },
            client_id: "c".into(),
            client_secret: None,
            auth_method: "none".into(),
            http: http_client().unwrap(),
        }
    }

    #[tokio::test]
    async fn a_redirect_from_another_authorization_server_is_refused_before_its_code_is_used() {
        let mixed = pending_sign_in(false).finish("code=abc&state=st&iss=https%3A%2F%2Fattacker.example").await;
        let error = mixed.unwrap_err().to_string();
        assert!(error.contains("https://attacker.example") && error.contains("mix-up"), "{error}");
        let silent = pending_sign_in(true).finish("code=abc&state=st").await.unwrap_err().to_string();
        assert!(silent.contains("does not name its authorization server"), "{silent}");
        // A look-alike (a trailing slash) is another name.
        let slashed = pending_sign_in(false).finish("code=abc&state=st&iss=https%3A%2F%2Fauth.example%2F").await;
        assert!(slashed.unwrap_err().to_string().contains("mix-up"));
        // The right name, and no name from a server that never sends one, get as far as the code exchange.
        for query in ["code=abc&state=st&iss=https%3A%2F%2Fauth.example", "code=abc&state=st"] {
            let error = pending_sign_in(query.contains("iss")).finish(query).await.unwrap_err();
            assert!(matches!(error, OAuthError::Request { .. }), "{query}: {error}");
        }
        assert!(!same_issuer("https://auth.example", "https://auth.example/tenant"));
        assert!(resource_covers("https://s.example/mcp", "https://s.example/mcp"));
        assert!(resource_covers("https://s.example/", "https://s.example/mcp"));
        assert!(!resource_covers("https://s.example/mc", "https://s.example/mcp"));
        assert!(!resource_covers("https://other.example/mcp", "https://s.example/mcp"));
    }

    #[test]
    fn a_metadata_document_address_is_https_with_a_path() {
        assert!(check_metadata_url("https://example.org/errand/client.json").is_ok());
        for (url, why) in [
            ("http://example.org/client.json", "https"),
            ("https://example.org/", "path"),
            ("https://example.org", "path"),
            ("https://example.org/c.json#x", "fragment"),
            ("https://me@example.org/c.json", "user name"),
            ("not a url", "cannot be"),
        ] {
            let error = check_metadata_url(url).unwrap_err().to_string();
            assert!(error.contains(why), "{url}: {error}");
        }
        let document = client_metadata_document("https://example.org/errand/client.json");
        assert_eq!(document["client_id"], "https://example.org/errand/client.json");
        assert_eq!(document["token_endpoint_auth_method"], "none");
    }

    #[test]
    fn signing_in_again_asks_for_the_earlier_scope_too() {
        assert_eq!(scope_union(Some("mcp:admin"), Some("mcp:read mcp:admin")).as_deref(), Some("mcp:admin mcp:read"));
        assert_eq!(scope_union(None, Some("a")).as_deref(), Some("a"));
        assert_eq!(scope_union(Some("a b"), None).as_deref(), Some("a b"));
        assert_eq!(scope_union(None, Some("  ")), None);
    }
}
