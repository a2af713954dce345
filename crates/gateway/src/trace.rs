//! Trace context, W3C style, so that one customer message can be followed
//! from the gateway through the log to the AI worker and back.
//!
//! Each HTTP request and each WebSocket frame gets a [`TraceContext`]: the
//! caller's `traceparent` (`00-<trace id>-<parent span id>-<flags>`, from
//! the header or a frame's `traceparent` field) when it sends a valid one,
//! else a new trace. The gateway opens a `tracing` span carrying `trace_id`
//! and `span_id` around the work, answers with its own `traceparent`, and
//! stamps the trace id on the commands it executes as their
//! **correlation id** (a trace id and a UUID are both 16 bytes), so it is
//! stored in every event's metadata; the AI worker copies the correlation id
//! of the message it answers onto its answer.
//!
//! These spans are exported over OTLP when the binary is told to (see
//! `src/telemetry.rs`): the `trace_id`, `span_id` and `parent_id` fields are
//! the span's OpenTelemetry ids, so the trace a client started in its
//! `traceparent` is the one the exporter reports. Spans opened inside this
//! one (the command handler's `command` and `append`) are its children; the
//! AI worker and the push hub continue the trace from an event's metadata.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// A trace id, this hop's span id, and the caller's span (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_id: Option<[u8; 8]>,
    pub sampled: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 || !s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

fn random_span() -> [u8; 8] {
    loop {
        let mut s = [0u8; 8];
        rand::fill(&mut s);
        if s != [0; 8] {
            return s;
        }
    }
}

impl TraceContext {
    /// A new trace (no caller span).
    pub fn generate() -> Self {
        let mut trace_id = [0u8; 16];
        while trace_id == [0; 16] {
            rand::fill(&mut trace_id);
        }
        Self { trace_id, span_id: random_span(), parent_id: None, sampled: true }
    }

    /// A child of the caller's `traceparent`, or `None` if it is not a valid
    /// version-00 header (all-zero ids are invalid, as the spec says).
    pub fn from_traceparent(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || version != "00" {
            return None;
        }
        let trace_id = unhex::<16>(trace).filter(|t| *t != [0; 16])?;
        let parent_id = unhex::<8>(parent).filter(|p| *p != [0; 8])?;
        let flags = unhex::<1>(flags)?;
        Some(Self { trace_id, span_id: random_span(), parent_id: Some(parent_id), sampled: flags[0] & 1 == 1 })
    }

    /// The caller's context if valid, else a new trace.
    pub fn from_optional(header: Option<&str>) -> Self {
        header.and_then(Self::from_traceparent).unwrap_or_else(Self::generate)
    }

    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }

    /// This hop's `traceparent` (for responses and downstream calls).
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id_hex(), self.span_id_hex(), u8::from(self.sampled))
    }

    /// The trace id as the correlation id stored in events' metadata.
    pub fn correlation_id(&self) -> uuid::Uuid {
        uuid::Uuid::from_bytes(self.trace_id)
    }

    /// The `tracing` span of this hop.
    pub fn span(&self, name: &'static str) -> tracing::Span {
        match name {
            "ws_frame" => {
                tracing::info_span!("ws_frame", otel.kind = "server", trace_id = %self.trace_id_hex(), span_id = %self.span_id_hex(), parent_id = self.parent_id.map(|p| hex(&p)))
            }
            _ => {
                tracing::info_span!("request", otel.kind = "server", trace_id = %self.trace_id_hex(), span_id = %self.span_id_hex(), parent_id = self.parent_id.map(|p| hex(&p)))
            }
        }
    }
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The trace context of the request or frame being served, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|t| *t).ok()
}

/// Runs `f` as the work of `trace`: inside its span, with [`current`] set.
pub async fn scope<F: std::future::Future>(trace: TraceContext, name: &'static str, f: F) -> F::Output {
    let span = trace.span(name);
    CURRENT.scope(trace, f.instrument(span)).await
}

/// The HTTP middleware: a trace context per request, and a `traceparent`
/// response header naming the gateway's span.
pub async fn middleware(req: Request, next: Next) -> Response {
    let header = req.headers().get("traceparent").and_then(|v| v.to_str().ok());
    let trace = TraceContext::from_optional(header);
    let mut response = scope(trace, "request", next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&trace.traceparent()) {
        response.headers_mut().insert("traceparent", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_is_continued() {
        let t = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_id, Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]));
        assert!(t.sampled);
        assert_ne!(t.span_id, t.parent_id.unwrap(), "a new span of our own");
        assert!(t.traceparent().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert_eq!(t.correlation_id().simple().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn invalid_traceparents_start_a_new_trace() {
        for bad in [
            "",
            "garbage",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceContext::from_traceparent(bad), None, "{bad:?}");
        }
        let fresh = TraceContext::from_optional(Some("garbage"));
        assert_eq!(fresh.parent_id, None);
        assert_ne!(fresh.trace_id, [0; 16]);
        assert_ne!(TraceContext::generate().trace_id, TraceContext::generate().trace_id);
    }

    #[tokio::test]
    async fn the_context_is_current_inside_its_scope_only() {
        let t = TraceContext::generate();
        assert_eq!(current(), None);
        assert_eq!(scope(t, "request", async { current() }).await, Some(t));
        assert_eq!(current(), None);
    }
}
