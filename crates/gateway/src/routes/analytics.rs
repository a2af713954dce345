//! `/api/v1/analytics`: the dashboard's charts, from the analytics read model.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::NaiveDate;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/analytics", get(range))
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
