//! The checks every request passes before a handler runs: the Host header names this server (against DNS
//! rebinding), a browser's Origin is this server's own (against cross-site requests), and the request carries
//! the per-install token (header `Authorization: Bearer TOKEN`, or the `errand_token` cookie the page sets).

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, AUTHORIZATION, COOKIE, HOST, ORIGIN};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{AppState, ServerError};

/// The cookie that carries the token for the page.
pub(crate) const TOKEN_COOKIE: &str = "errand_token";

pub(crate) async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // The page's address carries the token once (`errand serve --open`); it becomes a cookie.
    let from_address = (request.uri().path() == "/")
        .then(|| request.uri().query().unwrap_or_default().split('&').find_map(|pair| pair.strip_prefix("token=")))
        .flatten()
        .map(str::to_string);
    match verdict(&state, request.headers(), from_address.as_deref()) {
        Ok(()) => {
            let mut response = next.run(request).await;
            if from_address.is_some()
                && let Ok(cookie) = axum::http::HeaderValue::from_str(&format!(
                    "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
                    state.config.token
                ))
            {
                response.headers_mut().insert(axum::http::header::SET_COOKIE, cookie);
            }
            response
        }
        // A person's browser gets a page saying how to get in; API clients keep their JSON error.
        Err(ServerError::Unauthorized) if wants_html(request.headers()) => how_to_sign_in(&state),
        Err(error) => error.into_response(),
    }
}

/// True when the client prefers a page to JSON, as browsers navigating do (`Accept: text/html,…`).
fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(ACCEPT).and_then(|value| value.to_str().ok()).is_some_and(|accept| accept.contains("text/html"))
}

/// The page a browser without the token gets: what to run to open the desk signed in. It names where the
/// token is kept, never the token.
fn how_to_sign_in(state: &AppState) -> Response {
    let addr = state.config.addr;
    let page = format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>errand: open the desk from your terminal</title></head>
<body>
<main>
<h1>Open the desk from your terminal</h1>
<p>The desk needs errand's token, and this browser has not been given it yet (or was given an old one).</p>
<ul>
<li>Run <code>errand serve --open</code>: it opens the desk in your browser, signed in.
If a server is already running, stop it first, or use the next way.</li>
<li>Or open <code>http://{addr}/?token=TOKEN</code>, where TOKEN is the content of the file
<code>server-token</code> beside errand's <code>config.toml</code> (<code>errand serve</code> printed its path
when it started).</li>
</ul>
<p>The browser keeps the token afterwards, so this is needed once.</p>
</main>
</body>
</html>
"#
    );
    (
        axum::http::StatusCode::UNAUTHORIZED,
        [(axum::http::header::CONTENT_SECURITY_POLICY, "default-src 'none'")],
        axum::response::Html(page),
    )
        .into_response()
}

fn verdict(state: &AppState, headers: &HeaderMap, from_address: Option<&str>) -> Result<(), ServerError> {
    let port = state.config.addr.port();
    let allowed_hosts = allowed_hosts(state);
    let host = headers.get(HOST).and_then(|value| value.to_str().ok()).unwrap_or_default();
    if !allowed_hosts.iter().any(|allowed| allowed == host) {
        return Err(ServerError::Forbidden(format!(
            "the Host header {host:?} does not name this server; use http://127.0.0.1:{port}/"
        )));
    }
    if let Some(origin) = headers.get(ORIGIN).and_then(|value| value.to_str().ok())
        && !allowed_hosts.iter().any(|allowed| origin == format!("http://{allowed}"))
    {
        return Err(ServerError::Forbidden(format!("requests from {origin} are not allowed")));
    }
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let cookie = headers.get_all(COOKIE).iter().filter_map(|value| value.to_str().ok()).find_map(|cookies| {
        cookies
            .split(';')
            .find_map(|pair| pair.trim().strip_prefix(TOKEN_COOKIE).and_then(|rest| rest.strip_prefix('=')))
    });
    let presented = bearer.or(cookie).or(from_address).unwrap_or_default();
    if !constant_time_eq(presented.as_bytes(), state.config.token.as_bytes()) {
        return Err(ServerError::Unauthorized);
    }
    Ok(())
}

/// `host:port` spellings that reach this server.
fn allowed_hosts(state: &AppState) -> Vec<String> {
    let addr = state.config.addr;
    let port = addr.port();
    let mut hosts = vec![addr.to_string()];
    if addr.ip().is_loopback() {
        hosts.extend([format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}")]);
    }
    hosts
}

/// Compares without an early exit, so the time taken does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}
