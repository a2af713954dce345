//! `/api/v1/webhooks`: a tenant's admins subscribe HTTPS endpoints to event
//! types, and read what became of each delivery.
//!
//! Admins only (agents and customers: 403); every route acts on the caller's
//! own tenant, so another tenant's webhooks cannot be named. The signing
//! secret is returned once, when it is made (registration, rotation): the
//! log holds it sealed with a key of the webhook's own, which removing the
//! webhook erases. The deliveries themselves are made by the deliverer
//! (`jamuna_webhooks`), which records their outcomes.

use super::json::ApiJson;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use base64::Engine;
use jamuna_commands::seal;
use jamuna_domain::webhook::{self, DeliveriesEvent, Webhooks, WebhooksCommand};
use jamuna_domain::{Personal, StreamId};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/webhooks", get(list).post(register))
        .route("/api/v1/webhooks/{id}", put(change).delete(remove))
        .route("/api/v1/webhooks/{id}/secret", post(rotate_secret))
        .route("/api/v1/webhooks/{id}/deliveries", get(deliveries))
}

/// The event types a webhook can subscribe to.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents jamuna_domain::webhook::EVENT_TYPES
enum WebhookEventType {
    ConversationStarted,
    MessagePosted,
    BotAnswered,
    HandoffRequested,
    AgentAssigned,
    ConversationResolved,
    ConversationReopened,
    FeedbackGiven,
    TagsChanged,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = WebhookSubscription)]
#[serde(deny_unknown_fields)]
struct Subscription {
    /// `https://host[:port][/path]`, to a public address (the installation may
    /// allow named hosts over http: `webhooks.allow_insecure_hosts`).
    #[schema(max_length = 2048, example = "https://hooks.example.com/jamuna")]
    url: String,
    /// One or more; duplicates are dropped.
    #[schema(value_type = Vec<WebhookEventType>, min_items = 1)]
    event_types: Vec<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct WebhookView {
    /// `wh` and 32 hex digits.
    id: String,
    url: String,
    #[schema(value_type = Vec<WebhookEventType>)]
    event_types: Vec<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct WebhookList {
    items: Vec<WebhookView>,
    /// What a webhook can subscribe to.
    #[schema(value_type = Vec<WebhookEventType>)]
    event_types: Vec<String>,
    /// At most this many webhooks per tenant.
    max_webhooks: usize,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct WebhookCreated {
    id: String,
    url: String,
    #[schema(value_type = Vec<WebhookEventType>)]
    event_types: Vec<String>,
    /// The signing secret, shown this once: keep it to verify `X-Jamuna-Signature`.
    secret: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct SecretRotated {
    /// The new signing secret, shown this once; deliveries are signed with it from now on.
    secret: String,
}

fn id_of(id: &str) -> Result<String, ApiError> {
    webhook::parse_webhook_id(id).map_err(|_| ApiError::NotFound("webhook"))
}

/// `whsec_` and 43 URL-safe characters: 256 random bits from the OS.
fn new_secret() -> String {
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    format!("whsec_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

/// Admins list the tenant's webhooks (never their secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "listWebhooks", security(("bearer" = [])),
    responses(
        (status = 200, description = "The tenant's webhooks", body = WebhookList),
        (status = 403, description = "Admins only", body = ErrorBody),
    ))]
async fn list(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let hooks = state.commands.load::<Webhooks>(&StreamId::webhooks(&caller.tenant)).await?;
    let items: Vec<Value> =
        hooks.subscriptions().iter().map(|(id, s)| json!({"id": id, "url": s.url, "event_types": s.event_types})).collect();
    Ok(axum::Json(json!({"items": items, "event_types": webhook::EVENT_TYPES, "max_webhooks": webhook::MAX_WEBHOOKS})))
}

/// Admins register a webhook; the answer holds its signing secret, once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "registerWebhook", request_body = Subscription,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered", body = WebhookCreated),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 409, description = "`invalid_url`, `insecure_url` (not https), `forbidden_host` (loopback, private or link-local), `url_too_long` (over 2048 bytes), `no_event_types`, `unknown_event_type`, `too_many_webhooks` (over 10)", body = ErrorBody),
    ))]
async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Subscription>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    caller.require_admin()?;
    let id = format!("wh{}", uuid::Uuid::new_v4().simple());
    let secret = new_secret();
    let command = WebhooksCommand::Register {
        webhook: id.clone(),
        url: body.url,
        event_types: body.event_types,
        secret: Personal::plain(secret.clone()),
        allowed_hosts: state.config.webhook_allowed_hosts.clone(),
    };
    let done = state.commands.execute::<Webhooks>(&StreamId::webhooks(&caller.tenant), &command, &service::ctx(&caller)).await?;
    let s = done.state.subscriptions().get(&id).ok_or(ApiError::NotFound("webhook"))?;
    Ok((StatusCode::CREATED, axum::Json(json!({"id": id, "url": s.url, "event_types": s.event_types, "secret": secret}))))
}

/// Admins change a webhook's URL and event types.
#[utoipa::path(put, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "changeWebhook",
    params(("id" = String, Path, description = "The webhook id")), request_body = Subscription, security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = WebhookView),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "Not a webhook id", body = ErrorBody),
        (status = 409, description = "`unknown_webhook`, and the URL and event-type refusals of registration", body = ErrorBody),
    ))]
async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Subscription>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let id = id_of(&id)?;
    let command = WebhooksCommand::Change {
        webhook: id.clone(),
        url: body.url,
        event_types: body.event_types,
        allowed_hosts: state.config.webhook_allowed_hosts.clone(),
    };
    let done = state.commands.execute::<Webhooks>(&StreamId::webhooks(&caller.tenant), &command, &service::ctx(&caller)).await?;
    let s = done.state.subscriptions().get(&id).ok_or(ApiError::NotFound("webhook"))?;
    Ok(axum::Json(json!({"id": id, "url": s.url, "event_types": s.event_types})))
}

/// Admins remove a webhook: nothing more is delivered to it, and its secret's key is erased.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "removeWebhook",
    params(("id" = String, Path, description = "The webhook id")), security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed (or already removed)"),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "Not a webhook id", body = ErrorBody),
        (status = 409, description = "`unknown_webhook`", body = ErrorBody),
    ))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id = id_of(&id)?;
    let command = WebhooksCommand::Remove { webhook: id.clone() };
    state.commands.execute::<Webhooks>(&StreamId::webhooks(&caller.tenant), &command, &service::ctx(&caller)).await?;
    // After the removal is in the log: a retry of a half-done removal finishes it.
    state.commands.sealer().keys().erase(&caller.tenant, &webhook::secret_subject(&id)).await.map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Admins replace a webhook's signing secret with a new random one, shown once.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/secret", tag = "webhooks", operation_id = "rotateWebhookSecret",
    params(("id" = String, Path, description = "The webhook id")), security(("bearer" = [])),
    responses(
        (status = 200, description = "Rotated: the new secret", body = SecretRotated),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "Not a webhook id", body = ErrorBody),
        (status = 409, description = "`unknown_webhook`", body = ErrorBody),
    ))]
async fn rotate_secret(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let id = id_of(&id)?;
    let secret = new_secret();
    let command = WebhooksCommand::RotateSecret { webhook: id, secret: Personal::plain(secret.clone()) };
    state.commands.execute::<Webhooks>(&StreamId::webhooks(&caller.tenant), &command, &service::ctx(&caller)).await?;
    Ok(axum::Json(json!({"secret": secret})))
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct DeliveryView {
    /// `dlv_` and 32 hex digits: the `X-Jamuna-Delivery` header, the same on every attempt.
    delivery_id: String,
    event_id: String,
    #[schema(value_type = WebhookEventType)]
    event_type: String,
    /// `delivered` or `failed`.
    #[schema(pattern = "^(delivered|failed)$")]
    status: String,
    /// Attempts made (the last run's, if the deliverer restarted meanwhile).
    attempts: u32,
    /// The receiver's last HTTP status, if it answered.
    response_code: Option<u16>,
    /// Why the last attempt failed (at most 500 characters).
    last_error: Option<String>,
    /// When the outcome was recorded.
    recorded_at: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct DeliveryList {
    /// The last 100 deliveries, newest first.
    #[schema(max_items = 100)]
    items: Vec<DeliveryView>,
}

/// Admins read a webhook's last 100 deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", operation_id = "listWebhookDeliveries",
    params(("id" = String, Path, description = "The webhook id")), security(("bearer" = [])),
    responses(
        (status = 200, description = "Its deliveries", body = DeliveryList),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "Not a webhook id", body = ErrorBody),
    ))]
async fn deliveries(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let id = id_of(&id)?;
    let recorded = state.commands.log().read_stream(&StreamId::webhook_deliveries(&caller.tenant, &id), 0).await?;
    // The last outcome of each delivery, in the order they were last recorded.
    let mut last: HashMap<String, (u64, Value)> = HashMap::new();
    for r in &recorded {
        let event: DeliveriesEvent = seal::decode(r).map_err(ApiError::internal)?;
        let view = match &event {
            DeliveriesEvent::WebhookDelivered { delivery_id, event_id, event_type, attempts, status } => json!({
                "delivery_id": delivery_id, "event_id": event_id, "event_type": event_type, "status": "delivered",
                "attempts": attempts, "response_code": status, "last_error": null, "recorded_at": r.meta.occurred_at,
            }),
            DeliveriesEvent::WebhookDeliveryFailed { delivery_id, event_id, event_type, attempts, status, error } => json!({
                "delivery_id": delivery_id, "event_id": event_id, "event_type": event_type, "status": "failed",
                "attempts": attempts, "response_code": status, "last_error": error, "recorded_at": r.meta.occurred_at,
            }),
        };
        last.insert(event.delivery_id().to_owned(), (r.version, view));
    }
    let mut items: Vec<(u64, Value)> = last.into_values().collect();
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    Ok(axum::Json(json!({"items": items.into_iter().take(100).map(|(_, v)| v).collect::<Vec<_>>()})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_distinct() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.starts_with("whsec_") && a.len() == 49, "{a}");
        assert!(a.len() >= webhook::MIN_SECRET_LEN);
    }

    #[test]
    fn the_documented_event_types_are_the_domains() {
        let doc = serde_json::to_value(<WebhookEventType as utoipa::PartialSchema>::schema()).unwrap();
        let documented: Vec<String> = serde_json::from_value(doc["enum"].clone()).unwrap();
        assert_eq!(documented, webhook::EVENT_TYPES);
    }
}
