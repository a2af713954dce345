//! Security headers on every response, set once here as middleware.
//!
//! - `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` on
//!   everything: a browser never guesses a script out of a JSON body, and no
//!   URL of ours leaves in a `Referer`.
//! - On HTML (the dashboard, the mobile web app, the demo page and `/docs`):
//!   a `Content-Security-Policy` that allows what those pages load and no
//!   more: scripts from this origin and the exact inline scripts the pages
//!   carry (by SHA-256, computed from `/docs`'s page and the static
//!   directory's HTML when the router is built), styles from this origin and
//!   inline (React and react-native-web set styles at run time), fetches and
//!   WebSockets to this origin only, no plugins, no `<base>` elsewhere; and
//!   `frame-ancestors 'none'` with `X-Frame-Options: DENY`, so no other site
//!   can frame them (clickjacking).
//!
//! The chat widget is not framed: `/widget.js` is a script the tenant's page
//! loads, and it builds its DOM in a shadow root of that page, talking to the
//! API with CORS and a WebSocket. Its own response is JavaScript, so these
//! HTML-only headers do not reach the tenant's page, and nothing here (no
//! `Cross-Origin-Resource-Policy`) stops another origin from loading it.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

/// The headers' fixed part, built once with the router.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    /// The CSP's `script-src` sources: `'self'` and the inline scripts' hashes.
    script_src: String,
}

impl SecurityHeaders {
    /// Allows the inline scripts of `/docs` and of the HTML files under
    /// `static_dir` (its top two levels: `index.html`, `admin/index.html`, …).
    pub fn new(static_dir: Option<&Path>) -> Self {
        let mut pages = vec![super::docs::PAGE.to_owned()];
        if let Some(dir) = static_dir {
            pages.extend(html_files(dir, 2).into_iter().filter_map(|p| std::fs::read_to_string(p).ok()));
        }
        let mut sources: Vec<String> = pages.iter().flat_map(|p| inline_script_hashes(p)).collect();
        sources.sort();
        sources.dedup();
        let mut script_src = "'self'".to_owned();
        if pages.iter().any(|p| !inline_handlers(p).is_empty()) {
            // `onclick="…"` attributes are allowed only by their hash, and only with this keyword.
            script_src.push_str(" 'unsafe-hashes'");
        }
        for s in sources {
            script_src.push(' ');
            script_src.push_str(&s);
        }
        Self { script_src }
    }

    /// The CSP of an HTML page served to `host` (the request's `Host`).
    pub fn content_security_policy(&self, host: Option<&str>) -> String {
        // `'self'` covers ws(s):// to this origin in CSP 3 browsers; older ones
        // need the socket's origin spelled out.
        let sockets = host.filter(|h| plain_host(h)).map(|h| format!(" ws://{h} wss://{h}")).unwrap_or_default();
        format!(
            "default-src 'self'; script-src {}; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; \
             connect-src 'self'{sockets}; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
            self.script_src
        )
    }
}

/// The middleware: see the module docs.
pub async fn security_headers(State(headers): State<Arc<SecurityHeaders>>, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned);
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    let html = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim_start().starts_with("text/html"));
    if html {
        if let Ok(csp) = HeaderValue::from_str(&headers.content_security_policy(host.as_deref())) {
            h.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

/// A `Host` value that can go into a CSP source as is: a name or address and
/// an optional port, nothing that could end the directive.
fn plain_host(h: &str) -> bool {
    !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// `'sha256-…'` of each inline `<script>` (one without `src`) and of each
/// inline event handler attribute in `html`.
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut out: Vec<String> = inline_scripts(html).into_iter().map(hash).collect();
    out.extend(inline_handlers(html).into_iter().map(hash));
    out
}

fn hash(text: &str) -> String {
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes())))
}

/// The bodies of `<script>` elements without a `src` attribute.
fn inline_scripts(html: &str) -> Vec<&str> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<script").map(|i| at + i) {
        let Some(open_end) = lower[start..].find('>').map(|i| start + i + 1) else { break };
        let Some(close) = lower[open_end..].find("</script").map(|i| open_end + i) else { break };
        if !lower[start..open_end].contains(" src=") {
            out.push(&html[open_end..close]);
        }
        at = close;
    }
    out
}

/// The values of `on…="…"` attributes in start tags (written with double
/// quotes and no character references: what our pages use).
fn inline_handlers(html: &str) -> Vec<&str> {
    let b = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if !(b[i] == b'<' && b[i + 1].is_ascii_alphabetic()) {
            i += 1;
            continue;
        }
        // Inside a start tag: attributes up to the `>` outside quotes.
        i += 1;
        while i < b.len() && b[i] != b'>' {
            if b[i].is_ascii_whitespace() {
                i += 1;
                let name = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-') {
                    i += 1;
                }
                let handler = html[name..i].len() > 2 && html[name..i].to_ascii_lowercase().starts_with("on");
                if html[i..].starts_with("=\"") {
                    let value = i + 2;
                    let len = html[value..].find('"').unwrap_or(html.len() - value);
                    if handler {
                        out.push(&html[value..value + len]);
                    }
                    i = value + len + 1;
                }
            } else if b[i] == b'\'' {
                i += html[i + 1..].find('\'').map_or(b.len(), |n| n + 2);
            } else {
                i += 1;
            }
        }
    }
    out
}

/// `*.html` files in `dir` and its subdirectories, `depth` levels down.
fn html_files(dir: &Path, depth: usize) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() && depth > 0 {
            out.extend(html_files(&path, depth - 1));
        } else if path.extension().is_some_and(|x| x == "html") {
            out.push(path);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<html><head><script type="module" src="/a.js"></script><script>let a = 1;</script></head>
<body><button onclick="go()">Go</button><p>Some ongoing text, once="x"</p><SCRIPT>b()</SCRIPT></body></html>"#;

    #[test]
    fn inline_scripts_and_handlers_are_found_and_external_ones_are_not() {
        assert_eq!(inline_scripts(PAGE), vec!["let a = 1;", "b()"]);
        assert_eq!(inline_handlers(PAGE), vec!["go()"]);
        // echo -n 'let a = 1;' | openssl dgst -sha256 -binary | base64
        assert_eq!(hash("let a = 1;"), "'sha256-xY6QKfH9PRsQnLz56nj6MBwiK5oHg+im1Jkpdp1x/Ck='");
        assert_eq!(inline_script_hashes(PAGE).len(), 3);
    }

    #[test]
    fn the_policy_allows_the_docs_script_and_sockets_to_this_host_only() {
        let h = SecurityHeaders::new(None);
        let csp = h.content_security_policy(Some("chat.example.com:8080"));
        assert!(csp.contains(&hash(inline_scripts(super::super::docs::PAGE)[0])), "{csp}");
        assert!(csp.contains("connect-src 'self' ws://chat.example.com:8080 wss://chat.example.com:8080;"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("object-src 'none'"), "{csp}");
        let script_src = csp.split("; ").find(|d| d.starts_with("script-src")).expect("a script-src");
        assert!(!script_src.contains("unsafe-inline") && !script_src.contains("unsafe-eval"), "{script_src}");
        // A Host that would smuggle a directive in is left out.
        let csp = h.content_security_policy(Some("evil; script-src *"));
        assert!(csp.contains("connect-src 'self'; "), "{csp}");
    }
}
