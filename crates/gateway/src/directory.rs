//! The read-side lookups the gateway needs, as a port: tenants (by id and by
//! widget key) and users (by id and by e-mail, for login). The binary plugs
//! in the users-and-tenants read model ([`crate::reads`]).
//!
//! The ports speak the read models' [`StoreError`]: `Invalid` for a query
//! that cannot be answered as asked, `Unavailable` for a store that is down
//! (or late), `Internal` for the rest; [`crate::error`] maps it to HTTP.

use async_trait::async_trait;
use jamuna_domain::tenant::TenantSettings;
use jamuna_domain::user::Role;
use jamuna_domain::{TenantId, UserId};
use jamuna_projections::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct TenantInfo {
    pub id: TenantId,
    pub name: String,
    pub widget_key: String,
    pub settings: TenantSettings,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserInfo {
    pub id: UserId,
    pub tenant: TenantId,
    pub role: Role,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The argon2id PHC string; `None` for visitors.
    pub password_hash: Option<String>,
    pub erased: bool,
    pub registered_at: jamuna_domain::Timestamp,
    /// Who a customer said they are (verified by the website, or the pre-chat form).
    pub identity: Option<jamuna_projections::users::CustomerIdentity>,
}

#[async_trait]
pub trait Directory: Send + Sync + 'static {
    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantInfo>, StoreError>;
    async fn tenant_by_widget_key(&self, key: &str) -> Result<Option<TenantInfo>, StoreError>;
    async fn user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<UserInfo>, StoreError>;
    async fn user_by_email(&self, tenant: &TenantId, email: &str) -> Result<Option<UserInfo>, StoreError>;
    /// The tenant's users (for the admin page), optionally of one role.
    async fn users(&self, tenant: &TenantId, role: Option<Role>) -> Result<Vec<UserInfo>, StoreError>;
    /// Waits (bounded) until the read model has applied the log up to
    /// `position`, so a read right after a write sees it.
    async fn caught_up(&self, position: u64) -> Result<(), StoreError>;
}

/// Which conversations an inbox or a customer's list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum View {
    Unassigned,
    Mine,
    Pending,
    Resolved,
    All,
}

/// A query of the conversations read model, always within one tenant.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub view: View,
    /// The agent whose conversations `Mine` means.
    pub agent: Option<UserId>,
    /// Only this customer's conversations (a customer's own list).
    pub customer: Option<UserId>,
    pub status: Option<String>,
    pub tag: Option<String>,
    /// Only conversations given to this team.
    pub team: Option<String>,
    pub channel: Option<String>,
    /// Full-text search over message text.
    pub search: Option<String>,
    pub cursor: Option<String>,
    pub limit: u32,
}

/// A page of conversation summaries (JSON, as the read model shapes them).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Page {
    /// Conversation summaries, as the conversations read model shapes them.
    pub items: Vec<serde_json::Value>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The conversations read model, as the inbox needs it.
#[async_trait]
pub trait ConversationQueries: Send + Sync + 'static {
    async fn list(&self, tenant: &TenantId, query: &ListQuery) -> Result<Page, StoreError>;
    /// Unresolved conversations of every tenant, for the operators' gauge.
    async fn open_count(&self) -> Result<u64, StoreError>;
    /// The private notes that mention `user`, newest first, logged before
    /// position `before`, at most `limit`: `{"conversation_id", "version",
    /// "author", "at", "position"}` each (references, never the note's text).
    async fn mentions(
        &self,
        tenant: &TenantId,
        user: &UserId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<serde_json::Value>, StoreError>;
    /// How many of the tenant's conversations wait for a human, per team
    /// (`None`: given to no team).
    async fn waiting_by_team(&self, tenant: &TenantId) -> Result<Vec<(Option<jamuna_domain::TeamId>, u64)>, StoreError>;
}

/// The analytics read model: per-day figures over a date range, as JSON
/// (`{"days": [...], "intents": [...]}`).
#[async_trait]
pub trait AnalyticsQueries: Send + Sync + 'static {
    async fn range(&self, tenant: &TenantId, from: chrono::NaiveDate, to: chrono::NaiveDate) -> Result<serde_json::Value, StoreError>;
    /// The content gaps, most frequent first (`{"groups": [...]}`; see
    /// `jamuna_projections::gaps::group_json`), at most `limit` (1 to 200).
    async fn gaps(&self, tenant: &TenantId, limit: usize) -> Result<serde_json::Value, StoreError>;
}
