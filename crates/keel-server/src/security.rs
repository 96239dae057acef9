//! Host-header allow-list against DNS rebinding, as MLflow 3 enforces it.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
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
        Self::new(["localhost", "127.0.0.1", "::1", "[::1]"].iter().map(|h| h.to_string()))
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
        self.patterns.iter().any(|pattern| matches_pattern(pattern, &host))
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
        return pattern.trim_matches(|c| c == '[' || c == ']') == host.trim_matches(|c| c == '[' || c == ']');
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return host.ends_with(suffix);
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return host.starts_with(prefix);
    }
    false
}

/// Middleware: refuses requests whose `Host` is not allowed with 403.
pub async fn check_host(
    State(allowed): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    if allowed.allows_any() {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match host {
        Some(host) if allowed.allows(&host) => next.run(request).await,
        _ => ApiError::with_status(
            StatusCode::FORBIDDEN,
            ErrorCode::PermissionDenied,
            "Invalid Host header - possible DNS rebinding attack detected; add the host to --allowed-hosts to serve it",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_ports_are_allowed() {
        let allowed = AllowedHosts::loopback();
        for host in ["localhost", "localhost:5000", "127.0.0.1:8080", "[::1]:5000", "LOCALHOST"] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in ["evil.com", "evil.com:5000", "127.0.0.1.evil.com", "localhost.evil.com", ""] {
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
}
