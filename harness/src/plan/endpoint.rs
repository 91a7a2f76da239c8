//! A target URL, parsed: scheme (and so the protocol), host, port, path, query; and back.
//!
//! Receives a `ws://`, `wss://`, `http://` or `https://` URL, possibly with `{room}` in it (a
//! raw WS broadcast template). Emits an [`Endpoint`] and the protocol the scheme implies;
//! [`Endpoint::url`] writes an endpoint as a URL again (the run file's `target`).
//! Must not: resolve or connect.

use crate::model::Protocol;

/// Where the target is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// URL path: the WebSocket path (raw WS) or the namespace (Socket.IO).
    pub path: String,
    /// URL query string, without `?`.
    pub query: Option<String>,
}

impl Endpoint {
    /// Parses `ws://`, `wss://`, `http://`, `https://` URLs. Returns the endpoint and the
    /// protocol the scheme implies.
    pub fn parse(url: &str) -> Result<(Endpoint, Protocol), String> {
        // `{room}`, `{client}` and `{FIELD}` placeholders are not valid in a URI: parse
        // around them.
        let probe = url.replace('{', MARK_OPEN).replace('}', MARK_CLOSE);
        // Errors show the URL with its query values and password as `***` (secrets).
        let shown = reports::redact::redact_url(url);
        let uri: http::Uri = probe
            .parse()
            .map_err(|e| format!("invalid URL {shown:?}: {e}"))?;
        let (tls, protocol) = match uri.scheme_str() {
            Some("ws") => (false, Protocol::Ws),
            Some("wss") => (true, Protocol::Ws),
            Some("http") => (false, Protocol::Socketio),
            Some("https") => (true, Protocol::Socketio),
            _ => {
                return Err(format!(
                    "invalid URL {shown:?}: the scheme must be ws, wss, http or https"
                ));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("invalid URL {shown:?}: no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path = if uri.path().is_empty() {
            "/".to_string()
        } else {
            unmark(uri.path())
        };
        Ok((
            Endpoint {
                tls,
                host,
                port,
                path,
                query: uri.query().map(unmark),
            },
            protocol,
        ))
    }

    /// The URL of this endpoint spoken with `protocol` (the inverse of [`Endpoint::parse`],
    /// with the port always written). Not redacted: callers redact before showing it.
    pub fn url(&self, protocol: Protocol) -> String {
        let scheme = match (protocol, self.tls) {
            (Protocol::Ws, false) => "ws",
            (Protocol::Ws, true) => "wss",
            (Protocol::Socketio, false) => "http",
            (Protocol::Socketio, true) => "https",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let query = self
            .query
            .as_ref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        format!("{scheme}://{host}:{}{}{query}", self.port, self.path)
    }
}

const MARK_OPEN: &str = "__swarm_ph_open__";
const MARK_CLOSE: &str = "__swarm_ph_close__";

fn unmark(s: &str) -> String {
    s.replace(MARK_OPEN, "{").replace(MARK_CLOSE, "}")
}
