//! `/api/v1/tenant`: the caller's tenant and (for admins) its settings and
//! widget key.
//!
//! Every route here acts on the caller's own tenant (the one in the token):
//! there is no tenant id in the path, so another tenant's admin has nothing
//! to name.

use super::json::ApiJson;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use jamuna_domain::StreamId;
use jamuna_domain::tenant::{Tenant, TenantCommand, TenantSettings};
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tenant", get(show))
        .route("/api/v1/tenant/settings", axum::routing::put(change))
        .route("/api/v1/tenant/widget-key", axum::routing::post(rotate_widget_key))
}

/// The caller's tenant: staff also see its widget key and settings.
#[utoipa::path(get, path = "/api/v1/tenant", tag = "tenant", operation_id = "getTenant", security(("bearer" = [])),
    responses(
        (status = 200, description = "The tenant", body = TenantView),
        (status = 404, description = "The tenant is gone", body = ErrorBody),
    ))]
async fn show(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>, ApiError> {
    let t = state.directory.tenant(&caller.tenant).await?.ok_or(ApiError::NotFound("tenant"))?;
    // The pre-chat form's mode is the widget's to know, not a secret.
    let mut body = json!({"id": t.id, "name": t.name, "prechat": t.settings.prechat});
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
    /// The widget's pre-chat form: `off`, `optional` or `required`.
    prechat: String,
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
        (status = 409, description = "`invalid_origin`, `invalid_handoff_retention` (outside 0.80 to 0.995), `not_found`", body = ErrorBody),
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

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct WidgetKeyRotated {
    /// The new widget key: paste it into the widget snippet (`data-tenant-key`).
    widget_key: String,
    /// The tenant's version after the rotation.
    version: u64,
}

/// Admins replace the tenant's widget key with a new random one. The old key
/// is refused from this response on (`POST /api/v1/auth/visitor` answers
/// 401); visitors who signed in with it keep their identities and tokens.
#[utoipa::path(post, path = "/api/v1/tenant/widget-key", tag = "tenant", operation_id = "rotateWidgetKey",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Rotated: the new key", body = WidgetKeyRotated),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 409, description = "`not_found`", body = ErrorBody),
    ))]
async fn rotate_widget_key(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let widget_key = new_widget_key();
    let stream = StreamId::of_tenant(&caller.tenant);
    let command = TenantCommand::RotateWidgetKey { widget_key: widget_key.clone() };
    let done = state.commands.execute::<Tenant>(&stream, &command, &service::ctx(&caller)).await?;
    // Read-your-writes: the visitor route looks keys up in the read model,
    // so the old key opens nothing once this answers.
    if let Some(a) = done.appended {
        state.directory.caught_up(a.last_position).await?;
    }
    Ok(axum::Json(json!({"widget_key": widget_key, "version": done.version()})))
}

/// `wk_` and 32 URL-safe characters: 192 random bits from the OS.
fn new_widget_key() -> String {
    let mut raw = [0u8; 24];
    rand::fill(&mut raw);
    format!("wk_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_widget_keys_are_valid_and_distinct() {
        let (a, b) = (new_widget_key(), new_widget_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 35);
        assert!(a.starts_with("wk_") && a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{a}");
    }
}
