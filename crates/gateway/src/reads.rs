//! Adapters from the read models (`jamuna-projections`) to the ports the
//! gateway asks for ([`crate::directory`]): the binary and the gateway's own
//! tests plug the same ones in.

use crate::directory::{AnalyticsQueries, ConversationQueries, Directory, ListQuery, Page, TenantInfo, UserInfo, View};
use async_trait::async_trait;
use jamuna_domain::conversation::{Channel, Status, Tag};
use jamuna_domain::{TenantId, UserId};
use jamuna_projections::analytics::{AnalyticsStore, DailyStats};
use jamuna_projections::conversations::{ConversationQuery, ConversationStore, Cursor, InboxView};
use jamuna_projections::users::{TenantRecord, UserRecord, UserStore};
use jamuna_projections::{ProjectionError, ProjectionHandle, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// How long a request waits for the read models to catch up with its own write.
const READ_YOUR_WRITES: Duration = Duration::from_secs(5);

/// The read models, as the gateway's ports.
pub struct GatewayReads {
    pub users: Arc<dyn UserStore>,
    pub conversations: Arc<dyn ConversationStore>,
    pub analytics: Arc<dyn AnalyticsStore>,
    /// The content gaps (its projection runs in the AI worker).
    pub gaps: Arc<dyn jamuna_projections::gaps::GapStore>,
    /// How a request waits for the read models to hold its own write.
    pub catch_up: CatchUp,
}

/// Read-your-writes: how the gateway learns that the projections its reads
/// depend on have reached a position.
pub enum CatchUp {
    /// The projector runs in this process (`serve`): watch its progress.
    Local(Vec<ProjectionHandle>),
    /// The projector is another process (`jamuna gateway`): poll the
    /// checkpoints it stores with the read models.
    Stored(Vec<Arc<dyn jamuna_projections::Projection>>),
}

impl CatchUp {
    /// A read model that does not catch up in time is `Unavailable`, like one that is down.
    async fn wait_for(&self, position: u64) -> Result<(), StoreError> {
        match self {
            CatchUp::Local(handles) => {
                for h in handles {
                    h.wait_for(position, READ_YOUR_WRITES).await.map_err(StoreError::unavailable)?;
                }
                Ok(())
            }
            CatchUp::Stored(projections) => {
                let deadline = tokio::time::Instant::now() + READ_YOUR_WRITES;
                for p in projections {
                    let mut pause = Duration::from_millis(5);
                    loop {
                        let reached = p.checkpoint().await.map_err(|e| match e {
                            ProjectionError::Store(s) => s,
                            other => StoreError::unavailable(other),
                        })?;
                        if reached >= position {
                            break;
                        }
                        if tokio::time::Instant::now() >= deadline {
                            let e = jamuna_projections::WaitError::Timeout { name: p.name().to_owned(), position, reached };
                            return Err(StoreError::unavailable(e));
                        }
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(100));
                    }
                }
                Ok(())
            }
        }
    }
}

fn tenant_info(t: TenantRecord) -> TenantInfo {
    TenantInfo { id: t.id, name: t.name, widget_key: t.widget_key, settings: t.settings }
}

fn user_info(u: UserRecord) -> UserInfo {
    UserInfo {
        id: u.id,
        tenant: u.tenant,
        role: u.role,
        name: u.name,
        email: u.email,
        password_hash: u.password_hash,
        erased: u.erased,
        registered_at: u.registered_at,
        identity: u.identity,
    }
}

#[async_trait]
impl Directory for GatewayReads {
    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantInfo>, StoreError> {
        Ok(self.users.tenant(id).await?.map(tenant_info))
    }

    async fn tenant_by_widget_key(&self, key: &str) -> Result<Option<TenantInfo>, StoreError> {
        Ok(self.users.find_tenant_by_widget_key(key).await?.map(tenant_info))
    }

    async fn user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<UserInfo>, StoreError> {
        Ok(self.users.user(tenant, id).await?.map(user_info))
    }

    async fn user_by_email(&self, tenant: &TenantId, email: &str) -> Result<Option<UserInfo>, StoreError> {
        Ok(self.users.find_by_email(tenant, email).await?.map(user_info))
    }

    async fn users(&self, tenant: &TenantId, role: Option<jamuna_domain::user::Role>) -> Result<Vec<UserInfo>, StoreError> {
        let mut out = Vec::new();
        let mut after: Option<UserId> = None;
        loop {
            let page = self.users.users(tenant, role, after.as_ref(), jamuna_projections::users::MAX_USERS).await?;
            let done = page.len() < jamuna_projections::users::MAX_USERS;
            after = page.last().map(|u| u.id.clone());
            out.extend(page.into_iter().map(user_info));
            if done || out.len() >= 10_000 {
                return Ok(out);
            }
        }
    }

    async fn caught_up(&self, position: u64) -> Result<(), StoreError> {
        self.catch_up.wait_for(position).await
    }
}

fn parse_status(s: &str) -> Result<Status, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| StoreError::Invalid(format!("unknown status {s:?}: open, pending or resolved")))
}

fn parse_channel(s: &str) -> Result<Channel, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| StoreError::Invalid(format!("unknown channel {s:?}: web, mobile or api")))
}

#[async_trait]
impl ConversationQueries for GatewayReads {
    async fn open_count(&self) -> Result<u64, StoreError> {
        self.conversations.open_count().await
    }

    async fn mentions(
        &self,
        tenant: &TenantId,
        user: &UserId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let found = self.conversations.mentions(tenant, user, before, limit as usize).await?;
        Ok(found
            .into_iter()
            .map(|m| {
                serde_json::json!({
                    "conversation_id": m.conversation_id, "version": m.version, "author": m.author, "at": m.at, "position": m.position,
                })
            })
            .collect())
    }

    async fn waiting_by_team(&self, tenant: &TenantId) -> Result<Vec<(Option<jamuna_domain::TeamId>, u64)>, StoreError> {
        self.conversations.waiting_by_team(tenant).await
    }

    async fn list(&self, tenant: &TenantId, q: &ListQuery) -> Result<Page, StoreError> {
        let view = match q.view {
            View::All => InboxView::All,
            View::Unassigned => InboxView::Unassigned,
            View::Mine => InboxView::Mine(q.agent.clone().ok_or_else(|| StoreError::Invalid("view=mine needs an agent".into()))?),
            View::Pending => InboxView::Pending,
            View::Resolved => InboxView::Resolved,
        };
        let query = ConversationQuery {
            tenant: Some(tenant.clone()),
            customer: q.customer.clone(),
            view,
            status: q.status.as_deref().map(parse_status).transpose()?,
            tag: q.tag.as_deref().map(|t| Tag::parse(t).map_err(|e| StoreError::Invalid(e.to_string()))).transpose()?,
            team: q.team.as_deref().map(|t| jamuna_domain::TeamId::parse(t).map_err(|e| StoreError::Invalid(e.to_string()))).transpose()?,
            channel: q.channel.as_deref().map(parse_channel).transpose()?,
            created_from: None,
            created_to: None,
            text: q.search.clone(),
            limit: q.limit as usize,
            cursor: q.cursor.as_deref().map(Cursor::parse).transpose()?,
        };
        let page = self.conversations.list(&query).await?;
        let items = page.items.iter().map(|s| serde_json::to_value(s).map_err(StoreError::internal)).collect::<Result<_, _>>()?;
        Ok(Page { items, next_cursor: page.next.map(|c| c.as_str().to_owned()) })
    }
}

/// One day of the dashboard's charts.
fn day_json(d: &DailyStats) -> serde_json::Value {
    let c = &d.stats.counters;
    let secs = |ms: Option<i64>| ms.map(|v| v as f64 / 1000.0);
    serde_json::json!({
        "date": d.day,
        "conversations_started": c.conversations_started,
        "messages_customer": c.messages_customer,
        "messages_bot": c.messages_bot,
        "messages_agent": c.messages_agent,
        "bot_answers": c.bot_answers,
        "handoffs": c.handoffs,
        "resolved": c.resolved,
        "resolved_without_human": c.resolved_without_human,
        "containment_rate": d.stats.containment_rate,
        "first_response_p50_s": secs(d.stats.first_response.map(|p| p.median_ms)),
        "first_response_p90_s": secs(d.stats.first_response.map(|p| p.p90_ms)),
        "resolution_p50_s": secs(d.stats.resolution.map(|p| p.median_ms)),
        "resolution_p90_s": secs(d.stats.resolution.map(|p| p.p90_ms)),
        "csat_avg": d.stats.csat_average,
        "csat_count": c.csat_count,
    })
}

#[async_trait]
impl AnalyticsQueries for GatewayReads {
    async fn range(&self, tenant: &TenantId, from: chrono::NaiveDate, to: chrono::NaiveDate) -> Result<serde_json::Value, StoreError> {
        let report = self.analytics.report(tenant, from, to).await?;
        let mut intents: Vec<(&String, &u64)> = report.total.intents.iter().collect();
        intents.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut citations: Vec<(&String, &u64)> = report.total.citations.iter().collect();
        citations.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        Ok(serde_json::json!({
            "from": report.from,
            "to": report.to,
            "days": report.days.iter().map(day_json).collect::<Vec<_>>(),
            "total": day_json(&DailyStats { day: report.to, stats: report.total.clone() }),
            "intents": intents.into_iter().map(|(i, n)| serde_json::json!({"intent": i, "count": n})).collect::<Vec<_>>(),
            "citations": citations.into_iter().map(|(a, n)| serde_json::json!({"article_id": a, "count": n})).collect::<Vec<_>>(),
        }))
    }

    async fn gaps(&self, tenant: &TenantId, limit: usize) -> Result<serde_json::Value, StoreError> {
        let groups = self.gaps.groups(tenant, limit).await?;
        Ok(serde_json::json!({"groups": groups.iter().map(jamuna_projections::gaps::group_json).collect::<Vec<_>>()}))
    }
}
