//! `/api/v1/tenant`: the caller's tenant and (for admins) its settings.

use super::json::ApiJson;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use jamuna_domain::StreamId;
use jamuna_domain::tenant::{Tenant, TenantCommand, TenantSettings};
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/tenant", get(show)).route("/api/v1/tenant/settings", axum::routing::put(change))
}

/// The caller's tenant: staff also see its widget key and settings.
#[utoipa::path(get, path = "/api/v1/tenant", tag = "tenant", operation_id = "getTenant", security(("bearer" = [])),
    responses(
        (status = 200, description = "The tenant", body = TenantView),
        (status = 404, description = "The tenant is gone", body = ErrorBody),
    ))]
async fn show(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>, ApiError> {
    let t = state.directory.tenant(&caller.tenant).await?.ok_or(ApiError::NotFound("tenant"))?;
    let mut body = json!({"id": t.id, "name": t.name});
    if caller.is_staff() {
        body["widget_key"] = json!(t.widget_key);
        body["settings"] = json!(t.settings);
    }
    Ok(axum::Json(body))
}

/// `GET /api/v1/tenant`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct TenantView {
    id: String,
    name: String,
    /// Staff only: the public key the chat widget exchanges for visitor tokens.
    widget_key: Option<String>,
    /// Staff only.
    #[schema(value_type = Option<super::schema::TenantSettings>)]
    settings: Option<()>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct SettingsChanged {
    /// The tenant's version after the change.
    version: u64,
    #[schema(value_type = super::schema::TenantSettings)]
    settings: (),
}

/// Admins replace the tenant's settings.
#[utoipa::path(put, path = "/api/v1/tenant/settings", tag = "tenant", operation_id = "changeTenantSettings",
    request_body = super::schema::TenantSettings, security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = SettingsChanged),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 409, description = "`invalid_origin`, `not_found`", body = ErrorBody),
    ))]
async fn change(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(settings): ApiJson<TenantSettings>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let stream = StreamId::of_tenant(&caller.tenant);
    let done = state.commands.execute::<Tenant>(&stream, &TenantCommand::ChangeSettings { settings }, &service::ctx(&caller)).await?;
    if let Some(a) = done.appended {
        state.directory.caught_up(a.last_position).await?;
    }
    Ok(axum::Json(json!({"version": done.version(), "settings": done.state.settings()})))
}
