//! OpenTelemetry: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, `jamuna serve`
//! exports its spans over OTLP/HTTP (protobuf) to a receiver in this test,
//! and one customer message is one trace: the gateway's request (a child of
//! the client's `traceparent`) → the command → the append of MessagePosted →
//! the AI worker handling it (its parent found from the event in the log) →
//! its command → the append of BotAnswered → the gateway's push of it.

use crate::app::*;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message as _;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TRACE: &str = "5bf92f3577b34da6a3ce929d0e0e4737";
const CLIENT_SPAN: &str = "10f067aa0ba902b7";
const WS_TRACE: &str = "1af7651916cd43dd8448eb211c80319d";
const WS_CLIENT_SPAN: &str = "c7ad6b7169203331";

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent_id: String,
    attributes: Vec<(String, String)>,
}

impl Exported {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// An OTLP/HTTP trace receiver on a free port: its endpoint and what it got.
async fn receiver() -> (String, Arc<Mutex<Vec<Exported>>>) {
    let got: Arc<Mutex<Vec<Exported>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return (axum::http::StatusCode::BAD_REQUEST, Vec::new());
                };
                let mut spans = sink.lock().unwrap_or_else(|p| p.into_inner());
                for rs in request.resource_spans {
                    let service =
                        rs.resource.iter().flat_map(|r| &r.attributes).find(|kv| kv.key == "service.name").map(text).unwrap_or_default();
                    for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                        spans.push(Exported {
                            service: service.clone(),
                            name: span.name,
                            kind: span.kind,
                            trace_id: hex(&span.trace_id),
                            span_id: hex(&span.span_id),
                            parent_id: hex(&span.parent_span_id),
                            attributes: span.attributes.iter().map(|kv| (kv.key.clone(), text(kv))).collect(),
                        });
                    }
                }
                (axum::http::StatusCode::OK, ExportTraceServiceResponse::default().encode_to_vec())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), got)
}

/// `jamuna serve` exporting to `endpoint` every `delay_ms`, under `service` if given.
fn spawn_traced(endpoint: &str, delay_ms: u64, service: Option<&str>) -> App {
    let data = tempfile::tempdir().expect("a data dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jamuna"));
    cmd.env_remove("OTEL_SERVICE_NAME");
    if let Some(name) = service {
        cmd.env("OTEL_SERVICE_NAME", name);
    }
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0", "--dev"])
        .env("JAMUNA_DATA_DIR", data.path())
        .env("JAMUNA_DEMO_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("JAMUNA_DEMO_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("JAMUNA_LOG", "warn,qdrant_edge=error")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env("OTEL_BSP_SCHEDULE_DELAY", delay_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start jamuna serve");
    let stdout = child.stdout.take().expect("stdout");
    let (mut base, mut widget_key) = (None, None);
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        if let Some(k) = line.split("widget key: ").nth(1) {
            widget_key = Some(k.trim().to_string());
        }
        if let Some(addr) = line.split("listening on ").nth(1) {
            base = Some(addr.trim().to_string());
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    App {
        child,
        base: base.expect("the server printed its address"),
        data,
        http: reqwest::Client::new(),
        widget_key: widget_key.expect("the widget key"),
    }
}

/// The one span of `trace` named `name` whose attributes match `attrs`.
fn one<'a>(spans: &'a [Exported], trace: &str, name: &str, attrs: &[(&str, &str)]) -> &'a Exported {
    let found: Vec<&Exported> =
        spans.iter().filter(|s| s.trace_id == trace && s.name == name && attrs.iter().all(|(k, v)| s.attr(k) == Some(v))).collect();
    assert_eq!(
        found.len(),
        1,
        "one {name} {attrs:?} in trace {trace}, got {found:#?}\nall spans of the trace: {:#?}",
        spans.iter().filter(|s| s.trace_id == trace).collect::<Vec<_>>()
    );
    found[0]
}

fn by_id<'a>(spans: &'a [Exported], id: &str) -> &'a Exported {
    spans.iter().find(|s| s.span_id == id).unwrap_or_else(|| panic!("no span {id}"))
}

const SERVER: i32 = 2;
const CONSUMER: i32 = 5;

/// The trace of one customer message (posted over HTTP with `CLIENT_SPAN` as
/// the caller) to the push of the bot's answer, every parent link checked,
/// and which service exported each part.
fn message_to_answer(spans: &[Exported], trace: &str, request_span: &str, gateway: &str, worker: &str) {
    // The gateway's request: the client's span is its parent, its id is the one the response named.
    let request = one(spans, trace, "request", &[]);
    assert_eq!(
        (request.parent_id.as_str(), request.span_id.as_str(), request.kind, request.service.as_str()),
        (CLIENT_SPAN, request_span, SERVER, gateway)
    );
    // The command and the append of the customer's message, children of the request.
    let posted = one(spans, trace, "append", &[("event_type", "MessagePosted")]);
    assert_eq!((posted.attr("outcome"), posted.service.as_str()), (Some("appended"), gateway));
    let command = by_id(spans, &posted.parent_id);
    assert_eq!((command.name.as_str(), command.parent_id.as_str()), ("command", request.span_id.as_str()));
    // The append span's id is derived from the event id (its random tail), so readers of the log find it.
    let event_id = uuid::Uuid::parse_str(posted.attr("event_id").expect("an event id")).expect("a UUID");
    assert_eq!(posted.span_id, hex(&event_id.as_bytes()[8..]));

    // The AI worker handled the message as a child of the span that appended it.
    let handled = one(spans, trace, "ai_worker.handle", &[("event_type", "MessagePosted")]);
    assert_eq!((handled.parent_id.as_str(), handled.kind, handled.service.as_str()), (posted.span_id.as_str(), CONSUMER, worker));
    // Its answer: a command under the worker's span, appending BotAnswered.
    let answered = one(spans, trace, "append", &[("event_type", "BotAnswered")]);
    assert_eq!(answered.service, worker);
    let answer_command = by_id(spans, &answered.parent_id);
    assert_eq!((answer_command.name.as_str(), answer_command.parent_id.as_str()), ("command", handled.span_id.as_str()));
    // The gateway pushed both events, each as a child of the span that appended it.
    for appended in [posted, answered] {
        let push = one(spans, trace, "push", &[("event_type", appended.attr("event_type").unwrap_or_default())]);
        assert_eq!((push.parent_id.as_str(), push.kind, push.service.as_str()), (appended.span_id.as_str(), CONSUMER, gateway));
    }
}

#[tokio::test]
async fn one_trace_follows_a_message_from_the_gateway_through_the_log_and_the_ai_worker_to_the_push() {
    let (endpoint, got) = receiver().await;
    // Export every 100 ms rather than every 5 s.
    let app = spawn_traced(&endpoint, 100, None);
    let (visitor, _) = app.visitor().await;
    let id = app.start_conversation(&visitor).await;

    let r = app
        .http
        .post(app.url(&format!("/api/v1/conversations/{id}/messages")))
        .bearer_auth(&visitor)
        .header("traceparent", format!("00-{TRACE}-{CLIENT_SPAN}-01"))
        .json(&json!({"client_message_id": "o-1", "text": "My new card has not arrived yet, when will it come?"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 201);
    let back = r.headers().get("traceparent").and_then(|v| v.to_str().ok()).expect("a traceparent").to_owned();
    let request_span = back.split('-').nth(2).expect("a span id in the traceparent").to_owned();

    // A WebSocket frame with a traceparent of its own.
    let mut ws = app.socket(&visitor).await;
    send(&mut ws, json!({"type": "send", "conversation_id": id, "client_message_id": "o-2", "text": "thanks", "traceparent": format!("00-{WS_TRACE}-{WS_CLIENT_SPAN}-01")})).await;
    assert_eq!(frame_where(&mut ws, |f| f["type"] == "ack").await["client_message_id"], "o-2");

    // Wait for the push of the bot's answer (and of the frame's message).
    let spans = spans_when(&got, "the pushes of the bot's answer and of the frame's message", |spans| {
        let pushed =
            |trace: &str, ty: &str| spans.iter().any(|s| s.trace_id == trace && s.name == "push" && s.attr("event_type") == Some(ty));
        pushed(TRACE, "BotAnswered") && pushed(WS_TRACE, "MessagePosted")
    })
    .await;
    assert!(
        spans.iter().all(|s| s.service == "jamuna"),
        "serve's service name is jamuna: {:?}",
        spans.iter().map(|s| &s.service).collect::<std::collections::HashSet<_>>()
    );
    message_to_answer(&spans, TRACE, &request_span, "jamuna", "jamuna");

    // The WebSocket frame: the same chain from its own traceparent.
    let frame = one(&spans, WS_TRACE, "ws_frame", &[]);
    assert_eq!((frame.parent_id.as_str(), frame.kind), (WS_CLIENT_SPAN, SERVER));
    let ws_posted = one(&spans, WS_TRACE, "append", &[("event_type", "MessagePosted")]);
    assert_eq!(by_id(&spans, &by_id(&spans, &ws_posted.parent_id).parent_id).span_id, frame.span_id);
    assert_eq!(one(&spans, WS_TRACE, "push", &[("event_type", "MessagePosted")]).parent_id, ws_posted.span_id);
}

/// Spans received, once `done` says they are all there (within 60 s).
async fn spans_when(got: &Mutex<Vec<Exported>>, what: &str, done: impl Fn(&[Exported]) -> bool) -> Vec<Exported> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let spans = got.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if done(&spans) {
            return spans;
        }
        assert!(Instant::now() < deadline, "{what}: not exported within 60 s; got {spans:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The distributed roles, each exporting to the same receiver: the trace
/// crosses processes through NATS (the event's metadata), and each part is
/// exported under its role's service name.
#[tokio::test]
async fn in_the_distributed_mode_the_trace_crosses_the_roles_through_the_log() {
    const TRACE: &str = "6cf92f3577b34da6a3ce929d0e0e4738";
    let Some(services) = crate::cluster::services("the distributed OpenTelemetry test") else { return };
    let (endpoint, got) = receiver().await;
    // The distributed tests' cluster, every role exporting its spans to the receiver.
    let mut cluster = crate::cluster::Cluster::new(&services);
    cluster.env.extend([("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint), ("OTEL_BSP_SCHEDULE_DELAY", "100".into())]);
    let _projector = cluster.spawn(&["projector"]);
    let worker = cluster.spawn(&["ai-worker"]);
    let gateway = cluster.gateway();
    for base in [&_projector.base, &worker.base, &gateway.base] {
        crate::cluster::wait_ready(&gateway.http, base).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let visitor = loop {
        let (s, body) = gateway.post("/api/v1/auth/visitor", None, json!({"widget_key": gateway.widget_key})).await;
        if let (201, Some(t)) = (s, body["access_token"].as_str()) {
            break t.to_owned();
        }
        assert!(Instant::now() < deadline, "no visitor token: {s} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let conversation = gateway.start_conversation(&visitor).await;
    let r = gateway
        .http
        .post(gateway.url(&format!("/api/v1/conversations/{conversation}/messages")))
        .bearer_auth(&visitor)
        .header("traceparent", format!("00-{TRACE}-{CLIENT_SPAN}-01"))
        .json(&json!({"client_message_id": "d-1", "text": "My new card has not arrived yet, when will it come?"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 201);
    let back = r.headers().get("traceparent").and_then(|v| v.to_str().ok()).expect("a traceparent").to_owned();
    let request_span = back.split('-').nth(2).expect("a span id").to_owned();

    // Two processes export their spans each on its own schedule: wait for the
    // worker's (its handling of the message, its append of the answer) as well
    // as the gateway's push, then check how they link.
    let spans = spans_when(&got, "the gateway's push of the bot's answer and the worker's spans", |spans| {
        let has = |name: &str, event_type: &str| {
            spans.iter().any(|s| s.trace_id == TRACE && s.name == name && s.attr("event_type") == Some(event_type))
        };
        has("push", "BotAnswered") && has("ai_worker.handle", "MessagePosted") && has("append", "BotAnswered")
    })
    .await;
    message_to_answer(&spans, TRACE, &request_span, "jamuna-gateway", "jamuna-ai-worker");
}

/// `OTEL_SERVICE_NAME` names the service, and the spans still buffered are
/// exported when the process stops on SIGTERM (the exporter is flushed).
#[tokio::test]
async fn the_service_name_is_configurable_and_buffered_spans_are_flushed_at_shutdown() {
    const TRACE: &str = "7df92f3577b34da6a3ce929d0e0e4739";
    let (endpoint, got) = receiver().await;
    // A batch is due only every 10 minutes: what arrives is the shutdown's flush.
    let mut app = spawn_traced(&endpoint, 600_000, Some("support-eu"));
    let r = app.http.get(app.url("/healthz")).header("traceparent", format!("00-{TRACE}-{CLIENT_SPAN}-01")).send().await.expect("get");
    assert!(r.status().is_success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(got.lock().unwrap_or_else(|p| p.into_inner()).is_empty(), "nothing is exported before the batch is due");
    let status = Command::new("kill").args(["-TERM", &app.child.id().to_string()]).status().expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "serve did not stop within 20 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spans = got.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let request = one(&spans, TRACE, "request", &[]);
    assert_eq!((request.service.as_str(), request.parent_id.as_str()), ("support-eu", CLIENT_SPAN));
}
