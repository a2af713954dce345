//! Traces over OTLP: the `tracing` spans that carry trace context, exported
//! as OpenTelemetry spans when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! One customer message is one trace, across processes, with no tracing
//! code in the domain: the gateway opens a `request` or `ws_frame` span with
//! the W3C ids of the caller's `traceparent` (`trace_id`, `span_id`,
//! `parent_id` fields, see the gateway's `trace`); the command handler's
//! `command` span and its `append` spans (one per event, whose span id is
//! derived from the event id) are its children; the log carries the trace id
//! (the events' correlation id) and the event id; the AI worker's
//! `ai_worker.handle` and the gateway's `push` spans name the appending span
//! as their parent, and the worker's own command is their child.
//!
//! The bridge is this module's [`OtlpLayer`] rather than `tracing-opentelemetry`
//! because the ids are chosen by the application (the client's trace id, the
//! ids derived from events), which the OpenTelemetry SDK only takes from its
//! id generator: the layer reads the fields below, and hands the ids to the
//! SDK through [`ChosenIds`] when it builds the span.
//!
//! Fields a span may set (hex, as in `traceparent`):
//! - `trace_id`: the span's trace; without it the span inherits the trace of
//!   its nearest traced ancestor, and a span with neither is not exported;
//! - `span_id`: its own id (else a random one);
//! - `parent_id`: its parent span (else the nearest traced ancestor in the
//!   same trace, else none: a root);
//! - `otel.kind`: `server`, `client`, `producer`, `consumer` (else internal).
//!
//! Every other field is exported as an attribute.

use anyhow::{Context as _, Result};
use opentelemetry::trace::{
    SpanBuilder, SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider};
use std::cell::Cell;
use std::time::SystemTime;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

/// The exporter, kept to flush and shut it down when the process ends.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// The OTLP/HTTP exporter (endpoint, headers and timeout from the
    /// standard `OTEL_EXPORTER_OTLP_*` variables) and the layer that feeds it,
    /// if `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
    /// is set. The service name is `OTEL_SERVICE_NAME` if set, else `default_service`.
    pub fn from_env(default_service: &str) -> Result<Option<(Self, OtlpLayer)>> {
        let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
        if !set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            return Ok(None);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().build().context("the OTLP trace exporter")?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if !set("OTEL_SERVICE_NAME") {
            resource = resource.with_service_name(default_service.to_owned());
        }
        let provider =
            SdkTracerProvider::builder().with_batch_exporter(exporter).with_id_generator(ChosenIds).with_resource(resource.build()).build();
        let layer = OtlpLayer { tracer: provider.tracer("jamuna") };
        Ok(Some((Self { provider }, layer)))
    }

    /// Exports the spans still buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("the trace exporter did not shut down cleanly: {e}");
        }
    }
}

thread_local! {
    /// The ids of the span being built on this thread, for [`ChosenIds`].
    static CHOSEN: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// The SDK's id generator: the ids [`OtlpLayer`] chose for the span it is
/// building on this thread, else random ones.
#[derive(Debug)]
struct ChosenIds;

impl IdGenerator for ChosenIds {
    fn new_trace_id(&self) -> TraceId {
        CHOSEN.with(|c| c.get()).map(|(t, _)| t).unwrap_or_else(|| RandomIdGenerator::default().new_trace_id())
    }
    fn new_span_id(&self) -> SpanId {
        CHOSEN.with(|c| c.get()).map(|(_, s)| s).unwrap_or_else(|| RandomIdGenerator::default().new_span_id())
    }
}

/// A traced span's ids and what it will export, kept in the span's extensions.
struct OtelSpan {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_id: Option<[u8; 8]>,
    kind: SpanKind,
    start: SystemTime,
    attributes: Vec<KeyValue>,
}

/// The fields of a span, as recorded.
#[derive(Default)]
struct Fields {
    trace_id: Option<[u8; 16]>,
    span_id: Option<[u8; 8]>,
    parent_id: Option<[u8; 8]>,
    kind: Option<SpanKind>,
    attributes: Vec<KeyValue>,
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.trim();
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out).filter(|o| o.iter().any(|b| *b != 0))
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        match field.name() {
            "trace_id" => self.trace_id = unhex(&value),
            "span_id" => self.span_id = unhex(&value),
            "parent_id" => self.parent_id = unhex(&value),
            "otel.kind" => {
                self.kind = Some(match value.as_str() {
                    "server" => SpanKind::Server,
                    "client" => SpanKind::Client,
                    "producer" => SpanKind::Producer,
                    "consumer" => SpanKind::Consumer,
                    _ => SpanKind::Internal,
                })
            }
            name => self.attributes.push(KeyValue::new(name, value)),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%x` fields arrive here as Display wrappers, whose Debug is Display.
        self.put(field, format!("{value:?}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.attributes.push(KeyValue::new(field.name(), i64::try_from(value).unwrap_or(i64::MAX)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }
}

/// The `tracing` layer that exports traced spans through the SDK when they close.
pub struct OtlpLayer {
    tracer: SdkTracer,
}

impl<S> tracing_subscriber::Layer<S> for OtlpLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        // The nearest ancestor that is traced.
        let ancestor = span.scope().skip(1).find_map(|a| a.extensions().get::<OtelSpan>().map(|o| (o.trace_id, o.span_id)));
        let (trace_id, parent_id) = match (fields.trace_id, ancestor) {
            (Some(t), Some((at, asp))) => (t, fields.parent_id.or((at == t).then_some(asp))),
            (Some(t), None) => (t, fields.parent_id),
            (None, Some((at, asp))) => (at, fields.parent_id.or(Some(asp))),
            (None, None) => return,
        };
        let span_id = fields.span_id.unwrap_or_else(|| RandomIdGenerator::default().new_span_id().to_bytes());
        span.extensions_mut().insert(OtelSpan {
            trace_id,
            span_id,
            parent_id,
            kind: fields.kind.unwrap_or(SpanKind::Internal),
            start: SystemTime::now(),
            attributes: fields.attributes,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(otel) = ext.get_mut::<OtelSpan>() {
            let mut fields = Fields::default();
            values.record(&mut fields);
            otel.attributes.extend(fields.attributes);
        }
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(otel) = span.extensions_mut().remove::<OtelSpan>() else { return };
        let trace_id = TraceId::from_bytes(otel.trace_id);
        let parent = match otel.parent_id {
            Some(p) => Context::new().with_remote_span_context(SpanContext::new(
                trace_id,
                SpanId::from_bytes(p),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            )),
            None => Context::new(),
        };
        let builder = SpanBuilder::from_name(span.name()).with_kind(otel.kind).with_start_time(otel.start).with_attributes(otel.attributes);
        CHOSEN.with(|c| c.set(Some((trace_id, SpanId::from_bytes(otel.span_id)))));
        let mut exported = self.tracer.build_with_context(builder, &parent);
        CHOSEN.with(|c| c.set(None));
        opentelemetry::trace::Span::end(&mut exported);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_as_traceparent_hex() {
        assert_eq!(unhex::<8>("00f067aa0ba902b7"), Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]));
        assert_eq!(unhex::<8>("0000000000000000"), None, "all-zero ids are invalid");
        assert_eq!(unhex::<8>("00f067aa0ba902b"), None);
        assert_eq!(unhex::<8>("00f067aa0ba902bz"), None);
    }
}
