//! `GET /openapi.json` and `GET /docs`: the API, described from the code.
//!
//! The OpenAPI 3.1 document is built by `utoipa` from each handler's
//! `#[utoipa::path]` attribute (beside the handler, in its route module) and
//! the `ToSchema` of the request and response types. `/docs` is one
//! self-contained HTML page whose inline script renders that document: no
//! CDN, nothing downloaded.
//!
//! What every handler would otherwise repeat is added here once, by
//! [`Conventions`], just as [`super::router`] applies it once as middleware:
//! the bearer scheme and its `401`, the `400` of a malformed JSON body, the
//! `413` of the body limit, the `429` of the rate limit, and the `500`/`503`
//! any handler that touches storage can answer. The WebSocket frames cannot
//! be modelled in OpenAPI; the document's description carries them, taken
//! from the `//!` docs of [`crate::ws::protocol`] so there is one text.

use crate::AppState;
use crate::error::ErrorBody;
use axum::Router;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use std::sync::LazyLock;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json)).route("/docs", get(docs_page))
}

/// The document, built once.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// The OpenAPI document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "docs", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
async fn openapi_json() -> impl IntoResponse {
    axum::Json(&*DOCUMENT)
}

/// A readable page of the OpenAPI document (self-contained HTML).
#[utoipa::path(get, path = "/docs", tag = "docs", operation_id = "docs",
    responses((status = 200, description = "An HTML page that renders /openapi.json", content_type = "text/html", body = String)))]
async fn docs_page() -> Html<&'static str> {
    Html(PAGE)
}

/// The `/docs` page (its inline script is allowed by hash: [`super::headers`]).
pub const PAGE: &str = include_str!("docs.html");

use super::{analytics, attachments, auth, canned, conversations, customers, health, kb, notes, seed, teams, tenants, users, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "Jamuna API"),
    paths(
        auth::login, auth::refresh, auth::logout, auth::logout_all, auth::register, auth::visitor, auth::socket_ticket,
        conversations::start, conversations::list, conversations::detail, conversations::post_message,
        conversations::assign, conversations::handoff, conversations::resolve, conversations::reopen,
        conversations::tags, conversations::feedback,
        attachments::upload, attachments::download,
        notes::add_note, notes::mentions, notes::colleagues,
        conversations::unassign, conversations::assign_team,
        teams::list, teams::show, teams::create, teams::rename, teams::remove, teams::add_member, teams::remove_member,
        users::me, users::create, users::list, users::change_role, users::erase,
        tenants::show, tenants::change, tenants::rotate_widget_key,
        customers::rotate_secret, customers::identify, customers::give_details, customers::contact_panel,
        kb::list, kb::add, kb::update, kb::remove, kb::import_file, kb::list_examples, kb::add_example, kb::remove_example, kb::train, kb::model,
        analytics::range,
        analytics::gaps,
        canned::list, canned::add, canned::change, canned::remove,
        webhooks::list, webhooks::register, webhooks::change, webhooks::remove, webhooks::rotate_secret, webhooks::deliveries,
        health::healthz, health::readyz, health::metrics_text,
        seed::token, seed::chat, seed::ws,
        crate::ws_upgrade,
        openapi_json, docs_page,
    ),
    // Schemas only parameters refer to (`IntoParams` does not collect them), and
    // the values of events' fields that the event frames (free-form JSON) carry.
    components(schemas(ErrorBody, crate::directory::View, super::schema::Search, super::schema::HandoffReason, super::schema::DecisionBasis)),
    modifiers(&Conventions),
    tags(
        (name = "auth", description = "Sign-in, tokens, registration, visitor identities"),
        (name = "conversations", description = "Start, list, read, write and manage conversations"),
        (name = "users", description = "The caller's profile; admins manage users"),
        (name = "tenant", description = "The caller's tenant and its settings"),
        (name = "teams", description = "The tenant's teams of agents (staff read, admins change) and who waits for a human"),
        (name = "kb", description = "The tenant's knowledge base (staff read, admins change)"),
        (name = "analytics", description = "The dashboard's figures"),
        (name = "canned-replies", description = "The tenant's saved replies (staff read, admins change)"),
        (name = "webhooks", description = "Admins subscribe HTTPS endpoints to events and read the deliveries"),
        (name = "websocket", description = "Live updates; the frames are in the document's description"),
        (name = "health", description = "Liveness, readiness, Prometheus metrics"),
        (name = "seed", description = "The original plan's API, kept working beside /api/v1"),
        (name = "docs", description = "This document"),
    ),
)]
pub struct ApiDoc;

/// The name of the bearer security scheme.
pub const BEARER: &str = "bearer";

/// Paths the rate limit skips (see `limits::rate_limit`).
const UNLIMITED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Adds what middleware and extractors add to every route; see the module docs.
pub struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.info.description = Some(description());
        doc.info.version = env!("CARGO_PKG_VERSION").into();
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from /api/v1/auth/login, /refresh or /visitor (15 minutes)."))
                    .build(),
            ),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                conventions(path, op);
            }
        }
    }
}

fn conventions(path: &str, op: &mut Operation) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    if secured {
        add(op, 401, "A bearer token is missing, invalid or expired (`WWW-Authenticate: Bearer`)");
    }
    if op.request_body.as_ref().is_some_and(|b| matches!(b, RefOr::T(b) if b.content.contains_key("application/json"))) {
        add(op, 400, "The body is not valid JSON for this operation (a wrong or unknown field, or no `application/json` content type)");
    }
    if op.request_body.is_some() {
        add(op, 413, "The body is larger than the server's limit (may come with an empty body when `Content-Length` already shows it)");
    }
    // A handler that answers in the API's error shape can fail inside too.
    let api_errors = op.responses.responses.values().any(|r| match r {
        RefOr::T(r) => r
            .content
            .values()
            .any(|c| matches!(c, RefOr::T(c) if matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/ErrorBody")))),
        RefOr::Ref(_) => false,
    });
    if !UNLIMITED.contains(&path) {
        add(op, 429, "Too many requests from this user (or address) this minute; see `Retry-After`");
    }
    if api_errors {
        add(op, 500, "An internal error (the cause is logged, never shown)");
        add(op, 503, "The event log or a read model is temporarily unavailable");
    }
}

/// Adds an error response with the API's error shape unless the operation documents that status already.
fn add(op: &mut Operation, status: u16, description: &str) {
    let key = status.to_string();
    if op.responses.responses.contains_key(&key) {
        return;
    }
    let response =
        ResponseBuilder::new().description(description).content("application/json", Content::new(Some(ErrorBody::schema_ref()))).build();
    op.responses.responses.insert(key, RefOr::T(response));
}

trait SchemaRef {
    fn schema_ref() -> RefOr<Schema>;
}
impl<T: ToSchema> SchemaRef for T {
    fn schema_ref() -> RefOr<Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
    }
}

const OVERVIEW: &str = "\
Jamuna's HTTP API. Everything under `/api/v1` is JSON; the seed endpoints (`/auth/token`, `/chat`, `/ws/{client_id}`) keep \
the original plan's shapes.

**Authentication.** Send `Authorization: Bearer <access token>`. Staff and customers sign in with \
`POST /api/v1/auth/login`; a website visitor exchanges the tenant's public widget key for a token at \
`POST /api/v1/auth/visitor`. Access tokens are short-lived; `POST /api/v1/auth/refresh` rotates the refresh token.

**Errors.** Every error of `/api/v1` has the body `{\"error\": {\"code\": \"…\", \"message\": \"…\"}}` (schema `ErrorBody`). \
`code` is stable: `bad_request`, `unauthorized`, `forbidden`, `not_found`, `payload_too_large`, `rate_limited`, \
`unavailable`, `internal`; on `409` it names the business rule that refused the request (e.g. `already_resolved`), \
on `422` the rule that found the request itself invalid (e.g. `unknown_placeholder`). \
The seed endpoints answer errors as `{\"detail\": \"…\"}` where they say so.

**Rate limit.** Requests per minute per user (or per address without a token); over it, `429` with `Retry-After`.
";

/// The document's description: the overview above, then the WebSocket protocol from `ws::protocol`'s docs.
fn description() -> String {
    let frames: Vec<&str> =
        include_str!("../ws/protocol.rs").lines().map_while(|l| l.strip_prefix("//!")).map(|l| l.strip_prefix(' ').unwrap_or(l)).collect();
    format!(
        "{OVERVIEW}\n## WebSocket: `GET /api/v1/ws`\n\nSend an `auth` frame first (within 10 s; a token in the URL is refused). \
         The server answers `ready` (`{{\"type\":\"ready\",\"user_id\",\"tenant\",\"role\"}}`); an `event` frame is \
         `{{\"type\":\"event\",\"conversation_id\",\"version\",\"position\",\"occurred_at\",\"event\"}}`, the same shape as \
         the `events` of `GET /api/v1/conversations/{{id}}`.\n\n{}\n",
        frames.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn document() -> Value {
        let text = ApiDoc::openapi().to_pretty_json().expect("the document serialises");
        serde_json::from_str(&text).expect("the document is JSON")
    }

    /// Every `.route("path", method(handler).method(handler))` in the route
    /// modules and `routes::router`, read from their source: the routes as
    /// registered, so a new route without docs fails this test.
    fn registered() -> BTreeSet<(String, String)> {
        let sources = [
            include_str!("mod.rs"),
            include_str!("auth.rs"),
            include_str!("conversations.rs"),
            include_str!("attachments.rs"),
            include_str!("users.rs"),
            include_str!("tenants.rs"),
            include_str!("teams.rs"),
            include_str!("kb.rs"),
            include_str!("analytics.rs"),
            include_str!("notes.rs"),
            include_str!("health.rs"),
            include_str!("seed.rs"),
            include_str!("docs.rs"),
            include_str!("customers.rs"),
            include_str!("canned.rs"),
            include_str!("webhooks.rs"),
        ];
        let mut routes = BTreeSet::new();
        for source in sources {
            // Only the code: the tests below mention `.route(` too.
            let code = source.split("#[cfg(test)]").next().unwrap_or(source);
            for call in code.split(".route(").skip(1) {
                let path = call.strip_prefix('"').and_then(|r| r.split_once('"')).map(|(p, _)| p);
                let path =
                    path.unwrap_or_else(|| panic!("a route whose path is not a string literal: .route({}", &call[..call.len().min(60)]));
                // The method router: up to the `)` that closes `.route(`.
                let mut depth = 1;
                let end = call.char_indices().find_map(|(i, ch)| {
                    match ch {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    (depth == 0).then_some(i)
                });
                let methods = &call[..end.expect("a closed .route( call")];
                let mut found = false;
                for m in ["get", "post", "put", "patch", "delete"] {
                    let called = methods
                        .match_indices(&format!("{m}("))
                        .any(|(i, _)| i == 0 || !methods.as_bytes()[i - 1].is_ascii_alphanumeric() && methods.as_bytes()[i - 1] != b'_');
                    if called {
                        routes.insert((m.to_string(), path.to_string()));
                        found = true;
                    }
                }
                assert!(found, "no method found for route {path}");
            }
        }
        routes
    }

    #[test]
    fn the_document_is_openapi_3_and_covers_every_registered_route() {
        let doc = document();
        let version = doc["openapi"].as_str().expect("an openapi version");
        assert!(version.starts_with("3."), "openapi {version}");
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| item.as_object().into_iter().flat_map(|o| o.keys()).map(move |m| (m.clone(), path.clone())))
            .filter(|(m, _)| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
            .collect();
        let registered = registered();
        assert!(registered.len() >= 35, "the source scan found only {} routes", registered.len());
        let undocumented: Vec<_> = registered.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&registered).collect();
        assert!(undocumented.is_empty(), "routes missing from /openapi.json: {undocumented:?}");
        assert!(unrouted.is_empty(), "documented operations no router registers: {unrouted:?}");
    }

    #[test]
    fn operations_are_unique_and_answer_errors_in_the_api_shape() {
        let doc = document();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                assert!(ids.insert(id.to_string()), "operationId {id} twice");
                assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} documents no response");
                if path.starts_with("/api/v1/") {
                    assert!(op["responses"].get("429").is_some(), "{method} {path} lacks the rate limit's 429");
                    let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
                    let public = [
                        "/api/v1/auth/login",
                        "/api/v1/auth/refresh",
                        "/api/v1/auth/logout",
                        "/api/v1/auth/register",
                        "/api/v1/auth/visitor",
                        "/api/v1/ws",
                    ];
                    assert!(secured || public.contains(&path.as_str()), "{method} {path} needs the bearer scheme");
                }
            }
        }
        assert_eq!(doc["components"]["securitySchemes"][BEARER]["scheme"], "bearer");
        let error = &doc["components"]["schemas"]["ErrorBody"];
        assert_eq!(error["required"], serde_json::json!(["error"]));
        // The schema describes what the error type really sends.
        let sent = crate::error::ErrorBody::of(&crate::error::ApiError::NotFound("conversation"));
        let sent = serde_json::to_value(sent).unwrap();
        assert_eq!(sent["error"]["code"], "not_found");
        let detail = &doc["components"]["schemas"]["ErrorDetail"];
        let keys: BTreeSet<_> = sent["error"].as_object().unwrap().keys().cloned().collect();
        let documented: BTreeSet<_> = detail["properties"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, documented);
    }

    #[test]
    fn every_reference_resolves() {
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::String(r)) = o.get("$ref") {
                        out.push(r);
                    }
                    o.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("an unexpected reference {r}"));
            assert!(doc["components"]["schemas"].get(name).is_some(), "{r} is not in the document");
        }
    }

    #[test]
    fn domain_schemas_match_what_the_domain_serialises() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["Role"]["enum"], serde_json::json!(["customer", "agent", "admin"]));
        assert_eq!(schemas["Channel"]["enum"], serde_json::json!(["web", "mobile", "api"]));
        assert_eq!(schemas["Status"]["enum"], serde_json::json!(["open", "pending", "resolved"]));
        let reasons = serde_json::json!([
            "low_confidence",
            "customer_asked",
            "repeated_failure",
            "negative_feedback",
            "agent_took_over",
            "out_of_scope"
        ]);
        assert_eq!(schemas["HandoffReason"]["enum"], reasons);
        assert_eq!(schemas["DecisionBasis"]["enum"].as_array().and_then(|a| a.last()), Some(&serde_json::json!("out_of_scope_example")));
        assert_eq!(schemas["DecisionBasis"]["enum"].as_array().map(Vec::len), Some(9));
        let sent = serde_json::to_value(crate::routes::schema::settings_example()).unwrap();
        let keys: BTreeSet<_> = sent.as_object().unwrap().keys().cloned().collect();
        let documented: BTreeSet<_> = schemas["TenantSettings"]["properties"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, documented);
    }

    /// The request schemas declare the constraints the handlers enforce
    /// (schemathesis's "schema-valid request rejected" in `make test`).
    #[test]
    fn request_schemas_declare_what_the_handlers_enforce() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let prop = |schema: &str, field: &str| schemas[schema]["properties"][field].clone();
        let refers = |v: &Value, to: &str| {
            let r = format!("#/components/schemas/{to}");
            v["$ref"] == r.as_str() || v["oneOf"].as_array().is_some_and(|o| o.iter().any(|s| s["$ref"] == r.as_str()))
        };
        for (schema, field, to) in [
            ("PostMessage", "text", "MessageText"),
            ("PostMessage", "client_message_id", "Id"),
            ("Chat", "message", "MessageText"),
            ("Assign", "agent_id", "Id"),
            ("Register", "tenant", "Id"),
            ("Register", "email", "Email"),
            ("Register", "password", "Password"),
            ("CreateUser", "email", "Email"),
            ("CreateUser", "password", "Password"),
            ("NewArticle", "id", "Id"),
        ] {
            assert!(refers(&prop(schema, field), to), "{schema}.{field} is not a {to}: {}", prop(schema, field));
        }
        assert!(refers(&prop("Tags", "add")["items"], "Tag"), "{}", prop("Tags", "add"));
        assert_eq!(schemas["MessageText"]["maxLength"], 4000);
        assert_eq!(schemas["Password"]["minLength"], 10);
        assert_eq!(schemas["Tag"]["maxLength"], 32);
        assert_eq!(prop("Register", "name")["maxLength"], 200);
        let csat = &schemas["FeedbackBody"]["oneOf"][0];
        assert_eq!((csat["properties"]["score"]["minimum"].clone(), csat["properties"]["score"]["maximum"].clone()), (1.into(), 5.into()));
        for variant in schemas["FeedbackBody"]["oneOf"].as_array().unwrap() {
            assert_eq!(variant["additionalProperties"], false, "the handler refuses unknown fields: {variant}");
        }
        let list = &doc["paths"]["/api/v1/conversations"]["get"]["parameters"];
        let param = |name: &str| list.as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["schema"].clone();
        assert!(refers(&param("status"), "Status") && refers(&param("channel"), "Channel"), "{list}");
        assert!(refers(&param("tag"), "Tag") && refers(&param("q"), "Search"), "{list}");
        let list = &doc["paths"]["/api/v1/kb/examples"]["get"]["parameters"];
        let param = |name: &str| list.as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["schema"].clone();
        assert_eq!(param("q")["maxLength"], super::kb::MAX_EXAMPLE_SEARCH_CHARS, "{list}");
        assert_eq!((param("limit")["minimum"].clone(), param("limit")["maximum"].clone()), (1.into(), super::kb::MAX_EXAMPLES_PAGE.into()));
        let max_offset = jamuna_domain::knowledge_base::MAX_EXAMPLES;
        assert_eq!((param("offset")["minimum"].clone(), param("offset")["maximum"].clone()), (0.into(), max_offset.into()));
    }

    #[test]
    fn the_description_carries_the_websocket_frames() {
        let doc = document();
        let description = doc["info"]["description"].as_str().unwrap();
        for frame in ["subscribe_inbox", "\"type\":\"send\"", "4008", "ready", "pong"] {
            assert!(description.contains(frame), "the description lacks {frame}");
        }
    }
}
