//! Private notes (`POST /api/v1/conversations/{id}/notes`) and the caller's
//! mentions (`GET /api/v1/mentions`): staff talking among themselves about a
//! conversation.
//!
//! A note is a staff-only event (`NoteAdded`): its text is sealed with the
//! customer's key like a message's, and a customer never gets it — not over
//! the push hub, not in the detail, not on resume ([`crate::view`] has no
//! customer view of it). The colleagues it names are looked up here, in the
//! caller's tenant, and the conversation checks that they are staff; whom
//! one may name, any member of staff can list (`GET /api/v1/colleagues`:
//! ids, names and roles, never e-mail addresses, which stay with admins).

use super::json::{ApiJson, ApiQuery};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use jamuna_domain::conversation::{Assignee, Conversation, ConversationCommand, MAX_MENTIONS};
use jamuna_domain::user::Role;
use jamuna_domain::{ConversationId, MessageText, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/conversations/{id}/notes", post(add_note))
        .route("/api/v1/mentions", get(mentions))
        .route("/api/v1/colleagues", get(colleagues))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    #[schema(value_type = super::schema::MessageText)]
    text: String,
    /// The colleagues (user ids of agents or admins of the tenant) the note
    /// names; a repeated id counts once.
    #[serde(default)]
    #[schema(value_type = Vec<super::schema::Id>, max_items = 20)]
    mentions: Vec<String>,
}

/// A note's result: the conversation's version after it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct NoteAdded {
    id: String,
    /// The note's version in the conversation.
    version: u64,
    /// The user ids the note names, each once.
    mentions: Vec<String>,
}

/// Staff write a private note on a conversation (also a resolved one),
/// naming colleagues. Only staff ever see it.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/notes", tag = "conversations", operation_id = "addNote",
    params(("id" = String, Path, description = "The conversation id")), request_body = NoteBody, security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored", body = NoteAdded),
        (status = 400, description = "Empty or too long text, more than 20 mentions, an invalid user id, or a mentioned user who is not a member of the tenant", body = ErrorBody),
        (status = 403, description = "Agents and admins only (a customer or visitor token)", body = ErrorBody),
        (status = 404, description = "No such conversation in the caller's tenant", body = ErrorBody),
        (status = 409, description = "A business rule refused it (`not_an_agent`: a mentioned user is a customer)", body = ErrorBody),
    ))]
async fn add_note(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NoteBody>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    caller.require_staff()?;
    let id = ConversationId::parse(&id).map_err(|_| ApiError::NotFound("conversation"))?;
    let text = MessageText::parse(&body.text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if body.mentions.len() > MAX_MENTIONS {
        return Err(ApiError::BadRequest(format!("a note mentions at most {MAX_MENTIONS} users")));
    }
    let (stream, _) = crate::service::authorize(&state, &caller, &id).await?;
    let mut mentions: Vec<Assignee> = Vec::with_capacity(body.mentions.len());
    for m in &body.mentions {
        let user = UserId::parse(m).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if mentions.iter().any(|a| a.id == user) {
            continue;
        }
        let found = state.directory.user(&caller.tenant, &user).await?.filter(|u| !u.erased);
        let Some(found) = found else { return Err(ApiError::BadRequest(format!("no user {user} in this tenant to mention"))) };
        mentions.push(Assignee { id: found.id, tenant: found.tenant, role: found.role });
    }
    let author = Assignee { id: caller.user.clone(), tenant: caller.tenant.clone(), role: caller.role };
    let command = ConversationCommand::AddNote { author, text, mentions };
    let done = state.commands.execute::<Conversation>(&stream, &command, &crate::service::ctx(&caller)).await?;
    let named: Vec<&str> = done
        .events
        .iter()
        .flat_map(|e| match &e.data {
            jamuna_domain::conversation::ConversationEvent::NoteAdded { mentions, .. } => mentions.iter().map(|m| m.as_str()).collect(),
            _ => vec![],
        })
        .collect();
    Ok((StatusCode::CREATED, axum::Json(json!({"id": id, "version": done.version(), "mentions": named}))))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct MentionParams {
    /// `next_before` of the previous page: mentions logged before it.
    before: Option<u64>,
    /// 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

/// A page of the caller's mentions.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct Mentions {
    /// `{"conversation_id", "version" (the note's), "author" (user id), "at", "position"}`, newest first.
    items: Vec<Value>,
    /// Pass as `before` for the next page; absent on the last.
    next_before: Option<u64>,
}

/// The private notes that name the caller, newest first, a page at a time
/// (references: the note's text is in the conversation's detail).
#[utoipa::path(get, path = "/api/v1/mentions", tag = "conversations", operation_id = "listMentions",
    params(MentionParams), security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of mentions", body = Mentions),
        (status = 400, description = "`limit` out of range, or an unknown or malformed parameter", body = ErrorBody),
        (status = 403, description = "Agents and admins only", body = ErrorBody),
    ))]
async fn mentions(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<MentionParams>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_staff()?;
    let limit = p.limit.unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::BadRequest("limit is between 1 and 100".into()));
    }
    let items = state.conversations.mentions(&caller.tenant, &caller.user, p.before, limit).await?;
    let next_before = if items.len() == limit as usize { items.last().and_then(|m| m["position"].as_u64()) } else { None };
    Ok(axum::Json(json!({"items": items, "next_before": next_before})))
}

/// The tenant's staff as a colleague sees them.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct Colleagues {
    /// `{"id", "name" (null if none), "role" ("agent" or "admin")}` of every agent and admin not erased, by id.
    items: Vec<Value>,
}

/// The tenant's agents and admins, for the `@` picker of a note: ids,
/// display names and roles (no e-mail addresses).
#[utoipa::path(get, path = "/api/v1/colleagues", tag = "conversations", operation_id = "listColleagues",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tenant's staff", body = Colleagues),
        (status = 403, description = "Agents and admins only", body = ErrorBody),
    ))]
async fn colleagues(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>, ApiError> {
    caller.require_staff()?;
    let mut items = Vec::new();
    for role in [Role::Agent, Role::Admin] {
        for u in state.directory.users(&caller.tenant, Some(role)).await?.into_iter().filter(|u| !u.erased) {
            items.push(json!({"id": u.id, "name": u.name, "role": u.role}));
        }
    }
    items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Ok(axum::Json(json!({"items": items})))
}
