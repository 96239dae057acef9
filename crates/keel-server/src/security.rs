//! Request-origin checks, as MLflow 3 enforces them: a `Host` allow-list
//! against DNS rebinding, and refusal of state-changing requests sent by a
//! browser page of another origin (CSRF).

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keel_core::ErrorCode;
use std::sync::Arc;

use crate::error::ApiError;

/// Hosts a request may name in its `Host` header. Patterns: an exact host,
/// `*` (anything), or `*.suffix`/`prefix.*` wildcards. Ports are ignored.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    patterns: Vec<String>,
}

impl AllowedHosts {
    /// Loopback names only: what a server on a laptop should answer to.
    pub fn loopback() -> Self {
        Self::new(
            ["localhost", "127.0.0.1", "::1", "[::1]"]
                .iter()
                .map(|h| h.to_string()),
        )
    }

    pub fn new(patterns: impl IntoIterator<Item = String>) -> Self {
        AllowedHosts {
            patterns: patterns
                .into_iter()
                .map(|p| p.trim().to_ascii_lowercase())
                .filter(|p| !p.is_empty())
                .collect(),
        }
    }

    pub fn allows_any(&self) -> bool {
        self.patterns.iter().any(|p| p == "*")
    }

    /// True when `host_header` (with or without a port) matches a pattern.
    pub fn allows(&self, host_header: &str) -> bool {
        if self.allows_any() {
            return true;
        }
        let host = strip_port(&host_header.trim().to_ascii_lowercase());
        self.patterns
            .iter()
            .any(|pattern| matches_pattern(pattern, &host))
    }
}

fn strip_port(host: &str) -> String {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return match rest.split_once(']') {
            Some((v6, _)) => format!("[{v6}]"),
            None => host.to_string(),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            name.to_string()
        }
        _ => host.to_string(),
    }
}

fn matches_pattern(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    if pattern.starts_with('[') || host.starts_with('[') {
        return pattern.trim_matches(|c| c == '[' || c == ']')
            == host.trim_matches(|c| c == '[' || c == ']');
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return host.ends_with(suffix);
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return host.starts_with(prefix);
    }
    false
}

/// What the origin middleware enforces.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    pub allowed_hosts: AllowedHosts,
    /// Origins (`https://ui.example.com`, `*` or `https://*.example.com`) whose pages may
    /// send state-changing requests; loopback origins and the same origin always may.
    pub cors_allowed_origins: Vec<String>,
}

impl OriginPolicy {
    fn origin_allowed(&self, origin: &str, host_header: Option<&str>) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        let authority = origin
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(&origin);
        if AllowedHosts::loopback().allows(authority) {
            return true;
        }
        if host_header.is_some_and(|host| host.eq_ignore_ascii_case(authority)) {
            return true;
        }
        self.cors_allowed_origins.iter().any(|allowed| {
            let allowed = allowed.trim().to_ascii_lowercase();
            match allowed.split_once('*') {
                None => allowed == origin,
                Some((prefix, suffix)) => {
                    origin.len() >= prefix.len() + suffix.len()
                        && origin.starts_with(prefix)
                        && origin.ends_with(suffix)
                }
            }
        })
    }
}

fn forbidden(message: &str) -> Response {
    ApiError::with_status(StatusCode::FORBIDDEN, ErrorCode::PermissionDenied, message)
        .into_response()
}

/// Middleware: 403 for a `Host` outside the allow-list, and for a POST, PUT,
/// PATCH or DELETE whose `Origin` is neither loopback, the server itself, nor allowed.
pub async fn check_origin(
    State(policy): State<Arc<OriginPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    if !policy.allowed_hosts.allows_any()
        && !host
            .as_deref()
            .is_some_and(|h| policy.allowed_hosts.allows(h))
    {
        return forbidden(
            "Invalid Host header - possible DNS rebinding attack detected; add the host to --allowed-hosts to serve it",
        );
    }
    let state_changing = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if state_changing {
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !policy.origin_allowed(origin, host.as_deref()) {
                return forbidden(
                    "Cross-origin request blocked; add the origin to --cors-allowed-origins to allow it",
                );
            }
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_ports_are_allowed() {
        let allowed = AllowedHosts::loopback();
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:8080",
            "[::1]:5000",
            "LOCALHOST",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in [
            "evil.com",
            "evil.com:5000",
            "127.0.0.1.evil.com",
            "localhost.evil.com",
            "",
        ] {
            assert!(!allowed.allows(host), "{host}");
        }
    }

    #[test]
    fn wildcards() {
        let allowed = AllowedHosts::new(["*.example.com".to_string(), "10.*".to_string()]);
        assert!(allowed.allows("ml.example.com:443"));
        assert!(allowed.allows("10.1.2.3"));
        assert!(!allowed.allows("example.org"));
        assert!(AllowedHosts::new(["*".to_string()]).allows("anything"));
    }

    #[test]
    fn origins() {
        let policy = OriginPolicy {
            allowed_hosts: AllowedHosts::loopback(),
            cors_allowed_origins: vec!["https://*.example.com".to_string()],
        };
        assert!(policy.origin_allowed("http://localhost:3000", Some("localhost:5000")));
        assert!(policy.origin_allowed("http://ml.corp:5000", Some("ml.corp:5000")));
        assert!(policy.origin_allowed("https://ui.example.com", None));
        assert!(!policy.origin_allowed("http://evil.example", Some("localhost:5000")));
        assert!(!policy.origin_allowed("null", Some("localhost:5000")));
    }
}
