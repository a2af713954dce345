//! `/api/v1/teams`: a tenant's teams of agents — admins create, rename and
//! remove them and choose their members; staff read them, each with how many
//! of its conversations wait for a human.
//!
//! The teams are one aggregate per tenant ([`jamuna_domain::team`]), read
//! from its stream (read-your-writes); the waiting counts come from the
//! conversations read model. A team of another tenant is not in the
//! caller's stream: it is a `404` like a team that never was.

use super::json::ApiJson;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use jamuna_domain::team::{Member, Team, TeamCommand, Teams};
use jamuna_domain::{StreamId, TeamId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/teams", get(list).post(create))
        .route("/api/v1/teams/{id}", get(show).patch(rename).delete(remove))
        .route("/api/v1/teams/{id}/members/{user_id}", put(add_member).delete(remove_member))
}

/// The caller's tenant's teams, as they stand in the log.
pub async fn load(state: &AppState, caller: &Caller) -> Result<Arc<Teams>, ApiError> {
    Ok(state.commands.load::<Teams>(&StreamId::teams(&caller.tenant)).await?)
}

/// The id of a team of the caller's tenant (`404` if there is none).
pub async fn existing(state: &AppState, caller: &Caller, id: &str) -> Result<TeamId, ApiError> {
    let id = TeamId::parse(id).map_err(|_| ApiError::NotFound("team"))?;
    if load(state, caller).await?.get(&id).is_none() {
        return Err(ApiError::NotFound("team"));
    }
    Ok(id)
}

fn team_json(t: &Team, waiting: u64) -> Value {
    json!({"id": t.id, "name": t.name, "members": t.members, "waiting": waiting})
}

/// A team.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handlers' `json!` bodies
struct TeamBody {
    #[schema(value_type = super::schema::Id)]
    id: (),
    #[schema(value_type = super::schema::TeamName)]
    name: (),
    /// The members' user ids, sorted.
    members: Vec<String>,
    /// How many of the team's conversations wait for a human (pending, nobody assigned).
    waiting: u64,
}

/// `GET /api/v1/teams`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct TeamList {
    /// Sorted by id.
    teams: Vec<TeamBody>,
    /// Conversations waiting for a human that are given to no team (the router offers them to every online agent).
    waiting_without_team: u64,
}

/// The tenant's teams, each with its members and how many of its
/// conversations wait for a human ("Waiting for a human").
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", operation_id = "listTeams", security(("bearer" = [])),
    responses(
        (status = 200, description = "The teams", body = TeamList),
        (status = 403, description = "Agents and admins only", body = ErrorBody),
    ))]
async fn list(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>, ApiError> {
    caller.require_staff()?;
    let teams = load(&state, &caller).await?;
    let counts: HashMap<Option<TeamId>, u64> = state.conversations.waiting_by_team(&caller.tenant).await?.into_iter().collect();
    // A conversation given to a team removed since counts as given to none.
    let without = counts.iter().filter(|(t, _)| t.as_ref().is_none_or(|t| teams.get(t).is_none())).map(|(_, n)| n).sum::<u64>();
    let list: Vec<Value> = teams.all().map(|t| team_json(t, counts.get(&Some(t.id.clone())).copied().unwrap_or(0))).collect();
    Ok(axum::Json(json!({"teams": list, "waiting_without_team": without})))
}

/// One team.
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams", operation_id = "getTeam",
    params(("id" = String, Path, description = "The team id")), security(("bearer" = [])),
    responses(
        (status = 200, description = "The team", body = TeamBody),
        (status = 403, description = "Agents and admins only", body = ErrorBody),
        (status = 404, description = "No such team in the caller's tenant", body = ErrorBody),
    ))]
async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    caller.require_staff()?;
    let id = existing(&state, &caller, &id).await?;
    let teams = load(&state, &caller).await?;
    let team = teams.get(&id).ok_or(ApiError::NotFound("team"))?;
    let waiting = state.conversations.waiting_by_team(&caller.tenant).await?.into_iter().find(|(t, _)| t.as_ref() == Some(&id));
    Ok(axum::Json(team_json(team, waiting.map_or(0, |(_, n)| n))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NameBody {
    #[schema(value_type = super::schema::TeamName)]
    name: String,
}

/// The team's id and the aggregate's version after the command.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handlers' `json!` bodies
struct TeamChanged {
    #[schema(value_type = super::schema::Id)]
    id: (),
    /// The version of the tenant's teams after the command.
    version: u64,
    /// False when nothing changed (it was already so).
    changed: bool,
}

async fn run(state: &AppState, caller: &Caller, team: &TeamId, command: TeamCommand) -> Result<axum::Json<Value>, ApiError> {
    let done = state.commands.execute::<Teams>(&StreamId::teams(&caller.tenant), &command, &service::ctx(caller)).await?;
    Ok(axum::Json(json!({"id": team, "version": done.version(), "changed": !done.events.is_empty()})))
}

/// Admins create a team.
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", operation_id = "createTeam", request_body = NameBody, security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = TeamChanged),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 409, description = "`invalid_team_name`, `team_name_taken`", body = ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NameBody>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    caller.require_admin()?;
    let team = TeamId::from_uuid(uuid::Uuid::now_v7());
    let command = TeamCommand::Create { tenant: caller.tenant.clone(), team: team.clone(), name: body.name };
    Ok((StatusCode::CREATED, run(&state, &caller, &team, command).await?))
}

/// Admins rename a team.
#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "teams", operation_id = "renameTeam",
    params(("id" = String, Path, description = "The team id")), request_body = NameBody, security(("bearer" = [])),
    responses(
        (status = 200, description = "Renamed (or already so named)", body = TeamChanged),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such team in the caller's tenant", body = ErrorBody),
        (status = 409, description = "`invalid_team_name`, `team_name_taken`", body = ErrorBody),
    ))]
async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NameBody>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let team = existing(&state, &caller, &id).await?;
    run(&state, &caller, &team, TeamCommand::Rename { team: team.clone(), name: body.name }).await
}

/// Admins remove a team. Its conversations keep it as their team, shown as
/// given to no team; the router offers them to every online agent.
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "teams", operation_id = "removeTeam",
    params(("id" = String, Path, description = "The team id")), security(("bearer" = [])),
    responses(
        (status = 200, description = "Removed", body = TeamChanged),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such team in the caller's tenant", body = ErrorBody),
    ))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let team = existing(&state, &caller, &id).await?;
    run(&state, &caller, &team, TeamCommand::Remove { team: team.clone() }).await
}

/// Admins add an agent or admin of the tenant to a team.
#[utoipa::path(put, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams", operation_id = "addTeamMember",
    params(("id" = String, Path, description = "The team id"), ("user_id" = String, Path, description = "The agent's user id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Added (or already a member)", body = TeamChanged),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such team, or no such user, in the caller's tenant", body = ErrorBody),
        (status = 409, description = "`not_an_agent`: customers are not members", body = ErrorBody),
    ))]
async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let team = existing(&state, &caller, &id).await?;
    let user_id = UserId::parse(user_id).map_err(|_| ApiError::NotFound("user"))?;
    let user = state.directory.user(&caller.tenant, &user_id).await?.filter(|u| !u.erased).ok_or(ApiError::NotFound("user"))?;
    let member = Member { id: user.id, tenant: user.tenant, role: user.role };
    run(&state, &caller, &team, TeamCommand::AddMember { team: team.clone(), member }).await
}

/// Admins take a member off a team.
#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams", operation_id = "removeTeamMember",
    params(("id" = String, Path, description = "The team id"), ("user_id" = String, Path, description = "The member's user id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Removed (or not a member)", body = TeamChanged),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such team in the caller's tenant", body = ErrorBody),
    ))]
async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let team = existing(&state, &caller, &id).await?;
    let user = UserId::parse(user_id).map_err(|_| ApiError::NotFound("user"))?;
    run(&state, &caller, &team, TeamCommand::RemoveMember { team: team.clone(), user }).await
}
