//! `/api/v1/canned-replies`: the tenant's saved replies. Staff list them
//! (the dashboard's `/` picker); admins add, change and remove them.
//!
//! The list is the fold of the tenant's one canned-reply stream
//! (`<tenant>.canned.replies`), loaded through the command handler's cache:
//! at most [`MAX_REPLIES`] small replies, so no read model is needed, and a
//! list read right after a change shows it (read-your-writes). Every rule
//! (shortcut format and uniqueness, text length, known placeholders, the
//! limit) is the domain's ([`jamuna_domain::canned_reply`]); its refusals
//! reach HTTP through [`crate::error`]: 422 for an invalid reply, 409 for a
//! taken shortcut or a full set, 404 for an unknown id.

use super::json::ApiJson;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use jamuna_domain::StreamId;
use jamuna_domain::canned_reply::{CannedReplies, CannedReply, CannedReplyCommand, CannedReplyId, MAX_REPLIES};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/canned-replies", get(list).post(add)).route("/api/v1/canned-replies/{id}", put(change).delete(remove))
}

/// One canned reply.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct CannedReplyView {
    id: String,
    /// Typed after `/` in the reply box.
    #[schema(pattern = r"^[a-z0-9_-]{1,32}$")]
    shortcut: String,
    /// The text as saved, placeholders unfilled: `{{customer.name}}`, `{{agent.name}}`, `{{conversation.id}}`.
    text: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct CannedReplyList {
    /// Every reply, by shortcut.
    #[schema(max_items = 500)]
    items: Vec<CannedReplyView>,
}

/// What `POST` and `PUT` take.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CannedReplyBody {
    /// Lower-case letters, digits, `-` and `_`; unique in the tenant.
    #[schema(min_length = 1, max_length = 32, pattern = r"^[a-z0-9_-]{1,32}$")]
    shortcut: String,
    /// Trimmed: 1 to 4,000 characters, no control characters but line breaks and tabs. Placeholders:
    /// `{{customer.name}}`, `{{agent.name}}`, `{{conversation.id}}`; any other `{{…}}` is refused (422
    /// `unknown_placeholder`, naming it).
    #[schema(value_type = super::schema::MessageText)]
    text: String,
}

fn view(r: &CannedReply) -> Value {
    json!({"id": r.id, "shortcut": r.shortcut, "text": r.text})
}

/// An id from the path: one that is not an id names no reply.
fn reply_id(id: String) -> Result<CannedReplyId, ApiError> {
    CannedReplyId::parse(id).map_err(|_| ApiError::NotFound("canned reply"))
}

async fn run(state: &AppState, caller: &Caller, command: CannedReplyCommand) -> Result<std::sync::Arc<CannedReplies>, ApiError> {
    caller.require_admin()?;
    let stream = StreamId::canned_replies(&caller.tenant);
    Ok(state.commands.execute::<CannedReplies>(&stream, &command, &service::ctx(caller)).await?.state)
}

/// Staff list the tenant's canned replies.
#[utoipa::path(get, path = "/api/v1/canned-replies", tag = "canned-replies", operation_id = "listCannedReplies", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every canned reply, by shortcut", body = CannedReplyList),
        (status = 403, description = "Agents and admins only", body = ErrorBody),
    ))]
async fn list(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>, ApiError> {
    caller.require_staff()?;
    let replies = state.commands.load::<CannedReplies>(&StreamId::canned_replies(&caller.tenant)).await?;
    let mut items: Vec<&CannedReply> = replies.replies().iter().collect();
    items.sort_by(|a, b| a.shortcut.cmp(&b.shortcut));
    Ok(axum::Json(json!({"items": items.into_iter().map(view).collect::<Vec<_>>()})))
}

/// Admins add a canned reply.
#[utoipa::path(post, path = "/api/v1/canned-replies", tag = "canned-replies", operation_id = "addCannedReply",
    request_body = CannedReplyBody, security(("bearer" = [])),
    responses(
        (status = 201, description = "Added", body = CannedReplyView),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 409, description = "`shortcut_taken`; `too_many_canned_replies` (at most 500)", body = ErrorBody),
        (status = 422, description = "`invalid_shortcut`, `invalid_text`, `unknown_placeholder` (the message names it)", body = ErrorBody),
    ))]
async fn add(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<CannedReplyBody>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let id = CannedReplyId::from_uuid(uuid::Uuid::now_v7());
    let replies = run(&state, &caller, CannedReplyCommand::Add { id: id.clone(), shortcut: b.shortcut, text: b.text }).await?;
    let added = replies.get(&id).ok_or_else(|| ApiError::internal(std::io::Error::other("an added reply is not in the state")))?;
    Ok((StatusCode::CREATED, axum::Json(view(added))))
}

/// Admins change a canned reply's shortcut and text.
#[utoipa::path(put, path = "/api/v1/canned-replies/{id}", tag = "canned-replies", operation_id = "changeCannedReply",
    params(("id" = String, Path, description = "The reply's id")),
    request_body = CannedReplyBody, security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed (or unchanged)", body = CannedReplyView),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such reply", body = ErrorBody),
        (status = 409, description = "`shortcut_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_shortcut`, `invalid_text`, `unknown_placeholder` (the message names it)", body = ErrorBody),
    ))]
async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<CannedReplyBody>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let id = reply_id(id)?;
    let replies = run(&state, &caller, CannedReplyCommand::Change { id: id.clone(), shortcut: b.shortcut, text: b.text }).await?;
    let changed = replies.get(&id).ok_or(ApiError::NotFound("canned reply"))?;
    Ok(axum::Json(view(changed)))
}

/// Admins remove a canned reply.
#[utoipa::path(delete, path = "/api/v1/canned-replies/{id}", tag = "canned-replies", operation_id = "removeCannedReply",
    params(("id" = String, Path, description = "The reply's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such reply", body = ErrorBody),
    ))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id = reply_id(id)?;
    run(&state, &caller, CannedReplyCommand::Remove { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The limit the list's schema declares is the domain's.
const _: () = assert!(MAX_REPLIES == 500);
