//! The original plan's API, kept working beside the richer one:
//!
//! * `POST /auth/token` — `username` (e-mail) and `password` as a form
//!   (FastAPI's OAuth2 password flow), in the default tenant →
//!   `{"access_token", "token_type": "bearer"}`; `401 {"detail": …}` otherwise.
//!   Credentials in the query string answer `422`, even when the form has them
//!   too: URLs end up in proxy and access logs;
//! * `POST /chat` — `{"message"}` → `{"response"}`: the message goes into the
//!   caller's current conversation and the bot's answer (or the handoff
//!   notice) comes back, waiting a bounded time; when a human already has
//!   the conversation, the "we will answer here shortly" note comes back at
//!   once (the bot stays silent there);
//! * `GET /ws/{client_id}` — every text frame is a customer message, every
//!   reply frame the answer's text. With `?ticket=` (a single-use ticket
//!   from `POST /api/v1/auth/socket-ticket`, valid 30 s) the caller is the
//!   ticket's user; an access token in the URL (`?token=`, as the original
//!   plan had it) is refused, since URLs end up in proxy logs. In dev mode an
//!   anonymous client is a visitor of the default tenant.
//!
//! An anonymous socket is a **new visitor every time**, whatever its
//! `client_id`: the id is only a label. It used to be the visitor's identity
//! (`seed-{client_id}`), so a second client that chose the same id took over
//! the first one's conversation, read its answers and wrote into it; nothing
//! an anonymous client sends can prove it is the one that used an id before.
//! A client that wants one conversation across connections signs in (or
//! gets a visitor token from `POST /auth/visitor`) and passes a ticket. Each
//! anonymous socket counts as a new visitor against the visitors-per-IP and
//! per-widget-key limits, as `POST /auth/visitor` does.

use super::json::ApiJson;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service;
use crate::ws::hub::Push;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jamuna_domain::conversation::{Author, Channel, Conversation, ConversationCommand, ConversationEvent};
use jamuna_domain::{ConversationId, Personal, StreamId, UserId};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new().route("/auth/token", post(token)).route("/chat", post(chat)).route("/ws/{client_id}", get(ws))
}

/// What the handoff sounds like to the customer.
pub const HANDOFF_TEXT: &str = "I'm passing you to a human agent, who will answer here shortly.";
/// When the bot has not answered in time.
pub const PENDING_TEXT: &str = "Thanks, we have your message and will answer here shortly.";

fn detail(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"detail": message}))).into_response()
}

/// The seed API's sign-in form (FastAPI's OAuth2 password flow).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the fields `token` reads
struct PasswordForm {
    /// The e-mail address.
    username: String,
    password: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct SeedToken {
    access_token: String,
    #[schema(example = "bearer")]
    token_type: String,
}

/// The seed API's error body.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents `detail`'s `json!` body
struct SeedError {
    detail: String,
}

/// Query parameters that carry credentials, refused by [`token`].
const CREDENTIAL_PARAMS: [&str; 2] = ["username", "password"];

/// Signs in to the default tenant: `username` and `password` as a form. The
/// query string must not carry them (URLs end up in logs): that answers `422`.
#[utoipa::path(post, path = "/auth/token", tag = "seed", operation_id = "seedToken",
    request_body(content = PasswordForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An access token (no refresh token)", body = SeedToken),
        (status = 401, description = "Incorrect username or password", body = SeedError),
        (status = 404, description = "No default tenant is configured", body = SeedError),
        (status = 422, description = "Not a form, `username`/`password` missing, or credentials in the query string (URLs end up in logs)", body = SeedError),
        (status = 500, description = "An internal error", body = ErrorBody),
        (status = 503, description = "Storage is unavailable", body = ErrorBody),
    ))]
async fn token(State(state): State<AppState>, Query(query): Query<HashMap<String, String>>, body: axum::body::Bytes) -> Response {
    if CREDENTIAL_PARAMS.iter().any(|k| query.contains_key(*k)) {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "credentials in the query string are refused (URLs end up in proxy and access logs): send username and password as a form body",
        );
    }
    let fields: HashMap<String, String> = match serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) {
        Ok(pairs) => pairs.into_iter().collect(),
        Err(_) => return detail(StatusCode::UNPROCESSABLE_ENTITY, "the body is not a form (application/x-www-form-urlencoded)"),
    };
    let (Some(username), Some(password)) = (fields.get("username"), fields.get("password")) else {
        return detail(StatusCode::UNPROCESSABLE_ENTITY, "username and password are required");
    };
    let Some(tenant) = &state.config.default_tenant else {
        return detail(StatusCode::NOT_FOUND, "no default tenant is configured");
    };
    match super::auth::authenticate(&state, tenant.as_str(), username, password).await {
        Ok(caller) => match async { state.tokens.issue(&caller, crate::auth::session_version(&state, &caller).await?) }.await {
            Ok(t) => axum::Json(json!({"access_token": t, "token_type": "bearer"})).into_response(),
            Err(e) => e.into_response(),
        },
        Err(ApiError::Unauthorized(_)) => {
            let mut r = detail(StatusCode::UNAUTHORIZED, "Incorrect username or password");
            r.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
            r
        }
        Err(e) => e.into_response(),
    }
}

/// The seed API's one conversation per user: a fixed id derived from the
/// user.
fn seed_conversation_id(caller: &Caller) -> ConversationId {
    let digest = Sha256::digest(format!("seed\n{}\n{}", caller.tenant, caller.user).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    ConversationId::from_uuid(uuid::Uuid::from_bytes(bytes))
}

/// Starts the seed conversation when missing and reopens it when resolved;
/// true when a human already has it (the bot stays silent there).
async fn current_conversation(state: &AppState, caller: &Caller, id: &ConversationId) -> Result<bool, ApiError> {
    let stream = StreamId::conversation(&caller.tenant, id);
    let conversation = state.commands.load::<Conversation>(&stream).await?;
    let command = match conversation.status() {
        None => Some(ConversationCommand::Start {
            tenant: caller.tenant.clone(),
            conversation_id: id.clone(),
            customer: caller.user.clone(),
            channel: Channel::Api,
        }),
        Some(jamuna_domain::conversation::Status::Resolved) => Some(ConversationCommand::Reopen { by: Some(caller.user.clone()) }),
        Some(_) => None,
    };
    if let Some(c) = command {
        state.commands.execute::<Conversation>(&stream, &c, &service::ctx(caller)).await?;
    }
    Ok(conversation.human_involved())
}

/// Does this event put a human in charge (the bot stays silent after it)?
fn hands_to_human(event: &ConversationEvent) -> bool {
    matches!(
        event,
        ConversationEvent::HandoffRequested { .. }
            | ConversationEvent::AgentAssigned { .. }
            | ConversationEvent::MessagePosted { author: Author::Agent { .. }, .. }
    )
}

/// Posts `text` as the customer and waits (bounded) for what answers it.
///
/// When a human already has the conversation the bot will not answer, so
/// the "we will answer here shortly" note comes back at once rather than
/// after `chat_timeout`: a human was in charge either in the state loaded
/// before posting, or by an event pushed with a version before the message's.
/// Listening starts before that load, so an event appended after the load
/// cannot slip past unseen (the hub pushes every event appended after the
/// subscription, and the load sees every event pushed before it).
pub async fn ask(state: &AppState, caller: &Caller, text: &str) -> Result<String, ApiError> {
    let id = seed_conversation_id(caller);
    let stream = StreamId::conversation(&caller.tenant, &id);
    let (outlet, mut pushes) = state.hub.outlet();
    state.hub.subscribe(&stream, &outlet);
    let result = async {
        let with_human = current_conversation(state, caller, &id).await?;
        let ack = service::post_message(state, caller, &id, &uuid::Uuid::now_v7().simple().to_string(), text, &[]).await?;
        if with_human {
            return Ok(PENDING_TEXT.to_string());
        }
        let deadline = tokio::time::Instant::now() + state.config.chat_timeout;
        loop {
            let push = match tokio::time::timeout_at(deadline, pushes.recv()).await {
                Ok(Some(p)) => p,
                _ => return Ok(PENDING_TEXT.to_string()),
            };
            let Push::Event(p) = push else { continue };
            if p.version < ack.version && hands_to_human(&p.event) {
                // A human took over before this message arrived.
                return Ok(PENDING_TEXT.to_string());
            }
            if p.version <= ack.version {
                continue;
            }
            match &*p.event {
                ConversationEvent::BotAnswered { in_reply_to, text, .. } if *in_reply_to == ack.version => {
                    return Ok(text.text().unwrap_or(Personal::ERASED_TEXT).to_string());
                }
                ConversationEvent::HandoffRequested { .. } => return Ok(HANDOFF_TEXT.to_string()),
                ConversationEvent::MessagePosted { author: Author::Agent { .. }, text, .. } => {
                    return Ok(text.text().unwrap_or(Personal::ERASED_TEXT).to_string());
                }
                _ => {}
            }
        }
    }
    .await;
    state.hub.forget(&outlet);
    result
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
struct Chat {
    #[schema(value_type = super::schema::MessageText)]
    message: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct ChatReply {
    /// The bot's answer, the handoff notice, an agent's reply, or a "we will answer" note after the wait.
    response: String,
}

/// Sends a message into the caller's one seed conversation and waits (bounded) for the answer.
#[utoipa::path(post, path = "/chat", tag = "seed", operation_id = "seedChat", request_body = Chat, security(("bearer" = [])),
    responses(
        (status = 200, description = "The answer", body = ChatReply),
        (status = 400, description = "Empty or too long message, or a malformed body", body = ErrorBody),
        (status = 409, description = "A business rule refused the message", body = ErrorBody),
    ))]

async fn chat(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Chat>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let response = ask(&state, &caller, &body.message).await?;
    Ok(axum::Json(json!({"response": response})))
}

/// The seed socket: every text frame is a customer message, every reply frame the answer's text.
#[utoipa::path(get, path = "/ws/{client_id}", tag = "seed", operation_id = "seedSocket",
    params(
        ("client_id" = String, Path, min_length = 1, max_length = 59, pattern = r"^[A-Za-z0-9_-]{1,59}$",
            description = "The client's id (letters, digits, `-`, `_`; `seed-` and it must make an id of at most 64 characters): a label only. In dev mode a socket without a token is a new anonymous visitor each time, whatever the id"),
        ("ticket" = Option<String>, Query, description = "A single-use socket ticket (`POST /api/v1/auth/socket-ticket`): the socket is its caller's. Required unless the server runs in dev mode. An access token in the URL (`?token=`) is refused: URLs end up in logs"),
    ),
    responses(
        (status = 101, description = "Switching Protocols: send text frames, receive answers as text frames"),
        (status = 400, description = "An invalid client id (the API's error shape), or not a WebSocket handshake (no `Connection: upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Version: 13` and `Sec-WebSocket-Key`: axum's plain-text rejection)",
            content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 401, description = "No, an invalid, an expired or a used ticket, or a token in the URL", body = ErrorBody),
        (status = 403, description = "This page's origin may not open a socket", body = ErrorBody),
        (status = 404, description = "No default tenant (dev mode without a token)", body = ErrorBody),
        (status = 429, description = "Too many sockets from this address or for this user, or too many new visitors from this address", body = ErrorBody),
        (status = 500, description = "An internal error", body = ErrorBody),
    ))]
async fn ws(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ip: Option<axum::Extension<super::limits::ClientIp>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let ip = ip.map(|i| i.0.0);
    let mut permits = crate::ws::limits::SocketPermits::open(&state.limiter, ip)?;
    if q.contains_key("token") {
        return Err(ApiError::Unauthorized(
            "a token in the URL is refused (URLs end up in logs): get a single-use ticket from POST /api/v1/auth/socket-ticket and pass ?ticket=".into(),
        ));
    }
    let caller = match q.get("ticket") {
        Some(t) => redeem_ticket(&state, t).await?,
        None => anonymous_visitor(&state, &client_id, ip).await?,
    };
    let origin = crate::foreign_origin(&headers, &state.config.public_origin);
    if !state.origin_allowed(&caller.tenant, origin.as_deref()).await {
        return Err(ApiError::Forbidden("this origin may not open a socket".into()));
    }
    permits.authenticated(&state.limiter, &caller)?;
    Ok(upgrade.read_buffer_size(crate::WS_READ_BUFFER).max_message_size(crate::WS_MAX_MESSAGE).on_upgrade(move |socket| async move {
        seed_session(socket, state, caller).await;
        drop(permits);
    }))
}

/// A new visitor of the default tenant for an anonymous socket (dev mode
/// only). `client_id` must be a valid id but names nothing: reusing another
/// client's id gives a visitor of one's own, never theirs.
/// The caller of a socket ticket: valid, not used before, and of a session
/// that is still current.
async fn redeem_ticket(state: &AppState, ticket: &str) -> Result<Caller, ApiError> {
    let (verified, id) = state.tokens.verify_ticket(ticket)?;
    if !state.limiter.first_use(&format!("ticket:{id}"), crate::auth::jwt::TICKET_TTL * 2).await? {
        return Err(ApiError::Unauthorized("the ticket was used already: get a new one".into()));
    }
    state.hub.sessions.check(state.commands.log().as_ref(), &verified.caller, verified.session).await?;
    Ok(verified.caller)
}

async fn anonymous_visitor(state: &AppState, client_id: &str, ip: Option<std::net::IpAddr>) -> Result<Caller, ApiError> {
    let tenant = state
        .config
        .default_tenant
        .clone()
        .filter(|_| state.config.dev_mode)
        .ok_or_else(|| ApiError::Unauthorized("a ticket is required (?ticket=…, from POST /api/v1/auth/socket-ticket)".into()))?;
    UserId::parse(format!("seed-{client_id}")).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let widget_key = state.directory.tenant(&tenant).await?.ok_or(ApiError::NotFound("tenant"))?.widget_key;
    state.limiter.visitor_minted(ip, &widget_key).await?;
    let id = UserId::parse(format!("seed-{}", uuid::Uuid::new_v4().simple())).map_err(ApiError::internal)?;
    super::auth::register_visitor(state, &tenant, id).await
}

async fn seed_session(mut socket: WebSocket, state: AppState, caller: Caller) {
    while let Some(Ok(msg)) = socket.recv().await {
        let reply = match msg {
            Message::Text(text) => match ask(&state, &caller, text.as_str()).await {
                Ok(answer) => answer,
                Err(e) => format!("error: {}", e.public_message()),
            },
            Message::Close(_) => break,
            _ => continue,
        };
        if socket.send(Message::Text(reply.into())).await.is_err() {
            break;
        }
    }
}
