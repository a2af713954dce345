//! Who the customer is ([`crate::contact`]): the tenant's identity secret,
//! `identify` for the widget, the pre-chat form, and the contact panel.

use super::json::ApiJson;
use crate::AppState;
use crate::auth::Caller;
use crate::contact;
use crate::directory::{ListQuery, View};
use crate::error::{ApiError, ErrorBody};
use crate::service;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use jamuna_domain::tenant::{MAX_IDENTITY_SECRET_GRACE_SECS, Tenant, TenantCommand};
use jamuna_domain::user::{CustomerDetails, Email, Role};
use jamuna_domain::{StreamId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tenant/identity-secret", post(rotate_secret))
        .route("/api/v1/auth/identify", post(identify))
        .route("/api/v1/customers/me/details", post(give_details))
        .route("/api/v1/customers/{id}", get(contact_panel))
}

/// How many of a customer's conversations the contact panel lists.
const PAST_CONVERSATIONS: u32 = 20;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateSecret {
    /// Seconds the secret being replaced keeps verifying (0, the default: it stops at once; at most 604800, a week).
    #[schema(minimum = 0, maximum = 604800)]
    #[serde(default)]
    #[serde(deserialize_with = "super::json::whole_number")]
    grace_secs: u64,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct SecretRotated {
    /// The new identity secret, shown this once: sign a customer's id with it on your server,
    /// `hex(HMAC-SHA256(secret, id))`.
    secret: String,
    /// Its key-store entry (not secret).
    key_id: String,
    /// Until when the replaced secret still verifies (absent when there was none).
    previous_valid_until: Option<String>,
    /// The tenant's version after the rotation.
    version: u64,
}

/// Admins make a new identity secret for the tenant (the first one, or a
/// replacement). It is answered this once and never stored in the log.
#[utoipa::path(post, path = "/api/v1/tenant/identity-secret", tag = "tenant", operation_id = "rotateIdentitySecret",
    request_body = RotateSecret, security(("bearer" = [])),
    responses(
        (status = 200, description = "The new secret (shown once)", body = SecretRotated),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 409, description = "`invalid_grace` (over a week), `not_found`", body = ErrorBody),
    ))]
async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RotateSecret>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    if body.grace_secs > MAX_IDENTITY_SECRET_GRACE_SECS {
        return Err(ApiError::Conflict { code: "invalid_grace", message: "the grace period is at most a week".into() });
    }
    let key_id = uuid::Uuid::now_v7().simple().to_string();
    let secret = contact::new_secret(&state, &caller.tenant, &key_id).await?;
    let stream = StreamId::of_tenant(&caller.tenant);
    let command = TenantCommand::RotateIdentitySecret { key_id: key_id.clone(), grace_secs: body.grace_secs };
    let done = state.commands.execute::<Tenant>(&stream, &command, &service::ctx(&caller)).await?;
    let mut until = None;
    for e in &done.events {
        if let jamuna_domain::tenant::TenantEvent::IdentitySecretRotated { previous: Some(previous), previous_valid_until, .. } = &e.data {
            until = *previous_valid_until;
            if body.grace_secs == 0 {
                contact::delete_secret(&state, &caller.tenant, previous).await?;
            }
        }
    }
    Ok(axum::Json(json!({"secret": secret, "key_id": key_id, "previous_valid_until": until, "version": done.version()})))
}

/// The widget's `Jamuna.identify(...)`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct IdentifyBody {
    /// The tenant's public widget key.
    widget_key: String,
    /// The website's own id of its signed-in customer.
    #[schema(min_length = 1, max_length = 255)]
    id: String,
    /// `hex(HMAC-SHA256(identity secret, id))`, made on the website's server.
    #[schema(min_length = 64, max_length = 64, pattern = "^[0-9a-fA-F]{64}$")]
    signature: String,
    #[schema(max_length = 200)]
    name: Option<String>,
    #[schema(value_type = Option<super::schema::Email>)]
    email: Option<String>,
    /// Custom attributes shown to staff: at most 30, names of 1 to 50 characters, values of at most 500.
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

/// Identifies a signed-in customer of the tenant's website and answers
/// tokens for them: the same id on any device is the same customer, with
/// their past conversations. With a visitor's bearer token, that visitor
/// becomes the customer if it was not identified before.
#[utoipa::path(post, path = "/api/v1/auth/identify", tag = "auth", operation_id = "identify", request_body = IdentifyBody,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Identified: the customer's tokens", body = super::auth::TokenResponse),
        (status = 400, description = "A malformed body or e-mail address", body = ErrorBody),
        (status = 401, description = "`invalid_signature`: the signature does not match the id under any valid secret of the tenant (or the tenant has none); `unauthorized`: unknown widget key", body = ErrorBody),
        (status = 403, description = "Called from a page whose origin is not one of the tenant's allowed origins", body = ErrorBody),
        (status = 409, description = "`invalid_external_id`, `name_too_long`, `invalid_attributes`", body = ErrorBody),
        (status = 429, description = "Too many refused signatures from this client: wait `Retry-After` seconds", body = ErrorBody),
    ))]
async fn identify(
    State(state): State<AppState>,
    ip: Option<axum::Extension<super::limits::ClientIp>>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<IdentifyBody>,
) -> Result<axum::Json<super::auth::TokenResponse>, ApiError> {
    let tenant =
        state.directory.tenant_by_widget_key(&body.widget_key).await?.ok_or_else(|| ApiError::Unauthorized("unknown widget key".into()))?;
    if let Some(origin) = crate::foreign_origin(&headers, &state.config.public_origin)
        && !state.origin_allowed(&tenant.id, Some(&origin)).await
    {
        return Err(ApiError::Forbidden("this page's origin is not one of the tenant's allowed origins".into()));
    }
    // A visitor's token, if any: that visitor may become the customer.
    let visitor = match crate::auth::bearer_header(&headers) {
        Some(token) => crate::auth::authenticate(&state, token).await.ok().map(|v| v.caller),
        None => None,
    };
    let email = body.email.as_deref().map(Email::parse).transpose().map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let details = CustomerDetails { external_id: Some(body.id), name: body.name, email, attributes: body.attributes };
    let client = ip.map_or_else(|| "unknown".to_owned(), |i| i.0.0.to_string());
    let ctx = service::tenant_ctx(&tenant.id);
    let caller =
        contact::identify(&state, &ctx, &tenant.id, visitor.as_ref(), &client, contact::Identify { details, signature: body.signature })
            .await?;
    Ok(axum::Json(super::auth::tokens_for(&state, &caller).await?))
}

/// The pre-chat form.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Details {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[schema(value_type = super::schema::Email)]
    email: String,
}

/// A customer gives their name and e-mail address in the widget's pre-chat
/// form: recorded as an unverified identity (ignored if the website already
/// identified them).
#[utoipa::path(post, path = "/api/v1/customers/me/details", tag = "users", operation_id = "giveDetails", request_body = Details,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Recorded"),
        (status = 400, description = "An empty name, an invalid e-mail address, or a malformed body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Customers only", body = ErrorBody),
        (status = 409, description = "`name_too_long`", body = ErrorBody),
    ))]
async fn give_details(State(state): State<AppState>, caller: Caller, ApiJson(body): ApiJson<Details>) -> Result<StatusCode, ApiError> {
    if body.name.trim().is_empty() {
        return Err(ApiError::BadRequest("a name is needed".into()));
    }
    let email = Email::parse(&body.email).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let details = CustomerDetails { external_id: None, name: Some(body.name), email: Some(email), attributes: BTreeMap::new() };
    contact::give_details(&state, &service::ctx(&caller), &caller, details).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct ContactPanel {
    id: String,
    /// The identity's name, else the account's.
    name: Option<String>,
    /// [`contact::contact_email`]: the verified identity's, the pre-chat form's, then the account's.
    email: Option<String>,
    /// The website's id of the customer (verified identities only).
    external_id: Option<String>,
    attributes: BTreeMap<String, String>,
    /// Signed by the tenant's website, not just typed into a form.
    verified: bool,
    /// Has the customer said who they are at all?
    identified: bool,
    erased: bool,
    /// The customer's conversations, newest first (at most 20), as the inbox lists them.
    conversations: Vec<Value>,
}

/// Staff see who a customer is and their past conversations (the contact
/// panel of the conversation view).
#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "users", operation_id = "contactPanel", security(("bearer" = [])),
    params(("id" = String, Path, description = "The customer's user id")),
    responses(
        (status = 200, description = "The customer", body = ContactPanel),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Agents and admins only", body = ErrorBody),
        (status = 404, description = "No such customer in the caller's tenant", body = ErrorBody),
    ))]
async fn contact_panel(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    caller.require_staff()?;
    let id = UserId::parse(id).map_err(|_| ApiError::NotFound("customer"))?;
    let user =
        state.directory.user(&caller.tenant, &id).await?.filter(|u| u.role == Role::Customer).ok_or(ApiError::NotFound("customer"))?;
    let query = ListQuery {
        view: View::All,
        agent: None,
        customer: Some(id.clone()),
        status: None,
        tag: None,
        team: None,
        channel: None,
        search: None,
        cursor: None,
        limit: PAST_CONVERSATIONS,
    };
    let page = state.conversations.list(&caller.tenant, &query).await?;
    let identity = user.identity.clone().unwrap_or_default();
    Ok(axum::Json(json!({
        "id": id,
        "name": identity.name.clone().or_else(|| user.name.clone()),
        "email": contact::contact_email_of(&user),
        "external_id": identity.external_id,
        "attributes": identity.attributes,
        "verified": identity.verified,
        "identified": user.identity.is_some(),
        "erased": user.erased,
        "conversations": page.items,
    })))
}
