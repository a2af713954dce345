//! `GET /openapi.json` and `GET /docs` through the real router, and every
//! documented operation answered by a handler (not the router's "no such
//! route" or "wrong method").

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use jamuna_commands::keys::memory::MemoryKeyStore;
use jamuna_commands::log::sqlite::SqliteLog;
use jamuna_commands::{CommandHandler, Sealer};
use jamuna_domain::user::Role;
use jamuna_domain::{TenantId, UserId};
use jamuna_gateway::auth::jwt::Tokens;
use jamuna_gateway::auth::refresh::RefreshTokens;
use jamuna_gateway::directory::{AnalyticsQueries, ConversationQueries, Directory, ListQuery, Page, TenantInfo, UserInfo};
use jamuna_gateway::routes::limits::Limiter;
use jamuna_gateway::ws::hub::Hub;
use jamuna_gateway::{AppState, GatewayConfig};
use jamuna_projections::StoreError;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// Read models with nothing in them.
struct Empty;

#[async_trait]
impl Directory for Empty {
    async fn tenant(&self, _: &TenantId) -> Result<Option<TenantInfo>, StoreError> {
        Ok(None)
    }
    async fn tenant_by_widget_key(&self, _: &str) -> Result<Option<TenantInfo>, StoreError> {
        Ok(None)
    }
    async fn user(&self, _: &TenantId, _: &UserId) -> Result<Option<UserInfo>, StoreError> {
        Ok(None)
    }
    async fn user_by_email(&self, _: &TenantId, _: &str) -> Result<Option<UserInfo>, StoreError> {
        Ok(None)
    }
    async fn users(&self, _: &TenantId, _: Option<Role>) -> Result<Vec<UserInfo>, StoreError> {
        Ok(Vec::new())
    }
    async fn caught_up(&self, _: u64) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl ConversationQueries for Empty {
    async fn list(&self, _: &TenantId, _: &ListQuery) -> Result<Page, StoreError> {
        Ok(Page { items: Vec::new(), next_cursor: None })
    }
    async fn open_count(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn mentions(&self, _: &TenantId, _: &UserId, _: Option<u64>, _: u32) -> Result<Vec<serde_json::Value>, StoreError> {
        Ok(Vec::new())
    }
    async fn waiting_by_team(&self, _: &TenantId) -> Result<Vec<(Option<jamuna_domain::TeamId>, u64)>, StoreError> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl AnalyticsQueries for Empty {
    async fn range(&self, _: &TenantId, _: chrono::NaiveDate, _: chrono::NaiveDate) -> Result<serde_json::Value, StoreError> {
        Ok(serde_json::json!({"days": [], "intents": []}))
    }
    async fn gaps(&self, _: &TenantId, _: usize) -> Result<serde_json::Value, StoreError> {
        Ok(serde_json::json!({"groups": []}))
    }
}

async fn app(dir: &std::path::Path) -> axum::Router {
    let log = Arc::new(SqliteLog::open(dir.join("events.db")).await.expect("the log opens"));
    let empty = Arc::new(Empty);
    let (_shutdown, shutdown) = tokio::sync::watch::channel(false);
    let state = AppState {
        config: Arc::new(GatewayConfig {
            public_origin: "http://localhost".into(),
            dev_mode: false,
            default_tenant: None,
            max_body_bytes: 64 * 1024,
            chat_timeout: Duration::from_millis(10),
            static_dir: None,
            metrics_on_api: true,
            webhook_allowed_hosts: vec!["127.0.0.1".into()],
        }),
        commands: Arc::new(CommandHandler::new(log, Sealer::new(Arc::new(MemoryKeyStore::default())))),
        directory: empty.clone(),
        conversations: empty.clone(),
        analytics: empty,
        tokens: Arc::new(Tokens::new(&"x".repeat(32).into(), "jamuna", "jamuna-api", Duration::from_secs(60)).unwrap()),
        refresh: Arc::new(RefreshTokens::open(&dir.join("sessions.db"), Duration::from_secs(60)).unwrap()),
        hub: Arc::new(Hub::default()),
        presence: Arc::new(jamuna_projections::sessions::MemorySessions::new()),
        limiter: Arc::new(Limiter::new(10_000)),
        attachments: Arc::new(jamuna_gateway::routes::attachments::Attachments {
            store: jamuna_commands::attachments::AttachmentStore::new(
                Arc::new(jamuna_commands::blobs::fs::FsBlobs::open(dir.join("blobs")).unwrap()),
                Arc::new(jamuna_commands::keys::memory::MemoryKeyStore::default()),
            ),
            max_bytes: 1024,
            customer_uploads_per_day: 50,
        }),
        metrics: metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle(),
        shutdown,
    };
    jamuna_gateway::router(state)
}

async fn call(app: &axum::Router, method: Method, path: &str) -> (StatusCode, String, Vec<u8>) {
    let request = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
    (status, content_type, body)
}

#[tokio::test]
async fn the_document_and_the_page_are_served_and_every_documented_operation_is_routed() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;

    let (status, content_type, body) = call(&app, Method::GET, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("/openapi.json is JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));

    let (status, content_type, body) = call(&app, Method::GET, "/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("openapi.json"));
    assert!(!page.contains("<script src") && !page.contains("<link"), "the page loads nothing from elsewhere");

    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let Ok(m) = Method::from_bytes(method.to_uppercase().as_bytes()) else { continue };
            // Any value for a path parameter: the route must match, whatever the handler says of it.
            let concrete: String = path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
            let (status, _, body) = call(&app, m.clone(), &concrete).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: the router has no such method");
            assert!(!(status == StatusCode::NOT_FOUND && body.is_empty()), "{method} {path}: the router has no such route");
            checked += 1;
        }
    }
    assert!(checked >= 35, "only {checked} operations checked");
}
