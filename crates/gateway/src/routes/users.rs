//! `/api/v1/users`: the caller's profile; admins create staff, change roles
//! and erase users (GDPR: the user's key is deleted, so their personal data
//! in the log reads as erased from then on).

use super::auth::create_user;
use super::json::ApiJson;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use jamuna_commands::handler::{CommandContext, CommandError};
use jamuna_domain::user::{Role, User, UserCommand, UserError};
use jamuna_domain::{StreamId, TenantId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users/me", get(me))
        .route("/api/v1/users", post(create).get(list))
        .route("/api/v1/users/{id}/role", patch(change_role))
        .route("/api/v1/users/{id}", axum::routing::delete(erase))
}

/// The caller's own profile.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", operation_id = "me", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = Me)))]
async fn me(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>, ApiError> {
    let user = state.directory.user(&caller.tenant, &caller.user).await?;
    Ok(axum::Json(json!({
        "id": caller.user,
        "tenant": caller.tenant,
        "role": caller.role,
        "visitor": caller.visitor,
        "name": user.as_ref().and_then(|u| u.name.clone()),
        "email": user.as_ref().and_then(|u| u.email.clone()),
    })))
}

/// `GET /api/v1/users/me`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct Me {
    id: String,
    tenant: String,
    #[schema(value_type = super::schema::Role)]
    role: (),
    /// An anonymous website visitor.
    visitor: bool,
    name: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Only users of this role.
    #[param(value_type = Option<super::schema::Role>)]
    role: Option<Role>,
}

/// One user of `GET /api/v1/users`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct UserSummary {
    id: String,
    #[schema(value_type = super::schema::Role)]
    role: (),
    name: Option<String>,
    email: Option<String>,
    erased: bool,
    /// RFC 3339.
    registered_at: String,
    /// No e-mail: an anonymous website visitor.
    visitor: bool,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct UserList {
    items: Vec<UserSummary>,
}

/// Admins list the tenant's users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", operation_id = "listUsers", params(ListParams), security(("bearer" = [])),
    responses(
        (status = 200, description = "The tenant's users", body = UserList),
        (status = 400, description = "An unknown role or parameter", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    super::json::ApiQuery(p): super::json::ApiQuery<ListParams>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let users = state.directory.users(&caller.tenant, p.role).await?;
    let items: Vec<Value> = users
        .into_iter()
        .map(|u| json!({"id": u.id, "role": u.role, "name": u.name, "email": u.email, "erased": u.erased, "registered_at": u.registered_at, "visitor": u.email.is_none()}))
        .collect();
    Ok(axum::Json(json!({"items": items})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateUser)]
#[serde(deny_unknown_fields)]
struct Create {
    #[schema(value_type = super::schema::Email)]
    email: String,
    #[schema(value_type = super::schema::Password)]
    password: String,
    /// The display name (trimmed; at most 200 characters).
    #[schema(max_length = 200)]
    name: Option<String>,
    #[schema(value_type = super::schema::Role)]
    role: Role,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct UserCreated {
    id: String,
    #[schema(value_type = super::schema::Role)]
    role: (),
}

/// Admins create a user with a password (staff, usually).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", operation_id = "createUser", request_body = Create, security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = UserCreated),
        (status = 400, description = "An invalid e-mail or a weak password", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 409, description = "`already_registered`, `name_too_long`", body = ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Create>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    caller.require_admin()?;
    let created = create_user(&state, &caller.tenant, body.role, &body.email, &body.password, body.name)
        .await?
        .ok_or_else(|| ApiError::from(CommandError::Rejected(UserError::AlreadyRegistered)))?;
    Ok((StatusCode::CREATED, axum::Json(json!({"id": created.user, "role": created.role}))))
}

fn parse_user(id: &str) -> Result<UserId, ApiError> {
    UserId::parse(id).map_err(|_| ApiError::NotFound("user"))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangeRole {
    #[schema(value_type = super::schema::Role)]
    role: Role,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct RoleChanged {
    id: String,
    #[schema(value_type = super::schema::Role)]
    role: (),
    version: u64,
}

/// Admins change a user's role; the user's sessions end.
#[utoipa::path(patch, path = "/api/v1/users/{id}/role", tag = "users", operation_id = "changeRole", params(("id" = String, Path, description = "The user id")), request_body = ChangeRole, security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = RoleChanged),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "An invalid user id", body = ErrorBody),
        (status = 409, description = "`not_registered`, `erased`", body = ErrorBody),
    ))]
async fn change_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ChangeRole>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let id = parse_user(&id)?;
    let stream = StreamId::user(&caller.tenant, &id);
    let done = state.commands.execute::<User>(&stream, &UserCommand::ChangeRole { role: body.role }, &service::ctx(&caller)).await?;
    // Tokens carry the role: make the user sign in again.
    state.refresh.revoke_all(&caller.tenant, &id).await?;
    state.hub.sessions.forget(&caller.tenant, &id);
    Ok(axum::Json(json!({"id": id, "role": body.role, "version": done.version()})))
}

/// Admins erase a user (GDPR): their key is deleted, so their personal data reads as erased.
///
/// In an order a retry can finish: first the user's address claim is
/// released and its key deleted (the address is read from the user's own
/// registration, which opens until their key goes), so the address can
/// register again as someone new and nothing ties it to this id; then the
/// `UserErased` event (the read models scrub the user's text when they see
/// it, and the log says so for good), then the key, then the refresh tokens.
/// Each step is idempotent, and erasing an erased user runs them again and
/// answers 204, so a request that failed half way is simply repeated.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", operation_id = "eraseUser", params(("id" = String, Path, description = "The user id")), security(("bearer" = [])),
    responses(
        (status = 204, description = "Erased (or erased before: a repeated erase finishes one that failed half way)"),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "An invalid user id", body = ErrorBody),
        (status = 409, description = "`not_registered`", body = ErrorBody),
    ))]
async fn erase(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id = parse_user(&id)?;
    erase_user(&state, &caller.tenant, &id, &service::ctx(&caller)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Erases a user in the order described at [`erase`]; repeating it finishes
/// an erase that failed half way (the idle-visitor sweep uses it too).
pub async fn erase_user(state: &AppState, tenant: &TenantId, id: &UserId, ctx: &CommandContext) -> Result<(), ApiError> {
    let stream = StreamId::user(tenant, id);
    crate::identity::release(&state.commands, ctx, tenant, id).await?;
    crate::contact::release(state, ctx, tenant, id).await?;
    match state.commands.execute::<User>(&stream, &UserCommand::Erase, ctx).await {
        Ok(_) | Err(CommandError::Rejected(UserError::Erased)) => {}
        Err(e) => return Err(e.into()),
    }
    // The event is stored; now the key goes, and with it the personal data.
    state.commands.sealer().keys().erase(tenant, id).await.map_err(ApiError::internal)?;
    state.refresh.revoke_all(tenant, id).await?;
    state.hub.sessions.forget(tenant, id);
    Ok(())
}
