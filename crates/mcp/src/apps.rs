//! MCP Apps (SEP-1865, the `io.modelcontextprotocol/ui` extension): which of a server's tools show a view, the
//! view's HTML and the network it declares, and the Content-Security-Policy a host serves that HTML under.
//! Only this crate reads the protocol's fields; what leaves it is ours.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The extension errand declares in its capabilities, so servers offer their views.
pub const APPS_EXTENSION: &str = "io.modelcontextprotocol/ui";

/// The MIME type of a view's HTML, the only kind of view the extension defines.
pub const APP_MIME_TYPE: &str = "text/html;profile=mcp-app";

/// What a tool says about its view (`_meta.ui`, or the older `_meta["ui/resourceUri"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolUi {
    /// The `ui://` resource that shows the tool's results.
    pub resource_uri: String,
    /// The model may see and call it (`visibility` holds `model`, the default).
    pub for_model: bool,
    /// Its server's views may call it (`visibility` holds `app`, the default).
    pub for_app: bool,
}

impl ToolUi {
    /// Reads a tool's `_meta`; `None` when it names no `ui://` resource.
    pub(crate) fn from_meta(meta: &Value) -> Option<Self> {
        let uri = meta["ui"]["resourceUri"].as_str().or_else(|| meta["ui/resourceUri"].as_str())?;
        if !uri.starts_with("ui://") {
            return None;
        }
        let visibility: Option<Vec<&str>> =
            meta["ui"]["visibility"].as_array().map(|words| words.iter().filter_map(Value::as_str).collect());
        let holds = |word: &str| visibility.as_ref().is_none_or(|words| words.contains(&word));
        Some(Self { resource_uri: uri.to_string(), for_model: holds("model"), for_app: holds("app") })
    }
}

/// The origins a view declares it needs (`_meta.ui.csp`); each list empty means none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppCsp {
    /// Where it may connect (fetch, XHR, WebSocket): `connect-src`.
    #[serde(default)]
    pub connect_domains: Vec<String>,
    /// Where its scripts, styles, images, fonts and media may come from.
    #[serde(default)]
    pub resource_domains: Vec<String>,
    /// What it may embed in frames of its own: `frame-src`.
    #[serde(default)]
    pub frame_domains: Vec<String>,
    /// What its `<base>` may name: `base-uri`.
    #[serde(default)]
    pub base_uri_domains: Vec<String>,
}

/// Whether `origin` may go into a policy as it is: an http(s) or ws(s) origin, perhaps with a `*.` subdomain
/// wildcard, and nothing that could end the directive or widen it (`;`, spaces, quotes, a bare `*`).
fn is_plain_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else { return false };
    let host = rest.strip_prefix("*.").unwrap_or(rest);
    matches!(scheme, "https" | "http" | "wss" | "ws")
        && !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

impl AppCsp {
    /// Reads `_meta.ui.csp`; returns the declaration with only plain origins kept, and what was dropped.
    pub(crate) fn from_meta(csp: &Value) -> (Self, Vec<String>) {
        let mut refused = Vec::new();
        let mut list = |key: &str| -> Vec<String> {
            let mut kept = Vec::new();
            for origin in csp[key].as_array().into_iter().flatten() {
                match origin.as_str() {
                    Some(origin) if is_plain_origin(origin) => kept.push(origin.to_string()),
                    other => refused.push(other.map_or_else(|| origin.to_string(), str::to_string)),
                }
            }
            kept
        };
        let csp = Self {
            connect_domains: list("connectDomains"),
            resource_domains: list("resourceDomains"),
            frame_domains: list("frameDomains"),
            base_uri_domains: list("baseUriDomains"),
        };
        (csp, refused)
    }

    /// The Content-Security-Policy a view is served under: the `sandbox` directive (scripts only: an opaque
    /// origin, so no cookies, storage or same-origin reach into the host), inline script and style, and beyond
    /// that only the origins declared (none by default). Stricter than the extension's default: `'self'` is
    /// never allowed, since the view's URL is on the host's own server, whose API it must not reach. Origins
    /// that are not plain are left out whatever their source, so the policy cannot be widened by injection.
    pub fn policy(&self) -> String {
        let with = |base: &str, origins: &[String], empty: &str| {
            let origins: Vec<&str> =
                origins.iter().map(String::as_str).filter(|origin| is_plain_origin(origin)).collect();
            match (base.is_empty(), origins.is_empty()) {
                (true, true) => empty.to_string(),
                (true, false) => origins.join(" "),
                (false, true) => base.to_string(),
                (false, false) => format!("{base} {}", origins.join(" ")),
            }
        };
        let resources = &self.resource_domains;
        [
            "sandbox allow-scripts".to_string(),
            "default-src 'none'".to_string(),
            format!("script-src {}", with("'unsafe-inline'", resources, "")),
            format!("style-src {}", with("'unsafe-inline'", resources, "")),
            format!("img-src {}", with("data:", resources, "")),
            format!("media-src {}", with("data:", resources, "")),
            format!("font-src {}", with("data:", resources, "")),
            format!("connect-src {}", with("", &self.connect_domains, "'none'")),
            format!("frame-src {}", with("", &self.frame_domains, "'none'")),
            format!("base-uri {}", with("", &self.base_uri_domains, "'none'")),
            "object-src 'none'".to_string(),
            "form-action 'none'".to_string(),
            "frame-ancestors 'self'".to_string(),
        ]
        .join("; ")
    }
}

/// A view as its server sent it (`resources/read` of a `ui://` resource).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppResource {
    /// Its URI.
    pub uri: String,
    /// The HTML document.
    pub html: String,
    /// The origins it declares it needs.
    pub csp: AppCsp,
    /// Declared origins left out because they were not plain origins (a host logs them for review).
    pub refused_domains: Vec<String>,
    /// Whether it wants a border drawn around it, when it says.
    pub prefers_border: Option<bool>,
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_tool_names_its_view_in_either_spelling_with_visibility_defaulting_to_both() {
        let ui = ToolUi::from_meta(&json!({"ui": {"resourceUri": "ui://a/v.html"}})).unwrap();
        assert_eq!((ui.resource_uri.as_str(), ui.for_model, ui.for_app), ("ui://a/v.html", true, true));
        let old = ToolUi::from_meta(&json!({"ui/resourceUri": "ui://a/v.html"})).unwrap();
        assert_eq!(old.resource_uri, "ui://a/v.html");
        let app_only = ToolUi::from_meta(&json!({"ui": {"resourceUri": "ui://a/v", "visibility": ["app"]}})).unwrap();
        assert_eq!((app_only.for_model, app_only.for_app), (false, true));
        assert_eq!(ToolUi::from_meta(&json!({"ui": {"resourceUri": "https://a/v.html"}})), None);
        assert_eq!(ToolUi::from_meta(&json!({})), None);
    }

    #[test]
    fn with_nothing_declared_a_view_reaches_no_network_and_not_its_own_origin() {
        let policy = AppCsp::default().policy();
        assert_eq!(
            policy,
            "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             img-src data:; media-src data:; font-src data:; connect-src 'none'; frame-src 'none'; \
             base-uri 'none'; object-src 'none'; form-action 'none'; frame-ancestors 'self'"
        );
        assert!(!policy.contains("'self' ") && !policy.contains("allow-same-origin"));
    }

    #[test]
    fn declared_origins_are_allowed_and_anything_that_could_widen_the_policy_is_dropped() {
        let (csp, refused) = AppCsp::from_meta(&json!({
            "connectDomains": ["https://api.example.com", "*", "https://x.com; script-src *", "'self'"],
            "resourceDomains": ["https://*.cdn.example", "data:"],
        }));
        assert_eq!(csp.connect_domains, ["https://api.example.com"]);
        assert_eq!(csp.resource_domains, ["https://*.cdn.example"]);
        assert_eq!(refused, ["*", "https://x.com; script-src *", "'self'", "data:"]);
        let policy = csp.policy();
        assert!(policy.contains("connect-src https://api.example.com;"), "{policy}");
        assert!(policy.contains("script-src 'unsafe-inline' https://*.cdn.example;"), "{policy}");
        // Built by hand with a bad origin, the policy still leaves it out.
        let forged = AppCsp { connect_domains: vec!["https://a.b; default-src *".into()], ..AppCsp::default() };
        assert!(forged.policy().contains("connect-src 'none';"), "{}", forged.policy());
    }
}
