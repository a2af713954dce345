//! `/api/v1/analytics`: the dashboard's charts, from the analytics read model,
//! and `/api/v1/analytics/gaps`: the content gaps, from the gaps read model.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::NaiveDate;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/analytics", get(range)).route("/api/v1/analytics/gaps", get(gaps))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Range {
    /// First day (default: 29 days before `to`).
    from: Option<NaiveDate>,
    /// Last day, inclusive (default: today, UTC).
    to: Option<NaiveDate>,
}

/// Per-day figures and intents over the range, as the analytics read model shapes them.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the read model's JSON
struct Analytics {
    days: Vec<serde_json::Value>,
    intents: Vec<serde_json::Value>,
    /// `{"article_id", "count"}`: bot answers citing each article, most cited first.
    citations: Vec<serde_json::Value>,
}

/// The longest range one request may ask for.
const MAX_DAYS: i64 = 366;

/// Staff read the dashboard's figures for a date range (at most 366 days).
#[utoipa::path(get, path = "/api/v1/analytics", tag = "analytics", operation_id = "analytics", params(Range), security(("bearer" = [])),
    responses(
        (status = 200, description = "The figures", body = Analytics),
        (status = 400, description = "`from` after `to`, a range over 366 days, a malformed date or an unknown parameter", body = ErrorBody),
        (status = 403, description = "Agents and admins only", body = ErrorBody),
    ))]
async fn range(
    State(state): State<AppState>,
    caller: Caller,
    super::json::ApiQuery(r): super::json::ApiQuery<Range>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    caller.require_staff()?;
    let to = r.to.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let from = r.from.unwrap_or(to - chrono::Duration::days(29));
    if from > to {
        return Err(ApiError::BadRequest("from must not be after to".into()));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(ApiError::BadRequest(format!("a range covers at most {MAX_DAYS} days")));
    }
    Ok(axum::Json(state.analytics.range(&caller.tenant, from, to).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct GapsQuery {
    /// How many groups, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
}

/// One question of a group.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the read model's JSON
struct GapExample {
    conversation_id: String,
    /// The customer's question.
    question: String,
    /// The bot's answer the customer gave a 👎 (`negative_feedback` only).
    bot_answer: Option<String>,
    /// The first agent reply in the conversation after the gap.
    agent_reply: Option<String>,
    /// `low_confidence`, `repeated_failure` or `negative_feedback`.
    reason: String,
    /// RFC 3339.
    at: String,
}

/// Questions that mean much the same.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the read model's JSON
struct GapGroup {
    /// Stable across replays.
    id: String,
    count: u64,
    /// `{"low_confidence": n, "repeated_failure": n, "negative_feedback": n}`.
    reasons: std::collections::BTreeMap<String, u64>,
    /// A representative question.
    question: String,
    /// RFC 3339.
    last_at: String,
    /// The newest examples (at most 5), newest first.
    examples: Vec<GapExample>,
}

/// The content gaps, most frequent first.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the read model's JSON
struct Gaps {
    groups: Vec<GapGroup>,
}

/// The most groups one request may ask for.
const MAX_GAPS: usize = 200;

/// Staff read what the bot could not answer: questions handed off for low
/// confidence or after a failed clarifying question, and 👎 answers, grouped
/// by meaning, most frequent first.
#[utoipa::path(get, path = "/api/v1/analytics/gaps", tag = "analytics", operation_id = "analytics_gaps", params(GapsQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The groups", body = Gaps),
        (status = 400, description = "`limit` outside 1 to 200, or an unknown parameter", body = ErrorBody),
        (status = 403, description = "Agents and admins only", body = ErrorBody),
    ))]
async fn gaps(
    State(state): State<AppState>,
    caller: Caller,
    super::json::ApiQuery(q): super::json::ApiQuery<GapsQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    caller.require_staff()?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_GAPS).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit is 1 to {MAX_GAPS}")));
    }
    Ok(axum::Json(state.analytics.gaps(&caller.tenant, limit).await?))
}
